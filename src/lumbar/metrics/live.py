"""Live (incremental) metrics for the GUI: current angle, repetition counter, last repetition's
quality, running sway.

:class:`LiveAnalyzer` consumes chunks of *processed* signals (angles from the live orientation and
kinematics, rad; sensor acceleration, m/s²) as they arrive and keeps its state bounded. Its
numbers are exact incremental versions of the offline ones:

* **repetitions**: the same segmentation core as :func:`lumbar.metrics.repetitions.segment_repetitions`
  (:class:`~lumbar.metrics.repetitions.RepetitionSegmenter`). On the same samples and thresholds the
  repetitions at :meth:`LiveAnalyzer.finish` equal the offline ones exactly. Live data can only be
  filtered causally (``lowpass_hz``, 2nd-order Butterworth run forwards), so the numbers of a live
  session differ slightly from the zero-lag offline analysis (METRICS.md §0.3): store both.
* **running sway**: option-A tilt correction with the *current* mean tilt, and the AP/ML variances
  and covariance from running (Chan/Welford) sums; at any moment they equal
  :func:`lumbar.metrics.sway.sway_from_acc` on the samples received so far with ``cutoff_hz=None``
  (RMS per direction and combined, 95 % confidence ellipse). The low-pass of the offline default
  needs the future, so the live RMS includes the sensor noise (about 2 % more on a commodity IMU).

Angles in rad, times in s.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import signal, stats

from lumbar.errors import ValidationError
from lumbar.metrics._checks import as_1d, as_2d, check_fs, check_positive
from lumbar.metrics.repetitions import HI_FRACTION, LO_FRACTION, RepetitionSegmenter
from lumbar.metrics.results import Repetition, RepetitionSet
from lumbar.metrics.sway import DEFAULT_DISCARD_S
from lumbar.types import STANDARD_G

__all__ = ["LiveAnalyzer", "LiveSnapshot", "RunningSway"]


@dataclass(frozen=True)
class LiveSnapshot:
    """What the live view shows at one moment (SI units; ``to_dict(display=True)`` for degrees)."""

    time_s: float
    angle: float
    rep_count: int
    last_repetition: Repetition | None
    sway_rms_ap: float
    sway_rms_ml: float
    sway_rms: float
    sway_area_ce: float
    sway_n: int

    def to_dict(self, *, display: bool = False) -> dict[str, Any]:
        k = 180.0 / math.pi if display else 1.0
        return {
            "time_s": self.time_s, "angle": self.angle * k, "rep_count": self.rep_count,
            "last_repetition": None if self.last_repetition is None else self.last_repetition.to_dict(display=display),
            "sway_rms_ap": self.sway_rms_ap, "sway_rms_ml": self.sway_rms_ml, "sway_rms": self.sway_rms,
            "sway_area_ce": self.sway_area_ce, "sway_n": self.sway_n,
            "units": {"angle": "deg" if display else "rad", "sway_rms": "m/s^2", "sway_area_ce": "(m/s^2)^2"},
        }


class _Moments:
    """Running count, mean and centred second moments (3×3) of vectors, merged chunk by chunk (Chan et al.)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = np.zeros(3)
        self.m2 = np.zeros((3, 3))

    def add(self, x: np.ndarray) -> None:
        m = x.shape[0]
        if m == 0:
            return
        mu = x.mean(axis=0)
        d = x - mu
        m2 = d.T @ d
        delta = mu - self.mean
        n = self.n + m
        self.m2 = self.m2 + m2 + np.outer(delta, delta) * (self.n * m / n)
        self.mean = self.mean + delta * (m / n)
        self.n = n


