"""Tests of the SOS IIR kernels and their object API (lumbar.filters.iir)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from lumbar.errors import ValidationError
from lumbar.filters import SOSFilter, derivative, derivative_step, resample

RATE_HZ = 200.0
N = 2000


def _signal(n: int = N, n_ch: int = 6, seed: int = 0) -> np.ndarray:
    """Slow movement + offset + fast noise per channel, (n, n_ch), C-contiguous."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / RATE_HZ
    x = 9.81 * (np.arange(n_ch) == 2) + np.sin(2 * np.pi * 0.7 * t[:, None] + np.arange(n_ch))
    return np.ascontiguousarray(x + 0.2 * rng.standard_normal((n, n_ch)))


X = _signal()

DESIGNS = [
    pytest.param(("lowpass", 4, 10.0), id="lowpass4"),
    pytest.param(("lowpass", 3, 25.0), id="lowpass3-odd"),
    pytest.param(("highpass", 2, 0.5), id="highpass2"),
    pytest.param(("bandpass", 3, (0.5, 20.0)), id="bandpass3"),
]


def _filter(design, **kw) -> SOSFilter:  # noqa: ANN001
    kind, order, fc = design
    return SOSFilter(kind, order, fc, RATE_HZ, **kw)


# ------------------------------------------------------------------- agreement with scipy


@pytest.mark.parametrize("design", DESIGNS)
def test_design_is_scipy_butter(design) -> None:  # noqa: ANN001
    kind, order, fc = design
    np.testing.assert_array_equal(_filter(design).sos, signal.butter(order, fc, btype=kind, fs=RATE_HZ, output="sos"))


@pytest.mark.parametrize("n_ch", [1, 2, 3, 5, 6, 9])
@pytest.mark.parametrize("design", DESIGNS)
def test_kernel_equals_sosfilt_with_same_zi(design, n_ch) -> None:  # noqa: ANN001
    """Every channel grouping of the kernel (4, 2, 1 side by side) matches scipy bit for bit."""
    from lumbar.filters import _iir_numba as k

    x = np.ascontiguousarray(X[:, :n_ch] if n_ch <= 6 else np.tile(X, 2)[:, :n_ch])
    sos = _filter(design).sos
    zi = np.random.default_rng(n_ch).standard_normal((sos.shape[0], 2, n_ch))
    ref, zf = signal.sosfilt(sos, x, axis=0, zi=zi)
    for run in (k.sos_run, "step", "backward"):
        state, out = zi.copy(), np.empty_like(x)
        if run == "step":
            for i in range(x.shape[0]):
                k.sos_step(x[i], sos, state, out[i])
        elif run == "backward":
            k.sos_run_backward(np.ascontiguousarray(x[::-1]), sos, state, out)
            out = out[::-1]
        else:
            run(x, sos, state, out)
        np.testing.assert_array_equal(out, ref)
        np.testing.assert_array_equal(state, zf)


@pytest.mark.parametrize("design", DESIGNS)
def test_process_zero_start_equals_sosfilt(design) -> None:  # noqa: ANN001
    f = _filter(design, n_channels=6, initial="zero")
    np.testing.assert_array_equal(f.process(X), signal.sosfilt(f.sos, X, axis=0))


