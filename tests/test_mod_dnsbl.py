"""dnsbl: listed / not listed / blocked / error per zone, the self-test, one query per IP."""

from __future__ import annotations

import pytest
from mod_network_support import DnsRecords, dns_server, message, received, services

from mailstats.modules.dnsbl import (
    BLOCKED,
    DEFAULT_ZONES,
    ERROR,
    LISTED,
    NOT_LISTED,
    Dnsbl,
    classify,
    column_name,
    configured_zones,
    query_name,
)
from mailstats.services.dns import DnsAnswer

GOOD = "good.bl.example"  # a healthy zone
PARTIAL = "partial.bl.example"  # healthy self-test, but refuses one real query
SLOW = "slow.bl.example"  # healthy self-test, one real query times out
BLOCKED_ZONE = "blocked.bl.example"  # refuses everything, like Spamhaus via 8.8.8.8
HIJACK = "hijack.bl.example"  # a resolver rewriting NXDOMAIN: everything "listed"
DEAD = "dead.bl.example"  # nothing at all, not even the test point

LISTED_IP = "198.52.100.7"
CLEAN_IP = "203.1.113.9"
REFUSED_IP = "198.52.100.8"
SLOW_IP = "198.52.100.9"
V6_IP = "2a01:db8::5"


def _records() -> DnsRecords:
    rec = DnsRecords()
    for zone in (GOOD, PARTIAL, SLOW):
        rec.dnsbl.append((zone, "127.0.0.2", "127.0.0.2"))
    rec.dnsbl += [
        (GOOD, LISTED_IP, "127.0.0.4"),
        (GOOD, V6_IP, "127.0.0.3"),
        (PARTIAL, REFUSED_IP, "127.255.255.254"),
        (PARTIAL, LISTED_IP, "127.0.0.2"),
    ]
    rec.addresses += [(BLOCKED_ZONE, "127.255.255.254"), (HIJACK, "127.0.0.2")]
    rec.timeout.append(query_name(SLOW_IP, SLOW) or "")
    return rec


server = dns_server(_records)


def _run(module: Dnsbl, svc, *msgs):
    out = []
    for m in msgs:
        svc.dns.prefetch(module.prefetch(m, svc))
        out.append(module.evaluate(m, svc))
    return out


def _prepared(server, zones):
    svc = services(server.server_spec, settings={"dnsbl_zones": zones})
    module = Dnsbl()
    module.prepare(svc)
    return module, svc


def test_query_names_reverse_octets_and_nibbles():
    assert query_name("192.1.2.1", "zen.example") == "1.2.1.192.zen.example"
    assert query_name("127.0.0.2", "z.example") == "2.0.0.127.z.example"
    expected = "5." + "0." * 23 + "8.b.d.0.1.0.a.2.z.example"
    assert query_name("2a01:db8::5", "z.example") == expected
    assert query_name("not an ip", "z.example") is None


@pytest.mark.parametrize(
    ("answer", "state"),
    [
        (DnsAnswer("ok", ("127.0.0.2",)), LISTED),
        (DnsAnswer("ok", ("127.0.0.254",)), LISTED),
        (DnsAnswer("ok", ("127.0.0.2", "127.0.0.10")), LISTED),
        (DnsAnswer("nxdomain"), NOT_LISTED),
        (DnsAnswer("nodata"), NOT_LISTED),
        (DnsAnswer("ok", ("127.255.255.252",)), BLOCKED),
        (DnsAnswer("ok", ("127.255.255.254",)), BLOCKED),
        (DnsAnswer("ok", ("127.255.255.255",)), BLOCKED),
        (DnsAnswer("ok", ("127.0.0.1",)), ERROR),  # not a listing code
        (DnsAnswer("ok", ("198.52.100.80",)), ERROR),  # an NXDOMAIN-rewriting advert server
        (DnsAnswer("ok", ("127.255.255.251",)), ERROR),
        (DnsAnswer("timeout"), ERROR),
        (DnsAnswer("servfail"), ERROR),
        (DnsAnswer("refused"), ERROR),
    ],
)
def test_classify(answer, state):
    assert classify(answer)[0] == state


def test_zone_settings():
    assert configured_zones({})[0] == list(DEFAULT_ZONES)
    assert configured_zones({"dnsbl_zones": "a.example, b.example"})[0] == [
        "a.example",
        "b.example",
    ]
    zones, problems = configured_zones({"dnsbl_zones": ["ok.example", "bad zone!", "OK.example."]})
    assert zones == ["ok.example"]
    assert len(problems) == 1 and "bad zone!" in problems[0]
    assert column_name("zen.spamhaus.org") == "zone_zen_spamhaus_org"


