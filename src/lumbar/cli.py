"""The ``lumbar`` command line.

Each sub-command is a small function that parses, calls the library and prints.
Errors of the project (:class:`~lumbar.errors.LumbarError`) are printed as one
plain line without a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from lumbar import __version__
from lumbar.errors import LumbarError

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_ERROR = 2

DEMO_FILE = "lumbar-demo.h5"


def _add_simulation_args(p: argparse.ArgumentParser) -> None:
    from lumbar.simulate import MOVEMENTS

    p.add_argument("--protocol", default="flexion", choices=sorted(MOVEMENTS), help="movement to simulate")
    p.add_argument("--duration", type=float, default=60.0, metavar="S", help="duration in seconds (default 60)")
    p.add_argument("--seed", type=int, default=1, help="random seed; same seed, same session (default 1)")
    p.add_argument("--reps", type=int, default=None, help="number of repetitions (movement default if omitted)")
    p.add_argument("--amplitude-deg", type=float, default=None, help="amplitude of the main movement, degrees")
    p.add_argument("--speed", type=float, default=None, metavar="DEG_PER_S",
                   help="mean angular speed of the main movement, deg/s")
    p.add_argument("--quality", choices=("good", "poor"), default="good", help="movement control quality")
    p.add_argument("--eyes", choices=("open", "closed"), default="open", help="quiet standing: eyes open or closed")
    p.add_argument("--surface", choices=("firm", "foam"), default="firm",
                   help="quiet standing: firm floor or foam pad (default firm)")
    p.add_argument("--sensors", default="lumbar,sacrum",
                   help="comma-separated placements (lumbar, sacrum, thigh_left, thigh_right, shank_left, shank_right)")
    p.add_argument("--rate-hz", type=float, default=100.0, help="sample rate, Hz (default 100)")
    p.add_argument("--ideal", action="store_true", help="ideal sensors: no noise, bias or other imperfections")
    p.add_argument("--subject", default="SIM001", help="pseudonymous subject code (default SIM001)")


def _simulate_to_file(args: argparse.Namespace, out: Path, overwrite: bool) -> Path:
    from lumbar.simulate import ImuErrorModel, simulate
    from lumbar.storage.writer import write_simulated
    from lumbar.types import SessionInfo

    sensors = tuple(s.strip() for s in args.sensors.split(",") if s.strip())
    sim = simulate(
        args.protocol,
        duration_s=args.duration,
        seed=args.seed,
        reps=args.reps,
        amplitude_deg=args.amplitude_deg,
        speed_dps=args.speed,
        quality=args.quality,
        sensors=sensors,
        rate_hz=args.rate_hz,
        eyes=args.eyes,
        imu=ImuErrorModel.ideal() if args.ideal else ImuErrorModel.commodity(),
        surface=args.surface,
    )
    info = SessionInfo(
        subject_code=args.subject,
        operator="emulator",
        protocol=args.protocol,
        notes=f"emulated patient: seed {args.seed}, quality {args.quality}"
        + (f", eyes {args.eyes}, {args.surface} surface" if args.protocol == "quiet-standing" else ""),
    )
    return write_simulated(out, sim, info, overwrite=overwrite)


def cmd_simulate(args: argparse.Namespace) -> int:
    out = _simulate_to_file(args, Path(args.output), args.force)
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB): {args.protocol}, {args.duration:g} s, seed {args.seed}")
    return EXIT_OK


def _print_info(path: Path, as_json: bool) -> None:
    from lumbar.storage import read_session, summarize
    from lumbar.storage.summary import format_summary

    s = summarize(read_session(path, load_truth=True))
    print(json.dumps(s, indent=2) if as_json else format_summary(s))


def cmd_info(args: argparse.Namespace) -> int:
    _print_info(Path(args.file), args.json)
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from lumbar.storage import validate_file

    worst = EXIT_OK
    for f in args.files:
        rep = validate_file(f)
        if rep.ok:
            print(f"{f}: valid" + (f" ({len(rep.warnings)} warning(s))" if rep.warnings else ""))
        else:
            worst = EXIT_INVALID
            print(f"{f}: INVALID")
            for p in rep.problems:
                print(f"  problem: {p}")
        for w in rep.warnings:
            print(f"  warning: {w}")
    return worst


def cmd_analyze(args: argparse.Namespace) -> int:
    from lumbar.analysis import analyze_file, format_analysis

    for f in args.files:
        a = analyze_file(f, store=not args.no_store, method=args.method, protocol_dirs=tuple(args.protocols))
        if args.json:
            print(json.dumps({"file": f, **a.to_dict(display=args.degrees)}, indent=2))
        else:
            print(f"{f}")
            print(format_analysis(a))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Main job on the embedded default: two emulated sensors (L1, S1) on the emulated patient, recorded
    through bleak + Bumble like hardware → session file → summary → metrics → report."""
    from lumbar.acquisition.recorder import record_emulated
    from lumbar.analysis import analyze_file, format_analysis
    from lumbar.report import build_report, write_report

    out = Path(args.output)
    print(f"Recording 60 s of repeated forward flexion from two emulated sensors (L1, S1) over BLE → {out}")

    def progress(t: float, status: dict) -> None:
        parts = ", ".join(f"{sid} {st.samples} samples" for sid, st in status.items())
        print(f"\r  {t:5.1f} s  {parts}", end="", file=sys.stderr, flush=True)

    record_emulated(out, protocol="flexion", duration_s=60.0, seed=args.seed, subject=args.subject,
                    overwrite=True, progress=progress)
    print(file=sys.stderr)
    print()
    _print_info(out, as_json=False)
    print()
    print(format_analysis(analyze_file(out)))
    report = write_report(build_report([out]), out.with_suffix(".html"))
    print()
    print(f"Report: {report} (open it in a web browser)")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from lumbar.interop.export_bids import export_bids
    from lumbar.interop.export_csv import export_csv

    for f in args.files:
        if args.format == "bids":
            paths = export_bids(f, args.output, session_label=args.session_label)
        else:
            paths = export_csv(f, args.output)
        print(f"{f}: {len(paths)} file(s) written to {args.output} ({args.format})")
    return EXIT_OK


