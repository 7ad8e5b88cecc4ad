"""Shank sensors and knee flexion of the emulated patient, checked against the model's own geometry.

The rule under test (src/lumbar/simulate/body.py): knee flexion = shank sagittal inclination − thigh
sagittal inclination, each the forward tilt of the segment's superior axis; 0 = straight leg, + = heel
towards the buttock.
"""
from __future__ import annotations

import numpy as np
import pytest

from lumbar.errors import SimulationError
from lumbar.simulate import BodyGeometry, ImuErrorModel, Truth, simulate
from lumbar.simulate.movements import DEFAULTS, OLS_KNEE_PER_HIP

from .conftest import G, integrate_gyro, specific_force_from_truth, wxyz_to_rot

IDEAL = ImuErrorModel.ideal()
LEGS = ("thigh_left", "thigh_right", "shank_left", "shank_right")
ALL = ("lumbar", "sacrum") + LEGS
ALIGNED = {p: [0.0, 0.0, 0.0] for p in LEGS}
GEOM = BodyGeometry()
SIDES = ("left", "right")


def _R(q: np.ndarray) -> np.ndarray:
    return wxyz_to_rot(q).as_matrix()


def _tilt(q: np.ndarray) -> np.ndarray:
    """Forward tilt of the superior axis (rad), from its earth x (forward) and z (up) components."""
    y = _R(q)[:, :, 1]
    return np.arctan2(y[:, 0], y[:, 2])


def _wrap(a: np.ndarray) -> np.ndarray:
    return (np.asarray(a) + np.pi) % (2.0 * np.pi) - np.pi


def _ankle(tr: Truth, side: str) -> np.ndarray:
    """Ankle joint (N, 3), m: the shank's length below its knee along the shank's −Y."""
    return tr[f"segment/shank_{side}/position_m"] - _R(tr[f"segment/shank_{side}/quat"])[:, :, 1] * GEOM.shank_length_m


def _sim(movement: str, **kw):
    args = dict(duration_s=40.0, seed=7, imu=IDEAL, sensors=ALL, misalignment_deg=ALIGNED)
    args.update(kw)
    return simulate(movement, **args)


def _working_side(note: str) -> int:
    return 0 if "left" in note else 1


# --- start postures --------------------------------------------------------------------------------

@pytest.mark.parametrize("movement,up,knee_deg,ankle_dz", [
    ("quiet-standing", (0.0, 1.0, 0.0), 0.0, -GEOM.shank_length_m),   # vertical, foot below the knee
    ("sitting-knee-extension", (0.0, 1.0, 0.0), 90.0, -GEOM.shank_length_m),  # hanging vertical
    ("sit-to-stand", (0.0, 1.0, 0.0), 90.0, -GEOM.shank_length_m),
    ("prone-knee-bend", (-1.0, 0.0, 0.0), 0.0, 0.0),  # lying on the table, back of the leg up
    ("rocking", (-1.0, 0.0, 0.0), 90.0, 0.0),  # lying on the floor behind the knee, front down
])
def test_start_posture_gravity_and_geometry(movement, up, knee_deg, ankle_dz):
    """Still in the start posture, an aligned shank sensor feels +g along the segment's up axis and
    does not turn; the knee has its posture's flexion and the ankle lies where the posture puts it."""
    sim = _sim(movement, duration_s=20.0, reps=None if movement == "quiet-standing" else 1, sway_scale=0.0)
    tr = sim.truth
    still = tr.time_s < 4.9
    for side_i, side in enumerate(SIDES):
        b = sim.batches[f"shank_{side}"]
        np.testing.assert_allclose(b.acc[still], np.tile(np.array(up) * G, (still.sum(), 1)), atol=1e-9)
        assert np.abs(b.gyro[still]).max() < 1e-12
        np.testing.assert_allclose(np.degrees(tr.knee_flexion_rad[still, side_i]), knee_deg, atol=1e-9)
        dz = _ankle(tr, side)[still, 2] - tr[f"segment/shank_{side}/position_m"][still, 2]
        np.testing.assert_allclose(dz, ankle_dz, atol=1e-9)


