"""Live view: raw signals per sensor, lumbar angles, pelvic tilt, stabilogram, repetition counter."""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPushButton, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget, QHeaderView)

from lumbar.types import SHANKS, THIGHS
from lumbar_gui.engine import COL, Engine, LiveRep
from lumbar_gui.sources import placement_name
from lumbar_gui.widgets import (AXIS_COLORS, COLORS, HIP_COLOR, KNEE_COLOR, TILT_COLORS, BigValue, Stabilogram,
                                StripChart, card, degrees_text, title_with_legend)

RAD2DEG = 180.0 / math.pi
#: Text read-outs (state, current angle, ellipse area) change at most this often, s: a label whose text
#: changes can relayout its page, and nobody reads digits at 60 Hz.
LABEL_PERIOD_S = 0.2
#: Each frame draws one of two loads, so that no frame draws much more than another (the GUI thread's
#: longest frame is what a stall is made of): the kinematics charts, which the clinician watches, in every
#: frame after the processing has published new rows (25 Hz); in the other frames the stabilogram (when it
#: has new rows) and one row of raw charts, the rows taking turns (with four sensors ≈ 9 Hz each: enough to
#: see that every sensor streams). One raw row a frame also because the scene repaints every item in the
#: bounding rectangle of what changed: the first and the last row drawn in one frame repaint them all.
#: Column headers of the repetitions table: units on a second line, so each fits its column.
REP_COLUMNS = ["#", "ROM\n°", "duration\ns", "peak\n°/s", "quality"]
SWAY_NONE = "95 % ellipse: –\n(drawn while the patient stands still)"


def sway_text(area: float) -> str:
    """The ellipse read-out under the stabilogram (two short lines: the card is narrow)."""
    return f"95 % ellipse, 30 s standing still:\n{area:.4f} (m/s²)²"


