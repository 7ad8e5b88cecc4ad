"""Live processing: streaming orientation → kinematics → live metrics, off the GUI thread (no Qt here).

:class:`LiveProcessor` pulls new samples from a :class:`~lumbar.acquisition.bus.LiveBus`, runs the streaming
orientation filter (VQF) per sensor, the live calibration, kinematics (lumbar angles, pelvic tilt, trunk
flexion), sway (horizontal acceleration of the pelvis) and the repetition segmenter, and publishes rows of
:data:`DERIVED_COLUMNS` into a :class:`SeriesRing` and its outcomes (calibrations, repetitions, errors) into
a queue.

It runs where the samples are: for Bluetooth sensors in the reader's process
(:mod:`lumbar_gui.reader_process`, whose results come back to a :class:`~lumbar_gui.sources.RemoteProcessor`
with the same interface), for any other source in the application's process.
"""
from __future__ import annotations

import math
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from lumbar.acquisition.bus import ColumnRing, LiveBus, SampleRing
from lumbar.errors import CalibrationError
from lumbar.types import SHANKS, STANDARD_G, THIGH_OF, THIGHS

__all__ = ["SeriesRing", "LiveProcessor", "LiveRep", "CalibrationReport", "DERIVED_COLUMNS", "COL", "SIDE_HIP",
           "SIDE_KNEE", "preload"]

UPPER, LOWER = "lumbar", "sacrum"
DEG = math.pi / 180.0

#: Each thigh's own hip-flexion column (``hip_flexion_left``, ``hip_flexion_right``; NaN: not worn).
SIDE_HIP = {th: f"hip_flexion_{th.replace('thigh_', '')}" for th in THIGHS}
#: Each shank's own knee-flexion column (``knee_flexion_left``, ``knee_flexion_right``; NaN: not worn).
SIDE_KNEE = {sh: f"knee_flexion_{sh.replace('shank_', '')}" for sh in SHANKS}
#: Columns of the derived live series (rad, m/s²): ``hip_flexion`` is the mean of the thighs worn and not
#: left out (:meth:`LiveProcessor.exclude_thighs`); ``knee_flexion`` the knee that moves (legs in turn,
#: ``lumbar.kinematics.working_side``), as the offline analysis counts the knee tests.
DERIVED_COLUMNS = ("lumbar_flexion", "lumbar_lateral", "lumbar_rotation", "pelvic_tilt", "trunk_flexion",
                   "sway_ap", "sway_ml", "hip_flexion", *SIDE_HIP.values(), "knee_flexion", *SIDE_KNEE.values())
COL = {name: i for i, name in enumerate(DERIVED_COLUMNS)}


def preload() -> None:
    """Load what the processing runs: the orientation filter's numba kernels from the cache (run once), the
    calibration, kinematics and repetition modules and scipy's filters (≈ 1 s of CPU, holding the
    interpreter lock most of that time: never on the GUI thread)."""
    import scipy.signal  # noqa: F401

    import lumbar.kinematics  # noqa: F401
    import lumbar.metrics.repetitions  # noqa: F401
    import lumbar.pipeline  # noqa: F401
    from lumbar.filters import VQFFilter

    VQFFilter(100.0).process(np.tile([0.0, 0.0, STANDARD_G], (4, 1)), np.zeros((4, 3)))


# ----------------------------------------------------------------------------------------------------
# derived series

