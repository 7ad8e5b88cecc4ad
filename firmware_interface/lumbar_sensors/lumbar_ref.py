"""``lumbar_ref``: our open GATT profile for DIY IMU boards (nRF52840, ESP32-S3…).

The byte layout is specified in ``firmware_interface/README.md`` and implemented in C in
``reference_firmware/lumbar_ref_protocol.c``; this module is the host side (decoder,
command builders) plus a Python encoder/parser that mirror the C ones (used by emulated boards
and the round-trip tests).

Data packet (notify), little-endian::

    0   u8   protocol version (1)
    1   u8   N, samples in this packet (1..40)
    2   u8   ranges: bits 0-3 acc code (±2/4/8/16 g), bits 4-7 gyro code (±125…2000 dps)
    3   u8   status: bit 0 = device FIFO overflowed before this packet; bits 1-7 zero
    4   u32  sequence number of the first sample (samples since START, wraps at 2^32)
    8   u48  device time of the first sample, µs since boot
    14  u16  sample period, µs (nominal; 100..40000)
    16  N × (6 × i16)  ax ay az gx gy gz, full scale = ±32768 counts
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from lumbar.errors import ValidationError
from lumbar.types import SampleFlag

from .family import (
    DEG,
    G,
    Capability,
    Command,
    Decoded,
    SensorFamily,
    acc_gyro_saturation_flags,
    as_bytes,
    check_values,
    decode_error,
)

__all__ = [
    "FAMILY", "RefStream", "new_stream", "decode", "encode_packet", "max_samples_for_mtu",
    "configure_commands", "start_commands", "stop_commands", "time_sync_command",
    "parse_command", "encode_response", "parse_response",
]

_BASE = "4c55{:04x}-6d62-6172-7265-662d70726f31"
SERVICE = _BASE.format(0x0001)
CONTROL_POINT = _BASE.format(0x0002)  # write with response; responses are notified here
DATA_CHAR = _BASE.format(0x0003)  # notify
BATTERY_SERVICE = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL = "00002a19-0000-1000-8000-00805f9b34fb"
DEVICE_INFO_SERVICE = "0000180a-0000-1000-8000-00805f9b34fb"

VERSION = 1
HEADER_LEN = 16
SAMPLE_LEN = 12
MAX_SAMPLES = 40  # fits an ATT MTU of 503+
ACC_RANGES_G = (2.0, 4.0, 8.0, 16.0)  # code = index
GYRO_RANGES_DPS = (125.0, 250.0, 500.0, 1000.0, 2000.0)
RATES_HZ = (25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0)
MIN_PERIOD_US, MAX_PERIOD_US = 100, 40000
STATUS_FIFO_OVERFLOW = 0x01

OP_SET_RATE, OP_SET_RANGE, OP_START, OP_STOP, OP_TIME_SYNC, OP_GET_CONFIG = 1, 2, 3, 4, 5, 6
RSP_OK, RSP_UNKNOWN_OP, RSP_BAD_LENGTH, RSP_BAD_VALUE, RSP_BUSY = 0, 1, 2, 3, 4
RSP_TEXT = {0: "ok", 1: "unknown op code", 2: "wrong length", 3: "value out of range", 4: "busy (streaming)"}
_CMD_LEN = {OP_SET_RATE: 3, OP_SET_RANGE: 3, OP_START: 2, OP_STOP: 1, OP_TIME_SYNC: 9, OP_GET_CONFIG: 1}

FAMILY = SensorFamily(
    name="lumbar_ref",
    title="lumbar_ref open profile (DIY boards: XIAO nRF52840 Sense, Nano 33 BLE Sense, ESP32-S3)",
    service_uuid=SERVICE,
    data_uuids=(DATA_CHAR,),
    control_uuid=CONTROL_POINT,
    response_uuid=CONTROL_POINT,
    name_patterns=(r"^LumbarRef",),
    advertised_uuids=(SERVICE,),
    manufacturer_ids=(),
    rates_hz=RATES_HZ,
    acc_ranges_g=ACC_RANGES_G,
    gyro_ranges_dps=GYRO_RANGES_DPS,
    capabilities=Capability.ACC | Capability.GYRO | Capability.BATTERY,
    has_device_clock=True,
    max_realtime_rate_hz=1600.0,
    acc_limit_g=16.0,
    gyro_limit_dps=2000.0,
    notes="Sequence numbers and µs timestamps on every packet; 1600 Hz is a byte-budget estimate, not measured on hardware.",
)

_HDR = struct.Struct("<BBBBI6sH")


@dataclass
class RefStream:
    """Per-stream state: expected next sequence number, last device time, wrap count."""

    next_seq: int | None = None
    last_seq: int = 0
    seq_wraps: int = 0
    last_t_us: int | None = None


def new_stream() -> RefStream:
    """State for one data stream (make a new one after each START)."""
    return RefStream()


def _header(data: bytes) -> tuple[int, int, int, int, int, int, int]:
    ver, n, ranges, status, seq, t6, period = _HDR.unpack_from(data)
    return ver, n, ranges & 0x0F, ranges >> 4, status, seq, int.from_bytes(t6, "little"), period  # type: ignore[return-value]


def decode(payload: bytes, stream: RefStream | None = None) -> Decoded:
    """Decode one data notification.

    Returns
    -------
    Decoded
        N samples: device time (s since boot) = t_first + i × period; acc m/s², gyro rad/s at
        the declared ranges; ``seq`` = device sample counter (unwrapped); GAP_BEFORE when the
        sequence skips or the device reports a FIFO overflow; saturation at the int16 extremes.
        ``meta``: ``n_lost`` samples before this packet, declared ranges, period.
    """
    data = as_bytes(FAMILY.name, payload)
    stream = stream or new_stream()
    if len(data) < HEADER_LEN:
        raise decode_error(FAMILY.name, f"packet of {len(data)} bytes is shorter than the {HEADER_LEN}-byte header")
    ver, n, acc_code, gyro_code, status, seq, t_us, period = _header(data)
    if ver != VERSION:
        raise decode_error(FAMILY.name, f"protocol version {ver} is not supported (expected {VERSION})")
    if not 1 <= n <= MAX_SAMPLES:
        raise decode_error(FAMILY.name, f"sample count {n} is outside 1..{MAX_SAMPLES}")
    if len(data) != HEADER_LEN + SAMPLE_LEN * n:
        raise decode_error(FAMILY.name, f"packet declares {n} samples ({HEADER_LEN + SAMPLE_LEN * n} bytes) but has {len(data)} bytes")
    if acc_code >= len(ACC_RANGES_G) or gyro_code >= len(GYRO_RANGES_DPS):
        raise decode_error(FAMILY.name, f"unknown range codes acc {acc_code} / gyro {gyro_code}")
    if status & ~STATUS_FIFO_OVERFLOW:
        raise decode_error(FAMILY.name, f"reserved status bits set (0x{status:02x})")
    if not MIN_PERIOD_US <= period <= MAX_PERIOD_US:
        raise decode_error(FAMILY.name, f"sample period {period} µs is outside {MIN_PERIOD_US}..{MAX_PERIOD_US}")
    n_lost = 0
    wraps = stream.seq_wraps
    if stream.next_seq is not None:
        ahead = (seq - stream.next_seq) % (1 << 32)
        if ahead >= 1 << 31:
            expected = stream.next_seq
            stream.next_seq = None  # device restarted or replay: resynchronise on the next packet
            stream.last_t_us = None
            raise decode_error(FAMILY.name, f"sequence number {seq} goes backwards (expected {expected})")
        n_lost = ahead
        if seq < stream.last_seq:
            wraps += 1
    if stream.last_t_us is not None and t_us <= stream.last_t_us:
        last = stream.last_t_us
        stream.next_seq = None
        stream.last_t_us = None
        raise decode_error(FAMILY.name, f"device time {t_us} µs does not advance past the previous sample's {last} µs")
    counts = np.frombuffer(data, "<i2", offset=HEADER_LEN).reshape(n, 6)
    acc_fs, gyro_fs = ACC_RANGES_G[acc_code], GYRO_RANGES_DPS[gyro_code]
    acc = counts[:, :3] * (acc_fs * G / 32768.0)
    gyro = counts[:, 3:] * (gyro_fs * DEG / 32768.0)
    check_values(FAMILY, acc, gyro)
    flags = acc_gyro_saturation_flags(counts, -32768, 32767)
    if n_lost or status & STATUS_FIFO_OVERFLOW:
        flags[0] |= np.uint8(SampleFlag.GAP_BEFORE)
    t_last = t_us + (n - 1) * period
    stream.seq_wraps = wraps
    stream.next_seq = (seq + n) % (1 << 32)  # a wrap is counted when the next packet's seq is seen
    stream.last_seq = seq
    stream.last_t_us = t_last
    seq0 = wraps * (1 << 32) + seq
    t = (t_us + period * np.arange(n, dtype=np.float64)) * 1e-6
    meta = {"n_lost": n_lost, "acc_range_g": acc_fs, "gyro_range_dps": gyro_fs, "period_us": period}
    return Decoded(FAMILY.name, t, acc, gyro, np.arange(seq0, seq0 + n, dtype=np.int64), flags, meta=meta)


def encode_packet(
    seq: int, t_us: int, period_us: int, acc_code: int, gyro_code: int, samples: Any, status: int = 0
) -> bytes:
    """Encode a data packet exactly as the reference firmware does (for emulated boards, tests).

    Parameters
    ----------
    samples : array-like, shape (N, 6), int16
        ax ay az gx gy gz counts.
    """
    s = np.asarray(samples)
    if s.ndim != 2 or s.shape[1] != 6 or not 1 <= s.shape[0] <= MAX_SAMPLES:
        raise ValidationError(f"lumbar_ref: samples must have shape (1..{MAX_SAMPLES}, 6); got {s.shape}")
    if not (0 <= acc_code < len(ACC_RANGES_G) and 0 <= gyro_code < len(GYRO_RANGES_DPS)):
        raise ValidationError(f"lumbar_ref: range codes out of range: {acc_code}, {gyro_code}")
    hdr = _HDR.pack(VERSION, s.shape[0], acc_code | gyro_code << 4, status, seq & 0xFFFFFFFF,
                    (t_us & ((1 << 48) - 1)).to_bytes(6, "little"), period_us)
    return hdr + s.astype("<i2").tobytes()


def max_samples_for_mtu(att_mtu: int) -> int:
    """Samples per notification for a negotiated ATT MTU (3 bytes of ATT header)."""
    return max(0, min(MAX_SAMPLES, (att_mtu - 3 - HEADER_LEN) // SAMPLE_LEN))


# ---------------------------------------------------------------- commands


def _cp(data: bytes, note: str) -> Command:
    return Command(CONTROL_POINT, data, True, 0.0, note)


def set_rate_bytes(rate_hz: float) -> bytes:
    if float(rate_hz) not in RATES_HZ:
        raise ValidationError(f"lumbar_ref: rate must be one of {[int(r) for r in RATES_HZ]} Hz, got {rate_hz}")
    return struct.pack("<BH", OP_SET_RATE, int(rate_hz))


def set_range_bytes(acc_range_g: float, gyro_range_dps: float) -> bytes:
    if float(acc_range_g) not in ACC_RANGES_G or float(gyro_range_dps) not in GYRO_RANGES_DPS:
        raise ValidationError(
            f"lumbar_ref: ranges must be acc {list(ACC_RANGES_G)} g and gyro {list(GYRO_RANGES_DPS)} dps; got {acc_range_g}, {gyro_range_dps}"
        )
    return bytes([OP_SET_RANGE, ACC_RANGES_G.index(float(acc_range_g)), GYRO_RANGES_DPS.index(float(gyro_range_dps))])


def configure_commands(rate_hz: float = 200.0, acc_range_g: float = 8.0, gyro_range_dps: float = 2000.0) -> list[Command]:
    """SET_RATE then SET_RANGE (both refused with BUSY while streaming)."""
    return [
        _cp(set_rate_bytes(rate_hz), f"rate {rate_hz:g} Hz"),
        _cp(set_range_bytes(acc_range_g, gyro_range_dps), f"ranges ±{acc_range_g:g} g, ±{gyro_range_dps:g} dps"),
    ]


def start_commands(max_samples: int = 0) -> list[Command]:
    """START; ``max_samples`` per packet (0 = as many as the MTU allows)."""
    if not 0 <= max_samples <= MAX_SAMPLES:
        raise ValidationError(f"lumbar_ref: max_samples must be 0..{MAX_SAMPLES}, got {max_samples}")
    return [_cp(bytes([OP_START, max_samples]), "start streaming")]


def stop_commands() -> list[Command]:
    return [_cp(bytes([OP_STOP]), "stop streaming")]


def time_sync_command(host_time_us: int) -> Command:
    """TIME_SYNC: the device answers with its own µs clock at receipt (host estimates the offset)."""
    return _cp(struct.pack("<BQ", OP_TIME_SYNC, host_time_us & (2**64 - 1)), "time sync")


def parse_command(data: bytes) -> tuple[int, dict[str, int]]:
    """Validate a control-point write as the firmware does.

    Returns
    -------
    (status, fields)
        ``status`` is a response code (0 = ok); ``fields`` holds the op code and its arguments.
    """
    if len(data) == 0:
        return RSP_BAD_LENGTH, {"op": 0}
    op = data[0]
    if op not in _CMD_LEN:
        return RSP_UNKNOWN_OP, {"op": op}
    if len(data) != _CMD_LEN[op]:
        return RSP_BAD_LENGTH, {"op": op}
    f: dict[str, int] = {"op": op}
    if op == OP_SET_RATE:
        f["rate_hz"] = data[1] | data[2] << 8
        if float(f["rate_hz"]) not in RATES_HZ:
            return RSP_BAD_VALUE, f
    elif op == OP_SET_RANGE:
        f["acc_code"], f["gyro_code"] = data[1], data[2]
        if data[1] >= len(ACC_RANGES_G) or data[2] >= len(GYRO_RANGES_DPS):
            return RSP_BAD_VALUE, f
    elif op == OP_START:
        f["max_samples"] = data[1]
        if data[1] > MAX_SAMPLES:
            return RSP_BAD_VALUE, f
    elif op == OP_TIME_SYNC:
        f["host_time_us"] = int.from_bytes(data[1:9], "little")
    return RSP_OK, f


def encode_response(op: int, status: int, device_time_us: int | None = None, config: tuple[int, int, int, int] | None = None) -> bytes:
    """A control-point response: ``0x80|op, status`` [+ u64 device µs for TIME_SYNC]
    [+ u16 rate, acc code, gyro code, streaming for GET_CONFIG]."""
    out = bytes([0x80 | (op & 0x7F), status])
    if status == RSP_OK and op == OP_TIME_SYNC:
        out += struct.pack("<Q", int(device_time_us or 0))
    if status == RSP_OK and op == OP_GET_CONFIG and config is not None:
        out += struct.pack("<HBBB", *config)
    return out


def parse_response(data: bytes) -> dict[str, Any]:
    """Parse a control-point response notification."""
    data = as_bytes(FAMILY.name, data)
    if len(data) < 2 or not data[0] & 0x80:
        raise decode_error(FAMILY.name, f"control-point response {data.hex()!r} is not 0x80|op, status")
    op, status = data[0] & 0x7F, data[1]
    out: dict[str, Any] = {"op": op, "status": status, "status_text": RSP_TEXT.get(status, f"unknown status {status}")}
    if status == RSP_OK and op == OP_TIME_SYNC:
        if len(data) != 10:
            raise decode_error(FAMILY.name, f"TIME_SYNC response must be 10 bytes, got {len(data)}")
        out["device_time_us"] = int.from_bytes(data[2:10], "little")
    if status == RSP_OK and op == OP_GET_CONFIG:
        if len(data) != 7:
            raise decode_error(FAMILY.name, f"GET_CONFIG response must be 7 bytes, got {len(data)}")
        rate, a, g, streaming = struct.unpack_from("<HBBB", data, 2)
        out.update(rate_hz=rate, acc_code=a, gyro_code=g, streaming=bool(streaming))
    return out
