"""Screenshots of every view from a real window: the application on an X server (Xvfb), Qt's xcb platform.

The test session itself runs offscreen, so the application runs in a subprocess (this file run as a
script) with ``QT_QPA_PLATFORM=xcb`` on a private Xvfb display. It connects the demo sensors, does an
assessment (quiet standing + flexion), a biofeedback session and opens the flexion trial in Review,
grabs each view from the X server (``QScreen.grabWindow``), and writes the pictures with a manifest of
what it saw (widget geometry, texts and whether they fit). The test then checks every picture.

With ``LUMBAR_WRITE_DOC_IMAGES=1`` the pictures that passed are copied to ``docs/images/gui-*.png``,
the user guide's screenshots. Skips, saying why, when Xvfb or the system libraries of Qt's xcb plugin
are missing (Debian: ``apt-get install xvfb`` plus the packages in ``XCB_PACKAGES``).
"""
from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

VIEWS = ("devices", "live", "assessment", "biofeedback", "review")
#: Every picture: one of each view, and the assessment during a trial (its monitor).
PICTURES = VIEWS + ("assessment-trial",)
#: Debian packages that Qt 6's xcb platform plugin (PySide6 wheels) needs at run time.
XCB_PACKAGES = ("libxcb-cursor0", "libxcb-icccm4", "libxcb-image0", "libxcb-keysyms1", "libxcb-randr0",
                "libxcb-render-util0", "libxcb-shape0", "libxcb-shm0", "libxcb-sync1", "libxcb-xfixes0",
                "libxcb-xkb1", "libxkbcommon-x11-0", "libx11-xcb1", "libegl1", "libgl1", "libfontconfig1",
                "fonts-dejavu-core")
WINDOW = (1440, 900)
SCREEN = "1920x1080x24"


