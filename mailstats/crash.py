"""The last line of defence: no traceback ever reaches the user.

Bad input has its own clear errors; this is for the bug nobody foresaw. Every entry point
runs under `guarded`, which turns an unexpected exception into one line: what mailstats was
doing, the exception in one line, the exit code, and the log file that holds the traceback
(in the user's log folder, so a bug report can attach it). The same hook catches exceptions
that escape a thread or a Qt slot, which Python would otherwise print as a traceback.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

EXIT_FAILED = 1

_state = {"doing": "starting"}


def doing(what: str) -> None:
    """Name the step in progress, for the one line a crash prints ("writing the outputs")."""
    _state["doing"] = what


def log_dir() -> Path:
    from platformdirs import user_log_dir

    return Path(user_log_dir("mailstats"))


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def write_log(exc: BaseException, what: str) -> Path | None:
    """The traceback in a new 0600 file of the log folder (a temp folder when that fails)."""
    text = (
        f"mailstats crashed while {what}\n"
        f"time: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n"
        f"python: {sys.version.split()[0]}, argv: {sys.argv[1:]}\n\n"
        + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    )
    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    import tempfile

    for folder in (log_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with open(fd, "w", encoding="utf-8", errors="replace") as fh:
                fh.write(text)
            return path
        except OSError:
            continue
    return None


def report(exc: BaseException, exit_code: int | None = EXIT_FAILED) -> None:
    """One line on stderr for an unexpected exception; the traceback goes to a log file."""
    what = _state["doing"]
    path = write_log(exc, what)
    where = f"the traceback is in {path}" if path else "the traceback could not be saved"
    code = f"exit code {exit_code}; " if exit_code is not None else ""
    detail = _one_line(f"{type(exc).__name__}: {exc}")
    import sqlite3

    if isinstance(exc, sqlite3.DatabaseError):
        # the run did not close the cache, so the next one checks every page of it
        detail += "; the cache may be damaged: the next run checks it and rebuilds it if so"
    try:
        print(
            f"mailstats: unexpected error while {what}: {detail} ({code}{where})",
            file=sys.stderr,
            flush=True,
        )
    except (OSError, ValueError):  # stderr closed: the log file is all there is
        pass


def _excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        return
    report(exc.with_traceback(tb), exit_code=None)


def _thread_hook(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None and not isinstance(args.exc_value, SystemExit):
        report(args.exc_value, exit_code=None)


def guarded(fn: Callable[[list[str]], int], argv: list[str]) -> int:
    """fn(argv), with every unexpected exception reported in one line (exit code 1)."""
    sys.excepthook = _excepthook  # Qt slots and the interpreter's own last resort
    threading.excepthook = _thread_hook
    try:
        return fn(argv)
    except KeyboardInterrupt:
        print("mailstats: interrupted", file=sys.stderr)
        return EXIT_FAILED
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - this is the guard
        report(exc)
        return EXIT_FAILED
