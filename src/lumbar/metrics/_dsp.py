"""Small signal helpers shared by the metric modules (zero-lag filters, derivatives, time normalisation)."""
from __future__ import annotations

import math

import numpy as np
from scipy import signal

from lumbar.errors import ValidationError
from lumbar.metrics._checks import check_fs, check_positive


def lowpass_zero_lag(x: np.ndarray, fs: float, cutoff_hz: float, order: int = 4) -> np.ndarray:
    """Zero-lag Butterworth low-pass along axis 0 (forward–backward, METRICS.md §0.3).

    ``order`` is the order of the design before it is run forwards and backwards.
    ``x`` (N,) or (N, k); returns the same shape. Edges: odd extension over three periods of the
    cut-off (scipy's default of 3·(2·sections+1) samples leaves a start-up transient that biases
    values at the ends, e.g. the ROM of a first repetition starting at the signal's first sample).
    """
    fs = check_fs(fs)
    cutoff_hz = check_positive("cutoff_hz", cutoff_hz)
    if cutoff_hz >= fs / 2:
        raise ValidationError(
            f"cutoff_hz must be below the Nyquist frequency ({fs / 2:g} Hz at fs = {fs:g} Hz); got {cutoff_hz:g}"
        )
    sos = signal.butter(int(order), cutoff_hz, btype="low", fs=fs, output="sos")
    padlen = min(x.shape[0] - 1, max(3 * (2 * sos.shape[0] + 1), int(math.ceil(3.0 * fs / cutoff_hz))))
    return signal.sosfiltfilt(sos, x, axis=0, padlen=padlen)


def derivative(x: np.ndarray, fs: float) -> np.ndarray:
    """Time derivative along axis 0 by central differences (one-sided at the ends), unit of x per s."""
    return np.gradient(x, 1.0 / fs, axis=0)


def time_normalise(x: np.ndarray, n_points: int = 101) -> np.ndarray:
    """Resample ``x`` (N,) linearly onto ``n_points`` equally spaced points spanning 0–100 %."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 1:
        return np.full(n_points, x[0])
    return np.interp(np.linspace(0.0, 1.0, n_points), np.linspace(0.0, 1.0, x.size), x)


def wrap_pi(a: np.ndarray) -> np.ndarray:
    """Wrap angles (rad) to (−π, π]."""
    return np.pi - np.mod(np.pi - a, 2.0 * np.pi)
