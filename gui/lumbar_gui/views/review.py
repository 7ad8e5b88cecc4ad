"""Review: open a session file (or drop it here), scrub and replay, markers, recompute metrics, report, export.

Reading and processing run in a worker thread; the view polls for the result. "Recompute metrics"
runs exactly what ``lumbar analyze`` runs (:func:`lumbar.analysis.analyze_file`, results stored in the file).
"""
from __future__ import annotations

import html
import json
import math
import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QSlider, QTextBrowser,
                               QVBoxLayout, QWidget)

from lumbar_gui.sources import placement_name
from lumbar_gui.widgets import AXIS_COLORS, COLORS, HIP_COLOR, KNEE_COLOR, TILT_COLORS, card, title_with_legend

RAD2DEG = 180.0 / math.pi
SESSION_SUFFIXES = (".h5", ".hdf5", ".lumbar")
#: (name, colour) of each plot's curves; the legend is drawn in the plot's title, never over the data.
ANGLE_CURVES = (("flexion +", AXIS_COLORS[0]), ("lateral bend (right +)", AXIS_COLORS[1]),
                ("rotation (left +)", AXIS_COLORS[2]))
#: The sagittal angles of the middle plot: (signal, name, colour); hip flexion only with thigh sensors, knee
#: flexion only with shank sensors.
SAGITTAL = (("pelvic_tilt", "pelvic tilt (anterior +)", TILT_COLORS[0]),
            ("trunk_flexion", "trunk flexion", TILT_COLORS[1]),
            ("hip_flexion", "hip flexion", HIP_COLOR),
            ("knee_flexion", "knee flexion", KNEE_COLOR))
TILT_CURVES = tuple((name, colour) for _, name, colour in SAGITTAL[:2])
RAW_CURVES = (("x", AXIS_COLORS[0]), ("y", AXIS_COLORS[1]), ("z", AXIS_COLORS[2]))
#: Short names for the markers drawn on the plots (the full list is in the results panel).
MARKER_NAMES = {"trial_start": "start", "calibration_start": "still", "calibration_quality": "calibration",
                "calibration_end": "go", "go": "go", "trial_end": "end", "trial_aborted": "stopped",
                "biofeedback_start": "start", "biofeedback_end": "end"}
#: Markers as the results panel names them (any other label: its words, capitalised).
MARKER_TEXT = {"trial_start": "Trial start", "calibration_start": "Calibration: still in the start position",
               "calibration_quality": "Calibration quality", "calibration_end": "Calibration done",
               "go": "Go (movement begins)", "trial_end": "Trial end", "trial_aborted": "Trial stopped",
               "biofeedback_start": "Biofeedback start", "biofeedback_end": "Biofeedback end",
               "feedback": "Repetition feedback", "note": "Operator note", "marker": "Operator marker",
               "disconnect": "Sensor link lost", "reconnect": "Sensor link back"}
#: Which of several markers at the same moment names the line.
MARKER_PRIORITY = ("go", "trial_start", "biofeedback_start", "trial_end", "biofeedback_end", "trial_aborted")
MARKER_GROUP_S = 0.5


def group_markers(events: list[Any], within_s: float = MARKER_GROUP_S) -> list[tuple[float, str, list[Any]]]:
    """Markers close in time as one line: (time, short name, the events). Labels on a plot never pile up."""
    groups: list[tuple[float, str, list[Any]]] = []
    for ev in sorted(events, key=lambda e: e.time_s):
        if groups and ev.time_s - groups[-1][2][0].time_s <= within_s:
            groups[-1][2].append(ev)
        else:
            groups.append((ev.time_s, "", [ev]))
    out = []
    for t, _, evs in groups:
        labels = [e.label for e in evs]
        main = next((lab for lab in MARKER_PRIORITY if lab in labels), labels[0])
        name = MARKER_NAMES.get(main, main.replace("_", " "))
        out.append((t, name, evs))  # the others at that moment: in the line's tooltip and the results panel
    return out


