"""Review view helpers that need no window: markers drawn on the plots."""
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
