"""The emulated patient: body kinematics → ground truth + the signals of body-worn IMUs.

>>> from lumbar.simulate import simulate, ImuErrorModel
>>> sim = simulate("flexion", duration_s=60.0, seed=1, imu=ImuErrorModel.ideal())
>>> sorted(sim.batches)
['lumbar', 'sacrum']

Modules: :mod:`~lumbar.simulate.body` (kinematic body model), :mod:`~lumbar.simulate.movements`
(movement trajectories), :mod:`~lumbar.simulate.imu_model` (MEMS error model),
:mod:`~lumbar.simulate.truth` (ground truth container), :mod:`~lumbar.simulate.core`
(:func:`simulate`). See ``docs/emulated-patient.md``.
"""
from __future__ import annotations

from lumbar.simulate.body import BodyGeometry
from lumbar.simulate.core import SimulatedSession, simulate
from lumbar.simulate.imu_model import ImuErrorModel
from lumbar.simulate.movements import MOVEMENTS
from lumbar.simulate.truth import Truth

__all__ = ["simulate", "MOVEMENTS", "ImuErrorModel", "SimulatedSession", "Truth", "BodyGeometry"]
