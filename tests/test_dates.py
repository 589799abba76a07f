"""Date parsing: RFC 5322 plus the junk real spam carries; expected values worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailstats.mail import dates
from mailstats.mail.dates import parse_date


def tz(hours: float) -> timezone:
    return timezone(timedelta(minutes=round(hours * 60)))


CASES = [
    ("Tue, 8 Oct 2002 13:56:43 -0700", datetime(2002, 10, 8, 13, 56, 43, tzinfo=tz(-7))),
    ("Tue, 8 Oct 2002 13:56:43 -0700 (PDT)", datetime(2002, 10, 8, 13, 56, 43, tzinfo=tz(-7))),
    ("08 Oct 2002 13:56:43 +0530", datetime(2002, 10, 8, 13, 56, 43, tzinfo=tz(5.5))),
    ("Mon, 1 Jan 2024 00:00 +0000", datetime(2024, 1, 1, 0, 0, tzinfo=UTC)),
    # named zones (RFC 5322 obsolete zones and common extras)
    ("Thu, 3 Oct 1991 13:04:23 EDT", datetime(1991, 10, 3, 13, 4, 23, tzinfo=tz(-4))),
    ("Wed, 5 Feb 2003 10:00:00 PST", datetime(2003, 2, 5, 10, tzinfo=tz(-8))),
    ("Wed, 5 Feb 2003 10:00:00 EST", datetime(2003, 2, 5, 10, tzinfo=tz(-5))),
    ("Thu, 5 Jun 2003 10:00:00 UT", datetime(2003, 6, 5, 10, tzinfo=UTC)),
    ("Thu, 5 Jun 2003 10:00:00 GMT", datetime(2003, 6, 5, 10, tzinfo=UTC)),
    ("Thu, 5 Jun 2003 10:00:00 CEST", datetime(2003, 6, 5, 10, tzinfo=tz(2))),
    # zone only in the comment
    ("Thu, 5 Jun 2003 10:00:00 (PST)", datetime(2003, 6, 5, 10, tzinfo=tz(-8))),
    # numeric zone wins over the comment
    ("Sat, 12 Jul 2003 10:00:00 +0100 (Eire)", datetime(2003, 7, 12, 10, tzinfo=tz(1))),
    # no zone at all: UTC by convention
    ("Fri, 6 Dec 2002 09:21:07", datetime(2002, 12, 6, 9, 21, 7, tzinfo=UTC)),
    # unknown name: UTC
    ("Fri, 6 Dec 2002 09:21:07 XYZ", datetime(2002, 12, 6, 9, 21, 7, tzinfo=UTC)),
    ("Fri, 6 Dec 2002 09:21:07 -0000", datetime(2002, 12, 6, 9, 21, 7, tzinfo=UTC)),
    # two- and three-digit years
    ("Thu, 3 Oct 91 13:04:23 -0700", datetime(1991, 10, 3, 13, 4, 23, tzinfo=tz(-7))),
    ("Fri, 9 Aug 02 11:35:15 +0100", datetime(2002, 8, 9, 11, 35, 15, tzinfo=tz(1))),
    ("9 Aug 49 11:35:15 +0000", datetime(2049, 8, 9, 11, 35, 15, tzinfo=UTC)),
    ("9 Aug 50 11:35:15 +0000", datetime(1950, 8, 9, 11, 35, 15, tzinfo=UTC)),
    ("9 Aug 102 11:35:15 +0000", datetime(2002, 8, 9, 11, 35, 15, tzinfo=UTC)),
    # missing weekday, missing seconds, single-digit fields
    ("5 Feb 2004 0:24 +0500", datetime(2004, 2, 5, 0, 24, tzinfo=tz(5))),
    # spam junk: month first, comma, AM/PM
    ("May, 22 2002 2:34:40 PM +0300", datetime(2002, 5, 22, 14, 34, 40, tzinfo=tz(3))),
    ("Aug, 01 2002 12:53:40 AM -0000", datetime(2002, 8, 1, 0, 53, 40, tzinfo=UTC)),
    ("02 Feb 02 12:00:00 PM", datetime(2002, 2, 2, 12, 0, tzinfo=UTC)),
    # asctime, ISO 8601, GMT+N, dashes, fractional seconds, full month names
    ("Sat Sep 21 10:00:00 2002", datetime(2002, 9, 21, 10, tzinfo=UTC)),
    ("2023-12-12T16:50:34Z", datetime(2023, 12, 12, 16, 50, 34, tzinfo=UTC)),
    ("2023-12-12 16:50:34.963106324 +0100 CET", datetime(2023, 12, 12, 16, 50, 34, tzinfo=tz(1))),
    ("Fri, 13 Sep 2002 10:00:00 GMT+9", datetime(2002, 9, 13, 10, tzinfo=tz(9))),
    ("Wed, 04 Sep 2002 02:30:43 -08:00", datetime(2002, 9, 4, 2, 30, 43, tzinfo=tz(-8))),
    ("8-Oct-2002 10:00:00 -0100", datetime(2002, 10, 8, 10, tzinfo=tz(-1))),
    ("Tue, 12 Dec 2023 16:50:34.814 +0000 (UTC)", datetime(2023, 12, 12, 16, 50, 34, tzinfo=UTC)),
    ("Tuesday, 8 October 2002 13:56:43 +0200", datetime(2002, 10, 8, 13, 56, 43, tzinfo=tz(2))),
    # leap second clamped
    ("Sat, 31 Dec 2016 23:59:60 +0000", datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)),
    # surrounding whitespace and folding leftovers
    ("  Mon, 1 Jan 2024  00:00:00   +0000  ", datetime(2024, 1, 1, tzinfo=UTC)),
]


@pytest.mark.parametrize("value,expected", CASES)
def test_parse(value, expected):
    got = parse_date(value)
    assert got == expected
    assert got.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "12-02-2023",  # numeric month order is ambiguous
        "Tue, 31 Jun 2002 10:00:00 +0000",  # no 31 June
        "Tue, 30 Feb 2002 10:00:00 +0000",
        "Tue, 1 Jun 2002 25:00:00 +0000",
        "Tue, 1 Jun 2002 10:61:00 +0000",
        "Tue, 1 Jun 2002 10:00:00 +2500",  # offset of a day or more
        "Tue, 1 Jun 2002 10:00:00 +0199",  # 99 minutes
        "Tue, 0 Jun 2002 10:00:00 +0000",
        "Tue, 1 Foo 2002 10:00:00 +0000",
        "Mon, 99 Jan 9999 99:99:99 +9999",
        "May, 22 2002 13:34:40 PM +0300",  # 13 PM
        "Mon, 1 Jan 20000 10:00:00 +0000",
    ],
)
def test_out_of_range_is_none(value):
    assert parse_date(value) is None


@pytest.mark.parametrize("value", [None, 12, b"Mon, 1 Jan 2024 00:00:00 +0000", "(" * 1000, "\x00"])
def test_never_raises(value):
    assert parse_date(value) is None  # type: ignore[arg-type]


def test_always_aware():
    for value, _ in CASES:
        assert parse_date(value).tzinfo is not None


_TWO = st.integers(0, 99).map(lambda n: f"{n:02d}")


@st.composite
def _stamp_shaped(draw: st.DrawFn) -> str:
    """Strings in and around the canonical "Tue, 1 Dec 2026 19:25:32 +0000 (UTC)" shape."""
    weekday = draw(st.sampled_from(["", "Tue, ", "Xyz, ", "tue, ", "Tue,", "Tuesday, "]))
    day = draw(st.sampled_from(["1", "01", "31", "32", "0", "29"]))
    month = draw(st.sampled_from(["Jan", "Feb", "Dec", "Foo", "JAN", "Sept"]))
    year = draw(st.sampled_from(["2026", "1999", "0000", "9999", "2024"]))
    clock = ":".join(draw(st.lists(_TWO, min_size=3, max_size=3)))
    zone = draw(st.sampled_from(["+", "-"])) + draw(_TWO) + draw(_TWO)
    comment = draw(st.sampled_from(["", " (UTC)", " (PST)", " (a(b)"]))
    pad = draw(st.sampled_from(["", " ", "\t"]))
    return f"{pad}{weekday}{day} {month} {year} {clock} {zone}{comment}{pad}"


@settings(max_examples=500, deadline=None, derandomize=True)
@given(_stamp_shaped())
def test_the_canonical_shortcut_reads_a_stamp_as_the_general_pattern_does(value: str) -> None:
    assert dates._parse(value) == dates._parse_general(value)
