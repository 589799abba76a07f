"""Shared helpers for the tests of the local header modules (no network, no DNS).

Messages are built directly from header text; the services carry a resolver that raises when
anything calls it, because these modules must never touch DNS.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from pathlib import Path

from mailstats.mail.message import Message, MimePart
from mailstats.services import Identity, SentIndex, Services
from mailstats.services.domains import DomainSplitter

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"

_SPLITTER: DomainSplitter | None = None


class ForbiddenDns:
    """A resolver stand-in: any look-up fails the test."""

    servers: list[str] = []

    def __getattr__(self, name: str):  # query, ptr, prefetch, ...
        raise AssertionError(f"local module touched DNS ({name})")


def splitter() -> DomainSplitter:
    global _SPLITTER
    if _SPLITTER is None:
        _SPLITTER = DomainSplitter()
    return _SPLITTER


def services(
    *,
    full_name: str = "",
    own_domains: tuple[str, ...] = (),
    address: str = "",
    sent_index: SentIndex | None = None,
    settings: dict | None = None,
) -> Services:
    return Services(
        dns=ForbiddenDns(),  # type: ignore[arg-type]
        domains=splitter(),
        identity=Identity(address=address, full_name=full_name, own_domains=own_domains),
        sent_index=sent_index,
        settings=settings or {},
    )


def msg(
    headers: str | bytes,
    parts: list[MimePart] | None = None,
    body: str | None = None,
) -> Message:
    """A Message from header text; LF or CRLF, a trailing blank line is optional."""
    raw = headers.encode("utf-8", "surrogateescape") if isinstance(headers, str) else headers
    return Message(
        account="a", folder="INBOX", uid=1, header_bytes=raw, parts=parts, body_text=body
    )


def split_message(data: bytes) -> tuple[bytes, bytes]:
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = data.find(sep)
        if i >= 0:
            return data[: i + len(sep)], data[i + len(sep) :]
    return data, b""


def parts_of(data: bytes) -> tuple[list[MimePart], str | None, str | None]:
    """(leaf parts, first text/plain slice, first text/html slice) as a source would give."""
    parsed = email.message_from_bytes(data, policy=email.policy.compat32)
    parts: list[MimePart] = []
    plain = html = None
    for part in parsed.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=False)
        size = len(payload) if isinstance(payload, str) else 0
        try:
            filename = part.get_filename() or ""
        except Exception:  # noqa: BLE001 - broken RFC 2231 parameters in the corpus
            filename = ""
        ctype = part.get_content_type().lower()
        parts.append(
            MimePart(
                content_type=ctype,
                disposition=(part.get_content_disposition() or "").lower(),
                filename=str(filename),
                size=size,
                charset=str(part.get_content_charset() or ""),
            )
        )
        first = (plain if ctype == "text/plain" else html) is None
        if ctype in ("text/plain", "text/html") and first:
            raw = part.get_payload(decode=True) or b""
            try:
                text = raw[:2048].decode(part.get_content_charset() or "latin-1", "replace")
            except LookupError:
                text = raw[:2048].decode("latin-1")
            if ctype == "text/plain":
                plain = text
            else:
                html = text
    return parts, plain, html


def corpus_messages(prefer_html: bool = False) -> Iterator[tuple[Path, Message]]:
    """Every .eml of the shared corpus as a Message with structure and a body slice."""
    for path in sorted(CORPUS.rglob("*.eml")):
        data = path.read_bytes()
        header, _ = split_message(data)
        parts, plain, html = parts_of(data)
        body = (html or plain) if prefer_html else (plain or html)
        role = "spam" if "/spam/" in str(path) or "sa_t_spam" in str(path) else "ham"
        m = Message(
            account="corpus",
            folder=path.parent.name,
            uid=1,
            header_bytes=header,
            parts=parts,
            body_text=body,
            size=len(data),
            role=role,
        )
        yield path, m


def run_over_corpus(module, svc: Services, prefer_html: bool = False) -> dict:
    """Evaluate `module` on every corpus message; returns {check: Counter of values}, n."""
    import collections

    import pytest

    if not CORPUS.is_dir():
        pytest.skip("shared corpus not present")
    counts: dict = {c: collections.Counter() for c in module.checks}
    n = 0
    for path, m in corpus_messages(prefer_html=prefer_html):
        try:
            result = module.evaluate(m, svc)
        except Exception as exc:  # pragma: no cover - the failure message names the file
            raise AssertionError(f"{module.name} raised on {path}: {exc!r}") from exc
        for c in module.checks:
            assert result[c] in (True, False, None), (path, c, result[c])
            counts[c][result[c]] += 1
        for e in module.extras:
            assert e in result, (path, e)
        n += 1
    assert n > 500
    counts["_n"] = n
    return counts
