"""Editing a region's polygons: brush strokes as regions, vertex moves, inserts and deletes, holes.

Pure geometry (numpy + shapely, no Qt): the canvas tools call these with image
pixel coordinates, and tests and scripts can use them without a window. A
region is a shapely ``MultiPolygon``; ``where`` / ``edge`` address one vertex as
(polygon, ring (0 = exterior), vertex index in the ring).
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

from .geometry import as_multipolygon, mask_to_geometry


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


def rings_of(geom: MultiPolygon) -> list[list[np.ndarray]]:
    return [[np.asarray(r.coords, float)[:-1, :2] for r in (p.exterior, *p.interiors)]
            for p in geom.geoms]


def from_rings(rings: list[list[np.ndarray]]) -> MultiPolygon:
    polys = []
    for rs in rings:
        if not rs or len(rs[0]) < 3:
            continue
        holes = [h for h in rs[1:] if len(h) >= 3]
        polys.append(Polygon(rs[0], holes))
    return as_multipolygon(shapely.union_all(polys) if len(polys) > 1 else
                           (polys[0] if polys else MultiPolygon()))


def move_vertex(geom: MultiPolygon, where: tuple[int, int, int], xy: np.ndarray) -> MultiPolygon:
    rings = rings_of(geom)
    pi, ri, vi = where
    r = rings[pi][ri].copy()
    r[vi] = xy
    rings[pi][ri] = r
    return from_rings(rings)


def insert_vertex(geom: MultiPolygon, edge: tuple[int, int, int], xy: np.ndarray) -> tuple[MultiPolygon, tuple[int, int, int]]:
    rings = rings_of(geom)
    pi, ri, vi = edge
    rings[pi][ri] = np.insert(rings[pi][ri], vi + 1, xy, axis=0)
    return from_rings(rings), (pi, ri, vi + 1)


def delete_vertex(geom: MultiPolygon, where: tuple[int, int, int]) -> MultiPolygon:
    """Remove one vertex; a ring left with fewer than 3 vertices disappears."""
    rings = rings_of(geom)
    pi, ri, vi = where
    r = np.delete(rings[pi][ri], vi, axis=0)
    if len(r) >= 3:
        rings[pi][ri] = r
    elif ri == 0:
        rings[pi] = []
    else:
        del rings[pi][ri]
    return from_rings(rings)


def fill_holes(geom: MultiPolygon) -> MultiPolygon:
    return as_multipolygon(shapely.union_all([Polygon(p.exterior) for p in geom.geoms])
                           if not geom.is_empty else geom)
