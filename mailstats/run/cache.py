"""The SQLite cache: what was fetched, what DNS said, what modules concluded.

One file, mode 0600 (it holds other people's headers). Keys follow IMAP's own identity rules:
(account, folder, UID) is valid only while the folder's UIDVALIDITY stays the same, so a
changed UIDVALIDITY drops the folder. Module results are stored per folder in chunks keyed by
(module, version, fingerprint): a re-run over an unchanged mailbox reads a handful of blobs
instead of a row per message and check, which is what keeps it under two seconds at 100k.

Inside a chunk, values and explanations are stored in pages of PAGE messages (in UID order),
each compressed on its own behind a table of offsets. A whole chunk decodes as before, page
after page; the message view reads one message by decompressing one page of each module's
chunk (read through SQLite's incremental blob I/O), instead of the whole folder: at 100k
messages that is milliseconds instead of seconds per click.
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import threading
import time
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir

from mailstats.run.cache_blobs import (
    _PAGE_MAGIC,
    COUNTS,
    PAGE,
    ROWS,
    _pack_results,
    _page_table,
    _unpack,
    _unpack_pages,
    _unpack_uids,
    counts_of,
    counts_section,
    deflate,
    inflate,
    pack_table,
    rendering_of,
    rows_section,
    unpack_table,
    with_section,
)
from mailstats.run.cache_open import CacheError, chmod_own, open_own

__all__ = ["PAGE", "Cache", "CacheError", "CacheReader", "default_cache_path"]

SCHEMA_VERSION = 3  # 3: paged result chunks
#: The lengths a DNS store look-up pads its name list to (see Cache.lookup_dns).
_LOOKUP_SIZES = (1, 8, 64, 400)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS folders(
    account TEXT, folder TEXT, uidvalidity INTEGER, skey_digest TEXT,
    PRIMARY KEY(account, folder));
CREATE TABLE IF NOT EXISTS messages(
    account TEXT, folder TEXT, uid INTEGER, header BLOB, structure TEXT, size INTEGER,
    PRIMARY KEY(account, folder, uid)) WITHOUT ROWID;
-- the UIDs alone: listing a folder's 60k cached UIDs through the table itself read every
-- header page (80 ms of each re-run); through this index, 35 ms
CREATE INDEX IF NOT EXISTS messages_uids ON messages(account, folder, uid);
CREATE TABLE IF NOT EXISTS bodies(
    account TEXT, folder TEXT, uid INTEGER, item TEXT, data BLOB, truncated INTEGER,
    PRIMARY KEY(account, folder, uid, item)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dns(
    resolver TEXT, name TEXT, rdtype TEXT, status TEXT, records TEXT, expires REAL, run TEXT,
    PRIMARY KEY(resolver, name, rdtype)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS results(
    account TEXT, folder TEXT, module TEXT, version TEXT, fingerprint TEXT, chunk INTEGER,
    uids BLOB, data BLOB, why BLOB,
    PRIMARY KEY(account, folder, module, version, fingerprint, chunk));
CREATE TABLE IF NOT EXISTS tables(
    account TEXT, folder TEXT, key TEXT, data BLOB,
    PRIMARY KEY(account, folder)) WITHOUT ROWID;
"""


def default_cache_path() -> Path:
    return Path(user_cache_dir("mailstats")) / "cache.sqlite"


