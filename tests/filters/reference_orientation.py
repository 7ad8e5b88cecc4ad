"""Slow, plain-NumPy reference versions of the Madgwick and Mahony IMU filters.

Written from the papers in their matrix form (Jacobian, rotation matrix, cross product),
independently of the numba kernels' scalar code, to check those kernels sample by sample.
Quaternions (w, x, y, z), sensor → earth (z up); gyr rad/s; acc m/s².
"""
from __future__ import annotations

import numpy as np


def qmul(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    pw, pv = p[0], p[1:]
    qw, qv = q[0], q[1:]
    return np.concatenate([[pw * qw - pv @ qv], pw * qv + qw * pv + np.cross(pv, qv)])


def rotmat(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def tilt_from_acc(a: np.ndarray) -> np.ndarray:
    """Quaternion with zero heading whose rotation takes a onto +z."""
    a = a / np.linalg.norm(a)
    axis = np.cross(a, [0.0, 0.0, 1.0])
    s = np.linalg.norm(axis)
    angle = np.arctan2(s, a[2])
    if s < 1e-300:
        return np.array([1.0, 0, 0, 0]) if a[2] > 0 else np.array([0.0, 1, 0, 0])
    return np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis / s])


def madgwick(acc: np.ndarray, gyr: np.ndarray, rate_hz: float, beta: float = 0.033,
             integrate_first: bool = False) -> np.ndarray:
    dt = 1.0 / rate_hz
    out = np.empty((len(acc), 4))
    q = None
    for i, (a, g) in enumerate(zip(acc, gyr)):
        an = np.linalg.norm(a)
        if q is None:
            out[i] = q = tilt_from_acc(a)
            continue
        qdot = 0.5 * qmul(q, np.concatenate([[0.0], g]))
        if integrate_first:
            q = q + qdot * dt
            q /= np.linalg.norm(q)
            qdot = np.zeros(4)
        a = a / an
        w, x, y, z = q
        f = np.array([2 * (x * z - w * y) - a[0], 2 * (w * x + y * z) - a[1], 2 * (0.5 - x * x - y * y) - a[2]])
        jac = np.array([[-2 * y, 2 * z, -2 * w, 2 * x], [2 * x, 2 * w, 2 * z, 2 * y], [0, -4 * x, -4 * y, 0]])
        grad = jac.T @ f
        grad /= np.linalg.norm(grad)
        q = q + (qdot - beta * grad) * dt
        q /= np.linalg.norm(q)
        out[i] = q
    return out


def mahony(acc: np.ndarray, gyr: np.ndarray, rate_hz: float, kp: float = 1.0, ki: float = 0.3
           ) -> tuple[np.ndarray, np.ndarray]:
    dt = 1.0 / rate_hz
    out = np.empty((len(acc), 4))
    bias_out = np.empty((len(acc), 3))
    q = None
    b = np.zeros(3)
    for i, (a, g) in enumerate(zip(acc, gyr)):
        if q is None:
            out[i] = q = tilt_from_acc(a)
            bias_out[i] = b
            continue
        v = rotmat(q).T @ np.array([0.0, 0.0, 1.0])
        e = np.cross(a / np.linalg.norm(a), v)
        b = b - ki * e * dt
        omega = g - b + kp * e
        q = q + 0.5 * qmul(q, np.concatenate([[0.0], omega])) * dt
        q /= np.linalg.norm(q)
        out[i] = q
        bias_out[i] = b
    return out, bias_out
