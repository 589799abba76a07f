"""Many accounts at once: --jobs and a real Dask LocalCluster give the sequential outputs."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from test_e2e_imap import accounts_file, new_user

from fixtures.generator import generate_mailbox
from mailstats.cli import run_batch

pytestmark = pytest.mark.servers

COMPARED = ("summary.csv", "messages.csv", "indicators.csv", "mailboxes.csv")


@pytest.fixture(scope="module")
def four_accounts(tmp_path_factory, dovecot, dns) -> Path:
    """An accounts file with four Dovecot accounts holding four different mailboxes."""
    base = tmp_path_factory.mktemp("parallel")
    blocks = []
    settings = ""
    for i in range(4):
        mailbox = generate_mailbox(100 + i, 40 + 10 * i, 30, 10, False)
        user = new_user(dovecot, mailbox)
        text = accounts_file(base, dovecot, dns, user, mailbox, modules=("received", "internal",
                             "datetime", "list")).read_text()  # fmt: skip
        head, account = text.split("[[accounts]]")
        settings = head
        blocks.append("[[accounts]]" + account.replace('name = "dana"', f'name = "acct{i}"'))
    path = base / "accounts.toml"
    path.write_text(settings + "".join(blocks))
    return path


def outputs(out: Path) -> dict[str, str]:
    return {name: (out / name).read_text() for name in COMPARED}


def run(cfg: Path, out: Path, cache: Path, **kw) -> dict[str, str]:
    assert run_batch(str(cfg), str(out), cache=str(cache), quiet=True, **kw) == 0
    return outputs(out)


def test_jobs_equal_sequential(four_accounts: Path, tmp_path: Path) -> None:
    seq = run(four_accounts, tmp_path / "seq", tmp_path / "seq.sqlite")
    par = run(four_accounts, tmp_path / "par", tmp_path / "par.sqlite", jobs=4)
    assert par == seq
    assert seq["summary.csv"].count("\nacct3,") > 0  # every account is in it
    # and a re-run of the parallel cache fetches nothing new, with the same outputs
    again = run(four_accounts, tmp_path / "par2", tmp_path / "par.sqlite", jobs=4)
    assert again == seq


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    distributed = pytest.importorskip("distributed")
    # Workers keep their own cache file in their user cache dir: point it into tmp.
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("worker-cache"))
    try:
        yield from _cluster(distributed)
    finally:
        if old is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = old


def _cluster(distributed):
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
            silence_logs=40,
        ) as lc,
        distributed.Client(lc) as client,
    ):
        yield lc, client


def test_dask_cluster_equals_sequential(four_accounts: Path, tmp_path: Path, cluster) -> None:
    lc, _client = cluster
    seq = run(four_accounts, tmp_path / "seq", tmp_path / "seq.sqlite")
    # No cache setting on the workers' side: each keeps its own file in its cache dir.
    text = four_accounts.read_text()
    cfg = tmp_path / "cluster.toml"
    cfg.write_text("\n".join(line for line in text.splitlines() if not line.startswith("cache =")))
    out = tmp_path / "dask"
    assert run_batch(str(cfg), str(out), quiet=True, scheduler=lc.scheduler_address) == 0
    assert outputs(out) == seq


def test_killed_worker_is_retried(four_accounts: Path, tmp_path: Path, cluster) -> None:
    lc, client = cluster
    seq = run(four_accounts, tmp_path / "seq", tmp_path / "seq.sqlite")
    text = four_accounts.read_text()
    cfg = tmp_path / "cluster.toml"
    cfg.write_text("\n".join(line for line in text.splitlines() if not line.startswith("cache =")))
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not killed:
            busy = [w for w, tasks in client.processing().items() if tasks]
            if busy:
                pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.01)

    t = threading.Thread(target=killer)
    t.start()
    out = tmp_path / "dask-killed"
    rc = run_batch(str(cfg), str(out), quiet=True, scheduler=lc.scheduler_address)
    t.join()
    assert killed, "no worker was busy long enough to be killed"
    assert rc == 0
    assert outputs(out) == seq


def test_plan_prints_counts_and_fetches_nothing(four_accounts: Path, tmp_path: Path, dovecot,
                                                capsys) -> None:  # fmt: skip
    before = sum(s["hdr_count"] for s in dovecot.session_counters())
    out = tmp_path / "plan-out"
    assert run_batch(str(four_accounts), str(out), quiet=True, plan=True, jobs=4) == 0
    printed = capsys.readouterr().out
    assert "4 account(s), on this machine, 4 at a time" in printed
    # acct0 holds 40 ham + 30 spam + 10 sent (see the fixture)
    assert "acct0: 80 messages: Sent (sent) 10, INBOX (ham) 40, Junk (spam) 30" in printed
    assert not out.exists()  # nothing written
    time.sleep(0.5)
    assert sum(s["hdr_count"] for s in dovecot.session_counters()) == before


def test_dask_progress_arrives_while_accounts_run(four_accounts: Path, tmp_path: Path,
                                                  cluster) -> None:  # fmt: skip
    from mailstats.accounts.config import load_config
    from mailstats.run.parallel import run_dask

    lc, client = cluster
    text = four_accounts.read_text()
    cfg_path = tmp_path / "cluster.toml"
    cfg_path.write_text("\n".join(x for x in text.splitlines() if not x.startswith("cache =")))
    cfg = load_config(cfg_path)
    seen: list = []
    result, _tables = run_dask(cfg, cfg.accounts, lc.scheduler_address, seen.append, client)
    assert all(a.status == "ok" for a in result.accounts)
    finished = [p.account for p in seen if p.phase == "finished"]
    assert sorted(finished) == ["acct0", "acct1", "acct2", "acct3"]
    for name in finished:
        working = [p for p in seen if p.account == name and p.phase not in ("finished",)]
        assert working, f"no progress from {name} before it finished"
        ends = [i for i, p in enumerate(seen) if p.account == name and p.phase == "finished"]
        assert seen.index(working[0]) < ends[0]
    # message counts as they come: some folder reports a count below its total
    assert any(0 < p.done < p.total or (p.done == p.total and p.total > 1) for p in seen)


def test_dask_run_records_the_scheduler(four_accounts: Path, tmp_path: Path, cluster) -> None:
    import json

    lc, _client = cluster
    text = four_accounts.read_text()
    cfg = tmp_path / "cluster.toml"
    cfg.write_text("\n".join(line for line in text.splitlines() if not line.startswith("cache =")))
    out = tmp_path / "dask"
    assert run_batch(str(cfg), str(out), quiet=True, scheduler=lc.scheduler_address) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scheduler"] == lc.scheduler_address
