"""Polar Measurement Data (PMD): Verity Sense ACC/GYRO, H10/OH1 ACC, raw and delta frames.

Written from the published layout in SENSORS.md §1 (not from SDK code). A data notification is
``type(1) timestamp_ns(u64, last sample, since 2000-01-01) frame_type(1) content``; bit 7 of
the frame-type byte marks delta compression. Units: raw ACC frames are mG; delta ACC frame 0
gives g after the factor, delta ACC frame 1 mG; GYRO delta frames give dps (frame 1 carries
float32 bit patterns). The factor is the one the device returned in its start response.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
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
    SampleClock,
    SensorFamily,
    as_bytes,
    check_values,
    decode_error,
    threshold_flags,
)

__all__ = [
    "FAMILY",
    "PolarStream",
    "new_stream",
    "decode",
    "delta_decode",
    "parse_cp_response",
    "parse_settings",
    "settings_tlv",
    "configure_commands",
    "start_commands",
    "stop_commands",
]

SERVICE = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
CONTROL_POINT = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
DATA_CHAR = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"

ECG, PPG, ACC, PPI, GYRO, MAG, SDK_MODE = 0, 1, 2, 3, 5, 6, 9
EPOCH_2000_UNIX_S = 946_684_800  # add to device seconds to get Unix time
OP_GET_SETTINGS, OP_START, OP_STOP, OP_GET_SDK_SETTINGS = 0x01, 0x02, 0x03, 0x04
STATUS = {
    0: "success", 1: "invalid op code", 2: "invalid measurement type", 3: "not supported", 4: "invalid length",
    5: "invalid parameter", 6: "already in state", 7: "invalid resolution", 8: "invalid sample rate",
    9: "invalid range", 10: "invalid MTU", 11: "invalid number of channels", 12: "invalid state",
    13: "device in charger", 14: "disk full",
}
# settings TLV: type -> (name, value width in bytes)
SETTING_TYPES = {0: ("sample_rate_hz", 2), 1: ("resolution_bits", 2), 2: ("range", 2), 3: ("range_milli", 4),
                 4: ("channels", 1), 5: ("factor", 4), 6: ("security", 16)}
_MAX_SAMPLES = 4096  # bounds the work a forged frame can cause

FAMILY = SensorFamily(
    name="polar_pmd",
    title="Polar Verity Sense (ACC+GYRO), H10 / OH1 (ACC only)",
    service_uuid=SERVICE,
    data_uuids=(DATA_CHAR,),
    control_uuid=CONTROL_POINT,
    response_uuid=CONTROL_POINT,
    name_patterns=(r"^Polar ",),
    advertised_uuids=(SERVICE,),
    manufacturer_ids=(),
    rates_hz=(25.0, 26.0, 50.0, 52.0, 100.0, 104.0, 200.0, 208.0, 416.0),
    acc_ranges_g=(2.0, 4.0, 8.0, 16.0),
    gyro_ranges_dps=(250.0, 500.0, 1000.0, 2000.0),
    capabilities=Capability.ACC | Capability.GYRO | Capability.MAG,
    has_device_clock=True,
    max_realtime_rate_hz=416.0,
    acc_limit_g=17.0,
    gyro_limit_dps=2100.0,
    notes=(
        "Gyroscope on the Verity Sense only. 52 Hz default; 26–416 Hz needs SDK mode (all streams at "
        "416 Hz may not fit BLE). Uncompressed GYRO frames (0x00/0x01) are refused: their layout is "
        "not in SENSORS.md. Raw ACC frame 0x00 (int8) is read as mG, unverified. No sequence "
        "counter: gaps from timestamps. Clock setting (PFTP) is out of scope."
    ),
)


@dataclass
class PolarChannel:
    """Configuration of one measurement (from the settings chosen and the start response)."""

    rate_hz: float
    factor: float
    full_scale: float  # ±g for ACC, ±dps for GYRO, for saturation flags


@dataclass
class PolarStream:
    """Per-connection state: ACC/GYRO configuration and previous frame timestamps.

    Previous timestamps are kept per (measurement type, frame-type byte), as the time rule
    of SENSORS.md requires; forget them (``reset()``) whenever a stream stops.
    """

    acc: PolarChannel = field(default_factory=lambda: PolarChannel(52.0, 1.0, 8.0))
    gyro: PolarChannel = field(default_factory=lambda: PolarChannel(52.0, 1.0, 2000.0))
    previous_ns: dict[tuple[int, int], int] = field(default_factory=dict)
    seed_previous_ns: int | None = None
    clocks: dict[int, SampleClock] = field(default_factory=dict)
    # measurement type -> [estimated device sample period (ns), weight in samples]
    periods: dict[int, list[float]] = field(default_factory=dict)

    def reset(self) -> None:
        self.previous_ns.clear()
        self.clocks.clear()
        self.periods.clear()

    def period_ns(self, mtype: int) -> float:
        """The sample period the device actually runs at, on its own clock (ns): a running mean
        over gap-free frames, starting at the configured rate."""
        est = self.periods.get(mtype)
        return est[0] if est else 1e9 / self.channel(mtype).rate_hz

    def period_uncertainty(self, mtype: int) -> float:
        """Relative error the period estimate may still have: a device's true rate may be a few %
        off nominal until enough gap-free samples have been seen."""
        est = self.periods.get(mtype)
        return 0.0 if est and est[1] >= _PERIOD_TRUSTED else _RATE_UNCERTAINTY

    def channel(self, mtype: int) -> PolarChannel:
        return self.acc if mtype == ACC else self.gyro


def new_stream(
    acc_rate_hz: float = 52.0,
    acc_factor: float = 1.0,
    acc_range_g: float = 8.0,
    gyro_rate_hz: float = 52.0,
    gyro_factor: float = 1.0,
    gyro_range_dps: float = 2000.0,
    previous_timestamp_ns: int | None = None,
) -> PolarStream:
    """State for the PMD data characteristic of one device.

    Parameters
    ----------
    acc_rate_hz, gyro_rate_hz : float
        Sample rates requested in the start commands, Hz.
    acc_factor, gyro_factor : float
        Conversion factors (setting type 5) from the start responses.
    acc_range_g, gyro_range_dps : float
        Configured ranges (saturation flags).
    previous_timestamp_ns : int, optional
        Timestamp of a frame before the first one decoded (replaying a capture).
    """
    for name, v in (("acc_rate_hz", acc_rate_hz), ("gyro_rate_hz", gyro_rate_hz), ("acc_factor", acc_factor),
                    ("gyro_factor", gyro_factor), ("acc_range_g", acc_range_g), ("gyro_range_dps", gyro_range_dps)):
        if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
            raise ValidationError(f"polar_pmd: {name} must be a positive number, got {v!r}")
    return PolarStream(
        PolarChannel(float(acc_rate_hz), float(acc_factor), float(acc_range_g)),
        PolarChannel(float(gyro_rate_hz), float(gyro_factor), float(gyro_range_dps)),
        seed_previous_ns=None if previous_timestamp_ns is None else int(previous_timestamp_ns),
    )


_WHOLE_BYTE_DELTAS = {8: np.dtype("i1"), 16: np.dtype("<i2"), 32: np.dtype("<i4")}


def _sign_extend(v: np.ndarray, bits: int) -> np.ndarray:
    v = v.astype(np.int64)
    if bits == 0:
        return v
    return v - ((v >> (bits - 1)) & 1) * (1 << bits)


def delta_decode(content: bytes, channels: int = 3, resolution: int = 16, float_bits: bool = False) -> np.ndarray:
    """Rebuild the samples of a delta-compressed frame content (bytes after the 10-byte header).

    Parameters
    ----------
    content : bytes
        Reference sample, then blocks ``width(1) count(1) packed deltas``.
    channels : int
        Channels per sample (3 for ACC and GYRO).
    resolution : int
        Bits of each reference value (16 for ACC/GYRO frame 0, 32 for GYRO frame 1).
    float_bits : bool
        Keep the reference unsigned and wrap sums mod 2^32 (IEEE-754 bit patterns).

    Returns
    -------
    ndarray, shape (1 + Σcount, channels)
        int64 counts, or uint32 bit patterns when ``float_bits``.

    Raises
    ------
    DecodeError
        Truncated reference or block, impossible delta width, too many samples.
    """
    ref_w = (resolution + 7) // 8
    need = channels * ref_w
    if len(content) < need:
        raise decode_error(FAMILY.name, f"delta frame of {len(content)} bytes is shorter than its {need}-byte reference sample")
    if resolution == 16 and not float_bits:
        ref = np.frombuffer(content, "<i2", count=channels).astype(np.int64)  # little-endian, sign-extended
    else:
        ref = np.frombuffer(content[:need], np.uint8).reshape(channels, ref_w).astype(np.int64)
        ref = (ref << (8 * np.arange(ref_w, dtype=np.int64))).sum(axis=1)
        if not float_bits:
            ref = _sign_extend(ref, resolution)
    parts = [ref.reshape(1, channels)]
    total = 1
    pos = need
    buf = np.frombuffer(content, np.uint8)
    while pos < len(content):
        if pos + 2 > len(content):
            raise decode_error(FAMILY.name, f"delta block header truncated at byte {pos} of the frame content")
        width, count = content[pos], content[pos + 1]
        pos += 2
        if width > 32:
            raise decode_error(FAMILY.name, f"delta width {width} bits is impossible (at most 32)")
        nbits = width * count * channels
        nbytes = (nbits + 7) // 8
        if pos + nbytes > len(content):
            raise decode_error(
                FAMILY.name, f"delta block of {count} samples × {width} bits needs {nbytes} bytes, {len(content) - pos} left"
            )
        total += count
        if total > _MAX_SAMPLES:
            raise decode_error(FAMILY.name, f"frame claims more than {_MAX_SAMPLES} samples")
        if count == 0:
            pos += nbytes
            continue
        if width == 0:
            parts.append(np.zeros((count, channels), np.int64))
            continue
        whole = _WHOLE_BYTE_DELTAS.get(width)
        if whole is not None:
            # LSB-first packing of 8/16/32-bit values is their little-endian byte layout
            vals = np.frombuffer(content, whole, count=count * channels, offset=pos).astype(np.int64)
            parts.append(vals.reshape(count, channels))
        else:
            bits = np.unpackbits(buf[pos : pos + nbytes], bitorder="little")[:nbits].reshape(-1, width)
            vals = bits.astype(np.int64) @ (np.int64(1) << np.arange(width, dtype=np.int64))
            parts.append(_sign_extend(vals, width).reshape(count, channels))
        pos += nbytes
    deltas = np.concatenate(parts)
    samples = np.cumsum(deltas, axis=0)
    if float_bits:
        return (samples & 0xFFFFFFFF).astype(np.uint32)
    return samples


def _raw(content: bytes, width: int) -> np.ndarray:
    if len(content) % (3 * width):
        raise decode_error(FAMILY.name, f"raw frame content of {len(content)} bytes is not a whole number of {3 * width}-byte samples")
    if width == 3:
        b = np.frombuffer(content, np.uint8).reshape(-1, 3).astype(np.int64)
        return _sign_extend(b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16), 24).reshape(-1, 3)
    return np.frombuffer(content, {1: "i1", 2: "<i2"}[width]).astype(np.int64).reshape(-1, 3)


_PERIOD_MEMORY = 2000  # samples: a running mean at first, then forgets with this time constant
_PERIOD_TOLERANCE = 0.1  # frames whose step is further than this from the estimate do not teach it
_RATE_UNCERTAINTY = 0.05  # how far off nominal a device may run, until the estimate is trusted
_PERIOD_TRUSTED = 50  # gap-free samples after which the estimate is trusted


def _learn_period(stream: PolarStream, mtype: int, period: float, step: float, n: int) -> None:
    """Fold a gap-free frame's mean step into the running estimate of the device's period.

    Real devices run a few % off their nominal rate; the estimate lets a frame's time span be
    counted in true sample periods (gap detection) and frames after a gap be timed exactly."""
    if abs(step - period) > _PERIOD_TOLERANCE * period:
        return
    est = stream.periods.setdefault(mtype, [period, 0.0])
    est[1] = min(est[1] + n, _PERIOD_MEMORY)
    est[0] += (step - est[0]) * (n / est[1])


@np.errstate(all="ignore")  # forged floats (NaN, inf) are rejected below, not warned about
def decode(payload: bytes, stream: PolarStream | None = None) -> Decoded:
    """Decode one PMD data notification (an ACC or a GYRO frame).

    Returns
    -------
    Decoded
        ACC frames: ``acc`` (N, 3) m/s², ``gyro`` None; GYRO frames: ``gyro`` rad/s, ``acc`` None.
        ``device_time_s`` is seconds since 2000-01-01 on the device clock, per sample, by the
        documented rule (interpolated from the previous frame of the same type), or, for the first
        frame and after a gap, stepped back from the last sample at the device's estimated period
        (:meth:`PolarStream.period_ns`). A gap is a frame whose time span since the previous one
        holds at least one whole period more than its samples (more, by the rate's uncertainty,
        until 50 gap-free samples have taught the period).
        ``meta``: measurement type, frame-type byte, timestamp of the last sample (ns).
    """
    data = as_bytes(FAMILY.name, payload)
    stream = stream or new_stream()
    if len(data) < 11:
        raise decode_error(FAMILY.name, f"data frame of {len(data)} bytes is shorter than its 10-byte header plus content")
    mtype = data[0] & 0x3F
    ts = int.from_bytes(data[1:9], "little")
    ftb = data[9]
    content = data[10:]
    if mtype not in (ACC, GYRO):
        raise decode_error(FAMILY.name, f"measurement type {mtype} is not ACC (2) or GYRO (5)")
    if ts >= 1 << 63:
        raise decode_error(FAMILY.name, f"timestamp {ts} ns is impossible (beyond the signed 64-bit range)")
    compressed, ft = bool(ftb & 0x80), ftb & 0x7F
    ch = stream.channel(mtype)
    if mtype == ACC:
        if not compressed:
            if ft not in (0, 1, 2):
                raise decode_error(FAMILY.name, f"unknown raw ACC frame type 0x{ftb:02x}")
            values_g = _raw(content, ft + 1) * 1e-3  # raw ACC frames are mG
        elif ft == 0:
            values_g = delta_decode(content, 3, 16) * ch.factor
        elif ft == 1:
            values_g = delta_decode(content, 3, 16) * (ch.factor * 1e-3)
        else:
            raise decode_error(FAMILY.name, f"unknown compressed ACC frame type 0x{ftb:02x}")
        acc, gyro = values_g * G, None
        flags = threshold_flags(values_g, ch.full_scale, SampleFlag.ACC_SATURATED)
    else:
        if not compressed:
            raise decode_error(FAMILY.name, f"uncompressed GYRO frame type 0x{ftb:02x} is not supported (layout undocumented)")
        if ft == 0:
            dps = delta_decode(content, 3, 16) * ch.factor
        elif ft == 1:
            dps = delta_decode(content, 3, 32, float_bits=True).view(np.float32).astype(np.float64)
            if ch.factor != 1.0:
                dps = dps * ch.factor
        else:
            raise decode_error(FAMILY.name, f"unknown compressed GYRO frame type 0x{ftb:02x}")
        acc, gyro = None, dps * DEG
        flags = threshold_flags(np.nan_to_num(dps), ch.full_scale, SampleFlag.GYRO_SATURATED)
    check_values(FAMILY, acc, gyro)
    n = len(flags)

    key = (mtype, ftb)
    prev = stream.previous_ns.get(key, stream.seed_previous_ns)
    nominal_ns = 1e9 / ch.rate_hz
    period = stream.period_ns(mtype)
    gap = False
    if prev is not None and ts <= prev:
        stream.previous_ns.pop(key, None)  # start afresh with the next frame
        stream.seed_previous_ns = None
        raise decode_error(FAMILY.name, f"timestamp {ts} ns does not advance past the previous frame's {prev} ns")
    if prev is not None:
        span = ts - prev
        step = span / n
        if step < 0.25 * nominal_ns:
            # n samples in far less time than the configured rate allows: clock jump or forgery
            stream.previous_ns.pop(key, None)
            stream.seed_previous_ns = None
            raise decode_error(
                FAMILY.name,
                f"{n} samples in {span} ns is impossible at {ch.rate_hz:g} Hz (previous frame {prev} ns)",
            )
        # The frame's time span against the device's sample period: whole samples beyond n were
        # lost (a lost frame of a few samples before a long one only shows this way; the mean
        # step would spread them over the samples received).
        excess = span / period - n
        if excess >= 0.5 + stream.period_uncertainty(mtype) * (n + excess):
            gap = True
        else:
            t_ns = prev + step * np.arange(1, n + 1)  # the documented rule
            _learn_period(stream, mtype, period, step, n)
    if prev is None or gap:
        t_ns = ts - period * np.arange(n - 1, -1, -1)
    stream.previous_ns[key] = ts
    stream.seed_previous_ns = None
    t = np.asarray(t_ns, np.float64) * 1e-9
    clock = stream.clocks.setdefault(mtype, SampleClock(ch.rate_hz))
    clock.rate_hz = 1e9 / stream.period_ns(mtype)  # lost samples counted in the device's own periods
    seq, clock_gap = clock.advance(n, float(t[0]), float(t[-1]))
    if (gap or clock_gap) and prev is not None:
        flags[0] |= np.uint8(SampleFlag.GAP_BEFORE)
    meta = {"measurement_type": mtype, "frame_type": ftb, "timestamp_ns": ts}
    return Decoded(FAMILY.name, t, acc, gyro, seq, flags, meta=meta)


# ---------------------------------------------------------------- control point


def parse_settings(params: bytes) -> dict[str, list[Any]]:
    """Parse a settings TLV (``type(1) count(1) value × count``) into lists per setting name."""
    out: dict[str, list[Any]] = {}
    pos = 0
    while pos < len(params):
        if pos + 2 > len(params):
            raise decode_error(FAMILY.name, f"settings entry header truncated at byte {pos}")
        typ, count = params[pos], params[pos + 1]
        pos += 2
        if typ not in SETTING_TYPES:
            raise decode_error(FAMILY.name, f"unknown setting type {typ}")
        name, width = SETTING_TYPES[typ]
        end = pos + width * count
        if end > len(params):
            raise decode_error(FAMILY.name, f"setting {name} needs {width * count} bytes, {len(params) - pos} left")
        raw = params[pos:end]
        if typ == 5:
            vals: list[Any] = [float(v) for v in struct.unpack(f"<{count}f", raw)]
        elif typ == 6:
            vals = [raw[i * 16 : (i + 1) * 16].hex() for i in range(count)]
        else:
            vals = [int.from_bytes(raw[i * width : (i + 1) * width], "little") for i in range(count)]
        out.setdefault(name, []).extend(vals)
        pos = end
    return out


def settings_tlv(sample_rate_hz: int, resolution_bits: int = 16, range_: int | None = None, channels: int | None = None) -> bytes:
    """A start-request TLV with one value per setting (never the factor)."""
    out = bytearray([0, 1]) + int(sample_rate_hz).to_bytes(2, "little")
    out += bytes([1, 1]) + int(resolution_bits).to_bytes(2, "little")
    if range_ is not None:
        out += bytes([2, 1]) + int(range_).to_bytes(2, "little")
    if channels is not None:
        out += bytes([4, 1, int(channels)])
    return bytes(out)


def parse_cp_response(data: bytes) -> dict[str, Any]:
    """Parse a control-point indication: a response (``F0 …``), a stop notice (``01 …``) or a feature read (``0F …``)."""
    data = as_bytes(FAMILY.name, data)
    if not data:
        raise decode_error(FAMILY.name, "empty control-point indication")
    if data[0] == 0xF0:
        if len(data) < 4:
            raise decode_error(FAMILY.name, f"control-point response of {len(data)} bytes is shorter than 4")
        status = data[3]
        return {
            "response_code": 0xF0,
            "op_code": data[1],
            "measurement_type": data[2],
            "status": status,
            "status_text": STATUS.get(status, f"unknown status {status}"),
            "more": bool(data[4]) if len(data) > 4 else False,
            "parameters": data[5:],
        }
    if data[0] == 0x01:
        return {"stopped_types": list(data[1:])}
    if data[0] == 0x0F:
        names1 = ["ecg", "ppg", "acc", "ppi", None, "gyro", "mag", "skin_temperature"]
        names2 = [None, "sdk_mode", "location", "pressure", "temperature", "offline_recording", "offline_hr", None]
        feats = [n for i, n in enumerate(names1) if n and len(data) > 1 and data[1] >> i & 1]
        feats += [n for i, n in enumerate(names2) if n and len(data) > 2 and data[2] >> i & 1]
        return {"features": feats}
    raise decode_error(FAMILY.name, f"unknown control-point indication starting 0x{data[0]:02x}")


def get_settings_command(mtype: int) -> Command:
    return Command(CONTROL_POINT, bytes([OP_GET_SETTINGS, mtype]), True, 0.0, f"get settings of type {mtype}")


def start_command(mtype: int, sample_rate_hz: int, resolution_bits: int = 16, range_: int | None = None, channels: int | None = None) -> Command:
    data = bytes([OP_START, mtype]) + settings_tlv(sample_rate_hz, resolution_bits, range_, channels)
    return Command(CONTROL_POINT, data, True, 0.0, f"start type {mtype} at {sample_rate_hz} Hz")


def configure_commands(rate_hz: float = 52.0, acc_range_g: float | None = 8.0, gyro_range_dps: float | None = 2000.0, sdk_mode: bool = False) -> list[Command]:
    """Ask for the ACC (and GYRO) settings; optionally enter SDK mode first (Verity Sense).

    PMD has no separate configure step: the rate and range go into the start request, which
    should only use values the device listed in its settings response.
    """
    cmds = [Command(CONTROL_POINT, bytes([OP_START, SDK_MODE]), True, 0.0, "enter SDK mode")] if sdk_mode else []
    cmds.append(get_settings_command(ACC))
    if gyro_range_dps is not None:
        cmds.append(get_settings_command(GYRO))
    return cmds


def start_commands(rate_hz: float = 52.0, acc_range_g: float | None = 8.0, gyro_range_dps: float | None = 2000.0, channels: int | None = None) -> list[Command]:
    """Start ACC and (Verity Sense) GYRO; pass ``gyro_range_dps=None`` for the H10/OH1.

    Keep the factor (setting 5) from each start response for :func:`new_stream`.
    """
    if float(rate_hz) not in FAMILY.rates_hz:
        raise ValidationError(f"polar_pmd: rate must be one of {list(FAMILY.rates_hz)} Hz, got {rate_hz}")
    cmds = []
    if acc_range_g is not None:
        if float(acc_range_g) not in FAMILY.acc_ranges_g:
            raise ValidationError(f"polar_pmd: acc range must be one of {list(FAMILY.acc_ranges_g)} g, got {acc_range_g}")
        cmds.append(start_command(ACC, int(rate_hz), 16, int(acc_range_g), channels))
    if gyro_range_dps is not None:
        if float(gyro_range_dps) not in FAMILY.gyro_ranges_dps:
            raise ValidationError(f"polar_pmd: gyro range must be one of {list(FAMILY.gyro_ranges_dps)} dps, got {gyro_range_dps}")
        cmds.append(start_command(GYRO, int(rate_hz), 16, int(gyro_range_dps), channels))
    return cmds


def stop_commands(gyro: bool = True, sdk_mode: bool = False) -> list[Command]:
    """Stop each stream (always before disconnecting: an H10 left streaming drains its battery)."""
    cmds = [Command(CONTROL_POINT, bytes([OP_STOP, ACC]), True, 0.0, "stop ACC")]
    if gyro:
        cmds.append(Command(CONTROL_POINT, bytes([OP_STOP, GYRO]), True, 0.0, "stop GYRO"))
    if sdk_mode:
        cmds.append(Command(CONTROL_POINT, bytes([OP_STOP, SDK_MODE]), True, 0.0, "leave SDK mode"))
    return cmds
