"""Pool many mailboxes: the per-mailbox ham - spam difference, DerSimonian-Laird random effects.

Why random effects: mailboxes differ for real (providers, senders, filters), so one common
rate is not the model; DerSimonian-Laird estimates the between-mailbox variance tau^2 and
widens the interval by it. The computation is statsmodels'
`statsmodels.stats.meta_analysis.combine_effects(method_re="dl")`, normal 95 % intervals;
statsmodels leaves a negative moment estimate of tau^2 as it is, so when it is <= 0 the
estimator's own truncation (tau^2 = 0) is applied by taking statsmodels' fixed-effect result,
which is what the random-effects one is at tau^2 = 0.

Per mailbox and check (ham and spam folders summed over the bundle's folders):
- effect d = ham_rate - spam_rate over the applicable messages, variance
  p_h (1 - p_h) / n_h + p_s (1 - p_s) / n_s (the risk difference's);
- continuity correction: a mailbox where any of the four cells (ham matched, ham not matched,
  spam matched, spam not matched) is 0 - a 0 % or 100 % rate - gets 0.5 added to each of its
  four cells, in the effect and its variance, so p = (matched + 0.5) / (applicable + 1).
  Without it such a mailbox has variance 0 and an infinite weight (metafor's default,
  `add = 1/2, to = "only0"`). The correction is per mailbox: the others stay as measured;
- a mailbox with no applicable ham or no applicable spam (10 of the original study's 22 had
  no spam folder) has no difference and is not in that check's pooled estimate; it is still
  in mailboxes.csv.

pooled_ham_rate and pooled_spam_rate pool each class's rate the same way (the same
mailboxes, the same correction for a 0 % or 100 % rate), so they describe the mailboxes
behind pooled_diff. One mailbox: its own estimate and interval, tau2 = 0, i2 empty.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailstats.stats.indicators import MAILBOX_COLUMNS
from mailstats.study.bundle import Bundle

Z95 = 1.959963984540054
STUDY_COLUMNS = [
    "check",
    "mailboxes",
    "ham_messages",
    "spam_messages",
    "pooled_diff",
    "pooled_low",
    "pooled_high",
    "tau2",
    "i2",
    "pooled_ham_rate",
    "pooled_spam_rate",
]
#: The per-mailbox table of mailboxes.csv (stats/indicators.py), a bundle standing in for
#: the account: one definition of the original study's columns.
STUDY_MAILBOX_COLUMNS = ["mailbox", "bundle_id", *MAILBOX_COLUMNS[1:]]


@dataclass
class MailboxCounts:
    """One mailbox's ham and spam counts for one check."""

    mailbox: str
    bundle_id: str
    check: str
    ham_total: int = 0
    ham_matched: int = 0
    ham_applicable: int = 0
    spam_total: int = 0
    spam_matched: int = 0
    spam_applicable: int = 0

    def row(self) -> dict[str, Any]:
        return {
            "mailbox": self.mailbox,
            "bundle_id": self.bundle_id,
            "check": self.check,
            "ham_total": self.ham_total,
            "ham_matched": self.ham_matched,
            "ham_applicable": self.ham_applicable,
            "ham_pct": _pct(self.ham_matched, self.ham_applicable),
            "spam_total": self.spam_total,
            "spam_matched": self.spam_matched,
            "spam_applicable": self.spam_applicable,
            "spam_pct": _pct(self.spam_matched, self.spam_applicable),
        }


def _pct(k: int, n: int) -> float | None:
    return 100.0 * k / n if n else None


def mailbox_counts(bundles: Iterable[Bundle], labels: list[str]) -> list[MailboxCounts]:
    """Per bundle (in order) and check, the ham and spam folders summed; sent is no class."""
    out: list[MailboxCounts] = []
    for bundle, label in zip(bundles, labels, strict=True):
        by_check: dict[str, MailboxCounts] = {}
        for check in bundle.data["checks"]:
            by_check[check] = MailboxCounts(label, bundle.bundle_id, check)
        for row in bundle.data["counts"]:
            c = by_check.setdefault(
                row["check"], MailboxCounts(label, bundle.bundle_id, row["check"])
            )
            if row["role"] == "ham":
                c.ham_total += row["total"]
                c.ham_matched += row["matched"]
                c.ham_applicable += row["applicable"]
            elif row["role"] == "spam":
                c.spam_total += row["total"]
                c.spam_matched += row["matched"]
                c.spam_applicable += row["applicable"]
        out.extend(by_check.values())
    return out


