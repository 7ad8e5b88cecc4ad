"""``lumbar scan --emulated``, ``lumbar record --emulated`` and :func:`record_emulated` end to end
(bleak → Bumble backend → virtual link → emulated sensors; virtual clock for speed)."""
from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

from lumbar.acquisition.recorder import record_emulated
from lumbar.cli import main
from lumbar.storage import read_session, validate_file
from lumbar.types import SampleFlag


def test_scan_emulated_lists_three_families(capsys):
    assert main(["scan", "--emulated", "--timeout", "1"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0].split() == ["name", "address", "family", "RSSI"]
    families = {line.split()[-3] for line in lines[2:]}
    assert families == {"lumbar_ref", "polar_pmd", "thingy52"}
    assert all(re.search(r"C0(:[0-9A-F]{2}){5}\s", line) for line in lines[2:])
    assert all(line.rstrip().endswith("dBm") for line in lines[2:])


@pytest.mark.slow
def test_record_emulated_progress_summary_and_valid_file(tmp_path, capsys):
    out = tmp_path / "rec.h5"
    code = main(["record", "--emulated", "--duration", "8", "--time-scale", "8", "-o", str(out),
                 "--subject", "T001", "--drop", "0.01"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert f"recording for 8 s → {out}" in text
    assert "emulated sensors:" in text and "lumbar_ref" in text and "polar_pmd" in text
    # progress lines (not a tty: one every 5 s of recording) name each sensor with its loss
    progress = [line for line in text.splitlines() if re.match(r"^\s*\d+\.\d s \| lumbar: \d+ \(", line)]
    assert progress, text
    assert "sacrum: " in progress[-1] and "% lost" in progress[-1]
    # summary table and the file's state
    assert re.search(r"^sensor\s+family\s+address\s+samples\s+lost", text, re.M)
    rows = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(lumbar|sacrum)\s+\S+\s+\S+\s+(\d+)\s", text, re.M)}
    assert set(rows) == {"lumbar", "sacrum"}
    assert re.search(rf"{re.escape(str(out))}: 8\.\d s recorded, file valid", text)
    assert validate_file(out).ok
    session = read_session(out)
    assert session.info.subject_code == "T001"
    for sid, n in rows.items():
        assert len(session.data[sid]) == n > 0.8 * 200 * 8  # held clock: little is lost to set-up
    assert np.count_nonzero(session.data["lumbar"].flags & np.uint8(SampleFlag.GAP_BEFORE)) > 0  # --drop


def test_record_refuses_without_sensors(capsys):
    assert main(["record", "--duration", "1"]) != 0
    assert "--emulated" in capsys.readouterr().err


@pytest.mark.slow
def test_record_emulated_helper_is_fast_and_analyses_to_the_true_repetitions(tmp_path, capsys):
    from lumbar.simulate import simulate

    t0 = time.monotonic()
    path = record_emulated(tmp_path / "demo.h5", protocol="flexion", duration_s=60.0, seed=1)
    wall = time.monotonic() - t0
    assert wall < 45.0, f"60 s emulated recording took {wall:.1f} s of wall time"
    session = read_session(path)
    assert session.info.subject_code == "SIM001" and session.info.protocol == "flexion"
    for sid in ("lumbar", "sacrum"):
        b = session.data[sid]
        assert b.time_s[0] < 0.5 and b.time_s[-1] > 59.0  # the clock was held while the sensors connected
        assert np.isfinite(b.acc).all() and np.isfinite(b.gyro).all()
    truth = simulate("flexion", duration_s=90.0, seed=1, sensors=("lumbar", "sacrum"), rate_hz=200.0).truth
    n_true = int(np.count_nonzero(truth.rep_bounds_s[:, 2] < 60.0))
    capsys.readouterr()
    assert main(["analyze", "--no-store", "--json", str(path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["protocol"] == "flexion"
    assert result["results"]["repetitions"]["count"] == n_true == 8
