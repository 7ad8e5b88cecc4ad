"""Synthetic notification streams per family, encoded from the documented layouts.

Used by the fuzz tests (seed corpus), the decode benchmark and emulated sensors. Each stream is
a plausible IMU at rest with noise, at the family's highest real-time rate, with continuous
device timestamps where the family has a clock.
"""
from __future__ import annotations

import struct
from typing import Any

import numpy as np

from . import lumbar_ref, polar_pmd

__all__ = ["stream_payloads", "polar_delta_content"]


def _motion(rng: np.random.Generator, n: int, acc_scale: float, gyro_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Acc (g) and gyro (dps) for n samples of a slowly swaying sensor, in counts per unit scale."""
    t = np.arange(n)
    acc = np.stack([0.05 * np.sin(t / 50), 0.03 * np.cos(t / 70), np.ones(n)], 1) + rng.normal(0, 0.01, (n, 3))
    gyro = np.stack([5 * np.sin(t / 40), 3 * np.cos(t / 60), np.zeros(n)], 1) + rng.normal(0, 0.5, (n, 3))
    return np.rint(acc * acc_scale).astype(np.int64), np.rint(gyro * gyro_scale).astype(np.int64)


def polar_delta_content(samples: np.ndarray, resolution: int = 16, block: int = 255) -> bytes:
    """Delta-compress integer samples (M, C) into a PMD frame content (reference + blocks)."""
    s = np.asarray(samples, np.int64)
    width = (resolution + 7) // 8
    out = bytearray()
    for v in s[0]:
        out += int(v & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
    d = np.diff(s, axis=0)
    for i in range(0, len(d), block):
        part = d[i : i + block]
        w = 1
        while np.any(part < -(1 << (w - 1))) or np.any(part >= 1 << (w - 1)):
            w += 1
        vals = (part.reshape(-1) & ((1 << w) - 1)).astype(np.int64)
        bits = ((vals[:, None] >> np.arange(w)) & 1).astype(np.uint8).reshape(-1)
        out += bytes([w, len(part)]) + np.packbits(bits, bitorder="little").tobytes()
    return bytes(out)


def stream_payloads(family: str, n_packets: int, seed: int = 0) -> tuple[list[bytes], dict[str, Any], int]:
    """A continuous stream of ``n_packets`` notifications.

    Returns
    -------
    payloads : list of bytes
    context : dict
        Keyword arguments for the family's ``new_stream``.
    n_samples : int
        Acc+gyro sample pairs the stream carries (for throughput figures).
    """
    rng = np.random.default_rng(seed)
    if family == "lumbar_ref":
        n, period = 19, 625  # MTU 247, 1600 Hz
        acc, gyro = _motion(rng, n * n_packets, 32768 / 8, 32768 / 2000)
        counts = np.concatenate([acc, gyro], 1).astype(np.int16)
        out = [lumbar_ref.encode_packet(k * n, 10**6 + k * n * period, period, 2, 4, counts[k * n : (k + 1) * n])
               for k in range(n_packets)]
        return out, {}, n * n_packets
    if family == "polar_pmd":
        n, rate = 36, 416.0  # ACC and GYRO frames alternate, 36 samples each
        half = max(1, n_packets // 2)
        acc, gyro = _motion(rng, n * half, 1 / 2.44e-4, 1 / 0.061)
        out = []
        for k in range(half):
            ts = 800_000_000_000_000_000 + int((k + 1) * n * 1e9 / rate)
            for mtype, data in ((polar_pmd.ACC, acc), (polar_pmd.GYRO, gyro)):
                content = polar_delta_content(data[k * n : (k + 1) * n])
                out.append(bytes([mtype]) + ts.to_bytes(8, "little") + b"\x80" + content)
        ctx = {"acc_rate_hz": rate, "gyro_rate_hz": rate, "acc_factor": 2.44e-4, "gyro_factor": 0.061}
        return out, ctx, n * half
    if family == "movella_dot":
        acc, gyro = _motion(rng, n_packets, 1000, 1000)
        out = [struct.pack("<I6f", (1_000_000 + k * 16667) % 2**32, *(acc[k] / 1000 * 9.81), *(gyro[k] / 1000)) + bytes(12)
               for k in range(n_packets)]
        return out, {"payload_mode": 21, "rate_hz": 60.0}, n_packets
    if family == "metawear":
        half = max(1, n_packets // 2)
        acc, gyro = _motion(rng, 3 * half, 2048, 16.4)
        out = []
        for k in range(half):
            out.append(b"\x03\x1c" + acc[3 * k : 3 * k + 3].astype("<i2").tobytes())
            out.append(b"\x13\x07" + gyro[3 * k : 3 * k + 3].astype("<i2").tobytes())
        return out, {"chip": "bmi160", "acc_range_g": 16.0, "gyro_range_dps": 2000.0, "rate_hz": 100.0}, 3 * half
    if family == "witmotion_ble5":
        acc, gyro = _motion(rng, n_packets, 32768 / 16, 32768 / 2000)
        out = [b"\x55\x61" + np.concatenate([acc[k], gyro[k], [100, -200, 300]]).astype("<i2").tobytes() for k in range(n_packets)]
        return out, {"rate_hz": 50.0}, n_packets
    if family == "thingy52":
        acc, gyro = _motion(rng, n_packets, 1024, 32)
        out = [np.concatenate([acc[k], gyro[k], [160, -320, 480]]).astype("<i2").tobytes() for k in range(n_packets)]
        return out, {"rate_hz": 200.0}, n_packets
    if family == "movesense_gsp":
        n, rate = 8, 208.0
        acc, gyro = _motion(rng, n * n_packets, 1000, 1000)
        out = []
        for k in range(n_packets):
            ts = (1000 + round(k * n * 1000 / rate)) % 2**32
            body = np.concatenate([acc[k * n : (k + 1) * n] / 1000 * 9.81, gyro[k * n : (k + 1) * n] / 1000]).astype("<f4")
            out.append(bytes([2, 99]) + ts.to_bytes(4, "little") + body.tobytes())
        return out, {"kind": "IMU6", "rate_hz": rate, "ref": 99}, n * n_packets
    raise KeyError(family)
