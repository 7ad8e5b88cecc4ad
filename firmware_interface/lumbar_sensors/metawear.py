"""MbientLab MetaMotion (MetaWear register protocol), BMI160 and BMI270 boards (no clock).

Facts from SENSORS.md §3 (byte-level interoperability facts, no SDK code): every command
and notification starts with ``[module][register]``; acc is module 0x03, gyro 0x13; data are
3 × int16 LE counts (÷ LSB-per-unit of the configured range), packed registers carry 3
samples. Register numbers differ by chip, so the stream state needs the chip
(``"bmi160"`` default, or ``"bmi270"``) and the configured ranges.
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
    as_bytes,
    check_values,
    decode_error,
    saturation_flags,
)

__all__ = ["FAMILY", "MetaWearStream", "new_stream", "decode", "configure_commands", "start_commands", "stop_commands"]

SERVICE = "326a9000-85cb-9195-d9dd-464cfbbae75a"
COMMAND_CHAR = "326a9001-85cb-9195-d9dd-464cfbbae75a"
NOTIFY_CHAR = "326a9006-85cb-9195-d9dd-464cfbbae75a"

ACC, GYRO, SETTINGS = 0x03, 0x13, 0x11
ACC_ODR_CODES = {0.78125: 1, 1.5625: 2, 3.125: 3, 6.25: 4, 12.5: 5, 25.0: 6, 50.0: 7, 100.0: 8, 200.0: 9, 400.0: 10, 800.0: 11, 1600.0: 12}
GYRO_ODR_CODES = {25.0: 6, 50.0: 7, 100.0: 8, 200.0: 9, 400.0: 10, 800.0: 11, 1600.0: 12, 3200.0: 13}
ACC_RANGE_CODES = {"bmi160": {2.0: 0x03, 4.0: 0x05, 8.0: 0x08, 16.0: 0x0C}, "bmi270": {2.0: 0, 4.0: 1, 8.0: 2, 16.0: 3}}
ACC_LSB_PER_G = {2.0: 16384.0, 4.0: 8192.0, 8.0: 4096.0, 16.0: 2048.0}
GYRO_RANGE_CODES = {2000.0: 0, 1000.0: 1, 500.0: 2, 250.0: 3, 125.0: 4}
GYRO_LSB_PER_DPS = {2000.0: 16.4, 1000.0: 32.8, 500.0: 65.6, 250.0: 131.2, 125.0: 262.4}
# (module, register) -> samples per notification, per chip
DATA_REGISTERS = {
    "bmi160": {(ACC, 0x04): 1, (ACC, 0x1C): 3, (GYRO, 0x05): 1, (GYRO, 0x07): 3},
    "bmi270": {(ACC, 0x04): 1, (ACC, 0x05): 3, (GYRO, 0x04): 1, (GYRO, 0x05): 3},
}
ACC_IMPL = {1: "bmi160", 4: "bmi270"}
GYRO_IMPL = {0: "bmi160", 1: "bmi270"}

FAMILY = SensorFamily(
    name="metawear",
    title="MbientLab MetaMotion R/RL/C (BMI160), S (BMI270)",
    service_uuid=SERVICE,
    data_uuids=(NOTIFY_CHAR,),
    control_uuid=COMMAND_CHAR,
    response_uuid=NOTIFY_CHAR,
    name_patterns=(r"^MetaWear", r"^MetaMotion", r"^MMR", r"^MMC", r"^MMS"),
    advertised_uuids=(SERVICE,),
    manufacturer_ids=(),
    rates_hz=(12.5, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0),
    acc_ranges_g=(2.0, 4.0, 8.0, 16.0),
    gyro_ranges_dps=(125.0, 250.0, 500.0, 1000.0, 2000.0),
    capabilities=Capability.ACC | Capability.GYRO,
    has_device_clock=False,
    max_realtime_rate_hz=100.0,
    acc_limit_g=16.0,
    gyro_limit_dps=2000.0,
    notes=(
        "No streamed device clock (host stamps arrival); 100 Hz per signal unpacked is the documented "
        "safe rate, packed mode (3 samples/notification) is needed above that (≥200 Hz unverified). "
        "Magnetometer, sensor fusion, battery and the 'accounter' clock are not implemented."
    ),
)


@dataclass
class MetaWearStream:
    """Per-stream state: chip, configured ranges (for the scale), rate and counters.

    One state decodes both the acc and the gyro notifications of a board (they share the
    notify characteristic); each signal keeps its own sample counter.
    """

    chip: str = "bmi160"
    acc_range_g: float = 16.0
    gyro_range_dps: float = 2000.0
    rate_hz: float = 100.0
    acc_clock: SampleClock = field(init=False)
    gyro_clock: SampleClock = field(init=False)

    def __post_init__(self) -> None:
        if self.chip not in DATA_REGISTERS:
            raise ValidationError(f"metawear: chip must be 'bmi160' or 'bmi270', got {self.chip!r}")
        if self.acc_range_g not in ACC_LSB_PER_G or self.gyro_range_dps not in GYRO_LSB_PER_DPS:
            raise ValidationError(
                f"metawear: ranges must be acc {sorted(ACC_LSB_PER_G)} g and gyro {sorted(GYRO_LSB_PER_DPS)} dps; "
                f"got {self.acc_range_g}, {self.gyro_range_dps}"
            )
        self.acc_clock = SampleClock(self.rate_hz)
        self.gyro_clock = SampleClock(self.rate_hz)


def new_stream(chip: str = "bmi160", acc_range_g: float = 16.0, gyro_range_dps: float = 2000.0, rate_hz: float = 100.0) -> MetaWearStream:
    """State for one board's notifications (the ranges must be the ones configured)."""
    return MetaWearStream(str(chip).lower(), float(acc_range_g), float(gyro_range_dps), float(rate_hz))


