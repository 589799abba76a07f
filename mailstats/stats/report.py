"""A self-contained HTML report from a `mailstats --batch` output directory.

One file, no external resources: plots are PNGs (matplotlib, Agg backend) embedded as base64
data URIs, so the report can be mailed or archived as is. Every string that comes from the
data (check, account and folder names, errors) is HTML-escaped. A plot without data is
replaced by a sentence saying so, never by an empty image.

Sections: run and labels; per-check ham vs spam rates (Wilson 95 %) ranked by the
conservative score (indicators.rank_score); per-mailbox scatter (the original study's figures
5.1-5.4) from 3 mailboxes on, a table below that; then, from messages.csv
(report_messages.py), hour of day per role, network checks by message age, pairwise overlap
of checks (phi) and the combined model.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from mailstats.stats.combined import (
    MessageTable,
    ModelResult,
    fit_models,
    load_messages,
    read_manifest,
)
from mailstats.stats.htmlkit import (
    CSS,
    MAX_SCATTER_PANELS,
    ROLE_COLOURS,
    fmt,
    html_table,
    img,
    no_data,
    plt_module,
)
from mailstats.stats.indicators import (
    MIN_DECIDED,
    compute_indicators,
    compute_mailboxes,
    read_summary,
)
from mailstats.stats.report_messages import (
    phi_matrix,
    section_age,
    section_hours,
    section_model,
    section_overlap,
)

__all__ = ["build_report_html", "labels_sentence", "phi_matrix", "write_report"]

RANKING_SENTENCE = (
    "How checks are ranked: by a conservative score, the information gain computed with the "
    "ham and spam rates moved to the ends of their Wilson 95 % intervals that lie closest to "
    "each other (0 when the intervals overlap). A check measured on a handful of messages has "
    "wide intervals and so cannot outrank one that separates ham from spam on many messages. "
    f"\u26a0 few: fewer than {MIN_DECIDED} decided messages in the ham or the spam class."
)
#: Below this many mailboxes a scatter plot says little; the per-mailbox table says it all.
MIN_SCATTER_MAILBOXES = 3

# --------------------------------------------------------------------------- sections


def _section_run(manifest: Mapping[str, Any]) -> str:
    if not manifest:
        return "<h2>Run</h2>" + no_data("No manifest.json: run details are unknown.")
    parts = ["<h2>Run</h2>"]
    facts = [
        ("mailstats", manifest.get("mailstats_version")),
        ("started", manifest.get("started")),
        ("finished", manifest.get("finished")),
    ]
    modules = manifest.get("modules") or {}
    if isinstance(modules, Mapping) and modules:
        facts.append(("modules", ", ".join(f"{k} {v}" for k, v in modules.items())))
    settings = manifest.get("settings") or {}
    if isinstance(settings, Mapping):
        for key in ("dns_servers", "dnsbl_zones"):
            if settings.get(key):
                value = settings[key]
                facts.append(
                    (key, ", ".join(map(str, value)) if isinstance(value, list) else value)
                )
    body = "".join(
        f'<tr><th class="l">{escape(k)}</th><td class="l">{escape(str(v))}</td></tr>'
        for k, v in facts
        if v
    )
    parts.append(f"<table><tbody>{body}</tbody></table>")
    rows = []
    for acc in manifest.get("accounts") or []:
        folders = acc.get("folders") or [{}]
        for i, f in enumerate(folders):
            rows.append(
                [
                    escape(str(acc.get("name", ""))) if i == 0 else "",
                    escape(str(acc.get("labels", ""))) if i == 0 else "",
                    escape(str(acc.get("status", ""))) if i == 0 else "",
                    escape(str(f.get("folder", ""))),
                    escape(str(f.get("role", ""))),
                    fmt(f.get("total")),
                    fmt(f.get("processed")),
                    fmt(f.get("malformed")),
                    _errors_cell(f.get("errors")),
                ]
            )
            if i == 0 and acc.get("error"):
                rows.append(
                    [f'<span class="small">error: {escape(str(acc["error"]))}</span>'] + [""] * 8
                )
    if rows:
        headers = ["account", "labels", "status", "folder", "role", "total", "processed"]
        parts.append(html_table(headers + ["malformed", "errors"], rows, left=5))
    return "".join(parts)


def _errors_cell(errors: Any) -> str:
    """Module errors as a count, with the per-module split when there are any."""
    if isinstance(errors, Mapping):
        counts = {str(k): int(v) for k, v in errors.items() if isinstance(v, int | float) and v}
        total = sum(counts.values())
        if not total:
            return "0"
        detail = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
        return f"{total} ({escape(detail)})"
    return fmt(errors)


def labels_sentence(manifest: Mapping[str, Any]) -> str:
    """Plain words on where the ham/spam labels come from, and what that implies."""
    accounts = manifest.get("accounts") or []
    provider = [str(a.get("name", "")) for a in accounts if a.get("labels") == "provider"]
    hand = [str(a.get("name", "")) for a in accounts if a.get("labels") == "hand"]
    if not accounts or (not provider and not hand):
        return (
            "Where the ham/spam labels come from is not recorded. If the spam folders are a "
            "provider's filter verdicts, the study is partly circular (see below)."
        )
    if not provider:
        return (
            "All labels are by hand: the ham and spam folders were sorted by a person, so the "
            "rates compare the checks against human judgement."
        )
    text = (
        "Labels for "
        + ", ".join(provider)
        + " come from the provider's spam filter (its Junk folder), not from a person. The "
        "study is then partly circular: checks the filter itself uses (DNSBL, SPF, DKIM, the "
        "provider's Authentication-Results) look better than they are, because they helped "
        "decide the label."
    )
    if hand:
        text += " Labels for " + ", ".join(hand) + " are by hand."
    return text


def _section_labels(manifest: Mapping[str, Any]) -> str:
    return f'<h2>Labels</h2><p class="note">{escape(labels_sentence(manifest))}</p>'


def _ranked_rates_plot(rows: list[dict[str, Any]]) -> str:
    rows = [r for r in rows if r["ham_rate"] is not None or r["spam_rate"] is not None]
    if not rows:
        return no_data("No check was applicable to any ham or spam message: nothing to plot.")
    plt = plt_module()
    names = [r["check"] for r in rows]
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(9.5, 0.42 * len(rows) + 1.4))
    for offset, role in ((-0.19, "ham"), (0.19, "spam")):
        rates = np.array(
            [np.nan if r[f"{role}_rate"] is None else 100 * r[f"{role}_rate"] for r in rows]
        )
        low = np.array(
            [
                0
                if r[f"{role}_rate"] is None
                else 100 * (r[f"{role}_rate"] - r[f"{role}_rate_low"])
                for r in rows
            ]
        )
        high = np.array(
            [
                0
                if r[f"{role}_rate"] is None
                else 100 * (r[f"{role}_rate_high"] - r[f"{role}_rate"])
                for r in rows
            ]
        )
        ax.barh(
            y + offset,
            np.nan_to_num(rates),
            height=0.36,
            color=ROLE_COLOURS[role],
            label=role,
            # CSV rounding can put a rate a hair outside its own bounds at 0 % or 100 %
            xerr=[np.clip(low, 0, None), np.clip(high, 0, None)],
            error_kw={"elinewidth": 1, "capsize": 2, "ecolor": "#333"},
        )
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("messages where the check is True, % of applicable (Wilson 95 % interval)")
    ax.legend(loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Ham vs spam match rate per check, ranked by the conservative score")
    return img(fig, "Ham and spam match rates per check")


def _section_indicators(indicators: list[dict[str, Any]]) -> str:
    parts = ["<h2>Which checks separate ham from spam</h2>"]
    pooled = [r for r in indicators if r["scope"] == "all"]
    if not pooled:
        return parts[0] + no_data("No summary.csv rows: nothing to compare.")
    parts.append(
        '<p class="small">All accounts\' ham and spam folders pooled. Rates are over the '
        "messages where the check could be decided; <em>S/O</em> is spam rate / (ham rate + "
        "spam rate) (1: only spam, 0: only ham, 0.5: no separation); information gain in bits; "
        "odds ratio above 1 points to spam (0.5 added to every cell when one is zero).</p>"
        f'<p class="note">{escape(RANKING_SENTENCE)}</p>'
    )
    parts.append(_ranked_rates_plot(pooled))

    def row(r: Mapping[str, Any]) -> list[str]:
        return [
            escape(r["check"]),
            f"{r['ham_matched']}/{r['ham_applicable']}",
            fmt(r["ham_rate"], pct=True),
            f"{r['spam_matched']}/{r['spam_applicable']}",
            fmt(r["spam_rate"], pct=True),
            fmt(r["so_ratio"], 2),
            fmt(r["info_gain"], 4),
            fmt(r["odds_ratio"], 2),
            fmt(r.get("rank_score"), 4) + (" &#9888; few" if r.get("few_messages") else ""),
        ]

    headers = ["check", "ham", "ham %", "spam", "spam %", "S/O", "info gain", "odds ratio"]
    headers.append("rank score")
    parts.append(html_table(headers, (row(r) for r in pooled)))
    scopes = list(dict.fromkeys(r["scope"] for r in indicators if r["scope"] != "all"))
    for scope in scopes:
        rows = [r for r in indicators if r["scope"] == scope]
        parts.append(
            f"<details><summary>Account {escape(scope)}</summary>"
            + html_table(headers, (row(r) for r in rows))
            + "</details>"
        )
    return "".join(parts)


def scatter_plots(mailboxes: list[dict[str, Any]]) -> str:
    """The original study's figures 5.1-5.4: per check, one point per mailbox (ham %, spam %).

    `mailboxes` are mailboxes.csv rows (account, check, *_pct, *_applicable); shared with
    study.html, where the account is a bundle's mailbox label.
    """
    checks = list(dict.fromkeys(r["check"] for r in mailboxes))
    points: dict[str, list[tuple[str, float, float, int]]] = {}
    for r in mailboxes:
        if r["ham_pct"] is not None and r["spam_pct"] is not None:
            n = r["ham_applicable"] + r["spam_applicable"]
            points.setdefault(r["check"], []).append((r["account"], r["ham_pct"], r["spam_pct"], n))
    plotted = [c for c in checks if c in points][:MAX_SCATTER_PANELS]
    missing = [c for c in checks if c not in points]
    if not plotted:
        return no_data(
            "No mailbox has both ham and spam messages where a check applies: no scatter plot."
        )
    plt = plt_module()
    ncols = min(4, len(plotted))
    nrows = math.ceil(len(plotted) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.1 * ncols, 3.0 * nrows), squeeze=False)
    label_points = max(len(p) for p in points.values()) <= 12
    for ax, check in zip(axes.flat, plotted, strict=False):
        pts = points[check]
        sizes = [12 + 60 * math.sqrt(p[3] / max(q[3] for q in pts)) for p in pts]
        ax.scatter([p[1] for p in pts], [p[2] for p in pts], s=sizes, alpha=0.75, color="#5e3c99")
        ax.plot([0, 100], [0, 100], ls="--", lw=0.8, color="#999")
        if label_points:
            for name, x, yv, _n in pts:
                ax.annotate(name, (x, yv), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_xlim(-3, 103)
        ax.set_ylim(-3, 103)
        ax.set_title(check, fontsize=9)
        ax.set_xlabel("ham %", fontsize=8)
        ax.set_ylabel("spam %", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(plotted) :]:
        ax.axis("off")
    fig.tight_layout()
    out = img(fig, "Per-mailbox ham % vs spam % for each check")
    if missing:
        out += no_data(
            "Not plotted (no mailbox with both classes applicable): " + ", ".join(missing)
        )
    return out


def mailbox_table(mailboxes: list[dict[str, Any]], label: str = "mailbox") -> str:
    """mailboxes.csv as a table: per mailbox and check, ham and spam matched / applicable."""

    def pct(v: Any) -> str:
        return "&ndash;" if v is None else f"{v:.1f} %"

    return html_table(
        [label, "check", "ham matched", "ham %", "spam matched", "spam %"],
        (
            [
                escape(str(r["account"])),
                escape(str(r["check"])),
                f"{r['ham_matched']}/{r['ham_applicable']}",
                pct(r["ham_pct"]),
                f"{r['spam_matched']}/{r['spam_applicable']}",
                pct(r["spam_pct"]),
            ]
            for r in mailboxes
        ),
        left=2,
    )


def _section_scatter(mailboxes: list[dict[str, Any]]) -> str:
    accounts = list(dict.fromkeys(r["account"] for r in mailboxes))
    parts = ["<h2>Per mailbox</h2>"]
    if len(accounts) >= MIN_SCATTER_MAILBOXES:
        parts.append(
            '<p class="small">One point per mailbox: x = % of its ham where the check is True, '
            "y = % of its spam. Below the diagonal the check points to ham, above it to spam; "
            "points far from the diagonal in every mailbox make a robust indicator (the "
            "original study's figures 5.1-5.4).</p>"
        )
        parts.append(scatter_plots(mailboxes))
    elif accounts:
        parts.append(
            f'<p class="small">{len(accounts)} mailbox(es): too few for the per-mailbox scatter '
            f"plots (drawn from {MIN_SCATTER_MAILBOXES} mailboxes on); the figures behind them "
            "instead.</p>" + mailbox_table(mailboxes)
        )
    else:
        parts.append(no_data("No summary.csv rows: no mailbox to show."))
    totals = {a: next(r for r in mailboxes if r["account"] == a) for a in accounts}
    if totals:
        parts.append(
            html_table(
                ["mailbox", "ham messages", "spam messages", "total"],
                (
                    [
                        escape(a),
                        fmt(t["ham_total"]),
                        fmt(t["spam_total"]),
                        fmt(t["ham_total"] + t["spam_total"]),
                    ]
                    for a, t in totals.items()
                ),
            )
        )
    return "".join(parts)


# --------------------------------------------------------------------------- entry point


def build_report_html(
    results_dir: str | Path, model: ModelResult | None = None, fit: bool = True
) -> str:
    """The report as an HTML string (see write_report)."""
    results_dir = Path(results_dir)
    manifest = read_manifest(results_dir)
    try:
        summary = read_summary(results_dir)
    except FileNotFoundError:
        summary = []
    indicators = compute_indicators(summary)
    mailboxes = compute_mailboxes(summary)
    table: MessageTable | None = None
    if (results_dir / "messages.csv").exists():
        try:
            table = load_messages(results_dir, manifest)
        except (csv.Error, UnicodeDecodeError, ValueError):
            table = None
    if model is None and fit and table is not None:
        model = fit_models(table)
    title = "mailstats report"
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        _section_run(manifest),
        _section_labels(manifest),
        _section_indicators(indicators),
        _section_scatter(mailboxes),
        section_hours(table, manifest),
        section_age(table, manifest),
        section_overlap(table),
        section_model(model),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f'<h1>{escape(title)}</h1><p class="small">Which header checks separate ham from spam '
        f"in these mailboxes. Generated {generated} from <code>{escape(results_dir.name)}</code>."
        "</p>" + "".join(sections) + "</body></html>\n"
    )


def write_report(
    results_dir: str | Path,
    out_path: str | Path | None = None,
    *,
    model: ModelResult | None = None,
    fit: bool = True,
) -> Path:
    """Write report.html (default: results_dir/report.html) and return its path.

    model: a result already computed (the GUI may have one); fit=False skips the combined
    model entirely (it is the slow part on large mailboxes).
    """
    results_dir = Path(results_dir)
    out = Path(out_path) if out_path is not None else results_dir / "report.html"
    html = build_report_html(results_dir, model=model, fit=fit)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    _list_in_manifest(results_dir, out)
    return out


def _list_in_manifest(results_dir: Path, written: Path) -> None:
    """Add the report to manifest.json's outputs when it was written into the results folder,
    so the manifest names every file there (rewritten atomically; a manifest that cannot be
    read or parsed is left as it is)."""
    path = results_dir / "manifest.json"
    try:
        if written.resolve().parent != results_dir.resolve():
            return
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    outputs = data.get("outputs") if isinstance(data, dict) else None
    if not isinstance(outputs, list) or written.name in outputs:
        return
    outputs.append(written.name)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
