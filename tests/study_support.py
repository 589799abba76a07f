"""Helpers for the study-mode tests: generated mailboxes run through `mailstats --batch`.

The original study's 22 mailboxes (inbox and spam sizes from its table) are imitated by
generating a few dozen distinct messages per mailbox, running `mailstats --batch` over them
(one run, one account per mailbox), then scaling the results folder to the table's sizes:
each folder's messages.csv rows are repeated in turn up to the table's count and summary.csv
is recounted from them, so the study sees exactly the table's sizes while the engine only
reads ~1,500 messages. Expected per-check counts follow from the generator's own
expectations in the same repetition, never from mailstats.
"""

from __future__ import annotations

import csv
import json
import mailbox
from pathlib import Path

from fixtures.generator import GeneratedMessage, Mailbox, generate_mailbox
from mailstats.cli import run_batch

#: Mailbox number -> (inbox mails, spam mails), the original study's table.
ORIGINAL_TABLE = [
    (435, 186), (1631, 976), (133, 145), (1703, 207), (1072, 0), (857, 0), (365, 61),
    (212, 137), (358, 61), (566, 141), (2187, 0), (351, 0), (202, 1), (151, 0), (352, 0),
    (1119, 21), (1047, 0), (1104, 39), (1237, 0), (416, 73), (1638, 0), (1334, 2),
]  # fmt: skip
#: Modules that ask no DNS (the tests run offline): their expectations hold without a zone.
MODULES = ("internal", "datetime", "list", "attachments", "personal")
DISTINCT_HAM, DISTINCT_SPAM = 40, 30


def repeated(msgs: list[GeneratedMessage], n: int) -> list[GeneratedMessage]:
    return [msgs[i % len(msgs)] for i in range(n)] if msgs else []


def write_folder(path: Path, msgs: list[GeneratedMessage]) -> None:
    path.unlink(missing_ok=True)
    box = mailbox.mbox(str(path), create=True)
    for m in msgs:
        box.add(m.raw)
    box.flush()
    box.close()


def make_participant(
    base: Path,
    seed: int,
    n_ham: int,
    n_spam: int,
    *,
    account: str = "participant",
    folders: tuple[str, str] = ("INBOX", "Junk"),
    extra: dict[str, list[bytes]] | None = None,
) -> tuple[Path, Mailbox]:
    """A results folder from `mailstats --batch` over one generated local mailbox (real
    sizes, no scaling), with `extra` raw messages per role added to its folders."""
    mb = generate_mailbox(seed, n_ham, n_spam, 0, dns_failures=False)
    store = base / "store"
    store.mkdir(parents=True, exist_ok=True)
    for role, src, folder in (("ham", "INBOX", folders[0]), ("spam", "Junk", folders[1])):
        write_folder(store / f"{folder}.mbox", mb.folders[src])
        box = mailbox.mbox(str(store / f"{folder}.mbox"))
        for raw in (extra or {}).get(role, []):
            box.add(raw)
        box.flush()
        box.close()
    lines = [
        "[settings]",
        'dns_servers = ["127.0.0.1:9"]',
        "dns_timeout = 0.5",
        f"modules = {json.dumps(list(MODULES))}",
        "",
        *_accounts_block(account, store, mb, folders),
    ]
    cfg = base / "accounts.toml"
    cfg.write_text("\n".join(lines))
    out = base / "results"
    assert run_batch(str(cfg), str(out), cache=str(base / "cache.sqlite"), quiet=True) == 0
    return out, mb


def expected(msgs: list[GeneratedMessage], check: str) -> tuple[int, int]:
    """(matched, applicable) from the generator's expectations."""
    values = [m.expect[check] for m in msgs]
    return sum(1 for v in values if v is True), sum(1 for v in values if v is not None)


def _accounts_block(name: str, store: Path, mb: Mailbox, folders: tuple[str, str]) -> list[str]:
    ident = mb.identity
    return [
        "[[accounts]]",
        f"name = {json.dumps(name)}",
        f"path = {json.dumps(str(store))}",
        f"address = {json.dumps(ident['address'])}",
        f"full_name = {json.dumps(ident['full_name'])}",
        f"own_domains = {json.dumps(list(ident['own_domains']))}",
        f"trusted_relays = {json.dumps(list(ident['trusted_relays']))}",
        f"ham = [{json.dumps(folders[0])}]",
        f"spam = [{json.dumps(folders[1])}]",
        "",
    ]


