"""The Report button's work outside the window's process, and giving memory back.

The report loads matplotlib and scikit-learn and draws every plot: in the window's own
process that stayed resident (266 MB after a run, 522 MB after one report); a child process
gives all of it back when it exits.
"""

from __future__ import annotations

import gc
import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mailstats.run import heap


def release_memory() -> None:
    """Collect what a replaced run or report left, and hand freed heap back to the system
    (glibc keeps freed memory in its arenas: without this the window's size only grows)."""
    # Reference counting has already freed the tables; a full collection would only walk
    # the live heap on the GUI thread (hundreds of ms at 100k messages): a young one suffices.
    gc.collect(0)
    heap.trim()


def report_command(results_dir: str) -> list[str]:
    """`mailstats report DIR` as a child process of this same installation (or build)."""
    if getattr(sys, "frozen", False):  # the PyInstaller build: the executable is mailstats
        return [sys.executable, "report", results_dir]
    return [sys.executable, "-m", "mailstats", "report", results_dir]


def write_report_in_child(results_dir: str, started: Callable[[Any], None]) -> str:
    """Write report.html in a child process and return its path.

    The report loads matplotlib and scikit-learn and draws every plot: in the window's own
    process that stayed resident (266 MB after a run, 522 MB after one report); a child
    process gives all of it back when it exits. `started` receives the process, so closing
    the window can stop it.
    """
    proc = subprocess.Popen(
        report_command(results_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    started(proc)
    out, err = proc.communicate()
    if proc.returncode != 0:
        lines = [ln for ln in err.splitlines() if ln.strip()] or [f"exit status {proc.returncode}"]
        raise RuntimeError(lines[-1].removeprefix("mailstats: "))
    return str(Path(results_dir) / "report.html")


def _report_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("matplotlib", "sklearn"))
