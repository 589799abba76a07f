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
    parts = _columns_part(blob) if len(blob) >= 5 else None
    if parts is None:
        return None
    blob = parts[0]
    try:
        columns = marshal.loads(zlib.decompress(blob[1:]))
    except (ValueError, EOFError, TypeError, zlib.error):
        return None
    if not isinstance(columns, dict) or not all(type(c) is list for c in columns.values()):
        return None
    return columns, blob[0] == 1


#: A table blob that also holds messages.csv's rows of the folder as last written (see
#: Cache.put_rendering): magic, complete, the columns' length, the columns, the 32-byte key
#: of what the rows were rendered for, the rows.
_RENDERED_MAGIC = b"MST3"


def _columns_part(blob: bytes) -> tuple[bytes, bytes] | None:
    """(the complete flag and compressed columns, what follows them) of a table blob."""
    if blob[:4] == _TABLE_MAGIC:
        return blob[4:], b""
    if blob[:4] == _RENDERED_MAGIC and len(blob) >= 9:
        (size,) = struct.unpack_from("<I", blob, 5)
        return blob[4:5] + blob[9 : 9 + size], blob[9 + size :]
    return None


def with_rendering(blob: bytes, render_key: bytes, text: str) -> bytes | None:
    """`blob` with `text` as its rendering for `render_key` (None: not a table blob)."""
    parts = _columns_part(blob)
    if parts is None or len(render_key) != 32:
        return None
    head, _old = parts
    columns = head[1:]
    return (
        _RENDERED_MAGIC
        + head[:1]
        + struct.pack("<I", len(columns))
        + columns
        + render_key
        + zlib.compress(text.encode("utf-8"), 1)
    )


def rendering_of(blob: bytes, render_key: bytes) -> str | None:
    """The rendering a table blob holds for `render_key`, else None."""
    parts = _columns_part(blob)
    if parts is None or parts[1][:32] != render_key or len(parts[1]) <= 32:
        return None
    try:
        return zlib.decompress(parts[1][32:]).decode("utf-8")
    except (zlib.error, UnicodeDecodeError):
        return None
