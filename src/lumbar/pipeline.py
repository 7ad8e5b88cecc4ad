"""Offline processing of a session: common time grid → orientation → calibration → segment angles.

The stages are the library's own (``lumbar.sync``, ``lumbar.filters``, ``lumbar.calibration``,
``lumbar.kinematics``); this module only composes them and decides which samples serve as
calibration trials:

* **Static trial**: between the events ``calibration_start`` (or ``trial_start``, or time 0) and
  ``calibration_end``; without such events, the first rest period of ≥ 2 s in the first 15 s (in a
  quiet-standing trial whose sway is too large for the rest detector: its first 5 s).
* **Functional trial** (forward bends, for the mediolateral axis): between ``functional_start`` and
  ``functional_end`` events; or, in a forward-flexion session, the bends after the static trial.
  Without one, the calibration is *static only*: the vertical axis comes from gravity and the sensor
  is assumed mounted with its axes along the segment's (documented in ``docs/conventions.md``).
  Forward bends turn the trunk's segments only (:data:`FUNCTIONAL_SEGMENTS`): a thigh sensor stays
  still in them, so it is calibrated static only (with a note), not refused for not moving.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lumbar import kinematics
from lumbar.calibration import (SegmentCalibration, calibrate_segment, detect_static, segment_kind,
                                static_only_calibration)
from lumbar.errors import CalibrationError, ValidationError
from lumbar.protocols.schema import SIGNALS
from lumbar.storage.reader import Session
from lumbar.sync import to_common_grid
from lumbar.types import SHANKS, THIGH_OF, THIGHS, Event

__all__ = ["Processed", "process_session", "calibration_windows", "static_only_calibration"]

#: Movements whose repetitions double as a functional calibration (forward bends).
FUNCTIONAL_MOVEMENTS = ("flexion", "waiters-bow")
UPPER, LOWER = "lumbar", "sacrum"
#: The sensors a forward bend turns about their mediolateral axis (the thighs stay vertical in it).
FUNCTIONAL_SEGMENTS = (UPPER, LOWER)
#: Protocols that are quiet standing throughout: without a marker, the first QUIET_STATIC_S seconds
#: are the static trial if the rest detector finds none (large sway).
QUIET_PROTOCOLS = ("quiet-standing",)
QUIET_STATIC_S = 5.0


@dataclass
class Processed:
    """Derived signals of a session on one time grid.

    Attributes
    ----------
    rate_hz : float
    time_s : ndarray (N,)
        Common grid, s.
    flags : dict of str to ndarray (N,) uint8
        Grid flags per sensor (interpolated, inside a gap, saturated).
    quat_sensor, quat_segment : dict of str to ndarray (N, 4)
        Sensor and segment orientations (w, x, y, z), earth z up; heading free per sensor.
    calibration : dict of str to SegmentCalibration
    calibration_kind : dict of str to str
        ``"static+functional"`` or ``"static only"``.
    static_window : slice
        Samples of the static calibration posture (angles are zero there).
    lumbar_angles : ndarray (N, 3) or None
        Flexion, right lateral bending, axial rotation (left +), rad; needs lumbar and sacrum sensors.
    pelvic_tilt, trunk_flexion : ndarray (N,) or None
        Anterior tilt of the pelvis (sacral sensor) and forward tilt of the upper segment, rad.
    hip_flexion : ndarray (N,) or None
        Flexion of the hips, rad: the pelvis's sagittal tilt relative to the thighs' (mean of the thigh
        sensors worn); needs the sacrum and at least one thigh sensor.
    knee_flexion : ndarray (N,) or None
        Flexion of the knee that moves (legs in turn, :meth:`knee_flexion_of`), rad; needs a shank sensor.
    tilt : dict of str to ndarray (N,)
        Sagittal tilt of every sensor's segment, rad.
    frontal_tilt : dict of str to ndarray (N,)
        Lateral (frontal-plane) tilt of every segment, rad (right side down positive).
    method : str
        Orientation method used.
    """

    rate_hz: float
    time_s: np.ndarray
    flags: dict[str, np.ndarray]
    acc: dict[str, np.ndarray]
    gyro: dict[str, np.ndarray]
    quat_sensor: dict[str, np.ndarray]
    quat_segment: dict[str, np.ndarray]
    calibration: dict[str, SegmentCalibration]
    calibration_kind: dict[str, str]
    static_window: slice
    tilt: dict[str, np.ndarray]
    frontal_tilt: dict[str, np.ndarray]
    lumbar_angles: np.ndarray | None
    method: str
    notes: list[str] = field(default_factory=list)
    #: thigh sensors whose hip angle is not used, with the reason (``lumbar.analysis.check_thighs``)
    excluded_thighs: dict[str, str] = field(default_factory=dict)

    @property
    def pelvic_tilt(self) -> np.ndarray | None:
        return self.tilt.get(LOWER)

    @property
    def trunk_flexion(self) -> np.ndarray | None:
        return self.tilt.get(UPPER)

    def hip_flexion_of(self, thigh: str) -> np.ndarray | None:
        """Flexion of one hip (``thigh``: ``thigh_left`` or ``thigh_right``), rad, (N,), relative to the
        calibration posture: the pelvis's anterior tilt minus the thigh's forward tilt, both in their own
        sagittal planes. A thigh whose top tilts forward (the knee goes back) extends the hip; a pelvis
        tilting forward on still thighs flexes it. None without the sacrum or that thigh's sensor, or when
        the sensor is :attr:`excluded_thighs`."""
        if LOWER not in self.tilt or thigh not in self.tilt or thigh in self.excluded_thighs:
            return None
        return self.tilt[LOWER] - self.tilt[thigh]

    @property
    def hip_flexion(self) -> np.ndarray | None:
        """Mean flexion of the hips whose thigh sensors are worn, rad, (N,) (:meth:`hip_flexion_of`); a
        sample missing on one side (a gap) takes the other side's. None without a thigh or sacrum sensor."""
        thighs = [self.tilt[th] for th in THIGHS if th in self.tilt and th not in self.excluded_thighs]
        if LOWER not in self.tilt or not thighs:
            return None
        return kinematics.hip_flexion(self.tilt[LOWER], thighs)

    def knee_flexion_of(self, shank: str) -> np.ndarray | None:
        """Flexion of one knee (``shank``: ``shank_left`` or ``shank_right``), rad, (N,), relative to the
        calibration posture: the shank's forward tilt minus its thigh's (the thigh's taken as still when no
        thigh sensor is worn on that side: it rests on the table in the knee tests). None without that
        shank's sensor."""
        if shank not in self.tilt:
            return None
        thigh = THIGH_OF[shank]
        return kinematics.knee_flexion(self.tilt[shank], None if thigh in self.excluded_thighs
                                       else self.tilt.get(thigh))

    @property
    def knee_flexion(self) -> np.ndarray | None:
        """Flexion of the knee that moves, rad, (N,): at each sample the worn side's knee angle farther from
        the calibration posture's (the knee tests move one leg at a time; ``kinematics.working_side``).
        None without a shank sensor."""
        knees = [k for k in map(self.knee_flexion_of, SHANKS) if k is not None]
        return kinematics.working_side(knees) if knees else None

    def signal(self, name: str) -> np.ndarray | None:
        """A named angle (``lumbar.protocols.schema.SIGNALS``), rad, (N,); None when its sensors are missing."""
        if name == "trunk_flexion":
            return self.trunk_flexion
        if name == "pelvic_tilt":
            return self.pelvic_tilt
        if name == "lumbar_flexion":
            return None if self.lumbar_angles is None else self.lumbar_angles[:, 0]
        if name == "hip_flexion":
            return self.hip_flexion
        if name == "knee_flexion":
            return self.knee_flexion
        raise KeyError(f"unknown signal {name!r}; known: {', '.join(SIGNALS)}")

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat name → array, for the session file's ``derived`` group. Sensor orientations are not
        included: they are the segment orientations times the stored calibration."""
        out: dict[str, np.ndarray] = {"time_s": self.time_s}
        for sid in self.quat_segment:
            out[f"{sid}/quat_segment"] = self.quat_segment[sid]
            out[f"{sid}/sagittal_tilt_rad"] = self.tilt[sid]
            out[f"{sid}/frontal_tilt_rad"] = self.frontal_tilt[sid]
            out[f"{sid}/flags"] = self.flags[sid]
        if self.lumbar_angles is not None:
            out["lumbar_angles_rad"] = self.lumbar_angles
        for th in THIGHS:
            hip = self.hip_flexion_of(th)
            if hip is not None:
                out[f"{th}/hip_flexion_rad"] = hip
        if self.hip_flexion is not None:
            out["hip_flexion_rad"] = self.hip_flexion
        for sh in SHANKS:
            knee = self.knee_flexion_of(sh)
            if knee is not None:
                out[f"{sh}/knee_flexion_rad"] = knee
        if self.knee_flexion is not None:
            out["knee_flexion_rad"] = self.knee_flexion
        return out

    def attrs(self) -> dict[str, Any]:
        return {
            "rate_hz": self.rate_hz,
            "orientation_method": self.method,
            "static_window_s": f"{self.time_s[self.static_window.start]:.3f},{self.time_s[self.static_window.stop - 1]:.3f}",
            "lumbar_angles": "flexion (+forward), right lateral bending (+), axial rotation (left +); rad; "
            "Cardan Z-X'-Y'' relative to the static calibration posture",
            "hip_flexion": "pelvis sagittal tilt minus thigh sagittal tilt (+ flexion), rad, relative to the static "
            "calibration posture",
            "knee_flexion": "shank sagittal tilt minus thigh sagittal tilt (the shank's alone without a thigh "
            "sensor; + flexion), rad, relative to the static calibration posture; the knee farther from it where "
            "the legs move in turn",
            "notes": "; ".join(self.notes),
            **{f"calibration/{sid}": kind for sid, kind in self.calibration_kind.items()},
        }


def _event_time(events: list[Event], *labels: str) -> float | None:
    for label in labels:
        for e in events:
            if e.label == label:
                return e.time_s
    return None


def calibration_windows(
    time_s: np.ndarray, events: list[Event], protocol: str, acc: np.ndarray, gyro: np.ndarray, rate_hz: float
) -> tuple[slice, slice | None]:
    """Sample ranges of the static and (if any) functional calibration trials on ``time_s``."""
    t0 = _event_time(events, "calibration_start", "trial_start")
    t1 = _event_time(events, "calibration_end")
    if t1 is not None:
        start = int(np.searchsorted(time_s, t0 if t0 is not None else time_s[0]))
        stop = int(np.searchsorted(time_s, t1))
        # leave 0.5 s at the end: the movement may start right at the marker
        stop = max(start + 1, stop - int(0.5 * rate_hz))
        static = slice(start, stop)
    else:
        head = time_s < time_s[0] + 15.0
        rest = detect_static(acc[head], gyro[head], rate_hz)
        idx = np.flatnonzero(rest)
        if idx.size < 2 * rate_hz and protocol in QUIET_PROTOCOLS and len(time_s) >= 2 * QUIET_STATIC_S * rate_hz:
            # the whole trial is standing still: its first seconds are the upright posture, even when
            # the sway is larger than the rest detector accepts
            idx = np.arange(int(QUIET_STATIC_S * rate_hz))
        if idx.size < 2 * rate_hz:
            raise CalibrationError(
                "no calibration marker and no 2 s of standing still in the first 15 s: record a static upright "
                "trial (5 s) before the movement"
            )
        # the first continuous run of rest
        breaks = np.flatnonzero(np.diff(idx) > 1)
        end = idx[breaks[0]] + 1 if breaks.size else idx[-1] + 1
        static = slice(int(idx[0]), int(end))
    f0 = _event_time(events, "functional_start")
    f1 = _event_time(events, "functional_end")
    if f0 is not None and f1 is not None:
        functional = slice(int(np.searchsorted(time_s, f0)), int(np.searchsorted(time_s, f1)))
    elif protocol in FUNCTIONAL_MOVEMENTS:
        functional = slice(static.stop, len(time_s))
    else:
        functional = None
    return static, functional


def _frontal_tilt(q_gb: np.ndarray, calib: slice) -> np.ndarray:
    """Lateral tilt of the segment's superior axis toward its right side, rad, relative to calibration."""
    from lumbar import _kinematics_numba as kn

    q = np.ascontiguousarray(q_gb, dtype=np.float64)
    tilt = np.empty(q.shape[0])
    # atan2 of Y·r and Y_z, r = the mediolateral axis Z projected on the horizontal plane, normalised
    kn.frontal_tilt_run(q, tilt)
    return tilt - float(np.mean(tilt[calib]))


