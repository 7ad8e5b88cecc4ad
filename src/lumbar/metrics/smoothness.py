"""Movement smoothness: SPARC and (log) dimensionless jerk (METRICS.md §4.3).

Both follow the reference code of Balasubramanian et al. (github.com/siva82kb/SPARC,
siva82kb/smoothness), which the reference cases SM-01..17 were computed with.
Input is a *speed* profile (non-negative), e.g. |dθ/dt| in rad/s; both measures are
dimensionless, so the speed unit does not matter.
"""
from __future__ import annotations

import numpy as np

from lumbar.errors import ValidationError
from lumbar.metrics._checks import as_1d, check_fs, check_positive

__all__ = ["sparc", "sparc_spectrum", "dimensionless_jerk", "ldlj", "DEFAULT_SPARC_FC_HZ"]

DEFAULT_SPARC_FC_HZ = 10.0  # reference-code default; slow trunk movements (METRICS.md §6.9)


def _speed(speed: np.ndarray | list[float]) -> np.ndarray:
    v = as_1d("speed", speed, min_len=3)
    if not np.isfinite(v).all():
        raise ValidationError("speed contains NaN or infinite values; segment a gap-free movement first")
    return v


def sparc_spectrum(
    speed: np.ndarray, fs: float, *, padlevel: int = 4, fc_hz: float = DEFAULT_SPARC_FC_HZ, amp_th: float = 0.05
) -> tuple[float, np.ndarray, np.ndarray]:
    """SPARC and the selected normalised magnitude spectrum.

    Parameters
    ----------
    speed : (N,) speed profile of one segmented movement (any unit).
    fs : sampling rate, Hz.
    padlevel : zero padding, ``nfft = 2**(ceil(log2 N) + padlevel)``.
    fc_hz : upper frequency limit of the arc (10 Hz default; the 2012 SAL used 20 Hz).
    amp_th : amplitude threshold on the normalised spectrum (0.05; 0 for SAL).

    Returns
    -------
    (sparc, f_sel, mag_sel): the value (dimensionless, ≤ 0) and the selected spectrum (Hz, –).
    """
    v = _speed(speed)
    fs = check_fs(fs)
    check_positive("fc_hz", fc_hz)
    check_positive("amp_th", amp_th, allow_zero=True)
    if int(padlevel) != padlevel or padlevel < 0:
        raise ValidationError(f"padlevel must be a non-negative integer; got {padlevel!r}")
    nfft = int(2 ** (np.ceil(np.log2(v.size)) + padlevel))
    mag = np.abs(np.fft.rfft(v, nfft))
    peak = mag.max()
    if peak <= 0.0:
        raise ValidationError("speed is zero everywhere; SPARC is undefined for no movement")
    mag = mag / peak
    f = np.arange(mag.size) * (fs / nfft)
    sel = f <= fc_hz
    f_sel, m_sel = f[sel], mag[sel]
    # contiguous range from the first to the last bin above threshold; interior dips stay in
    above = np.flatnonzero(m_sel >= amp_th)
    f_sel, m_sel = f_sel[above[0] : above[-1] + 1], m_sel[above[0] : above[-1] + 1]
    if f_sel.size < 2:
        return 0.0, f_sel, m_sel
    df = np.diff(f_sel) / (f_sel[-1] - f_sel[0])
    value = -float(np.sum(np.sqrt(df**2 + np.diff(m_sel) ** 2)))
    return value, f_sel, m_sel


def sparc(
    speed: np.ndarray, fs: float, *, padlevel: int = 4, fc_hz: float = DEFAULT_SPARC_FC_HZ, amp_th: float = 0.05
) -> float:
    """Spectral arc length (SPARC, Balasubramanian et al. 2015); dimensionless, closer to 0 = smoother.

    ``speed`` (N,) is the speed of one segmented movement sampled at ``fs`` Hz. See
    :func:`sparc_spectrum` for the parameters. SAL (2012) is ``sparc(v, fs, fc_hz=20, amp_th=0)``.
    """
    return sparc_spectrum(speed, fs, padlevel=padlevel, fc_hz=fc_hz, amp_th=amp_th)[0]


def dimensionless_jerk(speed: np.ndarray, fs: float) -> float:
    """Signed dimensionless jerk (reference-code convention, METRICS.md §4.3): ≤ 0.

    ``DLJ = −(N·Δt)³ / max|v|² · Σ (Δ²v/Δt²)² · Δt``; duration ``N·Δt``, rectangle sum.
    """
    v = _speed(speed)
    fs = check_fs(fs)
    dt = 1.0 / fs
    vmax = np.max(np.abs(v))
    if vmax <= 0.0:
        raise ValidationError("speed is zero everywhere; the dimensionless jerk is undefined for no movement")
    jerk = np.diff(v, 2) / dt**2
    duration = v.size * dt
    return -float(duration**3 / vmax**2 * np.sum(jerk**2) * dt)


def ldlj(speed: np.ndarray, fs: float) -> float:
    """Log dimensionless jerk ``−ln|DLJ|`` (Balasubramanian et al. 2015); negative, closer to 0 = smoother.

    Depends on ``fs`` and the boundary convention (§6.10), so store ``fs`` with the value.
    """
    return -float(np.log(abs(dimensionless_jerk(speed, fs))))
