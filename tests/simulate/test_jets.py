"""Building blocks: derivative propagation of rotations and points, profiles, tabulation."""
from __future__ import annotations

import numpy as np

from lumbar.simulate.jets import Jet, PointJet, RotJet
from lumbar.simulate.profiles import PulseTrain, SumOfSines, Tabulated, min_jerk


def _fd(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.gradient(x, t, axis=-1)


def _trig_jets(t: np.ndarray) -> tuple[Jet, Jet, Jet]:
    a = Jet(np.sin(t), np.cos(t), -np.sin(t))
    b = Jet(0.3 * t**2, 0.6 * t, 0.6 * np.ones_like(t))
    c = Jet(np.cos(2 * t), -2 * np.sin(2 * t), -4 * np.cos(2 * t))
    return a, b, c


def test_rotation_rates_match_finite_differences():
    t = np.linspace(0.0, 2.0, 40001)
    a, b, c = _trig_jets(t)
    r = RotJet.const(np.eye(3), len(t)).then_about("z", a).then_about("x", b).then_about("y", c)
    R = np.moveaxis(r.R, 2, 0)
    Rdot = np.moveaxis(_fd(r.R, t), 2, 0)
    W = np.swapaxes(R, 1, 2) @ Rdot  # [ω]x in the body frame
    w_fd = np.stack([W[:, 2, 1], W[:, 0, 2], W[:, 1, 0]], 0)
    assert np.abs(w_fd - r.w)[:, 2:-2].max() < 1e-6
    assert np.abs(_fd(r.w, t) - r.wd)[:, 2:-2].max() < 1e-6


def test_then_about_equals_general_composition():
    rng = np.random.default_rng(0)
    n = 100
    jet = lambda: Jet(*rng.standard_normal((3, n)))  # noqa: E731
    base = RotJet.about("z", jet()) @ RotJet.about("x", jet())
    for axis in "xyz":
        ang = jet()
        r1, r2 = base @ RotJet.about(axis, ang), base.then_about(axis, ang)
        for u, v in ((r1.R, r2.R), (r1.w, r2.w), (r1.wd, r2.wd)):
            np.testing.assert_allclose(u, v, atol=1e-14)


def test_point_acceleration_matches_finite_differences():
    t = np.linspace(0.0, 2.0, 40001)
    a, b, _ = _trig_jets(t)
    r = RotJet.const(np.eye(3), len(t)).then_about("z", a).then_about("x", b)
    p = PointJet.from_xyz(b, a, Jet.zeros(len(t))).offset(r, np.array([0.1, 0.5, -0.2]))
    assert np.abs(_fd(p.p, t) - p.v)[:, 2:-2].max() < 1e-6
    assert np.abs(_fd(p.v, t) - p.a)[:, 2:-2].max() < 1e-6


def test_profiles_derivatives_and_shape():
    t = np.linspace(0.0, 12.0, 120001)
    j = min_jerk(t - 1.0, 2.0)
    assert j.v[0] == 0.0 and j.v[-1] == 1.0
    pt = PulseTrain(np.array([1.0, 6.0]), np.array([1.0, 1.5]), np.array([1.0, 0.5]), np.array([1.0, 1.0]),
                    np.array([1.0, -2.0]), rise_window=(0.2, 1.0), fall_window=(0.0, 0.8))
    for jet in (j, pt(t)):
        assert np.abs(_fd(jet.v, t) - jet.d)[1:-1].max() < 1e-6
        assert np.abs(_fd(jet.d, t) - jet.dd)[1:-1].max() < 1e-2  # dd jumps at ramp ends (C² only)
    v = pt(t).v
    assert abs(v.max() - 1.0) < 1e-12 and abs(v.min() + 2.0) < 1e-12 and v[-1] == 0.0


def test_tabulated_sway_matches_source():
    src = SumOfSines.random(np.random.default_rng(1), rms=0.004, corner_hz=0.3)
    tab = Tabulated(src, t_end=50.0)
    t = np.random.default_rng(2).uniform(-0.5, 52.0, 20000)
    a, b = src(t), tab(t)
    assert np.abs(a.v - b.v).max() < 1e-9 * 0.004 * 10
    assert np.abs(a.d - b.d).max() < 1e-9
    assert np.abs(a.dd - b.dd).max() < 1e-6 * np.abs(a.dd).max()
    far = np.array([100.0, 200.0])  # beyond the grid: the source itself
    np.testing.assert_array_equal(tab(far).v, src(far).v)
