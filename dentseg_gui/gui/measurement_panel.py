"""The measurement dock: every key of ``core.measurements.MEASUREMENT_KEYS``.

One row per key, value with its unit, and where a value is missing the reason
("landmark apex not placed") instead of a blank or a zero. The panel only
mirrors a ``MeasurementSet``; the window feeds it from the document's
``measurementsChanged`` signal, so it updates after every edit.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont, QGuiApplication
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

MISSING_COLOUR = QColor("#9a6a00")


def _keys():
    from ..core.measurements import MEASUREMENT_KEYS
    return MEASUREMENT_KEYS


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    digits = 1 if unit in ("°", "mm²") else 2
    return f"{value:.{digits}f} {unit}"


class MeasurementPanel(QWidget):
    """Table of measurements; contract keys first, extras after a divider row."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._keys = list(_keys())
        self._set = None
        self.table = QTableWidget(0, 2, self)
        self.table.setHorizontalHeaderLabels(["Measurement", "Value"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.status = QLabel("No case open.", self)
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #666;")
        self.copy_button = QPushButton("Copy", self)
        self.copy_button.setToolTip("Copy the table as tab-separated text (paste into a spreadsheet)")
        self.copy_button.clicked.connect(self.copy_to_clipboard)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.copy_button, 0, Qt.AlignmentFlag.AlignTop)
        self.info = QLabel("", self)
        self.info.setWordWrap(True)
        self.info.setMinimumHeight(60)
        self.info.setTextFormat(Qt.TextFormat.RichText)
        self.info.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.info.setStyleSheet("QLabel { background: palette(base); border: 1px solid palette(mid);"
                                " padding: 4px; }")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.table, 3)
        lay.addLayout(bottom)
        lay.addWidget(self.info, 1)   # takes what the table leaves, so no empty grey band
        self._rows: dict[str, int] = {}
        self._build_rows()
        # never taller than its rows: the space below goes to the next dock, not to white
        rows_h = sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
        self.table.setMaximumHeight(rows_h + self.table.horizontalHeader().sizeHint().height()
                                    + 2 * self.table.frameWidth() + 2)

    def _build_rows(self) -> None:
        rows = [k for k in self._keys if k.contract] + [None] + [k for k in self._keys if not k.contract]
        self.table.setRowCount(len(rows))
        bold = QFont()
        bold.setBold(True)
        for r, k in enumerate(rows):
            if k is None:
                item = QTableWidgetItem("More measurements")
                item.setFont(bold)
                item.setForeground(QBrush(QColor("#555")))
                self.table.setItem(r, 0, item)
                self.table.setItem(r, 1, QTableWidgetItem(""))
                self.table.setSpan(r, 0, 1, 2)
                continue
            name = QTableWidgetItem(k.label)
            name.setToolTip(f"{k.label}\nkey: {k.key} ({k.unit})")
            self.table.setItem(r, 0, name)
            val = QTableWidgetItem("—")
            val.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(r, 1, val)
            self._rows[k.key] = r

    # ------------------------------------------------------------------ API
    def set_measurements(self, ms) -> None:
        """Show a ``MeasurementSet`` (or clear with None)."""
        self._set = ms
        reasons: dict[str, list[str]] = {}
        for k in self._keys:
            item = self.table.item(self._rows[k.key], 1)
            name = self.table.item(self._rows[k.key], 0)
            value = None if ms is None else ms.values.get(k.key)
            reason = None if ms is None else ms.missing.get(k.key)
            if value is None:
                item.setText("missing" if reason else "—")
                item.setForeground(QBrush(MISSING_COLOUR if reason else QColor("#888")))
                tip = reason or "no case open"
                if reason:
                    reasons.setdefault(reason, []).append(k.key)
            else:
                item.setText(format_value(value, k.unit))
                item.setForeground(QBrush(self.palette().text().color()))
                tip = f"{value:.4f} {k.unit}"
            item.setToolTip(tip)
            name.setToolTip(f"{k.label}\nkey: {k.key}\n{tip}")
        if ms is None:
            self.status.setText("No case open.")
        elif reasons:
            parts = [f"<b>{len(keys)} missing</b>: {reason}" for reason, keys in reasons.items()]
            self.status.setText("<br>".join(parts))
        else:
            self.status.setText("All measurements available (mm, in the CEJ–apex frame).")

    def set_case_info(self, html: str) -> None:
        """The case summary under the table (image, spacing, where the regions came from)."""
        self.info.setText(html)
        self.info.setVisible(bool(html))

    def measurements(self):
        return self._set

    def value_text(self, key: str) -> str:
        return self.table.item(self._rows[key], 1).text()

    def reason_text(self, key: str) -> str:
        return self.table.item(self._rows[key], 1).toolTip()

    def as_tsv(self) -> str:
        lines = ["key\tlabel\tvalue\tunit\tmissing reason"]
        ms = self._set
        for k in self._keys:
            v = None if ms is None else ms.values.get(k.key)
            reason = "" if ms is None else ms.missing.get(k.key, "")
            lines.append(f"{k.key}\t{k.label}\t{'' if v is None else f'{v:.4f}'}\t{k.unit}\t{reason}")
        return "\n".join(lines) + "\n"

    def copy_to_clipboard(self) -> None:
        QGuiApplication.clipboard().setText(self.as_tsv())
