"""study.html: one self-contained page for a pooled study (plots embedded as PNG data URIs).

Sections: what went in (bundles, mailstats and module versions, what was left out and why);
the pooled table (study.csv); a forest plot per check (one line per mailbox with its 95 %
interval, the pooled random-effects diamond); the original study's per-mailbox scatter plots;
the per-mailbox table; and, when bundles carry messages, the combined model evaluated by
leaving one mailbox out at a time.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from mailstats.stats.htmlkit import CSS, fmt, html_table, img, no_data, plt_module
from mailstats.study.pool import Effect, Study

#: Forest plots drawn at most (best separating first); the table lists every check.
MAX_FOREST = 40


def _pp(value: float | None) -> str:
    """A difference of rates in percentage points."""
    return "&ndash;" if value is None else f"{100 * value:+.1f} pts"


def _section_inputs(study: Study) -> str:
    versions = Counter(str(b.data.get("mailstats_version")) for b in study.bundles)
    schemas = Counter(int(b.data.get("schema_version", 0)) for b in study.bundles)
    modules: dict[str, Counter[str]] = {}
    for b in study.bundles:
        for m, v in b.data["modules"].items():
            modules.setdefault(m, Counter())[str(v)] += 1
    with_messages = sum(1 for b in study.bundles if b.messages_csv is not None)
    labels = Counter(",".join(b.data.get("labels") or ["not recorded"]) for b in study.bundles)

    def counted(c: Counter[str], prefix: str = "") -> str:
        return ", ".join(f"{prefix}{escape(k)} ({n})" for k, n in sorted(c.items()))

    mods = "; ".join(
        f"{escape(m)} " + ", ".join(f"v{escape(v)} ({n})" for v, n in sorted(c.items()))
        for m, c in sorted(modules.items())
    )
    parts = [
        "<h2>What went in</h2>",
        f"<p>{len(study.bundles)} bundles, one mailbox each; {with_messages} carry anonymized "
        "messages. Numbers in brackets: how many bundles.</p><table><tbody>"
        f'<tr><th class="l">mailstats versions</th><td class="l">{counted(versions)}</td></tr>'
        f'<tr><th class="l">bundle schema</th><td class="l">'
        f"{counted(Counter({str(k): v for k, v in schemas.items()}), 'v')}</td></tr>"
        f'<tr><th class="l">modules</th><td class="l">{mods}</td></tr>'
        f'<tr><th class="l">labels sorted by</th><td class="l">{counted(labels)}</td></tr>'
        "</tbody></table>",
    ]
    if study.notes:
        parts.append(
            '<div class="note"><ul>'
            + "".join(f"<li>{escape(n)}</li>" for n in study.notes)
            + "</ul></div>"
        )
    return "".join(parts)


METHOD = (
    "Per mailbox, the difference d = ham rate - spam rate of the messages where the check "
    "could be decided, with variance p_h(1-p_h)/n_h + p_s(1-p_s)/n_s; pooled by "
    "DerSimonian-Laird random effects (statsmodels' combine_effects), normal 95 % interval; "
    "tau2 is the between-mailbox variance, I2 the share of the spread that is heterogeneity "
    "rather than chance. A mailbox with a 0 % or 100 % rate in either class gets 0.5 added to "
    "each of its four cells (matched and not matched, ham and spam), in the effect and its "
    "variance, so that it does not get an infinite weight. A mailbox without applicable ham "
    "or spam (no spam folder, say) has no difference and is left out of that check's pooled "
    "estimate; it is still in the per-mailbox table."
)


def _sorted_rows(study: Study) -> list[dict[str, Any]]:
    """Pooled rows by how far the interval stays from 0 (no separation), then by name."""

    def key(r: dict[str, Any]) -> tuple[float, str]:
        low, high = r["pooled_low"], r["pooled_high"]
        if low is None:
            return (1.0, r["check"])
        gap = max(0.0, low, -high)
        return (-gap - 1e-9 * abs(r["pooled_diff"]), r["check"])

    return sorted(study.rows, key=key)


def _section_pooled(study: Study) -> str:
    rows = _sorted_rows(study)
    body = [
        [
            escape(r["check"]),
            str(r["mailboxes"]),
            f"{r['ham_messages']:,}",
            f"{r['spam_messages']:,}",
            _pp(r["pooled_diff"]),
            "&ndash;"
            if r["pooled_low"] is None
            else f"{100 * r['pooled_low']:+.1f} to {100 * r['pooled_high']:+.1f}",
            fmt(r["tau2"], 4),
            fmt(r["i2"], pct=True),
            fmt(r["pooled_ham_rate"], pct=True),
            fmt(r["pooled_spam_rate"], pct=True),
        ]
        for r in rows
    ]
    excluded = "".join(
        f"<li><code>{escape(c)}</code>: {escape(why)}</li>" for c, why in study.excluded.items()
    )
    return (
        "<h2>Pooled over mailboxes</h2>"
        f'<p class="small">{escape(METHOD)}</p>'
        + html_table(
            [
                "check",
                "mailboxes",
                "ham",
                "spam",
                "pooled ham - spam",
                "95 % interval (pts)",
                "tau2",
                "I2",
                "pooled ham rate",
                "pooled spam rate",
            ],  # fmt: skip
            body,
        )
        + (f'<div class="note">Not pooled:<ul>{excluded}</ul></div>' if excluded else "")
    )


def forest_png(check: str, effects: list[Effect], row: dict[str, Any]) -> str:
    """One check's forest plot: a line per mailbox, the pooled diamond below."""
    plt = plt_module()
    k = len(effects)
    fig, ax = plt.subplots(figsize=(5.6, 0.24 * k + 1.35))
    y = np.arange(k)[::-1] + 1.5
    weights = np.array([1 / e.variance for e in effects])
    sizes = 14 + 70 * np.sqrt(weights / weights.max())
    for yi, e, s in zip(y, effects, sizes, strict=True):
        colour = "#b35806" if e.corrected else "#2d004b"
        ax.plot([100 * e.low, 100 * e.high], [yi, yi], color=colour, lw=1)
        ax.scatter([100 * e.diff], [yi], s=s, marker="s", color=colour, zorder=3)
    mu, lo, hi = row["pooled_diff"], row["pooled_low"], row["pooled_high"]
    ax.fill(
        [100 * lo, 100 * mu, 100 * hi, 100 * mu],
        [0.5, 0.85, 0.5, 0.15],
        color="#d7191c",
        zorder=3,
    )
    ax.axvline(0, color="#777", lw=0.8, ls="--")
    ax.axvline(100 * mu, color="#d7191c", lw=0.6, ls=":")
    ax.set_yticks([*y, 0.5], [e.mailbox for e in effects] + ["pooled"], fontsize=7)
    ax.set_ylim(-0.2, k + 2)
    ax.set_xlim(-105, 105)
    ax.set_xlabel("ham % - spam % (95 % interval)", fontsize=8)
    i2 = "" if row["i2"] is None else f", I2 {100 * row['i2']:.0f} %"
    ax.set_title(f"{check}: {100 * mu:+.1f} pts [{100 * lo:+.1f}, {100 * hi:+.1f}]{i2}", fontsize=9)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    return img(fig, f"Forest plot for {check}")


