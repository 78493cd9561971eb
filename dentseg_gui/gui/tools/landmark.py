"""Placing and moving a landmark (CEJ labial, CEJ palatal, apex)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .base import CanvasEvent, Qt, Tool, new_drag_key
from .specs import HIT_RADIUS_PX

if TYPE_CHECKING:  # pragma: no cover
    from ..canvas import ImageCanvas


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
