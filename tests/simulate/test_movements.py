"""Movements: repetition counts, lumbo-pelvic rhythm, good vs poor control, sway, errors."""
from __future__ import annotations

import numpy as np
import pytest

from lumbar.errors import SimulationError
from lumbar.simulate import MOVEMENTS, ImuErrorModel, SimulatedSession, Truth, simulate

IDEAL = ImuErrorModel.ideal()
REP_MOVEMENTS = [m for m in MOVEMENTS if m != "quiet-standing"]


def test_movement_names():
    assert set(MOVEMENTS) == {"quiet-standing", "flexion", "pelvic-tilt", "waiters-bow", "sitting-knee-extension",
                              "one-leg-stance", "sit-to-stand", "rocking", "prone-knee-bend"}
    assert all(isinstance(v, str) and v for v in MOVEMENTS.values())


@pytest.mark.parametrize("movement", REP_MOVEMENTS)
def test_rep_count_events_and_bounds(movement):
    sim = simulate(movement, duration_s=90.0, seed=1, reps=3, imu=IDEAL, sensors=("lumbar", "sacrum", "thigh_left"))
    tr = sim.truth
    bounds = tr.rep_bounds_s
    assert bounds.shape == (3, 3)
    assert np.all(np.diff(bounds, axis=1) > 0) and np.all(bounds[1:, 0] > bounds[:-1, 2])
    assert bounds[0, 0] >= 5.0 and bounds[-1, 2] <= 90.0
    labels = [e.label for e in sim.events]
    assert labels.count("rep_start") == labels.count("rep_peak") == labels.count("rep_end") == 3
    assert labels[0] == "trial_start" and labels[-1] == "trial_end"
    starts = [e.time_s for e in sim.events if e.label == "rep_start"]
    np.testing.assert_allclose(starts, bounds[:, 0])
    assert tr.attrs()["reps"] == 3
    # the trial starts still: no rotation before the first repetition apart from sway
    t = tr.time_s
    assert np.ptp(np.degrees(tr.lumbar_angles_rad[t < 4.5, 0])) < 1.0


def test_default_reps_fill_short_trials():
    sim = simulate("flexion", duration_s=30.0, seed=1, imu=IDEAL)
    assert 1 <= sim.truth.rep_bounds_s.shape[0] < 10
    assert simulate("flexion", duration_s=200.0, seed=1, imu=IDEAL).truth.rep_bounds_s.shape[0] == 10


@pytest.mark.parametrize("share", [0.3, 0.6, 0.8])
def test_flexion_lumbar_share_in_truth(share):
    sim = simulate("flexion", duration_s=60.0, seed=2, reps=4, imu=IDEAL, lumbar_share=share, sway_scale=0.0)
    tr = sim.truth
    for start, peak, _ in tr.rep_bounds_s:
        k0, k1 = np.searchsorted(tr.time_s, [start, peak]) - [1, 0]  # last sample before the start
        d_l = tr.lumbar_angles_rad[k1, 0] - tr.lumbar_angles_rad[k0, 0]
        d_p = tr.pelvis_tilt_rad[k1] - tr.pelvis_tilt_rad[k0]
        assert d_l / (d_l + d_p) == pytest.approx(share, abs=1e-9)
    assert tr.attrs()["lumbar_share"] == share
    assert tr.attrs()["lumbo_pelvic_ratio"] == pytest.approx(share / (1 - share))


def test_flexion_share_with_sway_and_lumbar_leads():
    sim = simulate("flexion", duration_s=60.0, seed=3, reps=4, imu=IDEAL)
    tr = sim.truth
    share = tr.attrs()["lumbar_share"]
    start, peak, _ = tr.rep_bounds_s[0]
    k0, k1 = np.searchsorted(tr.time_s, [start, peak])
    d_l = tr.lumbar_angles_rad[k1, 0] - tr.lumbar_angles_rad[k0, 0]
    d_p = tr.pelvis_tilt_rad[k1] - tr.pelvis_tilt_rad[k0]
    assert d_l / (d_l + d_p) == pytest.approx(share, abs=0.02)
    # good rhythm: the lumbar spine dominates the first part of the bend (METRICS.md §2.2)
    quarter = k0 + (k1 - k0) // 4
    dl_q = tr.lumbar_angles_rad[quarter, 0] - tr.lumbar_angles_rad[k0, 0]
    dp_q = tr.pelvis_tilt_rad[quarter] - tr.pelvis_tilt_rad[k0]
    assert dl_q / (dl_q + dp_q) > share + 0.1


