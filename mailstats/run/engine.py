"""The engine: fetch what is new, run what has not run, count everything.

One pass per account:
1. sync every mapped folder into the cache (only UIDs the cache lacks; a changed UIDVALIDITY
   or a rewritten local store drops the folder first);
2. build the sent-folder index (friends and replies depend on it), so sent folders go first;
3. per folder, find for each module the UIDs without a cached result for its (version,
   fingerprint), evaluate those in batches (costly items such as body text fetched only for
   messages a module wants them for, DNS resolved concurrently first), store the results;
4. load the folder's results column by column into a `FolderTable` and count.
Nothing here is Qt or terminal specific: progress goes to a callback, cancellation comes in
through a `threading.Event`, and errors in one message or module are counted, not raised.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from itertools import chain
from typing import Any

from mailstats.accounts.config import Account, Config, resolve_password
from mailstats.mail.message import MAX_HEADER_BYTES, Message, parts_from_json, parts_to_json
from mailstats.modules import (
    BODY,
    PROBE,
    RAW,
    Module,
    Registry,
    available_modules,
    select_modules,
)
from mailstats.run.analysis import (
    Analyser,
    Batch,
    BatchReport,
    InlineRunner,
    ProcessRunner,
    can_run_in_child,
)
from mailstats.run.cache import Cache
from mailstats.run.core_fields import CORE_COLUMNS, CoreFields
from mailstats.run.counting import complete_state, fill_counts, load_table
from mailstats.run.dnstrust import settle as settle_dns
from mailstats.run.jobs import FolderJobs, LazyWorker
from mailstats.run.own_mx import own_mx
from mailstats.run.results import (
    AccountResult,
    FolderResult,
    FolderTable,
    Progress,
    RunResult,
    RunResults,
    crashed_account,
    unavailable_text,
)
from mailstats.services import Identity, SentIndex, Services
from mailstats.services.dns import Resolver
from mailstats.services.domains import DomainSplitter
from mailstats.sources import (
    OpenFolder,
    Source,
    SourceError,
    open_source,
    secret_forms,
    source_options,
)
from mailstats.stats.manifest import manifest

#: Names that lived here before the engine was split by job, still importable from here.
__all__ = [
    "CORE_COLUMNS",
    "AccountResult",
    "CoreFields",
    "Engine",
    "FolderResult",
    "FolderTable",
    "Progress",
    "RunResult",
    "RunResults",
    "identity_for",
    "manifest",
]

log = logging.getLogger(__name__)

EVAL_BATCH = 500
#: A batch of new headers also ends at this many header bytes: hostile 256 KiB headers
#: would otherwise be parsed 500 at a time.
EVAL_BATCH_BYTES = 16 * 1024 * 1024
#: Below this many messages to evaluate in a folder, a worker process costs more than it saves.
WORKER_MIN = 3000


@dataclass
class FolderPlan:
    kept: list[int]  # cached UIDs still in the folder
    new: list[int]  # UIDs to fetch


def identity_for(account: Account, own_mx: tuple[str, ...] = ()) -> Identity:
    from mailstats.mail.receivers import receiver_setting

    return Identity(
        address=account.email,
        full_name=account.full_name,
        own_domains=tuple(account.domains),
        trusted_relays=tuple(account.trusted_relays),
        receiver=receiver_setting(account.provider),
        own_mx=own_mx,
    )


class Engine:
    def __init__(
        self,
        config: Config,
        cache: Cache | None = None,
        registry: Registry | None = None,
        source_factory: Callable[[Account, str], Source] | None = None,
    ) -> None:
        self.config = config
        self.cache = cache or Cache(config.settings.cache or None)
        self.registry = registry or available_modules()
        # Fresh instances: what a module learns during a run stays in this run.
        self.modules: list[Module] = [
            cls()
            for cls in select_modules(
                self.registry, config.settings.modules, config.settings.module_tables
            )
        ]
        self.core = CoreFields()
        self.domains = DomainSplitter()
        settings = config.settings
        # settings.dns_cache: a DNS-only cache file that several workers can share.
        dns_store = Cache(settings.extra["dns_cache"]) if settings.extra.get("dns_cache") else None
        self.resolver = Resolver(
            settings.dns_servers or None,
            timeout=float(settings.extra.get("dns_timeout", 4.0)),
            store=dns_store or self.cache,
            deadline_s=settings.extra.get("dns_deadline"),
            budgets=settings.extra.get("dns_budgets"),
        )
        options = source_options(settings)
        self.source_factory = source_factory or (lambda a, pw: open_source(a, pw, **options))
        #: per (account, folder): listed but not fetched, and expunged while fetching
        self._missing: dict[tuple[str, str], tuple[int, int]] = {}
        self._secrets: tuple[str, ...] = ()
        self.warnings: list[str] = list(self.registry.problems)
        self._progress: Callable[[Progress], None] = lambda p: None
        self._cancel = threading.Event()
        self._fetch_stats: dict[str, int] = {}
        self._services: dict[str, Services] = {}
        self._mx: dict[str, tuple[str, ...]] = {}
        self._probe: Any = None
        self._fps: dict[str, dict[str, str]] = {}  # account -> module -> fingerprint
        self._worker_counters: dict[str, dict[str, int]] = {}
        self._counters_by_pid: dict[int, dict[str, dict[str, int]]] = {}
        self._dns_by_pid: dict[int, dict[str, Any]] = {}  # worker resolvers' latest reports
        self._costs: dict[str, dict[str, int]] = {}  # module -> additive cost figures
        #: Worker processes that evaluate big folders while this one fetches (0 = none).
        #: Two by default: measured best on 2 cores (docs/benchmarks.md).
        self.workers = int(config.settings.extra.get("analysis_workers", 2))
        #: Keep each folder's table on its FolderResult (the GUI and the thread and cluster
        #: runners read them there). Off, a folder's table is dropped once counted and read
        #: again from the cache's stored copy when the outputs are written: the batch run
        #: holds one folder's columns at a time instead of every folder's (100k messages
        #: with the default modules: about 100 MB).
        self.keep_tables = True
        #: what modules read: the accounts file's settings over the modules' declared defaults
        self._settings = {
            st.flat_key(m.name): st.default
            for m in self.modules
            for st in m.settings
            if st.default is not None
        } | config.settings.as_dict()

    # -- public -----------------------------------------------------------------------
    def run(
        self,
        accounts: list[Account] | None = None,
        progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        started = datetime.now(UTC)
        self._progress = progress or (lambda p: None)
        self._cancel = cancel or threading.Event()
        results = []
        for acct in accounts if accounts is not None else self.config.accounts:
            if self._cancel.is_set():
                results.append(AccountResult(acct.name, acct.labels, "cancelled"))
                continue
            try:
                done = self.run_account(acct)
            except Exception as exc:  # noqa: BLE001 - one account never takes the batch down
                done = crashed_account(acct.name, acct.labels, exc, self._secrets)
            results.append(done)
            self._progress(Progress(acct.name, "", "finished", 1, 1, done.status))
        dns_stats, dns_trust = settle_dns(self, results)
        self.resolver.flush()
        self.resolver.close()
        warnings = list(self.warnings)
        cut = self._fetch_stats.get("header_truncated", 0)
        if cut:
            warnings.append(
                f"{cut} message header(s) longer than {MAX_HEADER_BYTES // 1024} KiB were cut "
                "there: the messages are counted, their checks read the first part only"
            )
        counters = {name: dict(v) for name, v in self._worker_counters.items()}
        lying = dns_trust.get("status") == "lying"
        for m in self.modules:
            for w in m.warnings() if not (lying and m.dns_columns) else ():  # one DNS warning
                if w not in warnings:
                    warnings.append(w)
            for k, v in m.counters().items():
                counters.setdefault(m.name, {})
                counters[m.name][k] = counters[m.name].get(k, 0) + v
        return RunResult(
            accounts=results,
            modules=list(self.modules),
            started=started,
            finished=datetime.now(UTC),
            settings=self.config.settings.as_dict(),
            warnings=warnings,
            dns_stats=dns_stats,
            dns_trust=dns_trust,
            fetch_stats=dict(self._fetch_stats),
            module_counters=counters,
            module_cost={name: dict(v) for name, v in self._costs.items()},
        )

    def services_for(self, account: Account, sent_index: SentIndex | None) -> Services:
        return Services(
            dns=self.resolver,
            domains=self.domains,
            identity=identity_for(account, self._own_mx(account)),
            sent_index=sent_index,
            settings=self._settings,
            probe=self._prober(),
        )

    def _own_mx(self, account: Account) -> tuple[str, ...]:
        """The MX hosts of the account's own domains, for recognising its own receiving
        servers (run/own_mx.py); () when recognition is off or forced."""
        from mailstats.mail.receivers import AUTO, receiver_setting

        if receiver_setting(account.provider) != AUTO:
            return ()
        if account.name not in self._mx:
            hosts, warning = own_mx(self.resolver, self.cache, account.name, account.domains)
            self.warnings += [warning] if warning else []
            self._mx[account.name] = hosts
        return self._mx[account.name]

    def _prober(self) -> Any:
        """One TCP prober per run (each IP probed once), only when the opt-in module runs."""
        if self._probe is None and any(PROBE in m.needs for m in self.modules):
            from mailstats.services.probe import TcpProber

            port = int(self.config.settings.extra.get("reachability_port", 25))
            self._probe = TcpProber(port=port)
        return self._probe

    def run_account(self, acct: Account) -> AccountResult:
        result = AccountResult(acct.name, acct.labels)
        roles = acct.roles()
        self._progress(Progress(acct.name, "", "connect", 0, len(roles)))
        self._secrets = ()
        try:
            password = "" if acct.is_local else resolve_password(acct)
            self._secrets = secret_forms(password)
            source = OpenFolder(self.source_factory(acct, password))
        except SourceError as exc:
            result.status, result.error = "failed", str(exc)
            from mailstats.accounts.oauth import SignInRequired

            result.needs_signin = isinstance(exc, SignInRequired)
            return result
        runner: Any = None
        deferred: list[Callable[[], None]] = []  # folders counted once the workers end
        try:
            sent = [f for f, r in roles.items() if r == "sent"]
            synced: dict[str, tuple[list[int], int]] = {}
            for folder in sent:  # friends and replies need the whole sent index first
                if self._cancel.is_set():
                    break
                plan = self._plan_folder(source, acct, folder)
                fetched = self._fetch_new(source, acct, folder, plan)
                stored = [r[0] for rows in fetched for r in rows]
                synced[folder] = (sorted(set(plan.kept) | set(stored)), len(stored))
            sent_index = self._sent_index(acct, list(synced)) if synced else None
            services = self.services_for(acct, sent_index)
            self._services[acct.name] = services
            for m in self.modules:
                try:
                    m.prepare(services)
                except Exception as exc:  # noqa: BLE001 - a module failing to prepare is reported
                    self.warnings.append(f"module {m.name}: preparation failed: {exc}")
            fps = {m.name: m.fingerprint(services) for m in [self.core, *self.modules]}
            self._fps[acct.name] = result.fingerprints = fps
            runner = InlineRunner(Analyser([self.core, *self.modules], services, stop=self._cancel))
            todo = [(f, r) for f, r in roles.items() if f not in sent or f in synced]
            for n, (folder, role) in enumerate(todo, 1):
                if self._cancel.is_set():
                    break
                if self._use_worker(runner):
                    runner = self._start_worker(acct, sent_index, runner)
                last, state = n == len(todo), synced.get(folder)
                fr, runner = self._process_folder(
                    source, acct, folder, role, services, runner, state, last, deferred
                )
                result.folders.append(fr)
            self._merge_worker_counters()
            if self._cancel.is_set():
                result.status = "cancelled"
            elif any(f.unavailable for f in result.folders):
                result.status, result.error = "partial", unavailable_text(result.folders)
                self.warnings.append(f"account {acct.name}: {result.error}")
        except SourceError as exc:
            result.status, result.error = "failed", str(exc)
        finally:
            if runner is not None:
                runner.close()
            for count in deferred:
                count()
            for key, value in getattr(source, "stats", {}).items():
                self._fetch_stats[key] = self._fetch_stats.get(key, 0) + value
            # what the source skipped (files that are not messages), named per account
            self.warnings.extend(f"{acct.name}: {w}" for w in getattr(source, "warnings", ()))
            source.close()
            self.resolver.flush()
        return result

    # -- worker process ---------------------------------------------------------------
    def _use_worker(self, runner: Any) -> bool:
        """A worker process pays off on big jobs only, and needs a second core."""
        if not isinstance(runner, InlineRunner) or self.workers == 0:
            return False
        return (os.cpu_count() or 1) > 1 and can_run_in_child([self.core, *self.modules])

    def _start_worker(self, acct: Account, sent_index: SentIndex | None, inline: Any) -> Any:
        return LazyWorker(self, acct, sent_index, inline)

    def _take_report(self, report: BatchReport) -> None:
        """A worker's cumulative counters (latest per process) and its warnings."""
        if report.counters:
            self._counters_by_pid[report.pid] = report.counters
        if report.dns:
            self._dns_by_pid[report.pid] = report.dns
        for name, (ns, messages, names) in report.costs.items():
            self._add_cost(name, ns=ns, messages=messages, dns_names=names)
        for w in report.warnings:
            if w not in self.warnings:
                self.warnings.append(w)

    def _add_cost(self, name: str, **figures: int) -> None:
        cost = self._costs.setdefault(name, {})
        for key, value in figures.items():
            cost[key] = cost.get(key, 0) + value

    def dns_reports(self) -> list[dict[str, Any]]:
        """The worker processes' resolver reports (the engine's own is `resolver.report()`)."""
        return list(self._dns_by_pid.values())

    def _merge_worker_counters(self) -> None:
        for counters in self._counters_by_pid.values():
            for name, values in counters.items():
                merged = self._worker_counters.setdefault(name, {})
                for k, v in values.items():
                    merged[k] = merged.get(k, 0) + v
        self._counters_by_pid.clear()

    # -- sync -------------------------------------------------------------------------
    def _plan_folder(self, source: OpenFolder, acct: Account, folder: str) -> FolderPlan:
        """Open the folder, check its identity, forget what is gone, list what is new."""
        state = source.open_folder(folder)
        cached_validity, cached_digest = self.cache.folder_state(acct.name, folder)
        cached = self.cache.cached_uids(acct.name, folder)
        stale = cached_validity != state.uidvalidity
        if not stale and state.key_digest and cached:
            prefix = source.key_digest_prefix(len(cached))  # type: ignore[attr-defined]
            stale = prefix != cached_digest
        if stale:
            self.cache.reset_folder(acct.name, folder, state.uidvalidity)
            cached = set()
        current = set(state.uids)
        self.cache.forget_uids(acct.name, folder, cached - current)
        if state.key_digest:
            self.cache.set_folder_digest(acct.name, folder, state.key_digest)
        kept = sorted(current & cached)
        return FolderPlan(kept=kept, new=[u for u in state.uids if u not in cached])

    def _fetch_new(
        self, source: OpenFolder, acct: Account, folder: str, plan: FolderPlan, store: bool = True
    ) -> Iterator[list[tuple[int, bytes, str | None, int | None]]]:
        """Fetch new headers; yields each batch's rows, stored in the cache first unless
        `store` is False (worker processes then store them, off this busy thread)."""
        source.ensure_open(folder)
        total = len(plan.new)
        done = 0
        self._progress(Progress(acct.name, folder, "sync", 0, total))
        batch: list[tuple[int, bytes, str | None, int | None]] = []
        header_bytes = 0
        yielded: set[int] = set()
        self._missing.pop((acct.name, folder), None)
        # a None after the last header delivers the last, partial batch
        for item in chain(source.fetch_headers(plan.new), [None]):
            if item is not None:
                batch.append((item.uid, item.header, parts_to_json(item.parts), item.size))
                header_bytes += len(item.header)
                if len(batch) < EVAL_BATCH and header_bytes < EVAL_BATCH_BYTES:
                    continue
            elif not batch:
                break
            self._add_cost(FETCH, header_bytes=header_bytes, headers=len(batch))
            header_bytes = 0
            if store:
                self.cache.put_messages(acct.name, folder, batch)
            done += len(batch)
            self._progress(Progress(acct.name, folder, "sync", done, total))
            yielded.update(r[0] for r in batch)
            yield batch
            batch = []
            if item is not None and self._cancel.is_set():
                return
        # listed by the server, not returned even when asked alone, and not expunged since
        gone = set(getattr(source, "gone", ())) & set(plan.new)
        self._missing[(acct.name, folder)] = (len(set(plan.new) - yielded - gone), len(gone))

    def _sent_index(self, acct: Account, folders: list[str]) -> SentIndex:
        return SentIndex.from_messages(
            Message(acct.name, folder, uid, header)
            for folder in folders
            for uid, header, _structure, _size in self.cache.get_messages(acct.name, folder)
        )

    # -- analysis ---------------------------------------------------------------------
    def _process_folder(
        self,
        source: OpenFolder,
        acct: Account,
        folder: str,
        role: str,
        services: Services,
        runner: Any,
        synced: tuple[list[int], int] | None,
        last: bool = False,
        deferred: list[Callable[[], None]] | None = None,
    ) -> tuple[FolderResult, Any]:
        """Fetch what is new and evaluate what lacks a result, overlapping the two.

        `last`: the account's last folder; its worker processes end before its table is made,
        so their memory and the table's are not held at once (the run's peak). A batch run
        leaves the other folders' tables and counts to `deferred`, done after the workers."""
        if synced is None:
            plan = self._plan_folder(source, acct, folder)
            kept, new = plan.kept, plan.new
        else:
            kept, new = synced[0], []
        mods = [self.core, *self.modules]
        fps = self._fps[acct.name]
        kept_set = set(kept)
        # A complete stored table of exactly these messages and module identities: nothing
        # to evaluate, and no module's result UIDs to list (most of a re-run at 100k).
        keys = [(m, fps[m.name]) for m in mods]
        ready = complete_state(self.cache, acct.name, folder, kept, keys)
        work: dict[str, set[int]] = {m.name: set() for m in mods}
        if ready is None:
            for m in mods:
                done = self.cache.result_uids(acct.name, folder, m.name, m.version, fps[m.name])
                work[m.name] = kept_set - done
        redo = sorted(set().union(*work.values()))
        if isinstance(runner, LazyWorker):
            big = len(redo) + len(new) >= int(
                self.config.settings.extra.get("worker_min", WORKER_MIN)
            )
            runner = runner.start() if big else runner.inline
        fr = FolderResult(acct.name, folder, role)
        run = FolderJobs(self, acct, folder, fps, fr, len(redo) + len(new), runner)
        stored: list[int] = []

        in_workers = isinstance(runner, ProcessRunner)

        def submit(rows: list, batch_work: dict[str, list[int]], new: bool = False) -> None:
            items = self._fetch_costly(source, acct, folder, role, rows, batch_work)
            batch = Batch(acct.name, folder, role, rows, items, batch_work, new and in_workers)
            run.add(runner.evaluate(batch), batch)
            # a few batches ahead of the workers at most: bounded memory, steady overlap
            run.drain(block=len(run.jobs) > 2 * getattr(runner, "workers", 1) + 2)

        for i in range(0, len(redo), EVAL_BATCH):
            if self._cancel.is_set():
                break
            part = redo[i : i + EVAL_BATCH]
            rows = list(self.cache.get_messages(acct.name, folder, part))
            submit(rows, {m.name: [u for u in part if u in work[m.name]] for m in mods})
        if new and not self._cancel.is_set():
            plan = FolderPlan(kept, new)
            for rows in self._fetch_new(source, acct, folder, plan, store=not in_workers):
                uids = [r[0] for r in rows]
                stored.extend(uids)
                submit(rows, {m.name: uids for m in mods}, new=True)
        runner = run.finish(runner)
        if last:
            runner.close()
        uids = sorted(kept_set | set(stored)) if synced is None else kept
        if self._cancel.is_set():
            # Cancelled part-way: the folder stands for the messages analysed, not also those
            # fetched but never evaluated (they would count as "not applicable" everywhere).
            core = self.core
            have = self.cache.result_uids(
                acct.name, folder, core.name, core.version, fps[core.name]
            )
            uids = [u for u in uids if u in have]
        fr.unavailable = self._missing.pop((acct.name, folder), (0, 0))[0]
        fr.total, fr.uids = len(uids) + fr.unavailable, uids
        fr.fetched = len(stored) if synced is None else synced[1]
        count = partial(
            fill_counts, self.cache, fr, role, keys, self.modules, ready, kept, self.keep_tables
        )
        if deferred is not None and in_workers and not last and not self.keep_tables:
            deferred.append(count)
        else:
            count()
        self._progress(Progress(acct.name, folder, "done", fr.total, fr.total))
        return fr, runner

    def _fetch_costly(
        self,
        source: OpenFolder,
        acct: Account,
        folder: str,
        role: str,
        rows: list[tuple[int, bytes, str | None, int | None]],
        work: dict[str, list[int]],
    ) -> dict[str, dict[int, tuple[bytes, bool]]]:
        """Body text / raw mail for the messages a module wants it for (cache, else fetch)."""
        wanting = {
            item: [m for m in self.modules if item in m.needs and work.get(m.name)]
            for item in (BODY, RAW)
        }
        out: dict[str, dict[int, tuple[bytes, bool]]] = {}
        if not any(wanting.values()):
            return out
        msgs = [
            Message(acct.name, folder, uid, header, parts_from_json(structure), size, role=role)
            for uid, header, structure, size in rows
        ]
        for item, mods in wanting.items():
            if not mods:
                continue
            sets = {m.name: set(work[m.name]) for m in mods}
            need = [
                msg
                for msg in msgs
                if any(msg.uid in sets[m.name] and _wants(m, msg, item) for m in mods)
            ]
            if not need:
                continue
            have = self.cache.get_items(acct.name, folder, item, [m.uid for m in need])
            lacking = [m for m in need if m.uid not in have]
            if lacking:
                source.ensure_open(folder)
                if item == BODY:
                    got = source.fetch_bodies({m.uid: m.parts or [] for m in lacking})
                else:
                    got = source.fetch_raw([m.uid for m in lacking])
                self.cache.put_items(acct.name, folder, item, got)
                have.update(got)
                size = sum(len(data) for data, _cut in got.values())
                self._add_cost(FETCH, **{f"{item}_bytes": size, item: len(got)})
                for m in mods:
                    self._add_cost(m.name, fetch_bytes=size)
            out[item] = have
        return out

    def results(self, result: RunResult) -> RunResults:
        """A read-only view of `result`'s per-message values, on its own cache connection."""
        return RunResults(result, self.cache.path)

    def table_for(self, fr: FolderResult) -> FolderTable:
        """The per-message values behind a folder result (see `results` for readers)."""
        if fr.table is not None:
            return fr.table
        keys = [(m, self._fps[fr.account][m.name]) for m in [self.core, *self.modules]]
        return load_table(self.cache, fr.account, fr.folder, fr.role, fr.uids, keys)


#: The pseudo-module under which the bytes fetched from the source are accounted.
FETCH = "_fetch"


def _wants(m: Module, msg: Message, item: str) -> bool:
    try:
        return bool(m.wants(msg, item))
    except Exception:  # noqa: BLE001
        return True