def decode(payload: bytes, stream: MetaWearStream | None = None) -> Decoded:
    """Decode one notification from the MetaWear notify characteristic.

    Returns
    -------
    Decoded
        Acc notifications give ``acc`` (m/s², gyro None), gyro ones ``gyro`` (rad/s, acc None),
        1 or 3 samples, device time NaN, HOST_TIME_ONLY. A module-info reply (``03 80``/``13 80``)
        gives no samples and ``meta['module_info']``.
    """
    data = as_bytes(FAMILY.name, payload)
    stream = stream or new_stream()
    if len(data) < 2:
        raise decode_error(FAMILY.name, f"notification of {len(data)} bytes has no module/register header")
    module, register = data[0], data[1]
    if module in (ACC, GYRO) and register == 0x80:
        impl_map = ACC_IMPL if module == ACC else GYRO_IMPL
        if len(data) == 2:
            return Decoded.empty(FAMILY.name, module_info={"module": module, "present": False})
        if len(data) < 4:
            raise decode_error(FAMILY.name, f"module-info reply of {len(data)} bytes is too short")
        return Decoded.empty(
            FAMILY.name,
            module_info={"module": module, "present": True, "implementation": data[2], "revision": data[3],
                         "chip": impl_map.get(data[2], "unknown")},
        )
    per = DATA_REGISTERS[stream.chip].get((module, register))
    if per is None:
        raise decode_error(FAMILY.name, f"unexpected module 0x{module:02x} register 0x{register:02x} for a {stream.chip} board")
    want = 2 + 6 * per
    if len(data) != want:
        raise decode_error(FAMILY.name, f"module 0x{module:02x} register 0x{register:02x} needs {want} bytes, got {len(data)}")
    counts = np.frombuffer(data, "<i2", offset=2).reshape(per, 3)
    nan_t = np.full(per, np.nan)
    host = np.uint8(SampleFlag.HOST_TIME_ONLY)
    if module == ACC:
        acc = counts * (G / ACC_LSB_PER_G[stream.acc_range_g])
        check_values(FAMILY, acc, None)
        seq, _ = stream.acc_clock.advance(per)
        flags = saturation_flags(counts, -32768, 32767, SampleFlag.ACC_SATURATED) | host
        return Decoded(FAMILY.name, nan_t, acc, None, seq, flags, meta={"signal": "acc", "packed": per > 1})
    gyro = counts * (DEG / GYRO_LSB_PER_DPS[stream.gyro_range_dps])
    check_values(FAMILY, None, gyro)
    seq, _ = stream.gyro_clock.advance(per)
    flags = saturation_flags(counts, -32768, 32767, SampleFlag.GYRO_SATURATED) | host
    return Decoded(FAMILY.name, nan_t, None, gyro, seq, flags, meta={"signal": "gyro", "packed": per > 1})


def _w(data: bytes, note: str) -> Command:
    # MetaWear commands are written without response
    return Command(COMMAND_CHAR, data, False, 0.0, note)


def _check(chip: str, rate_hz: float, acc_range_g: float, gyro_range_dps: float) -> None:
    if chip not in DATA_REGISTERS:
        raise ValidationError(f"metawear: chip must be 'bmi160' or 'bmi270', got {chip!r}")
    if float(rate_hz) not in GYRO_ODR_CODES or float(rate_hz) not in ACC_ODR_CODES:
        raise ValidationError(f"metawear: a common acc+gyro rate must be one of 25–1600 Hz in powers of two × 25, got {rate_hz}")
    if float(acc_range_g) not in ACC_LSB_PER_G:
        raise ValidationError(f"metawear: acc range must be one of {sorted(ACC_LSB_PER_G)} g, got {acc_range_g}")
    if float(gyro_range_dps) not in GYRO_LSB_PER_DPS:
        raise ValidationError(f"metawear: gyro range must be one of {sorted(GYRO_LSB_PER_DPS)} dps, got {gyro_range_dps}")


