"""Property tests (hypothesis): every parser and every module's evaluate is total.

Headers are attacker-controlled text, so the contract checked here is stronger than "does
not crash on the corpus": for *any* input each parser returns a value of its documented type
with its documented invariants, and each module's `evaluate` returns only True/False/None
for its checks, whatever the message and whatever DNS answers (a fake resolver that returns
random statuses, records and garbage). Inputs mix pure random text with grammar-shaped
fragments (Received clauses, address syntax, tag lists), because random text alone rarely
reaches the deep branches of a parser.

Example counts are part of docs/reliability.md: `FUZZ_EXAMPLES` per property.
"""

from __future__ import annotations

import ipaddress
import random
import string
from collections import Counter
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailstats.mail.addresses import (
    Address,
    normalize_msgid,
    parse_address,
    parse_address_list,
    parse_msgid_list,
)
from mailstats.mail.dates import parse_date
from mailstats.mail.message import (
    MAX_HEADER_BYTES,
    Message,
    MimePart,
    decode_header_value,
    parse_fields,
    parts_from_json,
    parts_to_json,
)
from mailstats.mail.received import Hop, find_origin, is_public_ip, parse_received
from mailstats.modules import available_modules
from mailstats.modules.auth import parse_auth_results, parse_received_spf, strip_comments
from mailstats.modules.dkim import signature_tags
from mailstats.services import Identity, SentIndex, Services
from mailstats.services.dns import FAILED, DnsAnswer
from mailstats.services.domains import DomainSplitter
from mailstats.sources.imap import (
    ImapSource,
    _parse_response,
    _split_responses,
    parts_from_bodystructure,
)

FUZZ_EXAMPLES = 200
#: derandomize: the same inputs on every run, so CI never goes red by chance; a failure found
#: once is found again on the next run, on any machine.
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# -- strategies ---------------------------------------------------------------------------

ips = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.sampled_from(["203.0.113.9", "198.51.100.7", "8.8.8.8", "::ffff:1.2.3.4", "IPv6:::1"]),
)
hosts = st.one_of(
    st.from_regex(r"[a-z0-9-]{1,12}(\.[a-z0-9-]{1,10}){0,3}", fullmatch=True),
    st.sampled_from(["localhost", "mx.example.org", "[1.2.3.4]", "xn--bcher-kva.example", "."]),
)
words = st.text(alphabet=string.ascii_letters + string.digits + "-._", max_size=12)
TOKENS = str.split("from by with id for via ; ( ) [ ] < > @ ESMTPS SMTP helo= envelope-from , :")
TOKENS += ["\\", '"', "=?", "?=", "\t"]
junk = st.text(max_size=60)  # any Unicode, surrogates excluded by hypothesis' default
fragments = st.one_of(
    st.sampled_from(TOKENS),
    hosts,
    ips.map(lambda ip: f"[{ip}]"),
    ips,
    words,
    st.sampled_from(["Mon, 1 Jan 2024 10:00:00 +0000", "Tue, 31 Feb 2024 25:61:61 -9999"]),
)
mailish = st.one_of(junk, st.lists(fragments, max_size=25).map(" ".join))
received_values = st.one_of(
    mailish,
    st.builds(
        lambda helo, rdns, ip, by, tail: f"from {helo} ({rdns} [{ip}]) by {by} {tail}",
        hosts,
        hosts,
        ips,
        hosts,
        mailish,
    ),
)
address_values = st.one_of(
    mailish,
    st.lists(
        st.one_of(
            fragments,
            st.builds(lambda a, b: f"{a}@{b}", words, hosts),
            st.builds(lambda d, a: f'"{d}" <{a}>', junk, st.emails()),
            st.emails(),
        ),
        max_size=8,
    ).map(" ".join),
)

