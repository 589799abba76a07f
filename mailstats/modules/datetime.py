"""When the sender says the message was written, and how far that is from its arrival.

`hour` and `weekday` are in the sender's own local time (the Date header's offset is kept),
because "sent at 3 a.m. local time" is the signal, not the reader's clock. `skew_s` compares
Date with the topmost Received timestamp (received minus date, seconds): bulk senders with
hard-coded or random dates show up as huge skews or future dates.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from mailstats.mail.dates import parse_date
from mailstats.modules import HEADER, HOUR_OF_DAY, Module, Value

if TYPE_CHECKING:
    from mailstats.mail.message import Message
    from mailstats.services import Services

#: Allowed clock difference before a Date counts as "in the future".
FUTURE_GRACE = timedelta(hours=1)
LARGE_SKEW = timedelta(hours=24)


def received_time(msg: Message) -> datetime | None:
    """The topmost Received header's timestamp (the next one down when it has none)."""
    for hop in msg.hops:
        ts = getattr(hop, "timestamp", None)
        if isinstance(ts, datetime) and ts.tzinfo is not None:
            return ts
    return None


class DatetimeModule(Module):
    name = "datetime"
    version = "1"
    description = "Sender's local hour and weekday, Date vs Received skew, missing/future dates"
    needs = frozenset({HEADER})
    checks = ("date_missing", "date_malformed", "future_date", "large_skew")
    extras = ("hour", "weekday", "skew_s")
    evidence = "message"
    plots = {HOUR_OF_DAY: "hour"}

    def evaluate(self, msg: Message, services: Services) -> dict[str, Value | dict]:
        raw = msg.header("Date").strip()
        date = parse_date(raw) if raw else None
        if date is not None and date.tzinfo is None:
            date = date.replace(tzinfo=UTC)  # parse_date promises aware; never trust blindly
        received = received_time(msg)
        why: dict[str, str] = {}
        out: dict[str, Value | dict] = {
            "date_missing": not raw,
            "date_malformed": None if not raw else date is None,
            "future_date": None,
            "large_skew": None,
            "hour": None,
            "weekday": None,
            "skew_s": None,
        }
        if not raw:
            why["date_missing"] = "no Date header"
        elif date is None:
            why["date_malformed"] = f"unparseable Date: {raw[:60]}"
        if date is not None:
            out["hour"] = date.hour
            out["weekday"] = date.weekday()
            try:
                if received is not None:
                    skew = received - date
                    out["skew_s"] = int(skew.total_seconds())
                    out["large_skew"] = abs(skew) > LARGE_SKEW
                    out["future_date"] = date - received > FUTURE_GRACE
                    why["large_skew"] = f"Received - Date = {int(skew.total_seconds())} s"
                else:
                    out["future_date"] = date - datetime.now(UTC) > FUTURE_GRACE
                    why["large_skew"] = "no Received timestamp"
            except (OverflowError, ValueError):  # dates near year 1 / 9999
                out["future_date"] = out["large_skew"] = out["skew_s"] = None
        out["_why"] = why
        return out


MODULE = DatetimeModule
