"""How the cache's blobs are encoded: result chunks in pages, UID lists, finished tables.

Apart from cache.py so that the SQLite side (which rows, which transactions) and the byte
side (what one blob holds) can each be read on their own.
"""

from __future__ import annotations

import json
import marshal
import math
import struct
from array import array
from collections.abc import Iterable, Iterator
from typing import Any

try:
    from isal import isal_zlib as _deflater
except ImportError:  # a machine isal has no wheel for (see pyproject.toml): the same streams
    import zlib as _deflater  # type: ignore[no-redef]

#: Every blob is a zlib stream (RFC 1950), made by ISA-L at level 1: about the same size as
#: the standard library's zlib at level 1 makes, which took 134 us per header of the real
#: corpus (5 KB) here against ISA-L's 24 us; in the 100k IMAP bench, storing headers was a
#: tenth of an analysis worker's time. Blobs either wrote read back the same with the other.
BadBlob = _deflater.error


def deflate(data: bytes) -> bytes:
    return _deflater.compress(data, 1)


def inflate(blob: bytes) -> bytes:
    return _deflater.decompress(blob)


def _pack(obj: Any) -> bytes:
    return deflate(json.dumps(obj, separators=(",", ":")).encode())


def _unpack(blob: bytes) -> Any:
    return json.loads(inflate(blob))


def _pack_uids(uids: Iterable[int]) -> bytes:
    return deflate(array("Q", sorted(uids)).tobytes())


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
    out.frombytes(inflate(blob))
    return out


#: A folder's finished table (Cache.put_table): the magic, a byte saying whether every
#: module had a result for every message, then tagged sections (4-byte tag, u32 length,
#: payload), so a re-run reads only the part it needs:
#:   COLS  the columns: marshal, which decodes a 100k-message table several times faster
#:         than JSON and keeps a repeated string one object; zlib;
#:   CNTS  the folder's counts as counted from these columns (JSON; zlib): a batch re-run
#:         with nothing new fills summary.csv from them without decoding the columns;
#:   ROWS  messages.csv's rows as last written: the 32-byte key of what they were rendered
#:         for, the count and the `when` of each message (float64, NaN for none: the ages
#:         are computed per run), then the rows (zlib: stored plain they read no faster
#:         at 100k messages, and made the cache 24 MB and the process 24 MB bigger).
#: Older layouts (MST2: columns only; MST3: columns and rows without `when`) still read.
_TABLE_MAGIC = b"MST4"
COLUMNS, COUNTS, ROWS = b"COLS", b"CNTS", b"ROWS"
_MST2, _MST3 = b"MST2", b"MST3"


def pack_table(columns: dict[str, list[Any]], complete: bool) -> bytes:
    return _join(complete, {COLUMNS: deflate(marshal.dumps(columns))})


def _join(complete: bool, sections: dict[bytes, bytes]) -> bytes:
    out = [_TABLE_MAGIC, bytes([complete])]
    for tag, payload in sections.items():
        out += [tag, struct.pack("<I", len(payload)), payload]
    return b"".join(out)


def table_sections(blob: bytes) -> tuple[bool, dict[bytes, bytes]] | None:
    """(complete, payload per tag) of a table blob; None when it is not one (or damaged)."""
    if len(blob) < 5:
        return None
    magic, complete = blob[:4], blob[4] == 1
    if magic == _MST2:
        return complete, {COLUMNS: blob[5:]}
    if magic == _MST3 and len(blob) >= 9:
        (size,) = struct.unpack_from("<I", blob, 5)
        return complete, {COLUMNS: blob[9 : 9 + size]}  # its rows lack `when`: rendered again
    if magic != _TABLE_MAGIC:
        return None
    sections: dict[bytes, bytes] = {}
    pos = 5
    while pos < len(blob):
        if pos + 8 > len(blob):
            return None
        tag = blob[pos : pos + 4]
        (size,) = struct.unpack_from("<I", blob, pos + 4)
        if pos + 8 + size > len(blob):
            return None
        sections[tag] = blob[pos + 8 : pos + 8 + size]
        pos += 8 + size
    return complete, sections


def unpack_table(blob: bytes) -> tuple[dict[str, list[Any]], bool] | None:
    """(columns, complete), or None for a blob of an older format or a damaged one: the
    table is then made again from the stored results, which is slower but never wrong."""
    parts = table_sections(blob)
    if parts is None or COLUMNS not in parts[1]:
        return None
    try:
        columns = marshal.loads(inflate(parts[1][COLUMNS]))
    except (ValueError, EOFError, TypeError, BadBlob):
        return None
    if not isinstance(columns, dict) or not all(type(c) is list for c in columns.values()):
        return None
    return columns, parts[0]


def with_section(blob: bytes, tag: bytes, payload: bytes) -> bytes | None:
    """`blob` with its `tag` section set to `payload` (None: not a table blob)."""
    parts = table_sections(blob)
    if parts is None or COLUMNS not in parts[1]:
        return None
    complete, sections = parts
    sections[tag] = payload
    return _join(complete, sections)


def rows_section(render_key: bytes, text: str, when: list[float | None]) -> bytes:
    """The ROWS payload: what messages.csv's rows were rendered for, each message's `when`."""
    stamps = array("d", (math.nan if w is None else w for w in when))
    rows = deflate(text.encode("utf-8"))
    return render_key + struct.pack("<I", len(stamps)) + stamps.tobytes() + rows


def rendering_of(blob: bytes, render_key: bytes) -> tuple[str, list[float | None]] | None:
    """The rows a table blob holds for `render_key` and each message's `when`, else None."""
    parts = table_sections(blob)
    payload = parts[1].get(ROWS, b"") if parts is not None else b""
    if len(render_key) != 32 or payload[:32] != render_key or len(payload) < 36:
        return None
    (n,) = struct.unpack_from("<I", payload, 32)
    end = 36 + 8 * n
    if len(payload) < end:
        return None
    stamps = array("d")
    stamps.frombytes(payload[36:end])
    try:
        text = inflate(payload[end:]).decode("utf-8")
    except (BadBlob, UnicodeDecodeError):
        return None
    return text, [None if math.isnan(w) else w for w in stamps]


def counts_of(blob: bytes) -> tuple[bool, dict[str, Any] | None] | None:
    """(complete, the stored counts or None) of a table blob, without decoding its columns;
    None when it is not a table blob."""
    parts = table_sections(blob)
    if parts is None or COLUMNS not in parts[1]:
        return None
    complete, sections = parts
    if COUNTS not in sections:
        return complete, None
    try:
        counts = _unpack(sections[COUNTS])
    except (ValueError, BadBlob):
        return complete, None
    return complete, counts if isinstance(counts, dict) else None


def counts_section(counts: dict[str, Any]) -> bytes:
    return _pack(counts)
