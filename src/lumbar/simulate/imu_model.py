"""Error model of a commodity MEMS IMU (accelerometer + gyroscope).

Applied to the exact specific force f and angular rate ω in the sensor frame, in this order::

    y = (I + S) x  +  b_const  +  b_gm(t)  +  n(t)      (x = f or ω)
    flag where any |y| ≥ range;  y = clip(y, ±range)
    y = round(y / q) · q,  q = range / 32768,  clipped to [−32768, 32767] · q   (int16)

* ``S``: scale-factor errors on the diagonal, cross-axis sensitivity off the diagonal, drawn
  once per sensor from N(0, σ²).
* ``b_const``: constant bias (gyro zero-rate offset, accelerometer zero-g offset) per axis.
* ``b_gm``: first-order Gauss–Markov bias drift (bias instability) with stationary σ and
  correlation time τ; starts from its stationary distribution.
* ``n``: white noise, per-sample σ = noise density × √(rate/2) (the output bandwidth is taken
  as the Nyquist frequency).

Timing: the device's sample k is taken at ``k/rate · (1 + drift) + jitter_k`` on the host
clock (the true instant); the device clock reports ``k/rate``.

Defaults (``commodity()`` = Bosch BMI270) come from the manufacturers' datasheets; values
marked *recalled* in ``docs/emulated-patient.md`` should be re-checked against the PDF.
"""
from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from lumbar.types import STANDARD_G

__all__ = ["ImuErrorModel", "ImuErrors", "apply_imu_errors", "sensor_rng", "sample_times"]

_DEG = np.pi / 180.0
_UG = 1e-6 * STANDARD_G  # 1 µg in m/s²
_MG = 1e-3 * STANDARD_G


@dataclass(frozen=True)
class ImuErrorModel:
    """MEMS imperfections, SI units. All standard deviations are 1σ per axis.

    Parameters
    ----------
    model : str
        Name written to ``SensorInfo.model`` (prefixed with ``"emulated "``).
    acc_range_mps2, gyro_range_rads : float
        Full-scale range (±). Defaults ±8 g and ±2000 °/s.
    acc_noise_density, gyro_noise_density : float
        White-noise density, m/s²/√Hz and rad/s/√Hz.
    acc_bias_sigma_mps2, gyro_bias_sigma_rads : float
        Constant bias drawn once per sensor (zero-g offset / zero-rate offset).
    acc_bias_instability_mps2, gyro_bias_instability_rads : float
        Stationary σ of the Gauss–Markov bias drift.
    acc_bias_tau_s, gyro_bias_tau_s : float
        Correlation time of the bias drift, s.
    acc_scale_sigma, gyro_scale_sigma : float
        Scale-factor error (fraction).
    acc_cross_axis_sigma, gyro_cross_axis_sigma : float
        Cross-axis sensitivity (fraction).
    misalignment_sigma_deg : float
        σ per axis of the random mounting misalignment (rotation vector, degrees) used when
        ``simulate(misalignment_deg=...)`` does not give one for a sensor.
    jitter_s : float
        σ of the sampling-instant jitter, s (clipped to ±0.3 sample periods).
    clock_drift_ppm : float
        The device clock's rate error is drawn uniformly in ±this, per sensor.
    saturate : bool
        Clip at the range and flag saturated samples.
    quantize : bool
        Round to int16 counts over the range.
    """

    model: str = "BMI270"
    acc_range_mps2: float = 8.0 * STANDARD_G
    gyro_range_rads: float = 2000.0 * _DEG
    acc_noise_density: float = 160.0 * _UG
    gyro_noise_density: float = 0.007 * _DEG
    acc_bias_sigma_mps2: float = 20.0 * _MG
    gyro_bias_sigma_rads: float = 0.5 * _DEG
    acc_bias_instability_mps2: float = 0.5 * _MG
    gyro_bias_instability_rads: float = 0.02 * _DEG
    acc_bias_tau_s: float = 300.0
    gyro_bias_tau_s: float = 300.0
    acc_scale_sigma: float = 0.01
    gyro_scale_sigma: float = 0.004
    acc_cross_axis_sigma: float = 0.005
    gyro_cross_axis_sigma: float = 0.005
    misalignment_sigma_deg: float = 2.0
    jitter_s: float = 20e-6
    clock_drift_ppm: float = 50.0
    saturate: bool = True
    quantize: bool = True

    @classmethod
    def bmi270(cls) -> "ImuErrorModel":
        """Bosch BMI270 (datasheet BST-BMI270-DS000): gyro 0.007 °/s/√Hz (performance mode),
        acc 160 µg/√Hz, zero-g offset ±20 mg, zero-rate offset ±0.5 °/s."""
        return cls()

    @classmethod
    def icm42688(cls) -> "ImuErrorModel":
        """TDK InvenSense ICM-42688-P (datasheet DS-000347): gyro 2.8 m°/s/√Hz, acc 70 µg/√Hz."""
        return cls(model="ICM-42688-P", acc_noise_density=70.0 * _UG, gyro_noise_density=0.0028 * _DEG)

    @classmethod
    def lsm6dso(cls) -> "ImuErrorModel":
        """ST LSM6DSO (datasheet DocID 029870): gyro 3.8 m°/s/√Hz, acc 70 µg/√Hz (high-performance mode)."""
        return cls(model="LSM6DSO", acc_noise_density=70.0 * _UG, gyro_noise_density=0.0038 * _DEG)

    @classmethod
    def commodity(cls) -> "ImuErrorModel":
        """The default commodity sensor: :meth:`bmi270`."""
        return cls.bmi270()

    @classmethod
    def ideal(cls, **overrides: Any) -> "ImuErrorModel":
        """No noise, bias, scale/cross-axis error, misalignment, jitter, drift, clipping or
        quantisation (ranges kept for the metadata). Keyword overrides switch single errors on."""
        base = cls(
            model="ideal IMU",
            acc_noise_density=0.0,
            gyro_noise_density=0.0,
            acc_bias_sigma_mps2=0.0,
            gyro_bias_sigma_rads=0.0,
            acc_bias_instability_mps2=0.0,
            gyro_bias_instability_rads=0.0,
            acc_scale_sigma=0.0,
            gyro_scale_sigma=0.0,
            acc_cross_axis_sigma=0.0,
            gyro_cross_axis_sigma=0.0,
            misalignment_sigma_deg=0.0,
            jitter_s=0.0,
            clock_drift_ppm=0.0,
            saturate=False,
            quantize=False,
        )
        return replace(base, **overrides)

    @property
    def acc_lsb_mps2(self) -> float:
        """Quantisation step of the accelerometer, m/s² (range / 32768)."""
        return self.acc_range_mps2 / 32768.0

    @property
    def gyro_lsb_rads(self) -> float:
        """Quantisation step of the gyroscope, rad/s (range / 32768)."""
        return self.gyro_range_rads / 32768.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ImuErrorModel":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# Fixed stream numbers: each error source has its own random stream, so switching one
