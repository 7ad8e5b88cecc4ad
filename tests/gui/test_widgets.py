"""The live plots' drawing helpers: peak decimation against a slow reference, and stable bins."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyqtgraph")

from lumbar_gui.widgets import ScrollBuffer, peak_decimate  # noqa: E402


def _reference(t, x, k, first):
    """Plain loop: the partial left bin as samples, then (min, max) per full bin, then the tail."""
    ts, ys = [], []
    i = 0
    while (first + i) % k and i < len(t):
        ts.append(t[i]), ys.append(x[i])
        i += 1
    while i + k <= len(t):
        b = x[i:i + k]
        ts += [t[i], t[i]]
        ys += [b.min(axis=0), b.max(axis=0)]
        i += k
    ts += list(t[i:])
    ys += list(x[i:])
    return np.array(ts), np.array(ys)


@pytest.mark.parametrize("k, first, m", [(1, 0, 50), (4, 0, 100), (7, 3, 2000), (7, 5, 1003), (10, 9, 35),
                                         (16, 0, 400), (17, 2, 400), (30, 11, 2000)])  # both ways of reducing
@pytest.mark.parametrize("gaps", [False, True])
def test_peak_decimate_equals_reference(k, first, m, gaps):
    rng = np.random.default_rng(k * 100 + first)
    t = np.arange(m) / 200.0
    x = rng.normal(size=(m, 3))
    if gaps:  # a NaN (a gap) makes its bin NaN
        x[rng.integers(0, m, size=max(1, m // 50)), rng.integers(0, 3, size=max(1, m // 50))] = np.nan
    t_out, y_out = np.zeros(2 * m + 2), np.zeros((2 * m + 2, 3))
    n = peak_decimate(t, x, k, first, t_out, y_out)
    rt, ry = _reference(t, x, k, first) if k > 1 and m >= 2 * k else (t, x)
    np.testing.assert_array_equal(t_out[:n], rt)
    np.testing.assert_array_equal(y_out[:n], ry)


def test_bins_do_not_change_as_the_window_scrolls():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 1))
    t = np.arange(3000) / 200.0
    k = 6
    out = []
    for start in (100, 101, 105):  # the window moves by a few samples
        tt, xx = t[start:start + 2000], x[start:start + 2000]
        t_out, y_out = np.zeros(4002), np.zeros((4002, 1))
        n = peak_decimate(tt, xx, k, start, t_out, y_out)
        bins: dict[float, list[float]] = {}
        for tk, yk in zip(t_out[:n].round(6), y_out[:n, 0]):
            bins.setdefault(float(tk), []).append(float(yk))
        out.append({tk: v for tk, v in bins.items() if len(v) == 2})  # the full bins: (min, max)
    common = set(out[0]) & set(out[1]) & set(out[2])
    assert len(common) > 300
    for key in common:
        assert out[0][key] == out[1][key] == out[2][key]


def test_scroll_buffer_counts_every_sample():
    b = ScrollBuffer(10, 1)
    b.extend(np.arange(4.0), np.zeros((4, 1)))
    b.extend(np.arange(4.0, 30.0), np.zeros((26, 1)))
    t, _ = b.view()
    assert b.total == 30 and b.count == 10 and t[0] == 20.0 and t[-1] == 29.0


def _sway_with_bends(rate_hz=100.0, seconds=40.0, seed=5):
    """Quiet-standing sway (AP, ML, m/s²) with two forward bends: the pelvis tilts and its horizontal
    acceleration moves by gravity's share (metres per second squared)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    sway = rng.normal(0.0, 0.03, (len(t), 2))
    trunk = np.zeros(len(t))
    pelvis = np.zeros(len(t))
    for t0 in (10.0, 25.0):  # 6 s bends: down 2 s, hold 2 s, up 2 s
        ph = np.clip((t - t0) / 2.0, 0, 3)
        shape = np.where(ph < 1, ph, np.where(ph < 2, 1.0, 3 - ph))
        shape = 0.5 - 0.5 * np.cos(np.pi * shape)
        trunk += np.radians(60) * shape
        pelvis += np.radians(20) * shape
    sway[:, 0] -= 9.81 * np.sin(pelvis)
    return t, sway, np.column_stack([trunk, pelvis])


