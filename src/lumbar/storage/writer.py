"""Live, crash-safe writer of session files.

The writer creates every group and dataset first, then switches HDF5 into
single-writer/multiple-reader (SWMR) mode, after which it only appends. Appended
samples are buffered in memory and written + flushed at least every
``flush_interval_s`` (default 0.5 s), so a process killed at any moment leaves a
readable file holding everything up to its last flush.

The owner must give the writer a chance to flush: every :meth:`SessionWriter.append`
and :meth:`SessionWriter.add_event` does, and a recorder whose input can stall calls
:meth:`SessionWriter.flush_if_due` from a timer.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import h5py
import numpy as np

from lumbar.errors import SessionFileError, ValidationError
from lumbar.storage import schema
from lumbar.storage._chunks import append_rows, can_write, write_all
from lumbar.types import Event, ImuBatch, SensorInfo, SessionInfo, software_version

__all__ = ["SessionWriter", "write_group", "write_session", "write_simulated"]


def _encode_fixed(text: str, n_bytes: int) -> bytes:
    """UTF-8 encode and cut to at most n_bytes without splitting a character."""
    raw = text.encode("utf-8")
    if len(raw) <= n_bytes:
        return raw
    return raw[:n_bytes].decode("utf-8", errors="ignore").encode("utf-8")


def _create_appendable(group: h5py.Group, spec: schema.DatasetSpec, chunk_rows: int) -> h5py.Dataset:
    ds = group.create_dataset(
        spec.name,
        shape=(0, *spec.tail),
        maxshape=(None, *spec.tail),
        chunks=(chunk_rows, *spec.tail),
        dtype=spec.dtype,
        compression=schema.COMPRESSION,
        compression_opts=schema.COMPRESSION_LEVEL,
        shuffle=True,
    )
    if spec.unit:
        ds.attrs["unit"] = spec.unit
    ds.attrs["description"] = spec.doc
    return ds


class SessionWriter:
    """Write one session file, live.

    Parameters
    ----------
    path : str or Path
        File to create. An existing file is refused unless ``overwrite=True``.
    session : SessionInfo
        Session metadata (pseudonymous subject code).
    sensors : sequence of SensorInfo
        Every sensor that will send data; their ``sensor_id`` must be unique.
    flush_interval_s : float
        Longest time appended data may stay only in memory, s (≤ 1 s; default 0.5 s).
    live : bool
        Use SWMR mode so readers can follow the file and a crash leaves it readable.
        Off for files written in one go (slightly smaller, no recovery needed).
    overwrite : bool
        Replace an existing file.

    Examples
    --------
    >>> with SessionWriter("s.h5", SessionInfo("S001"), [SensorInfo("lumbar", "lumbar")]) as w:  # doctest: +SKIP
    ...     w.append(batch)
    """

    def __init__(
        self,
        path: str | Path,
        session: SessionInfo,
        sensors: Sequence[SensorInfo],
        *,
        flush_interval_s: float = 0.5,
        live: bool = True,
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        if not 0 < flush_interval_s <= 1.0:
            raise ValidationError(f"flush_interval_s must be in (0, 1] s; got {flush_interval_s}")
        ids = [s.sensor_id for s in sensors]
        if len(set(ids)) != len(ids):
            raise ValidationError(f"sensor ids must be unique; got {ids}")
        if self.path.exists() and not overwrite:
            raise SessionFileError(str(self.path), "file already exists; choose another name or allow overwriting")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.session = session
        self.sensors = {s.sensor_id: s for s in sensors}
        self.flush_interval_s = flush_interval_s
        self._pending: dict[str, list[ImuBatch]] = {sid: [] for sid in self.sensors}
        self._pending_events: list[Event] = []
        self._last_time: dict[str, float] = {sid: -np.inf for sid in self.sensors}
        self._counts: dict[str, int] = {sid: 0 for sid in self.sensors}
        self._last_flush = time.monotonic()
        # live: datasets whose chunks this writer compresses itself (dtype, rows per chunk, gzip level), and
        # the rows of each one's last, partial chunk
        self._direct: dict[tuple[str, str], tuple[np.dtype, int, int]] = {}
        self._carry: dict[tuple[str, str], np.ndarray] = {}
        self.live = live
        self._chunk_rows = schema.LIVE_CHUNK_ROWS if live else schema.CHUNK_ROWS
        self._file = h5py.File(self.path, "w", libver="latest", **schema.FILE_SPACE)
        try:
            self._build_layout()
        except Exception:
            self._file.close()
            raise
        if live:
            self._file.swmr_mode = True
        self._closed = False

    # -- layout -------------------------------------------------------------------------
    def _build_layout(self) -> None:
        f = self._file
        f.attrs[schema.ATTR_FORMAT_NAME] = schema.FORMAT_NAME
        f.attrs[schema.ATTR_FORMAT_VERSION] = schema.FORMAT_VERSION
        f.attrs[schema.ATTR_CREATED_UTC] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        f.attrs[schema.ATTR_SOFTWARE_VERSION] = software_version()
        f.attrs[schema.ATTR_COMPLETE] = False
        g = f.create_group(schema.SESSION)
        for key, value in self.session.to_dict().items():
            g.attrs[key] = value
        sensors = f.create_group(schema.SENSORS)
        self._datasets: dict[str, dict[str, h5py.Dataset]] = {}
        for sid, info in self.sensors.items():
            sg = sensors.create_group(sid)
            for key, value in info.to_dict().items():
                sg.attrs[key] = value
            sg.create_group(schema.CALIBRATION)
            self._datasets[sid] = {
                spec.name: _create_appendable(sg, spec, self._chunk_rows) for spec in schema.SENSOR_DATASETS
            }
            if self.live:
                for name, ds in self._datasets[sid].items():
                    # decided once: h5py's property reads query HDF5 on every access
                    dtype, chunks = ds.dtype, ds.chunks
                    if can_write(np.zeros((1, *ds.shape[1:]), dtype), chunks, ds.compression, ds.shuffle):
                        self._direct[(sid, name)] = (dtype, int(chunks[0]), int(ds.compression_opts))
                        self._carry[(sid, name)] = np.zeros((0, *ds.shape[1:]), dtype)
        eg = f.create_group(schema.EVENTS)
        self._event_ds = {
            spec.name: _create_appendable(eg, spec, schema.EVENT_CHUNK_ROWS) for spec in schema.EVENT_DATASETS
        }
        f.create_group(schema.DERIVED)
        f.create_group(schema.METRICS)

    # -- appending ----------------------------------------------------------------------
    def append(self, batch: ImuBatch) -> None:
        """Queue samples of one sensor; written at the next flush (≤ ``flush_interval_s``).

        Raises
        ------
        ValidationError
            Unknown sensor, non-finite time, or time running backwards: such data are
            refused rather than written as garbage (the caller reports them).
        """
        self._check_open()
        sid = batch.sensor_id
        if sid not in self.sensors:
            raise ValidationError(f"sensor {sid!r} was not declared for this session (declared: {list(self.sensors)})")
        if len(batch):
            t = batch.time_s
            if not np.all(np.isfinite(t)):
                raise ValidationError(f"sensor {sid!r}: sample times must be finite numbers")
            if t[0] < self._last_time[sid] or np.any(np.diff(t) < 0):
                raise ValidationError(
                    f"sensor {sid!r}: sample times run backwards (at {t[0]:.3f} s after {self._last_time[sid]:.3f} s); "
                    "times must be put on the host clock before writing"
                )
            self._last_time[sid] = float(t[-1])
            self._pending[sid].append(batch)
        self.flush_if_due()

    def add_event(self, event: Event) -> None:
        """Queue a marker; written at the next flush."""
        self._check_open()
        if not np.isfinite(event.time_s):
            raise ValidationError(f"event {event.label!r}: time must be a finite number of seconds")
        self._pending_events.append(event)
        self.flush_if_due()

    def flush_if_due(self) -> bool:
        """Flush if the flush interval has passed; returns True if it flushed."""
        if time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()
            return True
        return False

    def flush(self) -> None:
        """Write all queued data and make it durable in the file."""
        self._check_open()
        for sid, batches in self._pending.items():
            if not batches:
                continue
            b = ImuBatch.concat(batches) if len(batches) > 1 else batches[0]
            n0 = self._counts[sid]
            n1 = n0 + len(b)
            for name, ds in self._datasets[sid].items():
                ds.resize(n1, axis=0)
                direct = self._direct.get((sid, name))
                if direct is None:
                    ds[n0:n1] = getattr(b, name)
                else:
                    # compressed here without the interpreter lock, stored as whole chunks: HDF5's own
                    # filters would compress under it, holding up every other thread for milliseconds
                    dtype, rows, level = direct
                    data = np.asarray(getattr(b, name), dtype=dtype)
                    self._carry[(sid, name)] = append_rows(ds, n0, data, self._carry[(sid, name)], rows, level)
            self._counts[sid] = n1
            batches.clear()
        if self._pending_events:
            ev = self._pending_events
            n0 = self._event_ds["time_s"].shape[0]
            n1 = n0 + len(ev)
            columns = {
                "time_s": np.array([e.time_s for e in ev], dtype=np.float64),
                "label": np.array([_encode_fixed(e.label, schema.EVENT_LABEL_BYTES) for e in ev],
                                  dtype=f"S{schema.EVENT_LABEL_BYTES}"),
                "note": np.array([_encode_fixed(e.note, schema.EVENT_NOTE_BYTES) for e in ev],
                                 dtype=f"S{schema.EVENT_NOTE_BYTES}"),
            }
            for name, ds in self._event_ds.items():
                ds.resize(n1, axis=0)
                ds[n0:n1] = columns[name]
            ev.clear()
        self._file.flush()
        self._last_flush = time.monotonic()

    @property
    def sample_counts(self) -> dict[str, int]:
        """Samples written to the file so far, per sensor (excludes queued ones)."""
        return dict(self._counts)

    # -- closing ------------------------------------------------------------------------
    def close(self) -> None:
        """Flush, close, and mark the file complete."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._file.close()
            self._closed = True
        if self.live:
            # Rewrite with large chunks: reclaims the space of partial chunks rewritten at each flush
            # and makes whole-channel reads fast. Atomic: the live file stays until the copy is whole.
            _compact(self.path)
        else:
            # Attributes cannot be changed in SWMR mode; this file was not in it, but keep one path.
            with h5py.File(self.path, "r+") as f:
                f.attrs[schema.ATTR_COMPLETE] = True

    def _check_open(self) -> None:
        if self._closed:
            raise SessionFileError(str(self.path), "the recording is already closed")

    def __enter__(self) -> "SessionWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _copy_attrs(src: h5py.HLObject, dst: h5py.HLObject) -> None:
    for k, v in src.attrs.items():
        dst.attrs[k] = v


