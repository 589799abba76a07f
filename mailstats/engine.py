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
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mailstats import __version__
from mailstats.cache import Cache
from mailstats.config import Account, Config, resolve_password
from mailstats.mail.message import Message, parts_from_json, parts_to_json
from mailstats.modules import BODY, RAW, Module, Registry, available_modules, select_modules
from mailstats.services import Identity, SentIndex, Services
from mailstats.services.dns import Resolver
from mailstats.services.domains import DomainSplitter
from mailstats.sources import Source, SourceError, open_source

log = logging.getLogger(__name__)

EVAL_BATCH = 500
FLUSH_EVERY = 5000
MAX_CHUNKS = 16
CORE_COLUMNS = ("message_id", "date", "from_address", "origin_ip")


@dataclass
class Progress:
    account: str
    folder: str
    phase: str  # "connect", "sync", "analyse", "done"
    done: int
    total: int
    message: str = ""


@dataclass
class FolderResult:
    account: str
    folder: str
    role: str
    total: int = 0
    processed: int = 0
    malformed: int = 0
    fetched: int = 0  # headers fetched from the source in this run
    evaluated: int = 0  # messages for which at least one module ran in this run
    errors: dict[str, int] = field(default_factory=dict)
    counts: dict[str, list[int]] = field(default_factory=dict)  # check -> [matched, applicable]
    uids: list[int] = field(default_factory=list, repr=False)
    table: FolderTable | None = field(default=None, repr=False, compare=False)


@dataclass
class AccountResult:
    name: str
    labels: str = "hand"
    status: str = "ok"  # ok | failed | cancelled
    error: str = ""
    needs_signin: bool = False  # OAuth2 refresh token revoked or missing: sign in again
    folders: list[FolderResult] = field(default_factory=list)


@dataclass
class RunResult:
    accounts: list[AccountResult]
    modules: list[Module]
    started: datetime
    finished: datetime
    settings: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    dns_stats: dict[str, int] = field(default_factory=dict)
    fetch_stats: dict[str, int] = field(default_factory=dict)

    @property
    def checks(self) -> list[str]:
        return [f"{m.name}.{c}" for m in self.modules for c in m.checks]

    @property
    def extras(self) -> list[str]:
        return [f"{m.name}.{e}" for m in self.modules for e in m.extras]

    @property
    def ok(self) -> bool:
        return all(a.status == "ok" for a in self.accounts)


class CoreFields(Module):
    """The fixed messages.csv columns, cached like any module (origin depends on relays)."""

    name = "_core"
    version = "1"
    extras = (*CORE_COLUMNS, "malformed", "when")

    def fingerprint(self, services: Services) -> str:
        return ",".join(services.identity.trusted_relays) or "-"

    def evaluate(self, msg: Message, services: Services) -> dict[str, Any]:
        from mailstats.mail.dates import parse_date
        from mailstats.mail.received import find_origin

        date = parse_date(msg.header("Date")) if msg.header("Date") else None
        when = date
        if when is None:
            stamps = [h.timestamp for h in msg.hops if h.timestamp is not None]
            when = stamps[0] if stamps else None
        origin = find_origin(msg.hops, services.identity)
        return {
            "message_id": msg.message_id,
            "date": date.isoformat() if date else "",
            "from_address": msg.from_address.addr if msg.from_address else "",
            "origin_ip": origin[1].ip if origin else "",
            "malformed": bool(msg.malformed),
            "when": when.timestamp() if when else None,
        }


@dataclass
class FolderTable:
    """A folder's per-message values, column by column (compact at 100k messages)."""

    account: str
    folder: str
    role: str
    uids: list[int]
    columns: dict[str, list[Any]]

    def rows(self) -> Iterator[dict[str, Any]]:
        names = list(self.columns)
        for i, uid in enumerate(self.uids):
            row = {"uid": uid}
            for n in names:
                row[n] = self.columns[n][i]
            yield row


