"""The combined model on generated data whose structure is known in advance."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from mailstats.stats.combined import (
    NONE_VALUE,
    fit_models,
    load_messages,
    render_tree_png,
    run_model,
)

BASE = ["account", "folder", "role", "uid", "message_id", "date", "from_address", "origin_ip"]
CHECKS = ["a.sep", "b.noise", "c.none"]


def write_dir(
    path: Path,
    accounts: dict[str, tuple[int, int]],
    *,
    flip: float = 0.05,
    manifest: bool = True,
    seed: int = 1,
) -> Path:
    """accounts: name -> (n_ham, n_spam). a.sep says spam except with probability `flip`."""
    rng = random.Random(seed)
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "messages.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(BASE + CHECKS + ["datetime.hour", "age_days"])
        uid = 0
        for account, (n_ham, n_spam) in accounts.items():
            for role, n in (("ham", n_ham), ("spam", n_spam), ("sent", 3)):
                for _ in range(n):
                    uid += 1
                    is_spam = role == "spam"
                    sep = is_spam if rng.random() > flip else not is_spam
                    w.writerow(
                        [account, role.upper(), role, uid, f"<{uid}@x>", "", "", ""]
                        + ["1" if sep else "0", rng.choice(["0", "1"]), ""]
                        + [str(rng.randrange(24)), "10"]
                    )
    if manifest:
        (path / "manifest.json").write_text(
            json.dumps({"checks": CHECKS, "extras": ["datetime.hour", "age_days"]})
        )
    return path


def test_load_messages_with_and_without_manifest(tmp_path: Path) -> None:
    for with_manifest in (True, False):
        d = write_dir(tmp_path / str(with_manifest), {"x": (5, 4)}, manifest=with_manifest)
        table = load_messages(d)
        assert table.checks == CHECKS
        assert table.extras == ["datetime.hour", "age_days"]
        assert len(table) == 5 + 4 + 3
        assert (table.values[:, 2] == NONE_VALUE).all()
        assert set(table.values[:, 0].tolist()) <= {0, 1}
        hours = table.extra_numbers("datetime.hour")
        assert ((hours >= 0) & (hours < 24)).all()


def test_leave_one_mailbox_out_finds_the_separating_check(tmp_path: Path) -> None:
    d = write_dir(tmp_path, {"m1": (80, 40), "m2": (60, 60), "m3": (50, 30), "m4": (90, 0)})
    res = run_model(d)
    assert res.ok, res.reason
    assert res.cv.startswith("leave one mailbox out")
    assert res.n_folds == 4
    assert (res.n_ham, res.n_spam, res.n_accounts) == (280, 130, 4)  # sent left out
    # a.sep is right 95 % of the time; nothing else carries signal.
    for metrics in (res.tree, res.forest):
        assert metrics is not None
        assert metrics.accuracy > 0.88
        assert metrics.recall > 0.85 and metrics.precision > 0.8
        assert metrics.roc_auc is not None and metrics.roc_auc > 0.88
    assert next(iter(res.forest_importances)) == "a.sep"
    assert res.tree_importances["a.sep"] > 0.5
    assert res.tree_importances["c.none"] == 0.0
    assert res.baseline_accuracy == pytest.approx(280 / 410)
    assert "a.sep" in res.tree_rules


def test_few_mailboxes_use_stratified_folds(tmp_path: Path) -> None:
    d = write_dir(tmp_path, {"only": (30, 20), "hamonly": (10, 0)})
    res = run_model(d)
    assert res.ok
    assert res.cv.startswith("stratified 5-fold")
    assert res.n_folds == 5


def test_tiny_data_reduces_folds(tmp_path: Path) -> None:
    d = write_dir(tmp_path, {"tiny": (3, 2)}, flip=0.0)
    res = run_model(d)
    assert res.ok
    assert res.n_folds == 2


def test_one_class_is_not_an_error(tmp_path: Path) -> None:
    d = write_dir(tmp_path, {"hamonly": (40, 0), "other": (10, 1)})
    res = run_model(d)
    assert not res.ok
    assert res.reason.startswith("not enough data")
    assert "1 spam" in res.reason
    assert render_tree_png(res) is None
    assert not run_model(tmp_path / "missing").ok


def test_tree_png(tmp_path: Path) -> None:
    table = load_messages(write_dir(tmp_path, {"m": (40, 40)}))
    res = fit_models(table, n_estimators=10)
    png = render_tree_png(res)
    assert png is not None and png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 2000
