"""Batch analysis: a tidy table over a tree, a corrupted file reported and skipped, resume, Dask."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lumbar.cli import main
from lumbar.interop.batch import FAILURES_FILE, STATE_FILE, TABLE_COLUMNS, run_batch

from .conftest import make_session

N_GOOD = 4


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    for i in range(N_GOOD):
        sub = root / f"site{i % 2}" / f"P{i:03d}"
        sub.mkdir(parents=True)
        make_session(sub / f"s{i}.h5", seed=10 + i, subject=f"P{i:03d}")
    (root / "site1" / "broken.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00garbage" * 100)  # deliberately corrupt
    return root


def _table(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _state_lines(out: Path) -> int:
    return len((out / STATE_FILE).read_text().splitlines())


def test_table_failure_and_resume(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    s = run_batch(tree, out, jobs=2, progress=False)
    assert (s.total, s.analysed, s.failed, s.skipped) == (N_GOOD + 1, N_GOOD, 1, 0)
    assert s.failures[0][0] == "site1/broken.h5" and "SessionFileError" in s.failures[0][1]
    rows = _table(out / "results.csv")
    assert tuple(rows[0]) == TABLE_COLUMNS
    assert {r["file"] for r in rows} == {f"site{i % 2}/P{i:03d}/s{i}.h5" for i in range(N_GOOD)}
    roms = [r for r in rows if r["result"] == "lumbar_rom" and r["quantity"] == "rom" and r["component"] == "flexion"]
    assert len(roms) == N_GOOD and all(r["unit"] == "rad" and 0.3 < float(r["value"]) < 1.2 for r in roms)
    assert any(r["result"] == "repetitions" and r["item"] == "repetitions[1]" for r in rows)
    fails = _table(out / FAILURES_FILE)
    assert [f["file"] for f in fails] == ["site1/broken.h5"]
    # second run: nothing recomputed, same table
    lines = _state_lines(out)
    s2 = run_batch(tree, out, jobs=1, progress=False)
    assert (s2.analysed, s2.failed, s2.skipped) == (0, 0, N_GOOD + 1)
    assert _state_lines(out) == lines
    assert _table(out / "results.csv") == rows
    assert [f["file"] for f in _table(out / FAILURES_FILE)] == ["site1/broken.h5"]  # still reported
    # a new file is the only one analysed
    make_session(tree / "site0" / "new.h5", seed=99, subject="P999")
    try:
        s3 = run_batch(tree, out, jobs=1, progress=False)
        assert (s3.analysed, s3.skipped) == (1, N_GOOD + 1)
    finally:
        (tree / "site0" / "new.h5").unlink()


def test_cut_state_line_is_redone(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_batch(tree, out, jobs=1, progress=False)
    text = (out / STATE_FILE).read_text().splitlines()
    (out / STATE_FILE).write_text("\n".join(text[:-1] + [text[-1][:40]]) + "\n")  # killed mid-write
    s = run_batch(tree, out, jobs=1, progress=False)
    assert s.analysed + s.failed == 1 and s.skipped == N_GOOD


def test_cli_batch_exit_code_and_progress(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["batch", str(tree), "-o", str(tmp_path / "o"), "--jobs", "1"])
    cap = capsys.readouterr()
    assert rc == 1  # one file failed
    assert "failed: site1/broken.h5" in cap.out and f"{N_GOOD + 1}/{N_GOOD + 1}" in cap.err


def test_dask_local_cluster_gives_the_same_table(tree: Path, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed", reason="dask.distributed (extra 'interop') is not installed")
    run_batch(tree, tmp_path / "local", jobs=1, progress=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        s = run_batch(tree, tmp_path / "dask", scheduler=client, progress=False)
        assert (s.analysed, s.failed) == (N_GOOD, 1)
        s2 = run_batch(tree, tmp_path / "dask", scheduler=cluster.scheduler_address, progress=False)
        assert s2.skipped == N_GOOD + 1 and s2.analysed == 0
    local = _table(tmp_path / "local" / "results.csv")
    dask = _table(tmp_path / "dask" / "results.csv")
    assert dask == local
    rec = [json.loads(x) for x in (tmp_path / "dask" / STATE_FILE).read_text().splitlines()]
    assert sorted(r["status"] for r in rec) == ["failed"] + ["ok"] * N_GOOD
