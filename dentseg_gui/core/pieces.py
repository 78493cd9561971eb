"""Which piece of a region belongs to the tooth: the part that is measured (docs/measurements.md).

A region can be several separate pieces: a stray brush dot, a stroke that missed, a
fragment the network drew in the nasal floor. One such piece moves the crest or the
height by centimetres. The measured part of each region is the piece that belongs to
the tooth; the others stay in the annotation but are left out of every number, and the
report says so.

* PAB: the largest piece that reaches into the *root corridor* — the band of the tooth
  frame with 0 <= x <= ``CORRIDOR_X_MM`` (palatal of the long axis) and
  ``CORRIDOR_Y0_MM`` <= y <= L (from just coronal of the CEJ level to the apex level).
* enamel: the largest piece within ``CEJ_REACH_MM`` of either CEJ landmark or reaching
  the crown band (|x| <= ``CORRIDOR_X_MM``, ``CROWN_Y0_MM`` <= y <= 1 mm).
* no piece qualifies, or no tooth frame: the largest piece.

Qt-free and torch-free (shapely in the tooth frame, millimetres).
"""

from __future__ import annotations

from dataclasses import dataclass

import shapely
from shapely.geometry import MultiPolygon, Point, box
from shapely.geometry.base import BaseGeometry

from .geometry import as_multipolygon, to_mm

CORRIDOR_X_MM = 6.0
CORRIDOR_Y0_MM = -2.0
CROWN_Y0_MM = -15.0
CEJ_REACH_MM = 1.5


@dataclass
class PieceChoice:
    """The measured part of one region and what was left out (pixel coordinates)."""

    measured: MultiPolygon
    left_out: MultiPolygon
    n_pieces: int
    warning: str = ""                 # '' when the region is one piece (or empty)


def _choice(name: str, pieces: list, pick: int | None, spacing, reason: str, why_none: str) -> PieceChoice:
    areas_mm = [to_mm(MultiPolygon([p]), spacing).area if spacing else p.area for p in pieces]
    unit = "mm²" if spacing else "px²"
    if pick is None:                                   # nothing qualifies: the largest
        pick = max(range(len(pieces)), key=lambda i: areas_mm[i])
        head = f"{len(pieces)} {name} pieces, {why_none}: measured the largest"
    else:
        head = f"{len(pieces)} {name} pieces: measured {reason}"
    kept = pieces[pick]
    others = [p for i, p in enumerate(pieces) if i != pick]
    out = sum(a for i, a in enumerate(areas_mm) if i != pick)
    warning = f"{head} ({areas_mm[pick]:.1f} {unit}), left out {out:.1f} {unit}"
    return PieceChoice(MultiPolygon([kept]), MultiPolygon(others), len(pieces), warning)


def _choose(name: str, geom_px: BaseGeometry | None, frame, zone, reason: str, why_none: str) -> PieceChoice:
    """The largest piece of ``geom_px`` that reaches ``zone(frame)`` (a region of the tooth frame, mm);
    one piece, or no frame, or no piece in the zone: see ``_choice``."""
    geom = as_multipolygon(geom_px)
    pieces = list(geom.geoms)
    if len(pieces) <= 1:
        return PieceChoice(geom, MultiPolygon(), len(pieces))
    if frame is None:
        return _choice(name, pieces, None, None, "", "no tooth frame yet (place the landmarks)")
    region = zone(frame)
    hits = [i for i, p in enumerate(pieces) if frame.geometry_to_frame(p).intersects(region)]
    pick = max(hits, key=lambda i: pieces[i].area) if hits else None
    return _choice(name, pieces, pick, frame.spacing_mm, reason, why_none)


def choose_pab(pab_px: BaseGeometry | None, frame=None) -> PieceChoice:
    """The PAB piece along the palatal root surface (``frame``: a ``measurements.ToothFrame`` or None)."""
    return _choose("PAB", pab_px, frame, lambda f: box(0.0, CORRIDOR_Y0_MM, CORRIDOR_X_MM, f.root_length),
                   "the one on the root", "none along the palatal root surface")


def choose_enamel(enamel_px: BaseGeometry | None, frame=None, landmarks: dict | None = None) -> PieceChoice:
    """The enamel piece of the crown: near a CEJ landmark or in the crown band."""
    def crown_or_near_a_cej(f) -> BaseGeometry:
        crown = box(-CORRIDOR_X_MM, CROWN_Y0_MM, CORRIDOR_X_MM, 1.0)
        cejs = [f.px_to_frame([(landmarks or {})[n]]) for n in ("CEJ_labial", "CEJ_palatal")
                if (landmarks or {}).get(n) is not None]
        return shapely.union_all([crown, *(Point(c[0]).buffer(CEJ_REACH_MM) for c in cejs)])

    return _choose("enamel", enamel_px, frame, crown_or_near_a_cej, "the crown's", "none on the crown")
