"""Run a protocol on the emulated patient: simulate → session file → analyze (stored in the file)."""
from __future__ import annotations

from pathlib import Path

from lumbar.protocols import Protocol, conditions_text
from lumbar.types import SessionInfo


def emulate(protocol: Protocol, quality: str, out: Path, *, subject: str = "SIM001", start_utc: str | None = None,
            operator: str = "emulator", notes: str = "", seed: int = 1) -> Path:
    from lumbar.analysis import analyze_file
    from lumbar.simulate import simulate
    from lumbar.storage.writer import write_simulated

    em = protocol.emulation
    sim = simulate(em["movement"], duration_s=em.get("duration_s", 60.0), seed=seed, quality=quality,
                   amplitude_deg=em.get("amplitude_deg"), eyes=em.get("eyes", "open"),
                   surface=em.get("surface", "firm"))
    cond = conditions_text(protocol.conditions)  # as lumbar.protocols.session_conditions reads them back
    words = f"emulated patient: quality {quality}" + (f", {cond}" if cond else "")
    kw = {"start_time_utc": start_utc} if start_utc else {}
    info = SessionInfo(subject_code=subject, operator=operator, protocol=em["movement"],
                       notes=(notes + " " + words).strip(), **kw)
    write_simulated(out, sim, info, overwrite=True)
    analyze_file(out)
    return out
