"""Region geometry: masks <-> polygons, GeoJSON, pixel <-> millimetre.

Pixel convention (DESIGN.md): the centre of pixel (row i, column j) is at
(x=j, y=i); a pixel covers the square [j-0.5, j+0.5] x [i-0.5, i+0.5].

* ``mask_to_geometry`` traces the pixel edges exactly, so the polygon's area
  equals the pixel count and ``geometry_to_mask`` (pixel-centre-inside rule)
  gives the same mask back.
* ``probability_to_geometry`` contours a soft map on a finer grid so a
  predicted boundary is placed to a fraction of a pixel.
* Every region is held as a shapely ``MultiPolygon`` (possibly empty).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry


EMPTY = MultiPolygon()


def as_multipolygon(geom: BaseGeometry | None) -> MultiPolygon:
    """Normalise any areal geometry to a valid MultiPolygon (lines and points dropped)."""
    if geom is None or geom.is_empty:
        return MultiPolygon()
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    polys: list[Polygon] = []
    for part in getattr(geom, "geoms", [geom]):
        if isinstance(part, Polygon):
            if not part.is_empty and part.area > 0:
                polys.append(part)
        elif isinstance(part, MultiPolygon):
            polys.extend(p for p in part.geoms if p.area > 0)
        elif hasattr(part, "geoms"):
            sub = as_multipolygon(part)
            polys.extend(sub.geoms)
    return MultiPolygon(polys)


def largest_polygon(region: BaseGeometry | None) -> Polygon | None:
    """The biggest part of a region (the PAB is one piece of bone; specks are noise)."""
    mp = as_multipolygon(region)
    if mp.is_empty:
        return None
    return max(mp.geoms, key=lambda p: p.area)


# --------------------------------------------------------------------------- masks


def mask_to_geometry(mask: np.ndarray, scale: float = 1.0) -> MultiPolygon:
    """Exact polygon outline of a boolean mask along pixel edges.

    ``scale`` > 1 means the mask lives on a grid ``scale`` times finer than the
    image (sub-pixel contouring); coordinates are mapped back to image pixels.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError("mask must be 2-D")
    if not mask.any():
        return MultiPolygon()
    rows_any = np.flatnonzero(mask.any(axis=1))
    boxes = []
    padded = np.zeros((mask.shape[1] + 2,), dtype=np.int8)
    for i in rows_any:
        padded[1:-1] = mask[i]
        d = np.diff(padded)
        starts = np.flatnonzero(d == 1)
        ends = np.flatnonzero(d == -1)
        for s, e in zip(starts, ends):
            boxes.append((s - 0.5, i - 0.5, e - 0.5, i + 0.5))
    b = np.asarray(boxes, dtype=float)
    polys = shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3])
    merged = shapely.union_all(polys)
    merged = shapely.simplify(merged, 0.0)  # drop collinear vertices, keep exactness
    if scale != 1.0:
        # fine-grid pixel centre u maps to image x = (u + 0.5) / scale - 0.5
        merged = shapely.transform(merged, lambda c: (c + 0.5) / scale - 0.5)
    return as_multipolygon(merged)


def probability_to_geometry(prob: np.ndarray, threshold: float = 0.5, upsample: int = 2,
                            min_area_px: float = 4.0, smooth_px: float = 0.25) -> MultiPolygon:
    """Sub-pixel outline of ``prob >= threshold``.

    The map is bilinearly upsampled (pixel-centre aligned) before thresholding,
    traced exactly, lightly simplified, and tiny specks are dropped.
    """
    import cv2

    prob = np.asarray(prob, dtype=np.float32)
    if upsample > 1:
        h, w = prob.shape
        fine = cv2.resize(prob, (w * upsample, h * upsample), interpolation=cv2.INTER_LINEAR)
    else:
        fine = prob
    geom = mask_to_geometry(fine >= threshold, scale=float(upsample))
    if smooth_px > 0 and not geom.is_empty:
        geom = as_multipolygon(shapely.simplify(geom, smooth_px, preserve_topology=True))
    return MultiPolygon([p for p in geom.geoms if p.area >= min_area_px])