def _excursion_deg(sim: SimulatedSession, col: int = 0) -> float:
    tr = sim.truth
    a = np.degrees(tr.lumbar_angles_rad[:, col])
    base = np.median(a[tr.time_s < 5.0])
    return max(abs(a.max() - base), abs(a.min() - base))


@pytest.mark.parametrize("movement", ["waiters-bow", "sitting-knee-extension", "rocking"])
def test_poor_control_flexes_the_lumbar_spine(movement):
    good = simulate(movement, duration_s=60.0, seed=4, reps=3, imu=IDEAL, quality="good")
    poor = simulate(movement, duration_s=60.0, seed=4, reps=3, imu=IDEAL, quality="poor")
    assert _excursion_deg(good) < 5.0
    assert _excursion_deg(poor) > 10.0
    assert np.degrees(poor.truth.lumbar_angles_rad[:, 0]).max() > 10.0  # flexion, not extension


def test_prone_knee_bend_posture_and_control():
    """Prone lying: trunk, pelvis and thighs horizontal, face down; good control keeps the low back and
    pelvis within a few degrees; poor control extends the lumbar spine, tilts the pelvis forward and
    rotates it towards the working side (alternating), while the thighs stay on the table."""
    kw = dict(duration_s=60.0, seed=4, reps=4, imu=IDEAL, sensors=("lumbar", "sacrum", "thigh_left", "thigh_right"))
    good = simulate("prone-knee-bend", quality="good", **kw)
    poor = simulate("prone-knee-bend", quality="poor", **kw)
    for sim in (good, poor):
        tr = sim.truth
        assert tr.attrs()["posture"] == "prone lying"
        start = tr.time_s < 5.0
        np.testing.assert_allclose(np.degrees(tr.pelvis_tilt_rad[start]), 90.0, atol=0.1)  # superior axis forward
        np.testing.assert_allclose(np.degrees(tr["trunk_inclination_rad"][start]), 90.0, atol=0.1)
        np.testing.assert_allclose(np.degrees(tr["thigh_inclination_rad"][start]), 90.0, atol=0.1)
        # face down: the trunk's anterior axis points at the table, so a still sensor feels g on its −x axis
        assert sim.batches["sacrum"].acc[0, 0] < -9.7 and sim.batches["lumbar"].acc[0, 0] < -9.7
        # the pelvis lies on the table, a hip-centre height above it
        assert tr["segment/pelvis/position_m"][0, 2] == pytest.approx(0.09, abs=1e-9)
        # the thighs see only small motion (the shank, which bends 90°, is not part of the model)
        assert np.ptp(np.degrees(tr["thigh_inclination_rad"]), axis=0).max() < 4.0
    g = np.ptp(np.degrees(good.truth.lumbar_angles_rad), axis=0)
    assert g[0] < 4.0 and g[2] < 3.0 and np.ptp(np.degrees(good.truth.pelvis_tilt_rad)) < 3.0
    la = np.degrees(poor.truth.lumbar_angles_rad)
    assert la[:, 0].min() < -10.0 and la[:, 0].max() < 1.0  # extension, not flexion
    assert np.ptp(la[:, 2]) > 8.0  # the pelvis rotates, the thorax does not: lumbar axial rotation, both ways
    assert np.ptp(np.degrees(poor.truth.pelvis_tilt_rad)) > 7.0
    # the hips rise as the pelvis tips over its table contact
    assert poor.truth["segment/pelvis/position_m"][:, 2].max() > 0.09 + 0.01
    notes = [e.note for e in poor.events if e.label == "rep_start"]
    assert "right knee" in notes[0] and "left knee" in notes[1]


