"""Every case of the shared ``metric_cases.json`` rebuilt from its description and checked at its tolerance.

Each builder constructs the input exactly as the case's ``input.description``/``parameters`` say and
returns the computed value(s) in the case's unit (degrees converted here, at the test boundary).
Nothing expected is hard-coded: the expected value and tolerance come from the file.
"""
from __future__ import annotations

import json
import math
from typing import Any, Callable

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from lumbar import conventions as cv
from lumbar.metrics import repetitions as rep
from lumbar.metrics import segmental as seg
from lumbar.metrics import smoothness as sm
from lumbar.metrics import sway as sw

D = math.radians
Case = dict[str, Any]
BUILDERS: dict[str, Callable[[Case], Any]] = {}


def builds(*ids: str) -> Callable:
    def deco(f: Callable[[Case], Any]) -> Callable[[Case], Any]:
        for i in ids:
            BUILDERS[i] = f
        return f

    return deco


# ---------------------------------------------------------------------------------------------- SM


def _sparc_kw(case: Case) -> dict[str, float]:
    p = case["input"]["parameters"]
    return dict(padlevel=p["padlevel"], fc_hz=p["fc_hz"], amp_th=p["amp_th"])


def _gauss_centered() -> np.ndarray:  # v = exp(-5 t²), t = -1 + 0.01 k, k = 0..199
    t = -1.0 + 0.01 * np.arange(200)
    return np.exp(-5.0 * t**2)


def _min_jerk(amp: float, dur: float, fs: float) -> np.ndarray:  # k = 0..T·fs inclusive
    tau = np.arange(int(round(dur * fs)) + 1) / fs / dur
    return amp * (30 * tau**4 - 60 * tau**3 + 30 * tau**2)


def _gauss_loc() -> np.ndarray:  # exp(-(5 (t-0.5)/1.0)^2), t = 0.01 k, k = 0..99
    t = 0.01 * np.arange(100)
    return np.exp(-((5.0 * (t - 0.5) / 1.0) ** 2))


def _two_gauss() -> np.ndarray:
    t = 0.01 * np.arange(150)
    return np.exp(-((5 * (t - 0.25) / 0.5) ** 2)) + np.exp(-((5 * (t - 1.25) / 0.5) ** 2))


MJ = {"SM-04": (1, 1, 100), "SM-05": (1, 1, 1000), "SM-06": (1, 2, 100), "SM-07": (5, 1, 100),
      "SM-08": (1, 1, 100), "SM-09": (1, 1, 1000), "SM-10": (1, 2, 100), "SM-11": (5, 1, 100), "SM-13": (1, 1, 100)}

builds("SM-01")(lambda c: sm.sparc(_gauss_centered(), 100.0, **_sparc_kw(c)))
builds("SM-02")(lambda c: sm.ldlj(_gauss_centered(), 100.0))
builds("SM-03")(lambda c: sm.dimensionless_jerk(_gauss_centered(), 100.0))
builds("SM-04", "SM-05", "SM-06", "SM-07", "SM-13")(
    lambda c: sm.sparc(_min_jerk(*MJ[c["id"]]), MJ[c["id"]][2], **_sparc_kw(c)))
builds("SM-08", "SM-09", "SM-10", "SM-11")(lambda c: sm.ldlj(_min_jerk(*MJ[c["id"]]), MJ[c["id"]][2]))
builds("SM-12")(lambda c: sm.ldlj(_min_jerk(1, 1, c["input"]["parameters"]["fs_hz_for_numeric_check"]),
                                  c["input"]["parameters"]["fs_hz_for_numeric_check"]))
builds("SM-14")(lambda c: sm.sparc(_gauss_loc(), 100.0, **_sparc_kw(c)))
builds("SM-15")(lambda c: sm.ldlj(_gauss_loc(), 100.0))
builds("SM-16")(lambda c: sm.sparc(_two_gauss(), 100.0, **_sparc_kw(c)))
builds("SM-17")(lambda c: sm.ldlj(_two_gauss(), 100.0))

# ---------------------------------------------------------------------------------------------- SW
FS = 100.0
T3000 = np.arange(3000) / FS