# source on or off does not change the realisation of the others.
STREAM = {
    "timing": 1,
    "acc_const": 2,
    "gyro_const": 3,
    "acc_gm": 4,
    "gyro_gm": 5,
    "acc_noise": 6,
    "gyro_noise": 7,
    "acc_scale": 8,
    "gyro_scale": 9,
    "misalignment": 10,
}


def sensor_rng(seed: int, sensor_id: str, stream: str) -> np.random.Generator:
    """Independent generator per (seed, sensor, error source).

    Keyed by the sensor's name (CRC-32), not by its position in the request, so a sensor's
    errors do not change when other sensors are added.
    """
    key = (zlib.crc32(sensor_id.encode()), STREAM[stream])
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=key))


def sample_times(
    model: ImuErrorModel, n: int, rate_hz: float, seed: int, sensor_id: str
) -> tuple[np.ndarray, np.ndarray, float]:
    """True sampling instants and device clock of one sensor.

    Returns
    -------
    time_s : ndarray, shape (n,)
        True instants on the host (= session) clock, s: ``k/rate·(1+drift) + jitter``.
    device_time_s : ndarray, shape (n,)
        Device clock, ``k/rate``, s.
    drift : float
        Relative clock-rate error of this device (dimensionless).
    """
    rng = sensor_rng(seed, sensor_id, "timing")
    k = np.arange(n, dtype=np.float64)
    device = k / rate_hz
    drift = rng.uniform(-1.0, 1.0) * model.clock_drift_ppm * 1e-6
    jitter = np.clip(rng.standard_normal(n) * model.jitter_s, -0.3 / rate_hz, 0.3 / rate_hz)
    if n:
        jitter[0] = abs(jitter[0])  # time zero is the start of the session
    return device * (1.0 + drift) + jitter, device, float(drift)


