"""The GUI's workers: acquisition (asyncio thread), live processing, and recording — all off the GUI thread.

* :class:`AcquisitionWorker` — one thread running an asyncio loop; any source with ``attach(bus)`` /
  ``async run(bus)`` (the BLE reader's :class:`~lumbar_gui.sources.BleSource`, a replay) runs on it until
  cancelled; the Bluetooth work around it (scans, battery reads) is driven from the same loop. The BLE
  reader itself runs in a process of its own (:mod:`lumbar_gui.reader_process`).
* the live processing (:mod:`lumbar_gui.processing`): orientation, kinematics and live metrics published
  into a :class:`~lumbar_gui.processing.SeriesRing` and a queue — in the reader's process for Bluetooth
  sensors (the source's ``live_processor``), else a :class:`~lumbar_gui.processing.LiveProcessor` thread here.
* the recording (:mod:`lumbar_gui.recording`): a :class:`~lumbar_gui.recording.Recorder` thread drains
  rings into a :class:`~lumbar.storage.SessionWriter` (so a slow disk never stalls the GUI) and counts any
  sample it could not get (``missed``) — in the reader's process for Bluetooth sensors (the source's
  ``recorder``), else here.
* :class:`Engine` — owns the bus and the workers; the GUI calls :meth:`Engine.poll` from its
  timer, which drains the queues and emits Qt signals on the GUI thread.

Every worker can be stopped and joins on :meth:`Engine.shutdown`; closing the window during a recording
finalises the file.
"""
from __future__ import annotations

import asyncio
import queue
import threading
import time
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

from lumbar.acquisition.bus import LiveBus
from lumbar.types import Event, SensorInfo, SessionInfo
from lumbar_gui.processing import COL, DERIVED_COLUMNS, CalibrationReport, LiveProcessor, LiveRep, SeriesRing
from lumbar_gui.recording import Recorder, Recording, preload_storage

__all__ = ["AcquisitionWorker", "SeriesRing", "LiveProcessor", "Recorder", "Engine", "LiveRep", "CalibrationReport",
           "DERIVED_COLUMNS", "COL"]


# ----------------------------------------------------------------------------------------------------
# acquisition

class AcquisitionWorker:
    """An asyncio event loop in its own thread; runs one source at a time, and BLE jobs (:meth:`submit`)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="lumbar-acquisition", daemon=True)
        self._future: Any = None
        self.error: str | None = None
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        # cancel what is left, then close
        pending = asyncio.all_tasks(self.loop)
        for t in pending:
            t.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    def start(self, source: Any, bus: LiveBus) -> None:
        """Attach ``source`` to ``bus`` and run it on the loop (stopping any previous source)."""
        self.stop_source()
        self.error = None
        source.attach(bus)

        async def runner() -> None:
            try:
                await source.run(bus)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # reported to the GUI, never swallowed
                self.error = f"{type(e).__name__}: {e}"

        self._future = asyncio.run_coroutine_threadsafe(runner(), self.loop)

    def submit(self, coro: Any) -> Any:
        """Run a coroutine on the loop beside the source (BLE scans, probes); a concurrent Future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    @property
    def running(self) -> bool:
        return self._future is not None and not self._future.done()

    def stop_source(self, timeout_s: float = 2.0) -> None:
        fut, self._future = self._future, None
        if fut is not None and not fut.done():
            fut.cancel()
            try:
                fut.result(timeout=timeout_s)
            except BaseException:  # cancelled (expected) or timed out
                pass

    def shutdown(self) -> None:
        self.stop_source()
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=3.0)


# ----------------------------------------------------------------------------------------------------
# the engine the GUI talks to

