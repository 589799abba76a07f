"""The combined model on real mail: simple header features, one corpus source at a time.

Respects the corpus caveats (../shared/corpus/README.md): each source was delivered by
different servers, so ham and spam are compared only within one source; filter-verdict
headers (X-Spam-*, X-Barracuda-*, X-Microsoft-Antispam*, X-Forefront-*) are never features.
"""

from __future__ import annotations

import csv
import json
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from mailstats.stats.combined import run_model
from mailstats.stats.report import write_report

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "real"

pytestmark = pytest.mark.corpus

BASE = ["account", "folder", "role", "uid", "message_id", "date", "from_address", "origin_ip"]
FEATURES = {
    "hdr.list_id": lambda h: "List-Id" in h,
    "hdr.dkim_signature": lambda h: "DKIM-Signature" in h,
    "hdr.in_reply_to": lambda h: "In-Reply-To" in h or "References" in h,
    "hdr.user_agent": lambda h: "User-Agent" in h or "X-Mailer" in h,
    "hdr.mime_version": lambda h: "MIME-Version" in h,
}


def _manifest_rows() -> list[dict[str, str]]:
    if not (CORPUS / "manifest.csv").exists():
        pytest.skip("../shared/corpus/real is absent")
    with open(CORPUS / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def build_results(out: Path, source: str) -> tuple[Path, int, int]:
    """A messages.csv-like table for one source, from headers only (no engine)."""
    rows = [r for r in _manifest_rows() if r["source"] == source and r["label"] in ("ham", "spam")]
    parser = BytesHeaderParser(policy=compat32)
    out.mkdir(parents=True, exist_ok=True)
    n = {"ham": 0, "spam": 0}
    with open(out / "messages.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(BASE + list(FEATURES) + ["datetime.hour"])
        for uid, r in enumerate(rows, 1):
            headers = parser.parsebytes((CORPUS / r["file"]).read_bytes())
            names = set(headers.keys())
            hour = ""
            try:
                hour = str(parsedate_to_datetime(str(headers["Date"])).hour)
            except (TypeError, ValueError, IndexError):
                pass
            values = ["1" if test(names) else "0" for test in FEATURES.values()]
            # The account is the corpus group (the list or the SpamAssassin folder).
            w.writerow([r["group"], r["label"], r["label"], uid, "", "", "", ""] + values + [hour])
            n[r["label"]] += 1
    (out / "manifest.json").write_text(
        json.dumps(
            {
                "checks": list(FEATURES),
                "extras": ["datetime.hour"],
                "accounts": [{"name": source, "labels": "hand"}],
            }
        )
    )
    return out, n["ham"], n["spam"]


@pytest.mark.parametrize("source", ["spamassassin_pub", "lfdr_lists"])
def test_model_runs_on_real_headers(tmp_path: Path, source: str) -> None:
    results, n_ham, n_spam = build_results(tmp_path / source, source)
    assert n_ham >= 50 and n_spam >= 50
    res = run_model(results, n_estimators=50)
    assert res.ok, res.reason
    assert (res.n_ham, res.n_spam) == (n_ham, n_spam)
    # Every group holds one class only, so no mailbox-grouped validation is possible.
    assert res.cv.startswith("stratified 5-fold")
    for m in (res.tree, res.forest):
        assert m is not None
        assert 0.0 <= m.accuracy <= 1.0 and 0.0 <= m.precision <= 1.0
        assert m.roc_auc is not None and 0.0 <= m.roc_auc <= 1.0
    assert abs(sum(res.forest_importances.values()) - 1.0) < 1e-6
    html = write_report(results, model=res).read_text()
    assert "All checks together" in html


def test_reply_headers_separate_spamassassin_ham() -> None:
    """In the 2002 SpamAssassin corpus ham is mostly list discussion (replies, User-Agent)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        results, _, _ = build_results(Path(tmp), "spamassassin_pub")
        res = run_model(results, n_estimators=50)
    assert res.ok and res.forest is not None and res.forest.roc_auc is not None
    assert res.forest.roc_auc > 0.7
