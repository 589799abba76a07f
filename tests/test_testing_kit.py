"""mailstats.testing gives a module what a run gives it, so a plug-in's own tests mean
something: the Message from raw bytes equals what a local store yields for the same mail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fixtures.generator import generate_mailbox
from mailstats.plugin import NXDOMAIN, OK, Module
from mailstats.sources.local import LocalSource
from mailstats.testing import ContractError, MemoryDns, message, run_module, services


def test_message_equals_what_a_local_store_gives(tmp_path: Path) -> None:
    box = generate_mailbox(7, n_ham=40, n_spam=30, n_sent=10)
    src = LocalSource(str(box.write_maildir(tmp_path / "Mail")))
    compared = 0
    for folder, msgs in box.folders.items():
        state = src.open_folder(folder)
        fetched = {f.uid: f for f in src.fetch_headers(state.uids)}
        bodies = src.fetch_bodies({u: f.parts or [] for u, f in fetched.items()})
        raws = src.fetch_raw(state.uids)
        for uid, f in fetched.items():
            m = message(raws[uid][0], uid=uid, folder=folder)
            assert m.header_bytes == f.header and m.parts == f.parts and m.size == f.size
            assert m.body_text == bodies[uid][0].decode("utf-8", "replace")
            assert m.raw_bytes == raws[uid][0]
            compared += 1
        assert len(fetched) == len(msgs)
    src.close()
    assert compared == 80


def test_memory_dns_answers_records_statuses_and_nxdomain() -> None:
    dns = MemoryDns({("a.example.", "a"): ["192.1.2.1"], ("t.example", "TXT"): "timeout"})
    assert dns.query("A.Example", "A").status == OK and dns.query("a.example", "A").ok
    assert dns.query("t.example", "txt").failed
    assert dns.query("none.example", "MX").status == NXDOMAIN
    assert dns.ptr("192.1.2.1").status == NXDOMAIN
    assert dns.asked[-1] == ("1.2.1.192.in-addr.arpa", "PTR")


class Resolving(Module):
    name = "resolving"
    checks = ("has_mx",)

    def __init__(self) -> None:
        self.prepared = 0

    def prepare(self, services: Any) -> None:
        self.prepared += 1

    def prefetch(self, msg: Any, services: Any) -> list[tuple[str, str]]:
        return [(msg.from_address.domain, "MX")]

    def evaluate(self, msg: Any, services: Any) -> dict:
        assert self.prepared == 1
        return {"has_mx": services.dns.query(msg.from_address.domain, "MX").exists}


def test_run_module_prepares_prefetches_and_checks_the_contract() -> None:
    dns = MemoryDns(
        {("good.example", "MX"): ["10 mx.good.example"], ("bad.example", "MX"): "servfail"}
    )
    msgs = [message(f"From: a@{d}.example\r\n\r\n".encode()) for d in ("good", "none", "bad")]
    rows = run_module(Resolving, msgs, services(dns=dns))
    assert [r["has_mx"] for r in rows] == [True, False, None]
    assert dns.asked[:3] == [(f"{d}.example", "MX") for d in ("good", "none", "bad")]

    class Sloppy(Resolving):
        def evaluate(self, msg: Any, services: Any) -> dict:
            return {"has_mx": 1}

    with pytest.raises(ContractError, match="'has_mx' is 1"):
        run_module(Sloppy, msgs)
