"""A folder's stored results as columns, and the counts summary.csv is made of.

Counting reads only what the cache holds for each module's (version, fingerprint): the same
numbers come out of a cold run, a re-run that evaluated nothing, and a results view opened
after the engine is gone.
"""

from __future__ import annotations

import hashlib
from array import array
from functools import cache
from pathlib import Path
from typing import Any

from mailstats.run import heap
from mailstats.run.cache import Cache, CacheReader
from mailstats.run.results import FolderResult, FolderTable

#: The core fields' columns carry no module prefix ("message_id", not "_core.message_id").
CORE_NAME = "_core"
#: Folders from this size on keep their finished columns in the cache (load_table).
SNAPSHOT_MIN = 1000


def load_table(
    cache: CacheReader,
    account: str,
    folder: str,
    role: str,
    uids: list[int],
    keys: list[tuple[Any, str]],
) -> FolderTable:
    """Column per check and extra (`module.name`), plus `_error.module` flags, in `uids` order.

    `keys` is (module, fingerprint) per module, the core fields first. A big folder's columns
    are kept as one blob once made (Cache.put_table), for the next run that changes nothing.
    """
    key = table_key(uids, keys)
    stored = cache.get_table(account, folder, key) if len(uids) >= SNAPSHOT_MIN else None
    if stored is not None:
        columns, complete = stored
    else:
        columns, complete = _read_columns(cache, account, folder, uids, keys)
        if len(uids) >= SNAPSHOT_MIN and isinstance(cache, Cache):
            cache.put_table(account, folder, key, columns, complete)
    return FolderTable(account, folder, role, list(uids), columns, complete, key)


def complete_state(
    cache: CacheReader, account: str, folder: str, uids: list[int], keys: list[tuple[Any, str]]
) -> dict[str, Any] | None:
    """The counts kept with the stored table of exactly these UIDs and module identities
    ({} when none are) if it had a result of every module for every message: nothing is
    left to evaluate and the folder's results need not be listed at all (a re-run with
    nothing new). None otherwise."""
    if len(uids) < SNAPSHOT_MIN:
        return None
    state = cache.table_state(account, folder, table_key(uids, keys))
    if state is None or not state[0]:
        return None
    return state[1] or {}


def table_key(uids: list[int], keys: list[tuple[Any, str]]) -> str:
    """What a folder's columns are made of: its UIDs and each module's results identity."""
    h = hashlib.sha256(array("Q", uids).tobytes())
    for m, fp in keys:
        h.update("\0".join([m.name, m.version, fp, *m.checks, *m.extras]).encode())
    return h.hexdigest()


def _read_columns(
    cache: CacheReader, account: str, folder: str, uids: list[int], keys: list[tuple[Any, str]]
) -> tuple[dict[str, list[Any]], bool]:
    """The columns, and whether every module had a result for every one of `uids`."""
    index = {u: i for i, u in enumerate(uids)}
    columns: dict[str, list[Any]] = {}
    n = len(uids)
    complete = True
    for m, fp in keys:
        names = list(m.checks) + list(m.extras)
        cols = {name: [None] * n for name in names}
        err = [False] * n
        seen = bytearray(n)
        # chunk by chunk, page by page: never every message's values as dicts at once (at
        # 100k messages that was tens of MB per module); a later chunk's entry replaces an
        # earlier one whole, as in get_results
        for chunk_uids, values, _whys in cache._result_chunks(
            account, folder, m.name, m.version, fp, False
        ):
            for uid, entry in zip(chunk_uids, values, strict=True):
                i = index.get(uid)
                if i is None:
                    continue
                seen[i] = 1
                err[i] = "_error" in entry
                for name in names:
                    cols[name][i] = entry.get(name)
        found = n - seen.count(0)
        complete = complete and found == n
        core = m.name == CORE_NAME
        prefix = "" if core else f"{m.name}."
        for name in names:
            columns[prefix + name] = cols[name]
        if not core:
            columns[f"_error.{m.name}"] = err
    return columns, complete


