"""Server and DNS faults: the run degrades, reports and resumes; it never loses a message.

IMAP faults are injected against the real Dovecot: a loopback TCP proxy between mailstats
and Dovecot cuts the connection after N bytes, stalls, or slows every chunk; a private
Dovecot instance is stopped in the middle of a fetch and started again; Dovecot's own NO
answers a folder that does not exist; and the fake server of tests/oauth_server.py sends
BYE to every fetch. Each time the other accounts of the batch still run, the failure is
named, and a re-run resumes from the cache with exactly the counts of an uninterrupted run.

DNS faults come from loopback stubs that time out, answer SERVFAIL or REFUSED, or set TC
(with and without a TCP server behind): the checks are unknown and counted, the cache's dns
table keeps none of it, and the run-wide `dns_deadline` bounds the time when all is silent.
"""

from __future__ import annotations

import contextlib
import csv
import json
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest
from test_e2e_imap import new_user, read_summary

from mailstats.accounts.config import load_config
from mailstats.cli import run_batch
from mailstats.run.cache import Cache
from mailstats.run.engine import Engine
from mailstats.services.dns import FAILED, Resolver
from mailstats.sources.imap import ImapSource

pytestmark = pytest.mark.servers

#: Every fault injected here, for docs/reliability.md (counted by the tests themselves).
INJECTED: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _print_injected() -> Iterator[None]:
    """`pytest -s tests/test_faults.py` prints the tally quoted in docs/reliability.md."""
    yield
    print(f"\nfaults injected: {len(INJECTED)}: {INJECTED}")


# -- a loopback TCP proxy that misbehaves on purpose ----------------------------------------
class FaultProxy:
    """Forwards 127.0.0.1:port to a target; cuts, stalls or slows the server's replies.

    cut_after: close both sides once this many server bytes went through one connection;
    faulty: how many connections (in accept order) get the fault, None = all;
    delay: seconds to sleep before forwarding each server chunk; stall_after: stop forwarding
    (without closing) after that many bytes; refuse: close every new connection at once.
    """

    def __init__(
        self,
        target: int,
        *,
        cut_after: int | None = None,
        stall_after: int | None = None,
        delay: float = 0.0,
        faulty: int | None = None,
    ) -> None:
        self.target = target
        self.cut_after, self.stall_after, self.delay, self.faulty = (
            cut_after,
            stall_after,
            delay,
            faulty,
        )
        self.refuse = False
        self.connections = 0
        self.faults = 0
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            if self.refuse:
                client.close()
                continue
            faulty = self.faulty is None or self.connections <= self.faulty
            try:
                server = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            self._socks += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, faulty), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, faulty: bool) -> None:
        sent = 0
        src.settimeout(None)
        try:
            while True:
                data = src.recv(16384)
                if not data:
                    break
                if faulty and self.delay:
                    time.sleep(self.delay)
                if faulty and self.cut_after is not None and sent + len(data) > self.cut_after:
                    dst.sendall(data[: self.cut_after - sent])
                    self.faults += 1
                    break
                if faulty and self.stall_after is not None and sent + len(data) > self.stall_after:
                    self.faults += 1
                    self._stop.wait()  # hold the connection open, forward nothing more
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def close(self) -> None:
        self._stop.set()
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.close()
        self.listener.close()


@contextlib.contextmanager
def proxy(target: int, **kw: Any) -> Iterator[FaultProxy]:
    p = FaultProxy(target, **kw)
    try:
        yield p
    finally:
        p.close()


