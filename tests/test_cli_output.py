"""What `mailstats --batch` / `mailstats demo` print and record about a run."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest

from mailstats import cli
from mailstats.cli import demo_dir, main, run_batch


def test_demo_prints_the_ranking_after_the_table_then_what_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--report"]) == 0
    printed = capsys.readouterr().out
    table_end = printed.rindex("list.is_list")  # the last check line of the last folder
    ranking = printed.index("Ranking over all mailboxes")
    wrote = printed.index("wrote ")
    assert table_end < ranking < wrote
    assert printed.count("wrote ") == 1 and "report.html" in printed[wrote:]
    # the ranking lists indicators.csv's first checks of scope "all", in its order
    with (out / "indicators.csv").open() as fh:
        pooled = [r for r in csv.DictReader(fh) if r["scope"] == "all"]
    lines = printed[ranking:wrote].splitlines()[2:7]
    for i, (line, row) in enumerate(zip(lines, pooled[:5], strict=True), 1):
        assert line.strip().startswith(f"{i}. {row['check']} ")
        low = 100 * float(row["ham_rate_low"])
        assert f"[{low:5.1f}-" in line
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["outputs"][-1] == "report.html"
    assert manifest["jobs"] == 1 and manifest["scheduler"] is None


def test_scheduler_without_distributed_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "distributed" else real(name, *args)

    monkeypatch.setattr(cli.importlib.util, "find_spec", find_spec)
    rc = run_batch(
        str(demo_dir() / "accounts.toml"),
        str(tmp_path / "out"),
        cache=str(tmp_path / "c.sqlite"),
        scheduler="tcp://127.0.0.1:9",
        quiet=True,
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "pip install 'mailstats[cluster]'" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "summary.csv").exists()


def test_manifest_records_jobs(tmp_path: Path) -> None:
    out = tmp_path / "o"
    rc = run_batch(
        str(demo_dir() / "accounts.toml"),
        str(out),
        cache=str(tmp_path / "c.sqlite"),
        jobs=3,
        quiet=True,
        modules="received",
    )
    assert rc == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["jobs"] == 3 and manifest["scheduler"] is None
