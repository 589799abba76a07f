"""Which checks separate ham from spam: per-check rates, intervals and scores.

Everything here works from `summary.csv` (matched / applicable / total per folder and check),
so the figures can be recomputed by anyone from the published counts, without messages.

Definitions (the `indicators.csv` contract in DESIGN.md):

- rate = matched / applicable, with a Wilson 95 % score interval (well behaved at 0 and 1 and
  for small n, unlike the normal approximation).
- so_ratio = spam_rate / (ham_rate + spam_rate), as SpamAssassin's hit-frequencies: 1.0 fires
  only on spam, 0.0 only on ham, 0.5 does not separate.
- info_gain: mutual information, in bits, between the check's value (True/False) and the
  ham/spam label over the *applicable* messages of both classes. It depends on the class mix of
  the pooled messages, which is why it is computed per scope.
- odds_ratio = (spam_matched * ham_unmatched) / (spam_unmatched * ham_matched): above 1 the
  check points to spam, below 1 to ham. Zero-cell rule (Haldane-Anscombe): when any of the
  four cells is 0, 0.5 is added to every cell, so the ratio stays finite and comparable.

Undefined values are None (an empty CSV cell), never a division by zero: an account without a
spam folder has no spam rate, no so_ratio, no info gain and no odds ratio.

- rank_score: the information gain the counts *guarantee*: ham and spam rates moved to the
  ends of their Wilson 95 % intervals that lie closest to each other, and the information gain
  computed at those rates (0 when the intervals overlap). A check seen on 13 ham and 5 spam
  messages has wide intervals and so a small score, however clean its raw split looks: the
  ranking rewards separation that the sample size supports. None when a class has no
  applicable message.
- few_messages: 1 when either class has fewer than MIN_DECIDED (30) applicable (decided)
  messages, so even its rank_score rests on little evidence; 0 otherwise.

Row order: scope `all` first, then accounts in order of first appearance in summary.csv;
within a scope by rank_score descending (undefined last), then info_gain, then check name.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INDICATOR_COLUMNS = [
    "scope",
    "check",
    "ham_matched",
    "ham_applicable",
    "spam_matched",
    "spam_applicable",
    "ham_rate",
    "ham_rate_low",
    "ham_rate_high",
    "spam_rate",
    "spam_rate_low",
    "spam_rate_high",
    "so_ratio",
    "info_gain",
    "odds_ratio",
    "rank_score",
    "few_messages",
]

#: Below this many decided messages in either class a check is flagged `few_messages`.
MIN_DECIDED = 30

MAILBOX_COLUMNS = [
    "account",
    "check",
    "ham_total",
    "ham_matched",
    "ham_applicable",
    "ham_pct",
    "spam_total",
    "spam_matched",
    "spam_applicable",
    "spam_pct",
]

ALL_SCOPE = "all"


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """Wilson score interval for k successes in n trials; None when n is 0 (no data)."""
    if n <= 0:
        return None
    if k < 0 or k > n:
        raise ValueError(f"k={k} outside 0..n={n}")
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    # Clamp the rounding noise at the edges (k = 0 or k = n give exactly 0 / 1 bounds).
    return max(0.0, centre - half), min(1.0, centre + half)


def _entropy(counts: Iterable[float]) -> float:
    counts = [c for c in counts if c > 0]
    total = sum(counts)
    if total <= 0:
        return 0.0
    return -sum((c / total) * math.log2(c / total) for c in counts)


def info_gain(
    ham_matched: int, ham_applicable: int, spam_matched: int, spam_applicable: int
) -> float | None:
    """Bits of information the check gives about ham vs spam over the applicable messages.

    H(label) - H(label | check). None when either class has no applicable message: with one
    class only there is no label uncertainty to reduce, and calling that "0 bits" would rank
    the check as useless when it simply was not measured.
    """
    if ham_applicable <= 0 or spam_applicable <= 0:
        return None
    n = ham_applicable + spam_applicable
    matched = ham_matched + spam_matched
    unmatched = n - matched
    h_label = _entropy([ham_applicable, spam_applicable])
    h_cond = (matched / n) * _entropy([ham_matched, spam_matched]) + (unmatched / n) * _entropy(
        [ham_applicable - ham_matched, spam_applicable - spam_matched]
    )
    return max(0.0, h_label - h_cond)


def odds_ratio(
    ham_matched: int, ham_applicable: int, spam_matched: int, spam_applicable: int
) -> float | None:
    """Odds of matching in spam over odds of matching in ham (Haldane-Anscombe on zeros)."""
    if ham_applicable <= 0 or spam_applicable <= 0:
        return None
    a = float(spam_matched)
    b = float(spam_applicable - spam_matched)
    c = float(ham_matched)
    d = float(ham_applicable - ham_matched)
    if 0.0 in (a, b, c, d):
        a, b, c, d = a + 0.5, b + 0.5, c + 0.5, d + 0.5
    return (a * d) / (b * c)


def so_ratio(ham_rate: float | None, spam_rate: float | None) -> float | None:
    """spam_rate / (ham_rate + spam_rate); None when a rate is missing or both are 0."""
    if ham_rate is None or spam_rate is None or ham_rate + spam_rate == 0:
        return None
    return spam_rate / (ham_rate + spam_rate)


def rank_score(
    ham_matched: int, ham_applicable: int, spam_matched: int, spam_applicable: int
) -> float | None:
    """Information gain at the Wilson bounds: the separation the sample size guarantees.

    The rate of the class that matches more is lowered to its interval's lower bound and the
    other class's rate raised to its upper bound; when they meet, nothing is guaranteed and the
    score is 0. Class sizes stay as measured, so the score is in the same bits as info_gain
    and never exceeds it.
    """
    ham = wilson(ham_matched, ham_applicable)
    spam = wilson(spam_matched, spam_applicable)
    if ham is None or spam is None:
        return None
    if ham_matched / ham_applicable >= spam_matched / spam_applicable:
        p_ham, p_spam = ham[0], spam[1]
        if p_ham <= p_spam:
            return 0.0
    else:
        p_ham, p_spam = ham[1], spam[0]
        if p_spam <= p_ham:
            return 0.0
    gain = info_gain_rates(p_ham, ham_applicable, p_spam, spam_applicable)
    full = info_gain(ham_matched, ham_applicable, spam_matched, spam_applicable)
    return min(gain, full) if full is not None else gain


def info_gain_rates(p_ham: float, n_ham: int, p_spam: float, n_spam: int) -> float:
    """info_gain for rates rather than counts (fractional matched counts are fine)."""
    n = n_ham + n_spam
    ham_m, spam_m = p_ham * n_ham, p_spam * n_spam
    matched = ham_m + spam_m
    h_label = _entropy([n_ham, n_spam])
    h_cond = (matched / n) * _entropy([ham_m, spam_m]) + ((n - matched) / n) * _entropy(
        [n_ham - ham_m, n_spam - spam_m]
    )
    return max(0.0, h_label - h_cond)


def few_messages(ham_applicable: int, spam_applicable: int) -> bool:
    """Fewer than MIN_DECIDED decided messages in either class."""
    return min(ham_applicable, spam_applicable) < MIN_DECIDED


@dataclass
class _Counts:
    ham_matched: int = 0
    ham_applicable: int = 0
    ham_total: int = 0
    spam_matched: int = 0
    spam_applicable: int = 0
    spam_total: int = 0

    def add(self, role: str, matched: int, applicable: int, total: int) -> None:
        if role == "ham":
            self.ham_matched += matched
            self.ham_applicable += applicable
            self.ham_total += total
        elif role == "spam":
            self.spam_matched += matched
            self.spam_applicable += applicable
            self.spam_total += total


def _int(value: Any) -> int:
    if value is None or value == "":
        return 0
    return int(value)


def _aggregate(
    summary_rows: Iterable[Mapping[str, Any]],
) -> tuple[list[str], list[str], dict[tuple[str, str], _Counts]]:
    """Sum ham and spam folders per (scope, check); sent folders are not a class here."""
    accounts: list[str] = []
    checks: list[str] = []
    counts: dict[tuple[str, str], _Counts] = {}
    for row in summary_rows:
        account = str(row["account"])
        check = str(row["check"])
        role = str(row.get("role", "")).strip().lower()
        if account not in accounts:
            accounts.append(account)
        if check not in checks:
            checks.append(check)
        for scope in (ALL_SCOPE, account):
            counts.setdefault((scope, check), _Counts())
        if role not in ("ham", "spam"):
            continue
        matched, applicable, total = (
            _int(row["matched"]),
            _int(row["applicable"]),
            _int(row["total"]),
        )
        counts[(ALL_SCOPE, check)].add(role, matched, applicable, total)
        counts[(account, check)].add(role, matched, applicable, total)
    return accounts, checks, counts


def _rate(k: int, n: int) -> tuple[float | None, float | None, float | None]:
    interval = wilson(k, n)
    if interval is None:
        return None, None, None
    return k / n, interval[0], interval[1]


def _indicator_row(scope: str, check: str, c: _Counts) -> dict[str, Any]:
    ham_rate, ham_low, ham_high = _rate(c.ham_matched, c.ham_applicable)
    spam_rate, spam_low, spam_high = _rate(c.spam_matched, c.spam_applicable)
    args = (c.ham_matched, c.ham_applicable, c.spam_matched, c.spam_applicable)
    return {
        "scope": scope,
        "check": check,
        "ham_matched": c.ham_matched,
        "ham_applicable": c.ham_applicable,
        "spam_matched": c.spam_matched,
        "spam_applicable": c.spam_applicable,
        "ham_rate": ham_rate,
        "ham_rate_low": ham_low,
        "ham_rate_high": ham_high,
        "spam_rate": spam_rate,
        "spam_rate_low": spam_low,
        "spam_rate_high": spam_high,
        "so_ratio": so_ratio(ham_rate, spam_rate),
        "info_gain": info_gain(*args),
        "odds_ratio": odds_ratio(*args),
        "rank_score": rank_score(*args),
        "few_messages": few_messages(c.ham_applicable, c.spam_applicable),
    }


def rank_key(row: Mapping[str, Any]) -> tuple[int, float, float, str]:
    """Sort key: rank_score descending, undefined last, then info gain, then the name."""
    score, gain = row.get("rank_score"), row.get("info_gain")
    if score is None:
        return (1, 0.0, 0.0, str(row["check"]))
    return (0, -score, -(gain or 0.0), str(row["check"]))


def compute_indicators(summary_rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """indicators.csv rows: scope `all` then one scope per account, ranked by rank_score."""
    accounts, checks, counts = _aggregate(summary_rows)
    out: list[dict[str, Any]] = []
    for scope in [ALL_SCOPE, *accounts]:
        rows = [
            _indicator_row(scope, check, counts[(scope, check)])
            for check in checks
            if (scope, check) in counts  # an account need not have every check's rows
        ]
        out.extend(sorted(rows, key=rank_key))
    return out


def compute_mailboxes(summary_rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """mailboxes.csv rows, long format: one row per (account, check), the original's tables.

    Long rather than wide (`<check>.ham_pct` columns) because scripts filter and pivot long
    tables easily and a new module adds rows, not columns. The percentages are over the
    *applicable* messages (the original divided by the folder total, which counts "could not
    tell" as "no"); `*_total` keeps the folder total for that comparison. Order: accounts and
    checks in order of first appearance.
    """
    accounts, checks, counts = _aggregate(summary_rows)
    out: list[dict[str, Any]] = []
    for account in accounts:
        for check in checks:
            c = counts.get((account, check))
            if c is None:
                continue
            out.append(
                {
                    "account": account,
                    "check": check,
                    "ham_total": c.ham_total,
                    "ham_matched": c.ham_matched,
                    "ham_applicable": c.ham_applicable,
                    "ham_pct": 100.0 * c.ham_matched / c.ham_applicable
                    if c.ham_applicable
                    else None,
                    "spam_total": c.spam_total,
                    "spam_matched": c.spam_matched,
                    "spam_applicable": c.spam_applicable,
                    "spam_pct": 100.0 * c.spam_matched / c.spam_applicable
                    if c.spam_applicable
                    else None,
                }
            )
    return out


def read_summary(results_dir: str | Path) -> list[dict[str, str]]:
    with open(Path(results_dir) / "summary.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _write(path: Path, columns: list[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    """Through export.write_csv: one cell-escaping rule, atomic writes, floats to 6 places."""
    from mailstats.stats.export import write_csv

    def cell(value: Any) -> Any:
        return round(value, 6) if isinstance(value, float) else value

    write_csv(path, columns, ([cell(row.get(col)) for col in columns] for row in rows))
    return path


def write_indicators(out_dir: str | Path) -> Path:
    """Read out_dir/summary.csv, write out_dir/indicators.csv; returns its path."""
    out_dir = Path(out_dir)
    return _write(
        out_dir / "indicators.csv", INDICATOR_COLUMNS, compute_indicators(read_summary(out_dir))
    )


def write_mailboxes(out_dir: str | Path) -> Path:
    """Read out_dir/summary.csv, write out_dir/mailboxes.csv; returns its path."""
    out_dir = Path(out_dir)
    return _write(
        out_dir / "mailboxes.csv", MAILBOX_COLUMNS, compute_mailboxes(read_summary(out_dir))
    )
