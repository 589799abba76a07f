"""Registrable-domain splitting on the Public Suffix List.

tldextract is built with its bundled snapshot only: no download at run time (tests and users
may be offline, and a list that changes under a study makes runs incomparable) and no cache
directory in the user's home.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from mailstats.mail.ips import parse_ip


class DomainSplitter:
    """One shared instance per run; the extractor is expensive to build, cheap to call."""

    def __init__(self) -> None:
        self._extractor: Any = None
        self.registrable = lru_cache(maxsize=8192)(self._registrable)

    def _build(self) -> Any:
        """tldextract, imported and built at the first name: its import (requests and all)
        is a tenth of a second of every start-up, and a re-run with nothing new splits none."""
        import tldextract

        self._extractor = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
        return self._extractor

    def _registrable(self, host: str) -> str:
        """'smtp.out.example.co.uk' -> 'example.co.uk'; '' for IPs, bare suffixes and junk."""
        host = (host or "").strip().strip(".").lower()
        if not host or " " in host or host.startswith("["):
            return ""
        if parse_ip(host) is not None:
            return ""
        extract = self._extractor or self._build()  # outside the try: never a silent ""
        try:
            parts = extract(host)
        except Exception:  # noqa: BLE001 - junk host names must not stop a run
            return ""
        if not parts.domain or not parts.suffix:
            return ""
        return f"{parts.domain}.{parts.suffix}"

    def same_registrable(self, a: str, b: str) -> bool:
        ra, rb = self.registrable(a), self.registrable(b)
        return bool(ra) and ra == rb
