"""The bundled demo runs offline and reproduces the generator's counts exactly."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from mailstats.cli import demo_dir, main


def test_demo_offline_exact(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "received.from_match" in printed and "INBOX (ham): 120 messages" in printed
    expected = {
        (e["folder"], e["check"]): (e["matched"], e["applicable"], e["total"])
        for e in json.loads((demo_dir() / "expected.json").read_text())
    }
    with (out / "summary.csv").open() as fh:
        got = {
            (r["folder"], r["check"]): (int(r["matched"]), int(r["applicable"]), int(r["total"]))
            for r in csv.DictReader(fh)
        }
    assert len(expected) == 78
    assert {k: got.get(k) for k in expected} == expected
    manifest = json.loads((out / "manifest.json").read_text())
    # every DNS answer came from the bundled snapshot: nothing was asked on the network
    assert set(manifest["dns"]) == {"cache_hit", "distinct_pairs"}
    assert manifest["dns_trust"]["status"] == "unchecked"
    assert manifest["counts"]["module_errors"] == 0


def test_demo_report_renders_every_section(tmp_path: Path) -> None:
    """The whole chain on real outputs: batch, indicators, model, plots, one HTML file."""
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quiet", "--report"]) == 0
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5
    assert "Traceback" not in html
