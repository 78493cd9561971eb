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

from itertools import chain
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry

from .limits import brief


EMPTY = MultiPolygon()


def as_multipolygon(geom: BaseGeometry | None) -> MultiPolygon:
    """Normalise any areal geometry to a valid MultiPolygon (lines and points dropped).

    An invalid geometry is repaired with ``repair`` (overlapping parts are united; a
    self-crossing outline is split at its crossings).
    """
    if geom is None or geom.is_empty:
        return MultiPolygon()
    if not geom.is_valid:
        geom = repair(geom)
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


def repair(geom: BaseGeometry) -> BaseGeometry:
    """A valid version of ``geom``: GEOS MakeValid with the "structure" method.

    "structure" unites the outlines and subtracts the holes, so overlapping parts become
    their union. The default "linework" method keeps every piece of line work: it turns
    overlaps into holes and took 49 s on a 200-part MultiPolygon that "structure" repairs
    in 0.04 s (docs/reliability.md). Time still grows with the number of crossings:
    files are checked with ``estimate_crossings`` before they get here.
    """
    try:
        return shapely.make_valid(geom, method="structure", keep_collapsed=False)
    except (TypeError, ValueError):  # GEOS < 3.10: only the linework method
        return shapely.make_valid(geom)


def estimate_crossings(geom: BaseGeometry, samples: int = 1024,
                       stop_above: tuple[float, float] | None = None) -> tuple[float, float]:
    """About how many times the outlines of ``geom`` cross: (a ring with itself, two rings).

    Counts the crossings of up to ``samples`` evenly spaced edges with all edges (an
    STRtree query) and scales up; neighbouring edges of a ring (which share a vertex)
    do not count. The two kinds cost differently to repair: a ring crossing itself is
    split and re-polygonised (~0.3 s per 10,000 crossings on one core), rings crossing
    each other are united (~0.1 s per 10,000). Stops early once an estimate is clearly
    above ``stop_above`` (self, between). Memory is bounded by 16 sampled edges at a
    time. A valid polygon gives (0, 0).
    """
    rings = []
    for poly in getattr(geom, "geoms", [geom]):
        if isinstance(poly, Polygon) and not poly.is_empty:
            rings.append(np.asarray(poly.exterior.coords, dtype=float))
            rings.extend(np.asarray(r.coords, dtype=float) for r in poly.interiors)
    rings = [r for r in rings if len(r) >= 2]
    if not rings:
        return 0.0, 0.0
    seg_a = np.concatenate([r[:-1] for r in rings])
    seg_b = np.concatenate([r[1:] for r in rings])
    ring_id = np.concatenate([np.full(len(r) - 1, k) for k, r in enumerate(rings)])
    ring_len = np.asarray([len(r) - 1 for r in rings])
    pos = np.concatenate([np.arange(len(r) - 1) for r in rings])
    n = len(seg_a)
    if n < 2:
        return 0.0, 0.0
    lines = shapely.linestrings(np.stack([seg_a, seg_b], axis=1))
    tree = shapely.STRtree(lines)
    idx = np.unique(np.linspace(0, n - 1, min(n, samples)).round().astype(np.int64))
    own = other = 0
    done = 0
    starts = [0, 4, *range(16, len(idx), 16)]  # a first chunk of 4: a degenerate pile-up stops early
    for k, end in zip(starts, [*starts[1:], len(idx)]):
        chunk = idx[k:end]
        if len(chunk) == 0:
            continue
        src, dst = tree.query(lines[chunk], predicate="intersects")
        i, j = chunk[src], dst
        same = ring_id[i] == ring_id[j]
        d = np.abs(pos[i] - pos[j])
        adjacent = same & ((d <= 1) | (d == ring_len[ring_id[i]] - 1))
        own += int(np.count_nonzero(same & ~adjacent))
        other += int(np.count_nonzero(~same))
        done += len(chunk)
        if stop_above is not None and (own / done * n / 2 > 4 * stop_above[0]
                                                       or other / done * n / 2 > 4 * stop_above[1]):
            break
    scale = n / 2 / max(done, 1)
    return own * scale, other * scale


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
    # twice writes identical JSON. A region read from a file is on the grid already and
    # skips the snapping (set_precision cost 0.4 s per 100,000 vertices)
    coords = shapely.get_coordinates(geom)
    if not np.array_equal(coords, np.round(coords, decimals)):
        geom = _snap_to_grid(geom, decimals)
    geom = shapely.normalize(geom)
    polys = list(as_multipolygon(geom).geoms)
    if len(polys) == 1:
        return {"type": "Polygon", "coordinates": _polygon_lists(polys[0], decimals)}
    return {"type": "MultiPolygon", "coordinates": [_polygon_lists(p, decimals) for p in polys]}


