"""Does the From domain exist in DNS *now* (MX, else A/AAAA)?

Why it looks like this:
- RFC 5321 5.1: mail is delivered to the MX, else to the domain's address records, so a
  domain that has none of them cannot receive replies. Spam often forges made-up domains.
- NXDOMAIN on the MX query already answers "no" for the whole name, so A/AAAA are asked only
  when the name exists without an MX (NODATA). A failed look-up is "unknown", never "no".
- A syntactically impossible domain (a single label, an empty label, > 253 characters, an
  IP literal) cannot exist in public DNS and is False without asking; asking would only
  produce a resolver error, i.e. a misleading None.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from mailstats.modules import HEADER, Module, Value
from mailstats.services.dns import NXDOMAIN

if TYPE_CHECKING:
    from mailstats.mail.message import Message
    from mailstats.services import Services

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def normalize_domain(domain: str) -> str | None:
    """Lower-case ASCII (IDNA) form, or None when it cannot be a public DNS name."""
    domain = (domain or "").strip().rstrip(".").lower()
    if not domain or domain.startswith("["):
        return None
    try:
        ascii_name = domain.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        return None
    labels = ascii_name.split(".")
    if len(labels) < 2 or len(ascii_name) > 253:
        return None
    if not all(_LABEL.match(label) for label in labels):
        return None
    if labels[-1].isdigit():  # 192.0.2.1 and other all-numeric "TLDs"
        return None
    return ascii_name


def from_domain(msg: Message) -> str:
    try:
        addr = msg.from_address
    except Exception:  # noqa: BLE001 - an unparseable From is "absent"
        return ""
    return (addr.domain or "") if addr is not None else ""


class Domain(Module):
    name = "domain"
    version = "1"
    description = "The From domain has an MX, A or AAAA record (asked now)."
    needs = frozenset({HEADER})
    checks = ("from_domain_exists",)
    evidence = "now"
    dns_columns = ("from_domain_exists",)

    def prefetch(self, msg: Message, services: Services) -> Iterable[tuple[str, str]]:
        name = normalize_domain(from_domain(msg))
        # A is asked too: cheap next to a serial fallback for the many domains without MX.
        return [(name, "MX"), (name, "A")] if name else ()

    def evaluate(self, msg: Message, services: Services) -> dict[str, Value | dict]:
        raw = from_domain(msg)
        if not raw:
            return {"from_domain_exists": None, "_why": {"from_domain_exists": "no From domain"}}
        name = normalize_domain(raw)
        if name is None:
            return _out(False, f"{raw!r} cannot be a public domain name")
        unknown = []
        for rdtype in ("MX", "A", "AAAA"):
            answer = services.dns.query(name, rdtype)
            if answer.ok:
                return _out(True, f"{name} has {rdtype} {answer.records[0]}")
            if answer.status == NXDOMAIN:  # the name itself does not exist, whatever failed
                return _out(False, f"{name} does not exist (NXDOMAIN)")
            if answer.failed:
                unknown.append(f"{rdtype} {answer.status}")
        if unknown:
            return _out(None, f"{name}: look-up failed ({', '.join(unknown)})")
        return _out(False, f"{name} exists but has no MX, A or AAAA record")


def _out(value: bool | None, why: str) -> dict[str, Value | dict]:
    return {"from_domain_exists": value, "_why": {"from_domain_exists": why}}


MODULE = Domain
