"""The live plots' drawing helpers: peak decimation against a slow reference, and stable bins."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyqtgraph")

from lumbar_gui.widgets import ScrollBuffer, peak_decimate  # noqa: E402


def _reference(t, x, k, first):
    """Plain loop: the partial left bin as samples, then (min, max) per full bin, then the tail."""
    ts, ys = [], []
    i = 0
    while (first + i) % k and i < len(t):
        ts.append(t[i]), ys.append(x[i])
        i += 1
    while i + k <= len(t):
        b = x[i:i + k]
        ts += [t[i], t[i]]
        ys += [b.min(axis=0), b.max(axis=0)]
        i += k
    ts += list(t[i:])
    ys += list(x[i:])
    return np.array(ts), np.array(ys)


@pytest.mark.parametrize("k, first, m", [(1, 0, 50), (4, 0, 100), (7, 3, 2000), (7, 5, 1003), (10, 9, 35)])
def test_peak_decimate_equals_reference(k, first, m):
    rng = np.random.default_rng(k * 100 + first)
    t = np.arange(m) / 200.0
    x = rng.normal(size=(m, 3))
    t_out, y_out = np.zeros(2 * m + 2), np.zeros((2 * m + 2, 3))
    n = peak_decimate(t, x, k, first, t_out, y_out)
    rt, ry = _reference(t, x, k, first) if k > 1 and m >= 2 * k else (t, x)
    np.testing.assert_array_equal(t_out[:n], rt)
    np.testing.assert_array_equal(y_out[:n], ry)


def test_bins_do_not_change_as_the_window_scrolls():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 1))
    t = np.arange(3000) / 200.0
    k = 6
    out = []
    for start in (100, 101, 105):  # the window moves by a few samples
        tt, xx = t[start:start + 2000], x[start:start + 2000]
        t_out, y_out = np.zeros(4002), np.zeros((4002, 1))
        n = peak_decimate(tt, xx, k, start, t_out, y_out)
        bins: dict[float, list[float]] = {}
        for tk, yk in zip(t_out[:n].round(6), y_out[:n, 0]):
            bins.setdefault(float(tk), []).append(float(yk))
        out.append({tk: v for tk, v in bins.items() if len(v) == 2})  # the full bins: (min, max)
    common = set(out[0]) & set(out[1]) & set(out[2])
    assert len(common) > 300
    for key in common:
        assert out[0][key] == out[1][key] == out[2][key]


def test_scroll_buffer_counts_every_sample():
    b = ScrollBuffer(10, 1)
    b.extend(np.arange(4.0), np.zeros((4, 1)))
    b.extend(np.arange(4.0, 30.0), np.zeros((26, 1)))
    t, _ = b.view()
    assert b.total == 30 and b.count == 10 and t[0] == 20.0 and t[-1] == 29.0
