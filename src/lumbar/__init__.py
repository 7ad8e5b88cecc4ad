"""lumbar — lumbar motor control measured with wearable IMUs.

Public entry points are imported lazily so that ``import lumbar`` stays fast
(numba kernels compile or load from cache only when first used):

* :func:`lumbar.estimate_orientation` — quaternions (N, 4) from acc (m/s²) and gyro (rad/s).
* :func:`lumbar.read_session` — a session file, validated.
"""
from __future__ import annotations

from importlib import import_module
from importlib import metadata as _metadata
from typing import Any

try:
    __version__ = _metadata.version("lumbar-motor-control")
except _metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

from lumbar.errors import LumbarError  # noqa: E402

_LAZY = {
    "estimate_orientation": "lumbar.filters.orientation",
    "read_session": "lumbar.storage.reader",
    "simulate": "lumbar.simulate",
}

__all__ = ["LumbarError", "__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'lumbar' has no attribute {name!r}") from None
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
