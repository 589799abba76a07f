"""The fixed messages.csv columns, computed and cached like any module's results.

They are a module so that the cache, the workers and the results view treat them like every
other: the origin IP depends on the trusted relays and on receiver recognition
(mail/receivers.py), so they have a fingerprint too.
"""

from __future__ import annotations

from typing import Any

from mailstats.mail.message import Message
from mailstats.modules import Module
from mailstats.services import Services

CORE_COLUMNS = ("message_id", "date", "from_address", "origin_ip")


class CoreFields(Module):
    """The fixed messages.csv columns, cached like any module (origin depends on relays)."""

    name = "_core"
    version = "2"
    extras = (*CORE_COLUMNS, "malformed", "when", "receiver")

    def fingerprint(self, services: Services) -> str:
        return services.identity.origin_key()

    def evaluate(self, msg: Message, services: Services) -> dict[str, Any]:
        from mailstats.mail.dates import parse_date

        raw_date = msg.header("Date")
        date = parse_date(raw_date) if raw_date else None
        when = date
        if when is None:
            stamps = [h.timestamp for h in msg.hops if h.timestamp is not None]
            when = stamps[0] if stamps else None
        origin_ip = msg.origin_ip(services.identity)
        return {
            "message_id": msg.message_id,
            "date": date.isoformat() if date else "",
            "from_address": msg.from_address.addr if msg.from_address else "",
            "origin_ip": origin_ip,
            "malformed": bool(msg.malformed),
            "when": when.timestamp() if when else None,
            "receiver": msg.receiver(services.identity).receiver,
        }
