"""The BLE reader in a process of its own.

The application's sensors are read by :mod:`lumbar.acquisition.reader` (bleak's public API; for the
emulated sensors, a Bumble host stack on the bleak backends) in a child process, and their samples are
processed and recorded there too (:class:`~lumbar_gui.processing.LiveProcessor`: orientation, angles,
sway, repetitions; :class:`~lumbar_gui.recording.Recorder`: the session file), so that this work — 14–16 % of
a core for the reader, about 12 % for the processing, with four sensors at 200 Hz (measured in the GUI
benchmark), and the HDF5 writes, which hold the interpreter lock through compression and disk — never
competes with the GUI thread for that lock, and loading the filters' compiled kernels never stalls it.
The child sends decoded samples back, a few milliseconds' worth at a time (the application pushes them onto
its :class:`~lumbar.acquisition.bus.LiveBus` for its plots), the derived rows and outcomes as the
processing makes them (into the source's :class:`~lumbar_gui.sources.RemoteProcessor`), and the
recording's progress (into a :class:`~lumbar_gui.sources.RemoteRecorder`).

Both processes read :func:`time.monotonic` (one clock for the whole machine), so the child stamps samples
in the application's bus time (seconds since the source's ``origin_s``).

Messages are pickled tuples over a :func:`multiprocessing.Pipe` (in order, never lost while both run):

application → child
    ``("call", id, op, args)`` — answered by ``("reply", id, ok, value)``; ``op`` is one of ``emulate``
    (connect a Bumble central to the emulated sensors' HCI), ``scan``, ``battery``, ``end`` (stop a
    source's readers and its processing, send their last samples, then answer); ``("source", name,
    origin_s, options, targets, rates)`` (options: a ``ReaderOptions`` or a dict of its fields; rates: the
    sensors' nominal rates, Hz, to process the source's samples here, or None), ``("add", name, target,
    rate_hz)``, ``("remove", name, sensor_id)``, ``("process", name, method, args)`` (``calibrate``,
    ``set_repetitions``, ``reset_repetitions``, ``exclude_thighs`` of the source's processing); ``("record",
    name, recording, path, info, sensors)`` (record the source's sensors to the session file ``path`` from their next
    sample; ``recording`` names it in the answers), ``("mark", recording, time_s, label, note)`` (bus
    time), ``("finish", recording)`` (stop it: the rest is written and the file closed there); ``None``:
    stop (after every recording is saved).
child → application
    ``("rows", {source: {sensor_id: (time_s, device_time_s, acc, gyro, seq, flags)}})``,
    ``("status", source, sensor_id, {field: value})``, ``("event", source, Event)``, replies; from the
    processing: ``("derived", source, time_s, rows, (calibrated, provisional, missed))`` and
    ``("processed", source, kind, value)`` (``ready``, ``calibration``, ``repetition``, ``error``); from a
    recording, after each write and once saved: ``("recorded", recording, {t0, written, missed, cursors,
    start_cursors, error, saved})``.

A sensor's last samples always reach the application before the status saying it is disconnected.
If the child dies, every source's sensors are shown disconnected with the reason, and calls fail with
:class:`ReaderProcessError` — the application and its recording go on.

:class:`ReaderProcess` is the application's side (:class:`~lumbar_gui.sources.BleLink` and
:class:`~lumbar_gui.sources.BleSource` talk to it); :func:`_child_main` is the child's.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import os
import sys
import threading
import time
from typing import Any

import numpy as np

from lumbar_gui.processing import LiveProcessor
from lumbar_gui.recording import Recorder, preload_storage

__all__ = ["ReaderProcess", "ReaderProcessError", "AdapterError", "COALESCE_S"]

logger = logging.getLogger(__name__)

#: Samples are sent to the application at most this late, s (a few notifications' worth per message).
COALESCE_S = 0.008
START_TIMEOUT_S = 30.0
#: How long :meth:`ReaderProcess.close` waits for a killed child to be gone, s.
KILL_WAIT_S = 15.0


#: Messages from the child for one source, and the source's handler of each.
_TO_SOURCE = {"status": "_status", "event": "_event", "derived": "_derived", "processed": "_processed",
              "recorded": "_recorded"}


class ReaderProcessError(RuntimeError):
    """The reader's process is not running (it could not start, or it stopped)."""


