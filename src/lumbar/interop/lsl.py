"""Lab Streaming Layer outlets: one per sensor and one for derived angles, fed from a LiveBus.

Labs record EMG, EEG, force plates and our sensors together with LabRecorder; LSL puts every stream
on one clock. :class:`LslBridge` pulls new samples from the :class:`~lumbar.acquisition.bus.LiveBus`
rings and pushes them to the outlets:

* ``<prefix>-<sensor>`` (type ``IMU``, 8 channels, double): acc x/y/z (m/s²), gyro x/y/z (rad/s),
  the device sample counter and the sample flags, at the sensor's nominal rate.
* ``<prefix>-angles`` (type ``Angles``, 5 channels, double, rad): lumbar flexion, right lateral
  bending, axial rotation (left +) — ``docs/conventions.md`` — and the sagittal tilt of pelvis and
  upper segment, relative to the first ``calib_s`` seconds (standing still), computed causally
  (:class:`LiveAngles`) when a ``lumbar`` and a ``sacrum`` sensor are on the bus.

Every sample carries an explicit LSL timestamp ``time_s + time_offset``: the session time of the
sample mapped onto the LSL clock (``pylsl.local_clock``). By default the offset is fixed when the first
sample is pushed, so that the first sample is stamped "now"; a source that knows the LSL time of its
session start passes ``time_offset``. :func:`replay_file_to_lsl` streams a session file.

``pylsl`` is an optional dependency (extra ``interop``); its wheels ship liblsl.
"""
from __future__ import annotations

import asyncio
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lumbar.acquisition.bus import LiveBus
from lumbar.errors import LumbarError
from lumbar.types import SHANKS, THIGH_OF, THIGHS, ImuBatch, SensorInfo

__all__ = ["IMU_CHANNELS", "ANGLE_CHANNELS", "HIP_CHANNEL", "KNEE_CHANNEL", "LiveAngles", "LslBridge", "replay_file_to_lsl",
           "require_pylsl"]

#: (label, unit, type) of each channel of a sensor outlet.
IMU_CHANNELS: tuple[tuple[str, str, str], ...] = (
    ("acc_x", "m/s^2", "ACCEL"), ("acc_y", "m/s^2", "ACCEL"), ("acc_z", "m/s^2", "ACCEL"),
    ("gyro_x", "rad/s", "GYRO"), ("gyro_y", "rad/s", "GYRO"), ("gyro_z", "rad/s", "GYRO"),
    ("seq", "1", "MISC"), ("flags", "1", "MISC"),
)
#: (label, unit, type) of each channel of the angles outlet.
ANGLE_CHANNELS: tuple[tuple[str, str, str], ...] = (
    ("lumbar_flexion", "rad", "JNTANG"), ("lumbar_lateral_bending_right", "rad", "JNTANG"),
    ("lumbar_axial_rotation_left", "rad", "JNTANG"), ("pelvic_tilt_anterior", "rad", "ORNT"),
    ("trunk_flexion", "rad", "ORNT"),
)
#: The channel added when thigh sensors stream: the mean hip flexion (docs/conventions.md).
HIP_CHANNEL = ("hip_flexion", "rad", "JNTANG")
#: The channel added when shank sensors stream: the flexion of the knee that moves (docs/conventions.md).
KNEE_CHANNEL = ("knee_flexion", "rad", "JNTANG")
UPPER, LOWER = "lumbar", "sacrum"
#: A leg's sensor whose latest sample is this far behind the sacrum's has stopped: the angles go on without it, s.
THIGH_STALE_S = 0.5


def require_pylsl() -> Any:
    """Import pylsl or raise a one-line error that says how to install it."""
    try:
        import pylsl
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise LumbarError("LSL streaming needs pylsl: pip install 'lumbar-motor-control[interop]'") from e
    return pylsl


