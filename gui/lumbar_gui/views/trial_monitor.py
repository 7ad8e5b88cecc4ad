"""The trial monitor of the guided assessment: what the patient is doing while a trial runs.

The clinician reads the instructions to the patient and then watches them; a glance at the monitor shows
that the signals are the task's (the patient bends when asked, stands still when asked) without leaving
the step. It shows the sagittal angles over the last 10 s and, beside them, the stabilogram of a sway
test or the repetitions counted so far. It draws from the live series like the Live view, only while it
is on screen; the counts it shows come from the same live segmenter.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from lumbar_gui.engine import COL, Engine, LiveRep
from lumbar_gui.widgets import AXIS_COLORS, COLORS, TILT_COLORS, BigValue, Stabilogram, StripChart, degrees_text

RAD2DEG = 180.0 / math.pi
#: The angles drawn (live series columns) and their names.
ANGLES = ("lumbar_flexion", "pelvic_tilt", "trunk_flexion")
ANGLE_NAMES = ("lumbar flexion", "pelvic tilt (anterior +)", "trunk flexion")
#: The repetitions the live segmenter counts (the processing's default signal).
COUNTED = "trunk_flexion"
#: y range of the angles chart, degrees: a bend (trunk flexion reaches 60-90°), or a task whose angles
#: stay small (pelvic tilt, leg movements with a still back, standing): ±40° shows them at a readable size.
BEND_RANGE_DEG = (-20.0, 90.0)
SMALL_RANGE_DEG = (-40.0, 40.0)
#: Read-outs change at most this often, s (as in the Live view).
LABEL_PERIOD_S = 0.2


def monitor_mode(plan: dict | None) -> tuple[str, str]:
    """(mode, angle read out) for a movement's analysis plan (``lumbar.protocols``' ``analysis`` table): a
    sway test shows the stabilogram; a task whose repetitions are counted on trunk flexion, the count; any
    other, its principal angle now (the live segmenter counts trunk flexion only)."""
    plan = plan or {}
    principal = plan.get("principal")
    if plan.get("sway"):
        return "sway", COUNTED
    if principal == COUNTED:
        return "repetitions", COUNTED
    return "angles", principal if principal in ANGLES else COUNTED


class TrialMonitor(QWidget):
    """Angles of the last 10 s beside a stabilogram (``mode="sway"``), a repetition counter
    (``mode="repetitions"``) or an angle read-out (``mode="angles"``). :meth:`start` at the trial's start,
    :meth:`refresh` on the GUI timer, :meth:`stop` when it ends; hidden otherwise."""

    def __init__(self, engine: Engine, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.mode = ""
        self.angle = COUNTED
        #: Repetitions of :data:`COUNTED` finished since the movement began (``go``).
        self.repetitions = 0
        self._go_s = math.inf  # data time of "go": repetitions ending before it are not the task's
        self._series = None
        self._cursor = 0
        self._last_labels = 0.0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(230)
        self._lay = lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 4)
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.ci.setContentsMargins(0, 0, 0, 0)
        self.chart = StripChart("Sagittal angles", ANGLE_NAMES, (AXIS_COLORS[0], *TILT_COLORS), rate_hz=200.0,
                                unit="angle (°)", scale=RAD2DEG, finite=True, y_range=BEND_RANGE_DEG)
        self.plots.addItem(self.chart)
        lay.addWidget(self.plots, 3)
        side = QVBoxLayout()
        self.stabilogram = Stabilogram()
        self.sway_label = QLabel("")
        self.sway_label.setObjectName("subtitle")
        self.count = BigValue("repetitions", "0", size_pt=40, color=COLORS["accent"])
        self.angle_now = BigValue("trunk flexion now", "–", size_pt=24)
        for w in (self.stabilogram, self.sway_label, self.count, self.angle_now):
            side.addWidget(w)
        side.addStretch(1)
        lay.addLayout(side, 1)
        engine.repetition.connect(self._on_repetition)
        self.setVisible(False)

    def start(self, mode: str, angle: str = COUNTED) -> None:
        """A trial begins: clear, and show the stabilogram (``"sway"``), the counter (``"repetitions"``) or
        only ``angle`` now (``"angles"``; a column of :data:`ANGLES`)."""
        self.mode = mode
        self.angle = angle
        self.repetitions = 0
        self._go_s = math.inf
        self.chart.clear_data()
        self.chart.set_y_range(*(BEND_RANGE_DEG if angle == COUNTED and mode == "repetitions" else SMALL_RANGE_DEG))
        self.stabilogram.clear_data()
        self.sway_label.setText("95 % ellipse: –")
        self.count.set("0")
        self.angle_now.set("–")
        sway = mode == "sway"
        self._lay.setStretch(0, 3 if sway else 4)  # the stabilogram is square: it needs the width
        self._lay.setStretch(1, 2 if sway else 1)
        self.stabilogram.setVisible(sway)
        self.sway_label.setVisible(sway)
        self.count.setVisible(mode == "repetitions")
        self.angle_now.setVisible(not sway)
        self.angle_now.caption.setText(f"{ANGLE_NAMES[ANGLES.index(angle)].split(' (')[0]} now")
        proc = self.engine.processor
        self._series = proc.series if proc is not None else None
        self._cursor = proc.series.total if proc is not None else 0  # from now on: this trial only
        if proc is not None:
            self.stabilogram.set_rate(proc.rate_hz)
        self.setVisible(True)

    def go(self, t_s: float) -> None:
        """The movement begins at data time ``t_s``: repetitions are counted from here."""
        self._go_s = t_s

    def stop(self) -> None:
        self.mode = ""
        self.setVisible(False)

    def _on_repetition(self, rep: LiveRep) -> None:
        if self.mode == "repetitions" and rep.signal == COUNTED and rep.valid and rep.end_time_s >= self._go_s:
            self.repetitions += 1
            self.count.set(str(self.repetitions))

    def refresh(self) -> None:
        """Pull the live series' new rows; draw them when on screen (GUI timer)."""
        proc = self.engine.processor
        if not self.mode or proc is None:
            return
        if proc.series is not self._series:  # the processing restarted (sensors reconnected)
            self._series, self._cursor = proc.series, 0
        t, x, self._cursor, _ = proc.series.since(self._cursor)
        if len(t):
            self.chart.append(t, x[:, [COL[c] for c in ANGLES]])
            if self.mode == "sway":
                self.stabilogram.append(t, x[:, [COL["sway_ap"], COL["sway_ml"]]],
                                        posture=x[:, [COL["trunk_flexion"], COL["pelvic_tilt"]]])
        if not self.isVisible() or not len(t):
            return
        self.chart.redraw()
        if self.mode == "sway":
            self.stabilogram.redraw()
        now = time.monotonic()
        if now - self._last_labels < LABEL_PERIOD_S:
            return
        self._last_labels = now
        if self.mode == "sway":
            self.stabilogram.update_ellipse()
            if np.isfinite(self.stabilogram.area):
                self.sway_label.setText(f"95 % ellipse: {self.stabilogram.area:.4f} (m/s²)²")
        else:
            self.angle_now.set(degrees_text(float(x[-1, COL[self.angle]]) * RAD2DEG))
