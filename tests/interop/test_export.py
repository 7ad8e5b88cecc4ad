"""Motion-BIDS and CSV export: required fields of the specification, and numbers that read back equal."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from lumbar.interop.export_bids import export_bids, read_motion_tsv
from lumbar.interop.export_csv import export_csv
from lumbar.interop.import_csv import CsvColumns, import_csv, import_csv_export
from lumbar.storage import read_session
from lumbar.types import STANDARD_G

from .conftest import SECRET_NOTE, SECRET_OPERATOR

# Required by the BIDS specification 1.11.2 (bids-specification.readthedocs.io, "Modality specific
# files" → "Motion"; machine-readable in the BIDS schema: rules.files.raw.motion (entities),
# rules.sidecars.motion.motionRequired / motionTaskInformation (sidecar), rules.tabular_data.motion.
# motionChannels (channels.tsv), rules.json.dataset.dataset_description, rules.tabular_data.
# modality_agnostic.Participants).
REQUIRED_ENTITIES = ("sub", "task", "tracksys")  # ses, acq, run optional
REQUIRED_SIDECAR = {"TaskName", "SamplingFrequency"}
REQUIRED_CHANNEL_COLUMNS = ("name", "component", "type", "tracked_point", "units")  # also the initial order
REQUIRED_DATASET_DESCRIPTION = {"Name", "BIDSVersion"}
CHANNEL_TYPES = {"ACCEL", "ANGACCEL", "GYRO", "JNTANG", "LATENCY", "MAGN", "MISC", "ORNT", "POS", "VEL"}
COMPONENTS = {"x", "y", "z", "quat_x", "quat_y", "quat_z", "quat_w", "n/a"}
LATENCY_RE = re.compile(r"^\d+(\.\d{1,6})?$")  # "ss[.000000]"
MOTION_NAME_RE = re.compile(
    r"^sub-(?P<sub>[A-Za-z0-9]+)(_ses-[A-Za-z0-9]+)?_task-[A-Za-z0-9]+(_acq-[A-Za-z0-9]+)?"
    r"_tracksys-[A-Za-z0-9]+(_run-\d+)?_(motion\.tsv|motion\.json|channels\.tsv)$")


@pytest.fixture(scope="module")
def bids_root(session_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bids")
    export_bids(session_file, root)
    return root


def _tsv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_bids_required_files_and_fields(bids_root: Path, session_file: Path) -> None:
    s = read_session(session_file)
    dd = json.loads((bids_root / "dataset_description.json").read_text())
    assert REQUIRED_DATASET_DESCRIPTION <= dd.keys()
    with open(bids_root / "participants.tsv", encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert lines == ["participant_id", "sub-P017"]  # the pseudonymous code only
    motion = sorted(bids_root.glob("sub-*/ses-*/motion/*_motion.tsv"))
    assert [m.name.split("tracksys-")[1] for m in motion] == ["lumbar_motion.tsv", "sacrum_motion.tsv"]  # one per sensor
    for m in motion:
        for suffix in ("_motion.tsv", "_motion.json", "_channels.tsv"):
            p = m.with_name(m.name.replace("_motion.tsv", suffix))
            assert MOTION_NAME_RE.match(p.name), p.name
            assert all(f"{e}-" in p.name for e in REQUIRED_ENTITIES)
        side = json.loads(m.with_name(m.name.replace(".tsv", ".json")).read_text())
        assert REQUIRED_SIDECAR <= side.keys()
        assert side["SamplingFrequency"] == 100.0 and side["TaskName"] == "flexion"
        rows = _tsv(m.with_name(m.name.replace("_motion.tsv", "_channels.tsv")))
        with open(m.with_name(m.name.replace("_motion.tsv", "_channels.tsv")), encoding="utf-8") as f:
            header = f.readline().rstrip("\n").split("\t")
        assert tuple(header[:5]) == REQUIRED_CHANNEL_COLUMNS
        assert all(r["type"] in CHANNEL_TYPES and r["component"] in COMPONENTS for r in rows)
        assert side["MotionChannelCount"] == len(rows)
        assert side["ACCELChannelCount"] == 3 and side["GYROChannelCount"] == 3
        data = [line.split("\t") for line in m.read_text().splitlines()]
        sid = m.name.split("tracksys-")[1].removesuffix("_motion.tsv")
        assert len(data) == len(s.data[sid])  # no header row, one row per sample
        assert all(len(r) == len(rows) for r in data)
        lat = [i for i, r in enumerate(rows) if r["type"] == "LATENCY"]
        assert all(LATENCY_RE.match(r[lat[0]]) for r in data)
    ev = _tsv(next(bids_root.glob("sub-*/ses-*/motion/*_events.tsv")))
    assert [e["trial_type"] for e in ev] == [e.label for e in s.events]
    assert all({"onset", "duration"} <= e.keys() for e in ev)
    # nothing identifying leaves the file
    text = "".join(p.read_text(encoding="utf-8") for p in bids_root.rglob("*") if p.is_file())
    assert SECRET_OPERATOR not in text and SECRET_NOTE not in text


def test_required_fields_match_the_bids_schema() -> None:
    """The lists above equal what the specification's own schema says (when bidsschematools is installed)."""
    schema = pytest.importorskip("bidsschematools.schema", reason="bidsschematools not installed").load_schema()
    req = set()
    for name, rule in schema.rules.sidecars.motion.items():
        req |= {k for k, v in rule.fields.items() if (v if isinstance(v, str) else v["level"]) == "required"}
    assert req == REQUIRED_SIDECAR
    cols = schema.rules.tabular_data.motion.motionChannels
    required = [c.split("__")[0] for c, lvl in cols.columns.items()
                if (lvl if isinstance(lvl, str) else lvl["level"]) == "required"]
    assert tuple(required) == REQUIRED_CHANNEL_COLUMNS
    ent = schema.rules.files.raw.motion.motion.entities
    short = {k: schema.objects.entities[k].name for k in ent}
    assert {short[k] for k, v in ent.items() if v == "required"} == set(REQUIRED_ENTITIES)
    dd = schema.rules.json.dataset.dataset_description.fields
    assert {k for k, v in dd.items() if (v if isinstance(v, str) else v["level"]) == "required"} == \
        REQUIRED_DATASET_DESCRIPTION


