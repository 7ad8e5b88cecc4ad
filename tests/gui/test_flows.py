"""The main flows, driven on the real widgets with the emulated sensors (bleak + Bumble) on the demo patient."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.gui.conftest import connect_demo, plant_earlier_visit, save_screenshot


def _calibrated_single_test(qtbot, win, title: str):
    """Begin the single test whose title starts with ``title`` for subject S021 (the sensors connected), pass
    the sensor check and calibrate; returns the assessment view at its trial step."""
    from lumbar_gui.trials import protocols

    a = win.assessment
    win.show_view(a)
    a.subject.setText("S021")
    a.protocol.setCurrentText(next(name for name in protocols() if name.startswith(f"Single test — {title}")))
    assert a.begin()
    qtbot.waitUntil(lambda: a.action_btn.isEnabled(), timeout=10000)
    a.action()  # → calibration
    a.action()
    qtbot.waitUntil(lambda: a.calibration is not None, timeout=20000)
    a.action()  # → the trial
    return a


def _analyze_cli(path, capsys):
    from lumbar.cli import main

    capsys.readouterr()
    assert main(["analyze", "--json", "--no-store", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    out.pop("file")
    return out


def test_assessment_save_and_review_equals_analyze(qtbot, tmp_path, window, capsys, monkeypatch):
    win = window
    connect_demo(qtbot, win)
    save_screenshot(win, win.devices, "devices", tmp_path)

    a = win.assessment
    earlier = plant_earlier_visit(a.sessions_dir / "S017")
    win.show_view(a)
    a.subject.setText("S017")
    a.operator.setText("AB")
    a.protocol.setCurrentIndex(0)  # quiet standing + flexion
    assert a.begin()
    qtbot.waitUntil(lambda: a.action_btn.isEnabled(), timeout=10000)  # sensor check passes
    a.action()  # → calibration
    a.action()  # start calibration
    qtbot.waitUntil(lambda: a.calibration is not None, timeout=20000)
    assert a.calibration.ok, a.calibration.message
    a.action()  # → trial 1
    assert a.step == "trial" and a.trials[0].movement == "quiet-standing"
    a.action()  # start trial 1 (recording once the patient holds still)
    assert a.monitor.isVisible() and a.monitor.mode == "sway"  # the trial monitor shows the stabilogram
    qtbot.waitUntil(lambda: a._phase == "still", timeout=20000)  # the patient holds still: recording
    qtbot.keyClick(a, "M", modifier=__import__("PySide6.QtCore", fromlist=["Qt"]).Qt.KeyboardModifier.ControlModifier)
    a.note.setText("patient comfortable")
    a.add_note()
    qtbot.waitUntil(lambda: a._phase == "result", timeout=60000)
    assert not a.monitor.isVisible()  # the trial's results take its place
    # the ellipse the clinician watched is the trial's: within 20 % of the recorded trial's 95 % ellipse
    watched, recorded = a.monitor.stabilogram.area, a.results[-1][2]["results"]["sway"]["combined"]["area_ce"]
    assert abs(watched - recorded) <= 0.2 * recorded, (watched, recorded)
    a.action()  # → trial 2
    a.action()  # start the flexion set
    assert a.monitor.isVisible() and a.monitor.mode == "repetitions"
    qtbot.waitUntil(lambda: a._phase == "moving", timeout=20000)
    qtbot.waitUntil(lambda: a.monitor.chart.redraws > 10, timeout=10000)
    qtbot.waitUntil(lambda: len(win.engine.repetitions) >= 2, timeout=60000)
    save_screenshot(win, win.live, "live", tmp_path)
    win.show_view(a)
    qtbot.waitUntil(lambda: a._phase == "result", timeout=60000)
    # the count the clinician watched during the set is the recorded set's
    assert a.monitor.repetitions == a.results[-1][2]["results"]["repetitions"]["count"] == 4
    a.action()  # → results
    assert a.step == "results"
    save_screenshot(win, a, "assessment", tmp_path)
    assert len(a.files) == 2 and all(p.exists() for p in a.files)
    for trial, path, d, err in a.results:
        assert err is None, err
    # the recorded files: valid, markers of every step, nothing dropped between bus and file
    from lumbar.storage import read_session, validate_file

    for p in a.files:
        assert validate_file(p).ok
        labels = [e.label for e in read_session(p).events]
        for lab in ("trial_start", "calibration_start", "calibration_quality", "calibration_end", "go", "trial_end"):
            assert lab in labels, (p.name, labels)
    first = read_session(a.files[0])
    assert {"marker", "note"} <= {e.label for e in first.events}
    # quiet standing runs its time; the flexion set stops once its 4 bends are counted, before its 40 s are up
    ends = []
    for p in a.files:
        ev = {e.label: e for e in read_session(p).events}
        ends.append((ev["trial_end"].note, ev["trial_end"].time_s - ev["go"].time_s))
    assert ends[0][0] == f"time up ({a.trials[0].duration_s:.0f} s)" and ends[0][1] >= a.trials[0].duration_s
    assert ends[1][0] == "4 repetitions counted" and ends[1][1] < a.trials[1].duration_s - 5, ends
    assert win.engine._last_recorder.missed == 0
    _results_compare_with_the_last_visit(a, earlier)
    _subject_report_compares_visits(qtbot, a, monkeypatch)

    # reopen the flexion trial in Review: the results equal `lumbar analyze` on the same file
    flex = a.files[1]
    r = win.review
    win.show_view(r)
    r.open(flex)
    qtbot.waitUntil(lambda: not r.busy and r.data is not None, timeout=60000)
    assert r.analysis is not None, r.data.get("error")
    cli = _analyze_cli(flex, capsys)
    assert json.loads(json.dumps(r.analysis.to_dict(), default=float)) == cli
    assert r.analysis.results["repetitions"].count >= 3
    assert "Mean trunk flexion ROM per repetition" in r.results.toPlainText()  # the repeated angle is named
    assert r.results.toPlainText().lstrip().startswith("Repeated forward flexion")  # the test by its title
    # each repetition is shaded on the trunk flexion plot: in order, apart, each around a bend of its ROM
    p = r.data["processed"]
    spans = [region.getRegion() for region, _, plot in r.rep_regions]
    assert len(spans) == r.analysis.results["repetitions"].count and all(pl is r.p_tilt for _, _, pl in r.rep_regions)
    assert all(b0 < a1 for (_, b0), (a1, _) in zip(spans, spans[1:]))
    for (a0, b0), rp in zip(spans, r.analysis.results["repetitions"].repetitions):
        inside = np.degrees(p.trunk_flexion[(p.time_s >= a0) & (p.time_s <= b0)])
        assert inside.max() - inside.min() >= 0.9 * np.degrees(rp.rom) > 30, (a0, b0)
    r.recompute()
    qtbot.waitUntil(lambda: not r.busy, timeout=60000)
    assert json.loads(json.dumps(r.analysis.to_dict(), default=float)) == cli
    r.set_cursor(12.0)
    save_screenshot(win, r, "review", tmp_path)
    out = r.export_csv(flex.with_suffix(".csv"))
    data = np.loadtxt(out, delimiter=",", skiprows=1)
    assert data.shape[1] == 6 and len(data) > 1000
    report = r.write_report()
    assert report is not None and report.exists()


def _results_compare_with_the_last_visit(a, earlier):
    """The results: each trial scored by its protocol definition, as the subject's report scores it (the
    report finds the same definition from the file), under the headline of those scores; and a "last visit"
    column: the earlier flexion trial's values scored the same way; the quiet-standing rows have none."""
    from lumbar.analysis import analyze_file
    from lumbar.protocols import load_protocols, score
    from lumbar.storage import read_session
    from lumbar_gui.trials import outcome, result_rows, verdict
    from lumbar_gui.views.assessment import _visit_date

    headers, rows = _table(a.table)
    assert headers == ["measure", "value", "last visit", "needed / reference", "result"]
    assert f"the same test on {_visit_date(earlier.parent.name)}" in a.instruction.text()
    reg = load_protocols()
    scores, expected = [], []
    for i, (tr, path, d, _) in enumerate(a.results):
        info = read_session(path).info
        assert reg.for_session(info.protocol, info.notes).name == tr.protocol  # the report scores it alike
        res = score(reg[tr.protocol], d)
        scores.append(res)
        expected += [[f"{i + 1} · {tr.name} — {outcome(res)[0]}"]]
        expected += [[r.measure, r.value, r.against, r.outcome] for r in result_rows(tr, res, d)]
    assert [row if len(row) == 1 else [row[0], row[1], row[3], row[4]] for row in rows] == expected
    headings = [row[0] for row in expected if len(row) == 1]
    assert headings[0] in ("1 · Quiet standing — passed", "1 · Quiet standing — failed (positive test)")
    assert headings[1] == "2 · Forward flexion — measured (no pass/fail criterion)"
    assert {row[0] for row in rows} >= {"Forward–backward sway within the healthy range", "Lumbar flexion ROM"}
    assert a.countdown.text() == verdict(a.protocol.currentText(), scores)[0] == (
        f"{int(scores[0].passed)} of 1 test passed")
    # the last visit: the earlier flexion trial scored by the same definition
    d_then = analyze_file(earlier, store=False).to_dict(display=True)
    flex = next(tr for tr, *_ in a.results if tr.movement == "flexion")
    then = {r.measure: r.value for r in result_rows(flex, score(reg["flexion"], d_then), d_then)}
    start = next(i for i, row in enumerate(rows) if row[0].startswith("2 · Forward flexion"))
    assert {row[0]: row[2] for row in rows[start + 1:]} == then
    now_rom = next(row for row in rows if row[0] == "Lumbar flexion ROM")
    assert float(now_rom[2].rstrip("°")) < float(now_rom[1].rstrip("°"))  # less far then than now
    assert all(row[2] == "–" for row in rows[1:start])


