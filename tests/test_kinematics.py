"""Kinematics: segment orientation from sensor orientation, heading alignment, lumbar angles."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from lumbar import conventions as cv
from lumbar import kinematics as K

D = np.deg2rad


def _segments(n=500, seed=0):
    """Pelvis tilting forward and a lumbar segment flexing, bending and rotating on it (earth: z up)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, n)
    flex, bend, rot = D(40) * t, D(8) * np.sin(3 * t), D(-6) * t**2
    tilt = D(25) * t
    # segment frame (X ant, Y sup, Z right) upright in an earth frame x forward, y left, z up
    upright = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # columns: segment axes in earth
    heading = rng.uniform(-np.pi, np.pi)
    r_pelvis = cv.rot_z(heading) @ upright @ cv.rot_z(-tilt)
    r_lum = cv.rot_z(-flex) @ cv.rot_x(bend) @ cv.rot_y(rot)
    r_upper = r_pelvis @ r_lum
    return t, r_pelvis, r_upper, np.column_stack([flex, bend, rot])


def test_lumbar_angles_with_mounting_and_heading_offsets():
    t, r_pelvis, r_upper, truth = _segments()
    r_sb_up = Rotation.random(random_state=1).as_matrix()
    r_sb_low = Rotation.random(random_state=2).as_matrix()
    # each 6D filter has its own arbitrary heading
    h_up, h_low = cv.rot_z(1.1), cv.rot_z(-2.3)
    q_gs_up = cv.matrix_to_quat(h_up @ r_upper @ r_sb_up)
    q_gs_low = cv.matrix_to_quat(h_low @ r_pelvis @ r_sb_low)
    q_up = K.segment_quat(q_gs_up, r_sb_up)
    q_low = K.segment_quat(q_gs_low, r_sb_low)
    ang = K.lumbar_angles(q_up, q_low, calib_index=0)
    np.testing.assert_allclose(ang, truth, atol=1e-9)
    np.testing.assert_allclose(K.sagittal_tilt(q_low, 0), D(25) * t, atol=1e-9)
    np.testing.assert_allclose(K.inclination(q_up)[0], 0.0, atol=1e-9)


def test_turning_does_not_leak_into_sagittal_tilt():
    _, r_pelvis, _, _ = _segments()
    turn = cv.rot_z(np.linspace(0, 1.5, r_pelvis.shape[0]))  # whole body turning about vertical
    tilt_still = K.sagittal_tilt(cv.matrix_to_quat(r_pelvis))
    tilt_turning = K.sagittal_tilt(cv.matrix_to_quat(turn @ r_pelvis))
    np.testing.assert_allclose(tilt_turning, tilt_still, atol=1e-9)


def test_segment_angular_velocity():
    r_sb = Rotation.random(random_state=3).as_matrix()
    w_b = np.random.default_rng(0).normal(size=(50, 3))
    w_s = w_b @ r_sb + 0.01  # sensor reading with bias
    np.testing.assert_allclose(K.segment_angular_velocity(w_s, r_sb, np.full(3, 0.01)), w_b, atol=1e-12)


def _matrix_reference(q_up, q_low, calib):
    """The matrix formulation of lumbar angles, sagittal and frontal tilt (as first written)."""
    up = K.align_headings(q_up, q_low, calib)
    r_lum = np.swapaxes(cv.quat_to_matrix(q_low), -1, -2) @ cv.quat_to_matrix(up)
    r0 = cv.to_scipy(cv.matrix_to_quat(r_lum[calib])).mean().as_matrix()
    angles = cv.lumbar_angles_from_matrix(r0.T @ r_lum)
    r = cv.quat_to_matrix(q_low)
    y_e, z_e = r[:, :, 1], r[:, :, 2]
    f = np.cross(np.array([0.0, 0.0, 1.0]), z_e)
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    sagittal = np.arctan2(np.sum(y_e * f, axis=1), y_e[:, 2])
    right_h = z_e.copy()
    right_h[:, 2] = 0.0
    right_h /= np.linalg.norm(right_h, axis=1, keepdims=True)
    frontal = np.arctan2(np.sum(y_e * right_h, axis=1), y_e[:, 2])
    # the sagittal tilt relative to the calibration posture is kept within ±180° (a shank lying prone turns
    # across the absolute tilt's seam as the knee bends)
    relative = sagittal - sagittal[calib].mean()
    relative = np.where(np.abs(relative) > np.pi, np.angle(np.exp(1j * relative)), relative)
    return angles, relative, frontal - frontal[calib].mean()


def test_compiled_kinematics_match_the_matrix_formulation():
    """Thousands of random orientations (any attitude, not only lumbar ranges): the one-pass kernels
    agree with the matrix products and scipy's mean to round-off."""
    from lumbar.pipeline import _frontal_tilt

    rng = np.random.default_rng(11)
    q_up = cv.from_scipy(Rotation.random(5000, random_state=rng))
    q_low = cv.from_scipy(Rotation.random(5000, random_state=rng))
    calib = slice(100, 400)
    angles, sagittal, frontal = _matrix_reference(q_up, q_low, calib)
    np.testing.assert_allclose(K.lumbar_angles(q_up, q_low, calib), angles, atol=1e-12)
    np.testing.assert_allclose(K.sagittal_tilt(q_low, calib), sagittal, atol=1e-12)
    np.testing.assert_allclose(_frontal_tilt(q_low, calib), frontal, atol=1e-12)
    absolute = cv.lumbar_angles_from_matrix(np.swapaxes(cv.quat_to_matrix(q_low), -1, -2) @ cv.quat_to_matrix(q_up))
    np.testing.assert_allclose(K.lumbar_angles(q_up, q_low, None), absolute, atol=1e-12)
    r_sb = Rotation.random(random_state=4).as_matrix()
    want = cv.quat_multiply(q_up, np.broadcast_to(cv.matrix_to_quat(r_sb.T), q_up.shape))
    np.testing.assert_array_equal(K.segment_quat(q_up, r_sb), want)
    # strided input, one calibration sample, NaN propagates (a gap is never a number)
    np.testing.assert_allclose(K.lumbar_angles(q_up[::2], q_low[::2], 0)[0], 0.0, atol=1e-12)
    q_nan = q_low.copy()
    q_nan[7] = np.nan
    assert np.isnan(K.lumbar_angles(q_up, q_nan, calib)[7]).all()
    assert np.isnan(K.sagittal_tilt(q_nan, calib)[7]) and np.isnan(_frontal_tilt(q_nan, calib)[7])
    assert np.isfinite(K.lumbar_angles(q_up, q_nan, calib)[8]).all()
