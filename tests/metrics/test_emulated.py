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
        rs = r.analysis.results["repetitions"]
        true_dur = np.diff(r.sim.truth.to_arrays()["rep_bounds_s"][:, [0, 2]], axis=1)[:, 0]
        # onset/offset are where the speed crosses 5 °/s: a little inside the true ramps
        assert np.all(rs.values("duration_s") <= true_dur + 0.05)
        assert np.all(rs.values("duration_s") >= true_dur - 0.6)
