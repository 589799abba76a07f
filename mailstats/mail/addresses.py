"""Mailbox and Message-ID parsing for From/Sender/To and In-Reply-To/References.

``email.utils.getaddresses`` is not used: since the CVE-2023-27043 fix it gives up on a
whole header (returning ``('', '')``) when anything in it looks odd, and spam is mostly odd.
This is a small, forgiving tokenizer instead, tuned for "what is the address here":

- a display name that Message.header has already RFC 2047-decoded may now contain commas,
  colons or quotes (``Smith, John <j@x>``), so a piece without an address is glued to the
  display name of the next one instead of being dropped;
- ``name: members;`` is a group only when a ``;`` follows; otherwise the colon is text;
- ``a@b (Name)`` gives the comment as the display name;
- an address must have a non-empty local part and domain; anything else gives None.

Addresses are lower-cased whole (local parts are case-sensitive in theory, never in
practice, and the friends check must match ``Bob@X`` with ``bob@x``). Domains are given in
their IDNA ASCII (punycode) form when they can be encoded, so ``bücher.example`` and
``xn--bcher-kva.example`` compare equal, matching what DNS look-ups and the Public Suffix
List code need; a domain that IDNA refuses is kept as lower-case Unicode.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from mailstats.mail.message import decode_header_value

__all__ = [
    "Address",
    "normalize_msgid",
    "parse_address",
    "parse_address_list",
    "parse_msgid_list",
]


class Address(NamedTuple):
    """One mailbox of an address header (a NamedTuple: immutable, and cheap to make for
    every address of every message)."""

    display: str  # the display name, unquoted and whitespace-collapsed ('' when none)
    addr: str  # local@domain, lower case, domain in IDNA ASCII form when encodable
    domain: str  # lower case, IDNA ASCII form when encodable


# quoted string | comment (one nesting level) | angle address | separator | atom run | other
_TOKEN = re.compile(
    r'("(?:[^"\\]|\\.)*"?)'
    r"|(\((?:[^()\\]|\\.|\((?:[^()\\]|\\.)*\))*\)?)"
    r"|(<[^<>]*>?)"
    r"|([,;:])"
    r'|([^\s"(),;:<]+)'
    r"|(\S)",
    re.S,
)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
_BAD_DOMAIN_CHARS = re.compile(r'[\s<>()\[\],;:"\\@]')
_BAD_LOCAL_CHARS = re.compile(r"[\s<>()\[\],;:\\]")

_QUOTED, _COMMENT, _ANGLE, _SEP, _ATOM, _OTHER = range(6)


def _tokens(value: str) -> list[tuple[int, str, int, int]]:
    """(kind, text, start, end) for every token."""
    out = []
    for m in _TOKEN.finditer(value):
        kind = m.lastindex - 1 if m.lastindex else _OTHER
        out.append((kind, m.group(m.lastindex or 0), m.start(), m.end()))
    return out


def _unquote(text: str) -> str:
    if text.startswith('"'):
        text = text[1:-1] if len(text) > 1 and text.endswith('"') else text[1:]
        return _QUOTED_PAIR.sub(r"\1", text)
    return text


def _clean_display(text: str) -> str:
    text = " ".join(text.split())
    if "=?" in text:
        text = decode_header_value(text)
    return text


def _normalize_domain(domain: str) -> str:
    domain = domain.strip().rstrip(".").lower()
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii").lower()
    except (UnicodeError, ValueError):
        return domain


def _make_addr(spec: str) -> tuple[str, str] | None:
    """(addr, domain) for an addr-spec, None when it is not one."""
    spec = spec.strip()
    if spec[:7].lower() == "mailto:":
        spec = spec[7:]
    if spec.startswith("@") and ":" in spec:
        spec = spec.split(":", 1)[1]  # obsolete source route "<@relay:user@host>"
    local, at, domain = spec.rpartition("@")
    if not at or not local or not domain:
        return None
    if local.startswith('"') and local.endswith('"') and len(local) >= 2:
        if '"' in local[1:-1].replace('\\"', ""):
            return None
    elif _BAD_LOCAL_CHARS.search(local) or "@" in local or '"' in local:
        return None
    if domain.startswith("[") and domain.endswith("]"):
        if _BAD_DOMAIN_CHARS.search(domain[1:-1]):
            return None
        domain = domain.lower()
    else:
        if _BAD_DOMAIN_CHARS.search(domain) or ".." in domain or domain.startswith("."):
            return None
        domain = _normalize_domain(domain)
        if not domain:
            return None
    addr = f"{local.lower()}@{domain}"
    return addr, domain


def _mailbox(tokens: list[tuple[int, str, int, int]], prefix: str) -> Address | None:
    """The mailbox in one comma-separated piece; prefix is display text carried over."""
    angles = [t for t in tokens if t[0] == _ANGLE]
    comments = [t[1][1:-1] if t[1].endswith(")") else t[1][1:] for t in tokens if t[0] == _COMMENT]
    if angles:
        chosen = next((t for t in angles if "@" in t[1]), angles[0])
        inner = chosen[1][1:]
        if inner.endswith(">"):
            inner = inner[:-1]
        made = _make_addr(inner)
        if made is None:
            return None
        phrase = _phrase([t for t in tokens if t[2] < chosen[2] and t[0] != _ANGLE])
        display = " ".join(p for p in (prefix, phrase) if p)
        if not display.strip() and comments:
            display = " ".join(comments)
        return Address(_clean_display(display), made[0], made[1])

    # No angle brackets: glue adjacent tokens into words; the word with an @ is the address.
    words: list[str] = []
    last_end = -1
    for kind, text, start, end in tokens:
        if kind == _COMMENT:
            last_end = -1
            continue
        if kind in (_QUOTED, _ATOM, _OTHER, _SEP):
            if start == last_end and words:
                words[-1] += text
            else:
                words.append(text)
            last_end = end
    addr_index = next(
        (i for i in range(len(words) - 1, -1, -1) if "@" in words[i].replace('\\"', "")), None
    )
    if addr_index is None:
        return None
    made = _make_addr(words[addr_index])
    if made is None:
        return None
    others = [_unquote(w) for i, w in enumerate(words) if i != addr_index]
    display = " ".join(([prefix] if prefix else []) + others)
    if not display.strip() and comments:
        display = " ".join(comments)
    return Address(_clean_display(display), made[0], made[1])


def _has_address(tokens: list[tuple[int, str, int, int]]) -> bool:
    return any(t[0] in (_ANGLE, _ATOM, _QUOTED) and "@" in t[1] for t in tokens)


def _iter_mailboxes(value: str):
    if not value or not isinstance(value, str):
        return
    tokens = _tokens(value)
    # Indices of top-level ";" so a ":" can be told apart as a group opener.
    semis = [i for i, t in enumerate(tokens) if t[0] == _SEP and t[1] == ";"]
    piece: list[tuple[int, str, int, int]] = []
    carry = ""  # display text from pieces without an address ("Smith," + " John <j@x>")
    for i, tok in enumerate(tokens):
        kind, text = tok[0], tok[1]
        if kind == _SEP and text == ":" and semis and semis[-1] > i and not _has_address(piece):
            piece = []  # group name: "friends: a@b, c@d;"
            carry = ""
            continue
        if kind == _SEP and text in ",;":
            if piece:
                if _has_address(piece):
                    box = _mailbox(piece, carry)
                    carry = ""
                    if box is not None:
                        yield box
                elif text == ",":
                    carry = " ".join(x for x in (carry, _phrase(piece) + ",") if x)
                else:
                    carry = ""
            if text == ";":
                carry = ""
            piece = []
            continue
        piece.append(tok)
    if piece and _has_address(piece):
        box = _mailbox(piece, carry)
        if box is not None:
            yield box


def _phrase(tokens: list[tuple[int, str, int, int]]) -> str:
    """The tokens' text as written (quotes removed), comments dropped."""
    out: list[str] = []
    last_end = -1
    for kind, text, start, end in tokens:
        if kind == _COMMENT:
            continue
        if out and start != last_end:
            out.append(" ")
        out.append(_unquote(text) if kind == _QUOTED else text)
        last_end = end
    return "".join(out)


