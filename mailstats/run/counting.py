"""A folder's stored results as columns, and the counts summary.csv is made of.

Counting reads only what the cache holds for each module's (version, fingerprint): the same
numbers come out of a cold run, a re-run that evaluated nothing, and a results view opened
after the engine is gone.
"""

from __future__ import annotations

import hashlib
from array import array
from typing import Any

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
    columns = cache.get_table(account, folder, key) if len(uids) >= SNAPSHOT_MIN else None
    if columns is None:
        columns = _read_columns(cache, account, folder, uids, keys)
        if len(uids) >= SNAPSHOT_MIN and isinstance(cache, Cache):
            cache.put_table(account, folder, key, columns)
    return FolderTable(account, folder, role, list(uids), columns)


def table_key(uids: list[int], keys: list[tuple[Any, str]]) -> str:
    """What a folder's columns are made of: its UIDs and each module's results identity."""
    h = hashlib.sha256(array("Q", uids).tobytes())
    for m, fp in keys:
        h.update("\0".join([m.name, m.version, fp, *m.checks, *m.extras]).encode())
    return h.hexdigest()


def _read_columns(
    cache: CacheReader, account: str, folder: str, uids: list[int], keys: list[tuple[Any, str]]
) -> dict[str, list[Any]]:
    index = {u: i for i, u in enumerate(uids)}
    columns: dict[str, list[Any]] = {}
    n = len(uids)
    for m, fp in keys:
        data = cache.get_results(account, folder, m.name, m.version, fp)
        names = list(m.checks) + list(m.extras)
        cols = {name: [None] * n for name in names}
        err = [False] * n
        for uid, values in data.items():
            i = index.get(uid)
            if i is None:
                continue
            if "_error" in values:
                err[i] = True
            for name in names:
                v = values.get(name)
                if v is not None:
                    cols[name][i] = v
        del data
        core = m.name == CORE_NAME
        prefix = "" if core else f"{m.name}."
        for name in names:
            columns[prefix + name] = cols[name]
        if not core:
            columns[f"_error.{m.name}"] = err
    return columns


def count_folder(fr: FolderResult, table: FolderTable, modules: list[Any]) -> None:
    """Fill `fr`'s malformed/processed counts, [matched, applicable] per check, and errors."""
    malformed = table.columns.get("malformed", [])
    fr.malformed = sum(1 for v in malformed if v)
    fr.processed = fr.total - fr.malformed - fr.unavailable
    for name in table.columns.get("receiver", []):
        key = name or "unrecognised"
        fr.receivers[key] = fr.receivers.get(key, 0) + 1
    for m in modules:
        for c in m.checks:
            col = table.columns[f"{m.name}.{c}"]
            matched = sum(1 for v in col if v is True)
            applicable = sum(1 for v in col if v is not None)
            fr.counts[f"{m.name}.{c}"] = [matched, applicable]
        errs = sum(table.columns[f"_error.{m.name}"])
        if errs:
            fr.errors[m.name] = errs
