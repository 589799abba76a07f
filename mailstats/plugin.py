"""Everything a third-party header module imports: one module, one stable surface.

    from mailstats.plugin import HEADER, Message, Module, Services

A module is a `Module` subclass with class attributes (name, version, checks, extras, needs,
settings, ...) and `evaluate(msg, services)`; it is installed by an entry point in the group
`mailstats.modules` and runs when named in the accounts file (`settings.modules`, or a
`[modules.NAME]` table). docs/modules.md has a complete example; `mailstats.testing` runs
one in a test without a mailbox or a network.

`API_VERSION` changes when this surface changes in a way that breaks existing modules;
additions keep it.
"""

from __future__ import annotations

from mailstats.mail.addresses import Address
from mailstats.mail.message import Message, MimePart
from mailstats.modules import (
    BODY,
    ENTRY_POINT_GROUP,
    HEADER,
    HOUR_OF_DAY,
    PROBE,
    RAW,
    STRUCTURE,
    Module,
    Setting,
    Value,
)
from mailstats.services import Identity, SentIndex, Services
from mailstats.services.dns import FAILED, NODATA, NXDOMAIN, OK, DnsAnswer

API_VERSION = 1

__all__ = [
    "API_VERSION",
    "BODY",
    "ENTRY_POINT_GROUP",
    "FAILED",
    "HEADER",
    "HOUR_OF_DAY",
    "NODATA",
    "NXDOMAIN",
    "OK",
    "PROBE",
    "RAW",
    "STRUCTURE",
    "Address",
    "DnsAnswer",
    "Identity",
    "Message",
    "MimePart",
    "Module",
    "SentIndex",
    "Services",
    "Setting",
    "Value",
]
