"""One exception family for the whole project.

Every error a user can meet derives from :class:`LumbarError`. Messages name the
thing at fault (file, sensor, parameter) and say what was wrong in plain words.
"""
from __future__ import annotations


class LumbarError(Exception):
    """Base class of every error raised on purpose by this project."""


class ValidationError(LumbarError, ValueError):
    """A value given to a public function is not acceptable (wrong shape, unit, option)."""


class SessionFileError(LumbarError):
    """A session file cannot be read or is not a valid session.

    Parameters
    ----------
    path : str
        The file at fault.
    problem : str
        What is wrong, in words a clinician understands.
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class DecodeError(LumbarError):
    """A BLE payload could not be decoded (the stream goes on; the packet is reported)."""


class SimulationError(LumbarError, ValueError):
    """The emulated patient was asked for something it cannot do."""


class CalibrationError(LumbarError):
    """A calibration trial cannot be used (the patient moved, the movement was not sagittal, …)."""
