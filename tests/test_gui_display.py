"""`mailstats` without arguments where no window can open: one line, exit 2, never Qt's abort.

Each case runs the real command in a child process (Qt's abort would kill this one), with the
environment of a machine that lacks a display, has a display nobody serves, or lacks a
library of Qt's X11 plugin. With a real X server (Xvfb, when installed) the window opens.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailstats.gui import display

ROOT = Path(__file__).resolve().parent.parent


def run_mailstats(
    env_changes: dict[str, str | None], timeout: float = 60
) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run(
        [sys.executable, "-m", "mailstats"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_usage(proc: subprocess.CompletedProcess, says: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mailstats: ") and says in lines[0], lines[0]
    assert "mailstats --batch" in lines[0]
    assert proc.stdout == ""


def free_display_number() -> int:
    """A display number with no X server: neither its socket nor its TCP port is in use."""
    for n in range(91, 200):
        if Path(f"/tmp/.X11-unix/X{n}").exists() or Path(f"/tmp/.X{n}-lock").exists():
            continue
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", 6000 + n)) != 0:
                return n
    pytest.skip("no free X display number")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland checks")
def test_no_display_says_so_and_points_to_batch() -> None:
    proc = run_mailstats({"DISPLAY": None, "WAYLAND_DISPLAY": None, "QT_QPA_PLATFORM": None})
    assert_one_line_usage(proc, "no display")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland checks")
def test_display_nobody_serves_says_so() -> None:
    n = free_display_number()
    proc = run_mailstats({"DISPLAY": f":{n}", "WAYLAND_DISPLAY": None, "QT_QPA_PLATFORM": None})
    # either the display is unreachable or (on a machine without them) a library is missing:
    # both are one line and exit 2, never an abort
    assert proc.returncode != -signal.SIGABRT and proc.returncode != 134
    assert_one_line_usage(proc, "")
    assert f"display :{n}" in proc.stderr or "system library" in proc.stderr


def test_missing_plugin_library_is_named(tmp_path: Path) -> None:
    """A plugin linked against a library that is not installed: dlopen's soname is named."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not sys.platform.startswith("linux"):
        pytest.skip("needs a C compiler on Linux to build a plugin with a missing library")
    if os.environ.get("LD_LIBRARY_PATH"):
        pytest.skip("LD_LIBRARY_PATH could provide the library")
    soname = "libmailstats-absent.so.1"
    (tmp_path / "dep.c").write_text("int dep(void) { return 1; }\n")
    (tmp_path / "plugin.c").write_text("int dep(void);\nint plugin(void) { return dep(); }\n")
    dep = tmp_path / soname
    subprocess.run(
        [cc, "-shared", "-fPIC", "-o", str(dep), f"-Wl,-soname,{soname}", str(tmp_path / "dep.c")],
        check=True,
    )
    plugin = tmp_path / "libqxcb.so"
    subprocess.run(
        [cc, "-shared", "-fPIC", "-o", str(plugin), str(tmp_path / "plugin.c"), str(dep)],
        check=True,
    )
    dep.unlink()  # built against it, and now it is not installed anywhere
    assert display.missing_library(plugin) == soname


def test_missing_library_line_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(display, "xcb_plugin", lambda: Path("/plugin"))
    monkeypatch.setattr(display, "missing_library", lambda _p: "libxcb-keysyms.so.1")
    problem = display.display_problem({"DISPLAY": ":0"})
    assert problem is not None
    assert "libxcb-keysyms.so.1" in problem and "apt-get install libxcb-keysyms1" in problem
    assert "mailstats --batch" in problem
    monkeypatch.setattr(display, "missing_library", lambda _p: None)
    monkeypatch.setattr(display, "x_display_reachable", lambda _d: None)
    assert display.display_problem({"DISPLAY": ":0"}) is None  # cannot tell: Qt tries


def test_choices_made_on_purpose_are_left_to_qt() -> None:
    for env in ({"QT_QPA_PLATFORM": "offscreen"}, {"WAYLAND_DISPLAY": "wayland-0"}):
        assert display.display_problem(env) is None


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")
def test_window_opens_on_a_real_x_server(tmp_path: Path) -> None:
    n = free_display_number()
    xvfb = subprocess.Popen(
        ["Xvfb", f":{n}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not Path(f"/tmp/.X11-unix/X{n}").exists():
            assert xvfb.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.1)
        env = dict(os.environ)
        env.update(
            PYTHONPATH=str(ROOT),
            DISPLAY=f":{n}",
            XDG_CONFIG_HOME=str(tmp_path / "config"),
            XDG_CACHE_HOME=str(tmp_path / "cache"),
            PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        )
        env.pop("QT_QPA_PLATFORM", None)
        env.pop("WAYLAND_DISPLAY", None)
        problem = display.display_problem(env)
        if problem is not None and "system library" in problem:
            pytest.skip(problem)
        assert problem is None
        app = subprocess.Popen(
            [sys.executable, "-m", "mailstats"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        try:
            # the window is up when the app is still running after it had time to show it
            time.sleep(6)
            assert app.poll() is None, app.communicate()[1][-2000:]
            if shutil.which("xwininfo"):
                tree = subprocess.run(
                    ["xwininfo", "-root", "-tree", "-display", f":{n}"],
                    capture_output=True,
                    text=True,
                    timeout=20,
                ).stdout
                assert "which header checks separate ham from spam" in tree, tree[-2000:]
        finally:
            app.terminate()
            app.wait(20)
    finally:
        xvfb.terminate()
        xvfb.wait(20)
