"""mail/dkim_fast.py against the dkimpy code it stands in for.

A DKIM verdict is only as right as the bytes hashed and the RSA check, so each replacement
is compared with dkimpy's own functions (which the patch leaves in place under their module
names): the canonicalizations on byte strings made of the characters that matter (spaces,
tabs, every kind of line break) and on every real corpus message, the RSA check on valid
signatures, damaged ones, ones dkimpy reduces modulo n, ones of the wrong length, and keys
outside what OpenSSL is asked about.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import dkim
import dkim.canonicalization as canon
import dkim.crypto
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, utils
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.generator import dkim_key
from mailstats.mail import dkim_fast
from mailstats.mail.rfc822 import rfc822_split
from mailstats.modules.dkim import _dkimpy

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
PIECES = [b" ", b"  ", b"\t", b" \t ", b"\r\n", b"\n", b"\r", b"a", b"xy z", b"\x0b", b"\x00"]
texts = st.lists(st.sampled_from(PIECES), max_size=30).map(b"".join)


def dkimpy_body(body: bytes) -> bytes:
    """dkimpy's Relaxed.canonicalize_body, from its module functions."""
    return canon.correct_empty_body(
        canon.strip_trailing_lines(canon.compress_whitespace(canon.strip_trailing_whitespace(body)))
    )


def dkimpy_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [
        (
            n.lower().rstrip(),
            canon.compress_whitespace(canon.unfold_header_value(v)).strip() + b"\r\n",
        )
        for n, v in headers
    ]


@settings(derandomize=True, max_examples=2000, deadline=None, database=None)
@given(texts | st.binary(max_size=60))
def test_relaxed_body_is_dkimpys(body: bytes) -> None:
    assert dkim_fast.relaxed_body(body) == dkimpy_body(body)
    assert dkim_fast.relaxed_body(body) == dkimpy_body(body)  # the memo's answer


def test_the_body_memo_answers_only_for_the_same_object() -> None:
    a = b"x  y \r\n" * 3
    b = b"p\t\tq\r\n\r\n"
    assert dkim_fast.relaxed_body(a) == b"x y\r\n" * 3
    assert dkim_fast.relaxed_body(b) == b"p q\r\n"
    assert dkim_fast.relaxed_body(bytes(bytearray(a))) == b"x y\r\n" * 3


@settings(derandomize=True, max_examples=800, deadline=None, database=None)
@given(st.lists(st.tuples(st.sampled_from([b"From", b"SUBJECT ", b"x-A\t"]), texts), max_size=5))
def test_relaxed_headers_are_dkimpys(headers: list[tuple[bytes, bytes]]) -> None:
    assert dkim_fast.relaxed_headers(headers) == dkimpy_headers(headers)


def test_patched_into_dkimpy() -> None:
    dk = _dkimpy()
    assert dk.canonicalization.Relaxed.canonicalize_body is dkim_fast.relaxed_body
    assert dk.canonicalization.Relaxed.canonicalize_headers is dkim_fast.relaxed_headers
    assert dk.RSASSA_PKCS1_v1_5_verify is not dkim.crypto.RSASSA_PKCS1_v1_5_verify


def test_canonicalizations_are_dkimpys_on_the_corpus() -> None:
    files = sorted(CORPUS.rglob("*.eml")) if CORPUS.is_dir() else []
    if not files:
        pytest.skip("corpus not present")
    for path in files:
        try:
            headers, body = rfc822_split(path.read_bytes())
        except Exception:  # noqa: BLE001 - a header dkimpy refuses: nothing to canonicalize
            continue
        assert dkim_fast.relaxed_body(body) == dkimpy_body(body), path.name
        pairs = [(n, v) for n, v in headers]
        assert dkim_fast.relaxed_headers(pairs) == dkimpy_headers(pairs), path.name


# -- RSA ------------------------------------------------------------------------------------


def _key(label: str, bits: int):  # type: ignore[no-untyped-def]
    pem, _ = dkim_key(label, bits)
    return serialization.load_pem_private_key(pem, None)


KEYS = {bits: _key(f"dkim-fast/{bits}", bits) for bits in (1024, 2048)}
VERIFY = dkim_fast.rsa_verifier(dkim.crypto.RSASSA_PKCS1_v1_5_verify)
ALGORITHMS = {"sha256": hashes.SHA256(), "sha1": hashes.SHA1()}


