"""The canvas tools: what a press, drag, click or key does in each mode.

``TOOL_SPECS`` lists every tool and canvas action with its label, keyboard
shortcut, tooltip and short icon text, so the main window's menus, toolbar and
tooltips show the same shortcuts the canvas handles.

A tool receives ``CanvasEvent``s in image pixel coordinates from the canvas
(which owns the view, the pan/zoom and the landmark dragging) and changes the
document only through its methods, so every finished gesture is one undo
step: a polygon, a brush or eraser stroke, a vertex drag, a handle drag.
Hit-testing of vertices and handles is numpy on coordinate arrays; contours
are drawn as one path item each (no per-vertex ROI objects).

Painting: a stroke is the set of pixels whose centre lies within the brush
radius of the stroke polyline, rasterised on the stroke's bounding box only,
traced with ``core.geometry.mask_to_geometry`` and united with (brush) or
subtracted from (eraser) the active region with shapely.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
import pyqtgraph as pg
import shapely
from PySide6 import QtCore, QtGui, QtWidgets
from shapely.geometry import MultiPolygon, Polygon

from ..core.annotation import LANDMARKS
from ..core.geometry import as_multipolygon, mask_to_geometry
from . import style
from .overlay import polyline_path

if TYPE_CHECKING:  # pragma: no cover
    from .canvas import ImageCanvas

Qt = QtCore.Qt


@dataclass(frozen=True)
class ToolSpec:
    """A tool (``kind="tool"``, a mode) or an action (``kind="action"``, runs once)."""

    name: str
    label: str
    shortcut: str
    tooltip: str
    icon_text: str
    kind: str = "tool"


TOOL_SPECS: list[ToolSpec] = [
    ToolSpec("navigate", "Navigate", "N",
             "Pan with the left button, zoom with the wheel; drag any landmark", "Nav"),
    ToolSpec("polygon", "Polygon", "P",
             "Click vertices, double-click or Enter to close, Esc cancels, Backspace removes "
             "the last vertex. Edit the active region: drag a vertex, drag an edge (or "
             "Shift+click it) to insert one, right-click or Del deletes the vertex under the cursor",
             "Poly"),
    ToolSpec("brush", "Brush", "B", "Paint the active region; [ and ] change the size", "Brush"),
    ToolSpec("eraser", "Eraser", "E", "Erase from the active region; [ and ] change the size",
             "Erase"),
    ToolSpec("CEJ_labial", "CEJ labial", "1", "Place the labial cemento-enamel junction", "CEJ-L"),
    ToolSpec("CEJ_palatal", "CEJ palatal", "2", "Place the palatal cemento-enamel junction",
             "CEJ-P"),
    ToolSpec("apex", "Apex", "3", "Place the root apex", "Apex"),
    ToolSpec("palatal_edit", "Palatal boundary", "C",
             "Edit the palatal boundary of the PAB as a curve: drag a handle, the region and "
             "the measurements follow", "Palatal"),
    ToolSpec("brush_smaller", "Smaller brush", "[", "Brush and eraser 20 % smaller", "-",
             "action"),
    ToolSpec("brush_larger", "Larger brush", "]", "Brush and eraser 25 % larger", "+", "action"),
    ToolSpec("fill_holes", "Fill holes", "H", "Fill the holes of the active region", "Fill",
             "action"),
    ToolSpec("delete_region", "Delete region", "Shift+Del", "Delete the active region", "Del",
             "action"),
    ToolSpec("snap_to_edge", "Snap to edge", "S",
             "Move the palatal boundary curve onto the nearest bone edge in the image", "Snap",
             "action"),
    ToolSpec("fit", "Fit to window", "F", "Show the whole image", "Fit", "action"),
]
TOOL_NAMES = tuple(s.name for s in TOOL_SPECS if s.kind == "tool")
ACTION_NAMES = tuple(s.name for s in TOOL_SPECS if s.kind == "action")
SPECS_BY_NAME = {s.name: s for s in TOOL_SPECS}

HIT_RADIUS_PX = 8.0          # screen pixels for grabbing a vertex / handle / landmark
CLICK_SLOP_PX = 4.0          # a press that moves less than this is a click
MIN_BRUSH, MAX_BRUSH = 0.5, 500.0


@dataclass
class CanvasEvent:
    """A mouse event in image pixel coordinates (x right, y down, pixel centres at integers)."""

    pos: np.ndarray                       # (x, y) image pixels
    button: Qt.MouseButton
    modifiers: Qt.KeyboardModifier
    scale: float                          # screen pixels per image pixel
    widget_pos: QtCore.QPointF

    def screen_dist(self, pts: np.ndarray) -> np.ndarray:
        """Distance in screen pixels from the event to each point of ``pts`` (N x 2)."""
        pts = np.asarray(pts, float).reshape(-1, 2)
        return np.hypot(pts[:, 0] - self.pos[0], pts[:, 1] - self.pos[1]) * self.scale


_drag_ids = itertools.count(1)


def new_drag_key(kind: str) -> tuple[str, int]:
    """A fresh merge key: every push carrying it folds into one undo step."""
    return (kind, next(_drag_ids))


# --------------------------------------------------------------------------- geometry helpers


def stroke_mask_geometry(points: np.ndarray, radius: float, shape_hw: tuple[int, int]) -> MultiPolygon:
    """Pixels whose centre is within ``radius`` of the polyline ``points``, as a region.

    Rasterised on the stroke's bounding box only (a 4096x5120 image costs the
    same as a small one), clipped to the image.
    """
    pts = np.asarray(points, float).reshape(-1, 2)
    h, w = shape_hw
    r = float(radius)
    x0 = max(0, int(np.floor(pts[:, 0].min() - r)))
    y0 = max(0, int(np.floor(pts[:, 1].min() - r)))
    x1 = min(w - 1, int(np.ceil(pts[:, 0].max() + r)))
    y1 = min(h - 1, int(np.ceil(pts[:, 1].max() + r)))
    if x1 < x0 or y1 < y0:
        return MultiPolygon()
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), bool)
    segs = [(pts[0], pts[0])] if len(pts) == 1 else list(zip(pts[:-1], pts[1:]))
    r2 = r * r
    for a, b in segs:
        sx0 = max(x0, int(np.floor(min(a[0], b[0]) - r)))
        sx1 = min(x1, int(np.ceil(max(a[0], b[0]) + r)))
        sy0 = max(y0, int(np.floor(min(a[1], b[1]) - r)))
        sy1 = min(y1, int(np.ceil(max(a[1], b[1]) + r)))
        if sx1 < sx0 or sy1 < sy0:
            continue
        xs = np.arange(sx0, sx1 + 1, dtype=float)[None, :]
        ys = np.arange(sy0, sy1 + 1, dtype=float)[:, None]
        d = b - a
        dd = float(d @ d)
        if dd <= 1e-12:
            dist2 = (xs - a[0]) ** 2 + (ys - a[1]) ** 2
        else:
            t = np.clip(((xs - a[0]) * d[0] + (ys - a[1]) * d[1]) / dd, 0.0, 1.0)
            dist2 = (xs - a[0] - t * d[0]) ** 2 + (ys - a[1] - t * d[1]) ** 2
        mask[sy0 - y0:sy1 - y0 + 1, sx0 - x0:sx1 - x0 + 1] |= dist2 <= r2
    geom = mask_to_geometry(mask)
    return as_multipolygon(shapely.transform(geom, lambda c: c + np.array([x0, y0], float)))


@dataclass
class _VertexIndex:
    """Flat arrays of a region's ring vertices and edges for numpy hit-testing."""

    geom: MultiPolygon
    verts: np.ndarray      # N x 2
    where: np.ndarray      # N x 3: polygon, ring (0 = exterior), vertex index in ring
    seg_a: np.ndarray      # M x 2
    seg_b: np.ndarray
    seg_where: np.ndarray  # M x 3: polygon, ring, index of the edge's first vertex

    @classmethod
    def build(cls, geom: MultiPolygon) -> "_VertexIndex":
        verts, where, sa, sb, sw = [], [], [], [], []
        for pi, poly in enumerate(geom.geoms):
            for ri, ring in enumerate((poly.exterior, *poly.interiors)):
                c = np.asarray(ring.coords, float)[:, :2]
                n = len(c) - 1
                if n < 3:
                    continue
                verts.append(c[:-1])
                where.append(np.column_stack([np.full(n, pi), np.full(n, ri), np.arange(n)]))
                sa.append(c[:-1])
                sb.append(c[1:])
                sw.append(np.column_stack([np.full(n, pi), np.full(n, ri), np.arange(n)]))
        if not verts:
            z2, z3 = np.zeros((0, 2)), np.zeros((0, 3), int)
            return cls(geom, z2, z3, z2, z2, z3)
        return cls(geom, np.vstack(verts), np.vstack(where), np.vstack(sa), np.vstack(sb),
                   np.vstack(sw))

    def nearest_vertex(self, ev: CanvasEvent) -> tuple[int, int, int] | None:
        if len(self.verts) == 0:
            return None
        d = ev.screen_dist(self.verts)
        i = int(np.argmin(d))
        return tuple(int(v) for v in self.where[i]) if d[i] <= HIT_RADIUS_PX else None

    def nearest_edge(self, ev: CanvasEvent) -> tuple[tuple[int, int, int], np.ndarray] | None:
        if len(self.seg_a) == 0:
            return None
        a, b = self.seg_a, self.seg_b
        d = b - a
        dd = np.maximum((d * d).sum(1), 1e-12)
        t = np.clip(((ev.pos - a) * d).sum(1) / dd, 0.0, 1.0)
        proj = a + t[:, None] * d
        dist = np.hypot(*(proj - ev.pos).T) * ev.scale
        i = int(np.argmin(dist))
        if dist[i] > HIT_RADIUS_PX:
            return None
        return tuple(int(v) for v in self.seg_where[i]), proj[i]


