"""`lumbar analyze` end to end on a one-hour, two-sensor, 200-Hz session, as a multiple of real time.

    python tests/benchmarks/bench_analyze.py [--minutes 60] [--rate 200] [--protocol flexion] [--profile]

The session is emulated (repeated forward flexion, as many repetitions as the hour holds, default
commodity IMU errors) and written to a temporary file first (not timed). Timed: the ``lumbar analyze``
command on that file — read, common grid (sync), orientation (offline filter), calibration,
kinematics, every metric of the movement, results stored back into the file. Goal ≥ 2,000× real time.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--protocol", default="flexion")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs (the best is reported)")
    ap.add_argument("--profile", action="store_true", help="print the top of a cProfile of one run")
    args = ap.parse_args(argv)

    from lumbar.cli import main as lumbar
    from lumbar.simulate import simulate
    from lumbar.storage.writer import write_simulated
    from lumbar.types import SessionInfo

    duration = args.minutes * 60.0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hour.h5"
        t0 = time.perf_counter()
        reps = None
        if args.protocol == "flexion":
            reps = int((duration - 7.0) / (7.0 * 1.1))  # 7 s per repetition at the defaults, +10 % variability
        sim = simulate(args.protocol, duration_s=duration, seed=1, rate_hz=args.rate, reps=reps)
        write_simulated(path, sim, SessionInfo(subject_code="SIM001", protocol=args.protocol))
        n = len(next(iter(sim.batches.values())))
        del sim
        print(f"emulated {args.minutes:g} min, {args.rate:g} Hz, 2 sensors ({n} samples each, {reps} repetitions) "
              f"in {time.perf_counter() - t0:.1f} s (not timed)")
        with redirect_stdout(io.StringIO()):
            lumbar(["analyze", str(path)])  # warm-up: imports, numba caches
        best = float("inf")
        for _ in range(args.repeat):
            t = time.perf_counter()
            with redirect_stdout(io.StringIO()) as out:
                lumbar(["analyze", str(path)])
            best = min(best, time.perf_counter() - t)
        print(out.getvalue().splitlines()[2])
        print(f"lumbar analyze: {best:.3f} s (best of {args.repeat}) = {duration / best:,.0f}x real time "
              f"(goal 2,000x)")
        if args.profile:
            pr = cProfile.Profile()
            with redirect_stdout(io.StringIO()):
                pr.runcall(lumbar, ["analyze", str(path)])
            pstats.Stats(pr).sort_stats("cumulative").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
