"""Opening the cache file: only ever a file that is a mailstats cache.

`cache` is a user setting, so it can name any file: /etc/passwd, a symlink to a document, an
other program's SQLite database. Nothing is chmod'ed or written until the file is known to
be ours: created here (O_EXCL, 0600), or an SQLite database with our tables. A damaged cache
(truncated, garbage pages) is renamed aside, never deleted or written: it only holds what can
be fetched again, so a new one is started and the user is told both paths.
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import time
from pathlib import Path


class CacheError(Exception):
    """The cache path cannot be used (not a mailstats cache, a link, unwritable): worded for
    the user, who fixes the setting; nothing was changed on disk."""


_SQLITE_MAGIC = b"SQLite format 3\x00"
_TABLE_NAME = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)")


def open_own(path: Path, warnings: list[str], schema: str) -> sqlite3.Connection:
    """A connection to the cache at `path`, created 0600 when missing; CacheError otherwise."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    else:
        os.close(fd)  # created 0600 before SQLite opens it: never world-readable
        return _connect(path, schema)
    problem = _check_existing(path, set(_TABLE_NAME.findall(schema)))
    problem = " ".join(problem.split())  # SQLite's reports span lines
    if problem:
        aside = _move_aside(path)
        warnings.append(
            f"cache {path} is damaged ({problem}); moved it to {aside} and started a new one"
            " (it only held what can be fetched again)"
        )
        return open_own(path, warnings, schema)
    chmod_own(path)
    try:
        db = _connect(path, schema)
        db.execute("SELECT 1 FROM meta LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        raise CacheError(f"cache {path}: cannot open it: {exc}") from None
    return db


def _connect(path: Path, schema: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    # Several engines (--jobs) may share the file: wait for the writer instead of failing.
    db.execute("PRAGMA busy_timeout=60000")
    db.executescript(schema)
    return db


def _check_existing(path: Path, names: set[str]) -> str:
    """'' when `path` is a sound mailstats cache, else why it is damaged; CacheError when it
    is not a mailstats cache at all (then it is left exactly as it was)."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise CacheError(
            f"cache {path} is a symbolic link; refusing to follow it (name the cache file"
            " itself, or a path that does not exist yet)"
        )
    if stat.S_ISDIR(st.st_mode):
        raise CacheError(f"cache {path} is a folder; name a file (e.g. {path}/cache.sqlite)")
    if not stat.S_ISREG(st.st_mode):
        raise CacheError(f"cache {path} is not a regular file; refusing to use it")
    with open(path, "rb", opener=_nofollow_opener) as fh:
        head = fh.read(100)
        size = os.fstat(fh.fileno()).st_size
    if size == 0:
        # What a run leaves when it stops between creating the file and SQLite's first
        # write; an empty file that is not 0600 and ours is somebody else's.
        if st.st_uid == os.geteuid() and not st.st_mode & 0o077:
            return ""
        raise CacheError(f"cache {path} is an empty file that mailstats did not create")
    if not head.startswith(_SQLITE_MAGIC):
        raise CacheError(
            f"cache {path} is not a mailstats cache (not an SQLite database); refusing to"
            " change it (name another path, or remove it if it was a damaged cache)"
        )
    truncated = _truncated(head, size)
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return str(exc)
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        # Ours: a `meta` table holding our schema key, or only tables of our schema (one
        # being created by another mailstats process right now, or none yet).
        ours = tables <= names or (
            "meta" in tables
            and db.execute("SELECT 1 FROM meta WHERE key='schema'").fetchone() is not None
        )
        if not ours:
            if truncated:
                return truncated
            raise CacheError(
                f"cache {path} is an SQLite database of another program (no mailstats tables);"
                " refusing to change it"
            )
        if truncated:
            return truncated
        for table in sorted(tables & names):  # each table's first pages: cheap, often enough
            db.execute(f"SELECT * FROM {table} LIMIT 1").fetchall()
        if "meta" not in tables:
            return ""  # being created: nothing to check yet
        # quick_check reads every page (0.6 s for a 100k-message cache of 317 MB, half a
        # re-run), so only after a run that did not close the cache: a crash, a kill, a
        # full disk. A cleanly closed cache damaged since then shows in the pages read above,
        # or as an error naming the cache during the run.
        closed = db.execute("SELECT value FROM meta WHERE key='closed'").fetchone()
        if closed is None or closed[0] != "1":
            verdict = db.execute("PRAGMA quick_check(1)").fetchone()
            if verdict is None or verdict[0] != "ok":
                return f"integrity check: {verdict[0] if verdict else 'no answer'}"
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        db.close()
    return ""


def _truncated(head: bytes, size: int) -> str:
    """The file is shorter than the page count its SQLite header records."""
    if len(head) < 100:
        return "shorter than an SQLite header"
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    valid = head[24:28] == head[92:96]  # the in-header size is current
    if valid and pages and size < pages * page_size:
        return f"truncated: {size} of {pages * page_size} bytes"
    return ""


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    os.rename(path, aside)
    # The damaged file's WAL would be replayed into the new cache: it goes along.
    for suffix in ("-wal", "-shm"):
        side = Path(str(path) + suffix)
        if side.is_file() and not side.is_symlink():
            os.rename(side, Path(str(aside) + suffix))
    return aside


def _nofollow_opener(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK)


def chmod_own(path: Path) -> None:
    """0600 on a regular file at `path` itself (a link there is left alone).

    By path, never through a descriptor of its own: closing any descriptor of a file drops
    every POSIX lock this process holds on it, and SQLite's locks on the cache's -shm file
    are such locks. Dropped (the window opens the cache again for each run, so does each
    analysis worker), the next process to open the cache took itself for its only user,
    truncated the shared memory file, and the processes that had it mapped died of SIGBUS.
    """
    try:
        st = os.lstat(path)
    except OSError:
        return
    if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) != 0o600:
        try:
            os.chmod(path, 0o600)
        except OSError:
            pass
