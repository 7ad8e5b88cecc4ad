"""Report figures, rendered without a display (matplotlib, Agg) and embedded as base64 PNG."""
from __future__ import annotations

import base64
import io
import math
from typing import Any, Sequence

import numpy as np

__all__ = ["available", "angle_trace", "lumbar_vs_moving", "stabilogram", "repetition_bars", "progress_plot",
           "progress_panels", "MISSING"]

MISSING = ("plots need matplotlib (pip install matplotlib); the report is written with tables only")
BLUE, ORANGE, GREEN, RED, GREY, PURPLE = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#7f7f7f", "#9467bd"


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


def _fig(w: float = 7.5, h: float = 2.8):
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=110, layout="constrained")
    return fig


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def angle_trace(sig: Any, reps: Sequence[dict[str, Any]]) -> str:
    """Lumbar, pelvic, trunk (and, with thigh sensors, hip) angles over time, repetitions shaded and numbered."""
    fig = _fig()
    ax = fig.add_subplot()
    t = sig.time_s
    for y, name, c in ((sig.trunk_flexion, "trunk (T12/L1 sensor) inclination", GREY),
                       (sig.pelvic_tilt, "pelvic tilt (anterior +)", ORANGE),
                       (sig.lumbar_flexion, "lumbar flexion", BLUE),
                       (sig.hip_flexion, "hip flexion (thigh sensors)", PURPLE)):
        if y is not None:
            ax.plot(t, y, color=c, lw=1.2, label=name)
    ax.axvspan(t[0], sig.static_end_s, color="#dddddd", alpha=0.6, lw=0)
    ax.text(t[0] + 0.2, 0.97, "calibration", transform=ax.get_xaxis_transform(), va="top", fontsize=7, color="#555")
    for i, r in enumerate(reps, 1):
        if r.get("start_s") is None or r.get("end_s") is None:
            continue
        ax.axvspan(r["start_s"], r["end_s"], color=GREEN, alpha=0.10, lw=0)
        ax.text((r["start_s"] + r["end_s"]) / 2, 0.02, str(i), transform=ax.get_xaxis_transform(), ha="center",
                fontsize=7, color=GREEN)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("angle (°)")
    ax.axhline(0, color="k", lw=0.5)
    ax.legend(fontsize=7, loc="upper right", ncols=3)
    ax.set_title("Angles over time (green: counted repetitions)", fontsize=9)
    return _png(fig)