def corrected_rate(k: int, n: int, corrected: bool) -> tuple[float, float]:
    """(rate, variance of the rate) with the 0.5 continuity correction when asked."""
    if corrected:
        p, m = (k + 0.5) / (n + 1), n + 1
    else:
        p, m = k / n, n
    return p, p * (1 - p) / m


@dataclass
class Effect:
    """One mailbox's ham - spam difference for one check."""

    mailbox: str
    diff: float
    variance: float
    corrected: bool
    ham_rate: float
    ham_var: float
    spam_rate: float
    spam_var: float

    @property
    def low(self) -> float:
        return self.diff - Z95 * math.sqrt(self.variance)

    @property
    def high(self) -> float:
        return self.diff + Z95 * math.sqrt(self.variance)


def mailbox_effect(c: MailboxCounts) -> Effect | None:
    """The difference with its variance; None without applicable ham or spam."""
    hn, sn = c.ham_applicable, c.spam_applicable
    if hn <= 0 or sn <= 0:
        return None
    hm, sm = c.ham_matched, c.spam_matched
    corrected = 0 in (hm, hn - hm, sm, sn - sm)
    ph, vh = corrected_rate(hm, hn, corrected)
    ps, vs = corrected_rate(sm, sn, corrected)
    return Effect(c.mailbox, ph - ps, vh + vs, corrected, ph, vh, ps, vs)


@dataclass
class Pooled:
    estimate: float
    low: float
    high: float
    tau2: float
    i2: float | None


def dersimonian_laird(effects: list[float], variances: list[float]) -> Pooled | None:
    """statsmodels' DerSimonian-Laird random effects, normal 95 % interval."""
    if not effects:
        return None
    if len(effects) == 1:
        se = math.sqrt(variances[0])
        return Pooled(effects[0], effects[0] - Z95 * se, effects[0] + Z95 * se, 0.0, None)
    import warnings

    import numpy as np
    from statsmodels.stats.meta_analysis import combine_effects

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # statsmodels does not truncate tau^2 at 0 (it divides by var + tau^2 < 0 first)
        warnings.simplefilter("ignore", RuntimeWarning)
        res = combine_effects(np.asarray(effects), np.asarray(variances), method_re="dl")
        frame = res.summary_frame()
    tau2 = float(res.tau2)
    # I^2 = (Q - df) / Q, truncated at 0 (statsmodels' 1 - 1/h2 is unstable for Q near 0)
    q, df = float(res.q), len(effects) - 1
    i2 = min(1.0, (q - df) / q) if q > df else 0.0
    if not tau2 > 0:
        # DerSimonian-Laird's tau^2 is max(0, (Q - (k - 1)) / C); at 0 the random-effects
        # estimate is the fixed-effect one, which statsmodels computes alongside.
        row = frame.loc["fixed effect"]
        return Pooled(float(res.mean_effect_fe), float(row["ci_low"]), float(row["ci_upp"]),
                      0.0, i2)  # fmt: skip
    row = frame.loc["random effect"]
    return Pooled(float(res.mean_effect_re), float(row["ci_low"]), float(row["ci_upp"]), tau2, i2)


def pool_check(check: str, counts: list[MailboxCounts]) -> tuple[dict[str, Any], list[Effect]]:
    """study.csv's row for one check, and the per-mailbox effects behind it."""
    pairs = [(c, e) for c in counts if (e := mailbox_effect(c)) is not None]
    effects = [e for _c, e in pairs]
    row: dict[str, Any] = {
        "check": check,
        "mailboxes": len(effects),
        "ham_messages": sum(c.ham_applicable for c, _e in pairs),
        "spam_messages": sum(c.spam_applicable for c, _e in pairs),
    }
    diff = dersimonian_laird([e.diff for e in effects], [e.variance for e in effects])
    ham = dersimonian_laird([e.ham_rate for e in effects], [e.ham_var for e in effects])
    spam = dersimonian_laird([e.spam_rate for e in effects], [e.spam_var for e in effects])
    row.update(
        {
            "pooled_diff": diff.estimate if diff else None,
            "pooled_low": diff.low if diff else None,
            "pooled_high": diff.high if diff else None,
            "tau2": diff.tau2 if diff else None,
            "i2": diff.i2 if diff else None,
            "pooled_ham_rate": ham.estimate if ham else None,
            "pooled_spam_rate": spam.estimate if spam else None,
        }
    )
    return row, effects


