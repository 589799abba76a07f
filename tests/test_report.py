"""report.html: self-contained, escaped, and honest about missing data."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailstats.stats.combined import load_messages
from mailstats.stats.report import labels_sentence, phi_matrix, write_report
from mailstats.stats.report_messages import age_buckets

BASE = ["account", "folder", "role", "uid", "message_id", "date", "from_address", "origin_ip"]
EVIL_ACCOUNT = "<script>alert('x')</script>"
EVIL_CHECK = "x.<b>bold</b>&co"


def make_results(
    path: Path,
    messages: list[dict[str, str]],
    checks: list[str],
    extras: list[str],
    accounts: list[dict] | None = None,
    network: list[str] | None = None,
) -> Path:
    """A minimal `mailstats --batch` output directory; summary.csv derived from the rows."""
    path.mkdir(parents=True, exist_ok=True)
    header = BASE + checks + extras
    with open(path / "messages.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        for m in messages:
            w.writerow({k: m.get(k, "") for k in header})
    summary: dict[tuple[str, str, str, str], list[int]] = {}
    for m in messages:
        for c in checks:
            key = (m["account"], m["folder"], m["role"], c)
            s = summary.setdefault(key, [0, 0, 0])
            s[2] += 1
            if m.get(c, "") != "":
                s[1] += 1
                s[0] += m[c] == "1"
    with open(path / "summary.csv", "w", newline="") as fh:
        w2 = csv.writer(fh)
        w2.writerow(["account", "folder", "role", "check", "matched", "applicable", "total"])
        for (a, f, r, c), (mt, ap, t) in summary.items():
            w2.writerow([a, f, r, c, mt, ap, t])
    manifest = {
        "mailstats_version": "0.1.0",
        "started": "2024-06-01T00:00:00+00:00",
        "checks": checks,
        "extras": extras,
        "network_checks": network or [],
        "accounts": accounts or [],
        "plots": {"hour_of_day": "datetime.hour"} if "datetime.hour" in extras else {},
    }
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def _rich(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    checks = ["dkim.valid", EVIL_CHECK, "never.none"]
    msgs = []
    uid = 0
    for account in ("a", "b", EVIL_ACCOUNT):
        for role, p in (("ham", 0.8), ("spam", 0.2), ("sent", 0.9)):
            for _ in range(30):
                uid += 1
                msgs.append(
                    {
                        "account": account,
                        "folder": "Junk & <Spam>" if role == "spam" else "INBOX",
                        "role": role,
                        "uid": str(uid),
                        "dkim.valid": "1" if rng.random() < p else "0",
                        EVIL_CHECK: "1" if rng.random() < 1 - p else "0",
                        "never.none": "",
                        "datetime.hour": str(int(rng.integers(0, 24))),
                        "age_days": str(int(rng.integers(0, 900))),
                    }
                )
    accounts = [
        {"name": "a", "labels": "hand", "status": "ok", "folders": []},
        {"name": EVIL_ACCOUNT, "labels": "provider", "status": "ok", "error": "<img src=x>"},
    ]
    return make_results(
        tmp_path / "rich",
        msgs,
        checks,
        ["datetime.hour", "age_days"],
        accounts=accounts,
        network=["dkim.valid"],
    )


def test_full_report_is_self_contained_and_escaped(tmp_path: Path) -> None:
    out = write_report(_rich(tmp_path))
    assert out.name == "report.html"
    html = out.read_text()
    # Escaped: no raw markup from the data anywhere.
    assert "<script>" not in html and "<b>bold</b>" not in html and "<img src=x>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "x.&lt;b&gt;bold&lt;/b&gt;&amp;co" in html
    # Self-contained: every image is a data URI, nothing loaded from elsewhere.
    srcs = re.findall(r'src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http://" not in html and "https://" not in html and "<link" not in html
    # rates, scatter, hours, age, overlap, importances, tree
    assert len(srcs) == 7
    assert "partly circular" in html
    assert "leave one mailbox out" in html
    assert 'class="nodata"' not in html.split("Per mailbox")[0]  # rates plot present


def test_out_path_and_degraded_report(tmp_path: Path) -> None:
    # Ham only, no hour column, no network checks: text instead of empty plots, no crash.
    msgs = [
        {"account": "solo", "folder": "INBOX", "role": "ham", "uid": str(i), "c.x": "1"}
        for i in range(5)
    ]
    d = make_results(tmp_path / "thin", msgs, ["c.x"], [])
    out = write_report(d, tmp_path / "elsewhere.html")
    assert out == tmp_path / "elsewhere.html"
    html = out.read_text()
    assert "too few for the per-mailbox scatter plots" in html
    assert "No hour-of-day column" in html
    assert "No network checks" in html
    assert "Fewer than two checks" in html
    assert "not enough data" in html
    # The ranked rates plot still exists (ham rate known), nothing else is an image.
    assert html.count("data:image/png") == 1


def test_empty_dir_does_not_crash(tmp_path: Path) -> None:
    html = write_report(tmp_path).read_text()
    assert "No manifest.json" in html
    assert "No summary.csv rows" in html
    assert "data:image/png" not in html


def test_labels_sentence() -> None:
    assert "by hand" in labels_sentence({"accounts": [{"name": "a", "labels": "hand"}]})
    both = labels_sentence(
        {"accounts": [{"name": "a", "labels": "hand"}, {"name": "b", "labels": "provider"}]}
    )
    assert "partly circular" in both and "b" in both
    assert "not recorded" in labels_sentence({})


def test_phi_matrix_by_hand(tmp_path: Path) -> None:
    # 4 messages: p = [1,1,0,0], q = [1,0,0,0] -> phi = (1*2 - 1*0) / sqrt(2*2*1*3) = 1/sqrt(3).
    # r = 1 - p -> phi(p, r) = -1. s is None on two messages and constant elsewhere -> NaN.
    rows = []
    for i, (p, q, s) in enumerate(
        [("1", "1", "1"), ("1", "0", ""), ("0", "0", "1"), ("0", "0", "")]
    ):
        rows.append(
            {
                "account": "a",
                "folder": "F",
                "role": "ham" if i % 2 else "spam",
                "uid": str(i),
                "p.p": p,
                "q.q": q,
                "r.r": "0" if p == "1" else "1",
                "s.s": s,
            }
        )
    rows.append({"account": "a", "folder": "S", "role": "sent", "uid": "9", "p.p": "1", "q.q": "0"})
    d = make_results(tmp_path / "phi", rows, ["p.p", "q.q", "r.r", "s.s"], [])
    names, phi = phi_matrix(load_messages(d))
    assert names == ["p.p", "q.q", "r.r", "s.s"]
    assert phi[0, 1] == pytest.approx(1 / np.sqrt(3))
    assert phi[0, 2] == pytest.approx(-1.0)
    assert phi[0, 0] == pytest.approx(1.0)
    assert np.isnan(phi[0, 3]) and np.isnan(phi[3, 3])


def test_scatter_from_three_mailboxes_table_below(tmp_path: Path) -> None:
    def results(name: str, accounts: list[str]) -> str:
        msgs = [
            {"account": a, "folder": role, "role": role, "uid": str(i), "c.x": str(i % 2)}
            for a in accounts
            for role in ("ham", "spam")
            for i in range(6)
        ]
        return write_report(make_results(tmp_path / name, msgs, ["c.x"], [])).read_text()

    two = results("two", ["m1", "m2"])
    assert "too few for the per-mailbox scatter plots" in two
    per_mailbox = two.split("<h2>Per mailbox</h2>")[1]
    assert "data:image/png" not in per_mailbox.split("<h2>")[0]
    assert '<td class="l">m2</td><td class="l">c.x</td><td>3/6</td>' in per_mailbox
    three = results("three", ["m1", "m2", "m3"]).split("<h2>Per mailbox</h2>")[1]
    assert "data:image/png" in three.split("<h2>")[0] and "too few" not in three


def test_run_table_counts_errors_and_ranking_is_explained(tmp_path: Path) -> None:
    msgs = [{"account": "a", "folder": "INBOX", "role": "ham", "uid": "1", "c.x": "1"}]
    folders = [
        {"folder": "INBOX", "role": "ham", "total": 1, "errors": {}},
        {"folder": "Junk", "role": "spam", "total": 1, "errors": {"dkim": 2, "spf": 1}},
    ]
    accounts = [{"name": "a", "labels": "hand", "status": "ok", "folders": folders}]
    d = make_results(tmp_path / "err", msgs, ["c.x"], [], accounts=accounts)
    html = write_report(d).read_text()
    assert "{}" not in html and "{&#x27;" not in html
    assert "<td>0</td></tr>" in html and "<td>3 (dkim 2, spf 1)</td>" in html
    assert "How checks are ranked" in html and "Wilson" in html


def test_report_is_listed_in_the_manifest_outputs(tmp_path: Path) -> None:
    msgs = [{"account": "a", "folder": "INBOX", "role": "ham", "uid": "1", "c.x": "1"}]
    d = make_results(tmp_path / "m", msgs, ["c.x"], [])
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["outputs"] = ["summary.csv", "manifest.json"]
    (d / "manifest.json").write_text(json.dumps(manifest))
    write_report(d, tmp_path / "elsewhere.html")  # not in the folder: not listed
    assert json.loads((d / "manifest.json").read_text())["outputs"] == manifest["outputs"]
    write_report(d)
    write_report(d)
    outputs = json.loads((d / "manifest.json").read_text())["outputs"]
    assert outputs == ["summary.csv", "manifest.json", "report.html"]


@settings(derandomize=True, max_examples=200)
@given(st.lists(st.floats(0, 5000), min_size=1, max_size=300))
def test_age_buckets_cover_every_age_and_split_by_quantiles(ages: list[float]) -> None:
    arr = np.array(ages)
    buckets = age_buckets(arr)
    assert 1 <= len(buckets) <= 4
    counts = [int(((arr >= lo) & (arr < hi)).sum()) for _label, lo, hi in buckets]
    assert sum(counts) == len(arr)  # every age in exactly one bucket (they do not overlap)
    if len(set(ages)) >= 40 and len(ages) >= 200:  # distinct enough: about a quarter each
        assert max(counts) <= 0.5 * len(arr)


def test_age_buckets_fit_an_archive_of_old_mail() -> None:
    # fixed bins would put all of this in "> 1 year"
    ages = np.linspace(400, 3000, 101)
    buckets = age_buckets(ages)
    assert len(buckets) == 4
    assert [int(((ages >= lo) & (ages < hi)).sum()) for _l, lo, hi in buckets] == [25, 25, 25, 26]
