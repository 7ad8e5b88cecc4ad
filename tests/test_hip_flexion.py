"""Hip flexion from thigh sensors: the angle against the emulated patient's truth, and the tests whose task is
a hip movement (waiter's bow, rocking) measured on it when thighs are worn."""
from __future__ import annotations

import numpy as np
import pytest

from lumbar.analysis import analyze, load_plans
from lumbar.protocols import load_protocols, score
from lumbar.simulate import simulate
from lumbar.storage import read_session
from lumbar.storage.writer import write_simulated

FOUR = ("lumbar", "sacrum", "thigh_left", "thigh_right")
DURATION = {"rocking": 75.0, "waiters-bow": 60.0, "one-leg-stance": 70.0}


def _session(tmp_path, movement: str, quality: str = "good", sensors=FOUR, seed: int = 1):
    sim = simulate(movement, duration_s=DURATION[movement], seed=seed, quality=quality, sensors=sensors)
    path = tmp_path / f"{movement}-{quality}-{len(sensors)}-{seed}.h5"
    write_simulated(path, sim, sim.session_info())  # through the file, as a user's data would go
    return read_session(path)


def _true_hip_deg(s, p) -> np.ndarray:
    """(N, 2) left and right hip flexion of the emulated body, from the calibration posture, degrees."""
    n = len(p.time_s)
    hip = s.truth["pelvis_tilt_rad"][:n, None] - s.truth["thigh_inclination_rad"][:n]
    return np.rad2deg(hip - hip[p.static_window].mean(axis=0))


@pytest.mark.parametrize("movement", ["rocking", "waiters-bow"])
@pytest.mark.parametrize("seed", [1, 2])
def test_hip_flexion_follows_the_emulated_body(tmp_path, movement, seed):
    s = _session(tmp_path, movement, seed=seed)
    _, p = analyze(s)
    truth = _true_hip_deg(s, p)
    for i, side in enumerate(("thigh_left", "thigh_right")):
        est = np.rad2deg(p.hip_flexion_of(side))
        rmse = float(np.sqrt(np.nanmean((est - truth[:, i]) ** 2)))
        assert rmse < 1.0, f"{side}: hip flexion RMSE {rmse:.2f}°"
    # it is the hip that moves: far more than the pelvis's tilt rocking, as much as it in a hip hinge
    span = float(np.ptp(truth.mean(axis=1)))
    assert span > {"rocking": 45.0, "waiters-bow": 55.0}[movement]


def test_without_thigh_sensors_there_is_no_hip_angle(tmp_path):
    s = _session(tmp_path, "waiters-bow", sensors=("lumbar", "sacrum"))
    a, p = analyze(s)
    assert p.hip_flexion is None and p.signal("hip_flexion") is None
    assert a.principal == "pelvic_tilt"  # the pelvis stands in for the hip
    assert "hip_flexion_rad" not in p.to_arrays()


def test_a_gap_on_one_thigh_takes_the_other_side(tmp_path):
    s = _session(tmp_path, "waiters-bow")
    _, p = analyze(s)
    both = p.hip_flexion.copy()
    p.tilt["thigh_left"] = p.tilt["thigh_left"].copy()
    p.tilt["thigh_left"][1000:1200] = np.nan
    h = p.hip_flexion
    assert np.isfinite(h).all()
    np.testing.assert_allclose(h[1000:1200], p.hip_flexion_of("thigh_right")[1000:1200])
    np.testing.assert_allclose(h[:1000], both[:1000])


def test_waiters_bow_measures_the_hip_with_thighs(tmp_path):
    reg = load_protocols()
    for quality, expect in (("good", "pass"), ("poor", "fail")):
        s = _session(tmp_path, "waiters-bow", quality)
        a, p = analyze(s)
        assert a.principal == "hip_flexion"
        assert any("thigh sensors" in n for n in a.notes)
        d = a.to_dict(display=True)["results"]
        truth = _true_hip_deg(s, p).mean(axis=1)[p.static_window.stop:]
        assert d["dissociation"]["excursion_a"] == pytest.approx(float(np.max(truth)), abs=2.0)
        assert score(reg["waiters-bow"], a.to_dict()).status == expect


