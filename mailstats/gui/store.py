"""The desktop app's accounts file and session passwords (no Qt here, so it is easy to test).

The app keeps its accounts in the same TOML format as `--batch`, read by the same
`config.load_config`, so a user can take the file to a server unchanged. The app passes
`require_roles=False` because it must save and reload an account between "add account" and
"map folders". The file is always written with mode 0600 even though it never holds a
password, because it still names servers and user names.

A file that does not load is never overwritten silently: the window starts empty, says why,
and a copy of the file is kept next to it before the first save replaces it.

Passwords go to the system keyring. When no keyring backend works (a bare window manager,
a container), they live in this process only, and the window says so.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mailstats.accounts.config import (
    Account,
    Config,
    ConfigError,
    dump_config,
    load_config,
    store_password,
)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically with mode 0600 from the first byte on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def load_accounts(path: Path) -> Config:
    """The app's accounts file: accounts may have no folder mapped yet, or be none at all."""
    return load_config(path, require_roles=False)


def unmapped(cfg: Config) -> list[str]:
    """Accounts that `--batch` would refuse because no folder has a role."""
    return [a.name for a in cfg.accounts if not (a.ham or a.spam or a.sent)]


class Store:
    """The accounts the window shows, where they are saved, and session-only passwords."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.session_passwords: dict[str, str] = {}
        #: why the file could not be read ("" when it could); the window shows it
        self.load_error = ""
        self.backup: Path | None = None
        self.config = Config()
        if path.exists():
            try:
                self.config = load_accounts(path)
            except ConfigError as exc:
                self.load_error = str(exc)
                self.backup = path.with_name(path.name + ".unreadable")
                try:
                    shutil.copy2(path, self.backup)
                except OSError:
                    self.backup = None
        self.config.path = path

    @property
    def accounts(self) -> list[Account]:
        return self.config.accounts

    def account(self, name: str) -> Account | None:
        return next((a for a in self.config.accounts if a.name == name), None)

    def save(self) -> None:
        write_private(self.path, dump_config(self.config))

    def upsert(self, acct: Account, old_name: str | None = None) -> None:
        if old_name is not None and old_name != acct.name and old_name in self.session_passwords:
            self.session_passwords[acct.name] = self.session_passwords.pop(old_name)
        target = old_name if old_name is not None else acct.name
        for i, existing in enumerate(self.config.accounts):
            if existing.name == target:
                self.config.accounts[i] = acct
                break
        else:
            self.config.accounts.append(acct)
        self.save()

    def remove(self, name: str) -> None:
        self.config.accounts = [a for a in self.config.accounts if a.name != name]
        self.session_passwords.pop(name, None)
        self.save()

    def set_password(self, acct: Account, password: str) -> bool:
        """True when the keyring took it; False when it is kept for this session only."""
        try:
            store_password(acct, password)
        except Exception:  # noqa: BLE001 - any keyring failure means "no usable keyring"
            self.session_passwords[acct.name] = password
            return False
        self.session_passwords.pop(acct.name, None)
        return True

    def password_for(self, acct: Account, resolved: str) -> str:
        """What the engine's source factory uses: the resolved one, else this session's."""
        return resolved or self.session_passwords.get(acct.name, "")

    def import_file(self, path: Path) -> list[str]:
        """Merge an accounts file (every key checked; folders may still be unmapped)."""
        cfg = load_accounts(path)
        for acct in cfg.accounts:
            self.upsert(acct, acct.name if self.account(acct.name) else None)
        self.config.settings = cfg.settings
        self.save()
        return [a.name for a in cfg.accounts]

    def export_file(self, path: Path) -> None:
        write_private(path, dump_config(self.config))
