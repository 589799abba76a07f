"""A combined model: how well do all checks together separate ham from spam?

Single-check rates (indicators.py) cannot show redundancy (DKIM signed and DKIM aligned say
much the same thing) or interactions. A shallow decision tree (depth 3 by default: 8 leaves
still read at a glance) answers "which few checks, in which order" in a form one can read; a
random forest gives a stronger upper bound and importances. Neither is meant as a filter.

Choices:
- Features: the check columns of messages.csv, encoded True=1, False=0, None=-1. A tree then
  splits "<= -0.5" for "could not tell" and "<= 0.5" for "not True", so None keeps its own
  meaning without tripling the feature count as one-hot would.
- Label: role spam = 1 (the positive class), ham = 0; sent messages are left out.
- Validation grouped by mailbox: with at least 3 accounts that have both classes,
  LeaveOneGroupOut over accounts, so a model is always scored on a mailbox it never saw (each
  training set still holds >= 2 accounts with both classes). Otherwise StratifiedKFold with
  min(5, smallest class count) folds. Scores are computed on the pooled out-of-fold
  predictions (a held-out ham-only mailbox has no AUC of its own).
- One class only, or fewer than 2 messages of a class: a result with ok=False and the reason.
- Importances are from models fitted on all data (impurity-based).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mailstats.stats.export import MESSAGE_COLUMNS

BASE_COLUMNS = tuple(MESSAGE_COLUMNS)  # messages.csv's fixed columns (export.py owns them)
NONE_VALUE = -1
_VALUE_RE = re.compile(r"value = \[([0-9.e+-]+), ([0-9.e+-]+)\]")


@dataclass
class MessageTable:
    """messages.csv in memory: checks as an int8 matrix (1 / 0 / -1 for None)."""

    checks: list[str]
    extras: list[str]
    accounts: list[str]
    folders: list[str]
    roles: list[str]
    dates: list[str]
    values: np.ndarray
    extra_values: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.roles)

    def extra_numbers(self, name: str) -> np.ndarray:
        """An extra column as floats, NaN where empty or not a number."""
        out = np.full(len(self), np.nan)
        for i, text in enumerate(self.extra_values.get(name, [])):
            try:
                out[i] = float(text)
            except ValueError:
                pass
        return out


def _encode(cell: str) -> int:
    cell = cell.strip()
    if cell == "1" or cell.lower() == "true":
        return 1
    if cell == "0" or cell.lower() == "false":
        return 0
    return NONE_VALUE


def read_manifest(results_dir: str | Path) -> dict[str, Any]:
    path = Path(results_dir) / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_messages(results_dir: str | Path, manifest: dict[str, Any] | None = None) -> MessageTable:
    """Read messages.csv; checks and extras from the manifest, else guessed from the values.

    Without a manifest a non-base column counts as a check when every value is 1, 0 or empty
    and its name has a module prefix; everything else is an extra.
    """
    results_dir = Path(results_dir)
    if manifest is None:
        manifest = read_manifest(results_dir)
    with open(results_dir / "messages.csv", newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        rows = list(reader)
    index = {name: i for i, name in enumerate(header)}
    listed = [c for c in manifest.get("checks") or [] if c in index]
    if listed:
        checks = listed
    else:
        checks = [
            c
            for c in header
            if c not in BASE_COLUMNS
            and "." in c
            and all(len(r) <= index[c] or r[index[c]].strip() in ("", "0", "1") for r in rows)
        ]
    extras = [c for c in header if c not in BASE_COLUMNS and c not in checks]

    def col(name: str) -> list[str]:
        i = index.get(name)
        if i is None:
            return [""] * len(rows)
        return [r[i] if i < len(r) else "" for r in rows]

    values = np.full((len(rows), len(checks)), NONE_VALUE, dtype=np.int8)
    for j, name in enumerate(checks):
        i = index[name]
        values[:, j] = [_encode(r[i]) if i < len(r) else NONE_VALUE for r in rows]
    return MessageTable(
        checks=checks,
        extras=extras,
        accounts=col("account"),
        folders=col("folder"),
        roles=[r.strip().lower() for r in col("role")],
        dates=col("date"),
        values=values,
        extra_values={name: col(name) for name in extras},
    )


@dataclass
class Metrics:
    accuracy: float
    balanced_accuracy: float
    precision: float
    recall: float
    roc_auc: float | None


@dataclass
class ModelResult:
    ok: bool
    reason: str = ""
    n_messages: int = 0
    n_ham: int = 0
    n_spam: int = 0
    n_accounts: int = 0
    features: list[str] = field(default_factory=list)
    encoding: str = "True=1, False=0, None=-1"
    cv: str = ""
    n_folds: int = 0
    baseline_accuracy: float | None = None
    tree: Metrics | None = None
    forest: Metrics | None = None
    tree_importances: dict[str, float] = field(default_factory=dict)
    forest_importances: dict[str, float] = field(default_factory=dict)
    tree_rules: str = ""
    tree_depth: int = 0
    fitted_tree: Any = field(default=None, repr=False, compare=False)


def _metrics(y: np.ndarray, pred: np.ndarray, proba: np.ndarray) -> Metrics:
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    auc = float(roc_auc_score(y, proba)) if len(set(y.tolist())) == 2 else None
    return Metrics(
        accuracy=float(accuracy_score(y, pred)),
        balanced_accuracy=float(balanced_accuracy_score(y, pred)),
        precision=float(precision_score(y, pred, zero_division=0)),
        recall=float(recall_score(y, pred, zero_division=0)),
        roc_auc=auc,
    )


def _oof(model: Any, x: np.ndarray, y: np.ndarray, splits: list) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold spam probabilities and predictions, pooled over the folds."""
    from sklearn.base import clone

    proba = np.zeros(len(y))
    for train, test in splits:
        m = clone(model).fit(x[train], y[train])
        p = m.predict_proba(x[test])
        spam_col = list(m.classes_).index(1)
        proba[test] = p[:, spam_col]
    return proba, (proba >= 0.5).astype(int)


