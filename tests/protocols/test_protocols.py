"""Protocol definitions: shipped set, end-to-end scoring on the emulated patient, user folders, bad files."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from lumbar.analysis import read_analysis
from lumbar.cli import main
from lumbar.protocols import ProtocolError, load_protocol_file, load_protocols, score, score_battery

from .emulate import emulate

REG = load_protocols(use_env=False)
REQUIRED = {"quiet-standing-eo-firm", "quiet-standing-ec-firm", "quiet-standing-eo-foam", "quiet-standing-ec-foam",
            "flexion", "waiters-bow", "pelvic-tilt", "sitting-knee-extension", "one-leg-stance", "rocking",
            "prone-knee-bend", "sit-to-stand", "luomajoki"}

# Cases where the emulated patient + current analysis do not give the outcome the protocol expects.
# Criteria are NOT loosened for them; each is reported to the analysis/emulation side.
KNOWN: dict[tuple[str, str], str] = {}

EMULATED = [(p.name, q) for p in REG.tests() if "emulation" in p.data for q in ("good", "poor")]
NOT_EMULATED = sorted(p.name for p in REG.tests() if "emulation" not in p.data)


def test_shipped_set_is_complete_and_cited():
    assert REQUIRED <= set(REG.protocols)
    for p in REG:
        assert p.instructions and p.purpose
        for c in p.get("criteria", []):
            assert c["source"] and c["evidence"] in ("CONFIRMED", "FROM MEMORY – VERIFY", "PROJECT DEFAULT")
    bat = REG["luomajoki"]
    assert len(bat.items) == 6 and bat.scoring["impaired_if_positive_at_least"] == 2


def test_analysis_is_driven_by_the_protocol_files():
    """Every movement the emulated patient performs has its plan in a definition, and the engine
    uses exactly that plan (tolerances included)."""
    from lumbar.analysis import AnalysisPlan, load_plans
    from lumbar.simulate import MOVEMENTS

    plans = load_plans()
    assert set(MOVEMENTS) <= set(plans)
    for movement, fields in REG.analysis_plans().items():
        assert plans[movement] == AnalysisPlan(**fields)


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    cache: dict = {}

    def get(name, quality):
        if (name, quality) not in cache:
            out = tmp_path_factory.mktemp("emu") / f"{name}-{quality}.h5"
            cache[name, quality] = emulate(REG[name], quality, out)
        return cache[name, quality]
    return get


@pytest.mark.slow
@pytest.mark.parametrize("name,quality", EMULATED)
def test_protocol_end_to_end_on_the_emulated_patient(name, quality, emulated, tmp_path):
    p = REG[name]
    f = emulated(name, quality)
    # the session maps back to this protocol (movement + conditions)
    from lumbar.storage import read_session

    s = read_session(f, load_truth=False)
    assert REG.for_session(s.info.protocol, s.info.notes).name == name
    result = score(p, read_analysis(f))
    expect = p.emulation["expect"][quality]
    if (name, quality) in KNOWN and result.status != expect:
        pytest.xfail(KNOWN[name, quality] + f" (got {result.status}: " +
                     "; ".join(f"{c.label} {c.verdict}" for c in result.criteria) + ")")
    assert result.status == expect, [(c.id, c.verdict) for c in result.criteria]
    for ref_pop in p.emulation.get("reference_nearest", {}).get(quality, []) and [p.emulation["reference_nearest"][quality]]:
        assert any(r.nearest == ref_pop for r in result.references), [(r.label, r.nearest) for r in result.references]
    # … and the report of it is written
    out = tmp_path / "r.html"
    assert main([ "report", str(f), "-o", str(out)]) == 0
    assert p.title.replace("'", "&#x27;") in out.read_text()


def test_every_test_protocol_is_emulated():
    """Prone lying (prone knee bend) and the foam pad are part of the emulated patient: no test protocol is
    left to real recordings only."""
    assert NOT_EMULATED == []


@pytest.mark.slow
def test_foam_sways_more_than_firm_end_to_end(emulated):
    """The analysed sacral sway grows from firm to foam and, on foam, from eyes open to eyes closed
    (the foam protocols have no pass/fail criterion: no healthy foam range is in METRICS.md §1.5)."""
    rms = {n: read_analysis(emulated(n, "good"))["results"]["sway"]["ap"]["rms"]
           for n in ("quiet-standing-eo-firm", "quiet-standing-eo-foam", "quiet-standing-ec-foam")}
    assert rms["quiet-standing-eo-foam"] > 1.3 * rms["quiet-standing-eo-firm"]
    assert rms["quiet-standing-ec-foam"] > 1.5 * rms["quiet-standing-eo-foam"]
    assert rms["quiet-standing-ec-foam"] < 0.3  # still quiet standing, not a preprocessing error (§1.5)


def test_foam_from_the_command_line(tmp_path):
    """lumbar simulate --surface foam --eyes closed → analyze → report: the session maps to the
    eyes-closed foam protocol through its notes."""
    from lumbar.storage import read_session

    f = tmp_path / "foam.h5"
    assert main(["simulate", "--protocol", "quiet-standing", "--surface", "foam", "--eyes", "closed",
                 "--duration", "30", "-o", str(f)]) == 0
    s = read_session(f, load_truth=True)
    assert s.truth_attrs["surface"] == "foam"
    assert REG.for_session(s.info.protocol, s.info.notes).name == "quiet-standing-ec-foam"
    assert main(["analyze", str(f)]) == 0
    out = tmp_path / "r.html"
    assert main(["report", str(f), "-o", str(out)]) == 0
    assert "foam" in out.read_text()


@pytest.mark.slow
def test_prone_lumbar_rotation_is_measured_as_axial_rotation(emulated):
    """Poor prone knee bend: the pelvis rotates 6° each way, the thorax stays on the table, so the true
    lumbar axial rotation range is ≈ 12°; the analysis should report it as axial rotation."""
    from lumbar.storage import read_session

    f = emulated("prone-knee-bend", "poor")
    true_rom = np.degrees(np.ptp(read_session(f, load_truth=True).truth["lumbar_angles_rad"], axis=0))
    assert true_rom[2] > 10.0 and true_rom[1] < 1.0  # the emulated patient rotates, it does not bend sideways
    rom = np.degrees(read_analysis(f)["results"]["lumbar_rom"]["rom"])
    assert rom[2] == pytest.approx(true_rom[2], abs=3.0)


def test_waiters_bow_short_of_50_degrees_is_incorrect(tmp_path):
    """A bow that stops at 40° of trunk inclination stops short of 50° of hip flexion: a fail, as in
    Luomajoki's criterion, even with a still low back (the good emulation bends to 60°, as instructed)."""
    p = REG["waiters-bow"]
    data = {**p.data, "emulation": {**p.emulation, "amplitude_deg": 40.0}}
    from lumbar.protocols import Protocol

    f = emulate(Protocol(data, p.source), "good", tmp_path / "wb.h5")
    r = score(p, read_analysis(f))
    crit = {c.id: c for c in r.criteria}
    assert crit["lumbar_leak"].passed is True
    assert crit["hip_flexion"].passed is False and r.status == "fail"


