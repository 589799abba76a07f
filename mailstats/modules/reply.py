"""Is this a reply to something the user sent? In-Reply-To / References against the sent index.

A spammer can quote a Message-ID only when they saw the user's message, so a match is strong
ham evidence. Needs the sent folders: without one mapped the answer is unknown, not "no".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailstats.mail.addresses import parse_msgid_list
from mailstats.modules import HEADER, Value
from mailstats.modules.sent_index import SentIndexModule

if TYPE_CHECKING:
    from mailstats.mail.message import Message
    from mailstats.services import SentIndex


class ReplyModule(SentIndexModule):
    name = "reply"
    version = "1"
    description = "In-Reply-To / References name a message from the sent folders"
    needs = frozenset({HEADER})
    checks = ("in_reply_to_sent",)

    def judge(self, msg: Message, index: SentIndex) -> dict[str, Value | dict]:
        ids: list[str] = []
        for name in ("In-Reply-To", "References"):
            for value in msg.raw_header_all(name):
                ids.extend(parse_msgid_list(value))
        hit = next((i for i in ids if i in index.message_ids), None)
        if hit is not None:
            return {"in_reply_to_sent": True, "_why": {"in_reply_to_sent": f"refers to <{hit}>"}}
        reason = "no In-Reply-To/References" if not ids else f"{len(ids)} id(s), none sent"
        return {"in_reply_to_sent": False, "_why": {"in_reply_to_sent": reason}}


MODULE = ReplyModule
