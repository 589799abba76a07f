"""OAuth2 sign-in for IMAP (Gmail, Microsoft 365/Outlook.com, any RFC 6749 server).

Microsoft has switched password sign-in off for IMAP and Gmail allows it only with app
passwords, so for most people this module is the only way in. Written on the standard
library on purpose: the flows are three small HTTP exchanges, and an OAuth library would be
a large dependency whose defaults (token caches in odd places, scopes) we would have to
audit anyway.

What is kept where:
- the refresh token: in the system keyring (service ``mailstats-oauth``), or, where there is
  no keyring backend, in an injectable `TokenStore` (a 0600 JSON file by default);
- the access token: in memory only, refreshed a minute before it expires.

A refresh token the provider no longer accepts (revoked, expired, password changed) raises
`SignInRequired`, an `AuthError` that names the account, so the CLI prints one line and the
GUI can offer to sign in again; it is never a traceback.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mailstats.accounts.config import Account
from mailstats.accounts.tokens import (
    KEYRING_SERVICE,
    FileStore,
    KeyringStore,
    MemoryStore,
    TokenStore,
    default_store,
    keyring_usable,
    set_store,
    token_key,
)
from mailstats.sources import AuthError

#: The token stores moved to accounts/tokens.py; these names stay importable from here.
__all__ = [
    "KEYRING_SERVICE",
    "FileStore",
    "KeyringStore",
    "MemoryStore",
    "OAuthError",
    "SignInRequired",
    "TokenManager",
    "TokenStore",
    "default_store",
    "keyring_usable",
    "set_store",
    "token_key",
]

log = logging.getLogger(__name__)

#: Refresh this long before the access token's stated expiry (clock skew, slow networks).
REFRESH_MARGIN_S = 60.0
HTTP_TIMEOUT_S = 30.0


class OAuthError(AuthError):
    """Sign-in could not be completed (provider said no, user cancelled, bad settings)."""


class SignInRequired(OAuthError):
    """No usable refresh token: the user has to sign in again in a browser."""


# ----------------------------------------------------------------------------------------
# Provider endpoints
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Endpoints:
    """Where a provider's OAuth2 endpoints are and what to ask for."""

    authorize_url: str
    token_url: str
    device_url: str = ""  # device-code flow (RFC 8628); empty when the provider has none
    scopes: tuple[str, ...] = ()
    #: XOAUTH2 is what Gmail and Microsoft document; OAUTHBEARER is the RFC 7628 standard.
    sasl: str = "XOAUTH2"


GOOGLE = Endpoints(
    authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
    token_url="https://oauth2.googleapis.com/token",
    device_url="",  # Google's device flow does not grant the mail scope
    scopes=("https://mail.google.com/",),
)
MICROSOFT_AUTHORITY = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0"
MICROSOFT_SCOPES = ("https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access")


def endpoints_for(account: Account) -> Endpoints:
    """The provider defaults, overridden by the account's own URLs and scopes."""
    provider = getattr(account, "provider", "generic") or "generic"
    if provider == "gmail":
        base = GOOGLE
    elif provider == "microsoft":
        root = MICROSOFT_AUTHORITY.format(tenant=getattr(account, "tenant", "") or "common")
        base = Endpoints(
            authorize_url=f"{root}/authorize",
            token_url=f"{root}/token",
            device_url=f"{root}/devicecode",
            scopes=MICROSOFT_SCOPES,
        )
    else:
        base = Endpoints(authorize_url="", token_url="")
    scopes = tuple(getattr(account, "scopes", None) or ()) or base.scopes
    sasl = (getattr(account, "sasl", "") or base.sasl).upper()
    ends = Endpoints(
        authorize_url=getattr(account, "auth_url", "") or base.authorize_url,
        token_url=getattr(account, "token_url", "") or base.token_url,
        device_url=getattr(account, "device_url", "") or base.device_url,
        scopes=scopes,
        sasl=sasl,
    )
    if not ends.token_url:
        raise OAuthError(
            f"account '{account.name}': OAuth2 needs 'token_url' (or provider = \"gmail\" "
            f'or "microsoft")'
        )
    return ends


