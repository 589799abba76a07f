"""The test servers really work: otherwise every servers-marked test proves nothing."""

from __future__ import annotations

import ssl
import time

import dns.exception as dns_exception
import dns.message
import dns.query
import dns.rcode as rcode
import dns.rdatatype
import dns.reversename as reversename
import pytest
from imapclient import IMAPClient
from servers import Dns, Dovecot

from fixtures.generator import Mailbox
from fixtures.zone import DnsRecords

pytestmark = pytest.mark.servers
USER, PASSWORD = "dana@example.org", "dana-secret"


def _ask(server: Dns, name: str, rdtype: str, timeout: float = 2.0) -> dns.message.Message:
    q = dns.message.make_query(name, dns.rdatatype.from_text(rdtype))
    # TCP fallback: a long TXT answer does not fit a 512-byte UDP reply
    resp, _tcp = dns.query.udp_with_fallback(q, server.host, port=server.port, timeout=timeout)
    return resp


def _texts(resp: dns.message.Message) -> list[str]:
    return [rr.to_text() for rrset in resp.answer for rr in rrset]


# -- IMAP -----------------------------------------------------------------------------------
def test_plain_login_lists_special_use_folders(dovecot: Dovecot, dana_imap: Mailbox) -> None:
    with IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=10) as c:
        c.login(USER, PASSWORD)
        folders = {name: flags for flags, _sep, name in c.list_folders()}
        assert set(folders) >= {"INBOX", "Junk", "Sent"}
        assert b"\\Junk" in folders["Junk"] and b"\\Sent" in folders["Sent"]
        info = c.select_folder("Junk", readonly=True)
        assert info[b"EXISTS"] == len(dana_imap.folders["Junk"])


def test_wrong_password_is_rejected(dovecot: Dovecot) -> None:
    with (
        IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=10) as c,
        pytest.raises(IMAPClient.Error),
    ):
        c.login(USER, "not-the-password")


def test_starttls_verifies_with_generated_ca(dovecot: Dovecot) -> None:
    ctx = ssl.create_default_context(cafile=str(dovecot.cafile))
    with IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=10) as c:
        c.starttls(ctx)
        c.login(USER, PASSWORD)
        assert c.select_folder("INBOX", readonly=True)[b"EXISTS"] >= 0


def test_implicit_tls_verifies_and_rejects_unknown_ca(dovecot: Dovecot) -> None:
    ctx = ssl.create_default_context(cafile=str(dovecot.cafile))
    with IMAPClient(dovecot.host, dovecot.tls_port, ssl=True, ssl_context=ctx, timeout=10) as c:
        c.login(USER, PASSWORD)
    with pytest.raises(ssl.SSLError):
        IMAPClient(dovecot.host, dovecot.tls_port, ssl=True,
                   ssl_context=ssl.create_default_context(), timeout=10)  # fmt: skip


def test_header_fetch_is_counted_and_changes_nothing(dovecot: Dovecot, dana_imap: Mailbox) -> None:
    """The log counters and mail_log are what later tests rely on to prove read-only use."""
    before_snapshot = dovecot.flags_snapshot(USER)
    before = len(dovecot.session_counters(USER))
    n = len(dana_imap.folders["INBOX"])
    with IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=10) as c:
        c.login(USER, PASSWORD)
        c.select_folder("INBOX", readonly=True)
        data = c.fetch(c.search("ALL"), ["BODY.PEEK[HEADER]"])
        assert len(data) == n
        first = data[min(data)][b"BODY[HEADER]"]
        assert b"\nReceived: " in first and first.endswith(b"\r\n\r\n")
    dovecot.wait_sessions(before + 1, USER)
    session = dovecot.session_counters(USER)[-1]
    assert session["hdr_count"] == n
    assert session["body_count"] == 0 and session["expunged"] == 0
    assert session["reason"] == "Logged out"
    assert dovecot.flags_snapshot(USER) == before_snapshot
    assert dovecot.mail_log_events(USER) == []


