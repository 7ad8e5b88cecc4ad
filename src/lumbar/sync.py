"""Clock synchronisation: sensor clock → host time, gaps, a common time grid.

A notification leaves the sensor after its samples were measured and reaches the host after a delay
that is never negative (radio, connection-interval wait, OS scheduling) but varies by tens of
milliseconds. So each packet gives one point ``(d, a)`` — device time of its last sample, host arrival
time — that lies on or *above* the true line ``a = offset + (1 + drift)·d``. The estimate is the line
under all points that hugs them most closely: minimise ``Σ(a_k − α − β·d_k)`` subject to
``a_k ≥ α + β·d_k``. Its optimum is the edge of the points' lower convex hull that spans the mean device
time, so it is found exactly, incrementally, in amortised O(1) per packet — and the live estimate after
the last packet *is* the offline estimate (same hull, same mean).

Until the points span ``min_span_s`` (10 s by default) the slope is fixed at 1 (no drift): with ±15 ms
jitter a slope fitted over a second or two would be worse than assuming a crystal's ≤ 200 ppm error.

Sensors without a clock use their sample counter divided by the nominal rate as device time, so the same
estimator regularises their host timestamps.

Note the remaining constant: the fit recovers ``offset + minimum latency``. That minimum (a few ms on real
links) is common to sensors of one kind and does not affect their alignment with each other.
"""
from __future__ import annotations

import bisect
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Mapping

import numpy as np

from lumbar.errors import ValidationError
from lumbar.types import ImuBatch, SampleFlag

__all__ = [
    "ClockModel",
    "ClockSync",
    "fit_clock",
    "unwrap_counter",
    "detect_gaps",
    "to_common_grid",
]


@dataclass(frozen=True)
class ClockModel:
    """``host = offset_s + (1 + drift) · device`` (seconds).

    Attributes
    ----------
    offset_s : float
        Host time at device time zero, s (includes the link's minimum latency).
    drift : float
        Relative rate error of the device clock (+1e-4 = device runs 100 ppm slow vs the host).
    n_points : int
        Packets used.
    span_s : float
        Device-time span of the packets used, s.
    mean_excess_s : float
        Mean of arrival − fitted line over the points (the mean latency above the minimum), s.
    """

    offset_s: float = 0.0
    drift: float = 0.0
    n_points: int = 0
    span_s: float = 0.0
    mean_excess_s: float = 0.0

    def to_host(self, device_time_s: np.ndarray | float) -> np.ndarray:
        """Map device times (s) to host times (s)."""
        return self.offset_s + (1.0 + self.drift) * np.asarray(device_time_s, dtype=np.float64)

    @property
    def drift_ppm(self) -> float:
        return self.drift * 1e6


