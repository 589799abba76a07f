"""Cancel on a folder big enough for the analysis worker processes (3,000 messages): the run
is reported cancelled about a second after the button is pressed, whether the press comes
while headers are still being fetched or while the messages are being analysed, and what
was done is kept for the next run."""

from __future__ import annotations

# ruff: noqa: F811 - the fixtures imported from test_gui are used by name
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PySide6.QtWidgets", reason="PySide6 is not installed")

from PySide6.QtCore import Qt  # noqa: E402
from test_gui import close_window, configure, isolated, make_window  # noqa: E402, F401

from fixtures.generator import generate_mailbox  # noqa: E402
from mailstats.accounts.config import Account  # noqa: E402

pytestmark = pytest.mark.gui

N = 3000
#: loose: the figure measured on a quiet machine is in docs/benchmarks.md (about 1 s)
BOUND_S = 3.0


@pytest.fixture(scope="module")
def big_mailbox(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    box = generate_mailbox(seed=31, n_ham=N, n_spam=0, n_sent=0, dns_failures=False)
    root = tmp_path_factory.mktemp("cancel")
    return {"maildir": box.write_maildir(root / "Maildir"), "mbox": box.write_mbox(root / "mbox")}


@pytest.mark.parametrize(
    ("kind", "phase"),
    [("maildir", "Analysing"), ("mbox", "Analysing"), ("maildir", "Fetching headers")],
)
def test_cancel_is_reported_within_a_second_or_so(
    qtbot: Any, isolated: Path, big_mailbox: dict[str, Path], kind: str, phase: str
) -> None:
    win = make_window(qtbot, isolated)
    win.store.upsert(
        Account(
            name="big",
            path=str(big_mailbox[kind]),
            full_name="Dana Whitfield",
            own_domains=["example.org"],
            ham=["INBOX"],
        )
    )
    win._accounts_changed()
    configure(win, None)  # the modules that need no DNS; never the system resolver
    win.go("Run")
    qtbot.mouseClick(win.run.run_button, Qt.MouseButton.LeftButton)
    # mid-run: the folder label names the phase while it is under way
    qtbot.waitUntil(lambda: win.run.folder_label.text().startswith(phase), timeout=60000)
    assert win.run.running
    t0 = time.monotonic()
    qtbot.mouseClick(win.run.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.results.outcome is not None, timeout=60000)
    took = time.monotonic() - t0
    print(f"cancel ({kind}, while {phase.lower()}) reported after {took:.2f} s")
    outcome = win.results.outcome
    assert outcome.cancelled
    assert outcome.result.accounts[0].status == "cancelled"
    assert win.run.overall_label.text().startswith("Cancelled.")
    folders = outcome.result.accounts[0].folders
    # it stopped part-way: not every message was analysed, and the folder's counts stand
    # for the messages analysed (none fetched but never evaluated reads as "not applicable")
    assert sum(f.evaluated for f in folders) < N
    assert all(f.total == f.evaluated == len(f.uids) for f in folders)
    assert took <= BOUND_S, f"cancel took {took:.2f} s"
    assert win.run.run_button.isEnabled() and not win.run.running
    close_window(win)
