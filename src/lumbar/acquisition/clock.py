"""Host clocks for acquisition: the real monotonic clock and a virtual, faster-than-real-time one.

The reader never calls :func:`time.monotonic` or :func:`asyncio.sleep` directly: it is given a
clock. With :class:`RealClock` (the default, used with hardware) that is exactly what it does.
With :class:`VirtualClock` the emulator and the reader share one time line that runs ``scale``
times faster than the wall clock, so a 10-minute emulated recording takes well under a minute.

:class:`VirtualClock` is a *discrete-event* clock: its time only moves when a sleeper's
deadline is reached (or a short idle tick passes), and it stands still while callbacks run.
A notification the emulator sends at virtual time ``t`` is therefore stamped ``t`` by the
reader's notify callback, whatever the CPU load -- unless the loop is so busy that the
clock had to move on first, in which case the stamp is late (never early), exactly like BLE
latency. That keeps the timing figures of a fast run meaningful.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol

from lumbar.errors import ValidationError

__all__ = ["Clock", "RealClock", "VirtualClock"]

_MIN_WAIT_S = 0.002


class Clock(Protocol):
    """What the reader and the emulator need from a clock (seconds, monotonic)."""

    scale: float

    def monotonic(self) -> float:
        """Current time, s."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...

    async def sleep_until(self, when: float) -> None:
        """Wait until :meth:`monotonic` reaches ``when``."""
        ...

    def real_seconds(self, seconds: float) -> float:
        """Wall-clock seconds that ``seconds`` of this clock last (for timeouts of libraries)."""
        ...


class RealClock:
    """The host's monotonic clock (:func:`time.monotonic`, :func:`asyncio.sleep`)."""

    scale = 1.0

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def sleep_until(self, when: float) -> None:
        await asyncio.sleep(max(0.0, when - time.monotonic()))

    def real_seconds(self, seconds: float) -> float:
        return seconds


class VirtualClock:
    """A discrete-event clock paced at ``scale`` × real time.

    Parameters
    ----------
    scale : float
        Virtual seconds per wall-clock second (1 = real time). The clock never runs ahead of
        this pace; when the loop cannot keep up it simply runs slower (no time is skipped,
        so no emulated sample is lost to load).
    idle_tick_s : float
        Largest virtual step while nobody sleeps, s (the clock keeps moving when idle).
    settle_iterations : int
        Loop iterations given to woken tasks (and the packets they send through the stack)
        before time moves on.

    Notes
    -----
    Start it with :meth:`start` inside the running loop (the emulator does); :meth:`stop`
    ends the driver task. Time starts at 0.
    """

    def __init__(self, scale: float = 1.0, *, idle_tick_s: float = 0.01, settle_iterations: int = 6) -> None:
        if not scale > 0:
            raise ValidationError(f"time scale must be > 0, got {scale}")
        self.scale = float(scale)
        self.idle_tick_s = float(idle_tick_s)
        self.settle_iterations = int(settle_iterations)
        self._now = 0.0
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._target = float("inf")
        self._held = False
        self._unheld: asyncio.Future[None] | None = None

    def hold(self) -> None:
        """Stop time where it is (e.g. while sensors connect, which takes wall time that a fast
        clock would turn into lost data); sleepers wait until :meth:`release`."""
        self._held = True
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def release(self) -> None:
        """Let time run again, paced from now."""
        self._held = False
        if self._unheld is not None and not self._unheld.done():
            self._unheld.set_result(None)

    @property
    def held(self) -> bool:
        return self._held

    def monotonic(self) -> float:
        return self._now

    def real_seconds(self, seconds: float) -> float:
        # A library timeout guards work that takes real time (radio set-up, the stack's own
        # processing under load), so it is never cut below 1 s of wall time by the scale.
        return max(seconds / self.scale, min(seconds, 1.0))

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._now + max(0.0, seconds))

    async def sleep_until(self, when: float) -> None:
        if when <= self._now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (when, next(self._counter), fut))
        if when < self._target and self._wake is not None and not self._wake.done():
            self._wake.set_result(None)  # the driver is waiting for a later deadline
        await fut

    def start(self) -> None:
        """Start the driver task in the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drive(), name="virtual-clock")

    async def stop(self) -> None:
        """Stop the driver task; pending sleepers are cancelled."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        for _, _, fut in self._heap:
            fut.cancel()
        self._heap.clear()

    async def _drive(self) -> None:
        loop = asyncio.get_running_loop()
        wall0, v0 = loop.time(), self._now
        while True:
            if self._held:
                self._unheld = loop.create_future()
                await self._unheld
                self._unheld = None
                wall0, v0 = loop.time(), self._now
                continue
            nxt = self._heap[0][0] if self._heap else float("inf")
            target = min(nxt, self._now + self.idle_tick_s)
            self._target = target
            delay = wall0 + (target - v0) / self.scale - loop.time()
            # The selector sleeps in whole milliseconds: shorter waits are taken as "now", so the
            # clock may run up to _MIN_WAIT_S of wall time ahead of its pace, never more.
            if delay > _MIN_WAIT_S:
                self._wake = loop.create_future()
                handle = loop.call_later(delay, _resolve, self._wake)
                await self._wake
                handle.cancel()
                self._wake = None
                if self._held or (self._heap and self._heap[0][0] < target):
                    continue  # held, or an earlier sleeper arrived: recompute
                if loop.time() < wall0 + (target - v0) / self.scale - _MIN_WAIT_S:
                    continue
            elif delay < -0.25:
                # Far behind (the loop was busy): do not race to catch up, re-anchor the pace.
                wall0, v0 = loop.time(), self._now
            self._now = max(self._now, target)
            woke = False
            while self._heap and self._heap[0][0] <= self._now:
                _, _, fut = heapq.heappop(self._heap)
                if not fut.done():
                    fut.set_result(None)
                    woke = True
            for _ in range(self.settle_iterations if woke else 1):
                await asyncio.sleep(0)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