def _snap_to_grid(geom: BaseGeometry, decimals: int) -> MultiPolygon:
    """``geom`` with every vertex on the 10^-decimals grid, still valid.

    Vertices are rounded and repeats dropped first (numpy, O(n)); a ring that collapses
    is dropped; only if that breaks validity does GEOS repair and snap what is left.
    GEOS's precision reducer alone took 20+ s on a 99,000-vertex outline 1e-11 px wide
    (a fuzzed file), since every one of its segments is shorter than rounding error.
    """
    polys = []
    for poly in as_multipolygon(geom).geoms:
        shell = _grid_ring(poly.exterior, decimals)
        if shell is None:
            continue
        holes = [h for h in (_grid_ring(r, decimals) for r in poly.interiors) if h is not None]
        polys.append(Polygon(shell, holes))
    out = MultiPolygon(polys)
    if not out.is_valid:
        out = as_multipolygon(shapely.set_precision(repair(out), 10.0 ** -decimals))
    return as_multipolygon(out)


def _grid_ring(ring, decimals: int) -> np.ndarray | None:
    c = np.round(np.asarray(ring.coords, dtype=float)[:, :2], decimals)
    c = c[np.r_[True, np.any(c[1:] != c[:-1], axis=1)]]
    if len(c) and not np.array_equal(c[0], c[-1]):
        c = np.vstack([c, c[:1]])
    return c if len(c) >= 4 else None


def _polygon_lists(poly: Polygon, decimals: int) -> list:
    """[[exterior], [hole], ...] as lists of [x, y], rounded (numpy: 100,000 vertices in ms)."""
    return [np.round(np.asarray(ring.coords, dtype=float)[:, :2], decimals).tolist()
            for ring in (poly.exterior, *poly.interiors)]


