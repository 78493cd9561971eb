"""Brush and eraser: a stroke adds pixels to (or removes them from) the active region, one undo step."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from ...core.geometry import as_multipolygon
from ...core.region_edit import stroke_mask_geometry
from .. import style
from ..overlay import polyline_path
from .base import CanvasEvent, Qt, Tool
from .specs import MAX_BRUSH, MIN_BRUSH

if TYPE_CHECKING:  # pragma: no cover
    from ..canvas import ImageCanvas


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


def brush_step(size: float, larger: bool) -> float:
    return float(np.clip(size * (1.25 if larger else 0.8), MIN_BRUSH, MAX_BRUSH))
