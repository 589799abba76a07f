"""Received parsing: one row per MTA format, expected fields read off the header by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mailstats.mail.received import Hop, find_origin, is_public_ip, parse_received
from mailstats.services import Identity

# (header, helo, rdns, ip, by, protocol, id)
CASES = [
    pytest.param(
        "from mail.example.org (mail.example.org [192.1.2.10]) by mx.example.net (Postfix) "
        "with ESMTPS id 4Q1abc2XyZ for <dana@example.net>; Tue, 3 Oct 2023 14:01:02 +0200 (CEST)",
        "mail.example.org",
        "mail.example.org",
        "192.1.2.10",
        "mx.example.net",
        "ESMTPS",
        "4Q1abc2XyZ",
        id="postfix",
    ),
    pytest.param(
        "from [10.0.0.7] (unknown [198.52.100.23]) by mx.example.net (Postfix) with ESMTPSA "
        "id 8F2C31C0A; Wed, 4 Oct 2023 09:10:11 +0000 (UTC)",
        "[10.0.0.7]",
        "",
        "198.52.100.23",
        "mx.example.net",
        "ESMTPSA",
        "8F2C31C0A",
        id="postfix-unknown-literal-helo",
    ),
    pytest.param(
        "from relay.example.com (unknown [IPv6:2a01:db8:0:0::25]) (using TLSv1.3 with cipher "
        "TLS_AES_256_GCM_SHA384 (256/256 bits)) (No client certificate requested) "
        "by mx1.example.net (Postfix) with ESMTPS id 4AbCd; Mon, 6 Jul 2015 10:36:08 +0200",
        "relay.example.com",
        "",
        "2a01:db8::25",
        "mx1.example.net",
        "ESMTPS",
        "4AbCd",
        id="postfix-ipv6-tls-comments",
    ),
    pytest.param(
        "from helo.example.com (user@rdns.example.com [203.1.113.5]) by smtp.example.net "
        "(8.14.9/8.14.9) with ESMTP id 13DFe22R006047; Tue, 13 Apr 2021 08:00:00 -0700",
        "helo.example.com",
        "rdns.example.com",
        "203.1.113.5",
        "smtp.example.net",
        "ESMTP",
        "13DFe22R006047",
        id="sendmail-ident",
    ),
    pytest.param(
        "from medlicott.example.com (IDENT:welch@medlicott.example.com [172.17.132.188]) by "
        "blackcomb.example.com (8.9.3/8.9.3) with ESMTP id VAA02021; "
        "Mon, 26 Aug 2002 21:17:00 -0400",
        "medlicott.example.com",
        "medlicott.example.com",
        "172.17.132.188",
        "blackcomb.example.com",
        "ESMTP",
        "VAA02021",
        id="sendmail-IDENT",
    ),
    pytest.param(
        "from ns3.example-hosts.com (example-hosts.com [216.12.213.215] (may be forged)) by "
        "lugh.example.org (8.9.3/8.9.3) with ESMTP id UAA23172 for <ilug@example.ie>; "
        "Sun, 28 Jul 2002 20:28:11 +0100",
        "ns3.example-hosts.com",
        "",
        "216.12.213.215",
        "lugh.example.org",
        "ESMTP",
        "UAA23172",
        id="sendmail-may-be-forged",
    ),
    pytest.param(
        "from fpc-1.example.org ([209.247.107.8]) by mandark.example.com (8.11.6/8.11.6) with "
        "ESMTP id g6I0LiR22535 for <jm@example.com>; Thu, 18 Jul 2002 01:21:45 +0100",
        "fpc-1.example.org",
        "",
        "209.247.107.8",
        "mandark.example.com",
        "ESMTP",
        "g6I0LiR22535",
        id="sendmail-no-ptr",
    ),
    pytest.param(
        "from [198.52.100.40] (helo=mail0.example.me) by mx-2.example.net with esmtps "
        "(TLS1.2:ECDHE-RSA-AES256-GCM-SHA384:256) (Exim 4.94.2) id 1nXBw3-00031a-Fy for "
        "list@example.net; Thu, 24 Mar 2022 10:00:00 +0000",
        "mail0.example.me",
        "",
        "198.52.100.40",
        "mx-2.example.net",
        "esmtps",
        "1nXBw3-00031a-Fy",
        id="exim-literal-helo",
    ),
    pytest.param(
        "from mail.example-gb.org ([51.64.116.65] helo=exch2000.example.local) by "
        "brain.example.gov.uk with esmtp id 18ImIE-0001Ay-00 for list@example.com; "
        "Mon, 02 Dec 2002 08:51:06 +0000",
        "exch2000.example.local",
        "mail.example-gb.org",
        "51.64.116.65",
        "brain.example.gov.uk",
        "esmtp",
        "18ImIE-0001Ay-00",
        id="exim-rdns-helo",
    ),
    pytest.param(
        "from mail-eopbgr730068.outbound.example.com ([40.107.73.68]:20412 "
        "helo=NAM05-DM3-obe.outbound.example.com) by mm2.example.com with esmtps "
        "(TLSv1.2:ECDHE-RSA-AES256-SHA384:256) (Exim 4.92) (envelope-from <m@example.com>) "
        "id 1iGRDP-0003e1-SB for users@example.com; Wed, 02 Oct 2019 06:12:00 -0400",
        "nam05-dm3-obe.outbound.example.com",
        "mail-eopbgr730068.outbound.example.com",
        "40.107.73.68",
        "mm2.example.com",
        "esmtps",
        "1iGRDP-0003e1-SB",
        id="exim-port",
    ),
    pytest.param(
        "from mail-ot1-f65.example.com ([209.85.210.65]) by mx-3.example.net with esmtps "
        "(TLSv1.2:ECDHE-RSA-AES128-GCM-SHA256:128) (Exim 4.92.2) id 1kL4GK-002VGx-KY for "
        "dev@example.net; Wed, 23 Sep 2020 12:52:53 +0000",
        "mail-ot1-f65.example.com",
        "mail-ot1-f65.example.com",
        "209.85.210.65",
        "mx-3.example.net",
        "esmtps",
        "1kL4GK-002VGx-KY",
        id="exim-helo-equals-rdns",
    ),
    pytest.param(
        "from unknown (HELO rly-xw01.example.com) (96.213.243.25) by n9.example.com with "
        "asmtp; 22 May 2002 14:34:40 +0300",
        "rly-xw01.example.com",
        "",
        "96.213.243.25",
        "n9.example.com",
        "asmtp",
        "",
        id="qmail-unknown",
    ),
    pytest.param(
        "from dsl-1.example.net (HELO pc7) (k5@example.com@192.206.203.10) by 0 with ESMTPA; "
        "8 May 2019 21:08:14 -0000",
        "pc7",
        "dsl-1.example.net",
        "192.206.203.10",
        "0",
        "ESMTPA",
        "",
        id="qmail-auth",
    ),
    pytest.param(
        "from unknown(10.0.0.13) by gw.example.ie via smap (V2.0) id xmaa29321; "
        "Fri, 9 Aug 02 11:35:15 +0100",
        "",
        "",
        "10.0.0.13",
        "gw.example.ie",
        "",
        "xmaa29321",
        id="smap-no-space",
    ),
    pytest.param(
        "from BL0PR12MB2417.namprd12.prod.outlook.com (2603:10b6:5:335:CAFE::d5) by "
        "BL0PR12MB2482.namprd12.prod.outlook.com (2603:10b6:5:335::18) with Microsoft SMTP "
        "Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.2305.6 "
        "via Frontend Transport; Mon, 12 Dec 2022 08:30:24 +0000",
        "bl0pr12mb2417.namprd12.prod.outlook.com",
        "",
        "2603:10b6:5:335:cafe::d5",
        "bl0pr12mb2482.namprd12.prod.outlook.com",
        "Microsoft SMTP Server",
        "15.20.2305.6",
        id="exchange-ipv6",
    ),
    pytest.param(
        "from [192.168.0.100] (118.69.219.201) by HKAPR03CA0016.apcprd03.prod.outlook.com "
        "(2603:1096:203:c8::21) with Microsoft SMTP Server (version=TLS1_2, cipher=X) "
        "id 15.20.4020.8 via Frontend Transport; Fri, 2 Apr 2021 09:07:44 +0000",
        "[192.168.0.100]",
        "",
        "118.69.219.201",
        "hkapr03ca0016.apcprd03.prod.outlook.com",
        "Microsoft SMTP Server",
        "15.20.4020.8",
        id="exchange-literal-helo",
    ),
    pytest.param(
        "from PH0PR19MB6911.namprd19.prod.outlook.com (::1) by "
        "MN0PR19MB6312.namprd19.prod.outlook.com with HTTPS; Sun, 6 Aug 2023 02:27:06 +0000",
        "ph0pr19mb6911.namprd19.prod.outlook.com",
        "",
        "::1",
        "mn0pr19mb6312.namprd19.prod.outlook.com",
        "HTTPS",
        "",
        id="exchange-loopback",
    ),
    pytest.param(
        "from mail-wm1-f54.google.com (mail-wm1-f54.google.com. [209.85.128.54]) by "
        "mx.google.com with ESMTPS id z129-v6si8080952wmg.157.2018.10.01.07.01.38 for "
        "<user@gmail.com> (version=TLS1_2 cipher=ECDHE-RSA-AES128-GCM-SHA256 bits=128/128); "
        "Mon, 01 Oct 2018 07:01:38 -0700 (PDT)",
        "mail-wm1-f54.google.com",
        "mail-wm1-f54.google.com",
        "209.85.128.54",
        "mx.google.com",
        "ESMTPS",
        "z129-v6si8080952wmg.157.2018.10.01.07.01.38",
        id="gmail-inbound",
    ),
    pytest.param(
        "by 2002:a05:6a10:8c0b:b0:4a1:2c3:5d6e with SMTP id g16csp2201135ioh; "
        "Mon, 1 Oct 2018 07:27:55 -0700 (PDT)",
        "",
        "",
        "",
        "2002:a05:6a10:8c0b:b0:4a1:2c3:5d6e",
        "SMTP",
        "g16csp2201135ioh",
        id="gmail-by-only",
    ),
    pytest.param(
        "from mail.example.net [193.120.211.219] by localhost with POP3 (fetchmail-5.9.0) "
        "for jm@localhost (single-drop); Tue, 06 Aug 2002 20:57:42 +0100 (IST)",
        "mail.example.net",
        "",
        "193.120.211.219",
        "localhost",
        "POP3",
        "",
        id="fetchmail",
    ),
    pytest.param(
        "from ([80.40.36.69]) by mail.example.net (Merak 4.2.1) with SMTP id AAB36750; "
        "Sat, 18 May 2002 09:33:05 +0100",
        "",
        "",
        "80.40.36.69",
        "mail.example.net",
        "SMTP",
        "AAB36750",
        id="missing-helo",
    ),
    pytest.param(
        "from host.example.com (host.example.com [::ffff:192.1.2.77]) by mx.example.net "
        "with ESMTP; Sat, 18 May 2002 09:33:05 +0100",
        "host.example.com",
        "host.example.com",
        "192.1.2.77",
        "mx.example.net",
        "ESMTP",
        "",
        id="ipv4-mapped",
    ),
    pytest.param(
        "from greenbush.example.com by thumper.example.com (4.1/4.7) id <AA08355> for "
        "mrc@example.com; Tue, 8 Oct 91 10:25:41 EDT",
        "greenbush.example.com",
        "",
        "",
        "thumper.example.com",
        "",
        "AA08355",
        id="old-no-ip",
    ),
]


@pytest.mark.parametrize("header,helo,rdns,ip,by,protocol,ident", CASES)
def test_formats(header, helo, rdns, ip, by, protocol, ident):
    hop = parse_received(header)
    assert hop.parsed
    assert hop.raw == header
    assert (hop.helo, hop.rdns, hop.ip, hop.by, hop.protocol, hop.id) == (
        helo,
        rdns,
        ip,
        by,
        protocol,
        ident,
    )
    assert hop.timestamp is not None and hop.timestamp.tzinfo is not None


def test_timestamps():
    hop = parse_received(CASES[0].values[0])
    assert hop.timestamp == datetime(2023, 10, 3, 12, 1, 2, tzinfo=UTC)
    assert hop.timestamp.utcoffset() == timedelta(hours=2)
    old = parse_received(CASES[-1].values[0])
    assert old.timestamp == datetime(1991, 10, 8, 10, 25, 41, tzinfo=timezone(timedelta(hours=-4)))


def test_qmail_invoked_lines_keep_their_time():
    hop = parse_received("(qmail 20619 invoked from network); 2 Oct 2002 16:27:49 -0000")
    assert hop.parsed and not hop.ip and not hop.helo
    assert hop.timestamp == datetime(2002, 10, 2, 16, 27, 49, tzinfo=UTC)
    hop = parse_received("(qmail 15060 invoked by uid 0); 25 Jul 2002 19:39:07 -0000")
    assert hop.timestamp == datetime(2002, 7, 25, 19, 39, 7, tzinfo=UTC)


def test_date_without_semicolon():
    hop = parse_received(
        "by filterdrecv-abc with SMTP id filterdrecv-abc-1-609202EC-3 "
        "2021-05-05 02:29:00.232917832 +0000 UTC m=+537028.490819832"
    )
    assert hop.by == "filterdrecv-abc"
    assert hop.timestamp == datetime(2021, 5, 5, 2, 29, tzinfo=UTC)


@pytest.mark.parametrize(
    "garbage", ["", "apparently", "or is it", ";", "((((", "from", ")))) ; ; ;", "\x00\xff"]
)
def test_garbage_is_unparsed(garbage):
    assert parse_received(garbage) == Hop(raw=garbage)


@pytest.mark.parametrize(
    "value",
    [
        "from (((((x by y",
        "from x (" + "(" * 500 + ") by y; Mon, 1 Jan 2020 00:00:00 +0000",
        "from [999.1.1.1] by y",
        "from x (y [IPv6:zzzz::1]) by y",
        "from " + "a" * 10000,
        "from x ([1.2.3.4]:abc helo=) by; bogus date",
        None,
        12,
    ],
)
def test_never_raises(value):
    hop = parse_received(value)  # type: ignore[arg-type]
    assert isinstance(hop, Hop)


def test_bad_ip_is_empty():
    assert parse_received("from x (y [999.1.1.1]) by z; Mon, 1 Jan 2020 00:00:00 +0000").ip == ""


def test_host_property():
    assert Hop(raw="", rdns="a.example.com", helo="b.example.org").host == "a.example.com"
    assert Hop(raw="", helo="b.example.org").host == "b.example.org"
    for helo in ("pc7", "localhost", "[192.1.2.1]", "192.1.2.1", "?192.168.1.76?", ""):
        assert Hop(raw="", helo=helo).host == "", helo


@pytest.mark.parametrize(
    "ip,public",
    [
        ("8.8.8.8", True),
        ("209.85.128.54", True),
        ("2607:f8b0:4864:20::432", True),
        ("192.0.2.1", False),  # documentation ranges (RFC 5737, 3849): never an origin
        ("198.51.100.200", False),
        ("203.0.113.9", False),
        ("2001:db8::1", False),
        ("198.18.0.1", False),  # benchmarking
        ("192.1.2.1", True),  # what the fixtures use instead
        ("2a01:db8::1", True),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("::1", False),
        ("169.254.1.1", False),
        ("fe80::1", False),
        ("100.64.0.1", False),  # CGNAT
        ("100.127.255.254", False),
        ("fc00::1", False),
        ("224.0.0.1", False),
        ("0.0.0.0", False),
        ("255.255.255.255", False),
        ("240.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("", False),
        ("not an ip", False),
    ],
)
def test_is_public_ip(ip, public):
    assert is_public_ip(ip) is public


def _hops(*ips_hosts):
    """A connected chain: each line was written by the sender of the line above it."""
    out: list[Hop] = []
    by = "store.provider.example"
    for ip, host in ips_hosts:
        out.append(Hop(raw="", ip=ip, rdns=host, by=by, parsed=True))
        by = host or by
    return out


def test_find_origin_skips_private_and_trusted():
    hops = _hops(
        ("", ""),  # by-only hop
        ("10.0.0.5", "internal.example.net"),
        ("203.1.113.7", "mx1.provider.example"),  # the provider's edge: trusted by name
        ("198.52.100.9", "relay.provider.example"),  # trusted by CIDR
        ("192.1.2.44", "sender.example.org"),
        ("192.1.2.45", "earlier.example.org"),
    )
    ident = Identity(trusted_relays=("provider.example", "198.52.100.0/24"))
    assert find_origin(hops, ident) == (4, hops[4])
    # Without trusted relays the provider's own edge is the origin.
    assert find_origin(hops, Identity()) == (2, hops[2])
    assert find_origin(hops, None) == (2, hops[2])


def test_find_origin_never_trusts_a_helo_name():
    """The HELO is the sender's choice: naming the trusted relay there trusts nothing."""
    hops = [
        Hop(raw="", helo="edge.provider.example", ip="81.2.69.160", parsed=True),
        Hop(raw="", helo="pc", ip="8.8.8.8", parsed=True),
    ]
    assert find_origin(hops, Identity(trusted_relays=("provider.example",))) == (0, hops[0])


