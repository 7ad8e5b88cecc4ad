"""Reusable widgets: the application style, fast scrolling plots, the stabilogram, big read-outs.

Live plots follow pyqtgraph's fast idioms: preallocated double-length buffers (no per-frame allocation
or copying of the history), only the visible window drawn, peak downsampling to the plot's pixel width
(into preallocated arrays), light ``PlotCurveItem`` curves with ``setData(..., skipFiniteCheck=True)``
where the data cannot contain NaN and ``connect='finite'`` where it can, antialiasing off, no autorange.
The x axis is "seconds before now" with a fixed range, so axes never relayout. Several strip charts
share one :class:`pyqtgraph.GraphicsLayoutWidget` (one scene, one paint per frame).
"""
from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

__all__ = ["COLORS", "STYLE", "apply_style", "ScrollBuffer", "StripChart", "peak_decimate", "Stabilogram", "BigValue", "card",
           "AXIS_COLORS", "TILT_COLORS", "HIP_COLOR", "KNEE_COLOR", "degrees_text", "title_with_legend", "PlacementDiagram",
           "DegreeAxis"]

COLORS = {
    "bg": "#f4f6f8", "panel": "#ffffff", "text": "#1f2a33", "muted": "#5f6b76", "accent": "#00796b",
    "accent_dark": "#005b4f", "nav": "#1f2d38", "nav_text": "#d7e0e6", "ok": "#2e7d32", "warn": "#ef6c00",
    "bad": "#c62828", "band": "#a5d6a7", "grid": "#dde3e8", "rec": "#d32f2f",
}
#: x, y, z colours: blue, orange, reddish purple (Okabe & Ito's colour-blind-safe set; at 1 px a blue and a
#: teal looked alike).
AXIS_COLORS = ("#0072b2", "#e69f00", "#cc79a7")
#: Pelvic tilt, trunk flexion.
TILT_COLORS = ("#8e44ad", "#455a64")
#: Hip flexion (with thigh sensors): Okabe & Ito's vermillion.
HIP_COLOR = "#d55e00"
#: Knee flexion (with shank sensors): Okabe & Ito's bluish green.
KNEE_COLOR = "#009e73"

#: Arrow images of the combo and spin boxes (a style sheet that sets their border also draws their arrows).
_ICONS = (Path(__file__).resolve().parent / "icons").as_posix()

STYLE = f"""
QMainWindow, QWidget#page {{ background: {COLORS['bg']}; }}
QWidget {{ color: {COLORS['text']}; font-size: 10pt; }}
QListWidget#nav {{ background: {COLORS['nav']}; color: {COLORS['nav_text']}; border: none; font-size: 11pt;
                   padding-top: 8px; }}
QListWidget#nav::item {{ padding: 12px 14px; border-left: 4px solid transparent; }}
QListWidget#nav::item:selected {{ background: #2b3f4e; color: white; border-left: 4px solid {COLORS['accent']}; }}
QFrame#card {{ background: {COLORS['panel']}; border: 1px solid #dfe5ea; border-radius: 6px; }}
QLabel#title {{ font-size: 16pt; font-weight: 600; color: {COLORS['text']}; }}
QLabel#subtitle {{ font-size: 10pt; color: {COLORS['muted']}; }}
QLabel#cardtitle {{ font-size: 10pt; font-weight: 600; color: {COLORS['muted']}; text-transform: uppercase; }}
QPushButton {{ background: white; border: 1px solid #b8c4cc; border-radius: 4px; padding: 6px 14px; }}
QPushButton:hover {{ border-color: {COLORS['accent']}; }}
QPushButton:disabled {{ color: #a0aab2; border-color: #dde3e8; }}
QPushButton#primary {{ background: {COLORS['accent']}; color: white; border: 1px solid {COLORS['accent_dark']};
                       font-weight: 600; }}
QPushButton#primary:disabled {{ background: #9fc9c3; border-color: #9fc9c3; }}
QPushButton#danger {{ background: white; color: {COLORS['bad']}; border: 1px solid {COLORS['bad']}; }}
QTableWidget {{ background: white; gridline-color: #e6ebef; border: 1px solid #dfe5ea; }}
QHeaderView::section {{ background: #eef2f5; border: none; border-bottom: 1px solid #dfe5ea; padding: 4px;
                        font-weight: 600; color: {COLORS['muted']}; }}
QLineEdit, QComboBox, QSpinBox, QDoubleSpinBox, QPlainTextEdit, QTextBrowser {{ background: white;
    border: 1px solid #c5d0d8; border-radius: 4px; padding: 3px 6px; }}
QComboBox::drop-down {{ border: none; width: 20px; }}
QComboBox::down-arrow {{ image: url({_ICONS}/chevron-down.svg); width: 12px; height: 12px; }}
QSpinBox::up-button, QDoubleSpinBox::up-button {{ subcontrol-origin: border; subcontrol-position: top right;
    width: 16px; border: none; border-left: 1px solid #e1e7ec; }}
QSpinBox::down-button, QDoubleSpinBox::down-button {{ subcontrol-origin: border; subcontrol-position: bottom right;
    width: 16px; border: none; border-left: 1px solid #e1e7ec; }}
QSpinBox::up-arrow, QDoubleSpinBox::up-arrow {{ image: url({_ICONS}/chevron-up.svg); width: 10px; height: 10px; }}
QSpinBox::down-arrow, QDoubleSpinBox::down-arrow {{ image: url({_ICONS}/chevron-down.svg); width: 10px;
    height: 10px; }}
QStatusBar {{ background: #e9eef2; color: {COLORS['muted']}; }}
QProgressBar {{ border: 1px solid #c5d0d8; border-radius: 4px; background: white; text-align: center; height: 18px; }}
QProgressBar::chunk {{ background: {COLORS['accent']}; border-radius: 3px; }}
"""


