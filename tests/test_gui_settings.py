"""Settings survive the window: import a file with every setting, touch every control of the
Modules screen, export, and every key comes back with the same value. Folders of an account
with nothing mapped yet are listed (that listing is how the user decides the mapping).
"""

from __future__ import annotations

# ruff: noqa: F811 - the fixtures imported from test_gui are used by name
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PySide6.QtWidgets", reason="PySide6 is not installed")

from PySide6.QtCore import Qt  # noqa: E402
from test_gui import close_window, isolated, maildir, make_window  # noqa: E402, F401

from mailstats.accounts.config import _SETTINGS_KEYS, load_config  # noqa: E402
from mailstats.modules import available_modules  # noqa: E402

pytestmark = pytest.mark.gui

#: A value of the right type for every key the accounts file accepts in [settings]
EVERY_SETTING = {
    "dns_servers": '["127.0.0.1:5353", "127.0.0.2"]',
    "dnsbl_zones": '["zen.example.org", "bl.example.net"]',
    "modules": '["received", "dnsbl", "datetime"]',
    "cache": '"cache/here.sqlite"',
    "authserv_ids": '["mx.example.org"]',
    "reachability_port": "2525",
    "dns_timeout": "1.5",
    "dns_deadline": "30",
    "batch_size": "250",
    "jobs": "3",
    "scheduler": '"tcp://127.0.0.1:8786"',
    "analysis_workers": "1",
    "worker_min": "1000",
    "now_max_age_days": "3650",
    "dns_budgets": "{ ptr = 100, a = 50 }",
    "dns_cache": '"dns-only.sqlite"',
    "imap_timeout": "45",
    "imap_command_timeout": "90.5",
    "dkim_header_only": "true",
}


def settings_file(path: Path, mail: Path, **override: str) -> Path:
    values = {**EVERY_SETTING, **override}
    lines = ["[settings]", *(f"{k} = {v}" for k, v in values.items())]
    lines += ["", "[[accounts]]", 'name = "archive"', f'path = "{mail}"', 'ham = ["INBOX"]']
    path.write_text("\n".join(lines) + "\n")
    return path


def touch_every_control(qtbot: Any, win: Any) -> None:
    """What a user poking around does: every box ticked off and on, every field confirmed."""
    win.go("Modules")
    page = win.modules
    for i in range(page.list.count()):
        item = page.list.item(i)
        if not item.data(Qt.ItemDataRole.UserRole):
            continue
        before = item.checkState()
        flipped = (
            Qt.CheckState.Unchecked if before == Qt.CheckState.Checked else Qt.CheckState.Checked
        )
        item.setCheckState(flipped)
        item.setCheckState(before)
    for field in (page.dns, *(edit for _st, edit in page.fields.values())):
        field.setFocus()
        qtbot.keyClick(field, Qt.Key.Key_End)
        field.editingFinished.emit()


def test_that_every_setting_is_covered() -> None:
    """A new accepted setting must be added to EVERY_SETTING (else it is not round-tripped)."""
    declared = available_modules(plugins=False).settings_of()
    assert set(EVERY_SETTING) == set(_SETTINGS_KEYS) | set(declared)


def test_import_touch_export_keeps_every_setting(
    qtbot: Any,
    isolated: Path,
    maildir: Path,
) -> None:
    src = settings_file(isolated / "in.toml", maildir)
    win = make_window(qtbot, isolated)
    win.go("Modules")  # the page exists before the import: it must show the new values
    win.accounts.import_accounts(str(src))
    page = win.modules
    assert page.dns.text() == "127.0.0.1:5353, 127.0.0.2"
    assert page.fields["dnsbl_zones"][1].text() == "zen.example.org, bl.example.net"
    assert page.fields["reachability_port"][1].text() == "2525"
    assert set(page.selected()) == {"received", "dnsbl", "datetime"}
    touch_every_control(qtbot, win)
    out = isolated / "out.toml"
    win.accounts.export_accounts(str(out))
    want = load_config(src).settings.as_dict()
    got = load_config(out).settings.as_dict()
    for key in want:
        assert got.get(key) == want[key], key
    assert set(got) == set(want)
    # the file the window keeps is the same as the export
    assert load_config(isolated / "config" / "accounts.toml").settings.as_dict() == want
    close_window(win)


def test_editing_a_field_changes_only_its_key(
    qtbot: Any,
    isolated: Path,
    maildir: Path,
) -> None:
    src = settings_file(isolated / "in.toml", maildir)
    win = make_window(qtbot, isolated)
    win.accounts.import_accounts(str(src))
    win.go("Modules")
    page = win.modules
    zones = page.fields["dnsbl_zones"][1]
    zones.setText("only.example.org")
    zones.editingFinished.emit()
    page.set_checked("dnsbl", False)
    saved = load_config(isolated / "config" / "accounts.toml").settings.as_dict()
    want = load_config(src).settings.as_dict()
    want["dnsbl_zones"] = ["only.example.org"]
    want["modules"] = ["received", "datetime"]
    assert saved == want
    close_window(win)


def test_folders_listed_for_an_account_with_nothing_mapped(
    qtbot: Any,
    isolated: Path,
    maildir: Path,
) -> None:
    src = isolated / "unmapped.toml"
    src.write_text(f'[[accounts]]\nname = "fresh"\npath = "{maildir}"\n')
    win = make_window(qtbot, isolated)
    win.accounts.import_accounts(str(src))
    assert win.store.account("fresh") is not None
    win.go("Folders")
    qtbot.waitUntil(lambda: win.folders.loaded_for == "fresh", timeout=10000)
    assert set(win.folders.combos) == {"INBOX", "Junk", "Sent"}
    counts = {
        name: win.folders.tree.findItems(name, Qt.MatchFlag.MatchRecursive)[0].text(1)
        for name in ("INBOX", "Junk", "Sent")
    }
    assert counts == {"INBOX": "120", "Junk": "80", "Sent": "30"}
    assert win.folders.roles() == {"INBOX": "ham", "Junk": "spam", "Sent": "sent"}
    close_window(win)
