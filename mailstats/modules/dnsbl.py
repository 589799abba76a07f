"""Is the origin IP on a DNS blocklist *now*?

Why it looks like this:
- A DNSBL answers "listed" with an address in 127.0.0.2-127.0.0.254 and "not listed" with
  NXDOMAIN. Operators also answer *refusals* in-band: Spamhaus returns 127.255.255.252-255
  when the query came through a public resolver (8.8.8.8, 1.1.1.1, ...) or over its free
  limit. Counting those as listings is how naive tools report "every message is listed", so
  they are a fourth state, "blocked", that makes the check unknown and gives the user one
  plain warning per zone.
- `prepare` self-tests each zone with the test points every DNSBL publishes (127.0.0.2 must
  be listed, 127.0.0.1 must not). A zone that fails is left out for the run instead of
  filling a column with nonsense (an ISP resolver that rewrites NXDOMAIN to an advert server
  fails the second test, a blocked resolver the first).
- Every distinct IP is asked once per zone: `prefetch` hands the engine the queries, the
  resolver caches the answers.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, ClassVar

from mailstats.mail.ips import parse_ip
from mailstats.modules import HEADER, Module, Setting, Value
from mailstats.services.dns import NODATA, NXDOMAIN, OK, DnsAnswer

if TYPE_CHECKING:
    from mailstats.mail.message import Message
    from mailstats.services import Services

#: Free-for-low-volume public zones. Each has terms: see docs/modules.md ("dnsbl").
DEFAULT_ZONES = (
    "zen.spamhaus.org",
    "bl.spamcop.net",
    "b.barracudacentral.org",
    "psbl.surriel.com",
)

LISTED, NOT_LISTED, BLOCKED, ERROR = "listed", "not_listed", "blocked", "error"

_LISTED_NET = ipaddress.ip_network("127.0.0.0/24")
_BLOCKED_NET = ipaddress.ip_network("127.255.255.252/30")

_ZONE_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9-]{2,63}$")


@lru_cache(maxsize=4096)
def query_name(ip: str, zone: str) -> str | None:
    """'192.0.2.1' -> '1.2.0.192.zone'; IPv6 in nibble format; None when `ip` is no IP.

    Cached: each message asks it once per zone in prefetch and again in evaluate; a few
    thousand entries hold that reuse, which is within a batch (65,536 held 7.7 MB after 20k
    messages in one process)."""
    addr = parse_ip(ip)
    if addr is None:
        return None
    if addr.version == 4:
        return ".".join(reversed(str(addr).split("."))) + "." + zone
    return ".".join(reversed(addr.exploded.replace(":", ""))) + "." + zone


def classify(answer: DnsAnswer) -> tuple[str, str]:
    """(state, code) for one zone answer; `code` is what the extra column shows."""
    if answer.status == NXDOMAIN:
        return NOT_LISTED, "nxdomain"
    if answer.failed:
        return ERROR, answer.status
    if answer.status == NODATA or (answer.status == OK and not answer.records):
        # A name that exists without an A record is not a listing; some zones publish TXT only.
        return NOT_LISTED, "nodata"
    codes = []
    for rec in answer.records:
        code_ip = parse_ip(rec.strip())
        if code_ip is None:
            return ERROR, "bogus"
        codes.append(code_ip)
    code = ",".join(str(c) for c in codes)
    if any(c.version == 4 and c in _BLOCKED_NET for c in codes):
        return BLOCKED, code
    if any(
        c.version == 4
        and c in _LISTED_NET
        and str(c) not in ("127.0.0.0", "127.0.0.1", "127.0.0.255")
        for c in codes
    ):
        return LISTED, code
    # Anything else (an advert server's address, 127.0.0.1, 127.1.x.x) is not a DNSBL answer.
    return ERROR, code


@lru_cache(maxsize=256)
def column_name(zone: str) -> str:
    """Cached: evaluate names each zone's column twice for every message, a regex
    substitution each time (four zones: 10.0 against 1.0 us per four calls)."""
    return "zone_" + re.sub(r"[^a-z0-9]+", "_", zone.lower()).strip("_")


def configured_zones(settings: dict) -> tuple[list[str], list[str]]:
    """(valid zones, problems) from settings.dnsbl_zones (list, or comma-separated text)."""
    raw = settings.get("dnsbl_zones")
    if raw is None:
        items: list = list(DEFAULT_ZONES)
    elif isinstance(raw, str):
        items = [z for z in re.split(r"[,\s]+", raw) if z]
    else:
        try:
            items = list(raw)
        except TypeError:
            return [], [f"dnsbl_zones must be a list of zone names, not {raw!r}"]
    zones: list[str] = []
    problems: list[str] = []
    for item in items:
        zone = str(item).strip().strip(".").lower()
        if not _ZONE_RE.match(zone):
            problems.append(f"DNSBL zone {item!r} is not a valid DNS name and was ignored.")
        elif zone not in zones:
            zones.append(zone)
    return zones, problems


class Dnsbl(Module):
    name = "dnsbl"
    version = "1"
    description = "The origin IP is listed on a configured DNS blocklist (asked now)."
    needs = frozenset({HEADER})
    checks = ("listed",)
    extras: ClassVar[tuple[str, ...]] = ()
    evidence = "now"
    dns_columns = ("listed",)
    settings = (
        Setting(
            "zones", list, list(DEFAULT_ZONES), "DNS blocklist zones to ask", key="dnsbl_zones"
        ),
    )

    def __init__(self) -> None:
        self.zones: list[str] = []
        #: zone -> why it is left out this run ("" when usable)
        self.unusable: dict[str, str] = {}
        self._counts: Counter[str] = Counter()
        self._problems: list[str] = []
        self._warned: dict[str, str] = {}
        self._lock = threading.Lock()
        self._prepared_for: tuple[str, ...] | None = None

    # -- set-up -------------------------------------------------------------------------
    def prepare(self, services: Services) -> None:
        zones, problems = configured_zones(services.settings)
        for p in problems:
            if p not in self._problems:
                self._problems.append(p)
        self.zones = zones
        # Instance-level extras: one column per configured zone, in configured order.
        self.extras = tuple(column_name(z) for z in zones)
        if self._prepared_for == tuple(zones):
            return  # a second account in the same run: the zones were tested already
        self._prepared_for = tuple(zones)
        services.dns.prefetch(
            (query_name(ip, z) or "", "A") for z in zones for ip in ("127.0.0.2", "127.0.0.1")
        )
        for zone in zones:
            reason = self._self_test(zone, services)
            if reason:
                self.unusable[zone] = reason
                self._counts[f"{zone}.unusable"] = 1
                self._warn(zone, reason)
            else:
                self.unusable.pop(zone, None)

    def _self_test(self, zone: str, services: Services) -> str:
        listed = services.dns.query(query_name("127.0.0.2", zone) or "", "A")
        state, code = classify(listed)
        if state == BLOCKED:
            return _blocked_text(zone, code)
        if state == ERROR:
            return (
                f"DNSBL {zone} failed its self-test (127.0.0.2 gave {code}); it is left out "
                "of this run. Check the zone name and that your DNS resolver can reach it."
            )
        if state != LISTED:
            return (
                f"DNSBL {zone} did not list its test address 127.0.0.2 ({code}): the zone "
                "name is wrong, the list is dead, or your resolver is refused. It is left out "
                "of this run."
            )
        clean = services.dns.query(query_name("127.0.0.1", zone) or "", "A")
        state, code = classify(clean)
        if state == ERROR and clean.failed:
            return (
                f"DNSBL {zone} failed its self-test (127.0.0.1 gave {code}); it is left out "
                "of this run."
            )
        if state != NOT_LISTED:
            return (
                f"DNSBL {zone} answered {code} for 127.0.0.1, which must not be listed: your "
                "resolver probably rewrites NXDOMAIN answers. It is left out of this run; "
                "use a resolver that does not (settings.dns_servers)."
            )
        return ""

    def _warn(self, zone: str, text: str) -> None:
        with self._lock:
            self._warned.setdefault(zone, text)

    # -- per message --------------------------------------------------------------------
    def _usable(self) -> list[str]:
        return [z for z in self.zones if z not in self.unusable]

    def prefetch(self, msg: Message, services: Services) -> Iterable[tuple[str, str]]:
        ip = msg.origin_ip(services.identity)
        if not ip:
            return ()
        names = (query_name(ip, z) for z in self._usable())
        return [(n, "A") for n in names if n]

    def evaluate(self, msg: Message, services: Services) -> dict[str, Value | dict]:
        result: dict[str, Value | dict] = {column_name(z): None for z in self.zones}
        ip = msg.origin_ip(services.identity)
        if not ip:
            result["listed"] = None
            result["_why"] = {"listed": "no public origin IP in the Received headers"}
            return result
        usable = self._usable()
        if not usable:
            result["listed"] = None
            result["_why"] = {"listed": "no usable DNSBL zone (see the run's warnings)"}
            return result
        listed_on: list[str] = []
        unknown_on: list[str] = []
        for zone in usable:
            name = query_name(ip, zone)
            if name is None:  # origin IPs are validated, but never trust that
                unknown_on.append(zone)
                continue
            state, code = classify(services.dns.query(name, "A"))
            result[column_name(zone)] = code
            with self._lock:
                self._counts[f"{zone}.{state}"] += 1
            if state == LISTED:
                listed_on.append(f"{zone} ({code})")
            elif state == BLOCKED:
                unknown_on.append(f"{zone} blocked ({code})")
                self._warn(zone, _blocked_text(zone, code))
            elif state == ERROR:
                unknown_on.append(f"{zone} {code}")
                self._warn(
                    zone,
                    f"DNSBL {zone} look-ups failed ({code}) for some messages; those count as "
                    "unknown. If this persists, use your own recursive resolver "
                    "(settings.dns_servers).",
                )
        if listed_on:
            result["listed"] = True
            result["_why"] = {"listed": f"{ip} listed on " + ", ".join(listed_on)}
        elif unknown_on:
            result["listed"] = None
            result["_why"] = {"listed": f"{ip} unknown: " + ", ".join(unknown_on)}
        else:
            result["listed"] = False
            result["_why"] = {"listed": f"{ip} not listed on {len(usable)} zone(s)"}
        return result

    def fingerprint(self, services: Services) -> str:
        zones, _ = configured_zones(services.settings)
        return super().fingerprint(services) + ":" + ",".join(zones)

    def warnings(self) -> list[str]:
        with self._lock:
            return list(self._problems) + [self._warned[z] for z in sorted(self._warned)]

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))


def _blocked_text(zone: str, code: str) -> str:
    return (
        f"DNSBL {zone} refused our queries (answer {code}: 'query blocked'). This happens "
        "when queries reach it through a public or shared resolver (8.8.8.8, 1.1.1.1, many "
        "ISP resolvers) or exceed its free limit. Its answers count as unknown. Use your own "
        "recursive resolver (e.g. unbound on this machine, settings.dns_servers = "
        '["127.0.0.1"]) or remove the zone from settings.dnsbl_zones.'
    )


MODULE = Dnsbl
