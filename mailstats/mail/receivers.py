"""Which provider received a message, and where its own hops end.

The origin hop is the hop at which the user's receiving provider accepted the message from
the outside world. Finding it is easy when the provider's internal hops carry private
addresses (the first public address from the top is then the origin), and wrong when they
carry public ones: Microsoft 365 / Outlook.com passes every message between its own
servers over 2603:10xx:: addresses and ends with a ``with HTTPS`` hop, so a
"first public IP" rule reports a Microsoft server as the origin of every message.

So each message's receiver is recognised from its own top hops and that receiver's profile
says which of its hops are internal. Only evidence a sender cannot forge is used:

- A Received header is written by the host in its ``by`` part, and headers are only ever
  added on top. The topmost one is therefore written by the user's own provider (the last
  MTA); a sender can write anything *below* the real ones, never above them.
- The next header down was written by the host the top one says it received from. That host
  is the provider's own only when the connection came from a private or loopback address, or
  from an address in the provider's published internal ranges *and* the hop's ``by`` host
  is one of the provider's. Walking down while that holds reaches exactly the hops the
  provider wrote ("verified by position"); the first hop whose sender is not internal is
  where the message entered the provider.
- The receiver is recognised from the ``by`` hosts of those verified hops only. A ``by`` host
  further down, a HELO name, or anything the sender wrote is never looked at for this.
- A provider's *inbound edge* (Microsoft's ``*.mail.protection.outlook.com``) ends the walk
  whatever the sender's address: the same ranges (40.107.0.0/16, 2a01:111:f403::/48) are
  Microsoft's outbound servers for every other tenant, so mail from another Microsoft 365
  customer is handed over from an address in them. Above the edge those addresses are
  internal; at the edge they are the origin. Position decides, never the range alone.

`detect` returns the receiver's name (or '') and the index of the first hop below the
provider's internal ones; `find_origin` then applies the account's own trusted relays from
there. docs/modules.md lists every profile with the source of each fact.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from mailstats.mail.ips import parse_ip
from mailstats.mail.received import Hop, is_public_ip, is_retrieval, normalize_ip

__all__ = [
    "RECEIVERS",
    "Detection",
    "Receiver",
    "detect",
    "mx_hosts",
    "own_receiver",
    "receiver_setting",
]

#: Bumped whenever detection or a profile changes: cached origins depend on it.
VERSION = "1"
AUTO = ""  # the accounts file's provider "generic" (the default): recognise per message
OFF = "none"


@dataclass(frozen=True)
class Receiver:
    """A receiving provider: the hosts that write its hops and the ranges it relays over."""

    name: str
    title: str
    #: Domain suffixes of the hosts that write the provider's Received headers (``by``).
    hosts: tuple[str, ...]
    #: Suffixes of its inbound edge (MX) hosts: a hop written by one is the hand-over.
    edge: tuple[str, ...] = ()
    #: Networks its own servers connect from, trusted only above the edge, by its hosts.
    internal: tuple[str, ...] = ()
    #: Exact host names instead of suffixes (the account's own MX hosts).
    exact: bool = False

    def writes(self, host: str) -> bool:
        """True when `host` (a ``by`` value) is one of this provider's servers."""
        return _matches(host, self.hosts, self.exact)

    def is_edge(self, host: str) -> bool:
        return _matches(host, self.edge, self.exact)

    def internal_ip(self, ip: str) -> bool:
        return bool(self.internal) and _in_nets(ip, self.internal)


@lru_cache(maxsize=8192)
def _matches(host: str, names: tuple[str, ...], exact: bool) -> bool:
    """Memoised: the same few ``by`` hosts (the receiver's own) recur on every message."""
    host = host.lower().rstrip(".")
    if not host:
        return False
    if exact:
        return host in names
    return any(host == n or host.endswith("." + n) for n in names)


@lru_cache(maxsize=4096)
def _in_nets(ip: str, nets: tuple[str, ...]) -> bool:
    addr = parse_ip(normalize_ip(ip))
    if addr is None:
        return False
    return any(addr.version == net.version and addr in net for net in _networks(nets))


@lru_cache(maxsize=64)
def _networks(nets: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in nets)


# Every fact below is sourced in docs/modules.md ("Receiving providers").
RECEIVERS: dict[str, Receiver] = {
    r.name: r
    for r in (
        Receiver(
            "microsoft",
            "Microsoft 365 / Outlook.com",
            hosts=(
                "prod.outlook.com",
                "outlook.office365.com",
                "mail.protection.outlook.com",
                "prod.protection.outlook.com",
                "prod.exchangelabs.com",
            ),
            edge=("mail.protection.outlook.com",),
            internal=(
                "2603:1000::/24",
                "40.92.0.0/15",
                "40.107.0.0/16",
                "52.100.0.0/14",
                "104.47.0.0/17",
                "2a01:111:f400::/48",
                "2a01:111:f403::/48",
            ),
        ),
        Receiver(
            "gmail", "Gmail / Google Workspace", hosts=("mx.google.com",), edge=("mx.google.com",)
        ),
        Receiver("yahoo", "Yahoo Mail / AOL", hosts=("mail.yahoo.com", "mail.aol.com")),
        Receiver("icloud", "iCloud Mail", hosts=("me.com", "icloud.com", "mail.apple.com")),
        Receiver(
            "fastmail",
            "Fastmail",
            hosts=("messagingengine.com",),
            edge=("messagingengine.com",),
        ),
        Receiver("proton", "Proton Mail", hosts=("protonmail.ch",), edge=("protonmail.ch",)),
        Receiver("gmx", "GMX / web.de", hosts=("gmx.net", "gmx.com", "web.de")),
        Receiver("zoho", "Zoho Mail", hosts=("zoho.com", "zohomail.com", "zoho.eu", "zoho.in")),
        Receiver("yandex", "Yandex Mail", hosts=("yandex.net", "yandex.ru")),
        Receiver("mailru", "Mail.ru", hosts=("mail.ru",)),
    )
}


