"""The message as modules see it: parsed lazily from what the source fetched.

A source hands the engine raw header bytes, a MIME structure and (only when a module asked
for it) a bounded slice of body text. Parsing is lazy and cached on the instance because most
modules read only a few headers, and a 100k-message run must not pay for what nobody reads.
Every accessor is total: malformed input gives empty values, never an exception, so a broken
header is counted by the module that cares instead of killing the run.
"""

from __future__ import annotations

import email.header
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

if TYPE_CHECKING:
    from mailstats.mail.addresses import Address
    from mailstats.mail.received import Hop
    from mailstats.mail.receivers import Detection

#: Caps that keep memory bounded on hostile input (see docs/reliability.md).
MAX_HEADER_BYTES = 256 * 1024
MAX_BODY_BYTES = 2048
MAX_RAW_BYTES = 1024 * 1024
MAX_PARTS = 500


class MimePart(NamedTuple):
    """One leaf of the MIME tree, as BODYSTRUCTURE (or a local walk) describes it.

    A NamedTuple (immutable; made for each part of each message in both processes)."""

    content_type: str  # lower case "type/subtype"
    disposition: str = ""  # lower case: "attachment", "inline" or ""
    filename: str = ""
    size: int = 0  # octets of the encoded part, 0 when unknown
    charset: str = ""
    section: str = ""  # IMAP body section ("1", "2.1"), to fetch this part alone
    encoding: str = ""  # lower case Content-Transfer-Encoding

    def to_json(self) -> list:
        return [
            self.content_type,
            self.disposition,
            self.filename,
            self.size,
            self.charset,
            self.section,
            self.encoding,
        ]

    @classmethod
    def from_json(cls, item: list) -> MimePart:
        ctype, disp, fname, size, charset, section, enc = (list(item) + [""] * 7)[:7]
        return cls(
            str(ctype), str(disp), str(fname), int(size or 0), str(charset), str(section), str(enc)
        )


def parts_to_json(parts: list[MimePart] | None) -> str | None:
    if parts is None:
        return None
    return json.dumps([p.to_json() for p in parts[:MAX_PARTS]], separators=(",", ":"))


def parts_from_json(text: str | None) -> list[MimePart] | None:
    if text is None:
        return None
    try:
        return [MimePart.from_json(item) for item in json.loads(text)]
    except (ValueError, TypeError):
        return None


def decode_header_value(value: str | None) -> str:
    """Decode RFC 2047 encoded words leniently; garbage stays as readable text."""
    if not value:
        return ""
    text = _unfold(value)  # decode_header loses the space at a fold after an encoded word
    if "=?" not in text:
        return text
    try:
        pieces = email.header.decode_header(text)
    except Exception:  # noqa: BLE001 - any broken encoded word falls back to raw text
        return text
    out = []
    for chunk, charset in pieces:
        if isinstance(chunk, bytes):
            # unencoded runs come back as raw-unicode-escape bytes (email.header's contract)
            codec = charset or "raw-unicode-escape"
            try:
                out.append(chunk.decode(codec, errors="replace"))
            except LookupError:
                out.append(chunk.decode("latin-1", errors="replace"))
        else:
            out.append(chunk)
    return _unfold("".join(out))


#: One header field with its continuation lines (RFC 5322 ftext name, optional blanks
#: before the colon); group 3 holds the continuations with their line breaks.
_FIELD = re.compile(
    r"([!-9;-~]+)[ \t]*:[ \t]*([^\r\n]*)((?:(?:\r\n|\n|\r)[ \t][^\r\n]*)*)(?:\r\n|\n|\r|\Z)"
)
#: What may come before the first field: an mbox "From " line, then stray continuations.
_LEAD = re.compile(r"(?:From [^\r\n]*(?:\r\n|\n|\r|\Z))?(?:[ \t][^\r\n]*(?:\r\n|\n|\r|\Z))*")
_CR_BREAK = re.compile(r"\r\n?")
#: The same two where every line ends in LF: `[^\n]` is one of sre's single-character fast
#: paths, where the class `[^\r\n]` is tested through a set for each character; a 4 KB real
#: header took 34.6 instead of 59.2 us. CRLF text is read this way after CRLF -> LF, which is
#: what the general path's `_CR_BREAK` does to continuations; a bare CR keeps the general one.
_FIELD_LF = re.compile(r"([!-9;-~]+)[ \t]*:[ \t]*([^\n]*)((?:\n[ \t][^\n]*)*)(?:\n|\Z)")
_LEAD_LF = re.compile(r"(?:From [^\n]*(?:\n|\Z))?(?:[ \t][^\n]*(?:\n|\Z))*")


def parse_fields(raw: bytes) -> list[tuple[str, str]]:
    """(lower-case name, folded value) pairs of a header block, top first.

    Written for speed and tolerance instead of the email package's feed parser (which costs
    more than the IMAP fetch itself at 100k messages): one regex match per field (with its
    continuation lines, joined by "\n"), a leading mbox "From " line skipped, a line that is
    neither a field nor a continuation ends the header block (as the email package does),
    and raw 8-bit values are read as UTF-8, else Latin-1 (RFC 6532 mail and old mail
    respectively) instead of being mangled.
    """
    text = raw[:MAX_HEADER_BYTES].decode("latin-1")
    lead, field = _LEAD_LF, _FIELD_LF
    if "\r" in text:
        lf = text.replace("\r\n", "\n")
        if "\r" in lf:
            lead, field = _LEAD, _FIELD
        else:
            text = lf
    return _scan_fields(text, lead, field)


