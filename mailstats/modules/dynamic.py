"""Does the origin IP look like an end-user (dynamic / generic) address, judged by its PTR now?

Why it looks like this:
- Real mail servers have a reverse name their operator chose ("mail-wm1-f54.google.com",
  "mx.example.org"); end-user and bulk-hosting lines get a generated one that embeds the
  address ("c-73-15-22-9.hsd1.ca.comcast.net", "p5B0A1C2D.dip0.t-ipconnect.de") or none at
  all. Botnet spam comes from exactly those lines, so "no PTR or a generated PTR" is the
  classic signal (SpamAssassin's RDNS_NONE / RDNS_DYNAMIC, Spamhaus PBL's idea).
- "Dynamic" here therefore means *generic*: a name that embeds the IP counts even when it
  says "static" ("static-1-2-3-4.isp.net" is a static end-user line, not a mail server).
  The word "static" alone is not a signal either way.
- Words are looked for only left of the registrable domain, so a provider called "Dyn"
  (dyn.com) or a domain like "cable.co.uk"'s owner is not penalised for its own name.
- A first label that names a mail role (mail, smtp, mx, mta, relay, out...) means the
  operator named the host as a mail server: not dynamic, whatever digits follow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from mailstats.mail.ips import parse_ip
from mailstats.modules import HEADER, Module, Value
from mailstats.services.dns import NODATA, NXDOMAIN, ptr_name

if TYPE_CHECKING:
    from mailstats.mail.message import Message
    from mailstats.services import Services

#: Alphabetic runs of a host name's labels that providers use for end-user lines.
#: None consists only of the letters a-f, so hex-encoded addresses never match by accident.
DYNAMIC_WORDS = frozenset(
    {
        "dsl", "adsl", "vdsl", "xdsl", "sdsl", "hdsl", "dyndsl", "dsldyn",
        "dhcp", "dyn", "dynamic", "dynip", "dynamicip",
        "pool", "pools", "ippool",
        "cable", "cablemodem", "catv", "docsis", "hsd", "cm",
        "ppp", "pppoe", "pppoa", "dial", "dialup", "dialin", "dialip",
        "client", "clients", "customer", "customers", "cust", "subscriber",
        "broadband", "cpe", "res", "resident", "residential", "home", "user", "users",
        "dip", "ftth", "fttx", "fttb", "fttc", "fttp", "gpon", "fios",
        "wireless", "wlan", "wifi", "mobile", "gprs", "umts", "lte", "wimax",
        "nat", "unknown", "unassigned", "generic", "noptr", "nohost",
    }
)  # fmt: skip

#: A first label starting with one of these names the host as a mail server.
MAIL_ROLES = re.compile(
    r"^(?:mail|mailhost|smtp|smtpout|mx|mta|relay|outbound|out|mailout|mailer|bounce|email|"
    r"sender|mailgw|o|mo)(?:\d+|-|$)"
)


def embeds_ip(host: str, ip: str) -> bool:
    """Whether `host` spells the address in one of the usual generated forms."""
    addr = parse_ip(ip)
    if addr is None:
        return False
    host = host.lower()
    if addr.version == 6:
        exploded = addr.exploded.replace(":", "")
        compressed = str(addr)
        return (
            exploded in host.replace("-", "").replace(".", "")
            or compressed.replace(":", "-") in host
        )
    octets = [int(o) for o in str(addr).split(".")]
    if "".join(f"{o:02x}" for o in octets) in host:  # p5B0A1C2D.dip0.t-ipconnect.de
        return True
    runs = re.findall(r"\d+", host)
    if "".join(f"{o:03d}" for o in octets) in runs or str(int(addr)) in runs:
        return True
    numbers = [int(r) for r in runs if len(r) <= 3]
    # Only runs of <= 3 digits can be octets; look for 3 consecutive octets, either order.
    for seq in (octets, octets[::-1]):
        for start in (0, 1):
            window = seq[start : start + 3]
            if any(numbers[i : i + 3] == window for i in range(len(numbers) - 2)):
                return True
    return False


def dynamic_words(host: str, registrable: str) -> list[str]:
    """Dynamic words in the labels left of the registrable domain."""
    host = host.lower().rstrip(".")
    if registrable and host.endswith("." + registrable):
        host = host[: -len(registrable) - 1]
    elif registrable and host == registrable:
        return []
    return [w for w in re.findall(r"[a-z]+", host) if w in DYNAMIC_WORDS]


def judge(host: str, ip: str, registrable: str) -> tuple[bool, str]:
    """(looks generic, why) for one PTR name."""
    host = host.lower().rstrip(".")
    if "." not in host:
        return True, f"PTR {host!r} is not a fully qualified name"
    first = host.split(".", 1)[0]
    if MAIL_ROLES.match(first) and not dynamic_words(first, ""):
        return False, f"PTR {host} names a mail server"
    if embeds_ip(host, ip):
        return True, f"PTR {host} embeds the IP"
    words = dynamic_words(host, registrable)
    if words:
        return True, f"PTR {host} has {', '.join(sorted(set(words)))}"
    return False, f"PTR {host} looks assigned by hand"


class Dynamic(Module):
    name = "dynamic"
    version = "1"
    description = "The origin IP has no PTR, or one that looks generic/dynamic (asked now)."
    needs = frozenset({HEADER})
    checks = ("origin_dynamic",)
    extras = ("ptr",)
    evidence = "now"
    dns_columns = ("origin_dynamic", "ptr")

    def prefetch(self, msg: Message, services: Services) -> Iterable[tuple[str, str]]:
        ip = _origin_ip(msg, services)
        return [(ptr_name(ip), "PTR")] if ip else ()

    def evaluate(self, msg: Message, services: Services) -> dict[str, Value | dict]:
        ip = _origin_ip(msg, services)
        if not ip:
            return _out(None, None, "no public origin IP in the Received headers")
        answer = services.dns.ptr(ip)
        if answer.failed:
            return _out(None, None, f"PTR look-up for {ip} failed ({answer.status})")
        if answer.status in (NXDOMAIN, NODATA) or not answer.records:
            return _out(True, None, f"{ip} has no PTR ({answer.status})")
        verdicts = []
        for host in answer.records[:10]:
            verdicts.append(judge(host, ip, services.domains.registrable(host)))
        first = answer.records[0]
        # Several PTRs: one hand-made name is enough to say an operator cared.
        hand_made = [why for generic, why in verdicts if not generic]
        if hand_made:
            return _out(False, first, hand_made[0])
        return _out(True, first, verdicts[0][1])


def _out(value: bool | None, ptr: str | None, why: str) -> dict[str, Value | dict]:
    return {"origin_dynamic": value, "ptr": ptr, "_why": {"origin_dynamic": why}}


def _origin_ip(msg: Message, services: Services) -> str:
    ip = msg.origin_ip(services.identity)
    return ip if parse_ip(ip) is not None else ""


MODULE = Dynamic
