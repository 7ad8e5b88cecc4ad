"""Orientation accuracy on BROAD: our filters and peers side by side; writes docs/accuracy.md.

Usage::

    python tests/benchmarks/broad_accuracy.py [--data DIR] [--out docs/accuracy.md]

``DIR`` holds BROAD trials (``*.hdf5``); by default ``../shared/data/broad`` beside the
repository. Peers (``vqf``, ``imufusion``, ``ahrs``: the ``bench`` extra) run at their
documented defaults; a missing peer is reported as such. Our filters run at their
documented defaults (``docs/filters.md``): nothing here is tuned to these trials.

Metric (Laidig et al., BROAD, 2021): error quaternion in the earth frame
``q_e = q_est ⊗ q_ref*``, split into a rotation about the vertical (heading) and the rest
(inclination); RMSE over the ``movement`` mask, rows with a NaN reference skipped. Without a
magnetometer heading is unobservable, so the heading error is reported after removing its
mean (circular) offset: what remains is drift.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata as md
import math
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "broad"
DEFAULT_OUT = REPO_ROOT / "docs" / "accuracy.md"


def load_trial(path: Path) -> dict:
    """One BROAD trial: acc (N,3) m/s², gyr (N,3) rad/s, quat (N,4) ref, movement (N,), rate_hz."""
    import h5py

    with h5py.File(path, "r") as f:
        return {
            "acc": np.ascontiguousarray(f["imu_acc"][()], dtype=np.float64),
            "gyr": np.ascontiguousarray(f["imu_gyr"][()], dtype=np.float64),
            "quat": np.asarray(f["opt_quat"][()], dtype=np.float64),
            "movement": np.asarray(f["movement"][()], dtype=bool),
            "rate_hz": float(f.attrs["sampling_rate"]),
        }


def _qmul(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = p.T
    w2, x2, y2, z2 = q.T
    return np.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        axis=1,
    )


def error_angles(q_est: np.ndarray, q_ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Heading and inclination error (rad) of q_est against q_ref, both (N, 4) (w, x, y, z).

    ``q_e = q_est ⊗ q_ref*`` = (rotation about earth z) ⊗ (rotation about a horizontal axis).
    """
    e = _qmul(q_est, q_ref * np.array([1.0, -1.0, -1.0, -1.0]))
    w, x, y, z = e.T
    heading = 2.0 * np.arctan2(z, w)
    heading = np.angle(np.exp(1j * heading))  # wrap to (−π, π]
    inclination = 2.0 * np.arccos(np.clip(np.sqrt(w * w + z * z), 0.0, 1.0))
    return heading, inclination


def trial_errors(q_est: np.ndarray, trial: dict) -> tuple[float, float]:
    """(inclination RMSE, heading RMSE after offset removal), degrees, over movement rows."""
    sel = trial["movement"] & np.all(np.isfinite(trial["quat"]), axis=1)
    heading, incl = error_angles(q_est[sel], trial["quat"][sel])
    offset = np.angle(np.mean(np.exp(1j * heading)))
    heading = np.angle(np.exp(1j * (heading - offset)))
    return math.degrees(float(np.sqrt(np.mean(incl**2)))), math.degrees(float(np.sqrt(np.mean(heading**2))))


# ------------------------------------------------------------------------- our filters


def ours() -> dict[str, Callable[[dict], np.ndarray]]:
    from lumbar.filters import MadgwickParams, estimate_orientation

    def run(method: str, params=None):  # noqa: ANN001, ANN202
        return lambda t: estimate_orientation(t["acc"], t["gyr"], t["rate_hz"], method=method, params=params)[0]

    return {
        "lumbar default (VQF-class, causal)": run("default"),
        "lumbar offline (non-causal)": run("offline"),
        "lumbar madgwick (β 0.033)": run("madgwick"),
        "lumbar madgwick (β 0.033, integrate first)": run("madgwick", MadgwickParams(integrate_first=True)),
        "lumbar mahony (kP 1, kI 0.3)": run("mahony"),
    }


# ------------------------------------------------------------------------------- peers