class RunningSway:
    """Running option-A sway of a quiet-standing trial (METRICS.md §1.2–1.3), no low-pass.

    The tilts come from the mean of *all* samples so far, the measures from the samples after the
    first ``discard_s`` seconds, exactly as :func:`lumbar.metrics.sway.sway_from_acc`.
    """

    def __init__(self, fs: float, *, g: float = STANDARD_G, axes: tuple[int, int, int] = (0, 2, 1),
                 discard_s: float = DEFAULT_DISCARD_S) -> None:
        self.fs = check_fs(fs)
        self.g = check_positive("g", g)
        if sorted(axes) != [0, 1, 2]:
            raise ValidationError(f"axes must be a permutation of (0, 1, 2); got {axes!r}")
        self.axes = axes
        self.discard = int(round(discard_s * self.fs))
        self._all = _Moments()
        self._kept = _Moments()
        self._bad = 0

    def update(self, acc: np.ndarray) -> None:
        a = as_2d("acc", acc, 3)
        ok = np.isfinite(a).all(axis=1)
        self._bad += int((~ok).sum())
        first = max(0, self.discard - self._all.n - self._bad)
        a_ok = a[ok]
        self._all.add(a_ok)
        # samples after the discarded start (counted on the received samples)
        k = int(np.count_nonzero(np.flatnonzero(ok) >= first))
        self._kept.add(a_ok[a_ok.shape[0] - k :])

    def _projection(self) -> np.ndarray | None:
        ia, im, iv = self.axes
        s_a, s_m = self._all.mean[ia] / self.g, self._all.mean[im] / self.g
        if self._all.n == 0 or abs(s_a) > 1 or abs(s_m) > 1:
            return None
        th_a, th_m = math.asin(s_a), math.asin(s_m)
        ca, sa, cm, sm = math.cos(th_a), math.sin(th_a), math.cos(th_m), math.sin(th_m)
        m = np.zeros((2, 3))
        m[0, ia], m[0, iv] = ca, -sa  # ap = a_a·cos θa − a_v·sin θa
        m[1, im] = cm  # ml = a_m·cos θm − (a_a·sin θa + a_v·cos θa)·sin θm
        m[1, ia] += -sa * sm
        m[1, iv] += -ca * sm
        return m

    def values(self) -> tuple[float, float, float, float, int]:
        """(RMS AP, RMS ML, RMS combined, AREA-CE, N) so far; NaN before 3 samples or with any NaN."""
        n = self._kept.n
        m = self._projection()
        if n < 3 or m is None or self._bad:
            return math.nan, math.nan, math.nan, math.nan, n
        c = m @ self._kept.m2 @ m.T  # centred sums of the AP/ML products
        var_ap, var_ml = c[0, 0] / n, c[1, 1] / n
        s = c / (n - 1)
        det = max(s[0, 0] * s[1, 1] - s[0, 1] ** 2, 0.0)
        area = 2.0 * math.pi * float(stats.f.ppf(0.95, 2, n - 2)) * math.sqrt(det)
        return math.sqrt(var_ap), math.sqrt(var_ml), math.sqrt(var_ap + var_ml), area, n


