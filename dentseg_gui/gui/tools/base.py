"""What every tool shares: the image-coordinate event, the tool base class, hit-testing, throttling."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
from PySide6 import QtCore, QtGui
from shapely.geometry import MultiPolygon

from .specs import HIT_RADIUS_PX

if TYPE_CHECKING:  # pragma: no cover
    from ..canvas import ImageCanvas

Qt = QtCore.Qt


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


@dataclass
class VertexIndex:
    """Flat arrays of a region's ring vertices and edges for numpy hit-testing."""

    geom: MultiPolygon
    verts: np.ndarray      # N x 2
    where: np.ndarray      # N x 3: polygon, ring (0 = exterior), vertex index in ring
    seg_a: np.ndarray      # M x 2
    seg_b: np.ndarray
    seg_where: np.ndarray  # M x 3: polygon, ring, index of the edge's first vertex

    @classmethod
    def build(cls, geom: MultiPolygon) -> "VertexIndex":
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