def _table(t):
    """Headers and rows of text of a table; a heading row (one cell across the table) as a list of one."""
    headers = [t.horizontalHeaderItem(c).text() for c in range(t.columnCount())]
    rows = [[t.item(r, 0).text()] if t.columnSpan(r, 0) > 1 else [t.item(r, c).text() for c in range(t.columnCount())]
            for r in range(t.rowCount())]
    return headers, rows


def _subject_report_compares_visits(qtbot, a, monkeypatch):
    """The results step's report button: every visit of the subject (the earlier one planted), with the
    progress since then."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QDesktopServices

    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    assert a.report_btn.isVisible()
    qtbot.mouseClick(a.report_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(opened) or a.report_btn.isEnabled(), timeout=120000)
    assert opened, a.sub.text()
    page = Path(opened[0])
    assert page.name == "S017_report.html" and a.sub.text() == "Report written: S017/S017_report.html"
    text = page.read_text(encoding="utf-8")
    assert "Progress across visits" in text
    assert text.count('class="visit"') == 2 and "(latest)" in text
    # a damaged file among the subject's sessions is left out, and said so; the report is still written
    damaged = a.sessions_dir / a.code / "damaged" / "01-flexion.h5"
    damaged.parent.mkdir()
    damaged.write_bytes(b"not a session" * 100)
    path, skipped = a.write_subject_report()
    assert path == page and len(skipped) == 1, skipped
    assert skipped[0].startswith(f"{Path('damaged', '01-flexion.h5')}: is not an HDF5 session file"), skipped
    assert page.read_text(encoding="utf-8").count('class="visit"') == 2


def test_biofeedback_session_records_and_gives_feedback(qtbot, tmp_path, window):
    win = window
    connect_demo(qtbot, win)
    b = win.biofeedback
    win.show_view(b)
    b.subject.setText("S017")
    b.lo.setValue(35)
    b.hi.setValue(70)
    b.goal.setValue(3)
    path = b.start_session()
    assert path is not None
    win.engine.source.perform("flexion", 45.0, reps=4)
    qtbot.waitUntil(lambda: b.count >= 2, timeout=60000)
    save_screenshot(win, b, "biofeedback", tmp_path)
    assert b.feedback.text()
    # one dot per repetition, in its verdict's colour, and the count in the band
    import re

    text = b.history.text()
    assert re.findall(r"color:(#[0-9a-f]{6})'>●", text) == [c for _, c in b.verdicts] and len(b.verdicts) == b.count
    assert f"{b.in_band} of {b.count} in the band" in text
    out = b.stop_session()
    assert win.engine.wait_saved()
    from lumbar.storage import read_session

    s = read_session(out)
    fb = [e for e in s.events if e.label == "feedback"]
    assert len(fb) == b.count and s.info.protocol == "flexion"
    # the dots are the verdicts stored in the file, one per repetition, in order
    assert [e.note.split(": ", 1)[1].split(" (peak")[0] for e in fb] == [v for v, _ in b.verdicts]
    assert b.in_band == sum(v.startswith("In band") for v, _ in b.verdicts)


@pytest.mark.parametrize("thighs", [False, True])
def test_hip_hinge_biofeedback_needs_and_uses_the_thigh_sensors(qtbot, window, thighs):
    """Hip flexion as the biofeedback angle: without thigh sensors the session is refused in words; with them the
    demo patient's waiter's bows are counted on it and the recording is analysed as a waiter's bow."""
    from lumbar.storage import read_session

    win = window
    connect_demo(qtbot, win, ("lumbar", "sacrum", "thigh_left", "thigh_right") if thighs else ("lumbar", "sacrum"))
    b = win.biofeedback
    win.show_view(b)
    b.subject.setText("S017")
    b.signal.setCurrentIndex(b.signal.findData("hip_flexion"))
    b.lo.setValue(45)
    b.hi.setValue(80)
    path = b.start_session()
    if not thighs:
        assert path is None and "thigh sensors" in b.msg.text() and not b.recording
        return
    assert path is not None
    win.engine.source.perform("waiters-bow", 40.0, reps=3)
    qtbot.waitUntil(lambda: b.count >= 2, timeout=60000)
    assert b.in_band >= 1  # the demo patient's bows reach about 60° of hip flexion
    out = b.stop_session()
    assert win.engine.wait_saved()
    assert read_session(out).info.protocol == "waiters-bow"


