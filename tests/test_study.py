"""Study mode end to end: 22 generated mailboxes -> 22 bundles -> one pooled study.

The pooled figures are checked against a DerSimonian-Laird computation written out here
from the generator's expected counts (not statsmodels, not mailstats' counts).
"""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from study_support import ORIGINAL_TABLE, expected, original_study_results

from mailstats.cli import main
from mailstats.study.bundle import build_bundle, write_bundle
from mailstats.study.pool import MailboxCounts, pool_check

pytest.importorskip("statsmodels")

STUDY_CSV_COLUMNS = [
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
POOLED_CHECKS = ("internal.internal", "list.is_list", "attachments.has_attachment")
WITH_MESSAGES = (3, 7, 8, 9)  # mailbox numbers whose bundles carry anonymized messages


def independent_dl(cells: list[tuple[int, int, int, int]]) -> dict[str, float | None]:
    """Risk difference ham - spam pooled by DerSimonian-Laird, by the textbook formulas.

    cells: per mailbox (ham matched, ham applicable, spam matched, spam applicable). A
    mailbox with a zero cell gets 0.5 added to all four cells."""
    d, v, ph_, vh_, ps_, vs_ = [], [], [], [], [], []
    for hm, hn, sm, sn in cells:
        if hn == 0 or sn == 0:
            continue
        add = 0.5 if min(hm, hn - hm, sm, sn - sm) == 0 else 0.0
        ph = (hm + add) / (hn + 2 * add)
        ps = (sm + add) / (sn + 2 * add)
        d.append(ph - ps)
        v.append(ph * (1 - ph) / (hn + 2 * add) + ps * (1 - ps) / (sn + 2 * add))
        ph_.append(ph), vh_.append(ph * (1 - ph) / (hn + 2 * add))
        ps_.append(ps), vs_.append(ps * (1 - ps) / (sn + 2 * add))

    def dl(y: list[float], s2: list[float]) -> tuple[float, float, float, float, float | None]:
        k = len(y)
        w = [1 / x for x in s2]
        fe = sum(wi * yi for wi, yi in zip(w, y, strict=True)) / sum(w)
        q = sum(wi * (yi - fe) ** 2 for wi, yi in zip(w, y, strict=True))
        c = sum(w) - sum(wi * wi for wi in w) / sum(w)
        tau2 = max(0.0, (q - (k - 1)) / c) if k > 1 else 0.0
        ws = [1 / (x + tau2) for x in s2]
        mu = sum(wi * yi for wi, yi in zip(ws, y, strict=True)) / sum(ws)
        se = math.sqrt(1 / sum(ws))
        i2 = (max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0) if k > 1 else None
        return mu, mu - 1.959963984540054 * se, mu + 1.959963984540054 * se, tau2, i2

    if not d:
        return {"mailboxes": 0}
    mu, low, high, tau2, i2 = dl(d, v)
    return {
        "mailboxes": len(d),
        "pooled_diff": mu,
        "pooled_low": low,
        "pooled_high": high,
        "tau2": tau2,
        "i2": i2,
        "pooled_ham_rate": dl(ph_, vh_)[0],
        "pooled_spam_rate": dl(ps_, vs_)[0],
    }


@pytest.fixture(scope="module")
def original_study(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("study")
    results, written = original_study_results(base)
    bundles, key = [], base / "participant.key"
    for number in range(1, len(ORIGINAL_TABLE) + 1):
        bundle = build_bundle(
            results / f"mailbox{number}",
            include_messages=number in WITH_MESSAGES,
            key_path=key,
        )
        bundles.append(write_bundle(bundle, base / "bundles" / f"mailbox{number}.zip"))
    out = base / "study"
    assert main(["study", *map(str, bundles), "--out", str(out)]) == 0
    return {"out": out, "bundles": bundles, "written": list(written.values()), "base": base}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_study_of_the_original_22_mailboxes(original_study: dict) -> None:
    out = original_study["out"]
    with (out / "study.csv").open() as fh:
        assert next(csv.reader(fh)) == STUDY_CSV_COLUMNS
    study = {r["check"]: r for r in _rows(out / "study.csv")}
    boxes = _rows(out / "mailboxes.csv")
    # the study sees exactly the table's mailbox sizes
    for number, (n_ham, n_spam) in enumerate(ORIGINAL_TABLE, 1):
        row = next(
            r for r in boxes if r["mailbox"] == str(number) and r["check"] == POOLED_CHECKS[0]
        )
        assert (int(row["ham_total"]), int(row["spam_total"])) == (n_ham, n_spam)
    assert len({r["bundle_id"] for r in boxes}) == 22
    for check in POOLED_CHECKS:
        cells = []
        for number, msgs in enumerate(original_study["written"], 1):
            hm, hn = expected(msgs["ham"], check)
            sm, sn = expected(msgs["spam"], check)
            cells.append((hm, hn, sm, sn))
            row = next(r for r in boxes if r["mailbox"] == str(number) and r["check"] == check)
            got = tuple(int(row[k]) for k in ("ham_matched", "ham_applicable", "spam_matched",
                                              "spam_applicable"))  # fmt: skip
            assert got == (hm, hn, sm, sn), (check, number)
        want = independent_dl(cells)
        got_row = study[check]
        assert int(got_row["mailboxes"]) == want["mailboxes"]
        assert int(got_row["ham_messages"]) == sum(c[1] for c in cells if c[1] and c[3])
        for key, value in want.items():
            if key == "mailboxes":
                continue
            if value is None:
                assert got_row[key] == ""
            else:
                assert float(got_row[key]) == pytest.approx(value, abs=2e-6), (check, key)
    # the nine mailboxes without spam are not in the pooled difference
    assert int(study["internal.internal"]["mailboxes"]) == 13


def test_study_html_has_forest_scatter_table_and_held_out_model(original_study: dict) -> None:
    html = (original_study["out"] / "study.html").read_text()
    srcs = re.findall(r'src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert html.count('alt="Forest plot for ') >= len(POOLED_CHECKS)
    assert 'alt="Per-mailbox ham % vs spam % for each check"' in html
    assert "<td>1,631</td><td>976</td><td>2,607</td>" in html  # the original's mailbox 2
    assert "leave one mailbox out (4 accounts, 4 with both classes)" in html
    assert "continuity" in html and "DerSimonian-Laird" in html
    assert 'mailstats versions</th><td class="l">0.1.0 (22)' in html


def test_duplicate_bundle_ids_are_refused(original_study: dict, tmp_path: Path, capsys) -> None:
    first = original_study["bundles"][0]
    again = tmp_path / "copy-of-mailbox1.zip"
    shutil.copy(first, again)
    rc = main(["study", str(first), str(original_study["bundles"][1]), str(again),
               "--out", str(tmp_path / "s")])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert "same bundle id" in err and str(again) in err and str(first) in err
    assert not (tmp_path / "s").exists()


def _rewrite(src: Path, dst: Path, change) -> Path:
    with zipfile.ZipFile(src) as zf:
        data = json.loads(zf.read("bundle.json"))
    change(data)
    with zipfile.ZipFile(dst, "w") as zf:
        zf.writestr("bundle.json", json.dumps(data))
    return dst


def test_bad_bundles_are_named_and_refused(original_study: dict, tmp_path: Path, capsys) -> None:
    src = original_study["bundles"][1]
    (tmp_path / "notzip.zip").write_text("hello")
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as zf:
        zf.writestr("other.txt", "x")

    def newer(d: dict) -> None:
        d["schema_version"] = 99

    def bad_counts(d: dict) -> None:
        d["counts"][0]["matched"] = d["counts"][0]["total"] + 1

    def bad_hours(d: dict) -> None:
        first = next(iter(d["hours"]))
        d["hours"][first]["ham"]["matched"] = [1] * 23

    cases = {
        tmp_path / "notzip.zip": "not a zip file",
        tmp_path / "empty.zip": "no bundle.json",
        _rewrite(src, tmp_path / "newer.zip", newer): "upgrade mailstats",
        _rewrite(src, tmp_path / "counts.zip", bad_counts): "does not hold",
        _rewrite(src, tmp_path / "hours.zip", bad_hours): "24 whole-number bins",
        tmp_path / "missing.zip": "no such file",
    }
    for path, message in cases.items():
        assert main(["study", str(src), str(path), "--out", str(tmp_path / "s")]) == 2
        err = capsys.readouterr().err
        assert message in err and str(path) in err and "Traceback" not in err


def test_module_versions_that_differ_are_left_out(original_study: dict, tmp_path: Path,
                                                  capsys) -> None:  # fmt: skip
    b = original_study["bundles"]

    def bump(d: dict) -> None:
        d["modules"]["internal"] = "2"
        d["bundle_id"] = "f" * 32

    changed = _rewrite(b[1], tmp_path / "v2.zip", bump)
    out = tmp_path / "s"
    assert main(["study", str(b[0]), str(changed), str(b[2]), "--out", str(out), "--no-model"]) == 0
    err = capsys.readouterr().err
    assert "module internal ran in different versions" in err
    checks = {r["check"] for r in _rows(out / "study.csv")}
    assert "internal.internal" not in checks and "list.is_list" in checks
    assert "internal versions differ" in (out / "study.html").read_text()


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 300), st.floats(0, 1), st.integers(1, 300), st.floats(0, 1)),
        min_size=1,
        max_size=12,
    )
)
def test_pooling_equals_the_textbook_formula(boxes: list) -> None:
    """Any mailboxes, 0 % and 100 % rates included: statsmodels' pooling (with the tau^2
    truncation and the continuity correction) equals the formulas written out above."""
    cells = [(round(ph * hn), hn, round(ps * sn), sn) for hn, ph, sn, ps in boxes]
    counts = [
        MailboxCounts(str(i), "x", "c.x", hn, hm, hn, sn, sm, sn)
        for i, (hm, hn, sm, sn) in enumerate(cells)
    ]
    row, effects = pool_check("c.x", counts)
    want = independent_dl(cells)
    assert row["mailboxes"] == want["mailboxes"] == len(effects)
    for key, value in want.items():
        if key == "mailboxes":
            continue
        if value is None:
            assert row[key] is None
        else:
            assert row[key] == pytest.approx(value, abs=1e-9), key
    assert row["pooled_low"] <= row["pooled_diff"] <= row["pooled_high"]
    assert row["tau2"] >= 0 and (row["i2"] is None or 0 <= row["i2"] <= 1)


def test_pooling_without_both_classes_is_empty() -> None:
    counts = [MailboxCounts("1", "x", "c.x", 10, 5, 10, 0, 0, 0)]
    row, effects = pool_check("c.x", counts)
    assert effects == [] and row["mailboxes"] == 0
    assert row["pooled_diff"] is None and row["i2"] is None
