"""attachments: decided from the MIME structure only."""

from __future__ import annotations

import pytest
from mod_local_support import msg, run_over_corpus, services

from mailstats.mail.message import MimePart
from mailstats.modules.attachments import AttachmentsModule, extension, is_attachment, is_risky

MOD = AttachmentsModule()
HDR = "From: Accounts <billing@supplier.example>\nTo: dana@example.org\nSubject: Invoice\n\n"

PLAIN = MimePart("text/plain", "", "", 812, "utf-8")
HTML = MimePart("text/html", "", "", 4096, "utf-8")


def run(parts: list[MimePart] | None) -> dict:
    return MOD.evaluate(msg(HDR, parts=parts), services())


def test_pdf_attachment() -> None:
    r = run([PLAIN, MimePart("application/pdf", "attachment", "Invoice 0423.pdf", 48211)])
    assert r["has_attachment"] is True and r["risky"] is False
    assert r["count"] == 1 and r["total_size"] == 48211
    assert "Invoice 0423.pdf" in r["_why"]["has_attachment"]


def test_plain_and_html_only() -> None:
    r = run([PLAIN, HTML])
    assert (r["has_attachment"], r["risky"], r["count"], r["total_size"]) == (False, False, 0, 0)


def test_structure_not_fetched_is_unknown() -> None:
    r = run(None)
    assert (r["has_attachment"], r["risky"], r["count"], r["total_size"]) == (None,) * 4


def test_empty_structure() -> None:
    assert run([])["has_attachment"] is False


def test_named_part_without_disposition() -> None:
    # Old mailers: Content-Type: application/msword; name="cv.doc", no disposition.
    assert run([PLAIN, MimePart("application/msword", "", "cv.doc", 30000)])["count"] == 1
    # Embedded newsletter image in multipart/related: not an attachment.
    r = run([HTML, MimePart("image/png", "", "logo.png", 5000)])
    assert r["has_attachment"] is False
    # Inline disposition is never an attachment, even with a name.
    assert run([MimePart("application/pdf", "inline", "a.pdf", 10)])["has_attachment"] is False
    # Unnamed application part without disposition: the body of a weird mailer, not counted.
    assert run([MimePart("application/octet-stream", "", "", 10)])["has_attachment"] is False


def test_text_part_with_attachment_disposition_counts() -> None:
    r = run([PLAIN, MimePart("text/plain", "attachment", "notes.txt", 100)])
    assert r["has_attachment"] is True and r["risky"] is False


def test_unknown_disposition_token_counts() -> None:
    assert run([MimePart("application/pdf", "x-weird", "a.pdf", 1)])["has_attachment"] is True


def test_signatures_are_not_attachments() -> None:
    parts = [PLAIN, MimePart("application/pkcs7-signature", "attachment", "smime.p7s", 4000)]
    assert run(parts)["has_attachment"] is False
    parts = [PLAIN, MimePart("application/pgp-signature", "", "signature.asc", 833)]
    assert run(parts)["has_attachment"] is False


@pytest.mark.parametrize(
    "part",
    [
        MimePart("application/octet-stream", "attachment", "Invoice.pdf.exe", 1),
        MimePart("application/octet-stream", "attachment", "scan.JS", 1),
        MimePart("application/octet-stream", "attachment", "payment.vbs. ", 1),
        MimePart("application/vnd.ms-excel.sheet.macroenabled.12", "attachment", "q3", 1),
        MimePart("application/octet-stream", "attachment", "Order_88231.docm", 1),
        MimePart("application/zip", "attachment", "", 1),
        MimePart("application/x-rar-compressed", "attachment", "doc.rar", 1),
        MimePart("application/octet-stream", "attachment", "DHL_AWB.iso", 1),
        MimePart("text/html", "attachment", "Remittance_Advice.htm", 1),
        MimePart("application/octet-stream", "attachment", "fax.html", 1),
        MimePart("image/svg+xml", "attachment", "voicemail.svg", 1),
        MimePart("application/octet-stream", "attachment", "run.ps1", 1),
    ],
)
def test_risky(part: MimePart) -> None:
    r = run([PLAIN, part])
    assert r["has_attachment"] is True and r["risky"] is True


@pytest.mark.parametrize(
    "part",
    [
        MimePart("application/pdf", "attachment", "report.pdf", 1),
        MimePart(
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "attachment",
            "letter.docx",
            1,
        ),
        MimePart("image/jpeg", "attachment", "holiday.jpg", 1),
        MimePart("text/calendar", "attachment", "invite.ics", 1),
        MimePart("application/octet-stream", "attachment", "exe", 1),  # no dot: no extension
    ],
)
def test_not_risky(part: MimePart) -> None:
    assert run([PLAIN, part])["risky"] is False


def test_inline_html_body_is_not_risky() -> None:
    # The text/html body itself is no attachment, so its type must not make the mail risky.
    assert run([PLAIN, HTML])["risky"] is False


def test_helpers() -> None:
    assert extension("a.tar.GZ") == "gz"
    assert extension("noext") == ""
    assert extension("") == ""
    assert is_attachment(MimePart("message/rfc822", "", "fwd.eml", 1))
    assert is_risky(MimePart("application/x-msdownload", "", "", 1))


def test_malformed_parts_never_raise() -> None:
    parts = [
        MimePart("", "", "", 0),
        MimePart("APPLICATION/PDF", "ATTACHMENT", "X.PDF", -5),
        MimePart("garbage", "attachment", "...", 0),
    ]
    r = run(parts)
    assert r["count"] == 2 and r["total_size"] == 0


@pytest.mark.corpus
def test_corpus() -> None:
    counts = run_over_corpus(MOD, services())
    n = counts["_n"]
    # Every corpus message has its structure; a few dozen (mostly rspamd's MIME tests and
    # SpamAssassin's spam samples) carry attachments, a handful of them risky ones.
    assert counts["has_attachment"][None] == 0
    assert 20 <= counts["has_attachment"][True] <= n // 5
    assert 5 <= counts["risky"][True] <= counts["has_attachment"][True]