class ClockSync:
    """Incremental lower-envelope clock fit for one sensor.

    Parameters
    ----------
    min_span_s : float
        Device-time span before the drift is estimated (slope fixed at 1 before), s.

    Examples
    --------
    >>> cs = ClockSync()
    >>> cs.add(device_time_s=np.array([0.0, 0.05]), arrival_s=np.array([10.004, 10.061]))
    >>> round(cs.model().offset_s, 3)
    10.004
    """

    def __init__(self, min_span_s: float = 10.0) -> None:
        if not min_span_s > 0:
            raise ValidationError(f"min_span_s must be > 0 s; got {min_span_s}")
        self.min_span_s = float(min_span_s)
        self.reset()

    def reset(self) -> None:
        self._hx: list[float] = []  # lower hull vertices, device time
        self._hy: list[float] = []  # lower hull vertices, arrival time
        self._n = 0
        self._sum_d = 0.0
        self._sum_a = 0.0
        self._min_excess = np.inf  # min(a - d), the slope-1 offset
        self._d0 = np.nan
        self._d_last = -np.inf

    def add(self, device_time_s: np.ndarray, arrival_s: np.ndarray) -> None:
        """Add packets: device time (s) of each packet's last sample and its host arrival time (s).

        Device times must increase; a packet whose device time does not is refused with a clear error
        (the decoder should have flagged it).
        """
        d = np.atleast_1d(np.asarray(device_time_s, dtype=np.float64))
        a = np.atleast_1d(np.asarray(arrival_s, dtype=np.float64))
        if d.shape != a.shape or d.ndim != 1:
            raise ValidationError(f"device_time_s and arrival_s must be 1-D of equal length; got {d.shape}, {a.shape}")
        if not (np.all(np.isfinite(d)) and np.all(np.isfinite(a))):
            raise ValidationError("clock sync needs finite device and arrival times")
        for di, ai in zip(d.tolist(), a.tolist()):
            self._add_point(di, ai)

    def add_one(self, device_time_s: float, arrival_s: float) -> None:
        """:meth:`add` for a single packet given as two floats (the live path: no array set-up)."""
        di, ai = float(device_time_s), float(arrival_s)
        if not (math.isfinite(di) and math.isfinite(ai)):
            raise ValidationError("clock sync needs finite device and arrival times")
        self._add_point(di, ai)

    def _add_point(self, di: float, ai: float) -> None:
        if di <= self._d_last:
            raise ValidationError(
                f"device time went backwards or repeated ({di:.6f} s after {self._d_last:.6f} s); packet refused"
            )
        self._d_last = di
        if self._n == 0:
            self._d0 = di
        self._n += 1
        self._sum_d += di
        self._sum_a += ai
        self._min_excess = min(self._min_excess, ai - di)
        self._push_hull(di, ai)

    def _push_hull(self, x: float, y: float) -> None:
        hx, hy = self._hx, self._hy
        # Andrew's monotone chain, lower hull: drop the last vertex while it is not strictly below
        # the segment from its predecessor to the new point.
        while len(hx) >= 2:
            cross = (hx[-1] - hx[-2]) * (y - hy[-2]) - (hy[-1] - hy[-2]) * (x - hx[-2])
            if cross <= 0:
                hx.pop()
                hy.pop()
            else:
                break
        hx.append(x)
        hy.append(y)

    def model(self) -> ClockModel:
        """The current estimate (the offline estimate once all packets are added)."""
        n = self._n
        if n == 0:
            return ClockModel()
        span = self._d_last - self._d0
        mean_d = self._sum_d / n
        if span < self.min_span_s or len(self._hx) < 2:
            offset, slope = self._min_excess, 1.0
        else:
            hx = self._hx
            i = bisect.bisect_right(hx, mean_d) - 1  # hx increases strictly
            i = min(max(i, 0), len(hx) - 2)
            slope = (self._hy[i + 1] - self._hy[i]) / (hx[i + 1] - hx[i])
            offset = self._hy[i] - slope * hx[i]
        mean_excess = self._sum_a / n - (offset + slope * mean_d)
        return ClockModel(offset, slope - 1.0, n, span, mean_excess)


def fit_clock(device_time_s: np.ndarray, arrival_s: np.ndarray, min_span_s: float = 10.0) -> ClockModel:
    """Offline fit over a whole recording (identical to feeding :class:`ClockSync` packet by packet)."""
    cs = ClockSync(min_span_s)
    cs.add(device_time_s, arrival_s)
    return cs.model()


def unwrap_counter(values: np.ndarray, bits: int) -> np.ndarray:
    """Unwrap a ``bits``-wide rolling counter (sequence number, tick counter) into int64.

    A step backwards is read as one wrap-around.
    """
    v = np.asarray(values, dtype=np.int64)
    if v.size == 0:
        return v
    period = np.int64(1) << np.int64(bits)
    step = np.diff(v)
    wraps = np.concatenate([[0], np.cumsum(step < 0)])
    return v + wraps * period


def detect_gaps(seq: np.ndarray, device_time_s: np.ndarray, nominal_rate_hz: float) -> np.ndarray:
    """Boolean mask (N,): True where samples are missing right before this one.

    A gap is a sequence jump larger than one, or — where sequence numbers are unknown (−1) — a
    device-time step longer than 1.5 nominal periods.
    """
    seq = np.asarray(seq, dtype=np.int64)
    t = np.asarray(device_time_s, dtype=np.float64)
    gap = np.zeros(seq.shape[0], dtype=bool)
    if seq.shape[0] < 2:
        return gap
    known = (seq[1:] >= 0) & (seq[:-1] >= 0)
    gap[1:] |= known & (np.diff(seq) > 1)
    timed = ~known & np.isfinite(t[1:]) & np.isfinite(t[:-1])
    if nominal_rate_hz > 0:
        gap[1:] |= timed & (np.diff(t) > 1.5 / nominal_rate_hz)
    return gap


