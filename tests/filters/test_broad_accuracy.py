"""Accuracy on real data with optical ground truth (BROAD trials in the shared material).

Bars from the issue: the default (causal) filter no worse than vqf's ``VQF`` (0.56° mean
inclination RMSE on the four shared trials), the offline mode no worse than ``offlineVQF``
(0.46°). Our parameters are the published defaults, not fitted to these trials.
The same metric as ``tests/benchmarks/broad_accuracy.py``.
"""
from __future__ import annotations

import numpy as np
import pytest

from lumbar.filters import estimate_orientation

h5py = pytest.importorskip("h5py")


def _trials(shared_dir):  # noqa: ANN001, ANN202
    files = sorted((shared_dir / "data" / "broad").glob("*.hdf5"))
    if not files:
        pytest.skip("no BROAD trials in the shared material")
    for f in files:
        with h5py.File(f, "r") as h:
            yield (f.stem, np.ascontiguousarray(h["imu_acc"][()]), np.ascontiguousarray(h["imu_gyr"][()]),
                   h["opt_quat"][()], h["movement"][()].astype(bool), float(h.attrs["sampling_rate"]))


def _inclination_rmse_deg(q_est, q_ref, movement):  # noqa: ANN001, ANN202
    sel = movement & np.all(np.isfinite(q_ref), axis=1)
    p, q = q_est[sel], q_ref[sel] * np.array([1.0, -1.0, -1.0, -1.0])
    w = p[:, 0] * q[:, 0] - np.sum(p[:, 1:] * q[:, 1:], axis=1)
    z = p[:, 0] * q[:, 3] + q[:, 0] * p[:, 3] + p[:, 1] * q[:, 2] - p[:, 2] * q[:, 1]
    incl = 2.0 * np.arccos(np.clip(np.sqrt(w * w + z * z), 0.0, 1.0))
    return float(np.degrees(np.sqrt(np.mean(incl**2))))


@pytest.mark.parametrize(("method", "bar_deg"), [("default", 0.57), ("offline", 0.47)])
def test_broad_mean_inclination_rmse(shared_dir, method, bar_deg) -> None:  # noqa: ANN001
    errors = {}
    for name, acc, gyr, ref, movement, rate in _trials(shared_dir):
        quat, _ = estimate_orientation(acc, gyr, rate, method=method)
        errors[name] = _inclination_rmse_deg(quat, ref, movement)
    mean = float(np.mean(list(errors.values())))
    assert mean < bar_deg, f"mean inclination RMSE {mean:.3f}° ≥ {bar_deg}° ({errors})"


def test_broad_no_worse_than_vqf(shared_dir) -> None:  # noqa: ANN001
    vqf = pytest.importorskip("vqf")
    ours, theirs = [], []
    for _, acc, gyr, ref, movement, rate in _trials(shared_dir):
        ours.append(_inclination_rmse_deg(estimate_orientation(acc, gyr, rate)[0], ref, movement))
        theirs.append(_inclination_rmse_deg(vqf.VQF(1.0 / rate).updateBatch(gyr, acc)["quat6D"], ref, movement))
    assert np.mean(ours) <= np.mean(theirs) + 1e-6
