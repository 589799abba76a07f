"""Hostile and lying resolvers end to end through `mailstats --batch`: counts, exit code,
warning text, manifest, cache contents and wall time (bounded by the configured timeout)."""

from __future__ import annotations

import csv
import json
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from hostile_dns import HostileDns, zone_from_records

from fixtures.generator import Mailbox, generate_mailbox
from mailstats.cli import main
from mailstats.modules import available_modules

NETWORK = ("received", "dnsbl", "dkim", "spf", "domain", "dynamic", "datetime")
#: What each module declares as resting on DNS (docs/modules.md lists them).
DNS_CHECKS = tuple(
    f"{m.name}.{c}"
    for m in available_modules().modules
    if m.name in NETWORK
    for c in m.checks
    if c in m.dns_columns
)
TIMEOUT = 1.0
#: A run of this mailbox with every module takes a few seconds here; generous on purpose.
BASE_S = 20.0


@pytest.fixture(scope="module")
def box() -> Mailbox:
    return generate_mailbox(5, 60, 40, 10, dns_failures=False)


def _config(tmp: Path, box: Mailbox, spec: str, modules: tuple[str, ...] = NETWORK, **kw: Any):
    mail = tmp / "mail"
    if not mail.exists():
        box.write_mbox(mail)
    ident = box.identity
    settings = {
        "dns_servers": [spec],
        "dns_timeout": TIMEOUT,
        "modules": list(modules),
        "cache": str(tmp / "cache.sqlite"),
        "analysis_workers": 0,
        **box.settings,
        **kw,
    }
    lines = ["[settings]"] + [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    lines += [
        "",
        "[[accounts]]",
        'name = "l"',
        f"path = {json.dumps(str(mail))}",
        f"address = {json.dumps(ident['address'])}",
        f"own_domains = {json.dumps(list(ident['own_domains']))}",
        f"trusted_relays = {json.dumps(list(ident['trusted_relays']))}",
        'ham = ["INBOX"]',
        'spam = ["Junk"]',
        'sent = ["Sent"]',
    ]
    path = tmp / "accounts.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(cfg: Path, out: Path, capsys: Any) -> tuple[int, str, float]:
    capsys.readouterr()
    started = time.monotonic()
    rc = main(["--batch", str(cfg), "--out", str(out), "--quiet"])
    elapsed = time.monotonic() - started
    return rc, capsys.readouterr().err, elapsed


def _summary(out: Path) -> dict[tuple[str, str], tuple[int, int, int]]:
    with (out / "summary.csv").open() as fh:
        return {
            (r["folder"], r["check"]): (int(r["matched"]), int(r["applicable"]), int(r["total"]))
            for r in csv.DictReader(fh)
        }


def _manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "manifest.json").read_text())


def _rows(tmp: Path, sql: str) -> list[tuple]:
    return sqlite3.connect(tmp / "cache.sqlite").execute(sql).fetchall()


@pytest.mark.parametrize("mode", ["nxdomain", "hijack"])
def test_a_lying_resolver_makes_every_dns_check_unknown(
    tmp_path: Path, box: Mailbox, capsys: Any, mode: str
) -> None:
    zone = {} if mode == "nxdomain" else zone_from_records(box.dns_records)
    with HostileDns(mode, zone=zone) as srv:
        rc, err, elapsed = _run(_config(tmp_path, box, srv.spec), tmp_path / "out", capsys)
    assert rc == 0, err
    m = _manifest(tmp_path / "out")
    trust = m["dns_trust"]
    assert trust["status"] == "lying"
    assert trust["verdict"] == ("nxdomain_everything" if mode == "nxdomain" else "hijack")
    assert set(trust["unknown_checks"]) == set(DNS_CHECKS)
    phrase = "answered NXDOMAIN to everything" if mode == "nxdomain" else "a name that cannot exist"
    assert err.count(phrase) == 1 and "Traceback" not in err
    assert sum(phrase in w for w in m["warnings"]) == 1
    summary = _summary(tmp_path / "out")
    for folder in ("INBOX", "Junk", "Sent"):
        for check in DNS_CHECKS:
            matched, applicable, total = summary[(folder, check)]
            assert (matched, applicable) == (0, 0) and total > 0, (folder, check)
        assert summary[(folder, "datetime.date_missing")][1] > 0  # other checks still count
    # nothing the liar said is kept, nor any result derived from it
    assert _rows(tmp_path, "SELECT * FROM dns") == []
    mods = {r[0] for r in _rows(tmp_path, "SELECT DISTINCT module FROM results")}
    assert mods.isdisjoint({c.split(".")[0] for c in DNS_CHECKS})
    assert max(srv.asked.values()) == 1  # no name asked twice
    assert elapsed < BASE_S


