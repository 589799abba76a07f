"""Does the message address the user by name? In the To display name and in the body slice.

Bulk spam rarely knows the recipient's name; personal mail and mail from real contacts
usually do. Matching is case- and accent-insensitive (NFKD, combining marks dropped,
casefolded, so "Zoë" matches "ZOE") and on whole words, so "Dana" does not match "Danamark".

A match is the first name, or the full name; in the To display name also the surname alone
("Whitfield, D.", "Mr Whitfield"), since a display name is about the recipient by definition,
while a surname in free body text is too often an ordinary word ("Baker", "Young"). Initials
("J.") are skipped when choosing the first name.
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import TYPE_CHECKING

from mailstats.mail.addresses import parse_address_list
from mailstats.modules import BODY, HEADER, Module, Value

if TYPE_CHECKING:
    from mailstats.mail.message import Message
    from mailstats.services import Services


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text or "")
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.casefold()


def name_tokens(full_name: str) -> list[str]:
    """Folded word tokens of the name, initials dropped."""
    return [t for t in re.findall(r"\w+", fold(full_name)) if len(t) >= 2 and not t.isdigit()]


def _word_re(words: list[str]) -> re.Pattern[str]:
    # \s+ between the words of a full name; \w boundaries on both sides.
    return re.compile(r"(?<!\w)" + r"\W+".join(re.escape(w) for w in words) + r"(?!\w)")


def name_patterns(full_name: str, surname_alone: bool) -> list[re.Pattern[str]]:
    tokens = name_tokens(full_name)
    if not tokens:
        return []
    patterns = [_word_re(tokens), _word_re(tokens[:1])]
    if surname_alone and len(tokens) > 1:
        patterns.append(_word_re(tokens[-1:]))
    return patterns


def contains_name(text: str, patterns: list[re.Pattern[str]]) -> bool:
    folded = fold(text)
    return any(p.search(folded) for p in patterns)


class PersonalModule(Module):
    name = "personal"
    version = "1"
    description = "The To display name / the body's first 2 KiB contain the user's name"
    needs = frozenset({HEADER, BODY})
    checks = ("to_has_name", "body_has_name")
    evidence = "message"

    def __init__(self) -> None:
        self._name_configured = True

    def prepare(self, services: Services) -> None:
        """Remember whether this account has a name at all: without one, no body fetch."""
        self._name_configured = bool(name_tokens(services.identity.full_name or ""))

    def wants(self, msg: Message, item: str) -> bool:
        return item == BODY and self._name_configured

    def evaluate(self, msg: Message, services: Services) -> dict[str, Value | dict]:
        full_name = (services.identity.full_name or "").strip()
        if not name_tokens(full_name):
            reason = "no full_name configured for the account"
            return {
                "to_has_name": None,
                "body_has_name": None,
                "_why": {"to_has_name": reason, "body_has_name": reason},
            }
        why: dict[str, str] = {}
        to_patterns = name_patterns(full_name, surname_alone=True)
        displays = [a.display for a in parse_address_list(msg.header("To")) if a.display]
        to_hit = next((d for d in displays if contains_name(d, to_patterns)), None)
        if to_hit is not None:
            why["to_has_name"] = f"To: {to_hit}"
        elif not displays:
            why["to_has_name"] = "no display name in To"

        body_value: bool | None
        body = msg.body_text
        if body is None:
            body_value = None
            why["body_has_name"] = "body not fetched"
        else:
            text = html.unescape(body[:4096])
            body_value = contains_name(text, name_patterns(full_name, surname_alone=False))
        return {"to_has_name": to_hit is not None, "body_has_name": body_value, "_why": why}


MODULE = PersonalModule
