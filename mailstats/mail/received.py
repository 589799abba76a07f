"""Received header parsing, shared by every module that looks at the delivery path.

There is no grammar that real MTAs follow: RFC 5321 only fixes the clause keywords (``from``,
``by``, ``via``, ``with``, ``id``, ``for``) and the time stamp after the last ``;``. What sits
in the parentheses after ``from`` is each MTA's own idea:

===========  =========================================================  ===================
MTA          from part                                                  first word is
===========  =========================================================  ===================
Postfix      ``from helo (rdns [ip])``, ``(unknown [ip])``              HELO
Sendmail     ``from helo (user@rdns [ip] (may be forged))``             HELO
Exim         ``from rdns ([ip]:port helo=x)``, ``from [ip] (helo=x)``   rDNS (HELO if no helo=)
ecelerity    ``from name ([ip:port] helo=x)``                           not verified
qmail        ``from rdns (HELO x) (user@ip)``, ``from helo (ip)``       rDNS / HELO
CommuniGate  ``from [ip] (account u HELO x)``, ``(account u [ip] verified)``  the address
ZMailer      ``from rdns ([ip]:port "EHLO x" rhost-flags-...)``         rDNS
Exchange     ``from helo (ip)``                                         HELO
fetchmail    ``from host [ip]``                                         the server polled
===========  =========================================================  ===================

The one rule that matters for trust: a HELO/EHLO argument is chosen by the sender, the address
the receiving MTA saw on its socket is not. So the parser first cuts every HELO claim out of
the comments (``helo=...``, ``HELO ...``, ``EHLO ...`` up to the end of their comment), and
only then looks for the address, in the *last* comment that carries one: the receiving MTA
writes its own comment after the sender's HELO, and a HELO that contains parentheses can only
add comments before it. Host names are lower-cased with any trailing dot removed; place-holders
(``unknown``, ``softdnserr``, ``may be forged``...) become ''. NUL and other control bytes are
removed first. Every pattern runs in time linear in the header's length (a date is looked for
only in the header's last few hundred characters), so a hostile 256 KiB header costs
milliseconds: see tests/test_received_shapes.py and bench/bench_received.py.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

from mailstats.mail.dates import parse_date
from mailstats.mail.ips import CANONICAL_V4, not_an_ip, parse_ip

__all__ = [
    "Hop",
    "normalize_ip",
    "parse_received",
]


class Hop(NamedTuple):
    """One Received header, as far as it could be read. Empty strings mean "not stated".

    A NamedTuple, not a frozen dataclass: just as immutable, and made in 0.8 instead of
    2.6 us (a frozen dataclass sets each field through object.__setattr__), for each of
    the five Received headers of a typical real message.

    ``rdns`` is only ever a name the receiving MTA itself looked up (its comment), never the
    sender's HELO; ``ip`` is the address it saw the connection come from. ``by_ip`` is the
    receiving host's own address when the line states it (Exchange writes ``by host (ip)``).
    """

    raw: str
    helo: str = ""
    rdns: str = ""
    ip: str = ""
    by: str = ""
    protocol: str = ""
    id: str = ""
    timestamp: datetime | None = None
    parsed: bool = False
    by_ip: str = ""

    @property
    def host(self) -> str:
        """The sending host's name: its verified-by-the-receiver rDNS, else a FQDN HELO.

        A HELO without a dot, an address literal or ``localhost`` names nothing that could be
        compared with a domain, so it gives ''.
        """
        if self.rdns:
            return self.rdns
        helo = self.helo
        if not helo or not _is_fqdn(helo) or _is_ip_literal(helo):
            return ""
        return helo


# --- tokenizing -------------------------------------------------------------------------

_KW = r"(?:from|by|via|with|id|for)(?![^\s()])"
# Outside comments: a clause keyword, or a run of other words (one token for any number of
# them, so a header of a hundred thousand words costs one match). Possessive quantifiers:
# nothing is ever re-scanned.
_TOKEN = re.compile(r"(" + _KW + r")|((?:(?!" + _KW + r")[^\s()]++\s*+)++)", re.I)
_PAREN = re.compile(r"[()]")
_BY = frozenset(("by", "By", "bY", "BY"))
_LINE = re.compile(r"(\((?:[^()]++|\((?:[^()]++|\([^()]*+\))*+\))*+\))|" + _TOKEN.pattern, re.I)
# A genuine Received line is well under 4 KiB: Postfix and Sendmail take a HELO of at most
# 2 KiB (their command-line limit) and Exim rejects one that is not a host name. Of a longer
# line only the first 1 KiB and the last 3 KiB are read: the sender's HELO starts at the
# front, and the receiving MTA's own comment and clauses are at the end.
_MAX_LINE = 4096
_HEAD = 1024
_TAIL = 3072
_CONTROL = {c: None for c in (*range(0x09), *range(0x0E, 0x20), 0x7F)}  # for str.translate
_SPACES = re.compile(r"[\t\n\v\f\r]")

# Where a HELO claim starts inside a comment: Exim/ecelerity "helo=x", qmail/CommuniGate
# "HELO x", ZMailer '"EHLO x"'. Everything from there to the end of the comment is the claim.
_HELO_MARK = re.compile(r"(?:^|(?<=[\s\"']))(?:helo=|(?:helo|ehlo)(?:\s|$))", re.I)
_BRACKET = re.compile(r"\[([^\[\]\s]{1,80})\]")
_BRACKET_ANY = re.compile(r"\[[^\[\]\s]{0,80}\]")
_V4_PORT = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3})[:.]\d{1,5}")
_EXIM_ID = re.compile(r"^[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}$")
_DOTTED = re.compile(r"(?:[a-z0-9_-]++\.)++[a-z0-9_-]++")
_HOSTNAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?")
# Only the end of a header is searched for a date without ";" (SendGrid, old Mercury): the
# bounded window keeps the search linear however long the header is.
_LOOSE_DATE = re.compile(
    r"(?:\b\d{1,2}\s+[A-Za-z]{3}\s+\d{2,4}|\b\d{4}-\d\d-\d\d)\s+\d{1,2}:\d\d[^;]*$"
)
_DATE_WINDOW = 300
# What MTAs write where they have no verified name: never a host.
_NO_NAME = frozenset(
    (
        "unknown",
        "unverified",
        "verified",
        "softdnserr",
        "softdnserror",
        "unknown.domain",
        "localhost.localdomain.invalid",
        "may",
        "dynamic",
        "rdns",
        "helo",
        "ehlo",
    )
)


@lru_cache(maxsize=8192)
def normalize_ip(text: str) -> str:
    """Canonical text of an IP address; '' when it is not one.

    Accepts ``[1.2.3.4]``, ``IPv6:2001:db8::1``, ``::ffff:1.2.3.4`` (given as the IPv4 form,
    since that is the address that connected) and dotted quads with leading zeros.
    """
    text = text.strip().strip("[]")
    if text[:5].lower() == "ipv6:":
        text = text[5:]
    if not text or len(text) > 64 or not_an_ip(text):
        return ""
    if CANONICAL_V4.fullmatch(text) is not None:
        return text  # what the general path below returns for it, without its 4-5 us
    addr = parse_ip(text)
    if addr is None:
        parts = text.split(".")
        if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 for p in parts):
            return ""
        nums = [int(p) for p in parts]
        if max(nums) > 255:
            return ""
        return ".".join(map(str, nums))
    if addr.version == 6 and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def _address(text: str) -> str:
    """The IP in an address token, with the port shapes MTAs append: ``[ip]:port``,
    ``[ip:port]``, ``ip:port`` and ``[a.b.c.d.port]`` (IPv4 only: an IPv6 ``:n`` is part of
    the address)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    ip = normalize_ip(text)
    if ip:
        return ip
    m = _V4_PORT.fullmatch(text)
    return normalize_ip(m.group(1)) if m is not None else ""


