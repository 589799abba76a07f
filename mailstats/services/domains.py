"""Registrable-domain splitting on the Public Suffix List.

tldextract's bundled snapshot only: no download at run time (tests and users may be offline,
and a list that changes under a study makes runs incomparable) and no cache directory in the
user's home. services/psl.py reads it and splits names as tldextract does, without importing
tldextract (it says why).
"""

from __future__ import annotations

from functools import lru_cache

from mailstats.mail.ips import parse_ip
from mailstats.services import psl


class DomainSplitter:
    """One shared instance per run; the list is read at the first name (a re-run with
    nothing new splits none), then each name is a walk of a few dict look-ups."""

    def __init__(self) -> None:
        self.registrable = lru_cache(maxsize=8192)(self._registrable)

    def _registrable(self, host: str) -> str:
        """'smtp.out.example.co.uk' -> 'example.co.uk'; '' for IPs, bare suffixes and junk."""
        host = (host or "").strip().strip(".").lower()
        if not host or " " in host or host.startswith("["):
            return ""
        if parse_ip(host) is not None:
            return ""
        psl.trie()  # outside the try: a missing list is never a silent "" (read once, cached)
        try:
            domain, suffix = psl.split(host)
        except Exception:  # noqa: BLE001 - junk host names must not stop a run
            return ""
        if not domain or not suffix:
            return ""
        return f"{domain}.{suffix}"

    def same_registrable(self, a: str, b: str) -> bool:
        ra, rb = self.registrable(a), self.registrable(b)
        return bool(ra) and ra == rb
