"""The trial monitor of the guided assessment: what the patient is doing while a trial runs.

The clinician reads the instructions to the patient and then watches them; a glance at the monitor shows
that the signals are the task's (the patient bends when asked, stands still when asked) without leaving
the step. It shows the sagittal angles over the last 10 s and, beside them, the stabilogram of a sway
test or the repetitions counted so far. It draws from the live series like the Live view, only while it
is on screen.

Repetitions are those of the task's principal angle (its analysis plan), counted from "go" by
:class:`lumbar.metrics.live.LiveAnalyzer` with the offline segmentation's rules: the rest level is the
trial's own still phase, the range the patient's first repetition (a pelvic tilt of 7° counts as well as
a bow of 60°), which is what the offline analysis takes from the whole trial. A task that goes both ways
from rest (rocking backward, then forward) counts both, each direction with the range of its first
repetition.
"""
from __future__ import annotations

import importlib
import math
import threading
import time
from typing import TYPE_CHECKING, Callable, NamedTuple

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from lumbar.sensor_fit import thigh_expected_sign, thigh_turned, turned_thigh_warning
from lumbar.types import THIGHS
from lumbar_gui.engine import COL, Engine
from lumbar_gui.processing import SIDE_HIP, SIDE_KNEE
from lumbar_gui.widgets import (AXIS_COLORS, COLORS, HIP_COLOR, KNEE_COLOR, TILT_COLORS, BigValue, Stabilogram,
                                StripChart, degrees_text)

if TYPE_CHECKING:
    from lumbar.metrics.live import LiveAnalyzer

RAD2DEG = 180.0 / math.pi
#: The angles drawn (live series columns) and their names.
ANGLES = ("lumbar_flexion", "pelvic_tilt", "trunk_flexion", "hip_flexion", "knee_flexion")
ANGLE_NAMES = ("lumbar flexion", "pelvic tilt (anterior +)", "trunk flexion", "hip flexion", "knee flexion")
#: The angle drawn only when thigh sensors are worn, and the one drawn only when shank sensors are.
HIP = "hip_flexion"
KNEE = "knee_flexion"
#: The angle read out when the plan names none (the processing's default repetition signal).
COUNTED = "trunk_flexion"
#: An excursion of the principal angle smaller than this from the still phase's level is not the task's
#: first repetition (a wobble at rest), degrees; the smallest task range of the protocols, a poor pelvic
#: tilt, is about 7°.
REP_FLOOR_DEG = 5.0
#: Still: every sagittal angle within this range, degrees, over STEADY_S seconds (quiet standing sways
#: about 0.5°; taking the start position, or an orientation filter settling after it, moves them more).
STEADY_TOL_DEG = 2.0
STEADY_S = 1.0
#: Still also means no worn sensor tilting (a thigh as the patient sits down, which the trunk's sagittal angles
#: do not see): the direction of gravity each accelerometer measures (means over tenths of STEADY_S, so one
#: sample's noise does not count) within STEADY_TOL_DEG of its mean. Gravity, not the gyroscope: no bias.
#: y range of the angles chart, degrees: a bend (trunk flexion reaches 60-90°), or a task whose angles
#: stay small (pelvic tilt, leg movements with a still back, standing): ±40° shows them at a readable size.
BEND_RANGE_DEG = (-20.0, 90.0)
SMALL_RANGE_DEG = (-40.0, 40.0)
#: y range for a knee test with shank sensors, degrees: the knee straightens 40-60° sitting and bends 90-100°
#: lying prone, from the start position.
KNEE_RANGE_DEG = (-100.0, 100.0)
#: Read-outs change at most this often, s (as in the Live view).
LABEL_PERIOD_S = 0.2
#: How often the thighs are judged during a trial (from its first repetition on), s.
THIGH_CHECK_PERIOD_S = 1.0


_counter_loading = threading.Lock()  # held once the live counter is being imported: once per process


def _preload_counter() -> None:
    """Import the live counter (scipy.signal and scipy.stats: 0.5-2 s) on a background thread, once per process,
    when the first counted trial begins: not at start-up (it delayed the first live plot by 1-2 s), nor at
    the trial's "go" on the GUI thread (a freeze). The still phase before "go" gives it 5 s."""
    if _counter_loading.acquire(blocking=False):
        threading.Thread(target=importlib.import_module, args=("lumbar.metrics.live",), name="lumbar-load-counter",
                         daemon=True).start()


