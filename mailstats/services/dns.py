"""DNS for modules: one resolver per run, a run memo, a persistent cache per resolver, honesty.

Why it looks like this:
- The original spent 20 minutes on 1k messages until it cached reverse look-ups; spam repeats
  the same IPs and domains, so answers persist across runs (SQLite) for their TTL.
- Within a run, the first answer for a (name, type) is the answer for every message of the
  run, whatever its TTL (dnsmasq serves its own records with TTL 0): the statistics need one
  truth per name, and the network is asked once. Worker processes share the run's id and
  look in the shared cache before asking, so they do not ask again what another one learnt.
- A failed look-up (timeout, SERVFAIL, REFUSED, a CNAME loop, an unfinished chain) is
  "unknown", never "no"; it is remembered for the run only (never asked again in a loop) and
  never persisted: the next run asks again.
- Answers belong to the resolver that gave them: the cache is keyed by the set of servers,
  so answers learnt with one `dns_servers` are never used with another.
- A resolver can lie (dns_trust.py): a hijacked miss, or NXDOMAIN for everything. Once it is
  found out, everything it says is "untrusted" (unknown) for the run and nothing it said is
  kept; the engine then reports every DNS-derived check as unknown.
- Modules look up one message at a time; the engine asks each module for the queries a batch
  will need and resolves them on one socket first (`prefetch`), so `query` answers from memory.
- A run-wide deadline and a dead-server detector keep a run bounded when DNS is down.
"""

from __future__ import annotations

import threading
import time
import uuid
from array import array
from collections import Counter
from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol

from mailstats.mail.ips import parse_ip
from mailstats.services.dns_trust import Trust
from mailstats.services.dns_wire import (
    ERROR,
    INCOMPLETE,
    LOOP,
    NODATA,
    NXDOMAIN,
    OK,
    REFUSED,
    SERVFAIL,
    TIMEOUT,
    Exchanger,
    WireAnswer,
)

BUDGET = "budget"  # not asked: the zone's query budget for this run is spent
UNTRUSTED = "untrusted"  # the resolver was found lying in this run: nothing it says counts
#: Statuses that say nothing about the name: "unknown", never persisted.
FAILED = frozenset({TIMEOUT, SERVFAIL, REFUSED, ERROR, BUDGET, LOOP, INCOMPLETE, UNTRUSTED})

MAX_TTL = 7 * 86400
__all__ = [
    "BUDGET", "ERROR", "FAILED", "INCOMPLETE", "LOOP", "NODATA", "NXDOMAIN", "OK", "REFUSED",
    "SERVFAIL", "TIMEOUT", "UNTRUSTED", "DnsAnswer", "DnsStore", "Resolver", "parse_server",
    "ptr_name", "resolver_key",
]  # fmt: skip

Row = tuple[str, str, str, tuple[str, ...], float, str]  # name, type, status, records, exp, run


class DnsAnswer(NamedTuple):
    """What one look-up gave. A NamedTuple (immutable, and three times cheaper to make than a
    frozen dataclass): one is made for every look-up of every message, memo hits included."""

    status: str
    records: tuple[str, ...] = ()
    ttl: int = 0

    @property
    def ok(self) -> bool:
        return self.status == OK and bool(self.records)

    @property
    def failed(self) -> bool:
        """The look-up itself failed: callers must report "unknown"."""
        return self.status in FAILED

    @property
    def exists(self) -> bool | None:
        """Whether the name has records of that type: None when the look-up failed."""
        if self.failed:
            return None
        return self.ok


class DnsStore(Protocol):
    """Where answers persist between runs, per resolver (the SQLite cache implements it)."""

    def load_dns(self, resolver: str, now: float, run: str) -> Iterable[Row]: ...

    def lookup_dns(
        self, resolver: str, keys: list[tuple[str, str]], now: float, run: str
    ) -> Iterable[Row]: ...

    def save_dns(self, resolver: str, rows: list[Row]) -> None: ...

    def purge_dns(self, resolver: str) -> None: ...


def parse_server(spec: str) -> tuple[str, int]:
    """'127.0.0.1:5353', '[::1]:53', '::1' or '192.0.2.1' -> (address, port)."""
    spec = spec.strip()
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
        return host, port
    if spec.count(":") == 1:
        host, port_s = spec.split(":")
        return host, int(port_s)
    return spec, 53


def system_servers() -> list[tuple[str, int]]:
    """The system resolver's servers (resolv.conf); none when it cannot be read."""
    import dns.resolver  # here: 70 ms of start-up, and only a run without dns_servers needs it

    try:
        r = dns.resolver.Resolver()
    except Exception:  # noqa: BLE001 - no resolv.conf: no servers, every look-up unknown
        return []
    return [(str(ns), int(r.port)) for ns in r.nameservers]


