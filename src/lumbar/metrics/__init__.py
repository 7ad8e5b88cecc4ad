"""Motor-control metrics on arrays: postural sway, segmental (lumbo-pelvic) control, repetition quality.

All functions take numpy arrays in SI units (m/s², rad, rad/s, s) and return plain floats/arrays or
typed result objects (:mod:`lumbar.metrics.results`) with units and ``to_dict()``. Definitions follow
the project's metric specification; our choices where it is ambiguous are in ``docs/metrics.md``.

Public names are resolved lazily (PEP 562) so that ``import lumbar.metrics`` stays light.
"""
from __future__ import annotations

from lumbar._lazy import attach

_MODULES = {
    "sway": [
        "tilt_correct_static", "horizontal_acc_from_orientation", "preprocess_sway", "mdist", "rms", "range_1d",
        "range_max_distance", "range_rss", "path_length", "mean_velocity", "mv_from_acc", "mfreq_2d", "mfreq_1d",
        "area_ce", "area_prediction", "area_chi2", "area_cc", "area_sw", "jerk", "spectral_measures", "axis_sway",
        "planar_sway", "sway_measures", "sway_from_acc", "angular_sway", "romberg_ratio",
    ],
    "segmental": [
        "lumbar_contribution", "lumbar_pelvic_ratio", "lumbo_pelvic_rhythm", "rhythm_curve", "onset_lag",
        "crp_hilbert", "crp_phase_plane", "crp_cycles", "cross_correlation", "dissociation", "rom_per_plane",
    ],
    "repetitions": [
        "hysteresis_events", "threshold_crossings", "thresholds_from_trial", "repetition_bounds",
        "repetition_metrics", "segment_repetitions", "RepetitionSegmenter", "movement_window",
        "coefficient_of_variation", "dtw_distance", "consistency", "trend", "symmetry_index",
    ],
    "live": ["LiveAnalyzer", "LiveSnapshot"],
    "smoothness": ["sparc", "sparc_spectrum", "dimensionless_jerk", "ldlj"],
    "results": [
        "Result", "AxisSway", "PlanarSway", "SpectralMeasures", "SwayResult", "RhythmResult", "OnsetLag",
        "CRPResult", "CRPSummary", "CrossCorrelation", "DissociationResult", "RhythmSummary", "FrontalControl",
        "RomResult", "Repetition",
        "RepetitionSet", "Consistency", "Trend", "Symmetry", "display_value",
    ],
}
_LAZY = {name: f"lumbar.metrics.{mod}" for mod, names in _MODULES.items() for name in names}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = attach(__name__, _LAZY)
