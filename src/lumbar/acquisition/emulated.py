"""Emulated IMU sensors: real GATT profiles on the virtual radio, streaming the emulated patient.

Each :class:`EmulatedSensor` becomes a peripheral on a :class:`~lumbar.acquisition.virtual_radio.VirtualRadio`
that exposes the GATT profile of its family as ``lumbar_sensors`` describes it (UUIDs, the commands
the family accepts, the packets its encoder writes) and streams the emulated patient's signals
(:func:`lumbar.simulate.simulate`), quantised to int16 with the family's scaling:

* ``lumbar_ref`` -- control point (SET_RATE, SET_RANGE, START, STOP, TIME_SYNC, GET_CONFIG with
  responses), data packets of up to N samples with sequence number and device µs;
* ``polar_pmd`` -- PMD control point (GET_SETTINGS, START with settings TLV answered with the
  conversion factor, STOP) by indication, delta-compressed ACC and GYRO frames with the device
  ns timestamp since 2000;
* ``thingy52`` -- Motion configuration (rate) and raw acc/gyro/compass notifications, one
  sample each, no device clock.

Timing, as on a BLE link: the sample ``k`` is measured at the patient's true instant
(``sim.time_s[k]``, which carries the sensor's clock drift) and read by the device clock at
``boot + k/rate``. Samples wait for the next connection event (interval 7.5–30 ms), leave in a
packet, and arrive with ±``jitter_ms`` jitter, never before the last sample was measured and in
order; now and then a connection event is missed and packets go out in a burst. Every sample
that is sent, dropped or corrupted is logged in :attr:`EmulatedSensor.log` (the truth tests
compare the file against).

Faults (:class:`Faults`): dropped notifications, corrupted payloads (always of a kind the decoder
must catch -- real links have a CRC, so corruption comes from firmware and shows in headers and
lengths), disconnect and return after N s, a sensor that never answers. A nonexistent address
needs no emulation: give the reader an address no peripheral has.

The patient is either a finished recording of the emulated patient (a
:class:`~lumbar.simulate.SimulatedSession`: streaming stops when its data run out) or a
:class:`LivePatient`, asked for each sample when the sensor measures it (the GUI's demo patient,
who performs whatever the operator asks while the sensors stream). :meth:`Emulator.drop_link`
drops a sensor's link on demand.
"""
from __future__ import annotations

import asyncio
import logging
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

from lumbar.acquisition.clock import Clock, RealClock, VirtualClock
from lumbar.acquisition.virtual_radio import (
    CharacteristicSpec,
    PeripheralSpec,
    ServiceSpec,
    VirtualPeripheral,
    VirtualRadio,
)
from lumbar.errors import ValidationError
from lumbar.types import STANDARD_G

__all__ = ["EMULATED_FAMILIES", "EmulatedSensor", "Emulator", "Faults", "LivePatient", "SampleLog"]

logger = logging.getLogger(__name__)

EMULATED_FAMILIES = ("lumbar_ref", "polar_pmd", "thingy52")
_DEG = math.pi / 180.0
BATTERY_SERVICE = "180f"
BATTERY_LEVEL = "2a19"
DEVICE_INFO = "180a"
MANUFACTURER_NAME = "2a29"
FIRMWARE_REVISION = "2a26"
POLAR_EPOCH_NS = 790_000_000_000_000_000  # device clock of an emulated Polar at boot (≈ 2025)


