"""A test kit for header modules, shipped with mailstats so plug-in authors need nothing else.

    from mailstats.testing import message, run_module, services

    def test_flags_shouting():
        (row,) = run_module(Shouting, [message(b"Subject: BUY NOW\\r\\n\\r\\nhi")])
        assert row["caps"] is True

`message` builds the same `Message` a run gives a module (header block, MIME structure,
the text body's first 2 KiB, the raw bytes); `services` gives the shared services with an
in-memory DNS (`MemoryDns`) instead of the network; `run_module` does what the engine does
for each message — prepare, DNS prefetch, evaluate — and checks the result contract, so a
test fails on a result the engine would count as the module's error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mailstats.mail.message import MAX_RAW_BYTES, Message
from mailstats.mail.structure import scan_parts
from mailstats.modules import Module, check_result
from mailstats.services import Identity, SentIndex, Services
from mailstats.services.dns import NXDOMAIN, OK, DnsAnswer, ptr_name
from mailstats.services.domains import DomainSplitter
from mailstats.sources.local import body_text, split_header

__all__ = ["ContractError", "MemoryDns", "message", "run_module", "services"]

_SPLITTER: DomainSplitter | None = None


class ContractError(AssertionError):
    """A module returned what the engine would count as its error (or did not declare)."""


def message(
    raw: bytes,
    *,
    uid: int = 1,
    account: str = "test",
    folder: str = "INBOX",
    role: str = "ham",
) -> Message:
    """A Message from a whole raw message (LF or CRLF), as a local mail store gives it."""
    try:
        scanned = scan_parts(raw)
    except Exception:  # noqa: BLE001 - unparseable MIME: a run knows no structure either
        scanned = None
    parts = [p.part for p in scanned] if scanned is not None else None
    by_section = {p.part.section: p for p in scanned or ()}
    return Message(
        account,
        folder,
        uid,
        split_header(raw),
        parts,
        len(raw),
        body_text=body_text(raw, parts or [], by_section).decode("utf-8", "replace"),
        raw_bytes=raw[:MAX_RAW_BYTES],
        raw_truncated=len(raw) > MAX_RAW_BYTES,
        role=role,
    )


class MemoryDns:
    """The resolver interface modules use, answering from a dict instead of the network.

    `records` maps (name, rdtype) to a list of record strings, or to a status such as
    "timeout" or "servfail" to play a failed look-up; anything else is NXDOMAIN. `asked`
    lists every (name, rdtype) queried, in order.
    """

    servers: list[str] = ["memory"]

    def __init__(self, records: Mapping[tuple[str, str], Sequence[str] | str] | None = None):
        self.records = {
            (n.lower().rstrip("."), t.upper()): v for (n, t), v in (records or {}).items()
        }
        self.asked: list[tuple[str, str]] = []

    def query(self, name: str, rdtype: str) -> DnsAnswer:
        key = ((name or "").lower().rstrip("."), rdtype.upper())
        self.asked.append(key)
        found = self.records.get(key)
        if found is None:
            return DnsAnswer(NXDOMAIN)
        if isinstance(found, str):
            return DnsAnswer(found)
        return DnsAnswer(OK, tuple(found), 300)

    def ptr(self, ip: str) -> DnsAnswer:
        return self.query(ptr_name(ip), "PTR")

    def prefetch(self, queries: Iterable[tuple[str, str]]) -> None:
        for name, rdtype in queries:
            self.query(name, rdtype)

    def flush(self) -> None:
        pass


def services(
    *,
    dns: Any = None,
    address: str = "",
    full_name: str = "",
    own_domains: tuple[str, ...] = (),
    trusted_relays: tuple[str, ...] = (),
    sent_index: SentIndex | None = None,
    settings: Mapping[str, Any] | None = None,
    probe: Any = None,
) -> Services:
    """The services a run hands a module, with `MemoryDns` (no records) by default."""
    global _SPLITTER
    if _SPLITTER is None:
        _SPLITTER = DomainSplitter()
    return Services(
        dns=dns if dns is not None else MemoryDns(),
        domains=_SPLITTER,
        identity=Identity(address, full_name, tuple(own_domains), tuple(trusted_relays)),
        sent_index=sent_index,
        settings=dict(settings or {}),
        probe=probe,
    )


def run_module(
    module: type[Module] | Module,
    messages: Iterable[Message],
    svc: Services | None = None,
) -> list[dict[str, Any]]:
    """Evaluate `module` (a class: a fresh instance, as a run makes) over `messages`; one
    result dict per message. Raises ContractError where the engine would count an error."""
    mod = module() if isinstance(module, type) else module
    svc = svc or services()
    for st in mod.settings:
        if st.default is not None:
            svc.settings.setdefault(st.flat_key(mod.name), st.default)
    mod.prepare(svc)
    msgs = list(messages)
    svc.dns.prefetch([q for m in msgs for q in mod.prefetch(m, svc)])
    out = []
    for m in msgs:
        values, error, unknown = check_result(mod, mod.evaluate(m, svc))
        if error or unknown:
            raise ContractError(f"{mod.name} on message {m.uid}: {error or unknown}")
        out.append(values)
    return out
