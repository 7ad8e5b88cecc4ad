"""The HTML report of a two-visit subject: content, privacy, headless Chromium, PDF, screenshots."""
from __future__ import annotations

import os
import re
from html import escape
from pathlib import Path

import pytest

from lumbar.cli import main
from lumbar.protocols import load_protocols
from lumbar.report import ReportError, build_report, dump_dom, find_chromium, html_to_pdf, screenshot, write_report

from tests.protocols.emulate import emulate

REG = load_protocols(use_env=False)
PII = ("Jane", "Doe", "John", "Smith", "ward 3")
DOC_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"

VISIT1 = [("waiters-bow", "poor"), ("sitting-knee-extension", "poor"), ("rocking", "poor"), ("flexion", "poor"),
          ("quiet-standing-eo-firm", "good"), ("quiet-standing-ec-firm", "good")]
VISIT2 = [("waiters-bow", "good"), ("sitting-knee-extension", "good"), ("rocking", "good"), ("flexion", "good"),
          ("quiet-standing-eo-firm", "good"), ("quiet-standing-ec-firm", "good")]


@pytest.fixture(scope="module")
def subject(tmp_path_factory):
    d = tmp_path_factory.mktemp("john-smith")  # a folder named after the person must not leak either
    files, home = [], []
    for day, tests in (("2025-03-04", VISIT1), ("2025-04-15", VISIT2)):
        for i, (name, q) in enumerate(tests):
            f = d / f"john-smith-{day}-{name}.h5"
            emulate(REG[name], q, f, subject="P017", start_utc=f"{day}T09:{10 + 5 * i:02d}:00.000+00:00",
                    operator="Dr Jane Doe", notes="patient John Smith, ward 3", seed=i + 1)
            files.append(f)
    for k, day in enumerate(("2025-03-11", "2025-03-18", "2025-03-25")):
        f = d / f"home-{day}.h5"
        emulate(REG["pelvic-tilt"], "good", f, subject="P017", start_utc=f"{day}T18:00:00.000+00:00",
                operator="home", seed=10 + k)
        home.append(f)
    return files, home


@pytest.fixture(scope="module")
def report(subject, tmp_path_factory):
    files, home = subject
    rep = build_report(files + home, registry=REG)
    out = write_report(rep, tmp_path_factory.mktemp("out") / "report.html")
    return rep, out


@pytest.mark.slow
def test_report_sections_results_and_plots(report):
    rep, out = report
    html = out.read_text()
    assert rep.subject == "P017" and [v.date for v in rep.visits] == ["2025-03-04", "2025-04-15"]
    # the summary accounts for every test of a visit: passed, failed, or without a pass/fail
    summary = re.findall(r"<tr><td class=date>([^<]*)</td>" + r"<td class=num>(\d+)</td>" * 4, html)
    assert [d for d, *_ in summary] == ["2025-03-04", "2025-04-15"]
    for _, n, p, f, other in summary:
        assert int(p) + int(f) + int(other) == int(n) and int(other) > 0  # quiet standing eyes closed: no criterion
    for section in ('id="summary"', 'id="progress"', 'id="visit-2025-03-04"', 'id="visit-2025-04-15"',
                    "Home biofeedback (adherence)", "Movement-control test battery", "Romberg ratio",
                    "Calibration", "Lumbar flexion ROM"):
        assert section in html, section
    # every embedded plot is a base64 PNG; nothing is fetched from elsewhere
    imgs = re.findall(r'<img class="plot" src="data:image/png;base64,', html)
    assert len(imgs) >= 20
    assert not re.search(r'(src|href)="(https?:|file:|/)', html)
    # each test's result against its criterion, battery before/after
    v1, v2 = rep.visits
    assert v1.battery[0].positive == 3 and v1.battery[0].impaired is True
    assert v2.battery[0].positive == 0
    assert "3 of 6 tests positive" in html and "0 of 6 tests positive" in html
    # adherence: 3 home sessions between the visits, with their repetitions
    assert "2025-03-04 → 2025-04-15" in html
    home = [r for r in rep.records if r.home]
    assert len(home) == 3 and all(r.result.status == "pass" for r in home)


