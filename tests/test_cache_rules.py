"""Each rule that makes cached module results stale, as docs/modules.md states them.

A re-run evaluates a module again exactly when its version or fingerprint changed: the sent
index for modules that use it, the trusted relays and the DNS servers for every module, and
for "now" evidence the age limit (7 days by default). Each test changes one input, runs
again, and counts which modules evaluated how many messages in that run (the run's
per-module cost figures), so a fingerprint that ignored the input would fail it.
"""

from __future__ import annotations

import csv
import gc
import mailbox
import types
from pathlib import Path
from typing import Any

import pytest
from hostile_dns import HostileDns

import mailstats.modules
from mailstats.accounts.config import parse_config
from mailstats.run.cache import Cache
from mailstats.run.engine import Engine
from mailstats.run.own_mx import own_mx
from mailstats.services.dns import NXDOMAIN, OK, DnsAnswer
from mailstats.stats.export import write_outputs

N_INBOX = 6
PERIOD = 7 * 86400


def _msg(i: int, sender: str) -> bytes:
    return (
        "Received: from relay.example.net (relay.example.net [192.1.2.77]) by mx.example.org "
        f"with ESMTP id R{i}; Mon, 1 Jan 2024 10:00:05 +0000\n"
        f"Received: from mail.example.com (mail.example.com [81.2.69.{10 + i}]) by "
        f"relay.example.net with ESMTP id S{i}; Mon, 1 Jan 2024 10:00:00 +0000\n"
        f"From: P {i} <{sender}>\nTo: dana@example.org\nSubject: m{i}\n"
        f"Date: Mon, 1 Jan 2024 09:59:00 +0000\nMessage-ID: <{i}@example.com>\n\nbody\n"
    ).encode()


def _sent(i: int, to: str) -> bytes:
    return (
        f"From: Dana <dana@example.org>\nTo: {to}\nSubject: s{i}\n"
        f"Date: Mon, 1 Jan 2024 08:00:00 +0000\nMessage-ID: <s{i}@example.org>\n\nhi\n"
    ).encode()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    md = mailbox.Maildir(tmp_path / "Mail", create=True)
    for i in range(N_INBOX):
        md.add(_msg(i, f"p{i}@example.com"))
    md.add_folder("Sent").add(_sent(0, "p0@example.com"))
    return tmp_path / "Mail"


def _run(tmp: Path, store: Path, **changes: Any) -> Any:
    settings = {
        "modules": ["received", "friends", "datetime"],
        "dns_servers": [changes.pop("dns", "127.0.0.1:9")],
        "dns_timeout": 0.2,
        "analysis_workers": 0,
        "cache": str(tmp / "cache.sqlite"),
        **changes.pop("settings", {}),
    }
    account = {"name": "dana", "path": str(store), "ham": ["INBOX"], "sent": ["Sent"]}
    account.update(changes)
    cfg = parse_config({"settings": settings, "accounts": [account]})
    engine = Engine(cfg, cache=Cache(cfg.settings.cache))
    result = engine.run()
    assert result.ok
    result.out = tmp / f"out{len(list(tmp.glob('out*')))}"
    write_outputs(engine, result, result.out)
    engine.cache.close()
    return result


def evaluated(result: Any) -> dict[str, int]:
    """module -> messages it evaluated in this run (INBOX and Sent together)."""
    return {
        name: c.get("messages", 0)
        for name, c in result.module_cost.items()
        if name in ("_core", "received", "friends", "datetime")
    }


def _inbox(result: Any) -> Any:
    return next(f for a in result.accounts for f in a.folders if f.folder == "INBOX")


ALL = N_INBOX + 1  # the INBOX and the one sent message


def test_unchanged_rerun_evaluates_nothing(tmp_path: Path, store: Path) -> None:
    first = _run(tmp_path, store)
    assert evaluated(first) == {"_core": ALL, "received": ALL, "friends": ALL, "datetime": ALL}
    assert evaluated(_run(tmp_path, store)) == {}


def test_sent_index_change_reruns_only_the_modules_that_use_it(tmp_path: Path, store: Path) -> None:
    first = _run(tmp_path, store)
    assert _inbox(first).counts["friends.from_friend"] == [1, N_INBOX]
    mailbox.Maildir(store, create=False).get_folder("Sent").add(_sent(1, "p3@example.com"))
    again = _run(tmp_path, store)
    # the new sent message is evaluated by every module; the INBOX by friends only
    assert evaluated(again) == {"_core": 1, "received": 1, "friends": ALL + 1, "datetime": 1}
    assert _inbox(again).counts["friends.from_friend"] == [2, N_INBOX]


def test_mail_delivered_in_the_same_second_keeps_the_folder_a_rerun(tmp_path: Path) -> None:
    """Maildir names carry the microseconds without leading zeros: a message delivered at
    .100000 s after one at .099999 s of the same second sorted before it as text, and the
    folder read as rewritten (every message analysed again; this test's flake before)."""
    store = tmp_path / "Mail"
    mailbox.Maildir(store, create=True).add_folder("Sent")
    names = [f"1700000000.M{usec}P42Q{q}.host" for q, usec in enumerate([5, 99999, 100000])]
    for i, name in enumerate(names[:2]):
        (store / "new" / name).write_bytes(_msg(i, f"p{i}@example.com"))
    _run(tmp_path, store)
    (store / "new" / names[2]).write_bytes(_msg(2, "p2@example.com"))
    again = _run(tmp_path, store)
    assert evaluated(again) == {"_core": 1, "received": 1, "friends": 1, "datetime": 1}
    assert _inbox(again).total == 3