def _sine() -> np.ndarray:  # a_AP = 0.05 sin(2π·1·t), a_ML = 0; no filtering
    return 0.05 * np.sin(2 * np.pi * 1.0 * T3000)


def _circle() -> tuple[np.ndarray, np.ndarray]:
    return 0.05 * np.sin(2 * np.pi * 0.5 * T3000), 0.05 * np.cos(2 * np.pi * 0.5 * T3000)


def _points20() -> tuple[np.ndarray, np.ndarray]:
    k = np.arange(20)
    return np.cos(2 * np.pi * k / 20), np.sin(2 * np.pi * k / 20)


def _two_tone() -> np.ndarray:
    return 2 * np.sin(2 * np.pi * 0.5 * T3000) + np.sin(2 * np.pi * 1.5 * T3000)


def _spec(x: np.ndarray) -> Any:  # periodogram, rectangular window, band 0.15–5 Hz
    return sw.spectral_measures(x, FS, method="periodogram", band_hz=(0.15, 5.0))


builds("SW-01")(lambda c: sw.axis_sway(_sine(), FS).rms)
builds("SW-02")(lambda c: sw.axis_sway(_sine(), FS).range)
builds("SW-03")(lambda c: sw.axis_sway(_sine(), FS).path)
builds("SW-04")(lambda c: sw.axis_sway(_sine(), FS).mvelo)
builds("SW-05")(lambda c: sw.axis_sway(_sine(), FS).jerk)
builds("SW-06")(lambda c: sw.axis_sway(_sine(), FS).mv)
builds("SW-07")(lambda c: sw.axis_sway(_sine(), FS).mfreq)
builds("SW-08")(lambda c: sw.planar_sway(*_circle(), FS).mdist)
builds("SW-09")(lambda c: sw.planar_sway(*_circle(), FS).path)
builds("SW-10")(lambda c: sw.planar_sway(*_circle(), FS).area_sw)
builds("SW-11")(lambda c: sw.planar_sway(*_circle(), FS).mfreq)
builds("SW-12")(lambda c: sw.area_cc(*_circle(), z=c["input"]["parameters"]["z"]))
builds("SW-13")(lambda c: sw.planar_sway(*_circle(), FS).area_ce)
builds("SW-14")(lambda c: sw.area_ce(0.02 * np.sin(np.pi * T3000), 0.04 * np.cos(np.pi * T3000)))
builds("SW-15")(lambda c: sw.area_ce(*_points20()))
builds("SW-16")(lambda c: sw.area_chi2(*_points20()))
builds("SW-17")(lambda c: sw.area_prediction(*_points20()))
builds("SW-18")(lambda c: _spec(_two_tone()).power)
builds("SW-19")(lambda c: _spec(_two_tone()).cf)
builds("SW-20")(lambda c: _spec(_two_tone()).fd)
builds("SW-21")(lambda c: _spec(_two_tone()).f50)
builds("SW-22")(lambda c: _spec(_two_tone()).f95)
builds("SW-23")(lambda c: _spec(0.05 * np.sin(2 * np.pi * 0.8 * T3000)).cf)
builds("SW-24")(lambda c: _spec(0.05 * np.sin(2 * np.pi * 0.8 * T3000)).fd)


# ---------------------------------------------------------------------------------------------- TC


def _tilted() -> sw.TiltCorrected:
    g, th = 9.81, D(10)  # the case's g
    a_h = 0.1 * np.sin(2 * np.pi * 0.5 * T3000)
    acc = np.column_stack([a_h * np.cos(th) + g * np.sin(th), -a_h * np.sin(th) + g * np.cos(th), 0 * a_h])
    return sw.tilt_correct_static(acc, g=g, axes=(0, 2, 1))  # columns: AP, vertical, ML


builds("TC-01")(lambda c: math.degrees(_tilted().tilt_ap))
builds("TC-02")(lambda c: sw.rms(_tilted().ap))
builds("TC-03")(lambda c: float(np.mean(_tilted().ap)))


# --------------------------------------------------------------------------------------------- CAL
# Calibration is lumbar.calibration (another package); the cases are rebuilt here so that this
# suite covers every case of the file.