def _rings(geom: MultiPolygon) -> list[list[np.ndarray]]:
    return [[np.asarray(r.coords, float)[:-1, :2] for r in (p.exterior, *p.interiors)]
            for p in geom.geoms]


def _from_rings(rings: list[list[np.ndarray]]) -> MultiPolygon:
    polys = []
    for rs in rings:
        if not rs or len(rs[0]) < 3:
            continue
        holes = [h for h in rs[1:] if len(h) >= 3]
        polys.append(Polygon(rs[0], holes))
    return as_multipolygon(shapely.union_all(polys) if len(polys) > 1 else
                           (polys[0] if polys else MultiPolygon()))


def move_vertex(geom: MultiPolygon, where: tuple[int, int, int], xy: np.ndarray) -> MultiPolygon:
    rings = _rings(geom)
    pi, ri, vi = where
    r = rings[pi][ri].copy()
    r[vi] = xy
    rings[pi][ri] = r
    return _from_rings(rings)


def insert_vertex(geom: MultiPolygon, edge: tuple[int, int, int], xy: np.ndarray) -> tuple[MultiPolygon, tuple[int, int, int]]:
    rings = _rings(geom)
    pi, ri, vi = edge
    rings[pi][ri] = np.insert(rings[pi][ri], vi + 1, xy, axis=0)
    return _from_rings(rings), (pi, ri, vi + 1)


