"""Numba kernels of :mod:`lumbar.kinematics` for whole recordings (one pass, no temporaries).

Each kernel fuses what the numpy expressions of :mod:`lumbar.conventions` do in several passes over
(N, 4) arrays — quaternion products, the columns of the rotation matrix, Cardan angles, tilts — with
the same formulas in the same order, so the results agree with them to round-off (bit for bit on
the machines we tried). Compiled through the project's one numba entry point
(:data:`lumbar.filters._numba.jit`: nopython, nogil, on-disk cache, no fastmath); import this module
lazily.

Quaternions are (w, x, y, z), contiguous float64; outputs are preallocated by the caller.
"""
from __future__ import annotations

import math

from lumbar.filters._numba import jit

__all__ = ["quat_multiply_right_run", "lumbar_angles_run", "lumbar_angles_heading_run", "sagittal_tilt_run", "frontal_tilt_run"]


@jit
def quat_multiply_right_run(p, q, out):  # noqa: ANN001, ANN201
    """``out[i] = p[i] ⊗ q`` for p (N, 4) and one quaternion q (4,) (a fixed rotation on the right)."""
    w2, x2, y2, z2 = q[0], q[1], q[2], q[3]
    for i in range(p.shape[0]):
        w1, x1, y1, z1 = p[i, 0], p[i, 1], p[i, 2], p[i, 3]
        out[i, 0] = w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2
        out[i, 1] = w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2
        out[i, 2] = w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2
        out[i, 3] = w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2


@jit
def _lumbar_angles_one(up, low, i, hw, hx, hy, hz, cw, cx, cy, cz, out):  # noqa: ANN001, ANN201
    """Lumbar angles of sample ``i``: ``q0c ⊗ low* ⊗ (h ⊗ up)`` into ``out[i]``."""
    w2, x2, y2, z2 = up[i, 0], up[i, 1], up[i, 2], up[i, 3]
    # a = h ⊗ up
    aw = hw * w2 - hx * x2 - hy * y2 - hz * z2
    ax = hw * x2 + hx * w2 + hy * z2 - hz * y2
    ay = hw * y2 - hx * z2 + hy * w2 + hz * x2
    az = hw * z2 + hx * y2 - hy * x2 + hz * w2
    # b = low* ⊗ a
    lw, lx, ly, lz = low[i, 0], -low[i, 1], -low[i, 2], -low[i, 3]
    bw = lw * aw - lx * ax - ly * ay - lz * az
    bx = lw * ax + lx * aw + ly * az - lz * ay
    by = lw * ay - lx * az + ly * aw + lz * ax
    bz = lw * az + lx * ay - ly * ax + lz * aw
    # q = q0c ⊗ b
    w = cw * bw - cx * bx - cy * by - cz * bz
    x = cw * bx + cx * bw + cy * bz - cz * by
    y = cw * by - cx * bz + cy * bw + cz * bx
    z = cw * bz + cx * by - cy * bx + cz * bw
    s = 2 * (y * z + w * x)  # R32
    if s > 1.0:
        s = 1.0
    elif s < -1.0:
        s = -1.0
    out[i, 0] = -math.atan2(-(2 * (x * y - w * z)), 1 - 2 * (x * x + z * z))
    out[i, 1] = math.asin(s)
    out[i, 2] = math.atan2(-(2 * (x * z - w * y)), 1 - 2 * (x * x + y * y))


@jit
def lumbar_angles_run(up, low, h, q0c, out):  # noqa: ANN001, ANN201
    """Lumbar angles (N, 3) of ``q0c ⊗ low* ⊗ (h ⊗ up)``.

    up, low : (N, 4) segment orientations; h : (4,) heading alignment applied to ``up``;
    q0c : (4,) conjugate of the calibration posture's mean relative rotation (identity for none).
    out : (N, 3) flexion (−α), right lateral bending (β), axial rotation (γ) of the Z–X′–Y″ sequence.
    """
    for i in range(up.shape[0]):
        _lumbar_angles_one(up, low, i, h[0], h[1], h[2], h[3], q0c[0], q0c[1], q0c[2], q0c[3], out)


@jit
def lumbar_angles_heading_run(up, low, h_w, h_z, q0c, out):  # noqa: ANN001, ANN201
    """As :func:`lumbar_angles_run` with a heading alignment per sample: ``h[i] = (h_w[i], 0, 0, h_z[i])``
    (a rotation about earth z), h_w, h_z (N,)."""
    for i in range(up.shape[0]):
        _lumbar_angles_one(up, low, i, h_w[i], 0.0, 0.0, h_z[i], q0c[0], q0c[1], q0c[2], q0c[3], out)


@jit
def sagittal_tilt_run(q, out):  # noqa: ANN001, ANN201
    """Forward tilt (N,) of the segment axis Y in the vertical plane of ``f = ẑ × Z`` (uncalibrated)."""
    for i in range(q.shape[0]):
        w, x, y, z = q[i, 0], q[i, 1], q[i, 2], q[i, 3]
        y0 = 2 * (x * y - w * z)
        y1 = 1 - 2 * (x * x + z * z)
        y2 = 2 * (y * z + w * x)
        z0 = 2 * (x * z + w * y)
        z1 = 2 * (y * z - w * x)
        n = math.sqrt(z0 * z0 + z1 * z1)  # |Z| horizontal, ≤ 1: no overflow to guard (hypot is 10× slower)
        out[i] = math.atan2(y0 * (-z1 / n) + y1 * (z0 / n), y2)


@jit
def frontal_tilt_run(q, out):  # noqa: ANN001, ANN201
    """Lateral tilt (N,) of the segment axis Y toward the horizontal projection of Z (uncalibrated)."""
    for i in range(q.shape[0]):
        w, x, y, z = q[i, 0], q[i, 1], q[i, 2], q[i, 3]
        y0 = 2 * (x * y - w * z)
        y1 = 1 - 2 * (x * x + z * z)
        y2 = 2 * (y * z + w * x)
        z0 = 2 * (x * z + w * y)
        z1 = 2 * (y * z - w * x)
        n = math.sqrt(z0 * z0 + z1 * z1)
        out[i] = math.atan2(y0 * (z0 / n) + y1 * (z1 / n), y2)