def identity_for(account: Account) -> Identity:
    return Identity(
        address=account.email,
        full_name=account.full_name,
        own_domains=tuple(account.domains),
        trusted_relays=tuple(account.trusted_relays),
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
        self.modules = select_modules(self.registry, config.settings.modules)
        self.core = CoreFields()
        self.domains = DomainSplitter()
        settings = config.settings
        self.resolver = Resolver(
            settings.dns_servers or None,
            timeout=float(settings.extra.get("dns_timeout", 4.0)),
            store=self.cache,
            deadline_s=settings.extra.get("dns_deadline"),
        )
        self.source_factory = source_factory or (lambda a, pw: open_source(a, pw))
        self.warnings: list[str] = list(self.registry.problems)
        self._progress: Callable[[Progress], None] = lambda p: None
        self._cancel = threading.Event()
        self._fetch_stats: dict[str, int] = {}
        self._services: dict[str, Services] = {}
        self._probe: Any = None
        self._selected: dict[int, str] = {}

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
            results.append(self.run_account(acct))
        self.resolver.flush()
        self.resolver.close()
        warnings = list(self.warnings)
        for m in self.modules:
            for w in m.warnings():
                if w not in warnings:
                    warnings.append(w)
        return RunResult(
            accounts=results,
            modules=list(self.modules),
            started=started,
            finished=datetime.now(UTC),
            settings=self.config.settings.as_dict(),
            warnings=warnings,
            dns_stats=dict(self.resolver.stats),
            fetch_stats=dict(self._fetch_stats),
        )

    def services_for(self, account: Account, sent_index: SentIndex | None) -> Services:
        return Services(
            dns=self.resolver,
            domains=self.domains,
            identity=identity_for(account),
            sent_index=sent_index,
            settings=self.config.settings.as_dict(),
            probe=self._prober(),
        )

    def _prober(self) -> Any:
        """One TCP prober per run (each IP probed once), only when the opt-in module runs."""
        if self._probe is None and any(m.name == "reachability" for m in self.modules):
            from mailstats.services.probe import TcpProber

            port = int(self.config.settings.extra.get("reachability_port", 25))
            self._probe = TcpProber(port=port)
        return self._probe

    def run_account(self, acct: Account) -> AccountResult:
        result = AccountResult(acct.name, acct.labels)
        roles = acct.roles()
        self._progress(Progress(acct.name, "", "connect", 0, len(roles)))
        try:
            source = self.source_factory(acct, "" if acct.is_local else resolve_password(acct))
        except SourceError as exc:
            result.status, result.error = "failed", str(exc)
            from mailstats.oauth import SignInRequired

            result.needs_signin = isinstance(exc, SignInRequired)
            return result
        try:
            totals: dict[str, list[int]] = {}
            fetched: dict[str, int] = {}
            for folder in roles:
                if self._cancel.is_set():
                    break
                try:
                    totals[folder], fetched[folder] = self._sync_folder(source, acct, folder)
                except SourceError as exc:
                    result.status, result.error = "failed", str(exc)
                    return result
            sent_folders = [f for f, r in roles.items() if r == "sent" and f in totals]
            sent_index = self._sent_index(acct, sent_folders) if sent_folders else None
            services = self.services_for(acct, sent_index)
            self._services[acct.name] = services
            for m in self.modules:
                try:
                    m.prepare(services)
                except Exception as exc:  # noqa: BLE001 - a module failing to prepare is reported
                    self.warnings.append(f"module {m.name}: preparation failed: {exc}")
            for folder, role in roles.items():
                if folder not in totals:
                    continue
                fr = self._analyse_folder(source, acct, folder, role, totals[folder], services)
                fr.fetched = fetched[folder]
                result.folders.append(fr)
                if self._cancel.is_set():
                    break
            if self._cancel.is_set():
                result.status = "cancelled"
        except SourceError as exc:
            result.status, result.error = "failed", str(exc)
        finally:
            for key, value in getattr(source, "stats", {}).items():
                self._fetch_stats[key] = self._fetch_stats.get(key, 0) + value
            source.close()
            self.resolver.flush()
        return result

    # -- sync -------------------------------------------------------------------------
    def _sync_folder(self, source: Source, acct: Account, folder: str) -> tuple[list[int], int]:
        state = source.open_folder(folder)
        self._selected[id(source)] = folder
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
        new = [u for u in state.uids if u not in cached]
        stored: set[int] = set()
        self._progress(Progress(acct.name, folder, "sync", 0, len(new)))
        batch: list[tuple[int, bytes, str | None, int | None]] = []
        for item in source.fetch_headers(new):
            batch.append((item.uid, item.header, parts_to_json(item.parts), item.size))
            if len(batch) >= 500:
                self.cache.put_messages(acct.name, folder, batch)
                stored.update(b[0] for b in batch)
                batch = []
                self._progress(Progress(acct.name, folder, "sync", len(stored), len(new)))
                if self._cancel.is_set():
                    break
        if batch:
            self.cache.put_messages(acct.name, folder, batch)
            stored.update(b[0] for b in batch)
            self._progress(Progress(acct.name, folder, "sync", len(stored), len(new)))
        if state.key_digest:
            self.cache.set_folder_digest(acct.name, folder, state.key_digest)
        return sorted((current & cached) | stored), len(stored)

    def _select(self, source: Source, folder: str) -> None:
        """Make `folder` the source's open folder: syncing left another one selected."""
        if self._selected.get(id(source)) != folder:
            source.open_folder(folder)
            self._selected[id(source)] = folder

    def _sent_index(self, acct: Account, folders: list[str]) -> SentIndex:
        from mailstats.mail.addresses import parse_address_list

        index = SentIndex()
        for folder in folders:
            for uid, header, _structure, _size in self.cache.get_messages(acct.name, folder):
                msg = Message(acct.name, folder, uid, header)
                for name in ("To", "Cc", "Bcc"):
                    for value in msg.header_all(name):
                        for addr in parse_address_list(value):
                            if addr.addr:
                                index.recipients.add(addr.addr)
                if msg.message_id:
                    index.message_ids.add(msg.message_id)
                index.messages += 1
        return index

    # -- analysis ---------------------------------------------------------------------
    def _analyse_folder(
        self,
        source: Source,
        acct: Account,
        folder: str,
        role: str,
        uids: list[int],
        services: Services,
    ) -> FolderResult:
        fr = FolderResult(acct.name, folder, role, total=len(uids), uids=list(uids))
        mods = [self.core, *self.modules]
        fps = {m.name: m.fingerprint(services) for m in mods}
        uid_set = set(uids)
        missing: dict[str, set[int]] = {}
        for m in mods:
            have = self.cache.result_uids(acct.name, folder, m.name, m.version, fps[m.name])
            missing[m.name] = uid_set - have
        todo = sorted(set().union(*missing.values()))
        self._progress(Progress(acct.name, folder, "analyse", 0, len(todo)))
        pending: dict[str, dict[int, dict[str, Any]]] = {m.name: {} for m in mods}
        done = 0
        for i in range(0, len(todo), EVAL_BATCH):
            if self._cancel.is_set():
                break
            batch = todo[i : i + EVAL_BATCH]
            msgs = self._load_messages(source, acct, folder, role, batch, mods, missing)
            self._prefetch(msgs, mods, missing, services)
            for msg in msgs:
                for m in mods:
                    if msg.uid not in missing[m.name]:
                        continue
                    try:
                        values = m.evaluate(msg, services)
                    except Exception as exc:  # noqa: BLE001 - one message never stops a run
                        fr.errors[m.name] = fr.errors.get(m.name, 0) + 1
                        log.debug("module %s failed on %s/%s: %r", m.name, folder, msg.uid, exc)
                        values = {"_error": f"{type(exc).__name__}: {exc}"[:200]}
                    pending[m.name][msg.uid] = values
            done += len(batch)
            fr.evaluated += len(msgs)
            self.resolver.flush()
            self._progress(Progress(acct.name, folder, "analyse", done, len(todo)))
            if done % FLUSH_EVERY < EVAL_BATCH or done == len(todo):
                self._store(acct, folder, mods, fps, pending)
        self._store(acct, folder, mods, fps, pending)
        table = self.folder_table(acct.name, folder, role, uids, services)
        self._count(fr, table)
        fr.table = table
        self._progress(Progress(acct.name, folder, "done", fr.total, fr.total))
        return fr

    def _store(
        self,
        acct: Account,
        folder: str,
        mods: list[Module],
        fps: dict[str, str],
        pending: dict[str, dict[int, dict[str, Any]]],
    ) -> None:
        for m in mods:
            values = pending[m.name]
            if not values:
                continue
            self.cache.put_results(acct.name, folder, m.name, m.version, fps[m.name], values)
            pending[m.name] = {}
            if self.cache.result_chunk_count(acct.name, folder, m.name) > MAX_CHUNKS:
                keep = self.cache.cached_uids(acct.name, folder)
                self.cache.compact_results(acct.name, folder, m.name, m.version, fps[m.name], keep)

    def _load_messages(
        self,
        source: Source,
        acct: Account,
        folder: str,
        role: str,
        uids: list[int],
        mods: list[Module],
        missing: dict[str, set[int]],
    ) -> list[Message]:
        msgs = [
            Message(acct.name, folder, uid, header, parts_from_json(structure), size, role=role)
            for uid, header, structure, size in self.cache.get_messages(acct.name, folder, uids)
        ]
        for item in (BODY, RAW):
            wanting = [m for m in mods if item in m.needs]
            if not wanting:
                continue
            need = [
                msg
                for msg in msgs
                if any(msg.uid in missing[m.name] and _wants(m, msg, item) for m in wanting)
            ]
            if not need:
                continue
            have = self.cache.get_items(acct.name, folder, item, [m.uid for m in need])
            lacking = [m for m in need if m.uid not in have]
            if lacking:
                self._select(source, folder)
                if item == BODY:
                    got = source.fetch_bodies({m.uid: m.parts or [] for m in lacking})
                else:
                    got = source.fetch_raw([m.uid for m in lacking])
                self.cache.put_items(acct.name, folder, item, got)
                have.update(got)
            for msg in need:
                data, truncated = have.get(msg.uid, (None, False))
                if data is None:
                    continue
                if item == BODY:
                    msg.body_text = data.decode("utf-8", "replace")
                else:
                    msg.raw_bytes, msg.raw_truncated = data, truncated
        return msgs

    def _prefetch(
        self,
        msgs: list[Message],
        mods: list[Module],
        missing: dict[str, set[int]],
        services: Services,
    ) -> None:
        queries: list[tuple[str, str]] = []
        for m in mods:
            for msg in msgs:
                if msg.uid in missing[m.name]:
                    try:
                        queries.extend(m.prefetch(msg, services))
                    except Exception:  # noqa: BLE001 - evaluate will meet and count it
                        pass
        if queries:
            services.dns.prefetch(queries)
        probe = services.probe
        if probe is not None and "reachability" in missing:
            from mailstats.mail.received import find_origin

            ips = []
            for msg in msgs:
                if msg.uid in missing["reachability"]:
                    origin = find_origin(msg.hops, services.identity)
                    if origin:
                        ips.append(origin[1].ip)
            if ips:
                probe.prefetch(ips)

    def folder_table(
        self, account: str, folder: str, role: str, uids: list[int], services: Services
    ) -> FolderTable:
        index = {u: i for i, u in enumerate(uids)}
        columns: dict[str, list[Any]] = {}
        n = len(uids)
        for m in [self.core, *self.modules]:
            data = self.cache.get_results(
                account, folder, m.name, m.version, m.fingerprint(services)
            )
            names = list(m.checks) + list(m.extras)
            cols = {name: [None] * n for name in names}
            err = [False] * n
            for uid, values in data.items():
                i = index.get(uid)
                if i is None:
                    continue
                if "_error" in values:
                    err[i] = True
                for name in names:
                    v = values.get(name)
                    if v is not None:
                        cols[name][i] = v
            del data
            prefix = "" if m is self.core else f"{m.name}."
            for name in names:
                columns[prefix + name] = cols[name]
            if m is not self.core:
                columns[f"_error.{m.name}"] = err
        return FolderTable(account, folder, role, list(uids), columns)

    def table_for(self, fr: FolderResult) -> FolderTable:
        """The per-message values behind a folder result (for messages.csv and the GUI)."""
        if fr.table is not None:
            return fr.table
        return self.folder_table(
            fr.account, fr.folder, fr.role, fr.uids, self._services[fr.account]
        )

    def _count(self, fr: FolderResult, table: FolderTable) -> None:
        malformed = table.columns.get("malformed", [])
        fr.malformed = sum(1 for v in malformed if v)
        fr.processed = fr.total - fr.malformed
        for m in self.modules:
            for c in m.checks:
                col = table.columns[f"{m.name}.{c}"]
                matched = sum(1 for v in col if v is True)
                applicable = sum(1 for v in col if v is not None)
                fr.counts[f"{m.name}.{c}"] = [matched, applicable]
            errs = sum(table.columns[f"_error.{m.name}"])
            if errs:
                fr.errors[m.name] = errs

    def explain(self, account: Account, folder: str, uid: int) -> dict[str, Any]:
        """Everything known about one message: headers and each module's values and reasons."""
        services = self.services_for(account, None)
        out: dict[str, Any] = {}
        rows = list(self.cache.get_messages(account.name, folder, [uid]))
        out["header"] = rows[0][1].decode("utf-8", "replace") if rows else ""
        for m in [self.core, *self.modules]:
            fp = m.fingerprint(services)
            if m.uses_sent_index:
                # the sent index is not rebuilt here: take whatever fingerprint is cached
                fp = self._any_fingerprint(account.name, folder, m) or fp
            values = self.cache.get_results(
                account.name, folder, m.name, m.version, fp, why=True
            ).get(uid)
            out[m.name] = values or {}
        return out

    def _any_fingerprint(self, account: str, folder: str, m: Module) -> str | None:
        row = self.cache.db.execute(
            "SELECT fingerprint FROM results WHERE account=? AND folder=? AND module=? "
            "AND version=? LIMIT 1",
            (account, folder, m.name, m.version),
        ).fetchone()
        return row[0] if row else None


def _wants(m: Module, msg: Message, item: str) -> bool:
    try:
        return bool(m.wants(msg, item))
    except Exception:  # noqa: BLE001
        return True


def manifest(result: RunResult, outputs: list[str]) -> dict[str, Any]:
    """What produced a set of outputs (DESIGN.md); names and settings, never secrets."""
    settings = {k: v for k, v in result.settings.items() if "password" not in k.lower()}
    return {
        "mailstats_version": __version__,
        "started": result.started.isoformat(),
        "finished": result.finished.isoformat(),
        "elapsed_s": round((result.finished - result.started).total_seconds(), 3),
        "settings": settings,
        "modules": {m.name: m.version for m in result.modules},
        "checks": result.checks,
        "extras": result.extras,
        "network_checks": [
            f"{m.name}.{c}" for m in result.modules if m.evidence == "now" for c in m.checks
        ],
        "accounts": [
            {
                "name": a.name,
                "labels": a.labels,
                "status": a.status,
                "error": a.error,
                "needs_signin": a.needs_signin,
                "folders": [
                    {
                        "folder": f.folder,
                        "role": f.role,
                        "total": f.total,
                        "processed": f.processed,
                        "malformed": f.malformed,
                        "fetched": f.fetched,
                        "evaluated": f.evaluated,
                        "errors": f.errors,
                    }
                    for f in a.folders
                ],
            }
            for a in result.accounts
        ],
        "counts": {
            "messages": sum(f.total for a in result.accounts for f in a.folders),
            "malformed": sum(f.malformed for a in result.accounts for f in a.folders),
            "module_errors": sum(
                sum(f.errors.values()) for a in result.accounts for f in a.folders
            ),
        },
        "dns": result.dns_stats,
        "fetch": result.fetch_stats,
        "module_counters": {m.name: m.counters() for m in result.modules if m.counters()},
        "warnings": result.warnings,
        "outputs": outputs,
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