class LiveAnalyzer:
    """Incremental metrics of one live trial.

    Parameters
    ----------
    fs : sample rate of the processed signals, Hz.
    rom_ref : expected range of motion of the principal angle (rad), e.g. the protocol's target or
        the patient's calibration movement; sets the hysteresis thresholds ``lo = 0.2·rom_ref`` and
        ``hi = 0.6·rom_ref`` above the rest level. ``None``: no repetition counting (quiet standing).
    base : rest level of the principal angle (rad); 0 for angles relative to the calibration posture.
    lowpass_hz : causal 2nd-order Butterworth on the principal angle before counting (None: the
        samples are used as given, e.g. when already filtered upstream).
    sway : keep running sway values of the acceleration passed to :meth:`update`.
    rom_floor : with ``rom_ref=None``, count repetitions anyway: ``rom_ref`` is learnt from the first
        excursion beyond ``rom_floor`` (rad) from the rest level, as the peak it reaches before it comes
        back below 0.2 of that peak. For tasks whose range differs from patient to patient (a pelvic tilt
        of 7° or 15°, a waiter's bow of 35° or 60°): the offline analysis takes the trial's own range
        (:func:`~lumbar.metrics.repetitions.thresholds_from_trial`), which a live counter cannot know in
        advance. The floor keeps a wobble at rest from being taken for the task.
    both_directions : with ``rom_floor``, the task goes both ways from rest (rocking backward, then
        forward): excursions beyond the floor the other way from the first are counted too, by a second
        segmenter on the mirrored angle whose range is learnt, likewise, from the first excursion that way
        (a forward rock is smaller than a backward one: one range for both would miss or split them).
        :attr:`rep_count` is the total; :meth:`finish` returns the first direction's set and leaves the
        other's in :attr:`opposite_set`, the sets of the offline analysis (``repetitions`` and
        ``repetitions_<opposite_direction>``).

    The principal angle's direction is fixed by its first excursion beyond half of ``rom_ref`` (as
    offline: the first phase of the movement counts as positive); before that no repetition can
    start, because the upper threshold is 0.6·rom_ref. A learnt ``rom_ref`` fixes the direction with
    the same first excursion, which then counts as the first repetition.
    """

    def __init__(self, fs: float, *, rom_ref: float | None = None, base: float = 0.0,
                 lowpass_hz: float | None = 5.0, sway: bool = False, sway_discard_s: float = DEFAULT_DISCARD_S,
                 rom_floor: float | None = None, both_directions: bool = False, **segmenter_kw: Any) -> None:
        self.fs = check_fs(fs)
        self.base = float(base)
        self.rom_ref = None if rom_ref is None else check_positive("rom_ref", rom_ref)
        self.rom_floor = None if rom_floor is None or rom_ref is not None else check_positive("rom_floor", rom_floor)
        self.sign = 0  # 0 until the first large excursion
        self._seg = None
        self._segmenter_kw = segmenter_kw
        if self.rom_ref is not None:
            self._seg = self._segmenter(self.rom_ref)
        self._sos = None
        self._zi = None
        if lowpass_hz is not None:
            self._sos = signal.butter(2, check_positive("lowpass_hz", lowpass_hz), btype="low", fs=self.fs,
                                      output="sos")
        self._pending = np.empty(0)  # samples before the direction is known
        self._scanned = 0  # of them, those known to stay below the direction's threshold
        self._last_finite = 0.0
        self.sway = RunningSway(self.fs, discard_s=sway_discard_s) if sway else None
        self.n_seen = 0
        self.angle = math.nan
        self.last_repetition: Repetition | None = None
        if both_directions and self.rom_floor is None:
            raise ValidationError("both_directions needs rom_floor (each direction's range is learnt) and no rom_ref")
        #: the other direction's counter (``both_directions``); its side is set once the first one is known
        self._opposite = _Learner(self.fs, self.rom_floor, self._segmenter) if both_directions else None
        #: the other direction's repetitions, set by :meth:`finish` (``both_directions``)
        self.opposite_set: RepetitionSet | None = None

    # ------------------------------------------------------------------------------------------
    def _filter(self, x: np.ndarray) -> np.ndarray:
        if self._sos is None or x.size == 0:
            return x
        if self._zi is None:
            first = x[np.isfinite(x)][:1]
            x0 = float(first[0]) if first.size else 0.0
            self._zi = signal.sosfilt_zi(self._sos) * x0
        xf = np.where(np.isfinite(x), x, np.nan)
        # a NaN would poison the filter state: hold the last value through gaps, mark them NaN again
        filled = _hold(xf, self._last_finite)
        y, self._zi = signal.sosfilt(self._sos, filled, zi=self._zi)
        if np.isfinite(xf).any():
            self._last_finite = float(xf[np.isfinite(xf)][-1])
        return np.where(np.isfinite(xf), y, np.nan)

    def update(self, angle: np.ndarray | None = None, acc: np.ndarray | None = None) -> list[Repetition]:
        """Add a chunk: the principal angle (N,) rad and/or the acceleration (N, 3) m/s² for sway.
        Returns the repetitions completed by this chunk (accepted or rejected, see ``valid``)."""
        done: list[Repetition] = []
        if acc is not None and self.sway is not None:
            self.sway.update(acc)
        if angle is None:
            return done
        x = as_1d("angle", angle, min_len=0)
        if x.size == 0:
            return done
        y = self._filter(x - self.base)
        self.n_seen += x.size
        fin = y[np.isfinite(y)]
        if fin.size:
            self.angle = float(fin[-1])
        if self._seg is None and self.rom_floor is None:
            return done
        if self._opposite is not None:
            done += self._opposite.update(y)
        if self.sign == 0:
            self._pending = np.concatenate([self._pending, y])
            if not self._direction_found():
                return self._last(done)
            y, self._pending = self._pending, np.empty(0)
            if self._opposite is not None:  # the other way from now on: it looks for its first excursion
                done += self._opposite.start(-self.sign)
        done += self._seg.update(self.sign * y)
        return self._last(done)

    def _last(self, done: list[Repetition]) -> list[Repetition]:
        if done:
            self.last_repetition = max(done, key=lambda r: r.end_idx)
        return done

    def _segmenter(self, rom_ref: float) -> RepetitionSegmenter:
        return RepetitionSegmenter(self.fs, LO_FRACTION * rom_ref, HI_FRACTION * rom_ref, rom_ref=rom_ref,
                                   **self._segmenter_kw)

    def _direction_found(self) -> bool:
        """Whether the samples held back so far fix the direction (and a learnt ``rom_ref``); sets them.
        Samples already found below the thresholds are not scanned again (called on every chunk)."""
        y = np.nan_to_num(self._pending[self._scanned:])
        if self.rom_ref is not None:
            big = np.flatnonzero(np.abs(y) > 0.5 * self.rom_ref)
            if big.size:
                self.sign = 1 if y[big[0]] > 0 else -1
            else:
                self._scanned = self._pending.size
            return bool(big.size)
        over = np.flatnonzero(np.abs(y) > self.rom_floor)
        if not over.size:
            self._scanned = self._pending.size
            return False
        side = 1 if y[over[0]] > 0 else -1
        start, rom = _first_excursion(side * y, self.rom_floor)
        self._scanned += start  # the first excursion starts here: followed until it is over
        if rom is None:
            return False
        self.sign, self.rom_ref = side, rom
        self._seg = self._segmenter(self.rom_ref)
        return True

    @property
    def rep_count(self) -> int:
        """Live count: repetitions whose return below the lower threshold has been seen (both directions'
        with ``both_directions``)."""
        return (0 if self._seg is None else self._seg.count) + (0 if self._opposite is None else self._opposite.count)

    @property
    def rom_ref_opposite(self) -> float | None:
        """The range learnt for the other direction (rad; ``both_directions``), None before its first excursion."""
        return None if self._opposite is None else self._opposite.rom_ref

    def snapshot(self) -> LiveSnapshot:
        """The current values for the display."""
        rms_ap, rms_ml, rms, area, n = self.sway.values() if self.sway is not None else (math.nan,) * 4 + (0,)
        return LiveSnapshot(self.n_seen / self.fs, self.sign * self.angle if self.sign else self.angle,
                            self.rep_count, self.last_repetition, rms_ap, rms_ml, rms, area, n)

    def finish(self) -> RepetitionSet | None:
        """Close the trial: the last repetition ends at the minimum before the end; the full set (None
        when no repetitions are counted: neither ``rom_ref`` nor ``rom_floor`` given). With
        ``both_directions`` the first direction's; the other's is then in :attr:`opposite_set`."""
        if self._opposite is not None:
            self.opposite_set = self._opposite.finish(
                f"no movement beyond {math.degrees(self.rom_floor):.0f}° from rest the other way")
            every = self.opposite_set.repetitions + self.opposite_set.rejected
            if every:
                self.last_repetition = max(every, key=lambda r: r.end_idx)
        if self._seg is None and self.rom_floor is not None:
            return RepetitionSet(0, (), (), math.nan, math.nan, math.nan, self.fs, valid=False,
                                 reason=f"no movement beyond {math.degrees(self.rom_floor):.0f}° from rest")
        if self._seg is None:
            return None
        if self.sign == 0 and self._pending.size:
            self._seg.update(self._pending)
            self._pending = np.empty(0)
        rs = self._seg.finish()
        every = list(rs.repetitions + rs.rejected)
        if self._opposite is not None and self.last_repetition is not None:  # the other way's may be the later
            every.append(self.last_repetition)
        if every:
            self.last_repetition = max(every, key=lambda r: r.end_idx)
        return rs