@dataclass(frozen=True)
class Faults:
    """Faults one emulated sensor injects.

    Parameters
    ----------
    drop_prob : float
        Probability that a data notification is lost on air (never reaches the central).
    corrupt_prob : float
        Probability that a data notification arrives with a damaged header or length (the
        decoder must refuse it; its samples are lost).
    disconnects : sequence of (float, float)
        ``(at_s, away_s)``: at ``at_s`` seconds after the emulator started, drop the link and
        stop advertising for ``away_s`` seconds, then advertise again (the sensor "returns").
    silent : bool
        The sensor advertises and accepts the link but never answers an ATT request.
    """

    drop_prob: float = 0.0
    corrupt_prob: float = 0.0
    disconnects: tuple[tuple[float, float], ...] = ()
    silent: bool = False

    def __post_init__(self) -> None:
        for name in ("drop_prob", "corrupt_prob"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ValidationError(f"Faults.{name} must be in [0, 1), got {v}")
        object.__setattr__(self, "disconnects", tuple((float(a), float(b)) for a, b in self.disconnects))


@dataclass
class SampleLog:
    """What one emulated sensor did with each sample (the truth a recording is checked against).

    Attributes
    ----------
    device_time_s : list of float
        Device time of each sample as the family's decoder reports it, s.
    true_time_s : list of float
        Instant the sample was measured, on the emulator's clock, s.
    index : list of int
        Index into the emulated patient's arrays.
    fate : list of str
        ``"sent"``, ``"dropped"`` or ``"corrupted"``; ``"partial"`` for a Polar sample sent while
        only one of its ACC and GYRO streams ran (before the second started, after one stopped).
    returns_s : list of float
        Emulator times at which the sensor came back after a disconnect fault, s.
    packets : dict of str to int
        Data notifications per fate (``"sent"``, ``"dropped"``, ``"corrupted"``).
    """

    device_time_s: list[float] = field(default_factory=list)
    true_time_s: list[float] = field(default_factory=list)
    index: list[int] = field(default_factory=list)
    fate: list[str] = field(default_factory=list)
    returns_s: list[float] = field(default_factory=list)
    packets: dict[str, int] = field(default_factory=lambda: {"sent": 0, "dropped": 0, "corrupted": 0})

    def arrays(self) -> dict[str, np.ndarray]:
        """The log as arrays (same names; ``fate`` as a str array)."""
        return {
            "device_time_s": np.asarray(self.device_time_s, np.float64),
            "true_time_s": np.asarray(self.true_time_s, np.float64),
            "index": np.asarray(self.index, np.int64),
            "fate": np.asarray(self.fate),
        }


@dataclass
class EmulatedSensor:
    """One emulated sensor: its family, where it sits on the patient, its link and faults.

    Parameters
    ----------
    family : {"lumbar_ref", "polar_pmd", "thingy52"}
        GATT profile and packet format.
    placement : str
        Which of the emulated patient's sensors it streams (``"lumbar"``, ``"sacrum"``, …).
    name : str, optional
        Advertised name; default a family-style name (``LumbarRef-L1``, ``Polar Sense …``, ``Thingy``).
    address : str, optional
        Static random address; assigned by the radio when omitted.
    conn_interval_ms : float
        BLE connection interval, ms (7.5–30 typical; 7.5–4000 accepted).
    jitter_ms : float
        Arrival jitter around the connection event, ± ms.
    burst_prob : float
        Probability that a connection event is missed, so its packets go out with the next.
    battery_pct : int
        Battery level served by the Battery service, %.
    faults : Faults
        Faults to inject.
    seed : int
        Seed of this sensor's random link behaviour.
    log_samples : bool
        Log every sample's fate in :attr:`log` (the truth a recording is checked against). Off for an
        open-ended stream nobody checks (the application's demo sensors), whose log would grow by
        ≈ 0.1 MB a minute per sensor for as long as it runs; the packet counts are kept either way.
    """

    family: str
    placement: str
    name: str | None = None
    address: str | None = None
    conn_interval_ms: float = 15.0
    jitter_ms: float = 15.0
    burst_prob: float = 0.02
    battery_pct: int = 87
    faults: Faults = field(default_factory=Faults)
    seed: int = 0
    log_samples: bool = True
    log: SampleLog = field(default_factory=SampleLog, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.family not in EMULATED_FAMILIES:
            raise ValidationError(f"emulated family must be one of {EMULATED_FAMILIES}, got {self.family!r}")
        if not 7.5 <= self.conn_interval_ms <= 4000.0:
            raise ValidationError(f"conn_interval_ms must be within 7.5..4000 ms, got {self.conn_interval_ms}")
        if not 0.0 <= self.jitter_ms <= 1000.0 or not 0.0 <= self.burst_prob < 1.0:
            raise ValidationError("jitter_ms must be within 0..1000 ms and burst_prob within [0, 1)")
        if self.name is None:
            self.name = {
                "lumbar_ref": f"LumbarRef-{self.placement}",
                "polar_pmd": f"Polar Sense {zlib.crc32(f'{self.placement}/{self.seed}'.encode()):08X}",
                "thingy52": f"Thingy {self.placement}",
            }[self.family]


@runtime_checkable
class LivePatient(Protocol):
    """A patient whose signals are made while the sensors stream.

    The emulator asks for each sample when the sensor measures it; sample ``k`` of every
    placement is the patient's state at patient time ``k / rate_hz`` (the emulator adds each
    sensor's clock drift to the instant it is measured). Called on the emulator's loop: must
    return quickly.

    Attributes
    ----------
    rate_hz : float
        Sample rate of the patient, Hz; sensors stream it or an integer fraction of it.
    placements : tuple of str
        Placements that carry a sensor (``"lumbar"``, ``"sacrum"``, …).
    """

    rate_hz: float
    placements: tuple[str, ...]

    def samples(self, placement: str, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Accelerometer (m/s², shape (N, 3)) and gyroscope (rad/s, (N, 3)) of samples ``index`` (N,)."""
        ...


class _RecordedSignals:
    """A finished emulated patient's samples of one placement (streaming ends with them)."""

    def __init__(self, batch: Any, t0: float) -> None:
        self.true_t = t0 + batch.time_s  # instants on the emulator clock, s
        self.dev_t = batch.device_time_s  # device clock since the patient started, s
        self.acc_g = batch.acc / STANDARD_G
        self.gyro_dps = batch.gyro / _DEG
        self.n = len(self.true_t)

    def true_time(self, k: int) -> float:
        return float(self.true_t[k])

    def true_times(self, idx: np.ndarray) -> np.ndarray:
        return self.true_t[idx]

    def device_times(self, idx: np.ndarray) -> np.ndarray:
        return self.dev_t[idx]

    def values(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.acc_g[idx], self.gyro_dps[idx]

    def first_at_or_after(self, t: float) -> int:
        return int(np.searchsorted(self.true_t, t))

    def device_now(self, t: float) -> float:
        k = np.searchsorted(self.true_t, t)
        k = min(max(int(k), 1), len(self.true_t) - 1)
        slope = (self.dev_t[k] - self.dev_t[k - 1]) / max(self.true_t[k] - self.true_t[k - 1], 1e-12)
        return float(self.dev_t[k - 1] + (t - self.true_t[k - 1]) * slope)


class _LiveSignals:
    """A live patient's samples of one placement: sample k measured at ``t0 + k/rate·(1 + drift)``."""

    n = 2**62  # never runs out

    def __init__(self, patient: LivePatient, placement: str, t0: float, drift: float) -> None:
        self.patient = patient
        self.placement = placement
        self.t0 = t0
        self.period = 1.0 / float(patient.rate_hz)
        self.scale = 1.0 + drift

    def true_time(self, k: int) -> float:
        return self.t0 + k * self.period * self.scale

    def true_times(self, idx: np.ndarray) -> np.ndarray:
        return self.t0 + idx * (self.period * self.scale)

    def device_times(self, idx: np.ndarray) -> np.ndarray:
        return idx * self.period

    def values(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        acc, gyro = self.patient.samples(self.placement, idx)
        return np.asarray(acc, np.float64) / STANDARD_G, np.asarray(gyro, np.float64) / _DEG

    def first_at_or_after(self, t: float) -> int:
        return max(0, math.ceil((t - self.t0) / (self.period * self.scale) - 1e-9))

    def device_now(self, t: float) -> float:
        return (t - self.t0) / self.scale


def _delta_content(counts: np.ndarray) -> bytes:
    """PMD delta-frame content with 16-bit deltas: reference sample, then one block.

    PMD packs deltas LSB first, so 16-bit deltas are plain little-endian int16 -- valid, if
    not the smallest width a real sensor would pick, and much cheaper to build. Frames with
    larger steps fall back to the general encoder.
    """
    d = np.diff(counts, axis=0)
    if len(counts) > 256 or (d.size and (d.min() < -32768 or d.max() > 32767)):
        from lumbar_sensors.synth import polar_delta_content

        return polar_delta_content(counts)
    out = counts[0].astype("<i2").tobytes()
    if len(d):
        out += bytes([16, len(d)]) + d.astype("<i2").tobytes()
    return out


class _Device:
    """Runtime of one emulated sensor on the radio (GATT handlers and the streaming task)."""

    def __init__(self, emu: Emulator, cfg: EmulatedSensor, index: int) -> None:
        self.emu = emu
        self.cfg = cfg
        self.rng = np.random.default_rng([emu.seed, cfg.seed, index])
        self.signals: _RecordedSignals | _LiveSignals
        if emu.live:
            self.drift = float(self.rng.uniform(-1.0, 1.0)) * emu.clock_drift_ppm * 1e-6
            self.signals = _LiveSignals(emu.patient, cfg.placement, emu.t0, self.drift)
        else:
            self.signals = _RecordedSignals(emu.patient.batches[cfg.placement], emu.t0)
        self.base_rate = float(emu.patient_rate_hz)
        self.boot_s = 50.0 + 37.25 * index + float(self.rng.uniform(0, 10))  # device clock at patient start
        self.rate_hz = self.base_rate
        self.acc_range_g, self.gyro_range_dps = 8.0, 2000.0
        self.max_samples = 0
        self.streams: set[str] = set()  # "imu" (lumbar_ref, thingy) or "acc"/"gyro" (polar)
        self.stream_task: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.peripheral: VirtualPeripheral = emu.radio.add_peripheral(self._spec())
        if cfg.faults.silent:
            self.peripheral.answering = False

    # ------------------------------------------------------------------ GATT profile
    def _spec(self) -> PeripheralSpec:
        cfg = self.cfg
        battery = ServiceSpec(BATTERY_SERVICE, [CharacteristicSpec(BATTERY_LEVEL, {"read", "notify"}, bytes([cfg.battery_pct]))])
        info = ServiceSpec(DEVICE_INFO, [
            CharacteristicSpec(MANUFACTURER_NAME, {"read"}, b"lumbar emulator"),
            CharacteristicSpec(FIRMWARE_REVISION, {"read"}, f"emulated {cfg.family}".encode()),
        ])
        if cfg.family == "lumbar_ref":
            from lumbar_sensors import lumbar_ref as m

            main = ServiceSpec(m.SERVICE, [
                CharacteristicSpec(m.CONTROL_POINT, {"write", "notify"}, on_write=self._on_ref_command),
                CharacteristicSpec(m.DATA_CHAR, {"notify"}),
            ])
            return PeripheralSpec(cfg.name or "", [main, battery, info], advertised_service_uuids=(m.SERVICE,),
                                  address=cfg.address)
        if cfg.family == "polar_pmd":
            from lumbar_sensors import polar_pmd as m

            main = ServiceSpec(m.SERVICE, [
                CharacteristicSpec(m.CONTROL_POINT, {"read", "write", "indicate"}, b"\x0f\x24\x02",
                                   on_write=self._on_pmd_command),
                CharacteristicSpec(m.DATA_CHAR, {"notify"}),
            ])
            return PeripheralSpec(cfg.name or "", [main, battery, info], advertised_service_uuids=(m.SERVICE,),
                                  address=cfg.address)
        from lumbar_sensors import thingy52 as m

        main = ServiceSpec(m.MOTION_SERVICE, [
            CharacteristicSpec(m.CONFIG_CHAR, {"read", "write"}, m.config_value(10), on_write=self._on_thingy_config),
            CharacteristicSpec(m.RAW_CHAR, {"notify"}),
        ])
        return PeripheralSpec(cfg.name or "", [main, battery, info], advertised_service_uuids=(),
                              address=cfg.address)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)  # keep a reference until done
        task.add_done_callback(self.tasks.discard)

    def _rate_ok(self, rate: float) -> bool:
        ratio = self.base_rate / rate if rate > 0 else 0.0
        return rate > 0 and abs(ratio - round(ratio)) < 1e-9 and round(ratio) >= 1

    # lumbar_ref -------------------------------------------------------
    def _on_ref_command(self, data: bytes) -> None:
        from lumbar_sensors import lumbar_ref as m

        status, f = m.parse_command(data)
        op = f.get("op", 0)
        extra: dict[str, Any] = {}
        if status == m.RSP_OK:
            streaming = "imu" in self.streams
            if op == m.OP_SET_RATE:
                if streaming:
                    status = m.RSP_BUSY
                elif not self._rate_ok(f["rate_hz"]):
                    status = m.RSP_BAD_VALUE  # the emulated patient only decimates
                else:
                    self.rate_hz = float(f["rate_hz"])
            elif op == m.OP_SET_RANGE:
                if streaming:
                    status = m.RSP_BUSY
                else:
                    self.acc_range_g = m.ACC_RANGES_G[f["acc_code"]]
                    self.gyro_range_dps = m.GYRO_RANGES_DPS[f["gyro_code"]]
            elif op == m.OP_START:
                self.max_samples = f["max_samples"]
                self._start_stream({"imu"})
            elif op == m.OP_STOP:
                self._stop_stream()
            elif op == m.OP_TIME_SYNC:
                extra["device_time_us"] = int(round(self.device_now() * 1e6))
            elif op == m.OP_GET_CONFIG:
                extra["config"] = (int(self.rate_hz), m.ACC_RANGES_G.index(self.acc_range_g),
                                   m.GYRO_RANGES_DPS.index(self.gyro_range_dps), int(streaming))
        rsp = m.encode_response(op, status, **extra)
        self._spawn(self.peripheral.notify(m.CONTROL_POINT, rsp))

    # polar_pmd --------------------------------------------------------
    def _on_pmd_command(self, data: bytes) -> None:
        from lumbar_sensors import polar_pmd as m

        def respond(op: int, mtype: int, status: int, params: bytes = b"") -> None:
            self._spawn(self.peripheral.indicate(m.CONTROL_POINT, bytes([0xF0, op, mtype, status, 0]) + params))

        if len(data) < 2:
            respond(data[0] if data else 0, 0, 4)
            return
        op, mtype = data[0], data[1]
        if mtype not in (m.ACC, m.GYRO, m.SDK_MODE):
            respond(op, mtype, 2)
            return
        rates = [r for r in (25, 26, 50, 52, 100, 104, 200, 208, 416) if self._rate_ok(r)]
        if op == m.OP_GET_SETTINGS:
            ranges = (2, 4, 8, 16) if mtype == m.ACC else (250, 500, 1000, 2000)
            tlv = bytes([0, len(rates)]) + b"".join(struct.pack("<H", r) for r in rates)
            tlv += bytes([1, 1]) + struct.pack("<H", 16)
            tlv += bytes([2, len(ranges)]) + b"".join(struct.pack("<H", r) for r in ranges)
            tlv += bytes([4, 1, 3])
            respond(op, mtype, 0, tlv)
        elif op == m.OP_START:
            if mtype == m.SDK_MODE:
                respond(op, mtype, 0)
                return
            try:
                settings = m.parse_settings(data[2:])
            except Exception:  # noqa: BLE001 - a malformed request is answered, not raised
                respond(op, mtype, 5)
                return
            rate = float(settings.get("sample_rate_hz", [0])[0])
            rng = float(settings.get("range", [8 if mtype == m.ACC else 2000])[0])
            key = "acc" if mtype == m.ACC else "gyro"
            if not self._rate_ok(rate):
                respond(op, mtype, 8)
                return
            if key in self.streams:
                respond(op, mtype, 6)
                return
            if self.streams and rate != self.rate_hz:
                respond(op, mtype, 8)  # one IMU, one rate
                return
            self.rate_hz = rate
            if key == "acc":
                self.acc_range_g = rng
            else:
                self.gyro_range_dps = rng
            factor = float(np.float32(rng / 32768.0))
            respond(op, mtype, 0, bytes([5, 1]) + struct.pack("<f", factor))
            self._start_stream(self.streams | {key})
        elif op == m.OP_STOP:
            key = "acc" if mtype == m.ACC else "gyro"
            self.streams.discard(key)
            if not self.streams:
                self._stop_stream()
            respond(op, mtype, 0)
        else:
            respond(op, mtype, 1)

    # thingy52 ---------------------------------------------------------
    def _on_thingy_config(self, data: bytes) -> None:
        from lumbar_sensors import thingy52 as m

        if len(data) == 9:
            rate = struct.unpack("<HHHHB", data)[3]
            if self._rate_ok(rate) and "imu" not in self.streams:
                self.rate_hz = float(rate)
        self.peripheral.set_value(m.CONFIG_CHAR, bytes(data))

    async def _thingy_watch(self) -> None:
        """The Thingy streams while the raw characteristic is subscribed."""
        from lumbar_sensors import thingy52 as m

        while True:
            await self.peripheral.wait_subscribed(m.RAW_CHAR, True)
            self._start_stream({"imu"})
            await self.peripheral.wait_subscribed(m.RAW_CHAR, False)
            self._stop_stream()

    # ------------------------------------------------------------------ streaming
    def device_now(self) -> float:
        """The device clock now, s (boot-relative; runs with the sensor's drift)."""
        return self.boot_s + self.signals.device_now(self.emu.clock.monotonic())

    def _start_stream(self, streams: set[str]) -> None:
        self.streams = set(streams)
        if self.stream_task is None or self.stream_task.done():
            self.stream_task = asyncio.get_running_loop().create_task(self._stream(), name=f"emulated {self.cfg.name}")

    def _stop_stream(self) -> None:
        self.streams = set()
        task, self.stream_task = self.stream_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _quantise(self, acc_g: np.ndarray, gyro_dps: np.ndarray, acc_fs: float, gyro_fs: float) -> tuple[np.ndarray, np.ndarray]:
        acc = np.clip(np.rint(acc_g / acc_fs * 32768.0), -32768, 32767).astype(np.int64)
        gyro = np.clip(np.rint(gyro_dps / gyro_fs * 32768.0), -32768, 32767).astype(np.int64)
        return acc, gyro

    def _packets(self, idx: np.ndarray, seq0: int) -> list[tuple[str, bytes, np.ndarray, float]]:
        """Encode samples ``idx`` as the family's notifications: (uuid, payload, sample idx, device times)."""
        fam = self.cfg.family
        dev = self.boot_s + self.signals.device_times(idx)
        acc_g, gyro_dps = self.signals.values(idx)
        if fam == "lumbar_ref":
            from lumbar_sensors import lumbar_ref as m

            n_max = self.max_samples or m.max_samples_for_mtu(self.emu.radio.mtu)
            acc, gyro = self._quantise(acc_g, gyro_dps, self.acc_range_g, self.gyro_range_dps)
            period_us = int(round(1e6 / self.rate_hz))
            a_code, g_code = m.ACC_RANGES_G.index(self.acc_range_g), m.GYRO_RANGES_DPS.index(self.gyro_range_dps)
            out = []
            for s in range(0, len(idx), n_max):
                part = slice(s, s + n_max)
                t_us = int(round(dev[s] * 1e6))
                counts = np.concatenate([acc[part], gyro[part]], axis=1)
                payload = m.encode_packet(seq0 + s, t_us, period_us, a_code, g_code, counts)
                times = (t_us + period_us * np.arange(len(counts))) * 1e-6
                out.append((m.DATA_CHAR, payload, idx[part], times))
            return out
        if fam == "polar_pmd":
            from lumbar_sensors import polar_pmd as m

            ns = POLAR_EPOCH_NS + np.rint(dev * 1e9).astype(np.int64)
            acc, gyro = self._quantise(acc_g, gyro_dps, self.acc_range_g, self.gyro_range_dps)
            out = []
            for key, mtype, counts in (("acc", m.ACC, acc), ("gyro", m.GYRO, gyro)):
                if key in self.streams:
                    payload = bytes([mtype]) + int(ns[-1]).to_bytes(8, "little") + b"\x80" + _delta_content(counts)
                    out.append((m.DATA_CHAR, payload, idx, ns * 1e-9))
            return out
        from lumbar_sensors import thingy52 as m

        acc = np.clip(np.rint(acc_g * 1024.0), -32767, 32767).astype(np.int64)
        gyro = np.clip(np.rint(gyro_dps * 32.0), -32767, 32767).astype(np.int64)
        rows = np.empty((len(idx), 9), "<i2")
        rows[:, 0:3] = acc
        rows[:, 3:6] = gyro
        rows[:, 6:9] = (320, -160, 640)  # a constant field, µT × 16
        data, size = rows.tobytes(), rows.itemsize * 9
        no_clock = np.full(1, np.nan)  # shared by the rows: only read
        return [(m.RAW_CHAR, data[i * size : (i + 1) * size], idx[i : i + 1], no_clock) for i in range(len(idx))]

    def _fate(self) -> str:
        f = self.cfg.faults
        if f.drop_prob and self.rng.random() < f.drop_prob:
            return "dropped"
        if f.corrupt_prob and self.rng.random() < f.corrupt_prob:
            return "corrupted"
        return "sent"

    def _corrupt(self, payload: bytes) -> bytes:
        fam = self.cfg.family
        if fam == "lumbar_ref":
            return b"\xee" + payload[1:]  # unknown protocol version
        if fam == "polar_pmd":
            return bytes([0x3F]) + payload[1:]  # unknown measurement type
        return payload[:-1]  # wrong length

    async def _stream(self) -> None:
        """Deliver samples per connection event until the stream stops or the link drops."""
        clock, cfg, log = self.emu.clock, self.cfg, self.cfg.log
        stride = max(1, int(round(self.base_rate / self.rate_hz)))
        sig = self.signals
        now = clock.monotonic()
        k = sig.first_at_or_after(now)
        k += (-k) % stride
        seq = 0
        interval = cfg.conn_interval_ms * 1e-3
        jitter = cfg.jitter_ms * 1e-3
        t_event = now + float(self.rng.uniform(0, interval))
        last_arrival = now
        pending_from = k
        try:
            while self.streams and k < sig.n:
                t_event += interval
                while k < sig.n and sig.true_time(k) <= t_event:
                    k += stride
                if k == pending_from or self.rng.random() < cfg.burst_prob:
                    await clock.sleep_until(t_event)
                    continue  # nothing measured yet, or a missed connection event: wait for the next
                idx = np.arange(pending_from, k, stride)
                pending_from = k
                arrival = max(t_event + float(self.rng.uniform(-jitter, jitter)), sig.true_time(int(idx[-1])), last_arrival)
                last_arrival = arrival
                packets = self._packets(idx, seq)
                seq += len(idx)
                await clock.sleep_until(arrival)
                if not self.streams or not self.peripheral.is_connected:
                    break
                # Polar sends the ACC and GYRO frames of the same samples together: one fate for both.
                shared = cfg.family == "polar_pmd"
                fate = self._fate()
                for i, (uuid, payload, pidx, dev) in enumerate(packets):
                    if not self.streams or not self.peripheral.is_connected:
                        # Stopped while this connection event's packets went out (each notify yields):
                        # the rest is never sent, so it is not logged as sent.
                        break
                    if not shared:
                        fate = self._fate() if i else fate
                    if fate == "corrupted":
                        payload = self._corrupt(payload)
                    if fate != "dropped" and await self.peripheral.notify(uuid, payload) == 0:
                        fate = "dropped"  # nobody subscribed any more: not delivered
                    log.packets[fate] += 1
                    if (shared and i) or not cfg.log_samples:
                        continue  # the first frame logged these samples, or no sample log kept
                    # Polar: samples sent while only one of ACC and GYRO streams (the other is not
                    # started yet, or already stopped) are half samples.
                    sample_fate = "partial" if shared and fate == "sent" and len(packets) < 2 else fate
                    log.device_time_s.extend(dev.tolist())
                    log.true_time_s.extend(sig.true_times(pidx).tolist())
                    log.index.extend(pidx.tolist())
                    log.fate.extend([sample_fate] * len(pidx))
            if k >= sig.n:
                logger.warning("emulated %s: the emulated patient's data ran out; streaming stopped", cfg.name)
        finally:
            if self.stream_task is asyncio.current_task():
                self.stream_task = None
                self.streams = set()

    # ------------------------------------------------------------------ faults
    async def _disconnect_plan(self) -> None:
        for at_s, away_s in self.cfg.faults.disconnects:
            await self.emu.clock.sleep_until(self.emu.t0 + at_s)
            await self.drop_link(away_s)

    async def drop_link(self, away_s: float) -> None:
        """Drop the link and vanish (no advertising) for ``away_s`` s of the emulator clock, then return."""
        await self.peripheral.stop_advertising()
        self._stop_stream()
        await self.peripheral.disconnect()
        logger.info("emulated %s: link dropped, away for %.1f s", self.cfg.name, away_s)
        await self.emu.clock.sleep(away_s)
        await self.peripheral.start_advertising()
        self.cfg.log.returns_s.append(self.emu.clock.monotonic())
        logger.info("emulated %s: back (advertising)", self.cfg.name)

    def on_disconnection(self) -> None:
        # A real sensor stops streaming when its link is lost.
        self._stop_stream()

    def start(self) -> None:
        device = self.peripheral.device
        device.on(device.EVENT_CONNECTION, lambda conn: conn.on(conn.EVENT_DISCONNECTION, lambda *_: self.on_disconnection()))
        if self.cfg.faults.disconnects:
            self._spawn(self._disconnect_plan())
        if self.cfg.family == "thingy52":
            self._spawn(self._thingy_watch())

    async def stop(self) -> None:
        self._stop_stream()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class Emulator:
    """Emulated sensors on one virtual radio, streaming one emulated patient.

    Parameters
    ----------
    sensors : sequence of EmulatedSensor
        The sensors (their placements must be among the patient's sensors).
    movement : str
        Movement of the emulated patient (see :data:`lumbar.simulate.MOVEMENTS`).
    duration_s : float
        Seconds of patient data (streaming stops when they run out), s.
    rate_hz : float
        Patient sample rate, Hz; sensors stream it or an integer fraction of it.
    seed : int
        Seed of the patient and of the link behaviour.
    clock_drift_ppm : float
        Each sensor's clock rate error is drawn uniformly within ±this, ppm.
    time_scale : float, optional
        ``None`` (default) runs on the real monotonic clock; a number runs on a
        :class:`~lumbar.acquisition.clock.VirtualClock` that many times faster than real time.
        Give the same :attr:`clock` to the reader.
    patient : SimulatedSession or LivePatient, optional
        A ready emulated patient (then ``movement``, ``duration_s`` and ``rate_hz`` are ignored;
        so is ``clock_drift_ppm`` for a SimulatedSession, which carries its own drift), or a
        :class:`LivePatient` asked for each sample as it is measured (streams until stopped).
    mtu : int
        ATT MTU of the links.

    Examples
    --------
    >>> async def main():                                               # doctest: +SKIP
    ...     async with Emulator([EmulatedSensor("lumbar_ref", "lumbar")], duration_s=30) as emu:
    ...         devices = await BleakScanner.discover(1.0, backend=emu.radio.scanner_backend)
    """

    def __init__(
        self,
        sensors: Sequence[EmulatedSensor],
        *,
        movement: str = "flexion",
        duration_s: float = 120.0,
        rate_hz: float = 200.0,
        seed: int = 1,
        clock_drift_ppm: float = 200.0,
        time_scale: float | None = None,
        patient: Any | None = None,
        mtu: int = 247,
    ) -> None:
        if not sensors:
            raise ValidationError("an emulator needs at least one sensor")
        self.sensors = list(sensors)
        self.seed = int(seed)
        self.clock_drift_ppm = float(clock_drift_ppm)
        #: Whether the patient is a :class:`LivePatient` (samples made on demand).
        self.live = isinstance(patient, LivePatient)
        if patient is None:
            from lumbar.simulate import ImuErrorModel, simulate

            placements = tuple(dict.fromkeys(s.placement for s in self.sensors))
            imu = replace(ImuErrorModel.commodity(), clock_drift_ppm=float(clock_drift_ppm))
            patient = simulate(movement, duration_s=duration_s, seed=seed, sensors=placements, rate_hz=rate_hz, imu=imu)
        self.patient = patient
        if self.live:
            self.patient_rate_hz = float(patient.rate_hz)
            have = tuple(patient.placements)
        else:
            self.patient_rate_hz = float(next(iter(patient.sensors.values())).nominal_rate_hz)
            have = tuple(patient.batches)
        missing = [s.placement for s in self.sensors if s.placement not in have]
        if missing:
            raise ValidationError(f"emulated patient has no sensor at {missing}; it has {sorted(have)}")
        self.clock: Clock = RealClock() if time_scale is None else VirtualClock(time_scale)
        self.t0 = 0.0
        self.mtu = mtu
        self.radio: VirtualRadio | None = None  # type: ignore[assignment]
        self._devices: list[_Device] = []

    def drift_ppm(self, placement: str) -> float:
        """The emulated clock drift of the sensor at ``placement``, ppm."""
        if self.live:
            for d in self._devices:
                if d.cfg.placement == placement:
                    return d.drift * 1e6
            raise ValidationError(f"no emulated sensor at {placement!r} (or the emulator is not started)")
        return float(self.patient.truth.attrs()[f"sensor/{placement}/clock_drift_ppm"])

    async def start(self) -> None:
        """Create the radio and the peripherals (inside the running loop) and start advertising."""
        if isinstance(self.clock, VirtualClock):
            self.clock.start()
        self.t0 = self.clock.monotonic()
        self.radio = VirtualRadio(mtu=self.mtu)
        self._devices = [_Device(self, cfg, i) for i, cfg in enumerate(self.sensors)]
        await self.radio.start()
        for d in self._devices:
            d.start()

    async def stop(self) -> None:
        """Stop streaming, drop links, power the radio off, stop the virtual clock."""
        for d in self._devices:
            await d.stop()
        if self.radio is not None:
            await self.radio.stop()
        if isinstance(self.clock, VirtualClock):
            await self.clock.stop()

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def peripheral(self, sensor: EmulatedSensor) -> VirtualPeripheral:
        """The virtual peripheral of ``sensor`` (after :meth:`start`)."""
        for d in self._devices:
            if d.cfg is sensor:
                return d.peripheral
        raise ValidationError(f"sensor {sensor.name!r} is not part of this emulator")

    def address(self, sensor: EmulatedSensor) -> str:
        """The Bluetooth address of ``sensor`` (after :meth:`start`)."""
        return self.peripheral(sensor).address

    def sensor(self, address: str) -> EmulatedSensor:
        """The emulated sensor with Bluetooth ``address`` (after :meth:`start`)."""
        for d in self._devices:
            if d.peripheral.address.upper() == address.upper():
                return d.cfg
        raise ValidationError(f"no emulated sensor has address {address!r}")

    async def drop_link(self, sensor: EmulatedSensor, away_s: float) -> None:
        """Link loss on demand: drop ``sensor``'s link and keep it away ``away_s`` s, then let it return.

        The sensor stops streaming and advertising (a reader's scans do not find it), the central
        sees a remote disconnect; after ``away_s`` seconds of :attr:`clock` it advertises again.
        Returns when the sensor is back.
        """
        if away_s < 0:
            raise ValidationError(f"away_s must be >= 0, got {away_s}")
        for d in self._devices:
            if d.cfg is sensor:
                await d.drop_link(float(away_s))
                return
        raise ValidationError(f"sensor {sensor.name!r} is not part of this emulator")

    def describe(self) -> list[str]:
        """One line per emulated sensor (for ``lumbar emulate``)."""
        lines = []
        for d in self._devices:
            c = d.cfg
            faults = [f"{k}={v}" for k, v in vars(c.faults).items() if v]
            lines.append(
                f"{c.name!s:<28} {d.peripheral.address}  {c.family:<10} at {c.placement:<11} "
                f"drift {self.drift_ppm(c.placement):+6.1f} ppm, interval {c.conn_interval_ms:g} ms"
                + (f", faults: {', '.join(faults)}" if faults else "")
            )
        return lines
