"""Rebuild the bundled demo (mailstats/demo/): mailbox, accounts file, DNS snapshot, expectations.

    python scripts/build_demo.py

The demo must run offline, so its DNS answers are recorded once: the generated zone is served
by a real dnsmasq, mailstats runs over the demo mailbox against it, and every answer it
cached is written to dns_snapshot.json, which `mailstats demo` preloads into a fresh cache.
expected.json holds the generator's own counts; tests/test_demo.py checks the offline demo
reproduces them exactly.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from servers import Dns  # noqa: E402

from fixtures.generator import generate_mailbox  # noqa: E402
from mailstats.cli import run_batch  # noqa: E402
from mailstats.run.cache import Cache  # noqa: E402

DEMO = ROOT / "mailstats" / "demo"
SEED, HAM, SPAM, SENT = 7, 120, 80, 30


def accounts_toml(box, dns_line: str) -> str:
    ident = box.identity
    roles: dict[str, list[str]] = {"ham": [], "spam": [], "sent": []}
    for folder, role in box.roles.items():
        roles[role].append(folder)
    lines = [
        "# The bundled demo: a generated mailbox of one user, Dana Whitfield.",
        "# `mailstats demo` runs it offline, DNS answers preloaded from dns_snapshot.json.",
        "[settings]",
        dns_line,
        "dns_timeout = 0.5",
        *(f"{k} = {json.dumps(v)}" for k, v in box.settings.items()),
        "",
        "[[accounts]]",
        'name = "demo"',
        'path = "mail"',
        f"address = {json.dumps(ident['address'])}",
        f"full_name = {json.dumps(ident['full_name'])}",
        f"own_domains = {json.dumps(list(ident['own_domains']))}",
        f"trusted_relays = {json.dumps(list(ident['trusted_relays']))}",
        *(f"{role} = {json.dumps(folders)}" for role, folders in roles.items() if folders),
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    box = generate_mailbox(SEED, HAM, SPAM, SENT, dns_failures=False)
    if DEMO.exists():
        shutil.rmtree(DEMO)
    DEMO.mkdir(parents=True)
    box.write_mbox(DEMO / "mail")
    # Offline by design: nothing listens on the discard port, every answer comes preloaded.
    (DEMO / "accounts.toml").write_text(accounts_toml(box, 'dns_servers = ["127.0.0.1:9"]'))
    counts = [
        {"folder": f, "check": c, "matched": m, "applicable": a, "total": t}
        for (f, c), (m, a, t) in sorted(box.expected_counts(box.checks()).items())
    ]
    (DEMO / "expected.json").write_text(json.dumps(counts, indent=1) + "\n")

    work = Path(tempfile.mkdtemp(prefix="msdemo"))
    dns = Dns.start(box.dns_records)
    try:
        online = work / "accounts.toml"
        text = accounts_toml(box, f"dns_servers = [{json.dumps(dns.server_spec)}]")
        online.write_text(text.replace('path = "mail"', f"path = {json.dumps(str(DEMO / 'mail'))}"))
        cache = work / "cache.sqlite"
        rc = run_batch(str(online), str(work / "out"), cache=str(cache), quiet=True)
        if rc != 0:
            raise SystemExit(f"the online demo run failed with exit code {rc}")
        c = Cache(cache)
        entries = c.export_dns()
        c.close()
    finally:
        dns.cleanup()
    (DEMO / "dns_snapshot.json").write_text(json.dumps(entries, indent=0) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print(f"demo written to {DEMO}: {len(box.messages())} messages, {len(entries)} DNS answers")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
