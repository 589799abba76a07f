"""Evaluating modules over batches of messages, in this process or in worker processes.

The engine's main thread is busy fetching (IMAP parsing is CPU work in Python), and
evaluating modules is CPU work too. With more than one core they overlap: the engine hands
each fetched batch (the header bytes themselves, no cache round trip) to an `Analyser` in a
worker process and goes on fetching; the worker writes the new headers to the cache and
returns the results, which the engine alone writes (two processes never rewrite the same
rows). Small jobs, tests and plug-ins that cannot be re-created in a
child run the same `Analyser` inline.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailstats.mail.message import Message, parts_from_json
from mailstats.modules import BODY, PROBE, RAW, Module, check_result

if TYPE_CHECKING:
    from mailstats.accounts.config import Account, Config
    from mailstats.run.cache import Cache
    from mailstats.services import SentIndex, Services

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """One job: messages as the cache holds them, and which module must evaluate which."""

    account: str
    folder: str
    role: str
    rows: list[tuple[int, bytes, str | None, int | None]]  # uid, header, structure, size
    items: dict[str, dict[int, tuple[bytes, bool]]]  # "body"/"raw" -> uid -> (data, cut)
    work: dict[str, list[int]]  # module name -> UIDs to evaluate
    store_rows: bool = False  # new headers the engine did not write: the analyser does

    @property
    def size(self) -> int:
        return len(set().union(*self.work.values())) if self.work else 0


#: The pseudo-module under which the batch's shared DNS wait is accounted.
DNS_WAIT = "_dns_prefetch"


@dataclass
class BatchReport:
    evaluated: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    results: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    #: a worker's modules' cumulative counters and warnings (empty when run inline)
    counters: dict[str, dict[str, int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    pid: int = 0
    #: module -> [nanoseconds in its prefetch and evaluate, messages, DNS names it asked]
    costs: dict[str, list[int]] = field(default_factory=dict)
    dns: dict[str, Any] = field(default_factory=dict)  # a worker resolver's cumulative report


class Analyser:
    """Evaluates modules over a `Batch`; returns the results, never writes them.

    Only the engine writes results to the cache, so any number of workers can evaluate
    without two processes ever rewriting the same rows.
    """

    def __init__(
        self,
        modules: list[Module],
        services: Services,
        in_worker: bool = False,
        cache: Cache | None = None,
        stop: Any = None,
    ) -> None:
        self.modules = modules  # the engine's core fields first, then the header modules
        self.services = services
        self.in_worker = in_worker
        self.cache = cache  # only for storing the new headers of `store_rows` batches
        #: an Event (threading or multiprocessing): set, a batch stops after the message in
        #: hand, so Cancel does not wait for whole batches; what was evaluated is returned
        self.stop = stop
        self.problems: list[str] = []  # modules breaking the result contract, said once
        self._warned: set[tuple[str, str]] = set()

    def evaluate(self, batch: Batch) -> BatchReport:
        report = BatchReport(pid=os.getpid())
        if batch.store_rows and batch.rows:
            # The fetching thread is the bottleneck; the header writes are done here instead.
            assert self.cache is not None
            self.cache.put_messages(batch.account, batch.folder, batch.rows)
        todo = {name: set(uids) for name, uids in batch.work.items() if uids}
        if not todo or self._stopped():
            return report
        mods = [m for m in self.modules if m.name in todo]
        msgs = self._messages(batch)
        costs = report.costs = {m.name: [0, 0, 0] for m in mods}
        self._prefetch(msgs, mods, todo, costs)
        results: dict[str, dict[int, dict[str, Any]]] = {m.name: {} for m in mods}
        clock = time.perf_counter_ns
        evaluated = 0
        for msg in msgs:
            if self._stopped():
                break
            evaluated += 1
            for m in mods:
                if msg.uid not in todo[m.name]:
                    continue
                t0 = clock()
                try:
                    values, error, unknown = check_result(m, m.evaluate(msg, self.services))
                except Exception as exc:  # noqa: BLE001 - one message never stops a run
                    log.debug("module %s failed on %s/%s: %r", m.name, batch.folder, msg.uid, exc)
                    values, error, unknown = {}, f"{type(exc).__name__}: {exc}"[:200], []
                else:
                    if error:
                        kind = " ".join(error.split()[:2])  # "check 'odd'", "extra 'x'"
                        self._problem(
                            (m.name, kind), f"module {m.name}: {error}: counted as its errors"
                        )
                cost = costs[m.name]
                cost[0] += clock() - t0
                cost[1] += 1
                for key in unknown:
                    self._problem(
                        (m.name, key),
                        f"module {m.name} returned {key!r}, which it does not declare: ignored",
                    )
                if error:
                    report.errors[m.name] = report.errors.get(m.name, 0) + 1
                    values = {"_error": error}
                results[m.name][msg.uid] = values
        report.evaluated = evaluated
        report.results = results
        self.services.dns.flush()
        report.warnings = list(self.problems)
        if self.in_worker:
            report.counters = {m.name: m.counters() for m in self.modules if m.counters()}
            report.warnings += [w for m in self.modules for w in m.warnings()]
            report.dns = self.services.dns.report()
        return report

    def _stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _problem(self, key: tuple[str, str], text: str) -> None:
        """A contract problem, said once per module and key (the engine gathers them)."""
        if key not in self._warned:
            self._warned.add(key)
            self.problems.append(text)

    @staticmethod
    def _messages(batch: Batch) -> list[Message]:
        wanted = set().union(*batch.work.values())
        msgs = []
        for uid, header, structure, size in batch.rows:
            if uid not in wanted:
                continue
            msg = Message(
                batch.account,
                batch.folder,
                uid,
                header,
                parts_from_json(structure),
                size,
                role=batch.role,
            )
            body = batch.items.get(BODY, {}).get(uid)
            if body is not None:
                msg.body_text = body[0].decode("utf-8", "replace")
            raw = batch.items.get(RAW, {}).get(uid)
            if raw is not None:
                msg.raw_bytes, msg.raw_truncated = raw
            msgs.append(msg)
        return msgs

    def _prefetch(
        self,
        msgs: list[Message],
        mods: list[Module],
        todo: dict[str, set[int]],
        costs: dict[str, list[int]],
    ) -> None:
        """Resolve every DNS name the batch will ask for at once (and probe origins)."""
        services = self.services
        queries: list[tuple[str, str]] = []
        clock = time.perf_counter_ns
        for m in mods:
            t0 = clock()
            before = len(queries)
            for i, msg in enumerate(msgs):
                # The prefetch is much of a batch's work: stop here too, asking every 32
                # messages (the Event is a shared semaphore: asked per message and module it
                # was 3 % of a worker's time).
                if i % 32 == 0 and self._stopped():
                    return
                if msg.uid in todo[m.name]:
                    try:
                        queries.extend(m.prefetch(msg, services))
                    except Exception:  # noqa: BLE001 - evaluate will meet and count it
                        pass
            costs[m.name][0] += clock() - t0
            costs[m.name][2] += len(queries) - before
        if queries:
            t0 = clock()
            services.dns.prefetch(queries)
            # the batch's look-ups run concurrently for every module: their wait is shared
            costs.setdefault(DNS_WAIT, [0, 0, 0])[0] += clock() - t0
        probing = [m.name for m in mods if PROBE in m.needs]
        if services.probe is not None and probing:
            ips = [
                msg.origin_ip(services.identity)
                for msg in msgs
                if any(msg.uid in todo[n] for n in probing) and msg.origin(services.identity)
            ]
            if ips:
                services.probe.prefetch(ips)


# -- runners: the same calls inline or in a worker process ---------------------------------


class InlineRunner:
    def __init__(self, analyser: Analyser) -> None:
        self.analyser = analyser

    def evaluate(self, batch: Batch) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(self.analyser.evaluate(batch))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future
            fut.set_exception(exc)
        return fut

    def close(self) -> None:
        pass


_WORKER: Analyser | None = None


def _worker_init(
    config: Config,
    account: Account,
    sent_index: SentIndex | None,
    classes: list[type],
    cache_path: str,
    dns_state: dict[str, Any] | None = None,
    stop: Any = None,
    own_mx: tuple[str, ...] = (),
) -> None:
    """In the child: the same settings, its own resolver (reading the shared DNS cache), the
    parent's own-MX hosts (asked again, a failure would give other cache fingerprints)."""
    global _WORKER
    from mailstats.modules import Registry
    from mailstats.run.cache import Cache
    from mailstats.run.engine import Engine

    registry = Registry(list(classes))
    config.settings.modules = [m.name for m in registry.modules]
    engine = Engine(config, cache=Cache(cache_path), registry=registry)
    engine.resolver.adopt(dns_state or {})  # the same run: its id, what it knows of the resolver
    engine._mx[account.name] = tuple(own_mx)
    services = engine.services_for(account, sent_index)
    for m in engine.modules:
        try:
            m.prepare(services)
        except Exception:  # noqa: BLE001 - the parent reported it already
            pass
    _WORKER = Analyser(
        [engine.core, *engine.modules], services, in_worker=True, cache=engine.cache, stop=stop
    )
    # What was made so far (imports, the modules, the Public Suffix List) lives as long as
    # the worker: the cycle collector need not walk it again at every full collection.
    services.domains.registrable("example.org")  # builds the suffix list now, to freeze it
    gc.freeze()


