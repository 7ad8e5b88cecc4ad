"""Quaternion and Cardan helpers against scipy and the specification's reference cases."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from lumbar import conventions as cv


@pytest.fixture(scope="module")
def rotations():
    return Rotation.random(2000, random_state=np.random.default_rng(7))


def test_scipy_round_trip_and_matrix(rotations):
    q = cv.from_scipy(rotations)
    assert np.all(q[:, 0] >= 0)
    np.testing.assert_allclose(cv.quat_to_matrix(q), rotations.as_matrix(), atol=1e-12)
    np.testing.assert_allclose(cv.to_scipy(q).as_matrix(), rotations.as_matrix(), atol=1e-12)
    np.testing.assert_allclose(cv.matrix_to_quat(rotations.as_matrix()), q, atol=1e-12)


def test_multiply_conj_rotate(rotations):
    a, b = rotations[:1000], rotations[1000:]
    qa, qb = cv.from_scipy(a), cv.from_scipy(b)
    np.testing.assert_allclose(cv.quat_to_matrix(cv.quat_multiply(qa, qb)), (a * b).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(cv.quat_to_matrix(cv.quat_conj(qa)), a.inv().as_matrix(), atol=1e-12)
    v = np.random.default_rng(1).normal(size=(1000, 3))
    np.testing.assert_allclose(cv.quat_rotate(qa, v), a.apply(v), atol=1e-12)


def test_elementary_rotations_right_handed():
    a = np.deg2rad(33.0)
    for fn, axis in ((cv.rot_x, "x"), (cv.rot_y, "y"), (cv.rot_z, "z")):
        np.testing.assert_allclose(fn(a), Rotation.from_euler(axis, a).as_matrix(), atol=1e-15)


def test_cardan_zxy_is_intrinsic_ZXY(rotations):
    m = rotations.as_matrix()
    alpha, beta, gamma = cv.cardan_zxy(m)
    want = rotations.as_euler("ZXY")  # scipy: upper case = intrinsic
    ok = np.abs(want[:, 1]) < np.deg2rad(89)
    np.testing.assert_allclose(np.column_stack([alpha, beta, gamma])[ok], want[ok], atol=1e-9)
    rebuilt = cv.rot_z(alpha) @ cv.rot_x(beta) @ cv.rot_y(gamma)
    np.testing.assert_allclose(rebuilt, m, atol=1e-12)


def _seg_case_matrix():
    d = np.deg2rad
    r_pelvis = cv.rot_z(d(-20))
    r_upper = r_pelvis @ cv.rot_z(d(-30)) @ cv.rot_x(d(10)) @ cv.rot_y(d(5))
    return r_pelvis.T @ r_upper


def test_metric_cases_seg_01_to_04(shared_dir):
    cases = {c["id"]: c for c in json.loads((shared_dir / "docs" / "metric_cases.json").read_text())["cases"]}
    flex, bend, axial = np.rad2deg(cv.lumbar_angles_from_matrix(_seg_case_matrix()))
    for cid, got in (("SEG-01", flex), ("SEG-02", bend), ("SEG-03", axial)):
        assert got == pytest.approx(cases[cid]["expected"], abs=cases[cid]["tolerance"]), cid
    wrong = np.rad2deg(Rotation.from_matrix(_seg_case_matrix()).as_euler("zxy")[0])
    assert wrong == pytest.approx(cases["SEG-04"]["expected"], abs=cases["SEG-04"]["tolerance"])
    assert abs(wrong - (-flex)) > 0.3  # the wrong order is detectably different


def test_lumbar_angles_without_shared():
    flex, bend, axial = np.rad2deg(cv.lumbar_angles_from_matrix(_seg_case_matrix()))
    np.testing.assert_allclose([flex, bend, axial], [30.0, 10.0, 5.0], atol=1e-9)


def test_matrix_columns_and_cardan_from_quaternion_components(rotations):
    q = cv.from_scipy(rotations)
    m = cv.quat_to_matrix(q)
    for k in range(3):
        np.testing.assert_array_equal(cv.quat_matrix_column(q, k), m[..., :, k])
    got = np.column_stack(cv.cardan_zxy_from_quat(q))
    np.testing.assert_allclose(got, np.column_stack(cv.cardan_zxy(m)), atol=1e-12)
    want = rotations.as_euler("ZXY")
    ok = np.abs(want[:, 1]) < np.deg2rad(89)
    np.testing.assert_allclose(got[ok], want[ok], atol=1e-9)
    np.testing.assert_allclose(cv.lumbar_angles_from_quat(q), cv.lumbar_angles_from_matrix(m), atol=1e-12)
    # the sign of a quaternion does not change its angles
    np.testing.assert_allclose(cv.lumbar_angles_from_quat(-q), cv.lumbar_angles_from_quat(q), atol=1e-12)
    with pytest.raises(ValueError):
        cv.quat_matrix_column(q, 3)