# The shapes nearly every From and Sender header has, read with one regex: plain words or
# one quoted string, then <local@domain>; or a bare local@domain. ASCII only, no "=" or "?"
# in the name (an encoded word is decoded by the general path), no dot at a domain's end.
# tests/test_addresses.py checks that this gives what the tokenizer gives wherever it
# applies.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/^_`{|}~.-]+"
_LOCAL = r"([A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+)"
_DOMAIN = r"([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)"
_SIMPLE = re.compile(
    rf'[ \t]*(?:(?:({_ATEXT}(?:[ \t]+{_ATEXT})*)|"([^"\\=?\r\n]*)")[ \t]*)?'
    rf"<{_LOCAL}@{_DOMAIN}>[ \t]*"
    rf"|[ \t]*{_LOCAL}@{_DOMAIN}[ \t]*"
)


def _simple(value: str) -> Address | None:
    m = _SIMPLE.fullmatch(value) if value.isascii() else None
    if m is None:
        return None
    words, quoted, local, domain, bare_local, bare_domain = m.groups()
    if local is None:
        local, domain, words = bare_local, bare_domain, ""
    display = " ".join((quoted if quoted is not None else words or "").split())
    domain = domain.lower()
    return Address(display, f"{local.lower()}@{domain}", domain)


def parse_address(value: str) -> Address | None:
    """The first mailbox in a header value; None when there is none (or only garbage)."""
    if isinstance(value, str):
        simple = _simple(value)
        if simple is not None:
            return simple
    try:
        for box in _iter_mailboxes(value):
            return box
    except Exception:  # noqa: BLE001 - hostile headers give None, never an exception
        return None
    return None


