"""received: only the sender's side of the path counts; from_mx_match through the From
domain's MX hosts. DNS answers come from a small table (the e2e tests use real dnsmasq)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailstats.mail.message import Message
from mailstats.modules.received import ReceivedModule
from mailstats.services import Identity, Services
from mailstats.services.dns import DnsAnswer
from mailstats.services.domains import DomainSplitter

_SPLITTER = DomainSplitter()


class TableDns:
    """query/ptr from a dict; names not in it are NXDOMAIN."""

    servers: list[str] = []

    def __init__(self, answers: dict[tuple[str, str], DnsAnswer] | None = None) -> None:
        self.answers = answers or {}
        self.asked: list[tuple[str, str]] = []

    def query(self, name: str, rdtype: str) -> DnsAnswer:
        self.asked.append((name, rdtype))
        return self.answers.get((name, rdtype), DnsAnswer("nxdomain"))

    def ptr(self, ip: str) -> DnsAnswer:
        return self.query(ip, "PTR")


def run(text: str, dns: TableDns | None = None, **ident: object) -> dict:
    msg = Message("a", "INBOX", 1, text.replace("\n", "\r\n").encode())
    svc = Services(
        dns=dns or TableDns(),  # type: ignore[arg-type]
        domains=_SPLITTER,
        identity=Identity(**ident),  # type: ignore[arg-type]
    )
    return ReceivedModule().evaluate(msg, svc)


INTERNAL = (
    "Received: from mx1.example.org (mx1.example.org [10.20.0.11])\n"
    " by store.example.org (Postfix) with ESMTP id 4Qz2; Mon, 10 Jul 2023 14:00:05 +0200\n"
)


def _hop(host: str, ip: str, by: str = "mx1.example.org") -> str:
    return (
        f"Received: from {host} ({host} [{ip}])\n"
        f" by {by} (Postfix) with ESMTPS id 4Qz1; Mon, 10 Jul 2023 14:00:04 +0200\n"
    )


def test_forged_own_domain_does_not_match_the_recipients_relays() -> None:
    """Spam claiming the recipient's own domain: its internal relay is not the sender's side."""
    text = INTERNAL + _hop("dyn-81-2-69-142.pool.kabel-isp.net", "81.2.69.142")
    text += "From: ceo@example.org\nSubject: x\n\n"
    out = run(text)
    assert out["from_match"] is False
    assert "sender's side: 1 of 2 hops" in out["_why"]["from_match"]


def test_sender_side_hops_below_the_origin_count() -> None:
    text = (
        INTERNAL
        + _hop("lists.lists-sender.net", "185.12.64.9")
        + _hop("smtp.fabrikam.de", "10.1.1.1", by="lists.lists-sender.net")
        + "From: a@fabrikam.de\nSender: list@lists-sender.net\nSubject: x\n\n"
    )
    out = run(text)
    assert out["from_match"] is True and out["sender_match"] is True


def test_microsoft_internal_hops_are_not_the_senders_side() -> None:
    """Received at Outlook.com: the *.prod.outlook.com relays above the edge are Microsoft's."""
    text = (
        "Received: from SN7PR11MB8113.namprd11.prod.outlook.com (2603:10b6:806:2e1::7)\n"
        " by MW4PR11MB5872.namprd11.prod.outlook.com with HTTPS; Tue, 5 Mar 2024 10:00:03 +0000\n"
        "Received: from mail.lists-sender.net (185.12.64.9) by"
        " BN1PEPF0000468D.mail.protection.outlook.com (10.167.243.138) with Microsoft SMTP"
        " Server id 15.20.7362.17 via Frontend Transport; Tue, 5 Mar 2024 10:00:01 +0000\n"
        "From: someone@outlook.com\nSubject: x\n\n"
    )
    assert run(text)["from_match"] is False
    assert run(text, receiver="none")["from_match"] is True  # what counting every hop gave


