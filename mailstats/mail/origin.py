"""Which Received hop is the origin, and where the trust boundary stops.

The per-line parser (received.py) says what each line claims; this module decides which line
to believe. The origin is the first public address, read from the top, that is not one of the
user's own provider's relays. Both halves of that must hold against a sender who writes any
Received lines it likes below the real ones and any HELO it likes in the real one:

- a relay is trusted by its address, or by the name the *receiving* side verified (the rDNS in
  the receiving MTA's comment), never by a HELO;
- trust passes down only along a connected chain (rspamd's "direct" rule): the line below a
  trusted hop must have been written by that hop's sender, else trust stops and that hop is
  the origin. So a forged line can never move the origin further down.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from mailstats.mail.ips import parse_ip
from mailstats.mail.received import Hop, normalize_ip

if TYPE_CHECKING:
    from mailstats.services import Identity

__all__ = ["ORIGIN_VERSION", "connected", "find_origin", "is_public_ip", "is_retrieval"]

#: Bumped whenever Received parsing or origin selection changes: cached origins depend on it
#: (services.Identity.origin_key).
ORIGIN_VERSION = "2"


@lru_cache(maxsize=8192)
def is_public_ip(ip: str) -> bool:
    """True for a global unicast address: one a DNSBL or SPF check can say something about.

    It follows the IANA special-purpose address registries (Python's `is_global`): private,
    loopback, link-local, CGNAT (100.64.0.0/10), documentation, benchmarking, multicast,
    reserved and unspecified addresses are not public. No range is counted as public to suit
    test mail: the fixtures use ordinary global addresses.
    """
    addr = parse_ip(normalize_ip(ip) if ip else "")
    if addr is None:
        return False
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
    ):
        return False
    return addr.is_global


def is_retrieval(hop: Hop) -> bool:
    """A fetchmail/getmail line (``by localhost with POP3 (fetchmail-6.4)``): the user's own
    client picking mail up over POP3/IMAP. It says where the mailbox is, not where the mail
    came from, so it is never the origin. Read from the protocol only, which the receiving
    side writes after its ``by``: a sender's HELO cannot make a line look like one.
    """
    return hop.protocol.split(" ", 1)[0].upper().startswith(("POP", "IMAP"))


def _same_host(a: str, b: str) -> bool:
    """Two names for one server: equal, or the same first label within the same site
    (Exchange Online names a server ``bn8nam12ft013.eop-nam12.prod.protection.outlook.com``
    as a sender and ``bn8nam12ft013.mail.protection.outlook.com`` as a receiver)."""
    if not a or not b:
        return False
    if a == b:
        return True
    la, lb = a.split("."), b.split(".")
    if la[0] != lb[0] or len(la[0]) < 6:
        return False
    if len(la) == 1 or len(lb) == 1:
        return True
    return la[-2:] == lb[-2:] or la[-1] == lb[-1]


def connected(above: Hop, below: Hop) -> bool:
    """Whether ``below`` was written by the host that sent ``above`` (rspamd's "direct"
    rule): its ``by`` host or address is that sender's address or name."""
    by_ip = below.by_ip or normalize_ip(below.by)
    if by_ip and by_ip == above.ip:
        return True
    names = [n for n in (above.rdns, above.helo.strip("[]").rsplit("@", 1)[-1]) if n]
    return any(_same_host(below.by, n) for n in names)


def find_origin(hops: list[Hop], identity: Identity | None) -> tuple[int, Hop] | None:
    """The origin hop (DESIGN.md): from the top, the first public IP not a trusted relay.

    Index 0 is the topmost Received header, the one the user's own provider added last.
    Retrieval lines (fetchmail, getmail) above the origin are skipped. A hop counts as a trusted
    relay only when its address is in ``trusted_relays``, or its *receiver-verified* name
    (the rDNS in the receiving MTA's comment, never the HELO, which the sender chooses) is,
    and it is connected to the trusted hop above it: the line below a trusted hop must have
    been written by that hop's sender. Otherwise trust stops there and that hop is the
    origin, so a forged Received line can never move the origin further down the chain.
    """
    above: Hop | None = None  # the nearest hop above, inside the trusted part, with a sender
    for index, hop in enumerate(hops):
        if is_retrieval(hop):
            above = None  # the mailbox's server wrote the next line, under its own name
            continue
        if not hop.ip or not is_public_ip(hop.ip):
            if hop.ip or hop.helo or hop.rdns:
                above = hop  # an internal hop: the next one must come from it
            continue
        if (
            identity is not None
            and identity.is_trusted_relay(hop.ip, hop.rdns)
            and (above is None or connected(above, hop))
        ):
            above = hop
            continue
        return index, hop
    return None
