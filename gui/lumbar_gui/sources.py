"""Where the GUI's sensor data come from: the BLE reader, on real or emulated sensors.

The GUI acquires exactly as ``lumbar record`` does: :mod:`lumbar.acquisition.reader` (bleak's public
API) finds, connects, configures and decodes each sensor — in a process of its own
(:mod:`lumbar_gui.reader_process`), so that its work never holds the GUI thread's interpreter lock; the
samples come back onto this process's bus. Only the bleak *backend* differs:

* **hardware** -- bleak's default backend (BlueZ, CoreBluetooth, WinRT);
* **emulated sensors** -- ``lumbar gui --emulated``, or when the host has no usable Bluetooth adapter:
  an :class:`~lumbar.acquisition.emulated.Emulator` with four emulated sensors (two ``lumbar_ref``, a
  ``polar_pmd`` and a ``thingy52``) on a virtual radio running Bumble's real BLE host stack, in a
  process of their own (:mod:`lumbar_gui.demo_process`), and the Bumble backends for bleak on a
  central connected to that radio over HCI. The sensors are worn by :class:`DemoPatient`, a live emulated patient
  who performs whatever movement the assessment asks for (:meth:`DemoPatient.perform`), can tap one
  sensor (:meth:`DemoPatient.tap`), and stands quietly otherwise.

Pieces:

* :class:`BleLink` -- the Bluetooth side (the reader's process, the emulated sensors' process, scan with
  battery levels, link loss on demand); its coroutines run on the acquisition worker's asyncio loop.
* :class:`BleSource` -- a *source* as the acquisition worker runs it (``attach(bus)``, ``async run(bus)``):
  one :class:`~lumbar.acquisition.reader.SensorReader` per connected sensor in the reader's process, its
  samples pushed onto the :class:`~lumbar.acquisition.bus.LiveBus` here; sensors can be connected and
  disconnected one by one; its live processing and its recordings run in the reader's process too, seen
  here through a :class:`RemoteProcessor` and :class:`RemoteRecorder`. :class:`EmulatedSource` adds the demo patient's controls (``perform``, ``drop``, ``tap``).
* :class:`DemoPatient` -- the live patient (:class:`~lumbar.acquisition.emulated.LivePatient`).
"""
from __future__ import annotations

import asyncio
import itertools
import math
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from lumbar.acquisition.bus import LiveBus, SensorStatus
from lumbar.types import STANDARD_G, Event, ImuBatch, SensorInfo, SessionInfo
from lumbar_gui.recording import Recording

__all__ = ["Source", "DeviceEntry", "DemoPatient", "BleLink", "BleSource", "EmulatedSource", "RemoteProcessor", "NoAdapterError",
           "PLACEMENTS", "DEMO_SENSORS", "sensor_info", "placement_name"]

#: Placements offered in the Devices view, with the label the operator sees.
PLACEMENTS: dict[str, str] = {
    "lumbar": "L1 (thoraco-lumbar)",
    "sacrum": "S1 (sacrum)",
    "thigh_left": "Left thigh",
    "thigh_right": "Right thigh",
    "shank_left": "Left shank",
    "shank_right": "Right shank",
}


def placement_name(sensor_id: str) -> str:
    """The short name a person reads for a placement: "L1", "S1", "Left thigh" (any other: as it is)."""
    return PLACEMENTS.get(sensor_id, sensor_id).split(" (")[0]

#: The emulated sensors: (family, where the demo patient wears it, advertised name, battery %).
#: Names follow each family's naming, so the reader recognises the family as it would on hardware;
#: sorted by name they list in this order.
DEMO_SENSORS: tuple[tuple[str, str, str, int], ...] = (
    ("lumbar_ref", "lumbar", "LumbarRef Demo 1", 96),
    ("lumbar_ref", "sacrum", "LumbarRef Demo 2", 88),
    ("polar_pmd", "thigh_left", "Polar Sense Demo 3", 74),
    ("thingy52", "thigh_right", "Thingy Demo 4", 91),
    ("thingy52", "shank_left", "Thingy Demo 5", 83),
    ("thingy52", "shank_right", "Thingy Demo 6", 79),
)


class Source(Protocol):
    """What the acquisition worker runs."""

    def attach(self, bus: LiveBus) -> None: ...

    async def run(self, bus: LiveBus) -> None: ...


class NoAdapterError(RuntimeError):
    """The host has no usable Bluetooth adapter (no BlueZ / D-Bus, adapter absent or off)."""


@dataclass
class DeviceEntry:
    """One row of the Devices view's scan list.

    Attributes
    ----------
    address, name, family : str
        As the scan found it (family from ``lumbar_sensors.registry``).
    rssi_dbm : float or None
        Signal strength of the last advertisement, dBm.
    battery_pct : float or None
        Battery level read from the sensor's Battery service, %.
    emulated : bool
        An emulated sensor (worn by the demo patient).
    """

    address: str
    name: str
    family: str
    rssi_dbm: float | None
    battery_pct: float | None
    emulated: bool = False


def demo_cache_dir() -> Path | None:
    """Where the demo patient keeps what it has simulated once (``LUMBAR_CACHE_DIR``, else the user's cache
    directory); None when ``LUMBAR_CACHE_DIR`` is empty (no cache)."""
    env = os.environ.get("LUMBAR_CACHE_DIR")
    if env is not None:
        return Path(env) if env else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lumbar"


