"""spf: pyspf evaluated over services.dns against records served by a real dnsmasq."""

from __future__ import annotations

import pytest
import spf as pyspf
from mod_network_support import DnsRecords, dns_server, message, received, services

from mailstats.modules import spf as spf_module
from mailstats.modules.spf import Spf, envelope_sender

IP = "198.52.100.7"


def _records() -> DnsRecords:
    rec = DnsRecords()
    rec.txt += [
        ("example.com", "v=spf1 ip4:198.52.100.0/24 -all"),
        ("example.com", "google-site-verification=abc123"),  # unrelated TXT alongside
        ("soft.example", "v=spf1 ~all"),
        ("neutral.example", "v=spf1 ?all"),
        ("include.example", "v=spf1 include:example.com -all"),
        ("mx.example", "v=spf1 mx -all"),
        ("a.example", "v=spf1 a:host.a.example -all"),
        ("ptr.example", "v=spf1 ptr -all"),
        ("v6.example", "v=spf1 ip6:2a01:db8::/32 -all"),
        ("perm.example", "v=spf1 foo:bar -all"),
        ("two.example", "v=spf1 -all"),
        ("two.example", "v=spf1 +all"),
        ("helo.example", "v=spf1 ip4:198.52.100.0/24 -all"),
        # Macros: the result and the explanation depend on the local part.
        ("macro.example", "v=spf1 exists:%{l}.ok.macro.example -all"),
        ("incmacro.example", "v=spf1 include:macro.example -all"),
        ("exp.example", "v=spf1 -all exp=why.exp.example"),
        ("why.exp.example", "%{l} may not send from %{i}"),
        ("slowinc.example", "v=spf1 include:slow.example -all"),
        (
            "long.example",
            "v=spf1 " + " ".join(f"ip4:192.1.2.{i}" for i in range(1, 30)) + f" ip4:{IP} -all",
        ),
    ]
    rec.hosts += [
        ("nospf.example", "203.1.113.1"),
        ("mail.mx.example", "203.1.113.5"),
        ("host.a.example", "203.1.113.6"),
        ("out.ptr.example", "203.1.113.7"),
        ("alice.ok.macro.example", "203.1.113.8"),
    ]
    rec.mx.append(("mx.example", "mail.mx.example", 10))
    rec.timeout.append("slow.example")
    return rec


server = dns_server(_records)


def _eval(server, return_path: str | None, ip: str = IP, helo: str = "out.sender.example"):
    headers = ""
    if return_path is not None:
        headers += f"Return-Path: {return_path}\r\n"
    headers += received(ip, helo=helo) + "From: a@example.com\r\n"
    svc = services(server.server_spec)
    module = Spf()
    m = message(headers)
    svc.dns.prefetch(module.prefetch(m, svc))
    return module.evaluate(m, svc)


@pytest.mark.parametrize(
    ("rp", "ip", "result"),
    [
        ("<bounce@example.com>", IP, "pass"),
        ("<bounce@example.com>", "203.1.113.99", "fail"),
        ("<x@soft.example>", IP, "softfail"),
        ("<x@neutral.example>", IP, "neutral"),
        ("<x@nospf.example>", IP, "none"),
        ("<x@nothere.example>", IP, "none"),  # NXDOMAIN: no record, decidably not pass
        ("<x@include.example>", IP, "pass"),
        ("<x@mx.example>", "203.1.113.5", "pass"),  # MX answers parsed by the adapter
        ("<x@mx.example>", IP, "fail"),
        ("<x@a.example>", "203.1.113.6", "pass"),
        ("<x@ptr.example>", "203.1.113.7", "pass"),  # PTR + forward confirmation
        ("<x@v6.example>", "2a01:db8::5", "pass"),
        ("<x@perm.example>", IP, "permerror"),
        ("<x@two.example>", IP, "permerror"),
        ("<x@long.example>", IP, "pass"),  # > 255 bytes: split strings joined
        ("<x@long.example>", "192.1.2.200", "fail"),
    ],
)
def test_results(server, rp, ip, result):
    res = _eval(server, rp, ip=ip)
    assert res["result"] == result
    assert res["pass"] is (result == "pass")


def test_dns_failure_is_temperror_and_unknown(server):
    res = _eval(server, "<x@slowinc.example>")
    assert res["result"] == "temperror"
    assert res["pass"] is None


def test_null_sender_uses_helo_identity(server):
    res = _eval(server, "<>", helo="helo.example")
    assert res["result"] == "pass"
    assert "HELO helo.example" in res["_why"]["pass"]
    res = _eval(server, "<>", ip="203.1.113.99", helo="helo.example")
    assert res["result"] == "fail"
    res = _eval(server, "<>", helo="[198.52.100.7]")
    assert res["pass"] is None and res["result"] is None


def test_missing_inputs_are_unknown(server):
    assert _eval(server, None)["pass"] is None  # no Return-Path: envelope sender unknown
    res = _eval(server, "<bounce@example.com>", ip="10.0.0.1")  # no public origin
    assert res["pass"] is None and "origin" in res["_why"]["pass"]


def test_return_path_parsing():
    def rp(value: str) -> str | None:
        return envelope_sender(message(f"Return-Path: {value}\r\n"))

    assert rp("<a@b.example>") == "a@b.example"
    assert rp("a@b.example") == "a@b.example"
    assert rp("<>") == ""
    assert rp("<@relay.example:a@b.example>") == "a@b.example"
    assert envelope_sender(message("Subject: x\r\n")) is None
    # The topmost Return-Path is the final delivery's.
    two = message("Return-Path: <top@a.example>\r\nReturn-Path: <old@b.example>\r\n")
    assert envelope_sender(two) == "top@a.example"


