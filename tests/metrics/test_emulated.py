"""Metrics against the emulated patient's truth (issue 6, "done when").

A handful of seeds per movement and quality keeps the default run fast (each set is simulated and
analysed in memory in about 0.1 s); ``tests/benchmarks/sweep_emulated.py`` runs the same checks on
100 seeds. What "truth" means for each quantity is documented in ``tests/metrics/emulated.py``.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from tests.metrics.emulated import MOVEMENTS, SEPARATION, TRUTH_PRINCIPAL, evaluate, separation_metric

SEEDS = (1, 2, 3)
QUALITIES = ("good", "poor")


@functools.lru_cache(maxsize=None)
def run(movement: str, quality: str, seed: int):
    return evaluate(movement, quality, seed)


@pytest.mark.parametrize("quality", QUALITIES)
@pytest.mark.parametrize("movement", sorted(TRUTH_PRINCIPAL))
def test_repetition_count_and_rom(movement: str, quality: str) -> None:
    for seed in SEEDS:
        r = run(movement, quality, seed)
        assert r.count == r.true_count, f"seed {seed}: counted {r.count}, true {r.true_count}"
        assert len(r.rom_err_deg) == r.true_count
        assert np.max(np.abs(r.rom_err_deg)) <= 1.5, f"seed {seed}: ROM errors {r.rom_err_deg}"


@pytest.mark.parametrize("quality", QUALITIES)
def test_lumbo_pelvic_ratio(quality: str) -> None:
    for seed in SEEDS:
        r = run("flexion", quality, seed)
        assert abs(r.ratio - r.true_ratio) <= 0.05, (seed, r.ratio, r.true_ratio)
        assert np.max(np.abs(r.rep_ratio_err)) <= 0.05


@pytest.mark.parametrize("quality", QUALITIES)
@pytest.mark.parametrize("movement", ["quiet-standing", "one-leg-stance"])
def test_sway_against_true_specific_force(movement: str, quality: str) -> None:
    for seed in SEEDS:
        err = run(movement, quality, seed).sway_rel_err
        assert abs(err["rms"]) <= 0.10 and abs(err["area_ce"]) <= 0.10, (seed, err)


def test_eyes_closed_sway_larger_than_open() -> None:
    eo = evaluate("quiet-standing", "good", 4, eyes="open").analysis.results["sway"].combined.rms
    ec = evaluate("quiet-standing", "good", 4, eyes="closed").analysis.results["sway"].combined.rms
    assert ec > 1.2 * eo  # the emulated EC/EO factor is 1.35


@pytest.mark.parametrize("movement", MOVEMENTS)
def test_poor_control_separated_by_its_metric(movement: str) -> None:
    """Every seed's poor value lies beyond every seed's good value, on the metric that should catch it."""
    good = [separation_metric(run(movement, "good", s))[1] for s in SEEDS]
    poor = [separation_metric(run(movement, "poor", s))[1] for s in SEEDS]
    name = SEPARATION[movement][0]
    if movement == "flexion":  # poor control: less lumbar, more pelvis (lower ratio)
        assert max(poor) < min(good), (name, good, poor)
    else:
        assert min(poor) > max(good), (name, good, poor)


@pytest.mark.parametrize("movement", ["waiters-bow", "pelvic-tilt", "rocking", "sitting-knee-extension"])
def test_movement_control_verdicts(movement: str) -> None:
    for seed in SEEDS:
        good = run(movement, "good", seed).analysis.results["dissociation"]
        poor = run(movement, "poor", seed).analysis.results["dissociation"]
        assert good.valid and good.passed, (seed, good)
        assert poor.valid and not poor.passed, (seed, poor)


def test_waiters_bow_good_reaches_target() -> None:
    for seed in SEEDS:
        d = run("waiters-bow", "good", seed).analysis.results["dissociation"]
        assert d.target_reached and math.degrees(d.excursion_a) >= 50.0


def test_repetition_duration_is_movement_time() -> None:
    """Duration runs from movement onset to offset (rest pauses excluded), as in the truth bounds."""
    for movement in ("flexion", "waiters-bow", "rocking"):
        r = run(movement, "good", 1)
        res = r.analysis.results
        # rocking: the backward rocks, then the forward ones (the true order)
        dur = np.concatenate([res[k].values("duration_s") for k in ("repetitions", "repetitions_forward") if k in res])
        true_dur = np.diff(r.sim.truth.to_arrays()["rep_bounds_s"][:, [0, 2]], axis=1)[:, 0]
        # onset/offset are where the speed crosses 5 °/s: a little inside the true ramps
        assert np.all(dur <= true_dur + 0.05)
        assert np.all(dur >= true_dur - 0.6)


def _true_leak_deg(r, forward: bool) -> tuple[float, float]:
    """The emulated patient's true pelvic excursion and lumbar leak (deg) over one direction's rocks (their
    true bounds, from the task's start): pelvic tilt backward (posterior, −) or forward (anterior, +), lumbar
    flexion backward or extension forward."""
    a = r.sim.truth.to_arrays()
    t, pel, lum = a["time_s"], a["pelvis_tilt_rad"], a["lumbar_angles_rad"][:, 0]
    notes = [e.note for e in r.sim.events if e.label == "rep_start"]
    k0 = int(np.searchsorted(t, float(r.processed.time_s[r.processed.static_window.stop])))
    s = 1.0 if forward else -1.0
    win = np.zeros(t.size, bool)
    for (t0, _, t1), note in zip(a["rep_bounds_s"], notes):
        if note.endswith("forward") == forward:
            win |= (t >= t0) & (t <= t1)
    return (math.degrees(np.max(s * (pel[win] - pel[k0]))),
            math.degrees(np.max(np.clip(-s * (lum[win] - lum[k0]), 0.0, None))))


@pytest.mark.parametrize("quality", QUALITIES)
def test_rocking_each_direction_has_its_own_dissociation(quality: str) -> None:
    """Rocking backward then forward: each direction's dissociation measures its own rocks only: the pelvic
    excursion and the lumbar leak of that direction's rocks (flexion backward, extension forward) within 1.5°
    of the truth; good control passes both ways, poor fails both ways (the emulated leak is 15° each way)."""
    for seed in SEEDS:
        r = run("rocking", quality, seed)
        for name, forward in (("dissociation", False), ("dissociation_forward", True)):
            d = r.analysis.results[name]
            exc, leak = _true_leak_deg(r, forward)
            assert d.valid and d.passed == (quality == "good"), (seed, name, d)
            assert abs(math.degrees(d.excursion_a) - exc) <= 1.5, (seed, name, d.excursion_a, exc)
            assert abs(math.degrees(d.excursion_b) - leak) <= 1.5, (seed, name, d.excursion_b, leak)


def test_rocking_forward_leak_separates_poor_from_good() -> None:
    good = [separation_metric(run("rocking", "good", s), "rocking-forward")[1] for s in SEEDS]
    poor = [separation_metric(run("rocking", "poor", s), "rocking-forward")[1] for s in SEEDS]
    assert min(poor) > 10.0 > max(good), (good, poor)
