"""Modules screen: which header modules run, the DNS servers, and each module's settings.

The list is whatever the registry returns (built-ins present in this build plus plug-ins),
and the settings form is built from what each module declares (`Module.settings`), so a new
module and its settings show up without touching the GUI. Opt-in modules contact third
parties (e.g. probing the sender's mail server) and plug-ins run only when ticked.
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
            if m.name in registry.plugins:
                tags.append("plug-in")
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
        self.dns.editingFinished.connect(self._dns_edited)
        form.addRow("DNS servers:", self.dns)
        #: flat settings key -> (the module's declaration, its field)
        self.fields: dict[str, tuple[Any, QLineEdit]] = {}
        for m in registry.modules:
            for st in m.settings:
                key = st.flat_key(m.name)
                edit = QLineEdit()
                edit.setPlaceholderText(f"empty: {setting_text(st.default) or 'not set'}")
                edit.setToolTip(st.help)
                edit.editingFinished.connect(lambda key=key: self._setting_edited(key))
                form.addRow(f"{m.name} {st.name.replace('_', ' ')}:", edit)
                self.fields[key] = (st, edit)
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
        defaults = self.registry.defaults()
        for m in self.registry.modules:
            on = (m.name in chosen) if chosen is not None else m.name in defaults
            self.set_checked(m.name, on)
        self.list.blockSignals(False)
        self.dns.setText(", ".join(settings.dns_servers))
        for key, (_st, edit) in self.fields.items():
            edit.setText(setting_text(settings.value(key)))

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
        settings.modules = None if chosen == self.registry.defaults() else chosen
        self._save()

    def _dns_edited(self) -> None:
        settings = self.store.config.settings
        servers = _split(self.dns.text())
        if servers != settings.dns_servers:
            settings.dns_servers = servers
            self._save()

    def _setting_edited(self, key: str) -> None:
        settings = self.store.config.settings
        st, edit = self.fields[key]
        try:
            value = setting_value(st, edit.text())
        except ValueError as exc:
            self.message.emit(f"{key}: {exc}; not saved")
            return
        if value != settings.value(key):
            settings.set_value(key, value)
            self._save()

    def _save(self) -> None:
        self.store.save()
        self.changed.emit()


def _split(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def setting_text(value: Any) -> str:
    """A setting's value as the text its field shows."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def setting_value(setting: Any, text: str) -> Any:
    """The field's text as the declared type (None when empty); ValueError when it is not."""
    text = text.strip()
    if not text:
        return None
    if setting.type is list:
        return _split(text)
    if setting.type is bool:
        if text.lower() not in ("yes", "no", "true", "false"):
            raise ValueError("say yes or no")
        return text.lower() in ("yes", "true")
    value = setting.type(text)
    problem = setting.problem(value)
    if problem:
        raise ValueError(problem)
    return value
