"""datetime: sender's local hour/weekday, Date vs topmost Received skew, missing/future dates."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta

import pytest
from mod_local_support import CORPUS, msg, run_over_corpus, services

from mailstats.modules.datetime import DatetimeModule

MOD = DatetimeModule()

TOP = (
    "Received: from mx1.example.org (mx1.example.org [192.0.2.10])\n"
    "\tby imap.example.org with LMTP id 8Jx; Wed, 01 Feb 2023 12:00:00 +0100\n"
)
LOWER = (
    "Received: from mail.shop.example (mail.shop.example [203.0.113.5])\n"
    "\tby mx1.example.org with ESMTPS id 4P6; Wed, 01 Feb 2023 11:59:58 +0100\n"
)


def run(date: str | None, received: str = TOP + LOWER) -> dict:
    head = received + (f"Date: {date}\n" if date is not None else "")
    return MOD.evaluate(msg(head + "From: a@shop.example\nSubject: s\n\n"), services())


def test_normal_message_sender_local_time() -> None:
    # 02:55 in Los Angeles (-0800) is 11:55 CET: hour and weekday are the sender's own.
    r = run("Wed, 1 Feb 2023 02:55:00 -0800")
    assert r["hour"] == 2 and r["weekday"] == 2  # Wednesday, Monday = 0
    assert r["skew_s"] == 300  # 12:00:00+01:00 minus 11:55:00+01:00
    assert (r["date_missing"], r["date_malformed"]) == (False, False)
    assert (r["future_date"], r["large_skew"]) == (False, False)


def test_weekday_crosses_midnight_in_sender_zone() -> None:
    # 23:30 on Tuesday in New York is already Wednesday in UTC: the sender's Tuesday counts.
    r = run("Tue, 31 Jan 2023 23:30:00 -0500")
    assert r["weekday"] == 1 and r["hour"] == 23


def test_future_date_relative_to_received() -> None:
    r = run("Wed, 1 Feb 2023 14:00:01 +0100")  # 2 h after delivery
    assert r["future_date"] is True and r["large_skew"] is False
    assert r["skew_s"] == -7201
    # 59 minutes ahead is clock drift, not a future date
    assert run("Wed, 1 Feb 2023 12:59:00 +0100")["future_date"] is False


def test_large_skew_both_directions() -> None:
    old = run("Sun, 29 Jan 2023 12:00:00 +0100")
    assert old["large_skew"] is True and old["future_date"] is False
    assert old["skew_s"] == 3 * 86400
    assert run("Fri, 3 Feb 2023 12:00:00 +0100")["large_skew"] is True
    assert run("Thu, 2 Feb 2023 11:00:00 +0100")["large_skew"] is False  # 23 h


def test_missing_date() -> None:
    r = run(None)
    assert r["date_missing"] is True
    assert r["date_malformed"] is None
    assert r["future_date"] is None and r["large_skew"] is None
    assert r["hour"] is None and r["weekday"] is None and r["skew_s"] is None


def test_empty_date_counts_as_missing() -> None:
    assert run("   ")["date_missing"] is True


def test_malformed_date() -> None:
    r = run("yesterday at noon, more or less")
    assert r["date_missing"] is False and r["date_malformed"] is True
    assert r["future_date"] is None and r["large_skew"] is None and r["hour"] is None


def test_no_received_compares_with_now() -> None:
    future = (datetime.now(UTC) + timedelta(days=2)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    r = run(future, received="")
    assert r["future_date"] is True
    assert r["large_skew"] is None and r["skew_s"] is None
    past = run("Wed, 1 Feb 2023 02:55:00 -0800", received="")
    assert past["future_date"] is False and past["hour"] == 2


def test_topmost_received_without_time_falls_back_to_next() -> None:
    broken = "Received: from localhost by localhost\n"
    r = run("Wed, 1 Feb 2023 11:59:00 +0100", received=broken + LOWER)
    assert r["skew_s"] == 58


@pytest.mark.parametrize(
    "date",
    [
        "Mon, 1 Jan 0001 00:00:00 +2359",
        "Fri, 31 Dec 9999 23:59:59 -2359",
        "\x00\xff",
        "Thu, 32 Jan 2023 10:00:00 +0000",
        "=?utf-8?q?Mittwoch=2C_1_Feb_2023?=",
    ],
)
def test_extreme_dates_never_raise(date: str) -> None:
    r = run(date)
    for c in MOD.checks:
        assert r[c] in (True, False, None)


def test_garbage_header_block() -> None:
    r = MOD.evaluate(msg(b"\xff\xfe\x00 not a header\n\n"), services())
    assert r["date_missing"] is True


@pytest.mark.corpus
def test_corpus() -> None:
    counts = run_over_corpus(MOD, services())
    n = counts["_n"]
    # Independent count with the standard library: rspamd's minimal test messages (about
    # half of them) and four SpamAssassin samples have no Date; all real mail has one.
    no_date = 0
    for path in CORPUS.rglob("*.eml"):
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
        no_date += not str(parsed.get("Date") or "").strip()
    assert counts["date_missing"][True] == no_date
    assert 50 < no_date < n // 5
    assert counts["date_malformed"][True] < n // 20
    # Most real mail arrives within a day of its Date; a minority (moderated lists, old
    # fetchmail setups, forged dates in spam) does not.
    assert counts["large_skew"][False] > 3 * counts["large_skew"][True] > 0
    assert 0 < counts["future_date"][True] < n // 10
