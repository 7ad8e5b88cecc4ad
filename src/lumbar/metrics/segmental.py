"""Segmental (lumbo-pelvic) control from two sensors (METRICS.md §2).

Inputs are angle time series in rad, sampled at ``fs`` Hz: the lumbar angles of
:func:`lumbar.kinematics.lumbar_angles` (flexion, right lateral bending, axial rotation left +)
and the pelvic sagittal tilt of :func:`lumbar.kinematics.sagittal_tilt`. Nothing here
re-derives angles from orientations.

* lumbo-pelvic rhythm: global (lumbar contribution, ratio) and phase-resolved, onset lag (§2.2);
* continuous relative phase, Hilbert and phase-plane, MARP and deviation phase (§2.3);
* normalised cross-correlation and lag (§2.4);
* dissociation measures of movement-control tests (§2.5);
* range of motion per plane.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import fft as sp_fft
from scipy import signal

from lumbar.errors import ValidationError
from lumbar.metrics._checks import as_1d, as_2d, check_fs, check_option, check_positive
from lumbar.metrics._dsp import derivative, time_normalise, wrap_pi
from lumbar.metrics.results import (
    CRPResult,
    CRPSummary,
    CrossCorrelation,
    DissociationResult,
    OnsetLag,
    RhythmResult,
    RomResult,
)

__all__ = [
    "lumbar_contribution",
    "lumbar_pelvic_ratio",
    "lumbo_pelvic_rhythm",
    "rhythm_curve",
    "onset_lag",
    "crp_hilbert",
    "crp_phase_plane",
    "crp_cycles",
    "cross_correlation",
    "dissociation",
    "rom_per_plane",
    "DEFAULT_ONSET_THRESHOLD",
    "DEFAULT_THETA_TOL",
]

DEFAULT_ONSET_THRESHOLD = math.radians(2.0)  # project default onset threshold, METRICS.md §2.2
DEFAULT_ONSET_BASELINE_S = 0.5  # project default: baseline mean over the first 0.5 s
DEFAULT_THETA_TOL = math.radians(10.0)  # placeholder pass/fail tolerance, METRICS.md §2.6 / §6.8
DEFAULT_EXCURSION_EDGES = (0.0, 0.25, 0.5, 0.75, 1.0)  # §2.2: 0–25–50–75–100 % of trunk excursion


# --------------------------------------------------------------------------------------------------
# Lumbo-pelvic rhythm (§2.2)


def lumbar_contribution(d_lumbar: float | np.ndarray, d_pelvis: float | np.ndarray) -> float | np.ndarray:
    """Lumbar contribution ``100·ΔL/(ΔL + ΔP)`` (%) (Laird et al. 2016). NaN where ΔL + ΔP = 0."""
    dl, dp = np.asarray(d_lumbar, dtype=np.float64), np.asarray(d_pelvis, dtype=np.float64)
    s = dl + dp
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(s != 0.0, 100.0 * dl / np.where(s != 0.0, s, 1.0), np.nan)
    return float(out) if out.ndim == 0 else out


def lumbar_pelvic_ratio(d_lumbar: float, d_pelvis: float) -> float:
    """Lumbar:pelvic ratio ``ΔL/ΔP`` (Vazirian et al. 2016). NaN where ΔP = 0."""
    return float(d_lumbar) / float(d_pelvis) if d_pelvis != 0 else math.nan


def _bin_indices(u: np.ndarray, i0: int, i1: int, edges: np.ndarray, binning: str) -> np.ndarray:
    """Sample indices of the bin edges between i0 and i1 (i0 < i1)."""
    if binning == "time":
        return np.round(i0 + edges * (i1 - i0)).astype(int)
    # fraction of trunk excursion: first sample (from i0) reaching each fraction; monotone by construction
    seg = u[i0 : i1 + 1]
    frac = (seg - seg[0]) / (seg[-1] - seg[0])
    # running max/min makes the reached fraction monotone despite small reversals
    frac = np.maximum.accumulate(frac)
    idx = np.searchsorted(frac, edges, side="left")
    idx[0], idx[-1] = 0, seg.size - 1
    return i0 + np.minimum(idx, seg.size - 1)


def _bin_contributions(lum: np.ndarray, pel: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.asarray(lumbar_contribution(np.diff(lum[idx]), np.diff(pel[idx])), dtype=np.float64).reshape(-1)


def lumbo_pelvic_rhythm(
    lumbar: np.ndarray,
    pelvis: np.ndarray | None,
    *,
    start_idx: int = 0,
    end_idx: int | None = None,
    binning: str = "excursion",
    edges: Sequence[float] = DEFAULT_EXCURSION_EDGES,
) -> RhythmResult:
    """Lumbo-pelvic rhythm of one forward bend and return (METRICS.md §2.2).

    Parameters
    ----------
    lumbar : (N,) lumbar flexion L(t), rad.
    pelvis : (N,) pelvic sagittal inclination P(t), rad (relative to calibration); ``None`` (sensor
        missing) gives an invalid result.
    start_idx, end_idx : the movement's start and end samples (default: the whole signal).
    binning : ``'excursion'`` (fractions of trunk excursion U = L + P, default) or ``'time'``
        (fractions of normalised time); the return phase (peak → end) is binned the same way.
    edges : bin edges as fractions from 0 to 1.

    The global excursions are taken from the start to peak trunk flexion (max of U).
    """
    check_option("binning", binning, ("excursion", "time"))
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or e[0] != 0.0 or e[-1] != 1.0 or np.any(np.diff(e) <= 0):
        raise ValidationError(f"edges must increase strictly from 0 to 1; got {list(edges)!r}")
    lum = as_1d("lumbar", lumbar)
    nan_bins = np.full(e.size - 1, np.nan)

    def invalid(reason: str) -> RhythmResult:
        return RhythmResult(math.nan, math.nan, math.nan, math.nan, binning, e, nan_bins, nan_bins, start_idx,
                            -1, -1, valid=False, reason=reason)

    if pelvis is None:
        return invalid("pelvic (sacral) sensor missing: the lumbo-pelvic rhythm needs both sensors")
    pel = as_1d("pelvis", pelvis, n=lum.size)
    end = lum.size - 1 if end_idx is None else int(end_idx)
    if not 0 <= start_idx < end <= lum.size - 1:
        raise ValidationError(f"need 0 ≤ start_idx < end_idx ≤ {lum.size - 1}; got {start_idx}, {end_idx}")
    win = slice(start_idx, end + 1)
    if not (np.isfinite(lum[win]).all() and np.isfinite(pel[win]).all()):
        return invalid("gap (NaN) inside the movement")
    u = lum + pel
    peak = start_idx + int(np.argmax(u[win]))
    dl, dp = lum[peak] - lum[start_idx], pel[peak] - pel[start_idx]
    if peak == start_idx or u[peak] - u[start_idx] <= 0.0:
        return invalid("no trunk flexion in the window (trunk angle never rises above its start)")
    bend = _bin_contributions(lum, pel, _bin_indices(u, start_idx, peak, e, binning))
    if end > peak and u[peak] - u[end] > 0.0:
        # the return is binned on the trunk angle's fall: use −U so it rises
        ret = _bin_contributions(-lum, -pel, _bin_indices(-u, peak, end, e, binning))
    else:
        ret = nan_bins
    return RhythmResult(dl, dp, float(lumbar_contribution(dl, dp)), lumbar_pelvic_ratio(dl, dp), binning, e, bend,
                        ret, start_idx, peak, end)


def rhythm_curve(
    lumbar: np.ndarray, pelvis: np.ndarray, start_idx: int, peak_idx: int, n_points: int = 101
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rhythm as a curve from start to peak, time-normalised to ``n_points``.

    Returns ``(lumbar_change, pelvic_change, contribution_pct)``: the changes since the start (rad)
    and the cumulative lumbar contribution (%; NaN where the trunk has not moved yet).
    """
    lum, pel = as_1d("lumbar", lumbar), as_1d("pelvis", pelvis)
    dl = time_normalise(lum[start_idx : peak_idx + 1] - lum[start_idx], n_points)
    dp = time_normalise(pel[start_idx : peak_idx + 1] - pel[start_idx], n_points)
    c = np.asarray(lumbar_contribution(dl, dp), dtype=np.float64)
    c[np.abs(dl + dp) < 1e-9] = np.nan
    return dl, dp, c


