"""``lumbar decode``: print what notification payloads decode to (JSON, SI units, device time).

Wiring into the ``lumbar`` CLI is two lines::

    from lumbar_sensors.cli_decode import add_decode_parser, run_decode
    add_decode_parser(subparsers)          # then dispatch args.func(args) or run_decode(args)
"""
from __future__ import annotations

import argparse
import inspect
import json
import sys
from typing import Any

from lumbar.errors import DecodeError, LumbarError, ValidationError

from . import registry

__all__ = ["decode_payloads", "add_decode_parser", "run_decode"]


def _new_stream(family: str, context: dict[str, Any] | None) -> Any:
    mod = registry.module(family)
    context = dict(context or {})
    params = inspect.signature(mod.new_stream).parameters
    unknown = sorted(set(context) - set(params))
    if unknown:
        raise ValidationError(
            f"{family}: unknown context key(s) {', '.join(unknown)}; accepted: {', '.join(params) or 'none'}"
        )
    try:
        return mod.new_stream(**context)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{family}: bad context {context}: {exc}") from None


def decode_payloads(family: str, hex_payloads: list[str], context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Decode payloads in order through one stream state.

    Parameters
    ----------
    family : str
        Registry name (``"polar_pmd"``, ``"lumbar_ref"``…).
    hex_payloads : list of str
        Notification payloads as hex (spaces, colons and a ``0x`` prefix are ignored).
    context : dict, optional
        Keyword arguments of the family's ``new_stream`` (rates, ranges, factors, mode…).

    Returns
    -------
    dict
        ``{"family", "context", "packets": [...], "n_samples", "n_errors"}``; each packet is the
        decoded JSON (acc m/s², gyro rad/s, device time s, seq, flags) or ``{"error": msg}``.

    Raises
    ------
    ValidationError
        Unknown family or context; a payload that is not hex.
    """
    stream = _new_stream(family, context)
    mod = registry.module(family)
    packets: list[dict[str, Any]] = []
    total = errors = 0
    for i, text in enumerate(hex_payloads):
        clean = text.strip().lower().removeprefix("0x").replace(" ", "").replace(":", "")
        try:
            payload = bytes.fromhex(clean)
        except ValueError:
            raise ValidationError(f"payload {i + 1} is not hexadecimal: {text!r}") from None
        try:
            out = mod.decode(payload, stream).to_json()
        except DecodeError as exc:
            errors += 1
            packets.append({"index": i, "error": str(exc)})
            continue
        total += out["n_samples"]
        packets.append({"index": i, **out})
    return {"family": family, "context": dict(context or {}), "packets": packets, "n_samples": total, "n_errors": errors}


def add_decode_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``decode`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "decode",
        help="decode BLE notification payloads of a sensor family to JSON",
        description="Decode notification payloads (hex) with a sensor family's decoder; prints JSON in SI units "
        "(acc m/s², gyro rad/s) with device timestamps (s).",
    )
    p.add_argument("--family", required=True, choices=registry.FAMILY_NAMES, help="sensor family")
    p.add_argument("--context", default=None, help='stream context as JSON, e.g. \'{"acc_factor": 0.000244}\'')
    p.add_argument("payloads", nargs="+", metavar="HEX", help="payloads in order, as hex")
    p.set_defaults(func=run_decode)
    return p


def run_decode(args: argparse.Namespace) -> int:
    """Run ``decode``: JSON on stdout; each error as one line on stderr; exit 1 on any error."""
    try:
        context = json.loads(args.context) if args.context else None
        if context is not None and not isinstance(context, dict):
            raise ValidationError(f"--context must be a JSON object, got {args.context!r}")
        result = decode_payloads(args.family, list(args.payloads), context)
    except json.JSONDecodeError as exc:
        print(f"lumbar decode: error: --context is not valid JSON ({exc.msg})", file=sys.stderr)
        return 1
    except LumbarError as exc:
        print(f"lumbar decode: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=1))
    for pkt in result["packets"]:
        if "error" in pkt:
            print(f"lumbar decode: error: payload {pkt['index'] + 1}: {pkt['error']}", file=sys.stderr)
    return 1 if result["n_errors"] else 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m lumbar_sensors.cli_decode``)."""
    parser = argparse.ArgumentParser(prog="lumbar")
    add_decode_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return run_decode(args)


if __name__ == "__main__":
    raise SystemExit(main())