def apply_style(app: object) -> None:
    """The application's look: light clinical theme, plots white with dark axes, antialiasing off."""
    app.setStyle("Fusion")  # type: ignore[attr-defined]
    app.setStyleSheet(STYLE)  # type: ignore[attr-defined]
    pg.setConfigOptions(antialias=False, background="w", foreground=COLORS["muted"])


def degrees_text(value_deg: float) -> str:
    """A whole number of degrees for a read-out, "–" when unknown; never "-0°" (a still patient's
    noise would make the sign flicker)."""
    return "–" if not math.isfinite(value_deg) else f"{round(float(value_deg))}°"


class DegreeAxis(pg.AxisItem):
    """An axis whose tick labels carry the degree sign (a plot a patient reads has no room for an axis
    title: "40°" says what the number is)."""

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802 (pyqtgraph's name)
        return [degrees_text(v * scale) for v in values]


def title_with_legend(title: str, curves: tuple[tuple[str, str], ...], *, size_pt: int = 10) -> str:
    """A plot title (rich text) that also names its curves, ``curves`` = ((name, colour), …): the legend
    sits above the plot, never over the data."""
    head = f"<span style='color:{COLORS['text']};font-size:{size_pt}pt;font-weight:600'>{html.escape(title)}</span>"
    if not curves:
        return head
    keys = "&nbsp;&nbsp;".join(f"<span style='color:{c}'>━</span>&nbsp;{html.escape(n)}" for n, c in curves)
    return f"{head}&nbsp;&nbsp;&nbsp;<span style='color:{COLORS['muted']};font-size:{size_pt - 1}pt'>{keys}</span>"


def card(title: str | None = None) -> tuple[QFrame, QVBoxLayout]:
    """A white panel with an optional small caps title."""
    frame = QFrame()
    frame.setObjectName("card")
    lay = QVBoxLayout(frame)
    lay.setContentsMargins(12, 10, 12, 10)
    if title:
        lab = QLabel(title)
        lab.setObjectName("cardtitle")
        lay.addWidget(lab)
    return frame, lay


class ScrollBuffer:
    """The last ``n`` samples of ``k`` channels in a preallocated double-length buffer.

    ``view()`` returns (oldest first) views into the buffer, never copies: each sample is written
    twice (at ``i`` and ``i + n``), so the last ``n`` samples are always contiguous.
    """

    def __init__(self, n: int, k: int) -> None:
        self.n = int(n)
        self.t = np.zeros(2 * self.n)
        self.x = np.zeros((2 * self.n, k))
        self.head = 0  # next write position in [0, n)
        self.count = 0
        self.total = 0  # samples ever appended (absolute index of the next one)

    def clear(self) -> None:
        self.head = 0
        self.count = 0
        self.total = 0

    def extend(self, t: np.ndarray, x: np.ndarray) -> None:
        m = len(t)
        if m == 0:
            return
        self.total += m
        if m > self.n:
            t, x, m = t[-self.n:], x[-self.n:], self.n
        pos = (self.head + np.arange(m)) % self.n
        self.t[pos] = t
        self.t[pos + self.n] = t
        self.x[pos] = x
        self.x[pos + self.n] = x
        self.head = int((self.head + m) % self.n)
        self.count = min(self.n, self.count + m)

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        end = self.head + self.n
        start = end - self.count
        return self.t[start:end], self.x[start:end]

    @property
    def last_t(self) -> float:
        return float(self.t[(self.head - 1) % self.n]) if self.count else 0.0


#: Bins up to this many samples are reduced by element-wise passes, larger ones by numpy's reduce.
_PAIRWISE_MAX_K = 16


def peak_decimate(t: np.ndarray, x: np.ndarray, k: int, first_index: int, t_out: np.ndarray,
                  y_out: np.ndarray) -> int:
    """Min and max of every bin of ``k`` samples into preallocated ``t_out`` / ``y_out``; returns the length.

    Bins are aligned to the absolute sample index (``first_index`` is the index of ``t[0]``), so a bin's
    min/max does not change as the window scrolls (no shimmer). Each bin gives two points at its first
    sample's time (its min, then its max), pyqtgraph's "peak" downsampling; the samples after the last full
    bin are kept as they are, so the newest sample is always drawn. A bin holding NaN gives NaN (a gap).
    """
    m = len(t)
    if k <= 1 or m < 2 * k:
        t_out[:m] = t
        y_out[:m] = x
        return m
    skip = (-first_index) % k
    nb = (m - skip) // k
    full = skip + nb * k
    xb = x[skip:full].reshape(nb, k, x.shape[1])
    if skip:  # the partial bin at the left edge, as samples
        t_out[:skip] = t[:skip]
        y_out[:skip] = x[:skip]
    o = skip
    lo, hi = y_out[o:o + 2 * nb:2], y_out[o + 1:o + 2 * nb:2]
    if k <= _PAIRWISE_MAX_K:
        # k element-wise passes over the bins: numpy's reduce along a short middle axis pays its iterator
        # once per bin, 2.5-4 times slower for the bins the live charts use (k ≈ 2-13)
        np.copyto(lo, xb[:, 0])
        np.copyto(hi, xb[:, 0])
        for j in range(1, k):
            np.minimum(lo, xb[:, j], out=lo)
            np.maximum(hi, xb[:, j], out=hi)
    else:
        np.minimum.reduce(xb, axis=1, out=lo)
        np.maximum.reduce(xb, axis=1, out=hi)
    tb = t[skip:full:k]
    t_out[o:o + 2 * nb:2] = tb
    t_out[o + 1:o + 2 * nb:2] = tb
    o += 2 * nb
    tail = m - full
    t_out[o:o + tail] = t[full:]
    y_out[o:o + tail] = x[full:]
    return o + tail


class _StripCurve(pg.PlotCurveItem):
    """A curve whose bounds are its chart's fixed view rectangle.

    The chart's ranges never change and the view box clips what lies outside, so the bounds need not be
    recomputed from the data (min/max and pixel padding) after every ``setData``.
    """

    def __init__(self, rect: QRectF, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._rect = QRectF(rect)

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt name)
        return self._rect

    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange: object = None) -> tuple[float, float]:  # noqa: N803
        r = self._rect
        return (r.left(), r.right()) if ax == 0 else (r.top(), r.bottom())

    def set_strip(self, x: np.ndarray, y: np.ndarray) -> None:
        """New data, as ``setData(x, y)`` keeps it, without what a curve of fixed bounds does not need.

        ``setData`` also parses its options, recomputes the bounds, announces a geometry change (the
        scene then re-indexes the item) and tells the view box and any listener: ≈ 0.1 ms per call, a
        few hundred calls a second here. The connect mode and finite check are the ones given at
        construction. ``x``, ``y``: (N,) float arrays.
        """
        self.xData = x
        self.yData = y
        # the caches ``updateData`` clears, so the next paint builds the path from the new data
        self.path = None
        self.fillPath = None
        self._fillPathList = None
        self._mouseShape = None
        self._lineSegmentsRendered = False
        self.update()


