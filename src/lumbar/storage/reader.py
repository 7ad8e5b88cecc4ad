"""Reading session files, with validation.

Every problem becomes one :class:`~lumbar.errors.SessionFileError` naming the file and
the problem in plain words. A recording that was interrupted (process killed, power
lost) is still read, up to its last flush; :attr:`Session.complete` is then False.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from lumbar.errors import SessionFileError
from lumbar.storage import schema
from lumbar.storage._chunks import read_all
from lumbar.types import Event, ImuBatch, SensorInfo, SessionInfo

__all__ = ["Session", "read_session", "open_h5", "read_channel", "read_group"]


@dataclass
class Session:
    """A session read from file.

    Attributes
    ----------
    path : Path
    info : SessionInfo
    sensors : dict of str to SensorInfo
    data : dict of str to ImuBatch
        All samples of each sensor (acc and gyro as float64 in memory).
    events : list of Event
    format_version : int
    complete : bool
        False if the recording was interrupted before the writer closed it.
    truth : dict of str to ndarray, or None
        Ground truth of a simulated session (group ``truth``), flattened names.
    truth_attrs : dict
    """

    path: Path
    info: SessionInfo
    sensors: dict[str, SensorInfo]
    data: dict[str, ImuBatch]
    events: list[Event]
    format_version: int
    complete: bool
    truth: dict[str, np.ndarray] | None = None
    truth_attrs: dict[str, Any] = field(default_factory=dict)


def _attr_value(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


@contextmanager
def open_h5(path: str | Path) -> Iterator[tuple[h5py.File, bool]]:
    """Open a session file read-only; yields ``(file, interrupted)``.

    ``interrupted`` is True when the file was left open by a writer that did not close
    it (killed recorder); it is then opened in SWMR-read mode, which sees everything
    flushed before the interruption.
    """
    p = Path(path)
    if not p.exists():
        raise SessionFileError(str(p), "file not found")
    if p.is_dir():
        raise SessionFileError(str(p), "is a folder, not a session file")
    if p.stat().st_size == 0:
        raise SessionFileError(str(p), "file is empty (0 bytes)")
    if not h5py.is_hdf5(p):
        raise SessionFileError(
            str(p), "is not an HDF5 session file (its header is missing or damaged; was it copied completely?)"
        )
    interrupted = False
    try:
        f = h5py.File(p, "r")
    except OSError as e:
        if "already open for write" in str(e):
            try:
                f = h5py.File(p, "r", swmr=True)
            except OSError as e2:
                raise SessionFileError(str(p), f"recording was interrupted and the file cannot be opened ({e2})") from e2
            interrupted = True
        else:
            raise SessionFileError(
                str(p), f"file is truncated or damaged and cannot be opened (HDF5 says: {_short(e)})"
            ) from e
    try:
        yield f, interrupted
    finally:
        f.close()


def _short(e: BaseException) -> str:
    msg = str(e).strip()
    return msg if len(msg) < 200 else msg[:197] + "..."


def read_session(path: str | Path, *, load_truth: bool = True) -> Session:
    """Read and validate a whole session file.

    Raises
    ------
    SessionFileError
        If the file is missing, not a session, of an unsupported version, has missing
        or mis-shaped data, time running backwards, or damaged data blocks.
    """
    # one set of rules, shared with `lumbar validate`
    from lumbar.storage.validate import check_structure, time_problem

    p = Path(path)
    with open_h5(p) as (f, interrupted), ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        # a closed file's columns are inflated on threads (_chunks.read_all); an interrupted one,
        # opened for concurrent (SWMR) reading, through h5py alone
        fast = None if interrupted else pool
        report = check_structure(f, p, interrupted=interrupted, read_values=False)
        if report.problems:
            raise SessionFileError(str(p), report.problems[0])
        try:
            info = SessionInfo.from_dict({k: _attr_value(v) for k, v in f[schema.SESSION].attrs.items()})
        except Exception as e:  # invalid subject code etc.
            raise SessionFileError(str(p), f"session information is invalid: {e}") from e
        sensors: dict[str, SensorInfo] = {}
        data: dict[str, ImuBatch] = {}
        for sid, g in f[schema.SENSORS].items():
            sensors[sid] = SensorInfo.from_dict({k: _attr_value(v) for k, v in g.attrs.items()})
            cols = {}
            for spec in schema.SENSOR_DATASETS:
                try:
                    cols[spec.name] = read_all(g[spec.name], fast)
                except OSError as e:
                    raise SessionFileError(
                        str(p), f"data of sensor {sid!r} ({spec.name}) are damaged and cannot be read ({_short(e)})"
                    ) from e
            data[sid] = ImuBatch(sensor_id=sid, **cols)
            problem = time_problem(sid, data[sid].time_s)
            if problem:
                raise SessionFileError(str(p), problem)
        events = _read_events(f[schema.EVENTS])
        truth, truth_attrs = (read_group(f, schema.TRUTH) if load_truth and schema.TRUTH in f else (None, {}))
        return Session(
            path=p,
            info=info,
            sensors=sensors,
            data=data,
            events=events,
            format_version=int(f.attrs[schema.ATTR_FORMAT_VERSION]),
            complete=bool(f.attrs.get(schema.ATTR_COMPLETE, False)) and not interrupted,
            truth=truth,
            truth_attrs=truth_attrs,
        )


def _read_events(g: h5py.Group) -> list[Event]:
    t = g["time_s"][()]
    labels = g["label"][()]
    notes = g["note"][()]
    return [
        Event(float(ti), la.decode("utf-8", errors="replace"), no.decode("utf-8", errors="replace"))
        for ti, la, no in zip(t, labels, notes)
    ]


def read_group(f: h5py.File, group: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """All datasets below ``group`` (flattened names relative to it) and the group's attributes."""
    g = f[group]
    arrays: dict[str, np.ndarray] = {}

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            arrays[name] = obj[()]

    g.visititems(visit)
    return arrays, {k: _attr_value(v) for k, v in g.attrs.items()}


def read_channel(path: str | Path, sensor_id: str, name: str) -> np.ndarray:
    """One whole dataset of one sensor, e.g. ``read_channel(p, "lumbar", "acc")`` → (N, 3)."""
    with open_h5(path) as (f, _):
        try:
            return f[schema.SENSORS][sensor_id][name][()]
        except KeyError as e:
            raise SessionFileError(str(path), f"has no channel {name!r} for sensor {sensor_id!r}") from e