class Monitoring(NamedTuple):
    """What the monitor shows during a task (:func:`monitor_mode`)."""

    mode: str  # "sway" (stabilogram), "repetitions" (counted on ``angle``) or "angles" (``angle`` now)
    angle: str  # a column of ANGLES
    #: excursions of ``angle`` in one repetition: two for sit-to-stand (the trunk leans forward to rise and
    #: again to sit down; the offline analysis pairs them)
    per_rep: int = 1
    y_range: tuple[float, float] = SMALL_RANGE_DEG  # of the angles chart, degrees
    #: repetitions go both ways from rest (rocking backward and forward, the plan's ``opposite_direction``):
    #: both are counted, each with the range of its own first excursion
    both_directions: bool = False
    #: thigh sensors are worn: hip flexion is drawn (and counted, where the plan's ``with_thighs`` says so)
    hips: bool = False
    #: shank sensors are worn: knee flexion is drawn (and counted, where the plan's ``with_shanks`` says so)
    knees: bool = False
    #: the angle that stands in for the hips' without thighs (the pelvic tilt), against which a thigh worn back
    #: to front is found live (:func:`lumbar.sensor_fit.thigh_turned`), and the sign the plan gives the two;
    #: "" and 0: the thighs are not judged (no hip angle counted)
    standin: str = ""
    thigh_sign: int = 0


def monitor_mode(plan: dict | None, thighs: bool = False, shanks: bool = False) -> Monitoring:
    """What to show for a movement's analysis plan (``lumbar.protocols``' ``analysis`` table): a sway test,
    the stabilogram; a task with a principal angle, its repetitions counted on that angle; any other (a leg
    moves, the back keeps still), the trunk's angle now. The chart reaches 90° for a bend (trunk flexion,
    or a target beyond the small range: a waiter's bow tilts the pelvis 50°). A plan with an
    ``opposite_direction`` (rocking) counts the repetitions both ways from rest. With ``thighs`` (thigh sensors
    worn) the plan's ``with_thighs`` applies, as in the offline analysis: the waiter's bow and rocking are
    counted on the hips' own angle; with ``shanks`` its ``with_shanks``: the knee tests are counted on the
    knee's angle."""
    base = plan or {}
    plan = {**base, **base.get("with_thighs", {})} if thighs else base
    plan = {**plan, **base.get("with_shanks", {})} if shanks else plan
    principal = plan.get("principal")
    if plan.get("sway"):
        return Monitoring("sway", COUNTED, hips=thighs, knees=shanks)
    if principal in ANGLES:
        bend = principal == COUNTED or plan.get("target_deg", 0.0) > 0.75 * SMALL_RANGE_DEG[1]
        judged = principal == HIP and base.get("principal") in ANGLES and base["principal"] != HIP
        return Monitoring("repetitions", principal, 2 if plan.get("rise_and_sit") else 1,
                          KNEE_RANGE_DEG if principal == KNEE else BEND_RANGE_DEG if bend else SMALL_RANGE_DEG,
                          bool(plan.get("opposite_direction")), hips=thighs, knees=shanks,
                          standin=base["principal"] if judged else "",
                          thigh_sign=thigh_expected_sign(base.get("first_sign"), base.get("with_thighs")) if judged
                          else 0)
    return Monitoring("angles", COUNTED, hips=thighs, knees=shanks)


