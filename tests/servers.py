"""Real Dovecot and dnsmasq servers on loopback high ports, for the `servers`-marked tests.

Why real servers: an IMAP fake answers what its author believed the protocol says, and the
bugs that matter (FETCH literals, STARTTLS, a folder layout, a server that changes flags on a
plain FETCH) only show against the real thing. Dovecot also logs per-session fetch counters
and, through mail_log, every change to a mailbox, so a test can prove from the server's own
log that mailstats fetched only headers and changed nothing.

Traps this file works around (each cost a debugging session):
- Dovecot refuses uid 0 as the mail user, and its unprivileged processes must read the
  config and mail directories: everything lives in a fresh `mkdtemp()` chmod 0755 (pytest's
  tmp_path is 0700) and mail belongs to an unprivileged user.
- Unix socket paths are limited to ~108 bytes: `base_dir` stays short under /tmp.
- dnsmasq answers REFUSED for names it does not know unless told `--local=/#/`.
- Timeouts and SERVFAIL come from two tiny in-process UDP servers: one never answers, the
  other answers SERVFAIL to everything; dnsmasq forwards chosen names to them.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fixtures.zone import DnsRecords

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
MAIL_USER = "mailstats-test"
DEFAULT_USERS = {"dana@example.org": "dana-secret", "erin@example.org": "erin-pw"}


class ServerUnavailable(RuntimeError):
    """The binaries are missing or the server would not start: tests skip with this reason."""


def missing_binaries() -> list[str]:
    return [b for b in (DOVECOT, DNSMASQ) if not (os.path.isfile(b) and os.access(b, os.X_OK))]


def free_port(kinds: Sequence[int] = (socket.SOCK_STREAM,)) -> int:
    """A loopback port free for every socket kind given (dnsmasq needs UDP and TCP)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, kinds[0]) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 20000:
            continue
        ok = True
        for kind in kinds:
            with socket.socket(socket.AF_INET, kind) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
        if ok:
            return port
    raise ServerUnavailable("no free loopback port")


