"""Result chunks stored in pages: the whole-folder read and the one-message read give the
same answer as what was stored, for any mix of chunks, page boundaries and explanations."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailstats.run import cache as cache_mod
from mailstats.run.cache import PAGE, Cache, CacheReader
from mailstats.run.cache_blobs import deflate, inflate

entry = st.fixed_dictionaries(
    {"check": st.one_of(st.none(), st.booleans()), "n": st.integers(-5, 5)},
    optional={
        "_why": st.fixed_dictionaries({"check": st.text(max_size=30)}),
        "_error": st.text(min_size=1, max_size=10),
    },
)
chunk = st.dictionaries(st.integers(1, 3 * PAGE + 7), entry, min_size=1, max_size=3 * PAGE)


@settings(
    derandomize=True,
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(chunk, min_size=1, max_size=3))
def test_one_message_read_equals_folder_read(tmp_path: Path, chunks: list[dict]) -> None:
    path = tmp_path / "c.sqlite"
    path.unlink(missing_ok=True)
    cache = Cache(path)
    merged: dict[int, dict[str, Any]] = {}
    for c in chunks:
        cache.put_results("a", "INBOX", "m", "1", "fp", {k: dict(v) for k, v in c.items()})
        merged.update(c)  # a later chunk's result for a UID replaces the earlier one
    reader = CacheReader(path)
    assert reader.get_results("a", "INBOX", "m", "1", "fp", why=True) == merged
    values = {k: {n: x for n, x in v.items() if n != "_why"} for k, v in merged.items()}
    assert reader.get_results("a", "INBOX", "m", "1", "fp") == values
    memo: dict[bytes, Any] = {}
    absent = [u for u in (0, 1, PAGE, PAGE + 1, 3 * PAGE + 8) if u not in merged]
    for uid in [*merged, *absent]:
        got = reader.get_result("a", "INBOX", "m", "1", "fp", uid, memo)
        assert got == merged.get(uid), uid
    assert reader.get_result("a", "INBOX", "m", "2", "fp", min(merged)) is None
    reader.close()
    cache.close()


def test_compaction_keeps_pages_readable(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.sqlite")
    for start in range(0, 1000, 100):
        part = {u: {"v": u % 3 == 0, "_why": {"v": f"uid {u}"}} for u in range(start, start + 100)}
        cache.put_results("a", "F", "m", "1", "fp", part)
    keep = set(range(0, 1000, 2))
    cache.compact_results("a", "F", "m", "1", "fp", keep)
    assert cache.result_chunk_count("a", "F", "m") == 1
    assert cache.get_result("a", "F", "m", "1", "fp", 500) == {"v": False, "_why": {"v": "uid 500"}}
    assert cache.get_result("a", "F", "m", "1", "fp", 501) is None
    assert len(cache.get_results("a", "F", "m", "1", "fp")) == 500


def test_an_older_cache_is_rebuilt(tmp_path: Path) -> None:
    """Schema 3 changed the chunk layout: a schema-2 file is rebuilt, never misread."""
    path = tmp_path / "c.sqlite"
    cache = Cache(path)
    cache.put_results("a", "F", "m", "1", "fp", {1: {"v": True}})
    cache.db.execute("UPDATE meta SET value='2' WHERE key='schema'")
    cache.close()
    again = Cache(path)
    assert again.get_results("a", "F", "m", "1", "fp") == {}
    assert cache_mod.SCHEMA_VERSION == 3


@settings(derandomize=True, max_examples=30, deadline=None)
@given(st.binary(max_size=9000))
def test_headers_any_zlib_wrote_read_back_and_ours_read_anywhere(data: bytes) -> None:
    """The blobs stay zlib streams: a cache written with the standard library's zlib (as
    before ISA-L) reads back the same, and what we write any zlib reads."""
    assert inflate(zlib.compress(data, 1)) == data
    assert inflate(zlib.compress(data, 9)) == data
    assert zlib.decompress(deflate(data)) == data


def test_a_cache_with_stdlib_zlib_headers_reads_back(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.sqlite")
    header = b"Received: from a.example (a.example [192.0.2.1]) by b.example\r\nFrom: x@y\r\n"
    cache.put_messages("a", "INBOX", [(1, header, None, 10)])
    cache.db.execute("UPDATE messages SET header=?", (zlib.compress(header * 3, 6),))
    assert [h for _, h, _, _ in cache.get_messages("a", "INBOX")] == [header * 3]


def test_without_isal_the_stdlib_makes_the_same_streams(monkeypatch) -> None:
    """Where isal has no wheel the standard library's zlib deflates: blobs still go both ways."""
    import importlib
    import sys

    from mailstats.run import cache_blobs

    header = b"Received: from a.example by b.example; Mon, 1 Jan 2024 10:00:00 +0000\r\n" * 9
    made_by_isal = cache_blobs.deflate(header)
    monkeypatch.setitem(sys.modules, "isal", None)  # "import isal" now raises ImportError
    try:
        importlib.reload(cache_blobs)
        assert cache_blobs._deflater is zlib
        assert cache_blobs.inflate(made_by_isal) == header
        made_by_zlib = cache_blobs.deflate(header)
    finally:
        monkeypatch.delitem(sys.modules, "isal")
        importlib.reload(cache_blobs)
    assert cache_blobs._deflater is not zlib
    assert cache_blobs.inflate(made_by_zlib) == header


class _Recording:
    """The cache's connection, with the text of every statement it is given kept."""

    def __init__(self, db: Any) -> None:
        self.db, self.texts = db, set()

    def execute(self, sql: str, *args: Any) -> Any:
        self.texts.add(sql)
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


def test_dns_look_ups_of_any_size_share_a_few_statements_and_find_every_stored_name(
    tmp_path: Path,
) -> None:
    """sqlite3 keeps each distinct statement text prepared: one per look-up length (1 to 400
    names) held 12 MB in every analysis worker. Whatever the length, a handful of texts;
    and every stored pair asked for, and only those, comes back."""
    cache = Cache(tmp_path / "c.sqlite")
    stored = [(f"h{i}.example", t) for i in range(0, 900, 3) for t in ("A", "MX")]
    cache.save_dns("r", [(n, t, "ok", ("x",), 1e12, "") for n, t in stored])
    rec = _Recording(cache.db)
    cache.db = rec  # type: ignore[assignment]
    for n in (1, 2, 7, 9, 63, 65, 399, 401, 900):
        asked = [(f"h{i}.example", "A") for i in range(n)]
        got = {(name, t) for name, t, *_ in cache.lookup_dns("r", asked, 0.0)}
        assert got == set(asked) & set(stored)
    assert len(rec.texts) <= len(cache_mod._LOOKUP_SIZES)
    cache.db = rec.db
    cache.close()
