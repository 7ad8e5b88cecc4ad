"""A subject's sessions over time: each file read once, scored against its protocol, grouped
into clinic visits (by calendar day) with home biofeedback sessions counted as adherence.

Only the pseudonymous subject code, the date and the measurements leave this module: operator,
notes, file names and session ids are read to classify a session but never put in a record.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from lumbar.errors import ValidationError
from lumbar.protocols import Protocol, Registry, TestResult, display_results, metric_value, score
from lumbar.protocols.scoring import BatteryResult, score_battery

__all__ = ["SessionRecord", "Visit", "ProgressRow", "load_record", "group_visits", "progress", "adherence",
           "romberg", "is_home_session"]

DEG = 180.0 / math.pi


@dataclass
class Signals:
    """Angle traces (degrees) for plots, on the analysis grid."""

    time_s: np.ndarray
    lumbar_flexion: np.ndarray | None
    pelvic_tilt: np.ndarray | None
    trunk_flexion: np.ndarray | None
    static_end_s: float
    hip_flexion: np.ndarray | None = None  # with thigh sensors
    sway_ap: np.ndarray | None = None  # m/s², tilt-corrected, filtered
    sway_ml: np.ndarray | None = None


@dataclass
class SessionRecord:
    subject: str
    start_utc: datetime
    movement: str
    protocol: Protocol | None
    result: TestResult | None
    results: dict[str, Any]  # metric groups, display units
    calibration: dict[str, dict[str, Any]]  # sensor → quality figures
    home: bool
    signals: Signals | None
    notes: list[str] = field(default_factory=list)
    #: the angle the analysis counted ("hip_flexion" where thigh sensors stood in for the plan's pelvic tilt)
    principal: str | None = None
    #: the analysis's warnings: problems the operator could act on (a thigh sensor worn back to front)
    warnings: list[str] = field(default_factory=list)

    @property
    def date(self) -> str:
        return self.start_utc.date().isoformat()

    @property
    def title(self) -> str:
        return self.protocol.title if self.protocol else self.movement or "(no protocol)"

    def repetition_sets(self) -> list[tuple[str, str]]:
        """(results key, direction in words) of each set of repetitions its protocol's plan counts."""
        from lumbar.analysis import repetition_sets

        return repetition_sets(self.protocol.get("analysis", {}) if self.protocol is not None else None)

    def repetitions(self) -> list[dict[str, Any]]:
        """Every counted repetition (display units) in time order; with ``direction`` (in words) when the
        plan counts both ways from rest (rocking)."""
        out = []
        sets = self.repetition_sets()
        for key, way in sets:
            r = self.results.get(key)
            if isinstance(r, dict):
                out += [dict(x, direction=way) if way else x for x in r.get("repetitions", [])]
        return sorted(out, key=lambda x: x.get("start_s", 0.0)) if len(sets) > 1 else out

    def repetition_count(self) -> int | None:
        """Repetitions counted, every direction together (None: none counted, or not valid)."""
        from lumbar.analysis import repetition_count

        plan = self.protocol.get("analysis", {}) if self.protocol is not None else {}
        valid = {k: v for k, v in self.results.items() if isinstance(v, dict) and v.get("valid", True)}
        return repetition_count({**plan, "results": valid})


def is_home_session(operator: str) -> bool:
    """Home biofeedback sessions are recorded with the operator ``home`` (``home``, ``home-app``…)."""
    return operator.strip().lower().startswith("home")


def _calibration(path: Path) -> dict[str, dict[str, Any]]:
    from lumbar.storage.reader import open_h5

    out: dict[str, dict[str, Any]] = {}
    with open_h5(path) as (f, _):
        if "sensors" not in f:
            return out
        for sid, g in f["sensors"].items():
            if "calibration" in g:
                a = dict(g["calibration"].attrs)
                out[sid] = {k: (v.item() if hasattr(v, "item") else v) for k, v in a.items()}
    return out


def _signals_from_file(path: Path, session: Any) -> Signals | None:
    from lumbar.storage.reader import open_h5, read_group

    with open_h5(path) as (f, _):
        if "derived" not in f:
            return None
        arr, attrs = read_group(f, "derived")
    t = arr.get("time_s")
    if t is None:
        return None
    lum = arr.get("lumbar_angles_rad")
    st = str(attrs.get("static_window_s", "0,0")).split(",")
    return Signals(
        time_s=t,
        lumbar_flexion=None if lum is None else lum[:, 0] * DEG,
        pelvic_tilt=arr["sacrum/sagittal_tilt_rad"] * DEG if "sacrum/sagittal_tilt_rad" in arr else None,
        trunk_flexion=arr["lumbar/sagittal_tilt_rad"] * DEG if "lumbar/sagittal_tilt_rad" in arr else None,
        static_end_s=float(st[-1]),
        hip_flexion=arr["hip_flexion_rad"] * DEG if "hip_flexion_rad" in arr else None,
    )


