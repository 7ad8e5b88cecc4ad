"""Session analysis: the metrics each movement calls for, computed offline from the processed signals.

Which metrics a movement gets is declared in the protocol definitions' ``analysis`` tables
(:func:`load_plans`; principal angle for repetitions, the
moving and controlled segments of a dissociation test, sway or not). ``lumbar analyze`` runs
:func:`analyze_file`: read → :func:`lumbar.pipeline.process_session` → metrics → stored in the file
(``derived`` and ``metrics`` groups) and returned as typed results.
"""
from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from lumbar.metrics import repetitions as reps_mod
from lumbar.metrics import segmental, sway
from lumbar.errors import CalibrationError, ValidationError
from lumbar.metrics.results import DissociationResult, FrontalControl, Result, RhythmSummary
from lumbar.pipeline import LOWER, UPPER, Processed, process_session
from lumbar.sensor_fit import thigh_expected_sign, thigh_turned, turned_thigh_warning
from lumbar.storage.reader import Session, read_session
from lumbar.types import software_version

__all__ = ["AnalysisPlan", "Analysis", "analyze", "analyze_file", "check_thighs", "derived_arrays", "load_plans",
           "read_analysis", "repetition_count", "repetition_sets"]

DEG = math.pi / 180.0


@dataclass(frozen=True)
class AnalysisPlan:
    """What to compute for one movement.

    principal : signal whose repetitions are counted ("trunk_flexion", "pelvic_tilt", "lumbar_flexion",
        "hip_flexion": :meth:`lumbar.pipeline.Processed.signal`) or None when the movement has no repetitions
        our sensors can see.
    moving, controlled : signals of a dissociation test (segment A moves, B should stay still).
    forbidden_sign : only B's motion in this direction counts as a leak (+1 flexion, −1 extension).
    target_deg : the excursion of A that counts as reaching the task's target, degrees.
    ratio_tolerance : largest |ΔB|/|ΔA| that passes (None: only the absolute θ_tol).
    tolerance_deg : θ_tol, the largest |ΔB| that passes, degrees (None: the metrics' default).
    posture : the calibration (start) posture: standing, sitting, prone or four-point-kneeling.
    sway : quiet-standing sway metrics.
    rhythm : lumbo-pelvic rhythm per repetition.
    frontal : frontal-plane control (pelvic drop, trunk lean) of one-leg stance.
    rise_and_sit : a repetition is a rise (trunk leans forward, the body goes up) and the following
        sit-down (leans again, goes down): sit-to-stand.
    opposite_direction : the principal angle has repetitions both ways from the rest level, and this is the
        name of the direction opposite to the first excursion's (rocking: "forward", after the backward
        rocks). Its repetitions are counted too, as ``repetitions_<name>``, and with a controlled segment
        its dissociation is ``dissociation_<name>``, with the opposite ``forbidden_sign``; each direction's
        dissociation sees only the samples of its own repetitions.
    first_direction : the name of the first direction (rocking: "backward"), for people.
    first_sign : the principal angle's sign in the first direction (rocking backward: −1, posterior pelvic
        tilt), so the directions do not depend on which way the patient happened to move first; None: the
        sign of the first large excursion (:func:`principal_orientation`).
    with_thighs : fields that replace these when a thigh sensor is worn (:meth:`for_session`): the hips'
        own angle instead of the pelvis's tilt standing in for it (waiter's bow, rocking:
        ``{"principal": "hip_flexion", "moving": "hip_flexion"}``).
    with_shanks : the same for shank sensors: the knee's angle, the moving segment of the knee tests that
        nothing else sees (``{"principal": "knee_flexion", "moving": "knee_flexion", "target_deg": 40}``).
    """

    principal: str | None = None
    moving: str | None = None
    controlled: str | None = None
    forbidden_sign: int | None = None
    target_deg: float | None = None
    ratio_tolerance: float | None = None
    tolerance_deg: float | None = None
    posture: str = "standing"
    sway: bool = False
    rhythm: bool = False
    frontal: bool = False
    rise_and_sit: bool = False
    opposite_direction: str | None = None
    first_direction: str | None = None
    first_sign: int | None = None
    with_thighs: dict[str, Any] | None = None
    with_shanks: dict[str, Any] | None = None

    def for_session(self, p: Processed) -> AnalysisPlan:
        """The plan for a session's signals: :attr:`with_thighs` applied when they hold a hip angle,
        :attr:`with_shanks` when they hold a knee angle."""
        plan = self
        if self.with_thighs and p.hip_flexion is not None:
            plan = replace(plan, **self.with_thighs)
        if self.with_shanks and p.knee_flexion is not None:
            plan = replace(plan, **self.with_shanks)
        return replace(plan, with_thighs=None, with_shanks=None) if plan is not self else self