def test_bids_validator_accepts_every_path(bids_root: Path) -> None:
    validator = pytest.importorskip("bids_validator", reason="bids-validator not installed").BIDSValidator()
    paths = ["/" + p.relative_to(bids_root).as_posix() for p in bids_root.rglob("*") if p.is_file()]
    assert paths
    bad = [p for p in paths if not validator.is_bids(p)]
    assert not bad


def test_bids_round_trip_numbers(bids_root: Path, session_file: Path) -> None:
    s = read_session(session_file)
    for sid, b in s.data.items():
        m = next(bids_root.glob(f"sub-*/ses-*/motion/*tracksys-{sid}_motion.tsv"))
        c = read_motion_tsv(m)
        np.testing.assert_allclose(c[f"{sid}_latency"], b.time_s, rtol=0, atol=5e-7)  # 6 decimals
        acc = np.column_stack([c[f"{sid}_acc_{a}"] for a in "xyz"]).astype(np.float32)
        gyro = np.column_stack([c[f"{sid}_gyro_{a}"] for a in "xyz"]).astype(np.float32)
        assert np.array_equal(acc, b.acc.astype(np.float32))
        assert np.array_equal(gyro, b.gyro.astype(np.float32))
        np.testing.assert_array_equal(c[f"{sid}_device_time"], b.device_time_s)
        assert np.array_equal(c[f"{sid}_seq"].astype(np.int64), b.seq)
        assert np.array_equal(c[f"{sid}_flags"].astype(np.uint8), b.flags)


def test_bids_two_sessions_share_one_dataset(session_file: Path, tmp_path: Path) -> None:
    export_bids(session_file, tmp_path, session_label="1")
    export_bids(session_file, tmp_path, session_label="2")
    assert (tmp_path / "participants.tsv").read_text().splitlines() == ["participant_id", "sub-P017"]
    assert sorted(p.name for p in (tmp_path / "sub-P017").iterdir()) == ["ses-1", "ses-2"]


def test_csv_export_header_and_round_trip(session_file: Path, tmp_path: Path) -> None:
    files = export_csv(session_file, tmp_path / "csv")
    lumbar_csv = next(p for p in files if p.name.endswith("_lumbar.csv"))
    header = lumbar_csv.read_text().splitlines()[0].split(",")
    assert header[:3] == ["time_s [s]", "device_time_s [s]", "acc_x [m/s^2]"] and header[5] == "gyro_x [rad/s]"
    meta = next(p for p in files if p.name.endswith("_session.json"))
    back = import_csv_export(meta, tmp_path / "back.h5")
    a, b = read_session(session_file), read_session(back)
    assert a.info == b.info and a.sensors == b.sensors
    assert [(e.label, e.note) for e in a.events] == [(e.label, e.note) for e in b.events]
    np.testing.assert_allclose([e.time_s for e in a.events], [e.time_s for e in b.events], atol=1e-9)
    for sid in a.data:
        x, y = a.data[sid], b.data[sid]
        np.testing.assert_allclose(y.time_s, x.time_s, rtol=0, atol=1e-9)
        assert np.array_equal(x.acc, y.acc) and np.array_equal(x.gyro, y.gyro)
        assert np.array_equal(x.seq, y.seq) and np.array_equal(x.flags, y.flags)


