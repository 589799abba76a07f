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

The registry holds module *classes*; every run makes fresh instances, so whatever an
instance learns (in `prepare`, or while evaluating) lasts one run and never leaks into the
next. Third-party modules register a `Module` subclass under the entry-point group
`mailstats.modules` and import everything from `mailstats.plugin`; see docs/modules.md.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
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
#: A service a module may need: the TCP prober (services/probe.py), made only when one does.
PROBE = "probe"
#: What a module's extra can stand for, for the GUI and the report to plot it (`Module.plots`).
HOUR_OF_DAY = "hour_of_day"

#: The built-in `list`: once `mailstats.modules.list` is imported, the name `list` in this
#: package's namespace is that module.
_list = list

#: Module, check and extra names: they become CSV column names and GUI keys.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")

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


@dataclass(frozen=True)
class Setting:
    """One setting a module declares: validated when the accounts file is read, shown on the
    GUI's Modules page, and handed to the module in `services.settings[key]`.

    `type` is str, int, float, bool or list (a list of strings). In the accounts file it is
    `[modules.NAME] name = ...`, or the flat `[settings] key = ...` (key defaults to
    `NAME_name`, e.g. `reachability_port`).
    """

    name: str
    type: type
    default: Any = None
    help: str = ""
    key: str = ""

    def flat_key(self, module: str) -> str:
        return self.key or f"{module}_{self.name}"

    def problem(self, value: Any) -> str:
        """Why `value` does not fit, in words for the file's author ("" when it does)."""
        want = self.type
        if want is bool:
            ok = isinstance(value, bool)
        elif want is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif want is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif want is _list:
            ok = isinstance(value, _list) and all(isinstance(v, str) for v in value)
        else:
            ok = isinstance(value, want)
        if ok:
            return ""
        words = {bool: "true or false", int: "a whole number", float: "a number"}
        return f"must be {words.get(want, 'a list of strings' if want is _list else 'text')}"