def lumbar_vs_moving(sig: Any, reps: Sequence[dict[str, Any]], *, hips: bool = False) -> str | None:
    """Angle–angle plot: lumbar flexion against the moving segment's angle, pelvic tilt (or, with ``hips``, hip
    flexion from thigh sensors), one curve per repetition."""
    x = sig.hip_flexion if hips else sig.pelvic_tilt
    if sig.lumbar_flexion is None or x is None:
        return None
    fig = _fig(4.2, 3.6)
    ax = fig.add_subplot()
    t = sig.time_s
    if reps:
        import matplotlib

        cmap = matplotlib.colormaps["viridis"]
        for i, r in enumerate(reps):
            m = (t >= r["start_s"]) & (t <= r["end_s"])
            ax.plot(x[m], sig.lumbar_flexion[m], color=cmap(i / max(1, len(reps) - 1)), lw=1.2,
                    label=f"rep {i + 1}" if i in (0, len(reps) - 1) else None)
    else:
        m = t > sig.static_end_s
        ax.plot(x[m], sig.lumbar_flexion[m], color=BLUE, lw=0.8)
    lim = np.nanmax(np.abs(np.r_[x, sig.lumbar_flexion, 5.0]))
    ax.plot([-lim, lim], [-lim, lim], color=GREY, lw=0.6, ls="--", label="equal motion")
    ax.axhspan(-10, 10, color=GREEN, alpha=0.08, lw=0)
    ax.set_xlabel("hip flexion (°)" if hips else "pelvic tilt (°)")
    ax.set_ylabel("lumbar flexion (°)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(fontsize=7)
    ax.set_title(f"Lumbar vs {'hips' if hips else 'pelvis'} (band: ±10° lumbar)", fontsize=9)
    return _png(fig)


def stabilogram(ap: np.ndarray, ml: np.ndarray) -> str:
    """ML vs AP horizontal acceleration with the 95 % confidence ellipse (Prieto: F-based)."""
    from scipy import stats

    fig = _fig(3.8, 3.6)
    ax = fig.add_subplot()
    ax.plot(ml, ap, color=BLUE, lw=0.5, alpha=0.8)
    n = len(ap)
    cov = np.cov(np.vstack([ml, ap]), ddof=1)
    f = stats.f.ppf(0.95, 2, n - 2) * 2 * (n - 1) / (n - 2)
    w, v = np.linalg.eigh(cov)
    th = np.linspace(0, 2 * math.pi, 200)
    ell = (v @ np.diag(np.sqrt(np.maximum(w, 0) * f)) @ np.vstack([np.cos(th), np.sin(th)]))
    ell += np.array([[np.mean(ml)], [np.mean(ap)]])
    area = math.pi * f * math.sqrt(max(np.linalg.det(cov), 0.0))
    ax.plot(ell[0], ell[1], color=RED, lw=1.5, label=f"95 % ellipse, {area:.4f} (m/s²)²")
    ax.set_xlabel("medio-lateral (m/s², right +)")
    ax.set_ylabel("antero-posterior (m/s², forward +)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title("Stabilogram (sacral acceleration)", fontsize=9)
    return _png(fig)


def repetition_bars(reps: Sequence[dict[str, Any]], principal: str, *, lumbar_share: bool = True) -> str | None:
    """Per-repetition ROM (bars) and smoothness (SPARC, dots) — the quality of each repetition; with
    ``lumbar_share``, each bend's lumbar share on top of its bar (a test that measures the lumbo-pelvic
    rhythm: forward flexion)."""
    if not reps:
        return None
    fig = _fig(7.5, 2.5)
    ax = fig.add_subplot()
    k = np.arange(1, len(reps) + 1)
    rom = [r.get("rom") or 0.0 for r in reps]
    share = [r.get("lumbar_share_pct") if lumbar_share else None for r in reps]
    ax.bar(k, rom, color=BLUE, alpha=0.8, label=f"ROM of {principal} (°)")
    mean = float(np.mean(rom))
    ax.axhline(mean, color=GREY, ls="--", lw=0.8)
    ax.set_xlabel("repetition")
    ax.set_ylabel("ROM (°)")
    if any(r.get("direction") for r in reps):  # counted both ways (rocking): say which way each went
        ax.set_xticks(k, [f"{i}\n{r.get('direction', '')}" for i, r in zip(k, reps)], fontsize=6)
    else:
        ax.set_xticks(k)
    ax2 = ax.twinx()
    sp = [np.nan if r.get("sparc") is None else r["sparc"] for r in reps]
    ax2.plot(k, sp, "o-", color=ORANGE, ms=4, lw=1, label="SPARC (closer to 0 = smoother)")
    ax2.set_ylabel("SPARC")
    if any(s is not None for s in share):
        for x, s, h in zip(k, share, rom):
            if s is not None and math.isfinite(s):
                ax.text(x, h, f"{s:.0f}%", ha="center", va="bottom", fontsize=6, color="#333")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="lower right")
    on_top = ", lumbar share on top" if any(s is not None and math.isfinite(s) for s in share) else ""
    ax.set_title(f"Each repetition: range (bars{on_top}) and smoothness (dots)", fontsize=9)
    return _png(fig)


#: Panels of the progress figure; the table below it lists every row.
MAX_PROGRESS_PANELS = 8


#: Smallest y range of a progress panel, by unit (degrees, percent): a 1° change is drawn as small as it is.
MIN_PROGRESS_SPAN = {"deg": 10.0, "%": 10.0}


def progress_panels(rows: Sequence[Any]) -> list[Any]:
    """The progress rows worth a panel (measured at two visits or more), at most
    :data:`MAX_PROGRESS_PANELS`: those with a known MDC first, then criteria and references, then
    repetition quality; returned in their original (table) order."""
    rows = [r for r in rows if sum(v is not None for v in r.values) >= 2]
    rank = {"criterion": 1, "reference": 1}
    keep = sorted(range(len(rows)), key=lambda i: (0 if rows[i].mdc is not None else rank.get(rows[i].kind, 2), i))
    return [rows[i] for i in sorted(keep[:MAX_PROGRESS_PANELS])]


def progress_plot(dates: Sequence[str], rows: Sequence[Any]) -> str | None:
    """Small multiples: one panel per row of :func:`progress_panels`, with the MDC band around the
    first visit."""
    import textwrap

    from matplotlib.ticker import MaxNLocator

    rows = progress_panels(rows)
    if not rows:
        return None
    ncol = 2
    nrow = math.ceil(len(rows) / ncol)
    fig = _fig(7.5, 2.2 * nrow)
    for i, r in enumerate(rows):
        ax = fig.add_subplot(nrow, ncol, i + 1)
        x = [j for j, v in enumerate(r.values) if v is not None]
        y = [r.values[j] for j in x]
        ax.plot(x, y, "o-", color=BLUE)
        if r.mdc is not None:
            ax.axhspan(y[0] - r.mdc, y[0] + r.mdc, color=GREY, alpha=0.15, lw=0, label="within MDC of visit 1")
            ax.legend(fontsize=6, loc="best")
        ax.set_xticks(range(len(dates)), [d[5:] for d in dates], fontsize=7)
        lo, hi = min(y), max(y)
        span = MIN_PROGRESS_SPAN.get(r.unit, 0.0)
        if r.mdc is None and hi - lo < span:  # a change within noise must not fill the panel
            mid = 0.5 * (lo + hi)
            ax.set_ylim(mid - 0.6 * span, mid + 0.6 * span)
        unit = {"deg": "°", "m/s^2": "m/s²"}.get(r.unit, r.unit)
        title = f"{r.title}: {r.label}" + (f" ({unit})" if unit else "")
        ax.set_title("\n".join(textwrap.wrap(title, 60)), fontsize=7)
        if r.kind == "quality" and not r.unit and all(float(v).is_integer() for v in y):
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # a count: no 5.2 repetitions
        ax.tick_params(labelsize=7)
    return _png(fig)