def test_stabilogram_keeps_only_standing_still(qapp):
    from lumbar_gui.widgets import Stabilogram

    st = Stabilogram(rate_hz=100.0)
    t, sway, posture = _sway_with_bends()
    for i in range(0, len(t), 7):  # as the live view feeds it, a few samples at a time
        st.append(t[i:i + 7], sway[i:i + 7], posture=posture[i:i + 7])
        st.redraw()
    st.update_ellipse()
    _, kept = st.buf.view()
    assert len(kept) > 2000  # the quiet seconds between and after the bends
    assert np.abs(kept).max() < 0.5  # nothing of the bends
    assert st.area < 0.05  # the sway's ellipse, not the bends'
    (x0, x1), (y0, y1) = st.getPlotItem().vb.viewRange()
    assert max(y1 - y0, x1 - x0) <= 2 * 0.3  # the view fits the sway
    for ax in ("left", "bottom"):  # tick labels in m/s², not scaled by an SI prefix
        assert st.getPlotItem().getAxis(ax).autoSIPrefixScale == 1.0


def test_stabilogram_quiet_test_is_the_same_in_any_chunks(qapp):
    from lumbar_gui.widgets import Stabilogram

    t, sway, posture = _sway_with_bends()
    posture[500:700, 1] = np.nan  # the sacral sensor drops out for 2 s
    whole = Stabilogram(rate_hz=100.0).quiet(posture)
    chunked = Stabilogram(rate_hz=100.0)
    parts = np.concatenate([chunked.quiet(posture[i:i + 13]) for i in range(0, len(t), 13)])
    np.testing.assert_array_equal(parts, whole)
    assert not whole[:99].any()  # not known to be still before a second has passed
    assert whole[500:700].all()  # trunk flexion alone decides while the pelvis is unknown
    bending = (t > 10.5) & (t < 16.5)  # from a few degrees into the bend until well after it
    assert not whole[bending].any()


def test_live_view_texts_fit(window):
    from lumbar_gui.views.live import SWAY_NONE, sway_text

    live = window.live
    window.show_view(live)
    hh = live.rep_table.horizontalHeader()
    for c in range(hh.count()):  # each header's text fits its column (none cut)
        assert hh.sectionSize(c) >= hh.sectionSizeHint(c), live.rep_table.horizontalHeaderItem(c).text()
    fm = live.sway_label.fontMetrics()
    for text in (SWAY_NONE, sway_text(0.0244), sway_text(12.3456)):  # the ellipse read-out is not cut
        assert max(fm.horizontalAdvance(line) for line in text.splitlines()) <= live.sway_label.width(), text


def test_placement_diagram_colours_each_placement_by_its_state(qapp):
    from PySide6.QtGui import QColor

    from lumbar_gui.widgets import COLORS, PlacementDiagram

    d = PlacementDiagram()
    d.resize(260, 400)  # one figure unit per pixel: the spots are where SPOTS says

    def colour_at(key):
        x, y, _, _ = PlacementDiagram.SPOTS[key]
        return d.grab().toImage().pixelColor(int(x + 30), int(y)).name()

    background = colour_at("lumbar")
    d.set_states({"lumbar": "streaming", "sacrum": "lost", "thigh_left": "assigned", "thigh_right": "",
                  "shank_right": "streaming"})
    assert d.states == {"lumbar": "streaming", "sacrum": "lost", "thigh_left": "assigned", "shank_right": "streaming"}
    assert colour_at("lumbar") == QColor(COLORS["ok"]).name() != background
    assert colour_at("sacrum") == QColor(COLORS["bad"]).name()
    assert colour_at("thigh_left") == QColor(COLORS["warn"]).name()
    assert colour_at("shank_right") == QColor(COLORS["ok"]).name()
    for key in ("thigh_right", "shank_left"):  # not worn
        assert colour_at(key) not in {QColor(COLORS[k]).name() for k in ("ok", "bad", "warn")}


def test_degree_readouts_never_show_minus_zero():
    from lumbar_gui.widgets import degrees_text

    assert [degrees_text(v) for v in (-0.4, 0.4, -0.6, 52.4, 53.6, float("nan"))] == ["0°", "0°", "-1°", "52°", "54°", "–"]


def test_big_read_outs_are_big_under_the_application_style(window):
    """The application's style sheet sets every widget's font size; the counters must still be large."""
    live = window.live
    window.show_view(live)
    for big in (live.rep_count, live.cur_angle):
        assert big.value.fontInfo().pointSize() == big.size_pt > 2 * big.caption.fontInfo().pointSize()


