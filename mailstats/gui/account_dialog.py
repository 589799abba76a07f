"""The account dialog: one account's settings, its connection test and its OAuth2 sign-in.

Opened with `open()` (window-modal but not blocking) so the event loop keeps running: the
connection test reports back while the dialog is up, and tests can drive the dialog.
"""

from __future__ import annotations

import copy
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from mailstats.accounts.config import SECURITY, Account, resolve_password
from mailstats.accounts.providers import PROFILES, profile_for
from mailstats.gui import worker
from mailstats.gui.signin import SignIn, has_device_flow, is_signed_in
from mailstats.gui.store import Store

DEFAULT_PORTS = {"ssl": 993, "starttls": 143, "none": 143}
#: The provider list in the order people look for them; `generic` is "my own server".
PROVIDER_ORDER = ["generic", "gmail", "microsoft"] + [
    p for p in PROFILES if p not in ("generic", "gmail", "microsoft")
]
AUTH_CHOICES = [("password", "Password"), ("oauth2", "OAuth2 (sign in with the provider)")]


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]


def move_token(old: Account, new: Account) -> None:
    """Renaming an OAuth2 account changes its token key: carry the refresh token over."""
    from mailstats.accounts.oauth import default_store, token_key

    old_key, new_key = token_key(old), token_key(new)
    if old_key == new_key:
        return
    try:
        store = default_store()
        value = store.get(old_key)
        if value:
            store.set(new_key, value)
            store.delete(old_key)
    except Exception:  # noqa: BLE001 - worst case the user signs in once more
        pass


def check_connection(acct: Account, password: str) -> str:
    """Open the source, list its folders, close: the plain-words answer for the dialog."""
    from mailstats.sources import open_source

    src = open_source(acct, password)
    try:
        folders = src.list_folders()
    finally:
        src.close()
    n = len(folders)
    where = acct.path if acct.is_local else f"{acct.host}:{acct.port}"
    return f"Connected to {where}: {n} folder{'s' if n != 1 else ''} found."


DIALOG_WIDTH = 520