def test_sensor_dropout_shows_and_recording_continues(qtbot, window, tmp_path):
    from lumbar.storage import read_session
    from lumbar.types import SampleFlag, SessionInfo

    win = window
    connect_demo(qtbot, win)
    win.show_view(win.devices)
    rec = win.engine.start_recording(tmp_path / "drop.h5", SessionInfo("S001", protocol="quiet-standing"))
    qtbot.wait(300)
    win.engine.source.drop("sacrum", 3.0)
    qtbot.waitUntil(lambda: not win.engine.bus.status["sacrum"].connected, timeout=5000)
    win.devices.refresh()
    row = [e.address for e in win.devices.entries].index(win.engine.bus.status["sacrum"].address)
    assert win.devices.table.item(row, 6).text().startswith("link lost")
    qtbot.waitUntil(lambda: win.engine.bus.status["sacrum"].connected, timeout=10000)
    qtbot.wait(300)
    win.close()  # closing during a recording finalises the file
    s = read_session(rec.path)
    assert s.complete
    assert s.data["sacrum"].has_flag(SampleFlag.GAP_BEFORE).sum() == 1
    assert len(s.data["lumbar"]) > len(s.data["sacrum"])


def test_cli_gui_parser_entry():
    from lumbar.cli import build_parser

    args = build_parser().parse_args(["gui", "--emulated"])
    assert args.emulated and args.func.__name__ == "cmd_gui"


