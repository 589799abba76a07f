"""Can a window open here? Asked before Qt starts, because Qt's answer is an abort.

When Qt cannot reach a display, or its X11 platform plugin lacks a system library, it prints a
page of hints and calls abort() (exit status 134): no Python code runs after that, so nothing
can catch it. These checks look first, without loading Qt, and turn each case into one line
that says what is missing and points to `--batch`. They only ever answer "cannot" when they
are sure; when unsure (another platform, a library they cannot load to ask) they let Qt try.
No Qt import here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import os
import re
import sys
from pathlib import Path

#: Debian packages for the shared libraries Qt's xcb plugin needs that a desktop may lack
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}
HEADLESS = "run headless instead: mailstats --batch ACCOUNTS.toml --out DIR"


def xcb_plugin() -> Path | None:
    """PySide6's X11 platform plugin, found without importing PySide6."""
    spec = importlib.util.find_spec("PySide6")
    roots = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    frozen = getattr(sys, "_MEIPASS", None)  # the PyInstaller build
    if frozen:
        roots.append(Path(frozen) / "PySide6")
    for root in roots:
        plugin = root / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if plugin.is_file():
            return plugin
    return None


def missing_library(plugin: Path) -> str | None:
    """The soname the dynamic loader could not find for `plugin`, or None when it loads.

    dlopen names the first library it could not find, exactly as Qt would meet it. Loading
    the plugin's Qt libraries early is harmless: Qt loads the same files from the same place.
    """
    try:
        ctypes.CDLL(str(plugin), mode=ctypes.RTLD_LOCAL)
    except OSError as exc:
        found = re.search(r"([\w.+-]+\.so[\w.]*): cannot open shared object file", str(exc))
        return found.group(1) if found else None
    return None


def x_display_reachable(display: str) -> bool | None:
    """Whether libxcb can connect to `display`; None when libxcb itself cannot be loaded."""
    name = ctypes.util.find_library("xcb") or "libxcb.so.1"
    try:
        xcb = ctypes.CDLL(name)
    except OSError:
        return None
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    conn = xcb.xcb_connect(display.encode(), None)
    if not conn:
        return False
    ok = xcb.xcb_connection_has_error(conn) == 0
    xcb.xcb_disconnect(conn)  # also frees the error object of a failed connection
    return ok


def display_problem(env: dict[str, str] | None = None) -> str | None:
    """Why the window cannot open here, in one line; None when it can (or cannot tell)."""
    env = dict(os.environ) if env is None else env
    if not sys.platform.startswith("linux"):
        return None
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return None  # offscreen, wayland, vnc...: chosen on purpose, Qt reports for itself
    display = env.get("DISPLAY", "")
    if not platform and env.get("WAYLAND_DISPLAY"):
        return None  # Qt uses its Wayland plugin
    if not display:
        return f"no display to open the window on (DISPLAY is not set); {HEADLESS}"
    plugin = xcb_plugin()
    lib = missing_library(plugin) if plugin is not None else None
    if lib is not None:
        pkg = DEBIAN_PACKAGES.get(lib)
        hint = f" (Debian/Ubuntu: apt-get install {pkg})" if pkg else ""
        return f"the window needs the system library {lib}{hint}; {HEADLESS}"
    if x_display_reachable(display) is False:
        return f"cannot connect to the display {display}; {HEADLESS}"
    return None
