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
