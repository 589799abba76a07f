"""reachability: TcpProber against loopback listeners only; the module via a recording prober."""

from __future__ import annotations

import socket
import time

import pytest
from mod_network_support import message, received, splitter

from mailstats.modules import available_modules, select_modules
from mailstats.modules.reachability import Reachability
from mailstats.services import Identity, Services
from mailstats.services.probe import TcpProber


@pytest.fixture
def listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def closed_port():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: the kernel answers RST
    return port


def test_listening_port_is_reachable(listener):
    assert TcpProber(listener, timeout=3).reachable("127.0.0.1") is True


def test_closed_port_is_not_reachable(closed_port):
    prober = TcpProber(closed_port, timeout=3)
    assert prober.reachable("127.0.0.1") is False
    assert prober.stats["refused"] == 1


def test_silent_listener_backlog_times_out():
    """A full accept backlog drops SYNs: the connect must give up within the timeout."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(0)
    port = sock.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # fill the backlog without ever accepting
            f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            f.setblocking(False)
            f.connect_ex(("127.0.0.1", port))
            fillers.append(f)
        time.sleep(0.1)
        prober = TcpProber(port, timeout=0.5)
        start = time.monotonic()
        value = prober.reachable("127.0.0.1")
        elapsed = time.monotonic() - start
        assert elapsed < 2.0
        if value is True:
            pytest.skip("kernel accepted beyond the backlog; cannot provoke a timeout here")
        assert value is False
    finally:
        for f in fillers:
            f.close()
        sock.close()


def test_each_ip_probed_once(listener):
    prober = TcpProber(listener, timeout=3, concurrency=4)
    assert prober.reachable("127.0.0.1") is True
    assert prober.reachable("127.0.0.1") is True
    assert prober.stats["connected"] == 1  # answered from memory the second time


def test_batch_probing(listener):
    ips = [f"127.0.0.{i}" for i in range(1, 9)]  # all loopback; only .1 has the listener
    prober = TcpProber(listener, timeout=3, concurrency=4)
    prober.prefetch(ips + ["127.0.0.1", "not-an-ip"])
    assert prober.probed == 8
    assert prober.stats["connected"] + prober.stats["refused"] == 8  # one probe per IP
    assert [prober.reachable(ip) for ip in ips] == [True] + [False] * 7
    assert prober.stats["connected"] == 1  # nothing probed again
    assert prober.reachable("garbage") is None


def test_suspect_blocked(closed_port):
    prober = TcpProber(closed_port, timeout=1)
    prober.prefetch([f"127.0.0.{i}" for i in range(1, 12)])
    assert prober.suspect_blocked() is True
    assert prober.suspect_blocked(minimum=50) is False


class RecordingProber:
    """Stands in for TcpProber in module tests: origins are public IPs, never contacted."""

    port = 25

    def __init__(self, answers: dict[str, bool | None]) -> None:
        self.answers = answers
        self.wanted: list[str] = []
        self.asked: list[str] = []
        self.stats = {"connected": 1}
        self.probed = 0

    def want(self, ip: str) -> None:
        self.wanted.append(ip)

    def reachable(self, ip: str) -> bool | None:
        self.asked.append(ip)
        return self.answers.get(ip)

    def suspect_blocked(self, minimum: int = 10) -> bool:
        return False


def _services(probe) -> Services:
    return Services(
        dns=None,  # type: ignore[arg-type] - the module must not use DNS
        domains=splitter(),
        identity=Identity(),
        probe=probe,
    )


def test_module_uses_the_probe_service():
    probe = RecordingProber({"198.52.100.7": True, "203.1.113.9": False})
    svc = _services(probe)
    module = Reachability()
    module.prepare(svc)
    results = []
    for ip in ("198.52.100.7", "203.1.113.9", "198.52.100.77"):
        m = message(received(ip))
        assert list(module.prefetch(m, svc)) == []
        results.append(module.evaluate(m, svc)["origin_reachable"])
    assert results == [True, False, None]
    assert probe.wanted == ["198.52.100.7", "203.1.113.9", "198.52.100.77"]
    assert module.counters() == {"connected": 1}


def test_module_without_probe_or_origin_reports_unknown():
    module = Reachability()
    svc = _services(None)
    module.prepare(svc)
    res = module.evaluate(message(received("198.52.100.7")), svc)
    assert res["origin_reachable"] is None
    probe = RecordingProber({})
    svc = _services(probe)
    res = module.evaluate(message(received("192.168.1.5")), svc)
    assert res["origin_reachable"] is None
    assert probe.asked == []  # private origins are never probed


def test_module_is_opt_in():
    reg = available_modules()
    assert reg.by_name("reachability") is not None
    assert "reachability" not in [m.name for m in select_modules(reg, None)]
    assert Reachability.opt_in is True
