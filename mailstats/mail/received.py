"""Received header parsing, shared by every module that looks at the delivery path.

There is no grammar that real MTAs follow: RFC 5321 only fixes the clause keywords (``from``,
``by``, ``via``, ``with``, ``id``, ``for``) and the time stamp after the last ``;``. What sits
in the parentheses after ``from`` is each MTA's own idea:

==========  ===================================================  ========================
MTA         from part                                            first word is
==========  ===================================================  ========================
Postfix     ``from helo (rdns [ip])``, ``(unknown [ip])``        HELO
Sendmail    ``from helo (user@rdns [ip] (may be forged))``       HELO
Exim        ``from rdns ([ip]:port helo=x)``, ``from [ip] (helo=x)``  rDNS (HELO if no helo=)
qmail       ``from rdns (HELO x) (user@ip)``                     rDNS or ``unknown``
Exchange    ``from helo (ip)``                                   HELO
fetchmail   ``from host [ip]``                                   the server polled
==========  ===================================================  ========================

So the parser tokenizes (words and balanced comments), splits the clauses on the keywords,
and reads the from-clause comments with a few small patterns. Host names are lower-cased
with any trailing dot removed; ``unknown``/``unverified`` place-holders become ''.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from mailstats.mail.dates import parse_date

if TYPE_CHECKING:
    from mailstats.services import Identity

__all__ = ["Hop", "find_origin", "is_public_ip", "normalize_ip", "parse_received"]


@dataclass(frozen=True, slots=True)
class Hop:
    """One Received header, as far as it could be read. Empty strings mean "not stated"."""

    raw: str
    helo: str = ""
    rdns: str = ""
    ip: str = ""
    by: str = ""
    protocol: str = ""
    id: str = ""
    timestamp: datetime | None = None
    parsed: bool = False

    @property
    def host(self) -> str:
        """The sending host's name: its verified-by-the-receiver rDNS, else a FQDN HELO.

        A HELO without a dot, an address literal or ``localhost`` names nothing that could be
        compared with a domain, so it gives ''.
        """
        if self.rdns:
            return self.rdns
        helo = self.helo
        if not helo or _FQDN.fullmatch(helo) is None or _is_ip_literal(helo):
            return ""
        return helo


# --- tokenizing -------------------------------------------------------------------------

# A comment with up to three levels of nesting, a word, or a stray parenthesis.
_TOKEN = re.compile(
    r"(\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\))"
    r"|([^\s()]+)"
    r"|[()]"
)
_KEYWORDS = frozenset(("from", "by", "via", "with", "id", "for"))

# Inside the from-clause comments.
_BRACKET_IP = re.compile(r"\[(?:ipv6:)?([0-9a-f:.]+(?:%[\w.]+)?)\]", re.I)
_RDNS_BEFORE_IP = re.compile(r"(?:^|[\s(])(?:[^\s@()\[\]]*@)?([^\s@()\[\]]+)\s+\[", re.I)
_EXIM_HELO = re.compile(r"\bhelo=([^\s()]+)", re.I)
_QMAIL_HELO = re.compile(r"^\(\s*(?:HELO|EHLO)\s+([^\s()]+)", re.I)
_EXIM_ID = re.compile(r"^[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}$")
_FQDN = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)+")
_LOOSE_DATE = re.compile(
    r"(?:\b\d{1,2}\s+[A-Za-z]{3}\s+\d{2,4}|\b\d{4}-\d\d-\d\d)\s+\d{1,2}:\d\d[^;]*$"
)
_NO_NAME = frozenset(("unknown", "unverified", "localhost.localdomain.invalid"))


@lru_cache(maxsize=65536)
def normalize_ip(text: str) -> str:
    """Canonical text of an IP address; '' when it is not one.

    Accepts ``[1.2.3.4]``, ``IPv6:2001:db8::1``, ``::ffff:1.2.3.4`` (given as the IPv4 form,
    since that is the address that connected) and dotted quads with leading zeros.
    """
    text = text.strip().strip("[]")
    if text[:5].lower() == "ipv6:":
        text = text[5:]
    if not text:
        return ""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
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


def _is_ip_literal(text: str) -> bool:
    return bool(normalize_ip(text))


def _hostname(word: str) -> str:
    word = word.strip().rstrip(".").lower()
    if word in _NO_NAME:
        return ""
    return word


def parse_received(value: str) -> Hop:
    """Read one Received header value (unfolded). Never raises.

    ``parsed`` is True when any field (a host, an address, a time stamp...) was recognized;
    otherwise the result is ``Hop(raw=value)`` and every other field is empty.
    """
    try:
        return _parse(value)
    except Exception:  # noqa: BLE001 - a hostile header must not stop a run
        return Hop(raw=value if isinstance(value, str) else str(value))


# Postfix's own shape, three Received lines in four of most mailboxes: read with one regex.
# Anything more (TLS comments, "may be forged", a missing part) takes the general path;
# tests/test_received.py checks both paths agree on every line they both accept.
_POSTFIX_FAST = re.compile(
    r"from ([^\s()\[\];@]+) \(([^\s()\[\];@]+) \[([0-9A-Fa-f:.]+)\]\) by ([^\s()\[\];]+) "
    r"\(Postfix\) with ([A-Za-z0-9]+) id ([A-Za-z0-9]+)(?: for <[^<>\s;()]*>)?"
)


def _parse(value: str, fast: bool = True) -> Hop:
    main, sep, tail = value.rpartition(";")
    if fast and sep:
        m = _POSTFIX_FAST.fullmatch(main)
        if m is not None:
            stamp = parse_date(tail)
            if stamp is not None:
                return _postfix_hop(value, m, stamp)
    timestamp = parse_date(tail) if sep else None
    if timestamp is None:
        main = value  # no date after the last ";": it was part of something else
        # Some MTAs (SendGrid, old Mercury) leave out the ";": try a date at the very end.
        loose = _LOOSE_DATE.search(value)
        if loose is not None:
            timestamp = parse_date(loose.group(0))

    # Split into clauses: keyword -> [value, comments, loose words]. A comment right after
    # a keyword means the value is missing ("from ([1.2.3.4]) by ...").
    clauses: dict[str, list] = {}
    current: list | None = None
    pending = False
    current_kw = ""
    for comment, word in _TOKEN.findall(main):
        if word:
            low = word.lower()
            if low in _KEYWORDS and (not pending or (current_kw == "from" and low == "by")):
                pending = False
                if low in clauses:
                    current = None  # "with X by AntispamTT": the first of each counts
                    continue
                current = ["", [], []]
                clauses[low] = current
                current_kw = low
                pending = True
            elif current is None:
                continue
            elif pending:
                current[0] = word
                pending = False
            else:
                current[2].append(word)
        elif comment and current is not None:
            pending = False
            current[1].append(comment)
    if not clauses:
        if timestamp is None:
            return Hop(raw=value)
        return Hop(raw=value, timestamp=timestamp, parsed=True)

    helo = rdns = ip = ""
    by = clauses.get("by")
    by_value = _hostname(by[0]) if by is not None else ""
    with_ = clauses.get("with")
    protocol = " ".join([with_[0], *with_[2]]) if with_ is not None and with_[0] else ""
    id_ = clauses.get("id")
    ident = id_[0].strip("<>") if id_ is not None else ""
    frm = clauses.get("from")
    if frm is not None:
        helo, rdns, ip = _from_part(frm[0], frm[1], frm[2], protocol, ident, main)

    if not (helo or rdns or ip or by_value or protocol or ident or timestamp):
        return Hop(raw=value)
    return Hop(
        raw=value,
        helo=helo,
        rdns=rdns,
        ip=ip,
        by=by_value,
        protocol=protocol,
        id=ident,
        timestamp=timestamp,
        parsed=True,
    )


def _postfix_hop(value: str, m: re.Match[str], timestamp: datetime) -> Hop:
    first, rdns_word, ip_word, by_word, protocol, ident = m.groups()
    first_is_literal = _is_ip_literal(first)
    helo = first.lower() if first_is_literal else _hostname(first.rstrip("_"))
    rdns = _hostname(rdns_word)
    if rdns and _is_ip_literal(rdns):
        rdns = ""
    return Hop(
        raw=value,
        helo=helo,
        rdns=rdns,
        ip=normalize_ip(ip_word),
        by=_hostname(by_word),
        protocol=protocol,
        id=ident,
        timestamp=timestamp,
        parsed=True,
    )


def _from_part(
    first: str, comments: list[str], words: list[str], protocol: str, ident: str, main: str
) -> tuple[str, str, str]:
    """(helo, rdns, ip) from the from-clause's first word, its comments and loose words."""
    text = " ".join(comments)
    ip = ""
    rdns = ""
    helo = ""
    qmail_helo = _QMAIL_HELO.match(comments[0]) if comments else None
    # qmail: "(HELO [192.168.0.10]) (78.165.110.211)": the HELO's literal is what the client
    # claimed, the connecting address is in the later comment.
    addr_text = " ".join(comments[1:]) if qmail_helo is not None else text

    # The address: a [literal] in a comment, else a bare address comment (qmail, Exchange:
    # "(1.2.3.4)", "(user@1.2.3.4)"), else a [literal] word (fetchmail), else the first word.
    for m in _BRACKET_IP.finditer(addr_text):
        ip = normalize_ip(m.group(1))
        if ip:
            break
    if not ip:
        for c in comments[1:] if qmail_helo is not None else comments:
            inner = c[1:-1].strip()
            if not inner:
                continue
            head = inner.split(None, 1)[0].rsplit("@", 1)[-1]
            ip = normalize_ip(head)
            if ip:
                break
    if not ip:
        for w in words:
            if w.startswith("["):
                ip = normalize_ip(w.split("]", 1)[0])
                if ip:
                    break
    if not ip and first:
        literal = first
        if "[" in literal:
            literal = literal[literal.index("[") :].split("]", 1)[0]
        ip = normalize_ip(literal)

    exim_helo = _EXIM_HELO.search(text)
    first_is_literal = first.startswith("[") or _is_ip_literal(first)
    name = "" if first_is_literal else _hostname(first.split("[", 1)[0].rstrip("_"))

    if exim_helo is not None:
        # Exim: the first word is the verified rDNS (or the [ip] when there is none).
        helo = _hostname(exim_helo.group(1))
        rdns = name
    elif qmail_helo is not None:
        # qmail: "from rdns (HELO helo) (ip)"; rdns is "unknown" when there was none.
        helo = _hostname(qmail_helo.group(1))
        rdns = name
    else:
        m = _RDNS_BEFORE_IP.search(text)
        if m is not None:
            # Postfix / Sendmail: "(rdns [ip])", "(user@rdns [ip])", "(IDENT:u@rdns [ip])".
            rdns = _hostname(m.group(1))
            if "may be forged" in text.lower():
                # Sendmail's way of saying the PTR does not resolve back; Postfix writes
                # "unknown" in the same case. An unverified PTR is whatever its owner wants.
                rdns = ""
            helo = first.lower() if first_is_literal else name
        elif name and comments and _looks_exim(main, protocol, ident) and ip:
            # Exim writes "from rdns ([ip])" when the HELO equals the verified rDNS.
            rdns = helo = name
        else:
            helo = first.lower() if first_is_literal else name
    if rdns and _is_ip_literal(rdns):
        rdns = ""
    return helo, rdns, ip