@pytest.mark.slow
def test_tests_are_named_for_people_and_the_battery_keeps_its_order(report):
    rep, out = report
    html = out.read_text()
    battery = REG["luomajoki"]
    rows = rep.visits[0].battery[0].rows()
    assert [t for t, _ in rows] == [REG[n].title for n in battery.items]
    done = {n for n, _ in VISIT1}
    assert [r is not None for _, r in rows] == [n in done for n in battery.items]
    # numbered in the battery's order, done or not; no test is named by its file name
    at = [html.index(f"<td>{i}. {escape(REG[n].title)}</td>") for i, n in enumerate(battery.items, 1)]
    assert at == sorted(at)
    for name in {n for n, _ in VISIT1} | set(battery.items):
        assert f"<td>{name}</td>" not in html, name
    from lumbar.report.sessions import progress

    rows = progress(rep.visits, REG)
    assert rows and all(r.title == REG[r.protocol].title for r in rows)
    # rocking counts both ways: 5 backward + 5 forward at each visit (the emulated patient's truth)
    rocks = next(r for r in rows if r.protocol == "rocking" and r.label == "Repetitions counted")
    assert rocks.values == [10, 10]
    assert "repetitions counted: <b>10</b> (5 backward, 5 forward)" in html
    # a count is a whole number: "6", not "6.0"
    counts = re.findall(r"<td>Repetitions counted</td>(.*?)</tr>", html)
    assert counts
    for cells in counts:
        nums = re.findall(r"<td class=num>([^<]*)</td>", cells)
        assert nums and all(re.fullmatch(r"-?\d+|—", x) for x in nums), nums
    # the progress table: each test's title once, as the heading of its measures, in the order of the rows
    table = html[html.index('id="progress"'):html.index("Home biofeedback")]
    heads = re.findall(r"<tr class=group><th colspan=\d+>([^<]*)</th></tr>", table)
    titles = list(dict.fromkeys(escape(r.title) for r in rows))
    assert heads[:len(titles)] == titles and len(set(heads)) == len(heads)
    assert "<th>test</th>" not in table
    # a row's change has its values' decimals ("0.1" beside "-3.3", not "0.125")
    smooth = re.findall(r"<tr><td>Smoothness[^<]*</td>(.*?)</tr>", table)
    assert smooth
    for cells in smooth:
        nums = [x for x in re.findall(r"<td class=num>([^<]*)</td>", cells)[:3] if x != "—"]
        assert nums and {len(x.split(".")[-1]) for x in nums} == {1}, nums


def test_progress_panels_put_judgeable_changes_first():
    from lumbar.report.plots import MAX_PROGRESS_PANELS, progress_panels
    from lumbar.report.sessions import ProgressRow

    def row(kind, mdc=None, values=(1.0, 2.0)):
        return ProgressRow("t", "T", kind, kind, "", list(values), 1.0, mdc, "", None, None)

    quality = [row("quality") for _ in range(MAX_PROGRESS_PANELS)]
    crit, judged = row("criterion"), row("criterion", mdc=5.0)
    once = row("criterion", values=(1.0, None))  # measured at one visit only: no panel
    rows = quality + [once, crit, judged]
    got = progress_panels(rows)
    assert len(got) == MAX_PROGRESS_PANELS and once not in got
    assert got[-2:] == [crit, judged]  # kept, in the table's order, ahead of repetition quality
    assert got[:-2] == quality[: MAX_PROGRESS_PANELS - 2]


@pytest.mark.slow
def test_report_carries_only_the_pseudonymous_code(report, subject):
    rep, out = report
    html = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", out.read_text())  # random base64 can spell anything
    for word in PII:
        assert word not in html, word
    files, _ = subject
    assert "john-smith" not in html and str(files[0].parent) not in html
    from lumbar.storage import read_session

    assert read_session(files[0], load_truth=False).info.session_id not in html


@pytest.mark.slow
def test_progress_rows_with_mdc(report):
    rep, out = report
    html = out.read_text()
    assert "MDC" in html and "Laird" in html
    assert "beyond MDC" in html or "within MDC" in html


