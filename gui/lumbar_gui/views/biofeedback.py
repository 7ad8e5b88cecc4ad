"""Biofeedback: a patient-facing view, readable from 3 m.

The controlled angle moves as a large marker against the target band the therapist sets; the screen
shows the repetition count against the session goal and one word of feedback per repetition
(in band / too far / not far enough / too fast). The session is recorded like any other, with one
``feedback`` marker per repetition, so home use shows up as adherence.
"""
from __future__ import annotations

import html
import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QApplication, QCheckBox, QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QLineEdit,
                               QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from lumbar.errors import LumbarError
from lumbar.types import THIGHS, SessionInfo, check_subject_code
from lumbar_gui.engine import COL, Engine, LiveRep
from lumbar_gui.widgets import COLORS, DegreeAxis, ScrollBuffer, card, degrees_text

RAD2DEG = 180.0 / math.pi
#: The marker's diameter: a tenth of the plot's height, at least this (px).
MARKER_MIN_PX = 64

#: Signals offered, with the protocol name the recording gets.
SIGNALS = {
    "trunk_flexion": ("Trunk flexion", "flexion"),
    "lumbar_flexion": ("Lumbar flexion", "flexion"),
    "pelvic_tilt": ("Pelvic tilt", "pelvic-tilt"),
    "hip_flexion": ("Hip flexion", "waiters-bow"),  # a hip hinge; needs the thigh sensors
}
#: The target band each angle starts with, degrees; the therapist sets the patient's own. A hip hinge: the waiter's
#: bow's 50-70° of hip flexion (Luomajoki et al. 2007); a pelvic tilt: from the pelvic-tilt test's 5° target;
#: a bend: 30-45°.
DEFAULT_BANDS = {"trunk_flexion": (30.0, 45.0), "lumbar_flexion": (30.0, 45.0), "pelvic_tilt": (5.0, 15.0),
                 "hip_flexion": (50.0, 70.0)}


#: Repetitions shown as dots under the verdict (the most recent; more would wrap at a readable size).
HISTORY_DOTS = 15


def classify(rep: LiveRep, lo_deg: float, hi_deg: float, max_speed_dps: float) -> tuple[str, str]:
    """Feedback word and colour for one repetition."""
    peak = rep.peak_rad * RAD2DEG
    if rep.peak_velocity_rads * RAD2DEG > max_speed_dps:
        return "Too fast — slow down", COLORS["bad"]
    if peak > hi_deg:
        return "Too far", COLORS["warn"]
    if peak < lo_deg:
        return "Not far enough", COLORS["warn"]
    return "In band — well done", COLORS["ok"]


