"""The main window: a list of steps on the left, one screen per step on the right.

The steps follow the order a first-time user needs them (accounts, folders, modules, run,
results). Errors go to the status bar and, when they need attention, to a dialog that does
not block the event loop (`QMessageBox.open`), so a running analysis keeps updating.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QCloseEvent, QIcon, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QWidget,
)

from mailstats.gui import worker
from mailstats.gui.accounts import AccountsPage
from mailstats.gui.folders import FoldersPage
from mailstats.gui.modules_page import ModulesPage
from mailstats.gui.results import ResultsPage
from mailstats.gui.run_page import RunOutcome, RunPage
from mailstats.gui.store import Store

ICON_PATH = Path(__file__).resolve().parent / "mailstats.svg"
STEPS = ["Accounts", "Folders", "Modules", "Run", "Results"]


def private(settings: QSettings) -> None:
    """QSettings writes with the umask; window layout is not secret, but names paths."""
    path = Path(settings.fileName())
    if path.is_file():
        try:
            path.chmod(0o600)
        except OSError:
            pass


def default_config_path() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("mailstats")) / "accounts.toml"


class MainWindow(QMainWindow):
    def __init__(
        self,
        config_path: Path | None = None,
        cache_path: Path | None = None,
        registry: Any = None,
    ) -> None:
        super().__init__()
        from mailstats.modules import available_modules

        self.setWindowTitle("mailstats — which header checks separate ham from spam")
        if ICON_PATH.exists():
            self.setWindowIcon(QIcon(str(ICON_PATH)))
        self.store = Store(config_path or default_config_path())
        self.registry = registry or available_modules()
        self.last_error = ""
        self._dialogs: list[QMessageBox] = []

        self.nav = QListWidget()
        self.nav.addItems(STEPS)
        self.nav.setMaximumWidth(170)
        self.nav.setMinimumWidth(120)
        self.nav.setStyleSheet(
            "QListWidget { font-size: 11pt; } QListWidget::item { padding: 8px; }"
        )
        self.stack = QStackedWidget()
        self.accounts = AccountsPage(self.store)
        self.folders = FoldersPage(self.store)
        self.modules = ModulesPage(self.store, self.registry)
        self.run = RunPage(self.store, self.registry, cache_path)
        self.results = ResultsPage()
        for page in (self.accounts, self.folders, self.modules, self.run, self.results):
            self.stack.addWidget(page)
        self.nav.currentRowChanged.connect(self._go)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.nav)
        self.splitter.addWidget(self.stack)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(0, False)
        self.splitter.setSizes([150, 950])
        central = QWidget()
        lay = QHBoxLayout(central)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.splitter)
        self.setCentralWidget(central)
        self.statusBar().showMessage("Ready.")

        for page in (self.accounts, self.folders, self.modules, self.run, self.results):
            page.message.connect(self.say)  # type: ignore[attr-defined]
            if hasattr(page, "error"):
                page.error.connect(self.show_error)
        self.accounts.changed.connect(self._accounts_changed)
        self.accounts.demo_requested.connect(self.open_demo)
        self.folders.changed.connect(self.run.refresh_accounts)
        self.folders.changed.connect(self.accounts.refresh)
        self.run.finished.connect(self._run_finished)
        self.run.started.connect(self.results.drop_tables)
        QShortcut(QKeySequence("Ctrl+R"), self, activated=self._shortcut_run)

        self.resize(1100, 720)
        self._restore()
        if self.nav.currentRow() < 0:
            self.nav.setCurrentRow(0)
        if self.store.load_error:
            kept = (
                f" A copy of it is kept as {self.store.backup}."
                if self.store.backup is not None
                else ""
            )
            self.show_error(
                f"Could not read the accounts file: {self.store.load_error}. mailstats starts "
                f"with no accounts; the file is replaced when you save an account.{kept}"
            )

    # -- navigation -------------------------------------------------------------------
    def go(self, step: str) -> None:
        self.nav.setCurrentRow(STEPS.index(step))

    def _go(self, row: int) -> None:
        self.stack.setCurrentIndex(row)
        if STEPS[row] == "Folders":
            self.folders.refresh_accounts()
            self.folders.load()
        elif STEPS[row] == "Modules":
            self.modules.load()
        elif STEPS[row] == "Run":
            self.run.refresh_accounts()

    def _accounts_changed(self) -> None:
        self.modules.load()  # an import replaces the settings too
        self.folders.refresh_accounts()
        self.run.refresh_accounts()
        if self.stack.currentWidget() is self.folders:
            self.folders.load(force=True)
        else:
            self.folders.loaded_for = ""

    def open_demo(self) -> None:
        self.go("Run")
        self.run.start_demo()

    def _shortcut_run(self) -> None:
        self.go("Run")
        self.run.start()

    def _run_finished(self, outcome: RunOutcome) -> None:
        self.results.show_outcome(outcome)
        if (
            not outcome.cancelled
            and not any(a.needs_signin for a in outcome.result.accounts)  # stay: sign-in
            and outcome.result.accounts
            and any(a.folders for a in outcome.result.accounts)
        ):
            self.go("Results")

    # -- messages ---------------------------------------------------------------------
    def say(self, text: str) -> None:
        # kept until the next message: "Wrote report.html" must still be there when the
        # user looks back from the browser, and a long step's "Writing…" must not vanish
        self.statusBar().showMessage(text)

    def show_error(self, text: str) -> None:
        self.last_error = text
        self.statusBar().showMessage(text)
        box = QMessageBox(QMessageBox.Icon.Warning, "mailstats", text, parent=self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.finished.connect(lambda _r: self._dialogs.remove(box))
        self._dialogs.append(box)
        box.open()

    def wait_for_workers(self, ms: int = 15000) -> bool:
        pages = [self.accounts, self.folders, self.run, self.results]
        dialogs = [self.accounts.dialog] if self.accounts.dialog is not None else []
        return worker.wait_all([*pages, *dialogs], ms)

    # -- persistence ------------------------------------------------------------------
    def _restore(self) -> None:
        s = QSettings()
        geom = s.value("window/geometry")
        if isinstance(geom, QByteArray):
            self.restoreGeometry(geom)
        split = s.value("window/splitter")
        if isinstance(split, QByteArray):
            self.splitter.restoreState(split)
        row = s.value("window/step", 0)
        try:
            self.nav.setCurrentRow(min(int(row), len(STEPS) - 2))  # never start on Results
        except (TypeError, ValueError):
            self.nav.setCurrentRow(0)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        if self.run.running:
            self.run.cancel()
        self.results.stop_report()
        from mailstats.gui.signin import SignIn

        for sign_in in self.findChildren(SignIn):
            sign_in.cancel()  # a sign-in waiting for the browser would outlive the window
        self.wait_for_workers()
        self.results.release()
        s = QSettings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/splitter", self.splitter.saveState())
        s.setValue("window/step", self.nav.currentRow())
        s.sync()
        private(s)
        super().closeEvent(event)
