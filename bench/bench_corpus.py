"""Benchmark: CPU per real message, mailstats against SpamAssassin on the same mail.

    python bench/bench_corpus.py [--copies 10] [--repeat 3] [--no-spamassassin]
    python bench/bench_corpus.py --instructions     # needs valgrind (apt-get install valgrind)

The real messages of ../shared/corpus/real (ham and spam; the ten backscatter files are left
out) are written as two mbox files, and each tool runs over them in a child process whose
CPU (user + system, its own analysis workers included) is read from the kernel's accounting
of reaped children:
  - mailstats, the modules that need only the header (received, auth, attachments,
    datetime, reply, friends, internal, list);
  - mailstats, the default module set;
  both with dnsmasq from the test suite as the resolver, serving bench/corpus_zone.py's
  world where the corpus's names exist (a server that answers NXDOMAIN to all of them is
  judged lying, and a run then skips all its DNS work: every run here stops with an error
  unless its manifest says the resolver was trusted);
  - SpamAssassin 4 (Debian package): `spamassassin --mbox -L`, Bayes and auto-learning off.
Per-message CPU is the marginal cost on distinct messages: (CPU over the whole corpus - CPU
over its first FIRST messages of each label) / (the messages between), so interpreter
start-up, rule compilation and the first use of every module do not count for either tool,
and no message is one the run has seen before. The total per message is printed as well.
Prints one JSON object; docs/benchmarks.md records the figures.

`--instructions` counts instead of timing: each mailstats command runs once under valgrind's
callgrind (PYTHONHASHSEED=0), and the marginal figure is machine instructions per distinct
message, the same (first, all) difference. Two runs of the same code differ by a few parts
per million, where CPU seconds differ by a fifth, so two checkouts compare at a glance (run
each one's copy of this script). It says nothing about the SpamAssassin ratio: a program
that waits on memory less runs faster on the same instructions, and the other way round.

Until the ninth session the marginal was taken over `--copies` repeated copies of the corpus:
each copy after the first met memos (SPF results, DNS answers, parsed addresses) filled by the
same messages a copy earlier, and cost a quarter less than a message seen for the first time.
`--copies N` still measures that, separately, as `repeated_ms_per_msg` (what a message costs
when the run has already read the same one, as in a mailbox where every message is in two
folders); the SpamAssassin ratio never uses it.

The marginal figure is a difference of two runs, and on a shared machine one pair of runs
differs from the next by a fifth, SpamAssassin's by up to half between runs minutes apart.
So each mailstats command runs RUNS times (its median counts), and `--repeat N` takes N
rounds; each round runs mailstats' pairs and then SpamAssassin's, and the ratio is taken
within the round, where both saw the same machine. Reported: the
median of each figure and of the per-round ratios, with every value (`marginal_all`,
`spamassassin_ratio_all`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from corpus_zone import corpus_zone  # noqa: E402
from servers import Dns  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "real"
HEADER_ONLY = ["received", "auth", "attachments", "datetime", "reply", "friends", "internal",
               "list"]  # fmt: skip


#: Messages of each label in the start-up run: enough that every module has run (and imported
#: what it imports) on some message, few enough to be a small part of the whole.
FIRST = 20
#: Runs of each mailstats command per round, the median taken: a mailstats run of the corpus
#: takes about a second and its CPU moved by a tenth from one run to the next, a fifth of
#: the difference the marginal cost is taken from.
RUNS = 5


def corpus_files(label: str = "") -> list[Path]:
    """The corpus's messages of one label, or of both (ham first)."""
    return [f for lab in ([label] if label else ["ham", "spam"])
            for f in sorted((CORPUS / lab).glob("*.eml"))]  # fmt: skip


