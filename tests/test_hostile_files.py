"""Hostile files around a run, through `python -m mailstats --batch` as a child process.

The cache setting naming a file that is not a mailstats cache (text, a symlink to one, an
other program's SQLite database, a folder, a FIFO) is refused with exit 2 and the file is
left exactly as it was (content digest, mode, size, mtime); a damaged cache (truncated,
garbage pages) is moved aside with a warning naming both paths and rebuilt. `--out` that
cannot be written is refused before any work. Control characters never reach a CSV cell.
An unexpected exception is one line naming what failed, the exit code and the log file.
`password_env` naming an unset variable says so, also when the account ran on a Dask worker.
"""

from __future__ import annotations

import csv
import os
import random
import sqlite3
import sys
from pathlib import Path

import pytest
from cli_child import (
    assert_clean,
    fingerprint,
    make_maildir,
    plain_message,
    run_child,
    write_accounts,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from mailstats.stats.export import safe_cell


def _maildir(tmp_path: Path, n: int = 3) -> Path:
    return make_maildir(tmp_path / "maildir", [plain_message(i) for i in range(n)])


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return _maildir(tmp_path)


# -- the cache path ------------------------------------------------------------------------


def _foreign_sqlite(path: Path) -> Path:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes(id INTEGER PRIMARY KEY, text TEXT)")
    db.execute("INSERT INTO notes(text) VALUES ('my notes')")
    db.commit()
    db.close()
    return path


def _not_a_cache(kind: str, tmp_path: Path) -> tuple[Path, Path]:
    """(the path given as cache, the file that must stay untouched)."""
    tmp_path = tmp_path / "victim"
    tmp_path.mkdir()
    victim = tmp_path / "precious.txt"
    victim.write_text("root:x:0:0:root:/root:/bin/bash\n")
    victim.chmod(0o644)
    if kind == "text":
        return victim, victim
    if kind == "symlink":
        link = tmp_path / "cache.sqlite"
        link.symlink_to(victim)
        return link, victim
    if kind == "symlink-to-sqlite":
        target = _foreign_sqlite(tmp_path / "other.db")
        target.chmod(0o644)
        link = tmp_path / "cache.sqlite"
        link.symlink_to(target)
        return link, target
    if kind == "foreign-sqlite":
        target = _foreign_sqlite(tmp_path / "other.db")
        target.chmod(0o644)
        return target, target
    if kind == "folder":
        return tmp_path, victim
    if kind == "fifo":
        fifo = tmp_path / "cache.fifo"
        os.mkfifo(fifo)
        return fifo, fifo
    if kind == "empty-not-ours":
        empty = tmp_path / "empty"
        empty.write_bytes(b"")
        empty.chmod(0o644)
        return empty, empty
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    ["text", "symlink", "symlink-to-sqlite", "foreign-sqlite", "folder", "fifo", "empty-not-ours"],
)
def test_cache_that_is_not_a_mailstats_cache_is_refused_untouched(
    kind: str, tmp_path: Path, store: Path
) -> None:
    given_path, victim = _not_a_cache(kind, tmp_path)
    before = fingerprint(victim)
    folder = tmp_path / "victim"
    siblings = sorted(p.name for p in folder.iterdir())
    cfg = write_accounts(tmp_path / "acc.toml", store, cache=given_path)
    child = run_child(["--batch", str(cfg), "--out", str(tmp_path / "out"), "-q"], tmp_path)
    assert_clean(child)
    assert child.code == 2, child.stderr
    assert len(child.lines()) == 1 and str(given_path) in child.stderr, child.stderr
    assert fingerprint(victim) == before
    # nothing created next to it either (no SQLite -wal, -shm or -journal)
    assert sorted(p.name for p in folder.iterdir()) == siblings
    assert not (tmp_path / "out").exists()  # a usage error leaves no trace


def _good_cache(tmp_path: Path, store: Path) -> Path:
    cache = tmp_path / "cache.sqlite"
    cfg = write_accounts(tmp_path / "acc.toml", store, cache=cache)
    child = run_child(["--batch", str(cfg), "--out", str(tmp_path / "out0"), "-q"], tmp_path)
    assert child.code == 0, child.stderr
    assert not Path(str(cache) + "-wal").exists()  # closed cleanly: the damage is all there is
    return cache


