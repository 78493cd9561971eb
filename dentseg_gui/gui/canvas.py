"""``ImageCanvas``: the image view with regions, landmarks, measurement overlay and tools.

A pyqtgraph ``GraphicsView`` + ``ViewBox`` shows the RAW intensities in an
``ImageItem`` (levels in the image's own units: 16-bit values and HU are kept)
with a ``HistogramLUTWidget`` beside it for window/level. View coordinates are
image pixel coordinates of DESIGN.md (pixel centres at integers, y down).

The canvas mirrors a ``CaseDocument``: it redraws a region, the landmarks or
the measurement overlay when the document says that changed, and sends user
gestures to the active tool (``tools.py``), which edits the document through
its undoable methods. Mouse events are taken from the viewport directly (an
event filter), so the tools see every move, press and release unthrottled
and pyqtgraph only handles the wheel (zoom about the cursor). Pan: middle or
right drag anywhere, left drag in the navigate tool or with Space held.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Signal

from ..core.annotation import LANDMARKS, REGIONS
from . import style
from .document import CaseDocument
from .overlay import MeasurementOverlay, multipolygon_path, render_overlay_image
from .tools import (ACTION_NAMES, CLICK_SLOP_PX, HIT_RADIUS_PX, SPECS_BY_NAME, TOOL_NAMES,
                    CanvasEvent, Throttle, Tool, brush_step, fill_holes, make_tools,
                    new_drag_key)

pg.setConfigOptions(imageAxisOrder="row-major")

Qt = QtCore.Qt
_MOUSE_EVENTS = {QtCore.QEvent.Type.MouseButtonPress, QtCore.QEvent.Type.MouseButtonRelease,
                 QtCore.QEvent.Type.MouseMove, QtCore.QEvent.Type.MouseButtonDblClick}

_TOOL_KEYS = {Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape, Qt.Key.Key_Delete,
              Qt.Key.Key_Backspace}


def display_array(pixels: np.ndarray) -> np.ndarray:
    """The array handed to the ImageItem: the raw values, as integers when they are integers.

    Integer data lets pyqtgraph window through a lookup table (a 4096x5120
    8-bit image re-levels in a few ms instead of ~60 ms for float32); values
    are never rescaled, so levels stay in the image's own units.
    """
    px = np.asarray(pixels)
    if px.dtype.kind in "ui":
        return px
    lo, hi = float(px.min()), float(px.max())
    if lo >= 0 and hi <= 65535:
        step = max(1, int(np.sqrt(px.size / 100_000)))
        sample = px[::step, ::step]
        if np.array_equal(sample, np.round(sample)):
            as_int = px.astype(np.uint8 if hi <= 255 else np.uint16)
            if np.array_equal(as_int, px):       # every value is an integer: lossless
                return as_int
    return px.astype(np.float32, copy=False)


class DisplayPyramid:
    """The display image at 1, 1/2, 1/4, ... resolution (area-averaged, raw units kept).

    pyqtgraph's ``autoDownsample`` re-downsamples the whole image on every
    render, ~60-80 ms for a 4096x5120 radiograph at each zoom step or level
    change. The pyramid is built once when a case opens; the canvas shows the
    level that matches the zoom, so a render never touches more pixels than
    about twice the screen's.
    """

    MIN_SIDE = 512

    def __init__(self, arr: np.ndarray):
        self.levels = [arr]
        while max(self.levels[-1].shape) > 2 * self.MIN_SIDE:
            self.levels.append(_half(self.levels[-1]))

    def level_for(self, image_px_per_screen_px: float) -> int:
        k = int(np.floor(np.log2(max(image_px_per_screen_px, 1.0))))
        return int(np.clip(k, 0, len(self.levels) - 1))


def _half(a: np.ndarray) -> np.ndarray:
    h, w = a.shape
    nh, nw = (h + 1) // 2, (w + 1) // 2
    try:
        import cv2
        return cv2.resize(a, (nw, nh), interpolation=cv2.INTER_AREA)
    except Exception:  # no OpenCV: plain 2x2 mean
        p = np.pad(a.astype(np.float32), ((0, 2 * nh - h), (0, 2 * nw - w)), mode="edge")
        m = p.reshape(nh, 2, nw, 2).mean(axis=(1, 3))
        return m.round().astype(a.dtype) if a.dtype.kind in "ui" else m.astype(a.dtype)


class ImageLayer(pg.ItemGroup):
    """Everything drawn in image pixel coordinates (the image, regions, landmarks, overlays,
    tool previews), turned and mirrored as one for display.

    The slice is shown upright by turning this layer (``set_orientation``); the items inside
    keep image pixel coordinates, so tools, hit-testing and the annotation never see the
    turn. Its bounding rect is the image's, so the view fits the turned image.
    """

    def __init__(self):
        super().__init__()
        self._rect = QtCore.QRectF()
        self.orientation = (0, False)

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 - Qt API
        return self._rect

    def addItem(self, item, ignoreBounds: bool = False) -> None:  # noqa: N802, N803 - ViewBox's API
        item.setParentItem(self)

    def set_image_size(self, width: int, height: int) -> None:
        self.prepareGeometryChange()
        self._rect = QtCore.QRectF(-0.5, -0.5, float(width), float(height))
        self.set_orientation(*self.orientation)

    def set_orientation(self, rotate_ccw_deg: int, mirror: bool) -> None:
        """Turn the content counter-clockwise by ``rotate_ccw_deg`` about the image's centre, then
        mirror it left-right (view y points down, so a counter-clockwise turn is a negative angle)."""
        self.orientation = (int(rotate_ccw_deg) % 360, bool(mirror))
        c = self._rect.center()
        t = QtGui.QTransform()
        t.translate(c.x(), c.y())
        if mirror:
            t.scale(-1.0, 1.0)
        t.rotate(-float(self.orientation[0]))
        t.translate(-c.x(), -c.y())
        self.setTransform(t)


class ImageCanvas(QtWidgets.QWidget):
    """The interactive image view of one ``CaseDocument`` (see module doc)."""

    cursorInfo = Signal(str)            # "x 120 y 88 | value 1043 | 18.0, 13.2 mm" or ""
    toolChanged = Signal(str)
    activeRegionChanged = Signal(str)
    brushSizeChanged = Signal(float)    # radius in image pixels
    regionStyleChanged = Signal(str)
    overlayVisibilityChanged = Signal(str, bool)
    levelsChanged = Signal(float, float)
    statusMessage = Signal(str)         # short hint for the status bar (why a tool did nothing)

    def __init__(self, parent: QtWidgets.QWidget | None = None, show_histogram: bool = True):
        super().__init__(parent)
        self._doc: CaseDocument | None = None
        self._active_region = "PAB"
        self._brush = 8.0
        self._styles = dict(style.REGION_STYLES)
        self._overlays = {name: True for name in style.OVERLAY_NAMES}
        self.throttle = Throttle(33, self)

        self.view = pg.GraphicsView(background=style.VIEW_BACKGROUND)
        self.viewbox = pg.ViewBox(invertY=True, lockAspect=True, enableMenu=False,
                                  defaultPadding=0.02)
        self.view.setCentralItem(self.viewbox)
        self.layer = ImageLayer()
        self.viewbox.addItem(self.layer)
        self.image_item = pg.ImageItem()
        # pixel (row i, col j) covers [j-0.5, j+0.5] x [i-0.5, i+0.5] (DESIGN.md)
        self.image_item.setTransform(QtGui.QTransform.fromTranslate(-0.5, -0.5))
        # the image is drawn once per zoom / pan / level change and then blitted: an edit's
        # repaint does not rescale it again (demo case: 9.1 -> 5.7 ms per repaint). Qt caches
        # only the part in the viewport, so a zoomed-in radiograph costs no extra memory.
        self.image_item.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.layer.addItem(self.image_item)
        self._pyramid: DisplayPyramid | None = None
        self._display_level = -1
        self.viewbox.sigRangeChanged.connect(self._update_display_level)

        self.histogram = pg.HistogramLUTWidget(background=style.VIEW_BACKGROUND)
        self.histogram.setImageItem(self.image_item)
        self.histogram.item.gradient.loadPreset("grey")
        self.histogram.item.plot.setPen(pg.mkPen(style.LEVEL_COLOR, width=1))
        self.histogram.item.plot.setBrush(pg.mkBrush(style.qcolor(style.LEVEL_COLOR, 0.35)))
        self.histogram.item.region.setBrush(pg.mkBrush(style.qcolor(style.REGION_STYLES["PAB"].color, 0.12)))
        self.histogram.setMinimumWidth(96)
        self.histogram.setMaximumWidth(130)
        self.histogram.item.sigLevelsChanged.connect(self._on_hist_levels)
        self.histogram.setVisible(show_histogram)

        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.histogram, 0)

        self.region_items: dict[str, QtWidgets.QGraphicsPathItem] = {}
        for z, name in enumerate(REGIONS):
            it = QtWidgets.QGraphicsPathItem()
            it.setZValue(10 + z)
            self.layer.addItem(it, ignoreBounds=True)
            self.region_items[name] = it
            self._apply_region_style(name)

        # pieces of a region left out of the measurements (core.pieces): hatched, so nobody
        # mistakes them for measured bone
        self.left_out_items: dict[str, QtWidgets.QGraphicsPathItem] = {}
        for name in REGIONS:
            it = QtWidgets.QGraphicsPathItem()
            it.setZValue(12)
            brush = QtGui.QBrush(QtGui.QColor(style.LEFT_OUT_COLOR), Qt.BrushStyle.BDiagPattern)
            it.setBrush(brush)
            it.setPen(style.cosmetic_pen(style.LEFT_OUT_COLOR, 1.4, 0.9, Qt.PenStyle.DashLine))
            it.setToolTip("left out of the measurements: not the piece that belongs to the tooth")
            self.layer.addItem(it, ignoreBounds=True)
            self.left_out_items[name] = it

        self.landmark_item = pg.ScatterPlotItem(pxMode=True)
        self.landmark_item.setZValue(30)
        self.layer.addItem(self.landmark_item, ignoreBounds=True)
        self.landmark_labels: dict[str, pg.TextItem] = {}
        for name in LANDMARKS:
            color, _sym, label = style.LANDMARK_STYLES[name]
            t = pg.TextItem(label, color=style.qcolor(color), anchor=(-0.15, 1.1),
                            fill=pg.mkBrush(12, 16, 22, 170))
            t.setFont(style.label_font(8.5))
            t.setZValue(31)
            t.setVisible(False)
            self.layer.addItem(t, ignoreBounds=True)
            self.landmark_labels[name] = t

        self.measurement_overlay = MeasurementOverlay(self.layer, to_screen=self._to_screen)
        # labels never cover each other: re-laid out after every change and zoom, in screen space
        self.viewbox.sigTransformChanged.connect(lambda *_: self._layout_labels())

        self.tools: dict[str, Tool] = make_tools(self)
        self._tool = self.tools["navigate"]

        # gesture state
        self._press: CanvasEvent | None = None
        self._press_owner: str | None = None     # "tool" | "landmark" | "pan" | "right"
        self._last_widget_pos: QtCore.QPointF | None = None
        self._landmark_drag: tuple[str, object] | None = None
        self._space_down = False

        self.view.setMouseTracking(True)
        self.view.viewport().setMouseTracking(True)
        self.view.viewport().installEventFilter(self)
        self.view.installEventFilter(self)
        self.view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setFocusProxy(self.view)
        self._update_cursor()

    # ================================================================== document
    def document(self) -> CaseDocument | None:
        return self._doc

    def set_document(self, doc: CaseDocument | None) -> None:
        """Show ``doc`` (or nothing); fits the view when the image changes."""
        if self._doc is doc:
            return
        self._end_gesture()          # a drag in progress lands in the document it started in
        self._tool.deactivate()
        if self._doc is not None:
            for sig, slot in self._doc_connections():
                try:
                    sig.disconnect(slot)
                except (RuntimeError, TypeError):
                    pass
        self._doc = doc
        self.throttle.cancel()
        self._pyramid = None
        self._display_level = -1
        if doc is None:
            self.image_item.clear()
        else:
            for sig, slot in self._doc_connections():
                sig.connect(slot)
            arr = display_array(doc.image.pixels)
            self._pyramid = DisplayPyramid(arr)
            lo, hi = doc.image.value_range()
            self._show_level(len(self._pyramid.levels) - 1, (lo, hi))
            self.histogram.item.setHistogramRange(float(arr.min()), float(arr.max()))
            self.histogram.item.setLevels(lo, hi)
            self.layer.set_image_size(doc.image.width, doc.image.height)
            self.layer.set_orientation(*doc.orientation)
            self._apply_aspect()
        for name in REGIONS:
            self._update_region(name)
        self._update_landmarks()
        self._update_measurement_overlay()
        self._update_left_out()
        for t in self.tools.values():
            t.document_changed()
        self._tool.activate()
        self.fit()

    def _show_level(self, k: int, levels: tuple[float, float]) -> None:
        a = self._pyramid.levels[k]
        h, w = self._pyramid.levels[0].shape
        self.image_item.setImage(a, autoLevels=False, levels=levels)
        # level pixel (u, v) spans image pixels [u*w/nw - 0.5, ...]: exact for odd sizes too
        self.image_item.setTransform(QtGui.QTransform(w / a.shape[1], 0, 0, h / a.shape[0],
                                                      -0.5, -0.5))
        self._display_level = k

    def _update_display_level(self, *_args) -> None:
        if self._pyramid is None:
            return
        k = self._pyramid.level_for(1.0 / self.pixel_scale())
        if k != self._display_level:
            self._show_level(k, self.levels())

    def display_factor(self) -> int:
        """How many image pixels one displayed pixel stands for at this zoom (1, 2, 4, ...)."""
        if self._pyramid is None or self._display_level < 0:
            return 1
        return round(self._pyramid.levels[0].shape[1] / self._pyramid.levels[self._display_level].shape[1])

    def _doc_connections(self):
        d = self._doc
        return [(d.regionsChanged, self._on_region_changed),
                (d.landmarksChanged, self._on_landmarks_changed),
                (d.measurementsChanged, self._on_measurements_changed),
                (d.spacingChanged, self._on_spacing_changed),
                (d.orientationChanged, self._on_orientation_changed)]

    def _on_region_changed(self, name: str) -> None:
        self._update_region(name)
        for t in self.tools.values():
            t.document_changed()

    def _on_landmarks_changed(self) -> None:
        self._update_landmarks()
        self.tools["palatal_edit"].document_changed()

    def _on_measurements_changed(self, _ms) -> None:
        self._update_measurement_overlay()
        self._update_left_out()

    def _update_left_out(self) -> None:
        ms = self._doc.measurements() if self._doc is not None else None
        for name, it in self.left_out_items.items():
            geom = ms.left_out.get(name) if ms is not None else None
            it.setPath(multipolygon_path(geom) if geom is not None and not geom.is_empty else QtGui.QPainterPath())

    def _on_spacing_changed(self, _spacing) -> None:
        self._apply_aspect()
        self.tools["palatal_edit"].document_changed()

    def _on_orientation_changed(self) -> None:
        self.layer.set_orientation(*self._doc.orientation)
        self._apply_aspect()
        self.fit()
        self._update_landmarks()               # label sides are chosen as the user sees them
        self._update_measurement_overlay()

    def _to_screen(self, p) -> tuple[float, float]:
        """Image point -> scene point (screen-aligned: x right, y down on the screen)."""
        q = self.layer.mapToScene(QtCore.QPointF(float(p[0]), float(p[1])))
        return q.x(), q.y()

    def label_items(self) -> list:
        """Every visible text label on the image (landmarks and measurement overlay)."""
        items = [*self.landmark_labels.values(), *self.measurement_overlay.items()]
        return [t for t in items if isinstance(t, pg.TextItem) and t.isVisible()]

    def _layout_labels(self) -> None:
        """Move labels apart on the screen where they would overlap: each keeps its anchor side and
        slides down (in steps of its own height) below the labels above it that it would cover."""
        placed: list[QtCore.QRectF] = []
        labels = []
        for t in self.label_items():
            t.updateTransform()      # its upright transform follows the view at once, not at the next paint
            base = getattr(t, "_base_anchor", None)
            if base is None or tuple(t.anchor) not in (base, getattr(t, "_laid_anchor", None)):
                base = tuple(t.anchor)             # set by the owner since the last layout
                t._base_anchor = base
            if tuple(t.anchor) != base:
                t.setAnchor(base)
            labels.append(t)
        labels.sort(key=lambda t: t.sceneBoundingRect().top())
        for t in labels:
            rect = t.sceneBoundingRect()
            h = max(rect.height(), 1.0)
            shift = 0.0
            for _ in range(12):
                r = rect.translated(0.0, shift)
                hit = [q for q in placed if q.intersects(r.adjusted(0, -1, 0, 1))]
                if not hit:
                    break
                shift = max(q.bottom() for q in hit) - rect.top() + 2.0
            if shift:
                ax, ay = t._base_anchor
                t.setAnchor((ax, ay - shift / h))
            t._laid_anchor = tuple(t.anchor)
            placed.append(rect.translated(0.0, shift))

    def _apply_aspect(self) -> None:
        """Show anisotropic pixels at their true shape.

        pyqtgraph's ratio is (screen px per x unit) / (screen px per y unit); a
        pixel is ``col`` mm wide and ``row`` mm tall, so the ratio is col / row.
        """
        sp = self._doc.spacing if self._doc is not None else None
        ratio = 1.0 if not sp else float(sp[1]) / float(sp[0])
        if self.layer.orientation[0] in (90, 270):     # turned: the image's rows run across the screen
            ratio = 1.0 / ratio
        self.viewbox.setAspectLocked(True, ratio=ratio)

    # ================================================================== drawing
    def _update_region(self, name: str) -> None:
        item = self.region_items.get(name)
        if item is None:
            return
        geom = self._doc.region(name) if self._doc is not None else None
        item.setPath(multipolygon_path(geom))

    def _apply_region_style(self, name: str) -> None:
        st = self._styles[name]
        item = self.region_items[name]
        item.setBrush(QtGui.QBrush(style.qcolor(st.color, st.opacity)))
        item.setPen(style.cosmetic_pen(st.color, 1.8))
        item.setVisible(st.visible)

    def _update_landmarks(self) -> None:
        spots = []
        lm = self._doc.annotation.landmarks if self._doc is not None else {}
        show = self._overlays["landmarks"]
        for name in LANDMARKS:
            p = lm.get(name)
            color, symbol, _label = style.LANDMARK_STYLES[name]
            label = self.landmark_labels[name]
            if p is None:
                label.setVisible(False)
                continue
            spots.append({"pos": (p[0], p[1]), "symbol": symbol, "size": 13,
                          "pen": pg.mkPen("#000000", width=1.5), "brush": pg.mkBrush(color),
                          "data": name})
            label.setPos(p[0], p[1])
            label.setAnchor(self._label_anchor(self._to_screen(p), [self._to_screen(q) for q in lm.values()
                                                                   if q is not None]))
            label.setVisible(show and self._overlays["labels"])
        self.landmark_item.setData(spots)
        self.landmark_item.setVisible(show)
        self._layout_labels()

    @staticmethod
    def _label_anchor(p, landmarks) -> tuple[float, float]:
        """Put a landmark's label on the side facing away from the other landmarks (screen points)."""
        pts = [q for q in (landmarks.values() if isinstance(landmarks, dict) else landmarks) if q is not None]
        cx = sum(q[0] for q in pts) / len(pts)
        cy = sum(q[1] for q in pts) / len(pts)
        dx, dy = p[0] - cx, p[1] - cy
        if abs(dx) < 1e-9 and abs(dy) < 1e-9:
            return (-0.15, 1.1)
        return (-0.15 if dx >= 0 else 1.15, -0.1 if dy >= 0 else 1.1)

    def _update_measurement_overlay(self) -> None:
        doc = self._doc
        self.measurement_overlay.update(doc.annotation if doc else None,
                                        doc.measurements() if doc else None)
        self._layout_labels()

    # ================================================================== public view API
    def fit(self) -> None:
        """Show the whole image."""
        if self._doc is None:
            return
        h, w = self._doc.image.pixels.shape
        self.viewbox.setRange(self.layer.mapRectToParent(QtCore.QRectF(-0.5, -0.5, w, h)), padding=0.02)

    def zoom_to(self, rect: QtCore.QRectF) -> None:
        """Show ``rect`` (image pixels)."""
        self.viewbox.setRange(self.layer.mapRectToParent(rect), padding=0.0)

    def set_levels(self, lo: float, hi: float) -> None:
        """Window/level in the image's raw units."""
        self.histogram.item.setLevels(float(lo), float(hi))

    def levels(self) -> tuple[float, float]:
        lo, hi = self.histogram.item.getLevels()
        return float(lo), float(hi)

    def reset_levels(self) -> None:
        if self._doc is not None:
            self.set_levels(*self._doc.image.value_range())

    def _on_hist_levels(self, *_args) -> None:
        lo, hi = self.levels()
        self.levelsChanged.emit(lo, hi)

    def set_histogram_visible(self, on: bool) -> None:
        self.histogram.setVisible(bool(on))

    def pixel_scale(self) -> float:
        """Screen pixels per image pixel at the current zoom."""
        px = self.viewbox.viewPixelSize()[0]
        return 1.0 / px if px > 0 else 1.0

    def viewport(self) -> QtWidgets.QWidget:
        """The widget that receives mouse events (for tests and event filters)."""
        return self.view.viewport()

    def image_to_widget(self, x: float, y: float) -> QtCore.QPoint:
        """Image pixel coordinates -> viewport widget coordinates (rounded)."""
        p = self.image_to_widget_f(x, y)
        return QtCore.QPoint(round(p.x()), round(p.y()))

    def image_to_widget_f(self, x: float, y: float) -> QtCore.QPointF:
        scene = self.layer.mapToScene(QtCore.QPointF(float(x), float(y)))
        return self.view.viewportTransform().map(scene)

    def widget_to_image(self, pos: QtCore.QPointF | QtCore.QPoint) -> np.ndarray:
        """Viewport widget coordinates -> image pixel coordinates (x, y)."""
        inv, _ok = self.view.viewportTransform().inverted()
        scene = inv.map(QtCore.QPointF(pos))
        p = self.layer.mapFromScene(scene)
        return np.array([p.x(), p.y()], float)

    # ---- tools
    def set_tool(self, name: str) -> None:
        if name not in self.tools:
            raise ValueError(f"unknown tool {name!r}; expected one of {', '.join(TOOL_NAMES)}")
        if self._tool.name == name:
            return
        self._end_gesture()
        self._tool.deactivate()
        self._tool = self.tools[name]
        self._tool.activate()
        self._update_cursor()
        self.toolChanged.emit(name)
        if name == "palatal_edit" and self.tools["palatal_edit"].curve is None:
            self.statusMessage.emit(f"Palatal boundary: {self.tools['palatal_edit'].reason}")

    def current_tool(self) -> str:
        return self._tool.name

    def tool(self, name: str | None = None) -> Tool:
        return self._tool if name is None else self.tools[name]

    def set_active_region(self, name: str) -> None:
        if name not in REGIONS:
            raise ValueError(f"unknown region {name!r}; expected one of {', '.join(REGIONS)}")
        if name != self._active_region:
            self._active_region = name
            for t in self.tools.values():
                t.document_changed()
            self.activeRegionChanged.emit(name)

    def active_region(self) -> str:
        return self._active_region

    def set_brush_size(self, radius_px: float) -> None:
        r = float(np.clip(radius_px, 0.5, 500.0))
        if r != self._brush:
            self._brush = r
            self.brushSizeChanged.emit(r)

    def brush_size(self) -> float:
        """Brush / eraser radius in image pixels."""
        return self._brush

    def run_action(self, name: str) -> bool:
        """Run a canvas action from ``TOOL_SPECS`` (kind "action"); False if it did nothing."""
        if name not in ACTION_NAMES:
            raise ValueError(f"unknown action {name!r}; expected one of {', '.join(ACTION_NAMES)}")
        ok, why = self.action_available(name)
        if not ok:
            self.statusMessage.emit(why)
            return False
        doc, region = self._doc, self._active_region
        if name == "fit":
            self.fit()
            return True
        if name in ("brush_smaller", "brush_larger"):
            self.set_brush_size(brush_step(self._brush, name == "brush_larger"))
            return True
        if name == "fill_holes":
            return doc.set_region(region, fill_holes(doc.region(region)), f"Fill holes ({region})")
        if name == "delete_region":
            return doc.set_region(region, None, f"Delete {region}")
        if name == "snap_to_edge":
            err = self.tools["palatal_edit"].snap_to_edge()
            if err:
                self.statusMessage.emit(err)
            return err is None
        return False

    def action_available(self, name: str) -> tuple[bool, str]:
        """(enabled, reason when not) - the shell uses this for action enabling and tooltips."""
        if name in ("brush_smaller", "brush_larger"):
            return True, ""
        if self._doc is None:
            return False, "open a case first"
        if name in ("fill_holes", "delete_region") and self._doc.region(self._active_region).is_empty:
            return False, f"the {self._active_region} region is empty"
        if name == "snap_to_edge":
            try:
                from ..model.compensation import snap_curve_to_edge  # noqa: F401
            except Exception as exc:
                return False, f"snap to edge is not available in this build ({exc})"
            if self._doc.region("PAB").is_empty:
                return False, "draw or predict the PAB first"
        return True, ""

    def activate(self, name: str) -> bool:
        """Tool or action by name (what a toolbar button / shortcut does)."""
        if name in self.tools:
            self.set_tool(name)
            return True
        return self.run_action(name)

    # ---- styles and overlays
    def set_region_style(self, name: str, color: str | None = None, opacity: float | None = None,
                         visible: bool | None = None) -> None:
        if name not in self._styles:
            raise ValueError(f"unknown region {name!r}; expected one of {', '.join(REGIONS)}")
        self._styles[name] = self._styles[name].with_changes(color, opacity, visible)
        self._apply_region_style(name)
        self.regionStyleChanged.emit(name)

    def region_style(self, name: str) -> style.RegionStyle:
        return self._styles[name]

    def set_overlay_visible(self, which: str, on: bool) -> None:
        """``which`` in style.OVERLAY_NAMES, or a region name (same as set_region_style visible)."""
        if which in self._styles:
            self.set_region_style(which, visible=on)
            return
        if which not in self._overlays:
            raise ValueError(f"unknown overlay {which!r}; expected one of "
                             f"{', '.join(style.OVERLAY_NAMES + REGIONS)}")
        self._overlays[which] = bool(on)
        if which in ("landmarks", "labels"):
            self._update_landmarks()
        if which == "palatal_curve":
            pe = self.tools["palatal_edit"]
            pe._show(self._tool is pe)
        self.measurement_overlay.set_visible(which, on)
        self.overlayVisibilityChanged.emit(which, bool(on))

    def overlay_visible(self, which: str) -> bool:
        if which in self._styles:
            return self._styles[which].visible
        return self._overlays[which]

    def grab_overlay_image(self, max_size: int = 1600, crop: bool = True) -> QtGui.QImage:
        """The image with the visible overlays at native resolution (cropped to the tooth)."""
        if self._doc is None:
            return QtGui.QImage()
        return render_overlay_image(self._doc.image, self._doc.annotation, levels=self.levels(),
                                    region_styles=self._styles, overlays=self._overlays,
                                    measurements=self._doc.measurements(),
                                    max_size=max_size, crop=crop)

    # ================================================================== events
    def _make_event(self, ev: QtGui.QMouseEvent, button: Qt.MouseButton | None = None) -> CanvasEvent:
        wp = ev.position()
        return CanvasEvent(self.widget_to_image(wp), ev.button() if button is None else button,
                           ev.modifiers(), self.pixel_scale(), wp)

    def eventFilter(self, obj: QtCore.QObject, ev: QtCore.QEvent) -> bool:
        t = ev.type()
        if obj is self.view.viewport():
            if t in _MOUSE_EVENTS:
                return self._mouse_event(ev)
            if t == QtCore.QEvent.Type.Leave:
                self.cursorInfo.emit("")
            return False
        if obj is self.view:
            if t == QtCore.QEvent.Type.ShortcutOverride and ev.key() in _TOOL_KEYS \
                    and not ev.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
                ev.accept()          # Enter/Esc/Del/Backspace belong to the active tool here
                return True
            if t == QtCore.QEvent.Type.KeyPress:
                return self._key_press(ev)
            if t == QtCore.QEvent.Type.KeyRelease and ev.key() == Qt.Key.Key_Space \
                    and not ev.isAutoRepeat():
                self._space_down = False
                self._update_cursor()
                return True
            if t == QtCore.QEvent.Type.FocusOut:
                self._space_down = False
        return False

    def _mouse_event(self, ev: QtGui.QMouseEvent) -> bool:
        if self._doc is None:
            return True
        t = ev.type()
        if t == QtCore.QEvent.Type.MouseButtonPress:
            self.view.setFocus(Qt.FocusReason.MouseFocusReason)
            self._on_press(ev)
        elif t == QtCore.QEvent.Type.MouseMove:
            self._on_move(ev)
        elif t == QtCore.QEvent.Type.MouseButtonRelease:
            self._on_release(ev)
        elif t == QtCore.QEvent.Type.MouseButtonDblClick:
            if ev.button() == Qt.MouseButton.LeftButton:
                self._tool.double_click(self._make_event(ev))
        return True

    def _landmark_at(self, cev: CanvasEvent) -> str | None:
        if self._doc is None or not self._overlays["landmarks"]:
            return None
        names = [n for n in LANDMARKS if self._doc.landmark(n) is not None]
        if not names:
            return None
        d = cev.screen_dist(np.array([self._doc.landmark(n) for n in names]))
        i = int(np.argmin(d))
        return names[i] if d[i] <= HIT_RADIUS_PX + 2 else None

    def _on_press(self, ev: QtGui.QMouseEvent) -> None:
        if self._press is not None:      # a second button during a gesture: ignore it
            return
        cev = self._make_event(ev)
        self._press = cev
        self._last_widget_pos = cev.widget_pos
        button = ev.button()
        if button == Qt.MouseButton.MiddleButton:
            self._press_owner = "pan"
        elif button == Qt.MouseButton.RightButton:
            self._press_owner = "right"     # a click goes to the tool, a drag pans
        elif button == Qt.MouseButton.LeftButton:
            if self._space_down:
                self._press_owner = "pan"
            elif self._tool.wants_press(cev):
                self._press_owner = "tool" if self._tool.press(cev) else None
            elif not self._tool.busy() and (name := self._landmark_at(cev)) is not None:
                self._press_owner = "landmark"
                self._landmark_drag = (name, new_drag_key("landmark"))
            elif self._tool.press(cev):
                self._press_owner = "tool"
            else:   # tools that do nothing with an empty-area drag let it pan
                self._press_owner = "pan" if self._tool.name in ("navigate", "palatal_edit") else None
        else:
            self._press_owner = None
        self._update_cursor()

    def _moved_beyond_slop(self, wp: QtCore.QPointF) -> bool:
        if self._press is None:
            return False
        d = wp - self._press.widget_pos
        return (d.x() ** 2 + d.y() ** 2) ** 0.5 >= CLICK_SLOP_PX

    def _on_move(self, ev: QtGui.QMouseEvent) -> None:
        cev = self._make_event(ev, Qt.MouseButton.NoButton)
        self._emit_cursor_info(cev.pos)
        owner = self._press_owner
        if owner == "right" and self._moved_beyond_slop(cev.widget_pos):
            owner = self._press_owner = "pan"
        if owner == "pan":
            self._pan_to(cev.widget_pos)
        elif owner == "landmark":
            name, key = self._landmark_drag
            pos = tuple(cev.pos)
            doc = self._doc
            self.throttle.submit(lambda: doc.set_landmark(name, pos, f"Move {name}", merge_key=key))
        elif owner == "tool":
            self._tool.move(cev)
        else:
            self._tool.hover(cev)
            self._update_hover_cursor(cev)
        self._last_widget_pos = cev.widget_pos

    def _on_release(self, ev: QtGui.QMouseEvent) -> None:
        if self._press is None or ev.button() != self._press.button:
            return
        cev = self._make_event(ev)
        was_click = not self._moved_beyond_slop(cev.widget_pos)
        owner = self._press_owner
        if owner == "landmark":
            name, key = self._landmark_drag
            pos = tuple(cev.pos)
            if not was_click:
                self.throttle.submit(lambda: self._doc.set_landmark(name, pos, f"Move {name}",
                                                                    merge_key=key))
            self.throttle.flush()
            self._landmark_drag = None
        elif owner == "tool":
            self._tool.release(cev, was_click)
        elif owner == "right" and was_click:
            self._tool.right_click(cev)
        self._press = None
        self._press_owner = None
        self._update_cursor()

    def _end_gesture(self) -> None:
        """Finish whatever drag is going on (tool switch, document switch)."""
        if self._press is not None and self._press_owner == "tool":
            self._tool.release(self._press, False)
        self.throttle.flush()
        self._press = None
        self._press_owner = None
        self._landmark_drag = None

    def _pan_to(self, wp: QtCore.QPointF) -> None:
        if self._last_widget_pos is None:
            return
        inv, _ok = self.view.viewportTransform().inverted()     # view coordinates: the turned image
        a = self.viewbox.mapSceneToView(inv.map(QtCore.QPointF(self._last_widget_pos)))
        b = self.viewbox.mapSceneToView(inv.map(QtCore.QPointF(wp)))
        self.viewbox.translateBy(x=float(a.x() - b.x()), y=float(a.y() - b.y()))

    def _emit_cursor_info(self, pos: np.ndarray) -> None:
        doc = self._doc
        h, w = doc.image.pixels.shape
        j, i = int(np.floor(pos[0] + 0.5)), int(np.floor(pos[1] + 0.5))
        if not (0 <= i < h and 0 <= j < w):
            self.cursorInfo.emit("")
            return
        v = float(doc.image.pixels[i, j])
        vs = f"{v:.0f}" if v == round(v) else f"{v:.4g}"
        text = f"x {j} y {i} | value {vs}"
        sp = doc.spacing
        if sp:
            text += f" | {pos[0] * sp[1]:.1f}, {pos[1] * sp[0]:.1f} mm"
        self.cursorInfo.emit(text)

    def _key_press(self, ev: QtGui.QKeyEvent) -> bool:
        if ev.key() == Qt.Key.Key_Space:
            if not ev.isAutoRepeat():
                self._space_down = True
                self._update_cursor()
            return True
        if self._tool.key(ev):
            return True
        doc = self._doc
        if doc is not None:
            ctrl = Qt.KeyboardModifier.ControlModifier
            shift = Qt.KeyboardModifier.ShiftModifier
            mods = ev.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
            if ev.matches(QtGui.QKeySequence.StandardKey.Undo) or (
                    ev.key() == Qt.Key.Key_Z and mods == ctrl):
                self._end_gesture()
                doc.undo_stack.undo()
                return True
            if ev.matches(QtGui.QKeySequence.StandardKey.Redo) or (
                    ev.key() == Qt.Key.Key_Y and mods == ctrl) or (
                    ev.key() == Qt.Key.Key_Z and mods == ctrl | shift):
                self._end_gesture()
                doc.undo_stack.redo()
                return True
        seq = QtGui.QKeySequence(ev.keyCombination())
        for spec in SPECS_BY_NAME.values():
            if seq.matches(QtGui.QKeySequence(spec.shortcut)) == QtGui.QKeySequence.SequenceMatch.ExactMatch:
                self.activate(spec.name)
                return True
        if ev.key() == Qt.Key.Key_Escape and self._tool.name != "navigate":
            self.set_tool("navigate")
            return True
        return False

    # ---- cursors
    def _update_cursor(self) -> None:
        vp = self.view.viewport()
        if self._press_owner == "pan" or (self._space_down and self._press is None):
            shape = Qt.CursorShape.ClosedHandCursor if self._press_owner == "pan" \
                else Qt.CursorShape.OpenHandCursor
        elif self._press_owner == "landmark":
            shape = Qt.CursorShape.SizeAllCursor
        else:
            shape = self._tool.cursor
        vp.setCursor(QtGui.QCursor(shape))

    def _update_hover_cursor(self, cev: CanvasEvent) -> None:
        if self._space_down:
            return
        grab = (self._tool.wants_press(CanvasEvent(cev.pos, Qt.MouseButton.LeftButton,
                                                   cev.modifiers, cev.scale, cev.widget_pos))
                or (not self._tool.busy() and self._landmark_at(cev) is not None))
        shape = Qt.CursorShape.PointingHandCursor if grab else self._tool.cursor
        if self.view.viewport().cursor().shape() != shape:
            self.view.viewport().setCursor(QtGui.QCursor(shape))
