"""Damaged, foreign and wrong files each give one clear project error, never a traceback."""
from __future__ import annotations

import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from lumbar.cli import main
from lumbar.errors import SessionFileError
from lumbar.storage import read_session, validate_file, write_session
from tests.storage.synthetic import make_batch


@pytest.fixture
def good_file(tmp_path, two_sensors, session_info):
    p = tmp_path / "good.h5"
    batches = {s.sensor_id: make_batch(s.sensor_id, 20000) for s in two_sensors}
    write_session(p, session_info, two_sensors, batches)
    return p


def _copy(src, dst):
    shutil.copyfile(src, dst)
    return dst


def truncated(good, tmp):
    p = _copy(good, tmp / "truncated.h5")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


def corrupted_data_block(good, tmp):
    """Overwrite the middle of a compressed data chunk, as a bad disk sector would."""
    p = _copy(good, tmp / "corrupted.h5")
    with h5py.File(p, "r") as f:
        info = f["sensors/lumbar/acc"].id.get_chunk_info(0)
    raw = bytearray(p.read_bytes())
    mid = info.byte_offset + info.size // 2
    raw[mid : mid + 64] = b"\xff" * 64
    p.write_bytes(bytes(raw))
    return p


def wrong_version(good, tmp):
    p = _copy(good, tmp / "v99.h5")
    with h5py.File(p, "r+") as f:
        f.attrs["format_version"] = 99
    return p


def wrong_shape(good, tmp):
    p = _copy(good, tmp / "shape.h5")
    with h5py.File(p, "r+") as f:
        del f["sensors/sacrum/acc"]
        f["sensors/sacrum"].create_dataset("acc", data=np.zeros((20000, 2), np.float32))
    return p


def mismatched_lengths(good, tmp):
    p = _copy(good, tmp / "lengths.h5")
    with h5py.File(p, "r+") as f:
        f["sensors/lumbar/gyro"].resize(19990, axis=0)
    return p


def time_backwards(good, tmp):
    p = _copy(good, tmp / "backwards.h5")
    with h5py.File(p, "r+") as f:
        f["sensors/lumbar/time_s"][5000] = 1.0
    return p


def missing_group(good, tmp):
    p = _copy(good, tmp / "nogroup.h5")
    with h5py.File(p, "r+") as f:
        del f["events"]
    return p


def foreign_hdf5(good, tmp):
    p = tmp / "foreign.h5"
    with h5py.File(p, "w") as f:
        f["x"] = np.arange(3)
    return p


def not_hdf5(good, tmp):
    p = tmp / "notes.h5"
    p.write_text("this is a text file")
    return p


def empty(good, tmp):
    p = tmp / "empty.h5"
    p.write_bytes(b"")
    return p


CASES = {
    truncated: "truncated or damaged|not an HDF5",
    corrupted_data_block: "damaged",
    wrong_version: "format version 99, newer",
    wrong_shape: r"'acc' has shape \(20000, 2\), expected \(N, 3\)",
    mismatched_lengths: "19990 samples but 'time_s' has 20000",
    time_backwards: "time runs backwards",
    missing_group: "group 'events' is missing",
    foreign_hdf5: "not a lumbar session file",
    not_hdf5: "not an HDF5 session file",
    empty: "empty",
}


@pytest.mark.parametrize("make_bad", list(CASES), ids=[f.__name__ for f in CASES])
def test_bad_file_gives_clear_error(make_bad, good_file, tmp_path):
    bad = make_bad(good_file, tmp_path)
    pattern = CASES[make_bad]
    with pytest.raises(SessionFileError, match=pattern) as exc:
        read_session(bad)
    assert str(bad) in str(exc.value)  # the message names the file
    rep = validate_file(bad)
    assert not rep.ok
    assert any(__import__("re").search(pattern, p) for p in rep.problems), rep.problems


def test_good_file_is_valid(good_file):
    rep = validate_file(good_file)
    assert rep.ok, rep.problems


def test_missing_file(tmp_path):
    with pytest.raises(SessionFileError, match="file not found"):
        read_session(tmp_path / "nope.h5")


def test_validate_cli_exit_codes_without_traceback(good_file, tmp_path, capsys):
    bad = truncated(good_file, tmp_path)
    assert main(["validate", str(good_file)]) == 0
    assert main(["validate", str(good_file), str(bad)]) == 1
    out = capsys.readouterr()
    assert "INVALID" in out.out and "Traceback" not in out.out + out.err


def test_validate_cli_in_subprocess(good_file, tmp_path):
    bad = corrupted_data_block(good_file, tmp_path)
    r = subprocess.run([sys.executable, "-m", "lumbar.cli", "validate", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "damaged" in r.stdout and "Traceback" not in r.stdout + r.stderr


def test_info_cli_on_bad_file_is_one_line(good_file, tmp_path, capsys):
    bad = wrong_version(good_file, tmp_path)
    assert main(["info", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "newer than this software" in err and "\n" not in err


def test_units_warning_for_g(tmp_path, two_sensors, session_info):
    p = tmp_path / "g.h5"
    b = make_batch("lumbar", 1000)
    from dataclasses import replace

    write_session(p, session_info, two_sensors[:1], {"lumbar": replace(b, acc=b.acc / 9.81)})
    rep = validate_file(p)
    assert rep.ok and any("units of g" in w for w in rep.warnings)
