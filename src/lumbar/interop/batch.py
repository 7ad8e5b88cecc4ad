"""Batch analysis of every session file in a folder tree into one tidy table.

``lumbar batch DIR --jobs N [-o OUT] [--scheduler ADDRESS]``:

* finds every ``*.h5`` below ``DIR`` (sorted; the output folder is skipped);
* analyses each with :func:`lumbar.analysis.analyze_file` — on ``N`` local processes, or on a Dask
  distributed cluster with ``--scheduler`` (the same function runs on the workers, which need this
  package installed and the files at the same paths);
* records each outcome as one JSON line in ``OUT/batch_state.jsonl`` as soon as it arrives, keyed by the
  file's relative path, size and modification time: a second run skips files already done (or already
  failed, unless ``retry_failed``) and analyses only new or changed ones; a run that is killed loses at
  most the files in flight;
* writes ``OUT/results.csv``, one row per number (tidy/long format: ``file, subject_code, session_id,
  protocol, result, item, quantity, component, value, unit``), and ``OUT/failures.csv`` (file, reason);
* shows progress on one stderr line.

Files are not modified unless ``store=True`` (then the derived data and metrics are written into them,
as ``lumbar analyze`` does).
"""
from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterable, Iterator

__all__ = ["STATE_FILE", "TABLE_FILE", "FAILURES_FILE", "TABLE_COLUMNS", "BatchSummary", "find_sessions",
           "analyse_one", "tidy_rows", "run_batch"]

STATE_FILE = "batch_state.jsonl"
TABLE_FILE = "results.csv"
FAILURES_FILE = "failures.csv"
TABLE_COLUMNS = ("file", "subject_code", "session_id", "protocol", "result", "item", "quantity", "component",
                 "value", "unit")
_MAX_VECTOR = 8  # longer lists are curves (cross-correlation lags …), not table entries
_SKIP_KEYS = {"units", "type", "reason", "planes", "binning"}


@dataclass
class BatchSummary:
    total: int = 0
    analysed: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    table: Path | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def sessions_per_min(self) -> float:
        return 60.0 * self.analysed / self.seconds if self.seconds > 0 else float("nan")


def find_sessions(root: str | Path, exclude: Path | None = None) -> list[Path]:
    root = Path(root)
    ex = exclude.resolve() if exclude is not None else None
    out = []
    for p in sorted(root.rglob("*.h5")):
        if ex is not None and ex in p.resolve().parents:
            continue
        if p.is_file():
            out.append(p)
    return out


