"""Segment orientations and lumbar angles from sensor orientations (METRICS.md §2.1, §3.3).

Inputs are sensor orientations from 6D fusion (``lumbar.filters.estimate_orientation``): quaternions
(w, x, y, z) rotating sensor vectors into an earth frame with z up whose heading is arbitrary and
different for every sensor. Calibration (``lumbar.calibration``) gives each sensor's ``r_sb``.

* :func:`segment_quat` — ``R_GB = R_GS · R_SBᵀ``.
* :func:`align_headings` — removes the heading difference of two sensors' earth frames at the
  calibration instant, when both segments face forward (§3.3).
* :func:`lumbar_angles` — flexion, right lateral bending, axial rotation (left +) of the upper segment
  relative to the pelvis, relative to the calibration posture, rad.
* :func:`sagittal_tilt` — a segment's forward tilt from its calibration posture (pelvic tilt, trunk), rad.
* :func:`inclination` — angle of a segment's superior axis from vertical, rad.
* :func:`segment_angular_velocity` — gyro in segment axes, rad/s.
"""
from __future__ import annotations

import numpy as np

from lumbar import conventions as cv
from lumbar.errors import ValidationError

__all__ = [
    "segment_quat",
    "align_headings",
    "lumbar_angles",
    "sagittal_tilt",
    "inclination",
    "segment_angular_velocity",
]


def _quats(name: str, q: np.ndarray) -> np.ndarray:
    a = np.asarray(q, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 4:
        raise ValidationError(f"{name} must have shape (N, 4) (w, x, y, z); got {a.shape}")
    return a


def segment_quat(q_gs: np.ndarray, r_sb: np.ndarray) -> np.ndarray:
    """Segment orientation (N, 4) from sensor orientation (N, 4) and sensor→segment rotation (3, 3)."""
    q_gs = _quats("q_gs", q_gs)
    q_sb_t = cv.matrix_to_quat(np.asarray(r_sb, dtype=np.float64).T)  # segment → sensor
    return cv.quat_multiply(q_gs, np.broadcast_to(q_sb_t, q_gs.shape))


def _heading_of_anterior(q_gb: np.ndarray) -> np.ndarray:
    """Heading (rad) of each segment's anterior axis X projected on the horizontal plane."""
    x_earth = cv.quat_rotate(q_gb, np.array([1.0, 0.0, 0.0]))
    return np.arctan2(x_earth[..., 1], x_earth[..., 0])


def align_headings(q_gb_up: np.ndarray, q_gb_low: np.ndarray, calib_index: int | slice = 0) -> np.ndarray:
    """Rotate the upper segment's earth frame about vertical so both headings agree at calibration.

    Parameters
    ----------
    q_gb_up, q_gb_low : ndarray (N, 4)
        Segment orientations from two independent 6D filters.
    calib_index : int or slice
        Sample(s) of the calibration posture (both segments facing forward); a slice is averaged.

    Returns
    -------
    ndarray (N, 4)
        The upper segment's orientation in the lower sensor's earth frame.
    """
    up, low = _quats("q_gb_up", q_gb_up), _quats("q_gb_low", q_gb_low)
    d = _heading_of_anterior(up[calib_index]) - _heading_of_anterior(low[calib_index])
    d = float(np.angle(np.mean(np.exp(1j * np.atleast_1d(d)))))
    h = np.array([np.cos(-d / 2), 0.0, 0.0, np.sin(-d / 2)])  # rotation by -d about earth z
    return cv.quat_multiply(np.broadcast_to(h, up.shape), up)


def _mean_rotation(q: np.ndarray, index: int | slice) -> np.ndarray:
    sel = np.atleast_2d(q[index])
    return cv.to_scipy(sel).mean().as_matrix()


def lumbar_angles(q_gb_up: np.ndarray, q_gb_low: np.ndarray, calib_index: int | slice | None = 0) -> np.ndarray:
    """Lumbar angles (N, 3), rad: flexion (+ forward), right lateral bending (+), axial rotation (left +).

    ``R_lum = R_GB,lowᵀ · R_GB,up`` decomposed with the intrinsic Z–X′–Y″ sequence, after aligning
    the two earth frames' headings at calibration and expressing the result relative to the calibration
    posture ``R_lum,0 = R_lum(t_cal)ᵀ · R_lum(t)`` (METRICS.md §2.1 project default). With
    ``calib_index=None`` neither is done (inputs must share one earth frame; angles are absolute).
    """
    up, low = _quats("q_gb_up", q_gb_up), _quats("q_gb_low", q_gb_low)
    if up.shape != low.shape:
        raise ValidationError(f"upper and lower orientations differ in length: {up.shape} vs {low.shape}")
    if calib_index is not None:
        up = align_headings(up, low, calib_index)
    r_lum = np.swapaxes(cv.quat_to_matrix(low), -1, -2) @ cv.quat_to_matrix(up)
    if calib_index is not None:
        r0 = _mean_rotation(cv.matrix_to_quat(r_lum), calib_index)
        r_lum = r0.T @ r_lum
    return cv.lumbar_angles_from_matrix(r_lum)


def sagittal_tilt(q_gb: np.ndarray, calib_index: int | slice | None = 0) -> np.ndarray:
    """Forward (anterior) tilt of a segment in its own sagittal plane, rad, (N,).

    The angle of the segment's superior axis Y from vertical, measured in the vertical plane that
    contains its anterior direction ``f = normalize(ẑ × Z)`` (Z, the mediolateral axis, stays
    horizontal in sagittal motion), positive forward. Turning about the vertical does not change it.
    For the pelvis this is anterior pelvic tilt; for the upper sensor, trunk flexion. With
    ``calib_index`` the value at the calibration posture is subtracted.
    """
    q = _quats("q_gb", q_gb)
    r = cv.quat_to_matrix(q)
    y_e, z_e = r[:, :, 1], r[:, :, 2]
    f = np.cross(np.array([0.0, 0.0, 1.0]), z_e)
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    tilt = np.arctan2(np.sum(y_e * f, axis=1), y_e[:, 2])
    if calib_index is not None:
        tilt = tilt - float(np.mean(np.atleast_1d(tilt[calib_index])))
    return tilt


def inclination(q_gb: np.ndarray) -> np.ndarray:
    """Angle between the segment's superior axis (Y) and the vertical, rad, (N,)."""
    q = _quats("q_gb", q_gb)
    y_earth = cv.quat_rotate(q, np.array([0.0, 1.0, 0.0]))
    return np.arccos(np.clip(y_earth[:, 2], -1.0, 1.0))


def segment_angular_velocity(gyro: np.ndarray, r_sb: np.ndarray, bias_rads: np.ndarray | None = None) -> np.ndarray:
    """Angular velocity in segment axes (N, 3), rad/s: ``ω_B = R_SB (ω_S − b)``."""
    g = np.asarray(gyro, dtype=np.float64)
    if bias_rads is not None:
        g = g - np.asarray(bias_rads, dtype=np.float64)
    return g @ np.asarray(r_sb, dtype=np.float64).T
