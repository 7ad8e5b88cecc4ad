"""Postural sway in quiet standing from a lumbar/sacral accelerometer (ISway family) and the
classic COP measures of Prieto et al. 1996 (METRICS.md §1).

Pipeline (:func:`sway_from_acc`), in the order of METRICS.md §1.2:

1. horizontal AP/ML acceleration: static tilt correction, option A (Moe-Nilssen 1998, project default),
   or sample-by-sample orientation, option B (:func:`horizontal_acc_from_orientation`); never mixed;
2. discard the first seconds, remove the mean of AP and ML;
3. zero-lag 4th-order Butterworth low-pass (cut-off a parameter, default 3.5 Hz);
4. time-domain (:func:`planar_sway`, :func:`axis_sway`) and frequency-domain
   (:func:`spectral_measures`) measures.

Every measure is also a small function on arrays, so it can be applied to COP (mm), acceleration
(m/s²) or trunk angles (rad, :func:`angular_sway`). ``T = N/fs`` throughout (METRICS.md notation).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import integrate, signal, spatial, stats

from lumbar.conventions import quat_rotate
from lumbar.errors import ValidationError
from lumbar.metrics._checks import as_1d, as_2d, check_fs, check_option, check_positive, data_problem
from lumbar.metrics._dsp import derivative, lowpass_zero_lag
from lumbar.metrics.results import AxisSway, PlanarSway, SpectralMeasures, SwayResult
from lumbar.types import STANDARD_G

__all__ = [
    "DEFAULT_CUTOFF_HZ",
    "DEFAULT_BAND_HZ",
    "TiltCorrected",
    "tilt_correct_static",
    "horizontal_acc_from_orientation",
    "preprocess_sway",
    "mdist",
    "rms",
    "range_1d",
    "range_max_distance",
    "range_rss",
    "path_length",
    "mean_velocity",
    "mv_from_acc",
    "mfreq_2d",
    "mfreq_1d",
    "area_ce",
    "area_prediction",
    "area_chi2",
    "area_cc",
    "area_sw",
    "jerk",
    "spectral_measures",
    "axis_sway",
    "planar_sway",
    "sway_measures",
    "sway_from_acc",
    "angular_sway",
    "romberg_ratio",
]

DEFAULT_CUTOFF_HZ = 3.5  # ISway/Mancini [FROM MEMORY – VERIFY], METRICS.md §1.2.3; a parameter
DEFAULT_BAND_HZ = (0.15, 5.0)  # Prieto [FROM MEMORY – VERIFY], METRICS.md §1.4.2
DEFAULT_DISCARD_S = 2.0  # project default: discard the first 2 s of the trial (§1.1)
DEFAULT_MIN_DURATION_S = 5.0  # project default: shorter trials give no trustworthy sway value
CHI2_95_2DOF = float(stats.chi2.ppf(0.95, 2))  # 5.9915


# --------------------------------------------------------------------------------------------------
# 1. Horizontal AP/ML acceleration


class TiltCorrected(NamedTuple):
    """Tilt-corrected acceleration (m/s², each (N,)) and the static tilts removed (rad)."""

    ap: np.ndarray
    ml: np.ndarray
    v: np.ndarray
    tilt_ap: float
    tilt_ml: float


def tilt_correct_static(
    acc: np.ndarray, *, g: float = STANDARD_G, axes: tuple[int, int, int] = (0, 2, 1)
) -> TiltCorrected:
    """Option A: static tilt correction (Moe-Nilssen 1998; METRICS.md §1.2.1).

    Parameters
    ----------
    acc : (N, 3) specific force in m/s², in a frame whose axes ``axes = (ap, ml, v)`` are the sensor's
        anterior, right and vertical-ish axes. Default ``(0, 2, 1)`` is the segment frame
        (X anterior, Y superior, Z right) of ``docs/conventions.md``.
    g : gravity (m/s²) used to express the signal in g; the trial means give the tilts
        ``sin θ_a = mean(a_a)/g``, ``sin θ_m = mean(a_m)/g``.

    Returns
    -------
    :class:`TiltCorrected` with ``ap, ml`` horizontal and ``v`` vertical dynamic acceleration (m/s²,
    gravity removed) and the tilts θ_a, θ_m (rad). Only the mean tilt is removed: slow tilt
    fluctuations remain as about g·δθ(t) (intended, ISway-compatible).
    """
    a = as_2d("acc", acc, 3)
    g = check_positive("g", g)
    if sorted(axes) != [0, 1, 2]:
        raise ValidationError(f"axes must be a permutation of (0, 1, 2) giving (ap, ml, vertical); got {axes!r}")
    a_a, a_m, a_v = (a[:, i] / g for i in axes)
    s_a, s_m = float(np.mean(a_a)), float(np.mean(a_m))
    if abs(s_a) > 1.0 or abs(s_m) > 1.0:
        raise ValidationError(
            f"acc mean exceeds 1 g on the AP or ML axis (means {s_a:.3f} g, {s_m:.3f} g); is acc in m/s² and g = {g}?"
        )
    th_a, th_m = math.asin(s_a), math.asin(s_m)
    ca, sa, cm, sm = math.cos(th_a), math.sin(th_a), math.cos(th_m), math.sin(th_m)
    ap = a_a * ca - a_v * sa
    v1 = a_a * sa + a_v * ca
    ml = a_m * cm - v1 * sm
    vv = a_m * sm + v1 * cm - 1.0
    return TiltCorrected(ap * g, ml * g, vv * g, th_a, th_m)


def horizontal_acc_from_orientation(
    acc: np.ndarray, quat: np.ndarray, *, g: float = STANDARD_G, ap_axis: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Option B hook: "linear-acceleration sway" from sample-by-sample orientation (METRICS.md §1.2.1).

    ``acc`` (N, 3) specific force in the sensor (or segment) frame, m/s²; ``quat`` (N, 4) scalar-first
    orientation rotating that frame into the earth frame (z up), e.g. from :mod:`lumbar.filters`.
    Each sample is rotated to the earth frame and g is subtracted; the AP direction is the mean
    horizontal heading of the frame's ``ap_axis`` (6-D fusion has no absolute heading), ML is 90°
    to its right. Returns (ap, ml, vertical) in m/s². Values are *not* comparable with option A.
    """
    a = as_2d("acc", acc, 3)
    q = as_2d("quat", quat, 4, n=a.shape[0])
    a_e = quat_rotate(q, a)
    a_e[:, 2] -= g
    e = np.zeros(3)
    e[ap_axis] = 1.0
    fwd = quat_rotate(q, np.broadcast_to(e, a.shape))[:, :2].mean(axis=0)
    norm = np.hypot(*fwd)
    if norm < 1e-6:
        raise ValidationError("the AP axis is (nearly) vertical on average; cannot define a horizontal AP direction")
    fwd = fwd / norm
    right = np.array([fwd[1], -fwd[0]])  # z up: the right of the heading
    return a_e[:, :2] @ fwd, a_e[:, :2] @ right, a_e[:, 2]


