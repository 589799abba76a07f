"""The shared parsers over every real message in ../shared/corpus: nothing raises, most parse.

The floors sit a little under what the parsers achieved when this test was written
(Received with a from part giving an ip or host: 98.5 %; From/Sender giving an address:
99.1 %; Date giving a datetime: 99.9 %; Received time stamps: 99.6 %; messages with Received
headers that have an origin: 92.1 %), so a regression shows up without making the test
brittle. The corpus lives outside the repository and the test skips when it is absent.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from mailstats.mail.addresses import parse_address
from mailstats.mail.dates import parse_date
from mailstats.mail.message import Message
from mailstats.mail.received import Hop, find_origin, parse_received
from mailstats.services import Identity

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"

pytestmark = pytest.mark.corpus


@functools.cache
def _messages() -> tuple[Message, ...]:
    if not CORPUS.is_dir():
        return ()
    out = []
    for path in sorted(CORPUS.rglob("*.eml")):
        raw = path.read_bytes()
        ends = [i for i in (raw.find(b"\n\n"), raw.find(b"\r\n\r\n")) if i >= 0]
        header = raw[: min(ends)] if ends else raw
        out.append(Message("corpus", path.parent.name, len(out), header))
    return tuple(out)


@pytest.fixture(scope="module")
def messages() -> tuple[Message, ...]:
    msgs = _messages()
    if not msgs:
        pytest.skip(f"no corpus at {CORPUS}")
    return msgs


def test_received(messages):
    with_from = resolved = total = 0
    for msg in messages:
        hops = [parse_received(v) for v in msg.raw_header_all("Received")]
        for hop in hops:
            total += 1
            assert isinstance(hop, Hop)
            if hop.timestamp is not None:
                assert hop.timestamp.tzinfo is not None
            if hop.raw.lstrip().lower().startswith("from"):
                with_from += 1
                resolved += bool(hop.ip or hop.host)
        found = find_origin(hops, Identity())
        if found is not None:
            assert hops[found[0]] is found[1]
        # Trusting relays can only move the origin further down the chain.
        trusted = find_origin(hops, Identity(trusted_relays=("216.105.38.0/24", "sourceforge.net")))
        if trusted is not None:
            assert found is not None and trusted[0] >= found[0]
            assert "sourceforge.net" not in trusted[1].host
    assert total > 1000
    assert resolved / with_from >= 0.97, (resolved, with_from)


def test_received_timestamps(messages):
    hops = [parse_received(v) for m in messages for v in m.raw_header_all("Received")]
    with_time = sum(h.timestamp is not None for h in hops)
    assert with_time / len(hops) >= 0.98


def test_origin_found_for_most(messages):
    # Nearly every real message crossed the internet once; those that did not are local
    # test messages without Received headers.
    with_hops = [m for m in messages if m.raw_header_all("Received")]
    found = sum(find_origin(m.hops, Identity()) is not None for m in with_hops)
    assert found / len(with_hops) >= 0.9


def test_addresses(messages):
    total = ok = 0
    for msg in messages:
        for name in ("From", "Sender"):
            for value in msg.header_all(name) + msg.raw_header_all(name):
                total += 1
                addr = parse_address(value)
                if addr is not None:
                    ok += 1
                    assert addr.addr == addr.addr.lower()
                    assert addr.addr.endswith("@" + addr.domain)
    assert ok / total >= 0.97, (ok, total)


def test_dates(messages):
    total = ok = 0
    for msg in messages:
        for value in msg.header_all("Date"):
            total += 1
            got = parse_date(value)
            if got is not None:
                ok += 1
                assert got.tzinfo is not None
    assert ok / total >= 0.99, (ok, total)
