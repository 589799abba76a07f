"""What a module learns lasts one run: two runs in one process give the same counts.

The registry holds module classes and every run makes fresh instances, so a second run in
the same process (the desktop app's second press of Run) starts from nothing: DNSBL zone
counters, self-test results and anything else a module keeps are not carried over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mailstats.accounts.config import parse_config
from mailstats.modules import Module, available_modules
from mailstats.run.cache import Cache
from mailstats.run.engine import Engine


class Tally(Module):
    """Counts its own calls: any state kept from an earlier run shows in the counters."""

    name = "tally"
    version = "1"
    checks = ("seen",)

    def __init__(self) -> None:
        self.prepared = 0
        self.evaluated = 0

    def prepare(self, services: Any) -> None:
        self.prepared += 1

    def evaluate(self, msg: Any, services: Any) -> dict:
        self.evaluated += 1
        return {"seen": True}

    def counters(self) -> dict[str, int]:
        return {"prepared": self.prepared, "evaluated": self.evaluated}


def _config(tmp: Path, maildir: Path, dns_spec: str, mailbox: Any, cache: str) -> Any:
    roles = mailbox.role_folders()
    return parse_config(
        {
            "settings": {
                "modules": ["received", "dnsbl", "tally"],
                "dns_servers": [dns_spec],
                "dnsbl_zones": list(mailbox.settings["dnsbl_zones"]),
                "dns_timeout": 1.0,
                "analysis_workers": 0,
                "cache": str(tmp / cache),
            },
            "accounts": [{"name": "dana", "path": str(maildir), **roles}],
        },
        registry=_registry(),
    )


def _registry() -> Any:
    reg = available_modules(plugins=False)
    reg.modules.append(Tally)
    return reg


def test_two_runs_in_one_process_count_the_same(
    tmp_path: Path, dns: Any, generated_mailbox: Any
) -> None:
    maildir = generated_mailbox.write_maildir(tmp_path / "Maildir")
    registry = _registry()  # one registry for both runs, as the desktop app keeps it
    counters = []
    for i in range(2):
        cfg = _config(tmp_path, maildir, dns.server_spec, generated_mailbox, f"c{i}.sqlite")
        engine = Engine(cfg, cache=Cache(cfg.settings.cache), registry=registry)
        result = engine.run()
        engine.cache.close()
        assert result.ok
        counters.append(result.module_counters)
    first, second = counters
    assert first == second
    assert first["tally"] == {"prepared": 1, "evaluated": 230}
    listed = sum(v for k, v in first["dnsbl"].items() if k.endswith(".listed"))
    assert listed > 0  # the zones answered: these are real per-run counts


def test_instances_are_per_run(tmp_path: Path) -> None:
    """Two engines from one registry never share a module instance."""
    cfg = parse_config(
        {
            "settings": {"modules": ["dnsbl", "tally"], "cache": str(tmp_path / "c.sqlite")},
            "accounts": [{"name": "x", "path": str(tmp_path), "ham": ["INBOX"]}],
        },
        registry=_registry(),
    )
    registry = _registry()
    a, b = (Engine(cfg, cache=Cache(cfg.settings.cache), registry=registry) for _ in range(2))
    assert [type(m) for m in a.modules] == [type(m) for m in b.modules]
    assert all(x is not y for x, y in zip(a.modules, b.modules, strict=True))
    assert all(isinstance(cls, type) for cls in registry.modules)
    a.cache.close()
    b.cache.close()
