"""Benchmark: CPU per real message, mailstats against SpamAssassin on the same mail.

    python bench/bench_corpus.py [--copies 10] [--repeat 3] [--no-spamassassin]

The real messages of ../shared/corpus/real (ham and spam; the ten backscatter files are left
out) are written as two mbox files, repeated `--copies` times so start-up is amortised, and
each tool runs over them in a child process whose CPU (user + system, its own analysis
workers included) is read from the kernel's accounting of reaped children:
  - mailstats, the modules that need only the header (received, auth, attachments,
    datetime, reply, friends, internal, list);
  - mailstats, the default module set;
  both with dnsmasq from the test suite as the resolver, serving bench/corpus_zone.py's
  world where the corpus's names exist (a server that answers NXDOMAIN to all of them is
  judged lying, and a run then skips all its DNS work: every run here stops with an error
  unless its manifest says the resolver was trusted);
  - SpamAssassin 4 (Debian package): `spamassassin --mbox -L`, Bayes and auto-learning off.
Per-message CPU is the marginal cost: (CPU at N copies - CPU at 1 copy) / (extra messages),
so interpreter start-up and rule compilation do not count for either tool; the total per
message is printed as well. Prints one JSON object; docs/benchmarks.md records the figures.

The marginal figure is a difference of two runs, and on a shared machine one pair of runs
differs from the next by a fifth (the first of a series is the slowest), SpamAssassin's by
up to half between runs minutes apart. So `--repeat N` takes N rounds; each round runs
mailstats' pairs and then SpamAssassin's, and the ratio is taken within the round, where
both saw the same machine. Reported: the median of each figure and of the per-round ratios,
with every value (`marginal_all`, `spamassassin_ratio_all`).
"""

from __future__ import annotations

import argparse
import json
import os
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


def corpus_files(label: str = "") -> list[Path]:
    """The corpus's messages of one label, or of both (ham first)."""
    return [f for lab in ([label] if label else ["ham", "spam"])
            for f in sorted((CORPUS / lab).glob("*.eml"))]  # fmt: skip


def write_mboxes(dest: Path, copies: int) -> int:
    """ham.mbox and spam.mbox with every corpus message `copies` times; returns the count."""
    dest.mkdir(parents=True, exist_ok=True)
    n = 0
    for label in ("ham", "spam"):
        files = corpus_files(label)
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


def mailstats_run(
    work: Path, store: Path, modules: list[str] | None, dns: str
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
    figures = cpu_of(cmd, env=dict(os.environ, PYTHONPATH=str(ROOT)))
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--copies", type=int, default=10)
    p.add_argument("--no-spamassassin", action="store_true")
    p.add_argument("--repeat", type=int, default=3, help="rounds (mailstats' pairs, then SA's)")
    a = p.parse_args(argv)
    if not CORPUS.is_dir():
        raise SystemExit(f"corpus not found at {CORPUS}")
    work = Path(tempfile.mkdtemp(prefix="mscorpus"))
    dns = Dns.start(corpus_zone(f.read_bytes() for f in corpus_files()))
    try:
        one, many = work / "one", work / "many"
        n1 = write_mboxes(one, 1)
        nn = write_mboxes(many, a.copies)
        figures: dict[str, object] = {"messages_1": n1, "messages_n": nn, "copies": a.copies}
        runs = {"mailstats_header_only": HEADER_ONLY, "mailstats_default": None}
        with_sa = not a.no_spamassassin
        if with_sa and shutil.which("spamassassin") is None:
            raise SystemExit("spamassassin not installed (apt-get install -y spamassassin)")
        # SpamAssassin is ~100x slower: two copies give its marginal cost well enough
        two = work / "two"
        n2 = write_mboxes(two, 2) if with_sa else 0
        pairs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
        sa_pairs: list[tuple[float, float]] = []
        for _ in range(max(1, a.repeat)):
            for name, modules in runs.items():
                c1, _ = mailstats_run(work, one, modules, dns.server_spec)
                cn, wn = mailstats_run(work, many, modules, dns.server_spec)
                pairs[name].append((c1, cn, wn))
            if with_sa:
                sa_pairs.append((spamassassin_run(work, one)[0], spamassassin_run(work, two)[0]))
        sa_marginals = [(c2 - c1) / (n2 - n1) * 1000 for c1, c2 in sa_pairs]
        for name, got in pairs.items():
            marginals = [(cn - c1) / (nn - n1) * 1000 for c1, cn, _ in got]
            c1, cn, wn = got[marginals.index(statistics.median_low(marginals))]
            figures[name] = {
                "cpu_s_1": round(c1, 2),
                "cpu_s_n": round(cn, 2),
                "wall_s_n": round(wn, 2),
                "total_ms_per_msg": round(cn / nn * 1000, 3),
                "marginal_ms_per_msg": round(statistics.median(marginals), 3),
                "marginal_all": [round(m, 3) for m in marginals],
            }
            if sa_marginals:
                ratios = [sa / ms for sa, ms in zip(sa_marginals, marginals, strict=True)]
                figures[name]["spamassassin_ratio"] = round(statistics.median(ratios), 1)
                figures[name]["spamassassin_ratio_all"] = [round(r, 1) for r in ratios]
        if sa_pairs:
            c1, c2 = sa_pairs[sa_marginals.index(statistics.median_low(sa_marginals))]
            figures["spamassassin"] = {
                "version": subprocess.run(
                    ["spamassassin", "--version"], capture_output=True, text=True
                ).stdout.splitlines()[0],  # fmt: skip
                "cpu_s_1": round(c1, 2),
                "cpu_s_2": round(c2, 2),
                "total_ms_per_msg": round(c1 / n1 * 1000, 3),
                "marginal_ms_per_msg": round(statistics.median(sa_marginals), 3),
                "marginal_all": [round(m, 3) for m in sa_marginals],
            }
        figures["load_average"] = os.getloadavg()[0]
        print(json.dumps(figures, indent=2))
    finally:
        dns.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
