"""Runs in the window: the bundled demo gives `mailstats demo`'s counts, a second run in the
same window gives the same numbers as the first, the message view follows the selection
(one message read at a time, superseded requests dropped), and Report always describes the
results on screen."""

from __future__ import annotations

# ruff: noqa: F811 - the fixtures imported from test_gui are used by name
import json
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PySide6.QtWidgets", reason="PySide6 is not installed")

from PySide6.QtCore import Qt  # noqa: E402
from test_gui import close_window, isolated, make_window  # noqa: E402, F401

from mailstats.cli import demo_dir  # noqa: E402
from mailstats.gui import results as results_module  # noqa: E402
from mailstats.gui.main_window import STEPS  # noqa: E402

pytestmark = pytest.mark.gui

ROLE_OF = {"INBOX": "ham", "Junk": "spam", "Sent": "sent"}


def run_demo(qtbot: Any, win: Any, from_accounts: bool = False) -> Any:
    before = win.results.outcome
    if from_accounts:  # the first screen a new user sees has the button too
        win.go("Accounts")
        qtbot.mouseClick(win.accounts.demo_button, Qt.MouseButton.LeftButton)
        assert win.nav.currentRow() == STEPS.index("Run")
    else:
        win.go("Run")
        assert win.run.demo_button.isEnabled()
        qtbot.mouseClick(win.run.demo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: win.results.outcome is not None and win.results.outcome is not before,
        timeout=120000,
    )
    return win.results.outcome


def counts_of(outcome: Any) -> dict[tuple[str, str], tuple[int, int, int]]:
    return {
        (fr.folder, check): (m, n, fr.total)
        for a in outcome.result.accounts
        for fr in a.folders
        for check, (m, n) in fr.counts.items()
    }


def test_demo_in_the_window_is_mailstats_demo(qtbot: Any, isolated: Path) -> None:
    expected = {
        (e["folder"], e["check"]): (e["matched"], e["applicable"], e["total"])
        for e in json.loads((demo_dir() / "expected.json").read_text())
    }
    assert len(expected) >= 75  # every check of every folder (75 when this was written)
    win = make_window(qtbot, isolated)
    outcome = run_demo(qtbot, win, from_accounts=True)
    got = counts_of(outcome)
    assert {k: got.get(k) for k in expected} == expected
    # the network checks answered from the snapshot: not "unknown" everywhere
    dnsbl = [v for (_f, c), v in got.items() if c.startswith("dnsbl.")]
    assert dnsbl and any(n > 0 for _m, n, _t in dnsbl)
    # nothing of the user's own: no account, no accounts file written
    assert win.store.accounts == []
    assert not (isolated / "config" / "accounts.toml").exists()
    tmp = outcome.demo.tmp
    assert tmp.is_dir()
    close_window(win)
    assert not tmp.exists()  # the throw-away cache is removed with the results


def test_second_run_in_the_same_window_counts_the_same(qtbot: Any, isolated: Path) -> None:
    win = make_window(qtbot, isolated)
    first = run_demo(qtbot, win)
    counts, counters = counts_of(first), first.result.module_counters
    tmp = first.demo.tmp
    second = run_demo(qtbot, win)
    assert not tmp.exists()  # the first run's results were let go
    assert counts_of(second) == counts
    assert second.result.module_counters == counters  # e.g. DNSBL listed, not doubled
    close_window(win)


def test_message_view_reads_one_message_and_follows_the_selection(
    qtbot: Any, isolated: Path
) -> None:
    win = make_window(qtbot, isolated)
    run_demo(qtbot, win)
    res = win.results
    res.tabs.setCurrentIndex(3)
    inbox = next(i for i in range(res.folder_box.count()) if "INBOX" in res.folder_box.itemText(i))
    res.folder_box.setCurrentIndex(inbox)
    qtbot.waitUntil(lambda: res.messages.rowCount() > 20, timeout=20000)
    calls: list[int] = []
    real = res.outcome.results.explain

    def counting(acct: Any, folder: str, uid: int) -> Any:
        calls.append(uid)
        time.sleep(0.05)  # a slow disk: the presses below come faster than the answers
        return real(acct, folder, uid)

    res.outcome.results.explain = counting
    res.message_view.setFocus()
    res.message_view.selectRow(0)
    for _ in range(10):
        qtbot.keyClick(res.message_view, Qt.Key.Key_Down)
    row = res.message_view.currentIndex().row()
    assert row == 10
    uid = res.messages.uid_at(row)
    assert res.header_text.placeholderText() == f"Reading message {uid}…"
    qtbot.waitUntil(lambda: res.shown == ("demo", "INBOX", uid), timeout=20000)
    qtbot.waitUntil(lambda: res.explaining is None, timeout=20000)
    # the first request, then (at most a few in flight) the last: not eleven
    assert calls[0] == res.messages.uid_at(0) and calls[-1] == uid
    assert len(calls) <= 3, calls
    # what is shown is the selected message's own header
    header = res.header_text.toPlainText()
    assert header
    own = list(res.outcome.results._cache().get_messages("demo", "INBOX", [uid]))
    assert header == own[0][1].decode("utf-8", "replace")
    assert "received.from_match: " in res.why_text.toPlainText()
    close_window(win)