def marker_text(label: str) -> str:
    """A marker's label in words for the operator (the file keeps the label)."""
    return MARKER_TEXT.get(label, label.replace("_", " ").capitalize())


def marker_note(label: str, note: str) -> str:
    """A marker's note, unless the marker's words already say it (no "still …" twice on a line)."""
    return "" if note.strip().lower() in marker_text(label).lower() else note


def _load(path: Path) -> dict[str, Any]:
    """Read + process + analyse (worker thread)."""
    from lumbar.analysis import analyze, read_analysis
    from lumbar.pipeline import process_session
    from lumbar.storage import read_session

    session = read_session(path, load_truth=False)
    out: dict[str, Any] = {"session": session, "processed": None, "analysis": None, "error": None,
                           "stored": read_analysis(path)}
    try:
        processed = process_session(session, method="offline")
        analysis, processed = analyze(session, processed)
        out["processed"], out["analysis"] = processed, analysis
    except Exception as e:  # shown to the operator: the raw data are still reviewable
        out["error"] = f"{type(e).__name__}: {e}"
    return out


def _recompute(path: Path) -> dict[str, Any]:
    from lumbar.analysis import analyze_file

    return {"recomputed": analyze_file(path)}


class ReviewView(QWidget):
    title = "Review"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("page")
        self.setAcceptDrops(True)
        self.path: Path | None = None
        self.data: dict[str, Any] | None = None
        self.analysis: Any = None  # the last Analysis shown
        self._jobs: queue.Queue = queue.Queue()
        self._busy = False
        self._playing = False
        self._play_wall = 0.0
        self._play_t0 = 0.0
        self._marker_items: list[Any] = []
        #: (region, its number's label, plot) of each repetition the analysis counted (or rejected)
        self.rep_regions: list[tuple[Any, Any, Any]] = []
        self._angles: tuple[Any, dict[str, np.ndarray]] = (None, {})  # (processed, its angles in degrees)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 12, 16, 12)
        head = QHBoxLayout()
        t = QLabel("Review a session")
        t.setObjectName("title")
        head.addWidget(t)
        self.info = QLabel("Open a session file, or drop one here.")
        self.info.setObjectName("subtitle")
        head.addWidget(self.info, 1)
        self.open_btn = QPushButton("Open…")
        self.open_btn.setObjectName("primary")
        self.open_btn.clicked.connect(self.choose_file)
        self.recompute_btn = QPushButton("Recompute metrics")
        self.recompute_btn.clicked.connect(self.recompute)
        self.report_btn = QPushButton("Open report")
        self.report_btn.clicked.connect(self.open_report)
        self.export_btn = QPushButton("Export CSV…")
        self.export_btn.clicked.connect(self.choose_export)
        for b in (self.open_btn, self.recompute_btn, self.report_btn, self.export_btn):
            head.addWidget(b)
        outer.addLayout(head)

        body = QHBoxLayout()
        outer.addLayout(body, 1)
        left = QVBoxLayout()
        body.addLayout(left, 3)
        plot_card, pl = card("Signals and markers")
        self.glw = pg.GraphicsLayoutWidget()
        self.p_angles = self.glw.addPlot(row=0, col=0)
        self.p_tilt = self.glw.addPlot(row=1, col=0)
        self.p_raw = self.glw.addPlot(row=2, col=0)
        for p, title, unit, names in ((self.p_angles, "Lumbar angles", "angle (°)", ANGLE_CURVES),
                                      (self.p_tilt, "Pelvic tilt and trunk flexion", "angle (°)", TILT_CURVES),
                                      (self.p_raw, "Raw acceleration (first sensor)", "m/s²", RAW_CURVES)):
            p.setTitle(title_with_legend(title, names))
            p.showGrid(x=True, y=True, alpha=0.25)
            p.setLabel("left", unit)
            # long sessions: only the visible part is drawn, peak-decimated to the pixel width
            p.setClipToView(True)
            p.setDownsampling(auto=True, mode="peak")
            p.setMenuEnabled(False)
            p.getAxis("left").setWidth(52)
        self.p_raw.setLabel("bottom", "time", "s")
        for p in (self.p_angles, self.p_tilt):  # room above the highest peak for a repetition's number
            p.getViewBox().setDefaultPadding(0.12)
        self.p_tilt.setXLink(self.p_angles)
        self.p_raw.setXLink(self.p_angles)
        self.cursors = []
        for p in (self.p_angles, self.p_tilt, self.p_raw):
            c = pg.InfiniteLine(pos=0, angle=90, movable=True, pen=pg.mkPen(COLORS["rec"], width=2))
            c.sigPositionChanged.connect(self._cursor_moved)
            p.addItem(c)
            self.cursors.append(c)
        pl.addWidget(self.glw, 1)
        self.readout = QLabel("")
        self.readout.setStyleSheet("font-size: 11pt;")
        self.readout.setTextFormat(Qt.TextFormat.RichText)
        pl.addWidget(self.readout)
        scrub = QHBoxLayout()
        self.play_btn = QPushButton("▶ Play")
        self.play_btn.clicked.connect(self.toggle_play)
        self.speed = QComboBox()
        self.speed.addItems(["×1", "×2", "×4"])
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 1000)
        self.slider.valueChanged.connect(self._slider_moved)
        scrub.addWidget(self.play_btn)
        scrub.addWidget(self.speed)
        scrub.addWidget(self.slider, 1)
        pl.addLayout(scrub)
        left.addWidget(plot_card, 1)
        res_card, rl = card("Results")
        self.results = QTextBrowser()
        self.results.setOpenExternalLinks(False)
        # the text wraps to the panel's width; a pixel of rounding must not bring a sideways scroll bar
        self.results.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        rl.addWidget(self.results, 1)
        body.addWidget(res_card, 2)
        self._t_range = (0.0, 1.0)
        self._curves: dict[str, Any] = {}

    # -- opening -----------------------------------------------------------------------------------
    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open session", "", "Session files (*.h5 *.hdf5);;All files (*)")
        if path:
            self.open(path)

    def dragEnterEvent(self, e: Any) -> None:  # noqa: N802 (Qt name)
        urls = e.mimeData().urls() if e.mimeData().hasUrls() else []
        if any(u.toLocalFile().lower().endswith(SESSION_SUFFIXES) for u in urls):
            e.acceptProposedAction()

    def dropEvent(self, e: Any) -> None:  # noqa: N802
        for u in e.mimeData().urls():
            if u.toLocalFile().lower().endswith(SESSION_SUFFIXES):
                self.open(u.toLocalFile())
                break

    def _run(self, fn: Any, *args: Any) -> None:
        self._busy = True

        def main() -> None:
            try:
                self._jobs.put(("ok", fn(*args)))
            except Exception as e:  # noqa: BLE001 - shown in the view
                self._jobs.put(("error", f"{type(e).__name__}: {e}"))

        threading.Thread(target=main, daemon=True, name="lumbar-review").start()

    def open(self, path: str | Path) -> None:
        """Load a session in the background (the view stays responsive)."""
        self.path = Path(path)
        self.info.setText(f"Loading {self.path.name}…")
        self.results.setHtml("<p>Processing…</p>")
        self._run(_load, self.path)

    def recompute(self) -> None:
        """Compute the metrics as ``lumbar analyze`` does, store them in the file and show them."""
        if self.path is None or self._busy:
            return
        self.info.setText(f"Recomputing metrics of {self.path.name}…")
        self._run(_recompute, self.path)

    @property
    def busy(self) -> bool:
        return self._busy

    # -- polled by the GUI timer ---------------------------------------------------------------
    def refresh(self) -> None:
        try:
            status, payload = self._jobs.get_nowait()
        except queue.Empty:
            payload = None
        if payload is not None:
            self._busy = False
            if status == "error":
                self.info.setText(f"Could not open: {payload}")
                self.results.setHtml(f"<p style='color:{COLORS['bad']}'>{html.escape(payload)}</p>")
            elif "recomputed" in payload:
                self.analysis = payload["recomputed"]
                self._show_results()
                self.info.setText(f"{self.path.name} — metrics recomputed and stored in the file")
            else:
                self.data = payload
                self.analysis = payload["analysis"]
                self._show_session()
        if self._playing and self.data is not None:
            sp = float(self.speed.currentText()[1:])
            t = self._play_t0 + (time.monotonic() - self._play_wall) * sp
            if t >= self._t_range[1]:
                t = self._t_range[1]
                self.toggle_play()
            self.set_cursor(t)

    # -- drawing -------------------------------------------------------------------------------------
    def angles_deg(self) -> dict[str, np.ndarray]:
        """The session's named angles (``lumbar.protocols.schema.SIGNALS``) in degrees, (N,) each, computed
        once per processed session: for the plots, the repetitions' labels, the cursor's readout and the export."""
        from lumbar.protocols.schema import SIGNALS  # not at start-up: the protocols package loads the metrics

        p = self.data["processed"] if self.data else None
        if p is None:
            return {}
        if self._angles[0] is not p:
            self._angles = (p, {sig: x * RAD2DEG for sig in SIGNALS if (x := p.signal(sig)) is not None})
        return self._angles[1]

    def _show_session(self) -> None:
        d = self.data
        s = d["session"]
        p = d["processed"]
        for plot in (self.p_angles, self.p_tilt, self.p_raw):
            for item in list(plot.listDataItems()):
                plot.removeItem(item)
        for item, plot in self._marker_items:
            plot.removeItem(item)
        self._marker_items = []
        dur = max((float(b.time_s[-1]) for b in s.data.values() if len(b)), default=0.0)
        self._t_range = (0.0, dur)
        # short enough to sit beside the buttons with four sensors; the test's title heads the results
        worn = ", ".join(placement_name(sid) for sid in s.data)
        self.info.setText(f"{self.path.name} — {s.info.subject_code}, {dur:.0f} s, {worn}"
                          + ("" if s.complete else "  (recording interrupted)"))
        self.info.setToolTip(f"subject {s.info.subject_code}, movement {s.info.protocol or '–'}, {dur:.1f} s, "
                             f"sensors: {', '.join(s.data)}")
        if p is not None:
            t = p.time_s
            if p.lumbar_angles is not None:
                for i, (nm, c) in enumerate(ANGLE_CURVES):
                    self.p_angles.plot(t, p.lumbar_angles[:, i] * RAD2DEG, pen=pg.mkPen(c, width=1.5), name=nm)
            angles = self.angles_deg()
            shown = [(sig, name, c) for sig, name, c in SAGITTAL if sig in angles]
            for sig, name, c in shown:
                self.p_tilt.plot(t, angles[sig], pen=pg.mkPen(c, width=1.5), name=name)
            bent = ["trunk"] + [name.split()[0] for sig, name, _ in shown if sig in ("hip_flexion", "knee_flexion")]
            title = (f"Pelvic tilt, {', '.join(bent[:-1])} and {bent[-1]} flexion" if len(bent) > 1
                     else "Pelvic tilt and trunk flexion")
            self.p_tilt.setTitle(title_with_legend(title, [(n, c) for _, n, c in shown]))
        sid, first = next(iter(s.data.items()))
        self.p_raw.setTitle(title_with_legend(f"Raw acceleration — {sid}", RAW_CURVES))
        for i, (nm, c) in enumerate(RAW_CURVES):
            self.p_raw.plot(first.time_s, first.acc[:, i], pen=pg.mkPen(c, width=1), name=nm)
        pen = pg.mkPen("#90a4ae", width=1, style=Qt.PenStyle.DashLine)
        for t_ev, name, evs in group_markers(list(s.events)):
            tip = "\n".join(f"{e.time_s:.1f} s  {marker_text(e.label)}  {e.note}".rstrip() for e in evs)
            for plot in (self.p_angles, self.p_tilt, self.p_raw):
                labelled = plot is self.p_angles
                anchor = (1, 0) if t_ev > 0.8 * dur else (0, 0)  # the label inside the plot, beside its line
                line = pg.InfiniteLine(pos=t_ev, angle=90, pen=pen, label=name if labelled else None,
                                       labelOpts={"position": 0.98, "color": COLORS["text"],
                                                  "fill": (255, 255, 255, 220), "anchors": [anchor, anchor]})
                line.setToolTip(tip)
                plot.addItem(line)
                self._marker_items.append((line, plot))
        self.p_angles.setXRange(0, dur, padding=0.01)
        self.set_cursor(0.0)
        self._show_results()

    def _show_repetitions(self, d: dict[str, Any] | None) -> None:
        """Each repetition of the analysis ``d`` (display units) shaded on the plot of the angle counted, from
        its start to its end, its number in the results' table above its peak: which movements were counted
        is seen, not only read. Rejected ones in orange, marked ×, the reason in their tooltip."""
        for region, label, plot in self.rep_regions:
            plot.removeItem(region)
            plot.removeItem(label)
        self.rep_regions = []
        p = self.data["processed"] if self.data else None
        if d is None or p is None:
            return
        signal = self.angles_deg().get(d.get("principal"))
        if signal is None:
            return
        plot = self.p_angles if d.get("principal") == "lumbar_flexion" else self.p_tilt
        t, n = p.time_s, len(p.time_s)
        reps = [(x, str(i), way) for i, (x, way) in enumerate(_counted(d), 1)]
        reps += [(x, "×", way) for key, way in _directions(d) for x in (d["results"].get(key) or {}).get("rejected") or []]
        for x, name, way in reps:
            ok = name != "×"
            a, b, k = (min(max(int(x[key]), 0), n - 1) for key in ("start_idx", "end_idx", "peak_idx"))
            region = pg.LinearRegionItem(values=(float(t[a]), float(t[b])), movable=False,
                                         brush=pg.mkBrush(0, 121, 107, 28) if ok else pg.mkBrush(239, 108, 0, 40),
                                         pen=pg.mkPen(None))
            region.setZValue(-10)  # behind the curves
            region.setToolTip(f"Repetition {name}{f' ({way})' if way else ''}: ROM {_fmt(x.get('rom'), '°')}, "
                              f"{_fmt(x.get('duration_s'), ' s', 2)}"
                              + ("" if ok else f" — not counted: {x.get('reason', '')}"))
            label = pg.TextItem(name, color=COLORS["accent_dark"] if ok else COLORS["warn"], anchor=(0.5, 1.0))
            label.setPos(float(t[k]), float(signal[k]))
            plot.addItem(region)
            plot.addItem(label)
            self.rep_regions.append((region, label, plot))

    def _test_title(self) -> str | None:
        """The title of the session's test ("Repeated forward flexion"), from the protocol definitions;
        None when they do not know its movement."""
        from lumbar_gui.trials import registry

        reg, s = registry(), self.data["session"] if self.data else None
        p = reg.for_session(s.info.protocol, s.info.notes) if reg is not None and s is not None else None
        return p.title if p is not None else None

    def _show_results(self) -> None:
        from lumbar.analysis import format_analysis

        d = self.analysis.to_dict(display=True) if self.analysis is not None else None
        self._show_repetitions(d)
        parts = []
        if self.data and self.data.get("error"):
            parts.append(f"<p style='color:{COLORS['bad']}'><b>Processing failed:</b> {html.escape(self.data['error'])}</p>")
        if d is not None:
            parts.append(_results_html(d, self._test_title()))
            parts.append(_repetitions_html(d))
        if self.data and self.data["session"].events:
            rows = "".join(f"<tr><td align=right>{e.time_s:.1f}</td><td>{html.escape(marker_text(e.label))}</td>"
                           f"<td>{html.escape(marker_note(e.label, e.note))}</td></tr>"
                           for e in self.data["session"].events)
            parts.append("<h4 style='margin-bottom:2px'>Markers</h4><table cellspacing=0 cellpadding=3 width='100%'>"
                         "<tr><th align=right>at s</th><th align=left>marker</th><th align=left>note</th></tr>" + rows + "</table>")
        if self.analysis is not None:
            # wrapped, so nothing is cut off at the panel's edge
            parts.append("<h4 style='margin-top:14px; margin-bottom:2px'>As printed by <code>lumbar analyze</code></h4>"
                         "<pre style='font-size:8pt; white-space:pre-wrap'>" + html.escape(format_analysis(self.analysis))
                         + "</pre>")
        self.results.setHtml("".join(parts))

    # -- scrubbing -----------------------------------------------------------------------------------
    def set_cursor(self, t: float) -> None:
        lo, hi = self._t_range
        t = min(max(t, lo), hi)
        for c in self.cursors:
            c.blockSignals(True)
            c.setValue(t)
            c.blockSignals(False)
        self.slider.blockSignals(True)
        self.slider.setValue(int(1000 * (t - lo) / max(hi - lo, 1e-9)))
        self.slider.blockSignals(False)
        self._update_readout(t)

    def _slider_moved(self, v: int) -> None:
        lo, hi = self._t_range
        self.set_cursor(lo + (hi - lo) * v / 1000)

    def _cursor_moved(self, line: Any) -> None:
        self.set_cursor(float(line.value()))

    def _update_readout(self, t: float) -> None:
        p = self.data["processed"] if self.data else None
        parts = [f"cursor <b>{t:.1f} s</b>"]
        if p is not None:
            i = int(np.clip(np.searchsorted(p.time_s, t), 0, len(p.time_s) - 1))
            if p.lumbar_angles is not None:
                parts.append(f"lumbar flexion <b>{p.lumbar_angles[i, 0] * RAD2DEG:.1f}°</b>")
            angles = self.angles_deg()
            for sig, name, _ in SAGITTAL:
                if sig in angles:
                    parts.append(f"{name.split(' (')[0]} <b>{angles[sig][i]:.1f}°</b>")
        self.readout.setText("&nbsp;&nbsp;·&nbsp;&nbsp;".join(parts))

    def toggle_play(self) -> None:
        if self.data is None:
            return
        self._playing = not self._playing
        if self._playing:
            cur = float(self.cursors[0].value())
            self._play_t0 = 0.0 if cur >= self._t_range[1] - 0.05 else cur
            self._play_wall = time.monotonic()
        self.play_btn.setText("❚❚ Pause" if self._playing else "▶ Play")

    # -- report & export -----------------------------------------------------------------------------
    def write_report(self, out: Path | None = None) -> Path | None:
        """An HTML report beside the session (the project's report module when it is installed)."""
        if self.path is None or self.analysis is None:
            return None
        out = out or self.path.with_suffix(".report.html")
        try:  # the project's report (scored against the protocol) when that module is installed
            from lumbar.report import build_report
            from lumbar.report import write_report as write_project_report

            return write_project_report(build_report([self.path]), out)
        except ImportError:
            pass
        except Exception as e:  # noqa: BLE001 - fall back to the built-in page, and say why
            self.info.setText(f"project report failed ({type(e).__name__}: {e}); wrote a simple page instead")
        from lumbar.analysis import format_analysis

        img = out.with_suffix(".png")
        self.glw.grab().save(str(img))
        s = self.data["session"] if self.data else None
        head = (f"<h1>Session report</h1><p>Subject <b>{html.escape(s.info.subject_code)}</b> · protocol "
                f"<b>{html.escape(self._test_title() or s.info.protocol)}</b> · {html.escape(s.info.start_time_utc)} "
                "UTC</p>") if s else ""
        body = (f"<html><head><meta charset='utf-8'><title>{html.escape(self.path.name)}</title>"
                "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#1f2a33}"
                "td,th{padding:3px 8px;border-bottom:1px solid #e0e0e0}</style></head><body>"
                + head + _results_html(self.analysis.to_dict(display=True), self._test_title())
                + f"<img src='{img.name}' width='100%'>"
                + "<pre>" + html.escape(format_analysis(self.analysis)) + "</pre></body></html>")
        out.write_text(body, encoding="utf-8")
        return out

    def open_report(self) -> None:
        out = self.write_report()
        if out is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(out)))

    def choose_export(self) -> None:
        if self.path is None:
            return
        dest, _ = QFileDialog.getSaveFileName(self, "Export signals", str(self.path.with_suffix(".csv")), "CSV (*.csv)")
        if dest:
            self.export_csv(Path(dest))

    def export_csv(self, dest: Path) -> Path | None:
        """Processed signals (degrees) as CSV, and the results beside it as JSON."""
        p = self.data["processed"] if self.data else None
        if p is None:
            return None
        cols = {"time_s": p.time_s}
        if p.lumbar_angles is not None:
            cols.update(lumbar_flexion_deg=p.lumbar_angles[:, 0] * RAD2DEG, lumbar_lateral_deg=p.lumbar_angles[:, 1] * RAD2DEG,
                        lumbar_rotation_deg=p.lumbar_angles[:, 2] * RAD2DEG)
        angles = self.angles_deg()
        for sig, _, _ in SAGITTAL:
            if sig in angles:
                cols[f"{sig}_deg"] = angles[sig]
        arr = np.column_stack(list(cols.values()))
        np.savetxt(dest, arr, delimiter=",", header=",".join(cols), comments="", fmt="%.5f")
        if self.analysis is not None:
            dest.with_suffix(".json").write_text(json.dumps(self.analysis.to_dict(display=True), indent=2, default=str))
        self.info.setText(f"Exported {dest.name}")
        return dest


