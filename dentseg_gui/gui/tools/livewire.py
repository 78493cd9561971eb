"""Edge-following annotation: outline a region, or redraw the palatal boundary, in a few clicks.

Each click adds an anchor; between anchors the outline follows the strongest image
edges (``core.livewire``, intelligent scissors), previewed live from the last anchor
to the cursor. Shift+click makes the segment to that anchor straight (where the image
shows no edge: the PAB's apex-level cut, a faint surface). Backspace or a right-click
removes the last anchor, Esc cancels.

* **Live-wire outline** (L): double-click, Enter or a click on the first anchor
  closes it; the outline is added to the active region (one undo step).
* **Palatal live-wire** (W): click from the crest to the apex level along the palatal
  bone surface, Enter finishes; the PAB's palatal boundary is replaced by the path
  (``core.palatal_boundary.replace_palatal_boundary``), one undo step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6 import QtGui, QtWidgets

from ...core.geometry import as_multipolygon
from ...core.livewire import LiveWire
from ...core.palatal_boundary import extract_palatal_boundary, replace_palatal_boundary
from .. import style
from ..overlay import polyline_path
from .base import CanvasEvent, Qt, Tool
from .specs import CLICK_SLOP_PX, HIT_RADIUS_PX

if TYPE_CHECKING:  # pragma: no cover
    from ..canvas import ImageCanvas


class LiveWireTool(Tool):
    """Anchors joined by edge-following paths; ``palatal`` redraws the PAB's palatal boundary."""

    def __init__(self, canvas: "ImageCanvas", palatal: bool = False):
        super().__init__(canvas)
        self.palatal = palatal
        self.name = "palatal_wire" if palatal else "livewire"
        self.anchors: list[np.ndarray] = []
        self.straight: list[bool] = []
        self._wire: LiveWire | None = None
        self._wire_doc = None
        self._cursor: np.ndarray | None = None
        self._cursor_straight = False
        vb = canvas.layer
        colour = style.PALATAL_CURVE_COLOR if palatal else style.PREVIEW_COLOR
        self.path_item = QtWidgets.QGraphicsPathItem()
        self.path_item.setPen(style.cosmetic_pen(colour, 1.8))
        self.path_item.setZValue(40)
        self.live_item = QtWidgets.QGraphicsPathItem()
        self.live_item.setPen(style.cosmetic_pen(colour, 1.4, 0.85, Qt.PenStyle.DashLine))
        self.live_item.setZValue(40)
        self.dots = pg.ScatterPlotItem(size=7, symbol="o", pen=pg.mkPen("#000000", width=1),
                                       brush=pg.mkBrush(colour))
        self.dots.setZValue(41)
        self._items = (self.path_item, self.live_item, self.dots)
        for it in self._items:
            vb.addItem(it, ignoreBounds=True)
            it.setVisible(False)

    # ---- state
    def busy(self) -> bool:
        return bool(self.anchors)

    def activate(self) -> None:
        for it in self._items:
            it.setVisible(True)
        self._redraw()

    def deactivate(self) -> None:
        self.cancel()
        for it in self._items:
            it.setVisible(False)

    def document_changed(self) -> None:
        if self.doc is not self._wire_doc:
            self._wire, self._wire_doc = None, None
            self.cancel()

    def cancel(self) -> None:
        self.anchors, self.straight = [], []
        self._redraw()

    def wire(self) -> LiveWire | None:
        """The edge-path finder of the open image (made on first use; converts only what a path needs)."""
        doc = self.doc
        if doc is None:
            return None
        if self._wire is None or self._wire_doc is not doc:
            levels = self.canvas.levels() if hasattr(self.canvas, "levels") else None
            self._wire = LiveWire(doc.image.pixels, levels if levels and levels[1] > levels[0] else None)
            self._wire_doc = doc
        return self._wire

    # ---- drawing
    def _chain(self, with_cursor: bool) -> np.ndarray:
        wire = self.wire()
        if wire is None or not self.anchors:
            return np.zeros((0, 2))
        pts = list(self.anchors)
        flags = [False, *self.straight[1:]]
        return wire.chain(pts, closed=False, straight=flags) if len(pts) > 1 else np.array(pts)

    def _redraw(self) -> None:
        pts = np.array(self.anchors) if self.anchors else np.zeros((0, 2))
        self.dots.setData(pts[:, 0], pts[:, 1]) if len(pts) else self.dots.setData([])
        self.path_item.setPath(polyline_path(self._chain(False)) if len(pts) > 1 else QtGui.QPainterPath())
        self._redraw_live()

    def _redraw_live(self) -> None:
        if not self.anchors or self._cursor is None:
            self.live_item.setPath(QtGui.QPainterPath())
            return
        wire = self.wire()
        if wire is None:
            return
        a, b = self.anchors[-1], self._cursor
        seg = np.array([a, b]) if self._cursor_straight else wire.path(a, b)
        self.live_item.setPath(polyline_path(seg))

    # ---- events
    def press(self, ev: CanvasEvent) -> bool:
        return self.doc is not None and ev.button == Qt.MouseButton.LeftButton

    def release(self, ev: CanvasEvent, was_click: bool) -> None:
        if not was_click or self.doc is None:
            return
        if (not self.palatal and len(self.anchors) >= 3
                and ev.screen_dist(self.anchors[0][None])[0] <= HIT_RADIUS_PX):
            self.finish()
            return
        self.anchors.append(ev.pos.copy())
        self.straight.append(bool(ev.modifiers & Qt.KeyboardModifier.ShiftModifier))
        self._redraw()

    def double_click(self, ev: CanvasEvent) -> None:
        if not self.anchors or ev.screen_dist(self.anchors[-1][None])[0] > CLICK_SLOP_PX:
            self.anchors.append(ev.pos.copy())
            self.straight.append(bool(ev.modifiers & Qt.KeyboardModifier.ShiftModifier))
        self.finish()

    def right_click(self, ev: CanvasEvent) -> None:
        self._pop()

    def hover(self, ev: CanvasEvent) -> None:
        self._cursor = ev.pos.copy()
        self._cursor_straight = bool(ev.modifiers & Qt.KeyboardModifier.ShiftModifier)
        if self.anchors:
            pos, straight = self._cursor, self._cursor_straight
            self.canvas.throttle.submit(lambda: self._live(pos, straight))

    def _live(self, pos: np.ndarray, straight: bool) -> None:
        self._cursor, self._cursor_straight = pos, straight
        self._redraw_live()

    def key(self, ev: QtGui.QKeyEvent) -> bool:
        k = ev.key()
        if k in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.anchors:
            self.finish()
            return True
        if k == Qt.Key.Key_Escape and self.anchors:
            self.cancel()
            return True
        if k == Qt.Key.Key_Backspace and self.anchors:
            self._pop()
            return True
        return False

    def _pop(self) -> None:
        if self.anchors:
            self.anchors.pop()
            self.straight.pop()
            self._redraw()

    # ---- result
    def finish(self) -> str | None:
        """Apply the path (outline -> region, or the new palatal boundary); returns why not, or None."""
        doc, wire = self.doc, self.wire()
        anchors, straight = list(self.anchors), list(self.straight)
        self.cancel()
        if doc is None or wire is None:
            return "no case open"
        if self.palatal:
            return self._replace_palatal(doc, wire, anchors, straight)
        if len(anchors) < 3:
            return self._say("live-wire: click at least three points around the region")
        # the closing segment (last anchor -> first) is straight when the first click was Shift+click
        flags = [False, *straight[1:], straight[0]]
        region = wire.outline(anchors, straight=flags)
        if region.is_empty:
            return self._say("live-wire: the outline encloses no area")
        name = self.canvas.active_region()
        doc.set_region(name, as_multipolygon(doc.region(name).union(region)), f"Live-wire ({name})")
        return None

    def _replace_palatal(self, doc, wire: LiveWire, anchors, straight) -> str | None:
        if len(anchors) < 2:
            return self._say("palatal live-wire: click from the crest to the apex level, then Enter")
        pab = doc.region("PAB")
        old = extract_palatal_boundary(pab, doc.annotation.landmarks, doc.spacing) if not pab.is_empty else None
        if old is None:
            return self._say("palatal live-wire needs a PAB region and the CEJ and apex landmarks")
        new = wire.chain(anchors, closed=False, straight=[False, *straight[1:]])
        geom = replace_palatal_boundary(pab, old, new)
        if geom is None or geom.is_empty:
            return self._say("palatal live-wire: the path does not join the PAB's palatal boundary; "
                             "start near the crest and end near the apex level")
        doc.set_region("PAB", geom, "Palatal boundary (live-wire)")
        return None

    def _say(self, text: str) -> str:
        self.canvas.statusMessage.emit(text)
        return text