@pytest.mark.slow
def test_battery_score_good_and_poor(emulated):
    bat = REG["luomajoki"]
    for quality in ("good", "poor"):
        res = [score(REG[n], read_analysis(emulated(n, quality))) for n in bat.items if "emulation" in REG[n].data]
        b = score_battery(bat, res)
        assert b.missing == [] and len(res) == len(bat.items) == 6  # prone knee bend is emulated too
        if quality == "good":
            assert b.positive == 0 and b.impaired is False
        else:
            assert b.positive == len(bat.items) and b.impaired is True


CLINIC = {
    "schema": 1, "kind": "test", "name": "clinic-sts-lumbar", "title": "Clinic sit to stand, lumbar limit",
    "purpose": "Our clinic's own check of lumbar flexion while rising.",
    "instructions": ["Stand up from the chair and sit down, 5 times."],
    "sensors": ["lumbar", "sacrum"], "movement": "sit-to-stand", "repetitions": 5,
    "criteria": [{"id": "lumbar", "label": "Lumbar flexion range at most 20°", "metric": "lumbar_rom.rom[0]",
                  "op": "<=", "threshold": 20, "unit": "deg", "explanation": "The low back rounds less than 20°.",
                  "source": "clinic consensus 2024", "evidence": "PROJECT DEFAULT"}],
}


def test_a_clinic_protocol_file_is_picked_up_and_run(tmp_path, emulated, monkeypatch, capsys):
    d = tmp_path / "clinic"
    d.mkdir()
    (d / "sts.json").write_text(json.dumps(CLINIC))
    reg = load_protocols([d], use_env=False)
    assert "clinic-sts-lumbar" in reg
    f = emulated("sit-to-stand", "poor")
    r = score(reg["clinic-sts-lumbar"], read_analysis(f))
    assert r.status == "fail" and r.criteria[0].value > 20
    assert score(reg["clinic-sts-lumbar"], read_analysis(emulated("sit-to-stand", "good"))).status == "pass"
    # from the command line, by option and by environment variable
    out = tmp_path / "r.html"
    assert main(["report", str(f), "--protocols", str(d), "--protocol", "clinic-sts-lumbar", "-o", str(out)]) == 0
    assert "Clinic sit to stand, lumbar limit" in out.read_text()
    monkeypatch.setenv("LUMBAR_PROTOCOLS", str(d))
    assert "clinic-sts-lumbar" in load_protocols()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="TOML protocol files need Python 3.11 (tomllib)")