@pytest.mark.parametrize("name", ["devices", "live", "assessment", "biofeedback", "review"])
def test_every_view_is_listed(window, name):
    assert getattr(window, name).title.lower() == name


def test_battery_results_are_the_protocol_scoring(qtbot, window):
    """A battery (Luomajoki's six tests) offered from the protocol definitions, its trials those of the
    definitions in order; its results: each test scored by its definition, and the headline the battery's count
    of positive tests (``lumbar.protocols.score_battery``, as in the report). Trials of the emulated patient:
    four tests done, two of them poorly (their definitions expect those to fail), two not done."""
    from lumbar.analysis import analyze_file
    from lumbar.protocols import load_protocols, score, score_battery
    from lumbar_gui.trials import battery_of, outcome, protocols, result_rows
    from tests.protocols.emulate import emulate

    win = window
    a = win.assessment
    win.show_view(a)
    reg = load_protocols()
    label = next(name for name in protocols() if battery_of(name) == "luomajoki")
    assert a.protocol.findText(label) >= 0  # offered
    a.protocol.setCurrentText(label)
    a.code, a.trials = "S020", protocols()[label]
    assert [t.protocol for t in a.trials] == list(reg["luomajoki"].items)
    assert [t.name for t in a.trials] == [reg[n].title for n in reg["luomajoki"].items]
    a.folder = a.sessions_dir / "S020" / "20261207-100000"
    a.folder.mkdir(parents=True)
    a.files, a.results, a.previous = [], [], {}
    a._build_steps()
    poor = {"pelvic-tilt", "one-leg-stance"}
    for i, tr in enumerate(a.trials[:4]):
        path = emulate(reg[tr.protocol], "poor" if tr.protocol in poor else "good",
                       a.folder / f"{i + 1:02d}-{tr.key}.h5", subject="S020")
        a.files.append(path)
        a.results.append((tr, path, analyze_file(path, store=False).to_dict(display=True), None))
    a.enter_results()
    t = a.table
    _, rows = _table(t)
    scores = [score(reg[tr.protocol], d) for tr, _, d, _ in a.results]
    expected = []
    for i, ((tr, _, d, _), res) in enumerate(zip(a.results, scores)):
        expected += [[f"{i + 1} · {tr.name} — {outcome(res)[0]}"]]
        expected += [[r.measure, r.value, r.against, r.outcome] for r in result_rows(tr, res, d)]
    assert rows == expected
    headings = [row[0] for row in rows if len(row) == 1]
    assert headings == [f"{i + 1} · {tr.name} — " + ("failed (positive test)" if tr.protocol in poor else "passed")
                        for i, tr in enumerate(a.trials[:4])]
    b = score_battery(reg["luomajoki"], scores)
    assert (b.positive, b.passed, b.not_assessed, b.impaired) == (2, 2, 2, True)
    assert a.countdown.text() == b.statement[:1].upper() + b.statement[1:]
    assert a.countdown.text().startswith("2 of 6 tests positive")
    # the verdict is a long sentence in large type, and the battery's trial titles are long: they wrap, and the
    # window keeps the width it was given (it had grown to 2204 px, past a 1440-px screen)
    qtbot.wait(100)
    assert window.width() == 1440 and a.steps.horizontalScrollBar().maximum() == 0
    # each criterion row says where its threshold comes from
    tip = next(t.item(r, 0).toolTip() for r in range(t.rowCount()) if t.item(r, 0).text() == "Hips bend to 50°")
    assert "Source (published value): Luomajoki" in tip


