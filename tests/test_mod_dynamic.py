"""dynamic: a table of real-world PTR shapes, then end-to-end over real PTR answers."""

from __future__ import annotations

import pytest
from mod_network_support import (
    DnsRecords,
    dns_server,
    message,
    received,
    services,
    splitter,
)

from mailstats.modules.dynamic import Dynamic, embeds_ip, judge

# (PTR name, the IP it belongs to) — shapes seen on real end-user / generic lines.
GENERIC = [
    ("c-73-15-22-9.hsd1.ca.comcast.net", "73.15.22.9"),
    ("pool-71-105-1-2.nycmny.fios.verizon.net", "71.105.1.2"),
    ("a1-2-3-4.deploy.static.akamaitechnologies.com", "1.2.3.4"),
    ("cpe-74-77-12-34.buffalo.res.rr.com", "74.77.12.34"),
    ("adsl-99-1-2-3.dsl.pltn13.sbcglobal.net", "99.1.2.3"),
    ("ppp-94-66-1-2.home.otenet.gr", "94.66.1.2"),
    ("host86-128-1-2.range86-128.btcentralplus.com", "86.128.1.2"),
    ("p5B0A1C2D.dip0.t-ipconnect.de", "91.10.28.45"),  # hex
    ("ip4da2b3c1.dynamic.kabel-deutschland.de", "77.162.179.193"),  # hex
    ("dslb-088-065-012-034.088.065.pools.vodafone-ip.de", "88.65.12.34"),  # zero-padded
    ("ec2-54-12-34-56.compute-1.amazonaws.com", "54.12.34.56"),
    ("bzq-79-176-22-9.red.bezeqint.net", "79.176.22.9"),
    ("9-22-15-73.isp.example.net", "73.15.22.9"),  # reversed octets
    ("201-13-45-67.dsl.telesp.net.br", "201.13.45.67"),
    ("187-156-12-34.static.axtel.net", "187.156.12.34"),  # static, still generated
    ("static-1-2-3-4.isp.example", "1.2.3.4"),
    ("dsl-187-156-12-34-dyn.prod-infinitum.com.mx", "187.156.12.34"),
    ("37-48-12-34.nat.epc.tmcz.cz", "37.48.12.34"),
    ("dyn-092-021-005-123.example.net", "92.21.5.123"),
    ("073015022009.example.net", "73.15.22.9"),  # 12 digits, zero-padded
    ("123-45-67.isp.example", "91.123.45.67"),  # last three octets
    ("static.88.198.12.34.clients.your-server.de", "88.198.12.34"),
    ("ppp91-76-12-34.pppoe.mtu-net.ru", "91.76.12.34"),
    ("mobile-166-1-2-3.mycingular.net", "166.1.2.3"),
    ("203.1.113.4", "203.1.113.4"),  # the PTR is the address itself
    ("2a01-db8--5.v6.example.net", "2a01:db8::5"),  # IPv6, dashed
    ("cpc123456-brnt4-2-0-cust789.4-2.cable.virginm.net", "81.100.20.30"),  # words only
    ("user-12abc.cable.mindspring.com", "24.1.2.3"),
    ("abc12.dhcp.isp.example", "24.5.6.7"),
    ("unassigned.psychz.net", "198.52.100.3"),
    ("host.broadband.isp.example", "198.52.100.4"),
    ("x1234.dialup.isp.example", "198.52.100.5"),
    ("localhost", "198.52.100.6"),  # not a fully qualified name
]

