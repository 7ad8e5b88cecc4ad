"""Write files in APDM's documented HDF5 layouts (format 5 and the older 3/4), for import tests.

Built from the layout described in docs/interop.md (sources cited there), not from an APDM file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import h5py
import numpy as np

from lumbar.storage.reader import Session

EPOCH_US = 1_700_000_000_000_000  # an arbitrary recording start, µs since 1970 UTC


def write_apdm_v5(path: Path, session: Session, labels: Mapping[str, str], *, rate_hz: float = 100.0,
                  annotate: bool = True) -> Path:
    """``/Sensors/<case>/{Accelerometer,Gyroscope,Magnetometer,Time,Configuration}``, ``/Processed``, ``/Annotations``."""
    with h5py.File(path, "w") as f:
        f.attrs["FileFormatVersion"] = np.int32(5)
        sensors, processed = f.create_group("Sensors"), f.create_group("Processed")
        for i, (sid, label) in enumerate(labels.items()):
            b = session.data[sid]
            case = str(1500 + i)
            g = sensors.create_group(case)
            g["Accelerometer"] = b.acc.astype(np.float32)
            g["Gyroscope"] = b.gyro.astype(np.float32)
            g["Magnetometer"] = np.tile(np.float32([20.0, 0.0, -40.0]), (len(b), 1))
            g["Time"] = (EPOCH_US + np.round(b.time_s * 1e6)).astype(np.uint64)
            conf = g.create_group("Configuration")
            conf.attrs["Label 0"] = np.bytes_(label + "\x00")  # APDM pads with NUL
            conf.attrs["Sample Rate"] = np.uint16(rate_hz)
            processed.create_group(case)["Orientation"] = np.tile([1.0, 0.0, 0.0, 0.0], (len(b), 1))
        if annotate:
            dt = np.dtype([("Time", "<u8"), ("Case ID", "S16"), ("Annotation", "S128")])
            rows = [(EPOCH_US + int(round(e.time_s * 1e6)), b"", e.label.encode()) for e in session.events]
            f.create_dataset("Annotations", data=np.array(rows, dtype=dt))
    return path


def write_apdm_v3(path: Path, session: Session, labels: Mapping[str, str], *, rate_hz: float = 100.0) -> Path:
    """Root ``CaseIdList``/``MonitorLabelList``; ``/<case>/Calibrated/{Accelerometers,Gyroscopes}``, ``/<case>/Time``."""
    with h5py.File(path, "w") as f:
        f.attrs["FileFormatVersion"] = np.int32(3)
        cases = [f"SI-{1500 + i:06d}" for i in range(len(labels))]
        f.attrs["CaseIdList"] = np.array([c.encode() for c in cases])
        f.attrs["MonitorLabelList"] = np.array([lab.encode() for lab in labels.values()])
        for case, sid in zip(cases, labels):
            b = session.data[sid]
            g = f.create_group(case)
            g.attrs["SampleRate"] = np.uint16(rate_hz)
            g["Time"] = (EPOCH_US + np.round(b.time_s * 1e6)).astype(np.uint64)
            cal = g.create_group("Calibrated")
            cal["Accelerometers"] = b.acc.astype(np.float32)
            cal["Gyroscopes"] = b.gyro.astype(np.float32)
    return path
