"""IIR filtering in second-order sections: streaming, zero-phase, derivatives, resampling.

Three layers, as everywhere in :mod:`lumbar.filters`:

* **design** — a Butterworth filter designed once at construction by
  ``scipy.signal.butter(..., output="sos")`` from ``kind``, ``order``, ``cutoff_hz`` and
  ``rate_hz``;
* **coefficients** — the (S, 6) second-order sections, read-only (:attr:`SOSFilter.sos`);
* **state** — the (S, 2, C) delay registers (direct form II transposed), readable and
  assignable (:attr:`SOSFilter.state`), reset by :meth:`SOSFilter.reset`. Processing a
  recording in chunks gives the one-pass result bit for bit.

The numba kernels (:mod:`lumbar.filters._iir_numba`) and scipy are imported on first use, so
importing this module is cheap.

Signals are float64 arrays of shape (N, C): one row per sample, one column per channel; a
1-D array (N,) is one channel and comes back 1-D.

NaN and inf are not rejected: they propagate. In a streaming filter one NaN sample enters
the state and makes every later output of that channel NaN until :meth:`SOSFilter.reset`
(or a state assignment); in :meth:`SOSFilter.filtfilt` one NaN makes the whole channel NaN.
Fill or cut gaps first if that is not what you want.
"""
from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

from lumbar.errors import ValidationError
from lumbar.filters import _checks

__all__ = ["KINDS", "INITIAL", "SOSFilter", "derivative", "derivative_step", "resample"]

#: Filter kinds accepted by :class:`SOSFilter`.
KINDS = ("lowpass", "highpass", "bandpass")
#: Initial conditions accepted by :class:`SOSFilter`.
INITIAL = ("steady", "zero")

_K = None  # the kernel module, once imported


def _kernels():  # noqa: ANN202
    global _K
    if _K is None:
        from lumbar.filters import _iir_numba

        _K = _iir_numba
    return _K


# --------------------------------------------------------------------------------------
# validation helpers (one message format: parameter, allowed, received)
# --------------------------------------------------------------------------------------


def _check_order(order: Any) -> int:
    if isinstance(order, bool):
        raise ValidationError(f"order must be an integer ≥ 1; got {order!r}")
    try:
        n = operator.index(order)
    except TypeError:
        raise ValidationError(f"order must be an integer ≥ 1; got {order!r}") from None
    if n < 1:
        raise ValidationError(f"order must be an integer ≥ 1; got {order!r}")
    return n


def _check_cutoff(kind: str, cutoff_hz: Any, rate_hz: float) -> tuple[float, ...]:
    """Cut-off(s) in Hz, each in (0, Nyquist); a pair low < high for a band-pass."""
    nyq = rate_hz / 2.0
    if kind == "bandpass":
        try:
            low, high = (float(c) for c in cutoff_hz)
        except (TypeError, ValueError):
            raise ValidationError(
                f"cutoff_hz of a bandpass must be a pair (low_hz, high_hz) with 0 < low < high < {nyq:g} Hz "
                f"(Nyquist at rate_hz = {rate_hz:g}); got {cutoff_hz!r}"
            ) from None
        if not (0.0 < low < high < nyq):
            raise ValidationError(
                f"cutoff_hz of a bandpass must satisfy 0 < low < high < {nyq:g} Hz (Nyquist at rate_hz = "
                f"{rate_hz:g}); got {cutoff_hz!r}"
            )
        return low, high
    try:
        fc = float(cutoff_hz)
    except (TypeError, ValueError):
        raise ValidationError(
            f"cutoff_hz of a {kind} must be one number in Hz, 0 < cutoff_hz < {nyq:g} (Nyquist at rate_hz = "
            f"{rate_hz:g}); got {cutoff_hz!r}"
        ) from None
    if not (0.0 < fc < nyq):
        raise ValidationError(
            f"cutoff_hz must be above 0 and below the Nyquist frequency, {nyq:g} Hz at rate_hz = {rate_hz:g}; "
            f"got {cutoff_hz!r}"
        )
    return (fc,)


