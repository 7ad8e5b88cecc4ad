"""Parameter checks shared by the public functions of every subpackage (filters, metrics, …).

A caller mistake raises :class:`lumbar.errors.ValidationError` whose message names the parameter,
what is allowed and what was received. Subpackages add their own array checks on top
(``lumbar.filters._checks``, ``lumbar.metrics._checks``).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from lumbar.errors import ValidationError

__all__ = ["check_option", "check_positive", "check_rate"]


def check_option(name: str, value: Any, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed``; otherwise raise :class:`ValidationError`."""
    if not isinstance(value, str) or value not in allowed:
        raise ValidationError(f"{name} must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}")
    return value


def check_positive(name: str, value: Any, *, allow_zero: bool = False, allow_inf: bool = False) -> float:
    """A positive (or, with ``allow_zero``, non-negative) float, finite unless ``allow_inf``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a number; got {value!r}") from None
    ok = (v >= 0.0 if allow_zero else v > 0.0) and (allow_inf or math.isfinite(v)) and not math.isnan(v)
    if not ok:
        allowed = "≥ 0" if allow_zero else "> 0"
        raise ValidationError(f"{name} must be {allowed}{'' if allow_inf else ' and finite'}; got {value!r}")
    return v


def check_rate(value: Any, name: str = "rate_hz") -> float:
    """A finite, positive sampling rate, Hz (samples per second)."""
    try:
        r = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a positive sampling rate in Hz (samples per second); "
                              f"got {value!r}") from None
    if not math.isfinite(r) or r <= 0.0:
        raise ValidationError(f"{name} must be a positive, finite sampling rate in Hz; got {value!r}")
    return r
