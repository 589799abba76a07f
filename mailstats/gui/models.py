"""Table models for the results screen, and the plain-Python arithmetic behind them.

The numbers come from the same rows as summary.csv (`export.summary_rows`), so what the
window shows and what `--batch` writes cannot drift apart. The arithmetic is plain Python
(testable without a window); the models only present it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

ROLES = ("ham", "spam", "sent")
SORT_ROLE = Qt.ItemDataRole.UserRole
Index = QModelIndex | QPersistentModelIndex

try:  # written by another part of the project; the GUI works without it
    from mailstats.stats.indicators import compute_indicators as _compute_indicators
except ImportError:  # pragma: no cover - depends on the build
    _compute_indicators = None


def summary_dicts(result: Any) -> list[dict[str, Any]]:
    """summary.csv rows as dicts, straight from the run result (same code path as export)."""
    from mailstats.stats.export import SUMMARY_COLUMNS, summary_rows

    return [dict(zip(SUMMARY_COLUMNS, row, strict=True)) for row in summary_rows(result)]


@dataclass
class CheckRow:
    """One check's counts per role, summed over the folders in scope."""

    check: str
    counts: dict[str, list[int]] = field(default_factory=dict)  # role -> [matched, applicable]
    info_gain: float | None = None
    rank_score: float | None = None
    few_messages: bool = False

    def pct(self, role: str) -> float | None:
        matched, applicable = self.counts.get(role, [0, 0])
        return 100.0 * matched / applicable if applicable else None

    @property
    def delta(self) -> float | None:
        """|ham% - spam%| in percentage points; None when either side has nothing."""
        ham, spam = self.pct("ham"), self.pct("spam")
        return None if ham is None or spam is None else abs(ham - spam)


def build_check_rows(
    summary: Iterable[Mapping[str, Any]], account: str | None = None
) -> list[CheckRow]:
    """Sum summary rows per check and role; `account=None` pools every account."""
    rows: dict[str, CheckRow] = {}
    kept: list[Mapping[str, Any]] = []
    for r in summary:
        if account is not None and r["account"] != account:
            continue
        kept.append(r)
        row = rows.setdefault(str(r["check"]), CheckRow(str(r["check"])))
        role = str(r["role"])
        if role not in ROLES:
            continue
        c = row.counts.setdefault(role, [0, 0])
        c[0] += int(r["matched"])
        c[1] += int(r["applicable"])
    if _compute_indicators is not None and kept:
        scope = "all" if account is None else account
        try:
            indicators = _compute_indicators(kept)
        except (KeyError, ValueError, TypeError, ZeroDivisionError):
            indicators = []  # the table still shows counts; ranking falls back to the gap
        for ind in indicators:
            if ind["scope"] == scope and ind["check"] in rows:
                row = rows[ind["check"]]
                row.info_gain = ind["info_gain"]
                row.rank_score = ind.get("rank_score")
                row.few_messages = bool(ind.get("few_messages"))
    return list(rows.values())


def separation_key(row: CheckRow) -> tuple[float, float, float]:
    """Best separating first, as indicators.csv ranks: the conservative rank score (info gain
    at the Wilson bounds, so a check seen on a handful of messages cannot top the list), then
    info gain, then the rate gap; without the statistics module, the rate gap alone."""
    score = row.rank_score if row.rank_score is not None else -1.0
    gain = row.info_gain if row.info_gain is not None else -1.0
    delta = row.delta if row.delta is not None else -1.0
    if _compute_indicators is None:
        return (-delta, -gain, -score)
    return (-score, -gain, -delta)


def _fmt_pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} %"


