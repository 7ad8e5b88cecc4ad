"""Fixtures generating IMU data for the filter tests (never downloaded)."""
from __future__ import annotations

import numpy as np
import pytest

from .reference_orientation import qmul, rotmat

G = 9.81


def simulate_imu(
    n: int,
    rate_hz: float,
    *,
    seed: int = 0,
    bias_rad_s: tuple[float, float, float] = (0.0, 0.0, 0.0),
    rest_s: float = 2.0,
    noise: bool = True,
) -> dict:
    """Rest, then smooth rotation, then rest. Returns acc (N,3), gyr (N,3), true quat (N,4)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate_hz
    moving = (t >= rest_s) & (t < t[-1] - rest_s)
    w_true = np.zeros((n, 3))
    for k, (f, amp) in enumerate(((0.31, 1.2), (0.47, 0.9), (0.23, 1.5))):
        w_true[:, k] = amp * np.sin(2 * np.pi * f * (t - rest_s) + k) * moving
    q = np.array([np.cos(0.15), np.sin(0.15), 0.0, 0.0])  # tilted start
    quat = np.empty((n, 4))
    dt = 1.0 / rate_hz
    for i in range(n):
        w = w_true[i]
        a = np.linalg.norm(w) * dt
        if a > 0:
            q = qmul(q, np.concatenate([[np.cos(a / 2)], np.sin(a / 2) * w / np.linalg.norm(w)]))
        quat[i] = q
    acc = np.einsum("nji,j->ni", np.array([rotmat(qq) for qq in quat]), [0.0, 0.0, G])
    gyr = w_true + np.asarray(bias_rad_s)
    if noise:
        acc = acc + 0.05 * rng.standard_normal((n, 3))
        gyr = gyr + 0.003 * rng.standard_normal((n, 3))
    return {"acc": np.ascontiguousarray(acc), "gyr": np.ascontiguousarray(gyr), "quat": quat, "rate_hz": rate_hz}


@pytest.fixture(scope="session")
def imu_recording() -> dict:
    """12 s at 100 Hz with a constant gyro bias: rest, motion, rest."""
    return simulate_imu(1200, 100.0, seed=1, bias_rad_s=(0.01, -0.02, 0.005))
