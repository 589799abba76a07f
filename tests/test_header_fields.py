"""The header-field reader against a line-by-line reading of the same rules.

`parse_fields` reads a whole field (with its continuation lines) per regex match, for speed;
the oracle below is the plain reading it replaced: split into lines on any line break, skip a
first "From " line and stray continuation lines before the first field, stop at the first
line that is neither a field nor a continuation. Both must agree on every header block,
generated from the pieces that make them differ in practice (every kind of line break,
blanks before the colon, 8-bit values, lines without a colon) and on the real corpus.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailstats.mail.message import MAX_HEADER_BYTES, parse_fields

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"

_LINES = re.compile(r"\r\n|\n|\r")
_NAME = re.compile(r"[!-9;-~]+")


def oracle(raw: bytes) -> list[tuple[str, str]]:
    text = raw[:MAX_HEADER_BYTES].decode("latin-1")
    fields: list[tuple[str, str]] = []
    name = ""
    parts: list[str] = []
    for i, line in enumerate(_LINES.split(text)):
        if not line:
            break
        if line[0] in " \t":
            if name:
                parts.append(line)
            continue
        if name:
            fields.append((name, _utf8("\n".join(parts))))
            name = ""
        head, sep, value = line.partition(":")
        head = head.rstrip(" \t")
        if not sep or not _NAME.fullmatch(head):
            if i == 0 and line.startswith("From "):
                continue
            break
        name = head.lower()
        parts = [value.lstrip(" \t")]
    if name:
        fields.append((name, _utf8("\n".join(parts))))
    return fields


def _utf8(value: str) -> str:
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        return value


PIECES = [
    "From: a@b.example", "Received: from x by y", "Subject:", "X-Odd :  spaced",
    "From sender Mon Jan 1", " folded", "\tfolded tab", "   ", "no colon here",
    "Bad Name: v", ":empty name", "Caf\u00e9: v", "Subject: caf\u00c3\u00a9", "Subject: \xff\xfe",
    "A:b:c", "X-\x01: ctl", "Long: " + "x" * 80, "",
]  # fmt: skip
BREAKS = ["\r\n", "\n", "\r", "\r\r\n", "\n\r"]


@st.composite
def blocks(draw: st.DrawFn, uniform: bool = False) -> bytes:
    """A header block; `uniform`: every line ends in the same LF or CRLF (what mbox files and
    IMAP give), the case parse_fields reads with its LF-only patterns."""
    lines = draw(st.lists(st.sampled_from(PIECES), max_size=12))
    one = draw(st.sampled_from(["\n", "\r\n"])) if uniform else ""
    out = ""
    for line in lines:
        out += line + (one or draw(st.sampled_from(BREAKS)))
    if draw(st.booleans()):
        out += draw(st.sampled_from(PIECES))  # a last line without a break
    return out.encode("latin-1", "replace") if draw(st.booleans()) else out.encode("utf-8")


@settings(derandomize=True, max_examples=1500, deadline=None, database=None)
@given(blocks())
def test_same_fields_as_the_line_by_line_reading(raw: bytes) -> None:
    assert parse_fields(raw) == oracle(raw)


@settings(derandomize=True, max_examples=1000, deadline=None, database=None)
@given(blocks(uniform=True))
def test_same_fields_with_one_kind_of_line_break(raw: bytes) -> None:
    assert parse_fields(raw) == oracle(raw)


def test_same_fields_on_the_real_corpus() -> None:
    files = [f for f in sorted(CORPUS.rglob("*.eml"))] if CORPUS.is_dir() else []
    if not files:
        pytest.skip("corpus not present")
    for path in files:
        raw = path.read_bytes()
        assert parse_fields(raw) == oracle(raw), path.name
