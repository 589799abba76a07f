"""Shared helpers for the tests of the network header modules (dnsbl, dkim, spf, ...).

DNS answers come from a real dnsmasq on loopback (tests/servers.py) through the real
`Resolver`, so the modules are tested against the statuses a real server produces
(NXDOMAIN vs NODATA, SERVFAIL, a timeout), not against what a fake's author believed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mailstats.mail.message import Message
from mailstats.services import Identity, Services
from mailstats.services.dns import Resolver
from mailstats.services.domains import DomainSplitter

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
if str(ROOT) not in sys.path:  # tests/servers.py imports fixtures.zone from the repo root
    sys.path.insert(0, str(ROOT))

from fixtures.zone import DnsRecords  # noqa: E402

_SPLITTER: DomainSplitter | None = None


def splitter() -> DomainSplitter:
    global _SPLITTER
    if _SPLITTER is None:
        _SPLITTER = DomainSplitter()
    return _SPLITTER


@contextmanager
def dnsmasq(records: DnsRecords) -> Iterator[Any]:
    """A real dnsmasq (servers.Dns) serving `records`. Skips when unavailable."""
    import servers

    try:
        server = servers.Dns.start(records)
    except servers.ServerUnavailable as exc:
        pytest.skip(f"dnsmasq unavailable: {exc}")
    try:
        yield server
    finally:
        server.cleanup()


def dns_server(records: Callable[[], DnsRecords]) -> Any:
    """A module-scoped `server` fixture: a real dnsmasq serving `records()` for the module."""

    @pytest.fixture(scope="module")
    def server() -> Iterator[Any]:
        with dnsmasq(records()) as srv:
            yield srv

    return server


def services(
    server: str,
    *,
    settings: dict | None = None,
    trusted_relays: tuple[str, ...] = (),
    timeout: float = 1.0,
    probe: object = None,
) -> Services:
    """Fresh resolver per call: no answer cached by an earlier test leaks into the next."""
    return Services(
        dns=Resolver([server], timeout=timeout),
        domains=splitter(),
        identity=Identity(address="dana@example.org", trusted_relays=trusted_relays),
        settings=settings or {},
        probe=probe,
    )


def received(ip: str, helo: str = "sender.example.net", rdns: str = "") -> str:
    inner = f"{rdns} [{ip}]" if rdns else f"[{ip}]"
    return (
        f"Received: from {helo} ({inner})\r\n\tby mx.example.org (Postfix) with ESMTP id 4AB2C;"
        " Mon, 1 Jan 2024 10:00:00 +0000\r\n"
    )


def message(
    headers: str, *, raw: bytes | None = None, truncated: bool = False, uid: int = 1
) -> Message:
    data = headers.replace("\r\n", "\n").replace("\n", "\r\n")
    if not data.endswith("\r\n\r\n"):
        data = data.rstrip("\r\n") + "\r\n\r\n"
    return Message(
        account="t",
        folder="INBOX",
        uid=uid,
        header_bytes=data.encode(),
        raw_bytes=raw,
        raw_truncated=truncated,
    )


def corpus_files(limit: int | None = None) -> list[Path]:
    if not CORPUS.is_dir():
        pytest.skip("shared corpus absent")
    files = sorted(p for p in CORPUS.rglob("*.eml") if p.is_file())
    return files[:limit] if limit else files


def corpus_message(path: Path, uid: int = 1) -> Message:
    data = path.read_bytes()
    sep = data.find(b"\r\n\r\n")
    sep2 = data.find(b"\n\n")
    cut = min(x for x in (sep if sep >= 0 else len(data), sep2 if sep2 >= 0 else len(data)))
    return Message(
        account="corpus",
        folder=path.parent.name,
        uid=uid,
        header_bytes=data[: cut + 2],
        raw_bytes=data[: 1024 * 1024],
        raw_truncated=len(data) > 1024 * 1024,
    )