def _section_forest(study: Study) -> str:
    rows = [r for r in _sorted_rows(study) if r["mailboxes"] > 0]
    head = (
        "<h2>Forest plots</h2>"
        '<p class="small">One line per mailbox (square size: its weight; orange: the 0.5 '
        "continuity correction was applied), the pooled random-effects estimate as the "
        "diamond. Right of the dashed line the check is True more often in ham, left of it "
        "more often in spam.</p>"
    )
    if not rows:
        return head + no_data("No check was decided on both ham and spam of any mailbox.")
    shown = rows[:MAX_FOREST]
    cells = "".join(
        f'<div class="forest">{forest_png(r["check"], study.effects[r["check"]], r)}</div>'
        for r in shown
    )
    more = (
        no_data(f"{len(rows) - MAX_FOREST} more checks in study.csv, not drawn.")
        if len(rows) > MAX_FOREST
        else ""
    )
    return head + f'<div class="grid">{cells}</div>' + more


def _section_mailboxes(study: Study) -> str:
    from mailstats.stats.report import mailbox_table, scatter_plots

    rows = [dict(c.row(), account=c.mailbox) for c in study.counts if c.check not in study.excluded]
    sizes: dict[str, tuple[int, int]] = {}
    for c in study.counts:
        sizes.setdefault(c.mailbox, (c.ham_total, c.spam_total))
    return (
        "<h2>Per mailbox</h2>"
        '<p class="small">The original study\'s scatter plots: one point per mailbox, x = % of '
        "its ham where the check is True, y = % of its spam (point size: messages).</p>"
        + scatter_plots(rows)
        + "<h3>Mailboxes</h3>"
        + html_table(
            ["mailbox", "inbox (ham) mails", "spam mails", "total"],
            ([escape(m), f"{h:,}", f"{s:,}", f"{h + s:,}"] for m, (h, s) in sizes.items()),
        )
        + "<details><summary>Every mailbox and check</summary>"
        + mailbox_table(rows)
        + "</details>"
    )


