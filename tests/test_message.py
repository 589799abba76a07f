"""The message model: total accessors, raw 8-bit headers decoded, not mangled."""

from __future__ import annotations

import pytest

from mailstats.mail.message import Message, MimePart, parts_from_json, parts_to_json


def msg(raw: bytes) -> Message:
    return Message("acct", "INBOX", 1, raw)


def test_raw_utf8_and_latin1_headers_are_decoded() -> None:
    m = msg("From: José Müller <jose@bücher.de>\nTo: Dana Whitfield <d@x.org>\n\n".encode())
    assert m.header("From") == "José Müller <jose@bücher.de>"
    assert m.from_address is not None and m.from_address.domain == "xn--bcher-kva.de"
    latin = msg("From: Jos\xe9 <j@x.de>\n\n".encode("latin-1"))
    assert latin.header("From") == "José <j@x.de>"


def test_encoded_words_and_folding() -> None:
    m = msg(b"Subject: =?utf-8?q?caf=C3=A9?=\n  au lait\nReceived: from a\n\tby b; x\n\n")
    assert m.header("Subject") == "café au lait"
    assert m.raw_header_all("Received") == ["from a by b; x"]


@pytest.mark.parametrize("raw", [b"", b"\x00\x00", b"no colon here\n\nbody", b"\r\r\r"])
def test_garbage_is_malformed_and_never_raises(raw: bytes) -> None:
    m = msg(raw)
    assert m.malformed
    assert m.header("From") == "" and m.header_all("Received") == [] and m.hops == []
    assert m.from_address is None and m.message_id == ""


def test_parts_json_roundtrip_and_junk() -> None:
    parts = [MimePart("text/plain", "", "", 10, "utf-8", "1", "base64")]
    assert parts_from_json(parts_to_json(parts)) == parts
    assert parts_from_json("not json") is None
    assert parts_from_json(None) is None
    # an older, shorter row still loads
    assert parts_from_json('[["image/png","inline","a.png",5,""]]')[0].section == ""