@st.composite
def cases(draw: st.DrawFn) -> tuple[object, bytes, dict]:
    key = KEYS[draw(st.sampled_from(sorted(KEYS)))]
    numbers = key.public_key().public_numbers()
    n, e = numbers.n, numbers.e
    size = (n.bit_length() + 7) // 8
    name = draw(st.sampled_from(["sha256", "sha1", "md5"]))
    h = hashlib.new(name, draw(st.binary(max_size=40)))
    signed_name = name if name != "md5" else "sha256"
    digest = h.digest() if name != "md5" else hashlib.sha256(b"x").digest()
    good = key.sign(digest, padding.PKCS1v15(), utils.Prehashed(ALGORITHMS[signed_name]))
    kind = draw(st.sampled_from(["good", "flip", "random", "plus_n", "short", "long", "other"]))
    sig = good
    if kind == "flip":
        i = draw(st.integers(0, size - 1))
        sig = good[:i] + bytes([good[i] ^ (1 << draw(st.integers(0, 7)))]) + good[i + 1 :]
    elif kind == "random":
        sig = draw(st.binary(min_size=size, max_size=size))
    elif kind == "plus_n":  # the same value modulo n, when it still fits: dkimpy accepts it
        value = int.from_bytes(good, "big") + n
        sig = value.to_bytes(size, "big") if value < 1 << (8 * size) else b"\xff" * size
    elif kind == "short":  # leading zero bytes dropped: the same integer
        sig = good.lstrip(b"\x00")[: draw(st.integers(1, size))]
    elif kind == "long":
        sig = b"\x00" + good
    elif kind == "other":  # a signature over another digest
        other = hashlib.new(signed_name, b"other").digest()
        sig = key.sign(other, padding.PKCS1v15(), utils.Prehashed(ALGORITHMS[signed_name]))
    pk = {"modulus": n, "publicExponent": e}
    if draw(st.booleans()) and kind == "random":
        pk = {"modulus": n >> draw(st.integers(1, 700)) | 1, "publicExponent": e}  # small, odd
    return h, sig, pk


@settings(derandomize=True, max_examples=600, deadline=None, database=None)
@given(cases())
def test_rsa_verify_is_dkimpys(case: tuple[object, bytes, dict]) -> None:
    def outcome(fn):  # type: ignore[no-untyped-def]
        try:
            return fn(*case)
        except Exception as exc:  # noqa: BLE001 - dkimpy's error (md5: KeyError) is kept
            return type(exc).__name__

    assert outcome(VERIFY) == outcome(dkim.crypto.RSASSA_PKCS1_v1_5_verify)


def test_rsa_verify_accepts_a_good_signature_and_refuses_a_changed_one() -> None:
    key = KEYS[2048]
    numbers = key.public_key().public_numbers()
    pk = {"modulus": numbers.n, "publicExponent": numbers.e}
    h = hashlib.sha256(b"signed header fields")
    sig = key.sign(h.digest(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    assert VERIFY(h, sig, pk) is True
    assert VERIFY(hashlib.sha256(b"changed"), sig, pk) is False


def test_rsa_verify_keeps_dkimpys_answer_where_openssl_refuses_the_key() -> None:
    """OpenSSL calls a valid signature invalid when a modulus over 3,072 bits has an
    exponent over 64 bits (its limit); dkimpy's arithmetic accepts it, and so must we."""
    import math
    import random

    from fixtures.generator import _prime

    rng = random.Random("dkim-fast/large-exponent")
    p, q = _prime(1600, rng), _prime(1600, rng)
    n, phi = p * q, (p - 1) * (q - 1)
    e = (1 << 65) + 1
    while math.gcd(e, phi) != 1:
        e += 2
    h = hashlib.sha256(b"signed header fields")
    size = (n.bit_length() + 7) // 8
    encoded = int.from_bytes(dkim.crypto.EMSA_PKCS1_v1_5_encode(h, size), "big")
    sig = pow(encoded, pow(e, -1, phi), n).to_bytes(size, "big")
    pk = {"modulus": n, "publicExponent": e}
    assert dkim.crypto.RSASSA_PKCS1_v1_5_verify(h, sig, pk) is True
    assert VERIFY(h, sig, pk) is True