def to_common_grid(
    batches: Mapping[str, ImuBatch], rate_hz: float, t_start: float | None = None, t_stop: float | None = None
) -> dict[str, ImuBatch]:
    """Resample several sensors onto one time grid (linear interpolation of acc and gyro).

    Parameters
    ----------
    batches : mapping of sensor id to ImuBatch
        Each sensor's samples on the host time base (after clock sync).
    rate_hz : float
        Grid rate, Hz.
    t_start, t_stop : float, optional
        Grid limits, s; default: the span covered by *all* sensors.

    Returns
    -------
    dict of sensor id to ImuBatch
        Same grid ``time_s`` for every sensor. Every sample is flagged ``INTERPOLATED`` where the
        grid point does not coincide with a measured sample (within 1 µs), and additionally
        ``GAP_BEFORE`` where it lies inside a gap of the original data (bracketing samples more than
        1.5 nominal periods apart, or a sample flagged as following a gap); saturation flags of the
        bracketing samples carry over. Device time is interpolated; ``seq`` is -1.
    """
    if not batches:
        raise ValidationError("to_common_grid needs at least one sensor")
    if not rate_hz > 0:
        raise ValidationError(f"rate_hz must be > 0; got {rate_hz}")
    empty = [sid for sid, b in batches.items() if len(b) < 2]
    if empty:
        raise ValidationError(f"sensor(s) {empty} have fewer than two samples; cannot resample")
    lo = max(float(b.time_s[0]) for b in batches.values()) if t_start is None else float(t_start)
    hi = min(float(b.time_s[-1]) for b in batches.values()) if t_stop is None else float(t_stop)
    if hi <= lo:
        raise ValidationError(f"the sensors' recordings do not overlap in time ({lo:.3f} s to {hi:.3f} s)")
    grid = lo + np.arange(int(np.floor((hi - lo) * rate_hz + 1e-9)) + 1) / rate_hz
    one = partial(_resample, grid=grid)
    if len(batches) > 1 and grid.size >= _PARALLEL_MIN:  # the kernel releases the GIL: sensors side by side
        with ThreadPoolExecutor(max_workers=min(len(batches), os.cpu_count() or 1)) as ex:
            return dict(zip(batches, ex.map(one, batches.values())))
    return {sid: one(b) for sid, b in batches.items()}


#: Grid length from which the sensors are resampled on parallel threads (below, thread start-up dominates).
_PARALLEL_MIN = 100_000


def _resample(b: ImuBatch, grid: np.ndarray) -> ImuBatch:
    from lumbar._sync_numba import resample_run

    m = grid.shape[0]
    acc, gyro = np.empty((m, 3)), np.empty((m, 3))
    dev, flags = np.empty(m), np.empty(m, np.uint8)
    period = float(np.median(np.diff(b.time_s)))
    resample_run(np.ascontiguousarray(b.time_s, dtype=np.float64), np.ascontiguousarray(b.acc),
                 np.ascontiguousarray(b.gyro), np.ascontiguousarray(b.device_time_s, dtype=np.float64),
                 np.ascontiguousarray(b.flags, dtype=np.uint8), grid, 1.5 * period,
                 np.uint8(SampleFlag.GAP_BEFORE | SampleFlag.INTERPOLATED), np.uint8(SampleFlag.INTERPOLATED),
                 np.uint8(SampleFlag.GAP_BEFORE), np.uint8(SampleFlag.ACC_SATURATED | SampleFlag.GYRO_SATURATED),
                 acc, gyro, dev, flags)
    return replace(b, time_s=grid.copy(), device_time_s=dev, acc=acc, gyro=gyro,
                   seq=np.full(m, -1, np.int64), flags=flags)

