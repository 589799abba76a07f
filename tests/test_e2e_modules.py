"""Every check of docs/modules.md, exact end to end: Dovecot + dnsmasq on generated mail.

The generator decides each message's expected values from the scenario that built it (the
DNS zone it published, the keys it signed with, the MIME layout it chose), never from
mailstats code. Here `run_batch` with the default module set must reproduce them per folder,
and a local Maildir copy of the same mailbox must give the identical summary.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_e2e_imap import accounts_file, new_user, read_summary

from fixtures.generator import (
    BLOCKED_ANSWER,
    DNSBL_BLOCKED_ZONE,
    expect_dnsbl,
)
from mailstats.cli import run_batch
from mailstats.modules import BUILTIN

pytestmark = pytest.mark.servers

DEFAULT_MODULES = tuple(m for m in BUILTIN if m != "reachability")
#: (check) -> reason, for checks where the module (not the generator) is wrong.
KNOWN_BUGS: dict[str, str] = {}


def _settings_lines(mailbox, dns_spec: str, timeout: float = 1.0) -> list[str]:
    return [
        f"dnsbl_zones = {json.dumps(mailbox.settings['dnsbl_zones'])}",
        f"authserv_ids = {json.dumps(mailbox.settings['authserv_ids'])}",
    ]


def imap_config(tmp_path: Path, dovecot, dns, user: str, mailbox, **settings: object) -> Path:
    cfg = accounts_file(tmp_path, dovecot, dns, user, mailbox, modules=DEFAULT_MODULES)
    lines = _settings_lines(mailbox, dns.server_spec)
    lines += [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    text = cfg.read_text().replace("[settings]\n", "[settings]\n" + "\n".join(lines) + "\n", 1)
    if "dns_timeout" in settings:
        text = text.replace("dns_timeout = 1.0\n", "", 1)
    cfg.write_text(text)
    return cfg


def local_config(tmp_path: Path, dns, maildir: Path, mailbox) -> Path:
    lines = [
        "[settings]",
        f"dns_servers = [{json.dumps(dns.server_spec)}]",
        f"modules = {json.dumps(list(DEFAULT_MODULES))}",
        f"cache = {json.dumps(str(tmp_path / 'cache-local.sqlite'))}",
        "dns_timeout = 1.0",
        *_settings_lines(mailbox, dns.server_spec),
        "",
        "[[accounts]]",
        'name = "dana"',
        f"path = {json.dumps(str(maildir))}",
        *mailbox.account_toml(),
    ]
    path = tmp_path / "local.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory, dovecot, dns, generated_mailbox):
    """One IMAP run and one local-Maildir run of the standard mailbox, all default modules."""
    tmp = tmp_path_factory.mktemp("e2e_modules")
    user = new_user(dovecot, generated_mailbox)
    cfg = imap_config(tmp, dovecot, dns, user, generated_mailbox)
    assert run_batch(str(cfg), str(tmp / "imap"), quiet=True) == 0
    maildir = generated_mailbox.write_maildir(tmp / "Maildir")
    lcfg = local_config(tmp, dns, maildir, generated_mailbox)
    assert run_batch(str(lcfg), str(tmp / "local"), quiet=True) == 0
    return {
        "imap": read_summary(tmp / "imap"),
        "local": read_summary(tmp / "local"),
        "manifest": json.loads((tmp / "imap" / "manifest.json").read_text()),
        "messages": (tmp / "imap" / "messages.csv"),
    }


def _all_checks() -> list[str]:
    from mailstats.modules import available_modules

    reg = available_modules()
    return [f"{m.name}.{c}" for m in reg.modules if m.name in DEFAULT_MODULES for c in m.checks]


def test_generator_covers_every_check(generated_mailbox):
    assert set(_all_checks()) <= set(generated_mailbox.checks())
    expected = generated_mailbox.expected_counts(generated_mailbox.checks())
    # Each check must be able to fail: some folder has matches and some non-matches.
    for check in _all_checks():
        rows = [v for (f, c), v in expected.items() if c == check]
        assert any(m > 0 for m, _a, _t in rows), f"{check}: never True"
        assert any(a > m for m, a, _t in rows), f"{check}: never False"


@pytest.mark.parametrize(
    "check",
    [
        pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[c]))
        if c in KNOWN_BUGS
        else c
        for c in _all_checks()
    ],
)
def test_check_exact_over_imap(runs, generated_mailbox, check):
    expected = generated_mailbox.expected_counts([check])
    assert expected, f"no expectation for {check}"
    got = {k: runs["imap"].get(k) for k in expected}
    assert got == expected


def test_local_maildir_gives_the_identical_summary(runs):
    assert runs["local"] == runs["imap"]


def test_run_has_no_module_errors(runs):
    manifest = runs["manifest"]
    assert manifest["counts"]["module_errors"] == 0, manifest["accounts"]
    assert not [w for w in manifest["warnings"] if "dnsbl" in w.lower() and "self-test" in w]


def test_blocked_dnsbl_is_unknown_not_listed(tmp_path, dovecot, dns, generated_mailbox):
    mailbox = generated_mailbox
    user = new_user(dovecot, mailbox)
    cfg = imap_config(tmp_path, dovecot, dns, user, mailbox)
    text = cfg.read_text().replace(
        f"dnsbl_zones = {json.dumps(mailbox.settings['dnsbl_zones'])}",
        f"dnsbl_zones = {json.dumps([DNSBL_BLOCKED_ZONE])}",
    )
    cfg.write_text(text)
    out = tmp_path / "out"
    assert run_batch(str(cfg), str(out), modules="dnsbl", quiet=True) == 0
    got = read_summary(out)
    blocked_any = False
    for folder, msgs in mailbox.folders.items():
        values = [
            expect_dnsbl(m.facts["dnsbl"], [DNSBL_BLOCKED_ZONE], bool(m.facts["origin_ip"]))
            for m in msgs
        ]
        blocked_any |= any(m.facts["dnsbl"].get(DNSBL_BLOCKED_ZONE) == BLOCKED_ANSWER for m in msgs)
        want = (
            sum(v is True for v in values),
            sum(v is not None for v in values),
            len(msgs),
        )
        assert want[0] == 0  # a blocked answer is never a listing
        assert got[(folder, "dnsbl.listed")] == want, folder
    assert blocked_any
    manifest = json.loads((out / "manifest.json").read_text())
    assert any(DNSBL_BLOCKED_ZONE in w and "refused" in w for w in manifest["warnings"])
    counters = manifest["module_counters"]["dnsbl"]
    assert counters.get(f"{DNSBL_BLOCKED_ZONE}.blocked", 0) > 0
    assert counters.get(f"{DNSBL_BLOCKED_ZONE}.listed", 0) == 0


def test_dead_dns_server_leaves_network_checks_unknown(tmp_path, dovecot, dns, generated_mailbox):
    mailbox = generated_mailbox
    user = new_user(dovecot, mailbox)
    cfg = imap_config(tmp_path, dovecot, dns, user, mailbox, dns_timeout=0.5)
    cfg.write_text(cfg.read_text().replace(json.dumps(dns.server_spec), '"127.0.0.1:9"'))
    out = tmp_path / "out"
    rc = run_batch(str(cfg), str(out), modules="dnsbl,domain,dynamic,spf,internal", quiet=True)
    assert rc == 0
    got = read_summary(out)
    for folder, msgs in mailbox.folders.items():
        for check in ("dnsbl.listed", "domain.from_domain_exists", "dynamic.origin_dynamic",
                      "spf.pass"):  # fmt: skip
            assert got[(folder, check)] == (0, 0, len(msgs)), (folder, check)
        # the local check still works
        assert (
            got[(folder, "internal.internal")]
            == mailbox.expected_counts()[(folder, "internal.internal")]
        )
