#!/usr/bin/env python3
"""Render report.html from a realistic generated results dir and screenshot it headless.

Usage: python scripts/screenshot_report.py [--out docs/screenshots/report.png] [--keep DIR]

The results dir imitates `mailstats --batch` output (summary.csv, messages.csv,
manifest.json) for six mailboxes with the per-check rates one sees in practice, some without a
spam folder like half of the original study's 22 mailboxes. Chromium runs with networking
features off; the report has no external resources anyway.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BASE = ["account", "folder", "role", "uid", "message_id", "date", "from_address", "origin_ip"]

# check -> (P(True | ham), P(True | spam), P(None)); roughly what real mailboxes show.
CHECKS: dict[str, tuple[float, float, float]] = {
    "received.from_match": (0.78, 0.15, 0.02),
    "received.sender_match": (0.40, 0.05, 0.9),
    "dnsbl.listed": (0.02, 0.45, 0.05),
    "dkim.signed": (0.85, 0.40, 0.0),
    "dkim.valid": (0.70, 0.25, 0.03),
    "dkim.aligned": (0.60, 0.10, 0.03),
    "spf.pass": (0.80, 0.35, 0.05),
    "auth.dkim_pass": (0.82, 0.30, 0.2),
    "attachments.has_attachment": (0.12, 0.08, 0.0),
    "images.has_image": (0.30, 0.55, 0.0),
    "friends.from_friend": (0.35, 0.01, 0.0),
    "reply.in_reply_to_sent": (0.15, 0.0, 0.0),
    "domain.from_domain_exists": (0.99, 0.80, 0.02),
    "dynamic.origin_dynamic": (0.03, 0.40, 0.05),
    "personal.to_has_name": (0.55, 0.20, 0.0),
}
NETWORK = ["dnsbl.listed", "dkim.valid", "spf.pass", "domain.from_domain_exists"]
ACCOUNTS = {  # name -> (ham, spam, sent, labels)
    "work": (900, 420, 150, "hand"),
    "home": (600, 180, 60, "hand"),
    "university": (1100, 35, 200, "provider"),
    "lists & archives": (400, 90, 0, "hand"),
    "old-isp": (350, 0, 40, "hand"),
    "family": (220, 0, 30, "hand"),
}


def make_results_dir(path: Path, seed: int = 7) -> Path:
    """Write summary.csv, messages.csv and manifest.json like `mailstats --batch` does."""
    rng = random.Random(seed)
    path.mkdir(parents=True, exist_ok=True)
    checks = list(CHECKS)
    extras = ["datetime.hour", "datetime.weekday", "datetime.skew_s", "age_days"]
    counts: dict[tuple[str, str, str, str], list[int]] = {}
    manifest_accounts = []
    uid = 0
    with open(path / "messages.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(BASE + checks + extras)
        for acc_i, (account, (n_ham, n_spam, n_sent, labels)) in enumerate(ACCOUNTS.items()):
            folders = []
            bias = rng.uniform(-0.08, 0.08)  # mailboxes differ: the scatter is not a dot
            for folder, role, n in (
                ("INBOX", "ham", n_ham),
                ("Junk", "spam", n_spam),
                ("Sent", "sent", n_sent),
            ):
                if n == 0:
                    continue
                folders.append(
                    {
                        "folder": folder,
                        "role": role,
                        "total": n,
                        "processed": n,
                        "malformed": rng.randrange(3),
                        "errors": 0,
                    }
                )
                for _ in range(n):
                    uid += 1
                    age = rng.expovariate(1 / 300)
                    cells = []
                    for check, (p_ham, p_spam, p_none) in CHECKS.items():
                        key = (account, folder, role, check)
                        c = counts.setdefault(key, [0, 0, n])
                        p = p_spam if role == "spam" else p_ham
                        if role == "sent":
                            p = 0.9 if check.startswith(("dkim", "spf", "received")) else 0.1
                        if check in NETWORK and age > 365:
                            p *= 0.6  # keys rotated, listings expired
                        p = min(1.0, max(0.0, p + bias))
                        if rng.random() < p_none:
                            cells.append("")
                            continue
                        val = rng.random() < p
                        c[1] += 1
                        c[0] += val
                        cells.append("1" if val else "0")
                    if role == "spam":
                        hour = int(rng.triangular(0, 24, 4)) % 24
                    else:
                        hour = int(rng.gauss(13, 3.5)) % 24
                    w.writerow(
                        [
                            account,
                            folder,
                            role,
                            uid,
                            f"<{uid}.{acc_i}@mail.example>",
                            f"2024-05-01T{hour:02d}:00:00+00:00",
                            f"user{uid % 97}@sender{uid % 13}.example",
                            f"198.51.100.{uid % 250}",
                        ]
                        + cells
                        + [hour, rng.randrange(7), round(rng.gauss(5, 30), 1), round(age, 1)]
                    )
            manifest_accounts.append(
                {
                    "name": account,
                    "labels": labels,
                    "status": "ok",
                    "error": None,
                    "folders": folders,
                }
            )
    with open(path / "summary.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["account", "folder", "role", "check", "matched", "applicable", "total"])
        for (account, folder, role, check), (m, a, t) in counts.items():
            w.writerow([account, folder, role, check, m, a, t])
    manifest = {
        "mailstats_version": "0.1.0",
        "started": "2024-06-01T09:00:00+00:00",
        "finished": "2024-06-01T09:04:12+00:00",
        "settings": {"dns_servers": ["127.0.0.1:5353"], "dnsbl_zones": ["zen.spamhaus.org"]},
        "modules": {c.split(".")[0]: "1" for c in checks} | {"datetime": "1"},
        "checks": checks,
        "extras": extras,
        "network_checks": NETWORK,
        "plots": {"hour_of_day": "datetime.hour"},
        "accounts": manifest_accounts,
        "outputs": ["summary.csv", "messages.csv", "manifest.json"],
    }
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return path


def screenshot(html: Path, png: Path, width: int = 1280, height: int = 3000) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium not found (apt-get install -y chromium)")
    png.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--screenshot={png}",
            f"--window-size={width},{height}",
            html.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def main() -> None:
    from mailstats.stats.report import write_report

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots" / "report.png")
    ap.add_argument("--keep", type=Path, help="write the results dir here instead of a temp dir")
    ap.add_argument("--height", type=int, default=3000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = make_results_dir(args.keep or Path(tmp) / "results")
        report = write_report(results)
        screenshot(report, args.out, height=args.height)
    print(args.out)


if __name__ == "__main__":
    main()
