"""Freed memory back to the system.

glibc keeps what a process frees in its arenas for the next allocation: after a folder's
table is counted and let go, the process stays as big as it was with the table, and the
next folder's work is added on top. Trimming hands the free pages back (at 100k messages
the batch run's peak went from 389 to 361 MB; the desktop app's size stopped growing).
"""

from __future__ import annotations

import ctypes
import sys


def trim() -> None:
    """Give the free heap back (glibc only; elsewhere nothing to do or no way to do it)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
