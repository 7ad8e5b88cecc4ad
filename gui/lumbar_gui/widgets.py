"""Reusable widgets: the application style, fast scrolling plots, the stabilogram, big read-outs.

Live plots follow pyqtgraph's fast idioms: preallocated double-length buffers (no per-frame allocation
or copying of the history — the curve gets a view), ``setData(..., skipFiniteCheck=True)`` where the
data cannot contain NaN, ``connect='finite'`` where it can, clip-to-view, peak downsampling, and
antialiasing off. The x axis is "seconds before now" with a fixed range, so axes never relayout.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

__all__ = ["COLORS", "STYLE", "apply_style", "ScrollBuffer", "ScrollingPlot", "Stabilogram", "BigValue", "card",
           "AXIS_COLORS"]

COLORS = {
    "bg": "#f4f6f8", "panel": "#ffffff", "text": "#1f2a33", "muted": "#5f6b76", "accent": "#00796b",
    "accent_dark": "#005b4f", "nav": "#1f2d38", "nav_text": "#d7e0e6", "ok": "#2e7d32", "warn": "#ef6c00",
    "bad": "#c62828", "band": "#a5d6a7", "grid": "#dde3e8", "rec": "#d32f2f",
}
#: x, y, z colours (colour-blind-safe: blue, orange, green-teal).
AXIS_COLORS = ("#1f77b4", "#e6750a", "#2a9d8f")

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
QStatusBar {{ background: #e9eef2; color: {COLORS['muted']}; }}
QProgressBar {{ border: 1px solid #c5d0d8; border-radius: 4px; background: white; text-align: center; height: 18px; }}
QProgressBar::chunk {{ background: {COLORS['accent']}; border-radius: 3px; }}
"""


def apply_style(app: object) -> None:
    """The application's look: light clinical theme, plots white with dark axes, antialiasing off."""
    app.setStyle("Fusion")  # type: ignore[attr-defined]
    app.setStyleSheet(STYLE)  # type: ignore[attr-defined]
    pg.setConfigOptions(antialias=False, background="w", foreground=COLORS["muted"])


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

    def clear(self) -> None:
        self.head = 0
        self.count = 0

    def extend(self, t: np.ndarray, x: np.ndarray) -> None:
        m = len(t)
        if m == 0:
            return
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


class ScrollingPlot(pg.PlotWidget):
    """A scrolling strip chart: x = seconds before now (fixed range), several named curves.

    Parameters
    ----------
    names, colors : curve names and colours
    window_s : visible history, s
    rate_hz : nominal sample rate (sizes the buffer)
    scale : multiplies the data for display (e.g. rad → deg)
    finite : the data may contain NaN (gaps): draw with ``connect='finite'``
    """

    def __init__(self, title: str, names: tuple[str, ...], colors: tuple[str, ...], *, window_s: float = 10.0,
                 rate_hz: float = 100.0, unit: str = "", scale: float = 1.0, finite: bool = False,
                 y_range: tuple[float, float] | None = None, legend: bool = True, parent: QWidget | None = None
                 ) -> None:
        super().__init__(parent=parent)
        self.window_s = window_s
        self.scale = scale
        self.finite = finite
        self.buf = ScrollBuffer(int(window_s * rate_hz * 1.1) + 8, len(names))
        self._xs = np.zeros(self.buf.n)
        pi = self.getPlotItem()
        pi.setTitle(f"<span style='color:{COLORS['text']};font-size:10pt'>{title}</span>")
        pi.showGrid(x=True, y=True, alpha=0.25)
        pi.setMenuEnabled(False)
        pi.hideButtons()
        pi.setMouseEnabled(x=False, y=False)
        pi.setXRange(-window_s, 0.0, padding=0)
        pi.setLabel("bottom", "s")
        if unit:
            pi.setLabel("left", unit)
        if y_range is not None:
            pi.setYRange(*y_range, padding=0)
        else:
            pi.enableAutoRange(axis="y", enable=True)
        pi.setClipToView(True)
        pi.setDownsampling(auto=True, mode="peak")
        if legend:
            leg = pi.addLegend(offset=(6, 4), labelTextSize="8pt", colCount=len(names))
            leg.setBrush(pg.mkBrush(255, 255, 255, 200))
        _cache_axes(pi)
        self.curves = [pi.plot(name=nm, pen=pg.mkPen(c, width=1)) for nm, c in zip(names, colors)]
        for c in self.curves:
            c.setClipToView(True)
            c.setDownsampling(auto=True, method="peak")
        self.setMinimumHeight(120)
        self.setMinimumWidth(160)

    def clear_data(self) -> None:
        self.buf.clear()
        for c in self.curves:
            c.setData([], [])

    def append(self, t: np.ndarray, x: np.ndarray) -> None:
        self.buf.extend(t, x)

    def redraw(self, now: float | None = None) -> None:
        t, x = self.buf.view()
        if not len(t):
            return
        now = self.buf.last_t if now is None else now
        xs = self._xs[: len(t)]
        np.subtract(t, now, out=xs)
        for i, c in enumerate(self.curves):
            y = x[:, i] * self.scale if self.scale != 1.0 else x[:, i]
            if self.finite:
                c.setData(xs, y, connect="finite")
            else:
                c.setData(xs, y, skipFiniteCheck=True)


