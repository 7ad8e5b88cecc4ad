"""The emulated patient checked against its own physics (noise-free IMU)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from lumbar.simulate import ImuErrorModel, simulate

from .conftest import G, integrate_gyro, specific_force_from_truth, wxyz_to_rot


@pytest.mark.parametrize("which", ["flexion_ideal", "standing_ideal", "prone_ideal"])
def test_integrated_gyro_reproduces_orientation_after_60s(which, request):
    sim = request.getfixturevalue(which)
    for p, batch in sim.batches.items():
        q_true = sim.truth.sensor(p, "quat")
        r_end = integrate_gyro(q_true[0], batch.gyro, batch.time_s)
        err_deg = np.degrees((r_end.inv() * wxyz_to_rot(q_true[-1])).magnitude())
        assert err_deg < 0.1, f"{which} {p}: {err_deg:.4f}° after 60 s"
        # in fact far below: the rates are the exact derivatives of the trajectory
        assert err_deg < 1e-3


def test_gyro_sign_and_frame_by_finite_difference(flexion_ideal):
    """ω from consecutive true orientations (R_kᵀ R_k+1 ≈ exp(ω h)) matches the gyro at mid-interval."""
    b = flexion_ideal.batches["lumbar"]
    r = wxyz_to_rot(flexion_ideal.truth.sensor("lumbar", "quat"))
    h = np.diff(b.time_s)[:, None]
    w_fd = (r[:-1].inv() * r[1:]).as_rotvec() / h
    w_mid = 0.5 * (b.gyro[:-1] + b.gyro[1:])
    assert np.abs(w_fd - w_mid).max() < 2e-3 * max(1.0, np.abs(b.gyro).max())
    assert np.abs(b.gyro).max() > 0.3  # the test is not vacuous: the trunk does move


@pytest.mark.parametrize("movement,min_ptp", [("sit-to-stand", 1.0), ("prone-knee-bend", 0.05)])
def test_acc_is_specific_force_with_lever_arm(movement, min_ptp):
    """acc = R_ESᵀ (p̈ + g e_z), with p̈ from the true sensor positions by finite differences."""
    sim = simulate(movement, duration_s=20.0, seed=5, rate_hz=1000.0, imu=ImuErrorModel.ideal(), reps=1,
                   quality="poor")
    for p in ("lumbar", "sacrum"):
        acc = sim.batches[p].acc[1:-1]
        assert np.abs(specific_force_from_truth(sim, p) - acc).max() < 5e-3, p
        assert np.ptp(np.linalg.norm(acc, axis=1)) > min_ptp  # real linear accelerations are present


def test_static_acc_equals_gravity_in_sensor_frame():
    sim = simulate("quiet-standing", duration_s=10.0, seed=2, imu=ImuErrorModel.ideal(), sway_scale=0.0,
                   sensors=("lumbar", "sacrum", "thigh_left", "thigh_right"),
                   misalignment_deg={"lumbar": [10.0, -5.0, 20.0]})
    for p, b in sim.batches.items():
        R = wxyz_to_rot(sim.truth.sensor(p, "quat")).as_matrix()
        expected = np.einsum("nji,j->ni", R, [0.0, 0.0, G])
        assert np.abs(b.acc - expected).max() < 1e-9, p
        assert np.abs(b.gyro).max() < 1e-12, p
    # upright, aligned sensor: specific force along the superior axis (+Y)
    sim0 = simulate("quiet-standing", duration_s=2.0, imu=ImuErrorModel.ideal(), sway_scale=0.0, sensors=("sacrum",))
    np.testing.assert_allclose(sim0.batches["sacrum"].acc, np.tile([0.0, G, 0.0], (200, 1)), atol=1e-12)


def test_rest_between_flexion_reps_is_static():
    sim = simulate("flexion", duration_s=40.0, seed=6, imu=ImuErrorModel.ideal(), sway_scale=0.0, reps=3)
    b = sim.batches["lumbar"]
    bounds = sim.truth.rep_bounds_s
    t = b.time_s
    rest = (t > bounds[0, 2] + 0.05) & (t < bounds[1, 0] - 0.05)
    assert rest.sum() > 50
    R = wxyz_to_rot(sim.truth.sensor("lumbar", "quat")[rest]).as_matrix()
    np.testing.assert_allclose(b.acc[rest], np.einsum("nji,j->ni", R, [0.0, 0.0, G]), atol=1e-9)
    moving = (t > bounds[0, 0]) & (t < bounds[0, 2])
    assert np.abs(b.gyro[moving]).max() > 0.2


def _lumbar_angles_scipy(q_pelvis: np.ndarray, q_lumbar: np.ndarray) -> np.ndarray:
    """Independent recomputation: R_lum = R_pelvisᵀ R_lumbar, intrinsic Z-X'-Y'' Cardan (scipy 'ZXY'),
    flexion = −α, right lateral bending = +β, axial rotation (left +) = +γ (METRICS.md §2.1)."""
    r_rel = wxyz_to_rot(q_pelvis).inv() * wxyz_to_rot(q_lumbar)
    a, b, c = r_rel.as_euler("ZXY").T
    return np.stack([-a, b, c], 1)


@pytest.mark.parametrize("movement", ["flexion", "one-leg-stance", "pelvic-tilt", "prone-knee-bend"])
def test_lumbar_angles_equal_relative_segment_orientation(movement):
    sim = simulate(movement, duration_s=60.0, seed=7, quality="poor", imu=ImuErrorModel.ideal(), reps=2)
    tr = sim.truth
    ang = _lumbar_angles_scipy(tr.segment_quat("pelvis"), tr.segment_quat("lumbar"))
    np.testing.assert_allclose(tr.lumbar_angles_rad, ang, atol=1e-9)
    assert np.ptp(tr.lumbar_angles_rad, axis=0).max() > np.radians(5)


def test_lumbar_angles_known_posture():
    """Scipy composition check (METRICS SEG-01..03 style): a pure flexion shows as flexion only."""
    sim = simulate("flexion", duration_s=30.0, seed=8, imu=ImuErrorModel.ideal(), sway_scale=0.0, reps=1,
                   amplitude_deg=50.0, lumbar_share=0.6, variability=0.0)
    tr = sim.truth
    k = np.argmin(np.abs(tr.time_s - tr.rep_bounds_s[0, 1]))
    np.testing.assert_allclose(np.degrees(tr.lumbar_angles_rad[k]), [30.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(np.degrees(tr.pelvis_tilt_rad[k]), 20.0, atol=1e-9)
    np.testing.assert_allclose(np.degrees(tr["trunk_inclination_rad"][k]), 50.0, atol=1e-9)


def test_prone_start_posture_static_acc():
    """Prone lying, aligned sensors, no residual motion: every segment's anterior axis points down, so
    the specific force (up) lies along −X of every sensor."""
    sim = simulate("prone-knee-bend", duration_s=15.0, seed=2, imu=ImuErrorModel.ideal(), sway_scale=0.0, reps=1,
                   sensors=("lumbar", "sacrum", "thigh_left", "thigh_right"),
                   misalignment_deg={p: [0.0, 0.0, 0.0] for p in ("lumbar", "sacrum", "thigh_left", "thigh_right")})
    still = sim.batches["sacrum"].time_s < 4.9
    for p, b in sim.batches.items():
        np.testing.assert_allclose(b.acc[still], np.tile([-G, 0.0, 0.0], (still.sum(), 1)), atol=1e-9, err_msg=p)
        assert np.abs(b.gyro[still]).max() < 1e-12, p


def test_misalignment_shows_up_exactly(flexion_ideal):
    sim = flexion_ideal
    for p, mis in (("lumbar", [3.0, -2.0, 5.0]), ("sacrum", [-4.0, 1.0, 2.0])):
        np.testing.assert_array_equal(sim.truth.sensor(p, "misalignment_deg"), mis)
        seg = sim.truth.attrs()[f"sensor/{p}/segment"]
        # ideal IMU: sensor samples fall on the nominal grid, so segment and sensor truth align
        np.testing.assert_array_equal(sim.truth.sensor(p, "time_s"), sim.truth.time_s)
        expected = wxyz_to_rot(sim.truth.segment_quat(seg)) * Rotation.from_rotvec(np.radians(mis))
        got = wxyz_to_rot(sim.truth.sensor(p, "quat"))
        assert (got.inv() * expected).magnitude().max() < 1e-12


def test_misalignment_static_acc():
    mis = np.array([0.0, 0.0, 15.0])  # 15° about the segment's Z (right) axis
    sim = simulate("quiet-standing", duration_s=2.0, imu=ImuErrorModel.ideal(), sway_scale=0.0,
                   sensors=("sacrum",), misalignment_deg={"sacrum": mis})
    # upright segment: f_segment = (0, g, 0); sensor frame = segment frame rotated by Rz(15°): f_S = Rzᵀ f_B
    expected = Rotation.from_rotvec(np.radians(mis)).as_matrix().T @ [0.0, G, 0.0]
    np.testing.assert_allclose(sim.batches["sacrum"].acc, np.tile(expected, (200, 1)), atol=1e-12)
    assert expected[0] > 2.0  # g sin 15° appears on the sensor's x axis


def test_segment_positions_are_consistent(standing_ideal):
    tr = standing_ideal.truth
    pel = tr["segment/pelvis/position_m"]
    assert np.allclose(pel[:, 2], 0.92, atol=0.01)  # hip centre height when standing
    # the sacral sensor is 13 cm behind and 9 cm above the hip centre
    d = tr.sensor("sacrum", "position_m") - pel
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), np.hypot(0.13, 0.09), atol=1e-12)
