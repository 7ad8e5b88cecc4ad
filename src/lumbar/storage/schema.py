"""The session file format, defined once as data.

Writer, reader, validator and ``docs/file-format.md`` all follow this module.
Changing the layout means changing it here and bumping :data:`FORMAT_VERSION`
(see the version policy in ``docs/file-format.md``).
"""
from __future__ import annotations

from dataclasses import dataclass

FORMAT_NAME = "lumbar-session"
FORMAT_VERSION = 1
#: Oldest format version this software still reads.
MIN_READ_VERSION = 1

# Group names at the root.
SESSION = "session"
SENSORS = "sensors"
EVENTS = "events"
DERIVED = "derived"
METRICS = "metrics"
TRUTH = "truth"
CALIBRATION = "calibration"  # sub-group of each sensor

# Root attributes.
ATTR_FORMAT_NAME = "format_name"
ATTR_FORMAT_VERSION = "format_version"
ATTR_CREATED_UTC = "created_utc"
ATTR_SOFTWARE_VERSION = "software_version"
#: False while recording; True once the writer closed the file cleanly.
ATTR_COMPLETE = "complete"

# Fixed-length UTF-8 byte strings for appended text: variable-length strings are not
# safe to append under HDF5 single-writer/multiple-reader mode (their heap is not
# flushed in step with the dataset), so a killed recorder would leave them unreadable.
EVENT_LABEL_BYTES = 64
EVENT_NOTE_BYTES = 256

#: Rows per chunk of every sensor dataset in a finished file (see benchmarks in docs/file-format.md).
CHUNK_ROWS = 4096
#: Rows per chunk while recording live. Each flush rewrites the last, partial chunk to a new place in
#: the file and SWMR cannot reuse the old space, so live chunks are small (≈ 2.5 s at 200 Hz); the
#: writer rewrites the file with CHUNK_ROWS chunks when it closes cleanly.
LIVE_CHUNK_ROWS = 512
#: Rows per chunk of the event columns: sessions have tens to hundreds of markers, not thousands.
EVENT_CHUNK_ROWS = 64
COMPRESSION = "gzip"
COMPRESSION_LEVEL = 4
#: File-space management of new session files: the free-space manager is kept in the file
#: (``fs_persist``), so the space of a group that ``lumbar analyze`` replaces is reused by the next
#: analysis instead of growing the file each time. Readable by HDF5 ≥ 1.10.
FILE_SPACE: dict = {"fs_strategy": "fsm", "fs_persist": True, "fs_threshold": 1}


@dataclass(frozen=True)
class DatasetSpec:
    """One appendable dataset: name, numpy dtype string, shape after the sample axis, unit, meaning."""

    name: str
    dtype: str
    tail: tuple[int, ...]
    unit: str
    doc: str


SENSOR_DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec("time_s", "<f8", (), "s", "host time of each sample, seconds since session start"),
    DatasetSpec(
        "device_time_s", "<f8", (), "s", "the sensor's own clock in seconds (its own epoch); NaN if it has none"
    ),
    DatasetSpec("acc", "<f4", (3,), "m/s^2", "specific force in the sensor frame (includes gravity)"),
    DatasetSpec("gyro", "<f4", (3,), "rad/s", "angular rate in the sensor frame"),
    DatasetSpec("seq", "<i8", (), "1", "device sample sequence number; -1 where unknown"),
    DatasetSpec("flags", "|u1", (), "1", "bitwise OR of SampleFlag (see lumbar.types.SampleFlag)"),
)

EVENT_DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec("time_s", "<f8", (), "s", "event time, seconds since session start"),
    DatasetSpec("label", f"|S{EVENT_LABEL_BYTES}", (), "", "short label, UTF-8"),
    DatasetSpec("note", f"|S{EVENT_NOTE_BYTES}", (), "", "free text, UTF-8 (longer notes are cut at a character boundary)"),
)

#: Attributes every sensor group carries (from lumbar.types.SensorInfo).
SENSOR_ATTRS: tuple[str, ...] = (
    "sensor_id",
    "placement",
    "family",
    "model",
    "address",
    "firmware",
    "nominal_rate_hz",
    "acc_range_mps2",
    "gyro_range_rads",
)
#: Attributes the session group carries (from lumbar.types.SessionInfo).
SESSION_ATTRS: tuple[str, ...] = (
    "subject_code",
    "operator",
    "protocol",
    "notes",
    "start_time_utc",
    "session_id",
    "software_version",
)
REQUIRED_SESSION_ATTRS: tuple[str, ...] = ("subject_code", "start_time_utc", "session_id")
