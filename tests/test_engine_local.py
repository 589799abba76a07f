"""Engine over local stores: same path as IMAP downstream, incremental, and error-tolerant."""

from __future__ import annotations

import csv
import json
import mailbox
import os
from pathlib import Path

import pytest

from mailstats.accounts.config import parse_config
from mailstats.modules import Module, Registry
from mailstats.run.cache import Cache
from mailstats.run.engine import Engine
from mailstats.stats.export import write_outputs


def make_msg(
    i: int,
    *,
    from_dom: str = "example.com",
    hop_host: str = "mail.example.com",
    sender: str | None = None,
) -> bytes:
    lines = [
        f"Received: from {hop_host} ({hop_host} [192.0.2.{i % 250 + 1}]) by mx.example.org "
        f"with ESMTPS id A{i}; Mon, 1 Jan 2024 10:00:00 +0000",
        f"From: Person {i} <p{i}@{from_dom}>",
        "To: dana@example.org",
        f"Subject: message {i}",
        "Date: Mon, 1 Jan 2024 09:59:00 +0000",
        f"Message-ID: <{i}@{from_dom}>",
    ]
    if sender:
        lines.append(f"Sender: {sender}")
    return ("\n".join(lines) + "\n\nbody\n").encode()


def config(tmp_path: Path, path: Path, roles: dict[str, list[str]]):
    data = {
        "settings": {
            "modules": ["received"],
            "dns_servers": ["127.0.0.1:9"],
            "cache": str(tmp_path / "cache.sqlite"),
        },
        "accounts": [{"name": "local", "path": str(path), **roles}],
    }
    return parse_config(data)


def write_mbox(path: Path, messages: list[bytes]) -> None:
    box = mailbox.mbox(path)
    for raw in messages:
        box.add(raw)
    box.flush()
    box.close()


def run(cfg, registry: Registry | None = None):
    engine = Engine(cfg, cache=Cache(cfg.settings.cache), registry=registry)
    result = engine.run()
    return engine, result


def counts(result, folder: str) -> dict[str, list[int]]:
    fr = next(f for a in result.accounts for f in a.folders if f.folder == folder)
    return {"total": fr.total, **fr.counts, "fetched": fr.fetched, "evaluated": fr.evaluated}


def test_mbox_counts_and_incremental(tmp_path: Path) -> None:
    msgs = [make_msg(i) for i in range(6)] + [
        make_msg(10, from_dom="other.net"),
        make_msg(11, sender="list@example.com"),
    ]
    box = tmp_path / "inbox.mbox"
    write_mbox(box, msgs)
    cfg = config(tmp_path, box, {"ham": ["inbox"]})
    _, result = run(cfg)
    c = counts(result, "inbox")
    assert c["total"] == 8 and c["fetched"] == 8
    assert c["received.from_match"] == [7, 8]
    assert c["received.sender_match"] == [1, 1]

    # Nothing new: nothing fetched, no module runs, same numbers.
    _, again = run(cfg)
    c2 = counts(again, "inbox")
    assert c2["fetched"] == 0 and c2["evaluated"] == 0
    assert c2["received.from_match"] == [7, 8]

    # Two appended messages: only those two fetched and evaluated.
    b = mailbox.mbox(box)
    b.add(make_msg(20))
    b.add(make_msg(21, from_dom="spam.example.net"))
    b.flush()
    b.close()
    _, third = run(cfg)
    c3 = counts(third, "inbox")
    assert (c3["total"], c3["fetched"], c3["evaluated"]) == (10, 2, 2)
    assert c3["received.from_match"] == [8, 10]


def test_rewritten_mbox_is_analysed_afresh(tmp_path: Path) -> None:
    box = tmp_path / "inbox.mbox"
    write_mbox(box, [make_msg(i) for i in range(5)])
    cfg = config(tmp_path, box, {"ham": ["inbox"]})
    run(cfg)
    box.unlink()
    # Same count, different messages: positions now mean other mail.
    write_mbox(box, [make_msg(100 + i, from_dom="elsewhere.org") for i in range(5)])
    _, result = run(cfg)
    c = counts(result, "inbox")
    assert c["fetched"] == 5
    assert c["received.from_match"] == [0, 5]