def test_prone_heel_rises_towards_the_buttock():
    """Prone: as the knee bends past 90° the ankle goes above the knee and forward of it (towards the
    head, +x), by the shank length times the sine/cosine of the knee angle."""
    sim = _sim("prone-knee-bend", reps=1, variability=0.0, sway_scale=0.0)
    tr = sim.truth
    k = np.searchsorted(tr.time_s, tr.rep_bounds_s[0, 1])  # mid-hold, right knee first
    knee = tr.knee_flexion_rad[k, 1]
    assert np.degrees(knee) == pytest.approx(DEFAULTS["prone-knee-bend"].amplitude_deg, abs=1e-9)
    d = _ankle(tr, "right")[k] - tr["segment/shank_right/position_m"][k]
    thigh = tr["thigh_inclination_rad"][k, 1]  # the working thigh rose 1° off the table
    # the ankle sits on the shank's superior axis below the knee: −L (sin(θ + k), cos(θ + k)) in (x, z)
    np.testing.assert_allclose(d[[0, 2]], -GEOM.shank_length_m * np.array([np.sin(thigh + knee),
                                                                          np.cos(thigh + knee)]), atol=1e-12)
    assert d[2] > 0.45 and d[0] > 0.0


# --- the knee tests -------------------------------------------------------------------------------

@pytest.mark.parametrize("quality", ["good", "poor"])
@pytest.mark.parametrize("movement,rest_deg,sign", [("sitting-knee-extension", 90.0, -1.0),
                                                    ("prone-knee-bend", 0.0, 1.0)])
def test_knee_tests_move_the_working_shank_by_the_knee(movement, rest_deg, sign, quality):
    """Alternating legs, right first. The working knee moves from its rest angle by exactly the
    amplitude; its shank turns by that knee excursion plus its thigh's small lift, both read from
    the orientations and from the still accelerometer at mid-hold; the resting shank does not move."""
    amp = DEFAULTS[movement].amplitude_deg
    # no residual trunk sway: the hip joints ride on the pelvis, so its sway would shake the legs a little
    sim = _sim(movement, reps=4, variability=0.0, quality=quality, sway_scale=0.0)
    tr = sim.truth
    knee = np.degrees(tr.knee_flexion_rad)
    shank = np.degrees(np.stack([_tilt(tr[f"segment/shank_{s}/quat"]) for s in SIDES], 1))
    thigh = np.degrees(np.stack([_tilt(tr[f"segment/thigh_{s}/quat"]) for s in SIDES], 1))
    rest = tr.time_s < 4.9
    np.testing.assert_allclose(knee[rest], rest_deg, atol=1e-9)
    notes = [e.note for e in sim.events if e.label == "rep_start"]
    assert "right" in notes[0] and "left" in notes[1]
    lift_max = 3.0 if movement == "sitting-knee-extension" else 1.0 + (0.08 / 0.45) * 10.0  # see movements.py
    for (t0, tpk, t1), note in zip(tr.rep_bounds_s, notes):
        w = _working_side(note)
        o = 1 - w
        rep = (tr.time_s >= t0) & (tr.time_s <= t1)
        k0 = np.searchsorted(tr.time_s, t0)
        kp = np.searchsorted(tr.time_s, tpk)
        d_knee = knee[rep, w] - knee[k0, w]
        d_shank = np.degrees(_wrap(np.radians(shank[rep, w] - shank[k0, w])))  # prone: past upside-down
        d_thigh = thigh[rep, w] - thigh[k0, w]
        # the working knee's excursion peaks at the amplitude, in the test's direction
        assert (sign * d_knee).max() == pytest.approx(amp, abs=1e-9)
        assert (sign * d_knee).min() > -1e-9
        # shank inclination change = knee excursion + the thigh's own motion, at every sample
        np.testing.assert_allclose(d_shank, d_knee + d_thigh, atol=1e-9)
        assert np.abs(d_thigh).max() < lift_max + 0.1
        assert np.abs(d_shank - d_knee).max() < lift_max + 0.1
        # the resting leg's shank stays put (its foot hangs, or lies on the table)
        assert np.ptp(shank[rep, o]) < 1e-9
        # mid-hold is still: the accelerometer's gravity gives the same shank tilt
        f = sim.batches[f"shank_{SIDES[w]}"].acc
        tilt_acc = np.degrees(np.arctan2(-f[:, 0], f[:, 1]))  # X = (cos s, 0, −sin s), Y = (sin s, 0, cos s)
        kb = k0 - 1  # still before the repetition (its first sample already carries a little acceleration)
        seen = tilt_acc[kp] - tilt_acc[kb]
        assert _wrap(np.radians(seen - (shank[kp, w] - shank[kb, w]))) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("movement,target_deg", [("prone-knee-bend", 90.0), ("sitting-knee-extension", 40.0)])
