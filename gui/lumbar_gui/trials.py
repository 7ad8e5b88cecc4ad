"""What the guided assessment offers and how its results are judged: the protocol definitions.

The tests and batteries are those of :mod:`lumbar.protocols` (the shipped definitions and a clinic's own,
``$LUMBAR_PROTOCOLS``), and each trial is scored by that module's :func:`~lumbar.protocols.score` (its
criteria, with their sources, and its reference values) — the scoring the subject's report uses, so the
screen and the printed report never disagree. A battery (Luomajoki's six tests) is summed by
:func:`~lumbar.protocols.score_battery`.

First in the list is a short screen of the application's own, quiet standing then a set of four forward
bends (the two tests of the report's first page); it needs no definition file to be offered, so the
window shows it before anything is read.

Nothing here touches Qt: the view (:mod:`lumbar_gui.views.assessment`) shows what these functions return.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Trial", "Row", "DEFAULT_PROTOCOLS", "protocols", "battery_of", "registry", "registry_error",
           "trial_of", "score_trial", "outcome", "result_rows", "verdict", "file_stems"]

#: Seconds per repetition at a slow pace (a bend and back, a pause): the time a trial of repetitions allows at
#: least. It stops once they are counted, so the limit only matters when they are not.
SECONDS_PER_REPETITION = 8.0


@dataclass(frozen=True)
class Trial:
    """One trial of an assessment.

    movement : the analysis of its file (``lumbar analyze``: the session's protocol field)
    duration_s : the task, after the 5 s standing still, s; the trial stops by itself then (or earlier, once
        its repetitions are counted)
    instruction : what the operator reads to the patient
    reps : repetitions asked for (the trial stops once they are counted) and made by the demo patient (None:
        none counted; the demo patient makes its own for the duration)
    protocol : the definition that scores it (``lumbar.protocols``; "" none)
    title : its name for people ("" → the movement's)
    demo : options of the demo patient (``amplitude_deg``, ``eyes``, ``surface``), as ``(key, value)`` pairs
    conditions : the definition's conditions (``eyes``, ``surface``), written into the file's notes so that
        the report finds the same definition
    """

    movement: str
    duration_s: float
    instruction: str
    reps: int | None = None
    protocol: str = ""
    title: str = ""
    demo: tuple[tuple[str, Any], ...] = ()
    conditions: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return self.title or self.movement.replace("-", " ")

    @property
    def key(self) -> str:
        """What names its file (``NN-<key>.h5``): the definition, so that two conditions of one movement
        (eyes open, eyes closed) are told apart at the next visit."""
        return self.protocol or self.movement

    def notes(self) -> str:
        """The conditions in the words :func:`lumbar.protocols.session_conditions` reads."""
        from lumbar.protocols.registry import conditions_text

        return conditions_text(dict(self.conditions))


#: The short screen offered first (known without reading anything).
DEFAULT_PROTOCOLS: dict[str, list[Trial]] = {
    "Lumbar motor control — quiet standing + flexion": [
        Trial("quiet-standing", 30.0,
              "Stand with your feet together and arms crossed, eyes open, looking at the mark on the wall. "
              "Stay as still as you can until you hear ‘stop’.",
              protocol="quiet-standing-eo-firm", title="Quiet standing",
              conditions=(("eyes", "open"), ("surface", "firm"))),
        Trial("flexion", 40.0,
              "Keep your knees straight. Bend forward slowly as far as is comfortable, then come back up to "
              "standing. Keep a steady pace until you hear ‘stop’.",
              reps=4, protocol="flexion", title="Forward flexion"),
    ],
}
_PROTOCOLS: dict[str, list[Trial]] = {}
_BATTERIES: dict[str, str] = {}  # list label → battery definition name


@functools.lru_cache(maxsize=1)
def _load() -> tuple[Any, str | None]:
    from lumbar.protocols import ProtocolError, load_protocols

    try:
        return load_protocols(), None
    except ProtocolError as e:
        return None, str(e)


def registry() -> Any:
    """The protocol definitions (:class:`lumbar.protocols.Registry`), read once; None if they cannot be
    read (:func:`registry_error` says why)."""
    return _load()[0]


def registry_error() -> str | None:
    """Why the protocol definitions could not be read (a clinic's malformed file), in words; else None."""
    return _load()[1]


def trial_of(p: Any) -> Trial:
    """The trial of a test definition: its movement, instructions, conditions and repetitions; as long as the
    definition's ``duration_s``, else (a test definition has a duration or repetitions) the longer of its
    emulated duration and :data:`SECONDS_PER_REPETITION` per repetition."""
    em = p.get("emulation") or {}
    reps = p.get("repetitions") or None
    duration = p.get("duration_s") or max(em.get("duration_s", 0.0), SECONDS_PER_REPETITION * (reps or 0))
    return Trial(p.movement, float(duration), " ".join(p.get("instructions", [])), reps, p.name, p.title,
                 tuple((k, em[k]) for k in ("amplitude_deg", "eyes", "surface") if k in em),
                 tuple(p.conditions.items()))


def protocols() -> dict[str, list[Trial]]:
    """Label → trials of every choice: the short screen, the batteries (their tests in order), then each test."""
    if _PROTOCOLS:
        return _PROTOCOLS
    out = dict(DEFAULT_PROTOCOLS)
    reg = registry()
    if reg is not None:
        for b in reg.batteries():
            label = f"{b.title} — {len(b.items)} tests"
            out[label] = [trial_of(reg[name]) for name in b.items]
            _BATTERIES[label] = b.name
        for t in reg.tests():
            out[f"Single test — {t.title}"] = [trial_of(t)]
    _PROTOCOLS.update(out)
    return _PROTOCOLS


def battery_of(label: str) -> str | None:
    """The battery definition behind a choice of :func:`protocols`, if it is one."""
    protocols()
    return _BATTERIES.get(label)


def file_stems(trial: Trial) -> list[str]:
    """The names (``NN-<stem>.h5``) the same test's file may have at an earlier visit: its definition's, and
    for the movement's default definition also the movement's (files named before the definitions were)."""
    stems = [trial.key]
    reg = registry()
    if trial.protocol and trial.protocol != trial.movement and reg is not None and trial.protocol in reg:
        if reg.for_session(trial.movement, "").name == trial.protocol:
            stems.append(trial.movement)
    return stems


def score_trial(trial: Trial, analysis: dict[str, Any] | None) -> Any:
    """The trial's :class:`lumbar.protocols.TestResult` (``analysis``: ``Analysis.to_dict(display=True)``);
    None when it has no definition or no analysis."""
    reg = registry()
    if analysis is None or reg is None or not trial.protocol or trial.protocol not in reg:
        return None
    from lumbar.protocols import score

    return score(reg[trial.protocol], analysis)


@dataclass(frozen=True)
class Row:
    """One line of the results: a measure, its value, what it is judged against, the outcome.

    passed: True / False colour the outcome (met, not met); None leaves it plain (a measurement).
    tip: where the criterion or the reference values come from, and what they mean.
    """

    measure: str
    value: str
    against: str
    outcome: str
    passed: bool | None = None
    tip: str = ""


STATUS_WORDS = {"pass": "passed", "fail": "failed (positive test)", "incomplete": "incomplete",
                "not scored": "measured (no pass/fail criterion)"}


def _value_text(v: float | None, unit: str | None) -> str:
    from lumbar.protocols.scoring import format_value

    return format_value(v, unit or "")


def _population(text: str) -> str:
    """A reference population without its sample size ("no low back pain (n = 126)" → "no low back pain"): the
    table's cells stay short; the tooltip has it whole."""
    return re.sub(r"\s*\(n\s*=\s*\d+\)", "", text).strip()


def outcome(result: Any) -> tuple[str, bool | None, str]:
    """A trial's outcome in words ("passed", "failed (positive test)" …), whether it passed (None: not judged),
    and the definition's notes (a tooltip)."""
    if result is None:
        return "not scored (no protocol definition)", None, ""
    return STATUS_WORDS[result.status], result.passed, "\n".join(result.notes)


def _source(source: str, evidence: str) -> str:
    """Where a threshold or reference value comes from, and how firm it is, in the clinician's words."""
    from lumbar.protocols.schema import EVIDENCE_WORDS

    return f"Source ({EVIDENCE_WORDS.get(evidence, evidence)}): {source}"


def result_rows(trial: Trial, result: Any, analysis: dict[str, Any] | None) -> list[Row]:
    """The measures of one trial: each criterion, each reference value (its groups one per line), and the
    repetitions counted (what the trial monitor showed)."""
    rows = []
    if result is not None:
        from lumbar.protocols.scoring import threshold_text

        for c in result.criteria:
            said = "not measured" if c.passed is None else ("met" if c.passed else "not met")
            rows.append(Row(c.label, _value_text(c.value, c.unit), threshold_text(c.op, c.threshold, c.unit),
                            said, c.passed, f"{c.explanation}\n\n{_source(c.source, c.evidence)}"))
        for r in result.references:
            groups = [(_population(g["population"]), f"{_value_text(g['low'], r.unit)}–{_value_text(g['high'], r.unit)}"
                       if "low" in g else _value_text(g.get("value"), r.unit)) for g in r.groups]
            rows.append(Row(r.label, _value_text(r.value, r.unit), "\n".join(f"{v} {pop}" for pop, v in groups),
                            f"nearest: {_population(r.nearest)}" if r.nearest else "–", None,
                            "Reference values: " + "; ".join(f"{g['population']}: {v}"
                                                             for g, (_, v) in zip(r.groups, groups))
                            + f"\n\n{_source(r.source, r.evidence)}"))
    reps = ((analysis or {}).get("results") or {}).get("repetitions")
    if reps is not None:
        from lumbar.analysis import repetition_count, repetition_sets  # both ways when the task goes both (rocking)

        n = repetition_count(analysis)
        sets = repetition_sets(analysis)
        ways = ", ".join(f"{(analysis['results'].get(key) or {}).get('count', '–')} {way}" for key, way in sets)
        rows.append(Row("Repetitions counted", "–" if n is None else str(n), "", "–", None,
                        f"Both directions: {ways}" if len(sets) > 1 else ""))
    rows += stance_rows(((analysis or {}).get("results") or {}).get("frontal_control"))
    return rows


def stance_rows(fc: dict[str, Any] | None) -> list[Row]:
    """One-leg stance, each leg (``frontal_control`` in display units): the low back's sideways bend standing on
    each leg and their difference, where thigh sensors told the legs apart; else a row that says they were not."""
    if not fc or not fc.get("valid", True):
        return []
    if fc.get("sides_from") != "thighs":
        return [Row("Each leg on its own", "not told apart", "", "–", None,
                    "Thigh sensors tell which leg is lifted (its hip flexes), so each leg's stance can be measured. "
                    "Without them the low back's sideways bend is one range for the whole trial.")]
    rows = []
    for leg in ("left", "right"):
        n = fc.get(f"stances_{leg}") or 0
        rows.append(Row(f"Standing on the {leg} leg: low back bends sideways",
                        _value_text(fc.get(f"lean_on_{leg}"), "deg"), "", "–", None,
                        f"The low back's largest sideways bend from upright over {n} stance{'s' * (n != 1)} on the "
                        f"{leg} leg; the pelvis tilted {_value_text(fc.get(f'drop_on_{leg}'), 'deg')} sideways. The "
                        "thigh sensors tell the legs apart (the lifted leg's hip flexes)."))
    rows.append(Row("Difference between the legs", _value_text(fc.get("lean_difference"), "deg"), "", "–", None,
                    "The difference of the low back's sideways bends standing on each leg. The published criterion "
                    "compares the legs' navel shift (< 2 cm); no limit in degrees is published."))
    return rows


def verdict(labels: str, results: list[Any]) -> tuple[str, bool | None]:
    """The headline of an assessment's results and whether it is good news (None: neither).

    labels: the choice of :func:`protocols`; results: the :class:`~lumbar.protocols.TestResult` of its trials
    (None for one not scored).
    """
    scored = [r for r in results if r is not None]
    battery = battery_of(labels)
    reg = registry()
    if battery is not None and reg is not None:
        from lumbar.protocols import score_battery

        b = score_battery(reg[battery], scored)
        return b.statement[:1].upper() + b.statement[1:], None if b.impaired is None else not b.impaired
    judged = [r for r in scored if r.passed is not None]
    if not judged:
        return "Measured: compared with the reference values", None
    n = sum(bool(r.passed) for r in judged)
    return f"{n} of {len(judged)} test{'s' * (len(judged) > 1)} passed", n == len(judged)
