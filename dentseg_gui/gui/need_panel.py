"""The "Annotate next" dock: the open folder's unannotated cases, neediest first.

A thin view of ``ActiveLearningController.ranking`` (``model.need_ranking.RankedCase``):
rank, need score (0-1, shaded), and the case name with the reason in words below it
(two lines, so a narrow dock clips neither). A click opens the case;
"Open next" opens the top case still unannotated; "Rank again" re-ranks (cheap: scores
are cached per model and image).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

if TYPE_CHECKING:  # pragma: no cover
    from .active_learning import ActiveLearningController

COLUMNS = ("#", "Need", "Case  ·  why")
COL_RANK, COL_NEED, COL_CASE = range(3)
#: the case's path (all cells) and the reason in words (the case cell)
PATH_ROLE = Qt.ItemDataRole.UserRole
REASON_ROLE = Qt.ItemDataRole.UserRole + 1


def need_colour(score: float | None) -> QColor:
    """White (no need) to a warm orange (annotate first)."""
    if score is None:
        return QColor("#eeeeee")
    s = max(0.0, min(1.0, float(score)))
    return QColor(int(255 - 20 * s), int(255 - 110 * s), int(255 - 190 * s))


class NeedRankingPanel(QWidget):
    def __init__(self, controller: "ActiveLearningController", parent=None):
        super().__init__(parent)
        self.controller = controller
        self.summary = QLabel("Rank the unannotated cases of the open folder to see which one the model "
                              "needs most.", self)
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(False)
        self.table.setStyleSheet("QTableWidget::item { padding: 3px 4px; }")
        self.table.setWordWrap(True)
        self.table.verticalHeader().setDefaultSectionSize(2 * self.fontMetrics().height() + 10)
        h = self.table.horizontalHeader()
        h.setSectionResizeMode(COL_RANK, QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(COL_NEED, QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(COL_CASE, QHeaderView.ResizeMode.Stretch)
        h.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        h.setHighlightSections(False)
        h.sectionResized.connect(lambda *_: self.table.resizeRowsToContents())
        self.table.cellActivated.connect(self._open_row)
        self.table.cellClicked.connect(self._open_row)
        self.rank_button = QPushButton("Rank again", self)
        self.rank_button.setToolTip("Score the unannotated cases again with the folder's model "
                                    "(scores already computed are reused)")
        self.next_button = QPushButton("Open next (Ctrl+Shift+N)", self)
        self.next_button.setToolTip("Open the neediest case that nobody has annotated yet")
        self.rank_button.clicked.connect(lambda: controller.rank())
        self.next_button.clicked.connect(lambda: controller.annotate_next())
        buttons = QHBoxLayout()
        buttons.addWidget(self.rank_button)
        buttons.addWidget(self.next_button)
        buttons.addStretch(1)
        self.legend = QLabel("<span style='color:#666'>Need 0–1 from: the two views (image and its "
                             "mirror) disagreeing, the model's uncertainty, its weakest landmark and "
                             "the plausibility check.</span>", self)
        self.legend.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.summary)
        lay.addWidget(self.table, 1)
        lay.addLayout(buttons)
        lay.addWidget(self.legend)
        controller.rankingChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        c = self.controller
        rows = c.ranking
        self.table.setRowCount(len(rows))
        done = c.annotated_since_ranking()
        for i, r in enumerate(rows):
            annotated = r.image_path in done
            score = "–" if r.score is None else f"{r.score:.2f}"
            why = "annotated since ranking" if annotated else r.reason_text()
            cells = {COL_RANK: str(i + 1), COL_NEED: score, COL_CASE: f"{r.image_path.name}\n{why}"}
            for col, text in cells.items():
                item = QTableWidgetItem(text)
                item.setData(PATH_ROLE, str(r.image_path))
                item.setData(REASON_ROLE, why)
                if col != COL_CASE:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if col == COL_NEED:
                    item.setBackground(QBrush(need_colour(r.score)))
                    item.setForeground(QBrush(QColor("#222222")))
                tip = r.error or (f"{r.image_path}\nneed {r.score:.2f}: " + why
                                  + ("\n(score from the cache)" if r.cached else ""))
                item.setToolTip(tip)
                if annotated or r.score is None:
                    item.setForeground(QBrush(QColor("#999999")))
                self.table.setItem(i, col, item)
        self.table.resizeRowsToContents()          # a long reason wraps onto a third line, never clipped
        self.summary.setText(c.summary_text())
        self.next_button.setEnabled(bool(rows))

    def _open_row(self, row: int, _col: int = 0) -> None:
        item = self.table.item(row, COL_CASE)
        if item is not None:
            self.controller.open_case(Path(item.data(PATH_ROLE)))