def test_good_patient_reaches_the_published_target_every_time(movement, target_deg):
    """Default amplitude and variability: every repetition of a good patient goes past the published
    target (prone 90° of knee flexion; seated, extension to 30–50° short of straight, ≥ 40° from 90°),
    with a margin for sensor error (the good patient's shortfall is limited to 1 − cv)."""
    amp = DEFAULTS[movement].amplitude_deg
    assert amp >= target_deg + 10.0
    for seed in range(4):
        sim = simulate(movement, duration_s=90.0, seed=seed, imu=IDEAL, sensors=("shank_left", "shank_right"))
        tr = sim.truth
        knee = np.degrees(tr.knee_flexion_rad)
        rest = knee[0]
        for (t0, _, t1), note in zip(tr.rep_bounds_s, [e.note for e in sim.events if e.label == "rep_start"]):
            w = _working_side(note)
            rep = (tr.time_s >= t0) & (tr.time_s <= t1)
            excursion = np.abs(knee[rep, w] - rest[w]).max()
            assert excursion >= 0.95 * amp - 1e-9 and excursion >= target_deg + 5.0


# --- the rule at every sample, across movements ---------------------------------------------------

@pytest.mark.parametrize("movement,quality", [("sit-to-stand", "poor"), ("one-leg-stance", "poor"), ("rocking", "good"),
                                              ("sitting-knee-extension", "poor"), ("prone-knee-bend", "poor"),
                                              ("flexion", "good")])
def test_knee_is_shank_tilt_minus_thigh_tilt(movement, quality):
    sim = _sim(movement, quality=quality, duration_s=60.0, reps=2)
    tr = sim.truth
    for i, side in enumerate(SIDES):
        sh, th = _tilt(tr[f"segment/shank_{side}/quat"]), _tilt(tr[f"segment/thigh_{side}/quat"])
        assert np.abs(_wrap(sh - th - tr.knee_flexion_rad[:, i])).max() < 1e-9
        # the truth's own inclinations say the same (they wrap at ±180° like any inclination)
        assert np.abs(_wrap(tr["shank_inclination_rad"][:, i] - tr["thigh_inclination_rad"][:, i]
                            - tr.knee_flexion_rad[:, i])).max() < 1e-9
        # the knee joint is the thigh's distal end
        thigh_axis = _R(tr[f"segment/thigh_{side}/quat"])[:, :, 1]
        knee_pt = tr[f"segment/thigh_{side}/position_m"] - thigh_axis * GEOM.thigh_length_m
        np.testing.assert_allclose(tr[f"segment/shank_{side}/position_m"], knee_pt, atol=1e-12)
    if movement in ("rocking", "sitting-knee-extension", "prone-knee-bend"):
        # no balance sway on the legs here: the knee is exactly the angle between the superior axes
        for i, side in enumerate(SIDES):
            y_sh = _R(tr[f"segment/shank_{side}/quat"])[:, :, 1]
            y_th = _R(tr[f"segment/thigh_{side}/quat"])[:, :, 1]
            angle = np.arctan2(np.linalg.norm(np.cross(y_th, y_sh), axis=1), np.einsum("ni,ni->n", y_th, y_sh))
            np.testing.assert_allclose(angle, np.abs(tr.knee_flexion_rad[:, i]), atol=1e-9)


@pytest.mark.parametrize("movement", ["quiet-standing", "flexion", "waiters-bow", "pelvic-tilt"])
def test_standing_shanks_sway_with_the_body(movement):
    """Standing with straight knees the shanks are the inverted pendulum: their inclination is the
    AP sway angle, and the knees stay at 0."""
    sim = _sim(movement, duration_s=25.0, reps=None if movement == "quiet-standing" else 1)
    tr = sim.truth
    assert np.abs(tr.knee_flexion_rad).max() < 1e-12
    for side in SIDES:
        np.testing.assert_allclose(_tilt(tr[f"segment/shank_{side}/quat"]), tr["sway/ap_ml_rad"][:, 0], atol=1e-12)


def test_sit_to_stand_knees_straighten_feet_stay():
    """Rising: the knees go from 90° (seated) to 0 (standing), passing through the forward shank tilt
    of the rise; the feet stay on the floor, under the hips."""
    sim = _sim("sit-to-stand", reps=2, variability=0.0, sway_scale=0.0)
    tr = sim.truth
    knee = np.degrees(tr.knee_flexion_rad)
    np.testing.assert_allclose(knee[0], 90.0, atol=1e-9)
    for t0, tpk, _ in tr.rep_bounds_s:
        np.testing.assert_allclose(knee[np.searchsorted(tr.time_s, tpk)], 0.0, atol=1e-9)
    shank = np.degrees(_tilt(tr["segment/shank_right/quat"]))
    assert shank.max() == pytest.approx(12.0, abs=1e-6)  # the knees go forward while rising
    for i, side in enumerate(SIDES):
        a = _ankle(tr, side)
        assert np.abs(a[:, [0, 2]]).max() < 1e-9
        np.testing.assert_allclose(a[:, 1], GEOM.hip_half_width_m * (1 if side == "left" else -1), atol=1e-9)


