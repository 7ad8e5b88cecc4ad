"""Sessions for the interop tests: short emulated recordings, written once per module."""
from __future__ import annotations

from pathlib import Path

import pytest

from lumbar.simulate import simulate
from lumbar.storage.writer import write_session
from lumbar.types import SessionInfo

SECRET_OPERATOR = "Dr Secretname"
SECRET_NOTE = "lives at 12 Private Road"


def make_session(path: Path, *, seed: int = 3, movement: str = "flexion", duration_s: float = 15.0,
                 reps: int | None = 1, subject: str = "P-017") -> Path:
    """An emulated session with identifying operator and notes (that exports must not carry)."""
    sim = simulate(movement, duration_s=duration_s, seed=seed, reps=reps)
    info = SessionInfo(subject_code=subject, operator=SECRET_OPERATOR, protocol=movement, notes=SECRET_NOTE)
    events = [e for e in sim.events if not e.label.startswith("rep_")]
    return write_session(path, info, sim.sensors.values(), sim.batches, events)


@pytest.fixture(scope="module")
def session_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_session(tmp_path_factory.mktemp("interop") / "flexion.h5")