def _is_fqdn(name: str) -> bool:
    """Two or more labels of letters, digits, "_" and "-", none starting or ending with "-".

    The pattern is possessive and the "-" rule is tested apart: a pattern that lets each
    label end on a non-"-" backtracks through every label when a long name fails at its end.
    """
    return (
        _DOTTED.fullmatch(name) is not None
        and name[0] != "-"
        and name[-1] != "-"
        and "-." not in name
        and ".-" not in name
    )


def _is_ip_literal(text: str) -> bool:
    return bool(normalize_ip(text))


def _hostname(word: str) -> str:
    word = word.strip().rstrip(".").lower()
    if word in _NO_NAME:
        return ""
    return word


def _name(word: str) -> str:
    """A receiver-written host name, or '' for a place-holder, a literal or junk."""
    word = _hostname(word.strip("<>"))
    if not word or _HOSTNAME.fullmatch(word) is None or _is_ip_literal(word):
        return ""
    return word


def _by_host(word: str) -> str:
    word = word.rstrip(";,").rsplit("@", 1)[-1]
    return _hostname(word)


def parse_received(value: str) -> Hop:
    """Read one Received header value (unfolded). Never raises.

    ``parsed`` is True when any field (a host, an address, a time stamp...) was recognized;
    otherwise the result is ``Hop(raw=value)`` and every other field is empty. ``raw`` is the
    value as given; control bytes are removed only from the copy that is parsed.
    """
    try:
        return _parse(value)
    except Exception:  # noqa: BLE001 - a hostile header must not stop a run
        return Hop(raw=value if isinstance(value, str) else str(value))


