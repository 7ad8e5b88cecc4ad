"""Tests of the orientation kernels and their object API (lumbar.filters.orientation)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lumbar.errors import ValidationError
from lumbar.filters import (
    MadgwickFilter,
    MadgwickParams,
    MahonyFilter,
    MahonyParams,
    VQFFilter,
    VQFParams,
    estimate_orientation,
)

from .conftest import simulate_imu
from .reference_orientation import madgwick as ref_madgwick
from .reference_orientation import mahony as ref_mahony
from .reference_orientation import rotmat

FILTERS = [
    pytest.param(lambda r: MadgwickFilter(r), id="madgwick"),
    pytest.param(lambda r: MadgwickFilter(r, MadgwickParams(integrate_first=True, acc_rejection_m_s2=2.0)),
                 id="madgwick-integrate-first-rejection"),
    pytest.param(lambda r: MahonyFilter(r), id="mahony"),
    pytest.param(lambda r: VQFFilter(r), id="vqf"),
    pytest.param(lambda r: VQFFilter(r, VQFParams(tau_acc_s=0.5, rest_min_time_s=0.5)), id="vqf-fast"),
]


def _outputs(quat, diag):  # noqa: ANN001, ANN202
    arrays = [quat, diag.bias_rad_s]
    for extra in (diag.rest, diag.bias_sigma_rad_s, diag.acc_rejected):
        if extra is not None:
            arrays.append(np.asarray(extra, dtype=np.float64)[:, None])
    return np.concatenate(arrays, axis=1)


@pytest.mark.parametrize("make", FILTERS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(splits=st.lists(st.integers(min_value=0, max_value=1200), max_size=6))
def test_chunk_invariance(make, splits, imu_recording) -> None:  # noqa: ANN001
    """Random chunkings of a recording give the one-pass result (to 1e-12; in fact exactly)."""
    acc, gyr, rate = imu_recording["acc"], imu_recording["gyr"], imu_recording["rate_hz"]
    whole = _outputs(*make(rate).process(acc, gyr))
    filt = make(rate)
    edges = [0, *sorted(splits), len(acc)]
    parts = [_outputs(*filt.process(acc[a:b], gyr[a:b])) for a, b in zip(edges[:-1], edges[1:])]
    chunked = np.concatenate(parts)
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-12)


@pytest.mark.parametrize("make", FILTERS)
def test_state_save_restore(make, imu_recording) -> None:  # noqa: ANN001
    acc, gyr, rate = imu_recording["acc"], imu_recording["gyr"], imu_recording["rate_hz"]
    a = make(rate)
    a.process(acc[:500], gyr[:500])
    saved = a.state
    rest_a = _outputs(*a.process(acc[500:], gyr[500:]))
    b = make(rate)
    b.state = saved
    rest_b = _outputs(*b.process(acc[500:], gyr[500:]))
    np.testing.assert_array_equal(rest_a, rest_b)
    # reset returns to the start
    a.reset()
    np.testing.assert_array_equal(_outputs(*a.process(acc, gyr)), _outputs(*make(rate).process(acc, gyr)))
    with pytest.raises(ValidationError, match="state"):
        a.state = np.zeros(3)


def test_single_sample_step_equals_run(imu_recording) -> None:
    from lumbar.filters import _orientation_numba as k

    acc, gyr, rate = imu_recording["acc"][:300], imu_recording["gyr"][:300], imu_recording["rate_hz"]
    for filt, step in ((VQFFilter(rate), k.vqf_step), (MadgwickFilter(rate), k.madgwick_step),
                       (MahonyFilter(rate), k.mahony_step)):
        expected, _ = type(filt)(rate, filt.params).process(acc, gyr)
        out = np.empty((len(acc), 4))
        for i in range(len(acc)):
            step(gyr[i], acc[i], filt._coeffs, filt._state, out[i])
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("integrate_first", [False, True])
def test_madgwick_matches_numpy_reference(integrate_first, imu_recording) -> None:  # noqa: ANN001
    acc, gyr, rate = imu_recording["acc"], imu_recording["gyr"], imu_recording["rate_hz"]
    q, _ = MadgwickFilter(rate, MadgwickParams(beta_rad_s=0.1, integrate_first=integrate_first)).process(acc, gyr)
    ref = ref_madgwick(acc, gyr, rate, beta=0.1, integrate_first=integrate_first)
    np.testing.assert_allclose(q, ref, rtol=0, atol=1e-12)


def test_mahony_matches_numpy_reference(imu_recording) -> None:
    acc, gyr, rate = imu_recording["acc"], imu_recording["gyr"], imu_recording["rate_hz"]
    q, diag = MahonyFilter(rate).process(acc, gyr)
    ref_q, ref_b = ref_mahony(acc, gyr, rate)
    np.testing.assert_allclose(q, ref_q, rtol=0, atol=1e-12)
    np.testing.assert_allclose(diag.bias_rad_s, ref_b, rtol=0, atol=1e-12)


def test_madgwick_matches_ahrs_when_installed(imu_recording) -> None:
    ahrs = pytest.importorskip("ahrs")
    acc, gyr, rate = imu_recording["acc"][:400], imu_recording["gyr"][:400], imu_recording["rate_hz"]
    theirs = ahrs.filters.Madgwick(gyr=gyr, acc=acc, frequency=rate).Q
    f = MadgwickFilter(rate)
    f.state = np.concatenate([theirs[0], [1.0]])  # same start, initialised
    ours, _ = f.process(acc[1:], gyr[1:])
    np.testing.assert_allclose(ours, theirs[1:], rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["default", "vqf", "madgwick", "mahony", "offline"])
def test_static_input_converges_to_gravity(method) -> None:  # noqa: ANN001
    """A still, tilted sensor: the estimate rotates the measured gravity onto earth +z."""
    n, rate = 3000, 100.0
    tilt = rotmat(np.array([np.cos(0.3), 0.0, np.sin(0.3), 0.0])) @ rotmat(np.array([np.cos(-0.2), np.sin(-0.2), 0, 0]))
    up_in_sensor = tilt.T @ np.array([0.0, 0.0, 9.81])
    acc = np.tile(up_in_sensor, (n, 1))
    gyr = np.zeros((n, 3))
    quat, _ = estimate_orientation(acc, gyr, rate, method=method)
    up = np.einsum("ij,j->i", rotmat(quat[-1]), up_in_sensor / 9.81)
    # Madgwick's normalised gradient never vanishes: it dithers by up to β·dt (0.02° here)
    tol_deg = 0.05 if method == "madgwick" else 0.01
    assert np.degrees(np.arccos(np.clip(up[2], -1, 1))) < tol_deg
    np.testing.assert_allclose(np.linalg.norm(quat, axis=1), 1.0, atol=1e-12)


def test_vqf_estimates_constant_bias_at_rest() -> None:
    rate = 100.0
    bias = np.array([0.01, -0.02, 0.005])
    rec = simulate_imu(2000, rate, seed=3, bias_rad_s=tuple(bias), rest_s=20.0)  # all at rest
    f = VQFFilter(rate)
    quat, diag = f.process(rec["acc"], rec["gyr"])
    assert diag.rest[-1] and not diag.rest[0]
    np.testing.assert_allclose(diag.bias_rad_s[-1], bias, atol=5e-4)
    np.testing.assert_allclose(f.bias_rad_s, bias, atol=5e-4)
    assert diag.bias_sigma_rad_s[-1] < diag.bias_sigma_rad_s[0]


def test_vqf_inclination_with_bias_during_motion(imu_recording) -> None:
    rec = simulate_imu(6000, 100.0, seed=4, bias_rad_s=(0.01, -0.02, 0.005))
    quat, _ = estimate_orientation(rec["acc"], rec["gyr"], rec["rate_hz"])
    z_est = np.array([rotmat(q).T[:, 2] for q in quat[::50]])
    z_true = np.array([rotmat(q).T[:, 2] for q in rec["quat"][::50]])
    err = np.degrees(np.arccos(np.clip(np.sum(z_est * z_true, axis=1), -1, 1)))
    assert np.sqrt(np.mean(err[10:] ** 2)) < 1.0


def _load_vqf_test_imu(shared_dir):  # noqa: ANN001, ANN202
    d = np.load(shared_dir / "data" / "vqf_test_imu" / "imu_data.npz")
    return (np.ascontiguousarray(d["acc"], dtype=np.float64), np.ascontiguousarray(d["gyr"], dtype=np.float64),
            float(d["sampling_rate"]))


def test_vqf_class_matches_vqf_package(shared_dir) -> None:  # noqa: ANN001
    vqf = pytest.importorskip("vqf")
    acc, gyr, rate = _load_vqf_test_imu(shared_dir)
    theirs = vqf.VQF(1.0 / rate).updateBatch(gyr, acc)
    quat, diag = VQFFilter(rate).process(acc, gyr)
    np.testing.assert_allclose(quat, theirs["quat6D"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(diag.bias_rad_s, theirs["bias"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(diag.bias_sigma_rad_s, theirs["biasSigma"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(diag.rest, theirs["restDetected"])


def test_offline_matches_offline_vqf(shared_dir) -> None:  # noqa: ANN001
    vqf = pytest.importorskip("vqf")
    acc, gyr, rate = _load_vqf_test_imu(shared_dir)
    theirs = vqf.offlineVQF(gyr, acc, None, 1.0 / rate)
    quat, diag = estimate_orientation(acc, gyr, rate, method="offline")
    np.testing.assert_allclose(quat, theirs["quat6D"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(diag.bias_rad_s, theirs["bias"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(diag.rest, theirs["restDetected"])


# ------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("acc", "gyr", "rate", "method", "match"),
    [
        (np.zeros((10, 2)), np.zeros((10, 3)), 100.0, "default", r"shape \(N, 3\)"),
        (np.full((10, 3), 9.81), np.zeros((11, 3)), 100.0, "default", "same number of samples"),
        (np.full((10, 3), np.nan), np.zeros((10, 3)), 100.0, "default", "NaN"),
        (np.tile([0, 0, 9.81], (10, 1)), np.zeros((10, 3)), 0.0, "default", "rate_hz"),
        (np.tile([0, 0, 9.81], (10, 1)), np.zeros((10, 3)), -5, "default", "rate_hz"),
        (np.tile([0, 0, 9.81], (10, 1)), np.zeros((10, 3)), "fast", "default", "rate_hz"),
        (np.tile([0, 0, 1.0], (10, 1)), np.zeros((10, 3)), 100.0, "default", "in g, not m/s²"),
        (np.tile([0, 0, 9.81], (10, 1)), np.full((10, 3), 90.0), 100.0, "default", "deg/s, not rad/s"),
        (np.tile([0, 0, 9.81], (10, 1)), np.zeros((10, 3)), 100.0, "kalman", "method must be one of"),
    ],
)
def test_validation_messages(acc, gyr, rate, method, match) -> None:  # noqa: ANN001
    with pytest.raises(ValidationError, match=match):
        estimate_orientation(acc, gyr, rate, method=method)


def test_bad_params_rejected() -> None:
    with pytest.raises(ValidationError, match="tau_acc_s"):
        VQFFilter(100.0, VQFParams(tau_acc_s=-1.0))
    with pytest.raises(ValidationError, match="MadgwickParams"):
        MadgwickFilter(100.0, VQFParams())


def test_diagnostics_shapes() -> None:
    rec = simulate_imu(300, 100.0, seed=5)
    for method in ("default", "vqf", "madgwick", "mahony", "offline"):
        quat, diag = estimate_orientation(rec["acc"], rec["gyr"], 100.0, method=method)
        assert quat.shape == (300, 4) and diag.bias_rad_s.shape == (300, 3)
        if method in ("default", "vqf", "offline"):
            assert diag.rest.shape == (300,) and diag.rest.dtype == bool
            assert diag.bias_sigma_rad_s.shape == (300,)
        else:
            assert diag.acc_rejected.shape == (300,) and not diag.acc_rejected.any()


def test_import_does_not_load_numba() -> None:
    code = "import sys, lumbar, lumbar.filters; from lumbar.filters import VQFParams; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


@pytest.mark.parametrize("params_type", [MadgwickParams, MahonyParams, VQFParams])
def test_every_parameter_is_documented(params_type) -> None:  # noqa: ANN001
    import dataclasses

    doc = params_type.__doc__ or ""
    for f in dataclasses.fields(params_type):
        assert f"{f.name} :" in doc, f"{params_type.__name__}.{f.name} is not documented"