#: most vertices a hand-drawn (brushed) outline keeps; the demo PAB has ~250
MAX_OUTLINE_VERTICES = 1500


def vertex_count(geom: BaseGeometry | None) -> int:
    """Vertices of every ring of a region (closing points not counted twice)."""
    mp = as_multipolygon(geom)
    return sum(len(r.coords) - 1 for p in mp.geoms for r in (p.exterior, *p.interiors))


def simplify_to_pixel_grid(geom: BaseGeometry | None, tolerance_px: float = 0.4,
                           max_vertices: int = MAX_OUTLINE_VERTICES) -> MultiPolygon:
    """A brushed outline simplified to the pixel grid, with a bounded vertex count.

    A brush stroke is traced along pixel edges (``mask_to_geometry``): every step
    of a slanted edge is two vertices, and each stroke merged into a region adds
    hundreds, so edits and repaints slow down as the outline grows. Here the
    outline is cut into unit steps and each step replaced by its midpoint (a
    staircase becomes the straight line it stands for; a square corner is cut by
    half a pixel, which moves no pixel centre), then every vertex within
    ``tolerance_px`` of the simplified outline is dropped. The result rasterises
    (pixel-centre rule) to the same pixels as the traced stroke in the tests, is
    valid and keeps holes; past ``max_vertices`` it is simplified further
    (``bound_vertices``). Qt-free: ``gui/tools.py`` calls it on each brush or
    eraser stroke before merging it into the region.
    """
    mp = as_multipolygon(geom)
    if mp.is_empty:
        return mp
    unit = as_multipolygon(shapely.segmentize(mp, 1.0))
    polys = []
    for p in unit.geoms:
        rings = []
        for ring in (p.exterior, *p.interiors):
            c = np.asarray(ring.coords, float)[:-1, :2]
            if len(c) >= 3:
                rings.append((c + np.roll(c, -1, axis=0)) / 2.0)
        if rings:
            polys.append(Polygon(rings[0], rings[1:]))
    mid = as_multipolygon(MultiPolygon(polys))
    out = as_multipolygon(shapely.simplify(mid, float(tolerance_px), preserve_topology=True))
    return bound_vertices(out, max_vertices, first_tolerance_px=2.0 * float(tolerance_px))


def bound_vertices(geom: BaseGeometry | None, max_vertices: int = MAX_OUTLINE_VERTICES,
                   first_tolerance_px: float = 0.25) -> MultiPolygon:
    """``geom`` itself when it has at most ``max_vertices``; else simplified with a tolerance
    starting at ``first_tolerance_px`` and doubling (at most 8 px) until it fits.

    For a region after a brush stroke was merged into it (``gui/tools.py``): the
    outline a user builds stroke by stroke stays bounded however long they paint.
    """
    mp = as_multipolygon(geom)
    if vertex_count(mp) <= max_vertices:
        return mp
    tol = max(float(first_tolerance_px), 1e-3)
    out = as_multipolygon(shapely.simplify(mp, tol, preserve_topology=True))
    while vertex_count(out) > max_vertices and tol < 8.0:
        tol *= 2.0
        out = as_multipolygon(shapely.simplify(mp, tol, preserve_topology=True))
    return out


