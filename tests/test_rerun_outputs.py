"""A re-run that reuses what the cache kept writes exactly what a full recompute writes.

The fast path of a re-run (a stored complete table: no result UIDs listed, nothing
evaluated, the columns read from one blob) must give byte-identical outputs to a cold run
over an empty cache, and every change that must invalidate it (a new message, a removed
one, a module added or removed, a setting that changes a fingerprint) must do so.
"""

from __future__ import annotations

import mailbox
from pathlib import Path
from typing import Any

import pytest

from fixtures.generator import generate_mailbox
from mailstats.accounts.config import parse_config
from mailstats.run import counting
from mailstats.run.cache import Cache, CacheReader
from mailstats.run.engine import Engine
from mailstats.stats.export import write_outputs

#: Modules that need no DNS answers (the resolver here is a closed port) but cover checks,
#: extras, the sent index (friends, reply) and body/raw items (attachments, images).
MODULES = ["received", "auth", "datetime", "list", "internal", "personal", "friends", "reply"]
MORE = ["attachments", "images"]
#: One clock for every run: messages.csv's age_days depends on it.
NOW = 1_800_000_000.0
COMPARED = ("summary.csv", "messages.csv", "indicators.csv", "mailboxes.csv")


@pytest.fixture(autouse=True)
def small_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep tables from 20 messages on (1000 in real runs) so the test stays small."""
    monkeypatch.setattr(counting, "SNAPSHOT_MIN", 20)


def _write_store(root: Path) -> None:
    """INBOX, Junk and Sent as mbox files."""
    box = generate_mailbox(5, 40, 30, 24, dns_failures=False)
    root.mkdir()
    for name, msgs in box.folders.items():
        _add(root / f"{name}.mbox", [m.raw for m in msgs])


def _add(path: Path, raws: list[bytes]) -> None:
    """Append (mbox keeps the earlier messages, so they keep their UIDs and results)."""
    mb = mailbox.mbox(path)
    for raw in raws:
        mb.add(raw)
    mb.flush()
    mb.close()


def _config(
    store: Path, cache: Path, modules: list[str], account: dict[str, Any] | None = None
) -> Any:
    return parse_config(
        {
            "settings": {
                "modules": modules,
                "dns_servers": ["127.0.0.1:9"],
                "cache": str(cache),
                "analysis_workers": 0,
            },
            "accounts": [
                {
                    "name": "local",
                    "path": str(store),
                    "ham": ["INBOX"],
                    "spam": ["Junk"],
                    "sent": ["Sent"],
                    "address": "dana@example.org",
                    "own_domains": ["example.org"],
                    **(account or {}),
                }
            ],
        }
    )


def _run(
    cfg: Any, out: Path, keep_tables: bool = False, now: float = NOW
) -> tuple[dict[str, bytes], Any]:
    """The outputs of one run; the batch run's way (tables read back from the cache when
    the outputs are written, messages.csv's rows kept there) unless `keep_tables` (the
    GUI's: tables kept in memory, nothing kept for messages.csv)."""
    cache = Cache(cfg.settings.cache)
    engine = Engine(cfg, cache=cache)
    engine.keep_tables = keep_tables
    result = engine.run()
    results = engine.results(result)
    if not keep_tables:
        results.store = cache
    write_outputs(results, result, out, now=now)
    results.close()
    cache.close()
    return {name: (out / name).read_bytes() for name in COMPARED}, result


def _cold(tmp: Path, store: Path, modules: list[str], tag: str, **account: Any) -> dict:
    """The outputs of a full recompute: a run over an empty cache."""
    cfg = _config(store, tmp / f"cold-{tag}.sqlite", modules, account)
    return _run(cfg, tmp / f"cold-{tag}", keep_tables=True)[0]


def _reused(out: Path) -> int:
    import json

    return int(json.loads((out / "manifest.json").read_text())["messages_rows_reused"])


def _evaluated(result: Any) -> int:
    return sum(f.evaluated for a in result.accounts for f in a.folders)