def make_server_dir(prefix: str) -> Path:
    """World-readable temp dir: Dovecot's and dnsmasq's dropped-privilege processes read it."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def _wait_for(pred: Any, timeout: float, what: str, proc: subprocess.Popen[bytes] | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            raise ServerUnavailable(f"{what} exited with {proc.returncode}")
        time.sleep(0.05)
    raise ServerUnavailable(f"{what} did not come up within {timeout} s")


def _tcp_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _stop(proc: subprocess.Popen[bytes] | None, pid: int | None = None) -> None:
    """Stop exactly the process we started (by its pid), then reap it."""
    target = pid if pid is not None else (proc.pid if proc is not None else None)
    if target is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(target, signal.SIGTERM)
    if proc is not None:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal.SIGKILL)
            proc.wait(timeout=5)


# ----------------------------------------------------------------------------------------
# Mail user and TLS material
# ----------------------------------------------------------------------------------------
def mail_uid_gid() -> tuple[int, int]:
    """An unprivileged uid/gid for mail files: our own when not root, else a system user."""
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    try:
        pw = pwd.getpwnam(MAIL_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        res = subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", MAIL_USER],
            capture_output=True,
            text=True,
        )
        try:
            pw = pwd.getpwnam(MAIL_USER)
        except KeyError:
            try:
                pw = pwd.getpwnam("nobody")
            except KeyError as exc:
                raise ServerUnavailable(f"cannot create {MAIL_USER}: {res.stderr}") from exc
    return pw.pw_uid, pw.pw_gid


def make_tls_material(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1/localhost: (cafile, cert, key).

    A real chain rather than a self-signed leaf, so clients verify the way they would
    against a provider (CA in the trust store, leaf with SANs), not via a special case.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ServerUnavailable("openssl binary missing (needed for the test certificate)")
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "server.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )

    def run(*args: str) -> None:
        res = subprocess.run([openssl, *args], capture_output=True, text=True)
        if res.returncode != 0:
            raise ServerUnavailable(f"openssl {args[0]} failed: {res.stderr.strip()}")

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3", "-subj",
        "/CN=mailstats test CA", "-keyout", str(ca_key), "-out", str(ca_crt),
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", str(key), "-out", str(csr))  # fmt: skip
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "3", "-extfile", str(ext), "-out", str(crt))  # fmt: skip
    for p in (ca_crt, crt):
        p.chmod(0o644)
    key.chmod(0o600)
    return ca_crt, crt, key


# ----------------------------------------------------------------------------------------
# Dovecot
# ----------------------------------------------------------------------------------------
#: Counters Dovecot 2.3 can put in imap_logout_format; each is logged as name=value.
LOGOUT_FORMAT = (
    "in=%i out=%o deleted=%{deleted} expunged=%{expunged} trashed=%{trashed} "
    "hdr_count=%{fetch_hdr_count} hdr_bytes=%{fetch_hdr_bytes} "
    "body_count=%{fetch_body_count} body_bytes=%{fetch_body_bytes}"
)
MAIL_LOG_EVENTS = (
    "delete undelete expunge copy mailbox_delete mailbox_rename mailbox_create "
    "flag_change save append"
)
SPECIAL_USE = {"Junk": r"\Junk", "Sent": r"\Sent", "Trash": r"\Trash", "Drafts": r"\Drafts"}

_LOGOUT_RE = re.compile(
    r"imap\((?P<user>[^)]*)\)<(?P<pid>\d+)><(?P<session>[^>]*)>: (?:Info: )?"
    r"(?P<reason>.*?) (?P<counters>in=\d+ out=\d+.*)$"
)
_MAIL_LOG_RE = re.compile(
    r"imap\((?P<user>[^)]*)\)<(?P<pid>\d+)><(?P<session>[^>]*)>: (?:Info: )?"
    r"(?P<event>delete|undelete|expunge|copy|mailbox_delete|mailbox_rename|mailbox_create|"
    r"flag_change|save|append): (?P<fields>.*)$"
)
_KV_RE = re.compile(r"(\w+)=(\S*)")


@dataclass
class Dovecot:
    """A running Dovecot; see the module docstring. `users` maps login name to password."""

    root: Path
    host: str = "127.0.0.1"
    port: int = 0
    tls_port: int = 0
    cafile: Path = Path()
    users: dict[str, str] = field(default_factory=dict)
    log_path: Path = Path()
    rawlog_root: Path = Path()
    uid: int = 0
    gid: int = 0
    proc: subprocess.Popen[bytes] | None = None
    _counter: int = 0
    _passwd_mtime: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- lifecycle ----------------------------------------------------------------------
    @classmethod
    def start(cls, users: dict[str, str] | None = None) -> Dovecot:
        if not os.path.exists(DOVECOT):
            raise ServerUnavailable(f"dovecot binary not found ({DOVECOT})")
        root = make_server_dir("msdc")
        uid, gid = mail_uid_gid()
        self = cls(root=root, uid=uid, gid=gid)
        self.users = dict(users or DEFAULT_USERS)
        self.port = free_port()
        self.tls_port = free_port()
        while self.tls_port == self.port:
            self.tls_port = free_port()
        tls = root / "tls"
        tls.mkdir()
        tls.chmod(0o755)
        self.cafile, cert, key = make_tls_material(tls)
        for sub in ("run", "mail", "home", "rawlog", "state"):
            (root / sub).mkdir()
        for sub in ("mail", "home", "rawlog"):
            os.chown(root / sub, uid, gid)
        self.log_path = root / "dovecot.log"
        self.rawlog_root = root / "rawlog"
        for user in self.users:
            self._make_rawlog_dir(user)
        self._write_passwd()
        conf = root / "dovecot.conf"
        conf.write_text(self._config(cert, key))
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=open(root / "dovecot.stderr", "wb"),  # noqa: SIM115 - lives with the process
        )
        try:
            _wait_for(lambda: _tcp_open(self.port) and _tcp_open(self.tls_port), 20,
                      "dovecot", self.proc)  # fmt: skip
        except ServerUnavailable as exc:
            err = (root / "dovecot.stderr").read_text(errors="replace")[-2000:]
            log = "\n".join(self.log_lines()[-20:])
            self.stop()
            raise ServerUnavailable(f"{exc}: {err} {log}") from exc
        return self

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _write_passwd(self) -> None:
        path = self.root / "passwd"
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in self.users.items()))
        tmp.chmod(0o644)
        tmp.replace(path)

    def add_user(self, name: str, password: str) -> None:
        """Add a login; Dovecot re-reads the passwd-file when its mtime changes."""
        self.users[name] = password
        self._make_rawlog_dir(name)
        self._write_passwd()
        # passwd-file reload is mtime based with 1 s resolution: every change must move the
        # mtime forward by whole seconds, even when two users are added within one second.
        st = (self.root / "passwd").stat()
        self._passwd_mtime = max(int(st.st_mtime) + 2, self._passwd_mtime + 2)
        os.utime(self.root / "passwd", (st.st_atime, self._passwd_mtime))

    def _make_rawlog_dir(self, user: str) -> None:
        """Dovecot writes rawlogs only into a directory that already exists."""
        path = self.rawlog_root / user
        path.mkdir(exist_ok=True)
        os.chown(path, self.uid, self.gid)

    def _config(self, cert: Path, key: Path) -> str:
        r = self.root
        mailboxes = "\n".join(
            f'  mailbox "{name}" {{\n    special_use = {flag}\n    auto = no\n  }}'
            for name, flag in SPECIAL_USE.items()
        )
        return f"""\
