"""The desktop window, driven like a user would: add an account, map folders, run, read the
numbers, cancel, export. The numbers are compared with `--batch` on the same mailbox (same
accounts file, exported by the window) and with what the fixture generator says they must be.

Every test gets its own QSettings location, config and cache directories, and a keyring
backend that always fails, so nothing here touches the real user's settings or keyring.
"""

from __future__ import annotations

import csv
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PySide6.QtWidgets", reason="PySide6 is not installed")

from PySide6.QtCore import QCoreApplication, QSettings, Qt  # noqa: E402

from fixtures.generator import Mailbox  # noqa: E402
from mailstats.gui import results as results_module  # noqa: E402
from mailstats.gui import worker  # noqa: E402
from mailstats.gui.main_window import STEPS, MainWindow  # noqa: E402
from mailstats.gui.models import ResultsModel  # noqa: E402

pytestmark = pytest.mark.gui

#: Modules that need no DNS: used when dnsmasq is not available, so the test still runs.
LOCAL_MODULES = [
    "received",
    "attachments",
    "images",
    "datetime",
    "reply",
    "friends",
    "internal",
    "personal",
    "list",
    "auth",
]


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, qapp: Any) -> Path:
    """Private QSettings / config / cache locations and no usable keyring."""
    for var, sub in (
        ("XDG_CONFIG_HOME", "xdg-config"),
        ("XDG_CACHE_HOME", "xdg-cache"),
        ("XDG_DATA_HOME", "xdg-data"),  # where OAuth2 tokens go without a keyring
    ):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    QCoreApplication.setOrganizationName("mailstats-test")
    QCoreApplication.setApplicationName("mailstats-test")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qs"))
    return tmp_path


@pytest.fixture
def dns_spec(request: pytest.FixtureRequest) -> str | None:
    """The dnsmasq fixture's address, or None (then only local modules run)."""
    try:
        return request.getfixturevalue("dns").server_spec
    except pytest.skip.Exception:
        return None


@pytest.fixture
def maildir(tmp_path: Path, generated_mailbox: Mailbox) -> Path:
    return generated_mailbox.write_maildir(tmp_path / "Maildir")


def make_window(qtbot: Any, root: Path) -> MainWindow:
    win = MainWindow(root / "config" / "accounts.toml", root / "gui-cache.sqlite")
    qtbot.addWidget(win)
    win.show()
    return win


def close_window(win: MainWindow) -> None:
    pages = [win.accounts, win.folders, win.run, win.results]
    running = [
        (type(p).__name__, type(job).__name__, getattr(job, "fn", None))
        for p in pages
        for t, job, _r in p.__dict__.get("_jobs", [])
        if t.isRunning()
    ]
    assert win.wait_for_workers(30000), running
    win.close()


def add_local_account(qtbot: Any, win: MainWindow, name: str, path: Path) -> None:
    win.go("Accounts")
    dlg = win.accounts.add_account()
    assert dlg.isVisible()
    qtbot.keyClicks(dlg.name, name)
    dlg.kind_local.setChecked(True)
    assert not dlg.server_box.isVisible() and dlg.local_box.isVisible()
    dlg.path.setText(str(path))
    dlg.full_name.setText("Dana Whitfield")
    dlg.own_domains.setText("example.org")
    qtbot.mouseClick(dlg.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.test_button.isEnabled(), timeout=10000)
    assert dlg.test_result.text().startswith("Connected to"), dlg.test_result.text()
    assert "3 folders found" in dlg.test_result.text()
    dlg.buttons.button(dlg.buttons.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: win.store.account(name) is not None)


def map_folders(qtbot: Any, win: MainWindow, name: str) -> None:
    win.go("Folders")
    idx = win.folders.account_box.findText(name)
    win.folders.account_box.setCurrentIndex(idx)
    qtbot.waitUntil(lambda: win.folders.loaded_for == name, timeout=10000)


def configure(win: MainWindow, dns: str | None) -> None:
    win.go("Modules")
    page = win.modules
    if not dns:
        for m in win.registry.modules:
            page.set_checked(m.name, m.name in LOCAL_MODULES)
    # never the system resolver in a test: without dnsmasq, a loopback port nobody serves
    page.dns.setText(dns or "127.0.0.1:9")
    page.dns.editingFinished.emit()
    # a timing knob, not a feature under test: failed look-ups give up quickly
    win.store.config.settings.extra["dns_timeout"] = 1.0
    win.store.save()


