"""Throughput of our orientation kernels and of peers on one identical input, in one run.

Usage::

    python tests/benchmarks/bench_orientation.py [--samples 1000000] [--repeats 5] [--ahrs-samples N]

Prints samples/s (median of ``--repeats`` runs; peers that take seconds per run fewer
times) for each numba kernel and, side by side, vqf (C++ batch calls), imufusion (one
Python call per sample: it has no batch API) and ahrs (pure Python), with ratios. Also:

* the one-time compile cost (a fresh process with an empty numba cache directory), and
* the time from a fresh process start to the first processed sample with a warm cache.

Peers are the ``bench`` extra; a missing one is reported and skipped.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
RATE_HZ = 200.0


def make_input(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic 6D input: smooth random rotation rates, gravity + noise. (acc, gyr)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / RATE_HZ
    gyr = np.stack([0.8 * np.sin(2 * np.pi * f * t + p) for f, p in zip((0.3, 0.45, 0.2), rng.uniform(0, 6, 3))], 1)
    gyr += 0.01 + 0.005 * rng.standard_normal((n, 3))
    acc = np.tile([0.0, 0.0, 9.81], (n, 1)) + 0.3 * rng.standard_normal((n, 3))
    acc[:, 0] += 9.81 * np.sin(0.5 * np.sin(2 * np.pi * 0.1 * t))
    return np.ascontiguousarray(acc), np.ascontiguousarray(gyr)


def timeit(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time (s) of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


_FIRST_SAMPLE = """
import time, sys
t_start = float(sys.argv[1])
import numpy as np
from lumbar.filters import VQFFilter
f = VQFFilter(200.0)
q, d = f.process(np.array([[0.0, 0.0, 9.81]]), np.array([[0.0, 0.0, 0.0]]))
t_first = time.time()
import lumbar.filters._orientation_numba as k
t0 = time.perf_counter()
for name in ("madgwick", "mahony"):
    filt = getattr(__import__("lumbar.filters", fromlist=["x"]), name.capitalize() + "Filter")(200.0)
    filt.process(np.array([[0.0, 0.0, 9.81]]), np.zeros((1, 3)))
