"""APDM Opal / Mobility Lab HDF5 import: a file in the documented layout imports and analyses."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from lumbar.analysis import analyze_file
from lumbar.cli import main
from lumbar.errors import SessionFileError
from lumbar.interop.import_apdm import import_apdm
from lumbar.storage import read_session, validate_file

from .apdm_layout import EPOCH_US, write_apdm_v3, write_apdm_v5

LABELS = {"lumbar": "Upper Lumbar", "sacrum": "Lumbar"}  # APDM's "Lumbar" monitor sits at L5 → our sacrum


def test_v5_imports_and_analyses_like_the_original(session_file: Path, tmp_path: Path) -> None:
    s = read_session(session_file)
    apdm = write_apdm_v5(tmp_path / "apdm.h5", s, LABELS)
    out = import_apdm(apdm, tmp_path / "imported.h5", subject_code="APDM01", protocol="flexion",
                      placement_map={"Upper Lumbar": "lumbar"})
    assert validate_file(out).ok
    back = read_session(out)
    assert sorted(back.data) == ["lumbar", "sacrum"]
    assert back.sensors["sacrum"].family == "apdm" and back.sensors["sacrum"].nominal_rate_hz == 100.0
    assert back.info.start_time_utc.startswith("2023-11-14T22:13:20")
    t0 = min(float(b.time_s[0]) for b in s.data.values())
    for sid, b in s.data.items():
        np.testing.assert_allclose(back.data[sid].time_s, b.time_s - t0, atol=1e-6)  # µs clock
        assert np.array_equal(back.data[sid].acc.astype(np.float32), b.acc.astype(np.float32))
    assert [e.label for e in back.events] == [e.label for e in s.events]
    ref = analyze_file(session_file, store=False).to_dict()["results"]
    got = analyze_file(out, store=False).to_dict()["results"]
    np.testing.assert_allclose(got["lumbar_rom"]["rom"], ref["lumbar_rom"]["rom"], atol=np.radians(0.5))
    assert got["repetitions"]["count"] == ref["repetitions"]["count"] == 1


def test_v3_layout_and_the_cli(session_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = read_session(session_file)
    apdm = write_apdm_v3(tmp_path / "old.h5", s, LABELS)
    out = tmp_path / "old-imported.h5"
    rc = main(["import", str(apdm), "--format", "apdm", "--subject", "OLD01", "--protocol", "flexion",
               "--map", "Upper Lumbar=lumbar", "-o", str(out)])
    assert rc == 0 and "wrote" in capsys.readouterr().out
    back = read_session(out)
    assert sorted(back.data) == ["lumbar", "sacrum"] and back.sensors["lumbar"].address == "SI-001500"
    assert np.array_equal(back.data["lumbar"].device_time_s,
                          (EPOCH_US + np.round(s.data["lumbar"].time_s * 1e6)) / 1e6)
    assert analyze_file(out, store=False).results["lumbar_rom"].valid


def test_gaps_are_flagged_and_bad_files_refused(session_file: Path, tmp_path: Path) -> None:
    s = read_session(session_file)
    apdm = write_apdm_v5(tmp_path / "gap.h5", s, {"sacrum": "Lumbar"}, annotate=False)
    with h5py.File(apdm, "r+") as f:  # drop 10 samples: a radio gap
        g = f["Sensors/1500"]
        keep = np.r_[0:300, 310:len(g["Time"])]
        for name in ("Accelerometer", "Gyroscope", "Time"):
            data = g[name][()][keep]
            del g[name]
            g[name] = data
    back = read_session(import_apdm(apdm, tmp_path / "gap-imported.h5", subject_code="G1"))
    assert np.flatnonzero(back.data["sacrum"].flags & 1).tolist() == [300]
    not_apdm = tmp_path / "plain.h5"
    with h5py.File(not_apdm, "w") as f:
        f["x"] = [1]
    with pytest.raises(SessionFileError, match="not an APDM file"):
        import_apdm(not_apdm, tmp_path / "x.h5", subject_code="G1")