# -- accounts files -----------------------------------------------------------------------
def config(
    tmp_path: Path,
    dns_spec: str,
    accounts: list[dict[str, Any]],
    modules: tuple[str, ...] = ("received", "internal"),
    **settings: Any,
) -> Path:
    lines = [
        "[settings]",
        f"dns_servers = [{json.dumps(dns_spec)}]",
        f"modules = {json.dumps(list(modules))}",
        f"cache = {json.dumps(str(tmp_path / 'cache.sqlite'))}",
        "dns_timeout = 1.0",
    ]
    lines += [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    for acct in accounts:
        lines += ["", "[[accounts]]"] + [f"{k} = {json.dumps(v)}" for k, v in acct.items()]
    path = tmp_path / "accounts.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def imap_account(name: str, port: int, user: str, password: str, **kw: Any) -> dict[str, Any]:
    acct = {
        "name": name,
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": user,
        "password": password,
        "ham": ["INBOX"],
        "spam": ["Junk"],
        "own_domains": ["example.org"],
    }
    acct.update(kw)
    return acct


def manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "manifest.json").read_text())


def big_mailbox(generated_mailbox: Any, copies: int = 6) -> SimpleNamespace:
    """The generated INBOX repeated: > 500 messages, so a fetch spans several batches."""
    inbox = generated_mailbox.folders["INBOX"] * copies
    return SimpleNamespace(folders={"INBOX": inbox, "Junk": generated_mailbox.folders["Junk"]})


# -- IMAP faults against Dovecot ----------------------------------------------------------
def test_connection_cut_mid_fetch_retries_and_counts_match(
    tmp_path: Path, dovecot: Any, dns: Any, generated_mailbox: Any
) -> None:
    box = big_mailbox(generated_mailbox)
    user = new_user(dovecot, box)
    pw = dovecot.users[user]
    (tmp_path / "ref").mkdir()
    ref_cfg = config(tmp_path / "ref", dns.server_spec, [imap_account("a", dovecot.port, user, pw)])
    assert run_batch(str(ref_cfg), str(tmp_path / "ref" / "out"), quiet=True) == 0
    # the first two connections are cut 150 kB into the server's replies (mid-FETCH)
    with proxy(dovecot.port, cut_after=150_000, faulty=2) as p:
        cfg = config(tmp_path, dns.server_spec, [imap_account("a", p.port, user, pw)])
        assert run_batch(str(cfg), str(tmp_path / "out"), quiet=True) == 0
    INJECTED.append("cut x2")
    assert p.faults == 2 and p.connections == 3
    m = manifest(tmp_path / "out")
    assert m["fetch"]["reconnects"] == 2
    assert read_summary(tmp_path / "out") == read_summary(tmp_path / "ref" / "out")
    with (tmp_path / "out" / "messages.csv").open() as fh:
        uids = [(r["folder"], r["uid"]) for r in csv.DictReader(fh)]
    assert len(uids) == len(set(uids)) == sum(len(v) for v in box.folders.values())


def test_every_connection_cut_fails_readably_and_other_accounts_go_on(
    tmp_path: Path, dovecot: Any, dns: Any, generated_mailbox: Any, capsys: Any
) -> None:
    user = new_user(dovecot, generated_mailbox)
    pw = dovecot.users[user]
    with proxy(dovecot.port, cut_after=20_000) as p:
        cfg = config(
            tmp_path,
            dns.server_spec,
            [
                imap_account("flaky", p.port, user, pw),
                imap_account("good", dovecot.port, user, pw),
            ],
        )
        started = time.monotonic()
        assert run_batch(str(cfg), str(tmp_path / "out"), quiet=True) == 1
        elapsed = time.monotonic() - started
    INJECTED.append(f"cut x{p.faults}")
    err = capsys.readouterr().err
    assert "account 'flaky' failed" in err and "failed after 3 tries" in err
    assert p.connections <= 4  # the first connection plus bounded retries, no hammering
    assert elapsed < 30  # backoff 1 s, 2 s: bounded
    accounts = {a["name"]: a for a in manifest(tmp_path / "out")["accounts"]}
    assert accounts["flaky"]["status"] == "failed"
    assert accounts["good"]["status"] == "ok"
    totals = {f["folder"]: f["total"] for f in accounts["good"]["folders"]}
    assert totals == {k: len(v) for k, v in generated_mailbox.folders.items() if k != "Sent"}


