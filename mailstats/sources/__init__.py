"""Where mail comes from: an IMAP server or a local mail store, behind one small interface.

Everything downstream (cache, engine, modules) sees the same `FetchedHeader` and the same
folder identity rules, so a Maildir and a server give identical statistics for the same mail.
"""

from __future__ import annotations

import base64
import os
import quopri
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from mailstats.accounts.config import Account
from mailstats.mail.message import MAX_BODY_BYTES, MimePart


class SourceError(Exception):
    """A problem with the mail source, worded for the user (never holds a password)."""


REDACTED = "***"
#: Shorter secrets are not searched for: they would blank out ordinary words.
MIN_SECRET = 3


def secret_forms(*secrets: str) -> tuple[str, ...]:
    """The ways a secret can appear in server text or a log line, longest first.

    As typed; IMAP-quoted (imaplib escapes `\\` and `"` in LOGIN); and inside a `repr` of
    str or bytes, which is how imaplib logs lines and words its errors.
    """
    forms: set[str] = set()
    for secret in secrets:
        if not secret or len(secret) < MIN_SECRET:
            continue
        quoted = secret.replace("\\", "\\\\").replace('"', '\\"')
        for text in (secret, quoted):
            forms.add(text)
            forms.add(repr(text)[1:-1])
            forms.add(repr(text.encode("utf-8", "replace"))[2:-1])
    return tuple(sorted((f for f in forms if len(f) >= MIN_SECRET), key=len, reverse=True))


def redact(text: str, forms: tuple[str, ...] | list[str]) -> str:
    """`text` with every form of a secret replaced: server text is shown only after this."""
    for form in forms:
        if form in text:
            text = text.replace(form, REDACTED)
    return text


class AuthError(SourceError):
    pass


@dataclass(frozen=True)
class FolderInfo:
    name: str
    flags: tuple[str, ...] = ()
    delimiter: str = "/"
    messages: int | None = None

    @property
    def selectable(self) -> bool:
        return "\\noselect" not in {f.lower() for f in self.flags} and "\\nonexistent" not in {
            f.lower() for f in self.flags
        }


@dataclass
class FolderState:
    uidvalidity: int
    uids: list[int]
    #: For local stores: a digest of the per-UID keys, so a rewritten file is noticed.
    key_digest: str = ""


@dataclass
class FetchedHeader:
    uid: int
    header: bytes
    parts: list[MimePart] | None
    size: int | None


class Source(Protocol):
    def list_folders(self) -> list[FolderInfo]: ...

    def open_folder(self, folder: str) -> FolderState: ...

    def fetch_headers(self, uids: list[int]) -> Iterator[FetchedHeader]: ...

    def fetch_bodies(self, wanted: dict[int, list[MimePart]]) -> dict[int, tuple[bytes, bool]]: ...

    def fetch_raw(self, uids: list[int]) -> dict[int, tuple[bytes, bool]]: ...

    def close(self) -> None: ...


class OpenFolder:
    """A source that remembers which folder it has open.

    Syncing the sent folders first, then fetching bodies for a folder analysed later, leaves
    another folder selected: `ensure_open` re-opens only then, and the source itself stays
    as it is (any `Source`; other attributes pass through).
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.current: str | None = None

    def open_folder(self, folder: str) -> FolderState:
        state = self.source.open_folder(folder)
        self.current = folder
        return state

    def ensure_open(self, folder: str) -> None:
        if self.current != folder:
            self.open_folder(folder)

    def __getattr__(self, name: str) -> object:
        return getattr(self.source, name)


#: Defaults of settings.imap_timeout (a read that receives nothing) and
#: settings.imap_command_timeout (one command's whole answer), in seconds.
IMAP_TIMEOUT_S = 60.0
IMAP_COMMAND_TIMEOUT_S = 300.0


def source_options(settings: Any) -> dict[str, float]:
    """The `open_source` keywords that come from the accounts file's [settings]."""
    extra = getattr(settings, "extra", {}) or {}
    return {
        "timeout": float(extra.get("imap_timeout", IMAP_TIMEOUT_S)),
        "command_timeout": float(extra.get("imap_command_timeout", IMAP_COMMAND_TIMEOUT_S)),
    }


def open_source(account: Account, password: str = "", **kwargs: object) -> Source:
    """Connect (IMAP) or open (local store) an account's mail, read-only."""
    if account.is_local:
        from mailstats.sources.local import LocalSource

        return LocalSource(account.path)
    if not password and account.auth != "oauth2" and account.password_env:
        env = account.password_env
        if not os.environ.get(env):
            # Said before connecting: the server would only answer "wrong password".
            state = "is empty" if env in os.environ else "is not set"
            raise AuthError(
                f"password_env: the environment variable {env} {state}"
                f" (in the process that ran this account, on {socket.gethostname()})"
            )
    from mailstats.sources.imap import ImapSource

    return ImapSource(account, password, **kwargs)  # type: ignore[arg-type]


# -- folder roles -----------------------------------------------------------------------

_SPAM_NAMES = {
    "junk",
    "spam",
    "bulk mail",
    "bulk",
    "junk e-mail",
    "junk email",
    "[gmail]/spam",
    "junk mail",
    "spamverdacht",
    "courrier indésirable",
    "posta indesiderata",
}
_SENT_NAMES = {
    "sent",
    "sent items",
    "sent messages",
    "sent mail",
    "[gmail]/sent mail",
    "gesendet",
    "gesendete objekte",
    "envoyés",
    "éléments envoyés",
    "posta inviata",
}
_IGNORE_FLAGS = {"\\trash", "\\drafts", "\\all", "\\archive", "\\flagged", "\\important"}


def guess_role(folder: FolderInfo) -> str:
    """RFC 6154 SPECIAL-USE flags first, then common names; '' means ignore."""
    flags = {f.lower() for f in folder.flags}
    if "\\junk" in flags:
        return "spam"
    if "\\sent" in flags:
        return "sent"
    if flags & _IGNORE_FLAGS or not folder.selectable:
        return ""
    name = folder.name.lower()
    leaf = re.split(r"[/.]", name)[-1] if folder.delimiter else name
    if name == "inbox":
        return "ham"
    if name in _SPAM_NAMES or leaf in _SPAM_NAMES:
        return "spam"
    if name in _SENT_NAMES or leaf in _SENT_NAMES:
        return "sent"
    return ""


# -- body text decoding shared by both sources -------------------------------------------


def text_sections(parts: list[MimePart] | None) -> list[MimePart]:
    """The first text/plain and first text/html leaf: what "body text" modules read."""
    chosen: list[MimePart] = []
    for ctype in ("text/plain", "text/html"):
        for p in parts or ():
            if p.content_type == ctype and p.disposition != "attachment":
                chosen.append(p)
                break
    return chosen


def decode_slice(data: bytes, encoding: str, charset: str) -> str:
    """Decode the first bytes of a part; a cut base64 quantum or QP escape is tolerated."""
    encoding = (encoding or "").lower()
    try:
        if encoding == "base64":
            compact = re.sub(rb"[^A-Za-z0-9+/=]", b"", data)
            compact = compact[: len(compact) - len(compact) % 4]
            data = base64.b64decode(compact, validate=False)
        elif encoding == "quoted-printable":
            data = quopri.decodestring(data)
    except (ValueError, base64.binascii.Error):  # type: ignore[attr-defined]
        pass
    data = data[:MAX_BODY_BYTES]
    try:
        return data.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return data.decode("latin-1", errors="replace")
