"""Shared vocabulary of the sensor families: descriptions, commands and decoded samples.

Every family module (``polar_pmd``, ``metawear``, …) exposes the same small surface:

* ``FAMILY`` — a :class:`SensorFamily` (UUIDs, scan rules, rates, ranges, capabilities);
* ``new_stream(**context)`` — a per-stream state object (configuration + sequence/gap tracking);
* ``decode(payload, stream)`` — a pure decoder from one GATT notification to a :class:`Decoded`;
* ``configure_commands``/``start_commands``/``stop_commands`` — lists of :class:`Command` writes.

Decoders raise :class:`lumbar.errors.DecodeError` (never anything else) for payloads that
cannot be trusted; the stream state is left usable so the stream goes on.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import Flag, auto
from typing import Any

import numpy as np

from lumbar.errors import DecodeError
from lumbar.types import STANDARD_G, ImuBatch, SampleFlag

__all__ = [
    "Capability",
    "Command",
    "Decoded",
    "SensorFamily",
    "decode_error",
    "G",
    "DEG",
]

G = STANDARD_G  # m/s² per g
DEG = math.pi / 180.0  # rad per degree


class Capability(Flag):
    """What a family can stream."""

    NONE = 0
    ACC = auto()
    GYRO = auto()
    MAG = auto()
    QUATERNION = auto()
    BATTERY = auto()


@dataclass(frozen=True)
class Command:
    """One GATT write the host performs, in order.

    Parameters
    ----------
    characteristic : str
        128-bit UUID (lowercase) of the characteristic to write.
    data : bytes
        Value to write.
    with_response : bool
        ATT Write Request (True) or Write Command without response (False).
    delay_after_s : float
        Pause the host should leave after this write, seconds (e.g. WitMotion unlock/save).
    note : str
        What the write does, for logs.
    """

    characteristic: str
    data: bytes
    with_response: bool = True
    delay_after_s: float = 0.0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "characteristic": self.characteristic,
            "hex": self.data.hex(),
            "with_response": self.with_response,
            "delay_after_s": self.delay_after_s,
            "note": self.note,
        }


@dataclass(frozen=True)
class SensorFamily:
    """Static description of one protocol family (what the registry lists).

    Rates are in Hz, acceleration ranges in ±g, gyroscope ranges in ±dps, as the vendors
    quote them; decoded samples are always SI (m/s², rad/s).

    Parameters
    ----------
    name : str
        Registry key, as in the shared vectors' ``sensor`` field (``"polar_pmd"``…).
    title : str
        Human name of the devices.
    service_uuid : str
        Primary GATT service carrying the stream.
    data_uuids : tuple of str
        Characteristics to subscribe to for samples (notify).
    control_uuid : str
        Characteristic commands are written to ("" if none).
    response_uuid : str
        Characteristic carrying command responses ("" if they come on a data characteristic).
    name_patterns : tuple of str
        Regular expressions (case-insensitive, ``re.search``) matched against the advertised name.
    advertised_uuids : tuple of str
        Service UUIDs whose presence in an advertisement identifies the family.
    manufacturer_ids : tuple of int
        Bluetooth SIG company identifiers seen in the manufacturer data.
    rates_hz : tuple of float
        Output data rates the host may select.
    acc_ranges_g, gyro_ranges_dps : tuple of float
        Selectable full-scale ranges (± value); one value if fixed.
    capabilities : Capability
        What the family can stream.
    has_device_clock : bool
        Whether samples carry a device timestamp (else the host stamps arrival time).
    max_realtime_rate_hz : float
        Highest acc+gyro rate that streams in real time over BLE (for benchmarks and the GUI).
    acc_limit_g, gyro_limit_dps : float
        Largest magnitude a decoded sample may have; larger values are rejected as corrupt.
    notes : str
        Caveats (unverified facts, missing features).
    """

    name: str
    title: str
    service_uuid: str
    data_uuids: tuple[str, ...]
    control_uuid: str
    response_uuid: str
    name_patterns: tuple[str, ...]
    advertised_uuids: tuple[str, ...]
    manufacturer_ids: tuple[int, ...]
    rates_hz: tuple[float, ...]
    acc_ranges_g: tuple[float, ...]
    gyro_ranges_dps: tuple[float, ...]
    capabilities: Capability
    has_device_clock: bool
    max_realtime_rate_hz: float
    acc_limit_g: float
    gyro_limit_dps: float
    notes: str = ""

    @property
    def acc_limit_mps2(self) -> float:
        return self.acc_limit_g * G

    @property
    def gyro_limit_rads(self) -> float:
        return self.gyro_limit_dps * DEG

    def matches(
        self,
        name: str | None = None,
        service_uuids: tuple[str, ...] | list[str] = (),
        manufacturer_ids: tuple[int, ...] | list[int] = (),
    ) -> bool:
        """Whether an advertisement (name, service UUIDs, company ids) looks like this family."""
        uuids = {u.lower() for u in service_uuids}
        if any(u in uuids for u in self.advertised_uuids):
            return True
        if any(m in self.manufacturer_ids for m in manufacturer_ids):
            return True
        return bool(name) and any(re.search(p, name, re.IGNORECASE) for p in self.name_patterns)

    def to_dict(self) -> dict[str, Any]:
        caps = [c.name.lower() for c in Capability if c.value and c in self.capabilities]
        return {
            "name": self.name,
            "title": self.title,
            "service_uuid": self.service_uuid,
            "data_uuids": list(self.data_uuids),
            "control_uuid": self.control_uuid,
            "response_uuid": self.response_uuid,
            "name_patterns": list(self.name_patterns),
            "advertised_uuids": list(self.advertised_uuids),
            "manufacturer_ids": list(self.manufacturer_ids),
            "rates_hz": list(self.rates_hz),
            "acc_ranges_g": list(self.acc_ranges_g),
            "gyro_ranges_dps": list(self.gyro_ranges_dps),
            "capabilities": caps,
            "has_device_clock": self.has_device_clock,
            "max_realtime_rate_hz": self.max_realtime_rate_hz,
            "notes": self.notes,
        }


def decode_error(family: str, problem: str) -> DecodeError:
    """A :class:`DecodeError` whose message names the family and the problem."""
    return DecodeError(f"{family}: {problem}")


_EMPTY3 = np.empty((0, 3))


@dataclass
class Decoded:
    """What one notification decodes to (a light result, convertible to an ImuBatch).

    Parameters
    ----------
    family : str
        Family name.
    device_time_s : ndarray, shape (N,), float64
        Device clock of each sample, seconds in the device's own time base (Polar: since
        2000-01-01; DOT/Movesense/lumbar_ref: since the device's counter origin, unwrapped).
        NaN for families without a device clock (as in :class:`lumbar.types.ImuBatch`).
    acc : ndarray, shape (N, 3), float64, or None
        Specific force, m/s², sensor frame; None when the notification carries no acceleration
        (e.g. a Polar GYRO frame).
    gyro : ndarray, shape (N, 3), float64, or None
        Angular rate, rad/s, sensor frame; None when absent.
    seq : ndarray, shape (N,), int64
        Sample index since the stream state was created; jumps over samples estimated lost.
    flags : ndarray, shape (N,), uint8
        :class:`lumbar.types.SampleFlag` bits (GAP_BEFORE, *_SATURATED, HOST_TIME_ONLY).
    mag : ndarray, shape (N, 3), or None
        Magnetic field (µT where the family documents it, else device units: see ``meta``).
    quat : ndarray, shape (N, 4), or None
        On-board orientation, scalar first (w, x, y, z).
    meta : dict
        Family-specific extras (frame type, command responses, free acceleration, angles…).
    """

    family: str
    device_time_s: np.ndarray
    acc: np.ndarray | None
    gyro: np.ndarray | None
    seq: np.ndarray
    flags: np.ndarray
    mag: np.ndarray | None = None
    quat: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.seq.shape[0])

    @classmethod
    def empty(cls, family: str, **meta: Any) -> "Decoded":
        """No samples (e.g. a command response or the first half of a split packet)."""
        return cls(family, np.empty(0), None, None, np.empty(0, np.int64), np.empty(0, np.uint8), meta=meta)

    def to_batch(self, sensor_id: str, time_s: np.ndarray | None = None) -> ImuBatch:
        """This result as an :class:`ImuBatch`.

        Parameters
        ----------
        sensor_id : str
            Placement key of the sensor.
        time_s : ndarray, shape (N,), optional
            Host times, s. The reader sets them (arrival time, or device time mapped by the
            sync stage). When omitted, the device time is used as a placeholder where the
            family has a clock, else 0.0 — never NaN.

        Notes
        -----
        A channel the notification does not carry (Polar sends ACC and GYRO in separate
        frames) is filled with NaN; the sync stage merges the two streams.
        """
        n = len(self)
        if time_s is None:
            time_s = np.where(np.isfinite(self.device_time_s), self.device_time_s, 0.0)
        nan3 = np.full((n, 3), np.nan)
        return ImuBatch(
            sensor_id=sensor_id,
            time_s=np.asarray(time_s, np.float64),
            device_time_s=self.device_time_s,
            acc=nan3 if self.acc is None else self.acc,
            gyro=nan3 if self.gyro is None else self.gyro,
            seq=self.seq,
            flags=self.flags,
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-serialisable view (SI units, device seconds, flag names)."""
        out: dict[str, Any] = {
            "n_samples": len(self),
            "device_time_s": [None if not math.isfinite(t) else float(t) for t in self.device_time_s],
            "seq": [int(s) for s in self.seq],
            "flags": [int(f) for f in self.flags],
            "flag_names": [
                [fl.name for fl in SampleFlag if fl.value and int(f) & fl.value] for f in self.flags
            ],
        }
        for key, arr in (("acc_mps2", self.acc), ("gyro_rads", self.gyro), ("mag", self.mag), ("quat_wxyz", self.quat)):
            if arr is not None:
                out[key] = np.asarray(arr, np.float64).tolist()
        if self.meta:
            out["meta"] = _jsonable(self.meta)
        return out


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (bytes, bytearray)):
        return bytes(x).hex()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def check_values(family: SensorFamily, acc: np.ndarray | None, gyro: np.ndarray | None) -> None:
    """Reject samples that are NaN/inf or beyond what the family can physically report.

    Raises
    ------
    DecodeError
        Naming the family and the offending channel.
    """
    for label, arr, limit, unit, scale in (
        ("acceleration", acc, family.acc_limit_mps2, "g", G),
        ("angular rate", gyro, family.gyro_limit_rads, "dps", DEG),
    ):
        if arr is None or arr.size == 0:
            continue
        # one reduction per packet: the max of |arr| is NaN or inf exactly when arr holds one
        peak = float(np.abs(arr).max())
        if not math.isfinite(peak):
            raise decode_error(family.name, f"{label} contains NaN or infinity")
        if peak > limit:
            raise decode_error(
                family.name,
                f"{label} {peak / scale:.4g} {unit} exceeds the largest possible ±{limit / scale:.4g} {unit}",
            )


