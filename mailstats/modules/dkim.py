"""DKIM: is the message signed, does a signature verify *now*, and is it the From domain's?

Why it looks like this:
- Verification needs the exact bytes of the whole message, so the module asks for the raw
  message (`needs` "raw") but only for messages that carry a DKIM-Signature (`wants`): an
  unsigned message costs no body download.
- dkimpy does the cryptography; its key look-up goes through `services.dns` (cached,
  concurrent, timeouts reported as "unknown") via a small `dnsfunc` adapter, never through
  dkimpy's own resolver.
- dkimpy answers only True/False and logs the reason. The study needs to know *why* a
  signature fails (a rotated key after months in an archive is not a forgery), so the
  adapter records what DNS said and the module sorts each failure into a small set of
  classes (the `failure` extra).
- "Unknown" is kept apart from "invalid": a DNS timeout, a message cut at the 1 MiB fetch
  cap or an algorithm this installation cannot check gives None, not False.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mailstats.mail import dkim_fast
from mailstats.mail.rfc822 import rfc822_split
from mailstats.modules import HEADER, RAW, Module, Setting, Value

if TYPE_CHECKING:
    import dkim as dkimpy

    from mailstats.mail.message import Message
    from mailstats.services import Services

#: What may follow the field name "DKIM-Signature" up to its colon (RFC 5322 field names
#: hold no space; old mailers put blanks before the colon).
_AFTER_NAME = re.compile(rb"[ \t]*:")


def has_signature_field(header: bytes) -> bool:
    """Whether a header block holds a DKIM-Signature field at the start of a line.

    Asked in the fetching process for every message: a literal search of the lower-cased
    bytes (about 1 us for a 1 KB header) instead of a case-blind regex that tries every
    position (18 us, and 4 times that for a real 5 KB header)."""
    low = header.lower()
    at = low.find(b"dkim-signature")
    while at >= 0:
        if (at == 0 or low[at - 1] in b"\r\n") and _AFTER_NAME.match(low, at + 14):
            return True
        at = low.find(b"dkim-signature", at + 14)
    return False


#: Signatures beyond this many are ignored: each costs a key look-up and an RSA operation.
MAX_SIGNATURES = 8

BODY_HASH = "body_hash"
BAD_SIGNATURE = "bad_signature"
KEY_MISSING = "key_missing"
KEY_REVOKED = "key_revoked"
MALFORMED = "malformed"
UNSUPPORTED = "unsupported_algorithm"
DNS_ERROR = "dns_error"
EXPIRED = "expired"
TRUNCATED = "truncated"
NOT_FETCHED = "not_fetched"


def _int2str(n: int, length: int = -1) -> bytearray:
    """dkimpy's integer-to-bytes (its low `length` bytes, or as many as `n` needs), by
    int.to_bytes instead of a Python loop over the bytes of every RSA result."""
    if length < 0:
        return bytearray(n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big"))
    return bytearray((n & ((1 << (8 * length)) - 1)).to_bytes(length, "big"))


def _str2int(s: bytes | bytearray) -> int:
    return int.from_bytes(bytes(s), "big")


def _rsa_encrypt(message: bytes | bytearray, pk: dict, mlen: int) -> bytearray:
    """dkimpy's RSA public operation, its `pow` computed by OpenSSL (mail/modexp.py says
    why): 140-200 against about 30 us for a 2048-bit key. Imported here: ctypes is not
    needed by a run that verifies nothing."""
    from mailstats.mail.modexp import modexp

    return _int2str(modexp(_str2int(message), pk["publicExponent"], pk["modulus"]), mlen)


@cache
def _dkimpy() -> ModuleType:
    """dkimpy, imported when a message is first looked at: with dnspython's resolver it
    is a twentieth of a second of every start, and a re-run with nothing new needs neither."""
    import dkim
    import dkim.canonicalization
    import dkim.crypto
    import dkim.util

    # dkimpy's RSA runs on these two; tests/test_rfc822.py checks them against its originals.
    dkim.crypto.int2str = _int2str
    dkim.crypto.str2int = _str2int
    dkim.crypto.rsa_encrypt = _rsa_encrypt
    # dkimpy parses the key record (tags, base64, ASN.1) at every signature: a tenth of its
    # verification time. Most mail of a mailbox is signed with a few keys, and the parsed
    # key is only read; a record that fails to parse raises each time (never kept).
    if not hasattr(dkim.evaluate_pk, "cache_info"):
        dkim.evaluate_pk = lru_cache(maxsize=1024)(dkim.evaluate_pk)
    # Relaxed canonicalization computed faster with dkimpy's results (mail/dkim_fast.py
    # says why; tests/test_dkim_fast.py checks it against dkimpy's own functions).
    relaxed = dkim.canonicalization.Relaxed
    relaxed.canonicalize_body = staticmethod(dkim_fast.relaxed_body)
    relaxed.canonicalize_headers = staticmethod(dkim_fast.relaxed_headers)
    dkim.select_headers = dkim_fast.select_headers
    return dkim


def parsed(raw: bytes) -> dkimpy.DKIM:
    """dkimpy's verifier over `raw`, split by rfc822_split (dkimpy's parse, faster)."""
    d = _dkimpy().DKIM(None, logger=_quiet)
    d.headers, d.body = rfc822_split(raw)
    return d


#: Failure classes that say nothing about the signature itself: valid is None, not False.
UNDECIDED = frozenset({DNS_ERROR, TRUNCATED, NOT_FETCHED})

# dkimpy logs every failure at ERROR level; the module reports them itself.
_quiet = logging.getLogger("mailstats.modules.dkim.dkimpy")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


@dataclass
class SigResult:
    domain: str
    valid: bool | None
    failure: str = ""  # "" when valid
    detail: str = ""


class _KeyLookup:
    """dkimpy `dnsfunc` over services.dns that remembers what the look-up returned."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.failed_status = ""
        self.record: bytes | None = None
        self.name = ""

    def __call__(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        self.name = name.rstrip(".")
        answer = self.services.dns.query(self.name, "TXT")
        if answer.failed:
            self.failed_status = answer.status
            raise _dkimpy().DnsTimeoutError(f"{self.name}: {answer.status}")
        if not answer.records:
            return None
        # Several TXT records at a selector: prefer the one that is a DKIM key.
        records = sorted(answer.records, key=lambda r: "p=" not in r)
        self.record = records[0].encode("utf-8", "replace")
        return self.record


def signature_tags(value: str) -> dict[str, str]:
    """Tags of one DKIM-Signature header value; {} when it is not a tag list."""
    util = _dkimpy().util
    try:
        tags = util.parse_tag_value(value.encode("utf-8", "replace"))
    except (util.InvalidTagValueList, ValueError, IndexError):
        return {}
    return {k.decode("ascii", "replace"): v.decode("utf-8", "replace") for k, v in tags.items()}


def _key_name(tags: dict[str, str]) -> str | None:
    d, s = tags.get("d", "").strip(), tags.get("s", "").strip()
    if not d or not s or re.search(r"[\s;\\]", d + s):
        return None
    return f"{s}._domainkey.{d}"


def _classify_false(lookup: _KeyLookup) -> tuple[str, str]:
    """Why dkimpy returned False: its own reasons only go to its log."""
    if lookup.failed_status:
        return DNS_ERROR, f"key look-up {lookup.name}: {lookup.failed_status}"
    if lookup.record is None:
        return KEY_MISSING, f"no key at {lookup.name}"
    dk = _dkimpy()
    try:
        tags = dk.util.parse_tag_value(lookup.record)
    except dk.util.InvalidTagValueList:
        return MALFORMED, f"key record at {lookup.name} is not a tag list"
    if b"p" in tags and not tags[b"p"].strip():
        return KEY_REVOKED, f"key at {lookup.name} is revoked (empty p=)"
    if b"p" not in tags:
        return KEY_MISSING, f"record at {lookup.name} has no p= key"
    if tags.get(b"k", b"rsa") not in (b"rsa", b"ed25519"):
        return UNSUPPORTED, f"key type k={tags[b'k'].decode('ascii', 'replace')}"
    try:
        dk.evaluate_pk(lookup.name, lookup.record)
    except dk.NaClNotFoundError:
        return UNSUPPORTED, "ed25519 key; pynacl is not installed"
    except Exception as exc:  # noqa: BLE001 - anything dkimpy rejects in a key
        return MALFORMED, f"key at {lookup.name} unusable: {exc}"
    return BAD_SIGNATURE, "signature does not match the signed headers"


def verify_one(
    d: dkimpy.DKIM, idx: int, services: Services, truncated: bool, header_only: bool = False
) -> SigResult:
    """Verify signature `idx` of a parsed message and say why it fails.

    `header_only` checks the signature over the signed header fields alone: the body hash
    (bh=) is one of those fields, so a pass proves the signer wrote these headers and that
    body hash, but not that the body is the one it signed.
    """
    lookup = _KeyLookup(services)
    domain = ""
    dk = _dkimpy()
    try:
        prep = _headerprep(d, idx)
        if not prep:
            return SigResult("", False, MALFORMED, "DKIM-Signature not parseable")
        sig, include, sig_headers = prep
        domain = sig.get(b"d", b"").decode("utf-8", "replace").strip().lower()
        if header_only:
            sig = {k: v for k, v in sig.items() if k != b"bh"}  # dkimpy skips the body then
        ok = _verify_signed_fields(d, sig, include, sig_headers[idx], lookup)
    except dk.ValidationError as exc:
        text = str(exc)
        domain = domain or _domain_of(d, idx)
        if "body hash mismatch" in text:
            if truncated:
                return SigResult(domain, None, TRUNCATED, "message cut at the fetch cap")
            return SigResult(domain, False, BODY_HASH, "body changed since signing")
        if "unknown signature algorithm" in text:
            return SigResult(domain, False, UNSUPPORTED, text[:200])
        if "x= value is past" in text:
            return SigResult(domain, False, EXPIRED, "signature expired (x=)")
        return SigResult(domain, False, MALFORMED, text[:200])
    except dk.NaClNotFoundError:
        return SigResult(domain, None, UNSUPPORTED, "ed25519 needs pynacl, not installed")
    except (dk.UnknownKeyTypeError, dk.KeyFormatError) as exc:
        # Raised after the key loaded: a key under 1024 bits or an unusable key type.
        return SigResult(domain, False, UNSUPPORTED, str(exc)[:200])
    except dk.DKIMException as exc:
        return SigResult(domain or _domain_of(d, idx), False, MALFORMED, str(exc)[:200])
    except Exception as exc:  # noqa: BLE001 - hostile input must not escape dkimpy
        return SigResult(domain or _domain_of(d, idx), False, MALFORMED, repr(exc)[:200])
    if ok:
        return SigResult(domain, True)
    failure, detail = _classify_false(lookup)
    return SigResult(domain, None if failure in UNDECIDED else False, failure, detail)


def _headerprep(d: dkimpy.DKIM, idx: int) -> Any:
    """d.verify_headerprep(idx) (the signature's tags, parsed and checked), once per parsed
    message and signature: after a body hash failure the header signature is checked again,
    and on the real corpus, where most bodies changed since signing, the second parse was a
    tenth of the module's time. The list of signed names is copied: dkimpy appends to it."""
    memo = d.__dict__.setdefault("_mailstats_prep", {})
    prep = memo.get(idx)
    if prep is None:
        prep = d.verify_headerprep(idx)
        if not prep:
            return prep
        memo[idx] = prep
    sig, include, sig_headers = prep
    return sig, list(include), sig_headers


def _verify_signed_fields(
    d: dkimpy.DKIM, sig: dict, include: list[bytes], sig_header: Any, lookup: _KeyLookup
) -> bool:
    """dkimpy's verify_sig, shown only the header fields the signature names (h=).

    dkimpy canonicalizes every field of the header for each signature, then hashes the
    named ones, picked by name from the bottom (RFC 6376 5.4.2): the others never reach
    the hash, so leaving them out gives the same verdict (tests/test_dkim_fields.py) for
    less work: 338 -> 291 us per generated message, 221 with the parsed keys kept.
    """
    every = d.headers
    named = set(include)
    # The fields' lowered names, once per parsed message: real mail has ~50 fields and
    # two signatures, each checked twice when its body hash fails.
    memo = d.__dict__.get("_mailstats_names")
    if memo is None or memo[0] is not every:
        memo = d.__dict__["_mailstats_names"] = (every, [f[0].lower() for f in every])
    d.headers = [field for field, name in zip(every, memo[1], strict=True) if name in named]
    try:
        return bool(d.verify_sig(sig, include, sig_header, lookup))
    finally:
        d.headers = every


def _domain_of(d: dkimpy.DKIM, idx: int) -> str:
    try:
        sigs = [v for k, v in d.headers if k.lower() == b"dkim-signature"]
        return signature_tags(sigs[idx].decode("utf-8", "replace")).get("d", "").strip().lower()
    except Exception:  # noqa: BLE001
        return ""


class Dkim(Module):
    name = "dkim"
    version = "2"
    description = "DKIM signatures: present, verifying now, aligned with the From domain."
    needs = frozenset({HEADER, RAW})
    checks = ("signed", "valid", "aligned", "header_valid")
    extras = ("failure",)
    evidence = "now"
    dns_columns = ("valid", "aligned", "header_valid", "failure")

    settings = (
        Setting(
            "header_only",
            bool,
            False,
            "Verify the signature over the headers alone and never fetch whole messages "
            "(for slow links): dkim.valid is then unknown and dkim.header_valid says what "
            "was checked.",
        ),
    )

    def __init__(self) -> None:
        self.header_only = False

    def prepare(self, services: Services) -> None:
        self.header_only = bool(services.settings.get("dkim_header_only", False))

    def fingerprint(self, services: Services) -> str:
        return super().fingerprint(services) + ("-headers" if self.header_only else "")

    def wants(self, msg: Message, item: str) -> bool:
        # Asked in the fetching process for every message of a batch: a search of the header
        # bytes for the field name, not a parse of the whole header (the analysis parses it).
        if item == RAW:
            return not self.header_only and has_signature_field(msg.header_bytes)
        return False

    def prefetch(self, msg: Message, services: Services) -> Iterable[tuple[str, str]]:
        names = (
            _key_name(signature_tags(v))
            for v in msg.raw_header_all("DKIM-Signature")[:MAX_SIGNATURES]
        )
        return [(n, "TXT") for n in names if n]

    def evaluate(self, msg: Message, services: Services) -> dict[str, Value | dict]:
        headers = msg.raw_header_all("DKIM-Signature")
        if not headers:
            return {
                "signed": False,
                "valid": False,
                "aligned": False,
                "header_valid": False,
                "failure": None,
                "_why": {"signed": "no DKIM-Signature header"},
            }
        from_domain = _from_domain(msg)
        if self.header_only:
            signed = self._verify(msg.header_bytes, services, False, header_only=True)[1]
            results = [
                SigResult(r.domain, None, NOT_FETCHED, "header-only mode: body not fetched")
                for r in signed
            ]
        elif msg.raw_bytes is None:
            results = [SigResult("", None, NOT_FETCHED, "the whole message was not fetched")]
            signed = self._verify(msg.header_bytes, services, False, header_only=True)[1]
        else:
            d, results = self._verify(msg.raw_bytes, services, msg.raw_truncated)
            signed = [self._header_check(d, i, r, services) for i, r in enumerate(results)]
        out = _summarise(results, from_domain, services)
        out["header_valid"], why = _header_verdict(signed)
        out["_why"]["header_valid"] = why  # type: ignore[index]
        return out

    def _header_check(
        self, d: dkimpy.DKIM | None, idx: int, full: SigResult, services: Services
    ) -> SigResult:
        """The header-signature verdict of a signature already verified on the whole message:
        the same unless only the body failed (then the same parsed message is asked again,
        without the body hash)."""
        if full.failure not in (BODY_HASH, TRUNCATED) or d is None:
            return full
        return verify_one(d, idx, services, False, header_only=True)

    def _verify(
        self, raw: bytes, services: Services, truncated: bool, header_only: bool = False
    ) -> tuple[dkimpy.DKIM | None, list[SigResult]]:
        try:
            d = parsed(raw)
        except Exception as exc:  # noqa: BLE001 - dkimpy's parser raises on odd header lines
            return None, [SigResult("", False, MALFORMED, f"message not parseable: {exc}"[:200])]
        count = sum(1 for k, _ in d.headers if k.lower() == b"dkim-signature")
        if count == 0:
            # The header parser saw one but dkimpy's did not (e.g. an obsolete folded name).
            return d, [SigResult("", False, MALFORMED, "DKIM-Signature not parseable")]
        return d, [
            verify_one(d, i, services, truncated, header_only)
            for i in range(min(count, MAX_SIGNATURES))
        ]


def _summarise(
    results: list[SigResult], from_domain: str, services: Services
) -> dict[str, Value | dict]:
    def aligned(r: SigResult) -> bool:
        return bool(from_domain) and services.domains.same_registrable(r.domain, from_domain)

    valid_sigs = [r for r in results if r.valid]
    undecided = [r for r in results if r.valid is None]
    why: dict[str, str] = {}
    if valid_sigs:
        valid: bool | None = True
        failure = None
        why["valid"] = "valid: " + ", ".join(f"d={r.domain}" for r in valid_sigs)
    elif undecided:
        valid = None
        failure = undecided[0].failure
        why["valid"] = f"unknown: {undecided[0].detail}"
    else:
        valid = False
        failure = results[0].failure
        why["valid"] = "; ".join(f"d={r.domain or '?'} {r.failure} ({r.detail})" for r in results)[
            :500
        ]
    if not from_domain:
        is_aligned: bool | None = None
        why["aligned"] = "no parseable From domain"
    elif any(aligned(r) for r in valid_sigs):
        is_aligned = True
    elif any(aligned(r) or not r.domain for r in undecided):
        is_aligned = None
        why["aligned"] = "a signature that could be the From domain's is unverifiable"
    else:
        is_aligned = False
        if valid_sigs:
            why["aligned"] = f"no valid signature for {from_domain}"
    return {"signed": True, "valid": valid, "aligned": is_aligned, "failure": failure, "_why": why}


def _header_verdict(results: list[SigResult]) -> tuple[bool | None, str]:
    """Does some signature verify over the signed headers (body not considered)?"""
    good = [r for r in results if r.valid]
    if good:
        return True, "header signature valid: " + ", ".join(f"d={r.domain}" for r in good)
    undecided = [r for r in results if r.valid is None]
    if undecided:
        return None, f"unknown: {undecided[0].detail}"
    return False, "; ".join(f"d={r.domain or '?'} {r.failure}" for r in results)[:500]


def _from_domain(msg: Message) -> str:
    try:
        addr = msg.from_address
    except Exception:  # noqa: BLE001
        return ""
    return (addr.domain or "").lower() if addr is not None else ""


MODULE = Dkim
