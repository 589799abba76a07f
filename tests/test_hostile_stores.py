"""Hostile local mail stores, through `python -m mailstats --batch` as a child process.

A Maildir holding a FIFO (which would hang a reader), a link to /dev/zero (which never
ends) and a dangling link: only regular files are opened, the others are skipped, counted
(manifest `fetch.skipped`) and named with their reason in one warning. A 300 MB message
and a 100 MB attachment, from a Maildir and from an mbox: the child's peak RSS stays under
300 MB (measured about 50-60 MB, docs/reliability.md) and the structure and body text are
still read (the attachment is found, the greeting's name too).
"""

from __future__ import annotations

import csv
import json
import mmap
import os
import socket
import sys
import threading
from pathlib import Path

import pytest
from cli_child import assert_clean, make_maildir, plain_message, run_child, write_accounts

from fixtures.nasty import nasty_messages
from mailstats.mail.structure import scan_parts
from mailstats.sources import local
from mailstats.sources.local import LocalSource

if sys.platform != "linux":
    pytest.skip("FIFOs, /dev/zero and madvise are Linux's here", allow_module_level=True)

#: The issue's bound for any one message, whatever its size.
PEAK_BOUND_MB = 300
_LINE = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n"
_HEAD = (
    b"From: Big <big@sender.example>\r\nTo: Dana Whitfield <dana@example.org>\r\n"
    b"Subject: big\r\nMessage-ID: <big@sender.example>\r\n"
    b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="BOUND"\r\n\r\n'
    b"--BOUND\r\nContent-Type: text/plain\r\n\r\nHi Dana, see attached.\r\n"
    b"--BOUND\r\nContent-Type: application/octet-stream\r\n"
    b'Content-Disposition: attachment; filename="big.bin"\r\n'
    b"Content-Transfer-Encoding: base64\r\n\r\n"
)


def _write_big(fh, megabytes: int) -> None:
    """A message of about `megabytes` MB: a greeting and one base64 attachment."""
    fh.write(_HEAD)
    chunk = _LINE * 10_000
    for _ in range(megabytes * 1024 * 1024 // len(chunk)):
        fh.write(chunk)
    fh.write(b"\r\n--BOUND--\r\n")


def _run(tmp_path: Path, store: Path, folder: str) -> tuple[object, list[dict]]:
    cfg = write_accounts(
        tmp_path / "acc.toml", store, cache=tmp_path / "c.sqlite", roles={"ham": [folder]}
    )
    child = run_child(["--batch", str(cfg), "--out", str(tmp_path / "out"), "-q"], tmp_path)
    rows = []
    if (tmp_path / "out" / "messages.csv").exists():
        rows = list(csv.DictReader((tmp_path / "out" / "messages.csv").open(newline="")))
    return child, rows


def _check_big(child, rows: list[dict], megabytes: int) -> None:
    assert_clean(child)
    assert child.code == 0, child.stderr
    print(f"{megabytes} MB message: child peak RSS {child.peak_mb:.0f} MB")
    assert child.peak_mb < PEAK_BOUND_MB, child.peak_mb
    assert len(rows) == 2
    big = next(r for r in rows if r["message_id"] == "big@sender.example")
    assert big["attachments.has_attachment"] == "1"  # the structure past the attachment
    assert big["personal.body_has_name"] == "1"  # the greeting, read from the body slice


@pytest.mark.parametrize("megabytes", [300, 100], ids=["300MB-message", "100MB-attachment"])
def test_big_message_in_a_maildir_stays_under_the_memory_bound(
    megabytes: int, tmp_path: Path
) -> None:
    store = make_maildir(tmp_path / "md", [plain_message(0)])
    with (store / "cur" / "1700000009.big.host:2,S").open("wb") as fh:
        _write_big(fh, megabytes)
    _check_big(*_run(tmp_path, store, "INBOX"), megabytes)


def test_big_message_in_an_mbox_stays_under_the_memory_bound(tmp_path: Path) -> None:
    box = tmp_path / "box.mbox"
    with box.open("wb") as fh:
        fh.write(b"From a@b Mon Jan  1 10:00:00 2024\n" + plain_message(0) + b"\n")
        fh.write(b"From big@x Mon Jan  1 10:00:00 2024\n")
        _write_big(fh, 300)
    _check_big(*_run(tmp_path, box, "box"), 300)


def test_files_that_are_not_messages_are_skipped_and_counted(tmp_path: Path) -> None:
    store = make_maildir(tmp_path / "md", [plain_message(i) for i in range(3)])
    os.mkfifo(store / "cur" / "1700000100.fifo.host:2,S")
    (store / "cur" / "1700000101.zero.host:2,S").symlink_to("/dev/zero")
    (store / "new" / "1700000102.gone.host").symlink_to(tmp_path / "no-such-file")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(store / "new" / "1700000103.sock"))
    try:
        child, rows = _run(tmp_path, store, "INBOX")
    finally:
        sock.close()
    assert_clean(child)
    assert child.code == 0, child.stderr
    assert len(rows) == 3  # the messages, all of them
    (warning,) = [line for line in child.lines() if "skipped" in line]
    for name, why in (
        ("fifo", "FIFO"),
        ("zero", "link to a character device (/dev/zero)"),
        ("gone", "dangling link"),
        ("sock", "socket"),
    ):
        assert f".{name}" in warning and why in warning, warning
    assert "4 file(s) skipped" in warning
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["fetch"]["skipped"] == 4
    assert manifest["counts"]["messages"] == 3
    assert any("4 file(s) skipped" in w for w in manifest["warnings"])


