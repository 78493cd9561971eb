"""The site2 renderer: the same geometry imaged by "another scanner", in Hounsfield units.

Deliberately built differently from ``render.py`` (whose images train the model), so that
the site2 phantoms test generalisation rather than memory (``styles.py`` says which
differences and why):

* trabeculae are the walls of random Voronoi cells (pores 0.5-2.4 mm), not band-pass noise;
* the cortex is a shell of a given thickness under the bone surface (a distance transform),
  tapering toward the palatal crest to a fraction of itself, with a wobble along the root;
* a sharpening reconstruction kernel (edge overshoot) and an oriented, elongated point spread;
* beam-hardening: a dark band between the upper and the lower incisors' enamel and
  alternating rays from the incisal edge;
* ring artefacts and cupping about an off-centre rotation axis;
* noise with extra high frequencies and a streaky component along one direction;
* a circular field of view padded with a CT padding value.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from .params import PhantomParams
from .placement import Placement
from .render import Raster


def voronoi_walls(rng: np.random.Generator, h: int, w: int, pore_px: float, wall_px: float) -> np.ndarray:
    """0..1 map of the walls between random cells of about ``pore_px`` pixels."""
    n = max(4, int(h * w / max(pore_px, 1.0) ** 2))
    seeds = np.ones((h, w), np.uint8)
    seeds[rng.integers(0, h, n), rng.integers(0, w, n)] = 0
    _, labels = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    edge = np.zeros((h, w), bool)
    edge[:-1] |= labels[:-1] != labels[1:]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    dist = cv2.distanceTransform((~edge).astype(np.uint8), cv2.DIST_L2, 5)
    return np.exp(-(dist / max(wall_px, 0.35)) ** 2).astype(np.float32)


def smooth_field(rng: np.random.Generator, h: int, w: int, sigma_px: float) -> np.ndarray:
    f = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), max(sigma_px, 0.5))
    return f / (f.std() + 1e-6)


def oriented_kernel(sigma_px: float, ratio: float, angle: float) -> np.ndarray:
    s1, s2 = max(sigma_px * ratio, 0.3), max(sigma_px, 0.3)
    r = int(math.ceil(3 * s1))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float32)
    a = xx * math.cos(angle) + yy * math.sin(angle)
    b = -xx * math.sin(angle) + yy * math.cos(angle)
    k = np.exp(-0.5 * ((a / s1) ** 2 + (b / s2) ** 2))
    return (k / k.sum()).astype(np.float32)


def tooth_axis_px(landmarks: dict[str, tuple[float, float]], spacing: tuple[float, float]):
    """(origin px, apical unit vector in mm space, palatal unit vector in mm space)."""
    k = np.array([spacing[1], spacing[0]])
    lab, pal, apex = (np.asarray(landmarks[n], float) for n in ("CEJ_labial", "CEJ_palatal", "apex"))
    o = 0.5 * (lab + pal)
    y = (apex - o) * k
    y /= np.linalg.norm(y)
    x = np.array([-y[1], y[0]])
    if np.dot((pal - o) * k, x) < 0:
        x = -x
    return o, y, x


def render_site2(p: PhantomParams, anat_px: dict[str, Any], pl: Placement, rng: np.random.Generator) -> np.ndarray:
    """Hounsfield units (float32, not yet quantised) of the slice."""
    h, w = pl.height, pl.width
    sr, sc = pl.spacing
    s_mean = 0.5 * (sr + sc)
    ss = 4 if h * w <= 420 * 420 else 3
    R = Raster(h, w, ss)
    q = p.site2
    hu = q["hu"]

    walls = voronoi_walls(rng, h, w, q["pore_mm"] / s_mean, q["wall_mm"] / s_mean)
    soft_var = smooth_field(rng, h, w, 2.5 / s_mean)
    marrow_var = smooth_field(rng, h, w, 1.5 / s_mean)
    trab = hu["marrow"] + 40.0 * marrow_var + (hu["wall"] - hu["marrow"]) * walls

    D = np.full((R.H, R.W), hu["air"], np.float32)
    m = R.mask(anat_px["soft"])
    D[m] = (hu["soft"] + 15.0 * R.up(soft_var))[m]
    bone_geom = anat_px["bone"].union(anat_px["extra_bone"])
    bone = R.mask(bone_geom)
    trab_f = R.up(trab)
    D[bone] = trab_f[bone]

    # cortex: a shell under the bone surface, tapering toward the palatal crest
    depth_mm = cv2.distanceTransform(bone.astype(np.uint8), cv2.DIST_L2, 5) * (s_mean / ss)
    o, ey, ex = tooth_axis_px(anat_px["landmarks"], pl.spacing)
    fy, fx = np.mgrid[0:R.H, 0:R.W].astype(np.float32)
    dx_mm = ((fx + 0.5) / ss - 0.5 - o[0]) * sc
    dy_mm = ((fy + 0.5) / ss - 0.5 - o[1]) * sr
    v = dx_mm * ey[0] + dy_mm * ey[1]
    u = dx_mm * ex[0] + dy_mm * ex[1]
    pab = np.asarray(anat_px["pab"].exterior.coords if hasattr(anat_px["pab"], "exterior")
                     else np.vstack([g.exterior.coords for g in anat_px["pab"].geoms]))
    pv = ((pab[:, 0] - o[0]) * sc) * ey[0] + ((pab[:, 1] - o[1]) * sr) * ey[1]
    v_crest = float(pv.min())
    taper = np.clip((v - v_crest) / q["taper_mm"], 0.0, 1.0)
    taper = taper * taper * (3 - 2 * taper)
    thick = q["cortex_mm"] * np.where(u > 0, q["taper_floor"] + (1 - q["taper_floor"]) * taper, 1.0)
    wob = rng.uniform(0, 2 * math.pi, 2)
    thick = thick * np.clip(1.0 + q["cortex_wobble"] * (0.6 * np.sin(v / 2.3 + wob[0])
                                                        + 0.4 * np.sin(v / 0.9 + wob[1])), 0.0, None)
    shell = np.clip((thick - depth_mm) / 0.12 + 0.5, 0.0, 1.0)
    D[bone] = (trab_f + shell * (hu["cortex"] - trab_f))[bone]
    D[R.mask(anat_px["lab_plate"])] = hu["cortex"]

    if not anat_px["canal"].is_empty:
        D[R.mask(anat_px["canal"].buffer(anat_px["lamina_px"]))] = hu["lamina"]
        D[R.mask(anat_px["canal"])] = hu["soft"]
    D[R.mask(anat_px["lamina"])] = hu["lamina"]
    D[R.mask(anat_px["pdl"])] = hu["pdl"]
    for g_tooth, g_en, g_pulp in [(anat_px["tooth"], anat_px["enamel"], anat_px["pulp"]),
                                  *anat_px["extra_teeth"]]:
        D[R.mask(g_tooth)] = hu["dentin"]
        D[R.mask(g_en)] = hu["enamel"]
        D[R.mask(g_pulp)] = hu["pulp"]
    img = R.down(D)

    # reconstruction kernel (edge overshoot), then an oriented point spread
    amount, sig = q["sharpen"]
    img = img + amount * (img - cv2.GaussianBlur(img, (0, 0), sig / s_mean))
    sig_psf, ratio, ang = q["psf"]
    img = cv2.filter2D(img, -1, oriented_kernel(sig_psf / s_mean, ratio, ang), borderType=cv2.BORDER_REFLECT)

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    en = anat_px["enamel"]
    if q["bh_hu"] and anat_px["extra_teeth"]:      # dark band between the two incisors' enamel
        a = np.array([en.centroid.x, en.centroid.y])
        b_geom = anat_px["extra_teeth"][0][1]
        if not b_geom.is_empty:
            b = np.array([b_geom.centroid.x, b_geom.centroid.y])
            d = b - a
            L = float(np.linalg.norm(d)) + 1e-6
            d /= L
            along = (xx - a[0]) * d[0] + (yy - a[1]) * d[1]
            perp = np.abs(-(xx - a[0]) * d[1] + (yy - a[1]) * d[0])
            outside = np.clip(np.maximum(-along, along - L), 0, None) * s_mean
            img += q["bh_hu"] * np.exp(-(perp * s_mean / 0.8) ** 2) * np.exp(-outside / 6.0)
    n_rays, amp, decay = q["rays"]
    if n_rays:                                     # rays from the incisal edge
        ec = np.asarray(en.exterior.coords if hasattr(en, "exterior") else en.geoms[0].exterior.coords)
        tip = ec[np.argmin(((ec[:, 0] - o[0]) * sc) * ey[0] + ((ec[:, 1] - o[1]) * sr) * ey[1])]
        dx, dy = xx - tip[0], yy - tip[1]
        r_mm = np.sqrt(dx * dx + dy * dy) * s_mean
        for k in range(n_rays):
            th = rng.uniform(0, np.pi)
            perp = np.abs(dx * np.sin(th) - dy * np.cos(th)) * s_mean
            img += (1.0 if k % 2 else -1.0) * amp * rng.uniform(0.4, 1.0) * np.exp(-(perp / 0.35) ** 2) \
                * np.exp(-r_mm / decay)
    cx, cy = q["axis"][0] * w, q["axis"][1] * h
    r_px = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    if q["rings"] is not None:
        n_r, amp_r, _, _ = q["rings"]
        for k in range(n_r):
            rk = rng.uniform(0.05, 0.7) * max(h, w)
            img += (1.0 if k % 2 else -1.0) * amp_r * np.exp(-((r_px - rk) / 0.8) ** 2)
    big_r = math.hypot(max(cx, w - cx), max(cy, h - cy))
    img -= q["cupping_hu"] * (1.0 - (r_px / big_r) ** 2)

    noise = rng.standard_normal((h, w)).astype(np.float32)
    hf = noise - cv2.GaussianBlur(noise, (0, 0), 1.0)
    hf /= hf.std() + 1e-6
    n = (1 - q["noise_hf"]) * noise + q["noise_hf"] * hf
    s_amt, s_ang = q["noise_streak"]
    streak = cv2.filter2D(rng.standard_normal((h, w)).astype(np.float32), -1, oriented_kernel(0.4, 8.0, s_ang))
    streak /= streak.std() + 1e-6
    n = (n + s_amt * streak) / math.sqrt(1.0 + s_amt ** 2)
    img += q["noise_hu"] * (0.8 + 0.4 * np.clip(img / 2000.0, 0.0, 1.0)) * n

    if q["circle"]:                                # circular field of view, CT padding outside
        key = anat_px["key_box"]
        corners = np.array([[key[0], key[1]], [key[2], key[1]], [key[0], key[3]], [key[2], key[3]]])
        c = np.array([0.5 * (w - 1), 0.5 * (h - 1)])
        rad = float(np.max(np.linalg.norm(corners - c, axis=1))) + 2.0 / s_mean
        img[(xx - c[0]) ** 2 + (yy - c[1]) ** 2 > rad ** 2] = q["pad_hu"]
    return img.astype(np.float32)


def store_hu(p: PhantomParams, hu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(stored integers as in the DICOM file, Hounsfield units a reader gets back: stored + intercept)."""
    q = p.site2
    if q["signed"]:
        stored = np.clip(np.round(hu), -32768, 32767).astype(np.int16)
    else:   # 12-bit unsigned with intercept -1024: the padding and anything above 3071 HU clip
        stored = np.clip(np.round(hu - q["intercept"]), 0, 4095).astype(np.uint16)
    return stored, (stored.astype(np.float32) + np.float32(q["intercept"]))