class Stabilogram(pg.PlotWidget):
    """Pelvic acceleration AP vs ML (trace of the last seconds) with the running 95 % confidence ellipse."""

    def __init__(self, *, rate_hz: float = 100.0, trace_s: float = 10.0, ellipse_s: float = 30.0,
                 limit: float = 0.3, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.rate_hz = rate_hz
        self.buf = ScrollBuffer(int(ellipse_s * rate_hz), 2)
        self.trace_n = int(trace_s * rate_hz)
        pi = self.getPlotItem()
        pi.setTitle(f"<span style='color:{COLORS['text']};font-size:10pt'>Stabilogram (pelvis, m/s²)</span>")
        pi.setMenuEnabled(False)
        pi.hideButtons()
        pi.setMouseEnabled(x=False, y=False)
        pi.showGrid(x=True, y=True, alpha=0.25)
        pi.setAspectLocked(True)
        pi.setXRange(-limit, limit, padding=0)
        pi.setYRange(-limit, limit, padding=0)
        pi.setLabel("bottom", "medio-lateral (right +)")
        pi.setLabel("left", "antero-posterior (forward +)")
        for ax in ("left", "bottom"):
            pi.getAxis(ax).enableAutoSIPrefix(False)
        _cache_axes(pi)
        self.trace = pi.plot(pen=pg.mkPen("#5c7a8a", width=1))
        self.ellipse = pi.plot(pen=pg.mkPen(COLORS["accent"], width=2.5))
        self.dot = pg.ScatterPlotItem(size=12, brush=pg.mkBrush(COLORS["warn"]), pen=pg.mkPen("w", width=1.5))
        pi.addItem(self.dot)
        self._circle = np.stack([np.cos(np.linspace(0, 2 * np.pi, 73)), np.sin(np.linspace(0, 2 * np.pi, 73))])
        self.area = float("nan")
        self.setMinimumSize(220, 220)

    def clear_data(self) -> None:
        self.buf.clear()
        self.trace.setData([], [])
        self.ellipse.setData([], [])

    def append(self, t: np.ndarray, ap_ml: np.ndarray) -> None:
        ok = np.all(np.isfinite(ap_ml), axis=1)
        self.buf.extend(t[ok], ap_ml[ok])

    def redraw(self) -> None:
        _t, x = self.buf.view()
        if len(x) < 3:
            return
        tr = x[-self.trace_n:]
        self.trace.setData(tr[:, 1], tr[:, 0], skipFiniteCheck=True)
        self.dot.setData([tr[-1, 1]], [tr[-1, 0]])
        xc = x - x.mean(axis=0)
        cov = np.cov(xc[:, [1, 0]].T)
        w, v = np.linalg.eigh(cov)
        chi2_95 = 5.991464547107979  # 2 degrees of freedom
        axes = np.sqrt(np.maximum(w, 0) * chi2_95)
        pts = v @ (axes[:, None] * self._circle)
        m = x.mean(axis=0)
        self.ellipse.setData(pts[0] + m[1], pts[1] + m[0], skipFiniteCheck=True)
        self.area = float(math.pi * axes[0] * axes[1])


class BigValue(QWidget):
    """A large number with a caption (rep counter, current angle)."""

    def __init__(self, caption: str, value: str = "–", *, size_pt: int = 28, color: str | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.setSpacing(0)
        self.value = QLabel(value)
        f = QFont()
        f.setPointSize(size_pt)
        f.setBold(True)
        self.value.setFont(f)
        self.value.setAlignment(Qt.AlignmentFlag.AlignCenter)
        if color:
            self.value.setStyleSheet(f"color: {color}")
        self.caption = QLabel(caption)
        self.caption.setObjectName("subtitle")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(self.value)
        lay.addWidget(self.caption)

    def set(self, text: str, color: str | None = None) -> None:
        self.value.setText(text)
        if color is not None:
            self.value.setStyleSheet(f"color: {color}")


def _cache_axes(pi: pg.PlotItem) -> None:
    """Axes are redrawn from a cached pixmap: the x range is fixed, so they rarely change."""
    from PySide6.QtWidgets import QGraphicsItem

    for name in ("left", "bottom"):
        pi.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


def qcolor(name: str) -> QColor:
    return QColor(COLORS.get(name, name))
