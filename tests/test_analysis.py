"""Session analysis end to end: bad input gives invalid results with reasons; `lumbar analyze` writes,
prints and emits JSON."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from lumbar.analysis import analyze, analyze_file, format_analysis, read_analysis
from lumbar.cli import main
from lumbar.simulate import simulate
from tests.metrics.emulated import session_from_sim


def _session(movement: str, duration: float = 60.0, **kw):
    return session_from_sim(simulate(movement, duration_s=duration, seed=1, **kw), movement)


def test_too_short_is_invalid_with_reason() -> None:
    a, _ = analyze(_session("quiet-standing", 8.0))
    assert not a.results["sway"].valid and "too short" in a.results["sway"].reason
    assert "Sway: not computed — too short" in format_analysis(a)


def test_all_nan_is_invalid_with_reason() -> None:
    s = _session("waiters-bow")
    for sid, b in s.data.items():
        s.data[sid] = dataclasses.replace(b, acc=np.full_like(b.acc, np.nan), gyro=np.full_like(b.gyro, np.nan))
    a, p = analyze(s)
    assert p is None
    for name in ("repetitions", "dissociation"):
        assert not a.results[name].valid and "could not be processed" in a.results[name].reason
    json.dumps(a.to_dict())  # still exportable


def test_sensor_missing_for_two_sensor_metric() -> None:
    a, _ = analyze(_session("waiters-bow", sensors=("sacrum",)))
    d = a.results["dissociation"]
    assert not d.valid and "missing" in d.reason and math.isnan(d.excursion_b)
    assert a.results["repetitions"].count > 0  # the one-sensor metric still works
    a, _ = analyze(_session("flexion", sensors=("lumbar",)))
    assert not a.results["rhythm"].valid and "sacrum" in a.results["rhythm"].reason
    a, _ = analyze(_session("one-leg-stance", sensors=("sacrum",)))
    assert not a.results["frontal_control"].valid


def test_gap_inside_a_repetition_rejects_it() -> None:
    s = _session("flexion")
    a0, p = analyze(s)
    rs0 = a0.results["repetitions"]
    r = rs0.repetitions[2]
    k = (r.start_idx + r.peak_idx) // 2
    p.tilt["lumbar"][k : k + 20] = np.nan
    a1, _ = analyze(s, p)
    rs1 = a1.results["repetitions"]
    assert rs1.count == rs0.count - 1
    assert len(rs1.rejected) == 1 and "gap" in rs1.rejected[0].reason


def test_sit_to_stand_counts_cycles_not_leans() -> None:
    sim = simulate("sit-to-stand", duration_s=60.0, seed=3)
    a, _ = analyze(session_from_sim(sim, "sit-to-stand"))
    rs = a.results["repetitions"]
    bounds = sim.truth.to_arrays()["rep_bounds_s"]
    assert rs.count == len(bounds)
    # each repetition spans a rise and the following sit-down
    assert np.allclose(rs.values("start_s"), bounds[:, 0], atol=0.5)
    assert np.allclose(rs.values("end_s"), bounds[:, 2], atol=0.5)


def test_cli_analyze_writes_prints_and_json(tmp_path, capsys) -> None:
    f = tmp_path / "w.h5"
    assert main(["simulate", "--protocol", "waiters-bow", "--seed", "3", "-o", str(f)]) == 0
    capsys.readouterr()
    assert main(["analyze", str(f)]) == 0
    text = capsys.readouterr().out
    assert "Repetitions: 6 counted" in text and "Movement control: PASS" in text
    stored = read_analysis(f)
    assert stored["results"]["repetitions"]["count"] == 6
    assert main(["analyze", str(f), "--json", "--degrees", "--no-store"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["file"] == str(f) and d["results"]["repetitions"]["count"] == 6
    assert d["results"]["dissociation"]["units"]["excursion_a"] == "deg"
    assert d["results"]["dissociation"]["excursion_a"] >= 50.0


def test_analyze_file_of_too_short_session(tmp_path) -> None:
    f = tmp_path / "q.h5"
    assert main(["simulate", "--protocol", "quiet-standing", "--duration", "8", "-o", str(f)]) == 0
    a = analyze_file(f)
    assert not a.results["sway"].valid
    assert read_analysis(f)["results"]["sway"]["valid"] is False