def receiver_setting(provider: str | None) -> str:
    """The accounts file's `provider` as a recognition setting: "generic" (the default)
    recognises per message, "none" switches recognition off, a receiver's name forces it."""
    name = (provider or "generic").strip().lower()
    if name == "generic":
        return AUTO
    if name == OFF or name in RECEIVERS:
        return name
    return AUTO


def mx_hosts(resolver: Any, domains: Sequence[str], limit: int = 5) -> tuple[tuple[str, ...], str]:
    """(MX host names of `domains`, '' or how a look-up failed), through the run's shared
    resolver. No MX (NXDOMAIN, NODATA, a null MX) contributes nothing; a failed look-up
    (timeout, SERVFAIL...) contributes nothing either, but is said: it is not "no MX"."""
    hosts: set[str] = set()
    failure = ""
    for domain in list(domains)[:limit]:
        try:
            answer = resolver.query(domain, "MX")
        except Exception:  # noqa: BLE001 - a broken name is not known
            continue
        if answer.failed:
            failure = failure or f"{domain} MX: {answer.status}"
        if not answer.ok:
            continue
        for record in answer.records:
            host = record.split()[-1].lower().rstrip(".")
            if host and "." in host:
                hosts.add(host)
    return tuple(sorted(hosts)), failure


@dataclass(frozen=True, slots=True)
class Detection:
    """What `detect` found: the receiver's name ('' when none was recognised) and `start`,
    the index of the first hop not written-and-relayed inside it (the hand-over hop, or
    ``len(hops)`` when the message never left the provider)."""

    receiver: str
    start: int


def own_receiver(mx_hosts: Sequence[str]) -> Receiver | None:
    """The account's own MX hosts as a receiver, when their names are known."""
    names = tuple(sorted({h.lower().rstrip(".") for h in mx_hosts if h}))
    if not names:
        return None
    return Receiver("own", "The account's own MX", hosts=names, edge=names, exact=True)


def _private(hop: Hop) -> bool:
    """The hop's sender is on the writer's own network (or not stated at all)."""
    return not hop.ip or not is_public_ip(hop.ip) or is_retrieval(hop)


def _verified_top(hops: Sequence[Hop]) -> int:
    """Index of the first hop, from the top, whose sender has a public address.

    The hops above it relayed over private addresses only, so their ``by`` hosts and its own
    were all written inside the receiving site: the only ``by`` hosts detection may read.
    """
    for i, hop in enumerate(hops):
        if not _private(hop):
            return i
    return len(hops) - 1


def recognise(hops: Sequence[Hop], own: Receiver | None = None) -> Receiver | None:
    """The provider whose servers wrote the verified top hops, if any is known."""
    if not hops:
        return None
    last = _verified_top(hops)
    for hop in hops[: last + 1]:
        rx = _writer(hop.by)
        if rx is not None:
            return rx
    if own is not None:
        for hop in hops[: last + 1]:
            if own.writes(hop.by) or (hop.rdns and own.writes(hop.rdns)):
                return own
    return None


@lru_cache(maxsize=8192)
def _writer(host: str) -> Receiver | None:
    """The known provider whose server `host` is, if any (memoised like _matches)."""
    for rx in RECEIVERS.values():
        if rx.writes(host):
            return rx
    return None


def walk(hops: Sequence[Hop], rx: Receiver) -> int:
    """Index of the hand-over hop: the first one whose sender is not `rx`'s own server.

    A hop is internal when its sender is private, or when its address is in `rx`'s internal
    ranges and the hop was written by one of `rx`'s hosts above its edge; for the account's
    own MX also when the sender's receiver-verified rDNS is one of the MX hosts. A hop
    written by the edge is the hand-over whatever the sender's address.
    """
    for i, hop in enumerate(hops):
        if rx.is_edge(hop.by):
            if not hop.ip or is_retrieval(hop):
                continue  # the edge's own local step ("by mx with LMTP") or a POP pickup
            return i
        if _private(hop):
            continue
        if rx.writes(hop.by) and rx.internal_ip(hop.ip):
            continue
        if rx.exact and hop.rdns and rx.writes(hop.rdns):
            continue
        return i
    return len(hops)


def detect(hops: Sequence[Hop], setting: str = AUTO, own_mx: Sequence[str] = ()) -> Detection:
    """The receiver of a message and where its internal hops end (see the module docstring).

    `setting`: '' recognises per message, ``"none"`` switches recognition off, a profile
    name forces that profile for every message.
    """
    if not hops:
        return Detection("", 0)
    first = _after_pickups(hops)
    if setting == OFF:
        return Detection("", first)
    own = own_receiver(own_mx)
    if setting:
        rx = RECEIVERS.get(setting)
    else:
        rx = recognise(hops[first:], own)
    if rx is None:
        return Detection("", first)
    return Detection(rx.name, first + walk(hops[first:], rx))


def _after_pickups(hops: Sequence[Hop]) -> int:
    """Index below the user's own POP/IMAP pick-up lines at the top (fetchmail's
    ``from provider [ip] by localhost with IMAP``): the server polled is the user's
    provider, not a sender. Only pick-ups among the verified top hops count."""
    start = 0
    for i, hop in enumerate(hops[: _verified_top(hops)]):
        if is_retrieval(hop):
            start = i + 1
    return start
