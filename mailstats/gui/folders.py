"""Folders screen: an account's folder tree, message counts and a role per folder.

Roles start from what the server says (SPECIAL-USE flags) and common names, and every change
is written straight back to the account (its ham / spam / sent lists) and saved, so the
mapping is remembered and `--batch` with an exported file sees exactly the same.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mailstats.accounts.config import Account, resolve_password
from mailstats.gui import worker
from mailstats.gui.store import Store

ROLE_CHOICES = [("ignore", ""), ("ham", "ham"), ("spam", "spam"), ("sent", "sent")]
ROLE_HELP = "ham: wanted mail · spam: junk · sent: your own mail (for friends and replies)"


def list_with_counts(acct: Account, password: str) -> tuple[list[Any], dict[str, int | None]]:
    """Folders and their message counts, fetched off the GUI thread."""
    from mailstats.sources import open_source

    src = open_source(acct, password)
    try:
        folders = src.list_folders()
        counts = src.folder_counts([f.name for f in folders if f.selectable])  # type: ignore[attr-defined]
    finally:
        src.close()
    return folders, counts


class FoldersPage(QWidget):
    changed = Signal()
    message = Signal(str)
    error = Signal(str)
    loaded = Signal(str)  # account name, after the tree is filled

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.combos: dict[str, QComboBox] = {}
        self.loaded_for = ""
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("Account:"))
        self.account_box = QComboBox()
        self.account_box.setMinimumWidth(200)
        self.account_box.currentIndexChanged.connect(lambda _i: self.load())
        top.addWidget(self.account_box)
        self.reload_button = QPushButton("Reload folders")
        self.reload_button.clicked.connect(lambda: self.load(force=True))
        top.addWidget(self.reload_button)
        top.addStretch()
        layout.addLayout(top)
        self.status = QLabel("")
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["Folder", "Messages", "Role", "Server flags"])
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(2, 130)
        header.setStretchLastSection(False)
        # the server's flags in full (e.g. "\\HasNoChildren \\Junk"), never cut off
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setAlternatingRowColors(True)
        layout.addWidget(self.tree, 1)
        help_label = QLabel(ROLE_HELP)
        help_label.setWordWrap(True)
        layout.addWidget(help_label)
        self.refresh_accounts()

    def refresh_accounts(self) -> None:
        current = self.account_box.currentText()
        self.account_box.blockSignals(True)
        self.account_box.clear()
        for a in self.store.accounts:
            self.account_box.addItem(a.name)
        idx = self.account_box.findText(current)
        self.account_box.setCurrentIndex(idx if idx >= 0 else 0)
        self.account_box.blockSignals(False)
        if self.loaded_for and self.store.account(self.loaded_for) is None:
            self.tree.clear()
            self.loaded_for = ""

    def current_account(self) -> Account | None:
        return self.store.account(self.account_box.currentText())

    def load(self, force: bool = False) -> None:
        acct = self.current_account()
        if acct is None:
            self.tree.clear()
            self.status.setText("Add an account first.")
            return
        if acct.name == self.loaded_for and not force:
            return
        self.status.setText(f"Listing the folders of {acct.name}…")
        self.reload_button.setEnabled(False)
        name = acct.name
        store = self.store

        def job() -> tuple[list[Any], dict[str, int | None]]:
            pw = "" if acct.is_local else store.password_for(acct, resolve_password(acct))
            return list_with_counts(acct, pw)

        w = worker.CallWorker(job)
        worker.start(
            w,
            self,
            done=lambda res: self._filled(name, res),
            failed=lambda t: self._failed(name, t),
        )

    def _failed(self, name: str, text: str) -> None:
        self.reload_button.setEnabled(True)
        if name != self.account_box.currentText():
            return  # the user has moved on to another account meanwhile
        self.status.setText(f"Could not list the folders: {text}")
        self.error.emit(f"Could not list the folders: {text}")

    def _filled(self, name: str, res: tuple[list[Any], dict[str, int | None]]) -> None:
        from mailstats.sources import guess_role

        self.reload_button.setEnabled(True)
        acct = self.store.account(name)
        if acct is None or name != self.account_box.currentText():
            return
        folders, counts = res
        mapping = acct.roles()
        fresh = not mapping
        self.tree.clear()
        self.combos = {}
        items: dict[str, QTreeWidgetItem] = {}
        for f in sorted(folders, key=lambda f: f.name.lower() if f.name != "INBOX" else ""):
            delim = f.delimiter or "/"
            parts = f.name.split(delim) if delim else [f.name]
            parent: QTreeWidgetItem | None = None
            for depth in range(1, len(parts)):
                key = delim.join(parts[:depth])
                if key not in items:
                    node = QTreeWidgetItem([parts[depth - 1], "", "", ""])
                    (parent.addChild(node) if parent else self.tree.addTopLevelItem(node))
                    items[key] = node
                parent = items[key]
            item = items.get(f.name) or QTreeWidgetItem()
            item.setText(0, parts[-1])
            item.setToolTip(0, f.name)
            n = counts.get(f.name)
            item.setText(1, "" if n is None else f"{n:,}")
            item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.setText(3, " ".join(f.flags))
            item.setToolTip(3, " ".join(f.flags))
            if f.name not in items:
                (parent.addChild(item) if parent else self.tree.addTopLevelItem(item))
                items[f.name] = item
            if not f.selectable:
                continue
            role = mapping.get(f.name, "") if not fresh else guess_role(f)
            combo = QComboBox()
            for label, value in ROLE_CHOICES:
                combo.addItem(label, value)
            combo.setCurrentIndex(next(i for i, (_, v) in enumerate(ROLE_CHOICES) if v == role))
            combo.currentIndexChanged.connect(lambda _i, folder=f.name: self._role_changed(folder))
            self.tree.setItemWidget(item, 2, combo)
            self.combos[f.name] = combo
        self.tree.setRootIsDecorated(any(it.childCount() for it in items.values()))
        self.tree.expandAll()
        self.loaded_for = name
        if fresh:
            self._write_back(acct)
            guessed = ", ".join(f"{f} = {r}" for f, r in acct.roles().items()) or "none"
            self.status.setText(
                f"{len(folders)} folders. Roles guessed from the server's flags and folder "
                f"names ({guessed}); change any of them below."
            )
        else:
            self.status.setText(f"{len(folders)} folders. The roles you chose are remembered.")
        self.loaded.emit(name)

    def set_role(self, folder: str, role: str) -> None:
        """What choosing in a row's combo box does (also used by tests)."""
        combo = self.combos[folder]
        combo.setCurrentIndex(next(i for i, (_, v) in enumerate(ROLE_CHOICES) if v == role))

    def roles(self) -> dict[str, str]:
        return {f: c.currentData() for f, c in self.combos.items() if c.currentData()}

    def _role_changed(self, folder: str) -> None:
        acct = self.store.account(self.loaded_for)
        if acct is not None:
            self._write_back(acct)
            role = self.combos[folder].currentData() or "ignored"
            self.message.emit(f"{acct.name}: {folder} is now {role}.")

    def _write_back(self, acct: Account) -> None:
        roles = self.roles()
        listed = set(self.combos)
        for r in ("ham", "spam", "sent"):
            # keep mapped folders the server did not list (they may come back), in order
            kept = [f for f in getattr(acct, r) if f not in listed]
            setattr(acct, r, kept + [f for f, role in roles.items() if role == r])
        self.store.save()
        self.changed.emit()
