"""Replay a session file (or an emulated patient) onto a :class:`LiveBus` in real time.

A source with the reader's shape, without radio: the GUI's live views and biofeedback can be
developed and tested on recorded or simulated data, at any speed.
"""
from __future__ import annotations

import asyncio
import time
from typing import Mapping

import numpy as np

from lumbar.acquisition.bus import LiveBus
from lumbar.errors import ValidationError
from lumbar.types import Event, ImuBatch

__all__ = ["ReplaySource"]


class ReplaySource:
    """Pushes batches of ``block`` samples per sensor at the pace of their timestamps.

    Parameters
    ----------
    batches : mapping of sensor id to ImuBatch
        Whole recordings (e.g. ``read_session(path).data`` or ``simulate(...).batches``).
    rates_hz : mapping of sensor id to float
        Nominal rates (ring sizes).
    events : list of Event
        Markers replayed at their times.
    speed : float
        1.0 = real time; larger is faster; ``inf`` pushes everything as fast as possible.
    block : int
        Samples per push (a BLE notification carries a few).
    """

    def __init__(self, batches: Mapping[str, ImuBatch], rates_hz: Mapping[str, float], events: list[Event] = (),
                 *, speed: float = 1.0, block: int = 10) -> None:
        if not speed > 0:
            raise ValidationError(f"speed must be > 0; got {speed}")
        self.batches = dict(batches)
        self.rates_hz = dict(rates_hz)
        self.events = sorted(events, key=lambda e: e.time_s)
        self.speed = float(speed)
        self.block = int(block)
        self.finished = asyncio.Event()

    def attach(self, bus: LiveBus) -> None:
        for sid in self.batches:
            bus.add_sensor(sid, self.rates_hz.get(sid, 100.0))
            bus.update_status(sid, connected=True, family="replay", name=sid)

    async def run(self, bus: LiveBus) -> None:
        """Push everything, sleeping so that data time advances at ``speed`` × wall time."""
        t0_data = min(float(b.time_s[0]) for b in self.batches.values() if len(b))
        t0_wall = time.monotonic()
        cursors = {sid: 0 for sid in self.batches}
        ev_i = 0
        while True:
            # next block boundary across sensors
            pending = {sid: b for sid, b in self.batches.items() if cursors[sid] < len(b)}
            if not pending:
                break
            sid, b = min(pending.items(), key=lambda kv: kv[1].time_s[min(cursors[kv[0]] + self.block, len(kv[1])) - 1])
            i0 = cursors[sid]
            i1 = min(i0 + self.block, len(b))
            t_data = float(b.time_s[i1 - 1])
            if np.isfinite(self.speed):
                delay = (t_data - t0_data) / self.speed - (time.monotonic() - t0_wall)
                if delay > 0:
                    await asyncio.sleep(delay)
            while ev_i < len(self.events) and self.events[ev_i].time_s <= t_data:
                bus.mark(self.events[ev_i])
                ev_i += 1
            bus.push(b[i0:i1])
            cursors[sid] = i1
            st = bus.status[sid]
            bus.update_status(sid, samples=st.samples + (i1 - i0))
            if not np.isfinite(self.speed):
                await asyncio.sleep(0)
        self.finished.set()