def _fmt(v: Any, unit: str = "", nd: int = 1) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{nd}f}{unit}"


def _results_html(d: dict[str, Any], title: str | None = None) -> str:
    """The main numbers as a small table (degrees), under the test's ``title`` (default: its movement)."""
    r = d["results"]
    rows: list[tuple[str, str]] = []
    if "lumbar_rom" in r:
        rom = r["lumbar_rom"]["rom"]
        rows += [("Lumbar ROM flexion/extension", _fmt(rom[0], "°")), ("Lumbar ROM lateral bending", _fmt(rom[1], "°")),
                 ("Lumbar ROM axial rotation", _fmt(rom[2], "°"))]
    of = _repeated(d)
    ways = _directions(d)
    for key, way in ways:
        if key not in r:
            continue
        rs = r[key]
        rows.append((f"Repetitions{' of ' + of if of else ''}{', ' + way if way else ''}", str(rs["count"])))
        roms = [x["rom"] for x in rs["repetitions"]]
        if roms:  # the repeated angle's ROM: trunk flexion bends further than the lumbar spine alone
            rows.append((f"Mean {of or 'repetition'} ROM per repetition{', ' + way if way else ''}",
                         _fmt(float(np.mean(roms)), "°")))
        c = rs.get("consistency") or {}
        if c:
            rows.append((f"ROM variability (CV){', ' + way if way else ''}", _fmt(c.get("cv_rom_pct"), " %")))
    if len(ways) > 1 and all(key in r for key, _ in ways):
        rows.append(("Repetitions in both directions", str(sum(r[key]["count"] for key, _ in ways))))
    if "rhythm_first_rep" in r:
        rows.append(("Lumbar contribution, first repetition", _fmt(r["rhythm_first_rep"].get("lumbar_contribution_pct"), " %", 0)))
    for key, way in ways:
        x = r.get(key.replace("repetitions", "dissociation"))
        if x is not None and x.get("valid", True):
            rows.append((f"Movement control{', ' + way if way else ''}", "PASS" if x["passed"] else "FAIL"))
    if "sway" in r and r["sway"].get("valid", True):
        c = r["sway"]["combined"]
        rows += [("Sway RMS", _fmt(c["rms"], " m/s²", 4)), ("Sway 95 % ellipse", _fmt(c.get("area_ce"), " (m/s²)²", 5))]
    fc = r.get("frontal_control")
    if fc is not None and fc.get("valid", True):  # one-leg stance
        from lumbar_gui.trials import stance_rows

        rows += [("Pelvic drop, largest", _fmt(fc.get("pelvic_drop"), "°")),
                 ("Trunk lean, largest", _fmt(fc.get("trunk_lean"), "°"))]
        rows += [(row.measure, row.value) for row in stance_rows(fc)]
    body = "".join(f"<tr><td>{html.escape(k)}</td><td align=right><b>{html.escape(v)}</b></td></tr>" for k, v in rows)
    # what the operator must act on (a sensor worn turned) first, where it cannot be missed
    warn = "".join(f"<p style='color:{COLORS['warn']};margin:2px 0'><b>⚠ {html.escape(w)}</b></p>"
                   for w in d.get("warnings") or [])
    return (f"<h3 style='margin-bottom:4px'>{html.escape(title or d.get('protocol') or 'Session')}</h3>{warn}"
            f"<table cellspacing=0 cellpadding=4 width='100%'>{body}</table>")


