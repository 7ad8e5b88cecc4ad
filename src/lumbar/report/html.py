"""The self-contained HTML report: inline CSS, figures as base64 PNG, no external resource."""
from __future__ import annotations

import html
import itertools
import math
from datetime import datetime, timezone
from typing import Any, Sequence

from lumbar.protocols.schema import EVIDENCE_WORDS
from lumbar.protocols.scoring import format_value, shown_decimals, threshold_text
from lumbar.report import plots
from lumbar.report.sessions import Adherence, ProgressRow, SessionRecord, Visit

__all__ = ["render_html"]

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d2330;background:#f4f5f7}
main{max-width:980px;margin:0 auto;padding:24px 28px;background:#fff}
h1{font-size:1.5rem;margin:0 0 4px} h2{font-size:1.2rem;border-bottom:2px solid #1f77b4;padding-bottom:3px;margin-top:32px}
h3{font-size:1.02rem;margin:22px 0 6px} .meta{color:#555;font-size:.9rem}
table{border-collapse:collapse;width:100%;font-size:.86rem;margin:6px 0 10px}
th,td{border-bottom:1px solid #e2e4e8;padding:4px 6px;text-align:left;vertical-align:top} th{background:#f0f2f5}
tr.group th{background:#fff;border-bottom:1px solid #1f77b4;padding-top:12px;font-size:.9rem}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap} .date{white-space:nowrap}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.8rem;font-weight:600;color:#fff}
.pass{background:#2ca02c}.fail{background:#d62728}.incomplete{background:#e6a100}.notscored{background:#7f7f7f}
.ok{color:#2ca02c;font-weight:600}.bad{color:#d62728;font-weight:600}.na{color:#888}
.src{font-size:.75rem;color:#666}
.ev{display:inline-block;font-size:.7rem;padding:0 5px;border-radius:3px;border:1px solid;white-space:nowrap}
.ev-published{color:#1b6e1b;border-color:#9ccc9c}.ev-unchecked{color:#8a5a00;border-color:#e0c080}
.ev-default{color:#555;border-color:#bbb}
figure{margin:8px 0} figure img{max-width:100%} .row{display:flex;gap:12px;flex-wrap:wrap}
.card{border:1px solid #e2e4e8;border-radius:6px;padding:10px 14px;margin:10px 0}
.summary{font-size:1.05rem;font-weight:600} .small{font-size:.8rem;color:#555}
@media print{body{background:#fff} main{padding:0} .card{break-inside:avoid}}
"""

_BADGE = {"pass": ("pass", "PASS"), "fail": ("fail", "FAIL"), "incomplete": ("incomplete", "INCOMPLETE"),
          "not scored": ("notscored", "MEASURED")}


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


_EV_CLASS = {"CONFIRMED": "ev-published", "FROM MEMORY – VERIFY": "ev-unchecked", "PROJECT DEFAULT": "ev-default"}


def _evidence(label: str) -> str:
    """An evidence label in the clinician's words (its project label in the tooltip)."""
    return (f'<span class="ev {_EV_CLASS.get(label, "ev-default")}" title="{_e(label)}">'
            f"{_e(EVIDENCE_WORDS.get(label, label))}</span>")


def _threshold(op: str, th: Any, unit: str) -> str:
    return _e(threshold_text(op, th, unit))


def _badge(status: str) -> str:
    cls, word = _BADGE[status]
    return f'<span class="badge {cls}">{word}</span>'


def _img(uri: str | None, alt: str) -> str:
    return "" if uri is None else f'<figure><img class="plot" src="{uri}" alt="{_e(alt)}"></figure>'


_STATIC_ONLY = "static calibration only"


def _problems(c: dict) -> str:
    """Calibration warnings that call for a check ("static only" is a kind, not a problem)."""
    return "; ".join(w for w in str(c.get("warnings") or "").split("; ") if w and not w.startswith(_STATIC_ONLY))


def _calibration(rec: SessionRecord) -> str:
    rows = []
    for sid, c in rec.calibration.items():
        w = _problems(c)
        quality = '<span class="ok">good</span>' if not w else f'<span class="bad">check</span> <span class="small">{_e(w)}</span>'
        rows.append(f"<tr><td>{_e(sid)}</td><td>{_e(c.get('kind', '—'))}</td>"
                    f"<td class=num>{format_value(c.get('static_acc_sd_mps2'), 'm/s^2', 3)}</td>"
                    f"<td class=num>{format_value(_deg(c.get('static_gyro_rms_rads')), 'deg/s', 2)}</td>"
                    f"<td class=num>{format_value(c.get('axis_off_horizontal_deg'), 'deg', 1)}</td><td>{quality}</td></tr>")
    if not rows:
        return '<p class="small">No calibration stored.</p>'
    return ("<table><tr><th>sensor</th><th>calibration</th><th>still: acc SD</th><th>still: gyro RMS</th>"
            "<th>functional axis off horizontal</th><th>quality</th></tr>" + "".join(rows) + "</table>")


def _deg(v: Any) -> float | None:
    return None if v is None else float(v) * 180.0 / math.pi


def _test_card(rec: SessionRecord, with_plots: bool) -> str:
    p, r = rec.protocol, rec.result
    out = [f'<div class="card test" data-protocol="{_e(p.name if p else rec.movement)}">']
    head = _badge(r.status) if r else _badge("not scored")
    out.append(f"<h3>{head} {_e(rec.title)}</h3>")
    if p is not None:
        out.append(f'<p class="small">{_e(p.purpose)} Time (UTC): {rec.start_utc.strftime("%H:%M")}.</p>')
    for w in rec.warnings:  # what the operator could act on, before the numbers
        out.append(f'<p class="bad">⚠ {_e(w)}</p>')
    if r is not None and r.criteria:
        out.append("<table><tr><th>criterion</th><th>measured</th><th>needed</th><th>result</th><th>what it means</th>"
                   "<th>source</th></tr>")
        for c in r.criteria:
            res = ('<span class="ok">met</span>' if c.passed else '<span class="bad">not met</span>'
                   if c.passed is False else '<span class="na">not measured</span>')
            out.append(f"<tr><td>{_e(c.label)}</td><td class=num>{format_value(c.value, c.unit)}</td>"
                       f"<td class=num>{_threshold(c.op, c.threshold, c.unit)}</td><td>{res}</td>"
                       f"<td>{_e(c.explanation)}</td><td class=src>{_evidence(c.evidence)} {_e(c.source)}</td></tr>")
        out.append("</table>")
        if p is not None and p.get("published_criterion"):
            out.append(f'<p class="small">Published (observational) criterion: {_e(p.published_criterion)}</p>')
    if r is not None and r.references:
        out.append("<table><tr><th>compared with</th><th>measured</th><th>reference groups</th><th>closest to</th>"
                   "<th>source</th></tr>")
        for ref in r.references:
            groups = "; ".join(f"{_e(g['population'])}: {format_value(g.get('value'), ref.unit)}" for g in ref.groups)
            out.append(f"<tr><td>{_e(ref.label)}</td><td class=num>{format_value(ref.value, ref.unit)}</td><td>{groups}</td>"
                       f"<td>{_e(ref.nearest or '—')}</td><td class=src>{_evidence(ref.evidence)} {_e(ref.source)}</td></tr>")
        out.append("</table>")
    reps = rec.repetitions()
    key = []
    sets = [(rec.results[k], way) for k, way in rec.repetition_sets() if isinstance(rec.results.get(k), dict)]
    if sets:
        rejected = sum(len(rs.get("rejected") or []) for rs, _ in sets)
        cv = "; ".join(f"{way + ' ' if way else ''}{format_value((rs.get('consistency') or {}).get('cv_rom_pct'), '%')}"
                       for rs, way in sets if rs.get("consistency"))
        ways = ", ".join(f"{rs.get('count', 0)} {way}" for rs, way in sets) if len(sets) > 1 else ""
        key.append(f"repetitions counted: <b>{rec.repetition_count() or 0}</b>"
                   + (f" ({ways})" if ways else "") + (f" (rejected {rejected})" if rejected else "")
                   + (f", ROM variability (CV) {cv}" if cv else ""))
    if "lumbar_rom" in rec.results and rec.results["lumbar_rom"].get("rom"):
        rom = rec.results["lumbar_rom"]["rom"]
        key.append("lumbar range: flexion–extension {}, lateral bending {}, axial rotation {}".format(
            *(format_value(x, "deg") for x in rom)))
    fc = rec.results.get("frontal_control")
    if isinstance(fc, dict) and fc.get("sides_from") == "thighs":  # one-leg stance, the legs told apart
        key.append("; ".join(f"standing on the {leg} leg ({fc.get(f'stances_{leg}', 0)}×): low back sideways "
                             f"{format_value(fc.get(f'lean_on_{leg}'), 'deg')}, pelvis "
                             f"{format_value(fc.get(f'drop_on_{leg}'), 'deg')}" for leg in ("left", "right"))
                   + f"; difference between the legs {format_value(fc.get('lean_difference'), 'deg')} "
                     "(the legs told apart by the thigh sensors)")
    if key:
        out.append('<p class="small">' + " · ".join(key) + "</p>")
    if with_plots and rec.signals is not None:
        sig = rec.signals
        principal = (rec.principal or "movement").replace("_", " ")
        figs = []
        if sig.sway_ap is not None:
            figs.append(_img(plots.stabilogram(sig.sway_ap, sig.sway_ml), "stabilogram with 95 % ellipse"))
        if reps or rec.results.get("dissociation"):
            hips = rec.principal == "hip_flexion"  # the hip moves in this test, measured with thigh sensors
            figs.append(_img(plots.lumbar_vs_moving(sig, reps, hips=hips),
                             f"lumbar flexion against {'hip flexion' if hips else 'pelvic tilt'}"))
        out.append(_img(plots.angle_trace(sig, reps), "angle traces with repetitions marked"))
        if figs:
            out.append('<div class="row">' + "".join(figs) + "</div>")
        rhythm = bool(p.get("analysis", {}).get("rhythm")) if p else False  # lumbar share: bends only
        out.append(_img(plots.repetition_bars(reps, principal, lumbar_share=rhythm), "per-repetition quality"))
    if r is not None and r.notes:
        out.append('<ul class="small">' + "".join(f"<li>{_e(n)}</li>" for n in r.notes) + "</ul>")
    for n in rec.notes:
        out.append(f'<p class="small">Note: {_e(n)}</p>')
    out.append(f"<details><summary class=small>Calibration quality</summary>{_calibration(rec)}</details>")
    out.append("</div>")
    return "\n".join(out)


def _calibration_overview(v: Visit) -> str:
    bad = [(s.title, sid, _problems(c)) for s in v.sessions for sid, c in s.calibration.items() if _problems(c)]
    kinds = sorted({str(c.get("kind")) for s in v.sessions for c in s.calibration.values()})
    if not bad:
        return f'<p>Calibration: <span class="ok">good</span> in every session ({_e(", ".join(kinds))}).</p>'
    items = "".join(f"<li>{_e(t)} — {_e(sid)}: {_e(w)}</li>" for t, sid, w in bad)
    return f'<p>Calibration ({_e(", ".join(kinds))}): <span class="bad">check</span></p><ul class="small">{items}</ul>'


def _battery(v: Visit) -> str:
    out = []
    for b in v.battery:
        rows = "".join(f"<tr><td>{i}. {_e(title)}</td><td>"
                       + (_badge(r.status) if r is not None else "<span class=na>not done</span>") + "</td></tr>"
                       for i, (title, r) in enumerate(b.rows(), 1))
        refs = "; ".join(
            f"{_e(ref['label'])}: " + ", ".join(f"{_e(g['population'])} {g.get('value')}" for g in ref["groups"])
            + f" ({_e(ref['source'])} {_evidence(ref['evidence'])})" for ref in b.references)
        cls = "bad" if b.impaired else "ok" if b.impaired is False else "na"
        out.append(f'<div class="card battery"><h3>{_e(b.title)}</h3><p class="summary"><span class="{cls}">'
                   f"{_e(b.statement)}</span></p><p class=small>Rule: {_e(b.source)} {_evidence(b.evidence)}</p>"
                   f"<table><tr><th>test</th><th>result</th></tr>{rows}</table><p class=small>Reference: {refs}</p></div>")
    return "\n".join(out)


def _row_decimals(r: ProgressRow) -> int:
    """Decimals for a progress row's values and change: those of its largest value, so a change of 0.125
    beside values of −3.3 reads 0.1."""
    vals = [abs(v) for v in r.values if v is not None and math.isfinite(v)]
    return shown_decimals(max(vals), r.unit) if vals else 1


def _progress(dates: Sequence[str], rows: Sequence[ProgressRow], adh: Sequence[Adherence], romb: Sequence[float | None],
              with_plots: bool) -> str:
    out = ['<section id="progress"><h2>Progress across visits</h2>']
    if len(dates) < 2:
        out.append("<p>Only one visit: progress needs two or more.</p>")
    else:
        if with_plots:
            out.append(_img(plots.progress_plot(dates, rows), "progress across visits"))
        head = "".join(f"<th class=date>{_e(d)}</th>" for d in dates)
        trend = len(dates) >= 3  # a slope from two visits is only their change again
        width = len(dates) + 4 + trend
        out.append(f"<table><tr><th>measure</th>{head}<th>change</th>{'<th>trend / week</th>' if trend else ''}"
                   "<th>MDC</th><th>real change?</th></tr>")
        # one heading per test, its measures below: a long title is read once, not wrapped on every row
        for title, group in itertools.groupby(rows, key=lambda r: r.title):
            out.append(f'<tr class=group><th colspan={width}>{_e(title)}</th></tr>')
            for r in group:
                nd = r.decimals if r.decimals is not None else _row_decimals(r)
                vals = "".join(f"<td class=num>{format_value(v, r.unit, nd)}</td>" for v in r.values)
                real = ("—" if r.beyond_mdc is None else '<span class="ok">yes, beyond MDC</span>' if r.beyond_mdc
                        else "within MDC")
                mdc = ('<span class=na>—</span>' if r.mdc is None else
                       f'{format_value(r.mdc, r.unit)} <span class=src>{_evidence(r.mdc_evidence)} {_e(r.mdc_source)}</span>')
                slope = f"<td class=num>{format_value(r.slope_per_week, r.unit)}</td>" if trend else ""
                out.append(f"<tr><td>{_e(r.label)}</td>{vals}<td class=num>{format_value(r.change, r.unit, nd)}</td>"
                           f"{slope}<td>{mdc}</td><td>{real}</td></tr>")
        if any(x is not None for x in romb):
            vals = "".join(f"<td class=num>{format_value(x, '', 2)}</td>" for x in romb)
            out.append(f"<tr class=group><th colspan={width}>Quiet standing, eyes closed and open</th></tr>"
                       f"<tr><td>Romberg ratio (eyes closed / open, RMS AP)</td>{vals}"
                       f"<td></td>{'<td></td>' if trend else ''}<td><span class=na>—</span></td><td>—</td></tr>")
        out.append("</table>")
        out.append('<p class="small">MDC: minimal detectable change (90 %) where the literature gives one (—: none '
                   "published); a change within it may be measurement noise, and without one, whether a change is real "
                   "cannot be said."
                   + (" Trend: least-squares slope over the visits." if trend else
                      " A trend per week is given from three visits on.") + "</p>")
    out.append('<h3>Home biofeedback (adherence)</h3>')
    if not adh:
        out.append('<p class="small">No home sessions among the files.</p>')
    else:
        out.append("<table><tr><th>period</th><th>sessions</th><th>repetitions</th><th>tests passed</th>"
                   "<th>smoothness (mean SPARC)</th></tr>")
        for a in adh:
            out.append(f"<tr><td>{_e(a.period)}</td><td class=num>{a.sessions}</td><td class=num>{a.repetitions}</td>"
                       f"<td class=num>{a.passed} of {a.scored}</td><td class=num>{format_value(a.mean_sparc, '', 2)}</td></tr>")
        out.append("</table>")
    out.append("</section>")
    return "\n".join(out)


def render_html(subject: str, visits: Sequence[Visit], rows: Sequence[ProgressRow], adh: Sequence[Adherence],
                *, with_plots: bool = True, software: str = "") -> str:
    """The whole page. Only the pseudonymous subject code identifies the person."""
    dates = [v.date for v in visits]
    protocols = sorted({s.title for v in visits for s in v.sessions})  # titles hold commas: joined by "; "
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    body = [f'<header><h1>Lumbar motor control — subject {_e(subject)}</h1>'
            f'<p class="meta">Visits: {_e(", ".join(dates) or "—")} · tests: {_e("; ".join(protocols) or "—")} · '
            f"report made {now}{(' with lumbar ' + _e(software)) if software else ''}</p>"
            '<p class="small">Angles in degrees relative to the calibration posture. Beside each pass/fail threshold '
            "and reference value: its source, and how firm it is: "
            + " ".join(_evidence(k) for k in EVIDENCE_WORDS) + "</p></header>"]
    if not with_plots:
        body.append(f'<p class="small">{_e(plots.MISSING)}</p>')
    other = "tests without a pass/fail criterion, or whose criteria could not all be measured"
    body.append('<section id="summary"><h2>Summary</h2><table><tr><th>visit</th><th>tests</th><th>passed</th>'
                f'<th>failed</th><th title="{other}">no pass/fail</th><th>battery</th><th>calibration</th></tr>')
    for v in visits:
        res = [s.result for s in v.sessions if s.result is not None]
        cal_ok = all(not _problems(c) for s in v.sessions for c in s.calibration.values())
        bat = "; ".join(b.statement for b in v.battery) or "—"
        passed, failed = sum(r.status == "pass" for r in res), sum(r.status == "fail" for r in res)
        # the others: tests without a pass/fail criterion, or whose criteria could not all be measured
        body.append(f"<tr><td class=date>{_e(v.date)}</td><td class=num>{len(v.sessions)}</td>"
                    f"<td class=num>{passed}</td><td class=num>{failed}</td>"
                    f"<td class=num>{len(v.sessions) - passed - failed}</td><td>{_e(bat)}</td>"
                    f"<td>{'good' if cal_ok else 'check'}</td></tr>")
    body.append("</table></section>")
    if len(visits) >= 2 or adh:
        body.append(_progress(dates, rows, adh, [v.romberg() for v in visits], with_plots))
    for i, v in enumerate(reversed(visits)):
        body.append(f'<section class="visit" id="visit-{_e(v.date)}"><h2>Visit {_e(v.date)}'
                    f'{" (latest)" if i == 0 and len(visits) > 1 else ""}</h2>')
        body.append(_calibration_overview(v))
        rb = v.romberg()
        if rb is not None:
            body.append(f"<p>Romberg ratio (eyes closed / eyes open, forward–backward sway RMS): <b>{rb:.2f}</b> "
                        '<span class="small">(healthy adults on a force plate: centre-of-pressure RMS eyes closed / open '
                        "≈ 6.3 / 5.0 mm = 1.26, PMC3966255 Table 3; not an accelerometer norm)</span></p>")
        body.append(_battery(v))
        for s in v.sessions:
            body.append(_test_card(s, with_plots))
        body.append("</section>")
    check = ("<script>addEventListener('load',()=>{const i=[...document.images];document.body.dataset.images="
             "i.length;document.body.dataset.imagesOk=i.filter(x=>x.complete&&x.naturalWidth>0).length;});</script>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Lumbar report {_e(subject)}"
            f"</title><style>{CSS}</style></head><body><main>" + "\n".join(body) + f"</main>{check}</body></html>\n")
