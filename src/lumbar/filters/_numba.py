"""The one numba entry point of :mod:`lumbar.filters`.

Every kernel module imports :data:`jit` from here, so the compilation options are set in
one place: no Python objects (``nopython``), the GIL released (``nogil``) so that several
sensors can be processed on several threads, an on-disk cache (``cache=True``) so the
compile cost is paid once per machine, and ``fastmath`` off (kernels must propagate NaN
and keep IEEE semantics so that chunked and one-pass runs agree bit for bit).

This module imports numba; import it (and the kernel modules) lazily, never from a
package ``__init__``.
"""
from __future__ import annotations

import numba

__all__ = ["jit"]


def jit(func):  # noqa: ANN001, ANN201 - decorator
    """Compile ``func`` with the project's kernel options (see module docstring)."""
    return numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")(func)
