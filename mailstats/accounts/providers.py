"""What differs between mail providers: server settings, limits and the trust boundary.

The trust boundary of each *receiving* provider (where its own hops end) is not here but in
mail/receivers.py: it is recognised per message from the top hops, so an account needs no
setting for it, and it is decided by hop position and the `by` host, never by an address
range alone (Microsoft's outbound ranges are also where other tenants' mail comes from).
`trusted_relays` here are only what no per-message evidence can show.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    host: str = ""
    port: int = 993
    security: str = "ssl"
    auth: str = "password"  # what the provider allows in practice for IMAP
    ham: tuple[str, ...] = ("INBOX",)
    spam: tuple[str, ...] = ()
    sent: tuple[str, ...] = ()
    #: folders never analysed unless mapped by hand (Gmail's All Mail holds every message)
    ignored: tuple[str, ...] = ()
    #: the provider's own inbound relays: networks (preferred) or host names
    trusted_relays: tuple[str, ...] = ()
    pace_s: float = 0.0  # minimum seconds between IMAP commands
    max_connections: int = 4  # per host, all accounts of this process together
    retries: int = 3
    notes: tuple[str, ...] = field(default_factory=tuple)


PROFILES: dict[str, Profile] = {
    "gmail": Profile(
        name="gmail",
        title="Gmail / Google Workspace",
        host="imap.gmail.com",
        auth="oauth2",
        spam=("[Gmail]/Spam",),
        sent=("[Gmail]/Sent Mail",),
        ignored=("[Gmail]/All Mail", "[Gmail]/Important", "[Gmail]/Starred"),
        # Google's inbound hops after mx.google.com are "Received: by <IPv6> with SMTP id"
        # lines without a from-IP, so nothing needs trusting: its outbound servers
        # (mail-*.google.com, 209.85.128.0/17) are the real origin of mail from Gmail users.
        trusted_relays=(),
        # 2500 MB/day download and 15 connections per account; keep well below.
        pace_s=0.05,
        max_connections=4,
        retries=5,
    ),
    "microsoft": Profile(
        name="microsoft",
        title="Microsoft 365 / Outlook.com",
        host="outlook.office365.com",
        auth="oauth2",
        spam=("Junk Email",),
        sent=("Sent Items",),
        # Exchange Online's internal hops (2603:1000::/24 between *.prod.outlook.com hosts)
        # are recognised per message by mail/receivers.py, above its inbound edge only.
        trusted_relays=(),
        # Per-mailbox limits: 20 concurrent connections, request throttling with
        # "Suggested Backoff Time" hints.
        pace_s=0.1,
        max_connections=4,
        retries=6,
    ),
    "yahoo": Profile(
        name="yahoo",
        title="Yahoo Mail / AOL",
        host="imap.mail.yahoo.com",
        spam=("Bulk",),
        sent=("Sent",),
        # Inbound: "from <sender> (EHLO ...) (ip) by 10.x.x.x with SMTPs", then
        # "from 10.x.x.x by atlasNNN...yahoo.com with HTTPS": only private internal hops.
        trusted_relays=(),
        pace_s=0.05,
        max_connections=4,
        retries=5,
    ),
    "fastmail": Profile(
        name="fastmail",
        title="Fastmail",
        host="imap.fastmail.com",
        spam=("Spam",),
        sent=("Sent",),
        # Inbound: mxN.messagingengine.com -> localhost milters -> 10.202.x.x compute
        # hosts: private apart from the MX's own public address, which only ever appears as
        # the *by* side of the sender's hop.
        trusted_relays=(),
    ),
    "generic": Profile(
        name="generic",
        title="Own server (Postfix, Exim, Dovecot, ...)",
        # A two-tier site (MX in front of a mail store at another public address) must
        # list its MX in trusted_relays: no profile can know it.
        spam=("Junk",),
        sent=("Sent",),
    ),
}
PROVIDERS = tuple(PROFILES)


def profile_for(provider: str | None) -> Profile:
    return PROFILES.get((provider or "generic").lower(), PROFILES["generic"])


def trusted_relays_for(provider: str | None) -> list[str]:
    """The provider's own relays, to merge into an account's trusted_relays."""
    return list(profile_for(provider).trusted_relays)


def merge_relays(own: list[str], provider: str | None) -> list[str]:
    """The account's relays first, then the provider's, without duplicates."""
    out: list[str] = []
    seen: set[str] = set()
    for item in [*own, *trusted_relays_for(provider)]:
        key = item.strip().lower()
        if key and key not in seen:
            seen.add(key)
            out.append(item.strip())
    return out
