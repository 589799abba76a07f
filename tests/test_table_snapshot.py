"""A big folder's finished columns are kept once made, and never outlive what made them."""

from __future__ import annotations

from pathlib import Path

from mailstats.modules import Module
from mailstats.run.cache import Cache
from mailstats.run.counting import SNAPSHOT_MIN, load_table


class _Mod(Module):
    name = "m"
    version = "1"
    checks = ("c",)
    extras = ("x",)


def _fill(cache: Cache, uids: list[int], value: bool, fp: str = "fp") -> None:
    cache.put_results("a", "f", "m", "1", fp, {u: {"c": value, "x": u} for u in uids})


def test_snapshot_is_used_and_dropped_by_every_change(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.sqlite")
    uids = list(range(1, SNAPSHOT_MIN + 1))
    keys = [(_Mod(), "fp")]
    _fill(cache, uids, True)
    first = load_table(cache, "a", "f", "ham", uids, keys)
    assert first.columns["m.c"] == [True] * len(uids)
    assert first.columns["m.x"] == uids
    # The stored copy is what the next load returns: prove it by changing the results
    # behind the cache's back (a raw write that bypasses put_results).
    cache.db.execute("DELETE FROM results")
    assert load_table(cache, "a", "f", "ham", uids, keys).columns == first.columns
    # Any new result for the folder invalidates the copy.
    _fill(cache, uids, False)
    assert load_table(cache, "a", "f", "ham", uids, keys).columns["m.c"] == [False] * len(uids)
    # A different fingerprint or UID list is a different table.
    _fill(cache, uids, True, fp="other")
    other = load_table(cache, "a", "f", "ham", uids, [(_Mod(), "other")])
    assert other.columns["m.c"] == [True] * len(uids)
    fewer = load_table(cache, "a", "f", "ham", uids[:-1], [(_Mod(), "other")])
    assert len(fewer.columns["m.c"]) == len(uids) - 1
    # Forgetting messages drops it too.
    load_table(cache, "a", "f", "ham", uids, [(_Mod(), "other")])
    cache.forget_uids("a", "f", [uids[0]])
    assert cache.db.execute("SELECT COUNT(*) FROM tables").fetchone()[0] == 0
    cache.close()


def test_small_folders_keep_no_copy(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.sqlite")
    uids = list(range(1, 11))
    _fill(cache, uids, True)
    load_table(cache, "a", "f", "ham", uids, [(_Mod(), "fp")])
    assert cache.db.execute("SELECT COUNT(*) FROM tables").fetchone()[0] == 0
    cache.close()
