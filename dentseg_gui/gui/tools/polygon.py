"""The polygon tool: draw a new polygon, or edit the active region's vertices and edges."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6 import QtGui, QtWidgets
from shapely.geometry import Polygon

from ...core.geometry import as_multipolygon
from ...core.region_edit import delete_vertex, insert_vertex, move_vertex
from .. import style
from ..overlay import polyline_path
from .base import CanvasEvent, Qt, Tool, VertexIndex, new_drag_key
from .specs import CLICK_SLOP_PX, HIT_RADIUS_PX

if TYPE_CHECKING:  # pragma: no cover
    from ..canvas import ImageCanvas


class PolygonTool(Tool):
    name = "polygon"

    def __init__(self, canvas: "ImageCanvas"):
        super().__init__(canvas)
        self.points: list[np.ndarray] = []
        self._cursor_pos: np.ndarray | None = None
        self._index: VertexIndex | None = None
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

    def _region_index(self) -> VertexIndex | None:
        doc = self.doc
        if doc is None:
            return None
        geom = doc.region(self.canvas.active_region())
        if self._index is None or self._index.geom is not geom:
            self._index = VertexIndex.build(geom)
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