#: Recordings longer than this get their sensors' relative heading re-zeroed at rests (METRICS.md §3.3).
REZERO_AFTER_S = 120.0
#: A rest for re-zeroing: both sensors still (the static detector of METRICS.md §3.4) for at least this long, s,
REZERO_MIN_REST_S = 1.0
#: with both segments within this of their calibration tilt, sagittal and frontal, rad (10°).
REZERO_POSTURE_TOL = np.deg2rad(10.0)
#: Each rest's heading is the median of the rests within ± half this window, s: a posture held still with
#: the trunk really turned (a few rests) does not move the zero that the many neutral rests agree on.
REZERO_WINDOW_S = 60.0


def _coarse_rest(acc: np.ndarray, gyro: np.ndarray, rate_hz: float) -> np.ndarray:
    """Rest mask (N,) by the static detector of METRICS.md §3.4 run at about 20 Hz (every k-th sample):
    a rest of a second or more is as clear there as at 200 Hz, at a tenth of the cost."""
    k = max(1, int(rate_hz // 20.0)) if rate_hz >= 40.0 else 1
    coarse = detect_static(acc[::k], gyro[::k], rate_hz / k)
    return np.repeat(coarse, k)[: acc.shape[0]]


def rest_windows(mask: np.ndarray, min_len: int) -> list[slice]:
    """Runs of True in ``mask`` (N,) at least ``min_len`` samples long, as slices."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(m[1:] != m[:-1])
    starts, stops = edges[0::2], edges[1::2]
    keep = stops - starts >= min_len
    return [slice(int(a), int(b)) for a, b in zip(starts[keep], stops[keep])]


def heading_track(p: Processed, rest_up: np.ndarray | None, rest_low: np.ndarray | None) -> np.ndarray | None:
    """The two segments' relative heading through a long recording (N,) rad, or None to keep the one of
    the calibration posture (recordings up to :data:`REZERO_AFTER_S`).

    With 6D fusion each sensor's heading drifts on its own, which over tens of minutes reads as axial
    rotation and, in a forward bend, as lateral bending. METRICS.md §3.3 (project default): re-zero at
    every quiet-standing period. Here: every rest of both sensors (≥ 1 s) in the calibration posture
    (both segments within 10° of their calibration tilt) is a moment when the trunk faces the way the
    pelvis does; the heading difference measured there (robust median over ±30 s) is interpolated
    linearly between rests. The calibration posture itself is the first such moment.
    """
    n = len(p.time_s)
    if rest_up is None or rest_low is None or n / p.rate_hz <= REZERO_AFTER_S:
        return None
    upright = np.ones(n, bool)
    for sid in (UPPER, LOWER):
        upright &= (np.abs(p.tilt[sid]) < REZERO_POSTURE_TOL) & (np.abs(p.frontal_tilt[sid]) < REZERO_POSTURE_TOL)
    windows = [p.static_window] + [w for w in rest_windows(rest_up & rest_low & upright,
                                                           int(round(REZERO_MIN_REST_S * p.rate_hz)))
                                   if w.start >= p.static_window.stop]
    up, low = p.quat_segment[UPPER], p.quat_segment[LOWER]
    d = np.unwrap(kinematics.relative_heading(up, low, windows, kinematics.heading_axis(low, p.static_window)))
    centre = np.array([(w.start + w.stop - 1) / 2 for w in windows])
    p.notes.append(f"relative heading re-zeroed at {len(windows) - 1} rests in the calibration posture "
                   f"(recording longer than {REZERO_AFTER_S:g} s; METRICS.md §3.3)")
    return interpolate_heading(d, centre, n, REZERO_WINDOW_S / 2 * p.rate_hz)


def interpolate_heading(d: np.ndarray, centre: np.ndarray, n: int, half_window: float) -> np.ndarray:
    """Per-sample heading (n,) rad from the headings ``d`` (K,) measured at rests centred on samples
    ``centre`` (K,), increasing: each replaced by the median of those within ± ``half_window`` samples
    (robust to a few rests in a turned posture), then linear in between, constant beyond the ends."""
    lo = np.searchsorted(centre, centre - half_window)
    hi = np.searchsorted(centre, centre + half_window, side="right")
    robust = np.array([np.median(d[a:b]) for a, b in zip(lo, hi)])
    return np.interp(np.arange(n), centre, robust)


def posture_of(protocol: str) -> str:
    """The calibration posture the protocol definitions declare for a movement (default standing)."""
    from lumbar.protocols import load_protocols

    return str(load_protocols().analysis_plans().get(protocol, {}).get("posture", "standing"))


def process_session(session: Session, method: str = "offline", rate_hz: float | None = None, *,
                    posture: str | None = None) -> Processed:
    """Run orientation, calibration and kinematics over a whole session.

    Parameters
    ----------
    session : Session
        From :func:`lumbar.storage.read_session`.
    method : str
        Orientation method (``lumbar.filters.estimate_orientation``); ``"offline"`` is the most
        accurate for recordings, ``"default"`` is what the live view computes.
    rate_hz : float, optional
        Common grid rate; default: the highest nominal rate among the sensors.
    posture : str, optional
        Posture of the static calibration trial (``lumbar.calibration.POSTURE_UP``: standing, sitting,
        prone, four-point-kneeling); it says which segment axis gravity reveals. Default: the one the
        protocol definitions declare for the session's movement, else standing.

    Raises
    ------
    CalibrationError
        When no usable static trial is found.
    ValidationError
        When the session has no sensor data.
    """
    from lumbar.filters import estimate_orientation

    if posture is None:
        posture = posture_of(session.info.protocol)

    data = {sid: b for sid, b in session.data.items() if len(b) >= 2}
    if not data:
        raise ValidationError(f"{session.path}: the session has no sensor data to process")
    if rate_hz is None:
        rates = [session.sensors[sid].nominal_rate_hz for sid in data if session.sensors[sid].nominal_rate_hz > 0]
        rate_hz = max(rates) if rates else float(1.0 / np.median(np.diff(next(iter(data.values())).time_s)))
    grid = to_common_grid(data, rate_hz)
    time_s = next(iter(grid.values())).time_s
    first = next(iter(grid.values()))
    static, functional = calibration_windows(time_s, session.events, session.info.protocol, first.acc, first.gyro,
                                             rate_hz)
    out = Processed(rate_hz=rate_hz, time_s=time_s, flags={}, acc={}, gyro={}, quat_sensor={}, quat_segment={},
                    calibration={}, calibration_kind={}, static_window=static, tilt={}, frontal_tilt={},
                    lumbar_angles=None, method=method)
    def per_sensor(b: Any) -> tuple:
        # one sensor's chain, orientation to tilts: the compiled kernels release the GIL
        # (lumbar.filters._numba), so the sensors run side by side on their own threads
        q = estimate_orientation(b.acc, b.gyro, rate_hz, method=method)[0]
        label = f"{b.sensor_id} sensor"
        segment = segment_kind(b.sensor_id)  # a leg's posture is not the trunk's
        if (functional is not None and functional.stop - functional.start > 2 * rate_hz
                and b.sensor_id in FUNCTIONAL_SEGMENTS):
            cal = calibrate_segment(b.acc[static], b.gyro[static], b.acc[functional], b.gyro[functional], rate_hz,
                                    label=label, posture=posture, segment=segment)
            kind = "static+functional"
        else:
            cal = static_only_calibration(b.acc[static], b.gyro[static], label, posture=posture, segment=segment)
            kind = "static only"
        q_seg = kinematics.segment_quat(q, cal.r_sb)
        rest = _coarse_rest(b.acc, b.gyro, rate_hz) if len(b) / rate_hz > REZERO_AFTER_S else None
        return q, cal, kind, q_seg, kinematics.sagittal_tilt(q_seg, static), _frontal_tilt(q_seg, static), rest

    rests: dict[str, np.ndarray | None] = {}
    workers = min(len(grid), os.cpu_count() or 1)
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as ex:
            chains = dict(zip(grid, ex.map(per_sensor, grid.values())))
    else:
        chains = {sid: per_sensor(b) for sid, b in grid.items()}
    for sid, b in grid.items():
        q, cal, kind, q_seg, tilt, frontal, rest = chains[sid]
        out.flags[sid] = b.flags
        out.acc[sid] = b.acc
        out.gyro[sid] = b.gyro
        out.quat_sensor[sid] = q
        out.quat_segment[sid] = q_seg
        out.calibration[sid] = cal
        out.calibration_kind[sid] = kind
        out.tilt[sid] = tilt
        out.frontal_tilt[sid] = frontal
        rests[sid] = rest
        out.notes.extend(f"{sid}: {w}" for w in cal.warnings)
    if UPPER in out.quat_segment and LOWER in out.quat_segment:
        heading = heading_track(out, rests.get(UPPER), rests.get(LOWER))
        out.lumbar_angles = kinematics.lumbar_angles(out.quat_segment[UPPER], out.quat_segment[LOWER], static,
                                                     heading=heading)
    else:
        out.notes.append("lumbar angles need both a lumbar (T12/L1) and a sacrum (S1) sensor")
    return out
