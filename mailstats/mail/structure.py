"""The MIME structure of a local message from a light scan: boundaries and part headers only.

A local store has no BODYSTRUCTURE, so the structure must be rebuilt from the raw message.
The email package does that by pushing every body line through its feed parser, which costs
about 2 ms per real message (most of the CPU of a header-only run). Only three things decide
the leaves we report: where the boundary lines are, what each part's header block says, and
where each part's payload ends. This scanner finds the boundary lines with one regex search
per multipart and reads only the header lines of each part, so the cost follows the number of
parts, not the number of body lines.

It deliberately reproduces the email package's (compat32) reading of broken MIME rather than
RFC 2046's ideal, so a local folder and its IMAP copy stay comparable with what earlier
versions reported: a missing start boundary makes the multipart one leaf, repeated boundary
lines are skipped, an enclosing boundary ends every part inside it, the newline before a
boundary belongs to the boundary, `message/*` bodies are messages and `message/delivery-status`
bodies are header blocks. tests/test_structure.py checks it leaf by leaf against the email
package on generated trees, on fixtures/nasty.py and on the real corpus.

The scanner works on anything the `re` module searches (bytes or an mmap of the file), using
positions only, so a large message is never copied whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message as EmailMessage
from functools import lru_cache
from typing import Any

from mailstats.mail.message import MAX_HEADER_BYTES, MAX_PARTS, MimePart

#: walk() depth beyond which leaves are not reported (as the email-based walk did).
MAX_DEPTH = 50

#: A run of lines the email package reads as header lines (its headerRE, line by line).
_HEADER_RUN = re.compile(rb"(?:(?:From |[\x21-\x39\x3b-\x7e]*:|[\t ])[^\r\n]*(?:\r\n|\r|\n|\Z))*")
#: The same run where no line ends in a bare CR (every mbox file): `[^\n]` is one of sre's
#: single-character fast paths, where the class `[^\r\n]` is tested through a set for each
#: byte; over the real corpus's headers (4 KB on average) 15.6 instead of 39.1 us.
_HEADER_RUN_LF = re.compile(rb"(?:(?:From |[\x21-\x39\x3b-\x7e]*:|[\t ])[^\n]*(?:\n|\Z))*")
_EOL = re.compile(rb"\r\n|\r|\n")
#: The three fields that shape the structure, with their continuation lines. A space before
#: the colon makes another field name, as it does for the email package.
_WANTED = re.compile(
    rb"(content-type|content-disposition|content-transfer-encoding):"
    rb"([^\r\n]*(?:(?:\r\n|\r|\n)[\t ][^\r\n]*)*)",
    re.IGNORECASE,
)


def _wanted(buf: Any, pos: int, end: int) -> tuple[tuple[str, str], ...]:
    """The wanted fields of a header block, in order: a plain find on a lower-cased copy
    locates candidates (a case-insensitive regex scan costs several times more)."""
    block = bytes(buf[pos : min(end, pos + MAX_HEADER_BYTES)])
    lower = block.lower()
    out = []
    at = lower.find(b"content-")
    while at >= 0:
        if at == 0 or block[at - 1] in (10, 13):
            m = _WANTED.match(block, at)
            if m:
                out.append(
                    (m.group(1).decode("ascii"), m.group(2).decode("ascii", "surrogateescape"))
                )
        at = lower.find(b"content-", at + 8)
    return tuple(out)


#: What may follow "--boundary" on a boundary line; group 1 marks the close boundary.
_BOUNDARY_TAIL = re.compile(rb"(--)?[ \t]*(?:\r\n|\r|\n|\Z)")


@dataclass(frozen=True, slots=True)
class ScannedPart:
    """A reported leaf and where its payload lies in the buffer."""

    part: MimePart
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Fields:
    """What a part's header block says about its MIME shape, read once per distinct block."""

    ctype: str
    disposition: str
    filename: str
    charset: str
    encoding: str
    boundary: str | None


@lru_cache(maxsize=4096)
def _read_fields(found: tuple[tuple[str, str], ...], default: str) -> _Fields:
    """The email package's own parameter parsing (RFC 2231, quoting), on the three fields.

    Cached: leaf headers such as "text/plain; charset=utf-8" repeat across a whole mailbox.
    """
    msg = EmailMessage()
    if default != "text/plain":
        msg.set_default_type(default)
    for name, value in found:
        msg.set_raw(name, value.lstrip(" \t").rstrip("\r\n"))
    try:
        ctype = msg.get_content_type()
        boundary = msg.get_boundary() if ctype.startswith("multipart/") else None
    except Exception:  # noqa: BLE001 - broken parameters
        ctype, boundary = "application/octet-stream", None
    try:
        disp = (msg.get_content_disposition() or "").lower()
        filename = msg.get_filename() or ""
        charset = msg.get_content_charset() or ""
    except Exception:  # noqa: BLE001 - keep the part, lose the details
        ctype, disp, filename, charset = "application/octet-stream", "", "", ""
    encoding = str(msg.get("Content-Transfer-Encoding", "")).strip().lower()
    return _Fields(ctype.lower(), disp, str(filename), charset, encoding, boundary)