@pytest.mark.slow
def test_evidence_is_said_in_words(report):
    """How firm each threshold is, in the clinician's words; the project's labels only in the tooltips."""
    _, out = report
    html = out.read_text()
    shown = re.sub(r'title="[^"]*"', "", html)
    for label in ("[CONFIRMED]", "[PROJECT DEFAULT]", "[FROM MEMORY", "METRICS.md", "θ_tol"):
        assert label not in shown, label
    assert shown.count(">published value</span>") > 3  # the header's legend, the criteria, the battery
    assert ">project default: no published value</span>" in shown  # the 10° low-back limit
    assert 'title="PROJECT DEFAULT"' in html


def test_trend_column_from_three_visits():
    """Two visits: the change only (a slope through two points says nothing more); three: the trend too.
    A measure without a published MDC shows a dash, explained under the table."""
    from lumbar.report.html import _progress
    from lumbar.report.sessions import ProgressRow

    def table(n):
        rows = [ProgressRow("t", "Waiter's bow", "criterion", "Low back stays still", "deg",
                            [10.0 - i for i in range(n)], -(n - 1.0), None, "", 1.0 if n > 2 else None, None)]
        return _progress([f"2025-0{i + 1}-01" for i in range(n)], rows, [], [None] * n, with_plots=False)

    two, three = table(2), table(3)
    assert "trend / week" not in two and "from three visits on" in two
    assert "trend / week" in three and "least-squares slope" in three
    assert two.count("<td") + 2 == three.count("<td")  # the row gains the third value and the slope
    assert "unknown" not in two and "none published" in two


@pytest.mark.slow
@pytest.mark.skipif(find_chromium() is None, reason="headless Chromium is not installed (Debian: apt-get install chromium)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    rep, out = report
    dom = dump_dom(out)
    n = int(re.search(r'data-images="(\d+)"', dom).group(1))
    ok = int(re.search(r'data-images-ok="(\d+)"', dom).group(1))
    assert n >= 20 and ok == n, (n, ok)  # every embedded plot decoded and laid out
    for section in ('id="summary"', 'id="progress"', 'class="visit"', "Movement-control test battery"):
        assert section in dom
    png = screenshot(out, tmp_path / "shot.png", 1100, 2400)
    from PIL import Image

    im = Image.open(png).convert("L")
    assert im.size == (1100, 2400) and len(set(im.resize((55, 120)).tobytes())) > 20  # not a blank page
    if os.environ.get("LUMBAR_WRITE_DOC_IMAGES"):
        full = screenshot(out, tmp_path / "full.png", 1100, 9000)
        im = Image.open(full)
        for i, top in enumerate((0, 1500, 3000)):
            im.crop((0, top, 1100, top + 1500)).save(DOC_IMAGES / f"report-{i + 1}.png", optimize=True)
    pdf = html_to_pdf(out, tmp_path / "report.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_the_lumbar_share_is_drawn_for_bends_only(monkeypatch, tmp_path):
    """The per-repetition bars carry each repetition's lumbar share where the test measures the lumbo-pelvic
    rhythm (forward flexion), not on a rock on all fours (where the back should not move at all)."""
    import lumbar.report.plots as plots

    drawn = {}
    real = plots.repetition_bars

    def spy(reps, principal, *, lumbar_share=True):
        drawn[principal] = lumbar_share
        return real(reps, principal, lumbar_share=lumbar_share)

    monkeypatch.setattr(plots, "repetition_bars", spy)
    files = [emulate(REG[n], "good", tmp_path / f"{n}.h5", subject="P003", seed=1) for n in ("flexion", "rocking")]
    build_report(files, registry=REG)
    assert drawn == {"trunk flexion": True, "pelvic tilt": False}


def test_pdf_without_chromium_is_refused_cleanly(monkeypatch, tmp_path, capsys):
    import lumbar.report as rp

    monkeypatch.setattr(rp, "find_chromium", lambda: None)
    with pytest.raises(ReportError, match="no Chromium"):
        rp.html_to_pdf(tmp_path / "x.html", tmp_path / "x.pdf")


def test_report_refuses_two_subjects(tmp_path):
    a = emulate(REG["sitting-knee-extension"], "good", tmp_path / "a.h5", subject="P001")
    b = emulate(REG["sitting-knee-extension"], "good", tmp_path / "b.h5", subject="P002")
    with pytest.raises(ReportError, match="one subject"):
        build_report([a, b], registry=REG)
    assert main(["report", str(a), "-o", str(tmp_path / "r.txt")]) == 2
