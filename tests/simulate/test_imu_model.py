"""MEMS error model: noise level, saturation, quantisation, timing, determinism."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lumbar.simulate import ImuErrorModel, simulate
from lumbar.types import SampleFlag

from .conftest import G


def _static(imu: ImuErrorModel, seconds: float = 60.0, rate: float = 100.0, seed: int = 1, **kw):
    return simulate("quiet-standing", duration_s=seconds, rate_hz=rate, seed=seed, imu=imu, sway_scale=0.0,
                    sensors=("sacrum",), **kw)


@pytest.mark.parametrize("rate", [100.0, 200.0])
def test_white_noise_std_matches_density(rate):
    nd_acc, nd_gyro = 160e-6 * G, np.radians(0.007)
    imu = ImuErrorModel.ideal(acc_noise_density=nd_acc, gyro_noise_density=nd_gyro)
    sim = _static(imu, rate=rate)
    b = sim.batches["sacrum"]
    acc_err = b.acc - sim.truth.sensor("sacrum", "acc_true_mps2")
    np.testing.assert_allclose(acc_err.std(axis=0), nd_acc * np.sqrt(rate / 2), rtol=0.04)
    np.testing.assert_allclose(b.gyro.std(axis=0), nd_gyro * np.sqrt(rate / 2), rtol=0.04)
    # and white: neighbouring samples uncorrelated
    g = b.gyro[:, 0]
    assert abs(np.corrcoef(g[:-1], g[1:])[0, 1]) < 0.05


def test_ideal_has_no_errors():
    sim = simulate("flexion", duration_s=30.0, seed=2, imu=ImuErrorModel.ideal())
    for p, b in sim.batches.items():
        np.testing.assert_array_equal(b.acc, sim.truth.sensor(p, "acc_true_mps2"))
        np.testing.assert_array_equal(b.gyro, sim.truth.sensor(p, "gyro_true_rads"))
        np.testing.assert_array_equal(b.time_s, b.device_time_s)
        np.testing.assert_array_equal(sim.truth.sensor(p, "misalignment_deg"), 0.0)
        assert not b.flags.any()


def test_quantisation_step_is_range_over_32768():
    imu = ImuErrorModel.ideal(quantize=True, acc_noise_density=1e-3, gyro_noise_density=1e-3)
    b = _static(imu, seconds=5.0).batches["sacrum"]
    for x, q in ((b.acc, imu.acc_range_mps2 / 32768), (b.gyro, imu.gyro_range_rads / 32768)):
        counts = x / q
        np.testing.assert_allclose(counts, np.round(counts), atol=1e-6)
        assert len(np.unique(np.round(counts[:, 0]))) > 3  # several levels are used
    assert imu.acc_lsb_mps2 == pytest.approx(8 * G / 32768)
    assert imu.gyro_lsb_rads == pytest.approx(np.radians(2000) / 32768)


def test_saturation_clips_and_flags():
    rng_gyro = np.radians(20.0)  # flexion reaches > 50 °/s
    rng_acc = 0.9 * G  # the superior axis sees ≈ g at rest
    imu = ImuErrorModel.ideal(saturate=True, quantize=True, gyro_range_rads=rng_gyro, acc_range_mps2=rng_acc)
    sim = simulate("flexion", duration_s=30.0, seed=3, imu=imu)
    b = sim.batches["lumbar"]
    w_true = sim.truth.sensor("lumbar", "gyro_true_rads")
    f_true = sim.truth.sensor("lumbar", "acc_true_mps2")
    exceeds_g = np.any(np.abs(w_true) >= rng_gyro, axis=1)
    exceeds_a = np.any(np.abs(f_true) >= rng_acc, axis=1)
    assert exceeds_g.any() and exceeds_a.any() and not exceeds_g.all()
    np.testing.assert_array_equal(b.has_flag(SampleFlag.GYRO_SATURATED), exceeds_g)
    np.testing.assert_array_equal(b.has_flag(SampleFlag.ACC_SATURATED), exceeds_a)
    assert np.abs(b.gyro).max() <= rng_gyro and np.abs(b.acc).max() <= rng_acc
    assert sim.sensors["lumbar"].gyro_range_rads == rng_gyro


def test_default_commodity_ranges_and_metadata():
    sim = simulate("flexion", duration_s=20.0, seed=1)
    info = sim.sensors["lumbar"]
    assert info.family == "emulated" and info.model == "emulated BMI270"
    assert info.acc_range_mps2 == pytest.approx(8 * G) and info.gyro_range_rads == pytest.approx(np.radians(2000))
    assert info.nominal_rate_hz == 100.0
    b = sim.batches["lumbar"]
    assert not b.flags.any()  # no saturation in ordinary flexion


def test_timing_jitter_drift_and_sequence():
    imu = ImuErrorModel.ideal(jitter_s=50e-6, clock_drift_ppm=100.0)
    sim = simulate("flexion", duration_s=60.0, seed=4, imu=imu, rate_hz=200.0)
    b = sim.batches["lumbar"]
    n = len(b)
    np.testing.assert_array_equal(b.seq, np.arange(n))
    np.testing.assert_allclose(b.device_time_s, np.arange(n) / 200.0, rtol=0, atol=1e-12)
    assert np.all(np.diff(b.time_s) > 0)
    drift = sim.truth.attrs()["sensor/lumbar/clock_drift_ppm"] * 1e-6
    resid = b.time_s - b.device_time_s * (1 + drift)
    assert 30e-6 < resid.std() < 70e-6
    assert abs(drift) <= 100e-6 and drift != 0
    # truth is given at the true instants
    np.testing.assert_array_equal(sim.truth.sensor("lumbar", "time_s"), b.time_s)


def test_bias_and_scale_errors_are_applied_as_documented():
    imu = ImuErrorModel.commodity()
    imu = dataclasses.replace(imu, acc_noise_density=0.0, gyro_noise_density=0.0, quantize=False)
    sim = simulate("flexion", duration_s=30.0, seed=5, imu=imu)
    p = "lumbar"
    tr = sim.truth
    b = sim.batches[p]
    acc = tr.sensor(p, "acc_true_mps2") @ tr.sensor(p, "acc_matrix").T + tr.sensor(p, "acc_bias_mps2")
    gyro = tr.sensor(p, "gyro_true_rads") @ tr.sensor(p, "gyro_matrix").T + tr.sensor(p, "gyro_bias_rads")
    np.testing.assert_allclose(b.acc, acc, atol=1e-12)
    np.testing.assert_allclose(b.gyro, gyro, atol=1e-12)
    bias = tr.sensor(p, "gyro_bias_rads")
    assert 0 < np.abs(bias).max() < np.radians(3)  # zero-rate offset of a few tenths of °/s
    assert np.ptp(bias, axis=0).max() > 0  # bias instability drifts
    assert 0 < np.abs(tr.sensor(p, "misalignment_deg")).max() < 10


def test_determinism_same_seed_identical_different_seed_differs():
    a = simulate("one-leg-stance", duration_s=40.0, seed=11, reps=1)
    b = simulate("one-leg-stance", duration_s=40.0, seed=11, reps=1)
    c = simulate("one-leg-stance", duration_s=40.0, seed=12, reps=1)
    ta, tb, tc = a.truth.to_arrays(), b.truth.to_arrays(), c.truth.to_arrays()
    assert ta.keys() == tb.keys()
    for k in ta:
        np.testing.assert_array_equal(ta[k], tb[k], err_msg=k)
    for p in a.batches:
        for f in ("time_s", "acc", "gyro", "flags"):
            np.testing.assert_array_equal(getattr(a.batches[p], f), getattr(b.batches[p], f))
        assert not np.array_equal(a.batches[p].acc, c.batches[p].acc)
    assert not np.array_equal(ta["sway/ap_ml_rad"], tc["sway/ap_ml_rad"])
    assert a.events == b.events


def test_sensor_streams_do_not_depend_on_other_sensors():
    one = simulate("flexion", duration_s=20.0, seed=9, sensors=("sacrum",))
    two = simulate("flexion", duration_s=20.0, seed=9, sensors=("lumbar", "sacrum"))
    np.testing.assert_array_equal(one.batches["sacrum"].acc, two.batches["sacrum"].acc)
    assert not np.array_equal(two.batches["lumbar"].gyro[:, 2] - two.truth.sensor("lumbar", "gyro_true_rads")[:, 2],
                              two.batches["sacrum"].gyro[:, 2] - two.truth.sensor("sacrum", "gyro_true_rads")[:, 2])


def test_datasheet_presets_differ():
    assert ImuErrorModel.icm42688().gyro_noise_density < ImuErrorModel.bmi270().gyro_noise_density
    assert ImuErrorModel.lsm6dso().model == "LSM6DSO"
    d = ImuErrorModel.commodity().to_dict()
    assert ImuErrorModel.from_dict(d) == ImuErrorModel.commodity()