def _compact(path: Path) -> None:
    """Copy a closed live recording into a new file with final chunking, mark it complete, and
    atomically replace the original."""
    from concurrent.futures import ThreadPoolExecutor
    import os

    tmp = path.with_name(path.name + ".compact-tmp")
    with h5py.File(path, "r") as src, h5py.File(tmp, "w", libver="latest", **schema.FILE_SPACE) as dst, \
            ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        _copy_attrs(src, dst)

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Group):
                _copy_attrs(obj, dst.require_group(name))
                return
            rows = schema.EVENT_CHUNK_ROWS if name.startswith(schema.EVENTS + "/") else schema.CHUNK_ROWS
            appendable = obj.maxshape and obj.maxshape[0] is None
            data = obj[()]
            chunks = (rows, *obj.shape[1:]) if appendable else obj.chunks
            kw = dict(maxshape=obj.maxshape if appendable else None, chunks=chunks, compression=obj.compression,
                      compression_opts=obj.compression_opts, shuffle=obj.shuffle)
            if can_write(data, chunks, obj.compression, obj.shuffle):
                # compressed on the pool's threads (the GIL stays free for a GUI), stored as HDF5's filters would
                ds = dst.create_dataset(name, shape=data.shape, dtype=data.dtype, **kw)
                write_all(ds, data, chunks[0], int(obj.compression_opts), pool)
            else:
                ds = dst.create_dataset(name, data=data, **kw)
            _copy_attrs(obj, ds)

        src.visititems(visit)
        dst.attrs[schema.ATTR_COMPLETE] = True
    tmp.replace(path)


