"""numba kernels of the 6D orientation filters (gyroscope + accelerometer).

Private module: use :mod:`lumbar.filters.orientation` (it validates, allocates and calls
these kernels). Importing this module imports numba; it is imported lazily.

Every filter has

* a coefficient vector ``coeffs`` (float64, derived once from the user's parameters by the
  object API; layout documented by the ``C_*`` constants),
* a state vector ``state`` (float64, layout documented by the ``S_*`` constants), updated
  in place, so that a recording can be processed in one call or in chunks with identical
  results,
* ``<name>_step(gyr, acc, coeffs, state, out_quat)`` for one sample (``gyr``, ``acc``
  shape (3,), ``out_quat`` shape (4,)), and
* ``<name>_run(gyr, acc, coeffs, state, out_...)`` for a block of samples (``gyr``,
  ``acc`` shape (N, 3), outputs preallocated by the caller).

Both call the same per-sample update, so a run over a block and a loop of steps give the
same numbers. Kernels never validate their input: the object API does.

Conventions: quaternions (w, x, y, z) rotating sensor-frame vectors into an earth frame
with z up; gyroscope in rad/s, accelerometer in m/s², time in s.
"""
from __future__ import annotations

import math

import numpy as np

from lumbar.filters._numba import jit

# --------------------------------------------------------------------------------------
# Shared quaternion helpers (scalars in, tuples out: no allocation inside the loops)
# --------------------------------------------------------------------------------------


@jit
def _qmul(aw, ax, ay, az, bw, bx, by, bz):
    """Hamilton product a ⊗ b."""
    return (
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    )


@jit
def _qnormalize(w, x, y, z):
    n = math.sqrt(w * w + x * x + y * y + z * z)
    if n < 2.220446049250313e-16:
        return w, x, y, z
    return w / n, x / n, y / n, z / n


@jit
def _qrotate(w, x, y, z, vx, vy, vz):
    """Rotate vector v by unit quaternion q: q ⊗ v ⊗ q*."""
    rx = (1.0 - 2.0 * (y * y + z * z)) * vx + 2.0 * (x * y - w * z) * vy + 2.0 * (x * z + w * y) * vz
    ry = 2.0 * (x * y + w * z) * vx + (1.0 - 2.0 * (x * x + z * z)) * vy + 2.0 * (y * z - w * x) * vz
    rz = 2.0 * (x * z - w * y) * vx + 2.0 * (y * z + w * x) * vy + (1.0 - 2.0 * (x * x + y * y)) * vz
    return rx, ry, rz


@jit
def _tilt_quat(ax, ay, az):
    """Smallest rotation taking the unit vector a onto +z (zero heading change)."""
    w = math.sqrt(0.5 * (az + 1.0))
    if w > 1e-6:
        return w, 0.5 * ay / w, -0.5 * ax / w, 0.0
    # a points (almost) straight down: any half turn about a horizontal axis will do
    return 0.0, 1.0, 0.0, 0.0


@jit
def _acc_accepted(ax, ay, az, rejection_m_s2, gravity_m_s2):
    """(norm, accepted): zero samples and samples whose norm deviates from gravity by more
    than ``rejection_m_s2`` are not used for correction."""
    an = math.sqrt(ax * ax + ay * ay + az * az)
    if an == 0.0 or not (abs(an - gravity_m_s2) <= rejection_m_s2):
        return an, False
    return an, True


# --------------------------------------------------------------------------------------
# Madgwick (IMU variant, gradient descent), Madgwick et al. 2011
# --------------------------------------------------------------------------------------

#: coefficient layout
C_MW_BETA = 0  # gain β, rad/s
C_MW_DT = 1  # sample period, s
C_MW_ACC_REJ = 2  # acceleration rejection threshold on | ‖a‖ − g |, m/s² (inf = off)
C_MW_G = 3  # gravity, m/s²
C_MW_INTEGRATE_FIRST = 4  # 1.0: integrate the gyro first, then correct; 0.0: published order
MADGWICK_N_COEFFS = 5

#: state layout
S_MW_Q = 0  # quaternion (4)
S_MW_INIT = 4  # 1.0 once initialised: the first usable accelerometer sample sets the
#                inclination (heading zero) and is not otherwise used
MADGWICK_N_STATE = 5


@jit
def _madgwick_gradient(qw, qx, qy, qz, ax, ay, az):
    """Normalised gradient of ½‖q* ⊗ e_z ⊗ q − a‖² with respect to q (a unit)."""
    f1 = 2.0 * (qx * qz - qw * qy) - ax
    f2 = 2.0 * (qw * qx + qy * qz) - ay
    f3 = 1.0 - 2.0 * (qx * qx + qy * qy) - az
    g0 = -2.0 * qy * f1 + 2.0 * qx * f2
    g1 = 2.0 * qz * f1 + 2.0 * qw * f2 - 4.0 * qx * f3
    g2 = -2.0 * qw * f1 + 2.0 * qz * f2 - 4.0 * qy * f3
    g3 = 2.0 * qx * f1 + 2.0 * qy * f2
    gn = math.sqrt(g0 * g0 + g1 * g1 + g2 * g2 + g3 * g3)
    if gn > 0.0:
        return g0 / gn, g1 / gn, g2 / gn, g3 / gn
    return 0.0, 0.0, 0.0, 0.0


