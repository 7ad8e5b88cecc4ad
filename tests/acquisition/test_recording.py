"""Recording through bleak + Bumble from emulated sensors: completeness, gaps, reconnects, sync, faults.

Everything runs on the real stack (bleak facade → Bumble backend → virtual link → emulated
GATT peripherals) and the real reader, recorder and writer; only the clock is virtual, so long
recordings take less than real time. Truth is the emulator's own log of every sample.
"""
from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from lumbar.acquisition.emulated import EmulatedSensor, Faults
from lumbar.acquisition.reader import ReaderOptions, SensorTarget
from lumbar.sync import to_common_grid
from lumbar.types import ImuBatch, SampleFlag

from ._acq import match, record

GAP = np.uint8(SampleFlag.GAP_BEFORE)


def _check_complete_and_flagged(sensor: EmulatedSensor, batch: ImuBatch) -> dict[str, int]:
    """Every file sample is a sent sample; every sent sample up to the last one is in the file;
    every run of missing samples is flagged on the sample after it, and nothing else is."""
    log = sensor.log.arrays()
    idx, ok = match(batch, log["device_time_s"])
    assert ok.all(), f"{sensor.placement}: {np.count_nonzero(~ok)} file samples the sensor never sent"
    assert (log["fate"][idx] == "sent").all(), f"{sensor.placement}: dropped/corrupted samples in the file"
    assert np.all(np.diff(idx) > 0), f"{sensor.placement}: samples out of order or duplicated"
    sent = np.flatnonzero(log["fate"] == "sent")
    sent = sent[sent <= idx[-1]]
    missing = np.setdiff1d(sent, idx)
    assert missing.size == 0, f"{sensor.placement}: {missing.size} delivered samples not in the file"
    patient_index = log["index"][idx]
    gap_after = np.flatnonzero(np.diff(patient_index) > 1) + 1
    flagged = np.flatnonzero(batch.flags & GAP)
    np.testing.assert_array_equal(flagged, gap_after, err_msg=f"{sensor.placement}: gap flags differ from the gaps")
    lost = int(patient_index[-1] - patient_index[0] + 1 - len(idx))
    return {"gaps": len(gap_after), "lost": lost, "received": len(idx)}


# The full 10-minute run takes minutes of wall time on a shared 2-core machine (the stack, not the
# clock, is the limit): it runs with LUMBAR_ACQ_FULL=1; the default run is the same test over 2 minutes.
FULL = os.environ.get("LUMBAR_ACQ_FULL") == "1"
DURATION_S = 600.0 if FULL else 120.0


@pytest.mark.slow
def test_four_sensors_200hz_with_faults_every_sample_and_gap(tmp_path):
    sensors = [
        EmulatedSensor("lumbar_ref", "lumbar", conn_interval_ms=30, seed=1,
                       faults=Faults(drop_prob=0.003, disconnects=((DURATION_S / 3, 5.0),))),
        EmulatedSensor("polar_pmd", "sacrum", conn_interval_ms=30, seed=2, faults=Faults(corrupt_prob=0.003)),
        EmulatedSensor("lumbar_ref", "thigh_left", conn_interval_ms=30, seed=3,
                       faults=Faults(disconnects=((DURATION_S * 0.7, 3.0),))),
        EmulatedSensor("polar_pmd", "thigh_right", conn_interval_ms=30, seed=4, faults=Faults(drop_prob=0.003)),
    ]
    run = record(sensors, tmp_path / "four.h5", DURATION_S, time_scale=50.0, seed=3)
    res = run.result
    assert res.valid, res.problems
    assert res.rejected_batches == 0
    origin = run.recorder.origin_s
    for s in sensors:
        b = run.session.data[s.placement]
        st = res.status[s.placement]
        figures = _check_complete_and_flagged(s, b)
        assert b.time_s[-1] > DURATION_S - 2.0  # recorded to the end
        assert figures["received"] > 0.8 * 200 * DURATION_S  # minus connection set-up and the link drops
        log = s.log.arrays()
        idx, _ok = match(b, log["device_time_s"])
        err = b.time_s - (log["true_time_s"][idx] - origin)
        rms_ms = float(np.sqrt(np.mean(err[b.time_s > 10.0] ** 2)) * 1e3)
        print(f"{s.placement}: {figures}, sent {np.count_nonzero(log['fate'] == 'sent')}, in file {len(b)}, "
              f"corrupt {st.corrupt_packets}, reconnects {st.reconnects}, sync error {rms_ms:.3f} ms RMS after 10 s")
        assert st.lost_samples == figures["lost"]
        assert st.corrupt_packets == s.log.packets["corrupted"]
        assert st.samples == figures["received"]
    # Reconnects: within 2 s of each return (emulator clock = session time + origin).
    reconnects = {s.placement: [e.time_s + origin for e in res.events if e.label == "reconnect"
                                and e.note.startswith(s.placement + ":")] for s in sensors}
    for s in sensors:
        assert len(reconnects[s.placement]) == len(s.log.returns_s)
        for back, again in zip(s.log.returns_s, reconnects[s.placement]):
            assert 0.0 <= again - back <= 2.0, f"{s.placement}: reconnected {again - back:.2f} s after its return"
            print(f"{s.placement}: reconnected {again - back:.2f} s after its return")
        assert res.status[s.placement].reconnects == len(s.log.returns_s)
    assert sensors[1].log.packets["corrupted"] > 0 and sensors[0].log.packets["dropped"] > 0