# ================================================================================================
# The application side (runs in the subprocess, on the xcb platform)
# ================================================================================================
def _drive(out: Path, sessions: Path) -> None:  # pragma: no cover - runs in the subprocess
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication, QHeaderView, QLabel, QTableWidget

    from lumbar_gui.app import MainWindow
    from lumbar_gui.widgets import apply_style

    import inspect

    app = QApplication([sys.argv[0]])
    apply_style(app)
    params = inspect.signature(MainWindow).parameters
    win = MainWindow(sessions_dir=sessions, **({"emulated": True} if "emulated" in params else {"demo_speed": 6.0}))
    win.resize(*WINDOW)
    win.move(0, 0)
    win.show()
    if not QTest.qWaitForWindowExposed(win, 20000):
        raise RuntimeError("the window was never exposed on the X display")

    def wait_until(what: str, pred, timeout_s: float = 300.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not pred():
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")
            QTest.qWait(20)

    def rect(w) -> list[int]:
        p = w.mapTo(win, QPoint(0, 0))
        return [p.x(), p.y(), w.width(), w.height()]

    def label(w: QLabel) -> dict:
        text = w.text()
        fits = w.wordWrap() or w.sizeHint().width() <= w.width()
        return {"text": text, "rect": rect(w), "visible": w.isVisible() and not w.visibleRegion().isEmpty(),
                "fits": bool(fits)}

    def table(t: QTableWidget) -> dict:
        """Rows, and the columns narrower than their contents or header need (drawn elided); a column that
        wraps its text (the stretching one of a table that wraps, its rows as tall as their text) is cut where
        a row is lower than its text."""
        head = t.horizontalHeader()
        fitted = t.verticalHeader().sectionResizeMode(0) == QHeaderView.ResizeMode.ResizeToContents

        def wraps(c: int) -> bool:
            return fitted and t.wordWrap() and head.sectionResizeMode(c) == QHeaderView.ResizeMode.Stretch

        cut = [t.horizontalHeaderItem(c).text() for c in range(t.columnCount())
               if head.sectionSizeHint(c) > t.columnWidth(c)
               or (not wraps(c) and t.sizeHintForColumn(c) > t.columnWidth(c))
               or (wraps(c) and any(t.sizeHintForRow(r) > t.rowHeight(r) for r in range(t.rowCount())))]
        return {"rows": t.rowCount(), "rect": rect(t), "cut": cut, "visible": t.isVisible(),
                "headers": [t.horizontalHeaderItem(c).text() for c in range(t.columnCount())],
                "rows_shown": all(t.visualRect(t.model().index(r, 0)).bottom() <= t.viewport().height()
                                  for r in range(t.rowCount()))}

    def charts(view, items) -> list:
        """[title, whole] of each plot item of a pyqtgraph scene: whole = inside the view (none cut off)."""
        out = []
        for it in items:
            r = view.mapFromScene(it.sceneBoundingRect()).boundingRect()
            vp = view.viewport()
            out.append([it.titleLabel.text, r.left() >= -1 and r.top() >= -1 and r.right() <= vp.width() + 1
                        and r.bottom() <= vp.height() + 1])
        return out

    manifest: dict = {"platform": app.platformName(), "views": {}}

    def shot(name: str, view, facts=lambda: {}) -> None:
        """Show the view, let it paint, hold it still (no refresh timer), grab it from the X server; then
        ``facts()`` describes exactly what was grabbed."""
        win.show_view(view)
        view.refresh()
        QTest.qWait(300)  # laid out, painted and flushed to the X server
        timer = getattr(win, "timer", None)
        if timer is not None:
            timer.stop()
        view.refresh()
        win.repaint()
        app.processEvents()
        pix = win.screen().grabWindow(win.winId())
        path = out / f"gui-{name}.png"
        if not pix.save(str(path)):
            raise RuntimeError(f"could not save {path}")
        v = facts()
        v.update(file=path.name, size=[pix.width(), pix.height()], dpr=pix.devicePixelRatio(),
                 window=[win.width(), win.height()], nav=win.nav.currentItem().text(),
                 current=win.stack.currentWidget().title)
        manifest["views"][name] = v
        if timer is not None:
            timer.start()

    # -- devices: connect the demo sensors (L1, S1) --------------------------------------------------
    wait_until("the scan", lambda: len(win.devices.entries) >= 4 and not getattr(win.engine, "scanning", False))
    for row, pl in enumerate(("lumbar", "sacrum")):
        win.devices.assign(row, pl)
    if not win.devices.connect_assigned():
        raise RuntimeError("the demo sensors did not connect")
    wait_until("data from both sensors", lambda: all(win.engine.bus.rings[p].total > 200 for p in ("lumbar", "sacrum")))
    wait_until("the live processing", lambda: win.engine.processor is not None and win.engine.processor.ready.is_set()
               and win.engine.processor.series.total > 50)
    shot("devices", win.devices, lambda: {"table": table(win.devices.table), "diagram": rect(win.devices.diagram),
                                          "diagram_states": win.devices.diagram.states})

    # -- assessment: quiet standing + flexion; the live view during the flexion set --------------------------
    a = win.assessment
    from tests.gui.conftest import plant_earlier_visit

    plant_earlier_visit(sessions / "S017")  # last month's visit: the results compare with it
    win.show_view(a)
    a.subject.setText("S017")
    a.operator.setText("AB")
    a.protocol.setCurrentIndex(0)
    if not a.begin():
        raise RuntimeError(f"the assessment did not begin: {a.sub.text()}")
    wait_until("the sensor check", a.action_btn.isEnabled)
    a.action()  # -> calibration
    a.action()  # start calibration
    wait_until("the calibration", lambda: a.calibration is not None)
    a.action()  # -> trial 1
    a.action()  # start trial 1
    wait_until("trial 1's results", lambda: a._phase == "result")
    a.note.setText("patient comfortable")
    a.add_note()
    a.action()  # -> trial 2
    a.action()  # start the flexion set
    wait_until("the flexion set", lambda: a._phase == "moving")
    wait_until("a repetition on the trial monitor", lambda: a.monitor.repetitions >= 1)
    mon = a.monitor
    shot("assessment-trial", a, lambda: {"step": a.step, "monitor": rect(mon), "count": label(mon.count.value),
                                         "count_value": mon.repetitions, "charts": charts(mon.plots, [mon.chart]),
                                         "chart": rect(mon.plots), "countdown": label(a.countdown)})
    win.show_view(win.live)
    wait_until("two repetitions", lambda: len(win.engine.repetitions) >= 2)
    lv = win.live
    shot("live", lv, lambda: {"raw_charts": charts(lv.raw_plots, [c for _, _, *cs in lv._raw.values() for c in cs]),
                              "kin_charts": charts(lv.kin_plots, [lv.angles, lv.tilts])})
    win.show_view(a)
    wait_until("trial 2's results", lambda: a._phase == "result")
    a.action()  # -> results
    shot("assessment", a, lambda: {"step": a.step, "table": table(a.table), "step_title": label(a.step_title),
                                   "subtitle": label(a.sub), "verdict": label(a.countdown)})

    # -- biofeedback ---------------------------------------------------------------------------------------
    b = win.biofeedback
    win.show_view(b)
    b.subject.setText("S017")
    b.lo.setValue(35)
    b.hi.setValue(70)
    b.goal.setValue(10)
    b.speed.setValue(90)  # the demo patient bends at 55-70 deg/s: within this limit
    if b.start_session() is None:
        raise RuntimeError(f"the biofeedback session did not start: {b.msg.text()}")
    win.engine.source.perform("flexion", 60.0, reps=5)
    wait_until("three repetitions with feedback", lambda: b.count >= 3)
    # the moment the marker is in the band, rising or falling (as a patient sees it mid-repetition)
    lo, hi = 35.0, 70.0
    wait_until("the marker in the band", lambda: (b.refresh() or True) and lo + 3 < b.marker.data["y"][0] < hi - 3, 60.0)
    vb = b.plot.getPlotItem().vb

    def to_window(x: float, y: float) -> QPoint:
        return b.plot.viewport().mapTo(win, b.plot.mapFromScene(vb.mapViewToScene(QPointF(x, y))))

    def biofeedback_facts() -> dict:
        mx, my = float(b.marker.data["x"][0]), float(b.marker.data["y"][0])
        centre = to_window(mx, my)
        top, bot = to_window(mx, hi).y(), to_window(mx, lo).y()
        brush = b.marker.data["brush"][0] or b.marker.opts["brush"]  # one brush for all spots: in opts
        return {"count": label(b.count_label), "feedback": label(b.feedback), "angle": label(b.angle_label),
                "band_caption": label(b.band_caption), "marker_centre": [centre.x(), centre.y()], "marker_y": my,
                "marker_size": float(b.marker.opts["size"]), "marker_color": brush.color().name(),
                "band_y": [min(top, bot), max(top, bot)], "plot": rect(b.plot), "count_value": b.count,
                "goal": b.goal.value(), "feedback_text": b.feedback_text, "history": label(b.history),
                "history_colors": [c for _, c in b.verdicts]}

    shot("biofeedback", b, biofeedback_facts)
    b.stop_session()

    # -- review: the flexion trial -----------------------------------------------------------------------
    r = win.review
    win.show_view(r)
    r.open(a.files[1])
    wait_until("the session in Review", lambda: not r.busy and r.data is not None)
    r.recompute()
    wait_until("the recomputed metrics", lambda: not r.busy)
    r.set_cursor(12.0)
    doc = r.results.document()
    shot("review", r, lambda: {"readout": label(r.readout), "info": label(r.info), "plots": rect(r.glw),
                               "curves": sum(len(p.listDataItems()) for p in (r.p_angles, r.p_tilt, r.p_raw)),
                               "results_overflow_px": doc.size().width() - r.results.viewport().width(),
                               "downsampled": [[d.opts["autoDownsample"], d.opts["downsampleMethod"], d.opts["clipToView"]]
                                               for p in (r.p_angles, r.p_tilt, r.p_raw) for d in p.listDataItems()]})
    win.close()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))


