"""Hostile mail end to end: the nasty set and the edge-case corpus through `run_batch`.

What must hold for every folder, whatever the mail: the run exits 0, every message is
counted (total = what was delivered, processed + malformed = total, malformed = the
messages built to be malformed), and messages.csv has exactly one row per message. The
nasty set runs twice, from a local Maildir and from Dovecot over IMAP (where the server's
own BODYSTRUCTURE and header split are what mailstats sees), with every default module and
DNS at the dnsmasq fixture. A child process measures peak memory over the nasty set.
"""

from __future__ import annotations

import csv
import email
import email.policy
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_e2e_imap import new_user

from fixtures.nasty import nasty_messages, split_folders, write_maildir
from mailstats.cli import run_batch

pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "edge_cases"
#: Peak RSS a nasty-set run may add over a one-message run (measured: see reliability.md).
MEMORY_BOUND_MB = 100
HEAVY_COPIES = 20


def _settings(tmp_path: Path, dns: object) -> list[str]:
    return [
        "[settings]",
        f"dns_servers = [{json.dumps(dns.server_spec)}]",  # type: ignore[attr-defined]
        f"cache = {json.dumps(str(tmp_path / 'cache.sqlite'))}",
        "dns_timeout = 1.0",
        "dns_deadline = 60",
        "",
        "[[accounts]]",
        'name = "nasty"',
        'address = "dana@example.org"',
        'own_domains = ["example.org"]',
    ]


