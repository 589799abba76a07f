"""Local mail stores: one mbox file, a directory of mbox files, or a Maildir (Maildir++).

Local stores have no UIDs, so we make IMAP-like ones: a message's UID is its 1-based position
(mbox order; Maildir keys sorted, which for standard time-based names is delivery order), and
a digest of every position's key stands in for UIDVALIDITY. Appending mail keeps earlier UIDs
and their cached results; any rewrite (a deletion, a reorder) changes the digest of the old
prefix and the folder is analysed afresh. Files are only ever opened for reading.
"""

from __future__ import annotations

import hashlib
import mailbox
import mmap
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

from mailstats.mail.message import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    MAX_RAW_BYTES,
    MimePart,
)
from mailstats.mail.structure import parts_from_bytes, scan_parts
from mailstats.sources import (
    FetchedHeader,
    FolderInfo,
    FolderState,
    SourceError,
    decode_slice,
    text_sections,
)

_FROM_LINE = re.compile(rb"(?m)^From ")
#: Header bytes that identify an mbox message (with its From_ line).
_ID_BYTES = 4096


def split_header(raw: bytes) -> bytes:
    """The header block up to the blank line (CRLF, LF or CR-only), at most MAX_HEADER_BYTES."""
    head = raw[:MAX_HEADER_BYTES]
    for sep in (b"\r\n\r\n", b"\n\n", b"\r\r"):
        idx = head.find(sep)
        if idx != -1:
            return head[: idx + len(sep)]
    return head