# ================================================================================================
# The test side (offscreen pytest session)
# ================================================================================================
if __name__ != "__main__":
    import numpy as np
    import pytest

    from lumbar_gui.widgets import AXIS_COLORS, COLORS, TILT_COLORS
    from tests.gui.conftest import DOC_IMAGES

    pytestmark = pytest.mark.slow

    @pytest.fixture(scope="module")
    def xvfb_display(tmp_path_factory):
        """A private X display (Xvfb), or a skip saying what is missing."""
        exe = shutil.which("Xvfb")
        if exe is None:
            pytest.skip("Xvfb is not installed (Debian: apt-get install xvfb); the real-window screenshots need it")
        rfd, wfd = os.pipe()
        log = tmp_path_factory.mktemp("xvfb") / "xvfb.log"
        with open(log, "wb") as err:
            proc = subprocess.Popen([exe, "-displayfd", str(wfd), "-screen", "0", SCREEN, "-dpi", "96",
                                     "-nolisten", "tcp", "-noreset"], pass_fds=(wfd,), stdout=subprocess.DEVNULL,
                                    stderr=err)
        os.close(wfd)
        try:
            # Xvfb writes the number, then a newline, once it accepts connections; read up to the newline
            # (closing the pipe earlier makes its second write fail, and the server exit)
            number, deadline = b"", time.monotonic() + 30.0
            while not number.endswith(b"\n") and time.monotonic() < deadline:
                ready, _, _ = select.select([rfd], [], [], max(0.0, deadline - time.monotonic()))
                chunk = os.read(rfd, 64) if ready else b""
                if not chunk:
                    break
                number += chunk
            os.close(rfd)
            number = number.decode().strip()
            if not number or proc.poll() is not None:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                pytest.skip(f"Xvfb did not start: {log.read_text(errors='replace')[-500:]}")
            display = f":{number}"
            _skip_unless_xcb_loads(display)
            yield display
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def _xcb_env(display: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "QT_SCALE_FACTOR")}
        env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb", QT_ENABLE_HIGHDPI_SCALING="0", LC_ALL="C.UTF-8",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                           env.get("PYTHONPATH", "")])))
        return env

    def _missing_xcb_libraries() -> list[str]:
        import PySide6

        plugin = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if shutil.which("ldd") is None or not plugin.exists():
            return []
        out = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True).stdout
        return sorted({ln.split("=>")[0].strip() for ln in out.splitlines() if "not found" in ln})

    def _skip_unless_xcb_loads(display: str) -> None:
        probe = ("import sys; from PySide6.QtGui import QGuiApplication; "
                 "app = QGuiApplication(sys.argv[:1]); print(app.platformName())")
        res = subprocess.run([sys.executable, "-c", probe], env=_xcb_env(display), capture_output=True, text=True,
                             timeout=120)
        if res.returncode == 0 and res.stdout.strip() == "xcb":
            return
        missing = _missing_xcb_libraries()
        lines = [ln.strip() for ln in res.stderr.splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "xcb" in ln and "plugin" in ln), lines[0] if lines else "no output")
        why = f"missing {', '.join(missing)}" if missing else detail
        pytest.skip(f"Qt's xcb platform plugin does not load on Xvfb ({why}); "
                    f"Debian: apt-get install {' '.join(XCB_PACKAGES)}")

    def _pixels(path: Path) -> np.ndarray:
        """(h, w, 3) uint8 RGB of a PNG."""
        from PySide6.QtGui import QImage

        img = QImage(str(path))
        assert not img.isNull(), path
        img = img.convertToFormat(QImage.Format.Format_RGB888)
        h, w, bpl = img.height(), img.width(), img.bytesPerLine()
        return np.frombuffer(img.constBits(), np.uint8, count=h * bpl).reshape(h, bpl)[:, : 3 * w].reshape(h, w, 3).copy()

    def _rgb(hex_color: str) -> np.ndarray:
        h = hex_color.lstrip("#")
        return np.array([int(h[i:i + 2], 16) for i in (0, 2, 4)], dtype=int)

    def _share_of(img: np.ndarray, color: str, tol: int = 40) -> float:
        return float((np.abs(img.astype(int) - _rgb(color)).sum(axis=2) <= tol).mean()) if img.size else 0.0

    def _crop(img: np.ndarray, r: list[int]) -> np.ndarray:
        x, y, w, h = r
        return img[max(y, 0):y + h, max(x, 0):x + w]

    @pytest.fixture(scope="module")
    def shots(xvfb_display, tmp_path_factory):
        """Run the application on the X display once; its pictures and manifest."""
        out = tmp_path_factory.mktemp("xvfb-shots")
        res = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(out), str(out / "sessions")],
                             env=_xcb_env(xvfb_display), capture_output=True, text=True, timeout=900,
                             cwd=str(Path(__file__).resolve().parents[2]))
        assert res.returncode == 0, f"the application run failed:\n{res.stderr[-4000:]}"
        manifest = json.loads((out / "manifest.json").read_text())
        return out, manifest

    def test_the_application_ran_in_a_real_x_window(shots):
        out, manifest = shots
        assert manifest["platform"] == "xcb"
        assert set(manifest["views"]) == set(PICTURES)

    def test_each_view_picture_is_the_window_and_not_blank(shots):
        out, manifest = shots
        for name in VIEWS:
            v = manifest["views"][name]
            assert v["current"].lower() == name and v["nav"] == v["current"], v
            img = _pixels(out / v["file"])
            h, w, _ = img.shape
            assert (w, h) == tuple(v["size"]) == tuple(round(s * v["dpr"]) for s in v["window"]), (name, w, h, v)
            # the window keeps the size asked for: no view's minimum size forces it wider (cut-off layouts)
            assert tuple(v["window"]) == WINDOW, (name, v["window"])
            # not blank: many colours, and the page holds more than its background
            assert len(np.unique(img[::3, ::3].reshape(-1, 3), axis=0)) > 50, name
            page = img[:, 200:]
            assert 1.0 - _share_of(page, "#f4f6f8", tol=6) > 0.3, name
            # the navigation shows the view as selected (its row highlighted)
            assert _share_of(img[:, :190], "#2b3f4e", tol=6) > 0.005, name

    def test_views_differ_from_each_other(shots):
        out, manifest = shots
        imgs = {n: _pixels(out / manifest["views"][n]["file"]) for n in VIEWS}
        for i, a in enumerate(VIEWS):
            for b in VIEWS[i + 1:]:
                x, y = imgs[a], imgs[b]
                hh, ww = min(x.shape[0], y.shape[0]), min(x.shape[1], y.shape[1])
                differ = (np.abs(x[:hh, 200:ww].astype(int) - y[:hh, 200:ww]).sum(axis=2) > 30).mean()
                assert differ > 0.05, (a, b, differ)  # the same page twice would differ by ~0

    def test_assessment_results_are_whole(shots):
        out, manifest = shots
        v = manifest["views"]["assessment"]
        assert v["step"] == "results"
        assert v["table"]["rows"] >= 5 and v["table"]["cut"] == [], v["table"]
        assert v["table"]["visible"] and v["table"]["rows_shown"], v["table"]
        assert v["verdict"]["text"].endswith(" passed"), v["verdict"]
        assert "last visit" in v["table"]["headers"], v["table"]
        for key in ("step_title", "subtitle", "verdict"):
            assert v[key]["visible"] and v[key]["fits"], v[key]
        img = _pixels(out / v["file"])
        # "pass" / "met" in green in the results table
        assert _share_of(_crop(img, v["table"]["rect"]), "#2e7d32", tol=60) > 0.0005

    def test_assessment_trial_monitor_shows_the_set(shots):
        """During the flexion set the step shows the sagittal angles and the repetitions counted so far."""
        out, manifest = shots
        v = manifest["views"]["assessment-trial"]
        assert v["step"] == "trial" and v["countdown"]["text"].startswith("Go!"), v
        assert v["monitor"][3] >= 200, v["monitor"]  # a chart one can read, not a strip
        assert all(whole for _, whole in v["charts"]), v["charts"]
        assert v["count"]["text"] == str(v["count_value"]) and v["count_value"] >= 1 and v["count"]["fits"]
        assert v["count"]["rect"][3] >= 40, v["count"]  # big enough to read at a glance
        img = _pixels(out / v["file"])
        chart = _crop(img, v["chart"])
        for c in (AXIS_COLORS[0], *TILT_COLORS):  # lumbar flexion, pelvic tilt, trunk flexion
            assert _share_of(chart, c, tol=40) > 0.001, c

    def test_biofeedback_is_readable_from_a_distance(shots):
        out, manifest = shots
        v = manifest["views"]["biofeedback"]
        img = _pixels(out / v["file"])
        # the marker: large, drawn where the manifest says, in the in-band colour, inside the band
        assert v["marker_size"] >= 48
        cx, cy = v["marker_centre"]
        patch = img[cy - 8:cy + 9, cx - 8:cx + 9]
        assert _share_of(patch, v["marker_color"], tol=40) > 0.8, (v["marker_color"], patch[8, 8])
        assert (v["band_y"][0] < cy < v["band_y"][1]) == (35 < v["marker_y"] < 70), v  # marker and band agree
        # the band itself is tinted green over most of its height in the plot
        px, py, pw, ph = v["plot"]
        band = img[v["band_y"][0] + 4:v["band_y"][1] - 4, px + pw // 4:px + pw // 2]
        assert band.size and float((band[..., 1].astype(int) - band[..., 0] > 15).mean()) > 0.5
        # the count and the feedback are big (≥ 60 px / ≥ 40 px glyphs) and shown whole
        assert v["count"]["text"] == f"{v['count_value']} / {v['goal']}" and v["count"]["fits"]
        assert v["count"]["rect"][3] >= 80 and v["feedback"]["rect"][3] >= 40
        assert v["feedback_text"] in ("In band — well done", "Too far", "Not far enough", "Too fast — slow down")
        assert v["feedback"]["visible"] and v["feedback"]["rect"][2] >= 300
        assert v["angle"]["text"].endswith("°") and v["angle"]["fits"]
        assert _share_of(_crop(img, v["count"]["rect"]), "#00796b", tol=40) > 0.03
        # a dot per repetition under the verdict, in the verdicts' colours, shown whole
        assert v["history"]["text"].count("●") == v["count_value"] and v["history"]["visible"], v["history"]
        dots = _crop(img, v["history"]["rect"])
        for c in set(v["history_colors"]):
            assert _share_of(dots, c, tol=40) > 0.002, c

    def test_devices_figure_shows_the_streaming_placements(shots):
        out, manifest = shots
        v = manifest["views"]["devices"]
        assert v["diagram_states"] == {"lumbar": "streaming", "sacrum": "streaming"}
        assert v["diagram"][2] >= 200 and v["diagram"][3] >= 250, v["diagram"]  # big enough to read
        fig = _crop(_pixels(out / v["file"]), v["diagram"])
        assert _share_of(fig, COLORS["ok"], tol=40) > 0.002  # the two green sensors are drawn
        assert v["table"]["cut"] == [] and v["table"]["rows"] == 6, v["table"]  # the six demo sensors

    def test_live_charts_are_whole(shots):
        out, manifest = shots
        v = manifest["views"]["live"]
        assert len(v["raw_charts"]) == 4 and len(v["kin_charts"]) == 2  # L1 and S1: acceleration, angular rate
        for title, whole in v["raw_charts"] + v["kin_charts"]:
            assert whole, f"a chart is cut off at the edge of its panel: {title}"
        img = _pixels(out / v["file"])
        for c in AXIS_COLORS:  # the three axes are drawn, each in its colour
            assert _share_of(img[:, 200:], c, tol=40) > 0.0005, c

    def test_review_shows_signals_and_readable_results(shots):
        out, manifest = shots
        v = manifest["views"]["review"]
        assert v["curves"] >= 8  # 3 lumbar angles, pelvic tilt, trunk flexion, 3 raw axes
        # long sessions stay light: every curve drawn only where visible, peak-decimated to the pixel width
        assert v["downsampled"] and all(d == [True, "peak", True] for d in v["downsampled"]), v["downsampled"]
        assert v["readout"]["visible"] and v["readout"]["fits"], v["readout"]
        assert v["results_overflow_px"] <= 2, "the results are wider than their panel: text is cut off"
        img = _pixels(out / v["file"])
        plots = _crop(img, v["plots"])
        for c in (AXIS_COLORS[0], AXIS_COLORS[1], TILT_COLORS[0]):  # flexion, raw y, pelvic tilt are drawn
            assert _share_of(plots, c, tol=40) > 0.001, c
        assert _share_of(plots, "#d32f2f", tol=40) > 0.0005  # the red cursor

    def test_pictures_go_to_the_user_guide_when_asked(shots, request):
        """With LUMBAR_WRITE_DOC_IMAGES=1 the checked pictures become docs/images/gui-*.png (last in this file)."""
        out, manifest = shots
        guide = (DOC_IMAGES.parent / "user-guide.md").read_text(encoding="utf-8")
        for name in PICTURES:
            assert f"images/gui-{name}.png" in guide, name
        if os.environ.get("LUMBAR_WRITE_DOC_IMAGES"):
            if request.session.testsfailed:
                pytest.fail("docs/images left as they were: a check of the pictures failed")
            DOC_IMAGES.mkdir(parents=True, exist_ok=True)
            for name in PICTURES:
                shutil.copyfile(out / manifest["views"][name]["file"], DOC_IMAGES / f"gui-{name}.png")


if __name__ == "__main__":  # pragma: no cover - the application side, started by the test
    _out, _sessions = Path(sys.argv[1]), Path(sys.argv[2])
    _out.mkdir(parents=True, exist_ok=True)
    _drive(_out, _sessions)