class LiveAngles:
    """Causal lumbar angles from the upper (T12/L1) and lower (S1) sensors' sample streams, hip flexion
    when thigh sensors stream too, and knee flexion when shank sensors do.

    Each sensor runs the live orientation filter (``VQFFilter``, the ``"default"`` method) sample by
    sample. The first ``calib_s`` seconds are the standing calibration: the sensor-to-segment rotation
    from gravity (:func:`lumbar.pipeline.static_only_calibration`), the heading alignment and the zero
    posture (:func:`lumbar.kinematics.lumbar_angles`). Angles are produced at the upper sensor's sample
    times, with each other sensor's latest orientation at or before each time, from the calibration on
    (the stream starts ``calib_s`` late and then covers every upper sample). :attr:`channels` names them.
    """

    def __init__(self, rate_hz: Mapping[str, float], calib_s: float = 2.0) -> None:
        from lumbar.filters import VQFFilter

        self.calib_s = float(calib_s)
        self.thighs = tuple(th for th in THIGHS if th in rate_hz)
        self.shanks = tuple(sh for sh in SHANKS if sh in rate_hz)
        self.channels = (ANGLE_CHANNELS + ((HIP_CHANNEL,) if self.thighs else ())
                         + ((KNEE_CHANNEL,) if self.shanks else ()))
        self._ids = (UPPER, LOWER, *self.thighs, *self.shanks)
        self._last_tilt: dict[str, float] = {}  # each segment's last tilt sent (kinematics.continue_angle)
        self._filters = {sid: VQFFilter(rate_hz[sid]) for sid in self._ids}
        self._t: dict[str, list[np.ndarray]] = {sid: [] for sid in self._ids}
        self._q: dict[str, list[np.ndarray]] = {sid: [] for sid in self._ids}
        self._acc: dict[str, list[np.ndarray]] = {sid: [] for sid in self._ids}
        self._gyro: dict[str, list[np.ndarray]] = {sid: [] for sid in self._ids}
        self._r_sb: dict[str, np.ndarray] = {}
        self._cal: dict[str, np.ndarray] | None = None  # paired calibration segment quats

    def feed(self, batch: ImuBatch) -> None:
        sid = batch.sensor_id
        if sid not in self._filters or len(batch) == 0:
            return
        if self._cal is not None and sid not in self._cal:
            return  # a leg that was not streaming through the calibration has no angle: nothing to keep
        q, _ = self._filters[sid].process(batch.acc, batch.gyro)
        self._t[sid].append(batch.time_s.copy())
        self._q[sid].append(q)
        if self._cal is None:
            self._acc[sid].append(batch.acc.copy())
            self._gyro[sid].append(batch.gyro.copy())

    @staticmethod
    def _cat(parts: list[np.ndarray], tail: tuple[int, ...] = ()) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros((0, *tail))

    def _calibrate(self) -> bool:
        from lumbar import kinematics
        from lumbar.calibration import segment_kind
        from lumbar.pipeline import static_only_calibration

        t = {s: self._cat(self._t[s]) for s in self._ids}
        if any(len(t[s]) < 2 or t[s][-1] - t[s][0] < self.calib_s for s in (UPPER, LOWER)):
            return False
        t_end = max(t[UPPER][0], t[LOWER][0]) + self.calib_s
        seg = {}
        for s in self._ids:
            n = int(np.searchsorted(t[s], t_end, side="right"))
            if s not in (UPPER, LOWER) and (n < 2 or t[s][n - 1] - t[s][0] < 0.5 * self.calib_s):
                continue  # a leg not streaming through the calibration: no angle from it
            acc, gyro = self._cat(self._acc[s], (3,))[:n], self._cat(self._gyro[s], (3,))[:n]
            self._r_sb[s] = static_only_calibration(acc, gyro, f"{s} sensor",
                                                    segment=segment_kind(s)).r_sb
            seg[s] = kinematics.segment_quat(self._cat(self._q[s], (4,))[:n], self._r_sb[s])
        n_up = len(seg[UPPER])
        self._cal = {UPPER: seg[UPPER]}
        for s in seg:  # each other sensor's latest sample at or before the upper one's
            if s == UPPER:
                continue
            idx = np.clip(np.searchsorted(t[s][: len(seg[s])], t[UPPER][:n_up], side="right") - 1, 0, None)
            self._cal[s] = seg[s][idx]
        self._acc = {s: [] for s in self._ids}
        self._gyro = {s: [] for s in self._ids}
        return True

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        """Angles ready so far: ``(time_s (M,), values (M, len(channels)))`` in the order of :attr:`channels`."""
        from lumbar import kinematics

        empty = (np.zeros(0), np.zeros((0, len(self.channels))))
        if self._cal is None and not self._calibrate():
            return empty
        assert self._cal is not None
        cal = self._cal
        t = {s: self._cat(self._t[s]) for s in cal}
        t_up, t_low = t[UPPER], t[LOWER]
        if len(t_up) == 0 or len(t_low) == 0:
            return empty
        ready = int(np.searchsorted(t_up, t_low[-1], side="right"))
        # a leg that streams is waited for; one that stopped (THIGH_STALE_S behind the sacrum) is not, its
        # angle is NaN past its last sample
        live = [s for s in self.thighs + self.shanks
                if s in cal and len(t[s]) and t[s][-1] >= t_low[-1] - THIGH_STALE_S]
        for th in live:
            ready = min(ready, int(np.searchsorted(t_up, t[th][-1], side="right")))
        if ready == 0:
            return empty
        n = len(cal[UPPER])
        cs = slice(0, n)
        q_up = self._cat(self._q[UPPER], (4,))
        seg = {UPPER: kinematics.segment_quat(q_up[:ready], self._r_sb[UPPER])}
        fresh = {}
        for s in cal:  # each other sensor's latest sample at or before each upper one
            if s == UPPER or not len(t[s]):
                continue
            q = self._cat(self._q[s], (4,))
            idx = np.clip(np.searchsorted(t[s], t_up[:ready], side="right") - 1, 0, None)
            seg[s] = kinematics.segment_quat(q[idx], self._r_sb[s])
            fresh[s] = t_up[:ready] - t[s][idx] <= THIGH_STALE_S
            keep = int(idx[-1])  # what is not consumed: from the last sample used on
            self._t[s], self._q[s] = [t[s][keep:]], [q[keep:]]
        self._t[UPPER], self._q[UPPER] = [t_up[ready:]], [q_up[ready:]]
        tilt = {}
        for s in seg:  # continuous from block to block (a shank lying prone bends past ±180° of the standing zero)
            tilt[s], self._last_tilt[s] = kinematics.continue_angle(
                kinematics.sagittal_tilt(np.vstack([cal[s], seg[s]]), cs)[n:], self._last_tilt.get(s, math.nan))
        ang = kinematics.lumbar_angles(np.vstack([cal[UPPER], seg[UPPER]]), np.vstack([cal[LOWER], seg[LOWER]]),
                                       cs)[n:]
        cols = [ang, tilt[LOWER], tilt[UPPER]]
        if self.thighs:
            thighs = [np.where(fresh[th], tilt[th], np.nan) for th in self.thighs if th in tilt]
            cols.append(kinematics.hip_flexion(tilt[LOWER], thighs) if thighs else np.full(ready, np.nan))
        if self.shanks:
            def leg(s: str) -> np.ndarray | None:
                return np.where(fresh[s], tilt[s], np.nan) if s in tilt else None

            knees = [kinematics.knee_flexion(leg(sh), leg(THIGH_OF[sh])) for sh in self.shanks if sh in tilt]
            cols.append(kinematics.working_side(knees) if knees else np.full(ready, np.nan))
        return t_up[:ready], np.column_stack(cols)


