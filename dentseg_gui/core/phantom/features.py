"""Geometry and framing of the wide style's extra features (mm, anatomical frame; pixels for framing).

* ``cortex_breaks``: the palatal cortex missing along arcs of the palatal surface;
* ``cervical_zone``: the bone next to the palatal crest, washed out toward soft tissue;
* ``bracket``: an orthodontic bracket on the labial surface of the crown (metal);
* ``pad_borders`` / ``crop_window``: constant borders and tight crops of the image, never
  reaching the tooth, its enamel or the PAB (whose truth must stay in the picture).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from shapely.geometry import Point, box
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

from .anatomy import Tooth
from .params import PhantomParams


def cortex_breaks(p: PhantomParams, anat: dict[str, Any]) -> BaseGeometry:
    """Where the palatal cortex is missing: bands along arcs of the palatal surface."""
    line = anat["pal_surface"]
    keep_out = anat["pdl_outer"].buffer(p.lamina, quad_segs=8)
    parts = [substring(line, a, b, normalized=True).buffer(p.cortex + 0.3, quad_segs=6)
             for a, b in p.cortex_breaks if b > a]
    return shapely.union_all(parts).intersection(anat["bone"]).difference(keep_out)


def cervical_zone(p: PhantomParams, anat: dict[str, Any]) -> BaseGeometry:
    """Bone palatal of the root from 1 mm coronal of the palatal crest to ``cervical_fade[0]`` mm apical of it."""
    v_cp = p.cej_pal_v + p.crest_pal
    zone_t = box(0.0, v_cp - 1.0, 40.0, v_cp + p.cervical_fade[0])
    return anat["frame"].geom(zone_t).intersection(anat["bone"]).difference(anat["pdl_outer"])


def bracket(p: PhantomParams, anat: dict[str, Any]) -> BaseGeometry:
    """An elliptical bracket (``metal[0]`` mm long) just labial of the crown, half-way up it."""
    t = Tooth(p)
    size = p.metal[0]
    v = -0.45 * p.crown_len
    u = float(t.labial(np.array([v]))[0]) - 0.25 * size - 0.15
    ell = shapely.affinity.scale(Point(u, v).buffer(1.0, quad_segs=12), 0.25 * size, 0.5 * size)
    return anat["frame"].geom(ell).difference(anat["tooth"].buffer(0.1))


def free_space(key_px: tuple[float, float, float, float], shape_hw: tuple[int, int],
               margin_px: tuple[float, float]) -> tuple[int, int, int, int]:
    """Rows / columns between each image edge and the key structures' box plus a margin:
    (top, bottom, left, right), never negative."""
    x0, y0, x1, y1 = key_px
    h, w = shape_hw
    mx, my = margin_px
    return (max(0, int(np.floor(y0 - my))), max(0, int(np.floor(h - 1 - y1 - my))),
            max(0, int(np.floor(x0 - mx))), max(0, int(np.floor(w - 1 - x1 - mx))))


def pad_borders(density: np.ndarray, p: PhantomParams, key_px, margin_px) -> np.ndarray:
    """Constant borders (``p.pad``: fractions of the free space per side, then the level)."""
    top, bottom, left, right = free_space(key_px, density.shape, margin_px)
    ft, fb, fl, fr, level = p.pad
    out = density.copy()
    h, w = out.shape
    nt, nb, nl, nr = int(ft * top), int(fb * bottom), int(fl * left), int(fr * right)
    out[:nt] = level
    out[h - nb:h] = level                # h - 0:h is empty
    out[:, :nl] = level
    out[:, w - nr:w] = level
    return out


def crop_window(p: PhantomParams, shape_hw: tuple[int, int], key_px, margin_px,
                min_side: int = 64) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the crop ``p.crop`` asks for (fractions of the free space per side)."""
    top, bottom, left, right = free_space(key_px, shape_hw, margin_px)
    ct, cb, cl, cr = p.crop
    h, w = shape_hw
    y0, y1 = int(ct * top), h - int(cb * bottom)
    x0, x1 = int(cl * left), w - int(cr * right)
    if y1 - y0 < min_side:
        y0, y1 = 0, h
    if x1 - x0 < min_side:
        x0, x1 = 0, w
    return x0, y0, x1, y1
