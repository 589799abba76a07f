"""Benchmark: the Received parser on hostile 256 KiB headers and on ordinary mail.

    python bench/bench_received.py [--kib 256] [--repeat 5]

For every regex path of mailstats/mail/received.py there is a generated worst case (the
shape that makes that pattern, or the code around it, do the most work). Each is timed two
ways, best of --repeat: the whole `parse_received` call, and the pattern alone applied to the
full input exactly as the parser applies it, at 1/4 of the size too, so the ratio shows the
growth (about 4 when linear, 16 when quadratic). Then the mean CPU time per header on the
generated fixture mailbox and on ../shared/corpus when present. Prints one JSON object.
tests/test_received_linear.py runs the same cases with loose bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from mailstats.mail import dates, received  # noqa: E402
from mailstats.mail.received import Hop, parse_received  # noqa: E402

KIB = 1024


def _fill(unit: str, size: int, prefix: str = "", suffix: str = "") -> str:
    room = max(0, size - len(prefix) - len(suffix))
    return prefix + (unit * (room // len(unit) + 1))[:room] + suffix


def _host(helo: str) -> str:
    return Hop(raw="", helo=helo).host


def _word(value: str) -> str:
    """The long word the case is built around (a HELO, an rDNS) without its frame."""
    return max(value.replace("(", " ").split(), key=len)


def _window(pattern: Callable[[str], object]) -> Callable[[str], object]:
    return lambda v: pattern(v[-received._DATE_WINDOW :])


# name -> (unit, prefix, suffix, the pattern as the parser applies it)
WORST: dict[str, tuple[str, str, str, Callable[[str], object]]] = {
    "control-bytes": ("\x00a\x01", "from ", " by y", lambda v: v.translate(received._CONTROL)),
    "folding": ("a\t\r\n", "from ", " by y", lambda v: received._SPACES.sub(" ", v)),
    "words": ("a ", "from ", "", lambda v: received._TOKEN.findall(v)),
    "keywords": ("by ", "from x ", "", lambda v: received._TOKEN.findall(v)),
    "keyword-prefixes": ("byx withy ", "from ", "", lambda v: received._TOKEN.findall(v)),
    "open-parens": ("(a", "from x ", " by y", received._comment_spans),
    "deep-nesting": ("(", "from x ", ")" * 64, received._comment_spans),
    "many-comments": ("() ", "from x ", " by y", received._comment_spans),
    "helo-marks": ("(HELO a) ", "from x ", " by y", lambda v: received._HELO_MARK.search(v)),
    "helo-near-miss": (' "hel', "from x (", ") by y", lambda v: received._HELO_MARK.search(v)),
    "brackets": ("[1", "from x (", ") by y", lambda v: list(received._BRACKET.finditer(v))),
    "long-literal": ("1", "from x ([", ") by y", lambda v: list(received._BRACKET.finditer(v))),
    "port-shapes": (
        "[1.1.1.1:1 ",
        "from x (",
        ") by y",
        lambda v: [received._address(w) for w in v.split()],
    ),
    "fqdn-dashes": (
        "a-",
        "from ",
        "! (u [1.2.3.4]) by y",
        lambda v: received._is_fqdn(_word(v)),
    ),
    "fqdn-dots": ("a.", "from ", "- (u [1.2.3.4]) by y", lambda v: _host(_word(v))),
    "hostname": (
        "a.-",
        "from x (",
        "- [1.2.3.4]) by y",
        lambda v: received._HOSTNAME.fullmatch(_word(v)),
    ),
    "loose-date": (
        "1 Jan 2020 1:00 ",
        "by x ",
        ";x",
        _window(lambda v: received._LOOSE_DATE.search(v)),
    ),
    "postfix-fast": (
        "a",
        "from ",
        " (b [1.2.3.4]) by c (Postfix) with ESMTP id X",
        lambda v: received._POSTFIX_FAST.fullmatch(v),
    ),
    "postfix-near-miss": ("1", "from a (b [", "", lambda v: received._POSTFIX_FAST.fullmatch(v)),
    "date-tail": ("1 ", "from x by y; ", "", _window(dates.parse_date)),
    "date-parens": ("(", "from x by y; ", "", _window(dates.parse_date)),
    "exim-id": (
        "a",
        "from x ([1.2.3.4]) by y with esmtp id ",
        "",
        lambda v: received._EXIM_ID.match(v),
    ),
}


def case(name: str, size: int) -> str:
    unit, prefix, suffix, _ = WORST[name]
    return _fill(unit, size, prefix, suffix)


def best(fn: Callable[[str], object], value: str, repeat: int) -> float:
    out = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(value)
        out = min(out, time.perf_counter() - start)
    return out


def _hop_all(value: str) -> None:
    hop = parse_received(value)
    _ = hop.host  # Hop.host checks the HELO is a FQDN: part of what a caller pays


def measure(size: int, repeat: int) -> dict[str, dict[str, float]]:
    rows: dict[str, dict[str, float]] = {}
    for name, (_, _, _, pattern) in WORST.items():
        full, quarter = case(name, size), case(name, size // 4)
        rows[name] = {
            "parse_ms": round(best(_hop_all, full, repeat) * 1000, 2),
            "pattern_ms": round(best(pattern, full, repeat) * 1000, 2),
            "pattern_quarter_ms": round(best(pattern, quarter, repeat) * 1000, 3),
        }
    return rows


def per_header() -> dict[str, float]:
    from fixtures.generator import generate_mailbox
    from mailstats.mail.message import Message

    sets = {"generated": [m.raw for m in generate_mailbox(5, 300, 200, 0).messages()]}
    corpus = ROOT.parent / "shared" / "corpus"
    if corpus.is_dir():
        sets["corpus"] = [p.read_bytes() for p in sorted(corpus.rglob("*.eml"))]
    out: dict[str, float] = {}
    for label, raws in sets.items():
        lines = [v for raw in raws for v in Message("a", "f", 1, raw).raw_header_all("Received")]
        start = time.perf_counter()
        for _ in range(3):
            for line in lines:
                parse_received(line)
        out[f"{label}_us_per_header"] = round(
            (time.perf_counter() - start) / 3 / len(lines) * 1e6, 2
        )
        out[f"{label}_headers"] = len(lines)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kib", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    result = {
        "size_bytes": args.kib * KIB,
        "load_average": round(os.getloadavg()[0], 2),
        "worst_cases": measure(args.kib * KIB, args.repeat),
        **per_header(),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
