"""Read-only IMAP on imapclient.

Read-only is enforced twice: folders are opened with EXAMINE and fetches use `.PEEK`, and
the client itself refuses to send any command outside a short allow-list (and any FETCH that
would set \\Seen) before a byte goes on the wire. A user pointing this at ten years of mail
must never have to trust that every code path remembered to be careful.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import imapclient
import imapclient.exceptions

from mailstats.config import Account
from mailstats.mail.message import MAX_BODY_BYTES, MAX_RAW_BYTES, MimePart
from mailstats.sources import (
    AuthError,
    FetchedHeader,
    FolderInfo,
    FolderState,
    SourceError,
    decode_slice,
    text_sections,
)

log = logging.getLogger(__name__)

READ_COMMANDS = frozenset(
    {
        "LOGIN",
        "AUTHENTICATE",
        "CAPABILITY",
        "LIST",
        "STATUS",
        "EXAMINE",
        "SEARCH",
        "FETCH",
        "NOOP",
        "LOGOUT",
        "STARTTLS",
        "ID",
        "ENABLE",
    }
)
_SEEN_SETTING = re.compile(rb"BODY\[|RFC822(?!\.SIZE|\.HEADER)\b", re.IGNORECASE)
FETCH_BATCH = 500
RETRIES = 3


class WriteRefused(SourceError):
    """The code tried to send a command that could change the mailbox."""


def _check_command(name: str, args: tuple[Any, ...]) -> None:
    name = name.upper()
    if name == "UID":
        sub = (args[0] if args else "").upper()
        sub = sub.decode() if isinstance(sub, bytes) else sub
        if sub not in ("FETCH", "SEARCH"):
            raise WriteRefused(f"refusing to send UID {sub}: mailstats is read-only")
        name, args = sub, args[1:]
    if name not in READ_COMMANDS:
        raise WriteRefused(f"refusing to send {name}: mailstats is read-only")
    if name == "FETCH":
        for a in args:
            blob = a if isinstance(a, bytes) else str(a).encode()
            if _SEEN_SETTING.search(blob.replace(b"BODY.PEEK[", b"")):
                raise WriteRefused("refusing a FETCH that would set \\Seen (use .PEEK)")


class ReadOnlyIMAPClient(imapclient.IMAPClient):
    """IMAPClient that can only read; both of its command paths are guarded."""

    def _create_IMAP4(self):  # noqa: N802 - imapclient's name
        imap = super()._create_IMAP4()
        original = imap._command

        def guarded(name: str, *args: Any) -> Any:
            _check_command(name, args)
            return original(name, *args)

        imap._command = guarded
        return imap

    def _raw_command(self, command: bytes, args: Any, uid: bool = True) -> Any:
        name = command.decode() if isinstance(command, bytes) else str(command)
        _check_command(name, tuple(args) if isinstance(args, list | tuple) else (args,))
        return super()._raw_command(command, args, uid=uid)


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
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"timed out talking to {where}"
    if isinstance(exc, imapclient.exceptions.LoginError):
        return f"wrong user name or password for {account.username} at {account.host}"
    if isinstance(exc, OSError):
        return f"network problem with {where}: {exc.strerror or exc}"
    return f"{type(exc).__name__} from {where}: {exc}"


class ImapSource:
    def __init__(
        self,
        account: Account,
        password: str,
        *,
        timeout: float = 60.0,
        batch_size: int = FETCH_BATCH,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.account = account
        self._password = password
        self.timeout = timeout
        self.batch_size = batch_size
        self.on_retry = on_retry
        self.client: ReadOnlyIMAPClient | None = None
        self.folder: str | None = None
        self.stats = {"fetch_commands": 0, "headers": 0, "bodies": 0, "raw": 0, "reconnects": 0}
        self._connect()

    # -- connection -------------------------------------------------------------------
    def _connect(self) -> None:
        acct = self.account
        try:
            if acct.security == "ssl":
                client = ReadOnlyIMAPClient(
                    acct.host,
                    port=acct.port,
                    ssl=True,
                    ssl_context=tls_context(acct),
                    timeout=self.timeout,
                )
            else:
                client = ReadOnlyIMAPClient(
                    acct.host, port=acct.port, ssl=False, timeout=self.timeout
                )
                if acct.security == "starttls":
                    client.starttls(tls_context(acct))
            client.login(acct.username, self._password)
        except imapclient.exceptions.LoginError as exc:
            raise AuthError(explain_error(exc, acct)) from None
        except (OSError, imapclient.exceptions.IMAPClientError) as exc:
            raise SourceError(explain_error(exc, acct)) from None
        self.client = client

    def _reconnect(self) -> None:
        self.stats["reconnects"] += 1
        try:
            if self.client is not None:
                self.client.shutdown()
        except Exception:  # noqa: BLE001 - the old socket is dead anyway
            pass
        self.client = None
        self._connect()
        if self.folder is not None:
            self.client.select_folder(self.folder, readonly=True)  # type: ignore[union-attr]

    def _retrying(self, what: str, fn: Callable[[], Any]) -> Any:
        """Bounded retries with backoff for dropped connections; errors stay readable."""
        delay = 1.0
        for attempt in range(1, RETRIES + 1):
            try:
                return fn()
            except WriteRefused:
                raise
            except (OSError, imapclient.exceptions.AbortError, ssl.SSLError) as exc:
                if attempt == RETRIES:
                    raise SourceError(
                        f"{what} failed after {RETRIES} tries: {explain_error(exc, self.account)}"
                    ) from None
                msg = f"{what}: connection lost ({type(exc).__name__}); retry {attempt}"
                log.warning(msg)
                if self.on_retry:
                    self.on_retry(msg)
                time.sleep(delay)
                delay *= 2
                try:
                    self._reconnect()
                except SourceError as rexc:
                    if attempt + 1 == RETRIES:
                        raise SourceError(f"{what} failed: {rexc}") from None
            except imapclient.exceptions.IMAPClientError as exc:
                raise SourceError(f"{what} failed: {exc}") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.logout()
            except Exception:  # noqa: BLE001 - closing a dead connection is not an error
                pass
            self.client = None

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
            return FolderState(int(info.get(b"UIDVALIDITY", 0)), sorted(int(u) for u in uids))

        self.folder = folder
        return self._retrying(f"opening {folder}", do)

    # -- fetches ----------------------------------------------------------------------
    def _fetch(self, uids: list[int], items: list[str], what: str) -> dict[int, dict]:
        def do() -> dict[int, dict]:
            assert self.client is not None
            self.stats["fetch_commands"] += 1
            return self.client.fetch(uids, items)

        return self._retrying(what, do)

    def fetch_headers(self, uids: list[int]) -> Iterator[FetchedHeader]:
        for i in range(0, len(uids), self.batch_size):
            batch = uids[i : i + self.batch_size]
            data = self._fetch(
                batch,
                ["BODY.PEEK[HEADER]", "BODYSTRUCTURE", "RFC822.SIZE"],
                f"fetching headers from {self.folder}",
            )
            for uid in batch:
                item = data.get(uid)
                if item is None:
                    continue  # expunged meanwhile: the next run will not list it
                header = item.get(b"BODY[HEADER]") or b""
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


def _s(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _params(value: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(value, tuple | list):
        for k, v in zip(value[0::2], value[1::2], strict=False):
            out[_s(k).lower()] = _s(v)
    return out


def _disposition(value: Any) -> tuple[str, dict[str, str]]:
    if isinstance(value, tuple | list) and value:
        return _s(value[0]).lower(), _params(value[1] if len(value) > 1 else None)
    return "", {}


def parts_from_bodystructure(bs: Any, prefix: str = "") -> list[MimePart] | None:
    """imapclient's BODYSTRUCTURE tuples -> leaf MimeParts with their IMAP sections."""
    if bs is None:
        return None
    out: list[MimePart] = []
    _walk(bs, prefix, out, depth=0)
    return out


