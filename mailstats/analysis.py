"""Evaluating modules over batches of cached messages, in this process or in a worker.

The engine's main thread is busy fetching (IMAP parsing is CPU work in Python); evaluating
modules is CPU work too. With two cores they can overlap: the engine stores each fetched
batch in the cache and hands its UIDs to an `Analyser` in a worker process, which reads the
messages back from the cache, evaluates, and writes results and DNS answers to the same
cache file (SQLite WAL lets the two processes share it). Small jobs, tests and plug-ins that
cannot be re-created in a child run the same `Analyser` inline.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailstats.mail.message import Message, parts_from_json
from mailstats.modules import BODY, RAW, Module

if TYPE_CHECKING:
    from mailstats.cache import Cache
    from mailstats.config import Account, Config
    from mailstats.services import SentIndex, Services

log = logging.getLogger(__name__)

FLUSH_EVERY = 5000
MAX_CHUNKS = 16


@dataclass
class BatchReport:
    evaluated: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class Analyser:
    """Evaluates modules for given UIDs of a folder and stores their results in the cache."""

    def __init__(self, cache: Cache, modules: list[Module], services: Services) -> None:
        self.cache = cache
        self.modules = modules  # the engine's core fields first, then the header modules
        self.services = services
        self._pending: dict[tuple[str, str], dict[str, dict[int, dict[str, Any]]]] = {}
        self._count: dict[tuple[str, str], int] = {}

    def evaluate(
        self,
        account: str,
        folder: str,
        role: str,
        work: dict[str, list[int]],
        fps: dict[str, str],
    ) -> BatchReport:
        """work: module name -> UIDs it must evaluate. Costly items must be cached already."""
        report = BatchReport()
        todo = {name: set(uids) for name, uids in work.items() if uids}
        uids = sorted(set().union(*todo.values())) if todo else []
        if not uids:
            return report
        mods = [m for m in self.modules if m.name in todo]
        msgs = self._load(account, folder, role, uids, mods)
        self._prefetch(msgs, mods, todo)
        key = (account, folder)
        pending = self._pending.setdefault(key, {m.name: {} for m in self.modules})
        for msg in msgs:
            for m in mods:
                if msg.uid not in todo[m.name]:
                    continue
                try:
                    values = m.evaluate(msg, self.services)
                except Exception as exc:  # noqa: BLE001 - one message never stops a run
                    report.errors[m.name] = report.errors.get(m.name, 0) + 1
                    log.debug("module %s failed on %s/%s: %r", m.name, folder, msg.uid, exc)
                    values = {"_error": f"{type(exc).__name__}: {exc}"[:200]}
                pending[m.name][msg.uid] = values
        report.evaluated = len(msgs)
        self.services.dns.flush()
        self._count[key] = self._count.get(key, 0) + len(msgs)
        if self._count[key] >= FLUSH_EVERY:
            self.flush(account, folder, fps)
        return report

    def flush(self, account: str, folder: str, fps: dict[str, str]) -> BatchReport:
        """Store what is pending for a folder (a crash later loses at most FLUSH_EVERY)."""
        key = (account, folder)
        pending = self._pending.pop(key, {})
        self._count.pop(key, None)
        for m in self.modules:
            values = pending.get(m.name)
            if not values:
                continue
            self.cache.put_results(account, folder, m.name, m.version, fps[m.name], values)
            if self.cache.result_chunk_count(account, folder, m.name) > MAX_CHUNKS:
                keep = self.cache.cached_uids(account, folder)
                self.cache.compact_results(account, folder, m.name, m.version, fps[m.name], keep)
        self.services.dns.flush()
        return BatchReport()

    def report(self) -> tuple[dict[str, dict[str, int]], list[str]]:
        counters = {m.name: m.counters() for m in self.modules if m.counters()}
        warnings = [w for m in self.modules for w in m.warnings()]
        return counters, warnings

    def _load(
        self, account: str, folder: str, role: str, uids: list[int], mods: list[Module]
    ) -> list[Message]:
        msgs = [
            Message(account, folder, uid, header, parts_from_json(structure), size, role=role)
            for uid, header, structure, size in self.cache.get_messages(account, folder, uids)
        ]
        for item in (BODY, RAW):
            if not any(item in m.needs for m in mods):
                continue
            have = self.cache.get_items(account, folder, item, uids)
            for msg in msgs:
                data, truncated = have.get(msg.uid, (None, False))
                if data is None:
                    continue
                if item == BODY:
                    msg.body_text = data.decode("utf-8", "replace")
                else:
                    msg.raw_bytes, msg.raw_truncated = data, truncated
        return msgs

    def _prefetch(self, msgs: list[Message], mods: list[Module], todo: dict[str, set[int]]) -> None:
        """Resolve every DNS name the batch will ask for at once (and probe origins)."""
        services = self.services
        queries: list[tuple[str, str]] = []
        for m in mods:
            for msg in msgs:
                if msg.uid in todo[m.name]:
                    try:
                        queries.extend(m.prefetch(msg, services))
                    except Exception:  # noqa: BLE001 - evaluate will meet and count it
                        pass
        if queries:
            services.dns.prefetch(queries)
        if services.probe is not None and "reachability" in todo:
            from mailstats.mail.received import find_origin

            ips = []
            for msg in msgs:
                if msg.uid in todo["reachability"]:
                    origin = find_origin(msg.hops, services.identity)
                    if origin:
                        ips.append(origin[1].ip)
            if ips:
                services.probe.prefetch(ips)


# -- runners: the same calls inline or in a worker process ---------------------------------


class InlineRunner:
    def __init__(self, analyser: Analyser) -> None:
        self.analyser = analyser

    def _done(self, fn: Callable[..., Any], *args: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future
            fut.set_exception(exc)
        return fut

    def evaluate(self, *args: Any) -> Future:
        return self._done(self.analyser.evaluate, *args)

    def flush(self, *args: Any) -> Future:
        return self._done(self.analyser.flush, *args)

    def report(self) -> tuple[dict[str, dict[str, int]], list[str]]:
        return self.analyser.report()

    def close(self) -> None:
        pass


_WORKER: Analyser | None = None


def _worker_init(
    config: Config,
    account: Account,
    sent_index: SentIndex | None,
    classes: list[type],
    cache_path: str,
) -> None:
    """In the child: the same engine settings, its own cache connection and resolver."""
    global _WORKER
    from mailstats.cache import Cache
    from mailstats.engine import Engine
    from mailstats.modules import Registry

    registry = Registry([cls() for cls in classes])
    config.settings.modules = [m.name for m in registry.modules]
    engine = Engine(config, cache=Cache(cache_path), registry=registry)
    services = engine.services_for(account, sent_index)
    for m in engine.modules:
        try:
            m.prepare(services)
        except Exception:  # noqa: BLE001 - the parent reported it already
            pass
    _WORKER = Analyser(engine.cache, [engine.core, *engine.modules], services)


def _worker_evaluate(*args: Any) -> BatchReport:
    assert _WORKER is not None
    return _WORKER.evaluate(*args)


def _worker_flush(*args: Any) -> BatchReport:
    assert _WORKER is not None
    return _WORKER.flush(*args)


def _worker_report() -> tuple[dict[str, dict[str, int]], list[str]]:
    assert _WORKER is not None
    return _WORKER.report()


class ProcessRunner:
    """One worker process per account; tasks run in submission order (one worker)."""

    def __init__(
        self,
        config: Config,
        account: Account,
        sent_index: SentIndex | None,
        modules: list[Module],
        cache_path: str,
    ) -> None:
        classes = [type(m) for m in modules]
        self.pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
            initargs=(config, account, sent_index, classes, cache_path),
        )

    def evaluate(self, *args: Any) -> Future:
        return self.pool.submit(_worker_evaluate, *args)

    def flush(self, *args: Any) -> Future:
        return self.pool.submit(_worker_flush, *args)

    def report(self) -> tuple[dict[str, dict[str, int]], list[str]]:
        return self.pool.submit(_worker_report).result()

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
