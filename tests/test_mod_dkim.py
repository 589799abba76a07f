"""dkim: real signatures made here with a seeded RSA key, keys served by a real dnsmasq."""

from __future__ import annotations

import dkim as dkimpy
import pytest
from mod_network_support import (
    DnsRecords,
    corpus_files,
    corpus_message,
    dns_server,
    services,
)

from fixtures.generator import dkim_key
from mailstats.mail.message import Message
from mailstats.modules.dkim import Dkim

#: A seeded key (the generator's), so every run signs the same bytes: a fresh random key made
#: a run's signatures differ from the next run's, leading zero bytes included.
PRIV, PUB = dkim_key("test-mod-dkim", 2048)

BODY = b"Hello Dana,\r\n\r\nthe minutes are attached.\r\n"


def _records() -> DnsRecords:
    rec = DnsRecords()
    key = f"v=DKIM1; k=rsa; p={PUB}"
    for d in ("example.com", "mail.example.com", "other.example"):
        rec.txt.append((f"sel1._domainkey.{d}", key))
    rec.txt.append(("revoked._domainkey.example.com", "v=DKIM1; k=rsa; p="))
    rec.txt.append(("junk._domainkey.example.com", "v=DKIM1; k=rsa; p=!!notbase64!!"))
    rec.timeout.append("slow._domainkey.example.com")
    return rec


server = dns_server(_records)


def _unsigned(from_addr: str = "alice@example.com", subject: str = "Minutes") -> bytes:
    return (
        f"From: Alice <{from_addr}>\r\nTo: dana@example.org\r\nSubject: {subject}\r\n"
        "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <m1@example.com>\r\n\r\n"
    ).encode() + BODY


def _sign(raw: bytes, domain: str = "example.com", selector: str = "sel1") -> bytes:
    sig = dkimpy.sign(
        raw,
        selector.encode(),
        domain.encode(),
        PRIV,
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
    )
    return sig + raw


def _msg(raw: bytes, *, truncated: bool = False, fetched: bool = True) -> Message:
    head = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    return Message(
        "t", "INBOX", 1, head, raw_bytes=raw if fetched else None, raw_truncated=truncated
    )


def _eval(server, raw: bytes, header_only: bool = False, **kw) -> dict:
    svc = services(server.server_spec, settings={"dkim_header_only": header_only})
    module = Dkim()
    module.prepare(svc)
    m = _msg(raw, **kw)
    svc.dns.prefetch(module.prefetch(m, svc))
    return module.evaluate(m, svc)


def test_valid_and_aligned(server):
    res = _eval(server, _sign(_unsigned()))
    assert (res["signed"], res["valid"], res["aligned"]) == (True, True, True)
    assert res["failure"] is None


def test_subdomain_signature_is_aligned(server):
    res = _eval(server, _sign(_unsigned(), domain="mail.example.com"))
    assert (res["valid"], res["aligned"]) == (True, True)


def test_valid_third_party_signature_is_not_aligned(server):
    res = _eval(server, _sign(_unsigned(), domain="other.example"))
    assert (res["valid"], res["aligned"]) == (True, False)


def test_body_tampered(server):
    raw = _sign(_unsigned()).replace(b"minutes are attached", b"invoice is attached")
    res = _eval(server, raw)
    assert (res["signed"], res["valid"], res["aligned"]) == (True, False, False)
    assert res["failure"] == "body_hash"


def test_header_tampered(server):
    raw = _sign(_unsigned()).replace(b"Subject: Minutes", b"Subject: Invoice")
    res = _eval(server, raw)
    assert res["valid"] is False
    assert res["failure"] == "bad_signature"


def test_key_missing(server):
    res = _eval(server, _sign(_unsigned(), selector="gone"))
    assert res["valid"] is False
    assert res["failure"] == "key_missing"


def test_key_revoked(server):
    res = _eval(server, _sign(_unsigned(), selector="revoked"))
    assert res["valid"] is False
    assert res["failure"] == "key_revoked"


