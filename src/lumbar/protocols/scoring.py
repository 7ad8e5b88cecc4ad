"""Scoring a session's analysis against a protocol: pass/fail per criterion, reference values,
and a battery score in the manner of Luomajoki et al. (number of positive tests).

The analysis comes from the analysis engine (``lumbar.analysis.analyze`` → ``Analysis``, or the
stored dict of ``read_analysis``); nothing here recomputes a metric. Values are compared in the
units people read (degrees, %, m/s², s) — the protocol file's thresholds are in those units.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from lumbar.metrics.results import display_value
from lumbar.protocols.registry import Protocol

__all__ = ["CriterionResult", "ReferenceResult", "TestResult", "BatteryResult", "score", "score_battery",
           "display_results", "metric_value", "format_value", "threshold_words", "threshold_text"]

_OP_SIGNS = {"<=": "≤", ">=": "≥"}
_OP_WORDS = {"<=": "at most", "<": "below", ">=": "at least", ">": "above", "between": "between"}


@dataclass
class CriterionResult:
    id: str
    label: str
    value: float | None
    threshold: float | list[float]
    op: str
    unit: str
    passed: bool | None  # None: not measured
    required: bool
    explanation: str  # what the criterion means, plain words (from the protocol)
    verdict: str  # the outcome in plain words
    source: str
    evidence: str


@dataclass
class ReferenceResult:
    label: str
    value: float | None
    unit: str
    groups: list[dict[str, Any]]
    source: str
    evidence: str
    nearest: str | None  # the population whose value/range the measurement is closest to


@dataclass
class TestResult:
    protocol: str
    title: str
    status: str  # "pass" | "fail" | "incomplete" | "not scored"
    criteria: list[CriterionResult] = field(default_factory=list)
    references: list[ReferenceResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool | None:
        return {"pass": True, "fail": False}.get(self.status)

    @property
    def positive(self) -> bool:
        """A positive test in the Luomajoki sense: the movement was not controlled (failed)."""
        return self.status == "fail"

    def summary(self) -> str:
        words = {"pass": "passed", "fail": "failed (positive test)", "incomplete": "incomplete (a criterion could "
                 "not be measured)", "not scored": "measured; this protocol has no pass/fail criterion"}
        return f"{self.title}: {words[self.status]}"

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "title": self.title, "status": self.status, "passed": self.passed,
                "criteria": [asdict(c) for c in self.criteria], "references": [asdict(r) for r in self.references],
                "notes": list(self.notes)}


@dataclass
class BatteryResult:
    battery: str
    title: str
    items: list[TestResult]
    missing: list[str]
    positive: int
    passed: int
    not_assessed: int
    threshold: int
    impaired: bool | None  # None: undetermined (too many tests not assessed)
    statement: str
    source: str
    evidence: str
    references: list[dict[str, Any]] = field(default_factory=list)
    titles: dict[str, str] = field(default_factory=dict)  # every item's title, in the battery's order

    def rows(self) -> list[tuple[str, TestResult | None]]:
        """(title, result) of every item in the battery's order; result None: not done."""
        done = {r.protocol: r for r in self.items}
        names = list(self.titles) or [r.protocol for r in self.items] + list(self.missing)
        return [(done[n].title if n in done else self.titles.get(n, n), done.get(n)) for n in names]


# --- the analysis in display units -------------------------------------------------------------

def _display(v: Any) -> Any:
    """SI result dicts (``read_analysis``) → display units, using each result's ``units`` map."""
    if isinstance(v, list):
        return [_display(x) for x in v]
    if not isinstance(v, dict):
        return v
    units = v.get("units") if isinstance(v.get("units"), dict) else None
    out = {k: _display(x) for k, x in v.items()}
    if units is not None:
        new_units = dict(units)
        for k, u in units.items():
            if k in out and out[k] is not None:
                val = out[k]
                if isinstance(val, list):
                    conv = [display_value(x, u)[0] if x is not None else None for x in val]
                    new_units[k] = display_value(1.0, u)[1]
                    out[k] = conv
                else:
                    out[k], new_units[k] = display_value(val, u)
            else:
                new_units[k] = display_value(1.0, u)[1]
        out["units"] = new_units
    return out