@pytest.mark.parametrize("design", DESIGNS)
def test_filtfilt_equals_sosfiltfilt(design) -> None:  # noqa: ANN001
    f = _filter(design)
    # scipy's default padding, an explicit one, none, and ours (passed to scipy explicitly)
    n_taps = 2 * f.sos.shape[0] + 1 - min((f.sos[:, 2] == 0).sum(), (f.sos[:, 5] == 0).sum())
    for padlen in (3 * n_taps, 100, 0, f.default_padlen(N)):
        ref = signal.sosfiltfilt(f.sos, X, axis=0, padtype="odd", padlen=padlen)
        np.testing.assert_allclose(f.filtfilt(X, padlen=padlen), ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(
        f.filtfilt(X), signal.sosfiltfilt(f.sos, X, axis=0, padlen=f.default_padlen(N)), rtol=0, atol=1e-10
    )
    # 1-D in, 1-D out; any channel count; the streaming state is not touched
    np.testing.assert_allclose(f.filtfilt(X[:, 3]), signal.sosfiltfilt(f.sos, X[:, 3], padlen=f.default_padlen(N)),
                               rtol=0, atol=1e-10)
    assert f.filtfilt(X).shape == X.shape and not f.initialised


def test_default_padlen_matches_metrics_choice() -> None:
    """Three periods of the lowest cut-off, never below scipy's default, capped at N − 1."""
    f = SOSFilter("lowpass", 4, 6.0, RATE_HZ)
    assert f.default_padlen(N) == 100  # ceil(3 · 200 / 6)
    assert SOSFilter("lowpass", 4, 90.0, RATE_HZ).default_padlen(N) == 15  # scipy's 3 · (2 · 2 + 1)
    assert SOSFilter("highpass", 2, 0.1, RATE_HZ).default_padlen(500) == 499


def test_filtfilt_zero_phase_and_shorter_padding_transient() -> None:
    """A sine well inside the pass band comes out without delay; longer padding = smaller edge error."""
    t = np.arange(N) / RATE_HZ
    x = 3.0 + np.sin(2 * np.pi * 1.0 * t)
    f = SOSFilter("lowpass", 4, 3.0, RATE_HZ)
    y = f.filtfilt(x)
    mid = slice(400, -400)
    assert np.max(np.abs(y[mid] - x[mid])) < 2e-3
    n_taps = 2 * f.sos.shape[0] + 1
    short = f.filtfilt(x, padlen=3 * n_taps)
    assert np.max(np.abs(y[:50] - x[:50])) < np.max(np.abs(short[:50] - x[:50]))


# ------------------------------------------------------------------- state


@pytest.mark.parametrize("design", DESIGNS)
@settings(max_examples=20, deadline=None)
@given(splits=st.lists(st.integers(min_value=0, max_value=N), max_size=8))
def test_chunk_invariance(design, splits) -> None:  # noqa: ANN001
    """Random chunkings with carried state equal the one-pass result (to 1e-12; in fact exactly)."""
    whole = _filter(design, n_channels=6).process(X)
    f = _filter(design, n_channels=6)
    edges = [0, *sorted(splits), N]
    chunked = np.concatenate([f.process(X[a:b]) for a, b in zip(edges[:-1], edges[1:])])
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-12)


@pytest.mark.parametrize("initial", ["steady", "zero"])
def test_state_save_restore_and_reset(initial) -> None:  # noqa: ANN001
    a = SOSFilter("bandpass", 2, (0.5, 20.0), RATE_HZ, n_channels=6, initial=initial)
    first = a.process(X[:700])
    saved = a.state
    rest_a = a.process(X[700:])
    b = SOSFilter("bandpass", 2, (0.5, 20.0), RATE_HZ, n_channels=6, initial=initial)
    b.state = saved
    np.testing.assert_array_equal(b.process(X[700:]), rest_a)
    # the state is scipy's zi layout: continuing with scipy gives the same numbers
    np.testing.assert_array_equal(signal.sosfilt(a.sos, X[700:], axis=0, zi=saved)[0], rest_a)
    a.reset()
    assert not a.initialised
    np.testing.assert_array_equal(a.process(X[:700]), first)
    saved[0, 0, 0] += 1.0
    assert a.state[0, 0, 0] != saved[0, 0, 0]  # the property is a copy
    with pytest.raises(ValidationError, match=r"state of this SOSFilter must have shape \(2, 2, 6\)"):
        a.state = np.zeros((2, 2, 3))


