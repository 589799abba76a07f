"""The bundled demo inside the window: the same run as `mailstats demo`, so the same counts.

Same accounts file, same generated mailbox, DNS answered from the same bundled snapshot, a
throw-away cache: nothing of the user's own accounts, settings or cache is read or changed.
The cache directory lives as long as the results shown from it (the message view reads
from it), and is removed when they are replaced or the window closes.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any


class DemoRun:
    """An engine for the demo and the temporary directory its cache is in."""

    def __init__(self, registry: Any) -> None:
        from mailstats.accounts.config import load_config
        from mailstats.cli import _load_snapshot, demo_dir
        from mailstats.run.cache import Cache
        from mailstats.run.engine import Engine

        folder = demo_dir()
        cfg = load_config(folder / "accounts.toml")
        self.tmp = Path(tempfile.mkdtemp(prefix="mailstats-demo-"))
        cache = Cache(self.tmp / "cache.sqlite")
        _load_snapshot(cache, folder / "dns_snapshot.json", cfg.settings.dns_servers)
        self.engine = Engine(cfg, cache=cache, registry=registry)
        self.accounts = list(cfg.accounts)

    def remove(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