@pytest.mark.parametrize("placements,angle,sign", [
    (("lumbar", "sacrum"), "pelvic_tilt", -1),  # rocking backward tilts the pelvis back
    (("lumbar", "sacrum", "thigh_left", "thigh_right"), "hip_flexion", 1),  # … and flexes the hips
])
def test_a_kneeling_test_stops_at_its_count_with_the_kneeling_posture_as_its_rest(qtbot, window, placements, angle,
                                                                                  sign):
    """Rocking on all fours (Luomajoki): the demo patient takes the start position and holds it; the trial's still
    phase begins once the angles have settled there, so the file's calibration posture is the kneeling one (not
    a mix of standing and kneeling, which the analysis rejects); the pelvic tilt (with thigh sensors: the hips'
    flexion) is counted both ways from rest, the direction the patient first moves (backwards) and then
    forwards, and the trial stops at the protocol's ten repetitions (five each way), counted live as in the
    saved trial's analysis, which counts on the same angle."""
    from lumbar.analysis import repetition_count
    from lumbar.storage import read_session
    from lumbar_gui.trials import result_rows, score_trial

    connect_demo(qtbot, window, placements)
    a = _calibrated_single_test(qtbot, window, "Rocking")
    tr = a.trials[0]
    assert tr.reps == 10 and "10 repetitions are counted" in a.instruction.text()
    a.action()  # start: the demo patient gets into position; nothing recorded yet
    assert a._phase == "waiting_start" and "position" in a.countdown.text() and not a.files
    assert a.monitor.mode == "repetitions" and a.monitor.angle == angle and a.monitor.target == 10
    qtbot.waitUntil(lambda: a._phase == "still", timeout=40000)
    qtbot.waitUntil(lambda: a._phase == "result", timeout=tr.duration_s * 1000 + 30000)
    (_, path, d, err), = a.results
    assert err is None, err
    ev = {e.label: e for e in read_session(path).events}
    assert ev["trial_end"].note == "10 repetitions counted"
    assert ev["trial_end"].time_s - ev["go"].time_s < tr.duration_s
    # the rest the count started from is the kneeling posture: the pelvis about 90° from standing (and the hips
    # flexed about 90°)
    assert a.monitor.counter is not None and a.monitor.counter.sign == sign
    assert 70 < np.degrees(a.monitor.counter.base) < 100
    assert d["principal"] == angle
    # five backward rocks, then five forward: both counted, live (each direction's range learnt from its first
    # rock) and in the analysis (two sets), the total is the trial's count
    assert d["results"]["repetitions"]["count"] == d["results"]["repetitions_forward"]["count"] == 5
    assert a.monitor.repetitions == a.monitor.counter.rep_count == repetition_count(d) == 10
    assert a.monitor.counter.rom_ref_opposite is not None
    # the results table: the forward criterion is measured (the demo patient's low back stays flat both ways)
    rows = {r.measure: r for r in result_rows(tr, score_trial(tr, d), d)}
    assert rows["Low back stays flat rocking backward"].outcome == rows["Low back does not sag rocking forward"].outcome == "met"
    assert rows["Repetitions counted"].value == "10"
    assert rows["Repetitions counted"].tip == "Both directions: 5 backward, 5 forward"
    # thighs worn facing forward are judged so, live and offline: no warning
    assert not a.turned_thighs and not a.monitor.turned and not a.alert.isVisible() and not d["warnings"]
    # the file begins with the still phase: what came before (getting down on all fours) is not in it
    assert ev["calibration_start"].time_s == ev["trial_start"].time_s
    assert path in a.files and a.files == [path]