def count_folder(fr: FolderResult, table: FolderTable, modules: list[Any]) -> None:
    """Fill `fr`'s malformed/processed counts, [matched, applicable] per check, and errors.

    A check's cells are True, False or None only (check_result holds modules to that), so
    list.count does each column in one C loop: at 100k messages and 40 columns the Python
    loop per cell was a tenth of a second of every re-run.
    """
    malformed = table.columns.get("malformed", [])
    fr.malformed = sum(map(bool, malformed))
    fr.processed = fr.total - fr.malformed - fr.unavailable
    receivers = table.columns.get("receiver", [])
    for name in dict.fromkeys(receivers):  # in order of first appearance, as before
        key = name or "unrecognised"
        fr.receivers[key] = fr.receivers.get(key, 0) + receivers.count(name)
    for m in modules:
        for c in m.checks:
            col = table.columns[f"{m.name}.{c}"]
            fr.counts[f"{m.name}.{c}"] = [col.count(True), len(col) - col.count(None)]
        errs = table.columns[f"_error.{m.name}"].count(True)
        if errs:
            fr.errors[m.name] = errs


def folder_counts(fr: FolderResult) -> dict[str, Any]:
    """What count_folder found, to keep with the table it counted (Cache.put_counts)."""
    return {
        "code": _code_digest(),
        "malformed": fr.malformed,
        "receivers": fr.receivers,
        "counts": fr.counts,
        "errors": fr.errors,
    }


@cache
def _code_digest() -> str:
    """What this file is: kept counts stand for a table only as this code counts it."""
    try:
        return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:32]
    except OSError:
        return ""


def apply_counts(fr: FolderResult, kept: dict[str, Any], modules: list[Any]) -> bool:
    """Fill `fr` as count_folder would from the table `kept` was made of; False (and `fr`
    untouched) when `kept` does not hold every check of `modules` as two counts."""
    if not _code_digest() or kept.get("code") != _code_digest():
        return False  # counted by other code than this: count again
    counts = kept.get("counts")
    malformed = kept.get("malformed")
    receivers = kept.get("receivers")
    errors = kept.get("errors")
    if not (
        isinstance(counts, dict)
        and type(malformed) is int
        and isinstance(receivers, dict)
        and isinstance(errors, dict)
    ):
        return False
    names = [f"{m.name}.{c}" for m in modules for c in m.checks]
    if set(counts) != set(names) or not all(
        isinstance(v, list) and len(v) == 2 and all(type(x) is int for x in v)
        for v in counts.values()
    ):
        return False
    fr.malformed = malformed
    fr.processed = fr.total - fr.malformed - fr.unavailable
    fr.receivers = {str(k): int(v) for k, v in receivers.items()}
    fr.counts = {name: list(counts[name]) for name in names}
    fr.errors = {str(k): int(v) for k, v in errors.items()}
    return True


def fill_counts(
    cache: Cache,
    fr: FolderResult,
    role: str,
    keys: list[tuple[Any, str]],
    modules: list[Any],
    ready: dict[str, Any] | None,
    kept: list[int],
    keep: bool,
) -> None:
    """Fill `fr`'s counts from its table, made (and stored) or read back; `fr.table` is the
    table when `keep` (the desktop app shows it), else None and its memory handed back.

    `ready` is complete_state's answer for the `kept` UIDs. When the folder is still those
    UIDs (nothing new, nothing cancelled) the counts kept with the stored table stand for
    it and a batch run need not decode its columns at all; counts that do not (made by
    other code) are replaced, so only one run pays for them."""
    kept_counts = ready if ready is not None and fr.uids == kept else None
    fr.table = None
    if kept_counts and not keep and apply_counts(fr, kept_counts, modules):
        return
    table = load_table(cache, fr.account, fr.folder, role, fr.uids, keys)
    count_folder(fr, table, modules)
    counts = folder_counts(fr)
    if table.complete and table.key and kept_counts != counts:
        cache.put_counts(fr.account, fr.folder, table.key, counts)
    if keep:
        fr.table = table
        return
    del table
    heap.trim()  # the table's memory, before the next folder adds its own