def parse_address_list(value: str) -> list[Address]:
    """Every mailbox in a To/Cc-style header, in order; group names are dropped."""
    try:
        return list(_iter_mailboxes(value))
    except Exception:  # noqa: BLE001
        return []


# --- Message-IDs ------------------------------------------------------------------------

_MSGID = re.compile(r"<([^<>]*)>")
_MSGID_COMMENT = re.compile(r"\([^()]*\)")
_WS = re.compile(r"\s+")


def normalize_msgid(value: str) -> str:
    """The first ``<id>`` without brackets and whitespace; '' when there is none.

    A bare id without brackets (``1234.5678@host``) is accepted when it contains an ``@``:
    broken mailers write those, and the sent index uses this same function, so both sides
    agree. Case is kept: the local part of a Message-ID is case-sensitive.
    """
    ids = parse_msgid_list(value, first_only=True)
    return ids[0] if ids else ""


def parse_msgid_list(value: str, first_only: bool = False) -> list[str]:
    """All ids of an In-Reply-To / References value, in order (duplicates kept)."""
    if not value or not isinstance(value, str):
        return []
    out: list[str] = []
    for m in _MSGID.finditer(value):
        ident = _WS.sub("", m.group(1))
        if ident:
            out.append(ident)
            if first_only:
                return out
    if out or "<" in value:
        return out
    for word in _WS.split(_MSGID_COMMENT.sub(" ", value)):
        word = word.strip(",;\"'")
        # A bare id is id-left "@" id-right, and never holds an angle bracket: brackets are
        # the delimiters every other path strips, so ">@" is not an id.
        left, at, right = word.rpartition("@")
        if at and left and right and ">" not in word:
            out.append(word)
            if first_only:
                break
    return out
