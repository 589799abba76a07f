"""Receiving providers recognised without configuration (mail/receivers.py).

Headers are written by hand in each provider's shape with made-up senders (public-looking
addresses, not only documentation ranges); the expected origin in each was decided by reading
the header. The corpus test compares with fixtures/corpus_origins.csv, which
scripts/corpus_origins.py derived by its own rules, never by calling mailstats' parser.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailstats.mail.message import Message
from mailstats.mail.receivers import RECEIVERS, detect, mx_hosts, receiver_setting
from mailstats.services import Identity
from mailstats.services.dns import DnsAnswer

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "real"
EXPECTED = ROOT / "fixtures" / "corpus_origins.csv"

MS_TOP = """\
Received: from SN7PR11MB8113.namprd11.prod.outlook.com (2603:10b6:806:2e1::7)
 by MW4PR11MB5872.namprd11.prod.outlook.com with HTTPS; Tue, 5 Mar 2024 10:00:03 +0000
Received: from BN9PR03CA0811.namprd03.prod.outlook.com (2603:10b6:408:13f::6)
 by SN7PR11MB8113.namprd11.prod.outlook.com (2603:10b6:806:2e1::7) with Microsoft SMTP
 Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.7362.24;
 Tue, 5 Mar 2024 10:00:02 +0000
