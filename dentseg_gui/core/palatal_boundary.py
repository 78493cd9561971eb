"""The palatal boundary of the PAB as an editable curve (pure geometry, no Qt, no torch).

The outer cortical surface of the palatal bone is the part of the PAB outline
that is hardest to see on CBCT, so it is the part that boundary compensation
moves and that the clinician corrects by hand. This module isolates that part
of the outline as an open curve, lets it be replaced by an edited curve while
the rest of the region (root side, apical cut) stays fixed, and provides the
curve tools the editor needs (resampling, smoothing, a spline through handles).

Conventions: coordinates are image pixels (x right, y down); the tooth frame
(``core.measurements.ToothFrame``) decides which side is palatal (+x) and
which end is apical (+y). The palatal curve is always ordered crest -> apex.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import shapely
from shapely.geometry import LinearRing, LineString, MultiPolygon, Polygon

from .geometry import as_multipolygon, largest_polygon
from .measurements import FrameError, ToothFrame

# Vertices within this distance (mm, along the long axis) of the most coronal /
# most apical point of the region count as the crest / the apical cut.
_END_TOL_MM = 0.25
# The ring is densified to at most this spacing (px) before the palatal run is
# cut out of it, so the cut ends fall near the true crest and apical corner.
_DENSIFY_PX = 1.0
# The crest top (facing the gingiva) is followed at most this far apically (mm).
_CREST_TOP_MAX_MM = 2.0


# --------------------------------------------------------------------------- extraction


def extract_palatal_boundary(pab: MultiPolygon | Polygon | None,
                             landmarks: Mapping[str, tuple[float, float]],
                             spacing_mm: tuple[float, float] | None) -> LineString | None:
    """The outer (palatal) surface of the PAB as an open curve ordered crest -> apex.

    The exterior ring of the largest PAB polygon is split at two points: the
    crest (the most coronal point; among near-ties the most palatal one) and
    the palatal corner of the apical end (the most palatal point among those
    within ``_END_TOL_MM`` of the most apical level). Of the two arcs between
    them, the one lying further palatal (larger mean x in the tooth frame,
    weighted by arc length) is the outer cortical surface; the other is the
    root side plus the apical cut.

    Returns ``None`` when there is no region, or the landmarks or spacing do not
    define a tooth frame (then "palatal" has no meaning).
    """
    poly = largest_polygon(pab)
    if poly is None or spacing_mm is None:
        return None
    try:
        frame = ToothFrame.from_landmarks(dict(landmarks), spacing_mm)
    except FrameError:
        return None
    ring = np.asarray(shapely.segmentize(poly.exterior, _DENSIFY_PX).coords, float)[:-1]
    n = len(ring)
    if n < 3:
        return None
    fr = frame.px_to_frame(ring)
    u, v = fr[:, 0], fr[:, 1]

    near_crest = np.flatnonzero(v <= v.min() + _END_TOL_MM)
    i_crest = int(near_crest[np.argmax(u[near_crest])])
    near_apex = np.flatnonzero(v >= v.max() - _END_TOL_MM)
    i_apex = int(near_apex[np.argmax(u[near_apex])])
    if i_crest == i_apex:
        return None

    fwd = _cyclic_range(i_crest, i_apex, n)            # crest -> apex, increasing index
    bwd = _cyclic_range(i_apex, i_crest, n)[::-1]      # crest -> apex, decreasing index
    palatal_fwd = _mean_u(fr, fwd) >= _mean_u(fr, bwd)
    run = fwd if palatal_fwd else bwd
    root = bwd if palatal_fwd else fwd                 # crest -> apex along the root side
    run = np.concatenate([_crest_top(fr, root), run])
    if len(run) < 2:
        return None
    return LineString(ring[run])


def _crest_top(fr: np.ndarray, root_run: np.ndarray) -> np.ndarray:
    """The crest's top, from the corner at the PDL to the crest point, as ring indices.

    Walking from the crest point along the root side, the outline first runs
    over the top of the crest (its outward normal points coronally, -y) and
    then turns to run along the PDL (normal pointing labially, -x). The crest
    top faces the gingiva, so it belongs to the soft-tissue boundary.
    Returns the indices in crest-corner -> crest-point order (crest point excluded).
    """
    if len(root_run) < 3:
        return np.zeros(0, int)
    p = fr[root_run]
    t = np.gradient(p, axis=0)
    # smooth the tangents over ~0.3 mm so pixel staircases do not flip the decision
    seg = float(np.median(np.linalg.norm(np.diff(p, axis=0), axis=1))) or 1e-3
    r = max(1, int(round(0.3 / seg)))
    k = np.ones(2 * r + 1) / (2 * r + 1)
    t = np.stack([np.convolve(np.pad(t[:, d], r, mode="edge"), k, mode="valid") for d in range(2)], axis=1)
    # the root run goes crest -> apex; the region lies on its palatal (+u) side, so the
    # outward normal is the tangent rotated towards -u
    nrm = np.stack([-t[:, 1], t[:, 0]], axis=1)
    if float(np.mean(nrm[:, 0])) > 0:
        nrm = -nrm
    coronal = -nrm[:, 1] > -nrm[:, 0]      # faces the crown more than the root
    v0 = p[0, 1]
    end = 0
    while end + 1 < len(p) and coronal[end + 1] and p[end + 1, 1] - v0 < _CREST_TOP_MAX_MM:
        end += 1
    return root_run[1:end + 1][::-1]


def _cyclic_range(i0: int, i1: int, n: int) -> np.ndarray:
    """Indices i0, i0+1, ..., i1 modulo n (inclusive at both ends)."""
    k = (i1 - i0) % n
    return (i0 + np.arange(k + 1)) % n


def _mean_u(fr: np.ndarray, idx: np.ndarray) -> float:
    """Arc-length weighted mean palatal coordinate of a chain of frame points."""
    p = fr[idx]
    if len(p) < 2:
        return float(p[0, 0])
    seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
    mid = 0.5 * (p[1:, 0] + p[:-1, 0])
    total = seg.sum()
    return float(mid.mean()) if total <= 0 else float((mid * seg).sum() / total)


# --------------------------------------------------------------------------- replacement


def replace_palatal_boundary(pab: MultiPolygon | Polygon,
                             old_curve: LineString | np.ndarray,
                             new_curve: LineString | np.ndarray) -> MultiPolygon:
    """The PAB with its palatal arc ``old_curve`` replaced by ``new_curve``.

    The arc of the largest polygon's exterior between the points nearest to
    ``old_curve``'s two ends that contains ``old_curve``'s middle is dropped;
    the remaining arc (root side and apical cut) is joined to ``new_curve``
    (both curves ordered crest -> apex). Holes and other parts are kept. A
    self-intersecting result (a handle dragged across the root side) is
    repaired with ``make_valid`` and only the largest piece of the edited
    polygon is kept, so the result is always a valid region. Runs on every
    mouse move while dragging: numpy on ring coordinates, no per-vertex Python.
    """
    region = as_multipolygon(pab)
    old = _as_points(old_curve)
    new = _as_points(new_curve)
    if region.is_empty or len(old) < 2 or len(new) < 2:
        return region
    polys = list(region.geoms)
    i_main = int(np.argmax([p.area for p in polys]))
    main = polys[i_main]
    others = polys[:i_main] + polys[i_main + 1:]

    ring_pts = np.asarray(main.exterior.coords, float)
    ring = LinearRing(ring_pts)
    seg = np.linalg.norm(np.diff(ring_pts, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    perim = cum[-1]
    probes = shapely.points([old[0], old[len(old) // 2], old[-1]])
    s_crest, s_mid, s_apex = shapely.line_locate_point(ring, probes)

    # the kept arc runs from the apex end to the crest end, away from the old arc's middle
    if _in_cyclic_interval(s_mid, s_crest, s_apex, perim):
        kept = _arc(ring_pts, cum, s_apex, s_crest)              # increasing s: apex -> crest
    else:
        kept = _arc(ring_pts, cum, s_crest, s_apex)[::-1]        # increasing s is crest -> apex
    coords = np.vstack([new, kept])
    edited = Polygon(coords, [np.asarray(h.coords) for h in main.interiors])
    if not edited.is_valid:
        pieces = as_multipolygon(shapely.make_valid(edited))
        if pieces.is_empty:
            pieces = as_multipolygon(edited.buffer(0))
        if pieces.is_empty:
            return region
        edited = max(pieces.geoms, key=lambda p: p.area)
    parts = [edited, *others]
    if others and any(edited.intersects(o) for o in others):
        return as_multipolygon(shapely.union_all(parts))
    return MultiPolygon(parts)


def _as_points(curve: LineString | np.ndarray | None) -> np.ndarray:
    if curve is None:
        return np.zeros((0, 2))
    if isinstance(curve, LineString):
        return np.asarray(curve.coords, float)[:, :2]
    return np.asarray(curve, float).reshape(-1, 2)


def _in_cyclic_interval(s: float, a: float, b: float, perim: float) -> bool:
    """Is position ``s`` on the ring passed when walking forward from ``a`` to ``b``?"""
    return (s - a) % perim <= (b - a) % perim


def _arc(ring_pts: np.ndarray, cum: np.ndarray, s0: float, s1: float) -> np.ndarray:
    """Ring points from arc position ``s0`` forward to ``s1`` (wrapping), ends interpolated."""
    pts = ring_pts[:-1]
    start = _point_at(ring_pts, cum, s0)
    end = _point_at(ring_pts, cum, s1)
    if s1 >= s0:
        inner = pts[(cum[:-1] > s0) & (cum[:-1] < s1)]
    else:
        inner = np.vstack([pts[cum[:-1] > s0], pts[cum[:-1] < s1]])
    return np.vstack([start, inner, end])


def _point_at(ring_pts: np.ndarray, cum: np.ndarray, s: float) -> np.ndarray:
    i = int(np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(cum) - 2))
    d = cum[i + 1] - cum[i]
    t = 0.0 if d <= 0 else (s - cum[i]) / d
    return ring_pts[i] + t * (ring_pts[i + 1] - ring_pts[i])


# --------------------------------------------------------------------------- curve tools


def arc_length(points: np.ndarray) -> np.ndarray:
    """Cumulative arc length at each point (starts at 0)."""
    p = _as_points(points)
    if len(p) == 0:
        return np.zeros(0)
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])


def resample_curve(curve: LineString | np.ndarray, n: int) -> np.ndarray:
    """``n`` points equally spaced by arc length along ``curve`` (ends included)."""
    p = _as_points(curve)
    if n < 2:
        raise ValueError("resample_curve needs n >= 2")
    if len(p) == 0:
        return np.zeros((0, 2))
    s = arc_length(p)
    if s[-1] <= 0:
        return np.repeat(p[:1], n, axis=0)
    t = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(t, s, p[:, 0]), np.interp(t, s, p[:, 1])], axis=1)


def smooth_curve(points: np.ndarray, sigma: float = 2.0, keep_ends: bool = True) -> np.ndarray:
    """Gaussian smoothing of an open curve along its arc length.

    ``sigma`` is in the same unit as the points (pixels). The curve is first
    resampled at unit spacing so smoothing does not depend on vertex density,
    then mapped back to as many points as it had. ``keep_ends`` pins the end
    points (they join the fixed part of the region).
    """
    p = _as_points(points)
    if len(p) < 3 or sigma <= 0:
        return p.copy()
    length = arc_length(p)[-1]
    m = max(len(p), int(np.ceil(length)) + 1)
    q = resample_curve(p, m)
    step = length / (m - 1) if m > 1 else 1.0
    sig = sigma / max(step, 1e-9)
    r = int(np.ceil(3 * sig))
    if r < 1:
        return p.copy()
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sig) ** 2)
    k /= k.sum()
    # reflect about the end points (odd extension) so the ends do not shrink inward
    pad_lo = 2 * q[0] - q[1:r + 1][::-1]
    pad_hi = 2 * q[-1] - q[-r - 1:-1][::-1]
    ext = np.vstack([pad_lo, q, pad_hi])
    sm = np.stack([np.convolve(ext[:, d], k, mode="valid") for d in range(2)], axis=1)
    if keep_ends:
        sm[0], sm[-1] = q[0], q[-1]
    return resample_curve(sm, len(p))


def curve_from_handles(handles: np.ndarray, samples_per_segment: int = 12) -> np.ndarray:
    """A centripetal Catmull-Rom spline through every handle, in order.

    Centripetal parametrisation (alpha = 0.5) never forms cusps or loops
    within a segment, so the curve stays close to the polygon of handles even
    when handles are unevenly spaced. The end segments use mirrored phantom
    handles. Returns ``(len(handles) - 1) * samples_per_segment + 1`` points
    starting at the first handle and ending at the last.
    """
    h = _as_points(handles)
    if len(h) == 0:
        return h
    keep = np.concatenate([[True], np.linalg.norm(np.diff(h, axis=0), axis=1) > 1e-9])
    h = h[keep]
    if len(h) < 3:
        return h.copy() if len(h) < 2 else np.linspace(h[0], h[1], samples_per_segment + 1)
    ext = np.vstack([2 * h[0] - h[1], h, 2 * h[-1] - h[-2]])
    t = np.linspace(0.0, 1.0, samples_per_segment + 1)[:-1]
    out = []
    for i in range(1, len(ext) - 2):
        out.append(_catmull_rom_segment(ext[i - 1], ext[i], ext[i + 1], ext[i + 2], t))
    out.append(h[-1:])
    return np.vstack(out)


def _catmull_rom_segment(p0, p1, p2, p3, u: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Barry-Goldman evaluation of one centripetal Catmull-Rom segment p1 -> p2."""
    def knot(a, b):
        return max(float(np.linalg.norm(b - a)) ** alpha, 1e-9)

    t0 = 0.0
    t1 = t0 + knot(p0, p1)
    t2 = t1 + knot(p1, p2)
    t3 = t2 + knot(p2, p3)
    t = (t1 + u * (t2 - t1))[:, None]
    a1 = (t1 - t) / (t1 - t0) * p0 + (t - t0) / (t1 - t0) * p1
    a2 = (t2 - t) / (t2 - t1) * p1 + (t - t1) / (t2 - t1) * p2
    a3 = (t3 - t) / (t3 - t2) * p2 + (t - t2) / (t3 - t2) * p3
    b1 = (t2 - t) / (t2 - t0) * a1 + (t - t0) / (t2 - t0) * a2
    b2 = (t3 - t) / (t3 - t1) * a2 + (t - t1) / (t3 - t1) * a3
    return (t2 - t) / (t2 - t1) * b1 + (t - t1) / (t2 - t1) * b2


def outward_normals(points: np.ndarray, palatal_dir: np.ndarray) -> np.ndarray:
    """Unit normals of an open curve, all signed to point towards ``palatal_dir``.

    The palatal curve is one simple chain, so a single sign for the whole
    curve (chosen by the mean agreement with the palatal direction) keeps the
    normals consistent even where the curve bends back locally.
    """
    p = _as_points(points)
    tang = np.gradient(p, axis=0) if len(p) > 1 else np.zeros_like(p)
    norm = np.linalg.norm(tang, axis=1, keepdims=True)
    tang = tang / np.maximum(norm, 1e-12)
    nrm = np.stack([tang[:, 1], -tang[:, 0]], axis=1)
    if float(np.mean(nrm @ np.asarray(palatal_dir, float))) < 0:
        nrm = -nrm
    return nrm