@dataclass(slots=True)
class _Leaf:
    fields: _Fields
    section: str
    start: int
    end: int  # moves back when the parent strips the newline before a boundary
    extra: int  # bytes of a pushed-back "From " header line that count towards the payload
    reported: bool


#: How far `header_run_end` looks for a CR and the first empty line (a header block is far
#: shorter). Unbounded, the search for an LF empty line ran to the end of every CRLF entity:
#: a 20 MB CRLF attachment took 70 instead of 17 ms to scan.
_LF_WINDOW = 65536


def header_run_end(buf: Any, pos: int, limit: int) -> int:
    """Where `_HEADER_RUN` matched from `pos` ends. The run cannot pass the first empty line,
    so up to that line a buffer without CR may use the LF-only pattern. Both searches stay
    in the window, the empty line's before the first CR (at the first line's end in CRLF
    text), so the cost is the header's, not the entity's."""
    window = min(limit, pos + _LF_WINDOW)
    cr = buf.find(b"\r", pos, window)
    blank = buf.find(b"\n\n", pos, window if cr < 0 else cr)
    if blank >= 0:
        return _HEADER_RUN_LF.match(buf, pos, blank + 1).end()
    if cr < 0 and window == limit:  # LF to the entity's end, and no empty line
        return _HEADER_RUN_LF.match(buf, pos, limit).end()
    return _HEADER_RUN.match(buf, pos, limit).end()