def load_plans(protocol_dirs: tuple[str, ...] = ()) -> dict[str, AnalysisPlan]:
    """Movement → plan, from the ``analysis`` table of the protocol definitions (``lumbar.protocols``:
    the shipped files, ``$LUMBAR_PROTOCOLS`` and ``protocol_dirs``), so a clinic's protocol file
    drives the analysis without code. ``tolerance_deg`` is the dissociation's θ_tol."""
    from lumbar.protocols import load_protocols

    plans = {}
    for movement, fields in load_protocols(protocol_dirs).analysis_plans().items():
        plans[movement] = AnalysisPlan(**fields)
    return plans


def check_thighs(p: Processed, plan: AnalysisPlan) -> dict[str, str]:
    """Thigh sensors whose hip angle moves against the plan's stand-in for it (``plan.principal``, the angle
    ``with_thighs`` replaces) the wrong way round (:func:`lumbar.sensor_fit.thigh_turned`); they are added to
    ``p.excluded_thighs`` (not used) with what the operator should do (the analysis's warnings), a note with
    the figures goes to ``p.notes``, and they are returned. Rocking backward tilts the pelvis back while it
    flexes the hips, so there the two must move in opposite directions; a thigh sensor worn turned makes them
    move together. A thigh already excluded is not checked again."""
    from lumbar.types import THIGHS

    standin = p.signal(plan.principal) if plan.with_thighs and plan.principal else None
    if standin is None:
        return {}
    expected = thigh_expected_sign(plan.first_sign, plan.with_thighs)
    task = slice(p.static_window.stop, None)
    found = {}
    for th in THIGHS:
        hip = p.hip_flexion_of(th)
        if hip is None:
            continue
        r = thigh_turned(hip[task], standin[task], expected)
        if r is not None:
            found[th] = turned_thigh_warning(th)
            p.notes.append(f"{th.replace('thigh_', '')} thigh sensor: its hip angle moves the wrong way against the "
                           f"{plan.principal.replace('_', ' ')} (r = {r:+.2f}, expected sign "
                           f"{'+' if expected > 0 else '−'}): probably worn turned; left out")
    p.excluded_thighs.update(found)
    return found


#: Shortest task (after the calibration posture) that is analysed, s.
MIN_TASK_S = 5.0


@dataclass
class Analysis:
    """Results of one session: metric groups by name, plus what they were computed from.

    ``principal`` is the angle whose repetitions are counted ("trunk_flexion", "pelvic_tilt",
    "lumbar_flexion", "hip_flexion"; None when the movement has none), so a repetition's ROM can be named.
    ``principal_sign`` is +1 or −1: the principal angle's first excursion from the calibration
    posture is counted as positive (posterior pelvic tilt of rocking, anterior tilt first in a
    pelvic tilt), so repetition ROMs are positive. ``opposite_direction`` names the other direction when
    the plan counts repetitions both ways (``repetitions_<name>``, :func:`repetition_count` is the total);
    ``first_direction`` names the first (None: "first direction").
    """

    protocol: str
    results: dict[str, Result] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: problems the operator can act on (a thigh sensor worn back to front), in their words and with what to do;
    #: shown before the numbers (the notes hold the figures behind them)
    warnings: list[str] = field(default_factory=list)
    rate_hz: float = float("nan")
    principal_sign: int = 1
    principal: str | None = None
    opposite_direction: str | None = None
    first_direction: str | None = None

    def to_dict(self, *, display: bool = False) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "rate_hz": self.rate_hz,
            "principal": self.principal,
            "principal_sign": self.principal_sign,
            "opposite_direction": self.opposite_direction,
            "first_direction": self.first_direction,
            "results": {k: v.to_dict(display=display) for k, v in self.results.items()},
            "notes": list(self.notes),
            "warnings": list(self.warnings),
            "units": "degrees and deg/s" if display else "SI (rad, rad/s, m/s^2, s)",
        }


def principal_orientation(x: np.ndarray, static: slice, after: slice) -> tuple[float, int]:
    """(rest level, sign) of a principal angle: the rest level is its median over the calibration
    posture (0 by construction of the angles); the sign is that of the first excursion after the
    calibration that exceeds half the robust (P95) excursion, so the movement's first phase is
    positive (a pelvic tilt that goes anterior first and then posterior is one repetition)."""
    base_w = x[static]
    base = float(np.nanmedian(base_w)) if np.isfinite(base_w).any() else 0.0
    d = x[after] - base
    mag = np.abs(d)
    if not np.isfinite(mag).any():
        return base, 1
    thr = 0.5 * float(np.nanpercentile(mag, 95.0))
    big = np.flatnonzero(np.nan_to_num(mag, nan=-1.0) > thr)
    return base, (1 if not big.size or d[big[0]] >= 0 else -1)


