"""domain: MX, else A/AAAA, else no; NXDOMAIN is "no", a failed look-up is "unknown"."""

from __future__ import annotations

import pytest
from mod_network_support import DnsRecords, dns_server, message, services

from mailstats.modules.domain import Domain, normalize_domain


def _records() -> DnsRecords:
    rec = DnsRecords()
    rec.mx.append(("withmx.example", "mx.withmx.example", 10))
    rec.hosts += [
        ("mx.withmx.example", "203.0.113.10"),
        ("aonly.example", "203.0.113.11"),
        ("v6only.example", "2001:db8::11"),
    ]
    rec.txt.append(("txtonly.example", "v=spf1 -all"))  # exists, but no MX/A/AAAA
    rec.timeout.append("slow.example")
    rec.servfail.append("broken.example")
    return rec


server = dns_server(_records)


def _eval(server, from_header: str | None):
    headers = f"From: {from_header}\r\n" if from_header is not None else "Subject: x\r\n"
    svc = services(server.server_spec)
    module = Domain()
    m = message(headers)
    svc.dns.prefetch(module.prefetch(m, svc))
    return module.evaluate(m, svc)["from_domain_exists"]


@pytest.mark.parametrize(
    ("from_header", "expected"),
    [
        ("Alice <a@withmx.example>", True),
        ("a@aonly.example", True),
        ("a@v6only.example", True),
        ("a@WithMX.Example.", True),
        ("a@txtonly.example", False),
        ("a@nothere.example", False),
        ("a@slow.example", None),
        ("a@broken.example", None),
        ("a@localhost", False),
        ("a@[192.0.2.1]", False),
        ("a@192.0.2.1", False),
        ("a@-bad-.example", False),
        ("undisclosed-recipients:;", None),
        (None, None),
    ],
)
def test_from_domain_exists(server, from_header, expected):
    assert _eval(server, from_header) is expected


def test_idna_domain_is_asked_in_ascii():
    assert normalize_domain("bücher.example") == "xn--bcher-kva.example"
    assert normalize_domain("a" * 64 + ".example") is None


def test_mx_nxdomain_skips_address_queries(server):
    before = len(server.query_log())
    assert _eval(server, "a@gone.example") is False
    asked = [q for q in server.query_log()[before:] if q[1] == "gone.example"]
    assert ("AAAA", "gone.example") not in asked