from lumbar.filters import vqf_offline
vqf_offline(np.tile([0.0, 0.0, 9.81], (4, 1)), np.zeros((4, 3)), 200.0)
t_rest = time.perf_counter() - t0
print(t_first - t_start, t_rest)
"""


def fresh_process(cache_dir: str | None) -> tuple[float, float]:
    """(start → first VQF sample, s; then the other three kernels, s) in a new interpreter."""
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    t_start = time.time()
    out = subprocess.run(
        [sys.executable, "-c", _FIRST_SAMPLE, repr(t_start)], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), float(out[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ahrs-samples", type=int, default=None,
                    help="run the pure-Python ahrs filters on the first N samples only (default: all)")
    args = ap.parse_args(argv)
    n = args.samples
    acc, gyr = make_input(n)
    print(f"input: {n} samples at {RATE_HZ:g} Hz, float64, C-contiguous; median of {args.repeats} runs\n")

    # ---- start-up -----------------------------------------------------------------
    with tempfile.TemporaryDirectory() as empty_cache:
        cold_first, cold_rest = fresh_process(empty_cache)
    fresh_process(None)  # make sure the default cache is warm
    warm = [fresh_process(None) for _ in range(3)]
    warm_first = statistics.median(w[0] for w in warm)
    warm_rest = statistics.median(w[1] for w in warm)

    # ---- ours ---------------------------------------------------------------------
    from lumbar.filters import MadgwickFilter, MahonyFilter, VQFFilter
    from lumbar.filters import _orientation_numba as k
    from lumbar.filters.orientation import _offline

    results: dict[str, float] = {}
    quat = np.empty((n, 4))
    bias = np.empty((n, 3))
    sigma = np.empty(n)
    flags = np.empty(n, dtype=np.bool_)

    mw = MadgwickFilter(RATE_HZ)
    mh = MahonyFilter(RATE_HZ)
    vq = VQFFilter(RATE_HZ)

    def ours_mw() -> None:
        mw.reset()
        k.madgwick_run(gyr, acc, mw._coeffs, mw._state, quat, flags)

    def ours_mh() -> None:
        mh.reset()
        k.mahony_run(gyr, acc, mh._coeffs, mh._state, quat, bias, flags)

    def ours_vqf() -> None:
        vq.reset()
        k.vqf_run(gyr, acc, vq._coeffs, vq._state, quat, bias, sigma, flags)

    from lumbar.filters import VQFParams

    params = VQFParams()
    for fn in (ours_mw, ours_mh, ours_vqf):
        fn()  # load from cache / compile outside the timing
    _offline(acc[:10], gyr[:10], RATE_HZ, params)
    results["lumbar madgwick_run (numba)"] = n / timeit(ours_mw, args.repeats)
    results["lumbar mahony_run (numba)"] = n / timeit(ours_mh, args.repeats)
    results["lumbar vqf_run (numba)"] = n / timeit(ours_vqf, args.repeats)
    results["lumbar offline (numba)"] = n / timeit(lambda: _offline(acc, gyr, RATE_HZ, params), args.repeats)

    # ---- peers --------------------------------------------------------------------
    missing = []
    try:
        import vqf

        dt = 1.0 / RATE_HZ
        results["vqf VQF.updateBatch (C++)"] = n / timeit(lambda: vqf.VQF(dt).updateBatch(gyr, acc), args.repeats)
        results["vqf BasicVQF.updateBatch (C++)"] = n / timeit(
            lambda: vqf.BasicVQF(dt).updateBatch(gyr, acc), args.repeats
        )
        results["vqf offlineVQF (C++)"] = n / timeit(lambda: vqf.offlineVQF(gyr, acc, None, dt), args.repeats)
    except ImportError:
        missing.append("vqf")
    try:
        import imufusion

        gyr_deg = np.degrees(gyr)
        acc_g = acc / 9.80665

        def fusion(keep: bool) -> None:
            ahrs = imufusion.Ahrs()
            ahrs.set_sample_period(1.0 / RATE_HZ)
            upd = ahrs.update_no_magnetometer
            get = ahrs.get_quaternion
            if keep:
                for i in range(n):
                    upd(gyr_deg[i], acc_g[i])
                    quat[i] = get()
            else:
                for i in range(n):
                    upd(gyr_deg[i], acc_g[i])

        # the reference for ratios is the cheapest loop (update only); keeping the output costs more
        results["imufusion per-sample loop (C)"] = n / timeit(lambda: fusion(False), max(1, args.repeats // 2))
        results["imufusion loop + get_quaternion"] = n / timeit(lambda: fusion(True), max(1, args.repeats // 2))
    except ImportError:
        missing.append("imufusion")
    try:
        from ahrs.filters import Madgwick, Mahony

        na = args.ahrs_samples or n
        results[f"ahrs Madgwick (Python, {na} samples)"] = na / timeit(
            lambda: Madgwick(gyr=gyr[:na], acc=acc[:na], frequency=RATE_HZ), 1
        )
        results[f"ahrs Mahony (Python, {na} samples)"] = na / timeit(
            lambda: Mahony(gyr=gyr[:na], acc=acc[:na], frequency=RATE_HZ), 1
        )
    except ImportError:
        missing.append("ahrs")

    # ---- report -------------------------------------------------------------------
    ref_fusion = results.get("imufusion per-sample loop (C)")
    ref_vqf = results.get("vqf VQF.updateBatch (C++)")
    hdr = f"{'implementation':44s} {'samples/s':>12s} {'÷ imufusion':>12s} {'÷ vqf VQF':>10s}"
    print(hdr)
    print("-" * len(hdr))
    for name, sps in results.items():
        r1 = f"{sps / ref_fusion:11.2f}×" if ref_fusion else "          -"
        r2 = f"{sps / ref_vqf:9.2f}×" if ref_vqf else "         -"
        print(f"{name:44s} {sps / 1e6:10.2f} M {r1} {r2}")
    if missing:
        print(f"\nnot installed (skipped): {', '.join(missing)}")
    print()
    print(f"one-time compile cost (empty cache): first VQF sample {cold_first:.2f} s after process start; "
          f"Madgwick + Mahony + offline another {cold_rest:.2f} s")
    print(f"warm cache: process start → first processed sample {warm_first:.3f} s "
          f"(other kernels then load in {warm_rest * 1e3:.0f} ms)")
    goals = []
    if ref_fusion:
        r = results["lumbar madgwick_run (numba)"] / ref_fusion
        goals.append(f"numba Madgwick ÷ imufusion loop = {r:.1f}× (goal ≥ 20×: {'met' if r >= 20 else 'NOT met'})")
    if ref_vqf:
        r = results["lumbar vqf_run (numba)"] / ref_vqf
        goals.append(f"VQF-class ÷ vqf VQF.updateBatch = {r:.2f}× (goal ≥ 1×: {'met' if r >= 1 else 'NOT met'})")
    goals.append(f"warm start → first sample {warm_first:.2f} s (goal < 1.5 s: {'met' if warm_first < 1.5 else 'NOT met'})")
    print("\n".join(goals))
    return 0


if __name__ == "__main__":
    sys.exit(main())
