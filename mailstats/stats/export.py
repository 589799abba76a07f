"""The output files of a run (DESIGN.md "Stable formats"): other people's scripts read them.

Column order and names are a contract: change them only by adding columns at the end.
Every cell goes through `safe_cell`, because header text is attacker-controlled and a
spreadsheet would run a cell starting with `=`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable
from itertools import chain, repeat
from pathlib import Path
from typing import Any

SUMMARY_COLUMNS = [
    "account",
    "folder",
    "role",
    "check",
    "matched",
    "applicable",
    "total",
    "unavailable",
]
MESSAGE_COLUMNS = [
    "account",
    "folder",
    "role",
    "uid",
    "message_id",
    "date",
    "from_address",
    "origin_ip",
]
#: Core columns after the module columns and age_days (added later: the format only grows).
TRAILING_COLUMNS = ["receiver"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: C0 controls (NUL, tab, CR, LF included), DEL and C1: header text may hold any of them, and
#: a NUL or a bare CR in a CSV cell breaks the readers of the file (Python's csv among them).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _escape_control(m: re.Match[str]) -> str:
    """Visible (`\\x00` in the cell), not a silently shorter string."""
    return f"\\x{ord(m.group()):02x}"


def safe_cell(value: Any) -> str:
    """CSV text for a value; formula-looking text gets a leading quote, numbers stay numbers."""
    if value is None:
        return ""
    if value is True:
        return "1"
    if value is False:
        return "0"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    text = str(value)
    if not text.isprintable():
        text = _CONTROL.sub(_escape_control, text)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def write_csv(
    path: Path, header: list[str], rows: Iterable[Iterable[Any]], *, escaped: bool = False
) -> None:
    """Write atomically (temp file + rename): a crash never leaves half a file behind.

    `escaped`: `rows` are blocks of rows that already hold finished cell strings (the 100k-row
    messages.csv builds them column-wise, which is several times faster than a call per cell).
    """
    tmp = path.with_name(path.name + ".part")
    with _open_part(tmp) as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        if escaped:
            for block in rows:  # blocks of finished rows: one C call writes each block
                if isinstance(block, list):  # finished text, in pieces (a stored rendering)
                    fh.writelines(block)
                else:
                    writer.writerows(block)  # type: ignore[arg-type]
        else:
            writer.writerows([safe_cell(v) for v in row] for row in rows)
    os.replace(tmp, path)


def _open_part(tmp: Path) -> Any:
    """The temporary file, never through a link planted at its name (O_NOFOLLOW)."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666)
    return open(fd, "w", newline="", encoding="utf-8")


OUTPUT_FILES = ("summary.csv", "messages.csv", "indicators.csv", "mailboxes.csv", "manifest.json")


