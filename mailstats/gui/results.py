"""Results screen: the checks table, the ham-vs-spam chart, hours of day, and single messages.

Everything that reads the cache (a folder's table, one message's explanation, the CSV export,
the report) runs in a worker thread, one at a time behind a lock, through the run's read-only
results object (its own SQLite connection, never the engine's), because a folder can hold 100k
messages. Header text is shown as
plain text only: it is written by whoever sent the mail.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from mailstats.gui import worker
from mailstats.gui.charts import ROLE_COLORS, BarRow, HamSpamChart, HoursChart, Rate
from mailstats.gui.models import (
    VALUE_FILTERS,
    MessagesModel,
    ResultsModel,
    build_check_rows,
    explain_text,
    summary_dicts,
)
from mailstats.gui.reporting import _report_available, release_memory, write_report_in_child
from mailstats.run.dnstrust import warning_for

#: None when the report's libraries are missing (then there is no Report button)
_write_report: Callable[[str, Callable[[Any], None]], str] | None = (
    write_report_in_child if _report_available() else None
)


class ResultsPage(QWidget):
    message = Signal(str)
    error = Signal(str)
    exported = Signal(str)
    report_written = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.outcome: Any = None
        self.summary: list[dict[str, Any]] = []
        self.tables: dict[tuple[str, str], Any] = {}
        self.lock = threading.Lock()
        #: (account, folder, uid): the selected message, the one being read, the one shown
        self.wanted: tuple[str, str, int] | None = None
        self.explaining: tuple[str, str, int] | None = None
        self.shown: tuple[str, str, int] | None = None
        self.last_export = ""
        #: the outcome whose CSV files are in last_export (a report must describe it)
        self.exported_outcome: Any = None
        self.report_proc: Any = None
        #: set while a run goes on: the shown run's message tables were let go of
        self.dropped = False
        self.open_url = QDesktopServices.openUrl
        layout = QVBoxLayout(self)

        top = QHBoxLayout()
        top.addWidget(QLabel("Scope:"))
        self.scope = QComboBox()
        self.scope.setMinimumWidth(140)
        self.scope.currentIndexChanged.connect(lambda _i: self._fill_checks())
        top.addWidget(self.scope)
        self.note = QLabel("Run an analysis to see results here.")
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.note.setWordWrap(True)
        top.addWidget(self.note, 1)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(lambda: self.export())
        self.report_button = QPushButton("Report")
        self.report_button.clicked.connect(lambda: self.report())
        if _write_report is None:
            self.report_button.setToolTip(
                "The HTML report needs matplotlib and scikit-learn: pip install 'mailstats[report]'"
            )
        self.share_button = QPushButton("Share results…")
        self.share_button.setToolTip("Save an aggregate-only bundle for a study (shows it first)")
        self.share_button.clicked.connect(lambda: self.share())
        top.addWidget(self.export_button)
        top.addWidget(self.report_button)
        top.addWidget(self.share_button)
        layout.addLayout(top)
        # The run's resolver lied or could not be reached: say so above every number.
        self.dns_banner = QLabel("")
        self.dns_banner.setObjectName("dnsBanner")
        self.dns_banner.setTextFormat(Qt.TextFormat.PlainText)
        self.dns_banner.setWordWrap(True)
        self.dns_banner.setStyleSheet(
            "QLabel#dnsBanner { background: #fff3cd; color: #664d03; border: 1px solid #ffe69c;"
            " padding: 6px; }"
        )
        self.dns_banner.hide()
        layout.addWidget(self.dns_banner)

        self.tabs = QTabWidget()
        layout.addWidget(self.tabs, 1)

        # table
        self.model = ResultsModel(self)
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSortingEnabled(True)
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(24)
        hdr = self.view.horizontalHeader()
        hdr.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        hdr.setStretchLastSection(True)
        self.tabs.addTab(self.view, "Checks")

        # bar chart
        self.chart = HamSpamChart()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.chart)
        self.tabs.addTab(scroll, "Ham vs spam chart")

        # hours
        self.hours_chart = HoursChart()
        self.hours_view = self.hours_chart
        self.tabs.addTab(self.hours_view, "Hour of day")

        # messages
        msg_page = QWidget()
        ml = QVBoxLayout(msg_page)
        filt = QHBoxLayout()
        filt.addWidget(QLabel("Folder:"))
        self.folder_box = QComboBox()
        self.folder_box.setMinimumWidth(120)
        filt.addWidget(self.folder_box)
        filt.addWidget(QLabel("Check:"))
        self.check_box = QComboBox()
        self.check_box.setMinimumWidth(160)
        filt.addWidget(self.check_box)
        self.value_box = QComboBox()
        for label in VALUE_FILTERS:
            self.value_box.addItem(label)
        filt.addWidget(self.value_box)
        self.count_label = QLabel("")
        filt.addWidget(self.count_label, 1)
        ml.addLayout(filt)
        split = QSplitter(Qt.Orientation.Vertical)
        self.messages = MessagesModel(self)
        self.message_view = QTableView()
        self.message_view.setModel(self.messages)
        self.message_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.message_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.message_view.verticalHeader().setVisible(False)
        self.message_view.verticalHeader().setDefaultSectionSize(22)
        mh = self.message_view.horizontalHeader()
        mh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        mh.setResizeContentsPrecision(100)  # look at 100 rows, not all 100k
        mh.setStretchLastSection(True)
        self.message_view.selectionModel().currentRowChanged.connect(
            lambda cur, _prev: self.show_message(cur.row())
        )
        split.addWidget(self.message_view)
        detail = QSplitter(Qt.Orientation.Horizontal)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.header_text = QPlainTextEdit()
        self.header_text.setReadOnly(True)
        self.header_text.setFont(mono)
        self.header_text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.header_text.setPlaceholderText("Select a message to see its headers.")
        self.why_text = QPlainTextEdit()
        self.why_text.setReadOnly(True)
        self.why_text.setPlaceholderText("…and why each check said what it said.")
        detail.addWidget(self.header_text)
        detail.addWidget(self.why_text)
        detail.setSizes([600, 400])
        split.addWidget(detail)
        ml.addWidget(split, 1)
        self.tabs.addTab(msg_page, "Messages")
        self.folder_box.currentIndexChanged.connect(lambda _i: self.load_folder())
        self.check_box.currentIndexChanged.connect(lambda _i: self.apply_filter())
        self.value_box.currentIndexChanged.connect(lambda _i: self.apply_filter())
        self._set_enabled(False)

    def _set_enabled(self, on: bool) -> None:
        self.export_button.setEnabled(on)
        self.report_button.setEnabled(on and _write_report is not None)
        self.share_button.setEnabled(on)

    # -- new results --------------------------------------------------------------------
    def show_outcome(self, outcome: Any) -> None:
        if self.outcome is not None and self.outcome.results is not outcome.results:
            self.release()
        self.dropped = False
        self.outcome = outcome
        self.tables = {}
        result = outcome.result
        self.summary = summary_dicts(result)
        self.scope.blockSignals(True)
        self.scope.clear()
        self.scope.addItem("All accounts", None)
        for a in result.accounts:
            if a.folders:
                self.scope.addItem(a.name, a.name)
        self.scope.blockSignals(False)
        n = sum(f.total for a in result.accounts for f in a.folders)
        parts = [f"{n:,} messages in {sum(len(a.folders) for a in result.accounts)} folders"]
        if outcome.cancelled:
            parts.append("partial: the run was cancelled")
        failed = [a.name for a in result.accounts if a.status == "failed"]
        if failed:
            parts.append(f"failed: {', '.join(failed)}")
        missing = [
            f"{a.name} / {f.folder}: {f.unavailable}"
            for a in result.accounts
            for f in a.folders
            if getattr(f, "unavailable", 0)
        ]
        if missing:
            parts.append(f"listed by the server, not fetched (unavailable): {', '.join(missing)}")
        self.note.setText("; ".join(parts) + ".")
        banner = warning_for(result.dns_trust) if getattr(result, "dns_trust", None) else ""
        self.dns_banner.setText(banner)
        self.dns_banner.setVisible(bool(banner))
        self._fill_checks()
        self._fill_hours(outcome.hours)
        self.folder_box.blockSignals(True)
        self.check_box.blockSignals(True)
        self.folder_box.clear()
        for a in result.accounts:
            for fr in a.folders:
                self.folder_box.addItem(f"{a.name} / {fr.folder} ({fr.role})", fr)
        self.check_box.clear()
        self.check_box.addItem("(all messages)", "")
        for c in result.checks:
            self.check_box.addItem(c, c)
        ham = next(
            (
                i
                for i in range(self.folder_box.count())
                if self.folder_box.itemData(i).role == "ham"
            ),
            0,
        )
        self.folder_box.setCurrentIndex(ham)
        self.folder_box.blockSignals(False)
        self.check_box.blockSignals(False)
        self._set_enabled(True)
        self.load_folder()

    def release(self) -> None:
        """Let go of the results shown (a new run replaces them, or the window closes): the
        cache connection, the folder tables, the demo's temporary cache, and the memory."""
        old, self.outcome = self.outcome, None
        self.tables = {}
        self.exported_outcome = None  # its CSV files describe a run no longer shown
        if old is not None:
            with self.lock:
                old.results.close()
            if getattr(old, "demo", None) is not None:
                old.demo.remove()
        del old
        release_memory()

    def drop_tables(self) -> None:
        """A new run started: let go of the shown run's per-message tables (tens of MB at
        100k messages), so two runs' tables are never in memory at once (the window kept a
        run's worth more after each run). The counts stay on screen. The messages, export
        and report come back with the new run's results: read again from the cache meanwhile
        they could mix in what the new run is writing."""
        if self.outcome is None:
            return
        for a in self.outcome.result.accounts:
            for fr in a.folders:
                fr.table = None
        self.tables = {}
        self.dropped = True
        self._set_enabled(False)
        self.load_folder()
        release_memory()

    def _fill_checks(self) -> None:
        account = self.scope.currentData()
        rows = build_check_rows(self.summary, account)
        self.model.set_rows(rows)
        col = (
            ResultsModel.COL_RANK
            if any(r.rank_score is not None for r in rows)
            else (ResultsModel.COL_DELTA)
        )
        self.view.sortByColumn(col, Qt.SortOrder.DescendingOrder)
        self._fill_chart(self.model.rows)

    def _fill_chart(self, rows: list[Any]) -> None:
        shown = [r for r in rows if (r.pct("ham") or 0) > 0 or (r.pct("spam") or 0) > 0]
        if not shown:
            self.chart.set_rows([], "No check was true for any ham or spam message in this scope")
            return
        never = len(rows) - len(shown)
        note = (
            f"({never} {'check' if never == 1 else 'checks'} true for no message or never "
            "decided: left out)"
            if never
            else ""
        )
        bars = [
            BarRow(
                r.check,
                Rate.of(*r.counts.get("ham", [0, 0])),
                Rate.of(*r.counts.get("spam", [0, 0])),
            )
            for r in shown
        ]
        self.chart.set_rows(
            bars,
            "Share of ham and spam messages where the check is true, best separating on top",
            note,
        )

    def _fill_hours(self, hours: dict[str, list[int]]) -> None:
        if not hours:
            self.hours_chart.set_series(
                [], "No hour-of-day data (no module that reads the sender's hour ran)"
            )
            return
        series = []
        for role in ("ham", "spam", "sent"):
            hist = hours.get(role)
            if not hist or not sum(hist):
                continue
            total = sum(hist)
            pcts = [100.0 * n / total for n in hist]
            series.append((f"{role} ({total:,} messages)", ROLE_COLORS[role], pcts))
        self.hours_chart.set_series(
            series, "Sender's local hour of day (share of each role's messages)"
        )

    # -- messages ---------------------------------------------------------------------
    def load_folder(self) -> None:
        fr = self.folder_box.currentData()
        if fr is None or self.outcome is None or self.dropped:
            self.messages.set_table(None)
            self.wanted = self.shown = None
            self.header_text.clear()
            self.why_text.clear()
            self.count_label.setText(
                "a run was started: the messages come back with the next results"
                if self.dropped
                else ""
            )
            return
        key = (fr.account, fr.folder)
        if key in self.tables:
            self.apply_filter()
            return
        outcome, lock = self.outcome, self.lock
        results = outcome.results

        def job() -> Any:
            with lock:
                return results.table_for(fr)

        self.messages.set_table(None)  # never another run's or folder's rows meanwhile
        self.wanted = self.shown = None
        self.header_text.clear()
        self.why_text.clear()
        self.count_label.setText("loading…")
        w = worker.CallWorker(job)
        worker.start(
            w,
            self,
            done=lambda table: self._table_loaded(outcome, key, table),
            failed=lambda t: self.error.emit(f"Could not load {fr.folder}: {t}"),
        )

    def _table_loaded(self, outcome: Any, key: tuple[str, str], table: Any) -> None:
        if outcome is not self.outcome:
            return  # a run finished meanwhile: this table belongs to the one before
        self.tables[key] = table
        fr = self.folder_box.currentData()
        if fr is not None and (fr.account, fr.folder) == key:
            self.apply_filter()

    def apply_filter(self) -> None:
        fr = self.folder_box.currentData()
        table = self.tables.get((fr.account, fr.folder)) if fr is not None else None
        check = self.check_box.currentData() or ""
        want = VALUE_FILTERS[self.value_box.currentText()] if check else None
        self.messages.set_table(table, check, want)
        if table is not None:
            self.count_label.setText(f"{self.messages.rowCount():,} of {len(table.uids):,}")
        self.wanted = self.shown = None  # an answer still on its way is not shown
        self.header_text.clear()
        self.why_text.clear()
        self.header_text.setPlaceholderText("Select a message to see its headers.")
        self.why_text.setPlaceholderText("…and why each check said what it said.")

    def show_message(self, row: int) -> None:
        """Explain the selected message, reading that one message only.

        One explanation is read at a time. A selection made while one is being read replaces
        any earlier waiting one (ten Down-arrow presses read at most two messages, the one in
        flight and the last), and an answer is shown only if its message is still the
        selected one, so the panel never shows another message than the highlighted row.
        """
        if row < 0 or row >= self.messages.rowCount() or self.outcome is None:
            return
        fr = self.folder_box.currentData()
        uid = self.messages.uid_at(row)
        acct = next((a for a in self.outcome.accounts if a.name == fr.account), None)
        if acct is None:
            return
        self.wanted = (fr.account, fr.folder, uid)
        self.header_text.setPlainText("")
        self.why_text.setPlainText("")
        self.header_text.setPlaceholderText(f"Reading message {uid}…")
        self.why_text.setPlaceholderText("")
        if self.explaining is None:
            self._explain(acct, fr.folder, uid)

    def _explain(self, acct: Any, folder: str, uid: int) -> None:
        results, lock = self.outcome.results, self.lock
        checks = list(self.outcome.result.checks)
        key = (acct.name, folder, uid)
        self.explaining = key

        def job() -> tuple[str, str]:
            with lock:
                info = results.explain(acct, folder, uid)
            return info.get("header", ""), explain_text(info, checks)

        w = worker.CallWorker(job)
        worker.start(
            w,
            self,
            done=lambda res: self._explained(key, res),
            failed=lambda t: self._explain_failed(key, t),
        )

    def _explain_next(self) -> None:
        """After an answer: read the message selected meanwhile, if it is another one."""
        done, self.explaining = self.explaining, None
        want = self.wanted
        if want is None or want == done or self.outcome is None:
            return
        acct = next((a for a in self.outcome.accounts if a.name == want[0]), None)
        if acct is not None:
            self._explain(acct, want[1], want[2])

    def _explained(self, key: tuple[str, str, int], res: tuple[str, str]) -> None:
        if key == self.wanted:
            header, why = res
            self.header_text.setPlainText(header)
            self.why_text.setPlainText(why)
            self.shown = key
        self._explain_next()

    def _explain_failed(self, key: tuple[str, str, int], text: str) -> None:
        if key == self.wanted:
            self.header_text.setPlaceholderText("")
            self.error.emit(f"Could not read message {key[2]}: {text}")
        self._explain_next()

    # -- export and report ------------------------------------------------------------
    def export(self, path: str | None = None, then_report: bool = False) -> None:
        if self.outcome is None:
            return
        if path is None:
            start = str(QSettings().value("paths/export_dir", str(Path.home())))
            title = (
                "Write the report (and the CSV files it is made from) to"
                if then_report
                else "Export the CSV files to"
            )
            path = QFileDialog.getExistingDirectory(self, title, start)
            if not path:
                return
        QSettings().setValue("paths/export_dir", path)
        outcome = self.outcome
        results, result, lock = outcome.results, outcome.result, self.lock
        from mailstats.stats.export import write_outputs

        def job() -> list[str]:
            with lock:
                return write_outputs(results, result, path)

        self.export_button.setEnabled(False)
        self.message.emit(f"Writing the CSV files to {path}…")
        w = worker.CallWorker(job)
        worker.start(
            w,
            self,
            done=lambda names: self._exported(path, names, then_report, outcome),
            failed=self._export_failed,
        )

    def _export_failed(self, text: str) -> None:
        self.export_button.setEnabled(True)
        self.error.emit(f"Could not write the CSV files: {text}")

    def _exported(self, path: str, names: list[str], then_report: bool, outcome: Any) -> None:
        self.export_button.setEnabled(True)
        self.last_export = path
        self.exported_outcome = outcome
        self.message.emit(f"Wrote {', '.join(names)} to {path}")
        self.exported.emit(path)
        if then_report:
            self.report(path)

    def report(self, path: str | None = None) -> None:
        """report.html for the results on screen, always.

        The report is made from the CSV files of the last export. When the results on screen
        came from a later run, those files are written again first (to the same folder), so
        the report never describes an older run.
        """
        if _write_report is None or self.outcome is None:
            return
        path = path or self.last_export
        if not path:
            self.export(then_report=True)
            return
        if self.exported_outcome is not self.outcome:
            self.message.emit(
                f"The results changed since {path} was written: writing its CSV files again…"
            )
            self.export(path, then_report=True)
            return
        self.report_button.setEnabled(False)
        self.message.emit("Writing the report (this can take a minute on big mailboxes)…")
        write = _write_report

        def started(proc: Any) -> None:
            self.report_proc = proc

        w = worker.CallWorker(lambda: write(path, started))
        worker.start(w, self, done=self._report_done, failed=self._report_failed)

    def stop_report(self) -> None:
        """Closing the window ends a report being written (its child process)."""
        proc, self.report_proc = self.report_proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()

    def share(self) -> None:
        """The share dialog over the exported CSV files (exported first when there are none)."""
        if self.outcome is None:
            return
        if self.last_export and self.exported_outcome is self.outcome:
            self._open_share(self.last_export)
            return

        def once(path: str) -> None:
            self.exported.disconnect(once)
            self._open_share(path)

        self.exported.connect(once)
        # newer results than the last export: written again to the same folder, so what is
        # shared is what is on screen
        self.export(self.last_export or None)
        if self.export_button.isEnabled():  # the folder dialog was cancelled
            self.exported.disconnect(once)

    def _open_share(self, path: str) -> None:
        from mailstats.gui.share import ShareDialog

        dialog = ShareDialog(path, self)
        if dialog.exec() and dialog.written is not None:
            self.message.emit(f"Wrote {dialog.written}")

    def _report_done(self, html: str) -> None:
        self.report_proc = None
        self.report_button.setEnabled(True)
        self.message.emit(f"Wrote {html}")
        self.report_written.emit(html)
        self.open_url(QUrl.fromLocalFile(html))

    def _report_failed(self, text: str) -> None:
        self.report_proc = None
        self.report_button.setEnabled(True)
        self.error.emit(f"Could not write the report: {text}")
