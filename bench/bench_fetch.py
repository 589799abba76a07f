"""Benchmark: CPU of `ImapSource.fetch_headers` against a real Dovecot, two checkouts side by side.

    python bench/bench_fetch.py -n 10000 [--before-root DIR] [--runs 6]

Loads N generated messages into a private Dovecot (the test suite's server), then fetches
every header of INBOX and Junk through `ImapSource` in a fresh child process, alternating
this checkout with `--before-root` (another checkout, e.g. a `git worktree` of main) so both
see the same load. CPU seconds of the child (`time.process_time`), not wall time: on a busy
two-core machine the wall time varies by 2x between runs. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from servers import Dovecot  # noqa: E402

from bench.load_dovecot import load  # noqa: E402
from fixtures.zone import DnsRecords  # noqa: E402

CHILD = r"""
import sys, time
from mailstats.accounts.config import Account
from mailstats.sources.imap import ImapSource
host, port, user, pw = sys.argv[1:5]
acct = Account(name="b", host=host, port=int(port), security="none", username=user,
               ham=["INBOX"])
t = time.process_time()
n = 0
src = ImapSource(acct, pw, pace_s=0)
for folder in ("INBOX", "Junk"):
    state = src.open_folder(folder)
    for _header in src.fetch_headers(state.uids):
        n += 1
src.close()
print(n, time.process_time() - t)
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=10000, help="messages to load")
    p.add_argument("--before-root", help="another checkout to compare with")
    p.add_argument("--runs", type=int, default=6, help="timed runs per checkout")
    a = p.parse_args(argv)
    roots = {"this": str(ROOT)}
    if a.before_root:
        roots["before"] = str(Path(a.before_root).resolve())
    dovecot = Dovecot.start()
    try:
        user = "dana@example.org"
        load(dovecot.maildir_for(user), a.n, uid=dovecot.uid, gid=dovecot.gid,
             records=DnsRecords())  # fmt: skip
        args = [dovecot.host, str(dovecot.port), user, dovecot.users[user]]
        cpu: dict[str, list[float]] = {name: [] for name in roots}
        fetched = 0
        for run in range(a.runs + 1):  # the first round warms Dovecot's index
            for name, root in roots.items():
                env = {**os.environ, "PYTHONPATH": root}
                # In the root's directory: `python -c` puts the current directory ahead of
                # PYTHONPATH, so run from another checkout it imported that one.
                done = subprocess.run(
                    [sys.executable, "-c", CHILD, *args], env=env, cwd=root,
                    capture_output=True, text=True,
                )  # fmt: skip
                if done.returncode:
                    raise SystemExit(done.stderr[-2000:])
                n, seconds = done.stdout.split()
                fetched = int(n)
                if run:
                    cpu[name].append(round(float(seconds), 3))
        median = {k: sorted(v)[len(v) // 2] for k, v in cpu.items()}
        print(json.dumps({"messages": fetched, "cpu_s": cpu, "median_cpu_s": median}))
    finally:
        dovecot.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
