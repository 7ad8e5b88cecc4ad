"""Ground truth of an emulated session, as flat named arrays plus scalar attributes.

Array names (N = samples of the nominal grid, M = samples of one sensor, K = repetitions):

=================================  ============  ==============================================
name                               shape         meaning
=================================  ============  ==============================================
``time_s``                         (N,)          nominal grid k/rate, s (= every device clock)
``segment/<seg>/quat``             (N, 4)        segment → earth, (w, x, y, z); seg in pelvis,
                                                 lumbar, thigh_left, thigh_right, and with a
                                                 shank sensor shank_left, shank_right
``segment/<seg>/position_m``       (N, 3)        segment origin in the earth frame, m (shanks:
                                                 the knee joint)
``lumbar_angles_rad``              (N, 3)        flexion, right lateral bending, axial rotation
                                                 (left +) of lumbar rel. pelvis (METRICS §2.1)
``pelvis_tilt_rad``                (N,)          pelvic sagittal inclination from upright,
                                                 anterior +
``trunk_inclination_rad``          (N,)          same for the lumbar (T12/L1) segment
``thigh_inclination_rad``          (N, 2)        same for the left, right thigh
``shank_inclination_rad``          (N, 2)        same for the left, right shank, wrapped to
                                                 (−π, π] (only with a shank sensor)
``knee_flexion_rad``               (N, 2)        left, right knee flexion, 0 = straight leg,
                                                 + heel towards the buttock; = shank − thigh
                                                 inclination (mod 2π); only with a shank sensor
``sway/ap_ml_rad``                 (N, 2)        inverted-pendulum angles, forward +, right +
``sway/ap_ml_m``                   (N, 2)        pendulum point at COM height, AP (forward +)
                                                 and ML (right +) from the ankles, m
``rep_bounds_s``                   (K, 3)        start, peak, end of each repetition, s
``sensor/<p>/time_s``              (M,)          true sampling instants (= the batch's time_s)
``sensor/<p>/quat``                (M, 4)        sensor → earth at those instants
``sensor/<p>/position_m``          (M, 3)        mounting point in the earth frame, m
``sensor/<p>/gyro_true_rads``      (M, 3)        exact angular rate, sensor frame
``sensor/<p>/acc_true_mps2``       (M, 3)        exact specific force, sensor frame
``sensor/<p>/gyro_bias_rads``      (M, 3)        total gyro bias added (constant + drift)
``sensor/<p>/acc_bias_mps2``       (M, 3)        total accelerometer bias added
``sensor/<p>/gyro_matrix``         (3, 3)        I + scale/cross-axis errors of the gyro
``sensor/<p>/acc_matrix``          (3, 3)        same for the accelerometer
``sensor/<p>/misalignment_deg``    (3,)          mounting rotation vector (segment frame), deg
=================================  ============  ==============================================
"""
from __future__ import annotations

from typing import Any

import numpy as np

from lumbar.errors import SimulationError

__all__ = ["Truth"]

_REQUIRED = ("time_s", "lumbar_angles_rad", "pelvis_tilt_rad", "rep_bounds_s")
# optional arrays on the nominal grid, checked like the required ones when present
_PER_SAMPLE = ("lumbar_angles_rad", "pelvis_tilt_rad", "shank_inclination_rad", "knee_flexion_rad")


class Truth:
    """Ground truth beside the emulated signals.

    Parameters
    ----------
    arrays : dict[str, ndarray]
        Named arrays (see the module table).
    attrs : dict[str, scalar or str]
        Movement, quality, seed, lumbo-pelvic ratio, IMU parameters ("imu/<field>"), …
    """

    def __init__(self, arrays: dict[str, np.ndarray], attrs: dict[str, Any]) -> None:
        self._arrays = {k: np.asarray(v) for k, v in arrays.items()}
        self._attrs = dict(attrs)

    # --- generic storage interface -------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """All arrays by flat name (a shallow copy of the mapping)."""
        return dict(self._arrays)

    def attrs(self) -> dict[str, Any]:
        """Scalar and string attributes (a copy)."""
        return dict(self._attrs)

    @classmethod
    def from_arrays(cls, arrays: dict[str, Any], attrs: dict[str, Any]) -> "Truth":
        """Rebuild from :meth:`to_arrays` / :meth:`attrs` output (e.g. read back from a file).

        Raises
        ------
        SimulationError
            If a required array is missing or shapes disagree.
        """
        missing = [k for k in _REQUIRED if k not in arrays]
        if missing:
            raise SimulationError(f"truth is missing required arrays: {', '.join(missing)}")
        arrs = {k: np.asarray(v) for k, v in arrays.items()}
        n = arrs["time_s"].shape[0]
        for k, v in arrs.items():
            if (k.startswith("segment/") or k in _PER_SAMPLE) and v.shape[0] != n:
                raise SimulationError(f"truth array {k!r} has {v.shape[0]} rows but time_s has {n}")
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in attrs.items()}
        return cls(arrs, attrs)

    # --- convenience ----------------------------------------------------------------------
    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def __contains__(self, name: str) -> bool:
        return name in self._arrays

    @property
    def time_s(self) -> np.ndarray:
        return self._arrays["time_s"]

    @property
    def lumbar_angles_rad(self) -> np.ndarray:
        return self._arrays["lumbar_angles_rad"]

    @property
    def pelvis_tilt_rad(self) -> np.ndarray:
        return self._arrays["pelvis_tilt_rad"]

    @property
    def knee_flexion_rad(self) -> np.ndarray:
        """Left, right knee flexion (N, 2), rad, 0 = straight leg.

        Raises
        ------
        KeyError
            If the session had no shank sensor (its truth has no knees).
        """
        return self._arrays["knee_flexion_rad"]

    @property
    def rep_bounds_s(self) -> np.ndarray:
        return self._arrays["rep_bounds_s"]

    @property
    def sensors(self) -> list[str]:
        return sorted({k.split("/")[1] for k in self._arrays if k.startswith("sensor/")})

    @property
    def segments(self) -> list[str]:
        return sorted({k.split("/")[1] for k in self._arrays if k.startswith("segment/")})

    def segment_quat(self, segment: str) -> np.ndarray:
        """Segment → earth quaternions (N, 4) on ``time_s``."""
        return self._arrays[f"segment/{segment}/quat"]

    def sensor(self, placement: str, what: str) -> np.ndarray:
        """``sensor/<placement>/<what>``, e.g. ``truth.sensor("lumbar", "quat")``."""
        return self._arrays[f"sensor/{placement}/{what}"]

    def __repr__(self) -> str:
        a = self._attrs
        return (f"Truth(movement={a.get('movement')!r}, quality={a.get('quality')!r}, "
                f"samples={self.time_s.shape[0]}, reps={self.rep_bounds_s.shape[0]}, sensors={self.sensors})")
