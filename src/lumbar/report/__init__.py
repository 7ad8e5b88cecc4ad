"""Reports a physiotherapist can hand over: ``lumbar report FILE [FILE…] -o report.html [--pdf]``.

One subject's session files → scored against their protocols (``lumbar.protocols``) → grouped
into visits, with progress across visits and home-session adherence → one self-contained HTML page
(inline CSS, figures as base64 PNG). ``--pdf`` prints the page with headless Chromium when one is
installed. See ``docs/reports.md``.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from lumbar.errors import LumbarError, ValidationError
from lumbar.protocols import Registry, load_protocols
from lumbar.report import plots
from lumbar.report.html import render_html
from lumbar.report.sessions import (SessionRecord, Visit, adherence, group_visits, load_record, progress)

__all__ = ["Report", "build_report", "write_report", "find_chromium", "html_to_pdf", "screenshot", "dump_dom",
           "ReportError"]

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class ReportError(LumbarError):
    """A report cannot be made (several subjects, no files, no Chromium for --pdf)."""


@dataclass
class Report:
    subject: str
    records: list[SessionRecord]
    visits: list[Visit]
    html: str
    notes: list[str]


def build_report(files: Sequence[str | Path], *, registry: Registry | None = None,
                 protocol_dirs: Iterable[str | Path] = (), home_files: Sequence[str | Path] = (),
                 protocol: str | None = None, with_plots: bool | None = None) -> Report:
    """Read, score and render the sessions of one subject.

    Raises
    ------
    ReportError
        When the files belong to more than one subject code, or there are none.
    ProtocolError
        When a protocol file is malformed (names the file, field and problem).
    """
    from lumbar.types import software_version

    if not files and not home_files:
        raise ReportError("no session files given")
    reg = registry if registry is not None else load_protocols(protocol_dirs)
    home = {Path(h).resolve() for h in home_files}
    all_files = list(dict.fromkeys([Path(f) for f in files] + [Path(h) for h in home_files]))
    records = [load_record(f, reg, home=True if f.resolve() in home else None, protocol=protocol) for f in all_files]
    subjects = sorted({r.subject for r in records})
    if len(subjects) != 1:
        raise ReportError(f"a report is for one subject; these files hold {len(subjects)} subject codes "
                          f"({', '.join(subjects)})")
    visits = group_visits(records, reg)
    rows = progress(visits, reg)
    adh = adherence(records, visits)
    plot = plots.available() if with_plots is None else with_plots
    notes = list(reg.notes)
    if not plot:
        notes.append(plots.MISSING)
    html = render_html(subjects[0], visits, rows, adh, with_plots=plot, software=software_version())
    return Report(subjects[0], records, visits, html, notes)


def write_report(report: Report, out: str | Path) -> Path:
    p = Path(out)
    if p.suffix.lower() not in (".html", ".htm"):
        raise ValidationError(f"the report is an HTML page: give an output name ending in .html; got {str(out)!r}")
    p.write_text(report.html, encoding="utf-8")
    return p


def find_chromium() -> str | None:
    """A headless-capable Chromium on PATH (Debian: the ``chromium`` package), or None."""
    for n in CHROMIUM_NAMES:
        exe = shutil.which(n)
        if exe:
            return exe
    return None


def _run_chromium(args: list[str], timeout_s: float = 120.0) -> subprocess.CompletedProcess:
    exe = find_chromium()
    if exe is None:
        raise ReportError("no Chromium found on PATH (Debian: apt-get install chromium); the HTML report is "
                          "complete without it")
    with tempfile.TemporaryDirectory(prefix="lumbar-chromium-") as prof:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               "--disable-extensions", f"--user-data-dir={prof}", *args]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=True)
        except subprocess.CalledProcessError as e:
            raise ReportError(f"Chromium failed ({e.returncode}): {(e.stderr or '').strip()[-400:]}") from e
        except subprocess.TimeoutExpired as e:
            raise ReportError(f"Chromium did not finish within {timeout_s:g} s") from e


def html_to_pdf(html_path: str | Path, pdf_path: str | Path) -> Path:
    """Print the page to PDF with headless Chromium (A4, backgrounds as on screen)."""
    pdf = Path(pdf_path).resolve()
    _run_chromium(["--no-pdf-header-footer", f"--print-to-pdf={pdf}", Path(html_path).resolve().as_uri()])
    if not pdf.exists() or pdf.stat().st_size == 0:
        raise ReportError("Chromium wrote no PDF")
    return pdf


def screenshot(html_path: str | Path, png_path: str | Path, width: int = 1100, height: int = 4000) -> Path:
    """A PNG of the rendered page (the first ``height`` pixels)."""
    png = Path(png_path).resolve()
    _run_chromium([f"--screenshot={png}", f"--window-size={width},{height}", "--virtual-time-budget=5000",
                   Path(html_path).resolve().as_uri()])
    return png


def dump_dom(html_path: str | Path) -> str:
    """The DOM after Chromium has loaded and laid out the page (scripts run)."""
    return _run_chromium(["--virtual-time-budget=5000", "--dump-dom", Path(html_path).resolve().as_uri()]).stdout
