"""Pixel spacing for the cases of a folder whose images carry none: asked once, remembered.

A folder of PNG exports has no spacing; asking per case (200 dialogs for 200
slices) is what users complained about. Instead, when a folder is opened, the
cases with no spacing of their own (no DICOM PixelSpacing, none in their
annotation file) are counted, and one question applies a spacing to all of them
("user" spacing). The answer can be remembered per folder. A case's own spacing
(DICOM or its annotation) always wins over the folder's.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtWidgets

from .case_info import parse_spacing_text
from .cases import app_settings

class FolderSpacings:
    """Spacings the user chose for folders, remembered in the settings."""

    GROUP = "spacing_by_folder"

    @staticmethod
    def _key(folder: Path) -> str:
        return str(Path(folder).resolve()).replace("/", "|").replace("\\", "|")

    def get(self, folder: Path) -> tuple[float, float] | None:
        value = app_settings().value(f"{self.GROUP}/{self._key(folder)}", None)
        if not value:
            return None
        sp = parse_spacing_text(str(value))
        return sp

    def set(self, folder: Path, spacing: tuple[float, float] | None) -> None:
        s = app_settings()
        key = f"{self.GROUP}/{self._key(folder)}"
        if spacing is None:
            s.remove(key)
        else:
            s.setValue(key, f"{spacing[0]:g}, {spacing[1]:g}")
        s.sync()


class FolderSpacingDialog(QtWidgets.QDialog):
    """'N of M cases in FOLDER have no pixel spacing: pixel size [   ] mm, [x] remember'."""

    def __init__(self, folder: Path, n_missing: int, n_total: int, initial: str = "", parent=None):
        super().__init__(parent)
        self.setWindowTitle("Pixel spacing")
        text = QtWidgets.QLabel(
            f"<b>{n_missing} of {n_total} case{'s' if n_total != 1 else ''}</b> in <i>{folder.name}</i> carry "
            "no pixel spacing (PNG, JPEG, TIFF and BMP files don't). Without it nothing can be measured, "
            "and the network sees the tooth at the wrong size.<br><br>"
            "Pixel size in mm for all of them (one value, or row, column):", self)
        text.setWordWrap(True)
        self.edit = QtWidgets.QLineEdit(initial, self)
        self.edit.setPlaceholderText("e.g. 0.125")
        self.remember = QtWidgets.QCheckBox("Remember for this folder", self)
        self.remember.setChecked(True)
        self.error = QtWidgets.QLabel("", self)
        self.error.setStyleSheet("color:#b00020;")
        buttons = QtWidgets.QDialogButtonBox(self)
        buttons.addButton("Apply to all", QtWidgets.QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton("Not now", QtWidgets.QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        lay = QtWidgets.QVBoxLayout(self)
        for w in (text, self.edit, self.remember, self.error, buttons):
            lay.addWidget(w)
        self.spacing: tuple[float, float] | None = None

    def _accept(self) -> None:
        sp = parse_spacing_text(self.edit.text())
        if sp is None:
            self.error.setText(f"“{self.edit.text()}” is not a pixel size: type one positive number of mm "
                               "(e.g. 0.125) or two (row, column).")
            return
        self.spacing = sp
        self.accept()