def test_the_dns_cache_belongs_to_the_resolver(tmp_path: Path, box: Mailbox, capsys: Any) -> None:
    zone = zone_from_records(box.dns_records)
    with HostileDns("honest", zone=zone, ttl=3600) as a, HostileDns("honest", zone=zone) as b:
        cfg = _config(tmp_path, box, a.spec)
        rc, err, _ = _run(cfg, tmp_path / "one", capsys)
        assert rc == 0, err
        asked_a = set(a.asked)
        first = _summary(tmp_path / "one")
        assert _manifest(tmp_path / "one")["dns_trust"]["status"] == "ok"
        # the same cache, another resolver: every name is asked again, of the new one
        cfg = _config(tmp_path, box, b.spec)
        rc, err, _ = _run(cfg, tmp_path / "two", capsys)
        assert rc == 0, err
        assert set(b.asked) == asked_a - {k for k in asked_a if k[0].endswith(".invalid")} | {
            k for k in b.asked if k[0].endswith(".invalid")
        }
        assert _summary(tmp_path / "two") == first
        dns = _manifest(tmp_path / "two")["dns"]
        # nothing came from a's answers: every pair asked of b, once
        assert dns["network_queries"] == b.queries == len(b.asked) == dns["distinct_pairs"] + 1
        # back to the first resolver, modules forced to run again: its answers are reused
        before = a.queries
        cfg = _config(tmp_path, box, a.spec, now_max_age_days=1)
        rc, err, _ = _run(cfg, tmp_path / "three", capsys)
        assert rc == 0, err
        assert a.queries == before
        assert _summary(tmp_path / "three") == first
    live = f"SELECT DISTINCT resolver FROM dns WHERE expires > {time.time()}"
    assert len(_rows(tmp_path, live)) == 1  # b answered with TTL 0: none of it outlives its run


def test_a_cname_loop_is_unknown_and_never_cached(
    tmp_path: Path, box: Mailbox, capsys: Any
) -> None:
    zone = zone_from_records(box.dns_records)
    mx_domains = sorted({n for (n, t) in zone if t == "MX"})
    froms = {}
    for msg in box.folders["INBOX"]:
        from email import message_from_bytes
        from email.utils import parseaddr

        addr = parseaddr(message_from_bytes(msg.raw).get("From", ""))[1].lower()
        froms.setdefault(addr.rpartition("@")[2], 0)
        froms[addr.rpartition("@")[2]] += 1
    loops = {d for d in mx_domains if d in froms}
    loops = set(sorted(loops)[:3])
    assert loops
    with HostileDns("loop", zone=zone, loops=loops, ttl=3600) as srv:
        cfg = _config(tmp_path, box, srv.spec, modules=("domain",))
        rc, err, _ = _run(cfg, tmp_path / "out", capsys)
    assert rc == 0, err
    m = _manifest(tmp_path / "out")
    assert m["dns"]["cname_loop"] == 3 * len(loops)  # MX, A and AAAA of each, once each
    assert all(srv.asked[(d, t)] == 1 for d in loops for t in ("MX", "A", "AAAA"))
    with (tmp_path / "out" / "messages.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["folder"] == "INBOX"]
    looped = [r for r in rows if r["from_address"].rpartition("@")[2].lower() in loops]
    assert len(looped) == sum(froms[d] for d in loops)
    assert all(r["domain.from_domain_exists"] == "" for r in looped)  # unknown, not "no"
    others = [r for r in rows if r not in looped]
    assert any(r["domain.from_domain_exists"] == "1" for r in others)
    stored = {r[0] for r in _rows(tmp_path, "SELECT name FROM dns")}
    assert stored and stored.isdisjoint(loops)


@pytest.mark.parametrize("mode", ["refuse", "servfail"])
def test_a_failing_resolver_costs_one_query_per_name(
    tmp_path: Path, box: Mailbox, capsys: Any, mode: str
) -> None:
    with HostileDns(mode) as srv:
        rc, err, elapsed = _run(_config(tmp_path, box, srv.spec), tmp_path / "out", capsys)
    assert rc == 0, err
    m = _manifest(tmp_path / "out")
    assert max(srv.asked.values()) == 1  # never retried
    assert m["dns"]["network_queries"] == srv.queries == len(srv.asked)
    assert m["dns"]["distinct_pairs"] == len(srv.asked) - 1  # all but the honesty probe
    assert m["dns_trust"]["status"] == "failing"
    assert err.count("every DNS look-up") == 1
    summary = _summary(tmp_path / "out")
    for check in DNS_CHECKS:
        if check.split(".")[0] in ("dnsbl", "spf", "domain", "dynamic"):
            assert summary[("INBOX", check)][:2] == (0, 0), check
    assert elapsed < BASE_S


@pytest.mark.parametrize("kind", ["closed", "silent"])
def test_an_unreachable_resolver_is_found_out_in_the_first_seconds(
    tmp_path: Path, box: Mailbox, capsys: Any, kind: str
) -> None:
    srv = None
    if kind == "closed":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        spec = f"127.0.0.1:{s.getsockname()[1]}"
        s.close()
    else:
        srv = HostileDns("silent").start()
        spec = srv.spec
    try:
        rc, err, elapsed = _run(
            _config(tmp_path, box, spec, dns_timeout=2.0), tmp_path / "out", capsys
        )
    finally:
        if srv is not None:
            srv.close()
    assert rc == 0, err
    m = _manifest(tmp_path / "out")
    assert m["dns_trust"]["status"] == "unreachable"
    assert err.count(f"no answer from {spec}") == 1
    assert m["dns"]["skipped_dead"] > 0
    if srv is not None:  # one lifetime of retransmissions for the first exchange, no more
        assert srv.queries <= 3 * (m["dns"]["distinct_pairs"] + 1)
    summary = _summary(tmp_path / "out")
    assert summary[("INBOX", "domain.from_domain_exists")][:2] == (0, 0)
    assert elapsed < 2.0 + BASE_S / 2
