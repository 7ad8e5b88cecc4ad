"""The BLE reader in its own process: samples cross in the application's bus time, and a reader process
that dies is reported, not hidden."""
from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest


async def _until(cond, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def test_reader_process_shares_the_monotonic_clock():
    """Sample times are stamped in the child against the parent's bus origin: both must read one clock."""
    from lumbar_gui.reader_process import ReaderProcess

    reader = ReaderProcess()
    try:
        assert reader.call("ping").result(timeout=30) > 0  # started (imports done)
        for _ in range(5):
            before = time.monotonic()
            t_child = reader.call("ping").result(timeout=5)
            after = time.monotonic()
            assert before <= t_child <= after
        with pytest.raises(RuntimeError, match="unknown request"):  # the child's errors come back as errors
            reader.call("no-such-request").result(timeout=5)
        assert reader.call("ping").result(timeout=5) > 0  # and it goes on
    finally:
        reader.close()
    assert not reader.proc.is_alive()


def test_emulated_sensor_streams_through_the_reader_process_and_its_death_is_reported():
    from lumbar.acquisition.bus import LiveBus
    from lumbar.acquisition.reader import SensorTarget
    from lumbar_gui.reader_process import ReaderProcessError
    from lumbar_gui.sources import BleLink, BleSource

    async def main() -> None:
        link = BleLink(True)
        try:
            entries = await link.scan()
            e = next(e for e in entries if e.family == "lumbar_ref")
            src = BleSource(link, [SensorTarget("lumbar", address=e.address, family=e.family, rate_hz=200.0)])
            bus = LiveBus(capacity_s=10.0)
            src.attach(bus)
            task = asyncio.create_task(src.run(bus))
            ring = bus.rings["lumbar"]
            await _until(lambda: ring.total > 400, 20.0, "samples from the reader's process")
            b = ring.latest(400)
            assert np.all(np.diff(b.seq) == 1)  # nothing lost on the way between the processes
            assert np.all(np.diff(b.time_s) >= 0)
            # bus time: seconds since the source was made, in this process's clock
            assert abs(b.time_s[-1] - (time.monotonic() - src.origin_s)) < 0.5
            assert abs(np.median(np.linalg.norm(b.acc, axis=1)) - 9.81) < 0.5  # standing still
            assert bus.status["lumbar"].connected

            link.reader.proc.kill()  # the reader's process dies
            await _until(lambda: not bus.status["lumbar"].connected, 10.0, "the sensor shown disconnected")
            assert "stopped unexpectedly" in bus.status["lumbar"].message
            n = ring.total
            await asyncio.sleep(0.3)
            assert ring.total == n
            with pytest.raises(ReaderProcessError):
                await link.reader.acall("ping", timeout_s=5.0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)  # ends without waiting for the dead process
        finally:
            await link.stop()

    asyncio.run(asyncio.wait_for(main(), 90.0))


def test_live_processing_runs_in_the_reader_process():
    """Two emulated sensors processed beside their readers: derived rows, the filters' readiness and a
    calibration (asked before the source started) come back to the application's RemoteProcessor."""
    from lumbar.acquisition.bus import LiveBus
    from lumbar.acquisition.reader import SensorTarget
    from lumbar_gui.processing import COL
    from lumbar_gui.sources import BleLink, BleSource

    async def main() -> None:
        link = BleLink(True)
        try:
            entries = await link.scan()
            targets = [SensorTarget(p, address=e.address, family=e.family, rate_hz=100.0)
                       for e in entries for p in ("lumbar", "sacrum") if link.placement_of(e.address) == p]
            assert sorted(t.sensor_id for t in targets) == ["lumbar", "sacrum"]
            src = BleSource(link, targets)
            proc = src.live_processor({t.sensor_id: 100.0 for t in targets})
            proc.calibrate(2.0)  # before the source runs: sent once it does
            bus = LiveBus(capacity_s=10.0)
            src.attach(bus)
            task = asyncio.create_task(src.run(bus))
            await _until(lambda: proc.out.qsize() > 0, 30.0, "the calibration's outcome")
            kind, rep = proc.out.get_nowait()
            assert kind == "calibration", (kind, rep)
            assert rep.ok, rep.message
            assert set(rep.per_sensor) == {"lumbar", "sacrum"}
            # asked for as the sensors connected, each still got the whole 2 s window (at 100 Hz)
            assert all(v["samples"] >= 195 for v in rep.per_sensor.values()), rep.per_sensor
            first = [float(bus.rings[sid].latest(bus.rings[sid].total).time_s[0]) for sid in ("lumbar", "sacrum")]
            assert rep.t_start >= max(first)
            assert proc.ready.is_set() and proc.calibrated and not proc.provisional
            n0 = proc.series.total
            await _until(lambda: proc.series.total > n0 + 100, 10.0, "derived rows after calibration")
            t, x = proc.series.latest(100)
            # the derived rows are at the samples' bus times, and the standing demo patient is upright
            ring_t = bus.rings["lumbar"].latest(1).time_s[-1]
            assert 0 <= ring_t - t[-1] < 1.0
            assert np.all(np.diff(t) > 0)
            for name in ("lumbar_flexion", "lumbar_lateral", "pelvic_tilt", "trunk_flexion"):
                col = x[:, COL[name]]
                assert np.all(np.isfinite(col)), name
                assert np.max(np.abs(np.degrees(col))) < 5.0, name
            assert proc.missed == 0
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        finally:
            await link.stop()

    asyncio.run(asyncio.wait_for(main(), 90.0))
