"""Fill a Dovecot user's Maildir with N generated messages, fast, for the benchmarks.

Direct Maildir writes (no IMAP APPEND, no LDA): 100k messages take seconds, and the files
are what Dovecot's own delivery would produce (cur/, ",S=size" names, Maildir++ folders).

    python bench/load_dovecot.py MAILDIR_ROOT -n 100000 [--spam-share 0.4] [--uid U --gid G]

As a function: `load(maildir_root, n, ...)`; with the test fixture use
`dovecot.deliver(user, folder, messages)` fed by `iter_messages`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fixtures.generator import generate_mailbox  # noqa: E402
from fixtures.zone import DnsRecords  # noqa: E402

CHUNK = 2000  # generate in chunks: a 100k mailbox in memory at once would be ~150 MB


def iter_messages(
    n: int, spam_share: float = 0.4, seed: int = 11, records: DnsRecords | None = None
) -> Iterator[tuple[str, bytes]]:
    """(folder, raw) pairs: INBOX for ham, Junk for spam; deterministic per seed. `records`
    gathers the generated DNS zone, so a DNS server can answer what the messages name."""
    done = 0
    chunk_no = 0
    while done < n:
        size = min(CHUNK, n - done)
        n_spam = round(size * spam_share)
        box = generate_mailbox(seed * 100003 + chunk_no, size - n_spam, n_spam, 0, False)
        if records is not None:
            records.extend(box.dns_records)
        for folder in ("INBOX", "Junk"):
            for m in box.folders[folder]:
                yield folder, m.raw
        done += size
        chunk_no += 1


def _folder_dir(root: Path, folder: str) -> Path:
    return root if folder == "INBOX" else root / ("." + folder.replace("/", "."))


def load(
    maildir_root: str | Path,
    n: int,
    spam_share: float = 0.4,
    seed: int = 11,
    uid: int | None = None,
    gid: int | None = None,
    records: DnsRecords | None = None,
) -> dict[str, int]:
    """Write n messages; returns the count per folder. uid/gid: chown for Dovecot."""
    root = Path(maildir_root)
    counts: dict[str, int] = {}
    dirs: dict[str, Path] = {}
    pid = os.getpid()
    now = int(time.time())

    def own(path: Path) -> None:
        if uid is not None:
            os.chown(path, uid, gid if gid is not None else -1)

    for i, (folder, raw) in enumerate(iter_messages(n, spam_share, seed, records)):
        d = dirs.get(folder)
        if d is None:
            d = _folder_dir(root, folder)
            for p in (root, d, d / "cur", d / "new", d / "tmp"):
                p.mkdir(parents=True, exist_ok=True)
                own(p)
            if folder != "INBOX":
                (d / "maildirfolder").touch()
                own(d / "maildirfolder")
            dirs[folder] = d
        path = d / "cur" / f"{now}.M{i}P{pid}.bench,S={len(raw)}:2,S"
        with open(path, "wb") as fh:
            fh.write(raw)
        own(path)
        counts[folder] = counts.get(folder, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Fill a Maildir with generated messages.")
    p.add_argument("maildir")
    p.add_argument("-n", type=int, default=10000)
    p.add_argument("--spam-share", type=float, default=0.4)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--uid", type=int)
    p.add_argument("--gid", type=int)
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    counts = load(a.maildir, a.n, a.spam_share, a.seed, a.uid, a.gid)
    dt = time.perf_counter() - t0
    print(f"wrote {sum(counts.values())} messages {counts} in {dt:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