def delete_vertex(geom: MultiPolygon, where: tuple[int, int, int]) -> MultiPolygon:
    """Remove one vertex; a ring left with fewer than 3 vertices disappears."""
    rings = _rings(geom)
    pi, ri, vi = where
    r = np.delete(rings[pi][ri], vi, axis=0)
    if len(r) >= 3:
        rings[pi][ri] = r
    elif ri == 0:
        rings[pi] = []
    else:
        del rings[pi][ri]
    return _from_rings(rings)


def fill_holes(geom: MultiPolygon) -> MultiPolygon:
    return as_multipolygon(shapely.union_all([Polygon(p.exterior) for p in geom.geoms])
                           if not geom.is_empty else geom)


# --------------------------------------------------------------------------- throttle


class Throttle(QtCore.QObject):
    """Run the latest submitted call at most every ``interval_ms`` (leading + trailing edge).

    Live edits during a drag go through this, so the region and measurements
    update at ~30 Hz however fast the mouse events come; ``flush`` runs the
    pending call at once (on release), so the final state is always applied.
    """

    def __init__(self, interval_ms: int = 33, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._on_timeout)
        self._pending: Callable[[], None] | None = None

    def submit(self, fn: Callable[[], None]) -> None:
        if self._timer.isActive():
            self._pending = fn
        else:
            fn()
            self._timer.start()

    def _on_timeout(self) -> None:
        fn, self._pending = self._pending, None
        if fn is not None:
            fn()
            self._timer.start()

    def flush(self) -> None:
        fn, self._pending = self._pending, None
        if fn is not None:
            fn()

    def cancel(self) -> None:
        self._pending = None
        self._timer.stop()


# --------------------------------------------------------------------------- tools


class Tool:
    """Base class: a tool gets image-coordinate events and edits the document."""

    name = ""
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, canvas: "ImageCanvas"):
        self.canvas = canvas

    # lifecycle
    def activate(self) -> None: ...
    def deactivate(self) -> None: ...
    def document_changed(self) -> None:
        """The document was replaced or edited from outside: drop cached state."""

    # events; return True when handled
    def wants_press(self, ev: CanvasEvent) -> bool:
        """True if this press grabs something of the tool's (before landmark dragging)."""
        return False

    def press(self, ev: CanvasEvent) -> bool:
        return False

    def move(self, ev: CanvasEvent) -> None: ...
    def release(self, ev: CanvasEvent, was_click: bool) -> None: ...
    def double_click(self, ev: CanvasEvent) -> None: ...
    def right_click(self, ev: CanvasEvent) -> None: ...
    def hover(self, ev: CanvasEvent) -> None: ...

    def key(self, ev: QtGui.QKeyEvent) -> bool:
        return False

    def busy(self) -> bool:
        """True while a gesture is half done (e.g. a polygon being drawn)."""
        return False

    # helpers
    @property
    def doc(self):
        return self.canvas.document()