def acc_config_bytes(chip: str, rate_hz: float, acc_range_g: float) -> bytes:
    """``03 03 b0 b1``: ODR code with the chip's upper bits, then the chip's range code."""
    code = ACC_ODR_CODES[float(rate_hz)]
    hi_rate = float(rate_hz) >= 12.5
    if chip == "bmi160":
        b0 = (0x20 if hi_rate else 0x80) | code
    else:
        b0 = (0xA0 if hi_rate else 0x20) | code
    return bytes([ACC, 0x03, b0, ACC_RANGE_CODES[chip][float(acc_range_g)]])


def gyro_config_bytes(rate_hz: float, gyro_range_dps: float) -> bytes:
    """``13 03 b0 b1``: ``0x20 | odr code``, range code (same on both chips)."""
    return bytes([GYRO, 0x03, 0x20 | GYRO_ODR_CODES[float(rate_hz)], GYRO_RANGE_CODES[float(gyro_range_dps)]])


def connection_params_bytes(min_ms: float = 7.5, max_ms: float = 7.5, latency: int = 0, timeout_ms: float = 6000.0) -> bytes:
    """``11 09``: intervals in 1.25 ms units, latency, supervision timeout in 10 ms units."""
    return bytes([SETTINGS, 0x09]) + struct.pack("<HHHH", round(min_ms / 1.25), round(max_ms / 1.25), latency, round(timeout_ms / 10))


def configure_commands(rate_hz: float = 100.0, acc_range_g: float = 16.0, gyro_range_dps: float = 2000.0, chip: str = "bmi160") -> list[Command]:
    """Ask for a 7.5 ms connection interval, then configure acc and gyro."""
    _check(chip, rate_hz, acc_range_g, gyro_range_dps)
    return [
        _w(connection_params_bytes(), "connection interval 7.5 ms"),
        _w(acc_config_bytes(chip, rate_hz, acc_range_g), f"acc {rate_hz:g} Hz ±{acc_range_g:g} g"),
        _w(gyro_config_bytes(rate_hz, gyro_range_dps), f"gyro {rate_hz:g} Hz ±{gyro_range_dps:g} dps"),
    ]


def _data_regs(chip: str, packed: bool) -> tuple[int, int]:
    regs = DATA_REGISTERS[chip]
    want = 3 if packed else 1
    acc = next(r for (m, r), n in regs.items() if m == ACC and n == want)
    gyro = next(r for (m, r), n in regs.items() if m == GYRO and n == want)
    return acc, gyro


def start_commands(chip: str = "bmi160", packed: bool = False) -> list[Command]:
    """Subscribe to the data signals, enable sampling, start both chips."""
    if chip not in DATA_REGISTERS:
        raise ValidationError(f"metawear: chip must be 'bmi160' or 'bmi270', got {chip!r}")
    a, g = _data_regs(chip, packed)
    return [
        _w(bytes([ACC, a, 0x01]), "subscribe acc"),
        _w(bytes([GYRO, g, 0x01]), "subscribe gyro"),
        _w(bytes([ACC, 0x02, 0x01, 0x00]), "enable acc sampling"),
        _w(bytes([GYRO, 0x02, 0x01, 0x00]), "enable gyro sampling"),
        _w(bytes([ACC, 0x01, 0x01]), "start acc"),
        _w(bytes([GYRO, 0x01, 0x01]), "start gyro"),
    ]


def stop_commands(chip: str = "bmi160", packed: bool = False) -> list[Command]:
    """The reverse: power off, disable sampling, unsubscribe."""
    if chip not in DATA_REGISTERS:
        raise ValidationError(f"metawear: chip must be 'bmi160' or 'bmi270', got {chip!r}")
    a, g = _data_regs(chip, packed)
    return [
        _w(bytes([ACC, 0x01, 0x00]), "stop acc"),
        _w(bytes([GYRO, 0x01, 0x00]), "stop gyro"),
        _w(bytes([ACC, 0x02, 0x00, 0x01]), "disable acc sampling"),
        _w(bytes([GYRO, 0x02, 0x00, 0x01]), "disable gyro sampling"),
        _w(bytes([ACC, a, 0x00]), "unsubscribe acc"),
        _w(bytes([GYRO, g, 0x00]), "unsubscribe gyro"),
    ]


def module_info_commands() -> list[Command]:
    """Read acc and gyro module info (tells BMI160 from BMI270)."""
    return [_w(bytes([ACC, 0x80]), "acc module info"), _w(bytes([GYRO, 0x80]), "gyro module info")]
