"""SPF: would the sender's domain authorise the origin IP *now*?

Why it looks like this:
- pyspf evaluates the record (macros, include/redirect, the 10-look-up and void limits), but
  its own look-ups call `dns.resolver.query`, deprecated and blind to our cache, timeouts and
  configured servers. pyspf resolves everything through one module-level hook,
  `spf.DNSLookup(name, qtype, strict, timeout)`; `_lookup` below replaces it once, when pyspf
  is first imported (`_pyspf`: it brings dnspython's resolver, slow to import), and answers
  from the `services.dns` of the evaluation running in this thread/context. With no
  resolver in context it raises TempError, so nothing ever falls back to pyspf's resolver.
- The identity is the envelope sender as the final delivery recorded it in Return-Path (the
  topmost one). A null sender (`<>`, bounces) uses the HELO identity, as RFC 7208 2.4 says.
  Without a Return-Path the envelope sender is unknown and the check is None: the From
  domain is *not* substituted, because ESPs and lists send with their own bounce domain and
  From-domain SPF would then measure something else (that is DMARC alignment, not SPF).
- temperror (a DNS failure) is "unknown" (None); permerror is a decidable "not pass".
- Results are remembered per (ip, sender, HELO) and, when no record the check read holds a
  macro, per (ip, domain): without macros RFC 7208 evaluates the domain's records against
  the IP alone, so the local part and the HELO cannot change the result. Bounce addresses
  are mostly one-off (VERP: `bounce-4711-x=y@esp.example`), and on generated mail a quarter
  of the checks pyspf ran were of a domain and IP already checked.
"""

from __future__ import annotations

import contextvars
import ipaddress
import re
import threading
from collections.abc import Iterable
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mailstats.modules import HEADER, Module, Value

if TYPE_CHECKING:
    from mailstats.mail.message import Message
    from mailstats.services import Services
    from mailstats.services.dns import Resolver

RESULTS = ("pass", "fail", "softfail", "neutral", "none", "permerror", "temperror")
#: Checks remembered, for mail from one sender and relay. Bounded: with a new (ip, sender,
#: HELO) in each message, an unbounded memo held 5.4 MB after 20k messages in one process
#: and kept growing. One evicted and asked again is evaluated on the run's remembered DNS
#: answers: the same result.
MEMO_MAX = 4096


class _Check:
    """One running check's state, seen by `_lookup`: its resolver, and whether some TXT
    record it read could hold a macro (then its result may depend on the local part, the
    HELO, the time...)."""

    __slots__ = ("resolver", "macros")

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.macros = False


_current: contextvars.ContextVar[_Check | None] = contextvars.ContextVar(
    "mailstats_spf_check", default=None
)


def _lookup(name: str, qtype: str, strict: Any = True, timeout: Any = None) -> list:
    """pyspf's DNSLookup contract: [((name, qtype), value), ...]; TempError on failure."""
    check = _current.get()
    if check is None:
        raise _pyspf().TempError("DNS: no mailstats resolver in context")
    resolver = check.resolver
    name = str(name).rstrip(".")
    qtype = str(qtype).upper()
    if qtype == "SPF":
        return []  # type 99 is obsolete (RFC 7208 3.1); pyspf only asks for it in harsh mode
    answer = resolver.query(name, qtype)
    if answer.failed:
        raise _pyspf().TempError(f"DNS {answer.status} for {name} {qtype}")
    out: list = []
    for rec in answer.records:
        if qtype == "MX":
            pref, _, host = rec.partition(" ")
            try:
                out.append(((name, qtype), (int(pref), host.strip().rstrip("."))))
            except ValueError:
                continue
        elif qtype == "TXT":
            # pyspf joins the character-strings of one record itself; ours are joined already.
            out.append(((name, qtype), [rec.encode("utf-8")]))
            if "%" in rec:  # a macro (or an unrelated TXT with "%": only the memo is lost)
                check.macros = True
        else:  # A, AAAA, PTR
            out.append(((name, qtype), rec))
    return out


@cache
def _pyspf() -> ModuleType:
    """pyspf, with its look-ups through `_lookup`, imported at the first check."""
    import spf

    spf.DNSLookup = _lookup
    return spf


