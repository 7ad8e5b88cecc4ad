"""The BLE reader: discover, connect, configure, stream, decode, synchronise, reconnect.

Only bleak's public API is used (:class:`bleak.BleakScanner`, :class:`bleak.BleakClient`) with an
injectable ``backend=`` class, so the same code reads hardware through the platform backend
(BlueZ, CoreBluetooth, WinRT) and emulated sensors through
:class:`~lumbar.acquisition.bumble_backend.BumbleBleakClient`.

Per sensor (:class:`SensorReader`), in one asyncio loop:

* the notify callback only stamps the arrival time (injectable host clock) and appends the bytes
  to a queue -- nothing else runs in the stack's dispatch;
* a decode task takes packets from the queue: the family's pure ``decode`` (a ``DecodeError`` is
  counted and logged, the packet's samples are lost and the next sample is flagged
  ``GAP_BEFORE``), Polar's separate ACC and GYRO frames merged by device time, the clock fit
  (:class:`lumbar.sync.ClockSync`: device clock → host clock; sensors without a clock use
  their sample counter / rate), monotonic host times, continuous sequence numbers across
  reconnects, then :class:`~lumbar.types.ImuBatch` es to the sink;
* after a drop it scans for the device again and reconnects with a short backoff, marks the gap
  on the first new sample and emits ``disconnect`` / ``reconnect`` events;
* it keeps a :class:`~lumbar.acquisition.bus.SensorStatus` (battery, RSSI of the last
  advertisement, achieved rate, lost samples, corrupt packets, reconnects, a message).

:class:`Reader` runs several sensors at once. bleak-retry-connector is not used: it is built
around BlueZ's D-Bus quirks and its own client subclass, while our backends are injected as
classes; the backoff here is a dozen lines.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import BleakError

from lumbar.acquisition.bus import SensorStatus
from lumbar.acquisition.clock import Clock, RealClock
from lumbar.errors import DecodeError, LumbarError, ValidationError
from lumbar.sync import ClockSync
from lumbar.types import Event, ImuBatch, SampleFlag, check_placement

__all__ = ["Discovered", "Reader", "ReaderOptions", "SensorReader", "SensorTarget", "discover"]

logger = logging.getLogger(__name__)

BATTERY_LEVEL = "00002a19-0000-1000-8000-00805f9b34fb"
_LINK_ERRORS = (BleakError, TimeoutError, OSError, EOFError)


@dataclass(frozen=True)
class SensorTarget:
    """A sensor to record.

    Parameters
    ----------
    sensor_id : str
        Placement key in the session (``"lumbar"``, ``"sacrum"``, …).
    address : str, optional
        Bluetooth address (or platform UUID on macOS). Either this or ``name``.
    name : str, optional
        Advertised name, when the address is not known.
    family : str, optional
        ``lumbar_sensors`` family; default: recognised from the advertisement.
    rate_hz : float
        Wanted sample rate, Hz (the nearest rate the family offers is used).
    acc_range_g, gyro_range_dps : float
        Wanted full-scale ranges, g and deg/s (the nearest the family offers, not smaller).
    """

    sensor_id: str
    address: str | None = None
    name: str | None = None
    family: str | None = None
    rate_hz: float = 200.0
    acc_range_g: float = 8.0
    gyro_range_dps: float = 2000.0

    def __post_init__(self) -> None:
        check_placement(self.sensor_id)
        if not self.address and not self.name:
            raise ValidationError(f"sensor {self.sensor_id!r}: give an address or an advertised name")
        if not self.rate_hz > 0:
            raise ValidationError(f"sensor {self.sensor_id!r}: rate_hz must be > 0, got {self.rate_hz}")

    @property
    def label(self) -> str:
        return f"{self.sensor_id} ({self.address or self.name})"


@dataclass(frozen=True)
class ReaderOptions:
    """Timeouts and backoff of the reader, in seconds of the reader's clock.

    Parameters
    ----------
    scan_timeout_s : float
        Longest scan for one device before saying it was not found, s.
    connect_timeout_s : float
        Link set-up, MTU exchange and service discovery, s.
    gatt_timeout_s : float
        One read/write/subscribe (a sensor that never answers fails here), s.
    response_timeout_s : float
        Wait for a command's response on families that send one, s.
    backoff_initial_s, backoff_max_s : float
        Pause after a failed attempt, doubling up to the maximum, s. The maximum bounds how
        long after a sensor's return the reader notices it.
    status_interval_s : float
        How often rate, loss and battery are refreshed, s.
    battery_interval_s : float
        How often the battery level is read while connected, s.
    """

    scan_timeout_s: float = 5.0
    connect_timeout_s: float = 10.0
    gatt_timeout_s: float = 5.0
    response_timeout_s: float = 3.0
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 1.0
    status_interval_s: float = 1.0
    battery_interval_s: float = 60.0


@dataclass(frozen=True)
class Discovered:
    """One advertising device, as ``lumbar scan`` lists it."""

    name: str
    address: str
    family: str  # "" when no family matches
    rssi_dbm: int | None
    device: BLEDevice = field(repr=False, compare=False)


def _family_of(device: BLEDevice, adv: AdvertisementData) -> str:
    from lumbar_sensors import registry

    fams = registry.identify(adv.local_name or device.name, adv.service_uuids, list(adv.manufacturer_data))
    return fams[0].name if fams else ""


async def discover(
    timeout_s: float = 5.0,
    *,
    backend: type[BaseBleakScanner] | None = None,
    clock: Clock | None = None,
    all_devices: bool = False,
    expect: Collection[str] = (),
) -> list[Discovered]:
    """Scan and list the devices that look like a known sensor family.

    Parameters
    ----------
    timeout_s : float
        Scan duration on ``clock``, s.
    backend : type, optional
        bleak scanner backend class (default: the platform's).
    clock : Clock, optional
        Time base (default: the real clock).
    all_devices : bool
        List devices of no known family too.
    expect : collection of str
        Addresses known to be there (e.g. emulated sensors): the scan ends as soon as all of them
        have been seen, instead of after ``timeout_s``.

    Returns
    -------
    list of Discovered
        Sorted by family, then strongest RSSI first.
    """
    clock = clock or RealClock()
    found: dict[str, Discovered] = {}
    missing = {a.upper() for a in expect}
    all_seen = asyncio.Event()

    def seen(device: BLEDevice, adv: AdvertisementData) -> None:
        found[device.address] = Discovered(adv.local_name or device.name or "", device.address,
                                           _family_of(device, adv), adv.rssi, device)
        if missing:
            missing.discard(device.address.upper())
            if not missing:
                all_seen.set()

    async with BleakScanner(seen, backend=backend):
        if not missing:
            await clock.sleep(timeout_s)
        else:
            waits = [asyncio.ensure_future(clock.sleep(timeout_s)), asyncio.ensure_future(all_seen.wait())]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
                await asyncio.gather(*waits, return_exceptions=True)
    out = [d for d in found.values() if all_devices or d.family]
    return sorted(out, key=lambda d: (d.family == "", d.family, -(d.rssi_dbm or -999)))


def _call(fn: Callable[..., Any], **available: Any) -> Any:
    """Call a family builder with the keyword arguments it accepts."""
    params = inspect.signature(fn).parameters
    return fn(**{k: v for k, v in available.items() if k in params})


def _nearest(value: float, allowed: Sequence[float], at_least: bool = False) -> float:
    options = [a for a in allowed if a >= value] if at_least else list(allowed)
    options = options or list(allowed)
    return float(min(options, key=lambda a: abs(a - value)))


class _FamilyDriver:
    """What the reader must know about a family beyond its module: commands, responses, context."""

    def __init__(self, module: ModuleType, target: SensorTarget) -> None:
        self.m = module
        self.f = module.FAMILY
        self.rate_hz = _nearest(target.rate_hz, self.f.rates_hz)
        self.acc_range_g = _nearest(target.acc_range_g, self.f.acc_ranges_g, at_least=True)
        self.gyro_range_dps = _nearest(target.gyro_range_dps, self.f.gyro_ranges_dps, at_least=True)
        self.context: dict[str, Any] = {}
        self.responses: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    @property
    def name(self) -> str:
        return str(self.f.name)

    @property
    def waits_for_responses(self) -> bool:
        return self.name in ("lumbar_ref", "polar_pmd")

    def _args(self) -> dict[str, Any]:
        return {"rate_hz": self.rate_hz, "acc_range_g": self.acc_range_g, "gyro_range_dps": self.gyro_range_dps}

    def configure(self) -> list[Any]:
        return list(_call(self.m.configure_commands, **self._args()))

    def start(self) -> list[Any]:
        return list(_call(self.m.start_commands, **self._args()))

    def stop(self) -> list[Any]:
        return list(_call(self.m.stop_commands))

    def on_response(self, data: bytes) -> None:
        """Parse a response notification (runs in the stack's dispatch: parse and enqueue only)."""
        try:
            if self.name == "lumbar_ref":
                r = self.m.parse_response(data)
                self.responses.put_nowait({"ok": r["status"] == 0, "text": r["status_text"], "raw": r})
            elif self.name == "polar_pmd":
                r = self.m.parse_cp_response(data)
                if "status" in r:
                    self.responses.put_nowait({"ok": r["status"] == 0, "text": r["status_text"], "raw": r})
        except DecodeError as exc:
            self.responses.put_nowait({"ok": False, "text": str(exc), "raw": {}})

    def note_response(self, command: Any, response: dict[str, Any]) -> None:
        """Keep what a start response tells (Polar: the conversion factor)."""
        raw = response["raw"]
        if self.name == "polar_pmd" and raw.get("op_code") == self.m.OP_START and raw.get("parameters"):
            settings = self.m.parse_settings(raw["parameters"])
            if "factor" in settings:
                key = "acc_factor" if raw["measurement_type"] == self.m.ACC else "gyro_factor"
                self.context[key] = float(settings["factor"][0])

    def new_stream(self) -> Any:
        ctx = {"rate_hz": self.rate_hz, "acc_rate_hz": self.rate_hz, "gyro_rate_hz": self.rate_hz,
               "acc_range_g": self.acc_range_g, "gyro_range_dps": self.gyro_range_dps, **self.context}
        return _call(self.m.new_stream, **ctx)

    @property
    def merges_acc_gyro(self) -> bool:
        return self.name == "polar_pmd" and bool(self.f.capabilities & self.f.capabilities.GYRO)


_LINK_ENDED, _STOPPED = -1, -2  # queue markers: the connection ended (link lost) / the sensor was stopped


class _AccGyroMerger:
    """Pairs separate ACC and GYRO frames (Polar) into whole samples by device time.

    A sample whose partner never comes (its frame was lost) is released with NaN in the
    missing channel once the other channel has moved past it, or after ``hold`` samples.
    """

    def __init__(self, rate_hz: float, hold: int) -> None:
        self.tol = 0.25 / rate_hz
        self.hold = hold
        self.buf: dict[str, list[tuple[float, np.ndarray, int, int]]] = {"acc": [], "gyro": []}
        self.started = False  # both streams have delivered (samples before the later one started are dropped)

    def add(self, dev_t: np.ndarray, acc: np.ndarray | None, gyro: np.ndarray | None, seq: np.ndarray,
            flags: np.ndarray) -> None:
        key, values = ("acc", acc) if acc is not None else ("gyro", gyro)
        assert values is not None
        self.buf[key].extend(zip(dev_t.tolist(), values, seq.tolist(), flags.tolist()))

    def take(self, flush: bool = False, stopped: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """Paired samples ready to go; ``flush`` releases everything, except, when the sensor was
        ``stopped`` on purpose, the samples of one channel after the other's last (its stream was
        stopped first: they are not samples with a lost partner)."""
        a, g = self.buf["acc"], self.buf["gyro"]
        if not self.started:
            # The streams start one after the other: samples from before the second one started
            # have no partner and are not samples with a lost frame.
            if a and g:
                first = max(a[0][0], g[0][0]) - self.tol
                a[:] = [r for r in a if r[0] >= first]
                g[:] = [r for r in g if r[0] >= first]
                self.started = True
            elif len(a) > self.hold or len(g) > self.hold or flush:
                self.started = True  # one stream only (the other never started): NaN in its channel
            else:
                return None
        if flush and stopped:
            if a and g:
                last = min(a[-1][0], g[-1][0]) + self.tol
                a[:] = [r for r in a if r[0] <= last]
                g[:] = [r for r in g if r[0] <= last]
            else:
                a.clear()
                g.clear()
        rows: list[tuple[float, np.ndarray, np.ndarray, int, int]] = []
        nan3 = np.full(3, np.nan)
        i = j = 0
        while i < len(a) or j < len(g):
            if i < len(a) and j < len(g):
                ta, tg = a[i][0], g[j][0]
                if abs(ta - tg) <= self.tol:
                    rows.append((ta, a[i][1], g[j][1], a[i][2], a[i][3] | g[j][3]))
                    i, j = i + 1, j + 1
                elif ta < tg:
                    rows.append((ta, a[i][1], nan3, a[i][2], a[i][3]))
                    i += 1
                else:
                    rows.append((tg, nan3, g[j][1], g[j][2], g[j][3]))
                    j += 1
            elif flush or len(a) - i > self.hold or len(g) - j > self.hold:
                if i < len(a):
                    rows.append((a[i][0], a[i][1], nan3, a[i][2], a[i][3]))
                    i += 1
                else:
                    rows.append((g[j][0], nan3, g[j][1], g[j][2], g[j][3]))
                    j += 1
            else:
                break
        del a[:i], g[:j]
        if not rows:
            return None
        return (np.array([r[0] for r in rows]), np.array([r[1] for r in rows]), np.array([r[2] for r in rows]),
                np.array([r[3] for r in rows], np.int64), np.array([r[4] for r in rows], np.uint8))


class SensorReader:
    """Reads one sensor for as long as :meth:`run` runs (reconnecting by itself).

    Parameters
    ----------
    target : SensorTarget
        What to read.
    sink : callable
        ``sink(batch: ImuBatch)`` for every decoded batch, in order, host times since ``origin_s``.
    on_event : callable, optional
        ``on_event(Event)`` for ``disconnect`` / ``reconnect`` / ``sensor_missing`` markers.
    on_status : callable, optional
        ``on_status(SensorStatus)`` whenever the status changes.
    clock : Clock, optional
        Host clock for arrival stamps, sleeps and timeouts (default: the real monotonic clock).
    origin_s : float, optional
        Clock time of the session's time zero, s (default: when the reader is created).
    scanner_backend, client_backend : type, optional
        bleak backend classes (default: the platform's).
    options : ReaderOptions
        Timeouts and backoff.
    """

    def __init__(
        self,
        target: SensorTarget,
        sink: Callable[[ImuBatch], None],
        *,
        on_event: Callable[[Event], None] | None = None,
        on_status: Callable[[SensorStatus], None] | None = None,
        clock: Clock | None = None,
        origin_s: float | None = None,
        scanner_backend: type[BaseBleakScanner] | None = None,
        client_backend: type[BaseBleakClient] | None = None,
        options: ReaderOptions | None = None,
    ) -> None:
        self.target = target
        self.sink = sink
        self.on_event = on_event
        self.on_status = on_status
        self.clock: Clock = clock or RealClock()
        self.origin_s = self.clock.monotonic() if origin_s is None else float(origin_s)
        self.scanner_backend = scanner_backend
        self.client_backend = client_backend
        self.options = options or ReaderOptions()
        self.status = SensorStatus(target.sensor_id, name=target.name or "", address=target.address or "",
                                   family=target.family or "")
        self.device: BLEDevice | None = None
        self.driver: _FamilyDriver | None = None
        self.sync = ClockSync()
        self._sync_last_d = -np.inf
        self._last_t = -np.inf  # last host time written, s
        self._last_seq: int | None = None
        self._last_dev: float | None = None
        self._clockless_t0: float | None = None
        self._last_arrival = self.clock.monotonic()
        self._seq_offset = 0
        self._gap_next = False
        self._rate_window: collections.deque[tuple[float, int]] = collections.deque()
        self._connected_once = False
        self.first_sample_after_reconnect_s: list[float] = []

    # ------------------------------------------------------------------ status
    def _set(self, **changes: Any) -> None:
        for k, v in changes.items():
            setattr(self.status, k, v)
        if self.on_status is not None:
            self.on_status(self.status)

    def _event(self, label: str, note: str) -> None:
        if self.on_event is not None:
            self.on_event(Event(self.clock.monotonic() - self.origin_s, label, note))

    def _say(self, message: str, level: int = logging.WARNING) -> None:
        logger.log(level, "sensor %s: %s", self.target.label, message)
        self._set(message=message)

    # ------------------------------------------------------------------ discovery
    async def find(self, timeout_s: float | None = None) -> BLEDevice | None:
        """Scan for the target until seen or ``timeout_s``; learns name, family and RSSI."""
        t = self.target
        want_addr = t.address.upper() if t.address else None
        seen: dict[str, Any] = {}

        def match(device: BLEDevice, adv: AdvertisementData) -> bool:
            ok = (device.address.upper() == want_addr) if want_addr else (adv.local_name or device.name) == t.name
            if ok:
                seen["adv"] = adv
            return ok

        timeout = self.options.scan_timeout_s if timeout_s is None else timeout_s
        device = await BleakScanner.find_device_by_filter(
            match, timeout=self.clock.real_seconds(timeout), backend=self.scanner_backend
        )
        if device is None:
            return None
        adv: AdvertisementData = seen["adv"]
        family = t.family or _family_of(device, adv)
        self.device = device
        self._set(name=adv.local_name or device.name or "", address=device.address, rssi_dbm=float(adv.rssi),
                  family=family)
        return device

    # ------------------------------------------------------------------ life cycle
    async def run(self) -> None:
        """Connect, stream and reconnect until cancelled."""
        backoff = self.options.backoff_initial_s
        while True:
            try:
                device = await self.find()
                if device is None:
                    what = f"address {self.target.address}" if self.target.address else f"name {self.target.name!r}"
                    self._say(f"no device with {what} found in a {self.options.scan_timeout_s:g} s scan "
                              "(switched off, out of range, or a wrong address?); still looking")
                elif not self.status.family:
                    self._say(f"{self.status.name!r} is not a known sensor family; cannot record it")
                else:
                    await self._connection(device)
                    backoff = self.options.backoff_initial_s
                    continue
            except _LINK_ERRORS as exc:
                self._set(connected=False)
                self._say(self._explain(exc))
            except LumbarError as exc:
                self._set(connected=False)
                self._say(str(exc), logging.ERROR)
            await self.clock.sleep(backoff)
            backoff = min(backoff * 2, self.options.backoff_max_s)

    def _explain(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError):
            return (f"does not answer (no response within the timeout: {exc or 'timed out'}); "
                    "the sensor may be hung -- switch it off and on; still trying")
        return f"link problem: {exc}; reconnecting"

    async def _gatt(self, what: str, aw: Any) -> Any:
        try:
            return await asyncio.wait_for(aw, self.clock.real_seconds(self.options.gatt_timeout_s))
        except TimeoutError:
            raise TimeoutError(f"{what} got no answer within {self.options.gatt_timeout_s:g} s") from None

    async def _connection(self, device: BLEDevice) -> None:
        from lumbar_sensors import registry

        driver = _FamilyDriver(registry.module(self.status.family), self.target)
        self.driver = driver
        dropped = asyncio.Event()
        queue: collections.deque[tuple[float, int, bytes]] = collections.deque()
        wake = asyncio.Event()
        client = BleakClient(device, disconnected_callback=lambda _c: dropped.set(),
                             timeout=self.clock.real_seconds(self.options.connect_timeout_s),
                             backend=self.client_backend)
        await client.connect()
        decode_task: asyncio.Task[None] | None = None
        stop_writes = False
        try:
            fam = driver.f
            if fam.response_uuid:
                await self._gatt("subscription to the control point",
                                 client.start_notify(fam.response_uuid, lambda _c, d: driver.on_response(bytes(d))))
            for cmd in driver.configure():
                await self._command(client, cmd)
            clock = self.clock

            def make_callback(index: int) -> Callable[[Any, bytearray], None]:
                def on_data(_char: Any, data: bytearray) -> None:
                    # Stamp and enqueue only: decoding happens in the decode task.
                    queue.append((clock.monotonic(), index, bytes(data)))
                    wake.set()
                return on_data

            for i, uuid in enumerate(fam.data_uuids):
                await self._gatt(f"subscription to {uuid}", client.start_notify(uuid, make_callback(i)))
            stop_writes = True
            for cmd in driver.start():
                await self._command(client, cmd)
            await self._read_battery(client)
            stream = driver.new_stream()
            decode_task = asyncio.get_running_loop().create_task(
                self._decode_loop(driver, stream, queue, wake), name=f"decode {self.target.sensor_id}")
            reconnect = self._connected_once
            self._connected_once = True
            self._set(connected=True, message="", reconnects=self.status.reconnects + int(reconnect))
            if reconnect:
                self._event("reconnect", f"{self.target.sensor_id}: link back")
            else:
                self._event("connected", f"{self.target.sensor_id}: {self.status.name} {self.status.address}")
            await self._watch(client, dropped)
            self._set(connected=False)
            self._event("disconnect", f"{self.target.sensor_id}: link lost")
            self._say("link lost; reconnecting", logging.INFO)
        finally:
            # Stop the sensor and close the link first, then drain: whatever the sensor sent before
            # the link closed (some families have no stop command) reaches the queue and the file.
            end = _LINK_ENDED
            if client.is_connected:
                with contextlib.suppress(*_LINK_ERRORS, DecodeError):
                    if stop_writes:
                        end = _STOPPED
                        for cmd in driver.stop():
                            await asyncio.wait_for(client.write_gatt_char(cmd.characteristic, cmd.data, cmd.with_response),
                                                   self.clock.real_seconds(1.0))
                with contextlib.suppress(*_LINK_ERRORS):
                    await asyncio.wait_for(client.disconnect(), self.clock.real_seconds(2.0))
            if decode_task is not None:
                queue.append((np.nan, end, b""))  # end of this connection: drain and flush
                wake.set()
                await asyncio.shield(decode_task)

    async def _command(self, client: BleakClient, cmd: Any) -> None:
        driver = self.driver
        assert driver is not None
        while not driver.responses.empty():
            driver.responses.get_nowait()
        await self._gatt(f"write of '{cmd.note}'", client.write_gatt_char(cmd.characteristic, cmd.data, cmd.with_response))
        if driver.waits_for_responses and cmd.characteristic == driver.f.response_uuid:
            try:
                rsp = await asyncio.wait_for(driver.responses.get(),
                                             self.clock.real_seconds(self.options.response_timeout_s))
            except TimeoutError:
                raise TimeoutError(f"no response to '{cmd.note}' within {self.options.response_timeout_s:g} s") from None
            if not rsp["ok"]:
                raise ValidationError(f"sensor {self.target.label} refused '{cmd.note}': {rsp['text']}")
            driver.note_response(cmd, rsp)
        if cmd.delay_after_s:
            await self.clock.sleep(cmd.delay_after_s)

    async def _read_battery(self, client: BleakClient) -> None:
        if client.services.get_characteristic(BATTERY_LEVEL) is None:
            return
        try:
            value = await self._gatt("battery read", client.read_gatt_char(BATTERY_LEVEL))
            if value:
                self._set(battery_pct=float(value[0]))
        except _LINK_ERRORS as exc:
            logger.info("sensor %s: battery not read (%s)", self.target.label, exc)

    async def _watch(self, client: BleakClient, dropped: asyncio.Event) -> None:
        """Wait for the link to drop, refreshing the status meanwhile."""
        next_battery = self.clock.monotonic() + self.options.battery_interval_s
        while not dropped.is_set() and client.is_connected:
            sleeper = asyncio.ensure_future(self.clock.sleep(self.options.status_interval_s))
            dropper = asyncio.ensure_future(dropped.wait())
            try:
                await asyncio.wait({sleeper, dropper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in (sleeper, dropper):
                    t.cancel()
                await asyncio.gather(sleeper, dropper, return_exceptions=True)
            self._update_rate()
            if self.clock.monotonic() >= next_battery and client.is_connected:
                next_battery = self.clock.monotonic() + self.options.battery_interval_s
                await self._read_battery(client)

    def _update_rate(self) -> None:
        now = self.clock.monotonic()
        w = self._rate_window
        w.append((now, self.status.samples))
        while len(w) > 2 and now - w[0][0] > 5.0:
            w.popleft()
        if len(w) >= 2 and w[-1][0] > w[0][0]:
            self._set(achieved_rate_hz=(w[-1][1] - w[0][1]) / (w[-1][0] - w[0][0]))

    # ------------------------------------------------------------------ decoding
    async def _decode_loop(self, driver: _FamilyDriver, stream: Any, queue: collections.deque[tuple[float, int, bytes]],
                           wake: asyncio.Event) -> None:
        merger = _AccGyroMerger(driver.rate_hz, hold=int(driver.rate_hz)) if driver.merges_acc_gyro else None
        first_of_connection = True
        corrupt = 0
        while True:
            if not queue:
                wake.clear()
                await wake.wait()
                continue
            arrival, _index, payload = queue.popleft()
            if _index < 0:
                if merger is not None:
                    self._emit(driver, merger.take(flush=True, stopped=_index == _STOPPED), first_of_connection)
                return
            try:
                dec = driver.m.decode(payload, stream)
            except DecodeError as exc:
                corrupt += 1
                self._gap_next = True
                self._set(corrupt_packets=self.status.corrupt_packets + 1)
                if corrupt <= 5 or corrupt % 100 == 0:
                    logger.warning("sensor %s: corrupt packet #%d dropped: %s", self.target.label,
                                   self.status.corrupt_packets, exc)
                continue
            if len(dec) == 0:
                continue
            dev_t = dec.device_time_s
            if driver.f.has_device_clock:
                d = float(dev_t[-1])
                if self._last_dev is not None and d < self._last_dev - 1.0 and first_of_connection:
                    self._reset_clock("the device clock went back (sensor restarted)")
                if d > self._sync_last_d:
                    self.sync.add_one(d, arrival)
                    self._sync_last_d = d
            if merger is not None:
                merger.add(dev_t, dec.acc, dec.gyro, dec.seq, dec.flags)
                taken = merger.take()
            else:
                acc, gyro = dec.acc, dec.gyro
                if acc is None or gyro is None:  # NaN for a channel the packet does not carry
                    nan3 = np.full((len(dec), 3), np.nan)
                    acc = nan3 if acc is None else acc
                    gyro = nan3 if gyro is None else gyro
                taken = (dev_t, acc, gyro, dec.seq, dec.flags.copy())
            if taken is not None:
                self._emit(driver, taken, first_of_connection, arrival)
                first_of_connection = False

    def _reset_clock(self, why: str) -> None:
        logger.info("sensor %s: clock fit restarted: %s", self.target.label, why)
        self.sync = ClockSync()
        self._sync_last_d = -np.inf

    def _emit(self, driver: _FamilyDriver, taken: Any, first_of_connection: bool, arrival: float = np.nan) -> None:
        if taken is None:
            return
        dev_t, acc, gyro, seq, flags = taken
        n = len(dev_t)
        rate = driver.rate_hz
        # Continuous sequence numbers across reconnects (each START restarts the device counter).
        if first_of_connection and self._last_seq is not None:
            if driver.f.has_device_clock and self._last_dev is not None:
                skipped = max(1, int(round((float(dev_t[0]) - self._last_dev) * rate)))
            else:
                elapsed = self.clock.monotonic() - self._last_arrival
                skipped = max(1, int(round(elapsed * rate)))
            self._seq_offset = self._last_seq + skipped - int(seq[0])
            flags[0] |= np.uint8(SampleFlag.GAP_BEFORE)
            if not driver.f.has_device_clock:
                self._reset_clock("new connection of a sensor without a clock")
                self._clockless_t0 = None
        elif self._last_seq is None:
            self._seq_offset = -int(seq[0])
        seq = seq + self._seq_offset
        if self._last_seq is not None:
            lost = int(seq[0]) - self._last_seq - 1
            if lost > 0:
                self._set(lost_samples=self.status.lost_samples + lost)
        if self._gap_next and self._last_seq is not None:
            flags[0] |= np.uint8(SampleFlag.GAP_BEFORE)
        self._gap_next = False
        if driver.f.has_device_clock:
            host = self.sync.model().to_host(dev_t) - self.origin_s
        else:
            # No device clock: the sample counter / rate is the device time of this connection.
            if self._clockless_t0 is None:
                self._clockless_t0 = float(seq[0]) / rate
            local = seq / rate - self._clockless_t0
            d = float(local[-1])
            if d > self._sync_last_d and np.isfinite(arrival):
                self.sync.add_one(d, arrival)
                self._sync_last_d = d
            host = self.sync.model().to_host(local) - self.origin_s
        # Live estimates move a little as the fit improves: never let time run backwards.
        host = np.maximum.accumulate(np.maximum(host, self._last_t))
        self._last_t = float(host[-1])
        self._last_seq = int(seq[-1])
        if np.isfinite(dev_t[-1]):
            self._last_dev = float(dev_t[-1])
        self._last_arrival = self.clock.monotonic()
        batch = ImuBatch(self.target.sensor_id, host, dev_t, acc, gyro, seq, flags)
        self.status.samples += n
        self.sink(batch)


class Reader:
    """Reads several sensors at once (one :class:`SensorReader` task each).

    Parameters
    ----------
    targets : sequence of SensorTarget
        Sensors to read (unique ``sensor_id``).
    sink : callable
        ``sink(batch)`` for every decoded batch of any sensor.
    on_event, on_status, clock, origin_s, scanner_backend, client_backend, options
        As for :class:`SensorReader` (shared).

    Examples
    --------
    >>> async with Reader(targets, sink=bus.push, client_backend=radio.client_backend,   # doctest: +SKIP
    ...                   scanner_backend=radio.scanner_backend) as reader:
    ...     await asyncio.sleep(60)
    """

    def __init__(
        self,
        targets: Sequence[SensorTarget],
        sink: Callable[[ImuBatch], None],
        *,
        on_event: Callable[[Event], None] | None = None,
        on_status: Callable[[SensorStatus], None] | None = None,
        clock: Clock | None = None,
        origin_s: float | None = None,
        scanner_backend: type[BaseBleakScanner] | None = None,
        client_backend: type[BaseBleakClient] | None = None,
        options: ReaderOptions | None = None,
    ) -> None:
        ids = [t.sensor_id for t in targets]
        if not ids or len(set(ids)) != len(ids):
            raise ValidationError(f"sensor ids must be unique and at least one; got {ids}")
        clock = clock or RealClock()
        origin = clock.monotonic() if origin_s is None else origin_s
        self.clock = clock
        self.sensors = {
            t.sensor_id: SensorReader(t, sink, on_event=on_event, on_status=on_status, clock=clock, origin_s=origin,
                                      scanner_backend=scanner_backend, client_backend=client_backend, options=options)
            for t in targets
        }
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def status(self) -> dict[str, SensorStatus]:
        """Current status per sensor id."""
        return {sid: r.status for sid, r in self.sensors.items()}

    async def find_all(self, timeout_s: float | None = None) -> dict[str, BLEDevice | None]:
        """Scan for every target at once; fills names, families and RSSI in the statuses."""
        results = await asyncio.gather(*(r.find(timeout_s) for r in self.sensors.values()))
        for r, dev in zip(self.sensors.values(), results):
            if dev is None:
                what = f"address {r.target.address}" if r.target.address else f"name {r.target.name!r}"
                r._say(f"no device with {what} found in the scan; will keep looking while the others record")
        return dict(zip(self.sensors, results))

    def start(self) -> None:
        """Start one task per sensor (references kept until :meth:`stop`)."""
        loop = asyncio.get_running_loop()
        for sid, r in self.sensors.items():
            if sid not in self._tasks:
                self._tasks[sid] = loop.create_task(r.run(), name=f"reader {sid}")

    async def stop(self) -> None:
        """Cancel the sensor tasks; each stops its stream, drains its queue and disconnects."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                logger.error("reader task ended with %r", r)

    async def __aenter__(self) -> Reader:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