class _Learner:
    """The counter of one fixed direction from rest (``side``, +1 or −1, set by :meth:`start`) whose range is
    learnt from its first excursion beyond ``floor`` (rad), as :class:`LiveAnalyzer`'s first direction. The
    samples (rest-relative, rad) are kept from the trial's start until then, so the segmenter sees what the
    offline segmentation of the whole trial sees; in a growing buffer (a trial's minutes, appended chunk by
    chunk without copying them all each time)."""

    def __init__(self, fs: float, floor: float, segmenter: Any) -> None:
        self.fs = fs
        self.floor = floor
        self._make = segmenter
        self.side = 0
        self.rom_ref: float | None = None
        self._seg: RepetitionSegmenter | None = None
        self._buf = np.empty(1024)
        self._n = 0
        self._scanned = 0  # samples known not to start the first excursion

    @property
    def count(self) -> int:
        return 0 if self._seg is None else self._seg.count

    def start(self, side: int) -> list[Repetition]:
        """Count excursions towards ``side`` from now on (those in the samples so far included)."""
        self.side = side
        return self._learn()

    def update(self, y: np.ndarray) -> list[Repetition]:
        if self._seg is not None:
            return self._seg.update(self.side * y)
        if self._n + y.size > self._buf.size:
            self._buf = np.concatenate([self._buf[: self._n], np.empty(max(self._buf.size, y.size))])
        self._buf[self._n : self._n + y.size] = y
        self._n += y.size
        return self._learn() if self.side else []

    def _learn(self) -> list[Repetition]:
        start, rom = _first_excursion(self.side * np.nan_to_num(self._buf[self._scanned : self._n]), self.floor)
        self._scanned += start  # the first excursion starts here (or none so far): followed until it is over
        if rom is None:
            return []
        self.rom_ref = rom
        self._seg = self._make(self.rom_ref)
        y, self._buf = self._buf[: self._n], np.empty(0)
        return self._seg.update(self.side * y)

    def finish(self, reason: str) -> RepetitionSet:
        if self._seg is None:
            return RepetitionSet(0, (), (), math.nan, math.nan, math.nan, self.fs, valid=False,
                                 reason=reason)
        return self._seg.finish()


def _first_excursion(z: np.ndarray, floor: float) -> tuple[int, float | None]:
    """The first excursion of ``z`` (N,) rad, rest-relative and signed so the direction looked for is
    positive, beyond ``floor``: where it starts (N when there is none yet) and its range, the peak it reaches
    before it falls back below ``LO_FRACTION`` of it (None while it is not over)."""
    over = np.flatnonzero(z > floor)
    if not over.size:
        return z.size, None
    i = int(over[0])
    peak = np.maximum.accumulate(z[i:])
    back = np.flatnonzero(z[i:] < LO_FRACTION * peak)
    return i, (float(peak[back[0]]) if back.size else None)


def _hold(x: np.ndarray, last: float) -> np.ndarray:
    """Replace NaN by the last finite value (``last`` before the first)."""
    bad = ~np.isfinite(x)
    if not bad.any():
        return x
    idx = np.where(~bad, np.arange(x.size), -1)
    np.maximum.accumulate(idx, out=idx)
    return np.where(idx >= 0, x[np.maximum(idx, 0)], last)