class NavigateTool(Tool):
    name = "navigate"
    cursor = Qt.CursorShape.OpenHandCursor


class LandmarkTool(Tool):
    """Click places the landmark (press-and-drag places and adjusts it: one step)."""

    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, canvas: "ImageCanvas", landmark: str):
        super().__init__(canvas)
        self.name = landmark
        self._key = None

    def press(self, ev: CanvasEvent) -> bool:
        if self.doc is None or ev.button != Qt.MouseButton.LeftButton:
            return False
        self._key = new_drag_key("place")
        self.doc.set_landmark(self.name, tuple(ev.pos), self._place_text(), merge_key=self._key)
        return True

    def _place_text(self) -> str:
        return f"Place {self.name}" if self.doc.landmark(self.name) is None else f"Move {self.name}"

    def move(self, ev: CanvasEvent) -> None:
        if self._key is not None:
            key, pos = self._key, tuple(ev.pos)
            self.canvas.throttle.submit(lambda: self.doc.set_landmark(self.name, pos, merge_key=key))

    def release(self, ev: CanvasEvent, was_click: bool) -> None:
        self.canvas.throttle.flush()
        self._key = None

    def right_click(self, ev: CanvasEvent) -> None:
        p = self.doc.landmark(self.name) if self.doc else None
        if p is not None and ev.screen_dist(np.array([p]))[0] <= HIT_RADIUS_PX:
            self.doc.set_landmark(self.name, None)