def _repeated(d: dict[str, Any]) -> str:
    """The angle whose repetitions were counted, in words ("trunk flexion"); "" when not known."""
    return (d.get("principal") or "").replace("_", " ")


def _directions(d: dict[str, Any]) -> list[tuple[str, str]]:
    """(result key, direction in words) of each set of repetitions (:func:`lumbar.analysis.repetition_sets`)."""
    from lumbar.analysis import repetition_sets  # imported when a file is shown, not at start-up

    return repetition_sets(d)


def _counted(d: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Every counted repetition (display units) with its direction in words, in time order: the numbers
    the plot and the table share."""
    reps = [(x, way) for key, way in _directions(d) for x in (d["results"].get(key) or {}).get("repetitions") or []]
    return sorted(reps, key=lambda xw: xw[0].get("start_idx", 0))


def _repetitions_html(d: dict[str, Any]) -> str:
    """One row per repetition: when, range, duration, peak speed, lumbar share (degrees, seconds), and
    the direction when the plan counts both ways."""
    reps = _counted(d)
    if not reps:
        return ""
    both = len(_directions(d)) > 1
    # the lumbar share of a bend (lumbo-pelvic rhythm): meaningful where the plan measures the rhythm (forward
    # flexion), not in a test where the pelvis moves and the back should not (-124 % on a rock says nothing)
    share = "rhythm" in d["results"]
    cols = (("#", "at s") + (("way",) if both else ()) + ("ROM °", "duration s", "peak °/s")
            + (("lumbar %",) if share else ()))
    head = "".join(f"<th align={'left' if h == 'way' else 'right'}>{h}</th>" for h in cols)
    rows = "".join(
        f"<tr><td align=right>{i}</td><td align=right>{_fmt(x.get('start_s'))}</td>"
        + (f"<td>{html.escape(way)}</td>" if both else "")
        + f"<td align=right>{_fmt(x.get('rom'))}</td>"
        f"<td align=right>{_fmt(x.get('duration_s'), nd=2)}</td><td align=right>{_fmt(x.get('peak_velocity_out'), nd=0)}</td>"
        + (f"<td align=right>{_fmt(x.get('lumbar_share_pct'), nd=0)}</td>" if share else "") + "</tr>"
        for i, (x, way) in enumerate(reps, 1))
    of = _repeated(d)
    return (f"<h4 style='margin-bottom:2px'>Repetitions{' of ' + of if of else ''}</h4>"
            f"<table cellspacing=0 cellpadding=3 width='100%'><tr>{head}</tr>{rows}</table>")
