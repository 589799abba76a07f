"""The MX hosts of an account's own domains, which must not flip with one failed look-up.

They tell the account's own receiving servers from the senders' (mail/receivers.py), so they
are part of every module's cache fingerprint (`Identity.origin_key`). A failed look-up
(timeout, SERVFAIL) used to count as "no MX": the origin of a message could move, and every
module's fingerprint changed, so the run analysed the whole mailbox again, and again on
the next run that got an answer. Now the hosts last found stand in (kept in the cache's meta
table), and the run says so; without any, the run says that it recognises them without MX.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from mailstats.mail.receivers import mx_hosts


def own_mx(
    resolver: Any, cache: Any, account: str, domains: Sequence[str]
) -> tuple[tuple[str, ...], str]:
    """(the hosts to use, '' or the warning the run shows)."""
    hosts, failure = mx_hosts(resolver, domains)
    key = f"own_mx\0{account}\0{','.join(domains)}"
    if not failure:
        cache.set_meta(key, json.dumps({"hosts": hosts, "at": f"{datetime.now(UTC):%Y-%m-%d}"}))
        return hosts, ""
    try:
        last = json.loads(cache.get_meta(key) or "null")
        kept = tuple(str(h) for h in last["hosts"]), str(last["at"])
    except (ValueError, TypeError, KeyError):
        kept = None
    if kept is None or not kept[0]:
        return hosts, (
            f"account {account}: DNS look-up failed ({failure}); its own receiving servers "
            "are recognised without their MX hosts this run"
        )
    return kept[0], (
        f"account {account}: DNS look-up failed ({failure}); the MX hosts found on "
        f"{kept[1]} ({', '.join(kept[0])}) stand in to recognise its own receiving servers"
    )
