"""Pseudonymise messages.csv so it can be shared with the study without personal data.

Values are replaced by keyed tokens (HMAC-SHA256 under a per-user secret key, truncated to
64 bits and prefixed with the kind: `addr_3f9a...`). Keyed, not a plain hash, because
addresses and IPs are guessable: anyone could hash a list of candidates and match them. The
same key gives the same token for the same value in every run, so several exports from one
user can still be joined; different users' keys give unrelated tokens.

What is replaced in messages.csv:
- `message_id` -> `msgid_...` (angle brackets stripped; case kept, local parts are case-sensitive);
- `from_address` -> `addr_<token of the whole address>@dom_<token of its domain>`, so "how many
  senders share a domain" survives while neither the address nor the domain does;
- `origin_ip` -> `ip_...`;
- every *extra* column (listed in manifest.json "extras", or any column after the check columns
  that is not a check): cells that are numbers are kept (hours, weekdays, skews, ages), every
  other non-empty cell is tokenised by what it looks like (an address, an IP, a domain, else
  `text_...`). Erring on the side of replacing: an extra text fact we do not know about could
  be a host name or an address.

Kept as they are: account, folder, role, uid, date and the check columns (0/1/empty): they
are what the study needs and carry no third party's identity. Account and folder names are
the user's own choice.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
from pathlib import Path

from mailstats.stats.export import MESSAGE_COLUMNS

KEY_BYTES = 32
TOKEN_HEX = 16  # 64 bits: collisions are negligible for any mailbox size

BASE_COLUMNS = tuple(MESSAGE_COLUMNS)  # messages.csv's fixed columns (export.py owns them)
KEEP_COLUMNS = frozenset({"account", "folder", "role", "uid", "date"})

_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\.?$")
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class Anonymizer:
    """Keyed tokens for personal values; deterministic for one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("anonymisation key must be at least 16 bytes")
        self._key = key

    def token(self, kind: str, value: str) -> str:
        """`<kind>_<64-bit hex HMAC of kind and value>`; the kind is bound into the MAC."""
        mac = hmac.new(self._key, f"{kind}\0{value}".encode(), hashlib.sha256)
        return f"{kind}_{mac.hexdigest()[:TOKEN_HEX]}"

    def address(self, value: str) -> str:
        addr = value.strip().strip("<>").strip().lower()
        if not addr:
            return ""
        local, sep, domain = addr.rpartition("@")
        if not sep:
            return self.token("addr", addr)
        return f"{self.token('addr', addr)}@{self.token('dom', domain.rstrip('.'))}"

    def message_id(self, value: str) -> str:
        mid = value.strip().strip("<>").strip()
        return self.token("msgid", mid) if mid else ""

    def ip(self, value: str) -> str:
        text = value.strip()
        if not text:
            return ""
        try:
            text = str(ipaddress.ip_address(text.strip("[]")))
        except ValueError:
            pass
        return self.token("ip", text.lower())

    def guess(self, value: str) -> str:
        """Tokenise a free value by its look: address, IP, domain, else opaque text."""
        text = value.strip()
        if not text or _NUMBER_RE.match(text):
            return value
        if "@" in text:
            return self.address(text)
        try:
            ipaddress.ip_address(text.strip("[]"))
            return self.ip(text)
        except ValueError:
            pass
        if _DOMAIN_RE.match(text.lower()):
            return self.token("dom", text.lower().rstrip("."))
        return self.token("text", text)


def default_key_path() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("mailstats")) / "anonymize.key"


def load_or_create_key(path: str | Path | None = None) -> bytes:
    """The user's anonymisation key (hex in a 0600 file), created on first use.

    Created with O_EXCL so two processes racing do not end up with different keys (the loser
    reads the winner's file), and with mode 0600 from the start rather than chmod'ed after.
    """
    p = Path(path) if path is not None else default_key_path()
    try:
        return bytes.fromhex(p.read_text().strip())
    except FileNotFoundError:
        pass
    p.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(p.read_text().strip())
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")
    return key


def _split_columns(header: list[str], manifest_path: Path | None) -> tuple[set[str], set[str]]:
    """(check columns, extra columns): from manifest.json when present, else by position."""
    if manifest_path is not None and manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            checks = set(manifest.get("checks") or [])
            extras = set(manifest.get("extras") or [])
            # Anything unexpected and not a listed check is treated as an extra: safer.
            extras |= {c for c in header if c not in BASE_COLUMNS and c not in checks}
            return checks, extras
        except (OSError, ValueError):
            pass
    # Without a manifest: columns whose every value is 0/1/empty are checks (decided by the
    # caller from the data); here we only know the base columns.
    return set(), {c for c in header if c not in BASE_COLUMNS}


def anonymize_messages_csv(
    in_path: str | Path, out_path: str | Path, key: bytes, manifest_path: str | Path | None = None
) -> Path:
    """Write a copy of messages.csv with personal values replaced by tokens (see module doc).

    manifest_path defaults to manifest.json next to in_path. Check columns (0/1/empty) are
    copied unchanged; without a manifest every non-base column is handled as an extra, and
    0/1 values survive that too because numbers are kept.
    """
    in_path, out_path = Path(in_path), Path(out_path)
    anon = Anonymizer(key)
    mpath = Path(manifest_path) if manifest_path is not None else in_path.with_name("manifest.json")
    tmp = out_path.with_name(out_path.name + ".tmp")
    with (
        open(in_path, newline="", encoding="utf-8") as src,
        open(tmp, "w", newline="", encoding="utf-8") as dst,
    ):
        reader = csv.reader(src)
        writer = csv.writer(dst)
        header = next(reader, None)
        if header is None:
            tmp.replace(out_path)
            return out_path
        writer.writerow(header)
        checks, extras = _split_columns(header, mpath)
        handlers = []
        for col in header:
            if col == "message_id":
                handlers.append(anon.message_id)
            elif col == "from_address":
                handlers.append(anon.address)
            elif col == "origin_ip":
                handlers.append(anon.ip)
            elif col in KEEP_COLUMNS or col in checks:
                handlers.append(None)
            else:
                handlers.append(anon.guess)
        for row in reader:
            out = []
            for i, cell in enumerate(row):
                fn = handlers[i] if i < len(handlers) else anon.guess
                out.append(fn(cell) if fn is not None and cell else cell)
            writer.writerow(out)
    tmp.replace(out_path)
    return out_path