class AdapterError(RuntimeError):
    """bleak's scanner could not start (no adapter, no BlueZ / D-Bus): the reason in plain words."""


# ----------------------------------------------------------------------------------------------------
# the application's side

class ReaderProcess:
    """The reader's child process, seen from the application.

    Starts at construction (it imports bleak and the decoders meanwhile). Thread-safe: calls and
    messages may come from any thread; what the child sends is handled on a receiving thread of this
    process, which hands samples, statuses and events to the registered sources
    (:meth:`register`: objects with ``_rows(sensor_id, cols)``, ``_status(sensor_id, fields)``,
    ``_event(event)``, ``_derived(time_s, rows, state)``, ``_processed(kind, value)`` and ``_lost(reason)``).
    """

    _prestarted: ReaderProcess | None = None

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork a process that runs Qt and threads
        self._conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_child_main, args=(child,), name="lumbar-reader", daemon=True)
        self.proc.start()
        child.close()
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._calls: dict[int, concurrent.futures.Future[Any]] = {}
        self._sources: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.error: str | None = None
        self._closing = False  # close() has begun: the child's end is expected
        self._closed = False
        # Only one thread at a time may wait for (reap) the child: when two did — close() and the receiving
        # thread, which sees the pipe end at the same moment — one could miss the exit and take the process
        # for still running (and "kill" a process already gone).
        self._reap_lock = threading.Lock()
        self._thread = threading.Thread(target=self._receive, name="lumbar-reader-receiver", daemon=True)
        self._thread.start()

    @classmethod
    def prestart(cls) -> None:
        """Start the process now (``lumbar gui`` calls this before it imports Qt); :meth:`take` hands it over."""
        if cls._prestarted is None:
            cls._prestarted = cls()

    @classmethod
    def take(cls) -> ReaderProcess:
        """The prestarted process if it is still running, else a new one."""
        proc, cls._prestarted = cls._prestarted, None
        return proc if proc is not None and proc.running else cls()

    @property
    def running(self) -> bool:
        return self.error is None and not self._closed and not self._gone(0.0)

    def _gone(self, timeout_s: float) -> bool:
        """Whether the child has ended, waiting up to ``timeout_s``; never reaps it (its sentinel closes
        when it ends), so any thread may ask."""
        return bool(multiprocessing.connection.wait([self.proc.sentinel], timeout_s))

    def _reap(self) -> None:
        """Collect the ended child's exit code (once it has ended: at most a moment's wait)."""
        with self._reap_lock:
            self.proc.join(1.0)

    # -- requests -----------------------------------------------------------------------------------
    def send(self, *msg: Any) -> None:
        """Send a message that needs no answer."""
        if not self.running:
            raise ReaderProcessError(self.error or "the Bluetooth reader has stopped")
        with self._send_lock:
            try:
                self._conn.send(msg)
            except (OSError, EOFError, BrokenPipeError) as e:
                raise ReaderProcessError("the Bluetooth reader has stopped") from e

    def call(self, op: str, *args: Any) -> concurrent.futures.Future[Any]:
        """Ask the child for ``op``; a future of its answer (exceptions: :class:`AdapterError`,
        :class:`ReaderProcessError`, or the child's error as :class:`RuntimeError`)."""
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        cid = next(self._ids)
        with self._lock:
            self._calls[cid] = fut
        try:
            self.send("call", cid, op, args)
        except ReaderProcessError as e:
            with self._lock:
                self._calls.pop(cid, None)
            fut.set_exception(e)
        return fut

    async def acall(self, op: str, *args: Any, timeout_s: float | None = None) -> Any:
        """:meth:`call` awaited on the running loop."""
        return await asyncio.wait_for(asyncio.wrap_future(self.call(op, *args)), timeout_s)

    def register(self, name: str, sink: Any) -> None:
        with self._lock:
            self._sources[name] = sink
            error = self.error
        if error is not None:
            sink._lost(error)

    def unregister(self, name: str) -> None:
        with self._lock:
            self._sources.pop(name, None)

    def close(self, timeout_s: float = 3.0) -> None:
        """Stop the child (its readers disconnect their sensors) and wait for it; kill it after ``timeout_s``."""
        if self._closed:
            return
        self._closing = True
        try:
            with self._send_lock:
                self._conn.send(None)
        except (OSError, EOFError, BrokenPipeError):
            pass
        if not self._gone(timeout_s):
            logger.warning("the Bluetooth reader's process did not stop within %.0f s: ended by force", timeout_s)
            self.proc.kill()
            # SIGKILL always ends it, but a loaded machine may take seconds to tear the process down: wait
            # for that rather than return with it still there
            if not self._gone(KILL_WAIT_S):
                logger.error("the Bluetooth reader's process (pid %s) is still there %.0f s after it was killed",
                             self.proc.pid, KILL_WAIT_S)
        self._reap()
        if threading.current_thread() is not self._thread:
            self._thread.join(2.0)  # it hands on the child's last messages, then tells the sources it is closed
        self._closed = True
        self._conn.close()

    # -- receiving ----------------------------------------------------------------------------------
    def _receive(self) -> None:
        conn = self._conn
        while True:
            try:
                msg = conn.recv()  # waits without the interpreter lock
            except (EOFError, OSError):
                break
            try:
                self._dispatch(msg)
            except Exception:  # noqa: BLE001 - one bad message must not end the reception of the others
                logger.exception("message from the Bluetooth reader's process not handled")
        self._on_ended()

    def _dispatch(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "rows":
            for name, per_sensor in msg[1].items():
                sink = self._sources.get(name)
                if sink is not None:
                    for sid, cols in per_sensor.items():
                        sink._rows(sid, cols)
        elif kind in _TO_SOURCE:  # (kind, source, *arguments of the source's handler)
            sink = self._sources.get(msg[1])
            if sink is not None:
                getattr(sink, _TO_SOURCE[kind])(*msg[2:])
        elif kind == "reply":
            with self._lock:
                fut = self._calls.pop(msg[1], None)
            if fut is not None and not fut.done():
                ok, value = msg[2], msg[3]
                if ok:
                    fut.set_result(value)
                else:
                    kind_, text = value
                    fut.set_exception(AdapterError(text) if kind_ == "adapter" else RuntimeError(text))

    def _on_ended(self) -> None:
        """The child ended (or closed its end): fail what waits, tell the sources."""
        if not self._closing:
            self._reap()
            code = self.proc.exitcode
            self.error = ("the Bluetooth reader's process stopped unexpectedly"
                          + (f" (exit code {code})" if code not in (None, 0) else ""))
        else:
            self.error = "the Bluetooth reader was closed"
        with self._lock:
            calls, self._calls = self._calls, {}
            sources = list(self._sources.values())
        for fut in calls.values():
            if not fut.done():
                fut.set_exception(ReaderProcessError(self.error))
        for sink in sources:
            sink._lost(self.error)


# ----------------------------------------------------------------------------------------------------
# the child's side

def _child_main(conn: Any) -> None:
    """Entry point of the child process."""
    try:
        asyncio.run(_serve(conn))
    except KeyboardInterrupt:  # the terminal's Ctrl-C reaches the whole process group
        pass


async def _serve(conn: Any) -> None:
    loop = asyncio.get_running_loop()
    server = _Server(conn, loop)

    def read() -> None:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                msg = None
            loop.call_soon_threadsafe(server.handle, msg)
            if msg is None:
                return

    threading.Thread(target=read, name="commands", daemon=True).start()
    # what a session needs, imported while the application builds its window (Bumble's host stack too:
    # the emulated sensors need it, and a fresh start has nothing else to do meanwhile)
    import bleak  # noqa: F401

    import lumbar.acquisition.reader  # noqa: F401
    import lumbar.acquisition.virtual_radio  # noqa: F401

    # Not the processing's filters: loaded at boot they slowed the first samples by ≈ 0.5 s (the loop that
    # scans and connects shares this process's interpreter lock); each processing loads them once its
    # sensors stream.
    await server.done.wait()
    # Everything is finished: sensors disconnected, recordings complete on disk, the Bluetooth host closed.
    # Leave now. Winding down the rest (cancelling the Bluetooth stack's tasks, whose link to the sensors
    # may be gone, and the interpreter's exit) sometimes outlasted the 3 s the application waits before
    # it ends this process by force — keeping the window from closing for those seconds.
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)


