"""Command line: `mailstats --batch FILE --out DIR`, `mailstats report DIR`, `mailstats demo`.

Exit codes are a contract for scripts: 0 every account ran, 1 some account failed (the others
still ran and were written, and the failure is named), 2 usage or accounts-file errors.
Without arguments the desktop window opens (when PySide6 is installed).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from mailstats import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mailstats",
        description="Which mail header signals separate ham from spam in your mailboxes. "
        "Without arguments, opens the desktop window.",
    )
    p.add_argument("--version", action="version", version=f"mailstats {__version__}")
    p.add_argument("--batch", metavar="FILE", help="run headless over the accounts file FILE")
    p.add_argument(
        "--out", metavar="DIR", default="results", help="output folder (default: results)"
    )
    p.add_argument("--cache", metavar="PATH", help="cache file (overrides settings.cache)")
    p.add_argument("--modules", metavar="LIST", help="comma-separated modules to run")
    p.add_argument("--account", action="append", metavar="NAME", help="run only this account")
    p.add_argument("--report", action="store_true", help="also write report.html")
    p.add_argument(
        "--anonymize",
        action="store_true",
        help="replace addresses, domains, IPs and Message-IDs in messages.csv with keyed tokens",
    )
    p.add_argument(
        "--jobs", "-j", type=int, metavar="N", help="run up to N accounts at once (settings.jobs)"
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="one task per account on a Dask cluster, e.g. tcp://host:8786 (settings.scheduler)",
    )
    p.add_argument(
        "--plan",
        action="store_true",
        help="print which accounts run where and their folders' message counts; fetch nothing",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress, no table")
    p.add_argument("--verbose", "-v", action="store_true", help="log details to stderr")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    r = sub.add_parser("report", help="write report.html from a results folder")
    r.add_argument("results", metavar="RESULTS_DIR")
    r.add_argument(
        "--output", metavar="FILE", help="where to write (default RESULTS_DIR/report.html)"
    )
    d = sub.add_parser("demo", help="run on the bundled demo mailbox (offline)")
    d.add_argument("--out", dest="demo_out", metavar="DIR", default="demo-results")
    d.add_argument("--quiet", "-q", dest="demo_quiet", action="store_true", help="no table")
    d.add_argument(
        "--report", dest="demo_report", action="store_true", help="also write report.html"
    )
    sub.add_parser("modules", help="list the header modules")
    si = sub.add_parser("signin", help="OAuth2 sign-in for an account (stores a refresh token)")
    si.add_argument("accounts_file", metavar="FILE")
    si.add_argument("name", metavar="ACCOUNT")
    si.add_argument("--device", action="store_true", help="device code instead of a browser")
    si.add_argument("--forget", action="store_true", help="sign out: delete the stored token")
    from mailstats.study.commands import add_parsers as add_study_parsers

    add_study_parsers(sub)
    f = sub.add_parser("folders", help="list an account's folders with guessed roles")
    f.add_argument("accounts_file", metavar="FILE")
    f.add_argument("name", metavar="ACCOUNT")
    return p


def main(argv: list[str] | None = None) -> int:
    """Every entry point (console script, `python -m mailstats`, the desktop window)."""
    from mailstats.crash import guarded

    return guarded(_main, sys.argv[1:] if argv is None else argv)


def _main(argv: list[str]) -> int:
    from mailstats.crash import doing

    doing("reading the command line")
    parser = build_parser()
    if not argv:
        doing("running the desktop window")
        return _open_gui(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code not in (0, None) else EXIT_OK
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    doing(f"running {'mailstats ' + args.command if args.command else 'the batch'}")
    if args.command == "report":
        return _report(args.results, args.output)
    if args.command == "demo":
        return _demo(args.demo_out, args.demo_report, args.quiet or args.demo_quiet)
    if args.command == "modules":
        return _list_modules()
    if args.command == "signin":
        from mailstats.accounts.oauth import main as signin

        extra = [f for f, on in (("--device", args.device), ("--forget", args.forget)) if on]
        return signin([args.accounts_file, args.name, *extra])
    if args.command in ("share", "study"):
        from mailstats.study import commands

        return commands.share(args) if args.command == "share" else commands.study(args)
    if args.command == "folders":
        return _folders(args.accounts_file, args.name)
    if args.batch:
        return run_batch(
            args.batch,
            args.out,
            cache=args.cache,
            modules=args.modules,
            only=args.account,
            report=args.report,
            anonymize=args.anonymize,
            quiet=args.quiet,
            jobs=args.jobs,
            scheduler=args.scheduler,
            plan=args.plan,
        )
    parser.print_help()
    return EXIT_USAGE


def _err(msg: str) -> None:
    print(f"mailstats: {msg}", file=sys.stderr)


def _open_gui(parser: argparse.ArgumentParser) -> int:
    """The window; one line and exit 2 where it cannot open (never Qt's abort)."""
    from mailstats.gui.display import HEADLESS, display_problem

    problem = display_problem()
    if problem is not None:
        _err(problem)
        return EXIT_USAGE
    try:
        from mailstats.gui.app import main as gui_main
    except ImportError as exc:  # a broken install: PySide6 is a dependency
        _err(f"the desktop window needs PySide6 ({exc}): pip install mailstats; {HEADLESS}")
        return EXIT_USAGE
    return gui_main()


def run_batch(
    accounts_file: str,
    out_dir: str,
    *,
    cache: str | None = None,
    modules: str | None = None,
    only: list[str] | None = None,
    report: bool = False,
    anonymize: bool = False,
    quiet: bool = False,
    dns_snapshot: Path | None = None,
    jobs: int | None = None,
    scheduler: str | None = None,
    plan: bool = False,
) -> int:
    from mailstats.accounts.config import ConfigError, load_config
    from mailstats.crash import doing
    from mailstats.run.cache import Cache, CacheError
    from mailstats.run.engine import Engine
    from mailstats.stats.export import check_out_dir, write_outputs

    if not plan:
        doing(f"checking the output folder {out_dir}")
        problem = check_out_dir(out_dir)
        if problem:
            _err(problem)
            return EXIT_USAGE
    try:
        doing(f"reading the accounts file {accounts_file}")
        cfg = load_config(accounts_file)
        if cache:
            cfg.settings.cache = cache
        if modules:
            cfg.settings.modules = [m.strip() for m in modules.split(",") if m.strip()]
        accounts = cfg.accounts
        if only:
            unknown = set(only) - {a.name for a in accounts}
            if unknown:
                raise ConfigError(f"{accounts_file}: no account named {', '.join(sorted(unknown))}")
            accounts = [a for a in accounts if a.name in only]
        doing("opening the cache")
        cache_obj = Cache(cfg.settings.cache or None)
        if dns_snapshot is not None:
            _load_snapshot(cache_obj, dns_snapshot, cfg.settings.dns_servers)
        engine = Engine(cfg, cache=cache_obj)
        engine.keep_tables = False  # the outputs read each folder's table back, one at a time
        engine.warnings.extend(cache_obj.warnings)  # printed at the end, and in the manifest
    except (ConfigError, CacheError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    except ValueError as exc:  # unknown module names
        _err(f"{accounts_file}: {exc}")
        return EXIT_USAGE
    for problem in engine.registry.problems:
        _err(problem)
    jobs = jobs or int(cfg.settings.extra.get("jobs", 1) or 1)
    scheduler = scheduler or cfg.settings.extra.get("scheduler") or None
    if plan:
        return _plan(cfg, accounts, jobs, scheduler)
    if scheduler and importlib.util.find_spec("distributed") is None:
        _err(
            f"--scheduler {scheduler} needs dask.distributed, which is not installed: "
            "pip install 'mailstats[cluster]'"
        )
        engine.cache.close()
        return EXIT_USAGE
    reporter = ProgressReporter(quiet=quiet, accounts=len(accounts))
    cancel = threading.Event()
    results: Any = None
    doing("running the accounts")
    try:
        with reporter:
            if scheduler:
                from mailstats.run.parallel import run_dask

                engine.cache.close()
                result, results = run_dask(cfg, accounts, scheduler, progress=reporter)
            elif jobs > 1 and len(accounts) > 1:
                from mailstats.run.parallel import run_threads

                result, results = run_threads(cfg, accounts, jobs, reporter, cancel)
            else:
                result = engine.run(accounts, progress=reporter, cancel=cancel)
                results = engine.results(result)
                results.store = engine.cache  # messages.csv's rows kept for the next run
    except KeyboardInterrupt:
        cancel.set()
        _err("interrupted; what was fetched is cached, run again to resume")
        return EXIT_FAILED
    except (OSError, RuntimeError) as exc:  # cluster unreachable, optional extra missing
        _err(str(exc))
        return EXIT_FAILED
    run_info = {"jobs": 1 if scheduler else jobs, "scheduler": scheduler}
    doing(f"writing the outputs to {out_dir}")
    written = write_outputs(results, result, out_dir, run_info=run_info)
    results.close()
    if anonymize:
        written += _anonymize(Path(out_dir))
    if report:
        rc = _report(out_dir, None, announce=False)
        if rc != EXIT_OK:
            return rc
        written.append("report.html")
    if not quiet:
        print_table(result)
        print_ranking(result)
        print(f"\nwrote {', '.join(written)} to {out_dir}/")
    for w in result.warnings:
        _err(f"warning: {w}")
    failed = [a for a in result.accounts if a.status in ("failed", "partial")]
    for a in failed:
        _err(f"account {a.name!r} {a.status}: {a.error}")
    engine.cache.close()
    return EXIT_FAILED if failed else EXIT_OK


def _plan(cfg: Any, accounts: list[Any], jobs: int, scheduler: str | None) -> int:
    """Where each account would run and how much mail its mapped folders hold (STATUS)."""
    from mailstats.accounts.config import resolve_password
    from mailstats.sources import SourceError, open_source, source_options

    where = f"cluster {scheduler}" if scheduler else f"this machine, {jobs} at a time"
    print(f"{len(accounts)} account(s), on {where}")
    rc = EXIT_OK
    for acct in accounts:
        roles = acct.roles()
        try:
            password = "" if acct.is_local else resolve_password(acct)
            src = open_source(acct, password, **source_options(cfg.settings))
            counts = src.folder_counts(list(roles))
            src.close()
        except SourceError as exc:
            print(f"  {acct.name}: cannot connect: {exc}")
            rc = EXIT_FAILED
            continue
        total = sum(n or 0 for n in counts.values())
        detail = ", ".join(
            f"{f} ({roles[f]}) {'?' if counts.get(f) is None else counts[f]}" for f in roles
        )
        print(f"  {acct.name}: {total} messages: {detail}")
    return rc


def _load_snapshot(cache: Any, path: Path, servers: list[str]) -> None:
    import json

    from mailstats.services.dns import resolver_key

    entries = json.loads(path.read_text(encoding="utf-8"))
    cache.import_dns(
        entries, expires=time.time() + 10 * 365 * 86400, resolver=resolver_key(servers or None)
    )


def _anonymize(out: Path) -> list[str]:
    from mailstats.stats.anonymize import anonymize_messages_csv, load_or_create_key

    key = load_or_create_key()
    anonymize_messages_csv(out / "messages.csv", out / "messages.csv", key)
    return []


def print_table(result: Any) -> None:
    """Per folder, the original's "From match count : 1512/1631" lines."""
    checks = result.checks
    width = max((len(c) for c in checks), default=10)
    for acct in result.accounts:
        status = "" if acct.status == "ok" else f"  [{acct.status}: {acct.error}]"
        print(f"\n== {acct.name}{status}")
        for fr in acct.folders:
            extra = f", {fr.malformed} malformed" if fr.malformed else ""
            if getattr(fr, "unavailable", 0):
                extra += f", {fr.unavailable} unavailable (listed, not fetched)"
            print(f"{fr.folder} ({fr.role}): {fr.total} messages{extra}")
            for check in checks:
                matched, applicable = fr.counts.get(check, [0, 0])
                na = f"   (applicable {applicable})" if applicable != fr.total else ""
                print(f"  {check:<{width}} : {matched}/{fr.total}{na}")
            for module, n in sorted(fr.errors.items()):
                print(f"  errors in {module}: {n}")


class ProgressReporter:
    """A rich progress bar on a terminal, plain lines otherwise (logs, CI)."""

    def __init__(self, quiet: bool = False, accounts: int = 0) -> None:
        self.quiet = quiet
        self.accounts = accounts
        self.finished = 0
        self.tty = sys.stderr.isatty()
        self._progress: Any = None
        self._tasks: dict[tuple[str, str, str], Any] = {}
        self._last = 0.0

    def __enter__(self) -> ProgressReporter:
        if not self.quiet and self.tty:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                transient=False,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, p: Any) -> None:
        if self.quiet:
            return
        label = f"{p.account} {p.folder} {p.phase}".strip()
        if p.phase == "finished":
            self.finished += 1
        if self._progress is not None:
            if p.phase == "finished" and self.accounts > 1:
                task = self._tasks.get(("", "", "all"))
                if task is None:
                    task = self._progress.add_task("all accounts", total=self.accounts)
                    self._tasks[("", "", "all")] = task
                self._progress.update(task, completed=self.finished)
                return
            if p.phase in ("connect", "done", "finished"):
                return
            key = (p.account, p.folder, p.phase)
            task = self._tasks.get(key)
            if task is None:
                task = self._progress.add_task(label, total=max(p.total, 1))
                self._tasks[key] = task
            self._progress.update(task, completed=p.done if p.total else 1, total=max(p.total, 1))
            return
        now = time.monotonic()
        final = p.done == p.total
        if final or now - self._last > 5:
            self._last = now
            if p.phase == "finished":
                print(
                    f"{p.account}: {p.message} ({self.finished}/{self.accounts or '?'} accounts)",
                    file=sys.stderr,
                    flush=True,
                )
            elif p.phase != "done":
                print(f"{label}: {p.done}/{p.total}", file=sys.stderr, flush=True)


def print_ranking(result: Any, top: int = 5) -> None:
    """The best separating checks over every mailbox, with their Wilson 95 % intervals, in
    the order indicators.csv ranks them (the conservative score: see indicators.py)."""
    try:
        from mailstats.stats.indicators import MIN_DECIDED, compute_indicators
    except ImportError:  # built without the statistics module
        return
    from mailstats.stats.export import SUMMARY_COLUMNS, summary_rows

    rows = [dict(zip(SUMMARY_COLUMNS, r, strict=True)) for r in summary_rows(result)]
    ranked = [
        r for r in compute_indicators(rows) if r["scope"] == "all" and r["rank_score"] is not None
    ]
    if not ranked:
        print("\nRanking: no check was decided on both ham and spam messages.")
        return
    print(
        "\nRanking over all mailboxes (ham % and spam % with Wilson 95 % intervals;\n"
        "score: information gain at the intervals' near ends, in bits):"
    )
    width = max(len(r["check"]) for r in ranked[:top])

    def rate(r: dict[str, Any], role: str) -> str:
        p, lo, hi = r[f"{role}_rate"], r[f"{role}_rate_low"], r[f"{role}_rate_high"]
        return f"{role} {100 * p:5.1f} % [{100 * lo:5.1f}-{100 * hi:5.1f}]"

    for i, r in enumerate(ranked[:top], 1):
        few = f"  few messages (< {MIN_DECIDED} in a class)" if r["few_messages"] else ""
        print(
            f"  {i}. {r['check']:<{width}}  {rate(r, 'ham')}  {rate(r, 'spam')}  "
            f"score {r['rank_score']:.3f}{few}"
        )
    if len(ranked) > top:
        print(f"  ... {len(ranked) - top} more in indicators.csv")


def _report(results: str, output: str | None, announce: bool = True) -> int:
    try:
        from mailstats.stats.report import write_report
    except ImportError as exc:
        _err(
            f"the report needs matplotlib and scikit-learn: pip install 'mailstats[report]' ({exc})"
        )
        return EXIT_USAGE
    if not (Path(results) / "summary.csv").exists():
        _err(f"{results}: no summary.csv here; run mailstats --batch first")
        return EXIT_USAGE
    path = write_report(results, output)
    if announce:
        print(f"wrote {path}")
    return EXIT_OK


def _list_modules() -> int:
    from mailstats.modules import available_modules

    reg = available_modules()
    for m in reg.modules:
        flag = " (opt-in)" if m.opt_in else ""
        if m.name in reg.plugins:
            flag = " (plug-in, available: runs when named in settings)"
        print(f"{m.name:<14} v{m.version}{flag}  {m.description}")
        for c in m.checks:
            print(f"    {m.name}.{c}")
        for st in m.settings:
            print(f"    setting {st.flat_key(m.name)} ([modules.{m.name}] {st.name}): {st.help}")
    if reg.plugins:
        print("\nplug-ins: " + ", ".join(f"{n} from {o}" for n, o in reg.plugins.items()))
    for p in reg.problems:
        _err(p)
    return EXIT_OK


def _folders(accounts_file: str, name: str) -> int:
    from mailstats.accounts.config import ConfigError, load_config, resolve_password
    from mailstats.sources import SourceError, guess_role, open_source, source_options

    try:
        # Listing is how a user decides the mapping: an account with none mapped yet is fine.
        cfg = load_config(accounts_file, require_roles=False)
    except ConfigError as exc:
        _err(str(exc))
        return EXIT_USAGE
    acct = next((a for a in cfg.accounts if a.name == name), None)
    if acct is None:
        _err(f"{accounts_file}: no account named {name!r}")
        return EXIT_USAGE
    try:
        password = "" if acct.is_local else resolve_password(acct)
        src = open_source(acct, password, **source_options(cfg.settings))
        folders = src.list_folders()
        counts = src.folder_counts([f.name for f in folders if f.selectable])
        src.close()
    except SourceError as exc:
        _err(str(exc))
        return EXIT_FAILED
    mapped = acct.roles()
    for f in folders:
        role = mapped.get(f.name) or guess_role(f) or "-"
        n = counts.get(f.name)
        print(f"{f.name:<40} {'' if n is None else n:>7}  {role:<5} {' '.join(f.flags)}")
    return EXIT_OK


def demo_dir() -> Path:
    return Path(__file__).resolve().parent / "demo"


def _demo(out: str, report: bool, quiet: bool) -> int:
    """The bundled demo: generated mbox files, offline DNS from a bundled snapshot, a
    throw-away cache (the demo always runs cold)."""
    import tempfile

    d = demo_dir()
    accounts = d / "accounts.toml"
    if not accounts.exists():
        _err(f"the demo mailbox is missing from this install ({d})")
        return EXIT_USAGE
    with tempfile.TemporaryDirectory(prefix="mailstats-demo-") as tmp:
        return run_batch(
            str(accounts),
            out,
            cache=os.path.join(tmp, "cache.sqlite"),
            report=report,
            quiet=quiet,
            dns_snapshot=d / "dns_snapshot.json",
        )