def resolver_key(servers: list[str] | None) -> str:
    """Who answers: the configured servers, or the system's as resolv.conf names them now."""
    if servers:
        return "servers:" + ",".join(sorted(f"[{h}]:{p}" for h, p in map(parse_server, servers)))
    return "system:" + ",".join(f"[{h}]:{p}" for h, p in system_servers())


def ptr_name(ip: str) -> str:
    """The in-addr.arpa / ip6.arpa name of an address (IPv4 without dnspython: hot path)."""
    parts = ip.split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts):
        return ".".join(reversed(parts)) + ".in-addr.arpa"
    import dns.reversename

    return dns.reversename.from_address(ip).to_text(omit_final_dot=True)


def _norm(name: str, rdtype: str) -> tuple[str, str]:
    return (name or "").strip().rstrip(".").lower(), rdtype.upper()


#: From this many names in one prefetch on, every live stored answer is read at once (see
#: Resolver._load); fewer are read one row each.
BULK_LOAD = 256
#: Answers a process keeps in memory past a flush. The run memo gives a name one answer for
#: the whole run; an answer already stored (with the run's id, which the store returns
#: whatever its TTL) can leave memory and be read back the same. At 100k messages with
#: new names in each, each analysis worker grew to 118 MB with the memo unbounded, 85 MB
#: with it bounded. Failed answers are never stored, so they stay.
MEMO_KEEP = 16384


