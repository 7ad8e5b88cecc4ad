"""The live data bus: where sources (BLE reader, emulator, replay) put samples and sinks
(GUI, file writer, LSL, live metrics) take them.

* :class:`SampleRing` — one sensor's recent samples in preallocated arrays. One writer pushes
  :class:`~lumbar.types.ImuBatch` es; any number of readers pull with their own cursor and learn
  exactly how many samples they missed if they fell more than the capacity behind.
* :class:`SensorStatus` — what the GUI shows per sensor (connected, battery, RSSI, rate, loss).
* :class:`LiveBus` — rings and statuses by sensor id, plus event markers.

Thread-safe without making readers wait: the source pushes from its asyncio thread while the GUI,
the live processing and the recorder pull from theirs (:class:`ColumnRing`); a reader never sees a
half-written batch.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

import numpy as np

from lumbar.errors import ValidationError
from lumbar.types import Event, ImuBatch

__all__ = ["ColumnRing", "SampleRing", "SensorStatus", "LiveBus"]


class ColumnRing:
    """Preallocated ring of rows stored column by column: one writer, any number of readers, and no
    reader ever waits.

    Each column is an array of shape ``(capacity, *tail)``. A push *claims* the rows it is about to
    write, writes them in at most two contiguous slices, then *publishes* them (:attr:`total`). A reader
    copies the published rows it has not had, then drops any that a push running meanwhile may have
    overwritten (those its claim reached back over) and counts them as missed: the copy is never torn.
    Readers take no lock, so a reader that loses the interpreter in the middle of a copy (it changes
    hands every few milliseconds) holds up neither the source nor the other readers; pushes from
    several threads are serialised among themselves. Ordering rests on the interpreter lock (CPython).

    Parameters
    ----------
    capacity : int
        Rows kept.
    columns : sequence of (tail shape, dtype, fill value)
        One entry per column; a column holds ``capacity`` rows of ``tail`` shape.
    """

    def __init__(self, capacity: int, columns: Sequence[tuple[tuple[int, ...], Any, Any]]) -> None:
        if capacity < 1:
            raise ValidationError(f"capacity must be ≥ 1 row; got {capacity}")
        self.capacity = int(capacity)
        self._cols = [np.full((self.capacity, *tail), fill, dtype) for tail, dtype, fill in columns]
        self._total = 0  # rows published (absolute index of the next one)
        self._claimed = 0  # rows being or having been written: ≥ _total
        self._write_lock = threading.Lock()

    @property
    def total(self) -> int:
        """Rows pushed since creation (a cursor for :meth:`since`)."""
        return self._total

    def push(self, cols: Sequence[np.ndarray]) -> None:
        """Append rows: one array per column, equal lengths (only the last ``capacity`` rows are kept)."""
        n = len(cols[0])
        if n == 0:
            return
        cap = self.capacity
        with self._write_lock:
            end = self._total + n
            m = min(n, cap)
            start = end - m
            self._claimed = end  # before writing: readers then know these slots are being overwritten
            i0 = start % cap
            k = min(m, cap - i0)
            for a, c in zip(self._cols, cols):
                c = c[n - m:]
                a[i0:i0 + k] = c[:k]
                if k < m:
                    a[:m - k] = c[k:]
            self._total = end

    def _copy(self, first: int, last: int) -> list[np.ndarray]:
        n = last - first
        i0 = first % self.capacity
        if i0 + n <= self.capacity:
            return [a[i0:i0 + n].copy() for a in self._cols]
        return [np.concatenate((a[i0:], a[:n - (self.capacity - i0)])) for a in self._cols]

    def _read(self, first: int, last: int) -> tuple[list[np.ndarray], int]:
        """Copies of rows ``first`` to ``last`` (published), less any a concurrent push overwrote; and
        the first row kept."""
        cols = self._copy(first, last)
        clobbered = self._claimed - self.capacity  # rows below this may have been overwritten meanwhile
        if clobbered > first:
            drop = min(clobbered, last) - first
            cols = [c[drop:] for c in cols]
            first += drop
        return cols, first

    def since(self, cursor: int) -> tuple[list[np.ndarray], int, int]:
        """Rows pushed after ``cursor``: ``(columns, new_cursor, missed)``; ``missed`` counts the rows that
        were overwritten before this reader got them."""
        total = self._total
        cols, first = self._read(max(cursor, total - self.capacity), total)
        return cols, total, first - cursor

    def latest(self, n: int) -> list[np.ndarray]:
        """The last ``n`` rows (fewer if not yet pushed)."""
        total = self._total
        return self._read(max(0, total - min(n, self.capacity)), total)[0]


class SampleRing:
    """Ring buffer of one sensor's samples (a :class:`ColumnRing` of :class:`~lumbar.types.ImuBatch` columns).

    One source pushes batches; any number of readers pull with their own cursor, never waiting for the
    source or one another, and learn exactly how many samples they missed if they fell more than the
    capacity behind.

    Parameters
    ----------
    sensor_id : str
    capacity : int
        Samples kept (e.g. 60 s × rate).
    """

    _COLUMNS = (((), np.float64, 0.0), ((), np.float64, 0.0), ((3,), np.float64, 0.0), ((3,), np.float64, 0.0),
                ((), np.int64, 0), ((), np.uint8, 0))

    def __init__(self, sensor_id: str, capacity: int) -> None:
        if capacity < 1:
            raise ValidationError(f"capacity must be ≥ 1 sample; got {capacity}")
        self.sensor_id = sensor_id
        self._ring = ColumnRing(capacity, self._COLUMNS)
        self.capacity = self._ring.capacity

    @property
    def total(self) -> int:
        """Samples pushed since creation (a cursor for :meth:`since`)."""
        return self._ring.total

    def push(self, batch: ImuBatch) -> None:
        """Append a batch (only the last ``capacity`` samples are kept)."""
        if batch.sensor_id != self.sensor_id:
            raise ValidationError(f"batch of sensor {batch.sensor_id!r} pushed into the ring of {self.sensor_id!r}")
        self._ring.push((batch.time_s, batch.device_time_s, batch.acc, batch.gyro, batch.seq, batch.flags))

    def _batch(self, cols: list[np.ndarray]) -> ImuBatch:
        return ImuBatch(self.sensor_id, *cols)

    def since(self, cursor: int) -> tuple[ImuBatch, int, int]:
        """Samples pushed after ``cursor``; returns ``(batch, new_cursor, missed)``.

        ``missed`` counts samples that were overwritten before this reader got them.
        """
        cols, total, missed = self._ring.since(cursor)
        return self._batch(cols), total, missed

    def latest(self, n: int) -> ImuBatch:
        """The last ``n`` samples (fewer if not yet pushed)."""
        return self._batch(self._ring.latest(n))


@dataclass
class SensorStatus:
    """Live state of one sensor, as shown to the operator."""

    sensor_id: str
    name: str = ""
    address: str = ""
    family: str = ""
    connected: bool = False
    battery_pct: float | None = None
    rssi_dbm: float | None = None
    achieved_rate_hz: float = 0.0
    samples: int = 0
    lost_samples: int = 0
    corrupt_packets: int = 0
    reconnects: int = 0
    message: str = ""

    @property
    def loss_pct(self) -> float:
        total = self.samples + self.lost_samples
        return 100.0 * self.lost_samples / total if total else 0.0


@dataclass
class LiveBus:
    """Rings and statuses by sensor id, and the session's event markers.

    Parameters
    ----------
    capacity_s : float
        Seconds of data kept per sensor.
    """

    capacity_s: float = 60.0
    rings: dict[str, SampleRing] = field(default_factory=dict)
    status: dict[str, SensorStatus] = field(default_factory=dict)
    _events: list[Event] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_sensor(self, sensor_id: str, rate_hz: float) -> SampleRing:
        ring = SampleRing(sensor_id, max(1, int(round(self.capacity_s * rate_hz))))
        self.rings[sensor_id] = ring
        self.status.setdefault(sensor_id, SensorStatus(sensor_id))
        return ring

    def push(self, batch: ImuBatch) -> None:
        self.rings[batch.sensor_id].push(batch)

    def update_status(self, sensor_id: str, **changes: object) -> SensorStatus:
        with self._lock:
            st = replace(self.status.get(sensor_id, SensorStatus(sensor_id)), **changes)
            self.status[sensor_id] = st
            return st

    def mark(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def extend_events(self, events: Iterable[Event]) -> None:
        with self._lock:
            self._events.extend(events)