def _looks_exim(main: str, protocol: str, ident: str) -> bool:
    if "(Exim" in main:
        return True
    return bool(ident) and _EXIM_ID.match(ident) is not None and protocol.islower()


# --- origin -----------------------------------------------------------------------------

# Documentation ranges stand in for public addresses in generated fixtures (see is_public_ip).
_TEST_NETS = (
    ipaddress.ip_network("192.0.2.0/24"),
    ipaddress.ip_network("198.51.100.0/24"),
    ipaddress.ip_network("203.0.113.0/24"),
    ipaddress.ip_network("2001:db8::/32"),
)


@lru_cache(maxsize=65536)
def is_public_ip(ip: str) -> bool:
    """True for a global unicast address: one a DNSBL or SPF check can say something about.

    Private, loopback, link-local, CGNAT (100.64.0.0/10), multicast, reserved and unspecified
    addresses are not public. The documentation ranges 192.0.2.0/24, 198.51.100.0/24,
    203.0.113.0/24 and 2001:db8::/32 deliberately *are*: the project's generated test mail
    uses them as the senders' "public" addresses (RFC 5737/3849 reserve them for exactly
    such examples), and since they are never routed no real message can carry one as a
    genuine origin, so counting them changes nothing on real mail.
    """
    try:
        addr = ipaddress.ip_address(normalize_ip(ip) if ip else "")
    except ValueError:
        return False
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    for net in _TEST_NETS:
        if addr.version == net.version and addr in net:
            return True
    if (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
    ):
        return False
    return addr.is_global


def find_origin(hops: list[Hop], identity: Identity | None) -> tuple[int, Hop] | None:
    """The origin hop (DESIGN.md): from the top, the first public IP not a trusted relay.

    Index 0 is the topmost Received header, the one the user's own provider added last.
    """
    for index, hop in enumerate(hops):
        if not hop.ip or not is_public_ip(hop.ip):
            continue
        if identity is not None and identity.is_trusted_relay(
            hop.ip, hop.host or hop.rdns or hop.helo
        ):
            continue
        return index, hop
    return None
