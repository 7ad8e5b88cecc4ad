"""Self-contained metric tests (analytic values, invariants, bad input); no shared material needed."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lumbar.errors import ValidationError
from lumbar.metrics import repetitions as rep
from lumbar.metrics import segmental as seg
from lumbar.metrics import smoothness as sm
from lumbar.metrics import sway as sw
from lumbar.metrics.results import RepetitionSet

D = math.radians
FS = 100.0


# --------------------------------------------------------------------------------------------- sway


def test_sine_time_domain_analytic():
    t = np.arange(3000) / FS
    a, f = 0.05, 1.0
    r = sw.axis_sway(a * np.sin(2 * np.pi * f * t), FS)
    assert r.rms == pytest.approx(a / math.sqrt(2), abs=1e-9)
    assert r.mdist == pytest.approx(2 * a / math.pi, rel=1e-3)  # sampled |sin|
    assert r.range == pytest.approx(2 * a, abs=1e-12)
    assert r.jerk == pytest.approx((2 * np.pi * f * a) ** 2 * 30 / 4, rel=5e-3)
    assert r.jerk_per_s == pytest.approx(r.jerk / 30.0)


def test_circle_planar_analytic():
    t = np.arange(3000) / FS
    rad, f = 0.05, 0.5
    r = sw.planar_sway(rad * np.sin(2 * np.pi * f * t), rad * np.cos(2 * np.pi * f * t), FS)
    assert r.mdist == pytest.approx(rad) and r.rms == pytest.approx(rad)
    assert r.range_max_distance == pytest.approx(2 * rad, rel=1e-4)
    assert r.range_rss == pytest.approx(2 * rad * math.sqrt(2), rel=1e-4)
    assert r.mfreq == pytest.approx(f, abs=1e-3)
    assert r.area_ce == pytest.approx(6 * math.pi * rad**2 / 2, rel=1e-3)  # large-N limit
    assert r.area_pred == pytest.approx(r.area_ce, rel=2e-3)


def test_collinear_range_uses_extremes():
    x = np.linspace(-1, 1, 50)
    assert sw.range_max_distance(x, 2 * x) == pytest.approx(2 * math.sqrt(5))


@pytest.mark.parametrize("seed", range(10))
def test_max_distance_range_equals_brute_force(seed):
    from scipy.spatial.distance import pdist

    rng = np.random.default_rng(seed)
    x = rng.normal(size=300)
    y = rng.normal(size=300) + 0.5 * x
    assert sw.range_max_distance(x, y) == pytest.approx(pdist(np.column_stack([x, y])).max(), rel=1e-12)


def test_tilt_correction_recovers_horizontal_signal_any_tilt():
    t = np.arange(3000) / FS
    a_h = 0.1 * np.sin(2 * np.pi * 0.5 * t)
    for deg in (-15, 0, 5, 20):
        th = D(deg)
        acc = np.column_stack([a_h * np.cos(th) + 9.80665 * np.sin(th), -a_h * np.sin(th) + 9.80665 * np.cos(th),
                               np.zeros_like(t)])
        tc = sw.tilt_correct_static(acc)
        assert tc.tilt_ap == pytest.approx(th, abs=1e-9)
        np.testing.assert_allclose(tc.ap, a_h, atol=1e-9)
        np.testing.assert_allclose(tc.v, 0.0, atol=1e-9)


def test_option_b_with_upright_identity_orientation_is_plain_acceleration():
    rng = np.random.default_rng(1)
    n = 1000
    acc = np.column_stack([rng.normal(0, 0.05, n), rng.normal(0, 0.05, n), 9.80665 + rng.normal(0, 0.05, n)])
    q = np.tile([1.0, 0, 0, 0], (n, 1))  # sensor frame = earth frame, x anterior
    ap, ml, v = sw.horizontal_acc_from_orientation(acc, q)
    np.testing.assert_allclose(ap, acc[:, 0])
    np.testing.assert_allclose(ml, -acc[:, 1])  # earth y is to the left of x (z up): right = −y
    np.testing.assert_allclose(v, acc[:, 2] - 9.80665)


def test_sway_pipeline_filters_and_reports_provenance():
    rng = np.random.default_rng(0)
    t = np.arange(3200) / FS
    ap = 0.05 * np.sin(2 * np.pi * 0.4 * t) + rng.normal(0, 0.02, t.size)  # noise mostly above 3.5 Hz
    ml = 0.03 * np.cos(2 * np.pi * 0.3 * t)
    raw = sw.sway_measures(ap, ml, FS, cutoff_hz=None, discard_s=2.0)
    filt = sw.sway_measures(ap, ml, FS, discard_s=2.0)
    assert filt.valid and filt.duration_s == pytest.approx(30.0)
    assert filt.ap.rms < raw.ap.rms and filt.ap.jerk < 0.2 * raw.ap.jerk
    assert 0.4 < filt.spectral_ap.cf < raw.spectral_ap.cf  # the filter removes high-frequency power
    assert filt.spectral_ml.cf == pytest.approx(0.3, abs=0.01)
    json.dumps(filt.to_dict())  # JSON-ready (NaN → None)


def test_welch_vs_periodogram_estimator_dependence():
    t = np.arange(3000) / FS
    x = 2 * np.sin(2 * np.pi * 0.5 * t) + np.sin(2 * np.pi * 1.5 * t)
    w = sw.spectral_measures(x, FS)  # project default: Welch, Hann, 10 s, 50 %
    assert w.power == pytest.approx(2.5, rel=1e-6)
    assert w.cf == pytest.approx(0.8083, abs=1e-4) and w.fd == pytest.approx(0.5000, abs=1e-4)


def test_sway_invalid_on_nan_and_short():
    t = np.arange(3000) / FS
    ap = 0.05 * np.sin(t)
    bad = ap.copy()
    bad[100:120] = np.nan
    r = sw.sway_measures(bad, ap, FS)
    assert not r.valid and "NaN" in r.reason and math.isnan(r.combined.rms)
    r = sw.sway_measures(ap[:200], ap[:200], FS)
    assert not r.valid and "too short" in r.reason
    r = sw.sway_from_acc(np.full((3000, 3), np.nan), FS)
    assert not r.valid and "all samples are NaN" in r.reason
    assert r.to_dict()["combined"]["rms"] is None


def test_sway_bad_parameters_raise():
    x = np.zeros(1000)
    with pytest.raises(ValidationError, match="fs"):
        sw.sway_measures(x, x, 0)
    with pytest.raises(ValidationError, match="Nyquist"):
        sw.sway_measures(np.sin(np.arange(1000)), np.cos(np.arange(1000)), FS, cutoff_hz=60)
    with pytest.raises(ValidationError, match="method"):
        sw.spectral_measures(x, FS, method="fft")
    with pytest.raises(ValidationError, match=r"shape \(N, 3\)"):
        sw.tilt_correct_static(np.zeros((10, 2)))


def test_angular_sway_and_romberg():
    t = np.arange(3200) / FS
    eo = sw.angular_sway(D(0.3) * np.sin(2 * np.pi * 0.3 * t), D(0.2) * np.cos(2 * np.pi * 0.2 * t), FS)
    ec = sw.angular_sway(D(0.6) * np.sin(2 * np.pi * 0.3 * t), D(0.4) * np.cos(2 * np.pi * 0.2 * t), FS)
    assert eo.combined.base_unit == "rad" and math.isnan(eo.combined.mv)
    ratios = sw.romberg_ratio(eo, ec)
    assert ratios["combined.rms"] == pytest.approx(2.0, rel=1e-3)
    assert ratios["combined.area_ce"] == pytest.approx(4.0, rel=1e-3)
    assert sw.romberg_ratio(2.0, 3.0) == pytest.approx(1.5)
    d = eo.to_dict(display=True)
    assert d["combined"]["units"]["rms"] == "deg"
    assert d["combined"]["rms"] == pytest.approx(math.degrees(eo.combined.rms))


# --------------------------------------------------------------------------------------- smoothness


def test_min_jerk_ldlj_converges_to_analytic_limit():
    fs = 5000.0
    tau = np.arange(int(fs) + 1) / fs
    v = 30 * tau**4 - 60 * tau**3 + 30 * tau**2
    assert sm.ldlj(v, fs) == pytest.approx(-math.log(720 / 1.875**2), abs=2e-3)


def test_sparc_invariances_and_ordering():
    t = np.arange(200) / FS
    one = np.exp(-(((t - 1.0) / 0.2) ** 2))
    two = np.exp(-(((t - 0.6) / 0.2) ** 2)) + np.exp(-(((t - 1.4) / 0.2) ** 2))
    assert sm.sparc(3 * one, FS) == pytest.approx(sm.sparc(one, FS), abs=1e-12)
    assert sm.sparc(two, FS) < sm.sparc(one, FS)
    assert sm.ldlj(two, FS) < sm.ldlj(one, FS)
    with pytest.raises(ValidationError):
        sm.sparc(np.zeros(50), FS)


# ---------------------------------------------------------------------------------------- segmental


def test_rhythm_excursion_bins_and_return():
    t = np.arange(201) / FS
    lum = D(1) * np.interp(t, [0, 1, 2], [0, 30, 50])
    pel = D(1) * np.interp(t, [0, 1, 2], [0, 10, 40])
    r = seg.lumbo_pelvic_rhythm(np.r_[lum, lum[::-1]], np.r_[pel, pel[::-1]])
    assert r.valid and r.peak_idx == 200
    assert r.lumbar_contribution_pct == pytest.approx(100 * 50 / 90)
    assert r.lumbar_pelvic_ratio == pytest.approx(50 / 40)
    assert r.bin_contribution_pct[0] == pytest.approx(75.0, abs=1.0)  # early: lumbar-dominant
    assert r.bin_contribution_pct[-1] == pytest.approx(40.0, abs=1.0)  # late: pelvis-dominant
    np.testing.assert_allclose(r.return_bin_contribution_pct, r.bin_contribution_pct[::-1], atol=1.0)


def test_two_sensor_metrics_invalid_when_sensor_missing():
    x = np.sin(np.arange(500) / FS)
    assert not seg.lumbo_pelvic_rhythm(x, None).valid
    assert not seg.cross_correlation(x, None, FS).valid
    assert not seg.onset_lag(x, None, FS).valid
    d = seg.dissociation(x, None, FS)
    assert not d.valid and "missing" in d.reason and not d.passed


def test_onset_lag_of_delayed_ramp():
    t = np.arange(400) / FS
    lum = np.clip(t - 1.0, 0, None) * D(20)
    pel = np.clip(t - 1.3, 0, None) * D(20)
    r = seg.onset_lag(lum, pel, FS)
    assert r.lag_s == pytest.approx(0.3, abs=0.02)


def test_crp_cycles_dp_zero_for_identical_cycles_and_positive_otherwise():
    t = np.arange(2000) / FS
    x = np.sin(2 * np.pi * 0.5 * t)
    y = np.sin(2 * np.pi * 0.5 * t - D(30))
    c = seg.crp_hilbert(x, y)
    bounds = np.arange(200, 1801, 200)
    s = seg.crp_cycles(c.crp, bounds)
    assert s.marp == pytest.approx(D(30), abs=1e-3) and s.dp == pytest.approx(0.0, abs=1e-3)
    rng = np.random.default_rng(3)
    y2 = np.sin(2 * np.pi * 0.5 * t - D(30) + D(15) * np.sin(2 * np.pi * 0.05 * t + rng.uniform()))
    s2 = seg.crp_cycles(seg.crp_hilbert(x, y2).crp, bounds)
    assert s2.dp > D(3)


def test_dissociation_waiters_bow_pass_and_fail():
    t = np.arange(300) / FS
    hip = D(60) * t / t[-1]
    good = seg.dissociation(hip, D(3) * t / t[-1], FS, target=D(50))
    bad = seg.dissociation(hip, D(25) * t / t[-1], FS, target=D(50))
    short = seg.dissociation(D(40) * t / t[-1], 0 * t, FS, target=D(50))
    assert good.passed and good.target_reached and good.ratio == pytest.approx(3 / 60)
    assert not bad.passed and bad.excursion_b == pytest.approx(D(25))
    assert not short.target_reached and not short.passed
    assert bad.peak_leak_velocity == pytest.approx(D(25) / t[-1], rel=1e-6)


def test_rom_per_plane():
    a = np.column_stack([np.linspace(0, 1, 10), np.linspace(-0.2, 0.1, 10), np.zeros(10)])
    r = seg.rom_per_plane(a)
    np.testing.assert_allclose(r.rom, [1.0, 0.3, 0.0])


# -------------------------------------------------------------------------------------- repetitions


def _flexion_set(n_cycles=10, period=4.0, amp_deg=50.0):
    t = np.arange(int(n_cycles * period * FS) + 1) / FS
    return t, D(amp_deg / 2) * (1 - np.cos(2 * np.pi * t / period))


def test_hysteresis_state_carries_across_chunks():
    x = np.array([0, 5, 0, 5, 0, 0, 5])  # lo 1, hi 4
    ups, downs, st = rep.hysteresis_events(x, 1, 4, 0)
    a_u, a_d, s1 = rep.hysteresis_events(x[:2], 1, 4, 0)
    b_u, b_d, s2 = rep.hysteresis_events(x[2:], 1, 4, s1)
    np.testing.assert_array_equal(ups, np.r_[a_u, b_u + 2])
    np.testing.assert_array_equal(downs, np.r_[a_d, b_d + 2])
    assert st == s2 == 1


def test_starting_above_hi_is_not_an_event():
    ups, downs, st = rep.hysteresis_events(np.array([5, 5, 0, 5, 0]), 1, 4, 0)
    assert ups.tolist() == [3] and downs.tolist() == [4] and st == -1


def test_default_thresholds_from_trial_and_drift():
    t, th = _flexion_set()
    assert rep.segment_repetitions(th, FS).count == 10
    drift = D(15) * t / t[-1]  # 15° of slow zero drift
    assert rep.segment_repetitions(th + drift, FS, drift_window_s=8.0).count == 10


def test_pauses_and_partial_rep():
    t, th = _flexion_set(n_cycles=4)
    pause = np.zeros(int(3 * FS))
    x = np.r_[th[:400], pause, th[400:], th[:150]]  # pause between reps, partial rep at the end
    rs = rep.segment_repetitions(x, FS, lo=D(10), hi=D(30))
    assert rs.count == 4
    np.testing.assert_allclose(np.degrees(rs.values("rom")), 50.0, atol=0.05)


def test_gap_inside_repetition_rejects_it():
    t, th = _flexion_set(n_cycles=5)
    th[450:470] = np.nan
    rs = rep.segment_repetitions(th, FS, lo=D(10), hi=D(30))
    assert rs.count == 4 and len(rs.rejected) == 1
    assert "gap" in rs.rejected[0].reason


def test_small_and_slow_reps_rejected():
    t, th = _flexion_set(n_cycles=3)
    small = D(6) * (1 - np.cos(2 * np.pi * np.arange(401) / 400))  # 12° peak: above hi, ROM too small
    x = np.r_[th, small]
    rs = rep.segment_repetitions(x, FS, lo=D(2), hi=D(10), rom_ref=D(50))
    assert rs.count == 3 and any("ROM" in r.reason for r in rs.rejected)


def test_invalid_set_on_bad_data():
    assert not rep.segment_repetitions(np.full(500, np.nan), FS).valid
    assert not rep.segment_repetitions(np.zeros(500), FS).valid
    with pytest.raises(ValidationError, match="lo and hi"):
        rep.segment_repetitions(np.zeros(500), FS, lo=0.1)


def test_per_rep_kinematics_other_planes_and_share():
    t, th = _flexion_set(n_cycles=3)
    other = np.column_stack([D(5) * np.sin(2 * np.pi * t / 4), np.zeros_like(t)])
    lum, pel = 0.6 * th, 0.4 * th
    rs = rep.segment_repetitions(th, FS, lo=D(10), hi=D(30), other=other, lumbar=lum, pelvis=pel)
    r = rs.repetitions[1]
    assert r.time_to_peak_s == pytest.approx(2.0, abs=0.02) and r.time_to_peak_pct == pytest.approx(50, abs=0.5)
    assert r.mean_velocity == pytest.approx(D(50) / 2.0, rel=1e-2)
    assert r.peak_velocity_return == pytest.approx(D(25) * 2 * np.pi / 4, rel=1e-3)
    assert r.other_plane_range[0] == pytest.approx(D(10), rel=1e-3)
    assert r.lumbar_share_pct == pytest.approx(60.0)
    assert r.sparc < 0 and r.ldlj < 0


def test_consistency_and_trend_detect_fatigue():
    t = np.arange(int(10 * 4 * FS) + 1) / FS
    amp = np.interp(t, [0, t[-1]], [55, 40])  # ROM falls over the set
    rs = rep.segment_repetitions(D(1) * amp / 2 * (1 - np.cos(2 * np.pi * t / 4)), FS)
    assert rs.count == 10
    assert rs.rom_trend.slope_per_rep < 0 and rs.rom_trend.p_value < 0.01
    assert rs.consistency.cv_rom_pct > 5
    same = rep.segment_repetitions(_flexion_set()[1], FS)
    assert same.consistency.cv_rom_pct < 0.1 and np.all(same.consistency.rmsd_to_mean < D(0.1))


def test_dtw_path_length_and_symmetry():
    d, steps = rep.dtw_distance([0, 1, 2], [0, 1, 2])
    assert d == 0 and steps == 3
    s = rep.symmetry_index(20.0, 20.0)
    assert s.si_pct == 0 and s.min_max_ratio == 1
    assert not rep.symmetry_index(0.0, 0.0).valid


@pytest.mark.parametrize("seed", range(4))
def test_live_segmenter_equals_offline(seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(60 * FS)) / FS
    period = 4 + 0.5 * np.sin(2 * np.pi * t / 37)
    th = D(25) * (1 - np.cos(2 * np.pi * np.cumsum(1 / period) / FS)) + rng.normal(0, D(0.5), t.size)
    th[int(31.3 * FS) : int(31.5 * FS)] = np.nan  # a gap
    lo, hi = D(10), D(30)
    offline = rep.segment_repetitions(th, FS, lo=lo, hi=hi, lowpass_hz=None)
    live = rep.RepetitionSegmenter(FS, lo, hi)
    i, seen = 0, []
    while i < th.size:
        k = int(rng.integers(1, 300))
        seen += live.update(th[i : i + k])
        i += k
    final = live.finish()
    assert isinstance(final, RepetitionSet) and final.count == offline.count >= 12
    assert live.count == offline.count + len(offline.rejected)
    for a, b in zip(final.repetitions + final.rejected, offline.repetitions + offline.rejected):
        da, db = a.to_dict(), b.to_dict()
        assert da == db


@pytest.mark.parametrize("seed", range(3))
def test_live_segmenter_reports_a_repetition_once_back_at_rest(seed):
    """With pauses between repetitions (a patient who comes back and stands), each repetition is returned
    within a few tenths of a second of reaching rest — not when the next one starts — and still equals the
    offline one."""
    rng = np.random.default_rng(seed)
    move_s, pause_s, n_reps = 3.0, 3.0, 6
    one = np.concatenate([D(40) * 0.5 * (1 - np.cos(2 * np.pi * np.arange(int(move_s * FS)) / (move_s * FS))),
                          np.zeros(int(pause_s * FS))])
    th = np.concatenate([np.zeros(int(2 * FS)), np.tile(one, n_reps)]) + rng.normal(0, D(0.01), int(2 * FS) + n_reps * one.size)
    lo, hi = D(8), D(24)
    offline = rep.segment_repetitions(th, FS, lo=lo, hi=hi, lowpass_hz=None)
    live = rep.RepetitionSegmenter(FS, lo, hi)
    returned_at, seen, i = [], [], 0
    while i < th.size:
        k = int(rng.integers(1, 20))
        for r in live.update(th[i : i + k]):
            seen.append(r)
            returned_at.append(i + k)  # samples seen when it was returned
        i += k
    live.finish()
    assert len(seen) == offline.count == n_reps  # all returned by update(), none left for finish()
    for r, at, off in zip(seen, returned_at, offline.repetitions):
        assert r.to_dict() == off.to_dict()
        assert 0 < (at - r.end_idx) / FS <= 0.5, (at, r.end_idx)  # the next up-crossing is ≥ 3 s later
