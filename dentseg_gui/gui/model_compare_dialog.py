"""After a fine-tune: the new model against the previous one, and the user's choice for the folder.

Shows ``model.version_compare.comparison_rows``: per model Dice PAB / enamel, landmark
error, PAB thickness, height, crest-CEJ and area errors, the number of cases compared
and how many the plausibility check flagged; the better value of each row is marked.
When no case was left to compare on it says so plainly. Two buttons: "Use the new model
for this folder" (``choice`` 'adopt') and "Keep the previous model" ('keep').
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout)

from ..model.version_compare import comparison_rows

BETTER = QColor("#d8f0dc")
WORSE = QColor("#f8dcd8")


class ModelCompareDialog(QDialog):
    chosen = Signal(str)          # 'adopt' | 'keep'

    def __init__(self, result: dict[str, Any], new_name: str, previous_name: str, folder: Path,
                 n_training: int, parent=None):
        super().__init__(parent)
        self.result = result
        self.choice: str | None = None
        self.setWindowTitle("New model – compare before you use it")
        n = int(result.get("n_compared") or 0)
        head = QLabel(self)
        head.setWordWrap(True)
        head.setTextFormat(Qt.TextFormat.RichText)
        head.setText(
            f"<b>{new_name}</b> (new, fine-tuned on {n_training} case{'s' if n_training != 1 else ''}) "
            f"against <b>{previous_name}</b> (the model now used for <b>{Path(folder).name}</b>), "
            f"on the folder's annotated cases that the new model was <i>not</i> trained on.")
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        note = str(result.get("note") or "")
        n_train, n_unrev, n_incomplete = (len(result.get(k) or []) for k in
                                          ("excluded_training", "excluded_unreviewed", "excluded_incomplete"))
        extra = (f"Compared on {n} case(s); left out: {n_train} training case(s)"
                 + (f", {n_unrev} unreviewed model output(s)" if n_unrev else "")
                 + (f", {n_incomplete} without both PAB and enamel drawn" if n_incomplete else "") + ".")
        self.note.setText((f"<b style='color:#b35c00'>{note}</b><br>" if note else "") + extra)
        self.note.setTextFormat(Qt.TextFormat.RichText)

        rows = comparison_rows(result)
        self.table = QTableWidget(len(rows), 3, self)
        self.table.setHorizontalHeaderLabels(["", f"Previous: {previous_name}", f"New: {new_name}"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        bold = QFont()
        bold.setBold(True)
        for i, (label, old, new, better) in enumerate(rows):
            self.table.setItem(i, 0, QTableWidgetItem(label))
            for col, text in ((1, old), (2, new)):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if better is not None:
                    wins = better if col == 2 else not better
                    item.setBackground(QBrush(BETTER if wins else WORSE))
                    if wins:
                        item.setFont(bold)
                self.table.setItem(i, col, item)
        h = self.table.horizontalHeader()
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        h.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.resizeRowsToContents()
        height = self.table.horizontalHeader().height() + sum(self.table.rowHeight(i) for i in range(len(rows))) + 6
        self.table.setMinimumHeight(height)
        self.table.setMaximumHeight(height)
        legend = QLabel("<span style='color:#666'>Green: the better value of a row. Errors are means over the "
                        "cases, in mm (area in %). The new model is kept as a version either way "
                        "(Model › Versions); you can switch later.</span>", self)
        legend.setWordWrap(True)

        self.adopt_button = QPushButton("Use the new model for this folder", self)
        self.keep_button = QPushButton("Keep the previous model", self)
        self.adopt_button.clicked.connect(lambda: self._choose("adopt"))
        self.keep_button.clicked.connect(lambda: self._choose("keep"))
        (self.adopt_button if n else self.keep_button).setDefault(True)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.keep_button)
        buttons.addWidget(self.adopt_button)
        lay = QVBoxLayout(self)
        lay.addWidget(head)
        lay.addWidget(self.note)
        lay.addWidget(self.table)
        lay.addWidget(legend)
        lay.addLayout(buttons)
        self.resize(620, self.sizeHint().height())

    def _choose(self, choice: str) -> None:
        self.choice = choice
        self.chosen.emit(choice)
        self.accept()

    def reject(self) -> None:      # Esc / closing the window keeps the previous model
        if self.choice is None:
            self.choice = "keep"
            self.chosen.emit("keep")
        super().reject()
