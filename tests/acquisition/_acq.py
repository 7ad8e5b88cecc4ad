"""Helpers for the acquisition tests: run a recording against the emulator, compare with its log."""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lumbar.acquisition.emulated import EmulatedSensor, Emulator
from lumbar.acquisition.reader import ReaderOptions, SensorTarget
from lumbar.acquisition.recorder import Recorder, RecordingResult
from lumbar.storage import read_session
from lumbar.storage.reader import Session
from lumbar.types import ImuBatch, SessionInfo


@dataclass
class Run:
    emulator: Emulator
    recorder: Recorder
    result: RecordingResult
    session: Session


def record(
    sensors: Sequence[EmulatedSensor],
    path: Path,
    duration_s: float,
    *,
    time_scale: float = 20.0,
    extra_targets: Sequence[SensorTarget] = (),
    options: ReaderOptions | None = None,
    **emulator_kwargs: object,
) -> Run:
    """Emulate ``sensors``, record them (plus ``extra_targets``) for ``duration_s`` into ``path``."""

    async def main() -> Run:
        emu = Emulator(sensors, duration_s=duration_s + 30.0, time_scale=time_scale, **emulator_kwargs)  # type: ignore[arg-type]
        async with emu:
            assert emu.radio is not None
            targets = [SensorTarget(s.placement, address=emu.address(s)) for s in sensors] + list(extra_targets)
            rec = Recorder(targets, path, SessionInfo("EMU001", protocol="flexion"), clock=emu.clock,
                           scanner_backend=emu.radio.scanner_backend, client_backend=emu.radio.client_backend,
                           options=options, discovery_timeout_s=2.0)
            result = await rec.run(duration_s)
        return Run(emu, rec, result, read_session(path))

    return asyncio.run(main())


def match(batch: ImuBatch, log_device_time_s: np.ndarray, tol_s: float = 3e-6) -> tuple[np.ndarray, np.ndarray]:
    """For each file sample, the index of the log entry with the same device time (-1 if none).

    Returns
    -------
    (index, ok) : ndarray of int, ndarray of bool, shape (N,)
    """
    lk = np.asarray(log_device_time_s)
    order = np.argsort(lk)
    s = lk[order]
    j = np.clip(np.searchsorted(s, batch.device_time_s), 1, len(s) - 1)
    left, right = s[j - 1], s[j]
    pick = np.where(np.abs(batch.device_time_s - left) <= np.abs(batch.device_time_s - right), j - 1, j)
    ok = np.abs(s[pick] - batch.device_time_s) <= tol_s
    return np.where(ok, order[pick], -1), ok