def vertical_displacement(q: np.ndarray, acc: np.ndarray, fs: float, start: int, end: int) -> float:
    """Vertical displacement (m, up +) of a sensor between two moments at rest.

    Earth-frame vertical specific force from the sensor's orientation; its mean over the window is
    removed (zero velocity at both ends), then it is integrated twice (trapezoid). The sensor's
    offset and gravity cancel with the mean; what remains is the up or down of the movement."""
    from lumbar.conventions import quat_rotate

    if end - start < 2:
        return 0.0
    a = quat_rotate(q[start : end + 1], acc[start : end + 1])[:, 2]
    a = a - np.mean(a)
    dt = 1.0 / fs
    v = np.concatenate([[0.0], np.cumsum(0.5 * (a[1:] + a[:-1]) * dt)])
    v = v - np.linspace(0.0, v[-1], v.size)  # zero velocity at both ends
    return float(np.sum(0.5 * (v[1:] + v[:-1]) * dt))


def _rise_and_sit(p: Processed, sid: str, fs: float):
    """Group forward-lean phases into sit-to-stand repetitions: a lean during which the body rises,
    then the next lean during which it goes down. Unpaired phases (a rise at the end of the
    recording, a sit-down first) are partial repetitions and are dropped."""
    q, acc = p.quat_sensor[sid], p.acc[sid]

    def group(phases: list[tuple[int, int, int]], y: np.ndarray) -> list[tuple[int, int, int]]:
        dz = [vertical_displacement(q, acc, fs, s, e) for s, _, e in phases]
        out, i = [], 0
        while i < len(phases):
            if dz[i] > 0 and i + 1 < len(phases) and dz[i + 1] < 0:
                (s, p1, _), (_, p2, e) = phases[i], phases[i + 1]
                out.append((s, p1 if y[p1] >= y[p2] else p2, e))
                i += 2
            else:
                i += 1
        return out

    return group


def _frontal_control(p: Processed, after: slice) -> FrontalControl:
    nan = math.nan
    if LOWER not in p.frontal_tilt or p.lumbar_angles is None:
        return FrontalControl(nan, nan, nan, nan, nan, nan, nan, valid=False,
                              reason="pelvic drop and trunk lean need both a lumbar and a sacrum sensor")
    pel = p.frontal_tilt[LOWER][after]
    lat = p.lumbar_angles[after, 1]
    if not (np.isfinite(pel).any() and np.isfinite(lat).any()):
        return FrontalControl(nan, nan, nan, nan, nan, nan, nan, valid=False, reason="no valid samples")
    pr, pl = float(np.nanmax(pel)), float(-np.nanmin(pel))
    tr, tl = float(np.nanmax(lat)), float(-np.nanmin(lat))
    si = reps_mod.symmetry_index(pl, pr)
    out = FrontalControl(pr, pl, tr, tl, max(pr, pl), max(tr, tl), si.si_pct)
    hips = {th: h[after] for th in ("thigh_left", "thigh_right") if (h := p.hip_flexion_of(th)) is not None}
    stances = stance_legs(hips["thigh_left"], hips["thigh_right"], p.rate_hz) if len(hips) == 2 else None
    if stances is None:
        return out
    per_leg = {}
    for leg, (on, count) in stances.items():
        lean = float(np.nanmax(np.abs(lat[on]))) if np.isfinite(lat[on]).any() else math.nan
        drop = float(np.nanmax(np.abs(pel[on]))) if np.isfinite(pel[on]).any() else math.nan
        per_leg.update({f"lean_on_{leg}": lean, f"drop_on_{leg}": drop, f"stances_{leg}": count})
    return replace(out, sides_from="thighs", lean_difference=abs(per_leg["lean_on_left"] - per_leg["lean_on_right"]),
                   **per_leg)


#: A leg is lifted when its hip flexes this much from standing, or half its largest flexion if that is more, rad.
LIFT_MIN = 15.0 * DEG
#: Shortest stance on one leg that counts, s (a stumble is not a stance).
MIN_STANCE_S = 0.5