def test_biofeedback_angle_ticks_carry_the_degree_sign(window):
    """The patient's plot has no axis title: its numbers say they are degrees."""
    axis = window.biofeedback.plot.getPlotItem().getAxis("left")
    assert axis.tickStrings([-10.0, 0.0, 35.0, 70.0], 1.0, 5.0) == ["-10°", "0°", "35°", "70°"]


def test_trial_monitor_shows_what_the_task_is_about(window):
    """A sway test: the stabilogram; a bend: the repetitions counted on a chart to 90°; a pelvic tilt: its
    repetitions on a chart of ±40°, where its 10° tilts are not flattened to the axis; a waiter's bow (the
    pelvis tilts 50°) on the bend's chart; a leg task with a still back: the trunk's angle now, or with shank
    sensors the knee's repetitions."""
    from lumbar_gui.views.trial_monitor import (BEND_RANGE_DEG, KNEE_RANGE_DEG, SMALL_RANGE_DEG, Monitoring,
                                                monitor_mode)

    assert monitor_mode({"sway": True}) == Monitoring("sway", "trunk_flexion", 1, SMALL_RANGE_DEG)
    assert monitor_mode({"principal": "trunk_flexion"}) == Monitoring("repetitions", "trunk_flexion", 1,
                                                                      BEND_RANGE_DEG)
    assert monitor_mode({"principal": "trunk_flexion", "rise_and_sit": True}).per_rep == 2
    assert monitor_mode({"principal": "pelvic_tilt", "target_deg": 5}) == Monitoring("repetitions", "pelvic_tilt",
                                                                                     1, SMALL_RANGE_DEG)
    assert monitor_mode({"principal": "pelvic_tilt", "target_deg": 50}).y_range == BEND_RANGE_DEG
    assert monitor_mode({"controlled": "lumbar_flexion"}) == monitor_mode(None) == Monitoring("angles", "trunk_flexion")
    # rocking: the pelvic tilt's repetitions both ways from rest
    assert monitor_mode({"principal": "pelvic_tilt", "opposite_direction": "forward"}).both_directions
    assert not monitor_mode({"principal": "pelvic_tilt"}).both_directions
    # with thigh sensors the plan's with_thighs applies: a bow or a rock is counted on the hips' own angle
    bow = {"principal": "pelvic_tilt", "target_deg": 50, "with_thighs": {"principal": "hip_flexion"}}
    assert monitor_mode(bow).angle == "pelvic_tilt" and not monitor_mode(bow).hips
    # … and each thigh is judged against the angle it replaces, with the sign the plans imply (the bow's +1,
    # rocking's −1: the pelvis tilts back as the hips flex)
    assert monitor_mode(bow, thighs=True) == Monitoring("repetitions", "hip_flexion", 1, BEND_RANGE_DEG, hips=True,
                                                        standin="pelvic_tilt", thigh_sign=1)
    rocking = {"principal": "pelvic_tilt", "first_sign": -1, "opposite_direction": "forward",
               "with_thighs": {"principal": "hip_flexion", "first_sign": 1}}
    assert monitor_mode(rocking, thighs=True).thigh_sign == -1 and monitor_mode(rocking).thigh_sign == 0
    assert monitor_mode({"principal": "trunk_flexion"}, thighs=True).angle == "trunk_flexion"  # no with_thighs
    # a knee test: the trunk's angle now without shank sensors, the knee's repetitions with them
    knee = {"controlled": "lumbar_flexion", "with_shanks": {"principal": "knee_flexion", "target_deg": 40}}
    assert monitor_mode(knee) == Monitoring("angles", "trunk_flexion")
    assert monitor_mode(knee, thighs=True, shanks=True) == Monitoring("repetitions", "knee_flexion", 1, KNEE_RANGE_DEG,
                                                                      hips=True, knees=True)
    mon = window.assessment.monitor
    shown = {"stabilogram": mon.stabilogram, "count": mon.count, "angle": mon.angle_now}
    for what, target, visible, caption, count_caption in (
            (Monitoring("sway", "trunk_flexion"), 0, {"stabilogram"}, None, None),
            (Monitoring("repetitions", "trunk_flexion", 1, BEND_RANGE_DEG), 4, {"count", "angle"},
             "trunk flexion now", "of 4 repetitions"),
            (Monitoring("repetitions", "pelvic_tilt"), 0, {"count", "angle"}, "pelvic tilt now", "repetitions"),
            (Monitoring("angles", "trunk_flexion"), 10, {"angle"}, "trunk flexion now", None),
            (Monitoring("repetitions", "hip_flexion", 1, BEND_RANGE_DEG, hips=True), 5, {"count", "angle"},
             "hip flexion now", "of 5 repetitions"),
            (Monitoring("repetitions", "knee_flexion", 1, KNEE_RANGE_DEG, knees=True), 10, {"count", "angle"},
             "knee flexion now", "of 10 repetitions")):
        mon.start(what, target)
        # the hip's curve is drawn and named only with thigh sensors, the knee's only with shank sensors
        assert [c.isVisible() for c in mon.chart.curves] == [True, True, True, what.hips, what.knees]
        assert ("hip flexion" in mon.chart.titleLabel.text) == what.hips
        assert ("knee flexion" in mon.chart.titleLabel.text) == what.knees
        assert {k for k, w in shown.items() if w.isVisibleTo(mon)} == visible, what
        assert tuple(mon.chart.vb.viewRange()[1]) == what.y_range
        assert all(c.boundingRect().top() == what.y_range[0] and c.boundingRect().bottom() == what.y_range[1]
                   for c in mon.chart.curves)
        if caption:
            assert mon.angle_now.caption.text() == caption
        if count_caption:
            assert mon.count.caption.text() == count_caption
        assert mon.target == (target if what.mode == "repetitions" else 0)
    mon.stop()
    assert not mon.isVisibleTo(window.assessment)


