"""Knee flexion from shank sensors (the knee tests' moving segment): the angle's arithmetic, the shank's
calibration postures, a shank bending past upside-down, and the knee tests without shank sensors."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from lumbar import conventions as cv
from lumbar import kinematics as K
from lumbar.calibration import posture_up, segment_kind, static_only_calibration
from lumbar.errors import ValidationError
from lumbar.types import STANDARD_G


def _shank_prone(bend_deg: np.ndarray) -> np.ndarray:
    """Orientations (N, 4) of a right shank lying prone (superior axis toward the head, +x; anterior axis
    down) as the knee bends ``bend_deg``: the heel rises, the superior axis turns toward the anterior side."""
    # segment axes in the earth frame lying prone: X (anterior) down, Y (superior) along +x, Z (right) −y
    r_prone = np.column_stack([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    # knee flexion turns the shank about its own Z (right) axis, the superior axis toward anterior: −angle
    # about Z (a forward tilt, as _seg_rot's "sag")
    r = Rotation.from_matrix(r_prone) * Rotation.from_euler("z", -np.radians(bend_deg)[:, None])
    return cv.from_scipy(r)


def test_a_prone_shank_bends_past_upside_down_without_a_jump():
    """Lying prone the shank's absolute tilt is ±90°; a 100° knee bend takes it across ±180°. From the
    calibration posture the tilt runs 0 → 100° smoothly (the seam is taken out)."""
    bend = np.concatenate([np.zeros(50), np.linspace(0.0, 100.0, 200), np.linspace(100.0, 0.0, 200)])
    q = _shank_prone(bend)
    raw = K.sagittal_tilt(q, None)
    assert np.ptp(raw) > math.pi  # the absolute tilt crosses the seam: the case this is about
    tilt = np.degrees(K.sagittal_tilt(q, slice(0, 50)))
    np.testing.assert_allclose(tilt, bend, atol=1e-9)


def test_tilt_from_leaves_angles_inside_the_half_turn_as_they_are():
    x = np.array([0.1, -3.0, 3.1, 2.0])
    assert np.array_equal(K.tilt_from(x, 0.05), x - 0.05)  # bit for bit: existing results do not move
    np.testing.assert_allclose(K.tilt_from(np.array([-3.0]), 1.5), [2 * math.pi - 4.5])


def test_a_streamed_angle_continues_across_blocks_and_gaps():
    """The live processing receives the angle in blocks: each block continues the last one's value, across
    ±180° and across a gap (NaN) inside a block."""
    truth = np.radians(np.linspace(60.0, 200.0, 300))  # 60° → 200°, through the seam at 180°
    wrapped = np.angle(np.exp(1j * truth))
    wrapped[100:110] = np.nan
    out, last = [], math.nan
    for block in np.array_split(wrapped, 7):
        y, last = K.continue_angle(block, last)
        out.append(y)
    y = np.concatenate(out)
    ok = np.isfinite(wrapped)
    np.testing.assert_allclose(y[ok], truth[ok], atol=1e-12)
    assert np.isnan(y[~ok]).all()
    assert last == pytest.approx(truth[-1])
    empty, same = K.continue_angle(np.full(3, np.nan), 1.0)
    assert np.isnan(empty).all() and same == 1.0


def test_knee_flexion_is_the_shank_relative_to_its_thigh():
    shank = np.radians([0.0, 30.0, -45.0])
    thigh = np.radians([0.0, -20.0, 10.0])
    np.testing.assert_allclose(K.knee_flexion(shank, thigh), np.radians([0.0, 50.0, -55.0]))
    np.testing.assert_allclose(K.knee_flexion(shank), shank)  # the thigh at rest on the table


def test_the_working_side_is_the_leg_that_moves():
    """Legs in turn: each sample takes the side farther from the start posture, with its sign; a gap on one
    side takes the other's."""
    left = np.array([0.0, 0.1, 0.9, 0.1, 0.0, np.nan, np.nan])
    right = np.array([0.0, -0.02, 0.0, 0.05, -0.8, -0.5, np.nan])
    np.testing.assert_allclose(K.working_side([left, right]), [0.0, 0.1, 0.9, 0.1, -0.8, -0.5, np.nan])
    np.testing.assert_allclose(K.working_side([left]), left)


@pytest.mark.parametrize("posture, up", [("standing", (0, 1, 0)), ("sitting", (0, 1, 0)), ("prone", (-1, 0, 0)),
                                         ("four-point-kneeling", (-1, 0, 0))])
def test_a_shank_calibrates_from_its_own_posture(posture, up):
    """A shank hangs vertical sitting on the table's edge (like standing) and lies with its back up prone and
    its front down on all fours: a sensor mounted along it calibrates without a turn, as the trunk's would."""
    assert segment_kind("shank_left") == segment_kind("shank_right") == "shank"
    assert segment_kind("thigh_left") == "thigh" and segment_kind("lumbar") == "trunk"
    np.testing.assert_array_equal(posture_up(posture, "shank"), up)
    rng = np.random.default_rng(3)
    acc = STANDARD_G * np.asarray(up, float) + 0.01 * rng.standard_normal((500, 3))
    cal = static_only_calibration(acc, np.zeros((500, 3)), "right shank sensor", posture=posture, segment="shank")
    np.testing.assert_allclose(cal.r_sb, np.eye(3), atol=0.01)
    with pytest.raises(ValidationError, match="shank"):
        posture_up("standing", "foot")


