"""The data model every stage speaks.

Units are SI throughout (s, m/s², rad/s); see ``docs/conventions.md``.

* :class:`ImuBatch` — a run of samples of one sensor (the unit that flows through the pipeline).
* :class:`SampleFlag` — per-sample bit flags stored beside the data.
* :class:`SensorInfo` — what is known about one sensor and where it is worn.
* :class:`SessionInfo` — who/what/when of one session (pseudonymous).
* :class:`Event` — a time-stamped marker (trial start, "patient coughed", …).
"""
from __future__ import annotations

import re
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from enum import Enum, IntFlag
from typing import Any, Iterable, Sequence

import numpy as np

from lumbar.errors import ValidationError

__all__ = [
    "Placement",
    "THIGHS",
    "SHANKS",
    "THIGH_OF",
    "SampleFlag",
    "ImuBatch",
    "SensorInfo",
    "SessionInfo",
    "Event",
    "software_version",
]

STANDARD_G = 9.80665  # m/s², the conventional value used by sensor datasheets


def software_version() -> str:
    """Version string of the installed ``lumbar-motor-control`` distribution."""
    from lumbar import __version__

    return __version__


class Placement(str, Enum):
    """Where a sensor is worn. Custom placements are any other lowercase identifier."""

    LUMBAR = "lumbar"  # thoraco-lumbar junction, T12/L1
    SACRUM = "sacrum"  # S1
    THIGH_LEFT = "thigh_left"
    THIGH_RIGHT = "thigh_right"
    SHANK_LEFT = "shank_left"
    SHANK_RIGHT = "shank_right"

    @property
    def description(self) -> str:
        return {
            "lumbar": "thoraco-lumbar junction (T12/L1)",
            "sacrum": "sacrum (S1)",
            "thigh_left": "left thigh, lateral, mid-thigh",
            "thigh_right": "right thigh, lateral, mid-thigh",
            "shank_left": "left shank, lateral, mid-shank",
            "shank_right": "right shank, lateral, mid-shank",
        }[self.value]


#: The thigh placements (hip flexion: ``docs/conventions.md``).
THIGHS: tuple[str, ...] = (Placement.THIGH_LEFT.value, Placement.THIGH_RIGHT.value)
#: The shank placements (knee flexion: ``docs/conventions.md``), optional, for the knee tests.
SHANKS: tuple[str, ...] = (Placement.SHANK_LEFT.value, Placement.SHANK_RIGHT.value)
#: The thigh above each shank (the knee's proximal segment).
THIGH_OF: dict[str, str] = dict(zip(SHANKS, THIGHS))

_PLACEMENT_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def check_placement(name: str) -> str:
    """Return ``name`` if it is a valid placement (standard or custom identifier).

    Raises
    ------
    ValidationError
        If the name is not a lowercase identifier of at most 32 characters.
    """
    if not isinstance(name, str) or not _PLACEMENT_RE.match(name):
        raise ValidationError(
            f"sensor placement must be a lowercase identifier such as 'lumbar', 'sacrum', "
            f"'thigh_left', 'thigh_right', 'shank_left', 'shank_right' or a custom name like 'arm_left'; got {name!r}"
        )
    return name


class SampleFlag(IntFlag):
    """Per-sample flags (stored as ``uint8``).

    GAP_BEFORE
        One or more samples are missing immediately before this one (lost packets, reconnect).
    INTERPOLATED
        The sample was not measured at this time but interpolated onto a common grid.
    ACC_SATURATED / GYRO_SATURATED
        At least one axis reached the configured full-scale range: the true value may be larger.
    HOST_TIME_ONLY
        The sensor has no clock of its own; the time is the host's arrival time (regularised later).
    CORRUPT
        The payload carrying this sample failed a plausibility check; values are kept but not trusted.
    """

    NONE = 0
    GAP_BEFORE = 1
    INTERPOLATED = 2
    ACC_SATURATED = 4
    GYRO_SATURATED = 8
    HOST_TIME_ONLY = 16
    CORRUPT = 32