def test_the_application_imports_no_numerical_library_before_its_window_shows():
    """Start-up to the first live plot has a 3 s budget: the window's modules import none of scipy, h5py, numba
    or the metrics (scipy.signal and .stats alone take 0.5-2 s); those load on background threads or in the
    reader's process when needed. Checked in a fresh interpreter."""
    import os
    import subprocess
    import sys

    heavy = ("scipy", "h5py", "numba", "lumbar.metrics", "lumbar.analysis")
    code = ("import sys, lumbar_gui.app, lumbar_gui.views.trial_monitor; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"imported at start-up: {out.stdout.strip()}"


def test_the_patient_is_steady_only_when_no_worn_sensor_turns(qtbot):
    """The trial's still phase waits for the patient to be still: the trunk's sagittal angles steady, and no worn
    sensor tilting, a thigh as the patient sits down included (the trunk's angles do not see it); an
    accelerometer's noise is not a movement."""
    import math
    from types import SimpleNamespace

    from lumbar.acquisition.bus import LiveBus
    from lumbar.types import ImuBatch
    from lumbar_gui.processing import DERIVED_COLUMNS
    from lumbar_gui.views.trial_monitor import STEADY_TOL_DEG, TrialMonitor

    bus = LiveBus()
    m = TrialMonitor(SimpleNamespace(bus=bus, processor=None))
    qtbot.addWidget(m)
    t = np.arange(0, 300) / 100.0  # 3 s at 100 Hz
    m._recent = (t, np.zeros((t.size, len(DERIVED_COLUMNS))))  # the trunk's angles: perfectly steady
    rng = np.random.default_rng(1)

    def push(sid: str, tilt_rad: np.ndarray) -> None:
        ring = bus.rings.get(sid) or bus.add_sensor(sid, 100.0)
        acc = 9.81 * np.stack([np.sin(tilt_rad), np.cos(tilt_rad), np.zeros(t.size)], 1)
        acc += rng.normal(0.0, 0.03, acc.shape)  # ≈ 3 mg of noise, a cheap accelerometer's
        ring.push(ImuBatch(sid, t, np.full(t.size, np.nan), acc, np.zeros((t.size, 3)), np.arange(t.size),
                           np.zeros(t.size, np.uint8)))

    for sid in ("lumbar", "sacrum", "thigh_left"):
        push(sid, np.zeros(t.size))
    assert m.steady(0.0)
    assert not m.steady(2.5)  # not yet STEADY_S of data after the moment asked about
    # the right thigh still turning as the patient sits down: 3 × the tolerance over the last half second
    turning = np.zeros(t.size)
    turning[-50:] = np.linspace(0.0, math.radians(3 * STEADY_TOL_DEG), 50)
    push("thigh_right", turning)
    assert not m.steady(0.0)
    # in the trunk's angles alone the patient looks steady: the thigh is what tells
    bus.rings.pop("thigh_right")
    assert m.steady(0.0)


def test_the_trial_monitor_shows_angles_from_the_start_position(qtbot):
    """Lying prone the trunk is 90° from the standing zero, and a shank 90° more: from the still phase on the
    chart and the read-out start from the start position, so the trial's movements are seen at the chart's
    scale. The knee that moves is chosen from there too: measured from the standing zero both knees are 90°
    away sitting (thigh sensors worn), and the resting knee would seem the farther as the other straightens."""
    import math
    from types import SimpleNamespace

    from lumbar.acquisition.bus import LiveBus
    from lumbar_gui.processing import COL, DERIVED_COLUMNS, SeriesRing
    from lumbar_gui.views.trial_monitor import ANGLES, KNEE_RANGE_DEG, Monitoring, TrialMonitor

    series = SeriesRing(DERIVED_COLUMNS, 6000)
    m = TrialMonitor(SimpleNamespace(bus=LiveBus(), processor=SimpleNamespace(series=series, rate_hz=100.0)))
    qtbot.addWidget(m)
    m.start(Monitoring("repetitions", "knee_flexion", 1, KNEE_RANGE_DEG, knees=True), 10)
    m.show()
    # the live series' knee that moves is chosen from the standing zero: lying prone, the resting knee (its
    # shank 90° from standing) would be "farther" than the bending one; the monitor chooses from the start
    prone = {"pelvic_tilt": 88.0, "trunk_flexion": 91.0, "lumbar_flexion": -3.0, "knee_flexion": 90.0,
             "knee_flexion_left": 90.0, "knee_flexion_right": 90.0}

    def push(t0: float, seconds: float, knee_bend_deg: float = 0.0) -> None:
        t = t0 + np.arange(int(seconds * 100)) / 100.0
        x = np.full((t.size, len(DERIVED_COLUMNS)), np.nan)
        for name, deg in prone.items():
            x[:, COL[name]] = math.radians(deg)
        x[:, COL["knee_flexion_right"]] += math.radians(knee_bend_deg) * np.sin(np.pi * (t - t0) / seconds) ** 2
        # the live series' choice: the side farther from the standing zero (the resting left knee, here)
        side = np.abs(x[:, COL["knee_flexion_right"]]) > np.abs(x[:, COL["knee_flexion_left"]])
        x[:, COL["knee_flexion"]] = np.where(side, x[:, COL["knee_flexion_right"]], x[:, COL["knee_flexion_left"]])
        series.push(t, x)
        m.refresh()

    push(0.0, 2.0)  # getting into position: the standing zero's angles
    assert m._zero is None
    m.hold_still(2.0)
    zero = dict(zip(DERIVED_COLUMNS, np.degrees(m._zero)))
    assert zero["trunk_flexion"] == pytest.approx(91.0) and zero["knee_flexion_left"] == pytest.approx(90.0)
    assert zero["hip_flexion"] == 0.0  # not worn: nothing to take away
    assert m.chart.buf.total == 0  # the chart restarts from the start position
    push(2.0, 5.0)  # the still phase
    m.go(7.0)
    push(7.0, 3.0, knee_bend_deg=-60.0)  # the right knee straightens, sitting
    _, drawn = m.chart.buf.view()
    knee = np.degrees(drawn[:, ANGLES.index("knee_flexion")])
    assert abs(knee[0]) < 1e-9 and knee.min() == pytest.approx(-60.0, abs=0.1)  # from the start position
    assert np.abs(np.degrees(drawn[:, ANGLES.index("trunk_flexion")])).max() < 1e-9
    assert abs(math.degrees(m.counter.base)) < 1e-6  # the count's rest level: the same start position
    assert m.repetitions == 1


def test_biofeedback_angles_start_with_their_own_band(window):
    """Choosing another angle gives its starting band (a hip hinge: the waiter's bow's 50-70°; a pelvic tilt:
    5-15°), but a band the therapist set is kept."""
    b = window.biofeedback
    band = lambda: (b.lo.value(), b.hi.value())  # noqa: E731
    assert b.signal.currentData() == "trunk_flexion" and band() == (30.0, 45.0)
    b.signal.setCurrentIndex(b.signal.findData("hip_flexion"))
    assert band() == (50.0, 70.0) and b.band.getRegion() == (50.0, 70.0)
    b.signal.setCurrentIndex(b.signal.findData("pelvic_tilt"))
    assert band() == (5.0, 15.0)
    b.hi.setValue(12)  # the therapist's own
    b.signal.setCurrentIndex(b.signal.findData("lumbar_flexion"))
    assert band() == (5.0, 12.0)
