"""Segment orientations and lumbar angles from sensor orientations (METRICS.md §2.1, §3.3).

Inputs are sensor orientations from 6D fusion (``lumbar.filters.estimate_orientation``): quaternions
(w, x, y, z) rotating sensor vectors into an earth frame with z up whose heading is arbitrary and
different for every sensor. Calibration (``lumbar.calibration``) gives each sensor's ``r_sb``.

* :func:`segment_quat` — ``R_GB = R_GS · R_SBᵀ``.
* :func:`align_headings` — removes the heading difference of two sensors' earth frames at the
  calibration instant, when both segments face forward (§3.3).
* :func:`relative_heading` — that heading difference over any windows (rests), to track its drift.
* :func:`lumbar_angles` — flexion, right lateral bending, axial rotation (left +) of the upper segment
  relative to the pelvis, relative to the calibration posture, rad.
* :func:`sagittal_tilt` — a segment's forward tilt from its calibration posture (pelvic tilt, trunk), rad.
* :func:`inclination` — angle of a segment's superior axis from vertical, rad.
* :func:`segment_angular_velocity` — gyro in segment axes, rad/s.
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np

from lumbar import conventions as cv
from lumbar.errors import ValidationError

__all__ = [
    "hip_flexion",
    "side_mean",
    "knee_flexion",
    "working_side",
    "tilt_from",
    "continue_angle",
    "segment_quat",
    "align_headings",
    "heading_axis",
    "relative_heading",
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
    from lumbar import _kinematics_numba as kn

    q_gs = np.ascontiguousarray(_quats("q_gs", q_gs))
    q_sb_t = cv.matrix_to_quat(np.asarray(r_sb, dtype=np.float64).T)  # segment → sensor
    out = np.empty_like(q_gs)
    kn.quat_multiply_right_run(q_gs, q_sb_t, out)  # q_gs ⊗ q_sb_t, as cv.quat_multiply in one pass
    return out


def _heading_of_axis(q_gb: np.ndarray, axis: int) -> np.ndarray:
    """Heading (rad) of a segment axis (0 = X anterior, 1 = Y superior) projected on the horizontal."""
    a = cv.quat_matrix_column(q_gb, axis)
    return np.arctan2(a[..., 1], a[..., 0])


def heading_axis(q_gb_low: np.ndarray, calib_index: int | slice) -> int:
    """The pelvis axis whose heading ties the two earth frames: its most horizontal one at calibration —
    the anterior axis X (0) when upright, the superior axis Y (1) lying prone or on all fours (where X
    points at the floor and has no heading)."""
    x_low = np.atleast_2d(cv.quat_matrix_column(_quats("q_gb_low", q_gb_low)[calib_index], 0))
    return 0 if float(np.mean(np.abs(x_low[:, 2]))) < 0.7071 else 1


def relative_heading(q_gb_up: np.ndarray, q_gb_low: np.ndarray, windows: Sequence[slice], axis: int) -> np.ndarray:
    """Heading of the upper segment's ``axis`` minus the pelvis's, rad, (K,): the circular mean over
    each window (contiguous sample slices). Zero when both face the same way."""
    up, low = _quats("q_gb_up", q_gb_up), _quats("q_gb_low", q_gb_low)
    idx = np.concatenate([np.arange(w.start, w.stop) for w in windows]) if windows else np.zeros(0, int)
    lengths = np.array([w.stop - w.start for w in windows])
    if (lengths < 1).any():
        raise ValidationError("relative_heading: every window needs at least one sample")
    d = _heading_of_axis(up[idx], axis) - _heading_of_axis(low[idx], axis)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)
    return np.angle(np.add.reduceat(np.exp(1j * d), starts)) if idx.size else np.zeros(0)


def _heading_quat(up: np.ndarray, low: np.ndarray, calib_index: int | slice) -> np.ndarray:
    """Rotation (4,) about earth z that brings the upper segment's heading onto the lower one's at
    calibration (their circular mean difference over a slice), by the axis :func:`heading_axis` picks."""
    axis = heading_axis(low, calib_index)
    d = _heading_of_axis(up[calib_index], axis) - _heading_of_axis(low[calib_index], axis)
    d = float(np.angle(np.mean(np.exp(1j * np.atleast_1d(d)))))
    return np.array([np.cos(-d / 2), 0.0, 0.0, np.sin(-d / 2)])  # rotation by -d about earth z


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
    h = _heading_quat(up, low, calib_index)
    return cv.quat_multiply(np.broadcast_to(h, up.shape), up)


def _mean_quat(q: np.ndarray) -> np.ndarray:
    """Mean rotation (chordal L2, scipy's ``Rotation.mean``) of quaternions (M, 4), (4,)."""
    return cv.from_scipy(cv.to_scipy(np.atleast_2d(q)).mean())


def lumbar_angles(q_gb_up: np.ndarray, q_gb_low: np.ndarray, calib_index: int | slice | None = 0, *,
                  heading: np.ndarray | None = None) -> np.ndarray:
    """Lumbar angles (N, 3), rad: flexion (+ forward), right lateral bending (+), axial rotation (left +).

    ``R_lum = R_GB,lowᵀ · R_GB,up`` decomposed with the intrinsic Z–X′–Y″ sequence, after aligning
    the two earth frames' headings at calibration and expressing the result relative to the calibration
    posture ``R_lum,0 = R_lum(t_cal)ᵀ · R_lum(t)`` (METRICS.md §2.1 project default). With
    ``calib_index=None`` neither is done (inputs must share one earth frame; angles are absolute).

    Computed with quaternions (``q_lum = q_low* ⊗ q_up``, Cardan angles from its components, as
    :func:`lumbar.conventions.lumbar_angles_from_quat`) in one compiled pass: the same rotations as
    the matrix products, without forming N matrices.

    ``heading`` (N,) rad, optional: the heading difference of the two earth frames at every sample
    (as :func:`relative_heading` measures it), when it has been tracked through the recording
    (re-zeroed at rests, §3.3); by default it is the one measured at calibration, held constant.
    """
    from lumbar import _kinematics_numba as kn

    up, low = _quats("q_gb_up", q_gb_up), _quats("q_gb_low", q_gb_low)
    if up.shape != low.shape:
        raise ValidationError(f"upper and lower orientations differ in length: {up.shape} vs {low.shape}")
    if heading is not None:
        heading = np.asarray(heading, dtype=np.float64)
        if heading.shape != (up.shape[0],) or not np.isfinite(heading).all():
            raise ValidationError(f"heading must be finite, shape ({up.shape[0]},); got {heading.shape}")
        h_w, h_z = np.cos(-heading / 2), np.sin(-heading / 2)  # rotation by -heading about earth z
    h = q0c = np.array([1.0, 0.0, 0.0, 0.0])
    if calib_index is not None:
        up_c, low_c = np.atleast_2d(up[calib_index]), np.atleast_2d(low[calib_index])
        if heading is None:
            h = _heading_quat(up, low, calib_index)
            h_c = np.broadcast_to(h, up_c.shape)
        else:
            zero = np.zeros_like(np.atleast_1d(h_w[calib_index]))
            h_c = np.stack([np.atleast_1d(h_w[calib_index]), zero, zero, np.atleast_1d(h_z[calib_index])], axis=-1)
        q_cal = cv.quat_multiply(cv.quat_conj(low_c), cv.quat_multiply(h_c, up_c))
        q0c = cv.quat_conj(_mean_quat(q_cal))
    out = np.empty((up.shape[0], 3))
    up, low = np.ascontiguousarray(up), np.ascontiguousarray(low)
    if heading is None:
        run = lambda sl: kn.lumbar_angles_run(up[sl], low[sl], h, q0c, out[sl])  # noqa: E731
    else:
        run = lambda sl: kn.lumbar_angles_heading_run(up[sl], low[sl], h_w[sl], h_z[sl], q0c, out[sl])  # noqa: E731
    _by_blocks(run, up.shape[0])
    return out


#: Samples from which a per-sample kernel is split over the cores (below, thread start-up dominates).
_PARALLEL_MIN = 100_000


def _by_blocks(run: Any, n: int) -> None:
    """``run(slice)`` over [0, n) in one block per core (the kernels release the GIL and each sample is
    independent), or in one piece for short inputs."""
    workers = min(os.cpu_count() or 1, 4)
    if n < _PARALLEL_MIN or workers < 2:
        run(slice(0, n))
        return
    edges = np.linspace(0, n, workers + 1).astype(int)
    with ThreadPoolExecutor(max_workers=workers) as ex:
        list(ex.map(run, [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]))


def sagittal_tilt(q_gb: np.ndarray, calib_index: int | slice | None = 0) -> np.ndarray:
    """Forward (anterior) tilt of a segment in its own sagittal plane, rad, (N,).

    The angle of the segment's superior axis Y from vertical, measured in the vertical plane that
    contains its anterior direction ``f = normalize(ẑ × Z)`` (Z, the mediolateral axis, stays
    horizontal in sagittal motion), positive forward. Turning about the vertical does not change it.
    For the pelvis this is anterior pelvic tilt; for the upper sensor, trunk flexion. With
    ``calib_index`` the value at the calibration posture is subtracted.
    """
    from lumbar import _kinematics_numba as kn

    q = np.ascontiguousarray(_quats("q_gb", q_gb))
    tilt = np.empty(q.shape[0])
    kn.sagittal_tilt_run(q, tilt)
    if calib_index is not None:
        tilt = tilt_from(tilt, float(np.mean(np.atleast_1d(tilt[calib_index]))))
    return tilt


def tilt_from(tilt: np.ndarray, zero: float) -> np.ndarray:
    """Tilts (N,) rad relative to ``zero`` (rad), within (−π, π]. A segment that turns past upside-down
    crosses the ±π seam of the absolute tilt (a shank lying prone starts at ±90° and a knee bend turns it
    90° more); the difference taken across the seam is brought back, and it is left as it is elsewhere."""
    d = np.asarray(tilt, dtype=np.float64) - zero
    seam = np.abs(d) > np.pi
    if seam.any():
        d = np.where(seam, (d + np.pi) % (2.0 * np.pi) - np.pi, d)
    return d


def inclination(q_gb: np.ndarray) -> np.ndarray:
    """Angle between the segment's superior axis (Y) and the vertical, rad, (N,)."""
    q = _quats("q_gb", q_gb)
    y_earth = cv.quat_matrix_column(q, 1)
    return np.arccos(np.clip(y_earth[:, 2], -1.0, 1.0))


def segment_angular_velocity(gyro: np.ndarray, r_sb: np.ndarray, bias_rads: np.ndarray | None = None) -> np.ndarray:
    """Angular velocity in segment axes (N, 3), rad/s: ``ω_B = R_SB (ω_S − b)``."""
    g = np.asarray(gyro, dtype=np.float64)
    if bias_rads is not None:
        g = g - np.asarray(bias_rads, dtype=np.float64)
    return g @ np.asarray(r_sb, dtype=np.float64).T


def hip_flexion(pelvic_tilt: np.ndarray, thigh_tilts: Sequence[np.ndarray]) -> np.ndarray:
    """Mean flexion of the hips, rad, (N,): the pelvis's anterior tilt minus each thigh's forward tilt (all
    sagittal tilts, rad, (N,), relative to the same posture), averaged over the thighs given; where one side
    has a gap (NaN) the other side's value stands, NaN where all have one (``docs/conventions.md``)."""
    return side_mean([np.asarray(pelvic_tilt, dtype=np.float64) - np.asarray(th, dtype=np.float64)
                      for th in thigh_tilts])


def continue_angle(x: np.ndarray, last: float = math.nan) -> tuple[np.ndarray, float]:
    """The next block of a streamed angle, continuous: each finite sample of ``x`` (N,) rad moved by whole
    turns (2π) to lie within π of the finite one before it, the first of them of ``last`` (the previous
    block's, NaN: none); NaN samples stay NaN. Returns the block and its last finite value (``last`` if none).
    A live tilt measured from a standing zero runs past ±180° when a shank lying prone bends."""
    y = np.array(x, dtype=np.float64)
    ok = np.isfinite(y)
    if not ok.any():
        return y, last
    v = y[ok]
    y[ok] = np.unwrap(np.concatenate([[last], v]))[1:] if math.isfinite(last) else np.unwrap(v)
    return y, float(y[ok][-1])


def knee_flexion(shank_tilt: np.ndarray, thigh_tilt: np.ndarray | None = None) -> np.ndarray:
    """Flexion of one knee, rad, (N,): the shank's forward tilt minus its thigh's, both sagittal tilts (rad,
    (N,)) relative to the same posture (``docs/conventions.md``). Without a thigh sensor the thigh is taken
    as still (it rests on the table in the knee tests) and the shank's tilt alone is the knee's motion."""
    shank = np.asarray(shank_tilt, dtype=np.float64)
    return shank if thigh_tilt is None else shank - np.asarray(thigh_tilt, dtype=np.float64)


def working_side(sides: Sequence[np.ndarray]) -> np.ndarray:
    """One angle from the body's sides (each (N,), rad) where they move in turn (alternating legs): at each
    sample the side farther from zero, with its sign; where one side has a gap (NaN) the other side's value
    stands; NaN where all have one."""
    x = np.stack([np.asarray(v, dtype=np.float64) for v in sides])
    mag = np.where(np.isfinite(x), np.abs(x), -1.0)
    i = np.argmax(mag, axis=0)
    return np.take_along_axis(x, i[None, :], axis=0)[0]


def side_mean(sides: Sequence[np.ndarray]) -> np.ndarray:
    """Mean of one angle over the body's sides (each (N,), rad): where one side has a gap (NaN) the other
    side's value stands; NaN where all have one."""
    x = np.stack([np.asarray(v, dtype=np.float64) for v in sides])
    ok = np.isfinite(x)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(ok, x, 0.0).sum(axis=0) / n, np.nan)
