"""Received vs From / Sender: did the mail come from where it says it came from?

The original MailStats' own module: ham mostly arrives through a host in the sender's
domain, spam mostly does not. A hop's sending host is its reverse-DNS comment, else its HELO
when that is a real FQDN, else the PTR of its IP (looked up only when the hop names no usable
host, and cached). Comparison is on registrable domains (Public Suffix List), so
`smtp.out.example.co.uk` matches `example.co.uk` while `a.example.co.uk` and
`b.other.co.uk` do not share `co.uk`.

Every hop counts, not only the origin hop: mail from a big provider is relayed through several
of its own hosts, and any of them in the sender's domain is evidence. Blind spot: mailing lists
and forwarders break the match for ham (the original noted it; see `list.is_list`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mailstats.mail.message import Message
from mailstats.mail.received import Hop, is_public_ip
from mailstats.modules import Module
from mailstats.services import Services


class ReceivedModule(Module):
    name = "received"
    version = "2"
    description = "Some Received hop comes from the From (or Sender) address's domain"
    checks = ("from_match", "sender_match")
    extras = ("hops",)
    evidence = "now"  # PTR answers are today's
    dns_columns = ("from_match", "sender_match")

    def _needs_ptr(self, hop: Hop) -> bool:
        return not hop.host and bool(hop.ip)

    def prefetch(self, msg: Message, services: Services) -> Iterable[tuple[str, str]]:
        from mailstats.services.dns import ptr_name

        for hop in msg.hops:
            if self._needs_ptr(hop):
                try:
                    yield ptr_name(hop.ip), "PTR"
                except Exception:  # noqa: BLE001 - a bad IP simply gets no PTR
                    continue

    def _hosts(self, msg: Message, services: Services) -> tuple[list[str], bool]:
        """Each hop's sending host; the flag says some PTR look-up failed (unknown)."""
        hosts: list[str] = []
        failed = False
        for hop in msg.hops:
            if hop.host:
                hosts.append(hop.host)
            elif hop.ip:
                answer = services.dns.ptr(hop.ip)
                if answer.ok:
                    hosts.append(answer.records[0])
                elif answer.failed and is_public_ip(hop.ip):
                    failed = True
        return hosts, failed

    def evaluate(self, msg: Message, services: Services) -> dict[str, Any]:
        hosts, failed = self._hosts(msg, services)
        registrable = services.domains.registrable
        hop_domains = {registrable(h) for h in hosts} - {""}
        why: dict[str, str] = {}
        out: dict[str, Any] = {"hops": len(msg.hops)}
        for check, addr in (("from_match", msg.from_address), ("sender_match", msg.sender_address)):
            if addr is None or not addr.domain:
                out[check] = None
                why[check] = "no usable address" if check == "from_match" else "no Sender header"
                continue
            target = registrable(addr.domain)
            if target and target in hop_domains:
                out[check] = True
                host = next(h for h in hosts if registrable(h) == target)
                why[check] = f"hop host {host} is in {target}"
            elif failed:
                out[check] = None
                why[check] = "a reverse DNS look-up failed"
            else:
                out[check] = False
                seen = ", ".join(sorted(hop_domains)) or "none"
                why[check] = f"{target or addr.domain} not among hop domains ({seen})"
        out["_why"] = why
        return out


MODULE = ReceivedModule
