"""lumbar — lumbar motor control measured with wearable IMUs.

Public entry points are imported lazily so that ``import lumbar`` stays fast
(numba kernels compile or load from cache only when first used):

* :func:`lumbar.estimate_orientation` — quaternions (N, 4) from acc (m/s²) and gyro (rad/s).
* :func:`lumbar.read_session` — a session file, validated.
"""
from __future__ import annotations

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("lumbar-motor-control")
except _metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

from lumbar._lazy import attach  # noqa: E402
from lumbar.errors import LumbarError  # noqa: E402

_LAZY = {
    "estimate_orientation": "lumbar.filters.orientation",
    "read_session": "lumbar.storage.reader",
    "simulate": "lumbar.simulate",
}

__all__ = ["LumbarError", "__version__", *sorted(_LAZY)]


__getattr__, __dir__ = attach(__name__, _LAZY)
