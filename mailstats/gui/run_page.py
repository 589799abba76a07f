"""Run screen: start the engine in a worker thread, show progress, cancel cleanly.

Progress events arrive queued on the GUI thread. Overall progress counts two phases per mapped
folder (fetching headers, analysing messages), each weighted by how far it got; an account
that ends early (failed, or its sign-in is no longer valid) counts as done, so the bar still
reaches the end. Time left is the elapsed time scaled by what is still to do, which is rough
at the start and settles quickly.

An OAuth2 account whose sign-in the provider no longer accepts is not an error to read in a
log: the screen says "sign in again" for it in plain words, with the button that does it.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from mailstats.gui import worker
from mailstats.gui.models import hour_distribution
from mailstats.gui.progress import ProgressTracker, fmt_duration, left_text
from mailstats.gui.signin import SignIn, has_device_flow
from mailstats.gui.store import Store
from mailstats.modules import HOUR_OF_DAY

PHASE_WORDS = {"sync": "Fetching headers", "analyse": "Analysing", "connect": "Connecting"}
#: p.message of a "finished" event, in words for the log
FINISHED_WORDS = {
    "ok": "all folders done",
    "partial": "done, some messages could not be fetched (details when the run ends)",
    "failed": "stopped with an error (details when the run ends)",
    "cancelled": "cancelled",
}


@dataclass
class RunOutcome:
    """What the results screen needs from a finished (or cancelled) run."""

    results: Any  # mailstats.run.results.RunResults: read-only, its own cache connection
    result: Any
    accounts: list[Any]
    hours: dict[str, list[int]]
    cancelled: bool
    demo: Any = None  # gui.demo.DemoRun: the bundled demo's throw-away cache, if it was that


class RunPage(QWidget):
    finished = Signal(object)  # RunOutcome
    started = Signal()  # a run was launched (the results page lets go of the old tables)
    message = Signal(str)
    error = Signal(str)

    def __init__(
        self, store: Store, registry: Any, cache_path: Path | None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.registry = registry
        self.cache_path = cache_path
        self.job: worker.RunWorker | None = None
        self.demo: Any = None  # the DemoRun of the run in progress, when it is the demo
        self.tracker: ProgressTracker | None = None
        self.folders_done: list[str] = []
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Accounts to analyse (only accounts with mapped folders):"))
        self.accounts = QListWidget()
        self.accounts.setMaximumHeight(90)
        layout.addWidget(self.accounts)
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.run_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.run_button.clicked.connect(lambda: self.start())
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch()
        self.demo_button = QPushButton("Open the demo")
        self.demo_button.setToolTip(
            "Run the bundled demo mailbox (offline, the same run as `mailstats demo`); your "
            "own accounts, settings and cache are not touched"
        )
        self.demo_button.clicked.connect(lambda: self.start_demo())
        buttons.addWidget(self.demo_button)
        layout.addLayout(buttons)

        grid = QGridLayout()
        grid.setColumnStretch(1, 1)
        grid.addWidget(QLabel("Overall:"), 0, 0)
        self.overall = QProgressBar()
        self.overall.setRange(0, 1000)
        self.overall.setTextVisible(True)
        self.overall.setFormat("%p %")
        grid.addWidget(self.overall, 0, 1)
        self.overall_label = QLabel("Not started.")
        self.overall_label.setTextFormat(Qt.TextFormat.PlainText)
        grid.addWidget(self.overall_label, 1, 1)
        grid.addWidget(QLabel("Folder:"), 2, 0)
        self.folder_bar = QProgressBar()
        self.folder_bar.setTextVisible(True)
        self.folder_bar.setFormat("%v / %m")
        grid.addWidget(self.folder_bar, 2, 1)
        self.folder_label = QLabel("")
        self.folder_label.setTextFormat(Qt.TextFormat.PlainText)
        grid.addWidget(self.folder_label, 3, 1)
        layout.addLayout(grid)
        self.signin_box = QFrame()
        self.signin_box.setFrameShape(QFrame.Shape.StyledPanel)
        self.signin_box.setStyleSheet("QFrame { background: #fff4e5; }")
        self.signin_layout = QVBoxLayout(self.signin_box)
        self.signin_box.setVisible(False)
        #: account name -> (row, label, sign-in button, code button) while it needs signing in
        self.signin_rows: dict[str, tuple[QWidget, QLabel, QPushButton, QPushButton]] = {}
        self.signer = SignIn(self)
        self.signer.finished.connect(self._signed_in)
        layout.addWidget(self.signin_box)
        layout.addWidget(QLabel("Log:"))
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        layout.addWidget(self.log, 1)
        self.refresh_accounts()

    def refresh_accounts(self) -> None:
        checked = {
            self.accounts.item(i).text()
            for i in range(self.accounts.count())
            if self.accounts.item(i).checkState() == Qt.CheckState.Checked
        }
        fresh = self.accounts.count() == 0
        self.accounts.clear()
        for a in self.store.accounts:
            item = QListWidgetItem(a.name)
            mapped = bool(a.ham or a.spam or a.sent)
            flags = Qt.ItemFlag.ItemIsUserCheckable | (
                Qt.ItemFlag.ItemIsEnabled if mapped else Qt.ItemFlag.NoItemFlags
            )
            item.setFlags(flags)
            on = mapped and (fresh or a.name in checked or not checked)
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            if not mapped:
                item.setText(f"{a.name}  (no folders mapped yet: see Folders)")
            self.accounts.addItem(item)
        self.run_button.setEnabled(self.job is None and bool(self.chosen()))

    def chosen(self) -> list[Any]:
        out = []
        for i, a in enumerate(self.store.accounts):
            item = self.accounts.item(i)
            if item is not None and item.checkState() == Qt.CheckState.Checked:
                out.append(a)
        return out

    def without_password(self, accounts: list[Any]) -> list[str]:
        """Server accounts that would fail to log in for want of a password."""
        from mailstats.accounts.config import resolve_password

        out = []
        for a in accounts:
            if a.is_local or getattr(a, "auth", "password") != "password":
                continue
            if not self.store.password_for(a, resolve_password(a)):
                out.append(a.name)
        return out

    @property
    def running(self) -> bool:
        return self.job is not None

    def make_engine(self) -> Any:
        from mailstats.run.cache import Cache
        from mailstats.run.engine import Engine
        from mailstats.sources import open_source

        cfg = copy.deepcopy(self.store.config)
        store = self.store
        cache = Cache(self.cache_path or cfg.settings.cache or None)
        return Engine(
            cfg,
            cache=cache,
            registry=self.registry,
            source_factory=lambda a, pw: open_source(a, store.password_for(a, pw)),
        )

    def start(self) -> bool:
        accounts = [copy.deepcopy(a) for a in self.chosen()]
        if self.job is not None or not accounts:
            return False
        missing = self.without_password(accounts)
        if missing:
            names = ", ".join(repr(n) for n in missing)
            self.error.emit(
                f"No password is known for {names}: the system keyring has none (or is not "
                "available) and none was typed in this session. Open Accounts, choose Edit "
                "and type the password, then run again."
            )
            return False
        from mailstats.sources import open_source

        store = self.store
        return self._launch(
            self.make_engine,
            accounts,
            sources=lambda a, pw: open_source(a, store.password_for(a, pw)),
        )

    def start_demo(self) -> bool:
        """The bundled demo, exactly as `mailstats demo` runs it (same counts)."""
        from mailstats.gui.demo import DemoRun

        if self.job is not None:
            return False
        from mailstats.accounts.config import load_config
        from mailstats.cli import demo_dir

        accounts = load_config(demo_dir() / "accounts.toml").accounts

        def make() -> Any:
            self.demo = DemoRun(None)
            return self.demo.engine

        return self._launch(make, accounts)

    def _launch(self, make: Any, accounts: list[Any], sources: Any = None) -> bool:
        """Start a run. `make` builds the engine on the worker thread: the first run imports
        the whole engine (seconds on a busy machine), which must not freeze the window."""
        self.tracker = ProgressTracker(accounts)
        self.folders_done = []
        self.clear_signin()
        self.log.clear()
        self.overall.setValue(0)
        self.folder_bar.setRange(0, 1)
        self.folder_bar.setValue(0)
        self.overall_label.setText("Starting…")
        self.folder_label.setText("")
        job = worker.RunWorker(make, accounts)
        self.job = job
        self.run_button.setEnabled(False)
        self.demo_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._log(f"Run started for {', '.join(a.name for a in accounts)}.")
        self.started.emit()
        worker.start(
            job,
            self,
            done=lambda result: self._done(job.engine.results(result), accounts, result),
            failed=self._failed,
            progress=self.on_progress,
        )
        if sources is not None:
            tracker = self.tracker
            tracker.sizes_pending = True
            count = worker.CallWorker(lambda: folder_sizes(sources, accounts))
            worker.start(
                count, self, done=tracker.set_sizes, failed=lambda _t: tracker.set_sizes({})
            )
        return True

    def cancel(self) -> None:
        if self.job is None:
            return
        self.job.cancel_event.set()
        self.cancel_button.setEnabled(False)
        self.overall_label.setText(
            "Cancelling: the batch in progress finishes first (at most 500 messages)…"
        )
        self._log("Cancel requested.")

    def _log(self, text: str) -> None:
        self.log.appendPlainText(f"{time.strftime('%H:%M:%S')}  {text}")

    def on_progress(self, p: Any) -> None:
        tracker = self.tracker
        if tracker is None:
            return
        tracker.update(p)
        if tracker.known:
            self.overall.setRange(0, 1000)
            self.overall.setValue(int(tracker.fraction * 1000))
            left = tracker.time_left()
        else:  # busy bar, no made-up percentage while the folders are being counted
            self.overall.setRange(0, 0)
            left = None
        if left is None:
            self.overall_label.setText("Estimating the time left…")
        elif p.phase not in ("done", "finished"):
            text = left_text(left)
            self.overall_label.setText(text[0].upper() + text[1:])
        if p.phase == "connect":
            self._log(f"{p.account}: opening ({p.total} folders mapped)")
            self.folder_label.setText(f"Connecting to {p.account}…")
            return
        if p.phase == "done":
            self.folders_done.append(f"{p.account}/{p.folder}")
            self._log(f"{p.account}/{p.folder}: done, {p.total:,} messages")
            self.folder_bar.setRange(0, max(p.total, 1))
            self.folder_bar.setValue(max(p.total, 1))
            self.folder_bar.setFormat(f"{p.total:,} / {p.total:,}")
            nxt = tracker.next_folder(p.account, p.folder)
            # a warm re-run sends nothing else for a folder with no new mail: name the next
            # folder now, never leave the finished one's "0 of 0" on screen
            self.folder_label.setText(
                f"Reading {p.account}/{nxt} (new mail and cached results)…"
                if nxt
                else f"{p.account}/{p.folder}: done, {p.total:,} messages"
            )
            return
        if p.phase == "finished":  # an account, not a folder: the folder bar stays as is
            self._log(f"{p.account}: {FINISHED_WORDS.get(p.message, p.message)}")
            return
        if p.phase not in PHASE_WORDS:
            return  # a phase this window does not know yet: never a bogus bar
        if p.phase == "sync" and p.total == 0:
            self.folder_label.setText(f"{p.account}/{p.folder}: no new messages to fetch")
            return
        words = PHASE_WORDS[p.phase]
        self.folder_bar.setRange(0, max(p.total, 1))
        self.folder_bar.setValue(p.done if p.total else 1)
        self.folder_bar.setFormat(f"{p.done:,} / {p.total:,}")  # separators, like the labels
        # both phases count messages: headers fetched, messages analysed
        text = f"{words} in {p.account}/{p.folder}: {p.done:,} of {p.total:,} messages"
        phase_left = tracker.phase_left(p)
        if phase_left is not None and p.done < p.total:
            text += f", {left_text(phase_left)}"
        self.folder_label.setText(text)

    def _finish_ui(self) -> None:
        self.job = None
        self.demo_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.run_button.setEnabled(bool(self.chosen()))

    def _failed(self, text: str) -> None:
        if self.demo is not None:
            self.demo.remove()
            self.demo = None
        self._finish_ui()
        self.overall_label.setText(text)
        self._log(text)
        self.error.emit(text)

    def _done(self, results: Any, accounts: list[Any], result: Any) -> None:
        cancelled = any(a.status == "cancelled" for a in result.accounts)
        signin = [a.name for a in result.accounts if a.needs_signin]
        for a in result.accounts:
            if a.needs_signin:
                self._log(f"{a.name}: sign in again: {a.error}")
                self.ask_signin(a.name)
            elif a.status == "partial":
                self._log(f"{a.name}: partial: {a.error}")
            elif a.status == "failed":
                self._log(f"{a.name}: failed: {a.error}")
                self.error.emit(f"Account {a.name} failed: {a.error}")
        for w in result.warnings:
            self._log(f"warning: {w}")
        if cancelled:
            n = len(self.folders_done)
            total = len(self.tracker.units) // 2 if self.tracker else 0
            done = ", ".join(self.folders_done) or "none"
            text = (
                f"Cancelled. {n} of {total} folders were finished ({done}). Everything "
                "fetched and analysed so far is kept in the cache: Run again continues from "
                "there. The results below are partial."
            )
        else:
            msgs = sum(f.total for a in result.accounts for f in a.folders)
            secs = (result.finished - result.started).total_seconds()
            text = f"Finished: {msgs:,} messages in {fmt_duration(secs)}."
            self.overall.setRange(0, 1000)
            self.overall.setValue(1000)
        if signin:
            names = ", ".join(repr(n) for n in signin)
            text += f" Sign in again to {names} (below), then run again."
        self.overall_label.setText(text)
        self._log(text)
        self.message.emit(text)
        self.folder_label.setText("Counting the hour-of-day distribution…")
        # reads every folder's table: off the GUI thread as well
        job = worker.CallWorker(lambda: _hours(results, result))
        worker.start(
            job,
            self,
            done=lambda hours: self._emit_outcome(results, result, accounts, hours, cancelled),
            failed=lambda _t: self._emit_outcome(results, result, accounts, {}, cancelled),
        )

    # -- sign in again ----------------------------------------------------------------
    def ask_signin(self, name: str) -> None:
        """Say in plain words that `name` needs signing in, with the buttons that do it."""
        if name in self.signin_rows:
            return
        acct = self.store.account(name)
        user = f" ({acct.username})" if acct is not None and acct.username else ""
        label = QLabel(
            f"Sign in again to account '{name}'{user}: the provider no longer accepts its "
            "saved sign-in (it was withdrawn or has expired), or it was never signed in. "
            "Nothing of it was read in this run."
        )
        label.setWordWrap(True)
        label.setTextFormat(Qt.TextFormat.PlainText)
        button = QPushButton(f"Sign in to {name}…")
        button.clicked.connect(lambda: self.sign_in(name))
        code = QPushButton("Sign in with a code…")
        code.clicked.connect(lambda: self.sign_in(name, device=True))
        code.setVisible(acct is not None and has_device_flow(acct))
        row = QWidget()
        lay = QHBoxLayout(row)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(label, 1)
        lay.addWidget(button)
        lay.addWidget(code)
        self.signin_layout.addWidget(row)
        self.signin_rows[name] = (row, label, button, code)
        self.signin_box.setVisible(True)

    def clear_signin(self) -> None:
        self.signer.cancel()
        for name in list(self.signin_rows):
            self._drop_signin_row(name)

    def _drop_signin_row(self, name: str) -> None:
        row = self.signin_rows.pop(name)[0]
        self.signin_layout.removeWidget(row)
        row.setParent(None)
        row.deleteLater()
        self.signin_box.setVisible(bool(self.signin_rows))

    def sign_in(self, name: str, device: bool = False) -> bool:
        acct = self.store.account(name)
        if acct is None or not self.signer.start(copy.deepcopy(acct), device=device):
            return False
        for _row, _label, button, code in self.signin_rows.values():
            button.setEnabled(False)
            code.setEnabled(False)
        self.message.emit(
            f"Signing in to {name}: finish in the browser window that just opened…"
            if not device
            else f"Signing in to {name}: enter the code shown…"
        )
        return True

    def _signed_in(self, ok: bool, text: str) -> None:
        name = self.signer.account.name if self.signer.account else ""
        for _row, _label, button, code in self.signin_rows.values():
            button.setEnabled(True)
            code.setEnabled(True)
        if ok and name in self.signin_rows:
            self._drop_signin_row(name)
            text = f"{name}: {text} Press Run to analyse it."
        self._log(text)
        self.message.emit(text)
        if not ok and text != "Sign-in cancelled.":
            self.error.emit(text)

    def _emit_outcome(
        self, results: Any, result: Any, accounts: list[Any], hours: Any, cancelled: bool
    ) -> None:
        self.folder_label.setText("")
        demo, self.demo = self.demo, None
        self._finish_ui()
        self.finished.emit(RunOutcome(results, result, accounts, hours, cancelled, demo))


def _hours(results: Any, result: Any) -> dict[str, list[int]]:
    column = result.plot_column(HOUR_OF_DAY)
    if column is None:
        return {}
    tables = (results.table_for(fr) for a in result.accounts for fr in a.folders)
    return hour_distribution(tables, column)


def folder_sizes(sources: Any, accounts: list[Any]) -> dict[tuple[str, str], int]:
    """Each mapped folder's message count, to weigh the overall progress by messages.

    Asked on a connection of its own while the run starts (a STATUS per folder on IMAP, an
    index scan for local stores). OAuth2 accounts are left out: a second sign-in at the
    same moment as the run's could refresh the same token twice. A folder whose count
    cannot be read is left out too; the tracker then estimates it.
    """
    from mailstats.accounts.config import resolve_password
    from mailstats.sources import SourceError

    out: dict[tuple[str, str], int] = {}
    for acct in accounts:
        if getattr(acct, "auth", "password") != "password":
            continue
        try:
            src = sources(acct, "" if acct.is_local else resolve_password(acct))
        except (SourceError, OSError):
            continue
        try:
            counts = src.folder_counts(list(acct.roles()))
        except (SourceError, OSError):
            counts = {}
        finally:
            src.close()
        out.update({(acct.name, f): n for f, n in counts.items() if n is not None})
    return out
