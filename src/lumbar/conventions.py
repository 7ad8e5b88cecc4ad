"""Conventions in one place: quaternion order, frames, Cardan sequence.

* Quaternions are scalar-first ``(w, x, y, z)`` and rotate sensor-frame vectors into the
  earth frame (``v_E = q ⊗ v_S ⊗ q*``); earth frame is right-handed with z up.
  scipy uses ``(x, y, z, w)``: convert only through :func:`to_scipy` / :func:`from_scipy`.
* Segment (anatomical) frames: X anterior, Y superior, Z right (ISB, METRICS.md §0.1).
* Lumbar angles: intrinsic Z–X′–Y″ Cardan sequence ``R = Rz(α)·Rx(β)·Ry(γ)``;
  flexion = −α, right lateral bending = +β, axial rotation = +γ (left positive) (METRICS.md §2.1).

See ``docs/conventions.md`` for the prose version.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # scipy is imported where a Rotation is made, so importing this module stays light
    from scipy.spatial.transform import Rotation

__all__ = [
    "to_scipy",
    "from_scipy",
    "quat_multiply",
    "quat_conj",
    "quat_rotate",
    "quat_to_matrix",
    "matrix_to_quat",
    "rot_x",
    "rot_y",
    "rot_z",
    "quat_matrix_column",
    "cardan_zxy",
    "cardan_zxy_from_quat",
    "lumbar_angles_from_matrix",
    "lumbar_angles_from_quat",
]


def to_scipy(q: np.ndarray) -> Rotation:
    """Quaternions (..., 4) in (w, x, y, z) order → scipy Rotation."""
    from scipy.spatial.transform import Rotation

    q = np.asarray(q, dtype=np.float64)
    return Rotation.from_quat(q[..., [1, 2, 3, 0]])


def from_scipy(r: Rotation) -> np.ndarray:
    """scipy Rotation → quaternions (..., 4) in (w, x, y, z) order with w ≥ 0."""
    q = r.as_quat()[..., [3, 0, 1, 2]]
    return np.where(q[..., :1] < 0, -q, q)


def quat_multiply(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Hamilton product p ⊗ q for arrays (..., 4) in (w, x, y, z) order."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    w1, x1, y1, z1 = np.moveaxis(p, -1, 0)
    w2, x2, y2, z2 = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        axis=-1,
    )


def quat_conj(q: np.ndarray) -> np.ndarray:
    """Conjugate (inverse of a unit quaternion), (..., 4)."""
    q = np.asarray(q, dtype=np.float64)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4): q ⊗ v ⊗ q*."""
    return np.einsum("...ij,...j->...i", quat_to_matrix(q), np.asarray(v, dtype=np.float64))


def _components(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    q = np.asarray(q, dtype=np.float64)
    if q.shape[-1] != 4:
        raise ValueError(f"quaternions must have shape (..., 4); got {q.shape}")
    return q[..., 0], q[..., 1], q[..., 2], q[..., 3]


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) → rotation matrices (..., 3, 3) with v_E = R v_S."""
    q = np.asarray(q, dtype=np.float64)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=-2,
    )


def quat_matrix_column(q: np.ndarray, k: int) -> np.ndarray:
    """Column ``k`` of :func:`quat_to_matrix` (..., 3) — the sensor's (or segment's) axis k in earth
    coordinates — without forming the other two (the same arithmetic as the full matrix)."""
    w, x, y, z = _components(q)
    out = np.empty(w.shape + (3,))
    if k == 0:
        out[..., 0] = 1 - 2 * (y * y + z * z)
        out[..., 1] = 2 * (x * y + w * z)
        out[..., 2] = 2 * (x * z - w * y)
    elif k == 1:
        out[..., 0] = 2 * (x * y - w * z)
        out[..., 1] = 1 - 2 * (x * x + z * z)
        out[..., 2] = 2 * (y * z + w * x)
    elif k == 2:
        out[..., 0] = 2 * (x * z + w * y)
        out[..., 1] = 2 * (y * z - w * x)
        out[..., 2] = 1 - 2 * (x * x + y * y)
    else:
        raise ValueError(f"column must be 0, 1 or 2; got {k}")
    return out


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) → unit quaternions (..., 4), w ≥ 0."""
    from scipy.spatial.transform import Rotation

    return from_scipy(Rotation.from_matrix(np.asarray(m, dtype=np.float64)))


def rot_x(a: float | np.ndarray) -> np.ndarray:
    """Right-handed elementary rotation about x by angle a (rad), shape (..., 3, 3)."""
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def rot_y(a: float | np.ndarray) -> np.ndarray:
    """Right-handed elementary rotation about y by angle a (rad), shape (..., 3, 3)."""
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def rot_z(a: float | np.ndarray) -> np.ndarray:
    """Right-handed elementary rotation about z by angle a (rad), shape (..., 3, 3)."""
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def cardan_zxy(r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decompose R = Rz(α)·Rx(β)·Ry(γ) (intrinsic Z–X′–Y″); returns (α, β, γ) in rad.

    ``β = asin(R32)``, ``α = atan2(−R12, R22)``, ``γ = atan2(−R31, R33)`` (1-based indices).
    Singular only at β = ±90°, which lumbar motion never reaches.
    """
    r = np.asarray(r, dtype=np.float64)
    beta = np.arcsin(np.clip(r[..., 2, 1], -1.0, 1.0))
    alpha = np.arctan2(-r[..., 0, 1], r[..., 1, 1])
    gamma = np.arctan2(-r[..., 2, 0], r[..., 2, 2])
    return alpha, beta, gamma


def cardan_zxy_from_quat(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`cardan_zxy` of the rotation of unit quaternions (..., 4), straight from their
    components (the five matrix elements it needs, by the formulas of :func:`quat_to_matrix`)."""
    w, x, y, z = _components(q)
    beta = np.arcsin(np.clip(2 * (y * z + w * x), -1.0, 1.0))
    alpha = np.arctan2(-(2 * (x * y - w * z)), 1 - 2 * (x * x + z * z))
    gamma = np.arctan2(-(2 * (x * z - w * y)), 1 - 2 * (x * x + y * y))
    return alpha, beta, gamma


def lumbar_angles_from_quat(q_lum: np.ndarray) -> np.ndarray:
    """:func:`lumbar_angles_from_matrix` of ``R_lum`` given as unit quaternions (..., 4)."""
    alpha, beta, gamma = cardan_zxy_from_quat(q_lum)
    return np.stack([-alpha, beta, gamma], axis=-1)


def lumbar_angles_from_matrix(r_lum: np.ndarray) -> np.ndarray:
    """Lumbar angles (..., 3) in rad: (flexion, right lateral bending, axial rotation left +).

    ``r_lum`` (..., 3, 3) is the upper segment's orientation relative to the pelvis,
    ``R_lum = R_GB,lowᵀ · R_GB,up`` in anatomical frames (METRICS.md §2.1).
    """
    alpha, beta, gamma = cardan_zxy(r_lum)
    return np.stack([-alpha, beta, gamma], axis=-1)
