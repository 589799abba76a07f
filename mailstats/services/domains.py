"""Registrable-domain splitting on the Public Suffix List.

tldextract is built with its bundled snapshot only: no download at run time (tests and users
may be offline, and a list that changes under a study makes runs incomparable) and no cache
directory in the user's home.
"""

from __future__ import annotations

from functools import lru_cache

import tldextract

from mailstats.mail.ips import parse_ip


class DomainSplitter:
    """One shared instance per run; the extractor is expensive to build, cheap to call."""

    def __init__(self) -> None:
        self._extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
        self.registrable = lru_cache(maxsize=65536)(self._registrable)

    def _registrable(self, host: str) -> str:
        """'smtp.out.example.co.uk' -> 'example.co.uk'; '' for IPs, bare suffixes and junk."""
        host = (host or "").strip().strip(".").lower()
        if not host or " " in host or host.startswith("["):
            return ""
        if parse_ip(host) is not None:
            return ""
        try:
            parts = self._extract(host)
        except Exception:  # noqa: BLE001 - junk host names must not stop a run
            return ""
        if not parts.domain or not parts.suffix:
            return ""
        return f"{parts.domain}.{parts.suffix}"

    def same_registrable(self, a: str, b: str) -> bool:
        ra, rb = self.registrable(a), self.registrable(b)
        return bool(ra) and ra == rb