def _truncate(cache: Path) -> None:
    data = cache.read_bytes()
    cache.write_bytes(data[: len(data) // 2])


def _garbage_pages(cache: Path) -> None:
    data = bytearray(cache.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    rng = random.Random(11)
    for p in range(1, len(data) // page):  # every page but the first (the header stays)
        start = p * page
        data[start : start + page] = rng.randbytes(page)
    cache.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _garbage_pages], ids=["truncated", "garbage"])
def test_damaged_cache_is_moved_aside_and_rebuilt(damage, tmp_path: Path, store: Path) -> None:
    cache = _good_cache(tmp_path, store)
    damage(cache)
    damaged = fingerprint(cache)
    cfg = tmp_path / "acc.toml"
    child = run_child(["--batch", str(cfg), "--out", str(tmp_path / "out"), "-q"], tmp_path)
    assert_clean(child)
    assert child.code == 0, child.stderr
    asides = tmp_path.glob("cache.sqlite.damaged-*")
    asides = [p for p in asides if not p.name.endswith(("-wal", "-shm"))]
    assert len(asides) == 1
    aside = asides[0]
    assert fingerprint(aside)[:3] == damaged[:3]  # renamed as it was, not rewritten
    warning = [line for line in child.lines() if "damaged" in line]
    assert len(warning) == 1 and str(cache) in warning[0] and str(aside) in warning[0]
    rows = list(csv.DictReader((tmp_path / "out" / "messages.csv").open()))
    assert len(rows) == 3
    assert (cache.stat().st_mode & 0o777) == 0o600
    db = sqlite3.connect(cache)
    assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 3
    db.close()
    import json

    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert any(str(aside) in w for w in manifest["warnings"])


def test_cache_left_open_by_a_killed_run_is_checked_page_by_page(tmp_path: Path) -> None:
    """One garbage leaf page deep in the messages table: the cheap checks at open do not
    read it; a cache a run did not close (killed, crashed) gets SQLite's quick_check."""
    store = _maildir(tmp_path, n=300)
    cache = _good_cache(tmp_path, store)
    db = sqlite3.connect(cache)
    assert db.execute("SELECT value FROM meta WHERE key='closed'").fetchone() == ("1",)
    db.execute("UPDATE meta SET value='0' WHERE key='closed'")  # as a killed run leaves it
    db.commit()
    page = db.execute("PRAGMA page_size").fetchone()[0]
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.close()
    data = bytearray(cache.read_bytes())
    last = (pages - 1) * page
    data[last : last + page] = random.Random(5).randbytes(page)
    cache.write_bytes(bytes(data))
    child = run_child(
        ["--batch", str(tmp_path / "acc.toml"), "--out", str(tmp_path / "out"), "-q"], tmp_path
    )
    assert_clean(child)
    assert child.code == 0, child.stderr
    assert "integrity check" in child.stderr and "moved it to" in child.stderr, child.stderr
    rows = list(csv.DictReader((tmp_path / "out" / "messages.csv").open()))
    assert len(rows) == 300


def test_sound_cache_is_kept(tmp_path: Path, store: Path) -> None:
    cache = _good_cache(tmp_path, store)
    cache.chmod(0o644)  # a cache from an older version: made private again
    child = run_child(
        ["--batch", str(tmp_path / "acc.toml"), "--out", str(tmp_path / "out"), "-q"], tmp_path
    )
    assert child.code == 0 and child.lines() == [], child.stderr
    assert not list(tmp_path.glob("*.damaged-*"))
    assert (cache.stat().st_mode & 0o777) == 0o600


# -- outputs ---------------------------------------------------------------------------------


def _unwritable_folder(tmp_path: Path) -> Path:
    if os.geteuid() == 0:  # root writes through any mode bits: a kernel folder refuses it
        if not Path("/sys/kernel").is_dir():
            pytest.skip("no folder root cannot write to")
        return Path("/sys/kernel")
    ro = tmp_path / "readonly"
    ro.mkdir()
    ro.chmod(0o500)
    return ro


@pytest.mark.parametrize("kind", ["file", "under-a-file", "unwritable", "output-is-a-folder"])
def test_out_that_cannot_be_written_is_refused_before_any_work(
    kind: str, tmp_path: Path, store: Path
) -> None:
    victim = tmp_path / "notes.txt"
    victim.write_text("keep me\n")
    before = fingerprint(victim)
    if kind == "file":
        out = victim
    elif kind == "under-a-file":
        out = victim / "results"
    elif kind == "unwritable":
        out = _unwritable_folder(tmp_path)
    else:
        out = tmp_path / "results"
        (out / "summary.csv").mkdir(parents=True)
    cache = tmp_path / "cache.sqlite"
    cfg = write_accounts(tmp_path / "acc.toml", store, cache=cache)
    child = run_child(["--batch", str(cfg), "--out", str(out), "-q"], tmp_path)
    assert_clean(child)
    assert child.code == 2, child.stderr
    assert len(child.lines()) == 1 and "--out" in child.stderr, child.stderr
    assert not cache.exists()  # refused before any work: not even the cache was opened
    assert fingerprint(victim) == before


def test_control_characters_never_reach_a_csv_cell(tmp_path: Path) -> None:
    # every control character a header line can hold (CR and LF would end the line)
    nasty = "".join(chr(c) for c in [*range(32), 127, 0x85, 0x9B] if c not in (10, 13))
    raw = (
        f"From: Evil{nasty} <evil\x00x@sender.example>\r\nTo: dana@example.org\r\n"
        f"Message-ID: <id\x00{nasty}@sender.example>\r\nSubject: x\r\n"
        "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nhello\r\n"
    ).encode("utf-8", "surrogateescape")
    plain = b"From: a@b.example\r\nMessage-ID: <plain@b.example>\r\n\r\nhi\r\n"
    store = make_maildir(tmp_path / "maildir", [raw, plain])
    cfg = write_accounts(tmp_path / "acc.toml", store, cache=tmp_path / "c.sqlite")
    child = run_child(["--batch", str(cfg), "--out", str(tmp_path / "out"), "-q"], tmp_path)
    assert_clean(child)
    assert child.code == 0, child.stderr
    for name in ("messages.csv", "summary.csv", "indicators.csv", "mailboxes.csv"):
        data = (tmp_path / "out" / name).read_bytes()
        body = data.replace(b"\r\n", b"")  # the row separators the csv module writes
        bad = sorted({b for b in body if b < 32 or b == 127})
        assert bad == [], (name, bad)
        assert "\x85" not in data.decode() and "\x9b" not in data.decode()
    rows = list(csv.DictReader((tmp_path / "out" / "messages.csv").open(newline="")))
    assert len(rows) == 2  # one row per message: nothing split a row
    evil = next(r for r in rows if "plain" not in r["message_id"])
    assert evil["message_id"].startswith("id\\x00\\x00\\x01"), evil
    assert "\\x00" in evil["from_address"], evil


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(value=st.text(alphabet=st.characters(codec="utf-8")))
def test_safe_cell_has_no_control_characters(value: str) -> None:
    cell = safe_cell(value)
    assert not any(ord(c) < 32 or 127 <= ord(c) <= 159 for c in cell), repr(cell)
    assert not cell.startswith(("=", "+", "-", "@"))
    if value.isprintable() and not value.startswith(("=", "+", "-", "@")):
        assert cell == value  # ordinary text is left alone


# -- no traceback, ever ---------------------------------------------------------------------

_CRASH = """
import sys
import mailstats.stats.export as export
from mailstats import cli

def broken(*args, **kwargs):
    raise ZeroDivisionError("a bug nobody foresaw")

export.write_outputs = broken
sys.exit(cli.main(sys.argv[1:]))
"""

_GUI_CRASH = """
import sys, threading, types
from mailstats import cli

def gui_main():
    t = threading.Thread(target=lambda: 1 / 0)  # a worker thread's bug: the GUI goes on
    t.start()
    t.join()
    raise KeyError("a GUI bug")

sys.modules["mailstats.gui.app"] = types.SimpleNamespace(main=gui_main)
sys.exit(cli.main([]))
"""


def _log_from(line: str) -> Path:
    assert "the traceback is in " in line, line
    return Path(line.split("the traceback is in ", 1)[1].rstrip(")").strip())


def test_unexpected_exception_is_one_line_and_a_log_file(tmp_path: Path, store: Path) -> None:
    cfg = write_accounts(tmp_path / "acc.toml", store, cache=tmp_path / "c.sqlite")
    child = run_child(
        ["--batch", str(cfg), "--out", str(tmp_path / "out"), "-q"], tmp_path, code=_CRASH
    )
    assert_clean(child)
    assert child.code == 1
    (line,) = child.lines()
    assert "while writing the outputs to" in line
    assert "ZeroDivisionError: a bug nobody foresaw" in line and "exit code 1" in line
    log = _log_from(line)
    assert log.is_relative_to(tmp_path / "xdg-state")  # the user's log folder (platformdirs)
    assert (log.stat().st_mode & 0o777) == 0o600
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "def broken" not in text
    assert "in broken" in text and "a bug nobody foresaw" in text


def test_gui_entry_is_guarded_too(tmp_path: Path) -> None:
    child = run_child([], tmp_path, code=_GUI_CRASH)
    assert_clean(child)
    assert child.code == 1
    lines = child.lines()
    assert len(lines) == 2, lines  # the thread's bug, then the GUI's: one line each
    assert "ZeroDivisionError" in lines[0] and "while running the desktop window" in lines[0]
    assert "KeyError: 'a GUI bug'" in lines[1] and "exit code 1" in lines[1]
    for line in lines:
        assert "Traceback" in _log_from(line).read_text()


def test_unreadable_accounts_file_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "acc.toml"
    bad.write_bytes(b"\xff\xfe[settings\x00")
    child = run_child(["--batch", str(bad), "--out", str(tmp_path / "out"), "-q"], tmp_path)
    assert_clean(child)
    assert child.code == 2 and len(child.lines()) == 1, child.stderr


# -- password_env ----------------------------------------------------------------------------

_IMAP_ACCOUNT = """
[[accounts]]
name = "work"
host = "127.0.0.1"
port = {port}
security = "none"
username = "dana@example.org"
password_env = "MAILSTATS_TEST_PW_UNSET"
ham = ["INBOX"]
"""


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_password_env_unset_says_so(tmp_path: Path, store: Path) -> None:
    cfg = write_accounts(
        tmp_path / "acc.toml",
        store,
        cache=tmp_path / "c.sqlite",
        extra_accounts=_IMAP_ACCOUNT.format(port=_closed_port()),
    )
    child = run_child(["--batch", str(cfg), "--out", str(tmp_path / "out"), "-q"], tmp_path)
    assert_clean(child)
    assert child.code == 1, child.stderr
    assert "MAILSTATS_TEST_PW_UNSET is not set" in child.stderr
    assert "password" not in child.stderr.lower().replace("password_env", "")
    rows = list(csv.DictReader((tmp_path / "out" / "messages.csv").open()))
    assert {r["account"] for r in rows} == {"local"} and len(rows) == 3  # the other one ran


def test_password_env_unset_on_a_dask_worker_says_so(tmp_path: Path, store: Path) -> None:
    distributed = pytest.importorskip("distributed")
    os.environ.pop("MAILSTATS_TEST_PW_UNSET", None)  # the workers inherit this environment
    cfg = write_accounts(
        tmp_path / "acc.toml",
        None,
        cache=tmp_path / "c.sqlite",
        extra_accounts=_IMAP_ACCOUNT.format(port=_closed_port()),
    )
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
        silence_logs=40,
    ) as lc:
        # set where the batch starts, unset where the account runs: the worker must say so
        child = run_child(
            [
                "--batch",
                str(cfg),
                "--out",
                str(tmp_path / "out"),
                "-q",
                "--scheduler",
                lc.scheduler_address,
            ],
            tmp_path,
            MAILSTATS_TEST_PW_UNSET="set-only-where-the-batch-starts",
        )
    assert_clean(child)
    assert child.code == 1, child.stderr
    assert "MAILSTATS_TEST_PW_UNSET is not set" in child.stderr, child.stderr
    assert "wrong user name" not in child.stderr
    assert "set-only-where" not in child.stderr


if sys.platform != "linux":  # FIFOs, /sys and O_NOFOLLOW semantics are Linux's here
    pytestmark = pytest.mark.skip("Linux only")
