"""Fixtures for the emulated-patient tests: a few simulations shared by many tests."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from lumbar.simulate import ImuErrorModel, simulate

G = 9.80665


def wxyz_to_rot(q: np.ndarray) -> Rotation:
    """Independent conversion to scipy (written here, not taken from lumbar.conventions)."""
    q = np.asarray(q)
    return Rotation.from_quat(np.concatenate([q[..., 1:], q[..., :1]], axis=-1))


def specific_force_from_truth(sim, placement: str) -> np.ndarray:
    """What an ideal accelerometer at ``placement`` reads, (N−2, 3) m/s² in the sensor frame, from the truth
    alone: ``R_ESᵀ (p̈ + g e_z)``, p̈ from the sensor's true positions by finite differences (samples 1..N−2)."""
    t = sim.truth.sensor(placement, "time_s")
    pos = sim.truth.sensor(placement, "position_m")
    h = t[1] - t[0]
    acc_lin = (pos[2:] - 2 * pos[1:-1] + pos[:-2]) / (h * h)
    R = wxyz_to_rot(sim.truth.sensor(placement, "quat")[1:-1]).as_matrix()
    return np.einsum("nji,nj->ni", R, acc_lin + [0.0, 0.0, G])


def integrate_gyro(q0: np.ndarray, gyro: np.ndarray, t: np.ndarray) -> Rotation:
    """Integrate sampled body rates from q0 (w,x,y,z) with a 4th-order Magnus step.

    Between samples k and k+1 the rate is taken as linear; the rotation vector of the step
    is Ω = (ω_k+ω_{k+1})/2·h + h²/12·(ω_k × ω_{k+1}), exact to O(h⁵) for smooth rates.
    """
    h = np.diff(t)[:, None]
    w0, w1 = gyro[:-1], gyro[1:]
    omega = 0.5 * (w0 + w1) * h + (h * h / 12.0) * np.cross(w0, w1)
    steps = Rotation.from_rotvec(omega)
    r = wxyz_to_rot(q0)
    for k in range(len(steps)):
        r = r * steps[k]
    return r


@pytest.fixture(scope="session")
def flexion_ideal():
    return simulate("flexion", duration_s=60.0, seed=3, rate_hz=100.0, imu=ImuErrorModel.ideal(),
                    misalignment_deg={"lumbar": [3.0, -2.0, 5.0], "sacrum": [-4.0, 1.0, 2.0]})


@pytest.fixture(scope="session")
def standing_ideal():
    return simulate("quiet-standing", duration_s=60.0, seed=4, rate_hz=100.0, imu=ImuErrorModel.ideal(),
                    sensors=("lumbar", "sacrum", "thigh_left", "thigh_right"))


@pytest.fixture(scope="session")
def prone_ideal():
    return simulate("prone-knee-bend", duration_s=60.0, seed=5, rate_hz=100.0, imu=ImuErrorModel.ideal(),
                    quality="poor", sensors=("lumbar", "sacrum", "thigh_left", "thigh_right"),
                    misalignment_deg={"lumbar": [2.0, 3.0, -4.0], "sacrum": [-1.0, 2.0, 3.0]})
