"""The read-only guard refuses writes before they are sent, on both command paths."""

from __future__ import annotations

import pytest

from mailstats.sources import FolderInfo, guess_role
from mailstats.sources.imap import WriteRefused, _check_command, parts_from_bodystructure


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("LOGIN", ("u", "p")),
        ("EXAMINE", ("INBOX",)),
        ("UID", ("SEARCH", "ALL")),
        ("UID", ("FETCH", "1:5", "(BODY.PEEK[HEADER] BODYSTRUCTURE RFC822.SIZE)")),
        ("FETCH", ("1", "(BODY.PEEK[1.2]<0.2048>)")),
        ("LIST", ('""', "*")),
        ("STATUS", ("INBOX", "(MESSAGES)")),
        ("NOOP", ()),
        ("LOGOUT", ()),
    ],
)
def test_reads_pass(name: str, args: tuple) -> None:
    _check_command(name, args)


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("STORE", ("1", "+FLAGS", "(\\Seen)")),
        ("UID", ("STORE", "1", "+FLAGS", "(\\Deleted)")),
        ("UID", ("COPY", "1", "Junk")),
        ("UID", ("MOVE", "1", "Junk")),
        ("UID", ("EXPUNGE", "1")),
        ("EXPUNGE", ()),
        ("APPEND", ("INBOX",)),
        ("CREATE", ("X",)),
        ("DELETE", ("X",)),
        ("RENAME", ("X", "Y")),
        ("SELECT", ("INBOX",)),
        ("CLOSE", ()),
        ("FETCH", ("1", "(BODY[HEADER])")),
        ("UID", ("FETCH", "1", "(RFC822)")),
        ("UID", ("FETCH", "1", "(BODY.PEEK[HEADER] BODY[TEXT])")),
        ("FETCH", ("1", b"(RFC822.TEXT)")),
    ],
)
def test_writes_and_seen_setting_fetches_refused(name: str, args: tuple) -> None:
    with pytest.raises(WriteRefused):
        _check_command(name, args)


def test_bodystructure_to_parts() -> None:
    # multipart/mixed( multipart/alternative(text/plain, text/html), application/pdf attachment)
    text = (
        b"text",
        b"plain",
        (b"charset", b"utf-8"),
        None,
        None,
        b"quoted-printable",
        120,
        4,
        None,
        None,
        None,
        None,
    )
    html = (
        b"text",
        b"html",
        (b"charset", b"iso-8859-1"),
        None,
        None,
        b"base64",
        800,
        10,
        None,
        None,
        None,
        None,
    )
    pdf = (
        b"application",
        b"pdf",
        (b"name", b"bill.pdf"),
        None,
        None,
        b"base64",
        50000,
        None,
        (b"attachment", (b"filename", b"invoice.pdf")),
        None,
        None,
    )
    # imapclient nests multipart children in a list at index 0
    from imapclient.response_types import BodyData

    alt = BodyData(([BodyData(text), BodyData(html)], b"alternative"))
    full = BodyData(([alt, BodyData(pdf)], b"mixed"))
    parts = parts_from_bodystructure(full)
    assert [(p.section, p.content_type, p.disposition, p.filename) for p in parts] == [
        ("1.1", "text/plain", "", ""),
        ("1.2", "text/html", "", ""),
        ("2", "application/pdf", "attachment", "invoice.pdf"),
    ]
    assert parts[0].encoding == "quoted-printable" and parts[1].charset == "iso-8859-1"
    assert parts[2].size == 50000
    single = parts_from_bodystructure(BodyData(text))
    assert [(p.section, p.content_type) for p in single] == [("1", "text/plain")]


@pytest.mark.parametrize(
    ("name", "flags", "role"),
    [
        ("INBOX", (), "ham"),
        ("Junk", (), "spam"),
        ("Spam", (), "spam"),
        ("Bulk Mail", (), "spam"),
        ("[Gmail]/Spam", ("\\HasNoChildren", "\\Junk"), "spam"),
        ("Whatever", ("\\Junk",), "spam"),
        ("Sent Items", (), "sent"),
        ("Sent Messages", (), "sent"),
        ("[Gmail]/Sent Mail", ("\\Sent",), "sent"),
        ("INBOX.Sent", (), "sent"),
        ("[Gmail]/All Mail", ("\\All",), ""),
        ("Trash", ("\\Trash",), ""),
        ("Projects", (), ""),
        ("[Gmail]", ("\\Noselect",), ""),
    ],
)
def test_guess_role(name: str, flags: tuple, role: str) -> None:
    assert guess_role(FolderInfo(name, flags, "/")) == role