def test_find_origin_none():
    assert find_origin([], Identity()) is None
    assert find_origin(_hops(("127.0.0.1", ""), ("10.0.0.1", "")), Identity()) is None
    only_trusted = _hops(("203.1.113.1", ""))
    assert find_origin(only_trusted, Identity(trusted_relays=("203.1.113.0/24",))) is None


def test_find_origin_on_parsed_chain():
    chain = [
        "from mx.provider.example (mx.provider.example [203.1.113.2]) by imap.provider.example "
        "(Postfix) with ESMTP id A1; Tue, 3 Oct 2023 14:01:05 +0000",
        "from sender.example.org (sender.example.org [192.1.2.44]) by mx.provider.example "
        "(Postfix) with ESMTPS id B2; Tue, 3 Oct 2023 14:01:03 +0000",
        "from [10.0.0.8] (unknown [10.0.0.8]) by sender.example.org (Postfix) with ESMTPSA "
        "id C3; Tue, 3 Oct 2023 14:01:01 +0000",
    ]
    hops = [parse_received(h) for h in chain]
    found = find_origin(hops, Identity(trusted_relays=("mx.provider.example",)))
    assert found is not None and found[0] == 1 and found[1].ip == "192.1.2.44"


def test_qmail_helo_literal_is_not_the_connecting_ip():
    hop = parse_received(
        "from unknown (HELO [192.168.0.10]) (78.165.110.211) by mail.example.net "
        "with SMTP; 1 Jan 2024 10:00:00 -0000"
    )
    assert hop.ip == "78.165.110.211"
    assert hop.helo == "[192.168.0.10]" and hop.host == ""


def test_postfix_fast_path_agrees_with_the_general_parser():
    """Every line the one-regex Postfix path takes must read the same the long way."""
    from pathlib import Path

    from fixtures.generator import generate_mailbox
    from mailstats.mail.message import Message
    from mailstats.mail.received import _POSTFIX_FAST, _parse

    raws = [m.raw for m in generate_mailbox(5, 300, 200, 0).messages()]
    corpus = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
    raws += [p.read_bytes() for p in sorted(corpus.glob("**/*.eml"))]
    lines = [v for raw in raws for v in Message("a", "f", 1, raw).raw_header_all("Received")]
    fast = [v for v in lines if _POSTFIX_FAST.fullmatch(v.rpartition(";")[0])]
    assert len(fast) > 500  # the path is really taken
    assert [v for v in fast if _parse(v) != _parse(v, fast=False)] == []
