"""Benchmark: one analysis worker's evaluation, alone, so that two versions compare fairly.

    python bench/bench_worker.py [-n 3000] [--modules default] [--repeat 5]
    valgrind --tool=callgrind python bench/bench_worker.py --repeat 1   # instruction counts

On this shared virtual machine the same run's CPU seconds differ by 15-35 % from one hour to
the next, which hides a 10 % change in the whole-run benchmarks (bench_imap.py). This times
only what a worker process does with a batch (parse, evaluate every module, store the new
headers), over generated mail whose DNS zone unbound serves, in this one process: best and
median of `--repeat` batches, each of fresh messages (so no per-message cache is warm).
Under valgrind the time follows the instructions run, not the neighbours; run the old and
the new checkout's copy of this script (`python OTHER/bench/bench_worker.py`: it imports the
checkout it is in, whatever PYTHONPATH says) one after the other and compare.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.unbound import Unbound  # noqa: E402
from fixtures.generator import SETTINGS, generate_mailbox  # noqa: E402
from fixtures.zone import DnsRecords  # noqa: E402
from mailstats.accounts.config import parse_config  # noqa: E402
from mailstats.mail.message import parts_to_json  # noqa: E402
from mailstats.modules import BODY, RAW, available_modules  # noqa: E402
from mailstats.run import analysis  # noqa: E402
from mailstats.run.analysis import Batch  # noqa: E402
from mailstats.testing import message  # noqa: E402


def batch_of(raws: list[bytes], first_uid: int, modules: list) -> Batch:
    """A batch as the engine hands it to a worker: header rows, and the body text or raw
    message for the messages a module wants it for."""
    rows, items = [], {BODY: {}, RAW: {}}
    for uid, raw in enumerate(raws, first_uid):
        msg = message(raw, uid=uid)
        rows.append((uid, msg.header_bytes, parts_to_json(msg.parts), msg.size))
        for item in (BODY, RAW):
            if any(item in m.needs and m.wants(msg, item) for m in modules):
                data = (msg.body_text or "").encode() if item == BODY else msg.raw_bytes
                items[item][uid] = (data or b"", item == RAW and msg.raw_truncated)
    uids = [r[0] for r in rows]
    work = {"_core": uids, **{m.name: uids for m in modules}}
    return Batch("bench", "INBOX", "ham", rows, items, work, store_rows=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=3000, help="messages per batch")
    p.add_argument("--modules", default="default", help="comma-separated, or 'default'")
    p.add_argument("--repeat", type=int, default=5, help="batches, each of fresh messages")
    a = p.parse_args(argv)
    registry = available_modules(plugins=False)
    names = registry.defaults() if a.modules == "default" else a.modules.split(",")
    records = DnsRecords()
    # Raw bytes only: the worker's start-up freezes what exists then, and a real worker's
    # batches come later (not frozen).
    batches = []
    for i in range(a.repeat):
        box = generate_mailbox(101 + i, a.n * 3 // 5, a.n - a.n * 3 // 5, 0, False)
        records.extend(box.dns_records)
        batches.append([m.raw for m in box.messages()])
    del box
    dns = Unbound.start(records, local_ttl=0)
    work = Path(tempfile.mkdtemp(prefix="msworker"))
    try:
        settings = {"dns_servers": [dns.server_spec], "modules": names,
                    "cache": str(work / "cache.sqlite"), **SETTINGS}  # fmt: skip
        account = {"name": "bench", "path": str(work), "ham": ["INBOX"],
                   "address": "dana@example.org"}  # fmt: skip
        cfg = parse_config({"settings": settings, "accounts": [account]}, require_roles=False)
        classes = [registry.by_name(n) for n in names]
        stop = multiprocessing.get_context("spawn").Event()
        analysis._worker_init(cfg, cfg.accounts[0], None, classes, settings["cache"], None, stop)
        modules = analysis._WORKER.modules[1:]
        per_msg = []
        for i, raws in enumerate(batches):
            batch = batch_of(raws, 1 + i * a.n, modules)
            t0 = time.process_time()
            analysis._worker_evaluate(batch)
            per_msg.append((time.process_time() - t0) / batch.size * 1e6)
        print(json.dumps({
            "messages_per_batch": a.n, "modules": names,
            "us_per_message_best": round(min(per_msg), 1),
            "us_per_message_median": round(statistics.median(per_msg), 1),
            "us_per_message_all": [round(x, 1) for x in per_msg],
        }, indent=2))  # fmt: skip
    finally:
        dns.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
