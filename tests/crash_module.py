"""A module that kills the worker process it runs in (tests the engine's fallback)."""

from __future__ import annotations

import os

from mailstats.modules import Module


class CrashInWorker(Module):
    name = "crashy"
    version = "1"
    checks = ("odd",)

    def evaluate(self, msg, services):
        if str(os.getpid()) != os.environ.get("MAILSTATS_TEST_PARENT_PID"):
            os._exit(3)  # a worker dying the hard way, as a segfault or the OOM killer would
        return {"odd": bool(msg.uid % 2)}


MODULE = CrashInWorker