@pytest.mark.parametrize("quality", ["good", "poor"])
def test_one_leg_stance_lifted_knee_bends(quality):
    """The lifted leg's knee bends with its hip (a bit more than it), the foot clears the floor; the
    stance knee stays straight and its foot stays down (to the pelvic drop's millimetres)."""
    sim = _sim("one-leg-stance", duration_s=60.0, reps=2, quality=quality, variability=0.0)
    tr = sim.truth
    knee = np.degrees(tr.knee_flexion_rad)
    hip_lift = np.degrees(tr["thigh_inclination_rad"][:, 1] - tr["thigh_inclination_rad"][:, 0])  # left lift +
    np.testing.assert_allclose(knee[:, 0] - knee[:, 1], OLS_KNEE_PER_HIP * hip_lift, atol=1e-9)
    notes = [e.note for e in sim.events if e.label == "rep_start"]
    for (t0, tpk, t1), note in zip(tr.rep_bounds_s, notes):
        stance = 1 if "stance right" in note else 0
        lifted = 1 - stance
        kp = np.searchsorted(tr.time_s, tpk)
        rep = (tr.time_s >= t0) & (tr.time_s <= t1)
        assert np.abs(knee[rep, stance]).max() < 1e-9
        assert knee[kp, lifted] == pytest.approx(OLS_KNEE_PER_HIP * DEFAULTS["one-leg-stance"].amplitude_deg, abs=1e-9)
        assert knee[kp, lifted] > abs(hip_lift[kp])
        assert _ankle(tr, SIDES[lifted])[kp, 2] > 0.08
        assert abs(_ankle(tr, SIDES[stance])[kp, 2]) < 0.015


def test_rocking_shanks_lie_still_on_the_floor():
    """On all fours the shanks stay on the floor while the thighs rotate about the knees: the knee
    angle is 90° minus the thigh's rotation and the shank sensors read gravity only."""
    sim = _sim("rocking", reps=2, sway_scale=0.0)
    tr = sim.truth
    thigh = np.degrees(tr["thigh_inclination_rad"])
    np.testing.assert_allclose(np.degrees(tr.knee_flexion_rad), 90.0 - thigh, atol=1e-9)
    assert np.degrees(tr.knee_flexion_rad).max() > 120.0  # backward rock: the hips go towards the heels
    for side in SIDES:
        b = sim.batches[f"shank_{side}"]
        assert np.abs(b.gyro).max() < 1e-12
        np.testing.assert_allclose(b.acc, np.tile([-G, 0.0, 0.0], (b.acc.shape[0], 1)), atol=1e-9)


# --- the IMU signals agree with the knee ----------------------------------------------------------

@pytest.mark.parametrize("movement", ["prone-knee-bend", "sitting-knee-extension"])
def test_gyro_integrates_to_the_knee_excursion(movement):
    """About the mediolateral axis (Z, to the right) a forward tilt is a negative rate, so
    ∫(ω_thigh,z − ω_shank,z) dt over a repetition's way out is the knee excursion; and the shank
    gyro integrated in 3-D over the whole trial reproduces the shank's orientation."""
    sim = _sim(movement, duration_s=30.0, reps=2, quality="poor", variability=0.0)
    tr = sim.truth
    knee = tr.knee_flexion_rad
    notes = [e.note for e in sim.events if e.label == "rep_start"]
    t = tr.time_s
    for (t0, tpk, _), note in zip(tr.rep_bounds_s, notes):
        side = SIDES[_working_side(note)]
        sl = slice(np.searchsorted(t, t0), np.searchsorted(t, tpk) + 1)
        rel = sim.batches[f"thigh_{side}"].gyro[sl, 2] - sim.batches[f"shank_{side}"].gyro[sl, 2]
        integral = np.sum(0.5 * (rel[1:] + rel[:-1]) * np.diff(t[sl]))
        i = SIDES.index(side)
        assert np.degrees(integral) == pytest.approx(np.degrees(knee[sl.stop - 1, i] - knee[sl.start, i]), abs=0.05)
        assert abs(np.degrees(integral)) > 50.0
    for side in SIDES:
        p = f"shank_{side}"
        q = tr.sensor(p, "quat")
        r_end = integrate_gyro(q[0], sim.batches[p].gyro, sim.batches[p].time_s)
        assert np.degrees((r_end.inv() * wxyz_to_rot(q[-1])).magnitude()) < 1e-3


