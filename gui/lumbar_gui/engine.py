"""The GUI's workers: acquisition (asyncio thread), live processing, and recording — all off the GUI thread.

* :class:`AcquisitionWorker` — one thread running an asyncio loop; any source with ``attach(bus)`` /
  ``async run(bus)`` (the BLE reader's :class:`~lumbar_gui.sources.BleSource`, a replay) runs on it until
  cancelled; the Bluetooth work around it (scans, battery reads) is driven from the same loop. The BLE
  reader itself runs in a process of its own (:mod:`lumbar_gui.reader_process`).
* :class:`LiveProcessor` — a thread that pulls new samples from the bus rings, runs the streaming
  orientation filter (VQF) per sensor, the live calibration, kinematics (lumbar angles, pelvic tilt, trunk
  flexion), sway (horizontal acceleration of the pelvis) and the repetition segmenter, and publishes the
  results into a :class:`SeriesRing` and a queue.
* :class:`Recorder` — a thread that drains the rings into a :class:`~lumbar.storage.SessionWriter`
  (so a slow disk never stalls the GUI) and counts any sample it could not get (``missed``).
* :class:`Engine` — owns the bus and the three workers; the GUI calls :meth:`Engine.poll` from its
  timer, which drains the queues and emits Qt signals on the GUI thread.

Every worker can be stopped and joins on :meth:`Engine.shutdown`; closing the window during a recording
finalises the file.
"""
from __future__ import annotations

import asyncio
import math
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, Signal

from lumbar.acquisition.bus import ColumnRing, LiveBus, SampleRing
from lumbar.errors import CalibrationError, LumbarError
from lumbar.types import STANDARD_G, Event, SensorInfo, SessionInfo

__all__ = ["AcquisitionWorker", "SeriesRing", "LiveProcessor", "Recorder", "Engine", "LiveRep", "CalibrationReport",
           "DERIVED_COLUMNS"]

UPPER, LOWER = "lumbar", "sacrum"
DEG = math.pi / 180.0

#: Columns of the derived live series (rad, m/s²).
DERIVED_COLUMNS = ("lumbar_flexion", "lumbar_lateral", "lumbar_rotation", "pelvic_tilt", "trunk_flexion",
                   "sway_ap", "sway_ml")
COL = {name: i for i, name in enumerate(DERIVED_COLUMNS)}


# ----------------------------------------------------------------------------------------------------
# acquisition

