"""The manifest's per-module cost table counts what each module really did in the run."""

from __future__ import annotations

import mailbox
from pathlib import Path

from fixtures.generator import generate_mailbox
from mailstats.accounts.config import parse_config
from mailstats.run.engine import Engine
from mailstats.stats.manifest import manifest


def _store(tmp_path: Path) -> tuple[Path, dict[str, list[bytes]]]:
    box = generate_mailbox(seed=11, n_ham=40, n_spam=30, n_sent=0)
    root = tmp_path / "mail"
    root.mkdir()
    raws = {}
    for folder in ("INBOX", "Junk"):
        mb = mailbox.mbox(root / f"{folder}.mbox")
        raws[folder] = [m.raw for m in box.folders[folder]]
        for raw in raws[folder]:
            mb.add(raw)
        mb.flush()
        mb.close()
    return root, raws


def test_cost_table_counts_messages_names_and_bytes(tmp_path: Path) -> None:
    root, raws = _store(tmp_path)
    cfg = parse_config(
        {
            "settings": {
                "modules": ["received", "datetime", "dkim", "domain"],
                "dns_servers": ["127.0.0.1:9"],
                "dns_timeout": 0.2,
                "cache": str(tmp_path / "cache.sqlite"),
                "analysis_workers": 0,
            },
            "accounts": [{"name": "a", "path": str(root), "ham": ["INBOX"], "spam": ["Junk"]}],
        }
    )
    result = Engine(cfg).run()
    table = manifest(result, [])["module_cost"]
    n = sum(len(v) for v in raws.values())
    for name in ("received", "datetime", "dkim", "domain"):
        assert table[name]["messages"] == n
        assert table[name]["us_per_message"] > 0
    # domain asks one name per distinct From domain and type; datetime asks none
    assert table["datetime"]["dns_names_per_message"] == 0
    assert table["domain"]["dns_names_per_message"] > 0
    signed = sum(b"DKIM-Signature:" in r for v in raws.values() for r in v)
    assert signed > 0
    assert table["_fetch"]["raw"] == signed
    assert table["dkim"]["fetch_bytes_per_message"] > 0
    assert table["received"]["fetch_bytes_per_message"] == 0
    assert table["_fetch"]["headers"] == n
    assert 0 < table["_fetch"]["header_bytes"] < sum(len(r) for v in raws.values() for r in v)


def test_a_rerun_with_nothing_new_costs_nothing(tmp_path: Path) -> None:
    root, _ = _store(tmp_path)
    data = {
        "settings": {
            "modules": ["received"],
            "dns_servers": ["127.0.0.1:9"],
            "dns_timeout": 0.2,
            "cache": str(tmp_path / "cache.sqlite"),
            "analysis_workers": 0,
        },
        "accounts": [{"name": "a", "path": str(root), "ham": ["INBOX"], "spam": ["Junk"]}],
    }
    Engine(parse_config(data)).run()
    again = manifest(Engine(parse_config(data)).run(), [])["module_cost"]
    assert "received" not in again and "_fetch" not in again
