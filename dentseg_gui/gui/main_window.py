"""The DentSeg main window: wires cases, the canvas, the panels and the workers.

It owns no domain logic. Layout: the image canvas in the centre; the case list
and the layer panel on the left; measurements, undo history and training on
the right; a status bar with the cursor read-out and a progress bar with Cancel
for long work.

Flow of a case: the case list asks to open an image -> unsaved changes are
offered for saving -> a ``LoadWorker`` reads image + annotation off the GUI
thread -> a ``CaseDocument`` is made (recovering an autosave if the user
agrees) and handed to the canvas, the undo group, the measurement panel and
the autosaver. Predictions come back from a ``PredictWorker`` and enter the
document through ``apply_prediction`` (one undo step), never over hand work
without asking.
"""

from __future__ import annotations

import html
import logging
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QUndoGroup
from PySide6.QtWidgets import (QComboBox, QDockWidget, QFileDialog, QInputDialog, QLabel, QListView,
                               QMainWindow, QProgressBar, QToolButton, QUndoView, QVBoxLayout, QWidget)

from ..core.annotation import annotation_path_for
from ..core.errors import DentsegError
from ..core.provenance import flagged_quality
from . import messages
from .autosave import Autosaver, discard_autosave, pending_recoveries, recovery_for
from .cases import (STATUS_EDITED, STATUS_ERROR, CaseList, RecentFiles, annotation_status, app_settings,
                    expand_paths, find_images, flag_and_detail, has_hand_work)
from .layer_panel import LayerPanel
from .measurement_panel import MeasurementPanel
from .workers import LoadWorker, PredictJob, PredictWorker, TaskWorker

log = logging.getLogger("dentseg.gui.window")


IMAGE_FILTER = ("Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.dcm *.dicom *.ima);;"
                "DentSeg annotations (*.dentseg.json);;All files (*)")


def prediction_note_html(quality: dict | None) -> str:
    """The case info line for a flagged verdict (``core.provenance.flagged_quality``); '' for None."""
    if quality is None:
        return ""
    doubtful = quality["level"] == "doubtful"
    colour = "#b00020" if doubtful else "#b35c00"
    head = ("Model output doubtful – is this a sagittal slice through an upper incisor, "
            "with the right pixel spacing?" if doubtful else "Model output to check:")
    reasons = [html.escape(str(r)) for r in quality.get("reasons", [])]
    return (f"<span style='color:{colour}'><b>{head}</b> " + "; ".join(reasons) + "</span>")


# --------------------------------------------------------------------------- window