class CacheReader:
    """Read-only access to a cache file on a connection of its own.

    The GUI, the exports and the message view read a finished run's results through one of
    these, from whatever thread, while no engine holds the file; `Cache` (the one writer)
    adds the writes on top of the same reads.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no cache file at {self.path}")
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA query_only=ON")
        self.db.execute("PRAGMA busy_timeout=60000")

    def close(self) -> None:
        self.db.close()

    def folder_state(self, account: str, folder: str) -> tuple[int | None, str]:
        row = self.db.execute(
            "SELECT uidvalidity, skey_digest FROM folders WHERE account=? AND folder=?",
            (account, folder),
        ).fetchone()
        return (row[0], row[1] or "") if row else (None, "")

    def cached_uids(self, account: str, folder: str) -> set[int]:
        cur = self.db.execute(
            "SELECT uid FROM messages WHERE account=? AND folder=?", (account, folder)
        )
        return {r[0] for r in cur}

    def get_messages(
        self, account: str, folder: str, uids: list[int] | None = None
    ) -> Iterator[tuple[int, bytes, str | None, int | None]]:
        """(uid, header, structure json, size) in UID order; all of the folder when uids is None."""
        if uids is None:
            cur: Iterable[Any] = self.db.execute(
                "SELECT uid, header, structure, size FROM messages "
                "WHERE account=? AND folder=? ORDER BY uid",
                (account, folder),
            )
        else:
            cur = self._rows_for(
                "SELECT uid, header, structure, size FROM messages "
                "WHERE account=? AND folder=? AND uid IN ({}) ORDER BY uid",
                (account, folder),
                sorted(uids),
            )
        for uid, header, structure, size in cur:
            yield uid, inflate(header), structure, size

    def _rows_for(self, sql: str, args: tuple[Any, ...], uids: list[int]) -> Iterator[Any]:
        """The rows of `sql` (its "IN ({})" filled) for `uids`, 500 at a time: SQLite's
        limit on query parameters."""
        for i in range(0, len(uids), 500):
            part = uids[i : i + 500]
            yield from self.db.execute(sql.format(",".join("?" * len(part))), (*args, *part))

    def get_items(
        self, account: str, folder: str, item: str, uids: list[int]
    ) -> dict[int, tuple[bytes, bool]]:
        rows = self._rows_for(
            "SELECT uid, data, truncated FROM bodies WHERE account=? AND folder=? "
            "AND item=? AND uid IN ({})",
            (account, folder, item),
            uids,
        )
        return {uid: (inflate(data), bool(trunc)) for uid, data, trunc in rows}

    def result_uids(
        self, account: str, folder: str, module: str, version: str, fp: str
    ) -> set[int]:
        """UIDs with a stored result, without decoding the results themselves (re-run speed)."""
        out: set[int] = set()
        cur = self.db.execute(
            "SELECT uids FROM results WHERE account=? AND folder=? AND module=? AND version=? "
            "AND fingerprint=?",
            (account, folder, module, version, fp),
        )
        for (blob,) in cur:
            out.update(_unpack_uids(blob))
        return out

    def _result_chunks(
        self, account: str, folder: str, module: str, version: str, fp: str, why: bool
    ) -> Iterator[tuple[array, Iterator[Any], Iterator[Any] | None]]:
        """Each chunk in order: its UIDs, their values and (with why) their explanations."""
        cur = self.db.execute(
            f"SELECT uids, data, {'why' if why else 'NULL'} FROM results WHERE account=? "
            "AND folder=? AND module=? AND version=? AND fingerprint=? ORDER BY chunk",
            (account, folder, module, version, fp),
        )
        for uids, data, whys in cur:
            yield (
                _unpack_uids(uids),
                _unpack_pages(data),
                _unpack_pages(whys) if whys is not None else None,
            )

    def get_results(
        self, account: str, folder: str, module: str, version: str, fp: str, why: bool = False
    ) -> dict[int, dict[str, Any]]:
        """uid -> values; with why=True each carries its "_why" explanations too.

        Explanations are stored apart because only the message view reads them, while every
        run reads the values: decoding them on each re-run doubled its time. A later chunk's
        result replaces an earlier one, explanation included.
        """
        out: dict[int, dict[str, Any]] = {}
        for uids, values, whys in self._result_chunks(account, folder, module, version, fp, why):
            if whys is None:
                out.update(zip(uids, values, strict=True))
                continue
            for uid, value, expl in zip(uids, values, whys, strict=True):
                if expl is not None:
                    value["_why"] = expl
                out[uid] = value
        return out

    def get_result(
        self,
        account: str,
        folder: str,
        module: str,
        version: str,
        fp: str,
        uid: int,
        memo: dict[bytes, array] | None = None,
    ) -> dict[str, Any] | None:
        """One message's values and "_why" explanations, or None when none is stored.

        Finds the chunk that holds `uid` (the newest, like get_results), then reads only the
        one page it is on. `memo` keeps decoded UID lists between calls: the modules of a
        folder are stored in the same batches, so their chunks share UID lists.
        """
        cur = self.db.execute(
            "SELECT rowid, uids, why IS NOT NULL FROM results WHERE account=? AND folder=? "
            "AND module=? AND version=? AND fingerprint=? ORDER BY chunk DESC",
            (account, folder, module, version, fp),
        )
        for rowid, blob, has_why in cur.fetchall():
            uids = memo.get(blob) if memo is not None else None
            if uids is None:
                uids = _unpack_uids(blob)
                if memo is not None:
                    memo[blob] = uids
            pos = bisect_left(uids, uid)
            if pos == len(uids) or uids[pos] != uid:
                continue
            entry = self._read_entry(rowid, "data", pos)
            if not isinstance(entry, dict):
                return None
            if has_why:
                why = self._read_entry(rowid, "why", pos)
                if why is not None:
                    entry["_why"] = why
            return entry
        return None

    def _read_entry(self, rowid: int, column: str, pos: int) -> Any:
        """Entry `pos` of a chunk blob, reading its offset table and one page only."""
        with self.db.blobopen("results", column, rowid, readonly=True) as blob:
            head = blob.read(8)
            (n,) = struct.unpack_from("<I", head, 4)
            page = pos // PAGE
            if head[:4] != _PAGE_MAGIC or page >= n:
                return None
            start, ends = _page_table(head + blob.read(4 * n))
            begin = ends[page - 1] if page else 0
            blob.seek(start + begin)
            entries = _unpack(blob.read(ends[page] - begin))
        return entries[pos % PAGE]

    def result_chunk_count(self, account: str, folder: str, module: str) -> int:
        row = self.db.execute(
            "SELECT COUNT(*) FROM results WHERE account=? AND folder=? AND module=?",
            (account, folder, module),
        ).fetchone()
        return int(row[0])

    def any_fingerprint(self, account: str, folder: str, module: str, version: str) -> str | None:
        """Some fingerprint stored for a module's results (the message view of an old run)."""
        row = self.db.execute(
            "SELECT fingerprint FROM results WHERE account=? AND folder=? AND module=? "
            "AND version=? LIMIT 1",
            (account, folder, module, version),
        ).fetchone()
        return row[0] if row else None

    def get_table(
        self, account: str, folder: str, key: str
    ) -> tuple[dict[str, list[Any]], bool] | None:
        """A folder's finished columns as last stored for `key` and whether every module had
        a result for every message then; None when none is stored (see put_table)."""
        row = self.db.execute(
            "SELECT data FROM tables WHERE account=? AND folder=? AND key=?",
            (account, folder, key),
        ).fetchone()
        return None if row is None else unpack_table(row[0])

    def get_rendering(
        self, account: str, folder: str, key: str, render_key: bytes
    ) -> tuple[str, list[float | None]] | None:
        """messages.csv's rows of a folder as stored with its table `key` for `render_key`,
        and each message's `when` (the ages are this run's)."""
        row = self.db.execute(
            "SELECT data FROM tables WHERE account=? AND folder=? AND key=?",
            (account, folder, key),
        ).fetchone()
        return None if row is None else rendering_of(row[0], render_key)

    def table_state(
        self, account: str, folder: str, key: str
    ) -> tuple[bool, dict[str, Any] | None] | None:
        """(complete, the counts kept with it) of the table stored for `key`, without
        decoding its columns; None when none is stored."""
        row = self.db.execute(
            "SELECT data FROM tables WHERE account=? AND folder=? AND key=?",
            (account, folder, key),
        ).fetchone()
        return None if row is None else counts_of(row[0])