class SeriesRing:
    """Preallocated ring of time-stamped rows (derived live signals), NaN until written; one writer, readers
    with their own cursors that never wait (a :class:`~lumbar.acquisition.bus.ColumnRing`)."""

    def __init__(self, columns: tuple[str, ...], capacity: int) -> None:
        self.columns = columns
        self._ring = ColumnRing(capacity, (((), np.float64, 0.0), ((len(columns),), np.float64, np.nan)))
        self.capacity = self._ring.capacity

    @property
    def total(self) -> int:
        return self._ring.total

    def push(self, t: np.ndarray, x: np.ndarray) -> None:
        """Append rows: ``t`` (n,) s, ``x`` (n, columns)."""
        self._ring.push((t, x))

    def since(self, cursor: int) -> tuple[np.ndarray, np.ndarray, int, int]:
        """``(t, rows, new_cursor, missed)`` of rows after ``cursor``."""
        (t, x), total, missed = self._ring.since(cursor)
        return t, x, total, missed

    def latest(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        t, x = self._ring.latest(n)
        return t, x


# ----------------------------------------------------------------------------------------------------
# live processing

@dataclass
class LiveRep:
    """A repetition just finalised by the live segmenter (angles in rad)."""

    index: int
    signal: str
    peak_rad: float
    rom_rad: float
    duration_s: float
    peak_velocity_rads: float
    sparc: float
    valid: bool
    reason: str
    end_time_s: float


@dataclass
class CalibrationReport:
    """Outcome of a live static calibration."""

    ok: bool
    per_sensor: dict[str, dict[str, Any]] = field(default_factory=dict)
    message: str = ""
    t_start: float = 0.0
    t_end: float = 0.0


class _SensorState:
    def __init__(self, ring: SampleRing, rate_hz: float) -> None:
        from lumbar.filters import VQFFilter

        self.ring = ring
        self.cursor = ring.total
        self.rate_hz = rate_hz
        self.filter = VQFFilter(rate_hz)
        self.r_sb: np.ndarray | None = None
        self.tilt0 = 0.0
        self.tilt_last = math.nan  # the last sagittal tilt published, rad (kinematics.continue_angle)
        self.acc0 = np.zeros(3)
        # pending (not yet paired) samples: time, segment quat, segment acc
        self.t = np.empty(0)
        self.q = np.empty((0, 4))
        self.a = np.empty((0, 3))
        self.missed = 0
        self.created = self.last_arrival = time.monotonic()
        self.last_t = -math.inf
        self.boot: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # for provisional calibration
        self.cal_buf: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []


def _nearest(ts: np.ndarray, t: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Index into the sorted times ``ts`` of the sample nearest each time of ``t`` (n,), and whether it is
    within 1.5 sample periods ``dt`` of it (a partner sensor's sample for a primary one's)."""
    if len(ts) < 2:
        j = np.zeros(len(t), int)
    else:
        j = np.clip(np.searchsorted(ts, t), 1, len(ts) - 1)
        j = np.where(np.abs(ts[j - 1] - t) < np.abs(ts[j] - t), j - 1, j)
    return j, np.abs(ts[j] - t) <= 1.5 * dt


def _causal_lowpass(fc_hz: float, fs: float) -> tuple[np.ndarray, np.ndarray]:
    from scipy.signal import butter, sosfilt_zi

    sos = butter(2, fc_hz, fs=fs, output="sos")
    return sos, sosfilt_zi(sos)


class LiveProcessor:
    """Streaming orientation → kinematics → live metrics, in its own thread.

    Parameters
    ----------
    bus : LiveBus
    rates_hz : dict
        Nominal rate of each sensor (from the source).
    period_s : float
        How often it pulls new samples.
    """

    def __init__(self, bus: LiveBus, rates_hz: dict[str, float], *, period_s: float = 0.04,
                 capacity_s: float = 120.0) -> None:
        self.bus = bus
        self.rates_hz = dict(rates_hz)
        self.period_s = period_s
        rate = max(self.rates_hz.values()) if self.rates_hz else 100.0
        self.rate_hz = rate
        self.series = SeriesRing(DERIVED_COLUMNS, int(capacity_s * rate))
        self.out: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._states: dict[str, _SensorState] = {}
        self._cal_request: float | None = None  # duration, s, of a calibration asked for
        self._cal_window: tuple[float, float] | None = None
        self.calibrated = False
        self.provisional = False
        self._h = np.array([1.0, 0, 0, 0])  # heading alignment of the upper segment's earth frame
        self._r0 = np.eye(3)  # lumbar rotation at calibration
        self._rep_signal = "trunk_flexion"
        self._rep_thresholds = (10 * DEG, 25 * DEG)
        self._excluded: frozenset[str] = frozenset()  # thighs left out of the mean hip angle
        self._seg: Any = None
        self._rep_index = 0
        self._lp_sos: Any = None  # the 5 Hz low-pass: designed in the worker when first used (no scipy at start)
        self._lp_zi0: Any = None
        self._lp_state: dict[str, np.ndarray] = {}
        self.ready = threading.Event()  # set once the filters are loaded
        self._thread = threading.Thread(target=self._main, name="lumbar-processing", daemon=True)
        self._thread.start()

    # -- control (any thread) --------------------------------------------------------------------
    def calibrate(self, duration_s: float = 5.0) -> None:
        """Use the next ``duration_s`` of data (standing upright, still) as the calibration posture."""
        with self._lock:
            self._cal_request = float(duration_s)

    def set_repetitions(self, signal: str, lo_rad: float, hi_rad: float) -> None:
        """Count repetitions of ``signal`` (a derived column) with hysteresis thresholds ``lo < hi``."""
        with self._lock:
            self._rep_signal = signal
            self._rep_thresholds = (float(lo_rad), float(hi_rad))
            self._seg = None
            self._rep_index = 0

    def reset_repetitions(self) -> None:
        with self._lock:
            self._seg = None
            self._rep_index = 0

    def exclude_thighs(self, thighs: Sequence[str]) -> None:
        """Leave these thighs (``thigh_left``…) out of the mean hip angle, from the next rows on (a sensor found
        worn back to front); their own columns go on. The next calibration takes them back (a refitted sensor
        needs a new zero posture)."""
        with self._lock:
            self._excluded = frozenset(thighs)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3.0)

    @property
    def missed(self) -> int:
        """Samples that left the bus rings before the processing took them."""
        return sum(s.missed for s in self._states.values())

    # -- outputs (the worker thread; a subclass forwards them elsewhere) ---------------------------
    def _publish(self, t: np.ndarray, rows: np.ndarray) -> None:
        """New derived rows: ``t`` (n,) bus time, s; ``rows`` (n, len(DERIVED_COLUMNS)), rad and m/s²."""
        self.series.push(t, rows)

    def _put(self, kind: str, obj: Any) -> None:
        """An outcome for the GUI: ``calibration`` (CalibrationReport), ``repetition`` (LiveRep), ``error``
        (text), ``ready`` (the filters are loaded)."""
        if kind != "ready":
            self.out.put((kind, obj))

    # -- worker ------------------------------------------------------------------------------------
    def _main(self) -> None:
        # The filters load once every sensor streams (or 3 s after the first did): loading them holds the
        # interpreter lock for about a second, and each of the GATT exchanges that connect a sensor would
        # wait for it (the reader shares this process in the GUI).
        first: float | None = None
        while not self._stop.is_set():
            streaming = [r.total > 0 for r in list(self.bus.rings.values())]
            if any(streaming) and first is None:
                first = time.monotonic()
            if streaming and all(streaming) or first is not None and time.monotonic() - first > 3.0:
                break
            self._stop.wait(0.02)
        preload()  # during the first second of data, which the provisional zero waits for anyway
        self.ready.set()
        self._put("ready", None)
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                self.step()
            except Exception as e:  # shown to the operator; processing continues
                self._put("error", f"processing: {type(e).__name__}: {e}")
            dt = time.monotonic() - t0
            self._stop.wait(max(0.002, self.period_s - dt))

    def step(self) -> None:
        """Pull and process everything new (called by the worker thread)."""
        from lumbar import conventions as cv
        from lumbar import kinematics

        for sid, ring in list(self.bus.rings.items()):
            st = self._states.get(sid)
            if st is None or st.ring is not ring:
                st = _SensorState(ring, self.rates_hz.get(sid, self.rate_hz))
                st.cursor = 0
                self._states[sid] = st
            batch, st.cursor, missed = ring.since(st.cursor)
            st.missed += missed
            if not len(batch):
                continue
            st.last_arrival = time.monotonic()
            st.last_t = float(batch.time_s[-1])
            q, _diag = st.filter.process(batch.acc, batch.gyro)
            if self._cal_window is not None:  # from a sensor's first samples on (before its provisional zero)
                st.cal_buf.append((batch.time_s, batch.acc, batch.gyro, q))
            if st.r_sb is None:
                st.boot.append((batch.time_s, batch.acc, batch.gyro))
                if sum(len(b[0]) for b in st.boot) >= st.rate_hz * 1.0:
                    self._provisional(sid, st)
                continue
            qs = kinematics.segment_quat(q, st.r_sb)
            a_seg = batch.acc @ st.r_sb.T
            st.t = np.concatenate([st.t, batch.time_s])
            st.q = np.concatenate([st.q, qs])
            st.a = np.concatenate([st.a, a_seg])
        self._open_calibration_window()
        self._maybe_finish_calibration()
        self._emit_rows(cv, kinematics)

    def _provisional(self, sid: str, st: _SensorState) -> None:
        """Until the operator calibrates: the first second's posture is taken as upright."""
        from lumbar.pipeline import static_only_calibration

        acc = np.concatenate([b[1] for b in st.boot])
        gyro = np.concatenate([b[2] for b in st.boot])
        st.boot = []
        try:
            cal = static_only_calibration(acc, gyro, f"{sid} sensor")
            st.r_sb = cal.r_sb
        except CalibrationError:
            st.r_sb = np.eye(3)
        st.acc0 = (acc @ st.r_sb.T).mean(axis=0)
        self.provisional = True

    def _open_calibration_window(self) -> None:
        """A calibration asked for starts after the latest sample taken so far — once every sensor is
        sending (one that has sent nothing for 3 s since it appeared is not waited for): asked for as the
        sensors connect, each still gets the whole window."""
        if self._cal_request is None:
            return
        now = time.monotonic()
        states = list(self._states.values())
        if any(s.last_t == -math.inf and now - s.created < 3.0 for s in states):
            return
        sending = [s.last_t for s in states if s.last_t > -math.inf]
        if not sending:
            return
        with self._lock:
            duration_s, self._cal_request = self._cal_request, None
        if duration_s is None:
            return
        t0 = max(sending)
        self._cal_window = (t0, t0 + duration_s)
        for s in states:
            s.cal_buf = []

    def _maybe_finish_calibration(self) -> None:
        from lumbar import conventions as cv
        from lumbar import kinematics
        from lumbar.calibration import STATIC_ACC_SD
        from lumbar.pipeline import static_only_calibration

        if self._cal_window is None:
            return
        # every sensor still sending must have reached the end of the window
        now = time.monotonic()
        for st in self._states.values():
            if now - st.last_arrival < 0.5 and (st.last_t < self._cal_window[1]):
                return
        t0, t1 = self._cal_window
        self._cal_window = None
        rep = CalibrationReport(ok=True, t_start=t0, t_end=t1)
        new: dict[str, tuple[np.ndarray, float, np.ndarray, np.ndarray]] = {}
        for sid, st in self._states.items():
            if not st.cal_buf:
                rep.ok = False
                rep.per_sensor[sid] = {"ok": False, "message": "no data from this sensor during calibration"}
                continue
            t = np.concatenate([b[0] for b in st.cal_buf])
            sel = (t >= t0) & (t <= t1)
            acc = np.concatenate([b[1] for b in st.cal_buf])[sel]
            gyro = np.concatenate([b[2] for b in st.cal_buf])[sel]
            q = np.concatenate([b[3] for b in st.cal_buf])[sel]
            st.cal_buf = []
            sd = float(np.max(acc.std(axis=0))) if len(acc) > 1 else float("nan")
            gyro_rms = float(np.sqrt(np.mean(np.sum((gyro - gyro.mean(0)) ** 2, axis=1)))) if len(gyro) else float("nan")
            info: dict[str, Any] = {"acc_sd_mg": sd / STANDARD_G * 1000, "limit_mg": STATIC_ACC_SD / STANDARD_G * 1000,
                                    "gyro_rms_dps": math.degrees(gyro_rms), "samples": int(len(acc))}
            try:
                if len(acc) < 2 * st.rate_hz:
                    raise CalibrationError(f"{sid} sensor: only {len(acc) / st.rate_hz:.1f} s of data (needs ≥ 2 s)")
                if sd > STATIC_ACC_SD:
                    raise CalibrationError(f"{sid} sensor: the patient moved (accelerometer SD {info['acc_sd_mg']:.0f} mg, "
                                           f"limit {info['limit_mg']:.0f} mg); ask them to stand still and redo it")
                cal = static_only_calibration(acc, gyro, f"{sid} sensor")
            except CalibrationError as e:
                rep.ok = False
                info.update(ok=False, message=str(e))
                rep.per_sensor[sid] = info
                continue
            qs = kinematics.segment_quat(q, cal.r_sb)
            info.update(ok=True, message="good" if sd < 0.5 * STATIC_ACC_SD else "acceptable")
            rep.per_sensor[sid] = info
            new[sid] = (cal.r_sb, float(np.mean(kinematics.sagittal_tilt(qs, None))), (acc @ cal.r_sb.T).mean(0), qs)
        if rep.ok and new:
            with self._lock:
                self._excluded = frozenset()  # a new zero posture: every thigh worn counts again
            for sid, (r_sb, tilt0, acc0, _qs) in new.items():
                st = self._states[sid]
                # re-express what is pending in the new segment frame
                st.r_sb, st.tilt0, st.acc0, st.tilt_last = r_sb, tilt0, acc0, math.nan
                st.t, st.q, st.a = np.empty(0), np.empty((0, 4)), np.empty((0, 3))
            if UPPER in new and LOWER in new:
                up, low = new[UPPER][3], new[LOWER][3]
                n = min(len(up), len(low))
                aligned_up = kinematics.align_headings(up[:n], low[:n], slice(0, n))
                # heading rotation applied to the upper segment: h = aligned ⊗ up⁻¹ (constant)
                self._h = cv.quat_multiply(aligned_up[0], cv.quat_conj(up[0]))
                r_lum = np.swapaxes(cv.quat_to_matrix(low[:n]), -1, -2) @ cv.quat_to_matrix(aligned_up)
                self._r0 = cv.to_scipy(cv.matrix_to_quat(r_lum)).mean().as_matrix()
            self.calibrated = True
            self.provisional = False
            self._lp_state = {}
            with self._lock:
                self._seg = None
        elif not rep.ok:
            rep.message = "; ".join(v["message"] for v in rep.per_sensor.values() if not v.get("ok"))
        self._put("calibration", rep)

    def _lowpass(self, name: str, x: np.ndarray) -> np.ndarray:
        from scipy.signal import sosfilt

        if self._lp_sos is None:  # designed here, when first needed (after the provisional calibration)
            self._lp_sos, self._lp_zi0 = _causal_lowpass(5.0, self.rate_hz)
        zi = self._lp_state.get(name)
        if zi is None:
            first = x[np.isfinite(x)][:1]
            zi = self._lp_zi0 * (float(first[0]) if first.size else 0.0)
        good = np.isfinite(x)
        y = np.full_like(x, np.nan)
        if good.any():
            y[good], zi = sosfilt(self._lp_sos, x[good], zi=zi)
        self._lp_state[name] = zi
        return y

    def _emit_rows(self, cv: Any, kinematics: Any) -> None:
        """Rows at the primary sensor's sample times; each partner's (the sacrum's when the primary is the
        upper sensor, the thighs', the shanks') nearest sample, or NaN."""
        primary = UPPER if UPPER in self._states and self._states[UPPER].r_sb is not None else (
            LOWER if LOWER in self._states and self._states[LOWER].r_sb is not None else None)
        if primary is None:
            return
        p = self._states[primary]
        if len(p.t) == 0:
            return
        partners = {sid: st for sid in ((LOWER,) if primary == UPPER else ()) + THIGHS + SHANKS
                    if (st := self._states.get(sid)) is not None and st.r_sb is not None}
        n = len(p.t)
        dt = 1.0 / p.rate_hz
        for o in partners.values():  # wait for each partner that is sending
            stale = time.monotonic() - o.last_arrival > 0.3
            if not stale and len(o.t) and o.t[-1] < p.t[-1]:
                n = min(n, int(np.searchsorted(p.t, o.t[-1] + 0.5 * dt, side="right")))
            elif not stale and not len(o.t):
                n = 0
        if n == 0:
            return
        t = p.t[:n]
        rows = np.full((n, len(DERIVED_COLUMNS)), np.nan)
        tilt_p, p.tilt_last = kinematics.continue_angle(kinematics.sagittal_tilt(p.q[:n], None) - p.tilt0,
                                                        p.tilt_last)
        rows[:, COL["trunk_flexion" if primary == UPPER else "pelvic_tilt"]] = tilt_p
        sway_src = p
        sway_idx = np.arange(n)
        keep_from: dict[str, int] = {}
        leg_tilts: dict[str, np.ndarray] = {}
        for sid, o in partners.items():
            if not len(o.t):
                continue
            j, ok = _nearest(o.t, t, dt)
            keep_from[sid] = int(j[-1]) if len(o.t) > 1 else 0
            if not ok.any():
                continue
            tilt_o = np.full(n, np.nan)
            # continuous across ±180° (a shank lying prone, zeroed standing, bends past it)
            tilt_o[ok], o.tilt_last = kinematics.continue_angle(kinematics.sagittal_tilt(o.q[j[ok]], None) - o.tilt0,
                                                                o.tilt_last)
            if sid != LOWER:  # a leg's
                leg_tilts[sid] = tilt_o
                continue
            rows[:, COL["pelvic_tilt"]] = tilt_o
            up = cv.quat_multiply(np.broadcast_to(self._h, (int(ok.sum()), 4)), p.q[:n][ok])
            r_lum = np.swapaxes(cv.quat_to_matrix(o.q[j[ok]]), -1, -2) @ cv.quat_to_matrix(up)
            rows[ok, 0:3] = cv.lumbar_angles_from_matrix(self._r0.T @ r_lum)
            sway_src, sway_idx = o, np.where(ok, j, -1)  # the sacral sensor is the sway reference
        thighs = [sid for sid in THIGHS if sid in leg_tilts]
        for sid in thighs:
            rows[:, COL[SIDE_HIP[sid]]] = kinematics.hip_flexion(rows[:, COL["pelvic_tilt"]], [leg_tilts[sid]])
        kept = [rows[:, COL[SIDE_HIP[sid]]] for sid in thighs if sid not in self._excluded]
        if kept:
            rows[:, COL["hip_flexion"]] = kinematics.side_mean(kept)
        shanks = [sid for sid in SHANKS if sid in leg_tilts]
        for sid in shanks:  # as lumbar.pipeline.Processed.knee_flexion_of
            thigh = THIGH_OF[sid]
            rows[:, COL[SIDE_KNEE[sid]]] = kinematics.knee_flexion(
                leg_tilts[sid], None if thigh in self._excluded else leg_tilts.get(thigh))
        if shanks:
            rows[:, COL["knee_flexion"]] = kinematics.working_side([rows[:, COL[SIDE_KNEE[sid]]] for sid in shanks])
        a = sway_src.a[np.maximum(sway_idx, 0)] - sway_src.acc0
        if sway_src is not p:
            a[sway_idx < 0] = np.nan
        rows[:, COL["sway_ap"]] = self._lowpass("ap", a[:, 0])
        rows[:, COL["sway_ml"]] = self._lowpass("ml", a[:, 2])
        self._publish(t, rows)
        p.t, p.q, p.a = p.t[n:], p.q[n:], p.a[n:]
        for sid, k in keep_from.items():
            o = partners[sid]
            o.t, o.q, o.a = o.t[k:], o.q[k:], o.a[k:]
            # never keep more than 2 s of a partner
            cut = max(0, len(o.t) - int(2 * o.rate_hz))
            o.t, o.q, o.a = o.t[cut:], o.q[cut:], o.a[cut:]
        if len(p.t) > 2 * p.rate_hz:
            p.t, p.q, p.a = p.t[-int(2 * p.rate_hz):], p.q[-int(2 * p.rate_hz):], p.a[-int(2 * p.rate_hz):]
        self._repetitions(t, rows)

    def _repetitions(self, t: np.ndarray, rows: np.ndarray) -> None:
        from lumbar.metrics.repetitions import RepetitionSegmenter

        with self._lock:
            name = self._rep_signal
            lo, hi = self._rep_thresholds
            if self._seg is None:
                self._seg = RepetitionSegmenter(self.rate_hz, lo, hi)
                self._seg_t: list[np.ndarray] = []
                self._seg_t0 = float(t[0])
            seg = self._seg
        x = self._lowpass("rep", rows[:, COL[name]])
        x = np.where(np.isfinite(x), x, np.nan)
        for r in seg.update(x):
            self._rep_index += 1
            end_t = self._seg_t0 + r.end_idx / self.rate_hz
            self._put("repetition", LiveRep(
                index=self._rep_index, signal=name, peak_rad=float(r.rom), rom_rad=float(r.rom),
                duration_s=float(r.duration_s), peak_velocity_rads=float(r.peak_velocity_out), sparc=float(r.sparc),
                valid=bool(r.valid), reason=str(r.reason), end_time_s=end_t))
