"""``lumbar scan``, ``lumbar record`` and ``lumbar emulate``: small functions, parsers added by ``lumbar.cli``.

Kept beside the acquisition code so that ``lumbar.cli`` only needs one call,
:func:`add_acquisition_parsers`, and BLE libraries load only when these commands run.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_acquisition_parsers", "cmd_emulate", "cmd_record", "cmd_scan", "default_emulated_sensors"]

EXIT_OK, EXIT_INVALID, EXIT_ERROR = 0, 1, 2
RECORD_FILE = "lumbar-recording.h5"


def default_emulated_sensors(spec: str | None = None, faults: Any = None) -> list[Any]:
    """Emulated sensors from ``"family:placement,…"`` (default: lumbar_ref at L1, polar_pmd at S1)."""
    from lumbar.acquisition.emulated import EmulatedSensor, Faults

    spec = spec or "lumbar_ref:lumbar,polar_pmd:sacrum"
    out = []
    for i, item in enumerate(p.strip() for p in spec.split(",") if p.strip()):
        family, _, placement = item.partition(":")
        out.append(EmulatedSensor(family, placement or "lumbar", seed=i, faults=faults or Faults()))
    return out


def _faults(args: argparse.Namespace) -> Any:
    from lumbar.acquisition.emulated import Faults

    disconnects = []
    for d in args.disconnect or []:
        at, _, away = d.partition(":")
        disconnects.append((float(at), float(away or 5.0)))
    return Faults(drop_prob=args.drop, corrupt_prob=args.corrupt, disconnects=tuple(disconnects))


def _add_emulator_args(p: argparse.ArgumentParser) -> None:
    from lumbar.simulate import MOVEMENTS

    p.add_argument("--protocol", default="flexion", choices=sorted(MOVEMENTS), help="movement of the emulated patient")
    p.add_argument("--emulated-sensors", default=None, metavar="FAMILY:PLACEMENT,...",
                   help="emulated sensors (default lumbar_ref:lumbar,polar_pmd:sacrum; families lumbar_ref, "
                        "polar_pmd, thingy52)")
    p.add_argument("--time-scale", type=float, default=None, metavar="X",
                   help="run the emulator and the reader on a virtual clock X times faster than real time")
    p.add_argument("--drop", type=float, default=0.0, metavar="P", help="emulated fault: probability a notification is lost")
    p.add_argument("--corrupt", type=float, default=0.0, metavar="P", help="emulated fault: probability a notification is damaged")
    p.add_argument("--disconnect", action="append", metavar="AT:AWAY",
                   help="emulated fault: drop the link AT s after start for AWAY s (repeatable)")
    p.add_argument("--seed", type=int, default=1, help="seed of the emulated patient and links (default 1)")


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- scan
def cmd_scan(args: argparse.Namespace) -> int:
    """List advertising sensors (name, address, family, RSSI)."""
    from lumbar.acquisition.reader import discover

    async def main() -> list[Any]:
        if not args.emulated:
            return await discover(args.timeout, all_devices=args.all)
        from lumbar.acquisition.emulated import Emulator

        sensors = default_emulated_sensors(args.emulated_sensors or "lumbar_ref:lumbar,polar_pmd:sacrum,thingy52:thigh_left")
        async with Emulator(sensors, movement="quiet-standing", duration_s=30.0) as emu:
            assert emu.radio is not None
            return await discover(args.timeout, backend=emu.radio.scanner_backend, all_devices=args.all)

    found = asyncio.run(main())
    if not found:
        print(f"no sensors found in {args.timeout:g} s (are they on and advertising? --all lists every device)")
        return EXIT_OK
    rows = [[d.name or "?", d.address, d.family or "(unknown)", "" if d.rssi_dbm is None else f"{d.rssi_dbm} dBm"]
            for d in found]
    print(_table(rows, ["name", "address", "family", "RSSI"]))
    return EXIT_OK


# ---------------------------------------------------------------------------------------- record
def _progress_printer(stream: Any) -> Any:
    from lumbar.acquisition.recorder import format_progress

    tty = stream.isatty()
    last = [-1e9]

    def show(elapsed: float, status: dict[str, Any]) -> None:
        line = format_progress(elapsed, status)
        if tty:
            stream.write("\r" + line[:200] + "\x1b[K")
        elif elapsed - last[0] >= 5.0:  # a log file gets a line every 5 s, not a carriage-return soup
            stream.write(line + "\n")
            last[0] = elapsed
        stream.flush()

    return show


def _summary(result: Any) -> None:
    print()
    rows = []
    for sid, st in result.status.items():
        rows.append([sid, st.family or "?", st.address or "?", str(st.samples), f"{st.loss_pct:.2f}%",
                     str(st.corrupt_packets), str(st.reconnects),
                     "" if st.battery_pct is None else f"{st.battery_pct:.0f}%", st.message])
    print(_table(rows, ["sensor", "family", "address", "samples", "lost", "corrupt", "reconnects", "battery", "message"]))
    state = "valid" if result.valid else "INVALID"
    print(f"\n{result.path}: {result.duration_s:.1f} s recorded, file {state}")
    for p in result.problems:
        print(f"  {p}")


def cmd_record(args: argparse.Namespace) -> int:
    """Record sensors (or the emulated default) into a session file with a live progress line."""
    from lumbar.acquisition.reader import SensorTarget
    from lumbar.acquisition.recorder import Recorder
    from lumbar.errors import ValidationError
    from lumbar.types import SessionInfo

    if not args.sensor and not args.emulated:
        raise ValidationError("give at least one --sensor PLACEMENT=ADDRESS, or --emulated for the emulated sensors")
    wanted = []
    for item in args.sensor or []:
        placement, sep, addr = item.partition("=")
        if not sep or not addr:
            raise ValidationError(f"--sensor must look like lumbar=AA:BB:CC:DD:EE:FF (or =NAME), got {item!r}")
        wanted.append((placement.strip(), addr.strip()))
    duration = args.duration if args.duration is not None else (60.0 if args.emulated else None)
    out = Path(args.output)
    session = SessionInfo(subject_code=args.subject, operator=args.operator, protocol=args.protocol or "",
                          notes="emulated sensors" if args.emulated else "")
    show = _progress_printer(sys.stdout)
    holder: dict[str, Any] = {}

    def targets_for(addresses: dict[str, str] | None = None) -> list[Any]:
        out_t = []
        for placement, addr in wanted:
            is_addr = addr.count(":") == 5 or addr.count("-") == 4
            out_t.append(SensorTarget(placement, address=addr if is_addr else None, name=None if is_addr else addr,
                                      rate_hz=args.rate_hz))
        for placement, addr in (addresses or {}).items():
            out_t.append(SensorTarget(placement, address=addr, rate_hz=args.rate_hz))
        return out_t

    async def main() -> Any:
        if not args.emulated:
            rec = Recorder(targets_for(), out, session, overwrite=args.force)
            holder["rec"] = rec
            return await rec.run(duration, show)
        from lumbar.acquisition.emulated import Emulator

        sensors = default_emulated_sensors(args.emulated_sensors, _faults(args))
        emu = Emulator(sensors, movement=args.protocol or "flexion", duration_s=(duration or 600.0) + 30.0,
                       rate_hz=max(200.0, args.rate_hz), seed=args.seed, time_scale=args.time_scale)
        async with emu:
            assert emu.radio is not None
            print("emulated sensors:")
            for line in emu.describe():
                print("  " + line)
            addresses = {s.placement: emu.address(s) for s in sensors}
            rec = Recorder(targets_for(addresses), out, session, clock=emu.clock, overwrite=args.force,
                           scanner_backend=emu.radio.scanner_backend, client_backend=emu.radio.client_backend,
                           hold_clock_s=20.0)  # a virtual clock stands still while the sensors connect
            holder["rec"] = rec
            return await rec.run(duration, show)

    what = "until Ctrl-C" if duration is None else f"for {duration:g} s"
    print(f"recording {what} → {out}")
    try:
        result = asyncio.run(main())
    except KeyboardInterrupt:
        rec = holder.get("rec")
        result = getattr(rec, "cancelled_result", None)
        if result is None:
            raise
        print("\nstopped (Ctrl-C); the file is closed and complete")
    _summary(result)
    return EXIT_OK if result.valid else EXIT_INVALID


# ---------------------------------------------------------------------------------------- emulate
def cmd_emulate(args: argparse.Namespace) -> int:
    """Run emulated sensors with a live reader on them (Ctrl-C stops)."""
    from lumbar.acquisition.emulated import Emulator
    from lumbar.acquisition.reader import Reader, SensorTarget
    from lumbar.acquisition.recorder import format_progress

    sensors = default_emulated_sensors(args.emulated_sensors, _faults(args))

    async def main() -> None:
        emu = Emulator(sensors, movement=args.protocol, duration_s=args.duration + 30.0, seed=args.seed,
                       time_scale=args.time_scale)
        async with emu:
            assert emu.radio is not None
            print(f"emulating {len(sensors)} sensor(s) on an in-process virtual radio "
                  f"(patient: {args.protocol}, {args.duration:g} s of data):")
            for line in emu.describe():
                print("  " + line)
            print("the virtual link lives in this process; a reader follows the sensors here (Ctrl-C stops)")
            targets = [SensorTarget(s.placement, address=emu.address(s)) for s in sensors]
            reader = Reader(targets, lambda _b: None, clock=emu.clock, scanner_backend=emu.radio.scanner_backend,
                            client_backend=emu.radio.client_backend)
            start = emu.clock.monotonic()
            async with reader:
                while emu.clock.monotonic() - start < args.duration:
                    await emu.clock.sleep(1.0)
                    sys.stdout.write("\r" + format_progress(emu.clock.monotonic() - start, reader.status)[:200] + "\x1b[K")
                    sys.stdout.flush()
            print()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print("\nstopped")
    return EXIT_OK


def add_acquisition_parsers(sub: Any) -> None:
    """Add ``scan``, ``record`` and ``emulate`` to the ``lumbar`` sub-command parsers."""
    p = sub.add_parser("scan", help="list advertising sensors: name, address, family, RSSI")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S", help="scan duration, s (default 5)")
    p.add_argument("--all", action="store_true", help="also list devices of no known sensor family")
    p.add_argument("--emulated", action="store_true", help="scan the emulated sensors instead of the radio")
    p.add_argument("--emulated-sensors", default=None, metavar="FAMILY:PLACEMENT,...", help="emulated sensors to list")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("record", help="record sensors into a session file (--emulated: emulated sensors at L1 and S1)")
    p.add_argument("--sensor", action="append", metavar="PLACEMENT=ADDRESS",
                   help="a sensor and where it is worn, e.g. lumbar=C0:11:22:33:44:55 (repeatable; "
                        "an advertised name works instead of the address)")
    p.add_argument("--emulated", action="store_true",
                   help="record emulated sensors on the emulated patient (default lumbar_ref at L1, polar_pmd at S1)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="seconds to record (default: until Ctrl-C; 60 with --emulated)")
    p.add_argument("-o", "--output", default=RECORD_FILE, help=f"session file (default {RECORD_FILE})")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing file")
    p.add_argument("--subject", default="S001", help="pseudonymous subject code (never a name; default S001)")
    p.add_argument("--operator", default="", help="operator code or initials")
    p.add_argument("--rate-hz", type=float, default=200.0, help="sample rate to ask for, Hz (default 200)")
    _add_emulator_args(p)
    p.set_defaults(func=cmd_record, protocol=None)

    p = sub.add_parser("emulate", help="run emulated sensors (with a live reader on them) for manual tries")
    p.add_argument("--duration", type=float, default=600.0, metavar="S", help="seconds to run (default 600; Ctrl-C stops)")
    _add_emulator_args(p)
    p.set_defaults(func=cmd_emulate)
