"""The DNS service against a real dnsmasq: answers, failures never cached, bulk path equal."""

from __future__ import annotations

import time

import pytest

from fixtures.zone import DnsRecords
from mailstats.run.cache import Cache
from mailstats.services.dns import Resolver, ptr_name

pytestmark = pytest.mark.servers

RECORDS = DnsRecords(
    hosts=[("mail.svc-test.example", "192.0.2.45"), ("v6.svc-test.example", "2001:db8::45")],
    mx=[("svc-test.example", "mail.svc-test.example", 10)],
    txt=[
        ("svc-test.example", "v=spf1 ip4:192.0.2.0/24 -all"),
        ("long.svc-test.example", "k=rsa; p=" + "A" * 400),
    ],
    timeout=["slow.svc-test.example"],
    servfail=["broken.svc-test.example"],
)


@pytest.fixture(scope="module")
def server(dns):
    dns.add_records(RECORDS)
    return dns


def keys() -> list[tuple[str, str]]:
    return [
        ("mail.svc-test.example", "A"),
        ("v6.svc-test.example", "AAAA"),
        ("svc-test.example", "MX"),
        ("svc-test.example", "TXT"),
        ("long.svc-test.example", "TXT"),
        (ptr_name("192.0.2.45"), "PTR"),
        ("nothing-here.svc-test.example", "A"),
        ("mail.svc-test.example", "MX"),
    ]


def test_single_queries(server) -> None:
    r = Resolver([server.server_spec], timeout=1.0)
    assert r.query("mail.svc-test.example", "A").records == ("192.0.2.45",)
    assert r.query("v6.svc-test.example", "AAAA").records == ("2001:db8::45",)
    assert r.query("svc-test.example", "MX").records == ("10 mail.svc-test.example",)
    assert r.query("long.svc-test.example", "TXT").records == ("k=rsa; p=" + "A" * 400,)
    assert r.ptr("192.0.2.45").records == ("mail.svc-test.example",)
    nx = r.query("nothing-here.svc-test.example", "A")
    assert nx.status == "nxdomain" and nx.exists is False
    assert r.query("broken.svc-test.example", "A").status == "servfail"
    slow = r.query("slow.svc-test.example", "A")
    assert slow.status == "timeout" and slow.exists is None


def test_bulk_prefetch_gives_the_same_answers_as_single_queries(server) -> None:
    single = Resolver([server.server_spec], timeout=1.0)
    expected = {k: single.query(*k) for k in keys()}
    bulk = Resolver([server.server_spec], timeout=1.0)
    bulk.prefetch(keys())
    network = sum(bulk.stats.values())
    got = {k: bulk.query(*k) for k in keys()}
    assert {k: (a.status, a.records) for k, a in got.items()} == {
        k: (a.status, a.records) for k, a in expected.items()
    }
    assert bulk.stats["cache_hit"] == len(keys())  # prefetch did all the network work
    assert network == len(keys())


def test_failures_are_unknown_and_never_cached(server, tmp_path) -> None:
    cache = Cache(tmp_path / "c.sqlite")
    r = Resolver([server.server_spec], timeout=0.5, store=cache)
    r.prefetch([("slow.svc-test.example", "A"), ("broken.svc-test.example", "A")] + keys())
    r.flush()
    stored = {(e["name"], e["type"]) for e in cache.export_dns()}
    assert ("slow.svc-test.example", "A") not in stored
    assert ("broken.svc-test.example", "A") not in stored
    assert ("mail.svc-test.example", "A") in stored
    # The next resolver answers good names from the persistent cache, without the network.
    again = Resolver([server.server_spec], timeout=0.5, store=cache)
    assert again.query("mail.svc-test.example", "A").records == ("192.0.2.45",)
    assert again.stats["cache_hit"] == 1 and again.stats["ok"] == 0


def test_dead_server_is_bounded() -> None:
    # Nothing listens on the discard port: every query fails; the resolver gives up early.
    r = Resolver(["127.0.0.1:9"], timeout=0.3, dead_after=5)
    t = time.monotonic()
    answers = [r.query(f"h{i}.example", "A") for i in range(40)]
    assert all(a.failed for a in answers)
    assert r.stats["skipped_dead"] >= 30
    assert time.monotonic() - t < 5


