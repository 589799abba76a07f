"""Is the sender someone the user wrote to? The From address against the sent recipients.

From is trivially forged, so spam that fakes a friend's address matches too; the check
measures how often that happens rather than assuming it does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailstats.modules import HEADER, Value
from mailstats.modules.sent_index import SentIndexModule

if TYPE_CHECKING:
    from mailstats.mail.message import Message
    from mailstats.services import SentIndex


class FriendsModule(SentIndexModule):
    name = "friends"
    version = "1"
    description = "The From address is a recipient of a message in the sent folders"
    needs = frozenset({HEADER})
    checks = ("from_friend",)

    def judge(self, msg: Message, index: SentIndex) -> dict[str, Value | dict]:
        addr = msg.from_address
        if addr is None or not addr.addr:
            return {"from_friend": None, "_why": {"from_friend": "no usable From address"}}
        key = addr.addr.strip().lower()
        if key in index.recipients:
            return {"from_friend": True, "_why": {"from_friend": f"user wrote to {key}"}}
        return {"from_friend": False, "_why": {"from_friend": f"never wrote to {key}"}}


MODULE = FriendsModule
