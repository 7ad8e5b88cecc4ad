"""Batch throughput: sessions/min on local processes vs a local Dask cluster.

    python tests/benchmarks/bench_batch.py [--sessions 200] [--duration 12] [--workers 2]

Simulates short sessions (quiet standing and flexion alternating) into a temporary tree, then runs
``run_batch`` on it three times from scratch: 1 process, N local processes, and a local Dask cluster
of N worker processes (1 thread each). Reports sessions/min and checks every table is complete.
Needs dask.distributed (extra ``interop``).
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import tempfile
import time
from pathlib import Path

from lumbar.interop.batch import run_batch
from lumbar.simulate import simulate
from lumbar.storage.writer import write_simulated


def make_tree(root: Path, n: int, duration_s: float) -> None:
    for i in range(n):
        movement = "flexion" if i % 2 else "quiet-standing"
        sim = simulate(movement, duration_s=duration_s, seed=i, reps=1 if movement == "flexion" else None)
        d = root / f"site{i % 4}"
        d.mkdir(parents=True, exist_ok=True)
        write_simulated(d / f"s{i:04d}.h5", sim, sim.session_info())


def files_in_table(path: Path) -> int:
    with open(path, newline="") as f:
        return len({r["file"] for r in csv.DictReader(f)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per session")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        t = time.perf_counter()
        make_tree(tmp / "tree", args.sessions, args.duration)
        print(f"{args.sessions} sessions of {args.duration:g} s simulated in {time.perf_counter() - t:.1f} s")
        rows = []
        for name, kw in (("local, 1 process", {"jobs": 1}),
                         (f"local, {args.workers} processes", {"jobs": args.workers})):
            t = time.perf_counter()
            s = run_batch(tmp / "tree", tmp / name.replace(" ", "").replace(",", "_"), progress=False, **kw)
            wall = time.perf_counter() - t
            rows.append((name, s, wall))
        from distributed import Client, LocalCluster

        t = time.perf_counter()
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            startup = time.perf_counter() - t
            t = time.perf_counter()
            s = run_batch(tmp / "tree", tmp / "dask", scheduler=client, progress=False)
            rows.append((f"Dask LocalCluster, {args.workers} workers (+{startup:.1f} s start-up)", s,
                         time.perf_counter() - t))
        print(f"{'runner':<48} {'files':>6} {'failed':>6} {'wall s':>8} {'sessions/min':>13}")
        for name, s, wall in rows:
            assert files_in_table(s.table) == s.analysed and s.analysed + s.failed == args.sessions, "table incomplete"
            print(f"{name:<48} {s.analysed:>6} {s.failed:>6} {wall:>8.1f} {60 * s.analysed / wall:>13.0f}")
        for f, reason in rows[0][1].failures[:5]:
            print(f"failed: {f}: {reason}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
