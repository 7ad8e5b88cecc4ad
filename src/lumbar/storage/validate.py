"""Validation of session files: the rules behind ``lumbar validate`` and the reader.

Problems make a file invalid; warnings are worth a look but the data are usable.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from lumbar.errors import SessionFileError
from lumbar.storage import schema
from lumbar.types import STANDARD_G, SampleFlag

__all__ = ["ValidationReport", "check_structure", "time_problem", "validate_file"]

_KNOWN_FLAG_BITS = int(sum(int(f) for f in SampleFlag))


@dataclass
class ValidationReport:
    """Outcome of validating one file."""

    path: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _dtype_matches(ds: h5py.Dataset, spec: schema.DatasetSpec) -> bool:
    want = np.dtype(spec.dtype)
    got = ds.dtype
    if want.kind == "S":
        return got.kind == "S"
    return got.kind == want.kind and got.itemsize >= min(want.itemsize, 4)


def check_structure(
    f: h5py.File, path: str | Path, *, interrupted: bool = False, read_values: bool = True
) -> ValidationReport:
    """Check format name, version, required groups/attributes, dtypes and shapes.

    With ``read_values`` every dataset is read in full, which finds damaged data blocks,
    non-monotonic time, unknown flag bits and implausible units.
    """
    rep = ValidationReport(str(path))
    name = f.attrs.get(schema.ATTR_FORMAT_NAME)
    if isinstance(name, bytes):
        name = name.decode()
    if name != schema.FORMAT_NAME:
        rep.problems.append(
            f"is not a lumbar session file (format name is {name!r}, expected {schema.FORMAT_NAME!r})"
        )
        return rep
    version = f.attrs.get(schema.ATTR_FORMAT_VERSION)
    try:
        version = int(version)
    except (TypeError, ValueError):
        rep.problems.append(f"has no readable format version (found {version!r})")
        return rep
    if version > schema.FORMAT_VERSION:
        rep.problems.append(
            f"was written in format version {version}, newer than this software reads "
            f"(up to {schema.FORMAT_VERSION}); please update the software"
        )
        return rep
    if version < schema.MIN_READ_VERSION:
        rep.problems.append(
            f"uses format version {version}, which is no longer supported (oldest readable: {schema.MIN_READ_VERSION})"
        )
        return rep
    for grp in (schema.SESSION, schema.SENSORS, schema.EVENTS):
        if grp not in f or not isinstance(f[grp], h5py.Group):
            rep.problems.append(f"the required group '{grp}' is missing")
    if rep.problems:
        return rep
    missing = [a for a in schema.REQUIRED_SESSION_ATTRS if a not in f[schema.SESSION].attrs]
    if missing:
        rep.problems.append(f"session information lacks {', '.join(missing)}")
    if interrupted or not bool(f.attrs.get(schema.ATTR_COMPLETE, False)):
        rep.warnings.append(
            "the recording was interrupted (file not closed cleanly); data up to the last save are readable"
        )
    if len(f[schema.SENSORS]) == 0:
        rep.warnings.append("the session has no sensors")
    for sid, g in f[schema.SENSORS].items():
        _check_sensor(rep, sid, g, read_values)
    _check_events(rep, f[schema.EVENTS], read_values)
    return rep


def _check_sensor(rep: ValidationReport, sid: str, g: h5py.Group, read_values: bool) -> None:
    if not isinstance(g, h5py.Group):
        rep.problems.append(f"sensor entry {sid!r} is not a group")
        return
    n = None
    for spec in schema.SENSOR_DATASETS:
        if spec.name not in g:
            rep.problems.append(f"sensor {sid!r} has no '{spec.name}' data ({spec.doc})")
            continue
        ds = g[spec.name]
        want_shape = "(N" + "".join(f", {d}" for d in spec.tail) + ")"
        if ds.ndim != 1 + len(spec.tail) or tuple(ds.shape[1:]) != spec.tail:
            rep.problems.append(f"sensor {sid!r}: '{spec.name}' has shape {ds.shape}, expected {want_shape}")
            continue
        if not _dtype_matches(ds, spec):
            rep.problems.append(f"sensor {sid!r}: '{spec.name}' has type {ds.dtype}, expected {np.dtype(spec.dtype)}")
            continue
        if n is None:
            n = ds.shape[0]
        elif ds.shape[0] != n:
            rep.problems.append(
                f"sensor {sid!r}: '{spec.name}' has {ds.shape[0]} samples but 'time_s' has {n}"
            )
    if rep.problems or not read_values:
        return
    values = {}
    for spec in schema.SENSOR_DATASETS:
        try:
            values[spec.name] = g[spec.name][()]
        except OSError as e:
            rep.problems.append(f"data of sensor {sid!r} ('{spec.name}') are damaged and cannot be read ({e})")
            return
    problem = time_problem(sid, values["time_s"])
    if problem:
        rep.problems.append(problem)
    if np.any(values["flags"] & ~np.uint8(_KNOWN_FLAG_BITS)):
        rep.problems.append(f"sensor {sid!r}: sample flags contain unknown bits")
    acc = values["acc"].astype(np.float64)
    finite = np.all(np.isfinite(acc), axis=1)
    if acc.size and finite.any():
        norm = float(np.median(np.linalg.norm(acc[finite], axis=1)))
        if 0.5 < norm < 2.0:
            rep.warnings.append(
                f"sensor {sid!r}: accelerometer magnitude is about {norm:.2f}: it looks like units of g, not m/s²"
            )
        elif not 0.3 * STANDARD_G < norm < 3.0 * STANDARD_G:
            rep.warnings.append(
                f"sensor {sid!r}: median accelerometer magnitude {norm:.2f} m/s² is far from gravity (9.81 m/s²)"
            )
    gyro = values["gyro"].astype(np.float64)
    if gyro.size and np.nanmax(np.abs(gyro)) > 70.0:  # > 4000 deg/s: beyond any MEMS range, so deg/s
        rep.warnings.append(f"sensor {sid!r}: gyroscope values exceed 70 rad/s: they look like degrees per second")
    gaps = int(np.count_nonzero(values["flags"] & np.uint8(SampleFlag.GAP_BEFORE)))
    if gaps:
        rep.warnings.append(f"sensor {sid!r}: {gaps} gap(s) in the data (lost samples), flagged")


def time_problem(sid: str, t: np.ndarray) -> str | None:
    """Describe what is wrong with a sensor's time axis, or None if it is finite and non-decreasing."""
    if not t.size:
        return None
    if not np.all(np.isfinite(t)):
        return f"sensor {sid!r}: some sample times are not numbers"
    back = np.diff(t) < 0
    if np.any(back):
        k = int(np.argmax(back))
        return f"sensor {sid!r}: time runs backwards after sample {k} ({t[k]:.3f} s → {t[k + 1]:.3f} s)"
    return None