def test_foam_scales_quiet_standing_sway():
    """Same seed, same sway pattern: foam multiplies it by FOAM_FACTOR (eyes open) and by
    FOAM_FACTOR × FOAM_EYES_CLOSED_FACTOR (eyes closed), relative to firm eyes open."""
    from lumbar.protocols.registry import session_conditions
    from lumbar.simulate.movements import FOAM_EYES_CLOSED_FACTOR, FOAM_FACTOR

    def sd(**kw):
        sim = simulate("quiet-standing", duration_s=30.0, seed=3, imu=IDEAL, sensors=("sacrum",), **kw)
        return sim, sim.truth["sway/ap_ml_rad"].std(axis=0)

    _, firm = sd()
    foam_sim, foam = sd(surface="foam")
    ec_sim, ec = sd(surface="foam", eyes="closed")
    np.testing.assert_allclose(foam / firm, FOAM_FACTOR, rtol=1e-9)
    np.testing.assert_allclose(ec / firm, FOAM_FACTOR * FOAM_EYES_CLOSED_FACTOR, rtol=1e-9)
    assert 1.3 <= FOAM_FACTOR <= 2.5 and FOAM_EYES_CLOSED_FACTOR > 1.35  # vision matters more on foam
    assert foam_sim.truth.attrs()["surface"] == "foam"
    assert session_conditions(ec_sim.session_info().notes) == {"eyes": "closed", "surface": "foam"}
    assert session_conditions(sd()[0].session_info().notes) == {"eyes": "open", "surface": "firm"}


def test_waiters_bow_trunk_inclines_by_the_amplitude():
    sim = simulate("waiters-bow", duration_s=40.0, seed=5, reps=2, imu=IDEAL, amplitude_deg=40.0, variability=0.0,
                   sway_scale=0.0)
    assert np.degrees(sim.truth["trunk_inclination_rad"]).max() == pytest.approx(40.0, abs=2.6)


def test_pelvic_tilt_poor_moves_the_thorax():
    good = simulate("pelvic-tilt", duration_s=60.0, seed=6, reps=3, imu=IDEAL, quality="good", sway_scale=0.0)
    poor = simulate("pelvic-tilt", duration_s=60.0, seed=6, reps=3, imu=IDEAL, quality="poor", sway_scale=0.0)
    trunk = lambda s: np.ptp(np.degrees(s.truth["trunk_inclination_rad"]))  # noqa: E731
    pelvis = lambda s: np.ptp(np.degrees(s.truth.pelvis_tilt_rad))  # noqa: E731
    assert pelvis(good) == pytest.approx(20.0, rel=0.15)  # ±10° anterior/posterior
    assert trunk(good) < 2.5 and trunk(poor) > 5.0


def test_one_leg_stance_poor_has_more_trunk_sway():
    kw = dict(duration_s=60.0, seed=7, reps=2, imu=IDEAL, sensors=("lumbar", "sacrum", "thigh_left", "thigh_right"))
    good = simulate("one-leg-stance", quality="good", **kw)
    poor = simulate("one-leg-stance", quality="poor", **kw)

    def stance_lat_sd(sim):
        tr = sim.truth
        s, pk, e = tr.rep_bounds_s[0]
        m = (tr.time_s > pk - 3) & (tr.time_s < pk + 3)
        return np.degrees(tr.lumbar_angles_rad[m, 1]).std(), np.ptp(tr["sway/ap_ml_m"][m, 1])

    (g_lat, g_ml), (p_lat, p_ml) = stance_lat_sd(good), stance_lat_sd(poor)
    assert p_lat > 2 * g_lat and p_ml > g_ml
    # the lifted thigh flexes: left thigh inclines backwards (knee forward) in the first repetition
    th = np.degrees(good.truth["thigh_inclination_rad"])
    pk = good.truth.rep_bounds_s[0, 1]
    k = np.searchsorted(good.truth.time_s, pk)
    assert th[k, 0] < -30 and abs(th[k, 1]) < 3