def _onset(x: np.ndarray, fs: float, threshold: float, baseline_s: float) -> float:
    nb = max(1, int(round(baseline_s * fs)))
    base = np.nanmean(x[:nb])
    hit = np.flatnonzero(np.abs(x - base) > threshold)
    return hit[0] / fs if hit.size else math.nan


def onset_lag(
    first: np.ndarray,
    second: np.ndarray | None,
    fs: float,
    *,
    threshold: float = DEFAULT_ONSET_THRESHOLD,
    baseline_s: float = DEFAULT_ONSET_BASELINE_S,
) -> OnsetLag:
    """Onset lag ``t_onset(second) − t_onset(first)`` (s), e.g. first = lumbar L(t), second = pelvis P(t).

    Onset = the first sample more than ``threshold`` (rad, default 2°) from the mean of the first
    ``baseline_s`` seconds (project default, METRICS.md §2.2).
    """
    fs = check_fs(fs)
    x = as_1d("first", first)
    check_positive("threshold", threshold)
    if second is None:
        return OnsetLag(math.nan, math.nan, math.nan, threshold, valid=False,
                        reason="second sensor missing: the onset lag needs both signals")
    y = as_1d("second", second, n=x.size)
    t1, t2 = _onset(x, fs, threshold, baseline_s), _onset(y, fs, threshold, baseline_s)
    reason = "" if math.isfinite(t1) and math.isfinite(t2) else "no onset found (signal never leaves its baseline)"
    return OnsetLag(t1, t2, t2 - t1, threshold, valid=not reason, reason=reason)