class _Mbox:
    """A read-only mbox file, its table of contents built by one regex scan for From_ lines.

    The same reading as the mailbox module's (every line starting "From " begins a message;
    the blank line before it belongs to the separator), without its line-by-line loop, which
    cost more than analysing the messages. The file is opened read-only (mailbox.mbox opens
    it for writing when it may).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = path.open("rb")
        self._toc = self._scan()

    def _scan(self) -> list[tuple[int, int]]:
        size = os.fstat(self._fh.fileno()).st_size
        if size == 0:
            return []
        with mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            starts = [m.start() for m in _FROM_LINE.finditer(mm)]
            ends = starts[1:] + [size] if starts else []
            toc = []
            for start, end in zip(starts, ends, strict=True):
                # the separator's blank line is not part of the message
                stop = end - 1 if end - start >= 2 and mm[end - 2 : end] == b"\n\n" else end
                toc.append((start, stop))
        return toc

    def keys(self) -> list[int]:
        return list(range(len(self._toc)))

    def from_line_and_head(self, key: int, limit: int) -> tuple[bytes, bytes]:
        """The From_ line and at most `limit` bytes after it."""
        start, stop = self._toc[key]
        self._fh.seek(start)
        from_line = self._fh.readline()
        return from_line, self._fh.read(max(0, min(limit, stop - self._fh.tell())))

    def get_bytes(self, key: int) -> bytes:
        start, stop = self._toc[key]
        self._fh.seek(start)
        self._fh.readline()
        return self._fh.read(max(0, stop - self._fh.tell()))

    def close(self) -> None:
        self._fh.close()


class _Folder:
    def __init__(self, name: str, box: mailbox.Maildir | _Mbox) -> None:
        self.name = name
        self.box = box
        self._keys: list[str] | None = None

    def keys(self) -> list[str]:
        if self._keys is None:
            keys = [str(k) for k in self.box.keys()]  # noqa: SIM118 - Maildir iterates messages
            if isinstance(self.box, mailbox.Maildir):
                keys.sort()
            else:
                keys.sort(key=int)
            self._keys = keys
        return self._keys

    def raw(self, key: str) -> bytes:
        if isinstance(self.box, mailbox.Maildir):
            return self.box.get_bytes(key)
        return self.box.get_bytes(int(key))


class LocalSource:
    def __init__(self, path: str) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise SourceError(f"no such mail store: {self.path}")
        self.folders: dict[str, _Folder] = {}
        try:
            self._discover()
        except (OSError, mailbox.Error) as exc:
            raise SourceError(f"cannot read mail store {self.path}: {exc}") from None
        self.current: _Folder | None = None
        self.stats = {"fetch_commands": 0, "headers": 0, "bodies": 0, "raw": 0, "reconnects": 0}

    def _discover(self) -> None:
        p = self.path
        if p.is_file():
            self.folders[p.stem] = _Folder(p.stem, _Mbox(p))
            return
        if (p / "cur").is_dir() or (p / "new").is_dir():
            # Maildir++: the root is INBOX, ".Sub" and ".Sub.Child" are subfolders.
            self.folders["INBOX"] = _Folder("INBOX", mailbox.Maildir(p, create=False))
            for child in sorted(p.iterdir()):
                if child.name.startswith(".") and (child / "cur").is_dir():
                    name = child.name[1:].replace(".", "/")
                    self.folders[name] = _Folder(name, mailbox.Maildir(child, create=False))
            return
        for child in sorted(p.iterdir()):
            if child.is_file() and not child.name.startswith("."):
                with child.open("rb") as fh:
                    head = fh.read(5)
                if head == b"From " or child.suffix in (".mbox", ".mbx"):
                    self.folders[child.stem] = _Folder(child.stem, _Mbox(child))
            elif child.is_dir() and ((child / "cur").is_dir() or (child / "new").is_dir()):
                self.folders[child.name] = _Folder(child.name, mailbox.Maildir(child, create=False))
        if not self.folders:
            raise SourceError(f"{p} holds no mbox files and is not a Maildir")

    def list_folders(self) -> list[FolderInfo]:
        return [
            FolderInfo(name, (), "/", len(f.keys())) for name, f in sorted(self.folders.items())
        ]

    def folder_counts(self, names: list[str]) -> dict[str, int | None]:
        return {n: len(self.folders[n].keys()) if n in self.folders else None for n in names}

    def open_folder(self, folder: str) -> FolderState:
        f = self.folders.get(folder)
        if f is None:
            raise SourceError(f"folder {folder!r} not found in {self.path}")
        keys = f.keys()
        if isinstance(f.box, mailbox.Maildir):
            ids = keys
        else:
            # mbox keys are positions; identify each message by a digest of its From_ line
            # and first header bytes instead, so a rewrite is noticed.
            ids = [self._mbox_id(f, k) for k in keys]
        digest = hashlib.sha256("\0".join(ids).encode()).hexdigest()
        self.current = f
        self._ids = ids
        first = ids[0] if ids else folder
        return FolderState(
            uidvalidity=zlib.crc32(f"{self.path}:{folder}:{first}".encode()) or 1,
            uids=list(range(1, len(keys) + 1)),
            key_digest=digest,
        )

    def key_digest_prefix(self, n: int) -> str:
        """Digest of the first n message ids: equal to the cached digest if only appends."""
        return hashlib.sha256("\0".join(self._ids[:n]).encode()).hexdigest()

    @staticmethod
    def _mbox_id(f: _Folder, key: str) -> str:
        # The From_ line and the first header bytes: enough to notice a rewrite, and cheap
        # (parsing whole messages here cost more than the analysis on large mailboxes).
        assert isinstance(f.box, _Mbox)
        from_line, head = f.box.from_line_and_head(int(key), _ID_BYTES)
        h = hashlib.sha1(usedforsecurity=False)
        h.update(from_line)
        h.update(split_header(head))
        return h.hexdigest()[:16]

    def _raw(self, uid: int) -> bytes:
        assert self.current is not None
        return self.current.raw(self.current.keys()[uid - 1])

    def fetch_headers(self, uids: list[int]) -> Iterator[FetchedHeader]:
        for uid in uids:
            try:
                raw = self._raw(uid)
            except (OSError, KeyError, IndexError):
                continue
            header = split_header(raw)
            try:
                parts = parts_from_bytes(raw)
            except Exception:  # noqa: BLE001 - unparseable MIME: structure unknown
                parts = None
            self.stats["headers"] += 1
            yield FetchedHeader(uid, header, parts, len(raw))

    def fetch_bodies(self, wanted: dict[int, list[MimePart]]) -> dict[int, tuple[bytes, bool]]:
        out: dict[int, tuple[bytes, bool]] = {}
        for uid, parts in wanted.items():
            try:
                raw = self._raw(uid)
                by_section = {p.part.section: p for p in scan_parts(raw)}
            except Exception:  # noqa: BLE001
                out[uid] = (b"", False)
                continue
            texts = []
            for part in text_sections(parts):
                leaf = by_section.get(part.section)
                data = raw[leaf.start : min(leaf.end, leaf.start + MAX_BODY_BYTES)] if leaf else b""
                texts.append(decode_slice(data, part.encoding, part.charset))
            self.stats["bodies"] += 1
            out[uid] = ("\n".join(texts).encode("utf-8", "replace"), False)
        return out

    def fetch_raw(self, uids: list[int]) -> dict[int, tuple[bytes, bool]]:
        out = {}
        for uid in uids:
            try:
                raw = self._raw(uid)
            except (OSError, KeyError, IndexError):
                continue
            self.stats["raw"] += 1
            out[uid] = (raw[:MAX_RAW_BYTES], len(raw) > MAX_RAW_BYTES)
        return out

    def close(self) -> None:
        for f in self.folders.values():
            try:
                f.box.close()
            except Exception:  # noqa: BLE001
                pass

