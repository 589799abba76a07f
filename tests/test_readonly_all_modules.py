"""Read-only, proved from the server side, with every module enabled (the opt-in one too).

mailstats' own guard refuses write commands before they are sent (tests/test_imap_guard.py);
this test does not trust it. Every module runs against Dovecot, including those that fetch
body text (personal) and whole messages (dkim), and then Dovecot's own records are read: the
rawlog transcript of every command the client sent, the mail_log plugin's list of changes,
and the file names of the Maildir, in which Dovecot encodes each message's flags. INBOX is
delivered *unseen*, so a FETCH without .PEEK would show up as a new \\Seen flag.

Reachability would probe the origin IPs of the mail, which are public addresses: its prober
is pointed at a closed loopback port instead (`reachability_port` and a prober that dials
127.0.0.1), and every socket connect/sendto of the run is checked to go to loopback.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest
from test_e2e_imap import accounts_file, wait_login

from mailstats.accounts.config import load_config
from mailstats.modules import available_modules
from mailstats.run.engine import Engine
from mailstats.services.probe import TcpProber
from mailstats.stats.export import write_outputs

pytestmark = pytest.mark.servers

FORBIDDEN = {
    "STORE", "COPY", "MOVE", "EXPUNGE", "APPEND", "CREATE", "DELETE", "RENAME", "SELECT",
    "SUBSCRIBE", "UNSUBSCRIBE", "SETACL", "DELETEACL", "SETMETADATA", "SETQUOTA", "UNSELECT",
    "CLOSE",
}  # fmt: skip
_SEEN_SETTING = re.compile(r"BODY\[|RFC822(?!\.SIZE|\.HEADER)\b", re.I)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed once the with-block ends


class LoopbackProber(TcpProber):
    """The real prober, but every probe dials 127.0.0.1 (a closed port), never the origin."""

    def __init__(self, port: int) -> None:
        super().__init__(port=port, timeout=1.0)
        self.asked: list[str] = []

    def _probe(self, ip: str) -> bool | None:
        self.asked.append(ip)
        return super()._probe("127.0.0.1")


def _is_loopback(addr: Any) -> bool:
    host = addr[0] if isinstance(addr, tuple) else addr
    return host in ("127.0.0.1", "::1", "localhost") or str(host).startswith("127.")


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Fail the test on any connect/sendto to a non-loopback address during the run."""
    seen: list[Any] = []
    real_connect, real_connect_ex, real_sendto = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.socket.sendto,
    )

    def guard(addr: Any) -> None:
        seen.append(addr)
        if isinstance(addr, tuple) and not _is_loopback(addr):
            raise AssertionError(f"non-loopback traffic attempted: {addr!r}")

    def connect(self: socket.socket, addr: Any) -> Any:
        guard(addr)
        return real_connect(self, addr)

    def connect_ex(self: socket.socket, addr: Any) -> Any:
        guard(addr)
        return real_connect_ex(self, addr)

    def sendto(self: socket.socket, data: bytes, *args: Any) -> Any:
        guard(args[-1])
        return real_sendto(self, data, *args)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", sendto)
    return seen


def test_every_module_leaves_the_mailbox_untouched(
    tmp_path: Path, dovecot: Any, dns: Any, generated_mailbox: Any, loopback_only: list[Any]
) -> None:
    user = "readonly@example.org"
    dovecot.add_user(user, "ro-pw")
    wait_login(dovecot, user)
    for folder, msgs in generated_mailbox.folders.items():
        flags = "" if folder == "INBOX" else "S"  # INBOX unseen: a non-PEEK fetch would show
        dovecot.deliver(user, folder, [m.raw for m in msgs], flags=flags)
    before = dovecot.flags_snapshot(user)
    rawlog = dovecot.rawlog_dir(user)
    logs_before = set(rawlog.glob("*"))

    names = tuple(m.name for m in available_modules().modules)
    assert "reachability" in names and len(names) >= 16
    port = closed_port()
    cfg_path = accounts_file(tmp_path, dovecot, dns, user, generated_mailbox, modules=names)
    cfg_path.write_text(
        cfg_path.read_text().replace("[[accounts]]", f"reachability_port = {port}\n\n[[accounts]]")
    )
    cfg = load_config(cfg_path)
    engine = Engine(cfg)
    prober = LoopbackProber(port)
    engine._probe = prober  # the engine's one prober per run
    result = engine.run()
    write_outputs(engine, result, tmp_path / "out")
    assert result.ok, [a.error for a in result.accounts]
    assert {m.name for m in result.modules} == set(names)
    assert prober.asked, "reachability probed nothing: the opt-in module did not run"
    assert result.fetch_stats["bodies"] > 0 and result.fetch_stats["raw"] > 0
    assert loopback_only and all(_is_loopback(a) for a in loopback_only if isinstance(a, tuple))

    # 1. Dovecot's transcripts: only reading commands, only .PEEK fetches
    dovecot.wait_sessions(1, user)
    new_logs = [p for p in rawlog.glob("*.in") if p not in logs_before]
    assert new_logs, f"no rawlog in {rawlog}"
    commands = []
    for p in new_logs:
        commands += _commands_of(p)
    verbs = [c.split(" ", 1)[0].upper() for c in commands]
    verbs = [
        c.split(" ", 2)[1].upper() if v == "UID" else v
        for v, c in zip(verbs, commands, strict=True)
    ]
    assert "EXAMINE" in verbs and "FETCH" in verbs
    assert not FORBIDDEN & set(verbs), sorted(FORBIDDEN & set(verbs))
    fetches = [c for c in commands if " FETCH " in f" {c.upper()} "]
    assert any("BODY.PEEK[]" in c for c in fetches)  # dkim's whole-message fetch was there
    bad = [c for c in fetches if _SEEN_SETTING.search(c.replace("BODY.PEEK[", ""))]
    assert not bad, bad

    # 2. Dovecot's change log and 3. the flags in the Maildir file names
    assert dovecot.mail_log_events(user) == []
    assert dovecot.flags_snapshot(user) == before
    assert all(flags == "" for _, flags in before["INBOX"])  # still unseen


_LINE = re.compile(r"^(?:\d+(?:\.\d+)?\s+)?[A-Za-z0-9.+]+ (\S.*)$")  # [timestamp] tag command


def _commands_of(path: Path) -> list[str]:
    """Every command line the client sent in one session (a *.in transcript), tag stripped."""
    out: list[str] = []
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():
        m = _LINE.match(line)
        if m:
            out.append(m[1])
    return out