class MainWindow(QMainWindow):
    """The application window. ``interactive=False`` (headless runs) shows no dialogs."""

    caseLoaded = Signal(object)          # CaseDocument
    caseLoadFailed = Signal(str)         # message
    predictionFinished = Signal(str)     # 'ok' | 'failed' | 'cancelled'
    busyChanged = Signal(bool)

    def __init__(self, spacing: tuple[float, float] | None = None, interactive: bool = True,
                 restore_layout: bool = True, autosave: bool = True, parent=None):
        super().__init__(parent)
        from .canvas import ImageCanvas
        from .training_panel import TrainingPanel

        messages.set_interactive(interactive)
        self.interactive = interactive
        self.persist_layout = restore_layout   # headless runs neither read nor write the layout
        self.autosave_enabled = autosave
        self.default_spacing = spacing
        self.document = None
        self.load_worker: LoadWorker | None = None
        self.predict_worker: PredictWorker | None = None
        self.task_worker: TaskWorker | None = None
        self._workers: set = set()
        self._pending_predict_after_load = False
        self._batch_mode: str | None = None
        self._predict_errors: list[str] = []
        self._predict_flagged = 0
        self._accepted_recoveries: set[str] = set()
        self._syncing = False
        self.recent = RecentFiles()
        settings = app_settings()
        self.model_path: str | None = settings.value("model/path", None) or None
        self.compensation = settings.value("model/compensation", True, type=bool)
        self.last_dir = settings.value("paths/last_dir", str(Path.home()))

        self.setWindowTitle("DentSeg")
        self.setObjectName("DentSegMainWindow")
        self.setAcceptDrops(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)

        # centre
        self.canvas = ImageCanvas(self)
        self.setCentralWidget(self.canvas)
        self.undo_group = QUndoGroup(self)
        self.autosaver = Autosaver(parent=self)
        self.autosaver.failed.connect(lambda m: messages.show_warning(self, "Autosave", m))

        # docks
        self.cases = CaseList(self)
        self.case_view = QListView(self)
        self.case_view.setModel(self.cases)
        self.case_view.setUniformItemSizes(True)
        self.case_view.setAlternatingRowColors(True)
        self.case_view.selectionModel().currentChanged.connect(self._on_case_selected)
        self.case_summary = QLabel("Open an image or a folder (File menu, or drop files here).", self)
        self.case_summary.setWordWrap(True)
        self.case_summary.setStyleSheet("color:#666;")
        cases_box = QWidget(self)
        cl = QVBoxLayout(cases_box)
        cl.setContentsMargins(4, 4, 4, 4)
        cl.addWidget(self.case_view, 1)
        cl.addWidget(self.case_summary)
        self.layer_panel = LayerPanel(self.canvas, self)
        self.measurement_panel = MeasurementPanel(self)
        self.undo_view = QUndoView(self.undo_group, self)
        self.undo_view.setEmptyLabel("Opened")
        self.training_panel = TrainingPanel(self)
        self.training_panel.modelTrained.connect(self._on_model_trained)
        self.training_panel.useModelRequested.connect(self.set_model)

        self.cases_dock = self._dock("Cases", cases_box, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.layers_dock = self._dock("Layers", self.layer_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.measure_dock = self._dock("Measurements", self.measurement_panel,
                                       Qt.DockWidgetArea.RightDockWidgetArea)
        self.history_dock = self._dock("History", self.undo_view, Qt.DockWidgetArea.RightDockWidgetArea)
        self.training_dock = self._dock("Training", self.training_panel,
                                        Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.measure_dock, self.training_dock)
        self.measure_dock.raise_()
        self.training_dock.hide()

        self._build_status_bar()
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self.canvas.cursorInfo.connect(self.cursor_label.setText)
        self.canvas.toolChanged.connect(self._on_tool_changed)
        self.canvas.statusMessage.connect(lambda m: self.statusBar().showMessage(m, 6000))
        self.canvas.activeRegionChanged.connect(
            lambda n: n in self.layer_panel.active and self.layer_panel.active[n].setChecked(True))

        self.resize(1280, 800)
        self.resizeDocks([self.cases_dock, self.layers_dock], [470, 190], Qt.Orientation.Vertical)
        self.resizeDocks([self.cases_dock, self.measure_dock], [240, 370], Qt.Orientation.Horizontal)
        self.resizeDocks([self.measure_dock, self.history_dock], [580, 110], Qt.Orientation.Vertical)
        if restore_layout:
            self._restore_layout()
        self._update_title()
        self._update_actions()

    # ------------------------------------------------------------------ construction
    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        d = QDockWidget(title, self)
        d.setObjectName(f"dock_{title.lower()}")
        d.setWidget(widget)
        d.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                      | QDockWidget.DockWidgetFeature.DockWidgetClosable
                      | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, d)
        return d

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.cursor_label = QLabel("", self)
        self.cursor_label.setMinimumWidth(300)
        self.spacing_label = QLabel("", self)
        self.model_label = QLabel("", self)
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.cancel_button = QToolButton(self)
        self.cancel_button.setText("Cancel")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel_work)
        sb.addPermanentWidget(self.cursor_label)
        sb.addPermanentWidget(self.spacing_label)
        sb.addPermanentWidget(self.model_label)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel_button)
        self._update_model_label()

    def _act(self, text: str, slot=None, shortcut=None, tip: str | None = None,
             checkable: bool = False) -> QAction:
        a = QAction(text, self)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(tip)
        a.setCheckable(checkable)
        if slot is not None:
            a.triggered.connect(lambda *_: slot())
        return a

    def _build_actions(self) -> None:
        A = self._act
        SK = QKeySequence.StandardKey
        self.act_open = A("&Open image(s)…", self.open_dialog, SK.Open, "Open one or more images")
        self.act_open_folder = A("Open &folder…", self.open_folder_dialog, "Ctrl+Shift+O",
                                 "Open every image of a folder as a case list")
        self.act_save = A("&Save", self.save_current, SK.Save, "Save the annotation beside the image")
        self.act_save_as = A("Save &as…", self.save_as, SK.SaveAs)
        self.act_csv = A("CSV – current case…", lambda: self.export_csv(all_cases=False))
        self.act_csv_all = A("CSV – all cases…", lambda: self.export_csv(all_cases=True))
        self.act_pdf = A("PDF report – current case…", lambda: self.export_pdf(all_cases=False))
        self.act_pdf_all = A("PDF report – all cases…", lambda: self.export_pdf(all_cases=True))
        self.act_png = A("PNG of the overlay – current case…", lambda: self.export_png(all_cases=False))
        self.act_png_all = A("PNG of the overlay – all cases…", lambda: self.export_png(all_cases=True))
        self.act_quit = A("&Quit", self.close, SK.Quit)
        self.act_undo = self.undo_group.createUndoAction(self, "&Undo")
        self.act_undo.setShortcut(SK.Undo)
        self.act_redo = self.undo_group.createRedoAction(self, "&Redo")
        self.act_redo.setShortcut(SK.Redo)
        self.act_spacing = A("Pixel &spacing…", self.ask_spacing, None,
                             "Set the pixel size in mm (images without it cannot be measured)")
        self.act_predict = A("&Predict current case", self.predict_current, "Ctrl+R",
                             "Run LU-Net on the open case (off the GUI thread; Esc or Cancel stops it)")
        self.act_predict_all = A("Predict &all cases", self.predict_all, "Ctrl+Shift+R")
        self.act_compensation = A("Boundary &compensation", None, None,
                                  "Correct the faint palatal boundary after segmentation", True)
        self.act_compensation.setChecked(bool(self.compensation))
        self.act_compensation.toggled.connect(self._set_compensation)
        self.act_train = A("&Train or fine-tune…", self.show_training)
        self.act_prev = A("Previous case", lambda: self.step_case(-1), "Ctrl+PgUp")
        self.act_next = A("Next case", lambda: self.step_case(1), "Ctrl+PgDown")
        self.act_shortcuts = A("Keyboard &shortcuts", self.show_shortcuts, "F1")
        self.act_about = A("&About DentSeg", self.show_about)
        self.act_cancel = A("Cancel running work", self.cancel_work, "Esc")
        self.act_cancel.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        self.act_cancel.setEnabled(False)
        self.addAction(self.act_cancel)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addAction(self.act_open)
        m.addAction(self.act_open_folder)
        self.recent_menu = m.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        m.addSeparator()
        m.addAction(self.act_save)
        m.addAction(self.act_save_as)
        m.addSeparator()
        ex = m.addMenu("&Export")
        for a in (self.act_csv, self.act_csv_all, None, self.act_pdf, self.act_pdf_all, None,
                  self.act_png, self.act_png_all):
            ex.addSeparator() if a is None else ex.addAction(a)
        m.addSeparator()
        m.addAction(self.act_prev)
        m.addAction(self.act_next)
        m.addSeparator()
        m.addAction(self.act_quit)

        e = mb.addMenu("&Edit")
        e.addAction(self.act_undo)
        e.addAction(self.act_redo)
        e.addSeparator()
        self.tools_menu = e.addMenu("&Tools")
        self.actions_menu = e
        e.addAction(self.act_spacing)

        v = mb.addMenu("&View")
        self.view_menu = v
        for d in (self.cases_dock, self.layers_dock, self.measure_dock, self.history_dock,
                  self.training_dock):
            v.addAction(d.toggleViewAction())
        v.addSeparator()
        ov = v.addMenu("&Overlays")
        for name, box in self.layer_panel.overlays.items():
            a = QAction(box.text(), self)
            a.setCheckable(True)
            a.setChecked(box.isChecked())
            a.toggled.connect(box.setChecked)
            box.toggled.connect(a.setChecked)
            ov.addAction(a)
        cl = v.addMenu("&Classes")
        for name, box in self.layer_panel.visible.items():
            a = QAction(f"Show {name}", self)
            a.setCheckable(True)
            a.setChecked(box.isChecked())
            a.toggled.connect(box.setChecked)
            box.toggled.connect(a.setChecked)
            cl.addAction(a)

        md = mb.addMenu("&Model")
        md.addAction(self.act_predict)
        md.addAction(self.act_predict_all)
        md.addAction(self.act_compensation)
        self.model_menu = md.addMenu("&Choose model")
        self.model_menu.aboutToShow.connect(self._fill_model_menu)
        md.addSeparator()
        md.addAction(self.act_train)

        h = mb.addMenu("&Help")
        h.addAction(self.act_shortcuts)
        h.addAction(self.act_about)

    def _build_toolbar(self) -> None:
        from .tools import TOOL_SPECS
        tb = self.addToolBar("Tools")
        tb.setObjectName("toolbar_tools")
        tb.setIconSize(QSize(16, 16))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        tb.addAction(self.act_open)
        tb.addAction(self.act_save)
        tb.addSeparator()
        self.tool_group = QActionGroup(self)
        self.tool_group.setExclusive(True)
        self.tool_actions: dict[str, QAction] = {}
        for spec in TOOL_SPECS:
            a = QAction(spec.icon_text or spec.label, self)
            a.setToolTip(f"{spec.label} ({spec.shortcut})\n{spec.tooltip}")
            a.setStatusTip(spec.tooltip)
            if spec.shortcut:
                a.setShortcut(QKeySequence(spec.shortcut))
            if spec.kind == "tool":
                a.setCheckable(True)
                self.tool_group.addAction(a)
                a.triggered.connect(lambda _=False, n=spec.name: self.canvas.set_tool(n))
                self.tools_menu.addAction(a)
            else:
                a.triggered.connect(lambda _=False, n=spec.name: self.run_canvas_action(n))
                self.actions_menu.insertAction(self.act_spacing, a)
            a.setText(spec.icon_text or spec.label)
            a.setIconText(spec.icon_text or spec.label)
            self.tool_actions[spec.name] = a
            tb.addAction(a)
            if spec.name in ("eraser", "apex", "palatal_edit"):
                tb.addSeparator()
        self.actions_menu.insertSeparator(self.act_spacing)
        if "fit" in self.tool_actions:
            self.view_menu.insertAction(self.view_menu.actions()[0], self.tool_actions["fit"])
            self.view_menu.insertSeparator(self.view_menu.actions()[1])
        tb.addSeparator()
        self.active_combo = QComboBox(self)
        self.active_combo.addItems(list(self.layer_panel.active))
        self.active_combo.setToolTip("Class that the polygon, brush and eraser edit")
        self.active_combo.currentTextChanged.connect(lambda n: self.layer_panel.active[n].setChecked(True))
        for n, radio in self.layer_panel.active.items():
            radio.toggled.connect(lambda on, n=n: on and self.active_combo.setCurrentText(n))
        tb.addWidget(QLabel(" Class ", self))
        tb.addWidget(self.active_combo)
        tb.addSeparator()
        tb.addAction(self.act_predict)
        current = self.canvas.current_tool() if hasattr(self.canvas, "current_tool") else "navigate"
        if current in self.tool_actions:
            self.tool_actions[current].setChecked(True)

    # ------------------------------------------------------------------ settings
    def _restore_layout(self) -> None:
        s = app_settings()
        geo = s.value("window/geometry")
        state = s.value("window/state")
        if geo is not None:
            self.restoreGeometry(geo)
        if state is not None:
            self.restoreState(state)

    def save_settings(self) -> None:
        s = app_settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("model/path", self.model_path or "")
        s.setValue("model/compensation", bool(self.compensation))
        s.setValue("paths/last_dir", str(self.last_dir))
        s.sync()

    # ------------------------------------------------------------------ state helpers
    def current_row(self) -> int | None:
        if self.document is None or self.document.image_path is None:
            return None
        return self.cases.row_of(self.document.image_path)

    def is_busy(self) -> bool:
        return any(w is not None and w.isRunning()
                   for w in (self.load_worker, self.predict_worker, self.task_worker)) \
            or self.training_panel.is_running()

    def is_idle(self) -> bool:
        """No load, prediction or export running or waiting to be delivered (training may run
        in its own dock)."""
        return not any(w is not None and (w.isRunning() or not w.delivered)
                       for w in (self.load_worker, self.predict_worker, self.task_worker)) \
            and not self._pending_predict_after_load

    def _update_title(self) -> None:
        doc = self.document
        if doc is None:
            self.setWindowTitle("DentSeg")
            return
        name = doc.image_path.name if doc.image_path else "untitled"
        self.setWindowTitle(f"{name}[*] – DentSeg")
        self.setWindowModified(doc.is_modified())

    def _update_actions(self) -> None:
        has_doc = self.document is not None
        busy_predict = self.predict_worker is not None and self.predict_worker.isRunning()
        for a in (self.act_save, self.act_save_as, self.act_csv, self.act_pdf, self.act_png,
                  self.act_spacing):
            a.setEnabled(has_doc)
        self.act_predict.setEnabled(has_doc and not busy_predict)
        self.act_predict_all.setEnabled(bool(self.cases.entries) and not busy_predict)
        for a in (self.act_csv_all, self.act_pdf_all, self.act_png_all):
            a.setEnabled(bool(self.cases.entries))
        n = len(self.cases.entries)
        self.act_prev.setEnabled(n > 1)
        self.act_next.setEnabled(n > 1)

    def _update_case_summary(self) -> None:
        counts = self.cases.counts()
        if not self.cases.entries:
            self.case_summary.setText("Open an image or a folder (File menu, or drop files here).")
            return
        parts = [f"{v} {k}" for k, v in sorted(counts.items())]
        n = len(self.cases.entries)
        self.case_summary.setText(f"{n} case{'s' if n != 1 else ''}: " + ", ".join(parts))

    def _refresh_current_status(self) -> None:
        row = self.current_row()
        if row is None:
            return
        doc = self.document
        status = STATUS_EDITED if doc.is_modified() else annotation_status(doc.annotation)
        flag, detail = flag_and_detail(doc.annotation)
        entry = self.cases.entries[row]
        if (entry.status, entry.flag) != (status, flag):
            self.cases.set_status(row, status, detail, flag)
            self._update_case_summary()

    def _select_row(self, row: int | None) -> None:
        """Move the list's selection without triggering a case switch."""
        self._syncing = True
        try:
            sm = self.case_view.selectionModel()
            if row is None:
                sm.setCurrentIndex(QModelIndex(), QItemSelectionModel.SelectionFlag.Clear)
            else:
                idx = self.cases.index(row)
                sm.setCurrentIndex(idx, QItemSelectionModel.SelectionFlag.ClearAndSelect)
                self.case_view.scrollTo(idx)
        finally:
            self._syncing = False

    def _set_progress(self, done: int, total: int, text: str) -> None:
        self.progress.show()
        self.cancel_button.show()
        self.act_cancel.setEnabled(True)
        if total <= 0:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
        self.progress.setFormat("%v/%m" if total > 1 else "%p%")
        if text:
            self.statusBar().showMessage(text)

    def _hide_progress(self) -> None:
        if self.is_idle():
            self.progress.hide()
            self.cancel_button.hide()
            self.act_cancel.setEnabled(False)

    def _track(self, worker: TaskWorker) -> TaskWorker:
        """Keep a Python reference until the thread finished (a QThread must not be collected).

        ``worker.delivered`` turns True once its outcome signal reached the GUI thread,
        so ``is_idle`` does not report idle between the thread's end and the handler."""
        worker.delivered = False

        def delivered():
            worker.delivered = True
            self._hide_progress()

        def done(*_):  # runs before the other handlers of the same signal: mark it afterwards
            QTimer.singleShot(0, delivered)

        for sig in (worker.succeeded, worker.failed, worker.cancelled):
            sig.connect(done)
        self._workers.add(worker)
        worker.finished.connect(lambda w=worker: self._workers.discard(w))
        worker.finished.connect(self._hide_progress)
        worker.finished.connect(self._update_actions)
        worker.finished.connect(lambda: self.busyChanged.emit(self.is_busy()))
        return worker

    # ------------------------------------------------------------------ opening
    def open_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open image(s)", str(self.last_dir), IMAGE_FILTER)
        if files:
            self.open_paths([Path(f) for f in files])

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open folder of cases", str(self.last_dir))
        if folder:
            self.open_folder(Path(folder))

    def open_paths(self, paths: list[Path | str]) -> bool:
        """Add images (or folders, or annotation files) to the case list and open the first.

        A path that does not exist is reported by name; the others still open.
        """
        paths = [Path(p) for p in paths]
        missing = [p for p in paths if not p.exists()]
        for p in missing:
            messages.show_error(self, "Cannot open", f"{p.name}: file not found ({p}). Check the "
                                "path; the file may have been moved or deleted.")
        paths = [p for p in paths if p.exists()]
        if not paths:
            return False
        images = expand_paths(paths)
        if not images:
            messages.show_error(self, "Cannot open", f"No image found in {', '.join(p.name for p in paths)}. "
                                "DentSeg opens PNG, JPEG, TIFF, BMP and DICOM files.")
            return False
        for p in paths:
            self.recent.add(p)
        self.last_dir = str(paths[0].parent if paths[0].is_file() else paths[0])
        rows = self.cases.add_paths(images)
        self._after_cases_changed()
        self.training_panel.set_cases(self.cases.paths())
        return self.open_case(rows[0])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        paths = self.recent.paths()
        if not paths:
            a = self.recent_menu.addAction("(none yet)")
            a.setEnabled(False)
            return
        for p in paths:
            a = self.recent_menu.addAction(f"{p.name}  –  {p.parent}")
            a.setEnabled(p.exists())
            a.triggered.connect(lambda _=False, p=p: self.open_folder(p) if p.is_dir() else self.open_paths([p]))
        self.recent_menu.addSeparator()
        self.recent_menu.addAction("Clear list", self.recent.clear)

    def open_folder(self, folder: Path | str) -> bool:
        folder = Path(folder)
        if not folder.is_dir():
            messages.show_error(self, "Cannot open folder", f"{folder}: not a folder.")
            return False
        images = find_images(folder)
        if not images:
            messages.show_error(self, "Empty folder", f"{folder.name}: no image files in this folder. "
                                "DentSeg opens PNG, JPEG, TIFF, BMP and DICOM files.")
            return False
        if not self.maybe_save():
            return False
        self.recent.add(folder)
        self.last_dir = str(folder)
        self._close_document()
        self.cases.set_paths(images)
        self._after_cases_changed()
        self.training_panel.set_cases(self.cases.paths())
        return self.open_case(0, ask_save=False)

    def _after_cases_changed(self) -> None:
        self._update_case_summary()
        self._update_actions()

    def _on_case_selected(self, current, previous) -> None:
        if self._syncing or not current.isValid():
            return
        if current.row() == self.current_row():
            return
        QTimer.singleShot(0, lambda r=current.row(): self.open_case(r))

    def step_case(self, delta: int) -> None:
        n = len(self.cases.entries)
        if n == 0:
            return
        row = self.current_row()
        self.open_case(((row if row is not None else -1) + delta) % n)

    def open_case(self, row: int, ask_save: bool = True) -> bool:
        """Start loading case ``row`` (image + annotation) in a worker.

        Returns False when the switch was refused (unsaved changes kept, or a
        load already running). The current case stays until the new one loaded.
        """
        if not 0 <= row < len(self.cases.entries):
            return False
        if row == self.current_row():
            self._select_row(row)
            return True
        if self.load_worker is not None and self.load_worker.isRunning():
            self.statusBar().showMessage("Still loading the previous case…", 3000)
            self._select_row(self.current_row())
            return False
        if ask_save and not self.maybe_save():
            self._select_row(self.current_row())
            return False
        entry = self.cases.entries[row]
        worker = self._track(LoadWorker(entry.image_path, self.default_spacing, parent=self))
        self.load_worker = worker
        worker.succeeded.connect(self._on_loaded)
        worker.failed.connect(lambda msg, r=row: self._on_load_failed(r, msg))
        self._set_progress(0, 0, f"Loading {entry.name}…")
        self.busyChanged.emit(True)
        worker.start()
        return True

    def _on_load_failed(self, row: int, message: str) -> None:
        self.statusBar().showMessage("Could not open the case.", 5000)
        messages.show_error(self, "Cannot open case", message + "\n\nThe case list shows it as "
                            "an error; the case that was open stays open.")
        self.cases.set_status(row, STATUS_ERROR, message)
        self._update_case_summary()
        self._select_row(self.current_row())
        self.caseLoadFailed.emit(message)

    def _on_loaded(self, loaded) -> None:
        try:
            doc = self._make_document(loaded)
        except DentsegError as exc:
            row = self.cases.row_of(loaded.image_path)
            self._on_load_failed(row if row is not None else -1, messages.error_text(exc, loaded.image_path))
            return
        if doc is None:
            return
        self._install_document(doc, loaded)

    def _make_document(self, loaded):
        """A CaseDocument for the loaded case; offers the autosave if it is newer."""
        from .document import CaseDocument
        rec = recovery_for(loaded.image_path)
        recovered = None
        if rec is not None:
            key = str(Path(loaded.image_path).resolve())
            yes = key in self._accepted_recoveries or messages.ask_yes_no(
                self, "Recover unsaved work?",
                f"{loaded.image_path.name} has unsaved changes from {rec.saved_at or 'an earlier session'} "
                "(DentSeg was closed without saving).\n\nRecover them? Choose No to discard them "
                "and open the saved version.", default=False)
            self._accepted_recoveries.discard(key)
            if yes:
                try:
                    recovered = rec.load()
                except DentsegError as exc:
                    messages.show_exception(self, exc, rec.autosave_path, "Autosave unreadable")
            if recovered is None:
                discard_autosave(loaded.image_path)
        doc = CaseDocument(loaded.image, loaded.annotation, loaded.image_path, loaded.annotation_path)
        if recovered is None:
            return doc
        # the saved version first, the recovered changes as one undo step on top of it:
        # unsaved (the stack is not clean) and Undo goes back to the saved file
        try:
            doc.restore_annotation(recovered)
        except DentsegError:  # cannot be one step (other extra fields): open the autosave as it is
            log.warning("recovery of %s opened as a whole, not as an undo step", loaded.image_path,
                        exc_info=True)
            doc = CaseDocument(loaded.image, recovered, loaded.image_path, loaded.annotation_path)
            doc.undo_stack.resetClean()
        self.statusBar().showMessage(f"Recovered unsaved changes of {loaded.image_path.name}. "
                                     "Save to keep them, or Undo to go back to the saved version.", 8000)
        return doc

    def _close_document(self) -> None:
        old = self.document
        if old is None:
            return
        self.autosaver.attach(None)
        self.undo_group.removeStack(old.undo_stack)
        self.canvas.set_document(None)
        self.document = None
        self.measurement_panel.set_measurements(None)
        self.measurement_panel.set_case_info("")
        old.deleteLater()

    def _install_document(self, doc, loaded=None) -> None:
        self._close_document()
        self.document = doc
        self.undo_group.addStack(doc.undo_stack)
        self.undo_group.setActiveStack(doc.undo_stack)
        self.canvas.set_document(doc)
        doc.measurementsChanged.connect(self.measurement_panel.set_measurements)
        doc.modifiedChanged.connect(lambda *_: (self._update_title(), self._refresh_current_status()))
        doc.changed.connect(self._refresh_current_status)
        doc.changed.connect(self._update_case_info)
        if hasattr(doc, "spacingChanged"):
            doc.spacingChanged.connect(lambda *_: self._update_spacing_label())
        self.measurement_panel.set_measurements(doc.measurements())
        self._update_case_info()
        self.autosaver.attach(doc if self.autosave_enabled else None)
        if doc.is_modified() and self.autosave_enabled:
            self.autosaver.write_now()
        row = self.cases.row_of(doc.image_path) if doc.image_path else None
        if row is None and doc.image_path is not None:
            row = self.cases.add_paths([doc.image_path])[0]
        self._select_row(row)
        self._refresh_current_status()
        self._update_case_summary()
        self._update_title()
        self._update_spacing_label()
        self._update_actions()
        self._hide_progress()
        note = getattr(loaded, "note", "") if loaded is not None else ""
        self.statusBar().showMessage(note or f"Opened {doc.image_path.name if doc.image_path else 'case'}.",
                                     10000 if note else 4000)
        self.caseLoaded.emit(doc)
        self.busyChanged.emit(self.is_busy())
        if self._pending_predict_after_load:
            self._pending_predict_after_load = False
            self.predict_current()

    def _update_case_info(self) -> None:
        """Image, spacing and where each region and landmark came from (model / hand)."""
        doc = self.document
        if doc is None:
            self.measurement_panel.set_case_info("")
            return
        ann, img = doc.annotation, doc.image
        sp = ann.pixel_spacing_mm
        lines = [f"<b>{doc.image_path.name if doc.image_path else 'case'}</b> &nbsp;"
                 f"{img.width}×{img.height} px, {getattr(img, 'kind', '')} {getattr(img, 'bit_depth', '')}-bit",
                 "Spacing: " + (f"{sp[0]:.4g} × {sp[1]:.4g} mm" if sp else
                                "<span style='color:#b35c00'>unknown – Edit › Pixel spacing…</span>")]
        prov = ann.provenance or {}
        src = []
        for kind in ("regions", "landmarks"):
            table = prov.get(kind) if isinstance(prov.get(kind), dict) else {}
            names = ([n for n, g in ann.regions.items() if not g.is_empty] if kind == "regions"
                     else list(ann.landmarks))
            for n in names:
                p = table.get(n)
                if isinstance(p, dict):
                    who = p.get("source", "?")
                    if p.get("edited_by_hand"):
                        who = "model, corrected"
                else:
                    who = "phantom truth" if prov.get("generator") else "hand"
                src.append((n, who))
        if src:
            groups: dict[str, list[str]] = {}
            for n, who in src:
                groups.setdefault(who, []).append(n)
            lines.append("Source: " + "; ".join(f"{who}: {', '.join(ns)}" for who, ns in groups.items()))
        else:
            lines.append("Nothing annotated yet: draw, or Model › Predict (Ctrl+R).")
        pred = prov.get("prediction") if isinstance(prov.get("prediction"), dict) else None
        if pred:
            model = pred.get("model")
            name = model.get("name") if isinstance(model, dict) else model
            lines.append(f"Model: {name or 'LU-Net'}"
                         + (f" ({str(pred.get('model_sha256'))[:10]}…)" if pred.get("model_sha256") else ""))
        # the verdict of the prediction behind this case (also from a `dentseg predict` file)
        note = prediction_note_html(flagged_quality(ann))
        if note:
            lines.append(note)
        self.measurement_panel.set_case_info("<br>".join(lines))

    def _update_spacing_label(self) -> None:
        doc = self.document
        sp = None if doc is None else doc.annotation.pixel_spacing_mm
        if doc is None:
            self.spacing_label.setText("")
        elif sp is None:
            self.spacing_label.setText("<span style='color:#b35c00'>spacing unknown</span>")
        else:
            self.spacing_label.setText(f"{sp[0]:.4g}×{sp[1]:.4g} mm/px")

    # ------------------------------------------------------------------ saving
    def maybe_save(self) -> bool:
        """True when it is fine to leave the current case (saved, discarded, or unchanged)."""
        doc = self.document
        if doc is None or not doc.is_modified():
            return True
        name = doc.image_path.name if doc.image_path else "This case"
        answer = messages.ask_save_changes(self, name)
        if answer == "save":
            return self.save_current()
        if answer == "discard":
            if doc.image_path is not None:
                discard_autosave(doc.image_path)
            # back to the saved state (edits are undo steps); a recovered case has none
            clean = doc.undo_stack.cleanIndex()
            if clean >= 0:
                doc.undo_stack.setIndex(clean)
            else:
                doc.mark_saved()
            row = self.current_row()
            if row is not None:
                self.cases.refresh_from_disk(row)
            return True
        return False

    def save_current(self, path: Path | str | None = None) -> bool:
        """Save the annotation (atomically) beside the image, or to ``path``."""
        from ..core.annotation import save_annotation
        doc = self.document
        if doc is None:
            return False
        target = Path(path) if path else (doc.annotation_path or annotation_path_for(doc.image_path))
        ann = doc.annotation_for_save()
        if doc.image_path is not None:
            try:
                ann.image_path = os.path.relpath(doc.image_path, target.parent)
            except ValueError:  # another drive on Windows
                ann.image_path = str(doc.image_path)
        try:
            save_annotation(ann, target)
        except (OSError, DentsegError, ValueError) as exc:
            messages.show_error(self, "Save failed", f"{target.name}: could not be saved "
                                f"({getattr(exc, 'strerror', None) or exc}). Use File > Save as… to "
                                "save it somewhere you can write to. Your changes are still open "
                                "and autosaved.")
            return False
        doc.mark_saved(target)
        if doc.image_path is not None:
            discard_autosave(doc.image_path)
        self._refresh_current_status()
        self._update_title()
        self.training_panel.set_cases(self.cases.paths())
        self.statusBar().showMessage(f"Saved {target}", 4000)
        return True

    def save_as(self) -> bool:
        doc = self.document
        if doc is None:
            return False
        start = str(doc.annotation_path or annotation_path_for(doc.image_path))
        path, _ = QFileDialog.getSaveFileName(self, "Save annotation as", start,
                                              "DentSeg annotation (*.dentseg.json)")
        if not path:
            return False
        if not path.endswith(".dentseg.json"):
            path += ".dentseg.json"
        return self.save_current(Path(path))

    # ------------------------------------------------------------------ editing helpers
    def run_canvas_action(self, name: str) -> bool:
        """A toolbar/menu action of the canvas (fill holes, delete region, snap, fit...).

        When it can't run, the canvas says why on ``statusMessage`` (status bar)."""
        return bool(self.canvas.run_action(name))

    def _on_tool_changed(self, name: str) -> None:
        a = self.tool_actions.get(name)
        if a is not None and a.isCheckable():
            a.setChecked(True)

    def ask_spacing(self) -> None:
        doc = self.document
        if doc is None:
            return
        sp = doc.annotation.pixel_spacing_mm
        text, ok = QInputDialog.getText(
            self, "Pixel spacing", "Pixel size in mm (one value, or row, column):",
            text="" if sp is None else (f"{sp[0]:g}" if sp[0] == sp[1] else f"{sp[0]:g}, {sp[1]:g}"))
        if not ok or not text.strip():
            return
        try:
            vals = [float(v) for v in text.replace("x", ",").replace(";", ",").split(",") if v.strip()]
            if len(vals) == 1:
                vals *= 2
            if len(vals) != 2 or not all(0 < v < 100 for v in vals):
                raise ValueError
        except ValueError:
            messages.show_error(self, "Pixel spacing", f"“{text}” is not a pixel size. Type one "
                                "positive number of mm (e.g. 0.125) or two (row, column).")
            return
        doc.set_spacing((vals[0], vals[1]))

    # ------------------------------------------------------------------ prediction
    def _set_compensation(self, on: bool) -> None:
        self.compensation = bool(on)
        self.save_settings_model()

    def save_settings_model(self) -> None:
        s = app_settings()
        s.setValue("model/path", self.model_path or "")
        s.setValue("model/compensation", bool(self.compensation))
        s.sync()

    def set_model(self, path: str | None) -> None:
        """Use ``path`` for prediction (None / '' = the bundled LU-Net)."""
        self.model_path = str(path) if path else None
        self._update_model_label()
        self.save_settings_model()
        self.statusBar().showMessage(f"Prediction model: {self._model_name()}", 4000)

    def _model_name(self) -> str:
        return Path(self.model_path).stem if self.model_path else "bundled LU-Net"

    def _update_model_label(self) -> None:
        from ..resources import bundled_model_path
        path = Path(self.model_path) if self.model_path else bundled_model_path()
        if path.is_file():
            self.model_label.setText(f"Model: {self._model_name()}")
            self.model_label.setToolTip(str(path))
        else:
            self.model_label.setText(f"<span style='color:#b35c00'>Model: {self._model_name()} (missing)</span>")
            self.model_label.setToolTip(f"{path} not found: choose a model in Model › Choose model")

    def _fill_model_menu(self) -> None:
        from ..resources import bundled_model_path
        from .training_panel import available_models
        self.model_menu.clear()
        group = QActionGroup(self.model_menu)
        current = Path(self.model_path).resolve() if self.model_path else bundled_model_path().resolve()
        models = available_models()
        if not models:
            a = self.model_menu.addAction("No model found (bundled lunet.pt missing)")
            a.setEnabled(False)
        for label, path in models:
            a = self.model_menu.addAction(label)
            a.setCheckable(True)
            a.setChecked(path.resolve() == current)
            group.addAction(a)
            is_bundled = path.resolve() == bundled_model_path().resolve()
            a.triggered.connect(lambda _=False, p=path, b=is_bundled: self.set_model(None if b else str(p)))
        self.model_menu.addSeparator()
        self.model_menu.addAction("Other model file…", self._choose_model_file)

    def _choose_model_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model", str(self.last_dir),
                                              "LU-Net model (*.pt);;All files (*)")
        if path:
            self.set_model(path)

    def _on_model_trained(self, path: str) -> None:
        self.statusBar().showMessage(f"New model {Path(path).name} is in Model > Choose model.", 8000)

    def predict_current(self) -> bool:
        doc = self.document
        if doc is None:
            messages.show_info(self, "Predict", "Open a case first.")
            return False
        if self.predict_worker is not None and self.predict_worker.isRunning():
            return False
        self._batch_mode = None
        return self._start_predict([PredictJob(doc.image_path, doc.image, doc.annotation.pixel_spacing_mm)])

    def predict_all(self) -> bool:
        if not self.cases.entries or (self.predict_worker is not None and self.predict_worker.isRunning()):
            return False
        annotated = 0
        for e in self.cases.entries:
            if self.document is not None and self.document.image_path == e.image_path:
                annotated += has_hand_work(self.document.annotation)
            elif annotation_path_for(e.image_path).exists():
                annotated += e.status not in ("unannotated", "error", "predicted")
        mode = "replace"
        if annotated:
            mode = messages.ask_choice(
                self, "Predict all cases",
                f"{annotated} of {len(self.cases.entries)} cases already have hand-made or "
                "corrected annotations.\n\nReplace: the model's regions and landmarks replace "
                "them.\nFill missing only: keep every hand-made region and landmark, add only "
                "what is missing.\n\nThe model output is kept apart in every case either way.",
                [("fill_missing", "Fill missing only"), ("replace", "Replace"), ("cancel", "Cancel")],
                default="fill_missing")
            if mode in (None, "cancel"):
                return False
        self._batch_mode = mode
        jobs = []
        for e in self.cases.entries:
            if self.document is not None and self.document.image_path == e.image_path:
                jobs.append(PredictJob(e.image_path, self.document.image,
                                       self.document.annotation.pixel_spacing_mm))
            else:
                jobs.append(PredictJob(e.image_path, None, self.default_spacing))
        return self._start_predict(jobs)

    def _start_predict(self, jobs: list[PredictJob]) -> bool:
        self._predict_errors: list[str] = []
        self._predict_flagged = 0
        w = self._track(PredictWorker(jobs, self.model_path, self.compensation, parent=self))
        self.predict_worker = w
        w.progress.connect(self._set_progress)
        w.caseDone.connect(self._on_case_predicted)
        w.caseFailed.connect(self._on_case_predict_failed)
        w.succeeded.connect(lambda r: self._on_predict_finished("ok", r))
        w.failed.connect(lambda m: self._on_predict_finished("failed", m))
        w.cancelled.connect(lambda: self._on_predict_finished("cancelled", None))
        self._set_progress(0, len(jobs), f"Predicting with {self._model_name()}…")
        self._update_actions()
        self.busyChanged.emit(True)
        w.start()
        return True

    def _on_case_predicted(self, outcome) -> None:
        pred = outcome.result.annotation
        path = Path(outcome.job.image_path)
        doc = self.document
        if doc is not None and doc.image_path is not None and doc.image_path.resolve() == path.resolve():
            applied = self._apply_prediction_to_document(doc, pred)
        else:
            applied = self._apply_prediction_to_file(path, outcome.image, pred)
        if applied and flagged_quality(pred) is not None:
            self._predict_flagged += 1      # model output the plausibility check doubts went in

    def _apply_prediction_to_document(self, doc, pred) -> bool:
        """Model output enters the open case as one undo step, never silently over hand work.
        True when it changed the annotation."""
        mode = self._batch_mode or "replace"
        if self._batch_mode is None and has_hand_work(doc.annotation):
            mode = messages.ask_choice(
                self, "Prediction ready",
                f"{doc.image_path.name} already has hand-made or corrected regions or landmarks.\n\n"
                "Replace: use the model's regions and landmarks (undo with Ctrl+Z).\n"
                "Fill missing only: keep all hand work, add only what is missing.\n"
                "Cancel: change nothing (the model output is still kept with the case).",
                [("replace", "Replace"), ("fill_missing", "Fill missing only"), ("cancel", "Cancel")],
                default="fill_missing")
        if mode in (None, "cancel"):
            doc.set_prediction(pred)
            self.statusBar().showMessage("Prediction kept aside; the annotation was not changed.", 6000)
            return False
        changed = doc.apply_prediction(pred, mode)
        self._refresh_current_status()
        self.statusBar().showMessage(
            "Prediction applied – review and correct it, then save." if changed
            else "The prediction added nothing (everything was already annotated).", 6000)
        return changed

    def _apply_prediction_to_file(self, image_path: Path, image, pred) -> bool:
        """Batch prediction for a case that is not open: merge into its annotation file.
        True when it changed the file."""
        from ..core.annotation import load_annotation, save_annotation
        from .document import CaseDocument
        if self._batch_mode is None:  # "predict current", but the user has switched cases since
            self.statusBar().showMessage(f"The prediction for {image_path.name} arrived after the case "
                                         "was closed; nothing was changed. Open it and predict again.", 8000)
            return False
        ann_path = annotation_path_for(image_path)
        row = self.cases.row_of(image_path)
        try:
            ann = load_annotation(ann_path) if ann_path.exists() else None
            doc = CaseDocument(image, ann, image_path, ann_path)
            changed = doc.apply_prediction(pred, self._batch_mode or "replace")
            out = doc.annotation_for_save()
            out.image_path = image_path.name
            save_annotation(out, ann_path)
            doc.deleteLater()
        except (DentsegError, OSError) as exc:
            self._on_case_predict_failed(row if row is not None else -1, messages.error_text(exc, ann_path))
            return False
        if row is not None:
            self.cases.refresh_from_disk(row)
            self._update_case_summary()
        return changed

    def _on_case_predict_failed(self, index: int, message: str) -> None:
        log.warning("prediction failed: %s", message)
        self._predict_errors.append(message)

    def _on_predict_finished(self, outcome: str, payload: Any) -> None:
        errors = list(self._predict_errors)
        if outcome == "failed":
            messages.show_error(self, "Prediction failed", f"{payload}\n\nThe open case was not changed. "
                                f"Model in use: {self._model_name()} (Model › Choose model).")
        elif outcome == "cancelled":
            self.statusBar().showMessage("Prediction cancelled.", 5000)
        else:
            done = payload.get("done", 0) if isinstance(payload, dict) else 0
            flagged = self._predict_flagged
            self.statusBar().showMessage(
                f"Prediction finished: {done} case(s)" + (f", {len(errors)} failed" if errors else "")
                + (f"; the model is unsure about {flagged} ({'see the case info' if done == 1 else 'marked ⚠'}"
                   "): check them before using the measurements" if flagged else ""), 15000)
        if outcome != "failed" and errors:
            listed = "\n".join(f"• {e}" for e in errors[:5])
            more = f"\n… and {len(errors) - 5} more" if len(errors) > 5 else ""
            messages.show_warning(self, "Some cases could not be predicted",
                                  f"{listed}{more}\n\nThe other cases were predicted.")
        self.training_panel.set_cases(self.cases.paths())
        self._update_case_summary()
        self.predictionFinished.emit(outcome)

    def cancel_work(self) -> None:
        for w in (self.predict_worker, self.task_worker, self.load_worker):
            if w is not None and w.isRunning():
                w.cancel()
        self.statusBar().showMessage("Cancelling…", 3000)

    # ------------------------------------------------------------------ export
    def _ask_path(self, title: str, suggestion: str, filt: str) -> Path | None:
        path, _ = QFileDialog.getSaveFileName(self, title, str(Path(self.last_dir) / suggestion), filt)
        return Path(path) if path else None

    def _current_item(self, with_overlay: bool = True):
        """The open case for export, with the canvas's rendering (its styles and window)."""
        from .export import item_for_document
        if self.document is None:
            return None
        if not with_overlay:
            return item_for_document(self.document)
        try:
            overlay = self.canvas.grab_overlay_image()
        except Exception:  # noqa: BLE001 - the report draws its own overlay then
            log.exception("canvas overlay rendering failed")
            overlay = None
        return item_for_document(self.document, overlay if overlay is not None and not overlay.isNull() else None)

    def _export_target(self, title: str, path, all_cases: bool, with_overlay: bool,
                       stem_all: str, suffix: str, ext: str, file_filter: str):
        """(items, skipped, path) for an export, asking for the path if none is given;
        None when there is nothing to export or the user cancels."""
        from .export import collect_items
        cur = self._current_item(with_overlay=with_overlay)
        if all_cases:
            items, skipped = collect_items(self.cases.paths(), cur)
        else:
            items, skipped = ([cur] if cur else []), []
        if not items:
            messages.show_info(self, title, "There is no annotated case to export.")
            return None
        if path is None:
            stem = stem_all if all_cases else f"{items[0].image_path.stem}{suffix}"
            path = self._ask_path(title, stem + ext, file_filter)
            if path is None:
                return None
        return items, skipped, path

    def export_csv(self, path: Path | str | None = None, all_cases: bool = False) -> Path | None:
        from .export import write_csv_report
        target = self._export_target("Export CSV", path, all_cases, with_overlay=False,
                                     stem_all="dentseg-measurements", suffix="-measurements",
                                     ext=".csv", file_filter="CSV (*.csv)")
        if target is None:
            return None
        items, skipped, path = target
        try:
            out = write_csv_report(items, path)
        except (OSError, DentsegError) as exc:
            messages.show_exception(self, exc, path, "Export failed")
            return None
        self._report_export(out, len(items), skipped)
        return out

    def export_pdf(self, path: Path | str | None = None, all_cases: bool = False,
                   wait: bool = False) -> Path | None:
        """PDF report of the current case or of all cases, written in a worker (progress,
        Cancel); ``wait`` writes it at once (scripts and tests). The current case is
        exported as shown, from a snapshot taken now: edits made while it is written are
        not in it."""
        from .export import write_pdf_items
        target = self._export_target("Export PDF report", path, all_cases, with_overlay=True,
                                     stem_all="dentseg-report", suffix="-report",
                                     ext=".pdf", file_filter="PDF (*.pdf)")
        if target is None:
            return None
        items, skipped, path = target
        path = Path(path)
        if wait:
            try:
                write_pdf_items(items, path)
            except (OSError, DentsegError, ValueError) as exc:
                messages.show_exception(self, exc, path, "Export failed")
                return None
            self._report_export(path, len(items), skipped)
            return path
        return self._run_task(lambda ctx: write_pdf_items(items, path, ctx.progress, ctx.should_stop),
                              f"Writing {path.name}…",
                              lambda out: self._report_export(Path(out), len(items), skipped), path)

    def export_png(self, path: Path | str | None = None, all_cases: bool = False) -> Path | None:
        """PNG of the overlay: the canvas view for the current case; rendered for all cases."""
        from .export import collect_items, overlay_for_item, save_png
        if not all_cases:
            if self.document is None:
                return None
            if path is None:
                path = self._ask_path("Export PNG", f"{self.document.image_path.stem}-overlay.png",
                                      "PNG (*.png)")
                if path is None:
                    return None
            try:
                img = self.canvas.grab_overlay_image()
                out = save_png(img, path)
            except (OSError, ValueError) as exc:
                messages.show_exception(self, exc, path, "Export failed")
                return None
            self._report_export(out, 1, [])
            return out
        items, skipped = collect_items(self.cases.paths(), self._current_item())
        if not items:
            messages.show_info(self, "Export PNG", "There is no annotated case to export.")
            return None
        if path is None:
            folder = QFileDialog.getExistingDirectory(self, "Folder for the overlay PNGs", str(self.last_dir))
            if not folder:
                return None
            path = Path(folder)
        folder = Path(path)

        def work(ctx):
            for i, it in enumerate(items):
                ctx.check()
                ctx.progress(i, len(items), f"rendering {it.image_path.name}")
                save_png(overlay_for_item(it), folder / f"{it.image_path.stem}-overlay.png")
            return folder

        return self._run_task(work, "Writing overlay PNGs…",
                              lambda out: self._report_export(Path(out), len(items), skipped), folder)

    def _run_task(self, fn, text: str, on_ok, path) -> Path | None:
        if self.task_worker is not None and self.task_worker.isRunning():
            messages.show_info(self, "Busy", "An export is still running.")
            return None
        w = self._track(TaskWorker(fn, name=text, error_path=path, parent=self))
        self.task_worker = w
        w.progress.connect(self._set_progress)
        w.succeeded.connect(on_ok)
        w.failed.connect(lambda m: messages.show_error(self, "Export failed", m))
        w.cancelled.connect(lambda: self.statusBar().showMessage("Export cancelled.", 4000))
        self._set_progress(0, 0, text)
        w.start()
        return Path(path)

    def _report_export(self, out: Path, n: int, skipped: list[str]) -> None:
        msg = f"Exported {n} case(s) to {out}"
        if skipped:
            msg += f" ({len(skipped)} skipped: {skipped[0]}{' …' if len(skipped) > 1 else ''})"
        self.statusBar().showMessage(msg, 10000)
        log.info(msg)

    # ------------------------------------------------------------------ recovery at start-up
    def offer_recovery(self) -> bool:
        """After a crash or kill: offer the autosaves newer than their saved files.

        Yes opens them (the newest first, its changes restored and unsaved);
        No deletes them. Returns True when something was recovered.
        """
        recs = pending_recoveries()
        if not recs:
            return False
        names = "\n".join(f"  • {r.image_path.name} ({r.saved_at})" for r in recs[:8])
        more = f"\n  … and {len(recs) - 8} more" if len(recs) > 8 else ""
        yes = messages.ask_yes_no(
            self, "Recover unsaved work?",
            f"DentSeg was closed without saving changes to:\n{names}{more}\n\n"
            "Recover them? (No deletes these autosaves.)", default=False)
        if not yes:
            for r in recs:
                discard_autosave(r.image_path)
            return False
        for r in recs:
            self._accepted_recoveries.add(str(r.image_path.resolve()))
        rows = self.cases.add_paths([r.image_path for r in recs])
        self._after_cases_changed()
        self.open_case(rows[0], ask_save=False)
        return True

    # ------------------------------------------------------------------ panels & help
    def show_training(self) -> None:
        self.training_panel.set_cases(self.cases.paths())
        self.training_panel.refresh_models()
        self.training_dock.show()
        self.training_dock.raise_()
        self.resizeDocks([self.training_dock, self.history_dock], [640, 80], Qt.Orientation.Vertical)

    def show_shortcuts(self) -> None:
        from .tools import TOOL_SPECS
        rows = "".join(f"<tr><td><b>{s.shortcut}</b></td><td>{s.label}</td></tr>" for s in TOOL_SPECS)
        extra = [("Ctrl+O", "Open image(s)"), ("Ctrl+Shift+O", "Open folder"), ("Ctrl+S", "Save"),
                 ("Ctrl+Z / Ctrl+Shift+Z", "Undo / redo"), ("Ctrl+R", "Predict current case"),
                 ("Ctrl+Shift+R", "Predict all cases"), ("Esc", "Cancel running work"),
                 ("Ctrl+PgUp / PgDown", "Previous / next case"), ("Wheel", "Zoom at the cursor"),
                 ("Middle or right drag, Space+drag", "Pan")]
        rows += "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in extra)
        messages.show_info(self, "Keyboard shortcuts", f"<table cellspacing=4>{rows}</table>")

    def show_about(self) -> None:
        from .. import __version__
        messages.show_info(
            self, "About DentSeg",
            f"<b>DentSeg {__version__}</b><br>Quantifies the palatal alveolar bone of an upper "
            "incisor on a sagittal CBCT slice: LU-Net segmentation with boundary compensation, "
            "manual correction, and measurements in the CEJ–apex frame.<br><br>For research use.")

    # ------------------------------------------------------------------ Qt events
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if len(paths) == 1 and paths[0].is_dir():
            self.open_folder(paths[0])
        elif paths:
            self.open_paths(paths)

    def closeEvent(self, event) -> None:  # noqa: N802
        if self.training_panel.is_running():
            if not messages.ask_yes_no(self, "Training is running",
                                       "A model is being trained. Stop it and quit?", default=False):
                event.ignore()
                return
        if not self.maybe_save():
            event.ignore()
            return
        self.shutdown()
        if self.persist_layout:
            self.save_settings()
        event.accept()

    def shutdown(self) -> None:
        """Stop every worker and timer (window closing, or tests tearing down)."""
        self.autosaver.stop()
        self.training_panel.shutdown()
        for w in list(self._workers):
            if w.isRunning():
                w.cancel()
        for w in list(self._workers):
            w.wait(15_000)
