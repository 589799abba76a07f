"""`mailstats share` and `mailstats study`: the command-line side of study mode.

Exit codes as everywhere: 0 done, 1 refused by the participant, 2 usage or input errors
(a bundle that does not validate, duplicate bundle ids, a missing results folder).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _err(msg: str) -> None:
    print(f"mailstats: {msg}", file=sys.stderr)


def add_parsers(sub: Any) -> None:
    """The two subcommands, on cli.py's subparsers."""
    sh = sub.add_parser(
        "share",
        help="write an aggregate-only bundle of a results folder for a study",
        description="Write BUNDLE.zip with aggregate numbers only (counts per folder and "
        "check, hour and age histograms, module versions). Shows exactly what goes in and "
        "asks before writing.",
    )
    sh.add_argument("results", metavar="RESULTS_DIR")
    sh.add_argument("--out", dest="share_out", metavar="BUNDLE.zip", required=True)
    sh.add_argument(
        "--include-messages",
        action="store_true",
        help="add messages.csv, anonymized with your own key (which is never sent)",
    )
    sh.add_argument("--include-names", action="store_true", help="keep account and folder names")
    sh.add_argument("--account", dest="share_account", metavar="NAME", help="one account only")
    sh.add_argument("--label", default="", help="a name for this mailbox in the study")
    sh.add_argument("--yes", "-y", action="store_true", help="write without asking")
    st = sub.add_parser(
        "study",
        help="pool participants' bundles: mailboxes.csv, study.csv, study.html",
    )
    st.add_argument("bundles", metavar="BUNDLE", nargs="+")
    st.add_argument("--out", dest="study_out", metavar="DIR", required=True)
    st.add_argument("--no-model", action="store_true", help="skip the combined model")


def share(args: argparse.Namespace, stdin: TextIO | None = None) -> int:
    from mailstats.study.bundle import BundleError, build_bundle, preview, write_bundle

    stdin = stdin or sys.stdin
    try:
        bundle = build_bundle(
            args.results,
            account=args.share_account,
            label=args.label,
            include_names=args.include_names,
            include_messages=args.include_messages,
        )
    except (BundleError, OSError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    print(preview(bundle))
    if not args.yes:
        if not stdin.isatty():
            _err("not written: confirm on a terminal, or pass --yes after reading the above")
            return EXIT_USAGE
        answer = input(f"Write {args.share_out} with exactly this content? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing written.")
            return EXIT_FAILED
    path = write_bundle(bundle, args.share_out)
    print(f"wrote {path}")
    return EXIT_OK


def study(args: argparse.Namespace) -> int:
    from mailstats.study.bundle import BundleError, duplicate_ids, read_bundle

    bundles = []
    try:
        for p in args.bundles:
            bundles.append(read_bundle(p))
    except BundleError as exc:
        _err(str(exc))
        return EXIT_USAGE
    dups = duplicate_ids(bundles)
    if dups:
        for bid, first, again in dups:
            _err(
                f"{again} has the same bundle id as {first} ({bid}): the same mailbox would "
                "count twice. Give each bundle once (a participant re-sharing makes a new id; "
                "keep only the newer bundle)"
            )
        return EXIT_USAGE
    try:
        from mailstats.study.html import write_study_html
        from mailstats.study.pool import build_study, write_study_csvs
    except ImportError as exc:
        _err(f"the study needs statsmodels and matplotlib: pip install 'mailstats[report]' ({exc})")
        return EXIT_USAGE
    result = build_study(bundles)
    out = Path(args.study_out)
    written = write_study_csvs(result, out)
    write_study_html(result, out, fit=not args.no_model)
    written.append("study.html")
    for note in result.notes:
        _err(f"note: {note}")
    versions = sorted({str(b.data.get("mailstats_version")) for b in bundles})
    print(
        f"{len(bundles)} mailboxes pooled (mailstats {', '.join(versions)}); "
        f"{len(result.rows)} checks in study.csv"
    )
    print(f"wrote {', '.join(written)} to {out}/")
    return EXIT_OK