def sensor_info(target: Any) -> SensorInfo:
    """Session metadata of a reader target: the rate and ranges its family will be configured with."""
    from lumbar_sensors import registry

    rate, acc_g, gyro_dps = target.rate_hz, target.acc_range_g, target.gyro_range_dps
    if target.family:
        f = registry.module(target.family).FAMILY
        rate = float(min(f.rates_hz, key=lambda r: abs(r - target.rate_hz)))
        acc_g = float(min([a for a in f.acc_ranges_g if a >= acc_g] or list(f.acc_ranges_g), key=lambda a: abs(a - acc_g)))
        gyro_dps = float(min([g for g in f.gyro_ranges_dps if g >= gyro_dps] or list(f.gyro_ranges_dps),
                             key=lambda g: abs(g - gyro_dps)))
    return SensorInfo(target.sensor_id, target.sensor_id, family=target.family or "", model=target.name or "",
                      address=target.address or "", nominal_rate_hz=rate, acc_range_mps2=acc_g * STANDARD_G,
                      gyro_range_rads=math.radians(gyro_dps))


# ----------------------------------------------------------------------------------------------------
# the live emulated patient

#: Posture changes of the demo patient (standing → on all fours, → sitting, and back): shortest and longest
#: duration, s, and the speed they aim at, rad/s (≈ 45°/s: getting down on all fours takes about 2–3 s).
TRANSITION_S = (1.5, 3.0)
TRANSITION_SPEED = math.radians(45.0)
#: A posture change smaller than this (every sensor's tilt) needs no transition, rad.
TRANSITION_MIN = math.radians(10.0)


