"""mail/dkim_fast.py against the dkimpy code it stands in for.

A DKIM verdict is only as right as the bytes hashed, so each canonicalization is compared
with dkimpy's own functions (which the patch leaves in place under their module names), on
byte strings made of the characters that matter (spaces, tabs, every kind of line break)
and on every real corpus message.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import dkim.canonicalization as canon
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailstats.mail import dkim_fast
from mailstats.mail.rfc822 import rfc822_split
from mailstats.modules.dkim import _dkimpy

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
PIECES = [b" ", b"  ", b"\t", b" \t ", b"\r\n", b"\n", b"\r", b"a", b"xy z", b"\x0b", b"\x00"]
texts = st.lists(st.sampled_from(PIECES), max_size=30).map(b"".join)


def dkimpy_body(body: bytes) -> bytes:
    """dkimpy's Relaxed.canonicalize_body, from its module functions."""
    return canon.correct_empty_body(
        canon.strip_trailing_lines(canon.compress_whitespace(canon.strip_trailing_whitespace(body)))
    )


def dkimpy_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [
        (
            n.lower().rstrip(),
            canon.compress_whitespace(canon.unfold_header_value(v)).strip() + b"\r\n",
        )
        for n, v in headers
    ]


@settings(derandomize=True, max_examples=2000, deadline=None, database=None)
@given(texts | st.binary(max_size=60))
def test_relaxed_body_is_dkimpys(body: bytes) -> None:
    assert dkim_fast.relaxed_body(body) == dkimpy_body(body)
    assert dkim_fast.relaxed_body(body) == dkimpy_body(body)  # the memo's answer


def test_the_body_memo_answers_only_for_the_same_object() -> None:
    body = b"x  y \r\n" * 3
    first = dkim_fast.relaxed_body(body)
    assert first == b"x y\r\n" * 3
    assert dkim_fast.relaxed_body(body) is first  # the next signature of the same message
    copy = bytes(bytearray(body))
    again = dkim_fast.relaxed_body(copy)
    assert again == first and again is not first  # an equal body is computed, not looked up


@settings(derandomize=True, max_examples=800, deadline=None, database=None)
@given(st.lists(st.tuples(st.sampled_from([b"From", b"SUBJECT ", b"x-A\t"]), texts), max_size=5))
def test_relaxed_headers_are_dkimpys(headers: list[tuple[bytes, bytes]]) -> None:
    assert dkim_fast.relaxed_headers(headers) == dkimpy_headers(headers)


def test_patched_into_dkimpy() -> None:
    dk = _dkimpy()
    assert dk.canonicalization.Relaxed.canonicalize_body is dkim_fast.relaxed_body
    assert dk.canonicalization.Relaxed.canonicalize_headers is dkim_fast.relaxed_headers


def test_canonicalizations_are_dkimpys_on_the_corpus() -> None:
    files = sorted(CORPUS.rglob("*.eml")) if CORPUS.is_dir() else []
    if not files:
        pytest.skip("corpus not present")
    for path in files:
        try:
            headers, body = rfc822_split(path.read_bytes())
        except Exception:  # noqa: BLE001 - a header dkimpy refuses: nothing to canonicalize
            continue
        assert dkim_fast.relaxed_body(body) == dkimpy_body(body), path.name
        pairs = [(n, v) for n, v in headers]
        assert dkim_fast.relaxed_headers(pairs) == dkimpy_headers(pairs), path.name


_names = st.sampled_from([b"from", b"From", b"FROM", b"to", b"subject", b"Subject", b"x-a",
                          b"date", b"dkim-signature"])  # fmt: skip


@settings(derandomize=True, max_examples=500, deadline=None, database=None)
@given(
    st.lists(st.tuples(_names, st.binary(max_size=3)), max_size=14),
    st.lists(_names.map(bytes.lower), max_size=14),
)
def test_select_headers_is_dkimpys(headers: list[tuple[bytes, bytes]], include: list[bytes]
                                   ) -> None:  # fmt: skip
    """The same fields in the same order, the same objects (dkimpy hashes what it gets)."""
    import dkim

    _dkimpy()
    got = dkim_fast.select_headers(headers, include)
    want = _original_select_headers()(headers, include)
    assert got == want
    assert all(a is b for a, b in zip(got, want, strict=True))
    assert dkim.select_headers is dkim_fast.select_headers  # what the module verifies with


@cache
def _original_select_headers() -> Callable[..., list[tuple[bytes, bytes]]]:
    """dkimpy's own select_headers, compiled from its source file (the patch replaces the
    module's name for it, so the installed dkimpy's text is the reference)."""
    import ast

    import dkim

    tree = ast.parse(Path(dkim.__file__).read_text(encoding="utf-8"))
    (node,) = [n for n in tree.body if isinstance(n, ast.FunctionDef)
               and n.name == "select_headers"]  # fmt: skip
    space: dict = {}
    exec(compile(ast.Module([node], []), dkim.__file__, "exec"), space)  # noqa: S102
    return space["select_headers"]