def test_sync_within_1ms_rms_and_common_grid_aligned(tmp_path):
    sensors = [
        EmulatedSensor("lumbar_ref", "lumbar", conn_interval_ms=7.5, jitter_ms=15.0, seed=5),
        EmulatedSensor("polar_pmd", "sacrum", conn_interval_ms=30.0, jitter_ms=15.0, seed=6),
    ]
    run = record(sensors, tmp_path / "sync.h5", 40.0, time_scale=10.0, seed=11, clock_drift_ppm=200.0)
    assert run.result.valid, run.result.problems
    drifts = [run.emulator.drift_ppm(s.placement) for s in sensors]
    assert max(abs(d) for d in drifts) > 100.0, drifts  # the seed gives large drifts
    origin = run.recorder.origin_s
    truth: dict[str, ImuBatch] = {}
    for s in sensors:
        b = run.session.data[s.placement]
        idx, ok = match(b, s.log.arrays()["device_time_s"])
        assert ok.all()
        true_t = s.log.arrays()["true_time_s"][idx] - origin
        late = b.time_s > 10.0
        err = b.time_s[late] - true_t[late]
        rms_ms = float(np.sqrt(np.mean(err**2)) * 1e3)
        assert rms_ms < 1.0, f"{s.placement}: sync error {rms_ms:.3f} ms RMS after 10 s"
        print(f"{s.placement}: drift {run.emulator.drift_ppm(s.placement):+.0f} ppm, sync error {rms_ms:.3f} ms RMS, "
              f"max {np.abs(err).max() * 1e3:.2f} ms after 10 s")
        truth[s.placement] = ImuBatch(s.placement, true_t, b.device_time_s, b.acc, b.gyro, b.seq, b.flags)
    measured = {k: v[v.time_s > 10.0] for k, v in run.session.data.items()}
    t0 = max(float(v.time_s[0]) for v in measured.values()) + 0.1
    t1 = min(float(v.time_s[-1]) for v in measured.values()) - 0.1
    grid_m = to_common_grid(measured, 200.0, t0, t1)
    grid_t = to_common_grid(truth, 200.0, t0, t1)
    lags = {}
    for sid in grid_m:
        m, t = grid_m[sid].gyro, grid_t[sid].gyro
        dt = np.gradient(t, 1 / 200.0, axis=0)
        # m(t) ≈ truth(t + δ): least squares for δ over all axes
        lags[sid] = float(np.sum((m - t) * dt) / np.sum(dt * dt))
    print("common-grid lag vs truth (ms):", {k: round(v * 1e3, 3) for k, v in lags.items()})
    assert all(abs(v) < 1 / 200.0 for v in lags.values()), lags
    a, b = lags.values()
    assert abs(a - b) < 1 / 200.0, lags


