"""A readable summary of a session (``lumbar info``)."""
from __future__ import annotations

from typing import Any

import numpy as np

from lumbar.storage.reader import Session
from lumbar.types import ImuBatch, SampleFlag

__all__ = ["summarize", "format_summary"]


def _sensor_summary(b: ImuBatch, nominal_rate_hz: float) -> dict[str, Any]:
    n = len(b)
    duration = b.duration_s
    seq = b.seq[b.seq >= 0]
    seq_missing = int(np.sum(np.clip(np.diff(seq) - 1, 0, None))) if seq.size > 1 else 0
    return {
        "samples": n,
        "first_s": float(b.time_s[0]) if n else None,
        "last_s": float(b.time_s[-1]) if n else None,
        "duration_s": duration,
        "nominal_rate_hz": nominal_rate_hz,
        "achieved_rate_hz": (n - 1) / duration if duration > 0 else None,
        "gaps": int(np.count_nonzero(b.has_flag(SampleFlag.GAP_BEFORE))),
        "missing_samples_by_seq": seq_missing,
        "interpolated": int(np.count_nonzero(b.has_flag(SampleFlag.INTERPOLATED))),
        "acc_saturated": int(np.count_nonzero(b.has_flag(SampleFlag.ACC_SATURATED))),
        "gyro_saturated": int(np.count_nonzero(b.has_flag(SampleFlag.GYRO_SATURATED))),
        "corrupt": int(np.count_nonzero(b.has_flag(SampleFlag.CORRUPT))),
    }


def summarize(session: Session) -> dict[str, Any]:
    """JSON-ready summary: who/what, sensors with rates and counts, gaps, events."""
    sensors = {}
    for sid, info in session.sensors.items():
        s = _sensor_summary(session.data[sid], info.nominal_rate_hz)
        s.update(placement=info.placement, family=info.family, model=info.model, address=info.address)
        sensors[sid] = s
    durations = [s["duration_s"] for s in sensors.values()]
    return {
        "file": str(session.path),
        "format_version": session.format_version,
        "complete": session.complete,
        "subject_code": session.info.subject_code,
        "operator": session.info.operator,
        "protocol": session.info.protocol,
        "notes": session.info.notes,
        "start_time_utc": session.info.start_time_utc,
        "session_id": session.info.session_id,
        "software_version": session.info.software_version,
        "duration_s": max(durations) if durations else 0.0,
        "sensors": sensors,
        "events": [{"time_s": e.time_s, "label": e.label, "note": e.note} for e in session.events],
        "has_truth": session.truth is not None,
    }


def format_summary(s: dict[str, Any], max_events: int = 12) -> str:
    """Human-readable text of :func:`summarize`'s output."""
    lines = [
        f"Session file  {s['file']}",
        f"Subject       {s['subject_code']}    operator: {s['operator'] or '-'}",
        f"Protocol      {s['protocol'] or '-'}",
        f"Started       {s['start_time_utc']}    duration {s['duration_s']:.1f} s",
        f"Format        v{s['format_version']}, written by lumbar {s['software_version']}",
    ]
    if not s["complete"]:
        lines.append("Status        INTERRUPTED recording: data up to the last save are shown")
    if s["notes"]:
        lines.append(f"Notes         {s['notes']}")
    if s["has_truth"]:
        lines.append("Ground truth  yes (simulated session; stored separately under 'truth')")
    lines.append("")
    lines.append(f"{'sensor':<12} {'placement':<12} {'model':<18} {'samples':>9} {'rate Hz':>16} {'gaps':>5} {'lost':>6} {'satur.':>6}")
    for sid, x in s["sensors"].items():
        rate = f"{x['achieved_rate_hz']:.2f}/{x['nominal_rate_hz']:g}" if x["achieved_rate_hz"] else "-"
        sat = x["acc_saturated"] + x["gyro_saturated"]
        lines.append(
            f"{sid:<12} {x['placement']:<12} {x['model'][:18]:<18} {x['samples']:>9} {rate:>16} "
            f"{x['gaps']:>5} {x['missing_samples_by_seq']:>6} {sat:>6}"
        )
    ev = s["events"]
    lines.append("")
    lines.append(f"Events        {len(ev)}")
    for e in ev[:max_events]:
        lines.append(f"  {e['time_s']:8.2f} s  {e['label']}" + (f"  ({e['note']})" if e["note"] else ""))
    if len(ev) > max_events:
        lines.append(f"  … {len(ev) - max_events} more (use --json for all)")
    return "\n".join(lines)
