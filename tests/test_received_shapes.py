"""Received shapes where the sender's HELO used to win, and the trust boundary.

Every address is made up; most are public-looking (81.2.69.142, 8.8.8.8, 2a02:...) rather than
documentation ranges, since code that special-cases 192.0.2.0/24 would pass on those alone.
The rule under test: the IP that counts is the one the receiving MTA saw on its socket; a
HELO/EHLO argument, wherever and however an MTA writes it, is only ever the ``helo`` field.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailstats.mail.received import Hop, connected, find_origin, is_retrieval, parse_received
from mailstats.services import Identity

DATE = "; Mon, 1 Jan 2024 10:00:00 +0000"
EXIM_ID = "1qAbCd-000Xyz-Ab"

# (header without date, ip, helo, rdns)
SHAPES = [
    pytest.param(
        f"from [81.2.69.142] (helo=[8.8.8.8]) by mx.example.org with esmtp (Exim 4.96) "
        f"id {EXIM_ID}",
        "81.2.69.142",
        "[8.8.8.8]",
        "",
        id="exim-literal-helo-literal",
    ),
    pytest.param(
        f"from [81.2.69.142] (port=50387 helo=[8.8.8.8]) by mx.example.org with esmtp "
        f"(Exim 4.96) id {EXIM_ID}",
        "81.2.69.142",
        "[8.8.8.8]",
        "",
        id="exim-port-helo",
    ),
    pytest.param(
        f"from [2a02:8108:1:2::3] (helo=[8.8.8.8]) by mx.example.org with esmtpsa (Exim 4.96) "
        f"id {EXIM_ID}",
        "2a02:8108:1:2::3",
        "[8.8.8.8]",
        "",
        id="exim-ipv6-helo-literal",
    ),
    pytest.param(
        f"from relay.example.net ([81.2.69.142]:51234 helo=[8.8.8.8]) by mx.example.org with "
        f"esmtps (Exim 4.96) id {EXIM_ID}",
        "81.2.69.142",
        "[8.8.8.8]",
        "relay.example.net",
        id="exim-rdns-port-helo",
    ),
    pytest.param(
        "from mta.example.net ([81.2.69.142:50387] helo=[8.8.8.8]) by mx.example.org "
        "(ecelerity 4.2.38.62370 r(:)) with ESMTP id 2A/0B-01234-56789ABC",
        "81.2.69.142",
        "[8.8.8.8]",
        "",
        id="ecelerity",
    ),
    pytest.param(
        "from [81.2.69.142] (account u@example.edu HELO [10.10.10.10]) by mx.example.org "
        "(CommuniGate Pro SMTP 6.3.4) with ESMTPA id 123456",
        "81.2.69.142",
        "[10.10.10.10]",
        "",
        id="communigate-account-helo",
    ),
    pytest.param(
        "from host.example.com (account x@example.com [81.2.69.142] verified) by "
        "mx.example.org (CommuniGate Pro SMTP 6.3.4) with ESMTPA id 123456",
        "81.2.69.142",
        "host.example.com",
        "",
        id="communigate-account-verified",
    ),
    pytest.param(
        "from source (81.2.69.142) (HELO host [8.8.8.8]) by mx.example.org with SMTP",
        "81.2.69.142",
        "host",
        "",
        id="helo-comment-with-literal",
    ),
    pytest.param(
        "from unknown (HELO [8.8.8.8]) (81.2.69.142) by mx.example.org with SMTP",
        "81.2.69.142",
        "[8.8.8.8]",
        "",
        id="qmail-helo-literal",
    ),
    pytest.param(
        "from relay.example.net (81.2.69.142:42001) by mx.example.org with [XMail 1.27 ESMTP "
        "Server] id <S1>",
        "81.2.69.142",
        "relay.example.net",
        "",
        id="paren-ip-port",
    ),
    pytest.param(
        "from relay.example.net (relay.example.net) [81.2.69.142.42001] (mail) by "
        "mx.example.org with esmtp (Exim 3.35 #1) id 1CO5y7-0001vC-00",
        "81.2.69.142",
        "relay.example.net",
        "",
        id="dotted-port",
    ),
    pytest.param(
        "from mail.example.com (81.2.69.142) by mx.example.org with SMTP",
        "81.2.69.142",
        "mail.example.com",
        "",
        id="qmail-name-is-helo",
    ),
    pytest.param(
        "from mail.example.com (81.2.69.142) by mx.example.org (InterMail vM.8 cp.net) with "
        "SMTP id 20240101",
        "81.2.69.142",
        "mail.example.com",
        "",
        id="cp-net-name-is-helo",
    ),
    pytest.param(
        "from sender.example.com (softdnserr [::ffff:81.2.69.142]) by mx.example.org with esmtp",
        "81.2.69.142",
        "sender.example.com",
        "",
        id="softdnserr",
    ),
    pytest.param(
        "from softdnserror (HELO two) (81.2.69.142) by softdnserror with SMTP",
        "81.2.69.142",
        "two",
        "",
        id="softdnserror-qmail",
    ),
    pytest.param(
        "from sender.example.com (forged.example.net [81.2.69.142] (may be forged)) by "
        "mx.example.org (8.15.2/8.15.2) with ESMTP id 401ABC",
        "81.2.69.142",
        "sender.example.com",
        "",
        id="may-be-forged",
    ),
    pytest.param(
        'from relay.example.net ([81.2.69.142]:18952 "EHLO [8.8.8.8]" rhost-flags-OK-OK-OK-OK) '
        "by vger.example.org with ESMTP id S1",
        "81.2.69.142",
        "[8.8.8.8]",
        "relay.example.net",
        id="zmailer-quoted-ehlo",
    ),
    pytest.param(
        "from x by [8.8.8.8] (unknown [81.2.69.142]) by mx.example.org (Postfix) with ESMTP id A",
        "81.2.69.142",
        "x",
        "",
        id="helo-with-by-inside",
    ),
    pytest.param(
        "from x ([8.8.8.8]) (unknown [81.2.69.142]) by mx.example.org (Postfix) with ESMTP id A",
        "81.2.69.142",
        "x",
        "",
        id="helo-with-comment-inside",
    ),
    pytest.param(
        "from s\x00afe.example.com (s\x01afe.example.com [81.2.\x0069.142]) by mx.example.org "
        "(Postfix) with ESMTP id A",
        "81.2.69.142",
        "safe.example.com",
        "safe.example.com",
        id="control-bytes",
    ),
]


@pytest.mark.parametrize("header,ip,helo,rdns", SHAPES)
def test_shapes(header, ip, helo, rdns):
    hop = parse_received(header + DATE)
    assert (hop.ip, hop.helo, hop.rdns) == (ip, helo, rdns)
    assert hop.timestamp is not None and hop.raw == header + DATE


@pytest.mark.parametrize(
    "by_part,by",
    [
        ("by mx.example.org; by2.example.org (Postfix) with ESMTP id A", "mx.example.org"),
        ("by mx.example.org, with ESMTP id A", "mx.example.org"),
        ("by postmaster@mx.example.org with ESMTP id A", "mx.example.org"),
        ("by mx.example.org with ESMTP by AntispamTT id A", "mx.example.org"),
        ("by mx.example.org by uid 89 with qmail-scanner-1.14", "mx.example.org"),
    ],
)
def test_by_host_is_a_host(by_part, by):
    hop = parse_received("from x (x.example.net [81.2.69.142]) " + by_part + DATE)
    assert hop.by == by and hop.ip == "81.2.69.142"


@pytest.mark.parametrize("placeholder", ["unknown", "softdnserr", "unverified", "may", "rdns"])
def test_placeholders_are_never_rdns(placeholder):
    hop = parse_received(
        f"from h.example.net ({placeholder} [81.2.69.142]) by mx.example.org"
        f" (Postfix) with ESMTP id A" + DATE
    )
    assert hop.rdns == "" and hop.ip == "81.2.69.142"


# --- no HELO can become the origin ----------------------------------------------------------

_OCTET = st.integers(0, 255)
_V4 = st.tuples(_OCTET, _OCTET, _OCTET, _OCTET).map(lambda t: ".".join(map(str, t)))
_V6 = st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8).map(
    lambda g: ":".join(f"{x:x}" for x in g)
)
_PORT = st.integers(1, 65535).map(str)
_LITERAL = st.one_of(
    _V4,
    _V6,
    _V4.map(lambda ip: f"[{ip}]"),
    _V6.map(lambda ip: f"[IPv6:{ip}]"),
    st.tuples(_V4, _PORT).map(lambda t: f"[{t[0]}]:{t[1]}"),
    st.tuples(_V4, _PORT).map(lambda t: f"[{t[0]}:{t[1]}]"),
    st.tuples(_V4, _PORT).map(lambda t: f"[{t[0]}.{t[1]}]"),
    st.tuples(_V4, _PORT).map(lambda t: f"{t[0]}:{t[1]}"),
    _V4.map(lambda ip: f"user@{ip}"),
    _V4.map(lambda ip: f"[::ffff:{ip}]"),
)
_WORD = st.one_of(
    _LITERAL,
    st.sampled_from(
        [
            "x",
            "mail.example.net",
            "unknown",
            "HELO",
            "EHLO",
            "helo=",
            "verified",
            "may be forged",
            "account",
            '"',
            "'",
            "localhost",
            "[",
            "]",
            ":",
            ";",
            "from",
            "by",
            "with",
            "id",
            "for",
            "via",
            "by y with POP3",
        ]
    ),
)
# A HELO argument as a client can send it: words (literals in every shape, place-holders,
# clause keywords, ";"), spaces, and parentheses nested to any depth.
_HELO = st.recursive(
    st.lists(_WORD, min_size=1, max_size=4).map(" ".join),
    lambda inner: st.one_of(
        inner.map(lambda s: f"({s})"),
        st.tuples(inner, inner).map(" ".join),
        st.tuples(inner, inner).map("".join),
    ),
    max_leaves=6,
)
_REAL = "81.2.69.142"
# How receiving MTAs write the HELO around the address they saw (81.2.69.142).
_TEMPLATES = [
    "from {h} (unknown [81.2.69.142]) by mx.example.org (Postfix) with ESMTP id A1",
    "from {h} (mail.example.net [81.2.69.142]) (using TLSv1.3 with cipher X (256/256 bits)) "
    "by mx.example.org (Postfix) with ESMTPS id A1 for <u@example.org>",
    "from {h} (user@mail.example.net [81.2.69.142] (may be forged)) by mx.example.org "
    "(8.15.2/8.15.2) with ESMTP id x1",
    "from [81.2.69.142] (helo={h}) by mx.example.org with esmtp (Exim 4.96) id " + EXIM_ID,
    "from [81.2.69.142] (port=50387 helo={h}) by mx.example.org with esmtp (Exim 4.96) id "
    + EXIM_ID,
    "from mail.example.net ([81.2.69.142]:50387 helo={h}) by mx.example.org with esmtps "
    "(Exim 4.96) id " + EXIM_ID,
    "from mta.example.net ([81.2.69.142:50387] helo={h}) by mx.example.org (ecelerity 4.2) "
    "with ESMTP id 2A/0B",
    "from mail.example.net (HELO {h}) (81.2.69.142) by mx.example.org with SMTP",
    "from unknown (HELO {h}) (user@81.2.69.142) by mx.example.org with ESMTPA",
    "from [81.2.69.142] (account u@example.edu HELO {h}) by mx.example.org "
    "(CommuniGate Pro SMTP 6.3) with ESMTPA id 1",
    'from mail.example.net ([81.2.69.142]:1 "EHLO {h}" rhost-flags-OK-OK-OK-OK) by '
    "vger.example.org with ESMTP id S1",
    "from {h} (81.2.69.142) by mx.example.org (10.0.0.1) with Microsoft SMTP Server id 15.2",
    "from {h} ([81.2.69.142]) by mx.example.org with Microsoft SMTPSVC(10.0.1)",
    "from {h} (unknown [81.2.69.142]) by mx.example.org (Postfix) with ESMTP id A1 for "
    "<u@example.org>",
]


@settings(derandomize=True, max_examples=600, deadline=None)
@given(helo=_HELO, template=st.sampled_from(_TEMPLATES), forged=_V4)
def test_no_helo_ever_becomes_the_origin(helo, template, forged):
    """Any HELO, in any position an MTA writes it, above a forged line: the origin stays
    the address the receiving MTA saw."""
    top = parse_received(template.format(h=helo) + DATE)
    assert top.ip == _REAL, (template, helo, top)
    below = parse_received(
        f"from x (x [{forged}]) by mail.example.net (Postfix) with ESMTP id B" + DATE
    )
    found = find_origin([top, below], Identity())
    assert found is not None and found[1].ip == _REAL


# --- trust boundary ------------------------------------------------------------------------


def _chain(*lines: str) -> list[Hop]:
    return [parse_received(line + DATE) for line in lines]


def test_trusted_name_matches_the_verified_rdns_only():
    # The sender says "mx.myisp.example" as its HELO; Postfix could not verify a name.
    hops = _chain(
        "from mx.myisp.example (unknown [81.2.69.160]) by mx.myisp.example (Postfix) with "
        "ESMTP id A",
        "from x (x [8.8.8.8]) by mx.myisp.example (Postfix) with ESMTP id B",
    )
    found = find_origin(hops, Identity(trusted_relays=("myisp.example",)))
    assert found is not None and found[1].ip == "81.2.69.160"
    # The same relay with a verified rDNS is trusted, and the hop below it is the origin.
    hops = _chain(
        "from edge.myisp.example (edge.myisp.example [81.2.69.160]) by store.myisp.example "
        "(Postfix) with ESMTP id A",
        "from sender.example.com (sender.example.com [8.8.8.8]) by edge.myisp.example "
        "(Postfix) with ESMTP id B",
    )
    found = find_origin(hops, Identity(trusted_relays=("myisp.example",)))
    assert found is not None and found[1].ip == "8.8.8.8"


def test_trust_needs_a_connected_chain():
    trusted = Identity(trusted_relays=("81.2.69.0/24",))
    # The second line claims to be from a trusted address but was not written by the hop
    # above (its by is some other host): trust stops there, and it is the origin.
    hops = _chain(
        "from edge.isp.example (edge.isp.example [81.2.69.160]) by store.isp.example (Postfix)"
        " with ESMTP id A",
        "from y (y [81.2.69.161]) by elsewhere.example.net (Postfix) with ESMTP id B",
        "from z (z [8.8.8.8]) by y (Postfix) with ESMTP id C",
    )
    assert find_origin(hops, trusted)[1].ip == "81.2.69.161"
    # Connected by name, by the sender's address written as the by host, or by by_ip.
    for by in ("edge.isp.example", "[81.2.69.160]", "edge.isp.example (81.2.69.160)"):
        hops = _chain(
            "from edge.isp.example (edge.isp.example [81.2.69.160]) by store.isp.example "
            "(Postfix) with ESMTP id A",
            f"from relay2 (relay2.isp.example [81.2.69.161]) by {by} with ESMTP id B",
            "from z (z.example.com [8.8.8.8]) by relay2.isp.example with ESMTP id C",
        )
        assert find_origin(hops, trusted)[1].ip == "8.8.8.8", by


def test_exchange_names_connect_across_domains():
    above = parse_received(
        "from BN8NAM12FT013.eop-nam12.prod.protection.outlook.com (2603:10b6:408:e1:cafe::49) "
        "by BN9PR03CA0541.outlook.office365.com (2603:10b6:408:131::6) with Microsoft SMTP "
        "Server id 15.20.1" + DATE
    )
    below = parse_received(
        "from mail.example.com (81.2.69.142) by BN8NAM12FT013.mail.protection.outlook.com "
        "(10.13.182.133) with Microsoft SMTP Server id 15.20.2" + DATE
    )
    assert above.by_ip == "2603:10b6:408:131::6"
    assert connected(above, below)
    assert not connected(above, parse_received("from a (a [8.8.8.8]) by mx.example.org" + DATE))


@pytest.mark.parametrize(
    "top",
    [
        "from mail.example.net [81.2.69.170] by localhost with POP3 (fetchmail-6.4.37) for "
        "<u@localhost> (single-drop)",
        "from imap.example.net (imap.example.net [81.2.69.170]) by localhost with IMAP "
        "(fetchmail-6.4.37) for <u@localhost> (single-drop)",
        "from pop.example.net (pop.example.net [81.2.69.170]) by pc.example.org with POP3S "
        "(getmail 6.18)",
    ],
)
def test_retrieval_line_is_never_the_origin(top):
    hops = _chain(
        "from localhost (localhost [127.0.0.1]) by pc.example.org (Postfix) with ESMTP id A",
        top,
        "from sender.example.com (sender.example.com [8.8.8.8]) by mail.example.net (Postfix) "
        "with ESMTP id B",
    )
    assert is_retrieval(hops[1])
    assert find_origin(hops, Identity())[1].ip == "8.8.8.8"


def test_a_helo_cannot_fake_a_retrieval_line():
    hop = parse_received(
        "from x by y with POP3 (unknown [81.2.69.142]) by mx.example.org "
        "(Postfix) with ESMTP id A" + DATE
    )
    assert hop.protocol == "ESMTP" and not is_retrieval(hop) and hop.ip == "81.2.69.142"