@jit
def _madgwick_update(gx, gy, gz, ax, ay, az, coeffs, state):
    """One Madgwick update; returns True if the accelerometer sample was rejected."""
    an, ok = _acc_accepted(ax, ay, az, coeffs[C_MW_ACC_REJ], coeffs[C_MW_G])
    if state[S_MW_INIT] == 0.0 and ok:
        qw, qx, qy, qz = _tilt_quat(ax / an, ay / an, az / an)
        state[0], state[1], state[2], state[3] = qw, qx, qy, qz
        state[S_MW_INIT] = 1.0
        return False  # this sample's job was to set the inclination
    beta = coeffs[C_MW_BETA]
    dt = coeffs[C_MW_DT]
    qw, qx, qy, qz = state[0], state[1], state[2], state[3]
    dw, dx, dy, dz = _qmul(qw, qx, qy, qz, 0.0, gx, gy, gz)
    if coeffs[C_MW_INTEGRATE_FIRST] != 0.0:
        qw, qx, qy, qz = _qnormalize(qw + 0.5 * dt * dw, qx + 0.5 * dt * dx, qy + 0.5 * dt * dy, qz + 0.5 * dt * dz)
        if ok:
            s0, s1, s2, s3 = _madgwick_gradient(qw, qx, qy, qz, ax / an, ay / an, az / an)
            bd = beta * dt
            qw, qx, qy, qz = _qnormalize(qw - bd * s0, qx - bd * s1, qy - bd * s2, qz - bd * s3)
    else:
        dw *= 0.5
        dx *= 0.5
        dy *= 0.5
        dz *= 0.5
        if ok:
            s0, s1, s2, s3 = _madgwick_gradient(qw, qx, qy, qz, ax / an, ay / an, az / an)
            dw -= beta * s0
            dx -= beta * s1
            dy -= beta * s2
            dz -= beta * s3
        qw, qx, qy, qz = _qnormalize(qw + dt * dw, qx + dt * dx, qy + dt * dy, qz + dt * dz)
    state[0], state[1], state[2], state[3] = qw, qx, qy, qz
    return not ok


@jit
def madgwick_step(gyr, acc, coeffs, state, out_quat):
    """One sample. gyr, acc (3,); out_quat (4,). Returns True if acc was rejected."""
    rej = _madgwick_update(gyr[0], gyr[1], gyr[2], acc[0], acc[1], acc[2], coeffs, state)
    for k in range(4):
        out_quat[k] = state[k]
    return rej


@jit
def madgwick_run(gyr, acc, coeffs, state, out_quat, out_acc_rejected):
    """A block of samples. gyr, acc (N, 3); out_quat (N, 4); out_acc_rejected (N,) bool."""
    for i in range(gyr.shape[0]):
        rej = _madgwick_update(gyr[i, 0], gyr[i, 1], gyr[i, 2], acc[i, 0], acc[i, 1], acc[i, 2], coeffs, state)
        out_quat[i, 0] = state[0]
        out_quat[i, 1] = state[1]
        out_quat[i, 2] = state[2]
        out_quat[i, 3] = state[3]
        out_acc_rejected[i] = rej


# --------------------------------------------------------------------------------------
# Mahony (explicit complementary filter with integral bias), Mahony et al. 2008
# --------------------------------------------------------------------------------------

C_MH_KP = 0  # proportional gain, rad/s
C_MH_KI = 1  # integral gain, rad/s²
C_MH_DT = 2
C_MH_ACC_REJ = 3
C_MH_G = 4
MAHONY_N_COEFFS = 5

S_MH_Q = 0  # quaternion (4)
S_MH_BIAS = 4  # gyro bias estimate (3), rad/s
S_MH_INIT = 7
MAHONY_N_STATE = 8


