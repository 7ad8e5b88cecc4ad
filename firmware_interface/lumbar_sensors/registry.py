"""Registry of sensor families: the reader and the GUI look devices up here, never hard-code them.

Each family is a module of this package named as the family (``polar_pmd``, ``metawear``,
``movella_dot``, ``witmotion_ble5``, ``thingy52``, ``movesense_gsp``, ``lumbar_ref``) with
``FAMILY``, ``new_stream``, ``decode`` and the command builders (see :mod:`lumbar_sensors.family`).
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Iterable

from lumbar.errors import ValidationError

from .family import SensorFamily

__all__ = ["FAMILY_NAMES", "families", "get", "module", "identify"]

FAMILY_NAMES: tuple[str, ...] = (
    "lumbar_ref",
    "polar_pmd",
    "movella_dot",
    "metawear",
    "witmotion_ble5",
    "thingy52",
    "movesense_gsp",
)


def module(name: str) -> ModuleType:
    """The family module (``decode``, ``new_stream``, command builders) for ``name``."""
    if name not in FAMILY_NAMES:
        raise ValidationError(f"unknown sensor family {name!r}; known families: {', '.join(FAMILY_NAMES)}")
    return importlib.import_module(f"lumbar_sensors.{name}")


def get(name: str) -> SensorFamily:
    """The :class:`SensorFamily` description of ``name``."""
    return module(name).FAMILY


def families() -> list[SensorFamily]:
    """All families, ours first."""
    return [get(n) for n in FAMILY_NAMES]


def identify(
    name: str | None = None,
    service_uuids: Iterable[str] = (),
    manufacturer_ids: Iterable[int] = (),
) -> list[SensorFamily]:
    """Families an advertisement may belong to (advertised service UUIDs are the strongest hint).

    Parameters
    ----------
    name : str, optional
        Advertised local name.
    service_uuids : iterable of str
        Advertised service UUIDs (128-bit strings, any case).
    manufacturer_ids : iterable of int
        Company identifiers from the manufacturer-specific data.
    """
    uuids = tuple(service_uuids)
    ids = tuple(manufacturer_ids)
    return [f for f in families() if f.matches(name, uuids, ids)]