def test_trusted_relays_change_reruns_every_module(tmp_path: Path, store: Path) -> None:
    first = _run(tmp_path, store)
    again = _run(tmp_path, store, trusted_relays=["192.1.2.77"])
    assert evaluated(again) == {"_core": ALL, "received": ALL, "friends": ALL, "datetime": ALL}
    origins = [
        {
            r["origin_ip"]
            for r in csv.DictReader((res.out / "messages.csv").open())
            if r["folder"] == "INBOX"
        }
        for res in (first, again)
    ]
    assert origins[0] == {"192.1.2.77"}
    assert origins[1] == {f"81.2.69.{10 + i}" for i in range(N_INBOX)}


def test_dns_servers_change_reruns_the_modules_not_the_core_fields(
    tmp_path: Path, store: Path
) -> None:
    _run(tmp_path, store)
    again = _run(tmp_path, store, dns="127.0.0.1:10")
    assert evaluated(again) == {"received": ALL, "friends": ALL, "datetime": ALL}


@pytest.mark.parametrize(
    "days,max_age,rerun",
    [(1, None, False), (6.5, None, False), (7.5, None, True), (1.5, 1, True), (0.5, 1, False)],
)
def test_now_evidence_expires(
    tmp_path: Path,
    store: Path,
    monkeypatch: pytest.MonkeyPatch,
    days: float,
    max_age: Any,
    rerun: bool,
) -> None:
    """Only "now" evidence (received asks PTRs today) expires; message evidence never does."""
    start = 3000 * PERIOD + 60.0  # just after the start of a 7-day (and of a 1-day) period
    clock = types.SimpleNamespace(time=lambda: start)
    monkeypatch.setattr(mailstats.modules, "time", clock)
    settings = {"now_max_age_days": max_age} if max_age else {}
    _run(tmp_path, store, settings=settings)
    clock.time = lambda: start + days * 86400
    again = _run(tmp_path, store, settings=settings)
    assert mailstats.modules.Module.evidence == "message"
    assert evaluated(again) == ({"received": ALL} if rerun else {})


def test_a_failed_own_mx_look_up_changes_no_cache_key(tmp_path: Path, store: Path) -> None:
    """The account's own MX hosts are in every module's cache key: one SERVFAIL for them
    must not make the run (nor the next one) analyse the mailbox again; the run says what
    stood in for them."""
    zone = {("example.org", "MX"): ["10 mx.example.org."]}
    with HostileDns("honest", zone=zone) as srv:
        kw: dict[str, Any] = {"dns": srv.spec, "address": "dana@example.org"}
        first = _run(tmp_path, store, **kw)
        assert evaluated(first) == {"_core": ALL, "received": ALL, "friends": ALL, "datetime": ALL}
        assert not [w for w in first.warnings if "MX" in w]
        srv.mode = "servfail"
        failing = _run(tmp_path, store, **kw)
        srv.mode = "honest"
        again = _run(tmp_path, store, **kw)
    assert evaluated(failing) == {}
    assert any("MX hosts found on" in w and "stand in" in w for w in failing.warnings)
    assert evaluated(again) == {}


def test_own_mx_stands_in_only_for_a_failure(tmp_path: Path) -> None:
    class Resolver:
        answers: dict[str, DnsAnswer] = {}

        def query(self, name: str, rdtype: str) -> DnsAnswer:
            return self.answers.get(name, DnsAnswer(NXDOMAIN))

    cache, res = Cache(tmp_path / "c.sqlite"), Resolver()
    res.answers = {"example.org": DnsAnswer("timeout")}
    hosts, warning = own_mx(res, cache, "a", ["example.org"])
    assert hosts == () and "without their MX hosts" in warning  # nothing found before
    res.answers = {}
    assert own_mx(res, cache, "a", ["example.org"]) == ((), "")  # no MX is an answer
    res.answers = {"example.org": DnsAnswer(OK, ("10 mx1.example.org.",), 60)}
    assert own_mx(res, cache, "a", ["example.org"]) == (("mx1.example.org",), "")
    res.answers = {"example.org": DnsAnswer("servfail")}
    hosts, warning = own_mx(res, cache, "a", ["example.org"])
    assert hosts == ("mx1.example.org",) and "stand in" in warning and "servfail" in warning
    assert "mx1.example.org" in warning
    assert own_mx(res, cache, "b", ["example.org"])[0] == ()  # kept per account
    cache.close()


def test_an_analysis_worker_takes_the_runs_own_mx_instead_of_asking(
    tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker asking again could get another answer (or a failure) than its parent, and
    evaluate under another identity than the one the results are stored under."""
    from mailstats.run import analysis

    cfg = parse_config(
        {
            "settings": {"modules": ["received"], "dns_servers": ["127.0.0.1:9"],
                         "dns_timeout": 0.2, "cache": str(tmp_path / "c.sqlite")},
            "accounts": [{"name": "dana", "path": str(store), "ham": ["INBOX"],
                          "address": "dana@example.org"}],
        }
    )  # fmt: skip
    monkeypatch.setattr(analysis, "_WORKER", None)
    classes = [mailstats.modules.available_modules(plugins=False).by_name("received")]
    try:
        analysis._worker_init(
            cfg, cfg.accounts[0], None, classes, cfg.settings.cache, None, None, ("mx.example.org",)
        )
    finally:
        gc.unfreeze()  # the worker's start-up freezes what exists: here, the test session
    assert analysis._WORKER is not None
    assert analysis._WORKER.services.identity.own_mx == ("mx.example.org",)
    analysis._WORKER.cache.close()