NAMES = [
    "Received", "From", "Sender", "To", "Cc", "Bcc", "Date", "Message-ID", "In-Reply-To",
    "References", "Subject", "Return-Path", "DKIM-Signature", "Authentication-Results",
    "ARC-Authentication-Results", "Received-SPF", "List-Id", "Precedence", "Content-Type",
    "X-Mailer",
]  # fmt: skip
header_lines = st.tuples(
    st.one_of(st.sampled_from(NAMES), st.text(min_size=1, max_size=10)),
    st.one_of(received_values, address_values, mailish),
    st.sampled_from(["\r\n", "\n", "\r", "\r\n\t", "\n "]),
).map(lambda t: f"{t[0]}: {t[1]}{t[2]}")
header_blocks = st.one_of(
    st.binary(max_size=400),
    st.lists(header_lines, max_size=12).map(
        lambda ls: "".join(ls).encode("utf-8", "surrogateescape") + b"\r\n"
    ),
    st.tuples(st.lists(header_lines, max_size=6), st.binary(max_size=80)).map(
        lambda t: "".join(t[0]).encode("utf-8") + t[1]
    ),
)


def _check_hop(hop: Hop, value: str) -> None:
    assert isinstance(hop, Hop)
    assert isinstance(hop.raw, str)
    for name in ("helo", "rdns", "ip", "by", "protocol", "id"):
        assert isinstance(getattr(hop, name), str), name
    if hop.ip:
        ipaddress.ip_address(hop.ip)  # a valid address or nothing
    assert hop.timestamp is None or hop.timestamp.tzinfo is not None
    assert isinstance(hop.host, str)
    if not hop.parsed:
        assert (hop.helo, hop.rdns, hop.ip, hop.by) == ("", "", "", "")


# -- mail/received.py ---------------------------------------------------------------------


@FUZZ
@given(value=received_values)
def test_parse_received_total(value: str) -> None:
    _check_hop(parse_received(value), value)


@FUZZ
@given(
    values=st.lists(received_values, max_size=8),
    relays=st.lists(st.one_of(ips, hosts, st.sampled_from(["10.0.0.0/8", "::/0", "bad/99"]))),
)
def test_find_origin_total(values: list[str], relays: list[str]) -> None:
    hops = [parse_received(v) for v in values]
    identity = Identity(trusted_relays=tuple(relays))
    found = find_origin(hops, identity)
    if found is not None:
        index, hop = found
        assert hops[index] is hop
        assert is_public_ip(hop.ip)
        # the first qualifying hop: every earlier hop is private, empty or a trusted relay
        for earlier in hops[:index]:
            assert (
                not earlier.ip
                or not is_public_ip(earlier.ip)
                or identity.is_trusted_relay(
                    earlier.ip, earlier.host or earlier.rdns or earlier.helo
                )
            )
    assert find_origin(hops, None) is None or find_origin(hops, None)[0] <= (
        found[0] if found else len(hops)
    )


# -- mail/addresses.py --------------------------------------------------------------------


def _check_address(a: Address) -> None:
    assert isinstance(a, Address)
    assert isinstance(a.display, str) and isinstance(a.addr, str) and isinstance(a.domain, str)
    assert a.domain == a.domain.lower()
    if a.addr:
        assert "@" in a.addr
        assert a.addr.rsplit("@", 1)[1] == a.domain


@FUZZ
@given(value=address_values)
def test_parse_address_total(value: str) -> None:
    a = parse_address(value)
    if a is not None:
        _check_address(a)
    many = parse_address_list(value)
    assert isinstance(many, list)
    for item in many:
        _check_address(item)
    if a is not None and many:
        assert a == many[0]  # the first mailbox of the list, parsed the same way


@FUZZ
@given(value=st.one_of(mailish, st.lists(st.emails().map(lambda e: f"<{e}>")).map(" ".join)))
@example(">@")
@example("a>@b")
@example("@host")
@example("id@")
def test_msgids_total(value: str) -> None:
    first = normalize_msgid(value)
    ids = parse_msgid_list(value)
    assert isinstance(first, str) and isinstance(ids, list)
    for ident in [first, *ids]:
        assert not any(c.isspace() for c in ident)
        assert "<" not in ident and ">" not in ident
    assert first == (ids[0] if ids else "")


# -- mail/dates.py ------------------------------------------------------------------------

