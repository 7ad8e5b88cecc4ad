"""Compiled DTW kernel (imported lazily by :func:`lumbar.metrics.repetitions.dtw_distance`)."""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def dtw(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """Classic DTW, |a−b| cost, steps (1,0), (0,1), (1,1) of weight 1; (distance, path length)."""
    n, m = a.size, b.size
    d = np.full((n + 1, m + 1), np.inf)
    d[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            c = abs(a[i - 1] - b[j - 1])
            d[i, j] = c + min(d[i - 1, j], d[i, j - 1], d[i - 1, j - 1])
    # backtrack for the warping-path length (ties: prefer the diagonal)
    i, j, steps = n, m, 1
    while i > 1 or j > 1:
        if i == 1:
            j -= 1
        elif j == 1:
            i -= 1
        else:
            diag, up, left = d[i - 1, j - 1], d[i - 1, j], d[i, j - 1]
            if diag <= up and diag <= left:
                i -= 1
                j -= 1
            elif up <= left:
                i -= 1
            else:
                j -= 1
        steps += 1
    return d[n, m], steps
