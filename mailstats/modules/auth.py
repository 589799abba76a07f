"""What the receiving provider said about DKIM, SPF and DMARC when it accepted the message.

These are verdicts written at delivery (Authentication-Results, RFC 8601; Received-SPF,
RFC 7208; ARC-Authentication-Results, RFC 8617), not checks made now: they stay valid after a
DKIM key is rotated or an SPF record changes, which is why they are worth counting next to the
live `dkim` and `spf` modules.

Anyone can put such headers into a message before sending it, so only headers from the
account's own provider are trusted:
- with `authserv_ids` in the settings, an Authentication-Results (or ARC-Authentication-Results)
  counts when its authserv-id equals one of them or is a subdomain of one, and a Received-SPF
  when its receiver (`receiver=` or the "host:" at the start of its comment) is;
- without it, the authserv-id of the topmost Authentication-Results is taken as the provider's
  (the provider prepends its header, so the topmost one is its own), and only the topmost
  Received-SPF counts.
For each method the topmost trusted header that mentions it decides; lower ones are ignored.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from mailstats.modules import HEADER, Module, Setting, Value

if TYPE_CHECKING:
    from mailstats.mail.message import Message
    from mailstats.services import Services

METHODS = ("dkim", "spf", "dmarc")
#: Results that say the check could not be run (a DNS failure at delivery): unknown, not "no".
UNDECIDED = frozenset({"temperror"})
#: RFC 4408 spellings in old Received-SPF headers.
_LEGACY = {"error": "temperror", "unknown": "permerror"}

_METHOD_RE = re.compile(r"(?<![\w.@=/-])([a-z][a-z0-9_-]*)(?:/\d+)?\s*=\s*([a-z][a-z0-9_-]*)", re.I)
_FIRST_IS_RESULT_RE = re.compile(r"^\s*[a-z][a-z0-9_-]*(?:/\d+)?\s*=", re.I)
_ARC_INSTANCE_RE = re.compile(r"^\s*i\s*=\s*\d+\s*;", re.I)
_SPF_RESULT_RE = re.compile(
    r"^\s*(pass|fail|softfail|neutral|none|temperror|permerror|error|unknown)\b", re.I
)
_SPF_RECEIVER_RE = re.compile(r"(?:^|[;\s])receiver\s*=\s*([^;\s]+)", re.I)
_SPF_COMMENT_HOST_RE = re.compile(r"^\s*\w+\s*\(\s*([a-z0-9][a-z0-9.-]*\.[a-z0-9-]+)\s*:", re.I)


#: strip_comments' tokens: an escaped pair (or a lone trailing backslash), a quote, a
#: parenthesis, or a run of anything else.
_COMMENT_TOKEN = re.compile(r'\\.?|["()]|[^\\"()]+', re.S)
_QUOTED_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def strip_comments(text: str) -> str:
    """Remove (nested) RFC 5322 comments outside quoted strings; unbalanced ones end the text.

    Read by runs of ordinary characters, not one character at a time: an
    Authentication-Results value is a few hundred characters, and the per-character loop
    this replaces was most of the module's cost (tests/test_mod_auth.py keeps it as the
    reference the two must agree with)."""
    if "(" not in text:
        return text  # no comment: every character stays, whatever the quotes and escapes
    out: list[str] = []
    depth = 0
    quoted = False
    for tok in _COMMENT_TOKEN.findall(text):
        first = tok[0]
        if first == "\\":
            if depth == 0:
                out.append(tok)
        elif quoted:  # only ever at depth 0
            out.append(tok)
            quoted = tok != '"'
        elif first == '"':
            if depth == 0:
                quoted = True
                out.append(tok)
        elif first == "(":
            depth += 1
        elif first == ")":
            if not depth:
                out.append(tok)
            else:
                depth -= 1
                if depth == 0:
                    out.append(" ")
        elif depth == 0:
            out.append(tok)
    return "".join(out)


def _drop_quoted(text: str) -> str:
    return _QUOTED_STRING.sub('""', text) if '"' in text else text


def parse_auth_results(value: str) -> tuple[str, list[tuple[str, str]]]:
    """(authserv-id lower case, [(method, result)]) from one Authentication-Results value.

    A tolerant scan rather than a strict RFC 8601 parser: Outlook.com's headers have no
    authserv-id and some providers write versions other than 1, which strict parsers reject.
    Where the strict `authres` parser does accept a header, the scan gives the same answer
    (tests/test_mod_auth.py checks that on the corpus and on generated mail) at a tenth of the
    cost. An absent authserv-id is returned as "".
    """
    text = _drop_quoted(strip_comments(value))
    if _FIRST_IS_RESULT_RE.match(text):
        authserv_id, rest = "", text
    else:
        head, _, rest = text.partition(";")
        tokens = head.split()
        authserv_id = tokens[0].lower() if tokens else ""
    results = [(m.group(1).lower(), m.group(2).lower()) for m in _METHOD_RE.finditer(rest)]
    # "header.d=x" style properties never match (the lookbehind rejects a preceding "."), but
    # "none" or a bare word does not either, which is right: only method=result pairs count.
    return authserv_id, [(m, r) for m, r in results if "." not in m]


def parse_received_spf(value: str) -> tuple[str, str]:
    """(result, receiver) from one Received-SPF value; ("", "") when it says nothing usable."""
    m = _SPF_RESULT_RE.match(value or "")
    if not m:
        return "", ""
    result = m.group(1).lower()
    result = _LEGACY.get(result, result)
    receiver = ""
    rm = _SPF_RECEIVER_RE.search(strip_comments(value))
    if rm and not rm.group(1).startswith("<"):
        receiver = rm.group(1).strip().lower().rstrip(".")
    else:
        cm = _SPF_COMMENT_HOST_RE.match(value)
        if cm:
            receiver = cm.group(1).lower().rstrip(".")
    return result, receiver


def id_matches(candidate: str, trusted: str) -> bool:
    """Equal, or one a subdomain of the other ("mx.google.com" vs "google.com")."""
    candidate, trusted = candidate.strip().lower(), trusted.strip().lower()
    if candidate == trusted:
        return True
    if not candidate or not trusted or "." not in candidate or "." not in trusted:
        return False
    return candidate.endswith("." + trusted) or trusted.endswith("." + candidate)


def verdict(results: list[str]) -> bool | None:
    """Any pass -> True; otherwise a definite non-pass -> False; only temperrors -> None."""
    if "pass" in results:
        return True
    if any(r not in UNDECIDED for r in results):
        return False
    return None


class AuthModule(Module):
    name = "auth"
    version = "1"
    description = "DKIM / SPF / DMARC verdicts the receiving provider recorded at delivery"
    needs = frozenset({HEADER})
    checks = ("dkim_pass", "spf_pass", "dmarc_pass")
    extras = ("authserv_id",)
    evidence = "at delivery"
    settings = (
        Setting(
            "authserv_ids",
            list,
            None,
            "trust only Authentication-Results from these authserv-ids (default: the topmost)",
            key="authserv_ids",
        ),
    )

    def evaluate(self, msg: Message, services: Services) -> dict[str, Value | dict]:
        configured = _configured_ids(services)
        ar_headers = [parse_auth_results(v) for v in msg.raw_header_all("Authentication-Results")]
        arc_headers = [
            parse_auth_results(_ARC_INSTANCE_RE.sub("", v, count=1))
            for v in msg.raw_header_all("ARC-Authentication-Results")
        ]
        spf_headers = [parse_received_spf(v) for v in msg.raw_header_all("Received-SPF")]

        if configured is not None:
            trusted = configured

            def trust_ar(authserv_id: str) -> bool:
                return any(id_matches(authserv_id, t) for t in trusted)

            trusted_spf = [
                (res, rcv)
                for res, rcv in spf_headers
                if res and rcv and any(id_matches(rcv, t) for t in trusted)
            ][:1]
        else:
            default_id = ar_headers[0][0] if ar_headers else None
            trusted = [default_id] if default_id is not None else []

            def trust_ar(authserv_id: str) -> bool:
                return default_id is not None and authserv_id == default_id

            trusted_spf = [(res, rcv) for res, rcv in spf_headers[:1] if res]

        out: dict[str, Value | dict] = {}
        why: dict[str, str] = {}
        used_id: str | None = None
        for method in METHODS:
            value, source = None, ""
            for label, headers in (
                ("Authentication-Results", ar_headers),
                ("ARC-Authentication-Results", arc_headers),
            ):
                found = _topmost(headers, method, trust_ar)
                if found is not None:
                    authserv_id, results = found
                    value = verdict(results)
                    source = f"{label} from {authserv_id or '(no authserv-id)'}: " + ", ".join(
                        f"{method}={r}" for r in results
                    )
                    used_id = authserv_id if used_id is None else used_id
                    break
                if method == "spf" and label == "Authentication-Results" and trusted_spf:
                    res, rcv = trusted_spf[0]
                    value = verdict([res])
                    source = f"Received-SPF from {rcv or 'the topmost header'}: {res}"
                    break
            out[f"{method}_pass"] = value
            if source:
                why[f"{method}_pass"] = source
            else:
                why[f"{method}_pass"] = _no_verdict_reason(method, ar_headers, trusted)
        out["authserv_id"] = used_id
        out["_why"] = why
        return out

    def fingerprint(self, services: Services) -> str:
        """Which headers are trusted depends on settings.authserv_ids, so it is part of it."""
        ids = _configured_ids(services)
        extra = "default" if ids is None else ",".join(sorted(ids))
        return hashlib.sha256(f"{super().fingerprint(services)}\0{extra}".encode()).hexdigest()[:16]


def _configured_ids(services: Services) -> list[str] | None:
    """settings.authserv_ids as a list of lower-case ids; None when not configured."""
    settings = getattr(services, "settings", None) or {}
    raw = settings.get("authserv_ids") if isinstance(settings, dict) else None
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = [raw]
    try:
        return [str(x).strip().lower() for x in raw]
    except TypeError:
        return None


def _topmost(
    headers: list[tuple[str, list[tuple[str, str]]]],
    method: str,
    trust_ar: Callable[[str], bool],
) -> tuple[str, list[str]] | None:
    for authserv_id, results in headers:
        if not trust_ar(authserv_id):
            continue
        mine = [r for m, r in results if m == method]
        if mine:
            return authserv_id, mine
    return None


def _no_verdict_reason(method: str, ar_headers: list, trusted: list[str | None]) -> str:
    if not ar_headers:
        return "no Authentication-Results header"
    if not trusted:
        return "no trusted authserv-id configured matches"
    return f"no {method} verdict from {', '.join(t or '(no authserv-id)' for t in trusted)}"


MODULE = AuthModule
