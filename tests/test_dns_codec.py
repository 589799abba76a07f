"""The hand-written DNS reader against dnspython, which it replaced on the hot path.

Responses of every shape the resolver meets are generated with dnspython (CNAME chains,
loops, duplicate and split record sets, case-mixed names, compression, SOA in the authority,
EDNS extended rcodes, a question that is not ours), rendered to wire format by dnspython, and
read both ways: the answer the resolver would record must be the same, and so must the
verdict on whether the datagram answers our query at all. Damaged datagrams (cut short,
bytes appended, one byte changed) must never give an answer dnspython would not have read.
"""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailstats.services.dns_codec import (
    TYPES,
    FormError,
    decode,
    encode_query,
    is_response,
    name_labels,
)
from mailstats.services.dns_wire import (
    DEFAULT_NEGATIVE_TTL,
    ERROR,
    INCOMPLETE,
    LOOP,
    MAX_CHAIN,
    NODATA,
    NXDOMAIN,
    OK,
    REFUSED,
    SERVFAIL,
    WireAnswer,
    parse_response,
)


# -- the oracle: the dnspython reading this module replaced -----------------------------
def oracle(msg: dns.message.Message, name: str, rdtype: str) -> WireAnswer:
    rcode = msg.rcode()
    if rcode == dns.rcode.SERVFAIL:
        return WireAnswer(SERVFAIL)
    if rcode == dns.rcode.REFUSED:
        return WireAnswer(REFUSED)
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return WireAnswer(ERROR)
    want = dns.rdatatype.from_text(rdtype)
    current = dns.name.from_text(name)
    seen = {current}
    for _ in range(MAX_CHAIN):
        rrset = _find(msg, current, want)
        if rrset is not None:
            if rcode == dns.rcode.NXDOMAIN:
                return WireAnswer(ERROR)
            return WireAnswer(OK, tuple(_text(r, rdtype) for r in rrset), rrset.ttl)
        alias = _find(msg, current, dns.rdatatype.CNAME) if want != dns.rdatatype.CNAME else None
        if alias is None:
            break
        current = alias[0].target
        if current in seen:
            return WireAnswer(LOOP)
        seen.add(current)
    else:
        return WireAnswer(INCOMPLETE)
    if rcode == dns.rcode.NXDOMAIN:
        return WireAnswer(NXDOMAIN, (), _negative(msg))
    if len(seen) > 1 and not any(r.rdtype == dns.rdatatype.SOA for r in msg.authority):
        return WireAnswer(INCOMPLETE)
    return WireAnswer(NODATA, (), _negative(msg))


def _find(msg: dns.message.Message, name: dns.name.Name, rdtype: int) -> object | None:
    for rrset in msg.answer:
        if rrset.name == name and rrset.rdtype == rdtype:
            return rrset
    return None


