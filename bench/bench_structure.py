"""Benchmark: the MIME structure of real messages, full email parse vs the light scan.

    python bench/bench_structure.py [--repeat 5]

Over every file of ../shared/corpus (real and edge cases), CPU per message of (a) a full
email-package (compat32) parse plus the leaf walk local stores used before, and (b)
mailstats.mail.structure.parts_from_bytes; best of `--repeat` passes each. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from test_structure import reference  # noqa: E402

from mailstats.mail.structure import parts_from_bytes  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args(argv)
    files = [
        f for f in sorted(CORPUS.rglob("*")) if f.is_file() and f.suffix not in (".csv", ".md")
    ]
    raws = [f.read_bytes() for f in files]

    def full() -> None:
        for raw in raws:
            reference(raw)  # the full parse and the leaf walk

    def scan() -> None:
        for raw in raws:
            parts_from_bytes(raw)

    figures: dict[str, object] = {"messages": len(raws)}
    for name, fn in (("email_package", full), ("light_scan", scan)):
        best = min(_cpu(fn) for _ in range(a.repeat))
        figures[f"{name}_us_per_msg"] = round(best / len(raws) * 1e6, 1)
    figures["speedup"] = round(
        figures["email_package_us_per_msg"] / figures["light_scan_us_per_msg"],
        1,  # type: ignore[operator]
    )
    figures["load_average"] = os.getloadavg()[0]
    print(json.dumps(figures, indent=2))
    return 0


def _cpu(fn) -> float:  # noqa: ANN001
    t = time.process_time()
    fn()
    return time.process_time() - t


if __name__ == "__main__":
    raise SystemExit(main())
