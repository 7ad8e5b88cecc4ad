"""`lumbar analyze` end to end on a one-hour, two-sensor, 200-Hz session, as a multiple of real time.

    python tests/benchmarks/bench_analyze.py [--minutes 60] [--rate 200] [--protocol flexion]
        [--method offline|default] [--repeat 3] [--session FILE] [--stages] [--profile]

The session is emulated (repeated forward flexion, as many repetitions as the hour holds, default
commodity IMU errors) and written to a file first (not timed; ``--session FILE`` keeps it there and
reuses it on the next run). Timed: the ``lumbar analyze`` command on a fresh copy of that file —
read, common grid (sync), orientation (``--method``, default the offline filter), calibration,
kinematics, every metric of the movement, results stored back into the file. Reported: the median
and the best of ``--repeat`` runs (the machine may be shared: compare medians of runs made under the
same conditions). Goal ≥ 2,000× real time.

``--stages`` also times the stages one by one (the library functions ``lumbar analyze`` composes,
run in sequence, each the median of the runs).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path


def _emulate(path: Path, protocol: str, duration: float, rate: float) -> None:
    from lumbar.simulate import simulate
    from lumbar.storage.writer import write_simulated
    from lumbar.types import SessionInfo

    t0 = time.perf_counter()
    reps = None
    if protocol == "flexion":
        reps = int((duration - 7.0) / (7.0 * 1.1))  # 7 s per repetition at the defaults, +10 % variability
    sim = simulate(protocol, duration_s=duration, seed=1, rate_hz=rate, reps=reps)
    write_simulated(path, sim, SessionInfo(subject_code="SIM001", protocol=protocol))
    n = len(next(iter(sim.batches.values())))
    print(f"emulated {duration / 60:g} min, {rate:g} Hz, {len(sim.batches)} sensors ({n} samples each, "
          f"{reps} repetitions) in {time.perf_counter() - t0:.1f} s (not timed)")


def _stages(path: Path, method: str, repeat: int) -> dict[str, float]:
    """Median seconds of each stage of ``lumbar.analysis.analyze_file``, run one after the other."""
    from lumbar import kinematics
    from lumbar.analysis import DERIVED_COMPRESSION_LEVEL, analyze, derived_arrays, load_plans
    from lumbar.calibration import calibrate_segment
    from lumbar.filters import estimate_orientation
    from lumbar.pipeline import calibration_windows, process_session
    from lumbar.storage.reader import read_session
    from lumbar.storage.writer import write_group
    from lumbar.sync import to_common_grid

    times: dict[str, list[float]] = {}

    def timed(name: str, f, *a, **k):  # noqa: ANN001, ANN202
        t = time.perf_counter()
        out = f(*a, **k)
        times.setdefault(name, []).append(time.perf_counter() - t)
        return out

    for _ in range(repeat):
        s = timed("read", read_session, path, load_truth=False)
        rate = max(s.sensors[sid].nominal_rate_hz for sid in s.data)
        grid = timed("common grid (sync)", to_common_grid, s.data, rate)
        t = time.perf_counter()
        quats = {sid: estimate_orientation(b.acc, b.gyro, rate, method=method)[0] for sid, b in grid.items()}
        times.setdefault(f"orientation ({method}, sensors one after the other)", []).append(time.perf_counter() - t)
        first = next(iter(grid.values()))
        static, functional = calibration_windows(first.time_s, s.events, s.info.protocol, first.acc, first.gyro, rate)
        if functional is not None:
            for b in grid.values():
                timed("calibration", calibrate_segment, b.acc[static], b.gyro[static], b.acc[functional],
                      b.gyro[functional], rate)
        p = timed("process_session (grid, orientation, calibration, kinematics)", process_session, s, method=method)
        t = time.perf_counter()
        for sid, q in p.quat_segment.items():
            kinematics.sagittal_tilt(q, p.static_window)
        if p.lumbar_angles is not None:
            kinematics.lumbar_angles(p.quat_segment["lumbar"], p.quat_segment["sacrum"], p.static_window)
        times.setdefault("kinematics (tilts, lumbar angles)", []).append(time.perf_counter() - t)
        plans = load_plans()
        timed("metrics", analyze, s, p, plans=plans)
        timed("store derived", write_group, path, "derived", derived_arrays(p), p.attrs(),
              compression_level=DERIVED_COMPRESSION_LEVEL)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--protocol", default="flexion")
    ap.add_argument("--method", default="offline", help="orientation method of lumbar analyze (offline, default)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs (median and best are reported)")
    ap.add_argument("--session", type=Path, help="emulated session file to keep and reuse")
    ap.add_argument("--stages", action="store_true", help="also time the stages one by one")
    ap.add_argument("--profile", action="store_true", help="print the top of a cProfile of one run")
    args = ap.parse_args(argv)

    from lumbar.cli import main as lumbar

    duration = args.minutes * 60.0
    with tempfile.TemporaryDirectory() as tmp:
        src = args.session or Path(tmp) / "emulated.h5"
        if not src.exists():
            _emulate(src, args.protocol, duration, args.rate)
        path = Path(tmp) / "hour.h5"
        cmd = ["analyze", str(path), "--method", args.method]

        def fresh() -> None:  # every run analyses a copy of the session as recorded (not timed)
            shutil.copyfile(src, path)

        fresh()
        with redirect_stdout(io.StringIO()):
            lumbar(cmd)  # warm-up: imports, numba caches
        runs = []
        for _ in range(args.repeat):
            fresh()
            t = time.perf_counter()
            with redirect_stdout(io.StringIO()) as out:
                lumbar(cmd)
            runs.append(time.perf_counter() - t)
        print(out.getvalue().splitlines()[2])
        med, best = statistics.median(runs), min(runs)
        print(f"lumbar analyze --method {args.method}: median {med:.3f} s = {duration / med:,.0f}x real time, "
              f"best {best:.3f} s = {duration / best:,.0f}x (of {args.repeat}; goal 2,000x)")
        if args.stages:
            fresh()
            for name, sec in _stages(path, args.method, args.repeat).items():
                print(f"  {name:64s} {sec * 1e3:8.0f} ms")
        if args.profile:
            fresh()
            pr = cProfile.Profile()
            with redirect_stdout(io.StringIO()):
                pr.runcall(lumbar, cmd)
            pstats.Stats(pr).sort_stats("cumulative").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