@pytest.mark.parametrize("title,legs,knee_criterion,low_back", [
    # with thighs: each knee is the shank relative to its thigh, both 90° from the standing zero sitting
    ("Sitting knee extension", ("thigh_left", "thigh_right", "shank_left", "shank_right"), "Knee straightens 40°",
     "Low back stays still"),
    # the shanks alone; lying prone, a shank bends past upside-down
    ("Prone knee bend", ("shank_left", "shank_right"), "Knee bends to 90°", "Low back does not arch"),
])
def test_a_knee_test_with_shank_sensors_is_counted_on_the_knee(qtbot, window, title, legs, knee_criterion, low_back):
    """The knee tests with a shank sensor on each leg: the monitor counts the knee's repetitions (legs in turn,
    drawn from the start position), the trial stops at the protocol's ten, and the saved trial's analysis counts
    the same ten on the same angle and finds the knee moved far enough with the low back still."""
    from lumbar.analysis import repetition_count
    from lumbar.storage import read_session
    from lumbar_gui.trials import result_rows, score_trial
    from lumbar_gui.views.trial_monitor import ANGLES

    connect_demo(qtbot, window, ("lumbar", "sacrum", *legs))
    a = _calibrated_single_test(qtbot, window, title)
    assert "Shank sensors are optional" not in a.instruction.text()  # worn: nothing to suggest
    tr = a.trials[0]
    a.action()  # start: the demo patient gets into position
    assert a.monitor.mode == "repetitions" and a.monitor.angle == "knee_flexion" and a.monitor.target == 10
    assert a.monitor.angle_now.caption.text() == "knee flexion now"
    knee_curve = a.monitor.chart.curves[ANGLES.index("knee_flexion")]
    assert knee_curve.isVisible() and "knee flexion" in a.monitor.chart.titleLabel.text
    qtbot.waitUntil(lambda: a._phase == "moving", timeout=40000)
    qtbot.waitUntil(lambda: a.monitor.repetitions >= 1, timeout=30000)
    _, drawn = a.monitor.chart.buf.view()  # from the start position: the knee's excursion, not its posture
    knee = np.degrees(drawn[:, ANGLES.index("knee_flexion")])
    assert abs(knee[0]) < 5.0 and 40.0 < np.nanmax(np.abs(knee)) < 130.0
    qtbot.waitUntil(lambda: a._phase == "result", timeout=tr.duration_s * 1000 + 30000)
    (_, path, d, err), = a.results
    assert err is None, err
    ev = {e.label: e for e in read_session(path).events}
    assert ev["trial_end"].note == "10 repetitions counted"
    assert d["principal"] == "knee_flexion"
    assert a.monitor.repetitions == repetition_count(d) == 10
    rows = {r.measure: r for r in result_rows(tr, score_trial(tr, d), d)}
    assert rows[knee_criterion].outcome == rows[low_back].outcome == "met"
    assert rows["Repetitions counted"].value == "10"


