"""Recording a live session: the bus rings drained into a session file on a thread of its own (Qt-free).

:class:`Recorder` runs wherever the samples are: in the BLE reader's process for Bluetooth sensors (so
neither the compression nor the disk shares an interpreter lock with the GUI thread; the application holds a
:class:`~lumbar_gui.sources.RemoteRecorder` of the same interface), or in the application for other sources
(a replay).
"""
from __future__ import annotations

import queue
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from lumbar.acquisition.bus import LiveBus
from lumbar.errors import LumbarError
from lumbar.types import Event, SensorInfo, SessionInfo

__all__ = ["Recording", "Recorder", "error_text", "preload_storage"]


class Recording:
    """What the application holds of a recording, wherever it is made: :attr:`path`, :attr:`saved` (set once the
    file is closed and complete, or could not be: see :attr:`error`), :attr:`duration_s`, :meth:`mark`,
    :meth:`finish`, :meth:`wait`, :meth:`stop`."""

    path: Path
    saved: threading.Event
    error: str | None
    #: Bus time of the first recorded sample (file time 0), s; None until it is known.
    t0: float | None
    _rings: dict[str, Any]  # the rings of the sensors recorded, on the bus the caller reads

    @property
    def duration_s(self) -> float:
        """Recorded so far: the latest sample's bus time minus :attr:`t0`, s."""
        if self.t0 is None:
            return 0.0
        last = [float(r.latest(1).time_s[-1]) for r in self._rings.values() if r.total]
        return max(last) - self.t0 if last else 0.0

    def mark(self, bus_time_s: float, label: str, note: str = "") -> None:
        """An event marker at ``bus_time_s`` (bus time, s)."""
        raise NotImplementedError

    def finish(self) -> None:
        """Stop recording without waiting; :attr:`saved` is set once the file is closed."""
        raise NotImplementedError

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until the file is saved (after :meth:`finish`); False if ``timeout_s`` passed first."""
        return self.saved.wait(timeout_s)

    def stop(self, timeout_s: float | None = 120.0) -> Path:
        """Finish and wait until the file is saved. Safe to call twice."""
        self.finish()
        self.wait(timeout_s)
        return self.path


class Recorder(Recording):
    """Drains the bus rings into a session file from a worker thread.

    File times are bus times minus the time of the first recorded sample (the file starts at 0).

    Every ``period_s`` it takes what is new from every ring, and hands the writer the samples of one
    sensor, in turn, and flushes: a write holds the interpreter lock (HDF5 compresses the chunk under
    it), so small writes spread over time keep the other threads from waiting on a large one. Each sensor's
    samples reach the file every ``period_s`` × sensors (0.4 s with four sensors at the default 0.1 s).
    Starting does not wait for the disk either: the file is created on that thread (the samples from the
    start on wait in the rings meanwhile; a file that cannot be created is reported in :attr:`error`).
    Stopping (:meth:`finish`) does not wait: the same thread writes the rest, closes the file and sets
    :attr:`saved`.

    Attributes
    ----------
    cursors, start_cursors : dict of sensor id to int
        Ring totals (samples pushed since the ring was made) taken so far / at the start: the samples taken
        for the file are ``cursors - start_cursors`` per sensor (:attr:`missed` of them were overwritten first).
    written : dict of sensor id to int
        Samples handed to the file per sensor.
    t0 : float or None
        Bus time of the first recorded sample (file time 0), s.
    """

    def __init__(self, bus: LiveBus, path: str | Path, info: SessionInfo, sensors: list[SensorInfo], *,
                 period_s: float = 0.1) -> None:
        self.bus = bus
        self.path = Path(path)
        self.info = info
        self._sensors = list(sensors)
        self.writer: Any = None  # a SessionWriter, made on the recorder's thread
        self.sensor_ids = [s.sensor_id for s in sensors]
        self._rings = {sid: bus.rings[sid] for sid in self.sensor_ids}
        self.cursors = {sid: r.total for sid, r in self._rings.items()}  # from the first sample after start
        self.start_cursors = dict(self.cursors)
        self.t0: float | None = None
        self.missed = 0
        self.written = {sid: 0 for sid in self.sensor_ids}
        self._pending: dict[str, list[Any]] = {sid: [] for sid in self.sensor_ids}  # taken, not yet written
        self._turn = 0
        self.error: str | None = None
        self._events: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        #: Set once the file is closed and complete (or could not be: see ``error``).
        self.saved = threading.Event()
        self.period_s = period_s
        self._thread = threading.Thread(target=self._main, name="lumbar-recorder", daemon=True)
        self._thread.start()

    def mark(self, bus_time_s: float, label: str, note: str = "") -> None:
        """An event marker at ``bus_time_s`` (bus time, s); written with the next samples."""
        self._events.put((bus_time_s, label, note))

    def _progress(self) -> None:
        """Called on the recorder's thread after each write, and once :attr:`saved` is set (a hook)."""

    def _drain(self, everything: bool = False) -> None:
        """Take what is new from the rings; write one sensor's samples (``everything``: all of them)."""
        got = {}
        for sid, ring in self._rings.items():
            b, self.cursors[sid], missed = ring.since(self.cursors[sid])
            self.missed += missed
            if len(b):
                got[sid] = b
        if got and self.t0 is None:
            self.t0 = min(float(b.time_s[0]) for b in got.values())
        for sid, b in got.items():
            self._pending[sid].append(replace(b, time_s=b.time_s - self.t0))
        while self.t0 is not None:
            try:
                t, label, note = self._events.get_nowait()
            except queue.Empty:
                break
            self.writer.add_event(Event(max(0.0, t - self.t0), label, note))
        if everything:
            turn = self.sensor_ids
        else:
            turn = [self.sensor_ids[self._turn % len(self.sensor_ids)]] if self.sensor_ids else []
            self._turn += 1
        for sid in turn:
            batches, self._pending[sid] = self._pending[sid], []
            for b in batches:
                self.writer.append(b)
                self.written[sid] += len(b)
        self.writer.flush()

    def _main(self) -> None:
        try:
            self._record()
        finally:
            self.saved.set()
            self._progress()

    def _record(self) -> None:
        try:
            # creating the file imports h5py the first time and touches the disk: never on a thread that
            # draws (a GUI-thread stall of 60-90 ms when it was done by the caller)
            from lumbar.storage.writer import SessionWriter

            self.writer = SessionWriter(self.path, self.info, self._sensors)
        except Exception as e:
            self.error = f"the session file {self.path} could not be created: {error_text(e)}"
            return
        try:
            try:
                while not self._stop.wait(self.period_s):
                    self._drain()
                    self._progress()
            except Exception as e:  # disk full, ...: reported, the GUI keeps running
                self.error = error_text(e)
            # finish here, not on the thread that stopped the recording (the GUI's): the last samples, then
            # closing, which rewrites the file with its final chunks (seconds for an hour's recording)
            try:
                self._drain(everything=True)
            finally:
                self.writer.close()
        except Exception as e:
            self.error = self.error or error_text(e)

    def finish(self) -> None:
        """Stop recording without waiting: the recorder's thread writes what is left, closes the file and
        marks it complete, then sets :attr:`saved` (:attr:`error` says what went wrong, if anything)."""
        self._stop.set()


def error_text(e: BaseException) -> str:
    """A recording error as the operator reads it: our own errors say what happened in words already."""
    if isinstance(e, LumbarError):
        return str(e)
    if isinstance(e, OSError) and e.strerror:  # "No space left on device: /path", not the errno's repr
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    return f"{type(e).__name__}: {e}"


_storage_loading = threading.Lock()  # held once the library is being loaded: once per process


def preload_storage() -> None:
    """Import the session file's library (h5py: ≈ 0.14 s of imports holding the interpreter lock) on a
    background thread, once per process: called once the sensors stream and their processing has started —
    not when the first recording starts (a GUI-thread stall of 60-150 ms when that was the application's),
    nor before the first plot, which it delayed."""
    if _storage_loading.acquire(blocking=False):
        threading.Thread(target=_load_storage, name="lumbar-load-storage", daemon=True).start()


def _load_storage() -> None:
    import lumbar.storage.writer  # noqa: F401 (for the recordings)
