"""Review view: markers and repetitions drawn on the plots, results named."""
from __future__ import annotations

from types import SimpleNamespace


def _ev(t, label):
    return SimpleNamespace(time_s=t, label=label, note="")


def test_coincident_markers_share_one_labelled_line():
    from lumbar_gui.views.review import group_markers

    events = [_ev(45.0, "trial_end"), _ev(0.0, "calibration_start"), _ev(0.0, "trial_start"),
              _ev(0.01, "calibration_quality"), _ev(5.0, "calibration_end"), _ev(5.0, "go"), _ev(20.0, "note")]
    groups = group_markers(events)
    assert [(t, name, len(evs)) for t, name, evs in groups] == [
        (0.0, "start", 3), (5.0, "go", 2), (20.0, "note", 1), (45.0, "end", 1)]
    # markers further apart than the grouping window keep their own lines
    assert len(group_markers([_ev(1.0, "feedback"), _ev(1.6, "feedback")])) == 2


def test_markers_are_named_in_words():
    from lumbar_gui.views.review import marker_text

    assert marker_text("trial_start") == "Trial start"
    assert marker_text("disconnect") == "Sensor link lost"
    assert marker_text("rep_start") == "Rep start"  # a label without a name of its own: its words


def test_a_marker_note_is_not_repeated_when_its_name_says_it():
    from lumbar_gui.views.review import marker_note

    assert marker_note("calibration_start", "still in the start position") == ""
    assert marker_note("calibration_start", "Still in the start position ") == ""
    assert marker_note("trial_end", "4 repetitions counted") == "4 repetitions counted"
    assert marker_note("note", "patient reports pain") == "patient reports pain"


def test_results_name_the_repeated_angle():
    """A repetition's ROM is that of the angle counted (trunk flexion bends further than the lumbar spine):
    the results say which, beside the lumbar ROM."""
    from lumbar_gui.views.review import _repetitions_html, _results_html

    reps = [{"rom": 60.0, "start_s": 5.0, "duration_s": 5.0, "peak_velocity_out": 58.0, "lumbar_share_pct": 60.0}]
    d = {"protocol": "flexion", "principal": "trunk_flexion",
         "results": {"lumbar_rom": {"rom": [39.2, 0.6, 0.8]}, "repetitions": {"count": 1, "repetitions": reps}}}
    text = _results_html(d) + _repetitions_html(d)
    assert "Repetitions of trunk flexion" in text and "Mean trunk flexion ROM per repetition" in text
    assert "Lumbar ROM flexion/extension" in text
    d["principal"] = "pelvic_tilt"
    assert "Mean pelvic tilt ROM per repetition" in _results_html(d)
    # the lumbar share of each bend only where the analysis measures the lumbo-pelvic rhythm (a bend)
    assert "lumbar %" not in _repetitions_html(d)
    d["results"]["rhythm"] = {"n": 1}
    assert "lumbar %" in _repetitions_html(d) and ">60</td>" in _repetitions_html(d)


def test_one_leg_stance_results_show_each_leg_where_the_thighs_told_them_apart():
    """One-leg stance in Review: the largest pelvic drop and trunk lean; each leg's sideways bend of the low
    back and their difference when thigh sensors told the legs apart, else that they were not."""
    from lumbar_gui.views.review import _results_html

    fc = {"pelvic_drop": 6.1, "trunk_lean": 6.4, "sides_from": "thighs", "lean_on_left": 6.4, "lean_on_right": 5.9,
          "drop_on_left": 6.0, "drop_on_right": 6.1, "stances_left": 1, "stances_right": 2, "lean_difference": 0.5}
    text = _results_html({"protocol": "one-leg-stance", "results": {"frontal_control": fc}})
    for words in ("Pelvic drop, largest", "<b>6.1°</b>", "Standing on the left leg: low back bends sideways",
                  "<b>6.4°</b>", "Standing on the right leg", "<b>5.9°</b>", "Difference between the legs", "<b>0.5°</b>"):
        assert words in text, words
    fc.update(sides_from="tilt", lean_on_left=None, lean_on_right=None, lean_difference=None)
    text = _results_html({"protocol": "one-leg-stance", "results": {"frontal_control": fc}})
    assert "Standing on the left leg" not in text and "not told apart" in text