# Postfix's own shape, three Received lines in four of most mailboxes: read with one regex.
# Anything more (TLS comments, "may be forged", a missing part) takes the general path;
# tests/test_received.py checks both paths agree on every line they both accept.
_POSTFIX_FAST = re.compile(
    r"from ([^\s()\[\];@]+) \(([^\s()\[\];@]+) \[([0-9A-Fa-f:.]+)\]\) by ([^\s()\[\];@,]+) "
    r"\(Postfix\) with ([A-Za-z0-9]+) id ([A-Za-z0-9]+)(?: for <[^<>\s;()]*>)?"
)


def _parse(value: str, fast: bool = True) -> Hop:
    raw = value
    if not value.isprintable():  # C-fast test; False for tabs too, which are kept
        value = value.translate(_CONTROL)
    main, sep, tail = value.rpartition(";")
    if len(tail) > _DATE_WINDOW:
        sep = ""  # no date is that long: whatever follows the ";" is something else
    if fast and sep:
        m = _POSTFIX_FAST.fullmatch(main)
        if m is not None:
            stamp = parse_date(tail)
            if stamp is not None:
                return _postfix_hop(raw, m, stamp)
    timestamp = parse_date(tail) if sep else None
    if timestamp is None:
        main = value  # no date after the last ";": it was part of something else
        loose = _LOOSE_DATE.search(value[-_DATE_WINDOW:])
        if loose is not None:
            timestamp = parse_date(loose.group(0))
    if len(main) > _MAX_LINE:
        main = main[:_HEAD] + " " + main[-_TAIL:]
    if "\t" in main or "\n" in main or "\r" in main:
        main = _SPACES.sub(" ", main)

    clauses = _clauses(main)
    if not clauses:
        if timestamp is None:
            return Hop(raw=raw)
        return Hop(raw=raw, timestamp=timestamp, parsed=True)

    helo = rdns = ip = by_ip = ""
    by = clauses.get("by")
    by_value = _by_host(by[0]) if by is not None else ""
    if by is not None:
        by_ip = _by_address(by_value, by[1])
    with_ = clauses.get("with")
    protocol = " ".join([with_[0], *_words(with_[1])]) if with_ is not None and with_[0] else ""
    id_ = clauses.get("id")
    ident = id_[0].strip("<>") if id_ is not None else ""
    frm = clauses.get("from")
    if frm is not None:
        helo, rdns, ip = _from_part(frm[0], frm[1], protocol, ident, main)

    if not (helo or rdns or ip or by_value or protocol or ident or timestamp):
        return Hop(raw=raw)
    return Hop(
        raw=raw,
        helo=helo,
        rdns=rdns,
        ip=ip,
        by=by_value,
        protocol=protocol,
        id=ident,
        timestamp=timestamp,
        parsed=True,
        by_ip=by_ip,
    )


def _by_address(value: str, parts: list[tuple[str, str]]) -> str:
    """The receiving host's own address: a literal ``by`` value, or its first comment."""
    ip = _address(value)
    if ip or not parts or parts[0][0] != "c":
        return ip
    inner = parts[0][1][1:-1].split(None, 1)
    return _address(inner[0]) if inner else ""


def _words(parts: list[tuple[str, str]]) -> list[str]:
    return [w for kind, text in parts if kind == "w" for w in text.split()]


