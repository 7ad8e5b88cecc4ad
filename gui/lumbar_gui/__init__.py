"""The lumbar motor control desktop application (PySide6 + pyqtgraph).

Start it with ``lumbar gui`` (``lumbar gui --emulated`` connects the demo sensors at once), or
:func:`lumbar_gui.app.main`. See ``docs/user-guide.md``.
"""
from lumbar_gui import _compat  # noqa: F401  (binding work-around, see the module)

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    from lumbar_gui.app import main as _main

    return _main(argv)
