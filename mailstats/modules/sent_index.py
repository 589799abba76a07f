"""The shared half of the modules that compare a message with the user's sent folders.

Without a sent folder mapped there is nothing to compare with: the answer is unknown, never
"no". Subclasses decide the rest from the index (`judge`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailstats.modules import Module, Value

if TYPE_CHECKING:
    from mailstats.mail.message import Message
    from mailstats.services import SentIndex, Services


class SentIndexModule(Module):
    """A module with one check, decided from the sent index (results redone when it changes)."""

    uses_sent_index = True
    evidence = "message"

    def evaluate(self, msg: Message, services: Services) -> dict[str, Value | dict]:
        index = services.sent_index
        if index is None:
            (check,) = self.checks
            return {check: None, "_why": {check: "no sent folder"}}
        return self.judge(msg, index)

    def judge(self, msg: Message, index: SentIndex) -> dict[str, Value | dict]:
        raise NotImplementedError