@jit
def _mahony_update(gx, gy, gz, ax, ay, az, coeffs, state):
    an, ok = _acc_accepted(ax, ay, az, coeffs[C_MH_ACC_REJ], coeffs[C_MH_G])
    if state[S_MH_INIT] == 0.0 and ok:
        qw, qx, qy, qz = _tilt_quat(ax / an, ay / an, az / an)
        state[0], state[1], state[2], state[3] = qw, qx, qy, qz
        state[S_MH_INIT] = 1.0
        return False  # this sample's job was to set the inclination
    dt = coeffs[C_MH_DT]
    qw, qx, qy, qz = state[0], state[1], state[2], state[3]
    bx, by, bz = state[4], state[5], state[6]
    wx, wy, wz = gx, gy, gz
    if ok:
        ax /= an
        ay /= an
        az /= an
        # earth's vertical seen in the sensor frame: third row of R(q)
        vx = 2.0 * (qx * qz - qw * qy)
        vy = 2.0 * (qw * qx + qy * qz)
        vz = 1.0 - 2.0 * (qx * qx + qy * qy)
        ex = ay * vz - az * vy
        ey = az * vx - ax * vz
        ez = ax * vy - ay * vx
        ki_dt = coeffs[C_MH_KI] * dt
        bx -= ki_dt * ex
        by -= ki_dt * ey
        bz -= ki_dt * ez
        kp = coeffs[C_MH_KP]
        wx += kp * ex
        wy += kp * ey
        wz += kp * ez
        state[4], state[5], state[6] = bx, by, bz
    wx -= bx
    wy -= by
    wz -= bz
    dw, dx, dy, dz = _qmul(qw, qx, qy, qz, 0.0, wx, wy, wz)
    h = 0.5 * dt
    qw, qx, qy, qz = _qnormalize(qw + h * dw, qx + h * dx, qy + h * dy, qz + h * dz)
    state[0], state[1], state[2], state[3] = qw, qx, qy, qz
    return not ok


@jit
def mahony_step(gyr, acc, coeffs, state, out_quat):
    """One sample. gyr, acc (3,); out_quat (4,). Returns True if acc was rejected."""
    rej = _mahony_update(gyr[0], gyr[1], gyr[2], acc[0], acc[1], acc[2], coeffs, state)
    for k in range(4):
        out_quat[k] = state[k]
    return rej


@jit
def mahony_run(gyr, acc, coeffs, state, out_quat, out_bias, out_acc_rejected):
    """A block. gyr, acc (N, 3); out_quat (N, 4); out_bias (N, 3) rad/s; out_acc_rejected (N,)."""
    for i in range(gyr.shape[0]):
        rej = _mahony_update(gyr[i, 0], gyr[i, 1], gyr[i, 2], acc[i, 0], acc[i, 1], acc[i, 2], coeffs, state)
        out_quat[i, 0] = state[0]
        out_quat[i, 1] = state[1]
        out_quat[i, 2] = state[2]
        out_quat[i, 3] = state[3]
        out_bias[i, 0] = state[4]
        out_bias[i, 1] = state[5]
        out_bias[i, 2] = state[6]
        out_acc_rejected[i] = rej


# --------------------------------------------------------------------------------------
# VQF-class filter (Laidig & Seel 2023), 6D
# --------------------------------------------------------------------------------------

# coefficients
C_DT = 0  # sample period, s
C_ACC_B = 1  # 3 numerator coefficients of the 2nd-order low-pass with tau_acc
C_ACC_A = 4  # 2 denominator coefficients (a1, a2; a0 = 1)
C_REST_B = 6  # same for the rest-detection low-pass (tau = rest_filter_tau_s)
C_REST_A = 9
C_TAU_ACC = 11  # s
C_TAU_REST = 12  # s
C_BIAS_P0 = 13  # initial bias variance, (rad/s)²
C_BIAS_V = 14  # bias process noise per sample, (rad/s)²
C_BIAS_W_MOTION = 15  # measurement noise of the motion update (x, y), (rad/s)²
C_BIAS_W_VERTICAL = 16  # measurement noise of the motion update (z), (rad/s)²
C_BIAS_W_REST = 17  # measurement noise of the rest update, (rad/s)²
C_BIAS_CLIP = 18  # rad/s
C_REST_TH_GYR = 19  # rad/s
C_REST_TH_ACC = 20  # m/s²
C_REST_MIN_T = 21  # s
C_MOTION_BIAS = 22  # 1.0 = on
C_REST_BIAS = 23  # 1.0 = on
VQF_N_COEFFS = 24

# state
S_QG = 0  # gyroscope strapdown quaternion (4), sensor → almost-inertial frame
S_QA = 4  # inclination correction quaternion (4), almost-inertial → earth frame
S_BIAS = 8  # gyro bias estimate (3), rad/s
S_P = 11  # bias covariance (3×3 row-major), (rad/s)²
S_REST_T = 20  # time at rest so far, s
S_REST = 21  # 1.0 when rest is detected
S_DEV_GYR = 22  # squared deviation of gyr from its low-pass, (rad/s)²
S_DEV_ACC = 23  # squared deviation of acc from its low-pass, (m/s²)²
# low-pass filter blocks: output (n), sample count (≥ 0 while averaging the first
# tau seconds, −1 afterwards), IIR state (2n), running sum (n)
S_GLP = 24  # rest gyr low-pass, n = 3 → 24..36
S_ALP_REST = 37  # rest acc low-pass, n = 3 → 37..49
S_ALP = 50  # acc low-pass in the almost-inertial frame, n = 3 → 50..62
S_RLP = 63  # low-pass of the rotation matrix, n = 9 → 63..99
S_BLP = 100  # low-pass of R·b (x, y), n = 2 → 100..108
S_IN = 109  # scratch input of the low-pass blocks (9)
S_ACC_EARTH = 118  # last normalised acc in the earth frame (3)
VQF_N_STATE = 121