def envelope_sender(msg: Message) -> str | None:
    """The topmost Return-Path's address; '' for the null sender; None when absent."""
    values = msg.raw_header_all("Return-Path")
    if not values:
        return None
    value = values[0].strip()
    m = re.search(r"<([^<>]*)>", value)
    addr = (m.group(1) if m else value).strip().strip('"')
    if addr.startswith("@") and ":" in addr:  # obsolete source route <@relay:user@host>
        addr = addr.split(":", 1)[1]
    return addr


def _helo_usable(helo: str) -> bool:
    helo = helo.strip().rstrip(".")
    if "." not in helo or helo.startswith("["):
        return False
    try:
        ipaddress.ip_address(helo)
        return False
    except ValueError:
        return True


class Spf(Module):
    name = "spf"
    version = "1"
    description = "SPF of the Return-Path domain passes for the origin IP (evaluated now)."
    needs = frozenset({HEADER})
    checks = ("pass",)
    extras = ("result",)
    evidence = "now"
    dns_columns = ("pass", "result")

    def __init__(self) -> None:
        self._memo: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._lock = threading.Lock()

    def _inputs(self, msg: Message, services: Services) -> tuple[str, str, str] | str:
        """(ip, sender, helo) for pyspf, or the reason the check cannot be decided."""
        hop = msg.origin(services.identity)
        if hop is None:
            return "no public origin IP in the Received headers"
        ip, helo = hop.ip, (hop.helo or "").strip()
        sender = envelope_sender(msg)
        if sender is None:
            return "no Return-Path: the envelope sender is unknown"
        if "@" not in sender or not sender.rsplit("@", 1)[1].strip():
            # Null sender or no domain: RFC 7208 2.4 checks the HELO identity instead.
            if not _helo_usable(helo):
                return "null envelope sender and no usable HELO name"
            sender = ""
        return ip, sender, helo

    def prefetch(self, msg: Message, services: Services) -> Iterable[tuple[str, str]]:
        inputs = self._inputs(msg, services)
        if isinstance(inputs, str):
            return ()
        _, sender, helo = inputs
        domain = sender.rsplit("@", 1)[1] if sender else helo
        return [(domain.strip().rstrip("."), "TXT")]

    def evaluate(self, msg: Message, services: Services) -> dict[str, Value | dict]:
        inputs = self._inputs(msg, services)
        if isinstance(inputs, str):
            return {"pass": None, "result": None, "_why": {"pass": inputs}}
        result, explanation = self.check(*inputs, services=services)
        ident = f"{inputs[1]}" if inputs[1] else f"HELO {inputs[2]}"
        why = f"SPF {result} for {ident} from {inputs[0]}"
        if explanation:
            why += f": {explanation}"
        return {
            "pass": None if result == "temperror" else result == "pass",
            "result": result,
            "_why": {"pass": why[:300]},
        }

    def check(self, ip: str, sender: str, helo: str, *, services: Services) -> tuple[str, str]:
        pyspf = _pyspf()
        key = (ip, sender.lower(), helo.lower())
        # The domain pyspf will check, split as pyspf splits (at the first "@").
        by_domain = (ip, pyspf.split_email(sender, helo)[1].lower())
        with self._lock:
            hit = self._memo.get(key) or self._memo.get(by_domain)
        if hit is not None:
            return hit
        state = _Check(services.dns)
        token = _current.set(state)
        q = None
        try:
            q = pyspf.query(i=ip, s=sender, h=helo, querytime=20)
            result, _code, explanation = q.check()
        except pyspf.TempError as exc:
            result, explanation = "temperror", str(exc)
        except pyspf.PermError as exc:
            result, explanation = "permerror", str(exc)
        except Exception as exc:  # noqa: BLE001 - pyspf on hostile records/addresses
            result, explanation = "permerror", f"pyspf: {exc!r}"
        finally:
            _current.reset(token)
            if q is not None:
                # pyspf keeps the PermError it raised on the query (query -> error -> its
                # traceback -> the frames up to the engine's -> the query): a cycle that
                # pinned a folder's table past the run until a full collection.
                q.__dict__.clear()
        result = str(result).lower()
        if result not in RESULTS:  # 'ambiguous' etc. only occur in harsh mode
            result = "permerror"
        out = (result, str(explanation or "")[:200])
        if result != "temperror":
            with self._lock:
                self._memo[by_domain if not state.macros else key] = out
                while len(self._memo) > MEMO_MAX:  # the oldest go (dicts keep insertion order)
                    del self._memo[next(iter(self._memo))]
        return out


MODULE = Spf
