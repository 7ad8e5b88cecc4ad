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


async def _lumbar_and_sacrum(link):
    """Targets (100 Hz) for the emulated sensors the demo patient wears at L1 and S1, found by a scan."""
    from lumbar.acquisition.reader import SensorTarget

    entries = await link.scan()
    targets = [SensorTarget(p, address=e.address, family=e.family, rate_hz=100.0)
               for e in entries for p in ("lumbar", "sacrum") if link.placement_of(e.address) == p]
    assert sorted(t.sensor_id for t in targets) == ["lumbar", "sacrum"]
    return targets


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


def test_reader_process_closes_cleanly_while_other_threads_keep_the_interpreter_busy(caplog):
    """When the child ends, close() and the receiving thread both see it at once. Both used to wait for (reap)
    it, and with other threads busy the loser took the ended process for still running: "did not stop
    within 3 s", a kill, "still there 15 s after it was killed" — all at once (seen in CI; 1 in 4 closes
    with two busy threads). Here: no warning, the process gone, and the end reported as a close."""
    import logging
    import threading

    from lumbar_gui.reader_process import ReaderProcess

    stop = threading.Event()

    def busy() -> None:  # the application's other threads (plots, processing) hold the interpreter lock
        while not stop.is_set():
            sum(range(1000))

    threads = [threading.Thread(target=busy, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(6):
            reader = ReaderProcess()
            assert reader.call("ping").result(timeout=60) > 0
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="lumbar_gui.reader_process"):
                reader.close()
            assert [r.getMessage() for r in caplog.records] == []
            assert not reader.proc.is_alive() and reader.proc.exitcode == 0
            assert reader.error == "the Bluetooth reader was closed" and not reader.running
    finally:
        stop.set()
        for t in threads:
            t.join()


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
    from lumbar_gui.processing import COL
    from lumbar_gui.sources import BleLink, BleSource

    async def main() -> None:
        link = BleLink(True)
        try:
            targets = await _lumbar_and_sacrum(link)
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
            # (the rows' times are the lumbar sensor's sample times; how far behind they run depends on the load
            # of the machine, which a test does not time). The rows and the samples come to this process by two
            # routes: on a loaded machine the rows can arrive first, so the samples are waited for.
            ring = bus.rings["lumbar"]
            await _until(lambda: ring.total and ring.latest(1).time_s[-1] >= t[-1], 10.0, "the rows' samples")
            lumbar_t = ring.latest(ring.total).time_s
            assert np.isin(t, lumbar_t).all()
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
        # the process ended by itself once its work was done (exit code 0), not killed after the 3 s wait
        assert link.reader.proc.exitcode == 0

    asyncio.run(asyncio.wait_for(main(), 90.0))


def test_recording_is_made_in_the_reader_process(tmp_path):
    """The session file is written beside the readers (no HDF5 work in the application's process): every
    sample the application received while recording is in it, at the same times, with the markers sent;
    a file that cannot be created, and the process dying mid-recording, come back as errors in words."""
    from lumbar.acquisition.bus import LiveBus
    from lumbar.storage import read_session
    from lumbar.types import SessionInfo
    from lumbar_gui.sources import BleLink, BleSource, sensor_info

    async def main() -> None:
        link = BleLink(True)
        try:
            targets = await _lumbar_and_sacrum(link)
            src = BleSource(link, targets)
            bus = LiveBus(capacity_s=30.0)
            src.attach(bus)
            task = asyncio.create_task(src.run(bus))
            await _until(lambda: all(r.total > 50 for r in bus.rings.values()), 30.0, "both sensors streaming")
            sensors = [sensor_info(t) for t in targets]

            rec = src.recorder(tmp_path / "s.h5", SessionInfo("RP01", protocol="quiet-standing"), sensors)
            await _until(lambda: rec.t0 is not None, 10.0, "the first samples recorded")
            t_mark = float(bus.rings["lumbar"].latest(1).time_s[-1])
            rec.mark(t_mark, "trial_start", "eyes open")
            await asyncio.sleep(2.0)
            assert rec.duration_s > 1.5 and not rec.saved.is_set()
            rec.finish()
            await _until(rec.saved.is_set, 20.0, "the file saved")
            assert rec.error is None and rec.missed == 0
            s = read_session(rec.path)
            assert s.complete and s.info.subject_code == "RP01"
            for sid in ("lumbar", "sacrum"):
                got = s.data[sid]
                assert len(got) == rec.written[sid] > 150
                assert len(got) == rec.cursors[sid] - rec.start_cursors[sid]
                # the same samples the application received, at the same bus times (file time + t0)
                ring = bus.rings[sid]
                here = ring.latest(ring.total)
                i = np.searchsorted(here.seq, got.seq)
                np.testing.assert_array_equal(here.seq[i], got.seq)
                np.testing.assert_allclose(here.time_s[i], got.time_s + rec.t0, atol=1e-9)
                # (the file keeps float32: 0.5 µm/s² steps)
                np.testing.assert_array_equal(here.acc[i].astype(np.float32), got.acc.astype(np.float32))
                assert np.all(np.diff(got.seq) == 1)  # nothing missing in between
            [ev] = [e for e in s.events if e.label == "trial_start"]
            assert ev.note == "eyes open" and abs(ev.time_s - (t_mark - rec.t0)) < 1e-6

            # a file that cannot be created: said in words, and the recording ends
            taken = src.recorder(tmp_path / "s.h5", SessionInfo("RP01"), sensors)
            await _until(taken.saved.is_set, 10.0, "the failure reported")
            assert taken.error.startswith(f"the session file {tmp_path / 's.h5'} could not be created: ")
            assert "Errno" not in taken.error and read_session(rec.path).complete  # the first file untouched

            # the reader's process dies mid-recording: the recording ends with the reason, and its file keeps
            # what was flushed
            crash = src.recorder(tmp_path / "crash.h5", SessionInfo("RP01"), sensors)
            await _until(lambda: sum(crash.written.values()) > 100, 10.0, "samples written")
            link.reader.proc.kill()
            await _until(crash.saved.is_set, 10.0, "the recording ended")
            assert "stopped unexpectedly" in crash.error and "keeps what was written" in crash.error
            c = read_session(tmp_path / "crash.h5")
            assert not c.complete and sum(len(b) for b in c.data.values()) > 0
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        finally:
            await link.stop()

    asyncio.run(asyncio.wait_for(main(), 120.0))
