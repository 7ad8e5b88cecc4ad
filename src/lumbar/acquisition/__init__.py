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

from lumbar._lazy import attach

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


__getattr__, __dir__ = attach(__name__, _LAZY)