def test_slow_answers_finish_with_exact_counts(
    tmp_path: Path, dovecot: Any, dns: Any, generated_mailbox: Any
) -> None:
    user = new_user(dovecot, generated_mailbox)
    pw = dovecot.users[user]
    (tmp_path / "ref").mkdir()
    ref = config(tmp_path / "ref", dns.server_spec, [imap_account("a", dovecot.port, user, pw)])
    assert run_batch(str(ref), str(tmp_path / "ref" / "out"), quiet=True) == 0
    with proxy(dovecot.port, delay=0.05) as p:  # every server chunk 50 ms late
        cfg = config(tmp_path, dns.server_spec, [imap_account("a", p.port, user, pw)])
        assert run_batch(str(cfg), str(tmp_path / "out"), quiet=True) == 0
    INJECTED.append("slow")
    assert read_summary(tmp_path / "out") == read_summary(tmp_path / "ref" / "out")


def test_stalled_server_times_out_reconnects_and_finishes(
    tmp_path: Path, dovecot: Any, dns: Any, generated_mailbox: Any
) -> None:
    """A server that stops answering mid-FETCH (socket open, no bytes): timeout, then retry."""
    user = new_user(dovecot, generated_mailbox)
    pw = dovecot.users[user]
    with proxy(dovecot.port, stall_after=30_000, faulty=1) as p:
        cfg = load_config(config(tmp_path, dns.server_spec, [imap_account("a", p.port, user, pw)]))
        retries: list[str] = []

        def factory(acct: Any, password: str) -> ImapSource:
            return ImapSource(
                acct, password, timeout=2.0, backoff=0.1, on_retry=retries.append, pace_s=0
            )

        started = time.monotonic()
        result = Engine(cfg, source_factory=factory).run()
        elapsed = time.monotonic() - started
    INJECTED.append("stall")
    assert result.ok, result.accounts[0].error
    assert p.faults == 1 and retries and "timed out" in retries[0]
    assert elapsed < 20
    totals = {f.folder: f.total for f in result.accounts[0].folders}
    assert totals == {"INBOX": 120, "Junk": 80}


def test_no_for_a_missing_folder_is_named_and_other_accounts_go_on(
    tmp_path: Path, dovecot: Any, dns: Any, generated_mailbox: Any
) -> None:
    user = new_user(dovecot, generated_mailbox)
    pw = dovecot.users[user]
    cfg = config(
        tmp_path,
        dns.server_spec,
        [
            imap_account("typo", dovecot.port, user, pw, spam=["Jnuk"]),
            imap_account("good", dovecot.port, user, pw),
        ],
    )
    assert run_batch(str(cfg), str(tmp_path / "out"), quiet=True) == 1
    INJECTED.append("NO")
    accounts = {a["name"]: a for a in manifest(tmp_path / "out")["accounts"]}
    assert accounts["typo"]["status"] == "failed" and "Jnuk" in accounts["typo"]["error"]
    assert accounts["good"]["status"] == "ok"
    assert dovecot.mail_log_events(user) == []


def test_bye_to_every_fetch_fails_readably_and_other_accounts_go_on(
    tmp_path: Path, dovecot: Any, dns: Any, generated_mailbox: Any
) -> None:
    from oauth_server import FakeImap, FakeMessage

    msgs = [FakeMessage(m.raw, 0) for m in generated_mailbox.folders["INBOX"][:20]]
    fake = FakeImap({"INBOX": msgs}, gmail=False, bye_after_fetches=1, bye_forever=True).start()
    user = new_user(dovecot, generated_mailbox)
    try:
        cfg = config(
            tmp_path,
            dns.server_spec,
            [
                imap_account("bye", fake.port, "u", "pw", spam=[]),
                imap_account("good", dovecot.port, user, dovecot.users[user]),
            ],
        )
        assert run_batch(str(cfg), str(tmp_path / "out"), quiet=True) == 1
    finally:
        fake.stop()
    INJECTED.append(f"BYE x{fake.fetches}")
    assert fake.fetches == 3  # RETRIES, then it gives up
    accounts = {a["name"]: a for a in manifest(tmp_path / "out")["accounts"]}
    assert "failed after 3 tries" in accounts["bye"]["error"]
    assert accounts["good"]["status"] == "ok"


