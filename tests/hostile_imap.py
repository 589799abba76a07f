"""A small IMAP server that misbehaves on purpose (asyncio, 127.0.0.1, a free port).

One `mode` per way a server can hurt a client: leave UIDs out of FETCH, garble or repeat
answers, send UIDs nobody asked for, send numbers RFC 3501 does not allow, nest 20,000
parentheses, drip one byte at a time, never stop sending untagged responses, ignore the
`<0.N>` partial and send huge literals, cut the connection inside a literal, and echo the
password back in NO and BYE replies. Everything else it answers like a plain, small server.

It stops by itself: every session and every loop is bounded in time and size, and the whole
server closes after `lifetime` seconds even if a test forgets to stop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MIB = 1024 * 1024
USER = "tester"
#: A password with the characters imaplib quotes, so every quoted form is tried.
PASSWORD = 'hostile-S3cr3t-"q"-\\x'

MODES = (
    "normal",
    "omit",  # 5 of 20 UIDs never come back, not even when asked alone
    "omit_batch",  # the same 5 are missing from batches only: asking alone recovers them
    "garble",  # 5 answers cannot be parsed
    "duplicate",  # every answer twice
    "unrequested",  # answers for UIDs that were not asked for, besides the right ones
    "uidvalidity_abc",
    "uidvalidity_huge",  # 2**63
    "uid_huge",  # SEARCH lists 2**63
    "nested",  # BODYSTRUCTURE nested 20,000 deep
    "nested_list",  # LIST's flags nested 20,000 deep (imapclient's own parser recurses)
    "drip_greeting",  # the greeting, one byte per `drip_s`
    "drip_fetch",  # the FETCH answer, one byte per `drip_s`
    "flood",  # untagged responses without end after EXAMINE
    "literal_50mb",  # one message's header literal is 50 MB
    "literal_200mb",
    "literals_2mb",  # every message's header literal is 2 MB
    "cut_literal",  # the connection closes halfway through a literal
    "echo_throttle",  # LOGIN: NO [THROTTLED] ... You sent: <the login string>
    "echo_no",  # EXAMINE: NO naming the password
    "echo_bye",  # FETCH: BYE naming the password
)


@dataclass
class Stats:
    connections: int = 0
    commands: list[str] = field(default_factory=list)
    fetches: int = 0
    bytes_sent: int = 0


def header(uid: int) -> bytes:
    return (
        f"From: Sender {uid} <sender{uid}@example.org>\r\n"
        f"To: Tester <{USER}@example.org>\r\n"
        f"Subject: message {uid}\r\n"
        f"Message-ID: <m{uid}@example.org>\r\n"
        "Date: Tue, 01 Dec 2026 08:00:00 +0000\r\n"
        "Received: from mx.example.org (mx.example.org [192.0.2.1]) by imap.example.org\r\n"
        "\r\n"
    ).encode()


_STRUCTURE = b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 12 1 NIL NIL NIL NIL)'


def uid_set(text: str, top: int) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        if ":" in part:
            a, b = part.split(":", 1)
            lo = int(a) if a != "*" else top
            hi = int(b) if b != "*" else top
            lo, hi = min(lo, hi), max(lo, hi)
            out.extend(range(lo, min(hi, top) + 1))
        elif part.isdigit():
            out.append(int(part))
    return out


class HostileImap:
    """`with HostileImap("omit") as srv:` then connect to 127.0.0.1:srv.port."""

    def __init__(
        self,
        mode: str = "normal",
        messages: int = 20,
        *,
        drip_s: float = 0.5,
        lifetime: float = 180.0,
        flood_max: int = 50_000_000,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        self.uids = list(range(1, messages + 1))
        self.drip_s = drip_s
        self.lifetime = lifetime
        self.flood_max = flood_max
        self.stats = Stats()
        self.port = 0
        self.bad = set(self.uids[3::4][:5])  # the UIDs the omit/garble modes mistreat
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> HostileImap:
        self._thread = threading.Thread(target=self._run, name=f"hostile-{self.mode}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("hostile IMAP server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(15)

    def __enter__(self) -> HostileImap:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        writers: set[asyncio.StreamWriter] = set()
        idle = asyncio.Event()
        idle.set()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.add(writer)
            idle.clear()
            self.stats.connections += 1
            try:
                await asyncio.wait_for(self._session(reader, writer), self.lifetime)
            except (TimeoutError, OSError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
                writers.discard(writer)
                if not writers:
                    idle.set()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), self.lifetime)
        server.close()
        for writer in list(writers):  # sessions end on their own once their socket is gone
            writer.transport.abort()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(idle.wait(), 10)
        await server.wait_closed()

    # -- one connection -------------------------------------------------------------------
    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        self.stats.bytes_sent += len(data)
        await writer.drain()

    async def _drip(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        for i in range(len(data)):  # bounded: one pass over the data
            await self._send(writer, data[i : i + 1])
            await asyncio.sleep(self.drip_s)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        greeting = b"* OK [CAPABILITY IMAP4rev1] hostile server ready\r\n"
        if self.mode == "drip_greeting":
            await self._drip(writer, greeting)
        else:
            await self._send(writer, greeting)
        for _ in range(10_000):  # commands per session: bounded
            line = await reader.readline()
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            literal = re.search(r"\{(\d+)\+?\}$", text)
            if literal:  # LOGIN with a literal password
                if not text.endswith("+}"):
                    await self._send(writer, b"+ go ahead\r\n")
                data = await reader.readexactly(int(literal[1]))
                text = text[: literal.start()] + data.decode("utf-8", "replace")
                text += (await reader.readline()).decode().rstrip("\r\n")
            tag, _, rest = text.partition(" ")
            cmd, _, args = rest.partition(" ")
            cmd = cmd.upper()
            self.stats.commands.append(cmd if cmd != "UID" else f"UID {args.split(' ')[0]}")
            if not await self._dispatch(writer, tag, cmd, args):
                return

    async def _dispatch(self, w: asyncio.StreamWriter, tag: str, cmd: str, args: str) -> bool:
        mode = self.mode
        ok = f"{tag} OK done\r\n".encode()
        if cmd == "CAPABILITY":
            await self._send(w, b"* CAPABILITY IMAP4rev1\r\n" + ok)
        elif cmd == "LOGIN":
            if mode == "echo_throttle":
                reply = f"{tag} NO [THROTTLED] Too many logins, try again later. You sent: {args}"
                await self._send(w, reply.encode() + b"\r\n")
            else:
                await self._send(w, ok)
        elif cmd in ("NOOP", "ID", "ENABLE"):
            await self._send(w, ok)
        elif cmd == "LOGOUT":
            await self._send(w, b"* BYE bye\r\n" + ok)
            return False
        elif cmd == "LIST" and mode == "nested_list":
            deep = b"(" * 20_000 + b"\\HasNoChildren" + b")" * 20_000
            await self._send(w, b'* LIST (' + deep + b') "/" INBOX\r\n' + ok)
        elif cmd == "LIST":
            await self._send(w, b'* LIST (\\HasNoChildren) "/" INBOX\r\n' + ok)
        elif cmd == "STATUS":
            await self._send(w, f"* STATUS INBOX (MESSAGES {len(self.uids)})\r\n".encode() + ok)
        elif cmd in ("EXAMINE", "SELECT"):
            return await self._examine(w, tag)
        elif cmd == "UID" and args.upper().startswith("SEARCH"):
            await self._search(w, tag, args)
        elif cmd == "UID" and args.upper().startswith("FETCH"):
            return await self._fetch(w, tag, args)
        else:
            await self._send(w, f"{tag} BAD unknown command\r\n".encode())
        return True

    async def _examine(self, w: asyncio.StreamWriter, tag: str) -> bool:
        mode = self.mode
        if mode == "echo_no":
            reply = f'{tag} NO Mailbox in use by {USER} "{PASSWORD}", try again\r\n'
            await self._send(w, reply.encode())
            return True
        validity = {"uidvalidity_abc": "abc", "uidvalidity_huge": str(2**63)}.get(mode, "1234")
        await self._send(
            w,
            f"* {len(self.uids)} EXISTS\r\n* 0 RECENT\r\n"
            f"* OK [UIDVALIDITY {validity}] UIDs valid\r\n"
            f"* OK [UIDNEXT {len(self.uids) + 1}] next\r\n"
            "* FLAGS (\\Seen)\r\n".encode(),
        )
        if mode == "flood":
            line = b"* 1 EXISTS\r\n" * 1000
            for _ in range(self.flood_max // 1000):  # bounded; the client gives up long before
                await self._send(w, line)
            return False
        await self._send(w, f"{tag} OK [READ-ONLY] EXAMINE done\r\n".encode())
        return True

    async def _search(self, w: asyncio.StreamWriter, tag: str, args: str) -> None:
        words = args.split()
        if len(words) >= 3 and words[1].upper() == "UID":
            listed = [u for u in uid_set(words[2], self.uids[-1]) if u in self.uids]
        else:
            listed = list(self.uids)
        if self.mode == "uid_huge":
            listed = [*listed, 2**63]
        body = " ".join(str(u) for u in listed)
        await self._send(w, f"* SEARCH {body}\r\n{tag} OK done\r\n".encode())

    async def _fetch(self, w: asyncio.StreamWriter, tag: str, args: str) -> bool:
        mode = self.mode
        self.stats.fetches += 1
        words = args.split(" ", 2)
        asked = uid_set(words[1], self.uids[-1])
        single = len(asked) == 1
        if mode == "echo_bye":
            await self._send(w, f'* BYE session of {USER} "{PASSWORD}" ended\r\n'.encode())
            return False
        out: list[bytes] = []
        for seq, uid in enumerate(asked, 1):
            if uid not in self.uids:
                continue
            if uid in self.bad and (mode == "omit" or (mode == "omit_batch" and not single)):
                continue
            if uid in self.bad and mode == "garble":
                out.append(f'* {seq} FETCH (UID {uid} RFC822.SIZE "12)\r\n'.encode())
                continue
            one = self._response(seq, uid)
            if mode == "cut_literal" and uid == asked[-1] and self.stats.fetches == 1:
                await self._send(w, b"".join(out) + one[: len(one) // 2])
                return False
            if mode in ("literal_50mb", "literal_200mb", "literals_2mb"):
                await self._send(w, b"".join(out))
                out = []
                await self._big(w, seq, uid)
                continue
            out.append(one)
            if mode == "duplicate":
                out.append(one)
            if mode == "unrequested":
                out.append(self._response(seq, uid + 1000))
        data = b"".join(out) + f"{tag} OK FETCH done\r\n".encode()
        if mode == "drip_fetch":
            await self._drip(w, data)
        else:
            await self._send(w, data)
        return True

    def _response(self, seq: int, uid: int) -> bytes:
        h = header(uid)
        structure = _STRUCTURE
        if self.mode == "nested" and uid == self.uids[0]:
            structure = b"(" * 20_000 + b'"TEXT" "PLAIN"' + b")" * 20_000
        return (
            f"* {seq} FETCH (UID {uid} RFC822.SIZE {len(h) + 12} BODYSTRUCTURE ".encode()
            + structure
            + f" BODY[HEADER] {{{len(h)}}}\r\n".encode()
            + h
            + b")\r\n"
        )

    async def _big(self, w: asyncio.StreamWriter, seq: int, uid: int) -> None:
        """A header literal far over what was asked for (`<0.262144>`), sent in 1 MiB writes."""
        size = {"literal_50mb": 50 * MIB, "literal_200mb": 200 * MIB}.get(self.mode, 2 * MIB)
        if self.mode != "literals_2mb" and uid != self.uids[0]:
            await self._send(w, self._response(seq, uid))
            return
        start = header(uid)[:-2] + b"X-Pad: "  # the blank line comes after the padding
        await self._send(
            w,
            f"* {seq} FETCH (UID {uid} RFC822.SIZE {size} BODYSTRUCTURE ".encode()
            + _STRUCTURE
            + f" BODY[HEADER] {{{size}}}\r\n".encode()
            + start,
        )
        block = b"x" * MIB
        left = size - len(start) - 4
        while left > 0:  # bounded by size
            await self._send(w, block[: min(left, MIB)])
            left -= MIB
        await self._send(w, b"\r\n\r\n")
        await self._send(w, b")\r\n")


@contextlib.contextmanager
def hostile(mode: str, **kw: Any) -> Iterator[HostileImap]:
    server = HostileImap(mode, **kw).start()
    try:
        yield server
    finally:
        server.stop()