def _text(rdata: object, rdtype: str) -> str:
    if rdtype == "TXT":
        return b"".join(rdata.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
    if rdtype == "MX":
        return f"{rdata.preference} {rdata.exchange.to_text(omit_final_dot=True).lower()}"  # type: ignore[attr-defined]
    if rdtype in ("PTR", "NS", "CNAME"):
        return rdata.target.to_text(omit_final_dot=True).lower()  # type: ignore[attr-defined]
    return rdata.to_text()  # type: ignore[attr-defined]


def _negative(msg: dns.message.Message) -> int:
    for rrset in msg.authority:
        if rrset.rdtype == dns.rdatatype.SOA:
            return int(min(rrset.ttl, rrset[0].minimum))
    return DEFAULT_NEGATIVE_TTL


# -- generated responses --------------------------------------------------------------
NAMES = ["mail.example.org", "alias.example.net", "x.example.com", "deep.a.b.example.org"]
RDATA = {
    "A": ["192.0.2.1", "198.51.100.7", "192.0.2.1"],
    "AAAA": ["2001:db8::1", "::ffff:192.0.2.9", "2001:db8:0:0:1::"],
    "MX": ["10 mx1.example.org.", "0 .", "20 MX2.Example.ORG."],
    "TXT": ['"v=spf1 -all"', '"part one" "part two"', '"\\195\\169t\\195\\169"', '"\\255"'],
    "PTR": ["host-1.example.net.", "Weird\\.Label.example.", "a\\@b.example."],
    "NS": ["ns1.example.org."],
}


def _case(name: str, flip: int) -> str:
    return "".join(c.upper() if (flip >> (i % 16)) & 1 else c for i, c in enumerate(name))


@st.composite
def specs(draw: st.DrawFn) -> dict:
    """A response described in plain data (dnspython is only called outside the strategy:
    its message ids come from the random module)."""
    qname = draw(st.sampled_from(NAMES))
    qtype = draw(st.sampled_from(sorted(RDATA)))
    spec: dict = {"qname": qname, "qtype": qtype, "id": draw(st.integers(0, 0xFFFF))}
    spec["rcode"] = draw(st.sampled_from([0, 0, 0, 3, 3, 2, 5, 1, 4]))
    spec["question"] = (
        _case(draw(st.sampled_from(NAMES)), draw(st.integers(0, 65535)))
        if draw(st.booleans())
        else None
    )
    spec["answer"] = []
    for _ in range(draw(st.integers(0, 5))):
        # the asked name and type most of the time, so record sets merge and chains form
        owner = _case(draw(st.sampled_from([qname, qname, *NAMES])), draw(st.integers(0, 65535)))
        rtype = draw(st.sampled_from([qtype, qtype, qtype, *sorted(RDATA), "CNAME", "CNAME"]))
        if rtype == "CNAME":
            values = [_case(draw(st.sampled_from(NAMES)), draw(st.integers(0, 255))) + "."]
        else:
            values = draw(st.lists(st.sampled_from(RDATA[rtype]), min_size=1, max_size=3))
        spec["answer"].append((owner + ".", draw(st.integers(0, 3600)), rtype, values))
    spec["soa"] = (
        (draw(st.integers(0, 7200)), draw(st.integers(0, 7200))) if draw(st.booleans()) else None
    )
    spec["glue"] = draw(st.booleans())
    spec["edns"] = draw(st.sampled_from([None, None, 0, 1 << 24]))  # 1 << 24: BADVERS
    return spec


def build(spec: dict) -> tuple[bytes, str, str, int]:
    """The spec as dnspython renders it (with name compression), and what was asked."""
    qname, qtype = spec["qname"], spec["qtype"]
    query = dns.message.make_query(qname, qtype, id=spec["id"])
    resp = dns.message.make_response(query)
    resp.set_rcode(spec["rcode"])
    if spec["question"] is not None:
        qrr = dns.rrset.RRset(dns.name.from_text(spec["question"]), 1, TYPES[qtype])
        resp.question = [qrr]
    for owner, ttl, rtype, values in spec["answer"]:
        # two sets of one name and type stay apart on the wire: the reader merges them
        resp.answer.append(dns.rrset.from_text(owner, ttl, "IN", rtype, *values))
    if spec["soa"] is not None:
        ttl, minimum = spec["soa"]
        soa = f"ns.example.org. host.example.org. 1 2 3 4 {minimum}"
        resp.authority.append(dns.rrset.from_text("example.org.", ttl, "IN", "SOA", soa))
    if spec["glue"]:
        resp.additional.append(dns.rrset.from_text("ns.example.org.", 60, "IN", "A", "192.0.2.53"))
    if spec["edns"] is not None:
        resp.use_edns(0, ednsflags=spec["edns"])
    return resp.to_wire(), qname, qtype, spec["id"]


def ours(wire: bytes, qname: str, qtype: str, qid: int) -> tuple[bool, WireAnswer] | None:
    try:
        msg = decode(wire)
    except FormError:
        return None
    labels = name_labels(qname)
    rdtype = TYPES[qtype]
    return is_response(msg, qid, labels, rdtype), parse_response(msg, labels, rdtype)


def theirs(wire: bytes, qname: str, qtype: str, qid: int) -> tuple[bool, WireAnswer] | None:
    try:
        msg = dns.message.from_wire(wire)
    except Exception:  # noqa: BLE001 - dnspython refuses it: not a response
        return None
    query = dns.message.make_query(qname, qtype, id=qid)
    return query.is_response(msg), oracle(msg, qname, qtype)


@settings(derandomize=True, max_examples=600, deadline=None)
@given(specs())
def test_same_answer_as_dnspython(spec: dict) -> None:
    case = build(spec)
    expected = theirs(*case)
    assert expected is not None  # dnspython reads what it wrote
    assert ours(*case) == expected


@settings(derandomize=True, max_examples=400, deadline=None)
@given(specs(), st.data())
def test_damaged_datagrams_never_give_an_answer_dnspython_would_not(
    spec: dict, data: st.DataObject
) -> None:
    wire, *rest = build(spec)
    how = data.draw(st.sampled_from(["cut", "append", "flip"]))
    if how == "cut":
        damaged = wire[: data.draw(st.integers(0, len(wire) - 1))]
    elif how == "append":
        damaged = wire + data.draw(st.binary(min_size=1, max_size=8))
    else:
        at = data.draw(st.integers(12, len(wire) - 1))
        damaged = wire[:at] + bytes([wire[at] ^ data.draw(st.integers(1, 255))]) + wire[at + 1 :]
    got, expected = ours(damaged, *rest), theirs(damaged, *rest)  # type: ignore[arg-type]
    if how in ("cut", "append"):
        assert got is None and expected is None
    elif got is not None and expected is not None:
        assert got == expected


def test_query_is_what_dnspython_sends() -> None:
    for name in [*NAMES, "Mixed.Case.Example", "under_score.example.", "a\\.b.example", ".", "@"]:
        for rdtype in TYPES:
            q = dns.message.make_query(name, rdtype)
            q.id = 4242
            assert encode_query(4242, name_labels(name), TYPES[rdtype]) == q.to_wire(), name


@pytest.mark.parametrize("bad", ["a..b", "x" * 64 + ".example", ".".join(["a" * 63] * 4)])
def test_names_dnspython_refuses_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        name_labels(bad)


def test_compression_pointer_loop_is_not_a_response() -> None:
    # header (1 question), then a name that is a pointer to itself
    wire = bytes.fromhex("1234818000010000000000") + b"\x00" + b"\xc0\x0c\x00\x01\x00\x01"
    with pytest.raises(FormError):
        decode(wire)
