"""Secrets and untrusted text: a planted password never shows up anywhere mailstats writes.

The password is distinctive (no accidental match) and planted the way users do: through
`password_env`. Then every artefact is searched for it, as text and as bytes: the CSVs and
manifest, the SQLite cache (with its WAL), DEBUG-level logs of the run (imapclient's own
included), the messages and tracebacks of a wrong-password run, and /proc/<pid>/cmdline of a
running batch. Files mailstats writes for itself are 0600 even under a permissive umask.
TLS is checked by default; turning it off works only with a warning, and so should plain
IMAP to a host that is not loopback. Header text is escaped in CSV cells and the report.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import ssl
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import pytest
from test_e2e_imap import wait_login

from mailstats.accounts.config import Account, dump_config, load_config
from mailstats.cli import run_batch
from mailstats.sources import AuthError
from mailstats.sources.imap import ImapSource, tls_context
from mailstats.stats.export import safe_cell

ROOT = Path(__file__).resolve().parents[1]
SECRET = "Pl4nted-s3cret-Qx7!zz"
SECRET_BYTES = SECRET.encode()
ENV = "MAILSTATS_TEST_SECRET_PW"


def _config(tmp_path: Path, dovecot: Any, dns: Any, user: str, **acct: Any) -> Path:
    settings = {
        "dns_servers": [dns.server_spec],
        "modules": ["received", "internal", "dkim", "personal"],
        "cache": str(tmp_path / "cache.sqlite"),
        "dns_timeout": 1.0,
    }
    account = {
        "name": "dana",
        "host": "127.0.0.1",
        "port": dovecot.port,
        "security": "none",
        "username": user,
        "password_env": ENV,
        "full_name": "Dana Whitfield",
        "ham": ["INBOX"],
        "spam": ["Junk"],
        "sent": ["Sent"],
    }
    account.update(acct)
    lines = ["[settings]"] + [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    lines += ["", "[[accounts]]"] + [f"{k} = {json.dumps(v)}" for k, v in account.items()]
    path = tmp_path / "accounts.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def secret_user(dovecot: Any, generated_mailbox: Any) -> str:
    user = "secret@example.org"
    if user not in dovecot.users:
        dovecot.add_user(user, SECRET)
        wait_login(dovecot, user)
        for folder, msgs in generated_mailbox.folders.items():
            dovecot.deliver(user, folder, [m.raw for m in msgs])
    return user


def _files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()]


def _assert_clean(where: str, data: bytes | str) -> None:
    blob = data.encode("utf-8", "replace") if isinstance(data, str) else data
    assert SECRET_BYTES not in blob, f"password found in {where}"


@pytest.mark.servers
def test_planted_password_is_nowhere(
    tmp_path: Path,
    dovecot: Any,
    dns: Any,
    secret_user: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV, SECRET)
    cfg = _config(tmp_path, dovecot, dns, secret_user)
    out = tmp_path / "out"
    caplog.set_level(logging.DEBUG)  # every logger, imapclient's protocol log included
    assert run_batch(str(cfg), str(out), quiet=False, report=False) == 0
    captured = capsys.readouterr()
    assert any(r.name.startswith("imapclient") for r in caplog.records), "no IMAP debug log"
    _assert_clean("DEBUG log", caplog.text)
    _assert_clean("log record args", repr([r.args for r in caplog.records]))
    _assert_clean("stdout", captured.out)
    _assert_clean("stderr", captured.err)
    outputs = _files_under(out)
    assert {"summary.csv", "messages.csv", "manifest.json"} <= {p.name for p in outputs}
    for p in outputs:
        _assert_clean(str(p), p.read_bytes())
    cache_files = [p for p in tmp_path.iterdir() if p.name.startswith("cache.sqlite")]
    assert cache_files
    for p in cache_files:
        _assert_clean(str(p), p.read_bytes())
    # the planted password was the one used: the run really logged in with it
    assert json.loads((out / "manifest.json").read_text())["accounts"][0]["status"] == "ok"


@pytest.mark.servers
def test_wrong_password_messages_and_tracebacks_are_clean(
    tmp_path: Path,
    dovecot: Any,
    dns: Any,
    secret_user: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrong = SECRET + "-WRONG"
    monkeypatch.setenv(ENV, wrong)
    cfg = _config(tmp_path, dovecot, dns, secret_user)
    caplog.set_level(logging.DEBUG)
    assert run_batch(str(cfg), str(tmp_path / "out"), quiet=True) == 1
    err = capsys.readouterr().err
    assert "wrong user name or password" in err
    for where, text in (
        ("stderr", err),
        ("log", caplog.text),
        ("manifest", (tmp_path / "out" / "manifest.json").read_text()),
    ):
        _assert_clean(where, text)  # SECRET is a prefix of the wrong password
    # the exception itself: message, repr, and the whole chained traceback
    acct = load_config(cfg).accounts[0]
    with pytest.raises(AuthError) as info:
        ImapSource(acct, wrong, timeout=30)  # Dovecot delays failed logins (auth penalty)
    exc = info.value
    chain = "".join(traceback.format_exception(exc, chain=True))
    context = exc.__context__
    while context is not None:  # `from None` hides the context; it is still reachable
        chain += repr(context) + repr(getattr(context, "args", ()))
        context = context.__context__
    for where, text in (("str", str(exc)), ("repr", repr(exc)), ("traceback", chain)):
        _assert_clean(f"exception {where}", text)
    _assert_clean("Account repr", repr(acct))


@pytest.mark.servers
def test_password_not_in_process_list(
    tmp_path: Path, dovecot: Any, dns: Any, secret_user: str
) -> None:
    cfg = _config(tmp_path, dovecot, dns, secret_user)
    env = dict(os.environ, **{ENV: SECRET})
    args = [sys.executable, "-m", "mailstats", "--batch", str(cfg), "--out", str(tmp_path / "o")]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    reads = 0
    try:
        while proc.poll() is None:
            try:
                cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
            except OSError:
                break
            if cmdline:
                reads += 1
                _assert_clean("/proc/<pid>/cmdline", cmdline)
            time.sleep(0.02)
    finally:
        rc = proc.wait(timeout=120)
    assert rc == 0
    assert reads > 0


def test_files_mailstats_writes_are_private(tmp_path: Path) -> None:
    from mailstats.accounts.config import Config, Settings
    from mailstats.gui.store import write_private
    from mailstats.run.cache import Cache
    from mailstats.stats.anonymize import load_or_create_key

    old = os.umask(0o022)
    try:
        cache = Cache(tmp_path / "c.sqlite")
        row = ("x.example", "A", "ok", ("192.0.2.1",), time.time() + 60, "")
        cache.save_dns("servers:x", [row])
        cache.put_messages("a", "INBOX", [(1, b"From: a@b.example\r\n\r\n", None, 10)])
        written = [p for p in tmp_path.iterdir() if p.name.startswith("c.sqlite")]
        assert len(written) >= 2  # the database and its WAL exist now
        cfg = Config(Settings(), [Account(name="a", host="h", username="u", password=SECRET)])
        text = dump_config(cfg)
        _assert_clean("dump_config", text)
        write_private(tmp_path / "accounts.toml", text)
        load_or_create_key(tmp_path / "anonymize.key")
        written += [tmp_path / "accounts.toml", tmp_path / "anonymize.key"]
        modes = {p.name: oct(p.stat().st_mode & 0o777) for p in written}
        assert set(modes.values()) == {"0o600"}, modes
        cache.close()
    finally:
        os.umask(old)


# -- TLS and plain-text warnings ------------------------------------------------------------
def test_tls_is_verified_by_default() -> None:
    ctx = tls_context(Account(name="a", host="imap.example.org", username="u"))
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


@pytest.mark.servers
def test_tls_verify_false_works_only_with_a_warning(
    tmp_path: Path,
    dovecot: Any,
    dns: Any,
    secret_user: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV, SECRET)
    # the server certificate is not trusted without ca_file: verification must fail ...
    cfg = _config(tmp_path, dovecot, dns, secret_user, port=dovecot.tls_port, security="ssl")
    assert run_batch(str(cfg), str(tmp_path / "out1"), quiet=True) == 1
    assert not [r for r in caplog.records if "TLS certificate checks are OFF" in r.message]
    # ... and tls_verify = false makes it work, with a warning naming the account
    (tmp_path / "cache.sqlite").unlink()
    cfg = _config(
        tmp_path, dovecot, dns, secret_user, port=dovecot.tls_port, security="ssl", tls_verify=False
    )
    caplog.set_level(logging.WARNING)
    assert run_batch(str(cfg), str(tmp_path / "out2"), quiet=True) == 0
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING and "TLS" in r.message]
    assert warned and "dana" in warned[0].message


class _NoNetworkClient:
    """Stands in for ReadOnlyIMAPClient: records the connection, never opens a socket."""

    made: list[tuple[str, int, bool]] = []

    def __init__(self, host: str, port: int = 0, ssl: bool = False, **kw: Any) -> None:
        self.made.append((host, port, ssl))

    def login(self, user: str, password: str) -> None:
        pass

    def logout(self) -> None:
        pass

    def shutdown(self) -> None:
        pass


def _plain_warnings(host: str, caplog: pytest.LogCaptureFixture, monkeypatch: Any) -> list[str]:
    import mailstats.sources.imap as imap

    monkeypatch.setattr(imap, "ReadOnlyIMAPClient", _NoNetworkClient)
    caplog.clear()
    caplog.set_level(logging.WARNING)
    acct = Account(name="plain", host=host, port=143, security="none", username="u", ham=["I"])
    src = ImapSource(acct, SECRET, timeout=1)
    src.close()
    assert _NoNetworkClient.made[-1] == (host, 143, False)
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_plain_imap_to_loopback_does_not_warn(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _plain_warnings("127.0.0.1", caplog, monkeypatch) == []


def test_plain_imap_to_a_remote_host_warns(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    warnings = _plain_warnings("imap.example.org", caplog, monkeypatch)
    assert any("imap.example.org" in w for w in warnings), warnings
    assert all(SECRET not in w for w in warnings)


# -- untrusted text -------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["=1+1", "+danger@evil.example", "-2+3", "@SUM(A1)"])
def test_formula_cells_are_escaped(text: str) -> None:
    cell = safe_cell(text)
    assert cell == "'" + text


@pytest.mark.parametrize(("text", "cell"), [("\t=x", "\\x09=x"), ("\r=x", "\\x0d=x")])
def test_control_led_formula_cells_are_escaped(text: str, cell: str) -> None:
    """A leading tab or CR is a control character: written as \\xNN, no formula left."""
    assert safe_cell(text) == cell


@pytest.mark.parametrize("value", ["plain", "a=b", 0, -5, 1.5, True, None])
def test_ordinary_cells_are_unchanged(value: Any) -> None:
    assert safe_cell(value) == {True: "1", None: ""}.get(value, str(value))  # type: ignore[arg-type]


SCRIPT = "<script>alert('x')</script>"
IMG = "<img src=x onerror=alert(1)>"


def test_header_text_is_escaped_in_csv_and_report(tmp_path: Path) -> None:
    from fixtures.nasty import NastyMessage, nasty_messages, write_maildir

    picked = [m for m in nasty_messages() if m.name in ("formula-injection", "html-injection")]
    evil = NastyMessage("evil-from", f"From: {IMG} <x@evil.example>\r\n\r\n".encode())
    store = tmp_path / "md"
    write_maildir(store, [*picked, evil, picked[0]])
    (store / ".Junk").rename(store / f".{IMG}")
    cfg = tmp_path / "a.toml"
    cfg.write_text(
        "[settings]\n"
        'dns_servers = ["127.0.0.1:9"]\ndns_timeout = 0.2\nmodules = ["received", "internal"]\n'
        f"cache = {json.dumps(str(tmp_path / 'c.sqlite'))}\n\n[[accounts]]\n"
        f"name = {json.dumps(SCRIPT)}\npath = {json.dumps(str(store))}\n"
        f'ham = ["INBOX"]\nspam = [{json.dumps(IMG)}]\n'
    )
    out = tmp_path / "out"
    assert run_batch(str(cfg), str(out), quiet=True) == 0
    with (out / "messages.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    froms = {r["from_address"] for r in rows}
    assert "'+danger@evil.example" in froms  # escaped for spreadsheets
    ids = {r["message_id"] for r in rows}
    assert any(i.startswith("'=") for i in ids), ids
    assert all(not str(v).startswith(("=", "+", "-", "@")) for r in rows for v in r.values())
    assert {r["folder"] for r in rows} == {"INBOX", IMG}

    from mailstats.stats.report import write_report

    html = write_report(out, fit=False).read_text()
    assert SCRIPT not in html and IMG not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
