"""DKIM verification shown only the signed header fields gives dkimpy's own verdict.

modules/dkim.py hands dkimpy the fields a signature names (h=) instead of the whole header
(dkimpy canonicalizes every field before it picks the named ones). That must never change a
verdict: for signed messages of any field mix, then changed after signing (a field added,
changed, duplicated, moved), the verdict and the exception, if any, equal those of dkimpy over
the whole header. Unit test: keys come from a dict, no DNS server.
"""

from __future__ import annotations

import base64
import re

import dkim as dkimpy
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailstats.modules import dkim as ours

KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)
PRIV = KEY.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.TraditionalOpenSSL,
    serialization.NoEncryption(),
)
RECORD = b"v=DKIM1; k=rsa; p=" + base64.b64encode(
    KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
)
NAMES = [b"From", b"To", b"Subject", b"Date", b"Message-ID", b"Reply-To", b"X-Extra",
         b"Received", b"cc"]  # fmt: skip
SIGNABLE = [n for n in NAMES if n != b"Received"]  # dkimpy refuses to sign Received
VALUES = st.sampled_from([b"a@example.com", b" spaced   value ", b"x\r\n\tfolded", b"", b"B"])


def _key(name: bytes, timeout: float = 5) -> bytes:
    return RECORD


@st.composite
def _signed_then_changed(draw: st.DrawFn) -> tuple[bytes, str]:
    fields = [(b"From", draw(VALUES))] + draw(
        st.lists(st.tuples(st.sampled_from(NAMES), VALUES), max_size=6)
    )
    draw(st.randoms(use_true_random=False)).shuffle(fields)
    head = b"".join(n + b":" + v + b"\r\n" for n, v in fields)
    raw = head + b"\r\n" + draw(st.sampled_from([b"body\r\n", b"", b"two\r\n\r\n\r\n"]))
    signed = [n.lower() for n in draw(st.lists(st.sampled_from(SIGNABLE), max_size=5))]
    canon = draw(st.sampled_from([(b"relaxed", b"relaxed"), (b"simple", b"simple"),
                                  (b"relaxed", b"simple")]))  # fmt: skip
    sig = dkimpy.sign(raw, b"s", b"example.com", PRIV, include_headers=[b"from", *signed],
                      canonicalize=canon)  # fmt: skip
    message = sig + raw
    change = draw(st.sampled_from(["none", "add", "alter", "dup-from", "spaces"]))
    lines = message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    at = draw(st.integers(1, len(lines)))
    if change == "add":
        lines.insert(at, draw(st.sampled_from(NAMES)) + b": added")
    elif change == "alter" and at < len(lines) and not lines[at].startswith((b"\t", b" ")):
        lines[at] = lines[at].split(b":", 1)[0] + b": altered"
    elif change == "dup-from":
        lines.insert(at, b"From: intruder@example.net")
    elif change == "spaces" and at < len(lines):
        lines[at] = lines[at].replace(b" ", b"  ")
    body = message.split(b"\r\n\r\n", 1)[1]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body, change


def _verdict(raw: bytes, signed_only: bool) -> object:
    d = ours.parsed(raw)
    try:
        prep = d.verify_headerprep(0)
        if not prep:
            return "unparseable"
        sig, include, sig_headers = prep
        if signed_only:
            return ours._verify_signed_fields(d, sig, include, sig_headers[0], _key)
        return bool(d.verify_sig(sig, include, sig_headers[0], _key))
    except dkimpy.DKIMException as exc:
        return type(exc).__name__, str(exc)[:40]


@settings(
    max_examples=250,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_signed_then_changed())
def test_signed_fields_only_give_dkimpys_verdict(case: tuple[bytes, str]) -> None:
    raw, _change = case
    assert _verdict(raw, signed_only=True) == _verdict(raw, signed_only=False)


def test_the_cases_include_passes_and_failures() -> None:
    """So that the property compares both outcomes: a pass, and a failure from a change."""
    base = b"From: a@example.com\r\nTo: b@example.org\r\nX-Extra: 1\r\n\r\nbody\r\n"
    signed = dkimpy.sign(base, b"s", b"example.com", PRIV, include_headers=[b"from", b"to"])
    assert _verdict(signed + base, True) is True
    changed = (signed + base).replace(b"To: b@example.org", b"To: c@example.org")
    assert _verdict(changed, True) is False
    unsigned_change = (signed + base).replace(b"X-Extra: 1", b"X-Extra: 2")
    assert _verdict(unsigned_change, True) is True
    intruder = (signed + base).replace(b"To:", b"From: x@example.net\r\nTo:")
    assert _verdict(intruder, True) is _verdict(intruder, False) is False


def test_a_parsed_key_is_kept_and_a_bad_one_is_not() -> None:
    dk = ours._dkimpy()
    first = dk.evaluate_pk(b"s._domainkey.example.com.", RECORD)
    assert dk.evaluate_pk(b"s._domainkey.example.com.", RECORD) is first
    for _ in range(2):
        try:
            dk.evaluate_pk(b"bad._domainkey.example.com.", b"v=DKIM1; k=rsa; p=!!")
        except dk.KeyFormatError:
            pass
        else:
            raise AssertionError("a malformed key record must raise each time")


#: The definition `has_signature_field` must keep: a field named DKIM-Signature (any case)
#: at the start of a header line, blanks allowed before its colon.
_SIGNATURE_LINE = re.compile(rb"(?:^|[\r\n])DKIM-Signature[ \t]*:", re.IGNORECASE)
_PIECES = st.sampled_from([
    b"DKIM-Signature:", b"dkim-signature :", b"DKIM-SIGNATURE\t:", b"DKIM-Signature", b"X-",
    b"DKIM-Signaturex:", b" DKIM-Signature:", b"\r\n", b"\n", b"\r", b":", b" ", b"\t",
    b"v=1; a=rsa-sha256", b"From: a@example.com", b"ARC-Message-Signature:", b"dkim-",
])  # fmt: skip


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(_PIECES, max_size=12))
def test_the_fetching_side_search_finds_a_signature_field_as_the_line_regex_does(
    pieces: list[bytes],
) -> None:
    header = b"".join(pieces)
    assert ours.has_signature_field(header) is (_SIGNATURE_LINE.search(header) is not None)
