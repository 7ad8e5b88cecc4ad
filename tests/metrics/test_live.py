"""Live (incremental) metrics: the same numbers as the offline versions at the end of a session."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lumbar.analysis import principal_orientation
from lumbar.errors import ValidationError
from lumbar.metrics import repetitions as rep
from lumbar.metrics import sway
from lumbar.metrics.live import LiveAnalyzer, RunningSway
from tests.metrics.emulated import evaluate


def _chunks(n: int, seed: int) -> list[slice]:
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, n), size=n // 37, replace=False))
    edges = np.concatenate([[0], cuts, [n]])
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


def _principal(movement: str, quality: str = "good", seed: int = 1, duration_s: float = 60.0):
    r = evaluate(movement, quality, seed, duration_s)
    p = r.processed
    theta = p.pelvic_tilt if movement in ("waiters-bow", "rocking", "pelvic-tilt") else p.trunk_flexion
    after = slice(p.static_window.stop, None)
    base, sign = principal_orientation(theta, p.static_window, after)
    return r, theta, base, sign


def _true_counts(r) -> tuple[int, int]:
    """The emulated patient's repetitions in the first direction and the other way (rocking: backward, then
    forward; every other movement: all in one direction)."""
    notes = [e.note for e in r.sim.events if e.label == "rep_start"]
    forward = sum(n.endswith("forward") for n in notes) if r.movement == "rocking" else 0
    return len(notes) - forward, forward


@pytest.mark.parametrize("movement", ["flexion", "rocking", "pelvic-tilt"])
def test_live_repetitions_equal_offline_on_same_samples(movement: str) -> None:
    r, theta, base, sign = _principal(movement)
    fs = r.processed.rate_hz
    rom_ref = r.analysis.results["repetitions"].rom_ref
    live = LiveAnalyzer(fs, rom_ref=rom_ref, base=base, lowpass_hz=None)
    counts = []
    for sl in _chunks(theta.size, 7):
        live.update(theta[sl])
        counts.append(live.rep_count)
    got = live.finish()
    want = rep.segment_repetitions(sign * (theta - base), fs, lo=0.2 * rom_ref, hi=0.6 * rom_ref, rom_ref=rom_ref,
                                   lowpass_hz=None)
    assert np.all(np.diff(counts) >= 0)
    assert got.count == want.count == _true_counts(r)[0]
    for a, b in zip(got.repetitions, want.repetitions):
        assert (a.start_idx, a.peak_idx, a.end_idx) == (b.start_idx, b.peak_idx, b.end_idx)
        for name in ("rom", "range", "duration_s", "peak_velocity_out", "sparc", "ldlj"):
            assert getattr(a, name) == getattr(b, name), name
    assert live.last_repetition is not None and live.last_repetition.end_idx == want.repetitions[-1].end_idx


@pytest.mark.parametrize("quality", ["good", "poor"])
def test_live_causal_counter_agrees_with_offline_analysis(quality: str) -> None:
    """Causally filtered live data: same count, ROMs within 0.5° of the zero-lag offline analysis."""
    r, theta, base, _ = _principal("waiters-bow", quality, 2)
    rs = r.analysis.results["repetitions"]
    live = LiveAnalyzer(r.processed.rate_hz, rom_ref=rs.rom_ref, base=base)  # causal 5-Hz low-pass
    for sl in _chunks(theta.size, 3):
        live.update(theta[sl])
    got = live.finish()
    assert got.count == rs.count == r.true_count
    assert np.max(np.abs(np.degrees(got.values("rom") - rs.values("rom")))) < 0.5
    snap = live.snapshot()
    assert snap.rep_count == rs.count and math.isfinite(snap.angle)
    assert snap.to_dict(display=True)["last_repetition"]["rom"] == pytest.approx(math.degrees(got.repetitions[-1].rom))


def test_running_sway_equals_offline_unfiltered() -> None:
    r = evaluate("quiet-standing", "good", 2)
    p = r.processed
    acc = p.acc["sacrum"][p.static_window.stop :]
    fs = p.rate_hz
    live = LiveAnalyzer(fs, sway=True)
    for sl in _chunks(acc.shape[0], 11):
        live.update(acc=acc[sl])
    s = live.snapshot()
    off = sway.sway_from_acc(acc, fs, cutoff_hz=None)
    assert s.sway_n == off.combined.n_samples
    for a, b in ((s.sway_rms_ap, off.ap.rms), (s.sway_rms_ml, off.ml.rms), (s.sway_rms, off.combined.rms),
                 (s.sway_area_ce, off.combined.area_ce)):
        assert a == pytest.approx(b, rel=1e-9)
    # and close to the default (3.5-Hz low-passed) offline value: sensor noise adds a little
    filt = r.analysis.results["sway"].combined.rms
    assert filt <= s.sway_rms <= 1.05 * filt


def test_running_sway_invalid_with_nan_and_before_enough_samples() -> None:
    rs = RunningSway(100.0)
    assert math.isnan(rs.values()[0])
    rs.update(np.tile([0.0, 9.8, 0.0], (500, 1)) + np.random.default_rng(1).normal(0, 0.05, (500, 3)))
    assert math.isfinite(rs.values()[2])
    rs.update(np.full((3, 3), np.nan))
    assert math.isnan(rs.values()[2])


def test_live_without_counting_and_gap_rejected() -> None:
    fs = 100.0
    t = np.arange(3000) / fs
    theta = np.radians(25 * (1 - np.cos(2 * np.pi * t / 4)))
    theta[1510:1530] = np.nan  # a gap inside the 4th repetition
    live = LiveAnalyzer(fs, rom_ref=math.radians(50), lowpass_hz=None)
    for sl in _chunks(t.size, 5):
        live.update(theta[sl])
    rs = live.finish()
    # 7 complete cycles (the 8th has not returned by the end); the one with the gap is rejected
    assert rs.count == 6 and len(rs.rejected) == 1 and "gap" in rs.rejected[0].reason
    assert LiveAnalyzer(fs).finish() is None


@pytest.mark.parametrize("movement", ["flexion", "waiters-bow", "rocking", "pelvic-tilt"])
def test_live_counter_learns_the_range_from_the_first_repetition(movement: str) -> None:
    """No range given (the patient's own, as in an assessment): the first excursion beyond the floor sets
    it; every repetition of the emulated patient is counted, in the direction the offline analysis takes,
    and the set equals the offline segmentation with the learnt thresholds."""
    r, theta, base, sign = _principal(movement)
    fs = r.processed.rate_hz
    after = slice(r.processed.static_window.stop, None)  # the task, as the assessment feeds it from "go"
    live = LiveAnalyzer(fs, base=base, lowpass_hz=None, rom_floor=math.radians(5))
    for sl in _chunks(theta[after].size, 5):
        live.update(theta[after][sl])
    got = live.finish()
    learnt = live.rom_ref
    offline = r.analysis.results["repetitions"]
    assert live.sign == sign
    # one direction only (rocking: the backward rocks; both ways in the test below)
    assert got.count == live.rep_count == _true_counts(r)[0]
    # the first repetition's peak against the trial's P95: the same range, for an even performance
    assert 0.85 < learnt / offline.rom_ref < 1.2
    want = rep.segment_repetitions(sign * (theta[after] - base), fs, lo=0.2 * learnt, hi=0.6 * learnt,
                                   rom_ref=learnt, lowpass_hz=None)
    assert [(a.start_idx, a.end_idx, a.rom) for a in got.repetitions] == \
        [(b.start_idx, b.end_idx, b.rom) for b in want.repetitions]


@pytest.mark.parametrize("quality", ["good", "poor"])
def test_live_counter_counts_rocking_both_ways(quality: str) -> None:
    """Rocking backward five times, then forward five times (the emulated patient's truth): with
    ``both_directions`` the live counter learns each direction's range from its first rock and counts all ten,
    as many as the offline analysis's two sets; each set equals the offline segmentation of its direction with
    the learnt thresholds. Counting one direction only (the counter before) gives five: the assessment's trial
    of ten repetitions would never stop at its count."""
    r, theta, base, sign = _principal("rocking", quality, 1, duration_s=75.0)
    fs = r.processed.rate_hz
    after = slice(r.processed.static_window.stop, None)
    y = theta[after] - base
    back, fwd = _true_counts(r)
    assert (back, fwd) == (5, 5)
    res = r.analysis.results
    offline = (res["repetitions"].count, res["repetitions_forward"].count)
    assert offline == (back, fwd)
    live = LiveAnalyzer(fs, base=base, lowpass_hz=None, rom_floor=math.radians(5), both_directions=True)
    counts = []
    for sl in _chunks(y.size, 5):
        live.update(theta[after][sl])
        counts.append(live.rep_count)
    first = live.finish()
    assert np.all(np.diff(counts) >= 0) and counts[-1] == live.rep_count == back + fwd == sum(offline) == 10
    assert live.sign == sign == -1  # the pelvis tilts back first (posterior: negative)
    assert (first.count, live.opposite_set.count) == (back, fwd)
    for got, s, ref in ((first, sign, live.rom_ref), (live.opposite_set, -sign, live.rom_ref_opposite)):
        want = rep.segment_repetitions(s * y, fs, lo=0.2 * ref, hi=0.6 * ref, rom_ref=ref, lowpass_hz=None)
        assert [(a.start_idx, a.end_idx, a.rom) for a in got.repetitions] == \
            [(b.start_idx, b.end_idx, b.rom) for b in want.repetitions]
    # each range from its own first rock: the forward rock is the smaller (0.75 of the thigh rotation)
    assert 0.85 < live.rom_ref / res["repetitions"].rom_ref < 1.2
    assert 0.85 < live.rom_ref_opposite / res["repetitions_forward"].rom_ref < 1.2
    # as the assessment runs it: causal 5-Hz low-pass; same total
    causal = LiveAnalyzer(fs, base=base, rom_floor=math.radians(5), both_directions=True)
    for sl in _chunks(y.size, 3):
        causal.update(theta[after][sl])
    assert causal.rep_count == 10
    # one direction only: half of them
    one = LiveAnalyzer(fs, base=base, rom_floor=math.radians(5))
    one.update(theta[after])
    assert one.rep_count == back
    with pytest.raises(ValidationError):
        LiveAnalyzer(fs, rom_ref=0.2, both_directions=True)


def test_live_counter_with_a_learnt_range_ignores_wobble_at_rest() -> None:
    """Standing with a 2° wobble and then three 12° tilts backwards: the wobble (below the 5° floor) is
    neither counted nor taken for the range; the tilts are counted, backwards as positive."""
    fs = 100.0
    rng = np.random.default_rng(4)
    t = np.arange(2800) / fs
    wobble = np.radians(2.0) * np.sin(2 * np.pi * 0.3 * t[:1000]) + rng.normal(0, np.radians(0.3), 1000)
    cycles = -np.radians(6.0) * (1 - np.cos(2 * np.pi * t[:1800] / 6.0))  # three 12° excursions, 6 s each
    theta = np.concatenate([wobble, cycles + rng.normal(0, np.radians(0.3), 1800)])
    live = LiveAnalyzer(fs, rom_floor=math.radians(5))
    counts = []
    for sl in _chunks(t.size, 9):
        live.update(theta[sl])
        counts.append(live.rep_count)
    assert counts[len(counts) // 5] == 0  # the wobble alone counts nothing
    rs = live.finish()
    assert live.sign == -1 and rs.count == 3
    assert math.degrees(live.rom_ref) == pytest.approx(12.0, abs=1.0)
    still = LiveAnalyzer(fs, rom_floor=math.radians(5))
    still.update(wobble)
    none = still.finish()
    assert none.count == 0 and not none.valid and "no movement beyond 5°" in none.reason
