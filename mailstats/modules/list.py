"""Mailing-list and bulk mail, by the headers list managers and bulk senders add.

Any RFC 2369 / RFC 2919 list header (List-Id, List-Unsubscribe, List-Post, List-Help,
List-Subscribe, List-Owner, List-Archive), the pre-RFC `Mailing-List` header, or
`Precedence: list` / `Precedence: bulk`. `Precedence: junk` does not count: vacation
responders and cron jobs set it to suppress replies, not to say the mail went to many people.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailstats.modules import HEADER, Module, Value

if TYPE_CHECKING:
    from mailstats.mail.message import Message
    from mailstats.services import Services

LIST_HEADERS = (
    "List-Id",
    "List-Unsubscribe",
    "List-Post",
    "List-Help",
    "List-Subscribe",
    "List-Owner",
    "List-Archive",
    "Mailing-List",
)
LIST_PRECEDENCE = frozenset({"list", "bulk"})


class ListModule(Module):
    name = "list"
    version = "1"
    description = "Mailing-list or bulk headers (List-*, Precedence: list/bulk)"
    needs = frozenset({HEADER})
    checks = ("is_list",)
    evidence = "message"

    def evaluate(self, msg: Message, services: Services) -> dict[str, Value | dict]:
        present = [h for h in LIST_HEADERS if any(v.strip() for v in msg.header_all(h))]
        precedence = [v.strip().lower() for v in msg.header_all("Precedence")]
        bulk = [p for p in precedence if p.split(" ", 1)[0] in LIST_PRECEDENCE]
        reasons = present + [f"Precedence: {p}" for p in bulk]
        if reasons:
            return {"is_list": True, "_why": {"is_list": ", ".join(reasons)}}
        return {"is_list": False, "_why": {}}


MODULE = ListModule
