"""Session file benchmark: one hour of two sensors at 200 Hz, written live and read back.

Run:  python tests/benchmarks/bench_storage.py [--minutes 60] [--rate-hz 200]

Prints size on disk, bytes per sample, live write speed as a multiple of real time, and the time to read
one whole channel back. Data come from the emulated patient (quiet standing, commodity sensor noise), so
compression sees realistic, noisy 16-bit values. Appends are made as a BLE reader makes them: 10 samples
per sensor per call, with a flush every 0.5 s of recorded time (the live writer's worst case).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py

from lumbar.simulate import simulate
from lumbar.storage import SessionWriter, read_channel, write_session
from lumbar.storage import schema
from lumbar.types import SessionInfo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate-hz", type=float, default=200.0)
    args = ap.parse_args()
    duration = args.minutes * 60.0

    t0 = time.perf_counter()
    sim = simulate("quiet-standing", duration_s=duration, seed=1, rate_hz=args.rate_hz, sensors=("lumbar", "sacrum"))
    t_sim = time.perf_counter() - t0
    n = {sid: len(b) for sid, b in sim.batches.items()}
    total = sum(n.values())
    per_flush = int(round(args.rate_hz * 0.5))
    block = 10

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.h5"
        t0 = time.perf_counter()
        w = SessionWriter(path, SessionInfo("BENCH"), list(sim.sensors.values()), flush_interval_s=1.0)
        n_max = max(n.values())
        for i in range(0, n_max, block):
            for sid, b in sim.batches.items():
                if i < len(b):
                    w.append(b[i : i + block])
            if (i // block) % (per_flush // block) == per_flush // block - 1:
                w.flush()
        w.flush()
        t_live = time.perf_counter() - t0
        live_size = path.stat().st_size
        t0 = time.perf_counter()
        w.close()  # rewrites with final chunking
        t_close = time.perf_counter() - t0
        t_write = t_live + t_close
        size = path.stat().st_size
        t0 = time.perf_counter()
        write_session(Path(d) / "oneshot.h5", SessionInfo("BENCH"), sim.sensors.values(), sim.batches)
        t_oneshot = time.perf_counter() - t0
        with h5py.File(path, "r") as f:
            raw_chunk_bytes = sum(
                f[f"sensors/{sid}/{spec.name}"].id.get_storage_size() for sid in n for spec in schema.SENSOR_DATASETS
            )
        uncompressed = total * sum(__import__("numpy").dtype(s.dtype).itemsize * (s.tail[0] if s.tail else 1)
                                   for s in schema.SENSOR_DATASETS)
        t0 = time.perf_counter()
        acc = read_channel(path, "lumbar", "acc")
        t_read = time.perf_counter() - t0
        t0 = time.perf_counter()
        read_channel(path, "lumbar", "time_s")
        t_read_t = time.perf_counter() - t0

    print(f"Session file benchmark: {args.minutes:g} min, {len(n)} sensors at {args.rate_hz:g} Hz, {total:,} samples")
    print(f"  emulated patient            {t_sim:8.2f} s to simulate")
    print(f"  size on disk                {size / 1e6:8.2f} MB   ({raw_chunk_bytes / 1e6:.2f} MB of data chunks)")
    print(f"  bytes per sample            {size / total:8.2f} B    (uncompressed columns: {uncompressed / total:.0f} B; "
          f"ratio {uncompressed / size:.2f}×)")
    print(f"  live write                  {t_write:8.2f} s    = {duration / t_write:,.0f}× real time "
          f"({total / t_write / 1e3:,.0f} k samples/s, appends of {block}, flush every {per_flush})")
    print(f"    of which closing          {t_close:8.2f} s    (rewrite with final chunks; live file was "
          f"{live_size / 1e6:.1f} MB before)")
    print(f"  one-shot write              {t_oneshot:8.2f} s    = {duration / t_oneshot:,.0f}× real time (write_session)")
    print(f"  read one channel (acc)      {t_read * 1e3:8.1f} ms   {acc.shape} = {acc.nbytes / t_read / 1e6:,.0f} MB/s decoded")
    print(f"  read one channel (time_s)   {t_read_t * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
