"""The resolver against our own hostile DNS server: exact query counts, bounded wall time.

Each failing server costs one query per distinct (name, type) and no more (never retried in
a loop); lost datagrams are sent again after a short timeout; silence is found out within one
look-up lifetime; a CNAME loop is unknown and never stored; a resolver that lies is found out.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hostile_dns import HostileDns

from mailstats.run.cache import Cache
from mailstats.services.dns import FAILED, Resolver, resolver_key
from mailstats.services.dns_trust import EVERYTHING_NX, HIJACK
from mailstats.services.dns_wire import MAX_TRIES

ZONE = {(f"h{i}.zone.test", "A"): [f"192.0.2.{i % 250 + 1}"] for i in range(60)}
KEYS = [(f"h{i}.zone.test", "A") for i in range(60)]


def _ask_twice(r: Resolver) -> list:
    r.prefetch(KEYS)
    return [r.query(*k) for k in KEYS] + [r.query(*k) for k in KEYS]


@pytest.mark.parametrize("mode", ["refuse", "servfail"])
def test_a_failing_resolver_is_asked_once_per_name(tmp_path: Path, mode: str) -> None:
    cache = Cache(tmp_path / "c.sqlite")
    with HostileDns(mode, zone=ZONE) as srv:
        r = Resolver([srv.spec], timeout=1.0, store=cache)
        started = time.monotonic()
        answers = _ask_twice(r)
        elapsed = time.monotonic() - started
        r.flush()
    assert all(a.failed and a.status in FAILED for a in answers)
    # every distinct pair exactly once, plus the honesty probe; nothing retried
    assert srv.queries == len(KEYS) + 1
    assert max(srv.asked.values()) == 1
    assert elapsed < 1.0  # fast failures cost no more than answers
    assert cache.export_dns() == []
    cache.close()


def test_an_honest_resolver_costs_one_query_per_name_whatever_the_ttl() -> None:
    with HostileDns("honest", zone=ZONE, ttl=0) as srv:
        r = Resolver([srv.spec], timeout=1.0)
        answers = _ask_twice(r)
    assert all(a.ok for a in answers)
    assert srv.queries == len(KEYS) + 1  # TTL 0, asked twice: one query each (run memo)
    assert r.report()["stats"]["network_queries"] == len(KEYS) + 1
    assert r.report()["stats"]["distinct_pairs"] == len(KEYS)


def test_lost_datagrams_are_sent_again_after_a_short_timeout() -> None:
    with HostileDns("drop", zone=ZONE) as srv:
        r = Resolver([srv.spec], timeout=4.0)
        started = time.monotonic()
        r.prefetch(KEYS)
        elapsed = time.monotonic() - started
        answers = [r.query(*k) for k in KEYS]
    assert all(a.ok for a in answers), [a for a in answers if not a.ok]
    assert srv.queries == 2 * (len(KEYS) + 1)  # each lost once, sent again once
    assert r.report()["stats"]["retransmits"] == len(KEYS) + 1
    assert elapsed < 1.0 + 0.5  # the first retransmission timeout (1 s), not the lifetime


def test_a_slow_resolver_is_waited_for_without_duplicates() -> None:
    with HostileDns("slow", zone=ZONE, delay_ms=300) as srv:
        r = Resolver([srv.spec], timeout=3.0)
        started = time.monotonic()
        r.prefetch(KEYS)
        elapsed = time.monotonic() - started
        answers = [r.query(*k) for k in KEYS]
    assert all(a.ok for a in answers)
    assert srv.queries == len(KEYS) + 1  # the first retransmission timeout is 1 s > 300 ms
    assert 0.3 <= elapsed < 1.5


def test_a_silent_resolver_is_found_dead_within_one_lifetime() -> None:
    with HostileDns("silent") as srv:
        r = Resolver([srv.spec], timeout=1.0)
        started = time.monotonic()
        r.prefetch(KEYS[:20])
        first = time.monotonic() - started
        answers = [r.query(*k) for k in KEYS]  # 40 new names: answered at once
        elapsed = time.monotonic() - started
    assert all(a.status == "timeout" for a in answers)
    assert r.dead and r.stats["skipped_dead"] == 40
    assert first < 1.0 + 0.5 and elapsed < 1.0 + 0.7
    assert srv.queries <= 21 * MAX_TRIES


def test_a_closed_port_is_found_dead_at_once() -> None:
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: ICMP port unreachable
    r = Resolver([f"127.0.0.1:{port}"], timeout=4.0)
    started = time.monotonic()
    answers = [r.query(*k) for k in KEYS]
    assert time.monotonic() - started < 1.0
    assert all(a.status == "timeout" for a in answers) and r.dead


def test_a_cname_loop_is_unknown_and_never_stored(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.sqlite")
    with HostileDns("loop", zone=ZONE, loops={"a.loop.test"}, ttl=300) as srv:
        r = Resolver([srv.spec], timeout=1.0, store=cache)
        loop = r.query("a.loop.test", "MX")
        again = r.query("a.loop.test", "MX")
        fine = r.query("h1.zone.test", "A")
        r.flush()
    assert loop.status == "cname_loop" and loop.exists is None and again.status == "cname_loop"
    assert srv.asked[("a.loop.test", "MX")] == 1
    assert fine.ok
    assert [e["name"] for e in cache.export_dns()] == ["h1.zone.test"]
    cache.close()


def test_a_hijacking_resolver_is_found_out_before_any_answer_counts(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.sqlite")
    with HostileDns("hijack", zone=ZONE) as srv:
        r = Resolver([srv.spec], timeout=1.0, store=cache)
        answers = [r.query("nothing.example", "A"), r.query("h1.zone.test", "A")]
        r.flush()
    assert r.lying and r.trust.verdict == HIJACK
    assert all(a.status == "untrusted" and a.exists is None for a in answers)
    assert "198.51.100.77" in r.trust.reason
    assert cache.export_dns() == []
    cache.close()


def test_nxdomain_for_everything_is_found_out() -> None:
    domains = [f"d{i}.example" for i in range(6)]
    with HostileDns("nxdomain") as srv:
        r = Resolver([srv.spec], timeout=1.0)
        r.prefetch([(d, "MX") for d in domains] + [("4.3.2.81.in-addr.arpa", "PTR")])
        assert r.lying and r.trust.verdict == EVERYTHING_NX
        assert r.query("d0.example", "MX").status == "untrusted"
    # the rule was checked, not assumed: A and AAAA were asked for five of the domains
    assert sum(1 for (n, t) in srv.asked if t in ("A", "AAAA")) == 5 * 2 + 1  # and the probe


def test_a_fixture_only_resolver_is_not_called_a_liar() -> None:
    zone = dict(ZONE)
    zone[("listed.bl.test", "A")] = ["127.0.0.2"]
    domains = [f"d{i}.example" for i in range(8)]
    with HostileDns("honest", zone=zone) as srv:
        r = Resolver([srv.spec], timeout=1.0)
        r.prefetch([(d, "MX") for d in domains] + [("listed.bl.test", "A")])
        r.settle()
    assert not r.lying and r.trust.probe == "nxdomain"


def test_the_cache_belongs_to_the_resolver(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.sqlite")
    with HostileDns("honest", zone=ZONE, ttl=300) as a, HostileDns("honest", zone=ZONE) as b:
        first = Resolver([a.spec], timeout=1.0, store=cache)
        first.prefetch(KEYS)
        first.flush()
        other = Resolver([b.spec], timeout=1.0, store=cache)
        other.prefetch(KEYS)
        same = Resolver([a.spec], timeout=1.0, store=cache)
        same.prefetch(KEYS)
    assert b.queries == len(KEYS) + 1  # nothing learnt from a was used with b
    assert a.queries == len(KEYS) + 1  # a's own answers were used again with a
    assert resolver_key([a.spec]) != resolver_key([b.spec])
    assert resolver_key(["127.0.0.1:53"]) == resolver_key(["127.0.0.1"])
    cache.close()


def test_answers_cached_without_their_resolver_are_dropped(tmp_path: Path) -> None:
    import sqlite3

    from mailstats.run.cache import SCHEMA_VERSION

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
        "CREATE TABLE folders(account TEXT, folder TEXT, uidvalidity INTEGER, skey_digest TEXT,"
        " PRIMARY KEY(account, folder));"
        "CREATE TABLE messages(account TEXT, folder TEXT, uid INTEGER, header BLOB,"
        " structure TEXT, size INTEGER, PRIMARY KEY(account, folder, uid)) WITHOUT ROWID;"
        "CREATE TABLE dns(name TEXT, rdtype TEXT, status TEXT, records TEXT, expires REAL,"
        " PRIMARY KEY(name, rdtype)) WITHOUT ROWID;"
    )
    db.execute("INSERT INTO meta VALUES('schema', ?)", (str(SCHEMA_VERSION),))
    db.execute("INSERT INTO folders VALUES('a', 'INBOX', 7, '')")
    db.execute("INSERT INTO dns VALUES('x.example', 'A', 'ok', '[\"192.0.2.1\"]', 1e12)")
    db.commit()
    db.close()
    path.chmod(0o600)
    cache = Cache(path)
    assert cache.folder_state("a", "INBOX")[0] == 7  # the mail stays
    assert cache.export_dns() == []  # whose answer was it? nobody can say: gone
    r = Resolver(["127.0.0.1:9"], timeout=0.3, store=cache)
    assert r.query("x.example", "A").failed
    cache.close()