def write_mboxes(dest: Path, copies: int, first: int = 0) -> int:
    """ham.mbox and spam.mbox with every corpus message (or the first `first` of each label)
    `copies` times; returns the count."""
    dest.mkdir(parents=True, exist_ok=True)
    n = 0
    for label in ("ham", "spam"):
        files = corpus_files(label)[:first] if first else corpus_files(label)
        with (dest / f"{label}.mbox").open("wb") as out:
            for _ in range(copies):
                for path in files:
                    raw = path.read_bytes().replace(b"\r\n", b"\n")
                    # Half of the files begin with their mbox From_ line: it is the message's
                    # separator (quoted as a body line, it hid the whole header).
                    separator = b"From bench@example.invalid Mon Jan  1 00:00:00 2024"
                    if raw.startswith(b"From "):
                        separator, _, raw = raw.partition(b"\n")
                    # mboxrd quoting, so a body line "From ..." cannot split the message
                    lines = [b">" + ln if ln.lstrip(b">").startswith(b"From ") else ln
                             for ln in raw.split(b"\n")]  # fmt: skip
                    out.write(separator + b"\n")
                    out.write(b"\n".join(lines).rstrip(b"\n") + b"\n\n")
                    n += 1
    return n


def cpu_of(cmd: list[str], stdin: Path | None = None, env: dict[str, str] | None = None
           ) -> tuple[float, float]:  # fmt: skip
    """(CPU seconds, wall seconds) of one child process and everything it waited for.

    The child runs in this checkout's directory: `python -m` puts the current directory
    ahead of PYTHONPATH, so started from another checkout it imported that one's code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(stdin, "rb") if stdin else open(os.devnull, "rb") as fh:
        proc = subprocess.run(cmd, stdin=fh, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env=env, cwd=ROOT, check=False)  # fmt: skip
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):  # spamassassin exits 1 when it found spam
        raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}): {proc.stderr[-1500:]!r}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def instructions_of(cmd: list[str], env: dict[str, str]) -> int:
    """Machine instructions one child process ran, counted by callgrind (no output file)."""
    vg = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    env = dict(env, PYTHONHASHSEED="0")  # the same dict and set orders in every run
    proc = subprocess.run([*vg, *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=env, cwd=ROOT, check=False, text=True)  # fmt: skip
    found = re.findall(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or not found:
        raise SystemExit(f"{cmd[:3]} under valgrind failed ({proc.returncode}): "
                         f"{proc.stderr[-1500:]!r}")  # fmt: skip
    return int(found[-1])


def mailstats_run(
    work: Path, store: Path, modules: list[str] | None, dns: str, count: bool = False
) -> tuple[float, float]:
    cfg = work / "accounts.toml"
    cache = work / "cache.sqlite"
    cache.unlink(missing_ok=True)
    mods = f"modules = {json.dumps(modules)}\n" if modules else ""
    cfg.write_text(
        f"[settings]\ndns_servers = [{json.dumps(dns)}]\n{mods}cache = {json.dumps(str(cache))}\n"
        f'\n[[accounts]]\nname = "corpus"\npath = {json.dumps(str(store))}\n'
        'ham = ["ham"]\nspam = ["spam"]\n'
    )
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "mailstats", "--batch", str(cfg), "--out", str(out), "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    figures = (instructions_of(cmd, env), 0.0) if count else cpu_of(cmd, env=env)
    trust = json.loads((out / "manifest.json").read_text()).get("dns_trust", {})
    if trust.get("status") != "ok":
        raise SystemExit(f"the run's resolver was not trusted, so it skipped its DNS: {trust}")
    return figures


def spamassassin_run(work: Path, store: Path) -> tuple[float, float]:
    cpu = wall = 0.0
    home = work / "sa-home"
    home.mkdir(exist_ok=True)
    for label in ("ham", "spam"):
        cmd = ["spamassassin", "--mbox", "-L", "--cf=use_bayes 0", "--cf=bayes_auto_learn 0",
               "--cf=use_auto_whitelist 0"]  # fmt: skip
        c, w = cpu_of(cmd, stdin=store / f"{label}.mbox", env=dict(os.environ, HOME=str(home)))
        cpu, wall = cpu + c, wall + w
    return cpu, wall


def mailstats_median(
    work: Path, store: Path, modules: list[str] | None, dns: str
) -> tuple[float, float]:
    """(CPU, wall) of the run of median CPU among RUNS runs of the same mailstats command."""
    got = sorted(mailstats_run(work, store, modules, dns) for _ in range(RUNS))
    return got[(RUNS - 1) // 2]


def _median_round(got: list[tuple[float, float, float]], n0: int, n1: int) -> dict[str, object]:
    """Figures of (cpu_small, cpu_big, wall_big) rounds: the median marginal and every one."""
    marginals = [(big - small) / (n1 - n0) * 1000 for small, big, _ in got]
    small, big, wall = got[marginals.index(statistics.median_low(marginals))]
    return {
        "cpu_s_first": round(small, 2),
        "cpu_s_all": round(big, 2),
        "wall_s_all": round(wall, 2),
        "total_ms_per_msg": round(big / n1 * 1000, 3),
        "marginal_ms_per_msg": round(statistics.median(marginals), 3),
        "marginal_all": [round(m, 3) for m in marginals],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--copies", type=int, default=0,
                   help="also time N copies: the cost of a message seen before")  # fmt: skip
    p.add_argument("--no-spamassassin", action="store_true")
    p.add_argument("--repeat", type=int, default=3, help="rounds (mailstats' pairs, then SA's)")
    p.add_argument("--instructions", action="store_true",
                   help="count instructions under callgrind instead (no SpamAssassin)")  # fmt: skip
    a = p.parse_args(argv)
    if not CORPUS.is_dir():
        raise SystemExit(f"corpus not found at {CORPUS}")
    work = Path(tempfile.mkdtemp(prefix="mscorpus"))
    dns = Dns.start(corpus_zone(f.read_bytes() for f in corpus_files()))
    try:
        first, whole, many = work / "first", work / "all", work / "many"
        n0 = write_mboxes(first, 1, FIRST)
        n1 = write_mboxes(whole, 1)
        nn = write_mboxes(many, a.copies) if a.copies > 1 else 0
        figures: dict[str, object] = {"messages_first": n0, "messages_all": n1}
        if nn:
            figures.update(copies=a.copies, messages_copies=nn)
        runs = {"mailstats_header_only": HEADER_ONLY, "mailstats_default": None}
        if a.instructions:
            if shutil.which("valgrind") is None:
                raise SystemExit("valgrind not installed (apt-get install -y valgrind)")
            for name, modules in runs.items():
                i0 = mailstats_run(work, first, modules, dns.server_spec, count=True)[0]
                i1 = mailstats_run(work, whole, modules, dns.server_spec, count=True)[0]
                figures[name] = {
                    "instructions_first": i0,
                    "instructions_all": i1,
                    "marginal_minstr_per_msg": round((i1 - i0) / (n1 - n0) / 1e6, 3),
                }
            figures["load_average"] = os.getloadavg()[0]
            print(json.dumps(figures, indent=2))
            return 0
        with_sa = not a.no_spamassassin
        if with_sa and shutil.which("spamassassin") is None:
            raise SystemExit("spamassassin not installed (apt-get install -y spamassassin)")
        pairs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
        repeated: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
        sa_pairs: list[tuple[float, float, float]] = []
        for _ in range(max(1, a.repeat)):
            for name, modules in runs.items():
                c0, _ = mailstats_median(work, first, modules, dns.server_spec)
                c1, w1 = mailstats_median(work, whole, modules, dns.server_spec)
                pairs[name].append((c0, c1, w1))
                if nn:
                    cn, wn = mailstats_run(work, many, modules, dns.server_spec)
                    repeated[name].append((c1, cn, wn))
            if with_sa:
                c0 = spamassassin_run(work, first)[0]
                c1, w1 = spamassassin_run(work, whole)
                sa_pairs.append((c0, c1, w1))
        sa = _median_round(sa_pairs, n0, n1) if sa_pairs else None
        for name, got in pairs.items():
            figures[name] = entry = _median_round(got, n0, n1)
            if nn:
                again = _median_round(repeated[name], n1, nn)
                entry["repeated_ms_per_msg"] = again["marginal_ms_per_msg"]
                entry["repeated_all"] = again["marginal_all"]
            if sa is not None:
                ratios = [s / m for s, m in zip(sa["marginal_all"], entry["marginal_all"],
                                                 strict=True)]  # fmt: skip
                entry["spamassassin_ratio"] = round(statistics.median(ratios), 1)
                entry["spamassassin_ratio_all"] = [round(r, 1) for r in ratios]
        if sa is not None:
            figures["spamassassin"] = {
                "version": subprocess.run(
                    ["spamassassin", "--version"], capture_output=True, text=True
                ).stdout.splitlines()[0],  # fmt: skip
                **sa,
            }
        figures["load_average"] = os.getloadavg()[0]
        print(json.dumps(figures, indent=2))
    finally:
        dns.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
