"""Third-party modules: a plug-in distribution installed by entry point, outside the repository.

Each test builds a tiny installed distribution (a `*.dist-info` with `entry_points.txt`) on a
temporary path entry, the way pip would lay it out, so `importlib.metadata` finds it exactly
as it finds a real one. The end-to-end test runs `mailstats --batch` in a fresh interpreter
and the plug-in's own test in a fresh pytest, both seeing only that path and mailstats.
"""

from __future__ import annotations

import csv
import importlib
import json
import mailbox
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mailstats.modules import available_modules, select_modules

ROOT = Path(__file__).resolve().parents[1]

#: The example of docs/modules.md: a module importing only mailstats.plugin ...
SHOUTING = '''
from mailstats.plugin import HEADER, Message, Module, Services, Setting


class Shouting(Module):
    """Is the Subject written mostly in capital letters?"""

    name = "shouting"
    version = "1"
    description = "The Subject is mostly capital letters"
    needs = frozenset({HEADER})
    checks = ("caps",)
    settings = (Setting("min_letters", int, 4, "shorter subjects are not judged"),)

    def evaluate(self, msg: Message, services: Services) -> dict:
        letters = [c for c in msg.header("Subject") if c.isalpha()]
        if len(letters) < services.settings["shouting_min_letters"]:
            return {"caps": None}
        return {"caps": sum(c.isupper() for c in letters) > 0.7 * len(letters)}
'''

#: ... and its test, using only mailstats.testing.
SHOUTING_TEST = """
from acme_shouting import Shouting
from mailstats.testing import message, run_module


def test_caps():
    subjects = [b"BUY NOW!!", b"Lunch at noon?", b"ok"]
    msgs = [message(b"Subject: " + s + b"\\r\\n\\r\\nhello\\r\\n") for s in subjects]
    assert [r["caps"] for r in run_module(Shouting, msgs)] == [True, False, None]
"""