def _walk(bs: Any, section: str, out: list[MimePart], depth: int) -> None:
    if depth > 50 or len(out) > 500:
        return
    if isinstance(bs[0], list | tuple) and not isinstance(bs[0], bytes | str):
        # multipart: (part, part, ..., subtype, ext...). imapclient groups parts in bs[0].
        children = bs[0] if isinstance(bs[0], list) else [p for p in bs if isinstance(p, tuple)]
        for n, child in enumerate(children, 1):
            _walk(child, f"{section}.{n}" if section else str(n), out, depth + 1)
        return
    ctype = f"{_s(bs[0]).lower()}/{_s(bs[1]).lower()}"
    params = _params(bs[2]) if len(bs) > 2 else {}
    encoding = _s(bs[5]).lower() if len(bs) > 5 else ""
    size = bs[6] if len(bs) > 6 and isinstance(bs[6], int) else 0
    # Extension data starts after the basic fields: 7, +1 for text (lines), +3 for rfc822.
    base = 7
    if ctype.startswith("text/"):
        base = 8
    elif ctype == "message/rfc822":
        base = 10
    disp, dparams = _disposition(bs[base + 1]) if len(bs) > base + 1 else ("", {})
    filename = dparams.get("filename") or params.get("name") or ""
    out.append(
        MimePart(
            content_type=ctype,
            disposition=disp,
            filename=filename,
            size=size,
            charset=params.get("charset", ""),
            section=section or "1",
            encoding=encoding,
        )
    )