def _as_array(name: str, value: Any, dtype: Any, shape_tail: tuple[int, ...]) -> np.ndarray:
    arr = np.ascontiguousarray(value, dtype=dtype)
    if arr.ndim != 1 + len(shape_tail) or arr.shape[1:] != shape_tail:
        want = "(N" + "".join(f", {d}" for d in shape_tail) + ")"
        raise ValidationError(f"{name} must have shape {want}; got {arr.shape}")
    return arr


@dataclass(frozen=True, eq=False)
class ImuBatch:
    """A run of consecutive samples of one sensor.

    Parameters
    ----------
    sensor_id : str
        Key of the sensor in the session (its placement name, e.g. ``"lumbar"``).
    time_s : ndarray, shape (N,), float64
        Host time of each sample, seconds since session start (after sync where available).
    device_time_s : ndarray, shape (N,), float64
        Raw device clock converted to seconds in the device's own time base; NaN where the
        sensor has no clock.
    acc : ndarray, shape (N, 3), float64
        Specific force in the sensor frame, m/s² (includes gravity: +9.81 on the up axis at rest).
    gyro : ndarray, shape (N, 3), float64
        Angular rate in the sensor frame, rad/s.
    seq : ndarray, shape (N,), int64
        Sample sequence number from the device (or packet number × samples per packet);
        -1 where unknown.
    flags : ndarray, shape (N,), uint8
        Bitwise OR of :class:`SampleFlag`.
    """

    sensor_id: str
    time_s: np.ndarray
    device_time_s: np.ndarray
    acc: np.ndarray
    gyro: np.ndarray
    seq: np.ndarray
    flags: np.ndarray

    def __post_init__(self) -> None:
        check_placement(self.sensor_id)
        t = _as_array("time_s", self.time_s, np.float64, ())
        n = t.shape[0]
        cols = {
            "time_s": t,
            "device_time_s": _as_array("device_time_s", self.device_time_s, np.float64, ()),
            "acc": _as_array("acc", self.acc, np.float64, (3,)),
            "gyro": _as_array("gyro", self.gyro, np.float64, (3,)),
            "seq": _as_array("seq", self.seq, np.int64, ()),
            "flags": _as_array("flags", self.flags, np.uint8, ()),
        }
        for name, arr in cols.items():
            if arr.shape[0] != n:
                raise ValidationError(
                    f"sensor {self.sensor_id!r}: {name} has {arr.shape[0]} samples but time_s has {n}"
                )
            object.__setattr__(self, name, arr)

    @classmethod
    def create(
        cls,
        sensor_id: str,
        time_s: Any,
        acc: Any,
        gyro: Any,
        *,
        device_time_s: Any | None = None,
        seq: Any | None = None,
        flags: Any | None = None,
    ) -> "ImuBatch":
        """Build a batch, filling absent columns (device time NaN, seq -1, flags 0)."""
        t = np.asarray(time_s, dtype=np.float64)
        n = t.shape[0] if t.ndim == 1 else -1
        return cls(
            sensor_id=sensor_id,
            time_s=t,
            device_time_s=np.full(n, np.nan) if device_time_s is None else device_time_s,
            acc=acc,
            gyro=gyro,
            seq=np.full(n, -1, np.int64) if seq is None else seq,
            flags=np.zeros(n, np.uint8) if flags is None else flags,
        )

    @classmethod
    def empty(cls, sensor_id: str) -> "ImuBatch":
        return cls.create(sensor_id, np.empty(0), np.empty((0, 3)), np.empty((0, 3)))

    def __len__(self) -> int:
        return int(self.time_s.shape[0])

    def __getitem__(self, index: slice | np.ndarray) -> "ImuBatch":
        """Samples selected by a slice or a boolean/integer index array."""
        if isinstance(index, (int, np.integer)):
            index = slice(int(index), int(index) + 1 if int(index) != -1 else None)
        return replace(
            self,
            time_s=self.time_s[index],
            device_time_s=self.device_time_s[index],
            acc=self.acc[index],
            gyro=self.gyro[index],
            seq=self.seq[index],
            flags=self.flags[index],
        )

    def has_flag(self, flag: SampleFlag) -> np.ndarray:
        """Boolean mask (N,) of samples carrying ``flag``."""
        return (self.flags & np.uint8(flag)) != 0

    @property
    def duration_s(self) -> float:
        return float(self.time_s[-1] - self.time_s[0]) if len(self) > 1 else 0.0

    @staticmethod
    def concat(batches: Sequence["ImuBatch"]) -> "ImuBatch":
        """Join batches of one sensor in the given order."""
        if not batches:
            raise ValidationError("cannot concatenate an empty list of batches")
        ids = {b.sensor_id for b in batches}
        if len(ids) != 1:
            raise ValidationError(f"cannot concatenate batches of different sensors: {sorted(ids)}")
        return ImuBatch(
            sensor_id=batches[0].sensor_id,
            time_s=np.concatenate([b.time_s for b in batches]),
            device_time_s=np.concatenate([b.device_time_s for b in batches]),
            acc=np.concatenate([b.acc for b in batches]),
            gyro=np.concatenate([b.gyro for b in batches]),
            seq=np.concatenate([b.seq for b in batches]),
            flags=np.concatenate([b.flags for b in batches]),
        )


