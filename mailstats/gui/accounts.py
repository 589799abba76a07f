"""Accounts screen: the list of accounts; add, edit, remove, import and export them.

Adding and editing open the account dialog (gui/account_dialog.py).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mailstats.accounts.config import Account, ConfigError, resolve_password
from mailstats.gui.account_dialog import AccountDialog, move_token
from mailstats.gui.store import Store, unmapped


class AccountsPage(QWidget):
    """The list of accounts and the buttons that change it."""

    changed = Signal()
    demo_requested = Signal()  # "Open the demo": the window runs the bundled demo
    message = Signal(str)  # for the status bar
    error = Signal(str)  # for a dialog

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.dialog: AccountDialog | None = None
        layout = QVBoxLayout(self)
        intro = QLabel(
            "The mailboxes to analyse. mailstats only reads: folders are opened read-only "
            "and nothing is marked as seen."
        )
        intro.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(intro, 1)
        self.demo_button = QPushButton("Open the demo")
        self.demo_button.setToolTip(
            "See what mailstats shows on a bundled demo mailbox (offline); your accounts, "
            "settings and cache are not touched"
        )
        self.demo_button.clicked.connect(self.demo_requested.emit)
        top.addWidget(self.demo_button)
        layout.addLayout(top)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Name", "Where", "User", "Folders mapped"])
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setDefaultSectionSize(26)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.doubleClicked.connect(lambda _i: self.edit_account())
        layout.addWidget(self.table, 1)
        self.keyring_note = QLabel("")
        self.keyring_note.setWordWrap(True)
        self.keyring_note.setTextFormat(Qt.TextFormat.PlainText)
        self.keyring_note.setStyleSheet("color: #8a4b00;")
        self.keyring_note.setVisible(False)
        layout.addWidget(self.keyring_note)
        row = QHBoxLayout()
        self.add_button = QPushButton("Add…")
        self.edit_button = QPushButton("Edit…")
        self.remove_button = QPushButton("Remove")
        self.import_button = QPushButton("Import accounts file…")
        self.export_button = QPushButton("Export accounts file…")
        self.add_button.clicked.connect(lambda: self.add_account())
        self.edit_button.clicked.connect(lambda: self.edit_account())
        self.remove_button.clicked.connect(lambda: self.remove_account())
        self.import_button.clicked.connect(lambda: self.import_accounts())
        self.export_button.clicked.connect(lambda: self.export_accounts())
        for b in (self.add_button, self.edit_button, self.remove_button):
            row.addWidget(b)
        row.addStretch()
        row.addWidget(self.import_button)
        row.addWidget(self.export_button)
        layout.addLayout(row)
        self.refresh()

    def refresh(self) -> None:
        self.table.setRowCount(len(self.store.accounts))
        for i, a in enumerate(self.store.accounts):
            how = ", OAuth2" if a.auth == "oauth2" else ""
            where = a.path if a.is_local else f"{a.host}:{a.port} ({a.security}{how})"
            mapped = ", ".join(
                f"{len(getattr(a, r))} {r}" for r in ("ham", "spam", "sent") if getattr(a, r)
            )
            for j, text in enumerate((a.name, where, a.username, mapped or "none yet")):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(i, j, item)
        has = bool(self.store.accounts)
        self.edit_button.setEnabled(has)
        self.remove_button.setEnabled(has)
        self.export_button.setEnabled(has)
        if has and self.table.currentRow() < 0:
            self.table.selectRow(0)

    def selected(self) -> Account | None:
        row = self.table.currentRow()
        if 0 <= row < len(self.store.accounts):
            return self.store.accounts[row]
        return None

    # -- add / edit / remove ----------------------------------------------------------
    def add_account(self) -> AccountDialog:
        return self._open_dialog(None)

    def edit_account(self) -> AccountDialog | None:
        acct = self.selected()
        return self._open_dialog(acct) if acct else None

    def _open_dialog(self, acct: Account | None) -> AccountDialog:
        dlg = AccountDialog(self, acct, self.store)
        dlg.accepted.connect(lambda: self._dialog_accepted(dlg))
        self.dialog = dlg
        dlg.open()
        return dlg

    def _dialog_accepted(self, dlg: AccountDialog) -> None:
        acct = dlg.account()
        old = dlg.original
        password = dlg.password.text() if acct.auth == "password" else ""
        moved = old is not None and (old.name, old.username) != (acct.name, acct.username)
        if moved and old is not None and acct.auth == old.auth == "oauth2":
            move_token(old, acct)
        elif moved and old is not None and not (acct.is_local or old.is_local or password):
            # the keyring entry is keyed by name and user: carry the password over
            password = self.store.password_for(old, resolve_password(old))
        self.store.upsert(acct, old.name if old else None)
        if password and not acct.is_local:
            if self.store.set_password(acct, password):
                self.message.emit(f"Saved account {acct.name}; its password is in the keyring.")
            else:
                note = (
                    "No system keyring is available, so the password for "
                    f"{acct.name!r} is kept in memory only until you close mailstats; "
                    "you will be asked again next time. It was not written to any file."
                )
                self.keyring_note.setText(note)
                self.keyring_note.setVisible(True)
                self.message.emit(note)
        else:
            self.message.emit(f"Saved account {acct.name}.")
        self.refresh()
        self.changed.emit()

    def remove_account(self) -> None:
        acct = self.selected()
        if acct is None:
            return
        self.store.remove(acct.name)
        self.message.emit(f"Removed account {acct.name} (cached headers stay in the cache).")
        self.refresh()
        self.changed.emit()

    # -- import / export --------------------------------------------------------------
    def _last_dir(self) -> str:
        return str(QSettings().value("paths/accounts_dir", str(Path.home())))

    def import_accounts(self, path: str | None = None) -> None:
        if path is None:
            path, _ = QFileDialog.getOpenFileName(
                self, "Import accounts file", self._last_dir(), "TOML files (*.toml);;All (*)"
            )
            if not path:
                return
        QSettings().setValue("paths/accounts_dir", str(Path(path).parent))
        try:
            names = self.store.import_file(Path(path))
        except (ConfigError, OSError) as exc:
            self.error.emit(f"Could not import {path}: {exc}")
            return
        self.message.emit(f"Imported {len(names)} account(s): {', '.join(names)}")
        self.refresh()
        self.changed.emit()

    def export_accounts(self, path: str | None = None) -> None:
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self,
                "Export accounts file",
                str(Path(self._last_dir()) / "accounts.toml"),
                "TOML files (*.toml)",
            )
            if not path:
                return
        QSettings().setValue("paths/accounts_dir", str(Path(path).parent))
        try:
            self.store.export_file(Path(path))
        except OSError as exc:
            self.error.emit(f"Could not write {path}: {exc.strerror or exc}")
            return
        missing = unmapped(self.store.config)
        note = (
            f" Map folders for {', '.join(missing)} before using it with --batch."
            if missing
            else ""
        )
        self.message.emit(f"Wrote {path} (passwords are not in it).{note}")