def fit_models(
    table: MessageTable,
    *,
    features: list[str] | None = None,
    max_depth: int = 3,
    n_estimators: int = 100,
    random_state: int = 0,
) -> ModelResult:
    """Cross-validated decision tree and random forest over the check columns."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import LeaveOneGroupOut, StratifiedKFold
    from sklearn.tree import DecisionTreeClassifier, export_text

    features = list(table.checks if features is None else features)
    roles = np.array(table.roles)
    keep = np.isin(roles, ["ham", "spam"])
    y = (roles[keep] == "spam").astype(int)
    groups = np.array(table.accounts)[keep]
    cols = [table.checks.index(f) for f in features]
    x = table.values[keep][:, cols].astype(np.float64)
    n_ham, n_spam = int((y == 0).sum()), int((y == 1).sum())
    result = ModelResult(
        ok=False,
        n_messages=len(y),
        n_ham=n_ham,
        n_spam=n_spam,
        n_accounts=len(set(groups.tolist())),
        features=features,
    )
    if not features:
        result.reason = "not enough data: no check columns"
        return result
    if min(n_ham, n_spam) < 2:
        result.reason = (
            f"not enough data: {n_ham} ham and {n_spam} spam messages (need at least 2 of each)"
        )
        return result

    both = [
        g
        for g in dict.fromkeys(groups.tolist())
        if (y[groups == g] == 0).any() and (y[groups == g] == 1).any()
    ]
    if len(both) >= 3:
        splits = list(LeaveOneGroupOut().split(x, y, groups))
        result.cv = f"leave one mailbox out ({len(splits)} accounts, {len(both)} with both classes)"
    else:
        k = min(5, n_ham, n_spam)
        splits = list(StratifiedKFold(k, shuffle=True, random_state=random_state).split(x, y))
        result.cv = f"stratified {k}-fold (fewer than 3 mailboxes with both ham and spam)"
    result.n_folds = len(splits)
    result.baseline_accuracy = max(n_ham, n_spam) / len(y)

    min_leaf = max(1, min(20, len(y) // 200))
    tree = DecisionTreeClassifier(
        max_depth=max_depth, min_samples_leaf=min_leaf, random_state=random_state
    )
    forest = RandomForestClassifier(
        n_estimators=n_estimators, min_samples_leaf=min_leaf, random_state=random_state, n_jobs=1
    )
    for name, model in (("tree", tree), ("forest", forest)):
        proba, pred = _oof(model, x, y, splits)
        setattr(result, name, _metrics(y, pred, proba))

    tree.fit(x, y)
    forest.fit(x, y)
    result.tree_importances = _ranked(features, tree.feature_importances_)
    result.forest_importances = _ranked(features, forest.feature_importances_)
    result.tree_rules = export_text(tree, feature_names=features, show_weights=True)
    result.fitted_tree = tree
    result.tree_depth = max_depth
    result.ok = True
    return result


def _ranked(features: list[str], importances: np.ndarray) -> dict[str, float]:
    pairs = sorted(zip(features, importances.tolist(), strict=True), key=lambda p: (-p[1], p[0]))
    return dict(pairs)


def run_model(results_dir: str | Path, **kwargs: Any) -> ModelResult:
    """fit_models over a `mailstats --batch` output directory."""
    try:
        table = load_messages(results_dir)
    except FileNotFoundError:
        return ModelResult(ok=False, reason="not enough data: no messages.csv")
    return fit_models(table, **kwargs)


def render_tree_png(result: ModelResult, dpi: int = 110) -> bytes | None:
    """The fitted tree drawn by sklearn.tree.plot_tree, as PNG bytes (None without a tree)."""
    if not result.ok or result.fitted_tree is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.tree import plot_tree

    tree = result.fitted_tree
    depth = max(1, tree.get_depth())
    leaves = max(2, tree.get_n_leaves())
    fig, ax = plt.subplots(figsize=(min(22, 1.75 * leaves + 1.5), 1.6 * (depth + 1)))
    annotations = plot_tree(
        tree,
        feature_names=result.features,
        class_names=["ham", "spam"],
        filled=False,
        impurity=False,
        proportion=True,
        rounded=True,
        fontsize=9,
        ax=ax,
    )
    # The report's colours (ham blue, spam red) instead of plot_tree's palette, shaded by
    # purity; the proportions are read back from each box's "value = [ham, spam]" line.
    for ann in annotations:
        found = _VALUE_RE.search(ann.get_text())
        patch = ann.get_bbox_patch()
        if not found or patch is None:
            continue
        ham, spam = float(found.group(1)), float(found.group(2))
        p_spam = spam / (ham + spam) if ham + spam else 0.5
        strength = abs(p_spam - 0.5) * 2
        base = (0.84, 0.1, 0.11) if p_spam > 0.5 else (0.17, 0.51, 0.73)
        patch.set_facecolor(tuple(1 - strength * 0.55 * (1 - c) for c in base))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
