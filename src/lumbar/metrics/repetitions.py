"""Repetition quality: segmentation, per-repetition kinematics, consistency, trend, symmetry (METRICS.md §4).

Segmentation (algorithm 1 of §4.1, hysteresis / Schmitt trigger) is split into a stateful core so the
offline analysis and the live rep counter run the *same* code:

* :func:`hysteresis_events` — up/down threshold crossings of one chunk, given the state carried from
  the previous chunk (an ``int``: −1 armed, +1 inside an event, 0 not armed yet);
* :func:`repetition_bounds` — start/peak/end of one event from the samples around it;
* :func:`repetition_metrics` — the per-repetition numbers, from a window of samples only.

:func:`segment_repetitions` applies them to a whole trial; :class:`RepetitionSegmenter` applies them
chunk by chunk and, on the same (unfiltered) samples and thresholds, gives identical repetitions.

Angles in rad, angular velocity in rad/s, times in s.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
from scipy import ndimage, stats

from lumbar.errors import ValidationError
from lumbar.metrics._checks import as_1d, as_2d, check_fs, check_positive
from lumbar.metrics._dsp import derivative, lowpass_zero_lag, time_normalise
from lumbar.metrics.results import Consistency, Repetition, RepetitionSet, Symmetry, Trend
from lumbar.metrics.segmental import lumbar_contribution
from lumbar.metrics.smoothness import DEFAULT_SPARC_FC_HZ, ldlj, sparc

__all__ = [
    "hysteresis_events",
    "threshold_crossings",
    "thresholds_from_trial",
    "repetition_bounds",
    "repetition_metrics",
    "segment_repetitions",
    "RepetitionSegmenter",
    "movement_window",
    "coefficient_of_variation",
    "dtw_distance",
    "consistency",
    "trend",
    "symmetry_index",
]

# Project defaults of METRICS.md §4.1
DEFAULT_LOWPASS_HZ = 5.0  # zero-lag 2nd-order Butterworth on the angle
HI_FRACTION, LO_FRACTION = 0.6, 0.2  # hi = base + 0.6·ROM_ref, lo = base + 0.2·ROM_ref
MIN_DURATION_S, MAX_DURATION_S = 0.5, 15.0
MIN_ROM_FRACTION = 0.3
ONSET_SPEED = math.radians(10.0)  # algorithm 3: a phase starts above 10 °/s …
OFFSET_SPEED = math.radians(5.0)  # … and ends below 5 °/s
N_CURVE = 101  # time normalisation, §4.4


# --------------------------------------------------------------------------------------------------
# Segmentation core (shared by offline and live)


def hysteresis_events(x: np.ndarray, lo: float, hi: float, state: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """Schmitt-trigger events of one chunk ``x`` (N,).

    An event starts (up) when ``x`` rises above ``hi`` having been below ``lo``, and ends (down) when
    it next falls below ``lo``. NaN samples change nothing (the state holds across a gap).

    Parameters
    ----------
    x : (N,) samples of this chunk.
    lo, hi : thresholds, same unit as x, ``lo < hi``.
    state : carried from the previous chunk: −1 armed (below lo seen), +1 inside an event, 0 not
        armed yet (start of a signal, or above ``hi`` without having been below ``lo``).

    Returns
    -------
    (ups, downs, state): chunk-relative sample indices of up- and down-crossings and the new state.
    """
    n = x.shape[0]
    if n == 0:
        return np.empty(0, int), np.empty(0, int), state
    m = np.zeros(n, dtype=np.int8)
    m[x > hi] = 1
    m[x < lo] = -1
    # forward-fill the last decided level (vectorised Schmitt trigger)
    idx = np.maximum.accumulate(np.where(m != 0, np.arange(n), -1))
    s = np.where(idx >= 0, m[np.maximum(idx, 0)], state)
    prev = np.empty_like(s)
    prev[0] = state
    prev[1:] = s[:-1]
    ups = np.flatnonzero((s == 1) & (prev == -1))
    downs = np.flatnonzero((s == -1) & (prev == 1))
    if state == 0:
        # a run above hi before ever being below lo is not an event: drop its down-crossing
        downs = downs[downs > (ups[0] if ups.size else n)]
        if ups.size == 0 and s[-1] == 1:
            return ups, downs, 0
    return ups, downs, int(s[-1])


def threshold_crossings(x: np.ndarray, threshold: float) -> int:
    """Up-crossings of a single threshold without hysteresis (``x[k−1] < th ≤ x[k]``); informative only."""
    x = as_1d("x", x)
    return int(np.count_nonzero((x[:-1] < threshold) & (x[1:] >= threshold)))


def thresholds_from_trial(
    x: np.ndarray, *, rom_ref: float | None = None, base: float | None = None
) -> tuple[float, float, float]:
    """(lo, hi, rom_ref) of algorithm 1: ``hi = base + 0.6·ROM_ref``, ``lo = base + 0.2·ROM_ref``.

    ``base`` defaults to the trial's P5 and ``ROM_ref`` to the robust P95 − base (NaN ignored); with
    the default base that is the spec's P95 − P5. Give ``base`` when the rest level is known (the
    calibration posture, angle 0): for movements that go both ways from rest (pelvic tilt) the P5 is
    the far side of the movement, not the rest level.
    """
    p5, p95 = np.nanpercentile(x, [5.0, 95.0])
    b = float(p5) if base is None else float(base)
    r = float(p95 - b) if rom_ref is None else check_positive("rom_ref", rom_ref)
    return b + LO_FRACTION * r, b + HI_FRACTION * r, r


def _nanargmin(x: np.ndarray) -> int:
    return int(np.nanargmin(x)) if np.isfinite(x).any() else 0


#: Half-width of the window around a rest boundary in which the repetition's start/end minimum is taken, s.
REST_EDGE_S = 0.1


def _window_gradient(x: np.ndarray, fs: float, a: int, b: int, dx: np.ndarray | None) -> np.ndarray:
    """``np.gradient(x[a:b], 1/fs)``, taken from ``dx`` (the gradient of the whole ``x``) when given:
    inside the window the central differences are the same numbers; only the two edge samples, one-sided
    in the window, are recomputed."""
    if dx is None:
        return np.gradient(x[a:b], 1.0 / fs)
    v = dx[a:b].copy()
    h = 1.0 / fs  # divided by, as np.gradient does, so the numbers are identical
    v[0] = (x[a + 1] - x[a]) / h if a > 0 else dx[a]
    v[-1] = (x[b - 1] - x[b - 2]) / h if b < x.size else dx[b - 1]
    return v


def _rest_mask(x: np.ndarray, fs: float, base: float, band: float, a: int = 0, b: int | None = None,
               dx: np.ndarray | None = None) -> np.ndarray:
    """Samples of ``x[a:b]`` at rest: still (|dθ/dt| < 5 °/s, algorithm 3's offset speed) and within
    ``band`` of ``base``. ``dx``: the gradient of the whole ``x``, if already computed."""
    b = x.size if b is None else b
    if b - a < 2:
        return np.zeros(max(b - a, 0), bool)
    v = np.abs(_window_gradient(x, fs, a, b, dx))
    return (v < OFFSET_SPEED) & (np.abs(x[a:b] - base) <= band)


def repetition_bounds(
    x: np.ndarray,
    prev_down: int,
    up: int,
    down: int,
    next_up: int,
    *,
    fs: float | None = None,
    base: float | None = None,
    band: float | None = None,
    dx: np.ndarray | None = None,
) -> tuple[int, int, int]:
    """(start, peak, end) sample indices of one event in ``x`` (indices relative to ``x``).

    Algorithm 1 of §4.1: start = min of x between the previous event's down-crossing (or 0) and
    this up-crossing; peak = max within the event; end = min between this down-crossing and the next
    up-crossing (or len(x)).

    With ``fs``, ``base`` and ``band`` the minima are taken next to the *rest* that surrounds the
    repetition (project choice, so that durations run from movement onset to offset, §4.3 note):
    rest = still (|dθ/dt| < 5 °/s) and within ``band`` of the rest level ``base``. The start is the
    minimum within ±0.1 s of the last rest sample before the up-crossing, the end the minimum within
    ±0.1 s of the first rest sample after the down-crossing. Without a rest sample in the search
    window (a signal that never pauses) the plain minima are used; for a smooth signal that turns
    at its minimum both give the same sample. This also keeps a movement that goes both ways from
    rest (pelvic tilt: anterior, posterior, back) in one repetition, from rest to rest.
    ``dx``, the gradient of the whole ``x`` (``np.gradient(x, 1/fs)``), saves recomputing it per window
    (same result).
    """
    peak = up + int(np.nanargmax(x[up:down]))
    if fs is None or base is None or band is None:
        start = prev_down + _nanargmin(x[prev_down:up])
        end = down + _nanargmin(x[down:next_up])
        return start, peak, end
    h = max(1, int(round(REST_EDGE_S * fs)))
    w = x[prev_down:up]
    rest = np.flatnonzero(_rest_mask(x, fs, base, band, prev_down, up, dx))
    if rest.size:
        r = prev_down + int(rest[-1])
        a, b = max(prev_down, r - h), min(up, r + h + 1)
        start = a + _nanargmin(x[a:b])
    else:
        start = prev_down + _nanargmin(w)
    w = x[down:next_up]
    rest = np.flatnonzero(_rest_mask(x, fs, base, band, down, next_up, dx))
    if rest.size:
        r = down + int(rest[0])
        a, b = max(down, r - h), min(next_up, r + h + 1)
        end = a + _nanargmin(x[a:b])
    else:
        end = down + _nanargmin(w)
    return start, peak, end


def movement_window(speed: np.ndarray, on: float = ONSET_SPEED, off: float = OFFSET_SPEED) -> tuple[int, int]:
    """Movement onset/offset in a speed profile (algorithm 3 of §4.1): first sample above ``on``,
    last sample above ``off``. The whole profile if it never exceeds ``on``."""
    above = np.flatnonzero(speed > on)
    if above.size == 0:
        return 0, speed.size - 1
    moving = np.flatnonzero(speed > off)
    return int(above[0]), int(min(moving[-1] + 1, speed.size - 1))


def repetition_metrics(
    w: np.ndarray,
    fs: float,
    start: int,
    peak: int,
    end: int,
    *,
    offset: int = 0,
    rom_ref: float = math.nan,
    min_duration_s: float = MIN_DURATION_S,
    max_duration_s: float = MAX_DURATION_S,
    min_rom_fraction: float = MIN_ROM_FRACTION,
    sparc_fc_hz: float = DEFAULT_SPARC_FC_HZ,
    other: np.ndarray | None = None,
    lumbar: np.ndarray | None = None,
    pelvis: np.ndarray | None = None,
    dw: np.ndarray | None = None,
) -> Repetition:
    """Per-repetition kinematics (§4.2) and smoothness (§4.3) from a window of samples.

    ``w`` holds the analysed angle (rad) from sample ``offset`` on; it must contain ``start − 1``
    to ``end + 1`` where those exist, so central differences equal those on the whole signal.
    ``start, peak, end`` are *global* indices. Optional ``other`` (M, k) angles of the other planes,
    ``lumbar``/``pelvis`` (M,) aligned with ``w`` give the deviation in other planes and the
    lumbar share. The repetition is marked invalid (with the reason) for a gap, a duration outside
    [min, max], or ROM < min_rom_fraction·rom_ref. ``dw``: the derivative of the whole ``w``
    (:func:`derivative`), if the caller has it (the same numbers, computed once per trial).
    """
    s, p, e = start - offset, peak - offset, end - offset
    if dw is not None:
        v = dw[s : e + 1]
    else:
        lo_w, hi_w = max(s - 1, 0), min(e + 2, w.size)
        v = derivative(w[lo_w:hi_w], fs)[s - lo_w : e - lo_w + 1]  # rad/s over start..end
    seg = w[s : e + 1]
    rom, ret = float(w[p] - w[s]), float(w[p] - w[e])
    dur, ttp = (e - s) / fs, (p - s) / fs
    reasons = []
    if not np.isfinite(seg).all():
        reasons.append("gap (NaN) inside the repetition")
    if dur < min_duration_s or dur > max_duration_s:
        reasons.append(f"duration {dur:.2f} s outside [{min_duration_s:g}, {max_duration_s:g}] s")
    if math.isfinite(rom_ref) and rom < min_rom_fraction * rom_ref:
        reasons.append(f"ROM {math.degrees(rom):.1f}° below {min_rom_fraction:g}·ROM_ref")
    speed = np.abs(v)
    if np.isfinite(speed).all() and speed.size >= 3 and speed.max() > 0:
        on, off = movement_window(speed)
        mv = speed[on : off + 1] if off - on >= 2 else speed
        sp, lj = sparc(mv, fs, fc_hz=sparc_fc_hz), ldlj(mv, fs)
        v_out = float(np.max(speed[: p - s + 1]))
        v_ret = float(np.max(speed[p - s :]))
    else:
        on, off, sp, lj, v_out, v_ret = 0, e - s, math.nan, math.nan, math.nan, math.nan
    other_range: tuple[float, ...] = ()
    if other is not None:
        o = other[s : e + 1]
        other_range = tuple(float(np.nanmax(o[:, j]) - np.nanmin(o[:, j])) if np.isfinite(o[:, j]).any()
                            else math.nan for j in range(o.shape[1]))
    share = math.nan
    if lumbar is not None and pelvis is not None:
        share = float(lumbar_contribution(lumbar[p] - lumbar[s], pelvis[p] - pelvis[s]))
    return Repetition(
        start_idx=start, peak_idx=peak, end_idx=end, start_s=start / fs, peak_s=peak / fs, end_s=end / fs,
        rom=rom, return_rom=ret, duration_s=dur, time_to_peak_s=ttp,
        time_to_peak_pct=100.0 * ttp / dur if dur > 0 else math.nan,
        peak_velocity_out=v_out, peak_velocity_return=v_ret, mean_velocity=rom / ttp if ttp > 0 else math.nan,
        movement_onset_idx=start + on, movement_offset_idx=start + off, sparc=sp, ldlj=lj,
        other_plane_range=other_range, lumbar_share_pct=share,
        range=float(np.nanmax(seg) - np.nanmin(seg)) if np.isfinite(seg).any() else math.nan, valid=not reasons, reason="; ".join(reasons),
    )


# --------------------------------------------------------------------------------------------------
# Offline segmentation


def _fill_gaps(x: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(x)
    if not bad.any():
        return x
    k = np.arange(x.size)
    return np.where(bad, np.interp(k, k[~bad], x[~bad]), x)


def _empty_set(fs: float, reason: str, lo: float = math.nan, hi: float = math.nan, r: float = math.nan) -> RepetitionSet:
    return RepetitionSet(0, (), (), lo, hi, r, fs, valid=False, reason=reason)


def segment_repetitions(
    theta: np.ndarray,
    fs: float,
    *,
    lo: float | None = None,
    hi: float | None = None,
    rom_ref: float | None = None,
    base: float | None = None,
    lowpass_hz: float | None = DEFAULT_LOWPASS_HZ,
    drift_window_s: float | None = None,
    min_duration_s: float = MIN_DURATION_S,
    max_duration_s: float = MAX_DURATION_S,
    min_rom_fraction: float = MIN_ROM_FRACTION,
    sparc_fc_hz: float = DEFAULT_SPARC_FC_HZ,
    other: np.ndarray | None = None,
    lumbar: np.ndarray | None = None,
    pelvis: np.ndarray | None = None,
    group: Callable[[list[tuple[int, int, int]], np.ndarray], list[tuple[int, int, int]]] | None = None,
) -> RepetitionSet:
    """Segment repetitions of the principal angle ``theta`` (N,) rad at ``fs`` Hz and measure each.

    Parameters
    ----------
    lo, hi : hysteresis thresholds (rad). If not given they come from ``rom_ref``/``base``
        (calibration) or from the trial (:func:`thresholds_from_trial`).
    rom_ref : reference ROM for the ROM rejection; with explicit ``lo``/``hi`` it defaults to
        ``(hi − lo)/0.4`` (the ROM those thresholds imply).
    lowpass_hz : zero-lag 2nd-order Butterworth on the angle first (5 Hz, project default); None = off.
    drift_window_s : if given, subtract a slow baseline (running minimum over this window, smoothed)
        before thresholding, for recordings whose zero drifts; ROM is measured on the corrected angle.
    other : (N, k) angles of the other planes (deviation per repetition).
    lumbar, pelvis : (N,) for the lumbar share of each repetition.
    group : optional ``f(phases, y) -> repetitions`` (``y`` the filtered angle): a task whose repetition holds several excursions
        of the principal angle (sit-to-stand: the trunk leans forward to rise and again to sit down)
        gets the (start, peak, end) of every excursion and returns those of the repetitions
        (e.g. one rise plus the following sit-down); each is then measured as one repetition.

    Repetition bounds are the minima next to the surrounding rest (:func:`repetition_bounds`), so a
    repetition's duration runs from movement onset to offset.

    Gaps (NaN) are bridged for filtering and thresholding only; a repetition containing one is
    rejected with the reason. Partial repetitions (no return below ``lo`` before the end) are ignored.
    """
    fs = check_fs(fs)
    x = as_1d("theta", theta)
    n = x.size
    if other is not None:
        other = as_2d("other", other, np.asarray(other).shape[1] if np.ndim(other) == 2 else 1, n=n)
    if lumbar is not None:
        lumbar = as_1d("lumbar", lumbar, n=n)
    if pelvis is not None:
        pelvis = as_1d("pelvis", pelvis, n=n)
    finite = np.isfinite(x)
    if n < 3 or not finite.any():
        return _empty_set(fs, "no valid samples" if n >= 3 else f"too short ({n} samples)")
    gaps = ~finite
    y = _fill_gaps(x)
    if lowpass_hz is not None and n > 9:
        y = lowpass_zero_lag(y, fs, lowpass_hz, order=2)
    if drift_window_s is not None:
        w = max(3, int(round(check_positive("drift_window_s", drift_window_s) * fs)))
        y = y - ndimage.uniform_filter1d(ndimage.minimum_filter1d(y, w, mode="nearest"), w, mode="nearest")
    y = np.where(gaps, np.nan, y)
    if (lo is None) != (hi is None):
        raise ValidationError(f"give both lo and hi (rad) or neither; got lo={lo!r}, hi={hi!r}")
    if lo is None:
        lo, hi, r = thresholds_from_trial(y, rom_ref=rom_ref, base=base)
    else:
        lo, hi = float(lo), float(hi)
        r = (hi - lo) / (HI_FRACTION - LO_FRACTION) if rom_ref is None else float(rom_ref)
    if not lo < hi:
        return _empty_set(fs, f"thresholds not ordered (lo {lo:.4g} ≥ hi {hi:.4g} rad): the signal does not move",
                          lo, hi, r)
    ups, downs, _ = hysteresis_events(y, lo, hi, 0)
    kw = dict(rom_ref=r, min_duration_s=min_duration_s, max_duration_s=max_duration_s,
              min_rom_fraction=min_rom_fraction, sparc_fc_hz=sparc_fc_hz, other=other, lumbar=lumbar, pelvis=pelvis)
    rest_base, band = _rest_level(lo, hi)
    dy = derivative(y, fs) if n >= 2 else None  # once for the trial: every window's differences come from it
    phases = []
    for i in range(downs.size):
        prev_down = int(downs[i - 1]) if i else 0
        next_up = int(ups[i + 1]) if i + 1 < ups.size else n
        phases.append(repetition_bounds(y, prev_down, int(ups[i]), int(downs[i]), next_up, fs=fs, base=rest_base,
                                        band=band, dx=dy))
    if group is not None:
        phases = list(group(phases, y))
    reps = [repetition_metrics(y, fs, s, p, e, dw=dy, **kw) for s, p, e in phases]
    return _make_set(reps, lo, hi, r, fs, y)


def _rest_level(lo: float, hi: float) -> tuple[float, float]:
    """(rest level, rest band) implied by the thresholds: ``lo = base + 0.2·R``, ``hi = base + 0.6·R``."""
    r = (hi - lo) / (HI_FRACTION - LO_FRACTION)
    return lo - LO_FRACTION * r, LO_FRACTION * r


def _make_set(reps: list[Repetition], lo: float, hi: float, r: float, fs: float, y: np.ndarray | None) -> RepetitionSet:
    acc = tuple(rp for rp in reps if rp.valid)
    rej = tuple(rp for rp in reps if not rp.valid)
    cons = consistency(y, acc, fs) if y is not None and len(acc) >= 2 else None
    tr = trend([rp.rom for rp in acc], unit="rad") if len(acc) >= 3 else None
    reason = "" if acc else "no repetition found"
    return RepetitionSet(len(acc), acc, rej, lo, hi, r, fs, consistency=cons, rom_trend=tr, valid=bool(acc),
                         reason=reason)


# --------------------------------------------------------------------------------------------------
# Live segmentation


class RepetitionSegmenter:
    """Incremental repetition segmenter (live rep counter) with explicit state.

    Feed samples with :meth:`update` in chunks of any size; it returns repetitions as soon as their
    end is known: once the angle is back at rest (:func:`repetition_bounds`; about 0.1 s after the
    first rest sample), or else at the next up-crossing. So a patient's feedback comes when they are
    back, not when they start the next repetition. :meth:`finish` closes the trial. With the same samples and
    thresholds, the repetitions equal those of :func:`segment_repetitions` with ``lowpass_hz=None``
    (live data must be filtered causally upstream, so live and offline values differ slightly).

    Memory is bounded: only the samples since the last finalised repetition's end are kept.
    """

    def __init__(
        self,
        fs: float,
        lo: float,
        hi: float,
        *,
        rom_ref: float | None = None,
        min_duration_s: float = MIN_DURATION_S,
        max_duration_s: float = MAX_DURATION_S,
        min_rom_fraction: float = MIN_ROM_FRACTION,
        sparc_fc_hz: float = DEFAULT_SPARC_FC_HZ,
    ) -> None:
        self.fs = check_fs(fs)
        if not float(lo) < float(hi):
            raise ValidationError(f"need lo < hi (rad); got lo={lo!r}, hi={hi!r}")
        self.lo, self.hi = float(lo), float(hi)
        self.rom_ref = (self.hi - self.lo) / (HI_FRACTION - LO_FRACTION) if rom_ref is None else float(rom_ref)
        self._kw = dict(rom_ref=self.rom_ref, min_duration_s=min_duration_s, max_duration_s=max_duration_s,
                        min_rom_fraction=min_rom_fraction, sparc_fc_hz=sparc_fc_hz)
        self.state = 0  # hysteresis state, see hysteresis_events
        self.n_seen = 0
        self._buf = np.empty(0)
        self._buf0 = 0  # global index of _buf[0]
        self._prev_down = 0
        self._open_up: int | None = None
        self._pending: tuple[int, int] | None = None  # complete event awaiting its end minimum
        self._reps: list[Repetition] = []
        self.events_completed = 0

    @property
    def count(self) -> int:
        """Live count: events completed so far (a repetition may still be rejected when finalised)."""
        return self.events_completed

    @property
    def repetitions(self) -> list[Repetition]:
        """Finalised repetitions so far (accepted and rejected)."""
        return list(self._reps)

    def _finalise(self, next_up: int) -> Repetition:
        up, down = self._pending  # type: ignore[misc]
        b0 = self._buf0
        base, band = _rest_level(self.lo, self.hi)
        s, p, e = repetition_bounds(self._buf, self._prev_down - b0, up - b0, down - b0, next_up - b0, fs=self.fs,
                                    base=base, band=band)
        rep = repetition_metrics(self._buf, self.fs, s + b0, p + b0, e + b0, offset=b0, **self._kw)
        self._reps.append(rep)
        self._pending = None
        self._prev_down = down
        keep_from = max(down - 1, b0)  # next start ≥ this down; keep one sample for central differences
        self._buf = self._buf[keep_from - b0 :]
        self._buf0 = keep_from
        return rep

    def update(self, chunk: np.ndarray | Sequence[float]) -> list[Repetition]:
        """Add samples (rad); returns the repetitions finalised by them."""
        x = as_1d("chunk", chunk)
        ups, downs, self.state = hysteresis_events(x, self.lo, self.hi, self.state)
        self._buf = np.concatenate([self._buf, x])
        events = sorted([(int(u) + self.n_seen, 1) for u in ups] + [(int(d) + self.n_seen, -1) for d in downs])
        self.n_seen += x.size
        done = []
        for idx, kind in events:
            if kind == 1:
                if self._pending is not None:
                    done.append(self._finalise(idx))
                self._open_up = idx
            elif self._open_up is not None:
                self._pending = (self._open_up, idx)
                self._open_up = None
                self.events_completed += 1
        if self._pending is not None and self._end_at_rest_known():
            done.append(self._finalise(self.n_seen))
        return done

    def _end_at_rest_known(self) -> bool:
        """Whether the pending repetition's end is already what the next up-crossing would make it: the
        first rest sample after its down-crossing, the ±``REST_EDGE_S`` window around it and one sample
        beyond (the derivative at the end) are all seen, and none of them sits at the buffer's last sample
        (where a gradient is one-sided now and central later). No up-crossing has followed the down-crossing
        (it would have finalised the repetition), so the next one lies beyond every sample seen."""
        _, down = self._pending  # type: ignore[misc]
        a = down - self._buf0
        base, band = _rest_level(self.lo, self.hi)
        h = max(1, int(round(REST_EDGE_S * self.fs)))
        rest = np.flatnonzero(_rest_mask(self._buf, self.fs, base, band, a, self._buf.size))
        return bool(rest.size) and a + int(rest[0]) + h + 2 <= self._buf.size

    def finish(self) -> RepetitionSet:
        """Close the trial (the last repetition ends at the minimum before the end) and return the set."""
        if self._pending is not None:
            self._finalise(self.n_seen)
        return _make_set(self._reps, self.lo, self.hi, self.rom_ref, self.fs, None)


# --------------------------------------------------------------------------------------------------
# Consistency, trend, symmetry (§4.4–4.5)


def coefficient_of_variation(values: Sequence[float] | np.ndarray, ddof: int = 1) -> float:
    """``CV = 100·SD/mean`` (%), sample SD (ddof = 1). NaN for fewer than two values or a zero mean."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2 or np.mean(v) == 0:
        return math.nan
    return float(100.0 * np.std(v, ddof=ddof) / np.mean(v))


def dtw_distance(a: np.ndarray | Sequence[float], b: np.ndarray | Sequence[float]) -> tuple[float, int]:
    """Classic DTW (Sakoe & Chiba 1978): absolute-difference cost, steps (1,0), (0,1), (1,1) of weight 1,
    no window. Returns (distance in the unit of the inputs, warping-path length in steps)."""
    x, y = as_1d("a", a, min_len=1), as_1d("b", b, min_len=1)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValidationError("DTW inputs must not contain NaN")
    from lumbar.metrics._dtw_numba import dtw  # numba loads only when DTW is first needed

    dist, steps = dtw(np.ascontiguousarray(x), np.ascontiguousarray(y))
    return float(dist), int(steps)


def consistency(theta: np.ndarray, reps: Sequence[Repetition], fs: float, n_points: int = N_CURVE) -> Consistency:
    """Across-repetition consistency (§4.4): CV of ROM, duration and peak velocity; each repetition's
    curve (start → end of ``theta``, rad) time-normalised to ``n_points``; RMSD and DTW to the mean curve."""
    fs = check_fs(fs)
    x = as_1d("theta", theta)
    nan = np.full(0, np.nan)
    if len(reps) < 2:
        return Consistency(len(reps), math.nan, math.nan, math.nan, nan, nan, nan, nan, valid=False,
                           reason="fewer than two repetitions")
    curves = np.array([time_normalise(x[r.start_idx : r.end_idx + 1], n_points) for r in reps])
    mean = curves.mean(axis=0)
    rmsd = np.sqrt(np.mean((curves - mean) ** 2, axis=1))
    dtw = np.array([dtw_distance(c, mean) for c in curves])
    return Consistency(
        n=len(reps),
        cv_rom_pct=coefficient_of_variation([r.rom for r in reps]),
        cv_duration_pct=coefficient_of_variation([r.duration_s for r in reps]),
        cv_peak_velocity_pct=coefficient_of_variation([r.peak_velocity_out for r in reps]),
        mean_curve=mean, rmsd_to_mean=rmsd, dtw_to_mean=dtw[:, 0], dtw_per_step=dtw[:, 0] / dtw[:, 1],
    )


def trend(values: Sequence[float] | np.ndarray, *, unit: str = "") -> Trend:
    """Least-squares trend of a per-repetition value over repetition number 1..n (fatigue).

    ``slope_pct_per_rep`` is the slope as % of the mean value per repetition.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size < 3 or not np.isfinite(v).all():
        return Trend(math.nan, math.nan, math.nan, math.nan, math.nan, int(v.size), unit, valid=False,
                     reason="needs at least three finite values")
    k = np.arange(1, v.size + 1, dtype=np.float64)
    if np.ptp(v) == 0:
        return Trend(0.0, float(v[0]), 0.0, math.nan, 1.0, int(v.size), unit)
    res = stats.linregress(k, v)
    m = float(np.mean(v))
    return Trend(float(res.slope), float(res.intercept), 100.0 * float(res.slope) / m if m else math.nan,
                 float(res.rvalue), float(res.pvalue), int(v.size), unit)


def symmetry_index(left: float, right: float) -> Symmetry:
    """Symmetry index ``SI = 100·(L − R)/(0.5·(L + R))`` (%) (Robinson et al. 1987) and ``min/max``."""
    lf, rt = float(left), float(right)
    s = 0.5 * (lf + rt)
    if s == 0 or not (math.isfinite(lf) and math.isfinite(rt)):
        return Symmetry(lf, rt, math.nan, math.nan, valid=False, reason="left + right is zero or not finite")
    mx = max(abs(lf), abs(rt))
    return Symmetry(lf, rt, 100.0 * (lf - rt) / s, min(abs(lf), abs(rt)) / mx if mx else math.nan)