@pytest.mark.parametrize("movement,moving,min_ptp", [("prone-knee-bend", "shank_right", 0.5),
                                                     ("one-leg-stance", "shank_left", 0.2),
                                                     ("sit-to-stand", "shank_right", 0.05)])
def test_shank_acc_is_specific_force_with_lever_arm(movement, moving, min_ptp):
    """acc = R_ESᵀ (p̈ + g e_z), p̈ from the mid-shank point's true positions by finite differences;
    the swinging shank has real linear (tangential and centripetal) accelerations."""
    sim = simulate(movement, duration_s=30.0, seed=5, rate_hz=1000.0, imu=IDEAL, reps=1, quality="poor",
                   sensors=("shank_left", "shank_right"))
    for p in ("shank_left", "shank_right"):
        assert np.abs(specific_force_from_truth(sim, p) - sim.batches[p].acc[1:-1]).max() < 5e-3, p
    assert np.ptp(np.linalg.norm(sim.batches[moving].acc, axis=1)) > min_ptp


def test_mounting_point_is_lateral_mid_shank():
    sim = _sim("quiet-standing", duration_s=5.0, sway_scale=0.0)
    tr = sim.truth
    for side, lateral in (("left", 1.0), ("right", -1.0)):  # earth y is to the left
        knee = tr[f"segment/shank_{side}/position_m"][0]
        d = tr.sensor(f"shank_{side}", "position_m")[0] - knee
        np.testing.assert_allclose(d, [0.0, lateral * GEOM.shank_sensor_m[2], GEOM.shank_sensor_m[1]], atol=1e-12)
        assert GEOM.shank_sensor_m[1] == pytest.approx(-GEOM.shank_length_m / 2)


# --- nothing else changes -------------------------------------------------------------------------

def test_shank_sensors_leave_everything_else_unchanged():
    """Adding shank sensors changes no other sensor's data and no existing truth array; without them
    the truth has no shank or knee entries."""
    kw = dict(duration_s=30.0, seed=9, quality="poor")
    base = simulate("prone-knee-bend", sensors=("lumbar", "sacrum", "thigh_left", "thigh_right"), **kw)
    more = simulate("prone-knee-bend", sensors=ALL, **kw)
    one = simulate("prone-knee-bend", sensors=("sacrum", "shank_left"), **kw)
    for p, b in base.batches.items():
        for f in ("time_s", "acc", "gyro", "flags"):
            np.testing.assert_array_equal(getattr(b, f), getattr(more.batches[p], f))
    a0, a1 = base.truth.to_arrays(), more.truth.to_arrays()
    for k, v in a0.items():
        np.testing.assert_array_equal(v, a1[k], err_msg=k)
    assert not any("shank" in k or "knee" in k for k in a0)
    assert "knee_flexion_rad" not in base.truth
    with pytest.raises(KeyError):
        base.truth.knee_flexion_rad  # noqa: B018
    new = set(a1) - set(a0)
    assert {"knee_flexion_rad", "shank_inclination_rad", "segment/shank_left/quat",
            "segment/shank_right/position_m"} <= new
    assert a1["knee_flexion_rad"].shape == (a1["time_s"].shape[0], 2)
    # one shank sensor is enough for both knees' truth, identical to the full set's
    np.testing.assert_array_equal(one.truth.knee_flexion_rad, more.truth.knee_flexion_rad)
    np.testing.assert_array_equal(one.batches["shank_left"].acc, more.batches["shank_left"].acc)


def test_truth_checks_and_storage_carry_the_knees(tmp_path):
    from lumbar.storage.reader import read_session
    from lumbar.storage.writer import write_simulated

    sim = _sim("sitting-knee-extension", duration_s=20.0, reps=1, sensors=("sacrum", "shank_right"),
               misalignment_deg=None)
    arrays = sim.truth.to_arrays()
    bad = dict(arrays, knee_flexion_rad=arrays["knee_flexion_rad"][:-1])
    with pytest.raises(SimulationError, match="knee_flexion_rad"):
        Truth.from_arrays(bad, sim.truth.attrs())
    path = write_simulated(tmp_path / "knees.h5", sim, sim.session_info())
    back = read_session(path, load_truth=True)
    np.testing.assert_array_equal(back.truth["knee_flexion_rad"], sim.truth.knee_flexion_rad)
    np.testing.assert_array_equal(back.truth["segment/shank_right/quat"], sim.truth.segment_quat("shank_right"))
    assert "shank_right" in back.data and back.sensors["shank_right"].placement == "shank_right"


def test_unknown_placement_names_the_shanks():
    with pytest.raises(SimulationError, match="shank_left, shank_right"):
        simulate("flexion", duration_s=20.0, sensors=("shin_left",))