@dataclass
class Study:
    """Everything study.csv, mailboxes.csv and study.html are made of."""

    bundles: list[Bundle]
    labels: list[str]
    checks: list[str]
    counts: list[MailboxCounts]
    rows: list[dict[str, Any]]
    effects: dict[str, list[Effect]]
    excluded: dict[str, str]  # check -> why it is not pooled
    notes: list[str]


def module_conflicts(bundles: list[Bundle]) -> dict[str, dict[str, list[str]]]:
    """module -> version -> the bundles (files) that ran it, for modules with > 1 version."""
    seen: dict[str, dict[str, list[str]]] = {}
    for b in bundles:
        for module, version in b.data["modules"].items():
            seen.setdefault(module, {}).setdefault(str(version), []).append(b.source)
    return {m: v for m, v in seen.items() if len(v) > 1}


def setting_differences(bundles: list[Bundle]) -> dict[str, list[str]]:
    """setting -> distinct values (as JSON text) for settings that differ between bundles."""
    import json

    keys = sorted({k for b in bundles for k in (b.data.get("settings") or {})})
    out = {}
    for key in keys:
        values = {json.dumps((b.data.get("settings") or {}).get(key)) for b in bundles}
        if len(values) > 1:
            out[key] = sorted(values)
    return out


def mailbox_labels(bundles: list[Bundle]) -> list[str]:
    """The participant's label when given and unique, else the mailbox's number (1, 2, ...)."""
    labels = [str(b.data.get("label") or "").strip() for b in bundles]
    out = []
    for i, label in enumerate(labels, 1):
        out.append(label if label and labels.count(label) == 1 else str(i))
    return out


def build_study(bundles: list[Bundle]) -> Study:
    """Pool the bundles (already read and validated, duplicates refused by the caller)."""
    labels = mailbox_labels(bundles)
    checks: list[str] = []
    for b in bundles:
        checks.extend(c for c in b.data["checks"] if c not in checks)
    conflicts = module_conflicts(bundles)
    excluded = {}
    notes = []
    for module, versions in conflicts.items():
        detail = "; ".join(f"v{v}: {len(files)} bundle(s)" for v, files in versions.items())
        notes.append(
            f"module {module} ran in different versions ({detail}), whose checks need not "
            "mean the same thing: its checks are left out of study.csv"
        )
        for c in checks:
            if c.split(".", 1)[0] == module:
                excluded[c] = f"{module} versions differ ({detail})"
    for key, values in setting_differences(bundles).items():
        notes.append(f"setting {key} differs between bundles: {', '.join(values)}")
    counts = mailbox_counts(bundles, labels)
    rows, effects = [], {}
    for check in checks:
        if check in excluded:
            continue
        row, eff = pool_check(check, [c for c in counts if c.check == check])
        rows.append(row)
        effects[check] = eff
    return Study(bundles, labels, checks, counts, rows, effects, excluded, notes)


def write_study_csvs(study: Study, out_dir: str | Path) -> list[str]:
    """DIR/mailboxes.csv and DIR/study.csv (through export.write_csv: escaping, atomic)."""
    from mailstats.stats.export import write_csv

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def cells(rows: Iterable[Mapping[str, Any]], cols: list[str]) -> Iterable[list[Any]]:
        for r in rows:
            yield [round(v, 6) if isinstance(v, float) else v for v in (r.get(c) for c in cols)]

    write_csv(
        out / "mailboxes.csv",
        STUDY_MAILBOX_COLUMNS,
        cells((c.row() for c in study.counts), STUDY_MAILBOX_COLUMNS),
    )
    write_csv(out / "study.csv", STUDY_COLUMNS, cells(study.rows, STUDY_COLUMNS))
    return ["mailboxes.csv", "study.csv"]