def _pairs(items: Sequence[str], what: str) -> dict[str, str]:
    out = {}
    for it in items:
        k, sep, v = it.partition("=")
        if not sep or not k.strip() or not v.strip():
            raise LumbarError(f"{what} must be NAME=VALUE; got {it!r}")
        out[k.strip()] = v.strip()
    return out


def cmd_import(args: argparse.Namespace) -> int:
    fmt = args.format
    if fmt == "auto":
        first = args.inputs[0].split("=", 1)[-1]
        fmt = "apdm" if first.endswith((".h5", ".hdf5")) else "csv-export" if first.endswith(".json") else "csv"
    if fmt == "apdm":
        from lumbar.interop.import_apdm import import_apdm

        if len(args.inputs) != 1:
            raise LumbarError("an APDM import takes one .h5 file")
        out = import_apdm(args.inputs[0], args.output, subject_code=_need(args.subject, "--subject"),
                          protocol=args.protocol, placement_map=_pairs(args.map, "--map"), overwrite=args.force)
    elif fmt == "csv-export":
        from lumbar.interop.import_csv import import_csv_export

        out = import_csv_export(args.inputs[0], args.output, overwrite=args.force)
    else:
        from lumbar.interop.import_csv import CsvColumns, import_csv

        cols = CsvColumns.parse(_need(args.time, "--time"), _need(args.acc, "--acc"), _need(args.gyro, "--gyro"),
                                seq=args.seq, delimiter=args.delimiter)
        sources = _pairs(args.inputs, "a CSV input") if any("=" in i for i in args.inputs) else \
            {"lumbar" if len(args.inputs) == 1 else "": args.inputs[0]}
        if "" in sources:
            raise LumbarError("several CSV files: give each as PLACEMENT=FILE (e.g. lumbar=up.csv sacrum=low.csv)")
        out = import_csv(sources, args.output, cols, subject_code=_need(args.subject, "--subject"),
                         protocol=args.protocol, rate_hz=args.rate_hz, start_time_utc=args.start_time,
                         overwrite=args.force)
    print(f"wrote {out}")
    return EXIT_OK