def test_rocking_is_counted_on_the_hips_both_ways(tmp_path):
    reg = load_protocols()
    plan = load_plans()["rocking"]
    assert plan.with_thighs and plan.with_thighs["principal"] == "hip_flexion"
    for quality, expect in (("good", "pass"), ("poor", "fail")):
        s = _session(tmp_path, "rocking", quality)
        a, p = analyze(s)
        assert a.principal == "hip_flexion" and a.principal_sign == 1  # backward rocks flex the hips
        r = a.to_dict(display=True)["results"]
        assert (r["repetitions"]["count"], r["repetitions_forward"]["count"]) == (5, 5)
        truth = _true_hip_deg(s, p).mean(axis=1)
        # each direction's hip excursion, as the body made it
        assert r["dissociation"]["excursion_a"] == pytest.approx(float(np.max(truth)), abs=2.0)
        assert r["dissociation_forward"]["excursion_a"] == pytest.approx(float(-np.min(truth)), abs=2.0)
        assert score(reg["rocking"], a.to_dict()).status == expect


def test_the_report_reads_the_stored_hip_angle(tmp_path):
    """``lumbar analyze`` stores hip flexion in the file (``derived/hip_flexion_rad``); the report's angle
    trace reads it back, in degrees, equal to the analysis's own."""
    from lumbar.analysis import analyze_file
    from lumbar.report.sessions import load_record

    s = _session(tmp_path, "waiters-bow")
    analyze_file(s.path)
    rec = load_record(s.path, load_protocols())
    _, p = analyze(read_session(s.path, load_truth=False))
    np.testing.assert_allclose(rec.signals.hip_flexion, np.degrees(p.hip_flexion), atol=1e-3)
    assert np.nanmax(rec.signals.hip_flexion) > 50.0
    # the test's card: the lumbar spine plotted against the hips, the angle the analysis counted
    assert rec.principal == "hip_flexion"
    from lumbar.report import build_report, write_report

    html = write_report(build_report([s.path], registry=load_protocols()), tmp_path / "r.html").read_text()
    assert 'alt="lumbar flexion against hip flexion"' in html and "against pelvic tilt" not in html


#: A sensor turned 180° about its long axis (worn facing backward): its x and z axes read reversed.
TURNED = np.array([-1.0, 1.0, -1.0])


@pytest.mark.parametrize("turned", [("thigh_left",), ("thigh_left", "thigh_right")])
def test_a_thigh_sensor_worn_turned_is_found_and_not_used(tmp_path, turned):
    """A static calibration cannot tell a thigh sensor worn facing backward: its hip angle would run the wrong
    way. Rocking backward tilts the pelvis back while it flexes the hips, so a hip angle that moves with the
    pelvis's tilt is found; that thigh is left out, said so in words, and not stored; with neither thigh
    usable the rocks are measured on the pelvis's tilt, as without thighs. The verdict stays right."""
    import dataclasses

    from lumbar.analysis import analyze_file
    from lumbar.storage.reader import open_h5

    sim = simulate("rocking", duration_s=75.0, seed=1, sensors=FOUR)
    for th in turned:
        b = sim.batches[th]
        sim.batches[th] = dataclasses.replace(b, acc=b.acc * TURNED, gyro=b.gyro * TURNED)
    path = write_simulated(tmp_path / "turned.h5", sim, sim.session_info())
    a = analyze_file(path)
    assert sum("worn turned" in n for n in a.notes) == len(turned)  # with the figures
    # and what to do, in words, for each
    assert sorted(w.split()[0] for w in a.warnings) == sorted(th.split("_")[1].capitalize() for th in turned)
    assert all("back to front" in w and "Refit it facing forward" in w for w in a.warnings)
    from lumbar.analysis import format_analysis

    assert "  WARNING: Left thigh sensor seems worn back to front" in format_analysis(a)  # lumbar analyze's text
    with open_h5(path) as (f, _):
        stored = {name for name in ("hip_flexion_rad", "thigh_left/hip_flexion_rad", "thigh_right/hip_flexion_rad")
                  if name in f["derived"]}
    assert not any(f"{th}/hip_flexion_rad" in stored for th in turned)
    r = a.to_dict(display=True)["results"]
    assert (r["repetitions"]["count"], r["repetitions_forward"]["count"]) == (5, 5)
    if len(turned) == 2:
        assert a.principal == "pelvic_tilt" and "hip_flexion_rad" not in stored
    else:  # the right thigh measures the hip
        assert a.principal == "hip_flexion" and "thigh_right/hip_flexion_rad" in stored
        assert r["dissociation"]["excursion_a"] > 25.0  # the hip's backward rock, not the pelvis's 13°
    assert score(load_protocols()["rocking"], a.to_dict()).status == "pass"
    # the report says it on the test's card, before the numbers
    from lumbar.report import build_report, write_report

    html = write_report(build_report([path], registry=load_protocols()), tmp_path / "r.html").read_text()
    card = html[html.index('data-protocol="rocking"'):]
    assert card.index("back to front") < card.index("<table>")


