"""Validation at the public boundary of :mod:`lumbar.filters` (kernels never validate).

Messages follow one format: what is wrong with which parameter, what is allowed, what was
received, and, for unit mistakes, what the user probably meant.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from lumbar._validate import check_option, check_positive, check_rate
from lumbar.errors import ValidationError

__all__ = ["check_option", "check_positive", "check_rate_hz", "as_samples", "check_units"]

STANDARD_G = 9.80665  # m/s²


def check_rate_hz(rate_hz: Any) -> float:
    """A finite, positive sampling rate in Hz."""
    return check_rate(rate_hz, "rate_hz")


def as_samples(name: str, x: Any, *, n: int | None = None) -> np.ndarray:
    """``x`` as a C-contiguous float64 array (N, 3) without NaN/inf.

    A single sample of shape (3,) is accepted and returned as (1, 3).
    """
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a numeric array of shape (N, 3); got {type(x).__name__}") from None
    if a.ndim == 1 and a.shape[0] == 3:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != 3:
        raise ValidationError(
            f"{name} must have shape (N, 3) (one row per sample, columns x, y, z); got shape {a.shape}"
        )
    if n is not None and a.shape[0] != n:
        raise ValidationError(f"acc and gyr must have the same number of samples; got {n} and {a.shape[0]} ({name})")
    bad = ~np.isfinite(a)
    if bad.any():
        first = int(np.argwhere(bad.any(axis=1))[0, 0])
        raise ValidationError(
            f"{name} contains NaN or infinite values ({int(bad.any(axis=1).sum())} samples, the first at index "
            f"{first}); fill or cut gaps before estimating orientation"
        )
    return np.ascontiguousarray(a)


def check_units(acc: np.ndarray, gyr: np.ndarray) -> None:
    """Catch the two common unit mistakes: acc in g instead of m/s², gyr in deg/s instead of rad/s."""
    if acc.shape[0] == 0:
        return
    acc_norm = float(np.mean(np.sqrt(np.einsum("ij,ij->i", acc, acc))))
    if 0.5 < acc_norm < 2.0:
        raise ValidationError(
            f"acc looks like it is in g, not m/s²: its mean magnitude is {acc_norm:.3f} (gravity alone is "
            f"{STANDARD_G} m/s²); multiply by {STANDARD_G} before calling"
        )
    if acc_norm != 0.0 and not (2.0 <= acc_norm <= 50.0):
        raise ValidationError(
            f"acc must be in m/s² with a mean magnitude near gravity ({STANDARD_G} m/s²); its mean magnitude is "
            f"{acc_norm:.4g}"
        )
    # 35 rad/s is 2000 deg/s, the largest full scale of common MEMS gyroscopes
    gyr_max = float(np.max(np.abs(gyr)))
    if gyr_max > 35.0:
        raise ValidationError(
            f"gyr looks like it is in deg/s, not rad/s: its largest value is {gyr_max:.1f} (2000 deg/s is 34.9 "
            f"rad/s); multiply by π/180 before calling"
        )