def _need(value: Any, option: str) -> Any:
    if value is None:
        raise LumbarError(f"{option} is required for this import")
    return value


def cmd_batch(args: argparse.Namespace) -> int:
    from lumbar.interop.batch import run_batch

    s = run_batch(args.dir, args.output, jobs=args.jobs, scheduler=args.scheduler, store=args.store,
                  method=args.method, retry_failed=args.retry_failed, progress=not args.quiet)
    print(f"{s.total} session file(s): {s.analysed} analysed, {s.skipped} already done, {s.failed} failed "
          f"({s.sessions_per_min:.1f} sessions/min); table {s.table}")
    for f, reason in s.failures:
        print(f"  failed: {f}: {reason}")
    return EXIT_OK if not s.failures else EXIT_INVALID


def _add_interop_parsers(sub: Any) -> None:
    p = sub.add_parser("export", help="export session files as Motion-BIDS or plain CSV")
    p.add_argument("files", nargs="+")
    p.add_argument("--format", choices=("bids", "csv"), required=True)
    p.add_argument("-o", "--output", required=True, help="output folder (the BIDS dataset root for bids)")
    p.add_argument("--session-label", default=None, help="bids: the ses- label (default: from the session id)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="import APDM Opal HDF5 or CSV recordings into a session file")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="APDM .h5 file; CSV file(s), as PLACEMENT=FILE when several; or a *_session.json "
                        "of our CSV export")
    p.add_argument("--format", choices=("auto", "apdm", "csv", "csv-export"), default="auto")
    p.add_argument("-o", "--output", required=True, help="session file to write (.h5)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing file")
    p.add_argument("--subject", default=None, help="pseudonymous subject code")
    p.add_argument("--protocol", default="", help="the movement (flexion, quiet-standing, …)")
    p.add_argument("--map", action="append", default=[], metavar="LABEL=PLACEMENT",
                   help="apdm: monitor label to placement (default: Lumbar=sacrum)")
    p.add_argument("--time", default=None, metavar="COL[:UNIT]", help="csv: time column; unit s, ms, us or ns")
    p.add_argument("--acc", default=None, metavar="X,Y,Z[:UNIT]", help="csv: accelerometer columns; m/s^2, g or mg")
    p.add_argument("--gyro", default=None, metavar="X,Y,Z[:UNIT]", help="csv: gyroscope columns; rad/s or deg/s")
    p.add_argument("--seq", default=None, metavar="COL", help="csv: sample counter column")
    p.add_argument("--delimiter", default=None, help="csv: field separator (default: sniffed)")
    p.add_argument("--rate-hz", type=float, default=None, help="csv: nominal rate (default: from the time column)")
    p.add_argument("--start-time", default=None, help="csv: ISO 8601 UTC time of the first sample")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("batch", help="analyse every session file in a folder tree into one table")
    p.add_argument("dir")
    p.add_argument("-o", "--output", default=None, help="output folder (default DIR/lumbar-batch)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="local worker processes")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS", help="run on a Dask scheduler (tcp://host:8786)")
    p.add_argument("--store", action="store_true", help="also store derived data and metrics in the files")
    p.add_argument("--method", default="offline", choices=("offline", "default", "vqf", "madgwick", "mahony"))
    p.add_argument("--retry-failed", action="store_true", help="analyse files that failed before again")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_batch)


def cmd_report(args: argparse.Namespace) -> int:
    """One subject's session files → a self-contained HTML report (and a PDF with Chromium)."""
    from lumbar.report import ReportError, build_report, html_to_pdf, write_report

    rep = build_report(args.files, protocol_dirs=args.protocols, home_files=args.home, protocol=args.protocol)
    out = write_report(rep, args.output)
    print(f"wrote {out}: subject {rep.subject}, {len(rep.visits)} visit(s), {len(rep.records)} session(s)")
    for n in rep.notes:
        print(f"  note: {n}")
    if args.pdf:
        pdf = out.with_suffix(".pdf")
        try:
            print(f"wrote {html_to_pdf(out, pdf)}")
        except ReportError as e:
            print(f"PDF not written: {e}", file=sys.stderr)
            return EXIT_ERROR
    return EXIT_OK


