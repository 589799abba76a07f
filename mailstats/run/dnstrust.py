"""The run's DNS verdict, decided once for every module: figures, honesty, what the user sees.

Why it looks like this:
- The resolver of the engine and those of its worker processes each count and judge what
  they saw; their reports are merged here, once, at the end of a run.
- When the resolver lied (services/dns_trust.py), no module decides anything from DNS: every
  column a module declares in `dns_columns` becomes unknown in every folder of the run (also
  for messages evaluated before the lie was found out), the counts are redone, and the
  cached results of those modules are dropped so the next run evaluates them again (the
  resolver's answers are dropped too). One warning says so on the terminal, in the
  manifest (`dns_trust`) and in the GUI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailstats.run.counting import count_folder

if TYPE_CHECKING:
    from mailstats.modules import Module
    from mailstats.run.engine import AccountResult, Engine

#: Summed across processes; everything else in a resolver's stats is summed too.
_FLAGS = ("dead", "tried")


def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from the engine's and its workers' resolver reports."""
    stats: dict[str, int] = {}
    out: dict[str, Any] = {"verdict": "", "reason": "", "probe": "", "dead": False, "tried": False}
    for rep in reports:
        for k, v in rep.get("stats", {}).items():
            stats[k] = stats.get(k, 0) + int(v)
        for flag in _FLAGS:
            out[flag] = out[flag] or bool(rep.get(flag))
        if rep.get("verdict") and not out["verdict"]:
            out["verdict"], out["reason"] = rep["verdict"], rep.get("reason", "")
        if rep.get("probe") and out["probe"] in ("", "timeout"):
            out["probe"] = rep["probe"]
    out["stats"] = stats
    return out


def dns_columns(modules: list[Module]) -> dict[str, list[str]]:
    return {m.name: [c for c in m.dns_columns] for m in modules if m.dns_columns}


def trust_summary(merged: dict[str, Any], resolver: str, modules: list[Module]) -> dict[str, Any]:
    """The manifest's `dns_trust`: ok | unverified | unchecked | unreachable | failing | lying."""
    if merged["verdict"]:
        status = "lying"
    elif merged["dead"] and merged["tried"]:
        status = "unreachable"
    elif merged["tried"] and _failures(merged["stats"]) and not _answers(merged["stats"]):
        status = "failing"  # it answers, but never with an answer
    elif not merged["tried"]:
        status = "unchecked"  # every answer came from the cache: nothing was asked
    elif merged["probe"] == "nxdomain":
        status = "ok"
    else:
        status = "unverified"  # the probe failed: honesty could not be shown
    checks = [f"{m.name}.{c}" for m in modules for c in m.checks if c in m.dns_columns]
    return {
        "status": status,
        "resolver": resolver,
        "verdict": merged["verdict"],
        "reason": merged["reason"],
        "probe": merged["probe"],
        "unknown_checks": checks if status == "lying" else [],
        "failures": _failures(merged["stats"]) if status == "failing" else {},
    }


_ANSWERS = ("ok", "nxdomain", "nodata")
_FAILURES = ("servfail", "refused", "error", "timeout", "cname_loop", "incomplete")


def _answers(stats: dict[str, int]) -> int:
    return sum(stats.get(k, 0) for k in _ANSWERS)


def _failures(stats: dict[str, int]) -> dict[str, int]:
    return {k: stats[k] for k in _FAILURES if stats.get(k)}


def warning_for(trust: dict[str, Any]) -> str:
    if trust["status"] == "lying":
        return (
            f"DNS: {trust['reason']}. Every DNS-derived check "
            f"({', '.join(trust['unknown_checks'])}) is unknown for this run and none of its "
            "answers were kept. Set settings.dns_servers to a resolver that answers honestly."
        )
    if trust["status"] == "unreachable":
        return (
            f"DNS: no answer from {trust['resolver']}; DNS-derived checks are unknown where "
            "the cache held no answer. Check settings.dns_servers."
        )
    if trust["status"] == "failing":
        seen = ", ".join(f"{n} {k}" for k, n in trust["failures"].items())
        return (
            f"DNS: every DNS look-up to {trust['resolver']} failed ({seen}); DNS-derived "
            "checks are unknown for this run. Check settings.dns_servers."
        )
    return ""


def settle(engine: Engine, accounts: list[AccountResult]) -> tuple[dict[str, int], dict[str, Any]]:
    """The run's DNS figures and verdict; applies a lying verdict to every folder."""
    resolver = engine.resolver
    resolver.settle()
    merged = merge_reports([resolver.report(), *engine.dns_reports()])
    trust = trust_summary(merged, resolver.description, engine.modules)
    if trust["status"] == "lying":
        if not resolver.lying:
            resolver.adopt({"verdict": merged["verdict"], "reason": merged["reason"]})
        resolver.forget()
        columns = dns_columns(engine.modules)
        for acct in accounts:
            for fr in acct.folders:
                # the table as counted, read before its DNS results are forgotten: what the
                # outputs show is it with the DNS checks unknown
                table = fr.table if fr.table is not None or not fr.uids else engine.table_for(fr)
                for name in columns:
                    engine.cache.forget_results(acct.name, fr.folder, name)
                if table is None:
                    continue
                fr.table = table
                for name, cols in columns.items():
                    for c in cols:
                        key = f"{name}.{c}"
                        if key in table.columns:
                            table.columns[key] = [None] * len(table.uids)
                count_folder(fr, table, engine.modules)
    text = warning_for(trust)
    if text and text not in engine.warnings:
        engine.warnings.append(text)
    return merged["stats"], trust