def local_config(
    tmp_path: Path,
    dns: object,
    store: Path,
    roles: dict[str, list[str]],
    modules: list[str] | None = None,
) -> Path:
    lines = _settings(tmp_path, dns) + [f"path = {json.dumps(str(store))}"]
    if modules is not None:  # settings keys must come before [[accounts]]
        lines.insert(1, f"modules = {json.dumps(modules)}")
    lines += [f"{role} = {json.dumps(folders)}" for role, folders in roles.items()]
    path = tmp_path / "accounts.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def imap_config(tmp_path: Path, dns: object, dovecot: object, user: str) -> Path:
    lines = _settings(tmp_path, dns) + [
        f'host = "{dovecot.host}"',  # type: ignore[attr-defined]
        f"port = {dovecot.port}",  # type: ignore[attr-defined]
        'security = "none"',
        f'username = "{user}"',
        'password_env = "MAILSTATS_TEST_NASTY_PW"',
        'ham = ["INBOX"]',
        'spam = ["Junk"]',
    ]
    path = tmp_path / "accounts.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def check_outputs(out: Path, expected: dict[str, tuple[int, int]]) -> dict:
    """Every folder: total and malformed as built, processed + malformed = total, one CSV row
    per message (distinct UIDs)."""
    manifest = json.loads((out / "manifest.json").read_text())
    (acct,) = manifest["accounts"]
    assert acct["status"] == "ok", acct
    folders = {f["folder"]: f for f in acct["folders"]}
    assert set(folders) == set(expected)
    with (out / "messages.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    per_folder = Counter(r["folder"] for r in rows)
    for name, (total, malformed) in expected.items():
        f = folders[name]
        assert f["total"] == total, (name, f)
        assert f["processed"] + f["malformed"] == f["total"], (name, f)
        assert f["malformed"] == malformed, (name, f)
        assert per_folder[name] == total, name
        uids = [r["uid"] for r in rows if r["folder"] == name]
        assert len(set(uids)) == total, name
    assert manifest["counts"]["messages"] == sum(t for t, _ in expected.values())
    return manifest


def nasty_expected() -> dict[str, tuple[int, int]]:
    return {
        folder: (len(msgs), sum(m.malformed for m in msgs))
        for folder, msgs in split_folders(nasty_messages()).items()
    }


def test_nasty_set_from_maildir(tmp_path: Path, dns: object) -> None:
    store = tmp_path / "maildir"
    counts = write_maildir(store)
    assert counts == {f: t for f, (t, _) in nasty_expected().items()}
    cfg = local_config(tmp_path, dns, store, {"ham": ["INBOX"], "spam": ["Junk"]})
    out = tmp_path / "out"
    assert run_batch(str(cfg), str(out), quiet=True) == 0
    manifest = check_outputs(out, nasty_expected())
    # all default modules ran (none is opt-in here) and the malformed ones are still rows
    assert "reachability" not in manifest["modules"]
    assert {"received", "dkim", "spf", "dnsbl", "attachments"} <= set(manifest["modules"])
    # a re-run over the cache counts the same
    out2 = tmp_path / "out2"
    assert run_batch(str(cfg), str(out2), quiet=True) == 0
    assert (out2 / "summary.csv").read_text() == (out / "summary.csv").read_text()


def test_nasty_set_over_imap(tmp_path: Path, dns: object, dovecot: object) -> None:
    folders = split_folders(nasty_messages())
    user = new_user(dovecot, SimpleNamespace(folders=folders))
    before = dovecot.flags_snapshot(user)  # type: ignore[attr-defined]
    cfg = imap_config(tmp_path, dns, dovecot, user)
    os.environ["MAILSTATS_TEST_NASTY_PW"] = dovecot.users[user]  # type: ignore[attr-defined]
    try:
        assert run_batch(str(cfg), str(tmp_path / "out"), quiet=True) == 0
    finally:
        del os.environ["MAILSTATS_TEST_NASTY_PW"]
    check_outputs(tmp_path / "out", nasty_expected())
    assert dovecot.flags_snapshot(user) == before  # type: ignore[attr-defined]
    assert dovecot.mail_log_events(user) == []  # type: ignore[attr-defined]


def _child_peak_rss_mb(cfg: Path, out: Path) -> float:
    """Run the batch in a child and return its peak RSS (os.wait4's ru_maxrss, KiB on Linux)."""
    code = (
        "import sys; from mailstats.cli import run_batch; "
        "sys.exit(run_batch(sys.argv[1], sys.argv[2], quiet=True))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(cfg), str(out)], cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0
    return usage.ru_maxrss / 1024


def test_nasty_set_peak_memory_is_bounded(tmp_path: Path, dns: object) -> None:
    nasty = nasty_messages()
    big = [m for m in nasty if len(m.raw) >= 500_000]
    assert len(big) >= 4
    # ~125 MB of hostile mail: a run that kept messages around would blow the bound
    heavy = nasty + big * HEAVY_COPIES
    runs = {}
    for label, msgs in (("one", nasty[:1]), ("nasty", heavy)):
        work = tmp_path / label
        work.mkdir()
        write_maildir(work / "maildir", msgs)
        roles = {"ham": ["INBOX"], "spam": ["Junk"]}
        cfg = local_config(work, dns, work / "maildir", roles)
        runs[label] = _child_peak_rss_mb(cfg, work / "out")
    base, peak = runs["one"], runs["nasty"]
    size = sum(len(m.raw) for m in heavy) / 1e6
    print(f"peak RSS: 1 message {base:.0f} MB, nasty x{HEAVY_COPIES} ({size:.0f} MB) {peak:.0f} MB")
    assert peak - base < MEMORY_BOUND_MB, (base, peak)


def test_peak_memory_does_not_grow_with_header_size(tmp_path: Path, dns: object) -> None:
    """300 messages with a 1 MB header line each: MAX_HEADER_BYTES should bound what is kept."""
    nasty = {m.name: m for m in nasty_messages()}
    runs = {}
    for label, msgs in (("one", [nasty["plain"]]), ("big", [nasty["1mb-header-line"]] * 300)):
        work = tmp_path / label
        work.mkdir()
        write_maildir(work / "maildir", msgs)
        roles = {"ham": ["INBOX"], "spam": ["Junk"]}
        # header-only modules: DNS thread pools would add noise to what is measured here
        cfg = local_config(work, dns, work / "maildir", roles, ["received", "internal"])
        runs[label] = _child_peak_rss_mb(cfg, work / "out")
    print(f"peak RSS: 1 message {runs['one']:.0f} MB, 300 x 1 MB headers {runs['big']:.0f} MB")
    assert runs["big"] - runs["one"] < 120, runs


def _no_header(raw: bytes) -> bool:
    """Malformed by an oracle independent of mailstats: the email package finds no field."""
    return not email.message_from_bytes(raw, policy=email.policy.compat32).keys()


def edge_case_maildir(root: Path) -> dict[str, tuple[int, int]]:
    """The corpus' .eml files as a Maildir: ham -> INBOX, spam -> Junk, unlabeled -> Other.

    Returns (messages, malformed) per folder.
    """
    folder_of = {"ham": "INBOX", "spam": "Junk", "unlabeled": "Other"}
    counts: Counter[str] = Counter()
    malformed: Counter[str] = Counter()
    with (CORPUS / "manifest.csv").open(newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            folder = folder_of[row["label"]]
            box = root if folder == "INBOX" else root / f".{folder}"
            for sub in ("cur", "new", "tmp"):
                (box / sub).mkdir(parents=True, exist_ok=True)
            raw = (CORPUS / row["file"]).read_bytes()
            (box / "cur" / f"{1700000000 + i:010d}.edge{i:05d}.host:2,S").write_bytes(raw)
            counts[folder] += 1
            malformed[folder] += _no_header(raw)
    return {f: (n, malformed[f]) for f, n in counts.items()}


@pytest.mark.corpus
def test_edge_case_corpus_every_message_counted(tmp_path: Path, dns: object) -> None:
    if not (CORPUS / "manifest.csv").exists():
        pytest.skip(f"corpus not present at {CORPUS}")
    store = tmp_path / "maildir"
    counts = edge_case_maildir(store)
    assert sum(n for n, _ in counts.values()) >= 300
    roles = {"ham": ["INBOX", "Other"], "spam": ["Junk"]}
    cfg = local_config(tmp_path, dns, store, roles)
    out = tmp_path / "out"
    assert run_batch(str(cfg), str(out), quiet=True) == 0
    # e.g. sa_t_spam/bsmtp.eml starts with an SMTP transcript: malformed, but counted
    check_outputs(out, counts)
