"""Smooth analytic time profiles with exact derivatives (as :class:`~lumbar.simulate.jets.Jet`).

* :func:`min_jerk` — the minimum-jerk ramp 10τ³ − 15τ⁴ + 6τ⁵ (Flash & Hogan 1985), the
  classic model of a smooth point-to-point human movement: zero velocity and acceleration
  at both ends.
* :class:`PulseTrain` — repetitions of *rise → hold → fall* built from minimum-jerk ramps.
* :class:`SumOfSines` — band-limited random signals (postural sway) as a sum of sinusoids
  with random phases; analytic, so derivatives are exact and any time can be evaluated.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lumbar.simulate.jets import Jet

__all__ = ["min_jerk", "PulseTrain", "SumOfSines", "Tabulated", "sway_spectrum_amplitudes"]


def min_jerk(tau: np.ndarray, duration: np.ndarray | float) -> Jet:
    """Minimum-jerk ramp from 0 to 1 over ``duration`` s, clamped outside [0, duration].

    Parameters
    ----------
    tau : ndarray, shape (N,)
        Time since the start of the ramp, s.
    duration : float or ndarray, shape (N,)
        Ramp duration, s (> 0).

    Returns
    -------
    Jet
        Value (–), first (1/s) and second (1/s²) derivatives.
    """
    duration = np.asarray(duration, dtype=np.float64)
    x = np.clip(tau / duration, 0.0, 1.0)
    inside = (tau > 0) & (tau < duration)
    x2 = x * x
    v = x2 * x * (10.0 - 15.0 * x + 6.0 * x2)
    d = np.where(inside, 30.0 * x2 * (1.0 - x) ** 2 / duration, 0.0)
    dd = np.where(inside, 60.0 * x * (1.0 - x) * (1.0 - 2.0 * x) / duration**2, 0.0)
    return Jet(v, d, dd)


@dataclass(frozen=True)
class PulseTrain:
    """Non-overlapping pulses: 0 → ``amp`` (rise) → hold → 0 (fall), one per repetition.

    Within the rise phase the ramp may occupy only a window ``rise_window = (a, b)`` (fractions
    of the rise duration): that is how one channel leads or lags another inside the same
    phase (e.g. lumbar flexion leading pelvic rotation). Likewise ``fall_window``.

    Parameters
    ----------
    t0 : ndarray, shape (K,)
        Start of each pulse, s.
    rise, hold, fall : ndarray, shape (K,)
        Phase durations, s (rise, fall > 0; hold ≥ 0).
    amp : ndarray, shape (K,)
        Plateau value of each pulse (any unit).
    rise_window, fall_window : (float, float)
        Active fraction of the rise / fall phase.
    """

    t0: np.ndarray
    rise: np.ndarray
    hold: np.ndarray
    fall: np.ndarray
    amp: np.ndarray
    rise_window: tuple[float, float] = (0.0, 1.0)
    fall_window: tuple[float, float] = (0.0, 1.0)

    @property
    def t_end(self) -> np.ndarray:
        return self.t0 + self.rise + self.hold + self.fall

    def __call__(self, t: np.ndarray) -> Jet:
        t = np.asarray(t, dtype=np.float64)
        out = Jet.zeros(t.shape[0])
        if len(self.t0) == 0:
            return out
        t0 = np.asarray(self.t0, dtype=np.float64)
        k = np.searchsorted(t0, t, side="right") - 1  # pulse whose start precedes t
        valid = k >= 0
        kk = np.where(valid, k, 0)
        ra, rb = self.rise_window
        fa, fb = self.fall_window
        rise = np.asarray(self.rise)[kk]
        fall = np.asarray(self.fall)[kk]
        amp = np.where(valid, np.asarray(self.amp)[kk], 0.0)
        tau = t - t0[kk]
        up = min_jerk(tau - ra * rise, (rb - ra) * rise)
        t_fall = rise + np.asarray(self.hold)[kk]
        down = min_jerk(tau - t_fall - fa * fall, (fb - fa) * fall)
        shape = up - down  # rises to 1, then falls back to 0 (both ramps end at 1)
        return Jet(shape.v * amp, shape.d * amp, shape.dd * amp)


def sway_spectrum_amplitudes(
    freqs_hz: np.ndarray, corner_hz: float, order: int = 3
) -> np.ndarray:
    """Relative amplitude per component for a low-pass sway spectrum.

    The angle PSD is ``S(f) ∝ 1 / (1 + (f/f_c)²)^order``. With order 3 the acceleration
    spectrum ``(2πf)⁴ S(f)`` falls as f⁻² above f_c, so most of the power of both the
    sway angle and the trunk acceleration lies below about 1 Hz, as in measured quiet
    standing.
    """
    return 1.0 / (1.0 + (freqs_hz / corner_hz) ** 2) ** (order / 2.0)


@dataclass(frozen=True)
class SumOfSines:
    """x(t) = Σ a_k sin(2π f_k t + φ_k): a smooth random signal with a chosen spectrum.

    Parameters
    ----------
    freqs_hz, amps, phases : ndarray, shape (K,)
        Frequencies (Hz), amplitudes (signal unit) and phases (rad).
    """

    freqs_hz: np.ndarray
    amps: np.ndarray
    phases: np.ndarray

    @staticmethod
    def random(
        rng: np.random.Generator,
        rms: float,
        corner_hz: float,
        f_lo: float = 0.02,
        f_hi: float = 4.0,
        n: int = 48,
    ) -> "SumOfSines":
        """A random realisation with RMS ``rms`` and the spectrum of :func:`sway_spectrum_amplitudes`.

        Frequencies are log-spaced over [f_lo, f_hi] with a random jitter so the signal
        does not repeat over any practical recording length; each component carries the
        power of its band, so the spectrum does not depend on ``n``.
        """
        edges = np.geomspace(f_lo, f_hi, n + 1)
        width = np.diff(edges)
        f = edges[:-1] + width * rng.uniform(0.2, 0.8, n)
        power = sway_spectrum_amplitudes(f, corner_hz) ** 2 * width
        amps = np.sqrt(2.0 * power / power.sum()) * rms  # RMS of a·sin is a/√2
        phases = rng.uniform(0.0, 2.0 * np.pi, n)
        return SumOfSines(f, amps, phases)

    def scaled(self, factor: float) -> "SumOfSines":
        return SumOfSines(self.freqs_hz, self.amps * factor, self.phases)

    def __call__(self, t: np.ndarray) -> Jet:
        t = np.asarray(t, dtype=np.float64)
        v = np.zeros(t.shape[0])
        d = np.zeros(t.shape[0])
        dd = np.zeros(t.shape[0])
        for f, a, ph in zip(self.freqs_hz, self.amps, self.phases):
            om = 2.0 * np.pi * f
            x = om * t + ph
            s = np.sin(x)
            c = np.cos(x)
            v += a * s
            d += (a * om) * c
            dd -= (a * om * om) * s
        return Jet(v, d, dd)


class Tabulated:
    """A smooth signal tabulated once on a uniform grid and read back by quintic Hermite interpolation.

    Evaluating a sum of many sinusoids at every sample of every sensor is the costliest part
    of a long simulation. The source is evaluated (value and two exact derivatives) once on
    a grid of step ``step_s``; between nodes a quintic polynomial matches value, slope and
    curvature at both ends. The interpolant *is* the trajectory from then on, and its own
    derivatives are returned, so it stays exactly consistent (C², like the source). For sway
    below 4 Hz and a 10-ms step the interpolant differs from the sum of sines by < 1e-9 of
    its amplitude.

    Parameters
    ----------
    source : callable
        ``source(t) -> Jet``.
    t_end : float
        The grid covers [−1 s, t_end + 1 s]; times outside are evaluated from the source directly.
    step_s : float
        Grid step, s.
    """

    def __init__(self, source, t_end: float, step_s: float = 0.01) -> None:
        self.source = source
        self.h = float(step_s)
        self.t0 = -1.0
        n = int(np.ceil((t_end + 2.0) / self.h)) + 2
        tg = self.t0 + self.h * np.arange(n)
        j = source(tg)
        p, m, a = j.v, j.d * self.h, j.dd * self.h * self.h  # derivatives in grid units
        dp = p[1:] - p[:-1]
        m0, m1, a0, a1 = m[:-1], m[1:], a[:-1], a[1:]
        self.c = np.stack(
            [
                p[:-1],
                m0,
                0.5 * a0,
                10 * dp - 6 * m0 - 4 * m1 - 0.5 * (3 * a0 - a1),
                -15 * dp + 8 * m0 + 7 * m1 + 0.5 * (3 * a0 - 2 * a1),
                6 * dp - 3 * (m0 + m1) + 0.5 * (a1 - a0),
            ],
            axis=1,
        )  # (n−1, 6) coefficients in the local variable s ∈ [0, 1]

    def __call__(self, t: np.ndarray) -> Jet:
        t = np.asarray(t, dtype=np.float64)
        x = (t - self.t0) / self.h
        k = np.floor(x).astype(np.int64)
        inside = (k >= 0) & (k < self.c.shape[0])
        kk = np.clip(k, 0, self.c.shape[0] - 1)
        s = x - kk
        c = self.c[kk]
        v = c[:, 0] + s * (c[:, 1] + s * (c[:, 2] + s * (c[:, 3] + s * (c[:, 4] + s * c[:, 5]))))
        d = c[:, 1] + s * (2 * c[:, 2] + s * (3 * c[:, 3] + s * (4 * c[:, 4] + s * 5 * c[:, 5])))
        dd = 2 * c[:, 2] + s * (6 * c[:, 3] + s * (12 * c[:, 4] + s * 20 * c[:, 5]))
        out = Jet(v, d / self.h, dd / (self.h * self.h))
        if not np.all(inside):
            direct = self.source(t[~inside])
            for arr, src in ((out.v, direct.v), (out.d, direct.d), (out.dd, direct.dd)):
                arr[~inside] = src
        return out