def _cal_mounting() -> np.ndarray:
    return cv.rot_y(D(20)) @ cv.rot_x(D(10))  # R_SB as in the case


@builds("CAL-01")
def _cal01(c: Case) -> float:
    from lumbar.calibration import gyro_bias

    t = np.arange(1000) / FS
    w = np.column_stack([0.01 + 0.002 * np.sin(2 * np.pi * 1.0 * t), 0 * t, 0 * t])
    return float(gyro_bias(w)[0])


def _calibrate() -> tuple[Any, np.ndarray]:
    from lumbar.calibration import calibrate_segment

    r_sb = _cal_mounting()
    t = np.arange(1000) / FS  # 0..9.99 s
    w_b = np.column_stack([0 * t, 0 * t, np.sin(np.pi * t)])  # rotation about the segment Z axis only
    alpha = (1 - np.cos(np.pi * t)) / np.pi  # its angle, for a consistent accelerometer
    up_b = 9.81 * np.column_stack([np.sin(alpha), np.cos(alpha), 0 * t])  # Rz(α)ᵀ (0, g, 0)
    static_acc = np.tile(r_sb.T @ np.array([0.0, 9.81, 0.0]), (500, 1))
    cal = calibrate_segment(static_acc, np.zeros((500, 3)), up_b @ r_sb, w_b @ r_sb, rate_hz=FS)
    return cal, r_sb


@builds("CAL-02")
def _cal02(c: Case) -> float:
    cal, r_sb = _calibrate()
    z_true = r_sb.T @ np.array([0.0, 0.0, 1.0])
    return math.degrees(math.acos(min(1.0, abs(float(cal.r_sb[2] @ z_true)))))  # sign chosen to match


builds("CAL-03")(lambda c: float(_calibrate()[0].r_sb[1][2]))


# --------------------------------------------------------------------------------------------- SEG


def _r_lum_quats() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r_pelvis = cv.rot_z(D(-20))
    r_upper = r_pelvis @ cv.rot_z(D(-30)) @ cv.rot_x(D(10)) @ cv.rot_y(D(5))
    return cv.matrix_to_quat(r_upper)[None], cv.matrix_to_quat(r_pelvis)[None], r_pelvis.T @ r_upper


def _seg_angles() -> np.ndarray:
    from lumbar.kinematics import lumbar_angles

    q_up, q_low, _ = _r_lum_quats()
    return np.degrees(lumbar_angles(q_up, q_low, calib_index=None)[0])


builds("SEG-01")(lambda c: _seg_angles()[0])
builds("SEG-02")(lambda c: _seg_angles()[1])
builds("SEG-03")(lambda c: _seg_angles()[2])


@builds("SEG-04")
def _seg04(c: Case) -> float:
    wrong = math.degrees(Rotation.from_matrix(_r_lum_quats()[2]).as_euler("zxy")[0])
    alpha = -_seg_angles()[0]  # flexion = −α with the project's Z–X′–Y″ sequence
    assert abs(wrong - alpha) > 0.1  # the wrong sequence gives a different first angle
    return wrong


builds("SEG-05")(lambda c: seg.lumbar_contribution(50.0, 40.0))
builds("SEG-06")(lambda c: seg.lumbar_pelvic_ratio(50.0, 40.0))


def _bend_rhythm() -> Any:
    t = np.arange(201) / FS  # 0..2 s
    lum = D(1) * np.interp(t, [0, 1, 2], [0, 30, 50])
    pel = D(1) * np.interp(t, [0, 1, 2], [0, 10, 40])
    return seg.lumbo_pelvic_rhythm(lum, pel, binning="time", edges=(0.0, 0.5, 1.0))


builds("SEG-07")(lambda c: _bend_rhythm().bin_contribution_pct[0])
builds("SEG-08")(lambda c: _bend_rhythm().bin_contribution_pct[1])

# --------------------------------------------------------------------------------------------- CRP
T20 = np.arange(2000) / FS