@jit
def _lp_block(s, in_off, blk, n, b0, b1, b2, a1, a2, tau, dt):
    """Second-order low-pass of s[in_off:in_off+n] into s[blk:blk+n] (see layout above).

    For the first ``tau`` seconds the output is the running mean; the IIR state is then
    initialised to its steady state for that mean, so the start does not hinge on one sample.
    """
    cnt_off = blk + n
    z = blk + n + 1
    sm = blk + 3 * n + 1
    cnt = s[cnt_off]
    if cnt >= 0.0:
        cnt += 1.0
        for k in range(n):
            s[sm + k] += s[in_off + k]
            s[blk + k] = s[sm + k] / cnt
        if cnt * dt >= tau:
            for k in range(n):
                y = s[blk + k]
                s[z + 2 * k] = y * (1.0 - b0)
                s[z + 2 * k + 1] = y * (b2 - a2)
            cnt = -1.0
        s[cnt_off] = cnt
    else:
        for k in range(n):
            x = s[in_off + k]
            y = b0 * x + s[z + 2 * k]
            s[z + 2 * k] = b1 * x - a1 * y + s[z + 2 * k + 1]
            s[z + 2 * k + 1] = b2 * x - a2 * y
            s[blk + k] = y


@jit
def _lp_reset(s, blk, n):
    s[blk : blk + n] = 0.0
    s[blk + n] = 0.0
    s[blk + n + 1 : blk + 4 * n + 1] = 0.0


@jit
def vqf_reset(coeffs, state):
    """Initial state: identity orientation, zero bias with variance ``C_BIAS_P0``."""
    state[:] = 0.0
    state[S_QG] = 1.0
    state[S_QA] = 1.0
    p0 = coeffs[C_BIAS_P0]
    state[S_P] = p0
    state[S_P + 4] = p0
    state[S_P + 8] = p0
    for blk, n in ((S_GLP, 3), (S_ALP_REST, 3), (S_ALP, 3), (S_RLP, 9), (S_BLP, 2)):
        _lp_reset(state, blk, n)


@jit
def _mm(a, b):
    """3×3 matrix product of row-major 9-tuples."""
    return (
        a[0] * b[0] + a[1] * b[3] + a[2] * b[6],
        a[0] * b[1] + a[1] * b[4] + a[2] * b[7],
        a[0] * b[2] + a[1] * b[5] + a[2] * b[8],
        a[3] * b[0] + a[4] * b[3] + a[5] * b[6],
        a[3] * b[1] + a[4] * b[4] + a[5] * b[7],
        a[3] * b[2] + a[4] * b[5] + a[5] * b[8],
        a[6] * b[0] + a[7] * b[3] + a[8] * b[6],
        a[6] * b[1] + a[7] * b[4] + a[8] * b[7],
        a[6] * b[2] + a[7] * b[5] + a[8] * b[8],
    )


@jit
def _mt(a):
    return (a[0], a[3], a[6], a[1], a[4], a[7], a[2], a[5], a[8])