class _Scan:
    def __init__(self, buf: Any) -> None:
        self.buf = buf
        self.leaves: list[_Leaf] = []

    def line_end(self, pos: int, limit: int) -> int:
        m = _EOL.search(self.buf, pos, limit)
        return m.end() if m else limit

    def headers(self, pos: int, limit: int, default: str) -> tuple[_Fields, int, int]:
        """Read a header block: (its MIME fields, body start, pushed-back bytes).

        One regex match finds the run of header-shaped lines (the email package's rule for
        where a header block ends); a second search picks the three fields that matter.
        """
        run_end = header_run_end(self.buf, pos, limit)
        if run_end >= limit:
            body = limit
        else:
            eol = _EOL.match(self.buf, run_end, limit)
            body = eol.end() if eol else run_end  # a blank line is thrown away
        extra = 0
        # a "From " line after the first (a plain find: a look-behind regex search tries
        # every position of the block)
        if (
            self.buf.find(b"\nFrom ", pos, run_end) >= 0
            or self.buf.find(b"\rFrom ", pos, run_end) >= 0
        ):
            extra, run_end = self._pushed_back_from(pos, run_end)
        return _read_fields(_wanted(self.buf, pos, run_end), default), body, extra

    def _pushed_back_from(self, pos: int, run_end: int) -> tuple[int, int]:
        """A "From " line ending a header block is read back as the body's first line (the
        blank line after it stays consumed); one elsewhere but first is ignored."""
        lines = []
        while pos < run_end:
            end = self.line_end(pos, run_end)
            lines.append((pos, end))
            pos = end
        if len(lines) > 1 and bytes(self.buf[lines[-1][0] : lines[-1][0] + 5]) == b"From ":
            a, b = lines[-1]
            return b - a, a
        return 0, run_end

    def entity(
        self, pos: int, limit: int, section: str, depth: int, default: str = "text/plain"
    ) -> _Leaf | None:
        """Scan one entity in [pos, limit); returns the leaf its parent may strip, if any."""
        fields, body, extra = self.headers(pos, limit, default)
        ctype = fields.ctype
        if ctype == "message/delivery-status":
            return self.delivery_status(body, limit, section, depth)
        if ctype.startswith("message/"):
            if depth + 1 > MAX_DEPTH:
                return None  # nothing below is reported
            child = f"{section}.1" if section else "1"
            return self.entity(body, limit, child, depth + 1)
        if ctype.startswith("multipart/") and fields.boundary is not None:
            self.multipart(fields, body, limit, section, depth)
            return None  # the parent strips this multipart's epilogue, not a payload
        leaf = self.leaf(fields, section, body, limit, depth, extra)
        # a multipart without a boundary is one leaf whose epilogue (none) gets stripped
        return None if ctype.startswith("multipart/") else leaf

    def leaf(
        self, fields: _Fields, section: str, start: int, end: int, depth: int, extra: int = 0
    ) -> _Leaf:
        leaf = _Leaf(fields, section or "1", start, end, extra, depth <= MAX_DEPTH)
        self.leaves.append(leaf)
        return leaf

    def boundaries(self, sep: bytes, body: int, limit: int) -> list[tuple[int, int, bool]]:
        """(line start, line end, is close) of every boundary line in [body, limit)."""
        out = []
        pos = body
        while True:
            at = self.buf.find(sep, pos, limit)
            if at < 0:
                return out
            pos = at + 1
            if at != body and self.buf[at - 1] not in (10, 13):
                continue  # not at the start of a line
            tail = _BOUNDARY_TAIL.match(self.buf, at + len(sep), limit)
            if tail:
                out.append((at, tail.end(), tail.group(1) is not None))
                pos = tail.end()

    def multipart(self, fields: _Fields, body: int, limit: int, section: str, depth: int) -> None:
        sep = ("--" + (fields.boundary or "")).encode("ascii", "surrogateescape")
        marks = self.boundaries(sep, body, limit)
        if not marks or marks[0][2]:
            # no inter-part boundary before the end: one leaf holding the preamble
            self.leaf(fields, section, body, marks[0][0] if marks else limit, depth)
            return
        child_default = "message/rfc822" if fields.ctype == "multipart/digest" else "text/plain"
        number = 0
        i = 0
        while i < len(marks):
            # boundary lines that follow each other directly are skipped, close ones too
            while i + 1 < len(marks) and marks[i + 1][0] == marks[i][1]:
                i += 1
            start = marks[i][1]
            nxt = marks[i + 1] if i + 1 < len(marks) else None
            end = nxt[0] if nxt else limit
            number += 1
            if depth + 1 <= MAX_DEPTH:
                child = f"{section}.{number}" if section else str(number)
                last = self.entity(start, end, child, depth + 1, child_default)
                if last is not None:
                    _strip_newline(self.buf, last)
            if nxt is None or nxt[2]:
                return
            i += 1

    def delivery_status(self, body: int, limit: int, section: str, depth: int) -> _Leaf | None:
        """Header blocks separated by blank lines, each a leaf with an (often empty) payload."""
        pos = body
        number = 0
        last: _Leaf | None = None
        while True:
            number += 1
            block_end = self.blank_line(pos, limit)
            fields, start, _extra = self.headers(pos, block_end, "text/plain")
            child = f"{section}.{number}" if section else str(number)
            last = self.leaf(fields, child, start, block_end, depth + 1)
            pos = self.line_end(block_end, limit) if block_end < limit else limit
            if pos >= limit:
                return last

    def blank_line(self, pos: int, limit: int) -> int:
        """Start of the first empty line at or after pos, else limit."""
        while pos < limit:
            if _EOL.match(self.buf, pos, limit):
                return pos
            pos = self.line_end(pos, limit)
        return limit


def _strip_newline(buf: Any, leaf: _Leaf) -> None:
    """The newline before a boundary belongs to the boundary (RFC 2046)."""
    if leaf.end - leaf.start >= 2 and buf[leaf.end - 2 : leaf.end] == b"\r\n":
        leaf.end -= 2
    elif leaf.end > leaf.start and buf[leaf.end - 1] in (10, 13):
        leaf.end -= 1


def scan_parts(buf: Any, start: int = 0, end: int | None = None) -> list[ScannedPart]:
    """Every reported leaf with IMAP-style section numbers and its payload's position.

    `buf` is bytes or an mmap; nothing of it is copied but the header fields read. The
    message is buf[start:end] (an mbox message inside the mapped file); positions are buf's.
    """
    scan = _Scan(buf)
    scan.entity(start, len(buf) if end is None else end, "", 0)
    out: list[ScannedPart] = []
    for leaf in scan.leaves:
        if not leaf.reported:
            continue
        f = leaf.fields
        size = max(0, leaf.end - leaf.start) + leaf.extra
        part = MimePart(
            f.ctype, f.disposition, f.filename, size, f.charset, leaf.section, f.encoding
        )
        out.append(ScannedPart(part, leaf.start, leaf.end))
        if len(out) >= MAX_PARTS:
            break
    return out


def parts_from_bytes(buf: Any) -> list[MimePart]:
    """The leaves of a raw message, as BODYSTRUCTURE would list them, without a full parse."""
    return [p.part for p in scan_parts(buf)]