def _scan_fields(text: str, lead: re.Pattern[str], field: re.Pattern[str]) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    start = lead.match(text)
    pos = start.end() if start else 0
    match = field.match
    size = len(text)
    while pos < size:
        m = match(text, pos)
        if m is None:
            break
        name, value, more = m.groups()
        if more:
            value += _CR_BREAK.sub("\n", more) if "\r" in more else more
        fields.append((name.lower(), value if value.isascii() else _text(value)))
        pos = m.end()
    return fields


def _text(value: str) -> str:
    data = value.encode("latin-1")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return value


def _unfold(text: str) -> str:
    return " ".join(text.replace("\r", " ").replace("\n", " ").split())


_T = TypeVar("_T")


class _once(Generic[_T]):  # noqa: N801 - used as a decorator, like cached_property
    """functools.cached_property without its lock: Python 3.11 takes an RLock at every first
    read (1.6 against 0.5 us here, for each of a message's five parsed views); a Message is
    read by one thread at a time, and computing a view twice would give the same value."""

    def __init__(self, func: Callable[[Any], _T]) -> None:
        self.func = func
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> _T:
        if obj is None:
            return self  # type: ignore[return-value]
        value = obj.__dict__[self.name] = self.func(obj)
        return value


@dataclass
class Message:
    """A fetched message. Identity fields come from the source; the rest is parsed on demand."""

    account: str
    folder: str
    uid: int
    header_bytes: bytes
    parts: list[MimePart] | None = None  # None: structure not fetched / unknown
    size: int | None = None
    body_text: str | None = None  # first MAX_BODY_BYTES of the text body, when fetched
    raw_bytes: bytes | None = None  # the whole message (<= MAX_RAW_BYTES), only when asked for
    raw_truncated: bool = False  # the message was larger than MAX_RAW_BYTES
    role: str = ""

    @_once
    def fields(self) -> dict[str, list[str]]:
        """Header values by lower-case name, top first, folded but not decoded."""
        out: dict[str, list[str]] = {}
        for name, value in parse_fields(self.header_bytes):
            out.setdefault(name, []).append(value)
        return out

    @property
    def malformed(self) -> bool:
        """True when nothing in the header block could be read as a header field."""
        return not self.fields

    def header(self, name: str) -> str:
        """The first header of that name, decoded and unfolded; '' when absent."""
        values = self.fields.get(name.lower())
        return decode_header_value(values[0]) if values else ""

    def header_all(self, name: str) -> list[str]:
        """Every header of that name in order (top first), decoded and unfolded."""
        return [decode_header_value(v) for v in self.fields.get(name.lower(), ())]

    def raw_header_all(self, name: str) -> list[str]:
        """Every header of that name, unfolded but not RFC 2047 decoded (for Received, DKIM).

        Kept per name: DKIM-Signature and Received are each asked by several modules."""
        memo = self.__dict__.setdefault("_raw_all", {})
        key = name.lower()
        if key not in memo:
            memo[key] = [_unfold(v) for v in self.fields.get(key, ())]
        return list(memo[key])

    # Shared parsed views; imported lazily to keep this module dependency-free.
    @_once
    def hops(self) -> list[Hop]:
        from mailstats.mail.received import parse_received

        return [parse_received(v) for v in self.raw_header_all("Received")]

    def receiver(self, identity: Any) -> Detection:
        """Which provider received the message and where its own hops end
        (mail/receivers.py), from the account's setting; once per message and identity."""
        memo = self.__dict__.setdefault("_receiver", {})
        key = id(identity)
        if key not in memo:
            from mailstats.mail.receivers import Detection, detect

            try:
                memo[key] = detect(
                    self.hops,
                    getattr(identity, "receiver", ""),
                    getattr(identity, "own_mx", ()),
                )
            except Exception:  # noqa: BLE001 - broken Received headers: nothing recognised
                memo[key] = Detection("", 0)
        return memo[key]

    def origin_index(self, identity: Any) -> int | None:
        """Index in `hops` of the origin hop (DESIGN.md): below the receiving provider's own
        hops, the first public, untrusted `from` IP; None when there is none. Worked out once
        per message: several modules and the fixed columns all ask."""
        memo = self.__dict__.setdefault("_origin", {})
        key = id(identity)
        if key not in memo:
            from mailstats.mail.received import find_origin

            start = self.receiver(identity).start
            try:
                found = find_origin(self.hops[start:], identity)
            except Exception:  # noqa: BLE001 - broken Received headers: no origin
                found = None
            memo[key] = start + found[0] if found and found[1].ip else None
        return memo[key]

    def origin(self, identity: Any) -> Hop | None:
        """The origin hop (see `origin_index`)."""
        index = self.origin_index(identity)
        return self.hops[index] if index is not None else None

    def origin_ip(self, identity: Any) -> str:
        hop = self.origin(identity)
        return hop.ip if hop is not None else ""

    @_once
    def from_address(self) -> Address | None:
        from mailstats.mail.addresses import parse_address

        return parse_address(self.header("From"))

    @_once
    def sender_address(self) -> Address | None:
        from mailstats.mail.addresses import parse_address

        value = self.header("Sender")
        return parse_address(value) if value else None

    @_once
    def message_id(self) -> str:
        from mailstats.mail.addresses import normalize_msgid

        return normalize_msgid(self.header("Message-ID"))