class TrialMonitor(QWidget):
    """Angles of the last 10 s beside a stabilogram (``mode="sway"``), a repetition counter
    (``mode="repetitions"``) or an angle read-out (``mode="angles"``). :meth:`start` at the trial's start,
    :meth:`hold_still` and :meth:`go` when the still phase and the movement begin, :meth:`refresh` on the
    GUI timer (it pulls the rows and counts even while hidden), :meth:`stop` when it ends; hidden otherwise."""

    def __init__(self, engine: Engine, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.mode = ""
        self.angle = COUNTED
        #: Repetitions of the principal angle finished since the movement began (``go``), and those asked for.
        self.repetitions = 0
        self.target = 0
        self._per_rep = 1
        self._both = False
        self._still_s = math.inf  # data time the still phase began: from there to "go" is the rest level
        self._go_s = math.inf  # data time of "go"
        self._rest = [0.0, 0]  # sum and count of the angle in the still phase, rad
        self.counter: LiveAnalyzer | None = None
        self._rate_hz = 100.0
        #: Thigh sensors left out of the counted hip angle: worn back to front (found earlier, or in this trial),
        #: with what the operator reads about it; :attr:`on_thigh_turned` is called (thigh, words) for each
        #: found during a trial.
        self.turned: dict[str, str] = {}
        self.on_thigh_turned: Callable[[str, str], None] | None = None
        self._standin, self._thigh_sign = "", 0
        self._last_check = 0.0
        self._rows: list[tuple[np.ndarray, np.ndarray]] = []  # the trial's rows from the still phase on
        self._shown = [i for i, a in enumerate(ANGLES) if a not in (HIP, KNEE)]  # drawn (hip, knee: legs worn)
        #: each live column's level in the start position (the steady moments before the still phase), rad: from
        #: the still phase on the chart and the read-out are from the start position (lying prone, the trunk is
        #: 90° from the standing zero); None before it
        self._zero: np.ndarray | None = None
        self._recent = (np.empty(0), np.empty((0, len(COL))))  # the live rows of the last seconds (steady, zero)
        self._series = None
        self._cursor = 0
        self._last_labels = 0.0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(230)
        self._lay = lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 4)
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.ci.setContentsMargins(0, 0, 0, 0)
        self.chart = StripChart("Sagittal angles", ANGLE_NAMES, (AXIS_COLORS[0], *TILT_COLORS, HIP_COLOR, KNEE_COLOR),
                                rate_hz=200.0, unit="angle (°)", scale=RAD2DEG, finite=True, y_range=BEND_RANGE_DEG)
        self.plots.addItem(self.chart)
        lay.addWidget(self.plots, 3)
        side = QVBoxLayout()
        self.stabilogram = Stabilogram()
        self.sway_label = QLabel("")
        self.sway_label.setObjectName("subtitle")
        self.count = BigValue("repetitions", "0", size_pt=40, color=COLORS["accent"])
        self.count.setToolTip(f"Counted on the principal angle from 'go'. The first movement beyond "
                              f"{REP_FLOOR_DEG:.0f}° sets the range; a repetition goes beyond 60 % of it "
                              f"and comes back below 20 %.")
        self.angle_now = BigValue("trunk flexion now", "–", size_pt=24)
        for w in (self.stabilogram, self.sway_label, self.count, self.angle_now):
            side.addWidget(w)
        side.addStretch(1)
        lay.addLayout(side, 1)
        self.setVisible(False)

    def start(self, what: Monitoring, target: int = 0, turned: dict[str, str] | None = None) -> None:
        """A trial begins: clear, and show ``what`` (:func:`monitor_mode`); ``target`` repetitions asked for
        (0: none, or not counted); ``turned``: thigh sensors already found worn back to front, left out of the
        counted hip angle (:attr:`turned`)."""
        mode, angle = self.mode, self.angle = what.mode, what.angle
        self.turned = dict(turned or {})
        self._standin, self._thigh_sign = what.standin, what.thigh_sign
        self._rows = []
        self._last_check = 0.0
        self.repetitions = 0
        self.target = int(target) if mode == "repetitions" else 0
        self._per_rep = what.per_rep
        self._both = what.both_directions
        if mode == "repetitions":
            _preload_counter()
        self._still_s = self._go_s = math.inf
        self._rest = [0.0, 0]
        self.counter = None
        self._shown = [i for i, a in enumerate(ANGLES) if (a != HIP or what.hips) and (a != KNEE or what.knees)]
        self._zero = None
        self.chart.show_curves([i in self._shown for i in range(len(ANGLES))])
        self._recent = (np.empty(0), np.empty((0, len(COL))))
        self.chart.clear_data()
        self.chart.set_y_range(*what.y_range)
        self.stabilogram.clear_data()
        self.sway_label.setText("95 % ellipse: –")
        self.count.set("0")
        self.count.caption.setText(f"of {self.target} repetitions" if self.target else "repetitions")
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

    def hold_still(self, t_s: float) -> None:
        """The patient holds still in the start position from data time ``t_s``: the rest level of the count,
        and the zero of the angles shown from here on (the level of the last steady moments, which the
        patient keeps)."""
        self._still_s = t_s
        t, x = self._recent
        zero = np.zeros(len(COL))
        if len(t):
            w = x[t >= t[-1] - STEADY_S]
            ok = np.isfinite(w)
            # a column with no finite sample (a sensor not worn) stays at 0
            zero = np.where(ok, w, 0.0).sum(axis=0) / np.maximum(ok.sum(axis=0), 1)
        self._zero = zero
        self.chart.clear_data()  # the curves restart from the start position, without a jump

    def go(self, t_s: float) -> None:
        """The movement begins at data time ``t_s``: repetitions are counted from here."""
        self._go_s = t_s

    def stop(self) -> None:
        self.mode = ""
        self.setVisible(False)

    def steady(self, since_s: float) -> bool:
        """Whether the patient has kept still (every sagittal angle, and the direction of gravity every worn
        sensor measures, within :data:`STEADY_TOL_DEG`) over the last :data:`STEADY_S` s, all of them after
        data time ``since_s``."""
        t, x = self._recent
        if not len(t) or t[-1] - max(float(t[0]), since_s) < STEADY_S:
            return False
        x = x[t >= t[-1] - STEADY_S][:, [COL[ANGLES[i]] for i in self._shown]]  # the angles drawn
        if not (np.isfinite(x).all() and (np.ptp(x, axis=0) < math.radians(STEADY_TOL_DEG)).all()):
            return False
        bus = self.engine.bus
        for ring in list(bus.rings.values()):
            b = ring.latest(int(math.ceil(1.2 * STEADY_S * ring.capacity / bus.capacity_s)))  # ≈ STEADY_S of it
            if not len(b.time_s) or b.time_s[-1] < since_s + STEADY_S:
                continue  # nothing recent from it (a sensor that dropped out is reported elsewhere)
            a = b.acc[b.time_s >= b.time_s[-1] - STEADY_S]
            a = a[np.isfinite(a).all(axis=1)]
            if len(a) < 10:
                continue
            up = np.array([c.mean(axis=0) for c in np.array_split(a, 10)])
            up /= np.linalg.norm(up, axis=1, keepdims=True)
            mean = up.mean(axis=0) / np.linalg.norm(up.mean(axis=0))
            if np.degrees(np.arccos(np.clip(up @ mean, -1.0, 1.0))).max() > STEADY_TOL_DEG:
                return False
        return True

    def _relative(self, x: np.ndarray) -> np.ndarray:
        """Live rows ``x`` (rad) from the start position (:meth:`hold_still`; as they are before it). The knee
        that moves is chosen again from each knee's own excursion from there: the live series chooses it from
        the zero posture, standing, where sitting both knees are 90° away and the resting one is the farther."""
        if self._zero is None:
            return x
        from lumbar.kinematics import working_side

        rel = x - self._zero
        rel[:, COL[KNEE]] = working_side([rel[:, COL[c]] for c in SIDE_KNEE.values()])
        return rel

    def _signal(self, x: np.ndarray) -> np.ndarray:
        """The counted angle of live rows ``x`` (rad): with a thigh found worn back to front, the hips' angle of
        the others (where one has a gap the other's value stands); the knee's, from the start position
        (:meth:`_relative`)."""
        if self.angle == KNEE:
            return self._relative(x)[:, COL[KNEE]]
        if self.angle != HIP or not self.turned:
            return x[:, COL[self.angle]]
        from lumbar.kinematics import side_mean

        return side_mean([x[:, COL[SIDE_HIP[th]]] for th in THIGHS if th not in self.turned])

    def _count(self, t: np.ndarray, x: np.ndarray, rate_hz: float, keep: bool = True) -> None:
        """Feed the counted angle of live rows ``x`` at data times ``t`` (s): the still phase (:meth:`hold_still`
        to :meth:`go`) to the rest level, what follows ``go`` to the counter; the rows from the still phase on
        are kept (``keep``) for :meth:`_recount`."""
        self._rate_hz = rate_hz
        if keep and (since := t >= self._still_s).any():
            self._rows.append((t[since], x[since]))
        v = self._signal(x)
        still = (t >= self._still_s) & (t < self._go_s)
        if still.any():
            w = v[still][np.isfinite(v[still])]
            self._rest[0] += float(w.sum())
            self._rest[1] += w.size
        task = t >= self._go_s
        if not task.any():
            return
        if self.counter is None:
            from lumbar.metrics.live import LiveAnalyzer  # scipy.stats and .signal: not at the window's start-up

            base = self._rest[0] / self._rest[1] if self._rest[1] else 0.0
            self.counter = LiveAnalyzer(rate_hz, base=base, rom_floor=math.radians(REP_FLOOR_DEG),
                                        both_directions=self._both)
        self.counter.update(v[task])
        n = self.counter.rep_count // self._per_rep
        if n != self.repetitions:
            self.repetitions = n
            self.count.set(str(n))

    def _recount(self) -> None:
        """Count the trial again from its still phase on, on the counted angle as it is now (a thigh left out)."""
        if not self._rows:
            return
        t = np.concatenate([r[0] for r in self._rows])
        x = np.concatenate([r[1] for r in self._rows])
        self.counter, self._rest = None, [0.0, 0]
        self._count(t, x, self._rate_hz, keep=False)

    def _check_thighs(self) -> None:
        """From the first repetition on (a whole excursion: the relation is clear), about once a second: is a
        thigh sensor worn back to front (:func:`lumbar.sensor_fit.thigh_turned`, as the offline analysis judges)?
        One found is left out of the counted angle (with none left, the stand-in is counted), the trial is
        counted again on it, and :attr:`on_thigh_turned` says so."""
        if not self._thigh_sign or self.counter is None or self.counter.rep_count < 1 or not self._rows:
            return
        now = time.monotonic()
        if now - self._last_check < THIGH_CHECK_PERIOD_S:
            return
        self._last_check = now
        t = np.concatenate([r[0] for r in self._rows])
        x = np.concatenate([r[1] for r in self._rows])
        task = t >= self._go_s
        standin = x[task, COL[self._standin]]
        found = [th for th in THIGHS if th not in self.turned
                 and thigh_turned(x[task, COL[SIDE_HIP[th]]], standin, self._thigh_sign) is not None]
        if not found:
            return
        for th in found:
            self.turned[th] = turned_thigh_warning(th)
        if all(th in self.turned for th in THIGHS if np.isfinite(x[:, COL[SIDE_HIP[th]]]).any()):
            self.angle, self._thigh_sign = self._standin, 0  # no thigh left: the plan's angle without thighs
            self.angle_now.caption.setText(f"{ANGLE_NAMES[ANGLES.index(self.angle)].split(' (')[0]} now")
        self._recount()
        for th in found:
            if self.on_thigh_turned is not None:
                self.on_thigh_turned(th, self.turned[th])

    def refresh(self) -> None:
        """Pull the live series' new rows; draw them when on screen (GUI timer)."""
        proc = self.engine.processor
        if not self.mode or proc is None:
            return
        if proc.series is not self._series:  # the processing restarted (sensors reconnected)
            self._series, self._cursor = proc.series, 0
        t, x, self._cursor, _ = proc.series.since(self._cursor)
        if len(t):
            self.chart.append(t, self._relative(x)[:, [COL[c] for c in ANGLES]])
            keep = self._recent[0] > t[-1] - 2 * STEADY_S
            self._recent = (np.concatenate([self._recent[0][keep], t]), np.concatenate([self._recent[1][keep], x]))
            if self.mode == "repetitions":
                self._count(t, x, proc.rate_hz)
                self._check_thighs()
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
            now_rad = float(self._signal(x[-1:])[0])
            if self.counter is not None:
                now_rad -= self.counter.base  # the count's rest level, of the same angle
            elif self._zero is not None and self.angle != KNEE:  # (the knee's is from the start already)
                now_rad -= float(self._zero[COL[self.angle]])
            self.angle_now.set(degrees_text(now_rad * RAD2DEG))