Received: from BN1PEPF0000468D.namprd05.prod.outlook.com (2603:10b6:408:13f:cafe::2)
 by BN9PR03CA0811.outlook.office365.com (2603:10b6:408:13f::6) with Microsoft SMTP Server
 (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.7362.24 via
 Frontend Transport; Tue, 5 Mar 2024 10:00:02 +0000
"""


def _edge(sender: str, ip: str) -> str:
    return (
        f"Received: from {sender} ({ip}) by BN1PEPF0000468D.mail.protection.outlook.com"
        " (10.167.243.138) with Microsoft SMTP Server (version=TLS1_2,"
        " cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.7362.17 via Frontend"
        " Transport; Tue, 5 Mar 2024 10:00:01 +0000\n"
    )


TAIL = "From: someone@sender.example\nSubject: x\n\n"


def msg(text: str) -> Message:
    return Message("a", "INBOX", 1, text.replace("\n", "\r\n").encode())


def origin(text: str, **ident: object) -> str | None:
    hop = msg(text).origin(Identity(**ident))  # type: ignore[arg-type]
    return hop.ip if hop else None


def test_microsoft_recognised_and_origin_is_the_edge_sender() -> None:
    text = MS_TOP + _edge("mta7.shop-mailer.example", "91.198.105.77") + TAIL
    m = msg(text)
    assert m.receiver(Identity()).receiver == "microsoft"
    assert origin(text) == "91.198.105.77"
    assert origin(text, receiver="none") == "2603:10b6:806:2e1::7"  # what a first-public rule says


@pytest.mark.parametrize(
    "ip", ["40.107.92.137", "2a01:111:f403:2412::800", "52.100.20.229", "104.47.17.9"]
)
def test_another_tenant_at_the_edge_is_the_origin(ip: str) -> None:
    """Microsoft's outbound ranges hand other tenants' mail to the edge: origin, not trusted."""
    text = MS_TOP + _edge("NAM10-BN7-obe.outbound.protection.outlook.com", ip) + TAIL
    assert origin(text) == ip


def test_outbound_range_above_the_edge_is_internal() -> None:
    """The same 2a01:111:f403::/48 between Microsoft's own hosts above the edge: internal."""
    hop = (
        "Received: from AM0PR10CU004.outbound.protection.outlook.com (2a01:111:f403:c409::1)"
        " by BN9PR03CA0811.outlook.office365.com (2603:10b6:408:13f::6) with Microsoft SMTP"
        " Server id 15.20.7362.24; Tue, 5 Mar 2024 10:00:02 +0000\n"
    )
    top = MS_TOP.split("Received: from BN1PEPF")[0]
    text = top + hop + _edge("mail.sender.example", "185.12.64.9") + TAIL
    assert origin(text) == "185.12.64.9"


def test_microsoft_range_under_a_foreign_by_host_is_not_trusted() -> None:
    """A 2603:10xx sender counts as internal only on a hop a Microsoft host wrote."""
    text = (
        "Received: from mail.sender.example (mail.sender.example [2603:10b6:806:2e1::9])\n"
        " by mx.example.net (Postfix) with ESMTPS id 4TqF; Tue, 5 Mar 2024 10:00:03 +0000\n" + TAIL
    )
    assert origin(text, receiver="microsoft") == "2603:10b6:806:2e1::9"


def test_forged_microsoft_chain_below_another_receiver_is_ignored() -> None:
    """Detection reads only the verified top hops: a sender's fake Outlook hops below the
    real receiver neither make it "microsoft" nor move the origin."""
    real = (
        "Received: from mta.spam-sender.example (mta.spam-sender.example [81.2.69.142])\n"
        " by mx.example.org (Postfix) with ESMTP id 4TqF; Tue, 5 Mar 2024 10:00:04 +0000\n"
    )
    text = real + MS_TOP + _edge("mail.sender.example", "185.12.64.9") + TAIL
    m = msg(text)
    assert m.receiver(Identity()).receiver == ""
    assert origin(text) == "81.2.69.142"


GMAIL = """\
Received: by 2002:a05:7208:3105:b0:7d:5b4e:2f9 with SMTP id y5csp1234567rbb;
        Mon, 10 Jul 2023 05:12:34 -0700 (PDT)
Received: from mail.sender.example (mail.sender.example. [185.12.64.9])
        by mx.google.com with ESMTPS id d9-20020a170902654900b001b8a1b2c3d4si1234567plk.321
        for <dana@gmail.example>; Mon, 10 Jul 2023 05:12:34 -0700 (PDT)
"""
PROTON = """\
Received: from mail.sender.example (mail.sender.example [142.93.186.251]) (using TLSv1.3
 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)) (No client certificate requested)
 by mailin043.protonmail.ch (Postfix) with ESMTPS id 4PbGz5; Tue, 14 Mar 2023 03:05:27 +0000
"""
FETCHMAIL = """\
Received: from localhost (localhost [127.0.0.1]) by laptop.home.example (Postfix) with ESMTP
 id C408E43F9B for <dana@localhost>; Thu, 29 Aug 2002 11:32:25 -0400 (EDT)
Received: from imap.provider.example [212.17.35.15] by localhost with IMAP (fetchmail-5.9.0)
 for dana@localhost (single-drop); Thu, 29 Aug 2002 16:32:25 +0100 (IST)
Received: from relay.sender.example ([64.161.22.236]) by mx.provider.example (8.11.6/8.11.6)
 with ESMTP id g7TFU0Z18213 for <dana@provider.example>; Thu, 29 Aug 2002 16:30:03 +0100
"""


@pytest.mark.parametrize(
    ("text", "receiver", "want"),
    [
        (GMAIL, "gmail", "185.12.64.9"),
        (PROTON, "proton", "142.93.186.251"),
        (FETCHMAIL, "", "64.161.22.236"),  # the pick-up from the provider is not the origin
    ],
)
def test_other_receivers(text: str, receiver: str, want: str) -> None:
    assert msg(text + TAIL).receiver(Identity()).receiver == receiver
    assert origin(text + TAIL) == want


TWO_TIER = """\
Received: from mx.example.org (mx.example.org [198.52.100.5])
\tby store.example.org (Postfix) with ESMTPS id 4Qz2Dw; Mon, 10 Jul 2023 13:00:05 +0100
Received: from mail.sender.example (mail.sender.example [81.2.69.160])
\tby mx.example.org (Postfix) with ESMTPS id 4Qz2Dv; Mon, 10 Jul 2023 13:00:04 +0100
"""


def test_own_mx_is_recognised_when_known() -> None:
    assert origin(TWO_TIER + TAIL) == "198.52.100.5"  # not known: the MX is the origin
    ident = {"own_mx": ("mx.example.org",)}
    assert msg(TWO_TIER + TAIL).receiver(Identity(**ident)).receiver == "own"  # type: ignore[arg-type]
    assert origin(TWO_TIER + TAIL, **ident) == "81.2.69.160"


def test_settings() -> None:
    text = MS_TOP + _edge("mail.sender.example", "185.12.64.9") + TAIL
    assert msg(text).receiver(Identity(receiver="none")).receiver == ""
    assert msg(text).receiver(Identity(receiver="gmail")).receiver == "gmail"
    assert receiver_setting("generic") == "" and receiver_setting(None) == ""
    assert receiver_setting("none") == "none" and receiver_setting("Microsoft") == "microsoft"
    assert set(RECEIVERS) >= {
        "microsoft", "gmail", "yahoo", "icloud", "fastmail", "proton", "gmx", "zoho", "yandex",
        "mailru",
    }  # fmt: skip


class _Resolver:
    def __init__(self, answers: dict[str, DnsAnswer]) -> None:
        self.answers = answers

    def query(self, name: str, rdtype: str) -> DnsAnswer:
        assert rdtype == "MX"
        return self.answers.get(name, DnsAnswer("nxdomain"))


def test_mx_hosts_keeps_only_answers() -> None:
    res = _Resolver(
        {
            "example.org": DnsAnswer("ok", ("10 mx.example.org", "20 MX2.example.org.")),
            "failing.example": DnsAnswer("timeout"),
            "null.example": DnsAnswer("ok", ("0 .",)),
        }
    )
    got = mx_hosts(res, ["example.org", "failing.example", "null.example", "absent.example"])
    assert got == (("mx.example.org", "mx2.example.org"), "failing.example MX: timeout")


# -- the sender cannot move the origin ---------------------------------------------------
_NAMES = st.sampled_from(
    [
        "mx.google.com",
        "X1.mail.protection.outlook.com",
        "AB1PR01MB1.namprd01.prod.outlook.com",
        "mailin001.protonmail.ch",
        "localhost",
        "mx.example.org",
        "[8.8.8.8]",
    ]
)
_IPS = st.sampled_from(
    ["2603:10b6:1::1", "40.107.1.2", "10.1.2.3", "127.0.0.1", "8.8.8.8", "2a01:111:f403::5", ""]
)
_WITH = st.sampled_from(["ESMTPS", "HTTPS", "IMAP (fetchmail-6.4)", "POP3", "LMTP"])


@st.composite
def _forged(draw: st.DrawFn) -> str:
    by, helo, ip, proto = draw(_NAMES), draw(_NAMES), draw(_IPS), draw(_WITH)
    comment = f" ({helo} [{ip}])" if ip else ""
    return (
        f"Received: from {helo}{comment} by {by} with {proto} id 1;"
        " Tue, 5 Mar 2024 09:00:00 +0000\n"
    )


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.lists(_forged(), max_size=6), st.sampled_from(["ms", "gmail", "plain"]))
def test_hops_a_sender_writes_below_never_move_the_origin(forged: list[str], top: str) -> None:
    real = {
        "ms": (MS_TOP + _edge("mail.sender.example", "185.12.64.9"), "185.12.64.9"),
        "gmail": (GMAIL, "185.12.64.9"),
        "plain": (
            "Received: from mail.sender.example (mail.sender.example [81.2.69.142])\n"
            " by mx.example.org (Postfix) with ESMTP id 4TqF; Tue, 5 Mar 2024 10:00:04 +0000\n",
            "81.2.69.142",
        ),
    }[top]
    text = real[0] + "".join(forged) + TAIL
    m = msg(text)
    before = detect(msg(real[0] + TAIL).hops)
    assert m.receiver(Identity()) == before
    hop = m.origin(Identity())
    assert hop is not None and hop.ip == real[1]