def _key(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return None


def _flatten(result: str, d: dict[str, Any], units: dict[str, str], item: str, prefix: str = "") -> Iterator[dict]:
    planes = d.get("planes")
    for k, v in d.items():
        if k in _SKIP_KEYS or k.endswith("_idx") or v is None:
            continue
        q = prefix + k
        unit = units.get(k, "")
        x = _num(v)
        if x is not None:
            yield {"result": result, "item": item, "quantity": q, "component": "", "value": x, "unit": unit}
        elif isinstance(v, list) and v and all(_num(e) is not None for e in v) and len(v) <= _MAX_VECTOR:
            for i, e in enumerate(v):
                comp = planes[i] if isinstance(planes, list) and len(planes) == len(v) else str(i)
                yield {"result": result, "item": item, "quantity": q, "component": comp, "value": _num(e), "unit": unit}
        elif isinstance(v, list) and v and all(isinstance(e, dict) for e in v):
            for i, e in enumerate(v, 1):
                yield from _flatten(result, e, e.get("units", {}), f"{q}[{i}]")
        elif isinstance(v, dict):
            yield from _flatten(result, v, v.get("units", units), item, prefix=f"{q}.")


def tidy_rows(file: str, meta: dict[str, str], analysis: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per number of an ``Analysis.to_dict()`` (SI units)."""
    base = {"file": file, **{k: meta.get(k, "") for k in ("subject_code", "session_id", "protocol")}}
    rows = [{**base, "result": "session", "item": "", "quantity": "rate_hz", "component": "",
             "value": analysis.get("rate_hz"), "unit": "Hz"}]
    for name, res in analysis.get("results", {}).items():
        rows += [{**base, **r} for r in _flatten(name, res, res.get("units", {}), "")]
    return rows


def analyse_one(path: str, rel: str, store: bool = False, method: str = "offline") -> dict[str, Any]:
    """Analyse one file; never raises: failures come back as ``status = "failed"`` with the reason."""
    t0 = time.perf_counter()
    p = Path(path)
    try:
        from lumbar.analysis import analyze_file

        a = analyze_file(p, store=store, method=method)
        meta = _session_meta(p)
        rows = tidy_rows(rel, meta, a.to_dict())
        status, reason = "ok", ""
    except Exception as e:  # a damaged or unanalysable file is recorded, never fatal to the batch
        rows, status = [], "failed"
        reason = f"{type(e).__name__}: {e}".replace("\n", " ")
    size, mtime = _key(p) if p.exists() else (0, 0)
    return {"file": rel, "size": size, "mtime_ns": mtime, "status": status, "reason": reason, "rows": rows,
            "seconds": time.perf_counter() - t0}


def _session_meta(path: Path) -> dict[str, str]:
    from lumbar.storage.reader import open_h5

    with open_h5(path) as (f, _):
        a = f["session"].attrs
        return {k: (a[k].decode() if isinstance(a.get(k), bytes) else str(a.get(k, "")))
                for k in ("subject_code", "session_id", "protocol")}


def _load_state(path: Path) -> dict[str, dict[str, Any]]:
    state: dict[str, dict[str, Any]] = {}
    if path.exists():
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a killed run: that file is simply done again
                state[rec["file"]] = rec
    return state


class _Progress:
    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self.t0 = time.perf_counter()
        self.done = self.failed = 0

    def update(self, failed: bool) -> None:
        self.done += 1
        self.failed += failed
        if not self.enabled:
            return
        dt = time.perf_counter() - self.t0
        rate = 60.0 * self.done / dt if dt > 0 else 0.0
        width = 30
        fill = int(width * self.done / self.total) if self.total else width
        eta = (self.total - self.done) / (rate / 60.0) if rate > 0 else float("nan")
        eta_s = f"{int(eta // 60)}:{int(eta % 60):02d}" if math.isfinite(eta) else "-"
        sys.stderr.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total} "
                         f"{self.failed} failed  {rate:.1f} sessions/min  ETA {eta_s} ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.total:
            sys.stderr.write("\n")


def _run_local(todo: list[tuple[str, str]], jobs: int, store: bool, method: str) -> Iterator[dict[str, Any]]:
    if jobs <= 1:
        for path, rel in todo:
            yield analyse_one(path, rel, store, method)
        return
    # spawn: workers start clean (no inherited threads or open HDF5 handles from the caller)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as ex:
        futs = [ex.submit(analyse_one, path, rel, store, method) for path, rel in todo]
        for fut in as_completed(futs):
            yield fut.result()


def _run_dask(todo: list[tuple[str, str]], scheduler: Any, store: bool, method: str) -> Iterator[dict[str, Any]]:
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError as e:  # pragma: no cover - depends on the environment
        from lumbar.errors import LumbarError

        raise LumbarError("--scheduler needs dask.distributed: pip install 'lumbar-motor-control[interop]'") from e
    own = not hasattr(scheduler, "submit")
    client = Client(scheduler) if own else scheduler
    try:
        futs = [client.submit(analyse_one, path, rel, store, method, pure=False, key=f"lumbar-analyse-{rel}")
                for path, rel in todo]
        for fut in dask_completed(futs):
            yield fut.result()
    finally:
        if own:
            client.close()


def run_batch(root: str | Path, out_dir: str | Path | None = None, *, jobs: int = 1, scheduler: Any = None,
              store: bool = False, method: str = "offline", retry_failed: bool = False,
              progress: bool = True) -> BatchSummary:
    """Analyse every session below ``root``; see the module documentation.

    Parameters
    ----------
    root : path
    out_dir : path, optional
        Where the table, failures and state go; default ``root/lumbar-batch``.
    jobs : int
        Local worker processes (1: in this process).
    scheduler : str or distributed.Client, optional
        A Dask scheduler address (``tcp://host:8786``) or client; then ``jobs`` is ignored.
    """
    root = Path(root)
    out = Path(out_dir) if out_dir is not None else root / "lumbar-batch"
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE_FILE
    state = _load_state(state_path)
    files = find_sessions(root, exclude=out)
    summary = BatchSummary(total=len(files))
    todo: list[tuple[str, str]] = []
    for p in files:
        rel = p.relative_to(root).as_posix()
        rec = state.get(rel)
        if rec is not None and (rec["size"], rec["mtime_ns"]) == _key(p) and (rec["status"] == "ok" or not retry_failed):
            summary.skipped += 1
            continue
        todo.append((str(p), rel))
    bar = _Progress(len(todo), progress)
    t0 = time.perf_counter()
    results: Iterable[dict[str, Any]] = (_run_dask(todo, scheduler, store, method) if scheduler is not None
                                         else _run_local(todo, jobs, store, method))
    try:
        with open(state_path, "a", encoding="utf-8") as sf:
            for rec in results:
                sf.write(json.dumps(rec, allow_nan=True) + "\n")
                sf.flush()
                os.fsync(sf.fileno())
                state[rec["file"]] = rec
                failed = rec["status"] != "ok"
                summary.analysed += not failed
                summary.failed += failed
                bar.update(failed)
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - t0
    present = {p.relative_to(root).as_posix() for p in files}
    table = out / TABLE_FILE
    with open(table, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=TABLE_COLUMNS)
        w.writeheader()
        for rel in sorted(present):
            rec = state.get(rel)
            if rec and rec["status"] == "ok":
                w.writerows(rec["rows"])
    with open(out / FAILURES_FILE, "w", newline="", encoding="utf-8") as f:
        w2 = csv.writer(f)
        w2.writerow(["file", "reason"])
        for rel in sorted(present):
            rec = state.get(rel)
            if rec and rec["status"] != "ok":
                w2.writerow([rel, rec["reason"]])
                summary.failures.append((rel, rec["reason"]))
    summary.table = table
    return summary
