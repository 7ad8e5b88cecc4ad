"""Throughput of our SOS IIR kernels and of scipy on one identical input, in one run.

Usage::

    python tests/benchmarks/bench_iir.py [--samples 1000000] [--channels 6] [--repeats 7]

A 4th-order Butterworth low-pass (10 Hz at 200 Hz, two sections) on a C-contiguous float64
(N, C) array, channels in columns. Prints samples/s (rows of C channels per second; median of
``--repeats`` runs), channel-samples/s, and ratios to ``scipy.signal.sosfilt`` for

* ``sos_run`` (the kernel behind ``SOSFilter.process``) and the object call itself,
* ``SOSFilter.filtfilt`` and ``scipy.signal.sosfiltfilt`` with the same padding,
* one Python call of ``sos_step`` per sample (the cost of the smallest live chunk),

and checks that the outputs agree with scipy's (max |difference|).
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np

RATE_HZ = 200.0


def make_input(n: int, n_ch: int, seed: int = 0) -> np.ndarray:
    """Deterministic (n, n_ch) signal: slow movement, an offset and noise per channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / RATE_HZ
    x = np.sin(2 * np.pi * 0.5 * t[:, None] + np.arange(n_ch)) + 9.81 * (np.arange(n_ch) == 2)
    return np.ascontiguousarray(x + 0.1 * rng.standard_normal((n, n_ch)))


def timeit(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time (s) of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--channels", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--step-samples", type=int, default=100_000, help="samples for the per-call sos_step loop")
    args = ap.parse_args(argv)
    n, n_ch, reps = args.samples, args.channels, args.repeats

    from scipy import signal

    from lumbar.filters import SOSFilter
    from lumbar.filters import _iir_numba as k

    x = make_input(n, n_ch)
    filt = SOSFilter("lowpass", 4, 10.0, RATE_HZ, n_channels=n_ch, initial="zero")
    sos = filt.sos
    pad = filt.default_padlen(n)
    out = np.empty_like(x)
    state = np.zeros((sos.shape[0], 2, n_ch))
    print(
        f"input: {n} samples × {n_ch} channels, float64 (N, C) C-contiguous; 4th-order Butterworth low-pass "
        f"10 Hz at {RATE_HZ:g} Hz ({sos.shape[0]} sections); filtfilt padding {pad} samples; median of {reps}\n"
    )

    def ours_run() -> None:
        state[...] = 0.0
        k.sos_run(x, sos, state, out)

    def ours_process() -> None:
        filt.reset()
        filt.process(x)

    k.sos_run(x[:10], sos, np.zeros_like(state), out[:10])  # load from cache / compile outside the timing
    filt.filtfilt(x[:100])

    results: dict[str, float] = {}
    results["lumbar sos_run (numba kernel)"] = n / timeit(ours_run, reps)
    results["lumbar SOSFilter.process"] = n / timeit(ours_process, reps)
    results["scipy sosfilt"] = n / timeit(lambda: signal.sosfilt(sos, x, axis=0), reps)
    results["lumbar SOSFilter.filtfilt"] = n / timeit(lambda: filt.filtfilt(x), reps)
    results["scipy sosfiltfilt (same padding)"] = n / timeit(
        lambda: signal.sosfiltfilt(sos, x, axis=0, padlen=pad), reps
    )

    ns = min(args.step_samples, n)
    st = np.zeros_like(state)
    o1 = np.empty(n_ch)
    step = k.sos_step
    k.sos_step(x[0], sos, st, o1)

    def per_call() -> None:
        for i in range(ns):
            step(x[i], sos, st, o1)

    results[f"lumbar sos_step, one Python call per sample ({ns})"] = ns / timeit(per_call, max(1, reps // 2))

    # ---- agreement ------------------------------------------------------------------
    ours_run()
    d_filt = float(np.max(np.abs(out - signal.sosfilt(sos, x, axis=0))))
    d_ff = float(np.max(np.abs(filt.filtfilt(x) - signal.sosfiltfilt(sos, x, axis=0, padlen=pad))))

    # ---- report ---------------------------------------------------------------------
    ref = results["scipy sosfilt"]
    hdr = f"{'implementation':52s} {'samples/s':>11s} {'channel-samples/s':>18s} {'÷ sosfilt':>10s}"
    print(hdr)
    print("-" * len(hdr))
    for name, sps in results.items():
        print(f"{name:52s} {sps / 1e6:9.2f} M {sps * n_ch / 1e6:16.1f} M {sps / ref:9.2f}×")
    print(f"\nmax |sos_run − sosfilt|          = {d_filt:.3g}")
    print(f"max |filtfilt − sosfiltfilt|     = {d_ff:.3g}")
    print(f"sos_step per call                = {1e6 / results[next(r for r in results if 'sos_step' in r)]:.3f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