def _stream_info(pylsl: Any, name: str, stype: str, channels: tuple[tuple[str, str, str], ...], rate_hz: float,
                 source_id: str, meta: Mapping[str, str]) -> Any:
    info = pylsl.StreamInfo(name, stype, len(channels), rate_hz if rate_hz > 0 else pylsl.IRREGULAR_RATE,
                            pylsl.cf_double64, source_id)
    desc = info.desc()
    chans = desc.append_child("channels")
    for label, unit, ctype in channels:
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", unit)
        ch.append_child_value("type", ctype)
    acq = desc.append_child("acquisition")
    for k, v in meta.items():
        acq.append_child_value(k, str(v))
    return info


@dataclass
class LslBridge:
    """Outlets for the sensors of a :class:`LiveBus`; call :meth:`pump` periodically (or :meth:`start`).

    Parameters
    ----------
    bus : LiveBus
    sensors : mapping of sensor id to SensorInfo or to nominal rate (Hz)
        The sensors to stream (outlets are made at construction).
    prefix : str
        Stream names are ``<prefix>-<sensor>`` and ``<prefix>-angles``; source ids add ``source_id``.
    source_id : str
        Stable id of this acquisition (e.g. the session id), so LabRecorder re-finds the streams.
    angles : bool
        Also stream derived angles (needs a ``lumbar`` and a ``sacrum`` sensor; with thigh sensors, hip flexion
        too: :attr:`LiveAngles.channels`).
    time_offset : float, optional
        LSL time of session time zero; default: fixed at the first pushed sample (stamped "now").
    calib_s : float
        Standing calibration at the start of the angle stream, s.
    """

    bus: LiveBus
    sensors: Mapping[str, SensorInfo | float]
    prefix: str = "lumbar"
    source_id: str = "lumbar"
    angles: bool = True
    time_offset: float | None = None
    calib_s: float = 2.0
    outlets: dict[str, Any] = field(default_factory=dict, init=False)
    pushed: dict[str, int] = field(default_factory=dict, init=False)
    missed: dict[str, int] = field(default_factory=dict, init=False)
    _cursor: dict[str, int] = field(default_factory=dict, init=False)
    _angles: LiveAngles | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)

    def __post_init__(self) -> None:
        pylsl = require_pylsl()
        self._pylsl = pylsl
        rates: dict[str, float] = {}
        for sid, s in self.sensors.items():
            rate = s.nominal_rate_hz if isinstance(s, SensorInfo) else float(s)
            rates[sid] = rate
            meta = {"manufacturer": s.family, "model": s.model, "placement": s.placement} \
                if isinstance(s, SensorInfo) else {"placement": sid}
            info = _stream_info(pylsl, f"{self.prefix}-{sid}", "IMU", IMU_CHANNELS, rate,
                                f"{self.source_id}-{sid}", {**meta, "time": "session time + offset, s"})
            self.outlets[sid] = pylsl.StreamOutlet(info, chunk_size=0, max_buffered=360)
            self.pushed[sid] = self.missed[sid] = 0
            self._cursor[sid] = 0
        if self.angles and UPPER in rates and LOWER in rates:
            self._angles = LiveAngles(rates, self.calib_s)
            info = _stream_info(pylsl, f"{self.prefix}-angles", "Angles", self._angles.channels, rates[UPPER],
                                f"{self.source_id}-angles",
                                {"convention": "Cardan Z-X'-Y'' of the upper segment relative to the pelvis; "
                                               "flexion +, right bending +, left rotation +; relative to the "
                                               "first calibration seconds"})
            self.outlets["angles"] = pylsl.StreamOutlet(info, chunk_size=0, max_buffered=360)
            self.pushed["angles"] = 0

    def wait_for_consumers(self, timeout_s: float) -> bool:
        """Block until every outlet has an inlet (or the timeout): samples pushed before are not received."""
        import time

        end = time.monotonic() + timeout_s
        for o in self.outlets.values():
            if not o.wait_for_consumers(max(0.0, end - time.monotonic())):
                return False
        return True

    def _push(self, key: str, t: np.ndarray, values: np.ndarray) -> None:
        if self.time_offset is None:
            self.time_offset = self._pylsl.local_clock() - float(t[0])
        stamps = (t + self.time_offset).tolist()
        self.outlets[key].push_chunk(np.ascontiguousarray(values, dtype=np.float64), stamps)
        self.pushed[key] += len(t)

    def pump(self) -> int:
        """Push every sample that arrived on the bus since the last call; returns the number pushed."""
        n = 0
        for sid in list(self.outlets):
            if sid == "angles" or sid not in self.bus.rings:
                continue
            batch, self._cursor[sid], missed = self.bus.rings[sid].since(self._cursor[sid])
            self.missed[sid] += missed
            if len(batch) == 0:
                continue
            values = np.column_stack([batch.acc, batch.gyro, batch.seq.astype(np.float64),
                                      batch.flags.astype(np.float64)])
            self._push(sid, batch.time_s, values)
            n += len(batch)
            if self._angles is not None:
                self._angles.feed(batch)
        if self._angles is not None:
            t, a = self._angles.take()
            if len(t):
                self._push("angles", t, a)
        return n

    def start(self, interval_s: float = 0.02) -> None:
        """Pump on a background thread every ``interval_s`` until :meth:`stop`."""
        def loop() -> None:
            while not self._stop.wait(interval_s):
                self.pump()
            self.pump()

        self._stop.clear()
        self._thread = threading.Thread(target=loop, name="lsl-bridge", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        self.stop()
        self.outlets.clear()  # outlets close when garbage-collected


def replay_file_to_lsl(path: str | Path, *, speed: float = 1.0, prefix: str = "lumbar", angles: bool = True,
                       wait_for_consumers_s: float = 0.0, time_offset: float | None = None,
                       bridge_ready: Any = None) -> LslBridge:
    """Stream a session file to LSL at ``speed`` × real time (``math.inf``: as fast as possible).

    ``bridge_ready(bridge)`` is called once the outlets exist (before any sample is pushed), e.g. to
    open inlets; with ``wait_for_consumers_s`` the replay waits for an inlet on every outlet first.
    Returns the bridge (counts in ``pushed`` and ``missed``; ``time_offset`` maps session time to LSL).
    """
    from lumbar.acquisition.replay import ReplaySource
    from lumbar.storage.reader import read_session

    session = read_session(path, load_truth=False)
    duration = max((float(b.time_s[-1] - b.time_s[0]) for b in session.data.values() if len(b)), default=0.0)
    # as fast as possible: rings large enough that the pump can never fall a whole ring behind
    bus = LiveBus(capacity_s=duration + 10.0 if not math.isfinite(speed) else 60.0)
    source = ReplaySource(session.data, {s: i.nominal_rate_hz or 100.0 for s, i in session.sensors.items()},
                          session.events, speed=speed)
    source.attach(bus)
    bridge = LslBridge(bus, {s: session.sensors[s] for s in session.data}, prefix=prefix,
                       source_id=f"{prefix}-{session.info.session_id}", angles=angles, time_offset=time_offset)
    if bridge_ready is not None:
        bridge_ready(bridge)
    if wait_for_consumers_s > 0:
        bridge.wait_for_consumers(wait_for_consumers_s)

    async def main() -> None:
        task = asyncio.create_task(source.run(bus))
        while not task.done():
            bridge.pump()
            await asyncio.sleep(0.01)
        await task
        bridge.pump()

    asyncio.run(main())
    return bridge