def posture_transition(acc0: np.ndarray, gyro0: np.ndarray, acc1: np.ndarray, gyro1: np.ndarray, n: int,
                       rate_hz: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A sensor's accelerometer (m/s², (n, 3)) and gyroscope (rad/s, (n, 3)) while it turns, at rest
    otherwise, from the tilt it has at rest in ``acc0``/``gyro0`` (samples (M, 3) before) to that of
    ``acc1``/``gyro1`` (samples after), over ``n`` samples.

    The gravity vector, seen from the sensor, turns about the axis normal to both ends (the smallest
    rotation: a pure forward pitch, for the trunk getting onto all fours) on a smooth (raised-cosine)
    profile; a world vector seen from a sensor turning at ω changes as −ω × v, so the gyroscope reads
    ω = −θ̇·axis. Bias and noise: those of the samples at both ends (mean and standard deviation),
    blended along the way. The body's own acceleration during the change is left out."""
    a0, a1 = acc0.mean(axis=0), acc1.mean(axis=0)
    u0, u1 = a0 / np.linalg.norm(a0), a1 / np.linalg.norm(a1)
    axis = np.cross(u0, u1)
    sin_t, cos_t = float(np.linalg.norm(axis)), float(np.dot(u0, u1))
    theta = math.atan2(sin_t, cos_t)
    if sin_t < 1e-9:  # no turn (or exactly upside down: any axis normal to the vector)
        axis = np.cross(u0, [1.0, 0.0, 0.0] if abs(u0[0]) < 0.9 else [0.0, 1.0, 0.0])
    axis = axis / np.linalg.norm(axis)
    tau = (np.arange(n) + 0.5) / n
    frac = 0.5 * (1.0 - np.cos(np.pi * tau))  # 0 → 1, at rest at both ends
    rate = theta * 0.5 * np.pi * np.sin(np.pi * tau) * rate_hz / n  # dθ/dt, rad/s
    ang = (theta * frac)[:, None]
    # Rodrigues: u0 turned by ang about axis
    u = (u0 * np.cos(ang) + np.cross(axis, u0) * np.sin(ang) + axis * np.dot(axis, u0) * (1.0 - np.cos(ang)))
    g = (1.0 - frac) * np.linalg.norm(a0) + frac * np.linalg.norm(a1)
    w = frac[:, None]
    acc = u * g[:, None] + rng.normal(0.0, 1.0, (n, 3)) * ((1 - w) * acc0.std(axis=0) + w * acc1.std(axis=0))
    gyro = (-rate[:, None] * axis + (1 - w) * gyro0.mean(axis=0) + w * gyro1.mean(axis=0)
            + rng.normal(0.0, 1.0, (n, 3)) * ((1 - w) * gyro0.std(axis=0) + w * gyro1.std(axis=0)))
    return acc, gyro


@dataclass
class _Segment:
    t0: float  # patient time of the segment's first sample, s
    acc: dict[str, np.ndarray]  # placement -> (N, 3) m/s²
    gyro: dict[str, np.ndarray]  # placement -> (N, 3) rad/s
    movement: str
    loop: bool  # idle: repeats until the next segment
    job: int = 0  # the perform request it answers (0: idle)


class DemoPatient:
    """The emulated patient wearing the emulated sensors, performing on demand.

    Implements :class:`lumbar.acquisition.emulated.LivePatient`: the emulator asks for each sample
    as its sensor measures it. The patient stands quietly (a looped quiet-standing trial) until
    :meth:`perform` asks for a movement, which starts at the next sample of every sensor.

    Parameters
    ----------
    placements : sequence of str
        Where the patient wears sensors.
    rate_hz : float
        Sample rate of the patient, Hz (sensors stream it or an integer fraction of it).
    seed : int
        Seed of the patient and the sensor errors.
    """

    IDLE_S = 20.0
    TAP_S = 0.3  # length of a tap impulse, s
    #: A held movement repeats its first HOLD_S s (still in the start posture; the simulator's still period is
    #: 5 s) until :meth:`go`; the rest follows, so the patient starts moving 1 s after it (a reaction time).
    HOLD_S = 4.0

    def __init__(self, placements: Sequence[str] = ("lumbar", "sacrum", "thigh_left", "thigh_right"),
                 rate_hz: float = 200.0, *, seed: int = 7) -> None:
        self.placements = tuple(placements)
        self.rate_hz = float(rate_hz)
        self.seed = int(seed)
        self._lock = threading.Lock()
        rng = np.random.default_rng(self.seed)
        # fixed mounting, so every segment has the same sensor-to-segment rotation
        self._misalignment = {p: tuple(float(v) for v in rng.normal(0.0, 3.0, 3)) for p in self.placements}
        self._timeline: list[_Segment] = []
        self._idle: _Segment | None = None
        self._ready: _Segment | None = None  # simulated, waiting to start at the next sample
        self._held: _Segment | None = None  # the rest of a held movement, waiting for go()
        self._taps: list[tuple[str, float]] = []  # (placement, patient time of the tap)
        self._tap_request: list[str] = []
        self._turned: set[str] = set()  # placements whose sensor is worn back to front (turn())
        self._served_t = 0.0  # latest patient time handed to any sensor, s
        self._job = 0
        #: Number of the latest :meth:`perform` request whose movement has begun (0: none yet).
        self.started = 0
        self._prepared = threading.Event()
        #: Why the last :meth:`perform` request could not be simulated (None if it could).
        self.last_error: str | None = None

    # -- set-up and requests (any thread) -----------------------------------------------------------
    def prepare(self, cache_dir: Path | None = None) -> None:
        """Simulate the idle (quiet standing) segment; call once, off the GUI thread.

        ≈ 1 s the first time (mostly scipy's imports); then read from ``cache_dir`` (default
        :func:`demo_cache_dir`), where it is kept under a key of everything it depends on (the patient's
        parameters and the simulator's source), so a changed simulator never serves stale data. The
        sensors may start before it has finished: :meth:`samples` waits for it.
        """
        cached = self._idle_cache_file(cache_dir if cache_dir is not None else demo_cache_dir())
        acc = gyro = None
        if cached is not None and cached.exists():
            try:
                with np.load(cached) as z:
                    acc = {p: z[f"acc/{p}"] for p in self.placements}
                    gyro = {p: z[f"gyro/{p}"] for p in self.placements}
            except (OSError, KeyError, ValueError):  # unreadable: simulate again, rewrite it
                acc = gyro = None
        if acc is None or gyro is None:
            acc, gyro = self._simulate("quiet-standing", self.IDLE_S)
            if cached is not None:
                try:
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    tmp = cached.with_name(cached.name + ".tmp.npz")
                    np.savez(tmp, **{f"acc/{p}": a for p, a in acc.items()}, **{f"gyro/{p}": g for p, g in gyro.items()})
                    tmp.replace(cached)
                except OSError:
                    pass  # a read-only home: simulated each time
        with self._lock:
            self._idle = _Segment(0.0, acc, gyro, "quiet-standing", True)
            self._timeline = [self._idle]
        self._prepared.set()

    def perform(self, movement: str, duration_s: float, *, hold: bool = False, **kwargs: Any) -> int:
        """From now on the patient performs ``movement`` for ``duration_s`` s (5 s still first), then idles;
        with ``hold``, the patient takes the start position and holds it until :meth:`go`.

        Simulated in a background thread; it starts at the next sample after it is ready (a fraction
        of a second; a few seconds for a long trial on four sensors), when :attr:`started` becomes the
        number returned (requests are numbered 1, 2, … in order). A request the patient model cannot do
        leaves the patient idle and sets :attr:`last_error`.
        """
        with self._lock:
            self._job += 1
            job = self._job
            self.last_error = None  # a new request: no error yet

        def work() -> None:
            try:
                acc, gyro = self._simulate(movement, float(duration_s), **kwargs)
            except Exception as e:  # a request the patient model cannot do: say so, keep idling
                self.last_error = f"{type(e).__name__}: {e}"
                return
            with self._lock:
                if job == self._job:  # a later request wins
                    k = int(round(self.HOLD_S * self.rate_hz)) if hold else 0  # the held head, looped
                    head = {p: a[:k] for p, a in acc.items()}, {p: g[:k] for p, g in gyro.items()}
                    rest = _Segment(0.0, {p: a[k:] for p, a in acc.items()}, {p: g[k:] for p, g in gyro.items()},
                                    movement, False, job)
                    self._ready, self._held = (_Segment(0.0, *head, movement, True, job), rest) if hold else (rest, None)
                    self.last_error = None

        threading.Thread(target=work, name="demo-patient", daemon=True).start()
        return job

    def go(self) -> None:
        """A held movement (``perform(..., hold=True)``) goes on from the next sample; nothing else to do."""
        with self._lock:
            if self._held is not None:
                self._ready, self._held = self._held, None

    def tap(self, placement: str) -> None:
        """Tap the sensor at ``placement`` (a short impulse on that sensor only, from the next sample)."""
        if placement not in self.placements:
            raise ValueError(f"the demo patient wears no sensor at {placement!r}")
        with self._lock:
            self._tap_request.append(placement)

    def turn(self, placement: str, turned: bool = True) -> None:
        """Wear the sensor at ``placement`` back to front (``turned``) or facing forward again, from the next
        sample: turned 180° about its long axis, which a static calibration cannot tell (its x and z axes
        point the other way). What a sensor fitted that way does to the measures can be shown and tested."""
        if placement not in self.placements:
            raise ValueError(f"the demo patient wears no sensor at {placement!r}")
        with self._lock:
            (self._turned.add if turned else self._turned.discard)(placement)

    @property
    def current_movement(self) -> str:
        """What the patient is doing at the latest sample handed out."""
        with self._lock:
            seg = self._segment_at(self._served_t)
            return seg.movement if seg is not None else "quiet-standing"

    # -- the LivePatient interface (emulator loop) ------------------------------------------------------
    def samples(self, placement: str, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Accelerometer (m/s², (N, 3)) and gyroscope (rad/s, (N, 3)) of samples ``index`` at ``k / rate_hz``."""
        idx = np.asarray(index, np.int64)
        t = idx / self.rate_hz
        if not self._prepared.wait(60.0):  # being prepared in another thread (start-up)
            raise RuntimeError("DemoPatient.prepare() was not called (or did not finish within 60 s)")
        with self._lock:
            start = self._served_t + 1.0 / self.rate_hz
            if self._ready is not None:  # a requested movement starts at the next sample of any sensor
                seg, self._ready = self._ready, None
                self._install(seg, start)
                self.started = seg.job
            for pl in self._tap_request:
                self._taps.append((pl, start))
            self._tap_request = []
            if len(t):
                self._served_t = max(self._served_t, float(t[-1]))
            acc = np.empty((len(t), 3))
            gyro = np.empty((len(t), 3))
            for j, tj in enumerate(t):
                acc[j], gyro[j] = self._sample_at(placement, float(tj))
            self._add_taps(placement, t, acc, gyro)
            if placement in self._turned:
                acc[:, [0, 2]] *= -1.0
                gyro[:, [0, 2]] *= -1.0
            self._prune()
        return acc, gyro

    # -- internals ----------------------------------------------------------------------------------
    def _idle_cache_file(self, cache_dir: Path | None) -> Path | None:
        """Where the idle segment is cached: named by a hash of its parameters, of the code that makes it
        (the simulator package, the types it takes its constants from, this module) and of the numerical
        libraries' versions."""
        if cache_dir is None:
            return None
        import hashlib
        import importlib.metadata
        import importlib.util

        sim = importlib.util.find_spec("lumbar.simulate")  # found, not imported (that takes 0.2 s)
        types = importlib.util.find_spec("lumbar.types")
        if sim is None or not sim.submodule_search_locations or types is None or not types.origin:
            return None
        h = hashlib.sha256(repr((self.placements, self.rate_hz, self.seed, self.IDLE_S, self._misalignment,
                                 np.__version__, importlib.metadata.version("scipy"))).encode())
        sources = sorted(Path(next(iter(sim.submodule_search_locations))).glob("*.py"))
        for f in [*sources, Path(types.origin), Path(__file__)]:
            h.update(f.read_bytes())
        return cache_dir / f"demo-idle-{h.hexdigest()[:20]}.npz"

    def _simulate(self, movement: str, duration_s: float, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        from lumbar.simulate import simulate

        sim = simulate(movement, duration_s=duration_s, seed=self.seed, sensors=self.placements, rate_hz=self.rate_hz,
                       misalignment_deg={p: self._misalignment[p] for p in self.placements}, **kwargs)
        return ({p: b.acc for p, b in sim.batches.items()}, {p: b.gyro for p, b in sim.batches.items()})

    def _sample_at(self, placement: str, t: float) -> tuple[np.ndarray, np.ndarray]:
        """The accelerometer and gyroscope sample of ``placement`` at patient time ``t`` on the timeline."""
        seg = self._segment_at(t) or self._timeline[0]
        n = len(seg.acc[placement])
        i = int(round((t - seg.t0) * self.rate_hz))
        i = i % n if seg.loop else min(max(i, 0), n - 1)
        return seg.acc[placement][i], seg.gyro[placement][i]

    def _install(self, seg: _Segment, t0: float) -> None:
        """Start ``seg`` at ``t0`` (cutting whatever was planned after), then idle again (a looping
        segment, a held start position, repeats until the next). A change of posture on the way (standing
        → on all fours, the end of a kneeling trial → standing) is a movement of a few seconds, not a jump,
        so the live orientation follows it as it would follow a patient."""
        w = max(2, int(round(0.25 * self.rate_hz)))  # the ends' rest samples: 0.25 s
        before = {p: np.array([self._sample_at(p, t0 - (w - k) / self.rate_hz) for k in range(w)])
                  for p in self.placements}  # (w, 2, 3): acc and gyro before t0, on the old timeline
        self._timeline = [s for s in self._timeline if s.t0 < t0]
        idle = self._idle
        assert idle is not None
        lead = self._transition({p: (b[:, 0], b[:, 1]) for p, b in before.items()}, seg, 0, w, seg.movement)
        t = t0
        for s in ([lead] if lead is not None else []) + [seg]:
            s.t0 = t
            self._timeline.append(s)
            t += len(next(iter(s.acc.values()))) / self.rate_hz
        if not seg.loop:
            end = {p: (seg.acc[p][-w:], seg.gyro[p][-w:]) for p in self.placements}
            back = self._transition(end, idle, seg.job, w, "quiet-standing")
            if back is not None:
                back.t0 = t
                self._timeline.append(back)
                t += len(next(iter(back.acc.values()))) / self.rate_hz
            self._timeline.append(_Segment(t, idle.acc, idle.gyro, "quiet-standing", True))

    def _transition(self, ends: dict[str, tuple[np.ndarray, np.ndarray]], to: _Segment, salt: int, w: int,
                    movement: str) -> _Segment | None:
        """The posture change from the samples ``ends`` (placement → acc, gyro at rest) to the start of
        ``to``, as a segment of its own (None when no sensor tilts by :data:`TRANSITION_MIN` or more)."""
        heads = {p: (to.acc[p][:w], to.gyro[p][:w]) for p in self.placements}

        def tilt(a: np.ndarray, b: np.ndarray) -> float:
            a, b = a.mean(axis=0), b.mean(axis=0)
            return math.atan2(float(np.linalg.norm(np.cross(a, b))), float(np.dot(a, b)))

        turn = max(tilt(ends[p][0], heads[p][0]) for p in self.placements)
        if turn < TRANSITION_MIN:
            return None
        lo, hi = TRANSITION_S
        n = int(round(min(max(turn / TRANSITION_SPEED, lo), hi) * self.rate_hz))
        rng = np.random.default_rng([self.seed, to.job, salt, len(self._timeline)])
        parts = {p: posture_transition(*ends[p], *heads[p], n, self.rate_hz, rng) for p in self.placements}
        return _Segment(0.0, {p: a for p, (a, _) in parts.items()}, {p: g for p, (_, g) in parts.items()},
                        movement, False, to.job)

    def _segment_at(self, t: float) -> _Segment | None:
        found = None
        for s in self._timeline:
            if s.t0 <= t + 1e-9:
                found = s
        return found

    def _prune(self) -> None:
        # keep what a sensor lagging up to 30 s behind could still ask for
        keep_from = self._served_t - 30.0
        while len(self._timeline) > 1 and self._timeline[1].t0 < keep_from:
            self._timeline.pop(0)
        self._taps = [(p, t) for p, t in self._taps if t > keep_from]

    def _add_taps(self, placement: str, t: np.ndarray, acc: np.ndarray, gyro: np.ndarray) -> None:
        """A tap: a decaying 15 Hz jolt, ≈ 3 g and 3 rad/s at its start, on one sensor."""
        for pl, t_tap in self._taps:
            if pl != placement:
                continue
            dt = t - t_tap
            on = (dt >= 0) & (dt < self.TAP_S)
            if not on.any():
                continue
            env = np.exp(-dt[on] / 0.06)
            wave = np.cos(2 * np.pi * 15.0 * dt[on])
            acc[on] += np.outer(env * wave, [30.0, 0.0, 10.0])
            gyro[on] += np.outer(env * np.sin(2 * np.pi * 15.0 * dt[on] + 0.5), [0.5, 3.0, 0.5])


# ----------------------------------------------------------------------------------------------------
# the Bluetooth side

class BleLink:
    """The Bluetooth side: the reader's process (:class:`~lumbar_gui.reader_process.ReaderProcess`, which
    holds bleak's backends) and, for emulated sensors, the emulated sensors' process. Its coroutines run
    on the acquisition worker's loop.

    Parameters
    ----------
    emulated : bool
        Emulated sensors (Bumble) instead of the host's adapter. A hardware link switches to
        emulated sensors by itself when its first scan finds no usable adapter
        (:attr:`fallback_reason` says why).
    patient_rate_hz : float
        Sample rate of the demo patient, Hz (the sensors stream it or a fraction: 200 offers 100 and 200 Hz).
    """

    def __init__(self, emulated: bool, *, patient_rate_hz: float = 200.0) -> None:
        from lumbar_gui.reader_process import ReaderProcess

        self.emulated = bool(emulated)
        self.patient_rate_hz = float(patient_rate_hz)
        #: The emulated sensors' process (:class:`~lumbar_gui.demo_process.DemoSensors`), None for hardware.
        self.emulator: Any = None
        #: The reader's process.
        self.reader = ReaderProcess.take()
        self.fallback_reason: str | None = None
        self._central = False  # the reader's process has a central on the emulated sensors' radio
        if self.emulated:
            self._spawn()  # the sensors' process boots while the application builds its window

    def _spawn(self) -> None:
        from lumbar_gui.demo_process import DemoSensors

        if self.emulator is None:
            self.emulator = DemoSensors.prestarted(self.patient_rate_hz) or DemoSensors(self.patient_rate_hz)

    @property
    def patient(self) -> Any:
        """The demo patient's controls (``perform``, ``tap``, ``turn``, ``current_movement``): the emulated sensors'
        process."""
        return self.emulator

    async def start(self) -> None:
        """Connect the reader to the emulated sensors (emulated link); nothing to do for hardware."""
        if self.emulated and not self._central:
            await self._start_emulator()

    async def _start_emulator(self) -> None:
        self._spawn()
        spec = await self.emulator.hci_spec()
        await self.reader.acall("emulate", spec)
        self._central = self.emulated = True

    async def stop(self) -> None:
        """End the reader's process (its sensors disconnect), then the emulated sensors'."""
        await asyncio.get_running_loop().run_in_executor(None, self.reader.close)
        if self.emulator is not None:
            await self.emulator.stop()
            self.emulator = None

    async def scan(self, timeout_s: float | None = None) -> list[DeviceEntry]:
        """Advertising sensors of a known family, sorted by name (then address).

        Raises
        ------
        NoAdapterError
            First scan of a hardware link, and bleak's scanner cannot start (no BlueZ / D-Bus, no
            adapter); the link has then switched to emulated sensors and :attr:`fallback_reason`
            says why (scan again). Later scan failures are raised as they are.
        """
        from lumbar_gui.reader_process import AdapterError

        await self.start()
        timeout = timeout_s if timeout_s is not None else (1.0 if self.emulated else 4.0)
        # the emulated sensors are known: the scan ends once it has seen them all
        expect = [d.address for d in self.emulator.sensors] if self.emulated else []
        try:
            found = await self.reader.acall("scan", timeout, expect)
        except AdapterError as e:
            self.fallback_reason = str(e)
            await self._start_emulator()
            raise NoAdapterError(self.fallback_reason) from e
        out = [DeviceEntry(address, name, family, rssi, None, emulated=self.emulated)
               for address, name, family, rssi in found]
        return sorted(out, key=lambda e: (e.name, e.address))

    async def read_battery(self, address: str, timeout_s: float = 5.0) -> float | None:
        """Connect briefly to the sensor found by the last scan and read its Battery level (0x2A19), %."""
        return await self.reader.acall("battery", address, timeout_s)

    def placement_of(self, address: str) -> str:
        """Where the demo patient wears the emulated sensor with ``address``."""
        if self.emulator is None:
            raise ValueError("not an emulated link")
        return self.emulator.sensor(address).placement

    def drop_link(self, address: str, away_s: float) -> None:
        """Emulated sensors: the sensor's link drops on the virtual radio; it returns after ``away_s`` s."""
        if self.emulator is None:
            raise ValueError("link loss can only be simulated with emulated sensors")
        self.emulator.drop_link(address, away_s)


# ----------------------------------------------------------------------------------------------------
# the source the acquisition worker runs

_source_ids = itertools.count(1)
_recording_ids = itertools.count(1)


class BleSource:
    """Sensors read through :mod:`lumbar.acquisition.reader` in the reader's process (one
    :class:`~lumbar.acquisition.reader.SensorReader` per sensor there); their samples, statuses and events
    come back onto this process's :class:`~lumbar.acquisition.bus.LiveBus`.

    Parameters
    ----------
    link : BleLink
        The reader's process and backends (hardware or emulated).
    targets : sequence of SensorTarget
        Sensors to connect at start (sensor id = placement).
    options : ReaderOptions, optional
        Reader timeouts and backoff.

    Sensors can be added (:meth:`add`) and disconnected (:meth:`remove`) from the GUI thread
    while it runs; a sensor disconnected and connected again keeps its ring and continues its
    sequence numbers (the gap is flagged). Reader events (``connected``, ``disconnect``,
    ``reconnect``) are queued for the GUI (:meth:`take_events`).
    """

    def __init__(self, link: BleLink, targets: Sequence[Any], *, options: Any = None) -> None:
        self.link = link
        self.name = f"source-{next(_source_ids)}"
        #: Reader options; None: the reader's defaults, looking for a sensor 3 s (emulated) or 5 s at a time.
        self.options = options
        # bus time 0; the reader's process reads the same monotonic clock
        self.origin_s = time.monotonic()
        self.targets: dict[str, Any] = {t.sensor_id: t for t in targets}
        self.rates_hz: dict[str, float] = {sid: sensor_info(t).nominal_rate_hz for sid, t in self.targets.items()}
        self._removed: set[str] = set()  # disconnected by the operator
        self._lock = threading.Lock()
        self._started = False  # the reader's process has this source
        self._bus: LiveBus | None = None
        self._events: queue.Queue[Event] = queue.Queue()
        self._processor: RemoteProcessor | None = None
        self._queued: list[tuple[Any, ...]] = []  # for the reader's process, asked before the source started

    def sensor_infos(self) -> list[SensorInfo]:
        """Metadata of the sensors connected (not disconnected by the operator)."""
        return [sensor_info(t) for sid, t in self.targets.items() if sid not in self._removed]

    def take_events(self) -> list[Event]:
        """Reader events since the last call (bus times, s)."""
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def recorder(self, path: str | Path, info: SessionInfo, sensors: list[SensorInfo]) -> RemoteRecorder:
        """Record ``sensors`` to the session file ``path`` in the reader's process, from their next sample there;
        the returned :class:`RemoteRecorder` follows it (and stops it)."""
        return RemoteRecorder(self, Path(path), info, sensors)

    def live_processor(self, rates_hz: dict[str, float]) -> RemoteProcessor:
        """Process this source's samples in the reader's process (call before it runs); the results come
        back to the returned :class:`RemoteProcessor`."""
        self._processor = RemoteProcessor(self, rates_hz or self.rates_hz)
        return self._processor

    # -- the source interface -------------------------------------------------------------------
    def attach(self, bus: LiveBus) -> None:
        self._bus = bus
        for t in self.targets.values():
            self._ensure_ring(bus, t)
            bus.update_status(t.sensor_id, name=t.name or "", address=t.address or "", family=t.family or "",
                              connected=False, message="connecting", achieved_rate_hz=0.0)

    def _ensure_ring(self, bus: LiveBus, t: Any) -> None:
        # rings and status keys are only ever added on the GUI thread, which iterates them
        if t.sensor_id not in bus.rings:
            bus.add_sensor(t.sensor_id, self.rates_hz[t.sensor_id])

    async def run(self, bus: LiveBus) -> None:
        reader = self.link.reader
        with self._lock:
            self._bus = bus
            reader.register(self.name, self)
            try:
                reader.send("source", self.name, self.origin_s,
                            self.options or {"scan_timeout_s": 3.0 if self.link.emulated else 5.0},
                            list(self.targets.values()), None if self._processor is None else self._processor.rates_hz)
            except Exception:
                reader.unregister(self.name)  # the reader's process has gone: nothing will come
                raise
            self._started = True
            queued, self._queued = self._queued, []
            for msg in queued:
                reader.send(*msg)
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            with self._lock:
                self._started = False
            try:  # its readers stop and send their last samples
                await reader.acall("end", self.name, timeout_s=5.0)
            except Exception:  # noqa: BLE001 - the process has gone or is stuck: nothing more will come
                pass
            reader.unregister(self.name)

    # -- per sensor (GUI thread) ------------------------------------------------------------------
    def sensor_id_of(self, address: str) -> str | None:
        """The sensor id under which the sensor with ``address`` is connected (or connecting), if any."""
        removed = set(self._removed)
        for sid, t in list(self.targets.items()):  # a copy: the scan task asks from the loop thread
            if sid not in removed and (t.address or "").upper() == address.upper():
                return sid
        return None

    def add(self, target: Any) -> None:
        """Connect one more sensor, the same sensor again, or another sensor at a placement."""
        sid = target.sensor_id
        with self._lock:
            self.targets[sid] = target
            self._removed.discard(sid)
            self.rates_hz[sid] = sensor_info(target).nominal_rate_hz
            if self._bus is not None:
                self._ensure_ring(self._bus, target)
            if self._started:
                self.link.reader.send("add", self.name, target, self.rates_hz[sid])

    def remove(self, sensor_id: str) -> None:
        """Disconnect one sensor (its ring and the others stay)."""
        with self._lock:
            self._removed.add(sensor_id)
            if self._started:
                self.link.reader.send("remove", self.name, sensor_id)

    def _control(self, method: str, *args: Any) -> None:
        """Ask the processing in the reader's process to ``method(*args)``."""
        from lumbar_gui.reader_process import ReaderProcessError

        try:
            self._send("process", self.name, method, args)
        except ReaderProcessError as e:
            if self._processor is not None:
                self._processor.out.put(("error", str(e)))

    def _send(self, *msg: Any) -> None:
        """Send ``msg`` to the reader's process, or queue it until this source has started there."""
        with self._lock:
            if not self._started:
                self._queued.append(msg)
                return
            self.link.reader.send(*msg)

    # -- from the reader's process (its receiving thread) -------------------------------------------
    def _rows(self, sensor_id: str, cols: tuple[np.ndarray, ...]) -> None:
        bus = self._bus
        if bus is not None and sensor_id in bus.rings:
            bus.push(ImuBatch(sensor_id, *cols))

    def _status(self, sensor_id: str, fields: dict[str, Any]) -> None:
        bus = self._bus
        if bus is not None and sensor_id in bus.status:
            bus.update_status(sensor_id, **fields)

    def _event(self, event: Event) -> None:
        self._events.put(event)

    def _derived(self, t: np.ndarray, rows: np.ndarray, state: tuple[Any, ...]) -> None:
        if self._processor is not None:
            self._processor._rows(t, rows, state)

    def _processed(self, kind: str, value: Any) -> None:
        if self._processor is not None:
            self._processor._outcome(kind, value)

    def _lost(self, reason: str) -> None:
        """The reader's process has gone: every sensor shows it (the recording keeps what came)."""
        bus = self._bus
        if bus is not None:
            for sid in list(bus.status):
                bus.update_status(sid, connected=False, achieved_rate_hz=0.0, message=reason)


class RemoteProcessor:
    """The live processing of a :class:`BleSource`, done in the reader's process beside its readers.

    The interface of :class:`~lumbar_gui.processing.LiveProcessor` as the GUI uses it — :attr:`series`
    (derived rows), :attr:`out` (calibrations, repetitions, errors), :attr:`ready`, :attr:`calibrated`,
    :meth:`calibrate`, :meth:`set_repetitions` … — filled by what that process sends (on the receiving
    thread); the requests go there.
    """

    def __init__(self, source: BleSource, rates_hz: dict[str, float], *, capacity_s: float = 120.0) -> None:
        from lumbar_gui.processing import DERIVED_COLUMNS, SeriesRing

        self._source = source
        self.rates_hz = dict(rates_hz)
        self.rate_hz = max(self.rates_hz.values()) if self.rates_hz else 100.0
        self.series = SeriesRing(DERIVED_COLUMNS, int(capacity_s * self.rate_hz))
        self.out: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.ready = threading.Event()  # the filters are loaded there
        self.calibrated = False
        self.provisional = False
        #: Samples the processing could not take (its bus there overflowed).
        self.missed = 0

    def calibrate(self, duration_s: float = 5.0) -> None:
        """Use the next ``duration_s`` of data (standing upright, still) as the calibration posture."""
        self._source._control("calibrate", float(duration_s))

    def set_repetitions(self, signal: str, lo_rad: float, hi_rad: float) -> None:
        """Count repetitions of ``signal`` (a derived column) with hysteresis thresholds ``lo < hi``, rad."""
        self._source._control("set_repetitions", signal, float(lo_rad), float(hi_rad))

    def reset_repetitions(self) -> None:
        self._source._control("reset_repetitions")

    def exclude_thighs(self, thighs: Sequence[str]) -> None:
        """Leave these thighs out of the mean hip angle (:meth:`LiveProcessor.exclude_thighs`)."""
        self._source._control("exclude_thighs", tuple(thighs))

    def stop(self) -> None:
        """Nothing to do here: the processing ends with its source's readers (``end``)."""

    # -- from the reader's process ----------------------------------------------------------------------
    def _rows(self, t: np.ndarray, rows: np.ndarray, state: tuple[Any, ...]) -> None:
        self.series.push(t, rows)
        self.calibrated, self.provisional, self.missed = state

    def _outcome(self, kind: str, value: Any) -> None:
        if kind == "ready":
            self.ready.set()
            return
        if kind == "calibration" and value.ok:  # before the next rows say so
            self.calibrated, self.provisional = True, False
        self.out.put((kind, value))


class RemoteRecorder(Recording):
    """A recording made in the reader's process (:class:`~lumbar_gui.recording.Recorder` there, beside the
    readers that have every sample), seen from the application.

    The interface of :class:`~lumbar_gui.recording.Recorder` as the GUI uses it — a
    :class:`~lumbar_gui.recording.Recording` (:attr:`path`, :attr:`error`, :attr:`saved`, :attr:`duration_s`,
    :meth:`finish`, :meth:`wait`, :meth:`stop`) with :attr:`written`, :attr:`missed`, :meth:`mark` … — kept up
    to date by what that process sends after each write (on the receiving thread). If that process stops, the recording ends there: the file keeps what was written (flushed every 0.1 s)
    and :attr:`error` says so.
    """

    def __init__(self, source: BleSource, path: Path, info: SessionInfo, sensors: list[SensorInfo]) -> None:
        self.path = path
        self.info = info
        self.sensor_ids = [s.sensor_id for s in sensors]
        self.name = f"{source.name}-recording-{next(_recording_ids)}"
        self._source = source
        bus = source._bus  # the application's copy of the samples: for the duration shown
        self._rings = {sid: bus.rings[sid] for sid in self.sensor_ids if bus is not None and sid in bus.rings}
        self.t0: float | None = None
        self.written = {sid: 0 for sid in self.sensor_ids}
        self.missed = 0
        self.cursors: dict[str, int] = {}
        self.start_cursors: dict[str, int] = {}
        self.error: str | None = None
        self._last_error: str | None = None
        #: Set once the file is closed and complete (or could not be: see ``error``).
        self.saved = threading.Event()
        from lumbar_gui.reader_process import ReaderProcessError

        reader = source.link.reader
        reader.register(self.name, self)  # before it can answer
        try:
            source._send("record", source.name, self.name, str(path), info, list(sensors))
        except ReaderProcessError as e:  # the reader's process has gone: reported like the recorder's errors
            reader.unregister(self.name)
            self._lost(str(e))

    def mark(self, bus_time_s: float, label: str, note: str = "") -> None:
        """An event marker at ``bus_time_s`` (bus time, s)."""
        self._tell("mark", self.name, float(bus_time_s), label, note)

    def finish(self) -> None:
        """Stop recording without waiting: the reader's process writes what is left and closes the file, then
        :attr:`saved` is set."""
        self._tell("finish", self.name)

    def _tell(self, *msg: Any) -> None:
        from lumbar_gui.reader_process import ReaderProcessError

        if self.saved.is_set():
            return
        try:
            self._source._send(*msg)
        except ReaderProcessError as e:
            self._lost(str(e))

    # -- from the reader's process (its receiving thread) -------------------------------------------
    def _recorded(self, state: dict[str, Any]) -> None:
        self.t0 = state.get("t0", self.t0)
        self.written = state.get("written", self.written)
        self.missed = state.get("missed", self.missed)
        self.cursors = state.get("cursors", self.cursors)
        self.start_cursors = state.get("start_cursors", self.start_cursors)
        error = state.get("error")
        if error and error != self._last_error:  # reported once (the GUI clears what it has shown)
            self._last_error = self.error = error
        if state.get("saved"):
            self._source.link.reader.unregister(self.name)
            self.saved.set()

    def _lost(self, reason: str) -> None:
        """The reader's process has gone: so has the recording (the file keeps what was flushed)."""
        if not self.saved.is_set():
            self.error = f"{reason}; the file keeps what was written until then"
            self.saved.set()


class EmulatedSource(BleSource):
    """A :class:`BleSource` on the emulated sensors, with the demo patient's controls.

    The assessment and biofeedback views call :meth:`perform`, so the demo patient does what the
    protocol asks; :meth:`drop` is a real link loss on the virtual radio; :meth:`tap` taps one sensor.
    """

    def perform(self, movement: str, duration_s: float, **kwargs: Any) -> int:
        """The demo patient performs ``movement`` for ``duration_s`` s from now (see :meth:`DemoPatient.perform`;
        ``hold=True`` waits in the start position for :meth:`go`); returns the request's number (:attr:`started`
        reaches it when the movement begins)."""
        assert self.link.patient is not None
        return self.link.patient.perform(movement, duration_s, **kwargs)

    def go(self) -> None:
        """The demo patient's held movement goes on (see :meth:`DemoPatient.go`)."""
        assert self.link.patient is not None
        self.link.patient.go()

    @property
    def started(self) -> int:
        """Number of the latest :meth:`perform` request whose movement has begun."""
        assert self.link.patient is not None
        return self.link.patient.started

    @property
    def current_movement(self) -> str:
        assert self.link.patient is not None
        return self.link.patient.current_movement

    def drop(self, sensor_id: str, duration_s: float) -> None:
        """The link of the sensor at ``sensor_id`` drops on the virtual radio for ``duration_s`` s."""
        self.link.drop_link(self.targets[sensor_id].address, float(duration_s))

    def tap(self, address: str) -> None:
        """Tap the emulated sensor with ``address`` (it need not be connected here)."""
        assert self.link.patient is not None
        self.link.patient.tap(self.link.placement_of(address))

    def turn(self, placement: str, turned: bool = True) -> None:
        """The demo patient wears the sensor at ``placement`` back to front (see :meth:`DemoPatient.turn`)."""
        assert self.link.patient is not None
        self.link.patient.turn(placement, turned)


def loss_text(st: SensorStatus) -> str:
    """Loss for the table: % of samples lost (sequence jumps), plus corrupt packets if any."""
    text = f"{st.loss_pct:.1f} %"
    return text + (f" · {st.corrupt_packets} corrupt" if st.corrupt_packets else "")


def batch_motion(batch: ImuBatch) -> tuple[np.ndarray, np.ndarray]:
    """acc (m/s²) and gyro (rad/s) of a batch with NaN rows (a Polar half sample) removed."""
    ok = np.isfinite(batch.acc).all(axis=1) & np.isfinite(batch.gyro).all(axis=1)
    return batch.acc[ok], batch.gyro[ok]