def test_sit_to_stand_rises_and_sits():
    sim = simulate("sit-to-stand", duration_s=40.0, seed=8, reps=2, imu=IDEAL, sensors=("sacrum", "thigh_right"))
    tr = sim.truth
    z = tr["segment/pelvis/position_m"][:, 2]
    assert z[0] == pytest.approx(0.47, abs=0.02) and z.max() == pytest.approx(0.92, abs=0.02)
    th = np.degrees(tr["thigh_inclination_rad"][:, 1])
    assert th[0] == pytest.approx(-90.0, abs=1.0)
    # seated, the thigh's anterior axis points up: the (nearly aligned) sensor sees g on its x axis
    acc0 = sim.batches["thigh_right"].acc[0]
    assert np.linalg.norm(acc0) == pytest.approx(9.80665, abs=0.3)
    assert acc0[0] > 9.0


def test_quiet_standing_sway_is_realistic():
    """Sacral horizontal acc RMS (mean-tilt removed) in the healthy window and EC > EO (METRICS.md §1.5)."""
    rms = {}
    for eyes in ("open", "closed"):
        vals = []
        for seed in range(3):
            sim = simulate("quiet-standing", duration_s=60.0, seed=seed, eyes=eyes, imu=IDEAL, sensors=("sacrum",))
            a = sim.batches["sacrum"].acc
            ap, ml = a[:, 0] - a[:, 0].mean(), a[:, 2] - a[:, 2].mean()
            vals.append(np.sqrt(np.mean(ap**2 + ml**2)))
            f = np.fft.rfftfreq(len(ap), 0.01)
            pw = np.abs(np.fft.rfft(ap)) ** 2
            assert pw[f < 1.0].sum() > 0.8 * pw.sum()  # most sway power below 1 Hz
        rms[eyes] = np.mean(vals)
    assert 0.01 < rms["open"] < 0.10
    assert rms["closed"] > 1.2 * rms["open"]
    sw = sim.truth["sway/ap_ml_m"]
    assert 0.002 < sw[:, 0].std() < 0.01  # COM sway SD of a few mm


def test_truth_round_trip_and_attrs():
    sim = simulate("flexion", duration_s=20.0, seed=1, reps=1)
    arrays, attrs = sim.truth.to_arrays(), sim.truth.attrs()
    for v in attrs.values():
        assert isinstance(v, (str, int, float, bool))
    for name in ("time_s", "segment/lumbar/quat", "segment/pelvis/quat", "sensor/lumbar/quat",
                 "sensor/lumbar/position_m", "lumbar_angles_rad", "pelvis_tilt_rad", "rep_bounds_s", "sway/ap_ml_m"):
        assert name in arrays
    assert attrs["movement"] == "flexion" and attrs["seed"] == 1 and "imu/acc_noise_density" in attrs
    back = Truth.from_arrays({k: np.array(v) for k, v in arrays.items()}, attrs)
    np.testing.assert_array_equal(back.lumbar_angles_rad, sim.truth.lumbar_angles_rad)
    assert back.attrs() == attrs and back.sensors == ["lumbar", "sacrum"]
    with pytest.raises(SimulationError, match="time_s"):
        Truth.from_arrays({k: v for k, v in arrays.items() if k != "time_s"}, attrs)
    info = sim.session_info()
    assert info.protocol == "flexion"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(movement="jumping"), "unknown movement"),
        (dict(movement="flexion", quality="bad"), "quality"),
        (dict(movement="flexion", sensors=("neck",)), "placement"),
        (dict(movement="flexion", eyes="half"), "eyes"),
        (dict(movement="flexion", reps=50, duration_s=60.0), "do not fit"),
        (dict(movement="flexion", duration_s=8.0), "too short"),
        (dict(movement="quiet-standing", reps=3), "no repetitions"),
        (dict(movement="flexion", rate_hz=0.0), "rate_hz"),
        (dict(movement="flexion", misalignment_deg={"thigh_left": [1, 2, 3]}), "not among the sensors"),
        (dict(movement="flexion", misalignment_deg={"lumbar": [1, 2]}), "rotation vector"),
        (dict(movement="pelvic-tilt", lumbar_share=0.5), "only to 'flexion'"),
        (dict(movement="quiet-standing", surface="sand"), "unknown surface"),
        (dict(movement="flexion", surface="foam"), "only to 'quiet-standing'"),
    ],
)
def test_clear_errors(kwargs, match):
    with pytest.raises(SimulationError, match=match):
        simulate(**kwargs)