def write_group(
    path: str | Path,
    group: str,
    arrays: Mapping[str, np.ndarray],
    attrs: Mapping[str, Any] | None = None,
    *,
    replace: bool = True,
    compression_level: int | None = None,
    chunk_rows: int = 32768,
) -> None:
    """Store derived data, metrics or truth in a closed session file.

    Parameters
    ----------
    path : str or Path
        A complete session file.
    group : str
        Target group, e.g. ``"truth"`` or ``"derived/orientation"``; replaced if it exists.
    arrays : mapping of str to ndarray
        Dataset name → array, stored with its dtype. Names may contain ``/`` to make sub-groups.
    attrs : mapping, optional
        Scalars or strings stored as attributes of the group (None values are skipped).
    compression_level : int, optional
        gzip level (1–9) of arrays of 1024 elements or more, always with the shuffle filter; default
        ``schema.COMPRESSION_LEVEL``. Smaller arrays are stored contiguous, uncompressed.
    chunk_rows : int
        Rows per chunk along the first axis of compressed arrays. Numeric arrays are written whole,
        their chunks compressed on parallel threads (the stored chunks are what HDF5's own filters
        write: any HDF5 reader decodes them).
    """
    from concurrent.futures import ThreadPoolExecutor
    import os

    level = schema.COMPRESSION_LEVEL if compression_level is None else int(compression_level)
    if not 1 <= level <= 9:
        raise ValidationError(f"compression_level must be 1 to 9; got {compression_level}")
    if chunk_rows < 1:
        raise ValidationError(f"chunk_rows must be ≥ 1; got {chunk_rows}")
    with h5py.File(path, "r+") as f, ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        if group in f:
            if not replace:
                raise SessionFileError(str(path), f"group {group!r} already exists")
            del f[group]
        g = f.create_group(group)
        for key, value in (attrs or {}).items():
            if value is not None:
                g.attrs[key] = value
        for name, arr in arrays.items():
            arr = np.asarray(arr)
            if arr.size < 1024 or arr.ndim == 0:
                g.create_dataset(name, data=arr)
                continue
            rows = min(chunk_rows, arr.shape[0])
            chunks = (rows, *arr.shape[1:])
            if not can_write(arr, chunks, schema.COMPRESSION, True):
                g.create_dataset(name, data=arr, chunks=chunks, compression=schema.COMPRESSION,
                                 compression_opts=level, shuffle=True)
                continue
            d = g.create_dataset(name, shape=arr.shape, dtype=arr.dtype, chunks=chunks,
                                 compression=schema.COMPRESSION, compression_opts=level, shuffle=True)
            write_all(d, arr, rows, level, pool)