def stance_legs(hip_left: np.ndarray, hip_right: np.ndarray, fs: float) -> dict[str, tuple[np.ndarray, int]] | None:
    """The samples standing on each leg, told apart by the thigh sensors: a leg stands while the other one's
    hip is flexed (lifted: above :data:`LIFT_MIN`, or half that hip's largest flexion) and its own is not.
    ``hip_*``: flexion of each hip from the standing calibration posture, rad, (N,); ``fs``, Hz. Returns
    ``{"left": (mask (N,), stances), "right": …}``, stances of at least :data:`MIN_STANCE_S`; None when a hip
    never flexes that much (a foot lifted by bending the knee only leaves the thigh still: the legs cannot be
    told apart this way)."""
    lifted = {}
    for side, h in (("left", hip_left), ("right", hip_right)):
        top = float(np.nanmax(h)) if np.isfinite(h).any() else math.nan
        if not top >= LIFT_MIN:
            return None
        lifted[side] = np.nan_to_num(h, nan=-np.inf) > max(LIFT_MIN, 0.5 * top)
    out = {}
    shortest = int(round(MIN_STANCE_S * fs))
    for leg, other in (("left", "right"), ("right", "left")):
        on = lifted[other] & ~lifted[leg]
        edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
        runs = [(a, b) for a, b in zip(edges[::2], edges[1::2]) if b - a >= shortest]
        mask = np.zeros_like(on)
        for a, b in runs:
            mask[a:b] = True
        out[leg] = (mask, len(runs))
    return out


def _invalid_all(out: Analysis, plan: AnalysisPlan, reason: str) -> None:
    """Every result the plan promises, marked invalid with ``reason`` (never a silent number)."""
    opp = [f"_{plan.opposite_direction}"] if plan.opposite_direction else []
    names = (["sway"] if plan.sway else []) + (["frontal_control"] if plan.frontal else []) \
        + ([f"repetitions{d}" for d in ["", *opp]] if plan.principal else []) \
        + (["rhythm"] if plan.rhythm else []) \
        + ([f"dissociation{d}" for d in ["", *opp]] if plan.controlled else [])
    for name in names:
        out.results[name] = _InvalidResult(reason)


@dataclass(frozen=True)
class _InvalidResult(Result):
    """A metric group that could not be computed at all (the session is unusable for it)."""

    reason: str
    valid: bool = False


