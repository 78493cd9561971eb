"""Which DentSeg structure each foreign label is (import from labelme or COCO)."""

from __future__ import annotations

from PySide6 import QtWidgets

from ..core.annotation import LANDMARKS, REGIONS

SKIP = "(skip)"


class LabelMapDialog(QtWidgets.QDialog):
    """One row per label found in the files: a combo with PAB, enamel, the landmarks, or skip.
    Labels that already name a target are preset to it."""

    def __init__(self, title: str, labels: dict[str, str | None], parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        lay = QtWidgets.QVBoxLayout(self)
        head = QtWidgets.QLabel("Map the labels of the files to DentSeg's structures. Shapes of a label "
                                "mapped to a region are united; a point label becomes a landmark. "
                                "Skipped labels are listed after the import.", self)
        head.setWordWrap(True)
        lay.addWidget(head)
        form = QtWidgets.QFormLayout()
        self.combos: dict[str, QtWidgets.QComboBox] = {}
        for label, target in labels.items():
            box = QtWidgets.QComboBox(self)
            box.addItems([SKIP, *REGIONS, *LANDMARKS])
            if target:
                box.setCurrentText(target)
            form.addRow(label, box)
            self.combos[label] = box
        lay.addLayout(form)
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok | QtWidgets.QDialogButtonBox.StandardButton.Cancel, self)
        buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).setText("Import")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

    def mapping(self) -> dict[str, str]:
        return {label: box.currentText() for label, box in self.combos.items() if box.currentText() != SKIP}
