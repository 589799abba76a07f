"""The header-module contract and the registry.

A module is small and pure: it declares what it needs fetched, and maps one parsed message
(plus the shared services) to its checks' values. It opens no connections of its own (DNS goes
through `services.dns`) and keeps no global state, so its results can be cached by
(module name, version, fingerprint) and a re-run skips it entirely.

Result dict returned by `evaluate`:
- every name in `checks` -> True / False / None (None: not applicable or unknown);
- names in `extras` -> int / float / str / None (extra CSV columns);
- optionally "_why" -> {check: short human explanation}, shown in the GUI's message view.
Keys are short names; the engine prefixes them with the module name ("received.from_match").

Third-party modules register a `Module` subclass (or instance) under the entry-point group
`mailstats.modules`; see docs/modules.md.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from mailstats.mail.message import Message
    from mailstats.services import Services

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "mailstats.modules"

#: Fetch items a module may need. "header" (with size) is always fetched; "structure" is the
#: MIME tree (BODYSTRUCTURE); "body" the first 2 KiB of text; "raw" the whole message, capped,
#: fetched only for messages the module `wants` it for (DKIM needs the body to verify).
HEADER, STRUCTURE, BODY, RAW = "header", "structure", "body", "raw"

Value = bool | int | float | str | None

#: Built-in modules, in display order. Explicit on purpose: no import-time discovery magic.
BUILTIN = (
    "received",
    "dnsbl",
    "dkim",
    "spf",
    "auth",
    "attachments",
    "images",
    "datetime",
    "reply",
    "friends",
    "domain",
    "dynamic",
    "internal",
    "personal",
    "list",
    "reachability",
)


class Module:
    """Base class for header modules; subclasses set the class attributes and `evaluate`."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset({HEADER})
    checks: ClassVar[tuple[str, ...]] = ()
    extras: ClassVar[tuple[str, ...]] = ()
    #: Opt-in modules run only when named in settings.modules (they contact third parties).
    opt_in: ClassVar[bool] = False
    #: Results depend on the sent-folder index (friends, replies): rerun when it changes.
    uses_sent_index: ClassVar[bool] = False
    #: Whether "now" (live network) or "at delivery" evidence; documented in docs/modules.md.
    evidence: ClassVar[str] = "message"
    #: Checks and extras whose values rest on DNS answers. When the run's resolver is found
    #: lying (services/dns_trust.py) the engine reports them unknown for the whole run.
    dns_columns: ClassVar[tuple[str, ...]] = ()

    def prepare(self, services: Services) -> None:
        """Once per account before any message (e.g. a DNSBL zone self-test)."""

    def wants(self, msg: Message, item: str) -> bool:
        """Whether this message needs the costly `item` ("body" or "raw") fetched at all."""
        return True

    def prefetch(self, msg: Message, services: Services) -> Iterable[tuple[str, str]]:
        """DNS (name, rdtype) pairs `evaluate` will ask for; resolved concurrently first."""
        return ()

    def evaluate(self, msg: Message, services: Services) -> dict[str, Value | dict]:
        raise NotImplementedError

    def fingerprint(self, services: Services) -> str:
        """What, besides the version, makes cached results stale. Override to narrow it."""
        ident = services.identity
        parts = [
            ",".join(ident.own_domains),
            ident.origin_key(),
            ident.full_name,
            ident.address,
            ",".join(services.dns.servers),
        ]
        if self.uses_sent_index:
            parts.append(services.sent_index.digest() if services.sent_index else "no-sent")
        if self.evidence == "now":
            # Live-network answers go stale: re-evaluate once per period (default 7 days).
            days = float(services.settings.get("now_max_age_days", 7) or 7)
            parts.append(str(int(time.time() // (days * 86400))))
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]

    def columns(self) -> list[str]:
        return [f"{self.name}.{c}" for c in self.checks] + [f"{self.name}.{e}" for e in self.extras]

    def warnings(self) -> list[str]:
        """Plain-words problems found during the run (a blocked DNSBL, ...), shown to the user."""
        return []

    def counters(self) -> dict[str, int]:
        """Run-wide counts worth putting in the manifest (per-zone errors, ...)."""
        return {}


@dataclass
class Registry:
    modules: list[Module] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # broken third-party modules

    def by_name(self, name: str) -> Module | None:
        return next((m for m in self.modules if m.name == name), None)


def _instantiate(obj: Any) -> Module:
    module = obj() if isinstance(obj, type) else obj
    if not isinstance(module, Module) and not hasattr(module, "evaluate"):
        raise TypeError(f"{obj!r} is not a mailstats module")
    if not getattr(module, "name", ""):
        raise TypeError(f"{obj!r} has no name")
    return module


def available_modules() -> Registry:
    """Every built-in module plus every third-party one found by entry point."""
    reg = Registry()
    for short in BUILTIN:
        try:
            mod = importlib.import_module(f"mailstats.modules.{short}")
        except ModuleNotFoundError as exc:
            if exc.name == f"mailstats.modules.{short}":
                continue  # not shipped in this build
            raise
        reg.modules.append(_instantiate(mod.MODULE))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            module = _instantiate(ep.load())
        except Exception as exc:  # noqa: BLE001 - a broken plug-in must not stop a run
            reg.problems.append(f"module plug-in {ep.name!r} ({ep.value}) failed to load: {exc}")
            continue
        if reg.by_name(module.name):
            reg.problems.append(f"module plug-in {ep.name!r} reuses the name {module.name!r}")
            continue
        reg.modules.append(module)
    return reg


def select_modules(reg: Registry, names: list[str] | None) -> list[Module]:
    """settings.modules, or by default every module that needs no opt-in."""
    if names is None:
        return [m for m in reg.modules if not m.opt_in]
    unknown = [n for n in names if reg.by_name(n) is None]
    if unknown:
        known = ", ".join(m.name for m in reg.modules)
        raise ValueError(f"unknown module(s) {', '.join(unknown)}; known: {known}")
    return [m for m in reg.modules if m.name in names]
