"""What a run produced: per-folder counts, per-account status, and a read-only view of the
per-message values behind them.

These are plain data: the writers (stats/export.py, the manifest), the GUI and the cluster
runner read them without the engine that made them. `RunResults` reads a finished run's
tables and explanations from the cache on a connection of its own, so nothing outside the
engine ever shares the engine's live SQLite connection.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mailstats.run.cache import CacheReader


@dataclass
class Progress:
    account: str
    folder: str
    phase: str  # "connect", "sync", "analyse", "done", "finished"
    done: int
    total: int
    message: str = ""


@dataclass
class FolderTable:
    """A folder's per-message values, column by column (compact at 100k messages)."""

    account: str
    folder: str
    role: str
    uids: list[int]
    columns: dict[str, list[Any]]
    #: every module had a result for every message (a stored table's `key` says of what)
    complete: bool = field(default=False, compare=False)
    key: str = field(default="", compare=False, repr=False)

    def rows(self) -> Iterator[dict[str, Any]]:
        names = list(self.columns)
        for i, uid in enumerate(self.uids):
            row = {"uid": uid}
            for n in names:
                row[n] = self.columns[n][i]
            yield row


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
    #: listed by the server (counted in `total`) but never returned: no row, no values
    unavailable: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    counts: dict[str, list[int]] = field(default_factory=dict)  # check -> [matched, applicable]
    receivers: dict[str, int] = field(default_factory=dict)  # recognised receiver -> messages
    uids: list[int] = field(default_factory=list, repr=False)
    table: FolderTable | None = field(default=None, repr=False, compare=False)


@dataclass
class AccountResult:
    name: str
    labels: str = "hand"
    status: str = "ok"  # ok | partial (some messages unavailable) | failed | cancelled
    error: str = ""
    needs_signin: bool = False  # OAuth2 refresh token revoked or missing: sign in again
    folders: list[FolderResult] = field(default_factory=list)
    #: module name -> the fingerprint its results were stored under (to read them back)
    fingerprints: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass
class RunResult:
    accounts: list[AccountResult]
    modules: list[Any]  # the run's module instances, or snapshots of them (parallel.py)
    started: datetime
    finished: datetime
    settings: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    dns_stats: dict[str, int] = field(default_factory=dict)
    dns_trust: dict[str, Any] = field(default_factory=dict)  # run/dnstrust.py
    fetch_stats: dict[str, int] = field(default_factory=dict)
    module_counters: dict[str, dict[str, int]] = field(default_factory=dict)
    #: module (or "_fetch", "_dns_prefetch") -> additive figures: ns, messages, dns_names,
    #: fetch_bytes; see stats.manifest.module_cost for the per-message table
    module_cost: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def checks(self) -> list[str]:
        return [f"{m.name}.{c}" for m in self.modules for c in m.checks]

    @property
    def extras(self) -> list[str]:
        return [f"{m.name}.{e}" for m in self.modules for e in m.extras]

    @property
    def ok(self) -> bool:
        return all(a.status == "ok" for a in self.accounts)

    @property
    def plots(self) -> dict[str, str]:
        """What the modules' extras stand for (Module.plots) -> the column, first one wins."""
        out: dict[str, str] = {}
        for m in self.modules:
            for kind, extra in (getattr(m, "plots", None) or {}).items():
                out.setdefault(kind, f"{m.name}.{extra}")
        return out

    def plot_column(self, kind: str) -> str | None:
        return self.plots.get(kind)


def unavailable_text(folders: list[FolderResult]) -> str:
    """The error of a `partial` account: which folders lack how many of their messages."""
    parts = [f"{f.unavailable} of {f.total} in {f.folder}" for f in folders if f.unavailable]
    return "messages the server listed could not be fetched: " + ", ".join(parts)


def crashed_account(
    name: str, labels: str, exc: BaseException, secrets: tuple[str, ...]
) -> AccountResult:
    """An account that raised what nothing expected: failed and named, the batch goes on.

    The traceback goes to the DEBUG log, redacted like the message: both may quote server
    text or a password.
    """
    import logging
    import traceback

    from mailstats.sources import redact

    detail = redact(traceback.format_exc(), secrets)
    log = logging.getLogger("mailstats.run.engine")
    log.debug("account %s: unexpected error\n%s", name, detail)
    text = redact(f"{type(exc).__name__}: {exc}", secrets)
    return AccountResult(name, labels, "failed", f"unexpected error: {text}"[:500])


