"""`mailstats` without arguments: the desktop window.

Qt is imported only here and in this package, so the CLI and the engine run without it.
"""

from __future__ import annotations

import sys
from pathlib import Path

ORGANIZATION = "mailstats"
APPLICATION = "mailstats"


def main(argv: list[str] | None = None) -> int:
    """Open the window and run the event loop; the exit code of the application."""
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtGui import QGuiApplication, QIcon
    from PySide6.QtWidgets import QApplication

    from mailstats.gui.main_window import ICON_PATH, MainWindow

    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setApplicationName(APPLICATION)
    QGuiApplication.setDesktopFileName("mailstats")
    app = QApplication.instance() or QApplication(list(argv or sys.argv[:1]))
    if ICON_PATH.exists():
        app.setWindowIcon(QIcon(str(ICON_PATH)))
    window = MainWindow()
    window.show()
    return int(app.exec())


def run_with(config_path: Path, cache_path: Path | None = None) -> int:  # pragma: no cover
    """Open the window on a given accounts file (handy for trying a file out)."""
    from PySide6.QtWidgets import QApplication

    from mailstats.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(config_path, cache_path)
    window.show()
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(main())
