"""Movement protocols of the emulated patient: joint trajectories, repetitions, events.

Every movement turns its parameters into a :class:`Plan`: a function from times to
:class:`~lumbar.simulate.body.Channels`, the repetition boundaries and the events.

Trial layout (all movements): a still period of :data:`STATIC_S` s in the start posture
(standing calibration, METRICS.md §3.1; seated or kneeling for the movements that start
there), then the repetitions, each *out → hold → back → rest*, then the remaining time still.
Rep-to-rep variability multiplies each repetition's amplitude and phase durations by
``1 + cv·N(0,1)`` (clipped to ±2 cv).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from lumbar.errors import SimulationError
from lumbar.simulate.body import Channels
from lumbar.simulate.jets import Jet
from lumbar.simulate.profiles import PulseTrain, SumOfSines, Tabulated
from lumbar.types import Event

__all__ = ["MOVEMENTS", "MovementDefaults", "DEFAULTS", "MovementParams", "Plan", "build_plan", "STATIC_S"]

D2R = np.pi / 180.0

MOVEMENTS: dict[str, str] = {
    "quiet-standing": "Quiet standing, feet together, arms crossed; eyes open or closed. Sway about the ankles.",
    "flexion": "Repeated forward bending of the trunk and return, knees straight, with a configurable "
    "lumbo-pelvic rhythm (lumbar share of trunk inclination).",
    "pelvic-tilt": "Standing anterior-posterior pelvic tilts with the thorax kept still "
    "(poor: the thorax follows the pelvis).",
    "waiters-bow": "Standing hip hinge with a neutral lumbar spine (poor: the lumbar spine flexes).",
    "sitting-knee-extension": "Seated knee extension, alternating legs, lumbar spine neutral "
    "(poor: the pelvis tilts back and the lumbar spine flexes as the knee extends).",
    "one-leg-stance": "Standing on one leg, alternating legs (poor: pelvic drop, trunk lean and trunk sway).",
    "sit-to-stand": "Rising from a chair and sitting down again (poor: lumbar flexion instead of a hip hinge).",
    "rocking": "Rocking in four-point kneeling, first backward (hip flexion) then forward (hip extension), "
    "lumbar spine neutral (poor: the lumbar spine flexes near the end of the backward rock and extends near "
    "the end of the forward rock).",
    "prone-knee-bend": "Prone lying, active knee flexion past 90°, alternating legs, low back and pelvis still "
    "(poor: the pelvis tilts forward and rotates and the lumbar spine extends as the knee bends).",
}

QUALITIES = ("good", "poor")
EYES = ("open", "closed")
SURFACES = ("firm", "foam")

#: Still period at the start of every trial, s.
STATIC_S = 5.0
#: Minimum still period after the last repetition, s.
END_S = 2.0


@dataclass(frozen=True)
class MovementDefaults:
    """Default repetition count, amplitude (deg), speed (deg/s) and phase durations (s).

    ``amplitude_deg`` and ``speed_dps`` refer to the movement's primary angle (see
    ``docs/emulated-patient.md``); the out and back phases last ``amplitude / speed``.
    """

    reps: int
    amplitude_deg: float
    speed_dps: float
    hold_s: float
    rest_s: float
    primary: str


DEFAULTS: dict[str, MovementDefaults] = {
    "quiet-standing": MovementDefaults(0, 0.25, 0.0, 0.0, 0.0, "AP sway angle RMS"),
    "flexion": MovementDefaults(10, 60.0, 30.0, 1.0, 2.0, "trunk (upper lumbar segment) inclination"),
    "pelvic-tilt": MovementDefaults(10, 10.0, 10.0, 0.5, 2.0, "pelvic tilt (anterior and posterior)"),
    "waiters-bow": MovementDefaults(10, 60.0, 25.0, 1.0, 2.0, "trunk inclination"),
    "sitting-knee-extension": MovementDefaults(10, 60.0, 60.0, 2.0, 2.0,
                                               "knee extension of the working leg from the right-angle start"),
    "one-leg-stance": MovementDefaults(4, 40.0, 40.0, 10.0, 3.0, "hip flexion of the lifted leg"),
    "sit-to-stand": MovementDefaults(5, 40.0, 40.0, 2.0, 2.0, "peak forward trunk inclination while rising"),
    "rocking": MovementDefaults(10, 40.0, 30.0, 1.0, 1.5, "backward thigh rotation (hip flexion); "
                                "forward rocks 0.75 of it (hip extension)"),
    # 100° so that a good patient clears the test's 90° in every repetition despite sensor error; the
    # speed keeps the out and back phases at 1.5 s, the timing the trunk's compensations were built on
    "prone-knee-bend": MovementDefaults(10, 100.0, 100.0 / 1.5, 1.0, 2.0,
                                        "knee flexion of the working leg from the straight leg"),
}

# Knee flexion of the lifted leg in one-leg stance per unit of its hip flexion: a bit more than the hip, so
# the shank's top leans forward a little (the foot hangs behind the knee) and the foot clears the floor by
# ≈ 11 cm at 40°.
OLS_KNEE_PER_HIP = 1.25

# Rocking in four-point kneeling (docs/emulated-patient.md). Forward thigh rotation as a fraction of the
# backward one: 0.75 · 40° = 30°, hip flexion 90° → 69° (the pelvis follows part of the rotation), against
# 90° → 118° backward.
ROCK_FORWARD_RATIO = 0.75
# Part of the thighs' rotation the pelvis (and the trunk with it, the back kept neutral) follows.
ROCK_PELVIS_SHARE = 0.3
# Lumbar flexion (backward) or extension (forward) near the end of each rock with poor control, deg.
ROCK_LEAK_DEG = 15.0

# Whole-body sway, inverted pendulum about the ankles (eyes open, healthy adult).
# COM sway SD ≈ 4 mm at ≈ 1 m (METRICS.md §1.5: COP RMS AP 5.0 mm, ML 3.3 mm) → ≈ 0.25° AP, 0.15° ML.
SWAY_AP_RMS_DEG = 0.25
SWAY_ML_RMS_DEG = 0.15
SWAY_CORNER_HZ = 0.3
EYES_CLOSED_FACTOR = 1.35  # COP RMS_AP EC/EO ≈ 6.3/5.0 mm (METRICS.md §1.5), rounded up
# Standing on a foam pad (quiet standing only). FROM MEMORY – VERIFY: COP / trunk sway amplitude on a
# medium-density foam pad is about 1.5–2× that on a firm floor with eyes open in healthy adults, and the
# stabilising effect of vision grows on foam (Patel et al. 2008, Gait Posture 28:649–656, abstract:
# vision has a greater influence when the support surface challenges stability [CONFIRMED, qualitative]);
# foam EC/EO ≈ 2 (modified CTSIB-type data, FROM MEMORY – VERIFY). See docs/emulated-patient.md.
FOAM_FACTOR = 1.6
FOAM_EYES_CLOSED_FACTOR = 2.0


@dataclass(frozen=True)
class MovementParams:
    """Validated parameters of one trial (see :func:`lumbar.simulate.simulate`)."""

    movement: str
    duration_s: float
    reps: int | None = None
    amplitude_deg: float | None = None
    speed_dps: float | None = None
    quality: str = "good"
    eyes: str = "open"
    variability: float | None = None
    lumbar_share: float | None = None
    sway_scale: float = 1.0
    surface: str = "firm"


@dataclass
class Plan:
    """What a movement resolves to.

    Attributes
    ----------
    channels : callable
        ``channels(t)`` with t (N,) s → :class:`Channels` at those times.
    ankle_m : ndarray, shape (3,)
        Base of the leg chain in the earth frame.
    shank_length_m : float or None
        Shank length override of the midline chain (0 when kneeling or lying prone: the chain
        starts at the knees; the legs' own shanks hang from the knees regardless).
    rep_bounds_s : ndarray, shape (K, 3)
        Start, peak and end of each repetition, s.
    events : list of Event
    attrs : dict
        Resolved parameters (scalars/strings).
    """

    channels: Callable[[np.ndarray], Channels]
    ankle_m: np.ndarray
    shank_length_m: float | None
    rep_bounds_s: np.ndarray
    events: list[Event]
    attrs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class _Schedule:
    t0: np.ndarray
    rise: np.ndarray
    hold: np.ndarray
    fall: np.ndarray
    amp_factor: np.ndarray

    def train(self, amp: np.ndarray | float, **kw) -> PulseTrain:
        return PulseTrain(self.t0, self.rise, self.hold, self.fall, self.amp_factor * amp, **kw)

    @property
    def t_end(self) -> np.ndarray:
        return self.t0 + self.rise + self.hold + self.fall


def _resolve_reps(p: MovementParams, rep_s: float, cv: float, default: int) -> int:
    avail = p.duration_s - STATIC_S - END_S
    worst = rep_s * (1.0 + 2.0 * cv)  # longest a repetition can get with the variability
    fit = int(np.floor(avail / worst)) if avail > 0 else 0
    if p.reps is None:
        if fit < 1:
            raise SimulationError(
                f"{p.duration_s:g} s is too short for one repetition of {p.movement!r}: it needs about "
                f"{STATIC_S + worst + END_S:.1f} s ({STATIC_S:g} s still at the start, up to {worst:.1f} s per "
                f"repetition, {END_S:g} s at the end); give a longer duration"
            )
        return min(default, fit)
    if p.reps > fit:
        need = STATIC_S + p.reps * worst + END_S
        raise SimulationError(
            f"{p.reps} repetitions of {p.movement!r} do not fit in {p.duration_s:g} s: they need up to "
            f"{need:.1f} s ({STATIC_S:g} s still at the start, up to {worst:.1f} s per repetition at this speed, "
            f"{END_S:g} s at the end); ask for at most {fit} repetition{'' if fit == 1 else 's'} or a longer duration"
        )
    return p.reps


def _schedule(
    rng: np.random.Generator, n: int, rise: float, hold: float, fall: float, rest: float, cv: float
) -> _Schedule:
    ft = 1.0 + np.clip(cv * rng.standard_normal(n), -2 * cv, 2 * cv)
    fa = 1.0 + np.clip(cv * rng.standard_normal(n), -2 * cv, 2 * cv)
    r, h, f, s = rise * ft, hold * ft, fall * ft, rest * ft
    t0 = STATIC_S + np.concatenate([[0.0], np.cumsum(r + h + f + s)[:-1]]) if n else np.zeros(0)
    return _Schedule(np.asarray(t0, float), r, h, f, fa)


def _rep_events(bounds: np.ndarray, notes: list[str] | None = None) -> list[Event]:
    ev = []
    for i, (a, b, c) in enumerate(bounds):
        note = f"rep {i + 1}" + (f", {notes[i]}" if notes else "")
        ev += [Event(float(a), "rep_start", note), Event(float(b), "rep_peak", note), Event(float(c), "rep_end", note)]
    return ev


def _sway(
    rng: np.random.Generator, p: MovementParams, poor_factor: float = 1.0, rms_scale: float = 1.0
) -> tuple[Tabulated, Tabulated, float, float]:
    """AP and ML inverted-pendulum sway (rad) and their RMS (deg)."""
    if p.surface == "foam":
        vision = FOAM_FACTOR * (FOAM_EYES_CLOSED_FACTOR if p.eyes == "closed" else 1.0)
    else:
        vision = EYES_CLOSED_FACTOR if p.eyes == "closed" else 1.0
    k = p.sway_scale * vision * poor_factor * rms_scale
    corner = SWAY_CORNER_HZ * (1.5 if poor_factor > 1.0 else 1.0)
    ap = SumOfSines.random(rng, SWAY_AP_RMS_DEG * D2R * k, corner)
    ml = SumOfSines.random(rng, SWAY_ML_RMS_DEG * D2R * k, corner * 1.3)
    t_end = _t_end(p)
    return Tabulated(ap, t_end), Tabulated(ml, t_end), SWAY_AP_RMS_DEG * k, SWAY_ML_RMS_DEG * k


def _t_end(p: MovementParams) -> float:
    # sensor clocks may run up to 0.1 % fast; Tabulated falls back to direct evaluation beyond
    return p.duration_s * 1.001 + 1.0


def _wobble(rng: np.random.Generator, n: int, sd_deg: float, lim_deg: float) -> np.ndarray:
    """Small per-repetition deviations (rad) of a channel that should stay still."""
    return np.clip(rng.standard_normal(n) * sd_deg, -lim_deg, lim_deg) * D2R


def _knee_amp(sc: _Schedule, amp: float, poor: bool, cv: float) -> np.ndarray:
    """Per-repetition knee excursion (rad) of the knee tests: ``amp`` times the repetition's amplitude
    factor, which good control does not let fall below ``1 − cv`` (it reaches the target every time)."""
    f = sc.amp_factor if poor else np.maximum(sc.amp_factor, 1.0 - cv)
    return f * amp


def build_plan(p: MovementParams, rng: np.random.Generator) -> Plan:
    """Resolve defaults and build the trajectories of one trial.

    Raises
    ------
    SimulationError
        If the repetitions do not fit the duration or a parameter does not apply.
    """
    d = DEFAULTS[p.movement]
    poor = p.quality == "poor"
    cv = p.variability if p.variability is not None else (0.12 if poor else 0.05)
    amp_deg = d.amplitude_deg if p.amplitude_deg is None else p.amplitude_deg
    speed = d.speed_dps if p.speed_dps is None else p.speed_dps
    A = amp_deg * D2R
    attrs: dict = {
        "movement": p.movement,
        "quality": p.quality,
        "eyes": p.eyes,
        "amplitude_deg": float(amp_deg),
        "speed_dps": float(speed),
        "variability_cv": float(cv),
        "sway_scale": float(p.sway_scale),
        "surface": p.surface,
        "primary_angle": d.primary,
    }
    sway_rng, rep_rng, wob_rng = rng.spawn(3)
    standing_ankle = np.zeros(3)
    ev0 = [Event(0.0, "trial_start", p.movement), Event(STATIC_S, "calibration_end", "still in the start posture before this")]

    if p.movement == "quiet-standing":
        if p.reps not in (None, 0):
            raise SimulationError("'quiet-standing' has no repetitions; leave reps unset")
        if p.speed_dps is not None:
            raise SimulationError("'quiet-standing' has no movement speed; leave speed_dps unset")
        ap, ml, rms_ap, rms_ml = _sway(sway_rng, p, 1.6 if poor else 1.0, amp_deg / SWAY_AP_RMS_DEG)
        attrs.update(reps=0, sway_ap_rms_deg=rms_ap, sway_ml_rms_deg=rms_ml, posture="standing")

        def channels(t: np.ndarray) -> Channels:
            return Channels(len(t), sway_ap=ap(t), sway_ml=ml(t))

        return Plan(channels, standing_ankle, None, np.zeros((0, 3)),
                    [Event(0.0, "trial_start", p.movement), Event(p.duration_s, "trial_end")], attrs)

    T = amp_deg / speed if speed > 0 else 0.0  # out / back phase duration, s

    if p.movement in ("flexion", "waiters-bow"):
        rep_s = 2 * T + d.hold_s + d.rest_s
        n = _resolve_reps(p, rep_s, cv, d.reps)
        sc = _schedule(rep_rng, n, T, d.hold_s, T, d.rest_s, cv)
        ap, ml, _, _ = _sway(sway_rng, p)
        if p.movement == "flexion":
            share = p.lumbar_share if p.lumbar_share is not None else (0.35 if poor else 0.6)
            lead = 0.0 if poor else 0.2  # lumbar leads the pelvis on the way down, follows on the way up
            lum = sc.train(share * A, rise_window=(0.0, 1.0 - lead), fall_window=(lead, 1.0))
            pel = sc.train((1.0 - share) * A, rise_window=(lead, 1.0), fall_window=(0.0, 1.0 - lead))
            shift = sc.train(-0.10, rise_window=(lead, 1.0), fall_window=(0.0, 1.0 - lead))
            attrs.update(lumbar_share=float(share),
                         lumbo_pelvic_ratio=float(share / (1.0 - share)) if share < 1 else float("inf"),
                         lumbar_lead_fraction=float(lead))
        else:  # waiter's bow: the hip hinges, the lumbar spine should not move
            if poor:
                lum = sc.train(0.4 * A)
                pel = sc.train(0.6 * A)
            else:
                lum = PulseTrain(sc.t0, sc.rise, sc.hold, sc.fall, _wobble(wob_rng, n, 1.0, 2.5))
                pel = sc.train(A)
            shift = sc.train(-0.08)
        bounds = np.stack([sc.t0, sc.t0 + sc.rise + 0.5 * sc.hold, sc.t_end], 1)

        def channels(t: np.ndarray) -> Channels:
            return Channels(len(t), sway_ap=ap(t), sway_ml=ml(t), lumbar_flex=lum(t), pelvis_sag=pel(t),
                            shift_x=shift(t))

        attrs.update(posture="standing")
        return _finish(p, attrs, n, channels, standing_ankle, None, bounds, ev0)

    if p.movement == "pelvic-tilt":
        h = d.hold_s
        rep_s = 4 * T + 2 * h + d.rest_s
        n = _resolve_reps(p, rep_s, cv, d.reps)
        sc = _schedule(rep_rng, n, T, h, 2 * T, h + T + d.rest_s, cv)  # rest counts from the anterior pulse's end
        # anterior pulse: 0 → +A (T), hold, → 0 over 2T; posterior pulse overlaps its fall: 0 → −A → 0
        a_pel = (0.7 if poor else 1.0) * A
        ant = sc.train(a_pel)
        post = PulseTrain(sc.t0 + sc.rise + sc.hold, 2 * sc.rise, sc.hold, sc.rise, -sc.amp_factor * a_pel)
        follow = 0.5 if poor else 0.05  # fraction of the pelvic tilt the thorax follows
        ap, ml, _, _ = _sway(sway_rng, p)
        bounds = np.stack([sc.t0, sc.t0 + sc.rise + 0.5 * sc.hold, post.t_end], 1)
        attrs.update(posture="standing", thorax_follow_fraction=follow)

        def channels(t: np.ndarray) -> Channels:
            pel = ant(t) + post(t)
            return Channels(len(t), sway_ap=ap(t), sway_ml=ml(t), pelvis_sag=pel, lumbar_flex=pel * (follow - 1.0))

        return _finish(p, attrs, n, channels, standing_ankle, None, bounds, ev0)

    if p.movement == "sitting-knee-extension":
        rep_s = 2 * T + d.hold_s + d.rest_s
        n = _resolve_reps(p, rep_s, cv, d.reps)
        sc = _schedule(rep_rng, n, T, d.hold_s, T, d.rest_s, cv)
        ap, ml, _, _ = _sway(sway_rng, p)
        right = (np.arange(n) % 2) == 0
        lift = 3.0 * D2R  # the moving thigh rises a little off the seat
        lift_r = sc.train(np.where(right, lift, 0.0))
        lift_l = sc.train(np.where(right, 0.0, lift))
        if poor:  # hamstring tension pulls the pelvis back; the thorax stays upright
            lum = sc.train(12.0 * D2R, rise_window=(0.3, 1.0))
        else:
            lum = PulseTrain(sc.t0, sc.rise, sc.hold, sc.fall, _wobble(wob_rng, n, 0.7, 2.0))
        # the working knee extends from the right angle (shank hanging vertical) by the amplitude, on the
        # repetitions' own schedule; the resting leg keeps its foot hanging (knee 90°)
        ext_amp = _knee_amp(sc, A, poor, cv)
        ext_r = PulseTrain(sc.t0, sc.rise, sc.hold, sc.fall, np.where(right, ext_amp, 0.0))
        ext_l = PulseTrain(sc.t0, sc.rise, sc.hold, sc.fall, np.where(right, 0.0, ext_amp))
        bounds = np.stack([sc.t0, sc.t0 + sc.rise + 0.5 * sc.hold, sc.t_end], 1)
        attrs.update(posture="sitting")
        thigh = -np.pi / 2

        def channels(t: np.ndarray) -> Channels:
            m = len(t)
            lf = lum(t)
            return Channels(m, thigh_sag=Jet.const(thigh, m), lift_left=lift_l(t), lift_right=lift_r(t),
                            pelvis_sag=0.4 * ap(t) - lf, pelvis_lat=0.4 * ml(t), lumbar_flex=lf,
                            knee_left=np.pi / 2 - ext_l(t), knee_right=np.pi / 2 - ext_r(t))

        return _finish(p, attrs, n, channels, standing_ankle, None, bounds, ev0,
                       ["right leg" if r else "left leg" for r in right])

    if p.movement == "one-leg-stance":
        shift_s = 1.5
        rep_s = 2 * shift_s + d.hold_s + T + d.rest_s
        n = _resolve_reps(p, rep_s, cv, d.reps)
        # weight shift over shift_s, lift over T inside the stance, hold, lower, shift back
        sc = _schedule(rep_rng, n, shift_s, d.hold_s + T, shift_s, d.rest_s, cv)
        lift_left_rep = (np.arange(n) % 2) == 0  # stand on the right leg first
        side = np.where(lift_left_rep, 1.0, -1.0)  # +1: stance right
        stance = sc.train(1.0)
        shift_y = sc.train(-0.05 * side)  # hip centre moves over the stance foot (−y is right)
        t_lift0 = sc.t0 + 0.6 * sc.rise
        lift_kw = dict(t0=t_lift0, rise=np.full(n, T), hold=sc.hold + 0.4 * sc.rise - T, fall=np.full(n, T))
        lift_l = PulseTrain(amp=np.where(lift_left_rep, A, 0.0) * sc.amp_factor, **lift_kw)
        lift_r = PulseTrain(amp=np.where(lift_left_rep, 0.0, A) * sc.amp_factor, **lift_kw)
        ap, ml, _, _ = _sway(sway_rng, p, 1.5 if poor else 1.0)
        trunk_rms = 1.5 if poor else 0.4  # deg, lateral trunk sway while on one leg
        trunk = Tabulated(SumOfSines.random(sway_rng, trunk_rms * D2R, 0.5, 0.1, 3.0), _t_end(p))
        drop = (6.0 if poor else 1.0) * D2R  # pelvis drops on the lifted side (Trendelenburg)
        lean = (6.0 if poor else 1.0) * D2R  # compensating trunk lean over the stance leg
        pel_lat = sc.train(-drop * side)  # stance right: the left side drops (superior axis to the left)
        lum_lat = sc.train(lean * side)
        bounds = np.stack([sc.t0, sc.t0 + sc.rise + 0.5 * sc.hold, sc.t_end], 1)
        attrs.update(posture="standing", pelvic_drop_deg=drop / D2R, trunk_lean_deg=lean / D2R,
                     trunk_sway_rms_deg=trunk_rms)

        def channels(t: np.ndarray) -> Channels:
            m = len(t)
            u = stance(t)
            ll, lr = lift_l(t), lift_r(t)
            # the lifted leg's knee bends with its hip; the stance knee stays straight
            return Channels(m, sway_ap=ap(t) * (1.0 + 1.0 * u), sway_ml=ml(t) * (1.0 + 2.0 * u),
                            lift_left=ll, lift_right=lr, shift_y=shift_y(t),
                            pelvis_lat=pel_lat(t), lumbar_lat=lum_lat(t) + trunk(t) * u,
                            knee_left=OLS_KNEE_PER_HIP * ll, knee_right=OLS_KNEE_PER_HIP * lr)

        return _finish(p, attrs, n, channels, standing_ankle, None, bounds, ev0,
                       ["stance right" if s > 0 else "stance left" for s in side])

    if p.movement == "sit-to-stand":
        t_up = 2.0 * T
        t_down = 1.2 * t_up
        rep_s = t_up + d.hold_s + t_down + d.rest_s
        n = _resolve_reps(p, rep_s, cv, d.reps)
        sc = _schedule(rep_rng, n, t_up, d.hold_s, t_down, d.rest_s, cv)
        up = sc.train(1.0)
        f_l = 0.6 if poor else 0.2  # lumbar part of the forward lean
        t_sd = sc.t0 + sc.rise + sc.hold
        lean = [PulseTrain(sc.t0, sc.rise / 2, np.zeros(n), sc.rise / 2, sc.amp_factor * A),
                PulseTrain(t_sd, sc.fall / 2, np.zeros(n), sc.fall / 2, sc.amp_factor * A)]
        knee = [PulseTrain(sc.t0, sc.rise / 2, np.zeros(n), sc.rise / 2, np.full(n, 12.0 * D2R)),
                PulseTrain(t_sd, sc.fall / 2, np.zeros(n), sc.fall / 2, np.full(n, 12.0 * D2R))]
        ap, ml, _, _ = _sway(sway_rng, p)
        bounds = np.stack([sc.t0, sc.t0 + sc.rise + 0.5 * sc.hold, sc.t_end], 1)
        attrs.update(posture="sitting", lumbar_share_of_lean=f_l)

        def channels(t: np.ndarray) -> Channels:
            m = len(t)
            u = up(t)
            le = lean[0](t) + lean[1](t)
            return Channels(m, sway_ap=ap(t) * u, sway_ml=ml(t) * u, thigh_sag=(u - 1.0) * (np.pi / 2),
                            shank_sag=knee[0](t) + knee[1](t), pelvis_sag=le * (1.0 - f_l), lumbar_flex=le * f_l)

        return _finish(p, attrs, n, channels, standing_ankle, None, bounds, ev0)

    if p.movement == "rocking":
        # The first half of the repetitions (the odd one included) rock backward, the rest forward; each
        # way with the same rhythm (out, hold, back, rest), so the forward rock is slower in deg/s.
        rep_s = 2 * T + d.hold_s + d.rest_s
        n = _resolve_reps(p, rep_s, cv, d.reps)
        sc = _schedule(rep_rng, n, T, d.hold_s, T, d.rest_s, cv)
        backward = np.arange(n) < (n + 1) // 2
        A_fwd = ROCK_FORWARD_RATIO * A
        back = sc.train(np.where(backward, A, 0.0))
        fwd = sc.train(np.where(backward, 0.0, A_fwd))
        if poor:
            # backward: the pelvis tilts back near the end of the rock and the lumbar spine flexes;
            # forward: the pelvis tips forward and the lumbar spine extends (the low back sags)
            lum = sc.train(np.where(backward, 1.0, -1.0) * ROCK_LEAK_DEG * D2R, rise_window=(0.4, 1.0),
                           fall_window=(0.0, 0.6))
        else:
            lum = PulseTrain(sc.t0, sc.rise, sc.hold, sc.fall, _wobble(wob_rng, n, 0.7, 2.0))
        ap, ml, _, _ = _sway(sway_rng, p)
        bounds = np.stack([sc.t0, sc.t0 + sc.rise + 0.5 * sc.hold, sc.t_end], 1)
        n_back = int(backward.sum())
        attrs.update(posture="four-point kneeling", reps_backward=n_back, reps_forward=int(n - n_back),
                     forward_amplitude_deg=float(A_fwd / D2R), lumbar_leak_deg=ROCK_LEAK_DEG if poor else 0.0)

        def channels(t: np.ndarray) -> Channels:
            m = len(t)
            # thigh rotation about the knees: backward (hip flexion) −, forward (hip extension) +; the
            # pelvis and the trunk above it follow ROCK_PELVIS_SHARE of it (docs/emulated-patient.md)
            rock = fwd(t) - back(t)
            lf = lum(t)
            # the shanks lie on the floor behind the knees (superior axis forward): the knees flex
            # 90° − rock, more as the hips go back towards the heels
            return Channels(m, thigh_sag=rock, pelvis_sag=np.pi / 2 + ROCK_PELVIS_SHARE * rock - lf + 0.3 * ap(t),
                            pelvis_lat=0.3 * ml(t), lumbar_flex=lf, shank_sag=Jet.const(np.pi / 2, m))

        return _finish(p, attrs, n, channels, np.array([0.0, 0.0, 0.05]), 0.0, bounds, ev0,
                       ["backward" if b else "forward" for b in backward])

    if p.movement == "prone-knee-bend":
        # Prone lying: pelvis and lumbar segment horizontal, face down (superior axis → +x, anterior → −z),
        # thighs flat on the table (superior axis → +x). The midline chain starts at the knees (shank length
        # 0), on the table at 9 cm (joint centre height), so the hip centre is 0.45 m ahead of them at the
        # same height; the legs' shanks hang from the knees and lie on the table towards −x (superior axis
        # → +x, back of the leg up) until the working knee bends. The start posture is the calibration
        # posture: every analysed angle is zero there.
        rep_s = 2 * T + d.hold_s + d.rest_s
        n = _resolve_reps(p, rep_s, cv, d.reps)
        sc = _schedule(rep_rng, n, T, d.hold_s, T, d.rest_s, cv)
        right = (np.arange(n) % 2) == 0  # right knee first, then alternating
        side = np.where(right, 1.0, -1.0)
        # the working thigh's knee rises ~1° (≈ 8 mm) off the table as the hamstrings contract:
        # hip extension, i.e. negative "lift" (hip flexion would push the knee into the table)
        knee_up = -1.0 * D2R
        lift_r = sc.train(np.where(right, knee_up, 0.0))
        lift_l = sc.train(np.where(right, 0.0, knee_up))
        if poor:
            # Rectus femoris tension past ~40 % of the knee bend tilts the pelvis forward (anterior tilt
            # about the ASIS contact: the buttocks and hip joints rise) and the lumbar spine extends;
            # the pelvis rotates, the working side rising off the table; the thorax stays on the table,
            # so the lumbar segment counter-rotates. Magnitudes: a clearly visible compensation (see
            # docs/emulated-patient.md), above the 10° placeholder θ_tol of METRICS.md §2.6.
            ext, tilt, rot = 15.0 * D2R, 10.0 * D2R, 6.0 * D2R
            w = dict(rise_window=(0.4, 1.0), fall_window=(0.0, 0.6))
            lum = sc.train(-ext, **w)
            pel = sc.train(tilt, **w)
            pel_ax = sc.train(-rot * side, **w)  # +axial rotation lowers the right side (see body.py)
        else:
            ext, tilt, rot = 0.0, 0.0, 0.0
            lum = PulseTrain(sc.t0, sc.rise, sc.hold, sc.fall, _wobble(wob_rng, n, 0.7, 2.0))
            pel = PulseTrain(sc.t0, sc.rise, sc.hold, sc.fall, _wobble(wob_rng, n, 0.3, 1.0))
            pel_ax = PulseTrain(sc.t0, sc.rise, sc.hold, sc.fall, _wobble(wob_rng, n, 0.3, 1.0) * side)
        # lying still: no balance sway, only a small residual motion (breathing, settling) on the pelvis
        ap, ml, _, _ = _sway(sway_rng, p)
        # pelvis pivots about its table contact ≈ 8 cm superior to the hip centres: the hips rise by
        # ≈ 0.08 m · sin(tilt), which tips the thighs up by ≈ 0.08/0.45 of the tilt (knees stay down)
        hip_rise = 0.08 / 0.45
        # The working knee bends from straight by the amplitude. The resting leg's shank stays on the table,
        # so its knee flexes by what tips its thigh up (the hip rise of the other leg's repetitions).
        bend_amp = _knee_amp(sc, A, poor, cv)
        bend_r = PulseTrain(sc.t0, sc.rise, sc.hold, sc.fall, np.where(right, bend_amp, 0.0))
        bend_l = PulseTrain(sc.t0, sc.rise, sc.hold, sc.fall, np.where(right, 0.0, bend_amp))
        pel_kw = dict(rise_window=pel.rise_window, fall_window=pel.fall_window)
        pel_when_l = PulseTrain(pel.t0, pel.rise, pel.hold, pel.fall, np.where(right, 0.0, pel.amp), **pel_kw)
        pel_when_r = PulseTrain(pel.t0, pel.rise, pel.hold, pel.fall, np.where(right, pel.amp, 0.0), **pel_kw)
        bounds = np.stack([sc.t0, sc.t0 + sc.rise + 0.5 * sc.hold, sc.t_end], 1)
        attrs.update(posture="prone lying", lumbar_extension_deg=ext / D2R, pelvic_anterior_tilt_deg=tilt / D2R,
                     pelvic_rotation_deg=rot / D2R)

        def channels(t: np.ndarray) -> Channels:
            m = len(t)
            pt = pel(t)
            pa = pel_ax(t)
            return Channels(m, thigh_sag=np.pi / 2 - hip_rise * pt, lift_left=lift_l(t), lift_right=lift_r(t),
                            pelvis_sag=np.pi / 2 + pt + 0.1 * ap(t), pelvis_lat=0.1 * ml(t), pelvis_ax=pa,
                            lumbar_flex=lum(t), lumbar_ax=-pa, shank_sag=Jet.const(np.pi / 2, m),
                            knee_left=bend_l(t) + hip_rise * pel_when_r(t),
                            knee_right=bend_r(t) + hip_rise * pel_when_l(t))

        return _finish(p, attrs, n, channels, np.array([0.0, 0.0, 0.09]), 0.0, bounds, ev0,
                       ["right knee" if r else "left knee" for r in right])

    raise SimulationError(f"unknown movement {p.movement!r}")  # pragma: no cover (validated earlier)


def _finish(p: MovementParams, attrs: dict, n: int, channels, ankle, shank, bounds, ev0, notes=None) -> Plan:
    attrs["reps"] = int(n)
    events = ev0 + _rep_events(bounds, notes) + [Event(p.duration_s, "trial_end")]
    return Plan(channels, ankle, shank, bounds, events, attrs)
