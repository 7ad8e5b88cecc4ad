"""GUI benchmark: emulated sensors streamed in real time into the running application.

Measures, with the Live view shown and the session recorded to a file:

* start-up to the first live plot (process start → first raw samples of every sensor drawn), warm numba
  cache, started as ``lumbar gui --emulated`` starts (the emulated sensors scanned, then connected
  through the BLE reader);
* frames per second of the GUI's pull-and-draw timer (goal ≥ 50);
* samples dropped between the source and the plots / the processing / the file (goal 0);
* the longest GUI-thread stall: the lateness of a 5 ms precise ``QTimer`` heartbeat on the GUI thread (its
  longest gap beyond the period; goal < 50 ms), with the 99th percentile, the number of late beats and
  when they came, over the timed minutes, which start once the application has started (live processing
  running: its filters loaded, its first angles out) with the operator's "record" (what starting a
  recording costs the GUI thread counts); the longest stall of the start-up after the first plot (while
  the filters load) is printed beside the start-up time;
* CPU % of the whole process (all threads; 100 % = one core) and of the GUI thread, of the BLE reader's
  process and of the emulated sensors' process;
* how long the GUI thread waited for a CPU while it could run (Linux ``schedstat``): time the machine's
  other work took from it, which no change to the application removes, and the CPU time the hypervisor
  took from the virtual machine (``steal``). On a shared machine read the stall figures beside these and
  the load average.

The application runs in a real Qt event loop (``QEventLoop.exec``), as under ``lumbar gui``.

Run: ``QT_QPA_PLATFORM=offscreen python tests/benchmarks/bench_gui.py --minutes 5`` (``--sensors 4
--rate-hz 200`` are the defaults). ``--slow-disk-ms 100`` makes every 20th flush of the session file wait
100 ms inside a C call that holds the interpreter lock, as an HDF5 write does while the disk stalls (in
whichever process writes the file). Not part of the test run.
"""
from __future__ import annotations

import time

T_PROCESS = time.perf_counter()

import argparse  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402


def _gui_thread_sched() -> tuple[float, float] | None:
    """(CPU time, time waiting for a CPU) of the calling thread so far, s; None where not available."""
    import threading

    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/schedstat") as f:
            on_cpu_ns, wait_ns, _ = (int(v) for v in f.read().split())
    except (OSError, ValueError):
        return None
    return on_cpu_ns / 1e9, wait_ns / 1e9


def _steal_s() -> float | None:
    """CPU time the hypervisor took from this virtual machine so far (all CPUs), s; None where not known."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _process_cpu_s(pid: int) -> float | None:
    """CPU time (user + system) of process ``pid`` so far, s; None where not available."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


_SLOW_DISK = """
import ctypes, os
from lumbar.storage import writer as _w

_ms, _libc, _n, _flush = int(os.environ["LUMBAR_BENCH_SLOW_DISK_MS"]), ctypes.PyDLL(None), [0], _w.SessionWriter.flush


def _slow_flush(self, *args, **kwargs):
    _n[0] += 1
    if _n[0] % 20 == 0:
        _libc.usleep(_ms * 1000)  # PyDLL: the interpreter lock is held during the call, as in an HDF5 write
    return _flush(self, *args, **kwargs)


_w.SessionWriter.flush = _slow_flush
"""


