"""lumbar_sensors — BLE IMU protocol families: registry, commands and pure decoders.

No BLE stack is imported here (the reader in ``lumbar.acquisition`` drives bleak); every
decoder is a pure function of a notification payload and a small per-stream state.

>>> from lumbar_sensors import registry
>>> fam = registry.module("lumbar_ref")
>>> stream = fam.new_stream()
>>> # decoded = fam.decode(payload, stream); batch = decoded.to_batch("lumbar", time_s=...)
"""
from __future__ import annotations

from .family import Capability, Command, Decoded, SensorFamily
from .registry import FAMILY_NAMES, families, get, identify, module

__all__ = ["Capability", "Command", "Decoded", "SensorFamily", "FAMILY_NAMES", "families", "get", "identify", "module"]
