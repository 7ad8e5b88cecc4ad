"""Calibration: gyro bias, static vertical axis, functional flexion axis, and clear errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from lumbar import conventions as cv
from lumbar.calibration import calibrate_segment, detect_static, gyro_bias
from lumbar.errors import CalibrationError

G = 9.80665
D = np.deg2rad


def _trials(r_sb: np.ndarray, rate=100.0, seed=0, noise=0.0, static_motion=0.0):
    """Static upright (5 s) + 4 forward bends (about segment -Z) as seen by a sensor mounted with r_sb."""
    rng = np.random.default_rng(seed)
    t_s = np.arange(int(5 * rate)) / rate
    up_b = np.array([0.0, G, 0.0])
    acc_s = np.tile(r_sb.T @ up_b, (t_s.size, 1)) + rng.normal(0, noise + static_motion, (t_s.size, 3))
    gyr_s = np.tile([0.01, -0.02, 0.005], (t_s.size, 1)) + rng.normal(0, noise * 0.01, (t_s.size, 3))
    t_f = np.arange(int(16 * rate)) / rate
    theta = D(50) * 0.5 * (1 - np.cos(2 * np.pi * t_f / 4.0))  # 4 bends of 50°
    theta_dot = D(50) * 0.5 * (2 * np.pi / 4.0) * np.sin(2 * np.pi * t_f / 4.0)
    w_b = np.column_stack([0 * t_f, 0 * t_f, -theta_dot])  # flexion = negative rotation about Z
    up_in_b = np.column_stack([-np.sin(theta), np.cos(theta), 0 * t_f]) * G
    acc_f = up_in_b @ r_sb + rng.normal(0, noise, (t_f.size, 3))  # row vectors: (r_sbᵀ v)ᵀ = vᵀ r_sb
    gyr_f = w_b @ r_sb + np.array([0.01, -0.02, 0.005])
    return acc_s, gyr_s, acc_f, gyr_f


@pytest.mark.parametrize("seed", range(5))
def test_recovers_random_mounting(seed):
    r_sb = Rotation.random(random_state=seed).as_matrix()
    cal = calibrate_segment(*_trials(r_sb, seed=seed, noise=0.02), rate_hz=100.0)
    angle = np.rad2deg(Rotation.from_matrix(cal.r_sb @ r_sb.T).magnitude())
    assert angle < 0.5
    np.testing.assert_allclose(cal.gyro_bias_rads, [0.01, -0.02, 0.005], atol=1e-3)
    assert cal.singular_ratio < 0.05 and cal.axis_off_horizontal_deg < 1


def test_exact_without_noise():
    r_sb = cv.rot_y(D(20)) @ cv.rot_x(D(10))
    cal = calibrate_segment(*_trials(r_sb), rate_hz=100.0)
    np.testing.assert_allclose(cal.r_sb, r_sb, atol=1e-9)


def test_moving_patient_is_refused():
    with pytest.raises(CalibrationError, match="moved during the static trial"):
        calibrate_segment(*_trials(np.eye(3), static_motion=0.5), rate_hz=100.0)


def test_no_bends_is_refused():
    acc_s, gyr_s, acc_f, gyr_f = _trials(np.eye(3))
    with pytest.raises(CalibrationError, match="too little movement"):
        calibrate_segment(acc_s, gyr_s, acc_s, gyr_s, rate_hz=100.0)


def test_twisting_is_refused():
    acc_s, gyr_s, acc_f, gyr_f = _trials(np.eye(3))
    gyr_f = gyr_f.copy()
    gyr_f[:, 1] += 0.8 * np.sin(np.linspace(0, 40, gyr_f.shape[0]))  # axial twisting mixed in
    with pytest.raises(CalibrationError, match="not well defined"):
        calibrate_segment(acc_s, gyr_s, acc_f, gyr_f, rate_hz=100.0)


def test_static_detection_and_bias():
    acc_s, gyr_s, acc_f, gyr_f = _trials(np.eye(3), noise=0.005)
    acc = np.vstack([acc_s, acc_f])
    gyr = np.vstack([gyr_s, gyr_f])
    rest = detect_static(acc, gyr, 100.0)
    assert rest[50:450].all() and not rest[600:].any()
    np.testing.assert_allclose(gyro_bias(gyr, rest), [0.01, -0.02, 0.005], atol=2e-4)


def test_metric_cases_cal(shared_dir):
    cases = {c["id"]: c for c in json.loads((shared_dir / "docs" / "metric_cases.json").read_text())["cases"]}
    t = np.arange(1000) / 100
    w = np.column_stack([0.01 + 0.002 * np.sin(2 * np.pi * t), 0 * t, 0 * t])
    assert gyro_bias(w)[0] == pytest.approx(cases["CAL-01"]["expected"], abs=cases["CAL-01"]["tolerance"])
    r_sb = cv.rot_y(D(20)) @ cv.rot_x(D(10))
    cal = calibrate_segment(*_trials(r_sb), rate_hz=100.0)
    z_true = r_sb.T @ np.array([0.0, 0.0, 1.0])
    angle = np.rad2deg(np.arccos(np.clip(cal.r_sb[2] @ z_true, -1, 1)))
    assert angle == pytest.approx(cases["CAL-02"]["expected"], abs=cases["CAL-02"]["tolerance"])
    assert cal.r_sb[1][2] == pytest.approx(cases["CAL-03"]["expected"], abs=cases["CAL-03"]["tolerance"])


def test_gravity_norm_warning_and_refusal():
    acc_s, gyr_s, acc_f, gyr_f = _trials(np.eye(3))
    cal = calibrate_segment(acc_s * 1.08, gyr_s, acc_f * 1.08, gyr_f, rate_hz=100.0)  # commodity-sized error
    assert any("+8 %" in w for w in cal.warnings)
    with pytest.raises(CalibrationError, match="units and range"):
        calibrate_segment(acc_s / G, gyr_s, acc_f / G, gyr_f, rate_hz=100.0)  # in g, not m/s²


def test_standing_sway_is_not_movement():
    """Quiet-standing sway of 8 mg RMS must not be refused as 'the patient moved'."""
    acc_s, gyr_s, acc_f, gyr_f = _trials(np.eye(3), static_motion=0.08)
    calibrate_segment(acc_s, gyr_s, acc_f, gyr_f, rate_hz=100.0)


def _posture_trials(r_sb, up_b, direction, rate=100.0):
    """Static posture with ``up_b`` up, then 4 movements about segment Z (direction +1 flexion)."""
    t_s = np.arange(int(5 * rate)) / rate
    acc_s = np.tile(r_sb.T @ (G * np.asarray(up_b)), (t_s.size, 1))
    gyr_s = np.zeros((t_s.size, 3))
    t_f = np.arange(int(16 * rate)) / rate
    theta = -direction * D(30) * 0.5 * (1 - np.cos(2 * np.pi * t_f / 4.0))  # flexion is negative about Z
    theta_dot = np.gradient(theta, 1 / rate)
    up_in_b = np.stack([cv.rot_z(-th) @ (G * np.asarray(up_b)) for th in theta])
    acc_f = up_in_b @ r_sb
    gyr_f = np.column_stack([0 * t_f, 0 * t_f, theta_dot]) @ r_sb
    return acc_s, gyr_s, acc_f, gyr_f


@pytest.mark.parametrize("posture,direction", [("standing", +1), ("prone", -1), ("four-point-kneeling", +1)])
def test_posture_aware_calibration(posture, direction):
    from lumbar.calibration import posture_up

    r_sb = Rotation.random(random_state=11).as_matrix()
    cal = calibrate_segment(*_posture_trials(r_sb, posture_up(posture), direction), rate_hz=100.0,
                            posture=posture, functional_direction=direction)
    np.testing.assert_allclose(cal.r_sb, r_sb, atol=1e-6)


def test_static_only_in_prone_posture():
    from lumbar.calibration import static_only_calibration

    r_sb = cv.rot_z(D(4))  # sensor on the back, nominally mounted, slightly tilted
    acc = np.tile(r_sb.T @ np.array([-G, 0.0, 0.0]), (300, 1))
    cal = static_only_calibration(acc, np.zeros((300, 3)), posture="prone")
    np.testing.assert_allclose(cal.r_sb @ (acc[0] / G), [-1.0, 0.0, 0.0], atol=1e-12)
    with pytest.raises(CalibrationError, match="upside down or on its side"):
        static_only_calibration(-acc, np.zeros((300, 3)), posture="prone")