def test_a_protocol_may_say_what_shank_sensors_change():
    from lumbar.protocols.schema import ProtocolError, validate_protocol
    from lumbar.protocols import load_protocols

    reg = load_protocols()
    for name in ("sitting-knee-extension", "prone-knee-bend"):
        plan = reg[name].analysis_plan()
        assert plan["with_shanks"]["principal"] == plan["with_shanks"]["moving"] == "knee_flexion"
    d = dict(reg["prone-knee-bend"].data)
    d["analysis"] = {**d["analysis"], "with_shanks": {"principal": "shin_angle"}}
    with pytest.raises(ProtocolError, match="with_shanks.principal"):
        validate_protocol(d, "test")


# --- the knee tests on the emulated patient: simulate → session file → analyze → score -----------------

SHANKS2 = ("lumbar", "sacrum", "shank_left", "shank_right")
SIX = ("lumbar", "sacrum", "thigh_left", "thigh_right", "shank_left", "shank_right")


def _knee_session(tmp_path, movement: str, quality: str, sensors, seed: int = 1):
    from lumbar.protocols import load_protocols
    from lumbar.simulate import simulate
    from lumbar.storage import read_session
    from lumbar.storage.writer import write_simulated

    reps = load_protocols()[movement].repetitions  # the protocol's 10, legs in turn
    sim = simulate(movement, duration_s=100.0, reps=reps, seed=seed, quality=quality, sensors=sensors)
    path = tmp_path / f"{movement}-{quality}-{len(sensors)}-{seed}.h5"
    write_simulated(path, sim, sim.session_info())  # through the file, as a user's data would go
    return read_session(path)


@pytest.mark.parametrize("movement", ["sitting-knee-extension", "prone-knee-bend"])
@pytest.mark.parametrize("sensors", [SHANKS2, SIX], ids=["shanks", "thighs+shanks"])
def test_knee_tests_are_measured_on_the_knee_with_shank_sensors(tmp_path, movement, sensors):
    """With shank sensors the knee tests count their repetitions on the knee (legs in turn), measure how far it
    moved against the body's own knees, and still separate good control from poor by the low back."""
    from lumbar.analysis import analyze, repetition_count
    from lumbar.protocols import load_protocols, score

    proto = load_protocols()[movement]
    for quality, status in (("good", "pass"), ("poor", "fail")):
        s = _knee_session(tmp_path, movement, quality, sensors)
        a, p = analyze(s)
        assert a.principal == "knee_flexion"
        assert any("knee flexion measured with the shank sensors" in n for n in a.notes)
        assert repetition_count(a.to_dict()) == int(s.truth_attrs["reps"]) == proto.repetitions
        # each knee against the body's (commodity sensors, mounted 3° off). Without a thigh sensor the working
        # thigh's own small lift off the table (3° sitting, 1° prone) is in the shank-only angle.
        n = len(p.time_s)
        true = np.degrees(s.truth["knee_flexion_rad"][:n] - s.truth["knee_flexion_rad"][p.static_window].mean(0))
        rms_tol, max_tol = (0.6, 2.5) if "thigh_left" in sensors else (1.5, 4.5)
        for i, shank in enumerate(("shank_left", "shank_right")):
            err = np.degrees(p.knee_flexion_of(shank)) - true[:, i]
            rms, worst = float(np.sqrt(np.nanmean(err ** 2))), float(np.nanmax(np.abs(err)))
            assert rms < rms_tol and worst < max_tol, f"{shank}: knee RMSE {rms:.2f}°, worst {worst:.2f}°"
        diss = a.results["dissociation"]
        assert abs(math.degrees(diss.excursion_a)) == pytest.approx(np.abs(true).max(), abs=max_tol)
        sc = score(proto, a)
        knee = next(c for c in sc.criteria if c.id.startswith("knee"))
        assert knee.passed is True and knee.value == pytest.approx(abs(math.degrees(diss.excursion_a)))
        assert sc.status == status, [c.verdict for c in sc.criteria]


@pytest.mark.parametrize("movement", ["sitting-knee-extension", "prone-knee-bend"])
def test_without_shank_sensors_the_knee_is_not_assessed(tmp_path, movement):
    """Nothing sees the knee: no repetitions, no knee excursion (not 0°), and the knee's criterion reads
    "not measured" without making the test incomplete: the low back decides, as before."""
    from lumbar.analysis import analyze
    from lumbar.protocols import load_protocols, score

    s = _knee_session(tmp_path, movement, "good", ("lumbar", "sacrum"))
    a, p = analyze(s)
    assert p.knee_flexion is None and a.principal is None
    assert math.isnan(a.results["dissociation"].excursion_a)
    sc = score(load_protocols()[movement], a)
    knee = next(c for c in sc.criteria if c.id.startswith("knee"))
    assert knee.passed is None and knee.verdict.startswith("not measured")
    assert sc.status == "pass"