class Resolver:
    """Thread-safe caching resolver; `query` may be called from modules and worker threads."""

    def __init__(
        self,
        servers: list[str] | None = None,
        *,
        timeout: float = 4.0,
        concurrency: int = 32,  # accepted for old callers: one socket needs no threads
        store: DnsStore | None = None,
        deadline_s: float | None = None,
        dead_after: int = 25,
        budgets: dict[str, int] | None = None,
        run_id: str | None = None,
    ) -> None:
        self.servers = list(servers or [])
        self.key = resolver_key(self.servers)
        addrs = [parse_server(s) for s in self.servers] if self.servers else system_servers()
        self.description = ", ".join(self.servers) or "the system resolver " + (
            ", ".join(h for h, _ in addrs) or "(none configured)"
        )
        self.timeout = timeout
        self._wire = Exchanger(addrs, timeout)
        self.run_id = run_id or uuid.uuid4().hex
        self._store = store
        #: (name, type) -> (status, records, expires, used in this run)
        self._mem: dict[tuple[str, str], tuple[str, tuple[str, ...], float, bool]] = {}
        #: a hash of each (name, type) pair as it is used in this run, repeats included (the
        #: memo may have let go of it and read it back: see MEMO_KEEP), for distinct_pairs;
        #: 8 bytes an answer where a set would take about 60
        self._used = array("q")
        self._pending: list[Row] = []
        self._lock = threading.RLock()
        self._net = threading.Lock()
        self._loaded = False
        self._deadline = time.monotonic() + deadline_s if deadline_s else None
        self._dead_after = dead_after
        self._consecutive_timeouts = 0
        self.dead = False
        self.tried_network = False
        self.stats: Counter[str] = Counter()
        self.trust = Trust(self)
        self._purged = False
        # Free DNSBLs limit queries per day: at most this many network queries per zone.
        self._budgets = {z.lower().strip("."): int(n) for z, n in (budgets or {}).items()}
        self.spent: Counter[str] = Counter()

    # -- sharing a run with worker processes -------------------------------------------
    def handoff(self) -> dict[str, Any]:
        """What a worker's resolver needs to continue this run (see `adopt`)."""
        return {"run_id": self.run_id, "dead": self.dead, **self.trust.state()}

    def adopt(self, state: dict[str, Any]) -> None:
        self.run_id = state.get("run_id") or self.run_id
        self.dead = self.dead or bool(state.get("dead"))
        self.trust.adopt(state)

    def report(self) -> dict[str, Any]:
        """Cumulative figures for the manifest, mergeable across processes."""
        with self._lock:
            stats = dict(self.stats)
            stats["distinct_pairs"] = len(set(self._used))
            stats["network_queries"] = self._wire.sent
            stats["retransmits"] = self._wire.retransmits
            stats["tcp_queries"] = self._wire.tcp
        return {
            "stats": {k: v for k, v in stats.items() if v},
            "dead": self.dead,
            "tried": self.tried_network,
            **self.trust.state(),
        }

    @property
    def lying(self) -> bool:
        return self.trust.lying

    # -- cache ------------------------------------------------------------------------
    def _load(self) -> None:
        """Every live stored answer into memory at once: for big batches (`prefetch`), which
        ask thousands of names. A `query` or a small prefetch before that reads its own rows
        instead: a re-run with nothing new asks a few MX and DNSBL test names, and loading
        100k+ stored answers for them was most of its time."""
        if self._loaded:
            return
        self._loaded = True
        if self._store is None:
            return
        for name, rdtype, status, records, expires, _run in self._store.load_dns(
            self.key, time.time(), self.run_id
        ):
            self._mem[(name, rdtype)] = (status, tuple(records), expires, False)

    def flush(self) -> None:
        """Write answers learnt since the last flush; call from the thread that owns the store."""
        with self._lock:
            rows, self._pending = self._pending, []
            purge = self.lying and not self._purged
            self._purged = self._purged or purge
        if self._store is None:
            return
        if purge:
            self._store.purge_dns(self.key)  # nothing a lying resolver said is kept
        elif rows:
            self._store.save_dns(self.key, rows)
            self._let_go()

    def _let_go(self) -> None:
        """Past MEMO_KEEP answers, the oldest stored ones leave memory (see MEMO_KEEP)."""
        with self._lock:
            if len(self._mem) <= MEMO_KEEP or self.lying:
                return
            waiting = {(r[0], r[1]) for r in self._pending}  # not stored yet
            drop = len(self._mem) - MEMO_KEEP // 2
            gone = []
            for key, entry in self._mem.items():
                if len(gone) >= drop:
                    break
                if entry[0] not in FAILED and key not in waiting:
                    gone.append(key)
            for key in gone:
                del self._mem[key]

    def forget(self) -> None:
        """Drop every stored answer of this resolver (it lied; workers may have stored some)."""
        with self._lock:
            self._pending = []
            self._purged = True
        if self._store is not None:
            self._store.purge_dns(self.key)

    def _hit(self, key: tuple[str, str], now: float, store: bool = True) -> DnsAnswer | None:
        """From memory (the run memo or a live persisted answer), else (`store`) from the
        shared store."""
        entry = self._mem.get(key)
        if entry is not None and not entry[3] and entry[2] < now:
            entry = None
        if entry is None and store and self._store is not None:
            for _n, _t, status, records, expires, _run in self._store.lookup_dns(
                self.key, [key], now, self.run_id
            ):
                entry = (status, tuple(records), expires, False)
        if entry is None:
            return None
        return self._use(key, entry, now)

    def _use(
        self, key: tuple[str, str], entry: tuple[str, tuple[str, ...], float, bool], now: float
    ) -> DnsAnswer:
        status, records, expires, used = entry
        if not used:
            self._mem[key] = (status, records, expires, True)
            self._used.append(hash(key))
            self.trust.observe(key, status)
        return DnsAnswer(status, records, max(0, int(expires - now)))

    def _remember(self, key: tuple[str, str], answer: DnsAnswer) -> None:
        expires = time.time() + min(max(answer.ttl, 0), MAX_TTL)
        self._mem[key] = (answer.status, answer.records, expires, True)
        self._used.append(hash(key))
        if not answer.failed:
            self._pending.append(
                (key[0], key[1], answer.status, answer.records, expires, self.run_id)
            )
        self.trust.observe(key, answer.status)

    # -- look-ups ---------------------------------------------------------------------
    def query(self, name: str, rdtype: str) -> DnsAnswer:
        """Look a name up (rdtype: A, AAAA, MX, TXT, PTR, NS); never raises."""
        key = _norm(name, rdtype)
        if not key[0] or len(key[0]) > 253:
            return DnsAnswer(ERROR)
        if self.lying:
            self.stats[UNTRUSTED] += 1
            return DnsAnswer(UNTRUSTED)
        with self._lock:
            hit = self._hit(key, time.time())
        if hit is not None:
            self.stats["cache_hit"] += 1
            return hit if not self.lying else DnsAnswer(UNTRUSTED)
        return self._resolve([key])[key]

    def ptr(self, ip: str) -> DnsAnswer:
        if parse_ip(ip) is None:
            return DnsAnswer(ERROR)
        return self.query(ptr_name(ip), "PTR")

    def prefetch(self, queries: Iterable[tuple[str, str]]) -> None:
        """Resolve many (name, rdtype) pairs at once so later `query` calls are hits."""
        if self.lying:
            return
        todo: list[tuple[str, str]] = []
        keys = {_norm(name, rdtype): None for name, rdtype in queries}  # in order, once
        with self._lock:
            if len(keys) >= BULK_LOAD:
                self._load()
            now = time.time()
            unknown = [
                key
                for key in keys
                if key[0] and len(key[0]) <= 253 and self._hit(key, now, store=False) is None
            ]
            # what another process of the run stored meanwhile: one look-up for them all
            found: dict[tuple[str, str], tuple[str, tuple[str, ...], float, bool]] = {}
            if unknown and self._store is not None:
                found = {
                    (n, t): (status, tuple(records), expires, False)
                    for n, t, status, records, expires, _run in self._store.lookup_dns(
                        self.key, unknown, now, self.run_id
                    )
                }
            for key in unknown:
                entry = found.get(key)
                if entry is None:
                    todo.append(key)
                else:
                    self._use(key, entry, now)
        if todo:
            self._resolve(todo)
            self.flush()  # other processes of the run find these before asking again

    def _resolve(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], DnsAnswer]:
        """Ask the network for memo misses (each key once per run); every key gets an answer."""
        with self._net:
            out: dict[tuple[str, str], DnsAnswer] = {}
            with self._lock:  # another thread may have asked meanwhile
                now = time.time()
                for key in keys:
                    entry = self._mem.get(key)
                    if entry is not None and entry[3]:
                        out[key] = DnsAnswer(entry[0], entry[1], max(0, int(entry[2] - now)))
            todo = [k for k in keys if k not in out]
            skipped = ""
            if self._deadline_passed():
                skipped = "skipped_deadline"
            elif self.dead or not self._wire.any_alive():
                skipped = "skipped_dead"
            if todo and skipped:
                self.stats[skipped] += len(todo)
                with self._lock:
                    for key in todo:
                        self._remember(key, DnsAnswer(TIMEOUT))
                        out[key] = DnsAnswer(TIMEOUT)
                todo = []
            if todo:
                out.update(self._ask(todo))
            if self.lying:
                return {k: DnsAnswer(UNTRUSTED) for k in keys}
            return out

    def _ask(self, todo: list[tuple[str, str]]) -> dict[tuple[str, str], DnsAnswer]:
        self.tried_network = True
        probe = self.trust.probe_key()
        send = [probe, *todo] if probe else list(todo)
        budget: list[tuple[str, str]] = []
        late: list[tuple[str, str]] = []

        def may_send(key: tuple[str, str]) -> bool:
            if self._deadline_passed():
                late.append(key)
                return False
            if key != probe and not self._spend(key[0]):
                budget.append(key)
                return False
            return True

        before = self._wire.responses
        got = self._wire.exchange(send, may_send=may_send)
        responded = self._wire.responses > before
        if probe:
            self.trust.judge_probe(got.pop(probe, WireAnswer(TIMEOUT, responded=False)))
        out: dict[tuple[str, str], DnsAnswer] = {}
        timeouts = 0
        with self._lock:
            for key in todo:
                wire = got.get(key)
                if key in budget:
                    answer = DnsAnswer(BUDGET)
                elif wire is None:
                    answer = DnsAnswer(TIMEOUT)
                    self.stats["skipped_deadline"] += 1
                else:
                    answer = DnsAnswer(wire.status, wire.records, wire.ttl)
                    self.stats[answer.status] += 1
                    timeouts = timeouts + 1 if answer.status == TIMEOUT else 0
                self._remember(key, answer)
                out[key] = answer
            if responded:
                self._consecutive_timeouts = timeouts
            else:
                self._consecutive_timeouts += timeouts
            # Silence from the start, every server gone, or a long run of timeouts: dead.
            never = self._wire.responses == 0 and timeouts + bool(probe) >= 2
            if (
                never
                or not self._wire.any_alive()
                or (self._consecutive_timeouts >= self._dead_after)
            ):
                self.dead = True
        self.trust.check_everything_nx()
        return out

    def settle(self) -> None:
        """The run is over: last chance for the NXDOMAIN-everything test (dns_trust.py)."""
        with self._net:
            self.trust.check_everything_nx()

    def close(self) -> None:
        """Nothing to release: sockets live only for one exchange. Kept for callers."""

    def _spend(self, name: str) -> bool:
        """Count a network query against its zone's budget; False when the budget is spent."""
        if not self._budgets:
            return True
        for zone, limit in self._budgets.items():
            if name == zone or name.endswith("." + zone):
                with self._lock:
                    if self.spent[zone] >= limit:
                        return False
                    self.spent[zone] += 1
                return True
        return True

    def _deadline_passed(self) -> bool:
        return self._deadline is not None and time.monotonic() > self._deadline

    # -- used by Trust for its own confirmation look-ups ----------------------------------
    def _exchange_raw(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], WireAnswer]:
        if self.dead or self._deadline_passed() or not self._wire.any_alive():
            return {}
        return self._wire.exchange(keys)

    def _known(self, key: tuple[str, str]) -> str | None:
        """The status this run got for `key`, else None (the trust check asks it then)."""
        entry = self._mem.get(key)
        if entry is None:
            if hash(key) not in self._used:  # a scan, for the trust check's few keys once
                return None
            with self._lock:  # answered, then let go (MEMO_KEEP): read back
                hit = self._hit(key, time.time())
            return hit.status if hit is not None else None
        return entry[0] if entry[3] else None