def test_a_clinic_protocol_in_toml(tmp_path):
    (tmp_path / "x.toml").write_text(
        'schema = 1\nkind = "test"\nname = "clinic-toml"\ntitle = "T"\npurpose = "P"\ninstructions = ["Do it."]\n'
        'movement = "flexion"\nrepetitions = 3\n')
    assert load_protocols([tmp_path], use_env=False)["clinic-toml"].movement == "flexion"


def _bad(**change):
    d = json.loads(json.dumps(CLINIC))
    for k, v in change.items():
        if k == "criterion":
            d["criteria"][0].update(v)
        elif v is None:
            del d[k]
        else:
            d[k] = v
    return d


@pytest.mark.parametrize("data,field,problem", [
    (_bad(title=None), "title", "required but missing"),
    (_bad(criterion={"op": "=<"}), "criteria[0].op", "must be one of"),
    (_bad(criterion={"threshold": "ten"}), "criteria[0].threshold", "must be a number"),
    (_bad(criterion={"evidence": "trust me"}), "criteria[0].evidence", "must be one of"),
    (_bad(instructions="stand up"), "instructions", "must be list"),
    (_bad(sensors=["belly"]), "sensors[0]", "unknown placement"),
    (_bad(colour="red"), "colour", "unknown field"),
    (_bad(repetitions=None), "repetitions", "needs 'repetitions' or 'duration_s'"),
    (_bad(analysis={"principal": "pelvic_tilt", "with_thighs": {"principal": "knee_angle"}}),
     "analysis.with_thighs.principal", "must be one of"),
    (_bad(analysis={"principal": "pelvic_tilt", "with_thighs": {"controlled": "hip_flexion"}}),
     "analysis.with_thighs.controlled", "unknown field"),
    (_bad(analysis={"principal": "pelvic_tilt", "with_thighs": {"first_sign": 2}}),
     "analysis.with_thighs.first_sign", "must be +1 or -1"),
])
def test_a_malformed_protocol_is_refused_naming_file_field_and_problem(tmp_path, data, field, problem):
    f = tmp_path / "broken.json"
    f.write_text(json.dumps(data))
    with pytest.raises(ProtocolError) as e:
        load_protocol_file(f)
    msg = str(e.value)
    assert "broken.json" in msg and f"'{field}'" in msg and problem in msg, msg


def test_malformed_json_syntax_and_the_cli_message(tmp_path, capsys):
    (tmp_path / "oops.json").write_text('{"schema": 1, "name": }')
    assert main(["report", "nothing.h5", "--protocols", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "oops.json" in err and "not valid JSON" in err and "line 1" in err


def test_clinic_file_changes_the_analysis(tmp_path, emulated):
    """A clinic's own waiter's bow (same name replaces the shipped one) with a 1° tolerance: the same
    good session now fails the dissociation, without a line of code."""
    import json as _json

    from lumbar.analysis import analyze_file

    src = Path(__file__).resolve().parents[2] / "src" / "lumbar" / "protocols" / "definitions" / "waiters-bow.json"
    d = _json.loads(src.read_text(encoding="utf-8"))
    d["analysis"]["tolerance_deg"] = 1.0
    clinic = tmp_path / "clinic"
    clinic.mkdir()
    (clinic / "waiters-bow.json").write_text(_json.dumps(d), encoding="utf-8")
    path = emulated("waiters-bow", "good")
    shipped = analyze_file(path, store=False).results["dissociation"]
    strict = analyze_file(path, store=False, protocol_dirs=(str(clinic),)).results["dissociation"]
    assert shipped.passed and not strict.passed
    assert strict.tolerance == pytest.approx(np.deg2rad(1.0))


def test_values_are_shown_to_a_sensible_precision():
    from lumbar.protocols.scoring import format_value

    assert format_value(0.714, "deg") == "0.7°" and format_value(12.34, "deg") == "12.3°"
    assert format_value(0.0461, "m/s^2") == "0.046 m/s²"  # sway: small numbers keep their digits
    assert format_value(6.0, "", 0) == "6" and format_value(None, "deg") == "—"