def peers() -> tuple[dict[str, Callable[[dict], np.ndarray]], list[str]]:
    runners: dict[str, Callable[[dict], np.ndarray]] = {}
    missing = []
    try:
        import vqf

        runners["vqf VQF"] = lambda t: vqf.VQF(1.0 / t["rate_hz"]).updateBatch(t["gyr"], t["acc"])["quat6D"]
        runners["vqf offlineVQF"] = lambda t: vqf.offlineVQF(t["gyr"], t["acc"], None, 1.0 / t["rate_hz"])["quat6D"]
        runners["vqf BasicVQF"] = lambda t: vqf.BasicVQF(1.0 / t["rate_hz"]).updateBatch(t["gyr"], t["acc"])["quat6D"]
    except ImportError:
        missing.append("vqf")
    try:
        import imufusion

        def fusion(t: dict) -> np.ndarray:
            ahrs = imufusion.Ahrs()
            settings = imufusion.AhrsSettings()  # documented defaults (gain 0.5, no rejection)
            settings.sample_rate = t["rate_hz"]
            ahrs.set_settings(settings)
            ahrs.set_sample_period(1.0 / t["rate_hz"])
            gyr_deg = np.degrees(t["gyr"])
            acc_g = t["acc"] / 9.80665
            out = np.empty((len(gyr_deg), 4))
            for i in range(len(gyr_deg)):
                ahrs.update_no_magnetometer(gyr_deg[i], acc_g[i])
                out[i] = ahrs.get_quaternion()
            return out

        runners["imufusion Ahrs"] = fusion
    except ImportError:
        missing.append("imufusion")
    try:
        from ahrs.filters import Madgwick, Mahony

        runners["ahrs Madgwick"] = lambda t: Madgwick(gyr=t["gyr"], acc=t["acc"], frequency=t["rate_hz"]).Q
        runners["ahrs Mahony"] = lambda t: Mahony(gyr=t["gyr"], acc=t["acc"], frequency=t["rate_hz"]).Q
    except ImportError:
        missing.append("ahrs")
    return runners, missing


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "not installed"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    files = sorted(args.data.glob("*.hdf5"))
    if not files:
        print(f"no BROAD trials (*.hdf5) in {args.data}", file=sys.stderr)
        return 1
    runners = ours()
    peer_runners, missing = peers()
    runners.update(peer_runners)
    names = [f.stem for f in files]
    incl = {k: [] for k in runners}
    head = {k: [] for k in runners}
    for f in files:
        trial = load_trial(f)
        for k, run in runners.items():
            t0 = time.perf_counter()
            q = np.asarray(run(trial), dtype=np.float64)
            i, h = trial_errors(q, trial)
            incl[k].append(i)
            head[k].append(h)
            print(f"{f.stem:48s} {k:44s} incl {i:6.3f}°  heading {h:7.2f}°  ({time.perf_counter() - t0:.1f} s)")

    lines = [
        "# Orientation accuracy on BROAD",
        "",
        "Generated by `tests/benchmarks/broad_accuracy.py` (do not edit by hand) on "
        f"{_dt.date.today().isoformat()}.",
        "",
        "Data: BROAD (Laidig, Caruso, Cereatti, Seel, *Data* 6(7):72, 2021, CC BY 4.0): the trials "
        + ", ".join(f"`{n}`" for n in names)
        + ". 6D estimation (gyroscope + accelerometer, no magnetometer).",
        "",
        "Metric: error quaternion `q_est ⊗ q_ref*` in the earth frame, split into heading (about the vertical)",
        "and inclination; RMSE over the `movement` mask, rows with a NaN reference skipped. Heading is not",
        "observable in 6D, so the heading column is the RMSE after removing the mean heading offset (drift).",
        "",
        "All filters run at their documented defaults; ours are not tuned to these trials (`docs/filters.md`).",
        f"Versions: vqf {_version('vqf')}, imufusion {_version('imufusion')}, ahrs {_version('ahrs')}"
        + (f"; missing: {', '.join(missing)}" if missing else "")
        + ".",
        "",
        "## Inclination RMSE (°)",
        "",
        "| filter | " + " | ".join(n.split("_")[0] for n in names) + " | mean |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for k in runners:
        lines.append(f"| {k} | " + " | ".join(f"{v:.2f}" for v in incl[k]) + f" | **{np.mean(incl[k]):.2f}** |")
    lines += [
        "",
        "## Heading RMSE after removing a constant offset (°)",
        "",
        "| filter | " + " | ".join(n.split("_")[0] for n in names) + " | mean |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for k in runners:
        lines.append(f"| {k} | " + " | ".join(f"{v:.2f}" for v in head[k]) + f" | {np.mean(head[k]):.2f} |")
    lines += [
        "",
        "Trials: " + "; ".join(f"{n.split('_')[0]} = `{n}`" for n in names) + ".",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"\nwrote {args.out.relative_to(REPO_ROOT) if args.out.is_relative_to(REPO_ROOT) else args.out}")
    for k in runners:
        print(f"{k:44s} mean inclination RMSE {np.mean(incl[k]):.3f}°")
    return 0


if __name__ == "__main__":
    sys.exit(main())