@dataclass(frozen=True)
class SensorInfo:
    """What is known about one sensor and where it is worn.

    Parameters
    ----------
    sensor_id : str
        Key of the sensor in the session; by default its placement.
    placement : str
        A :class:`Placement` value or a custom lowercase identifier.
    family : str
        Protocol family (``"lumbar_ref"``, ``"polar_pmd"``, … or ``"emulated"``).
    model, address, firmware : str
        As reported by the device ("" where unknown). The address is a BLE address or
        a platform UUID, never a person's name.
    nominal_rate_hz : float
        Configured output data rate, Hz.
    acc_range_mps2, gyro_range_rads : float
        Configured full-scale range (±), m/s² and rad/s.
    """

    sensor_id: str
    placement: str
    family: str = ""
    model: str = ""
    address: str = ""
    firmware: str = ""
    nominal_rate_hz: float = 0.0
    acc_range_mps2: float = 0.0
    gyro_range_rads: float = 0.0

    def __post_init__(self) -> None:
        check_placement(self.sensor_id)
        check_placement(self.placement)
        if not np.isfinite(self.nominal_rate_hz) or self.nominal_rate_hz < 0:
            raise ValidationError(f"sensor {self.sensor_id!r}: nominal_rate_hz must be ≥ 0, got {self.nominal_rate_hz}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SensorInfo":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


_SUBJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


def check_subject_code(code: str) -> str:
    """Return ``code`` if it looks like a pseudonymous subject code (e.g. ``"S017"``).

    Spaces are refused because a space is how a person's name usually slips in; use a
    code from the study's key file instead.
    """
    if not isinstance(code, str) or not _SUBJECT_RE.match(code):
        raise ValidationError(
            "subject code must be a pseudonymous code of 1–32 letters, digits, '_', '-' or '.', "
            f"without spaces (e.g. 'S017'); got {code!r}"
        )
    return code


def _utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class SessionInfo:
    """Who, what and when of one session. No personal names: the subject is a code.

    Parameters
    ----------
    subject_code : str
        Pseudonymous subject code (see :func:`check_subject_code`).
    operator : str
        Operator code or initials (free text, may be empty).
    protocol : str
        Name of the assessment protocol or movement (e.g. ``"flexion"``).
    notes : str
        Free notes.
    start_time_utc : str
        ISO 8601 UTC time of session start (time zero of ``time_s``).
    session_id : str
        Random UUID, unique per session.
    software_version : str
        Version of this software that wrote the session.
    """

    subject_code: str
    operator: str = ""
    protocol: str = ""
    notes: str = ""
    start_time_utc: str = field(default_factory=_utc_now_iso)
    session_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    software_version: str = field(default_factory=software_version)

    def __post_init__(self) -> None:
        check_subject_code(self.subject_code)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SessionInfo":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class Event:
    """A marker on the session time line.

    Parameters
    ----------
    time_s : float
        Seconds since session start.
    label : str
        Short machine-friendly label (``"rep_start"``, ``"trial_start"``, ``"reconnect"``…).
    note : str
        Free text.
    """

    time_s: float
    label: str
    note: str = ""


def events_sorted(events: Iterable[Event]) -> list[Event]:
    return sorted(events, key=lambda e: e.time_s)
