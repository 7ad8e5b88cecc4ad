"""The data model refuses malformed data with clear messages."""
from __future__ import annotations

import numpy as np
import pytest

from lumbar.errors import ValidationError
from lumbar.types import ImuBatch, SampleFlag, SensorInfo, SessionInfo


def _batch(n=10, sid="lumbar"):
    return ImuBatch.create(sid, np.arange(n) / 100, np.zeros((n, 3)), np.zeros((n, 3)))


def test_defaults_and_dtypes():
    b = _batch()
    assert len(b) == 10 and b.acc.dtype == np.float64 and b.flags.dtype == np.uint8
    assert np.all(np.isnan(b.device_time_s)) and np.all(b.seq == -1)
    assert b.duration_s == pytest.approx(0.09)


def test_shape_errors_name_the_column():
    with pytest.raises(ValidationError, match=r"acc must have shape \(N, 3\)"):
        ImuBatch.create("lumbar", np.arange(3.0), np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValidationError, match="gyro has 4 samples but time_s has 3"):
        ImuBatch.create("lumbar", np.arange(3.0), np.zeros((3, 3)), np.zeros((4, 3)))


def test_slicing_concat_and_flags():
    b = _batch(20)
    flags = b.flags.copy()
    flags[5] = SampleFlag.GAP_BEFORE | SampleFlag.ACC_SATURATED
    from dataclasses import replace

    b = replace(b, flags=flags)
    joined = ImuBatch.concat([b[:5], b[5:12], b[12:]])
    np.testing.assert_array_equal(joined.time_s, b.time_s)
    assert np.flatnonzero(joined.has_flag(SampleFlag.ACC_SATURATED)).tolist() == [5]
    with pytest.raises(ValidationError, match="different sensors"):
        ImuBatch.concat([_batch(sid="lumbar"), _batch(sid="sacrum")])


def test_placement_and_subject_validation():
    SensorInfo("shank_left", "shank_left")  # custom placement
    with pytest.raises(ValidationError, match="placement"):
        SensorInfo("Left Thigh", "thigh_left")
    for bad in ("", "Max Mustermann", "a" * 40):
        with pytest.raises(ValidationError, match="subject code"):
            SessionInfo(bad)
    assert SessionInfo("S-017").subject_code == "S-017"
