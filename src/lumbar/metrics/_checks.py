"""Input validation at the public boundary of :mod:`lumbar.metrics`.

Two kinds of problem are kept apart on purpose:

* a *caller* mistake (wrong shape, unknown option, non-positive rate) raises
  :class:`lumbar.errors.ValidationError` naming the parameter, what is allowed and what was received;
* a *data* problem (too short, all NaN, a gap inside a repetition) is not an exception: the
  result object comes back with ``valid=False`` and a ``reason`` (see :mod:`lumbar.metrics.results`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from lumbar._validate import check_option, check_positive, check_rate
from lumbar.errors import ValidationError

__all__ = ["check_fs", "check_option", "check_positive", "as_1d", "as_2d", "data_problem"]


def check_fs(fs: Any, name: str = "fs") -> float:
    """A finite, positive sampling rate in Hz."""
    return check_rate(fs, name)


def as_1d(name: str, x: Any, *, n: int | None = None, min_len: int = 0) -> np.ndarray:
    """``x`` as a float64 vector (N,). NaN is allowed (callers decide what a gap means)."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a numeric 1-D array; got {type(x).__name__}") from None
    if a.ndim != 1:
        raise ValidationError(f"{name} must be a 1-D array of samples; got shape {a.shape}")
    if n is not None and a.shape[0] != n:
        raise ValidationError(f"{name} must have {n} samples (as the other signal); got {a.shape[0]}")
    if a.shape[0] < min_len:
        raise ValidationError(f"{name} must have at least {min_len} samples; got {a.shape[0]}")
    return a


def as_2d(name: str, x: Any, ncols: int, *, n: int | None = None) -> np.ndarray:
    """``x`` as a float64 array (N, ncols)."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a numeric array of shape (N, {ncols}); got {type(x).__name__}") from None
    if a.ndim != 2 or a.shape[1] != ncols:
        raise ValidationError(f"{name} must have shape (N, {ncols}); got shape {a.shape}")
    if n is not None and a.shape[0] != n:
        raise ValidationError(f"{name} must have {n} samples (as the other signal); got {a.shape[0]}")
    return a


def data_problem(x: np.ndarray, *, fs: float, min_duration_s: float, what: str) -> str:
    """Reason why ``x`` (N,) or (N, k) cannot give a trustworthy number, or ``""`` if it can."""
    n = x.shape[0]
    if n == 0:
        return f"{what}: no samples"
    finite = np.isfinite(x) if x.ndim == 1 else np.isfinite(x).all(axis=1)
    if not finite.any():
        return f"{what}: all samples are NaN"
    if not finite.all():
        bad = np.flatnonzero(~finite)
        return f"{what}: {bad.size} missing (NaN) samples, the first at {bad[0] / fs:.3f} s; cut or fill the gap first"
    if n / fs < min_duration_s:
        return f"{what}: too short ({n / fs:.3f} s; at least {min_duration_s:g} s needed)"
    return ""
