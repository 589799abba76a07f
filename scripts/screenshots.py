#!/usr/bin/env python3
"""Render each screen of the desktop app to docs/screenshots/*.png.

Usage: python scripts/screenshots.py [--out docs/screenshots] [--platform offscreen|xvfb]
                                     [--size 1280x800]

The window runs on a generated mailbox (fixtures/generator.py, 2,300 messages so the run
screen has batches to show) with DNS answered by a private dnsmasq when one can be started
(tests/servers.py), otherwise with the DNS modules off. Each screen is captured with
`QWidget.grab()`, which renders the widget itself and needs no window system. With
`--platform xvfb` the app runs on a real X server (Xvfb on a free display, started here and
stopped by pid); grab() is still used because ImageMagick's `import` is usually not
installed. `--size` is the window's size (the README shows 1280x800 and 1920x1080).
Nothing here touches the real user's settings, keyring or cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

SIZE = (1280, 800)


def start_xvfb(size: tuple[int, int]) -> subprocess.Popen[bytes] | None:
    xvfb = shutil.which("Xvfb")
    if not xvfb:
        return None
    n = 99
    while Path(f"/tmp/.X11-unix/X{n}").exists() or Path(f"/tmp/.X{n}-lock").exists():
        n += 1
    proc = subprocess.Popen(
        [xvfb, f":{n}", "-screen", "0", f"{size[0] + 80}x{size[1] + 80}x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(50):
        if Path(f"/tmp/.X11-unix/X{n}").exists() or proc.poll() is not None:
            break
        time.sleep(0.1)
    if proc.poll() is not None:
        return None
    os.environ["DISPLAY"] = f":{n}"
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    return proc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--platform", choices=("offscreen", "xvfb"), default="offscreen")
    ap.add_argument("--size", default="1280x800", help="window size, WIDTHxHEIGHT")
    args = ap.parse_args()
    global SIZE
    w, _, h = args.size.partition("x")
    SIZE = (int(w), int(h))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="mailstats-shots-"))
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "config")
    os.environ["XDG_CACHE_HOME"] = str(tmp / "cache")
    os.environ["XDG_DATA_HOME"] = str(tmp / "data")
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    xvfb = start_xvfb(SIZE) if args.platform == "xvfb" else None
    if xvfb is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    try:
        return _run(out, tmp)
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(5)


def _run(out: Path, tmp: Path) -> int:
    from fixtures.generator import generate_mailbox

    mailbox = generate_mailbox(seed=7, n_ham=1200, n_spam=800, n_sent=300, dns_failures=False)
    maildir = mailbox.write_maildir(tmp / "Maildir")
    dns: Any = None
    try:
        from servers import Dns, ServerUnavailable

        try:
            dns = Dns.start(mailbox.dns_records)
        except (ServerUnavailable, OSError) as exc:
            print(f"no dnsmasq ({exc}); DNS modules off", file=sys.stderr)
    except ImportError:
        pass
    try:
        return _shoot(out, tmp, maildir, dns)
    finally:
        if dns is not None:
            dns.cleanup()


def _shoot(out: Path, tmp: Path, maildir: Path, dns: Any) -> int:
    from PySide6.QtCore import QCoreApplication, QSettings
    from PySide6.QtWidgets import QApplication

    QCoreApplication.setOrganizationName("mailstats-screenshots")
    QCoreApplication.setApplicationName("mailstats-screenshots")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "qs"))
    app = QApplication([sys.argv[0]])
    app.setStyle("Fusion")

    from mailstats.accounts import oauth
    from mailstats.accounts.config import Account
    from mailstats.gui import worker

    oauth.set_store(oauth.MemoryStore())  # no sign-in is read from or kept on this machine
    from mailstats.gui.main_window import MainWindow

    def spin(cond: Any, timeout: float = 120.0) -> None:
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > end:
                raise TimeoutError("the window did not get there in time")
            app.processEvents()
            time.sleep(0.01)

    def settle(seconds: float = 0.3) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    def save(widget: Any, name: str) -> None:
        settle()
        path = out / name
        widget.grab().save(str(path))
        print(f"wrote {path}")

    win = MainWindow(tmp / "config" / "accounts.toml", tmp / "cache.sqlite")
    win.resize(*SIZE)
    win.show()
    dlg = win.accounts.add_account()
    dlg.name.setText("home")
    dlg.kind_local.setChecked(True)
    dlg.path.setText(str(maildir))
    dlg.full_name.setText("Dana Whitfield")
    dlg.own_domains.setText("example.org")
    dlg.run_test()
    spin(lambda: dlg.test_button.isEnabled())
    settle()
    save(dlg, "account-dialog.png")
    dlg.accept()
    # an OAuth2 account as a Microsoft 365 user fills it in (nothing is sent anywhere)
    odlg = win.accounts.add_account()
    odlg.name.setText("work")
    odlg.provider.setCurrentIndex(odlg.provider.findData("microsoft"))
    odlg._provider_picked()  # what choosing it with the mouse does
    odlg.username.setText("dana@contoso.com")
    odlg.client_id.setText("0d4c3e2a-5b1f-4c8e-9a7d-1f2e3d4c5b6a")
    odlg.tenant.setText("organizations")
    odlg.full_name.setText("Dana Whitfield")
    odlg.own_domains.setText("contoso.com")
    odlg._update_signin_status()
    settle()
    save(odlg, "account-dialog-oauth.png")
    odlg.reject()
    # a second, server account so the accounts list looks like a real one
    win.store.upsert(
        Account(
            name="work",
            host="imap.example.org",
            port=993,
            username="dana@example.org",
            full_name="Dana Whitfield",
        )
    )
    win.accounts.refresh()
    win._accounts_changed()

    win.go("Folders")  # opens on the first account, "home"
    spin(lambda: win.folders.loaded_for == "home")
    save(win, "folders.png")
    win.go("Accounts")
    win.accounts.refresh()
    win.accounts.table.selectRow(0)
    save(win, "accounts.png")

    win.go("Modules")
    if dns is not None:
        from fixtures.generator import DNSBL_BLOCKED_ZONE, DNSBL_ZONES

        win.modules.dns.setText(dns.server_spec)
        # the blocklists the generated zone answers for (the default ones are not in it)
        _st, zones = win.modules.fields["dnsbl_zones"]
        zones.setText(", ".join(z for z in DNSBL_ZONES if z != DNSBL_BLOCKED_ZONE))
        zones.editingFinished.emit()
    else:
        for m in win.registry.modules:
            if getattr(m, "evidence", "") == "now":
                win.modules.set_checked(m.name, False)
    win.modules.dns.editingFinished.emit()
    win.store.config.settings.extra["dns_timeout"] = 1.0
    win.modules.list.scrollToBottom()  # the opt-in module is the last one
    save(win, "modules.png")

    # pause the engine in the middle of a folder so the run screen shows real progress
    paused, resume = threading.Event(), threading.Event()
    original = worker.RunWorker._on_progress

    def pausing(self: Any, p: Any) -> None:
        original(self, p)
        mid = p.phase == "analyse" and p.folder == "INBOX" and 0 < p.done < p.total
        if mid and not paused.is_set():
            paused.set()
            resume.wait(60)

    worker.RunWorker._on_progress = pausing  # type: ignore[method-assign]
    win.go("Run")
    for i in range(win.run.accounts.count()):
        item = win.run.accounts.item(i)
        if item.text() != "home":
            from PySide6.QtCore import Qt

            item.setCheckState(Qt.CheckState.Unchecked)
    time.sleep(1.2)  # so "time left" has something to go on
    win.run.start()
    spin(paused.is_set)
    settle(1.0)
    save(win, "run.png")
    resume.set()
    spin(lambda: win.results.outcome is not None, 300)
    worker.RunWorker._on_progress = original  # type: ignore[method-assign]

    res = win.results
    for i, name in enumerate(
        ("results-table.png", "results-chart.png", "results-hours.png", "results-messages.png")
    ):
        res.tabs.setCurrentIndex(i)
        if i == 3:
            spin(lambda: bool(res.tables))
            res.check_box.setCurrentIndex(res.check_box.findData("received.from_match"))
            res.value_box.setCurrentText("no")
            res.message_view.selectRow(2)
            spin(lambda: res.header_text.toPlainText() != "")
        save(win, name)
    win.wait_for_workers()
    win.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
