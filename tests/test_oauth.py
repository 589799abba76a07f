"""OAuth2: the flows against a loopback authorization server, sign-in against a real Dovecot.

The Dovecot here accepts only XOAUTH2/OAUTHBEARER and asks the test's authorization server
(tests/oauth_server.py) whether a token is active, the way a provider's IMAP front end asks
its identity platform. Password login is refused by it, so a passing end-to-end run proves
the token path carried the whole session.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import stat
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from oauth_server import OAuthServer, oauth_stack_for

from mailstats.accounts import oauth
from mailstats.accounts.config import Account, parse_config
from mailstats.accounts.oauth import (
    FileStore,
    MemoryStore,
    OAuthError,
    SignInRequired,
    TokenManager,
    endpoints_for,
    pkce_pair,
    token_key,
)
from mailstats.sources import AuthError

USER = "olga@example.org"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def authz():
    server = OAuthServer(browser_user=USER).start()
    yield server
    server.stop()


def account(server: OAuthServer, **kw) -> Account:
    return server.account(USER, **kw)


def signed_in(server: OAuthServer, acct: Account) -> tuple[MemoryStore, str]:
    _, refresh = server.issue(USER)
    store = MemoryStore()
    store.set(token_key(acct), json.dumps({"refresh_token": refresh}))
    return store, refresh


# -- flows (loopback HTTP only) ---------------------------------------------------------
def test_pkce_challenge_is_s256_of_verifier():
    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128  # RFC 7636 4.1
    assert set(verifier) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    want = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert challenge == want.decode()
    assert pkce_pair()[0] != verifier


def test_refresh_before_expiry_and_rotation(authz):
    acct = account(authz)
    store, first_refresh = signed_in(authz, acct)
    clock = Clock()
    tm = TokenManager(acct, store, clock=clock)
    a1 = tm.access_token()
    assert authz.introspect(a1)["active"] is True
    assert tm.access_token() == a1  # still valid: no second request
    assert len(authz.calls("/token")) == 1
    # the server rotated the refresh token; the new one must be what is stored now
    stored = json.loads(store.get(token_key(acct)))["refresh_token"]
    assert stored != first_refresh and stored in authz.users
    # 59 minutes in, inside the one-minute margin of a 3600 s token: refreshed early
    clock.now += 3600 - 59
    a2 = tm.access_token()
    assert a2 != a1 and len(authz.calls("/token")) == 2
    req = authz.calls("/token")[-1]
    assert req["grant_type"] == "refresh_token" and req["refresh_token"] == stored
    assert req["scope"] == "imap offline_access"


def test_revoked_refresh_token_asks_to_sign_in_again(authz):
    acct = account(authz)
    store, refresh = signed_in(authz, acct)
    authz.revoke(refresh)
    tm = TokenManager(acct, store, clock=Clock())
    with pytest.raises(SignInRequired) as info:
        tm.access_token()
    assert isinstance(info.value, AuthError)
    msg = str(info.value)
    assert "'olga'" in msg and "sign in again" in msg and "revoked" in msg
    assert store.get(token_key(acct)) is None  # the dead token is not retried every run


def test_no_token_stored_asks_to_sign_in(authz):
    acct = account(authz)
    with pytest.raises(SignInRequired, match="olga.*sign in again"):
        TokenManager(acct, MemoryStore()).access_token()
    assert authz.calls("/token") == []


def test_browser_flow_with_pkce_and_loopback_redirect(authz):
    acct = account(authz)
    store = MemoryStore()
    tm = TokenManager(acct, store)
    seen: list[str] = []

    def browser(url: str) -> None:
        seen.append(url)
        urllib.request.urlopen(url, timeout=10).read()  # follows the 302 to our loopback

    tm.sign_in_browser(browser, timeout=10)
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(seen[0]).query))
    assert params["code_challenge_method"] == "S256"
    assert params["redirect_uri"].startswith("http://127.0.0.1:")
    assert params["login_hint"] == USER and params["scope"] == "imap offline_access"
    exchange = authz.calls("/token")[0]
    assert exchange["grant_type"] == "authorization_code"
    want = base64.urlsafe_b64encode(hashlib.sha256(exchange["code_verifier"].encode()).digest())
    assert params["code_challenge"] == want.rstrip(b"=").decode()
    assert json.loads(store.get(token_key(acct)))["refresh_token"] in authz.users
    assert authz.introspect(tm.access_token())["email"] == USER


def test_browser_flow_microsoft_redirects_to_localhost(authz):
    acct = account(authz, provider="microsoft")
    seen: list[str] = []

    def browser(url: str) -> None:
        seen.append(url)
        urllib.request.urlopen(url, timeout=10).read()

    TokenManager(acct, MemoryStore()).sign_in_browser(browser, timeout=10)
    redirect = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(seen[0]).query))["redirect_uri"]
    assert redirect.startswith("http://localhost:")


def test_browser_flow_refused_is_a_clear_error(authz):
    acct = account(authz, client_id="someone-else")
    tm = TokenManager(acct, MemoryStore())
    with pytest.raises(OAuthError, match="sign-in refused: invalid_request"):
        tm.sign_in_browser(lambda url: urllib.request.urlopen(url, timeout=10).read(), timeout=10)


def test_browser_flow_times_out(authz):
    tm = TokenManager(account(authz), MemoryStore())
    with pytest.raises(OAuthError, match="timed out"):
        tm.sign_in_browser(lambda url: None, timeout=0.5)


def test_device_flow_polls_until_approved(authz):
    acct = account(authz, provider="microsoft")
    store = MemoryStore()
    waits: list[float] = []
    tm = TokenManager(acct, store, sleep=waits.append)
    prompts = []
    tm.sign_in_device(prompts.append)
    assert prompts[0].user_code == "ABCD-EFGH" and prompts[0].verification_uri.endswith("/device")
    polls = [c for c in authz.calls("/token") if c["grant_type"].endswith("device_code")]
    assert len(polls) == 2 and waits == [1.0, 1.0]  # pending once, then approved
    assert store.get(token_key(acct))


def test_endpoint_defaults_and_overrides():
    ms = Account(name="m", username="u@x", provider="microsoft", tenant="contoso.onmicrosoft.com")
    e = endpoints_for(ms)
    assert e.token_url == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    )
    assert e.device_url.endswith("/devicecode") and "offline_access" in e.scopes
    assert endpoints_for(Account(name="m", provider="microsoft")).token_url.startswith(
        "https://login.microsoftonline.com/common/"
    )
    g = endpoints_for(Account(name="g", provider="gmail", sasl="oauthbearer"))
    assert g.scopes == ("https://mail.google.com/",) and g.sasl == "OAUTHBEARER"
    assert g.device_url == ""
    with pytest.raises(OAuthError, match="token_url"):
        endpoints_for(Account(name="x"))
    with pytest.raises(OAuthError, match="client_id"):
        TokenManager(Account(name="g", provider="gmail"), MemoryStore()).access_token()


def test_file_store_is_private(tmp_path):
    store = FileStore(tmp_path / "sub" / "tokens.json")
    store.set("a:b", "secret")
    assert FileStore(store.path).get("a:b") == "secret"
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    store.delete("a:b")
    assert store.get("a:b") is None


def test_accounts_file_keys():
    cfg = parse_config(
        {
            "accounts": [
                {"name": "a", "provider": "microsoft", "username": "u@contoso.com",
                 "client_id": "cid", "tenant": "organizations"},
                {"name": "b", "provider": "gmail", "username": "u@gmail.com",
                 "auth": "password", "password_env": "X"},
            ]
        }
    )  # fmt: skip
    a, b = cfg.accounts
    assert (a.host, a.port, a.security, a.auth) == ("outlook.office365.com", 993, "ssl", "oauth2")
    assert (a.ham, a.spam, a.sent) == (["INBOX"], ["Junk Email"], ["Sent Items"])
    assert (b.host, b.auth) == ("imap.gmail.com", "password")
    assert "[Gmail]/All Mail" not in b.roles()
    from mailstats.accounts.config import ConfigError

    with pytest.raises(ConfigError, match="'auth' must be"):
        parse_config({"accounts": [{"name": "c", "provider": "gmail", "username": "u",
                                    "auth": "kerberos"}]})  # fmt: skip
    with pytest.raises(ConfigError, match="'provider' must be one of"):
        parse_config({"accounts": [{"name": "c", "provider": "aol", "host": "h",
                                    "username": "u", "ham": ["INBOX"]}]})  # fmt: skip


# -- against Dovecot's oauth2 passdb ----------------------------------------------------
@pytest.fixture(scope="module")
def oauth_stack():
    yield from oauth_stack_for(USER)


def source_for(server, dovecot, store, **kw):
    from mailstats.sources.imap import ImapSource

    clock = kw.pop("clock", None) or Clock()
    acct = account(server, port=dovecot.port, **kw)
    tm = TokenManager(acct, store, clock=clock)
    return ImapSource(acct, "", tokens=tm, timeout=10), tm


@pytest.mark.servers
def test_dovecot_accepts_valid_token_and_refuses_password(oauth_stack):
    from mailstats.sources.imap import ImapSource

    server, dovecot = oauth_stack
    dovecot.deliver(USER, "INBOX", [b"Subject: one\r\nMessage-ID: <1@x>\r\n\r\nhi\r\n"])
    for sasl, method in (("", "XOAUTH2"), ("oauthbearer", "OAUTHBEARER")):
        store, _ = signed_in(server, account(server))
        src, _ = source_for(server, dovecot, store, sasl=sasl)
        try:
            assert "INBOX" in [f.name for f in src.list_folders()]
            assert len(src.open_folder("INBOX").uids) >= 1
        finally:
            src.close()
        logins = [line for line in dovecot.log_lines() if f"user=<{USER}>, method=" in line]
        assert f"method={method}" in logins[-1]
    with pytest.raises(AuthError, match="wrong user name or password"):
        ImapSource(account(server, port=dovecot.port, auth="password"), "unused", timeout=10)


@pytest.mark.servers
def test_dovecot_expired_token_is_refreshed(oauth_stack):
    server, dovecot = oauth_stack
    store, _ = signed_in(server, account(server))
    clock = Clock()
    src, tm = source_for(server, dovecot, store, clock=clock)
    src.close()
    assert tm.refreshes == 1
    # The provider expires every access token early (our clock still thinks it is valid):
    # Dovecot refuses it, the source refreshes once and signs in with the new one.
    server.expire_all_access()
    from mailstats.sources.imap import ImapSource

    src2 = ImapSource(src.account, "", tokens=tm, timeout=10)
    try:
        assert src2.list_folders()
    finally:
        src2.close()
    assert tm.refreshes == 2
    assert [c["grant_type"] for c in server.calls("/token")][-2:] == ["refresh_token"] * 2


@pytest.mark.servers
def test_dovecot_revoked_token_fails_clearly(oauth_stack):
    from mailstats.sources.imap import ImapSource

    server, dovecot = oauth_stack
    store, _ = signed_in(server, account(server))
    src, tm = source_for(server, dovecot, store)
    src.close()
    server.expire_all_access()
    for refresh in list(server.users):
        server.revoke(refresh)
    with pytest.raises(SignInRequired, match="account 'olga'.*sign in again"):
        ImapSource(src.account, "", tokens=tm, timeout=10)


@pytest.mark.servers
def test_batch_run_of_oauth_only_account(oauth_stack, dns, generated_mailbox, tmp_path, capsys):
    from mailstats.cli import run_batch

    server, dovecot = oauth_stack
    user = "batch@example.org"
    for folder, msgs in generated_mailbox.folders.items():
        dovecot.deliver(user, folder, [m.raw for m in msgs])
    _, refresh = server.issue(user)
    lines = [
        "[settings]",
        f"dns_servers = [{json.dumps(dns.server_spec)}]",
        'modules = ["received", "internal"]',
        f"cache = {json.dumps(str(tmp_path / 'cache.sqlite'))}",
        "",
        "[[accounts]]",
        'name = "oauth-only"',
        'host = "127.0.0.1"',
        f"port = {dovecot.port}",
        'security = "none"',
        f'username = "{user}"',
        'auth = "oauth2"',
        f'client_id = "{server.client_id}"',
        f'token_url = "{server.url}/token"',
        *generated_mailbox.account_toml(),
    ]
    cfg = tmp_path / "accounts.toml"
    cfg.write_text("\n".join(lines) + "\n")
    store = MemoryStore()
    store.set(f"oauth-only:{user}", json.dumps({"refresh_token": refresh}))
    oauth.set_store(store)
    try:
        out = tmp_path / "out"
        assert run_batch(str(cfg), str(out), quiet=True) == 0
        with (out / "summary.csv").open() as fh:
            got = {(r["folder"], r["check"]): (int(r["matched"]), int(r["applicable"]),
                   int(r["total"])) for r in csv.DictReader(fh)}  # fmt: skip
        expected = generated_mailbox.expected_counts()
        checked = [k for k in expected if k[1] in ("received.from_match", "internal.internal")]
        assert len(checked) >= 4
        for key in checked:
            assert got[key] == expected[key], key
        # A revoked sign-in: exit 1, one line naming the account, no traceback.
        server.expire_all_access()
        for rt in list(server.users):
            server.revoke(rt)
        capsys.readouterr()
        assert run_batch(str(cfg), str(tmp_path / "out2"), quiet=True) == 1
        err = capsys.readouterr().err
        assert "account 'oauth-only' failed" in err and "sign in again" in err
        assert "Traceback" not in err
    finally:
        oauth.set_store(None)
    logins = [line for line in dovecot.log_lines() if f"user=<{user}>, method=XOAUTH2" in line]
    assert logins


def test_store_fallback_without_keyring(monkeypatch, tmp_path):
    """No keyring backend (headless Linux): a private file, never an exception."""
    monkeypatch.setattr(oauth, "keyring_usable", lambda: False)
    monkeypatch.setattr("platformdirs.user_data_dir", lambda name: str(tmp_path / name))
    oauth.set_store(None)
    try:
        store = oauth.default_store()
        assert isinstance(store, FileStore)
        assert Path(store.path).parent == tmp_path / "mailstats"
    finally:
        oauth.set_store(None)
