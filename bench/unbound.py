"""unbound serving the generated zone, for benchmarks at 100k messages.

Why not the test suite's dnsmasq here: dnsmasq keeps ptr-record, txt-record and mx-host
options in lists it walks for every query, so its answer rate falls with the zone's size
(measured with `python bench/unbound.py --scale`: 3,000 PTR queries against 1k, 10k and 100k
ptr-records answered at 18,930, 7,578 and 599 per second). A 100k-message benchmark then
times dnsmasq, not mailstats. unbound (the resolver mailstats tells users to run) keeps local
data in a tree; the same zone, the same TTL, NXDOMAIN for every other name.

Same interface as tests/servers.py's Dns: `start(records, local_ttl)`, `server_spec`,
`query_log()` (type, name) pairs, `cleanup()`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from servers import (  # noqa: E402
    ServerUnavailable,
    _stop,
    _UdpStub,
    _wait_for,
    free_port,
    make_server_dir,
)

from fixtures.zone import DnsRecords  # noqa: E402

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
_QUERY = re.compile(r"info: \S+ (\S+?)\.? (\w+) IN\b")


class Unbound:
    def __init__(self, root: Path, records: DnsRecords, local_ttl: int) -> None:
        self.root = root
        self.records = records
        self.local_ttl = local_ttl
        self.host = "127.0.0.1"
        self.port = 0
        self.log_path = root / "unbound.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._stubs = (_UdpStub("timeout"), _UdpStub("servfail"))

    @property
    def server_spec(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def start(cls, records: DnsRecords | None = None, local_ttl: int = 300) -> Unbound:
        if not Path(UNBOUND).exists():
            raise ServerUnavailable("unbound not installed (apt-get install -y unbound)")
        self = cls(make_server_dir("msunbound"), records or DnsRecords(), local_ttl)
        self.port = free_port((socket.SOCK_DGRAM, socket.SOCK_STREAM))
        zone = self.records.unbound_options(local_ttl, self._stubs[0].port, self._stubs[1].port)
        split = next((i for i, line in enumerate(zone) if line == "forward-zone:"), len(zone))
        server = [
            f"interface: {self.host}",
            f"port: {self.port}",
            "do-ip6: no",
            "num-threads: 1",
            'username: ""',
            'chroot: ""',
            f'directory: "{self.root}"',
            'pidfile: ""',
            "use-syslog: no",
            f'logfile: "{self.log_path}"',
            "log-queries: yes",
            "verbosity: 0",
            'module-config: "iterator"',
            "do-not-query-localhost: no",
            "msg-cache-size: 0",
            "rrset-cache-size: 0",
            "so-rcvbuf: 4m",
            *zone[:split],
        ]
        conf = self.root / "unbound.conf"
        conf.write_text(
            "server:\n" + "".join(f"  {line}\n" for line in server) + "".join(
                f"{line}\n" for line in zone[split:]
            )
        )
        self.proc = subprocess.Popen(
            [UNBOUND, "-d", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "unbound.stderr", "ab"),  # noqa: SIM115
        )
        try:
            _wait_for(lambda: _answers(self.port), 60, "unbound", self.proc)
        except ServerUnavailable as exc:
            err = (self.root / "unbound.stderr").read_text(errors="replace")[-2000:]
            self.cleanup()
            raise ServerUnavailable(f"{exc}: {err}") from exc
        return self

    def query_log(self) -> list[tuple[str, str]]:
        """(type, name) of every query unbound received, in order (the start-up probes
        included, as dnsmasq's log has them too)."""
        if not self.log_path.exists():
            return []
        text = self.log_path.read_text(errors="replace")
        return [(m[2], m[1].lower()) for m in _QUERY.finditer(text)]

    def cleanup(self) -> None:
        _stop(self.proc)
        self.proc = None
        for stub in self._stubs:
            stub.close()
        shutil.rmtree(self.root, ignore_errors=True)


def _answers(port: int) -> bool:
    """unbound is up when it answers a query (it reads a big zone before it listens)."""
    query = bytes.fromhex("abcd01000001000000000000") + b"\x07invalid\x00\x00\x01\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        try:
            s.sendto(query, ("127.0.0.1", port))
            return len(s.recv(512)) >= 12
        except OSError:
            return False


def scale() -> None:
    """Answer rates of dnsmasq and unbound for PTR queries against zones of 1k-100k PTRs, and
    what one query costs mailstats' own resolver client in CPU (send, read, parse)."""
    from servers import Dns

    from mailstats.services.dns_wire import Exchanger

    for n in (1000, 10000, 100000):
        records = DnsRecords(ptrs=[(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                                    f"h{i}.example.org") for i in range(n)])  # fmt: skip
        for kind in (Dns, Unbound):
            server = kind.start(records, local_ttl=0)
            try:
                ex = Exchanger([(server.host, server.port)], 4.0)
                keys = [
                    (f"{i & 255}.{i >> 8 & 255}.{i >> 16 & 255}.10.in-addr.arpa", "PTR")
                    for i in ((k * 7919) % n for k in range(3000))
                ]
                t0, c0 = time.perf_counter(), time.process_time()
                got = ex.exchange(keys)
                took, cpu = time.perf_counter() - t0, time.process_time() - c0
                ok = sum(1 for a in got.values() if a.status == "ok")
                print(
                    f"{kind.__name__:8} {n:7d} PTRs: {len(keys) / took:8.0f} answers/s, ok {ok},"
                    f" client CPU {cpu / len(keys) * 1e6:.0f} us per query"
                )
            finally:
                server.cleanup()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", action="store_true", help="compare answer rates with dnsmasq")
    if p.parse_args().scale:
        scale()
