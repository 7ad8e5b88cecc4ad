"""Recording: the reader's batches to the live bus and a session file, until a duration or Ctrl-C.

:class:`Recorder` scans for the sensors (so the file names each sensor's family and address
before SWMR mode freezes the metadata), creates the :class:`~lumbar.storage.writer.SessionWriter`,
runs the :class:`~lumbar.acquisition.reader.Reader`, calls ``flush_if_due`` on a real-time timer
(the writer's crash-safety promise is about wall-clock time), and at the end -- duration reached,
cancellation or Ctrl-C -- stops the sensors, closes the file (marking it complete) and validates it.
"""
from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from bleak.backends.client import BaseBleakClient
from bleak.backends.scanner import BaseBleakScanner

from lumbar.acquisition.bus import LiveBus, SensorStatus
from lumbar.acquisition.clock import Clock, RealClock
from lumbar.acquisition.reader import Reader, ReaderOptions, SensorTarget
from lumbar.errors import LumbarError
from lumbar.storage.writer import SessionWriter
from lumbar.types import STANDARD_G, Event, ImuBatch, SensorInfo, SessionInfo

__all__ = ["Recorder", "RecordingResult", "format_progress", "record_emulated"]

logger = logging.getLogger(__name__)
_DEG = math.pi / 180.0


@dataclass
class RecordingResult:
    """What a recording produced.

    Attributes
    ----------
    path : Path
        The session file (complete, closed).
    duration_s : float
        Recorded time on the reader's clock, s.
    status : dict of str to SensorStatus
        Final status per sensor (samples, lost samples, corrupt packets, reconnects, message).
    events : list of Event
        Markers written (connected, disconnect, reconnect, …).
    valid : bool
        Whether the file passed :func:`lumbar.storage.validate_file`.
    problems : list of str
        Validation problems (empty when valid), then warnings.
    rejected_batches : int
        Batches the writer refused (should be 0; each is logged).
    """

    path: Path
    duration_s: float
    status: dict[str, SensorStatus]
    events: list[Event]
    valid: bool
    problems: list[str] = field(default_factory=list)
    rejected_batches: int = 0


def format_progress(elapsed_s: float, status: dict[str, SensorStatus]) -> str:
    """One progress line: elapsed time, then samples and loss per sensor."""
    parts = [f"{elapsed_s:7.1f} s"]
    for sid, st in status.items():
        if st.connected:
            parts.append(f"{sid}: {st.samples} ({st.loss_pct:.1f}% lost"
                         + (f", {st.corrupt_packets} corrupt" if st.corrupt_packets else "") + ")")
        else:
            parts.append(f"{sid}: {'—' if not st.samples else st.samples} (not connected)")
    return " | ".join(parts)


