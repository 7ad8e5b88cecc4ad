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


def test_the_live_hip_angle_follows_the_emulated_body(qtbot):
    """Four sensors (L1, S1, both thighs) replayed through the live processing: the hip-flexion column, paired
    from the thighs' samples like the sacrum's, follows the emulated body's hip flexion through a waiter's
    bow (from the provisional zero, the first second standing), with no gap once all four stream."""
    from lumbar.acquisition.replay import ReplaySource
    from lumbar.simulate import simulate
    from lumbar_gui.engine import Engine
    from lumbar_gui.processing import COL

    sim = simulate("waiters-bow", duration_s=24.0, seed=2, rate_hz=RATE,
                   sensors=("lumbar", "sacrum", "thigh_left", "thigh_right"))
    data = dict(sim.batches)
    truth = sim.truth._arrays
    hip_true = np.degrees(truth["pelvis_tilt_rad"][:, None] - truth["thigh_inclination_rad"]).mean(axis=1)
    hip_true -= hip_true[: int(RATE)].mean()  # the provisional zero: the first second, standing
    eng = Engine()
    try:
        eng.connect_source(ReplaySource(data, {sid: RATE for sid in data}, speed=3.0))
        qtbot.waitUntil(lambda: eng.processor.series.total and eng.processor.series.latest(1)[0][-1] > 23.0,
                        timeout=30000)
        t, x = eng.processor.series.latest(eng.processor.series.total)
        hip = np.degrees(x[:, COL["hip_flexion"]])
        late = t > 2.0  # every sensor streams and is zeroed
        assert np.isfinite(hip[late]).all()
        ref = np.interp(t[late], truth["time_s"], hip_true)
        rmse = float(np.sqrt(np.mean((hip[late] - ref) ** 2)))
        assert ref.max() > 50.0 and rmse < 1.0, rmse  # the bows, and how closely they are followed (0.2° seen)
    finally:
        eng.shutdown()


def test_each_thigh_has_its_own_hip_angle_and_one_can_be_left_out(qtbot):
    """The live processing gives each thigh's hip angle a column of its own (what the trial monitor judges a
    thigh sensor worn back to front by), each following the emulated body's hip on that side; a thigh left out
    (:meth:`exclude_thighs`) no longer counts in the mean hip angle, from the next rows on, while its own column
    goes on."""
    from lumbar.acquisition.replay import ReplaySource
    from lumbar.simulate import simulate
    from lumbar_gui.engine import Engine
    from lumbar_gui.processing import COL

    sim = simulate("waiters-bow", duration_s=24.0, seed=2, rate_hz=RATE,
                   sensors=("lumbar", "sacrum", "thigh_left", "thigh_right"))
    truth = sim.truth._arrays
    eng = Engine()
    try:
        eng.connect_source(ReplaySource(dict(sim.batches), {sid: RATE for sid in sim.batches}, speed=3.0))

        def latest() -> float:
            return float(eng.processor.series.latest(1)[0][-1]) if eng.processor.series.total else 0.0

        qtbot.waitUntil(lambda: latest() > 12.0, timeout=30000)
        eng.processor.exclude_thighs(["thigh_left"])
        t_left_out = latest()
        qtbot.waitUntil(lambda: latest() > 23.0, timeout=30000)
        t, x = eng.processor.series.latest(eng.processor.series.total)
    finally:
        eng.shutdown()
    late = t > 2.0
    sides = {}
    for k, side in enumerate(("left", "right")):
        true = np.degrees(truth["pelvis_tilt_rad"] - truth["thigh_inclination_rad"][:, k])
        true -= true[: int(RATE)].mean()  # the provisional zero: the first second, standing
        sides[side] = col = np.degrees(x[:, COL[f"hip_flexion_{side}"]])
        assert np.isfinite(col[late]).all()
        ref = np.interp(t[late], truth["time_s"], true)
        assert ref.max() > 50.0 and np.sqrt(np.mean((col[late] - ref) ** 2)) < 1.0
    hip = np.degrees(x[:, COL["hip_flexion"]])
    both = late & (t < t_left_out - 0.5)
    right_only = t > t_left_out + 1.0  # the rows computed after the request
    assert both.sum() > 500 and right_only.sum() > 500
    np.testing.assert_allclose(hip[both], (sides["left"][both] + sides["right"][both]) / 2, atol=1e-9)
    np.testing.assert_allclose(hip[right_only], sides["right"][right_only], atol=1e-9)
    assert np.abs(sides["left"][right_only] - sides["right"][right_only]).max() > 0.01  # a different column
