"""Application entry point and main window.

The window holds a navigation list and one page per view. Devices and Live are built at start; the
other views when first shown (or first asked for), so the start-up builds only what it shows. One ``QTimer`` (60 Hz) pulls: it lets the
engine drain its worker queues, then refreshes only the visible view, so a hidden view costs nothing.
Closing the window finalises any recording and stops the workers.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from PySide6.QtCore import QTimer, Qt
from PySide6.QtWidgets import (QApplication, QHBoxLayout, QLabel, QListWidget, QMainWindow, QStackedWidget, QWidget)

from lumbar_gui.engine import Engine
from lumbar_gui.sources import placement_name
from lumbar_gui.views.assessment import AssessmentView
from lumbar_gui.views.biofeedback import BiofeedbackView
from lumbar_gui.views.devices import DevicesView
from lumbar_gui.views.live import LiveView
from lumbar_gui.views.review import ReviewView
from lumbar_gui.widgets import COLORS, apply_style

__all__ = ["MainWindow", "main", "default_sessions_dir"]

FRAME_MS = 16


def freeze_gc() -> None:
    """Leave the objects alive now (modules, widgets, compiled kernels: hundreds of thousands, nearly
    all for good) out of the cyclic garbage collector's full collections.

    A full collection walks every tracked object while holding the interpreter lock, so with all of
    them it stops the GUI thread for 70 ms (several hundred on a loaded machine). Called once the
    start-up has imported and built what it needs, and when a view is first shown; the young
    generations are collected first so that little garbage is frozen with them.
    """
    gc.collect(1)
    gc.freeze()


def default_sessions_dir() -> Path:
    return Path(os.environ.get("LUMBAR_SESSIONS_DIR", Path.home() / "LumbarSessions"))


class MainWindow(QMainWindow):
    """Navigation + views + the pull timer."""

    def __init__(self, *, sessions_dir: Path | None = None, emulated: bool = False, rate_hz: float = 100.0) -> None:
        super().__init__()
        self.setWindowTitle("Lumbar Motor Control")
        self.resize(1440, 900)
        self.sessions_dir = Path(sessions_dir) if sessions_dir else default_sessions_dir()
        self.engine = Engine(self)
        self.devices = DevicesView(self.engine, emulated=emulated, rate_hz=rate_hz)
        self.live = LiveView(self.engine)
        # built when first shown or asked for (the properties below); an empty page stands in until then
        self._lazy: dict[int, Callable[[], QWidget]] = {
            2: lambda: AssessmentView(self.engine, self.sessions_dir),
            3: lambda: BiofeedbackView(self.engine, self.sessions_dir),
            4: ReviewView,
        }
        self.views: list[QWidget] = [self.devices, self.live, QWidget(), QWidget(), QWidget()]
        titles = [DevicesView.title, LiveView.title, AssessmentView.title, BiofeedbackView.title, ReviewView.title]
        central = QWidget()
        lay = QHBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.nav = QListWidget()
        self.nav.setObjectName("nav")
        self.nav.setFixedWidth(190)
        self.nav.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        brand = QLabel("  LUMBAR\n  motor control")
        brand.setStyleSheet(f"background:{COLORS['nav']}; color:white; font-size: 13pt; font-weight: 700; padding: 14px 6px;")
        side = QWidget()
        side.setStyleSheet(f"background:{COLORS['nav']};")
        from PySide6.QtWidgets import QVBoxLayout

        sl = QVBoxLayout(side)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.setSpacing(0)
        sl.addWidget(brand)
        sl.addWidget(self.nav, 1)
        self.stack = QStackedWidget()
        for title, v in zip(titles, self.views):
            self.nav.addItem(title)
            self.stack.addWidget(v)
        self.nav.currentRowChanged.connect(self._show_row)
        self._gc_frozen_for: object = None  # the processor whose start-up was frozen (see freeze_gc)
        self._views_seen: set[int] = set()
        self.nav.currentRowChanged.connect(self._on_view_changed)
        lay.addWidget(side)
        lay.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.status = QLabel("")
        self.statusBar().addWidget(self.status, 1)
        self.rec = QLabel("")
        self.statusBar().addPermanentWidget(self.rec)
        self.engine.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.engine.recording_changed.connect(self._on_recording)
        self.nav.setCurrentRow(0)
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self.tick)
        self.timer.start(FRAME_MS)
        self.frames = 0
        self._last_status = 0.0

    @property
    def assessment(self) -> AssessmentView:
        return self._view(2)  # type: ignore[return-value]

    @property
    def biofeedback(self) -> BiofeedbackView:
        return self._view(3)  # type: ignore[return-value]

    @property
    def review(self) -> ReviewView:
        return self._view(4)  # type: ignore[return-value]

    def _view(self, i: int) -> QWidget:
        """View ``i``, built now if it has not been yet."""
        factory = self._lazy.pop(i, None)
        if factory is not None:
            placeholder, view = self.views[i], factory()
            self.views[i] = view
            self.stack.insertWidget(i, view)
            self.stack.removeWidget(placeholder)
            placeholder.deleteLater()
        return self.views[i]

    def _built(self, i: int) -> QWidget | None:
        return None if i in self._lazy else self.views[i]

    def _show_row(self, row: int) -> None:
        if row >= 0:
            self.stack.setCurrentWidget(self._view(row))

    def show_view(self, view: QWidget) -> None:
        self.nav.setCurrentRow(self.views.index(view))

    def _on_view_changed(self, row: int) -> None:
        if row not in self._views_seen:  # first shown: what it imported and built stays
            self._views_seen.add(row)
            QTimer.singleShot(1000, freeze_gc)  # after its first refresh (some load on first show)

    def tick(self) -> None:
        self.engine.poll()
        proc = self.engine.processor
        if proc is not None and proc is not self._gc_frozen_for and proc.series.total:
            # the live processing has loaded its filters and produced its first rows: start-up is over
            self._gc_frozen_for = proc
            freeze_gc()
        v = self.stack.currentWidget()
        v.refresh()  # type: ignore[attr-defined]
        a = self._built(2)
        if a is not None and v is not a and a.step != "setup":  # type: ignore[attr-defined]
            a.refresh()  # type: ignore[attr-defined]  # the guided flow keeps time even when another view is shown
        # biofeedback reacts to repetitions by signal; nothing to pull while hidden
        self.frames += 1
        now = time.monotonic()
        if now - self._last_status > 0.5:
            self._last_status = now
            self._update_status()

    def _update_status(self) -> None:
        eng = self.engine
        if not eng.connected:
            self.status.setText("No sensors connected")
            return
        parts = []
        for sid, st in eng.bus.status.items():
            rate = eng.achieved_rate_hz.get(sid)
            state = "●" if st.connected else "○ LOST"
            parts.append(f"{placement_name(sid)} {state} {'' if rate is None else f'{rate:.0f} Hz'}")
        self.status.setText("   ".join(parts))
        if eng.recorder is not None:
            r = eng.recorder
            self.rec.setText(f"<span style='color:{COLORS['rec']};font-weight:700'>● REC</span> {r.path.name} "
                             f"{r.duration_s:.0f} s")

    def _on_recording(self, on: bool, path: str) -> None:
        if not on:
            self.rec.setText(f"last recording saved: {Path(path).name}")

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        """Closing during a recording finalises the file; workers stop."""
        self.timer.stop()
        self.engine.shutdown()
        super().closeEvent(event)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lumbar gui", description="The lumbar motor control application.")
    p.add_argument("--emulated", action="store_true",
                   help="emulated sensors on the emulated patient (Bumble BLE stack), L1 and S1 connected at start")
    p.add_argument("--data-dir", default=None, help="where sessions are saved (default ~/LumbarSessions)")
    p.add_argument("--rate-hz", type=float, default=100.0, help="sensors' output rate offered first (default 100)")
    p.add_argument("--view", default="live", choices=("devices", "live", "assessment", "biofeedback", "review"))
    p.add_argument("file", nargs="?", help="a session file to open in Review")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_style(app)
    win = MainWindow(sessions_dir=Path(args.data_dir) if args.data_dir else None, emulated=args.emulated,
                     rate_hz=args.rate_hz)
    if args.emulated:
        win.devices.auto_connect(("lumbar", "sacrum"))  # once the scan has listed them
        win.show_view(getattr(win, args.view))
    if args.file:
        win.review.open(args.file)
        win.show_view(win.review)
    win.show()
    return int(app.exec())
