"""Movesense GATT SensorData Protocol (GSP): IMU6/IMU9 notifications with an ms device clock.

Layout from SENSORS.md §6: ``[type][ref]…``; type 1 = command result, 2 = DATA, 3 = DATA_PART2
(continuation: append it without its 2 header bytes). IMU DATA: uint32 LE ms timestamp of
the *first* sample, then N acc vectors (float32 m/s²), N gyro vectors (float32 dps) and for
IMU9 N magnetometer vectors (µT) — blocks, not interleaved. Sample i is at t + i·1000/rate ms.
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

__all__ = ["FAMILY", "GspStream", "new_stream", "decode", "configure_commands", "start_commands", "stop_commands"]

SERVICE = "34802252-7185-4d5d-b431-630e7050e8f0"
COMMAND_CHAR = "34800001-7185-4d5d-b431-630e7050e8f0"
DATA_CHAR = "34800002-7185-4d5d-b431-630e7050e8f0"
RATES_HZ = (13.0, 26.0, 52.0, 104.0, 208.0, 416.0, 833.0, 1666.0)
WRAP = 1 << 32
_MAX_SAMPLES = 64  # far above any MTU-sized packet; bounds work on garbage

FAMILY = SensorFamily(
    name="movesense_gsp",
    title="Movesense (gatt_sensordata_app firmware)",
    service_uuid=SERVICE,
    data_uuids=(DATA_CHAR,),
    control_uuid=COMMAND_CHAR,
    response_uuid=DATA_CHAR,
    name_patterns=(r"^Movesense",),
    advertised_uuids=(SERVICE,),
    manufacturer_ids=(),
    rates_hz=RATES_HZ,
    acc_ranges_g=(16.0,),
    gyro_ranges_dps=(2000.0,),
    capabilities=Capability.ACC | Capability.GYRO | Capability.MAG,
    has_device_clock=True,
    max_realtime_rate_hz=208.0,
    acc_limit_g=32.0,
    gyro_limit_dps=4000.0,
    notes=(
        "Needs firmware with gatt_sensordata_app. Rate list from community code (confirm with "
        "/Meas/IMU/Info); 208 Hz as the highest real-time IMU6 rate is an estimate (BLE throughput). "
        "Ranges for saturation flags (±16 g, ±2000 dps) are the sensor's defaults, not in SENSORS.md. "
        "Range setting (/Meas/Acc/Config) is not implemented."
    ),
)


@dataclass
class GspStream:
    """Per-subscription state: resource kind, rate, pending first parts, wrap and gap tracking."""

    kind: str = "IMU6"
    rate_hz: float = 104.0
    ref: int | None = None
    acc_range_g: float = 16.0
    gyro_range_dps: float = 2000.0
    pending: dict[int, bytes] = field(default_factory=dict)
    last_raw_ms: int | None = None
    wraps: int = 0
    clock: SampleClock = field(init=False)

    def __post_init__(self) -> None:
        if self.kind not in ("IMU6", "IMU9"):
            raise ValidationError(f"movesense_gsp: kind must be 'IMU6' or 'IMU9', got {self.kind!r}")
        if not self.rate_hz > 0:
            raise ValidationError(f"movesense_gsp: rate_hz must be > 0, got {self.rate_hz}")
        self.clock = SampleClock(self.rate_hz)


def new_stream(kind: str = "IMU6", rate_hz: float = 104.0, ref: int | None = None, acc_range_g: float = 16.0, gyro_range_dps: float = 2000.0) -> GspStream:
    """State for one subscription (``/Meas/<kind>/<rate_hz>`` with reference ``ref``)."""
    return GspStream(str(kind).upper(), float(rate_hz), None if ref is None else int(ref), float(acc_range_g), float(gyro_range_dps))


def decode(payload: bytes, stream: GspStream | None = None) -> Decoded:
    """Decode one notification of the GSP data characteristic.

    Returns
    -------
    Decoded
        N samples of acc (m/s²), gyro (rad/s), IMU9 mag (µT), device time = unwrapped ms / 1000.
        A command result or the first half of a split packet gives no samples.
    """
    data = as_bytes(FAMILY.name, payload)
    stream = stream or new_stream()
    if len(data) < 2:
        raise decode_error(FAMILY.name, f"notification of {len(data)} bytes has no type/ref header")
    kind_byte, ref = data[0], data[1]
    if stream.ref is not None and ref != stream.ref:
        raise decode_error(FAMILY.name, f"reference {ref} does not belong to this subscription ({stream.ref})")
    if kind_byte == 1:
        return Decoded.empty(FAMILY.name, command_result={"ref": ref, "status_hex": data[2:].hex()})
    block = 36 if stream.kind == "IMU9" else 24
    if kind_byte == 2:
        body = len(data) - 6
        if body > 0 and body % block == 0:
            stream.pending.pop(ref, None)
            return _decode_data(data, stream, block)
        if len(data) < 6:
            raise decode_error(FAMILY.name, f"DATA packet of {len(data)} bytes is shorter than its 6-byte header")
        # a first part: keep it (a previous unmatched part is lost, seen later as a time gap)
        stream.pending[ref] = data
        return Decoded.empty(FAMILY.name, pending_part=True)
    if kind_byte == 3:
        first = stream.pending.pop(ref, None)
        if first is None:
            raise decode_error(FAMILY.name, f"DATA_PART2 for reference {ref} without a preceding DATA part")
        joined = first + data[2:]
        if (len(joined) - 6) % block or len(joined) <= 6:
            raise decode_error(
                FAMILY.name, f"joined {stream.kind} packet of {len(joined)} bytes is not 6 + N × {block}"
            )
        return _decode_data(joined, stream, block)
    raise decode_error(FAMILY.name, f"unknown packet type {kind_byte}")


@np.errstate(all="ignore")  # forged floats (NaN, inf) are rejected below, not warned about
def _decode_data(data: bytes, stream: GspStream, block: int) -> Decoded:
    n = (len(data) - 6) // block
    if n > _MAX_SAMPLES:
        raise decode_error(FAMILY.name, f"{n} samples in one packet is more than any MTU allows")
    raw = int.from_bytes(data[2:6], "little")
    vals = np.frombuffer(data, "<f4", offset=6).astype(np.float64).reshape(block // 12, n, 3)
    acc = vals[0]
    gyro = vals[1] * DEG
    check_values(FAMILY, acc, gyro)
    mag = None
    if block == 36:
        mag = vals[2]
        if not (np.all(np.isfinite(mag)) and np.max(np.abs(mag)) <= 10_000.0):
            raise decode_error(FAMILY.name, "magnetic field is NaN, infinite or beyond ±10 mT")
    if stream.last_raw_ms is not None:
        step = (raw - stream.last_raw_ms) % WRAP
        if step == 0 or step >= WRAP // 2:
            raise decode_error(FAMILY.name, f"timestamp {raw} ms repeats or goes backwards (previous {stream.last_raw_ms} ms)")
        if raw < stream.last_raw_ms:
            stream.wraps += 1
    stream.last_raw_ms = raw
    t0 = (raw + stream.wraps * WRAP) * 1e-3
    t = t0 + np.arange(n) / stream.rate_hz
    seq, gap = stream.clock.advance(n, float(t[0]), float(t[-1]))
    flags = threshold_flags(acc, stream.acc_range_g * G, SampleFlag.ACC_SATURATED) | threshold_flags(
        gyro, stream.gyro_range_dps * DEG, SampleFlag.GYRO_SATURATED
    )
    if gap:
        flags[0] |= np.uint8(SampleFlag.GAP_BEFORE)
    return Decoded(FAMILY.name, t, acc, gyro, seq, flags, mag=mag, meta={"ref": data[1]})


def subscribe_bytes(path: str, ref: int = 99) -> bytes:
    """``01 <ref> <ASCII path>``."""
    if not 1 <= ref <= 255:
        raise ValidationError(f"movesense_gsp: ref must be 1–255, got {ref}")
    return bytes([0x01, ref]) + path.encode("ascii")


def configure_commands(rate_hz: float = 104.0, acc_range_g: float | None = None, gyro_range_dps: float | None = None) -> list[Command]:
    """None: the rate is part of the subscription path."""
    if float(rate_hz) not in RATES_HZ:
        raise ValidationError(f"movesense_gsp: rate must be one of {[int(r) for r in RATES_HZ]} Hz, got {rate_hz}")
    return []


def start_commands(rate_hz: float = 104.0, kind: str = "IMU6", ref: int = 99) -> list[Command]:
    """Subscribe to ``/Meas/<kind>/<rate>``."""
    if float(rate_hz) not in RATES_HZ:
        raise ValidationError(f"movesense_gsp: rate must be one of {[int(r) for r in RATES_HZ]} Hz, got {rate_hz}")
    path = f"/Meas/{kind}/{int(rate_hz)}"
    return [Command(COMMAND_CHAR, subscribe_bytes(path, ref), True, 0.0, f"subscribe {path}")]


def stop_commands(ref: int = 99) -> list[Command]:
    """``02 <ref>``."""
    return [Command(COMMAND_CHAR, bytes([0x02, ref & 0xFF]), True, 0.0, "unsubscribe")]
