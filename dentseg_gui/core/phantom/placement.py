"""Where the anatomy lands in the image: field of view, pixel spacing, facing left or right."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry.base import BaseGeometry

from .params import PhantomParams

MIN_SIZE, MAX_SIZE = 128, 640


@dataclass
class Placement:
    height: int
    width: int
    spacing: tuple[float, float]
    matrix: list[float]       # shapely affine: anatomical mm -> pixel

    def geom(self, g: BaseGeometry) -> BaseGeometry:
        return affinity.affine_transform(g, self.matrix)

    def pts(self, xy: np.ndarray) -> np.ndarray:
        a, b, d, e, xo, yo = self.matrix
        xy = np.asarray(xy, float)
        return np.column_stack([a * xy[..., 0] + b * xy[..., 1] + xo, d * xy[..., 0] + e * xy[..., 1] + yo])


def place(p: PhantomParams, anat: dict[str, Any]) -> Placement:
    sr, sc = p.spacing
    sign = 1.0 if p.facing_left else -1.0
    key = shapely.union_all([anat["tooth"], anat["pab"], anat["enamel"]])
    kx0, ky0, kx1, ky1 = key.bounds                      # anatomical mm
    ex, ey = (kx1 - kx0) + 6.0, (ky1 - ky0) + 7.0         # margins: 3 mm sides, crown 3 mm, apex 4 mm
    fov_h, fov_w = max(p.fov[0], ey), max(p.fov[1], ex)
    h = int(np.clip(round(fov_h / sr), MIN_SIZE, MAX_SIZE))
    w = int(np.clip(round(fov_w / sc), MIN_SIZE, MAX_SIZE))
    img_w_mm, img_h_mm = w * sc, h * sr
    # image mm: xm = sign*X + ox ; ym = -Y + oy   (pixel centre j at xm = j*sc)
    free_x = max(img_w_mm - ex, 0.0)
    free_y = max(img_h_mm - ey, 0.0)
    if sign > 0:     # key spans [kx0 + ox, kx1 + ox]
        ox = 3.0 + free_x * p.shift[0] - kx0
    else:            # mirrored: key spans [ox - kx1, ox - kx0]
        ox = 3.0 + free_x * p.shift[0] + kx1
    oy = 4.0 + free_y * p.shift[1] + ky1                 # key spans [oy - ky1, oy - ky0]
    matrix = [sign / sc, 0.0, 0.0, -1.0 / sr, ox / sc, oy / sr]
    return Placement(h, w, (sr, sc), matrix)