def test_pyspf_resolves_only_through_services_dns(server):
    before = len(server.query_log())
    _eval(server, "<x@include.example>")  # pyspf is imported at the first check
    asked = server.query_log()[before:]
    assert ("TXT", "include.example") in asked and ("TXT", "example.com") in asked
    assert pyspf.DNSLookup is spf_module._lookup
    with pytest.raises(pyspf.TempError):
        spf_module._lookup("example.com", "TXT")  # no resolver in context: never pyspf's own


def test_the_memo_is_bounded_and_an_evicted_check_gives_the_same_result(
    server, monkeypatch: pytest.MonkeyPatch
):
    """The memo keeps the newest checks (at 100k distinct senders it held 13 MB per worker);
    one evicted is evaluated again on the run's DNS memo, with the same result."""
    monkeypatch.setattr(spf_module, "MEMO_MAX", 2)
    svc = services(server.server_spec)
    module = Spf()
    domains = ["example.com", "soft.example", "perm.example"] * 2
    senders = [f"x{i}@{d}" for i, d in enumerate(domains)]
    first = [module.check(IP, s, "out.sender.example", services=svc) for s in senders]
    assert len(module._memo) == 2
    assert first[0][0] == "pass" and first[1][0] == "softfail" and first[2][0] == "permerror"
    assert first[3:] == first[:3]
    again = [module.check(IP, s, "out.sender.example", services=svc) for s in senders[:3]]
    assert again == first[:3] and len(module._memo) == 2


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """The checks pyspf is asked to run, (ip, sender, helo) each."""
    asked: list[tuple[str, str, str]] = []

    class Counted(pyspf.query):  # a subclass: pyspf reads class attributes of its query
        def __init__(self, i: str, s: str, h: str, **kw: object) -> None:
            asked.append((i, s, h))
            super().__init__(i, s, h, **kw)

    monkeypatch.setattr(pyspf, "query", Counted)
    return asked


def test_a_domain_without_macros_is_checked_once_per_ip_whatever_the_sender(
    server, monkeypatch: pytest.MonkeyPatch
):
    """Bounce addresses are one-off (VERP): without macros only the IP and the domain can
    change the result, so later senders of the domain reuse the first check."""
    asked = _counting(monkeypatch)
    svc = services(server.server_spec)
    module = Spf()
    got = [module.check(IP, f"bounce-{n}@Example.COM", f"h{n}.example", services=svc)
           for n in range(5)]  # fmt: skip
    assert [r for r, _ in got] == ["pass"] * 5 and len(asked) == 1
    # Another IP, another HELO-identity domain, another record: each checked on its own.
    assert module.check("203.1.113.1", "bounce-9@example.com", "h", services=svc)[0] == "fail"
    assert module.check(IP, "", "helo.example", services=svc)[0] == "pass"
    assert module.check(IP, "x@soft.example", "h", services=svc)[0] == "softfail"
    assert len(asked) == 4
    # pyspf splits at the first "@": "a@b@example.com" is domain "b@example.com" to it.
    assert module.check(IP, "a@b@example.com", "h", services=svc) != got[0]


@pytest.mark.parametrize("domain", ["macro.example", "incmacro.example"])
def test_a_record_with_macros_is_checked_for_each_sender(
    server, monkeypatch: pytest.MonkeyPatch, domain: str
):
    """%{l} in the record (or in one it includes) makes the local part count: alice's pass
    must not be bob's."""
    asked = _counting(monkeypatch)
    svc = services(server.server_spec)
    module = Spf()
    checks = [("alice", "pass"), ("bob", "fail"), ("alice", "pass"), ("carol", "fail")]
    for local, expected in checks:
        assert module.check(IP, f"{local}@{domain}", "h", services=svc)[0] == expected
    assert len(asked) == 3  # alice's second check is remembered by her own address


def test_an_explanation_with_macros_is_each_senders_own(server):
    svc = services(server.server_spec)
    module = Spf()
    alice = module.check(IP, "alice@exp.example", "h", services=svc)
    bob = module.check(IP, "bob@exp.example", "h", services=svc)
    assert alice == ("fail", f"alice may not send from {IP}")
    assert bob == ("fail", f"bob may not send from {IP}")


def test_hostile_inputs_never_raise(server):
    for rp in ("<x@>", "<x@.....>", "<x@" + "a" * 300 + ".example>", "<x@exa mple.com>", "<@>"):
        res = _eval(server, rp)
        assert res["pass"] in (False, None)


def test_corpus_never_raises(server):
    from mod_network_support import corpus_files, corpus_message

    from mailstats.modules.dnsbl import Dnsbl
    from mailstats.modules.domain import Domain
    from mailstats.modules.dynamic import Dynamic

    svc = services(server.server_spec, settings={"dnsbl_zones": ["none.bl.example"]})
    modules = [Spf(), Dnsbl(), Domain(), Dynamic()]
    for mod in modules:
        mod.prepare(svc)
    counts: dict[str, int] = {}
    for i, path in enumerate(corpus_files()):
        m = corpus_message(path, uid=i)
        for mod in modules:
            svc.dns.prefetch(mod.prefetch(m, svc))
            res = mod.evaluate(m, svc)
            for check in mod.checks:
                assert res[check] in (True, False, None), (path, mod.name)
        res = modules[0].evaluate(m, svc)
        counts[str(res["result"])] = counts.get(str(res["result"]), 0) + 1
    # Nothing but the fixture records is served: no corpus sender can pass.
    assert "pass" not in counts
    assert counts.get("none", 0) > 100
