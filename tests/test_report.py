"""report.html: self-contained, escaped, and honest about missing data."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from mailstats.stats.combined import load_messages
from mailstats.stats.report import labels_sentence, phi_matrix, write_report

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
    assert "No mailbox has both ham and spam" in html
    assert "No datetime.hour column" in html
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