def test_steady_state_start_has_no_transient() -> None:
    """A constant input (gravity) comes out unchanged from the first sample; zero start ramps."""
    x = np.tile([0.3, -0.2, 9.81], (400, 1))
    steady = SOSFilter("lowpass", 4, 5.0, RATE_HZ, n_channels=3).process(x)
    np.testing.assert_allclose(steady, x, rtol=0, atol=1e-12)
    zero = SOSFilter("lowpass", 4, 5.0, RATE_HZ, n_channels=3, initial="zero").process(x)
    assert abs(zero[0, 2]) < 0.01 and np.max(np.abs(zero[:, 2] - 9.81)) > 5.0
    hp = SOSFilter("highpass", 2, 0.5, RATE_HZ, n_channels=3).process(x)
    np.testing.assert_allclose(hp, 0.0, rtol=0, atol=1e-10)  # rounding of sosfilt_zi, relative to 9.81
    # equals scipy's recipe: sosfilt_zi scaled by the first sample
    f = SOSFilter("bandpass", 2, (0.5, 20.0), RATE_HZ, n_channels=6)
    zi = signal.sosfilt_zi(f.sos)[:, :, None] * X[0][None, None, :]
    np.testing.assert_array_equal(f.process(X), signal.sosfilt(f.sos, X, axis=0, zi=zi)[0])


def test_nan_propagates_until_reset() -> None:
    x = X[:, :2].copy()
    x[100, 0] = np.nan
    f = SOSFilter("lowpass", 2, 10.0, RATE_HZ, n_channels=2)
    y = f.process(x)
    assert np.all(np.isfinite(y[:100])) and np.all(np.isnan(y[100:, 0])) and np.all(np.isfinite(y[:, 1]))
    assert np.all(np.isnan(f.process(x[200:210])[:, 0]))
    f.reset()
    assert np.all(np.isfinite(f.process(x[200:210])))
    assert np.all(np.isnan(f.filtfilt(x)[:, 0]))


def test_one_dimensional_and_empty_chunks() -> None:
    f = SOSFilter("lowpass", 4, 10.0, RATE_HZ)
    y = f.process(X[:, 0])
    assert y.shape == (N,)
    assert f.process(np.empty(0)).shape == (0,)
    g = SOSFilter("lowpass", 4, 10.0, RATE_HZ)
    g.process(np.empty(0))
    assert not g.initialised  # an empty chunk does not prime the steady start
    np.testing.assert_array_equal(g.process(X[:, 0]), y)


# ------------------------------------------------------------------- derivatives, resampling


def test_derivative_is_np_gradient() -> None:
    np.testing.assert_array_equal(derivative(X, RATE_HZ), np.gradient(X, 1.0 / RATE_HZ, axis=0))
    t = np.arange(N) / RATE_HZ
    d = derivative(np.sin(t), RATE_HZ)
    assert d.shape == (N,)
    np.testing.assert_allclose(d[1:-1], np.cos(t[1:-1]), atol=1e-5)


def test_derivative_step_is_causal_and_chunk_invariant() -> None:
    whole, last = derivative_step(X, RATE_HZ)
    np.testing.assert_array_equal(whole[1:], np.diff(X, axis=0) * RATE_HZ)
    np.testing.assert_array_equal(whole[0], 0.0)
    np.testing.assert_array_equal(last, X[-1])
    prev, parts = None, []
    for a, b in ((0, 0), (0, 1), (1, 500), (500, 500), (500, N)):
        d, prev = derivative_step(X[a:b], RATE_HZ, prev)
        parts.append(d)
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_resample() -> None:
    t = np.arange(N) / RATE_HZ
    slow = np.sin(2 * np.pi * 0.5 * t)
    # upsampling: linear interpolation only, exact at the original samples
    t_up, x_up = resample(slow, t, 2 * RATE_HZ)
    assert t_up.shape == (2 * N - 1,) and t_up[-1] == pytest.approx(t[-1])
    np.testing.assert_allclose(x_up[::2], slow, atol=1e-12)
    # downsampling: a 45 Hz tone would alias to 5 Hz at 50 Hz; the anti-alias filter removes it
    x = np.stack([slow, slow + np.sin(2 * np.pi * 45.0 * t)], axis=1)
    t_dn, x_dn = resample(x, t, 50.0)
    assert x_dn.shape == (len(t_dn), 2) and np.allclose(np.diff(t_dn), 0.02)
    mid = slice(50, -50)
    assert np.max(np.abs(x_dn[mid, 1] - x_dn[mid, 0])) < 1e-3
    _, aliased = resample(x, t, 50.0, antialias=False)
    assert np.max(np.abs(aliased[mid, 1] - aliased[mid, 0])) > 0.5


