"""The LSL angle stream's computation (LiveAngles, no pylsl needed): hip flexion from thigh sensors, knee flexion
from shank sensors."""
from __future__ import annotations

import numpy as np

from lumbar.interop.lsl import ANGLE_CHANNELS, HIP_CHANNEL, LiveAngles
from lumbar.simulate import simulate

RATE = 100.0
FOUR = ("lumbar", "sacrum", "thigh_left", "thigh_right")


def _run(sim, stop_left_at_s: float = np.inf, start_left_at_s: float = 0.0) -> tuple[LiveAngles, np.ndarray,
                                                                                      np.ndarray]:
    """Feed the sensors' samples in 0.1 s chunks, as a bus would hand them over; the left thigh may stop, or
    start late."""
    live = LiveAngles({sid: RATE for sid in sim.batches})
    ts, rows = [], []
    n = len(next(iter(sim.batches.values())))
    for i in range(0, n, 10):
        for sid, b in sim.batches.items():
            chunk = b[i:i + 10]
            if sid == "thigh_left" and len(chunk) and not start_left_at_s <= chunk.time_s[0] < stop_left_at_s:
                continue
            live.feed(chunk)
        t, x = live.take()
        ts.append(t)
        rows.append(x)
    return live, np.concatenate(ts), np.concatenate(rows)


def _true_hip_deg(sim, t: np.ndarray, zero: slice) -> np.ndarray:
    tr = sim.truth._arrays
    hip = np.degrees(tr["pelvis_tilt_rad"][:, None] - tr["thigh_inclination_rad"]).mean(axis=1)
    return np.interp(t, tr["time_s"], hip - hip[zero].mean())


def test_thighs_add_a_hip_channel_that_follows_the_body():
    sim = simulate("waiters-bow", duration_s=30.0, seed=3, rate_hz=RATE, sensors=FOUR)
    live, t, x = _run(sim)
    assert live.channels == ANGLE_CHANNELS + (HIP_CHANNEL,) and x.shape[1] == len(live.channels)
    hip = np.degrees(x[:, -1])
    ref = _true_hip_deg(sim, t, slice(0, int(2 * RATE)))  # zero: the first 2 s, the calibration
    assert np.isfinite(hip).all() and ref.max() > 50.0
    assert np.sqrt(np.mean((hip - ref) ** 2)) < 1.0


def test_without_thighs_the_channels_are_unchanged():
    sim = simulate("flexion", duration_s=15.0, seed=3, rate_hz=RATE, reps=1)
    live, _, x = _run(sim)
    assert live.channels == ANGLE_CHANNELS and x.shape[1] == len(ANGLE_CHANNELS)


def test_a_thigh_that_stops_does_not_stop_the_stream():
    """The left thigh's sensor stops at 15 s: the angles go on to the end, the hip from the right thigh."""
    sim = simulate("waiters-bow", duration_s=30.0, seed=3, rate_hz=RATE, sensors=FOUR)
    _, t, x = _run(sim, stop_left_at_s=15.0)
    assert t[-1] > 29.0  # to the end of the recording
    late = t > 16.0
    hip = np.degrees(x[late, -1])
    ref = _true_hip_deg(sim, t[late], slice(0, int(2 * RATE)))
    assert np.isfinite(hip).all() and np.sqrt(np.mean((hip - ref) ** 2)) < 1.5


def test_a_thigh_that_starts_after_the_calibration_is_left_out():
    """The left thigh's sensor starts streaming at 10 s, after the calibration: it has no zero posture, so no
    hip angle comes from it (the right thigh's is used) and nothing of it is kept."""
    sim = simulate("waiters-bow", duration_s=30.0, seed=3, rate_hz=RATE, sensors=FOUR)
    live, t, x = _run(sim, start_left_at_s=10.0)
    assert "thigh_left" not in live._cal and sum(len(a) for a in live._t["thigh_left"]) == 0
    hip = np.degrees(x[:, -1])
    ref = _true_hip_deg(sim, t, slice(0, int(2 * RATE)))
    assert t[-1] > 29.0 and np.isfinite(hip).all() and np.sqrt(np.mean((hip - ref) ** 2)) < 1.0


def test_shanks_add_a_knee_channel_that_follows_the_body():
    """Sitting knee extension with a shank sensor on each leg: the stream gains a knee channel, the knee that
    moves (legs in turn), which follows the body's knees from the zero posture."""
    from lumbar.interop.lsl import KNEE_CHANNEL

    sim = simulate("sitting-knee-extension", duration_s=40.0, reps=4, seed=3, rate_hz=RATE,
                   sensors=("lumbar", "sacrum", "shank_left", "shank_right"))
    live, t, x = _run(sim)
    assert live.channels == ANGLE_CHANNELS + (KNEE_CHANNEL,) and x.shape[1] == len(live.channels)
    tr = sim.truth._arrays
    knee = np.degrees(tr["knee_flexion_rad"])
    zero = tr["time_s"] < live.calib_s
    knee = knee - knee[zero].mean(axis=0)
    working = np.where(np.abs(knee[:, 0]) > np.abs(knee[:, 1]), knee[:, 0], knee[:, 1])
    true = np.interp(t, tr["time_s"], working)
    est = np.degrees(x[:, -1])
    assert np.isfinite(est).all()
    assert np.abs(true).max() > 50.0  # four extensions of the knee
    # the working thigh's own lift (3°) is read as knee without thigh sensors
    assert np.sqrt(np.mean((est - true) ** 2)) < 2.0 and np.abs(est - true).max() < 5.0
