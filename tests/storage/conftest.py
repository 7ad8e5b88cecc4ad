from __future__ import annotations

import pytest

from lumbar.types import SensorInfo, SessionInfo


@pytest.fixture
def two_sensors() -> list[SensorInfo]:
    return [
        SensorInfo("lumbar", "lumbar", family="lumbar_ref", model="test", nominal_rate_hz=200.0,
                   acc_range_mps2=156.9, gyro_range_rads=34.9),
        SensorInfo("sacrum", "sacrum", family="lumbar_ref", model="test", nominal_rate_hz=200.0,
                   acc_range_mps2=156.9, gyro_range_rads=34.9),
    ]


@pytest.fixture
def session_info() -> SessionInfo:
    return SessionInfo("S001", operator="PT1", protocol="flexion", notes="test session")