def saturation_flags(counts: np.ndarray, lo: int, hi: int, flag: SampleFlag) -> np.ndarray:
    """Flag per sample where any axis of ``counts`` (N, 3) reached ``lo`` or ``hi``."""
    sat = ((counts <= lo) | (counts >= hi)).any(axis=1)
    out = sat.astype(np.uint8)
    out *= np.uint8(flag)
    return out


_ACC_GYRO_BITS = np.array([SampleFlag.ACC_SATURATED] * 3 + [SampleFlag.GYRO_SATURATED] * 3, np.uint8)


def acc_gyro_saturation_flags(counts: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """:func:`saturation_flags` of columns 0–2 (ACC_SATURATED) OR-ed with columns 3–5
    (GYRO_SATURATED) of ``counts`` (N, 6), in one pass over the packet."""
    hit = (counts <= lo) | (counts >= hi)
    return np.bitwise_or.reduce(hit * _ACC_GYRO_BITS, axis=1)


def threshold_flags(values: np.ndarray, full_scale: float, flag: SampleFlag) -> np.ndarray:
    """Flag per sample where any axis of ``values`` (N, 3) reached ±``full_scale`` (same unit)."""
    sat = (np.abs(values) >= full_scale * (1.0 - 1e-6)).any(axis=1)
    out = sat.astype(np.uint8)
    out *= np.uint8(flag)
    return out


def as_bytes(family: str, payload: Any) -> bytes:
    """Accept bytes-like payloads only (bleak gives ``bytearray``)."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload)
    raise decode_error(family, f"payload must be bytes, got {type(payload).__name__}")


class SampleClock:
    """Sequence and gap tracking shared by the decoders.

    Keeps a running sample index (``next_seq``) and, for clocked families, the device time
    at which the next sample is expected. A gap is declared when the first sample of a packet
    arrives more than 1.5 nominal periods late; the sequence then skips the estimated number of
    lost samples so ``seq`` stays an index on the nominal grid.
    """

    __slots__ = ("rate_hz", "next_seq", "expected_t", "last_t")

    def __init__(self, rate_hz: float) -> None:
        self.rate_hz = float(rate_hz)
        self.next_seq = 0
        self.expected_t: float | None = None  # device time (s) of the next expected sample
        self.last_t: float | None = None

    def reset(self) -> None:
        self.next_seq = 0
        self.expected_t = None
        self.last_t = None

    def advance(self, n: int, t_first: float | None = None, t_last: float | None = None) -> tuple[np.ndarray, bool]:
        """Sequence numbers for ``n`` new samples and whether a gap precedes them."""
        gap = False
        if t_first is not None and self.expected_t is not None and self.rate_hz > 0:
            late = (t_first - self.expected_t) * self.rate_hz
            if late > 0.5:
                gap = True
                self.next_seq += int(round(late))
        seq = np.arange(self.next_seq, self.next_seq + n, dtype=np.int64)
        self.next_seq += n
        if t_last is not None:
            self.last_t = t_last
            self.expected_t = t_last + (1.0 / self.rate_hz if self.rate_hz > 0 else 0.0)
        return seq, gap
