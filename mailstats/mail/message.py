"""The message as modules see it: parsed lazily from what the source fetched.

A source hands the engine raw header bytes, a MIME structure and (only when a module asked
for it) a bounded slice of body text. Parsing is lazy and cached on the instance because most
modules read only a few headers, and a 100k-message run must not pay for what nobody reads.
Every accessor is total: malformed input gives empty values, never an exception, so a broken
header is counted by the module that cares instead of killing the run.
"""

from __future__ import annotations

import email.header
import email.parser
import email.policy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message as _EmailMessage
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailstats.mail.addresses import Address
    from mailstats.mail.received import Hop

#: Caps that keep memory bounded on hostile input (see docs/reliability.md).
MAX_HEADER_BYTES = 256 * 1024
MAX_BODY_BYTES = 2048
MAX_RAW_BYTES = 1024 * 1024
MAX_PARTS = 500


@dataclass(frozen=True, slots=True)
class MimePart:
    """One leaf of the MIME tree, as BODYSTRUCTURE (or a local walk) describes it."""

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


def decode_header_value(value: object) -> str:
    """Decode RFC 2047 encoded words leniently; garbage stays as readable text."""
    if value is None:
        return ""
    if isinstance(value, email.header.Header):
        # compat32 wraps raw 8-bit header bytes as "unknown-8bit": real mail sends UTF-8 there
        # (RFC 6532), older mail Latin-1. Decode them instead of turning them into U+FFFD.
        try:
            chunks = email.header.decode_header(value)
        except Exception:  # noqa: BLE001
            chunks = [(str(value), None)]
        value = "".join(_decode_8bit(c) if isinstance(c, bytes) else c for c, _charset in chunks)
    text = str(value)
    if "=?" not in text:
        return _unfold(text)
    text = _unfold(text)  # decode_header loses the space at a fold after an encoded word
    try:
        pieces = email.header.decode_header(text)
    except Exception:  # noqa: BLE001 - any broken encoded word falls back to raw text
        return _unfold(text)
    out = []
    for chunk, charset in pieces:
        if isinstance(chunk, bytes):
            try:
                out.append(chunk.decode(charset or "ascii", errors="replace"))
            except LookupError:
                out.append(chunk.decode("latin-1", errors="replace"))
        else:
            out.append(chunk)
    return _unfold("".join(out))


def _decode_8bit(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _unfold(text: str) -> str:
    return " ".join(text.replace("\r", " ").replace("\n", " ").split())


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
    _cache: dict = field(default_factory=dict, repr=False)

    @cached_property
    def headers(self) -> _EmailMessage:
        raw = self.header_bytes[:MAX_HEADER_BYTES]
        # compat32 never raises on broken headers; defects are recorded on the object.
        return email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
            raw, headersonly=True
        )

    @property
    def malformed(self) -> bool:
        """True when nothing in the header block could be read as a header field."""
        try:
            return not self.headers.keys()
        except Exception:  # noqa: BLE001
            return True

    def header(self, name: str) -> str:
        """The first header of that name, decoded and unfolded; '' when absent."""
        try:
            value = self.headers.get(name)
        except Exception:  # noqa: BLE001
            return ""
        return decode_header_value(value)

    def header_all(self, name: str) -> list[str]:
        """Every header of that name in order (top first), decoded and unfolded."""
        try:
            values = self.headers.get_all(name) or []
        except Exception:  # noqa: BLE001
            return []
        return [decode_header_value(v) for v in values]

    def raw_header_all(self, name: str) -> list[str]:
        """Every header of that name, unfolded but not RFC 2047 decoded (for Received, DKIM)."""
        try:
            values = self.headers.get_all(name) or []
        except Exception:  # noqa: BLE001
            return []
        return [_unfold(str(v)) for v in values]

    def iter_parts(self) -> Iterator[MimePart]:
        yield from self.parts or ()

    # Shared parsed views; imported lazily to keep this module dependency-free.
    @cached_property
    def hops(self) -> list[Hop]:
        from mailstats.mail.received import parse_received

        return [parse_received(v) for v in self.raw_header_all("Received")]

    @cached_property
    def from_address(self) -> Address | None:
        from mailstats.mail.addresses import parse_address

        return parse_address(self.header("From"))

    @cached_property
    def sender_address(self) -> Address | None:
        from mailstats.mail.addresses import parse_address

        value = self.header("Sender")
        return parse_address(value) if value else None

    @cached_property
    def message_id(self) -> str:
        from mailstats.mail.addresses import normalize_msgid

        return normalize_msgid(self.header("Message-ID"))