class _Server:
    """The child: a Bluetooth link (bleak backends) and the sources reading through it."""

    def __init__(self, conn: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.conn = conn
        self.loop = loop
        self.link = _Link()
        self.sources: dict[str, _Source] = {}
        self.recordings: dict[str, _ForwardingRecorder] = {}  # until saved
        self.done = asyncio.Event()
        self._pending: dict[str, dict[str, list[Any]]] = {}
        self._flush_handle: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False  # the application has gone or asked to stop
        self._send_lock = threading.Lock()  # the loop and the processing threads send

    # -- to the application -------------------------------------------------------------------------
    def emit(self, *msg: Any) -> None:
        """Send a message (any thread)."""
        try:
            with self._send_lock:
                self.conn.send(msg)
        except (OSError, EOFError, BrokenPipeError):
            self.loop.call_soon_threadsafe(self.handle, None)  # the application has gone

    def take(self, source: str, batch: Any) -> None:
        """A reader's decoded batch: sent with the others within :data:`COALESCE_S`."""
        self._pending.setdefault(source, {}).setdefault(batch.sensor_id, []).append(batch)
        if self._flush_handle is None:
            self._flush_handle = self.loop.call_later(COALESCE_S, self.flush)

    def flush(self) -> None:
        """Send every pending sample now."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._pending:
            return
        out: dict[str, dict[str, tuple[np.ndarray, ...]]] = {}
        for name, per_sensor in self._pending.items():
            out[name] = {sid: _columns(batches) for sid, batches in per_sensor.items()}
        self._pending = {}
        self.emit("rows", out)

    # -- from the application -----------------------------------------------------------------------
    def handle(self, msg: Any) -> None:
        if msg is None:
            if not self._stopping:
                self._stopping = True
                self._spawn(self._stop())
            return
        kind = msg[0]
        if kind == "call":
            self._spawn(self._answer(msg[1], msg[2], msg[3]))
        elif kind == "source":
            _, name, origin_s, options, targets, rates = msg
            src = _Source(self, name, origin_s, options, rates)
            self.sources[name] = src
            for t in targets:
                src.add(t, (rates or {}).get(t.sensor_id))
        elif kind == "add":
            src = self.sources.get(msg[1])
            if src is not None:
                src.add(msg[2], msg[3])
        elif kind == "remove":
            src = self.sources.get(msg[1])
            if src is not None:
                src.remove(msg[2])
        elif kind == "process":
            src = self.sources.get(msg[1])
            if src is not None and src.processor is not None and msg[2] in _PROCESS_CONTROLS:
                getattr(src.processor, msg[2])(*msg[3])
        elif kind == "record":
            self._record(*msg[1:])
        elif kind == "mark":
            rec = self.recordings.get(msg[1])
            if rec is not None:
                rec.mark(*msg[2:])
        elif kind == "finish":
            rec = self.recordings.get(msg[1])
            if rec is not None:
                rec.finish()

    def _record(self, source: str, name: str, path: str, info: Any, sensors: list[Any]) -> None:
        src = self.sources.get(source)
        if src is None:
            self.emit("recorded", name, {"error": "the sensors had been disconnected before the recording "
                                                  "started: nothing was recorded", "saved": True})
            return
        sensors = [s for s in sensors if s.sensor_id in src.bus.rings]
        self.recordings[name] = _ForwardingRecorder(self, name, src.bus, path, info, sensors)

    def _spawn(self, coro: Any) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, cid: int, op: str, args: tuple[Any, ...]) -> None:
        from bleak.exc import BleakError

        try:
            if op == "emulate":
                value = await self.link.emulate(*args)
            elif op == "scan":
                value = await self.link.scan(*args)
            elif op == "battery":
                value = await self.link.read_battery(*args)
            elif op == "end":
                src = self.sources.pop(args[0], None)
                if src is not None:
                    await src.close()
                self.flush()
                value = None
            elif op == "ping":
                value = time.monotonic()
            else:
                raise ValueError(f"unknown request {op!r}")
        except AdapterError as e:
            self.emit("reply", cid, False, ("adapter", str(e)))
        except (BleakError, OSError, ValueError, RuntimeError, TimeoutError) as e:
            self.emit("reply", cid, False, ("error", f"{type(e).__name__}: {e}"))
        else:
            self.emit("reply", cid, True, value)

    async def _stop(self) -> None:
        t = [time.monotonic()]
        for name in list(self.sources):
            src = self.sources.pop(name)
            await src.close()
        self.flush()
        t.append(time.monotonic())
        # the application has gone or stops: its recordings end here, complete (closing rewrites a file's
        # last chunks: seconds for an hour's recording)
        recordings = list(self.recordings.values())
        for rec in recordings:
            rec.finish()
        for rec in recordings:
            await asyncio.get_running_loop().run_in_executor(None, rec.wait)
        t.append(time.monotonic())
        await self.link.close()
        t.append(time.monotonic())
        if t[-1] - t[0] > 1.0:  # the application waits 3 s before it ends this process by force
            logger.warning("stopping the Bluetooth reader took %.1f s (sensors %.1f s, recordings %.1f s, "
                           "Bluetooth host %.1f s)", t[-1] - t[0], *(b - a for a, b in zip(t, t[1:])))
        self.done.set()


def _columns(batches: list[Any]) -> tuple[np.ndarray, ...]:
    """The columns of one sensor's batches, joined."""
    if len(batches) == 1:
        b = batches[0]
        return b.time_s, b.device_time_s, b.acc, b.gyro, b.seq, b.flags
    return tuple(np.concatenate([getattr(b, f) for b in batches])
                 for f in ("time_s", "device_time_s", "acc", "gyro", "seq", "flags"))


class _Link:
    """bleak backends in the child: the host's adapter (bleak's default backend) or, once
    :meth:`emulate` has run, a Bumble central on the emulated sensors' radio."""

    def __init__(self) -> None:
        self.central: Any = None
        self.scanner_backend: Any = None
        self.client_backend: Any = None
        self.scanned = False
        self._devices: dict[str, Any] = {}

    async def emulate(self, hci_spec: str) -> None:
        from lumbar.acquisition.virtual_radio import HciCentral

        if self.central is None:
            self.central = await HciCentral.open(hci_spec)
            self.scanner_backend, self.client_backend = self.central.scanner_backend, self.central.client_backend

    async def close(self) -> None:
        central, self.central = self.central, None
        if central is not None:
            try:
                await central.stop()
            except Exception:  # noqa: BLE001 - the sensors' process may already be gone
                pass

    async def scan(self, timeout_s: float, expect: list[str]) -> list[tuple[str, str, str, float | None]]:
        """``(address, name, family, rssi_dbm)`` of the advertising sensors of a known family.

        Raises :class:`AdapterError` when the very first scan cannot start on the host's adapter."""
        from bleak.exc import BleakError

        from lumbar.acquisition.reader import discover

        try:
            found = await discover(timeout_s, backend=self.scanner_backend, expect=expect)
        except (BleakError, OSError) as e:
            if self.central is None and not self.scanned:
                raise AdapterError(_adapter_problem(e)) from e
            raise
        self.scanned = True
        self._devices = {d.address: d.device for d in found}
        return [(d.address, d.name, d.family, None if d.rssi_dbm is None else float(d.rssi_dbm)) for d in found]

    async def read_battery(self, address: str, timeout_s: float = 5.0) -> float | None:
        """Connect briefly to the sensor found by the last scan and read its Battery level (0x2A19), %."""
        from bleak import BleakClient
        from bleak.exc import BleakError

        from lumbar.acquisition.reader import BATTERY_LEVEL

        device = self._devices.get(address)
        if device is None:
            return None
        try:
            async with BleakClient(device, timeout=timeout_s, backend=self.client_backend) as client:
                if client.services.get_characteristic(BATTERY_LEVEL) is None:
                    return None
                value = await asyncio.wait_for(client.read_gatt_char(BATTERY_LEVEL), timeout_s)
                return float(value[0]) if value else None
        except (BleakError, TimeoutError, OSError, EOFError):
            return None


def _adapter_problem(e: BaseException) -> str:
    """Plain words for a scanner that could not start."""
    if isinstance(e, FileNotFoundError):
        return "no Bluetooth adapter: the system's D-Bus/BlueZ service is not available"
    text = str(e) or type(e).__name__
    return f"no usable Bluetooth adapter ({text})"


_PROCESS_CONTROLS = frozenset({"calibrate", "set_repetitions", "reset_repetitions", "exclude_thighs"})


class _Source:
    """One source's sensors in the child, a :class:`~lumbar.acquisition.reader.SensorReader` each, and
    (``rates`` given) their live processing, fed from a bus of the child's own.

    A sensor disconnected and connected again keeps its reader (its sequence numbers continue; the gap
    is flagged); another sensor at the same placement gets a reader of its own."""

    def __init__(self, server: _Server, name: str, origin_s: float, options: Any,
                 rates: dict[str, float] | None = None) -> None:
        from lumbar.acquisition.clock import RealClock

        self.server = server
        self.name = name
        self.origin_s = float(origin_s)
        if isinstance(options, dict):  # the reader's defaults but these
            from lumbar.acquisition.reader import ReaderOptions

            options = ReaderOptions(**options)
        self.options = options
        self.clock = RealClock()
        self.readers: dict[str, Any] = {}
        self.targets: dict[str, Any] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._removed: set[str] = set()
        from lumbar.acquisition.bus import LiveBus

        # what the processing (every 40 ms) and a recording (every 0.1 s, unless the disk stalls) take from
        self.bus = LiveBus(capacity_s=60.0)
        self.processor: Any = None
        if rates is not None:
            self.processor = _ForwardingProcessor(server, name, self.bus, rates)

    def _sink(self, batch: Any) -> None:
        """A reader's decoded batch: to the application, and onto this process's bus (processing, recordings)."""
        self.server.take(self.name, batch)
        self.bus.push(batch)

    def add(self, target: Any, rate_hz: float | None = None) -> None:
        sid = target.sensor_id
        if sid not in self.bus.rings:
            rate = float(rate_hz or target.rate_hz or 100.0)
            if self.processor is not None:
                self.processor.rates_hz.setdefault(sid, rate)
            self.bus.add_sensor(sid, rate)
        old = self.targets.get(sid)
        replaced = old is not None and old.address != target.address
        self.targets[sid] = target
        self._removed.discard(sid)
        self.server._spawn(self._restart(target, replaced))

    def remove(self, sensor_id: str) -> None:
        self._removed.add(sensor_id)
        self.server._spawn(self._stop(sensor_id))

    async def close(self) -> None:
        await asyncio.gather(*(self._stop(sid) for sid in list(self._tasks)), return_exceptions=True)
        if self.processor is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.processor.stop)

    async def _restart(self, target: Any, replaced: bool) -> None:
        sid = target.sensor_id
        if replaced:
            await self._stop(sid)
            self.readers.pop(sid, None)
        task = self._tasks.get(sid)
        if task is not None and not task.done():
            return
        self._status(sid, name=target.name or "", address=target.address or "", family=target.family or "",
                     connected=False, message="connecting", achieved_rate_hz=0.0)
        self._start(target)

    def _start(self, target: Any) -> None:
        from lumbar.acquisition.reader import SensorReader

        sid = target.sensor_id
        reader = self.readers.get(sid)
        link = self.server.link
        if reader is None:
            reader = SensorReader(target, self._sink, on_event=lambda e: self.server.emit("event", self.name, e),
                                  on_status=self._reader_status, clock=self.clock, origin_s=self.origin_s,
                                  scanner_backend=link.scanner_backend, client_backend=link.client_backend,
                                  options=self.options)
            self.readers[sid] = reader
        else:
            reader.status.message = "connecting"
        self._tasks[sid] = asyncio.get_running_loop().create_task(reader.run(), name=f"reader {sid}")

    def _reader_status(self, status: Any) -> None:
        self._status(status.sensor_id, **{k: getattr(status, k) for k in status.__dataclass_fields__
                                          if k != "sensor_id"})

    def _status(self, sensor_id: str, **fields: Any) -> None:
        self.server.emit("status", self.name, sensor_id, fields)

    async def _stop(self, sensor_id: str) -> None:
        task = self._tasks.pop(sensor_id, None)
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self.server.flush()  # its last samples before the status that says it stopped
        reader = self.readers.get(sensor_id)
        if reader is not None and sensor_id in self._removed:
            reader.status.connected = False
            reader.status.message = "disconnected"
            reader.status.achieved_rate_hz = 0.0
            self._reader_status(reader.status)


