"""The window with an OAuth2-only account, and the run screen's progress words.

The IMAP server is the real Dovecot of tests/oauth_server.py: it accepts only XOAUTH2 /
OAUTHBEARER tokens and asks the loopback authorization server whether they are active, so a
run that reads mail proves the sign-in made in the dialog carried the whole session. The
"browser" follows the sign-in URL with urllib, as tests/test_oauth.py does: the test
authorization server signs its `browser_user` in and redirects to mailstats's loopback port.
"""

from __future__ import annotations

import csv
import json
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PySide6.QtWidgets", reason="PySide6 is not installed")

from oauth_server import OAuthServer, oauth_stack_for  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from test_gui import (  # noqa: E402, F401 - fixtures are used by name
    close_window,
    configure,
    dns_spec,
    gui_counts,
    isolated,
    make_window,
    map_folders,
    run_to_end,
)

from fixtures.generator import Mailbox  # noqa: E402
from mailstats.accounts import oauth  # noqa: E402
from mailstats.accounts.config import Account  # noqa: E402
from mailstats.accounts.oauth import MemoryStore, TokenManager, token_key  # noqa: E402
from mailstats.gui import signin  # noqa: E402
from mailstats.run.engine import Progress  # noqa: E402

pytestmark = pytest.mark.gui

USER = "gui-oauth@example.org"


