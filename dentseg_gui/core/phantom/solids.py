"""Solid shapes for phantom volumes: 2-D signed distance fields and teeth built from their profile.

* ``Field2D``: signed distances (mm, negative inside) of one or more 2-D
  geometries on a fine regular grid, sampled bilinearly at any points. The
  zero level is the polygon outline to a few hundredths of a millimetre.
* ``ToothSolid``: a tooth in 3-D from its labio-palatal profile (the 2-D
  phantom's tooth, enamel and pulp in the tooth frame ``(u, v)``) and a
  mesio-distal half width ``W(v)`` that narrows toward the root: the profile
  extruded along ``w`` and cut by the slab ``|w| <= W(v)``, with rounded
  edges. On its central plane ``w = 0`` the solid's signed distance equals the
  profile's exactly, so the 2-D truth (tooth, enamel, PDL, lamina) holds there.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from shapely.geometry.base import BaseGeometry

from ..geometry import as_multipolygon
from .anatomy import Tooth, tooth_geometry
from .volume_params import ToothSpec

FAR = 1.0e3


class Field2D:
    """Signed distance fields (one channel per geometry) on a grid of ``h`` mm over ``bounds``."""

    def __init__(self, geoms: list[BaseGeometry], bounds: tuple[float, float, float, float], h: float):
        x0, y0, x1, y1 = bounds
        self.x0, self.y0, self.h = float(x0), float(y0), float(h)
        self.w = int(math.ceil((x1 - x0) / h)) + 1
        self.hgt = int(math.ceil((y1 - y0) / h)) + 1
        chans = [self._sdf(g) for g in geoms]
        self.data = chans[0] if len(chans) == 1 else np.ascontiguousarray(np.dstack(chans))
        self.channels = len(chans)

    def _sdf(self, g: BaseGeometry | None) -> np.ndarray:
        mask = np.zeros((self.hgt, self.w), np.uint8)
        g = None if g is None else as_multipolygon(g)
        if g is None or g.is_empty:
            return np.full((self.hgt, self.w), FAR, np.float32)
        rings = []
        for poly in g.geoms:
            for ring in [poly.exterior, *poly.interiors]:
                c = np.asarray(ring.coords, float)
                px = np.column_stack([(c[:, 0] - self.x0) / self.h, (c[:, 1] - self.y0) / self.h])
                rings.append(np.round(px * 16.0).astype(np.int32).reshape(-1, 1, 2))
        cv2.fillPoly(mask, rings, 1, lineType=cv2.LINE_8, shift=4)
        if not mask.any():
            return np.full((self.hgt, self.w), FAR, np.float32)
        d_out = cv2.distanceTransform((1 - mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        d_in = cv2.distanceTransform(mask, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        sdf = np.where(mask > 0, -(d_in - 0.5), d_out - 0.5) * self.h
        return sdf.astype(np.float32)

    def row_widths(self, channel: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(y of each grid row, width inside the geometry on that row) in mm."""
        d = self.data if self.channels == 1 else self.data[..., channel]
        return self.y0 + self.h * np.arange(self.hgt), (d < 0).sum(axis=1) * self.h

    def sample(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Bilinear samples at points (mm): shape (n,) for one channel, (n, channels) otherwise."""
        n = int(np.size(x))
        if n == 0:
            return np.zeros((0,) if self.channels == 1 else (0, self.channels), np.float32)
        cols = 2048
        rows = (n + cols - 1) // cols
        mx = np.full(rows * cols, -1.0, np.float32)
        my = np.full(rows * cols, -1.0, np.float32)
        mx[:n] = (np.ravel(x) - self.x0) / self.h
        my[:n] = (np.ravel(y) - self.y0) / self.h
        out = cv2.remap(self.data, mx.reshape(rows, cols), my.reshape(rows, cols), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
        if self.channels == 1:
            return out.reshape(-1)[:n]
        return out.reshape(-1, self.channels)[:n]


def rounded_max(a: np.ndarray, b: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Signed distance of the intersection of two solids with edges rounded by ``r``.

    Equals ``a`` wherever ``a >= b`` and ``b <= -r`` (e.g. on the central plane of a tooth)."""
    qa = a + r
    qb = b + r
    outside = np.sqrt(np.maximum(qa, 0) ** 2 + np.maximum(qb, 0) ** 2)
    return outside + np.minimum(np.maximum(qa, qb), 0) - r


class ToothSolid:
    """One tooth: profile fields in the tooth frame and its mesio-distal widths along ``v``."""

    def __init__(self, spec: ToothSpec, geometry: dict | None = None):
        self.spec = spec
        p = spec.p2d
        t = Tooth(p)
        tg = geometry or tooth_geometry(t)
        self.geometry = tg
        tooth = tg["tooth"]
        core = tooth.difference(tg["enamel"])
        u0, v0, u1, v1 = tooth.bounds
        self.u_range = (u0, u1)
        self.v_range = (v0, v1)
        pad = 6.0
        self.field = Field2D([tooth, core, tg["pulp"]], (u0 - pad, v0 - pad, u1 + pad, v1 + pad), 0.05)
        # mesio-distal half widths along v (crown: v < 0, root: v > 0)
        vv = np.linspace(v0 - 0.5, v1 + 0.5, 400)
        self.v_grid = vv
        L, Lc = p.root_len, p.crown_len
        s = np.clip(-vv / Lc, 0.0, 1.0)
        crown = np.where(s < 0.65, spec.md_cej + (spec.md_max - spec.md_cej) * np.sin(0.5 * np.pi * s / 0.65),
                         spec.md_max + (spec.md_edge - spec.md_max) * ((s - 0.65) / 0.35) ** 2)
        x = np.clip(vv / L, 0.0, 1.0)
        root = spec.md_cej * (1 - (1 - spec.md_taper) * x) * np.sqrt(np.clip(1 - x ** 6, 0, 1))
        W = np.where(vv < 0, crown, np.maximum(root, 0.3))
        rows, widths = self.field.row_widths(0)
        lp = 0.5 * np.interp(vv, rows, widths)
        self.W = W
        self.r = 0.8 * np.minimum(W, np.maximum(lp, 0.05))
        # enamel on the mesial / distal faces: thickest mid-crown, nothing at the CEJ
        cej = 0.5 * (p.cej_lab_v + p.cej_pal_v)
        q = np.clip((cej - vv) / (cej + Lc), 0.0, 1.0)
        t_md = spec.md_enamel * (1 - (1 - np.minimum(q / 0.5, 1.0)) ** 2)
        self.Wc = np.maximum(W - t_md, 0.3)
        self.rc = 0.8 * np.minimum(self.Wc, np.maximum(lp, 0.05))
        rows, widths = self.field.row_widths(2)
        plp = 0.5 * np.interp(vv, rows, widths)
        self.Wp = np.where(vv < 0, 1.6 * plp, 1.15 * plp) + 0.05
        self.rp = 0.8 * np.minimum(self.Wp, np.maximum(plp, 0.02))
        self._table = np.column_stack([self.W, self.r, self.Wc, self.rc, self.Wp, self.rp]).astype(np.float32)

    def distances(self, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Signed distances (mm) of points to the tooth, its dentin core and its pulp."""
        f = self.field.sample(u, v)
        aw = np.abs(w)
        vg = self.v_grid
        x = np.clip((v - vg[0]) / (vg[1] - vg[0]), 0, len(vg) - 1.001)
        i0 = x.astype(np.intp)
        fr = (x - i0).astype(np.float32)[:, None]
        tb = self._table[i0] * (1 - fr) + self._table[i0 + 1] * fr
        tooth = rounded_max(f[:, 0], aw - tb[:, 0], tb[:, 1])
        core = rounded_max(f[:, 1], aw - tb[:, 2], tb[:, 3])
        pulp = rounded_max(f[:, 2], aw - tb[:, 4], tb[:, 5])
        return tooth, core, pulp

    def box(self, margin: float) -> tuple[tuple[float, float], tuple[float, float], float]:
        """(u range, v range, |w| limit) enclosing the tooth plus ``margin``."""
        return ((self.u_range[0] - margin, self.u_range[1] + margin),
                (self.v_range[0] - margin, self.v_range[1] + margin),
                float(self.W.max()) + margin)