class PolygonTool(Tool):
    name = "polygon"

    def __init__(self, canvas: "ImageCanvas"):
        super().__init__(canvas)
        self.points: list[np.ndarray] = []
        self._cursor_pos: np.ndarray | None = None
        self._index: _VertexIndex | None = None
        self._press: CanvasEvent | None = None
        self._press_vertex = None
        self._press_edge = None
        self._drag = None            # (start geom, vertex where, merge key)
        self._hover_vertex = None
        vb = canvas.viewbox
        self.line = QtWidgets.QGraphicsPathItem()
        self.line.setPen(style.cosmetic_pen(style.PREVIEW_COLOR, 1.6))
        self.line.setZValue(40)
        self.rubber = QtWidgets.QGraphicsPathItem()
        self.rubber.setPen(style.cosmetic_pen(style.PREVIEW_COLOR, 1.2, 0.8, Qt.PenStyle.DashLine))
        self.rubber.setZValue(40)
        self.dots = pg.ScatterPlotItem(size=7, symbol="s", pen=pg.mkPen("#000000", width=1),
                                       brush=pg.mkBrush(style.PREVIEW_COLOR))
        self.dots.setZValue(41)
        self.hot = pg.ScatterPlotItem(size=11, symbol="s", pen=pg.mkPen("#000000", width=1.2),
                                      brush=pg.mkBrush("#ffffff"))
        self.hot.setZValue(42)
        for it in (self.line, self.rubber, self.dots, self.hot):
            vb.addItem(it, ignoreBounds=True)
            it.setVisible(False)

    # ---- state
    def busy(self) -> bool:
        return bool(self.points)

    def activate(self) -> None:
        for it in (self.line, self.rubber, self.dots, self.hot):
            it.setVisible(True)
        self._refresh_preview()

    def deactivate(self) -> None:
        self.cancel()
        for it in (self.line, self.rubber, self.dots, self.hot):
            it.setVisible(False)

    def document_changed(self) -> None:
        self._index = None
        self._hover_vertex = None
        self.hot.setData([])

    def cancel(self) -> None:
        self.points = []
        self._refresh_preview()

    def _region_index(self) -> _VertexIndex | None:
        doc = self.doc
        if doc is None:
            return None
        geom = doc.region(self.canvas.active_region())
        if self._index is None or self._index.geom is not geom:
            self._index = _VertexIndex.build(geom)
        return self._index

    def _refresh_preview(self) -> None:
        pts = np.array(self.points) if self.points else np.zeros((0, 2))
        self.line.setPath(polyline_path(pts))
        self.dots.setData(pts[:, 0], pts[:, 1]) if len(pts) else self.dots.setData([])
        if len(pts) and self._cursor_pos is not None:
            self.rubber.setPath(polyline_path(np.array([pts[-1], self._cursor_pos, pts[0]])
                                              if len(pts) >= 2 else np.array([pts[-1], self._cursor_pos])))
        else:
            self.rubber.setPath(QtGui.QPainterPath())

    # ---- events
    def press(self, ev: CanvasEvent) -> bool:
        if self.doc is None or ev.button != Qt.MouseButton.LeftButton:
            return False
        self._press = ev
        self._press_vertex = self._press_edge = None
        if not self.points:
            idx = self._region_index()
            if idx is not None:
                self._press_vertex = idx.nearest_vertex(ev)
                if self._press_vertex is None:
                    self._press_edge = idx.nearest_edge(ev)
        return True

    def move(self, ev: CanvasEvent) -> None:
        if self._press is None:
            return
        name = self.canvas.active_region()
        if self._drag is None:
            if float(ev.screen_dist(self._press.pos[None])[0]) < CLICK_SLOP_PX:
                return
            geom = self.doc.region(name)
            key = new_drag_key("vertex")
            if self._press_vertex is not None:
                self._drag = (geom, self._press_vertex, key, f"Move vertex ({name})")
            elif self._press_edge is not None:
                edge, proj = self._press_edge
                geom, where = insert_vertex(geom, edge, proj)
                self._drag = (geom, where, key, f"Insert vertex ({name})")
            else:
                return
        geom, where, key, text = self._drag
        pos = ev.pos.copy()
        self.canvas.throttle.submit(
            lambda: self.doc.set_region(name, move_vertex(geom, where, pos), text, merge_key=key))

    def release(self, ev: CanvasEvent, was_click: bool) -> None:
        press, self._press = self._press, None
        if self._drag is not None:
            self.canvas.throttle.flush()
            self._drag = None
            self._index = None
            return
        if press is None or not was_click:
            return
        name = self.canvas.active_region()
        if not self.points and press.modifiers & Qt.KeyboardModifier.ShiftModifier and self._press_edge:
            edge, proj = self._press_edge
            geom, _ = insert_vertex(self.doc.region(name), edge, proj)
            self.doc.set_region(name, geom, f"Insert vertex ({name})")
            return
        if len(self.points) >= 3 and ev.screen_dist(self.points[0][None])[0] <= HIT_RADIUS_PX:
            self.close_polygon()
            return
        self.points.append(ev.pos.copy())
        self._refresh_preview()

    def double_click(self, ev: CanvasEvent) -> None:
        # Qt sends press, release, double-click, release: the first click already added
        # this vertex. Synthetic double-clicks may come alone, so add it if it is missing.
        if not self.points or ev.screen_dist(self.points[-1][None])[0] > CLICK_SLOP_PX:
            self.points.append(ev.pos.copy())
        if len(self.points) >= 3:
            self.close_polygon()
        else:
            self._refresh_preview()

    def right_click(self, ev: CanvasEvent) -> None:
        if self.points:
            self.points.pop()
            self._refresh_preview()
            return
        self._delete_vertex_at(ev)

    def hover(self, ev: CanvasEvent) -> None:
        self._cursor_pos = ev.pos.copy()
        if self.points:
            self._refresh_preview()
            self.hot.setData([])
            return
        idx = self._region_index()
        self._hover_vertex = None
        if idx is None:
            return
        v = idx.nearest_vertex(ev)
        if v is not None:
            self._hover_vertex = v
            p = idx.verts[np.flatnonzero((idx.where == v).all(1))[0]]
            self.hot.setData([p[0]], [p[1]], symbol="s", size=11)
            return
        e = idx.nearest_edge(ev)
        if e is not None:
            self.hot.setData([e[1][0]], [e[1][1]], symbol="o", size=9)
        else:
            self.hot.setData([])

    def key(self, ev: QtGui.QKeyEvent) -> bool:
        k = ev.key()
        if k in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and len(self.points) >= 3:
            self.close_polygon()
            return True
        if k == Qt.Key.Key_Escape and self.points:
            self.cancel()
            return True
        if k == Qt.Key.Key_Backspace and self.points:
            self.points.pop()
            self._refresh_preview()
            return True
        if k in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and not self.points \
                and not ev.modifiers() & Qt.KeyboardModifier.ShiftModifier and self._hover_vertex:
            name = self.canvas.active_region()
            self.doc.set_region(name, delete_vertex(self.doc.region(name), self._hover_vertex),
                                f"Delete vertex ({name})")
            self._hover_vertex = None
            self.hot.setData([])
            return True
        return False

    def _delete_vertex_at(self, ev: CanvasEvent) -> None:
        idx = self._region_index()
        v = idx.nearest_vertex(ev) if idx is not None else None
        if v is not None:
            name = self.canvas.active_region()
            self.doc.set_region(name, delete_vertex(self.doc.region(name), v),
                                f"Delete vertex ({name})")
            self.hot.setData([])

    def close_polygon(self) -> None:
        pts = np.array(self.points)
        self.points = []
        self._refresh_preview()
        if len(pts) < 3 or self.doc is None:
            return
        poly = as_multipolygon(Polygon(pts))
        if poly.is_empty:
            return
        name = self.canvas.active_region()
        self.doc.set_region(name, as_multipolygon(self.doc.region(name).union(poly)),
                            f"Polygon ({name})")