def _signals_from_processed(p: Any) -> Signals:
    t = p.time_s
    return Signals(
        time_s=t,
        lumbar_flexion=None if p.lumbar_angles is None else p.lumbar_angles[:, 0] * DEG,
        pelvic_tilt=None if p.pelvic_tilt is None else p.pelvic_tilt * DEG,
        trunk_flexion=None if p.trunk_flexion is None else p.trunk_flexion * DEG,
        static_end_s=float(t[p.static_window.stop - 1]),
        hip_flexion=None if p.hip_flexion is None else p.hip_flexion * DEG,
    )


def _add_sway(sig: Signals, session: Any) -> None:
    """Horizontal sacral acceleration for the stabilogram (METRICS.md §1.2 option A, as the analysis)."""
    from lumbar.metrics.sway import DEFAULT_DISCARD_S, preprocess_sway, tilt_correct_static

    sid = "sacrum" if "sacrum" in session.data else next(iter(session.data), None)
    if sid is None:
        return
    b = session.data[sid]
    fs = session.sensors[sid].nominal_rate_hz or float(1.0 / np.median(np.diff(b.time_s)))
    keep = b.time_s > sig.static_end_s
    if keep.sum() < 10 * fs:
        return
    tc = tilt_correct_static(b.acc[keep])
    ap, ml, _ = preprocess_sway(tc.ap, tc.ml, fs, discard_s=DEFAULT_DISCARD_S)
    sig.sway_ap, sig.sway_ml = ap, ml


def load_record(path: str | Path, registry: Registry, *, home: bool | None = None,
                protocol: str | None = None) -> SessionRecord:
    """Read one session file, its stored analysis (or analyse it now, without writing), and score it."""
    from lumbar.analysis import analyze, read_analysis
    from lumbar.storage import read_session

    p = Path(path)
    session = read_session(p, load_truth=False)
    info = session.info
    notes: list[str] = []
    stored = read_analysis(p)
    sig = _signals_from_file(p, session) if stored is not None else None
    if stored is None or sig is None:
        analysis, processed = analyze(session)
        results = display_results(analysis)
        principal, warnings = analysis.principal, list(analysis.warnings)
        sig = _signals_from_processed(processed)
        cal = {sid: {**c.attrs(), "kind": processed.calibration_kind[sid]} for sid, c in processed.calibration.items()}
        notes.append("analysed for this report (the file had no stored analysis; run 'lumbar analyze' to store it)")
    else:
        results = display_results(stored)
        principal, warnings = stored.get("principal"), list(stored.get("warnings") or [])
        cal = _calibration(p)
    try:
        start = datetime.fromisoformat(info.start_time_utc)
    except ValueError as e:
        raise ValidationError(f"session start time {info.start_time_utc!r} is not ISO 8601") from e
    proto = registry[protocol] if protocol else registry.for_session(info.protocol, info.notes)
    if sig is not None and proto is not None and proto.get("analysis", {}).get("sway"):
        _add_sway(sig, session)
    result = score(proto, results) if proto is not None and proto.kind == "test" else None
    if proto is None:
        notes.append(f"no protocol definition for the movement {info.protocol!r}: shown unscored")
    return SessionRecord(
        subject=info.subject_code, start_utc=start, movement=info.protocol, protocol=proto, result=result,
        results=results, calibration=cal, home=is_home_session(info.operator) if home is None else home,
        signals=sig, notes=notes, principal=principal, warnings=warnings,
    )


@dataclass
class Visit:
    date: str
    sessions: list[SessionRecord]
    battery: list[BatteryResult] = field(default_factory=list)

    def romberg(self) -> float | None:
        return romberg(self.sessions)


def romberg(sessions: Sequence[SessionRecord], surface: str = "firm") -> float | None:
    """Romberg ratio EC/EO of the forward–backward sway RMS (``sway.ap.rms``) of one visit."""
    eo = ec = None
    for s in sessions:
        if s.protocol is None or s.protocol.get("movement") != "quiet-standing":
            continue
        c = s.protocol.conditions
        if c.get("surface", "firm") != surface:
            continue
        v, _, _ = metric_value(s.results, "sway.ap.rms")
        if c.get("eyes") == "closed":
            ec = v
        else:
            eo = v
    return None if eo in (None, 0) or ec is None else ec / eo


def group_visits(records: Iterable[SessionRecord], registry: Registry) -> list[Visit]:
    """Clinic sessions grouped by calendar day (UTC), oldest first, with battery scores."""
    by_day: dict[str, list[SessionRecord]] = {}
    for r in sorted(records, key=lambda r: r.start_utc):
        if not r.home:
            by_day.setdefault(r.date, []).append(r)
    visits = []
    for day, recs in by_day.items():
        v = Visit(day, recs)
        results = [r.result for r in recs if r.result is not None]
        for b in registry.batteries():
            if any(res.protocol in b.items for res in results):
                titles = {n: registry[n].title for n in b.items if n in registry}
                v.battery.append(score_battery(b, results, titles))
        visits.append(v)
    return visits


