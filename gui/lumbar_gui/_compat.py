"""Work-arounds for binding bugs, applied once at import of the application.

PySide6 6.12 on CPython < 3.12 releases one reference to ``None`` (and to ``True``/``False``) too many
on many calls (e.g. every ``QLabel.setText`` or ``QApplication.processEvents``). A GUI makes tens of
thousands of such calls a second, so after a minute or so the interpreter aborts with
"none_dealloc: deallocating None". CPython 3.12 made these singletons immortal; on older versions
we emulate that by giving them a very large reference count (they are never freed anyway).
"""
from __future__ import annotations

import ctypes
import sys

_APPLIED = False


def make_singletons_immortal() -> None:
    global _APPLIED
    if _APPLIED or sys.version_info >= (3, 12):
        return
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40
    _APPLIED = True


make_singletons_immortal()
