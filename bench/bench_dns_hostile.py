"""Benchmark: what a misbehaving resolver costs a whole run (CPU, wall time, queries).

    python bench/bench_dns_hostile.py [-n 540] [--timeout 4] [--mailstats-root DIR]

A generated mailbox (local mbox files, every DNS module, no worker processes) is run once per
resolver: honest (the generated zone), refusing everything, SERVFAIL to everything, never
answering, a closed port. Each run is a fresh child process on a fresh cache; CPU is the
child's user + system time. Prints one JSON object; docs/benchmarks.md records the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from hostile_dns import HostileDns, zone_from_records  # noqa: E402

from fixtures.generator import generate_mailbox  # noqa: E402

MODULES = ["received", "dnsbl", "dkim", "spf", "domain", "dynamic"]


def _closed_port() -> str:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    spec = f"127.0.0.1:{s.getsockname()[1]}"
    s.close()
    return spec


def run_once(work: Path, mail: Path, box: object, spec: str, timeout: float, root: str) -> dict:
    cfg = work / "accounts.toml"
    settings = {
        "dns_servers": [spec],
        "dns_timeout": timeout,
        "modules": MODULES,
        "cache": str(work / "cache.sqlite"),
        "analysis_workers": 0,
        **box.settings,  # type: ignore[attr-defined]
    }
    lines = ["[settings]"] + [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    lines += ["", "[[accounts]]", 'name = "l"', f"path = {json.dumps(str(mail))}"]
    lines += ['ham = ["INBOX"]', 'spam = ["Junk"]']
    cfg.write_text("\n".join(lines) + "\n")
    env = dict(os.environ, PYTHONPATH=root)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "mailstats", "--batch", str(cfg), "--out", str(work / "out"),
         "--quiet"],
        env=env, cwd=root, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    m = json.loads((work / "out" / "manifest.json").read_text())
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "dns": {k: v for k, v in m.get("dns", {}).items() if k != "cache_hit"},
        "dns_trust": m.get("dns_trust", {}).get("status", "(none)"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=540, help="messages (ham 60 %%, spam 40 %%)")
    p.add_argument("--timeout", type=float, default=4.0, help="settings.dns_timeout")
    p.add_argument("--mailstats-root", default=str(ROOT))
    a = p.parse_args(argv)
    n_spam = round(a.n * 0.4)
    box = generate_mailbox(13, a.n - n_spam, n_spam, 0, dns_failures=False)
    out: dict[str, object] = {"messages": a.n, "dns_timeout": a.timeout,
                              "mailstats_root": a.mailstats_root}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="msdnsbench") as tmp:
        mail = Path(tmp) / "mail"
        box.write_mbox(mail)
        for mode in ("honest", "refuse", "servfail", "silent", "closed"):
            work = Path(tmp) / mode
            work.mkdir()
            if mode == "closed":
                out[mode] = run_once(work, mail, box, _closed_port(), a.timeout, a.mailstats_root)
                continue
            zone = zone_from_records(box.dns_records) if mode == "honest" else {}
            with HostileDns(mode, zone=zone) as srv:
                fig = run_once(work, mail, box, srv.spec, a.timeout, a.mailstats_root)
                fig["server_received"] = srv.queries
                fig["server_distinct"] = len(srv.asked)
            out[mode] = fig
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
