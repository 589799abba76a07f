"""End to end against a real Dovecot and a real dnsmasq: exact counts, read-only, incremental.

The generator decides each message's expected check values from the scenario that made it,
independently of mailstats' code; here `mailstats --batch` must reproduce them exactly, leave
the mailbox untouched (Dovecot's own mail_log and flags), and on a re-run fetch only what is
new (Dovecot's per-session hdr_count / body_count).
"""

from __future__ import annotations

import csv
import itertools
import json
import time
from pathlib import Path

import pytest

from mailstats.cli import run_batch

pytestmark = pytest.mark.servers

_users = itertools.count(1)


def new_user(dovecot, mailbox) -> str:
    """A fresh IMAP user holding the generated mailbox (the session fixture stays pristine)."""
    # Unique against the server's own list: a module imported twice has two counters.
    user = f"e2e{next(_users)}@example.org"
    while user in dovecot.users:
        user = f"e2e{next(_users)}@example.org"
    dovecot.add_user(user, "pw-" + user)
    wait_login(dovecot, user)
    for folder, msgs in mailbox.folders.items():
        dovecot.deliver(user, folder, [m.raw for m in msgs])
    return user


def wait_login(dovecot, user: str, timeout: float = 5.0) -> None:
    """Dovecot re-reads its passwd-file at most once a second: wait until the user exists."""
    import imapclient

    deadline = time.monotonic() + timeout
    seen = len(dovecot.session_counters(user))
    while True:
        client = imapclient.IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=5)
        try:
            client.login(user, dovecot.users[user])
        except imapclient.exceptions.LoginError:
            client.shutdown()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
            continue
        client.logout()
        # its logout line is written asynchronously: wait, so later session counts are exact
        dovecot.wait_sessions(seen + 1, user)
        return


def accounts_file(
    tmp_path: Path,
    dovecot,
    dns,
    user: str,
    mailbox,
    *,
    security: str = "none",
    modules: tuple[str, ...] = ("received", "internal"),
    **extra: str,
) -> Path:
    port = dovecot.tls_port if security == "ssl" else dovecot.port
    lines = [
        "[settings]",
        f"dns_servers = [{json.dumps(dns.server_spec)}]",
        f"modules = {json.dumps(list(modules))}",
        f"cache = {json.dumps(str(tmp_path / 'cache.sqlite'))}",
        "dns_timeout = 1.0",
        "",
        "[[accounts]]",
        'name = "dana"',
        f'host = "{dovecot.host}"',
        f"port = {port}",
        f'security = "{security}"',
        f'username = "{user}"',
        f'password = "{dovecot.users[user]}"',
        f"ca_file = {json.dumps(str(dovecot.cafile))}",
        *mailbox.account_toml(),
    ]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    path = tmp_path / "accounts.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def read_summary(out: Path) -> dict[tuple[str, str], tuple[int, int, int]]:
    with (out / "summary.csv").open() as fh:
        return {
            (r["folder"], r["check"]): (int(r["matched"]), int(r["applicable"]), int(r["total"]))
            for r in csv.DictReader(fh)
        }


def run_session(dovecot, user: str, cfg: Path, out: Path) -> dict:
    """Run the batch and return Dovecot's counters for the session it opened."""
    before = len(dovecot.session_counters(user))
    assert run_batch(str(cfg), str(out), quiet=True) == 0
    dovecot.wait_sessions(before + 1, user)
    sessions = dovecot.session_counters(user)
    assert len(sessions) == before + 1, sessions
    return sessions[-1]


