"""auth: trust only the receiving provider's delivery verdicts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mod_local_support import msg, run_over_corpus, services

from mailstats.modules.auth import (
    AuthModule,
    id_matches,
    parse_auth_results,
    parse_received_spf,
    strip_comments,
)

MOD = AuthModule()

GMAIL = """\
Delivered-To: dana@gmail.com
Received: by 2002:a05:6a10:8f0e:b0:4d1 with SMTP id p14csp1234pxb;
        Tue, 14 Mar 2023 02:11:09 -0700 (PDT)
ARC-Authentication-Results: i=1; mx.google.com;
       dkim=pass header.i=@rspamd.com header.s=dkim header.b=iuniqXuF;
       spf=pass (google.com: domain of vsevolod@rspamd.com designates 88.99.142.95 as
       permitted sender) smtp.mailfrom=vsevolod@rspamd.com;
       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=rspamd.com
Authentication-Results: mx.google.com;
       dkim=pass header.i=@rspamd.com header.s=dkim header.b=iuniqXuF;
       spf=pass (google.com: domain of vsevolod@rspamd.com designates 88.99.142.95 as
       permitted sender) smtp.mailfrom=vsevolod@rspamd.com;
       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=rspamd.com
Received-SPF: pass (google.com: domain of vsevolod@rspamd.com designates 88.99.142.95 as
 permitted sender) client-ip=88.99.142.95;
Received: from mail.highsecure.ru (mail.highsecure.ru. [88.99.142.95])
        by mx.google.com with ESMTPS id a1si123 for <dana@gmail.com>;
        Tue, 14 Mar 2023 02:11:08 -0700 (PDT)
Authentication-Results: mail.highsecure.ru;
	auth=pass smtp.auth=vsevolod@highsecure.ru smtp.mailfrom=vsevolod@rspamd.com
From: Vsevolod Stakhov <vsevolod@rspamd.com>
To: dana@gmail.com
Subject: test
Date: Tue, 14 Mar 2023 09:11:05 +0000

"""

OUTLOOK = """\
Received: from DM6PR02MB1234.namprd02.prod.outlook.com (2603:10b6:5:1::1) by
 SN6PR02MB5678.namprd02.prod.outlook.com with HTTPS; Mon, 3 Oct 2022 10:00:02 +0000
Authentication-Results: spf=softfail (sender IP is 77.68.73.179)
 smtp.mailfrom=tal-data.com; dkim=none (message not signed)
 header.d=none;dmarc=none action=none header.from=tal-data.com;compauth=pass
 reason=105
Received-SPF: SoftFail (protection.outlook.com: domain of transitioning
 tal-data.com discourages use of 77.68.73.179 as permitted sender)
Received: from solarjuice.co.uk (77.68.73.179) by
 DM6PR02MB1234.mail.protection.outlook.com (10.13.1.1) with Microsoft SMTP Server
 id 15.20.5676.17 via Frontend Transport; Mon, 3 Oct 2022 10:00:01 +0000
Received-SPF: pass (solarjuice.co.uk: localhost is always allowed.) client-ip=127.0.0.1;
 envelope-from=info@tal-data.com; helo=solarjuice.co.uk;
From: "Microsoft account" <info@tal-data.com>
To: phishing@pot
Subject: Unusual sign-in activity

"""

FORGED_BELOW = """\
Received: from mx1.example.org (mx1.example.org [192.0.2.10]) by imap.example.org
 with LMTP; Wed, 1 Feb 2023 12:00:02 +0100
Authentication-Results: mx1.example.org; dkim=fail (bad signature) header.d=bank.example;
 spf=fail smtp.mailfrom=bank.example; dmarc=fail (p=reject) header.from=bank.example
Received: from evil.example.net (evil.example.net [198.51.100.7]) by mx1.example.org
 with ESMTP; Wed, 1 Feb 2023 12:00:01 +0100