class Engine(QObject):
    """Bus + workers; the GUI's only door to acquisition, processing and recording."""

    calibration_done = Signal(object)  # CalibrationReport
    repetition = Signal(object)  # LiveRep
    recording_changed = Signal(bool, str)  # recording?, path
    message = Signal(str)
    sources_changed = Signal()
    devices_found = Signal(object)  # list[DeviceEntry], from a scan
    device_battery = Signal(str, float)  # address, battery %

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bus = LiveBus(capacity_s=60.0)
        self.acq = AcquisitionWorker()
        self.processor: Any = None  # LiveProcessor, or a source's sources.RemoteProcessor: one interface
        self.recorder: Recording | None = None  # a Recorder, or a source's sources.RemoteRecorder
        self._finishing: list[Recording] = []  # stopped, being saved on their own threads
        self.source: Any = None
        self.sensor_infos: list[SensorInfo] = []
        self._rate_marks: dict[str, tuple[float, int]] = {}
        self.achieved_rate_hz: dict[str, float] = {}
        self._reported_error: str | None = None
        self.repetitions: list[LiveRep] = []
        self.link: Any = None  # sources.BleLink: bleak backends (hardware or emulated sensors)
        self._found_handled = threading.Event()  # the GUI has taken the last scan's list
        self._link_out: queue.Queue = queue.Queue()  # results of work on the acquisition loop
        self._scan_future: Any = None
        self._probe: tuple[Any, Any] | None = None  # (source, future) listening for a tap

    # -- sources -----------------------------------------------------------------------------------
    def connect_source(self, source: Any, sensor_infos: list[SensorInfo] | None = None) -> None:
        """Run ``source`` (stopping the previous one) and a fresh processor for its sensors."""
        self.disconnect_source()
        self.bus = LiveBus(capacity_s=60.0)
        self.source = source
        self.sensor_infos = list(sensor_infos) if sensor_infos is not None else (
            source.sensor_infos() if hasattr(source, "sensor_infos") else [])
        rates = dict(getattr(source, "rates_hz", {}) or {})
        remote = getattr(source, "live_processor", None)
        # a source that processes where it reads (the BLE reader's process) is asked before it starts
        self.processor = remote(rates) if remote is not None else None
        self.acq.start(source, self.bus)
        if not self.sensor_infos:
            self.sensor_infos = [SensorInfo(sid, sid, family=self.bus.status[sid].family or "unknown",
                                            nominal_rate_hz=rates.get(sid, 100.0)) for sid in self.bus.rings]
        if self.processor is None:
            self.processor = LiveProcessor(self.bus, rates or {s.sensor_id: s.nominal_rate_hz
                                                               for s in self.sensor_infos})
        self.repetitions = []
        self.sources_changed.emit()

    def disconnect_source(self) -> None:
        if self.recorder is not None:
            self.stop_recording()
        self.acq.stop_source()
        if self.processor is not None:
            self.processor.stop()
            self.processor = None
        self.source = None
        self._rate_marks.clear()
        self.achieved_rate_hz.clear()
        self.sources_changed.emit()

    @property
    def connected(self) -> bool:
        return self.source is not None

    # -- Bluetooth: scan, per-sensor connect (all BLE work runs on the acquisition loop) -----------
    def use_link(self, emulated: bool) -> None:
        """Scan and connect through the host's adapter, or through emulated sensors (Bumble)."""
        from lumbar_gui.sources import BleLink

        if self.link is None or (emulated and not self.link.emulated):
            old, self.link = self.link, BleLink(emulated)
            if old is not None:
                self.acq.submit(old.stop())

    @property
    def scanning(self) -> bool:
        return self._scan_future is not None and not self._scan_future.done()

    def scan(self, timeout_s: float | None = None) -> bool:
        """Scan in the background; :attr:`devices_found`, then :attr:`device_battery` per sensor. False if busy."""
        from lumbar_gui.sources import BleSource, NoAdapterError

        if self.scanning:
            return False
        if self.link is None:
            self.use_link(False)
        link, out, handled = self.link, self._link_out, self._found_handled

        async def job() -> None:
            try:
                try:
                    entries = await link.scan(timeout_s)
                except NoAdapterError as e:
                    out.put(("message", f"{e}: the emulated sensors are listed instead"))
                    entries = await link.scan(timeout_s)
                handled.clear()
                out.put(("found", entries))
                # battery levels after the GUI has taken the list: a sensor it connects at once (auto-connect)
                # is then skipped, rather than held by a battery read while its reader looks for it
                await asyncio.get_running_loop().run_in_executor(None, handled.wait, 2.0)
                for e in entries:
                    src = self.source
                    if isinstance(src, BleSource) and src.sensor_id_of(e.address):
                        continue  # being connected by the reader, which reads the battery itself
                    pct = await link.read_battery(e.address)
                    if pct is not None:
                        out.put(("battery", (e.address, pct)))
            except Exception as e:  # shown to the operator
                out.put(("message", f"scan failed: {type(e).__name__}: {e}"))
                out.put(("found", None))

        self._scan_future = self.acq.submit(job())
        return True

    def connect_sensors(self, targets: list[Any]) -> None:
        """Connect sensors (reader targets) through the reader: into the running source, or a new one."""
        from lumbar_gui.sources import BleSource, EmulatedSource

        src = self.source
        if isinstance(src, BleSource) and self.acq.running:
            for t in targets:
                src.add(t)
            self.sensor_infos = src.sensor_infos()
            self.sources_changed.emit()
        elif targets:
            cls = EmulatedSource if self.link.emulated else BleSource
            self.connect_source(cls(self.link, targets))

    def disconnect_sensor(self, sensor_id: str) -> None:
        """Disconnect one sensor; the others keep streaming (and recording)."""
        from lumbar_gui.sources import BleSource

        src = self.source
        if isinstance(src, BleSource):
            src.remove(sensor_id)
            self.sensor_infos = src.sensor_infos()

    def start_probe(self, targets: list[Any]) -> LiveBus:
        """Stream ``targets`` onto a bus of their own (not processed, not recorded): tap detection."""
        from lumbar_gui.sources import BleSource

        self.stop_probe()
        src = BleSource(self.link, targets)
        bus = LiveBus(capacity_s=10.0)
        src.attach(bus)
        self._probe = (src, self.acq.submit(src.run(bus)))
        return bus

    def stop_probe(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            probe[1].cancel()

    def tap_demo(self, address: str) -> None:
        """Emulated sensors: the demo patient taps the sensor with ``address``."""
        if self.link is None or self.link.patient is None:
            raise RuntimeError("tapping a sensor is only emulated for the demo sensors")
        self.link.patient.tap(self.link.placement_of(address))

    def _poll_link(self) -> None:
        """Deliver what the BLE work on the loop produced (GUI thread)."""
        while True:
            try:
                kind, obj = self._link_out.get_nowait()
            except queue.Empty:
                break
            if kind == "found":
                self.devices_found.emit(obj)
                self._found_handled.set()
            elif kind == "battery":
                self.device_battery.emit(obj[0], float(obj[1]))
            else:
                self.message.emit(str(obj))
        take = getattr(self.source, "take_events", None)
        if take is not None:
            for e in take():  # the reader's connected / disconnect / reconnect markers
                self.mark(e.label, e.note, e.time_s)

    def now(self) -> float:
        """Latest sample time on the bus (session data time), s."""
        ts = [float(r.latest(1).time_s[-1]) for r in self.bus.rings.values() if r.total]
        return max(ts) if ts else 0.0

    # -- recording ---------------------------------------------------------------------------------
    def start_recording(self, path: str | Path, info: SessionInfo) -> Recording:
        """Record the connected sensors to ``path`` from the next sample on: where the source reads them if it
        can (the BLE reader's process: ``source.recorder``), else on a thread here. Returns the recorder."""
        if self.recorder is not None:
            self.stop_recording()
        sensors = [s for s in self.sensor_infos if s.sensor_id in self.bus.rings]
        remote = getattr(self.source, "recorder", None)
        self.recorder = remote(path, info, sensors) if remote is not None else Recorder(self.bus, path, info, sensors)
        self.recording_changed.emit(True, str(path))
        return self.recorder

    def stop_recording(self) -> Path | None:
        """Stop the recording now and return its path; the file is finished on the recorder's thread (the GUI
        never waits for the disk). ``recording_changed(False, path)`` is emitted once it is saved (see
        :meth:`poll`); :meth:`wait_saved` waits for it from any thread."""
        rec, self.recorder = self.recorder, None
        if rec is None:
            return None
        rec.finish()
        self._last_recorder = rec
        self._finishing.append(rec)
        return rec.path

    def wait_saved(self, timeout_s: float | None = 120.0) -> bool:
        """Wait until every stopped recording is saved (closed, complete); False if ``timeout_s`` passed."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for rec in list(self._finishing):
            if not rec.wait(None if deadline is None else max(0.0, deadline - time.monotonic())):
                return False
        return True

    def _report_saved(self) -> None:
        """Announce the recordings saved since the last call (GUI thread)."""
        for rec in [r for r in self._finishing if r.saved.is_set()]:
            self._finishing.remove(rec)
            if rec.error:
                self.message.emit(f"recording failed: {rec.error}")
            self.recording_changed.emit(False, str(rec.path))

    def mark(self, label: str, note: str = "", time_s: float | None = None) -> None:
        """An event marker now (or at ``time_s``, bus time): on the bus and in the recording."""
        t = self.now() if time_s is None else time_s
        self.bus.mark(Event(t, label, note))
        if self.recorder is not None:
            self.recorder.mark(t, label, note)

    # -- polled from the GUI timer ---------------------------------------------------------------
    def poll(self) -> None:
        self._poll_link()
        if isinstance(self.processor, LiveProcessor) and self.processor.ready.is_set():
            preload_storage()  # a source processed and so recorded here (a replay); the reader's process loads its own
        if self.processor is not None:
            while True:
                try:
                    kind, obj = self.processor.out.get_nowait()
                except queue.Empty:
                    break
                if kind == "calibration":
                    self.calibration_done.emit(obj)
                elif kind == "repetition":
                    self.repetitions.append(obj)
                    self.repetition.emit(obj)
                else:
                    self.message.emit(str(obj))
        if self.acq.error and self.acq.error != self._reported_error:
            self._reported_error = self.acq.error
            self.message.emit(f"acquisition stopped: {self.acq.error}")
        if self.recorder is not None and self.recorder.error:
            err = self.recorder.error
            self.message.emit(f"recording failed: {err}")
            self.recorder.error = None
        if self._finishing:
            self._report_saved()
        # achieved rate: samples received per second of the session clock (host time of the samples)
        for sid, ring in self.bus.rings.items():
            if not ring.total:
                continue
            t_last = float(ring.latest(1).time_s[-1])
            mark = self._rate_marks.get(sid)
            if mark is None:
                self._rate_marks[sid] = (t_last, ring.total)
            elif t_last - mark[0] >= 1.0:
                self.achieved_rate_hz[sid] = (ring.total - mark[1]) / (t_last - mark[0])
                self._rate_marks[sid] = (t_last, ring.total)
            elif not self.bus.status[sid].connected and ring.total == mark[1]:
                self.achieved_rate_hz[sid] = 0.0

    def shutdown(self) -> None:
        """Finalise any recording, stop every worker (closing the window calls this)."""
        self.disconnect_source()
        self.wait_saved()  # the file is whole before the application ends
        self.stop_probe()
        link, self.link = self.link, None
        if link is not None and not self.acq.loop.is_closed() and self.acq.loop.is_running():
            try:
                self.acq.submit(link.stop()).result(timeout=3.0)
            except Exception:  # noqa: BLE001 - closing anyway
                pass
        self.acq.shutdown()


def run_in_thread(fn: Callable[[], Any], done: Callable[[Any, BaseException | None], None]) -> threading.Thread:
    """Run ``fn`` in a daemon thread; ``done(result, error)`` is called from that thread."""
    def main() -> None:
        try:
            r = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            done(None, e)
        else:
            done(r, None)

    th = threading.Thread(target=main, daemon=True)
    th.start()
    return th
