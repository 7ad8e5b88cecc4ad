"""Emulated-patient evaluation shared by the accuracy tests and ``tests/benchmarks/sweep_emulated.py``.

One *set* = one simulated trial (movement, quality, seed) analysed end to end in memory: simulate →
:func:`lumbar.pipeline.process_session` → :func:`lumbar.analysis.analyze`, and the same quantities
computed from the emulator's ground truth (``sim.truth``), independently of the pipeline:

* repetition count: ``len(truth.rep_bounds_s)``, against the count of both directions' sets when the
  plan counts repetitions both ways from rest (rocking: backward, then forward);
* ROM of each repetition: the true principal angle (``trunk_inclination_rad`` or ``pelvis_tilt_rad``)
  from the repetition's true start to its largest excursion; for the biphasic pelvic tilt the range
  (anterior peak to posterior peak);
* lumbo-pelvic ratio: ΔL/ΔP from the true start to peak true trunk inclination, per repetition;
* sway: the **true specific force** at the sacral sensor (``sensor/sacrum/acc_true_mps2``: exact
  kinematics with gravity, before any sensor error) through the same sway pipeline as the measured
  acceleration, over the same part of the trial.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lumbar.analysis import analyze, load_plans
from lumbar.metrics import sway
from lumbar.pipeline import process_session
from lumbar.simulate import simulate
from lumbar.storage.reader import Session
from lumbar.types import SessionInfo

#: Truth signal of each movement's principal angle (None: no repetitions to count).
TRUTH_PRINCIPAL = {
    "flexion": "trunk_inclination_rad",
    "waiters-bow": "pelvis_tilt_rad",
    "pelvic-tilt": "pelvis_tilt_rad",
    "rocking": "pelvis_tilt_rad",
    "sit-to-stand": "trunk_inclination_rad",
}
BIPHASIC = ("pelvic-tilt",)
MOVEMENTS = ("quiet-standing", "flexion", "pelvic-tilt", "waiters-bow", "sitting-knee-extension",
             "one-leg-stance", "sit-to-stand", "rocking")


def session_from_sim(sim, movement: str) -> Session:
    """An in-memory session as the file writer would store it (no repetition markers)."""
    events = [e for e in sim.events if not e.label.startswith("rep_")]
    return Session(path=Path(f"<emulated {movement}>"), info=SessionInfo(subject_code="SIM001", protocol=movement),
                   sensors=dict(sim.sensors), data=dict(sim.batches), events=events, format_version=1, complete=True)


@dataclass
class SetResult:
    movement: str
    quality: str
    seed: int
    analysis: object
    processed: object
    sim: object
    count: int | None = None
    true_count: int | None = None
    rom_err_deg: list[float] = field(default_factory=list)
    ratio: float = math.nan
    true_ratio: float = math.nan
    rep_ratio_err: list[float] = field(default_factory=list)
    sway_rel_err: dict[str, float] = field(default_factory=dict)


def _match(meas_peaks_s: np.ndarray, bounds: np.ndarray) -> list[int | None]:
    """For each true repetition, the measured repetition whose peak lies in its window."""
    out: list[int | None] = []
    for t0, _, t1 in bounds:
        hit = np.flatnonzero((meas_peaks_s >= t0) & (meas_peaks_s <= t1))
        out.append(int(hit[0]) if hit.size else None)
    return out


def true_rom(theta: np.ndarray, t: np.ndarray, t0: float, t1: float, sign: int, biphasic: bool) -> float:
    w = (t >= t0) & (t <= t1)
    x = sign * theta[w]
    if biphasic:
        return float(x.max() - x.min())
    return float(x.max() - x[0])


def true_ratio(lum: np.ndarray, pel: np.ndarray, trunk: np.ndarray, t: np.ndarray, t0: float, t1: float) -> float:
    w = np.flatnonzero((t >= t0) & (t <= t1))
    i0, ip = w[0], w[np.argmax(trunk[w])]
    return float((lum[ip] - lum[i0]) / (pel[ip] - pel[i0]))


def sway_result(acc: np.ndarray, fs: float):
    return sway.sway_from_acc(acc, fs)


def evaluate(movement: str, quality: str = "good", seed: int = 1, duration_s: float = 60.0, **sim_kw) -> SetResult:
    sim = simulate(movement, duration_s=duration_s, seed=seed, quality=quality, **sim_kw)
    session = session_from_sim(sim, movement)
    processed = process_session(session)
    analysis, processed = analyze(session, processed)
    r = SetResult(movement, quality, seed, analysis, processed, sim)
    tr = sim.truth
    arrays = tr.to_arrays()
    t = arrays["time_s"]
    bounds = arrays["rep_bounds_s"]
    plan = load_plans()[movement]
    if movement in TRUTH_PRINCIPAL and "repetitions" in analysis.results:
        rs = analysis.results["repetitions"]
        theta = arrays[TRUTH_PRINCIPAL[movement]]
        sign = int(analysis.principal_sign) if hasattr(analysis, "principal_sign") else 1
        # both ways from rest (rocking): the opposite direction's set, its ROMs positive the other way
        sets = [(rs, sign)] + ([(analysis.results[f"repetitions_{plan.opposite_direction}"], -sign)]
                               if plan.opposite_direction else [])
        r.count, r.true_count = sum(s.count for s, _ in sets), len(bounds)
        t0 = float(processed.time_s[0])
        every = [(rp, s) for st, s in sets for rp in st.repetitions]
        peaks = np.array([rp.peak_s for rp in rs.repetitions]) + t0
        for k, j in enumerate(_match(np.array([rp.peak_s for rp, _ in every]) + t0, bounds)):
            if j is None:
                continue
            rp, s = every[j]
            meas = rp.range if movement in BIPHASIC else rp.rom
            ref = true_rom(theta, t, bounds[k, 0], bounds[k, 2], s, movement in BIPHASIC)
            r.rom_err_deg.append(math.degrees(meas - ref))
        if plan.rhythm:
            lum, pel = arrays["lumbar_angles_rad"][:, 0], arrays["pelvis_tilt_rad"]
            trunk = arrays["trunk_inclination_rad"]
            ratios = [true_ratio(lum, pel, trunk, t, b[0], b[2]) for b in bounds]
            r.true_ratio = float(np.mean(ratios))
            r.ratio = float(analysis.results["rhythm"].lumbar_pelvic_ratio)
            for k, j in enumerate(_match(peaks, bounds)):
                if j is not None:
                    sh = rs.repetitions[j].lumbar_share_pct
                    r.rep_ratio_err.append(sh / (100.0 - sh) - ratios[k])
    if plan.sway and "sway" in analysis.results:
        fs = processed.rate_hz
        st = sim.truth.to_arrays()
        ts = st["sensor/sacrum/time_s"]
        t_after = processed.time_s[processed.static_window.stop]
        acc_true = st["sensor/sacrum/acc_true_mps2"][ts >= t_after]
        ref = sway_result(acc_true, sim.sensors["sacrum"].nominal_rate_hz)
        meas = analysis.results["sway"]
        for name, a, b in (("rms", meas.combined.rms, ref.combined.rms),
                           ("area_ce", meas.combined.area_ce, ref.combined.area_ce),
                           ("rms_ap", meas.ap.rms, ref.ap.rms), ("rms_ml", meas.ml.rms, ref.ml.rms)):
            r.sway_rel_err[name] = float(a / b - 1.0)
        del fs
    return r


#: The metric that should catch each movement's poor-control mode (docs/emulated-patient.md): name,
#: and how to read it from an analysis. Degrees for angles.
SEPARATION = {
    "quiet-standing": ("sway RMS (m/s^2)", lambda a: a.results["sway"].combined.rms),
    "flexion": ("lumbar:pelvic ratio", lambda a: a.results["rhythm"].lumbar_pelvic_ratio),
    "pelvic-tilt": ("thorax/pelvis dissociation ratio", lambda a: a.results["dissociation"].ratio),
    "waiters-bow": ("lumbar flexion leak (deg)", lambda a: math.degrees(a.results["dissociation"].excursion_b)),
    "sitting-knee-extension": ("lumbar flexion leak (deg)",
                               lambda a: math.degrees(a.results["dissociation"].excursion_b)),
    "one-leg-stance": ("pelvic drop (deg)", lambda a: math.degrees(a.results["frontal_control"].pelvic_drop)),
    "sit-to-stand": ("lumbar share of the lean (%)",
                     lambda a: float(np.mean(a.results["repetitions"].values("lumbar_share_pct")))),
    "rocking": ("lumbar flexion leak rocking backward (deg)",
                lambda a: math.degrees(a.results["dissociation"].excursion_b)),
    "rocking-forward": ("lumbar extension leak rocking forward (deg)",
                        lambda a: math.degrees(a.results["dissociation_forward"].excursion_b)),
}


def separation_metric(r: SetResult, key: str | None = None) -> tuple[str, float]:
    """The separating metric of ``key`` (default: the movement's) on a set."""
    name, get = SEPARATION[key or r.movement]
    return name, float(get(r.analysis))