class RunResults:
    """A finished run's per-message values: tables for messages.csv and the GUI, and one
    message's explanation, read on a cache connection of this object's own.

    `cache_path` may be None when every folder result carries its table (the cluster and
    thread runners ship them); then only `table_for` works. Calls are serialized by a lock,
    so the GUI may call from any worker thread.
    """

    def __init__(self, result: RunResult, cache_path: str | Path | None = None) -> None:
        self.result = result
        self.cache_path = Path(cache_path) if cache_path else None
        self._reader: CacheReader | None = None
        self._lock = threading.Lock()
        #: The engine's writable cache, when its caller lets the outputs keep messages.csv's
        #: rows there (keep_rendering); None: nothing is written.
        self.store: Any = None

    def _cache(self) -> CacheReader:
        if self._reader is None:
            if self.cache_path is None:
                raise ValueError("these results were not kept in a cache")
            self._reader = CacheReader(self.cache_path)
        return self._reader

    def _account(self, name: str) -> AccountResult:
        for a in self.result.accounts:
            if a.name == name:
                return a
        raise KeyError(f"no account {name!r} in this run")

    def _keys(self, account: str) -> list[tuple[Any, str]]:
        """(module, fingerprint) for the core fields and every module of the run."""
        from mailstats.run.core_fields import CoreFields

        fps = self._account(account).fingerprints
        return [(m, fps.get(m.name, "")) for m in [CoreFields, *self.result.modules]]

    def table_for(self, fr: FolderResult) -> FolderTable:
        """The per-message values behind a folder result."""
        if fr.table is not None:
            return fr.table
        from mailstats.run.counting import load_table

        with self._lock:
            return load_table(
                self._cache(), fr.account, fr.folder, fr.role, fr.uids, self._keys(fr.account)
            )

    def _stored_key(self, fr: FolderResult) -> str | None:
        """The stored table's key of a folder whose table is read from the cache (None when
        the folder result carries a table of its own, which may differ from the stored one)."""
        if fr.table is not None or self.cache_path is None:
            return None
        from mailstats.run.counting import SNAPSHOT_MIN, table_key

        if len(fr.uids) < SNAPSHOT_MIN:
            return None
        return table_key(fr.uids, self._keys(fr.account))

    def rendering(
        self, fr: FolderResult, render_key: bytes
    ) -> tuple[str, list[float | None]] | None:
        """messages.csv's rows of a folder as kept with its stored table and each message's
        `when` (its age is this run's), else None."""
        key = self._stored_key(fr)
        if key is None:
            return None
        with self._lock:
            return self._cache().get_rendering(fr.account, fr.folder, key, render_key)

    def keep_rendering(
        self, fr: FolderResult, render_key: bytes, text: str, when: list[float | None]
    ) -> None:
        key = self._stored_key(fr) if self.store is not None else None
        if key is not None:
            self.store.put_rendering(fr.account, fr.folder, key, render_key, text, when)

    def explain(self, account: Any, folder: str, uid: int) -> dict[str, Any]:
        """Everything known about one message: its header and each module's values and
        reasons (`account` is an account name or anything with a `name`)."""
        name = account if isinstance(account, str) else account.name
        with self._lock:
            cache = self._cache()
            rows = list(cache.get_messages(name, folder, [uid]))
            out: dict[str, Any] = {"header": rows[0][1].decode("utf-8", "replace") if rows else ""}
            memo: dict[bytes, Any] = {}
            for m, fp in self._keys(name):
                if not fp:  # not recorded (an old result): whatever is stored for the version
                    fp = cache.any_fingerprint(name, folder, m.name, m.version) or ""
                # one message's page, not the folder's results (the message view, per click)
                values = cache.get_result(name, folder, m.name, m.version, fp, uid, memo)
                out[m.name] = values or {}
        return out

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