class AcquisitionWorker:
    """An asyncio event loop in its own thread; runs one source at a time, and BLE jobs (:meth:`submit`)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="lumbar-acquisition", daemon=True)
        self._future: Any = None
        self.error: str | None = None
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        # cancel what is left, then close
        pending = asyncio.all_tasks(self.loop)
        for t in pending:
            t.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    def start(self, source: Any, bus: LiveBus) -> None:
        """Attach ``source`` to ``bus`` and run it on the loop (stopping any previous source)."""
        self.stop_source()
        self.error = None
        source.attach(bus)

        async def runner() -> None:
            try:
                await source.run(bus)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # reported to the GUI, never swallowed
                self.error = f"{type(e).__name__}: {e}"

        self._future = asyncio.run_coroutine_threadsafe(runner(), self.loop)

    def submit(self, coro: Any) -> Any:
        """Run a coroutine on the loop beside the source (BLE scans, probes); a concurrent Future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    @property
    def running(self) -> bool:
        return self._future is not None and not self._future.done()

    def stop_source(self, timeout_s: float = 2.0) -> None:
        fut, self._future = self._future, None
        if fut is not None and not fut.done():
            fut.cancel()
            try:
                fut.result(timeout=timeout_s)
            except BaseException:  # cancelled (expected) or timed out
                pass

    def shutdown(self) -> None:
        self.stop_source()
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=3.0)


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
        self.acc0 = np.zeros(3)
        # pending (not yet paired) samples: time, segment quat, segment acc
        self.t = np.empty(0)
        self.q = np.empty((0, 4))
        self.a = np.empty((0, 3))
        self.missed = 0
        self.last_arrival = time.monotonic()
        self.last_t = -math.inf
        self.boot: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # for provisional calibration
        self.cal_buf: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []


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
        self._cal_request: tuple[float, float] | None = None  # (duration_s, requested at data time)
        self._cal_window: tuple[float, float] | None = None
        self.calibrated = False
        self.provisional = False
        self._h = np.array([1.0, 0, 0, 0])  # heading alignment of the upper segment's earth frame
        self._r0 = np.eye(3)  # lumbar rotation at calibration
        self._rep_signal = "trunk_flexion"
        self._rep_thresholds = (10 * DEG, 25 * DEG)
        self._seg: Any = None
        self._rep_index = 0
        self._lp_sos: Any = None  # the 5 Hz low-pass: designed in the worker when first used (no scipy at start)
        self._lp_zi0: Any = None
        self._lp_state: dict[str, np.ndarray] = {}
        self.last_time_s = 0.0
        self.ready = threading.Event()  # set once the filters are loaded
        self._thread = threading.Thread(target=self._main, name="lumbar-processing", daemon=True)
        self._thread.start()

    # -- control (any thread) --------------------------------------------------------------------
    def calibrate(self, duration_s: float = 5.0) -> None:
        """Use the next ``duration_s`` of data (standing upright, still) as the calibration posture."""
        with self._lock:
            self._cal_request = (float(duration_s), 0.0)

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

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3.0)

    @property
    def missed(self) -> int:
        return sum(s.missed for s in self._states.values())

    # -- worker ------------------------------------------------------------------------------------
    def _main(self) -> None:
        # The first samples go to the plots before the filters load: loading them (numba kernels from the
        # cache) competes for the interpreter with the source starting up, and the raw plots come first.
        while not self._stop.is_set() and not any(r.total for r in list(self.bus.rings.values())):
            self._stop.wait(0.02)
        import lumbar.filters  # noqa: F401  (loads the numba kernels from the cache, off the GUI thread)
        from lumbar.filters import VQFFilter

        VQFFilter(100.0).process(np.tile([0.0, 0.0, STANDARD_G], (4, 1)), np.zeros((4, 3)))
        self.ready.set()
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                self.step()
            except Exception as e:  # shown to the operator; processing continues
                self.out.put(("error", f"processing: {type(e).__name__}: {e}"))
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
            self.last_time_s = max(self.last_time_s, float(batch.time_s[-1]))
            if st.r_sb is None:
                st.boot.append((batch.time_s, batch.acc, batch.gyro))
                if sum(len(b[0]) for b in st.boot) >= st.rate_hz * 1.0:
                    self._provisional(sid, st)
                continue
            self._collect_calibration(st, batch, q)
            qs = kinematics.segment_quat(q, st.r_sb)
            a_seg = batch.acc @ st.r_sb.T
            st.t = np.concatenate([st.t, batch.time_s])
            st.q = np.concatenate([st.q, qs])
            st.a = np.concatenate([st.a, a_seg])
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

    def _collect_calibration(self, st: _SensorState, batch: Any, q: np.ndarray) -> None:
        with self._lock:
            req, self._cal_request = self._cal_request, None
        if req is not None:
            self._cal_window = (float(batch.time_s[0]), float(batch.time_s[0]) + req[0])
            for s in self._states.values():
                s.cal_buf = []
        if self._cal_window is not None:
            st.cal_buf.append((batch.time_s, batch.acc, batch.gyro, q))

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
            for sid, (r_sb, tilt0, acc0, _qs) in new.items():
                st = self._states[sid]
                # re-express what is pending in the new segment frame
                st.r_sb, st.tilt0, st.acc0 = r_sb, tilt0, acc0
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
        self.out.put(("calibration", rep))

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
        """Rows at the primary sensor's sample times; the partner sensor's nearest sample (or NaN)."""
        primary = UPPER if UPPER in self._states and self._states[UPPER].r_sb is not None else (
            LOWER if LOWER in self._states and self._states[LOWER].r_sb is not None else None)
        if primary is None:
            return
        p = self._states[primary]
        other_id = LOWER if primary == UPPER else None
        o = self._states.get(other_id) if other_id else None
        if o is not None and o.r_sb is None:
            o = None
        if len(p.t) == 0:
            return
        n = len(p.t)
        dt = 1.0 / p.rate_hz
        if o is not None:
            stale = time.monotonic() - o.last_arrival > 0.3
            if not stale and len(o.t) and o.t[-1] < p.t[-1]:
                n = int(np.searchsorted(p.t, o.t[-1] + 0.5 * dt, side="right"))  # wait for the partner
            elif not stale and not len(o.t):
                n = 0
        if n == 0:
            return
        t = p.t[:n]
        rows = np.full((n, len(DERIVED_COLUMNS)), np.nan)
        tilt_p = kinematics.sagittal_tilt(p.q[:n], None) - p.tilt0
        rows[:, COL["trunk_flexion" if primary == UPPER else "pelvic_tilt"]] = tilt_p
        sway_src = p
        sway_idx = np.arange(n)
        if o is not None and len(o.t):
            j = np.clip(np.searchsorted(o.t, t), 1, len(o.t) - 1) if len(o.t) > 1 else np.zeros(n, int)
            if len(o.t) > 1:
                j = np.where(np.abs(o.t[j - 1] - t) < np.abs(o.t[j] - t), j - 1, j)
            ok = np.abs(o.t[j] - t) <= 1.5 * dt
            if ok.any():
                tilt_o = kinematics.sagittal_tilt(o.q[j[ok]], None) - o.tilt0
                rows[ok, COL["pelvic_tilt"]] = tilt_o
                up = cv.quat_multiply(np.broadcast_to(self._h, (int(ok.sum()), 4)), p.q[:n][ok])
                r_lum = np.swapaxes(cv.quat_to_matrix(o.q[j[ok]]), -1, -2) @ cv.quat_to_matrix(up)
                rows[ok, 0:3] = cv.lumbar_angles_from_matrix(self._r0.T @ r_lum)
                sway_src, sway_idx = o, j  # the sacral sensor is the sway reference
                sway_idx = np.where(ok, j, -1)
            keep_from = int(j[-1]) if len(o.t) > 1 else 0
        a = sway_src.a[np.maximum(sway_idx, 0)] - sway_src.acc0
        if sway_src is o:
            a[sway_idx < 0] = np.nan
        rows[:, COL["sway_ap"]] = self._lowpass("ap", a[:, 0])
        rows[:, COL["sway_ml"]] = self._lowpass("ml", a[:, 2])
        self.series.push(t, rows)
        p.t, p.q, p.a = p.t[n:], p.q[n:], p.a[n:]
        if o is not None and len(o.t):
            o.t, o.q, o.a = o.t[keep_from:], o.q[keep_from:], o.a[keep_from:]
            # never keep more than 2 s of the partner
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
            self.out.put(("repetition", LiveRep(
                index=self._rep_index, signal=name, peak_rad=float(r.rom), rom_rad=float(r.rom),
                duration_s=float(r.duration_s), peak_velocity_rads=float(r.peak_velocity_out), sparc=float(r.sparc),
                valid=bool(r.valid), reason=str(r.reason), end_time_s=end_t)))


