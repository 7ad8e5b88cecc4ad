"""Import CSV recordings with declared columns and units into a session file.

Two kinds of input:

* **Declared columns** (any lab's CSV): one file per sensor, the columns holding time, the three
  accelerometer axes and the three gyroscope axes named in a :class:`CsvColumns`, each with its unit
  (time ``s``/``ms``/``us``/``ns``; acceleration ``m/s^2``/``g``/``mg``; angular rate
  ``rad/s``/``deg/s``). Times may be relative or absolute (e.g. Unix seconds): the session starts at
  the earliest sample of any sensor, and the raw clock is kept as ``device_time_s``.
* **This project's CSV export** (:mod:`lumbar.interop.export_csv`): :func:`import_csv_export` reads the
  ``*_session.json`` and its CSV files back into a session equal to the exported one.

A header cell may carry its unit in brackets (``acc_x [m/s^2]``); a column can then be named with or
without the bracket, and its bracketed unit is used when none is declared.
"""
from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from lumbar.errors import ValidationError
from lumbar.storage.writer import write_session
from lumbar.types import STANDARD_G, Event, ImuBatch, SampleFlag, SensorInfo, SessionInfo, check_placement

__all__ = ["CsvColumns", "read_declared_csv", "import_csv", "import_csv_export", "TIME_UNITS", "ACC_UNITS",
           "GYRO_UNITS"]

TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
ACC_UNITS = {"m/s^2": 1.0, "m/s2": 1.0, "m/s²": 1.0, "g": STANDARD_G, "mg": STANDARD_G / 1000.0}
GYRO_UNITS = {"rad/s": 1.0, "deg/s": math.pi / 180.0, "dps": math.pi / 180.0, "°/s": math.pi / 180.0,
              "mdps": math.pi / 180.0 / 1000.0}

_BRACKET = re.compile(r"^\s*(.*?)\s*\[(.*)\]\s*$")


@dataclass(frozen=True)
class CsvColumns:
    """Which columns hold what, and in which units (None: the unit in the header's brackets, else SI)."""

    time: str
    acc: tuple[str, str, str]
    gyro: tuple[str, str, str]
    time_unit: str | None = None
    acc_unit: str | None = None
    gyro_unit: str | None = None
    seq: str | None = None
    delimiter: str | None = None  # None: sniffed from the header line

    @staticmethod
    def parse(time: str, acc: str, gyro: str, seq: str | None = None, delimiter: str | None = None) -> "CsvColumns":
        """From command-line text: ``time="t:ms"``, ``acc="ax,ay,az:g"``, ``gyro="gx,gy,gz:deg/s"``."""

        def split(spec: str, n: int, what: str) -> tuple[list[str], str | None]:
            names, _, unit = spec.partition(":")
            cols = [c.strip() for c in names.split(",")]
            if len(cols) != n or not all(cols):
                raise ValidationError(f"--{what} needs {n} column name(s) separated by commas; got {spec!r}")
            return cols, (unit.strip() or None)

        (t,), tu = split(time, 1, "time")
        a, au = split(acc, 3, "acc")
        g, gu = split(gyro, 3, "gyro")
        return CsvColumns(t, tuple(a), tuple(g), tu, au, gu, seq, delimiter)  # type: ignore[arg-type]


def _unit_factor(unit: str, table: Mapping[str, float], what: str) -> float:
    try:
        return table[unit.strip()]
    except KeyError:
        raise ValidationError(f"unknown {what} unit {unit!r}; known: {', '.join(sorted(table))}") from None


def _read_table(path: Path, delimiter: str | None) -> tuple[list[str], np.ndarray]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        first = f.readline()
        if not first.strip():
            raise ValidationError(f"{path}: the file is empty")
        delim = delimiter or csv.Sniffer().sniff(first, delimiters=",;\t").delimiter
        header = next(csv.reader([first], delimiter=delim))
        try:
            data = np.loadtxt(f, delimiter=delim, dtype=np.float64, ndmin=2)
        except ValueError as e:
            raise ValidationError(f"{path}: not a table of numbers after the header ({e})") from e
    if data.size and data.shape[1] != len(header):
        raise ValidationError(f"{path}: {len(header)} header cells but {data.shape[1]} values per row")
    return header, data.reshape(-1, len(header))