def _stop_with_sessions(dc: Any) -> None:
    """Stop the master, then the IMAP processes it leaves serving open connections.

    Only this instance's own children: found by the instance name in their title, killed
    by pid.
    """
    import os
    import signal

    dc.stop()
    tag = f"mailstats-test-{dc.root.name}/"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if tag in title:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


def _restart(dc: Any) -> None:
    """Start the same Dovecot again on its ports, mail store and UIDVALIDITY kept."""
    from servers import DOVECOT, _tcp_open, _wait_for

    dc.proc = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(dc.root / "dovecot.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for(lambda: _tcp_open(dc.port), 20, "dovecot restart", dc.proc)


def test_dovecot_stopped_mid_fetch_then_resume_equals_uninterrupted(
    tmp_path: Path, dns: Any, generated_mailbox: Any
) -> None:
    from servers import Dovecot, ServerUnavailable

    try:
        dc = Dovecot.start()
    except ServerUnavailable as exc:
        pytest.skip(f"dovecot would not start: {exc}")
    try:
        box = big_mailbox(generated_mailbox, copies=10)  # 1,200 in INBOX: three FETCH batches
        user = "dana@example.org"
        for folder, msgs in box.folders.items():
            dc.deliver(user, folder, [m.raw for m in msgs])
        total = sum(len(v) for v in box.folders.values())
        pw = dc.users[user]
        cfg_path = config(tmp_path, dns.server_spec, [imap_account("a", dc.port, user, pw)])
        cfg = load_config(cfg_path)

        def stop_after_first_batch(p: Any) -> None:
            if p.phase == "sync" and p.folder == "INBOX" and p.done >= 500 and dc.proc:
                _stop_with_sessions(dc)  # the server and every IMAP session are gone

        def factory(acct: Any, password: str) -> ImapSource:
            return ImapSource(acct, password, timeout=5, backoff=0.1, pace_s=0)

        cache = Cache(cfg.settings.cache)
        first = Engine(cfg, cache=cache, source_factory=factory).run(
            progress=stop_after_first_batch
        )
        INJECTED.append("dovecot stopped")
        assert first.accounts[0].status == "failed"
        assert "failed after 3 tries" in first.accounts[0].error
        kept = len(cache.cached_uids("a", "INBOX"))
        assert 500 <= kept < 1200
        cache.close()

        _restart(dc)
        sessions = len(dc.session_counters(user))
        assert run_batch(str(cfg_path), str(tmp_path / "resumed"), quiet=True) == 0
        dc.wait_sessions(sessions + 1, user)
        resumed = dc.session_counters(user)[-1]
        assert resumed["hdr_count"] == total - kept  # only what the first run lacked

        # the uninterrupted reference: same server, fresh cache
        (tmp_path / "ref").mkdir()
        ref = config(tmp_path / "ref", dns.server_spec, [imap_account("a", dc.port, user, pw)])
        assert run_batch(str(ref), str(tmp_path / "ref" / "out"), quiet=True) == 0
        assert read_summary(tmp_path / "resumed") == read_summary(tmp_path / "ref" / "out")
        m = manifest(tmp_path / "resumed")
        assert sum(f["total"] for f in m["accounts"][0]["folders"]) == total
        with (tmp_path / "resumed" / "messages.csv").open() as fh:
            rows = [(r["folder"], r["uid"]) for r in csv.DictReader(fh)]
        assert len(rows) == len(set(rows)) == total  # none twice, none missed
        assert dc.mail_log_events(user) == []
    finally:
        dc.cleanup()


# -- DNS faults ---------------------------------------------------------------------------
class DnsStub:
    """Loopback UDP DNS that answers every query one bad way; optionally a TCP side for TC.

    mode: "silent" (never answers), "servfail", "refused", "tc" (empty reply, TC set).
    tcp_answer: for "tc", also listen on TCP at the same port and answer A 192.0.2.1.
    """

    def __init__(self, mode: str, tcp_answer: bool = False) -> None:
        self.mode = mode
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.udp.settimeout(0.2)
        self.queries = 0
        self.tcp_queries = 0
        self._stop = threading.Event()
        threading.Thread(target=self._serve_udp, daemon=True).start()
        self.tcp: socket.socket | None = None
        if tcp_answer:
            self.tcp = socket.socket()
            self.tcp.bind(("127.0.0.1", self.port))
            self.tcp.listen(8)
            self.tcp.settimeout(0.2)
            threading.Thread(target=self._serve_tcp, daemon=True).start()

    @property
    def spec(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _reply(self, wire: bytes) -> bytes | None:
        q = dns.message.from_wire(wire)
        r = dns.message.make_response(q)
        if self.mode == "servfail":
            r.set_rcode(dns.rcode.SERVFAIL)
        elif self.mode == "refused":
            r.set_rcode(dns.rcode.REFUSED)
        elif self.mode == "tc":
            r.flags |= dns.flags.TC
        else:
            return None
        return r.to_wire()

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.udp.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            self.queries += 1
            with contextlib.suppress(Exception):
                reply = self._reply(data)
                if reply is not None:
                    self.udp.sendto(reply, addr)

    def _serve_tcp(self) -> None:
        assert self.tcp is not None
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except (TimeoutError, OSError):
                continue
            with conn, contextlib.suppress(Exception):
                conn.settimeout(2)
                size = int.from_bytes(conn.recv(2), "big")
                q = dns.message.from_wire(conn.recv(size))
                self.tcp_queries += 1
                r = dns.message.make_response(q)
                name = q.question[0].name
                if name.to_text().endswith(".invalid."):  # an honest server: no such name
                    r.set_rcode(dns.rcode.NXDOMAIN)
                else:
                    r.answer.append(dns.rrset.from_text(name, 300, "IN", "A", "192.0.2.1"))
                wire = r.to_wire()
                conn.sendall(len(wire).to_bytes(2, "big") + wire)

    def close(self) -> None:
        self._stop.set()
        self.udp.close()
        if self.tcp is not None:
            self.tcp.close()


@contextlib.contextmanager
def stub(mode: str, tcp_answer: bool = False) -> Iterator[DnsStub]:
    s = DnsStub(mode, tcp_answer)
    try:
        yield s
    finally:
        s.close()


FAULT_MODES = ["silent", "servfail", "refused", "tc"]


@pytest.mark.parametrize("mode", FAULT_MODES)
def test_resolver_fault_is_unknown_and_never_cached(tmp_path: Path, mode: str) -> None:
    cache = Cache(tmp_path / "c.sqlite")
    with stub(mode) as s:
        r = Resolver([s.spec], timeout=0.6, store=cache)
        answers = [r.query("host.example", "A"), r.ptr("45.79.1.2"), r.query("x.example", "MX")]
        r.prefetch([(f"n{i}.example", "A") for i in range(10)])  # the bulk UDP path too
        answers += [r.query(f"n{i}.example", "A") for i in range(10)]
        r.flush()
        r.close()
    INJECTED.extend([f"dns {mode}"] * len(answers))
    assert all(a.failed and a.status in FAILED for a in answers), answers
    assert all(a.exists is None for a in answers)
    assert s.queries > 0
    rows = sqlite3.connect(tmp_path / "c.sqlite").execute("SELECT * FROM dns").fetchall()
    assert rows == []
    cache.close()


def test_truncated_udp_falls_back_to_tcp(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.sqlite")
    with stub("tc", tcp_answer=True) as s:
        r = Resolver([s.spec], timeout=2.0, store=cache)
        a = r.query("big.example", "A")
        r.flush()
    INJECTED.append("dns tc+tcp")
    assert a.status == "ok" and a.records == ("192.0.2.1",)
    assert s.tcp_queries == 2  # the answer and the resolver's honesty probe
    rows = sqlite3.connect(tmp_path / "c.sqlite").execute("SELECT name FROM dns").fetchall()
    assert rows == [("big.example",)]  # a real answer is cached
    cache.close()


def test_dns_deadline_bounds_a_resolver_that_only_times_out() -> None:
    with stub("silent") as s:
        r = Resolver([s.spec], timeout=0.5, deadline_s=1.5, dead_after=10**6)
        started = time.monotonic()
        answers = [r.query(f"q{i}.example", "A") for i in range(40)]  # 40 x 0.5 s = 20 s
        elapsed = time.monotonic() - started
        r.close()
    INJECTED.extend(["dns silent"] * 40)
    assert all(a.status == "timeout" for a in answers)
    assert elapsed < 1.5 + 0.5 + 1.0
    # silence from the start: found dead after one look-up lifetime, long before the deadline
    assert r.stats["skipped_deadline"] + r.stats["skipped_dead"] == 39


NETWORK = ("dnsbl", "domain", "dynamic", "spf", "received")


def _maildir_of(generated_mailbox: Any, root: Path) -> int:
    from fixtures.nasty import NastyMessage, write_maildir

    msgs = [NastyMessage(str(i), m.raw) for i, m in enumerate(generated_mailbox.messages())]
    write_maildir(root, msgs)
    return len(msgs)


@pytest.mark.parametrize("mode", FAULT_MODES)
def test_run_with_dns_fault_counts_unknown_and_caches_nothing(
    tmp_path: Path, generated_mailbox: Any, mode: str
) -> None:
    n = _maildir_of(generated_mailbox, tmp_path / "md")
    with stub(mode) as s:
        cfg = config(
            tmp_path,
            s.spec,
            [{"name": "l", "path": str(tmp_path / "md"), "ham": ["INBOX"], "spam": ["Junk"]}],
            modules=NETWORK,
            dns_deadline=20,
        )
        started = time.monotonic()
        assert run_batch(str(cfg), str(tmp_path / "out"), quiet=True) == 0
        elapsed = time.monotonic() - started
    INJECTED.append(f"dns {mode} run ({s.queries} queries)")
    assert elapsed < 40
    m = manifest(tmp_path / "out")
    assert m["counts"]["messages"] == n
    failures = sum(v for k, v in m["dns"].items() if k in FAILED or k.startswith("skipped"))
    assert failures > 0 and not m["dns"].get("ok") and not m["dns"].get("nxdomain")
    summary = read_summary(tmp_path / "out")
    for check in ("dnsbl.listed", "domain.from_domain_exists", "spf.pass"):
        for folder in ("INBOX", "Junk"):
            matched, applicable, total = summary[(folder, check)]
            assert (matched, applicable) == (0, 0), (check, folder)  # all unknown, all counted
            assert total > 0
    rows = sqlite3.connect(tmp_path / "cache.sqlite").execute("SELECT * FROM dns").fetchall()
    assert rows == []


def test_run_wide_deadline_when_every_query_times_out(
    tmp_path: Path, generated_mailbox: Any
) -> None:
    _maildir_of(generated_mailbox, tmp_path / "md")
    with stub("silent") as s:
        cfg = config(
            tmp_path,
            s.spec,
            [{"name": "l", "path": str(tmp_path / "md"), "ham": ["INBOX"], "spam": ["Junk"]}],
            modules=NETWORK,
            dns_deadline=3,
        )
        started = time.monotonic()
        assert run_batch(str(cfg), str(tmp_path / "out"), quiet=True) == 0
        elapsed = time.monotonic() - started
    INJECTED.append(f"dns silent run ({s.queries} queries)")
    m = manifest(tmp_path / "out")
    skipped = m["dns"].get("skipped_deadline", 0) + m["dns"].get("skipped_dead", 0)
    assert skipped > 0
    assert elapsed < 3 + 12, elapsed  # the deadline, one look-up lifetime, and the rest
