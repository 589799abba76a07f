"""`mailstats --batch` against a hostile IMAP server (tests/hostile_imap.py), one mode a case.

Each case runs the real command in a child process next to a local mbox account, and checks
what a user would: the exit code, the account's status and message, the exact per-folder
counts in manifest.json, summary.csv and messages.csv, that the local account was written,
that no traceback and no password reached any output, the child's peak memory (VmHWM,
read by the child itself as it exits) and a wall time bounded by the configured timeouts.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cli_child import PEAK_CHILD
from hostile_imap import PASSWORD, USER, HostileImap, hostile

from fixtures.generator import generate_mailbox

ROOT = Path(__file__).resolve().parents[1]
#: every hostile case must stay under this (the brief: 300 MB)
PEAK_MB = 300
IDLE_S = 1.0  # settings.imap_timeout in these runs
COMMAND_S = 3.0  # settings.imap_command_timeout
RETRIES, BACKOFF_S = 3, (1.0, 2.0)  # ImapSource's tries and the waits between them
#: python start-up, the local account and slack on a busy 2-core machine
OVERHEAD_S = 25.0
LOCAL = {"INBOX": 30, "Junk": 20}
#: What every form of the planted password has in common (raw, quoted, repr'd).
SECRET_MARK = b"S3cr3t"
#: Peak memory per mode, for docs/reliability.md (`pytest -s` prints them).
MEASURED: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def _print_measured() -> Any:
    yield
    for mode, line in MEASURED.items():
        print(f"\nhostile {mode}: {line}")


@pytest.fixture(scope="module")
def local_mbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    box = generate_mailbox(11, LOCAL["INBOX"], LOCAL["Junk"], 0, False)
    return box.write_mbox(tmp_path_factory.mktemp("local") / "mail")


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    peak_mb: float
    wall_s: float
    out: Path

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.out / "manifest.json").read_text())

    def account(self, name: str) -> dict[str, Any]:
        return next(a for a in self.manifest["accounts"] if a["name"] == name)

    def folders(self, name: str) -> dict[str, dict[str, Any]]:
        return {f["folder"]: f for f in self.account(name)["folders"]}

    def summary(self, name: str) -> list[dict[str, str]]:
        with (self.out / "summary.csv").open(newline="") as fh:
            return [r for r in csv.DictReader(fh) if r["account"] == name]

    def message_uids(self, name: str) -> list[int]:
        with (self.out / "messages.csv").open(newline="") as fh:
            return [int(r["uid"]) for r in csv.DictReader(fh) if r["account"] == name]


def accounts_file(tmp: Path, port: int, local: Path, **settings: Any) -> Path:
    values = {
        "modules": ["received", "internal"],
        "cache": str(tmp / "cache.sqlite"),
        "dns_servers": ["127.0.0.1:9"],
        "dns_timeout": 0.2,
        "analysis_workers": 0,
        "imap_timeout": IDLE_S,
        "imap_command_timeout": COMMAND_S,
        **settings,
    }
    lines = ["[settings]"] + [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    lines += [
        "",
        "[[accounts]]",
        'name = "local"',
        f"path = {json.dumps(str(local))}",
        'ham = ["INBOX"]',
        'spam = ["Junk"]',
        "",
        "[[accounts]]",
        'name = "hostile"',
        'host = "127.0.0.1"',
        f"port = {port}",
        'security = "none"',
        f'username = "{USER}"',
        'password_env = "HOSTILE_PASSWORD"',
        'ham = ["INBOX"]',
    ]
    path = tmp / "accounts.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_cli(cfg: Path, out: Path, *args: str, timeout: float = 300) -> Run:
    """`python -m mailstats --batch` in a child, and the child's own peak RSS."""
    env = {**os.environ, "HOSTILE_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT)}
    hwm = out.parent / "peak-kb"
    cmd = [sys.executable, "-c", PEAK_CHILD, str(hwm)]
    cmd += ["--batch", str(cfg), "--out", str(out), *args]
    started = time.monotonic()
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err: list[bytes] = []
    pipe = child.stderr
    assert pipe is not None and child.stdout is not None
    reader = threading.Thread(target=lambda: err.append(pipe.read()))
    reader.start()
    timer = threading.Timer(timeout, child.kill)  # a hang fails the test, never the suite
    timer.start()
    try:
        stdout = child.stdout.read()
        reader.join()
        child.wait()
    finally:
        timer.cancel()
    return Run(
        child.returncode,
        stdout.decode("utf-8", "replace"),
        err[0].decode("utf-8", "replace"),
        int(hwm.read_text()) / 1024,
        time.monotonic() - started,
        out,
    )


def hostile_run(
    tmp_path: Path, local: Path, mode: str, *args: str, server: dict | None = None, **settings: Any
) -> tuple[Run, HostileImap]:
    with hostile(mode, **(server or {})) as srv:
        cfg = accounts_file(tmp_path, srv.port, local, **settings)
        run = run_cli(cfg, tmp_path / "out", *args)
    MEASURED[mode] = f"exit {run.rc}, peak {run.peak_mb:.0f} MB, {run.wall_s:.1f} s"
    return run, srv


def assert_sane(run: Run, *, peak_mb: float = PEAK_MB, wall_s: float | None = None) -> None:
    """What holds in every case: no traceback, no secret, the local account complete."""
    assert "Traceback" not in run.stderr and "--- Logging error ---" not in run.stderr
    for text in (run.stdout, run.stderr, (run.out / "manifest.json").read_text()):
        assert SECRET_MARK.decode() not in text
    for name in ("summary.csv", "messages.csv"):
        assert SECRET_MARK not in (run.out / name).read_bytes()
    local = run.account("local")
    assert local["status"] == "ok"
    assert {f: v["total"] for f, v in run.folders("local").items()} == LOCAL
    assert run.peak_mb < peak_mb, f"peak {run.peak_mb:.0f} MB"
    if wall_s is not None:
        assert run.wall_s < wall_s, f"{run.wall_s:.1f} s"


def retry_bound(per_try_s: float) -> float:
    """The longest a failing command may take: every try, the waits between, start-up."""
    return RETRIES * per_try_s + sum(BACKOFF_S) + OVERHEAD_S


# -- 1. count what the server listed ------------------------------------------------------
@pytest.mark.parametrize("mode", ["omit", "garble"])
def test_uids_fetch_never_returns_are_unavailable_and_partial(
    tmp_path: Path, local_mbox: Path, mode: str
) -> None:
    run, srv = hostile_run(tmp_path, local_mbox, mode, "-q")
    assert_sane(run, wall_s=retry_bound(COMMAND_S))
    assert run.rc == 1
    acct = run.account("hostile")
    assert acct["status"] == "partial"
    assert acct["error"] == "messages the server listed could not be fetched: 5 of 20 in INBOX"
    inbox = run.folders("hostile")["INBOX"]
    assert (inbox["total"], inbox["unavailable"], inbox["processed"]) == (20, 5, 15)
    assert run.manifest["counts"]["unavailable"] == 5
    assert {int(r["total"]) for r in run.summary("hostile")} == {20}
    assert {int(r["unavailable"]) for r in run.summary("hostile")} == {5}
    assert list(run.summary("hostile")[0])[-1] == "unavailable"  # a new LAST column
    assert sorted(run.message_uids("hostile")) == sorted(set(range(1, 21)) - srv.bad)
    assert "account 'hostile' partial: messages the server listed" in run.stderr
    fetch = run.manifest["fetch"]
    assert fetch["refetched"] == 5 and fetch["unavailable"] == 5
    # each missing UID asked once more alone, then one SEARCH to tell expunged from kept back
    assert srv.stats.commands.count("UID FETCH") == 1 + 5
    assert srv.stats.commands.count("UID SEARCH") == 2


def test_uids_missing_from_a_batch_only_are_fetched_alone(
    tmp_path: Path, local_mbox: Path
) -> None:
    run, srv = hostile_run(tmp_path, local_mbox, "omit_batch", "-q")
    assert_sane(run)
    assert run.rc == 0 and run.account("hostile")["status"] == "ok"
    inbox = run.folders("hostile")["INBOX"]
    assert (inbox["total"], inbox["unavailable"], inbox["processed"]) == (20, 0, 20)
    assert sorted(run.message_uids("hostile")) == list(range(1, 21))
    assert run.manifest["fetch"]["refetched"] == 5


@pytest.mark.parametrize(
    ("mode", "counter"), [("duplicate", "repeated"), ("unrequested", "unrequested")]
)
def test_repeated_and_unasked_answers_are_dropped_and_counted(
    tmp_path: Path, local_mbox: Path, mode: str, counter: str
) -> None:
    run, _srv = hostile_run(tmp_path, local_mbox, mode, "-q")
    assert_sane(run)
    assert run.rc == 0
    inbox = run.folders("hostile")["INBOX"]
    assert (inbox["total"], inbox["unavailable"], inbox["processed"]) == (20, 0, 20)
    uids = run.message_uids("hostile")
    assert sorted(uids) == list(range(1, 21))  # once each, none of the extra UIDs
    assert run.manifest["fetch"][counter] == 20


def test_printed_table_shows_unavailable(tmp_path: Path, local_mbox: Path) -> None:
    run, _srv = hostile_run(tmp_path, local_mbox, "omit")
    assert run.rc == 1
    assert "INBOX (ham): 20 messages, 5 unavailable (listed, not fetched)" in run.stdout
    assert "[partial: messages the server listed could not be fetched" in run.stdout


# -- 2. one account's bad value never takes the batch down ---------------------------------
BAD_VALUES = {
    "uidvalidity_abc": "opening INBOX: the server sent a response mailstats cannot read",
    "uidvalidity_huge": "the server sent UIDVALIDITY for INBOX: 9223372036854775808, outside "
    "1 to 4294967295 (RFC 3501: 32 bits)",
    "uid_huge": "the server sent a UID in INBOX: 9223372036854775808, outside 1 to 4294967295",
}


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("mode", sorted(BAD_VALUES))
def test_bad_numbers_fail_that_account_only(
    tmp_path: Path, local_mbox: Path, mode: str, jobs: int
) -> None:
    run, _srv = hostile_run(tmp_path, local_mbox, mode, "-q", "--jobs", str(jobs))
    assert_sane(run, wall_s=OVERHEAD_S)
    assert run.rc == 1
    acct = run.account("hostile")
    assert acct["status"] == "failed" and BAD_VALUES[mode] in acct["error"]
    assert f"account 'hostile' failed: {BAD_VALUES[mode]}" in run.stderr
    assert run.summary("local") and not run.summary("hostile")


def test_deep_nesting_keeps_the_message_with_structure_unknown(
    tmp_path: Path, local_mbox: Path
) -> None:
    run, _srv = hostile_run(tmp_path, local_mbox, "nested", "-q")
    assert_sane(run)
    assert run.rc == 0
    inbox = run.folders("hostile")["INBOX"]
    assert (inbox["total"], inbox["unavailable"]) == (20, 0)
    assert sorted(run.message_uids("hostile")) == list(range(1, 21))


def test_deep_nesting_in_a_folder_list_is_one_clear_line(tmp_path: Path, local_mbox: Path) -> None:
    """imapclient's own parser recurses (LIST, STATUS): its RecursionError is a bad answer."""
    with hostile("nested_list") as srv:
        cfg = accounts_file(tmp_path, srv.port, local_mbox)
        env = {**os.environ, "HOSTILE_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "mailstats", "folders", str(cfg), "hostile"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr == (
        "mailstats: listing folders: the server sent a response mailstats cannot read "
        "(RecursionError: maximum recursion depth exceeded)\n"
    )
    assert done.stdout == ""


def test_bad_value_on_a_dask_cluster_fails_that_account_only(
    tmp_path: Path, local_mbox: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    from mailstats.cli import run_batch

    with (
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=False,  # in-process (inproc://): nothing listens on the network
            dashboard_address=None,
            silence_logs=40,
        ) as lc,
        hostile("uidvalidity_huge") as srv,
    ):
        os.environ["HOSTILE_PASSWORD"] = PASSWORD
        try:
            cfg = accounts_file(tmp_path, srv.port, local_mbox)
            out = str(tmp_path / "out")
            rc = run_batch(str(cfg), out, quiet=True, scheduler=lc.scheduler_address)
        finally:
            os.environ.pop("HOSTILE_PASSWORD", None)
    run = Run(rc, "", "", 0.0, 0.0, tmp_path / "out")
    assert rc == 1
    assert run.account("hostile")["status"] == "failed"
    assert BAD_VALUES["uidvalidity_huge"] in run.account("hostile")["error"]
    assert {f: v["total"] for f, v in run.folders("local").items()} == LOCAL


def test_unexpected_exception_fails_that_account_only_named_and_redacted(
    tmp_path: Path, local_mbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any exception nobody expected, in one account: that account fails, the batch goes on."""
    from mailstats.accounts.config import load_config
    from mailstats.run.engine import Engine
    from mailstats.sources import open_source

    def factory(acct: Any, password: str) -> Any:
        if acct.is_local:
            return open_source(acct, password)
        raise KeyError(f"boom with {password}")

    monkeypatch.setenv("HOSTILE_PASSWORD", PASSWORD)
    cfg = load_config(accounts_file(tmp_path, 9, local_mbox))
    result = Engine(cfg, source_factory=factory).run()
    status = {a.name: (a.status, a.error) for a in result.accounts}
    assert status["local"] == ("ok", "")
    assert status["hostile"][0] == "failed"
    assert status["hostile"][1].startswith("unexpected error: KeyError: 'boom with ***'")
    assert SECRET_MARK.decode() not in status["hostile"][1]


# -- 3. deadlines ---------------------------------------------------------------------------
def test_greeting_one_byte_a_second_hits_the_command_deadline(
    tmp_path: Path, local_mbox: Path
) -> None:
    run, _srv = hostile_run(tmp_path, local_mbox, "drip_greeting", "-q", server={"drip_s": 0.5})
    assert_sane(run, wall_s=COMMAND_S + OVERHEAD_S)
    assert run.rc == 1
    err = run.account("hostile")["error"]
    assert err.startswith("timed out talking to 127.0.0.1:")
    assert err.endswith("no complete answer to the greeting within 3 s (imap_command_timeout)")


def test_silent_server_hits_the_inactivity_timeout(tmp_path: Path, local_mbox: Path) -> None:
    run, _srv = hostile_run(tmp_path, local_mbox, "drip_greeting", "-q", server={"drip_s": 10})
    assert_sane(run, wall_s=IDLE_S + OVERHEAD_S)
    assert run.rc == 1
    err = run.account("hostile")["error"]
    assert err.endswith("the server sent nothing for 1 s (imap_timeout)")


def test_fetch_one_byte_at_a_time_fails_after_bounded_tries(
    tmp_path: Path, local_mbox: Path
) -> None:
    run, srv = hostile_run(tmp_path, local_mbox, "drip_fetch", "-q", server={"drip_s": 0.2})
    assert_sane(run, wall_s=retry_bound(COMMAND_S))
    assert run.rc == 1
    err = run.account("hostile")["error"]
    assert err.startswith("fetching headers from INBOX failed after 3 tries: timed out")
    assert err.endswith("no complete answer to UID FETCH within 3 s (imap_command_timeout)")
    assert srv.stats.connections == RETRIES
    assert run.wall_s > RETRIES * COMMAND_S  # each try really waited for its deadline


def test_endless_untagged_responses_are_bounded_in_memory_and_time(
    tmp_path: Path, local_mbox: Path
) -> None:
    # a long deadline: the byte bound has to stop it, not the clock
    run, srv = hostile_run(tmp_path, local_mbox, "flood", "-q", imap_command_timeout=120)
    assert_sane(run, peak_mb=150, wall_s=60)
    assert run.rc == 1
    err = run.account("hostile")["error"]
    assert err == "opening INBOX failed: the server sent more than 32 MiB in answer to EXAMINE"
    assert srv.stats.connections == 1  # a flood is not asked for again


# -- 4. bounded memory for huge literals -----------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "messages", "cut"),
    [("literal_50mb", 20, 1), ("literal_200mb", 20, 1), ("literals_2mb", 400, 400)],
)
def test_huge_literals_are_cut_at_the_cap_in_bounded_memory(
    tmp_path: Path, local_mbox: Path, mode: str, messages: int, cut: int
) -> None:
    run, _srv = hostile_run(
        tmp_path, local_mbox, mode, "-q", server={"messages": messages}, imap_command_timeout=60
    )
    assert_sane(run)
    assert run.rc == 0
    inbox = run.folders("hostile")["INBOX"]
    assert (inbox["total"], inbox["unavailable"], inbox["processed"]) == (messages, 0, messages)
    assert len(run.message_uids("hostile")) == messages
    assert run.manifest["fetch"]["header_truncated"] == cut
    assert any("were cut there" in w for w in run.manifest["warnings"])
    # what was cut is not in the cache either: at most the cap per message
    assert (tmp_path / "cache.sqlite").stat().st_size < 64 * 1024 * 1024


# -- 5. secrets in server text, -v logging ----------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("echo_throttle", "127.0.0.1 is throttling sign-ins: "),
        ("echo_no", 'opening INBOX failed: select failed: Mailbox in use by tester "***"'),
        ("echo_bye", "fetching headers from INBOX failed after 3 tries: server closed the"),
    ],
)
def test_password_echoed_by_the_server_is_redacted_everywhere(
    tmp_path: Path, local_mbox: Path, mode: str, message: str
) -> None:
    run, _srv = hostile_run(tmp_path, local_mbox, mode, "-v")
    assert_sane(run, wall_s=retry_bound(COMMAND_S))
    assert run.rc == 1
    err = run.account("hostile")["error"]
    assert err.startswith(message) and "***" in err
    assert "DEBUG imapclient" in run.stderr  # the protocol log was on, and is clean
    assert SECRET_MARK not in (tmp_path / "cache.sqlite").read_bytes()


def test_connection_cut_mid_literal_with_verbose_logging(tmp_path: Path, local_mbox: Path) -> None:
    run, srv = hostile_run(tmp_path, local_mbox, "cut_literal", "-v")
    assert_sane(run)
    assert run.rc == 0
    assert "the server closed the connection in the middle of a literal" in run.stderr
    inbox = run.folders("hostile")["INBOX"]
    assert (inbox["total"], inbox["unavailable"]) == (20, 0)
    assert run.manifest["fetch"]["reconnects"] == 1 and srv.stats.connections == 2
