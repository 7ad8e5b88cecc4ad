"""The demo sensors in a process of their own.

``lumbar gui --emulated`` (or a host without a Bluetooth adapter) shows four emulated sensors worn by a
live demo patient. They run here, in a child process, as real sensors run in their own hardware: the
child holds the :class:`~lumbar_gui.sources.DemoPatient`, the :class:`~lumbar.acquisition.emulated.Emulator`
(Bumble peripherals on a virtual radio) and one more central controller on that radio, whose HCI it
serves on a local TCP socket (:meth:`~lumbar.acquisition.virtual_radio.VirtualRadio.serve_hci`). The
BLE reader's process (:mod:`lumbar_gui.reader_process`) connects a Bumble host to it
(:class:`~lumbar.acquisition.virtual_radio.HciCentral`) and reads the sensors through bleak as from any radio. The sensors' work (the patient's samples, packet
encoding, their BLE stacks) then no longer competes with the GUI thread for the interpreter lock.

Control, one JSON object per line:

* parent → child (stdin): ``{"op": "perform", "movement": .., "duration_s": .., "kwargs": {..}}``
  (``kwargs`` may hold ``"hold": true``), ``{"op": "go"}``, ``{"op": "tap", "placement": ..}``,
  ``{"op": "turn", "placement": .., "turned": true}``, ``{"op": "drop", "address": .., "away_s": ..}``; end
  of input (the application closed or died) stops the child.
* child → parent (stdout): first ``{"ready": {"port": .., "sensors": [..]}}`` (or ``{"error": ..}``),
  then ``{"state": {"movement": .., "started": .., "last_error": .., "connected": [addresses]}}`` whenever it
  changes (``started``: how many ``perform`` requests have begun; both sides number them 1, 2, … in order).

Run as ``python -m lumbar_gui.demo_process [--rate-hz 200] [--seed 7]``; :class:`DemoSensors` starts it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

__all__ = ["DemoSensors", "DemoSensorInfo", "DemoProcessError", "main"]

STATE_PERIOD_S = 0.05  # how often the child looks for a change of state to report
START_TIMEOUT_S = 30.0  # a cold numba cache compiles the patient model first
COALESCE_S = 0.010  # notifications for the application written together, at most this late, s


class DemoProcessError(RuntimeError):
    """The demo sensors' process could not start or stopped."""


@dataclass(frozen=True)
class DemoSensorInfo:
    """One emulated sensor as the child reports it."""

    address: str
    name: str
    family: str
    placement: str
    battery_pct: int


# ----------------------------------------------------------------------------------------------------
# the parent's side (the application)

