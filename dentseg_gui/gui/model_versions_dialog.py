"""Model › Manage versions: the fine-tuned models kept in the user data folder, to rename or delete.

One row per version (``model.model_versions.ModelRegistry``): its name, when it was made,
how many cases it was trained on, how it compared on the cases it was not trained on, and
which folders use it. Damaged versions are listed too (greyed, with the reason as a
tooltip) so that they can be deleted. Deleting asks first and names the folders that go
back to the app default; the version that is the app's default model cannot be deleted
(choose another in Model › Choose model first). Registry errors arrive as messages.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QBrush, QColor, QDesktopServices
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QHBoxLayout, QHeaderView, QInputDialog, QLabel,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout)

from ..core.errors import DentsegError
from . import messages

COLUMNS = ("Name", "Made", "Trained on", "On the folder's other cases", "Used by")
DAMAGED = QColor("#8a8a8a")


class ModelVersionsDialog(QDialog):
    changed = Signal()          # a version was renamed or deleted

    def __init__(self, registry, app_default: str | None = None, parent=None):
        super().__init__(parent)
        self.registry = registry
        self.app_default = Path(app_default).resolve() if app_default else None
        self.setWindowTitle("Model versions")
        self.resize(860, 320)
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.rename_button = QPushButton("Rename…", self)
        self.delete_button = QPushButton("Delete…", self)
        self.show_button = QPushButton("Show files", self)
        close = QPushButton("Close", self)
        self.rename_button.clicked.connect(lambda: self.rename_selected())
        self.delete_button.clicked.connect(lambda: self.delete_selected())
        self.show_button.clicked.connect(self.show_selected)
        close.clicked.connect(self.accept)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        buttons = QHBoxLayout()
        for b in (self.rename_button, self.delete_button, self.show_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.note)
        lay.addWidget(self.table, 1)
        lay.addLayout(buttons)
        self._ids: list[str] = []
        self._damaged: set[str] = set()
        self.refresh()

    # ------------------------------------------------------------------ the list
    def refresh(self, select: str | None = None) -> None:
        try:
            versions, broken = self.registry.list_versions()
            users = self.registry.folders_by_version()
        except DentsegError as exc:
            versions, broken, users = [], {}, {}
            self.note.setText(f"The model versions cannot be read: {exc}")
        else:
            self.note.setText(f"{len(versions)} fine-tuned model version(s) in {self.registry.dir}. "
                              "A folder whose version is deleted goes back to the app's default model."
                              if versions or broken else
                              "No fine-tuned model yet: Model › Train keeps each new model here.")
        self._ids = [v.id for v in versions] + sorted(broken)
        self._damaged = set(broken)
        self.table.setRowCount(len(self._ids))
        for r, v in enumerate(versions):
            s = ((v.evaluation or {}).get("new") or {}).get("summary") or {}
            compared = "not compared"
            if s.get("dice_pab") is not None and s.get("n_cases"):
                compared = f"Dice PAB {s['dice_pab']:.3f}"
                if s.get("dice_enamel") is not None:
                    compared += f", enamel {s['dice_enamel']:.3f}"
                compared += f" ({s['n_cases']} case{'s' if s['n_cases'] != 1 else ''})"
            decision = (v.evaluation or {}).get("decision")
            if decision:
                compared += " · adopted" if decision == "adopt" else " · kept the previous"
            used = users.get(v.id) or []
            default = self.app_default is not None and v.model_path.resolve() == self.app_default
            used_text = ", ".join(Path(f).name for f in used) + (" (app default)" if default else "")
            cells = (v.name, v.created[:16].replace("T", " "), f"{len(v.training_cases)} case(s)", compared,
                     used_text.strip() or "-")
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{v.dir}" + ("\n" + "\n".join(used) if used else ""))
                self.table.setItem(r, c, item)
        for r, name in enumerate(sorted(broken), start=len(versions)):
            for c, text in enumerate((f"⚠ {name} (damaged)", "", "", "", "-")):
                item = QTableWidgetItem(text)
                item.setForeground(QBrush(DAMAGED))
                item.setToolTip(broken[name])
                self.table.setItem(r, c, item)
        if select in self._ids:
            self.table.selectRow(self._ids.index(select))
        elif self._ids:
            self.table.selectRow(0)
        self._update_buttons()

    def selected_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self._ids[rows[0].row()] if rows and rows[0].row() < len(self._ids) else None

    def select(self, version_id: str) -> None:
        self.table.selectRow(self._ids.index(version_id))

    def _update_buttons(self) -> None:
        vid = self.selected_id()
        self.rename_button.setEnabled(vid is not None and vid not in self._damaged)
        self.delete_button.setEnabled(vid is not None)
        self.show_button.setEnabled(vid is not None)

    # ------------------------------------------------------------------ actions
    def rename_selected(self, name: str | None = None) -> bool:
        """Rename the selected version (``name`` None: ask for it)."""
        vid = self.selected_id()
        if vid is None or vid in self._damaged:
            return False
        if name is None:
            current = self.registry.get(vid).name
            name, ok = QInputDialog.getText(self, "Rename model version", "Name:", text=current)
            if not ok:
                return False
        try:
            self.registry.rename_version(vid, name)
        except DentsegError as exc:
            messages.show_error(self, "Rename model version", str(exc))
            return False
        self.refresh(select=vid)
        self.changed.emit()
        return True

    def delete_selected(self, confirmed: bool | None = None) -> bool:
        """Delete the selected version after asking (``confirmed`` answers instead of asking)."""
        vid = self.selected_id()
        if vid is None:
            return False
        damaged = vid in self._damaged
        try:
            v = None if damaged else self.registry.get(vid)
            users = self.registry.folders_using(vid)
        except DentsegError as exc:
            messages.show_error(self, "Delete model version", str(exc))
            return False
        if v is not None and self.app_default is not None and v.model_path.resolve() == self.app_default:
            messages.show_error(self, "Delete model version",
                                f"{v.name} is the app's default model. Choose another one in Model › Choose "
                                "model first, then delete it.")
            return False
        label = vid if v is None else v.name
        text = f"Delete the model version {label}? Its files are removed; this cannot be undone."
        if users:
            text += ("\n\nThese folders use it and will go back to the app's default model:\n"
                     + "\n".join(users))
        if confirmed is None:
            confirmed = messages.ask_yes_no(self, "Delete model version", text, default=False)
        if not confirmed:
            return False
        try:
            self.registry.delete_version(vid)
        except DentsegError as exc:
            messages.show_error(self, "Delete model version", str(exc))
            self.refresh()
            return False
        self.refresh()
        self.changed.emit()
        return True

    def show_selected(self) -> None:
        vid = self.selected_id()
        if vid is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.registry.dir / vid)))