def test_correctly_worn_thighs_are_all_used(tmp_path):
    """No false alarm: the emulated patient's thighs (worn as the guide says), good and poor control, rocking
    and bowing."""
    for movement in ("rocking", "waiters-bow"):
        for quality in ("good", "poor"):
            a, p = analyze(_session(tmp_path, movement, quality))
            assert p.excluded_thighs == {} and a.principal == "hip_flexion", (movement, quality, a.notes)


def test_the_turned_thigh_judgement():
    """The judgement the analysis and the live monitor share: a hip angle moving with its stand-in against the
    plan's sign is a turned sensor (r returned); the right sign, a weak relation, or a hardly moving angle is
    not judged so. Rocking's plans imply −1 (the pelvis tilts back as the hips flex); the bow's +1."""
    from lumbar.sensor_fit import THIGH_AGREEMENT_R, thigh_expected_sign, thigh_turned

    plans = load_plans()
    assert thigh_expected_sign(plans["rocking"].first_sign, plans["rocking"].with_thighs) == -1
    assert thigh_expected_sign(plans["waiters-bow"].first_sign, plans["waiters-bow"].with_thighs) == 1
    t = np.linspace(0.0, 20.0, 2001)
    pelvis = np.radians(10.0) * np.sin(2 * np.pi * t / 5.0)
    hip = -3.0 * pelvis  # rocking, worn right: the hip flexes as the pelvis tilts back
    assert thigh_turned(hip, pelvis, -1) is None
    r = thigh_turned(-hip, pelvis, -1)  # worn turned: the two move together
    assert r is not None and r > 0.99
    assert thigh_turned(-hip, pelvis, 1) is None  # as the bow expects
    gappy = -hip.copy()
    gappy[::3] = np.nan  # gaps are left out, not judged as values
    assert thigh_turned(gappy, pelvis, -1) == pytest.approx(r)
    assert thigh_turned(np.radians(2.0) * np.sin(2 * np.pi * t / 5.0), pelvis, -1) is None  # the hip hardly moves
    assert thigh_turned(-hip, pelvis * 0.05, -1) is None  # nor the pelvis
    rng = np.random.default_rng(0)
    weak = -hip + rng.normal(0.0, 6 * np.std(hip), t.size)  # a relation too weak to say
    assert abs(np.corrcoef(weak, pelvis)[0, 1]) < THIGH_AGREEMENT_R
    assert thigh_turned(weak, pelvis, -1) is None