# ----------------------------------------------------------------------------------------------------
# recording

class Recorder:
    """Drains the bus rings into a session file from a worker thread.

    File times are bus times minus the time of the first recorded sample (the file starts at 0).

    Every ``period_s`` it takes what is new from every ring, and hands the writer the samples of one
    sensor, in turn, and flushes: a write holds the interpreter lock (HDF5 compresses the chunk under
    it), so small writes spread over time keep the GUI thread from waiting on a large one. Each sensor's
    samples reach the file every ``period_s`` × sensors (0.4 s with four sensors at the default 0.1 s).
    Stopping (:meth:`finish`) does not wait for the disk either: the same thread writes the rest, closes the
    file and sets :attr:`saved`.
    """

    def __init__(self, bus: LiveBus, path: str | Path, info: SessionInfo, sensors: list[SensorInfo], *,
                 period_s: float = 0.1) -> None:
        from lumbar.storage.writer import SessionWriter

        self.bus = bus
        self.path = Path(path)
        self.info = info
        self.writer = SessionWriter(self.path, info, sensors)
        self.sensor_ids = [s.sensor_id for s in sensors]
        self._rings = {sid: bus.rings[sid] for sid in self.sensor_ids}
        self._cursors = {sid: r.total for sid, r in self._rings.items()}  # from the first sample after start
        self.start_cursors = dict(self._cursors)
        self.t0: float | None = None
        self.missed = 0
        self.written = {sid: 0 for sid in self.sensor_ids}
        self._pending: dict[str, list[Any]] = {sid: [] for sid in self.sensor_ids}  # taken, not yet written
        self._turn = 0
        self.error: str | None = None
        self._events: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        #: Set once the file is closed and complete (or could not be: see ``error``).
        self.saved = threading.Event()
        self.period_s = period_s
        self._thread = threading.Thread(target=self._main, name="lumbar-recorder", daemon=True)
        self._thread.start()

    def mark(self, bus_time_s: float, label: str, note: str = "") -> None:
        self._events.put((bus_time_s, label, note))

    def _drain(self, everything: bool = False) -> None:
        """Take what is new from the rings; write one sensor's samples (``everything``: all of them)."""
        from dataclasses import replace

        got = {}
        for sid, ring in self._rings.items():
            b, self._cursors[sid], missed = ring.since(self._cursors[sid])
            self.missed += missed
            if len(b):
                got[sid] = b
        if got and self.t0 is None:
            self.t0 = min(float(b.time_s[0]) for b in got.values())
        for sid, b in got.items():
            self._pending[sid].append(replace(b, time_s=b.time_s - self.t0))
        while self.t0 is not None:
            try:
                t, label, note = self._events.get_nowait()
            except queue.Empty:
                break
            self.writer.add_event(Event(max(0.0, t - self.t0), label, note))
        if everything:
            turn = self.sensor_ids
        else:
            turn = [self.sensor_ids[self._turn % len(self.sensor_ids)]] if self.sensor_ids else []
            self._turn += 1
        for sid in turn:
            batches, self._pending[sid] = self._pending[sid], []
            for b in batches:
                self.writer.append(b)
                self.written[sid] += len(b)
        self.writer.flush()

    def _main(self) -> None:
        try:
            try:
                while not self._stop.wait(self.period_s):
                    self._drain()
            except Exception as e:  # disk full, ...: reported, the GUI keeps running
                self.error = _error_text(e)
            # finish here, not on the thread that stopped the recording (the GUI's): the last samples, then
            # closing, which rewrites the file with its final chunks (seconds for an hour's recording)
            try:
                self._drain(everything=True)
            finally:
                self.writer.close()
        except Exception as e:
            self.error = self.error or _error_text(e)
        finally:
            self.saved.set()

    @property
    def duration_s(self) -> float:
        if self.t0 is None:
            return 0.0
        last = [float(r.latest(1).time_s[-1]) for r in self._rings.values() if r.total]
        return max(last) - self.t0 if last else 0.0

    def finish(self) -> None:
        """Stop recording without waiting: the recorder's thread writes what is left, closes the file and
        marks it complete, then sets :attr:`saved` (:attr:`error` says what went wrong, if anything)."""
        self._stop.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until the file is saved (after :meth:`finish`); False if ``timeout_s`` passed first."""
        return self.saved.wait(timeout_s)

    def stop(self, timeout_s: float | None = 120.0) -> Path:
        """Finish and wait until the file is saved. Safe to call twice."""
        self.finish()
        self.wait(timeout_s)
        return self.path


def _error_text(e: BaseException) -> str:
    """A recording error as the operator reads it: our own errors say what happened in words already."""
    return str(e) if isinstance(e, LumbarError) else f"{type(e).__name__}: {e}"


# ----------------------------------------------------------------------------------------------------
# the engine the GUI talks to

class Engine(QObject):
    """Bus + workers; the GUI's only door to acquisition, processing and recording."""

    calibration_done = Signal(object)  # CalibrationReport
    repetition = Signal(object)  # LiveRep
    recording_changed = Signal(bool, str)  # recording?, path
    message = Signal(str)
    sources_changed = Signal()
    devices_found = Signal(object)  # list[DeviceEntry], from a scan
    device_battery = Signal(str, float)  # address, battery %

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bus = LiveBus(capacity_s=60.0)
        self.acq = AcquisitionWorker()
        self.processor: LiveProcessor | None = None
        self.recorder: Recorder | None = None
        self._finishing: list[Recorder] = []  # stopped, being saved on their own threads
        self.source: Any = None
        self.sensor_infos: list[SensorInfo] = []
        self._rate_marks: dict[str, tuple[float, int]] = {}
        self.achieved_rate_hz: dict[str, float] = {}
        self._reported_error: str | None = None
        self.repetitions: list[LiveRep] = []
        self.link: Any = None  # sources.BleLink: bleak backends (hardware or emulated sensors)
        self._found_handled = threading.Event()  # the GUI has taken the last scan's list
        self._link_out: queue.Queue = queue.Queue()  # results of work on the acquisition loop
        self._scan_future: Any = None
        self._probe: tuple[Any, Any] | None = None  # (source, future) listening for a tap

    # -- sources -----------------------------------------------------------------------------------
    def connect_source(self, source: Any, sensor_infos: list[SensorInfo] | None = None) -> None:
        """Run ``source`` (stopping the previous one) and a fresh processor for its sensors."""
        self.disconnect_source()
        self.bus = LiveBus(capacity_s=60.0)
        self.source = source
        self.sensor_infos = list(sensor_infos) if sensor_infos is not None else (
            source.sensor_infos() if hasattr(source, "sensor_infos") else [])
        self.acq.start(source, self.bus)
        rates = dict(getattr(source, "rates_hz", {}) or {})
        if not self.sensor_infos:
            self.sensor_infos = [SensorInfo(sid, sid, family=self.bus.status[sid].family or "unknown",
                                            nominal_rate_hz=rates.get(sid, 100.0)) for sid in self.bus.rings]
        self.processor = LiveProcessor(self.bus, rates or {s.sensor_id: s.nominal_rate_hz for s in self.sensor_infos})
        self.repetitions = []
        self.sources_changed.emit()

    def disconnect_source(self) -> None:
        if self.recorder is not None:
            self.stop_recording()
        self.acq.stop_source()
        if self.processor is not None:
            self.processor.stop()
            self.processor = None
        self.source = None
        self._rate_marks.clear()
        self.achieved_rate_hz.clear()
        self.sources_changed.emit()

    @property
    def connected(self) -> bool:
        return self.source is not None

    # -- Bluetooth: scan, per-sensor connect (all BLE work runs on the acquisition loop) -----------
    def use_link(self, emulated: bool) -> None:
        """Scan and connect through the host's adapter, or through emulated sensors (Bumble)."""
        from lumbar_gui.sources import BleLink

        if self.link is None or (emulated and not self.link.emulated):
            old, self.link = self.link, BleLink(emulated)
            if old is not None:
                self.acq.submit(old.stop())

    @property
    def scanning(self) -> bool:
        return self._scan_future is not None and not self._scan_future.done()

    def scan(self, timeout_s: float | None = None) -> bool:
        """Scan in the background; :attr:`devices_found`, then :attr:`device_battery` per sensor. False if busy."""
        from lumbar_gui.sources import BleSource, NoAdapterError

        if self.scanning:
            return False
        if self.link is None:
            self.use_link(False)
        link, out, handled = self.link, self._link_out, self._found_handled

        async def job() -> None:
            try:
                try:
                    entries = await link.scan(timeout_s)
                except NoAdapterError as e:
                    out.put(("message", f"{e}: the emulated sensors are listed instead"))
                    entries = await link.scan(timeout_s)
                handled.clear()
                out.put(("found", entries))
                # battery levels after the GUI has taken the list: a sensor it connects at once (auto-connect)
                # is then skipped, rather than held by a battery read while its reader looks for it
                await asyncio.get_running_loop().run_in_executor(None, handled.wait, 2.0)
                for e in entries:
                    src = self.source
                    if isinstance(src, BleSource) and src.sensor_id_of(e.address):
                        continue  # being connected by the reader, which reads the battery itself
                    pct = await link.read_battery(e.address)
                    if pct is not None:
                        out.put(("battery", (e.address, pct)))
            except Exception as e:  # shown to the operator
                out.put(("message", f"scan failed: {type(e).__name__}: {e}"))
                out.put(("found", None))

        self._scan_future = self.acq.submit(job())
        return True

    def connect_sensors(self, targets: list[Any]) -> None:
        """Connect sensors (reader targets) through the reader: into the running source, or a new one."""
        from lumbar_gui.sources import BleSource, EmulatedSource

        src = self.source
        if isinstance(src, BleSource) and self.acq.running:
            for t in targets:
                src.add(t)
            self.sensor_infos = src.sensor_infos()
            self.sources_changed.emit()
        elif targets:
            cls = EmulatedSource if self.link.emulated else BleSource
            self.connect_source(cls(self.link, targets))

    def disconnect_sensor(self, sensor_id: str) -> None:
        """Disconnect one sensor; the others keep streaming (and recording)."""
        from lumbar_gui.sources import BleSource

        src = self.source
        if isinstance(src, BleSource):
            src.remove(sensor_id)
            self.sensor_infos = src.sensor_infos()

    def start_probe(self, targets: list[Any]) -> LiveBus:
        """Stream ``targets`` onto a bus of their own (not processed, not recorded): tap detection."""
        from lumbar_gui.sources import BleSource

        self.stop_probe()
        src = BleSource(self.link, targets)
        bus = LiveBus(capacity_s=10.0)
        src.attach(bus)
        self._probe = (src, self.acq.submit(src.run(bus)))
        return bus

    def stop_probe(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            probe[1].cancel()

    def tap_demo(self, address: str) -> None:
        """Emulated sensors: the demo patient taps the sensor with ``address``."""
        if self.link is None or self.link.patient is None:
            raise RuntimeError("tapping a sensor is only emulated for the demo sensors")
        self.link.patient.tap(self.link.placement_of(address))

    def _poll_link(self) -> None:
        """Deliver what the BLE work on the loop produced (GUI thread)."""
        while True:
            try:
                kind, obj = self._link_out.get_nowait()
            except queue.Empty:
                break
            if kind == "found":
                self.devices_found.emit(obj)
                self._found_handled.set()
            elif kind == "battery":
                self.device_battery.emit(obj[0], float(obj[1]))
            else:
                self.message.emit(str(obj))
        take = getattr(self.source, "take_events", None)
        if take is not None:
            for e in take():  # the reader's connected / disconnect / reconnect markers
                self.mark(e.label, e.note, e.time_s)

    def now(self) -> float:
        """Latest sample time on the bus (session data time), s."""
        ts = [float(r.latest(1).time_s[-1]) for r in self.bus.rings.values() if r.total]
        return max(ts) if ts else 0.0

    # -- recording ---------------------------------------------------------------------------------
    def start_recording(self, path: str | Path, info: SessionInfo) -> Recorder:
        if self.recorder is not None:
            self.stop_recording()
        sensors = [s for s in self.sensor_infos if s.sensor_id in self.bus.rings]
        self.recorder = Recorder(self.bus, path, info, sensors)
        self.recording_changed.emit(True, str(path))
        return self.recorder

    def stop_recording(self) -> Path | None:
        """Stop the recording now and return its path; the file is finished on the recorder's thread (the GUI
        never waits for the disk). ``recording_changed(False, path)`` is emitted once it is saved (see
        :meth:`poll`); :meth:`wait_saved` waits for it from any thread."""
        rec, self.recorder = self.recorder, None
        if rec is None:
            return None
        rec.finish()
        self._last_recorder = rec
        self._finishing.append(rec)
        return rec.path

    def wait_saved(self, timeout_s: float | None = 120.0) -> bool:
        """Wait until every stopped recording is saved (closed, complete); False if ``timeout_s`` passed."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for rec in list(self._finishing):
            if not rec.wait(None if deadline is None else max(0.0, deadline - time.monotonic())):
                return False
        return True

    def _report_saved(self) -> None:
        """Announce the recordings saved since the last call (GUI thread)."""
        for rec in [r for r in self._finishing if r.saved.is_set()]:
            self._finishing.remove(rec)
            if rec.error:
                self.message.emit(f"recording failed: {rec.error}")
            self.recording_changed.emit(False, str(rec.path))

    def mark(self, label: str, note: str = "", time_s: float | None = None) -> None:
        """An event marker now (or at ``time_s``, bus time): on the bus and in the recording."""
        t = self.now() if time_s is None else time_s
        self.bus.mark(Event(t, label, note))
        if self.recorder is not None:
            self.recorder.mark(t, label, note)

    # -- polled from the GUI timer ---------------------------------------------------------------
    def poll(self) -> None:
        self._poll_link()
        if self.processor is not None:
            while True:
                try:
                    kind, obj = self.processor.out.get_nowait()
                except queue.Empty:
                    break
                if kind == "calibration":
                    self.calibration_done.emit(obj)
                elif kind == "repetition":
                    self.repetitions.append(obj)
                    self.repetition.emit(obj)
                else:
                    self.message.emit(str(obj))
        if self.acq.error and self.acq.error != self._reported_error:
            self._reported_error = self.acq.error
            self.message.emit(f"acquisition stopped: {self.acq.error}")
        if self.recorder is not None and self.recorder.error:
            err = self.recorder.error
            self.message.emit(f"recording failed: {err}")
            self.recorder.error = None
        if self._finishing:
            self._report_saved()
        # achieved rate: samples received per second of the session clock (host time of the samples)
        for sid, ring in self.bus.rings.items():
            if not ring.total:
                continue
            t_last = float(ring.latest(1).time_s[-1])
            mark = self._rate_marks.get(sid)
            if mark is None:
                self._rate_marks[sid] = (t_last, ring.total)
            elif t_last - mark[0] >= 1.0:
                self.achieved_rate_hz[sid] = (ring.total - mark[1]) / (t_last - mark[0])
                self._rate_marks[sid] = (t_last, ring.total)
            elif not self.bus.status[sid].connected and ring.total == mark[1]:
                self.achieved_rate_hz[sid] = 0.0

    def shutdown(self) -> None:
        """Finalise any recording, stop every worker (closing the window calls this)."""
        self.disconnect_source()
        self.wait_saved()  # the file is whole before the application ends
        self.stop_probe()
        link, self.link = self.link, None
        if link is not None and not self.acq.loop.is_closed() and self.acq.loop.is_running():
            try:
                self.acq.submit(link.stop()).result(timeout=3.0)
            except Exception:  # noqa: BLE001 - closing anyway
                pass
        self.acq.shutdown()


def run_in_thread(fn: Callable[[], Any], done: Callable[[Any, BaseException | None], None]) -> threading.Thread:
    """Run ``fn`` in a daemon thread; ``done(result, error)`` is called from that thread."""
    def main() -> None:
        try:
            r = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            done(None, e)
        else:
            done(r, None)

    th = threading.Thread(target=main, daemon=True)
    th.start()
    return th