@pytest.mark.skipif(results_module._write_report is None, reason="no report libraries")
def test_report_describes_the_results_on_screen(qtbot: Any, isolated: Path) -> None:
    win = make_window(qtbot, isolated)
    res = win.results
    opened: list[str] = []
    res.open_url = lambda url: opened.append(url.toLocalFile()) or True
    run_demo(qtbot, win)
    out = isolated / "out"
    res.export(str(out))
    qtbot.waitUntil(lambda: res.last_export == str(out), timeout=30000)
    first = json.loads((out / "manifest.json").read_text())["started"]
    second = run_demo(qtbot, win)  # a re-run, and no new export
    qtbot.mouseClick(res.report_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(opened), timeout=180000)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["started"] == second.result.started.isoformat() != first
    assert opened == [str(out / "report.html")]
    assert win.statusBar().currentMessage() == f"Wrote {out / 'report.html'}"
    close_window(win)


def test_second_run_with_the_windows_own_modules_counts_the_same(
    qtbot: Any, isolated: Path
) -> None:
    """The Run button uses the window's module registry for every run: state a module kept
    from the first run (counters, caches) must not leak into the second."""
    from mailstats.cli import _load_snapshot
    from mailstats.run.cache import Cache

    win = make_window(qtbot, isolated)
    win.accounts.import_accounts(str(demo_dir() / "accounts.toml"))
    outcomes = []
    for i in range(2):
        cache = isolated / f"cold-{i}.sqlite"  # both runs cold: each evaluates every message
        c = Cache(cache)
        _load_snapshot(c, demo_dir() / "dns_snapshot.json", win.store.config.settings.dns_servers)
        c.close()
        win.run.cache_path = cache
        win.go("Run")
        before = win.results.outcome
        qtbot.mouseClick(win.run.run_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(
            lambda b=before: win.results.outcome is not None and win.results.outcome is not b,
            timeout=120000,
        )
        outcomes.append(win.results.outcome)
    first, second = (o.result for o in outcomes)
    assert counts_of(outcomes[1]) == counts_of(outcomes[0])
    assert any(v for c in first.module_counters.values() for v in c.values())
    assert second.module_counters == first.module_counters
    close_window(win)


def test_a_new_run_lets_go_of_the_shown_runs_tables(qtbot: Any, isolated: Path) -> None:
    """Two runs' per-message tables are never held at once (the window kept a run's worth
    more memory after each run); nothing of the old run can be exported while the new one
    writes the cache, and the messages come back with the new results."""
    import weakref

    win = make_window(qtbot, isolated)
    first = run_demo(qtbot, win)
    res = win.results
    res.tabs.setCurrentIndex(3)
    qtbot.waitUntil(lambda: res.messages.rowCount() > 0, timeout=20000)
    tables = [fr.table for a in first.result.accounts for fr in a.folders]
    assert tables and all(t is not None for t in tables)
    refs = [weakref.ref(t) for t in tables]
    del tables
    win.go("Run")
    qtbot.mouseClick(win.run.demo_button, Qt.MouseButton.LeftButton)
    assert win.run.running
    assert all(r() is None for r in refs)  # freed at once, not at the end of the new run
    assert res.messages.rowCount() == 0 and "next results" in res.count_label.text()
    assert not res.export_button.isEnabled() and not res.share_button.isEnabled()
    qtbot.waitUntil(lambda: res.outcome is not first, timeout=120000)
    assert res.export_button.isEnabled()
    qtbot.waitUntil(lambda: res.messages.rowCount() > 0, timeout=20000)
    assert counts_of(res.outcome) == counts_of(first)
    close_window(win)
