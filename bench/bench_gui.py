"""Benchmark: the desktop window on a big mailbox, driven like a user with a big mailbox.

    python bench/bench_gui.py -n 100000 [--runs 3] [--clicks 40] [--no-report]
                              [--mailbox DIR] [--stacks FILE]

Writes a local Maildir of N generated messages (INBOX 60 %, Junk 40 %) plus a 300-message
Sent folder, opens the window offscreen (its own settings, config and cache in a temporary
directory), and then, `--runs` times: Run (the first cold, the others warm), the Report button
(report.html, written in a child process), and the message view: `--clicks` rows of the
biggest folder selected one at a time (the "why" latency: selection to the panel showing
that message's header and reasons), then ten Down-arrow presses in a row (how many messages
were read, and how long until the panel shows the last one). Throughout, a 20 ms timer
records the longest time the event loop did not answer (a stall), and the window process's
resident memory is sampled every 50 ms (the report's child process is not the window's).
The overall progress bar's value when the small Sent folder is done is recorded too (in %, or
"busy" while the folders' message counts are not known yet).

`--mailbox DIR` keeps the generated Maildir in DIR and reuses it when it is already there
(generating 100k messages takes minutes). `--stacks FILE` appends every thread's Python
stack to FILE whenever the event loop is 0.3 s late (faulthandler's own watchdog thread,
which needs no GIL, so it also catches a worker thread that holds the GIL): where a stall
comes from.

Prints one JSON object; docs/benchmarks.md records the figures.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

#: modules that need no network (the benchmark measures the window, not DNS)
LOCAL_MODULES = [
    "received",
    "attachments",
    "images",
    "datetime",
    "reply",
    "friends",
    "internal",
    "personal",
    "list",
    "auth",
]


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    """The window process's resident memory every 50 ms; `peak` since the last `reset`."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_mb())
            time.sleep(0.05)

    def reset(self) -> float:
        peak, self.peak = self.peak, rss_mb()
        return peak