GMAIL_HOP = _hop("mail-wr1-f41.google.com", "209.85.221.41")
MX = {
    ("gmail.com", "MX"): DnsAnswer("ok", ("5 gmail-smtp-in.l.google.com",)),
    ("example.co.uk", "MX"): DnsAnswer("ok", ("10 mx.example.co.uk.",)),
    ("null-mx.org", "MX"): DnsAnswer("ok", ("0 .",)),
    ("broken-dns.org", "MX"): DnsAnswer("servfail"),
}


@pytest.mark.parametrize(
    ("hop", "sender", "want"),
    [
        (GMAIL_HOP, "a@gmail.com", True),  # gmail.com served by google.com hosts
        (_hop("relay.other-relay.net", "185.12.64.9"), "a@gmail.com", False),
        (_hop("smtp.example.co.uk", "185.12.64.9"), "a@news.example.co.uk", True),  # via org MX
        (GMAIL_HOP, "a@null-mx.org", False),  # null MX: no mail host at all
        (GMAIL_HOP, "a@no-mx.org", False),  # NXDOMAIN: no MX host
        (GMAIL_HOP, "a@broken-dns.org", None),  # the look-up failed: unknown
    ],
)
def test_from_mx_match(hop: str, sender: str, want: bool | None) -> None:
    out = run(INTERNAL + hop + f"From: {sender}\nSubject: x\n\n", TableDns(dict(MX)))
    assert out["from_mx_match"] is want, out["_why"]["from_mx_match"]


def test_from_mx_match_ignores_the_recipients_relays() -> None:
    """From the recipient's own domain through its own MX, but the sender's side is elsewhere."""
    dns = TableDns({("example.org", "MX"): DnsAnswer("ok", ("10 mx1.example.org",))})
    text = INTERNAL + _hop("dyn.pool.kabel-isp.net", "81.2.69.142") + "From: ceo@example.org\n\n"
    assert run(text, dns)["from_mx_match"] is False


def test_from_mx_match_unknown_when_a_ptr_fails_and_nothing_matched() -> None:
    hop = (
        "Received: from [81.2.69.142] by mx1.example.org with SMTP; Mon, 10 Jul 2023 14:00 +0200\n"
    )
    dns = TableDns({**MX, ("81.2.69.142", "PTR"): DnsAnswer("timeout")})
    out = run(INTERNAL + hop + "From: a@gmail.com\n\n", dns)
    assert out["from_mx_match"] is None and out["from_match"] is None


# -- class property: nothing above the origin changes a sender-side result --------------
_HOSTS = st.sampled_from(
    ["mx1.example.org", "relay.fabrikam.de", "mail-wr1-f41.google.com", "localhost"]
)
_PRIVATE = st.sampled_from(["10.20.0.11", "127.0.0.1", "192.168.7.1", "172.16.0.9"])


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(_HOSTS, _PRIVATE), max_size=4),
    st.sampled_from(["a@example.org", "b@fabrikam.de", "c@gmail.com"]),
    st.sampled_from(["smtp.fabrikam.de", "dyn.pool.kabel-isp.net", "mail-x.google.com"]),
)
def test_receiver_side_hops_never_change_the_result(
    relays: list[tuple[str, str]], sender: str, origin_host: str
) -> None:
    dns = TableDns(
        {
            **MX,
            ("example.org", "MX"): DnsAnswer("ok", ("10 mx1.example.org",)),
            ("fabrikam.de", "MX"): DnsAnswer("ok", ("10 relay.fabrikam.de",)),
        }
    )
    tail = _hop(origin_host, "185.12.64.9") + f"From: {sender}\n\n"
    above = "".join(_hop(h, ip, by="store.example.org") for h, ip in relays)
    bare = run(tail, dns)
    full = run(above + tail, dns)
    for check in ("from_match", "sender_match", "from_mx_match"):
        assert full[check] == bare[check], check