# ------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("lowpass", 4, 100.0, 200.0), {}, r"cutoff_hz must be above 0 and below the Nyquist frequency, 100 Hz"),
        (("lowpass", 4, 0.0, 200.0), {}, "cutoff_hz must be above 0"),
        (("lowpass", 4, "fast", 200.0), {}, "cutoff_hz of a lowpass must be one number"),
        (("bandpass", 2, (20.0, 5.0), 200.0), {}, "0 < low < high < 100 Hz"),
        (("bandpass", 2, 5.0, 200.0), {}, r"pair \(low_hz, high_hz\)"),
        (("lowpass", 0, 10.0, 200.0), {}, r"order must be an integer ≥ 1; got 0"),
        (("lowpass", 2.5, 10.0, 200.0), {}, "order must be an integer"),
        (("lowpass", True, 10.0, 200.0), {}, "order must be an integer"),
        (("notch", 2, 10.0, 200.0), {}, "kind must be one of 'lowpass', 'highpass', 'bandpass'; got 'notch'"),
        (("lowpass", 2, 10.0, 0.0), {}, "rate_hz"),
        (("lowpass", 2, 10.0, 200.0), {"initial": "ramp"}, "initial must be one of 'steady', 'zero'"),
        (("lowpass", 2, 10.0, 200.0), {"n_channels": 0}, "n_channels must be an integer ≥ 1; got 0"),
    ],
)
def test_construction_validation(args, kwargs, match) -> None:  # noqa: ANN001
    with pytest.raises(ValidationError, match=match):
        SOSFilter(*args, **kwargs)


def test_input_validation() -> None:
    f = SOSFilter("lowpass", 2, 10.0, RATE_HZ, n_channels=3)
    with pytest.raises(ValidationError, match=r"must have 3 channel\(s\).*got shape \(10, 2\)"):
        f.process(np.zeros((10, 2)))
    with pytest.raises(ValidationError, match=r"shape \(N,\) or \(N, C\)"):
        f.process(np.zeros((2, 3, 4)))
    with pytest.raises(ValidationError, match="numeric array"):
        f.process([["a", "b", "c"]])
    with pytest.raises(ValidationError, match="padlen must be an integer with 0 ≤ padlen < N = 10"):
        f.filtfilt(np.zeros((10, 3)), padlen=10)
    with pytest.raises(ValidationError, match="at least 2 samples"):
        derivative(np.zeros(1), RATE_HZ)
    with pytest.raises(ValidationError, match=r"previous must have shape \(3,\)"):
        derivative_step(np.zeros((4, 3)), RATE_HZ, previous=np.zeros(2))
    with pytest.raises(ValidationError, match="strictly increasing"):
        resample(np.zeros(4), np.array([0.0, 1.0, 1.0, 2.0]), 10.0)
    with pytest.raises(ValidationError, match=r"t_s must have shape \(4,\)"):
        resample(np.zeros(4), np.zeros(3), 10.0)
    with pytest.raises(ValidationError, match="new_rate_hz"):
        resample(np.zeros(4), np.arange(4.0), -1.0)


def test_import_does_not_load_numba_or_scipy_signal() -> None:
    code = (
        "import sys, lumbar.filters; from lumbar.filters import iir; "
        "print('numba' in sys.modules, 'scipy.signal' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
