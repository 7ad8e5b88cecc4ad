"""The public entry point :func:`simulate`: movement → body kinematics → IMU signals + truth."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from lumbar.conventions import cardan_zxy, lumbar_angles_from_matrix
from lumbar.errors import SimulationError
from lumbar.simulate.body import R_E0, SEGMENTS, SENSOR_SEGMENT, SHANK_SEGMENTS, BodyGeometry, evaluate_body
from lumbar.simulate.imu_model import ImuErrorModel, apply_imu_errors, sample_times, sensor_rng
from lumbar.simulate.movements import EYES, MOVEMENTS, QUALITIES, SURFACES, MovementParams, Plan, build_plan
from lumbar.simulate.truth import Truth
from lumbar.types import STANDARD_G, Event, ImuBatch, SensorInfo, SessionInfo

__all__ = ["simulate", "SimulatedSession"]

#: Samples evaluated per block (bounds memory: a few (n, 3, 3) arrays per block).
CHUNK = 65536
#: Longest trial, s.
MAX_DURATION_S = 4 * 3600.0
_G_EARTH = np.array([0.0, 0.0, STANDARD_G])


@dataclass
class SimulatedSession:
    """Output of :func:`simulate`.

    Attributes
    ----------
    sensors : dict[str, SensorInfo]
        Metadata per sensor, keyed by placement.
    batches : dict[str, ImuBatch]
        The measured samples per sensor (one batch each).
    events : list[Event]
        trial_start, calibration_end, rep_start / rep_peak / rep_end per repetition, trial_end.
    truth : Truth
        Ground truth (see :mod:`lumbar.simulate.truth`).
    """

    sensors: dict[str, SensorInfo]
    batches: dict[str, ImuBatch]
    events: list[Event]
    truth: Truth

    @property
    def movement(self) -> str:
        return str(self.truth.attrs()["movement"])

    def session_info(self, subject_code: str = "EMU001", operator: str = "") -> SessionInfo:
        """Session metadata for writing this emulated session to a file."""
        a = self.truth.attrs()
        notes = (f"emulated patient: movement={a['movement']}, quality={a['quality']}, seed={a['seed']}, "
                 f"duration={a['duration_s']:g} s")
        if a["movement"] == "quiet-standing":
            from lumbar.protocols.registry import conditions_text  # the words the protocols read back

            notes += ", " + conditions_text({"eyes": a["eyes"], "surface": a.get("surface", "firm")})
        return SessionInfo(subject_code=subject_code, operator=operator, protocol=a["movement"], notes=notes)


def _quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrices (N, 3, 3) → unit quaternions (N, 4), (w, x, y, z), w ≥ 0.

    Shepperd's method: each sample uses the largest of the four candidate divisors, so no
    component loses precision (a plain square root of each diagonal combination would lose
    half the digits near zero). Vectorised here because scipy's conversion dominated the run
    time of long simulations.
    """
    m00, m11, m22 = m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]
    tr = m00 + m11 + m22
    choice = np.argmax(np.stack([tr, m00, m11, m22], 1), axis=1)
    q = np.empty((m.shape[0], 4))
    d21, d02, d10 = m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0], m[:, 1, 0] - m[:, 0, 1]
    s01, s02, s12 = m[:, 0, 1] + m[:, 1, 0], m[:, 0, 2] + m[:, 2, 0], m[:, 1, 2] + m[:, 2, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        cands = []
        r = np.sqrt(np.maximum(1.0 + tr, 0.0))
        cands.append(np.stack([0.5 * r, 0.5 * d21 / r, 0.5 * d02 / r, 0.5 * d10 / r], 1))
        r = np.sqrt(np.maximum(1.0 + m00 - m11 - m22, 0.0))
        cands.append(np.stack([0.5 * d21 / r, 0.5 * r, 0.5 * s01 / r, 0.5 * s02 / r], 1))
        r = np.sqrt(np.maximum(1.0 - m00 + m11 - m22, 0.0))
        cands.append(np.stack([0.5 * d02 / r, 0.5 * s01 / r, 0.5 * r, 0.5 * s12 / r], 1))
        r = np.sqrt(np.maximum(1.0 - m00 - m11 + m22, 0.0))
        cands.append(np.stack([0.5 * d10 / r, 0.5 * s02 / r, 0.5 * s12 / r, 0.5 * r], 1))
    for c in range(4):
        sel = choice == c
        q[sel] = cands[c][sel]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return np.where(q[:, :1] < 0, -q, q)


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise SimulationError(msg)


def _segment_kinematics(plan: Plan, geom: BodyGeometry, t: np.ndarray, segment: str,
                        offset_m: np.ndarray | None = None):
    """Orientation R (n,3,3), body rate w (n,3), and the point at ``offset_m`` (p, a) for one segment."""
    R = np.empty((t.shape[0], 3, 3))
    w = np.empty((t.shape[0], 3))
    p = np.empty((t.shape[0], 3))
    a = np.empty((t.shape[0], 3))
    for s in range(0, t.shape[0], CHUNK):
        sl = slice(s, s + CHUNK)
        body = evaluate_body(plan.channels(t[sl]), geom, plan.ankle_m, plan.shank_length_m, (segment,))
        rot = body.rot[segment]
        pt = body.origin[segment] if offset_m is None else body.origin[segment].offset(rot, offset_m)
        R[sl], w[sl], p[sl], a[sl] = rot.matrices, rot.w.T, pt.p.T, pt.a.T
    return R, w, p, a


def _nominal_truth(plan: Plan, geom: BodyGeometry, t: np.ndarray, knees: bool = False) -> dict[str, np.ndarray]:
    """Segment-level truth on the nominal grid ``t`` (N,); ``knees`` adds the shanks and knee flexion
    (only sessions with a shank sensor carry them, so the others stay as they were)."""
    n = t.shape[0]
    segments = SEGMENTS if knees else tuple(s for s in SEGMENTS if s not in SHANK_SEGMENTS)
    out: dict[str, np.ndarray] = {"time_s": t}
    Rs = {s: np.empty((n, 3, 3)) for s in segments}
    pos = {s: np.empty((n, 3)) for s in segments}
    sway = np.empty((n, 2))
    com = np.empty((n, 3))
    knee = np.empty((n, 2))
    for s0 in range(0, n, CHUNK):
        sl = slice(s0, s0 + CHUNK)
        ch = plan.channels(t[sl])
        body = evaluate_body(ch, geom, plan.ankle_m, plan.shank_length_m, segments)
        for s in segments:
            Rs[s][sl] = body.rot[s].matrices
            pos[s][sl] = body.origin[s].p.T
        sway[sl, 0] = ch.sway_ap.v
        sway[sl, 1] = ch.sway_ml.v
        com[sl] = body.com_m.T
        knee[sl, 0] = ch.knee_left.v
        knee[sl, 1] = ch.knee_right.v
    for s in segments:
        out[f"segment/{s}/quat"] = _quat(Rs[s])
        out[f"segment/{s}/position_m"] = pos[s]
    out["lumbar_angles_rad"] = lumbar_angles_from_matrix(np.swapaxes(Rs["pelvis"], -1, -2) @ Rs["lumbar"])

    def inclination(R: np.ndarray) -> np.ndarray:
        alpha, _, _ = cardan_zxy(R_E0.T @ R)  # relative to the upright neutral orientation
        return -alpha

    out["pelvis_tilt_rad"] = inclination(Rs["pelvis"])
    out["trunk_inclination_rad"] = inclination(Rs["lumbar"])
    out["thigh_inclination_rad"] = np.stack([inclination(Rs["thigh_left"]), inclination(Rs["thigh_right"])], 1)
    if knees:
        # wrapped to (−π, π] like the others: a shank turned past upside-down (prone, knee > 90°) jumps by 2π
        out["shank_inclination_rad"] = np.stack([inclination(Rs["shank_left"]), inclination(Rs["shank_right"])], 1)
        out["knee_flexion_rad"] = knee  # the channels themselves: continuous, 0 = straight leg
    out["sway/ap_ml_rad"] = sway
    out["sway/ap_ml_m"] = np.stack([com[:, 0] - plan.ankle_m[0], -(com[:, 1] - plan.ankle_m[1])], 1)
    out["rep_bounds_s"] = np.asarray(plan.rep_bounds_s, dtype=np.float64).reshape(-1, 3)
    return out


def simulate(
    movement: str,
    duration_s: float = 60.0,
    seed: int = 1,
    reps: int | None = None,
    amplitude_deg: float | None = None,
    speed_dps: float | None = None,
    quality: str = "good",
    sensors: Sequence[str] = ("lumbar", "sacrum"),
    rate_hz: float = 100.0,
    eyes: str = "open",
    imu: ImuErrorModel | None = None,
    misalignment_deg: Mapping[str, Sequence[float]] | None = None,
    *,
    lumbar_share: float | None = None,
    variability: float | None = None,
    sway_scale: float = 1.0,
    geometry: BodyGeometry | None = None,
    surface: str = "firm",
) -> SimulatedSession:
    """Emulate a patient performing ``movement`` with IMUs at the given placements.

    Parameters
    ----------
    movement : str
        One of :data:`MOVEMENTS` (``"quiet-standing"``, ``"flexion"``, …).
    duration_s : float
        Trial length, s (5 s still in the start posture come first).
    seed : int
        Seed of every random choice (movement variability, sway, sensor errors).
    reps : int, optional
        Repetitions; default: the movement's default or as many as fit, if fewer.
    amplitude_deg : float, optional
        Amplitude of the movement's primary angle, deg (quiet standing: AP sway RMS).
    speed_dps : float, optional
        Mean angular speed of the primary angle during the out and back phases, deg/s.
    quality : {"good", "poor"}
        Motor control quality (see ``docs/emulated-patient.md`` for what "poor" does per movement).
    sensors : sequence of str
        Placements among ``lumbar``, ``sacrum``, ``thigh_left``, ``thigh_right``, ``shank_left``,
        ``shank_right`` (lateral mid-shank; with either, the truth adds the shanks and the knee flexion).
    rate_hz : float
        Output data rate of every sensor, Hz.
    eyes : {"open", "closed"}
        Scales the sway amplitude (closed: ×1.35).
    imu : ImuErrorModel, optional
        Sensor error model; default :meth:`ImuErrorModel.commodity`.
    misalignment_deg : dict[str, (3,)], optional
        Mounting misalignment per placement, a rotation vector in degrees in the segment
        frame: ``R_segment→sensor frame`` is such that ``q_sensor = q_segment ⊗ q_mis``.
        Placements not given get a random one with σ = ``imu.misalignment_sigma_deg`` per axis.
    lumbar_share : float, optional
        Flexion only: lumbar part of the trunk inclination at the peak, in [0, 1]
        (default 0.6 good, 0.35 poor). Lumbar:pelvic ratio = share / (1 − share).
    variability : float, optional
        Coefficient of variation of repetition amplitude and timing (default 0.05 good, 0.12 poor).
    sway_scale : float
        Multiplies the postural sway (0: none, so a still posture is exactly static).
    geometry : BodyGeometry, optional
        Segment lengths and mounting points.
    surface : {"firm", "foam"}
        Quiet standing only: standing on a foam pad scales the sway (×1.6 eyes open, ×3.2 eyes
        closed, relative to firm eyes open; ``docs/emulated-patient.md``).

    Returns
    -------
    SimulatedSession

    Raises
    ------
    SimulationError
        Unknown movement, quality, eyes or sensor; repetitions that do not fit the duration;
        out-of-range numbers.
    """
    _check(isinstance(movement, str) and movement in MOVEMENTS,
           f"unknown movement {movement!r}; choose one of: {', '.join(MOVEMENTS)}")
    _check(quality in QUALITIES, f"unknown quality {quality!r}; choose 'good' or 'poor'")
    _check(eyes in EYES, f"unknown eyes setting {eyes!r}; choose 'open' or 'closed'")
    _check(surface in SURFACES, f"unknown surface {surface!r}; choose 'firm' or 'foam'")
    _check(surface == "firm" or movement == "quiet-standing",
           f"surface 'foam' applies only to 'quiet-standing' (the emulated patient does {movement!r} on a firm surface)")
    # 4 h keeps the truth arrays of a few sensors at 200 Hz within a few GB of memory
    _check(isinstance(duration_s, (int, float)) and math.isfinite(duration_s) and 0 < duration_s <= MAX_DURATION_S,
           f"duration_s must be a number of seconds in (0, {MAX_DURATION_S:g}]; got {duration_s!r}")
    _check(isinstance(rate_hz, (int, float)) and math.isfinite(rate_hz) and 1.0 <= rate_hz <= 2000.0,
           f"rate_hz must be between 1 and 2000 Hz; got {rate_hz!r}")
    _check(isinstance(seed, (int, np.integer)) and int(seed) >= 0, f"seed must be a non-negative integer; got {seed!r}")
    sensors = tuple(sensors)
    _check(len(sensors) > 0, "at least one sensor placement is needed")
    for s in sensors:
        _check(s in SENSOR_SEGMENT,
               f"unknown sensor placement {s!r}; the emulated patient carries: {', '.join(SENSOR_SEGMENT)}")
    _check(len(set(sensors)) == len(sensors), f"sensor placements repeat: {list(sensors)}")
    if reps is not None:
        _check(isinstance(reps, (int, np.integer)) and reps >= 0, f"reps must be a non-negative integer; got {reps!r}")
        _check(reps > 0 or movement == "quiet-standing", f"reps must be at least 1 for {movement!r}; got {reps}")
    if amplitude_deg is not None:
        _check(math.isfinite(amplitude_deg) and 0 < amplitude_deg <= 120,
               f"amplitude_deg must be in (0, 120] degrees; got {amplitude_deg!r}")
    if speed_dps is not None:
        _check(math.isfinite(speed_dps) and 1 <= speed_dps <= 500, f"speed_dps must be in [1, 500] deg/s; got {speed_dps!r}")
    if lumbar_share is not None:
        _check(movement == "flexion", "lumbar_share applies only to 'flexion'")
        _check(0.0 <= lumbar_share < 1.0, f"lumbar_share must be in [0, 1); got {lumbar_share!r}")
    if variability is not None:
        _check(0.0 <= variability <= 0.3, f"variability must be in [0, 0.3]; got {variability!r}")
    _check(math.isfinite(sway_scale) and 0.0 <= sway_scale <= 10.0, f"sway_scale must be in [0, 10]; got {sway_scale!r}")
    imu = ImuErrorModel.commodity() if imu is None else imu
    _check(isinstance(imu, ImuErrorModel), f"imu must be an ImuErrorModel; got {type(imu).__name__}")
    geom = geometry or BodyGeometry()
    mis_given = dict(misalignment_deg or {})
    for k, v in mis_given.items():
        _check(k in sensors, f"misalignment_deg names {k!r}, which is not among the sensors {list(sensors)}")
        arr = np.asarray(v, dtype=np.float64)
        _check(arr.shape == (3,) and np.all(np.isfinite(arr)) and np.linalg.norm(arr) <= 90.0,
               f"misalignment_deg[{k!r}] must be a rotation vector of 3 finite degrees (≤ 90° in total); got {v!r}")

    seed = int(seed)
    params = MovementParams(movement, float(duration_s), None if reps is None else int(reps), amplitude_deg,
                            speed_dps, quality, eyes, variability, lumbar_share, float(sway_scale), surface)
    plan = build_plan(params, np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,))))

    n = int(round(duration_s * rate_hz))
    _check(n >= 2, f"duration_s × rate_hz gives {n} samples; need at least 2")
    t_nom = np.arange(n) / rate_hz
    arrays = _nominal_truth(plan, geom, t_nom, knees=any(SENSOR_SEGMENT[s] in SHANK_SEGMENTS for s in sensors))

    infos: dict[str, SensorInfo] = {}
    batches: dict[str, ImuBatch] = {}
    attrs: dict[str, Any] = dict(plan.attrs)
    attrs.update(seed=seed, duration_s=float(duration_s), rate_hz=float(rate_hz), g_mps2=STANDARD_G,
                 sensors=",".join(sensors), earth_frame="x forward, y left, z up; origin between the ankles",
                 quaternion_convention="w,x,y,z; sensor/segment -> earth",
                 misalignment_convention="q_sensor = q_segment * q_mis, rotation vector in the segment frame")
    for k, v in imu.to_dict().items():
        attrs[f"imu/{k}"] = v
    for k, v in geom.__dict__.items():
        attrs[f"geometry/{k}"] = ",".join(f"{x:g}" for x in v) if isinstance(v, tuple) else v

    from scipy.spatial.transform import Rotation  # here, not at import: keeps `import lumbar.simulate` light

    for s in sensors:
        seg = SENSOR_SEGMENT[s]
        if s in mis_given:
            mis = np.asarray(mis_given[s], dtype=np.float64)
        else:
            mis = sensor_rng(seed, s, "misalignment").standard_normal(3) * imu.misalignment_sigma_deg
        M = Rotation.from_rotvec(np.deg2rad(mis)).as_matrix()  # sensor frame → segment frame
        t, dev, drift = sample_times(imu, n, rate_hz, seed, s)
        R, w, p, a = _segment_kinematics(plan, geom, t, seg, geom.sensor_offset(s))
        R_s = R @ M
        gyro_true = w @ M  # Mᵀ w for row vectors
        acc_true = np.einsum("nji,nj->ni", R_s, a + _G_EARTH)  # R_ESᵀ (a + g e_z)
        acc, gyro, flags, errs = apply_imu_errors(imu, acc_true, gyro_true, rate_hz, seed, s)
        batches[s] = ImuBatch(sensor_id=s, time_s=t, device_time_s=dev, acc=acc, gyro=gyro,
                              seq=np.arange(n, dtype=np.int64), flags=flags)
        infos[s] = SensorInfo(sensor_id=s, placement=s, family="emulated", model=f"emulated {imu.model}",
                              address=f"emulated:{s}", firmware="lumbar.simulate", nominal_rate_hz=float(rate_hz),
                              acc_range_mps2=float(imu.acc_range_mps2), gyro_range_rads=float(imu.gyro_range_rads))
        pre = f"sensor/{s}/"
        arrays.update({
            pre + "time_s": t,
            pre + "quat": _quat(R_s),
            pre + "position_m": p,
            pre + "gyro_true_rads": gyro_true,
            pre + "acc_true_mps2": acc_true,
            pre + "gyro_bias_rads": errs.gyro_bias,
            pre + "acc_bias_mps2": errs.acc_bias,
            pre + "gyro_matrix": errs.gyro_matrix,
            pre + "acc_matrix": errs.acc_matrix,
            pre + "misalignment_deg": mis,
        })
        attrs[pre + "segment"] = seg
        attrs[pre + "clock_drift_ppm"] = drift * 1e6
    return SimulatedSession(infos, batches, list(plan.events), Truth(arrays, attrs))