def _gauss_markov(rng: np.random.Generator, n: int, sigma: float, tau_s: float, dt: float) -> np.ndarray:
    from scipy.signal import lfilter  # here, not at import: scipy.signal takes half a second to import

    if sigma <= 0.0 or n == 0:
        return np.zeros((n, 3))
    phi = np.exp(-dt / tau_s)
    w = rng.standard_normal((n, 3)) * sigma * np.sqrt(1.0 - phi * phi)
    w[0] = rng.standard_normal(3) * sigma  # stationary start
    return lfilter([1.0], [1.0, -phi], w, axis=0)


def _error_matrix(rng: np.random.Generator, scale_sigma: float, cross_sigma: float) -> np.ndarray:
    s = np.eye(3) + np.diag(rng.standard_normal(3) * scale_sigma)
    off = rng.standard_normal((3, 3)) * cross_sigma
    np.fill_diagonal(off, 0.0)
    return s + off


@dataclass(frozen=True)
class ImuErrors:
    """The realised errors of one sensor (stored in the truth).

    Attributes
    ----------
    acc_matrix, gyro_matrix : ndarray, shape (3, 3)
        ``I + S`` (scale and cross-axis).
    acc_bias, gyro_bias : ndarray, shape (N, 3)
        Total bias (constant + drift) at each sample, m/s² and rad/s.
    """

    acc_matrix: np.ndarray
    gyro_matrix: np.ndarray
    acc_bias: np.ndarray
    gyro_bias: np.ndarray


def apply_imu_errors(
    model: ImuErrorModel,
    acc_true: np.ndarray,
    gyro_true: np.ndarray,
    rate_hz: float,
    seed: int,
    sensor_id: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, ImuErrors]:
    """Turn exact signals into what the device reports.

    Parameters
    ----------
    acc_true : ndarray, shape (N, 3)
        Exact specific force in the sensor frame, m/s².
    gyro_true : ndarray, shape (N, 3)
        Exact angular rate in the sensor frame, rad/s.

    Returns
    -------
    acc, gyro : ndarray, shape (N, 3)
        Measured values.
    flags : ndarray, shape (N,), uint8
        ``ACC_SATURATED`` / ``GYRO_SATURATED`` bits.
    errors : ImuErrors
        The realised error terms.
    """
    from lumbar.types import SampleFlag

    n = acc_true.shape[0]
    dt = 1.0 / rate_hz
    out = {}
    errs = {}
    flags = np.zeros(n, np.uint8)
    for kind, x, rng_, flag in (
        ("acc", acc_true, model.acc_range_mps2, SampleFlag.ACC_SATURATED),
        ("gyro", gyro_true, model.gyro_range_rads, SampleFlag.GYRO_SATURATED),
    ):
        p = {
            "scale": getattr(model, f"{kind}_scale_sigma"),
            "cross": getattr(model, f"{kind}_cross_axis_sigma"),
            "const": getattr(model, f"{kind}_bias_sigma_mps2" if kind == "acc" else "gyro_bias_sigma_rads"),
            "gm": getattr(model, f"{kind}_bias_instability_mps2" if kind == "acc" else "gyro_bias_instability_rads"),
            "tau": getattr(model, f"{kind}_bias_tau_s"),
            "nd": getattr(model, f"{kind}_noise_density"),
        }
        m = _error_matrix(sensor_rng(seed, sensor_id, f"{kind}_scale"), p["scale"], p["cross"])
        bias = sensor_rng(seed, sensor_id, f"{kind}_const").standard_normal(3) * p["const"]
        bias = bias + _gauss_markov(sensor_rng(seed, sensor_id, f"{kind}_gm"), n, p["gm"], p["tau"], dt)
        y = x @ m.T + bias
        if p["nd"] > 0.0:
            y = y + sensor_rng(seed, sensor_id, f"{kind}_noise").standard_normal((n, 3)) * (
                p["nd"] * np.sqrt(rate_hz / 2.0)
            )
        if model.saturate:
            sat = np.any(np.abs(y) >= rng_, axis=1)
            flags[sat] |= np.uint8(flag)
            y = np.clip(y, -rng_, rng_)
        if model.quantize:
            q = rng_ / 32768.0
            y = np.clip(np.round(y / q), -32768.0, 32767.0) * q
        out[kind] = y
        errs[kind] = (m, np.broadcast_to(bias, (n, 3)).copy())
    return (
        out["acc"],
        out["gyro"],
        flags,
        ImuErrors(errs["acc"][0], errs["gyro"][0], errs["acc"][1], errs["gyro"][1]),
    )