def test_exact_counts_read_only_and_incremental(tmp_path, dovecot, dns, generated_mailbox):
    mailbox = generated_mailbox
    user = new_user(dovecot, mailbox)
    before = dovecot.flags_snapshot(user)
    cfg = accounts_file(tmp_path, dovecot, dns, user, mailbox)
    out = tmp_path / "out"

    first = run_session(dovecot, user, cfg, out)
    got = read_summary(out)
    expected = {
        k: v
        for k, v in mailbox.expected_counts().items()
        if k[1] in ("received.from_match", "received.sender_match", "internal.internal")
    }
    assert {"received.from_match", "received.sender_match"} <= {c for _, c in expected}
    for key, value in sorted(expected.items()):
        assert got[key] == value, key
    # messages.csv has one row per message and the origin IPs the generator chose
    with (out / "messages.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(mailbox.messages())
    want_origin = {
        m.facts["message_id"]: m.facts.get("origin_ip") or "" for m in mailbox.messages()
    }
    wrong = [r["message_id"] for r in rows if r["origin_ip"] != want_origin[r["message_id"]]]
    assert not wrong

    # Read-only: no flag or message changed, and Dovecot logged no change of any kind.
    assert dovecot.flags_snapshot(user) == before
    assert dovecot.mail_log_events(user) == []
    assert first["hdr_count"] == len(mailbox.messages())

    # Re-run with no new mail: no header or body fetched at all.
    again = run_session(dovecot, user, cfg, out)
    assert again["hdr_count"] == 0 and again["body_count"] == 0
    assert read_summary(out) == got

    # Ten new messages: exactly those ten fetched; counts move by what they carry.
    extra = mailbox.folders["INBOX"][:10]
    dovecot.deliver(user, "INBOX", [m.raw for m in extra])
    third = run_session(dovecot, user, cfg, out)
    assert third["hdr_count"] == 10 and third["body_count"] == 0
    now = read_summary(out)
    m, a, t = got[("INBOX", "received.from_match")]
    add_m = sum(1 for x in extra if x.expect["received.from_match"] is True)
    add_a = sum(1 for x in extra if x.expect["received.from_match"] is not None)
    assert now[("INBOX", "received.from_match")] == (m + add_m, a + add_a, t + 10)
    assert dovecot.mail_log_events(user) == []


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_modes_verify_the_certificate(tmp_path, dovecot, dns, generated_mailbox, security):
    user = new_user(dovecot, generated_mailbox)
    cfg = accounts_file(
        tmp_path, dovecot, dns, user, generated_mailbox, security=security, modules=("internal",)
    )
    assert run_batch(str(cfg), str(tmp_path / "out"), quiet=True) == 0
    # Without the test CA the certificate is not trusted: a clear failure, exit code 1.
    text = cfg.read_text().replace(f'ca_file = "{dovecot.cafile}"', "")
    cfg.write_text(text)
    (tmp_path / "cache.sqlite").unlink()
    assert run_batch(str(cfg), str(tmp_path / "out2"), quiet=True) == 1
    manifest = json.loads((tmp_path / "out2" / "manifest.json").read_text())
    assert manifest["accounts"][0]["status"] == "failed"
    assert "certificate" in manifest["accounts"][0]["error"]


def test_wrong_password_fails_one_account_and_others_still_run(
    tmp_path, dovecot, dns, generated_mailbox, capsys
):
    user = new_user(dovecot, generated_mailbox)
    cfg = accounts_file(tmp_path, dovecot, dns, user, generated_mailbox, modules=("internal",))
    good = cfg.read_text()
    bad = good.replace('name = "dana"', 'name = "wrongpw"').replace(
        f'password = "{dovecot.users[user]}"', 'password = "not-the-password"'
    )
    accounts = good.split("[[accounts]]")[1]
    bad_account = bad.split("[[accounts]]")[1]
    cfg.write_text(
        good.split("[[accounts]]")[0] + "[[accounts]]" + bad_account + "[[accounts]]" + accounts
    )
    assert run_batch(str(cfg), str(tmp_path / "out"), quiet=True) == 1
    err = capsys.readouterr().err
    assert "wrongpw" in err and "wrong user name or password" in err
    assert "not-the-password" not in err
    summary = read_summary(tmp_path / "out")
    assert ("INBOX", "internal.internal") in summary  # the good account was still written


MIME_SAMPLES = [
    b"From: a@example.com\nTo: dana@example.org\nSubject: plain\n\nhello\n",
    b"From: a@example.com\nSubject: mixed\nMIME-Version: 1.0\n"
    b'Content-Type: multipart/mixed; boundary="B1"\n\n--B1\n'
    b'Content-Type: multipart/alternative; boundary="B2"\n\n--B2\n'
    b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
    b'caf=C3=A9 "quoted" (parens)\n--B2\nContent-Type: text/html; charset=iso-8859-1\n\n'
    b"<p><img src=x></p>\n--B2--\n--B1\n"
    b'Content-Type: application/pdf; name="bill (1).pdf"\n'
    b'Content-Disposition: attachment; filename="Rechnung \xc3\xbcber.pdf"\n'
    b"Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--B1\n"
    b"Content-Type: message/rfc822\n\nFrom: inner@example.net\nSubject: inner\n\nbody\n--B1--\n",
]


def test_fast_fetch_matches_imapclient(dovecot, generated_mailbox) -> None:
    """Our FETCH reader and imapclient's parser agree on real Dovecot responses."""
    import imapclient

    from mailstats.sources.imap import fast_fetch, parts_from_bodystructure

    user = new_user(dovecot, generated_mailbox)
    dovecot.deliver(user, "INBOX", MIME_SAMPLES * 3)
    client = imapclient.IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=10)
    client.login(user, dovecot.users[user])
    try:
        client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL")
        items = ["BODY.PEEK[HEADER]", "BODYSTRUCTURE", "RFC822.SIZE", "BODY.PEEK[1]<0.64>"]
        ours = fast_fetch(client, uids, items)
        theirs = client.fetch(uids, items)
    finally:
        client.logout()
    assert sorted(ours) == sorted(theirs) == sorted(uids)
    for uid in uids:
        a, b = ours[uid], theirs[uid]
        assert a[b"BODY[HEADER]"] == b[b"BODY[HEADER]"]
        assert a[b"RFC822.SIZE"] == b[b"RFC822.SIZE"]
        assert a[b"BODY[1]<0>"] == b[b"BODY[1]<0>"]
        assert parts_from_bodystructure(a[b"BODYSTRUCTURE"]) == parts_from_bodystructure(
            b[b"BODYSTRUCTURE"]
        )
    mixed = [ours[u] for u in uids if b"Subject: mixed" in ours[u][b"BODY[HEADER]"]]
    parts = parts_from_bodystructure(mixed[0][b"BODYSTRUCTURE"])
    assert [(p.section, p.content_type) for p in parts] == [
        ("1.1", "text/plain"),
        ("1.2", "text/html"),
        ("2", "application/pdf"),
        ("3", "message/rfc822"),
    ]
    assert parts[2].disposition == "attachment" and parts[2].filename.startswith("Rechnung")
