"""LSL: an inlet on loopback receives every sample of an emulated recording, stamped with the file's times."""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

pylsl = pytest.importorskip("pylsl", reason="pylsl (extra 'interop') is not installed")

from lumbar.interop.lsl import ANGLE_CHANNELS, IMU_CHANNELS, replay_file_to_lsl  # noqa: E402
from lumbar.storage import read_session  # noqa: E402


def _pull_all(inlet: object, n: int, timeout_s: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    values: list = []
    stamps: list = []
    end = time.monotonic() + timeout_s
    while len(stamps) < n and time.monotonic() < end:
        x, t = inlet.pull_chunk(timeout=0.2, max_samples=100_000)  # type: ignore[attr-defined]
        values += x
        stamps += t
    return np.array(values), np.array(stamps)


def test_loopback_receives_every_sample_with_file_timestamps(session_file: Path) -> None:
    s = read_session(session_file)
    inlets: dict[str, object] = {}

    def open_inlets(bridge: object) -> None:
        for key in bridge.outlets:  # type: ignore[attr-defined]
            found = pylsl.resolve_byprop("source_id", f"{bridge.source_id}-{key}", timeout=5.0)  # type: ignore[attr-defined]
            assert found, f"stream {key} not found on loopback"
            inlet = pylsl.StreamInlet(found[0], max_buflen=360, processing_flags=0)
            inlet.open_stream(timeout=5.0)
            inlets[key] = inlet

    bridge = replay_file_to_lsl(session_file, speed=math.inf, bridge_ready=open_inlets, wait_for_consumers_s=5.0)
    assert bridge.missed == {"lumbar": 0, "sacrum": 0}
    for sid, b in s.data.items():
        info = inlets[sid].info(timeout=5.0)  # type: ignore[attr-defined]
        assert info.channel_count() == len(IMU_CHANNELS) and info.nominal_srate() == 100.0
        values, stamps = _pull_all(inlets[sid], len(b))
        assert len(stamps) == len(b)  # every sample
        assert np.max(np.abs(stamps - bridge.time_offset - b.time_s)) < 1e-3  # within 1 ms of the file
        assert np.array_equal(values[:, 0:3], b.acc) and np.array_equal(values[:, 3:6], b.gyro)
        assert np.array_equal(values[:, 6].astype(np.int64), b.seq)
    values, stamps = _pull_all(inlets["angles"], bridge.pushed["angles"])
    assert values.shape == (bridge.pushed["angles"], len(ANGLE_CHANNELS))
    assert len(stamps) >= len(s.data["lumbar"]) - 2  # the angle stream covers the recording
    # one flexion repetition of about 40° lumbar flexion (the emulated patient's ground truth)
    assert np.radians(30) < np.max(values[:, 0]) < np.radians(50)
    # stamped at the upper sensor's sample times, in order from its first sample
    np.testing.assert_allclose(stamps - bridge.time_offset, s.data["lumbar"].time_s[: len(stamps)], atol=1e-3)
