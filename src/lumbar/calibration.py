"""Sensor calibration: gyroscope bias at rest and sensor-to-segment alignment (METRICS.md §3).

* :func:`detect_static` — rest detection over a sliding window (§3.4 thresholds).
* :func:`gyro_bias` — mean angular rate over rest.
* :func:`calibrate_segment` — static upright posture gives the segment's superior axis Y (gravity),
  a functional sagittal movement gives its mediolateral axis Z (principal rotation axis);
  X = Y × Z. The result ``r_sb`` maps sensor coordinates into segment coordinates
  (rows = segment axes in sensor coordinates), see ``docs/conventions.md``.

Quality indicators are outputs, and an unusable trial raises :class:`~lumbar.errors.CalibrationError`
with a message a clinician can act on ("the patient moved during the static trial — repeat it").
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import uniform_filter1d

from lumbar.errors import CalibrationError, ValidationError
from lumbar.types import SHANKS, STANDARD_G, THIGHS

__all__ = [
    "SegmentCalibration",
    "calibrate_segment",
    "check_gravity_norm",
    "detect_static",
    "gyro_bias",
    "posture_up",
    "segment_kind",
    "static_only_calibration",
]

#: Rest thresholds of METRICS.md §3.4 (project defaults).
STATIC_ACC_NORM_TOL = 0.05 * STANDARD_G  # | |a| - g | < 0.05 g
STATIC_GYRO_NORM = 0.05  # |w| < 0.05 rad/s (before bias correction)
STATIC_ACC_SD = 0.01 * STANDARD_G  # SD of each axis < 0.01 g
#: Gyro samples above this norm (after bias removal) define the functional axis, rad/s (§3.2).
FUNCTIONAL_MIN_RATE = 0.2
#: Limits for the *upright calibration posture* [PROJECT DEFAULT]. A person standing still sways: at the
#: sacrum that is a few mg of acceleration (emulated and ISway-typical RMS 5–8 mg), close to §3.4's 10 mg rest
#: limit, which is meant for gyro-bias rest windows. The posture only needs gravity's direction, so it is
#: refused for motion above 30 mg (walking, bending); and an uncalibrated commodity accelerometer may read
#: |a| a few percent off g (offset ±20 mg plus scale ±1 %), so only > 15 % off (wrong units or range) is
#: refused, > 5 % is a warning.
CALIB_ACC_SD = 0.03 * STANDARD_G
CALIB_NORM_REFUSE = 0.15 * STANDARD_G
#: Direction of "up" (against gravity) in segment coordinates in each calibration posture. Standing or
#: sitting upright, the superior axis Y points up; lying prone or kneeling on all fours, the segment's
#: posterior side faces up, so up is −X (the anterior axis points at the floor).
POSTURE_UP = {
    "standing": (0.0, 1.0, 0.0),
    "sitting": (0.0, 1.0, 0.0),
    "prone": (-1.0, 0.0, 0.0),
    "four-point-kneeling": (-1.0, 0.0, 0.0),
}
#: The same for a thigh, whose posture is not the trunk's: sitting, it lies horizontal with its front up
#: (+X); on all fours it stands vertical under the hip (+Y); lying prone, its back faces up (−X).
THIGH_POSTURE_UP = {
    "standing": (0.0, 1.0, 0.0),
    "sitting": (1.0, 0.0, 0.0),
    "prone": (-1.0, 0.0, 0.0),
    "four-point-kneeling": (0.0, 1.0, 0.0),
}
#: The same for a shank: hanging from the knee sitting on a table's edge and standing it is vertical (+Y);
#: lying prone, it lies on the table with its back up (−X); on all fours it lies on the floor, its front
#: down (−X).
SHANK_POSTURE_UP = {
    "standing": (0.0, 1.0, 0.0),
    "sitting": (0.0, 1.0, 0.0),
    "prone": (-1.0, 0.0, 0.0),
    "four-point-kneeling": (-1.0, 0.0, 0.0),
}
_SEGMENT_POSTURE_UP = {"trunk": POSTURE_UP, "thigh": THIGH_POSTURE_UP, "shank": SHANK_POSTURE_UP}

#: Quality limits of §3.2.
MAX_AXIS_OFF_HORIZONTAL_DEG = 20.0
MAX_SINGULAR_RATIO = 0.30


@dataclass(frozen=True)
class SegmentCalibration:
    """Calibration of one sensor on its segment.

    Attributes
    ----------
    r_sb : ndarray (3, 3)
        Sensor → segment rotation (rows: segment X anterior, Y superior, Z right, in sensor coordinates).
    gyro_bias_rads : ndarray (3,)
        Gyroscope bias in the sensor frame, rad/s (from the static trial).
    static_acc_sd_mps2 : float
        Largest per-axis SD of the accelerometer during the static trial, m/s² (motion indicator).
    static_gyro_rms_rads : float
        RMS angular rate during the static trial after bias removal, rad/s.
    axis_off_horizontal_deg : float
        Angle between the functional rotation axis and the horizontal plane, deg (0 = sagittal movement).
    singular_ratio : float
        Second / first singular value of the functional gyro samples (0 = one clean axis).
    n_functional : int
        Gyro samples used for the functional axis.
    warnings : list of str
        Non-fatal quality remarks.
    """

    r_sb: np.ndarray
    gyro_bias_rads: np.ndarray
    static_acc_sd_mps2: float
    static_gyro_rms_rads: float
    axis_off_horizontal_deg: float
    singular_ratio: float
    n_functional: int
    warnings: list[str] = field(default_factory=list)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"r_sb": self.r_sb, "gyro_bias_rads": self.gyro_bias_rads}

    def attrs(self) -> dict[str, float | int | str]:
        return {
            "static_acc_sd_mps2": self.static_acc_sd_mps2,
            "static_gyro_rms_rads": self.static_gyro_rms_rads,
            "axis_off_horizontal_deg": self.axis_off_horizontal_deg,
            "singular_ratio": self.singular_ratio,
            "n_functional": self.n_functional,
            "warnings": "; ".join(self.warnings),
        }


def _check_samples(name: str, x: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 3:
        raise ValidationError(f"{name} must have shape (N, 3); got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValidationError(f"{name} contains NaN or infinite values")
    return a


def detect_static(acc: np.ndarray, gyro: np.ndarray, rate_hz: float, window_s: float = 1.0) -> np.ndarray:
    """Rest mask (N,): every criterion of METRICS.md §3.4 holds over the centred ``window_s`` window.

    Parameters
    ----------
    acc : ndarray (N, 3), m/s²
    gyro : ndarray (N, 3), rad/s (uncorrected)
    rate_hz : float
    window_s : float
        Sliding window length, s.
    """
    acc = _check_samples("acc", acc)
    gyro = _check_samples("gyro", gyro)
    w = max(1, int(round(window_s * rate_hz)))
    mean = uniform_filter1d(acc, w, axis=0, mode="nearest")
    sd = np.sqrt(np.maximum(uniform_filter1d(acc**2, w, axis=0, mode="nearest") - mean**2, 0.0))
    acc_ok = uniform_filter1d((np.abs(np.linalg.norm(acc, axis=1) - STANDARD_G) < STATIC_ACC_NORM_TOL).astype(float),
                              w, mode="nearest") > 1 - 1e-9
    gyro_ok = uniform_filter1d((np.linalg.norm(gyro, axis=1) < STATIC_GYRO_NORM).astype(float), w,
                               mode="nearest") > 1 - 1e-9
    return acc_ok & gyro_ok & np.all(sd < STATIC_ACC_SD, axis=1)


def gyro_bias(gyro: np.ndarray, static: np.ndarray | None = None) -> np.ndarray:
    """Mean angular rate (3,) over the static samples (all samples if ``static`` is None), rad/s."""
    g = _check_samples("gyro", gyro)
    sel = g if static is None else g[np.asarray(static, dtype=bool)]
    if sel.shape[0] == 0:
        raise CalibrationError("no period of rest was found, so the gyroscope bias cannot be measured")
    return sel.mean(axis=0)


def check_gravity_norm(norm_mps2: float, label: str) -> list[str]:
    """Refuse an accelerometer that reads far from g at rest (units, range); warn when it is a few % off."""
    if abs(norm_mps2 - STANDARD_G) > CALIB_NORM_REFUSE:
        raise CalibrationError(
            f"{label}: the accelerometer reads {norm_mps2:.2f} m/s² at rest instead of about 9.81; "
            "check the sensor's units and range"
        )
    if abs(norm_mps2 - STANDARD_G) > STATIC_ACC_NORM_TOL:
        return [f"the accelerometer reads {norm_mps2:.2f} m/s² at rest ({100 * (norm_mps2 / STANDARD_G - 1):+.0f} % "
                "from g): its offset or scale is large; calibrate the sensor if this persists"]
    return []


def segment_kind(placement: str) -> str:
    """The kind of segment a sensor placement is on, for :func:`posture_up`: ``"thigh"``, ``"shank"`` or
    ``"trunk"`` (lumbar, sacrum and any custom placement)."""
    return "thigh" if placement in THIGHS else "shank" if placement in SHANKS else "trunk"


def posture_up(posture: str, segment: str = "trunk") -> np.ndarray:
    """The up direction (3,) in segment coordinates for a calibration posture name, of a ``segment`` of the
    trunk (lumbar, pelvis: :data:`POSTURE_UP`), a ``"thigh"`` (:data:`THIGH_POSTURE_UP`) or a ``"shank"``
    (:data:`SHANK_POSTURE_UP`)."""
    if segment not in _SEGMENT_POSTURE_UP:
        raise ValidationError(f"segment must be one of {', '.join(_SEGMENT_POSTURE_UP)}; got {segment!r}")
    try:
        return np.array(_SEGMENT_POSTURE_UP[segment][posture])
    except KeyError:
        raise ValidationError(
            f"calibration posture must be one of {', '.join(sorted(POSTURE_UP))}; got {posture!r}"
        ) from None


def _triad(a_s: np.ndarray, m_s: np.ndarray, up_b: np.ndarray) -> np.ndarray:
    """Sensor→segment rotation from two directions known in both frames: up (measured ``a_s``, known
    ``up_b``) and the mediolateral axis (measured ``m_s``, segment Z). ``up_b`` ⊥ Z."""
    s1 = a_s / np.linalg.norm(a_s)
    s2 = m_s - (m_s @ s1) * s1
    s2 /= np.linalg.norm(s2)
    b1, b2 = up_b, np.array([0.0, 0.0, 1.0])
    return np.column_stack([b1, b2, np.cross(b1, b2)]) @ np.vstack([s1, s2, np.cross(s1, s2)])


def calibrate_segment(
    static_acc: np.ndarray,
    static_gyro: np.ndarray,
    functional_acc: np.ndarray,
    functional_gyro: np.ndarray,
    rate_hz: float,
    *,
    label: str = "sensor",
    posture: str = "standing",
    segment: str = "trunk",
    functional_direction: int = +1,
) -> SegmentCalibration:
    """Sensor-to-segment alignment from a static upright trial and a functional forward bend.

    Parameters
    ----------
    static_acc, static_gyro : ndarray (N, 3)
        Standing upright and still (≥ 2 s; 5 s recommended), m/s² and rad/s.
    functional_acc, functional_gyro : ndarray (M, 3)
        3–5 slow forward bends (the pelvis also tilts forward, so this serves the sacral sensor
        too), m/s² and rad/s.
    rate_hz : float
        Sampling rate, Hz.
    label : str
        Name used in messages (e.g. ``"lumbar sensor"``).
    posture : str
        The static trial's posture (:data:`POSTURE_UP`): which segment axis gravity reveals.
    segment : str
        ``"trunk"`` (lumbar, pelvis), ``"thigh"`` or ``"shank"``: a leg's posture differs from the trunk's
        (:data:`THIGH_POSTURE_UP`, :data:`SHANK_POSTURE_UP`).
    functional_direction : int
        +1 when the functional movement is mostly flexion (forward bends), −1 when mostly extension;
        it fixes the sign of the mediolateral axis.

    Raises
    ------
    CalibrationError
        The static trial contains movement, too short, or the functional movement has no clear
        sagittal axis.
    """
    sa = _check_samples("static_acc", static_acc)
    sg = _check_samples("static_gyro", static_gyro)
    fa = _check_samples("functional_acc", functional_acc)
    fg = _check_samples("functional_gyro", functional_gyro)
    if sa.shape[0] < 2 * rate_hz:
        raise CalibrationError(f"{label}: the static trial is shorter than 2 s; record at least 5 s standing still")
    # --- static trial: motion check, gyro bias, vertical axis
    acc_sd = float(np.max(sa.std(axis=0)))
    bias = sg.mean(axis=0)
    gyro_rms = float(np.sqrt(np.mean(np.sum((sg - bias) ** 2, axis=1))))
    norm = float(np.linalg.norm(sa.mean(axis=0)))
    if acc_sd > CALIB_ACC_SD or np.max(np.linalg.norm(sg, axis=1)) > 3 * STATIC_GYRO_NORM:
        raise CalibrationError(
            f"{label}: the patient moved during the static trial (accelerometer SD {acc_sd / STANDARD_G * 1000:.0f} mg, "
            f"limit {CALIB_ACC_SD / STANDARD_G * 1000:.0f} mg); ask them to stand still and repeat it"
        )
    warnings = check_gravity_norm(norm, label)
    up_s = sa.mean(axis=0) / norm
    up_b = posture_up(posture, segment)
    # --- functional trial: principal rotation axis
    w = fg - bias
    moving = np.einsum("ij,ij->i", w, w) > FUNCTIONAL_MIN_RATE**2  # |ω| > limit, without N square roots
    if moving.sum() < 0.5 * rate_hz:
        raise CalibrationError(
            f"{label}: the functional trial has too little movement (needs slow forward bends faster than "
            f"{np.rad2deg(FUNCTIONAL_MIN_RATE):.0f}°/s); repeat it"
        )
    _, s, vt = np.linalg.svd(w[moving], full_matrices=False)
    m = vt[0]
    ratio = float(s[1] / s[0])
    off_horizontal = float(np.rad2deg(np.arcsin(min(1.0, abs(m @ up_s)))))
    r_sb = _triad(up_s, m, up_b)
    # Sign of the axis: flexion (a negative rotation about Z) turns the up direction, seen from the
    # segment, towards Z × up (standing: towards −X, the anterior axis tilting down). Its mean over the
    # movement has the sign of the movement's main direction (a mean is robust to brief accelerations).
    toward = np.cross(np.array([0.0, 0.0, 1.0]), up_b)
    if functional_direction * float(np.mean(fa @ (r_sb.T @ toward))) < 0:
        r_sb = _triad(up_s, -m, up_b)
    if ratio > MAX_SINGULAR_RATIO:
        raise CalibrationError(
            f"{label}: functional calibration unusable: the rotation axis is not well defined (singular value "
            f"ratio {ratio:.2f}, limit {MAX_SINGULAR_RATIO}); repeat slow forward bends without twisting"
        )
    if off_horizontal > MAX_AXIS_OFF_HORIZONTAL_DEG:
        warnings.append(
            f"the bends were not purely sagittal (axis {off_horizontal:.0f}° from horizontal, limit "
            f"{MAX_AXIS_OFF_HORIZONTAL_DEG:.0f}°); side bending or twisting may be mixed into flexion"
        )
    return SegmentCalibration(
        r_sb=r_sb,
        gyro_bias_rads=bias,
        static_acc_sd_mps2=acc_sd,
        static_gyro_rms_rads=gyro_rms,
        axis_off_horizontal_deg=off_horizontal,
        singular_ratio=ratio,
        n_functional=int(moving.sum()),
        warnings=warnings,
    )


def static_only_calibration(acc: np.ndarray, gyro: np.ndarray, label: str = "sensor", *,
                            posture: str = "standing", segment: str = "trunk") -> SegmentCalibration:
    """Sensor-to-segment rotation from gravity alone (no functional trial available); ``segment`` as in
    :func:`posture_up`.

    The smallest rotation taking the measured up direction onto the segment's up direction in that
    ``posture`` (standing: Y), so the sensor's own axes are otherwise taken as the segment's: right when
    the sensor is mounted as its family's placement guide says, blind to a sensor turned about the vertical.
    """
    sa = _check_samples("acc", acc)
    sg = _check_samples("gyro", gyro)
    mean = sa.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    warnings = check_gravity_norm(norm, label)
    up_s = mean / norm
    up_b = posture_up(posture, segment)
    v = np.cross(up_s, up_b)
    c = float(up_s @ up_b)
    off_deg = float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))
    if c < 0.0:
        # Beyond 90° the sensor cannot be mounted as assumed (upside down, on its side, wrong posture).
        raise CalibrationError(
            f"{label}: gravity is {off_deg:.0f}° away from where a {posture} posture puts it: the sensor is upside "
            "down or on its side, or the patient is not in that posture; check both and repeat"
        )
    if off_deg > 30.0:
        warnings.append(f"the sensor is tilted {off_deg:.0f}° from its nominal mounting; without a functional "
                        "trial its anterior/right axes are only assumed")
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    r_sb = np.eye(3) + vx + vx @ vx / (1.0 + c)  # Rodrigues: the smallest rotation taking up_s onto up_b
    bias = sg.mean(axis=0)
    return SegmentCalibration(
        r_sb=r_sb,
        gyro_bias_rads=bias,
        static_acc_sd_mps2=float(np.max(sa.std(axis=0))),
        static_gyro_rms_rads=float(np.sqrt(np.mean(np.sum((sg - bias) ** 2, axis=1)))),
        axis_off_horizontal_deg=float("nan"),
        singular_ratio=float("nan"),
        n_functional=0,
        warnings=warnings + ["static calibration only: the sensor's axes are taken as the segment's anterior/right axes"],
    )
