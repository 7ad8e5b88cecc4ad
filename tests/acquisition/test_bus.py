"""Live bus: ring buffers lose nothing a reader keeps up with, and count exactly what it missed."""
from __future__ import annotations

import asyncio
import threading

import numpy as np

from lumbar.acquisition.bus import ColumnRing, LiveBus, SampleRing
from lumbar.acquisition.replay import ReplaySource
from lumbar.types import Event, ImuBatch


def _batch(start, n, sid="lumbar"):
    k = np.arange(start, start + n)
    return ImuBatch.create(sid, k / 100.0, np.column_stack([k, k, k]).astype(float), np.zeros((n, 3)), seq=k)


def test_reader_gets_every_sample_in_order():
    ring = SampleRing("lumbar", 64)
    got, cursor = [], 0
    for i in range(0, 1000, 7):
        ring.push(_batch(i, 7))
        b, cursor, missed = ring.since(cursor)
        assert missed == 0
        got.append(b.seq)
    assert ring.total == 143 * 7
    np.testing.assert_array_equal(np.concatenate(got), np.arange(ring.total))


def test_slow_reader_is_told_what_it_missed():
    ring = SampleRing("lumbar", 50)
    ring.push(_batch(0, 30))
    b, cur, missed = ring.since(0)
    assert missed == 0 and len(b) == 30
    ring.push(_batch(30, 100))  # 100 more: only the last 50 survive
    b, cur, missed = ring.since(cur)
    assert missed == 50 and len(b) == 50
    np.testing.assert_array_equal(b.seq, np.arange(80, 130))
    np.testing.assert_array_equal(ring.latest(5).seq, np.arange(125, 130))


def test_concurrent_writer_and_reader_threads():
    ring = SampleRing("lumbar", 10_000)
    n_batches = 2000

    def writer():
        for i in range(n_batches):
            ring.push(_batch(i * 5, 5))

    t = threading.Thread(target=writer)
    t.start()
    got, cursor = [], 0
    while t.is_alive() or cursor < n_batches * 5:
        b, cursor, missed = ring.since(cursor)
        assert missed == 0
        got.append(b.seq)
    t.join()
    seq = np.concatenate(got)
    np.testing.assert_array_equal(seq, np.arange(n_batches * 5))
    # every batch is whole: acc equals seq, never a half-written row
    b = ring.latest(10_000)
    np.testing.assert_array_equal(b.acc[:, 0], b.seq.astype(float))


def test_replay_pushes_everything_with_events():
    batches = {"lumbar": _batch(0, 300, "lumbar"), "sacrum": _batch(0, 300, "sacrum")}
    src = ReplaySource(batches, {"lumbar": 100.0, "sacrum": 100.0}, [Event(1.0, "rep_start")], speed=float("inf"))
    bus = LiveBus(capacity_s=10.0)
    src.attach(bus)
    asyncio.run(src.run(bus))
    for sid in batches:
        b, _, missed = bus.rings[sid].since(0)
        assert missed == 0
        np.testing.assert_array_equal(b.seq, np.arange(300))
        assert bus.status[sid].samples == 300
    assert [e.label for e in bus.events()] == ["rep_start"]


def test_column_ring_matches_a_plain_list_across_wrap_arounds():
    rng = np.random.default_rng(3)
    ring = ColumnRing(37, (((), np.int64, 0), ((2,), np.float64, np.nan)))
    ref: list[int] = []
    cursor = 0
    for _ in range(400):
        n = int(rng.integers(0, 90))  # sometimes more than the capacity in one push
        k = np.arange(len(ref), len(ref) + n)
        ring.push((k, np.column_stack([k, -k]).astype(float)))
        ref.extend(k.tolist())
        if rng.random() < 0.3:  # a reader that sometimes falls behind by more than the capacity
            (seq, x), new, missed = ring.since(cursor)
            assert new == len(ref) and missed == max(0, len(ref) - 37 - cursor)
            np.testing.assert_array_equal(seq, ref[cursor + missed:])
            np.testing.assert_array_equal(x[:, 1], -seq.astype(float))
            cursor = new
        last = ring.latest(10)[0]
        np.testing.assert_array_equal(last, ref[-10:])


def test_reader_racing_an_overwriting_writer_never_sees_a_torn_row():
    """A ring far too small for its reader: pushes overwrite rows while the reader copies them. Whatever the
    reader gets is whole and in order, and what it got plus what it was told it missed is everything."""
    import sys

    ring = SampleRing("lumbar", 16)
    n_batches, size = 20_000, 7
    done = threading.Event()

    def writer():
        for i in range(n_batches):
            ring.push(_batch(i * size, size))
        done.set()

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # hand the interpreter over as often as it will go
    try:
        t = threading.Thread(target=writer)
        t.start()
        cursor, got, missed_total, last = 0, 0, 0, -1
        while not done.is_set() or cursor < ring.total:
            b, new, missed = ring.since(cursor)
            assert missed >= 0 and len(b) + missed == new - cursor
            if len(b):
                np.testing.assert_array_equal(b.seq, np.arange(cursor + missed, new))  # in order, no gap
                np.testing.assert_array_equal(b.acc[:, 0], b.seq.astype(float))  # every row whole
                assert b.seq[0] > last
                last = int(b.seq[-1])
            got += len(b)
            missed_total += missed
            cursor = new
        t.join()
    finally:
        sys.setswitchinterval(old)
    assert got + missed_total == n_batches * size
    assert got > 0