class BrushTool(Tool):
    """Brush (adds to the active region) or eraser (subtracts from it); a stroke is one step."""

    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, canvas: "ImageCanvas", erase: bool):
        super().__init__(canvas)
        self.erase = erase
        self.name = "eraser" if erase else "brush"
        self.points: list[np.ndarray] = []
        self.stroke = QtWidgets.QGraphicsPathItem()
        self.stroke.setZValue(39)
        self.ring = QtWidgets.QGraphicsEllipseItem()
        self.ring.setPen(style.cosmetic_pen(style.ERASER_COLOR if erase else style.PREVIEW_COLOR,
                                            1.3, 0.9))
        self.ring.setZValue(45)
        for it in (self.stroke, self.ring):
            canvas.viewbox.addItem(it, ignoreBounds=True)
            it.setVisible(False)

    def activate(self) -> None:
        self.ring.setVisible(True)

    def deactivate(self) -> None:
        self.points = []
        self.stroke.setVisible(False)
        self.ring.setVisible(False)

    def _stroke_pen(self) -> QtGui.QPen:
        color = style.ERASER_COLOR if self.erase else \
            self.canvas.region_style(self.canvas.active_region()).color
        pen = QtGui.QPen(style.qcolor(color, 0.45))
        pen.setWidthF(2.0 * self.canvas.brush_size())   # image pixels: the true footprint
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        return pen

    def _draw_stroke(self) -> None:
        pts = np.array(self.points)
        path = polyline_path(pts) if len(pts) > 1 else QtGui.QPainterPath()
        if len(pts) == 1:
            path.moveTo(*pts[0])
            path.lineTo(pts[0][0] + 1e-3, pts[0][1])
        self.stroke.setPath(path)

    def press(self, ev: CanvasEvent) -> bool:
        if self.doc is None or ev.button != Qt.MouseButton.LeftButton:
            return False
        self.points = [ev.pos.copy()]
        self.stroke.setPen(self._stroke_pen())
        self.stroke.setVisible(True)
        self._draw_stroke()
        return True

    def move(self, ev: CanvasEvent) -> None:
        if self.points:
            self.points.append(ev.pos.copy())
            self._draw_stroke()
        self.hover(ev)

    def release(self, ev: CanvasEvent, was_click: bool) -> None:
        if not self.points:
            return
        pts = np.array(self.points)
        self.points = []
        self.stroke.setVisible(False)
        doc = self.doc
        name = self.canvas.active_region()
        stroke = stroke_mask_geometry(pts, self.canvas.brush_size(), doc.image.pixels.shape)
        if stroke.is_empty:
            return
        old = doc.region(name)
        if self.erase:
            if old.is_empty:
                return
            new = as_multipolygon(old.difference(stroke))
            doc.set_region(name, new, f"Erase ({name})")
        else:
            new = as_multipolygon(old.union(stroke)) if not old.is_empty else stroke
            doc.set_region(name, new, f"Brush stroke ({name})")

    def hover(self, ev: CanvasEvent) -> None:
        r = self.canvas.brush_size()
        self.ring.setRect(QtCore.QRectF(ev.pos[0] - r, ev.pos[1] - r, 2 * r, 2 * r))


