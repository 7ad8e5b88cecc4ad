"""The lumbar motor control desktop application (PySide6 + pyqtgraph).

Start it with ``lumbar gui`` (``lumbar gui --emulated`` connects the demo sensors at once), or
:func:`lumbar_gui.app.main`. See ``docs/user-guide.md``.
"""

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    from lumbar_gui.app import main as _main

    return _main(argv)