@pytest.mark.parametrize("quality", ["good", "poor"])
def test_one_leg_stance_is_measured_per_leg_with_thighs(tmp_path, quality):
    """One-leg stance, each side: the thigh sensors tell which leg is lifted (its hip flexes), so the low back's
    sideways bend and the pelvis's drop are measured standing on each leg, and the legs compared. The stances
    found are the emulated patient's (right, left, right) and each leg's bend is the body's; without thigh
    sensors the legs are not told apart (the tilt's sides only)."""
    from lumbar.analysis import stance_legs
    from lumbar.pipeline import process_session

    s = _session(tmp_path, "one-leg-stance", quality)
    p = process_session(s)
    a, _ = analyze(s)
    fc = a.results["frontal_control"]
    # the body's repetitions, each on the leg whose hip does not flex (the other is lifted)
    true_hips = _true_hip_deg(s, p)
    reps = []
    for t0, _, t1 in s.truth["rep_bounds_s"]:
        during = (p.time_s >= t0) & (p.time_s <= t1)
        reps.append((t0, t1, "right" if true_hips[during, 0].max() > true_hips[during, 1].max() else "left"))
    assert [leg for *_, leg in reps][:2] == ["right", "left"]  # the patient alternates, right leg first
    assert fc.sides_from == "thighs"
    assert (fc.stances_left, fc.stances_right) == tuple(sum(lg == leg for *_, lg in reps) for leg in ("left", "right"))
    # each stance found lies inside one of the patient's repetitions on that leg
    task = slice(p.static_window.stop, None)
    t = p.time_s[task]
    hips = {th: p.hip_flexion_of(th)[task] for th in ("thigh_left", "thigh_right")}
    legs = stance_legs(hips["thigh_left"], hips["thigh_right"], p.rate_hz)
    for leg, (on, count) in legs.items():
        edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
        for a0, b0 in zip(edges[::2], edges[1::2]):
            inside = [lg for t0, t1, lg in reps if t0 <= t[a0] and t[b0 - 1] <= t1]
            assert inside == [leg], (leg, t[a0], t[b0 - 1])
    # each leg's largest sideways bend of the low back, against the body's in the same samples
    lat_true = np.degrees(s.truth["lumbar_angles_rad"][: len(p.time_s), 1][task])
    for leg, (on, _) in legs.items():
        true = float(np.max(np.abs(lat_true[on])))
        got = np.degrees(getattr(fc, f"lean_on_{leg}"))
        assert abs(got - true) < 1.0, (leg, got, true)
        assert (got > 4.0) if quality == "poor" else (got < 3.0)  # the patient leans 6° (poor) or 1° (good)
        assert np.degrees(getattr(fc, f"drop_on_{leg}")) > (4.0 if quality == "poor" else 0.3)
    assert fc.lean_difference == pytest.approx(abs(fc.lean_on_left - fc.lean_on_right))
    # said where people read it: lumbar analyze's text, the assessment's result rows, the report's card
    from lumbar.analysis import format_analysis
    from lumbar_gui.trials import stance_rows

    d = a.to_dict(display=True)
    left = f"{d['results']['frontal_control']['lean_on_left']:.1f}°"
    assert f"standing on the left leg ({fc.stances_left}×): low back sideways {left}" in format_analysis(a)
    rows = {r.measure: r for r in stance_rows(d["results"]["frontal_control"])}
    assert rows["Standing on the left leg: low back bends sideways"].value == left
    assert "Difference between the legs" in rows
    if quality == "good":
        from lumbar.report import build_report, write_report

        rep = build_report([tmp_path / "one-leg-stance-good-4-1.h5"], registry=load_protocols())
        html = write_report(rep, tmp_path / "r.html").read_text()
        assert f"standing on the left leg ({fc.stances_left}×): low back sideways {left}" in html
    # without thigh sensors: the sides of the tilt only
    a2, _ = analyze(_session(tmp_path, "one-leg-stance", quality, sensors=("lumbar", "sacrum")))
    fc2 = a2.results["frontal_control"]
    assert fc2.sides_from == "tilt" and np.isnan(fc2.lean_on_left) and fc2.stances_left == 0
    assert [r.value for r in stance_rows(a2.to_dict(display=True)["results"]["frontal_control"])] == ["not told apart"]
    assert fc2.pelvic_drop == pytest.approx(fc.pelvic_drop, abs=np.radians(1.0))


def test_a_leg_lifted_by_the_knee_alone_leaves_the_legs_untold():
    """A foot lifted by bending the knee only leaves the thigh (and the hip) still: the legs are not told apart
    (None), rather than every sample counted as standing on both."""
    from lumbar.analysis import stance_legs

    fs = 100.0
    t = np.arange(0.0, 30.0, 1 / fs)
    lift = np.radians(40.0) * ((t % 10.0) > 5.0)
    legs = stance_legs(lift * (t < 10), lift * (t >= 10), fs)
    assert legs is not None and legs["right"][1] == 1 and legs["left"][1] == 2  # left lifted once; right lifted twice
    assert stance_legs(lift, np.radians(3.0) * np.sin(t), fs) is None  # the right hip hardly moves