def _crp_xy() -> tuple[np.ndarray, np.ndarray]:
    x = 30 * np.sin(2 * np.pi * 0.5 * T20)
    y = 10 * np.sin(2 * np.pi * 0.5 * T20 - D(30)) + 5
    return np.radians(x), np.radians(y)


builds("CRP-01")(lambda c: math.degrees(seg.crp_hilbert(*_crp_xy(), discard=0.1).mean))
builds("CRP-02")(lambda c: math.degrees(seg.crp_hilbert(*_crp_xy(), discard=0.1).sd))
builds("CRP-03")(lambda c: math.degrees(seg.crp_hilbert(*_crp_xy(), discard=0.1).marp))
builds("CRP-04")(lambda c: math.degrees(seg.crp_phase_plane(*_crp_xy(), FS, discard=0.1).mean))
builds("CRP-05")(lambda c: math.degrees(seg.crp_hilbert(_crp_xy()[0], -_crp_xy()[1], discard=0.1).marp))


def _xc() -> Any:
    t = np.arange(1000) / FS
    return seg.cross_correlation(np.exp(-(((t - 5) / 0.5) ** 2)), np.exp(-(((t - 5.2) / 0.5) ** 2)), FS,
                                 max_lag_s=1.0)


builds("XC-01")(lambda c: _xc().lag_s)
builds("XC-02")(lambda c: _xc().r_max)

# --------------------------------------------------------------------------------------------- REP
T40 = np.arange(4001) / FS


def _flexion(ripple: bool = False) -> np.ndarray:
    th = 25 * (1 - np.cos(2 * np.pi * T40 / 4))
    if ripple:
        th = th + 3 * np.sin(2 * np.pi * 5 * T40)
    return np.radians(th)


def _reps(case: Case, ripple: bool = False) -> Any:
    p = case["input"]["parameters"]
    lo, hi = D(p.get("lower_threshold_deg", 10)), D(p.get("upper_threshold_deg", 30))
    return rep.segment_repetitions(_flexion(ripple), FS, lo=lo, hi=hi)  # project-default preprocessing


builds("REP-01")(lambda c: _reps(c).count)
builds("REP-02")(lambda c: np.degrees(_reps(c).values("rom")))
builds("REP-03")(lambda c: _reps(c).values("duration_s"))
builds("REP-04")(lambda c: np.degrees(_reps(c).values("peak_velocity_out")))
builds("REP-05")(lambda c: _reps(c, ripple=True).count)
builds("REP-06")(lambda c: rep.threshold_crossings(np.degrees(_flexion(True)), c["input"]["parameters"]["threshold_deg"]))
builds("REP-07")(lambda c: rep.coefficient_of_variation([40, 45, 50, 55, 60], ddof=c["input"]["parameters"]["sd_ddof"]))
builds("REP-08")(lambda c: rep.dtw_distance([0, 1, 2, 3, 2, 1, 0], [0, 0, 1, 2, 3, 3, 2, 1, 0])[0])
builds("REP-09")(lambda c: rep.dtw_distance([0, 1, 2, 3, 2, 1, 0], [1, 2, 3, 4, 3, 2, 1])[0])
builds("REP-10")(lambda c: rep.symmetry_index(22.0, 18.0).si_pct)


# ------------------------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def cases(shared_dir) -> dict[str, Case]:
    data = json.loads((shared_dir / "docs" / "metric_cases.json").read_text(encoding="utf-8"))
    return {c["id"]: c for c in data["cases"]}


def test_every_case_has_a_builder(cases):
    missing = sorted(set(cases) - set(BUILDERS))
    assert not missing, f"metric cases without a test: {missing}"


@pytest.mark.parametrize("case_id", sorted(BUILDERS))
def test_metric_case(cases, case_id):
    if case_id not in cases:
        pytest.skip(f"{case_id} is not in this version of metric_cases.json")
    case = cases[case_id]
    assert case["tolerance_type"] == "absolute"
    got = np.atleast_1d(np.asarray(BUILDERS[case_id](case), dtype=np.float64))
    err = np.max(np.abs(got - case["expected"]))
    assert err <= case["tolerance"], f"{case_id} ({case['metric']}): got {got}, expected {case['expected']}"
