"""GUI test fixtures: the real main window, offscreen, on the emulated sensors (bleak + Bumble, real time)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

DOC_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


@pytest.fixture
def window(qtbot, tmp_path):
    from lumbar_gui.app import MainWindow
    from lumbar_gui.widgets import apply_style
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if not app.property("lumbar_styled"):
        apply_style(app)
        app.setProperty("lumbar_styled", True)
    win = MainWindow(sessions_dir=tmp_path / "sessions", emulated=True)
    qtbot.addWidget(win)
    win.resize(1440, 900)
    win.show()
    yield win
    win.close()  # finalises any recording and stops the workers


def wait_scanned(qtbot, win, n=4):
    """Wait for the Devices view's scan to list ``n`` sensors."""
    qtbot.waitUntil(lambda: len(win.devices.entries) >= n and not win.engine.scanning, timeout=20000)


def connect_demo(qtbot, win, placements=("lumbar", "sacrum")):
    """Assign the demo sensors the demo patient wears at ``placements`` (LumbarRef Demo 1, 2 at L1 and S1, …)
    and connect them through the reader."""
    from lumbar_gui.sources import DEMO_SENSORS

    wait_scanned(qtbot, win)
    worn_at = {placement: name for _, placement, name, _ in DEMO_SENSORS}
    for pl in placements:
        win.devices.assign(next(r for r, e in enumerate(win.devices.entries) if e.name == worn_at[pl]), pl)
    assert win.devices.connect_assigned()
    qtbot.waitUntil(lambda: all(win.engine.bus.rings[p].total > 200 for p in placements), timeout=20000)
    qtbot.waitUntil(lambda: win.engine.processor.ready.is_set() and win.engine.processor.series.total > 50,
                    timeout=20000)


def save_screenshot(win, view, name, out_dir: Path):
    """Grab one view (offscreen) into ``out_dir``/gui-<name>.png: the window as a whole renders.

    The user guide's pictures (docs/images/gui-*.png) come from a real window instead:
    ``LUMBAR_WRITE_DOC_IMAGES=1 pytest tests/gui/test_screenshots_xvfb.py`` (Xvfb, Qt's xcb platform).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    win.show_view(view)
    view.refresh()
    pix = win.grab()
    assert not pix.isNull() and pix.width() >= win.width() and pix.height() >= win.height()
    path = out_dir / f"gui-{name}.png"
    assert pix.save(str(path))
    return path


def plant_earlier_visit(subject_dir):
    """The subject's assessment 30 days ago: a flexion trial of the emulated patient, bending less far
    (25°) than the demo patient does today."""
    from datetime import datetime, timedelta, timezone

    from lumbar.simulate import simulate
    from lumbar.storage.writer import write_simulated
    from lumbar.types import SessionInfo

    then = datetime.now(timezone.utc) - timedelta(days=30)
    folder = subject_dir / then.astimezone().strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True)
    info = SessionInfo("S017", operator="AB", protocol="flexion", start_time_utc=then.isoformat())
    return write_simulated(folder / "02-flexion.h5", simulate("flexion", duration_s=40.0, seed=4, reps=4,
                                                             amplitude_deg=25.0), info)
