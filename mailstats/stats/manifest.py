"""manifest.json: what produced a set of outputs, so a result can be traced and compared.

Its keys are a stable format (docs/formats.md): they only ever grow. Settings and account
names go in; secrets never do.
"""

from __future__ import annotations

import time
from typing import Any

from mailstats import __version__
from mailstats.run.results import RunResult


def _receivers(account: Any) -> dict[str, int]:
    """Messages per recognised receiving provider ("unrecognised": none was)."""
    out: dict[str, int] = {}
    for f in account.folders:
        for name, n in getattr(f, "receivers", {}).items():
            out[name] = out.get(name, 0) + n
    return dict(sorted(out.items()))


def manifest(result: RunResult, outputs: list[str]) -> dict[str, Any]:
    """The manifest of a run that wrote `outputs`; names and settings, never secrets."""
    settings = {k: v for k, v in result.settings.items() if "password" not in k.lower()}
    return {
        "mailstats_version": __version__,
        "started": result.started.isoformat(),
        "finished": result.finished.isoformat(),
        "elapsed_s": round((result.finished - result.started).total_seconds(), 3),
        "settings": settings,
        "modules": {m.name: m.version for m in result.modules},
        "checks": result.checks,
        "extras": result.extras,
        "network_checks": [
            f"{m.name}.{c}" for m in result.modules if m.evidence == "now" for c in m.checks
        ],
        "accounts": [
            {
                "name": a.name,
                "labels": a.labels,
                "status": a.status,
                "error": a.error,
                "needs_signin": a.needs_signin,
                "receivers": _receivers(a),
                "folders": [
                    {
                        "folder": f.folder,
                        "role": f.role,
                        "total": f.total,
                        "processed": f.processed,
                        "malformed": f.malformed,
                        "fetched": f.fetched,
                        "evaluated": f.evaluated,
                        "errors": f.errors,
                        "unavailable": f.unavailable,
                    }
                    for f in a.folders
                ],
            }
            for a in result.accounts
        ],
        "counts": {
            "messages": sum(f.total for a in result.accounts for f in a.folders),
            "malformed": sum(f.malformed for a in result.accounts for f in a.folders),
            "unavailable": sum(f.unavailable for a in result.accounts for f in a.folders),
            "module_errors": sum(
                sum(f.errors.values()) for a in result.accounts for f in a.folders
            ),
        },
        "dns": result.dns_stats,
        "dns_trust": result.dns_trust,
        "fetch": result.fetch_stats,
        "module_counters": result.module_counters,
        "module_cost": module_cost(result),
        "warnings": result.warnings,
        "outputs": outputs,
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "plots": result.plots,
    }


def module_cost(result: RunResult) -> dict[str, dict[str, float]]:
    """Per module: what one message cost it in this run, so a slow module shows at a glance.

    `us_per_message` is wall time inside the module's prefetch and evaluate (a module that
    waits on DNS one query at a time shows it here); the batch's shared concurrent DNS wait
    is the "_dns_prefetch" row, and "_fetch" holds the bytes read from the source.
    """
    out: dict[str, dict[str, float]] = {}
    for name, c in result.module_cost.items():
        if name.startswith("_"):
            row: dict[str, float] = {k: v for k, v in c.items() if k != "ns"}
            if "ns" in c:
                row["seconds"] = round(c["ns"] / 1e9, 3)
            out[name] = row
            continue
        n = max(1, c.get("messages", 0))
        out[name] = {
            "messages": c.get("messages", 0),
            "seconds": round(c.get("ns", 0) / 1e9, 3),
            "us_per_message": round(c.get("ns", 0) / 1e3 / n, 1),
            "dns_names_per_message": round(c.get("dns_names", 0) / n, 3),
            "fetch_bytes_per_message": round(c.get("fetch_bytes", 0) / n, 1),
        }
    return out