# --------------------------------------------------------------------------------------------------
# Continuous relative phase (§2.3)


def _keep_mask(n: int, discard: float) -> np.ndarray:
    if not 0.0 <= discard < 0.5:
        raise ValidationError(f"discard must be a fraction in [0, 0.5); got {discard!r}")
    k = int(round(discard * n))
    keep = np.zeros(n, dtype=bool)
    keep[k : n - k] = True
    return keep


def _crp_result(method: str, phi_x: np.ndarray, phi_y: np.ndarray, discard: float) -> CRPResult:
    crp = wrap_pi(phi_x - phi_y)
    keep = _keep_mask(crp.size, discard)
    c = crp[keep]
    return CRPResult(method, crp, keep, float(np.mean(c)), float(np.std(c)), float(np.mean(np.abs(c))))


def _hilbert_phase(x: np.ndarray, centre: str) -> np.ndarray:
    xc = x - (0.5 * (np.max(x) + np.min(x)) if centre == "midrange" else np.mean(x))
    return np.unwrap(np.angle(signal.hilbert(xc)))


def crp_hilbert(x: np.ndarray, y: np.ndarray, *, centre: str = "midrange", discard: float = 0.1) -> CRPResult:
    """CRP by the Hilbert transform (Lamb & Stöckl 2014): ``φ_x − φ_y`` wrapped to (−π, π], rad.

    Each signal (N,) is centred by ``(max+min)/2`` (default, or ``centre='mean'``); the summary
    (mean, SD, MARP = mean |CRP|) uses the samples left after discarding ``discard`` of them at each
    end (edge effects). Positive CRP = x leads y.
    """
    check_option("centre", centre, ("midrange", "mean"))
    xa = as_1d("x", x, min_len=4)
    ya = as_1d("y", y, n=xa.size)
    if not (np.isfinite(xa).all() and np.isfinite(ya).all()):
        raise ValidationError("x and y must not contain NaN; CRP needs continuous cycles")
    return _crp_result("hilbert", _hilbert_phase(xa, centre), _hilbert_phase(ya, centre), discard)


def _phase_plane_phase(x: np.ndarray, fs: float) -> np.ndarray:
    xn = 2.0 * (x - np.min(x)) / (np.max(x) - np.min(x)) - 1.0
    v = derivative(x, fs)
    vn = v / np.max(np.abs(v))
    # the minus sign makes the phase increase with time, so signs agree with the Hilbert method
    return np.unwrap(np.arctan2(-vn, xn))


