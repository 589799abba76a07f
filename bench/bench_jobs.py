"""Benchmark: `--jobs N` against a sequential run over 20 accounts.

    python bench/bench_jobs.py [--accounts 20] [--messages 300] [--latency-ms 20] [--jobs 1,4,8]

Real accounts live on remote servers, where each IMAP round trip costs network latency; on
loopback there is none and a run is CPU bound. So the accounts are reached through a small
TCP proxy on loopback that delays every server-to-client chunk by --latency-ms (0 = direct),
and each run starts from an empty cache. Prints one JSON object of wall times and speed-ups.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from servers import Dns, Dovecot  # noqa: E402

from bench.load_dovecot import load  # noqa: E402
from mailstats.cli import run_batch  # noqa: E402


class DelayProxy:
    """Loopback TCP proxy adding a fixed delay to each server->client chunk (one RTT each)."""

    def __init__(self, target: tuple[str, int], delay_s: float) -> None:
        self.target, self.delay = target, delay_s
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, server, 0.0), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, self.delay),
                             daemon=True).start()  # fmt: skip

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, delay: float) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if delay:
                    time.sleep(delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.stop = True
        self.sock.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--accounts", type=int, default=20)
    p.add_argument("--messages", type=int, default=300)
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--jobs", default="1,4,8")
    a = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="msjobs"))
    dovecot = Dovecot.start()
    dns = Dns.start()
    proxy = DelayProxy((dovecot.host, dovecot.port), a.latency_ms / 1000)
    try:
        blocks = []
        for i in range(a.accounts):
            user = f"user{i}@example.org"
            dovecot.add_user(user, f"pw{i}")
            load(dovecot.maildir_for(user), a.messages, seed=100 + i, uid=dovecot.uid,
                 gid=dovecot.gid)  # fmt: skip
            blocks.append(
                f'[[accounts]]\nname = "a{i}"\nhost = "127.0.0.1"\nport = {proxy.port}\n'
                f'security = "none"\nusername = "{user}"\npassword = "pw{i}"\n'
                'ham = ["INBOX"]\nspam = ["Junk"]\n'
            )
        time.sleep(2.5)  # Dovecot re-reads its passwd-file at most once a second
        cfg = work / "accounts.toml"
        cfg.write_text(
            f'[settings]\ndns_servers = ["{dns.server_spec}"]\nmodules = ["received"]\n\n'
            + "\n".join(blocks)
        )
        times: dict[str, float] = {}
        for jobs in (int(j) for j in a.jobs.split(",")):
            cache = work / f"cache-{jobs}.sqlite"
            t0 = time.perf_counter()
            rc = run_batch(str(cfg), str(work / f"out-{jobs}"), cache=str(cache), quiet=True,
                           jobs=jobs)  # fmt: skip
            times[str(jobs)] = round(time.perf_counter() - t0, 2)
            if rc != 0:
                raise SystemExit(f"--jobs {jobs} exited {rc}")
        same = len({(work / f"out-{j}" / "summary.csv").read_text() for j in times}) == 1
        base = times[min(times, key=int)]
        print(json.dumps({
            "accounts": a.accounts, "messages_per_account": a.messages,
            "latency_ms": a.latency_ms, "seconds": times,
            "speedup": {j: round(base / t, 2) for j, t in times.items()},
            "identical_summaries": same,
        }, indent=2))  # fmt: skip
    finally:
        proxy.close()
        dovecot.cleanup()
        dns.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
