"""Benchmark: mailstats against a real Dovecot, versus the bare header-fetch floor.

    python bench/bench_imap.py -n 100000 [--modules 'received;default'] [--repeat-rerun 3]
        [--rounds 3]
    python bench/bench_imap.py -n 10000 --modules default [--local-ttl 0] [--mailstats-root DIR]

Starts Dovecot (the test suite's) and a DNS server on loopback, writes N generated messages
straight into the Maildir, then measures, each in a fresh child process so peak RSS is the
child's own:
  (a) floor: a bare imapclient EXAMINE + SEARCH + batched FETCH of BODY.PEEK[HEADER],
      BODYSTRUCTURE and RFC822.SIZE over the same folders (what any tool must at least do);
  (b) `mailstats --batch` cold (empty cache), for each module set of `--modules` (by default
      received alone and the default set, side by side in one run over the same mail);
  (c) `mailstats --batch` again with no new mail.
Each set's per-module cost table (the manifest's module_cost: us, DNS names and bytes fetched
per message) goes to stderr, and into the JSON under runs.SET.module_cost.
unbound serves the generated messages' own zone (`--dns dnsmasq`: the test suite's dnsmasq,
whose per-query walk of its record lists makes it the bottleneck at 100k, see bench/unbound.py;
`--local-ttl`: the answers' TTL, dnsmasq's default 0 as in the field), and its query log
counts what the network was asked during the cold run: the
queries against the distinct (name, type) pairs. `--mailstats-root` runs another checkout's
mailstats in the children (a before/after comparison with the same servers and mail).
Prints one JSON object with the figures; docs/benchmarks.md records them.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from servers import Dns, Dovecot  # noqa: E402

from bench.load_dovecot import load  # noqa: E402
from bench.unbound import Unbound  # noqa: E402
from fixtures.generator import SETTINGS  # noqa: E402
from fixtures.zone import DnsRecords  # noqa: E402

FLOOR = r"""
import sys, time, imapclient
host, port, user, pw = sys.argv[1:5]
c = imapclient.IMAPClient(host, port=int(port), ssl=False)
c.login(user, pw)
n = 0
t = time.perf_counter()
for folder in ("INBOX", "Junk"):
    c.select_folder(folder, readonly=True)
    uids = c.search("ALL")
    for i in range(0, len(uids), 500):
        data = c.fetch(uids[i:i + 500], ["BODY.PEEK[HEADER]", "BODYSTRUCTURE", "RFC822.SIZE"])
        n += len(data)
