"""A second run in the same window counts what that run did, not that plus the first run's.

The window keeps one module registry for its whole life; the engine makes fresh module
instances per run, so DNSBL counters and the like start from zero each time.
"""

from __future__ import annotations

# ruff: noqa: F811 - the fixtures imported from test_gui are used by name
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PySide6.QtWidgets", reason="PySide6 is not installed")

from test_gui import (  # noqa: E402, F401
    add_local_account,
    close_window,
    configure,
    isolated,
    maildir,
    make_window,
    map_folders,
    run_to_end,
)

pytestmark = pytest.mark.gui


def test_second_run_in_one_window_gives_identical_counters(
    qtbot: Any, isolated: Path, maildir: Path, dns: Any, generated_mailbox: Any
) -> None:
    win = make_window(qtbot, isolated)
    add_local_account(qtbot, win, "dana", maildir)
    map_folders(qtbot, win, "dana")
    configure(win, dns.server_spec)
    win.store.config.settings.dnsbl_zones = list(generated_mailbox.settings["dnsbl_zones"])
    win.store.save()
    counters = []
    for _ in range(2):
        # the same work each time: without a cache every message is evaluated again
        for suffix in ("", "-wal", "-shm"):
            Path(str(isolated / "gui-cache.sqlite") + suffix).unlink(missing_ok=True)
        outcome = run_to_end(qtbot, win)
        assert not outcome.cancelled and outcome.result.ok
        counters.append(outcome.result.module_counters)
    assert counters[0] == counters[1]
    listed = sum(v for k, v in counters[0]["dnsbl"].items() if k.endswith(".listed"))
    assert listed > 0
    close_window(win)