class Recorder:
    """Record sensors into one session file, feeding a live bus on the way.

    Parameters
    ----------
    targets : sequence of SensorTarget
        Sensors to record.
    path : str or Path
        Session file to create.
    session : SessionInfo
        Session metadata (pseudonymous subject code).
    bus : LiveBus, optional
        Live bus the GUI reads; one is created when omitted (:attr:`bus`).
    clock : Clock, optional
        Host clock (default real); pass the emulator's clock for faster-than-real-time runs.
    scanner_backend, client_backend : type, optional
        bleak backends (default: the platform's).
    options : ReaderOptions, optional
        Reader timeouts and backoff.
    overwrite : bool
        Replace an existing file.
    discovery_timeout_s : float
        How long to scan for the sensors before the file is created, s.
    hold_clock_s : float
        With a clock that can stand still (the emulator's virtual clock), hold it while the
        sensors are found and connected, at most this many wall-clock seconds: connection set-up
        takes wall time, which a fast clock would turn into lost data. 0 (default) never holds.
    """

    def __init__(
        self,
        targets: Sequence[SensorTarget],
        path: str | Path,
        session: SessionInfo,
        *,
        bus: LiveBus | None = None,
        clock: Clock | None = None,
        scanner_backend: type[BaseBleakScanner] | None = None,
        client_backend: type[BaseBleakClient] | None = None,
        options: ReaderOptions | None = None,
        overwrite: bool = False,
        discovery_timeout_s: float = 5.0,
        hold_clock_s: float = 0.0,
    ) -> None:
        self.targets = list(targets)
        self.path = Path(path)
        self.session = session
        self.bus = bus or LiveBus()
        self.clock: Clock = clock or RealClock()
        self.overwrite = overwrite
        self.discovery_timeout_s = discovery_timeout_s
        self.hold_clock_s = float(hold_clock_s)
        self.events: list[Event] = []
        self._writer: SessionWriter | None = None
        self.cancelled_result: RecordingResult | None = None
        self._rejected = 0
        self.reader = Reader(self.targets, self._on_batch, on_event=self._on_event, on_status=self._on_status,
                             clock=self.clock, scanner_backend=scanner_backend, client_backend=client_backend,
                             options=options)
        self.origin_s = next(iter(self.reader.sensors.values())).origin_s
        for t in self.targets:
            self.bus.add_sensor(t.sensor_id, t.rate_hz)

    # ------------------------------------------------------------------ sinks
    def _on_batch(self, batch: ImuBatch) -> None:
        self.bus.push(batch)
        if self._writer is None:
            return
        try:
            self._writer.append(batch)
        except LumbarError as exc:
            self._rejected += 1
            logger.error("sensor %s: batch of %d samples not written: %s", batch.sensor_id, len(batch), exc)

    def _on_event(self, event: Event) -> None:
        self.events.append(event)
        self.bus.mark(event)
        if self._writer is not None:
            self._writer.add_event(event)

    def _on_status(self, status: SensorStatus) -> None:
        self.bus.update_status(status.sensor_id, **{k: getattr(status, k) for k in status.__dataclass_fields__ if k != "sensor_id"})

    # ------------------------------------------------------------------ run
    def _sensor_infos(self) -> list[SensorInfo]:
        infos = []
        for t in self.targets:
            r = self.reader.sensors[t.sensor_id]
            st = r.status
            rate, acc_g, gyro_dps = t.rate_hz, t.acc_range_g, t.gyro_range_dps
            if st.family:
                from lumbar.acquisition.reader import _FamilyDriver
                from lumbar_sensors import registry

                d = _FamilyDriver(registry.module(st.family), t)
                rate, acc_g, gyro_dps = d.rate_hz, d.acc_range_g, d.gyro_range_dps
            infos.append(SensorInfo(t.sensor_id, t.sensor_id, family=st.family, model=st.name,
                                    address=st.address or (t.address or ""), nominal_rate_hz=rate,
                                    acc_range_mps2=acc_g * STANDARD_G, gyro_range_rads=gyro_dps * _DEG))
        return infos

    async def run(
        self,
        duration_s: float | None = None,
        progress: Callable[[float, dict[str, SensorStatus]], None] | None = None,
        progress_interval_s: float = 1.0,
    ) -> RecordingResult:
        """Record until ``duration_s`` (clock seconds) passes or the task is cancelled.

        Parameters
        ----------
        duration_s : float, optional
            Recording length, s; ``None`` records until cancelled (Ctrl-C).
        progress : callable, optional
            ``progress(elapsed_s, status)`` called every ``progress_interval_s`` (clock time).
        progress_interval_s : float
            Seconds between progress calls.

        Returns
        -------
        RecordingResult
            Also when cancelled: the file is closed and validated first, then the
            cancellation propagates only if it came from outside (not from ``duration_s``).
        """
        from lumbar.storage.validate import validate_file
        hold = self.hold_clock_s > 0 and hasattr(self.clock, "hold")
        if hold:
            self.clock.hold()  # type: ignore[attr-defined]
        try:
            await self.reader.find_all(self.discovery_timeout_s)
            writer = SessionWriter(self.path, self.session, self._sensor_infos(), overwrite=self.overwrite)
        except BaseException:
            if hold:
                self.clock.release()  # type: ignore[attr-defined]
            raise
        self._writer = writer
        for e in self.events:
            writer.add_event(e)
        flusher = asyncio.get_running_loop().create_task(self._flush_timer(writer), name="writer flush")
        cancelled = False
        start = self.clock.monotonic()
        try:
            self.reader.start()
            if hold:
                try:
                    await self._wait_connected(self.hold_clock_s)
                finally:
                    self.clock.release()  # type: ignore[attr-defined]
                start = self.clock.monotonic()
            while duration_s is None or self.clock.monotonic() - start < duration_s:
                step = progress_interval_s if duration_s is None else min(
                    progress_interval_s, duration_s - (self.clock.monotonic() - start))
                await self.clock.sleep(max(step, 0.0))
                if progress is not None:
                    progress(self.clock.monotonic() - start, self.reader.status)
        except asyncio.CancelledError:
            cancelled = True
        finally:
            elapsed = self.clock.monotonic() - start
            await self.reader.stop()
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            self._on_event(Event(self.clock.monotonic() - self.origin_s, "recording_end",
                                 "stopped by the operator" if cancelled else f"{elapsed:.1f} s recorded"))
            self._writer = None
            writer.close()
        report = validate_file(self.path)
        result = RecordingResult(self.path, elapsed, {k: replace(v) for k, v in self.reader.status.items()},
                                 list(self.events), report.ok, [*report.problems, *report.warnings], self._rejected)
        if cancelled:
            self.cancelled_result = result
            raise asyncio.CancelledError
        return result

    async def _wait_connected(self, wall_s: float) -> None:
        """Wait (wall time) until every sensor found in the scan streams, at most ``wall_s``."""
        loop = asyncio.get_running_loop()
        end = loop.time() + wall_s
        wanted = [r for r in self.reader.sensors.values() if r.device is not None]
        while loop.time() < end and not all(r.status.connected for r in wanted):
            await asyncio.sleep(0.02)

    async def _flush_timer(self, writer: SessionWriter) -> None:
        while True:
            await asyncio.sleep(0.2)  # real time: the writer promises ≤ 0.5 s of unflushed data
            writer.flush_if_due()


