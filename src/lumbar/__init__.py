"""lumbar — lumbar motor control measured with wearable IMUs.

Public entry points are imported lazily so that ``import lumbar`` stays fast
(numba kernels compile or load from cache only when first used).
"""
from __future__ import annotations

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("lumbar-motor-control")
except _metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

from lumbar.errors import LumbarError  # noqa: E402

__all__ = ["LumbarError", "__version__"]
