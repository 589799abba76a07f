"""Does the From address claim to be from the user's own organisation?

Compared by registrable domain (Public Suffix List), so `lists.example.org` and
`example.org` are the same organisation; an own domain that is itself not registrable
(`localhost`, a bare suffix) falls back to "equal or a subdomain of". Only the From header is
read: a forged internal From is the classic CEO-fraud pattern and counts as internal here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailstats.modules import HEADER, Module, Value

if TYPE_CHECKING:
    from mailstats.mail.message import Message
    from mailstats.services import Services


def to_ascii(domain: str) -> str:
    """IDNA form, as parse_address gives the From domain; unencodable names stay as they are."""
    domain = domain.strip().strip(".").lower()
    try:
        return domain.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        return domain


def same_org(domain: str, own: str, services: Services) -> bool:
    domain, own = to_ascii(domain), to_ascii(own)
    if not domain or not own:
        return False
    reg_own = services.domains.registrable(own)
    if reg_own:
        return services.domains.registrable(domain) == reg_own
    return domain == own or domain.endswith("." + own)


class InternalModule(Module):
    name = "internal"
    version = "1"
    description = "The From domain is one of the account's own domains"
    needs = frozenset({HEADER})
    checks = ("internal",)
    evidence = "message"

    def evaluate(self, msg: Message, services: Services) -> dict[str, Value | dict]:
        own = [d for d in services.identity.own_domains if d and d.strip()]
        if not own:
            return {"internal": None, "_why": {"internal": "no own domains configured"}}
        addr = msg.from_address
        domain = (addr.domain if addr is not None else "") or ""
        if not domain:
            return {"internal": None, "_why": {"internal": "no usable From domain"}}
        for item in own:
            if same_org(domain, item, services):
                return {"internal": True, "_why": {"internal": f"{domain} ~ {item}"}}
        return {"internal": False, "_why": {"internal": f"{domain} is not an own domain"}}


MODULE = InternalModule
