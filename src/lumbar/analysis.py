"""Session analysis: the metrics each movement calls for, computed offline from the processed signals.

Which metrics a movement gets is declared in :data:`PLANS` (principal angle for repetitions, the
moving and controlled segments of a dissociation test, sway or not). ``lumbar analyze`` runs
:func:`analyze_file`: read → :func:`lumbar.pipeline.process_session` → metrics → stored in the file
(``derived`` and ``metrics`` groups) and returned as typed results.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from lumbar.metrics import repetitions as reps_mod
from lumbar.metrics import segmental, sway
from lumbar.metrics.results import Result
from lumbar.pipeline import LOWER, UPPER, Processed, process_session
from lumbar.storage.reader import Session, read_session
from lumbar.types import software_version

__all__ = ["PLANS", "AnalysisPlan", "Analysis", "analyze", "analyze_file", "read_analysis"]

DEG = math.pi / 180.0


@dataclass(frozen=True)
class AnalysisPlan:
    """What to compute for one movement.

    principal : signal whose repetitions are counted ("trunk_flexion", "pelvic_tilt", "lumbar_flexion")
        or None when the movement has no repetitions our sensors can see.
    moving, controlled : signals of a dissociation test (segment A moves, B should stay still).
    forbidden_sign : only B's motion in this direction counts as a leak (+1 flexion, −1 extension).
    target_deg : the excursion of A that counts as reaching the task's target, degrees.
    sway : quiet-standing sway metrics.
    rhythm : lumbo-pelvic rhythm per repetition.
    """

    principal: str | None = None
    moving: str | None = None
    controlled: str | None = None
    forbidden_sign: int | None = None
    target_deg: float | None = None
    sway: bool = False
    rhythm: bool = False


PLANS: dict[str, AnalysisPlan] = {
    "quiet-standing": AnalysisPlan(sway=True),
    "one-leg-stance": AnalysisPlan(sway=True),
    "flexion": AnalysisPlan(principal="trunk_flexion", rhythm=True),
    "sit-to-stand": AnalysisPlan(principal="trunk_flexion"),
    # Luomajoki tests (METRICS.md §2.6): A = pelvis (hip flexion proxy), B = lumbar spine
    "waiters-bow": AnalysisPlan(principal="pelvic_tilt", moving="pelvic_tilt", controlled="lumbar_flexion",
                                forbidden_sign=+1, target_deg=50.0),
    "pelvic-tilt": AnalysisPlan(principal="pelvic_tilt", moving="pelvic_tilt", controlled="trunk_flexion"),
    "rocking": AnalysisPlan(principal="pelvic_tilt", moving="pelvic_tilt", controlled="lumbar_flexion",
                            forbidden_sign=+1),
    "sitting-knee-extension": AnalysisPlan(controlled="lumbar_flexion", forbidden_sign=+1),
}


@dataclass
class Analysis:
    """Results of one session: metric groups by name, plus what they were computed from."""

    protocol: str
    results: dict[str, Result] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    rate_hz: float = float("nan")

    def to_dict(self, *, display: bool = False) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "rate_hz": self.rate_hz,
            "results": {k: v.to_dict(display=display) for k, v in self.results.items()},
            "notes": list(self.notes),
            "units": "degrees and deg/s" if display else "SI (rad, rad/s, m/s^2, s)",
        }


def _signal(p: Processed, name: str) -> np.ndarray | None:
    if name == "trunk_flexion":
        return p.trunk_flexion
    if name == "pelvic_tilt":
        return p.pelvic_tilt
    if name == "lumbar_flexion":
        return None if p.lumbar_angles is None else p.lumbar_angles[:, 0]
    raise KeyError(name)


def _oriented(x: np.ndarray) -> tuple[np.ndarray, int]:
    """The signal turned so that its main excursion is positive (posterior tilt, extension, …)."""
    sign = 1 if abs(np.nanmax(x)) >= abs(np.nanmin(x)) else -1
    return sign * x, sign


def analyze(session: Session, processed: Processed | None = None) -> tuple[Analysis, Processed]:
    """Compute the metrics of the session's movement (its ``protocol``)."""
    p = processed if processed is not None else process_session(session)
    protocol = session.info.protocol
    plan = PLANS.get(protocol, AnalysisPlan(principal="trunk_flexion"))
    out = Analysis(protocol=protocol, rate_hz=p.rate_hz, notes=list(p.notes))
    if protocol not in PLANS:
        out.notes.append(f"protocol {protocol!r} has no analysis plan: repetitions of trunk flexion are counted")
    fs = p.rate_hz
    after = slice(p.static_window.stop, None)  # the task, after the calibration posture
    if p.lumbar_angles is not None:
        out.results["lumbar_rom"] = segmental.rom_per_plane(p.lumbar_angles[after])
    if plan.sway:
        sid = LOWER if LOWER in p.acc else next(iter(p.acc))
        if sid != LOWER:
            out.notes.append(f"sway from the {sid} sensor: the ISway reference values apply to the sacral sensor")
        acc = p.acc[sid][after]
        out.results["sway"] = sway.sway_from_acc(acc, fs)
        out.results["angular_sway"] = sway.angular_sway(p.tilt[sid][after], p.frontal_tilt[sid][after], fs)
    if plan.principal is not None:
        theta = _signal(p, plan.principal)
        if theta is None:
            out.notes.append(f"repetitions need the {plan.principal.replace('_', ' ')} signal, whose sensor is missing")
        else:
            # the whole recording: the calibration posture is the zero baseline, and repetition times
            # stay session times
            theta, sign = _oriented(theta)
            lum = p.lumbar_angles[:, 0] if p.lumbar_angles is not None else None
            pel = p.pelvic_tilt
            other = p.lumbar_angles[:, 1:] if p.lumbar_angles is not None else None
            rs = reps_mod.segment_repetitions(theta, fs, other=other, lumbar=lum, pelvis=pel)
            out.results["repetitions"] = rs
            if sign < 0:
                out.notes.append(f"{plan.principal.replace('_', ' ')} repetitions counted in the negative direction")
            if plan.rhythm and lum is not None and pel is not None and rs.count:
                r0 = rs.repetitions[0]
                # rhythm of the first accepted repetition; per-repetition shares are in `repetitions`
                out.results["rhythm_first_rep"] = segmental.lumbo_pelvic_rhythm(
                    lum, pel, start_idx=int(r0.start_idx), end_idx=int(r0.end_idx))
                out.results["lumbar_pelvic_xcorr"] = segmental.cross_correlation(lum, pel, fs)
    if plan.controlled is not None:
        b = _signal(p, plan.controlled)
        a = _signal(p, plan.moving) if plan.moving else None
        if a is None:
            # no moving segment our sensors see (e.g. knee extension): A is a constant, B's leak is what counts
            a = np.zeros(len(p.time_s))
            out.notes.append("the moving segment is not instrumented: only the controlled segment's motion is measured")
        else:
            a, _ = _oriented(a)
        b_task = None if b is None else b[after]
        out.results["dissociation"] = segmental.dissociation(
            a[after], b_task, fs,
            target=None if plan.target_deg is None else plan.target_deg * DEG,
            forbidden_sign=plan.forbidden_sign,
        )
    return out, p


