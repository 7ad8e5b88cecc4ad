"""Acquisition: reading sensors over BLE (bleak) and emulating them (Bumble).

The emulation pieces are imported lazily so that ``import lumbar.acquisition`` stays cheap
and does not load Bumble unless it is used:

* :class:`~lumbar.acquisition.virtual_radio.VirtualRadio` and its specs
  (:class:`PeripheralSpec`, :class:`ServiceSpec`, :class:`CharacteristicSpec`,
  :class:`DescriptorSpec`) -- emulated peripherals and a central on an in-process link;
* :class:`~lumbar.acquisition.bumble_backend.BumbleBleakScanner` and
  :class:`~lumbar.acquisition.bumble_backend.BumbleBleakClient` -- the bleak backend over it.

See ``docs/emulation.md``.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "VirtualRadio": "lumbar.acquisition.virtual_radio",
    "VirtualPeripheral": "lumbar.acquisition.virtual_radio",
    "PeripheralSpec": "lumbar.acquisition.virtual_radio",
    "ServiceSpec": "lumbar.acquisition.virtual_radio",
    "CharacteristicSpec": "lumbar.acquisition.virtual_radio",
    "DescriptorSpec": "lumbar.acquisition.virtual_radio",
    "BumbleBleakScanner": "lumbar.acquisition.bumble_backend",
    "BumbleBleakClient": "lumbar.acquisition.bumble_backend",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lumbar.acquisition' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
