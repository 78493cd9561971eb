"""The window's actions, menus and toolbar, wired to the controllers.

Every command the user can give has one ``QAction`` here (menu item, toolbar
button, shortcut and tooltip share it); the canvas tools come from
``tools.TOOL_SPECS`` so the shortcuts shown are the ones the canvas handles.
``WindowActions.update`` enables each action from the controllers' state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel

from . import messages

if TYPE_CHECKING:  # pragma: no cover
    from .main_window import MainWindow


class WindowActions:
    def __init__(self, window: "MainWindow"):
        self.w = window
        self._build_actions()
        self._build_menus()
        self._build_toolbar()

    # ------------------------------------------------------------------ actions
    def _act(self, text: str, slot=None, shortcut=None, tip: str | None = None,
             checkable: bool = False) -> QAction:
        a = QAction(text, self.w)
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
        A, w = self._act, self.w
        session, pred, export = w.session, w.prediction, w.exporter
        SK = QKeySequence.StandardKey
        self.open = A("&Open image(s)…", session.open_dialog, SK.Open, "Open one or more images")
        self.open_folder = A("Open &folder…", session.open_folder_dialog, "Ctrl+Shift+O",
                             "Open every image of a folder as a case list")
        self.open_volume = A("Open CBCT &volume…", w.open_volume_dialog, "Ctrl+Shift+V",
                             "Open a CBCT scan: a NIfTI or NRRD file, an enhanced DICOM, or one file "
                             "of a DICOM series (the whole series opens)")
        self.open_volume_folder = A("Open CBCT DICOM fold&er…", w.open_volume_folder_dialog, None,
                                    "Open the DICOM series in a folder as one CBCT volume")
        self.save = A("&Save", session.save_current, SK.Save, "Save the annotation beside the image")
        self.save_as = A("Save &as…", session.save_as, SK.SaveAs)
        self.csv = A("CSV – current case…", lambda: export.export_csv(all_cases=False))
        self.csv_all = A("CSV – all cases…", lambda: export.export_csv(all_cases=True))
        self.pdf = A("PDF report – current case…", lambda: export.export_pdf(all_cases=False))
        self.pdf_all = A("PDF report – all cases…", lambda: export.export_pdf(all_cases=True))
        self.png = A("PNG of the overlay – current case…", lambda: export.export_png(all_cases=False))
        self.png_all = A("PNG of the overlay – all cases…", lambda: export.export_png(all_cases=True))
        from .interop_actions import EXPORT_FORMATS, IMPORT_FORMATS
        self.exports = {f.key: A(f"{f.menu_text[:-1]} – all cases…", lambda k=f.key: export.export_format(k), None,
                                 f.tooltip) for f in EXPORT_FORMATS}
        self.imports = {f.key: A(f.menu_text, lambda k=f.key: export.import_format(k), None, f.tooltip)
                        for f in IMPORT_FORMATS}
        self.quit = A("&Quit", w.close, SK.Quit)
        self.undo = w.undo_group.createUndoAction(w, "&Undo")
        self.undo.setShortcut(SK.Undo)
        self.redo = w.undo_group.createRedoAction(w, "&Redo")
        self.redo.setShortcut(SK.Redo)
        self.turn_left = A("Turn 90° &left", lambda: w.turn_slice(90), "Ctrl+Shift+Left",
                           "Show the slice turned 90° counter-clockwise (apex up); regions and landmarks turn "
                           "with it, the annotation records it, and the axis tilt is measured upright")
        self.turn_right = A("Turn 90° &right", lambda: w.turn_slice(-90), "Ctrl+Shift+Right",
                            "Show the slice turned 90° clockwise")
        self.turn_180 = A("Turn &180°", lambda: w.turn_slice(180), None, "Show the slice upside down")
        self.mirror = A("&Mirror left–right", w.mirror_slice, "Ctrl+Shift+M",
                        "Show the slice mirrored (labial on the other side)")
        self.orientation_reset = A("Show as stored", w.reset_slice_orientation, None,
                                   "Show the image as it is stored in the file")
        self.spacing = A("Pixel &spacing…", lambda: session.ask_spacing(w.selected_rows()), None,
                         "Set the pixel size in mm of the open case and of every case selected in "
                         "the list (images without it cannot be measured)")
        self.predict = A("&Predict current case", pred.predict_current, "Ctrl+R",
                         "Run LU-Net on the open case (off the GUI thread; Esc or Cancel stops it)")
        self.predict_all = A("Predict &all cases", pred.predict_all, "Ctrl+Shift+R")
        self.compensation = A("Boundary &compensation", None, None,
                              "Correct the faint palatal boundary after segmentation", True)
        self.compensation.setChecked(bool(pred.compensation))
        self.compensation.toggled.connect(pred.set_compensation)
        self.train = A("&Train or fine-tune…", w.show_training)
        self.annotate_next = A("&Annotate next", w.active.annotate_next, "Ctrl+Shift+N",
                               "Open the unannotated case of this folder that the model needs most "
                               "(ranks the cases first when needed)")
        self.rank_cases = A("&Rank cases to annotate", w.active.rank, None,
                            "Score every unannotated case of this folder: how much the model needs it annotated")
        self.prev = A("Previous case", lambda: session.step_case(-1), "Ctrl+PgUp")
        self.next = A("Next case", lambda: session.step_case(1), "Ctrl+PgDown")
        self.shortcuts = A("Keyboard &shortcuts", lambda: show_shortcuts(w), "F1")
        self.about = A("&About DentSeg", lambda: show_about(w))
        self.cancel = A("Cancel running work", w.cancel_work, "Esc")
        self.cancel.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        self.cancel.setEnabled(False)
        w.addAction(self.cancel)

    # ------------------------------------------------------------------ menus
    def _build_menus(self) -> None:
        w = self.w
        mb = w.menuBar()
        m = mb.addMenu("&File")
        m.addAction(self.open)
        m.addAction(self.open_folder)
        m.addSeparator()
        m.addAction(self.open_volume)
        m.addAction(self.open_volume_folder)
        m.addSeparator()
        self.recent_menu = m.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        m.addSeparator()
        m.addAction(self.save)
        m.addAction(self.save_as)
        m.addSeparator()
        self.export_menu = m.addMenu("&Export")
        for a in (self.csv, self.csv_all, None, self.pdf, self.pdf_all, None, self.png, self.png_all, None,
                  *self.exports.values()):
            self.export_menu.addSeparator() if a is None else self.export_menu.addAction(a)
        self.import_menu = m.addMenu("&Import")
        for a in self.imports.values():
            self.import_menu.addAction(a)
        m.addSeparator()
        m.addAction(self.prev)
        m.addAction(self.next)
        m.addSeparator()
        m.addAction(self.quit)
        self.file_menu = m

        e = mb.addMenu("&Edit")
        e.addAction(self.undo)
        e.addAction(self.redo)
        e.addSeparator()
        self.tools_menu = e.addMenu("&Tools")
        self.edit_menu = e
        self.orientation_menu = e.addMenu("&Orientation")
        for a in (self.turn_left, self.turn_right, self.turn_180, self.mirror, None, self.orientation_reset):
            self.orientation_menu.addSeparator() if a is None else self.orientation_menu.addAction(a)
        e.addAction(self.spacing)

        v = mb.addMenu("&View")
        self.view_menu = v
        for d in w.docks():
            v.addAction(d.toggleViewAction())
        v.addSeparator()
        ov = v.addMenu("&Overlays")
        for box in w.layer_panel.overlays.values():
            ov.addAction(self._mirror(box, box.text()))
        cl = v.addMenu("&Classes")
        for name, box in w.layer_panel.visible.items():
            cl.addAction(self._mirror(box, f"Show {name}"))

        md = mb.addMenu("&Model")
        md.addAction(self.predict)
        md.addAction(self.predict_all)
        md.addAction(self.compensation)
        self.model_menu = md.addMenu("&Choose model")
        self.model_menu.aboutToShow.connect(self._fill_model_menu)
        self.versions_menu = md.addMenu("Model &versions (this folder)")
        self.versions_menu.aboutToShow.connect(lambda: w.active.fill_versions_menu(self.versions_menu))
        md.addSeparator()
        md.addAction(self.annotate_next)
        md.addAction(self.rank_cases)
        md.addAction(self.train)

        h = mb.addMenu("&Help")
        h.addAction(self.shortcuts)
        h.addAction(self.about)

    def _mirror(self, box, text: str) -> QAction:
        """A checkable menu action that mirrors a check box of the layer panel both ways."""
        a = QAction(text, self.w)
        a.setCheckable(True)
        a.setChecked(box.isChecked())
        a.toggled.connect(box.setChecked)
        box.toggled.connect(a.setChecked)
        return a

    def _fill_recent_menu(self) -> None:
        menu, session = self.recent_menu, self.w.session
        menu.clear()
        paths = session.recent.paths()
        if not paths:
            a = menu.addAction("(none yet)")
            a.setEnabled(False)
            return
        for p in paths:
            a = menu.addAction(f"{p.name}  –  {p.parent}")
            a.setEnabled(p.exists())
            a.triggered.connect(lambda _=False, p=p: session.open_recent(p))
        menu.addSeparator()
        menu.addAction("Clear list", session.recent.clear)

    def _fill_model_menu(self) -> None:
        pred = self.w.prediction
        self.model_menu.clear()
        group = QActionGroup(self.model_menu)
        models = pred.available_models()
        if not models:
            a = self.model_menu.addAction("No model found (bundled lunet.pt missing)")
            a.setEnabled(False)
        for label, path, is_bundled, in_use in models:
            a = self.model_menu.addAction(label)
            a.setCheckable(True)
            a.setChecked(in_use)
            group.addAction(a)
            a.triggered.connect(lambda _=False, p=path, b=is_bundled: pred.set_model(None if b else str(p)))
        self.model_menu.addSeparator()
        self.model_menu.addAction("Other model file…", pred.choose_model_file)

    # ------------------------------------------------------------------ toolbar
    def _build_toolbar(self) -> None:
        from .tools import TOOL_SPECS
        w = self.w
        tb = w.addToolBar("Tools")
        tb.setObjectName("toolbar_tools")
        tb.setIconSize(QSize(16, 16))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        tb.addAction(self.open)
        tb.addAction(self.save)
        tb.addSeparator()
        self.tool_group = QActionGroup(w)
        self.tool_group.setExclusive(True)
        self.tools: dict[str, QAction] = {}
        for spec in TOOL_SPECS:
            a = QAction(spec.icon_text or spec.label, w)
            a.setToolTip(f"{spec.label} ({spec.shortcut})\n{spec.tooltip}")
            a.setStatusTip(spec.tooltip)
            if spec.shortcut:
                a.setShortcut(QKeySequence(spec.shortcut))
            if spec.kind == "tool":
                a.setCheckable(True)
                self.tool_group.addAction(a)
                a.triggered.connect(lambda _=False, n=spec.name: w.canvas.set_tool(n))
                self.tools_menu.addAction(a)
            else:
                a.triggered.connect(lambda _=False, n=spec.name: w.run_canvas_action(n))
                self.edit_menu.insertAction(self.spacing, a)
            a.setText(spec.label)                          # menus show the full name
            a.setIconText(spec.icon_text or spec.label)    # the toolbar its short text
            self.tools[spec.name] = a
            tb.addAction(a)
            if spec.name in ("eraser", "apex", "palatal_wire"):
                tb.addSeparator()
        self.edit_menu.insertSeparator(self.spacing)
        if "fit" in self.tools:
            self.view_menu.insertAction(self.view_menu.actions()[0], self.tools["fit"])
            self.view_menu.insertSeparator(self.view_menu.actions()[1])
        tb.addSeparator()
        self.active_combo = QComboBox(w)
        self.active_combo.addItems(list(w.layer_panel.active))
        self.active_combo.setToolTip("Class that the polygon, brush and eraser edit")
        self.active_combo.currentTextChanged.connect(lambda n: w.layer_panel.active[n].setChecked(True))
        for n, radio in w.layer_panel.active.items():
            radio.toggled.connect(lambda on, n=n: on and self.active_combo.setCurrentText(n))
        tb.addWidget(QLabel(" Class ", w))
        tb.addWidget(self.active_combo)
        tb.addSeparator()
        tb.addAction(self.predict)
        current = w.canvas.current_tool() if hasattr(w.canvas, "current_tool") else "navigate"
        if current in self.tools:
            self.tools[current].setChecked(True)
        self.toolbar = tb

    def check_tool(self, name: str) -> None:
        a = self.tools.get(name)
        if a is not None and a.isCheckable():
            a.setChecked(True)

    # ------------------------------------------------------------------ state
    def update(self) -> None:
        w = self.w
        has_doc = w.session.document is not None
        predicting = w.prediction.is_running()
        n = len(w.session.cases.entries)
        for a in (self.save, self.save_as, self.csv, self.pdf, self.png, self.turn_left, self.turn_right,
                  self.turn_180, self.mirror, self.orientation_reset):
            a.setEnabled(has_doc)
        self.spacing.setEnabled(has_doc or bool(n))
        self.predict.setEnabled(has_doc and not predicting)
        self.predict_all.setEnabled(bool(n) and not predicting)
        self.annotate_next.setEnabled(bool(n) and not predicting and not w.active.is_running())
        self.rank_cases.setEnabled(bool(n) and not predicting and not w.active.is_running())
        for a in (self.csv_all, self.pdf_all, self.png_all, *self.exports.values()):
            a.setEnabled(bool(n))
        self.prev.setEnabled(n > 1)
        self.next.setEnabled(n > 1)


# --------------------------------------------------------------------------- help


def show_shortcuts(parent) -> None:
    from .tools import TOOL_SPECS
    rows = "".join(f"<tr><td><b>{s.shortcut}</b></td><td>{s.label}</td></tr>" for s in TOOL_SPECS)
    extra = [("Ctrl+O", "Open image(s)"), ("Ctrl+Shift+O", "Open folder"), ("Ctrl+S", "Save"),
             ("Ctrl+Z / Ctrl+Shift+Z", "Undo / redo"), ("Ctrl+R", "Predict current case"),
             ("Ctrl+Shift+R", "Predict all cases"), ("Ctrl+Shift+N", "Annotate next (neediest case)"),
             ("Esc", "Cancel running work"),
             ("Ctrl+PgUp / PgDown", "Previous / next case"), ("Wheel", "Zoom at the cursor"),
             ("Middle or right drag, Space+drag", "Pan")]
    rows += "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in extra)
    messages.show_info(parent, "Keyboard shortcuts", f"<table cellspacing=4>{rows}</table>")


def show_about(parent) -> None:
    from .. import __version__
    messages.show_info(
        parent, "About DentSeg",
        f"<b>DentSeg {__version__}</b><br>Quantifies the palatal alveolar bone of an upper "
        "incisor on a sagittal CBCT slice: LU-Net segmentation with boundary compensation, "
        "manual correction, and measurements in the CEJ–apex frame.<br><br>For research use.")
