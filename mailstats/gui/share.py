"""The "Share results…" dialog: the same bundle and preview as `mailstats share`.

The participant sees exactly what goes into the bundle (the preview text is the file's
content) before choosing where to save it; ticking "include anonymized messages" rebuilds
the bundle and its preview, so what is shown is always what would be written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)


class ShareDialog(QDialog):
    """Preview and save a study bundle of an exported results folder."""

    def __init__(self, results_dir: str | Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Share results for a study")
        self.results_dir = Path(results_dir)
        self.bundle: Any = None
        self.written: Path | None = None
        layout = QVBoxLayout(self)
        intro = QLabel(
            "A bundle holds aggregate numbers only: counts per folder and check, hour and age "
            "histograms, module versions. No addresses, host names, subjects or account names. "
            "Below is exactly what the file will contain."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.label = QLineEdit()
        self.label.setPlaceholderText("A name for this mailbox in the study (optional)")
        self.label.editingFinished.connect(self.rebuild)
        layout.addWidget(self.label)
        self.include_messages = QCheckBox(
            "Include the messages table, anonymized with a key that stays on this computer"
        )
        self.include_messages.toggled.connect(lambda _on: self.rebuild())
        layout.addWidget(self.include_messages)
        self.preview = QPlainTextEdit()
        self.preview.setReadOnly(True)
        self.preview.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        layout.addWidget(self.preview, 1)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setText("Save bundle…")
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.resize(820, 640)
        self.rebuild()

    def rebuild(self) -> None:
        """Build the bundle for the current choices and show its preview (or the error)."""
        from mailstats.study.bundle import BundleError, build_bundle, preview

        save = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        try:
            self.bundle = build_bundle(
                self.results_dir,
                label=self.label.text().strip(),
                include_messages=self.include_messages.isChecked(),
            )
        except (BundleError, OSError) as exc:
            self.bundle = None
            self.preview.setPlainText(f"No bundle can be made: {exc}")
            save.setEnabled(False)
            return
        self.preview.setPlainText(preview(self.bundle))
        save.setEnabled(True)

    def save(self, path: str | None = None) -> None:
        from mailstats.study.bundle import write_bundle

        if self.bundle is None:
            return
        if path is None:
            start = str(QSettings().value("paths/export_dir", str(Path.home())))
            path, _filter = QFileDialog.getSaveFileName(
                self,
                "Save the bundle",
                str(Path(start) / "mailstats-bundle.zip"),
                "Bundles (*.zip)",
            )
            if not path:
                return
        self.written = write_bundle(self.bundle, path)
        self.accept()