def _clauses(main: str) -> dict[str, list]:
    """keyword -> [value, parts]; parts are ("c", comment), ("w", words) and ("x", text that
    must never be read as an address), in order.

    A comment right after a keyword means the value is missing ("from ([1.2.3.4]) by ...").
    The first of each keyword counts ("with X by AntispamTT"), except for ``by``: the one
    that counts is the last ``by`` before the last ``with`` (the last ``by`` when there is
    no ``with``). The receiving MTA writes its ``by ... with ...`` after the sender's HELO, so
    a HELO with spaces ("x by [8.8.8.8] with POP3") cannot stand in for it; whatever such a
    HELO holds stays in the from part.
    """
    tokens = _tokens(main)
    by_at = [i for i, token in enumerate(tokens) if token[1] in _BY]
    if len(by_at) > 1:
        # qmail-scanner: "from x by host by uid 89 with qmail-scanner-1.14".
        by_at = [i for i in by_at if not tokens[i + 1 : i + 2] or tokens[i + 1][2][:4] != "uid "]
        by_at = by_at or [i for i, token in enumerate(tokens) if token[1] in _BY][:1]
    real_by = by_at[0] if by_at else -1
    if len(by_at) > 1:
        after = [i for i, (_, kw, _) in enumerate(tokens) if i > by_at[0] and kw.lower() == "with"]
        real_by = max((i for i in by_at if after and i < after[-1]), default=by_at[-1])

    clauses: dict[str, list] = {}
    current: list | None = None
    pending = injected = False
    current_kw = ""
    for index, (comment, keyword, words) in enumerate(tokens):
        if keyword:
            text = keyword.lower()
            if current_kw == "from" and index < real_by:
                # A keyword inside the sender's HELO: it and its value are the HELO's text.
                current = clauses["from"]
                current[1].append(("x", text))
                pending = False
                injected = True
                continue
            if not pending or (current_kw == "from" and text == "by"):
                pending = injected = False
                if text in clauses:
                    current = None  # "with X by AntispamTT": the first of each counts
                    continue
                current = ["", []]
                clauses[text] = current
                current_kw = text
                pending = True
                continue
            words = keyword
        if current is None:
            continue
        if comment:
            pending = False
            current[1].append(("c", comment))
        elif pending:
            first, _, rest = words.partition(" ")
            current[0] = first.strip()
            pending = False
            rest = rest.strip()
            if rest:
                current[1].append(("w", rest))
        elif injected and current_kw == "from":
            current[1].append(("x", words))
            injected = False
        else:
            current[1].append(("w", words))
    return clauses


def _tokens(main: str) -> list[tuple[str, str, str]]:
    """(comment, keyword, words) tuples, exactly one of the three set, in order.

    Nearly every real line nests comments at most three deep with every parenthesis
    paired, and one regex reads all of it. When some parenthesis is left over (a HELO with
    "(((", a comment nested deeper) the outermost balanced comments are found by
    `_comment_spans` instead and the text between them is read separately.
    """
    tokens = _LINE.findall(main)
    paired = sum(c.count("(") + c.count(")") for c, _, _ in tokens if c)
    if paired == main.count("(") + main.count(")"):
        return tokens
    tokens = []
    pos = 0
    for start, end in [*_comment_spans(main), (len(main), len(main))]:
        tokens.extend(("", kw, words) for kw, words in _TOKEN.findall(main, pos, start))
        if end > start:
            tokens.append((main[start:end], "", ""))
        pos = end
    return tokens