def _as_signal(name: str, x: Any, n_channels: int | None = None) -> tuple[np.ndarray, bool]:
    """``x`` as a C-contiguous float64 (N, C) array, and whether it was 1-D.

    NaN and inf are allowed (they propagate; see the module docstring).
    """
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(
            f"{name} must be a numeric array of shape (N,) or (N, C); got {type(x).__name__}"
        ) from None
    was_1d = a.ndim == 1
    if was_1d:
        a = a[:, None]
    if a.ndim != 2:
        raise ValidationError(
            f"{name} must have shape (N,) or (N, C) (one row per sample, one column per channel); got shape "
            f"{np.shape(x)}"
        )
    if n_channels is not None and a.shape[1] != n_channels:
        raise ValidationError(
            f"{name} must have {n_channels} channel(s) (columns), as the filter was built with "
            f"n_channels={n_channels}; got shape {np.shape(x)}"
        )
    return np.ascontiguousarray(a), was_1d


# --------------------------------------------------------------------------------------
# the filter
# --------------------------------------------------------------------------------------


class SOSFilter:
    """A Butterworth IIR filter in second-order sections, for live and offline use.

    Parameters
    ----------
    kind : {"lowpass", "highpass", "bandpass"}
        Response type.
    order : int
        Order of the Butterworth design, ≥ 1. A band-pass of order n has 2n poles (n
        sections). :meth:`filtfilt` runs the filter twice, doubling the attenuation in dB.
    cutoff_hz : float or (float, float), Hz
        The −3 dB frequency (of one pass), strictly between 0 and the Nyquist frequency
        ``rate_hz / 2``; for ``"bandpass"`` the pair ``(low_hz, high_hz)``.
    rate_hz : float
        Sampling rate of the signals, Hz.
    n_channels : int
        Number of channels (columns) of the streaming signal: the state has shape
        (S, 2, n_channels). Default 1 (a 1-D signal may then be passed). :meth:`filtfilt`
        accepts any number of channels.
    initial : {"steady", "zero"}
        Initial conditions of the streaming filter. ``"steady"`` (default): on the first
        sample after construction or :meth:`reset`, the state is set to the steady state of
        a constant input equal to that sample (``scipy.signal.sosfilt_zi`` scaled per
        channel), so a live filter does not start with a transient (a low-pass of a signal
        with a gravity offset does not ramp up from zero; a high-pass does not ring).
        ``"zero"``: all delay registers zero, as ``scipy.signal.sosfilt`` without ``zi``.

    Attributes
    ----------
    sos : ndarray, shape (S, 6)
        The sections ``(b0, b1, b2, 1, a1, a2)`` (a copy).

    Notes
    -----
    Processing a recording in consecutive chunks with :meth:`process` gives the same result
    as one call on the whole recording, bit for bit, and equals ``scipy.signal.sosfilt``
    with the same initial state. NaN and inf propagate (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> acc = np.tile([0.0, 0.0, 9.81], (400, 1))       # (N, 3), m/s²
    >>> lp = SOSFilter("lowpass", 4, 10.0, 200.0, n_channels=3)
    >>> live = np.concatenate([lp.process(acc[:150]), lp.process(acc[150:])])  # state carried
    >>> offline = lp.filtfilt(acc)                      # zero phase; streaming state untouched
    >>> bool(np.allclose(live, acc) and np.allclose(offline, acc))  # no start-up transient
    True
    """

    def __init__(
        self,
        kind: str,
        order: int,
        cutoff_hz: float | tuple[float, float],
        rate_hz: float,
        *,
        n_channels: int = 1,
        initial: str = "steady",
    ) -> None:
        self.kind = _checks.check_option("kind", kind, KINDS)
        self.order = _check_order(order)
        self.rate_hz = _checks.check_rate_hz(rate_hz)
        self.cutoff_hz: tuple[float, ...] = _check_cutoff(self.kind, cutoff_hz, self.rate_hz)
        if isinstance(n_channels, bool) or not isinstance(n_channels, (int, np.integer)) or n_channels < 1:
            raise ValidationError(f"n_channels must be an integer ≥ 1; got {n_channels!r}")
        self.n_channels = int(n_channels)
        self.initial = _checks.check_option("initial", initial, INITIAL)

        from scipy import signal

        wn = self.cutoff_hz if self.kind == "bandpass" else self.cutoff_hz[0]
        self._sos = np.ascontiguousarray(
            signal.butter(self.order, wn, btype=self.kind, fs=self.rate_hz, output="sos"), dtype=np.float64
        )
        # steady state of a unit step, per section: scaled by the first sample when "steady"
        self._zi_unit = np.ascontiguousarray(signal.sosfilt_zi(self._sos), dtype=np.float64)
        self._state = np.zeros((self._sos.shape[0], 2, self.n_channels))
        self._primed = False
        self.reset()

    # -- coefficients and state
    @property
    def sos(self) -> np.ndarray:
        """A copy of the second-order sections, shape (S, 6)."""
        return self._sos.copy()

    @property
    def state(self) -> np.ndarray:
        """A copy of the state, shape (S, 2, C): direct form II transposed delay registers.

        The layout of ``zi`` in ``scipy.signal.sosfilt(sos, x, axis=0, zi=zi)``. Assign a
        saved copy to continue from it; an assigned state counts as initialised (no
        steady-state start is applied on the next sample).
        """
        return self._state.copy()

    @state.setter
    def state(self, value: np.ndarray) -> None:
        v = np.asarray(value, dtype=np.float64)
        if v.shape != self._state.shape:
            raise ValidationError(f"state of this SOSFilter must have shape {self._state.shape}; got {v.shape}")
        self._state[...] = v
        self._primed = True

    @property
    def initialised(self) -> bool:
        """False until the first sample (or a state assignment) after construction or reset."""
        return self._primed

    def reset(self) -> None:
        """Return to the initial state (zero; ``"steady"`` re-primes on the next sample)."""
        self._state[...] = 0.0
        self._primed = False

    def steady_state(self, x0: np.ndarray) -> np.ndarray:
        """The state of this filter after a constant input ``x0`` for ever.

        Parameters
        ----------
        x0 : array_like, shape (C,) or scalar
            The constant input value per channel.

        Returns
        -------
        ndarray, shape (S, 2, C)
        """
        x0 = np.atleast_1d(np.asarray(x0, dtype=np.float64))
        return np.ascontiguousarray(self._zi_unit[:, :, None] * x0[None, None, :])

    # -- filtering
    def process(self, x: np.ndarray) -> np.ndarray:
        """Filter a chunk causally and advance the state (live use).

        Parameters
        ----------
        x : array_like, shape (N, C) or (N,) when ``n_channels == 1``
            The next N samples, in the signal's unit.

        Returns
        -------
        ndarray, same shape as ``x``
            Filtered samples, in the signal's unit.
        """
        a, was_1d = _as_signal("x", x, self.n_channels)
        out = np.empty_like(a)
        if a.shape[0] == 0:
            return out[:, 0] if was_1d else out
        if not self._primed:
            if self.initial == "steady":
                self._state[...] = self.steady_state(a[0])
            self._primed = True
        _kernels().sos_run(a, self._sos, self._state, out)
        return out[:, 0] if was_1d else out

    def default_padlen(self, n_samples: int) -> int:
        """Padding (samples at each end) used by :meth:`filtfilt` by default.

        Three periods of the lowest cut-off, ``ceil(3 · rate_hz / min(cutoff_hz))``, and at
        least scipy's default ``3 · (2 · S + 1)`` (less one tap per section pair for odd
        orders, as scipy counts them), capped at ``n_samples − 1``.
        """
        n_taps = 2 * self._sos.shape[0] + 1
        n_taps -= min(int((self._sos[:, 2] == 0).sum()), int((self._sos[:, 5] == 0).sum()))
        pad = max(3 * n_taps, int(math.ceil(3.0 * self.rate_hz / min(self.cutoff_hz))))
        return max(0, min(pad, n_samples - 1))

    def filtfilt(self, x: np.ndarray, padlen: int | None = None) -> np.ndarray:
        """Zero-phase (forward–backward) filtering of a whole recording (offline).

        Equals ``scipy.signal.sosfiltfilt(sos, x, axis=0, padtype="odd", padlen=padlen)``:
        the signal is extended at each end by an odd (point-symmetric) reflection of
        ``padlen`` samples, filtered forwards from the steady state of its first sample, then
        backwards from the steady state of the last output, and the padding is cut off. The
        magnitude response is squared (−6 dB at the cut-off), the phase is zero. Does not
        touch the streaming state.

        Parameters
        ----------
        x : array_like, shape (N, C) or (N,)
            The recording, any number of channels.
        padlen : int, optional
            Samples of odd extension at each end, 0 ≤ padlen < N. Default
            :meth:`default_padlen`: three periods of the lowest cut-off. scipy's default
            (``3 · (2 · S + 1)`` samples, 27 for a 4th-order low-pass) is shorter than the
            filter's transient at low cut-offs and leaves a start-up error at the ends of the
            recording, which biases values measured at its first and last samples.

        Returns
        -------
        ndarray, same shape as ``x``
        """
        a, was_1d = _as_signal("x", x)
        n = a.shape[0]
        if padlen is None:
            pad = self.default_padlen(n)
        else:
            if isinstance(padlen, bool) or not isinstance(padlen, (int, np.integer)) or not 0 <= padlen < max(n, 1):
                raise ValidationError(
                    f"padlen must be an integer with 0 ≤ padlen < N = {n} (the number of samples); got {padlen!r}"
                )
            pad = int(padlen)
        if n == 0:
            return a[:, 0].copy() if was_1d else a.copy()
        if pad > 0:
            # odd extension, as scipy's odd_ext: 2·x[0] − x[pad:0:-1] before, 2·x[-1] − x[-2:-pad-2:-1] after
            ext = np.concatenate(
                (2.0 * a[0] - a[pad:0:-1], a, 2.0 * a[-1] - a[-2 : -pad - 2 : -1]), axis=0
            )
        else:
            ext = a.copy()
        k = _kernels()
        state = self.steady_state(ext[0])
        k.sos_run(ext, self._sos, state, ext)  # in place: ext is our own copy
        state = self.steady_state(ext[-1])
        k.sos_run_backward(ext, self._sos, state, ext)
        y = ext[pad : pad + n] if pad > 0 else ext
        y = np.ascontiguousarray(y)
        return y[:, 0] if was_1d else y


