"""IP address text to an address object, once per distinct text in a process.

Every message's addresses are parsed by several modules and services (origin selection, the
resolver's PTR guard, DNSBL names, dynamic-host patterns, the registrable-domain guard);
ipaddress.ip_address costs a few microseconds each time, which at 100k messages with the
default modules was about 5 % of the run. The objects are immutable, so one cache serves all.
The reuse is within a message (its addresses are asked for by every module in turn), so the
cache is small: 100k distinct IPv4 addresses held 16.4 MB (tracemalloc) in each worker.

Most texts asked about are host names, and most addresses plain dotted quads; ipaddress
takes 4-5 us for either (a name fails by exception), and at a cache miss, which is every new
address and name, that was an eighth of reading a real Received line. `NOT_IP` answers for
names at once and `CANONICAL_V4` recognises a dotted quad in the form ipaddress would print.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: A character no IPv4 or IPv6 address text has; only an IPv6 zone ("fe80::1%eth0") may
#: hold anything, so a text with "%" is never rejected by this alone.
NOT_IP = re.compile(r"[^0-9A-Fa-f:.]")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: Exactly the dotted quads ipaddress accepts and prints unchanged (no leading zeros).
CANONICAL_V4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def not_an_ip(text: str) -> bool:
    """True when `text` cannot be an IP address's text (False: it may be one)."""
    return NOT_IP.search(text) is not None and "%" not in text


@lru_cache(maxsize=4096)
def parse_ip(text: str) -> IPAddress | None:
    """The address `text` spells exactly (ipaddress's rules); None when it is not one."""
    if not_an_ip(text):
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
