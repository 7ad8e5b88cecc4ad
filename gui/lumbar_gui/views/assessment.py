"""Assessment: subject, protocol, guided steps (sensor check, calibration, trials), results against criteria.

Each trial is recorded to its own session file (protocol = the trial's movement, so ``lumbar analyze``
applies), from its first sample: it opens with 5 s still in the start position (markers ``calibration_start``
/ ``calibration_end``; the demo patient first takes that position), a countdown, ``go``, the movement and an
automatic stop (``trial_end``): once the repetitions the protocol asks for are counted (and the patient is
back at rest), or when its time is up. The calibration step's quality and every operator note are stored as
markers too. All step timing follows the data clock, so a faster-than-real-time demo runs the same steps.
"""
from __future__ import annotations

import html
import math
import queue
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QProgressBar, QPushButton, QSizePolicy, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from lumbar.errors import LumbarError
from lumbar.types import SHANKS, THIGHS, SessionInfo, check_subject_code
from lumbar_gui.engine import CalibrationReport, Engine
from lumbar_gui.sources import placement_name
from lumbar_gui.trials import (DEFAULT_PROTOCOLS, Row, Trial, file_stems, outcome, protocols, registry,
                               registry_error, result_rows, score_trial, verdict)
from lumbar_gui.views.trial_monitor import Monitoring, TrialMonitor, monitor_mode
from lumbar_gui.widgets import COLORS, card

STILL_S = 5.0
COUNTDOWN_S = 3.0
#: After the last repetition is counted (on its way back, below 20 % of the range) the trial runs this much
#: longer, s: the patient comes to rest, so the repetition's end (the minimum at rest) is in the file.
SETTLE_S = 2.0
#: The demo patient's movement is simulated when the trial starts (a few seconds for 90 s on four sensors).
DEMO_START_TIMEOUT_S = 30.0
#: The still phase waits at most this long for the patient to hold still (TrialMonitor.steady), s.
STEADY_TIMEOUT_S = 15.0


def _visit_date(folder_name: str) -> str:
    """An assessment folder's date (folders are named ``YYYYmmdd-HHMMSS``), ISO; else the name itself."""
    try:
        return datetime.strptime(folder_name, "%Y%m%d-%H%M%S").date().isoformat()
    except ValueError:
        return folder_name


