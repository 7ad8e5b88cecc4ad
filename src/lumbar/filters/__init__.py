"""Signal-processing filters: orientation (this package), IIR, calibration.

Public names are resolved lazily (PEP 562) so that ``import lumbar.filters`` does not import
numba; kernels compile, or load from the on-disk cache, on first use.
"""
from __future__ import annotations

from lumbar._lazy import attach

_LAZY = {
    "estimate_orientation": "lumbar.filters.orientation",
    "vqf_offline": "lumbar.filters.orientation",
    "OrientationDiagnostics": "lumbar.filters.orientation",
    "OrientationFilter": "lumbar.filters.orientation",
    "MadgwickFilter": "lumbar.filters.orientation",
    "MahonyFilter": "lumbar.filters.orientation",
    "VQFFilter": "lumbar.filters.orientation",
    "MadgwickParams": "lumbar.filters.orientation",
    "MahonyParams": "lumbar.filters.orientation",
    "VQFParams": "lumbar.filters.orientation",
    "SOSFilter": "lumbar.filters.iir",
    "derivative": "lumbar.filters.iir",
    "derivative_step": "lumbar.filters.iir",
    "resample": "lumbar.filters.iir",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = attach(__name__, _LAZY)
