"""The `lumbar` command line, run as a user runs it."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lumbar.cli import main


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lumbar.cli", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def flexion_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("cli") / "flex.h5"
    assert main(["simulate", "--protocol", "flexion", "--duration", "40", "--reps", "4", "--seed", "2",
                 "--rate-hz", "100", "-o", str(p)]) == 0
    return p


def test_simulate_info_validate(flexion_file, capsys):
    capsys.readouterr()
    assert main(["info", str(flexion_file)]) == 0
    out = capsys.readouterr().out
    assert "SIM001" in out and "flexion" in out and "lumbar" in out and "sacrum" in out and "4000" in out
    assert main(["info", "--json", str(flexion_file)]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["sensors"]["lumbar"]["samples"] == 4000 and s["has_truth"] and s["complete"]
    assert not any(e["label"].startswith("rep_") for e in s["events"])  # truth stays in 'truth'
    assert main(["validate", str(flexion_file)]) == 0


def test_simulate_refuses_existing_file_and_bad_options(flexion_file, capsys):
    assert main(["simulate", "--protocol", "flexion", "-o", str(flexion_file)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["simulate", "--protocol", "flexion", "--reps", "40", "--duration", "20", "-o",
                 str(flexion_file.with_name("x.h5"))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "do not fit" in err
    assert main(["simulate", "--subject", "Jane Doe", "-o", str(flexion_file.with_name("y.h5"))]) == 2
    assert "pseudonymous" in capsys.readouterr().err


def test_analyze_json(flexion_file):
    r = run("analyze", "--json", str(flexion_file))
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["protocol"] == "flexion" and d["results"]["repetitions"]["count"] == 4


def test_decode_payloads():
    from lumbar_sensors.synth import stream_payloads

    payloads, context, n_samples = stream_payloads("lumbar_ref", 3, seed=1)
    r = run("decode", "--family", "lumbar_ref", *[p.hex() for p in payloads])
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert sum(p["n_samples"] for p in d["packets"]) == n_samples
    bad = run("decode", "--family", "lumbar_ref", "00")
    assert bad.returncode == 1 and "lumbar_ref" in bad.stderr and "Traceback" not in bad.stderr


def test_every_movement_simulates(tmp_path):
    from lumbar.simulate import MOVEMENTS

    for mv in MOVEMENTS:
        p = tmp_path / f"{mv}.h5"
        assert main(["simulate", "--protocol", mv, "--duration", "60", "-o", str(p)]) == 0, mv
        assert main(["validate", str(p)]) == 0


def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo.h5"
    r = run("demo", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "Subject       SIM001" in r.stdout and "Repetitions of trunk flexion:" in r.stdout and out.exists()


def test_sample_recording_is_valid(repo_root, capsys):
    sample = repo_root / "recordings" / "sample-flexion.h5"
    assert main(["validate", str(sample)]) == 0
    assert main(["info", str(sample)]) == 0
    assert "flexion" in capsys.readouterr().out
