"""Whole-dataset reads with the inflate work spread over threads.

HDF5 runs its filter pipeline (byte shuffle, deflate) one chunk after the other under h5py's global
lock, holding the interpreter lock too, so reading a one-hour session spends ~0.35 s inflating on one
core. h5py's direct chunk access (``read_direct_chunk``) hands over the stored bytes instead; here each
chunk is inflated (ISA-L's inflate, ``isal``, else zlib: both release the interpreter lock) and
un-shuffled (a numpy copy) on a thread pool. The result is the same array ``ds[()]`` gives — a test
checks it — and the writer's counterpart is :func:`lumbar.storage.writer._deflate_chunks`.

Only the layout the writer makes is handled: chunked along the first axis only, gzip with or without
shuffle and nothing else, a plain native-order numeric dtype. Anything else, a chunk whose filters
were skipped, or a chunk that does not inflate goes through h5py's own path (which reports damage).
"""
from __future__ import annotations

import zlib
from concurrent.futures import Executor
from typing import Callable

import h5py
import numpy as np

__all__ = ["read_all"]

#: Below this many chunks the hand-off to threads costs more than it saves.
_MIN_CHUNKS = 4


def _inflater() -> Callable[[bytes], bytes]:
    try:
        from isal import isal_zlib

        return isal_zlib.decompress
    except ImportError:  # a platform without an isal wheel
        return zlib.decompress


_INFLATE = _inflater()


def _layout(ds: h5py.Dataset) -> tuple[int, bool] | None:
    """(rows per chunk, shuffled) for a dataset this module reads, else None."""
    if ds.chunks is None or ds.compression != "gzip" or ds.fletcher32 or ds.scaleoffset is not None:
        return None
    if ds.ndim == 0 or ds.dtype.kind not in "biuf" or ds.dtype.byteorder not in "=|<":
        return None
    if tuple(ds.chunks[1:]) != tuple(ds.shape[1:]):
        return None
    dcpl = ds.id.get_create_plist()
    filters = [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())]
    if filters == [h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_DEFLATE]:
        return int(ds.chunks[0]), True
    if filters == [h5py.h5z.FILTER_DEFLATE]:
        return int(ds.chunks[0]), False
    return None


class _NotOurLayout(Exception):
    pass


def read_all(ds: h5py.Dataset, pool: Executor | None) -> np.ndarray:
    """``ds[()]``, with the chunks inflated on ``pool``'s threads where the layout allows.

    Raises what h5py raises for the dataset (OSError for damaged data).
    """
    layout = _layout(ds) if pool is not None else None
    n = ds.shape[0] if ds.ndim else 0
    if layout is None or n == 0:
        return ds[()]
    rows, shuffled = layout
    n_chunks = -(-n // rows)
    if n_chunks < _MIN_CHUNKS:
        return ds[()]
    itemsize = ds.dtype.itemsize
    row_bytes = itemsize * int(np.prod(ds.shape[1:], dtype=np.int64))
    out = np.empty(ds.shape, ds.dtype)
    dest = out.reshape(-1).view(np.uint8)
    zeros = (0,) * (ds.ndim - 1)

    def decode(k: int, data: bytes) -> None:
        raw = np.frombuffer(_INFLATE(data), np.uint8)
        if raw.size != rows * row_bytes:
            raise _NotOurLayout
        lo, hi = k * rows, min(n, (k + 1) * rows)
        d = dest[lo * row_bytes : hi * row_bytes]
        if shuffled and itemsize > 1:
            # byte j of element e is stored at raw[j·count + e]: one strided copy puts it in place
            d.reshape(-1, itemsize)[...] = raw.reshape(itemsize, -1).T[: d.size // itemsize]
        else:
            d[...] = raw[: d.size]

    try:
        futures = []
        for k in range(n_chunks):
            mask, data = ds.id.read_direct_chunk((k * rows, *zeros))
            if mask:  # a filter was skipped for this chunk
                raise _NotOurLayout
            futures.append(pool.submit(decode, k, data))
        for f in futures:
            f.result()
    except Exception:  # noqa: BLE001 - any failure here (layout, a damaged chunk: zlib or ISA-L error)
        return ds[()]  # h5py's own path: the right values, or h5py's error for damaged data
    return out