def _comment_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each outermost balanced comment, nested to any depth, in one pass.

    A parenthesis without a partner is no comment at all, so an unbalanced one in a HELO
    ("x (((") swallows nothing: the receiving MTA's own comment after it stays a comment.
    """
    open_at: list[int] = []
    spans = []
    for m in _PAREN.finditer(text):
        if m.group() == "(":
            open_at.append(m.start())
        elif open_at:
            start = open_at.pop()
            while spans and spans[-1][0] > start:
                spans.pop()  # nested inside this one
            spans.append((start, m.end()))
    return spans


def _postfix_hop(value: str, m: re.Match[str], timestamp: datetime) -> Hop:
    first, rdns_word, ip_word, by_word, protocol, ident = m.groups()
    first_is_literal = _is_ip_literal(first)
    helo = first.lower() if first_is_literal else _hostname(first.rstrip("_"))
    return Hop(
        raw=value,
        helo=helo,
        rdns=_name(rdns_word),
        ip=normalize_ip(ip_word),
        by=_by_host(by_word),
        protocol=protocol,
        id=ident,
        timestamp=timestamp,
        parsed=True,
    )


def _from_part(
    first: str, parts: list[tuple[str, str]], protocol: str, ident: str, main: str
) -> tuple[str, str, str]:
    """(helo, rdns, ip) from the from-clause's first word and its comments and words."""
    helo_claim = ""
    whole_claim = False  # a comment that is nothing but a HELO ("(HELO x)", qmail, GMX)
    # (kind, text, flag): for a comment, "it was nothing but a HELO claim"; for words, "they
    # follow a claim inside a comment" (a HELO with ")" in it could have written them).
    cleaned: list[tuple[str, str, bool]] = []
    mid_claim = False
    forged = False
    for kind, text in parts:
        if kind == "c":
            inner = text[1:-1]
            low = inner.lower()
            whole = False
            if "may be forged" in low:
                forged = True
            m = _HELO_MARK.search(inner)
            if m is not None:
                claim = inner[m.end() :].strip().strip("\"'")
                if not helo_claim:
                    helo_claim = claim.split(None, 1)[0].strip("\"'") if claim else ""
                if inner[: m.start()].strip():
                    mid_claim = True
                else:
                    whole_claim = whole = True
                inner = inner[: m.start()]
            cleaned.append(("c", inner, whole))
        elif kind == "w":
            cleaned.append(("w", text, mid_claim))

    # The address: the last comment or [literal] word that holds one, read from the right.
    ip = ""
    ip_comment = ""
    ip_pos = -1
    claim_before_ip = False
    for index in range(len(cleaned) - 1, -1, -1):
        kind, text, after_claim = cleaned[index]
        if kind == "c":
            for b in _BRACKET.finditer(text):
                ip = _address(b.group(1))
                if ip:
                    ip_comment, ip_pos = text, b.start()
                    break
            if not ip:
                head = text.split(None, 1)[0] if text.strip() else ""
                ip = _address(head.rsplit("@", 1)[-1])
        elif kind == "w" and not after_claim:
            for w in reversed(text.split()):
                if w.startswith("["):
                    ip = _address(w)
                    if ip:
                        break
        if ip:
            claim_before_ip = any(k == "c" and w for k, _, w in cleaned[:index])
            break
    first_is_literal = first.startswith("[") or _is_ip_literal(first)
    if not ip and first:
        literal = first
        if "[" in literal:
            literal = literal[literal.index("[") :]
        ip = _address(literal)

    name = "" if first_is_literal else _hostname(first.split("[", 1)[0].rstrip("_"))
    rdns = ""
    if not ip:
        # "(rdns [])": a name before an empty or unreadable literal is still the look-up.
        for kind, text, _ in reversed(cleaned):
            b = _BRACKET_ANY.search(text) if kind == "c" else None
            if b is not None:
                ip_comment, ip_pos = text, b.start()
                break
    if ip_pos > 0:
        # "(rdns [ip])", "(user@rdns [ip])", "(IDENT:u@rdns [ip])", "(rdns[ip])": one word
        # before the literal is the receiver's look-up; "account u@x [ip]" is not.
        before = ip_comment[:ip_pos].split()
        if len(before) == 1:
            rdns = _name(before[0].rsplit("@", 1)[-1])
    elif ip_pos == 0 and name and (helo_claim or _looks_exim(main, protocol, ident)):
        # Exim: "from rdns ([ip]:port helo=x)"; "from rdns ([ip])" when HELO equals rDNS.
        if not _PORT_INSIDE.match(ip_comment):
            rdns = _name(name)
    elif claim_before_ip and name:
        # qmail: "from rdns (HELO helo) (ip)"; rdns is "unknown" when there was none.
        rdns = _name(name)
    if forged:
        # Sendmail's way of saying the PTR does not resolve back; Postfix writes
        # "unknown" in the same case. An unverified PTR is whatever its owner wants.
        rdns = ""

    if helo_claim or whole_claim:
        helo = helo_claim.lower() if _is_ip_literal(helo_claim) else _hostname(helo_claim)
    else:
        helo = first.lower() if first_is_literal else name
    return helo, rdns, ip


# ecelerity writes the port inside the brackets ("[ip:port]"), Exim after them.
_PORT_INSIDE = re.compile(r"\s*\[\d{1,3}(?:\.\d{1,3}){3}:\d+\]")


def _looks_exim(main: str, protocol: str, ident: str) -> bool:
    if "(Exim" in main:
        return True
    return bool(ident) and _EXIM_ID.match(ident) is not None and protocol.islower()


# The origin-selection half (which hop is the origin, where trust stops) is in origin.py;
# its names stay importable from here, where every caller has always found them. Resolved
# on first use (PEP 562): origin.py imports this module, so a plain import here would fail
# whenever origin.py is the one imported first.
_FROM_ORIGIN = frozenset({"connected", "find_origin", "is_public_ip", "is_retrieval"})


def __getattr__(name: str) -> object:
    if name in _FROM_ORIGIN:
        from mailstats.mail import origin

        return getattr(origin, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
