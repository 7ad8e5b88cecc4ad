"""Plain CSV export: one file per sensor, a header that carries the units, events and metadata beside.

``lumbar export FILE --format csv -o DIR`` writes::

    DIR/<stem>_<sensor>.csv     time_s [s],device_time_s [s],acc_x [m/s^2],…,gyro_z [rad/s],seq [1],flags [1]
    DIR/<stem>_events.csv       time_s [s],label,note
    DIR/<stem>_angles.csv       time_s [s],lumbar_flexion [rad],… (analysed files: the ``derived`` group)
    DIR/<stem>_session.json     session and sensor information (what the HDF5 attributes hold)

Numbers are written so that they read back equal: accelerometer and gyroscope values with 9
significant digits (exact for the file's float32), times with 9 decimals (1 ns), counters as
integers; a missing device time is ``nan``. :mod:`lumbar.interop.import_csv` reads these files back.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from lumbar.storage.reader import Session, read_session

__all__ = ["SENSOR_COLUMNS", "ANGLE_COLUMNS", "header_name", "export_csv", "write_sensor_csv", "write_angles_csv"]

#: (column, unit) of every sensor CSV, in order. Units as in docs/conventions.md.
SENSOR_COLUMNS: tuple[tuple[str, str], ...] = (
    ("time_s", "s"),
    ("device_time_s", "s"),
    ("acc_x", "m/s^2"),
    ("acc_y", "m/s^2"),
    ("acc_z", "m/s^2"),
    ("gyro_x", "rad/s"),
    ("gyro_y", "rad/s"),
    ("gyro_z", "rad/s"),
    ("seq", "1"),
    ("flags", "1"),
)
_FMT = ["%.9f", "%.9f"] + ["%.9g"] * 6 + ["%d", "%d"]
#: (column, where it is in the ``derived`` group: dataset and column, or None for a 1-D one) of the angles CSV,
#: all rad, relative to the calibration posture (docs/conventions.md); a column whose sensors were not worn
#: is left out.
ANGLE_COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("lumbar_flexion", "lumbar_angles_rad", 0),
    ("lumbar_lateral_bending_right", "lumbar_angles_rad", 1),
    ("lumbar_axial_rotation_left", "lumbar_angles_rad", 2),
    ("pelvic_tilt_anterior", "sacrum/sagittal_tilt_rad", None),
    ("trunk_inclination_forward", "lumbar/sagittal_tilt_rad", None),
    ("hip_flexion", "hip_flexion_rad", None),
    ("hip_flexion_left", "thigh_left/hip_flexion_rad", None),
    ("hip_flexion_right", "thigh_right/hip_flexion_rad", None),
    ("knee_flexion", "knee_flexion_rad", None),
    ("knee_flexion_left", "shank_left/knee_flexion_rad", None),
    ("knee_flexion_right", "shank_right/knee_flexion_rad", None),
)


def header_name(column: str, unit: str) -> str:
    """``"acc_x [m/s^2]"``: the name and unit of a column as written in the header."""
    return f"{column} [{unit}]"


def write_sensor_csv(path: Path, session: Session, sensor_id: str) -> Path:
    b = session.data[sensor_id]
    table = np.column_stack([
        b.time_s, b.device_time_s,
        b.acc.astype(np.float32).astype(np.float64), b.gyro.astype(np.float32).astype(np.float64),
        b.seq, b.flags,
    ]) if len(b) else np.zeros((0, len(SENSOR_COLUMNS)))
    header = ",".join(header_name(c, u) for c, u in SENSOR_COLUMNS)
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write(header + "\n")
        if len(table):
            # one format per column; seq and flags are exact integers in float64 (|seq| < 2**53)
            np.savetxt(f, table, fmt=_FMT, delimiter=",")
    return path


def write_angles_csv(path: Path, session_file: str | Path) -> Path | None:
    """The angles ``lumbar analyze`` stored in the file (``derived``), one column each (:data:`ANGLE_COLUMNS`),
    on the analysis grid; None (nothing written) when the file has not been analysed."""
    from lumbar.storage.reader import open_h5, read_group

    with open_h5(session_file) as (f, _):
        arr = read_group(f, "derived")[0] if "derived" in f else {}
    if "time_s" not in arr:  # the group is created empty with the file
        return None
    cols = [(header_name("time_s", "s"), arr["time_s"])]
    for name, key, i in ANGLE_COLUMNS:
        if key in arr:
            x = arr[key].astype(np.float64)
            cols.append((header_name(name, "rad"), x if i is None else x[:, i]))
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write(",".join(h for h, _ in cols) + "\n")
        np.savetxt(f, np.column_stack([x for _, x in cols]), fmt=["%.9f"] + ["%.9g"] * (len(cols) - 1),
                   delimiter=",")
    return path


def export_csv(session_file: str | Path, out_dir: str | Path) -> list[Path]:
    """Write the session's samples, events and metadata as CSV and JSON files into ``out_dir``.

    Returns the written paths.
    """
    session = read_session(session_file, load_truth=False)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(session_file).stem
    written = [write_sensor_csv(out / f"{stem}_{sid}.csv", session, sid) for sid in session.data]
    ev_path = out / f"{stem}_events.csv"
    with open(ev_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([header_name("time_s", "s"), "label", "note"])
        for e in session.events:
            w.writerow([f"{e.time_s:.9f}", e.label, e.note])
    written.append(ev_path)
    angles = write_angles_csv(out / f"{stem}_angles.csv", session_file)
    if angles is not None:
        written.append(angles)
    meta_path = out / f"{stem}_session.json"
    meta = {
        "session": session.info.to_dict(),
        "sensors": {sid: s.to_dict() for sid, s in session.sensors.items()},
        "files": {sid: f"{stem}_{sid}.csv" for sid in session.data},
        "events": ev_path.name,
        "angles": angles.name if angles is not None else "not analysed: run `lumbar analyze` on the file first",
        "complete": session.complete,
        "units": {c: u for c, u in SENSOR_COLUMNS},
        "conventions": "SI units; sensor frame right-handed; acc is specific force (rest reads +9.81 m/s^2 up); "
                       "time_s is host time since session start (session.start_time_utc)",
    }
    meta_path.write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    written.append(meta_path)
    return written
