"""Data sources the GUI can connect to, and how it finds them.

A *source* has the reader's shape: ``attach(bus)`` declares its sensors on a
:class:`~lumbar.acquisition.bus.LiveBus`, ``async run(bus)`` pushes samples until cancelled.
:class:`~lumbar.acquisition.replay.ReplaySource`, the BLE reader and :class:`DemoPatient` all fit,
so the acquisition worker never needs to know which one it runs.

:class:`DemoPatient` is the "Demo sensors" entry: the emulated patient (:func:`lumbar.simulate.simulate`)
replayed in real time (or faster), who performs whatever movement the assessment asks for
(:meth:`DemoPatient.perform`) and stands quietly otherwise. It can also drop a sensor for a while
(:meth:`DemoPatient.drop`) so the GUI's handling of lost links can be shown and tested.
"""
from __future__ import annotations

import asyncio
import importlib.util
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np

from lumbar.acquisition.bus import LiveBus
from lumbar.types import ImuBatch, SampleFlag, SensorInfo

__all__ = ["Source", "DeviceEntry", "DemoPatient", "scan_devices", "ble_reader_available", "PLACEMENTS"]

#: Placements offered in the Devices view, with the label the operator sees.
PLACEMENTS: dict[str, str] = {
    "lumbar": "L1 (thoraco-lumbar)",
    "sacrum": "S1 (sacrum)",
    "thigh_left": "Left thigh",
    "thigh_right": "Right thigh",
}


class Source(Protocol):
    """What the acquisition worker runs (the BLE reader, a replay, the demo patient)."""

    def attach(self, bus: LiveBus) -> None: ...

    async def run(self, bus: LiveBus) -> None: ...


@dataclass
class DeviceEntry:
    """One row of the Devices view's scan list."""

    address: str
    name: str
    family: str
    rssi_dbm: float | None
    battery_pct: float | None
    demo: bool = False


def ble_reader_available() -> bool:
    """True once the BLE reader module is installed (``lumbar.acquisition.reader``)."""
    return importlib.util.find_spec("lumbar.acquisition.reader") is not None


def scan_devices(include_demo: bool = True) -> list[DeviceEntry]:
    """Sensors in range; the four demo sensors are listed when asked or when no reader is present."""
    out: list[DeviceEntry] = []
    if include_demo or not ble_reader_available():
        for i, (pl, rssi, bat) in enumerate(zip(PLACEMENTS, (-48, -52, -61, -58), (96, 88, 74, 91))):
            out.append(DeviceEntry(address=f"DE:M0:00:00:00:0{i + 1}", name=f"Demo IMU {i + 1}",
                                   family="emulated", rssi_dbm=float(rssi), battery_pct=float(bat), demo=True))
    return out


@dataclass
class _Segment:
    t0: float  # session time of the segment's first sample
    batches: dict[str, ImuBatch]
    pos: dict[str, int]
    movement: str


