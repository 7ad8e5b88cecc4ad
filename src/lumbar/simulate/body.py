"""Kinematic body model of the emulated patient.

Frames
------
* Earth frame E: origin on the floor between the ankles (between the knees in four-point
  kneeling, on the table below the knees lying prone), x forward (the direction the subject
  faces), y to the subject's left, z up.
* Segment frames (METRICS.md §0.1): X anterior, Y superior, Z right. In the upright
  neutral posture every segment frame equals ``R_E0`` (columns: X → +x, Y → +z, Z → −y).

Chain
-----
The model is a sagittal-plus-frontal chain of rigid segments driven by joint-angle
trajectories (:class:`Channels`)::

    ankle ─ shank (L_sh) ─ knee ─ thigh (L_th) ─ hip centre (root) ─ pelvis ─ L5/S1 pivot ─ lumbar segment

This midline chain only places the hip centre. Each leg's thigh hangs from its own hip joint, and each
leg's shank from the distal end of that thigh (its knee joint)::

    pelvis ─ hip joint (±half width along the pelvis Z) ─ thigh_<side> ─ knee joint ─ shank_<side>

so a shank carries whatever moves its knee (the thigh's rotation, and also the hip centre's free
shift and the pelvis's lateral tilt, which the midline chain does not turn into leg rotations).

* Whole-body sway: the inverted-pendulum angles ``sway_ap`` (forward +) and ``sway_ml``
  (towards the right +) rotate the legs about the ankles and are added to every segment's
  inclination, so in quiet standing the whole body tilts as one pendulum.
* ``R_seg = R_E0 · Rz(−sagittal) · Rx(lateral) · Ry(axial)`` for pelvis, thighs and shanks, with the
  sagittal angle positive when the segment's superior axis tilts forward; the lumbar
  segment is ``R_lumbar = R_pelvis · Rz(−flexion) · Rx(lateral bend) · Ry(axial rotation)``,
  exactly the Cardan sequence of METRICS.md §2.1, so the lumbar angles of the truth are the
  channels themselves (flexion = −α).
* Knees: ``R_shank = R_E0 · Rz(−(thigh sagittal + knee)) · Rx(lateral)``, the thigh's own angles
  (with its ``lift_*``) plus that knee's flexion: a hinge about the leg's mediolateral axis (the
  thigh's Z up to the small ML sway), so **knee flexion = shank sagittal inclination −
  thigh sagittal inclination** (each the forward tilt of the superior axis). Flexion (+) turns the
  shank's superior axis forward relative to its thigh: its lower end, the heel, goes back towards the
  buttock. Seated with horizontal thighs (−90°) and vertical shanks (0°) the knees are at +90°; in a
  squat the shank's top goes forward (+) and the thigh's top back (−), both adding to the flexion.
  A leg whose foot rests on the support keeps its shank on the chain's shank: that is the default
  of the knee channels (:class:`Channels`).
* The model has no lordosis: in neutral standing the lumbar and pelvic frames coincide, so
  lumbar angles are zero there (as after the standing calibration of METRICS.md §2.1).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from lumbar.simulate.jets import Jet, PointJet, RotJet

__all__ = ["R_E0", "BodyGeometry", "Channels", "BodyState", "SEGMENTS", "SHANK_SEGMENTS", "SENSOR_SEGMENT",
           "evaluate_body"]

# Segment → earth rotation of the upright neutral posture (columns are the segment axes in E).
R_E0 = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

SEGMENTS = ("pelvis", "lumbar", "thigh_left", "thigh_right", "shank_left", "shank_right")
#: Which segment each standard sensor placement is mounted on.
SENSOR_SEGMENT = {"lumbar": "lumbar", "sacrum": "pelvis", "thigh_left": "thigh_left", "thigh_right": "thigh_right",
                  "shank_left": "shank_left", "shank_right": "shank_right"}
#: The optional shank segments (knee flexion); evaluated only when asked for.
SHANK_SEGMENTS = ("shank_left", "shank_right")


@dataclass(frozen=True)
class BodyGeometry:
    """Segment lengths and sensor mounting points of an average adult (m).

    Vectors are in the frame of the segment named, X anterior, Y superior, Z right.

    Parameters
    ----------
    shank_length_m, thigh_length_m : float
        Ankle → knee and knee → hip-joint-centre distances.
    hip_half_width_m : float
        Half the distance between the hip joint centres.
    com_height_m : float
        Height of the whole-body centre of mass above the ankles (for the sway readout).
    sacrum_sensor_m : (3,)
        S1 skin sensor relative to the hip-centre midpoint, pelvis frame.
    lumbar_pivot_m : (3,)
        L5/S1 rotation centre of the lumbar segment relative to the hip-centre midpoint, pelvis frame.
    lumbar_sensor_m : (3,)
        T12/L1 skin sensor relative to the L5/S1 pivot, lumbar frame.
    thigh_sensor_m : (3,)
        Lateral mid-thigh sensor of the *right* thigh relative to its hip joint, thigh frame
        (the left one is mirrored in Z).
    shank_sensor_m : (3,)
        Lateral mid-shank sensor of the *right* shank relative to its knee joint, shank frame
        (the left one is mirrored in Z).
    """

    shank_length_m: float = 0.47
    thigh_length_m: float = 0.45
    hip_half_width_m: float = 0.09
    com_height_m: float = 0.95
    sacrum_sensor_m: tuple[float, float, float] = (-0.13, 0.09, 0.0)
    lumbar_pivot_m: tuple[float, float, float] = (-0.08, 0.12, 0.0)
    lumbar_sensor_m: tuple[float, float, float] = (-0.05, 0.20, 0.0)
    thigh_sensor_m: tuple[float, float, float] = (0.0, -0.225, 0.08)
    # half the shank length below the knee; the lateral skin of the calf lies ≈ 5 cm from the shank's axis
    shank_sensor_m: tuple[float, float, float] = (0.0, -0.235, 0.05)

    def sensor_offset(self, placement: str) -> np.ndarray:
        """Mounting point of a standard sensor in its segment frame, (3,) m (see class doc)."""
        if placement == "sacrum":
            return np.array(self.sacrum_sensor_m)
        if placement == "lumbar":
            return np.array(self.lumbar_sensor_m)
        v = np.array(self.shank_sensor_m if placement.startswith("shank_") else self.thigh_sensor_m)
        if placement in ("thigh_left", "shank_left"):
            v[2] = -v[2]
        return v


def _zero(n: int) -> Jet:
    return Jet.zeros(n)


@dataclass
class Channels:
    """Joint-angle and translation trajectories at N times (rad, m).

    All are :class:`Jet` of length N. Zero channels mean the upright neutral posture.

    Attributes
    ----------
    sway_ap, sway_ml : Jet
        Inverted-pendulum angles about the ankles, forward + / towards the right +.
    shank_sag : Jet
        Extra forward tilt of the shanks (knees forward, e.g. while rising from a chair).
    thigh_sag : Jet
        Sagittal inclination of the stance thigh(s) (superior axis forward +;
        −90° when seated with horizontal thighs).
    lift_left, lift_right : Jet
        Extra hip flexion of a lifted leg relative to the stance thigh (knee forward +).
    knee_left, knee_right : Jet
        Knee flexion (rad), absolute: 0 = straight leg, + = the heel towards the buttock (the
        shank's superior axis turned forward relative to the thigh's). The shank's sagittal
        inclination is its thigh's (``sway_ap + thigh_sag − lift``) plus this. Default: the
        knee that keeps the shank on the chain's shank (``shank_sag − thigh_sag + lift``), i.e.
        a foot resting on the support; a movement sets it where a lower leg moves on its own.
    pelvis_sag, pelvis_lat, pelvis_ax : Jet
        Pelvic anterior tilt (+), lateral tilt (superior axis to the right +) and axial
        rotation relative to upright, *excluding* whole-body sway (added by the model).
    lumbar_flex, lumbar_lat, lumbar_ax : Jet
        Lumbar flexion (+), right lateral bending (+), axial rotation (left +) of the
        lumbar segment relative to the pelvis (METRICS.md §2.1 signs).
    shift_x, shift_y : Jet
        Horizontal translation of the hip centre in the earth frame (m), e.g. the posterior
        shift of the pelvis in forward bending or the weight shift onto one leg.
    """

    n: int
    sway_ap: Jet = None  # type: ignore[assignment]
    sway_ml: Jet = None  # type: ignore[assignment]
    shank_sag: Jet = None  # type: ignore[assignment]
    thigh_sag: Jet = None  # type: ignore[assignment]
    lift_left: Jet = None  # type: ignore[assignment]
    lift_right: Jet = None  # type: ignore[assignment]
    pelvis_sag: Jet = None  # type: ignore[assignment]
    pelvis_lat: Jet = None  # type: ignore[assignment]
    pelvis_ax: Jet = None  # type: ignore[assignment]
    lumbar_flex: Jet = None  # type: ignore[assignment]
    lumbar_lat: Jet = None  # type: ignore[assignment]
    lumbar_ax: Jet = None  # type: ignore[assignment]
    shift_x: Jet = None  # type: ignore[assignment]
    shift_y: Jet = None  # type: ignore[assignment]
    knee_left: Jet = None  # type: ignore[assignment]
    knee_right: Jet = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name not in ("n", "knee_left", "knee_right") and getattr(self, f.name) is None:
                setattr(self, f.name, _zero(self.n))
        # feet on the support unless a movement says otherwise: the shank stays on the chain's shank
        if self.knee_left is None:
            self.knee_left = self.shank_sag - self.thigh_sag + self.lift_left
        if self.knee_right is None:
            self.knee_right = self.shank_sag - self.thigh_sag + self.lift_right


@dataclass
class BodyState:
    """Segment orientations (with rates) and origins at N times.

    Attributes
    ----------
    rot : dict[str, RotJet]
        Segment → earth orientation of each segment in :data:`SEGMENTS`.
    origin : dict[str, PointJet]
        Segment origin: hip-centre midpoint (pelvis), L5/S1 pivot (lumbar), hip joint (thighs),
        knee joint (shanks: the distal end of the thigh, ``L_th`` along its −Y).
    com_m : ndarray, shape (3, N)
        Point of the sway pendulum at centre-of-mass height (sway readout).
    """

    rot: dict[str, RotJet]
    origin: dict[str, PointJet]
    com_m: np.ndarray = field(default_factory=lambda: np.zeros((3, 0)))


def _seg_rot(base: RotJet, sag: Jet, lat: Jet, ax: Jet | None = None) -> RotJet:
    r = base.then_about("z", -sag).then_about("x", lat)
    if ax is not None:
        r = r.then_about("y", ax)
    return r


def evaluate_body(
    ch: Channels,
    geom: BodyGeometry,
    ankle_m: np.ndarray,
    shank_length_m: float | None = None,
    segments: tuple[str, ...] | None = None,
) -> BodyState:
    """Segment orientations and origins from joint trajectories.

    Parameters
    ----------
    ch : Channels
        Trajectories at N times.
    geom : BodyGeometry
        Lengths and mounting points.
    ankle_m : ndarray, shape (3,)
        Earth position of the base of the leg chain (ankles; knees when kneeling).
    shank_length_m : float, optional
        Overrides the geometry's shank length in the midline chain (0 when kneeling or lying
        prone: the chain starts at the knees). The per-leg shanks hang from the knee joints and
        do not use it.
    segments : tuple of str, optional
        Segments needed (default all of :data:`SEGMENTS`); the pelvis is always computed.
    """
    l_shank = geom.shank_length_m if shank_length_m is None else shank_length_m
    n = ch.n
    want = set(SEGMENTS if segments is None else segments)
    base = RotJet.const(R_E0, n)
    shank = _seg_rot(base, ch.sway_ap + ch.shank_sag, ch.sway_ml)
    thigh = _seg_rot(base, ch.sway_ap + ch.thigh_sag, ch.sway_ml)
    # Root (hip-centre midpoint): a midline leg from the ankles, plus a free horizontal shift.
    ankle = PointJet.const(ankle_m, n)
    knee = ankle.offset(shank, np.array([0.0, l_shank, 0.0]))
    root = knee.offset(thigh, np.array([0.0, geom.thigh_length_m, 0.0]))
    root = root + PointJet.from_xyz(ch.shift_x, ch.shift_y, Jet.zeros(n))

    rot: dict[str, RotJet] = {}
    origin: dict[str, PointJet] = {}
    pelvis = _seg_rot(base, ch.sway_ap + ch.pelvis_sag, ch.sway_ml + ch.pelvis_lat, ch.pelvis_ax)
    rot["pelvis"], origin["pelvis"] = pelvis, root
    if "lumbar" in want:
        rot["lumbar"] = pelvis.then_about("z", -ch.lumbar_flex).then_about("x", ch.lumbar_lat).then_about(
            "y", ch.lumbar_ax
        )
        origin["lumbar"] = root.offset(pelvis, np.array(geom.lumbar_pivot_m))
    for side, lift, knee_flex, sign in (("left", ch.lift_left, ch.knee_left, -1.0),
                                        ("right", ch.lift_right, ch.knee_right, 1.0)):
        thigh_s, shank_s = f"thigh_{side}", f"shank_{side}"
        if thigh_s not in want and shank_s not in want:
            continue
        thigh_sag = ch.sway_ap + ch.thigh_sag - lift
        thigh_rot = _seg_rot(base, thigh_sag, ch.sway_ml)
        hip = root.offset(pelvis, np.array([0.0, 0.0, sign * geom.hip_half_width_m]))
        if thigh_s in want:
            rot[thigh_s], origin[thigh_s] = thigh_rot, hip
        if shank_s in want:
            # a hinge in the leg's sagittal plane: the knee adds to the thigh's sagittal angle
            rot[shank_s] = _seg_rot(base, thigh_sag + knee_flex, ch.sway_ml)
            origin[shank_s] = hip.offset(thigh_rot, np.array([0.0, -geom.thigh_length_m, 0.0]))

    # the sway pendulum's superior axis is the second column of its rotation
    c_ap, s_ap = np.cos(ch.sway_ap.v), np.sin(ch.sway_ap.v)
    c_ml, s_ml = np.cos(ch.sway_ml.v), np.sin(ch.sway_ml.v)
    up = R_E0 @ np.stack([s_ap * c_ml, c_ap * c_ml, s_ml], 0)  # R_E0 · Rz(−ap) · Rx(ml) · e_y
    com = np.asarray(ankle_m)[:, None] + up * geom.com_height_m
    return BodyState(rot=rot, origin=origin, com_m=com)
