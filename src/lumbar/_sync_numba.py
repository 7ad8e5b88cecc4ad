"""Numba kernel of :func:`lumbar.sync.to_common_grid`: one sensor onto the grid in one pass.

The same formulas in the same order as the numpy expressions it replaces (bracketing samples by
``searchsorted(side="right")``, linear weights clipped to [0, 1], differences taken in the input's
precision), so the results are identical; it walks the two sorted time columns together instead of
gathering rows several times. Compiled through the project's one numba entry point
(:data:`lumbar.filters._numba.jit`: nopython, nogil, on-disk cache, no fastmath); import lazily.
"""
from __future__ import annotations

from lumbar.filters._numba import jit

__all__ = ["resample_run"]


@jit
def resample_run(t, acc, gyro, dev, flags_in, grid, max_dt, gap_flags, interp_flag, gap_before, sat_mask,  # noqa: ANN001, ANN201
                 acc_out, gyro_out, dev_out, flags_out):
    """Linear interpolation of one sensor at the grid times.

    t : (n,) sample times, s, increasing (n ≥ 2); acc, gyro : (n, 3); dev : (n,) device time, s;
    flags_in : (n,) uint8. grid : (m,) s, increasing. A grid point lies in a gap when its bracketing
    samples are more than ``max_dt`` s apart or the later one carries ``gap_before``; then it gets
    ``gap_flags``. Points not within 1 µs of a sample get ``interp_flag``; the bracketing samples'
    ``sat_mask`` bits carry over. Outputs (m, 3), (m, 3), (m,), (m,) are preallocated.
    """
    n = t.shape[0]
    k = 0  # number of samples at or before the grid point (searchsorted, side="right")
    for i in range(grid.shape[0]):
        g = grid[i]
        while k < n and t[k] <= g:
            k += 1
        j = min(max(k - 1, 0), n - 2)
        t0, t1 = t[j], t[j + 1]
        dt = t1 - t0
        w = (g - t0) / (dt if t1 > t0 else 1.0)
        w = min(max(w, 0.0), 1.0)
        for c in range(3):
            a0 = acc[j, c]
            acc_out[i, c] = a0 + (acc[j + 1, c] - a0) * w
            g0 = gyro[j, c]
            gyro_out[i, c] = g0 + (gyro[j + 1, c] - g0) * w
        dev_out[i] = dev[j] + (dev[j + 1] - dev[j]) * w
        at1 = abs(g - t1) < 1e-6
        f = 0 if (abs(g - t0) < 1e-6 or at1) else interp_flag
        f1 = flags_in[j + 1]
        if (dt > max_dt or (f1 & gap_before) != 0) and not at1:
            f |= gap_flags
        flags_out[i] = f | ((flags_in[j] | f1) & sat_mask)