date_values = st.one_of(
    mailish,
    st.datetimes(timezones=st.timezones()).map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S %z")),
    st.builds(
        lambda d, m, y, h, z: f"{d} {m} {y} {h} {z}",
        st.integers(-5, 40),
        st.sampled_from(["Jan", "Feb", "Foo", "jun", "DEC"]),
        st.integers(-10, 100000),
        st.from_regex(r"\d{1,3}:\d{1,3}(:\d{1,3})?", fullmatch=True),
        st.sampled_from(["+0000", "-9999", "EST", "GMT+2", "+2400", "", "UT", "Z"]),
    ),
)


@FUZZ
@given(value=date_values)
def test_parse_date_total(value: str) -> None:
    d = parse_date(value)
    assert d is None or (isinstance(d, datetime) and d.utcoffset() is not None)


# -- mail/message.py ----------------------------------------------------------------------


@FUZZ
@given(raw=header_blocks)
def test_parse_fields_and_message_accessors_total(raw: bytes) -> None:
    fields = parse_fields(raw)
    for name, value in fields:
        assert name and name == name.lower() and ":" not in name
        assert not any(c.isspace() for c in name)
        assert isinstance(value, str)
    m = Message("acct", "INBOX", 1, raw)
    assert m.malformed == (not fields)
    for name in ("From", "Received", "DKIM-Signature", "Subject", "Nope"):
        assert isinstance(m.header(name), str)
        assert all(isinstance(v, str) for v in m.header_all(name))
        assert all("\n" not in v and "\r" not in v for v in m.raw_header_all(name))
    for hop in m.hops:
        _check_hop(hop, hop.raw)
    for a in (m.from_address, m.sender_address):
        if a is not None:
            _check_address(a)
    assert isinstance(m.message_id, str)


def test_parse_fields_caps_the_header_block() -> None:
    """A hostile header block is read up to MAX_HEADER_BYTES, not to its end."""
    raw = b"Subject: " + b"x" * (4 * MAX_HEADER_BYTES) + b"\r\nFrom: late@x.example\r\n\r\n"
    fields = parse_fields(raw)
    assert fields[0][0] == "subject"
    assert len(fields[0][1]) <= MAX_HEADER_BYTES
    assert "from" not in dict(fields)  # beyond the cap: not read at all


ENCODED_WORDS = r"(=\?[-\w*]{0,12}\?[QqBbXx]?\?[^?]{0,20}\?=\s?){1,4}"


@FUZZ
@given(value=st.one_of(mailish, st.from_regex(ENCODED_WORDS)))
def test_decode_header_value_total(value: str) -> None:
    assert isinstance(decode_header_value(value), str)


parts_lists = st.lists(
    st.builds(
        MimePart,
        content_type=st.text(max_size=20),
        disposition=st.text(max_size=10),
        filename=st.text(max_size=20),
        size=st.integers(0, 2**40),
        charset=st.text(max_size=10),
        section=st.text(max_size=10),
        encoding=st.text(max_size=10),
    ),
    max_size=8,
)


@FUZZ
@given(parts=st.none() | parts_lists, garbage=st.text(max_size=50))
def test_parts_json_round_trip_and_garbage(parts: list[MimePart] | None, garbage: str) -> None:
    assert parts_from_json(parts_to_json(parts)) == parts
    out = parts_from_json(garbage)
    assert out is None or all(isinstance(p, MimePart) for p in out)


# -- sources/imap.py: BODYSTRUCTURE ---------------------------------------------------------

atoms = st.one_of(
    st.none(),
    st.integers(-(2**40), 2**40),
    st.binary(max_size=12),
    st.text(max_size=8),
    st.sampled_from([b"TEXT", b"PLAIN", b"MULTIPART", b"MIXED", b"attachment", b"NIL"]),
)
garbage_structures = st.recursive(
    atoms,
    lambda inner: st.one_of(st.tuples(inner, inner), st.lists(inner, max_size=6).map(tuple)),
    max_leaves=40,
)


