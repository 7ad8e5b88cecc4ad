"""Nordic Thingy:52 Motion service: raw acc/gyro/compass notifications (no device clock).

Layout (SENSORS.md §5): the raw-data characteristic notifies 18 bytes, nine int16 LE:
acc x, y, z in Q6.10 (g = v / 1024), gyro x, y, z in Q11.5 (dps = v / 32), compass x, y, z
in Q12.4 (µT = v / 16). The notification rate is the "motion processing frequency" (5–200 Hz)
in the 9-byte config characteristic. There is no timestamp and no counter: samples are
flagged HOST_TIME_ONLY and the reader stamps arrival times.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from lumbar.errors import ValidationError
from lumbar.types import SampleFlag

from .family import (
    DEG,
    G,
    Capability,
    Command,
    Decoded,
    SampleClock,
    SensorFamily,
    acc_gyro_saturation_flags,
    as_bytes,
    check_values,
    decode_error,
)

__all__ = ["FAMILY", "ThingyStream", "new_stream", "decode", "configure_commands", "start_commands", "stop_commands", "config_value"]

_BASE = "ef68{:04x}-9b35-4933-9b10-52ffa9740042"
MOTION_SERVICE = _BASE.format(0x0400)
CONFIG_CHAR = _BASE.format(0x0401)
QUATERNION_CHAR = _BASE.format(0x0404)
RAW_CHAR = _BASE.format(0x0406)

FAMILY = SensorFamily(
    name="thingy52",
    title="Nordic Thingy:52 (Motion service)",
    service_uuid=MOTION_SERVICE,
    data_uuids=(RAW_CHAR,),
    control_uuid=CONFIG_CHAR,
    response_uuid="",
    name_patterns=(r"thingy",),
    advertised_uuids=(),
    manufacturer_ids=(),
    rates_hz=(5.0, 10.0, 20.0, 25.0, 50.0, 100.0, 200.0),
    acc_ranges_g=(32.0,),
    gyro_ranges_dps=(1024.0,),
    capabilities=Capability.ACC | Capability.GYRO | Capability.MAG | Capability.QUATERNION,
    has_device_clock=False,
    max_realtime_rate_hz=200.0,
    acc_limit_g=32.0,
    gyro_limit_dps=1024.0,
    notes=(
        "Ranges are those of the Q formats (±32 g, ±1024 dps); the MPU-9250's own range setting "
        "is not exposed. 200 Hz over BLE is unverified. Host timestamps only."
    ),
)

_PACKET = np.dtype([("acc", "<i2", 3), ("gyro", "<i2", 3), ("mag", "<i2", 3)])
_CONFIG = struct.Struct("<HHHHB")


@dataclass
class ThingyStream:
    """Per-stream state: nominal rate and the received-sample counter."""

    rate_hz: float = 10.0
    clock: SampleClock = field(init=False)

    def __post_init__(self) -> None:
        self.clock = SampleClock(self.rate_hz)


def new_stream(rate_hz: float = 10.0) -> ThingyStream:
    """State for one raw-data stream (``rate_hz`` is the configured motion frequency)."""
    return ThingyStream(rate_hz=float(rate_hz))


def decode(payload: bytes, stream: ThingyStream | None = None) -> Decoded:
    """Decode one 18-byte raw-data notification into one sample.

    Returns
    -------
    Decoded
        One sample: acc (m/s²), gyro (rad/s), mag (µT), device time NaN, HOST_TIME_ONLY set.
    """
    data = as_bytes(FAMILY.name, payload)
    if len(data) != _PACKET.itemsize:
        raise decode_error(FAMILY.name, f"raw-data notification must be 18 bytes, got {len(data)}")
    row = np.frombuffer(data, "<i2").reshape(1, 9)  # the _PACKET layout: acc, gyro, mag (int16 × 3 each)
    acc_c, gyro_c = row[:, 0:3], row[:, 3:6]
    acc = acc_c * (G / 1024.0)
    gyro = gyro_c * (DEG / 32.0)
    mag = row[:, 6:9] / 16.0
    check_values(FAMILY, acc, gyro)
    stream = stream or new_stream()
    seq, _ = stream.clock.advance(1)
    # the firmware saturates to the Q-format limits, so the int16 extremes mean "clipped"
    flags = acc_gyro_saturation_flags(row[:, 0:6], -32767, 32767) | np.uint8(SampleFlag.HOST_TIME_ONLY)
    return Decoded(FAMILY.name, np.full(1, np.nan), acc, gyro, seq, flags, mag=mag)


def config_value(
    rate_hz: int = 10,
    step_interval_ms: int = 1000,
    temp_interval_ms: int = 500,
    mag_interval_ms: int = 500,
    wake_on_motion: bool = True,
) -> bytes:
    """The 9-byte config characteristic value (defaults as the firmware's)."""
    if not 5 <= int(rate_hz) <= 200 or int(rate_hz) != rate_hz:
        raise ValidationError(f"thingy52: motion processing frequency must be an integer 5–200 Hz, got {rate_hz}")
    return _CONFIG.pack(step_interval_ms, temp_interval_ms, mag_interval_ms, int(rate_hz), int(bool(wake_on_motion)))


def configure_commands(rate_hz: float = 100.0, acc_range_g: float | None = None, gyro_range_dps: float | None = None) -> list[Command]:
    """Set the motion processing frequency (the raw notification rate). Ranges are fixed."""
    for r, allowed, what in ((acc_range_g, FAMILY.acc_ranges_g, "acc"), (gyro_range_dps, FAMILY.gyro_ranges_dps, "gyro")):
        if r is not None and r not in allowed:
            raise ValidationError(f"thingy52: {what} range is fixed at ±{allowed[0]:g}; got {r}")
    return [Command(CONFIG_CHAR, config_value(int(rate_hz)), True, 0.0, f"motion frequency {int(rate_hz)} Hz")]


def start_commands() -> list[Command]:
    """None: motion processing starts when notifications on the raw characteristic are enabled."""
    return []


def stop_commands() -> list[Command]:
    """None: disable notifications on the raw characteristic."""
    return []
