"""A self-contained HTML report from a `mailstats --batch` output directory.

One file, no external resources: plots are PNGs (matplotlib, Agg backend) embedded as base64
data URIs, so the report can be mailed or archived as is. Every string that comes from the
data (check, account and folder names, errors) is HTML-escaped. A plot without data is
replaced by a sentence saying so, never by an empty image.

Sections: run and labels; per-check ham vs spam rates (Wilson 95 %) ranked by information
gain; per-mailbox scatter (the original study's figures 5.1-5.4); hour of day per role;
network checks by message age; pairwise overlap of checks (phi); the combined model.
"""

from __future__ import annotations

import base64
import csv
import io
import math
from collections.abc import Iterable, Mapping
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
from mailstats.stats.indicators import compute_indicators, compute_mailboxes, read_summary

AGE_BUCKETS = (
    ("< 30 days", 0.0, 30.0),
    ("30-365 days", 30.0, 365.0),
    ("> 1 year", 365.0, math.inf),
)
ROLE_COLOURS = {"ham": "#2b83ba", "spam": "#d7191c", "sent": "#7b7b7b"}
MAX_SCATTER_PANELS = 24

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:1180px;padding:1.2em 2em;color:#1d1d1f;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ddd;
padding-bottom:.2em}h3{margin-bottom:.3em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #d5d5d5;padding:.25em .55em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
img{max-width:100%;height:auto;display:block;margin:.6em 0}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em .9em;margin:.8em 0}
.nodata{color:#777;font-style:italic}.small{font-size:.85em;color:#555}
details{margin:.6em 0}summary{cursor:pointer;font-weight:600}
code{background:#f3f3f3;padding:0 .25em;border-radius:3px}
"""


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _img(fig: Any, alt: str, dpi: int = 96) -> str:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _png_bytes_img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _no_data(text: str) -> str:
    return f'<p class="nodata">{escape(text)}</p>'


def _fmt(value: Any, digits: int = 3, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "&ndash;"
    if isinstance(value, float):
        return f"{100 * value:.1f} %" if pct else f"{value:.{digits}f}"
    return escape(str(value))


def _table(headers: list[str], rows: Iterable[list[str]], left: int = 1) -> str:
    """An HTML table; cells must already be escaped (the _fmt helper does that)."""
    head = "".join(
        f'<th class="l">{escape(h)}</th>' if i < left else f"<th>{escape(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="l">{c}</td>' if i < left else f"<td>{c}</td>" for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --------------------------------------------------------------------------- sections


def _section_run(manifest: Mapping[str, Any]) -> str:
    if not manifest:
        return "<h2>Run</h2>" + _no_data("No manifest.json: run details are unknown.")
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
                    _fmt(f.get("total")),
                    _fmt(f.get("processed")),
                    _fmt(f.get("malformed")),
                    _fmt(f.get("errors")),
                ]
            )
            if i == 0 and acc.get("error"):
                rows.append(
                    [f'<span class="small">error: {escape(str(acc["error"]))}</span>'] + [""] * 8
                )
    if rows:
        headers = ["account", "labels", "status", "folder", "role", "total", "processed"]
        parts.append(_table(headers + ["malformed", "errors"], rows, left=5))
    return "".join(parts)


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
        return _no_data("No check was applicable to any ham or spam message: nothing to plot.")
    plt = _plt()
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
    ax.set_title("Ham vs spam match rate per check, ranked by information gain")
    return _img(fig, "Ham and spam match rates per check")


def _section_indicators(indicators: list[dict[str, Any]]) -> str:
    parts = ["<h2>Which checks separate ham from spam</h2>"]
    pooled = [r for r in indicators if r["scope"] == "all"]
    if not pooled:
        return parts[0] + _no_data("No summary.csv rows: nothing to compare.")
    parts.append(
        '<p class="small">All accounts\' ham and spam folders pooled. Rates are over the '
        "messages where the check could be decided; <em>S/O</em> is spam rate / (ham rate + "
        "spam rate) (1: only spam, 0: only ham, 0.5: no separation); information gain in bits; "
        "odds ratio above 1 points to spam (0.5 added to every cell when one is zero).</p>"
    )
    parts.append(_ranked_rates_plot(pooled))

    def row(r: Mapping[str, Any]) -> list[str]:
        return [
            escape(r["check"]),
            f"{r['ham_matched']}/{r['ham_applicable']}",
            _fmt(r["ham_rate"], pct=True),
            f"{r['spam_matched']}/{r['spam_applicable']}",
            _fmt(r["spam_rate"], pct=True),
            _fmt(r["so_ratio"], 2),
            _fmt(r["info_gain"], 4),
            _fmt(r["odds_ratio"], 2),
        ]

    headers = ["check", "ham", "ham %", "spam", "spam %", "S/O", "info gain", "odds ratio"]
    parts.append(_table(headers, (row(r) for r in pooled)))
    scopes = list(dict.fromkeys(r["scope"] for r in indicators if r["scope"] != "all"))
    for scope in scopes:
        rows = [r for r in indicators if r["scope"] == scope]
        parts.append(
            f"<details><summary>Account {escape(scope)}</summary>"
            + _table(headers, (row(r) for r in rows))
            + "</details>"
        )
    return "".join(parts)


def _section_scatter(mailboxes: list[dict[str, Any]]) -> str:
    parts = [
        "<h2>Per mailbox</h2>",
        '<p class="small">One point per mailbox: x = % of its ham where the check is True, '
        "y = % of its spam. Below the diagonal the check points to ham, above it to spam; "
        "points far from the diagonal in every mailbox make a robust indicator (the original "
        "study's figures 5.1-5.4).</p>",
    ]
    checks = list(dict.fromkeys(r["check"] for r in mailboxes))
    points: dict[str, list[tuple[str, float, float, int]]] = {}
    for r in mailboxes:
        if r["ham_pct"] is not None and r["spam_pct"] is not None:
            n = r["ham_applicable"] + r["spam_applicable"]
            points.setdefault(r["check"], []).append((r["account"], r["ham_pct"], r["spam_pct"], n))
    plotted = [c for c in checks if c in points][:MAX_SCATTER_PANELS]
    missing = [c for c in checks if c not in points]
    if not plotted:
        parts.append(
            _no_data(
                "No mailbox has both ham and spam messages where a check applies: no scatter plot."
            )
        )
    else:
        plt = _plt()
        ncols = min(4, len(plotted))
        nrows = math.ceil(len(plotted) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.1 * ncols, 3.0 * nrows), squeeze=False)
        label_points = max(len(p) for p in points.values()) <= 12
        for ax, check in zip(axes.flat, plotted, strict=False):
            pts = points[check]
            sizes = [12 + 60 * math.sqrt(p[3] / max(q[3] for q in pts)) for p in pts]
            ax.scatter(
                [p[1] for p in pts], [p[2] for p in pts], s=sizes, alpha=0.75, color="#5e3c99"
            )
            ax.plot([0, 100], [0, 100], ls="--", lw=0.8, color="#999")
            if label_points:
                for name, x, yv, _n in pts:
                    ax.annotate(
                        name, (x, yv), fontsize=6, xytext=(3, 3), textcoords="offset points"
                    )
            ax.set_xlim(-3, 103)
            ax.set_ylim(-3, 103)
            ax.set_title(check, fontsize=9)
            ax.set_xlabel("ham %", fontsize=8)
            ax.set_ylabel("spam %", fontsize=8)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(plotted) :]:
            ax.axis("off")
        fig.tight_layout()
        parts.append(_img(fig, "Per-mailbox ham % vs spam % for each check"))
    if missing:
        parts.append(
            _no_data("Not plotted (no mailbox with both classes applicable): " + ", ".join(missing))
        )
    accounts = list(dict.fromkeys(r["account"] for r in mailboxes))
    totals = {a: next(r for r in mailboxes if r["account"] == a) for a in accounts}
    parts.append(
        _table(
            ["mailbox", "ham messages", "spam messages", "total"],
            (
                [
                    escape(a),
                    _fmt(t["ham_total"]),
                    _fmt(t["spam_total"]),
                    _fmt(t["ham_total"] + t["spam_total"]),
                ]
                for a, t in totals.items()
            ),
        )
    )
    return "".join(parts)


def _section_hours(table: MessageTable | None) -> str:
    head = "<h2>Hour of day</h2>"
    if table is None or "datetime.hour" not in table.extras:
        return head + _no_data(
            "No datetime.hour column in messages.csv: the datetime module did not run."
        )
    hours = table.extra_numbers("datetime.hour")
    roles = np.array(table.roles)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9.5, 3.4))
    drawn = 0
    for role in ("ham", "spam", "sent"):
        h = hours[(roles == role) & ~np.isnan(hours)]
        h = h[(h >= 0) & (h < 24)].astype(int)
        if len(h) == 0:
            continue
        counts = np.bincount(h, minlength=24)
        ax.plot(
            range(24),
            100 * counts / len(h),
            marker="o",
            ms=3,
            color=ROLE_COLOURS[role],
            label=f"{role} (n={len(h)})",
        )
        drawn += 1
    if not drawn:
        plt.close(fig)
        return head + _no_data("No message has a usable Date hour.")
    ax.set_xticks(range(0, 24, 2))
    ax.set_xlabel("hour in the sender's local time (from the Date header)")
    ax.set_ylabel("% of the role's messages")
    ax.grid(alpha=0.3)
    ax.legend()
    return head + _img(fig, "Hour-of-day distribution per role")


def _ages(table: MessageTable, manifest: Mapping[str, Any]) -> np.ndarray:
    """Message age in days: the age_days extra, else from the date column vs the run start."""
    if "age_days" in table.extras:
        ages = table.extra_numbers("age_days")
        if not np.isnan(ages).all():
            return ages
    ref = datetime.now(UTC)
    try:
        ref = datetime.fromisoformat(str(manifest.get("started")))
        if ref.tzinfo is None:
            ref = ref.replace(tzinfo=UTC)
    except ValueError:
        pass
    out = np.full(len(table), np.nan)
    for i, text in enumerate(table.dates):
        try:
            d = datetime.fromisoformat(text.strip())
        except ValueError:
            continue
        if d.tzinfo is None:
            d = d.replace(tzinfo=UTC)
        out[i] = (ref - d).total_seconds() / 86400
    return out


def _section_age(table: MessageTable | None, manifest: Mapping[str, Any]) -> str:
    head = (
        "<h2>Network checks by message age</h2>"
        '<p class="small">Checks evaluated <em>now</em> (DNSBL listings, DKIM keys, SPF '
        "records) drift for old mail: keys are rotated, listings expire. If a check's rates "
        "change with age, only recent mail measures it fairly.</p>"
    )
    network = [
        c for c in manifest.get("network_checks") or [] if table is not None and c in table.checks
    ]
    if table is None or not network:
        return head + _no_data("No network checks in this run (or no messages.csv).")
    ages = _ages(table, manifest)
    if np.isnan(ages).all():
        return head + _no_data(
            "No message age is known (no age_days column and no parsable dates)."
        )
    roles = np.array(table.roles)
    plt = _plt()
    ncols = min(3, len(network))
    nrows = math.ceil(len(network) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.9 * ncols, 3.0 * nrows), squeeze=False)
    rows = []
    x = np.arange(len(AGE_BUCKETS))
    for ax, check in zip(axes.flat, network, strict=False):
        v = table.values[:, table.checks.index(check)]
        for k, role in enumerate(("ham", "spam")):
            rates = []
            for label, lo, hi in AGE_BUCKETS:
                mask = (roles == role) & (ages >= lo) & (ages < hi) & (v >= 0)
                n = int(mask.sum())
                m = int((v[mask] == 1).sum())
                rates.append(100 * m / n if n else np.nan)
                rows.append(
                    [
                        escape(check),
                        escape(role),
                        escape(label),
                        f"{m}/{n}",
                        _fmt(m / n if n else None, pct=True),
                    ]
                )
            ax.bar(
                x + (k - 0.5) * 0.38,
                np.nan_to_num(np.array(rates)),
                width=0.38,
                color=ROLE_COLOURS[role],
                label=role,
            )
        ax.set_xticks(x, [b[0] for b in AGE_BUCKETS], fontsize=7)
        ax.set_ylim(0, 100)
        ax.set_title(check, fontsize=9)
        ax.set_ylabel("% True", fontsize=8)
        if check == network[0]:
            ax.legend(fontsize=7, loc="upper right")
    for ax in list(axes.flat)[len(network) :]:
        ax.axis("off")
    fig.tight_layout()
    return (
        head
        + _img(fig, "Network check rates by message age")
        + "<details><summary>Counts</summary>"
        + _table(["check", "role", "age", "matched/applicable", "rate"], rows, left=3)
        + "</details>"
    )


def phi_matrix(
    table: MessageTable, checks: list[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """Phi (Pearson on 0/1) between checks over ham and spam messages where both are decided.

    NaN where fewer than 2 messages have both decided or one of the two never varies there.
    """
    checks = list(table.checks if checks is None else checks)
    roles = np.array(table.roles)
    keep = np.isin(roles, ["ham", "spam"])
    v = table.values[keep][:, [table.checks.index(c) for c in checks]].astype(np.float64)
    k = len(checks)
    out = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(i, k):
            mask = (v[:, i] >= 0) & (v[:, j] >= 0)
            if mask.sum() < 2:
                continue
            a, b = v[mask, i], v[mask, j]
            if a.std() == 0 or b.std() == 0:
                continue
            out[i, j] = out[j, i] = float(np.corrcoef(a, b)[0, 1])
    return checks, out


def _section_overlap(table: MessageTable | None) -> str:
    head = (
        "<h2>Overlap between checks</h2>"
        '<p class="small">Phi coefficient between two checks over the ham and spam messages '
        "where both could be decided: near 1 the checks say the same thing (one of them adds "
        "little), near -1 the opposite. Blank: never both decided, or one never varies.</p>"
    )
    if table is None or len(table.checks) < 2:
        return head + _no_data("Fewer than two checks: no overlap to show.")
    names, phi = phi_matrix(table)
    used = [i for i in range(len(names)) if not np.isnan(phi[i]).all()]
    if len(used) < 2:
        return head + _no_data("No two checks vary together over the same messages.")
    names = [names[i] for i in used]
    phi = phi[np.ix_(used, used)]
    plt = _plt()
    size = 0.48 * len(names) + 2.6
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    im = ax.imshow(np.ma.masked_invalid(phi), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    if len(names) <= 20:
        for i in range(len(names)):
            for j in range(len(names)):
                if not np.isnan(phi[i, j]):
                    ax.text(
                        j,
                        i,
                        f"{phi[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if abs(phi[i, j]) > 0.6 else "black",
                    )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="phi")
    return head + _img(fig, "Pairwise phi coefficient between checks")


def _section_model(model: ModelResult | None) -> str:
    from mailstats.stats.combined import render_tree_png

    head = "<h2>All checks together</h2>"
    if model is None:
        return head + _no_data("No messages.csv: the combined model was not run.")
    if not model.ok:
        return head + _no_data(f"The combined model was not fitted: {model.reason}.")
    parts = [
        head,
        f'<p class="small">{model.n_ham} ham and {model.n_spam} spam messages from '
        f"{model.n_accounts} account(s); validation: {escape(model.cv)}; spam is the positive "
        f"class; checks encoded {escape(model.encoding)}. Always answering the larger class "
        f"would be right {_fmt(model.baseline_accuracy, pct=True)} of the time.</p>",
    ]
    rows = []
    for name, m in (
        (f"decision tree (depth <= {model.tree_depth})", model.tree),
        ("random forest", model.forest),
    ):
        if m is not None:
            rows.append(
                [
                    escape(name),
                    _fmt(m.accuracy, pct=True),
                    _fmt(m.balanced_accuracy, pct=True),
                    _fmt(m.precision, pct=True),
                    _fmt(m.recall, pct=True),
                    _fmt(m.roc_auc, 3),
                ]
            )
    parts.append(
        _table(["model", "accuracy", "balanced acc.", "precision", "recall", "ROC AUC"], rows)
    )
    imp = [
        (k, v, model.tree_importances.get(k, 0.0))
        for k, v in model.forest_importances.items()
        if v > 0
    ]
    if imp:
        plt = _plt()
        imp = imp[:15]
        fig, ax = plt.subplots(figsize=(8, 0.34 * len(imp) + 1.2))
        y = np.arange(len(imp))
        ax.barh(y - 0.19, [i[1] for i in imp], height=0.36, color="#5e3c99", label="random forest")
        ax.barh(y + 0.19, [i[2] for i in imp], height=0.36, color="#b2abd2", label="decision tree")
        ax.set_yticks(y, [i[0] for i in imp], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("feature importance (impurity decrease)")
        ax.legend(fontsize=8)
        parts.append(_img(fig, "Feature importances"))
    png = render_tree_png(model)
    if png:
        parts.append(
            "<h3>The decision tree</h3>"
            '<p class="small">Read "check &lt;= 0.5" as "check is not True", "check &lt;= -0.5" '
            'as "check could not be decided". Each box: share of the training messages, and '
            "the ham/spam proportions.</p>" + _png_bytes_img(png, "Decision tree")
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
        _section_hours(table),
        _section_age(table, manifest),
        _section_overlap(table),
        _section_model(model),
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
    return out
