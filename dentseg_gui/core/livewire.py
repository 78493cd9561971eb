"""Edge-following paths between clicked points ("live-wire", intelligent scissors).

Between two anchor points the path follows the strongest image edges: OpenCV's
``IntelligentScissorsMB`` (Mortensen & Barrett) builds a map of cheapest paths
from the last anchor, and the path to any other pixel is read from it. An
outline is the chain of such paths through the anchors, closed back to the
first one; a boundary curve is the open chain.

The map is built on a window around the anchors (not the whole image), so a
4096×5120 radiograph costs the same as a 384×384 slice. Coordinates are image
pixels (x right, y down, pixel centres at integers). Qt-free.
"""

from __future__ import annotations

import cv2
import numpy as np
from shapely.geometry import MultiPolygon, Polygon

from .geometry import as_multipolygon

WINDOW_MARGIN = 48          # pixels around the two points that a path may use
MAX_WINDOW = 1024           # never build a map bigger than this (pixels per side)
SMOOTH_VERTICES = 2         # path points are averaged over this many neighbours on each side


def edge_image(pixels: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """The 8-bit image the edge features are computed on (robust window unless given)."""
    px = np.asarray(pixels, np.float32)
    if lo is None or hi is None:
        step = max(1, int(np.sqrt(px.size / 250_000)))
        lo, hi = (float(v) for v in np.percentile(px[::step, ::step], [0.5, 99.5]))
        if hi <= lo:
            hi = lo + 1.0
    return np.clip((px - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)


def window_levels(pixels: np.ndarray) -> tuple[float, float]:
    """The robust window (0.5 and 99.5 percentiles of a sample) used to make the 8-bit edge image."""
    px = np.asarray(pixels)
    step = max(1, int(np.sqrt(px.size / 250_000)))
    lo, hi = (float(v) for v in np.percentile(px[::step, ::step], [0.5, 99.5]))
    return lo, (hi if hi > lo else lo + 1.0)


class LiveWire:
    """Paths along image edges for one image.

    ``image`` is either an 8-bit image (``edge_image``) or the raw pixels with ``levels``: then
    only the window a path needs is converted, so a 4096x5120 radiograph costs nothing until
    the first path is asked for, and little after."""

    def __init__(self, image: np.ndarray, levels: tuple[float, float] | None = None):
        if np.ndim(image) != 2:
            raise ValueError("LiveWire needs a 2-D image")
        self.image = image
        self._levels = None if (levels is None and image.dtype == np.uint8) else (levels or window_levels(image))
        self._key = None          # (window, source) of the map built last
        self._tool = None
        self._window = (0, 0, 0, 0)

    def _crop8(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        crop = self.image[y0:y1, x0:x1]
        if self._levels is None:
            return np.ascontiguousarray(crop)
        return edge_image(crop, *self._levels)

    def _window_for(self, a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int]:
        h, w = self.image.shape
        x0 = int(np.floor(min(a[0], b[0]))) - WINDOW_MARGIN
        y0 = int(np.floor(min(a[1], b[1]))) - WINDOW_MARGIN
        x1 = int(np.ceil(max(a[0], b[0]))) + WINDOW_MARGIN
        y1 = int(np.ceil(max(a[1], b[1]))) + WINDOW_MARGIN
        # grow to a coarse grid so nearby targets reuse one map
        q = 64
        x0, y0 = max(0, (x0 // q) * q), max(0, (y0 // q) * q)
        x1, y1 = min(w, -(-x1 // q) * q), min(h, -(-y1 // q) * q)
        return x0, y0, max(x1, x0 + 2), max(y1, y0 + 2)

    def path(self, source, target) -> np.ndarray:
        """(N, 2) pixel points from ``source`` to ``target`` (both included) along edges.

        Falls back to the straight segment when the points are too far apart for one
        window (``MAX_WINDOW``) or outside the image.
        """
        a = np.asarray(source, float).reshape(2)
        b = np.asarray(target, float).reshape(2)
        h, w = self.image.shape
        ai = np.clip(np.round(a).astype(int), 0, [w - 1, h - 1])
        bi = np.clip(np.round(b).astype(int), 0, [w - 1, h - 1])
        if np.array_equal(ai, bi):
            return np.array([a, b])
        win = self._window_for(ai, bi)
        x0, y0, x1, y1 = win
        if x1 - x0 > MAX_WINDOW or y1 - y0 > MAX_WINDOW:
            return np.array([a, b])
        if self._key != (win, tuple(ai)):
            tool = cv2.segmentation.IntelligentScissorsMB()
            tool.setEdgeFeatureCannyParameters(16, 64)
            tool.setGradientMagnitudeMaxLimit(160)
            tool.applyImage(self._crop8(x0, y0, x1, y1))
            tool.buildMap((int(ai[0] - x0), int(ai[1] - y0)))
            self._tool, self._key = tool, (win, tuple(ai))
        c = self._tool.getContour((int(bi[0] - x0), int(bi[1] - y0)))
        pts = np.asarray(c, float).reshape(-1, 2) + [x0, y0]
        if len(pts) == 0:
            return np.array([a, b])
        if np.linalg.norm(pts[0] - ai) > np.linalg.norm(pts[-1] - ai):   # source first
            pts = pts[::-1]
        pts[0], pts[-1] = a, b
        return pts

    def chain(self, anchors, closed: bool, straight=None, smooth: int = SMOOTH_VERTICES) -> np.ndarray:
        """The path through every anchor in order (and back to the first when ``closed``).

        ``straight[k]`` True makes the segment that ends at anchor ``k`` (for a closed chain,
        index ``len(anchors)`` is the closing segment) a straight line: where no edge shows
        (the apex-level cut of the PAB, a faint surface) a straight line is what the user
        means. Path points are averaged over ``smooth`` neighbours on each side (texture
        makes a raw edge path zig-zag by a pixel); the anchors stay where they were clicked.
        """
        anchors = [np.asarray(p, float).reshape(2) for p in anchors]
        if len(anchors) < 2:
            return np.array(anchors).reshape(-1, 2)
        stops = anchors + ([anchors[0]] if closed else [])
        straight = list(straight or [])
        parts, pinned = [], []
        for k, (p, q) in enumerate(zip(stops[:-1], stops[1:]), start=1):
            if k < len(straight) and straight[k]:
                n = max(2, int(np.ceil(np.linalg.norm(q - p))) + 1)
                seg = p + np.linspace(0.0, 1.0, n)[:, None] * (q - p)
            else:
                seg = self.path(p, q)
            pinned.append(sum(len(x) - 1 for x in parts))
            parts.append(seg)
        pts = np.vstack([parts[0]] + [x[1:] for x in parts[1:]])
        if closed:
            pts = pts[:-1]
        else:
            pinned.append(len(pts) - 1)
        return _smoothed(pts, closed, smooth, pinned)

    def outline(self, anchors, straight=None) -> MultiPolygon:
        """The closed edge-following outline through ``anchors`` as a region (empty if < 3)."""
        if len(anchors) < 3:
            return MultiPolygon()
        ring = self.chain(anchors, closed=True, straight=straight)
        if len(ring) < 3:
            return MultiPolygon()
        poly = Polygon(ring)
        if not poly.is_valid:
            poly = poly.buffer(0)
        return as_multipolygon(poly)


def _smoothed(pts: np.ndarray, closed: bool, k: int, pinned: list[int]) -> np.ndarray:
    """Moving average of the path's points over ±``k`` neighbours; ``pinned`` points stay."""
    if k <= 0 or len(pts) < 2 * k + 2:
        return pts
    ker = np.ones(2 * k + 1) / (2 * k + 1)
    ext = np.vstack([pts[-k:], pts, pts[:k]]) if closed else np.pad(pts, ((k, k), (0, 0)), mode="edge")
    out = np.column_stack([np.convolve(ext[:, 0], ker, "valid"), np.convolve(ext[:, 1], ker, "valid")])
    idx = [i for i in pinned if 0 <= i < len(pts)]
    out[idx] = pts[idx]
    return out