protocols = imap
listen = 127.0.0.1
base_dir = {r}/run
state_dir = {r}/state
instance_name = mailstats-test-{r.name}
log_path = {self.log_path}
info_log_path = {self.log_path}
debug_log_path = {self.log_path}
log_timestamp = "%Y-%m-%d %H:%M:%S "
first_valid_uid = 1
first_valid_gid = 1
default_internal_user = {pwd.getpwuid(self.uid).pw_name}
default_internal_group = {grp.getgrgid(self.gid).gr_name}
default_login_user = {pwd.getpwuid(self.uid).pw_name}
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {r}/passwd
}}
userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home={r}/home/%u
}}
mail_location = maildir:{r}/mail/%u
mail_plugins = $mail_plugins notify mail_log
namespace inbox {{
  inbox = yes
  separator = /
{mailboxes}
}}
imap_logout_format = {LOGOUT_FORMAT}
rawlog_dir = {self.rawlog_root}/%u
plugin {{
  mail_log_events = {MAIL_LOG_EVENTS}
  mail_log_fields = uid box msgid size flags
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
    ssl = yes
  }}
  process_min_avail = 0
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""

    # -- mail store ---------------------------------------------------------------------
    def maildir_for(self, user: str) -> Path:
        return self.root / "mail" / user

    def _folder_dir(self, user: str, folder: str) -> Path:
        base = self.maildir_for(user)
        if folder.upper() == "INBOX":
            return base
        return base / ("." + folder.replace("/", "."))

    def _ensure_dir(self, path: Path) -> None:
        if not path.exists():
            path.mkdir(parents=True)
        os.chown(path, self.uid, self.gid)

    def ensure_folder(self, user: str, folder: str, subscribe: bool = True) -> Path:
        """Create a Maildir++ folder (and its parents) the way Dovecot itself would."""
        base = self.maildir_for(user)
        self._ensure_dir(base)
        for sub in ("cur", "new", "tmp"):
            self._ensure_dir(base / sub)
        parts = [] if folder.upper() == "INBOX" else folder.split("/")
        for i in range(1, len(parts) + 1):
            d = self._folder_dir(user, "/".join(parts[:i]))
            self._ensure_dir(d)
            for sub in ("cur", "new", "tmp"):
                self._ensure_dir(d / sub)
            marker = d / "maildirfolder"
            if not marker.exists():
                marker.touch()
                os.chown(marker, self.uid, self.gid)
        if subscribe and parts:
            subs = base / "subscriptions"
            # Dovecot stores Maildir++ subscriptions with the storage separator "."
            entry = folder.replace("/", ".")
            current = subs.read_text().split("\n") if subs.exists() else []
            if entry not in current:
                current = [s for s in current if s] + [entry]
                subs.write_text("".join(s + "\n" for s in current))
                os.chown(subs, self.uid, self.gid)
        return self._folder_dir(user, folder)

    def deliver(
        self, user: str, folder: str, messages: Iterable[bytes], flags: str = "S"
    ) -> list[str]:
        """Write messages straight into the folder's cur/ (fast: 100k in seconds).

        Returns the file names. `flags` are Maildir info flags (S seen, F flagged, R replied).
        Names carry ,S=<size> as Dovecot's own deliveries do, so it need not stat for sizes.
        """
        d = self.ensure_folder(user, folder)
        cur = d / "cur"
        host = socket.gethostname().replace("/", "_").replace(":", "_")
        names: list[str] = []
        now = int(time.time())
        flags = "".join(sorted(set(flags)))
        pid = os.getpid()
        with self._lock:
            for raw in messages:
                self._counter += 1
                name = f"{now}.M{self._counter}P{pid}.{host},S={len(raw)}:2,{flags}"
                path = cur / name
                with open(path, "wb") as fh:
                    fh.write(raw)
                os.chown(path, self.uid, self.gid)
                names.append(name)
        return names

    def flags_snapshot(self, user: str) -> dict[str, list[tuple[str, str]]]:
        """Every message file as (base name, flags) per folder, sorted; new/ shows as 'new'.

        Dovecot renames a file when its flags change (and moves new/ to cur/ when it first
        sees it), so equal snapshots before and after a run mean no flag, move or expunge.
        """
        base = self.maildir_for(user)
        out: dict[str, list[tuple[str, str]]] = {}
        if not base.exists():
            return out
        dirs = [("INBOX", base)] + [
            (p.name[1:].replace(".", "/"), p)
            for p in sorted(base.iterdir())
            if p.is_dir() and p.name.startswith(".") and p.name not in (".", "..")
        ]
        for folder, d in dirs:
            items: list[tuple[str, str]] = []
            for sub in ("cur", "new"):
                if not (d / sub).is_dir():
                    continue
                for f in (d / sub).iterdir():
                    name, _, info = f.name.partition(":2,")
                    items.append((name.split(",")[0], info if sub == "cur" else "new"))
            out[folder] = sorted(items)
        return out

    # -- logs ---------------------------------------------------------------------------
    def log_lines(self) -> list[str]:
        if not self.log_path.exists():
            return []
        return self.log_path.read_text(errors="replace").splitlines()

    def session_counters(self, user: str | None = None) -> list[dict[str, Any]]:
        """One dict per finished IMAP session, in log order.

        Keys: user, session, reason ('Logged out', 'Disconnected' ...), and the integer
        counters in, out, deleted, expunged, trashed, hdr_count, hdr_bytes, body_count,
        body_bytes. A session appears only once the connection has closed.
        """
        out: list[dict[str, Any]] = []
        for line in self.log_lines():
            m = _LOGOUT_RE.search(line)
            if not m or (user is not None and m["user"] != user):
                continue
            rec: dict[str, Any] = {
                "user": m["user"],
                "session": m["session"],
                "reason": m["reason"].removeprefix("Disconnected: ").strip(),
            }
            for k, v in _KV_RE.findall(m["counters"]):
                rec[k] = int(v) if v.isdigit() else v
            out.append(rec)
        return out

    def mail_log_events(self, user: str | None = None) -> list[dict[str, str]]:
        """Changes the mail_log plugin recorded: event (save, copy, expunge, flag_change,
        delete, ...), user, session and its fields. Empty means the mailbox was not changed.
        """
        out: list[dict[str, str]] = []
        for line in self.log_lines():
            m = _MAIL_LOG_RE.search(line)
            if not m or (user is not None and m["user"] != user):
                continue
            rec = {"user": m["user"], "session": m["session"], "event": m["event"]}
            rec["fields"] = m["fields"]
            out.append(rec)
        return out

    def wait_sessions(self, count: int, user: str | None = None, timeout: float = 5.0) -> None:
        """Logout lines are written asynchronously by the log process: wait for them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.session_counters(user)) >= count:
                return
            time.sleep(0.05)

    def rawlog_dir(self, user: str) -> Path:
        """Per-session *.in / *.out protocol transcripts (Dovecot rawlog_dir)."""
        return self.rawlog_root / user


# ----------------------------------------------------------------------------------------
# DNS
# ----------------------------------------------------------------------------------------
class _UdpStub:
    """A loopback UDP server that either never answers or answers SERVFAIL to everything."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self.received = 0
        self.thread = threading.Thread(target=self._run, name=f"dns-{mode}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import dns.message
        import dns.rcode

        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            self.received += 1
            if self.mode != "servfail":
                continue
            try:
                q = dns.message.from_wire(data)
                r = dns.message.make_response(q)
                r.set_rcode(dns.rcode.SERVFAIL)
                self.sock.sendto(r.to_wire(), addr)
            except Exception:  # noqa: BLE001 - junk packets are ignored
                continue

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


@dataclass
class Dns:
    """A running dnsmasq authoritative for the fixture records; NXDOMAIN for anything else."""

    root: Path
    records: DnsRecords
    host: str = "127.0.0.1"
    port: int = 0
    log_path: Path = Path()
    proc: subprocess.Popen[bytes] | None = None
    _timeout_stub: _UdpStub | None = None
    _servfail_stub: _UdpStub | None = None
    local_ttl: int = 300

    @property
    def server_spec(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def start(cls, records: DnsRecords | None = None, local_ttl: int = 300) -> Dns:
        if not os.path.exists(DNSMASQ):
            raise ServerUnavailable(f"dnsmasq binary not found ({DNSMASQ})")
        root = make_server_dir("msdns")
        self = cls(root=root, records=records or DnsRecords())
        self.local_ttl = local_ttl  # dnsmasq's own default is 0; real zones use 0-60 s too
        self.log_path = root / "dnsmasq.log"
        self._timeout_stub = _UdpStub("timeout")
        self._servfail_stub = _UdpStub("servfail")
        self.port = free_port((socket.SOCK_DGRAM, socket.SOCK_STREAM))
        self._launch()
        return self

    def _launch(self) -> None:
        assert self._timeout_stub and self._servfail_stub
        conf = self.root / "dnsmasq.conf"
        opts = [
            "local=/#/",  # everything not listed: NXDOMAIN, never forwarded, never REFUSED
            f"local-ttl={self.local_ttl}",
            "neg-ttl=60",
            *self.records.dnsmasq_options(self._timeout_stub.port, self._servfail_stub.port),
        ]
        conf.write_text("".join(o + "\n" for o in opts))
        conf.chmod(0o644)
        self.log_path.touch()
        self.log_path.chmod(0o666)
        user = [] if os.geteuid() != 0 else ["--user=root"]
        self.proc = subprocess.Popen(
            [
                DNSMASQ, "--keep-in-foreground", "--no-resolv", "--no-hosts", "-C", str(conf),
                f"--port={self.port}", "--listen-address=127.0.0.1", "--bind-interfaces",
                "--log-queries", f"--log-facility={self.log_path}", "--pid-file=",
                "--cache-size=0", *user,
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "dnsmasq.stderr", "ab"),  # noqa: SIM115
        )  # fmt: skip
        try:
            _wait_for(lambda: _tcp_open(self.port), 10, "dnsmasq", self.proc)
        except ServerUnavailable as exc:
            err = (self.root / "dnsmasq.stderr").read_text(errors="replace")[-2000:]
            self.stop()
            raise ServerUnavailable(f"{exc}: {err}") from exc

    def add_records(self, records: DnsRecords) -> None:
        """Add records and restart dnsmasq on the same port (it cannot reload its options)."""
        self.records.extend(records)
        _stop(self.proc)
        self.proc = None
        self._launch()

    def query_log(self) -> list[tuple[str, str]]:
        """(type, name) of every query dnsmasq received, in order, e.g. ('PTR', '...arpa')."""
        out: list[tuple[str, str]] = []
        if not self.log_path.exists():
            return out
        for line in self.log_path.read_text(errors="replace").splitlines():
            m = re.search(r"query\[(\w+)\] (\S+) from", line)
            if m:
                out.append((m[1], m[2]))
        return out

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        for stub in (self._timeout_stub, self._servfail_stub):
            if stub is not None:
                stub.close()
        shutil.rmtree(self.root, ignore_errors=True)
