"""The report's sections that read messages.csv: hour of day, network checks by message age,
overlap between checks (phi) and the combined model."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from html import escape
from typing import Any

import numpy as np

from mailstats.stats.combined import MessageTable, ModelResult
from mailstats.stats.htmlkit import ROLE_COLOURS, fmt, html_table, img, no_data, plt_module, png_img


def section_hours(table: MessageTable | None, manifest: Mapping[str, Any]) -> str:
    head = "<h2>Hour of day</h2>"
    column = (manifest.get("plots") or {}).get("hour_of_day", "")
    if table is None or not column or column not in table.extras:
        return head + no_data(
            "No hour-of-day column in messages.csv: no module that reads the sender's hour ran."
        )
    hours = table.extra_numbers(column)
    roles = np.array(table.roles)
    plt = plt_module()
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
        return head + no_data("No message has a usable Date hour.")
    ax.set_xticks(range(0, 24, 2))
    ax.set_xlabel("hour in the sender's local time (from the Date header)")
    ax.set_ylabel("% of the role's messages")
    ax.grid(alpha=0.3)
    ax.legend()
    return head + img(fig, "Hour-of-day distribution per role")


def _days(d: float) -> str:
    if d < 1:
        return f"{d * 24:.0f} h"
    if d < 60:
        return f"{d:.0f} d"
    if d < 730:
        return f"{d / 30.44:.0f} mo"
    return f"{d / 365.25:.1f} y"


def age_buckets(ages: np.ndarray, k: int = 4) -> list[tuple[str, float, float]]:
    """Up to k buckets of about equal message counts, edges at the quantiles of the ages.

    Fixed bins ("< 30 days", "> 1 year") put a whole archive in one bucket; quantile edges
    always split the data the report has. Tied quantiles (many messages of the same age)
    merge, so there may be fewer than k buckets; the last bucket includes the oldest message.
    """
    ages = ages[np.isfinite(ages)]
    if len(ages) == 0:
        return []
    edges = np.unique(np.quantile(ages, np.linspace(0, 1, k + 1)))
    if len(edges) == 1:
        return [(f"all {_days(float(edges[0]))}", -math.inf, math.inf)]
    out = []
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        last = i == len(edges) - 2
        label = f"{_days(float(lo))}–{_days(float(hi))}"
        out.append((label, -math.inf if i == 0 else float(lo), math.inf if last else float(hi)))
    return out


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


def section_age(table: MessageTable | None, manifest: Mapping[str, Any]) -> str:
    head = (
        "<h2>Network checks by message age</h2>"
        '<p class="small">Checks evaluated <em>now</em> (DNSBL listings, DKIM keys, SPF '
        "records) drift for old mail: keys are rotated, listings expire. If a check's rates "
        "change with age, only recent mail measures it fairly. The age buckets are the "
        "quartiles of the ham and spam messages' ages, so each holds about a quarter of "
        "them.</p>"
    )
    network = [
        c for c in manifest.get("network_checks") or [] if table is not None and c in table.checks
    ]
    if table is None or not network:
        return head + no_data("No network checks in this run (or no messages.csv).")
    ages = _ages(table, manifest)
    if np.isnan(ages).all():
        return head + no_data("No message age is known (no age_days column and no parsable dates).")
    roles = np.array(table.roles)
    buckets = age_buckets(ages[np.isin(roles, ["ham", "spam"])])
    if not buckets:
        return head + no_data("No ham or spam message has a known age.")
    plt = plt_module()
    ncols = min(3, len(network))
    nrows = math.ceil(len(network) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.9 * ncols, 3.0 * nrows), squeeze=False)
    rows = []
    x = np.arange(len(buckets))
    for ax, check in zip(axes.flat, network, strict=False):
        v = table.values[:, table.checks.index(check)]
        for k, role in enumerate(("ham", "spam")):
            rates = []
            for label, lo, hi in buckets:
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
                        fmt(m / n if n else None, pct=True),
                    ]
                )
            ax.bar(
                x + (k - 0.5) * 0.38,
                np.nan_to_num(np.array(rates)),
                width=0.38,
                color=ROLE_COLOURS[role],
                label=role,
            )
        ax.set_xticks(x, [b[0] for b in buckets], fontsize=7)
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
        + img(fig, "Network check rates by message age")
        + "<details><summary>Counts</summary>"
        + html_table(["check", "role", "age", "matched/applicable", "rate"], rows, left=3)
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


def section_overlap(table: MessageTable | None) -> str:
    head = (
        "<h2>Overlap between checks</h2>"
        '<p class="small">Phi coefficient between two checks over the ham and spam messages '
        "where both could be decided: near 1 the checks say the same thing (one of them adds "
        "little), near -1 the opposite. Blank: never both decided, or one never varies.</p>"
    )
    if table is None or len(table.checks) < 2:
        return head + no_data("Fewer than two checks: no overlap to show.")
    names, phi = phi_matrix(table)
    used = [i for i in range(len(names)) if not np.isnan(phi[i]).all()]
    if len(used) < 2:
        return head + no_data("No two checks vary together over the same messages.")
    names = [names[i] for i in used]
    phi = phi[np.ix_(used, used)]
    plt = plt_module()
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
    return head + img(fig, "Pairwise phi coefficient between checks")


def section_model(model: ModelResult | None) -> str:
    from mailstats.stats.combined import render_tree_png

    head = "<h2>All checks together</h2>"
    if model is None:
        return head + no_data("No messages.csv: the combined model was not run.")
    if not model.ok:
        return head + no_data(f"The combined model was not fitted: {model.reason}.")
    parts = [
        head,
        f'<p class="small">{model.n_ham} ham and {model.n_spam} spam messages from '
        f"{model.n_accounts} account(s); validation: {escape(model.cv)}; spam is the positive "
        f"class; checks encoded {escape(model.encoding)}. Always answering the larger class "
        f"would be right {fmt(model.baseline_accuracy, pct=True)} of the time.</p>",
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
                    fmt(m.accuracy, pct=True),
                    fmt(m.balanced_accuracy, pct=True),
                    fmt(m.precision, pct=True),
                    fmt(m.recall, pct=True),
                    fmt(m.roc_auc, 3),
                ]
            )
    parts.append(
        html_table(["model", "accuracy", "balanced acc.", "precision", "recall", "ROC AUC"], rows)
    )
    imp = [
        (k, v, model.tree_importances.get(k, 0.0))
        for k, v in model.forest_importances.items()
        if v > 0
    ]
    if imp:
        plt = plt_module()
        imp = imp[:15]
        fig, ax = plt.subplots(figsize=(8, 0.34 * len(imp) + 1.2))
        y = np.arange(len(imp))
        ax.barh(y - 0.19, [i[1] for i in imp], height=0.36, color="#5e3c99", label="random forest")
        ax.barh(y + 0.19, [i[2] for i in imp], height=0.36, color="#b2abd2", label="decision tree")
        ax.set_yticks(y, [i[0] for i in imp], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("feature importance (impurity decrease)")
        ax.legend(fontsize=8)
        parts.append(img(fig, "Feature importances"))
    png = render_tree_png(model)
    if png:
        parts.append(
            "<h3>The decision tree</h3>"
            '<p class="small">Read "check &lt;= 0.5" as "check is not True", "check &lt;= -0.5" '
            'as "check could not be decided". Each box: share of the training messages, and '
            "the ham/spam proportions.</p>" + png_img(png, "Decision tree")
        )
    return "".join(parts)