def analyze(session: Session, processed: Processed | None = None, *,
            plans: dict[str, AnalysisPlan] | None = None) -> tuple[Analysis, Processed | None]:
    """Compute the metrics of the session's movement (its ``protocol``), by the plan that the
    protocol definitions declare for it (``plans``, default :func:`load_plans`).

    A session that cannot be processed for a reason in the data (too short, no usable samples, no
    calibration posture) gives an :class:`Analysis` whose results are all invalid with the reason,
    and ``None`` for the processed signals.
    """
    protocol = session.info.protocol
    plans = load_plans() if plans is None else plans
    plan = plans.get(protocol, AnalysisPlan(principal="trunk_flexion"))
    if processed is None:
        try:
            processed = process_session(session, posture=plan.posture)
        except (CalibrationError, ValidationError) as e:
            out = Analysis(protocol=protocol, notes=[f"not processed: {e}"], principal=plan.principal,
                           opposite_direction=plan.opposite_direction, first_direction=plan.first_direction)
            _invalid_all(out, plan, f"the session could not be processed: {e}")
            return out, None
    p = processed
    check_thighs(p, plan)  # a thigh already excluded is not checked again
    general, plan = plan, plan.for_session(p)
    out = Analysis(protocol=protocol, rate_hz=p.rate_hz, notes=list(p.notes), principal=plan.principal,
                   opposite_direction=plan.opposite_direction, first_direction=plan.first_direction,
                   warnings=list(p.excluded_thighs.values()))
    if general.with_thighs and p.hip_flexion is not None:
        out.notes.append("hip flexion measured with the thigh sensors (the pelvis's tilt relative to the thighs')")
    if general.with_shanks and p.knee_flexion is not None:
        out.notes.append("knee flexion measured with the shank sensors (the shank's tilt relative to the thigh's)")
    if protocol not in plans:
        out.notes.append(f"protocol {protocol!r} has no analysis plan: repetitions of trunk flexion are counted")
    fs = p.rate_hz
    after = slice(p.static_window.stop, None)  # the task, after the calibration posture
    n_task = len(p.time_s) - p.static_window.stop
    if n_task < MIN_TASK_S * fs:
        _invalid_all(out, plan, f"too short: {n_task / fs:.1f} s after the calibration posture "
                                f"(at least {MIN_TASK_S:g} s needed)")
        return out, p
    if p.lumbar_angles is not None:
        out.results["lumbar_rom"] = segmental.rom_per_plane(p.lumbar_angles[after])
    if plan.sway:
        sid = LOWER if LOWER in p.acc else next(iter(p.acc))
        if sid != LOWER:
            out.notes.append(f"sway from the {sid} sensor: the ISway reference values apply to the sacral sensor")
        acc = p.acc[sid][after]
        out.results["sway"] = sway.sway_from_acc(acc, fs)
        out.results["angular_sway"] = sway.angular_sway(p.tilt[sid][after], p.frontal_tilt[sid][after], fs)
    if plan.frontal:
        out.results["frontal_control"] = _frontal_control(p, after)
    if plan.principal is not None:
        theta = p.signal(plan.principal)
        if theta is None:
            reason = f"repetitions need the {plan.principal.replace('_', ' ')} signal, whose sensor is missing"
            out.results["repetitions"] = _InvalidResult(reason)
            if plan.opposite_direction:
                out.results[f"repetitions_{plan.opposite_direction}"] = _InvalidResult(reason)
            out.notes.append(reason)
        else:
            # the whole recording: the calibration posture is the rest level, and repetition times
            # stay session times
            base, sign = principal_orientation(theta, p.static_window, after)
            if plan.first_sign is not None:  # the plan knows which way the first direction goes
                sign = plan.first_sign
            out.principal_sign = sign
            y = sign * (theta - base)
            lum = p.lumbar_angles[:, 0] if p.lumbar_angles is not None else None
            pel = p.pelvic_tilt
            other = p.lumbar_angles[:, 1:] if p.lumbar_angles is not None else None
            group = None
            if plan.rise_and_sit:
                sid = LOWER if LOWER in p.acc else UPPER
                group = _rise_and_sit(p, sid, fs)
            xcorr = None
            if plan.rhythm and lum is not None and pel is not None:
                # one FFT correlation of the whole recording: on another core (the FFT releases the GIL)
                # while the repetitions are segmented and measured here
                xcorr_pool = ThreadPoolExecutor(max_workers=1)
                xcorr = xcorr_pool.submit(segmental.cross_correlation, lum, pel, fs)
                xcorr_pool.shutdown(wait=False)
            rs = reps_mod.segment_repetitions(y, fs, base=0.0, other=other, lumbar=lum, pelvis=pel, group=group)
            out.results["repetitions"] = rs
            if plan.opposite_direction:
                # the other way from rest: the same segmentation on the mirrored angle, with its own range
                out.results[f"repetitions_{plan.opposite_direction}"] = reps_mod.segment_repetitions(
                    -y, fs, base=0.0, other=other, lumbar=lum, pelvis=pel)
            if sign < 0:
                out.notes.append(f"{plan.principal.replace('_', ' ')} repetitions counted in the negative direction")
            if plan.rhythm:
                out.results["rhythm"] = _rhythm_summary(lum, pel, rs)
                if lum is not None and pel is not None and rs.count:
                    r0 = rs.repetitions[0]
                    # rhythm of the first accepted repetition in full (bins, return phase)
                    out.results["rhythm_first_rep"] = segmental.lumbo_pelvic_rhythm(
                        lum, pel, start_idx=int(r0.start_idx), end_idx=int(r0.end_idx))
                    out.results["lumbar_pelvic_xcorr"] = xcorr.result()
    if plan.controlled is not None:
        b = p.signal(plan.controlled)
        a = p.signal(plan.moving) if plan.moving else None
        unseen = a is None
        if unseen:
            # no moving segment our sensors see (a knee test without shank sensors): A is a constant, B's leak
            # is what counts, and A's excursion is not measured (NaN, not 0°: a criterion on it is not assessed)
            a = np.zeros(len(p.time_s))
            out.notes.append("the moving segment is not instrumented: only the controlled segment's motion is measured")
        else:
            _, s_a = principal_orientation(a, p.static_window, after)
            a = s_a * a
        kw = {} if plan.ratio_tolerance is None else {"ratio_tolerance": plan.ratio_tolerance}
        if plan.tolerance_deg is not None:
            kw["tolerance"] = plan.tolerance_deg * DEG
        target = None if plan.target_deg is None else plan.target_deg * DEG
        if not plan.opposite_direction:
            out.results["dissociation"] = segmental.dissociation(
                a[after], None if b is None else b[after], fs, target=target, forbidden_sign=plan.forbidden_sign, **kw)
        else:
            # each direction's dissociation on its own repetitions only: a backward rock's lumbar flexion is
            # not a forward rock's leak, and the forward rock's anterior tilt not the backward rock's excursion
            opposite = None if plan.forbidden_sign is None else -plan.forbidden_sign
            for suffix, s_dir, forbidden in (("", 1, plan.forbidden_sign),
                                             (f"_{plan.opposite_direction}", -1, opposite)):
                rs = out.results.get(f"repetitions{suffix}")
                windows = [] if rs is None or not rs.valid else list(rs.repetitions) + list(rs.rejected)
                if not windows:
                    out.results[f"dissociation{suffix}"] = _InvalidResult(
                        f"no {(plan.opposite_direction if suffix else plan.first_direction or 'first-direction')} "
                        "repetition "
                        f"of the {(plan.principal or 'principal angle').replace('_', ' ')} to measure it on")
                    continue
                out.results[f"dissociation{suffix}"] = segmental.dissociation(
                    _within(s_dir * a, windows, after.start)[after],
                    None if b is None else _within(b, windows, after.start)[after], fs,
                    target=target, forbidden_sign=forbidden, **kw)
        if unseen:
            for key, r in out.results.items():
                if key.startswith("dissociation") and isinstance(r, DissociationResult) and r.valid:
                    out.results[key] = replace(r, excursion_a=math.nan, ratio=math.nan, leak_at_target=math.nan)
    return out, p


