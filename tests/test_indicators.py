"""Indicator figures checked against values worked out by hand (or by an independent formula)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailstats.stats.indicators import (
    INDICATOR_COLUMNS,
    MAILBOX_COLUMNS,
    MIN_DECIDED,
    compute_indicators,
    compute_mailboxes,
    info_gain,
    odds_ratio,
    rank_score,
    so_ratio,
    wilson,
    write_indicators,
    write_mailboxes,
)

Z = 1.96


def _wilson_closed_form(k: int, n: int) -> tuple[float, float]:
    """The textbook form (2np + z^2 +- z sqrt(z^2 + 4np(1-p))) / 2(n + z^2), kept separate."""
    p = k / n
    root = Z * math.sqrt(Z * Z + 4 * n * p * (1 - p))
    return (2 * n * p + Z * Z - root) / (2 * (n + Z * Z)), (2 * n * p + Z * Z + root) / (
        2 * (n + Z * Z)
    )


def test_wilson_original_inbox_figure() -> None:
    # Mailbox 2 of the original study: 1512 of 1631 inbox messages had a From match.
    low, high = wilson(1512, 1631)
    exp_low, exp_high = _wilson_closed_form(1512, 1631)
    assert low == pytest.approx(exp_low, abs=1e-12)
    assert high == pytest.approx(exp_high, abs=1e-12)
    # p = 0.92704; half-width is about 1.96 * sqrt(p q / n) = 0.0126, centre pulled toward 0.5.
    assert low == pytest.approx(0.9135, abs=5e-4)
    assert high == pytest.approx(0.9385, abs=5e-4)
    assert low < 1512 / 1631 < high


def test_wilson_edges() -> None:
    # k = 0: lower bound 0, upper bound z^2 / (n + z^2) = 3.8416 / 13.8416 for n = 10.
    low, high = wilson(0, 10)
    assert low == 0.0
    assert high == pytest.approx(3.8416 / 13.8416, abs=1e-9)
    low, high = wilson(10, 10)
    assert high == 1.0
    assert low == pytest.approx(10 / 13.8416, abs=1e-9)
    assert wilson(0, 0) is None
    with pytest.raises(ValueError):
        wilson(5, 4)


def test_info_gain_small_table_by_hand() -> None:
    # 4 ham (1 matched), 4 spam (3 matched): H(label) = 1 bit; each branch has a 1:3 split,
    # H(1/4) = 0.25*2 + 0.75*log2(4/3) = 0.5 + 0.311278 = 0.811278; gain = 0.188722.
    assert info_gain(1, 4, 3, 4) == pytest.approx(0.188722, abs=1e-6)
    # Perfect separation of a balanced set: one full bit.
    assert info_gain(0, 5, 5, 5) == pytest.approx(1.0)
    # Same rate in both classes: nothing learned.
    assert info_gain(2, 4, 1, 2) == pytest.approx(0.0, abs=1e-12)
    # Unbalanced 2 ham / 6 spam, check fires on all spam only: gain = H(label) = H(1/4).
    assert info_gain(0, 2, 6, 6) == pytest.approx(0.811278, abs=1e-6)
    assert info_gain(0, 0, 3, 4) is None
    assert info_gain(1, 4, 0, 0) is None


def test_odds_ratio_and_so_ratio() -> None:
    # spam 3/4 matched, ham 1/4 matched: (3*3) / (1*1) = 9.
    assert odds_ratio(1, 4, 3, 4) == pytest.approx(9.0)
    # Zero cells: +0.5 everywhere -> (5.5 * 5.5) / (0.5 * 0.5) = 121.
    assert odds_ratio(0, 5, 5, 5) == pytest.approx(121.0)
    assert odds_ratio(1, 4, 0, 0) is None
    assert so_ratio(0.2, 0.6) == pytest.approx(0.75)
    assert so_ratio(0.0, 0.0) is None
    assert so_ratio(None, 0.5) is None


def _summary() -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []

    def add(account: str, folder: str, role: str, check: str, m: int, a: int, t: int) -> None:
        rows.append(
            {
                "account": account,
                "folder": folder,
                "role": role,
                "check": check,
                "matched": str(m),
                "applicable": str(a),
                "total": str(t),
            }
        )

    # Account "a": ham 10 (two folders), spam 10, sent 5 (ignored as a class).
    add("a", "INBOX", "ham", "x.sep", 1, 6, 6)
    add("a", "Lists", "ham", "x.sep", 0, 4, 4)
    add("a", "Junk", "spam", "x.sep", 9, 10, 10)
    add("a", "Sent", "sent", "x.sep", 5, 5, 5)
    add("a", "INBOX", "ham", "x.none", 0, 0, 6)
    add("a", "Lists", "ham", "x.none", 0, 0, 4)
    add("a", "Junk", "spam", "x.none", 0, 0, 10)
    add("a", "INBOX", "ham", "x.all", 6, 6, 6)
    add("a", "Lists", "ham", "x.all", 4, 4, 4)
    add("a", "Junk", "spam", "x.all", 10, 10, 10)
    # Account "b": ham only, no spam folder (like mailboxes 5, 6, 11 of the original).
    add("b", "INBOX", "ham", "x.sep", 3, 8, 10)
    add("b", "INBOX", "ham", "x.none", 0, 0, 10)
    add("b", "INBOX", "ham", "x.all", 10, 10, 10)
    return rows


def _by(rows: list[dict], scope: str, check: str) -> dict:
    return next(r for r in rows if r["scope"] == scope and r["check"] == check)


def test_compute_indicators_scopes_and_pooling() -> None:
    rows = compute_indicators(_summary())
    assert all(list(r) == INDICATOR_COLUMNS for r in rows)
    assert [r["scope"] for r in rows] == ["all"] * 3 + ["a"] * 3 + ["b"] * 3
    pooled = _by(rows, "all", "x.sep")
    # Ham pooled over both accounts and both folders: 1+0+3 of 6+4+8; sent not counted.
    assert (pooled["ham_matched"], pooled["ham_applicable"]) == (4, 18)
    assert (pooled["spam_matched"], pooled["spam_applicable"]) == (9, 10)
    assert pooled["ham_rate"] == pytest.approx(4 / 18)
    assert pooled["spam_rate"] == pytest.approx(0.9)
    assert pooled["so_ratio"] == pytest.approx(0.9 / (0.9 + 4 / 18))
    # (9 * 14) / (1 * 4) = 31.5
    assert pooled["odds_ratio"] == pytest.approx(31.5)
    low, high = _wilson_closed_form(9, 10)
    assert (pooled["spam_rate_low"], pooled["spam_rate_high"]) == pytest.approx((low, high))
    # Ranking: x.sep has the largest gain, x.all gains 0, x.none is undefined and last.
    assert [r["check"] for r in rows[:3]] == ["x.sep", "x.all", "x.none"]


def test_check_always_none_and_true_everywhere() -> None:
    rows = compute_indicators(_summary())
    never = _by(rows, "all", "x.none")
    for col in INDICATOR_COLUMNS[6:]:
        if col != "few_messages":
            assert never[col] is None, col
    assert never["few_messages"] is True
    always = _by(rows, "a", "x.all")
    assert always["ham_rate"] == 1.0 and always["spam_rate"] == 1.0
    assert always["so_ratio"] == pytest.approx(0.5)
    assert always["info_gain"] == pytest.approx(0.0, abs=1e-12)
    # Haldane-Anscombe: (10.5 * 0.5) / (0.5 * 10.5) = 1.
    assert always["odds_ratio"] == pytest.approx(1.0)


def test_zero_spam_account_has_empty_spam_figures() -> None:
    rows = compute_indicators(_summary())
    b = _by(rows, "b", "x.sep")
    assert b["ham_rate"] == pytest.approx(3 / 8)
    assert b["spam_applicable"] == 0
    for col in ("spam_rate", "spam_rate_low", "spam_rate_high", "so_ratio", "info_gain"):
        assert b[col] is None
    assert b["odds_ratio"] is None


def test_compute_mailboxes_long_format() -> None:
    rows = compute_mailboxes(_summary())
    assert all(list(r) == MAILBOX_COLUMNS for r in rows)
    assert len(rows) == 6
    a = next(r for r in rows if r["account"] == "a" and r["check"] == "x.sep")
    assert (a["ham_total"], a["ham_matched"], a["ham_applicable"]) == (10, 1, 10)
    assert a["ham_pct"] == pytest.approx(10.0)
    assert (a["spam_total"], a["spam_matched"], a["spam_pct"]) == (10, 9, pytest.approx(90.0))
    b = next(r for r in rows if r["account"] == "b" and r["check"] == "x.sep")
    assert b["ham_pct"] == pytest.approx(37.5)
    assert b["spam_total"] == 0 and b["spam_pct"] is None
    bn = next(r for r in rows if r["account"] == "b" and r["check"] == "x.none")
    assert bn["ham_pct"] is None


def test_written_cells_are_escaped_and_numbers_stay_numbers(tmp_path) -> None:
    from mailstats.stats.indicators import _write

    _write(
        tmp_path / "x.csv",
        ["a", "b", "c", "d"],
        [{"a": "=HYPERLINK(1)", "b": -0.1234567, "c": None, "d": "@x"}],
    )
    lines = (tmp_path / "x.csv").read_text().splitlines()
    assert lines[1] == "'=HYPERLINK(1),-0.123457,,'@x"


def test_write_files_roundtrip(tmp_path: Path) -> None:
    rows = _summary()
    for r in rows:
        if r["account"] == "b":
            r["account"] = "=evil()"
    with open(tmp_path / "summary.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    ind = write_indicators(tmp_path)
    mb = write_mailboxes(tmp_path)
    with open(ind, newline="") as fh:
        got = list(csv.DictReader(fh))
    assert list(got[0]) == INDICATOR_COLUMNS
    assert len(got) == 9
    evil = [r for r in got if r["scope"].endswith("evil()")]
    assert evil and all(r["scope"] == "'=evil()" for r in evil)
    sep_b = next(r for r in evil if r["check"] == "x.sep")
    assert sep_b["spam_rate"] == "" and sep_b["info_gain"] == ""
    assert float(sep_b["ham_rate"]) == pytest.approx(0.375)
    with open(mb, newline="") as fh:
        got_mb = list(csv.DictReader(fh))
    assert list(got_mb[0]) == MAILBOX_COLUMNS
    assert {r["account"] for r in got_mb} == {"a", "'=evil()"}


def test_accounts_with_different_checks() -> None:
    rows = [
        {
            "account": "a",
            "folder": "I",
            "role": "ham",
            "check": "x",
            "matched": 1,
            "applicable": 2,
            "total": 2,
        },
        {
            "account": "b",
            "folder": "I",
            "role": "ham",
            "check": "y",
            "matched": 1,
            "applicable": 2,
            "total": 2,
        },
    ]
    got = {(r["scope"], r["check"]) for r in compute_indicators(rows)}
    assert got == {("all", "x"), ("all", "y"), ("a", "x"), ("b", "y")}
    assert {(r["account"], r["check"]) for r in compute_mailboxes(rows)} == {("a", "x"), ("b", "y")}


def _mi_bits(table: list[list[float]]) -> float:
    """Mutual information of a 2x2 table of (possibly fractional) counts, from its cells."""
    n = sum(map(sum, table))
    rows = [sum(r) for r in table]
    cols = [table[0][j] + table[1][j] for j in range(2)]
    return sum(
        table[i][j] / n * math.log2(table[i][j] * n / (rows[i] * cols[j]))
        for i in range(2)
        for j in range(2)
        if table[i][j] > 0
    )


def test_rank_score_is_info_gain_at_the_near_wilson_bounds() -> None:
    # 90/100 ham vs 10/50 spam: ham rate down to its lower bound, spam up to its upper bound.
    ham_low = _wilson_closed_form(90, 100)[0]
    spam_high = _wilson_closed_form(10, 50)[1]
    table = [[ham_low * 100, (1 - ham_low) * 100], [spam_high * 50, (1 - spam_high) * 50]]
    assert rank_score(90, 100, 10, 50) == pytest.approx(_mi_bits(table), rel=1e-9)
    # the mirror image (check points to spam) scores the same
    assert rank_score(10, 50, 90, 100) == pytest.approx(rank_score(90, 100, 10, 50) or 0)
    # overlapping intervals guarantee nothing
    assert rank_score(6, 10, 4, 10) == 0.0
    assert rank_score(5, 5, 0, 0) is None


@settings(derandomize=True, max_examples=300)
@given(
    st.integers(1, 400), st.integers(1, 400), st.floats(0, 1), st.floats(0, 1), st.integers(2, 6)
)
def test_rank_score_bounded_by_info_gain_and_grows_with_evidence(
    n_ham: int, n_spam: int, p_ham: float, p_spam: float, k: int
) -> None:
    a, b = round(p_ham * n_ham), round(p_spam * n_spam)
    score = rank_score(a, n_ham, b, n_spam)
    gain = info_gain(a, n_ham, b, n_spam)
    assert score is not None and gain is not None
    assert 0.0 <= score <= gain + 1e-12
    # the same rates measured on k times the messages never score lower
    more = rank_score(k * a, k * n_ham, k * b, k * n_spam)
    assert more is not None and more >= score - 1e-12


def test_small_sample_never_outranks_a_well_measured_separator() -> None:
    rows: list[dict] = []

    def add(check: str, role: str, matched: int, n: int) -> None:
        rows.append(
            {
                "account": "a",
                "folder": role,
                "role": role,
                "check": check,
                "matched": matched,
                "applicable": n,
                "total": n,
            }
        )

    # 13 ham all True, 5 spam all False: a perfect split on 18 messages
    add("x.tiny", "ham", 13, 13)
    add("x.tiny", "spam", 0, 5)
    # 80 % vs 20 % on 1000 messages each
    add("x.solid", "ham", 800, 1000)
    add("x.solid", "spam", 200, 1000)
    out = [r for r in compute_indicators(rows) if r["scope"] == "all"]
    by = {r["check"]: r for r in out}
    assert by["x.tiny"]["info_gain"] > by["x.solid"]["info_gain"]  # the raw gain is fooled
    assert [r["check"] for r in out] == ["x.solid", "x.tiny"]
    assert by["x.tiny"]["few_messages"] is True and by["x.solid"]["few_messages"] is False
    assert MIN_DECIDED == 30


def test_few_messages_threshold_is_per_class() -> None:
    def one(ham: int, spam: int) -> bool:
        rows = [
            {
                "account": "a",
                "folder": r,
                "role": r,
                "check": "c.x",
                "matched": 0,
                "applicable": n,
                "total": n,
            }
            for r, n in (("ham", ham), ("spam", spam))
        ]
        return compute_indicators(rows)[0]["few_messages"]

    assert one(30, 30) is False
    assert one(29, 1000) is True
    assert one(1000, 29) is True
    assert one(1000, 0) is True
