"""The demo sensors in a process of their own (:mod:`lumbar_gui.demo_process`), seen from the application.

No Qt here: each test runs its own asyncio loop, starts the real child process, connects an
:class:`~lumbar.acquisition.virtual_radio.HciCentral` to the radio it serves and reads the sensors
through bleak and the reader, as the application does.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from bleak import BleakClient, BleakScanner

from lumbar.acquisition.reader import ReaderOptions, SensorReader, SensorTarget, discover
from lumbar.types import Event, ImuBatch
from lumbar_gui.demo_process import DemoSensors
from lumbar_gui.sources import DEMO_SENSORS

GRAVITY = 9.81


async def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll ``condition`` until it holds; return how long that took, fail after ``timeout_s``."""
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > timeout_s:
            pytest.fail(f"{what}: not within {timeout_s:g} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - t0


async def stop_demo(demo: DemoSensors) -> None:
    """``demo.stop()``, bounded; the child must have ended by itself (exit code 0)."""
    await asyncio.wait_for(demo.stop(), 15.0)
    assert not demo.running
    assert demo.proc.returncode == 0


async def clean_up(demo: DemoSensors) -> None:
    """Stop a demo left running by a failed test (bounded), then make sure its process is gone."""
    if demo.central is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(demo.stop(), 15.0)
    end_process(demo.proc)


def end_process(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """Last-resort clean-up: kill the process if it is still running, and reap it."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(10.0)


@dataclass
class Stream:
    """What a reader connected to one demo sensor has delivered."""

    reader: SensorReader
    task: asyncio.Task[None] | None = None  # the reader's run()
    batches: list[ImuBatch] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    @property
    def samples(self) -> int:
        return sum(len(b.acc) for b in self.batches)

    def acc(self, start: int = 0) -> np.ndarray:
        """Accelerometer samples from sample ``start`` on, (N, 3) m/s²."""
        return np.concatenate([b.acc for b in self.batches])[start:]

    def labels(self) -> list[str]:
        return [e.label for e in self.events]


@contextlib.asynccontextmanager
async def streaming_first_sensor() -> AsyncIterator[tuple[DemoSensors, Stream]]:
    """The demo process, a central on its radio and a reader streaming the first sensor (a lumbar_ref)."""
    demo = DemoSensors(200.0, seed=7)
    try:
        central = await demo.connect()
        first = demo.sensors[0]
        assert first.family == "lumbar_ref"
        stream: Stream
        reader = SensorReader(
            SensorTarget(first.placement, address=first.address, rate_hz=200.0),
            lambda b: stream.batches.append(b), on_event=lambda e: stream.events.append(e),
            scanner_backend=central.scanner_backend, client_backend=central.client_backend,
            options=ReaderOptions(scan_timeout_s=5.0, connect_timeout_s=10.0))
        stream = Stream(reader)
        task = stream.task = asyncio.get_running_loop().create_task(reader.run(), name="demo reader")
        try:
            await wait_for(lambda: stream.samples >= 200 or task.done(), 20.0, "samples from the first sensor")
            assert not task.done(), f"the reader ended: {task.exception() if not task.cancelled() else 'cancelled'}"
            yield demo, stream
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10.0)
        await stop_demo(demo)
    finally:
        if demo.central is not None:  # a failure above: stop anyway, then make sure
            with contextlib.suppress(Exception):
                await asyncio.wait_for(demo.stop(), 15.0)
        end_process(demo.proc)


def test_the_child_advertises_the_demo_sensors_and_stops_cleanly() -> None:
    """The child starts, ``connect()`` gives a running central, and a scan through it lists exactly
    the six demo sensors: the names, families (recognised from the advertisements by the reader's
    ``discover``), placements and batteries that ``DEMO_SENSORS`` says, at the addresses
    ``demo.sensors`` reports. ``stop()`` then ends the child with exit code 0."""

    async def main() -> None:
        demo = DemoSensors(200.0, seed=7)
        try:
            assert demo.running
            central = await demo.connect()
            assert central.is_running
            assert await demo.connect() is central  # connect() twice: the same central

            expected = {name: (family, placement, battery) for family, placement, name, battery in DEMO_SENSORS}
            assert {s.name: (s.family, s.placement, s.battery_pct) for s in demo.sensors} == expected
            assert len({s.address for s in demo.sensors}) == len(DEMO_SENSORS) == 6

            found = await discover(2.0, backend=central.scanner_backend, all_devices=True)
            assert {(d.name, d.address, d.family) for d in found} == {
                (s.name, s.address, s.family) for s in demo.sensors}

            seen = await BleakScanner.discover(1.0, backend=central.scanner_backend, return_adv=True)
            assert sorted(d.address for d, _ in seen.values()) == sorted(s.address for s in demo.sensors)
            assert {d.address: adv.local_name for d, adv in seen.values()} == {s.address: s.name for s in demo.sensors}
            for s in demo.sensors:
                assert demo.sensor(s.address.lower()) == s
                assert not demo.is_connected(s.address)
            assert demo.current_movement == "quiet-standing"
            assert demo.last_error is None

            await stop_demo(demo)
            assert not central.is_running
        finally:
            await clean_up(demo)

    asyncio.run(main())


def test_the_patient_performs_and_taps_while_a_sensor_streams() -> None:
    """Through the reader, the first sensor streams the standing patient (specific force ≈ g, steady);
    ``perform("flexion", ...)`` makes ``current_movement`` "flexion" within a few seconds (and ``started`` the
    request's number); a tap shows
    as a jolt of several g on that sensor; an impossible request sets ``last_error`` and leaves the
    patient doing what it did."""

    async def main() -> None:
        async with streaming_first_sensor() as (demo, stream):
            first = demo.sensors[0]
            assert demo.is_connected(first.address)
            assert stream.labels()[:1] == ["connected"]
            norm = np.linalg.norm(stream.acc(), axis=1)
            assert abs(np.median(norm) - GRAVITY) < 0.6, np.median(norm)  # gravity, within the sensor errors
            assert np.ptp(norm) < 0.5  # standing quietly
            assert demo.current_movement == "quiet-standing"

            assert demo.started == 0
            job = demo.perform("flexion", 24.0, reps=2)
            await wait_for(lambda: demo.current_movement == "flexion", 5.0, "the patient starting flexion")
            assert demo.last_error is None
            assert job == demo.started == 1  # the request's number: its movement has begun

            # flexion starts with 5 s of standing still: a tap stands out
            before = stream.samples
            demo.tap(first.placement)
            await wait_for(lambda: stream.samples >= before + 200, 10.0, "samples after the tap")
            tapped = np.linalg.norm(stream.acc(before), axis=1)
            assert tapped.max() > GRAVITY + 10.0, tapped.max()  # ≈ 3 g at its start

            demo.perform("no-such-movement", 5.0)
            await wait_for(lambda: bool(demo.last_error), 5.0, "last_error after an impossible request")
            assert "no-such-movement" in str(demo.last_error)
            assert demo.current_movement == "flexion" and demo.started == 1  # request 2 never began

    asyncio.run(main())


def test_a_dropped_link_comes_back_through_the_reader() -> None:
    """``drop_link(address, 1.0)`` on the streaming sensor: ``is_connected`` turns False, then True
    again once the reader has reconnected by itself, and samples flow again (with the reader's
    disconnect and reconnect events)."""

    async def main() -> None:
        async with streaming_first_sensor() as (demo, stream):
            address = demo.sensors[0].address
            assert demo.is_connected(address)
            sent = time.monotonic()
            demo.drop_link(address, 1.0)
            await wait_for(lambda: not demo.is_connected(address), 5.0, "the link dropping")
            await wait_for(lambda: "disconnect" in stream.labels(), 5.0, "the reader's disconnect event")
            await wait_for(lambda: demo.is_connected(address), 10.0, "the reader reconnecting")
            assert time.monotonic() - sent >= 1.0  # the sensor was away for a second
            before = stream.samples
            await wait_for(lambda: stream.samples >= before + 100, 10.0, "samples after the reconnection")
            assert "reconnect" in stream.labels()
            norm = np.linalg.norm(stream.acc(before), axis=1)
            assert abs(np.median(norm) - GRAVITY) < 0.6

    asyncio.run(main())


def test_closing_the_childs_input_ends_it_even_with_a_central_connected() -> None:
    """The application closes its end of the pipe (as when it exits) while a central is connected to
    the child's radio: the child ends by itself within 5 s, with exit code 0, and the central's
    link is reported lost."""

    async def main() -> None:
        demo = DemoSensors(200.0, seed=7)
        try:
            central = await demo.connect()
            lost = asyncio.Event()
            client = BleakClient(demo.sensors[1].address, lambda _c: lost.set(), backend=central.client_backend)
            await asyncio.wait_for(client.connect(), 15.0)
            await wait_for(lambda: demo.is_connected(demo.sensors[1].address), 5.0, "the child seeing the link")

            assert demo.proc.stdin is not None
            demo.proc.stdin.close()
            t0 = time.monotonic()
            rc = await asyncio.get_running_loop().run_in_executor(None, demo.proc.wait, 5.0)
            assert rc == 0 and time.monotonic() - t0 < 5.0
            assert not demo.running
            await asyncio.wait_for(lost.wait(), 5.0)
            assert not client.is_connected
            await asyncio.wait_for(demo.stop(), 5.0)  # nothing left to stop: returns at once
            assert demo.central is None
        finally:
            await clean_up(demo)

    asyncio.run(main())


def test_the_reader_keeps_running_when_the_demo_process_ends() -> None:
    """The child ends (its input closed) while the reader streams one of its sensors: the reader
    does not end with an exception but keeps trying, saying the sensor is not connected, and still
    stops when cancelled."""

    async def main() -> None:
        async with streaming_first_sensor() as (demo, stream):
            assert demo.proc.stdin is not None
            demo.proc.stdin.close()
            rc = await asyncio.get_running_loop().run_in_executor(None, demo.proc.wait, 5.0)
            assert rc == 0
            await wait_for(lambda: not stream.reader.status.connected, 5.0, "the reader seeing the link lost")
            assert "disconnect" in stream.labels()
            samples = stream.samples
            # past one scan timeout of the reader (5 s): it keeps going
            for _ in range(35):
                await asyncio.sleep(0.2)
                assert stream.task is not None
                assert not stream.task.done(), (
                    f"the reader ended: {stream.task.exception() if not stream.task.cancelled() else 'cancelled'}")
            assert not stream.reader.status.connected
            assert stream.samples == samples

    asyncio.run(main())


def test_the_finalizer_ends_the_child() -> None:
    """The object's finalizer (what runs at interpreter exit) closes the child's input and returns
    only when the child has ended: by itself, or killed after the finalizer's 3 s grace (which can
    happen here on a loaded machine: the child is still preparing the patient and reads its input
    only afterwards). Either way nothing is left running within 5 s."""
    demo = DemoSensors(200.0, seed=7)
    try:
        assert demo._ready.wait(30.0) and demo.port is not None
        t0 = time.monotonic()
        demo._finalizer()
        assert time.monotonic() - t0 < 5.0
        assert demo.proc.returncode in (0, -signal.SIGKILL)
        assert not demo.running
        assert not demo._finalizer.alive  # runs once
    finally:
        end_process(demo.proc)


# An application that starts the demo sensors, says the child's pid and waits (until killed).
PARENT = """
import sys
from lumbar_gui.demo_process import DemoSensors
demo = DemoSensors(200.0, seed=7)
assert demo._ready.wait(30.0) and demo.port is not None, "demo did not start"
print(demo.proc.pid, flush=True)
sys.stdin.read()
"""


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie not yet reaped counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to watch an orphaned process")
def test_the_child_ends_when_the_application_dies() -> None:
    """The application is killed outright (no clean-up runs in it): the demo child sees its input
    close and ends within 5 s, leaving nothing running."""
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root / "src"), str(root / "gui")]
                                        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    app = subprocess.Popen([sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           env=env, text=True)
    child_pid = None
    try:
        assert app.stdout is not None
        line = app.stdout.readline()
        assert line.strip().isdigit(), f"the application did not start the demo: {line!r}"
        child_pid = int(line)
        assert not _gone(child_pid)
        app.kill()
        app.wait(10.0)
        t0 = time.monotonic()
        while not _gone(child_pid):
            assert time.monotonic() - t0 < 5.0, "the demo child outlived the application by 5 s"
            time.sleep(0.05)
    finally:
        end_process(app)
        for stream in (app.stdin, app.stdout):
            if stream is not None:
                stream.close()
        if child_pid is not None and not _gone(child_pid):
            os.kill(child_pid, 9)


def test_the_same_impossible_request_twice_sets_last_error_twice() -> None:
    """Each impossible request is reported: asking for the same impossible movement again sets
    ``last_error`` again (the operator must not see a failed request as accepted)."""

    async def main() -> None:
        demo = DemoSensors(200.0, seed=7)
        try:
            await demo.connect()
            for attempt, wait_s in enumerate((20.0, 3.0)):  # the first waits for the patient to be prepared
                demo.perform("no-such-movement", 5.0)
                t0 = time.monotonic()
                while not demo.last_error and time.monotonic() - t0 < wait_s:
                    await asyncio.sleep(0.02)
                assert demo.last_error, f"request {attempt + 1}: last_error is {demo.last_error!r} after {wait_s:g} s"
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(demo.stop(), 15.0)
            end_process(demo.proc)

    asyncio.run(main())


def test_the_demo_patients_quiet_standing_is_cached_exactly_and_a_bad_cache_is_rebuilt(tmp_path) -> None:
    """The idle segment is simulated once and then read from the cache: the same samples to the bit;
    a damaged cache file is simulated again and rewritten, never served."""
    from lumbar_gui.sources import DemoPatient

    placements = ("lumbar", "sacrum")
    first = DemoPatient(placements, 200.0, seed=5)
    first.prepare(tmp_path)
    files = list(tmp_path.glob("demo-idle-*.npz"))
    assert len(files) == 1
    k = np.arange(0, 4000, 7)
    again = DemoPatient(placements, 200.0, seed=5)
    again.prepare(tmp_path)
    for pl in placements:
        a0, g0 = first.samples(pl, k)
        a1, g1 = again.samples(pl, k)
        assert np.array_equal(a0, a1) and np.array_equal(g0, g1)
    # another seed is another patient: another file
    DemoPatient(placements, 200.0, seed=6).prepare(tmp_path)
    assert len(list(tmp_path.glob("demo-idle-*.npz"))) == 2
    files[0].write_bytes(b"not an npz file")
    rebuilt = DemoPatient(placements, 200.0, seed=5)
    rebuilt.prepare(tmp_path)
    a0, _ = first.samples("lumbar", k)
    a2, _ = rebuilt.samples("lumbar", k)
    assert np.array_equal(a0, a2)
    with np.load(files[0]) as z:  # rewritten whole
        assert set(z.files) == {"acc/lumbar", "acc/sacrum", "gyro/lumbar", "gyro/sacrum"}