def test_warm_rerun_equals_cold_and_every_change_invalidates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "mail"
    _write_store(store)
    warm_cache = tmp_path / "warm.sqlite"
    cfg = _config(store, warm_cache, MODULES)
    first, result = _run(cfg, tmp_path / "first")
    assert _evaluated(result) > 0
    assert b"received." in first["messages.csv"] and first["messages.csv"].count(b"\n") > 80

    # The warm re-run: nothing evaluated, no module's result UIDs listed (the fast path).
    listed: list[str] = []
    real = CacheReader.result_uids

    def spy(self: CacheReader, *args: Any) -> set[int]:
        listed.append(args[2])
        return real(self, *args)

    monkeypatch.setattr(CacheReader, "result_uids", spy)
    again, result = _run(cfg, tmp_path / "again")
    assert _evaluated(result) == 0
    assert listed == [], "a complete stored table must make listing result UIDs unnecessary"
    assert again == first
    assert again == _cold(tmp_path, store, MODULES, "same")
    # messages.csv's rows came from the rendering the first run kept (every folder is big
    # enough to keep a table here), with age_days of this run's clock
    assert _reused(tmp_path / "again") == first["messages.csv"].count(b"\n") - 1
    later = NOW + 3.5 * 86400
    aged, _ = _run(cfg, tmp_path / "aged", now=later)
    assert _reused(tmp_path / "aged") > 0
    cold_aged = _run(
        _config(store, tmp_path / "cold-aged.sqlite", MODULES), tmp_path / "cold-aged", True, later
    )[0]
    assert aged == cold_aged != first

    # One new message (appended: the older UIDs stay): evaluated, and the same as cold.
    _add(store / "INBOX.mbox", [generate_mailbox(6, 1, 0, 0).folders["INBOX"][0].raw])
    grown, result = _run(cfg, tmp_path / "grown")
    assert _evaluated(result) == 1
    assert grown == _cold(tmp_path, store, MODULES, "grown") != first

    # A module added, then removed again.
    more = _config(store, warm_cache, MODULES + MORE)
    added, _ = _run(more, tmp_path / "added")
    assert added == _cold(tmp_path, store, MODULES + MORE, "added") != grown
    fewer = _config(store, warm_cache, MODULES[:-2])
    removed, _ = _run(fewer, tmp_path / "removed")
    assert removed == _cold(tmp_path, store, MODULES[:-2], "removed")
    assert removed != grown

    # A setting that changes what the core fields mean (the trusted relays: origin IPs).
    relays = {"trusted_relays": ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"]}
    relayed, _ = _run(_config(store, warm_cache, MODULES, relays), tmp_path / "relayed")
    assert relayed == _cold(tmp_path, store, MODULES, "relays", **relays)

    # The folders' roles swapped: the same tables, other rows in messages.csv.
    swap = {"ham": ["Junk"], "spam": ["INBOX"]}
    swapped, _ = _run(_config(store, warm_cache, MODULES, swap), tmp_path / "swapped")
    assert swapped == _cold(tmp_path, store, MODULES, "swapped", **swap) != grown

    # A message removed (the mbox is rewritten: the folder is analysed afresh).
    mb = mailbox.mbox(store / "Junk.mbox")
    mb.remove(next(iter(mb.keys())))
    mb.flush()
    mb.close()
    shrunk, _ = _run(cfg, tmp_path / "shrunk")
    assert shrunk == _cold(tmp_path, store, MODULES, "shrunk") != grown


def test_stored_table_of_an_older_format_or_damaged_is_made_again(tmp_path: Path) -> None:
    """A table blob this version cannot read (the JSON of the version before, or damaged
    bytes) is never used: the columns are made again from the results, and stored anew."""
    store = tmp_path / "mail"
    _write_store(store)
    cache_path = tmp_path / "c.sqlite"
    cfg = _config(store, cache_path, MODULES)
    first, _ = _run(cfg, tmp_path / "first")
    for blob in (b"x\x9c" + b"\0" * 40, b"MST2\x01garbage", b""):
        db = Cache(cache_path)
        n = db.db.execute("UPDATE tables SET data=?", (blob,)).rowcount
        db.close()
        assert n >= 2
        again, result = _run(cfg, tmp_path / "again")
        assert again == first
        assert _evaluated(result) == 0
        db = Cache(cache_path)
        kept = [r[0][:4] for r in db.db.execute("SELECT data FROM tables")]
        db.close()
        assert kept and all(k == b"MST4" for k in kept)
    # a kept rendering that is damaged, or does not fit the folder, is rendered again
    from mailstats.run.cache_blobs import (
        ROWS,
        rendering_of,
        rows_section,
        table_sections,
        with_section,
    )

    db = Cache(cache_path)
    rows = db.db.execute("SELECT account, folder, data FROM tables").fetchall()
    assert rows and all(ROWS in table_sections(r[2])[1] for r in rows)
    for account, folder, data in rows:
        render_key = table_sections(data)[1][ROWS][:32]
        text, when = rendering_of(data, render_key)
        assert len(when) > 1 and text
        # one row where the folder has many: it cannot be these rows, so they are rendered again
        broken = with_section(data, ROWS, rows_section(render_key, "one row\x01 only\r\n", [None]))
        db.db.execute(
            "UPDATE tables SET data=? WHERE account=? AND folder=?", (broken, account, folder)
        )
    db.close()
    again, _ = _run(cfg, tmp_path / "again")
    assert again == first and _reused(tmp_path / "again") == 0
    again, _ = _run(cfg, tmp_path / "again")
    assert again == first and _reused(tmp_path / "again") > 0


def test_a_table_stored_by_a_cancelled_run_is_completed_next_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run cancelled while a module added to the set was half done stores the folder's
    table as incomplete: the next run evaluates the rest instead of taking the table."""
    import threading

    from mailstats.run import engine as engine_mod

    monkeypatch.setattr(engine_mod, "EVAL_BATCH", 10)
    store = tmp_path / "mail"
    _write_store(store)
    cache_path = tmp_path / "c.sqlite"
    _run(_config(store, cache_path, MODULES[:-1]), tmp_path / "first")

    cancel = threading.Event()

    def stop_after_first_batch(p: Any) -> None:
        if p.phase == "analyse" and p.done:
            cancel.set()

    cache = Cache(cache_path)
    engine = Engine(_config(store, cache_path, MODULES), cache=cache)
    engine.run(progress=stop_after_first_batch, cancel=cancel)
    cache.close()
    stored = Cache(cache_path)
    flags = [r[0][4] for r in stored.db.execute("SELECT data FROM tables")]
    stored.close()
    assert 0 in flags, "the half-done folder's table must be stored as incomplete"

    done, result = _run(_config(store, cache_path, MODULES), tmp_path / "done")
    assert _evaluated(result) > 0
    assert done == _cold(tmp_path, store, MODULES, "all")


def test_a_rerun_with_nothing_new_decodes_no_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing new: summary.csv comes from the counts kept with each table and messages.csv
    from the rows kept with it, so no folder's columns are decoded (two decodes per folder
    were most of a 100k re-run); the outputs are those of a cold run, on another day too."""
    cfg, _, first, _ = _warm(tmp_path)
    store = tmp_path / "mail"
    _run(cfg, tmp_path / "second")  # the first run keeps counts; messages.csv's rows too
    from mailstats.run import cache as cache_mod

    with monkeypatch.context() as m:
        m.setattr(cache_mod, "unpack_table", _no_columns)
        again, result = _run(cfg, tmp_path / "again")
        later, _ = _run(cfg, tmp_path / "later", now=NOW + 3 * 86400)
    assert again == first and _evaluated(result) == 0
    assert _reused(tmp_path / "again") == sum(
        len(f.uids) for a in result.accounts for f in a.folders
    )
    cold_later, _ = _run(
        _config(store, tmp_path / "cold.sqlite", MODULES),
        tmp_path / "cold-later",
        True,
        now=NOW + 3 * 86400,
    )
    assert later == cold_later != first


def _warm(tmp: Path) -> tuple[Any, Path, dict[str, bytes], Any]:
    """(config, cache path, outputs, result) of a first run over a fresh store and cache."""
    store = tmp / "mail"
    _write_store(store)
    cache_path = tmp / "c.sqlite"
    cfg = _config(store, cache_path, MODULES)
    first, result = _run(cfg, tmp / "first")
    return cfg, cache_path, first, result


def _no_columns(blob: bytes) -> None:
    raise AssertionError("a folder's columns were decoded")


def _change_kept_counts(cache_path: Path, change: Any, folder: str | None = None) -> int:
    """Rewrite the counts kept with each stored table (or one folder's) as `change` returns
    them from what is kept; how many tables were rewritten."""
    from mailstats.run.cache_blobs import COUNTS, _pack, counts_of, with_section

    db = Cache(cache_path)
    rows = db.db.execute("SELECT account, folder, key, data FROM tables").fetchall()
    n = 0
    for account, name, key, data in rows:
        if folder is not None and name != folder:
            continue
        complete, kept = counts_of(data)
        assert complete and kept is not None
        db.db.execute(
            "UPDATE tables SET data=? WHERE account=? AND folder=? AND key=?",
            (with_section(data, COUNTS, _pack(change(kept))), account, name, key),
        )
        n += 1
    db.close()
    return n


@pytest.mark.parametrize("damage", ["other code", "a check missing", "not counts"])
def test_kept_counts_that_do_not_fit_are_counted_again(tmp_path: Path, damage: str) -> None:
    """Counts kept by another version of the counting code, or that lack a check of the run,
    or are not counts at all, are never used: the folder is counted from its columns."""
    cfg, cache_path, first, _ = _warm(tmp_path)

    def damaged(kept: dict) -> dict:
        if damage == "not counts":
            return {"counts": "none"}
        if damage == "other code":
            kept["code"] = "0" * 32
        else:
            kept["counts"].pop(next(iter(kept["counts"])))
        for pair in kept["counts"].values():  # every count off by one: used, they would show
            pair[0] += 1
        return kept

    assert _change_kept_counts(cache_path, damaged) >= 2
    again, result = _run(cfg, tmp_path / "again")
    assert again == first and _evaluated(result) == 0


def test_kept_counts_are_used(tmp_path: Path) -> None:
    """The counts kept with a table are what a re-run reports (else the tests above would
    pass with counts never read): one changed on purpose shows in summary.csv."""
    cfg, cache_path, _, before = _warm(tmp_path)

    def one_more(kept: dict) -> dict:
        kept["counts"]["received.from_match"][0] += 1
        return kept

    assert _change_kept_counts(cache_path, one_more, "INBOX") == 1
    _, after = _run(cfg, tmp_path / "again")
    inbox = [f for a in after.accounts for f in a.folders if f.folder == "INBOX"][0]
    was = [f for a in before.accounts for f in a.folders if f.folder == "INBOX"][0]
    assert inbox.counts["received.from_match"][0] == was.counts["received.from_match"][0] + 1


def test_counts_of_other_code_are_replaced_by_the_run_that_counts_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counts kept by another version of the counting code are counted again once, and the
    new counts kept: the run after that decodes no columns (else every re-run after an
    upgrade would)."""
    from mailstats.run import cache as cache_mod

    cfg, cache_path, first, _ = _warm(tmp_path)

    def other_code(kept: dict) -> dict:
        kept["code"] = "0" * 32
        return kept

    assert _change_kept_counts(cache_path, other_code) >= 2
    again, _ = _run(cfg, tmp_path / "again")
    with monkeypatch.context() as m:
        m.setattr(cache_mod, "unpack_table", _no_columns)
        later, result = _run(cfg, tmp_path / "later")
    assert again == later == first and _evaluated(result) == 0