class StripChart(pg.PlotItem):
    """A scrolling strip chart (a plot item for a :class:`pyqtgraph.GraphicsLayoutWidget`).

    x = seconds before the newest sample, fixed range; fixed y range; several named curves, named in the
    title (a legend box inside the plot hid the data behind it). Drawing is
    cheap by construction: the visible window is peak-decimated to the plot's pixel width (stable bins)
    into preallocated arrays, and given to light :class:`pyqtgraph.PlotCurveItem` curves with
    ``skipFiniteCheck=True`` (or ``connect='finite'`` when the data may hold NaN gaps); no autorange,
    no antialiasing, axes cached.

    Parameters
    ----------
    names, colors : curve names and colours
    window_s : visible history, s
    rate_hz : nominal sample rate (sizes the buffer), Hz
    scale : multiplies the data for display (e.g. rad → deg)
    finite : the data may contain NaN (gaps): draw with ``connect='finite'``
    y_range : fixed y range (display units)
    legend : name the curves in the title (off where one legend outside serves several charts)
    """

    def __init__(self, title: str, names: tuple[str, ...], colors: tuple[str, ...], *, window_s: float = 10.0,
                 rate_hz: float = 100.0, unit: str = "", scale: float = 1.0, finite: bool = False,
                 y_range: tuple[float, float] = (-1.0, 1.0), legend: bool = True) -> None:
        super().__init__(enableMenu=False)  # no context menus: lighter to build, nothing to click by mistake
        self.window_s = float(window_s)
        self.scale = float(scale)
        self.finite = finite
        self.buf = ScrollBuffer(int(window_s * rate_hz * 1.1) + 8, len(names))
        self._t_out = np.zeros(2 * self.buf.n + 2)
        self._y_out = np.zeros((2 * self.buf.n + 2, len(names)))
        self._title, self._named = title, tuple(zip(names, colors)) if legend else ()
        self.setTitle(title_with_legend(title, self._named, size_pt=9))
        self.showGrid(x=True, y=True, alpha=0.25)
        self.setMenuEnabled(False)
        self.hideButtons()
        self.setMouseEnabled(x=False, y=False)
        self.vb.disableAutoRange()
        self.setXRange(-self.window_s, 0.0, padding=0)
        self.setYRange(*y_range, padding=0)
        self.setLabel("bottom", "s")
        if unit:
            self.setLabel("left", unit)
        self.getAxis("left").setWidth(46)
        _cache_axes(self)
        self.curves = []
        rect = QRectF(-self.window_s, y_range[0], self.window_s, y_range[1] - y_range[0])  # = the view range
        for nm, c in zip(names, colors):
            curve = _StripCurve(rect, pen=pg.mkPen(c, width=1), antialias=False, skipFiniteCheck=not finite,
                                connect="finite" if finite else "all")
            self.vb.addItem(curve)
            self.curves.append(curve)
        self.setMinimumHeight(100)
        self.redraws = 0

    def clear_data(self) -> None:
        self.buf.clear()
        for c in self.curves:
            c.setData([], [])

    def set_y_range(self, lo: float, hi: float) -> None:
        """Another fixed y range (display units), e.g. for a task whose angles are small."""
        self.setYRange(lo, hi, padding=0)
        for c in self.curves:
            c.prepareGeometryChange()  # the bounds are the view rectangle: the scene must re-index them
            c._rect = QRectF(-self.window_s, lo, self.window_s, hi - lo)

    def show_curves(self, visible: Sequence[bool]) -> None:
        """Which curves are drawn (and named in the title): one whose signal the session lacks (hip flexion
        without thigh sensors) is hidden rather than named over an empty plot."""
        for c, v in zip(self.curves, visible):
            c.setVisible(bool(v))
        if self._named:
            self.setTitle(title_with_legend(self._title, tuple(nc for nc, v in zip(self._named, visible) if v),
                                            size_pt=9))

    def append(self, t: np.ndarray, x: np.ndarray) -> None:
        self.buf.extend(t, x)

    def redraw(self) -> None:
        """Draw the visible window (call only when the chart is on screen)."""
        t, x = self.buf.view()
        if not len(t):
            return
        now = float(t[-1])
        i0 = int(np.searchsorted(t, now - self.window_s, side="left"))
        t, x = t[i0:], x[i0:]
        width = max(50, int(self.vb.width()))
        k = max(1, int(math.ceil(len(t) / width)))
        n = peak_decimate(t, x, k, self.buf.total - len(t), self._t_out, self._y_out)
        self.redraws += 1
        ts = self._t_out[:n]
        ts -= now
        ys = self._y_out[:n]
        if self.scale != 1.0:
            ys *= self.scale
        for i, c in enumerate(self.curves):
            if c.isVisible():
                c.set_strip(ts, ys[:, i])