class AssessmentView(QWidget):
    title = "Assessment"

    def __init__(self, engine: Engine, sessions_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("page")
        self.engine = engine
        self.sessions_dir = Path(sessions_dir)
        self.code = ""  # the subject's pseudonymous code, once an assessment has begun
        self.trials: list[Trial] = []
        self.step = "setup"
        self.trial_index = 0
        self.folder: Path | None = None
        self.files: list[Path] = []
        self.calibration: CalibrationReport | None = None
        self.results: list[tuple[Trial, Path, dict[str, Any] | None, str | None]] = []
        self.notes: list[str] = []
        #: trial key (its definition) → (file, its analysis in display units or None) of the same test at the
        #: last visit
        self.previous: dict[str, tuple[Path, dict[str, Any] | None]] = {}
        #: movement → its analysis plan (``lumbar.protocols``), read when an assessment begins
        self.plans: dict[str, dict[str, Any]] = {}
        #: thigh sensors found worn back to front during a trial, with what the operator reads: left out of the
        #: live hip angle until the next calibration
        self.turned_thighs: dict[str, str] = {}
        self._phase = ""
        self._t0 = 0.0
        self._counted_at = math.inf  # when the trial's repetitions were all counted (engine time)
        self._demo_job = 0  # the demo patient's perform request of the running trial (0: real sensors)
        self._settle_from = math.inf  # when the patient was in the start position (engine time)
        self._recording: tuple[Path, SessionInfo] | None = None  # the file of the trial about to begin
        self._jobs: queue.Queue = queue.Queue()
        self._analysing = 0
        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 12, 16, 12)
        head = QHBoxLayout()
        t = QLabel("Guided assessment")
        t.setObjectName("title")
        head.addWidget(t)
        self.sub = QLabel("")
        self.sub.setObjectName("subtitle")
        head.addWidget(self.sub, 1)
        self.rec_label = QLabel("")
        head.addWidget(self.rec_label)
        outer.addLayout(head)

        body = QHBoxLayout()
        outer.addLayout(body, 1)
        steps_card, sl = card("Steps")
        self.steps = QListWidget()
        self.steps.setMinimumWidth(230)
        self.steps.setMaximumWidth(300)
        # a battery's long trial titles wrap onto a second line (no sideways scrolling in a list of steps)
        self.steps.setWordWrap(True)
        self.steps.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.steps.setResizeMode(QListWidget.ResizeMode.Adjust)  # rows re-measured as the width settles
        self.steps.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.steps.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.steps.setStyleSheet(
            "QListWidget { font-size: 11pt; border: none; background: transparent; }"
            "QListWidget::item { padding: 7px 0px; border-bottom: 1px solid #eef2f5; }"
            f"QListWidget::item:selected {{ background: #e0f2f1; color: {COLORS['text']}; font-weight: 600;"
            f" border-left: 3px solid {COLORS['accent']}; }}")
        sl.addWidget(self.steps, 1)
        body.addWidget(steps_card, 0)

        main = QVBoxLayout()
        body.addLayout(main, 1)
        setup_card, su = card("Subject and protocol")
        row = QHBoxLayout()
        self.subject = QLineEdit()
        self.subject.setPlaceholderText("pseudonymous code, e.g. S017 (no names)")
        self.subject.setMinimumWidth(120)
        self.operator = QLineEdit()
        self.operator.setPlaceholderText("operator initials")
        self.operator.setMaximumWidth(140)
        self.protocol = QComboBox()
        self.protocol.addItems(list(DEFAULT_PROTOCOLS))  # the single tests are added when the view is shown
        self.begin_btn = QPushButton("Begin assessment")
        self.begin_btn.setObjectName("primary")
        self.begin_btn.clicked.connect(self.begin)
        for lab, w in (("Subject", self.subject), ("Operator", self.operator), ("Protocol", self.protocol)):
            row.addWidget(QLabel(lab))
            row.addWidget(w, 1 if w is not self.operator else 0)
        row.addWidget(self.begin_btn)
        su.addLayout(row)
        main.addWidget(setup_card)

        step_card, st = card("Current step")
        self.step_title = QLabel("Enter the subject code and choose a protocol.")
        self.step_title.setStyleSheet("font-size: 15pt; font-weight: 600;")
        self.instruction = QLabel("")
        self.instruction.setWordWrap(True)
        self.instruction.setStyleSheet("font-size: 13pt;")
        # a problem found live that the operator should act on (a thigh sensor worn back to front)
        self.alert = QLabel("")
        self.alert.setWordWrap(True)
        self.alert.setStyleSheet(f"font-size: 12pt; font-weight: 600; color: {COLORS['warn']};")
        self.alert.setVisible(False)
        self.countdown = QLabel("")
        self.countdown.setWordWrap(True)  # a battery's verdict is a sentence: it wraps, the window keeps its width
        self.countdown.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.countdown.setStyleSheet(f"font-size: 48pt; font-weight: 800; color: {COLORS['accent']};")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.table = QTableWidget(0, 4)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.setAlternatingRowColors(True)
        self.table.setStyleSheet("QTableWidget { font-size: 11pt; alternate-background-color: #f7f9fa; }"
                                 "QTableWidget::item { padding: 2px 10px; }")
        # the stretching column wraps its text (the others fit theirs); each row as tall as its text
        self.table.setWordWrap(True)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # as tall as its rows (no empty grid below them); the step's buttons stay at the bottom of the card
        self.table.setSizeAdjustPolicy(QTableWidget.SizeAdjustPolicy.AdjustToContents)
        self.table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Maximum)
        btns = QHBoxLayout()
        self.redo_btn = QPushButton("Redo")
        self.redo_btn.clicked.connect(self.redo)
        self.action_btn = QPushButton("Continue")
        self.action_btn.setObjectName("primary")
        self.action_btn.setMinimumWidth(200)
        self.action_btn.clicked.connect(self.action)
        self.report_btn = QPushButton("Report: every visit")
        self.report_btn.setToolTip("This subject's report over all their sessions in the sessions folder: results of "
                                   "each visit, progress since the earlier ones, home biofeedback adherence")
        self.report_btn.clicked.connect(self.open_subject_report)
        self._report_jobs: queue.Queue = queue.Queue()
        self.abort_btn = QPushButton("Stop trial")
        self.abort_btn.setObjectName("danger")
        self.abort_btn.clicked.connect(self.abort_trial)
        btns.addStretch(1)
        btns.addWidget(self.abort_btn)
        btns.addWidget(self.redo_btn)
        btns.addWidget(self.report_btn)
        btns.addWidget(self.action_btn)
        # what the patient is doing while a trial runs (hidden in the other steps)
        self.monitor = TrialMonitor(engine)
        self.monitor.on_thigh_turned = self._thigh_turned
        for w in (self.step_title, self.instruction, self.alert, self.countdown, self.progress):
            st.addWidget(w)
        st.addWidget(self.monitor, 10)
        st.addWidget(self.table)
        st.addStretch(1)
        st.addLayout(btns)
        self.countdown.setVisible(False)
        self.progress.setVisible(False)
        main.addWidget(step_card, 1)

        notes_card, nl = card("Operator notes (Ctrl+M: marker now)")
        nrow = QHBoxLayout()
        self.note = QLineEdit()
        self.note.setPlaceholderText("e.g. patient reports pain at end of range — Enter to add")
        self.note.returnPressed.connect(self.add_note)
        self.note_btn = QPushButton("Add note")
        self.note_btn.clicked.connect(self.add_note)
        nrow.addWidget(self.note, 1)
        nrow.addWidget(self.note_btn)
        nl.addLayout(nrow)
        self.notes_list = QLabel("")
        self.notes_list.setObjectName("subtitle")
        self.notes_list.setWordWrap(True)
        nl.addWidget(self.notes_list)
        main.addWidget(notes_card)
        self.marker_shortcut = QShortcut(QKeySequence("Ctrl+M"), self)
        self.marker_shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
        self.marker_shortcut.activated.connect(lambda: self.add_marker())
        engine.calibration_done.connect(self.on_calibration)
        self._show_buttons()

    # -- helpers -------------------------------------------------------------------------------
    def _show_buttons(self, action: str | None = None, redo: bool = False, abort: bool = False,
                      enabled: bool = True) -> None:
        self.action_btn.setVisible(action is not None)
        if action:
            self.action_btn.setText(action)
        self.action_btn.setEnabled(enabled)
        self.redo_btn.setVisible(redo)
        self.abort_btn.setVisible(abort)
        self.report_btn.setVisible(self.step == "results")

    def _set_countdown(self, text: str, color: str | None = None, size_pt: int = 48, left: bool = False) -> None:
        """The big line of the step (countdown, "Go!", a verdict); hidden when empty, so it leaves no gap."""
        align = (Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter) if left else Qt.AlignmentFlag.AlignCenter
        if self.countdown.alignment() != align:
            self.countdown.setAlignment(align)
        style = f"font-size: {size_pt}pt; font-weight: 800; color: {color or COLORS['accent']};"
        if style != self.countdown.styleSheet():  # called every frame during a trial: restyle only on change
            self.countdown.setStyleSheet(style)
        if text != self.countdown.text():
            self.countdown.setText(text)
        self.countdown.setVisible(bool(text))

    def _set_table(self, headers: list[str], rows: list[list[str]], colors: list[str | None] | None = None,
                   stretch: int = 0, tips: list[str] | None = None) -> None:
        """Rows of text; the last column coloured per row, each row's tooltip ``tips``; a row of one text is a
        heading across the table (bold, coloured). Column ``stretch`` takes the spare width and wraps its text,
        the others fit their contents (nothing elided). Hidden while there are no rows."""
        from PySide6.QtGui import QBrush, QColor, QFont

        self.table.clear()
        self.table.clearSpans()
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setRowCount(len(rows))
        bold = QFont(self.table.font())
        bold.setBold(True)
        for r, vals in enumerate(rows):
            for c, v in enumerate(vals):
                it = QTableWidgetItem(v)
                if tips and tips[r]:
                    it.setToolTip(tips[r])
                if colors and colors[r] and c == len(vals) - 1:
                    it.setForeground(QBrush(QColor(colors[r])))
                if c == len(vals) - 1 and (colors and colors[r] or len(vals) == 1):
                    it.setFont(bold)
                self.table.setItem(r, c, it)
            if len(vals) == 1 and len(headers) > 1:
                self.table.setSpan(r, 0, 1, len(headers))
        head = self.table.horizontalHeader()
        for c in range(len(headers)):
            head.setSectionResizeMode(c, QHeaderView.ResizeMode.Stretch if c == stretch
                                      else QHeaderView.ResizeMode.ResizeToContents)
        self.table.setVisible(bool(rows))  # headers over no rows look unfinished

    def _build_steps(self) -> None:
        self.steps.clear()
        names = ["Sensor check", "Calibration"] + [f"Trial {i + 1}: {t.name}"
                                                     for i, t in enumerate(self.trials)] + ["Results"]
        for i, n in enumerate(names):
            self.steps.addItem(QListWidgetItem("○  " + n))
            self._mark_step(i, "todo")

    def _mark_step(self, index: int, state: str) -> None:
        it = self.steps.item(index)
        if it is None:
            return
        sym = {"done": "✔", "current": "▶", "todo": "○", "failed": "✖"}[state]
        it.setText(sym + it.text()[1:])
        color = {"done": COLORS["text"], "current": COLORS["text"], "todo": "#8a96a0", "failed": COLORS["bad"]}[state]
        from PySide6.QtGui import QBrush, QColor

        it.setForeground(QBrush(QColor(color)))
        if state == "current":
            self.steps.setCurrentRow(index)

    # -- flow ----------------------------------------------------------------------------------------
    def begin(self) -> bool:
        try:
            code = check_subject_code(self.subject.text().strip())
        except LumbarError as e:
            self.sub.setText(str(e))
            return False
        if not self.engine.connected:
            self.sub.setText("Connect the sensors first (Devices).")
            return False
        self.code = code
        self.trials = protocols()[self.protocol.currentText()]
        self.folder = self.sessions_dir / code / datetime.now().strftime("%Y%m%d-%H%M%S")
        self.files, self.results, self.notes, self.previous = [], [], [], {}
        self.calibration = None
        self.turned_thighs = {}
        self.plans = self._analysis_plans()
        self._build_steps()
        unread = registry_error()
        self.sub.setText(f"Subject {code} · {self.protocol.currentText()}"
                         + (f" — the protocol definitions could not be read, the trials are not scored: {unread}"
                            if unread else ""))
        self.begin_btn.setEnabled(False)
        self.enter_sensor_check()
        return True

    @staticmethod
    def _analysis_plans() -> dict[str, dict[str, Any]]:
        """What each movement's analysis computes (it decides what the trial monitor shows); none when the
        protocol definitions cannot be read (the monitor then shows the angles only)."""
        reg = registry()
        return reg.analysis_plans() if reg is not None else {}

    def enter_sensor_check(self) -> None:
        self.step = "sensor_check"
        self._mark_step(0, "current")
        self.step_title.setText("1 · Sensor check")
        text = "Check that the L1 and S1 sensors are connected and streaming at their full rate."
        hips = [t.name for t in self.trials if (self.plans.get(t.movement) or {}).get("with_thighs")]
        if hips and not any(sid in THIGHS for sid in self.engine.bus.status):
            text += (f" Thigh sensors are optional: worn, they measure the hips themselves in the "
                     f"{' and '.join(dict.fromkeys(hips)).lower()} (without them the pelvis's tilt stands in).")
        knees = [t.name for t in self.trials if (self.plans.get(t.movement) or {}).get("with_shanks")]
        if knees and not any(sid in SHANKS for sid in self.engine.bus.status):
            text += (f" Shank sensors are optional: worn on the outside of each shin, they measure the knee in the "
                     f"{' and '.join(dict.fromkeys(knees)).lower()} and count its repetitions (without them you "
                     f"judge the knee by eye and stop the trial).")
        self.instruction.setText(text)
        self._set_countdown("")
        self._show_buttons("Continue", enabled=False)

    def sensor_check_ok(self) -> tuple[bool, list[list[str]], list[str | None]]:
        rows, colors, ok = [], [], True
        need = ["lumbar", "sacrum"]
        rates = getattr(self.engine.source, "rates_hz", {}) or {}
        for sid in need + [s for s in self.engine.bus.status if s not in need]:
            st = self.engine.bus.status.get(sid)
            rate = self.engine.achieved_rate_hz.get(sid, 0.0)
            nominal = rates.get(sid, 100.0)
            good = st is not None and st.connected and rate >= 0.9 * nominal and st.loss_pct < 1.0
            if sid in need:
                ok &= good
            rows.append([placement_name(sid), "connected" if st and st.connected else "missing",
                         f"{rate:.0f} / {nominal:.0f} Hz", "OK" if good else ("check" if st else "required")])
            colors.append(COLORS["ok"] if good else COLORS["bad"])
        return ok, rows, colors

    def enter_calibration(self) -> None:
        self.step = "calibration"
        self._show_alert()
        self._mark_step(0, "done")
        self._mark_step(1, "current")
        self.step_title.setText("2 · Calibration")
        self.instruction.setText("Ask the patient to stand upright, feet hip-width apart, arms relaxed, looking ahead, "
                                 "and to keep still for 5 seconds. Angles are measured from this posture.")
        self._set_countdown("")
        self.progress.setVisible(False)
        self._set_table(["sensor", "movement (acc SD)", "gyro RMS", "quality"], [])
        self._show_buttons("Start calibration")
        self._phase = "ready"

    def start_calibration(self) -> None:
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self._phase = "countdown"
        self._t0 = self.engine.now()
        self._show_buttons(None)

    def on_calibration(self, rep: CalibrationReport) -> None:
        if self.step != "calibration":
            return
        self.calibration = rep
        self._phase = "done"
        rows, colors = [], []
        for sid, q in rep.per_sensor.items():
            rows.append([placement_name(sid),
                         f"{q.get('acc_sd_mg', float('nan')):.1f} mg (limit {q.get('limit_mg', 10):.0f})",
                         f"{q.get('gyro_rms_dps', float('nan')):.2f} °/s", q.get("message", "")])
            colors.append(COLORS["ok"] if q.get("ok") else COLORS["bad"])
        self._set_table(["sensor", "movement (acc SD)", "gyro RMS", "quality"], rows, colors)
        self._set_countdown("✔ Calibrated" if rep.ok else "Redo needed", COLORS["ok"] if rep.ok else COLORS["bad"], 32)
        self.progress.setVisible(False)
        self.instruction.setText("Calibration quality is shown below." if rep.ok else rep.message)
        self._mark_step(1, "current" if not rep.ok else "done")
        if rep.ok:
            self.turned_thighs = {}  # a new zero posture (a refitted sensor): every thigh worn counts again
        self._show_buttons("Continue to the first trial", redo=True, enabled=rep.ok)

    def enter_trial(self, i: int) -> None:
        self.step = "trial"
        self.trial_index = i
        self._mark_step(2 + i, "current")
        tr = self.trials[i]
        self.step_title.setText(f"{3 + i} · Trial: {tr.name}")
        if self._counted(tr):
            stop = (f"the task; it stops by itself once {tr.reps} repetitions are counted, or after "
                    f"{tr.duration_s:.0f} s")
        else:
            stop = f"{tr.duration_s:.0f} s of the task; it stops by itself"
        self.instruction.setText(f"<b>Read to the patient:</b> {html.escape(tr.instruction)}<br><br>"
                                 f"The trial starts with {STILL_S:.0f} s still in the start position, a countdown, "
                                 f"then {stop}.")
        self._set_countdown("")
        self._set_table([], [])  # the calibration's or the last trial's table belongs to its own step
        self._show_alert()
        self.monitor.stop()
        self.progress.setValue(0)
        self.progress.setVisible(False)
        self._phase = "ready"
        self._show_buttons("Start trial")

    def start_trial(self) -> Path:
        """The patient takes the start position (the demo patient is asked to); the trial's file begins with
        the still phase, once they hold still there (:meth:`_hold_still`). Returns the file's path."""
        tr = self.trials[self.trial_index]
        assert self.folder is not None
        path = self.folder / f"{self.trial_index + 1:02d}-{tr.key}.h5"
        # the definition and its conditions in words the report reads back (lumbar.protocols.session_conditions)
        parts = [f"assessment {self.protocol.currentText()}", f"trial {self.trial_index + 1} of {len(self.trials)}",
                 f"protocol {tr.protocol}" if tr.protocol else "", tr.notes()]
        notes = "; ".join(p for p in parts if p)
        self._recording = (path, SessionInfo(subject_code=self.code, operator=self.operator.text().strip(),
                                             protocol=tr.movement, notes=notes))
        self._t0 = self.engine.now()
        src = self.engine.source
        self._demo_job = 0
        if hasattr(src, "perform"):
            # the protocol's repetitions when the trial stops at their count; else its own for the time
            kw = dict(tr.demo) | ({"reps": tr.reps} if self._counted(tr) else {})
            self._demo_job = src.perform(tr.movement, STILL_S + tr.duration_s + 3.0, hold=True, **kw)
        self._counted_at = math.inf
        self.monitor.start(self._monitoring(tr), tr.reps if self._counted(tr) else 0, self.turned_thighs)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self._show_buttons(None, abort=True)
        # the still phase (the file's calibration posture, and the rest level of its analysis) begins once the
        # patient holds still in the start position: data from before it (getting down on all fours) would
        # bias the analysis. The demo patient jumps into the position when its movement is simulated, seconds
        # from now, and holds it until "go"; the live orientation settles after the jump.
        self._phase = "waiting_start"
        self._settle_from = math.inf if self._demo_job else self._t0
        self._set_countdown("Demo patient getting into position…" if self._demo_job else "", COLORS["muted"], 20)
        return path

    def _hold_still(self) -> None:
        """The patient holds still in the start position: recording starts with the trial's still phase (its
        calibration posture)."""
        tr = self.trials[self.trial_index]
        assert self._recording is not None
        path, info = self._recording
        self.engine.start_recording(path, info)
        self.files.append(path)
        self._t0 = t = self.engine.now()
        self.engine.mark("trial_start", tr.name, t)
        self.engine.mark("calibration_start", "still in the start position", t)
        cal = self.calibration
        if cal is not None:
            q = "; ".join(f"{sid}: acc SD {v.get('acc_sd_mg', float('nan')):.1f} mg" for sid, v in cal.per_sensor.items())
            self.engine.mark("calibration_quality", q, t)
        self._phase = "still"
        self.monitor.hold_still(t)
        self.rec_label.setText(f"<span style='color:{COLORS['rec']};font-weight:700'>● REC</span> {path.name}")

    def _counted(self, trial: Trial) -> bool:
        """Whether the trial stops at its repetition count: it asks for some, and the monitor counts them."""
        return bool(trial.reps) and self._monitoring(trial).mode == "repetitions"

    def _monitoring(self, trial: Trial) -> Monitoring:
        """What the monitor shows and counts for the trial, with the sensors worn now (thighs: the hips' angle;
        not those found worn back to front; shanks: the knee's)."""
        thighs = any(sid in THIGHS and sid not in self.turned_thighs for sid in self.engine.bus.rings)
        shanks = any(sid in SHANKS for sid in self.engine.bus.rings)
        return monitor_mode(self.plans.get(trial.movement), thighs=thighs, shanks=shanks)

    def _thigh_turned(self, thigh: str, words: str) -> None:
        """The trial monitor found a thigh sensor worn back to front: say so now, mark it in the trial's file,
        and leave it out of the live hip angle (the monitor counts without it)."""
        self.turned_thighs[thigh] = words
        self.engine.mark("note", words)
        proc = self.engine.processor
        if proc is not None:
            proc.exclude_thighs(list(self.turned_thighs))
        self._show_alert()

    def _show_alert(self) -> None:
        """The live warnings of this calibration, above the trial's countdown."""
        text = " ".join(f"⚠ {w}" for w in self.turned_thighs.values())
        self.alert.setText(text)
        self.alert.setVisible(bool(text) and self.step == "trial")

    def abort_trial(self) -> None:
        """Stop trial: a trial under way ends and is saved (marked as stopped); one still waiting for the patient
        to hold still has recorded nothing and is set up again."""
        if self.step != "trial":
            return
        if self._phase == "waiting_start":
            self.monitor.stop()
            if self._demo_job:
                self.engine.source.go()  # the demo patient stops holding its start position
            self.enter_trial(self.trial_index)
        elif self._phase in ("still", "moving"):
            self.engine.mark("trial_aborted", "stopped by the operator")
            self._finish_trial()

    def _finish_trial(self, why: str = "") -> None:
        self.engine.mark("trial_end", why)
        if self._demo_job:
            self.engine.source.go()  # stopped before "go": the demo patient stops holding (after it: no effect)
        path = self.engine.stop_recording()
        self.monitor.stop()  # the trial's results take its place
        self.rec_label.setText("")
        self._phase = "analysing"
        self._set_countdown("Stop ✔", COLORS["ok"], 32)
        self.progress.setVisible(False)
        self.instruction.setText("Trial saved. Computing its results…")
        tr = self.trials[self.trial_index]
        self._analysing += 1

        def work() -> None:
            from lumbar.analysis import analyze_file

            try:
                if not self.engine.wait_saved():  # the file is finished on the recorder's thread
                    raise TimeoutError("the recording was not saved within 2 minutes")
                a = analyze_file(path)
                self._compare_with_last_visit(tr)
                self._jobs.put((tr, path, a.to_dict(display=True), None))
            except Exception as e:  # noqa: BLE001 - shown in the results
                self._jobs.put((tr, path, None, f"{type(e).__name__}: {e}"))

        threading.Thread(target=work, daemon=True, name="lumbar-assessment-analysis").start()

    def previous_trial_file(self, trial: Trial) -> Path | None:
        """The same test at the subject's last assessment before this one: the newest earlier folder (folders
        are named by their start, ``YYYYmmdd-HHMMSS``) holding a ``NN-<stem>.h5`` (:func:`file_stems`)."""
        subject = self.sessions_dir / self.code
        if self.folder is None or not subject.is_dir():
            return None
        stems = file_stems(trial)
        for d in sorted((d for d in subject.iterdir() if d.is_dir() and d.name < self.folder.name), reverse=True):
            for stem in stems:
                hits = sorted(d.glob(f"[0-9][0-9]-{stem}.h5"))
                if hits:
                    return hits[-1]
        return None

    def _compare_with_last_visit(self, trial: Trial) -> None:
        """(analysis thread) Analyse the same test of the last visit, for the results' "last visit" column."""
        from lumbar.analysis import analyze_file

        prev = self.previous_trial_file(trial)
        if prev is None or trial.key in self.previous:
            return
        try:
            self.previous[trial.key] = (prev, analyze_file(prev, store=False).to_dict(display=True))
        except Exception:  # noqa: BLE001 - an unreadable old file only leaves the column empty ("–")
            self.previous[trial.key] = (prev, None)

    def trial_rows(self, trial: Trial, analysis: dict[str, Any] | None) -> tuple[Any, list[Row]]:
        """A trial's score (``lumbar.protocols``: the report's) and its rows in the results."""
        result = score_trial(trial, analysis)
        return result, result_rows(trial, result, analysis)

    def enter_results(self) -> None:
        self.step = "results"
        self._show_alert()  # the results say it per trial
        self._mark_step(len(self.trials) + 2, "current")
        self.step_title.setText(f"{len(self.trials) + 3} · Results")
        before = {}  # trial key → measure → the value at the last visit
        for key, (_, d) in self.previous.items():
            tr = next((t for t in self.trials if t.key == key), None)
            if tr is not None and d is not None:
                before[key] = {row.measure: row.value for row in self.trial_rows(tr, d)[1]}
        dates = sorted({_visit_date(f.parent.name) for f, _ in self.previous.values()})
        compared = (f" <b>Last visit</b>: the same test on {', '.join(dates)}." if dates else "")
        n = len(self.files)
        self.instruction.setText(f"Saved in {self.code}/{self.folder.name}/ ({n} file{'s' * (n != 1)}).{compared} "
                                 "Criteria and reference values are those of the protocol definitions (their sources "
                                 "in the tooltips and the report); open a trial in Review for its signals.")
        rows, colors, tips, scores = [], [], [], []
        failed = 0
        order = {id(t): i for i, t in enumerate(self.trials)}
        for tr, path, d, err in sorted(self.results, key=lambda r: order.get(id(r[0]), 0)):
            trial = f"{order.get(id(tr), 0) + 1} · {tr.name}"
            if d is None:
                rows.append([f"{trial} — analysis failed: {err or 'no reason given'}"])
                colors.append(COLORS["bad"])
                tips.append("")
                failed += 1
                continue
            result, trial_rows = self.trial_rows(tr, d)
            scores.append(result)
            said, passed, notes = outcome(result)
            rows.append([f"{trial} — {said}"])  # a heading over the trial's measures
            colors.append(None if passed is None else (COLORS["ok"] if passed else COLORS["warn"]))
            tips.append(notes)
            for w in d.get("warnings") or []:  # e.g. a thigh sensor worn turned: to refit before the next trial
                rows.append([f"⚠ {w}"])
                colors.append(COLORS["warn"])
                tips.append("")
            for row in trial_rows:
                last = [before.get(tr.key, {}).get(row.measure, "–")] if dates else []
                rows.append([row.measure, row.value] + last + [row.against, row.outcome])
                colors.append(None if row.passed is None else (COLORS["ok"] if row.passed else COLORS["warn"]))
                tips.append(row.tip)
        self._set_table(["measure", "value"] + (["last visit"] if dates else []) + ["needed / reference", "result"],
                        rows, colors, stretch=0, tips=tips)
        if failed:
            self._set_countdown(f"{failed} trial{'s' * (failed > 1)} could not be analysed", COLORS["bad"], 20, left=True)
        else:
            text, good = verdict(self.protocol.currentText(), scores)
            self._set_countdown(text, COLORS["muted"] if good is None else (COLORS["ok"] if good else COLORS["warn"]),
                                20, left=True)
        self._mark_step(len(self.trials) + 2, "done")
        self._show_buttons("New assessment")

    # -- the subject's report -------------------------------------------------------------------------
    def subject_files(self) -> list[Path]:
        """Every session file of the current subject in the sessions folder: assessments and biofeedback."""
        folder = self.sessions_dir / self.code
        return sorted(folder.rglob("*.h5")) if folder.is_dir() else []

    def write_subject_report(self) -> tuple[Path, list[str]]:
        """The subject's report over every visit (results, progress since the earlier visits, home adherence),
        written beside their sessions as ``<code>_report.html`` (the pseudonymous code only); and the files
        left out because they cannot be read (each with its reason), so one damaged file does not cost the
        report. Slow with many sessions: the view runs it on a thread (:meth:`open_subject_report`)."""
        from lumbar.errors import SessionFileError
        from lumbar.report import build_report, write_report

        files, skipped = self.subject_files(), []
        while True:
            try:
                report = build_report(files)
                break
            except SessionFileError as e:
                bad = Path(e.path)
                if bad not in files:
                    raise
                files.remove(bad)
                skipped.append(f"{bad.relative_to(self.sessions_dir / self.code)}: {e.problem}")
        return write_report(report, self.sessions_dir / self.code / f"{self.code}_report.html"), skipped

    def open_subject_report(self) -> None:
        """Write the subject's report on a thread, then open it in the browser."""
        self.report_btn.setEnabled(False)
        self.report_btn.setText("Writing the report…")

        def work() -> None:
            try:
                self._report_jobs.put((*self.write_subject_report(), None))
            except Exception as e:  # noqa: BLE001 - shown to the operator
                self._report_jobs.put((None, [], f"{type(e).__name__}: {e}"))

        threading.Thread(target=work, daemon=True, name="lumbar-subject-report").start()

    def _report_written(self, path: Path | None, skipped: list[str], err: str | None) -> None:
        self.report_btn.setEnabled(True)
        self.report_btn.setText("Report: every visit")
        if path is None:
            self.sub.setText(f"The report could not be written: {err}")
            return
        left_out = f" — left out, unreadable: {'; '.join(skipped)}" if skipped else ""
        self.sub.setText(f"Report written: {self.code}/{path.name}{left_out}")
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

    def action(self) -> None:
        if self.step == "sensor_check":
            self.enter_calibration()
        elif self.step == "calibration":
            if self._phase == "ready":
                self.start_calibration()
            elif self._phase == "done" and self.calibration and self.calibration.ok:
                self.enter_trial(0)
        elif self.step == "trial":
            if self._phase == "ready":
                self.start_trial()
            elif self._phase == "result":
                self._mark_step(2 + self.trial_index, "done")
                if self.trial_index + 1 < len(self.trials):
                    self.enter_trial(self.trial_index + 1)
                else:
                    self.enter_results()
        elif self.step == "results":
            self.step = "setup"
            self.begin_btn.setEnabled(True)
            self.steps.clear()
            self.step_title.setText("Enter the subject code and choose a protocol.")
            self.instruction.setText("")
            self._set_table(["measure", "value", "criterion", "result"], [])
            self._set_countdown("")
            self._show_buttons(None)

    def redo(self) -> None:
        if self.step == "calibration":
            self.enter_calibration()
            self.start_calibration()
        elif self.step == "trial" and self._phase == "result":
            self.results = [r for r in self.results if r[0] is not self.trials[self.trial_index]]
            self.enter_trial(self.trial_index)

    def add_note(self) -> None:
        text = self.note.text().strip()
        if not text:
            return
        self.engine.mark("note", text)
        self.notes.append(text)
        self.note.clear()
        self.notes_list.setText(" · ".join(self.notes[-6:]))

    def add_marker(self, note: str = "operator marker") -> None:
        self.engine.mark("marker", note)
        self.notes.append(f"marker at {self.engine.now():.1f} s")
        self.notes_list.setText(" · ".join(self.notes[-6:]))

    def showEvent(self, event: object) -> None:  # noqa: N802 (Qt name)
        """The single tests join the protocol list the first time the view is shown."""
        if self.protocol.count() == len(DEFAULT_PROTOCOLS):
            current = self.protocol.currentIndex()
            self.protocol.addItems([name for name in protocols() if name not in DEFAULT_PROTOCOLS])
            self.protocol.setCurrentIndex(current)
        super().showEvent(event)  # type: ignore[arg-type]

    # -- GUI timer -----------------------------------------------------------------------------------
    def refresh(self) -> None:
        now = self.engine.now()
        try:
            self._report_written(*self._report_jobs.get_nowait())
        except queue.Empty:
            pass
        try:
            tr, path, d, err = self._jobs.get_nowait()
        except queue.Empty:
            pass
        else:
            self._analysing -= 1
            self.results.append((tr, path, d, err))
            if self.step == "trial" and self.trials[self.trial_index] is tr:
                self._phase = "result"
                result, trial_rows = self.trial_rows(tr, d) if d else (None, [])
                said, passed, notes = outcome(result) if d else ("analysis failed", False, err or "")
                self._set_table(["measure", "value", "needed / reference", "result"],
                                [[f"{tr.name} — {said}"]] + [[r.measure, r.value, r.against, r.outcome]
                                                             for r in trial_rows],
                                [None if p is None else (COLORS["ok"] if p else COLORS["warn"])
                                 for p in [passed] + [r.passed for r in trial_rows]],
                                stretch=0, tips=[notes] + [r.tip for r in trial_rows])
                self.instruction.setText(f"Saved {path.name}." + (f" Analysis failed: {err}" if err else ""))
                last = self.trial_index + 1 >= len(self.trials)
                self._show_buttons("Show results" if last else "Next trial", redo=True)
        if self.step == "sensor_check":
            ok, rows, colors = self.sensor_check_ok()
            self._set_table(["sensor", "link", "rate", "check"], rows, colors)
            self.action_btn.setEnabled(ok)
        elif self.step == "calibration" and self._phase == "countdown":
            left = COUNTDOWN_S - (now - self._t0)
            if left > 0:
                self._set_countdown(f"{math.ceil(left)}")
            else:
                self._set_countdown("Hold still…")
                self._phase = "measuring"
                self._t0 = now
                if self.engine.processor is not None:
                    self.engine.processor.calibrate(STILL_S)
        elif self.step == "calibration" and self._phase == "measuring":
            self.progress.setValue(int(1000 * min(1.0, (now - self._t0) / STILL_S)))
        elif self.step == "trial" and self._phase == "waiting_start":
            self.monitor.refresh()
            src = self.engine.source
            if self._settle_from == math.inf and getattr(src, "started", 0) >= self._demo_job:
                self._settle_from = now  # the demo patient is in position: its angles settle from here
            if self.monitor.steady(self._settle_from):
                self._hold_still()
            elif now - self._settle_from > STEADY_TIMEOUT_S:
                self._hold_still()
                self.engine.mark("note", f"the patient did not hold still within {STEADY_TIMEOUT_S:.0f} s; "
                                         f"trial started anyway")
            elif self._settle_from == math.inf and (getattr(src, "last_error", None)
                                                    or now - self._t0 > DEMO_START_TIMEOUT_S):
                why = getattr(src, "last_error", None) or f"it did not start within {DEMO_START_TIMEOUT_S:.0f} s"
                self.abort_trial()
                self.instruction.setText(f"The demo patient cannot do this trial: {html.escape(why)}")
            elif self._settle_from < math.inf:
                self._set_countdown("Hold still in the start position…", COLORS["muted"], 20)
        elif self.step == "trial" and self._phase in ("still", "moving"):
            tr = self.trials[self.trial_index]
            el = now - self._t0
            total = STILL_S + tr.duration_s
            self.progress.setValue(int(1000 * min(1.0, el / total)))
            if self._phase == "still":
                left = STILL_S - el
                self._set_countdown("Stand still" if left > COUNTDOWN_S else f"{max(1, math.ceil(left))}")
                if left <= 0:
                    self.engine.mark("calibration_end", "", self._t0 + STILL_S)
                    self.engine.mark("go", "", self._t0 + STILL_S)
                    if self._demo_job:
                        self.engine.source.go()  # the demo patient has held the start position until now
                    self.monitor.go(self._t0 + STILL_S)
                    self._phase = "moving"
            self.monitor.refresh()  # counts the repetitions of the rows that came in
            if self._phase == "moving":
                n = self.monitor.repetitions
                if self.monitor.target and n >= self.monitor.target and self._counted_at == math.inf:
                    self._counted_at = now  # the last one is on its way back: let the patient come to rest
                if now - self._counted_at >= SETTLE_S:
                    self._finish_trial(f"{n} repetitions counted")
                elif self._counted_at < math.inf:
                    self._set_countdown(f"✔ {n} repetitions", COLORS["ok"])
                elif el >= total:
                    self._finish_trial(f"time up ({tr.duration_s:.0f} s)")
                else:
                    self._set_countdown(f"Go!  {max(0, math.ceil(total - el))} s")