# --------------------------------------------------------------------------------------
# derivatives and resampling
# --------------------------------------------------------------------------------------


def derivative(x: np.ndarray, rate_hz: float) -> np.ndarray:
    """Time derivative of a recording (offline): central differences, one-sided at the ends.

    The same as ``np.gradient(x, 1 / rate_hz, axis=0)``: (x[i+1] − x[i−1]) · rate_hz / 2
    inside, first-order one-sided differences at the first and last samples. Zero phase,
    but it amplifies noise: low-pass first (e.g. :meth:`SOSFilter.filtfilt`).

    Parameters
    ----------
    x : array_like, shape (N, C) or (N,), N ≥ 2
        Signal, in its unit.
    rate_hz : float
        Sampling rate, Hz.

    Returns
    -------
    ndarray, same shape as ``x``
        Derivative, in the signal's unit per second.
    """
    rate_hz = _checks.check_rate_hz(rate_hz)
    a, was_1d = _as_signal("x", x)
    if a.shape[0] < 2:
        raise ValidationError(f"x must have at least 2 samples to differentiate; got {a.shape[0]}")
    d = np.gradient(a, 1.0 / rate_hz, axis=0)
    return d[:, 0] if was_1d else d


def derivative_step(
    x: np.ndarray, rate_hz: float, previous: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Causal derivative of a chunk (live use): backward differences, state carried by the caller.

    ``d[i] = (x[i] − x[i−1]) · rate_hz``, where the sample before the chunk's first is
    ``previous`` (the last sample of the previous chunk, as returned by the previous call).
    Chunked calls equal one call on the whole signal. The estimate lags by half a sample
    period (1 / (2 · rate_hz) s) and amplifies noise: low-pass first (e.g. with a streaming
    :class:`SOSFilter`).

    Parameters
    ----------
    x : array_like, shape (N, C) or (N,)
        The next N samples, in the signal's unit.
    rate_hz : float
        Sampling rate, Hz.
    previous : array_like, shape (C,), optional
        The sample before ``x[0]``. None at the start of a stream: the first derivative is
        then 0 (as if the signal had been constant before).

    Returns
    -------
    d : ndarray, same shape as ``x``
        Derivative, in the signal's unit per second.
    previous : ndarray, shape (C,), or None
        The state for the next call: the last sample seen (``previous`` unchanged if N = 0,
        so None if nothing has been seen yet).
    """
    rate_hz = _checks.check_rate_hz(rate_hz)
    a, was_1d = _as_signal("x", x)
    n_ch = a.shape[1]
    if previous is None:
        prev = a[0].copy() if a.shape[0] else None
    else:
        prev = np.asarray(previous, dtype=np.float64).reshape(-1)
        if prev.shape != (n_ch,):
            raise ValidationError(
                f"previous must have shape ({n_ch},), one value per channel of x; got {np.shape(previous)}"
            )
    if a.shape[0] == 0:
        d = np.empty_like(a)
        last = None if prev is None else prev.copy()
    else:
        d = np.diff(a, axis=0, prepend=prev[None, :]) * rate_hz
        last = a[-1].copy()
    return (d[:, 0] if was_1d else d), last


def resample(
    x: np.ndarray, t_s: np.ndarray, new_rate_hz: float, *, antialias: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Resample a recording onto a uniform time grid by linear interpolation (offline).

    When the new rate is below the original rate, the signal is first low-pass filtered at
    zero phase (4th-order Butterworth, :meth:`SOSFilter.filtfilt`) at 0.4 · ``new_rate_hz``
    (80 % of the new Nyquist frequency) so that content above the new Nyquist frequency does
    not fold back (alias). The original rate is taken as the median of 1 / diff(t_s): the
    anti-alias filter assumes nearly uniform sampling (clock jitter is fine, gaps are not).

    Parameters
    ----------
    x : array_like, shape (N, C) or (N,), N ≥ 2
        Signal, in its unit.
    t_s : array_like, shape (N,), s
        Sample times, strictly increasing.
    new_rate_hz : float
        Rate of the output grid, Hz.
    antialias : bool
        Apply the anti-alias low-pass when downsampling. Default True.

    Returns
    -------
    t_new_s : ndarray, shape (M,), s
        ``t_s[0] + k / new_rate_hz`` for every k with ``t_new_s ≤ t_s[-1]``.
    x_new : ndarray, shape (M, C) or (M,)
        Signal at ``t_new_s``, in its unit.
    """
    new_rate_hz = _checks.check_positive("new_rate_hz", new_rate_hz)
    a, was_1d = _as_signal("x", x)
    try:
        t = np.asarray(t_s, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"t_s must be a numeric array of shape (N,), s; got {type(t_s).__name__}") from None
    if t.shape != (a.shape[0],):
        raise ValidationError(f"t_s must have shape ({a.shape[0]},), one time per sample of x; got {t.shape}")
    if a.shape[0] < 2:
        raise ValidationError(f"x must have at least 2 samples to resample; got {a.shape[0]}")
    dt = np.diff(t)
    if not np.all(np.isfinite(t)) or not np.all(dt > 0):
        raise ValidationError("t_s must be finite and strictly increasing (s); got repeated, decreasing or NaN times")
    rate_hz = 1.0 / float(np.median(dt))
    if antialias and new_rate_hz < rate_hz:
        a = SOSFilter("lowpass", 4, 0.4 * new_rate_hz, rate_hz).filtfilt(a)
    # the small tolerance keeps a grid point that lands on t_s[-1] up to rounding
    n_new = int(math.floor((t[-1] - t[0]) * new_rate_hz + 1e-9)) + 1
    t_new = t[0] + np.arange(n_new) / new_rate_hz
    out = np.empty((n_new, a.shape[1]))
    for c in range(a.shape[1]):
        out[:, c] = np.interp(t_new, t, a[:, c])
    return t_new, (out[:, 0] if was_1d else out)