def test_repetitions_are_shaded_with_the_numbers_of_the_results_table(window):
    """Counted repetitions carry their number in the table; one not counted, between them, is marked × in
    orange and says why — it does not shift the numbers of the ones after it."""
    import numpy as np

    from lumbar_gui.widgets import COLORS

    r = window.review
    t = np.arange(3000) / 100.0
    flex = np.radians(50.0) * np.clip(np.sin(2 * np.pi * t / 10.0), 0, None)
    r.data = {"processed": SimpleNamespace(time_s=t, signal={"trunk_flexion": flex, "pelvic_tilt": flex / 3}.get)}

    def rep(i0, i1, **kw):
        return {"start_idx": i0, "peak_idx": (i0 + i1) // 2, "end_idx": i1, "rom": 50.0, "duration_s": 5.0, **kw}

    d = {"principal": "trunk_flexion",
         "results": {"repetitions": {"repetitions": [rep(0, 500), rep(2000, 2500)],
                                     "rejected": [rep(1000, 1500, reason="duration 5.00 s outside [1, 4] s")]}}}
    r._show_repetitions(d)
    shown = sorted((region.getRegion()[0], label.toPlainText(), label.color.name(), region.toolTip())
                   for region, label, plot in r.rep_regions)
    assert [(s[0], s[1]) for s in shown] == [(0.0, "1"), (10.0, "×"), (20.0, "2")]
    assert shown[1][2] == COLORS["warn"] and "not counted: duration" in shown[1][3]
    assert all(plot is r.p_tilt for _, _, plot in r.rep_regions)
    r._show_repetitions(None)  # no analysis: nothing left shaded
    assert r.rep_regions == []


def test_rocking_is_reviewed_both_ways(window, tmp_path):
    """An emulated rocking trial (5 rocks backward, then 5 forward, poor control): the results name each
    direction's count, range and verdict and the total; the table and the plot number the 10 rocks in time
    order, the table saying which way each went; the forward rocks are shaded too."""
    import re

    from lumbar.analysis import analyze
    from lumbar.cli import main
    from lumbar.storage import read_session
    from lumbar_gui.views.review import _repetitions_html, _results_html

    f = tmp_path / "rocking.h5"
    assert main(["simulate", "--protocol", "rocking", "--duration", "75", "--quality", "poor", "-o", str(f)]) == 0
    a, p = analyze(read_session(f, load_truth=False))
    d = a.to_dict(display=True)
    res = _results_html(d)
    for words in ("Repetitions of pelvic tilt, backward</td><td align=right><b>5<",
                  "Repetitions of pelvic tilt, forward</td><td align=right><b>5<",
                  "Repetitions in both directions</td><td align=right><b>10<",
                  "Movement control, backward</td><td align=right><b>FAIL<",
                  "Movement control, forward</td><td align=right><b>FAIL<"):
        assert words in res, words
    ways = re.findall(r"<td>(backward|forward)</td>", _repetitions_html(d))
    assert ways == ["backward"] * 5 + ["forward"] * 5  # the emulated patient's order, numbered 1 to 10
    assert "lumbar %" not in _repetitions_html(d)  # a rock is not a bend: no lumbo-pelvic rhythm
    r = window.review
    r.data = {"processed": p}
    r._show_repetitions(d)
    counted = sorted((region.getRegion()[0], label.toPlainText(), region.toolTip())
                     for region, label, _ in r.rep_regions if label.toPlainText() != "×")
    assert [c[1] for c in counted] == [str(i) for i in range(1, 11)]
    assert all("(backward)" in c[2] for c in counted[:5]) and all("(forward)" in c[2] for c in counted[5:])


def test_thigh_sensors_show_the_hip_angle(window, qtbot, tmp_path):
    """A waiter's bow with thigh sensors, opened in Review: the middle plot gains the hip-flexion curve (named in
    its title), the bows are shaded on it and counted on it, the cursor reads it out and the CSV export has it."""
    import numpy as np

    from lumbar.cli import main

    f = tmp_path / "bow.h5"
    assert main(["simulate", "--protocol", "waiters-bow", "--sensors", "lumbar,sacrum,thigh_left,thigh_right",
                 "-o", str(f)]) == 0
    r = window.review
    window.show_view(r)
    r.open(f)
    qtbot.waitUntil(lambda: not r.busy and r.data is not None, timeout=60000)
    assert r.analysis is not None and r.analysis.principal == "hip_flexion", r.data.get("error")
    assert "hip flexion" in r.p_tilt.titleLabel.text
    names = [item.name() for item in r.p_tilt.listDataItems()]
    assert names == ["pelvic tilt (anterior +)", "trunk flexion", "hip flexion"]
    count = r.analysis.results["repetitions"].count
    assert count >= 5 and len(r.rep_regions) == count and all(pl is r.p_tilt for _, _, pl in r.rep_regions)
    hip = np.degrees(r.data["processed"].hip_flexion)
    for (region, label, _), rep in zip(r.rep_regions, r.analysis.results["repetitions"].repetitions):
        assert label.pos().y() == hip[rep.peak_idx]  # each bow's number sits on its hip-flexion peak
    r.set_cursor(float(r.data["processed"].time_s[rep.peak_idx]))  # the last bow's peak
    assert f"hip flexion <b>{hip[rep.peak_idx]:.1f}°</b>" in r.readout.text()
    out = r.export_csv(tmp_path / "bow.csv")
    header = out.read_text().splitlines()[0].split(",")
    assert "hip_flexion_deg" in header
    col = np.loadtxt(out, delimiter=",", skiprows=1)[:, header.index("hip_flexion_deg")]
    assert col.max() > 50.0  # the bows reach the test's 50°
