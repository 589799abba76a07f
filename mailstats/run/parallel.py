"""Many accounts at once: threads on this machine (`--jobs N`) or a Dask cluster.

Accounts are independent and I/O bound (IMAP round trips, DNS), so each one runs in its own
`Engine` — its own modules, resolver and cache connection — and the per-account results are
merged into one `RunResult` that the usual writers turn into the same files a sequential run
writes. On a cluster each worker keeps its own cache file and ships back the account's
compact per-folder tables, never the mail itself.
"""

from __future__ import annotations

import copy
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mailstats.accounts.config import Account, Config
from mailstats.run.engine import Engine
from mailstats.run.results import AccountResult, Progress, RunResult, RunResults


@dataclass
class ModuleSnapshot:
    """What the writers need of a module, detached from the engine that ran it."""

    name: str
    version: str
    checks: tuple[str, ...]
    extras: tuple[str, ...]
    evidence: str
    opt_in: bool = False
    description: str = ""
    plots: dict[str, str] = field(default_factory=dict)
    _counters: dict[str, int] = field(default_factory=dict)
    _warnings: list[str] = field(default_factory=list)

    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    def warnings(self) -> list[str]:
        return list(self._warnings)


def snapshot_modules(result: RunResult) -> list[ModuleSnapshot]:
    return [
        ModuleSnapshot(
            m.name,
            m.version,
            tuple(m.checks),
            tuple(m.extras),
            m.evidence,
            m.opt_in,
            m.description,
            dict(m.plots),
            result.module_counters.get(m.name, {}),
            [],
        )
        for m in result.modules
    ]


def merge(config: Config, parts: list[tuple[Account, RunResult | None, str]]) -> RunResult:
    """Per-account results, in the accounts file's order, as one run."""
    accounts: list[AccountResult] = []
    modules: list[Any] = []
    warnings: list[str] = []
    dns: dict[str, int] = {}
    trust: dict[str, Any] = {}
    fetch: dict[str, int] = {}
    counters: dict[str, dict[str, int]] = {}
    costs: dict[str, dict[str, int]] = {}
    started: list[datetime] = []
    finished: list[datetime] = []
    for acct, res, error in parts:
        if res is None:
            accounts.append(AccountResult(acct.name, acct.labels, "failed", error))
            continue
        accounts.extend(res.accounts)
        if not modules:
            modules = snapshot_modules(res)
        for w in res.warnings:
            if w not in warnings:
                warnings.append(w)
        if res.dns_trust and (not trust or res.dns_trust.get("status") == "lying"):
            trust = trust if trust.get("status") == "lying" else res.dns_trust
        for target, source in ((dns, res.dns_stats), (fetch, res.fetch_stats)):
            for k, v in source.items():
                target[k] = target.get(k, 0) + v
        for total, part in ((counters, res.module_counters), (costs, res.module_cost)):
            for name, values in part.items():
                merged = total.setdefault(name, {})
                for k, v in values.items():
                    merged[k] = merged.get(k, 0) + v
        started.append(res.started)
        finished.append(res.finished)
    for m in modules:
        m._counters = counters.get(m.name, {})
    now = datetime.now(UTC)
    if not modules:  # every account failed: still name the checks that would have run
        from mailstats.modules import available_modules, select_modules

        modules = [
            ModuleSnapshot(
                m.name, m.version, tuple(m.checks), tuple(m.extras), m.evidence, plots=m.plots
            )
            for m in select_modules(
                available_modules(), config.settings.modules, config.settings.module_tables
            )
        ]
    return RunResult(
        accounts=accounts,
        modules=modules,  # type: ignore[arg-type]
        started=min(started, default=now),
        finished=max(finished, default=now),
        settings=config.settings.as_dict(),
        warnings=warnings,
        dns_stats=dns,
        dns_trust=trust,
        fetch_stats=fetch,
        module_counters=counters,
        module_cost=costs,
    )


