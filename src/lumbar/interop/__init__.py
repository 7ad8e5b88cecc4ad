"""Research interoperability: export (Motion-BIDS, CSV), import (APDM Opal HDF5, declared CSV),
live streaming to Lab Streaming Layer, and batch analysis of folder trees (local processes or Dask).

Each module is imported on its own; optional dependencies (``pylsl``, ``dask.distributed``) are
imported only by the functions that need them. See ``docs/interop.md``.
"""
from __future__ import annotations

__all__: list[str] = []
