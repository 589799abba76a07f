"""rfc822_split and the RSA byte helpers against the dkimpy code they stand in for.

The DKIM verdicts depend on dkimpy seeing exactly the headers and body its own parser would
give it, so the split is compared with dkimpy.rfc822_parse itself (results and raised error
types) on generated messages built from the line shapes that matter (every kind of line
break, continuation lines first and later, "From " lines, characters dkimpy refuses in a
header line, no body, empty body) and on every real corpus message.
"""

from __future__ import annotations

from pathlib import Path

import dkim
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailstats.mail.rfc822 import rfc822_split
from mailstats.modules.dkim import _int2str, _str2int

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"

LINES = [b"From: a@b.example", b"DKIM-Signature: v=1; a=rsa-sha256;", b"\tb=abc", b" cont",
         b"Subject:x", b"From someone", b"bad line", b"X:", b"", b"\r", b"body text",
         b" "]  # fmt: skip
BREAKS = [b"\r\n", b"\n", b"\r", b"\r\r\n", b"\n\r"]


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    out = b""
    for line in draw(st.lists(st.sampled_from(LINES), max_size=14)):
        out += line + draw(st.sampled_from(BREAKS))
    if draw(st.booleans()):
        out += draw(st.sampled_from(LINES))
    return out


def outcome(fn, raw: bytes) -> object:  # type: ignore[no-untyped-def]
    try:
        headers, body = fn(raw)
    except Exception as exc:  # noqa: BLE001 - the error type is part of the contract
        return type(exc).__name__
    return [list(h) for h in headers], bytes(body)


@settings(derandomize=True, max_examples=2000, deadline=None, database=None)
@given(messages())
def test_split_is_dkimpys_parse(raw: bytes) -> None:
    assert outcome(rfc822_split, raw) == outcome(dkim.rfc822_parse, raw)


def test_split_is_dkimpys_parse_on_the_corpus() -> None:
    files = sorted(CORPUS.rglob("*.eml")) if CORPUS.is_dir() else []
    if not files:
        pytest.skip("corpus not present")
    for path in files:
        raw = path.read_bytes()
        assert outcome(rfc822_split, raw) == outcome(dkim.rfc822_parse, raw), path.name


def _dkimpy_int2str(n: int, length: int = -1) -> bytearray:
    r = bytearray()
    while length < 0 or len(r) < length:
        r.append(n & 0xFF)
        n >>= 8
        if length < 0 and n == 0:
            break
    r.reverse()
    return r


@settings(derandomize=True, max_examples=500, deadline=None, database=None)
@given(st.integers(0, 2**4100), st.integers(-1, 520))
def test_int_bytes_helpers_are_dkimpys(n: int, length: int) -> None:
    assert _int2str(n, length) == _dkimpy_int2str(n, length)
    data = bytes(_dkimpy_int2str(n))
    assert _str2int(data) == n
    assert _str2int(bytearray(data)) == n