@pytest.fixture(scope="module")
def oauth_stack(generated_mailbox: Mailbox) -> Any:
    """Authorization server + OAuth2-only Dovecot holding the generated mailbox for USER."""
    for server, dovecot in oauth_stack_for(USER):
        for folder, msgs in generated_mailbox.folders.items():
            dovecot.deliver(USER, folder, [m.raw for m in msgs])
        yield server, dovecot


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Refresh tokens in memory, and a scripted browser that records where it was sent."""
    store = MemoryStore()
    oauth.set_store(store)
    visited: list[tuple[str, bool]] = []

    def browser(url: str) -> None:
        visited.append((url, threading.current_thread() is threading.main_thread()))
        urllib.request.urlopen(url, timeout=10).read()  # follows the 302 to our loopback

    monkeypatch.setattr(signin, "open_browser", browser)
    yield store, visited
    oauth.set_store(None)


def fill_oauth_dialog(dlg: Any, server: OAuthServer, dovecot: Any, name: str) -> None:
    dlg.name.setText(name)
    dlg.provider.setCurrentIndex(dlg.provider.findData("generic"))
    dlg.host.setText("127.0.0.1")
    dlg.security.setCurrentIndex(dlg.security.findData("none"))
    dlg.port.setValue(dovecot.port)
    dlg.username.setText(USER)
    dlg.auth.setCurrentIndex(dlg.auth.findData("oauth2"))
    dlg.client_id.setText(server.client_id)
    dlg.auth_url.setText(f"{server.url}/authorize")
    dlg.token_url.setText(f"{server.url}/token")
    dlg.own_domains.setText("example.org")
    dlg.full_name.setText("Dana Whitfield")


@pytest.mark.servers
def test_sign_in_from_dialog_then_run_matches_batch(
    qtbot: Any,
    isolated: Path,  # noqa: F811
    oauth_stack: Any,
    tokens: Any,
    generated_mailbox: Mailbox,
    dns_spec: str | None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mailstats.cli import run_batch

    server, dovecot = oauth_stack
    store, visited = tokens
    sign_in_threads: list[bool] = []
    original = TokenManager.sign_in_browser

    def recording(self: TokenManager, *args: Any, **kw: Any) -> None:
        sign_in_threads.append(threading.current_thread() is threading.main_thread())
        original(self, *args, **kw)

    monkeypatch.setattr(TokenManager, "sign_in_browser", recording)
    win = make_window(qtbot, isolated)
    dlg = win.accounts.add_account()
    fill_oauth_dialog(dlg, server, dovecot, "oauth-only")
    assert not dlg.password.isVisible() and dlg.oauth_box.isVisible()
    assert dlg.auth_url.isVisible() and not dlg.tenant.isVisible()
    # not signed in yet: the connection test says so in words, Dovecot never saw a password
    dlg.run_test()
    qtbot.waitUntil(lambda: dlg.test_button.isEnabled(), timeout=30000)
    assert "sign in again" in dlg.test_result.text(), dlg.test_result.text()

    qtbot.mouseClick(dlg.signin_button, Qt.MouseButton.LeftButton)
    assert "Waiting for you to sign in" in dlg.signin_status.text()
    qtbot.waitUntil(lambda: not dlg.signer.running, timeout=20000)
    assert dlg.signin_status.text().startswith(f"Signed in as {USER}"), dlg.signin_status.text()
    assert sign_in_threads == [False] and len(visited) == 1  # never on the GUI thread
    assert "code_challenge_method=S256" in visited[0][0]
    refresh = json.loads(store.get(f"oauth-only:{USER}"))["refresh_token"]
    assert refresh in server.users

    dlg.run_test()
    qtbot.waitUntil(lambda: dlg.test_button.isEnabled(), timeout=15000)
    assert dlg.test_result.text().startswith("Connected to 127.0.0.1"), dlg.test_result.text()
    dlg.buttons.button(dlg.buttons.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: win.store.account("oauth-only") is not None)
    saved = (isolated / "config" / "accounts.toml").read_text()
    assert 'auth = "oauth2"' in saved and f'token_url = "{server.url}/token"' in saved
    assert refresh not in saved and "rt-" not in saved  # the token is never in the file
    assert "OAuth2" in win.accounts.table.item(0, 1).text()

    map_folders(qtbot, win, "oauth-only")
    acct = win.store.account("oauth-only")
    assert (acct.ham, acct.spam, acct.sent) == (["INBOX"], ["Junk"], ["Sent"])
    configure(win, dns_spec)
    outcome = run_to_end(qtbot, win)
    assert [a.status for a in outcome.result.accounts] == ["ok"]
    totals = {f.folder: f.total for f in outcome.result.accounts[0].folders}
    assert totals == {"Sent": 30, "INBOX": 120, "Junk": 80}
    log = win.run.log.toPlainText()
    assert "oauth-only: all folders done" in log

    # --batch on the file the window exports, with the same stored sign-in
    exported = isolated / "exported.toml"
    win.accounts.export_accounts(str(exported))
    out = isolated / "cli-out"
    cache = str(isolated / "cli-cache.sqlite")
    assert run_batch(str(exported), str(out), cache=cache, quiet=True) == 0
    cli: dict[tuple[str, str], list[int]] = {}
    with (out / "summary.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            c = cli.setdefault((row["check"], row["role"]), [0, 0])
            c[0] += int(row["matched"])
            c[1] += int(row["applicable"])
    gui = gui_counts(win)
    assert len(gui) > 10 and {k: list(v) for k, v in gui.items()} == cli
    # and the generator's own expectations where it has them
    expected = generated_mailbox.expected_counts()
    role = {"INBOX": "ham", "Junk": "spam", "Sent": "sent"}
    compared = [k for k in expected if (k[1], role[k[0]]) in gui]
    assert len(compared) >= 3
    for folder, check in compared:
        assert gui[(check, role[folder])] == expected[(folder, check)][:2], (folder, check)
    logins = [line for line in dovecot.log_lines() if f"user=<{USER}>, method=XOAUTH2" in line]
    assert logins
    close_window(win)


@pytest.mark.servers
def test_revoked_sign_in_says_sign_in_again_and_signs_in(
    qtbot: Any,
    isolated: Path,  # noqa: F811
    oauth_stack: Any,
    tokens: Any,
    dns_spec: str | None,  # noqa: F811
) -> None:
    server, dovecot = oauth_stack
    store, visited = tokens
    acct = server.account(USER, port=dovecot.port, device_url="", scopes=[])
    _, refresh = server.issue(USER)
    store.set(token_key(acct), json.dumps({"refresh_token": refresh}))
    server.revoke(refresh)  # withdrawn at the provider since the last run

    win = make_window(qtbot, isolated)
    win.store.upsert(acct)
    win._accounts_changed()
    configure(win, dns_spec)
    win.go("Run")
    assert win.run.start()  # no password needed for an OAuth2 account
    qtbot.waitUntil(lambda: win.results.outcome is not None, timeout=60000)
    result = win.results.outcome.result
    assert result.accounts[0].needs_signin and result.accounts[0].status == "failed"
    assert win.nav.currentRow() == 3  # stays on Run, where the button is
    assert win.run.signin_box.isVisible()
    label, button = win.run.signin_rows["olga"][1:3]
    assert label.text().startswith(f"Sign in again to account 'olga' ({USER})")
    assert "Sign in again to 'olga'" in win.run.overall_label.text()
    assert win.run.overall.value() == 1000  # the account ended: no bar stuck half-way
    assert "olga: stopped with an error" in win.run.log.toPlainText()
    assert win.last_error == ""  # a message on the screen, not an error box

    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.run.signer.running, timeout=20000)
    assert len(visited) == 1 and not win.run.signin_rows and not win.run.signin_box.isVisible()
    assert "Press Run" in win.statusBar().currentMessage()
    outcome = run_to_end(qtbot, win)
    assert outcome.result.accounts[0].status == "ok"
    assert outcome.result.accounts[0].folders[0].total == 120
    close_window(win)


def test_cancel_browser_sign_in_and_device_code(
    qtbot: Any,
    isolated: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sign-in nobody finishes can be cancelled; the device code is shown to the user."""
    server = OAuthServer(browser_user=USER).start()
    oauth.set_store(MemoryStore())
    opened: list[str] = []
    monkeypatch.setattr(signin, "open_browser", opened.append)  # a browser nobody uses
    try:
        win = make_window(qtbot, isolated)
        dlg = win.accounts.add_account()
        fill_oauth_dialog(dlg, server, type("D", (), {"port": 143})(), "waiting")
        dlg.device_url.setText(f"{server.url}/devicecode")
        assert dlg.sign_in()
        qtbot.waitUntil(lambda: bool(opened), timeout=5000)
        assert dlg.signin_cancel.isVisible() and not dlg.signin_button.isEnabled()
        qtbot.mouseClick(dlg.signin_cancel, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not dlg.signer.running, timeout=5000)
        assert dlg.signin_status.text() == "Sign-in cancelled."
        assert dlg.signin_button.isEnabled()

        # device code: the code and the page are shown; the test server approves on poll 2
        assert dlg.signin_code_button.isEnabled()
        monkeypatch.setattr(TokenManager, "__init__", _fast_sleep(TokenManager.__init__))
        assert dlg.sign_in(device=True)
        qtbot.waitUntil(lambda: dlg.signer.box is not None or not dlg.signer.running, timeout=5000)
        seen = dlg.signer.box.text() if dlg.signer.box is not None else ""
        qtbot.waitUntil(lambda: not dlg.signer.running, timeout=10000)
        assert "ABCD-EFGH" in seen and f"{server.url}/device" in seen
        assert dlg.signin_status.text().startswith(f"Signed in as {USER}")
        assert dlg.signer.box is None  # the code box closes by itself
        dlg.reject()
        close_window(win)
    finally:
        oauth.set_store(None)
        server.stop()


