"""WitMotion WT901BLECL / BWT901BLE5.0: 0x55 0x61 packets on a UART-style bridge (no clock).

Layout (SENSORS.md §4): 20-byte packet ``55 61`` then nine int16 LE: acc (÷32768×16 g),
gyro (÷32768×2000 dps), roll/pitch/yaw (÷32768×180°). ``55 71 <reg lo> <reg hi>`` + 8 registers
answers a register read. Notifications need not line up with packets, so the stream state
keeps a byte buffer and cuts packets after each ``55 61``/``55 71`` header, as the vendor does.
"""
from __future__ import annotations

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

__all__ = ["FAMILY", "WitStream", "new_stream", "decode", "configure_commands", "start_commands", "stop_commands"]

SERVICE = "0000ffe5-0000-1000-8000-00805f9a34fb"
NOTIFY_CHAR = "0000ffe4-0000-1000-8000-00805f9a34fb"
WRITE_CHAR = "0000ffe9-0000-1000-8000-00805f9a34fb"

# Only 10 and 50 Hz are confirmed for the BLE models; 100/200 Hz codes differ between datasheets.
RATE_CODES = {10.0: 0x06, 50.0: 0x08}
UNVERIFIED_RATE_CODES = {100.0: 0x09, 200.0: 0x0B}

FAMILY = SensorFamily(
    name="witmotion_ble5",
    title="WitMotion WT901BLECL / BWT901BLE5.0",
    service_uuid=SERVICE,
    data_uuids=(NOTIFY_CHAR,),
    control_uuid=WRITE_CHAR,
    response_uuid=NOTIFY_CHAR,
    name_patterns=(r"WT",),
    advertised_uuids=(),
    manufacturer_ids=(),
    rates_hz=tuple(RATE_CODES),
    acc_ranges_g=(16.0,),
    gyro_ranges_dps=(2000.0,),
    capabilities=Capability.ACC | Capability.GYRO | Capability.MAG | Capability.QUATERNION,
    has_device_clock=False,
    max_realtime_rate_hz=50.0,
    acc_limit_g=16.0,
    gyro_limit_dps=2000.0,
    notes=(
        "Fixed ±16 g / ±2000 dps. 10 and 50 Hz confirmed; 100/200 Hz codes are unverified for the "
        "BLE models (configure_commands(..., allow_unverified=True)). Magnetometer and quaternion "
        "only by register read (0x71 replies, raw counts in meta). Host timestamps only."
    ),
)

_PACKET_LEN = 20
_IMU = np.dtype([("hdr", "u1", 2), ("acc", "<i2", 3), ("gyro", "<i2", 3), ("angle", "<i2", 3)])
_MAX_BUFFER = 4096  # a notification stream of junk must not grow memory


@dataclass
class WitStream:
    """Per-stream state: the reassembly buffer and the received-sample counter."""

    rate_hz: float = 10.0
    buffer: bytearray = field(default_factory=bytearray)
    clock: SampleClock = field(init=False)
    dropped_bytes: int = 0

    def __post_init__(self) -> None:
        self.clock = SampleClock(self.rate_hz)


def new_stream(rate_hz: float = 10.0) -> WitStream:
    """State for one notification stream (``rate_hz`` is the configured output rate)."""
    return WitStream(rate_hz=float(rate_hz))


def _cut(buf: bytearray) -> tuple[list[bytes], int]:
    """Cut complete packets from ``buf`` in place; returns packets and bytes skipped."""
    packets: list[bytes] = []
    skipped = 0
    i = 0
    n = len(buf)
    while i < n:
        if buf[i] != 0x55 or (i + 1 < n and buf[i + 1] not in (0x61, 0x71)):
            i += 1
            skipped += 1
            continue
        if i + _PACKET_LEN > n:
            break  # header seen, rest still to come
        packets.append(bytes(buf[i : i + _PACKET_LEN]))
        i += _PACKET_LEN
    del buf[:i]
    return packets, skipped


