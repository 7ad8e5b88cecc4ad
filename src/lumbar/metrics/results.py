"""Typed result objects of the metric groups.

Every result is a frozen dataclass whose fields are plain floats, ints, strings, numpy arrays
or nested results, always in SI units (rad, rad/s, s, m/s², Hz). Each class declares the unit of
each field in ``UNITS``; :meth:`Result.to_dict` gives a JSON-ready dict (NaN → ``None``), and
``to_dict(display=True)`` converts angle units to degrees for people (METRICS.md §0.4).

A result that could not be computed honestly carries ``valid=False`` and a ``reason``; its numbers
are NaN, never a silent value.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "Result",
    "AxisSway",
    "PlanarSway",
    "SpectralMeasures",
    "SwayResult",
    "RhythmResult",
    "OnsetLag",
    "CRPResult",
    "CRPSummary",
    "CrossCorrelation",
    "DissociationResult",
    "RhythmSummary",
    "FrontalControl",
    "RomResult",
    "Repetition",
    "RepetitionSet",
    "Consistency",
    "Trend",
    "Symmetry",
    "display_value",
]

_RAD_TO_DEG = 180.0 / math.pi
# unit (SI) -> (display unit, factor)
_DISPLAY = {
    "rad": ("deg", _RAD_TO_DEG),
    "rad/s": ("deg/s", _RAD_TO_DEG),
    "rad^2": ("deg^2", _RAD_TO_DEG**2),
    "rad^2/s": ("deg^2/s", _RAD_TO_DEG**2),
    "rad^2/s^2": ("deg^2/s^2", _RAD_TO_DEG**2),
    "rad/s^2": ("deg/s^2", _RAD_TO_DEG),
}


def display_value(value: Any, unit: str) -> tuple[Any, str]:
    """(value, unit) converted for display: radians → degrees; other units unchanged."""
    if unit in _DISPLAY:
        disp, k = _DISPLAY[unit]
        if isinstance(value, np.ndarray):
            return value * k, disp
        if isinstance(value, (tuple, list)):
            return type(value)(v * k for v in value), disp
        if isinstance(value, (int, float, np.floating)) and not isinstance(value, bool):
            return float(value) * k, disp
    return value, unit


def _jsonable(v: Any, display: bool) -> Any:
    if isinstance(v, Result):
        return v.to_dict(display=display)
    if isinstance(v, np.ndarray):
        if not v.ndim:
            return _jsonable(v.item(), display)
        if v.dtype.kind in "biu" or (v.dtype.kind == "f" and np.isfinite(v).all()):
            return v.tolist()  # plain Python numbers already (one call instead of one per element)
        return [_jsonable(x, display) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_jsonable(x, display) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x, display) for k, x in v.items()}
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


@dataclass(frozen=True)
class Result:
    """Base of all metric results: validity, reason, units per field, JSON export."""

    UNITS: ClassVar[dict[str, str]] = {}

    def units(self) -> dict[str, str]:
        """Unit (SI) of each numeric field; fields not listed are dimensionless or labels."""
        return dict(self.UNITS)

    def to_dict(self, *, display: bool = False) -> dict[str, Any]:
        """JSON-ready dict. ``display=True`` converts rad → deg (and rad/s → deg/s, …)."""
        units = self.units()
        out: dict[str, Any] = {}
        used: dict[str, str] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            u = units.get(f.name)
            if u is not None:
                if display:
                    v, u = display_value(v, u)
                used[f.name] = u
            out[f.name] = _jsonable(v, display)
        out["units"] = used
        out["type"] = type(self).__name__
        return out


def _sway_units(base: str) -> dict[str, str]:
    """Units of sway measures for a signal in ``base`` (e.g. 'm/s^2', 'rad', 'mm')."""
    pretty = {
        "m/s^2": {"mv": "m/s", "mvelo": "m/s^3", "jerk": "m^2/s^5", "jerk_per_s": "m^2/s^6", "area": "(m/s^2)^2",
                  "area_sw": "m^2/s^5"},
        "rad": {"mv": "rad*s", "mvelo": "rad/s", "jerk": "rad^2/s", "jerk_per_s": "rad^2/s^2", "area": "rad^2",
                "area_sw": "rad^2/s"},
        "mm": {"mv": "mm*s", "mvelo": "mm/s", "jerk": "mm^2/s", "jerk_per_s": "mm^2/s^2", "area": "mm^2",
               "area_sw": "mm^2/s"},
    }
    p = pretty.get(base, {"mv": f"{base}*s", "mvelo": f"{base}/s", "jerk": f"({base})^2/s",
                          "jerk_per_s": f"({base})^2/s^2", "area": f"({base})^2", "area_sw": f"({base})^2/s"})
    return {
        "mdist": base, "rms": base, "range": base, "range_max_distance": base, "range_rss": base, "path": base,
        "mvelo": p["mvelo"], "mv": p["mv"], "mfreq": "Hz", "jerk": p["jerk"], "jerk_per_s": p["jerk_per_s"],
        "area_ce": p["area"], "area_pred": p["area"], "area_chi2": p["area"], "area_cc": p["area"],
        "area_sw": p["area_sw"],
    }


@dataclass(frozen=True)
class AxisSway(Result):
    """1-D (AP or ML) time-domain sway measures (METRICS.md §1.3). Units follow ``base_unit``."""

    base_unit: str
    mdist: float
    rms: float
    range: float
    path: float
    mvelo: float
    mv: float
    mfreq: float
    jerk: float
    jerk_per_s: float

    def units(self) -> dict[str, str]:
        u = _sway_units(self.base_unit)
        return {f.name: u[f.name] for f in fields(self) if f.name in u}


@dataclass(frozen=True)
class PlanarSway(Result):
    """2-D (AP+ML) time-domain sway measures (METRICS.md §1.3). Units follow ``base_unit``.

    ``range_max_distance`` is Prieto's largest distance between two points of the path;
    ``range_rss`` is sqrt(range_AP² + range_ML²) (the other definition in use, §6.4).
    """

    base_unit: str
    n_samples: int
    mdist: float
    rms: float
    range_max_distance: float
    range_rss: float
    path: float
    mvelo: float
    mv: float
    mfreq: float
    area_ce: float
    area_pred: float
    area_chi2: float
    area_cc: float
    area_sw: float
    jerk: float
    jerk_per_s: float

    def units(self) -> dict[str, str]:
        u = _sway_units(self.base_unit)
        return {f.name: u[f.name] for f in fields(self) if f.name in u}


@dataclass(frozen=True)
class SpectralMeasures(Result):
    """Frequency-domain measures of one signal (METRICS.md §1.4)."""

    power_unit: str
    method: str
    band_hz: tuple[float, float]
    power: float
    f50: float
    f95: float
    cf: float
    fd: float

    def units(self) -> dict[str, str]:
        return {"power": self.power_unit, "f50": "Hz", "f95": "Hz", "cf": "Hz", "band_hz": "Hz"}


@dataclass(frozen=True)
class SwayResult(Result):
    """One quiet-standing trial: per-direction, combined and spectral measures plus provenance."""

    ap: AxisSway
    ml: AxisSway
    combined: PlanarSway
    spectral_ap: SpectralMeasures
    spectral_ml: SpectralMeasures
    spectral_rd: SpectralMeasures
    fs_hz: float
    duration_s: float
    cutoff_hz: float | None
    tilt_correction: str
    tilt_ap_rad: float = math.nan
    tilt_ml_rad: float = math.nan
    valid: bool = True
    reason: str = ""

    UNITS: ClassVar[dict[str, str]] = {"fs_hz": "Hz", "duration_s": "s", "cutoff_hz": "Hz",
                                       "tilt_ap_rad": "rad", "tilt_ml_rad": "rad"}


@dataclass(frozen=True)
class RhythmResult(Result):
    """Lumbo-pelvic rhythm of one bend (METRICS.md §2.2). Angles in rad.

    ``bin_contribution_pct`` (bending) and ``return_bin_contribution_pct`` give the lumbar
    contribution per bin; ``bin_edges`` are the bin edges (fraction of time or of trunk excursion).
    """

    lumbar_excursion: float
    pelvic_excursion: float
    lumbar_contribution_pct: float
    lumbar_pelvic_ratio: float
    binning: str
    bin_edges: np.ndarray
    bin_contribution_pct: np.ndarray
    return_bin_contribution_pct: np.ndarray
    start_idx: int
    peak_idx: int
    end_idx: int
    valid: bool = True
    reason: str = ""

    UNITS: ClassVar[dict[str, str]] = {"lumbar_excursion": "rad", "pelvic_excursion": "rad",
                                       "lumbar_contribution_pct": "%", "bin_contribution_pct": "%",
                                       "return_bin_contribution_pct": "%"}


@dataclass(frozen=True)
class OnsetLag(Result):
    """Onset of two signals and their lag ``t_onset(second) − t_onset(first)`` (s)."""

    onset_first_s: float
    onset_second_s: float
    lag_s: float
    threshold: float
    valid: bool = True
    reason: str = ""

    UNITS: ClassVar[dict[str, str]] = {"onset_first_s": "s", "onset_second_s": "s", "lag_s": "s",
                                       "threshold": "rad"}


@dataclass(frozen=True)
class CRPResult(Result):
    """Continuous relative phase series (rad, wrapped to (−π, π]) and its summary over the kept samples."""

    method: str
    crp: np.ndarray
    keep: np.ndarray
    mean: float
    sd: float
    marp: float
    valid: bool = True
    reason: str = ""

    UNITS: ClassVar[dict[str, str]] = {"crp": "rad", "mean": "rad", "sd": "rad", "marp": "rad"}


@dataclass(frozen=True)
class CRPSummary(Result):
    """Cycle-based CRP summary (Stergiou et al. 2001): mean curve, MARP and deviation phase DP."""

    n_cycles: int
    mean_curve: np.ndarray
    sd_curve: np.ndarray
    marp: float
    dp: float
    valid: bool = True
    reason: str = ""

    UNITS: ClassVar[dict[str, str]] = {"mean_curve": "rad", "sd_curve": "rad", "marp": "rad", "dp": "rad"}


@dataclass(frozen=True)
class CrossCorrelation(Result):
    """Normalised cross-correlation: lag at the maximum (s; positive = second lags first) and r there."""

    lag_s: float
    r_max: float
    lags_s: np.ndarray
    r: np.ndarray
    valid: bool = True
    reason: str = ""

    UNITS: ClassVar[dict[str, str]] = {"lag_s": "s", "lags_s": "s"}


@dataclass(frozen=True)
class DissociationResult(Result):
    """Movement-control (dissociation) test: A moves, B should stay still (METRICS.md §2.5)."""

    excursion_a: float
    excursion_b: float
    ratio: float
    leak_at_target: float
    peak_leak_velocity: float
    target_reached: bool
    passed: bool
    tolerance: float
    ratio_tolerance: float = math.inf
    valid: bool = True
    reason: str = ""

    UNITS: ClassVar[dict[str, str]] = {"excursion_a": "rad", "excursion_b": "rad", "leak_at_target": "rad",
                                       "peak_leak_velocity": "rad/s", "tolerance": "rad"}


@dataclass(frozen=True)
class RhythmSummary(Result):
    """Lumbo-pelvic rhythm over the accepted repetitions of a set (METRICS.md §2.2): per-repetition
    lumbar contribution and lumbar:pelvic ratio (start → peak trunk flexion), their mean and SD (ddof 1)."""

    n: int
    lumbar_contribution_pct: float
    lumbar_contribution_sd_pct: float
    lumbar_pelvic_ratio: float
    lumbar_pelvic_ratio_sd: float
    per_rep_contribution_pct: np.ndarray
    per_rep_ratio: np.ndarray
    valid: bool = True
    reason: str = ""

    UNITS: ClassVar[dict[str, str]] = {"lumbar_contribution_pct": "%", "lumbar_contribution_sd_pct": "%",
                                       "per_rep_contribution_pct": "%"}


@dataclass(frozen=True)
class FrontalControl(Result):
    """Frontal-plane control while standing on one leg (METRICS.md §2.6 test 3, reported as angles and
    their left/right symmetry until a pass criterion is validated): the largest frontal tilt of the
    pelvis (sacral segment) to each side, i.e. the pelvic drop, and the largest lumbar lateral bending
    to each side, i.e. the trunk lean relative to the pelvis; symmetry index of the drop (§4.5)."""

    pelvic_tilt_right: float
    pelvic_tilt_left: float
    trunk_lean_right: float
    trunk_lean_left: float
    pelvic_drop: float
    trunk_lean: float
    drop_symmetry_pct: float
    valid: bool = True
    reason: str = ""
    #: how the legs were told apart: "thighs" (the lifted leg's hip flexes; the fields below are filled) or
    #: "tilt" (the side of each tilt only: the fields above)
    sides_from: str = "tilt"
    #: standing on each leg (the other one lifted): the low back's largest sideways bend and the pelvis's
    #: largest frontal tilt from the calibration posture, the number of stances, and the difference between
    #: the legs' bends
    lean_on_left: float = math.nan
    lean_on_right: float = math.nan
    drop_on_left: float = math.nan
    drop_on_right: float = math.nan
    stances_left: int = 0
    stances_right: int = 0
    lean_difference: float = math.nan

    UNITS: ClassVar[dict[str, str]] = {"pelvic_tilt_right": "rad", "pelvic_tilt_left": "rad",
                                       "trunk_lean_right": "rad", "trunk_lean_left": "rad", "pelvic_drop": "rad",
                                       "trunk_lean": "rad", "drop_symmetry_pct": "%", "lean_on_left": "rad",
                                       "lean_on_right": "rad", "drop_on_left": "rad", "drop_on_right": "rad",
                                       "lean_difference": "rad"}


@dataclass(frozen=True)
class RomResult(Result):
    """Range of motion per plane (rad): columns flexion, lateral bending, axial rotation."""

    minimum: np.ndarray
    maximum: np.ndarray
    rom: np.ndarray
    planes: tuple[str, ...] = ("flexion", "lateral_bending", "axial_rotation")
    valid: bool = True
    reason: str = ""

    UNITS: ClassVar[dict[str, str]] = {"minimum": "rad", "maximum": "rad", "rom": "rad"}


@dataclass(frozen=True)
class Repetition(Result):
    """One repetition (METRICS.md §4.2–4.3). Indices are sample indices of the analysed signal."""

    start_idx: int
    peak_idx: int
    end_idx: int
    start_s: float
    peak_s: float
    end_s: float
    rom: float
    return_rom: float
    duration_s: float
    time_to_peak_s: float
    time_to_peak_pct: float
    peak_velocity_out: float
    peak_velocity_return: float
    mean_velocity: float
    movement_onset_idx: int
    movement_offset_idx: int
    sparc: float
    ldlj: float
    other_plane_range: tuple[float, ...] = ()
    lumbar_share_pct: float = math.nan
    range: float = math.nan
    valid: bool = True
    reason: str = ""

    UNITS: ClassVar[dict[str, str]] = {
        "range": "rad", "start_s": "s", "peak_s": "s", "end_s": "s", "rom": "rad", "return_rom": "rad", "duration_s": "s",
        "time_to_peak_s": "s", "time_to_peak_pct": "%", "peak_velocity_out": "rad/s",
        "peak_velocity_return": "rad/s", "mean_velocity": "rad/s", "other_plane_range": "rad",
        "lumbar_share_pct": "%",
    }


@dataclass(frozen=True)
class Consistency(Result):
    """Across-repetition consistency (METRICS.md §4.4)."""

    n: int
    cv_rom_pct: float
    cv_duration_pct: float
    cv_peak_velocity_pct: float
    mean_curve: np.ndarray
    rmsd_to_mean: np.ndarray
    dtw_to_mean: np.ndarray
    dtw_per_step: np.ndarray
    valid: bool = True
    reason: str = ""

    UNITS: ClassVar[dict[str, str]] = {"cv_rom_pct": "%", "cv_duration_pct": "%", "cv_peak_velocity_pct": "%",
                                       "mean_curve": "rad", "rmsd_to_mean": "rad", "dtw_to_mean": "rad",
                                       "dtw_per_step": "rad"}


@dataclass(frozen=True)
class Trend(Result):
    """Linear trend of a per-repetition value over repetition number (fatigue)."""

    slope_per_rep: float
    intercept: float
    slope_pct_per_rep: float
    r: float
    p_value: float
    n: int
    unit: str = ""
    valid: bool = True
    reason: str = ""

    def units(self) -> dict[str, str]:
        return {"slope_per_rep": self.unit, "intercept": self.unit, "slope_pct_per_rep": "%"} if self.unit else {}


@dataclass(frozen=True)
class Symmetry(Result):
    """Symmetry index SI = 100·(L − R)/(0.5·(L + R)) (Robinson et al. 1987) and min/max ratio."""

    left: float
    right: float
    si_pct: float
    min_max_ratio: float
    valid: bool = True
    reason: str = ""

    UNITS: ClassVar[dict[str, str]] = {"si_pct": "%"}


@dataclass(frozen=True)
class RepetitionSet(Result):
    """Segmentation of one set: accepted and rejected repetitions, thresholds used, consistency, trend."""

    count: int
    repetitions: tuple[Repetition, ...]
    rejected: tuple[Repetition, ...]
    lo: float
    hi: float
    rom_ref: float
    fs_hz: float
    consistency: Consistency | None = None
    rom_trend: Trend | None = None
    valid: bool = True
    reason: str = ""

    UNITS: ClassVar[dict[str, str]] = {"lo": "rad", "hi": "rad", "rom_ref": "rad", "fs_hz": "Hz"}

    def values(self, name: str) -> np.ndarray:
        """One field over the accepted repetitions, as an array."""
        return np.array([getattr(r, name) for r in self.repetitions], dtype=np.float64)
