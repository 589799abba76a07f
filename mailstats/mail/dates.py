"""Lenient RFC 5322 date parsing for Date headers and Received time stamps.

The Date header is written by the sender, so spam carries every kind of junk: no weekday,
two-digit years, named zones (``PST``), the zone only in a comment (``(PST)``), AM/PM
clocks, month before day, ISO 8601. ``email.utils.parsedate_tz`` copes with part of that but
is slow on the hot path (every Received header of every message goes through here) and
silently accepts out-of-range fields, so this module has its own small parser: a strict
compiled pattern for the common case and a token scanner for the rest.

Conventions, chosen so that results are comparable between messages:

- The result is always timezone-aware. A date without any zone (and ``-0000``, which
  RFC 5322 defines as "local time unknown") is taken as UTC: the alternative, a naive
  datetime, cannot be compared with the aware ones and would crash the skew computation.
- Unknown or ambiguous zone names (``IST`` is India, Ireland and Israel) also count as UTC.
- Two-digit years follow RFC 5322 section 4.3: 00-49 are 2000-2049, 50-99 are 1950-1999;
  three-digit years add 1900.
- A leap second (``:60``) is clamped to ``:59``; any other out-of-range field (month 13,
  day 31 in June, hour 25, zone offset of a day or more) gives None.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

__all__ = ["parse_date"]

_MONTHS = {
    name: i
    for i, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}

# Offsets in minutes. RFC 5322 names first, then names that real mailers write; a name
# missing here is treated as UTC (see the module docstring).
_ZONES = {
    "ut": 0,
    "utc": 0,
    "gmt": 0,
    "z": 0,
    "wet": 0,
    "est": -300,
    "edt": -240,
    "cst": -360,
    "cdt": -300,
    "mst": -420,
    "mdt": -360,
    "pst": -480,
    "pdt": -420,
    "akst": -540,
    "akdt": -480,
    "hst": -600,
    "ast": -240,
    "adt": -180,
    "nst": -210,
    "ndt": -150,
    "brt": -180,
    "brst": -120,
    "bst": 60,
    "west": 60,
    "cet": 60,
    "met": 60,
    "mez": 60,
    "cest": 120,
    "mest": 120,
    "mesz": 120,
    "eet": 120,
    "eest": 180,
    "msk": 180,
    "msd": 240,
    "hkt": 480,
    "sgt": 480,
    "awst": 480,
    "jst": 540,
    "kst": 540,
    "acst": 570,
    "aest": 600,
    "aedt": 660,
    "nzst": 720,
    "nzdt": 780,
}

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Month spellings accepted by the slow path; a bare prefix test would take "Mayday" or "decided".
_MONTH_WORDS = dict(_MONTHS)
_MONTH_WORDS.update(
    {
        full: i
        for i, full in enumerate(
            (
                "january",
                "february",
                "march",
                "april",
                "may",
                "june",
                "july",
                "august",
                "september",
                "october",
                "november",
                "december",
            ),
            start=1,
        )
    }
)
_MONTH_WORDS["sept"] = 9

# The common case: "[Tue, ]8 Oct 2002 13:56:43 -0700 [(PDT)]".
_FAST = re.compile(
    r"\s*(?:[A-Za-z]{3,9}\s*,\s*)?"
    r"(\d{1,2})\s+([A-Za-z]{3})[A-Za-z]*\.?\s+(\d{2,4})\s+"
    r"(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?(?:\.\d+)?"
    r"\s*(?:([+-])(\d\d)(\d\d)|([A-Za-z]{1,5}))?"
    r"\s*(?:\(([^()]*)\))?\s*"
)

# What nearly every MTA and mail client writes (99 % of the generated mail's stamps): tried
# before _FAST, with one groups() call and no optional parts to look at; whatever it takes,
# _FAST would read the same (tests/test_dates.py checks that).
_CANONICAL = re.compile(
    r"\s*(?:[A-Z][a-z]{2}, )?(\d{1,2}) ([A-Z][a-z]{2}) (\d{4}) (\d\d):(\d\d):(\d\d) "
    r"([+-])(\d\d)([0-5]\d)(?: \([^()]*\))?\s*"
)
_CANONICAL_MONTHS = {name.capitalize(): i for name, i in _MONTHS.items()}

_COMMENT = re.compile(r"\(([^()]*)\)")
_ISO = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[Tt ]+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:[.,]\d+)?)?"
    r"\s*(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)
_TOKEN = re.compile(
    r"(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?(?:\.\d+)?"  # 1-3: time
    r"|([+-])(\d{1,2}):?(\d\d)?(?!\d)"  # 4-6: signed zone (or a dash-separated number)
    r"|([+-]?\d+)"  # 7: number
    r"|([A-Za-z]+)"  # 8: word
)

_TZ_CACHE: dict[int, timezone] = {0: UTC}


def _tz(minutes: int) -> timezone | None:
    tz = _TZ_CACHE.get(minutes)
    if tz is None:
        if abs(minutes) >= 24 * 60:
            return None
        tz = _TZ_CACHE.setdefault(minutes, timezone(timedelta(minutes=minutes)))
    return tz


def _year(text: str) -> int:
    year = int(text)
    if len(text) <= 2:
        return year + (2000 if year < 50 else 1900)
    if len(text) == 3:
        return year + 1900
    return year


def _named_zone(name: str | None) -> int | None:
    if not name:
        return None
    return _ZONES.get(name.strip().lower())


def _build(
    year: int, month: int, day: int, hour: int, minute: int, second: int, offset: int
) -> datetime | None:
    if second == 60:
        second = 59
    tz = _tz(offset)
    if tz is None:
        return None
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=tz)
    except (ValueError, OverflowError):
        return None


def parse_date(value: str) -> datetime | None:
    """An aware datetime for a Date-like header value; None when it is not a usable date.

    Never raises: a Date header is attacker-controlled text.
    """
    if not value or not isinstance(value, str):
        return None
    try:
        return _parse(value)
    except Exception:  # noqa: BLE001 - junk input must give None, never an exception
        return None


def _parse(value: str) -> datetime | None:
    c = _CANONICAL.fullmatch(value)
    if c is not None:
        day, name, year, hour, minute, second, sign, zone_h, zone_m = c.groups()
        month = _CANONICAL_MONTHS.get(name)
        if month is not None:
            offset = int(zone_h) * 60 + int(zone_m)
            return _build(
                int(year),
                month,
                int(day),
                int(hour),
                int(minute),
                int(second),
                -offset if sign == "-" else offset,
            )
    return _parse_general(value)


def _parse_general(value: str) -> datetime | None:
    m = _FAST.fullmatch(value)
    if m is not None and (m.group(10) or "").lower() not in ("am", "pm"):
        month = _MONTHS.get(m.group(2).lower())
        if month is not None:
            if m.group(7):
                hours, minutes = int(m.group(8)), int(m.group(9))
                if minutes >= 60:
                    return None
                offset = hours * 60 + minutes
                if m.group(7) == "-":
                    offset = -offset
            else:
                offset = _named_zone(m.group(10))
                if offset is None:
                    offset = _named_zone(m.group(11)) or 0
            return _build(
                _year(m.group(3)),
                month,
                int(m.group(1)),
                int(m.group(4)),
                int(m.group(5)),
                int(m.group(6) or 0),
                offset,
            )
    return _parse_slow(value)


def _parse_slow(value: str) -> datetime | None:
    comment_zone: int | None = None
    for comment in _COMMENT.findall(value):
        if comment_zone is None:
            comment_zone = _named_zone(comment)
    text = _COMMENT.sub(" ", value)

    iso = _ISO.search(text)
    if iso is not None:
        if iso.group(7):
            offset = 0
        elif iso.group(8):
            offset = int(iso.group(9)) * 60 + int(iso.group(10))
            if int(iso.group(10)) >= 60:
                return None
            if iso.group(8) == "-":
                offset = -offset
        else:
            offset = comment_zone or 0
        return _build(
            int(iso.group(1)),
            int(iso.group(2)),
            int(iso.group(3)),
            int(iso.group(4) or 0),
            int(iso.group(5) or 0),
            int(iso.group(6) or 0),
            offset,
        )

    month = None
    numbers: list[str] = []
    clock: tuple[int, int, int] | None = None
    pm: bool | None = None
    offset: int | None = None
    named: int | None = None
    for tok in _TOKEN.finditer(text):
        if tok.group(1) is not None:
            if clock is None:
                clock = (int(tok.group(1)), int(tok.group(2)), int(tok.group(3) or 0))
        elif tok.group(4) is not None:
            digits = tok.group(5) + (tok.group(6) or "")
            if clock is not None and offset is None:
                # After the clock a signed number is the zone: +0300, -08:00, GMT+9.
                if tok.group(6) is None and len(tok.group(5)) <= 2:
                    hours, minutes = int(tok.group(5)), 0
                elif tok.group(6) is not None:
                    hours, minutes = int(tok.group(5)), int(tok.group(6))
                else:
                    return None
                if minutes >= 60:
                    return None
                offset = hours * 60 + minutes
                if tok.group(4) == "-":
                    offset = -offset
            elif clock is None:
                numbers.append(digits)  # "8-Oct-2002": the dash is a separator
        elif tok.group(7) is not None:
            numbers.append(tok.group(7).lstrip("+-"))
        else:
            word = tok.group(8).lower()
            if month is None and word in _MONTH_WORDS:
                month = _MONTH_WORDS[word]
            elif word in ("am", "pm"):
                pm = word == "pm"
            elif word[:3] in _WEEKDAYS:
                continue
            elif named is None and word in _ZONES:
                named = _ZONES[word]
    if month is None:
        return None
    day = year = None
    for num in numbers:
        if len(num) >= 3 and year is None:
            year = _year(num)
        elif len(num) <= 2 and day is None:
            day = int(num)
        elif len(num) <= 2 and year is None:
            year = _year(num)
    if day is None or year is None:
        return None
    hour, minute, second = clock or (0, 0, 0)
    if pm is not None:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if pm else 0)
    if offset is None:
        offset = named if named is not None else (comment_zone or 0)
    return _build(year, month, day, hour, minute, second, offset)
