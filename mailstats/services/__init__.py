"""Shared services the engine builds once per run and hands to every module.

Modules never build these themselves: a resolver per module would defeat the cache, and a
suffix list per module would be read and built again by each (services/psl.py).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailstats.services.dns import Resolver
from mailstats.services.domains import DomainSplitter

if TYPE_CHECKING:
    from mailstats.mail.message import Message


@dataclass(frozen=True)
class Identity:
    """Who owns the mailbox: what personalization, internal and origin-hop checks compare to."""

    address: str = ""
    full_name: str = ""
    own_domains: tuple[str, ...] = ()
    trusted_relays: tuple[str, ...] = ()  # IPs, CIDRs or host names
    #: Receiving-provider recognition (mail/receivers.py): '' per message, "none" off, or
    #: a profile name forced for every message; `own_mx`: the own domains' MX hosts.
    receiver: str = ""
    own_mx: tuple[str, ...] = ()

    def origin_key(self) -> str:
        """Everything the origin hop depends on, for cache fingerprints."""
        from mailstats.mail.origin import ORIGIN_VERSION
        from mailstats.mail.receivers import VERSION

        return "|".join(
            (
                ",".join(self.trusted_relays),
                f"rx{VERSION}",
                self.receiver,
                ",".join(self.own_mx),
                f"or{ORIGIN_VERSION}",
            )
        )

    def is_trusted_relay(self, ip: str, host: str = "") -> bool:
        if not self.trusted_relays:
            return False
        addr = None
        try:
            addr = ipaddress.ip_address(ip) if ip else None
        except ValueError:
            addr = None
        host = (host or "").lower().rstrip(".")
        for item in self.trusted_relays:
            item = item.strip().lower()
            if addr is not None:
                try:
                    if addr in ipaddress.ip_network(item, strict=False):
                        return True
                    continue
                except ValueError:
                    pass
            if host and (host == item or host.endswith("." + item)):
                return True
        return False


@dataclass
class SentIndex:
    """What the user's sent folders say: whom they wrote to and which messages they sent."""

    recipients: set[str] = field(default_factory=set)  # lower-case addresses
    message_ids: set[str] = field(default_factory=set)  # normalized, without <>
    messages: int = 0

    @classmethod
    def from_messages(cls, messages: Iterable[Message]) -> SentIndex:
        """The index of the user's sent messages: every To/Cc/Bcc address and Message-ID."""
        from mailstats.mail.addresses import parse_address_list

        index = cls()
        for msg in messages:
            for name in ("To", "Cc", "Bcc"):
                for value in msg.header_all(name):
                    for addr in parse_address_list(value):
                        if addr.addr:
                            index.recipients.add(addr.addr)
            if msg.message_id:
                index.message_ids.add(msg.message_id)
            index.messages += 1
        return index

    def digest(self) -> str:
        """Stable fingerprint, so cached friend/reply results are dropped when it changes."""
        h = hashlib.sha256()
        for item in sorted(self.recipients):
            h.update(item.encode() + b"\0")
        h.update(b"\1")
        for item in sorted(self.message_ids):
            h.update(item.encode() + b"\0")
        return h.hexdigest()[:16]


@dataclass
class Services:
    dns: Resolver
    domains: DomainSplitter
    identity: Identity
    sent_index: SentIndex | None = None  # None: the account maps no sent folder
    settings: dict[str, Any] = field(default_factory=dict)  # the accounts file's [settings]
    probe: Any = None  # TCP reachability prober (services/probe.py), only for opt-in modules