def write_mailbox(root: Path, n: int) -> dict[str, int]:
    from bench.load_dovecot import load
    from fixtures.generator import generate_mailbox

    counts = load(root, n)
    sent = generate_mailbox(seed=5, n_ham=0, n_spam=0, n_sent=300, dns_failures=False)
    d = root / ".Sent"
    for sub in ("cur", "new", "tmp"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "maildirfolder").touch()
    for i, m in enumerate(sent.folders["Sent"]):
        (d / "cur" / f"{i}.sent,S={len(m.raw)}:2,S").write_bytes(m.raw)
    counts["Sent"] = len(sent.folders["Sent"])
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--clicks", type=int, default=40)
    ap.add_argument("--no-report", action="store_true")
    ap.add_argument("--mailbox", type=Path, help="keep (and reuse) the generated Maildir here")
    ap.add_argument("--stacks", type=Path, help="append the stacks of every stall here")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mailstats-bench-gui-"))
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_CACHE_HOME", "cache")):
        os.environ[var] = str(tmp / sub)
    os.environ["XDG_DATA_HOME"] = str(tmp / "data")
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    t0 = time.perf_counter()
    maildir = args.mailbox or tmp / "Maildir"
    counts_file = maildir / "bench-counts.json"
    if args.mailbox and counts_file.is_file():
        counts = json.loads(counts_file.read_text())
        if sum(counts.values()) != args.n + 300:
            raise SystemExit(f"{maildir} holds another size: remove it or pick another")
    else:
        counts = write_mailbox(maildir, args.n)
        counts_file.write_text(json.dumps(counts))
    out: dict[str, Any] = {
        "messages": sum(counts.values()),
        "folders": counts,
        "generate_s": round(time.perf_counter() - t0, 1),
        "load_average": os.getloadavg()[0],
    }
    print(f"wrote {out['messages']:,} messages in {out['generate_s']} s", file=sys.stderr)

    from PySide6.QtCore import QCoreApplication, QSettings, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    QCoreApplication.setOrganizationName("mailstats-bench")
    QCoreApplication.setApplicationName("mailstats-bench")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "qs"))
    app = QApplication([sys.argv[0]])
    from mailstats.accounts.config import Account
    from mailstats.gui import results as results_module
    from mailstats.gui.main_window import MainWindow

    sampler = Sampler()
    sampler.start()
    stall = {"last": time.monotonic(), "max": 0.0}

    stacks = open(args.stacks, "a", encoding="utf-8") if args.stacks else None  # noqa: SIM115

    def tick() -> None:
        now = time.monotonic()
        stall["max"] = max(stall["max"], now - stall["last"])
        if stacks is not None and now - stall["last"] > 0.3:
            print(f"stall of {now - stall['last']:.3f} s ended at {time.time():.3f}", file=stacks)
            stacks.flush()
        stall["last"] = now
        if stacks is not None:
            faulthandler.cancel_dump_traceback_later()
            faulthandler.dump_traceback_later(0.3, file=stacks)

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(20)

    def spin(cond: Any, timeout: float = 1800.0) -> None:
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > end:
                raise TimeoutError("the window did not get there in time")
            app.processEvents()
            time.sleep(0.002)

    win = MainWindow(tmp / "config" / "accounts.toml", tmp / "cache.sqlite")
    win.resize(1280, 800)
    win.show()
    win.store.upsert(
        Account(
            name="archive",
            path=str(maildir),
            full_name="Dana Whitfield",
            own_domains=["example.org"],
            ham=["INBOX"],
            spam=["Junk"],
            sent=["Sent"],
        )
    )
    win.store.config.settings.modules = LOCAL_MODULES
    win.store.save()
    win._accounts_changed()
    res = win.results
    res.open_url = lambda _url: True  # no browser
    shown_s: list[float] = []
    real_show = res.show_outcome

    def timed_show(outcome: Any) -> None:
        t = time.perf_counter()
        real_show(outcome)
        shown_s.append(time.perf_counter() - t)

    res.show_outcome = timed_show  # type: ignore[method-assign]
    runs = []
    for i in range(args.runs):
        entry: dict[str, Any] = {"run": i + 1}
        win.go("Run")
        before = res.outcome
        sent_done: list[Any] = []
        original = win.run.on_progress

        def watch(p: Any, original: Any = original, sent_done: list[Any] = sent_done) -> None:
            original(p)
            if p.phase == "done" and p.folder == "Sent":
                bar = win.run.overall  # a busy bar (no percentage) has maximum 0
                sent_done.append("busy" if bar.maximum() == 0 else bar.value() / 10)
            if len(sent_done) == 1 and win.run.overall.maximum() != 0 and p.folder != "Sent":
                # the first percentage shown after Sent: what the weighting makes of it
                sent_done.append(
                    f"{win.run.overall.value() / 10} % at {p.folder} {p.phase} "
                    f"{p.done:,} of {p.total:,}"
                )

        win.run.on_progress = watch  # type: ignore[method-assign]
        stall["max"], stall["last"] = 0.0, time.monotonic()
        t = time.perf_counter()
        assert win.run.start()
        spin(lambda b=before: res.outcome is not None and res.outcome is not b)
        before = None  # the window let go of the last run's results: so does the benchmark
        entry["run_s"] = round(time.perf_counter() - t, 2)
        entry["stall_max_s"] = round(stall["max"], 3)
        entry["show_results_s"] = round(shown_s[-1], 3) if shown_s else None
        entry["overall_when_sent_done"] = sent_done[0] if sent_done else None
        entry["overall_first_shown_after"] = sent_done[1] if len(sent_done) > 1 else None
        win.run.on_progress = original  # type: ignore[method-assign]
        entry["rss_after_run_mb"] = round(rss_mb(), 1)
        entry["peak_run_mb"] = round(sampler.reset(), 1)

        # the message view on the biggest folder
        res.tabs.setCurrentIndex(3)
        inbox = next(
            j for j in range(res.folder_box.count()) if "INBOX" in res.folder_box.itemText(j)
        )
        res.folder_box.setCurrentIndex(inbox)
        spin(lambda: ("archive", "INBOX") in res.tables and res.messages.rowCount() > 0)
        rng = random.Random(i)
        latencies = []
        for row in rng.sample(range(res.messages.rowCount()), args.clicks):
            uid = res.messages.uid_at(row)
            t = time.perf_counter()
            res.message_view.selectRow(row)
            spin(lambda u=uid: res.shown is not None and res.shown[2] == u, 60)
            latencies.append(time.perf_counter() - t)
        entry["why_ms_median"] = round(1000 * statistics.median(latencies), 1)
        entry["why_ms_max"] = round(1000 * max(latencies), 1)
        calls: list[int] = []
        real = res.outcome.results.explain

        def counting(
            acct: Any, folder: str, uid: int, real: Any = real, calls: list[int] = calls
        ) -> Any:
            calls.append(uid)
            return real(acct, folder, uid)

        res.outcome.results.explain = counting
        res.message_view.setFocus()
        res.message_view.selectRow(0)
        spin(lambda: res.explaining is None)
        calls.clear()
        t = time.perf_counter()
        for _ in range(10):
            QTest.keyClick(res.message_view, Qt.Key.Key_Down)
        last = res.messages.uid_at(res.message_view.currentIndex().row())
        spin(lambda u=last: res.shown is not None and res.shown[2] == u and not res.explaining)
        entry["ten_downs_ms"] = round(1000 * (time.perf_counter() - t), 1)
        entry["ten_downs_reads"] = len(calls)
        del res.outcome.results.explain  # the method again (no self-reference left behind)
        entry["peak_view_mb"] = round(sampler.reset(), 1)

        if not args.no_report and results_module._write_report is not None:
            t = time.perf_counter()
            before_msg = win.statusBar().currentMessage()
            res.report(str(tmp / "out"))
            spin(
                lambda b=before_msg: (
                    win.statusBar().currentMessage().startswith("Wrote ")
                    and win.statusBar().currentMessage().endswith("report.html")
                    and win.statusBar().currentMessage() != b
                ),
                3600,
            )
            entry["export_and_report_s"] = round(time.perf_counter() - t, 1)
            entry["rss_after_report_mb"] = round(rss_mb(), 1)
            entry["peak_report_mb"] = round(sampler.reset(), 1)
        runs.append(entry)
        print(json.dumps(entry), file=sys.stderr)
    out["runs"] = runs
    out["peak_rss_mb"] = max(
        max(r.get(k, 0) for k in ("peak_run_mb", "peak_view_mb", "peak_report_mb")) for r in runs
    )
    win.wait_for_workers(600000)
    win.close()
    sampler.stop.set()
    if stacks is not None:
        faulthandler.cancel_dump_traceback_later()
        stacks.close()
    print(json.dumps(out, indent=1))
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