def geometry_from_geojson(obj: Any, where: str = "region",
                          bounds: tuple[float, float, float, float] | None = None,
                          max_vertices: int | None = None) -> MultiPolygon:
    """Parse a GeoJSON Polygon/MultiPolygon; raise ValueError naming ``where`` if malformed.

    Every vertex must be two finite numbers, inside ``bounds`` (xmin, ymin, xmax, ymax)
    when given; at most ``max_vertices`` vertices, ``MAX_PARTS`` polygons and
    ``MAX_RINGS`` rings. Overlapping or self-crossing outlines are repaired (``repair``)
    unless they cross more than ``MAX_CROSSINGS`` (one outline with itself) or
    ``MAX_PART_CROSSINGS`` times (outlines with each other), which no drawn region does.
    All checks run before any geometry is built, so a hostile file costs little.
    """
    from .limits import MAX_CROSSINGS, MAX_PART_CROSSINGS, MAX_PARTS, MAX_RINGS

    if not isinstance(obj, dict):
        raise ValueError(f"{where} must be a GeoJSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        raise ValueError(f"{where}.type must be 'Polygon' or 'MultiPolygon', got {brief(kind)}")
    coords = obj.get("coordinates")
    if not isinstance(coords, list):
        raise ValueError(f"{where}.coordinates must be a list")
    where_c = f"{where}.coordinates"
    parts = [(coords, where_c)] if kind == "Polygon" else [(p, f"{where_c}[{i}]") for i, p in enumerate(coords)]
    if len(parts) > MAX_PARTS:
        raise ValueError(f"{where_c} has {len(parts)} polygons; at most {MAX_PARTS} are read per region")
    rings: list[tuple[list, str]] = []
    for part, w in parts:
        if not isinstance(part, list):
            raise ValueError(f"{w} must be a list of rings")
        rings.extend((r, f"{w}[{k}]") for k, r in enumerate(part))
    if len(rings) > MAX_RINGS:
        raise ValueError(f"{where_c} has {len(rings)} rings; at most {MAX_RINGS} are read per region")
    n_vertices = 0
    for ring, w in rings:
        if not isinstance(ring, list):
            raise ValueError(f"{w} must be a list of points")
        n_vertices += len(ring)
    if max_vertices is not None and n_vertices > max_vertices:
        raise ValueError(f"{where_c} has {n_vertices} vertices, more than the {max_vertices} "
                         "left for this file; simplify the outline")
    arrays = {}
    for ring, w in rings:
        arrays[w] = _ring_array(ring, w, bounds)
    polys = []
    for part, w in parts:
        if not part:
            continue
        shell, *holes = (arrays[f"{w}[{k}]"] for k in range(len(part)))
        try:
            polys.append(Polygon(shell, holes))
        except Exception as exc:  # shapely raises several types for bad rings
            raise ValueError(f"{w}: invalid polygon ({brief(exc)})") from None
    geom = MultiPolygon(polys) if polys else MultiPolygon()
    if not geom.is_empty and not geom.is_valid:
        limits = (MAX_CROSSINGS, MAX_PART_CROSSINGS)
        own, other = estimate_crossings(geom, stop_above=limits)
        for count, limit, what in ((own, limits[0], "an outline crosses itself"),
                                   (other, limits[1], "its outlines cross each other")):
            if count > limit:
                raise ValueError(f"{where}: {what} about {count:,.0f} times (at most {limit:,} are "
                                 "repaired); this is not a drawn region - redraw it")
    return as_multipolygon(geom)


def _ring_array(ring: list, where: str, bounds: tuple[float, float, float, float] | None) -> np.ndarray:
    """(n, 2) float array of a ring, every point checked (type, finite, inside ``bounds``)."""
    if len(ring) < 4:
        raise ValueError(f"{where} is a ring with {len(ring)} points; a ring needs at least 4 (closed)")
    # type checks as C-level map() passes (a Python loop per point cost 0.35 s per 100,000)
    if (set(map(type, ring)) != {list} or set(map(len, ring)) != {2}
            or not set(map(type, chain.from_iterable(ring))) <= {int, float}):  # bool, str: not numbers
        for k, p in enumerate(ring):
            if (not isinstance(p, (list, tuple)) or len(p) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)):
                raise ValueError(f"{where}[{k}] must be a point [x, y] of two finite numbers, got {brief(p)}")
    try:
        arr = np.asarray(ring, dtype=float)
    except OverflowError:
        arr = None
    if arr is None or not np.isfinite(arr).all():
        k = next(k for k, p in enumerate(ring) if not _finite_pair(p))
        raise ValueError(f"{where}[{k}] must be a point [x, y] of two finite numbers, got {brief(ring[k])}")
    if bounds is not None:
        x0, y0, x1, y1 = bounds
        out = (arr[:, 0] < x0) | (arr[:, 0] > x1) | (arr[:, 1] < y0) | (arr[:, 1] > y1)
        if out.any():
            k = int(np.flatnonzero(out)[0])
            raise ValueError(f"{where}[{k}] = {brief(ring[k])} lies far outside the image (x must be "
                             f"within {x0:g}..{x1:g}, y within {y0:g}..{y1:g} pixels)")
    return arr


def _finite_pair(p: list) -> bool:
    try:
        return all(np.isfinite(float(v)) for v in p)
    except OverflowError:
        return False


# --------------------------------------------------------------------------- units


def to_mm(geom: BaseGeometry, spacing_mm: tuple[float, float]) -> BaseGeometry:
    """Pixel coordinates -> millimetres. ``spacing_mm`` is (row, column) spacing."""
    sr, sc = float(spacing_mm[0]), float(spacing_mm[1])
    return shapely.transform(geom, lambda c: c * np.array([sc, sr]))


def point_to_mm(p: tuple[float, float], spacing_mm: tuple[float, float]) -> np.ndarray:
    return np.array([p[0] * float(spacing_mm[1]), p[1] * float(spacing_mm[0])], dtype=float)
