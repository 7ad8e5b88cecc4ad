"""The live data bus: where sources (BLE reader, emulator, replay) put samples and sinks
(GUI, file writer, LSL, live metrics) take them.

* :class:`SampleRing` — one sensor's recent samples in preallocated arrays. One writer pushes
  :class:`~lumbar.types.ImuBatch` es; any number of readers pull with their own cursor and learn
  exactly how many samples they missed if they fell more than the capacity behind.
* :class:`SensorStatus` — what the GUI shows per sensor (connected, battery, RSSI, rate, loss).
* :class:`LiveBus` — rings and statuses by sensor id, plus event markers.

Thread-safe with one lock per ring: the reader runs in an asyncio thread, the GUI pulls on a Qt
timer. Copies are made under the lock, so a reader never sees a half-written batch.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Iterable

import numpy as np

from lumbar.errors import ValidationError
from lumbar.types import Event, ImuBatch

__all__ = ["SampleRing", "SensorStatus", "LiveBus"]


class SampleRing:
    """Ring buffer of one sensor's samples.

    Parameters
    ----------
    sensor_id : str
    capacity : int
        Samples kept (e.g. 60 s × rate).
    """

    def __init__(self, sensor_id: str, capacity: int) -> None:
        if capacity < 1:
            raise ValidationError(f"capacity must be ≥ 1 sample; got {capacity}")
        self.sensor_id = sensor_id
        self.capacity = int(capacity)
        self._t = np.zeros(capacity)
        self._dev = np.zeros(capacity)
        self._acc = np.zeros((capacity, 3))
        self._gyro = np.zeros((capacity, 3))
        self._seq = np.zeros(capacity, np.int64)
        self._flags = np.zeros(capacity, np.uint8)
        self._total = 0  # samples ever pushed
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        """Samples pushed since creation (a cursor for :meth:`since`)."""
        return self._total

    def push(self, batch: ImuBatch) -> None:
        """Append a batch (only the last ``capacity`` samples are kept)."""
        n = len(batch)
        if n == 0:
            return
        if batch.sensor_id != self.sensor_id:
            raise ValidationError(f"batch of sensor {batch.sensor_id!r} pushed into the ring of {self.sensor_id!r}")
        src = slice(max(0, n - self.capacity), n)
        with self._lock:
            start = self._total + src.start
            idx = np.arange(start, self._total + n) % self.capacity
            self._t[idx] = batch.time_s[src]
            self._dev[idx] = batch.device_time_s[src]
            self._acc[idx] = batch.acc[src]
            self._gyro[idx] = batch.gyro[src]
            self._seq[idx] = batch.seq[src]
            self._flags[idx] = batch.flags[src]
            self._total += n

    def _take(self, first: int, last: int) -> ImuBatch:
        idx = np.arange(first, last) % self.capacity
        return ImuBatch(self.sensor_id, self._t[idx], self._dev[idx], self._acc[idx], self._gyro[idx],
                        self._seq[idx], self._flags[idx])

    def since(self, cursor: int) -> tuple[ImuBatch, int, int]:
        """Samples pushed after ``cursor``; returns ``(batch, new_cursor, missed)``.

        ``missed`` counts samples that were overwritten before this reader got them.
        """
        with self._lock:
            total = self._total
            first = max(cursor, total - self.capacity)
            return self._take(first, total), total, first - cursor

    def latest(self, n: int) -> ImuBatch:
        """The last ``n`` samples (fewer if not yet pushed)."""
        with self._lock:
            total = self._total
            return self._take(max(0, total - min(n, self.capacity)), total)


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
