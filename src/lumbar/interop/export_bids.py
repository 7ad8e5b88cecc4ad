"""Motion-BIDS export: a session file as a BIDS dataset of the ``motion`` datatype.

Follows the BIDS specification 1.11.2, "Modality specific files → Motion" (BEP029, Jeung et al.
2024, *Sci Data* 11:716), as its machine-readable schema states it (``rules.files.raw.motion``,
``rules.sidecars.motion*``, ``rules.tabular_data.motion.motionChannels``)::

    DIR/dataset_description.json            Name, BIDSVersion, DatasetType, GeneratedBy
    DIR/participants.tsv                    participant_id only (pseudonymous code; rows merged)
    DIR/README.md                           written once if missing
    DIR/sub-<s>/ses-<e>/motion/
        sub-<s>_ses-<e>_task-<t>_tracksys-<sensor>_motion.tsv     samples, no header row
        sub-<s>_ses-<e>_task-<t>_tracksys-<sensor>_channels.tsv   name component type tracked_point units …
        sub-<s>_ses-<e>_task-<t>_tracksys-<sensor>_motion.json    TaskName, SamplingFrequency, …
        sub-<s>_ses-<e>_task-<t>_events.tsv (+ .json)             operator markers (onset in session time)

One tracking system per sensor group of the session file: each sensor has its own clock, rate and
gaps, so each gets its own ``tracksys`` and its own time column (a ``LATENCY`` channel, seconds since
the session start, 6 decimals as the specification requires). Labels are the project's names with
every character outside ``[A-Za-z0-9]`` removed (``thigh_left`` → ``thighleft``).

Only the pseudonymous subject code leaves the session file: the operator, notes and the recording's
wall-clock start are not exported (the start time would date the visit).
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from lumbar.storage.reader import Session, read_session
from lumbar.types import software_version

__all__ = ["BIDS_VERSION", "bids_label", "export_bids", "read_motion_tsv", "motion_channels"]

#: The specification version whose rules this writer follows.
BIDS_VERSION = "1.11.2"
MISSING = "n/a"

_LABEL_RE = re.compile(r"[^A-Za-z0-9]")


def bids_label(text: str, what: str = "label") -> str:
    """A BIDS label (``[A-Za-z0-9]+``) from a project name."""
    label = _LABEL_RE.sub("", text)
    if not label:
        from lumbar.errors import ValidationError

        raise ValidationError(f"cannot make a BIDS {what} from {text!r}: it has no letters or digits")
    return label


def motion_channels(sensor_id: str, rate_hz: float, placement: str) -> list[dict[str, str]]:
    """Rows of ``*_channels.tsv`` for one sensor, in the column order of ``*_motion.tsv``."""
    tp = bids_label(sensor_id, "tracked point")
    rate = f"{rate_hz:g}" if rate_hz > 0 else MISSING

    def row(name: str, comp: str, typ: str, units: str, desc: str) -> dict[str, str]:
        return {"name": f"{tp}_{name}", "component": comp, "type": typ, "tracked_point": tp, "units": units,
                "placement": placement, "sampling_frequency": rate, "description": desc}

    rows = [row("latency", MISSING, "LATENCY", "s", "host time of the sample, seconds since the session start")]
    rows += [row(f"acc_{a}", a, "ACCEL", "m/s^2", f"specific force along the sensor {a} axis (includes gravity)")
             for a in "xyz"]
    rows += [row(f"gyro_{a}", a, "GYRO", "rad/s", f"angular rate about the sensor {a} axis") for a in "xyz"]
    rows += [
        row("device_time", MISSING, "MISC", "s", "the sensor's own clock in its own epoch; n/a where it has none"),
        row("seq", MISSING, "MISC", "n/a", "device sample counter; -1 where unknown"),
        row("flags", MISSING, "MISC", "n/a", "per-sample flag bits: 1 gap before, 2 interpolated, 4 acc saturated, "
            "8 gyro saturated, 16 host time only, 32 corrupt"),
    ]
    return rows


_CHANNEL_COLUMNS = ("name", "component", "type", "tracked_point", "units", "placement", "sampling_frequency",
                    "description")


def _write_tsv(path: Path, header: list[str] | tuple[str, ...], rows: list[list[Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _fmt_col(values: np.ndarray, fmt: str) -> list[str]:
    return [MISSING if not np.isfinite(v) else fmt % v for v in values]


def _write_motion_tsv(path: Path, session: Session, sid: str) -> int:
    b = session.data[sid]
    if np.isfinite(b.device_time_s).all():
        dev = np.char.mod("%.9f", b.device_time_s)
    else:
        dev = np.array(_fmt_col(b.device_time_s, "%.9f"), dtype=object)
    cols = [
        np.char.mod("%.6f", b.time_s),  # LATENCY: ss[.000000]
        *(np.char.mod("%.9g", b.acc[:, i].astype(np.float32).astype(np.float64)) for i in range(3)),
        *(np.char.mod("%.9g", b.gyro[:, i].astype(np.float32).astype(np.float64)) for i in range(3)),
        dev,
        np.char.mod("%d", b.seq),
        np.char.mod("%d", b.flags),
    ]
    with open(path, "w", encoding="utf-8", newline="") as f:
        if len(b):
            lines = ["\t".join(r) for r in zip(*cols)]
            f.write("\n".join(lines) + "\n")
    return len(b)


def _effective_rate(t: np.ndarray) -> float | str:
    if len(t) < 2 or not t[-1] > t[0]:
        return MISSING
    return float((len(t) - 1) / (t[-1] - t[0]))


def _merge_participants(path: Path, participant_id: str) -> None:
    ids: list[str] = []
    if path.exists():
        with open(path, encoding="utf-8", newline="") as f:
            r = csv.reader(f, delimiter="\t")
            head = next(r, None)
            if head and head[0] == "participant_id":
                ids = [row[0] for row in r if row]
    if participant_id not in ids:
        ids.append(participant_id)
    _write_tsv(path, ("participant_id",), [[p] for p in sorted(ids)])


def export_bids(session_file: str | Path, out_dir: str | Path, *, session_label: str | None = None,
                dataset_name: str = "Lumbar motor control (wearable IMU) sessions") -> list[Path]:
    """Write one session into the BIDS dataset at ``out_dir`` (created or extended).

    Parameters
    ----------
    session_file : path
    out_dir : path
        The dataset root. Several sessions may be exported into the same root.
    session_label : str, optional
        The ``ses-`` label; default: the first 12 letters and digits of the session id.
    dataset_name : str
        ``Name`` in ``dataset_description.json`` (if the file does not exist yet).

    Returns
    -------
    list of Path
        Every file written.
    """
    session = read_session(session_file, load_truth=False)
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    sub = bids_label(session.info.subject_code, "subject label")
    ses = bids_label(session_label or session.info.session_id, "session label")[: None if session_label else 12]
    task = bids_label(session.info.protocol or "unknown", "task label")
    written: list[Path] = []

    dd = root / "dataset_description.json"
    if not dd.exists():
        dd.write_text(json.dumps({
            "Name": dataset_name,
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "raw",
            "GeneratedBy": [{"Name": "lumbar-motor-control", "Version": software_version(),
                             "Description": "lumbar export --format bids"}],
        }, indent=2) + "\n", encoding="utf-8")
        written.append(dd)
    readme = root / "README.md"
    if not readme.exists():
        readme.write_text(
            "# Lumbar motor control sessions (Motion-BIDS)\n\n"
            "Inertial sensors (accelerometer, gyroscope) on the trunk and pelvis, exported by "
            "`lumbar export --format bids`.\nOne tracking system per sensor; each has its own LATENCY column "
            "(seconds since the session start). Units are SI.\n", encoding="utf-8")
        written.append(readme)
    _merge_participants(root / "participants.tsv", f"sub-{sub}")
    written.append(root / "participants.tsv")

    mdir = root / f"sub-{sub}" / f"ses-{ses}" / "motion"
    mdir.mkdir(parents=True, exist_ok=True)
    base = f"sub-{sub}_ses-{ses}_task-{task}"
    for sid, info in session.sensors.items():
        if sid not in session.data:
            continue
        stem = f"{base}_tracksys-{bids_label(sid, 'tracking system label')}"
        rows = motion_channels(sid, info.nominal_rate_hz, info.placement)
        _write_tsv(mdir / f"{stem}_channels.tsv", _CHANNEL_COLUMNS, [[r[c] for c in _CHANNEL_COLUMNS] for r in rows])
        n = _write_motion_tsv(mdir / f"{stem}_motion.tsv", session, sid)
        types = [r["type"] for r in rows]
        sidecar: dict[str, Any] = {
            "TaskName": session.info.protocol or "unknown",
            "TaskDescription": f"lumbar motor control protocol {session.info.protocol!r}",
            "SamplingFrequency": info.nominal_rate_hz if info.nominal_rate_hz > 0 else MISSING,
            "SamplingFrequencyEffective": _effective_rate(session.data[sid].time_s),
            "TrackingSystemName": f"{sid} IMU" + (f" ({info.model})" if info.model else ""),
            "Manufacturer": info.family or MISSING,
            "ManufacturersModelName": info.model or MISSING,
            "SoftwareVersions": info.firmware or MISSING,
            "ACCELChannelCount": types.count("ACCEL"),
            "GYROChannelCount": types.count("GYRO"),
            "LATENCYChannelCount": types.count("LATENCY"),
            "MiscChannelCount": types.count("MISC"),
            "MotionChannelCount": len(rows),
            "TrackedPointsCount": 1,
            "MissingValues": MISSING,
            "RecordingDuration": float(session.data[sid].time_s[-1] - session.data[sid].time_s[0]) if n else 0.0,
            "RecordingType": "continuous",
        }
        (mdir / f"{stem}_motion.json").write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
        written += [mdir / f"{stem}_channels.tsv", mdir / f"{stem}_motion.tsv", mdir / f"{stem}_motion.json"]

    ev = mdir / f"{base}_events.tsv"
    _write_tsv(ev, ("onset", "duration", "trial_type", "note"),
               [[f"{e.time_s:.6f}", "0", e.label or MISSING, e.note or MISSING] for e in session.events])
    (mdir / f"{base}_events.json").write_text(json.dumps({
        "onset": {"Description": "marker time, seconds since the session start (the time base of the "
                                 "LATENCY channels)", "Units": "s"},
        "trial_type": {"Description": "marker label (calibration postures, task start/stop, operator marks)"},
        "note": {"Description": "free-text note attached to the marker"},
    }, indent=2) + "\n", encoding="utf-8")
    written += [ev, mdir / f"{base}_events.json"]
    return written


def read_motion_tsv(motion_tsv: str | Path) -> dict[str, np.ndarray]:
    """Read a ``*_motion.tsv`` with its ``*_channels.tsv`` into channel name → float64 array (n/a → NaN)."""
    motion_tsv = Path(motion_tsv)
    channels = motion_tsv.with_name(motion_tsv.name.replace("_motion.tsv", "_channels.tsv"))
    with open(channels, encoding="utf-8", newline="") as f:
        names = [row["name"] for row in csv.DictReader(f, delimiter="\t")]
    text = motion_tsv.read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line]
    arr = np.array([[np.nan if v == MISSING else float(v) for v in r] for r in rows], dtype=np.float64)
    arr = arr.reshape(len(rows), len(names))
    return {n: arr[:, i] for i, n in enumerate(names)}