# -- the real corpus, with no per-account setting ----------------------------------------
@pytest.mark.corpus
def test_zero_config_origin_on_the_real_corpus() -> None:
    if not (CORPUS / "manifest.csv").is_file():
        pytest.skip("corpus not available")
    with EXPECTED.open(newline="") as fh:
        expected = {row["file"]: row["origin"] for row in csv.DictReader(fh)}
    with (CORPUS / "manifest.csv").open(newline="") as fh:
        files = [row["file"] for row in csv.DictReader(fh)]
    assert set(files) == set(expected), "fixtures/corpus_origins.csv is out of date"
    wrong = []
    receivers: dict[str, int] = {}
    for name in files:
        m = Message("a", "INBOX", 1, (CORPUS / name).read_bytes())
        ident = Identity()
        hop = m.origin(ident)
        got = hop.ip if hop else ""
        rx = m.receiver(ident).receiver
        receivers[rx] = receivers.get(rx, 0) + 1
        if got != expected[name]:
            wrong.append((name, expected[name], got))
    agreement = 1 - len(wrong) / len(files)
    assert agreement >= 0.995, wrong[:20]
    assert receivers.get("microsoft", 0) >= 55  # phishing_pot was received at Outlook.com


# -- what the outputs record ---------------------------------------------------------------
@pytest.mark.parametrize("provider", ["generic", "none"])
def test_receiver_column_and_manifest(tmp_path: Path, provider: str) -> None:
    import json
    import mailbox

    from mailstats.accounts.config import parse_config
    from mailstats.run.cache import Cache
    from mailstats.run.engine import Engine
    from mailstats.stats.export import MESSAGE_COLUMNS, write_outputs

    box = tmp_path / "inbox.mbox"
    mb = mailbox.mbox(box)
    for text in (
        MS_TOP + _edge("mail.sender.example", "185.12.64.9"),
        GMAIL,
        "Received: from mail.sender.example (mail.sender.example [81.2.69.142])\n"
        " by mx.example.org (Postfix) with ESMTP id 4TqF; Tue, 5 Mar 2024 10:00:04 +0000\n",
    ):
        mb.add((text + TAIL).encode())
    mb.flush()
    mb.close()
    cfg = parse_config(
        {
            "settings": {
                "modules": ["received"],
                "dns_servers": ["127.0.0.1:9"],
                "cache": str(tmp_path / "cache.sqlite"),
            },
            "accounts": [
                {"name": "local", "path": str(box), "ham": ["inbox"], "provider": provider}
            ],
        }
    )
    engine = Engine(cfg, cache=Cache(cfg.settings.cache))
    result = engine.run()
    write_outputs(engine, result, tmp_path / "out")
    with (tmp_path / "out" / "messages.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    assert header[: len(MESSAGE_COLUMNS)] == MESSAGE_COLUMNS
    assert header[-2:] == ["age_days", "receiver"]  # the format only grows, at the end
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    receivers = manifest["accounts"][0]["receivers"]
    if provider == "generic":
        pairs = sorted((r[header.index("origin_ip")], r[-1]) for r in rows[1:])
        assert pairs == [
            ("185.12.64.9", "gmail"),
            ("185.12.64.9", "microsoft"),
            ("81.2.69.142", ""),
        ]
        assert receivers == {"gmail": 1, "microsoft": 1, "unrecognised": 1}
    else:
        pairs = sorted((r[header.index("origin_ip")], r[-1]) for r in rows[1:])
        assert pairs == [("185.12.64.9", ""), ("2603:10b6:806:2e1::7", ""), ("81.2.69.142", "")]
        assert receivers == {"unrecognised": 3}


@pytest.mark.parametrize("provider", ["none", "icloud", "microsoft"])
def test_account_dialog_keeps_a_receiver_setting(
    tmp_path: Path, qapp: object, provider: str
) -> None:
    """Editing an account in the app never replaces `provider = "none"` or a receiver name."""
    from mailstats.accounts.config import Account
    from mailstats.gui.accounts import AccountDialog
    from mailstats.gui.store import Store

    acct = Account(
        name="w",
        host="imap.example.org",
        username="d@example.org",
        provider=provider,
        ham=["INBOX"],
    )
    dialog = AccountDialog(None, acct, Store(tmp_path / "accounts.toml"))
    assert dialog.account().provider == provider
    dialog._provider_picked()  # picking it again must not fail either
    assert dialog.account().provider == provider