Authentication-Results: mx.google.com; dkim=pass header.d=bank.example; spf=pass
 smtp.mailfrom=bank.example; dmarc=pass header.from=bank.example
From: Bank <service@bank.example>
Subject: Verify your account

"""


def test_gmail_verdicts_are_trusted() -> None:
    r = MOD.evaluate(msg(GMAIL), services())
    assert (r["dkim_pass"], r["spf_pass"], r["dmarc_pass"]) == (True, True, True)
    assert r["authserv_id"] == "mx.google.com"
    assert "mx.google.com" in r["_why"]["dkim_pass"]


def test_outlook_header_without_authserv_id() -> None:
    r = MOD.evaluate(msg(OUTLOOK), services())
    # dkim=none: decidably not a pass; softfail and dmarc=none likewise.
    assert (r["dkim_pass"], r["spf_pass"], r["dmarc_pass"]) == (False, False, False)
    assert r["authserv_id"] == ""


def test_default_trusts_topmost_authserv_id_only() -> None:
    # The forged "mx.google.com" pass sits below the provider's header and is ignored.
    r = MOD.evaluate(msg(FORGED_BELOW), services())
    assert (r["dkim_pass"], r["spf_pass"], r["dmarc_pass"]) == (False, False, False)
    assert r["authserv_id"] == "mx1.example.org"


def test_configured_authserv_ids() -> None:
    svc = services(settings={"authserv_ids": ["example.org"]})
    r = MOD.evaluate(msg(FORGED_BELOW), svc)
    assert (r["dkim_pass"], r["spf_pass"], r["dmarc_pass"]) == (False, False, False)
    # Configured to trust a provider that wrote nothing here: no verdict at all.
    svc = services(settings={"authserv_ids": ["provider.example"]})
    r = MOD.evaluate(msg(FORGED_BELOW), svc)
    assert (r["dkim_pass"], r["spf_pass"], r["dmarc_pass"]) == (None, None, None)
    assert "provider.example" in r["_why"]["dkim_pass"]


def test_configured_ids_pick_the_right_header_among_several() -> None:
    svc = services(settings={"authserv_ids": ["mx.google.com"]})
    r = MOD.evaluate(msg(GMAIL), svc)
    assert (r["dkim_pass"], r["spf_pass"], r["dmarc_pass"]) == (True, True, True)
    # the sender's own "auth=pass" header is never taken as a verdict
    svc = services(settings={"authserv_ids": "mail.highsecure.ru"})
    r = MOD.evaluate(msg(GMAIL), svc)
    assert (r["dkim_pass"], r["spf_pass"], r["dmarc_pass"]) == (None, None, None)


def test_no_headers_is_unknown() -> None:
    r = MOD.evaluate(msg("From: a@example.com\nSubject: hi\n\n"), services())
    assert (r["dkim_pass"], r["spf_pass"], r["dmarc_pass"]) == (None, None, None)
    assert r["authserv_id"] is None


def test_method_missing_from_trusted_header_is_unknown() -> None:
    m = msg(
        "Authentication-Results: mx.example.org; dkim=pass header.d=a.example\n"
        "From: x@a.example\n\n"
    )
    r = MOD.evaluate(m, services())
    assert r["dkim_pass"] is True
    assert r["spf_pass"] is None and r["dmarc_pass"] is None


def test_received_spf_alone() -> None:
    top = (
        "Received-SPF: Pass (mailfrom) identity=mailfrom; client-ip=203.0.113.5;\n"
        " helo=mail.shop.example; envelope-from=news@shop.example; receiver=mx.example.org\n"
    )
    lower = "Received-SPF: fail (forged) receiver=mx.example.org\n"
    m = msg(top + lower + "From: news@shop.example\n\n")
    assert MOD.evaluate(m, services())["spf_pass"] is True
    # configured: receiver must match; the lower one is not consulted when the top matches
    svc = services(settings={"authserv_ids": ["example.org"]})
    assert MOD.evaluate(m, svc)["spf_pass"] is True
    svc = services(settings={"authserv_ids": ["other.example"]})
    assert MOD.evaluate(m, svc)["spf_pass"] is None
    # Authentication-Results wins over Received-SPF
    ar = "Authentication-Results: mx.example.org; spf=softfail smtp.mailfrom=shop.example\n"
    assert MOD.evaluate(msg(ar + top + "\n"), services())["spf_pass"] is False


def test_arc_results_fill_in_for_trusted_id() -> None:
    m = msg(
        "ARC-Authentication-Results: i=2; mx.example.org; dmarc=pass header.from=a.example\n"
        "Authentication-Results: mx.example.org; dkim=fail header.d=a.example\n"
        "From: x@a.example\n\n"
    )
    r = MOD.evaluate(m, services())
    assert r["dkim_pass"] is False and r["dmarc_pass"] is True and r["spf_pass"] is None


def test_temperror_is_unknown_permerror_is_not_pass() -> None:
    m = msg(
        "Authentication-Results: mx.example.org; spf=temperror smtp.mailfrom=a.example;"
        " dmarc=permerror header.from=a.example; dkim=temperror; dkim=pass header.d=a.example\n\n"
    )
    r = MOD.evaluate(m, services())
    assert r["spf_pass"] is None and r["dmarc_pass"] is False and r["dkim_pass"] is True


def test_parse_auth_results_fallbacks() -> None:
    # version 2 (authres refuses), comments with ";" and quotes inside
    aid, res = parse_auth_results(
        'authrestest4int 2; spf=fail reason (BAH) = "just some (<>.%&! reason" '
        "smtp.mailfrom=dogma.slashnull.org"
    )
    assert aid == "authrestest4int" and ("spf", "fail") in res
    aid, res = parse_auth_results(
        "testing.dkim.org; header.From=mickey@dkim.org; dkim=pass ("
        " message from dkim.org verified; ); "
    )
    assert aid == "testing.dkim.org" and res == [("dkim", "pass")]
    aid, res = parse_auth_results(
        "spf=pass (sender IP is 1.2.3.4) smtp.mailfrom=a.example;dmarc=bestguesspass action=none"
    )
    assert aid == "" and ("spf", "pass") in res and ("dmarc", "bestguesspass") in res
    assert parse_auth_results("") == ("", [])
    assert parse_auth_results("example.org; none")[1] == []


def test_parse_received_spf() -> None:
    assert parse_received_spf("SoftFail (protection.outlook.com: domain of x) ") == (
        "softfail",
        "protection.outlook.com",
    )
    assert parse_received_spf("Pass (mailfrom) identity=mailfrom; receiver=<UNKNOWN>") == (
        "pass",
        "",
    )
    assert parse_received_spf("unknown (old syntax)") == ("permerror", "")
    assert parse_received_spf("garbage") == ("", "")


def test_helpers() -> None:
    assert strip_comments('a (b (c) d) "e (f)" g') == 'a   "e (f)" g'
    assert id_matches("mx.google.com", "google.com")
    assert id_matches("google.com", "mx.google.com")
    assert not id_matches("evilgoogle.com", "google.com")
    assert not id_matches("com", "google.com")


@pytest.mark.parametrize(
    "header",
    [
        b"Authentication-Results: \xff\xfe; dkim=\n\n",
        b"Authentication-Results: ;;;;\nReceived-SPF:\nARC-Authentication-Results: i=x\n\n",
        b"Authentication-Results: (((unclosed; dkim=pass\n\n",
        b'Authentication-Results: a; dkim=pass" spf=pass (\n\n',
        b"\x00\x01garbage without colon\n\n",
        b"",
    ],
)
def test_malformed_never_raises(header: bytes) -> None:
    r = MOD.evaluate(msg(header), services(settings={"authserv_ids": [None, 3]}))
    for c in MOD.checks:
        assert r[c] in (True, False, None)


@pytest.mark.corpus
def test_corpus() -> None:
    counts = run_over_corpus(MOD, services())
    n = counts["_n"]
    # About a fifth of the corpus carries Authentication-Results (phishing_pot at Outlook.com,
    # list mail at mm2.emwd.com, rspamd's Gmail samples); most of it carries nothing.
    assert 60 < n - counts["dkim_pass"][None] < n // 3
    assert counts["dkim_pass"][True] >= 10 and counts["dkim_pass"][False] >= 30
    assert counts["spf_pass"][True] >= 10 and counts["spf_pass"][False] >= 20
    assert counts["dmarc_pass"][True] >= 5 and counts["dmarc_pass"][False] >= 20


def test_outlook_with_configured_ids() -> None:
    # Outlook.com's Authentication-Results has no authserv-id: trusted only when "" is listed.
    r = MOD.evaluate(msg(OUTLOOK), services(settings={"authserv_ids": [""]}))
    assert (r["dkim_pass"], r["spf_pass"], r["dmarc_pass"]) == (False, False, False)
    # Listing the receiver name trusts its Received-SPF (softfail), not the id-less header,
    # and never the sender's own "pass" further down.
    r = MOD.evaluate(msg(OUTLOOK), services(settings={"authserv_ids": ["outlook.com"]}))
    assert (r["dkim_pass"], r["spf_pass"], r["dmarc_pass"]) == (None, False, None)
    r = MOD.evaluate(msg(OUTLOOK), services(settings={"authserv_ids": ["solarjuice.co.uk"]}))
    assert r["spf_pass"] is True  # what the user asked for: that host's verdict


def _auth_values() -> list[str]:
    from mod_local_support import CORPUS

    from fixtures.generator import generate_mailbox
    from mailstats.mail.message import Message
    from mailstats.sources.local import split_header

    raws = [g.raw for msgs in generate_mailbox(seed=3, n_ham=150, n_spam=100).folders.values()
            for g in msgs]  # fmt: skip
    raws += [p.read_bytes() for p in sorted(CORPUS.rglob("*.eml"))] if CORPUS.is_dir() else []
    values = []
    for raw in raws:
        m = Message("a", "f", 1, split_header(raw))
        values += m.header_all("Authentication-Results")
        values += m.header_all("ARC-Authentication-Results")
    return values


def test_tolerant_scan_agrees_with_the_strict_parser_wherever_it_parses() -> None:
    """The strict RFC 8601 parser (authres) is the oracle for every header it accepts."""
    import authres

    accepted = 0
    for value in _auth_values():
        try:
            strict = authres.AuthenticationResultsHeader.parse_value(value)
        except Exception:  # noqa: BLE001 - rejected by the strict parser: nothing to compare
            continue
        accepted += 1
        want = (
            str(strict.authserv_id or "").strip().lower(),
            [(str(r.method).lower(), str(r.result).lower()) for r in strict.results],
        )
        assert parse_auth_results(value) == want, value
    assert accepted >= 100


def _strip_comments_by_character(text: str) -> str:
    """The definition strip_comments must keep: the per-character reading it replaced."""
    out: list[str] = []
    depth = 0
    quoted = escaped = False
    for ch in text:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(ch)
            continue
        if ch == "\\":
            escaped = True
            if depth == 0:
                out.append(ch)
            continue
        if depth == 0 and ch == '"':
            quoted = not quoted
            out.append(ch)
        elif quoted:
            out.append(ch)
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
            if depth == 0:
                out.append(" ")
        elif depth == 0:
            out.append(ch)
    return "".join(out)


@settings(max_examples=600, deadline=None, derandomize=True)
@given(st.text(alphabet='()"\\ a=;\n', max_size=40))
def test_strip_comments_reads_runs_as_the_character_loop_did(text: str) -> None:
    assert strip_comments(text) == _strip_comments_by_character(text)