def decode(payload: bytes, stream: WitStream | None = None) -> Decoded:
    """Decode one notification (any number of whole or partial packets).

    With a stream, bytes of a packet cut across notifications are kept for the next call;
    without one, the payload must hold whole packets.

    Returns
    -------
    Decoded
        One sample per 0x61 packet: acc (m/s²), gyro (rad/s), ``meta['angle_deg']`` (N, 3);
        device time NaN, HOST_TIME_ONLY set; 0x71 register replies in ``meta['registers']``.

    Raises
    ------
    DecodeError
        When bytes had to be discarded and no packet could be cut, or a stateless payload
        does not hold whole packets.
    """
    data = as_bytes(FAMILY.name, payload)
    stateless = stream is None
    stream = stream or new_stream()
    if not data:
        raise decode_error(FAMILY.name, "empty notification")
    stream.buffer += data
    packets, skipped = _cut(stream.buffer)
    if len(stream.buffer) > _MAX_BUFFER:
        del stream.buffer[:]
    stream.dropped_bytes += skipped
    if stateless and stream.buffer:
        raise decode_error(FAMILY.name, f"{len(stream.buffer)} bytes of an incomplete packet at the end of the payload")
    if skipped and not packets:
        raise decode_error(FAMILY.name, f"{skipped} bytes without a 55 61 / 55 71 packet header were dropped")
    imu = [p for p in packets if p[1] == 0x61]
    regs = [p for p in packets if p[1] == 0x71]
    meta: dict = {}
    if regs:
        meta["registers"] = [
            {"register": p[2] | (p[3] << 8), "values": np.frombuffer(p[4:], "<i2").tolist()} for p in regs
        ]
    if not imu:
        return Decoded.empty(FAMILY.name, **meta)
    rec = np.frombuffer(b"".join(imu), _IMU)
    acc = rec["acc"] * (16.0 * G / 32768.0)
    gyro = rec["gyro"] * (2000.0 * DEG / 32768.0)
    check_values(FAMILY, acc, gyro)
    n = len(rec)
    seq, _ = stream.clock.advance(n)
    flags = (
        saturation_flags(rec["acc"], -32768, 32767, SampleFlag.ACC_SATURATED)
        | saturation_flags(rec["gyro"], -32768, 32767, SampleFlag.GYRO_SATURATED)
        | np.uint8(SampleFlag.HOST_TIME_ONLY)
    )
    if skipped:  # bytes of at least one packet were lost before these samples
        flags[0] |= np.uint8(SampleFlag.GAP_BEFORE)
    meta["angle_deg"] = rec["angle"] * (180.0 / 32768.0)
    return Decoded(FAMILY.name, np.full(n, np.nan), acc, gyro, seq, flags, meta=meta)


def _cmd(reg: int, value: int, note: str, delay: float = 0.1) -> Command:
    return Command(WRITE_CHAR, bytes([0xFF, 0xAA, reg, value & 0xFF, (value >> 8) & 0xFF]), True, delay, note)


def unlock_command() -> Command:
    return Command(WRITE_CHAR, bytes.fromhex("ffaa6988b5"), True, 0.1, "unlock (about 10 s)")


def save_command() -> Command:
    return _cmd(0x00, 0x0000, "save")


def read_register_command(reg: int) -> Command:
    """Ask for 8 registers from ``reg`` (answered by a 55 71 packet)."""
    return Command(WRITE_CHAR, bytes([0xFF, 0xAA, 0x27, reg & 0xFF, 0x00]), True, 0.0, f"read register 0x{reg:02x}")


def configure_commands(
    rate_hz: float = 50.0,
    acc_range_g: float | None = None,
    gyro_range_dps: float | None = None,
    *,
    allow_unverified: bool = False,
) -> list[Command]:
    """Unlock, write the RATE register, save (about 100 ms apart). Ranges are fixed."""
    codes = dict(RATE_CODES)
    if allow_unverified:
        codes.update(UNVERIFIED_RATE_CODES)
    if float(rate_hz) not in codes:
        raise ValidationError(f"witmotion_ble5: output rate must be one of {sorted(codes)} Hz, got {rate_hz}")
    for r, allowed, what in ((acc_range_g, FAMILY.acc_ranges_g, "acc"), (gyro_range_dps, FAMILY.gyro_ranges_dps, "gyro")):
        if r is not None and r not in allowed:
            raise ValidationError(f"witmotion_ble5: {what} range is fixed at ±{allowed[0]:g}; got {r}")
    return [unlock_command(), _cmd(0x03, codes[float(rate_hz)], f"rate {rate_hz:g} Hz"), save_command()]


def start_commands() -> list[Command]:
    """None: the device streams 0x61 packets as soon as notifications are enabled."""
    return []


def stop_commands() -> list[Command]:
    """None: disable notifications."""
    return []
