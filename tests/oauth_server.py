"""Loopback stand-ins for the parts of a provider the OAuth2 and throttling tests need.

- `OAuthServer`: a tiny authorization server (authorize with PKCE, token, device code) that
  also answers Dovecot's token introspection, so the same tokens sign in to a real Dovecot.
- `OAuthDovecot`: the test Dovecot (tests/servers.py) with its passdb swapped for Dovecot's
  own `oauth2` driver and only the XOAUTH2/OAUTHBEARER mechanisms: password login fails.
- `FakeImap`: a *fake* IMAP server that mimics Gmail's X-GM-EXT-1 extension (X-GM-MSGID per
  message, one message visible in several label folders) and can answer BYE or a
  `[THROTTLED]` NO mid-run. Dovecot cannot do either, which is the only reason it exists;
  everything else is tested against the real Dovecot.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import socket
import socketserver
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from servers import Dovecot, ServerUnavailable, missing_binaries


# ----------------------------------------------------------------------------------------
# Authorization server
# ----------------------------------------------------------------------------------------
@dataclass
class _Grant:
    user: str
    challenge: str = ""
    redirect_uri: str = ""


@dataclass
class OAuthServer:
    """Issues opaque tokens; `active` ones are accepted by introspection."""

    client_id: str = "mailstats-test-client"
    access_lifetime: int = 3600
    users: dict[str, str] = field(default_factory=dict)  # refresh token -> user
    access: dict[str, tuple[str, bool]] = field(default_factory=dict)  # token -> (user, active)
    codes: dict[str, _Grant] = field(default_factory=dict)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    #: the user that /authorize signs in (the "browser" is already logged in as them)
    browser_user: str = ""
    rotate_refresh: bool = True
    port: int = 0
    _httpd: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def account(self, user: str, **kw: Any) -> Any:
        """An OAuth2 IMAP account "olga" signing in at this server (`kw` overrides)."""
        from mailstats.accounts.config import Account

        fields = dict(
            name="olga",
            host="127.0.0.1",
            port=143,
            security="none",
            username=user,
            auth="oauth2",
            client_id=self.client_id,
            auth_url=f"{self.url}/authorize",
            token_url=f"{self.url}/token",
            device_url=f"{self.url}/devicecode",
            scopes=["imap", "offline_access"],
            ham=["INBOX"],
        )
        return Account(**{**fields, **kw})

    def start(self) -> OAuthServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                parts = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parts.query))
                server._record(parts.path, query)
                if parts.path == "/authorize":
                    self._redirect(server.authorize(query))
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                path = urllib.parse.urlsplit(self.path).path
                server._record(path, form)
                if path == "/token":
                    self._json(*server.token(form))
                elif path == "/devicecode":
                    self._json(*server.device_code(form))
                elif path == "/introspect":
                    self._json(200, server.introspect(form.get("token", "")))
                else:
                    self._json(404, {"error": "not_found"})

            def _json(self, status: int, data: dict[str, Any]) -> None:
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _redirect(self, location: str) -> None:
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def _record(self, path: str, fields: dict[str, str]) -> None:
        with self._lock:
            self.requests.append((path, dict(fields)))

    def calls(self, path: str) -> list[dict[str, str]]:
        with self._lock:
            return [f for p, f in self.requests if p == path]

    # -- token book-keeping -------------------------------------------------------------
    def issue(self, user: str) -> tuple[str, str]:
        """(access token, refresh token) for a user, as if they had signed in."""
        with self._lock:
            access, refresh = "at-" + secrets.token_hex(12), "rt-" + secrets.token_hex(12)
            self.access[access] = (user, True)
            self.users[refresh] = user
            return access, refresh

    def expire_all_access(self) -> None:
        with self._lock:
            self.access = {t: (u, False) for t, (u, _) in self.access.items()}

    def revoke(self, refresh: str) -> None:
        with self._lock:
            self.users.pop(refresh, None)

    def introspect(self, token: str) -> dict[str, Any]:
        with self._lock:
            user, active = self.access.get(token, ("", False))
        return {"active": True, "email": user} if active else {"active": False}

    # -- endpoints ----------------------------------------------------------------------
    def authorize(self, q: dict[str, str]) -> str:
        redirect = q.get("redirect_uri", "")
        if q.get("client_id") != self.client_id or q.get("code_challenge_method") != "S256":
            return f"{redirect}?error=invalid_request&state={q.get('state', '')}"
        code = "code-" + secrets.token_hex(8)
        with self._lock:
            self.codes[code] = _Grant(self.browser_user, q.get("code_challenge", ""), redirect)
        return f"{redirect}?" + urllib.parse.urlencode({"code": code, "state": q.get("state")})

    def token(self, f: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if f.get("client_id") != self.client_id:
            return 401, {"error": "invalid_client"}
        grant = f.get("grant_type")
        if grant == "authorization_code":
            with self._lock:
                g = self.codes.pop(f.get("code", ""), None)
            if g is None or g.redirect_uri != f.get("redirect_uri"):
                return 400, {"error": "invalid_grant", "error_description": "bad code"}
            digest = hashlib.sha256(f.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != g.challenge:
                return 400, {"error": "invalid_grant", "error_description": "PKCE mismatch"}
            return 200, self._tokens(g.user)
        if grant == "refresh_token":
            with self._lock:
                user = self.users.get(f.get("refresh_token", ""))
                if user is not None and self.rotate_refresh:
                    del self.users[f["refresh_token"]]
            if user is None:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "AADSTS70008: The refresh token has been revoked.",
                }
            out = self._tokens(user)
            if not self.rotate_refresh:
                out.pop("refresh_token")
            return 200, out
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            with self._lock:
                dev = self.devices.get(f.get("device_code", ""))
                if dev is None:
                    return 400, {"error": "expired_token"}
                dev["polls"] += 1
                if dev["polls"] < dev["approve_after"]:
                    return 400, {"error": "authorization_pending"}
                del self.devices[f["device_code"]]
            return 200, self._tokens(dev["user"])
        return 400, {"error": "unsupported_grant_type"}

    def _tokens(self, user: str) -> dict[str, Any]:
        access, refresh = self.issue(user)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": self.access_lifetime,
            "scope": "imap",
        }

    def device_code(self, f: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if f.get("client_id") != self.client_id:
            return 401, {"error": "invalid_client"}
        code = "dev-" + secrets.token_hex(8)
        with self._lock:
            self.devices[code] = {"user": self.browser_user, "polls": 0, "approve_after": 2}
        return 200, {
            "device_code": code,
            "user_code": "ABCD-EFGH",
            "verification_uri": f"{self.url}/device",
            "expires_in": 600,
            "interval": 1,
            "message": "To sign in, open the page and enter ABCD-EFGH",
        }


# ----------------------------------------------------------------------------------------
# Dovecot that only accepts OAuth2
# ----------------------------------------------------------------------------------------
class OAuthDovecot(Dovecot):
    """Dovecot with `passdb { driver = oauth2 }` introspecting tokens at `introspection_url`.

    Set the class attribute through `start_oauth`, because Dovecot.start() builds the
    instance and writes the config in one go.
    """

    introspection_url = ""

    @classmethod
    def start_oauth(cls, introspection_url: str, users: dict[str, str]) -> OAuthDovecot:
        sub = type("OAuthDovecotBound", (cls,), {"introspection_url": introspection_url})
        return sub.start(users)  # type: ignore[return-value]

    def _config(self, cert: Path, key: Path) -> str:
        base = super()._config(cert, key)
        conf = self.root / "dovecot-oauth2.conf.ext"
        conf.write_text(
            "introspection_mode = post\n"
            f"introspection_url = {self.introspection_url}\n"
            "force_introspection = yes\n"
            "username_attribute = email\n"
            "active_attribute = active\n"
            "active_value = true\n"
        )
        conf.chmod(0o644)
        passdb = re.compile(r"passdb \{\n.*?\n\}\n", re.S)
        assert passdb.search(base), "tests/servers.py changed its passdb block"
        base = passdb.sub(
            "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
            f"  args = {conf}\n}}\n",
            base,
            count=1,
        )
        assert "auth_mechanisms = plain login" in base
        return base.replace(
            "auth_mechanisms = plain login", "auth_mechanisms = xoauth2 oauthbearer"
        )


# ----------------------------------------------------------------------------------------
# Fake IMAP with Gmail's X-GM-EXT-1, BYE and [THROTTLED]
# ----------------------------------------------------------------------------------------
@dataclass
class FakeMessage:
    raw: bytes
    gm_msgid: int


@dataclass
class FakeImap:
    """A deliberately small IMAP4rev1 server (see module docstring for why it exists).

    `folders` maps folder name -> list of messages (UID = position + 1); `flags` adds LIST
    attributes. `bye_after_fetches`: answer the n-th UID FETCH with `* BYE` and hang up.
    `throttle_fetches`: answer that many UID FETCHes with `NO [THROTTLED]` first.
    """

    folders: dict[str, list[FakeMessage]]
    flags: dict[str, str] = field(default_factory=dict)
    gmail: bool = True
    bye_after_fetches: int = 0
    bye_text: str = "[UNAVAILABLE] Temporary System Error"
    bye_forever: bool = False  # every fetch from the n-th on: a provider's daily limit
    throttle_fetches: int = 0
    refuse_logins: int = 0  # answer that many LOGINs like Gmail at its connection limit
    port: int = 0
    fetches: int = 0
    connections: int = 0
    logins: int = 0
    commands: list[str] = field(default_factory=list)
    _server: socketserver.ThreadingTCPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> FakeImap:
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                with fake._lock:
                    fake.connections += 1
                _Session(fake, self.rfile, self.wfile).run()

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


_FETCH_ITEM = re.compile(r"BODY\.PEEK\[HEADER\]|BODYSTRUCTURE|RFC822\.SIZE|X-GM-MSGID|UID", re.I)


class _Session:
    def __init__(self, fake: FakeImap, rfile: Any, wfile: Any) -> None:
        self.fake, self.rfile, self.wfile = fake, rfile, wfile
        self.folder: list[FakeMessage] | None = None

    def send(self, line: str | bytes) -> None:
        self.wfile.write(line if isinstance(line, bytes) else line.encode() + b"\r\n")

    def run(self) -> None:
        caps = "IMAP4rev1 AUTH=PLAIN" + (" X-GM-EXT-1" if self.fake.gmail else "")
        self.send(f"* OK [CAPABILITY {caps}] fake imap ready")
        try:
            while True:
                line = self.rfile.readline()
                if not line:
                    return
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                tag, _, rest = text.partition(" ")
                cmd, _, args = rest.partition(" ")
                cmd = cmd.upper()
                with self.fake._lock:
                    self.fake.commands.append(f"{cmd} {args}".strip())
                if not self.dispatch(tag, cmd, args, caps):
                    return
        except (ConnectionError, OSError):
            return

    def dispatch(self, tag: str, cmd: str, args: str, caps: str) -> bool:
        f = self.fake
        if cmd == "CAPABILITY":
            self.send(f"* CAPABILITY {caps}")
        elif cmd == "LOGIN":
            with f._lock:
                f.logins += 1
                refuse = f.refuse_logins > 0
                f.refuse_logins -= refuse
            if refuse:
                self.send(f"{tag} NO [ALERT] Too many simultaneous connections. (Failure)")
                return True
        elif cmd == "LOGOUT":
            self.send("* BYE bye")
            self.send(f"{tag} OK LOGOUT done")
            return False
        elif cmd == "LIST":
            for name in f.folders:
                attrs = f.flags.get(name, "\\HasNoChildren")
                self.send(f'* LIST ({attrs}) "/" "{name}"')
        elif cmd in ("EXAMINE", "SELECT"):
            name = args.strip().strip('"')
            if name not in f.folders:
                self.send(f"{tag} NO [NONEXISTENT] no such folder")
                return True
            self.folder = f.folders[name]
            self.send(f"* {len(self.folder)} EXISTS")
            self.send("* OK [UIDVALIDITY 7] ok")
            self.send(f"{tag} OK [READ-ONLY] EXAMINE done")
            return True
        elif cmd == "NOOP":
            pass
        elif cmd == "UID":
            return self.uid(tag, args)
        else:
            self.send(f"{tag} BAD unknown command")
            return True
        self.send(f"{tag} OK {cmd} done")
        return True

    def uid(self, tag: str, args: str) -> bool:
        f = self.fake
        sub, _, rest = args.partition(" ")
        msgs = self.folder or []
        if sub.upper() == "SEARCH":
            self.send("* SEARCH " + " ".join(str(i + 1) for i in range(len(msgs))))
            self.send(f"{tag} OK SEARCH done")
            return True
        if sub.upper() != "FETCH":
            self.send(f"{tag} BAD")
            return True
        uidset, _, items = rest.partition(" ")
        with f._lock:
            f.fetches += 1
            n = f.fetches
            throttled = f.throttle_fetches > 0
            if throttled:
                f.throttle_fetches -= 1
        if throttled:
            self.send(f"{tag} NO [THROTTLED] Request is throttled. Suggested Backoff Time: 10 ms")
            return True
        hit = n >= f.bye_after_fetches if f.bye_forever else n == f.bye_after_fetches
        if f.bye_after_fetches and hit:
            self.send(f"* BYE {f.bye_text}")
            return False
        wanted = {m.upper() for m in _FETCH_ITEM.findall(items)}
        for uid in _uids(uidset, len(msgs)):
            m = msgs[uid - 1]
            parts = [f"UID {uid}"]
            if "X-GM-MSGID" in wanted:
                parts.append(f"X-GM-MSGID {m.gm_msgid}")
            if "RFC822.SIZE" in wanted:
                parts.append(f"RFC822.SIZE {len(m.raw)}")
            if "BODYSTRUCTURE" in wanted:
                parts.append('BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL '
                             f'"7bit" {len(m.raw)} 1 NIL NIL NIL NIL)')  # fmt: skip
            head = b""
            if "BODY.PEEK[HEADER]" in wanted:
                header = m.raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
                head = b" BODY[HEADER] {%d}\r\n" % len(header) + header
            seq = uid
            self.send(f"* {seq} FETCH ({' '.join(parts)}".encode() + head + b")\r\n")
        self.send(f"{tag} OK FETCH done")
        return True


def _uids(uidset: str, top: int) -> list[int]:
    out: list[int] = []
    for piece in uidset.split(","):
        lo, _, hi = piece.partition(":")
        a = top if lo == "*" else int(lo)
        b = a if not hi else (top if hi == "*" else int(hi))
        out.extend(u for u in range(min(a, b), max(a, b) + 1) if 1 <= u <= top)
    return out


def free_local_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def oauth_stack_for(user: str) -> Iterator[tuple[OAuthServer, OAuthDovecot]]:
    """Body of the tests' `oauth_stack` fixtures: the authorization server and a Dovecot
    that accepts only its tokens for `user`; skips cleanly without the binaries."""
    import pytest

    if missing_binaries():
        pytest.skip(f"server binaries missing: {', '.join(missing_binaries())}")
    server = OAuthServer(browser_user=user).start()
    try:
        dovecot = OAuthDovecot.start_oauth(f"{server.url}/introspect", {user: "unused"})
    except ServerUnavailable as exc:
        server.stop()
        pytest.skip(f"dovecot would not start: {exc}")
    try:
        yield server, dovecot
    finally:
        dovecot.cleanup()
        server.stop()