@dataclass
class ProgressRow:
    protocol: str
    title: str  # the protocol's title, for people
    kind: str  # "criterion", "reference" or "quality" (repetition count, smoothness, variability)
    label: str
    unit: str
    values: list[float | None]  # one per visit (None: not measured at that visit)
    change: float | None  # last − first measured
    mdc: float | None
    mdc_source: str
    slope_per_week: float | None
    beyond_mdc: bool | None
    decimals: int | None = None  # shown with this many decimals (0: a count); None: format_value's choice
    mdc_evidence: str = ""  # how firm the MDC is (``lumbar.protocols.schema.EVIDENCE``)


def _series(visits: Sequence[Visit], name: str, path: str, agg: str | None) -> list[float | None]:
    out: list[float | None] = []
    for v in visits:
        vals = [(s.repetition_count() if path == "repetitions.count" else metric_value(s.results, path, agg)[0])
                for s in v.sessions if s.protocol is not None and s.protocol.name == name]
        vals = [x for x in vals if x is not None]
        out.append(vals[-1] if vals else None)
    return out


def progress(visits: Sequence[Visit], registry: Registry) -> list[ProgressRow]:
    """Per protocol done at two or more visits: criterion, reference and repetition-quality values per
    visit, change, least-squares slope per week, and whether the change exceeds the MDC (where known)."""
    rows: list[ProgressRow] = []
    names: list[str] = []
    for v in visits:
        for s in v.sessions:
            if s.protocol is not None and s.protocol.name not in names:
                names.append(s.protocol.name)
    days = [datetime.fromisoformat(v.date) for v in visits]
    for name in names:
        p = registry[name]
        items: list[tuple[str, str, str, str | None, str]] = []
        for c in p.get("criteria", []):
            items.append(("criterion", c["label"], c["metric"], c.get("aggregate"), c.get("unit", "")))
        for r in p.get("references", []):
            items.append(("reference", r["label"], r["metric"], r.get("aggregate"), r.get("unit", "")))
        items += [("quality", "Repetitions counted", "repetitions.count", None, ""),
                  ("quality", "Smoothness, SPARC (mean; closer to 0 is smoother)", "repetitions.repetitions[].sparc",
                   "mean", ""),
                  ("quality", "ROM variability, CV", "repetitions.consistency.cv_rom_pct", None, "%")]
        seen = set()
        for kind, label, path, agg, unit in items:
            if (path, agg) in seen:
                continue
            seen.add((path, agg))
            vals = _series(visits, name, path, agg)
            idx = [i for i, x in enumerate(vals) if x is not None]
            if len(idx) < 2:
                continue
            change = vals[idx[-1]] - vals[idx[0]]  # type: ignore[operator]
            mdc = next((m for m in p.get("mdc", []) if m["metric"] == path and m.get("aggregate") == agg), None)
            slope = None
            if len(idx) >= 3:
                x = np.array([(days[i] - days[idx[0]]).days / 7.0 for i in idx])
                y = np.array([vals[i] for i in idx], dtype=float)
                if np.ptp(x) > 0:
                    slope = float(np.polyfit(x, y, 1)[0])
            rows.append(ProgressRow(name, p.title, kind, label, unit, vals, change, None if mdc is None else float(mdc["value"]),
                                    "" if mdc is None else mdc["source"], slope,
                                    None if mdc is None else abs(change) > float(mdc["value"]),
                                    0 if path.endswith(".count") else None, "" if mdc is None else mdc["evidence"]))
    return rows


@dataclass
class Adherence:
    period: str
    sessions: int
    repetitions: int
    passed: int
    scored: int
    mean_sparc: float | None


def adherence(records: Sequence[SessionRecord], visits: Sequence[Visit]) -> list[Adherence]:
    """Home sessions between consecutive clinic visits (and after the last one)."""
    home = sorted((r for r in records if r.home), key=lambda r: r.start_utc)
    if not home:
        return []
    edges = [v.date for v in visits]
    periods: dict[str, list[SessionRecord]] = {}
    for r in home:
        before = [d for d in edges if d <= r.date]
        after = [d for d in edges if d > r.date]
        label = (f"{before[-1]} → {after[0]}" if before and after else f"after {before[-1]}" if before
                 else f"before {after[0]}" if after else "home")
        periods.setdefault(label, []).append(r)
    out = []
    for label, rs in periods.items():
        reps = sum(len(r.repetitions()) for r in rs)
        sp = [x["sparc"] for r in rs for x in r.repetitions() if x.get("sparc") is not None]
        scored = [r for r in rs if r.result is not None and r.result.status in ("pass", "fail")]
        out.append(Adherence(label, len(rs), reps, sum(r.result.status == "pass" for r in scored), len(scored),
                             float(np.mean(sp)) if sp else None))
    return out
