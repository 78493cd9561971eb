"""The DentSeg main window: builds the docks, the menus and the status bar, and wires signals.

It owns no work of its own. The work lives in controllers with one job each
(docs/adr/0007), which the window only connects to its widgets:

* ``CaseSession`` (case_session.py): the case list, the open document, open /
  save / crash recovery / spacing;
* ``PredictionController`` (prediction_controller.py): the model, predict current
  or all, results applied with provenance;
* ``ExportController`` (export_controller.py): CSV, PDF and PNG exports;
* ``VolumeController`` (volume_controller.py): the open CBCT volume, its teeth, the
  tooth's plane, measuring slices of it (its view: volume_view.py);
* ``WorkTracker`` (work_tracker.py): which workers run, progress and Cancel;
* ``WindowActions`` (window_actions.py): every menu item, toolbar button and shortcut.

Layout: the image canvas (tab "Slice") and the volume view (tab "Volume") in the centre; the case list and the layer panel on the
left; measurements, undo history and training on the right; a status bar with
the cursor read-out, the spacing, the model and a progress bar with Cancel.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QUndoGroup
from PySide6.QtWidgets import (QDockWidget, QLabel, QListView, QMainWindow, QProgressBar, QTabWidget,
                               QToolButton, QUndoView, QVBoxLayout, QWidget)

from . import messages
from .case_info import case_info_html, prediction_note_html, spacing_label_html
from .case_session import CaseSession
from .cases import app_settings
from .export_controller import ExportController
from .layer_panel import LayerPanel
from .measurement_panel import MeasurementPanel
from .prediction_controller import PredictionController
from .active_learning import ActiveLearningController
from .need_panel import NeedRankingPanel
from .volume_controller import VolumeController, is_volume_path
from .window_actions import WindowActions
from .work_tracker import WorkTracker

log = logging.getLogger("dentseg.gui.window")

__all__ = ["MainWindow", "prediction_note_html"]


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
        self._syncing = False

        self.setWindowTitle("DentSeg")
        self.setObjectName("DentSegMainWindow")
        self.setAcceptDrops(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)

        # the work: controllers
        self.tracker = WorkTracker(self)
        self.session = CaseSession(self, self.tracker, default_spacing=spacing, autosave=autosave, parent=self)
        self.prediction = PredictionController(self, self.session, self.tracker, parent=self)
        self.canvas = ImageCanvas(self)
        self.exporter = ExportController(self, self.session, self.tracker, self.canvas.grab_overlay_image,
                                         parent=self)
        self.volume = VolumeController(self, self.session, self.tracker, parent=self)
        self.active = ActiveLearningController(self, self.session, self.prediction, self.tracker, parent=self)

        # the views
        from .volume_view import VolumeView
        self.volume_view = VolumeView(self.volume, self)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.canvas, "Slice")
        self.tabs.addTab(self.volume_view, "Volume")
        self.setCentralWidget(self.tabs)
        self.undo_group = QUndoGroup(self)
        self.undo_group.addStack(self.volume.undo_stack)
        self.case_view = QListView(self)
        self.case_view.setModel(self.session.cases)
        self.case_view.setUniformItemSizes(True)
        self.case_view.setAlternatingRowColors(True)
        self.case_view.setSelectionMode(QListView.SelectionMode.ExtendedSelection)   # spacing for many
        self.case_view.selectionModel().currentChanged.connect(self._on_case_selected)
        self.case_summary = QLabel(self.session.summary_text(), self)
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
        self.need_panel = NeedRankingPanel(self.active, self)

        self.cases_dock = self._dock("Cases", cases_box, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.layers_dock = self._dock("Layers", self.layer_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.measure_dock = self._dock("Measurements", self.measurement_panel,
                                       Qt.DockWidgetArea.RightDockWidgetArea)
        self.history_dock = self._dock("History", self.undo_view, Qt.DockWidgetArea.RightDockWidgetArea)
        self.training_dock = self._dock("Training", self.training_panel,
                                        Qt.DockWidgetArea.RightDockWidgetArea)
        self.need_dock = self._dock("Annotate next", self.need_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.measure_dock, self.training_dock)
        self.tabifyDockWidget(self.measure_dock, self.need_dock)
        self.measure_dock.raise_()
        self.training_dock.hide()
        self.need_dock.hide()

        self._build_status_bar()
        self.commands = WindowActions(self)
        self._wire()

        self.resize(1280, 800)
        self.resizeDocks([self.cases_dock, self.layers_dock], [470, 190], Qt.Orientation.Vertical)
        self.resizeDocks([self.cases_dock, self.measure_dock], [240, 370], Qt.Orientation.Horizontal)
        self.resizeDocks([self.measure_dock, self.history_dock], [580, 110], Qt.Orientation.Vertical)
        if restore_layout:
            self._restore_layout()
        self._update_document_state()

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

    def docks(self) -> list[QDockWidget]:
        """The docks the View menu can show and hide."""
        return [self.cases_dock, self.layers_dock, self.measure_dock, self.history_dock, self.training_dock,
                self.need_dock]

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
        for w in (self.cursor_label, self.spacing_label, self.model_label, self.progress, self.cancel_button):
            sb.addPermanentWidget(w)
        self._update_model_label()

    def _wire(self) -> None:
        """Controllers -> widgets (and the few widget -> controller links that are not actions)."""
        session, pred, tracker, status = self.session, self.prediction, self.tracker, self.statusBar()
        for ctl in (session, pred, self.exporter, self.volume, self.active):
            ctl.statusMessage.connect(lambda m, ms: status.showMessage(m, ms))
        session.documentChanged.connect(self._on_document_changed)
        session.documentStateChanged.connect(self._update_document_state)
        session.currentRowChanged.connect(self._select_row)
        session.summaryChanged.connect(self.case_summary.setText)
        session.casesChanged.connect(self._on_cases_changed)
        session.saved.connect(lambda *_: self.training_panel.set_cases(session.cases.paths()))
        session.caseLoaded.connect(self.caseLoaded)
        session.caseLoadFailed.connect(self.caseLoadFailed)
        self.exporter.imported.connect(self._open_imported)
        pred.finished.connect(self.predictionFinished)
        pred.modelChanged.connect(self._update_model_label)
        pred.casesUpdated.connect(lambda: self.training_panel.set_cases(session.cases.paths()))
        tracker.progressChanged.connect(self._show_progress)
        tracker.progressHidden.connect(self._hide_progress)
        tracker.busyChanged.connect(self.busyChanged)
        tracker.workerFinished.connect(self.commands.update)
        tracker.add_busy_check(self.training_panel.is_running)
        self.training_panel.modelTrained.connect(
            lambda p: status.showMessage(f"New model {Path(p).name} is in Model > Choose model.", 8000))
        self.training_panel.useModelRequested.connect(pred.set_model)
        self.training_panel.runFinished.connect(self.active.on_training_finished)
        self.active.rankingChanged.connect(self.show_need_dock)
        session.casesChanged.connect(self.need_panel.refresh)
        session.saved.connect(lambda *_: self.need_panel.refresh())
        self.volume.volumeOpened.connect(lambda v: v is not None and self.tabs.setCurrentWidget(self.volume_view))
        self.volume.volumeOpened.connect(lambda v: self.commands.update())
        self.volume.undo_stack.indexChanged.connect(lambda *_: self.commands.update())
        self.tabs.currentChanged.connect(self._on_tab_changed)
        session.caseLoaded.connect(lambda *_: self.tabs.setCurrentWidget(self.canvas))
        self.canvas.cursorInfo.connect(self.cursor_label.setText)
        self.canvas.toolChanged.connect(self.commands.check_tool)
        self.canvas.statusMessage.connect(lambda m: status.showMessage(m, 6000))
        self.canvas.activeRegionChanged.connect(
            lambda n: n in self.layer_panel.active and self.layer_panel.active[n].setChecked(True))

    # ------------------------------------------------------------------ the model's API (scripts, tests)
    @property
    def document(self):
        return self.session.document

    @property
    def cases(self):
        return self.session.cases

    @property
    def autosaver(self):
        return self.session.autosaver

    @property
    def model_path(self) -> str | None:
        return self.prediction.model_path

    def open_paths(self, paths) -> bool:
        return self.session.open_paths(paths)

    def open_folder(self, folder) -> bool:
        return self.session.open_folder(folder)

    def open_case(self, row: int, ask_save: bool = True) -> bool:
        return self.session.open_case(row, ask_save)

    def current_row(self) -> int | None:
        return self.session.current_row()

    def selected_rows(self) -> list[int]:
        return sorted(i.row() for i in self.case_view.selectionModel().selectedRows())

    def save_current(self, path=None) -> bool:
        return self.session.save_current(path)

    def maybe_save(self) -> bool:
        return self.session.maybe_save()

    def offer_recovery(self) -> bool:
        return self.session.offer_recovery()

    def predict_current(self) -> bool:
        return self.prediction.predict_current()

    def predict_all(self) -> bool:
        return self.prediction.predict_all()

    def set_model(self, path: str | None) -> None:
        self.prediction.set_model(path)

    def export_csv(self, path=None, all_cases: bool = False):
        return self.exporter.export_csv(path, all_cases)

    def export_pdf(self, path=None, all_cases: bool = False, wait: bool = False):
        return self.exporter.export_pdf(path, all_cases, wait)

    def export_png(self, path=None, all_cases: bool = False):
        return self.exporter.export_png(path, all_cases)

    def is_busy(self) -> bool:
        return self.tracker.is_busy()

    def is_idle(self) -> bool:
        """No load, prediction or export running or waiting to be delivered (training may run
        in its own dock)."""
        return self.tracker.is_idle()

    # ------------------------------------------------------------------ mirroring the controllers
    def _on_document_changed(self, doc, old) -> None:
        if old is not None:
            self.undo_group.removeStack(old.undo_stack)
        self.canvas.set_document(doc)
        if doc is None:
            self.measurement_panel.set_measurements(None)
            self.measurement_panel.set_case_info("")
            return
        self.undo_group.addStack(doc.undo_stack)
        if self.tabs.currentWidget() is not self.volume_view:
            self.undo_group.setActiveStack(doc.undo_stack)
        doc.measurementsChanged.connect(self.measurement_panel.set_measurements)
        self.measurement_panel.set_measurements(doc.measurements())

    def _update_document_state(self) -> None:
        """Title, spacing read-out, case info and the actions' enabled state."""
        doc = self.session.document
        if doc is None:
            self.setWindowTitle("DentSeg")
        else:
            self.setWindowTitle(f"{doc.image_path.name if doc.image_path else 'untitled'}[*] – DentSeg")
            self.setWindowModified(doc.is_modified())
        self.spacing_label.setText(spacing_label_html(doc))
        self.measurement_panel.set_case_info(case_info_html(doc))
        self.commands.update()

    def _on_cases_changed(self) -> None:
        self.commands.update()
        # the training dock reads every case's annotation: only while it is shown, and not while a
        # folder is still being listed (the listing ends with another casesChanged; show_training
        # refreshes it when the dock is opened)
        if self.training_dock.isVisible() and not self.tracker.running("scan"):
            self.training_panel.set_cases(self.session.cases.paths())

    def _open_imported(self, images: list) -> None:
        """Cases made by File › Import: one spacing question for their folder, then open them."""
        images = [Path(p) for p in images]
        self.session.settle_folder_spacing(images[0].parent, images)
        self.session.open_paths(images)

    def _on_tab_changed(self, _index: int) -> None:
        """Edit › Undo follows the tab: plane edits in the volume view, region edits on a slice."""
        doc = self.session.document
        if self.tabs.currentWidget() is self.volume_view:
            self.undo_group.setActiveStack(self.volume.undo_stack)
        elif doc is not None:
            self.undo_group.setActiveStack(doc.undo_stack)

    def open_volume(self, path) -> bool:
        return self.volume.open_volume(path)

    def open_volume_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog
        path, _ = QFileDialog.getOpenFileName(
            self, "Open CBCT volume", str(self.session.last_dir),
            "Volumes (*.nii *.nii.gz *.nrrd *.nhdr *.dcm *.dicom *.ima);;All files (*)")
        if not path:
            return
        p = Path(path)
        # one file of a DICOM series stands for its series: open the folder
        if not is_volume_path(p) and is_volume_path(p.parent):
            p = p.parent
        self.volume.open_volume(p)

    def open_volume_folder_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog
        folder = QFileDialog.getExistingDirectory(self, "Open CBCT DICOM folder", str(self.session.last_dir))
        if folder:
            self.volume.open_volume(Path(folder))

    def _update_model_label(self) -> None:
        text, tip = self.prediction.model_label()
        self.model_label.setText(text)
        self.model_label.setToolTip(tip)

    def _select_row(self, row: int | None) -> None:
        """Move the list's selection without triggering a case switch."""
        self._syncing = True
        try:
            sm = self.case_view.selectionModel()
            if row is None:
                sm.setCurrentIndex(QModelIndex(), QItemSelectionModel.SelectionFlag.Clear)
            else:
                idx = self.session.cases.index(row)
                sm.setCurrentIndex(idx, QItemSelectionModel.SelectionFlag.ClearAndSelect)
                self.case_view.scrollTo(idx)
        finally:
            self._syncing = False

    def _on_case_selected(self, current, previous) -> None:
        if self._syncing or not current.isValid():
            return
        if current.row() == self.session.current_row():
            return
        QTimer.singleShot(0, lambda r=current.row(): self.session.open_case(r))

    def _show_progress(self, done: int, total: int, text: str) -> None:
        self.progress.show()
        self.cancel_button.show()
        self.commands.cancel.setEnabled(True)
        if total <= 0:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
        self.progress.setFormat("%v/%m" if total > 1 else "%p%")
        if text:
            self.statusBar().showMessage(text)

    def _hide_progress(self) -> None:
        self.progress.hide()
        self.cancel_button.hide()
        self.commands.cancel.setEnabled(False)

    # ------------------------------------------------------------------ commands of the window itself
    def cancel_work(self) -> None:
        self.tracker.cancel()
        self.statusBar().showMessage("Cancelling…", 3000)

    def run_canvas_action(self, name: str) -> bool:
        """A toolbar/menu action of the canvas (fill holes, delete region, snap, fit...).

        When it can't run, the canvas says why on ``statusMessage`` (status bar)."""
        return bool(self.canvas.run_action(name))

    def turn_slice(self, degrees: int) -> bool:
        """Turn the open slice's view counter-clockwise by ``degrees`` (one undo step)."""
        doc = self.session.document
        if doc is None:
            return False
        deg, mirror = doc.orientation
        # on a mirrored view, turning the screen left turns the stored image right
        return doc.set_orientation((deg + (-degrees if mirror else degrees)) % 360, mirror,
                                   f"Turn the slice {degrees:+d}°")

    def mirror_slice(self) -> bool:
        doc = self.session.document
        return doc is not None and doc.set_orientation(doc.orientation[0], not doc.orientation[1],
                                                       "Mirror the slice left-right")

    def reset_slice_orientation(self) -> bool:
        doc = self.session.document
        return doc is not None and doc.set_orientation(0, False, "Show the slice as stored")

    def show_training(self) -> None:
        self.training_panel.set_cases(self.session.cases.paths())
        self.training_panel.refresh_models()
        self.training_dock.show()
        self.training_dock.raise_()
        self.resizeDocks([self.training_dock, self.history_dock], [640, 80], Qt.Orientation.Vertical)

    def show_need_dock(self) -> None:
        """The "Annotate next" ranking, wide enough for case names and reasons."""
        if not self.need_dock.isVisible():
            self.need_dock.show()
            QTimer.singleShot(0, lambda: self.resizeDocks([self.need_dock], [400], Qt.Orientation.Horizontal))
        self.need_dock.raise_()

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
        self.prediction.save_settings(s)
        self.session.save_settings(s)
        s.sync()

    # ------------------------------------------------------------------ Qt events
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if len(paths) == 1 and is_volume_path(paths[0]):
            self.volume.open_volume(paths[0])
        elif len(paths) == 1 and paths[0].is_dir():
            self.session.open_folder(paths[0])
        elif paths:
            self.session.open_paths(paths)

    def closeEvent(self, event) -> None:  # noqa: N802
        if self.training_panel.is_running():
            if not messages.ask_yes_no(self, "Training is running",
                                       "A model is being trained. Stop it and quit?", default=False):
                event.ignore()
                return
        if not self.session.maybe_save():
            event.ignore()
            return
        self.shutdown()
        if self.persist_layout:
            self.save_settings()
        event.accept()

    def shutdown(self) -> None:
        """Stop every worker and timer (window closing, or tests tearing down)."""
        self.session.autosaver.stop()
        self.training_panel.shutdown()
        self.tracker.shutdown()