c.logout()
print(n, time.perf_counter() - t)
"""


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants (the analysis worker too)."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{p}/task/{p}/children") as fh:
                todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return total


def _cpu_ticks() -> tuple[int, int]:
    """(steal, all) jiffies of the machine so far, from /proc/stat (0, 0 elsewhere)."""
    try:
        with open("/proc/stat") as fh:
            ticks = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return (ticks[7] if len(ticks) > 7 else 0), sum(ticks[:8])


class Timed(NamedTuple):
    seconds: float
    peak_mb: int  # resident memory of the process tree at its peak
    out: str
    cpu_s: float  # user + system of the child and every process it waited for
    #: the share of the machine's time the hypervisor gave to other guests meanwhile: on a
    #: shared virtual machine the same run's seconds differ by a third between quiet and
    #: busy neighbours, and this says which one a figure had
    steal_pct: float


def timed_child(cmd: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> Timed:
    """Wall time, peak memory, output, CPU and steal of one child process."""
    steal0, all0 = _cpu_ticks()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        # never poll() here: that would reap the child before wait4 collects its rusage
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss_kb(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    stop.set()
    sampler.join()
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{cmd[:3]} failed with {code}: {err[-2000:]}")
    steal1, all1 = _cpu_ticks()
    steal = 100 * (steal1 - steal0) / max(1, all1 - all0)
    cpu = usage.ru_utime + usage.ru_stime
    return Timed(elapsed, max(usage.ru_maxrss, peak[0]) // 1024, out, cpu, round(steal, 1))


def cost_table(modules: str, cost: dict[str, dict[str, float]], messages: int) -> str:
    """The manifest's module_cost as a table for people: a slow module shows at a glance."""
    lines = [f"-- {modules}: cost per message ({messages} messages)",
             f"{'module':16} {'us/msg':>9} {'dns names/msg':>14} {'bytes/msg':>10}"]  # fmt: skip
    for name, row in sorted(cost.items(), key=lambda kv: -kv[1].get("us_per_message", 0)):
        if name.startswith("_"):
            continue
        lines.append(
            f"{name:16} {row['us_per_message']:9.1f} {row['dns_names_per_message']:14.3f}"
            f" {row['fetch_bytes_per_message']:10.0f}"
        )
    fetch = cost.get("_fetch", {})
    if fetch:
        per = {k: round(v / max(1, messages)) for k, v in fetch.items() if k.endswith("_bytes")}
        lines.append(f"{'(fetched)':16} bytes/msg {per}")
    if "_dns_prefetch" in cost:
        lines.append(f"{'(dns wait)':16} {cost['_dns_prefetch'].get('seconds', 0)} s in all")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=10000, help="messages to load")
    p.add_argument(
        "--modules",
        default="received;default",
        help="module sets run side by side, ';' between sets: a comma list or 'default'",
    )
    p.add_argument(
        "--setting", action="append", default=[], help="extra [settings] line KEY=TOML (repeat)"
    )
    p.add_argument("--repeat-rerun", type=int, default=3)
    p.add_argument(
        "--workers", type=int, default=2, help="settings.analysis_workers (0: all in one process)"
    )
    p.add_argument("--local-ttl", type=int, default=0, help="TTL of the zone's answers")
    p.add_argument("--dns", choices=("unbound", "dnsmasq"), default="unbound")
    p.add_argument("--mailstats-root", help="run the mailstats of this checkout in the children")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="floor and cold runs taken again, alternating, this many times in all: the "
        "machine's speed drifts by a third within minutes, so each cold run is divided by "
        "the floor measured just before it, and the median of those ratios is reported",
    )
    a = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="msbench"))
    # An installed package has its bytecode (pip compiles it); a checkout run with
    # PYTHONDONTWRITEBYTECODE=1, as on this machine, would compile ~60 files in every child.
    measured = Path(a.mailstats_root).resolve() if a.mailstats_root else ROOT
    compileall.compile_dir(str(measured / "mailstats"), quiet=1)
    dovecot = Dovecot.start()
    records = DnsRecords()
    try:
        user = "dana@example.org"
        t0 = time.perf_counter()
        counts = load(
            dovecot.maildir_for(user), a.n, uid=dovecot.uid, gid=dovecot.gid, records=records
        )
        load_s = time.perf_counter() - t0
        server = Unbound if a.dns == "unbound" else Dns
        dns = server.start(records, local_ttl=a.local_ttl)
    except BaseException:
        dovecot.cleanup()
        raise
    try:
        pw = dovecot.users[user]

        # Dovecot builds its index on first access: warm it so (a) and (b) compare fairly.
        timed_child([sys.executable, "-c", FLOOR, dovecot.host, str(dovecot.port), user, pw])
        floor = timed_child(
            [sys.executable, "-c", FLOOR, dovecot.host, str(dovecot.port), user, pw]
        )
        floor_s = floor.seconds
        fetched = int(floor.out.split()[0])

        figures: dict[str, object] = {
            "messages": fetched,
            "folders": counts,
            "analysis_workers": a.workers,
            "load_s": round(load_s, 2),
            "floor_s": round(floor_s, 2),
            "floor_peak_mb": floor.peak_mb,
            "floor_steal_pct": floor.steal_pct,
            "mailstats_root": a.mailstats_root or str(ROOT),
            "local_ttl": a.local_ttl,
            "dns_server": a.dns,
            "runs": {},
        }
        env = dict(os.environ, BENCH_PW=pw)
        if a.mailstats_root:
            env["PYTHONPATH"] = str(Path(a.mailstats_root).resolve())
        # `python -m` imports from the working directory first: run in the checkout measured
        cwd = str(Path(a.mailstats_root).resolve()) if a.mailstats_root else str(ROOT)
        cmds: dict[str, list[str]] = {}
        for modules in a.modules.split(";"):
            run = work / modules.replace(",", "+")
            run.mkdir()
            listed = "" if modules == "default" else f"modules = {json.dumps(modules.split(','))}"
            cfg = run / "accounts.toml"
            cfg.write_text(
                f"[settings]\ndns_servers = [{json.dumps(dns.server_spec)}]\n{listed}\n"
                f"cache = {json.dumps(str(run / 'cache.sqlite'))}\n"
                f"analysis_workers = {a.workers}\n"
                + "".join(f"{k} = {json.dumps(v)}\n" for k, v in SETTINGS.items())
                + "".join(f"{k} = {v}\n" for k, v in (kv.split("=", 1) for kv in a.setting))
                + "\n"
                f'[[accounts]]\nname = "bench"\nhost = "{dovecot.host}"\nport = {dovecot.port}\n'
                f'security = "none"\nusername = "{user}"\npassword_env = "BENCH_PW"\n'
                'ham = ["INBOX"]\nspam = ["Junk"]\n'
            )
            cmd = [sys.executable, "-m", "mailstats", "--batch", str(cfg), "--out",
                   str(run / "out"), "--quiet"]  # fmt: skip
            cmds[modules] = cmd
            logged = len(dns.query_log())
            cold = timed_child(cmd, env, cwd)
            cold_s = cold.seconds
            asked = dns.query_log()[logged:]
            manifest = json.loads((run / "out" / "manifest.json").read_text())
            reruns = [timed_child(cmd, env, cwd) for _ in range(a.repeat_rerun)]
            figures["runs"][modules] = {  # type: ignore[index]
                "cold_s": round(cold_s, 2),
                "cold_peak_mb": cold.peak_mb,
                "cold_cpu_s": round(cold.cpu_s, 2),
                "cold_steal_pct": cold.steal_pct,
                "cold_over_floor": round(cold_s / floor_s, 2),
                "rerun_s_best": round(min(r.seconds for r in reruns), 2) if reruns else None,
                "rerun_s_all": [round(r.seconds, 2) for r in reruns],
                "rerun_peak_mb": max((r.peak_mb for r in reruns), default=None),
                "cache_mb": round((run / "cache.sqlite").stat().st_size / 2**20, 1),
                "dns_queries_cold": len(asked),
                "dns_distinct_pairs_cold": len(set(asked)),
                "dns_queries_per_pair": round(len(asked) / max(1, len(set(asked))), 3),
                "manifest_dns": manifest.get("dns", {}),
                "manifest_dns_trust": manifest.get("dns_trust", {}).get("status", "(none)"),
                "module_cost": manifest.get("module_cost", {}),
            }
            print(cost_table(modules, manifest.get("module_cost", {}), fetched), file=sys.stderr)
        for _ in range(a.rounds - 1):
            again = timed_child(
                [sys.executable, "-c", FLOOR, dovecot.host, str(dovecot.port), user, pw]
            )
            for modules in a.modules.split(";"):
                run = work / modules.replace(",", "+")
                for old in run.glob("cache.sqlite*"):
                    old.unlink()
                cold = timed_child(cmds[modules], env, cwd)
                entry = figures["runs"][modules]  # type: ignore[index]
                entry.setdefault("rounds", []).append({
                    "floor_s": round(again.seconds, 2),
                    "cold_s": round(cold.seconds, 2),
                    "cold_cpu_s": round(cold.cpu_s, 2),
                    "cold_over_floor": round(cold.seconds / again.seconds, 2),
                })  # fmt: skip
        for entry in figures["runs"].values():  # type: ignore[union-attr]
            later = [r["cold_over_floor"] for r in entry.get("rounds", [])]
            ratios = [entry["cold_over_floor"], *later]
            entry["cold_over_floor_all"] = ratios
            entry["cold_over_floor_median"] = round(statistics.median(ratios), 2)
        figures["load_average"] = os.getloadavg()[0]
        print(json.dumps(figures, indent=2))
    finally:
        dovecot.cleanup()
        dns.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
