"""The live processing (lumbar_gui.processing): where it runs for sources that are not the BLE reader, and
a calibration asked for while the sensors are still connecting."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from lumbar.acquisition.bus import LiveBus
from lumbar.types import ImuBatch

RATE = 100.0


def _standing(duration_s: float) -> dict[str, ImuBatch]:
    """The emulated patient standing quietly, sensors on L1 and S1 (sample times from 0 s)."""
    from lumbar.simulate import simulate

    return dict(simulate("quiet-standing", duration_s=duration_s, seed=4, sensors=("lumbar", "sacrum"),
                         rate_hz=RATE).batches)


def _stream(bus: LiveBus, data: dict[str, ImuBatch], starts_s: dict[str, float], duration_s: float) -> None:
    """Push the samples in real time, 10 at a time; a sensor sends nothing before its start time."""
    t0 = time.monotonic()
    sent = {sid: int(round(s * RATE)) for sid, s in starts_s.items()}
    while (now := time.monotonic() - t0) < duration_s:
        for sid in starts_s:
            while sent[sid] + 10 <= int(now * RATE):
                bus.push(data[sid][sent[sid]:sent[sid] + 10])
                sent[sid] += 10
        time.sleep(0.01)


def test_a_calibration_asked_for_as_the_sensors_connect_gives_each_the_whole_window():
    from lumbar_gui.processing import LiveProcessor, preload

    data = _standing(6.0)
    preload()  # loaded once per process: the window then opens as soon as both sensors send
    bus = LiveBus(capacity_s=10.0)
    for sid in ("lumbar", "sacrum"):
        bus.add_sensor(sid, RATE)
    proc = LiveProcessor(bus, {"lumbar": RATE, "sacrum": RATE})
    try:
        proc.calibrate(2.5)  # before any sample; the sacral sensor starts 0.6 s after the lumbar one
        feeder = threading.Thread(target=_stream, args=(bus, data, {"lumbar": 0.0, "sacrum": 0.6}, 4.5))
        feeder.start()
        feeder.join()
        deadline = time.monotonic() + 5.0
        while proc.out.empty() and time.monotonic() < deadline:
            time.sleep(0.02)
        kind, rep = proc.out.get_nowait()
        assert kind == "calibration"
        assert rep.ok, rep.message
        assert rep.t_start >= 0.6  # after the later sensor's first sample
        assert rep.t_end - rep.t_start == pytest.approx(2.5)
        for sid in ("lumbar", "sacrum"):  # the whole window each (at 100 Hz)
            assert rep.per_sensor[sid]["samples"] >= 249, (sid, rep.per_sensor[sid])
        assert proc.calibrated and not proc.provisional
    finally:
        proc.stop()


def test_a_source_that_is_not_the_ble_reader_is_processed_in_the_application(qtbot):
    """A replay has no ``live_processor``: the engine runs a LiveProcessor thread beside it."""
    from lumbar.acquisition.replay import ReplaySource
    from lumbar_gui.engine import Engine
    from lumbar_gui.processing import COL, LiveProcessor

    data = _standing(4.0)
    eng = Engine()
    try:
        eng.connect_source(ReplaySource(data, {sid: RATE for sid in data}, speed=1.0))
        assert type(eng.processor) is LiveProcessor
        qtbot.waitUntil(lambda: eng.processor.series.total > 100, timeout=15000)
        t, x = eng.processor.series.latest(100)
        assert np.all(np.diff(t) > 0) and t[-1] <= 4.0
        for name in ("lumbar_flexion", "lumbar_lateral", "pelvic_tilt", "trunk_flexion"):
            col = np.degrees(x[:, COL[name]])
            assert np.all(np.isfinite(col)) and np.max(np.abs(col)) < 3.0, name  # standing: the provisional zero
    finally:
        eng.shutdown()