def _combined_table(study: Study) -> Any:
    """The bundles' messages.csv as one MessageTable, the account column = the mailbox."""
    from mailstats.stats.combined import NONE_VALUE, MessageTable, _encode

    checks = [c for c in study.checks if c not in study.excluded]
    accounts: list[str] = []
    roles: list[str] = []
    values: list[list[int]] = []
    for bundle, label in zip(study.bundles, study.labels, strict=True):
        if bundle.messages_csv is None:
            continue
        reader = csv.reader(io.StringIO(bundle.messages_csv))
        header = next(reader, [])
        idx = {c: i for i, c in enumerate(header)}
        r_i = idx.get("role")
        if r_i is None:
            continue
        for row in reader:
            if r_i >= len(row):
                continue
            accounts.append(label)
            roles.append(row[r_i].strip().lower())
            values.append(
                [
                    _encode(row[idx[c]]) if c in idx and idx[c] < len(row) else NONE_VALUE
                    for c in checks
                ]
            )
    if not roles:
        return None
    return MessageTable(
        checks=checks,
        extras=[],
        accounts=accounts,
        folders=[""] * len(roles),
        roles=roles,
        dates=[""] * len(roles),
        values=np.array(values, dtype=np.int8).reshape(len(roles), len(checks)),
    )


def _section_model(study: Study, fit: bool) -> str:
    from mailstats.stats.report_messages import section_model

    head = (
        "<h2>All checks together, one mailbox held out at a time</h2>"
        '<p class="small">A decision tree and a random forest over every check, trained on '
        "the other mailboxes' messages and scored on the held-out mailbox's (leave one "
        "mailbox out): how well the checks generalise to a mailbox the model never saw.</p>"
    )
    table = _combined_table(study)
    if table is None:
        return head + no_data(
            "No bundle carries messages (mailstats share --include-messages): no model."
        )
    if not fit:
        return head + no_data("The combined model was not fitted (asked not to).")
    from mailstats.stats.combined import fit_models

    model = fit_models(table)
    return head + section_model(model).split("</h2>", 1)[-1]


def build_study_html(study: Study, fit: bool = True) -> str:
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    css = CSS + ".grid{display:flex;flex-wrap:wrap;gap:4px}.forest{width:49%}td{white-space:nowrap}"
    sections = [
        _section_inputs(study),
        _section_forest(study),
        _section_pooled(study),
        _section_mailboxes(study),
        _section_model(study, fit),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>mailstats study</title><style>{css}</style></head><body>"
        "<h1>mailstats study</h1>"
        f'<p class="small">{len(study.bundles)} mailboxes pooled. Generated {generated}.</p>'
        + "".join(sections)
        + "</body></html>\n"
    )


def write_study_html(study: Study, out_dir: str | Path, fit: bool = True) -> Path:
    out = Path(out_dir) / "study.html"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(build_study_html(study, fit=fit), encoding="utf-8")
    tmp.replace(out)
    return out