def split_budgets(config: Config, parts: int) -> Config:
    """settings.dns_budgets hold for the whole batch: each of `parts` engines gets a share."""
    budgets = config.settings.extra.get("dns_budgets")
    if not budgets or parts <= 1:
        return config
    cfg = copy.deepcopy(config)
    cfg.settings.extra["dns_budgets"] = {z: max(1, n // parts) for z, n in budgets.items()}
    return cfg


def run_threads(
    config: Config,
    accounts: list[Account],
    jobs: int,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    engine_factory: Callable[[Config], Engine] | None = None,
) -> tuple[RunResult, RunResults]:
    """Up to `jobs` accounts at once, each in its own engine sharing the cache file."""
    factory = engine_factory or (lambda cfg: Engine(cfg))
    cancel = cancel or threading.Event()
    shared = split_budgets(config, len(accounts))
    lock = threading.Lock()

    def one(acct: Account) -> tuple[Account, RunResult | None, str]:
        engine = factory(shared)
        try:

            def report(p: Progress) -> None:
                if progress is not None:
                    with lock:
                        progress(p)

            return acct, engine.run([acct], progress=report, cancel=cancel), ""
        except Exception as exc:  # noqa: BLE001 - one account never stops the batch
            return acct, None, f"{type(exc).__name__}: {exc}"
        finally:
            engine.cache.close()

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="account") as pool:
        parts = list(pool.map(one, accounts))
    result = merge(config, parts)
    return result, RunResults(result)  # every folder result carries its table


# -- Dask ---------------------------------------------------------------------------------


#: A worker sends at most this many progress events per second per account (plus the last).
PROGRESS_PER_S = 4.0


def _worker_progress(topic: str) -> Callable[[Progress], None]:
    """Progress on a worker, sent to the client as Dask events on `topic` (throttled)."""
    from distributed import get_worker

    worker = get_worker()
    last: dict[tuple[str, str], float] = {}

    def send(p: Progress) -> None:
        if p.phase == "finished":  # the client reports it when the task's result arrives
            return
        now = time.monotonic()
        key = (p.folder, p.phase)
        if p.done != p.total and now - last.get(key, 0.0) < 1.0 / PROGRESS_PER_S:
            return
        last[key] = now
        worker.log_event(topic, [p.account, p.folder, p.phase, p.done, p.total, p.message])

    return send


def _account_task(config: Config, account: Account, topic: str | None = None) -> RunResult:
    """Runs on a Dask worker: one account, the worker's own cache, tables shipped back.

    With a topic, the engine's progress goes back to the client as events while it runs."""
    cfg = Config(settings=config.settings, accounts=[account], path=None)
    if not cfg.settings.cache:
        worker = os.environ.get("DASK_WORKER_NAME") or str(os.getpid())
        from mailstats.run.cache import default_cache_path

        base = default_cache_path()
        cfg.settings.cache = str(base.with_name(f"cache-{_safe(worker)}.sqlite"))
    engine = Engine(cfg)
    progress = _worker_progress(topic) if topic else None
    try:
        result = engine.run([account], progress=progress)  # each FolderResult carries its table
        result.modules = snapshot_modules(result)  # type: ignore[assignment]
        return result
    finally:
        engine.cache.close()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60]


def run_dask(
    config: Config,
    accounts: list[Account],
    scheduler: str,
    progress: Callable[[Progress], None] | None = None,
    client: Any = None,
) -> tuple[RunResult, RunResults]:
    """One task per account on a Dask cluster; a lost worker's account is retried once.

    Progress arrives as it happens: workers send the engine's progress as Dask events on a
    topic of this run, and each account's end is reported as its task completes. Both reach
    `progress` under one lock (events come in on the client's own thread).
    """
    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise RuntimeError(
            "running on a cluster needs dask.distributed: pip install 'mailstats[cluster]'"
        ) from exc
    own = client is None
    client = client or Client(scheduler, timeout="30s")
    lock = threading.Lock()
    topic = f"mailstats-progress-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def report(p: Progress) -> None:
        if progress is not None:
            with lock:
                progress(p)

    def on_event(event: Any) -> None:
        try:
            account, folder, phase, done, total, message = event[1]
            report(Progress(str(account), str(folder), str(phase), int(done), int(total), message))
        except (TypeError, ValueError):  # not one of ours: ignore it
            return

    if progress is not None:
        client.subscribe_topic(topic, on_event)
    try:
        shared = split_budgets(config, len(accounts))
        futures = {
            client.submit(
                _account_task,
                shared,
                acct,
                topic if progress is not None else None,
                key=f"mailstats-{acct.name}-{os.getpid()}",
                retries=1,
                pure=False,
            ): acct
            for acct in accounts
        }
        done: dict[str, tuple[Account, RunResult | None, str]] = {}
        for fut in as_completed(futures):
            acct = futures[fut]
            try:
                res = fut.result()
                done[acct.name] = (acct, res, "")
                status = res.accounts[0].status if res.accounts else "failed"
            except Exception as exc:  # noqa: BLE001 - KilledWorker after the retry, and the like
                done[acct.name] = (
                    acct,
                    None,
                    f"failed on the cluster: {type(exc).__name__}: {exc}",
                )
                status = "failed"
            report(Progress(acct.name, "", "finished", 1, 1, status))
        parts = [done[a.name] for a in accounts]
    finally:
        if progress is not None:
            client.unsubscribe_topic(topic)
        if own:
            client.close()
    result = merge(config, parts)
    return result, RunResults(result)  # every folder result carries its table
