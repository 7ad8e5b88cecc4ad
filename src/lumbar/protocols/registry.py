"""Loading protocol definitions: the ones shipped with the package, then the user's folders.

Search order (a later file with the same ``name`` replaces an earlier one, with a note):

1. ``lumbar/protocols/definitions/*.json`` (shipped);
2. every folder in the environment variable ``LUMBAR_PROTOCOLS`` (separated like ``PATH``);
3. the folders given by the caller (``lumbar report --protocols DIR``).

A folder holds ``*.json`` files, and ``*.toml`` files where Python can read TOML (3.11+, or the
``tomli`` package on 3.10).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from lumbar.protocols.schema import ProtocolError, validate_protocol

__all__ = ["Protocol", "Registry", "load_protocols", "load_protocol_file", "BUILTIN_DIR", "ENV_VAR",
           "conditions_text", "session_conditions"]

BUILTIN_DIR = Path(__file__).with_name("definitions")
ENV_VAR = "LUMBAR_PROTOCOLS"


@dataclass(frozen=True)
class Protocol:
    """One protocol definition (a test or a battery), as read from its file."""

    data: dict[str, Any]
    source: str

    def __getattr__(self, k: str) -> Any:  # name, title, kind, movement, criteria, …
        try:
            return self.__dict__["data"][k]
        except KeyError:
            raise AttributeError(k) from None

    def get(self, k: str, default: Any = None) -> Any:
        return self.data.get(k, default)

    @property
    def conditions(self) -> dict[str, str]:
        return dict(self.data.get("conditions", {}))

    def analysis_plan(self) -> dict[str, Any] | None:
        """Fields of ``lumbar.analysis.AnalysisPlan`` for this protocol (``tolerance_deg`` extra),
        so that the analysis plans can be driven by the definitions."""
        return dict(self.data["analysis"]) if "analysis" in self.data else None


def _read(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ProtocolError(path, f"(line {e.lineno}, column {e.colno})", f"not valid JSON: {e.msg}") from None
    try:
        import tomllib  # type: ignore[import-not-found]
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise ProtocolError(path, "(file)", "TOML needs Python 3.11+ or the 'tomli' package; "
                                "write the protocol as JSON instead") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProtocolError(path, "(syntax)", f"not valid TOML: {e}") from None


def load_protocol_file(path: str | Path) -> Protocol:
    """Read and validate one protocol file; :class:`ProtocolError` names file, field and problem."""
    p = Path(path)
    return Protocol(validate_protocol(_read(p), p), str(p))


@dataclass
class Registry:
    """All protocols found, by name; ``notes`` says which user files replaced shipped ones."""

    protocols: dict[str, Protocol] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> Protocol:
        try:
            return self.protocols[name]
        except KeyError:
            raise ProtocolError("(protocols)", "name", f"no protocol named {name!r}; known: "
                                f"{', '.join(sorted(self.protocols))}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.protocols

    def __iter__(self):
        return iter(self.protocols.values())

    def tests(self) -> list[Protocol]:
        return [p for p in self.protocols.values() if p.kind == "test"]

    def batteries(self) -> list[Protocol]:
        return [p for p in self.protocols.values() if p.kind == "battery"]

    def for_session(self, protocol: str, notes: str = "") -> Protocol | None:
        """The protocol of a session: by exact name, else the tests analysed as that movement, the
        one whose ``conditions`` (eyes, surface) match the session notes."""
        if protocol in self.protocols:
            return self.protocols[protocol]
        cands = [p for p in self.tests() if p.get("movement") == protocol]
        if not cands:
            return None
        found = session_conditions(notes)
        exact = [p for p in cands if all(found.get(k, _DEFAULT_COND.get(k)) == v for k, v in p.conditions.items())]
        pick = exact or [p for p in cands if p.get("default_for_movement")] or cands
        return pick[0]

    def analysis_plans(self) -> dict[str, dict[str, Any]]:
        """Movement → analysis-plan fields, from the definitions that declare one (first wins)."""
        out: dict[str, dict[str, Any]] = {}
        for p in self.tests():
            plan = p.analysis_plan()
            if plan is not None and p.movement not in out:
                out[p.movement] = plan
        return out


_DEFAULT_COND = {"eyes": "open", "surface": "firm"}


def conditions_text(conditions: dict[str, str]) -> str:
    """Conditions (``eyes``, ``surface``) in the words :func:`session_conditions` reads back from a session's
    notes: "eyes closed, foam surface"; "" when there are none."""
    return ", ".join(([f"eyes {conditions['eyes']}"] if "eyes" in conditions else [])
                     + ([f"{conditions['surface']} surface"] if "surface" in conditions else []))


def session_conditions(notes: str) -> dict[str, str]:
    """Conditions written in a session's notes ("eyes closed", "foam")."""
    n = notes.lower()
    out: dict[str, str] = {}
    if "eyes closed" in n:
        out["eyes"] = "closed"
    elif "eyes open" in n:
        out["eyes"] = "open"
    if "foam" in n:
        out["surface"] = "foam"
    elif "firm" in n:
        out["surface"] = "firm"
    return out


def _dirs_from_env() -> list[Path]:
    raw = os.environ.get(ENV_VAR, "")
    return [Path(x) for x in raw.split(os.pathsep) if x.strip()]


def load_protocols(dirs: Iterable[str | Path] = (), *, use_env: bool = True) -> Registry:
    """Shipped protocols, then ``$LUMBAR_PROTOCOLS``, then ``dirs``.

    Raises
    ------
    ProtocolError
        On the first malformed file (its message names the file, the field and the problem), or
        a folder that does not exist.
    """
    reg = Registry()
    folders: list[tuple[Path, bool]] = [(BUILTIN_DIR, True)]
    folders += [(d, False) for d in (_dirs_from_env() if use_env else [])]
    folders += [(Path(d), False) for d in dirs]
    for folder, builtin in folders:
        if not folder.is_dir():
            raise ProtocolError(folder, "(folder)", "protocol folder does not exist")
        files = sorted(list(folder.glob("*.json")) + list(folder.glob("*.toml")))
        for f in files:
            p = load_protocol_file(f)
            shown = f.name if builtin else str(f)
            p = Protocol(p.data, shown)
            if p.name in reg.protocols:
                reg.notes.append(f"{shown} replaces the protocol {p.name!r} of {reg.protocols[p.name].source}")
            reg.protocols[p.name] = p
    for b in reg.batteries():
        for i, item in enumerate(b.items):
            if item not in reg.protocols:
                raise ProtocolError(b.source, f"items[{i}]", f"names no known protocol: {item!r}")
    return reg