def test_maildir_plus_plus_and_mbox_directory(tmp_path: Path) -> None:
    md = mailbox.Maildir(tmp_path / "Mail", create=True)
    for i in range(3):
        md.add(make_msg(i))
    junk = md.add_folder("Junk")
    for i in range(4):
        junk.add(make_msg(50 + i, from_dom="spam.test", hop_host="relay.bad.example"))
    sub = md.add_folder("Lists.Dev")
    sub.add(make_msg(99))
    cfg = config(tmp_path, tmp_path / "Mail", {"ham": ["INBOX", "Lists/Dev"], "spam": ["Junk"]})
    _, result = run(cfg)
    assert counts(result, "INBOX")["received.from_match"] == [3, 3]
    assert counts(result, "Junk")["received.from_match"] == [0, 4]
    assert counts(result, "Lists/Dev")["total"] == 1

    mdir = tmp_path / "boxes"
    mdir.mkdir()
    write_mbox(mdir / "ham.mbox", [make_msg(i) for i in range(2)])
    write_mbox(mdir / "spam", [make_msg(7, from_dom="x.test")])
    cfg2 = config(tmp_path / "c2", mdir, {"ham": ["ham"], "spam": ["spam"]})
    (tmp_path / "c2").mkdir()
    _, r2 = run(cfg2)
    assert counts(r2, "ham")["received.from_match"] == [2, 2]
    assert counts(r2, "spam")["received.from_match"] == [0, 1]


class Exploding(Module):
    name = "exploding"
    version = "1"
    checks = ("odd",)

    def evaluate(self, msg, services):
        if msg.uid % 2:
            raise RuntimeError("boom on purpose")
        return {"odd": False}


def test_module_errors_are_counted_not_fatal(tmp_path: Path) -> None:
    box = tmp_path / "inbox.mbox"
    write_mbox(box, [make_msg(i) for i in range(5)] + [b"\x00\x01garbage without headers\n"])
    cfg = config(tmp_path, box, {"ham": ["inbox"]})
    cfg.settings.modules = ["received", "exploding"]
    from mailstats.modules import available_modules

    reg = available_modules()
    reg.modules.append(Exploding)
    engine, result = run(cfg, reg)
    fr = result.accounts[0].folders[0]
    assert fr.total == 6
    assert fr.errors == {"exploding": 3}  # uids 1, 3, 5
    assert fr.counts["exploding.odd"] == [0, 3]
    assert fr.malformed == 1 and fr.processed == 5
    out = tmp_path / "out"
    write_outputs(engine, result, out)
    rows = list(csv.DictReader((out / "messages.csv").open()))
    assert len(rows) == 6  # every message has a row, the broken one too
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["accounts"][0]["folders"][0]["errors"] == {"exploding": 3}
    assert manifest["counts"]["malformed"] == 1


def test_outputs_escape_formulas(tmp_path: Path) -> None:
    box = tmp_path / "inbox.mbox"
    evil = make_msg(1).replace(b"Message-ID: <1@example.com>", b"Message-ID: <=2+3@evil.test>")
    write_mbox(box, [evil])
    cfg = config(tmp_path, box, {"ham": ["inbox"]})
    engine, result = run(cfg)
    write_outputs(engine, result, tmp_path / "out")
    text = (tmp_path / "out" / "messages.csv").read_text()
    assert "'=2+3@evil.test" in text
    for line in text.splitlines()[1:]:
        for cell in next(csv.reader([line])):
            assert not cell.startswith(("=", "+", "@")) and not (
                cell.startswith("-") and not cell[1:].replace(".", "").isdigit()
            ), cell


@pytest.mark.parametrize("bad", [b"", b"\r\r\r", b"From: \xff\xfe <a@b>\n\nx"])
def test_degenerate_messages_are_counted(tmp_path: Path, bad: bytes) -> None:
    md = mailbox.Maildir(tmp_path / "M", create=True)
    md.add(make_msg(1))
    md.add(bad)
    cfg = config(tmp_path, tmp_path / "M", {"ham": ["INBOX"]})
    _, result = run(cfg)
    fr = result.accounts[0].folders[0]
    assert fr.total == 2
    assert fr.processed + fr.malformed == 2


def _ham_and_spam(root: Path, ham: int, spam: int) -> None:
    """A Maildir with `ham` messages in INBOX (a third from another domain) and `spam` from
    one spam domain through a bad relay in Junk."""
    md = mailbox.Maildir(root, create=True)
    for i in range(ham):
        md.add(make_msg(i, from_dom="example.com" if i % 3 else "other.net"))
    junk = md.add_folder("Junk")
    for i in range(spam):
        junk.add(make_msg(5000 + i, from_dom="spam.test", hop_host="relay.bad.example"))


