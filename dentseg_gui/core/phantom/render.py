"""Rendering a phantom slice: supersampled densities, texture, scanner blur, artefacts, noise.

Every structure is rasterised from its polygon on a 4x (or 3x) finer grid and
area-downsampled, so edges carry partial volume like a real scanner.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from ..geometry import as_multipolygon
from .params import PhantomParams
from .placement import Placement


class Raster:
    """Supersampled rasteriser: polygons in image pixels -> coverage on a fine grid."""

    def __init__(self, h: int, w: int, ss: int):
        self.h, self.w, self.ss = h, w, ss
        self.H, self.W = h * ss, w * ss
        self.clip = box(-2.0, -2.0, w + 1.0, h + 1.0)

    def mask(self, g: BaseGeometry) -> np.ndarray:
        out = np.zeros((self.H, self.W), np.uint8)
        if g is None or g.is_empty:
            return out.astype(bool)
        g = as_multipolygon(g.intersection(self.clip))
        rings = []
        for poly in g.geoms:
            for ring in [poly.exterior, *poly.interiors]:
                c = np.asarray(ring.coords, float)
                f = ((c + 0.5) * self.ss - 0.5) * 16.0
                rings.append(np.round(f).astype(np.int32).reshape(-1, 1, 2))
        if rings:
            cv2.fillPoly(out, rings, 1, lineType=cv2.LINE_8, shift=4)
        return out.astype(bool)

    def down(self, fine: np.ndarray) -> np.ndarray:
        return cv2.resize(fine, (self.w, self.h), interpolation=cv2.INTER_AREA)

    def up(self, coarse: np.ndarray) -> np.ndarray:
        return cv2.resize(coarse, (self.W, self.H), interpolation=cv2.INTER_LINEAR)


def band_noise(rng: np.random.Generator, h: int, w: int, s1: float, s2: float) -> np.ndarray:
    n = rng.standard_normal((h, w)).astype(np.float32)
    a = cv2.GaussianBlur(n, (0, 0), max(s1, 0.3))
    b = cv2.GaussianBlur(n, (0, 0), max(s2, 0.6))
    d = a - b
    return d / (d.std() + 1e-6)


def render_density(p: PhantomParams, anat_px: dict[str, Any], pl: Placement, rng: np.random.Generator) -> np.ndarray:
    """Density image (air ~0, soft ~0.3, bone ~0.5-0.8, dentin ~0.83, enamel ~1.05)."""
    h, w = pl.height, pl.width
    sr, sc = pl.spacing
    ss = 4 if h * w <= 420 * 420 else 3
    R = Raster(h, w, ss)
    dn = p.dens
    s_mean = 0.5 * (sr + sc)

    # textures at image resolution, upsampled to the fine grid
    fine_t = band_noise(rng, h, w, 0.3 * p.trab_scale / s_mean, 1.0 * p.trab_scale / s_mean)
    coarse_t = band_noise(rng, h, w, 0.7 * p.trab_scale / s_mean, 2.2 * p.trab_scale / s_mean)
    trab = np.tanh(p.trab_gain * (0.75 * fine_t + 0.55 * coarse_t))
    marrow = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 3.0 / s_mean)
    marrow /= marrow.std() + 1e-6
    soft_var = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 2.0 / s_mean)
    soft_var /= soft_var.std() + 1e-6

    D = np.full((R.H, R.W), dn["air"], np.float32)
    m = R.mask(anat_px["soft"])
    D[m] = (dn["soft"] + 0.02 * R.up(soft_var))[m]
    bone_geom = anat_px["bone"].union(anat_px["extra_bone"])
    bone = R.mask(bone_geom)
    bone_val = dn["trab"] + p.trab_amp * R.up(trab) + p.marrow_amp * R.up(marrow)
    D[bone] = bone_val[bone]
    cortex_geom = bone_geom.difference(bone_geom.buffer(-anat_px["cortex_px"])).union(anat_px["lab_plate"])
    cort = R.mask(cortex_geom)
    cort_val = dn["cortex"] + 0.25 * p.trab_amp * R.up(trab)
    D[cort] = cort_val[cort]
    if "cortex_breaks" in anat_px:       # arcs of the palatal surface without a cortex
        brk = R.mask(anat_px["cortex_breaks"])
        D[brk] = bone_val[brk]
    if not anat_px["canal"].is_empty:
        cm = R.mask(anat_px["canal"].buffer(anat_px["lamina_px"]))
        D[cm] = dn["lamina"]
        cm = R.mask(anat_px["canal"])
        D[cm] = dn["soft"]
    lam = R.mask(anat_px["lamina"])
    D[lam] = dn["lamina"]
    pdl = R.mask(anat_px["pdl"])
    D[pdl] = dn["pdl"]
    if "cervical_fade" in anat_px:       # washed-out cervical bone: nearly soft tissue, texture left
        fade = R.mask(anat_px["cervical_fade"])
        k = p.cervical_fade[1]
        faded = (1 - k) * D + k * (dn["soft"] + 0.06 + 0.7 * p.trab_amp * R.up(trab))
        D[fade] = faded[fade]

    if p.faint:
        # faint palatal cortex: little mineral at the outer surface, soft tissue denser near it
        band_in = R.mask(anat_px["faint_in"])
        band_out = R.mask(anat_px["faint_out"])
        k = p.faint_level
        fade_val = dn["trab"] - 0.05 + 0.5 * p.trab_amp * R.up(trab)
        D[band_in] = ((1 - k) * D + k * fade_val)[band_in]
        D[band_out] = (D + 0.5 * k * (dn["trab"] - 0.08 - D))[band_out]

    for g_tooth, g_en, g_pulp in [(anat_px["tooth"], anat_px["enamel"], anat_px["pulp"]),
                                  *anat_px["extra_teeth"]]:
        tm = R.mask(g_tooth)
        D[tm] = dn["dentin"]
        D[R.mask(g_en)] = dn["enamel"]
        D[R.mask(g_pulp)] = dn["pulp"]

    if "metal" in anat_px:               # a bracket on the labial crown surface
        D[R.mask(anat_px["metal"])] = p.metal[1]

    img = R.down(D)

    if p.faint:
        # a blurred palatal surface: smear the band across the boundary
        sig = p.faint_blur_mm * (0.5 + 0.5 * p.faint_level)
        bl = cv2.GaussianBlur(img, (0, 0), sigmaX=sig / sc, sigmaY=sig / sr)
        wmask = cv2.resize(R.mask(anat_px["faint_zone"]).astype(np.float32), (w, h),
                           interpolation=cv2.INTER_AREA)
        wmask = cv2.GaussianBlur(wmask, (0, 0), sigmaX=0.6 / sc, sigmaY=0.6 / sr)
        img = img + wmask * (bl - img)

    if p.ghost is not None:
        gm = cv2.resize(R.mask(anat_px["ghost"]).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        gm = cv2.GaussianBlur(gm, (0, 0), 0.6 / s_mean)
        img = img + p.ghost[2] * gm * (dn["dentin"] - img).clip(0, None)

    # scanner: point spread, streaks from the enamel, cupping, correlated noise
    img = cv2.GaussianBlur(img, (0, 0), sigmaX=max(p.psf_mm / sc, 0.3), sigmaY=max(p.psf_mm / sr, 0.3))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if p.streaks is not None:
        n, amp = p.streaks
        cx, cy = anat_px["enamel"].centroid.x, anat_px["enamel"].centroid.y
        dx, dy = xx - cx, yy - cy
        r = np.sqrt(dx * dx + dy * dy) + 1e-3
        for _ in range(n):
            th = rng.uniform(0, np.pi)
            perp = np.abs(dx * np.sin(th) - dy * np.cos(th))
            wid = rng.uniform(*p.streak_width)
            sgn = rng.choice([-1.0, 1.0])
            img += sgn * amp * np.exp(-(perp / wid) ** 2) * np.exp(-r * s_mean / p.streak_decay_mm)
    if "metal" in anat_px:               # strong bright and dark streaks from the bracket
        _, _, n_m, amp_m = p.metal
        g = anat_px["metal"].centroid
        xr = np.random.default_rng([int(1e6 * amp_m) % (2 ** 31), n_m, 97])
        dx, dy = xx - g.x, yy - g.y
        r = np.sqrt(dx * dx + dy * dy) + 1e-3
        for k in range(n_m):
            th = xr.uniform(0, np.pi)
            perp = np.abs(dx * np.sin(th) - dy * np.cos(th))
            sgn = 1.0 if k % 2 == 0 else -1.3
            img += sgn * amp_m * np.exp(-(perp / xr.uniform(0.5, 2.5)) ** 2) * np.exp(-r * s_mean / 20.0)
    if p.cupping > 0:
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        img = img * (1.0 - p.cupping * (1.0 - r2 * 0.5)).astype(np.float32) + p.cupping * 0.3
    noise = rng.standard_normal((h, w)).astype(np.float32)
    if p.noise_corr > 0.3:
        noise = cv2.GaussianBlur(noise, (0, 0), p.noise_corr)
        noise /= noise.std() + 1e-6
    sigma = p.noise + p.noise_poisson * np.sqrt(np.clip(img, 0.0, None) + 0.05)
    img = img + sigma * noise
    return img.astype(np.float32)


def store_values(p: PhantomParams, density: np.ndarray) -> tuple[np.ndarray, int]:
    """Density -> stored file values (uint8 window or uint16 scaled)."""
    if p.bits == 8:
        lo, hi, gamma = p.window
        x = np.clip((density - lo) / (hi - lo), 0.0, 1.0) ** gamma
        return np.round(x * 255.0).astype(np.uint8), 8
    scale, offset = p.store16
    v = np.round(density * scale + offset)
    return np.clip(v, 0, 65535).astype(np.uint16), 16


def contrast_curve(p: PhantomParams, density: np.ndarray) -> np.ndarray:
    """A sigmoid tone curve on the density (``p.curve``; the wide style): another scanner's contrast."""
    if p.curve is None:
        return density
    c, k = p.curve
    lo, hi = -0.1, 1.2

    def f(t):
        return 1.0 / (1.0 + np.exp(-k * (t - c)))

    y = (f((density - lo) / (hi - lo)) - f(0.0)) / (f(1.0) - f(0.0))
    return (lo + (hi - lo) * y).astype(np.float32)
