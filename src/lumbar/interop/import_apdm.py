"""Import APDM Opal / Mobility Lab HDF5 recordings into a session file.

Layouts read (see ``docs/interop.md`` for the sources):

* **Format version 5** (Mobility Lab 2, Motion Studio; root attribute ``FileFormatVersion`` = 5, or
  absent with a ``Sensors`` group)::

      /Sensors/<case id>/Accelerometer   (N, 3)  m/s^2
      /Sensors/<case id>/Gyroscope       (N, 3)  rad/s
      /Sensors/<case id>/Magnetometer    (N, 3)  µT        (not imported)
      /Sensors/<case id>/Time            (N,)    uint64, µs since 1970-01-01 UTC
      /Sensors/<case id>/Configuration   attributes "Label 0" (placement text), "Sample Rate" (Hz)
      /Processed/<case id>/Orientation   (N, 4)            (not imported: we estimate our own)
      /Annotations                       compound (Time µs, Case ID, Annotation text)

* **Format versions 3 and 4** (Mobility Lab 1): root attributes ``CaseIdList`` and
  ``MonitorLabelList``; ``/<case id>/Calibrated/Accelerometers`` and ``Gyroscopes``, ``/<case id>/Time``
  (µs), sample rate in the attribute ``SampleRate`` of ``/<case id>``.

Each monitor's label becomes a placement through ``placement_map`` (normalised: lower case, spaces and
hyphens as ``_``). APDM's "Lumbar" monitor is worn on a belt at L5, over the sacrum: it plays the
role of our pelvis (``sacrum``) sensor, so the default map sends it there; a monitor on the upper
lumbar spine (T12/L1) must be mapped to ``lumbar`` by the user (``--map "Upper Lumbar=lumbar"``).
Unmapped labels keep their normalised name. Session time zero is the earliest sample of any monitor;
``device_time_s`` keeps APDM's clock in Unix seconds; samples after a gap longer than 1.5 sample
intervals are flagged ``GAP_BEFORE``.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from lumbar.errors import SessionFileError, ValidationError
from lumbar.storage.writer import write_session
from lumbar.types import Event, ImuBatch, SampleFlag, SensorInfo, SessionInfo, check_placement

__all__ = ["DEFAULT_PLACEMENTS", "read_apdm", "import_apdm", "normalise_label"]

#: APDM monitor label (normalised) → our placement.
DEFAULT_PLACEMENTS: dict[str, str] = {"lumbar": "sacrum"}


def normalise_label(label: str) -> str:
    s = re.sub(r"[\s\-]+", "_", label.strip().strip("\x00").lower())
    s = re.sub(r"[^a-z0-9_]", "", s)
    return s if s and s[0].isalpha() else f"s_{s}"


def _text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace").rstrip("\x00")
    if isinstance(v, np.ndarray):
        return _text(v.flat[0]) if v.size else ""
    return str(v).rstrip("\x00")


def _monitors_v5(f: h5py.File) -> list[dict[str, Any]]:
    out = []
    for case_id, g in f["Sensors"].items():
        conf = g["Configuration"].attrs if "Configuration" in g else {}
        out.append({
            "case_id": case_id,
            "label": _text(conf.get("Label 0", case_id)),
            "rate_hz": float(np.asarray(conf.get("Sample Rate", 0.0)).ravel()[0]),
            "time_us": g["Time"][()],
            "acc": g["Accelerometer"][()],
            "gyro": g["Gyroscope"][()],
            "model": "Opal",
        })
    return out


def _monitors_v3(f: h5py.File) -> list[dict[str, Any]]:
    cases = [_text(c) for c in np.atleast_1d(f.attrs["CaseIdList"])]
    labels = [_text(c) for c in np.atleast_1d(f.attrs.get("MonitorLabelList", cases))]
    out = []
    for case_id, label in zip(cases, labels):
        g = f[case_id]
        out.append({
            "case_id": case_id,
            "label": label,
            "rate_hz": float(np.asarray(g.attrs.get("SampleRate", 0.0)).ravel()[0]),
            "time_us": g["Time"][()],
            "acc": g["Calibrated"]["Accelerometers"][()],
            "gyro": g["Calibrated"]["Gyroscopes"][()],
            "model": "Opal",
        })
    return out


def _annotations(f: h5py.File) -> list[tuple[int, str]]:
    if "Annotations" not in f or not isinstance(f["Annotations"], h5py.Dataset):
        return []
    ds = f["Annotations"]
    names = ds.dtype.names or ()
    tkey = next((n for n in names if n.lower() == "time"), None)
    akey = next((n for n in names if n.lower() == "annotation"), None)
    if tkey is None or akey is None:
        return []
    return [(int(row[tkey]), _text(row[akey])) for row in ds[()]]


def read_apdm(path: str | Path) -> tuple[list[dict[str, Any]], list[tuple[int, str]], int]:
    """Monitors (case id, label, rate, time µs, acc, gyro), annotations (µs, text) and the format version."""
    p = Path(path)
    try:
        f = h5py.File(p, "r")
    except OSError as e:
        raise SessionFileError(str(p), f"is not a readable HDF5 file ({e})") from e
    with f:
        version = int(np.asarray(f.attrs.get("FileFormatVersion", 5)).ravel()[0])
        try:
            if "Sensors" in f:
                monitors = _monitors_v5(f)
            elif "CaseIdList" in f.attrs:
                monitors = _monitors_v3(f)
            else:
                raise SessionFileError(str(p), "is not an APDM file: no /Sensors group and no CaseIdList attribute")
        except KeyError as e:
            raise SessionFileError(str(p), f"APDM layout incomplete: {e}") from e
        return monitors, _annotations(f), version


def import_apdm(
    path: str | Path,
    out: str | Path,
    *,
    subject_code: str,
    protocol: str = "",
    placement_map: Mapping[str, str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert an APDM HDF5 file into a session file; returns ``out``.

    Parameters
    ----------
    path : path
        The APDM ``.h5`` file.
    out : path
        Session file to write.
    subject_code : str
        Pseudonymous code (APDM files may carry names elsewhere; nothing else is copied).
    protocol : str
        The movement, as the protocol definitions name it (``movement``).
    placement_map : mapping, optional
        Monitor label → placement, added to (and overriding) :data:`DEFAULT_PLACEMENTS`.
    """
    monitors, annotations, version = read_apdm(path)
    if not monitors:
        raise SessionFileError(str(path), "has no sensor data")
    mapping = dict(DEFAULT_PLACEMENTS)
    mapping.update({normalise_label(k): v for k, v in (placement_map or {}).items()})
    t0_us = min(int(m["time_us"][0]) for m in monitors if len(m["time_us"]))
    batches: dict[str, ImuBatch] = {}
    sensors: list[SensorInfo] = []
    for m in monitors:
        placement = check_placement(mapping.get(normalise_label(m["label"]), normalise_label(m["label"])))
        if placement in batches:
            raise ValidationError(f"two monitors map to the placement {placement!r}: give --map for one of them")
        t_us = np.asarray(m["time_us"], dtype=np.int64)
        time_s = (t_us - t0_us) / 1e6  # exact µs differences first, then to seconds
        rate = m["rate_hz"] if m["rate_hz"] > 0 else (1.0 / float(np.median(np.diff(time_s))) if len(t_us) > 1 else 0.0)
        flags = np.zeros(len(t_us), np.uint8)
        if len(t_us) > 1 and rate > 0:
            flags[np.flatnonzero(np.diff(time_s) > 1.5 / rate) + 1] |= np.uint8(SampleFlag.GAP_BEFORE)
        batches[placement] = ImuBatch(placement, time_s, t_us / 1e6, np.asarray(m["acc"], np.float64),
                                      np.asarray(m["gyro"], np.float64), np.full(len(t_us), -1, np.int64), flags)
        sensors.append(SensorInfo(sensor_id=placement, placement=placement, family="apdm", model=m["model"],
                                  address=str(m["case_id"]), nominal_rate_hz=float(rate)))
    events = [Event((t - t0_us) / 1e6, text, text) for t, text in annotations]
    start = datetime.fromtimestamp(t0_us / 1e6, tz=timezone.utc).isoformat(timespec="milliseconds")
    info = SessionInfo(subject_code=subject_code, protocol=protocol, start_time_utc=start,
                       notes=f"imported from APDM HDF5 (format version {version}): {Path(path).name}; "
                             f"monitors {', '.join(repr(m['label']) for m in monitors)}")
    return write_session(out, info, sensors, batches, events, overwrite=overwrite)