def install(site: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str]) -> None:
    """Lay out an installed distribution `dist` in `site` (what pip install would write)."""
    site.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = ["[mailstats.modules]", *(f"{k} = {v}" for k, v in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    yield path
    for name in list(sys.modules):
        if name.startswith("acme_"):
            del sys.modules[name]
    importlib.invalidate_caches()


def test_plugin_found_by_entry_point_and_runs_only_when_named(site: Path) -> None:
    install(
        site, "acme_shouting", {"acme_shouting": SHOUTING}, {"shouting": "acme_shouting:Shouting"}
    )
    reg = available_modules()
    cls = reg.by_name("shouting")
    assert cls is not None and cls.__module__ == "acme_shouting"
    assert "shouting" in reg.plugins and not reg.problems
    assert "shouting" not in [m.name for m in select_modules(reg, None)]  # not by default
    assert "shouting" in [m.name for m in select_modules(reg, None, configured=["shouting"])]
    assert "shouting" in [m.name for m in select_modules(reg, ["received", "shouting"])]
    assert available_modules(plugins=False).by_name("shouting") is None


def test_broken_and_clashing_plugins_are_skipped_and_named(site: Path) -> None:
    bad_names = SHOUTING.replace('name = "shouting"', 'name = "Bad.Name"')
    clash = SHOUTING.replace('name = "shouting"', 'name = "received"')
    bad_check = SHOUTING.replace('checks = ("caps",)', 'checks = ("all.caps",)')
    install(
        site,
        "acme_many",
        {
            "acme_ok": SHOUTING,
            "acme_raises": "raise RuntimeError('plug-in import failed on purpose')\n",
            "acme_names": bad_names,
            "acme_clash": clash,
            "acme_check": bad_check,
            "acme_notmodule": "class Thing:\n    name = 'thing'\n",
        },
        {
            "shouting": "acme_ok:Shouting",
            "raises": "acme_raises:Shouting",
            "names": "acme_names:Shouting",
            "clash": "acme_clash:Shouting",
            "check": "acme_check:Shouting",
            "missing": "acme_ok:NoSuchThing",
            "notmodule": "acme_notmodule:Thing",
        },
    )
    reg = available_modules()
    assert reg.by_name("shouting") is not None  # the good one still loads
    assert reg.by_name("received").__module__ == "mailstats.modules.received"  # built-in kept
    text = "\n".join(reg.problems)
    for ep in ("raises", "names", "clash", "check", "missing", "notmodule"):
        assert f"'{ep}'" in text, (ep, text)
    assert len(reg.problems) == 6
    assert "failed on purpose" in text and "'received' is taken" in text
    assert "'Bad.Name'" in text and "'all.caps'" in text and "not a mailstats Module" in text


def _mbox(path: Path, subjects: list[str]) -> None:
    box = mailbox.mbox(path)
    for i, subject in enumerate(subjects):
        box.add(
            f"From: p{i}@example.com\nTo: dana@example.org\nSubject: {subject}\n"
            f"Message-ID: <{i}@example.com>\nDate: Mon, 1 Jan 2024 09:59:00 +0000\n\nbody\n"
        )
    box.flush()
    box.close()


def _batch(site: Path, tmp: Path, extra: str, out: str) -> subprocess.CompletedProcess:
    """`extra` names the plug-in: a [modules.shouting] table, or settings.modules."""
    accounts = tmp / f"{out}.toml"
    accounts.write_text(
        '[settings]\ndns_servers = ["127.0.0.1:9"]\n'
        f'dns_timeout = 0.2\ncache = "{tmp / (out + ".sqlite")}"\n{extra}\n'
        f'[[accounts]]\nname = "local"\npath = "{tmp / "inbox.mbox"}"\nham = ["inbox"]\n'
    )
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}
    return subprocess.run(
        [sys.executable, "-m", "mailstats", "--batch", str(accounts), "--out", str(tmp / out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_plugin_end_to_end_column_in_messages_csv(site: Path, tmp_path: Path) -> None:
    """Installed by entry point, named in settings: its column is in messages.csv, its
    settings table is validated, and its own test passes with mailstats.testing alone."""
    install(
        site, "acme_shouting", {"acme_shouting": SHOUTING}, {"shouting": "acme_shouting:Shouting"}
    )
    _mbox(tmp_path / "inbox.mbox", ["BUY NOW!!", "Lunch at noon?", "ok", "FREE MONEY"])
    done = _batch(site, tmp_path, "[modules.shouting]\nmin_letters = 5\n", "out")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((tmp_path / "out" / "messages.csv").open()))
    assert [r["shouting.caps"] for r in rows] == ["1", "0", "", "1"]
    summary = (tmp_path / "out" / "summary.csv").read_text()
    assert "local,inbox,ham,shouting.caps,2,3,4" in summary
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["modules"]["shouting"] == "1"
    assert manifest["settings"]["shouting_min_letters"] == 5

    bad = _batch(site, tmp_path, '[modules.shouting]\nmin_letters = "five"\n', "bad")
    assert (
        bad.returncode == 2 and "[modules.shouting]" in bad.stderr and "min_letters" in bad.stderr
    )
    unnamed = _batch(site, tmp_path, "", "unnamed")  # installed but not named: it does not run
    assert unnamed.returncode == 0, unnamed.stderr
    assert "shouting" not in (tmp_path / "unnamed" / "messages.csv").read_text()
    named = _batch(site, tmp_path, 'modules = ["received", "shouting"]\n', "named")
    assert (
        named.returncode == 0
        and "shouting.caps" in (tmp_path / "named" / "summary.csv").read_text()
    )

    listing = subprocess.run(
        [sys.executable, "-m", "mailstats", "modules"],
        env={**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "shouting" in listing.stdout and "plug-in, available" in listing.stdout

    (site / "test_shouting.py").write_text(SHOUTING_TEST)
    own = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_shouting.py"],
        cwd=site,
        env={**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert own.returncode == 0 and "1 passed" in own.stdout, own.stdout + own.stderr


def test_example_module_and_test_fit_in_thirty_lines() -> None:
    """docs/modules.md shows this exact module and test; together under 30 lines."""
    docs = (ROOT / "docs" / "modules.md").read_text()
    code = [line for line in (SHOUTING + SHOUTING_TEST).strip().splitlines()]
    assert len(code) < 30 + 6  # the blank lines between definitions do not count
    assert len([line for line in code if line.strip()]) < 30
    for block in (SHOUTING, SHOUTING_TEST):
        assert textwrap.dedent(block).strip() in docs
