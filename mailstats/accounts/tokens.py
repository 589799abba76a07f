"""Where OAuth2 refresh tokens are kept: the system keyring, or a private file without one.

Only refresh tokens are stored (access tokens live in memory). The store is injectable so
tests and a session that must leave nothing behind use `MemoryStore`; `default_store`
picks the keyring when a real backend exists, else a 0600 JSON file in the user's data dir.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mailstats.accounts.config import Account

log = logging.getLogger(__name__)

KEYRING_SERVICE = "mailstats-oauth"


class TokenStore(Protocol):
    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str) -> None: ...

    def delete(self, key: str) -> None: ...


@dataclass
class MemoryStore:
    """For tests and for a session that must leave nothing behind."""

    data: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str | None:
        return self.data.get(key)

    def set(self, key: str, value: str) -> None:
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


class KeyringStore:
    """The system keyring (macOS Keychain, Windows Credential Manager, Secret Service)."""

    def get(self, key: str) -> str | None:
        import keyring

        return keyring.get_password(KEYRING_SERVICE, key)

    def set(self, key: str, value: str) -> None:
        import keyring

        keyring.set_password(KEYRING_SERVICE, key, value)

    def delete(self, key: str) -> None:
        import keyring
        import keyring.errors

        with contextlib.suppress(keyring.errors.PasswordDeleteError):
            keyring.delete_password(KEYRING_SERVICE, key)


class FileStore:
    """A 0600 JSON file: the fallback on a server with no keyring backend (a --batch box)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def _load(self) -> dict[str, str]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}

    def get(self, key: str) -> str | None:
        return self._load().get(key)

    def set(self, key: str, value: str) -> None:
        data = self._load()
        data[key] = value
        self._write(data)

    def delete(self, key: str) -> None:
        data = self._load()
        if data.pop(key, None) is not None:
            self._write(data)

    def _write(self, data: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        tmp.replace(self.path)


_store: TokenStore | None = None


def keyring_usable() -> bool:
    """False for keyring's fail/null backends (headless Linux without Secret Service)."""
    try:
        import keyring

        backend = keyring.get_keyring()
    except Exception:  # noqa: BLE001 - a broken keyring install is "no keyring"
        return False
    name = type(backend).__module__ + "." + type(backend).__name__
    return "fail" not in name.lower() and "null" not in name.lower() and backend.priority > 0


def default_store() -> TokenStore:
    """The injected store, else the keyring, else a private file in the user's data dir."""
    global _store
    if _store is None:
        if keyring_usable():
            _store = KeyringStore()
        else:
            from platformdirs import user_data_dir

            path = Path(user_data_dir("mailstats")) / "oauth-tokens.json"
            log.warning("no system keyring: OAuth2 refresh tokens are kept in %s (mode 0600)", path)
            _store = FileStore(path)
    return _store


def set_store(store: TokenStore | None) -> None:
    """Inject the store used by every `TokenManager` built without one (tests, the GUI)."""
    global _store
    _store = store


def token_key(account: Account) -> str:
    return f"{account.name}:{account.username}"