# ----------------------------------------------------------------------------------------
# HTTP
# ----------------------------------------------------------------------------------------
def _post_form(url: str, fields: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """POST a form, parse the JSON answer; OAuth errors come back as 400 with a JSON body."""
    body = urllib.parse.urlencode(fields).encode()
    req = urllib.request.Request(
        url,
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:  # noqa: S310
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        host = urllib.parse.urlsplit(url).netloc
        raise OAuthError(f"cannot reach the sign-in server {host}: {reason}") from None
    try:
        data = json.loads(raw.decode("utf-8") or "{}")
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    return status, data


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) per RFC 7636."""
    verifier = secrets.token_urlsafe(64)[:96]
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier, challenge


@dataclass
class DevicePrompt:
    """What the user must do for the device-code flow: open the URL, type the code."""

    verification_uri: str
    user_code: str
    message: str
    expires_in: int


# ----------------------------------------------------------------------------------------
# Tokens for one account
# ----------------------------------------------------------------------------------------
class TokenManager:
    """Access tokens for one account: refreshed before expiry, refresh token kept in a store."""

    def __init__(
        self,
        account: Account,
        store: TokenStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.account = account
        self.store = store if store is not None else default_store()
        self.endpoints = endpoints_for(account)
        self.clock = clock
        self.sleep = sleep
        self._access = ""
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.refreshes = 0

    # -- public -----------------------------------------------------------------------
    @property
    def client_id(self) -> str:
        cid = getattr(self.account, "client_id", "")
        if not cid:
            raise OAuthError(
                f"account '{self.account.name}': OAuth2 needs a 'client_id' "
                "(register one as docs/oauth.md describes)"
            )
        return cid

    def has_refresh_token(self) -> bool:
        return bool(self._stored().get("refresh_token"))

    def access_token(self) -> str:
        """A token valid for at least REFRESH_MARGIN_S more seconds."""
        with self._lock:
            if self._access and self.clock() < self._expires_at - REFRESH_MARGIN_S:
                return self._access
            self._refresh()
            return self._access

    def invalidate(self) -> None:
        """The server refused the access token: the next call refreshes."""
        with self._lock:
            self._access, self._expires_at = "", 0.0

    def forget(self) -> None:
        """Sign out: drop the stored refresh token."""
        self.invalidate()
        self.store.delete(token_key(self.account))

    def sign_in_browser(
        self,
        open_browser: Callable[[str], Any] = webbrowser.open,
        *,
        timeout: float = 300.0,
        redirect_host: str = "",
    ) -> None:
        """Authorization code + PKCE with a loopback redirect (RFC 8252 section 7.3).

        The redirect names 127.0.0.1 (Google's desktop clients) or ``localhost`` (what
        Entra's "Mobile and desktop" platform registers); both accept any port.
        """
        ends = self.endpoints
        if not redirect_host:
            microsoft = getattr(self.account, "provider", "") == "microsoft"
            redirect_host = "localhost" if microsoft else "127.0.0.1"
        if not ends.authorize_url:
            raise OAuthError(f"account '{self.account.name}': no authorization URL configured")
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(24)
        catcher = _RedirectCatcher(redirect_host, state)
        try:
            redirect_uri = catcher.redirect_uri
            params = {
                "client_id": self.client_id,
                "response_type": "code",
                "redirect_uri": redirect_uri,
                "scope": " ".join(ends.scopes),
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
            if self.account.username:
                params["login_hint"] = self.account.username
            if getattr(self.account, "provider", "") == "gmail":
                params["access_type"] = "offline"  # Google only returns a refresh token so
                params["prompt"] = "consent"
            sep = "&" if "?" in ends.authorize_url else "?"
            url = ends.authorize_url + sep + urllib.parse.urlencode(params)
            threading.Thread(target=open_browser, args=(url,), daemon=True).start()
            code = catcher.wait(timeout)
        finally:
            catcher.close()
        fields = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.client_id,
            "code_verifier": verifier,
        }
        self._token_request(fields, interactive=True)

    def sign_in_device(
        self,
        prompt: Callable[[DevicePrompt], Any],
        cancel: threading.Event | None = None,
    ) -> None:
        """Device-code flow (RFC 8628): for --batch on a machine without a browser."""
        ends = self.endpoints
        if not ends.device_url:
            raise OAuthError(
                f"account '{self.account.name}': this provider offers no device-code sign-in; "
                "sign in once from the desktop app or a machine with a browser"
            )
        status, data = _post_form(
            ends.device_url, {"client_id": self.client_id, "scope": " ".join(ends.scopes)}
        )
        if status != 200 or "device_code" not in data:
            raise OAuthError(self._explain(data, "device sign-in could not start"))
        expires_in = int(data.get("expires_in", 900))
        uri = data.get("verification_uri") or data.get("verification_url") or ""
        prompt(
            DevicePrompt(
                verification_uri=uri,
                user_code=str(data.get("user_code", "")),
                message=str(data.get("message") or f"Open {uri} and enter {data.get('user_code')}"),
                expires_in=expires_in,
            )
        )
        interval = float(data.get("interval", 5))
        deadline = self.clock() + expires_in
        fields = {
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": str(data["device_code"]),
            "client_id": self.client_id,
        }
        while self.clock() < deadline:
            if cancel is not None and cancel.is_set():
                raise OAuthError(f"account '{self.account.name}': sign-in cancelled")
            self.sleep(interval)
            status, answer = _post_form(ends.token_url, self._with_secret(fields))
            error = answer.get("error", "")
            if status == 200 and "access_token" in answer:
                self._accept(answer)
                return
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval += 5
                continue
            raise OAuthError(self._explain(answer, "device sign-in failed"))
        raise OAuthError(f"account '{self.account.name}': the sign-in code expired; try again")

    # -- internals --------------------------------------------------------------------
    def _stored(self) -> dict[str, Any]:
        raw = self.store.get(token_key(self.account))
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            return {"refresh_token": raw}  # a bare token written by hand or an old version
        return data if isinstance(data, dict) else {}

    def _with_secret(self, fields: dict[str, str]) -> dict[str, str]:
        # Google's "desktop app" clients have a secret that is not secret (RFC 8252 8.5):
        # their token endpoint still wants it.
        secret = getattr(self.account, "client_secret", "")
        return {**fields, "client_secret": secret} if secret else fields

    def _refresh(self) -> None:
        client_id = self.client_id  # a missing client is a settings problem: say so first
        refresh = self._stored().get("refresh_token")
        if not refresh:
            raise SignInRequired(
                f"account '{self.account.name}': not signed in to {self.account.username or 'the'}"
                " OAuth2 account; sign in again (command line: python -m mailstats.accounts.oauth "
                f"<accounts file> {self.account.name})"
            )
        fields = {
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": client_id,
        }
        if self.endpoints.scopes:
            fields["scope"] = " ".join(self.endpoints.scopes)
        self._token_request(fields, interactive=False)
        self.refreshes += 1

    def _token_request(self, fields: dict[str, str], *, interactive: bool) -> None:
        status, data = _post_form(self.endpoints.token_url, self._with_secret(fields))
        if status == 200 and "access_token" in data:
            self._accept(data, old_refresh=fields.get("refresh_token", ""))
            return
        error = data.get("error", "")
        if not interactive and error in ("invalid_grant", "interaction_required", "invalid_token"):
            # Revoked, expired or the password changed: the stored token is useless now.
            self.store.delete(token_key(self.account))
            raise SignInRequired(
                f"account '{self.account.name}': the sign-in for {self.account.username} is no "
                f"longer valid ({self._short(data)}); sign in again"
            )
        raise OAuthError(self._explain(data, f"token request failed (HTTP {status})"))

    def _accept(self, data: dict[str, Any], old_refresh: str = "") -> None:
        self._access = str(data["access_token"])
        self._expires_at = self.clock() + float(data.get("expires_in", 3600))
        refresh = str(data.get("refresh_token") or old_refresh)  # Microsoft rotates it
        if refresh:
            record = {"refresh_token": refresh, "scope": data.get("scope", "")}
            self.store.set(token_key(self.account), json.dumps(record))

    @staticmethod
    def _short(data: dict[str, Any]) -> str:
        desc = str(data.get("error_description", "")).splitlines()[0:1]
        return (data.get("error") or "error") + (f": {desc[0][:160]}" if desc else "")

    def _explain(self, data: dict[str, Any], what: str) -> str:
        return f"account '{self.account.name}': {what}: {self._short(data)}"


class _RedirectCatcher:
    """A one-shot loopback HTTP server that receives the authorization code."""

    def __init__(self, host: str, state: str) -> None:
        self.state = state
        self.result: dict[str, str] = {}
        self.done = threading.Event()
        catcher = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                if "code" not in query and "error" not in query:
                    self.send_response(404)
                    self.end_headers()
                    return
                ok = "code" in query and query.get("state") == catcher.state
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                text = (
                    "Signed in. You can close this tab and return to mailstats."
                    if ok
                    else "Sign-in failed. Return to mailstats for details."
                )
                self.wfile.write(f"<html><body><p>{text}</p></body></html>".encode())
                if not catcher.done.is_set():
                    catcher.result = query
                    catcher.done.set()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)  # loopback only
        self.server.timeout = 0.2
        port = self.server.server_address[1]
        self.redirect_uri = f"http://{host}:{port}/"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.done.is_set():
            self.server.handle_request()

    def wait(self, timeout: float) -> str:
        if not self.done.wait(timeout):
            raise OAuthError("sign-in timed out: the browser never came back to mailstats")
        q = self.result
        if "error" in q:
            raise OAuthError(f"sign-in refused: {q['error']} {q.get('error_description', '')}")
        if q.get("state") != self.state:
            raise OAuthError("sign-in answer did not match the request (state); try again")
        return q["code"]

    def close(self) -> None:
        self.done.set()
        self.thread.join(timeout=2)
        self.server.server_close()


# ----------------------------------------------------------------------------------------
# Command line: python -m mailstats.accounts.oauth ACCOUNTS_FILE ACCOUNT [--device]
# ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Sign an account in once, so later --batch runs find a refresh token."""
    import argparse
    import sys

    from mailstats.accounts.config import ConfigError, load_config

    p = argparse.ArgumentParser(prog="python -m mailstats.accounts.oauth", description=main.__doc__)
    p.add_argument("accounts_file")
    p.add_argument("account")
    p.add_argument("--device", action="store_true", help="device code instead of a browser")
    p.add_argument("--forget", action="store_true", help="sign out: delete the stored token")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.accounts_file)
        acct = next((a for a in cfg.accounts if a.name == args.account), None)
        if acct is None:
            raise ConfigError(f"{args.accounts_file}: no account named {args.account!r}")
        tm = TokenManager(acct)
        if args.forget:
            tm.forget()
            print(f"signed out of {acct.name}")
            return 0
        if args.device:
            tm.sign_in_device(lambda d: print(d.message, flush=True))
        else:
            print("Opening the sign-in page in your browser ...", flush=True)
            tm.sign_in_browser()
        tm.access_token()
    except (ConfigError, OAuthError) as exc:
        print(f"mailstats: {exc}", file=sys.stderr)
        return 1
    print(f"signed in: {acct.name} ({acct.username}); the refresh token is stored")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
