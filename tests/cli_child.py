"""Run `python -m mailstats` as a child process, the way a user does, and look at it.

The hostile-file tests go through the real entry point: exit code, stderr (never a
traceback), peak memory (the child's own VmHWM, written as it exits) and the files around it.
The child's cache and log folders point into the test's tmp folder, never the user's.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Modules that need no network: the hostile-file tests are about files, not DNS.
LOCAL_MODULES = ["received", "attachments", "images", "personal", "datetime", "list"]


@dataclass
class Child:
    code: int
    stdout: str
    stderr: str
    peak_mb: float

    def lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def child_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILSTATS_TEST_PW")}
    env.update(
        PYTHONPATH=str(ROOT),
        XDG_CACHE_HOME=str(home / "xdg-cache"),
        XDG_STATE_HOME=str(home / "xdg-state"),
        XDG_CONFIG_HOME=str(home / "xdg-config"),
        QT_QPA_PLATFORM="offscreen",
    )
    env.update(extra)
    return env


def run_child(
    args: list[str], home: Path, *, code: str | None = None, timeout: float = 120, **env: str
) -> Child:
    """`python -m mailstats ARGS` (or `python -c CODE ARGS`); peak RSS of the child in MB."""
    hwm = home / "child.peak-kb"
    hwm.unlink(missing_ok=True)
    cmd = [sys.executable, "-c", code or PEAK_CHILD, *([] if code else [str(hwm)]), *args]
    out, err = home / "child.stdout", home / "child.stderr"
    with out.open("wb") as fo, err.open("wb") as fe:
        proc = subprocess.Popen(cmd, cwd=home, stdout=fo, stderr=fe, env=child_env(home, **env))
        try:
            _, status, usage = _wait4(proc, timeout)
        except TimeoutError:
            proc.kill()
            proc.wait()
            raise
    # VmHWM, not ru_maxrss: Linux carries the parent's high-water mark over fork and exec,
    # so a child of a big pytest process would report pytest's size.
    peak_kb = int(hwm.read_text()) if hwm.exists() else usage.ru_maxrss
    return Child(
        os.waitstatus_to_exitcode(status),
        out.read_text(errors="replace"),
        err.read_text(errors="replace"),
        peak_kb / 1024,
    )


#: `python -m mailstats ARGS` that writes its own peak RSS (VmHWM, KiB) to a file as it exits
#: (the one harness for every test that bounds a child's memory).
PEAK_CHILD = """
import runpy, sys
hwm_file = sys.argv.pop(1)
sys.argv[0] = "mailstats"
try:
    runpy.run_module("mailstats", run_name="__main__", alter_sys=True)
finally:
    with open("/proc/self/status") as fh:
        hwm = next(line.split()[1] for line in fh if line.startswith("VmHWM:"))
    with open(hwm_file, "w") as fh:
        fh.write(hwm)
"""


def _wait4(proc: subprocess.Popen, timeout: float) -> tuple[int, int, os.struct_rusage]:
    import time

    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return pid, status, usage
        if time.monotonic() > deadline:
            raise TimeoutError(f"child {proc.args[:4]} still running after {timeout} s")
        time.sleep(0.05)


def write_accounts(
    path: Path,
    store: Path | None,
    *,
    cache: Path | None = None,
    roles: dict | None = None,
    extra_accounts: str = "",
    modules: list[str] | None = None,
) -> Path:
    lines = ["[settings]", f"modules = {json.dumps(modules or LOCAL_MODULES)}"]
    lines.append("analysis_workers = 0")
    if cache is not None:
        lines.append(f"cache = {json.dumps(str(cache))}")
    if store is not None:
        lines += ["", "[[accounts]]", 'name = "local"', f"path = {json.dumps(str(store))}"]
        lines.append('full_name = "Dana Whitfield"')  # personal.body_has_name reads the body
        for role, folders in (roles or {"ham": ["INBOX"]}).items():
            lines.append(f"{role} = {json.dumps(folders)}")
    path.write_text("\n".join(lines) + "\n" + extra_accounts)
    return path


def fingerprint(path: Path) -> tuple[str, int, int, int]:
    """Content digest, mode, size and mtime of `path` itself (a link is not followed)."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        data = os.readlink(path).encode()
    elif stat.S_ISREG(st.st_mode):
        data = path.read_bytes()
    else:  # a FIFO or device: reading it would block or never end
        data = b""
    return hashlib.sha256(data).hexdigest(), st.st_mode, st.st_size, st.st_mtime_ns


def assert_clean(child: Child) -> None:
    """No traceback, nothing Python-internal: what a user may see on stderr."""
    assert "Traceback" not in child.stderr, child.stderr
    assert '  File "' not in child.stderr, child.stderr


def make_maildir(root: Path, messages: list[bytes]) -> Path:
    """A Maildir at `root` with `messages` in cur/, named so their order is the UID order."""
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i, raw in enumerate(messages):
        (root / "cur" / f"{1700000000 + i:010d}.m{i:05d}.host:2,S").write_bytes(raw)
    return root


def plain_message(i: int, body: str = "hello\r\n") -> bytes:
    return (
        f"From: Sender {i} <s{i}@sender.example>\r\nTo: dana@example.org\r\n"
        f"Subject: hello {i}\r\nMessage-ID: <m{i}@sender.example>\r\n"
        f"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n{body}"
    ).encode()
