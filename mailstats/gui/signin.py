"""OAuth2 sign-in from the window, for the account dialog and the run screen alike.

A sign-in waits for a person (a browser tab, a code typed on a phone) for minutes, so it
runs in a worker thread like everything else that blocks; the window stays usable and can
cancel it. Cancelling the browser flow works by answering mailstats's own loopback redirect
with ``error=access_denied``: `TokenManager.sign_in_browser` has no cancel flag, but it does
stop waiting as soon as its redirect catcher gets an answer, so no thread is left behind.
"""

from __future__ import annotations

import threading
import urllib.parse
import urllib.request
import webbrowser
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QMessageBox, QWidget

from mailstats.accounts.config import Account
from mailstats.gui import worker

#: How long the browser flow waits for the provider to send the browser back.
BROWSER_TIMEOUT_S = 300.0


def open_browser(url: str) -> Any:
    """Open the provider's sign-in page; tests replace this with a scripted "browser"."""
    return webbrowser.open(url)


def store_words() -> str:
    """Where refresh tokens go on this machine, for the sign-in status line."""
    from mailstats.accounts.oauth import FileStore, KeyringStore, MemoryStore, default_store

    try:
        store = default_store()
    except Exception:  # noqa: BLE001 - a broken keyring is reported by the sign-in itself
        return "the token store"
    if isinstance(store, KeyringStore):
        return "the system keyring"
    if isinstance(store, FileStore):
        return f"a private file ({store.path}), as there is no system keyring"
    if isinstance(store, MemoryStore):
        return "memory for this session"
    return "the token store"


def is_signed_in(acct: Account) -> bool | None:
    """True/False when known; None when the settings are not complete enough to tell."""
    from mailstats.accounts.oauth import TokenManager

    try:
        return TokenManager(acct).has_refresh_token()
    except Exception:  # noqa: BLE001 - incomplete settings or a keyring error: cannot tell
        return None


def has_device_flow(acct: Account) -> bool:
    from mailstats.accounts.oauth import OAuthError, endpoints_for

    try:
        return bool(endpoints_for(acct).device_url)
    except OAuthError:
        return False


class SignIn(QObject):
    """One sign-in at a time, on behalf of `owner` (whose worker list keeps the thread).

    `finished(ok, text)` arrives on the GUI thread with a sentence for the user.
    """

    finished = Signal(bool, str)
    _prompt = Signal(object)  # DevicePrompt, emitted on the worker thread

    def __init__(self, owner: QWidget) -> None:
        super().__init__(owner)
        self.owner = owner
        self.account: Account | None = None
        self.cancel_event = threading.Event()
        self.browser_url = ""
        self.box: QMessageBox | None = None
        self._running = False
        self._prompt.connect(self._show_prompt, Qt.ConnectionType.QueuedConnection)

    @property
    def running(self) -> bool:
        return self._running

    def start(self, acct: Account, device: bool = False) -> bool:
        """Start the browser flow (or the device-code flow); False when one is running."""
        if self._running:
            return False
        from mailstats.accounts.oauth import TokenManager

        self._running = True
        self.account = acct
        self.cancel_event = threading.Event()
        self.browser_url = ""
        cancel = self.cancel_event

        def job() -> str:
            tm = TokenManager(acct)
            if device:
                tm.sign_in_device(self._prompt.emit, cancel=cancel)
            else:
                tm.sign_in_browser(self._open, timeout=BROWSER_TIMEOUT_S)
            who = acct.username or acct.name
            return f"Signed in as {who}; the sign-in is kept in {store_words()}."

        worker.start(worker.CallWorker(job), self.owner, done=self._done, failed=self._failed)
        return True

    def cancel(self) -> None:
        """Stop waiting for the person: the worker ends within a second or so."""
        if not self._running:
            return
        self.cancel_event.set()
        url = self.browser_url
        if url:
            threading.Thread(target=_answer_redirect, args=(url,), daemon=True).start()

    # -- worker thread ----------------------------------------------------------------
    def _open(self, url: str) -> Any:
        self.browser_url = url
        if self.cancel_event.is_set():  # cancelled before the page even opened
            _answer_redirect(url)
            return None
        return open_browser(url)

    # -- GUI thread -------------------------------------------------------------------
    @Slot(object)
    def _show_prompt(self, prompt: Any) -> None:
        if not self._running:
            return
        box = QMessageBox(self.owner)
        box.setIcon(QMessageBox.Icon.Information)
        box.setWindowTitle("Sign in with a code")
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setText(
            f"On any device with a browser, open\n\n    {prompt.verification_uri}\n\n"
            f"and enter the code\n\n    {prompt.user_code}\n\n"
            "mailstats waits here until you have signed in."
        )
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setStandardButtons(QMessageBox.StandardButton.Cancel)
        box.rejected.connect(self.cancel)
        self.box = box
        box.open()

    def _close_box(self) -> None:
        if self.box is not None:
            box, self.box = self.box, None
            box.rejected.disconnect(self.cancel)
            box.close()
            box.deleteLater()

    def _done(self, text: str) -> None:
        self._running = False
        self._close_box()
        self.finished.emit(True, text)

    def _failed(self, text: str) -> None:
        cancelled = self.cancel_event.is_set()
        self._running = False
        self._close_box()
        self.finished.emit(False, "Sign-in cancelled." if cancelled else f"Sign-in failed: {text}")


def _answer_redirect(url: str) -> None:
    """Send the loopback redirect catcher a refusal, so the browser flow stops waiting."""
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    redirect, state = query.get("redirect_uri", ""), query.get("state", "")
    host = urllib.parse.urlsplit(redirect).hostname or ""
    if host not in ("127.0.0.1", "localhost"):  # only ever our own loopback listener
        return
    answer = urllib.parse.urlencode(
        {"error": "access_denied", "error_description": "cancelled", "state": state}
    )
    try:
        urllib.request.urlopen(f"{redirect}?{answer}", timeout=5).read()  # noqa: S310
    except OSError:
        pass
