"""Accuracy sweep of the metrics on the emulated patient (the large version of tests/metrics/test_emulated.py).

For every movement, good and poor control, seeds 1..N (default 100), 60-s trials with the default
commodity IMU errors: simulate → process → analyse in memory, and compare with the truth (see
``tests/metrics/emulated.py`` for what "truth" means for each quantity).

    python tests/benchmarks/sweep_emulated.py [--sets 100] [--duration 60]

Prints the repetition-count accuracy (exact, off by one, worse), the worst ROM and lumbo-pelvic
ratio errors, the worst sway RMS / ellipse-area relative errors, and the separation of each poor
mode from its good mode on the metric that should catch it. Exit status 1 if a done-when criterion
of issue 6 fails.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.metrics.emulated import MOVEMENTS, TRUTH_PRINCIPAL, evaluate, separation_metric  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", type=int, default=100, help="seeds per movement and quality (default 100)")
    ap.add_argument("--duration", type=float, default=60.0)
    args = ap.parse_args(argv)
    ok = True
    t0 = time.perf_counter()
    n_sets = exact = off1 = worse = 0
    rom_err: list[float] = []
    ratio_err: list[float] = []
    rep_ratio_err: list[float] = []
    sway_err: dict[str, list[float]] = {}
    sep: dict[tuple[str, str], list[float]] = {}
    failures: list[str] = []
    for mv in MOVEMENTS:
        for quality in ("good", "poor"):
            for seed in range(1, args.sets + 1):
                try:
                    r = evaluate(mv, quality, seed, duration_s=args.duration)
                except Exception as e:  # a set that cannot be analysed is a failure, reported
                    ok = False
                    failures.append(f"{mv} {quality} seed {seed}: {type(e).__name__}: {e}")
                    continue
                if mv in TRUTH_PRINCIPAL:
                    n_sets += 1
                    d = abs(r.count - r.true_count)
                    exact += d == 0
                    off1 += d == 1
                    worse += d > 1
                    if d:
                        failures.append(f"{mv} {quality} seed {seed}: counted {r.count}, true {r.true_count}")
                    rom_err += r.rom_err_deg
                if math.isfinite(r.ratio):
                    ratio_err.append(r.ratio - r.true_ratio)
                    rep_ratio_err += r.rep_ratio_err
                for k, v in r.sway_rel_err.items():
                    sway_err.setdefault(k, []).append(v)
                name, value = separation_metric(r)
                sep.setdefault((mv, name), [[], []])[quality == "poor"].append(value)
    el = time.perf_counter() - t0
    print(f"{len(MOVEMENTS) * 2 * args.sets} sets of {args.duration:g} s in {el:.0f} s")
    pct = 100.0 * exact / n_sets
    print(f"repetition count: {exact}/{n_sets} exact ({pct:.2f} %), {off1} off by one, {worse} off by more")
    for f in failures[:20]:
        print("   ", f)
    ok &= pct >= 98.0 and worse == 0
    re = np.abs(rom_err)
    print(f"ROM error: {re.size} repetitions, max |error| {re.max():.2f}°, 99th pct {np.percentile(re, 99):.2f}°, "
          f"mean {np.mean(rom_err):+.2f}°")
    ok &= re.max() <= 1.5
    ra = np.abs(ratio_err)
    rr = np.abs(rep_ratio_err)
    print(f"lumbo-pelvic ratio (set mean): max |error| {ra.max():.3f}, mean {np.mean(ratio_err):+.3f}; "
          f"per repetition: max |error| {rr.max():.3f}, 99th pct {np.percentile(rr, 99):.3f}")
    ok &= ra.max() <= 0.05
    for k, v in sway_err.items():
        a = 100 * np.abs(v)
        print(f"sway {k}: max |relative error| {a.max():.1f} %, mean {100 * np.mean(v):+.1f} % ({len(v)} trials)")
        if k in ("rms", "area_ce"):
            ok &= a.max() <= 10.0
    print("separation of poor from good control (metric: good range | poor range; overlap?)")
    for (mv, name), (g, p) in sep.items():
        g, p = np.array(g), np.array(p)
        overlap = not (g.max() < p.min() or p.max() < g.min())
        ok &= not overlap
        print(f"  {mv:24s} {name:38s} good {g.min():8.3f}..{g.max():8.3f} | poor {p.min():8.3f}..{p.max():8.3f}"
              f"{'  OVERLAP' if overlap else ''}")
    print("all criteria met" if ok else "SOME CRITERIA NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