class BiofeedbackView(QWidget):
    title = "Biofeedback"

    def __init__(self, engine: Engine, sessions_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("page")
        self.engine = engine
        self.sessions_dir = Path(sessions_dir)
        self._cursor = 0
        self._series = None
        self.count = 0
        self.in_band = 0
        self.verdicts: list[tuple[str, str]] = []  # (verdict, colour) of each repetition of the session
        self.buf = ScrollBuffer(1200, 1)
        self._xs = np.zeros(self.buf.n)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 12, 16, 12)

        # therapist controls
        ctl_card, ctl = card("Therapist settings")
        row = QHBoxLayout()
        ctl.addLayout(row)
        self.subject = QLineEdit()
        self.subject.setPlaceholderText("subject code, e.g. S017")
        self.subject.setMaximumWidth(150)
        self.signal = QComboBox()
        for key, (label, _p) in SIGNALS.items():
            self.signal.addItem(label, key)
        band = DEFAULT_BANDS[self.signal.currentData()]
        self.lo = QDoubleSpinBox(minimum=-60, maximum=120, value=band[0], suffix=" °", decimals=0)
        self.hi = QDoubleSpinBox(minimum=-60, maximum=120, value=band[1], suffix=" °", decimals=0)
        self.speed = QDoubleSpinBox(minimum=5, maximum=300, value=60, suffix=" °/s", decimals=0)
        self.goal = QSpinBox(minimum=1, maximum=200, value=10)
        self.goal.setToolTip("Repetitions in the session")
        self.sound = QCheckBox("Sound")
        self.sound.setToolTip("A sound cue after each repetition")
        # one row that fits the window's 1440 px: short labels, units in the fields
        for lab, w in (("Subject", self.subject), ("Angle", self.signal), ("Band", self.lo), ("–", self.hi),
                       ("Max speed", self.speed), ("Goal", self.goal)):
            row.addWidget(QLabel(lab))
            row.addWidget(w)
        row.addWidget(self.sound)
        row.addStretch(1)
        self.start_btn = QPushButton("Start session")
        self.start_btn.setObjectName("primary")
        self.start_btn.clicked.connect(self.toggle_session)
        row.addWidget(self.start_btn)
        self.full_btn = QPushButton("Full screen")
        self.full_btn.clicked.connect(self.toggle_full_screen)
        row.addWidget(self.full_btn)
        self.msg = QLabel("")
        self.msg.setObjectName("subtitle")
        ctl.addWidget(self.msg)
        outer.addWidget(ctl_card)
        self._angle = self.signal.currentData()
        self.signal.currentIndexChanged.connect(self._angle_changed)
        for w in (self.lo, self.hi):
            w.valueChanged.connect(self.apply_settings)

        # patient area
        patient = QHBoxLayout()
        outer.addLayout(patient, 1)
        gauge_card, gl = card(None)
        self.plot = pg.PlotWidget(axisItems={"left": DegreeAxis("left")})
        pi = self.plot.getPlotItem()
        pi.setMenuEnabled(False)
        pi.hideButtons()
        pi.setMouseEnabled(x=False, y=False)
        pi.hideAxis("bottom")
        big = QFont()
        big.setPointSize(16)
        pi.getAxis("left").setTickFont(big)
        pi.getAxis("left").setWidth(70)
        pi.getAxis("left").setTextPen(COLORS["text"])
        pi.setXRange(-8, 0.6, padding=0)
        pi.setYRange(-10, 70, padding=0)
        pi.showGrid(y=True, alpha=0.2)
        self.band = pg.LinearRegionItem(values=(30, 45), orientation="horizontal", movable=False,
                                        brush=pg.mkBrush(165, 214, 167, 140), pen=pg.mkPen(COLORS["ok"], width=2))
        pi.addItem(self.band)
        self.band_text = pg.TextItem("TARGET", color=COLORS["accent_dark"], anchor=(0, 0))
        target_font = QFont()
        target_font.setPointSize(18)
        target_font.setBold(True)
        self.band_text.setFont(target_font)
        pi.addItem(self.band_text)
        # now: a faint line where the marker moves
        pi.addItem(pg.InfiniteLine(pos=0.0, angle=90, pen=pg.mkPen("#b0bec5", width=1, style=Qt.PenStyle.DashLine)))
        self.trail = pi.plot(pen=pg.mkPen("#607d8b", width=4))
        self.marker = pg.ScatterPlotItem(size=MARKER_MIN_PX, brush=pg.mkBrush(COLORS["accent"]), pen=pg.mkPen("w", width=4))
        pi.addItem(self.marker)
        gl.addWidget(self.plot, 1)
        patient.addWidget(gauge_card, 3)

        side_card, side = card(None)
        self.angle_label = QLabel("–")
        self.angle_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.angle_label.setStyleSheet("font-size: 54pt; font-weight: 700;")
        self.angle_caption = QLabel("Trunk flexion")
        self.angle_caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.angle_caption.setStyleSheet(f"font-size: 18pt; color: {COLORS['muted']};")
        self.count_label = QLabel("0 / 10")
        self.count_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.count_label.setStyleSheet(f"font-size: 72pt; font-weight: 800; color: {COLORS['accent']};")
        reps_caption = QLabel("repetitions")
        reps_caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        reps_caption.setStyleSheet(f"font-size: 18pt; color: {COLORS['muted']};")
        self.feedback = QLabel()
        self.feedback.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.feedback.setWordWrap(True)
        self.feedback.setMinimumHeight(140)
        self._show_feedback("Get ready", COLORS["text"])
        # every repetition of the session as a dot in its verdict's colour: the patient sees how the set went
        self.history = QLabel("")
        self.history.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.history.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 10)
        self.progress.setFormat("goal %v / %m")
        self.progress.setStyleSheet("QProgressBar { height: 34px; font-size: 16pt; }")
        self.band_caption = QLabel("")
        self.band_caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.band_caption.setStyleSheet(f"font-size: 20pt; font-weight: 600; color: {COLORS['accent_dark']};")
        for w in (self.angle_label, self.angle_caption, self.count_label, reps_caption):
            side.addWidget(w)
        side.addSpacing(12)
        side.addWidget(self.feedback)
        side.addWidget(self.history)
        side.addStretch(1)
        side.addWidget(self.band_caption)
        side.addWidget(self.progress)
        patient.addWidget(side_card, 2)
        engine.repetition.connect(self.on_repetition)
        engine.sources_changed.connect(self._reset_stream)
        self.goal.valueChanged.connect(lambda v: (self.progress.setRange(0, v), self._update_count()))
        self.apply_settings()

    # -----------------------------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        return self.engine.recorder is not None and getattr(self, "_recording_here", False)

    def _reset_stream(self) -> None:
        self._series, self._cursor = None, 0
        self.buf.clear()

    def _angle_changed(self) -> None:
        """Another angle: its own starting band, unless the therapist had set one (a band that is not the
        previous angle's default is theirs, and kept)."""
        before, self._angle = self._angle, self.signal.currentData()
        if (self.lo.value(), self.hi.value()) == DEFAULT_BANDS[before]:
            lo, hi = DEFAULT_BANDS[self._angle]
            for w, v in ((self.lo, lo), (self.hi, hi)):
                w.blockSignals(True)  # one apply below, not one per field
                w.setValue(v)
                w.blockSignals(False)
        self.apply_settings()

    def apply_settings(self) -> None:
        lo, hi = sorted((self.lo.value(), self.hi.value()))
        key = self.signal.currentData()
        self.band.setRegion((lo, hi))
        self.band_text.setPos(-7.9, hi)
        self.angle_caption.setText(SIGNALS[key][0])
        self.band_caption.setText(f"Target {lo:.0f}–{hi:.0f}°")
        self.plot.getPlotItem().setYRange(min(-10, lo - 15), max(60, hi + 20), padding=0)
        if self.engine.processor is not None and lo > 0:
            self.engine.processor.set_repetitions(key, 0.25 * lo * math.pi / 180, 0.6 * lo * math.pi / 180)

    def toggle_session(self) -> None:
        if self.recording:
            self.stop_session()
        else:
            self.start_session()

    def start_session(self) -> Path | None:
        if not self.engine.connected:
            self.msg.setText("Connect sensors first (Devices).")
            return None
        try:
            code = check_subject_code(self.subject.text().strip())
        except LumbarError as e:
            self.msg.setText(str(e))
            return None
        key = self.signal.currentData()
        if key == "hip_flexion" and not any(sid in THIGHS for sid in self.engine.bus.rings):
            self.msg.setText("Hip flexion is measured with the thigh sensors: connect them (Devices), "
                             "or choose another angle.")
            return None
        lo, hi = sorted((self.lo.value(), self.hi.value()))
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = self.sessions_dir / code / f"{code}_{stamp}_biofeedback.h5"
        info = SessionInfo(subject_code=code, protocol=SIGNALS[key][1],
                           notes=f"biofeedback: {SIGNALS[key][0].lower()} band {lo:.0f}-{hi:.0f} deg, "
                                 f"max speed {self.speed.value():.0f} deg/s, goal {self.goal.value()} repetitions")
        self.engine.start_recording(path, info)
        self._recording_here = True
        self.engine.mark("biofeedback_start", info.notes)
        self.apply_settings()
        if self.engine.processor is not None:
            self.engine.processor.reset_repetitions()
        self.count = self.in_band = 0
        self.verdicts = []
        self._update_count()
        self._show_history()
        self._show_feedback("Go!", COLORS["text"])
        self.start_btn.setText("Stop session")
        self.start_btn.setObjectName("danger")
        self.start_btn.setStyle(self.start_btn.style())
        self.msg.setText(f"Recording to {path.name}")
        return path

    def stop_session(self) -> Path | None:
        if not self.recording:
            return None
        self.engine.mark("biofeedback_end", f"{self.count} repetitions, {self.in_band} in band")
        path = self.engine.stop_recording()
        self._recording_here = False
        self.start_btn.setText("Start session")
        self.start_btn.setObjectName("primary")
        self.start_btn.setStyle(self.start_btn.style())
        self.msg.setText(f"Saved {path.name if path else ''}: {self.count} repetitions, {self.in_band} in band")
        return path

    def toggle_full_screen(self) -> None:
        win = self.window()
        win.showNormal() if win.isFullScreen() else win.showFullScreen()

    def _update_count(self) -> None:
        self.count_label.setText(f"{self.count} / {self.goal.value()}")
        self.progress.setValue(min(self.count, self.goal.value()))

    def _show_feedback(self, text: str, color: str, goal_reached: bool = False) -> None:
        """One repetition's verdict, big (what to do smaller, under it): "Too fast — slow down" reads as
        *Too fast* / *slow down*, each on its own line, never broken mid-phrase."""
        head, _, advice = text.partition(" — ")
        parts = [f"<div style='font-size:40pt; font-weight:800; color:{color}'>{html.escape(head)}</div>"]
        if advice:
            parts.append(f"<div style='font-size:24pt; font-weight:600; color:{color}'>{html.escape(advice)}</div>")
        if goal_reached:
            parts.append(f"<div style='font-size:24pt; font-weight:700; color:{COLORS['accent']}'>Goal reached!</div>")
        self.feedback.setText("".join(parts))
        self.feedback_text = text

    def _show_history(self) -> None:
        """A dot per repetition (the last :data:`HISTORY_DOTS`), coloured by its verdict, and how many were in
        the band."""
        if not self.verdicts:
            self.history.setText("")
            return
        dots = "".join(f"<span style='color:{c}'>●</span>" for _, c in self.verdicts[-HISTORY_DOTS:])
        self.history.setText(f"<div style='font-size:26pt; letter-spacing:3px'>{dots}</div>"
                             f"<div style='font-size:16pt; color:{COLORS['muted']}'>{self.in_band} of {self.count} "
                             f"in the band</div>")

    def _fit_marker(self) -> None:
        """The marker's size follows the plot's height (full screen: bigger), a tenth of it."""
        size = max(MARKER_MIN_PX, int(self.plot.height() / 10))
        if size != self.marker.opts["size"]:
            self.marker.setSize(size)

    def resizeEvent(self, event: object) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)  # type: ignore[arg-type]
        self._fit_marker()

    def on_repetition(self, rep: LiveRep) -> None:
        if rep.signal != self.signal.currentData():
            return
        lo, hi = sorted((self.lo.value(), self.hi.value()))
        text, color = classify(rep, lo, hi, self.speed.value())
        self.count += 1
        self.in_band += text.startswith("In band")
        self.verdicts.append((text, color))
        self._update_count()
        self._show_history()
        self._show_feedback(text, color, goal_reached=self.count >= self.goal.value())
        if self.sound.isChecked():
            QApplication.beep()
        if self.recording:
            self.engine.mark("feedback", f"rep {self.count}: {text} (peak {rep.peak_rad * RAD2DEG:.0f} deg, "
                                         f"{rep.peak_velocity_rads * RAD2DEG:.0f} deg/s)")

    def refresh(self) -> None:
        proc = self.engine.processor
        if proc is None:
            return
        self._fit_marker()
        if self._series is not proc.series:
            self._series, self._cursor = proc.series, 0
            self.apply_settings()
        t, x, self._cursor, _ = proc.series.since(self._cursor)
        col = COL[self.signal.currentData()]
        if len(t):
            self.buf.extend(t, x[:, col:col + 1] * RAD2DEG)
        tt, xx = self.buf.view()
        if not len(tt):
            return
        now = tt[-1]
        xs = self._xs[: len(tt)]
        np.subtract(tt, now, out=xs)
        self.trail.setData(xs, xx[:, 0], connect="finite")
        v = float(xx[-1, 0])
        lo, hi = sorted((self.lo.value(), self.hi.value()))
        if np.isfinite(v):
            color = COLORS["ok"] if lo <= v <= hi else (COLORS["warn"] if v > hi else COLORS["accent"])
            self.marker.setData([0.0], [v], brush=pg.mkBrush(color))
            self.angle_label.setText(degrees_text(v))
        else:
            self.angle_label.setText("–")