def _slow_disk(ms: int) -> None:
    """A stalling disk in this process and in the processes it starts (a ``sitecustomize`` on their path)."""
    d = Path(tempfile.mkdtemp(prefix="lumbar-bench-slow-disk-"))
    (d / "sitecustomize.py").write_text(_SLOW_DISK)
    os.environ["LUMBAR_BENCH_SLOW_DISK_MS"] = str(ms)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(d), *filter(None, [os.environ.get("PYTHONPATH")])])
    sys.path.insert(0, str(d))
    import sitecustomize  # noqa: F401 - this process: the file may be written here (a replay source)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--sensors", type=int, default=4, choices=(1, 2, 3, 4))
    ap.add_argument("--rate-hz", type=float, default=200.0)
    ap.add_argument("--slow-disk-ms", type=int, default=0,
                    help="every 20th flush of the session file stalls this long, holding the interpreter lock")
    args = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if args.slow_disk_ms:
        _slow_disk(args.slow_disk_ms)
    # as `lumbar gui --emulated` starts: the emulated sensors' process first, booting while the
    # application imports and builds its window
    from lumbar_gui.demo_process import DemoSensors
    from lumbar_gui.reader_process import ReaderProcess

    ReaderProcess.prestart()
    DemoSensors.prestart()

    from PySide6.QtCore import QEventLoop, QTimer, Qt
    from PySide6.QtWidgets import QApplication

    from lumbar_gui.app import MainWindow
    from lumbar_gui.widgets import apply_style

    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_style(app)
    tmp = Path(tempfile.mkdtemp(prefix="lumbar-bench-gui-"))
    # as `lumbar gui --emulated` starts: emulated sensors (Bumble BLE stack) scanned, assigned and
    # connected through the reader once the scan has listed them
    win = MainWindow(sessions_dir=tmp, emulated=True, rate_hz=args.rate_hz)
    win.resize(1440, 900)
    placements = ("lumbar", "sacrum", "thigh_left", "thigh_right")[: args.sensors]
    win.devices.auto_connect(placements)
    win.show_view(win.live)
    win.show()

    def pump(until: float) -> None:
        """Run the Qt event loop until ``until`` (perf_counter time)."""
        loop = QEventLoop()
        QTimer.singleShot(max(0, int((until - time.perf_counter()) * 1000)), loop.quit)
        loop.exec()

    # start-up: until the first raw samples are drawn
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline:
        app.processEvents()
        if len(win.live._raw) == args.sensors and all(p[2].buf.count > 0 for p in win.live._raw.values()):
            break
        time.sleep(0.001)
    t_first_plot = time.perf_counter() - T_PROCESS

    # heartbeat for stalls
    gaps = {"last": time.perf_counter(), "max": 0.0}
    late: list[float] = []
    late_at: list[tuple[float, float]] = []  # (perf_counter time, lateness s) of the beats > 50 ms late

    def beat() -> None:
        now = time.perf_counter()
        lateness = now - gaps["last"] - 0.005
        gaps["max"] = max(gaps["max"], lateness)
        late.append(lateness)
        if lateness > 0.050:
            late_at.append((now, lateness))
        gaps["last"] = now

    hb = QTimer()
    hb.setTimerType(Qt.TimerType.PreciseTimer)
    hb.timeout.connect(beat)
    hb.start(5)
    # The live processing then loads its filters (scipy, compiled kernels: ≈ 1.3 s of CPU, most of it holding
    # the interpreter lock); the application is started when it has produced its first angles and the
    # garbage collector has frozen what start-up built. Its stalls are reported apart, as start-up's.
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline:
        proc = win.engine.processor
        if proc is not None and win._gc_frozen_for is proc:
            break
        pump(time.perf_counter() + 0.05)
    t_processing = time.perf_counter() - T_PROCESS
    pump(time.perf_counter() + 1.0)
    loading_stall_ms = gaps["max"] * 1000
    from lumbar.types import SessionInfo

    f0 = win.frames
    raw_chart = next(iter(win.live._raw.values()))[2]
    r0 = raw_chart.redraws
    demo = win.engine.link.emulator  # the emulated sensors' process
    demo_pid = demo.proc.pid if demo is not None else None
    demo0 = _process_cpu_s(demo_pid) if demo_pid else None
    reader_pid = win.engine.link.reader.proc.pid  # the BLE reader's process
    reader0 = _process_cpu_s(reader_pid)
    steal0 = _steal_s()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    sch0 = _gui_thread_sched()
    # The timed minutes start with the operator's "record": what starting a recording costs the GUI thread
    # counts (the benchmark's own work before it does not: the heartbeat restarts here).
    gaps["max"] = 0.0
    late.clear()
    late_at.clear()
    gaps["last"] = time.perf_counter()
    rec = win.engine.start_recording(tmp / "bench.h5", SessionInfo("BENCH01", protocol="quiet-standing"))
    t0 = time.perf_counter()
    pump(t0 + 60.0 * args.minutes)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    sch1 = _gui_thread_sched()
    demo1 = _process_cpu_s(demo_pid) if demo_pid else None
    reader1 = _process_cpu_s(reader_pid)
    steal1 = _steal_s()
    frames = win.frames - f0
    raw_redraws = raw_chart.redraws - r0
    cpu = (ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime) / wall * 100
    stall_ms = gaps["max"] * 1000
    import numpy as np

    late_ms = np.asarray(late) * 1000
    p99_ms = float(np.percentile(late_ms, 99)) if len(late_ms) else float("nan")
    n_late = int((late_ms > 50).sum())
    hb.stop()
    t_stop = time.perf_counter()
    path = win.engine.stop_recording()
    stop_ms = (time.perf_counter() - t_stop) * 1000
    win.engine.wait_saved()
    save_s = time.perf_counter() - t_stop
    # what the recorder took from its rings (missed counts overruns): in the reader's process for these sensors
    starts, totals = dict(rec.start_cursors), dict(rec.cursors)
    proc_missed = win.engine.processor.missed
    lost_at_source = sum(st.lost_samples for st in win.engine.bus.status.values())
    win.close()
    from lumbar.storage import read_session  # not before: the application does not import it while recording

    s = read_session(path, load_truth=False)
    in_file = sum(len(b) for b in s.data.values())
    pushed = sum(totals[sid] - starts[sid] for sid in totals)
    # the recorder starts at the first sample after start_recording and stops after the last: file ≈ pushed
    print(f"machine load (1, 5, 15 min): {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"GUI benchmark: {args.sensors} emulated sensors at {args.rate_hz:g} Hz, {wall / 60:.1f} min, "
          f"{os.cpu_count()} CPU(s), platform {app.platformName()}"
          + (f"; a disk stalling {args.slow_disk_ms} ms every 20th flush" if args.slow_disk_ms else ""))
    print(f"  start-up to first live plot      {t_first_plot:8.2f} s     (goal < 3 s)")
    print(f"  live processing running after    {t_processing:8.2f} s     (filters loaded, first angles; longest "
          f"GUI stall meanwhile {loading_stall_ms:.0f} ms)")
    print(f"  frames per second                {frames / wall:8.1f}       (goal >= 50)")
    print(f"  raw charts redrawn               {raw_redraws / wall:8.1f} /s")
    print(f"  longest GUI-thread stall         {stall_ms:8.1f} ms    (goal < 50 ms)")
    print(f"  heartbeat lateness, 99th pct.    {p99_ms:8.1f} ms    ({n_late} of {len(late_ms)} beats > 50 ms late)")
    if late_at:
        worst = sorted(late_at, key=lambda b: -b[1])[:8]
        print("    the late beats (s into the timed minutes: ms late): "
              + ", ".join(f"{t - t0:.1f}: {x * 1000:.0f}" for t, x in sorted(worst)))
    print(f"  CPU (all threads, 100 % = 1 core){cpu:8.1f} %")
    if demo0 is not None and demo1 is not None:
        print(f"  CPU of the emulated sensors      {(demo1 - demo0) / wall * 100:8.1f} %     (their own process: "
              f"patient, sensors, virtual radio)")
    if reader0 is not None and reader1 is not None:
        print(f"  CPU of the BLE reader            {(reader1 - reader0) / wall * 100:8.1f} %     (its own process: "
              f"bleak, Bumble host, decoding)")
    if sch0 is not None and sch1 is not None:
        print(f"  CPU of the GUI thread            {(sch1[0] - sch0[0]) / wall * 100:8.1f} %")
        print(f"  GUI thread waiting for a CPU     {(sch1[1] - sch0[1]) / wall * 100:8.1f} %     (of the time; the "
              f"machine's other load)")
    if steal0 is not None and steal1 is not None:
        print(f"  CPU taken by the host (steal)    {(steal1 - steal0) / wall / (os.cpu_count() or 1) * 100:8.2f} %     "
              f"(of this virtual machine's CPUs)")
    from lumbar_gui.sources import RemoteRecorder

    where = "in the BLE reader's process" if isinstance(rec, RemoteRecorder) else "on its thread here"
    print(f"  stopping the recording           {stop_ms:8.1f} ms    (GUI thread; the file was saved "
          f"{save_s:.2f} s later by the recorder, {where})")
    print(f"  samples taken for the file       {pushed:8d}")
    print(f"  samples in the file              {in_file:8d}")
    print(f"  dropped source -> file           {rec.missed:8d}       (ring overruns; goal 0)")
    print(f"  dropped source -> processing     {proc_missed:8d}       (goal 0)")
    print(f"  dropped source -> plots          {win.live.missed:8d}       (goal 0)")
    print(f"  lost on the link (source report) {lost_at_source:8d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