def run_to_end(qtbot: Any, win: MainWindow) -> Any:
    win.go("Run")
    before = win.results.outcome
    assert win.run.run_button.isEnabled()
    qtbot.mouseClick(win.run.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.results.outcome is not before, timeout=120000)
    return win.results.outcome


def gui_counts(win: MainWindow) -> dict[tuple[str, str], tuple[int, int]]:
    """(check, role) -> (matched, applicable) as the window's model holds them."""
    model = win.results.model
    out = {}
    for row in range(model.rowCount()):
        check = model.data(model.index(row, ResultsModel.COL_CHECK))
        cols = ((ResultsModel.COL_HAM, "ham"), (ResultsModel.COL_SPAM, "spam"))
        for col, role in (*cols, (ResultsModel.COL_SENT, "sent")):
            value = model.data(model.index(row, col), Qt.ItemDataRole.UserRole)
            out[(check, role)] = tuple(value)
    return out


def read_summary(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_window_end_to_end_matches_batch(
    qtbot: Any, isolated: Path, maildir: Path, generated_mailbox: Mailbox, dns_spec: str | None
) -> None:
    from mailstats.cli import run_batch

    win = make_window(qtbot, isolated)
    add_local_account(qtbot, win, "dana", maildir)
    map_folders(qtbot, win, "dana")
    acct = win.store.account("dana")
    assert acct is not None
    # guessed from the folder names, written back to the account and saved
    assert (acct.ham, acct.spam, acct.sent) == (["INBOX"], ["Junk"], ["Sent"])
    assert win.folders.combos["Junk"].currentData() == "spam"
    win.folders.set_role("Junk", "")  # the user un-maps Junk ...
    assert win.store.account("dana").spam == []
    win.folders.set_role("Junk", "spam")  # ... and maps it again
    assert win.store.account("dana").spam == ["Junk"]
    configure(win, dns_spec)
    config_file = isolated / "config" / "accounts.toml"
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600

    outcome = run_to_end(qtbot, win)
    assert not outcome.cancelled
    assert win.nav.currentRow() == STEPS.index("Results")
    assert "Finished: 230 messages" in win.run.overall_label.text()
    assert win.run.overall.value() == 1000

    # the same mailbox through --batch, with the accounts file the window exports
    exported = isolated / "exported.toml"
    win.accounts.export_accounts(str(exported))
    assert stat.S_IMODE(exported.stat().st_mode) == 0o600
    cli_out = isolated / "cli-out"
    rc = run_batch(
        str(exported), str(cli_out), cache=str(isolated / "cli-cache.sqlite"), quiet=True
    )
    assert rc == 0
    cli: dict[tuple[str, str], list[int]] = {}
    for row in read_summary(cli_out / "summary.csv"):
        c = cli.setdefault((row["check"], row["role"]), [0, 0])
        c[0] += int(row["matched"])
        c[1] += int(row["applicable"])
    gui = gui_counts(win)
    assert set(gui) == set(cli)
    assert {k: list(v) for k, v in gui.items()} == cli

    # and the generator's own expectations (independent of the engine) where it has them
    expected = generated_mailbox.expected_counts()
    folder_role = {"INBOX": "ham", "Junk": "spam", "Sent": "sent"}
    compared = 0
    for (folder, check), (matched, applicable, _total) in expected.items():
        key = (check, folder_role[folder])
        if key in gui:
            assert gui[key] == (matched, applicable), key
            compared += 1
    assert compared >= 3

    # the chart has one pair of bars per check that has ham or spam data, each with its
    # Wilson interval around the rate the table shows
    bars = win.results.chart.rows
    assert len(bars) > 5
    for bar in bars:
        for role, rate in (("ham", bar.ham), ("spam", bar.spam)):
            if rate is not None:
                assert rate.low <= rate.pct <= rate.high
                assert (rate.matched, rate.applicable) == gui[(bar.check, role)]
    if "datetime" in [m.name for m in outcome.result.modules]:
        assert {name.split()[0] for name, _c, _v in win.results.hours_chart.series} == {
            "ham",
            "spam",
            "sent",
        }

    # message list filtered by folder and check; selecting one explains it
    results = win.results
    results.tabs.setCurrentIndex(3)
    inbox = next(
        i for i in range(results.folder_box.count()) if "INBOX" in results.folder_box.itemText(i)
    )
    results.folder_box.setCurrentIndex(inbox)
    qtbot.waitUntil(lambda: ("dana", "INBOX") in results.tables, timeout=10000)
    results.check_box.setCurrentIndex(results.check_box.findData("received.from_match"))
    results.value_box.setCurrentText("yes")
    assert results.messages.rowCount() == gui[("received.from_match", "ham")][0]
    results.message_view.selectRow(0)
    qtbot.waitUntil(lambda: results.header_text.toPlainText() != "", timeout=10000)
    assert "Received:" in results.header_text.toPlainText()
    assert "received.from_match: yes" in results.why_text.toPlainText()

    # export: the same summary.csv as --batch
    out = isolated / "gui-out"
    results.export(str(out))
    qtbot.waitUntil(lambda: results.last_export == str(out), timeout=30000)
    assert read_summary(out / "summary.csv") == read_summary(cli_out / "summary.csv")
    assert (out / "messages.csv").exists() and (out / "manifest.json").exists()

    # the Report button writes report.html next to the CSV files and opens it
    if results_module._write_report is not None:
        opened: list[str] = []
        results.open_url = lambda url: opened.append(url.toLocalFile()) or True
        assert results.report_button.isEnabled()
        qtbot.mouseClick(results.report_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(opened), timeout=120000)
        assert opened == [str(out / "report.html")]
        assert win.statusBar().currentMessage() == f"Wrote {out / 'report.html'}"
        assert "<html" in (out / "report.html").read_text(encoding="utf-8")[:200]
    close_window(win)


def test_cancel_mid_run_keeps_work_and_resumes(
    qtbot: Any,
    isolated: Path,
    maildir: Path,
    monkeypatch: pytest.MonkeyPatch,
    dns_spec: str | None,
) -> None:
    finished_first = threading.Event()
    original = worker.RunWorker._on_progress

    def pausing(self: worker.RunWorker, p: Any) -> None:
        original(self, p)
        if p.phase == "done" and not finished_first.is_set():
            finished_first.set()
            # the engine waits here, mid-run, until the user presses Cancel
            self.cancel_event.wait(20)

    monkeypatch.setattr(worker.RunWorker, "_on_progress", pausing)
    win = make_window(qtbot, isolated)
    add_local_account(qtbot, win, "dana", maildir)
    map_folders(qtbot, win, "dana")
    configure(win, dns_spec)
    win.go("Run")
    qtbot.mouseClick(win.run.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(win.run.folders_done) == 1, timeout=60000)
    assert win.run.running and win.run.cancel_button.isEnabled()
    assert 0 < win.run.overall.value() < 1000
    qtbot.mouseClick(win.run.cancel_button, Qt.MouseButton.LeftButton)
    assert "Cancelling" in win.run.overall_label.text()
    qtbot.waitUntil(lambda: win.results.outcome is not None, timeout=60000)
    outcome = win.results.outcome
    assert outcome.cancelled
    assert [f.folder for f in outcome.result.accounts[0].folders] == ["Sent"]  # sent goes first
    text = win.run.overall_label.text()
    assert text.startswith("Cancelled. 1 of 3 folders were finished (dana/Sent)")
    assert "kept in the cache" in text
    assert "partial" in win.results.note.text()
    assert win.run.run_button.isEnabled() and not win.run.running

    # run again: the synced headers are reused, everything completes
    finished_first.set()
    outcome2 = run_to_end(qtbot, win)
    assert not outcome2.cancelled
    folders = outcome2.result.accounts[0].folders
    assert [f.folder for f in folders] == ["Sent", "INBOX", "Junk"]
    fetched = {f.folder: f.fetched for f in folders}
    assert fetched == {"Sent": 0, "INBOX": 120, "Junk": 80}  # Sent came from the cache
    assert sum(f.total for f in folders) == 230
    close_window(win)


def test_connection_errors_in_plain_words(qtbot: Any, isolated: Path) -> None:
    import socket

    # bound but not listening: the kernel refuses connections, and no one else can take it
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    win = make_window(qtbot, isolated)
    dlg = win.accounts.add_account()
    dlg.name.setText("nowhere")
    dlg.host.setText("127.0.0.1")
    dlg.security.setCurrentIndex(dlg.security.findData("none"))
    dlg.port.setValue(port)
    dlg.username.setText("me@example.org")
    dlg.run_test()
    qtbot.waitUntil(lambda: dlg.test_button.isEnabled(), timeout=15000)
    assert dlg.test_result.text() == (
        f"Could not connect: connection refused by 127.0.0.1:{port}"
    ), dlg.test_result.text()
    # missing fields are named before anything is tried
    dlg.host.setText("")
    dlg.buttons.button(dlg.buttons.StandardButton.Ok).click()
    assert dlg.isVisible() and "host name" in dlg.error.text()
    dlg.reject()
    closed.close()
    # a server account without any password known: Run explains instead of failing later
    from mailstats.accounts.config import Account

    win.store.upsert(Account(name="srv", host="127.0.0.1", port=port, username="u", ham=["INBOX"]))
    win._accounts_changed()
    win.go("Run")
    assert not win.run.start()
    assert "No password is known for 'srv'" in win.last_error
    assert not win.run.running
    close_window(win)


@pytest.mark.servers
def test_imap_account_password_kept_for_session(
    qtbot: Any, isolated: Path, dovecot: Any, dana_imap: Mailbox, dns_spec: str | None
) -> None:
    win = make_window(qtbot, isolated)
    dlg = win.accounts.add_account()
    dlg.name.setText("imap")
    dlg.host.setText(dovecot.host)
    dlg.security.setCurrentIndex(dlg.security.findData("none"))
    dlg.port.setValue(dovecot.port)
    dlg.username.setText("dana@example.org")
    dlg.password.setText("wrong-password")
    dlg.run_test()
    qtbot.waitUntil(lambda: dlg.test_button.isEnabled(), timeout=15000)
    assert "wrong user name or password for dana@example.org" in dlg.test_result.text()
    dlg.password.setText(dovecot.users["dana@example.org"])
    dlg.run_test()
    qtbot.waitUntil(lambda: dlg.test_button.isEnabled(), timeout=15000)
    assert dlg.test_result.text().startswith("Connected to"), dlg.test_result.text()
    dlg.buttons.button(dlg.buttons.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: win.store.account("imap") is not None)
    # the keyring does not work here: the window says so, the file has no password
    assert win.accounts.keyring_note.isVisible()
    assert "kept in memory only" in win.accounts.keyring_note.text()
    assert (
        dovecot.users["dana@example.org"] not in (isolated / "config" / "accounts.toml").read_text()
    )
    map_folders(qtbot, win, "imap")
    acct = win.store.account("imap")
    assert (acct.ham, acct.spam, acct.sent) == (["INBOX"], ["Junk"], ["Sent"])
    counts = {
        name: win.folders.tree.findItems(name, Qt.MatchFlag.MatchRecursive)[0].text(1)
        for name in ("INBOX", "Junk", "Sent")
    }
    assert counts == {"INBOX": "120", "Junk": "80", "Sent": "30"}
    # a run over IMAP logs in with the session-only password
    configure(win, dns_spec)
    outcome = run_to_end(qtbot, win)
    assert [a.status for a in outcome.result.accounts] == ["ok"]
    totals = {f.folder: f.total for f in outcome.result.accounts[0].folders}
    assert totals == {"Sent": 30, "INBOX": 120, "Junk": 80}
    close_window(win)


def test_report_button_disabled_without_report_module(
    qtbot: Any, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(results_module, "_write_report", None)
    page = results_module.ResultsPage()
    qtbot.addWidget(page)
    page._set_enabled(True)
    assert page.export_button.isEnabled()
    assert not page.report_button.isEnabled()
    assert "matplotlib" in page.report_button.toolTip()


def test_layout_and_step_persist(qtbot: Any, isolated: Path) -> None:
    win = make_window(qtbot, isolated)
    win.resize(760, 540)
    win.go("Modules")
    close_window(win)
    settings_file = Path(QSettings().fileName())
    assert settings_file.is_file() and str(settings_file).startswith(str(isolated))
    assert stat.S_IMODE(settings_file.stat().st_mode) == 0o600
    again = make_window(qtbot, isolated)
    assert again.nav.currentRow() == STEPS.index("Modules")
    assert (again.width(), again.height()) == (760, 540)
    close_window(again)


def test_import_edit_and_bad_file(qtbot: Any, isolated: Path, maildir: Path) -> None:
    good = isolated / "in.toml"
    good.write_text(
        '[settings]\ndns_servers = ["127.0.0.1:9"]\nmodules = ["received", "datetime"]\n\n'
        f'[[accounts]]\nname = "archive"\npath = "{maildir}"\nham = ["INBOX"]\nspam = ["Junk"]\n'
    )
    win = make_window(qtbot, isolated)
    win.accounts.import_accounts(str(good))
    acct = win.store.account("archive")
    assert acct is not None and acct.spam == ["Junk"]
    assert win.store.config.settings.dns_servers == ["127.0.0.1:9"]
    assert win.accounts.table.item(0, 3).text() == "1 ham, 1 spam"
    # edit: rename, the folder mapping stays
    win.accounts.table.selectRow(0)
    dlg = win.accounts.edit_account()
    assert dlg is not None and dlg.kind_local.isChecked() and dlg.path.text() == str(maildir)
    dlg.name.setText("old-mail")
    dlg.buttons.button(dlg.buttons.StandardButton.Ok).click()
    assert win.store.account("archive") is None
    assert win.store.account("old-mail").ham == ["INBOX"]
    saved = (isolated / "config" / "accounts.toml").read_text()
    assert 'name = "old-mail"' in saved
    # a broken file: a plain-words error naming the file and the key, nothing changed
    bad = isolated / "bad.toml"
    bad.write_text(
        '[[accounts]]\nname = "x"\nhost = "h"\nusername = "u"\nham = ["INBOX"]\nport = "x"\n'
    )
    win.accounts.import_accounts(str(bad))
    assert win.last_error.startswith(f"Could not import {bad}")
    assert "'port' must be a number" in win.last_error
    assert win.statusBar().currentMessage() == win.last_error
    assert [a.name for a in win.store.accounts] == ["old-mail"]
    close_window(win)


def test_main_opens_the_window(qtbot: Any, isolated: Path, qapp: Any) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from mailstats.gui import app

    seen: list[MainWindow] = []

    def close_it() -> None:
        for w in QApplication.topLevelWidgets():
            if isinstance(w, MainWindow) and w.isVisible():
                seen.append(w)
                w.close()  # the last window closed ends app.exec()

    QTimer.singleShot(300, close_it)
    assert app.main() == 0
    assert len(seen) == 1
    assert not seen[0].windowIcon().isNull()
    # the real default paths, redirected by XDG_CONFIG_HOME to the test's directory
    assert str(seen[0].store.path).startswith(str(isolated))


def test_second_run_in_one_window_gives_identical_counters(
    qtbot: Any, isolated: Path, maildir: Path, dns: Any, generated_mailbox: Any
) -> None:
    """The window keeps one registry; each run makes fresh module instances, so a second
    run's counters are that run's own, not added to the first's."""
    win = make_window(qtbot, isolated)
    add_local_account(qtbot, win, "dana", maildir)
    map_folders(qtbot, win, "dana")
    configure(win, dns.server_spec)
    win.store.config.settings.dnsbl_zones = list(generated_mailbox.settings["dnsbl_zones"])
    win.store.save()
    counters = []
    for _ in range(2):
        # the same work each time: without a cache every message is evaluated again
        for suffix in ("", "-wal", "-shm"):
            Path(str(isolated / "gui-cache.sqlite") + suffix).unlink(missing_ok=True)
        outcome = run_to_end(qtbot, win)
        assert not outcome.cancelled and outcome.result.ok
        counters.append(outcome.result.module_counters)
    assert counters[0] == counters[1]
    listed = sum(v for k, v in counters[0]["dnsbl"].items() if k.endswith(".listed"))
    assert listed > 0
    close_window(win)
