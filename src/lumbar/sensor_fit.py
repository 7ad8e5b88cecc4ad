"""Is a sensor worn as the calibration assumes? Checks on the signals of a task, light enough for the live view.

A static calibration finds each sensor's vertical from gravity and takes its front as the direction the sensor
faces; a thigh sensor worn turned 180° about its long axis (its front facing back) cannot be told from one
worn correctly while standing still, and it runs the hip angle backwards. A task where the pelvis and the hip
move in a known relation shows it: rocking backward on all fours tilts the pelvis back while it flexes the
hips, so there a hip angle that moves *with* the pelvis comes from a turned sensor. The offline analysis
(``lumbar.analysis.check_thighs``) and the assessment's live trial monitor judge with the same functions.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["THIGH_AGREEMENT_R", "thigh_turned", "thigh_expected_sign", "turned_thigh_warning"]

DEG = math.pi / 180.0

#: A hip angle that moves with the plan's stand-in for it this clearly (|r|), with the sign the plans forbid,
#: comes from a thigh sensor worn turned.
THIGH_AGREEMENT_R = 0.5


def thigh_turned(hip: np.ndarray, standin: np.ndarray, expected_sign: int) -> float | None:
    """The correlation r of a thigh's hip angle with the plan's stand-in for it (the angle ``with_thighs``
    replaces: the pelvic tilt) over a task, both rad, (N,) with NaN gaps, when it says the thigh sensor is worn
    turned (its front facing back, which a static calibration cannot tell): r against ``expected_sign`` (the
    sign the plans give the two, :func:`thigh_expected_sign`) with |r| ≥ :data:`THIGH_AGREEMENT_R`. None
    otherwise, and when either angle hardly moves (a still thigh, as in the waiter's bow, is not judged). The
    offline analysis (``lumbar.analysis.check_thighs``) and the live trial monitor judge with this."""
    ok = np.isfinite(hip) & np.isfinite(standin)
    a, b = hip[ok], standin[ok]
    if a.size < 10 or np.ptp(a) < 5 * DEG or np.ptp(b) < 2 * DEG:
        return None
    r = float(np.corrcoef(a, b)[0, 1])
    return r if r * expected_sign <= -THIGH_AGREEMENT_R else None


def thigh_expected_sign(first_sign: int | None, with_thighs: dict | None) -> int:
    """The sign of the relation between the hip angle and its stand-in that a plan implies: its first
    excursion's sign (``first_sign``) times that of ``with_thighs`` (rocking backward tilts the pelvis back
    while it flexes the hips: −1)."""
    return (first_sign or 1) * ((with_thighs or {}).get("first_sign") or 1)


def turned_thigh_warning(thigh: str) -> str:
    """What the operator reads about a thigh sensor (``thigh_left``…) worn back to front, and what to do."""
    side = thigh.replace("thigh_", "")
    return (f"{side.capitalize()} thigh sensor seems worn back to front: its hip angle runs the wrong way, so it "
            "is not used. Refit it facing forward before the next trial.")