class LiveView(QWidget):
    """Everything the sensors say, as it happens."""

    title = "Live"

    def __init__(self, engine: Engine, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("page")
        self.engine = engine
        self._raw: dict[str, tuple[Any, int, StripChart, StripChart]] = {}
        self._charts: dict[tuple[str, float], tuple[StripChart, StripChart]] = {}  # built raw charts
        self._last_labels = 0.0
        self._raw_turn = 0  # the raw row drawn next
        self._kin_due = self._sway_due = False  # new derived rows not drawn yet
        self._draw_all = True  # the next refresh draws every chart (just shown or rebuilt)
        self._derived_cursor = 0
        self._series = None
        #: Samples the raw plots could not get from the rings (fell more than the ring behind).
        self.missed = 0
        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 12, 16, 12)
        head = QHBoxLayout()
        t = QLabel("Live signals")
        t.setObjectName("title")
        head.addWidget(t)
        self.state = QLabel("")
        self.state.setObjectName("subtitle")
        head.addWidget(self.state, 1)
        self.cal_button = QPushButton("Zero posture (stand still 5 s)")
        self.cal_button.setToolTip("Calibrate: the patient stands upright and still for 5 s; angles are zero there")
        self.cal_button.clicked.connect(lambda: self.engine.processor and self.engine.processor.calibrate(5.0))
        head.addWidget(self.cal_button)
        outer.addLayout(head)

        body = QHBoxLayout()
        outer.addLayout(body, 1)
        # left: raw signals
        raw_card, raw_lay = card()
        raw_head = QHBoxLayout()
        raw_title = QLabel("Raw signals per sensor")
        raw_title.setObjectName("cardtitle")
        raw_head.addWidget(raw_title)
        raw_head.addStretch(1)
        # one legend for every raw chart (the same axes, the same colours), outside the plots
        raw_head.addWidget(QLabel(title_with_legend("sensor axes", tuple(zip("xyz", AXIS_COLORS)), size_pt=9)))
        raw_lay.addLayout(raw_head)
        self.raw_plots = pg.GraphicsLayoutWidget()  # every raw chart in one scene
        self.raw_plots.ci.setSpacing(2)
        self.raw_plots.ci.setContentsMargins(0, 0, 0, 0)
        raw_lay.addWidget(self.raw_plots, 1)
        body.addWidget(raw_card, 5)
        # right: kinematics
        right = QVBoxLayout()
        body.addLayout(right, 6)
        kin_card, kin_lay = card("Kinematics (relative to the zero posture)")
        self.kin_plots = pg.GraphicsLayoutWidget()
        self.kin_plots.ci.setSpacing(2)
        self.kin_plots.ci.setContentsMargins(0, 0, 0, 0)
        self.angles = StripChart("Lumbar angles", ("flexion +", "lateral bend (right +)", "rotation (left +)"),
                                 AXIS_COLORS, rate_hz=200.0, unit="angle (°)", scale=RAD2DEG, finite=True,
                                 y_range=(-30, 70))
        # hip flexion is drawn (and named) when thigh sensors stream, knee flexion when shank sensors do
        self.tilts = StripChart("Sagittal angles", ("pelvic tilt (anterior +)", "trunk flexion", "hip flexion",
                                                    "knee flexion"),
                                (*TILT_COLORS, HIP_COLOR, KNEE_COLOR), rate_hz=200.0, unit="angle (°)", scale=RAD2DEG,
                                finite=True, y_range=(-20, 90))
        self.tilts.show_curves((True, True, False, False))
        self.kin_plots.addItem(self.angles, row=0, col=0)
        self.kin_plots.addItem(self.tilts, row=1, col=0)
        kin_lay.addWidget(self.kin_plots, 1)
        right.addWidget(kin_card, 3)
        bottom = QHBoxLayout()
        right.addLayout(bottom, 2)
        st_card, st_lay = card("Postural sway")
        self.stabilogram = Stabilogram()
        st_lay.addWidget(self.stabilogram, 1)
        self.sway_label = QLabel(SWAY_NONE)
        self.sway_label.setObjectName("subtitle")
        st_lay.addWidget(self.sway_label)
        bottom.addWidget(st_card, 2)
        rep_card, rep_lay = card("Repetitions (trunk flexion)")
        nums = QHBoxLayout()
        self.rep_count = BigValue("repetitions", "0", size_pt=30, color=COLORS["accent"])
        self.cur_angle = BigValue("trunk flexion now", "–", size_pt=22)
        nums.addWidget(self.rep_count)
        nums.addWidget(self.cur_angle)
        rep_lay.addLayout(nums)
        self.rep_table = QTableWidget(0, 5)
        self.rep_table.setHorizontalHeaderLabels(REP_COLUMNS)
        self.rep_table.verticalHeader().setVisible(False)
        hh = self.rep_table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)  # "#": the others get the room
        self.rep_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        rep_lay.addWidget(self.rep_table, 1)
        bottom.addWidget(rep_card, 3)  # the table needs the width; the stabilogram is square
        engine.sources_changed.connect(self.rebuild)
        engine.repetition.connect(self.on_repetition)

    # -----------------------------------------------------------------------------------------
    def rebuild(self) -> None:
        """One row of (acc, gyro) plots per sensor on the bus."""
        self.raw_plots.clear()
        self._raw.clear()
        self._draw_all = True
        self._derived_cursor = 0
        self._series = None
        for p in (self.angles, self.tilts, self.stabilogram):
            p.clear_data()
        self.sway_label.setText(SWAY_NONE)
        self.rep_table.setRowCount(0)
        self.rep_count.set("0")
        if not self.engine.connected:
            return
        rates = getattr(self.engine.source, "rates_hz", {}) or {}
        for row, (sid, ring) in enumerate(self.engine.bus.rings.items()):
            rate = rates.get(sid, 100.0)
            key = (sid, float(rate))
            if key in self._charts:  # sensors connected one by one rebuild often: reuse what was built
                acc, gyr = self._charts[key]
                acc.clear_data()
                gyr.clear_data()
            else:
                short = placement_name(sid)
                acc = StripChart(f"{short} · acceleration", ("x", "y", "z"), AXIS_COLORS, rate_hz=rate, unit="m/s²",
                                 y_range=(-15, 15), legend=False)
                gyr = StripChart(f"{short} · angular rate", ("x", "y", "z"), AXIS_COLORS, rate_hz=rate, unit="°/s",
                                 scale=RAD2DEG, y_range=(-120, 120), legend=False)
                self._charts[key] = (acc, gyr)
            self.raw_plots.addItem(acc, row=row, col=0)
            self.raw_plots.addItem(gyr, row=row, col=1)
            self._raw[sid] = (ring, max(0, ring.total - int(10 * rate)), acc, gyr)

    def on_repetition(self, rep: LiveRep) -> None:
        if rep.signal != "trunk_flexion":
            return
        self.rep_count.set(str(rep.index))
        self.rep_table.insertRow(0)
        quality = "ok" if rep.valid else (rep.reason or "rejected")
        if rep.valid and rep.sparc < -5:
            quality = "jerky"
        vals = [str(rep.index), f"{rep.rom_rad * RAD2DEG:.0f}", f"{rep.duration_s:.1f}",
                f"{rep.peak_velocity_rads * RAD2DEG:.0f}", quality]
        for c, v in enumerate(vals):
            it = QTableWidgetItem(v)
            it.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            self.rep_table.setItem(0, c, it)
        while self.rep_table.rowCount() > 6:
            self.rep_table.removeRow(self.rep_table.rowCount() - 1)

    def showEvent(self, event: object) -> None:  # noqa: N802 (Qt name)
        self._draw_all = True  # a view coming back shows every chart at once, not in turns
        super().showEvent(event)  # type: ignore[arg-type]

    def _draw_raw(self, sid: str, entry: tuple[Any, int, StripChart, StripChart]) -> None:
        """Pull one sensor's new samples from its ring into its two raw charts and redraw them."""
        ring, cursor, acc, gyr = entry
        if self.engine.bus.rings.get(sid) is not ring:
            return
        b, cursor, missed = ring.since(cursor)
        self.missed += missed
        self._raw[sid] = (ring, cursor, acc, gyr)
        if len(b):
            acc.append(b.time_s, b.acc)
            gyr.append(b.time_s, b.gyro)
            acc.redraw()
            gyr.redraw()

    def refresh(self) -> None:
        """Pull what is new from the rings and redraw (GUI timer; only while this view is shown).

        Cheap by construction: the rings hand over only the new samples, each chart draws its visible
        window decimated to its pixel width, and the text read-outs change at most every
        ``LABEL_PERIOD_S``. The ellipse is refitted at the same slow pace.
        """
        eng = self.engine
        draw_all, self._draw_all = self._draw_all, False
        proc = eng.processor
        t = np.empty(0)
        if proc is not None:
            if self._series is not proc.series:  # (re)connected: the sensors worn may have changed
                self._series, self._derived_cursor = proc.series, 0
                self.stabilogram.set_rate(proc.rate_hz)
                self.tilts.show_curves((True, True, any(sid in THIGHS for sid in eng.bus.rings),
                                        any(sid in SHANKS for sid in eng.bus.rings)))
            t, x, self._derived_cursor, _ = proc.series.since(self._derived_cursor)
            if len(t):
                self.angles.append(t, x[:, 0:3])
                self.tilts.append(t, x[:, [COL["pelvic_tilt"], COL["trunk_flexion"], COL["hip_flexion"],
                                           COL["knee_flexion"]]])
                self.stabilogram.append(t, x[:, [COL["sway_ap"], COL["sway_ml"]]],
                                        posture=x[:, [COL["trunk_flexion"], COL["pelvic_tilt"]]])
                self._kin_due = self._sway_due = True
        kin_frame = self._kin_due and not draw_all
        if self._kin_due:
            self.angles.redraw()
            self.tilts.redraw()
            self._kin_due = False
        if not kin_frame:
            if self._sway_due:
                self.stabilogram.redraw()
                self._sway_due = False
            rows = list(self._raw.items())
            if rows:
                turn = range(len(rows)) if draw_all else (self._raw_turn % len(rows),)
                self._raw_turn += 1
                for row in turn:
                    self._draw_raw(*rows[row])
        now = time.monotonic()
        slow = not kin_frame and now - self._last_labels >= LABEL_PERIOD_S  # the read-outs: a light frame's
        if slow:
            self._last_labels = now
        if proc is None:
            if slow:
                self.state.setText("No sensors connected — go to Devices.")
            return
        if not slow:
            return
        if len(t) or self._series.total:
            tf = self._series.latest(1)[1]
            tf = tf[-1, COL["trunk_flexion"]] if len(tf) else math.nan
            self.cur_angle.set(degrees_text(tf * RAD2DEG))
        self.stabilogram.update_ellipse()
        if np.isfinite(self.stabilogram.area):
            self.sway_label.setText(sway_text(self.stabilogram.area))
        if not proc.ready.is_set():
            self.state.setText("Loading the orientation filter…")
        elif proc.calibrated:
            self.state.setText("Calibrated: angles are relative to the recorded zero posture.")
        else:
            self.state.setText("Provisional zero (first second of data) — ask the patient to stand still and "
                               "press ‘Zero posture’.")
