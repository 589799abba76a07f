"""TCP reachability probes for the opt-in reachability module.

Why it looks like this:
- It contacts the senders' machines, so the engine builds it only when the user enabled a
  module that needs it; nothing else in mailstats opens connections to third parties.
- Each IP is probed at most once per run (spam repeats IPs), with bounded concurrency: a
  run over 10k messages must not open 10k sockets at once nor wait 3 s per message in turn.
  Modules queue IPs during prefetch (`want`); the first `reachable` call probes everything
  queued concurrently, so the engine needs no TCP-specific prefetch step.
- Only a completed TCP handshake is "reachable". Refused, reset, timed out and "host
  unreachable" are "not reachable"; errors that describe *our* side (no route to that
  network from here, no IPv6, local firewall) are "unknown" (None).
- Many ISPs block outbound port 25 from home lines. If every probe of a run failed, the
  answers say more about the user's network than about the senders: `suspect_blocked`
  lets the module warn instead of silently reporting "unreachable" for everything.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

#: errno values that describe the local network, not the remote host.
_LOCAL_ERRNOS = frozenset(
    {
        errno.ENETUNREACH,
        errno.EADDRNOTAVAIL,
        errno.EAFNOSUPPORT,
        errno.EACCES,
        errno.EPERM,
        errno.ENETDOWN,
        errno.ENOBUFS,
        errno.EMFILE,
        errno.ENFILE,
    }
)


class TcpProber:
    """`reachable(ip)`: True (handshake), False (refused/timeout), None (can't tell)."""

    def __init__(self, port: int = 25, timeout: float = 3.0, concurrency: int = 16) -> None:
        self.port = int(port)
        self.timeout = float(timeout)
        self.concurrency = max(1, int(concurrency))
        self._results: dict[str, bool | None] = {}
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._probe_lock = threading.Lock()
        self.stats: Counter[str] = Counter()

    # -- public -------------------------------------------------------------------------
    def want(self, ip: str) -> None:
        """Queue an IP for the next concurrent batch (called from module prefetch)."""
        key = _normalize(ip)
        if key is None:
            return
        with self._lock:
            if key not in self._results:
                self._pending.add(key)

    def prefetch(self, ips: Iterable[str]) -> None:
        """Probe every not-yet-known IP concurrently now."""
        for ip in ips:
            self.want(ip)
        self._run_pending()

    def reachable(self, ip: str) -> bool | None:
        key = _normalize(ip)
        if key is None:
            return None
        with self._lock:
            if key in self._results:
                return self._results[key]
            self._pending.add(key)
        self._run_pending()
        with self._lock:
            return self._results.get(key)

    @property
    def probed(self) -> int:
        with self._lock:
            return len(self._results)

    def suspect_blocked(self, minimum: int = 10) -> bool:
        """Every one of at least `minimum` probes failed: outbound port likely blocked here."""
        with self._lock:
            values = list(self._results.values())
        return len(values) >= minimum and not any(values)

    # -- internals ----------------------------------------------------------------------
    def _run_pending(self) -> None:
        # One batch at a time: a second caller waits and then finds its answer cached.
        with self._probe_lock:
            with self._lock:
                todo = [ip for ip in self._pending if ip not in self._results]
                self._pending.clear()
            if not todo:
                return
            if len(todo) == 1:
                results = [self._probe(todo[0])]
            else:
                with ThreadPoolExecutor(max_workers=min(self.concurrency, len(todo))) as pool:
                    results = list(pool.map(self._probe, todo))
            with self._lock:
                for ip, value in zip(todo, results, strict=True):
                    self._results[ip] = value

    def _probe(self, ip: str) -> bool | None:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            self.stats["local_error"] += 1
            return None
        try:
            sock.settimeout(self.timeout)
            sock.connect((ip, self.port))
        except TimeoutError:
            self.stats["timeout"] += 1
            return False
        except ConnectionRefusedError:
            self.stats["refused"] += 1
            return False
        except OSError as exc:
            if exc.errno in _LOCAL_ERRNOS:
                self.stats["local_error"] += 1
                return None
            self.stats["unreachable"] += 1  # EHOSTUNREACH, resets, ...
            return False
        finally:
            sock.close()
        self.stats["connected"] += 1
        return True


def _normalize(ip: str) -> str | None:
    try:
        return str(ipaddress.ip_address((ip or "").strip()))
    except ValueError:
        return None
