"""Session fixtures: real Dovecot and dnsmasq on loopback, and the generated test mailbox.

The servers start once per session (Dovecot needs ~0.5 s, the TLS material another 0.3 s)
and are stopped by pid at the end. When a binary is missing, every test that asks for a
server fixture is skipped with the reason, so a laptop without Dovecot still runs the rest.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

#: Property tests are bounded by their example counts, not by hypothesis's 200 ms deadline
#: per example: on a loaded CI machine the deadline failed tests that pass (a profile is the
#: default every @settings decorator starts from, so their own limits still apply).
hypothesis_settings.register_profile("mailstats", deadline=None)
hypothesis_settings.load_profile("mailstats")

#: No test ever opens a window on a real display (the GUI tests run on Qt's offscreen one).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `from fixtures.generator import ...` in tests
    sys.path.insert(0, str(ROOT))

from servers import Dns, Dovecot, ServerUnavailable, missing_binaries  # noqa: E402

from fixtures.generator import Mailbox, generate_mailbox  # noqa: E402
from fixtures.zone import DnsRecords  # noqa: E402

#: The standard generated mailbox: seed and sizes are part of the fixture's contract.
MAILBOX_SEED = 1
MAILBOX_SIZES = {"n_ham": 120, "n_spam": 80, "n_sent": 30}


@pytest.fixture(scope="session")
def generated_mailbox() -> Mailbox:
    """Dana's generated mailbox (INBOX ham, Junk spam, Sent) with expectations."""
    return generate_mailbox(MAILBOX_SEED, **MAILBOX_SIZES)


def _skip_if_missing() -> None:
    missing = missing_binaries()
    if missing:
        pytest.skip(f"server binaries missing: {', '.join(missing)}")


@pytest.fixture(scope="session")
def dns(generated_mailbox: Mailbox) -> Iterator[Dns]:
    """dnsmasq serving the generated mailbox's zone; unknown names are NXDOMAIN."""
    _skip_if_missing()
    records = DnsRecords.from_json(generated_mailbox.dns_records.to_json())  # a copy
    try:
        server = Dns.start(records)
    except ServerUnavailable as exc:
        pytest.skip(f"dnsmasq would not start: {exc}")
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """Dovecot with users dana@example.org / erin@example.org and empty mailboxes."""
    _skip_if_missing()
    try:
        server = Dovecot.start()
    except ServerUnavailable as exc:
        pytest.skip(f"dovecot would not start: {exc}")
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def dana_imap(dovecot: Dovecot, generated_mailbox: Mailbox) -> Mailbox:
    """The generated mailbox delivered into Dovecot for dana@example.org (INBOX/Junk/Sent)."""
    for folder, msgs in generated_mailbox.folders.items():
        dovecot.deliver("dana@example.org", folder, [m.raw for m in msgs])
    return generated_mailbox