def crp_phase_plane(x: np.ndarray, y: np.ndarray, fs: float, *, discard: float = 0.1) -> CRPResult:
    """CRP by the phase-plane method (Hamill et al. 1999), sign as METRICS.md §2.3, rad.

    Angle normalised to [−1, 1] by its min/max, velocity (central differences) by its max |value|,
    ``φ = unwrap(atan2(−v_n, x_n))``. Summary as :func:`crp_hilbert`.
    """
    fs = check_fs(fs)
    xa = as_1d("x", x, min_len=4)
    ya = as_1d("y", y, n=xa.size)
    if not (np.isfinite(xa).all() and np.isfinite(ya).all()):
        raise ValidationError("x and y must not contain NaN; CRP needs continuous cycles")
    if np.ptp(xa) == 0 or np.ptp(ya) == 0:
        raise ValidationError("x and y must move: a constant signal has no phase")
    return _crp_result("phase_plane", _phase_plane_phase(xa, fs), _phase_plane_phase(ya, fs), discard)


def crp_cycles(crp: np.ndarray, boundaries: Sequence[int], n_points: int = 101) -> CRPSummary:
    """MARP and deviation phase over cycles (Stergiou et al. 2001), rad.

    ``crp`` (N,) is a CRP series; ``boundaries`` are the sample indices of cycle starts/ends (k + 1
    indices → k cycles). Each cycle is time-normalised to ``n_points``; MARP = mean over cycles of
    mean |CRP|; DP = mean over normalised time of the between-cycle SD (ddof = 1).
    """
    c = as_1d("crp", crp)
    b = np.asarray(boundaries, dtype=int)
    if b.ndim != 1 or b.size < 2 or np.any(np.diff(b) < 2) or b[0] < 0 or b[-1] >= c.size:
        raise ValidationError(f"boundaries must be increasing sample indices inside the series; got {b.tolist()}")
    curves = np.array([time_normalise(c[b[i] : b[i + 1] + 1], n_points) for i in range(b.size - 1)])
    if not np.isfinite(curves).all():
        nan = np.full(n_points, np.nan)
        return CRPSummary(len(curves), nan, nan, math.nan, math.nan, valid=False, reason="gap (NaN) inside a cycle")
    marp = float(np.mean(np.mean(np.abs(curves), axis=1)))
    if len(curves) < 2:
        return CRPSummary(1, curves[0], np.full(n_points, np.nan), marp, math.nan, valid=False,
                          reason="one cycle only: the deviation phase needs at least two")
    sd = np.std(curves, axis=0, ddof=1)
    return CRPSummary(len(curves), curves.mean(axis=0), sd, marp, float(np.mean(sd)))


# --------------------------------------------------------------------------------------------------
# Cross-correlation (§2.4)


def cross_correlation(x: np.ndarray, y: np.ndarray | None, fs: float, *, max_lag_s: float = 1.0) -> CrossCorrelation:
    """Normalised cross-correlation ``r(τ) = (1/N)·Σ x̃[n]·ỹ[n+τ]`` of z-scored signals, |τ| ≤ max_lag_s.

    Returns the lag of the maximum (s; positive = y lags x) and r there. The sum runs over the
    overlap only (r < 1 for a shifted copy; METRICS.md XC-02).
    """
    fs = check_fs(fs)
    xa = as_1d("x", x, min_len=2)
    if y is None:
        return CrossCorrelation(math.nan, math.nan, np.array([]), np.array([]), valid=False,
                                reason="second signal (sensor) missing")
    ya = as_1d("y", y, n=xa.size)
    if not (np.isfinite(xa).all() and np.isfinite(ya).all()):
        return CrossCorrelation(math.nan, math.nan, np.array([]), np.array([]), valid=False,
                                reason="gap (NaN) in a signal")
    if np.std(xa) == 0 or np.std(ya) == 0:
        return CrossCorrelation(math.nan, math.nan, np.array([]), np.array([]), valid=False,
                                reason="a signal is constant (no correlation defined)")
    n = xa.size
    xz, yz = (xa - xa.mean()) / xa.std(), (ya - ya.mean()) / ya.std()
    max_lag = min(int(round(check_positive("max_lag_s", max_lag_s) * fs)), n - 1)
    # circular correlation on n + max_lag points (zero padded): for |τ| ≤ max_lag no product wraps
    # around onto a real sample, so it equals the linear one there, at half the FFT length of "full"
    m = sp_fft.next_fast_len(n + max_lag, real=True)
    c = sp_fft.irfft(np.conj(sp_fft.rfft(xz, m)) * sp_fft.rfft(yz, m), m)  # c[τ mod m] = Σ y[k+τ]·x[k]
    lags = np.arange(-max_lag, max_lag + 1)
    r = c[lags % m] / n
    k = int(np.argmax(r))
    return CrossCorrelation(lags[k] / fs, float(r[k]), lags / fs, r)


