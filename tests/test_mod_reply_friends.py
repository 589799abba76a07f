"""reply and friends: the sent-folder index, never DNS; unknown without a sent folder."""

from __future__ import annotations

import email
import email.policy
import email.utils
import re

import pytest
from mod_local_support import CORPUS, msg, run_over_corpus, services

from mailstats.mail.addresses import normalize_msgid
from mailstats.modules.friends import FriendsModule
from mailstats.modules.reply import ReplyModule
from mailstats.services import SentIndex

REPLY, FRIENDS = ReplyModule(), FriendsModule()

SENT_ID = "CAH7xq=2Lk9@mail.example.org"
INDEX = SentIndex(
    recipients={"bob@partner.example", "alice@uni.example"},
    message_ids={normalize_msgid(f"<{SENT_ID}>"), normalize_msgid("<older.1@example.org>")},
    messages=2,
)

REPLY_MSG = f"""\
Received: from mail.partner.example (mail.partner.example [198.51.100.20])
\tby mx1.example.org with ESMTPS; Thu, 02 Feb 2023 09:12:44 +0100
From: Bob Miller <Bob@Partner.example>
To: Dana Whitfield <dana@example.org>
Subject: Re: contract draft
In-Reply-To: <{SENT_ID}>
References: <older.1@example.org>
 <{SENT_ID}>
Message-ID: <a1b2c3@partner.example>
Date: Thu, 2 Feb 2023 09:12:40 +0100

"""

THREAD_ONLY_REFS = """\
From: alice@uni.example
Subject: Re: Re: seminar
References: <unrelated@lists.example> <older.1@example.org>

"""

SPAM = """\
From: "PayPal" <service@paypa1-secure.example>
To: undisclosed-recipients:;
Subject: Re: your account
In-Reply-To: <fake.123@paypa1-secure.example>

"""


def test_reply_to_sent_message() -> None:
    r = REPLY.evaluate(msg(REPLY_MSG), services(sent_index=INDEX))
    assert r["in_reply_to_sent"] is True
    assert SENT_ID in r["_why"]["in_reply_to_sent"]


def test_references_alone_count() -> None:
    assert REPLY.evaluate(msg(THREAD_ONLY_REFS), services(sent_index=INDEX))["in_reply_to_sent"]


def test_fake_re_subject_is_not_a_reply() -> None:
    assert REPLY.evaluate(msg(SPAM), services(sent_index=INDEX))["in_reply_to_sent"] is False


def test_no_reply_headers_is_false() -> None:
    r = REPLY.evaluate(msg("From: x@y.example\nSubject: hello\n\n"), services(sent_index=INDEX))
    assert r["in_reply_to_sent"] is False


def test_reply_unknown_without_sent_folder() -> None:
    assert REPLY.evaluate(msg(REPLY_MSG), services())["in_reply_to_sent"] is None


def test_reply_empty_sent_folder_is_false() -> None:
    r = REPLY.evaluate(msg(REPLY_MSG), services(sent_index=SentIndex()))
    assert r["in_reply_to_sent"] is False


@pytest.mark.parametrize(
    "header",
    [
        "In-Reply-To: <<<>>>\nReferences: <\n\n",
        "In-Reply-To: not an id at all\n\n",
        "References: " + "<x@y> " * 2000 + "\n\n",
        "In-Reply-To: =?utf-8?b?invalid?=\n\n",
    ],
)
def test_reply_malformed(header: str) -> None:
    assert REPLY.evaluate(msg(header), services(sent_index=INDEX))["in_reply_to_sent"] is False


def test_friend_case_insensitive() -> None:
    r = FRIENDS.evaluate(msg(REPLY_MSG), services(sent_index=INDEX))
    assert r["from_friend"] is True


def test_bare_from_address_friend() -> None:
    assert FRIENDS.evaluate(msg(THREAD_ONLY_REFS), services(sent_index=INDEX))["from_friend"]


def test_stranger() -> None:
    assert FRIENDS.evaluate(msg(SPAM), services(sent_index=INDEX))["from_friend"] is False


def test_friend_display_name_is_not_enough() -> None:
    # The display name claims to be a friend; the address is not.
    m = msg('From: "bob@partner.example" <bob@partner-example.biz>\n\n')
    assert FRIENDS.evaluate(m, services(sent_index=INDEX))["from_friend"] is False


def test_friends_unknown_cases() -> None:
    assert FRIENDS.evaluate(msg(REPLY_MSG), services())["from_friend"] is None
    for header in ("Subject: no from\n\n", "From: undisclosed\n\n", "From: <>\n\n", ""):
        assert FRIENDS.evaluate(msg(header), services(sent_index=INDEX))["from_friend"] is None


def test_class_flags() -> None:
    assert REPLY.uses_sent_index and FRIENDS.uses_sent_index


@pytest.mark.corpus
def test_corpus() -> None:
    empty = run_over_corpus(REPLY, services(sent_index=SentIndex()))
    assert empty["in_reply_to_sent"][True] == 0
    assert empty["in_reply_to_sent"][None] == 0
    none = run_over_corpus(FRIENDS, services())
    assert none["from_friend"][None] == none["_n"]

    # The corpus has no sent mail, so pretend the user sent every corpus message and wrote to
    # every list-archive poster: replies within threads and those posters must then be
    # found; expected counts come from a plain regex and the standard library's parser.
    msgids: set[str] = set()
    senders: set[str] = set()
    refs: list[set[str]] = []
    froms: list[str] = []
    for path in sorted(CORPUS.rglob("*.eml")):
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
        mid = re.findall(r"<([^<>\s]+)>", str(parsed.get("Message-ID") or ""))
        frm = email.utils.parseaddr(str(parsed.get("From") or ""))[1].lower()
        msgids.update(mid)
        if "lfdr_lists" in path.name and frm:
            senders.add(frm)
        text = " ".join(str(parsed.get(h) or "") for h in ("In-Reply-To", "References"))
        refs.append(set(re.findall(r"<([^<>\s]+)>", text)))
        froms.append(frm)
    expected_replies = sum(bool(r & msgids) for r in refs)
    expected_friends = sum(f in senders for f in froms)
    index = SentIndex(recipients=senders, message_ids={normalize_msgid(f"<{m}>") for m in msgids})
    replies = run_over_corpus(REPLY, services(sent_index=index))["in_reply_to_sent"][True]
    friends = run_over_corpus(FRIENDS, services(sent_index=index))["from_friend"][True]
    assert expected_replies >= 5 and expected_friends > 50
    # Two different parsers: allow a few messages of difference on odd headers.
    assert abs(replies - expected_replies) <= 3, (replies, expected_replies)
    assert abs(friends - expected_friends) <= 5, (friends, expected_friends)