def test_message_replaced_by_a_fifo_after_listing_is_skipped_not_waited_for(
    tmp_path: Path,
) -> None:
    store = make_maildir(tmp_path / "md", [plain_message(i) for i in range(3)])
    src = LocalSource(str(store))
    state = src.open_folder("INBOX")
    victim = sorted((store / "cur").iterdir())[1]
    victim.unlink()
    os.mkfifo(victim)
    got: list = []
    reader = threading.Thread(target=lambda: got.extend(src.fetch_headers(state.uids)))
    reader.start()
    reader.join(10)
    if reader.is_alive():  # unblock the reader so the test process can end, then fail
        with open(victim, "wb", buffering=0) as fh:
            fh.write(b"x")
        reader.join()
        pytest.fail("a FIFO was opened and waited for")
    assert [h.uid for h in got] == [1, 3]
    assert src.stats["skipped"] == 1
    assert any("message 2 skipped" in w and "regular file" in w for w in src.warnings)
    src.close()


def test_windowed_search_over_a_mapping_equals_the_bytes(tmp_path: Path, monkeypatch) -> None:
    """The mapping drops its pages window by window: no boundary is lost at a window edge."""
    monkeypatch.setattr(local, "_WINDOW", 4096)
    checked = 0
    for m in nasty_messages():
        if len(m.raw) < 3 * 4096:
            continue
        path = tmp_path / m.name
        path.write_bytes(m.raw)
        with path.open("rb") as fh, local._Mapped(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            mapped = [(p.part, p.start, p.end) for p in scan_parts(mm)]
            for sep in (b"--", b"\r\n--", b"Content-Type"):
                assert mm.find(sep, 5) == m.raw.find(sep, 5)
        assert mapped == [(p.part, p.start, p.end) for p in scan_parts(m.raw)], m.name
        checked += 1
    assert checked >= 5


@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
def test_a_store_path_that_is_a_device_or_fifo_fails_that_account_only(
    kind: str, tmp_path: Path
) -> None:
    if kind == "fifo":
        target = tmp_path / "store.fifo"
        os.mkfifo(target)
    else:
        target = Path("/dev/zero")
    store = make_maildir(tmp_path / "md", [plain_message(0)])
    other = f'\n[[accounts]]\nname = "odd"\npath = "{target}"\nham = ["INBOX"]\n'
    cfg = write_accounts(
        tmp_path / "acc.toml", store, cache=tmp_path / "c.sqlite", extra_accounts=other
    )
    child = run_child(
        ["--batch", str(cfg), "--out", str(tmp_path / "out"), "-q"], tmp_path, timeout=60
    )
    assert_clean(child)
    assert child.code == 1, child.stderr
    (line,) = child.lines()
    assert "'odd' failed" in line and "not a mail store" in line, line
    assert ("FIFO" if kind == "fifo" else "character device") in line
    rows = list(csv.DictReader((tmp_path / "out" / "messages.csv").open(newline="")))
    assert [r["account"] for r in rows] == ["local"]