class PalatalEditTool(Tool):
    """The palatal boundary of the PAB as a curve with handles.

    Dragging handle k moves the curve between handles k-1 and k+1 with a
    smooth (cosine) weight that is 1 at the handle and 0 at its neighbours, so
    the rest of the boundary keeps its detail; the PAB region is rebuilt with
    ``core.palatal_boundary.replace_palatal_boundary`` from the state at the
    start of the drag on every throttled move (live measurements), and the
    whole drag is one undo step.
    """

    name = "palatal_edit"
    cursor = Qt.CursorShape.ArrowCursor
    MIN_HANDLES, MAX_HANDLES, HANDLE_SPACING_PX = 8, 15, 25.0

    def __init__(self, canvas: "ImageCanvas"):
        super().__init__(canvas)
        self.curve: np.ndarray | None = None      # dense curve, crest -> apex
        self.handles: np.ndarray | None = None    # K x 2, on the curve
        self.handle_s: np.ndarray | None = None   # arc length of each handle along the curve
        self._committed = None                    # the PAB geometry we made (skip re-extracting)
        self._drag = None
        self.reason = ""
        self.curve_item = QtWidgets.QGraphicsPathItem()
        self.curve_item.setPen(style.cosmetic_pen(style.PALATAL_CURVE_COLOR, 2.6))
        self.curve_item.setZValue(35)
        self.handle_item = pg.ScatterPlotItem(size=12, symbol="o",
                                              pen=pg.mkPen(style.PALATAL_CURVE_COLOR, width=2.2),
                                              brush=pg.mkBrush(style.HANDLE_FILL))
        self.handle_item.setZValue(36)
        for it in (self.curve_item, self.handle_item):
            canvas.viewbox.addItem(it, ignoreBounds=True)
            it.setVisible(False)

    def activate(self) -> None:
        self.rebuild()
        self._show(True)

    def deactivate(self) -> None:
        self._drag = None
        self._show(False)

    def _show(self, on: bool) -> None:
        on = on and self.canvas.overlay_visible("palatal_curve")
        self.curve_item.setVisible(on)
        self.handle_item.setVisible(on)

    def document_changed(self) -> None:
        if self._drag is not None:
            return
        doc = self.doc
        if doc is not None and self._committed is not None and doc.region("PAB") is self._committed:
            return
        if self.canvas.current_tool() == self.name:
            self.rebuild()
        else:
            self._stale = True       # rebuilt when the tool is next used

    def _ensure_fresh(self) -> None:
        if getattr(self, "_stale", True) or self.curve is None:
            self.rebuild()

    def rebuild(self) -> None:
        """Extract the palatal curve from the current PAB and place evenly spaced handles."""
        from ..core.palatal_boundary import extract_palatal_boundary

        self.curve = self.handles = self.handle_s = None
        self._committed = None
        self._stale = False
        doc = self.doc
        self.reason = ""
        if doc is None:
            self.reason = "no case open"
        elif doc.region("PAB").is_empty:
            self.reason = "draw or predict the PAB first"
        else:
            line = extract_palatal_boundary(doc.region("PAB"), doc.annotation.landmarks, doc.spacing)
            if line is None:
                self.reason = ("place CEJ labial, CEJ palatal and apex and set the pixel spacing: "
                               "they define which side is palatal")
            else:
                self._set_curve(np.asarray(line.coords, float)[:, :2], None)
                self._committed = doc.region("PAB")
        self._redraw()

    def _set_curve(self, curve: np.ndarray, handles_s: np.ndarray | None) -> None:
        from ..core.palatal_boundary import arc_length

        self.curve = curve
        s = arc_length(curve)
        if handles_s is None:
            n = int(np.clip(round(s[-1] / self.HANDLE_SPACING_PX) + 1, self.MIN_HANDLES,
                            self.MAX_HANDLES))
            handles_s = np.linspace(0.0, s[-1], n)
        self.handle_s = handles_s
        self._curve_s = s
        self.handles = np.stack([np.interp(handles_s, s, curve[:, 0]),
                                 np.interp(handles_s, s, curve[:, 1])], axis=1)

    def _redraw(self) -> None:
        if self.curve is None:
            self.curve_item.setPath(QtGui.QPainterPath())
            self.handle_item.setData([])
            return
        self.curve_item.setPath(polyline_path(self.curve))
        self.handle_item.setData(self.handles[:, 0], self.handles[:, 1])

    def _nearest_handle(self, ev: CanvasEvent) -> int | None:
        if self.handles is None or not self.curve_item.isVisible():
            return None
        d = ev.screen_dist(self.handles)
        i = int(np.argmin(d))
        return i if d[i] <= HIT_RADIUS_PX + 2 else None

    def wants_press(self, ev: CanvasEvent) -> bool:
        return ev.button == Qt.MouseButton.LeftButton and self._nearest_handle(ev) is not None

    def deformed_curve(self, k: int, delta: np.ndarray) -> np.ndarray:
        """The curve with handle ``k`` moved by ``delta``, smooth falloff to its neighbours."""
        s, hs = self._curve_s, self.handle_s
        lo = hs[k - 1] if k > 0 else hs[k]
        hi = hs[k + 1] if k < len(hs) - 1 else hs[k]
        w = np.zeros_like(s)
        if k > 0:
            m = (s >= lo) & (s <= hs[k])
            w[m] = 0.5 - 0.5 * np.cos(np.pi * (s[m] - lo) / max(hs[k] - lo, 1e-9))
        if k < len(hs) - 1:
            m = (s >= hs[k]) & (s <= hi)
            w[m] = 0.5 + 0.5 * np.cos(np.pi * (s[m] - hs[k]) / max(hi - hs[k], 1e-9))
        w[np.isclose(s, hs[k])] = 1.0
        return self.curve + w[:, None] * np.asarray(delta, float)[None, :]

    def press(self, ev: CanvasEvent) -> bool:
        k = self._nearest_handle(ev)
        if k is None:
            if self.curve is None and self.reason:
                self.canvas.statusMessage.emit(f"Palatal boundary: {self.reason}")
            return False
        self._drag = (k, ev.pos.copy(), self.doc.region("PAB"), self.curve.copy(),
                      self.handles.copy(), new_drag_key("palatal"))
        return True

    def move(self, ev: CanvasEvent) -> None:
        if self._drag is None:
            return
        from ..core.palatal_boundary import replace_palatal_boundary

        k, start, pab0, curve0, handles0, key = self._drag
        delta = ev.pos - start
        new_curve = self.deformed_curve(k, delta)
        handles = handles0.copy()
        handles[k] = handles0[k] + delta
        # the curve follows on every mouse event; region + measurements at <= 30 Hz
        self.curve_item.setPath(polyline_path(new_curve))
        self.handle_item.setData(handles[:, 0], handles[:, 1])
        self._pending = (new_curve, handles)

        def commit() -> None:
            geom = replace_palatal_boundary(pab0, curve0, new_curve)
            self.doc.set_region("PAB", geom, "Palatal boundary edit", merge_key=key)
            self._committed = self.doc.region("PAB")

        self.canvas.throttle.submit(commit)

    def release(self, ev: CanvasEvent, was_click: bool) -> None:
        if self._drag is None:
            return
        self.canvas.throttle.flush()
        pending = getattr(self, "_pending", None)
        self._drag = None
        self._pending = None
        if pending is not None:
            new_curve, handles = pending
            from ..core.palatal_boundary import arc_length
            self.curve = new_curve
            self._curve_s = arc_length(new_curve)
            # handles stay where the user put them; their arc positions follow the new curve
            self.handles = handles
            self.handle_s = self._arc_positions(handles)
        self._redraw()

    def _arc_positions(self, pts: np.ndarray) -> np.ndarray:
        s = self._curve_s
        d = np.hypot(self.curve[None, :, 0] - pts[:, None, 0], self.curve[None, :, 1] - pts[:, None, 1])
        hs = s[np.argmin(d, axis=1)]
        return np.maximum.accumulate(hs)

    # ---- snap to edge
    def snap_to_edge(self) -> str | None:
        """Run boundary compensation's edge snap on the curve; returns an error message or None."""
        try:
            from ..model.compensation import snap_curve_to_edge
        except Exception as exc:  # optional module; the action is disabled with a tooltip
            return f"snap to edge is not available ({exc})"
        from ..core.palatal_boundary import replace_palatal_boundary

        self._ensure_fresh()
        if self.curve is None:
            return f"palatal boundary: {self.reason}"
        doc = self.doc
        snapped = np.asarray(snap_curve_to_edge(doc.image.normalized(), self.curve,
                                                doc.annotation.landmarks, doc.spacing), float)
        if np.allclose(snapped, self.curve):
            return "snap to edge: no clear bone edge near the curve; nothing changed"
        geom = replace_palatal_boundary(doc.region("PAB"), self.curve, snapped)
        doc.set_region("PAB", geom, "Snap palatal boundary to edge")
        self._committed = doc.region("PAB")
        self._set_curve(snapped, None)
        self._redraw()
        return None


def make_tools(canvas: "ImageCanvas") -> dict[str, Tool]:
    tools: dict[str, Tool] = {
        "navigate": NavigateTool(canvas),
        "polygon": PolygonTool(canvas),
        "brush": BrushTool(canvas, erase=False),
        "eraser": BrushTool(canvas, erase=True),
        "palatal_edit": PalatalEditTool(canvas),
    }
    for name in LANDMARKS:
        tools[name] = LandmarkTool(canvas, name)
    assert set(tools) == set(TOOL_NAMES)
    return tools


def brush_step(size: float, larger: bool) -> float:
    return float(np.clip(size * (1.25 if larger else 0.8), MIN_BRUSH, MAX_BRUSH))