def _leaf(draw: Any, disp: bool) -> tuple:
    main = draw(st.sampled_from([b"TEXT", b"IMAGE", b"APPLICATION", b"MESSAGE"]))
    sub = draw(st.sampled_from([b"PLAIN", b"HTML", b"GIF", b"PDF", b"RFC822"]))
    params = (b"CHARSET", b"utf-8", b"NAME", b"a.pdf") if draw(st.booleans()) else None
    base = [main, sub, params, None, None, b"BASE64", draw(st.integers(0, 10**6))]
    if main == b"TEXT":
        base.append(3)  # lines
    elif (main, sub) == (b"MESSAGE", b"RFC822"):
        base += [None, None, 3]  # envelope, body, lines (left empty)
    base.append(None)  # md5
    base.append((b"ATTACHMENT", (b"FILENAME", b"x.bin")) if disp else None)
    return tuple(base)


@st.composite
def real_structures(draw: Any, depth: int = 0) -> tuple[tuple, list[str]]:
    """A well-formed BODYSTRUCTURE (imapclient's shape) and the leaf sections it holds."""
    if depth >= 4 or draw(st.booleans()):
        return _leaf(draw, draw(st.booleans())), [""]
    n = draw(st.integers(1, 4))
    children, sections = [], []
    for i in range(1, n + 1):
        child, secs = draw(real_structures(depth + 1))
        children.append(child)
        sections += [f"{i}.{s}" if s else str(i) for s in secs]
    return (children, b"MIXED", None, None, None), sections


@FUZZ
@given(data=real_structures())
def test_bodystructure_well_formed(data: tuple[tuple, list[str]]) -> None:
    bs, sections = data
    parts = parts_from_bodystructure(bs)
    assert parts is not None
    assert [p.section for p in parts] == [s or "1" for s in sections]
    for p in parts:
        assert "/" in p.content_type and p.content_type == p.content_type.lower()


FETCH_TOKENS = [
    b"1 (", b"UID", b"7", b"BODY[HEADER]", b"{12}", b"BODYSTRUCTURE", b"(", b")", b'"q\\"x"',
    b"NIL", b"RFC822.SIZE", b"BODY[1]<0>", b"X-GM-MSGID", b"[", b"]", b'"', b"{99999999999}",
]  # fmt: skip


class _FakeImap:
    """Stands in for imapclient: FETCH returns whatever BODYSTRUCTURE the test chose."""

    def __init__(self, structures: list[Any]) -> None:
        self.structures = structures

    def fetch(self, uids: list[int], items: list[str]) -> dict[int, dict[bytes, Any]]:
        return {
            uid: {b"BODY[HEADER]": b"From: a@b.example\r\n\r\n", b"BODYSTRUCTURE": bs,
                  b"RFC822.SIZE": 10}
            for uid, bs in zip(uids, self.structures, strict=False)
        }  # fmt: skip


def _source_with(structures: list[Any]) -> ImapSource:
    """An ImapSource wired to a fake client (no connection): the real fetch_headers path."""
    src = ImapSource.__new__(ImapSource)
    fake = _FakeImap(structures)
    src.folder = "INBOX"
    src.batch_size = 500
    src.stats = Counter()
    src.unavailable, src.gone = [], []
    src._fetch = lambda uids, items, what, cut=None: fake.fetch(uids, items)  # type: ignore[method-assign]
    return src


@FUZZ
@given(structures=st.lists(garbage_structures, min_size=1, max_size=5))
def test_garbage_bodystructure_never_escapes_fetch_headers(structures: list[Any]) -> None:
    src = _source_with(structures)
    uids = list(range(1, len(structures) + 1))
    got = list(src.fetch_headers(uids))
    assert [g.uid for g in got] == uids  # every message still counted
    for g in got:
        assert g.parts is None or all(isinstance(p, MimePart) for p in g.parts)


fetch_pieces = st.lists(
    st.one_of(
        st.binary(max_size=60),
        st.lists(st.sampled_from(FETCH_TOKENS), max_size=20).map(b" ".join),
        st.tuples(
            st.lists(st.sampled_from(FETCH_TOKENS), max_size=8).map(b" ".join),
            st.binary(max_size=40),
        ),
    ),
    min_size=1,
    max_size=4,
)


@FUZZ
@given(pieces=fetch_pieces)
def test_fetch_response_parser_fails_only_as_caught(pieces: list[Any]) -> None:
    """fast_fetch drops a response on ValueError/IndexError: nothing else may come out."""
    try:
        values = _parse_response(pieces)
    except (ValueError, IndexError):
        return
    assert isinstance(values, dict)
    groups = list(_split_responses([*pieces, None]))
    assert sum(len(g) for g in groups) == len(pieces)