def test_key_record_malformed(server):
    res = _eval(server, _sign(_unsigned(), selector="junk"))
    assert res["valid"] is False
    assert res["failure"] == "malformed"


def test_key_lookup_timeout_is_unknown(server):
    res = _eval(server, _sign(_unsigned(), selector="slow"))
    assert res["valid"] is None
    assert res["aligned"] is None
    assert res["failure"] == "dns_error"


def test_truncated_body_is_unknown_not_invalid(server):
    raw = _sign(_unsigned())
    res = _eval(server, raw[:-10], truncated=True)
    assert res["valid"] is None
    assert res["failure"] == "truncated"
    assert "_why" in res and res["_why"]["valid"].startswith("unknown")


def test_raw_not_fetched_is_unknown(server):
    res = _eval(server, _sign(_unsigned()), fetched=False)
    assert (res["signed"], res["valid"]) == (True, None)


def test_unsigned_message(server):
    raw = _unsigned()
    module = Dkim()
    m = _msg(raw, fetched=False)
    assert module.wants(m, "raw") is False
    assert module.wants(_msg(_sign(raw)), "raw") is True
    res = _eval(server, raw, fetched=False)
    assert (res["signed"], res["valid"], res["aligned"]) == (False, False, False)


def test_every_signature_is_checked(server):
    # Topmost signature's key is gone; the second one verifies.
    raw = _sign(_sign(_unsigned(), domain="other.example"), selector="gone")
    res = _eval(server, raw)
    assert res["valid"] is True
    assert res["aligned"] is False  # the valid one is other.example's
    raw2 = _sign(_sign(_unsigned(), domain="example.com"), selector="slow")
    res2 = _eval(server, raw2)
    assert (res2["valid"], res2["aligned"]) == (True, True)


def test_unknown_algorithm_and_expired(server):
    raw = _sign(_unsigned())
    res = _eval(server, raw.replace(b"a=rsa-sha256", b"a=rsa-sha999", 1))
    assert (res["valid"], res["failure"]) == (False, "unsupported_algorithm")
    expired = raw.replace(b"DKIM-Signature: v=1;", b"DKIM-Signature: v=1; x=1000000000;", 1)
    res = _eval(server, expired)
    assert (res["valid"], res["failure"]) == (False, "expired")


@pytest.mark.parametrize(
    "sig",
    [
        b"DKIM-Signature: nonsense\r\n",
        b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com\r\n",
        b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel1; h=from; bh=@@@; b=@@@\r\n",
        b"DKIM-Signature: \r\n",
        b"DKIM-Signature: v=1; a=rsa-sha256; d=ex;ample.com; s=\xff\xfe; b=; bh=\r\n",
    ],
)
def test_malformed_signatures_never_raise(server, sig):
    res = _eval(server, sig + _unsigned())
    assert res["signed"] is True
    assert res["valid"] is False
    assert res["failure"] in ("malformed", "key_missing")


def test_prefetch_names_the_key(server):
    m = _msg(_sign(_unsigned(), domain="mail.example.com"))
    assert list(Dkim().prefetch(m, services(server.server_spec))) == [
        ("sel1._domainkey.mail.example.com", "TXT")
    ]


def test_corpus_never_raises(server):
    files = corpus_files()
    svc = services(server.server_spec, timeout=0.5)
    module = Dkim()
    seen = 0
    for i, path in enumerate(files):
        m = corpus_message(path, uid=i)
        if not module.wants(m, "raw"):
            continue
        seen += 1
        res = module.evaluate(m, svc)
        assert res["signed"] is True
        # The corpus is anonymised and its keys are not served here: nothing may verify.
        assert res["valid"] in (False, None), path
        assert res["failure"] in {
            "body_hash", "bad_signature", "key_missing", "key_revoked", "malformed",
            "unsupported_algorithm", "dns_error", "expired", "truncated",
        }  # fmt: skip
    assert seen > 50


# -- header-only verification -------------------------------------------------------------


