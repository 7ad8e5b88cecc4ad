"""Decode throughput per sensor family (not collected by pytest; run as a script).

    python tests/benchmarks/bench_decode.py [--packets 4000] [--repeat 3]

For each family a synthetic stream at the family's highest real-time rate (built from the
documented layout by ``lumbar_sensors.synth``) is decoded through one stream state, as the
reader does, one notification per call. Prints acc+gyro samples/s and the multiple of the
highest real-time rate of that family (how many such sensors one core could decode).
"""
from __future__ import annotations

import argparse
import time

from lumbar_sensors import registry, synth


def bench(family: str, packets: int, repeat: int) -> tuple[float, float, int]:
    mod = registry.module(family)
    payloads, ctx, n_samples = synth.stream_payloads(family, packets, seed=0)
    best = float("inf")
    for _ in range(repeat):
        stream = mod.new_stream(**ctx)
        t0 = time.perf_counter()
        for p in payloads:
            mod.decode(p, stream)
        best = min(best, time.perf_counter() - t0)
    rate = n_samples / best
    return rate, rate / registry.get(family).max_realtime_rate_hz, len(payloads[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=4000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{'family':<16}{'payload B':>10}{'max rate Hz':>13}{'samples/s':>14}{'× real time':>13}")
    for name in registry.FAMILY_NAMES:
        rate, mult, size = bench(name, args.packets, args.repeat)
        fam = registry.get(name)
        print(f"{name:<16}{size:>10}{fam.max_realtime_rate_hz:>13g}{rate:>14,.0f}{mult:>13,.0f}")


if __name__ == "__main__":
    main()