def check_out_dir(out_dir: str | os.PathLike[str]) -> str:
    """'' when the outputs can be written to `out_dir`, else why not; nothing is left behind.

    Run before any work: a folder that cannot be written must not cost a whole run. A missing
    folder is not created here (a usage error must leave no trace): its nearest existing
    parent must be a folder we can create files in.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        return f"--out {out}: is a file, not a folder"
    if out.is_dir():
        for name in OUTPUT_FILES:
            target = out / name
            if target.is_dir() and not target.is_symlink():
                return f"--out {out}: {name} there is a folder; cannot replace it with the file"
    probe_in = out.absolute()
    while not probe_in.exists():
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        return f"--out {out}: cannot create the folder: {probe_in} is a file"
    try:
        fd, probe = tempfile.mkstemp(prefix=".mailstats-", suffix=".part", dir=probe_in)
    except OSError as exc:
        where = "there" if probe_in == out.absolute() else f"in {probe_in}"
        return f"--out {out}: cannot write {where}: {exc.strerror or exc}"
    os.close(fd)
    os.unlink(probe)
    return ""


_CHECK_CELL = {True: "1", False: "0", None: ""}


def summary_rows(result: Any) -> Iterable[list[Any]]:
    for acct in result.accounts:
        for fr in acct.folders:
            for check in result.checks:
                matched, applicable = fr.counts.get(check, [0, 0])
                yield [
                    acct.name,
                    fr.folder,
                    fr.role,
                    check,
                    matched,
                    applicable,
                    fr.total,
                    getattr(fr, "unavailable", 0),
                ]


def _cells(values: list[Any]) -> list[str]:
    """safe_cell over a column, with the common cases (None, booleans, ints, plain text)
    decided inline: messages.csv at 100k messages has millions of cells."""
    out: list[str] = []
    append = out.append
    texts: dict[str, str] = {}  # most text columns repeat their values (hosts, classes)
    for v in values:
        if v is None:
            append("")
        elif v is True:
            append("1")
        elif v is False:
            append("0")
        elif type(v) is str:
            cell = texts.get(v)
            if cell is None:
                cell = texts[v] = safe_cell(v)
            append(cell)
        elif type(v) is int:
            append(str(v))
        else:
            append(safe_cell(v))
    return out


def _column(values: list[Any]) -> Iterable[Any]:
    """What csv.writer writes as `safe_cell` of each value, decided for a whole column in
    C where it can be: the csv module writes None as an empty cell and a number as str(),
    which is what safe_cell gives, so a column of numbers, or of plain texts and gaps,
    goes out as it is. Booleans, texts that need escaping and mixed columns go through
    `_cells`.
    """
    kinds = set(map(type, values))
    if kinds <= {int, float, type(None)}:
        return values
    if not kinds <= {str, type(None)}:
        return _cells(values)
    texts = list(filter(None, values))  # the non-empty texts
    # printable: no control character in any text (safe_cell's first test, for all at once)
    if not " ".join(texts).isprintable() or any(
        map(str.startswith, texts, repeat(_FORMULA_START))
    ):
        return _cells(values)
    return values


#: Stands for a row's age_days cell in a stored rendering of messages.csv's rows: a C0
#: control, which no cell can hold (safe_cell writes them as \\x01), filled in at writing.
_AGE = "\x01"


def _export_digest() -> bytes:
    """What this file is: a stored rendering is only valid for the code that made it."""
    global _DIGEST
    if _DIGEST is None:
        try:
            _DIGEST = hashlib.sha256(Path(__file__).read_bytes()).digest()
        except OSError:
            _DIGEST = b""
    return _DIGEST


_DIGEST: bytes | None = None


def message_rows(
    results: Any, result: Any, now: float | None = None, reused: list[int] | None = None
) -> Iterable[Iterable[tuple[Any, ...]] | list[str]]:
    """messages.csv rows, built column by column: one block per folder.

    A block is rows whose cells are finished strings or values the csv module writes
    exactly as safe_cell would (see `_column`), or a list of finished texts. `results` is
    anything with `table_for(folder_result)`: a run's `RunResults`. When it also keeps renderings (a
    folder read back from a stored table), a folder's rows are rendered once with a marker
    for age_days, kept next to the table, and re-used by later runs over the same table:
    the marker is replaced by this run's ages. `reused` counts the rows taken that way."""
    now = now or time.time()
    header = MESSAGE_COLUMNS + result.checks + result.extras + ["age_days", *TRAILING_COLUMNS]
    # only where renderings can be kept (a batch run's cache): else one pass as before
    keeps = getattr(results, "store", None) is not None and bool(_export_digest())
    for acct in result.accounts:
        for fr in acct.folders:
            if not keeps:
                table = results.table_for(fr)
                yield _block(acct.name, fr, table, result, _ages(table.columns["when"], now))
                continue
            render_key = hashlib.sha256(
                "\0".join([acct.name, fr.folder, fr.role, *header]).encode() + _export_digest()
            ).digest()
            kept = results.rendering(fr, render_key)
            # the rows kept need no table: their `when` is kept with them for the ages
            if kept is not None and kept[0].count(_AGE) == len(kept[1]) == len(fr.uids):
                text, when = kept
                if reused is not None:
                    reused.append(len(when))
            else:
                table = results.table_for(fr)
                when = table.columns["when"]
                out = io.StringIO()
                csv.writer(out).writerows(
                    _block(acct.name, fr, table, result, repeat(_AGE, len(when)))
                )
                text = out.getvalue()
                if text.count(_AGE) != len(when):  # cannot happen: a cell held the marker
                    yield _block(acct.name, fr, table, result, _ages(when, now))
                    continue
                results.keep_rendering(fr, render_key, text, when)
                del table
            ages = _ages(when, now)
            pieces = text.split(_AGE)
            yield [*chain.from_iterable(zip(pieces[:-1], ages, strict=True)), pieces[-1]]


