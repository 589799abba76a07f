"""IMAP on the wire: the read-only guard, bounded reads and a fast FETCH reader.

Everything a server sends is untrusted, so this layer bounds it before anything else sees it:

- every command has an overall deadline and every read an inactivity timeout, so a server
  that sends one byte per second, or never stops sending, cannot hold a run forever;
- a literal is read in chunks and only its first `literal_cap` bytes are kept, whatever
  size the server announces, and the bytes held for one command are bounded, so memory
  stays bounded when a server ignores the `<0.N>` partial fetch or floods responses;
- numbers that name messages (UID, UIDVALIDITY) are checked as RFC 3501 defines them
  (nz-number, 32 bits), and nesting in a FETCH response is bounded;
- what imaplib logs at DEBUG level goes through the account's redaction first.

The guard refuses any command outside a short allow-list (and any FETCH that would set
\\Seen) before a byte goes on the wire: a user pointing this at ten years of mail must never
have to trust that every code path remembered to be careful.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import imapclient
import imapclient.exceptions
from imapclient import imap4, tls
from imapclient.response_types import BodyData

from mailstats.mail.message import MAX_HEADER_BYTES, MimePart
from mailstats.sources import SourceError, redact

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
#: RFC 3501 nz-number / number: 32 bits.
MAX_NUMBER = 2**32 - 1
#: Nesting deeper than this in a FETCH response is replaced by NIL (BODYSTRUCTURE unknown).
MAX_NESTING = 100
MIB = 1024 * 1024
#: What one command other than FETCH may make us hold (a SEARCH of 1M UIDs is ~8 MiB).
HELD_BYTES = 32 * MIB
#: Bytes counted per line or literal on top of its length: Python's own cost of keeping it.
_PIECE_COST = 64
_CHUNK = 65536

_wire_log = logging.getLogger("imapclient.imaplib")


class WriteRefused(SourceError):
    """The code tried to send a command that could change the mailbox."""


class BadResponse(SourceError):
    """The server sent something RFC 3501 does not allow: asking again will not help."""


class DeadlineExceeded(TimeoutError):
    """A command took longer than its overall bound, or a read waited too long."""


class ResponseTooLarge(BadResponse):
    """The server sent more in answer to one command than mailstats will hold.

    Not one of imaplib's errors, which imaplib re-wraps: this one must reach the source
    as it is, so the connection is dropped and the command is not asked again.
    """


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


def number(value: Any, what: str, *, nonzero: bool = True) -> int:
    """An RFC 3501 (nz-)number, or BadResponse naming what it was meant to be."""
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
    low = 1 if nonzero else 0
    if isinstance(value, bool) or not text.isascii() or not text.isdigit():
        raise BadResponse(f"the server sent {what}: {text[:40]!r}, which is not a number")
    n = int(text) if len(text) <= 12 else MAX_NUMBER + 1
    if not low <= n <= MAX_NUMBER:
        raise BadResponse(
            f"the server sent {what}: {text[:40]}, outside 1 to {MAX_NUMBER} (RFC 3501: 32 bits)"
        )
    return n


def _is_number(value: Any, nonzero: bool = True) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and (1 if nonzero else 0) <= value <= MAX_NUMBER
    )


@dataclass(frozen=True)
class Limits:
    """Time and memory bounds for one connection (settings imap_timeout, imap_command_timeout)."""

    idle_s: float = 60.0  # a read that receives nothing for this long fails
    command_s: float = 300.0  # a command whose whole answer takes longer fails
    literal_cap: int = MAX_HEADER_BYTES  # bytes kept of one literal unless a FETCH says more
    held_bytes: int = HELD_BYTES


class _Bounded:
    """imaplib's `read`/`readline` over the raw socket, under a deadline and byte bounds.

    imaplib reads through a buffered file whose reads wait for one byte at a time without
    any overall bound, and takes a literal whole (`read(size)` with the server's size).
    Here every `recv` waits at most the inactivity timeout and never past the command's
    deadline, a literal keeps at most `literal_cap` bytes (the rest is read and dropped),
    and what one command makes us hold is counted.
    """

    sock: Any
    untagged_responses: dict[str, list[Any]]
    abort: type[Exception]

    def __init__(self, *args: Any, limits: Limits, secrets: Iterable[str] = (), **kw: Any):
        self.limits = limits
        self.secrets = tuple(secrets)
        self.literal_cap = limits.literal_cap
        self.truncated = 0  # literals longer than the cap, cut
        self._buf = bytearray()
        self._buf_sock: Any = None
        self._held = 0
        self._held_limit = limits.held_bytes
        self._next: tuple[int, int] | None = None
        self._what = "the greeting"
        self.what = "a command"  # the name of the command about to start
        self._deadline = time.monotonic() + limits.command_s
        super().__init__(*args, **kw)

    def expect(self, literal_cap: int, held_bytes: int) -> None:
        """Bounds for the next command only (a FETCH knows how much it asked for)."""
        self._next = (literal_cap, held_bytes)

    def _command(self, name: str, *args: Any) -> Any:
        _check_command(name, args)
        self.what = name if name != "UID" or not args else f"UID {args[0]}"
        return super()._command(name, *args)  # type: ignore[misc]

    def _new_tag(self) -> bytes:
        """Every command starts here, imaplib's and imapclient's own (SEARCH): new bounds."""
        cap, held = self._next or (self.limits.literal_cap, self.limits.held_bytes)
        self._next = None
        self.literal_cap, self._held_limit, self._held = cap, held, 0
        self._what, self.what = self.what, "a command"
        self._deadline = time.monotonic() + self.limits.command_s
        # Untagged data a server sent unasked stays in imaplib's dict forever otherwise.
        for key in [k for k in self.untagged_responses if k != "CAPABILITY"]:
            del self.untagged_responses[key]
        return super()._new_tag()  # type: ignore[misc]

    def _fill(self) -> bool:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise self._late()
        self.sock.settimeout(max(0.001, min(self.limits.idle_s, remaining)))
        try:
            data = self.sock.recv(_CHUNK)
        except TimeoutError:
            if time.monotonic() >= self._deadline:
                raise self._late() from None
            raise DeadlineExceeded(
                f"the server sent nothing for {self.limits.idle_s:g} s (imap_timeout)"
            ) from None
        if not data:
            return False
        self._buf += data
        return True

    def _late(self) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"no complete answer to {self._what} within {self.limits.command_s:g} s "
            "(imap_command_timeout)"
        )

    def _hold(self, n: int) -> None:
        self._held += n + _PIECE_COST
        if self._held > self._held_limit:
            raise ResponseTooLarge(
                f"the server sent more than {self._held_limit // MIB} MiB in answer to "
                f"{self._what}"
            )

    def _check_sock(self) -> None:
        if self._buf_sock is not self.sock:  # STARTTLS: nothing read in plain text is kept
            self._buf.clear()
            self._buf_sock = self.sock

    def readline(self) -> bytes:
        self._check_sock()
        buf = self._buf
        start = 0
        while True:
            i = buf.find(b"\n", start)
            if i >= 0:
                line = bytes(buf[: i + 1])
                del buf[: i + 1]
                self._hold(len(line))
                return line
            if len(buf) > self._held_limit:
                self._hold(len(buf))
            start = len(buf)
            if not self._fill():
                line = bytes(buf)  # imaplib turns a missing CRLF or nothing into an abort
                buf.clear()
                return line

    def read(self, size: int) -> bytes:
        self._check_sock()
        buf = self._buf
        keep = min(size, max(self.literal_cap, 0))
        while len(buf) < keep:
            if not self._fill():
                raise self.abort("the server closed the connection in the middle of a literal")
        data = bytes(buf[:keep])
        del buf[:keep]
        self._hold(keep)
        drop = size - keep
        if drop:
            self.truncated += 1
        while drop:
            if buf:
                n = min(drop, len(buf))
                del buf[:n]
                drop -= n
                continue
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise self._late()
            self.sock.settimeout(max(0.001, min(self.limits.idle_s, remaining)))
            try:
                chunk = self.sock.recv(min(_CHUNK, drop))
            except TimeoutError:
                raise self._late() if time.monotonic() >= self._deadline else DeadlineExceeded(
                    f"the server sent nothing for {self.limits.idle_s:g} s (imap_timeout)"
                ) from None
            if not chunk:
                raise self.abort("the server closed the connection in the middle of a literal")
            drop -= len(chunk)
        return data


class _PlainIMAP4(_Bounded, imap4.IMAP4WithTimeout):
    pass


class _TlsIMAP4(_Bounded, tls.IMAP4_TLS):
    pass


class ReadOnlyIMAPClient(imapclient.IMAPClient):
    """IMAPClient that can only read, under `Limits`; both of its command paths are guarded."""

    def __init__(
        self, *args: Any, limits: Limits | None = None, secrets: Iterable[str] = (), **kw: Any
    ) -> None:
        self._limits = limits or Limits()
        self._secrets = tuple(secrets)
        super().__init__(*args, **kw)
        # imapclient sends imaplib's debug lines to a LoggerAdapter that takes one argument
        # (imaplib's print_log passes two: a "--- Logging error ---" on every abort) and
        # that knows nothing of what a server may echo back.
        adapter = self._imap._mesg
        secrets_ = self._secrets

        def mesg(s: Any, secs: float | None = None) -> None:
            adapter(redact(s if isinstance(s, str) else repr(s), secrets_))

        self._imap._mesg = mesg
        # imaplib's level 5 formats a repr of every literal (200 MB of strings for 400 hostile
        # 256 KiB headers, and the header text in the log); 4 logs lines and commands only.
        self._imap.debug = 4 if _wire_log.isEnabledFor(logging.DEBUG) else 0

    def _create_IMAP4(self):  # noqa: N802 - imapclient's name
        if self.stream:
            raise SourceError("IMAP over a command's standard streams is not supported")
        connect_timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            return _TlsIMAP4(
                self.host,
                self.port,
                self.ssl_context,
                connect_timeout,
                limits=self._limits,
                secrets=self._secrets,
            )
        return _PlainIMAP4(
            self.host, self.port, connect_timeout, limits=self._limits, secrets=self._secrets
        )

    def _raw_command(self, command: bytes, args: Any, uid: bool = True) -> Any:
        name = command.decode() if isinstance(command, bytes) else str(command)
        _check_command(name, tuple(args) if isinstance(args, list | tuple) else (args,))
        self.has_capability("LITERAL+")  # imapclient asks first; may send CAPABILITY
        self._imap.what = f"UID {name}" if uid else name
        return super()._raw_command(command, args, uid=uid)


# -- BODYSTRUCTURE -> MIME parts ------------------------------------------------------------


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
    size = bs[6] if len(bs) > 6 and _is_number(bs[6], nonzero=False) else 0
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


# -- a FETCH response reader ---------------------------------------------------------------
# imapclient lexes responses token by token in Python, which costs more than everything else
# in a header fetch (measured: ~75 % of the bare-fetch time on a local Dovecot). Header
# fetches are nearly all literal bytes plus a few atoms, so a regex tokenizer over the
# non-literal text, with literals taken as they come from imaplib, does the same job in a
# fraction of the time. The command still goes through the read-only guard.

#: A FETCH response's tokens as whole byte strings (findall: no match object per token):
#: "(", ")", a quoted string with its quotes, a literal's "{n}" ending the text, an atom
#: (with a section "[...]" and a partial "<n>"), or any other character, which is garbage.
_TOKEN_TEXT = re.compile(
    rb'\(|\)|"(?:[^"\\]|\\.)*"|\{\d+\}\s*$|[^\s()"\[]+(?:\[[^\]]*\](?:<\d+>)?)?|\S'
)
_LITERAL_TOKEN = re.compile(rb"\{\d+\}\s*")
_FETCH_START = re.compile(rb"^\d+ \(")  # imaplib has already stripped "* " and "FETCH"
_UNQUOTE = re.compile(rb"\\(.)")
_PARTIAL = re.compile(r"<\d+\.(\d+)>")
_LITERAL_SIZE = re.compile(rb"\{(\d+)\}\s*$")


def literal_cap_for(items: list[str]) -> int:
    """The largest partial length a FETCH asks for (`<0.N>`): no literal may be longer."""
    sizes = [int(m[1]) for item in items for m in [_PARTIAL.search(item)] if m]
    return max(sizes, default=MAX_HEADER_BYTES)


def fast_fetch(
    client: imapclient.IMAPClient,
    uids: list[int],
    items: list[str],
    counts: dict[str, int] | None = None,
    cut: set[int] | None = None,
) -> dict[int, dict]:
    """UID FETCH -> {uid: {b"KEY": value}} in imapclient's shape (BODYSTRUCTURE as BodyData).

    Only UIDs that were asked for come back, each once (the first answer wins). `counts`
    gets "repeated", "unrequested" and "unreadable" answers; `cut` the UIDs whose literal
    the server sent longer than it was asked for (kept up to the cap).
    """
    if not uids:
        return {}
    counts = counts if counts is not None else {}
    imap = client._imap
    cap = literal_cap_for(items)
    if hasattr(imap, "expect"):
        imap.expect(cap, len(uids) * (cap + 16384) + MIB)
    uid_set = ",".join(str(u) for u in uids)
    tag = imap._command("UID", "FETCH", uid_set, "(" + " ".join(items) + ")")
    typ, data = imap._command_complete("FETCH", tag)
    if typ != "OK":
        raise imapclient.exceptions.IMAPClientError(f"FETCH failed: {data!r}")
    typ, data = imap._untagged_response(typ, data, "FETCH")
    asked = set(uids)
    out: dict[int, dict] = {}
    for response in _split_responses(data):
        try:
            values = _parse_response(response)
        except (ValueError, IndexError):
            counts["unreadable"] = counts.get("unreadable", 0) + 1
            continue  # an unparseable response is treated as a message not returned
        uid = values.get(b"UID")
        if not _is_number(uid) or uid not in asked:
            if uid is not None or b"FLAGS" not in values:  # a bare FLAGS update is normal
                counts["unrequested"] = counts.get("unrequested", 0) + 1
            continue
        if uid in out:
            counts["repeated"] = counts.get("repeated", 0) + 1
            continue
        if b"BODYSTRUCTURE" in values:
            values[b"BODYSTRUCTURE"] = _body_data(values[b"BODYSTRUCTURE"])
        if b"RFC822.SIZE" in values and not _is_number(values[b"RFC822.SIZE"], nonzero=False):
            values[b"RFC822.SIZE"] = None
        if cut is not None and _was_cut(response):
            cut.add(uid)
        out[uid] = values
    return out


def _body_data(value: Any) -> Any:
    if not isinstance(value, tuple):
        return None
    try:
        return BodyData.create(value)
    except Exception:  # noqa: BLE001 - garbage BODYSTRUCTURE means "unknown"
        return None


def _was_cut(pieces: list[bytes | tuple[bytes, bytes]]) -> bool:
    for piece in pieces:
        if isinstance(piece, tuple):
            m = _LITERAL_SIZE.search(piece[0])
            if m and int(m[1]) > len(piece[1]):
                return True
    return False


def _split_responses(data: list[Any]) -> Iterator[list[bytes | tuple[bytes, bytes]]]:
    """imaplib's FETCH data list, grouped into one list of pieces per message."""
    current: list[bytes | tuple[bytes, bytes]] = []
    for piece in data:
        if piece is None:
            continue
        head = piece[0] if isinstance(piece, tuple) else piece
        if _FETCH_START.match(head) and current:
            yield current
            current = []
        current.append(piece)
    if current:
        yield current


def _parse_response(pieces: list[bytes | tuple[bytes, bytes]]) -> dict[bytes, Any]:
    """One FETCH response ("SEQ (KEY value ...)") as {KEY: value}, in one pass.

    Tokens are read and the nested lists built in the same loop (the fetching process's
    busiest code: a BODYSTRUCTURE is a hundred tokens). What comes before the first "(" is
    the sequence number; what follows the list's end is read (garbage still fails) and
    dropped. A list nested deeper than MAX_NESTING becomes None: 20,000 nested parentheses
    cost a scan, not a RecursionError. Raises ValueError on text that is not IMAP.
    """
    tokens = _TOKEN_TEXT.findall
    unquote = _UNQUOTE.sub
    stack: list[list[Any]] = []
    state = 0  # 0: before the list, 1: inside it, 2: after it
    skip = 0
    top: list[Any] = []
    for piece in pieces:
        text, literal = (piece[0], piece[1]) if isinstance(piece, tuple) else (piece, None)
        toks = tokens(text)
        # "{n}" ending a piece announces the literal that came with it (in the middle of a
        # piece the same bytes are an atom)
        at_end = toks and toks[-1][0] == 123 and _LITERAL_TOKEN.fullmatch(toks[-1]) is not None
        if at_end:
            toks.pop()
        for tok in toks:
            c = tok[0]
            if c == 40:  # "("
                if state == 1:
                    if skip:
                        skip += 1
                    elif len(stack) > MAX_NESTING:
                        skip = 1
                    else:
                        stack.append([])
                elif state == 0:
                    state = 1
                    stack = [top]
                continue
            if c == 41:  # ")"
                if state != 1:
                    continue
                if skip:
                    skip -= 1
                    if not skip:
                        stack[-1].append(None)
                    continue
                done = stack.pop()
                if not stack:
                    state = 2
                else:
                    stack[-1].append(tuple(done))
                continue
            if c == 91 or (c == 34 and len(tok) == 1):  # "[", or a quote never closed
                raise ValueError("unexpected text in FETCH response")
            if state != 1 or skip:
                continue
            if c == 34:
                value: Any = tok[1:-1]
                if b"\\" in value:  # most quoted strings have no escape: no regex call
                    value = unquote(rb"\1", value)
            elif tok.isdigit():
                value = int(tok) if len(tok) <= 20 else tok
            elif len(tok) == 3 and tok.upper() == b"NIL":
                value = None
            else:
                value = tok
            stack[-1].append(value)
        if at_end:
            value = literal if literal is not None else b""
            literal = None
            if state == 1 and not skip:
                stack[-1].append(value)
    if state == 0:
        raise ValueError("no list in FETCH response")
    if state == 1:  # unclosed lists close at the end
        if skip:
            stack[-1].append(None)
        while len(stack) > 1:
            done = stack.pop()
            stack[-1].append(tuple(done))
    out: dict[bytes, Any] = {}
    for key, val in zip(top[0::2], top[1::2], strict=False):
        if isinstance(key, bytes):
            out[key.upper()] = val
    return out