def read_declared_csv(path: str | Path, columns: CsvColumns, sensor_id: str) -> tuple[ImuBatch, np.ndarray]:
    """Read one sensor's CSV. Returns the batch (``time_s`` still the file's clock, in s) and the raw clock."""
    path = Path(path)
    header, data = _read_table(path, columns.delimiter)
    index: dict[str, int] = {}
    units: dict[int, str] = {}
    for i, cell in enumerate(header):
        index[cell.strip()] = i
        m = _BRACKET.match(cell)
        if m:
            index.setdefault(m.group(1), i)
            units[i] = m.group(2)

    def col(name: str) -> int:
        if name not in index:
            raise ValidationError(f"{path}: no column {name!r}; the header has {', '.join(h.strip() for h in header)}")
        return index[name]

    ti = col(columns.time)
    ai = [col(c) for c in columns.acc]
    gi = [col(c) for c in columns.gyro]
    tu = columns.time_unit or units.get(ti, "s")
    au = columns.acc_unit or units.get(ai[0], "m/s^2")
    gu = columns.gyro_unit or units.get(gi[0], "rad/s")
    t = data[:, ti] * _unit_factor(tu, TIME_UNITS, "time")
    acc = data[:, ai] * _unit_factor(au, ACC_UNITS, "acceleration")
    gyro = data[:, gi] * _unit_factor(gu, GYRO_UNITS, "angular rate")
    if not np.isfinite(t).all():
        raise ValidationError(f"{path}: the time column has missing or non-numeric values")
    seq = data[:, col(columns.seq)].astype(np.int64) if columns.seq else None
    return ImuBatch.create(sensor_id, t, acc, gyro, seq=seq), t


def _gap_flags(t: np.ndarray, rate_hz: float) -> np.ndarray:
    flags = np.zeros(len(t), np.uint8)
    if len(t) > 1 and rate_hz > 0:
        gaps = np.flatnonzero(np.diff(t) > 1.5 / rate_hz) + 1
        flags[gaps] |= np.uint8(SampleFlag.GAP_BEFORE)
    return flags


def _rate(t: np.ndarray) -> float:
    d = np.diff(t)
    d = d[d > 0]
    return float(1.0 / np.median(d)) if len(d) else 0.0


def import_csv(
    sources: Mapping[str, str | Path],
    out: str | Path,
    columns: CsvColumns,
    *,
    subject_code: str,
    protocol: str = "",
    rate_hz: float | None = None,
    start_time_utc: str | None = None,
    family: str = "csv-import",
    model: str = "",
    events: Sequence[Event] = (),
    overwrite: bool = False,
) -> Path:
    """Write a session file from one CSV per sensor.

    Parameters
    ----------
    sources : mapping of placement to path
        ``{"lumbar": "upper.csv", "sacrum": "lower.csv"}``; the placement names the sensor.
    out : path
        Session file to write.
    columns : CsvColumns
        Column names and units (the same for every file).
    subject_code : str
        Pseudonymous code.
    protocol : str
        The movement (a protocol definition's ``movement``), e.g. ``"flexion"``.
    rate_hz : float, optional
        Nominal rate; default: estimated from the median sample interval of each file.
    start_time_utc : str, optional
        ISO 8601 time of the first sample; default: unknown (the import time is recorded instead,
        with a note).
    """
    if not sources:
        raise ValidationError("no CSV file to import")
    read = {check_placement(sid): read_declared_csv(p, columns, sid) for sid, p in sources.items()}
    t0 = min(float(raw[0]) for _, raw in read.values() if len(raw))
    batches: dict[str, ImuBatch] = {}
    sensors: list[SensorInfo] = []
    for sid, (b, raw) in read.items():
        rate = rate_hz if rate_hz else _rate(raw)
        batches[sid] = ImuBatch(sid, raw - t0, raw, b.acc, b.gyro, b.seq, _gap_flags(raw, rate))
        sensors.append(SensorInfo(sensor_id=sid, placement=sid, family=family, model=model,
                                  address=str(Path(sources[sid]).name), nominal_rate_hz=float(rate)))
    notes = f"imported from CSV ({', '.join(Path(p).name for p in sources.values())})"
    kw = {"start_time_utc": start_time_utc} if start_time_utc else {}
    if not start_time_utc:
        notes += "; start time unknown (start_time_utc is the import time)"
    info = SessionInfo(subject_code=subject_code, protocol=protocol, notes=notes, **kw)
    return write_session(out, info, sensors, batches, events, overwrite=overwrite)


def import_csv_export(session_json: str | Path, out: str | Path, *, overwrite: bool = False) -> Path:
    """Rebuild a session file from this project's CSV export (its ``*_session.json``)."""
    meta_path = Path(session_json)
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    info = SessionInfo.from_dict(meta["session"])
    sensors = [SensorInfo.from_dict(d) for d in meta["sensors"].values()]
    batches: dict[str, ImuBatch] = {}
    for sid, name in meta["files"].items():
        header, data = _read_table(meta_path.with_name(name), ",")
        names = [(_BRACKET.match(h).group(1) if _BRACKET.match(h) else h) for h in header]  # type: ignore[union-attr]
        c = {n: data[:, i] for i, n in enumerate(names)}
        batches[sid] = ImuBatch(
            sid, c["time_s"], c["device_time_s"],
            np.column_stack([c["acc_x"], c["acc_y"], c["acc_z"]]),
            np.column_stack([c["gyro_x"], c["gyro_y"], c["gyro_z"]]),
            c["seq"].astype(np.int64), c["flags"].astype(np.uint8),
        )
    events: list[Event] = []
    with open(meta_path.with_name(meta["events"]), encoding="utf-8", newline="") as f:
        r = csv.reader(f)
        next(r, None)
        events = [Event(float(row[0]), row[1], row[2]) for row in r if row]
    return write_session(out, info, sensors, batches, events, overwrite=overwrite)
