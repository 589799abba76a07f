"""Read-only IMAP on imapclient: an account's folders, their UIDs and their headers.

Read-only is enforced twice: folders are opened with EXAMINE and fetches use `.PEEK`, and
the client itself refuses to send any command outside a short allow-list (imap_wire.py).

A folder's count is what SEARCH listed, never what FETCH happened to return: a UID the
server leaves out of a FETCH is asked for once more on its own, and what is still missing
(and still listed) is reported as unavailable, so the engine can say so instead of counting
a smaller folder. Server text is redacted of the password before it goes into any message.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import imapclient
import imapclient.exceptions

from mailstats.accounts.config import Account
from mailstats.mail.message import MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_RAW_BYTES, MimePart
from mailstats.sources import (
    AuthError,
    FetchedHeader,
    FolderInfo,
    FolderState,
    SourceError,
    decode_slice,
    redact,
    secret_forms,
    text_sections,
)
from mailstats.sources.imap_wire import (
    MAX_NUMBER,
    BadResponse,
    DeadlineExceeded,
    Limits,
    ReadOnlyIMAPClient,
    ResponseTooLarge,
    WriteRefused,
    _check_command,
    _parse_response,
    _split_responses,
    fast_fetch,
    number,
    parts_from_bodystructure,
)

__all__ = [
    "ImapSource",
    "ReadOnlyIMAPClient",
    "WriteRefused",
    "_check_command",
    "_parse_response",
    "_split_responses",
    "explain_error",
    "fast_fetch",
    "parts_from_bodystructure",
    "tls_context",
]
#: Protocol violations that surface as Python errors inside imapclient's own parsers.
_UNREADABLE = (ValueError, TypeError, IndexError, KeyError, RecursionError, OverflowError)

log = logging.getLogger(__name__)

FETCH_BATCH = 500
#: Header bytes one FETCH should bring at most: after a batch of big headers the next
#: batches ask for fewer messages (500 headers at the 256 KiB cap would be 128 MiB).
HEADER_BATCH_BYTES = 32 * 1024 * 1024
RETRIES = 3
#: Throttling: first wait after BYE/[THROTTLED]/[UNAVAILABLE], doubled per try.
BACKOFF_S = 1.0
MAX_BACKOFF_S = 120.0
_THROTTLE_RE = re.compile(
    r"\[(?:THROTTLED|UNAVAILABLE)\]|throttl|too many simultaneous|try again later", re.I
)
_SUGGESTED_RE = re.compile(r"Suggested Backoff Time:\s*(\d+)\s*(ms|milliseconds?)", re.I)


class _Throttled(SourceError):
    """The server refused a sign-in for load reasons: worth waiting for, not a password issue."""


def tls_context(account: Account) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=getattr(account, "ca_file", "") or None)
    if not account.tls_verify:
        log.warning("account %s: TLS certificate checks are OFF (tls_verify = false)", account.name)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def explain_error(exc: BaseException, account: Account) -> str:
    """Plain words for what went wrong connecting, for the CLI and the GUI alike."""
    where = f"{account.host}:{account.port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS problem with {where}: the certificate is not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS problem with {where}: {exc.reason or exc}"
    if isinstance(exc, socket.gaierror):
        return f"host not found: {account.host}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}"
    if isinstance(exc, DeadlineExceeded):
        return f"timed out talking to {where}: {exc}"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"timed out talking to {where}"
    if isinstance(exc, imapclient.exceptions.LoginError):
        return f"wrong user name or password for {account.username} at {account.host}"
    if isinstance(exc, OSError):
        return f"network problem with {where}: {exc.strerror or exc}"
    return f"{type(exc).__name__} from {where}: {exc}"


_SLOTS: dict[str, threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()


def _host_slot(host: str, limit: int) -> threading.BoundedSemaphore:
    """Connections per host stay bounded (Gmail allows 15 per account, all clients together)."""
    with _SLOTS_LOCK:
        key = host.lower()
        if key not in _SLOTS:
            _SLOTS[key] = threading.BoundedSemaphore(max(1, limit))
        return _SLOTS[key]


def _shutdown(client: ReadOnlyIMAPClient) -> None:
    try:
        client.shutdown()
    except Exception:  # noqa: BLE001 - a refused login leaves nothing worth saving
        pass


class ImapSource:
    def __init__(
        self,
        account: Account,
        password: str,
        *,
        timeout: float = 60.0,
        command_timeout: float = 300.0,
        batch_size: int = FETCH_BATCH,
        on_retry: Callable[[str], None] | None = None,
        tokens: Any = None,
        retries: int | None = None,
        backoff: float = BACKOFF_S,
        pace_s: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.account = account
        self._password = password
        self.timeout = timeout
        self.limits = Limits(idle_s=float(timeout), command_s=float(command_timeout))
        self._secrets = secret_forms(password)
        self.batch_size = batch_size
        self.on_retry = on_retry
        self.client: ReadOnlyIMAPClient | None = None
        self.folder: str | None = None
        self.stats = {"fetch_commands": 0, "headers": 0, "bodies": 0, "raw": 0, "reconnects": 0}
        # -- OAuth2, throttling, Gmail de-duplication -------- ---------------------------
        from mailstats.accounts.providers import profile_for

        prof = profile_for(getattr(account, "provider", "generic"))
        self.tokens = tokens  # mailstats.accounts.oauth.TokenManager, built on first OAuth2 login
        self.retries = retries if retries is not None else max(RETRIES, prof.retries)
        self.backoff = backoff
        self.pace_s = prof.pace_s if pace_s is None else pace_s
        self.sleep = sleep
        self._last_command = 0.0
        slot = _host_slot(account.host, prof.max_connections)
        self._gm_owner: dict[int, str] = {}  # X-GM-MSGID -> the folder that counts it
        self.stats["throttled"] = 0
        self.stats["duplicates"] = 0
        for key in ("refetched", "unavailable", "repeated", "unrequested", "unreadable"):
            self.stats[key] = 0
        self.stats["header_truncated"] = 0
        #: UIDs that a folder's SEARCH listed and FETCH did not return even when asked alone;
        #: `gone`: the ones a second SEARCH no longer lists (expunged meanwhile).
        self.unavailable: list[int] = []
        self.gone: list[int] = []
        if not slot.acquire(timeout=max(timeout, 1.0)):
            raise SourceError(
                f"too many connections open to {account.host} (limit {prof.max_connections})"
            )
        # Released by close(), or when a caller forgets close() and the source is collected.
        self._release_slot = weakref.finalize(self, slot.release)
        try:
            for attempt in range(1, self.retries + 1):
                try:
                    self._connect()
                    break
                except _Throttled as exc:  # Gmail: too many simultaneous connections
                    if attempt == self.retries:
                        raise SourceError(str(exc)) from None
                    self.stats["throttled"] += 1
                    self.sleep(min(self.backoff * 2 ** (attempt - 1), MAX_BACKOFF_S))
        except BaseException:
            self._release_slot()
            raise

    # -- connection -------------------------------------------------------------------
    def _connect(self) -> None:
        acct = self.account
        if acct.security == "none" and not _is_loopback(acct.host):
            log.warning(
                "account %s: plain IMAP to %s: the password and all mail cross the network "
                'unencrypted (security = "none")',
                acct.name,
                acct.host,
            )
        try:
            bounds = {"limits": self.limits, "secrets": self._secrets, "timeout": self.timeout}
            if acct.security == "ssl":
                client = ReadOnlyIMAPClient(
                    acct.host, port=acct.port, ssl=True, ssl_context=tls_context(acct), **bounds
                )
            else:
                client = ReadOnlyIMAPClient(acct.host, port=acct.port, ssl=False, **bounds)
                if acct.security == "starttls":
                    client.starttls(tls_context(acct))
            self._login(client)
        except imapclient.exceptions.LoginError as exc:
            if _THROTTLE_RE.search(str(exc)):  # Gmail: "Too many simultaneous connections"
                text = self._clean(f"{acct.host} is throttling sign-ins: {exc}")
                raise _Throttled(text) from None
            raise AuthError(explain_error(exc, acct)) from None
        except (OSError, imapclient.exceptions.IMAPClientError) as exc:
            raise SourceError(self._clean(explain_error(exc, acct))) from None
        except _UNREADABLE as exc:
            raise BadResponse(self._unreadable("signing in", exc)) from None
        self.client = client

    def _clean(self, text: str) -> str:
        """Server text made safe to show, log or store: the password never in it."""
        return redact(text, self._secrets)

    def _unreadable(self, what: str, exc: BaseException) -> str:
        return self._clean(
            f"{what}: the server sent a response mailstats cannot read "
            f"({type(exc).__name__}: {str(exc)[:200]})"
        )

    def _drop(self) -> None:
        try:
            if self.client is not None:
                self.client.shutdown()
        except Exception:  # noqa: BLE001 - the old socket is dead anyway
            pass
        self.client = None

    def _reconnect(self) -> None:
        self.stats["reconnects"] += 1
        self._drop()
        self._connect()
        if self.folder is not None:
            self.client.select_folder(self.folder, readonly=True)  # type: ignore[union-attr]

    def _retrying(self, what: str, fn: Callable[[], Any]) -> Any:
        """Bounded retries with backoff after a dropped connection, BYE or throttling.

        A `NO [THROTTLED]` keeps the connection and waits (the server's suggested backoff
        when it names one); BYE and socket errors reconnect, re-select the folder and redo
        the whole command, so a batch is never half-stored. Errors stay readable.
        """
        delay = self.backoff
        attempt = 0
        while True:
            attempt += 1
            reconnect = True
            try:
                if self.client is None:
                    self._reconnect()
                self._pace()
                return fn()
            except ResponseTooLarge as exc:  # asking again would only be flooded again
                self._drop()
                raise BadResponse(self._clean(f"{what} failed: {exc}")) from None
            except BadResponse:
                self._drop()  # the rest of that answer may still be on its way
                raise
            except (WriteRefused, AuthError):
                raise
            except SourceError as exc:  # reconnecting failed; counts as a try
                problem = str(exc)
            except (OSError, imapclient.exceptions.IMAPClientAbortError, ssl.SSLError) as exc:
                problem = explain_error(exc, self.account)
                if isinstance(exc, imapclient.exceptions.IMAPClientAbortError):
                    problem = f"server closed the connection ({exc})"
            except imapclient.exceptions.IMAPClientError as exc:
                if not _THROTTLE_RE.search(str(exc)):
                    raise SourceError(self._clean(f"{what} failed: {exc}")) from None
                self.stats["throttled"] += 1
                problem, reconnect = f"server is throttling ({exc})", False
                hint = _SUGGESTED_RE.search(str(exc))
                if hint:
                    delay = max(delay, int(hint[1]) / 1000.0)
            except _UNREADABLE as exc:  # the same answer again would fail the same way
                self._drop()
                raise BadResponse(self._unreadable(what, exc)) from None
            problem = self._clean(problem)
            if attempt >= self.retries:
                raise SourceError(f"{what} failed after {attempt} tries: {problem}") from None
            msg = f"{what}: {problem}; retry {attempt} in {min(delay, MAX_BACKOFF_S):.1f} s"
            log.warning(msg)
            if self.on_retry:
                self.on_retry(msg)
            if reconnect:
                self._drop()
            self.sleep(min(delay, MAX_BACKOFF_S))
            delay *= 2

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.logout()
            except Exception:  # noqa: BLE001 - closing a dead connection is not an error
                pass
            self.client = None
        if hasattr(self, "_release_slot"):
            self._release_slot()  # runs once however often close() is called

    # -- sign-in, pacing, Gmail labels --------- ----------------------------------------
    def _login(self, client: ReadOnlyIMAPClient) -> None:
        """Password LOGIN, or SASL XOAUTH2/OAUTHBEARER with a token refreshed on refusal."""
        acct = self.account
        if getattr(acct, "auth", "password") != "oauth2":
            client.login(acct.username, self._password)
            return
        from mailstats.accounts.oauth import TokenManager

        if self.tokens is None:
            self.tokens = TokenManager(acct)
        mech = self.tokens.endpoints.sasl
        for attempt in (1, 2):
            try:
                token = self.tokens.access_token()  # SignInRequired is an AuthError
                if mech == "OAUTHBEARER":
                    client.oauthbearer_login(acct.username, token)
                else:
                    client.oauth2_login(acct.username, token, mech=mech)
                return
            except imapclient.exceptions.LoginError as exc:
                if _THROTTLE_RE.search(str(exc)):
                    raise
                if attempt == 2:
                    _shutdown(client)
                    raise AuthError(
                        f"account '{acct.name}': {acct.host} refused the OAuth2 token for "
                        f"{acct.username} ({exc}); sign in again"
                    ) from None
                self.tokens.invalidate()  # expired early or revoked: one fresh token
            except AuthError:
                _shutdown(client)
                raise

    def _pace(self) -> None:
        """At most one command per `pace_s` (provider request limits)."""
        if self.pace_s > 0:
            wait = self._last_command + self.pace_s - time.monotonic()
            if wait > 0:
                self.sleep(wait)
        self._last_command = time.monotonic()

    @property
    def gmail_dedup(self) -> bool:
        """Gmail shows one message in every label's folder; X-GM-MSGID tells them apart."""
        if self.client is None:
            return False
        try:
            return self.client.has_capability("X-GM-EXT-1")
        except Exception:  # noqa: BLE001 - no capability list means no extension
            return False

    def _gmail_unique(self, folder: str, uids: list[int]) -> list[int]:
        """The folder's UIDs whose message no earlier-opened folder already counts.

        The first folder opened owns a message (the engine opens sent, then ham, then
        spam folders), and re-opening the same folder gives the same answer.
        """
        keep: list[int] = []
        for i in range(0, len(uids), self.batch_size * 4):
            batch = uids[i : i + self.batch_size * 4]
            data = self._fetch(batch, ["X-GM-MSGID"], f"reading Gmail ids in {folder}")
            for uid in batch:
                gm = (data.get(uid) or {}).get(b"X-GM-MSGID")
                if gm is None or self._gm_owner.setdefault(int(gm), folder) == folder:
                    keep.append(uid)
        self.stats["duplicates"] += len(uids) - len(keep)
        return keep

    # -- folders ----------------------------------------------------------------------
    def list_folders(self) -> list[FolderInfo]:
        def do() -> list[FolderInfo]:
            assert self.client is not None
            out = []
            for flags, delim, name in self.client.list_folders():
                out.append(
                    FolderInfo(
                        name=name,
                        flags=tuple(f.decode() if isinstance(f, bytes) else str(f) for f in flags),
                        delimiter=(delim.decode() if isinstance(delim, bytes) else delim) or "",
                    )
                )
            return out

        return self._retrying("listing folders", do)

    def folder_counts(self, names: list[str]) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for name in names:
            try:
                st = self._retrying(
                    f"STATUS {name}",
                    lambda n=name: self.client.folder_status(n, [b"MESSAGES"]),  # type: ignore[union-attr]
                )
                out[name] = int(st.get(b"MESSAGES", 0))
            except SourceError:
                out[name] = None
        return out

    def open_folder(self, folder: str) -> FolderState:
        def do() -> FolderState:
            assert self.client is not None
            info = self.client.select_folder(folder, readonly=True)
            uids = self.client.search("ALL")
            validity = info.get(b"UIDVALIDITY")
            return FolderState(
                0 if validity is None else number(validity, f"UIDVALIDITY for {folder}"),
                _uid_list(uids, folder),
            )

        self.folder = folder
        self.unavailable, self.gone = [], []
        state = self._retrying(f"opening {folder}", do)
        if self.gmail_dedup:
            state.uids = self._gmail_unique(folder, state.uids)
        return state

    # -- fetches ----------------------------------------------------------------------
    def _fetch(
        self, uids: list[int], items: list[str], what: str, cut: set[int] | None = None
    ) -> dict[int, dict]:
        def do() -> dict[int, dict]:
            assert self.client is not None
            self.stats["fetch_commands"] += 1
            return fast_fetch(self.client, uids, items, self.stats, cut)

        return self._retrying(what, do)

    def _still_listed(self, uids: list[int]) -> set[int]:
        """Which of `uids` the open folder still lists (the rest were expunged meanwhile)."""

        def do() -> set[int]:
            assert self.client is not None
            found = self.client.search(["UID", ",".join(str(u) for u in uids)])
            return {u for u in found if isinstance(u, int)}

        return self._retrying(f"listing {self.folder} again", do) & set(uids)

    def fetch_headers(self, uids: list[int]) -> Iterator[FetchedHeader]:
        """Headers of `uids`; what FETCH leaves out is asked for again one UID at a time.

        UIDs still missing then are looked up once more: those the folder no longer lists
        go to `gone` (expunged meanwhile), the others to `unavailable`. A header literal the
        server sent longer than asked for is kept up to MAX_HEADER_BYTES and counted.
        """
        items = [f"BODY.PEEK[HEADER]<0.{MAX_HEADER_BYTES}>", "BODYSTRUCTURE", "RFC822.SIZE"]
        what = f"fetching headers from {self.folder}"
        size, i = self.batch_size, 0
        while i < len(uids):
            batch = uids[i : i + size]
            i += len(batch)
            cut: set[int] = set()
            data = self._fetch(batch, items, what, cut)
            missing = [u for u in batch if u not in data]
            for uid in missing:
                self.stats["refetched"] += 1
                data.update(self._fetch([uid], items, what, cut))
            lost = [u for u in missing if u not in data]
            if lost:
                listed = self._still_listed(lost)
                self.gone += [u for u in lost if u not in listed]
                self.unavailable += [u for u in lost if u in listed]
                self.stats["unavailable"] += len(listed)
                log.info(
                    "%s: %d of %d messages listed were not returned by FETCH",
                    self.folder,
                    len(listed),
                    len(batch),
                )
            got = sum(len(_header_of(v)) for v in data.values())
            fits = HEADER_BATCH_BYTES * max(len(data), 1) // max(got, 1)
            size = max(1, min(self.batch_size, fits))
            for uid in batch:
                item = data.pop(uid, None)  # let go of each header as the caller takes it
                if item is None:
                    continue
                # capped at the source: a hostile 1 MB header never fills a batch in memory
                header = _header_of(item)
                if uid in cut or len(header) >= MAX_HEADER_BYTES:
                    self.stats["header_truncated"] += 1
                try:
                    parts = parts_from_bodystructure(item.get(b"BODYSTRUCTURE"))
                except Exception:  # noqa: BLE001 - garbage BODYSTRUCTURE means "unknown"
                    parts = None
                self.stats["headers"] += 1
                yield FetchedHeader(uid, header, parts, item.get(b"RFC822.SIZE"))

    def fetch_bodies(self, wanted: dict[int, list[MimePart]]) -> dict[int, tuple[bytes, bool]]:
        """First MAX_BODY_BYTES of the first text/plain and text/html part of each message."""
        by_sections: dict[tuple[str, ...], list[int]] = {}
        chosen: dict[int, list[MimePart]] = {}
        for uid, parts in wanted.items():
            secs = text_sections(parts)
            chosen[uid] = secs
            if secs:
                by_sections.setdefault(tuple(p.section or "1" for p in secs), []).append(uid)
        out: dict[int, tuple[bytes, bool]] = {uid: (b"", False) for uid in wanted}
        for sections, uids in by_sections.items():
            items = [f"BODY.PEEK[{s}]<0.{MAX_BODY_BYTES}>" for s in sections]
            keys = [f"BODY[{s}]<0>".encode() for s in sections]
            for i in range(0, len(uids), self.batch_size):
                batch = uids[i : i + self.batch_size]
                data = self._fetch(batch, items, f"fetching body text from {self.folder}")
                for uid in batch:
                    item = data.get(uid, {})
                    texts = []
                    for part, key in zip(chosen[uid], keys, strict=True):
                        raw = item.get(key) or b""
                        texts.append(decode_slice(raw, part.encoding, part.charset))
                    self.stats["bodies"] += 1
                    out[uid] = ("\n".join(texts).encode("utf-8", "replace"), False)
        return out

    def fetch_raw(self, uids: list[int]) -> dict[int, tuple[bytes, bool]]:
        out: dict[int, tuple[bytes, bool]] = {}
        for i in range(0, len(uids), 50):
            batch = uids[i : i + 50]
            data = self._fetch(
                batch,
                [f"BODY.PEEK[]<0.{MAX_RAW_BYTES}>", "RFC822.SIZE"],
                f"fetching messages from {self.folder}",
            )
            for uid in batch:
                item = data.get(uid, {})
                raw = item.get(b"BODY[]<0>") or item.get(b"BODY[]") or b""
                size = item.get(b"RFC822.SIZE") or len(raw)
                self.stats["raw"] += 1
                out[uid] = (raw, size > len(raw))
        return out


def _uid_list(uids: list[Any], folder: str) -> list[int]:
    """SEARCH's UIDs sorted and checked as `number` checks each (100k of them one call at a
    time were a tenth of a re-run): ints in range pass as a whole; else each is checked,
    so the error names the one that is not a UID."""
    unique = set(uids)
    if set(map(type, unique)) == {int} and min(unique) >= 1 and max(unique) <= MAX_NUMBER:
        return sorted(unique)
    return sorted({number(u, f"a UID in {folder}") for u in unique})


def _header_of(item: dict[bytes, Any]) -> bytes:
    return item.get(b"BODY[HEADER]<0>") or item.get(b"BODY[HEADER]") or b""


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
