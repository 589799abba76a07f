"""The "Share results…" dialog shows the bundle it saves, and saves exactly that."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtWidgets", reason="PySide6 is not installed")

from test_report import make_results  # noqa: E402

from mailstats.gui.share import ShareDialog  # noqa: E402
from mailstats.study.bundle import bundle_json_text, read_bundle  # noqa: E402

pytestmark = pytest.mark.gui


def _results(tmp_path: Path) -> Path:
    msgs = [
        {"account": "secret-acct", "folder": "Private", "role": role, "uid": str(i),
         "from_address": f"p{i}@hidden.example", "origin_ip": "81.2.69.142",
         "c.x": str(i % 2), "datetime.hour": str(i % 24)}
        for i, role in enumerate(["ham"] * 12 + ["spam"] * 8)
    ]  # fmt: skip
    return make_results(tmp_path / "r", msgs, ["c.x"], ["datetime.hour"])


def test_dialog_preview_is_what_it_saves(qtbot, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    dialog = ShareDialog(_results(tmp_path))
    qtbot.addWidget(dialog)
    text = dialog.preview.toPlainText()
    assert "bundle.json, exactly:" in text
    assert bundle_json_text(dialog.bundle).rstrip() in text
    assert "secret-acct" not in text and "hidden.example" not in text
    dialog.include_messages.setChecked(True)
    text = dialog.preview.toPlainText()
    assert "messages.csv, first rows of 20:" in text and "81.2.69.142" not in text
    dialog.label.setText("volunteer 7")
    dialog.rebuild()
    dialog.save(str(tmp_path / "b.zip"))
    assert dialog.written == tmp_path / "b.zip"
    back = read_bundle(tmp_path / "b.zip")
    assert back.data["label"] == "volunteer 7" and back.messages_csv is not None
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        assert zf.read("bundle.json").decode() == bundle_json_text(dialog.bundle)


def test_dialog_without_results_says_why(qtbot, tmp_path: Path) -> None:
    dialog = ShareDialog(tmp_path)
    qtbot.addWidget(dialog)
    assert "No bundle can be made" in dialog.preview.toPlainText()
    from PySide6.QtWidgets import QDialogButtonBox

    assert not dialog.buttons.button(QDialogButtonBox.StandardButton.Save).isEnabled()