def analyze_file(path: str | Path, *, store: bool = True, method: str = "offline") -> Analysis:
    """Read, process and analyse a session file; with ``store`` the derived signals and the results
    are written into it (groups ``derived`` and ``metrics``, replacing earlier ones)."""
    from lumbar.storage.writer import write_group

    session = read_session(path, load_truth=False)
    processed = process_session(session, method=method)
    analysis, processed = analyze(session, processed)
    if store:
        write_group(path, "derived", processed.to_arrays(), processed.attrs())
        for sid, cal in processed.calibration.items():
            write_group(path, f"sensors/{sid}/calibration", cal.to_arrays(),
                        {**cal.attrs(), "kind": processed.calibration_kind[sid]})
        write_group(path, "metrics", {}, {
            "results_json": json.dumps(analysis.to_dict(), allow_nan=False, default=_nan_to_none),
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
        if "metrics" not in f or "results_json" not in f["metrics"].attrs:
            return None
        return json.loads(f["metrics"].attrs["results_json"])


def format_analysis(a: Analysis) -> str:
    """A short human-readable report of the main numbers (degrees)."""
    d = a.to_dict(display=True)["results"]
    lines = [f"Protocol {a.protocol or '-'} (analysed at {a.rate_hz:g} Hz)"]

    def f(v: Any, unit: str = "", nd: int = 1) -> str:
        return "-" if v is None else f"{v:.{nd}f}{unit}"

    if "lumbar_rom" in d:
        r = d["lumbar_rom"]["rom"]
        lines.append(f"  Lumbar range of motion: flexion/extension {f(r[0], '°')}, lateral bending {f(r[1], '°')}, "
                     f"axial rotation {f(r[2], '°')}")
    if "repetitions" in d:
        rs = d["repetitions"]
        lines.append(f"  Repetitions: {rs['count']} counted" + (f" ({len(rs['rejected'])} rejected)" if rs["rejected"] else ""))
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
    if "rhythm_first_rep" in d:
        r = d["rhythm_first_rep"]
        lines.append(f"  Lumbo-pelvic rhythm (first repetition): lumbar contribution {f(r.get('lumbar_contribution_pct'), '%', 0)}, "
                     f"lumbar:pelvic ratio {f(r.get('lumbar_pelvic_ratio'), '', 2)}")
    if "dissociation" in d:
        r = d["dissociation"]
        verdict = "PASS" if r["passed"] else "FAIL"
        lines.append(f"  Movement control: {verdict} — controlled segment moved {f(r['excursion_b'], '°')} "
                     f"(tolerance {f(r['tolerance'], '°', 0)}) while the moving segment went {f(r['excursion_a'], '°')}")
    if "sway" in d:
        s = d["sway"]
        if s.get("valid", True):
            c = s["combined"]
            lines.append(f"  Sway (acceleration): RMS {f(c['rms'], ' m/s²', 4)}, path {f(c['path'], ' m/s²', 2)}, "
                         f"95% ellipse {f(s['combined'].get('area_ce'), ' (m/s²)²', 5)}")
        else:
            lines.append(f"  Sway: not computed — {s.get('reason')}")
    for n in a.notes:
        lines.append(f"  note: {n}")
    invalid = [k for k, v in d.items() if isinstance(v, dict) and v.get("valid") is False]
    for k in invalid:
        lines.append(f"  {k}: not valid — {d[k].get('reason')}")
    return "\n".join(lines)