def test_mail_log_and_snapshot_see_a_flag_change(dovecot: Dovecot) -> None:
    """The detectors must fire when something does change (here on a separate user)."""
    user = "erin@example.org"
    dovecot.deliver(user, "Archive/2024", [b"From: a@b.example\nSubject: x\n\nbody\n"])
    before = dovecot.flags_snapshot(user)
    assert "Archive/2024" in before and before["Archive/2024"][0][1] == "S"
    with IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=10) as c:
        c.login(user, dovecot.users[user])
        assert any(name == "Archive/2024" for _f, _s, name in c.list_sub_folders())
        c.select_folder("Archive/2024")
        c.add_flags([1], [b"\\Flagged"])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not dovecot.mail_log_events(user):
        time.sleep(0.05)
    events = dovecot.mail_log_events(user)
    assert [e["event"] for e in events] == ["flag_change"]
    after = dovecot.flags_snapshot(user)
    assert after != before and after["Archive/2024"][0][1] == "FS"


def test_rawlog_records_the_session(dovecot: Dovecot) -> None:
    with IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=10) as c:
        c.login(USER, PASSWORD)
        c.noop()
    deadline = time.monotonic() + 5
    files: list[str] = []
    while time.monotonic() < deadline and not files:
        files = [p.name for p in dovecot.rawlog_dir(USER).iterdir()]
        time.sleep(0.05)
    assert any(f.endswith(".in") for f in files)


# -- DNS ------------------------------------------------------------------------------------
def test_fixture_records_answer(dns: Dns, generated_mailbox: Mailbox) -> None:
    name, ip = next((n, i) for n, i in generated_mailbox.dns_records.hosts if ":" not in i)
    resp = _ask(dns, name, "A")
    assert resp.rcode() == rcode.NOERROR and _texts(resp) == [ip]
    ptr = _ask(dns, reversename.from_address(ip).to_text(), "PTR")
    assert _texts(ptr) == [name + "."]
    mx = _ask(dns, "example.org", "MX")
    assert _texts(mx) == ["10 mx1.example.org."]


def test_ptr_only_record(dns: Dns, generated_mailbox: Mailbox) -> None:
    ip, name = generated_mailbox.dns_records.ptrs[0]
    resp = _ask(dns, reversename.from_address(ip).to_text(), "PTR")
    assert _texts(resp) == [name + "."]


def test_unknown_names_are_nxdomain_not_refused(dns: Dns) -> None:
    for name, rdtype in [("no-such-host.example.net", "A"), ("8.8.8.8.in-addr.arpa", "PTR"),
                         ("example.com", "MX")]:  # fmt: skip
        assert _ask(dns, name, rdtype).rcode() == rcode.NXDOMAIN, name


def test_servfail_and_timeout_names(dns: Dns, generated_mailbox: Mailbox) -> None:
    records = generated_mailbox.dns_records
    if not (records.servfail and records.timeout):
        dns.add_records(DnsRecords(servfail=["broken.test"], timeout=["slow.test"]))
        sf, to = "broken.test", "slow.test"
    else:
        sf = reversename.from_address(records.servfail[0]).to_text()
        to = reversename.from_address(records.timeout[0]).to_text()
    assert _ask(dns, sf, "PTR").rcode() == rcode.SERVFAIL
    with pytest.raises(dns_exception.Timeout):
        _ask(dns, to, "PTR", timeout=1.0)


def test_add_records_long_txt_and_dnsbl(dns: Dns) -> None:
    spf = "v=spf1 " + " ".join(f"ip4:198.51.{i}.0/24" for i in range(30)) + " -all"
    assert len(spf) > 255
    dns.add_records(
        DnsRecords(
            txt=[("spf-long.example.net", spf)],
            dnsbl=[("zen.dnsbl.test", "203.0.113.7", "127.0.0.2")],
        )  # fmt: skip
    )
    resp = _ask(dns, "spf-long.example.net", "TXT")
    strings = [s.decode() for rrset in resp.answer for rr in rrset for s in rr.strings]
    assert "".join(strings) == spf and all(len(s) <= 255 for s in strings)
    assert _texts(_ask(dns, "7.113.0.203.zen.dnsbl.test", "A")) == ["127.0.0.2"]
    assert _ask(dns, "8.113.0.203.zen.dnsbl.test", "A").rcode() == rcode.NXDOMAIN
    assert ("TXT", "spf-long.example.net") in dns.query_log()