class Stabilogram(pg.PlotWidget):
    """Pelvic acceleration AP vs ML while standing still: the trace of the last seconds and the running
    95 % confidence ellipse.

    Sway means quiet standing: a forward bend tilts the pelvis and moves its horizontal acceleration by
    metres per second squared (gravity), a hundred times the sway. So only samples taken *standing still*
    are kept: upright (trunk flexion and pelvic tilt within ``upright_deg`` of the zero posture) and
    still (trunk flexion and pelvic tilt each varied less than ``still_deg`` over the preceding
    ``still_s``). The trace and the ellipse are drawn from those samples; during a bend the plot keeps
    the last quiet seconds. The view is centred on the ellipse's centre, its half-width the smallest of
    :data:`SWAY_SPANS` that holds the trace, so the axes change only when the sway does.
    """

    #: Half-widths of the view, m/s² (the view changes in these steps only).
    SWAY_SPANS = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)

    def __init__(self, *, rate_hz: float = 100.0, trace_s: float = 10.0, ellipse_s: float = 30.0,
                 limit: float = 0.1, upright_deg: float = 10.0, still_deg: float = 2.0, still_s: float = 1.0,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.trace_s = float(trace_s)
        self.ellipse_s = float(ellipse_s)
        self.upright_rad = math.radians(upright_deg)
        self.still_rad = math.radians(still_deg)
        self.still_s = float(still_s)
        self.rate_hz = float(rate_hz)
        self.buf = ScrollBuffer(int(ellipse_s * rate_hz), 2)
        self._posture = np.empty((0, 2))  # the last ``still_s`` of (trunk flexion, pelvic tilt), rad
        self._dot_x, self._dot_y = np.zeros(1), np.zeros(1)
        self._view: tuple[float, float, float] | None = None  # (centre ML, centre AP, half-width)
        pi = self.getPlotItem()
        pi.setTitle(f"<span style='color:{COLORS['text']};font-size:10pt'>Stabilogram (pelvis, m/s²)</span>")
        pi.setMenuEnabled(False)
        pi.hideButtons()
        pi.setMouseEnabled(x=False, y=False)
        pi.showGrid(x=True, y=True, alpha=0.25)
        pi.setAspectLocked(True)
        for ax in ("left", "bottom"):
            # before the labels: with a label shown, disabling it fixes the scale of the moment (milli)
            pi.getAxis(ax).enableAutoSIPrefix(False)
        pi.setLabel("bottom", "medio-lateral (right +)")
        pi.setLabel("left", "antero-posterior (forward +)")
        _cache_axes(pi)
        self.trace = pg.PlotCurveItem(pen=pg.mkPen("#5c7a8a", width=1), skipFiniteCheck=True)
        self.ellipse = pg.PlotCurveItem(pen=pg.mkPen(COLORS["accent"], width=2.5), skipFiniteCheck=True)
        pi.addItem(self.trace)
        pi.addItem(self.ellipse)
        self.dot = pg.ScatterPlotItem(size=12, brush=pg.mkBrush(COLORS["warn"]), pen=pg.mkPen("w", width=1.5))
        pi.addItem(self.dot)
        self._circle = np.stack([np.cos(np.linspace(0, 2 * np.pi, 73)), np.sin(np.linspace(0, 2 * np.pi, 73))])
        self.area = float("nan")
        self._set_view(0.0, 0.0, float(limit))
        self.setMinimumSize(220, 220)

    def set_rate(self, rate_hz: float) -> None:
        """Size the buffer for ``ellipse_s`` at ``rate_hz`` (the live series' rate); clears it."""
        self.rate_hz = float(rate_hz)
        self.buf = ScrollBuffer(int(self.ellipse_s * rate_hz), 2)
        self.clear_data()

    def clear_data(self) -> None:
        self.buf.clear()
        self._posture = np.empty((0, 2))
        self.trace.setData([], [])
        self.ellipse.setData([], [])
        self.area = float("nan")

    def quiet(self, posture: np.ndarray) -> np.ndarray:
        """Which rows of ``posture`` (n, k angles, rad: trunk flexion, pelvic tilt) were taken standing
        still; consecutive calls continue one another. An angle that is NaN (its sensor missing) is left
        out of the test; a row with none known is not quiet, nor is the first ``still_s`` of the stream."""
        posture = np.asarray(posture, dtype=np.float64)
        n, k = posture.shape
        w = max(1, int(round(self.still_s * self.rate_hz)))
        if self._posture.shape[1] != k:
            self._posture = np.empty((0, k))
        hist = np.concatenate([self._posture, posture])
        self._posture = hist[max(0, len(hist) - (w - 1)):] if w > 1 else hist[:0]
        pad = w - 1 - (len(hist) - n)
        if pad > 0:  # the start of the stream: not known to be still
            hist = np.concatenate([np.full((pad, k), np.inf), hist])
        win = np.lib.stride_tricks.sliding_window_view(hist, w, axis=0)  # (n, k, w)
        known = np.isfinite(posture)
        with np.errstate(invalid="ignore"):  # inf - inf (stream start), NaN (sensor missing): not still
            spread = np.fmax.reduce(win, axis=2) - np.fmin.reduce(win, axis=2)  # NaN samples ignored
            ok = (np.abs(posture) <= self.upright_rad) & (spread <= self.still_rad)
        return np.all(ok | ~known, axis=1) & np.any(known, axis=1)

    def append(self, t: np.ndarray, ap_ml: np.ndarray, posture: np.ndarray | None = None) -> None:
        """New samples; with ``posture`` (see :meth:`quiet`) only those taken standing still are kept."""
        ok = np.all(np.isfinite(ap_ml), axis=1)
        if posture is not None:
            ok &= self.quiet(posture)
        self.buf.extend(t[ok], ap_ml[ok])

    def redraw(self) -> None:
        """The trace (last ``trace_s``) and the current point; cheap, every frame."""
        t, x = self.buf.view()
        if len(x) < 3:
            return
        i0 = int(np.searchsorted(t, t[-1] - self.trace_s, side="left"))
        tr = x[i0:]
        self.trace.setData(tr[:, 1], tr[:, 0], skipFiniteCheck=True)
        self._dot_x[0], self._dot_y[0] = tr[-1, 1], tr[-1, 0]
        self.dot.setData(self._dot_x, self._dot_y)

    def update_ellipse(self) -> None:
        """The 95 % confidence ellipse of the last ``ellipse_s`` of standing still, and the view around it
        (a few times a second is enough)."""
        t, x = self.buf.view()
        if len(x) < 3:
            return
        m = x.mean(axis=0)
        cov = np.cov(x[:, [1, 0]].T)
        w, v = np.linalg.eigh(cov)
        chi2_95 = 5.991464547107979  # 2 degrees of freedom
        axes = np.sqrt(np.maximum(w, 0) * chi2_95)
        pts = v @ (axes[:, None] * self._circle)
        self.ellipse.setData(pts[0] + m[1], pts[1] + m[0], skipFiniteCheck=True)
        self.area = float(math.pi * axes[0] * axes[1])
        # the view: centred on the ellipse, wide enough for the trace and the ellipse
        i0 = int(np.searchsorted(t, t[-1] - self.trace_s, side="left"))
        reach = max(float(np.abs(x[i0:] - m).max()), float(axes.max()))
        half = next((h for h in self.SWAY_SPANS if h >= 1.1 * reach), self.SWAY_SPANS[-1])
        cur = self._view
        if cur is None or half != cur[2] or abs(m[1] - cur[0]) > 0.25 * half or abs(m[0] - cur[1]) > 0.25 * half:
            self._set_view(float(m[1]), float(m[0]), half)

    def _set_view(self, cx: float, cy: float, half: float) -> None:
        self._view = (cx, cy, half)
        pi = self.getPlotItem()
        pi.setXRange(cx - half, cx + half, padding=0)
        pi.setYRange(cy - half, cy + half, padding=0)


class BigValue(QWidget):
    """A large number with a caption (rep counter, current angle).

    Size and colour go through the widget's style sheet: the application's style sheet sets every
    widget's font size, which overrides a font set with ``setFont``.
    """

    def __init__(self, caption: str, value: str = "–", *, size_pt: int = 28, color: str | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.setSpacing(0)
        self.size_pt = int(size_pt)
        self.value = QLabel(value)
        self.value.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._style(color)
        self.caption = QLabel(caption)
        self.caption.setObjectName("subtitle")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(self.value)
        lay.addWidget(self.caption)

    def _style(self, color: str | None) -> None:
        self.value.setStyleSheet(f"font-size: {self.size_pt}pt; font-weight: 700;"
                                 + (f" color: {color};" if color else ""))

    def set(self, text: str, color: str | None = None) -> None:
        self.value.setText(text)
        if color is not None:
            self._style(color)


def _cache_axes(pi: pg.PlotItem) -> None:
    """Axes are redrawn from a cached pixmap: the x range is fixed, so they rarely change."""
    from PySide6.QtWidgets import QGraphicsItem

    for name in ("left", "bottom"):
        pi.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


def qcolor(name: str) -> QColor:
    return QColor(COLORS.get(name, name))


class PlacementDiagram(QWidget):
    """Where each sensor is worn, drawn on a figure seen from behind, each placement coloured by its state.

    States (:meth:`set_states`): ``"streaming"`` (green), ``"lost"`` (red: the link dropped, reconnecting),
    ``"failed"`` (red: the connection failed; the Devices table says why), ``"connecting"`` or
    ``"assigned"`` (orange: a sensor is chosen, not streaming yet), ``""`` (nobody there: an outline).
    The figure is drawn in a 200 × 400 box (with room for the legs' labels either side) scaled to the
    widget; seen from behind, the left leg is on the left.
    """

    #: placement → (x, y) of the sensor on the figure, its label, and on which side the label goes.
    SPOTS: dict[str, tuple[float, float, str, int]] = {
        "lumbar": (100.0, 122.0, "L1", +1), "sacrum": (100.0, 183.0, "S1", +1),
        "thigh_left": (57.0, 250.0, "left thigh", -1), "thigh_right": (143.0, 250.0, "right thigh", +1),
        "shank_left": (61.0, 345.0, "left shank", -1), "shank_right": (139.0, 345.0, "right shank", +1)}
    STATE_TEXT = {"streaming": "streaming", "lost": "link lost", "failed": "not connected",
                  "connecting": "connecting…", "assigned": "assigned", "": "not worn"}

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.states: dict[str, str] = {}
        self.setMinimumSize(190, 300)

    def set_states(self, states: dict[str, str]) -> None:
        """placement → state; repaints only when something changed."""
        states = {k: v for k, v in states.items() if v}
        if states != self.states:
            self.states = states
            self.update()

    def state_color(self, state: str) -> str:
        return {"streaming": COLORS["ok"], "lost": COLORS["bad"], "failed": COLORS["bad"], "connecting": COLORS["warn"],
                "assigned": COLORS["warn"]}.get(state, "#b0bcc5")

    def paintEvent(self, event: object) -> None:  # noqa: N802 (Qt's name)
        from PySide6.QtCore import QPointF, QRectF as R
        from PySide6.QtGui import QBrush, QPainter, QPainterPath, QPen

        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        # the figure is 200 × 400; 30 more each side hold the legs' labels
        scale = min(self.width() / 260.0, self.height() / 400.0)
        p.translate((self.width() - 200.0 * scale) / 2.0, (self.height() - 400.0 * scale) / 2.0)
        p.scale(scale, scale)
        skin, outline = QColor("#e8edf1"), QColor("#9aa8b3")
        p.setPen(QPen(outline, 1.2))
        p.setBrush(QBrush(skin))
        # trunk, hips and legs down to the ankles (posterior view), one outline
        body = QPainterPath()
        body.moveTo(70, 42)
        body.cubicTo(52, 46, 44, 52, 44, 66)  # shoulder
        body.lineTo(58, 150)  # flank to the waist
        body.cubicTo(50, 168, 48, 182, 50, 200)  # hip
        body.lineTo(54, 300)  # knee
        body.lineTo(60, 390)  # ankle
        body.lineTo(86, 390)
        body.lineTo(92, 300)
        body.lineTo(98, 212)  # inner thigh up to the buttocks' fold
        body.lineTo(102, 212)
        body.lineTo(108, 300)
        body.lineTo(114, 390)
        body.lineTo(140, 390)
        body.lineTo(146, 300)
        body.lineTo(150, 200)
        body.cubicTo(152, 182, 150, 168, 142, 150)
        body.lineTo(156, 66)
        body.cubicTo(156, 52, 148, 46, 130, 42)
        body.closeSubpath()
        p.drawPath(body)
        p.drawEllipse(QPointF(100, 22), 15, 18)  # head
        p.drawRect(R(93, 36, 14, 8))  # neck
        # spine: spinous processes from C7 to the sacrum; the rib cage ends at the thoraco-lumbar junction
        p.setPen(QPen(outline, 1.0))
        for i in range(24):
            y = 46 + i * 5.6
            p.drawLine(QPointF(97.5, y), QPointF(102.5, y))
        p.setPen(QPen(outline, 1.0, Qt.PenStyle.DashLine))
        p.drawArc(R(56, 88, 88, 40), 200 * 16, 140 * 16)  # lower ribs
        # pelvis: iliac crests, sacrum with the dimples of Venus
        p.setPen(QPen(outline, 1.0))
        p.drawArc(R(56, 158, 40, 30), 60 * 16, 100 * 16)
        p.drawArc(R(104, 158, 40, 30), 20 * 16, 100 * 16)
        sacrum = QPainterPath()
        sacrum.moveTo(88, 174)
        sacrum.lineTo(112, 174)
        sacrum.lineTo(100, 204)
        sacrum.closeSubpath()
        p.drawPath(sacrum)
        for x in (73.0, 127.0):  # the backs of the knees
            p.drawLine(QPointF(x - 9, 300), QPointF(x + 9, 300))
        p.setBrush(QBrush(outline))
        p.drawEllipse(QPointF(89, 178), 1.6, 1.6)
        p.drawEllipse(QPointF(111, 178), 1.6, 1.6)
        # the sensors
        bold, plain = QFont(self.font()), QFont(self.font())
        bold.setPixelSize(11)
        bold.setBold(True)
        plain.setPixelSize(10)
        for key, (x, y, label, side) in self.SPOTS.items():
            state = self.states.get(key, "")
            color = QColor(self.state_color(state))
            if state:
                p.setPen(QPen(QColor("white"), 1.5))
                p.setBrush(QBrush(color))
            else:
                p.setPen(QPen(color, 1.4, Qt.PenStyle.DashLine))
                p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(R(x - 8, y - 11, 16, 22), 3, 3)
            x0 = x + 12 if side > 0 else x - 92
            align = int((Qt.AlignmentFlag.AlignLeft if side > 0 else Qt.AlignmentFlag.AlignRight)
                        | Qt.AlignmentFlag.AlignVCenter)
            p.setPen(QPen(QColor(COLORS["text"] if state else COLORS["muted"])))
            p.setFont(bold)
            p.drawText(R(x0, y - 13, 80, 13), align, label)
            p.setPen(QPen(color if state else QColor(COLORS["muted"])))
            p.setFont(plain)
            p.drawText(R(x0, y, 80, 13), align, self.STATE_TEXT.get(state, state))
        p.end()