class Module:
    """Base class for header modules; subclasses set the class attributes and `evaluate`.

    The class attributes are the declaration; an instance lives for one run (the engine makes
    it when the run starts), so state it keeps is that run's state.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    #: Fetch items (HEADER, STRUCTURE, BODY, RAW) and services (PROBE) the module needs.
    needs: ClassVar[frozenset[str]] = frozenset({HEADER})
    checks: ClassVar[tuple[str, ...]] = ()
    extras: ClassVar[tuple[str, ...]] = ()
    #: Settings the module reads (`Setting`), shown and validated by the app.
    settings: ClassVar[tuple[Setting, ...]] = ()
    #: Extras with a meaning the GUI and the report plot, e.g. {HOUR_OF_DAY: "hour"}.
    plots: ClassVar[Mapping[str, str]] = {}
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


@lru_cache(maxsize=256)
def _known_keys(checks: tuple[str, ...], extras: tuple[str, ...]) -> frozenset[str]:
    return frozenset({*checks, *extras, "_why", "_error"})


def check_result(module: Module, values: Any) -> tuple[dict[str, Any], str, list[str]]:
    """(values to store, error, unknown keys) for what `evaluate` returned.

    A check that is not True/False/None, or an extra that is not a scalar, would show as a
    strange cell in messages.csv and count as "not matched" in summary.csv: the message
    counts as the module's error instead, and the error names the key and the value.
    """
    if not isinstance(values, dict):
        return {}, f"returned {type(values).__name__}, not a dict", []
    error = ""
    for c in module.checks:
        v = values.get(c)
        if v is not None and v is not True and v is not False:
            error = f"check {c!r} is {v!r} ({type(v).__name__}); it must be True, False or None"
            break
    if not error:
        for e in module.extras:
            v = values.get(e)
            if v is not None and not isinstance(v, bool | int | float | str):
                error = f"extra {e!r} is a {type(v).__name__}; it must be a number or text"
                break
    if not error and not isinstance(values.get("_why", {}), dict):
        error = "'_why' must be a dict of check -> explanation"
    known = _known_keys(tuple(module.checks), tuple(module.extras))
    if values.keys() <= known:  # nearly always: one C-level subset test
        return values, error, []
    unknown = [k for k in values if k not in known]
    return {k: v for k, v in values.items() if k in known}, error, unknown


def declaration_problems(cls: Any) -> list[str]:
    """What is wrong with a module class as a declaration (empty when it is usable)."""
    if not isinstance(cls, type) or not issubclass(cls, Module):
        return [f"{cls!r} is not a mailstats Module subclass"]
    if cls.evaluate is Module.evaluate:
        return [f"{cls.__name__} does not define evaluate()"]
    problems = []
    if not NAME_RE.match(cls.name or ""):
        problems.append(f"module name {cls.name!r} is not lower-case letters, digits and _")
    for kind, names in (("check", cls.checks), ("extra", cls.extras)):
        for n in names:
            if not isinstance(n, str) or not NAME_RE.match(n):
                problems.append(f"{kind} name {n!r} is not lower-case letters, digits and _")
    for st in cls.settings:
        if not isinstance(st, Setting) or not NAME_RE.match(st.name):
            problems.append(f"setting {st!r} is not a Setting with a lower-case name")
    return problems


@dataclass
class Registry:
    """The module classes this installation knows, built-ins first, in display order."""

    modules: list[type[Module]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # broken or clashing plug-ins
    #: third-party module name -> where it came from ("entry point NAME = VALUE")
    plugins: dict[str, str] = field(default_factory=dict)

    def by_name(self, name: str) -> type[Module] | None:
        return next((m for m in self.modules if m.name == name), None)

    def defaults(self) -> list[str]:
        """What runs when settings.modules is not given: built-ins that need no opt-in."""
        return [m.name for m in self.modules if not m.opt_in and m.name not in self.plugins]

    def add_plugin(self, obj: Any, origin: str) -> bool:
        """Add a third-party module class (an instance stands for its class); False, with
        the reason in `problems`, when it is broken or its name is taken."""
        cls = obj if isinstance(obj, type) else type(obj)
        problems = declaration_problems(cls)
        if problems:
            self.problems.append(f"module plug-in {origin} is skipped: {'; '.join(problems)}")
            return False
        if self.by_name(cls.name) is not None:
            self.problems.append(
                f"module plug-in {origin} is skipped: the name {cls.name!r} is taken"
            )
            return False
        self.modules.append(cls)
        self.plugins[cls.name] = origin
        return True

    def settings_of(self) -> dict[str, tuple[str, Setting]]:
        """Flat settings key -> (module name, declaration), for every module known."""
        return {st.flat_key(m.name): (m.name, st) for m in self.modules for st in m.settings}


def available_modules(plugins: bool = True) -> Registry:
    """Every built-in module, plus (unless `plugins` is False) every third-party one found by
    entry point; a broken or clashing plug-in is skipped and named in `problems`."""
    reg = Registry()
    for short in BUILTIN:
        try:
            mod = importlib.import_module(f"mailstats.modules.{short}")
        except ModuleNotFoundError as exc:
            if exc.name == f"mailstats.modules.{short}":
                continue  # not shipped in this build
            raise
        reg.modules.append(mod.MODULE)
    if plugins:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            origin = f"{ep.name!r} ({ep.value})"
            try:
                obj = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plug-in must not stop a run
                reg.problems.append(f"module plug-in {origin} failed to load: {exc}")
                continue
            reg.add_plugin(obj, origin)
    return reg


def select_modules(
    reg: Registry, names: list[str] | None, configured: Iterable[str] = ()
) -> list[type[Module]]:
    """settings.modules; by default every built-in that needs no opt-in, plus the plug-ins
    that have a `[modules.NAME]` table (`configured`): plug-ins run only when named, and an
    opt-in built-in only from settings.modules (its table just configures it)."""
    if names is None:
        wanted = {*reg.defaults(), *(n for n in configured if n in reg.plugins)}
        names = [m.name for m in reg.modules if m.name in wanted]
    unknown = [n for n in names if reg.by_name(n) is None]
    if unknown:
        known = ", ".join(m.name for m in reg.modules)
        raise ValueError(f"unknown module(s) {', '.join(unknown)}; known: {known}")
    return [m for m in reg.modules if m.name in names]
