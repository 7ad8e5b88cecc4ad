"""Lazy public names for packages (PEP 562), so importing a package stays cheap.

A package lists ``name → module`` and gets its ``__getattr__`` and ``__dir__`` from :func:`attach`;
the module is imported on first use of one of its names (numba kernels, Bumble, scipy load then).
"""
from __future__ import annotations

import sys
from importlib import import_module
from typing import Any, Callable, Mapping

__all__ = ["attach"]


def attach(package: str, lazy: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose names ``lazy`` maps to their modules.

    A name, once imported, is stored in the package's namespace, so later look-ups are plain.
    """

    def __getattr__(name: str) -> Any:
        try:
            module = lazy[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(lazy))

    return __getattr__, __dir__
