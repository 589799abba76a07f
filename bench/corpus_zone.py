"""A DNS world in which the real corpus's names exist, for bench/bench_corpus.py.

The corpus's domains, hosts and DKIM selectors cannot be looked up here (no internet), and a
server that answers NXDOMAIN to all of them is what mailstats' trust check calls a lying
resolver: it then stops asking and every DNS-derived check is unknown, a short path no user
with a working resolver runs. Measured so, the default set cost less than it does for users.

This zone answers for the names the default modules ask, as a plausible real zone would:
- the From and Return-Path domains and their registrable domains: an A record, an MX host in
  the registrable domain (with its A record), and an SPF record with `ip4` for the origin
  hop's /24 and `mx` (so pyspf also follows the MX and its address);
- every public IPv4 address in a Received hop: a PTR to a host in the From domain;
- every DKIM selector: an RSA key of the size its signature has (one key per size, not the
  signer's, so the verification runs to the RSA step and fails there, as much work as a
  pass);
- the default DNSBL zones: their test point 127.0.0.2 listed (or the module's self-test
  leaves the zone out), and nothing else (not listed, as for most mail).
Made from the messages alone and deterministic; only CPU is measured with it, never a figure
of the study.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fixtures.generator import dkim_key  # noqa: E402
from fixtures.zone import DnsRecords  # noqa: E402
from mailstats.mail.received import is_public_ip  # noqa: E402
from mailstats.modules.dkim import _key_name, signature_tags  # noqa: E402
from mailstats.modules.dnsbl import DEFAULT_ZONES  # noqa: E402
from mailstats.modules.spf import envelope_sender  # noqa: E402
from mailstats.services import Identity  # noqa: E402
from mailstats.services.domains import DomainSplitter  # noqa: E402
from mailstats.testing import message  # noqa: E402


def _address_of(name: str) -> str:
    """A stable address for a made-up host, in 198.18.0.0/15 (RFC 2544, benchmarking)."""
    n = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % (1 << 17)
    return str(ipaddress.IPv4Address(0xC6120000 + n))


def _key_for(signature: str) -> str:
    """A public key (base64) whose modulus is as long as the signature: 1024 to 4096 bits."""
    try:
        size = len(base64.b64decode(re.sub(r"\s+", "", signature))) * 8
    except ValueError:
        size = 2048
    bits = min((b for b in (1024, 2048, 3072, 4096) if b >= size), default=4096)
    return dkim_key(f"bench-corpus/{bits}", bits)[1]


def _domain(text: str) -> str:
    text = (text or "").strip().rstrip(".").lower()
    return text if "." in text and not text.startswith("[") and " " not in text else ""


def corpus_zone(raws: Iterable[bytes]) -> DnsRecords:
    records = DnsRecords()
    records.dnsbl.extend((zone, "127.0.0.2", "127.0.0.2") for zone in DEFAULT_ZONES)
    splitter = DomainSplitter()
    identity = Identity()
    named: set[str] = set()  # names that have their A / MX / SPF records
    texts: set[str] = set()
    ptrs: set[str] = set()

    def domain_records(domain: str, origin_ip: str) -> None:
        reg = splitter.registrable(domain)
        for name in {domain, reg} - {""}:
            if name in named:
                continue
            named.add(name)
            mx = f"mx.{reg or name}"
            records.hosts.append((name, _address_of(name)))
            records.mx.append((name, mx, 10))
            if mx not in named:
                named.add(mx)
                records.hosts.append((mx, _address_of(mx)))
            net = ""
            if origin_ip and ipaddress.ip_address(origin_ip).version == 4:
                net = f" ip4:{ipaddress.ip_network(origin_ip + '/24', strict=False)}"
            records.txt.append((name, f"v=spf1{net} mx ~all"))

    for raw in raws:
        msg = message(raw)
        origin = msg.origin(identity)
        origin_ip = origin.ip if origin is not None else ""
        from_domain = _domain(msg.from_address.domain) if msg.from_address else ""
        sender = envelope_sender(msg) or ""
        for domain in (from_domain, _domain(sender.rpartition("@")[2])):
            if domain:
                domain_records(domain, origin_ip)
        for hop in msg.hops:
            ip = hop.ip
            if ip and ip not in ptrs and is_public_ip(ip) and "." in ip:
                ptrs.add(ip)
                host = f"host-{ip.replace('.', '-')}.{from_domain or 'corpus.example'}"
                records.ptrs.append((ip, host))
        for value in msg.raw_header_all("DKIM-Signature"):
            tags = signature_tags(value)
            name = _key_name(tags)
            if name and name.lower() not in texts:
                texts.add(name.lower())
                records.txt.append((name, f"v=DKIM1; k=rsa; p={_key_for(tags.get('b', ''))}"))
    return records
