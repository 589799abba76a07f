"""Modules screen: which header modules run, and the DNS settings the network checks use.

The list is whatever the registry returns (built-ins present in this build plus plug-ins),
so a new module shows up without touching the GUI. Opt-in modules contact third parties
(e.g. probing the sender's mail server) and are never checked unless the user asks.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mailstats.gui.store import Store


class ModulesPage(QWidget):
    changed = Signal()
    message = Signal(str)

    def __init__(self, store: Store, registry: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.registry = registry
        layout = QVBoxLayout(self)
        intro = QLabel(
            "Each module adds one or more checks. Modules marked “asks now” look things up "
            "on the network today; modules marked “opt-in” contact other people's servers "
            "and run only when you tick them."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.list = QListWidget()
        self.list.setAlternatingRowColors(True)
        self.list.setWordWrap(True)
        layout.addWidget(self.list, 1)
        for m in registry.modules:
            tags = []
            if m.opt_in:
                tags.append("opt-in")
            if getattr(m, "evidence", "") == "now":
                tags.append("asks now")
            suffix = f"  [{', '.join(tags)}]" if tags else ""
            checks = ", ".join(m.checks) or "extra columns only"
            item = QListWidgetItem(
                f"{m.name}{suffix}\n    {m.description or 'no description'}\n    checks: {checks}"
            )
            item.setData(Qt.ItemDataRole.UserRole, m.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            self.list.addItem(item)
        for problem in registry.problems:
            bad = QListWidgetItem(f"⚠ {problem}")
            bad.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.list.addItem(bad)
        self.list.itemChanged.connect(lambda _i: self._modules_changed())

        form = QFormLayout()
        self.dns = QLineEdit()
        self.dns.setPlaceholderText("empty: the system resolver; e.g. 127.0.0.1:5353")
        self.zones = QLineEdit()
        self.zones.setPlaceholderText("empty: the default blocklists")
        self.dns.editingFinished.connect(self._dns_edited)
        self.zones.editingFinished.connect(self._zones_edited)
        form.addRow("DNS servers:", self.dns)
        form.addRow("DNSBL zones:", self.zones)
        layout.addLayout(form)
        self.load()

    def load(self) -> None:
        """Show the settings as they are now (after an import, too).

        The controls only ever mirror the store: each one writes back its own key, and only
        when the user changed it, so settings this page does not show are never touched.
        """
        settings = self.store.config.settings
        chosen = settings.modules
        self.list.blockSignals(True)
        for m in self.registry.modules:
            on = (m.name in chosen) if chosen is not None else not m.opt_in
            self.set_checked(m.name, on)
        self.list.blockSignals(False)
        self.dns.setText(", ".join(settings.dns_servers))
        self.zones.setText(", ".join(settings.dnsbl_zones or []))

    def selected(self) -> list[str]:
        out = []
        for i in range(self.list.count()):
            item = self.list.item(i)
            name = item.data(Qt.ItemDataRole.UserRole)
            if name and item.checkState() == Qt.CheckState.Checked:
                out.append(name)
        return out

    def set_checked(self, name: str, on: bool) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == name:
                item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def _modules_changed(self) -> None:
        settings = self.store.config.settings
        chosen = self.selected()
        default = [m.name for m in self.registry.modules if not m.opt_in]
        settings.modules = None if chosen == default else chosen
        self._save()

    def _dns_edited(self) -> None:
        settings = self.store.config.settings
        servers = _split(self.dns.text())
        if servers != settings.dns_servers:
            settings.dns_servers = servers
            self._save()

    def _zones_edited(self) -> None:
        settings = self.store.config.settings
        zones = _split(self.zones.text())
        if zones != (settings.dnsbl_zones or []):
            settings.dnsbl_zones = zones or None
            self._save()

    def _save(self) -> None:
        self.store.save()
        self.changed.emit()


def _split(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]