def test_bodystructure_200_deep_and_2000_wide_is_capped() -> None:
    leaf = (b"TEXT", b"PLAIN", None, None, None, b"7BIT", 1, 1, None, None)
    deep: Any = leaf
    for _ in range(200):
        deep = ([deep], b"MIXED", None, None, None)
    assert parts_from_bodystructure(deep) == []  # below the depth cap: nothing, no recursion
    wide = ([leaf] * 2000, b"MIXED", None, None, None)
    assert 0 < len(parts_from_bodystructure(wide) or []) <= 501


# -- DKIM-Signature and Authentication-Results ------------------------------------------

tag_lists = st.one_of(
    mailish,
    st.lists(
        st.tuples(st.sampled_from(list("vadsbhicltxz") + ["bh", "q", "  d", "="]), mailish),
        max_size=10,
    ).map(lambda kv: "; ".join(f"{k}={v}" for k, v in kv)),
)


@FUZZ
@given(value=tag_lists)
def test_dkim_signature_tags_total(value: str) -> None:
    tags = signature_tags(value)
    assert isinstance(tags, dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())


ar_values = st.one_of(
    mailish,
    st.builds(
        lambda host, pairs, tail: f"{host}; " + "; ".join(f"{m}={r} {tail}" for m, r in pairs),
        hosts,
        st.lists(
            st.tuples(
                st.sampled_from(["dkim", "spf", "dmarc", "arc", "x", "dkim/1", ""]),
                st.sampled_from(["pass", "fail", "temperror", "none", "(", ""]),
            ),
            max_size=5,
        ),
        mailish,
    ),
)


@FUZZ
@given(value=ar_values)
def test_auth_results_parsers_total(value: str) -> None:
    ident, results = parse_auth_results(value)
    assert isinstance(ident, str) and ident == ident.lower()
    for method, result in results:
        assert method == method.lower() and result == result.lower()
    res, receiver = parse_received_spf(value)
    assert isinstance(res, str) and isinstance(receiver, str)
    assert isinstance(strip_comments(value), str)


# -- every module's evaluate with random DNS ------------------------------------------------

STATUSES = ["ok", "nxdomain", "nodata", "timeout", "servfail", "refused", "error"]
RECORDS = {
    "A": ["127.0.0.2", "127.255.255.254", "1.2.3.4", "garbage", ""],
    "AAAA": ["::1", "2001:db8::1", "zz"],
    "TXT": ["v=spf1 -all", "v=spf1 ip4:0.0.0.0/0 ~all", "v=DKIM1; k=rsa; p=MIGf", "p=", "\x00", ""],
    "MX": ["10 mx.example.org", "0 .", "x y z", ""],
    "PTR": ["dsl-1-2-3-4.pool.example.net", "mx.example.org", "", "-"],
}


class RandomDns:
    """A resolver whose every answer is drawn at random: status, records, TTL."""

    servers = ["fake"]

    def __init__(self, seed: int, fail_all: bool = False) -> None:
        self.rng = random.Random(seed)
        self.fail_all = fail_all
        self.asked = 0

    def query(self, name: str, rdtype: str) -> DnsAnswer:
        self.asked += 1
        if self.fail_all:
            return DnsAnswer(self.rng.choice(sorted(FAILED)))
        status = self.rng.choice(STATUSES)
        pool = RECORDS.get(rdtype.upper(), ["x"])
        records = tuple(self.rng.sample(pool, self.rng.randint(1, len(pool))))
        return DnsAnswer(status, records if status == "ok" else (), self.rng.randint(-5, 10**6))

    def ptr(self, ip: str) -> DnsAnswer:
        return self.query(ip, "PTR")

    def prefetch(self, queries: Any) -> None:
        list(queries)

    def flush(self) -> None:
        pass


class RandomProbe:
    """TcpProber stand-in: never opens a socket (fuzzed IPs are not loopback)."""

    port = 25
    probed = 0
    stats: dict[str, int] = {}

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def want(self, ip: str) -> None:
        pass

    def prefetch(self, ips: Any) -> None:
        pass

    def reachable(self, ip: str) -> bool | None:
        return self.rng.choice([True, False, None])

    def suspect_blocked(self) -> bool:
        return False


