"""Typed, validated settings: unknown keys are errors, module settings are declared by their
module and live in its own table, and the old flat keys mean the same."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mailstats.accounts.config import ConfigError, dump_config, load_config, parse_config
from mailstats.cli import main
from mailstats.modules import available_modules
from mailstats.run.cache import Cache
from mailstats.run.engine import Engine

ACCOUNT = '\n[[accounts]]\nname = "l"\npath = "/tmp/nothing.mbox"\nham = ["x"]\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "accounts.toml"
    path.write_text(text + ACCOUNT)
    return path


@pytest.mark.parametrize(
    "text,words",
    [
        ('[settings]\ndnsbl_zone = ["a.example"]', ["[settings]", "unknown key 'dnsbl_zone'"]),
        ("[settings]\nreachability_port = true", ["'reachability_port'", "whole number"]),
        ('[modules.dnsbl]\nzone = ["a.example"]', ["[modules.dnsbl]", "'zone'", "zones"]),
        ('[modules.reachability]\nport = "25"', ["[modules.reachability]", "'port'"]),
        ("[modules.dnsbl]\nzones = [1, 2]", ["[modules.dnsbl]", "list of strings"]),
        ("[modules.nosuch]\nx = 1", ["[modules.nosuch]", "no module named 'nosuch'"]),
        ("[modules]\ndnsbl = 3", ["[modules.dnsbl]", "must be a table"]),
        (
            '[settings]\ndnsbl_zones = ["a.example"]\n[modules.dnsbl]\nzones = ["b.example"]',
            ["[modules.dnsbl]", "also set as [settings] dnsbl_zones"],
        ),
    ],
)
def test_bad_settings_name_the_file_and_key(tmp_path: Path, text: str, words: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    for w in words:
        assert w in message, (w, message)


def test_batch_exits_2_on_an_unknown_key(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path, "[settings]\ndns_timout = 2")
    assert main(["--batch", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "dns_timout" in err
    assert not (tmp_path / "out" / "summary.csv").exists()


def test_module_table_and_flat_key_are_one_setting(tmp_path: Path) -> None:
    table = load_config(write(tmp_path, '[modules.dnsbl]\nzones = ["a.example"]'))
    flat = load_config(write(tmp_path, '[settings]\ndnsbl_zones = ["a.example"]'))
    assert table.settings.dnsbl_zones == flat.settings.dnsbl_zones == ["a.example"]
    port = load_config(write(tmp_path, "[modules.reachability]\nport = 2525"))
    assert port.settings.value("reachability_port") == 2525
    assert port.settings.module_tables == ["reachability"]
    # a built-in opt-in module is configured by its table, not switched on by it
    engine = Engine(port, cache=Cache(tmp_path / "c.sqlite"))
    assert "reachability" not in [m.name for m in engine.modules]
    engine.cache.close()


def test_tables_survive_dump_and_load(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "[modules.reachability]\nport = 2525\n[modules.dnsbl]"))
    again = parse_config(tomllib.loads(dump_config(cfg)))
    assert again.settings.as_dict() == cfg.settings.as_dict()
    assert again.settings.module_tables == ["reachability", "dnsbl"]


def test_modules_read_declared_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[settings]\nmodules = ["reachability", "dnsbl"]'))
    engine = Engine(cfg, cache=Cache(tmp_path / "c.sqlite"))
    settings = engine.services_for(cfg.accounts[0], None).settings
    assert settings["reachability_port"] == 25 and len(settings["dnsbl_zones"]) == 4
    assert "dnsbl_zones" not in cfg.settings.as_dict()  # defaults are not written back
    engine.cache.close()


def test_every_declared_setting_is_a_valid_declaration() -> None:
    declared = available_modules(plugins=False).settings_of()
    assert {"dnsbl_zones", "reachability_port", "authserv_ids"} <= set(declared)
    for key, (module, setting) in declared.items():
        assert key == setting.flat_key(module)
        assert setting.default is None or setting.problem(setting.default) == "", key


def test_worker_processes_accept_a_table_of_a_module_not_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Workers get only the run's module classes; a table naming another one is no error."""
    import mailbox

    md = mailbox.Maildir(tmp_path / "Mail", create=True)
    for i in range(40):
        md.add(f"From: p{i}@example.com\nSubject: s{i}\nMessage-ID: <{i}@x.example>\n\nb\n")
    path = tmp_path / "accounts.toml"
    path.write_text(
        '[settings]\nmodules = ["received"]\nworker_min = 1\nanalysis_workers = 1\n'
        f'dns_servers = ["127.0.0.1:9"]\ndns_timeout = 0.2\ncache = "{tmp_path / "c.sqlite"}"\n'
        "[modules.reachability]\nport = 2525\n"
        f'[[accounts]]\nname = "l"\npath = "{tmp_path / "Mail"}"\nham = ["INBOX"]\n'
    )
    cfg = load_config(path)
    engine = Engine(cfg, cache=Cache(cfg.settings.cache))
    result = engine.run()
    engine.cache.close()
    assert result.ok and result.accounts[0].folders[0].evaluated == 40
    assert not any("analysis worker failed" in r.getMessage() for r in caplog.records)