def _fast_sleep(init: Any) -> Any:
    """Device polling waits `interval` seconds between polls: 0.05 s is enough here."""

    def patched(self: Any, *args: Any, **kw: Any) -> None:
        kw["sleep"] = lambda _s: threading.Event().wait(0.05)
        init(self, *args, **kw)

    return patched


# -- progress words (no server) ---------------------------------------------------------
def test_progress_counts_messages_and_finished_accounts(qtbot: Any, isolated: Path) -> None:  # noqa: F811
    from mailstats.gui.run_page import RunPage
    from mailstats.gui.store import Store

    store = Store(isolated / "a.toml")
    store.upsert(Account(name="home", path=str(isolated), ham=["INBOX"], spam=["Junk"]))
    store.upsert(Account(name="work", path=str(isolated), ham=["INBOX"]))
    page = RunPage(store, None, None)
    qtbot.addWidget(page)
    from mailstats.gui.run_page import ProgressTracker

    page.tracker = ProgressTracker(store.accounts)  # 3 folders, 2 phases each: 6 units
    page.on_progress(Progress("home", "", "connect", 0, 2))
    page.on_progress(Progress("home", "INBOX", "sync", 40, 40))
    page.on_progress(Progress("home", "INBOX", "analyse", 500, 1200))
    assert page.folder_label.text().startswith("Analysing in home/INBOX: 500 of 1,200 messages"), (
        page.folder_label.text()
    )
    assert (page.folder_bar.value(), page.folder_bar.maximum()) == (500, 1200)
    assert page.folder_bar.text() == "500 / 1,200"
    assert page.overall.value() == int((1 + 500 / 1200) / 6 * 1000)
    # "home" fails before Junk: the account counts as finished, the folder bar is untouched
    page.on_progress(Progress("home", "", "finished", 1, 1, "failed"))
    assert (page.folder_bar.value(), page.folder_bar.maximum()) == (500, 1200)
    assert page.overall.value() == int(4 / 6 * 1000)
    page.on_progress(Progress("work", "INBOX", "done", 7, 7))
    page.on_progress(Progress("work", "", "finished", 1, 1, "ok"))
    assert page.overall.value() == 1000
    lines = page.log.toPlainText().splitlines()
    assert [line.split("  ", 1)[1] for line in lines] == [
        "home: opening (2 folders mapped)",
        "home: stopped with an error (details when the run ends)",
        "work/INBOX: done, 7 messages",
        "work: all folders done",
    ]