def preprocess_sway(
    ap: np.ndarray,
    ml: np.ndarray,
    fs: float,
    *,
    cutoff_hz: float | None = DEFAULT_CUTOFF_HZ,
    order: int = 4,
    discard_s: float = 0.0,
    resample_hz: float | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Steps 2–4 of METRICS.md §1.2: discard, mean removal, zero-lag low-pass, optional resampling.

    Returns (ap, ml, fs) after processing; ``cutoff_hz=None`` skips the filter.
    """
    fs = check_fs(fs)
    ap = as_1d("ap", ap)
    ml = as_1d("ml", ml, n=ap.size)
    k = int(round(check_positive("discard_s", discard_s, allow_zero=True) * fs))
    ap, ml = ap[k:] - np.mean(ap[k:]), ml[k:] - np.mean(ml[k:])
    if cutoff_hz is not None:
        xy = lowpass_zero_lag(np.column_stack([ap, ml]), fs, cutoff_hz, order)
        ap, ml = xy[:, 0], xy[:, 1]
    if resample_hz is not None and resample_hz != fs:
        from fractions import Fraction

        fr = Fraction(check_fs(resample_hz, "resample_hz") / fs).limit_denominator(1000)
        ap = signal.resample_poly(ap, fr.numerator, fr.denominator)
        ml = signal.resample_poly(ml, fr.numerator, fr.denominator)
        fs = fs * fr.numerator / fr.denominator
    return ap, ml, fs


# --------------------------------------------------------------------------------------------------
# 2. Time-domain measures (METRICS.md §1.3). ``ml=None`` gives the 1-D (single-axis) version.


def _rd(ap: np.ndarray, ml: np.ndarray | None) -> np.ndarray:
    return np.abs(ap) if ml is None else np.hypot(ap, ml)


def mdist(ap: np.ndarray, ml: np.ndarray | None = None) -> float:
    """Mean distance from the mean position: ``mean(RD)``; 1-D: ``mean(|AP|)``. Unit of the input."""
    return float(np.mean(_rd(np.asarray(ap), ml)))


def rms(ap: np.ndarray, ml: np.ndarray | None = None) -> float:
    """Root mean square distance ``sqrt(mean(RD²))`` (= SD with 1/N of a mean-removed signal)."""
    return float(np.sqrt(np.mean(_rd(np.asarray(ap), ml) ** 2)))


def range_1d(x: np.ndarray) -> float:
    """``max(x) − min(x)``."""
    return float(np.max(x) - np.min(x))


def range_max_distance(ap: np.ndarray, ml: np.ndarray) -> float:
    """Prieto's 2-D RANGE: the largest distance between any two points of the path (via the convex hull)."""
    pts = np.column_stack([ap, ml])
    try:
        hull = pts[spatial.ConvexHull(pts).vertices]
    except spatial.QhullError:  # collinear or too few points: the extremes along the main direction
        c = pts - pts.mean(axis=0)
        u = np.linalg.svd(c, full_matrices=False)[2][0] if np.any(c) else np.array([1.0, 0.0])
        p = c @ u
        return float(p.max() - p.min())
    return _polygon_diameter(hull)


def _polygon_diameter(p: np.ndarray) -> float:
    """Largest vertex distance of a convex polygon (H, 2), counter-clockwise, by rotating calipers, O(H).

    (A pairwise distance matrix would need H² memory: a smooth sway trace can have every sample on its hull.)
    """
    n = p.shape[0]
    xs, ys = p[:, 0].tolist(), p[:, 1].tolist()

    def d2(i: int, k: int) -> float:
        return (xs[i] - xs[k]) ** 2 + (ys[i] - ys[k]) ** 2

    def area2(i: int, k: int, m: int) -> float:  # twice the triangle area, ≥ 0 for a convex CCW polygon
        return abs((xs[k] - xs[i]) * (ys[m] - ys[i]) - (ys[k] - ys[i]) * (xs[m] - xs[i]))

    best, j = 0.0, 1
    for i in range(n):
        ni = (i + 1) % n
        while area2(i, ni, (j + 1) % n) > area2(i, ni, j):
            j = (j + 1) % n
        best = max(best, d2(i, j), d2(ni, j))
    return math.sqrt(best)


def range_rss(ap: np.ndarray, ml: np.ndarray) -> float:
    """Alternative 2-D RANGE ``sqrt(range_AP² + range_ML²)`` (METRICS.md §1.3 note a)."""
    return float(math.hypot(range_1d(ap), range_1d(ml)))


def path_length(ap: np.ndarray, ml: np.ndarray | None = None) -> float:
    """Total excursion ``Σ sqrt(ΔAP² + ΔML²)``; 1-D: ``Σ|ΔAP|``. Unit of the input."""
    d = np.abs(np.diff(ap)) if ml is None else np.hypot(np.diff(ap), np.diff(ml))
    return float(np.sum(d))


def mean_velocity(ap: np.ndarray, fs: float, ml: np.ndarray | None = None) -> float:
    """MVELO = PATH / T with ``T = N/fs`` (input unit per s)."""
    return path_length(ap, ml) / (len(ap) / fs)


def mv_from_acc(ap: np.ndarray, fs: float, ml: np.ndarray | None = None) -> float:
    """ISway "mean velocity" from acceleration (m/s): ``mean ‖v‖``, ``v = ∫a dt``.

    Cumulative trapezoid from 0, then per-axis linear detrending [PROJECT DEFAULT, §6.3] because the
    integral of a measured acceleration drifts.
    """
    dt = 1.0 / fs
    v_ap = signal.detrend(integrate.cumulative_trapezoid(ap, dx=dt, initial=0.0), type="linear")
    if ml is None:
        return float(np.mean(np.abs(v_ap)))
    v_ml = signal.detrend(integrate.cumulative_trapezoid(ml, dx=dt, initial=0.0), type="linear")
    return float(np.mean(np.hypot(v_ap, v_ml)))


def mfreq_2d(ap: np.ndarray, ml: np.ndarray, fs: float) -> float:
    """Mean frequency (Hz) ``PATH / (2π·MDIST·T)`` (Prieto 1996)."""
    return path_length(ap, ml) / (2.0 * math.pi * mdist(ap, ml) * (len(ap) / fs))


def mfreq_1d(x: np.ndarray, fs: float) -> float:
    """1-D mean frequency (Hz) ``MVELO / (4√2·MDIST)`` (Prieto 1996); ≈ 1.11·f for a pure sine (§1.3)."""
    return mean_velocity(x, fs) / (4.0 * math.sqrt(2.0) * mdist(x))


def _sqrt_det_cov(ap: np.ndarray, ml: np.ndarray) -> tuple[float, int]:
    s = np.cov(np.vstack([ap, ml]), ddof=1)
    return float(np.sqrt(max(np.linalg.det(s), 0.0))), len(ap)


def area_ce(ap: np.ndarray, ml: np.ndarray, level: float = 0.95) -> float:
    """Prieto's 95 % confidence ellipse ``2π·F(level; 2, N−2)·sqrt(det S)``, S with ddof = 1 (input unit²)."""
    sd, n = _sqrt_det_cov(ap, ml)
    return 2.0 * math.pi * float(stats.f.ppf(level, 2, n - 2)) * sd


def area_prediction(ap: np.ndarray, ml: np.ndarray, level: float = 0.95) -> float:
    """Prediction ellipse (Schubert & Kirchner 2014): ``π·2(N−1)(N+1)/(N(N−2))·F(level; 2, N−2)·sqrt(det S)``."""
    sd, n = _sqrt_det_cov(ap, ml)
    return math.pi * 2.0 * (n - 1) * (n + 1) / (n * (n - 2)) * float(stats.f.ppf(level, 2, n - 2)) * sd


def area_chi2(ap: np.ndarray, ml: np.ndarray, level: float = 0.95) -> float:
    """χ²-ellipse common in toolboxes: ``π·χ²(level; 2)·sqrt(det S)``."""
    sd, _ = _sqrt_det_cov(ap, ml)
    return math.pi * float(stats.chi2.ppf(level, 2)) * sd


def area_cc(ap: np.ndarray, ml: np.ndarray, z: float = 1.645) -> float:
    """95 % confidence circle ``π·(MDIST + z·s_RD)²``, s_RD with ddof = 1."""
    rd = np.hypot(ap, ml)
    return math.pi * (float(np.mean(rd)) + z * float(np.std(rd, ddof=1))) ** 2


def area_sw(ap: np.ndarray, ml: np.ndarray, fs: float) -> float:
    """Sway area per unit time ``Σ|AP[n+1]·ML[n] − AP[n]·ML[n+1]| / (2T)`` (input unit²/s)."""
    cross = np.abs(ap[1:] * ml[:-1] - ap[:-1] * ml[1:])
    return float(np.sum(cross) / (2.0 * len(ap) / fs))


def jerk(ap: np.ndarray, fs: float, ml: np.ndarray | None = None) -> float:
    """ISway JERK ``½∫[(dAP/dt)² + (dML/dt)²] dt``: central differences, trapezoid rule (§1.3 note c).

    Not normalised by time (units: input² / s); ``jerk/T`` is reported separately as ``jerk_per_s``.
    """
    d2 = derivative(ap, fs) ** 2
    if ml is not None:
        d2 = d2 + derivative(ml, fs) ** 2
    return 0.5 * float(integrate.trapezoid(d2, dx=1.0 / fs))


# --------------------------------------------------------------------------------------------------
# 3. Frequency-domain measures (METRICS.md §1.4)


def spectral_measures(
    x: np.ndarray,
    fs: float,
    *,
    band_hz: tuple[float, float] = DEFAULT_BAND_HZ,
    method: str = "welch",
    segment_s: float = 10.0,
    power_unit: str = "(m/s^2)^2",
) -> SpectralMeasures:
    """POWER, F50, F95, centroidal frequency and frequency dispersion of ``x`` (N,) (mean removed here).

    ``method='welch'`` [PROJECT DEFAULT]: Hann window, ``segment_s`` segments, 50 % overlap (the whole
    signal if it is shorter). ``method='periodogram'``: rectangular window, as in the reference cases.
    Spectral moments ``μ_k = Σ f^k G(f) Δf`` over the band (inclusive). F50/F95 are the lowest bins at
    which the cumulative power reaches 50/95 % (no interpolation).
    """
    fs = check_fs(fs)
    check_option("method", method, ("welch", "periodogram"))
    lo, hi = float(band_hz[0]), float(band_hz[1])
    if not 0.0 <= lo < hi:
        raise ValidationError(f"band_hz must be (low, high) with 0 ≤ low < high; got {band_hz!r}")
    x = as_1d("x", x)
    x = x - np.mean(x)
    if method == "periodogram":
        f, g = signal.periodogram(x, fs, window="boxcar", detrend=False, scaling="density")
    else:
        nper = min(x.size, int(round(check_positive("segment_s", segment_s) * fs)))
        f, g = signal.welch(x, fs, window="hann", nperseg=nper, noverlap=nper // 2, detrend="constant")
    df = f[1] - f[0]
    sel = (f >= lo) & (f <= hi)
    f, p = f[sel], g[sel] * df
    mu0 = float(np.sum(p))
    if f.size == 0 or mu0 <= 0.0:
        nan = math.nan
        return SpectralMeasures(power_unit, method, (lo, hi), mu0 if f.size else nan, nan, nan, nan, nan)
    mu1, mu2 = float(np.sum(f * p)), float(np.sum(f**2 * p))
    cum = np.cumsum(p)
    tol = 1e-12 * mu0  # the last bin must reach 100 % despite rounding
    f50 = float(f[np.argmax(cum >= 0.5 * mu0 - tol)])
    f95 = float(f[np.argmax(cum >= 0.95 * mu0 - tol)])
    fd = math.sqrt(max(1.0 - mu1**2 / (mu0 * mu2), 0.0))
    return SpectralMeasures(power_unit, method, (lo, hi), mu0, f50, f95, math.sqrt(mu2 / mu0), fd)


# --------------------------------------------------------------------------------------------------
# 4. Grouped measures and the trial-level pipeline


def axis_sway(x: np.ndarray, fs: float, *, base_unit: str = "m/s^2", acceleration: bool = True) -> AxisSway:
    """All 1-D measures of a processed (mean-removed, filtered) signal ``x`` (N,) sampled at ``fs`` Hz.

    ``acceleration=False`` (angles, COP) leaves MV as NaN: it integrates acceleration.
    """
    fs = check_fs(fs)
    x = as_1d("x", x, min_len=3)
    t = x.size / fs
    j = jerk(x, fs)
    return AxisSway(
        base_unit=base_unit,
        mdist=mdist(x),
        rms=rms(x),
        range=range_1d(x),
        path=path_length(x),
        mvelo=mean_velocity(x, fs),
        mv=mv_from_acc(x, fs) if acceleration else math.nan,
        mfreq=mfreq_1d(x, fs),
        jerk=j,
        jerk_per_s=j / t,
    )


def planar_sway(
    ap: np.ndarray, ml: np.ndarray, fs: float, *, base_unit: str = "m/s^2", acceleration: bool = True
) -> PlanarSway:
    """All 2-D measures of processed AP and ML signals (each (N,), N ≥ 3)."""
    fs = check_fs(fs)
    ap = as_1d("ap", ap, min_len=3)
    ml = as_1d("ml", ml, n=ap.size)
    t = ap.size / fs
    j = jerk(ap, fs, ml)
    return PlanarSway(
        base_unit=base_unit,
        n_samples=int(ap.size),
        mdist=mdist(ap, ml),
        rms=rms(ap, ml),
        range_max_distance=range_max_distance(ap, ml),
        range_rss=range_rss(ap, ml),
        path=path_length(ap, ml),
        mvelo=mean_velocity(ap, fs, ml),
        mv=mv_from_acc(ap, fs, ml) if acceleration else math.nan,
        mfreq=mfreq_2d(ap, ml, fs),
        area_ce=area_ce(ap, ml),
        area_pred=area_prediction(ap, ml),
        area_chi2=area_chi2(ap, ml),
        area_cc=area_cc(ap, ml),
        area_sw=area_sw(ap, ml, fs),
        jerk=j,
        jerk_per_s=j / t,
    )


def _nan_result(base_unit: str, fs: float, duration_s: float, cutoff_hz: float | None, tilt: str, reason: str,
                power_unit: str, method: str, band: tuple[float, float]) -> SwayResult:
    nan = math.nan
    ax = AxisSway(base_unit, *([nan] * 9))
    pl = PlanarSway(base_unit, 0, *([nan] * 15))
    sp = SpectralMeasures(power_unit, method, band, nan, nan, nan, nan, nan)
    return SwayResult(ax, ax, pl, sp, sp, sp, fs, duration_s, cutoff_hz, tilt, valid=False, reason=reason)


def sway_measures(
    ap: np.ndarray,
    ml: np.ndarray,
    fs: float,
    *,
    cutoff_hz: float | None = DEFAULT_CUTOFF_HZ,
    discard_s: float = 0.0,
    resample_hz: float | None = None,
    band_hz: tuple[float, float] = DEFAULT_BAND_HZ,
    spectral_method: str = "welch",
    base_unit: str = "m/s^2",
    acceleration: bool = True,
    min_duration_s: float = DEFAULT_MIN_DURATION_S,
    tilt_correction: str = "none",
    tilt: tuple[float, float] = (math.nan, math.nan),
) -> SwayResult:
    """Sway measures of horizontal AP/ML signals (each (N,), unit ``base_unit``) at ``fs`` Hz.

    Applies :func:`preprocess_sway` (discard, mean removal, zero-lag low-pass) and computes the
    per-direction, combined and spectral measures. Data problems (NaN, too short) give a result with
    ``valid=False`` and the reason.
    """
    fs = check_fs(fs)
    ap = as_1d("ap", ap)
    ml = as_1d("ml", ml, n=ap.size)
    pu = f"({base_unit})^2" if base_unit != "rad" else "rad^2"
    problem = data_problem(np.column_stack([ap, ml]), fs=fs, min_duration_s=max(min_duration_s, 0) + discard_s,
                           what="sway signal")
    if problem:
        return _nan_result(base_unit, fs, ap.size / fs, cutoff_hz, tilt_correction, problem, pu, spectral_method,
                           tuple(band_hz))
    ap, ml, fs = preprocess_sway(ap, ml, fs, cutoff_hz=cutoff_hz, discard_s=discard_s, resample_hz=resample_hz)
    rd = np.hypot(ap, ml)
    spec = dict(band_hz=band_hz, method=spectral_method, power_unit=pu)
    return SwayResult(
        ap=axis_sway(ap, fs, base_unit=base_unit, acceleration=acceleration),
        ml=axis_sway(ml, fs, base_unit=base_unit, acceleration=acceleration),
        combined=planar_sway(ap, ml, fs, base_unit=base_unit, acceleration=acceleration),
        spectral_ap=spectral_measures(ap, fs, **spec),
        spectral_ml=spectral_measures(ml, fs, **spec),
        spectral_rd=spectral_measures(rd, fs, **spec),
        fs_hz=fs,
        duration_s=ap.size / fs,
        cutoff_hz=cutoff_hz,
        tilt_correction=tilt_correction,
        tilt_ap_rad=float(tilt[0]),
        tilt_ml_rad=float(tilt[1]),
    )


def sway_from_acc(
    acc: np.ndarray,
    fs: float,
    *,
    option: str = "A",
    quat: np.ndarray | None = None,
    g: float = STANDARD_G,
    axes: tuple[int, int, int] = (0, 2, 1),
    discard_s: float = DEFAULT_DISCARD_S,
    cutoff_hz: float | None = DEFAULT_CUTOFF_HZ,
    spectral_method: str = "welch",
    band_hz: tuple[float, float] = DEFAULT_BAND_HZ,
    resample_hz: float | None = None,
    min_duration_s: float = DEFAULT_MIN_DURATION_S,
) -> SwayResult:
    """ISway-style sway of one quiet-standing trial from a 3-axis accelerometer (N, 3), m/s².

    ``option='A'`` (default): static tilt correction; ``option='B'``: per-sample orientation
    ``quat`` (N, 4) of the frame ``acc`` is expressed in — "linear-acceleration sway", with its own
    norms. NaN samples make the result invalid.
    """
    fs = check_fs(fs)
    check_option("option", option, ("A", "B"))
    a = as_2d("acc", acc, 3)
    problem = data_problem(a, fs=fs, min_duration_s=min_duration_s + discard_s, what="acc")
    if problem:
        return _nan_result("m/s^2", fs, a.shape[0] / fs, cutoff_hz, option, problem, "(m/s^2)^2", spectral_method,
                           tuple(band_hz))
    if option == "A":
        tc = tilt_correct_static(a, g=g, axes=axes)
        ap, ml, tilt = tc.ap, tc.ml, (tc.tilt_ap, tc.tilt_ml)
    else:
        if quat is None:
            raise ValidationError("option 'B' needs quat (N, 4), the per-sample orientation; got None")
        ap, ml, _ = horizontal_acc_from_orientation(a, quat, g=g, ap_axis=axes[0])
        tilt = (math.nan, math.nan)
    return sway_measures(ap, ml, fs, cutoff_hz=cutoff_hz, discard_s=discard_s, resample_hz=resample_hz,
                         band_hz=band_hz, spectral_method=spectral_method, min_duration_s=min_duration_s,
                         tilt_correction=option, tilt=tilt)


def angular_sway(
    ap_angle: np.ndarray,
    ml_angle: np.ndarray,
    fs: float,
    *,
    cutoff_hz: float | None = DEFAULT_CUTOFF_HZ,
    discard_s: float = DEFAULT_DISCARD_S,
    spectral_method: str = "welch",
    band_hz: tuple[float, float] = DEFAULT_BAND_HZ,
    min_duration_s: float = DEFAULT_MIN_DURATION_S,
) -> SwayResult:
    """Angular sway of the trunk: the sway measures of sagittal (AP) and frontal (ML) inclination, rad.

    Same pipeline as :func:`sway_measures` with ``base_unit='rad'`` (MV, an acceleration integral, is NaN).
    """
    return sway_measures(ap_angle, ml_angle, fs, cutoff_hz=cutoff_hz, discard_s=discard_s,
                         spectral_method=spectral_method, band_hz=band_hz, base_unit="rad", acceleration=False,
                         min_duration_s=min_duration_s, tilt_correction="angles")


def romberg_ratio(eyes_open: SwayResult | float, eyes_closed: SwayResult | float) -> dict[str, float] | float:
    """Romberg ratio EC/EO: of two numbers, or of every time-domain measure of two :class:`SwayResult`.

    For results, keys are ``'<group>.<measure>'`` (e.g. ``'combined.rms'``, ``'ap.jerk'``); NaN where
    either trial is invalid or the eyes-open value is 0.
    """
    if not isinstance(eyes_open, SwayResult):
        eo, ec = float(eyes_open), float(eyes_closed)  # type: ignore[arg-type]
        return ec / eo if eo != 0.0 else math.nan
    if not isinstance(eyes_closed, SwayResult):
        raise ValidationError("romberg_ratio needs two SwayResult or two numbers; got a mix")
    out: dict[str, float] = {}
    ok = eyes_open.valid and eyes_closed.valid
    for group in ("ap", "ml", "combined"):
        a, b = getattr(eyes_open, group), getattr(eyes_closed, group)
        for name in a.units():
            eo, ec = float(getattr(a, name)), float(getattr(b, name))
            out[f"{group}.{name}"] = ec / eo if ok and eo != 0.0 and math.isfinite(eo) else math.nan
    return out