class ResultsModel(QAbstractTableModel):
    """Checks × roles: matched / applicable and %, ham and spam side by side."""

    # Short, three-line headers: all ten columns fit a 1280-pixel window (Sent included).
    HEADERS = [
        "Check",
        "Ham\nmatched /\napplicable",
        "Ham\n%",
        "Spam\nmatched /\napplicable",
        "Spam\n%",
        "Gap\n(points)",
        "Info gain\n(bits)",
        "Sent\nmatched /\napplicable",
        "Sent\n%",
        "Rank\nscore\n(bits)",
    ]
    COL_CHECK, COL_HAM, COL_HAM_PCT, COL_SPAM, COL_SPAM_PCT = 0, 1, 2, 3, 4
    COL_DELTA, COL_GAIN, COL_SENT, COL_SENT_PCT, COL_RANK = 5, 6, 7, 8, 9
    FEW_TIP = "few messages: fewer than 30 decided ham or spam messages, so the rates are uncertain"
    _ROLE_COLS = {1: ("ham", False), 2: ("ham", True), 3: ("spam", False), 4: ("spam", True)}
    _ROLE_COLS.update({7: ("sent", False), 8: ("sent", True)})

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[CheckRow] = []

    def set_rows(self, rows: list[CheckRow]) -> None:
        self.beginResetModel()
        self.rows = sorted(rows, key=separation_key)
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(  # noqa: N802 - Qt API
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return self.HEADERS[section]
            if role == Qt.ItemDataRole.ToolTipRole:
                if section == self.COL_DELTA:
                    return "|ham % − spam %|: how far apart the two rates are, in points"
                if section == self.COL_GAIN:
                    return "How much knowing this check tells about ham vs spam (higher is better)"
                if section == self.COL_RANK:
                    return (
                        "What ranks the checks: the information gain at the ends of the Wilson "
                        "95 % intervals closest to each other, so small samples rank low"
                    )
                if section in (self.COL_HAM, self.COL_SPAM, self.COL_SENT):
                    return "matched: the check was true; applicable: it could be decided"
        return None

    def value(self, row: CheckRow, col: int) -> Any:
        """The raw number (or text) behind a cell; also what sorting uses."""
        if col == self.COL_CHECK:
            return row.check
        if col == self.COL_DELTA:
            return row.delta
        if col == self.COL_GAIN:
            return row.info_gain
        if col == self.COL_RANK:
            return row.rank_score
        role, pct = self._ROLE_COLS[col]
        return row.pct(role) if pct else tuple(row.counts.get(role, [0, 0]))

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, col = self.rows[index.row()], index.column()
        value = self.value(row, col)
        if role == SORT_ROLE:
            return value
        if role == Qt.ItemDataRole.DisplayRole:
            if col == self.COL_CHECK:
                return value
            if col in (self.COL_HAM, self.COL_SPAM, self.COL_SENT):
                return "–" if value[1] == 0 else f"{value[0]:,} / {value[1]:,}"
            if col == self.COL_DELTA:
                return "–" if value is None else f"{value:.1f} pts"
            if col == self.COL_GAIN:
                return "–" if value is None else f"{value:.3f}"
            if col == self.COL_RANK:
                text = "–" if value is None else f"{value:.3f}"
                return f"{text} ⚠ few messages" if row.few_messages else text
            return _fmt_pct(value)
        if role == Qt.ItemDataRole.TextAlignmentRole and col != self.COL_CHECK:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and col in (self.COL_HAM, self.COL_SPAM):
            return "matched: the check was true; applicable: it could be decided"
        if role == Qt.ItemDataRole.ToolTipRole and row.few_messages:
            return self.FEW_TIP
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Numbers as numbers; cells with no value always last, whichever the direction."""
        reverse = order == Qt.SortOrder.DescendingOrder

        def key(r: CheckRow) -> Any:
            v = self.value(r, column)
            if isinstance(v, tuple):
                v = v[0] / v[1] if v[1] else None
            return v

        present = [r for r in self.rows if key(r) is not None]
        missing = [r for r in self.rows if key(r) is None]
        self.layoutAboutToBeChanged.emit()
        present.sort(key=key, reverse=reverse)
        self.rows = present + missing
        self.layoutChanged.emit()


def hour_distribution(tables: Iterable[Any], column: str) -> dict[str, list[int]]:
    """role -> messages per sender-local hour 0..23, from the hour-of-day extra `column`."""
    out: dict[str, list[int]] = {}
    for t in tables:
        col = t.columns.get(column)
        if col is None:
            continue
        hist = out.setdefault(t.role, [0] * 24)
        for h in col:
            if isinstance(h, int) and not isinstance(h, bool) and 0 <= h < 24:
                hist[h] += 1
    return out


#: The filter's words are the cells' words (VALUE_WORDS): one wording everywhere.
VALUE_WORDS = {True: "yes", False: "no", None: "n/a"}
VALUE_FILTERS = {"any value": None, "yes": True, "no": False, "n/a": "none"}


class MessagesModel(QAbstractTableModel):
    """One folder's messages, optionally only those where a check has a given value."""

    HEADERS = ["UID", "Date", "From", "Origin IP", "Value"]

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.table: Any = None
        self.check = ""
        self.rows: list[int] = []  # indexes into the table

    def set_table(self, table: Any, check: str = "", want: Any = None) -> None:
        self.beginResetModel()
        self.table, self.check = table, check
        self.rows = []
        if table is not None:
            col = table.columns.get(check) if check else None
            for i in range(len(table.uids)):
                if col is not None and want is not None:
                    v = col[i]
                    if want == "none" and v is not None:
                        continue
                    if want in (True, False) and v is not want:
                        continue
                self.rows.append(i)
        self.endResetModel()

    def uid_at(self, row: int) -> int:
        return int(self.table.uids[self.rows[row]])

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(  # noqa: N802 - Qt API
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            if section == 4 and self.check:
                return self.check
            return self.HEADERS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role != Qt.ItemDataRole.DisplayRole:
            return None
        i = self.rows[index.row()]
        cols = self.table.columns
        col = index.column()
        if col == 0:
            return str(self.table.uids[i])
        if col == 1:
            return (cols.get("date") or [""] * (i + 1))[i] or ""
        if col == 2:
            return (cols.get("from_address") or [""] * (i + 1))[i] or ""
        if col == 3:
            return (cols.get("origin_ip") or [""] * (i + 1))[i] or ""
        if not self.check:
            return ""
        v = cols.get(self.check, [None] * (i + 1))[i]
        return VALUE_WORDS.get(v, str(v))


def explain_text(info: Mapping[str, Any], checks: Iterable[str]) -> str:
    """Each check's value and the module's reason, as plain text lines."""
    lines = []
    for check in checks:
        module, _, short = check.partition(".")
        values = info.get(module) or {}
        v = values.get(short)
        shown = VALUE_WORDS.get(v, str(v))
        why = (values.get("_why") or {}).get(short, "") if isinstance(values, dict) else ""
        if not why and values.get("_error"):
            why = f"module error: {values['_error']}"
        lines.append(f"{check}: {shown}" + (f" — {why}" if why else ""))
    return "\n".join(lines)