def _check_events(rep: ValidationReport, g: h5py.Group, read_values: bool) -> None:
    lengths = {}
    for spec in schema.EVENT_DATASETS:
        if spec.name not in g:
            rep.problems.append(f"events lack their '{spec.name}' column")
            return
        if g[spec.name].ndim != 1:
            rep.problems.append(f"events: '{spec.name}' must be one-dimensional, has shape {g[spec.name].shape}")
            return
        lengths[spec.name] = g[spec.name].shape[0]
    if len(set(lengths.values())) > 1:
        rep.problems.append(f"events columns have different lengths {lengths}")
    if read_values and not rep.problems:
        try:
            for spec in schema.EVENT_DATASETS:
                g[spec.name][()]
        except OSError as e:
            rep.problems.append(f"events are damaged and cannot be read ({e})")


def validate_file(path: str | Path) -> ValidationReport:
    """Validate a file fully; never raises for a bad file, reports instead."""
    from lumbar.storage.reader import open_h5

    try:
        with open_h5(path) as (f, interrupted):
            try:
                return check_structure(f, path, interrupted=interrupted, read_values=True)
            except (OSError, KeyError, RuntimeError, ValueError) as e:
                return ValidationReport(str(path), problems=[f"file is damaged and cannot be read ({e})"])
    except SessionFileError as e:
        return ValidationReport(str(path), problems=[e.problem])