def test_corrupt_payloads_counted_logged_nothing_written(tmp_path, caplog):
    sensors = [
        EmulatedSensor("lumbar_ref", "lumbar", seed=7, faults=Faults(corrupt_prob=0.05)),
        # No missed connection events on the Thingy (burst_prob=0): its connection event in flight when the
        # link closes is lost (below), and a missed event's samples go out with the next one, so with misses
        # that event could hold any multiple of an interval's samples and no bound on the loss would hold.
        EmulatedSensor("thingy52", "sacrum", conn_interval_ms=30, burst_prob=0.0, seed=8,
                       faults=Faults(corrupt_prob=0.05)),
    ]
    with caplog.at_level(logging.WARNING, logger="lumbar.acquisition.reader"):
        run = record(sensors, tmp_path / "corrupt.h5", 20.0, time_scale=10.0)
    assert run.result.valid, run.result.problems
    ref, thingy = sensors
    figures = _check_complete_and_flagged(ref, run.session.data["lumbar"])
    assert figures["gaps"] > 0
    for s in sensors:
        assert s.log.packets["corrupted"] > 5
        assert any("corrupt packet" in r.getMessage() and s.placement in r.getMessage() for r in caplog.records)
    # lumbar_ref: every corrupted packet that reached the reader is counted; the packet in flight when the
    # recording stops may be one more that never arrives (5 % of packets are corrupted). The Thingy's count
    # is checked exactly below.
    sent_bad, counted = ref.log.packets["corrupted"], run.result.status["lumbar"].corrupt_packets
    assert sent_bad - 1 <= counted <= sent_bad, ("lumbar", sent_bad, counted)
    # Thingy:52 has no clock or counter: what it sent is in the file, corrupted ones are not,
    # and each one left a flagged gap.
    tb = run.session.data["sacrum"]
    log = thingy.log.arrays()
    fate = log["fate"]
    # The Thingy has no stop command: the reader ends it by closing the link, and the notifications of
    # the connection event in flight at that moment can be lost, as on a real link (the emulator logs them
    # as sent: it handed them to the link before it learned that the link was gone). The Thingy sends one
    # notification per sample, so that event may hold several corrupted ones as well as samples. Hence:
    # the reader got the first `received` notifications, each a sample in the file or a corrupt packet
    # counted, and those it did not get fit in one connection event, i.e. the samples measured within one
    # 30 ms interval (6 at 200 Hz, 7 when the sensor's clock runs fast).
    assert set(fate.tolist()) <= {"sent", "corrupted"}, set(fate.tolist())
    received = len(tb) + run.result.status["sacrum"].corrupt_packets
    assert received <= len(fate), (received, len(fate))
    assert np.count_nonzero(fate[:received] == "sent") == len(tb)
    t = log["true_time_s"]
    per_event = int(np.max(np.searchsorted(t, t + 0.030) - np.arange(len(t))))
    assert len(fate) - received <= per_event, (len(fate) - received, per_event)
    sent = fate[:received] == "sent"
    runs = np.count_nonzero(np.diff(sent.astype(int)) == 1)
    assert np.count_nonzero(tb.flags & GAP) == runs
    assert np.all(tb.flags & np.uint8(SampleFlag.HOST_TIME_ONLY))
    # The values written are the values sent, in order (nothing garbled): Q6.10 counts of the patient.
    sent_index = log["index"][:received][sent]
    want = np.rint(run.emulator.patient.batches["sacrum"].acc[sent_index] / 9.80665 * 1024.0) / 1024.0 * 9.80665
    np.testing.assert_allclose(tb.acc, want, atol=1e-9)


def test_silent_sensor_and_missing_address_others_record(tmp_path):
    sensors = [
        EmulatedSensor("lumbar_ref", "lumbar", seed=9),
        EmulatedSensor("lumbar_ref", "sacrum", seed=10, faults=Faults(silent=True)),
    ]
    ghost = SensorTarget("thigh_left", address="C0:00:00:00:0F:0F")
    options = ReaderOptions(connect_timeout_s=3.0, gatt_timeout_s=2.0, scan_timeout_s=2.0)
    run = record(sensors, tmp_path / "faults.h5", 20.0, time_scale=10.0, extra_targets=[ghost], options=options)
    res = run.result
    assert res.valid, res.problems
    assert len(run.session.data["lumbar"]) > 0.9 * 200 * 15
    assert len(run.session.data["sacrum"]) == 0
    assert len(run.session.data["thigh_left"]) == 0
    assert "does not answer" in res.status["sacrum"].message
    assert "no device with address C0:00:00:00:0F:0F" in res.status["thigh_left"].message
    assert res.status["lumbar"].message == ""


def test_sensor_without_sample_log_streams_the_same_and_keeps_no_per_sample_log(tmp_path):
    """The application's demo sensors run for hours: they keep packet counts but no per-sample log."""
    sensors = [EmulatedSensor("lumbar_ref", "lumbar", conn_interval_ms=30, seed=5, log_samples=False),
               EmulatedSensor("polar_pmd", "sacrum", conn_interval_ms=30, seed=6, log_samples=False)]
    run = record(sensors, tmp_path / "nolog.h5", 5.0)
    assert run.result.valid, run.result.problems
    for s in sensors:
        n = len(run.session.data[s.placement])
        assert n == run.result.status[s.placement].samples  # every sample the reader received is in the file
        # and it streamed (100 Hz asked) for most of the 5 s: connecting takes longer on a loaded machine
        assert n > 0.5 * 5.0 * 100, (s.placement, n)
        assert s.log.packets["sent"] > 0
        assert not (s.log.device_time_s or s.log.true_time_s or s.log.index or s.log.fate)