# --------------------------------------------------------------------------------------------------
# Dissociation (§2.5) and ROM


def dissociation(
    moving: np.ndarray,
    controlled: np.ndarray | None,
    fs: float,
    *,
    target: float | None = None,
    tolerance: float = DEFAULT_THETA_TOL,
    forbidden_sign: int | None = None,
    ratio_tolerance: float = math.inf,
) -> DissociationResult:
    """Dissociation of a movement-control test: segment A (``moving``) moves, B (``controlled``) should not.

    Both (N,) in rad over the test. Excursions are the largest change from the first sample
    (signed, of A; |·| of B, or only in the ``forbidden_sign`` direction, +1 or −1, e.g. lumbar
    flexion while rocking backwards). Reported (METRICS.md §2.5, project default):

    * ratio ``|ΔB|/|ΔA|``;
    * leak at target: B's change when A first reaches ``target`` (rad; default A's peak);
    * peak leak velocity ``max |dB/dt|`` (rad/s);
    * passed: A reached the target, ``|ΔB| ≤ tolerance`` (θ_tol, placeholder 10°) and the ratio
      ``≤ ratio_tolerance`` (default: no ratio criterion). A relative criterion is what a test with
      a small task excursion needs (pelvic tilt: A ≈ 10°, so an absolute 10° on B can never fail).
    """
    fs = check_fs(fs)
    a = as_1d("moving", moving, min_len=2)
    nan = math.nan
    if controlled is None:
        return DissociationResult(nan, nan, nan, nan, nan, False, False, tolerance, ratio_tolerance, valid=False,
                                  reason="sensor of the controlled segment missing")
    b = as_1d("controlled", controlled, n=a.size)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return DissociationResult(nan, nan, nan, nan, nan, False, False, tolerance, ratio_tolerance, valid=False,
                                  reason="gap (NaN) during the test")
    if forbidden_sign not in (None, 1, -1):
        raise ValidationError(f"forbidden_sign must be None, +1 or -1; got {forbidden_sign!r}")
    da_t = a - a[0]
    i_peak = int(np.argmax(np.abs(da_t)))
    da = float(da_t[i_peak])
    db_t = b - b[0]
    leak = db_t if forbidden_sign is None else np.clip(forbidden_sign * db_t, 0.0, None)
    db = float(np.max(np.abs(leak)))
    if target is None:
        i_target, reached = i_peak, True
    else:
        hit = np.flatnonzero(np.sign(target) * da_t >= abs(target)) if target != 0 else np.array([0])
        reached = bool(hit.size)
        i_target = int(hit[0]) if reached else i_peak
    leak_at = float(db_t[i_target])
    ratio = db / abs(da) if da != 0 else math.inf
    peak_v = float(np.max(np.abs(derivative(b, fs))))
    passed = reached and db <= tolerance and ratio <= ratio_tolerance
    return DissociationResult(da, db, ratio, leak_at, peak_v, reached, passed, tolerance, ratio_tolerance)


def rom_per_plane(angles: np.ndarray) -> RomResult:
    """Range of motion per plane of lumbar angles (N, 3) rad (flexion, lateral bending, axial rotation).

    NaN samples are ignored; a plane with no finite sample makes the result invalid.
    """
    a = as_2d("angles", angles, 3)
    if np.isfinite(a).all():  # no NaN (the common case): plain per-column extrema
        # column by column: numpy reduces an (N, 3) array along axis 0 ten times slower
        lo = np.array([a[:, j].min() for j in range(3)])
        hi = np.array([a[:, j].max() for j in range(3)])
        return RomResult(lo, hi, hi - lo)
    finite = np.isfinite(a)
    if not finite.any(axis=0).all():
        nan = np.full(3, np.nan)
        return RomResult(nan, nan, nan, valid=False, reason="a plane has no valid sample")
    lo, hi = np.nanmin(a, axis=0), np.nanmax(a, axis=0)
    gaps = int((~finite.all(axis=1)).sum())
    return RomResult(lo, hi, hi - lo, reason=f"{gaps} samples missing (ignored)" if gaps else "")