def _add_report_parser(sub: Any) -> None:
    p = sub.add_parser("report", help="a self-contained HTML report of one subject's sessions (and --pdf)")
    p.add_argument("files", nargs="*", help="session files of one subject (clinic visits and home sessions)")
    p.add_argument("-o", "--output", default="report.html", help="HTML file to write (default report.html)")
    p.add_argument("--pdf", action="store_true", help="also print it to PDF beside the HTML (needs Chromium)")
    p.add_argument("--protocols", action="append", default=[], metavar="DIR",
                   help="a folder of the clinic's own protocol files (repeatable; also $LUMBAR_PROTOCOLS)")
    p.add_argument("--home", action="append", default=[], metavar="FILE",
                   help="a home biofeedback session (repeatable; sessions with operator 'home' count as such anyway)")
    p.add_argument("--protocol", default=None, metavar="NAME",
                   help="score every file against this protocol instead of the one its movement implies")
    p.set_defaults(func=cmd_report)


def cmd_gui(args: argparse.Namespace) -> int:
    """Start the desktop application (imports Qt only here, so the other commands stay light)."""
    from lumbar_gui import main as gui_main  # starts the emulated sensors first (--emulated)

    argv = ["--emulated"] if args.emulated else []
    if args.data_dir:
        argv += ["--data-dir", args.data_dir]
    if args.file:
        argv.append(args.file)
    return gui_main(argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lumbar", description="Lumbar motor control measured with wearable IMUs."
    )
    parser.add_argument("--version", action="version", version=f"lumbar {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("simulate", help="write a session from the emulated patient")
    _add_simulation_args(p)
    p.add_argument("-o", "--output", required=True, help="session file to write (.h5)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("info", help="summarise a session file")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("validate", help="check session files (exit 0 valid, 1 invalid)")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("analyze", help="compute the metrics of session files and store them in the files")
    p.add_argument("files", nargs="+")
    p.add_argument("--json", action="store_true", help="machine-readable output (SI units unless --degrees)")
    p.add_argument("--degrees", action="store_true", help="with --json: angles in degrees")
    p.add_argument("--no-store", action="store_true", help="do not write results into the files")
    p.add_argument("--method", default="offline", choices=("offline", "default", "vqf", "madgwick", "mahony"),
                   help="orientation filter (default: offline, the most accurate for recordings)")
    p.add_argument("--protocols", action="append", default=[], metavar="DIR",
                   help="a folder of the clinic's own protocol files (repeatable; also $LUMBAR_PROTOCOLS)")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("demo", help="record an emulated flexion session over BLE, summarise, analyse and report it")
    p.add_argument("-o", "--output", default=DEMO_FILE, help=f"session file to write (default {DEMO_FILE})")
    p.add_argument("--seed", type=int, default=1, help="seed of the emulated patient and links (default 1)")
    p.add_argument("--subject", default="SIM001", help="pseudonymous subject code (default SIM001)")
    p.set_defaults(func=cmd_demo)

    _add_report_parser(sub)

    p = sub.add_parser("gui", help="start the desktop application (devices, live view, assessment, biofeedback, review)")
    p.add_argument("--emulated", action="store_true", help="connect the demo sensors (emulated patient) at start")
    p.add_argument("--data-dir", default=None, help="where sessions are saved (default ~/LumbarSessions)")
    p.add_argument("file", nargs="?", help="a session file to open in Review")
    p.set_defaults(func=cmd_gui)

    from lumbar_sensors.cli_decode import add_decode_parser

    add_decode_parser(sub)
    _add_interop_parsers(sub)

    from lumbar.acquisition.cli_acquisition import add_acquisition_parsers

    add_acquisition_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except LumbarError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