class DemoSensors:
    """The demo sensors' process, seen from the application.

    The process starts at construction (so it boots while the application builds its window);
    :meth:`connect` waits for it and returns a running :class:`~lumbar.acquisition.virtual_radio.HciCentral`
    for the bleak backends. The demo patient's controls (:meth:`perform`, :meth:`tap`, :meth:`drop_link`)
    may be called from any thread.

    Parameters
    ----------
    rate_hz : float
        Sample rate of the demo patient, Hz.
    seed : int
        Seed of the patient and the sensor errors.
    """

    def __init__(self, rate_hz: float = 200.0, *, seed: int = 7) -> None:
        import lumbar_gui

        self.rate_hz = float(rate_hz)
        env = dict(os.environ)
        # the child imports this package from where the parent found it (installed or not)
        root = str(Path(lumbar_gui.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lumbar_gui.demo_process", "--rate-hz", f"{float(rate_hz):g}", "--seed", str(int(seed))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, bufsize=1)
        self._finalizer = weakref.finalize(self, _end_process, self.proc)
        self._write_lock = threading.Lock()
        self._ready = threading.Event()
        self._error: str | None = None
        self.port: int | None = None
        self.sensors: list[DemoSensorInfo] = []
        self._state: dict[str, Any] = {"movement": "quiet-standing", "started": 0, "last_error": None, "connected": []}
        self._performs = 0  # perform requests sent (the child numbers them the same way)
        self.central: Any = None  # HciCentral once connected
        # the reader thread holds only a weak reference: dropping the object ends the process (finalizer)
        threading.Thread(target=_read_child, args=(weakref.ref(self), self.proc.stdout), name="demo-sensors-reader",
                         daemon=True).start()

    # -- life cycle ---------------------------------------------------------------------------------
    _prestarted: DemoSensors | None = None

    @classmethod
    def prestart(cls, rate_hz: float = 200.0) -> None:
        """Start the process now, before the application imports and builds its window (``lumbar gui
        --emulated`` calls this first): it boots meanwhile, and :meth:`prestarted` hands it over."""
        if cls._prestarted is None:
            cls._prestarted = cls(rate_hz)

    @classmethod
    def prestarted(cls, rate_hz: float) -> DemoSensors | None:
        """The process :meth:`prestart` started for ``rate_hz`` (once), if any and still running."""
        demo = cls._prestarted
        if demo is None or demo.rate_hz != float(rate_hz) or not demo.running:
            return None
        cls._prestarted = None
        return demo

    async def hci_spec(self, timeout_s: float = START_TIMEOUT_S) -> str:
        """Wait until the sensors advertise; the HCI transport of the central controller on their radio
        (Bumble's syntax, for :meth:`HciCentral.open <lumbar.acquisition.virtual_radio.HciCentral.open>`)."""
        ok = await asyncio.get_running_loop().run_in_executor(None, self._ready.wait, timeout_s)
        if self._error is not None or not ok or self.port is None:
            raise DemoProcessError(self._error or f"the demo sensors did not start within {timeout_s:g} s")
        return f"tcp-client:127.0.0.1:{self.port}"

    async def connect(self, timeout_s: float = START_TIMEOUT_S) -> Any:
        """Wait until the sensors advertise, then connect a central to their radio (on the running loop)."""
        from lumbar.acquisition.virtual_radio import HciCentral

        if self.central is None:
            self.central = await HciCentral.open(await self.hci_spec(timeout_s))
        return self.central

    async def stop(self) -> None:
        """Disconnect the central and end the process."""
        central, self.central = self.central, None
        if central is not None:
            await central.stop()
        await asyncio.get_running_loop().run_in_executor(None, self._finalizer)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    # -- the demo patient ---------------------------------------------------------------------------
    def perform(self, movement: str, duration_s: float, **kwargs: Any) -> int:
        """The patient performs ``movement`` for ``duration_s`` s (see :meth:`DemoPatient.perform`); returns the
        request's number, which :attr:`started` reaches when the movement begins."""
        with self._write_lock:
            self._performs += 1
            job = self._performs
            self._state["last_error"] = None  # until the child says otherwise
        self._send({"op": "perform", "movement": movement, "duration_s": float(duration_s), "kwargs": kwargs})
        return job

    def go(self) -> None:
        """A held movement goes on (see :meth:`DemoPatient.go`)."""
        self._send({"op": "go"})

    def tap(self, placement: str) -> None:
        """Tap the sensor at ``placement``."""
        self._send({"op": "tap", "placement": placement})

    def turn(self, placement: str, turned: bool = True) -> None:
        """The sensor at ``placement`` is worn back to front (see :meth:`DemoPatient.turn`)."""
        self._send({"op": "turn", "placement": placement, "turned": bool(turned)})

    def drop_link(self, address: str, away_s: float) -> None:
        """The sensor's link drops on the virtual radio; it returns after ``away_s`` s."""
        self._send({"op": "drop", "address": address, "away_s": float(away_s)})

    @property
    def current_movement(self) -> str:
        """What the patient is doing (as last reported, ≤ 50 ms old)."""
        return str(self._state["movement"])

    @property
    def started(self) -> int:
        """Number of the latest :meth:`perform` request whose movement has begun (as last reported, ≤ 50 ms old)."""
        return int(self._state.get("started", 0))

    @property
    def last_error(self) -> str | None:
        """Why the last :meth:`perform` request could not be simulated (None if it could)."""
        return self._state["last_error"]

    def sensor(self, address: str) -> DemoSensorInfo:
        """The emulated sensor with Bluetooth ``address``."""
        for s in self.sensors:
            if s.address.upper() == address.upper():
                return s
        raise ValueError(f"no emulated sensor has address {address!r}")

    def is_connected(self, address: str) -> bool:
        """Whether the sensor with ``address`` has a link (as last reported, ≤ 50 ms old)."""
        return address.upper() in {a.upper() for a in self._state["connected"]}

    # -- internals ----------------------------------------------------------------------------------
    def _take(self, line: str) -> None:
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            return  # not ours (a library printing): ignore
        if "ready" in msg:
            self.sensors = [DemoSensorInfo(**s) for s in msg["ready"]["sensors"]]
            self.port = int(msg["ready"]["port"])
            self._ready.set()
        elif "error" in msg:
            self._error = f"the demo sensors could not start: {msg['error']}"
            self._ready.set()
        elif "state" in msg:
            with self._write_lock:
                self._state = msg["state"]

    def _send(self, msg: dict[str, Any]) -> None:
        line = json.dumps(msg) + "\n"
        with self._write_lock:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(line)
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError, OSError) as e:
                raise DemoProcessError("the demo sensors have stopped") from e


def _read_child(ref: "weakref.ReferenceType[DemoSensors]", out: Any) -> None:
    """Take the child's messages (its stdout) into the :class:`DemoSensors` while it exists."""
    with out:  # closed at the end of the child's output
        for line in out:
            demo = ref()
            if demo is None:
                return
            demo._take(line)
            del demo
    demo = ref()
    if demo is not None and not demo._ready.is_set():
        demo._error = f"the demo sensors' process ended (exit code {demo.proc.wait()})"
        demo._ready.set()


def _end_process(proc: subprocess.Popen[str]) -> None:
    """Close the child's input (it stops by itself); kill it if it has not ended within 3 s."""
    try:
        if proc.stdin is not None:
            proc.stdin.close()
    except OSError:
        pass
    try:
        proc.wait(3.0)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ----------------------------------------------------------------------------------------------------
# the child's side

def _emit(msg: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


async def _serve(rate_hz: float, seed: int) -> None:
    from lumbar_gui.sources import DEMO_SENSORS, DemoPatient

    loop = asyncio.get_running_loop()
    patient = DemoPatient(tuple(p for _, p, _, _ in DEMO_SENSORS), rate_hz, seed=seed)
    # The patient's quiet standing (≈ 1 s, mostly scipy's imports) is simulated from the start, while the
    # radio and the sensors are set up, advertise and get connected; their first samples wait for it.
    # (a daemon thread: closing the application's end during it must not wait for it)

    def prepare() -> None:
        try:
            patient.prepare()
        except Exception as e:  # noqa: BLE001 - reported as the patient's error; the sensors stay silent
            patient.last_error = f"the demo patient could not be simulated: {type(e).__name__}: {e}"

    threading.Thread(target=prepare, name="demo-prepare", daemon=True).start()
    from lumbar.acquisition.emulated import EmulatedSensor, Emulator

    # 30 ms connection interval: the Linux Bluetooth stack's default range is 30–50 ms; the sensors send what they
    # measured at each connection event. No per-sample log: nothing checks it, and the demo runs for hours.
    sensors = [EmulatedSensor(fam, pl, name=name, battery_pct=bat, seed=i, conn_interval_ms=30.0, jitter_ms=5.0,
                              burst_prob=0.0, log_samples=False)
               for i, (fam, pl, name, bat) in enumerate(DEMO_SENSORS)]
    emu = Emulator(sensors, patient=patient, seed=seed)
    await emu.start()
    assert emu.radio is not None
    # notifications reach the application in groups, ≤ 10 ms after the first: its reader wakes ≈ 3 times
    # less often than once per notification (four sensors: ≈ 330 notifications/s)
    port = await emu.radio.serve_hci(coalesce_s=COALESCE_S)
    _emit({"ready": {"port": port, "sensors": [
        {"address": emu.address(s), "name": s.name, "family": s.family, "placement": s.placement,
         "battery_pct": int(s.battery_pct)} for s in sensors]}})

    done = asyncio.Event()
    drops: set[asyncio.Task[None]] = set()
    last: dict[str, Any] = {}  # the state last reported

    def handle(line: str | None) -> None:
        if line is None:  # the application closed our input
            done.set()
            return
        msg = json.loads(line)
        op = msg.get("op")
        if op == "perform":
            patient.perform(msg["movement"], float(msg["duration_s"]), **msg.get("kwargs", {}))
            last.clear()  # report the outcome even if it equals the last one (the same error again)
        elif op == "go":
            patient.go()
        elif op == "tap":
            patient.tap(msg["placement"])
        elif op == "turn":
            patient.turn(msg["placement"], bool(msg.get("turned", True)))
        elif op == "drop":
            task = loop.create_task(emu.drop_link(emu.sensor(msg["address"]), float(msg["away_s"])))
            drops.add(task)
            task.add_done_callback(drops.discard)

    def read_input() -> None:
        for line in sys.stdin:
            if line.strip():
                loop.call_soon_threadsafe(handle, line)
        loop.call_soon_threadsafe(handle, None)

    threading.Thread(target=read_input, name="demo-input", daemon=True).start()
    try:
        while not done.is_set():
            state = {"movement": patient.current_movement, "started": patient.started,
                     "last_error": patient.last_error,
                     "connected": [emu.address(s) for s in sensors if emu.peripheral(s).is_connected]}
            if state != last:
                _emit({"state": state})
                last.clear()
                last.update(state)
            try:
                await asyncio.wait_for(done.wait(), STATE_PERIOD_S)
            except asyncio.TimeoutError:
                pass
    finally:
        for t in drops:
            t.cancel()
        await emu.stop()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lumbar_gui.demo_process",
                                 description="Emulated demo sensors served over HCI (started by the application).")
    ap.add_argument("--rate-hz", type=float, default=200.0)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(list(argv) if argv is not None else None)
    # The loop thread answers every HCI command and ATT request of the application's central; a thread
    # simulating the patient must not hold the interpreter for the default 5 ms each time it answers.
    sys.setswitchinterval(0.0005)
    try:
        asyncio.run(_serve(args.rate_hz, args.seed))
    except Exception as e:  # said to the parent, which shows it
        _emit({"error": f"{type(e).__name__}: {e}"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
