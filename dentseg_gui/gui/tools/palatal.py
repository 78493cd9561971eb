"""The palatal boundary of the PAB as an editable curve with handles, and snap to edge."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6 import QtGui, QtWidgets

from ...core.palatal_boundary import arc_length, extract_palatal_boundary, replace_palatal_boundary
from .. import style
from ..overlay import polyline_path
from .base import CanvasEvent, Qt, Tool, new_drag_key
from .specs import HIT_RADIUS_PX

if TYPE_CHECKING:  # pragma: no cover
    from ..canvas import ImageCanvas


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
            from ...model.compensation import snap_curve_to_edge
        except Exception as exc:  # optional module; the action is disabled with a tooltip
            return f"snap to edge is not available ({exc})"

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
