"""The CBCT volume view: two reference views, the tooth's oblique slice, and the controls.

Every view only reads the ``VolumeController``'s plane model and writes it back
through its methods:

* **axial** and **sagittal / coronal** reference views, resliced in the patient
  frame (LPS) so a volume acquired at any orientation shows the usual way (axial:
  patient's right on the left, anterior up; sagittal: anterior left, superior up).
  The wheel scrolls through the volume (Ctrl+wheel zooms); the teeth found are
  marked with their FDI number; the tooth's long axis is a line with two handles
  (incisal edge, apex) that the user drags, each drag one undo step;
* the **oblique slice**: the tooth's labio-palatal plane, apex up, labial left, as
  it will be measured; a rotation control turns the plane about the axis.

While a handle moves, the oblique slice is previewed at half resolution (a few
ms) and refined when the drag ends, so dragging stays live on a large scan.
Window/level presets are in Hounsfield units when the volume is CT.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets
from PySide6.QtCore import Qt

from ..core.axis_edit import rotated_about_axis, with_axis_end
from ..core.reslice import reslice
from ..core.volume import Plane, ToothAxis, Volume
from . import style
from .tools.base import new_drag_key
from .volume_controller import CENTRAL_INCISORS, VolumeController

REFERENCE_MAX_PX = 384          # a reference view is resliced at most this many pixels across
PREVIEW_FACTOR = 2              # the oblique slice during a drag: this many times coarser

#: window/level presets (lower, upper) in the volume's rescaled units (HU for CT)
WINDOWS = {"Teeth and bone": (-400.0, 2600.0), "Bone": (-200.0, 1600.0), "Soft tissue": (-160.0, 240.0)}

AXIS_COLOR = "#ffd54f"
INCISAL_COLOR = "#4fc3f7"
APEX_COLOR = style.LANDMARK_STYLES["apex"][0]
TOOTH_MARK_COLOR = "#80cbc4"


class _ScrollViewBox(pg.ViewBox):
    """A ViewBox whose wheel scrolls through the volume; Ctrl+wheel zooms."""

    scrolled = QtCore.Signal(int)

    def wheelEvent(self, ev, axis=None):  # noqa: N802 - Qt API
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
            return
        delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
        self.scrolled.emit(1 if delta > 0 else -1)
        ev.accept()


class _SliceView(pg.GraphicsView):
    """One image (a resliced plane) with pixel coordinates as view coordinates (y down)."""

    def __init__(self, title: str, scrollable: bool, parent=None):
        super().__init__(parent, background=style.VIEW_BACKGROUND)
        self.viewbox = (_ScrollViewBox if scrollable else pg.ViewBox)(
            invertY=True, lockAspect=True, enableMenu=False, defaultPadding=0.01)
        self.setCentralItem(self.viewbox)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.viewbox.addItem(self.image)
        self.title = pg.TextItem(title, color="#cfd8dc", anchor=(0, 0))
        self.title.setParentItem(self.viewbox)
        self.title.setPos(4, 2)
        self.plane: Plane | None = None
        self.setMinimumSize(160, 160)

    def show_array(self, arr: np.ndarray, levels: tuple[float, float], autorange: bool,
                   rect: QtCore.QRectF | None = None) -> None:
        """Show ``arr``; pixel (row i, col j) covers [j-0.5, j+0.5] x [i-0.5, i+0.5] unless ``rect``
        places it elsewhere (a coarse preview stretched over the full-size plane)."""
        self.image.setImage(arr, levels=levels, autoLevels=False)
        self.image.setRect(rect if rect is not None else QtCore.QRectF(-0.5, -0.5, arr.shape[1], arr.shape[0]))
        if autorange:
            self.viewbox.autoRange(padding=0.01)


class _ReferenceView(_SliceView):
    """A reference view with the tooth axis (line + two handles) and the teeth found."""

    handleMoved = QtCore.Signal(str, object, bool)      # end, LPS point, finished

    def __init__(self, title: str, parent=None):
        super().__init__(title, scrollable=True, parent=parent)
        self.axis_line = pg.PlotCurveItem(pen=pg.mkPen(AXIS_COLOR, width=2))
        self.viewbox.addItem(self.axis_line, ignoreBounds=True)
        self.handles: dict[str, pg.TargetItem] = {}
        for end, colour in (("incisal", INCISAL_COLOR), ("apex", APEX_COLOR)):
            h = pg.TargetItem(size=13, symbol="o", pen=pg.mkPen(colour, width=2),
                              brush=pg.mkBrush(style.HANDLE_FILL), hoverPen=pg.mkPen("#ffffff", width=3))
            h.setToolTip(f"Drag to move the {'incisal edge' if end == 'incisal' else 'apex'} "
                         "end of the tooth axis")
            h.sigPositionChanged.connect(lambda item, e=end: self._moved(e, False))
            h.sigPositionChangeFinished.connect(lambda item, e=end: self._moved(e, True))
            self.viewbox.addItem(h, ignoreBounds=True)
            self.handles[end] = h
        self.marks = pg.ScatterPlotItem(size=9, symbol="s", pen=pg.mkPen(TOOTH_MARK_COLOR, width=1.5),
                                        brush=pg.mkBrush(0, 0, 0, 0))
        self.viewbox.addItem(self.marks, ignoreBounds=True)
        self.labels: list[pg.TextItem] = []
        self._syncing = False
        self._axis: ToothAxis | None = None

    def _moved(self, end: str, finished: bool) -> None:
        if self._syncing or self.plane is None or self._axis is None:
            return
        pos = self.handles[end].pos()
        old = np.asarray(getattr(self._axis, end), float)
        # move within this view's plane only: keep the point's distance from it
        new = self.plane.pixel_to_lps([pos.x(), pos.y()]) + self.plane.normal * float(self.plane.distance(old))
        self.handleMoved.emit(end, new, finished)

    def show_axis(self, axis: ToothAxis | None) -> None:
        self._axis = axis
        self._syncing = True
        try:
            visible = axis is not None and self.plane is not None
            for h in self.handles.values():
                h.setVisible(visible)
            self.axis_line.setVisible(visible)
            if not visible:
                return
            pts = self.plane.lps_to_pixel(np.array([axis.incisal, axis.apex], float))
            self.axis_line.setData(pts[:, 0], pts[:, 1])
            self.handles["incisal"].setPos(*pts[0])
            self.handles["apex"].setPos(*pts[1])
        finally:
            self._syncing = False

    def show_teeth(self, teeth: dict[int, ToothAxis]) -> None:
        for lab in self.labels:
            self.viewbox.removeItem(lab)
        self.labels = []
        if self.plane is None or not teeth:
            self.marks.setData([], [])
            return
        crowns = np.array([0.5 * (np.asarray(t.incisal, float) + np.asarray(t.cej, float)) for t in teeth.values()])
        px = self.plane.lps_to_pixel(crowns)
        self.marks.setData(px[:, 0], px[:, 1])
        for (fdi, _), p in zip(teeth.items(), px):
            lab = pg.TextItem(str(fdi), color=TOOTH_MARK_COLOR, anchor=(0.5, 1.2))
            lab.setPos(float(p[0]), float(p[1]))
            self.viewbox.addItem(lab, ignoreBounds=True)
            self.labels.append(lab)


def _reference_plane(volume: Volume, kind: str, centre: np.ndarray) -> Plane:
    """An axial / sagittal / coronal plane through ``centre`` covering the volume (LPS)."""
    lo, hi = volume.bounds_lps()
    ext = hi - lo
    dirs = {"axial": ((1, 0, 0), (0, 1, 0), (0, 1)), "sagittal": ((0, 1, 0), (0, 0, -1), (1, 2)),
            "coronal": ((1, 0, 0), (0, 0, -1), (0, 2))}
    row, col, (a, b) = dirs[kind]
    spacing = max(min(volume.spacing), float(max(ext[a], ext[b])) / REFERENCE_MAX_PX)
    cols = max(2, int(round(ext[a] / spacing)) + 1)
    rows = max(2, int(round(ext[b] / spacing)) + 1)
    mid = 0.5 * (lo + hi)
    c = np.array(mid)
    normal_axis = ({0, 1, 2} - {a, b}).pop()
    c[normal_axis] = centre[normal_axis]
    return Plane.centred(c, row, col, (spacing, spacing), (rows, cols))


class VolumeView(QtWidgets.QWidget):
    """Reference views, the oblique slice and the controls of one ``VolumeController``."""

    def __init__(self, controller: VolumeController, parent=None):
        super().__init__(parent)
        self.ctl = controller
        self.levels = WINDOWS["Teeth and bone"]
        self.centre = np.zeros(3)
        self._drag_key = None

        self.axial = _ReferenceView("Axial")
        self.side = _ReferenceView("Sagittal")
        self.oblique = _SliceView("Tooth plane (apex up, labial left)", scrollable=False)
        self.oblique_marks = pg.ScatterPlotItem(size=10, pen=pg.mkPen("#000000", width=1))
        self.oblique.viewbox.addItem(self.oblique_marks, ignoreBounds=True)
        self.oblique_axis = pg.PlotCurveItem(pen=pg.mkPen(AXIS_COLOR, width=1, style=Qt.PenStyle.DashLine))
        self.oblique.viewbox.addItem(self.oblique_axis, ignoreBounds=True)

        views = QtWidgets.QSplitter(Qt.Orientation.Horizontal, self)
        for v in (self.axial, self.side, self.oblique):
            views.addWidget(v)
        views.setSizes([300, 300, 400])

        self.tooth_combo = QtWidgets.QComboBox(self)
        self.tooth_combo.setToolTip("Tooth whose plane is shown (FDI number)")
        self.tooth_combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.tooth_combo.activated.connect(lambda i: self.ctl.select_tooth(int(self.tooth_combo.itemData(i))))
        self.side_combo = QtWidgets.QComboBox(self)
        self.side_combo.addItems(["Sagittal", "Coronal"])
        self.side_combo.setToolTip("Second reference view")
        self.side_combo.currentTextChanged.connect(lambda _: self._refresh_references(autorange=True))
        self.rotation = QtWidgets.QDoubleSpinBox(self)
        self.rotation.setRange(-45.0, 45.0)
        self.rotation.setSingleStep(1.0)
        self.rotation.setSuffix(" °")
        self.rotation.setToolTip("Turn the slice plane about the tooth's long axis (one undo step per change)")
        self.rotation.setKeyboardTracking(False)
        self.rotation.valueChanged.connect(self._on_rotation)
        self._rotation_base: ToothAxis | None = None
        self.slab = QtWidgets.QDoubleSpinBox(self)
        self.slab.setRange(0.0, 5.0)
        self.slab.setSingleStep(0.5)
        self.slab.setSuffix(" mm")
        self.slab.setToolTip("Slab thickness: the slice is the mean over this thickness across the plane "
                             "(0 = a single plane). 0.5–1 mm cuts noise.")
        self.slab.valueChanged.connect(self._on_slab)
        self.offsets = QtWidgets.QLineEdit("0", self)
        self.offsets.setMaximumWidth(110)
        self.offsets.setToolTip("Parasagittal planes to measure, in mm along the mesio-distal direction "
                                "(+ toward distal), e.g. -2,-1,0,1,2: the report then summarises the whole "
                                "tooth (mean, min, max per thickness level, PAB volume)")
        self.window_combo = QtWidgets.QComboBox(self)
        self.window_combo.addItems([*WINDOWS, "Auto"])
        self.window_combo.setToolTip("Window / level of the three views")
        self.window_combo.currentTextChanged.connect(self._on_window)
        self.reset_button = QtWidgets.QPushButton("Reset axis", self)
        self.reset_button.setToolTip("Back to the axis the detection found")
        self.reset_button.clicked.connect(self.ctl.reset_axis)
        self.measure_button = QtWidgets.QPushButton("Measure this slice", self)
        self.measure_button.setToolTip("Add this tooth's slice to the case list as a DICOM slice with its "
                                       "spacing and plane; predict and measure it there")
        self.measure_button.clicked.connect(lambda: self._measure(None))
        self.measure_both_button = QtWidgets.QPushButton("Measure 11 and 21", self)
        self.measure_both_button.clicked.connect(lambda: self._measure(list(CENTRAL_INCISORS)))
        self.info = QtWidgets.QLabel("Open a CBCT volume: File › Open CBCT volume… (a DICOM series folder, "
                                     "an enhanced DICOM, NIfTI or NRRD file).", self)
        self.info.setWordWrap(True)
        self.info.setStyleSheet("color:#666;")

        # two short rows rather than one long one, so the volume tab does not force the docks
        # beside it narrower than the slice tab needs them
        controls = QtWidgets.QHBoxLayout()
        for label, w in (("Tooth", self.tooth_combo), ("View", self.side_combo), ("Window", self.window_combo),
                         ("Rotate", self.rotation)):
            controls.addWidget(QtWidgets.QLabel(label, self))
            controls.addWidget(w)
        controls.addStretch(1)
        actions = QtWidgets.QHBoxLayout()
        for label, w in (("Slab", self.slab), ("Planes", self.offsets)):
            actions.addWidget(QtWidgets.QLabel(label, self))
            actions.addWidget(w)
        actions.addStretch(1)
        for b in (self.reset_button, self.measure_button, self.measure_both_button):
            actions.addWidget(b)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(controls)
        lay.addWidget(views, 1)
        lay.addWidget(self.info)
        lay.addLayout(actions)

        for ref in (self.axial, self.side):
            ref.handleMoved.connect(self._on_handle)
            ref.viewbox.scrolled.connect(lambda step, r=ref: self._scroll(r, step))
        controller.volumeOpened.connect(self._on_volume)
        controller.teethChanged.connect(self._on_teeth)
        controller.axisChanged.connect(self._on_axis)
        controller.previewAxis.connect(lambda a: self._show_oblique(a, preview=True))
        self._update_enabled()

    # ------------------------------------------------------------------ model -> views
    def _on_volume(self, volume: Volume | None) -> None:
        if volume is None:
            for v in (self.axial, self.side, self.oblique):
                v.image.clear()
                v.plane = None
            self._update_enabled()
            return
        lo, hi = volume.bounds_lps()
        self.centre = 0.5 * (lo + hi)
        if volume.meta.get("modality", "CT") not in ("CT", "") and self.window_combo.currentText() != "Auto":
            self.window_combo.setCurrentText("Auto")
        self._on_window(self.window_combo.currentText(), refresh=False)
        shape = "×".join(str(n) for n in reversed(volume.shape))
        sp = " × ".join(f"{s:.3g}" for s in volume.spacing)
        self.info.setText(f"{self.ctl.path.name if self.ctl.path else 'volume'}: {shape} voxels of {sp} mm"
                          + ("; " + "; ".join(volume.meta.get("notes", [])) if volume.meta.get("notes") else ""))
        self._refresh_references(autorange=True)
        self._update_enabled()

    def _on_teeth(self, teeth: dict) -> None:
        self.tooth_combo.clear()
        for fdi in sorted(self.ctl.edited):
            t = self.ctl.edited[fdi]
            self.tooth_combo.addItem(f"{fdi}  ({t.confidence:.0%})", fdi)
        for ref in (self.axial, self.side):
            ref.show_teeth(self.ctl.teeth)
        self._update_enabled()

    def _on_axis(self, axis: ToothAxis | None) -> None:
        if axis is not None:
            i = self.tooth_combo.findData(int(axis.tooth))
            if i >= 0:
                self.tooth_combo.setCurrentIndex(i)
            self.centre = np.asarray(axis.cej, float)
        self._rotation_base = None
        self.rotation.blockSignals(True)
        self.rotation.setValue(0.0)
        self.rotation.blockSignals(False)
        self._refresh_references(autorange=False)
        self._show_oblique(axis, preview=False)
        self._update_enabled()

    def _refresh_references(self, autorange: bool) -> None:
        vol = self.ctl.volume
        if vol is None:
            return
        self.side.title.setText(self.side_combo.currentText())
        for ref, kind in ((self.axial, "axial"), (self.side, self.side_combo.currentText().lower())):
            first = ref.plane is None
            ref.plane = _reference_plane(vol, kind, self.centre)
            ref.show_array(reslice(vol, ref.plane), self.levels, autorange or first)
            ref.show_axis(self.ctl.axis)
            ref.show_teeth(self.ctl.teeth)

    def _show_oblique(self, axis: ToothAxis | None, preview: bool) -> None:
        vol = self.ctl.volume
        if vol is None or axis is None:
            self.oblique.image.clear()
            self.oblique_marks.setData([], [])
            self.oblique_axis.setData([], [])
            return
        full = self.ctl.spacing_mm()
        plane = self.ctl.plane(axis, spacing=full * (PREVIEW_FACTOR if preview else 1))
        first = self.oblique.plane is None
        slab = 0.0 if preview else self.ctl.slab_mm
        arr = reslice(vol, plane, slab_mm=slab)
        rect = None
        if preview:      # keep the view's scale: stretch the coarse image over the full-size plane
            coarse, plane = plane, self.ctl.plane(axis)
            x0, y0 = plane.lps_to_pixel(coarse.pixel_to_lps([-0.5, -0.5]))
            k = coarse.spacing[0] / plane.spacing[0]
            rect = QtCore.QRectF(float(x0), float(y0), arr.shape[1] * k, arr.shape[0] * k)
        self.oblique.show_array(arr, self.levels, autorange=first, rect=rect)
        self.oblique.plane = plane
        pts = plane.lps_to_pixel(np.array([axis.incisal, axis.cej, axis.apex], float))
        self.oblique_marks.setData(pts[:, 0], pts[:, 1], brush=[pg.mkBrush(INCISAL_COLOR), pg.mkBrush("#ffffff"),
                                                               pg.mkBrush(APEX_COLOR)])
        self.oblique_axis.setData(pts[[0, 2], 0], pts[[0, 2], 1])

    def _update_enabled(self) -> None:
        has_axis = self.ctl.axis is not None
        for w in (self.rotation, self.reset_button, self.measure_button, self.tooth_combo):
            w.setEnabled(has_axis)
        self.measure_both_button.setEnabled(sum(t in self.ctl.edited for t in CENTRAL_INCISORS) >= 2)
        self.slab.setEnabled(self.ctl.volume is not None)

    # ------------------------------------------------------------------ user -> model
    def offsets_mm(self) -> tuple[float, ...] | None:
        """The planes asked for ('-2,-1,0,1,2'), sorted; None when the text is not a list of mm."""
        try:
            vals = sorted({float(v) for v in self.offsets.text().replace(";", ",").split(",") if v.strip()})
        except ValueError:
            return None
        return tuple(vals) if vals and all(abs(v) <= 10 for v in vals) else None

    def _measure(self, teeth) -> bool:
        offsets = self.offsets_mm()
        if offsets is None:
            self.ctl.statusMessage.emit(f"“{self.offsets.text()}” is not a list of planes: type mm values "
                                        "between -10 and 10 separated by commas, e.g. -2,-1,0,1,2.", 8000)
            return False
        return self.ctl.measure(teeth, offsets)

    def _on_handle(self, end: str, point, finished: bool) -> None:
        axis = self.ctl.axis
        if axis is None:
            return
        try:
            new = with_axis_end(axis, end, point)
        except ValueError:
            return
        if not finished:
            self.ctl.preview(new)
            for ref in (self.axial, self.side):
                ref.show_axis(new)
            return
        self.ctl.set_axis(new, "Move the " + ("incisal end" if end == "incisal" else "apex")
                          + " of the tooth axis")

    def _on_rotation(self, degrees: float) -> None:
        axis = self.ctl.axis
        if axis is None:
            return
        if self._rotation_base is None:
            self._rotation_base = axis
            self._drag_key = new_drag_key("rotate-plane")
        base, key = self._rotation_base, self._drag_key
        value = self.rotation.value()
        self.ctl.set_axis(rotated_about_axis(base, degrees), f"Turn the plane {degrees:+.0f}°", merge_key=key)
        # set_axis re-emitted axisChanged, which reset the control: keep the rotation shown
        self._rotation_base, self._drag_key = base, key
        self.rotation.blockSignals(True)
        self.rotation.setValue(value)
        self.rotation.blockSignals(False)

    def _on_slab(self, mm: float) -> None:
        self.ctl.slab_mm = float(mm)
        self._show_oblique(self.ctl.axis, preview=False)

    def _on_window(self, name: str, refresh: bool = True) -> None:
        vol = self.ctl.volume
        if name in WINDOWS:
            self.levels = WINDOWS[name]
        elif vol is not None:
            step = max(1, int(round((vol.voxels.size / 2e6) ** (1 / 3))))
            sample = vol.to_hu(vol.voxels[::step, ::step, ::step])
            lo, hi = np.percentile(sample, [1.0, 99.8])
            self.levels = (float(lo), float(hi if hi > lo else lo + 1))
        if refresh:
            for v in (self.axial, self.side, self.oblique):
                v.image.setLevels(self.levels)

    def _scroll(self, ref: _ReferenceView, step: int) -> None:
        vol = self.ctl.volume
        if vol is None or ref.plane is None:
            return
        lo, hi = vol.bounds_lps()
        self.centre = np.clip(self.centre + step * min(vol.spacing) * ref.plane.normal, lo, hi)
        ref.plane = ref.plane.shifted(step * min(vol.spacing))
        ref.show_array(reslice(vol, ref.plane), self.levels, autorange=False)
        ref.show_axis(self.ctl.axis)
        ref.show_teeth(self.ctl.teeth)