def test_leg_sensors_add_the_hip_and_knee_angles_to_the_live_view(qtbot, window):
    """With the two trunk sensors only, the Live view's sagittal chart names pelvic tilt and trunk flexion; with
    the thighs and shanks worn too, it also draws hip and knee flexion, which the live processing pairs from the
    legs' samples: about 0° standing at the provisional zero, and no gap."""
    from lumbar_gui.engine import COL

    live = window.live
    assert [c.isVisible() for c in live.tilts.curves] == [True, True, False, False]
    assert "hip flexion" not in live.tilts.titleLabel.text and "knee flexion" not in live.tilts.titleLabel.text
    connect_demo(qtbot, window, ("lumbar", "sacrum", "thigh_left", "thigh_right", "shank_left", "shank_right"))
    window.show_view(live)
    # the rows of the last 2 s, once every sensor has streamed for a few seconds (a leg's angle starts with its
    # provisional zero, after its first second of data)
    qtbot.waitUntil(lambda: all(c.isVisible() for c in live.tilts.curves) and live.tilts.buf.total > 600,
                    timeout=20000)
    assert "hip flexion" in live.tilts.titleLabel.text and "knee flexion" in live.tilts.titleLabel.text
    _, x = window.engine.processor.series.latest(200)
    for name in ("hip_flexion", "knee_flexion", "knee_flexion_left", "knee_flexion_right"):
        angle = np.degrees(x[:, COL[name]])
        assert np.isfinite(angle).all() and np.abs(angle).max() < 5.0, (name, angle)


@pytest.mark.parametrize("placements", [("lumbar", "sacrum"), ("lumbar", "sacrum", "thigh_left", "thigh_right")])
def test_the_sensor_check_names_the_sensors_and_offers_the_thighs(qtbot, window, placements):
    """The battery's sensor check lists the sensors by the names on the placement figure (L1, S1, Left thigh), and
    without thigh sensors says they are optional and what they add (the hips measured in the waiter's bow and
    rocking); the same for shank sensors and the knee tests."""
    from lumbar_gui.trials import protocols

    connect_demo(qtbot, window, placements)
    a = window.assessment
    window.show_view(a)
    a.subject.setText("S021")
    a.protocol.setCurrentText(next(name for name in protocols() if "Luomajoki" in name))
    assert a.begin()
    ok, rows, _ = a.sensor_check_ok()
    assert [r[0] for r in rows] == ["L1", "S1", "Left thigh", "Right thigh"][:len(placements)]
    text = a.instruction.text()
    if len(placements) == 2:
        assert "Thigh sensors are optional" in text and "waiter's bow" in text and "rocking" in text
    else:
        assert "Thigh sensors are optional" not in text
    # the battery has the knee tests: shank sensors would measure them (none worn here)
    assert "Shank sensors are optional" in text and "sitting knee extension and prone knee bend" in text


def test_a_thigh_sensor_worn_turned_is_shown_in_the_results(window, tmp_path):
    """A rocking trial whose left thigh sensor was worn facing backward: the assessment's results and Review
    say so above the numbers, in the warning colour, so it is refitted before the next trial."""
    import dataclasses

    from lumbar.analysis import analyze_file
    from lumbar.simulate import simulate
    from lumbar.storage.writer import write_simulated
    from lumbar_gui.trials import protocols
    from lumbar_gui.views.review import _results_html
    from lumbar_gui.widgets import COLORS

    sim = simulate("rocking", duration_s=75.0, seed=1, sensors=("lumbar", "sacrum", "thigh_left", "thigh_right"))
    b = sim.batches["thigh_left"]
    sim.batches["thigh_left"] = dataclasses.replace(b, acc=b.acc * [-1, 1, -1], gyro=b.gyro * [-1, 1, -1])
    path = write_simulated(tmp_path / "rocking.h5", sim, sim.session_info())
    d = analyze_file(path).to_dict(display=True)
    assert len(d["warnings"]) == 1 and d["warnings"][0].startswith("Left thigh sensor seems worn back to front")
    a = window.assessment
    label = next(name for name in protocols() if name.startswith("Single test — Rocking"))
    a.protocol.setCurrentText(label)
    a.trials, a.code, a.folder = protocols()[label], "S021", tmp_path / "S021" / "visit"
    a.files, a.results, a.previous = [path], [(a.trials[0], path, d, None)], {}
    a.enter_results()
    texts = [a.table.item(r, 0).text() for r in range(a.table.rowCount())]
    row = next(i for i, t in enumerate(texts) if t.startswith("⚠ Left thigh sensor"))
    assert row == 1  # right under the trial's heading, above its measures
    assert a.table.item(row, 0).foreground().color().name() == COLORS["warn"]
    assert a.table.columnSpan(row, 0) == a.table.columnCount()
    html = _results_html(d, "Rocking")
    assert html.index("⚠ Left thigh sensor") < html.index("<table")


