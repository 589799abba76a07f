"""The results table model and the app's accounts store, without a window.

Numbers here are worked out by hand from the summary rows written in each test.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtCore", reason="PySide6 is not installed")

from PySide6.QtCore import Qt  # noqa: E402

from mailstats.accounts.config import Account, ConfigError, load_config  # noqa: E402
from mailstats.gui import models  # noqa: E402
from mailstats.gui.models import (  # noqa: E402
    SORT_ROLE,
    CheckRow,
    ResultsModel,
    build_check_rows,
    explain_text,
    hour_distribution,
)
from mailstats.gui.store import Store  # noqa: E402

pytestmark = pytest.mark.gui


def _row(account: str, folder: str, role: str, check: str, m: int, a: int, t: int) -> dict:
    return {
        "account": account,
        "folder": folder,
        "role": role,
        "check": check,
        "matched": m,
        "applicable": a,
        "total": t,
    }


SUMMARY = [
    # check "good": ham 90/100, spam 10/50 -> 90 % vs 20 %, gap 70 points
    _row("w", "INBOX", "ham", "good", 60, 60, 60),
    _row("w", "Old", "ham", "good", 30, 40, 40),
    _row("w", "Junk", "spam", "good", 10, 50, 50),
    # check "weak": ham 50/100, spam 20/50 -> 50 % vs 40 %, gap 10 points
    _row("w", "INBOX", "ham", "weak", 30, 60, 60),
    _row("w", "Old", "ham", "weak", 20, 40, 40),
    _row("w", "Junk", "spam", "weak", 20, 50, 50),
    # check "hamonly": nothing applicable in spam -> no gap
    _row("w", "INBOX", "ham", "hamonly", 6, 60, 60),
    _row("w", "Old", "ham", "hamonly", 4, 40, 40),
    _row("w", "Junk", "spam", "hamonly", 0, 0, 50),
    # sent folders are counted in their own column, never in ham or spam
    _row("w", "Sent", "sent", "good", 3, 4, 4),
    _row("w", "Sent", "sent", "weak", 1, 4, 4),
    _row("w", "Sent", "sent", "hamonly", 0, 4, 4),
]


def test_rows_sum_folders_per_role() -> None:
    rows = {r.check: r for r in build_check_rows(SUMMARY)}
    assert rows["good"].counts == {"ham": [90, 100], "spam": [10, 50], "sent": [3, 4]}
    assert rows["good"].pct("ham") == pytest.approx(90.0)
    assert rows["good"].pct("spam") == pytest.approx(20.0)
    assert rows["good"].delta == pytest.approx(70.0)
    assert rows["weak"].delta == pytest.approx(10.0)
    assert rows["hamonly"].pct("spam") is None
    assert rows["hamonly"].delta is None


def test_scope_filters_accounts() -> None:
    other = [_row("h", "INBOX", "ham", c, 1, 10, 10) for c in ("good", "weak", "hamonly")]
    pooled = {r.check: r for r in build_check_rows(SUMMARY + other)}
    assert pooled["good"].counts["ham"] == [91, 110]
    only_h = {r.check: r for r in build_check_rows(SUMMARY + other, "h")}
    assert only_h["good"].counts == {"ham": [1, 10]}
    assert only_h["good"].delta is None  # no spam folder in that account


def test_model_best_separating_first_and_cells(qtbot: object) -> None:
    model = ResultsModel()
    model.set_rows(build_check_rows(SUMMARY))
    assert [r.check for r in model.rows][:2] == ["good", "weak"]
    assert model.rowCount() == 3
    assert model.columnCount() == len(ResultsModel.HEADERS)
    good = model.index(0, ResultsModel.COL_HAM)
    assert model.data(good) == "90 / 100"
    assert model.data(model.index(0, ResultsModel.COL_SPAM)) == "10 / 50"
    assert model.data(model.index(0, ResultsModel.COL_HAM_PCT)) == "90.0 %"
    assert model.data(model.index(0, ResultsModel.COL_SPAM_PCT)) == "20.0 %"
    assert model.data(model.index(0, ResultsModel.COL_DELTA)) == "70.0 pts"
    assert model.data(model.index(0, ResultsModel.COL_SPAM_PCT), SORT_ROLE) == pytest.approx(20.0)
    hamonly = next(i for i, r in enumerate(model.rows) if r.check == "hamonly")
    assert model.data(model.index(hamonly, ResultsModel.COL_SPAM)) == "–"
    header = model.headerData(ResultsModel.COL_HAM_PCT, Qt.Orientation.Horizontal)
    assert header == "Ham\n%"


def test_model_sorts_numbers_with_missing_last(qtbot: object) -> None:
    model = ResultsModel()
    model.set_rows(build_check_rows(SUMMARY))
    model.sort(ResultsModel.COL_SPAM_PCT, Qt.SortOrder.AscendingOrder)
    assert [r.check for r in model.rows] == ["good", "weak", "hamonly"]  # 20 %, 40 %, none
    model.sort(ResultsModel.COL_SPAM_PCT, Qt.SortOrder.DescendingOrder)
    assert [r.check for r in model.rows] == ["weak", "good", "hamonly"]
    model.sort(ResultsModel.COL_HAM_PCT, Qt.SortOrder.AscendingOrder)
    assert [r.check for r in model.rows] == ["hamonly", "weak", "good"]  # 10, 50, 90 %
    model.sort(ResultsModel.COL_CHECK, Qt.SortOrder.AscendingOrder)
    assert [r.check for r in model.rows] == ["good", "hamonly", "weak"]


def test_separation_falls_back_to_gap_without_indicators(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_compute_indicators", None)
    rows = build_check_rows(SUMMARY)
    assert all(r.info_gain is None for r in rows)
    ordered = sorted(rows, key=models.separation_key)
    assert [r.check for r in ordered] == ["good", "weak", "hamonly"]


def test_info_gain_ranks_when_available() -> None:
    if models._compute_indicators is None:
        pytest.skip("mailstats.stats.indicators is not in this build")
    rows = {r.check: r for r in build_check_rows(SUMMARY)}
    # "good" splits 90/100 vs 10/50 far better than "weak" 50/100 vs 20/50
    assert rows["good"].info_gain > rows["weak"].info_gain > 0


def test_hour_distribution_counts_only_valid_hours() -> None:
    class T:
        def __init__(self, role: str, hours: list) -> None:
            self.role, self.columns = role, {"datetime.hour": hours}

    tables = [T("ham", [9, 9, 23, None, True, 24]), T("spam", [3]), T("ham", [0])]
    hist = hour_distribution(tables, "datetime.hour")
    assert hist["ham"][9] == 2 and hist["ham"][23] == 1 and hist["ham"][0] == 1
    assert sum(hist["ham"]) == 4  # None, a bool and 24 are not hours
    assert hist["spam"][3] == 1 and sum(hist["spam"]) == 1


def test_explain_text_gives_value_and_reason() -> None:
    info = {
        "received": {"from_match": True, "_why": {"from_match": "hop mx.example.org"}},
        "dkim": {"_error": "ValueError: bad"},
    }
    text = explain_text(info, ["received.from_match", "dkim.valid"])
    assert "received.from_match: yes — hop mx.example.org" in text
    assert "dkim.valid: n/a — module error: ValueError: bad" in text


def test_checkrow_pct_none_without_applicable() -> None:
    assert CheckRow("x", {"ham": [0, 0]}).pct("ham") is None


# -- the app's accounts file ------------------------------------------------------------
def test_store_keeps_unmapped_accounts_private_and_passwordless(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    path = tmp_path / "conf" / "accounts.toml"
    store = Store(path)
    acct = Account(name="work", host="imap.example.org", port=993, username="me@example.org")
    store.upsert(acct)
    local = Account(name="archive", path=str(tmp_path))
    store.upsert(local)
    assert store.set_password(acct, "s3cret-pw") is False  # no keyring: session only
    assert store.password_for(acct, "") == "s3cret-pw"
    assert store.password_for(acct, "from-keyring") == "from-keyring"
    text = path.read_text()
    assert "s3cret-pw" not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(ConfigError, match="map at least one folder"):
        load_config(path)  # what --batch says about the local account with no folders
    again = Store(path)  # the app reads it: no folders mapped is allowed
    assert again.load_error == ""
    assert [a.name for a in again.accounts] == ["work", "archive"]
    assert again.accounts[0].host == "imap.example.org"
    assert again.accounts[1].path == str(tmp_path)
    assert (again.accounts[1].ham, again.accounts[1].spam) == ([], [])
    assert again.session_passwords == {}
    again.accounts[1].ham = ["INBOX"]
    again.save()
    strict = load_config(path)  # once mapped, --batch accepts the same file
    assert strict.accounts[1].ham == ["INBOX"]


def test_store_without_accounts_keeps_settings(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    store = Store(path)
    store.upsert(Account(name="a", path=str(tmp_path), ham=["INBOX"]))
    store.config.settings.modules = ["received"]
    store.config.settings.extra["dns_timeout"] = 1.5
    store.remove("a")  # the file now has [settings] only
    assert "[[accounts]]" not in path.read_text()
    again = Store(path)
    assert again.load_error == "" and again.accounts == []
    assert again.config.settings.modules == ["received"]
    assert again.config.settings.extra["dns_timeout"] == 1.5
    assert again.config.path == path


def test_store_unreadable_file_is_reported_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    broken = '[[accounts]]\nname = "w"\nhost = "h"\nusername = "u"\nport = "x"\n'
    path.write_text(broken)
    store = Store(path)
    assert "account 'w'" in store.load_error and "'port' must be a number" in store.load_error
    assert store.accounts == []
    assert store.backup is not None and store.backup.read_text() == broken
    assert path.read_text() == broken  # nothing is written until the user saves
    store.upsert(Account(name="new", path=str(tmp_path)))
    assert store.backup.read_text() == broken
    assert [a.name for a in Store(path).accounts] == ["new"]


def test_store_import_accepts_unmapped_accounts(tmp_path: Path) -> None:
    src = tmp_path / "in.toml"
    src.write_text(f'[[accounts]]\nname = "m"\npath = "{tmp_path}"\n')
    store = Store(tmp_path / "mine.toml")
    assert store.import_file(src) == ["m"]
    assert store.account("m").path == str(tmp_path)


def test_store_rename_moves_session_password(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.toml")
    store.upsert(Account(name="a", path=str(tmp_path)))
    store.session_passwords["a"] = "pw"
    store.upsert(Account(name="b", path=str(tmp_path)), old_name="a")
    assert [x.name for x in store.accounts] == ["b"]
    assert store.session_passwords == {"b": "pw"}
    store.remove("b")
    assert store.accounts == [] and store.session_passwords == {}


def test_counts_have_thousands_separators(qtbot: object) -> None:
    summary = [
        {
            "account": "a",
            "folder": "INBOX",
            "role": "ham",
            "check": "big",
            "matched": 35048,
            "applicable": 54278,
            "total": 60000,
        },
        {
            "account": "a",
            "folder": "Junk",
            "role": "spam",
            "check": "big",
            "matched": 7,
            "applicable": 1000,
            "total": 1000,
        },
    ]
    model = ResultsModel()
    model.set_rows(build_check_rows(summary))
    assert model.data(model.index(0, ResultsModel.COL_HAM)) == "35,048 / 54,278"
    assert model.data(model.index(0, ResultsModel.COL_SPAM)) == "7 / 1,000"


def test_filter_words_are_the_cell_words() -> None:
    from mailstats.gui.models import VALUE_FILTERS, VALUE_WORDS

    assert set(VALUE_WORDS.values()) <= set(VALUE_FILTERS)
    for word, want in VALUE_FILTERS.items():
        if want is not None:
            assert VALUE_WORDS[None if want == "none" else want] == word


def test_checks_table_ranks_by_the_conservative_score_and_marks_few_messages(
    qtbot: object,
) -> None:
    if models._compute_indicators is None:
        pytest.skip("mailstats.stats.indicators is not in this build")
    # "tiny": a perfect split on 13 ham and 5 spam; "good": 90/100 vs 10/50 (see SUMMARY)
    tiny = [
        _row("w", "INBOX", "ham", "tiny", 13, 13, 13),
        _row("w", "Junk", "spam", "tiny", 0, 5, 5),
    ]
    rows = build_check_rows(SUMMARY + tiny)
    by = {r.check: r for r in rows}
    assert by["tiny"].info_gain > by["good"].info_gain  # the raw gain would put it first
    model = ResultsModel()
    model.set_rows(rows)
    model.sort(ResultsModel.COL_RANK, Qt.SortOrder.DescendingOrder)
    assert [r.check for r in model.rows][:2] == ["good", "tiny"]
    assert model.data(model.index(1, ResultsModel.COL_RANK)).endswith("⚠ few messages")
    assert "⚠" not in model.data(model.index(0, ResultsModel.COL_RANK))
    assert model.data(model.index(1, ResultsModel.COL_CHECK)) == "tiny"
    tip = model.data(model.index(1, ResultsModel.COL_CHECK), Qt.ItemDataRole.ToolTipRole)
    assert "fewer than 30" in tip
