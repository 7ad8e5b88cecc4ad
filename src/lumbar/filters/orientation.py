"""6D orientation filters (gyroscope + accelerometer): object API and one-call function.

Three layers, as everywhere in :mod:`lumbar.filters`:

* **parameters** — frozen dataclasses in SI units with documented defaults
  (:class:`MadgwickParams`, :class:`MahonyParams`, :class:`VQFParams`);
* **coefficients** — a float64 vector derived once from parameters and sampling rate;
* **state** — a float64 vector, readable and assignable (``filt.state``), reset by
  :meth:`~OrientationFilter.reset`; processing a recording in chunks gives the same result
  as in one pass.

The numba kernels (:mod:`lumbar.filters._orientation_numba`) are imported on first use, so
importing this module is cheap.

Conventions (``docs/conventions.md``): quaternions (w, x, y, z) rotating sensor-frame
vectors into an earth frame with z up; acc in m/s², gyr in rad/s. Without a magnetometer
the heading (rotation about earth z) is arbitrary and drifts; inclination is observable.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from lumbar.errors import ValidationError
from lumbar.filters import _checks

__all__ = [
    "MadgwickParams",
    "MahonyParams",
    "VQFParams",
    "OrientationDiagnostics",
    "OrientationFilter",
    "MadgwickFilter",
    "MahonyFilter",
    "VQFFilter",
    "estimate_orientation",
    "METHODS",
]

#: Methods accepted by :func:`estimate_orientation`. "default" is the most accurate causal filter.
METHODS = ("default", "vqf", "madgwick", "mahony", "offline")

_K = None  # the kernel module, once imported


def _kernels():  # noqa: ANN202
    global _K
    if _K is None:
        from lumbar.filters import _orientation_numba

        _K = _orientation_numba
    return _K


# --------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MadgwickParams:
    """Parameters of the Madgwick gradient-descent filter (IMU variant).

    Parameters
    ----------
    beta_rad_s : float
        Gain β (rad/s): the rate at which the accelerometer pulls the estimate. Default 0.033,
        the value of Madgwick's report for the IMU filter (and of ``ahrs``).
    acc_rejection_m_s2 : float
        Accelerometer samples whose norm differs from ``gravity_m_s2`` by more than this are
        not used for correction (flagged in the diagnostics). Default ``inf`` (off), as published.
    gravity_m_s2 : float
        Gravity used by the rejection test, m/s².
    integrate_first : bool
        False (default, as published and as in ``ahrs``): the accelerometer sample is compared
        with the previous orientation, and the gyro and correction terms are integrated
        together. True: integrate the gyro first, then take the gradient step at the
        predicted orientation (less lag: see ``docs/filters.md``).
    """

    beta_rad_s: float = 0.033
    acc_rejection_m_s2: float = math.inf
    gravity_m_s2: float = 9.80665
    integrate_first: bool = False


@dataclass(frozen=True)
class MahonyParams:
    """Parameters of Mahony's explicit complementary filter.

    Parameters
    ----------
    kp_rad_s : float
        Proportional gain (rad/s). Default 1.0 (as in ``ahrs``).
    ki_rad_s2 : float
        Integral gain (rad/s²) of the gyro-bias estimate. Default 0.3 (as in ``ahrs``).
    acc_rejection_m_s2 : float
        As in :class:`MadgwickParams`. Default ``inf`` (off).
    gravity_m_s2 : float
        Gravity used by the rejection test, m/s².
    """

    kp_rad_s: float = 1.0
    ki_rad_s2: float = 0.3
    acc_rejection_m_s2: float = math.inf
    gravity_m_s2: float = 9.80665


@dataclass(frozen=True)
class VQFParams:
    """Parameters of the VQF-class filter (defaults of Laidig & Seel 2023, in SI units).

    Parameters
    ----------
    tau_acc_s : float
        Time constant (s) of the accelerometer low-pass in the almost-inertial frame, and so
        of the inclination correction. Default 3.0.
    motion_bias_estimation : bool
        Estimate the gyro bias during motion (from the inclination correction). Default True.
    rest_bias_estimation : bool
        Detect rest and estimate the gyro bias from the resting gyro. Default True.
    bias_sigma_init_rad_s : float
        Standard deviation of the initial bias estimate, rad/s. Default 0.5 °/s.
    bias_forgetting_time_s : float
        Time (s) in which the bias uncertainty grows by 0.1 °/s without measurements. Default 100.
    bias_clip_rad_s : float
        Largest bias estimate and largest single bias error used, rad/s. Default 2 °/s.
    bias_sigma_motion_rad_s : float
        Standard deviation of the motion bias measurement, rad/s. Default 0.1 °/s.
    bias_vertical_forgetting_factor : float
        Weight of the (unobservable) vertical motion update relative to the horizontal ones.
        Default 1e-4.
    bias_sigma_rest_rad_s : float
        Standard deviation of the rest bias measurement, rad/s. Default 0.03 °/s.
    rest_min_time_s : float
        Rest is declared after this long (s) below both thresholds. Default 1.5.
    rest_filter_tau_s : float
        Time constant (s) of the low-pass used by rest detection. Default 0.5.
    rest_threshold_gyr_rad_s : float
        Gyro deviation threshold of rest detection, rad/s. Default 2 °/s.
    rest_threshold_acc_m_s2 : float
        Accelerometer deviation threshold of rest detection, m/s². Default 0.5.
    """

    tau_acc_s: float = 3.0
    motion_bias_estimation: bool = True
    rest_bias_estimation: bool = True
    bias_sigma_init_rad_s: float = math.radians(0.5)
    bias_forgetting_time_s: float = 100.0
    bias_clip_rad_s: float = math.radians(2.0)
    bias_sigma_motion_rad_s: float = math.radians(0.1)
    bias_vertical_forgetting_factor: float = 1e-4
    bias_sigma_rest_rad_s: float = math.radians(0.03)
    rest_min_time_s: float = 1.5
    rest_filter_tau_s: float = 0.5
    rest_threshold_gyr_rad_s: float = math.radians(2.0)
    rest_threshold_acc_m_s2: float = 0.5


# --------------------------------------------------------------------------------------
# diagnostics
# --------------------------------------------------------------------------------------


@dataclass
class OrientationDiagnostics:
    """Per-sample diagnostics of an orientation filter (outputs, not hidden state).

    Attributes
    ----------
    method : str
        The filter that produced them.
    bias_rad_s : ndarray, shape (N, 3), rad/s
        Gyro bias estimate after each sample (zeros for filters that do not estimate it).
    rest : ndarray of bool, shape (N,), or None
        Rest detected (VQF-class and offline filters).
    bias_sigma_rad_s : ndarray, shape (N,), rad/s, or None
        Upper bound of the standard deviation of the bias estimate (VQF-class, offline).
    acc_rejected : ndarray of bool, shape (N,), or None
        Accelerometer sample not used for correction (Madgwick, Mahony: zero samples and,
        if enabled, samples failing the magnitude test).
    """

    method: str
    bias_rad_s: np.ndarray
    rest: np.ndarray | None = None
    bias_sigma_rad_s: np.ndarray | None = None
    acc_rejected: np.ndarray | None = None


# --------------------------------------------------------------------------------------
# coefficient builders
# --------------------------------------------------------------------------------------


def _lowpass_coeffs(tau_s: float, dt_s: float) -> tuple[float, float, float, float, float]:
    """(b0, b1, b2, a1, a2) of the 2nd-order Butterworth low-pass with time constant tau.

    The cut-off is fc = √2 / (2π τ) (Laidig & Seel 2023); discretised with the bilinear
    transform. For τ < dt/2 (cut-off above ~90 % of Nyquist) the filter passes through.
    """
    if tau_s < dt_s / 2.0:
        return 1.0, 0.0, 0.0, 0.0, 0.0
    fc = math.sqrt(2.0) / (2.0 * math.pi * tau_s)
    c = math.tan(math.pi * fc * dt_s)
    d = c * c + math.sqrt(2.0) * c + 1.0
    b0 = c * c / d
    return b0, 2.0 * b0, b0, 2.0 * (c * c - 1.0) / d, (1.0 - math.sqrt(2.0) * c + c * c) / d


def _madgwick_coeffs(p: MadgwickParams, dt: float) -> np.ndarray:
    k = _kernels()
    c = np.zeros(k.MADGWICK_N_COEFFS)
    c[k.C_MW_BETA] = _checks.check_positive("beta_rad_s", p.beta_rad_s, allow_zero=True)
    c[k.C_MW_DT] = dt
    c[k.C_MW_ACC_REJ] = _checks.check_positive("acc_rejection_m_s2", p.acc_rejection_m_s2, allow_inf=True)
    c[k.C_MW_G] = _checks.check_positive("gravity_m_s2", p.gravity_m_s2)
    c[k.C_MW_INTEGRATE_FIRST] = 1.0 if p.integrate_first else 0.0
    return c


def _mahony_coeffs(p: MahonyParams, dt: float) -> np.ndarray:
    k = _kernels()
    c = np.zeros(k.MAHONY_N_COEFFS)
    c[k.C_MH_KP] = _checks.check_positive("kp_rad_s", p.kp_rad_s, allow_zero=True)
    c[k.C_MH_KI] = _checks.check_positive("ki_rad_s2", p.ki_rad_s2, allow_zero=True)
    c[k.C_MH_DT] = dt
    c[k.C_MH_ACC_REJ] = _checks.check_positive("acc_rejection_m_s2", p.acc_rejection_m_s2, allow_inf=True)
    c[k.C_MH_G] = _checks.check_positive("gravity_m_s2", p.gravity_m_s2)
    return c


def _vqf_coeffs(p: VQFParams, dt: float) -> np.ndarray:
    k = _kernels()
    for name, value in asdict(p).items():
        if not isinstance(value, bool):
            _checks.check_positive(name, value)
    c = np.zeros(k.VQF_N_COEFFS)
    c[k.C_DT] = dt
    c[k.C_ACC_B : k.C_ACC_B + 3], c[k.C_ACC_A : k.C_ACC_A + 2] = np.split(
        np.array(_lowpass_coeffs(p.tau_acc_s, dt)), [3]
    )
    c[k.C_REST_B : k.C_REST_B + 3], c[k.C_REST_A : k.C_REST_A + 2] = np.split(
        np.array(_lowpass_coeffs(p.rest_filter_tau_s, dt)), [3]
    )
    c[k.C_TAU_ACC] = p.tau_acc_s
    c[k.C_TAU_REST] = p.rest_filter_tau_s
    c[k.C_BIAS_P0] = p.bias_sigma_init_rad_s**2
    # process noise: the variance grows by (0.1 °/s)² in bias_forgetting_time_s
    v = math.radians(0.1) ** 2 * dt / p.bias_forgetting_time_s
    c[k.C_BIAS_V] = v
    # measurement noise chosen so that the steady-state variance equals sigma² (W = σ⁴/V + σ²)
    p_motion = p.bias_sigma_motion_rad_s**2
    c[k.C_BIAS_W_MOTION] = p_motion**2 / v + p_motion
    c[k.C_BIAS_W_VERTICAL] = c[k.C_BIAS_W_MOTION] / max(p.bias_vertical_forgetting_factor, 1e-10)
    p_rest = p.bias_sigma_rest_rad_s**2
    c[k.C_BIAS_W_REST] = p_rest**2 / v + p_rest
    c[k.C_BIAS_CLIP] = p.bias_clip_rad_s
    c[k.C_REST_TH_GYR] = p.rest_threshold_gyr_rad_s
    c[k.C_REST_TH_ACC] = p.rest_threshold_acc_m_s2
    c[k.C_REST_MIN_T] = p.rest_min_time_s
    c[k.C_MOTION_BIAS] = 1.0 if p.motion_bias_estimation else 0.0
    c[k.C_REST_BIAS] = 1.0 if p.rest_bias_estimation else 0.0
    return c


# --------------------------------------------------------------------------------------
# object API
# --------------------------------------------------------------------------------------


class OrientationFilter:
    """Base class: a causal orientation filter with explicit, assignable state.

    Parameters
    ----------
    rate_hz : float
        Sampling rate of gyr and acc, Hz.
    params : dataclass, optional
        The filter's parameters; defaults if omitted.

    Notes
    -----
    :meth:`process` may be called on consecutive chunks of a recording; the result equals a
    single call on the whole recording (to the last bit: the same kernel runs per sample).
    """

    method: ClassVar[str] = ""
    params_type: ClassVar[type] = object

    def __init__(self, rate_hz: float, params: Any = None) -> None:
        self.rate_hz = _checks.check_rate_hz(rate_hz)
        if params is None:
            params = self.params_type()
        if not isinstance(params, self.params_type):
            raise ValidationError(
                f"params must be a {self.params_type.__name__}; got {type(params).__name__}"
            )
        self.params = params
        self._coeffs = self._make_coeffs(params, 1.0 / self.rate_hz)
        self._state = np.zeros(self._n_state())
        self.reset()

    # -- to be provided by subclasses
    def _make_coeffs(self, params: Any, dt: float) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _n_state(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _run(self, acc: np.ndarray, gyr: np.ndarray) -> tuple[np.ndarray, OrientationDiagnostics]:
        raise NotImplementedError  # pragma: no cover - abstract

    # -- public API
    @property
    def coefficients(self) -> np.ndarray:
        """A copy of the derived coefficients (float64 vector; layout in the kernel module)."""
        return self._coeffs.copy()

    @property
    def state(self) -> np.ndarray:
        """A copy of the filter state (float64 vector). Assign a saved copy to restore it."""
        return self._state.copy()

    @state.setter
    def state(self, value: np.ndarray) -> None:
        v = np.asarray(value, dtype=np.float64)
        if v.shape != self._state.shape:
            raise ValidationError(
                f"state of a {type(self).__name__} must have shape {self._state.shape}; got {v.shape}"
            )
        self._state[:] = v

    def reset(self) -> None:
        """Return to the initial state (identity orientation, zero bias)."""
        self._state[:] = 0.0
        self._state[0] = 1.0

    @property
    def quat(self) -> np.ndarray:
        """Current orientation, shape (4,), (w, x, y, z)."""
        return self._state[:4].copy()

    def process(self, acc: np.ndarray, gyr: np.ndarray) -> tuple[np.ndarray, OrientationDiagnostics]:
        """Filter a chunk of samples and advance the state.

        Parameters
        ----------
        acc : array_like, shape (N, 3) or (3,), m/s²
            Accelerometer (specific force, ≈ +9.81 m/s² along the sensor's up axis at rest).
        gyr : array_like, shape (N, 3) or (3,), rad/s
            Gyroscope.

        Returns
        -------
        quat : ndarray, shape (N, 4)
            Orientation after each sample, (w, x, y, z), sensor → earth (z up).
        diagnostics : OrientationDiagnostics
            Per-sample bias estimate, rest and rejection flags.
        """
        a = _checks.as_samples("acc", acc)
        g = _checks.as_samples("gyr", gyr, n=a.shape[0])
        return self._run(a, g)


class MadgwickFilter(OrientationFilter):
    """Madgwick's gradient-descent orientation filter, IMU variant (Madgwick et al. 2011).

    The state is the quaternion and an "initialised" flag: the first usable accelerometer
    sample sets the inclination (heading zero). See :class:`OrientationFilter`.
    """

    method = "madgwick"
    params_type = MadgwickParams

    def _make_coeffs(self, params: MadgwickParams, dt: float) -> np.ndarray:
        return _madgwick_coeffs(params, dt)

    def _n_state(self) -> int:
        return _kernels().MADGWICK_N_STATE

    def _run(self, acc: np.ndarray, gyr: np.ndarray) -> tuple[np.ndarray, OrientationDiagnostics]:
        n = acc.shape[0]
        quat = np.empty((n, 4))
        rej = np.empty(n, dtype=np.bool_)
        _kernels().madgwick_run(gyr, acc, self._coeffs, self._state, quat, rej)
        return quat, OrientationDiagnostics(self.method, np.zeros((n, 3)), acc_rejected=rej)


class MahonyFilter(OrientationFilter):
    """Mahony's explicit complementary filter with integral gyro-bias estimate (Mahony et al. 2008)."""

    method = "mahony"
    params_type = MahonyParams

    def _make_coeffs(self, params: MahonyParams, dt: float) -> np.ndarray:
        return _mahony_coeffs(params, dt)

    def _n_state(self) -> int:
        return _kernels().MAHONY_N_STATE

    @property
    def bias_rad_s(self) -> np.ndarray:
        """Current gyro bias estimate, shape (3,), rad/s."""
        return self._state[4:7].copy()

    def _run(self, acc: np.ndarray, gyr: np.ndarray) -> tuple[np.ndarray, OrientationDiagnostics]:
        n = acc.shape[0]
        quat = np.empty((n, 4))
        bias = np.empty((n, 3))
        rej = np.empty(n, dtype=np.bool_)
        _kernels().mahony_run(gyr, acc, self._coeffs, self._state, quat, bias, rej)
        return quat, OrientationDiagnostics(self.method, bias, acc_rejected=rej)


class VQFFilter(OrientationFilter):
    """VQF-class filter (Laidig & Seel 2023), 6D: strapdown integration, accelerometer
    low-pass in an almost-inertial frame, rest detection and Kalman gyro-bias estimation.

    See ``docs/filters.md`` and :class:`VQFParams`.
    """

    method = "vqf"
    params_type = VQFParams

    def _make_coeffs(self, params: VQFParams, dt: float) -> np.ndarray:
        return _vqf_coeffs(params, dt)

    def _n_state(self) -> int:
        return _kernels().VQF_N_STATE

    def reset(self) -> None:
        _kernels().vqf_reset(self._coeffs, self._state)

    @property
    def quat(self) -> np.ndarray:
        k = _kernels()
        return np.array(k._vqf_quat(self._state))

    @property
    def bias_rad_s(self) -> np.ndarray:
        """Current gyro bias estimate, shape (3,), rad/s."""
        k = _kernels()
        return self._state[k.S_BIAS : k.S_BIAS + 3].copy()

    @property
    def rest(self) -> bool:
        """True while rest is detected."""
        return bool(self._state[_kernels().S_REST] != 0.0)

    def _run(self, acc: np.ndarray, gyr: np.ndarray) -> tuple[np.ndarray, OrientationDiagnostics]:
        n = acc.shape[0]
        quat = np.empty((n, 4))
        bias = np.empty((n, 3))
        sigma = np.empty(n)
        rest = np.empty(n, dtype=np.bool_)
        _kernels().vqf_run(gyr, acc, self._coeffs, self._state, quat, bias, sigma, rest)
        return quat, OrientationDiagnostics(self.method, bias, rest=rest, bias_sigma_rad_s=sigma)


def vqf_offline(
    acc: np.ndarray, gyr: np.ndarray, rate_hz: float, params: VQFParams | None = None
) -> tuple[np.ndarray, OrientationDiagnostics]:
    """Non-causal VQF-class estimate over a whole recording (for analysis after the fact).

    The causal filter runs forwards and backwards in time; the two bias estimates are fused
    by their covariances; the gyro minus this bias is integrated; the accelerometer, rotated
    into the resulting almost-inertial frame, is low-passed forwards and backwards (zero
    phase) and corrects the inclination. In the spirit of ``offlineVQF`` (Laidig & Seel 2023).

    Parameters and returns as :func:`estimate_orientation`.
    """
    r = _checks.check_rate_hz(rate_hz)
    a = _checks.as_samples("acc", acc)
    g = _checks.as_samples("gyr", gyr, n=a.shape[0])
    return _offline(a, g, r, params or VQFParams())


def _offline(a: np.ndarray, g: np.ndarray, rate_hz: float, params: VQFParams):  # noqa: ANN202
    k = _kernels()
    n = a.shape[0]
    coeffs = _vqf_coeffs(params, 1.0 / rate_hz)
    s1 = np.zeros(k.VQF_N_STATE)
    s2 = np.zeros(k.VQF_N_STATE)
    k.vqf_reset(coeffs, s1)
    k.vqf_reset(coeffs, s2)
    quat = np.empty((n, 4))
    bias = np.empty((n, 3))
    sigma = np.empty(n)
    rest = np.empty(n, dtype=np.bool_)
    if n:
        k.vqf_offline_run(g, a, coeffs, s1, s2, quat, bias, sigma, rest)
    return quat, OrientationDiagnostics("offline", bias, rest=rest, bias_sigma_rad_s=sigma)


_FILTERS: dict[str, type[OrientationFilter]] = {
    "vqf": VQFFilter,
    "madgwick": MadgwickFilter,
    "mahony": MahonyFilter,
}


def estimate_orientation(
    acc: np.ndarray,
    gyr: np.ndarray,
    rate_hz: float,
    method: str = "default",
    params: Any = None,
) -> tuple[np.ndarray, OrientationDiagnostics]:
    """Estimate sensor orientation (inclination; heading is free) from acc and gyr.

    Parameters
    ----------
    acc : array_like, shape (N, 3), m/s²
        Accelerometer in the sensor frame (≈ +9.81 m/s² along the up axis at rest).
    gyr : array_like, shape (N, 3), rad/s
        Gyroscope in the sensor frame.
    rate_hz : float
        Sampling rate, Hz (> 0).
    method : {"default", "vqf", "madgwick", "mahony", "offline"}
        "default" is the most accurate causal (live) filter, currently "vqf" (VQF-class,
        with rest detection and gyro-bias estimation). "offline" is non-causal (uses the
        whole recording, see :func:`vqf_offline`) and is the most accurate for analysis
        after the fact.
    params : MadgwickParams, MahonyParams or VQFParams, optional
        Parameters of the chosen filter; documented defaults if omitted.

    Returns
    -------
    quat : ndarray, shape (N, 4)
        Orientation after each sample, scalar-first (w, x, y, z), rotating sensor-frame
        vectors into an earth frame with z up.
    diagnostics : OrientationDiagnostics
        Per-sample gyro bias estimate (N, 3) rad/s, rest flags, bias uncertainty and
        accelerometer rejection flags where the method provides them.

    Raises
    ------
    lumbar.errors.ValidationError
        Wrong shapes, NaN/inf, non-positive rate, unknown method, or values that look like
        acc in g or gyr in deg/s.

    Examples
    --------
    >>> import numpy as np
    >>> from lumbar.filters import estimate_orientation
    >>> acc = np.tile([0.0, 0.0, 9.81], (400, 1)); gyr = np.zeros((400, 3))
    >>> quat, diag = estimate_orientation(acc, gyr, rate_hz=200.0)
    >>> quat.shape, bool(diag.rest[-1])
    ((400, 4), True)
    """
    _checks.check_option("method", method, METHODS)
    r = _checks.check_rate_hz(rate_hz)
    a = _checks.as_samples("acc", acc)
    g = _checks.as_samples("gyr", gyr, n=a.shape[0])
    _checks.check_units(a, g)
    name = "vqf" if method == "default" else method
    if name == "offline":
        if params is not None and not isinstance(params, VQFParams):
            raise ValidationError(f"params for method 'offline' must be a VQFParams; got {type(params).__name__}")
        return _offline(a, g, r, params or VQFParams())
    filt = _FILTERS[name](r, params)
    quat, diag = filt._run(a, g)
    if method == "default":
        diag.method = "vqf"
    return quat, diag