DEFAULT_EMULATED_SENSORS = ("lumbar_ref:lumbar", "polar_pmd:sacrum")


def record_emulated(
    path: str | Path,
    *,
    protocol: str = "flexion",
    duration_s: float = 60.0,
    seed: int = 1,
    subject: str = "SIM001",
    time_scale: float = 50.0,
    sensors: Sequence[str] | None = None,
    overwrite: bool = True,
    progress: Callable[[float, dict[str, SensorStatus]], None] | None = None,
) -> Path:
    """Record emulated sensors on the emulated patient through bleak + Bumble into ``path``.

    The same reader, recorder and writer as with hardware; the emulator and the reader share a
    virtual clock ``time_scale`` × faster than real time, held still while the sensors connect
    so the recording starts at the patient's first movement.

    Parameters
    ----------
    path : str or Path
        Session file to write.
    protocol : str
        Movement of the emulated patient (:data:`lumbar.simulate.MOVEMENTS`), also the session's protocol.
    duration_s : float
        Seconds to record (virtual), s.
    seed : int
        Seed of the patient and of the links.
    subject : str
        Pseudonymous subject code.
    time_scale : float
        Virtual seconds per wall-clock second at most (the BLE stack's CPU cost may make it slower).
    sensors : sequence of str, optional
        ``"family:placement"`` items; default a ``lumbar_ref`` at L1 (``lumbar``) and a ``polar_pmd``
        at S1 (``sacrum``).

    Returns
    -------
    Path
        ``path``, closed and validated.

    Raises
    ------
    LumbarError
        If the file does not validate or a sensor recorded nothing.
    """
    from lumbar.acquisition.emulated import EmulatedSensor, Emulator

    out = Path(path)
    emulated = []
    for i, item in enumerate(sensors or DEFAULT_EMULATED_SENSORS):
        family, _, placement = item.partition(":")
        emulated.append(EmulatedSensor(family.strip(), placement.strip() or "lumbar", seed=i))

    async def main() -> RecordingResult:
        emu = Emulator(emulated, movement=protocol, duration_s=duration_s + 30.0, seed=seed, time_scale=time_scale)
        async with emu:
            assert emu.radio is not None
            targets = [SensorTarget(s.placement, address=emu.address(s)) for s in emulated]
            rec = Recorder(targets, out, SessionInfo(subject, protocol=protocol, notes="emulated sensors"),
                           clock=emu.clock, scanner_backend=emu.radio.scanner_backend,
                           client_backend=emu.radio.client_backend, overwrite=overwrite, hold_clock_s=20.0)
            return await rec.run(duration_s, progress)

    result = asyncio.run(main())
    if not result.valid:
        raise LumbarError(f"emulated recording {out} is not valid: {'; '.join(result.problems)}")
    empty = [sid for sid, st in result.status.items() if st.samples == 0]
    if empty:
        raise LumbarError(f"emulated recording {out}: no samples from {', '.join(empty)}")
    return out