def test_worker_process_gives_identical_outputs(tmp_path: Path, monkeypatch) -> None:
    """The overlapped worker-process path and the inline path write the same files."""
    import mailstats.run.analysis

    started = []
    real_init = mailstats.run.analysis.ProcessRunner.__init__

    def counting_init(self, *args, **kwargs):
        started.append(1)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(mailstats.run.analysis.ProcessRunner, "__init__", counting_init)
    _ham_and_spam(tmp_path / "Mail", 1300, 700)
    outs = {}
    modes = (
        ("inline", {"analysis_workers": 0}),
        ("worker", {"worker_min": 1}),
        ("two", {"worker_min": 1, "analysis_workers": 2}),
    )
    for mode, extra in modes:
        d = tmp_path / mode
        d.mkdir()
        cfg = config(d, tmp_path / "Mail", {"ham": ["INBOX"], "spam": ["Junk"]})
        cfg.settings.extra.update(extra)
        engine, result = run(cfg)
        assert result.ok
        write_outputs(engine, result, d / "out")
        outs[mode] = {n: (d / "out" / n).read_text() for n in ("summary.csv", "messages.csv")}
        fr = result.accounts[0].folders[0]
        assert fr.evaluated == fr.total == 1300
    assert started == [1, 1]  # a worker pool for each worker run, none inline
    assert outs["inline"] == outs["worker"] == outs["two"]
    assert "received.from_match,866,1300,1300" in outs["worker"]["summary.csv"]


def test_a_batch_run_makes_no_table_while_its_workers_live(tmp_path: Path, monkeypatch) -> None:
    """A batch run (no tables kept) makes every folder's table once the account's worker
    processes have ended, not beside them: a 60k-message table next to two workers was the
    100k run's peak memory. The counts are those of the run that keeps its tables."""
    import mailstats.run.analysis
    import mailstats.run.counting

    events: list[str] = []
    real_close = mailstats.run.analysis.ProcessRunner.close
    real_load = mailstats.run.counting.load_table

    def close(self) -> None:
        events.append("workers closed")
        real_close(self)

    def load_table(cache, account, folder, *args):
        events.append(f"table {folder}")
        return real_load(cache, account, folder, *args)

    monkeypatch.setattr(mailstats.run.analysis.ProcessRunner, "close", close)
    monkeypatch.setattr(mailstats.run.counting, "load_table", load_table)
    _ham_and_spam(tmp_path / "Mail", 300, 200)
    got = {}
    for keep in (True, False):
        d = tmp_path / f"keep-{keep}"
        d.mkdir()
        cfg = config(d, tmp_path / "Mail", {"ham": ["INBOX"], "spam": ["Junk"]})
        cfg.settings.extra.update({"worker_min": 1, "analysis_workers": 1})
        events.clear()
        engine = Engine(cfg, cache=Cache(cfg.settings.cache))
        engine.keep_tables = keep
        result = engine.run()
        assert result.ok
        got[keep] = {f.folder: (f.total, f.counts, f.errors) for f in result.accounts[0].folders}
        tables = [i for i, e in enumerate(events) if e.startswith("table")]
        first_close = events.index("workers closed")
        if keep:  # the desktop app shows each folder as it is done
            assert tables[0] < first_close
        else:
            assert sorted(events[i] for i in tables) == ["table INBOX", "table Junk"]
            assert min(tables) > first_close, events
    assert got[True] == got[False]
    assert got[False]["INBOX"][0] == 300 and got[False]["Junk"][0] == 200


def test_dead_worker_falls_back_to_this_process(tmp_path: Path, monkeypatch, caplog) -> None:
    from crash_module import CrashInWorker

    from mailstats.modules import available_modules

    monkeypatch.setenv("MAILSTATS_TEST_PARENT_PID", str(os.getpid()))
    md = mailbox.Maildir(tmp_path / "Mail", create=True)
    for i in range(1200):
        md.add(make_msg(i))
    cfg = config(tmp_path, tmp_path / "Mail", {"ham": ["INBOX"]})
    cfg.settings.modules = ["received", "crashy"]
    cfg.settings.extra.update({"worker_min": 1, "analysis_workers": 1})
    reg = available_modules()
    reg.modules.append(CrashInWorker)
    engine, result = run(cfg, reg)
    fr = result.accounts[0].folders[0]
    assert result.ok and fr.total == fr.evaluated == 1200
    assert fr.counts["crashy.odd"] == [600, 1200]  # every batch redone here, none lost
    assert fr.counts["received.from_match"] == [1200, 1200]
    assert fr.errors == {}
    assert any("analysis worker failed" in r.getMessage() for r in caplog.records)