@jit
def _minv(m):
    """(ok, inverse) of a 3×3 row-major 9-tuple; ok is False for a singular matrix."""
    c00 = m[4] * m[8] - m[5] * m[7]
    c01 = m[5] * m[6] - m[3] * m[8]
    c02 = m[3] * m[7] - m[4] * m[6]
    det = m[0] * c00 + m[1] * c01 + m[2] * c02
    if det == 0.0 or not math.isfinite(det):
        return False, (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    r = 1.0 / det
    return True, (
        c00 * r,
        (m[2] * m[7] - m[1] * m[8]) * r,
        (m[1] * m[5] - m[2] * m[4]) * r,
        c01 * r,
        (m[0] * m[8] - m[2] * m[6]) * r,
        (m[2] * m[3] - m[0] * m[5]) * r,
        c02 * r,
        (m[1] * m[6] - m[0] * m[7]) * r,
        (m[0] * m[4] - m[1] * m[3]) * r,
    )


@jit
def _clip(x, lim):
    return min(max(x, -lim), lim)


@jit
def _vqf_gyr(gx, gy, gz, c, s):
    """Rest detection (gyroscope part) and strapdown integration of the bias-free rate."""
    dt = c[C_DT]
    if c[C_REST_BIAS] != 0.0:
        s[S_IN], s[S_IN + 1], s[S_IN + 2] = gx, gy, gz
        _lp_block(s, S_IN, S_GLP, 3, c[C_REST_B], c[C_REST_B + 1], c[C_REST_B + 2],
                  c[C_REST_A], c[C_REST_A + 1], c[C_TAU_REST], dt)
        lx, ly, lz = s[S_GLP], s[S_GLP + 1], s[S_GLP + 2]
        dev = (gx - lx) ** 2 + (gy - ly) ** 2 + (gz - lz) ** 2
        s[S_DEV_GYR] = dev
        clip = c[C_BIAS_CLIP]
        th = c[C_REST_TH_GYR]
        if dev >= th * th or abs(lx) > clip or abs(ly) > clip or abs(lz) > clip:
            s[S_REST_T] = 0.0
            s[S_REST] = 0.0
    wx = gx - s[S_BIAS]
    wy = gy - s[S_BIAS + 1]
    wz = gz - s[S_BIAS + 2]
    wn = math.sqrt(wx * wx + wy * wy + wz * wz)
    if wn > 2.220446049250313e-16:
        half = 0.5 * wn * dt
        cw = math.cos(half)
        sk = math.sin(half) / wn
        q = _qmul(s[S_QG], s[S_QG + 1], s[S_QG + 2], s[S_QG + 3], cw, sk * wx, sk * wy, sk * wz)
        q = _qnormalize(q[0], q[1], q[2], q[3])
        s[S_QG], s[S_QG + 1], s[S_QG + 2], s[S_QG + 3] = q[0], q[1], q[2], q[3]


@jit
def _vqf_acc(ax, ay, az, c, s):
    """Rest detection (accelerometer part), inclination correction and bias estimation."""
    if ax == 0.0 and ay == 0.0 and az == 0.0:
        return
    dt = c[C_DT]
    rest_on = c[C_REST_BIAS] != 0.0
    if rest_on:
        s[S_IN], s[S_IN + 1], s[S_IN + 2] = ax, ay, az
        _lp_block(s, S_IN, S_ALP_REST, 3, c[C_REST_B], c[C_REST_B + 1], c[C_REST_B + 2],
                  c[C_REST_A], c[C_REST_A + 1], c[C_TAU_REST], dt)
        dev = (ax - s[S_ALP_REST]) ** 2 + (ay - s[S_ALP_REST + 1]) ** 2 + (az - s[S_ALP_REST + 2]) ** 2
        s[S_DEV_ACC] = dev
        if dev >= c[C_REST_TH_ACC] ** 2:
            s[S_REST_T] = 0.0
            s[S_REST] = 0.0
        else:
            s[S_REST_T] += dt
            if s[S_REST_T] >= c[C_REST_MIN_T]:
                s[S_REST] = 1.0

    # low-pass the accelerometer in the almost-inertial frame
    b0, b1, b2, a1, a2 = c[C_ACC_B], c[C_ACC_B + 1], c[C_ACC_B + 2], c[C_ACC_A], c[C_ACC_A + 1]
    tau = c[C_TAU_ACC]
    s[S_IN], s[S_IN + 1], s[S_IN + 2] = _qrotate(s[S_QG], s[S_QG + 1], s[S_QG + 2], s[S_QG + 3], ax, ay, az)
    _lp_block(s, S_IN, S_ALP, 3, b0, b1, b2, a1, a2, tau, dt)

    # bring it to the earth frame and rotate the inclination correction onto it
    qa = (s[S_QA], s[S_QA + 1], s[S_QA + 2], s[S_QA + 3])
    ex, ey, ez = _qrotate(qa[0], qa[1], qa[2], qa[3], s[S_ALP], s[S_ALP + 1], s[S_ALP + 2])
    en = math.sqrt(ex * ex + ey * ey + ez * ez)
    if en >= 2.220446049250313e-16:
        ex /= en
        ey /= en
        ez /= en
    s[S_ACC_EARTH], s[S_ACC_EARTH + 1], s[S_ACC_EARTH + 2] = ex, ey, ez
    cw, cx, cy, cz = _tilt_quat(ex, ey, ez)
    q = _qmul(cw, cx, cy, cz, qa[0], qa[1], qa[2], qa[3])
    q = _qnormalize(q[0], q[1], q[2], q[3])
    s[S_QA], s[S_QA + 1], s[S_QA + 2], s[S_QA + 3] = q[0], q[1], q[2], q[3]

    motion_on = c[C_MOTION_BIAS] != 0.0
    if not (motion_on or rest_on):
        return

    # ---- gyroscope bias: Kalman filter with rest and motion measurement updates ----
    b = (s[S_BIAS], s[S_BIAS + 1], s[S_BIAS + 2])
    w6, x6, y6, z6 = _qmul(q[0], q[1], q[2], q[3], s[S_QG], s[S_QG + 1], s[S_QG + 2], s[S_QG + 3])
    # rotation matrix of the current 6D orientation, low-passed like the accelerometer
    s[S_IN + 0] = 1.0 - 2.0 * (y6 * y6 + z6 * z6)
    s[S_IN + 1] = 2.0 * (x6 * y6 - w6 * z6)
    s[S_IN + 2] = 2.0 * (x6 * z6 + w6 * y6)
    s[S_IN + 3] = 2.0 * (x6 * y6 + w6 * z6)
    s[S_IN + 4] = 1.0 - 2.0 * (x6 * x6 + z6 * z6)
    s[S_IN + 5] = 2.0 * (y6 * z6 - w6 * x6)
    s[S_IN + 6] = 2.0 * (x6 * z6 - w6 * y6)
    s[S_IN + 7] = 2.0 * (y6 * z6 + w6 * x6)
    s[S_IN + 8] = 1.0 - 2.0 * (x6 * x6 + y6 * y6)
    rbx = s[S_IN + 0] * b[0] + s[S_IN + 1] * b[1] + s[S_IN + 2] * b[2]
    rby = s[S_IN + 3] * b[0] + s[S_IN + 4] * b[1] + s[S_IN + 5] * b[2]
    _lp_block(s, S_IN, S_RLP, 9, b0, b1, b2, a1, a2, tau, dt)
    s[S_IN], s[S_IN + 1] = rbx, rby
    _lp_block(s, S_IN, S_BLP, 2, b0, b1, b2, a1, a2, tau, dt)

    update = True
    if rest_on and s[S_REST] != 0.0:
        # at rest the low-passed gyro reading is a direct measurement of the bias
        e0 = s[S_GLP] - b[0]
        e1 = s[S_GLP + 1] - b[1]
        e2 = s[S_GLP + 2] - b[2]
        rm = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
        wr = c[C_BIAS_W_REST]
        w0, w1, w2 = wr, wr, wr
    elif motion_on:
        # in motion, the inclination correction rate (x, y in the earth frame) measures
        # the low-passed bias rotated to the earth frame; z is only a weak pull to zero
        rm = (s[S_RLP], s[S_RLP + 1], s[S_RLP + 2], s[S_RLP + 3], s[S_RLP + 4], s[S_RLP + 5],
              s[S_RLP + 6], s[S_RLP + 7], s[S_RLP + 8])
        e0 = -ey / dt + s[S_BLP] - (rm[0] * b[0] + rm[1] * b[1] + rm[2] * b[2])
        e1 = ex / dt + s[S_BLP + 1] - (rm[3] * b[0] + rm[4] * b[1] + rm[5] * b[2])
        e2 = -(rm[6] * b[0] + rm[7] * b[1] + rm[8] * b[2])
        w0 = c[C_BIAS_W_MOTION]
        w1 = w0
        w2 = c[C_BIAS_W_VERTICAL]
    else:
        update = False
        e0 = e1 = e2 = 0.0
        w0 = w1 = w2 = 0.0
        rm = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

    # prediction: the bias may drift (variance grows up to the initial variance)
    p0 = c[C_BIAS_P0]
    v = c[C_BIAS_V]
    for k in (0, 4, 8):
        if s[S_P + k] < p0:
            s[S_P + k] += v
    if not update:
        return
    clip = c[C_BIAS_CLIP]
    e0 = _clip(e0, clip)
    e1 = _clip(e1, clip)
    e2 = _clip(e2, clip)
    p = (s[S_P], s[S_P + 1], s[S_P + 2], s[S_P + 3], s[S_P + 4], s[S_P + 5], s[S_P + 6], s[S_P + 7], s[S_P + 8])
    prt = _mm(p, _mt(rm))
    sm = _mm(rm, prt)
    sm = (sm[0] + w0, sm[1], sm[2], sm[3], sm[4] + w1, sm[5], sm[6], sm[7], sm[8] + w2)
    _, si = _minv(sm)
    k = _mm(prt, si)
    nb0 = b[0] + k[0] * e0 + k[1] * e1 + k[2] * e2
    nb1 = b[1] + k[3] * e0 + k[4] * e1 + k[5] * e2
    nb2 = b[2] + k[6] * e0 + k[7] * e1 + k[8] * e2
    krp = _mm(_mm(k, rm), p)
    for j in range(9):
        s[S_P + j] = p[j] - krp[j]
    s[S_BIAS] = _clip(nb0, clip)
    s[S_BIAS + 1] = _clip(nb1, clip)
    s[S_BIAS + 2] = _clip(nb2, clip)


@jit
def _vqf_bias_sigma(c, s):
    """Upper bound (Gershgorin) of the bias standard deviation, rad/s."""
    m = 0.0
    for r in range(3):
        t = abs(s[S_P + 3 * r]) + abs(s[S_P + 3 * r + 1]) + abs(s[S_P + 3 * r + 2])
        if t > m:
            m = t
    return math.sqrt(min(m, c[C_BIAS_P0]))


@jit
def _vqf_quat(s):
    """6D orientation = correction ⊗ strapdown."""
    return _qmul(s[S_QA], s[S_QA + 1], s[S_QA + 2], s[S_QA + 3], s[S_QG], s[S_QG + 1], s[S_QG + 2], s[S_QG + 3])


@jit
def vqf_step(gyr, acc, coeffs, state, out_quat):
    """One sample. gyr, acc (3,); out_quat (4,). Returns the rest flag."""
    _vqf_gyr(gyr[0], gyr[1], gyr[2], coeffs, state)
    _vqf_acc(acc[0], acc[1], acc[2], coeffs, state)
    q = _vqf_quat(state)
    for k in range(4):
        out_quat[k] = q[k]
    return state[S_REST] != 0.0


@jit
def vqf_run(gyr, acc, coeffs, state, out_quat, out_bias, out_bias_sigma, out_rest):
    """A block. gyr, acc (N, 3); out_quat (N, 4); out_bias (N, 3) rad/s;
    out_bias_sigma (N,) rad/s; out_rest (N,) bool."""
    for i in range(gyr.shape[0]):
        _vqf_gyr(gyr[i, 0], gyr[i, 1], gyr[i, 2], coeffs, state)
        _vqf_acc(acc[i, 0], acc[i, 1], acc[i, 2], coeffs, state)
        q = _vqf_quat(state)
        out_quat[i, 0] = q[0]
        out_quat[i, 1] = q[1]
        out_quat[i, 2] = q[2]
        out_quat[i, 3] = q[3]
        out_bias[i, 0] = state[S_BIAS]
        out_bias[i, 1] = state[S_BIAS + 1]
        out_bias[i, 2] = state[S_BIAS + 2]
        out_bias_sigma[i] = _vqf_bias_sigma(coeffs, state)
        out_rest[i] = state[S_REST] != 0.0


# --------------------------------------------------------------------------------------
# Offline (non-causal) VQF-class estimate
# --------------------------------------------------------------------------------------


@jit
def _p_inverse(s):
    p = (s[S_P], s[S_P + 1], s[S_P + 2], s[S_P + 3], s[S_P + 4], s[S_P + 5], s[S_P + 6], s[S_P + 7], s[S_P + 8])
    return _minv(p)[1]


@jit
def _lowpass_series(x, c, out):
    """Causal run of the accelerometer low-pass over x (N, 3) into out (N, 3), same start-up as
    the streaming filter (mean of the first tau seconds)."""
    b0, b1, b2, a1, a2 = c[C_ACC_B], c[C_ACC_B + 1], c[C_ACC_B + 2], c[C_ACC_A], c[C_ACC_A + 1]
    s = np.zeros(4 * 3 + 1 + 3)
    for i in range(x.shape[0]):
        s[0], s[1], s[2] = x[i, 0], x[i, 1], x[i, 2]
        _lp_block(s, 0, 3, 3, b0, b1, b2, a1, a2, c[C_TAU_ACC], c[C_DT])
        out[i, 0], out[i, 1], out[i, 2] = s[3], s[4], s[5]


@jit
def _lowpass_backward(x, c):
    """Anti-causal pass in place over x (N, 3), started in steady state at the last sample."""
    b0, b1, b2, a1, a2 = c[C_ACC_B], c[C_ACC_B + 1], c[C_ACC_B + 2], c[C_ACC_A], c[C_ACC_A + 1]
    n = x.shape[0]
    for k in range(3):
        y0 = x[n - 1, k]
        z0 = y0 * (1.0 - b0)
        z1 = y0 * (b2 - a2)
        for i in range(n - 1, -1, -1):
            xi = x[i, k]
            y = b0 * xi + z0
            z0 = b1 * xi - a1 * y + z1
            z1 = b2 * xi - a2 * y
            x[i, k] = y


@jit
def vqf_offline_run(gyr, acc, coeffs, state_fwd, state_bwd, out_quat, out_bias, out_bias_sigma, out_rest):
    """Whole-recording (non-causal) estimate.

    1. Run the causal filter forwards (``state_fwd``) and backwards in time (``state_bwd``,
       negated gyro) and fuse the two bias estimates per sample by their covariances.
    2. Integrate the gyro minus that bias; rotate the accelerometer into the resulting
       almost-inertial frame and low-pass it forwards and backwards (zero phase).
    3. Rotate each strapdown orientation so the filtered accelerometer points up.

    gyr, acc (N, 3); out_quat (N, 4); out_bias (N, 3) rad/s; out_bias_sigma (N,) rad/s;
    out_rest (N,) bool (rest in either direction). ``state_fwd``/``state_bwd`` are fresh
    states (see :func:`vqf_reset`) and are consumed.
    """
    n = gyr.shape[0]
    pinv = np.empty((n, 9))
    q = np.empty(4)
    for i in range(n):
        _vqf_gyr(gyr[i, 0], gyr[i, 1], gyr[i, 2], coeffs, state_fwd)
        _vqf_acc(acc[i, 0], acc[i, 1], acc[i, 2], coeffs, state_fwd)
        out_bias[i, 0] = state_fwd[S_BIAS]
        out_bias[i, 1] = state_fwd[S_BIAS + 1]
        out_bias[i, 2] = state_fwd[S_BIAS + 2]
        out_rest[i] = state_fwd[S_REST] != 0.0
        pi = _p_inverse(state_fwd)
        for j in range(9):
            pinv[i, j] = pi[j]
    for i in range(n - 1, -1, -1):
        _vqf_gyr(-gyr[i, 0], -gyr[i, 1], -gyr[i, 2], coeffs, state_bwd)
        _vqf_acc(acc[i, 0], acc[i, 1], acc[i, 2], coeffs, state_bwd)
        out_rest[i] = out_rest[i] or state_bwd[S_REST] != 0.0
        p2 = _p_inverse(state_bwd)
        p1 = (pinv[i, 0], pinv[i, 1], pinv[i, 2], pinv[i, 3], pinv[i, 4], pinv[i, 5], pinv[i, 6], pinv[i, 7],
              pinv[i, 8])
        b1 = (out_bias[i, 0], out_bias[i, 1], out_bias[i, 2])
        # the backward filter sees the negated rate, so its bias estimate is −b
        b2 = (-state_bwd[S_BIAS], -state_bwd[S_BIAS + 1], -state_bwd[S_BIAS + 2])
        y0 = p1[0] * b1[0] + p1[1] * b1[1] + p1[2] * b1[2] + p2[0] * b2[0] + p2[1] * b2[1] + p2[2] * b2[2]
        y1 = p1[3] * b1[0] + p1[4] * b1[1] + p1[5] * b1[2] + p2[3] * b2[0] + p2[4] * b2[1] + p2[5] * b2[2]
        y2 = p1[6] * b1[0] + p1[7] * b1[1] + p1[8] * b1[2] + p2[6] * b2[0] + p2[7] * b2[1] + p2[8] * b2[2]
        info = (p1[0] + p2[0], p1[1] + p2[1], p1[2] + p2[2], p1[3] + p2[3], p1[4] + p2[4], p1[5] + p2[5],
                p1[6] + p2[6], p1[7] + p2[7], p1[8] + p2[8])
        _, pc = _minv(info)
        out_bias[i, 0] = pc[0] * y0 + pc[1] * y1 + pc[2] * y2
        out_bias[i, 1] = pc[3] * y0 + pc[4] * y1 + pc[5] * y2
        out_bias[i, 2] = pc[6] * y0 + pc[7] * y1 + pc[8] * y2
        m = 0.0
        for r in range(3):
            t = abs(pc[3 * r]) + abs(pc[3 * r + 1]) + abs(pc[3 * r + 2])
            if t > m:
                m = t
        out_bias_sigma[i] = math.sqrt(min(m, coeffs[C_BIAS_P0]))

    # strapdown integration with the fused bias; accelerometer in the almost-inertial frame
    dt = coeffs[C_DT]
    acc_i = np.empty((n, 3))
    q[0], q[1], q[2], q[3] = 1.0, 0.0, 0.0, 0.0
    for i in range(n):
        wx = gyr[i, 0] - out_bias[i, 0]
        wy = gyr[i, 1] - out_bias[i, 1]
        wz = gyr[i, 2] - out_bias[i, 2]
        wn = math.sqrt(wx * wx + wy * wy + wz * wz)
        if wn > 2.220446049250313e-16:
            half = 0.5 * wn * dt
            sk = math.sin(half) / wn
            r = _qmul(q[0], q[1], q[2], q[3], math.cos(half), sk * wx, sk * wy, sk * wz)
            r = _qnormalize(r[0], r[1], r[2], r[3])
            q[0], q[1], q[2], q[3] = r[0], r[1], r[2], r[3]
        out_quat[i, 0], out_quat[i, 1], out_quat[i, 2], out_quat[i, 3] = q[0], q[1], q[2], q[3]
        acc_i[i, 0], acc_i[i, 1], acc_i[i, 2] = _qrotate(q[0], q[1], q[2], q[3], acc[i, 0], acc[i, 1], acc[i, 2])

    # zero-phase low-pass in the almost-inertial frame
    acc_f = np.empty((n, 3))
    _lowpass_series(acc_i, coeffs, acc_f)
    _lowpass_backward(acc_f, coeffs)

    # inclination correction sample by sample
    qa = (1.0, 0.0, 0.0, 0.0)
    for i in range(n):
        ex, ey, ez = _qrotate(qa[0], qa[1], qa[2], qa[3], acc_f[i, 0], acc_f[i, 1], acc_f[i, 2])
        en = math.sqrt(ex * ex + ey * ey + ez * ez)
        if en >= 2.220446049250313e-16:
            ex /= en
            ey /= en
            ez /= en
        cw, cx, cy, cz = _tilt_quat(ex, ey, ez)
        qa = _qmul(cw, cx, cy, cz, qa[0], qa[1], qa[2], qa[3])
        qa = _qnormalize(qa[0], qa[1], qa[2], qa[3])
        r = _qmul(qa[0], qa[1], qa[2], qa[3], out_quat[i, 0], out_quat[i, 1], out_quat[i, 2], out_quat[i, 3])
        out_quat[i, 0], out_quat[i, 1], out_quat[i, 2], out_quat[i, 3] = r[0], r[1], r[2], r[3]