def display_results(analysis: Any) -> dict[str, Any]:
    """The metric groups of an ``Analysis`` or of a stored analysis dict, in display units."""
    if hasattr(analysis, "to_dict") and hasattr(analysis, "results"):
        return analysis.to_dict(display=True)["results"]
    if isinstance(analysis, dict):
        d = analysis.get("results", analysis)
        if str(analysis.get("units", "")).startswith("degrees"):
            return d
        return _display(d)
    raise TypeError(f"cannot score {type(analysis).__name__}: pass an Analysis or a stored analysis dict")


_TOKEN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\[(\d*)\])?$")


def metric_value(results: dict[str, Any], path: str, aggregate: str | None = None,
                 absolute: bool = False) -> tuple[float | None, str, str]:
    """Resolve ``group.field[.sub]``, ``x[2]`` (an element) or ``x[].f`` (a field over a list, which
    needs ``aggregate``). Returns (value or None, unit, reason when None)."""
    cur: list[Any] = [results]
    unit = ""
    over_list = False
    for part in path.split("."):
        m = _TOKEN.match(part)
        if not m:
            return None, "", f"bad metric path {path!r}"
        key, bracket, idx = m.group(1), m.group(2), m.group(3)
        nxt: list[Any] = []
        for c in cur:
            if not isinstance(c, dict) or key not in c or c[key] is None:
                continue
            if c.get("valid") is False:
                return None, "", f"{path.split('.')[0]} not valid: {c.get('reason') or 'no reason given'}"
            unit = (c.get("units") or {}).get(key, unit if bracket == "[]" else "")
            v = c[key]
            if bracket:
                if not isinstance(v, list):
                    continue
                if idx == "":
                    over_list = True
                    nxt.extend(v)
                    continue
                if int(idx) >= len(v):
                    continue
                v = v[int(idx)]
            nxt.append(v)
        cur = nxt
        if not cur:
            if over_list and aggregate == "count":
                return 0.0, "", ""
            return None, "", f"{path} is not in the analysis"
    vals = [float(x) for x in cur if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)]
    vals += [1.0 if x else 0.0 for x in cur if isinstance(x, bool)]
    if over_list or aggregate:
        agg = aggregate or "mean"
        if agg == "count":
            return float(len(cur)), "", ""
        if not vals:
            return None, unit, f"{path}: no finite values"
        arr = np.abs(vals) if absolute else np.asarray(vals)
        return float(getattr(np, agg)(arr)), unit, ""
    if not vals:
        return None, unit, f"{path} has no finite value"
    return (abs(vals[0]) if absolute else vals[0]), unit, ""


def _compare(v: float, op: str, th: Any) -> bool:
    if op == "between":
        return th[0] <= v <= th[1]
    return {"<=": v <= th, "<": v < th, ">=": v >= th, ">": v > th}[op]