def original_study_results(base: Path) -> tuple[Path, dict[str, dict[str, list]]]:
    """Results folders `results/mailbox1` .. `mailbox22`, each at the table's sizes.

    Returns it and, per account and role, the generated messages as the scaled folder holds
    them (for expectations)."""
    lines = [
        "[settings]",
        'dns_servers = ["127.0.0.1:9"]',
        "dns_timeout = 0.5",
        f"modules = {json.dumps(list(MODULES))}",
        "",
    ]
    written: dict[str, dict[str, list]] = {}
    sizes: dict[tuple[str, str], int] = {}
    for number, (n_ham, n_spam) in enumerate(ORIGINAL_TABLE, 1):
        name = f"mailbox{number}"
        mb = generate_mailbox(
            500 + number, min(n_ham, DISTINCT_HAM), min(n_spam, DISTINCT_SPAM), 0, False
        )
        store = base / name
        store.mkdir(parents=True)
        write_folder(store / "INBOX.mbox", mb.folders["INBOX"])
        write_folder(store / "Junk.mbox", mb.folders["Junk"])
        lines += _accounts_block(name, store, mb, ("INBOX", "Junk"))
        written[name] = {
            "ham": repeated(mb.folders["INBOX"], n_ham),
            "spam": repeated(mb.folders["Junk"], n_spam),
        }
        sizes[(name, "INBOX")], sizes[(name, "Junk")] = n_ham, n_spam
    cfg = base / "accounts.toml"
    cfg.write_text("\n".join(lines))
    out = base / "results"
    assert run_batch(str(cfg), str(out), cache=str(base / "cache.sqlite"), quiet=True) == 0
    scale_results(out, sizes)
    return out, written


def scale_results(out: Path, sizes: dict[tuple[str, str], int]) -> None:
    """Repeat each folder's messages.csv rows in turn up to `sizes`, recount summary.csv,
    and write each account's share as its own results folder `out/<account>/`.

    The rows keep their order (the engine writes a folder's messages in mailbox order, which
    is the generator's), so row i of the scaled folder is generated message i % distinct."""
    manifest = json.loads((out / "manifest.json").read_text())
    checks = manifest["checks"]
    with (out / "messages.csv").open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = list(reader)
    a_i, f_i, r_i, u_i = (header.index(c) for c in ("account", "folder", "role", "uid"))
    by_folder: dict[tuple[str, str], list[list[str]]] = {}
    for row in rows:
        by_folder.setdefault((row[a_i], row[f_i]), []).append(row)
    scaled: list[list[str]] = []
    counts: dict[tuple[str, str, str, str], list[int]] = {}
    roles = {}
    for key, n in sizes.items():
        src = by_folder.get(key, [])
        assert len(src) >= min(n, 1), key
        for i in range(n):
            row = list(src[i % len(src)])
            row[u_i] = str(i + 1)
            scaled.append(row)
        roles[key] = src[0][r_i] if src else ("ham" if key[1] == "INBOX" else "spam")
        for check in checks:
            c = counts.setdefault((key[0], key[1], roles[key], check), [0, 0, n])
            j = header.index(check)
            for i in range(n):
                cell = src[i % len(src)][j]
                c[0] += cell == "1"
                c[1] += cell in ("0", "1")
    for acct in manifest["accounts"]:
        for f in acct["folders"]:
            f["total"] = f["processed"] = sizes[(acct["name"], f["folder"])]
    # one results folder per participant, as each would have their own
    for acct in manifest["accounts"]:
        name = acct["name"]
        own = out / name
        own.mkdir()
        with (own / "messages.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(r for r in scaled if r[a_i] == name)
        with (own / "summary.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["account", "folder", "role", "check", "matched", "applicable", "total"])
            for (a, folder, role, check), (m, ap, t) in counts.items():
                if a == name:
                    w.writerow([a, folder, role, check, m, ap, t])
        (own / "manifest.json").write_text(json.dumps(dict(manifest, accounts=[acct])))
