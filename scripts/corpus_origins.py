"""Write fixtures/corpus_origins.csv: the expected origin IP of each message in
../shared/corpus/real, by rules written for that corpus that never call mailstats' parser.

The origin is the address of the hop that handed the message to the receiving provider.
Rules, applied to each unfolded Received header from the top:
- Mail received by Outlook.com (the top header's `by` host is under outlook.com): the hop
  written by Microsoft's inbound edge, `by *.mail.protection.outlook.com`; its sender's
  address is the "(a.b.c.d)" after the sender's name.
- Anything else: the first header whose sender part (between "from" and the first " by ")
  names a public address ([a.b.c.d], [IPv6:...], or Exchange's "(a.b.c.d)"); headers of POP/IMAP
  pick-ups and headers whose sender is private, loopback or absent belong to the receiving
  site itself and are passed over.
- OVERRIDES: messages read by hand where those rules are wrong, with the reason.
The output is our own derived data (file name, IP, rule), not a copy of the corpus.

    python scripts/corpus_origins.py [CORPUS_DIR]
"""

from __future__ import annotations

import csv
import email
import email.policy
import ipaddress
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "fixtures" / "corpus_origins.csv"

#: file -> (expected origin, why the general rule is overridden), decided by reading the file.
OVERRIDES: dict[str, tuple[str, str]] = {}

_BRACKET = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]")
_PAREN = re.compile(r"\(([0-9A-Fa-f:.]+)\)")
_BY = re.compile(r"\sby\s+([^\s;()]+)", re.I)


def _public(text: str) -> str:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return ""
    return str(addr) if addr.is_global else ""


def _sender_ip(line: str) -> str:
    """The public address in the sender part of one Received line, '' when none."""
    if not line.lower().startswith("from "):
        return ""
    cut = _BY.search(line)
    part = line[: cut.start()] if cut else line
    for rx in (_BRACKET, _PAREN):
        for m in rx.finditer(part):
            ip = _public(m.group(1))
            if ip:
                return ip
    return ""


def _by(line: str) -> str:
    m = _BY.search(" " + line)
    return m.group(1).lower().rstrip(".") if m else ""


def expected(lines: list[str]) -> tuple[str, str]:
    """(origin IP or '', rule name) for one message's Received lines, top first."""
    if lines and _by(lines[0]).endswith("outlook.com"):
        for line in lines:
            if _by(line).endswith(".mail.protection.outlook.com"):
                return _sender_ip(line), "outlook-edge"
        return "", "outlook-no-edge"
    for line in lines:
        if re.search(r"\swith\s+(?:IMAP|POP)", line, re.I):
            continue
        ip = _sender_ip(line)
        if ip:
            return ip, "first-public"
    return "", "no-public"


def received_lines(path: Path) -> list[str]:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
    return [" ".join(str(v).split()) for v in msg.get_all("Received") or []]


def main(corpus: Path) -> int:
    rows = []
    with (corpus / "manifest.csv").open(newline="") as fh:
        for item in csv.DictReader(fh):
            name = item["file"]
            ip, rule = expected(received_lines(corpus / name))
            if name in OVERRIDES:
                ip, rule = OVERRIDES[name][0], "hand: " + OVERRIDES[name][1]
            rows.append((name, ip, rule))
    OUT.parent.mkdir(exist_ok=True)
    with OUT.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["file", "origin", "rule"])
        w.writerows(sorted(rows))
    print(f"{len(rows)} messages -> {OUT}")
    return 0


if __name__ == "__main__":
    default = ROOT.parent / "shared" / "corpus" / "real"
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else default))