def test_run_deadline() -> None:
    r = Resolver(["127.0.0.1:9"], timeout=0.3, deadline_s=0.01)
    time.sleep(0.02)
    assert r.query("a.example", "A").status == "timeout"
    assert r.stats["skipped_deadline"] == 1


def test_zone_budget_caps_network_queries(server) -> None:
    r = Resolver([server.server_spec], timeout=1.0, budgets={"svc-test.example": 3})
    names = [(f"n{i}.svc-test.example", "A") for i in range(8)]
    r.prefetch(names)
    answers = [r.query(*k) for k in names]
    assert r.spent["svc-test.example"] == 3
    assert sum(1 for a in answers if a.status == "budget") == 5
    assert all(a.exists is None for a in answers if a.status == "budget")  # unknown, not "no"
    # names outside the zone are not limited
    assert r.query("mail.svc-test.example.", "A").status == "budget"
    assert r.ptr("192.0.2.45").records == ("mail.svc-test.example",)


def test_a_bounded_memo_reads_its_stored_answers_back_the_same(
    server, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MEMO_KEEP answers the memo lets go of the oldest stored ones: asked again, they
    come back from the store as they were (dnsmasq's TTL is 0: only the run's id keeps them
    live), with nothing asked on the network; failed answers are never let go (they are not
    stored), and distinct_pairs still counts each pair once."""
    from mailstats.services import dns as dns_module

    monkeypatch.setattr(dns_module, "MEMO_KEEP", 4)
    cache = Cache(tmp_path / "c.sqlite")
    r = Resolver([server.server_spec], timeout=0.5, store=cache)
    asked = [*keys(), ("slow.svc-test.example", "A"), ("broken.svc-test.example", "A")]
    r.prefetch(asked)  # asks, stores (flush), lets go down to half of MEMO_KEEP
    assert len(r._mem) == 2
    assert set(r._mem) == {("slow.svc-test.example", "A"), ("broken.svc-test.example", "A")}
    sent = r.report()["stats"]["network_queries"]
    first = {k: (a.status, a.records) for k, a in ((k, r.query(*k)) for k in asked)}
    again = {k: (a.status, a.records) for k, a in ((k, r.query(*k)) for k in asked)}
    assert again == first
    single = Resolver([server.server_spec], timeout=0.5)  # no memo limit, no store
    assert first == {k: (a.status, a.records) for k, a in ((k, single.query(*k)) for k in asked)}
    assert r.report()["stats"]["network_queries"] == sent
    assert r.report()["stats"]["distinct_pairs"] == len(asked)
    cache.close()


def test_a_second_process_of_the_run_takes_stored_answers_in_one_look_up(
    server, tmp_path
) -> None:
    """Two analysis workers share the store: what one asked and flushed, the other's prefetch
    reads back (all the names it lacks in one store look-up) and asks the network only for
    the rest; the answers are the same as the first one's. dnsmasq's TTL is 0, so only the
    run's id keeps the stored answers live."""
    cache = Cache(tmp_path / "c.sqlite")
    first = Resolver([server.server_spec], timeout=0.5, store=cache)
    shared = keys()[:4]
    first.prefetch(shared)
    second = Resolver([server.server_spec], timeout=0.5, store=Cache(tmp_path / "c.sqlite"))
    second.adopt(first.handoff())
    second.prefetch(keys())  # the four stored, and two new
    assert second.report()["stats"]["network_queries"] == len(keys()) - len(shared)
    want = {k: (first.query(*k).status, first.query(*k).records) for k in shared}
    assert {k: (second.query(*k).status, second.query(*k).records) for k in shared} == want
    # the store holds svc-test.example's MX and TXT: its AAAA is still asked, not taken from them
    third = Resolver([server.server_spec], timeout=0.5, store=Cache(tmp_path / "c.sqlite"))
    third.adopt(first.handoff())
    got = third.query("svc-test.example", "AAAA")
    alone = Resolver([server.server_spec], timeout=0.5).query("svc-test.example", "AAAA")
    assert (got.status, got.records) == (alone.status, alone.records)
    assert third.report()["stats"]["network_queries"] == 1
    cache.close()
