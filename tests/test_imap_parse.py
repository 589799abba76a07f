"""The one-pass FETCH response parser reads every response as the two-pass one it replaced.

The reference below is that earlier parser (a token list, then a non-recursive builder),
kept here as the oracle: the inputs are token soups with literals, quoted strings, NIL,
numbers, unbalanced and deeply nested lists (past MAX_NESTING) and garbage.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mailstats.sources.imap_wire import MAX_NESTING, _parse_response

_TOKEN = re.compile(
    rb'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|\{(\d+)\}\s*$|([^\s()"\[]+(?:\[[^\]]*\](?:<\d+>)?)?))'
)
_UNQUOTE = re.compile(rb"\\(.)")


def reference(pieces: list[bytes | tuple[bytes, bytes]]) -> dict[bytes, Any]:
    tokens: list[Any] = []
    for piece in pieces:
        text, literal = (piece[0], piece[1]) if isinstance(piece, tuple) else (piece, None)
        pos = 0
        n = len(text)
        while pos < n:
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                if text[pos:].strip():
                    raise ValueError("unexpected text in FETCH response")
                break
            pos = m.end()
            if m.group(1):
                tokens.append(b"(")
            elif m.group(2):
                tokens.append(b")")
            elif m.group(3) is not None:
                tokens.append(("q", _UNQUOTE.sub(rb"\1", m.group(3))))
            elif m.group(4) is not None:
                tokens.append(("l", literal if literal is not None else b""))
                literal = None
            else:
                tokens.append(m.group(5))
    # tokens: SEQ FETCH ( key value key value ... )
    start = tokens.index(b"(")
    value, _end = _build(tokens, start + 1)
    out: dict[bytes, Any] = {}
    for key, val in zip(value[0::2], value[1::2], strict=False):
        if isinstance(key, bytes):
            out[key.upper()] = val
    return out


def _build(tokens: list[Any], i: int) -> tuple[tuple, int]:
    """The list that starts at `i` (just after its "("), without recursion.

    A list nested deeper than MAX_NESTING becomes None: 20,000 nested parentheses cost a
    scan, not a RecursionError.
    """
    stack: list[list[Any]] = [[]]
    skip = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if skip:
            if tok == b"(":
                skip += 1
            elif tok == b")":
                skip -= 1
                if not skip:
                    stack[-1].append(None)
            continue
        if tok == b"(":
            if len(stack) > MAX_NESTING:
                skip = 1
            else:
                stack.append([])
            continue
        if tok == b")":
            done = tuple(stack.pop())
            if not stack:
                return done, i
            stack[-1].append(done)
            continue
        if isinstance(tok, tuple):
            stack[-1].append(tok[1])
        elif tok.isdigit():
            stack[-1].append(int(tok) if len(tok) <= 20 else tok)
        elif tok.upper() == b"NIL":
            stack[-1].append(None)
        else:
            stack[-1].append(tok)
    if skip:
        stack[-1].append(None)
    while len(stack) > 1:
        done = tuple(stack.pop())
        stack[-1].append(done)
    return tuple(stack[0]), i


TOKENS = [b"1 (", b"UID", b"7", b"BODY[HEADER]", b"{12}", b"BODYSTRUCTURE", b"(", b")",
          b'"q\\"x"', b'""', b"NIL", b"nil", b"RFC822.SIZE", b"BODY[1]<0>", b"0",
          b"123456789012345678901234", b"[", b"]", b'"', b"{99999999999}", b"  "]  # fmt: skip

pieces = st.lists(
    st.one_of(
        st.lists(st.sampled_from(TOKENS), max_size=25).map(b" ".join),
        st.tuples(
            st.lists(st.sampled_from(TOKENS), max_size=8).map(lambda t: b" ".join(t) + b" {5}"),
            st.binary(max_size=12),
        ),
        st.binary(max_size=30),
    ),
    min_size=1,
    max_size=5,
)


def _same(p: list[Any]) -> None:
    try:
        want: Any = reference(p)
    except (ValueError, IndexError) as exc:
        want = type(exc)
    try:
        got: Any = _parse_response(p)
    except (ValueError, IndexError) as exc:
        got = type(exc)
    # the reference raised IndexError/ValueError where this one raises ValueError: both are
    # "unreadable" to fast_fetch
    if isinstance(want, type) and isinstance(got, type):
        return
    assert got == want


@settings(max_examples=1500, derandomize=True, deadline=None)
@given(pieces)
def test_matches_the_two_pass_parser(p: list[Any]) -> None:
    _same(p)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.integers(0, MAX_NESTING + 30), st.integers(0, MAX_NESTING + 30), st.booleans())
def test_deep_nesting_matches(opened: int, closed: int, tail: bool) -> None:
    body = b"(" * opened + b"TEXT NIL 5" + b")" * closed
    _same([b"3 (UID 3 BODYSTRUCTURE " + body + (b" RFC822.SIZE 9)" if tail else b"")])


def test_a_real_shaped_response() -> None:
    header = b"From: a@example.net\r\nSubject: x\r\n\r\n"
    p = [
        (b"12 (UID 12 RFC822.SIZE 345 BODY[HEADER] {%d}" % len(header), header),
        b' BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 10 1 NIL NIL NIL)'
        b' "MIXED" ("BOUNDARY" "b") NIL NIL))',
    ]
    got = _parse_response(p)
    assert got[b"UID"] == 12 and got[b"RFC822.SIZE"] == 345 and got[b"BODY[HEADER]"] == header
    assert got[b"BODYSTRUCTURE"][1] == b"MIXED"
    assert got == reference(p)