def _within(x: np.ndarray, reps: list[Any], first: int = 0) -> np.ndarray:
    """``x`` (N,) within the repetitions' windows (sample indices ``start_idx..end_idx``) and at sample
    ``first`` (where the excursions count from); between them a straight line from the end of one window to the start of the next (held after
    the last), so a movement outside them (the other direction's repetitions) is not seen, the excursions
    still count from the first sample and the rate of change stays that of the signal. Gaps (NaN) inside
    the windows are kept."""
    keep = np.zeros(x.size, bool)
    keep[first] = True
    for r in reps:
        keep[int(r.start_idx): int(r.end_idx) + 1] = True
    ok = np.flatnonzero(keep & np.isfinite(x))
    if not ok.size:
        return np.full(x.size, np.nan)
    out = np.interp(np.arange(x.size), ok, x[ok])
    out[keep & ~np.isfinite(x)] = np.nan
    return out


def repetition_sets(d: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(results key, direction in words) of each set of repetitions, from a stored analysis
    (:meth:`Analysis.to_dict`, :func:`read_analysis`) or a protocol's ``analysis`` table: one unnamed set,
    or, when the plan counts both ways from rest, the first direction's and the opposite one's
    (rocking: ``[("repetitions", "backward"), ("repetitions_forward", "forward")]``)."""
    opp = (d or {}).get("opposite_direction")
    if not opp:
        return [("repetitions", "")]
    return [("repetitions", (d or {}).get("first_direction") or "first direction"), (f"repetitions_{opp}", opp)]


def repetition_count(analysis: dict[str, Any] | None) -> int | None:
    """Repetitions counted in a stored analysis (:meth:`Analysis.to_dict` or :func:`read_analysis`): the
    principal angle's repetitions plus, when the plan counts both directions, the opposite direction's
    (rocking: backward + forward). None when the analysis counts none."""
    res = (analysis or {}).get("results") or {}
    counts = [res[n].get("count") for n, _ in repetition_sets(analysis) if isinstance(res.get(n), dict)]
    counts = [c for c in counts if c is not None]
    return sum(counts) if counts else None


def _rhythm_summary(lum: np.ndarray | None, pel: np.ndarray | None, rs: Any) -> RhythmSummary:
    nan = math.nan
    empty = np.full(0, nan)
    if lum is None or pel is None:
        return RhythmSummary(0, nan, nan, nan, nan, empty, empty, valid=False,
                             reason="the lumbo-pelvic rhythm needs both a lumbar and a sacrum sensor")
    if not getattr(rs, "count", 0):
        return RhythmSummary(0, nan, nan, nan, nan, empty, empty, valid=False, reason="no accepted repetition")
    # each repetition's own samples (the rhythm only looks at start..end; slicing keeps it O(repetition))
    per = [segmental.lumbo_pelvic_rhythm(lum[r.start_idx : r.end_idx + 1], pel[r.start_idx : r.end_idx + 1])
           for r in rs.repetitions]
    per = [r for r in per if r.valid]
    if not per:
        return RhythmSummary(0, nan, nan, nan, nan, empty, empty, valid=False,
                             reason="no repetition with a valid rhythm (gap or no trunk excursion)")
    c = np.array([r.lumbar_contribution_pct for r in per])
    q = np.array([r.lumbar_pelvic_ratio for r in per])
    sd = (lambda v: float(np.std(v, ddof=1)) if v.size > 1 else nan)
    return RhythmSummary(len(per), float(np.mean(c)), sd(c), float(np.mean(q)), sd(q), c, q)


#: Derived signals are stored as float32 (24-bit mantissa: 1e-7 rad on an angle, far below what the
#: sensors resolve) with light compression (gzip level 1 + shuffle): storing them is a large share
#: of ``lumbar analyze``'s time and noisy floats compress little better at higher levels.
DERIVED_DTYPE = np.float32
DERIVED_COMPRESSION_LEVEL = 1


def derived_arrays(p: Processed) -> dict[str, np.ndarray]:
    """What the session file's ``derived`` group holds (docs/file-format.md): the processed signals
    with floats as :data:`DERIVED_DTYPE`, except time (float64, like every time column). Sensor
    orientations are left out: they are the segment orientations times the sensor's stored
    calibration (``q_GS = q_GB ⊗ q(R_SB)``), recomputed in microseconds."""
    out = {}
    for name, arr in p.to_arrays().items():
        if arr.dtype.kind == "f" and name != "time_s":
            arr = arr.astype(DERIVED_DTYPE)
        out[name] = arr
    return out


def analyze_file(path: str | Path, *, store: bool = True, method: str = "offline",
                 protocol_dirs: tuple[str, ...] = ()) -> Analysis:
    """Read, process and analyse a session file; with ``store`` the derived signals and the results
    are written into it (groups ``derived`` and ``metrics``, replacing earlier ones; ``derived`` is
    written while the metrics are computed, so it is replaced even if they then fail). A clinic's
    protocol folders (``protocol_dirs``) may add or replace analysis plans."""
    from lumbar.storage.writer import write_group

    session = read_session(path, load_truth=False)
    plans = load_plans(tuple(protocol_dirs))
    plan = plans.get(session.info.protocol, AnalysisPlan())
    processed = process_session(session, method=method, posture=plan.posture)
    check_thighs(processed, plan)  # before the derived signals are stored: a hip angle not used is not stored
    if not store:
        return analyze(session, processed, plans=plans)[0]
    # The derived signals are final once processed: they are compressed and written on other threads
    # while the metrics are computed (zlib releases the GIL).
    with ThreadPoolExecutor(max_workers=1) as bg:
        derived = bg.submit(write_group, path, "derived", derived_arrays(processed), processed.attrs(),
                            compression_level=DERIVED_COMPRESSION_LEVEL)
        try:
            analysis, processed = analyze(session, processed, plans=plans)
        finally:
            derived.result()
    for sid, cal in processed.calibration.items():
        write_group(path, f"sensors/{sid}/calibration", cal.to_arrays(),
                    {**cal.attrs(), "kind": processed.calibration_kind[sid]})
    # the results are a dataset, not an attribute: HDF5 reuses a replaced dataset's space (the file's
    # free-space manager), while a large attribute's would be lost on every re-analysis
    results = json.dumps(analysis.to_dict(), allow_nan=False, default=_nan_to_none)  # ASCII
    write_group(path, "metrics", {"results_json": np.bytes_(results.encode("ascii"))}, {
        "computed_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "software_version": software_version(),
        "orientation_method": method,
    })
    return analysis


def _nan_to_none(v: Any) -> Any:  # json default hook for numpy scalars
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(type(v))


def read_analysis(path: str | Path) -> dict[str, Any] | None:
    """The stored results (SI units) of the last ``lumbar analyze``, or None if never analysed."""
    from lumbar.storage.reader import open_h5

    with open_h5(path) as (f, _):
        if "metrics" not in f:
            return None
        g = f["metrics"]
        if "results_json" in g:
            return json.loads(g["results_json"][()].decode("utf-8"))
        if "results_json" in g.attrs:  # analysed before the results moved to a dataset
            return json.loads(g.attrs["results_json"])
        return None


def format_analysis(a: Analysis) -> str:
    """A short human-readable report of the main numbers (degrees)."""
    every = a.to_dict(display=True)["results"]
    d = {k: v for k, v in every.items() if v.get("valid", True) or k == "sway"}
    lines = [f"Protocol {a.protocol or '-'} (analysed at {a.rate_hz:g} Hz)"]

    def f(v: Any, unit: str = "", nd: int = 1) -> str:
        return "-" if v is None else f"{v:.{nd}f}{unit}"

    if "lumbar_rom" in d:
        r = d["lumbar_rom"]["rom"]
        lines.append(f"  Lumbar range of motion: flexion/extension {f(r[0], '°')}, lateral bending {f(r[1], '°')}, "
                     f"axial rotation {f(r[2], '°')}")
    opp = a.opposite_direction
    sets = repetition_sets({"opposite_direction": opp, "first_direction": a.first_direction})
    for key, way in sets:
        if key not in d:
            continue
        rs = d[key]
        of = f" of {a.principal.replace('_', ' ')}" if a.principal else ""
        way = f", {way}" if way else ""
        lines.append(f"  Repetitions{of}{way}: {rs['count']} counted"
                     + (f" ({len(rs['rejected'])} rejected)" if rs["rejected"] else ""))
        for i, r in enumerate(rs["repetitions"], 1):
            share = r.get("lumbar_share_pct")
            lines.append(
                f"    #{i:<2} {f(r['start_s'], ' s')} ROM {f(r['rom'], '°')}  duration {f(r['duration_s'], ' s', 2)}  "
                f"peak velocity {f(r['peak_velocity_out'], '°/s', 0)}  SPARC {f(r['sparc'], '', 2)}"
                + (f"  lumbar share {f(share, '%', 0)}" if share is not None else "")
            )
        c = rs.get("consistency")
        if c:
            lines.append(f"    consistency: coefficient of variation of ROM {f(c.get('cv_rom_pct'), '%')}, "
                         f"of duration {f(c.get('cv_duration_pct'), '%')}")
    if opp and "repetitions" in d and f"repetitions_{opp}" in d:
        lines.append(f"  Repetitions in both directions: {d['repetitions']['count'] + d[f'repetitions_{opp}']['count']}")
    if "rhythm" in d:
        r = d["rhythm"]
        lines.append(f"  Lumbo-pelvic rhythm ({r['n']} repetitions): lumbar contribution "
                     f"{f(r.get('lumbar_contribution_pct'), '%', 0)}, lumbar:pelvic ratio {f(r.get('lumbar_pelvic_ratio'), '', 2)}")
    if "frontal_control" in d:
        r = d["frontal_control"]
        lines.append(f"  One-leg stance: pelvic drop {f(r['pelvic_drop'], '°')} (right {f(r['pelvic_tilt_right'], '°')}, "
                     f"left {f(r['pelvic_tilt_left'], '°')}), trunk lean {f(r['trunk_lean'], '°')}")
        if r.get("sides_from") == "thighs":
            lines.append("    " + "; ".join(
                f"standing on the {leg} leg ({r[f'stances_{leg}']}×): low back sideways {f(r[f'lean_on_{leg}'], '°')}, "
                f"pelvis {f(r[f'drop_on_{leg}'], '°')}" for leg in ("left", "right"))
                + f"; difference between the legs {f(r['lean_difference'], '°')} (legs told apart by the thigh sensors)")
    if "rhythm_first_rep" in d:
        r = d["rhythm_first_rep"]
        lines.append(f"  Lumbo-pelvic rhythm (first repetition): lumbar contribution {f(r.get('lumbar_contribution_pct'), '%', 0)}, "
                     f"lumbar:pelvic ratio {f(r.get('lumbar_pelvic_ratio'), '', 2)}")
    for key, way in sets:
        key = key.replace("repetitions", "dissociation")
        if key not in d:
            continue
        r = d[key]
        verdict = "PASS" if r["passed"] else "FAIL"
        way = f" ({way})" if way else ""
        lines.append(f"  Movement control{way}: {verdict} — controlled segment moved {f(r['excursion_b'], '°')} "
                     f"(tolerance {f(r['tolerance'], '°', 0)}) while the moving segment went {f(r['excursion_a'], '°')}")
    if "sway" in d:
        s = d["sway"]
        if s.get("valid", True) and "combined" in s:
            c = s["combined"]
            lines.append(f"  Sway (acceleration): RMS {f(c['rms'], ' m/s²', 4)}, path {f(c['path'], ' m/s²', 2)}, "
                         f"95% ellipse {f(s['combined'].get('area_ce'), ' (m/s²)²', 5)}")
        else:
            lines.append(f"  Sway: not computed — {s.get('reason')}")
    for w in a.warnings:
        lines.append(f"  WARNING: {w}")
    for n in a.notes:
        lines.append(f"  note: {n}")
    invalid = [k for k, v in every.items() if isinstance(v, dict) and v.get("valid") is False and k != "sway"]
    for k in invalid:
        lines.append(f"  {k}: not valid — {every[k].get('reason')}")
    return "\n".join(lines)
