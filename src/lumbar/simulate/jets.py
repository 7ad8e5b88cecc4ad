"""Values carried together with their first and second time derivatives ("jets").

The emulated patient is built from smooth analytic trajectories. Instead of differentiating
the final orientations and positions numerically, every scalar trajectory carries its exact
first and second derivatives, and rotations and points propagate them by the chain rule.
The gyroscope and accelerometer signals are therefore exact (to rounding), at any sample
time, without finite-difference step choices.

Conventions: rotation matrices map body (segment or sensor) coordinates into the earth
frame, ``v_E = R v_B``; angular velocity ``w`` and angular acceleration ``wd`` are given
in the *body* frame, ``Rdot = R [w]x``. Vectors and matrices are stored samples-last:
(3, N) and (3, 3, N).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Jet", "RotJet", "PointJet"]


@dataclass(frozen=True)
class Jet:
    """A scalar trajectory sampled at N times with its derivatives.

    Attributes
    ----------
    v, d, dd : ndarray, shape (N,)
        Value, first and second time derivative (unit, unit/s, unit/s²).
    """

    v: np.ndarray
    d: np.ndarray
    dd: np.ndarray

    @staticmethod
    def const(value: float, n: int) -> "Jet":
        z = np.zeros(n)
        return Jet(np.full(n, float(value)), z, z.copy())

    @staticmethod
    def zeros(n: int) -> "Jet":
        return Jet.const(0.0, n)

    def __add__(self, other: "Jet | float") -> "Jet":
        if isinstance(other, Jet):
            return Jet(self.v + other.v, self.d + other.d, self.dd + other.dd)
        return Jet(self.v + other, self.d, self.dd)

    __radd__ = __add__

    def __neg__(self) -> "Jet":
        return Jet(-self.v, -self.d, -self.dd)

    def __sub__(self, other: "Jet | float") -> "Jet":
        return self + (-other)

    def __rsub__(self, other: float) -> "Jet":
        return (-self) + other

    def __mul__(self, other: "Jet | float") -> "Jet":
        if isinstance(other, Jet):
            # product rule up to the second derivative
            return Jet(
                self.v * other.v,
                self.d * other.v + self.v * other.d,
                self.dd * other.v + 2.0 * self.d * other.d + self.v * other.dd,
            )
        return Jet(self.v * other, self.d * other, self.dd * other)

    __rmul__ = __mul__

    def __len__(self) -> int:
        return int(self.v.shape[0])


_AXES = {"x": 0, "y": 1, "z": 2}
_PAIR = [(1, 2), (2, 0), (0, 1)]  # the two axes a rotation about x, y, z mixes (cyclic order)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of (3, N) arrays (or a (3, N) with a (3, 1))."""
    return np.stack(
        [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    )


def _matvec(R: np.ndarray, x: np.ndarray) -> np.ndarray:
    """R (3, 3, N) times x (3, N) or (3, 1), per sample."""
    return R[:, 0] * x[0] + R[:, 1] * x[1] + R[:, 2] * x[2]


@dataclass(frozen=True)
class RotJet:
    """An orientation trajectory with body-frame angular velocity and acceleration.

    Component-first layout (samples last) keeps every elementwise operation on contiguous
    memory, which is what makes an hour of samples cheap.

    Attributes
    ----------
    R : ndarray, shape (3, 3, N)
        Body → reference rotation matrices (``R[:, :, n]`` is one matrix).
    w : ndarray, shape (3, N)
        Angular velocity in the body frame, rad/s.
    wd : ndarray, shape (3, N)
        Time derivative of ``w`` (body frame), rad/s².
    """

    R: np.ndarray
    w: np.ndarray
    wd: np.ndarray

    @staticmethod
    def const(r: np.ndarray, n: int) -> "RotJet":
        r = np.asarray(r, dtype=np.float64)
        return RotJet(np.repeat(r[:, :, None], n, axis=2), np.zeros((3, n)), np.zeros((3, n)))

    @staticmethod
    def about(axis: str, angle: Jet) -> "RotJet":
        """Right-handed rotation about a body axis (``"x"``, ``"y"`` or ``"z"``) by ``angle`` (rad)."""
        return RotJet.const(np.eye(3), len(angle)).then_about(axis, angle)

    @property
    def matrices(self) -> np.ndarray:
        """Rotation matrices as (N, 3, 3)."""
        return np.ascontiguousarray(np.moveaxis(self.R, 2, 0))

    def __matmul__(self, other: "RotJet") -> "RotJet":
        """Composition ``self · other`` (``other`` is expressed in ``self``'s body frame)."""
        rb_t = np.swapaxes(other.R, 0, 1)
        wa_in_b = _matvec(rb_t, self.w)
        wda_in_b = _matvec(rb_t, self.wd)
        # w_AB = R_Bᵀ w_A + w_B; its derivative picks up −w_B × (R_Bᵀ w_A) from d(R_Bᵀ)/dt
        return RotJet(
            np.einsum("ijn,jkn->ikn", self.R, other.R),
            wa_in_b + other.w,
            wda_in_b - _cross(other.w, wa_in_b) + other.wd,
        )

    def then_about(self, axis: str, angle: Jet) -> "RotJet":
        """``self · about(axis, angle)`` without forming matrix products.

        A rotation about body axis k only mixes the two other columns of R and the two
        other components of the rates, so this is a few elementwise operations.
        """
        k = _AXES[axis]
        i, j = _PAIR[k]
        c, s = np.cos(angle.v), np.sin(angle.v)
        R = self.R.copy()
        R[:, i] = self.R[:, i] * c + self.R[:, j] * s
        R[:, j] = self.R[:, j] * c - self.R[:, i] * s
        # Eᵀ w_A (the parent's rate seen in the new body frame)
        w = self.w.copy()
        w[i] = c * self.w[i] + s * self.w[j]
        w[j] = c * self.w[j] - s * self.w[i]
        wd = self.wd.copy()
        wd[i] = c * self.wd[i] + s * self.wd[j]
        wd[j] = c * self.wd[j] - s * self.wd[i]
        # − w_B × (Eᵀ w_A) with w_B = e_k ȧ, then the joint's own rate and acceleration
        wd[i] += angle.d * w[j]
        wd[j] -= angle.d * w[i]
        w[k] += angle.d
        wd[k] += angle.dd
        return RotJet(R, w, wd)

    def apply_const(self, m: np.ndarray) -> "RotJet":
        """Compose with a constant rotation on the right: ``self · m``."""
        m = np.asarray(m, dtype=np.float64)
        return RotJet(np.einsum("ijn,jk->ikn", self.R, m), m.T @ self.w, m.T @ self.wd)


@dataclass(frozen=True)
class PointJet:
    """A point trajectory in the earth frame.

    Attributes
    ----------
    p, v, a : ndarray, shape (3, N)
        Position (m), velocity (m/s) and acceleration (m/s²) in the earth frame.
    """

    p: np.ndarray
    v: np.ndarray
    a: np.ndarray

    @staticmethod
    def const(p: np.ndarray, n: int) -> "PointJet":
        p = np.asarray(p, dtype=np.float64)
        return PointJet(np.repeat(p[:, None], n, axis=1), np.zeros((3, n)), np.zeros((3, n)))

    @staticmethod
    def from_xyz(x: Jet, y: Jet, z: Jet) -> "PointJet":
        return PointJet(np.stack([x.v, y.v, z.v]), np.stack([x.d, y.d, z.d]), np.stack([x.dd, y.dd, z.dd]))

    def __add__(self, other: "PointJet") -> "PointJet":
        return PointJet(self.p + other.p, self.v + other.v, self.a + other.a)

    def offset(self, rot: RotJet, r_body: np.ndarray) -> "PointJet":
        """The point fixed at ``r_body`` (3,) m in the frame of ``rot`` whose origin is ``self``.

        Uses v = v₀ + R (w × r) and a = a₀ + R (ẇ × r + w × (w × r)).
        """
        r = np.asarray(r_body, dtype=np.float64)[:, None]
        wxr = _cross(rot.w, r)
        acc_b = _cross(rot.wd, r) + _cross(rot.w, wxr)
        return PointJet(self.p + _matvec(rot.R, r), self.v + _matvec(rot.R, wxr), self.a + _matvec(rot.R, acc_b))
