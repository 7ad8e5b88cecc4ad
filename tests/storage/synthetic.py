"""Synthetic sample batches for storage tests (no emulated patient needed)."""
from __future__ import annotations

import numpy as np

from lumbar.types import ImuBatch, SampleFlag


def make_batch(sensor_id: str, n: int, rate_hz: float = 200.0, start: int = 0, seed: int = 0) -> ImuBatch:
    """Deterministic synthetic samples: values are a function of the sample index."""
    k = np.arange(start, start + n)
    t = k / rate_hz
    rng = np.random.default_rng(seed + start)
    acc = np.column_stack([np.sin(k * 0.01), np.cos(k * 0.013), 9.81 + 0.1 * np.sin(k * 0.02)])
    gyro = rng.normal(0, 0.2, (n, 3))
    flags = np.zeros(n, np.uint8)
    flags[k % 97 == 0] = SampleFlag.GAP_BEFORE
    return ImuBatch.create(sensor_id, t, acc, gyro, device_time_s=t + 1000.0, seq=k, flags=flags)
