"""The results screen says so when the run's resolver lied, and says nothing when it did not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PySide6.QtWidgets", reason="PySide6 is not installed")

from hostile_dns import HostileDns, zone_from_records  # noqa: E402
from PySide6.QtCore import QCoreApplication, QSettings  # noqa: E402

from fixtures.generator import generate_mailbox  # noqa: E402
from mailstats.accounts.config import Account, Config, Settings  # noqa: E402
from mailstats.gui.results import ResultsPage  # noqa: E402
from mailstats.gui.run_page import RunOutcome, _hours  # noqa: E402
from mailstats.run.cache import Cache  # noqa: E402
from mailstats.run.engine import Engine  # noqa: E402


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, qapp: Any) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    QCoreApplication.setOrganizationName("mailstats-test")
    QCoreApplication.setApplicationName("mailstats-test")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qs"))
    return tmp_path


@pytest.mark.parametrize("mode", ["nxdomain", "honest"])
def test_the_results_screen_shows_a_lying_resolver(qtbot: Any, isolated: Path, mode: str) -> None:
    box = generate_mailbox(9, 30, 20, 5, dns_failures=False)
    box.write_mbox(isolated / "mail")
    zone = zone_from_records(box.dns_records) if mode == "honest" else {}
    with HostileDns(mode, zone=zone) as srv:
        settings = Settings(dns_servers=[srv.spec], modules=["domain", "dynamic", "datetime"])
        acct = Account(
            name="l", path=str(isolated / "mail"), ham=["INBOX"], spam=["Junk"], sent=["Sent"]
        )
        cfg = Config(settings, [acct])
        engine = Engine(cfg, cache=Cache(isolated / "c.sqlite"))
        result = engine.run()
    page = ResultsPage()
    qtbot.addWidget(page)
    page.show()
    page.show_outcome(RunOutcome(engine, result, [acct], _hours(engine, result), False))
    if mode == "nxdomain":
        assert page.dns_banner.isVisible()
        text = page.dns_banner.text()
        assert "answered NXDOMAIN to everything" in text and "domain.from_domain_exists" in text
    else:
        assert not page.dns_banner.isVisible()