def geometry_to_mask(geom: BaseGeometry | None, shape_hw: tuple[int, int]) -> np.ndarray:
    """Rasterise: a pixel is inside when its centre is inside (even-odd rule over all rings)."""
    h, w = int(shape_hw[0]), int(shape_hw[1])
    out = np.zeros((h, w), dtype=bool)
    geom = as_multipolygon(geom)
    if geom.is_empty:
        return out
    segs = []
    for poly in geom.geoms:
        for ring in [poly.exterior, *poly.interiors]:
            c = np.asarray(ring.coords, dtype=float)
            segs.append(np.hstack([c[:-1], c[1:]]))
    s = np.vstack(segs)
    x0, y0, x1, y1 = s[:, 0], s[:, 1], s[:, 2], s[:, 3]
    ylo, yhi = np.minimum(y0, y1), np.maximum(y0, y1)
    keep = yhi > ylo  # horizontal edges never cross a scanline under the half-open rule
    x0, y0, x1, y1, ylo, yhi = x0[keep], y0[keep], x1[keep], y1[keep], ylo[keep], yhi[keep]
    r0 = max(0, int(np.ceil(ylo.min())))
    r1 = min(h - 1, int(np.floor(yhi.max())))
    for i in range(r0, r1 + 1):
        hit = (ylo <= i) & (yhi > i)
        if not hit.any():
            continue
        t = (i - y0[hit]) / (y1[hit] - y0[hit])
        xs = np.sort(x0[hit] + t * (x1[hit] - x0[hit]))
        for a, b in zip(xs[0::2], xs[1::2]):
            j0 = max(0, int(np.ceil(a)))
            j1 = min(w - 1, int(np.ceil(b)) - 1)
            if j1 >= j0:
                out[i, j0:j1 + 1] ^= True
    return out


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient of two boolean masks (1.0 when both are empty)."""
    a = np.asarray(a, bool)
    b = np.asarray(b, bool)
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2.0 * np.logical_and(a, b).sum() / s)


# --------------------------------------------------------------------------- GeoJSON


def geometry_to_geojson(geom: BaseGeometry | None, decimals: int = 3) -> dict[str, Any]:
    """GeoJSON geometry object: Polygon for one part, MultiPolygon otherwise."""
    geom = as_multipolygon(geom)
    if len(geom.geoms) == 1:
        geom = geom.geoms[0]
    # normalize() fixes ring start and orientation, so saving an unchanged region
    # twice writes identical JSON (set_precision alone rotates the ring start)
    geom = shapely.normalize(shapely.set_precision(geom, 10.0 ** -decimals))
    geom = as_multipolygon(geom)
    if len(geom.geoms) == 1:
        return _rounded(mapping(geom.geoms[0]), decimals)
    return _rounded(mapping(geom), decimals)


def _rounded(obj: Any, decimals: int) -> Any:
    if isinstance(obj, dict):
        return {k: _rounded(v, decimals) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_rounded(v, decimals) for v in obj]
    if isinstance(obj, float):
        return round(obj, decimals)
    return obj


def geometry_from_geojson(obj: Any, where: str = "region") -> MultiPolygon:
    """Parse a GeoJSON Polygon/MultiPolygon; raise ValueError naming ``where`` if malformed."""
    if not isinstance(obj, dict):
        raise ValueError(f"{where} must be a GeoJSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        raise ValueError(f"{where}.type must be 'Polygon' or 'MultiPolygon', got {kind!r}")
    coords = obj.get("coordinates")
    if not isinstance(coords, list):
        raise ValueError(f"{where}.coordinates must be a list")
    depth = 3 if kind == "Polygon" else 4
    _check_coords(coords, depth, f"{where}.coordinates")
    try:
        geom = shape({"type": kind, "coordinates": coords})
    except Exception as exc:  # shapely raises several types for bad rings
        raise ValueError(f"{where}: invalid {kind} ({exc})") from None
    return as_multipolygon(geom)


def _check_coords(c: Any, depth: int, where: str) -> None:
    if depth == 1:
        if (not isinstance(c, list) or len(c) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in c)
                or not all(np.isfinite(v) for v in c)):
            raise ValueError(f"{where} must be a point [x, y] of two finite numbers, got {c!r}"[:200])
        return
    if not isinstance(c, list):
        raise ValueError(f"{where} must be a list")
    if depth == 2 and len(c) < 4:
        raise ValueError(f"{where} is a ring with {len(c)} points; a ring needs at least 4 (closed)")
    for k, v in enumerate(c):
        _check_coords(v, depth - 1, f"{where}[{k}]")


# --------------------------------------------------------------------------- units


def to_mm(geom: BaseGeometry, spacing_mm: tuple[float, float]) -> BaseGeometry:
    """Pixel coordinates -> millimetres. ``spacing_mm`` is (row, column) spacing."""
    sr, sc = float(spacing_mm[0]), float(spacing_mm[1])
    return shapely.transform(geom, lambda c: c * np.array([sc, sr]))


def point_to_mm(p: tuple[float, float], spacing_mm: tuple[float, float]) -> np.ndarray:
    return np.array([p[0] * float(spacing_mm[1]), p[1] * float(spacing_mm[0])], dtype=float)
