"""How the cache's blobs are encoded: result chunks in pages, UID lists, finished tables.

Apart from cache.py so that the SQLite side (which rows, which transactions) and the byte
side (what one blob holds) can each be read on their own.
"""

from __future__ import annotations

import json
import marshal
import struct
import zlib
from array import array
from collections.abc import Iterable, Iterator
from typing import Any


def _pack(obj: Any) -> bytes:
    return zlib.compress(json.dumps(obj, separators=(",", ":")).encode(), 1)


def _unpack(blob: bytes) -> Any:
    return json.loads(zlib.decompress(blob))


def _pack_uids(uids: Iterable[int]) -> bytes:
    return zlib.compress(array("Q", sorted(uids)).tobytes(), 1)


#: Messages per page of a results chunk: small enough that one page decodes in well under a
#: millisecond, large enough that zlib still finds the repetition between entries.
PAGE = 128
_PAGE_MAGIC = b"MSP1"


def _pack_pages(entries: list[Any]) -> bytes:
    """Entries in UID order as pages: magic, page count, end offsets, then the pages."""
    pages = [_pack(entries[i : i + PAGE]) for i in range(0, len(entries), PAGE)]
    ends, end = [], 0
    for page in pages:
        end += len(page)
        ends.append(end)
    head = _PAGE_MAGIC + struct.pack(f"<I{len(pages)}I", len(pages), *ends)
    return head + b"".join(pages)


def _page_table(head: bytes) -> tuple[int, list[int]]:
    """(where the pages start, their end offsets) from a chunk blob's first bytes."""
    if head[:4] != _PAGE_MAGIC:
        raise ValueError("not a paged results blob")
    (n,) = struct.unpack_from("<I", head, 4)
    start = 8 + 4 * n
    return start, list(struct.unpack_from(f"<{n}I", head, 8))


def _unpack_pages(blob: bytes) -> Iterator[Any]:
    start, ends = _page_table(blob)
    begin = 0
    for end in ends:
        yield from _unpack(blob[start + begin : start + end])
        begin = end


def _pack_results(results: dict[int, dict[str, Any]]) -> tuple[bytes, bytes, bytes | None]:
    """(uids, values, explanations) blobs of one results chunk, entries in UID order."""
    uids = sorted(results)
    values: list[Any] = []
    whys: list[Any] = []
    for uid in uids:
        entry = results[uid]
        if "_why" in entry:
            entry = dict(entry)
            whys.append(entry.pop("_why"))
        else:
            whys.append(None)
        values.append(entry)
    has_why = any(w is not None for w in whys)
    return _pack_uids(uids), _pack_pages(values), _pack_pages(whys) if has_why else None


def _unpack_uids(blob: bytes) -> array:
    out = array("Q")
    out.frombytes(zlib.decompress(blob))
    return out


#: A folder's finished columns (Cache.put_table): marshal, which decodes a 100k-message
#: table several times faster than JSON and keeps a repeated string one object. The byte
#: after the magic says whether every module had a result for every message.
_TABLE_MAGIC = b"MST2"


def pack_table(columns: dict[str, list[Any]], complete: bool) -> bytes:
    return _TABLE_MAGIC + bytes([complete]) + zlib.compress(marshal.dumps(columns), 1)


def unpack_table(blob: bytes) -> tuple[dict[str, list[Any]], bool] | None:
    """(columns, complete), or None for a blob of an older format or a damaged one: the
    table is then made again from the stored results, which is slower but never wrong."""
    if blob[:4] != _TABLE_MAGIC or len(blob) < 5:
        return None
    try:
        columns = marshal.loads(zlib.decompress(blob[5:]))
    except (ValueError, EOFError, TypeError, zlib.error):
        return None
    if not isinstance(columns, dict) or not all(type(c) is list for c in columns.values()):
        return None
    return columns, blob[4] == 1