def test_self_test_marks_broken_zones_unusable(server):
    zones = [GOOD, BLOCKED_ZONE, HIJACK, DEAD, SLOW]
    module, _ = _prepared(server, zones)
    assert set(module.unusable) == {BLOCKED_ZONE, HIJACK, DEAD}
    assert module.extras == tuple(column_name(z) for z in zones)
    warnings = " ".join(module.warnings())
    assert BLOCKED_ZONE in warnings and "own recursive resolver" in warnings
    assert HIJACK in warnings and "rewrites NXDOMAIN" in warnings
    assert DEAD in warnings
    assert module.counters()[f"{DEAD}.unusable"] == 1
    # The test points were asked with reversed octets.
    asked = {name for _, name in server.query_log()}
    assert f"2.0.0.127.{GOOD}" in asked and f"1.0.0.127.{GOOD}" in asked


def test_listed_and_not_listed(server):
    module, svc = _prepared(server, [GOOD])
    listed, clean = _run(
        module, svc, message(received(LISTED_IP)), message(received(CLEAN_IP), uid=2)
    )
    assert listed["listed"] is True
    assert listed[column_name(GOOD)] == "127.0.0.4"
    assert clean["listed"] is False
    assert clean[column_name(GOOD)] == "nxdomain"
    assert module.counters() == {f"{GOOD}.listed": 1, f"{GOOD}.not_listed": 1}
    assert module.warnings() == []


def test_unusable_zone_is_left_out_not_counted_as_listing(server):
    module, svc = _prepared(server, [GOOD, HIJACK])
    (res,) = _run(module, svc, message(received(CLEAN_IP)))
    assert res["listed"] is False  # the hijacked "127.0.0.2" for everything is ignored
    assert res[column_name(HIJACK)] is None


def test_blocked_answer_is_unknown_with_one_warning(server):
    module, svc = _prepared(server, [PARTIAL])
    assert not module.unusable
    r1, r2 = _run(module, svc, message(received(REFUSED_IP)), message(received(REFUSED_IP), uid=2))
    assert r1["listed"] is None and r2["listed"] is None
    assert r1[column_name(PARTIAL)] == "127.255.255.254"
    assert module.counters()[f"{PARTIAL}.blocked"] == 2
    assert len(module.warnings()) == 1
    assert "own recursive resolver" in module.warnings()[0]


def test_timeout_is_unknown_and_counted(server):
    module, svc = _prepared(server, [SLOW])
    (res,) = _run(module, svc, message(received(SLOW_IP)))
    assert res["listed"] is None
    assert res[column_name(SLOW)] == "timeout"
    assert module.counters()[f"{SLOW}.error"] == 1
    assert SLOW in module.warnings()[0]


def test_listed_anywhere_wins_over_unknown_elsewhere(server):
    module, svc = _prepared(server, [SLOW, GOOD])
    (res,) = _run(module, svc, message(received(LISTED_IP)))
    assert res["listed"] is True
    module2, svc2 = _prepared(server, [PARTIAL, GOOD])
    (res2,) = _run(module2, svc2, message(received(REFUSED_IP)))
    assert res2["listed"] is None  # not listed on GOOD, but PARTIAL could not say


def test_ipv6_origin_uses_nibbles(server):
    module, svc = _prepared(server, [GOOD])
    (res,) = _run(module, svc, message(received(V6_IP)))
    assert res["listed"] is True
    assert res[column_name(GOOD)] == "127.0.0.3"


def test_each_ip_asked_once_per_zone(server):
    module, svc = _prepared(server, [GOOD])
    before = len(server.query_log())
    msgs = [message(received(CLEAN_IP), uid=i) for i in range(5)]
    results = _run(module, svc, *msgs)
    assert [r["listed"] for r in results] == [False] * 5
    new = server.query_log()[before:]
    assert new.count(("A", query_name(CLEAN_IP, GOOD))) == 1


def test_no_public_origin_is_unknown_without_dns(server):
    module, svc = _prepared(server, [GOOD])
    before = len(server.query_log())
    for headers in (received("10.1.2.3"), "Subject: no received\r\n", "\x00garbage"):
        (res,) = _run(module, svc, message(headers))
        assert res["listed"] is None
    assert len(server.query_log()) == before


def test_trusted_relay_is_skipped(server):
    svc = services(
        server.server_spec, settings={"dnsbl_zones": [GOOD]}, trusted_relays=(LISTED_IP,)
    )
    module = Dnsbl()
    module.prepare(svc)
    headers = received(LISTED_IP, helo="relay.example.org") + received(CLEAN_IP)
    (res,) = _run(module, svc, message(headers))
    assert res["listed"] is False  # the relay is listed, the real origin is not