def test_a_thigh_sensor_worn_turned_is_found_during_the_trial(qtbot, window):
    """The demo patient wears the left thigh sensor back to front (turned about its long axis: the calibration
    standing still cannot tell). Rocking on all fours, the trial monitor finds it from the first rocks, while the
    patient is still moving, as the offline analysis does: the operator reads it above the countdown, the trial's
    file holds it as a note, the live hip angle leaves that thigh out, and the trial is counted on the right
    hip, stopping at its ten repetitions; the saved trial's analysis finds the same thigh and counts the same."""
    from lumbar.analysis import repetition_count
    from lumbar.storage import read_session
    from lumbar_gui.engine import COL

    win = window
    connect_demo(qtbot, win, ("lumbar", "sacrum", "thigh_left", "thigh_right"))
    win.engine.source.turn("thigh_left")
    a = _calibrated_single_test(qtbot, win, "Rocking")
    assert a.calibration.ok  # standing still, a turned thigh sensor calibrates as well as one worn right
    tr = a.trials[0]
    a.action()
    assert a.monitor.angle == "hip_flexion" and a.monitor._thigh_sign == -1 and not a.alert.isVisible()
    qtbot.waitUntil(lambda: "thigh_left" in a.turned_thighs, timeout=tr.duration_s * 1000 + 30000)
    assert a._phase == "moving" and a.monitor.repetitions <= 2  # found live, within the first rocks (1 seen)
    assert list(a.turned_thighs) == ["thigh_left"] and set(a.monitor.turned) == {"thigh_left"}
    assert a.alert.isVisible() and a.alert.text().startswith("⚠ Left thigh sensor seems worn back to front")
    assert a.monitor.angle == "hip_flexion"  # the right thigh is left to count on
    qtbot.waitUntil(lambda: a._phase == "result", timeout=tr.duration_s * 1000 + 30000)
    (_, path, d, err), = a.results
    assert err is None, err
    # the live hip angle is the right thigh's alone from the request on
    _, x = win.engine.processor.series.latest(200)
    np.testing.assert_allclose(x[:, COL["hip_flexion"]], x[:, COL["hip_flexion_right"]], atol=1e-9)
    # the offline analysis finds the same thigh and counts the same repetitions on the right hip
    assert [w.split(" thigh")[0] for w in d["warnings"]] == ["Left"]
    assert d["principal"] == "hip_flexion"
    assert a.monitor.repetitions == repetition_count(d) == 10
    notes = [e.note for e in read_session(path).events if e.label == "note"]
    assert a.turned_thighs["thigh_left"] in notes


def test_one_leg_stance_with_thigh_sensors_shows_each_leg(qtbot, window):
    """One-leg stance with four demo sensors: the trial runs its time, and its results show each leg on its own
    (the low back's sideways bend standing on the left leg and on the right, and their difference), the same
    numbers as the saved trial's analysis."""
    from lumbar_gui.trials import result_rows, score_trial

    connect_demo(qtbot, window, ("lumbar", "sacrum", "thigh_left", "thigh_right"))
    a = _calibrated_single_test(qtbot, window, "One-leg")
    tr = a.trials[0]
    a.action()
    qtbot.waitUntil(lambda: a._phase == "result", timeout=tr.duration_s * 1000 + 40000)
    (_, _, d, err), = a.results
    assert err is None, err
    fc = d["results"]["frontal_control"]
    assert fc["sides_from"] == "thighs" and fc["stances_left"] >= 1 and fc["stances_right"] >= 1
    shown = {a.table.item(r, 0).text(): a.table.item(r, 1).text() for r in range(a.table.rowCount())
             if a.table.item(r, 1) is not None}
    rows = {r.measure: r.value for r in result_rows(tr, score_trial(tr, d), d)}
    for leg in ("left", "right"):
        label = f"Standing on the {leg} leg: low back bends sideways"
        assert shown[label] == rows[label] == f"{fc[f'lean_on_{leg}']:.1f}°"
    assert shown["Difference between the legs"] == f"{fc['lean_difference']:.1f}°"