# Names an operator chose for a mail (or other) server.
HAND_MADE = [
    ("mail-wm1-f54.google.com", "209.85.128.54"),
    ("mail-yw1-x1130.google.com", "2607:f8b0:4864:20::1130"),
    ("a23-251.smtp-out.amazonses.com", "54.240.23.251"),
    ("mx.example.org", "203.1.113.1"),
    ("o1.ptr1234.sendgrid.net", "167.89.1.2"),
    ("mail.dyn.com", "198.52.100.1"),  # "dyn" is the company, not a word in a host label
    ("relay.cablevision.example", "198.52.100.2"),
    ("mail-1-2-3-4.example.com", "1.2.3.4"),  # named a mail server despite the digits
    ("mx0a-001b2d01.pphosted.com", "148.163.1.2"),
    ("mail-am6eur05on2100.outbound.protection.outlook.com", "40.107.22.100"),
    ("smtp1.example.de", "198.52.100.10"),
    ("mta-12-34.example.net", "198.52.100.11"),
    ("lists.example.org", "198.52.100.12"),
    ("www.example.org", "198.52.100.13"),
    ("server1.hostingprovider.example", "198.52.100.14"),
    ("vps123.ovh.net", "51.1.2.3"),
    ("ns1.example.net", "198.52.100.15"),
    ("mail180-5.suw21.mandrillapp.com", "198.2.180.5"),
    ("out-5.smtp.github.com", "192.30.252.205"),
    ("mx.static.example.com", "198.52.100.16"),
    ("mail.home.example", "198.52.100.17"),
    ("smtp.cable.co.uk", "198.52.100.18"),
]


@pytest.mark.parametrize(("host", "ip"), GENERIC)
def test_generic_names(host, ip):
    generic, why = judge(host, ip, splitter().registrable(host))
    assert generic is True, why


@pytest.mark.parametrize(("host", "ip"), HAND_MADE)
def test_hand_made_names(host, ip):
    generic, why = judge(host, ip, splitter().registrable(host))
    assert generic is False, why


def test_embedding_needs_three_octets():
    assert embeds_ip("x-22-9.example.net", "73.15.22.9") is False
    assert embeds_ip("x-15-22-9.example.net", "73.15.22.9") is True
    assert embeds_ip("x-9-22-15.example.net", "73.15.22.9") is True
    assert embeds_ip("x-73-15-22-10.example.net", "73.15.22.9") is True  # the /24
    assert embeds_ip("x-73-16-22-10.example.net", "73.15.22.9") is False
    assert embeds_ip("whatever", "not-an-ip") is False


# -- end to end over a real PTR server -------------------------------------------------------
PTRS = {
    "198.52.100.20": "c-198-52-100-20.hsd1.ca.comcast.example",
    "198.52.100.21": "mail.example.org",
    "2a01:db8::21": "mail6.example.org",
}


def _records() -> DnsRecords:
    rec = DnsRecords()
    rec.ptrs += list(PTRS.items())
    rec.ptrs.append(("198.52.100.24", "mail.example.org"))  # two PTRs: one hand-made
    rec.ptrs.append(("198.52.100.24", "198-52-100-24.pool.example.net"))
    rec.timeout.append("198.52.100.22")
    rec.servfail.append("198.52.100.23")
    return rec


server = dns_server(_records)


def _eval(server, ip: str) -> dict:
    svc = services(server.server_spec)
    module = Dynamic()
    m = message(received(ip))
    svc.dns.prefetch(module.prefetch(m, svc))
    return module.evaluate(m, svc)


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("198.52.100.20", True),  # generated PTR
        ("198.52.100.21", False),  # hand-made PTR
        ("2a01:db8::21", False),
        ("198.52.100.99", True),  # no PTR at all (NXDOMAIN)
        ("2a01:db8::99", True),
        ("198.52.100.22", None),  # time-out
        ("198.52.100.23", None),  # SERVFAIL
        ("198.52.100.24", False),  # one of its PTRs is hand-made
        ("10.0.0.1", None),  # no public origin
    ],
)
def test_end_to_end(server, ip, expected):
    res = _eval(server, ip)
    assert res["origin_dynamic"] is expected, res.get("_why")


def test_ptr_extra(server):
    assert _eval(server, "198.52.100.21")["ptr"] == "mail.example.org"
    assert _eval(server, "198.52.100.99")["ptr"] is None
