"""DNS messages on the wire, written and read by hand for the few shapes a resolver client
needs: one question out, one response in.

Why not dnspython here: at 100k messages a run asks about 200k names, and building every
query and reading every response through dnspython's general message objects (name objects
hashed and validated label by label, an rdata class per record) cost more CPU than the
modules that asked (measured: 54 s of a 140 s profiled run went to the exchange, 36 s of it
in dnspython). This reader keeps dnspython's semantics where they decide an answer
(tests/test_dns_codec.py compares the two on generated responses of every shape):
- names compare without ASCII case; a compression pointer must point before the name (and
  before the previous pointer), a label is at most 63 bytes and a name at most 255;
- records of one (name, class, type) in a section form one set: duplicates collapse, its TTL
  is the smallest of its records', and CNAME and SOA keep only their last record;
- a response whose sections do not parse, that has bytes after its last record, an OPT
  record anywhere but once at the root in the additional section, or a TSIG, is not a
  response at all (the datagram is ignored, as dnspython's from_wire raising was);
- an EDNS extended rcode counts.
Names that are not plain host names (escapes, non-ASCII, "@") are still turned into labels by
dnspython's from_text, so what is asked is exactly what dnspython would ask.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

import dns.exception
import dns.ipv6
import dns.name

T_A, T_NS, T_CNAME, T_SOA, T_PTR, T_MX, T_TXT, T_AAAA = (
    1, 2, 5, 6, 12, 15, 16, 28
)  # fmt: skip
#: The types the resolver asks, by name.
TYPES = {"A": T_A, "NS": T_NS, "CNAME": T_CNAME, "SOA": T_SOA, "PTR": T_PTR, "MX": T_MX,
         "TXT": T_TXT, "AAAA": T_AAAA}  # fmt: skip
T_OPT, T_TSIG = 41, 250
CLASS_IN = 1
RCODE_NOERROR, RCODE_FORMERR, RCODE_SERVFAIL, RCODE_NXDOMAIN = 0, 1, 2, 3
RCODE_NOTIMP, RCODE_REFUSED = 4, 5
FLAG_QR, FLAG_TC, FLAG_RD = 0x8000, 0x0200, 0x0100

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*\.?")
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
#: bytes a label may hold unescaped in dnspython's text form
_SAFE = frozenset(range(0x21, 0x7F)) - frozenset(b'"().;\\@$')

Labels = tuple[bytes, ...]  # lower-cased, without the root label


class FormError(ValueError):
    """The bytes are not a DNS message this client accepts."""


def name_labels(name: str) -> Labels:
    """The labels dnspython's from_text gives `name` (relative names end at the root).

    Raises ValueError for what dnspython refuses (an empty label, a label over 63 bytes...).
    """
    if _PLAIN_NAME.fullmatch(name) and len(name.rstrip(".")) <= 253:
        return tuple(name.rstrip(".").encode("ascii").split(b"."))
    try:
        parsed = dns.name.from_text(name)
    except dns.exception.DNSException as exc:
        raise ValueError(str(exc)) from exc
    return tuple(parsed.labels[:-1])


def encode_query(qid: int, labels: Labels, rdtype: int) -> bytes:
    """A recursive query for one (name, type, IN), without EDNS (as dnspython's make_query)."""
    out = bytearray(_HEADER.pack(qid, FLAG_RD, 1, 0, 0, 0))
    for label in labels:
        out.append(len(label))
        out += label
    out += b"\x00"
    out += struct.pack("!HH", rdtype, CLASS_IN)
    return bytes(out)


def label_text(label: bytes) -> str:
    """One label as dnspython writes it (special and non-printable bytes escaped)."""
    if all(c in _SAFE for c in label):
        return label.decode("ascii")
    out = []
    for c in label:
        if c in b'"().;\\@$':
            out.append("\\" + chr(c))
        elif 0x20 < c < 0x7F:
            out.append(chr(c))
        else:
            out.append(f"\\{c:03d}")
    return "".join(out)


def name_text(labels: tuple[bytes, ...]) -> str:
    """A name's text without the final dot, lower-cased; the root is "."."""
    if not labels:
        return "."
    return ".".join(label_text(x) for x in labels).lower()


@dataclass(slots=True)
class RRSet:
    """The records of one (name, class, type) in a section, as dnspython groups them."""

    name: Labels  # lower-cased
    rdclass: int
    rdtype: int
    ttl: int
    rdatas: list[object]  # decoded rdata (see `_rdata`), distinct, in order of appearance
    keys: list[object]  # what makes two rdatas equal


@dataclass(slots=True)
class Response:
    qid: int
    flags: int
    rcode: int  # with the EDNS extended bits
    question: list[tuple[Labels, int, int]]
    answer: list[RRSet]
    authority: list[RRSet]


def _name(wire: bytes, pos: int, end: int) -> tuple[Labels, int]:
    """(lower-cased labels, position after the name in the record) of a possibly compressed
    name; `end` bounds every read, also after a pointer (as dnspython's restricted parser)."""
    labels: list[bytes] = []
    length = 1
    after = -1
    biggest = pos
    while True:
        if pos >= end:
            raise FormError("name runs past its record")
        count = wire[pos]
        if count == 0:
            pos += 1
            break
        if count < 64:
            stop = pos + 1 + count
            if stop > end:
                raise FormError("label runs past its record")
            labels.append(wire[pos + 1 : stop].lower())
            length += count + 1
            if length > 255:
                raise FormError("name longer than 255 bytes")
            pos = stop
        elif count >= 192:
            if pos + 1 >= end:
                raise FormError("pointer runs past its record")
            target = ((count & 0x3F) << 8) | wire[pos + 1]
            if target >= biggest:
                raise FormError("compression pointer does not point back")
            if after < 0:
                after = pos + 2
            biggest = target
            pos = target
        else:
            raise FormError("unknown label type")
    return tuple(labels), (after if after >= 0 else pos)


def _rdata(wire: bytes, pos: int, end: int, rdtype: int) -> tuple[object, object]:
    """(decoded rdata, its identity in a set) of one record; the rdata must fill `end`."""
    if rdtype == T_A:
        if end - pos != 4:
            raise FormError("A record of the wrong length")
        raw = wire[pos:end]
        return ".".join(map(str, raw)), raw
    if rdtype == T_AAAA:
        if end - pos != 16:
            raise FormError("AAAA record of the wrong length")
        raw = wire[pos:end]
        return dns.ipv6.inet_ntoa(raw), raw
    if rdtype in (T_NS, T_CNAME, T_PTR):
        labels, stop = _name(wire, pos, end)
        if stop != end:
            raise FormError("bytes after the name in a record")
        return labels, labels
    if rdtype == T_MX:
        if end - pos < 3:
            raise FormError("MX record too short")
        pref = (wire[pos] << 8) | wire[pos + 1]
        labels, stop = _name(wire, pos + 2, end)
        if stop != end:
            raise FormError("bytes after the name in a record")
        return (pref, labels), (pref, labels)
    if rdtype == T_TXT:
        strings = []
        while pos < end:
            stop = pos + 1 + wire[pos]
            if stop > end:
                raise FormError("TXT string runs past its record")
            strings.append(wire[pos + 1 : stop])
            pos = stop
        if not strings:
            raise FormError("TXT record without a string")
        return tuple(strings), tuple(strings)
    if rdtype == T_SOA:
        _mname, pos = _name(wire, pos, end)
        _rname, pos = _name(wire, pos, end)
        if end - pos != 20:
            raise FormError("SOA record of the wrong length")
        minimum = struct.unpack_from("!I", wire, pos + 16)[0]
        return minimum, wire[pos:end]
    return None, wire[pos:end]


_SINGLETON = frozenset({T_CNAME, T_SOA, 39, 30, 47})  # CNAME, SOA, DNAME, NXT, NSEC


def decode(wire: bytes) -> Response:
    """Read a response; raises FormError for what is not one (see the module docstring)."""
    if len(wire) < 12:
        raise FormError("shorter than a DNS header")
    qid, flags, qd, an, ns, ar = _HEADER.unpack_from(wire)
    pos = 12
    n = len(wire)
    question: list[tuple[Labels, int, int]] = []
    for _ in range(qd):
        labels, pos = _name(wire, pos, n)
        if pos + 4 > n:
            raise FormError("question runs past the message")
        rdtype, rdclass = struct.unpack_from("!HH", wire, pos)
        pos += 4
        if (labels, rdtype, rdclass) not in question:
            question.append((labels, rdtype, rdclass))
    sections: list[list[RRSet]] = [[], [], []]
    ext_rcode = 0
    opt_seen = False
    for index, count in enumerate((an, ns, ar)):
        section = sections[index]
        for _ in range(count):
            labels, pos = _name(wire, pos, n)
            if pos + 10 > n:
                raise FormError("record runs past the message")
            rdtype, rdclass, ttl, rdlen = _RR.unpack_from(wire, pos)
            pos += 10
            end = pos + rdlen
            if end > n:
                raise FormError("record data runs past the message")
            if rdtype == T_TSIG:
                raise FormError("a signed (TSIG) response")
            if rdtype == T_OPT:
                if index != 2 or opt_seen or labels:
                    raise FormError("OPT record out of place")
                opt_seen = True
                _options(wire, pos, end)
                ext_rcode = ttl >> 24
                pos = end
                continue
            rdata, key = _rdata(wire, pos, end, rdtype)
            pos = end
            _add(section, labels, rdclass, rdtype, ttl, rdata, key)
    if pos != n:
        raise FormError("bytes after the last record")
    rcode = (flags & 0x000F) | (ext_rcode << 4)
    return Response(qid, flags, rcode, question, sections[0], sections[1])


def _options(wire: bytes, pos: int, end: int) -> None:
    while pos < end:
        if pos + 4 > end:
            raise FormError("EDNS option runs past its record")
        length = (wire[pos + 2] << 8) | wire[pos + 3]
        pos += 4 + length
    if pos != end:
        raise FormError("EDNS option runs past its record")


def _add(
    section: list[RRSet],
    labels: Labels,
    rdclass: int,
    rdtype: int,
    ttl: int,
    rdata: object,
    key: object,
) -> None:
    for rrset in section:
        if rrset.rdtype == rdtype and rrset.rdclass == rdclass and rrset.name == labels:
            break
    else:
        section.append(RRSet(labels, rdclass, rdtype, ttl, [rdata], [key]))
        return
    rrset.ttl = min(rrset.ttl, ttl)
    if rdtype in _SINGLETON:
        rrset.rdatas, rrset.keys = [rdata], [key]
    elif key not in rrset.keys:
        rrset.rdatas.append(rdata)
        rrset.keys.append(key)


def is_response(resp: Response, qid: int, labels: Labels, rdtype: int) -> bool:
    """dnspython's Message.is_response for our one-question query."""
    if not resp.flags & FLAG_QR or resp.qid != qid or (resp.flags >> 11) & 0xF != 0:
        return False
    if resp.rcode in (RCODE_FORMERR, RCODE_SERVFAIL, RCODE_NOTIMP, RCODE_REFUSED) and not (
        resp.question
    ):
        return True
    mine = (tuple(x.lower() for x in labels), rdtype, CLASS_IN)
    return resp.question == [mine]


def rdata_text(rdata: object, rdtype: int) -> str:
    """A record as the resolver's callers read it (the forms dnspython's to_text gave)."""
    if rdtype == T_TXT:
        return b"".join(rdata).decode("utf-8", "replace")  # type: ignore[arg-type]
    if rdtype == T_MX:
        pref, labels = rdata  # type: ignore[misc]
        return f"{pref} {name_text(labels)}"
    if rdtype in (T_PTR, T_NS, T_CNAME):
        return name_text(rdata)  # type: ignore[arg-type]
    return str(rdata)