class Cache(CacheReader):
    """Single-writer cache. Use it from one thread (the engine's); readers open their own."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path else default_cache_path()
        #: What the user must be told about the file (a damaged cache moved aside).
        self.warnings: list[str] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            opened = open_own(self.path, self.warnings, _SCHEMA)
        except OSError as exc:
            raise CacheError(f"cache {self.path}: cannot use it: {exc.strerror or exc}") from None
        self.db = opened
        if "resolver" not in [r[1] for r in self.db.execute("PRAGMA table_info(dns)")]:
            # Answers stored without the resolver that gave them cannot be attributed: drop.
            self.db.execute("DROP TABLE IF EXISTS dns")
            self.db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is not None and row[0] != str(SCHEMA_VERSION):
            # A cache is only ever a copy of what the server has: rebuild it, never migrate.
            for table in ("folders", "messages", "bodies", "dns", "results", "tables", "meta"):
                self.db.execute(f"DROP TABLE IF EXISTS {table}")
            self.db.executescript(_SCHEMA)
            row = None
        if row is None:
            self.db.execute("INSERT INTO meta VALUES('schema', ?)", (str(SCHEMA_VERSION),))
        # Open until close(): a cache found still "open" is checked page by page next time.
        self.db.execute("INSERT OR REPLACE INTO meta VALUES('closed', '0')")
        for suffix in ("-wal", "-shm"):
            chmod_own(Path(str(self.path) + suffix))

    def close(self) -> None:
        try:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES('closed', '1')")
        except sqlite3.Error:  # closed already, or read-only now: it is checked next time
            pass
        self.db.close()

    # -- folders ----------------------------------------------------------------------
    def reset_folder(self, account: str, folder: str, uidvalidity: int, digest: str = "") -> None:
        """Forget everything about a folder (new UIDVALIDITY) and record the new identity."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            for table in ("messages", "bodies", "results", "tables"):
                self.db.execute(
                    f"DELETE FROM {table} WHERE account=? AND folder=?", (account, folder)
                )
            self.db.execute(
                "INSERT OR REPLACE INTO folders VALUES(?,?,?,?)",
                (account, folder, uidvalidity, digest),
            )
            self.db.execute("COMMIT")

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES(?, ?)", (key, value))

    def set_folder_digest(self, account: str, folder: str, digest: str) -> None:
        self.db.execute(
            "UPDATE folders SET skey_digest=? WHERE account=? AND folder=?",
            (digest, account, folder),
        )

    # -- messages ---------------------------------------------------------------------
    def forget_uids(self, account: str, folder: str, uids: Iterable[int]) -> None:
        """Messages gone from the server are gone from the analysis too."""
        rows = [(account, folder, u) for u in uids]
        if not rows:
            return
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            for table in ("messages", "bodies"):
                self.db.executemany(
                    f"DELETE FROM {table} WHERE account=? AND folder=? AND uid=?", rows
                )
            self._drop_table(account, folder)
            self.db.execute("COMMIT")

    def put_messages(
        self, account: str, folder: str, items: Iterable[tuple[int, bytes, str | None, int | None]]
    ) -> int:
        rows = [
            (account, folder, uid, deflate(header), structure, size)
            for uid, header, structure, size in items
        ]
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR REPLACE INTO messages VALUES(?,?,?,?,?,?)", rows)
            self.db.execute("COMMIT")
        return len(rows)

    def put_items(
        self, account: str, folder: str, item: str, values: dict[int, tuple[bytes, bool]]
    ) -> None:
        rows = [
            (account, folder, uid, item, deflate(data), int(trunc))
            for uid, (data, trunc) in values.items()
        ]
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR REPLACE INTO bodies VALUES(?,?,?,?,?,?)", rows)
            self.db.execute("COMMIT")

    # -- module results ---------------------------------------------------------------
    def put_results(
        self,
        account: str,
        folder: str,
        module: str,
        version: str,
        fp: str,
        results: dict[int, dict[str, Any]],
    ) -> None:
        if not results:
            return
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            # Results of other versions/fingerprints for this folder are dead weight now.
            self.db.execute(
                "DELETE FROM results WHERE account=? AND folder=? AND module=? "
                "AND NOT (version=? AND fingerprint=?)",
                (account, folder, module, version, fp),
            )
            row = self.db.execute(
                "SELECT COALESCE(MAX(chunk), -1) FROM results WHERE account=? AND folder=? "
                "AND module=?",
                (account, folder, module),
            ).fetchone()
            self._insert_chunk(account, folder, module, version, fp, row[0] + 1, results)
            self._drop_table(account, folder)
            self.db.execute("COMMIT")

    # -- finished tables --------------------------------------------------------------
    def put_table(
        self, account: str, folder: str, key: str, columns: dict[str, list[Any]], complete: bool
    ) -> None:
        """Keep a folder's finished columns, so a re-run that changed nothing reads one blob
        instead of decoding every message's results (seconds at 100k messages).

        `key` names what the columns were made of (the UIDs, each module's version and
        fingerprint); any new result or forgotten message for the folder drops the copy.
        `complete`: every module had a result for every message, so a re-run of the same
        key has nothing to evaluate and need not list the stored results' UIDs.
        """
        with self._lock:
            self.db.execute(
                "INSERT OR REPLACE INTO tables VALUES(?,?,?,?)",
                (account, folder, key, pack_table(columns, complete)),
            )

    def put_rendering(
        self,
        account: str,
        folder: str,
        key: str,
        render_key: bytes,
        text: str,
        when: list[float | None],
    ) -> None:
        """Keep a folder's messages.csv rows next to its table `key` (nothing when that table
        is no longer stored): any change that drops the table drops them with it."""
        self._put_section(account, folder, key, ROWS, rows_section(render_key, text, when))

    def put_counts(self, account: str, folder: str, key: str, counts: dict[str, Any]) -> None:
        """Keep the counts made from the table stored for `key` with it (see table_state)."""
        self._put_section(account, folder, key, COUNTS, counts_section(counts))

    def _put_section(self, account: str, folder: str, key: str, tag: bytes, data: bytes) -> None:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute(
                "SELECT data FROM tables WHERE account=? AND folder=? AND key=?",
                (account, folder, key),
            ).fetchone()
            blob = with_section(row[0], tag, data) if row is not None else None
            if blob is not None:
                self.db.execute(
                    "UPDATE tables SET data=? WHERE account=? AND folder=? AND key=?",
                    (blob, account, folder, key),
                )
            self.db.execute("COMMIT")

    def _drop_table(self, account: str, folder: str) -> None:
        self.db.execute("DELETE FROM tables WHERE account=? AND folder=?", (account, folder))

    def _insert_chunk(
        self,
        account: str,
        folder: str,
        module: str,
        version: str,
        fp: str,
        chunk: int,
        results: dict[int, dict[str, Any]],
    ) -> None:
        self.db.execute(
            "INSERT INTO results VALUES(?,?,?,?,?,?,?,?,?)",
            (account, folder, module, version, fp, chunk, *_pack_results(results)),
        )

    def compact_results(
        self, account: str, folder: str, module: str, version: str, fp: str, keep: set[int]
    ) -> None:
        """Merge chunks into one and drop UIDs no longer in the folder (after many re-runs)."""
        merged = {
            k: v
            for k, v in self.get_results(account, folder, module, version, fp, why=True).items()
            if k in keep
        }
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "DELETE FROM results WHERE account=? AND folder=? AND module=?",
                (account, folder, module),
            )
            self._insert_chunk(account, folder, module, version, fp, 0, merged)
            self._drop_table(account, folder)
            self.db.execute("COMMIT")

    def forget_results(self, account: str, folder: str, module: str) -> None:
        """Drop a module's cached results in a folder: the next run evaluates it again."""
        with self._lock:
            self.db.execute(
                "DELETE FROM results WHERE account=? AND folder=? AND module=?",
                (account, folder, module),
            )
            self._drop_table(account, folder)

    # -- DNS (implements services.dns.DnsStore) ----------------------------------------
    # A row is live while it has not expired, and for the run that learnt it (`run`), so
    # the worker processes of one run share answers whatever their TTL.
    def load_dns(
        self, resolver: str, now: float, run: str = ""
    ) -> Iterator[tuple[str, str, str, tuple[str, ...], float, str]]:
        cur = self.db.execute(
            "SELECT name, rdtype, status, records, expires, run FROM dns "
            "WHERE resolver=? AND (expires > ? OR run = ?)",
            (resolver, now, run),
        )
        for name, rdtype, status, records, expires, r in cur:
            yield name, rdtype, status, tuple(json.loads(records)), expires, r

    def lookup_dns(
        self, resolver: str, keys: list[tuple[str, str]], now: float, run: str = ""
    ) -> Iterator[tuple[str, str, str, tuple[str, ...], float, str]]:
        # One statement per 400 names, not one per key: a worker's prefetch asks the store
        # for every name its memo lacks, a thousand per batch, and nearly all are new. The
        # name list is padded to one of a few lengths: sqlite3 keeps every distinct statement
        # text prepared, and one per length (1 to 400) held 12 MB in each analysis worker.
        wanted = set(keys)
        names = sorted({name for name, _ in wanted})
        for i in range(0, len(names), _LOOKUP_SIZES[-1]):
            chunk = names[i : i + _LOOKUP_SIZES[-1]]
            size = next(n for n in _LOOKUP_SIZES if n >= len(chunk))
            chunk += [chunk[-1]] * (size - len(chunk))
            cur = self.db.execute(
                "SELECT name, rdtype, status, records, expires, run FROM dns WHERE resolver=? "
                f"AND name IN ({','.join('?' * len(chunk))}) AND (expires > ? OR run = ?)",
                (resolver, *chunk, now, run),
            )
            for name, rdtype, status, records, expires, r in cur:
                if (name, rdtype) in wanted:
                    yield name, rdtype, status, tuple(json.loads(records)), expires, r

    def save_dns(
        self, resolver: str, rows: list[tuple[str, str, str, tuple[str, ...], float, str]]
    ) -> None:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                "INSERT OR REPLACE INTO dns VALUES(?,?,?,?,?,?,?)",
                [
                    (resolver, n, t, s, json.dumps(list(r)) if r else "[]", e, run)
                    for n, t, s, r, e, run in rows
                ],  # most answers are NXDOMAIN: no records to encode
            )
            self.db.execute("COMMIT")

    def purge_dns(self, resolver: str) -> None:
        """Forget every answer of one resolver (it was found lying)."""
        with self._lock:
            self.db.execute("DELETE FROM dns WHERE resolver=?", (resolver,))

    def export_dns(self, resolver: str | None = None) -> list[dict[str, Any]]:
        """Live stored answers (of one resolver, or all), for the demo's DNS snapshot."""
        cur = self.db.execute(
            "SELECT name, rdtype, status, records FROM dns WHERE expires > ? "
            "AND (? IS NULL OR resolver = ?) ORDER BY 1, 2",
            (time.time(), resolver, resolver),
        )
        return [{"name": n, "type": t, "status": s, "records": json.loads(r)} for n, t, s, r in cur]

    def import_dns(self, entries: list[dict[str, Any]], expires: float, resolver: str) -> None:
        self.save_dns(
            resolver,
            [
                (e["name"], e["type"], e["status"], tuple(e["records"]), expires, "")
                for e in entries
            ],
        )