def write_session(
    path: str | Path,
    session: SessionInfo,
    sensors: Iterable[SensorInfo],
    batches: Mapping[str, ImuBatch],
    events: Iterable[Event] = (),
    *,
    overwrite: bool = False,
) -> Path:
    """Write a whole session in one go (e.g. from the emulated patient or an import)."""
    with SessionWriter(path, session, list(sensors), live=False, overwrite=overwrite) as w:
        for b in batches.values():
            w.append(b)
        for e in sorted(events, key=lambda e: e.time_s):
            w.add_event(e)
    return Path(path)


def write_simulated(path: str | Path, sim: Any, session: SessionInfo, *, overwrite: bool = False) -> Path:
    """Write an emulated-patient session, its ground truth in the separate group ``truth``.

    ``sim`` is a :class:`lumbar.simulate.SimulatedSession` (sensors, batches, events, truth).
    """
    # Repetition markers are the patient model's ground truth (truth/rep_bounds_s), not something an
    # operator marked: keep them out of the measured events so no analysis can lean on them.
    events = [e for e in sim.events if not e.label.startswith("rep_")]
    write_session(path, session, sim.sensors.values(), sim.batches, events, overwrite=overwrite)
    write_group(path, schema.TRUTH, sim.truth.to_arrays(), sim.truth.attrs())
    return Path(path)