class _ForwardingProcessor(LiveProcessor):
    """The live processing of one source in the child: what it makes is sent to the application."""

    def __init__(self, server: _Server, name: str, bus: Any, rates: dict[str, float]) -> None:
        self._server, self._name = server, name  # before the base class starts its thread
        super().__init__(bus, rates, capacity_s=1.0)  # its own series is not read here

    def _publish(self, t: np.ndarray, rows: np.ndarray) -> None:
        self._server.emit("derived", self._name, t, rows,
                          (self.calibrated, self.provisional, self.missed))

    def _put(self, kind: str, obj: Any) -> None:
        self._server.emit("processed", self._name, kind, obj)
        if kind == "ready":  # the sensors stream and the filters are in: the recordings' library next
            preload_storage()


class _ForwardingRecorder(Recorder):
    """A recording in the child: its progress is sent to the application after each write and once saved."""

    def __init__(self, server: _Server, name: str, *args: Any) -> None:
        self._server, self._name = server, name  # before the base class starts its thread
        super().__init__(*args)

    def _progress(self) -> None:
        saved = self.saved.is_set()
        self._server.emit("recorded", self._name, {
            "t0": self.t0, "written": dict(self.written), "missed": self.missed, "cursors": dict(self.cursors),
            "start_cursors": self.start_cursors, "error": self.error, "saved": saved})
        if saved:  # forgotten (on the loop, which owns the table)
            try:
                self._server.loop.call_soon_threadsafe(self._server.recordings.pop, self._name, None)
            except RuntimeError:  # the loop has closed: the process is ending, nothing to forget
                pass