class AccountDialog(QDialog):
    """One account's settings. `account()` builds the Account from the fields."""

    def __init__(self, parent: QWidget | None, acct: Account | None, store: Store) -> None:
        super().__init__(parent)
        self.store = store
        self.original = acct
        self.setWindowTitle("Edit account" if acct else "Add account")
        self.resize(DIALOG_WIDTH, self.height())
        layout = QVBoxLayout(self)
        # the minimum follows the visible rows, so hiding the password row lets it shrink
        layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)

        form = QFormLayout()
        self.name = QLineEdit()
        self.name.setPlaceholderText("work, home, …")
        form.addRow("Name:", self.name)
        kind_row = QHBoxLayout()
        self.kind_server = QRadioButton("IMAP server")
        self.kind_local = QRadioButton("Local mail store (mbox / Maildir)")
        self.kinds = QButtonGroup(self)
        self.kinds.addButton(self.kind_server)
        self.kinds.addButton(self.kind_local)
        kind_row.addWidget(self.kind_server)
        kind_row.addWidget(self.kind_local)
        kind_row.addStretch()
        form.addRow("Kind:", kind_row)
        layout.addLayout(form)

        self.server_box = QGroupBox("Server")
        sf = QFormLayout(self.server_box)
        self.server_form = sf
        self.provider = QComboBox()
        for name in PROVIDER_ORDER:
            self.provider.addItem(PROFILES[name].title, name)
        self.provider.activated.connect(self._provider_picked)
        self.host = QLineEdit()
        self.host.setPlaceholderText("imap.example.org")
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(993)
        self.security = QComboBox()
        for s, label in zip(SECURITY, ("SSL/TLS", "STARTTLS", "none (unencrypted)"), strict=True):
            self.security.addItem(label, s)
        self.security.currentIndexChanged.connect(self._security_changed)
        self.username = QLineEdit()
        self.username.setPlaceholderText("me@example.org")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.auth = QComboBox()
        for value, label in AUTH_CHOICES:
            self.auth.addItem(label, value)
        self.auth.currentIndexChanged.connect(self._auth_changed)
        sf.addRow("Provider:", self.provider)
        sf.addRow("Host:", self.host)
        sf.addRow("Port:", self.port)
        sf.addRow("Security:", self.security)
        sf.addRow("User name:", self.username)
        sf.addRow("Sign in with:", self.auth)
        sf.addRow("Password:", self.password)
        layout.addWidget(self.server_box)

        self.oauth_box = QGroupBox("OAuth2 sign-in (docs/oauth.md: registering a client)")
        of = QFormLayout(self.oauth_box)
        self.oauth_form = of
        self.client_id = QLineEdit()
        self.client_id.setPlaceholderText("the client (application) id you registered")
        self.client_secret = QLineEdit()
        self.client_secret.setPlaceholderText("Google desktop clients only; not a real secret")
        self.tenant = QLineEdit()
        self.tenant.setPlaceholderText("common (default), organizations, consumers or a tenant id")
        self.auth_url = QLineEdit()
        self.auth_url.setPlaceholderText("https://idp.example.org/authorize")
        self.token_url = QLineEdit()
        self.token_url.setPlaceholderText("https://idp.example.org/token")
        self.device_url = QLineEdit()
        self.device_url.setPlaceholderText("optional: device-code endpoint")
        self.scopes = QLineEdit()
        self.scopes.setPlaceholderText("as your identity provider documents them")
        of.addRow("Client ID:", self.client_id)
        of.addRow("Client secret:", self.client_secret)
        of.addRow("Tenant:", self.tenant)
        of.addRow("Sign-in URL:", self.auth_url)
        of.addRow("Token URL:", self.token_url)
        of.addRow("Device-code URL:", self.device_url)
        of.addRow("Scopes:", self.scopes)
        sign_row = QHBoxLayout()
        self.signin_button = QPushButton("Sign in…")
        self.signin_button.setToolTip("Opens the provider's sign-in page in your browser")
        self.signin_code_button = QPushButton("Sign in with a code…")
        self.signin_code_button.setToolTip("For signing in on another device (phone, laptop)")
        self.signin_cancel = QPushButton("Cancel sign-in")
        self.signin_cancel.setVisible(False)
        self.signin_button.clicked.connect(lambda: self.sign_in())
        self.signin_code_button.clicked.connect(lambda: self.sign_in(device=True))
        self.signin_cancel.clicked.connect(lambda: self.signer.cancel())
        sign_row.addWidget(self.signin_button)
        sign_row.addWidget(self.signin_code_button)
        sign_row.addWidget(self.signin_cancel)
        sign_row.addStretch()
        of.addRow(sign_row)
        self.signin_status = QLabel("")
        self.signin_status.setWordWrap(True)
        self.signin_status.setTextFormat(Qt.TextFormat.PlainText)
        of.addRow(self.signin_status)
        layout.addWidget(self.oauth_box)
        self.signer = SignIn(self)
        self.signer.finished.connect(self._signed_in)

        self.local_box = QGroupBox("Local mail store")
        lf = QHBoxLayout(self.local_box)
        self.path = QLineEdit()
        self.path.setPlaceholderText("an mbox file, a folder of mbox files, or a Maildir")
        self.pick_file = QPushButton("File…")
        self.pick_dir = QPushButton("Folder…")
        self.pick_file.clicked.connect(self._pick_file)
        self.pick_dir.clicked.connect(self._pick_dir)
        lf.addWidget(self.path, 1)
        lf.addWidget(self.pick_file)
        lf.addWidget(self.pick_dir)
        layout.addWidget(self.local_box)

        ident = QGroupBox("You (for the personal and internal checks)")
        idf = QFormLayout(ident)
        self.full_name = QLineEdit()
        self.full_name.setPlaceholderText("Dana Whitfield")
        self.own_domains = QLineEdit()
        self.own_domains.setPlaceholderText("example.org, example.net (default: the user's)")
        self.trusted = QLineEdit()
        self.trusted.setPlaceholderText("your provider's relays: 203.0.113.0/24, mx.example.org")
        idf.addRow("Full name:", self.full_name)
        idf.addRow("Own domains:", self.own_domains)
        idf.addRow("Trusted relays:", self.trusted)
        layout.addWidget(ident)

        test_row = QHBoxLayout()
        self.test_button = QPushButton("Test connection")
        self.test_button.clicked.connect(self.run_test)
        self.test_result = QLabel("")
        self.test_result.setWordWrap(True)
        self.test_result.setTextFormat(Qt.TextFormat.PlainText)
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.test_result, 1)
        layout.addLayout(test_row)

        self.error = QLabel("")
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.error.setStyleSheet("color: #b00020;")
        self.error.setWordWrap(True)
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self._try_accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

        self.kind_server.toggled.connect(self._kind_changed)
        if acct is not None:
            self._fill(acct)
        else:
            self.kind_server.setChecked(True)
        self._kind_changed()
        self._update_signin_status()

    # -- fields -----------------------------------------------------------------------
    def _fill(self, a: Account) -> None:
        self.name.setText(a.name)
        (self.kind_local if a.is_local else self.kind_server).setChecked(True)
        if a.provider and self.provider.findData(a.provider) < 0:
            # "none" or a receiver-only name from the accounts file: kept, never replaced
            self.provider.addItem(a.provider, a.provider)
        self.provider.setCurrentIndex(max(0, self.provider.findData(a.provider)))
        self.auth.setCurrentIndex(max(0, self.auth.findData(a.auth)))
        self.client_id.setText(a.client_id)
        self.client_secret.setText(a.client_secret)
        self.tenant.setText(a.tenant)
        self.auth_url.setText(a.auth_url)
        self.token_url.setText(a.token_url)
        self.device_url.setText(a.device_url)
        self.scopes.setText(" ".join(a.scopes))
        self.host.setText(a.host)
        self.security.setCurrentIndex(max(0, list(SECURITY).index(a.security)))
        self.port.setValue(a.port or DEFAULT_PORTS.get(a.security, 993))
        self.username.setText(a.username)
        self.password.setPlaceholderText("unchanged")
        self.path.setText(a.path)
        self.full_name.setText(a.full_name)
        self.own_domains.setText(", ".join(a.own_domains))
        self.trusted.setText(", ".join(a.trusted_relays))

    def _kind_changed(self) -> None:
        local = self.kind_local.isChecked()
        self.server_box.setVisible(not local)
        self.local_box.setVisible(local)
        self._auth_changed()

    def _provider_picked(self) -> None:
        """The user chose a provider: fill in what config fills in for it (docs/oauth.md)."""
        prof = profile_for(self.provider.currentData())
        if prof.host:
            self.host.setText(prof.host)
            self.security.setCurrentIndex(list(SECURITY).index(prof.security))
            self.port.setValue(prof.port)
        elif self.host.text().strip() in {p.host for p in PROFILES.values() if p.host}:
            self.host.clear()  # another provider's server is surely wrong now
        self.auth.setCurrentIndex(self.auth.findData(prof.auth))
        self._auth_changed()

    def _auth_changed(self) -> None:
        oauth = self.kind_server.isChecked() and self.auth.currentData() == "oauth2"
        self.server_form.setRowVisible(self.password, not oauth)
        self.oauth_box.setVisible(oauth)
        provider = self.provider.currentData()
        known = provider in ("gmail", "microsoft")
        self.oauth_form.setRowVisible(self.client_secret, provider == "gmail")
        self.oauth_form.setRowVisible(self.tenant, provider == "microsoft")
        for w in (self.auth_url, self.token_url, self.device_url, self.scopes):
            self.oauth_form.setRowVisible(w, not known)
        self._update_signin_buttons()
        # Shrink once the layout has taken the hidden rows out (next event-loop turn), so
        # switching to OAuth2 or a local store leaves no empty band above the buttons.
        QTimer.singleShot(0, self._fit_height)

    def _fit_height(self) -> None:
        """Shrink to what the visible rows need; Qt grows a window but never shrinks it."""
        lay = self.layout()
        lay.activate()  # recompute now that rows were hidden
        self.resize(max(self.width(), DIALOG_WIDTH), lay.sizeHint().height())

    def _update_signin_buttons(self) -> None:
        busy = self.signer.running
        acct = self.account()
        self.signin_button.setEnabled(not busy)
        self.signin_code_button.setEnabled(not busy and has_device_flow(acct))
        if not has_device_flow(acct):
            self.signin_code_button.setToolTip(
                "This provider offers no sign-in with a code: use Sign in… on this computer"
            )
        self.signin_cancel.setVisible(busy)

    def _update_signin_status(self) -> None:
        if self.auth.currentData() != "oauth2" or self.kind_local.isChecked():
            return
        state = is_signed_in(self.account())
        if state:
            self.signin_status.setStyleSheet("color: #1b5e20;")
            self.signin_status.setText("Signed in.")
        else:
            self.signin_status.setStyleSheet("")
            self.signin_status.setText(
                "Not signed in yet: press Sign in… once; later runs use the stored sign-in."
            )

    def _security_changed(self) -> None:
        sec = self.security.currentData()
        if self.port.value() in DEFAULT_PORTS.values():
            self.port.setValue(DEFAULT_PORTS[sec])

    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose an mbox file", self.path.text())
        if path:
            self.path.setText(path)

    def _pick_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self, "Choose a Maildir or a folder of mbox files", self.path.text()
        )
        if path:
            self.path.setText(path)

    def account(self) -> Account:
        """The Account the fields describe; folder roles are kept from the original."""
        base = copy.deepcopy(self.original) if self.original else Account(name="")
        base.name = self.name.text().strip()
        base.full_name = self.full_name.text().strip()
        base.own_domains = _split(self.own_domains.text())
        base.trusted_relays = _split(self.trusted.text())
        if self.kind_local.isChecked():
            base.path = self.path.text().strip()
            base.host, base.username, base.port = "", "", 0
            base.auth = "password"
        else:
            base.path = ""
            base.host = self.host.text().strip()
            base.port = self.port.value()
            base.security = self.security.currentData()
            base.username = self.username.text().strip()
            base.provider = self.provider.currentData()
            base.auth = self.auth.currentData()
            oauth = base.auth == "oauth2"
            known = base.provider in ("gmail", "microsoft")

            def text(field: QLineEdit, shown: bool) -> str:
                return field.text().strip() if oauth and shown else ""

            base.client_id = text(self.client_id, True)
            base.client_secret = text(self.client_secret, base.provider == "gmail")
            base.tenant = text(self.tenant, base.provider == "microsoft")
            base.auth_url = text(self.auth_url, not known)
            base.token_url = text(self.token_url, not known)
            base.device_url = text(self.device_url, not known)
            base.scopes = text(self.scopes, not known).replace(",", " ").split()
        base.password = ""
        return base

    def problem(self) -> str:
        a = self.account()
        if not a.name:
            return "Give the account a name."
        other = self.store.account(a.name)
        if other is not None and (self.original is None or self.original.name != a.name):
            return f"There is already an account named {a.name!r}."
        if self.kind_local.isChecked():
            if not a.path:
                return "Choose an mbox file, a folder of mbox files, or a Maildir."
            if not Path(a.path).exists():
                return f"The mail store {a.path!r} does not exist."
        else:
            if not a.host:
                return "Give the server's host name (or choose a local mail store)."
            if not a.username:
                return "Give the user name you log in with."
            if a.auth == "oauth2":
                return self._oauth_problem(a)
        return ""

    def _oauth_problem(self, a: Account) -> str:
        from mailstats.accounts.oauth import OAuthError, endpoints_for

        if not a.client_id:
            return (
                "Give the OAuth2 client ID: register one with your provider as "
                "docs/oauth.md describes."
            )
        try:
            endpoints_for(a)
        except OAuthError:
            return "Give the token URL of your identity provider (or pick Gmail or Microsoft)."
        return ""

    def _try_accept(self) -> None:
        msg = self.problem()
        if msg:
            self.error.setText(msg)
            return
        self.accept()

    # -- OAuth2 sign-in ---------------------------------------------------------------
    def sign_in(self, device: bool = False) -> bool:
        """Start signing in (browser, or a code for another device) in a worker thread."""
        msg = self.problem()
        if msg:
            self.signin_status.setStyleSheet("color: #b00020;")
            self.signin_status.setText(msg)
            return False
        if not self.signer.start(self.account(), device=device):
            return False
        self.signin_status.setStyleSheet("")
        self.signin_status.setText(
            "Waiting for the code to be entered…"
            if device
            else "Waiting for you to sign in in the browser window that just opened…"
        )
        self._update_signin_buttons()
        return True

    def _signed_in(self, ok: bool, text: str) -> None:
        self.signin_status.setStyleSheet("color: #1b5e20;" if ok else "color: #b00020;")
        self.signin_status.setText(text)
        self._update_signin_buttons()

    def done(self, result: int) -> None:
        self.signer.cancel()  # closing the dialog ends a sign-in that is still waiting
        super().done(result)

    # -- connection test --------------------------------------------------------------
    def run_test(self) -> None:
        msg = self.problem()
        if msg:
            self.test_result.setText(msg)
            return
        acct = self.account()
        password = self.password.text() if acct.auth == "password" else ""
        if not password and acct.auth == "password" and not acct.is_local and self.original:
            password = self.store.password_for(self.original, resolve_password(self.original))
        self.test_button.setEnabled(False)
        self.test_result.setStyleSheet("")
        self.test_result.setText("Testing…")
        job = worker.CallWorker(lambda: check_connection(acct, password))
        worker.start(job, self, done=self._test_done, failed=self._test_failed)

    def _test_done(self, text: str) -> None:
        self.test_button.setEnabled(True)
        self.test_result.setStyleSheet("color: #1b5e20;")
        self.test_result.setText(text)

    def _test_failed(self, text: str) -> None:
        self.test_button.setEnabled(True)
        self.test_result.setStyleSheet("color: #b00020;")
        self.test_result.setText(f"Could not connect: {text}")