def _ages(when: list[float | None], now: float) -> list[str]:
    """age_days of each message: whole days from its `when` to `now`, empty when unknown."""
    return ["" if w is None else str(int((now - w) // 86400)) for w in when]


def _block(
    account: str, fr: Any, table: Any, result: Any, ages: Iterable[str]
) -> Iterable[tuple[Any, ...]]:
    """A folder's rows for csv.writer, cells column by column (see `_column`)."""
    cols = table.columns
    n = len(table.uids)
    check_cell = _CHECK_CELL.get  # None for anything else: an empty cell, as before
    cells: list[Iterable[Any]] = [
        repeat(safe_cell(account), n),
        repeat(safe_cell(fr.folder), n),
        repeat(fr.role, n),
        table.uids,
    ]
    for name in ("message_id", "date", "from_address", "origin_ip"):
        cells.append(_column(cols[name]))
    for c in result.checks:
        cells.append(map(check_cell, cols[c]))
    for e in result.extras:
        cells.append(_column(cols[e]))
    cells.append(ages)
    for name in TRAILING_COLUMNS:
        cells.append(_column(cols[name]))
    return zip(*cells, strict=True)


def write_outputs(
    results: Any,
    result: Any,
    out_dir: str | os.PathLike[str],
    run_info: dict[str, Any] | None = None,
    now: float | None = None,
) -> list[str]:
    """summary.csv, messages.csv, indicators.csv, mailboxes.csv and manifest.json.

    `results` reads the per-message values (a `RunResults`, or an engine's `table_for`).
    run_info: how the run was executed (`jobs`, `scheduler`), added to the manifest's keys.
    now: the clock messages.csv's age_days counts from (the time of writing by default).
    """
    from mailstats.stats.manifest import manifest

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    write_csv(out / "summary.csv", SUMMARY_COLUMNS, summary_rows(result))
    written.append("summary.csv")
    header = MESSAGE_COLUMNS + result.checks + result.extras + ["age_days", *TRAILING_COLUMNS]
    reused: list[int] = []
    write_csv(
        out / "messages.csv", header, message_rows(results, result, now, reused), escaped=True
    )
    written.append("messages.csv")
    written.extend(_derived(out))
    written.append("manifest.json")
    data = manifest(result, written)
    data.update(run_info or {})
    # rows written from the cache's stored rendering (same bytes; age_days of this run)
    data["messages_rows_reused"] = sum(reused)
    tmp = out / "manifest.json.part"
    with _open_part(tmp) as fh:
        fh.write(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, out / "manifest.json")
    return written


def _derived(out: Path) -> list[str]:
    """indicators.csv and mailboxes.csv, computed from summary.csv alone."""
    try:
        from mailstats.stats import indicators
    except ImportError:  # built without the statistics module
        return []
    written = []
    for name, fn in (
        ("indicators.csv", getattr(indicators, "write_indicators", None)),
        ("mailboxes.csv", getattr(indicators, "write_mailboxes", None)),
    ):
        if fn is not None:
            fn(out)
            written.append(name)
    return written
