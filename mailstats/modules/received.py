"""Received vs From / Sender: did the mail come from where it says it came from?

The original MailStats' own module: ham mostly arrives through a host in the sender's
domain, spam mostly does not. A hop's sending host is its reverse-DNS comment, else its HELO
when that is a real FQDN, else the PTR of its IP (looked up only when the hop names no usable
host, and cached). Comparison is on registrable domains (Public Suffix List), so
`smtp.out.example.co.uk` matches `example.co.uk` while `a.example.co.uk` and
`b.other.co.uk` do not share `co.uk`.

Only the sender's side counts: the origin hop and the hops below it. The hops above it are
the recipient's own provider relaying to itself, and comparing them with From would let any
spam that forges the recipient's own domain "match" the recipient's internal relays. Below
the origin several hops count, not only the origin: mail from a big provider is relayed
through several of its own hosts, and any of them in the sender's domain is evidence.

`from_mx_match` asks instead whether a sender-side hop shares the registrable domain of one
of the From domain's MX hosts: a provider's users (gmail.com) are served by hosts in another
domain (google.com), which `from_match` can never see. Blind spot of both: mailing lists and
forwarders break the match for ham (the original noted it; see `list.is_list`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mailstats.mail.message import Message
from mailstats.mail.received import Hop, is_public_ip
from mailstats.modules import Module
from mailstats.services import Services
from mailstats.services.dns import NODATA, NXDOMAIN


class ReceivedModule(Module):
    name = "received"
    version = "3"
    description = "Some sender-side Received hop comes from the From (or Sender) domain or its MX's"
    checks = ("from_match", "sender_match", "from_mx_match")
    extras = ("hops",)
    evidence = "now"  # PTR and MX answers are today's
    dns_columns = ("from_match", "sender_match", "from_mx_match")

    @staticmethod
    def sender_side(msg: Message, services: Services) -> list[Hop]:
        """The origin hop and those below it; without an origin, the hops below the
        recognised receiver's own (all of them when none was recognised)."""
        index = msg.origin_index(services.identity)
        if index is None:
            index = msg.receiver(services.identity).start
        return msg.hops[index:]

    def prefetch(self, msg: Message, services: Services) -> Iterable[tuple[str, str]]:
        from mailstats.services.dns import ptr_name

        for hop in self.sender_side(msg, services):
            if not hop.host and hop.ip:
                try:
                    yield ptr_name(hop.ip), "PTR"
                except Exception:  # noqa: BLE001 - a bad IP simply gets no PTR
                    continue
        for name in _mx_names(msg, services):
            yield name, "MX"

    def _hosts(self, hops: list[Hop], services: Services) -> tuple[list[str], bool]:
        """Each hop's sending host; the flag says some PTR look-up failed (unknown)."""
        hosts: list[str] = []
        failed = False
        for hop in hops:
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
        side = self.sender_side(msg, services)
        hosts, failed = self._hosts(side, services)
        registrable = services.domains.registrable
        hop_domains = {registrable(h) for h in hosts} - {""}
        why: dict[str, str] = {}
        out: dict[str, Any] = {"hops": len(msg.hops)}
        above = len(msg.hops) - len(side)
        where = f" (sender's side: {len(side)} of {len(msg.hops)} hops)" if above else ""
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
                why[check] = f"{target or addr.domain} not among hop domains ({seen}){where}"
        out["from_mx_match"], why["from_mx_match"] = self._mx_match(
            msg, services, hosts, hop_domains, failed
        )
        out["_why"] = why
        return out

    def _mx_match(
        self,
        msg: Message,
        services: Services,
        hosts: list[str],
        hop_domains: set[str],
        failed: bool,
    ) -> tuple[bool | None, str]:
        names = _mx_names(msg, services)
        if not names:
            return None, "no usable From domain"
        registrable = services.domains.registrable
        mx: list[str] = []
        for name in names:  # the From domain, then its registrable domain if it has no MX
            answer = services.dns.query(name, "MX")
            if answer.failed:
                return None, f"MX look-up of {name} failed ({answer.status})"
            if answer.status in (NXDOMAIN, NODATA) or not answer.records:
                continue
            mx = [r.split()[-1].rstrip(".").lower() for r in answer.records]
            mx = [h for h in mx if "." in h]  # "0 ." is a null MX: no mail at all
            break
        mx_domains = {registrable(h) for h in mx} - {""}
        if not mx_domains:
            return False, f"{names[0]} has no MX host"
        shared = mx_domains & hop_domains
        if shared:
            dom = sorted(shared)[0]
            host = next(h for h in hosts if registrable(h) == dom)
            return True, f"hop host {host} shares {dom} with an MX of {names[0]}"
        if failed:
            return None, "a reverse DNS look-up failed"
        return False, f"MX domains ({', '.join(sorted(mx_domains))}) not among hop domains"


def _mx_names(msg: Message, services: Services) -> list[str]:
    """The names whose MX is asked: the From domain, and its registrable domain after it."""
    addr = msg.from_address
    domain = (addr.domain or "").strip().rstrip(".").lower() if addr is not None else ""
    if not domain or "." not in domain or domain.startswith("["):
        return []
    names = [domain]
    reg = services.domains.registrable(domain)
    if reg and reg != domain:
        names.append(reg)
    return names


MODULE = ReceivedModule