def _worker_evaluate(batch: Batch) -> BatchReport:
    assert _WORKER is not None
    return _WORKER.evaluate(batch)


class ProcessRunner:
    """Worker processes for one account; each evaluates whole batches."""

    def __init__(
        self,
        config: Config,
        account: Account,
        sent_index: SentIndex | None,
        modules: list[Module],
        cache_path: str,
        workers: int = 1,
        dns_state: dict[str, Any] | None = None,
        own_mx: tuple[str, ...] = (),
    ) -> None:
        classes = [type(m) for m in modules]
        self.workers = max(1, workers)
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()  # inherited by the workers as they start
        self.pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=ctx,
            initializer=_worker_init,
            initargs=(
                config,
                account,
                sent_index,
                classes,
                cache_path,
                dns_state,
                self._stop,
                own_mx,
            ),
        )

    def evaluate(self, batch: Batch) -> Future:
        return self.pool.submit(_worker_evaluate, batch)

    def stop(self) -> None:
        """The run is cancelled: the batches in the workers end after their current message
        (a future already running cannot be cancelled, only asked to finish early)."""
        self._stop.set()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def can_run_in_child(modules: list[Module]) -> bool:
    """Module classes must be importable by name in a fresh interpreter (not test-local)."""
    import importlib

    for m in modules:
        cls = type(m)
        if "<locals>" in cls.__qualname__:
            return False
        try:
            mod = importlib.import_module(cls.__module__)
        except ImportError:
            return False
        if getattr(mod, cls.__qualname__, None) is not cls or cls.__module__ == "__main__":
            return False
    return True
