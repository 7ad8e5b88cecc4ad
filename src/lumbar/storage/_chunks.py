"""Chunk-level writes and reads: whole datasets with the (de)compression spread over threads, and the
live writer's appends (:func:`append_rows`) compressed outside the interpreter lock.

HDF5 runs its filter pipeline (byte shuffle, deflate) one chunk after the other under h5py's global
lock, holding the interpreter lock too. h5py's direct chunk access (``write_direct_chunk`` /
``read_direct_chunk``) moves the stored bytes without it; here each chunk is shuffled and deflated, or
inflated and un-shuffled, on a thread pool (ISA-L's deflate/inflate, ``isal``, else zlib: both release
the interpreter lock). The stored chunks are exactly what HDF5's shuffle + gzip filters read and write,
so any HDF5 reader decodes the files, and :func:`read_all` gives the array ``ds[()]`` gives (tests).

Only the layout the writers make is handled: chunked along the first axis only, gzip with (writes) or
with or without (reads) shuffle and nothing else, a plain native-order numeric dtype. Anything else, a
chunk whose filters were skipped, or a chunk that does not inflate goes through h5py's own path
(which reports damage).
"""
from __future__ import annotations

import zlib
from concurrent.futures import Executor
from typing import Callable

import h5py
import numpy as np

__all__ = ["read_all", "write_all", "can_write", "append_rows", "deflate_chunk"]

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


# --------------------------------------------------------------------------------------------------
# Writing


def can_write(arr: np.ndarray, chunks: tuple[int, ...] | None, compression: str | None, shuffle: bool) -> bool:
    """Whether :func:`write_all` can write ``arr``: gzip + shuffle, chunked along the first axis
    only, a plain numeric native-order dtype, at least one element."""
    return (compression == "gzip" and bool(shuffle) and chunks is not None and arr.ndim >= 1
            and arr.size > 0 and tuple(chunks[1:]) == tuple(arr.shape[1:])
            and arr.dtype.kind in "biuf" and arr.dtype.isnative)


def write_all(ds: h5py.Dataset, arr: np.ndarray, rows: int, level: int, pool: Executor) -> None:
    """Write ``arr`` into the new, empty chunked dataset ``ds`` chunk by chunk, compressed on ``pool``."""
    tail = (0,) * (arr.ndim - 1)
    for i, data in enumerate(_deflate_chunks(arr, rows, level, pool)):
        ds.id.write_direct_chunk((i * rows, *tail), data)


def _deflater() -> Callable[[bytes, int], bytes]:
    """``compress(data, level)`` giving a zlib stream (what HDF5's gzip filter stores and inflates):
    Intel ISA-L's (``isal``), about 8× faster than zlib at the fast levels and as small, else zlib's.
    Both release the GIL while they compress."""
    try:
        from isal import isal_zlib
    except ImportError:  # a platform without an isal wheel: the standard library's
        return zlib.compress
    # ISA-L has levels 0–3; the dataset keeps the gzip level it was asked for (readers ignore it)
    return lambda data, level: isal_zlib.compress(data, 1 if level <= 2 else 2 if level <= 5 else 3)


_DEFLATE = _deflater()


def _deflate_chunks(arr: np.ndarray, rows: int, level: int, pool: Executor) -> list[bytes]:
    """The chunks of ``arr`` (``rows`` along the first axis) as HDF5's shuffle + deflate filters store
    them, compressed on the threads of ``pool`` (:func:`_deflater`).

    Shuffle (HDF5's byte transposition within a chunk) puts byte k of every element together; deflate
    is a zlib stream, as HDF5's gzip filter writes it. The last chunk is padded to full size with the
    dataset's fill value (0), as HDF5 stores edge chunks."""
    return list(pool.map(lambda start: deflate_chunk(arr[start : start + rows], rows, level),
                         range(0, arr.shape[0], rows)))


def deflate_chunk(block: np.ndarray, rows: int, level: int) -> bytes:
    """One chunk of ``rows`` rows as HDF5's shuffle + deflate filters store it; ``block`` holds its first
    rows (at most ``rows``: the rest is the fill value, 0). Compressed without the interpreter lock."""
    if block.shape[0] < rows:
        full = np.zeros((rows, *block.shape[1:]), dtype=block.dtype)
        full[: block.shape[0]] = block
        block = full
    raw = np.ascontiguousarray(block).view(np.uint8).reshape(-1, block.dtype.itemsize)
    return _DEFLATE(np.ascontiguousarray(raw.T), level)


def append_rows(ds: h5py.Dataset, start: int, rows: np.ndarray, carry: np.ndarray, n_rows: int,
                level: int) -> np.ndarray:
    """Write ``rows`` at row ``start`` of the chunked dataset ``ds`` (already resized to hold them; ``n_rows``
    rows per chunk, gzip ``level``) as whole stored chunks (:func:`deflate_chunk`), bypassing HDF5's filter
    pipeline and its locks.

    ``carry`` holds the rows of the last, partial chunk from ``start - len(carry)`` (a chunk boundary):
    that chunk is stored again, now with more rows. Returns the new carry. Every write of ``ds`` must go
    through here (:func:`can_write` says whether it can)."""
    first = start - len(carry)
    if first % n_rows:
        raise ValueError(f"the carried rows must start on a chunk boundary; got row {first} for chunks of {n_rows}")
    block = np.concatenate((carry, rows)) if len(carry) else np.ascontiguousarray(rows)
    tail = (0,) * (rows.ndim - 1)
    for k in range(0, len(block), n_rows):
        ds.id.write_direct_chunk((first + k, *tail), deflate_chunk(block[k : k + n_rows], n_rows, level))
    keep = len(block) % n_rows
    return block[len(block) - keep :].copy() if keep else block[:0].copy()