def test_csv_export_of_the_analysed_angles(tmp_path: Path) -> None:
    """An analysed file (here with thigh and shank sensors) also gives its angles, on the analysis grid, in rad with
    the unit in the header, equal to what ``lumbar analyze`` stored; a file not analysed says so in the metadata."""
    import json

    from lumbar.analysis import analyze_file
    from lumbar.interop.export_csv import ANGLE_COLUMNS
    from lumbar.simulate import simulate
    from lumbar.storage.reader import open_h5, read_group
    from lumbar.storage.writer import write_simulated

    sim = simulate("waiters-bow", duration_s=20.0, seed=2,
                   sensors=("lumbar", "sacrum", "thigh_left", "thigh_right", "shank_left", "shank_right"))
    f = write_simulated(tmp_path / "bow.h5", sim, sim.session_info())
    files = export_csv(f, tmp_path / "before")
    assert not any(p.name.endswith("_angles.csv") for p in files)
    meta = json.loads(next(p for p in files if p.name.endswith("_session.json")).read_text())
    assert "run `lumbar analyze`" in meta["angles"]
    analyze_file(f)
    files = export_csv(f, tmp_path / "after")
    angles = next(p for p in files if p.name.endswith("_angles.csv"))
    header = angles.read_text().splitlines()[0].split(",")
    assert header == ["time_s [s]"] + [f"{name} [rad]" for name, _, _ in ANGLE_COLUMNS]  # all worn here
    table = np.loadtxt(angles, delimiter=",", skiprows=1)
    with open_h5(f) as (h, _):
        stored, _ = read_group(h, "derived")
    np.testing.assert_allclose(table[:, 0], stored["time_s"], atol=1e-9)
    np.testing.assert_allclose(table[:, 1], stored["lumbar_angles_rad"][:, 0], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(table[:, header.index("hip_flexion [rad]")], stored["hip_flexion_rad"], rtol=1e-6,
                               atol=1e-9)
    assert np.degrees(table[:, header.index("hip_flexion [rad]")]).max() > 50.0  # the bows
    np.testing.assert_allclose(table[:, header.index("knee_flexion_left [rad]")], stored["shank_left/knee_flexion_rad"],
                               rtol=1e-6, atol=1e-9)
    assert np.abs(np.degrees(table[:, header.index("knee_flexion [rad]")])).max() < 5.0  # knees straight in a bow
    assert json.loads(next(p for p in files if p.name.endswith("_session.json")).read_text())["angles"] == angles.name


def test_declared_csv_units_are_converted(session_file: Path, tmp_path: Path) -> None:
    """A lab's CSV in ms, g and deg/s, semicolon-separated, imports to the same SI numbers."""
    s = read_session(session_file)
    sources = {}
    for sid, b in s.data.items():
        p = tmp_path / f"{sid}.csv"
        t_ms = 1.7e12 + b.time_s * 1000.0  # absolute Unix milliseconds
        table = np.column_stack([t_ms, b.acc / STANDARD_G, np.degrees(b.gyro)])
        np.savetxt(p, table, delimiter=";", header="ts;ax;ay;az;gx;gy;gz", comments="", fmt="%.17g")
        sources[sid] = p
    cols = CsvColumns.parse("ts:ms", "ax,ay,az:g", "gx,gy,gz:deg/s")
    out = import_csv(sources, tmp_path / "lab.h5", cols, subject_code="LAB01", protocol="flexion", rate_hz=100.0)
    back = read_session(out)
    t0 = min(float(b.time_s[0]) for b in s.data.values())
    for sid, b in s.data.items():
        np.testing.assert_allclose(back.data[sid].time_s, b.time_s - t0, atol=1e-6)
        np.testing.assert_allclose(back.data[sid].acc, b.acc, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(back.data[sid].gyro, b.gyro, rtol=1e-6, atol=1e-7)
        assert back.sensors[sid].nominal_rate_hz == 100.0


def test_declared_csv_errors_name_the_problem(tmp_path: Path) -> None:
    from lumbar.errors import ValidationError

    p = tmp_path / "x.csv"
    p.write_text("t,ax,ay,az,gx,gy,gz\n0,0,0,9.8,0,0,0\n")
    with pytest.raises(ValidationError, match="no column 'time'"):
        import_csv({"lumbar": p}, tmp_path / "o.h5", CsvColumns.parse("time", "ax,ay,az", "gx,gy,gz"),
                   subject_code="A1")
    with pytest.raises(ValidationError, match="unknown acceleration unit"):
        import_csv({"lumbar": p}, tmp_path / "o.h5", CsvColumns.parse("t", "ax,ay,az:furlong", "gx,gy,gz"),
                   subject_code="A1")
