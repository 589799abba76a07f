#!/usr/bin/env python3
"""The original study's 22 mailboxes pooled by `mailstats study`, screenshot headless.

Usage: python scripts/screenshot_study.py [--out docs/screenshots/study.png] [--keep DIR]

Each mailbox becomes a results folder like `mailstats --batch` writes (summary.csv and
manifest.json) with the original's inbox and spam sizes and, for received.from_match and
received.sender_match, the original's own per-mailbox counts (its tables 5.1 and 5.2); the
other checks get per-mailbox rates scattered around typical values. Then the real chain:
`mailstats share` per mailbox, `mailstats study` over the 22 bundles, chromium on study.html.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

SIZES = [
    (435, 186), (1631, 976), (133, 145), (1703, 207), (1072, 0), (857, 0), (365, 61),
    (212, 137), (358, 61), (566, 141), (2187, 0), (351, 0), (202, 1), (151, 0), (352, 0),
    (1119, 21), (1047, 0), (1104, 39), (1237, 0), (416, 73), (1638, 0), (1334, 2),
]  # fmt: skip
# The original's tables: per mailbox, matched messages (ham, spam).
FROM_MATCH = [
    (255, 16), (1431, 212), (101, 33), (1451, 77), (738, 0), (665, 0), (289, 20), (159, 51),
    (221, 13), (513, 51), (1897, 0), (322, 0), (196, 0), (132, 0), (281, 0), (721, 11),
    (551, 0), (984, 15), (757, 0), (300, 31), (837, 0), (919, 0),
]  # fmt: skip
SENDER_MATCH = [
    (16, 0), (63, 5), (1, 0), (71, 0), (27, 0), (42, 0), (21, 0), (1, 1), (10, 0), (1, 1),
    (15, 0), (6, 0), (2, 0), (1, 0), (24, 0), (198, 0), (245, 0), (27, 1), (160, 0), (10, 0),
    (384, 0), (282, 0),
]  # fmt: skip
# check -> (P(True | ham), P(True | spam)), scattered per mailbox
OTHER = {
    "dnsbl.listed": (0.03, 0.45),
    "dkim.valid": (0.70, 0.25),
    "spf.pass": (0.80, 0.35),
    "friends.from_friend": (0.35, 0.02),
    "images.has_image": (0.30, 0.50),
    "dynamic.origin_dynamic": (0.04, 0.40),
}


def make_results(path: Path, number: int, rng: random.Random) -> Path:
    n_ham, n_spam = SIZES[number - 1]
    path.mkdir(parents=True, exist_ok=True)
    rows = []
    for check, table in (("received.from_match", FROM_MATCH), ("received.sender_match",
                                                              SENDER_MATCH)):  # fmt: skip
        ham, spam = table[number - 1]
        rows.append(["m", "INBOX", "ham", check, ham, n_ham, n_ham])
        rows.append(["m", "Junk", "spam", check, spam, n_spam, n_spam])
    for check, (p_ham, p_spam) in OTHER.items():
        for folder, role, n, p in (("INBOX", "ham", n_ham, p_ham), ("Junk", "spam", n_spam,
                                                                     p_spam)):  # fmt: skip
            q = min(0.99, max(0.01, rng.gauss(p, 0.08)))
            applicable = n - round(n * 0.02 * rng.random())
            matched = sum(rng.random() < q for _ in range(applicable))
            rows.append(["m", folder, role, check, matched, applicable, n])
    with (path / "summary.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["account", "folder", "role", "check", "matched", "applicable", "total"])
        w.writerows(rows)
    checks = list(dict.fromkeys(r[3] for r in rows))
    manifest = {
        "mailstats_version": "0.1.0",
        "modules": {c.split(".")[0]: "1" for c in checks},
        "checks": checks,
        "settings": {"dnsbl_zones": ["zen.spamhaus.org"]},
        "accounts": [{"name": "m", "labels": "hand", "status": "ok", "folders": []}],
    }
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def main() -> None:
    from screenshot_report import screenshot

    from mailstats.cli import main as cli

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots" / "study.png")
    ap.add_argument("--keep", type=Path, help="work here instead of a temporary dir")
    ap.add_argument("--height", type=int, default=1500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        rng = random.Random(22)
        bundles = []
        for number in range(1, len(SIZES) + 1):
            results = make_results(work / f"mailbox{number}", number, rng)
            bundle = work / "bundles" / f"mailbox{number}.zip"
            rc = cli(["share", str(results), "--out", str(bundle), "--yes",
                      "--label", str(number)])  # fmt: skip
            if rc != 0:
                raise SystemExit(f"share failed for mailbox {number}")
            bundles.append(str(bundle))
        if cli(["study", *bundles, "--out", str(work / "study")]) != 0:
            raise SystemExit("study failed")
        screenshot(work / "study" / "study.html", args.out, height=args.height)
    print(args.out)


if __name__ == "__main__":
    main()
