"""Movella (Xsens) DOT real-time streaming: payload modes with acc/gyro, µs device clock.

Layouts from SENSORS.md §2: every payload starts with a uint32 LE timestamp (µs, wraps at
2^32); the fields follow in the order the mode lists them, float32 LE (acc m/s², angular
velocity dps, quaternion w x y z, Euler deg), magnetic field as 3 × int16 (÷ 2^12, arbitrary
units). Notifications may be longer than the mode (trailing zero padding up to the
characteristic length).
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
    threshold_flags,
)

__all__ = ["FAMILY", "DotStream", "new_stream", "decode", "configure_commands", "start_commands", "stop_commands", "message"]

_BASE = "1517{:04x}-4947-11e9-8646-d663bd873d93"
CONFIG_SERVICE = _BASE.format(0x1000)
DEVICE_CONTROL = _BASE.format(0x1002)
MEASUREMENT_SERVICE = _BASE.format(0x2000)
CONTROL = _BASE.format(0x2001)
LONG_PAYLOAD = _BASE.format(0x2002)
MEDIUM_PAYLOAD = _BASE.format(0x2003)
SHORT_PAYLOAD = _BASE.format(0x2004)
BATTERY_SERVICE = _BASE.format(0x3000)
BATTERY = _BASE.format(0x3001)
MESSAGE_CONTROL = _BASE.format(0x7001)

# mode -> (characteristic, (field, ...)); sizes follow from the fields
_FIELD_DT = {
    "acc": ("<f4", 3),
    "gyro": ("<f4", 3),
    "free_acc": ("<f4", 3),
    "quat": ("<f4", 4),
    "euler": ("<f4", 3),
    "mag": ("<i2", 3),
}
MODES: dict[int, tuple[str, tuple[str, ...]]] = {
    21: (MEDIUM_PAYLOAD, ("acc", "gyro")),
    20: (MEDIUM_PAYLOAD, ("acc", "gyro", "mag")),
    26: (LONG_PAYLOAD, ("quat", "acc", "gyro")),
    22: (MEDIUM_PAYLOAD, ("euler", "free_acc", "gyro")),
    24: (MEDIUM_PAYLOAD, ("quat", "gyro")),
    6: (SHORT_PAYLOAD, ("free_acc",)),
}
_CHAR_LEN = {SHORT_PAYLOAD: 20, MEDIUM_PAYLOAD: 40, LONG_PAYLOAD: 63}
_DTYPES = {
    m: np.dtype([("t", "<u4")] + [(f, *_FIELD_DT[f]) for f in fields]) for m, (_, fields) in MODES.items()
}
RATES_HZ = (1.0, 4.0, 10.0, 12.0, 15.0, 20.0, 30.0, 60.0)
WRAP = 1 << 32

FAMILY = SensorFamily(
    name="movella_dot",
    title="Movella DOT / Xsens DOT",
    service_uuid=MEASUREMENT_SERVICE,
    data_uuids=(MEDIUM_PAYLOAD, LONG_PAYLOAD, SHORT_PAYLOAD),
    control_uuid=CONTROL,
    response_uuid="",
    name_patterns=(r"Xsens DOT", r"Movella DOT"),
    advertised_uuids=(),
    manufacturer_ids=(0x0886,),
    rates_hz=RATES_HZ,
    acc_ranges_g=(16.0,),
    gyro_ranges_dps=(2000.0,),
    capabilities=Capability.ACC | Capability.GYRO | Capability.MAG | Capability.QUATERNION | Capability.BATTERY,
    has_device_clock=True,
    max_realtime_rate_hz=60.0,
    acc_limit_g=32.0,
    gyro_limit_dps=4000.0,
    notes=(
        "Calibrated floats (acc m/s² incl. gravity, gyro dps → rad/s). The ±16 g / ±2000 dps ranges "
        "used for saturation flags come from the product datasheet, not SENSORS.md (unverified). "
        "Rejection limits are twice those. High-fidelity modes (1, 17, 25) are undocumented and refused. "
        "120 Hz is recording-only."
    ),
)


@dataclass
class DotStream:
    """Per-stream state: payload mode, rate, µs-wrap unwrapping and gap tracking."""

    payload_mode: int = 21
    rate_hz: float = 60.0
    acc_range_g: float = 16.0
    gyro_range_dps: float = 2000.0
    last_raw_us: int | None = None
    wraps: int = 0
    clock: SampleClock = field(init=False)

    def __post_init__(self) -> None:
        if self.payload_mode not in MODES:
            raise ValidationError(f"movella_dot: payload mode must be one of {sorted(MODES)}, got {self.payload_mode}")
        self.clock = SampleClock(self.rate_hz)


def new_stream(payload_mode: int = 21, rate_hz: float = 60.0, acc_range_g: float = 16.0, gyro_range_dps: float = 2000.0) -> DotStream:
    """State for one payload stream (the mode written in the start command)."""
    return DotStream(int(payload_mode), float(rate_hz), float(acc_range_g), float(gyro_range_dps))


@np.errstate(all="ignore")  # forged floats (NaN, inf) are rejected below, not warned about
def decode(payload: bytes, stream: DotStream | None = None) -> Decoded:
    """Decode one payload notification (one sample).

    Returns
    -------
    Decoded
        ``device_time_s`` = unwrapped µs counter / 1e6; ``acc`` m/s² and ``gyro`` rad/s where
        the mode has them (None otherwise); ``quat`` (w, x, y, z); ``mag`` in DOT units (÷2^12);
        free acceleration (m/s², earth frame) and Euler angles (deg) in ``meta``.

    Raises
    ------
    DecodeError
        Short or over-long payloads, NaN/inf or impossible values, a non-unit quaternion,
        a timestamp that repeats or goes backwards.
    """
    data = as_bytes(FAMILY.name, payload)
    stream = stream or new_stream()
    mode = stream.payload_mode
    char, fields = MODES[mode]
    dt = _DTYPES[mode]
    if not dt.itemsize <= len(data) <= _CHAR_LEN[char]:
        raise decode_error(
            FAMILY.name, f"payload mode {mode} needs {dt.itemsize}–{_CHAR_LEN[char]} bytes, got {len(data)}"
        )
    rec = np.frombuffer(data, dt, count=1)
    acc = rec["acc"].astype(np.float64) if "acc" in fields else None
    gyro = rec["gyro"].astype(np.float64) * DEG if "gyro" in fields else None
    check_values(FAMILY, acc, gyro)
    meta: dict = {"payload_mode": mode}
    quat = None
    if "quat" in fields:
        quat = rec["quat"].astype(np.float64)
        norm = float(np.sqrt(np.sum(quat * quat))) if np.all(np.isfinite(quat)) else float("nan")
        if not abs(norm - 1.0) < 0.01:
            raise decode_error(FAMILY.name, f"quaternion norm {norm:.4g} is not 1")
    for extra, limit in (("free_acc", FAMILY.acc_limit_mps2), ("euler", 360.0)):
        if extra in fields:
            v = rec[extra].astype(np.float64)
            if not (np.all(np.isfinite(v)) and np.max(np.abs(v)) <= limit):
                raise decode_error(FAMILY.name, f"{extra.replace('_', ' ')} is NaN, infinite or out of range")
            meta[extra + ("_mps2" if extra == "free_acc" else "_deg")] = v
    mag = rec["mag"] / 4096.0 if "mag" in fields else None

    raw = int(rec["t"][0])
    if stream.last_raw_us is not None:
        step = (raw - stream.last_raw_us) % WRAP
        if step == 0 or step >= WRAP // 2:
            raise decode_error(FAMILY.name, f"timestamp {raw} µs repeats or goes backwards (previous {stream.last_raw_us} µs)")
        if raw < stream.last_raw_us:
            stream.wraps += 1
    stream.last_raw_us = raw
    t = (raw + stream.wraps * WRAP) * 1e-6
    seq, gap = stream.clock.advance(1, t, t)
    flags = np.zeros(1, np.uint8)
    if acc is not None:
        flags |= threshold_flags(acc, stream.acc_range_g * G, SampleFlag.ACC_SATURATED)
    if gyro is not None:
        flags |= threshold_flags(gyro, stream.gyro_range_dps * DEG, SampleFlag.GYRO_SATURATED)
    if gap:
        flags[0] |= np.uint8(SampleFlag.GAP_BEFORE)
    return Decoded(FAMILY.name, np.array([t]), acc, gyro, seq, flags, mag=mag, quat=quat, meta=meta)


def output_rate_control(rate_hz: int, current: bytes | None = None) -> bytes:
    """The 32-byte device-control value that sets the output rate (visit index bit 4).

    Parameters
    ----------
    rate_hz : int
        One of 1, 4, 10, 12, 15, 20, 30, 60.
    current : bytes, optional
        The 32 bytes read from the characteristic (safer); zeros otherwise.
    """
    if float(rate_hz) not in RATES_HZ:
        raise ValidationError(f"movella_dot: output rate must be one of {[int(r) for r in RATES_HZ]} Hz, got {rate_hz}")
    buf = bytearray(current if current is not None else bytes(32))
    if len(buf) != 32:
        raise ValidationError(f"movella_dot: device control value must be 32 bytes, got {len(buf)}")
    buf[0] = 0x10
    buf[24:26] = int(rate_hz).to_bytes(2, "little")
    return bytes(buf)


def message(mid: int, data: bytes) -> bytes:
    """A message-service frame ``MID LEN DATA CHECKSUM`` whose bytes sum to 0 mod 256."""
    body = bytes([mid, len(data)]) + bytes(data)
    return body + bytes([(-sum(body)) & 0xFF])


def start_sync_message(root_mac: str) -> bytes:
    """StartSync (MID 0x02, id 0x01) with the root node's MAC, sent little-endian."""
    mac = bytes.fromhex(root_mac.replace(":", ""))
    if len(mac) != 6:
        raise ValidationError(f"movella_dot: MAC must have 6 bytes, got {root_mac!r}")
    return message(0x02, bytes([0x01]) + mac[::-1])


def configure_commands(rate_hz: float = 60.0, acc_range_g: float | None = None, gyro_range_dps: float | None = None) -> list[Command]:
    """Set the output rate (write the whole device-control value; reading it first is safer)."""
    return [Command(DEVICE_CONTROL, output_rate_control(int(rate_hz)), True, 0.0, f"output rate {int(rate_hz)} Hz")]


def start_commands(payload_mode: int = 21) -> list[Command]:
    """``01 01 <mode>`` on the control characteristic (enable the payload notifications first)."""
    if payload_mode not in MODES:
        raise ValidationError(f"movella_dot: payload mode must be one of {sorted(MODES)}, got {payload_mode}")
    return [Command(CONTROL, bytes([0x01, 0x01, payload_mode]), True, 0.0, f"start payload mode {payload_mode}")]


def stop_commands(payload_mode: int = 21) -> list[Command]:
    """``01 00 <mode>``."""
    return [Command(CONTROL, bytes([0x01, 0x00, payload_mode & 0xFF]), True, 0.0, "stop measurement")]


def payload_characteristic(payload_mode: int) -> str:
    """The characteristic a payload mode notifies on."""
    return MODES[payload_mode][0]