def test_header_signature_is_judged_apart_from_the_body(server):
    raw = _sign(_unsigned())
    assert _eval(server, raw)["header_valid"] is True
    tampered_body = raw.replace(b"minutes are attached", b"invoice is attached")
    res = _eval(server, tampered_body)
    assert (res["valid"], res["header_valid"]) == (False, True)  # only the body changed
    tampered_header = raw.replace(b"Subject: Minutes", b"Subject: Invoice")
    res = _eval(server, tampered_header)
    assert (res["valid"], res["header_valid"]) == (False, False)
    assert _eval(server, _unsigned())["header_valid"] is False
    assert _eval(server, _sign(_unsigned(), selector="slow"))["header_valid"] is None


def test_header_only_mode_fetches_nothing_and_says_valid_is_unknown(server):
    raw = _sign(_unsigned())
    svc = services(server.server_spec, settings={"dkim_header_only": True})
    module = Dkim()
    module.prepare(svc)
    assert module.wants(_msg(raw), "raw") is False
    for body_changed in (False, True):
        data = raw.replace(b"minutes", b"invoice") if body_changed else raw
        res = _eval(server, data, header_only=True, fetched=False)
        assert (res["signed"], res["valid"], res["aligned"]) == (True, None, None)
        assert res["header_valid"] is True  # the body is not looked at in this mode
        assert "header-only" in res["_why"]["valid"]
    res = _eval(server, raw.replace(b"Subject: Minutes", b"Subject: X"), header_only=True)
    assert res["header_valid"] is False


def test_header_only_mode_has_its_own_cache_fingerprint(server):
    fps = []
    for flag in (False, True):
        svc = services(server.server_spec, settings={"dkim_header_only": flag})
        module = Dkim()
        module.prepare(svc)
        fps.append(module.fingerprint(svc))
    assert fps[0] != fps[1]


def test_header_only_setting_end_to_end_fetches_no_message_whole(tmp_path):
    """`[modules.dkim] header_only = true` in the accounts file: no raw fetch at all."""
    import mailbox

    from mailstats.accounts.config import parse_config
    from mailstats.run.engine import Engine
    from mailstats.stats.manifest import manifest

    mb = mailbox.mbox(tmp_path / "INBOX.mbox")
    for subject in ("a", "b", "c"):
        mb.add(_sign(_unsigned(subject=subject)))
    mb.add(_unsigned(subject="plain"))
    mb.flush()
    mb.close()
    runs = {}
    for header_only in (False, True):
        cfg = parse_config(
            {
                "settings": {
                    "modules": ["dkim"],
                    "dns_servers": ["127.0.0.1:9"],
                    "dns_timeout": 0.2,
                    "cache": str(tmp_path / f"c{header_only}.sqlite"),
                    "analysis_workers": 0,
                },
                "modules": {"dkim": {"header_only": header_only}},
                "accounts": [{"name": "a", "path": str(tmp_path), "ham": ["INBOX"]}],
            }
        )
        result = Engine(cfg).run()
        runs[header_only] = (result.accounts[0].folders[0].counts, manifest(result, []))
    full, header = runs[False], runs[True]
    assert full[1]["module_cost"]["_fetch"]["raw"] == 3
    assert "raw" not in header[1]["module_cost"]["_fetch"]
    assert header[0]["dkim.signed"] == [3, 4]
    assert header[0]["dkim.valid"] == [0, 1]  # the unsigned one is decidably not valid


def test_wants_raw_exactly_when_the_parsed_header_has_a_signature():
    """wants() reads the header bytes, evaluate() the parsed fields: they must agree."""
    from mod_network_support import corpus_files, corpus_message

    from fixtures.nasty import nasty_messages

    module = Dkim()
    msgs = [_msg(_sign(_unsigned())), _msg(_unsigned())]
    msgs += [Message("t", "INBOX", i, m.raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n")
             for i, m in enumerate(nasty_messages())]  # fmt: skip
    msgs += [corpus_message(p, uid=i) for i, p in enumerate(corpus_files())]
    for m in msgs:
        assert module.wants(m, "raw") == bool(m.raw_header_all("DKIM-Signature")), m.uid
