"""The protocol file schema and its validator (a small one of our own: no dependency).

A malformed file is refused with :class:`ProtocolError`, whose message names the file, the field
(a dotted path such as ``criteria[1].op``) and the problem in plain words.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from lumbar.errors import ValidationError

__all__ = ["ProtocolError", "validate_protocol", "SCHEMA_VERSION", "EVIDENCE", "EVIDENCE_WORDS", "OPS", "AGGREGATES", "SIGNALS"]

SCHEMA_VERSION = 1
#: Evidence labels, as METRICS.md uses them.
EVIDENCE = ("CONFIRMED", "FROM MEMORY – VERIFY", "PROJECT DEFAULT")
#: The labels as a clinician reads them beside a threshold (reports, tooltips).
EVIDENCE_WORDS = {"CONFIRMED": "published value",
                  "FROM MEMORY – VERIFY": "published value, citation still to be checked",
                  "PROJECT DEFAULT": "project default: no published value"}
OPS = ("<=", "<", ">=", ">", "between")
AGGREGATES = ("mean", "median", "max", "min", "count")
#: Angles an analysis plan may name (``lumbar.pipeline.Processed.signal``).
SIGNALS = ("trunk_flexion", "pelvic_tilt", "lumbar_flexion", "hip_flexion", "knee_flexion")
KINDS = ("test", "battery")
SENSORS = ("lumbar", "sacrum", "thigh_left", "thigh_right", "shank_left", "shank_right")


class ProtocolError(ValidationError):
    """A protocol file that cannot be used; the message names file, field and problem."""

    def __init__(self, source: str | Path, field: str, problem: str) -> None:
        self.source, self.field, self.problem = str(source), field, problem
        super().__init__(f"{source}: field '{field}': {problem}")


_STR, _NUM, _INT, _BOOL, _LIST, _DICT = "text", "number", "whole number", "true/false", "list", "table"


def _type_ok(v: Any, t: str) -> bool:
    if t == _STR:
        return isinstance(v, str) and v.strip() != ""
    if t == _NUM:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t == _INT:
        return isinstance(v, int) and not isinstance(v, bool)
    if t == _BOOL:
        return isinstance(v, bool)
    if t == _LIST:
        return isinstance(v, list)
    if t == _DICT:
        return isinstance(v, dict)
    raise AssertionError(t)


# field -> (type, required)
_TOP = {
    "schema": (_INT, True), "kind": (_STR, True), "name": (_STR, True), "title": (_STR, True),
    "purpose": (_STR, True), "instructions": (_LIST, True), "sensors": (_LIST, False),
    "calibration": (_STR, False), "movement": (_STR, False), "conditions": (_DICT, False),
    "repetitions": (_INT, False), "duration_s": (_NUM, False), "metrics": (_LIST, False),
    "criteria": (_LIST, False), "references": (_LIST, False), "mdc": (_LIST, False), "analysis": (_DICT, False),
    "battery": (_DICT, False), "items": (_LIST, False), "scoring": (_DICT, False), "emulation": (_DICT, False),
    "published_criterion": (_STR, False), "notes": (_LIST, False), "default_for_movement": (_BOOL, False),
}
_CRITERION = {
    "id": (_STR, True), "label": (_STR, True), "metric": (_STR, True), "op": (_STR, True),
    "threshold": (None, True), "unit": (_STR, False), "aggregate": (_STR, False), "absolute": (_BOOL, False),
    "explanation": (_STR, True), "source": (_STR, True), "evidence": (_STR, True), "required": (_BOOL, False),
}
_REFERENCE = {
    "label": (_STR, True), "metric": (_STR, True), "unit": (_STR, False), "aggregate": (_STR, False),
    "absolute": (_BOOL, False), "groups": (_LIST, True), "source": (_STR, True), "evidence": (_STR, True),
}
_GROUP = {"population": (_STR, True), "value": (_NUM, False), "low": (_NUM, False), "high": (_NUM, False),
          "sd": (_NUM, False)}
_MDC = {"metric": (_STR, True), "label": (_STR, True), "value": (_NUM, True), "unit": (_STR, False),
        "aggregate": (_STR, False), "absolute": (_BOOL, False), "source": (_STR, True), "evidence": (_STR, True)}
_ANALYSIS = {"principal": (_STR, False), "moving": (_STR, False), "controlled": (_STR, False),
             "forbidden_sign": (_INT, False), "target_deg": (_NUM, False), "tolerance_deg": (_NUM, False),
             "ratio_tolerance": (_NUM, False), "posture": (_STR, False),
             "sway": (_BOOL, False), "rhythm": (_BOOL, False), "frontal": (_BOOL, False),
             "rise_and_sit": (_BOOL, False), "opposite_direction": (_STR, False),
             "first_direction": (_STR, False), "first_sign": (_INT, False), "with_thighs": (_DICT, False),
             "with_shanks": (_DICT, False)}


def _fields(src: str, where: str, d: Any, spec: dict[str, tuple[str | None, bool]]) -> None:
    if not isinstance(d, dict):
        raise ProtocolError(src, where or "(top level)", f"must be a table of fields, got {type(d).__name__}")
    for k in d:
        if k not in spec:
            raise ProtocolError(src, f"{where}.{k}" if where else k,
                                f"unknown field; allowed here: {', '.join(sorted(spec))}")
    for k, (t, required) in spec.items():
        name = f"{where}.{k}" if where else k
        if k not in d:
            if required:
                raise ProtocolError(src, name, "is required but missing")
            continue
        if t is not None and not _type_ok(d[k], t):
            raise ProtocolError(src, name, f"must be {t}, got {d[k]!r}")
    if "evidence" in d and d["evidence"] not in EVIDENCE:
        raise ProtocolError(src, f"{where}.evidence" if where else "evidence",
                            f"must be one of {', '.join(repr(e) for e in EVIDENCE)}; got {d['evidence']!r}")
    if "aggregate" in d and d["aggregate"] not in AGGREGATES:
        raise ProtocolError(src, f"{where}.aggregate", f"must be one of {', '.join(AGGREGATES)}; got {d['aggregate']!r}")


#: The plan fields that ``analysis.with_thighs`` (or ``with_shanks``) may replace.
_WITH_THIGHS = ("principal", "moving", "first_sign", "target_deg")
#: What a leg sensor adds to a plan: thigh sensors, the hip angle (replacing a stand-in for it); shank
#: sensors, the knee angle (the moving segment of the knee tests, not otherwise seen).
_WITH_LEGS = ("with_thighs", "with_shanks")


def _plan_values(src: str, where: str, plan: dict[str, Any]) -> None:
    for k in ("principal", "moving", "controlled"):
        if k in plan and plan[k] not in SIGNALS:
            raise ProtocolError(src, f"{where}.{k}", f"must be one of {', '.join(SIGNALS)}; got {plan[k]!r}")
    if plan.get("first_sign", 1) not in (1, -1):
        raise ProtocolError(src, f"{where}.first_sign", "must be +1 or -1 (the principal angle's sign)")


def _str_list(src: str, name: str, v: list) -> None:
    for i, x in enumerate(v):
        if not _type_ok(x, _STR):
            raise ProtocolError(src, f"{name}[{i}]", f"must be non-empty text, got {x!r}")


def validate_protocol(d: Any, source: str | Path) -> dict[str, Any]:
    """Check a parsed protocol definition; return it unchanged or raise :class:`ProtocolError`."""
    src = str(source)
    _fields(src, "", d, _TOP)
    if d["schema"] != SCHEMA_VERSION:
        raise ProtocolError(src, "schema", f"this software reads schema {SCHEMA_VERSION}; got {d['schema']}")
    if d["kind"] not in KINDS:
        raise ProtocolError(src, "kind", f"must be 'test' or 'battery'; got {d['kind']!r}")
    name = d["name"]
    if not all(c.isalnum() or c in "-_." for c in name) or name != name.lower():
        raise ProtocolError(src, "name", f"use lower-case letters, digits, '-', '_' or '.' only; got {name!r}")
    _str_list(src, "instructions", d["instructions"])
    if not d["instructions"]:
        raise ProtocolError(src, "instructions", "give the patient at least one instruction")
    for i, s in enumerate(d.get("sensors", [])):
        if s not in SENSORS:
            raise ProtocolError(src, f"sensors[{i}]", f"unknown placement {s!r}; known: {', '.join(SENSORS)}")
    for fld in ("metrics", "notes"):
        _str_list(src, fld, d.get(fld, []))
    if d["kind"] == "test":
        if "movement" not in d:
            raise ProtocolError(src, "movement", "a test needs the movement it is analysed as (e.g. 'waiters-bow')")
        if "repetitions" not in d and "duration_s" not in d:
            raise ProtocolError(src, "repetitions", "a test needs 'repetitions' or 'duration_s'")
        if d.get("repetitions", 1) < 0 or d.get("duration_s", 1) <= 0:
            raise ProtocolError(src, "duration_s" if d.get("duration_s", 1) <= 0 else "repetitions",
                                "must be positive")
    ids = set()
    for i, c in enumerate(d.get("criteria", [])):
        w = f"criteria[{i}]"
        _fields(src, w, c, _CRITERION)
        if c["id"] in ids:
            raise ProtocolError(src, f"{w}.id", f"repeats the id {c['id']!r}")
        ids.add(c["id"])
        if c["op"] not in OPS:
            raise ProtocolError(src, f"{w}.op", f"must be one of {', '.join(OPS)}; got {c['op']!r}")
        th = c["threshold"]
        if c["op"] == "between":
            if not (isinstance(th, list) and len(th) == 2 and all(_type_ok(x, _NUM) for x in th) and th[0] <= th[1]):
                raise ProtocolError(src, f"{w}.threshold", f"'between' needs [low, high] numbers, low ≤ high; got {th!r}")
        elif not _type_ok(th, _NUM):
            raise ProtocolError(src, f"{w}.threshold", f"must be a number; got {th!r}")
    for i, r in enumerate(d.get("references", [])):
        _fields(src, f"references[{i}]", r, _REFERENCE)
        for j, g in enumerate(r["groups"]):
            _fields(src, f"references[{i}].groups[{j}]", g, _GROUP)
            if "value" not in g and not ("low" in g and "high" in g):
                raise ProtocolError(src, f"references[{i}].groups[{j}]", "give 'value' or both 'low' and 'high'")
    for i, m in enumerate(d.get("mdc", [])):
        _fields(src, f"mdc[{i}]", m, _MDC)
    if "analysis" in d:
        _fields(src, "analysis", d["analysis"], _ANALYSIS)
        _plan_values(src, "analysis", d["analysis"])
        if d["analysis"].get("forbidden_sign", 1) not in (1, -1):
            raise ProtocolError(src, "analysis.forbidden_sign", "must be +1 (flexion) or -1 (extension)")
        for key in _WITH_LEGS:  # what changes when leg sensors are worn
            legs = d["analysis"].get(key, {})
            _fields(src, f"analysis.{key}", legs, {k: _ANALYSIS[k] for k in _WITH_THIGHS})
            _plan_values(src, f"analysis.{key}", legs)
    if d["kind"] == "battery":
        if not d.get("items"):
            raise ProtocolError(src, "items", "a battery lists the names of its tests")
        _str_list(src, "items", d["items"])
        sc = d.get("scoring")
        if not isinstance(sc, dict) or "impaired_if_positive_at_least" not in sc:
            raise ProtocolError(src, "scoring.impaired_if_positive_at_least", "is required for a battery")
        if not _type_ok(sc["impaired_if_positive_at_least"], _INT):
            raise ProtocolError(src, "scoring.impaired_if_positive_at_least", "must be a whole number")
    if "battery" in d:
        b = d["battery"]
        if not isinstance(b.get("name"), str):
            raise ProtocolError(src, "battery.name", "must name the battery (e.g. 'luomajoki')")
    return d
