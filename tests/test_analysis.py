"""Session analysis end to end: bad input gives invalid results with reasons; `lumbar analyze` writes,
prints and emits JSON."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from lumbar.analysis import analyze, analyze_file, format_analysis, read_analysis, repetition_count
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
    # waiter's bow: the pelvis tilts forward, the lumbar spine should stay still (the repetitions are named)
    assert "Repetitions of pelvic tilt: 6 counted" in text and "Movement control: PASS" in text
    stored = read_analysis(f)
    assert stored["results"]["repetitions"]["count"] == 6 and stored["principal"] == "pelvic_tilt"
    assert main(["analyze", str(f), "--json", "--degrees", "--no-store"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["file"] == str(f) and d["results"]["repetitions"]["count"] == 6
    assert d["results"]["dissociation"]["units"]["excursion_a"] == "deg"
    assert d["results"]["dissociation"]["excursion_a"] >= 50.0


def test_rocking_both_ways_stored_and_printed(tmp_path, capsys) -> None:
    """Rocking backward, then forward (5 each way, the emulated patient's truth): both directions' sets and
    dissociations are stored in the file, read back, and printed in words; the total is 10."""
    f = tmp_path / "r.h5"
    assert main(["simulate", "--protocol", "rocking", "--duration", "75", "--quality", "poor", "-o", str(f)]) == 0
    capsys.readouterr()
    assert main(["analyze", str(f)]) == 0
    text = capsys.readouterr().out
    assert "Repetitions of pelvic tilt, backward: 5 counted" in text
    assert "Repetitions of pelvic tilt, forward: 5 counted" in text and "Repetitions in both directions: 10" in text
    assert "Movement control (backward): FAIL" in text and "Movement control (forward): FAIL" in text
    stored = read_analysis(f)
    assert stored["opposite_direction"] == "forward" and repetition_count(stored) == 10
    res = stored["results"]
    assert res["repetitions"]["count"] == res["repetitions_forward"]["count"] == 5
    # forward: the lumbar spine extends (the forbidden direction), beyond the 10° tolerance (SI: rad)
    assert res["dissociation_forward"]["excursion_b"] > math.radians(10.0)
    assert res["dissociation_forward"]["passed"] is False
    assert repetition_count({"results": {"repetitions": {"count": 4}}}) == 4 and repetition_count(None) is None


def test_analyze_file_of_too_short_session(tmp_path) -> None:
    f = tmp_path / "q.h5"
    assert main(["simulate", "--protocol", "quiet-standing", "--duration", "8", "-o", str(f)]) == 0
    a = analyze_file(f)
    assert not a.results["sway"].valid
    assert read_analysis(f)["results"]["sway"]["valid"] is False


def test_stored_derived_signals_float32_and_sensor_orientation_recoverable(tmp_path) -> None:
    """docs/file-format.md, derived group: float32 signals, float64 time, sensor orientations left
    out because the segment orientation and the stored calibration give them back."""
    from lumbar import conventions as cv
    from lumbar.pipeline import process_session
    from lumbar.storage.reader import open_h5, read_group, read_session
    from lumbar.storage.validate import validate_file

    f = tmp_path / "f.h5"
    assert main(["simulate", "--protocol", "flexion", "--duration", "40", "--seed", "2", "-o", str(f)]) == 0
    analyze_file(f)
    assert validate_file(f).ok
    p = process_session(read_session(f, load_truth=False))
    with open_h5(f) as (h, _):
        arr, attrs = read_group(h, "derived")
        r_sb = {sid: h[f"sensors/{sid}/calibration/r_sb"][()] for sid in p.quat_sensor}
    assert arr["time_s"].dtype == np.float64 and np.array_equal(arr["time_s"], p.time_s)
    assert not any(k.endswith("quat_sensor") for k in arr)
    assert arr["lumbar/flags"].dtype == np.uint8
    np.testing.assert_allclose(arr["lumbar_angles_rad"], p.lumbar_angles, atol=1e-6)
    assert arr["lumbar_angles_rad"].dtype == np.float32
    for sid, q in p.quat_sensor.items():
        assert arr[f"{sid}/quat_segment"].dtype == np.float32
        assert arr[f"{sid}/sagittal_tilt_rad"].dtype == np.float32
        np.testing.assert_allclose(arr[f"{sid}/frontal_tilt_rad"], p.frontal_tilt[sid], atol=1e-6)
        q_gs = cv.quat_multiply(arr[f"{sid}/quat_segment"], np.broadcast_to(cv.matrix_to_quat(r_sb[sid]), q.shape))
        np.testing.assert_allclose(np.abs(np.sum(q_gs * q, axis=1)), 1.0, atol=1e-6)  # same rotation (±q)
    assert attrs["orientation_method"] == "offline"


def test_reanalysing_reuses_the_replaced_groups_space(tmp_path) -> None:
    """`lumbar analyze` replaces `derived` and `metrics`; the file keeps its free-space manager, so
    analysing again reuses the old groups' space instead of adding them to the file each time (before:
    about a third of the first analysis's size per run)."""
    import os

    from lumbar.storage.writer import write_simulated
    from lumbar.types import SessionInfo

    path = write_simulated(tmp_path / "s.h5", simulate("flexion", duration_s=60, seed=2, rate_hz=100),
                           SessionInfo(subject_code="SIM001", protocol="flexion"))
    sizes = [os.path.getsize(path)]
    for _ in range(5):
        analyze_file(path)
        sizes.append(os.path.getsize(path))
    first = sizes[1] - sizes[0]
    per_run = (sizes[-1] - sizes[1]) / 4
    assert per_run < 0.15 * first, sizes
    assert read_analysis(path)["protocol"] == "flexion"


def test_the_plan_not_the_first_movement_says_which_way_is_backward(tmp_path) -> None:
    """Rocking's plan fixes the backward rock's sign (posterior pelvic tilt, −1): the emulated patient rocks
    backward first, so the plan's sign finds the first five rocks; the opposite sign in the plan, on the
    same session, makes the forward rocks (the last five) the "backward" set: the sign is the plan's, not
    the data's first excursion."""
    from lumbar.analysis import load_plans
    from lumbar.storage import read_session

    f = tmp_path / "r.h5"
    assert main(["simulate", "--protocol", "rocking", "--duration", "75", "-o", str(f)]) == 0
    session = read_session(f, load_truth=False)
    plan = load_plans()["rocking"]
    assert plan.first_sign == -1 and plan.first_direction == "backward"
    for sign, backward_first in ((-1, True), (1, False)):
        a, _ = analyze(session, plans={"rocking": dataclasses.replace(plan, first_sign=sign)})
        assert a.principal_sign == sign
        first, other = a.results["repetitions"], a.results["repetitions_forward"]
        assert first.count == other.count == 5
        before = max(r.end_idx for r in first.repetitions) < min(r.start_idx for r in other.repetitions)
        assert before is backward_first