def format_value(v: float | None, unit: str = "", nd: int | None = None) -> str:
    """A value as people read it: its unit (``deg`` → °, ``m/s^2`` → m/s²), ``nd`` decimals (default 0–3 by
    size); "—" when not measured (None, NaN)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if nd is None:
        nd = shown_decimals(v, unit)
    u = {"deg": "°", "%": " %", "m/s^2": " m/s²", "": ""}.get(unit, f" {unit}")
    return f"{v:.{nd}f}{u}"


def shown_decimals(v: float, unit: str = "") -> int:
    """How many decimals :func:`format_value` shows ``v`` with by default: 0 from 100, 1 from 1 and for
    degrees (tenths are below the sensors' accuracy already, ≈ 2° RMSE), else 3."""
    return 0 if abs(v) >= 100 else 1 if abs(v) >= 1 or unit == "deg" else 3


def threshold_words(op: str, th: Any, unit: str) -> str:
    """A criterion's threshold in words: "at least 50.0°", "between 0.010 m/s² and 0.070 m/s²"."""
    if op == "between":
        return f"between {format_value(th[0], unit)} and {format_value(th[1], unit)}"
    return f"{_OP_WORDS[op]} {format_value(th, unit)}"


def threshold_text(op: str, th: Any, unit: str) -> str:
    """A criterion's threshold, short (tables): "≥ 50.0°", "0.010 – 0.070 m/s²"."""
    if op == "between":
        return f"{format_value(th[0], unit)} – {format_value(th[1], unit)}"
    return f"{_OP_SIGNS.get(op, op)} {format_value(th, unit)}"


def _criterion(c: dict[str, Any], res: dict[str, Any]) -> CriterionResult:
    value, unit, why = metric_value(res, c["metric"], c.get("aggregate"), c.get("absolute", False))
    want_unit = c.get("unit", unit)
    required = c.get("required", True)
    if value is not None and unit and want_unit and unit != want_unit:
        value, why = None, f"the analysis gives {c['metric']} in {unit}, the criterion is in {want_unit}"
    if value is None:
        passed, verdict = None, f"not measured: {why}"
    else:
        passed = _compare(value, c["op"], c["threshold"])
        verdict = (f"{format_value(value, want_unit)} — needed {threshold_words(c['op'], c['threshold'], want_unit)}: "
                   + ("met" if passed else "not met"))
    return CriterionResult(c["id"], c["label"], value, c["threshold"], c["op"], want_unit, passed, required,
                           c["explanation"], verdict, c["source"], c["evidence"])


def _reference(r: dict[str, Any], res: dict[str, Any]) -> ReferenceResult:
    value, unit, _ = metric_value(res, r["metric"], r.get("aggregate"), r.get("absolute", False))
    unit = r.get("unit", unit)
    nearest = None
    if value is not None:
        best = math.inf
        for g in r["groups"]:
            if "low" in g and "high" in g:
                d = 0.0 if g["low"] <= value <= g["high"] else min(abs(value - g["low"]), abs(value - g["high"]))
            else:
                d = abs(value - g["value"])
            if d < best:
                best, nearest = d, g["population"]
    return ReferenceResult(r["label"], value, unit, [dict(g) for g in r["groups"]], r["source"], r["evidence"],
                           nearest)


def score(protocol: Protocol, analysis: Any) -> TestResult:
    """Score one session's analysis against a test protocol.

    Status: ``fail`` if any measured criterion is not met; ``incomplete`` if a required criterion
    could not be measured; ``pass`` if every required criterion was measured and met;
    ``not scored`` if the protocol has no criterion (a measurement, shown against its references).
    """
    res = display_results(analysis)
    crit = [_criterion(c, res) for c in protocol.get("criteria", [])]
    refs = [_reference(r, res) for r in protocol.get("references", [])]
    if not crit:
        status = "not scored"
    elif any(c.passed is False for c in crit):
        status = "fail"
    elif any(c.passed is None and c.required for c in crit):
        status = "incomplete"
    else:
        status = "pass"
    notes = list(protocol.get("notes", []))
    notes += [f"{c.label}: {c.verdict}" for c in crit if c.passed is None]
    return TestResult(protocol.name, protocol.title, status, crit, refs, notes)


def score_battery(battery: Protocol, results: Sequence[TestResult],
                  titles: Mapping[str, str] | None = None) -> BatteryResult:
    """Count positive (failed) tests among the battery's items (Luomajoki et al. 2007, 2008).

    When a test was done more than once, its last result counts. ``impaired`` is None when the tests
    not assessed could change the conclusion. ``titles`` names the items (protocol name → title) so a
    test not done is shown by its title, not its file name.
    """
    last: dict[str, TestResult] = {}
    for r in results:
        if r.protocol in battery.items:
            last[r.protocol] = r
    items = [last[n] for n in battery.items if n in last]
    missing = [n for n in battery.items if n not in last]
    pos = sum(r.status == "fail" for r in items)
    ok = sum(r.status == "pass" for r in items)
    na = len(battery.items) - pos - ok
    k = int(battery.scoring["impaired_if_positive_at_least"])
    impaired: bool | None = True if pos >= k else (False if pos + na < k else None)
    verdict = {True: battery.scoring.get("impaired_words", "movement control impairment"),
               False: battery.scoring.get("not_impaired_words", "no movement control impairment"),
               None: "undetermined: too few tests were assessed"}[impaired]
    statement = f"{pos} of {len(battery.items)} tests positive ({ok} passed, {na} not assessed): {verdict}"
    return BatteryResult(battery.name, battery.title, items, missing, pos, ok, na, k, impaired, statement,
                         battery.scoring.get("source", ""), battery.scoring.get("evidence", "PROJECT DEFAULT"),
                         [dict(r) for r in battery.get("references", [])],
                         {n: (titles or {}).get(n, last[n].title if n in last else n) for n in battery.items})