class DemoPatient:
    """The emulated patient as a live source (the "Demo sensors").

    Parameters
    ----------
    sensors : mapping of sensor id (placement) to device address
        Which placements are worn; each gets a ring on the bus.
    rate_hz : float
        Output data rate of every sensor, Hz.
    speed : float
        1.0 = real time; 4.0 replays four times faster (tests).
    seed : int
        Seed of the patient and the sensor errors.
    tick_s : float
        Wall-clock period of pushes (a BLE notification carries a few samples).
    """

    IDLE_S = 20.0

    def __init__(self, sensors: dict[str, str] | Sequence[str], rate_hz: float = 100.0, *, speed: float = 1.0,
                 seed: int = 7, tick_s: float = 0.02) -> None:
        self.sensors = dict(sensors) if isinstance(sensors, dict) else {s: f"DE:M0:00:00:00:0{i + 1}"
                                                                           for i, s in enumerate(sensors)}
        self.rate_hz = float(rate_hz)
        self.rates_hz = {sid: self.rate_hz for sid in self.sensors}
        self.speed = float(speed)
        self.seed = int(seed)
        self.tick_s = float(tick_s)
        self._lock = threading.Lock()
        self._request: tuple[str, float, dict[str, Any]] | None = None
        self._drops: dict[str, float] = {}  # sensor -> drop duration requested (s of data time)
        self._disabled: set[str] = set()
        self.current_movement = "quiet-standing"
        # fixed mounting so that every segment of the demo has the same sensor-to-segment rotation
        rng = np.random.default_rng(self.seed)
        self._misalignment = {sid: tuple(float(v) for v in rng.normal(0.0, 3.0, 3)) for sid in
                              ("lumbar", "sacrum", "thigh_left", "thigh_right")}
        self.data_time_s = 0.0
        #: Why the last :meth:`perform` request could not be simulated (None if it could).
        self.last_error: str | None = None

    # -- requests from the GUI thread ------------------------------------------------------------
    def perform(self, movement: str, duration_s: float, **kwargs: Any) -> None:
        """From now on, the patient performs ``movement`` for ``duration_s`` (5 s still first), then idles."""
        with self._lock:
            self._request = (movement, float(duration_s), dict(kwargs))

    def drop(self, sensor_id: str, duration_s: float) -> None:
        """Lose the link of one sensor for ``duration_s`` (data time), then reconnect."""
        with self._lock:
            self._drops[sensor_id] = float(duration_s)

    def set_enabled(self, sensor_id: str, enabled: bool) -> None:
        """Connect or disconnect one sensor (its ring stays; it simply stops receiving)."""
        with self._lock:
            (self._disabled.discard if enabled else self._disabled.add)(sensor_id)

    def sensor_infos(self) -> list[SensorInfo]:
        return [SensorInfo(sensor_id=sid, placement=sid, family="emulated", model="emulated IMU", address=addr,
                           nominal_rate_hz=self.rate_hz, acc_range_mps2=16 * 9.80665, gyro_range_rads=math.radians(2000))
                for sid, addr in self.sensors.items()]

    # -- the source interface ---------------------------------------------------------------------
    def attach(self, bus: LiveBus) -> None:
        for i, (sid, addr) in enumerate(self.sensors.items()):
            bus.add_sensor(sid, self.rate_hz)
            bus.update_status(sid, connected=False, family="emulated", name=f"Demo IMU {i + 1}", address=addr,
                              battery_pct=96.0 - 7 * i, rssi_dbm=-50.0 - 3 * i, message="connecting")

    def _simulate(self, movement: str, duration_s: float, **kwargs: Any) -> dict[str, ImuBatch]:
        from lumbar.simulate import simulate

        sim = simulate(movement, duration_s=duration_s, seed=self.seed, sensors=tuple(self.sensors),
                       rate_hz=self.rate_hz, misalignment_deg={s: self._misalignment[s] for s in self.sensors},
                       **kwargs)
        return sim.batches

    async def run(self, bus: LiveBus) -> None:
        loop = asyncio.get_running_loop()
        idle = await loop.run_in_executor(None, lambda: self._simulate("quiet-standing", self.IDLE_S))
        seg = _Segment(0.0, idle, {sid: 0 for sid in idle}, "quiet-standing")
        dropped_until: dict[str, float] = {}
        lost: dict[str, int] = {sid: 0 for sid in self.sensors}
        samples: dict[str, int] = {sid: 0 for sid in self.sensors}
        gap_next: set[str] = set()
        reconnects: dict[str, int] = {sid: 0 for sid in self.sensors}
        for sid in self.sensors:
            bus.update_status(sid, connected=True, message="")
        t0_wall = time.monotonic()
        last_status = -1.0
        try:
            while True:
                now = (time.monotonic() - t0_wall) * self.speed
                with self._lock:
                    req, self._request = self._request, None
                    drops, self._drops = self._drops, {}
                    disabled = set(self._disabled)
                for sid, d in drops.items():
                    dropped_until[sid] = now + d
                if req is not None:
                    movement, dur, kw = req
                    try:
                        batches = await loop.run_in_executor(None, lambda: self._simulate(movement, dur, **kw))
                    except Exception as e:  # a request the patient model cannot do: say so, keep idling
                        self.last_error = f"{type(e).__name__}: {e}"
                        batches = None
                if req is not None and batches is not None:
                    t_start = self.data_time_s + 1.0 / self.rate_hz
                    seg = _Segment(t_start, batches, {sid: 0 for sid in batches}, movement)
                    self.current_movement = movement
                    self.last_error = None
                    now = (time.monotonic() - t0_wall) * self.speed
                done = True
                for sid, b in seg.batches.items():
                    i0 = seg.pos[sid]
                    t = b.time_s
                    i1 = int(np.searchsorted(t, now - seg.t0, side="right"))
                    if i1 > i0:
                        seg.pos[sid] = i1
                        part = b[i0:i1]
                        t_new = part.time_s + seg.t0
                        self.data_time_s = max(self.data_time_s, float(t_new[-1]))
                        if sid in disabled or now < dropped_until.get(sid, -1.0):
                            lost[sid] += i1 - i0
                            gap_next.add(sid)
                            if bus.status[sid].connected:
                                bus.update_status(sid, connected=False, lost_samples=lost[sid],
                                                  message="disconnected" if sid in disabled else "link lost")
                        else:
                            flags = part.flags.copy()
                            if sid in gap_next:
                                flags[0] |= np.uint8(SampleFlag.GAP_BEFORE)
                                gap_next.discard(sid)
                                if sid not in disabled:
                                    reconnects[sid] += 1
                                bus.update_status(sid, connected=True, message="", reconnects=reconnects[sid])
                            bus.push(ImuBatch(sid, t_new, part.device_time_s + seg.t0, part.acc, part.gyro,
                                              part.seq, flags))
                            samples[sid] += i1 - i0
                    if seg.pos[sid] < len(b):
                        done = False
                if done:  # segment exhausted: idle again (quiet standing, looped)
                    seg = _Segment(self.data_time_s + 1.0 / self.rate_hz, idle, {sid: 0 for sid in idle},
                                   "quiet-standing")
                    self.current_movement = "quiet-standing"
                if now - last_status >= 1.0:
                    last_status = now
                    for i, sid in enumerate(self.sensors):
                        st = bus.status[sid]
                        bus.update_status(
                            sid, samples=samples[sid], lost_samples=lost[sid],
                            battery_pct=max(5.0, (st.battery_pct or 90.0) - 0.002 * self.speed),
                            rssi_dbm=round(-50.0 - 3 * i + 2.0 * math.sin(now / 7.0 + i), 1))
                await asyncio.sleep(self.tick_s)
        finally:
            for sid in self.sensors:
                bus.update_status(sid, connected=False, message="disconnected")
