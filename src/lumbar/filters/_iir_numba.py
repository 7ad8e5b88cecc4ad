"""numba kernels of IIR filtering in second-order sections (SOS).

Private module: use :mod:`lumbar.filters.iir` (it designs, validates, allocates and calls
these kernels). Importing this module imports numba; it is imported lazily.

Layouts (all float64, C-contiguous)

* ``x``, ``out``: shape (N, C), one row per sample, one column per channel.
* ``sos``: shape (S, 6), rows ``(b0, b1, b2, a0, a1, a2)`` with ``a0 == 1`` (as returned by
  ``scipy.signal.butter(..., output="sos")``; ``a0`` is not read).
* ``state``: shape (S, 2, C), the two delay registers of each section in direct form II
  transposed, per channel — the layout of ``zi`` in ``scipy.signal.sosfilt(sos, x, axis=0,
  zi=zi)``, so states can be exchanged with scipy. Updated in place.

Kernels

* ``sos_step(x, sos, state, out)``: one sample, ``x`` and ``out`` shape (C,);
* ``sos_run(x, sos, state, out)``: a block, samples in order;
* ``sos_run_backward(x, sos, state, out)``: a block, samples in reverse order (the
  backward pass of zero-phase filtering, without copying a reversed array).

All three run the same section update, whose arithmetic is that of scipy's ``sosfilt``
term for term, so the outputs are bit-identical to scipy's (fastmath off: no reassociation,
no fused multiply-add). Samples are processed in blocks of ``BLOCK_ROWS`` rows, each section
over the whole block before the next; every channel still sees exactly the sequence of
operations of a sample-by-sample loop, so chunked, stepped and one-pass runs agree bit for
bit. ``out`` may be ``x`` (in-place filtering). NaN or inf in the input
enters the state and propagates to every later output until the state is reset. Kernels
never validate their input.
"""
from __future__ import annotations

from lumbar.filters._numba import jit

__all__ = ["sos_step", "sos_run", "sos_run_backward"]


#: rows per block: a block of all channels (256 × C × 8 bytes) stays in the L1 cache while
#: each section passes over it
BLOCK_ROWS = 256


# The section recurrence is a serial dependency chain (each output needs the previous
# state), so one channel at a time leaves the CPU waiting on latency. The biquad helpers
# below run 4, 2 or 1 channels side by side with the state in registers: independent chains
# interleaved. The arithmetic per channel is the same expression in the same order as
# scipy's, so the result does not depend on the grouping.


@jit
def _biquad4(out, first, stop, step, c, b0, b1, b2, a1, a2, z):
    za0 = z[0, c]
    za1 = z[1, c]
    zb0 = z[0, c + 1]
    zb1 = z[1, c + 1]
    zc0 = z[0, c + 2]
    zc1 = z[1, c + 2]
    zd0 = z[0, c + 3]
    zd1 = z[1, c + 3]
    for i in range(first, stop, step):
        xa = out[i, c]
        xb = out[i, c + 1]
        xc = out[i, c + 2]
        xd = out[i, c + 3]
        ya = b0 * xa + za0
        yb = b0 * xb + zb0
        yc = b0 * xc + zc0
        yd = b0 * xd + zd0
        za0 = b1 * xa - a1 * ya + za1
        zb0 = b1 * xb - a1 * yb + zb1
        zc0 = b1 * xc - a1 * yc + zc1
        zd0 = b1 * xd - a1 * yd + zd1
        za1 = b2 * xa - a2 * ya
        zb1 = b2 * xb - a2 * yb
        zc1 = b2 * xc - a2 * yc
        zd1 = b2 * xd - a2 * yd
        out[i, c] = ya
        out[i, c + 1] = yb
        out[i, c + 2] = yc
        out[i, c + 3] = yd
    z[0, c] = za0
    z[1, c] = za1
    z[0, c + 1] = zb0
    z[1, c + 1] = zb1
    z[0, c + 2] = zc0
    z[1, c + 2] = zc1
    z[0, c + 3] = zd0
    z[1, c + 3] = zd1


@jit
def _biquad2(out, first, stop, step, c, b0, b1, b2, a1, a2, z):
    za0 = z[0, c]
    za1 = z[1, c]
    zb0 = z[0, c + 1]
    zb1 = z[1, c + 1]
    for i in range(first, stop, step):
        xa = out[i, c]
        xb = out[i, c + 1]
        ya = b0 * xa + za0
        yb = b0 * xb + zb0
        za0 = b1 * xa - a1 * ya + za1
        zb0 = b1 * xb - a1 * yb + zb1
        za1 = b2 * xa - a2 * ya
        zb1 = b2 * xb - a2 * yb
        out[i, c] = ya
        out[i, c + 1] = yb
    z[0, c] = za0
    z[1, c] = za1
    z[0, c + 1] = zb0
    z[1, c + 1] = zb1


@jit
def _biquad1(out, first, stop, step, c, b0, b1, b2, a1, a2, z):
    """One channel of one section, DF-II transposed, term for term as scipy's sosfilt."""
    z0 = z[0, c]
    z1 = z[1, c]
    for i in range(first, stop, step):
        xn = out[i, c]
        y = b0 * xn + z0
        z0 = b1 * xn - a1 * y + z1
        z1 = b2 * xn - a2 * y
        out[i, c] = y
    z[0, c] = z0
    z[1, c] = z1


@jit
def _sos_block(x, sos, state, out, i0, i1, backward):
    """Filter rows i0..i1-1 of ``x`` into ``out`` (forward, or from i1-1 down to i0)."""
    n_ch = x.shape[1]
    for i in range(i0, i1):
        for c in range(n_ch):
            out[i, c] = x[i, c]
    if backward:
        first, stop, step = i1 - 1, i0 - 1, -1
    else:
        first, stop, step = i0, i1, 1
    for s in range(sos.shape[0]):
        b0 = sos[s, 0]
        b1 = sos[s, 1]
        b2 = sos[s, 2]
        a1 = sos[s, 4]
        a2 = sos[s, 5]
        z = state[s]
        c = 0
        while c + 4 <= n_ch:
            _biquad4(out, first, stop, step, c, b0, b1, b2, a1, a2, z)
            c += 4
        if c + 2 <= n_ch:
            _biquad2(out, first, stop, step, c, b0, b1, b2, a1, a2, z)
            c += 2
        if c < n_ch:
            _biquad1(out, first, stop, step, c, b0, b1, b2, a1, a2, z)


@jit
def sos_step(x, sos, state, out):
    """One sample. ``x``, ``out`` shape (C,); ``state`` (S, 2, C)."""
    _sos_block(x.reshape((1, x.shape[0])), sos, state, out.reshape((1, out.shape[0])), 0, 1, False)


@jit
def sos_run(x, sos, state, out):
    """A block of samples in order. ``x``, ``out`` shape (N, C); ``state`` (S, 2, C)."""
    n = x.shape[0]
    for i0 in range(0, n, BLOCK_ROWS):
        _sos_block(x, sos, state, out, i0, min(i0 + BLOCK_ROWS, n), False)


@jit
def sos_run_backward(x, sos, state, out):
    """A block of samples from the last to the first (time reversed). Shapes as ``sos_run``."""
    n = x.shape[0]
    i1 = n
    while i1 > 0:
        i0 = max(i1 - BLOCK_ROWS, 0)
        _sos_block(x, sos, state, out, i0, i1, True)
        i1 = i0