_SPLITTER = DomainSplitter()
MODULES = [cls() for cls in available_modules().modules]
assert {m.name for m in MODULES} >= {"received", "dnsbl", "dkim", "spf", "auth", "reachability"}


def _services(dns: Any, probe: Any, sent: bool) -> Services:
    return Services(
        dns=dns,  # type: ignore[arg-type]
        domains=_SPLITTER,
        identity=Identity(
            address="dana@example.org",
            full_name="Dana Whitfield",
            own_domains=("example.org",),
            trusted_relays=("203.0.113.0/24", "mx.example.org"),
        ),
        sent_index=SentIndex({"a@b.example"}, {"x@y.example"}, 1) if sent else None,
        settings={"dnsbl_zones": ["zen.example", "bl.example"], "authserv_ids": ["mx.example.org"]},
        probe=probe,
    )


def _check_result(module: Any, result: Any) -> None:
    assert isinstance(result, dict), module.name
    for check in module.checks:
        assert result.get(check) in (True, False, None), (module.name, check, result.get(check))
    for extra in module.extras:
        value = result.get(extra)
        assert value is None or isinstance(value, bool | int | float | str), (module.name, extra)
    assert isinstance(result.get("_why", {}), dict)


@FUZZ
@given(
    raw=header_blocks,
    parts=st.none() | parts_lists,
    body=st.none() | st.text(max_size=300),
    raw_body=st.none() | st.binary(max_size=200),
    seed=st.integers(0, 2**32),
    sent=st.booleans(),
)
def test_every_module_total_under_random_dns(
    raw: bytes, parts: Any, body: str | None, raw_body: bytes | None, seed: int, sent: bool
) -> None:
    svc = _services(RandomDns(seed), RandomProbe(seed), sent)
    msg = Message("acct", "INBOX", 1, raw, parts, len(raw), body_text=body, role="ham")
    if raw_body is not None:
        msg.raw_bytes = raw + raw_body
    for module in MODULES:
        module.prepare(svc)
        list(module.prefetch(msg, svc))
        _check_result(module, module.evaluate(msg, svc))
        assert isinstance(module.warnings(), list)


SIGNED = (
    "Received: from out.sender.example (out.sender.example [198.51.100.7]) by mx.example.org;"
    " Mon, 1 Jan 2024 10:00:00 +0000\r\n"
    "From: Bob <bob@sender.example>\r\nReturn-Path: <bob@sender.example>\r\n"
    "DKIM-Signature: v=1; a=rsa-sha256; d=sender.example; s=sel; c=relaxed/relaxed;"
    " h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n"
    "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"
)


@FUZZ
@given(seed=st.integers(0, 2**32))
def test_failed_dns_gives_unknown_never_no(seed: int) -> None:
    """Every look-up failing: the checks that need DNS are None (unknown), never False."""
    dns = RandomDns(seed, fail_all=True)
    svc = _services(dns, None, False)
    raw = SIGNED.encode()
    msg = Message("acct", "INBOX", 1, raw, [], len(raw), raw_bytes=raw + b"hello\r\n")
    by_name = {m.name: m for m in MODULES}
    want_none = {
        "dnsbl": "listed",
        "domain": "from_domain_exists",
        "dynamic": "origin_dynamic",
        "spf": "pass",
        "dkim": "valid",
    }
    for name, check in want_none.items():
        module = by_name[name]
        module.prepare(svc)
        result = module.evaluate(msg, svc)
        assert result[check] is None, (name, result)
    assert by_name["dkim"].evaluate(msg, svc)["signed"] is True  # decidable without DNS
    assert dns.asked > 0


@pytest.mark.parametrize("value", ["", "\x00", "\xed\xa0\x80", " " * 10_000, "(" * 5000])
def test_degenerate_single_values(value: str) -> None:
    _check_hop(parse_received(value), value)
    assert parse_date(value) is None
    assert parse_address(value) is None
    assert normalize_msgid(value) == ""
