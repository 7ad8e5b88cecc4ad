"""Assessment protocols as declarative definitions, and their scoring.

A protocol is a data file (JSON; TOML too on Python 3.11+): name, purpose, patient instructions,
sensors, calibration step, repetitions or duration, metrics, pass/fail criteria and reference
values with their citation and evidence label ([CONFIRMED], [FROM MEMORY – VERIFY],
[PROJECT DEFAULT], as in the project's metric specification). The shipped ones are in
``lumbar/protocols/definitions``; a clinic adds its own as a file in a folder named by
``$LUMBAR_PROTOCOLS`` or ``lumbar report --protocols DIR``. See ``docs/protocols.md``.

>>> from lumbar.protocols import load_protocols, score
>>> reg = load_protocols()
>>> result = score(reg["waiters-bow"], analysis)          # doctest: +SKIP
"""
from lumbar.protocols.registry import (BUILTIN_DIR, ENV_VAR, Protocol, Registry, load_protocol_file,
                                       load_protocols, session_conditions, conditions_text)
from lumbar.protocols.schema import ProtocolError, validate_protocol
from lumbar.protocols.scoring import (BatteryResult, CriterionResult, ReferenceResult, TestResult, display_results,
                                      metric_value, score, score_battery)

__all__ = [
    "BUILTIN_DIR", "ENV_VAR", "Protocol", "Registry", "load_protocol_file", "load_protocols", "session_conditions", "conditions_text",
    "ProtocolError", "validate_protocol", "BatteryResult", "CriterionResult", "ReferenceResult", "TestResult",
    "display_results", "metric_value", "score", "score_battery",
]
