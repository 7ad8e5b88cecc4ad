"""The lumbar motor control desktop application (PySide6 + pyqtgraph).

Start it with ``lumbar gui`` (``lumbar gui --emulated`` connects the demo sensors at once), or
:func:`lumbar_gui.app.main`. See ``docs/user-guide.md``.
"""

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    import sys

    from lumbar_gui.reader_process import ReaderProcess

    ReaderProcess.prestart()  # the BLE reader's process imports bleak meanwhile
    if "--emulated" in (sys.argv[1:] if argv is None else argv):
        # the emulated sensors' process boots while the application imports and builds its window
        from lumbar_gui.demo_process import DemoSensors

        DemoSensors.prestart()
    from lumbar_gui.app import main as _main

    return _main(argv)
