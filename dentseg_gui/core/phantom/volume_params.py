"""Phantom volumes: one random draw of a patient (dentition, pose) and of the scan (grid, intensities).

Two independent styles:

* ``standard``: a parabolic arch with the six upper anterior teeth (13-23), four
  lower incisors, HU-calibrated intensities (slope/intercept to HU), 0.2-0.4 mm
  voxels, identity or mildly oblique grids.
* ``other``: another arch family (power curve / flattened ellipse), other tooth
  proportions, sometimes first premolars and lower canines, uncalibrated "gray
  values" (air is not -1000), other noise, blur, cupping, voxel sizes (0.15-0.5
  mm, often anisotropic), fields of view and grid directions (permuted axes,
  coronal stacks, larger obliquity). It exists for benchmarks: tooth detection
  is never tuned on it.

Frames: the *head frame* H (mm) has x toward the patient's left, y posterior, z
superior, its origin between the cervical lines of 11 and 21. The patient frame
(LPS) is ``R_head @ H + t_head``: the head turned (yaw), tilted (pitch, roll).
Every upper tooth has its own plane frame: ``N`` (palatal, horizontal in H),
``Z`` (in-plane "up", tipped by the tooth's mesio-distal angulation) and ``M``
(mesio-distal, toward distal); its 2-D anatomy (``anatomy.build_anatomy``) lives
in that plane with X along ``N`` and Y along ``Z``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .params import PhantomParams, PhantomStyleError, sample_base_params, uniform

VOLUME_STYLES = ("standard", "other")

# FDI numbers in arch order, patient's right to left
UPPER_ORDER = (15, 14, 13, 12, 11, 21, 22, 23, 24, 25)
LOWER_ORDER = (43, 42, 41, 31, 32, 33)


@dataclass
class ToothSpec:
    fdi: int
    kind: str                 # central, lateral, canine, premolar, lower_incisor, lower_canine
    p2d: PhantomParams        # tooth profile (and, for upper teeth, its bone / soft tissue)
    md_cej: float             # mesio-distal half width at the cervical line (mm)
    md_max: float             # largest crown mesio-distal half width
    md_edge: float            # half width at the incisal edge / cusp tip
    md_taper: float           # root half width near the apex / at the cervix
    md_enamel: float          # enamel thickness on the mesial / distal faces
    angulation_deg: float     # apex toward distal (crown mesial) tip, mesio-distal
    rotation_deg: float       # rotation of the tooth plane about the vertical
    upper: bool = True
    # filled by placement (head frame)
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    N: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0, 0.0]))
    Z: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))
    M: np.ndarray = field(default_factory=lambda: np.array([1.0, 0.0, 0.0]))


@dataclass
class VolumeParams:
    seed: int
    style: str
    teeth: list[ToothSpec]            # upper teeth in arch order, then lower teeth
    arch: dict[str, float]            # kind, curvature, exponent
    lower: dict[str, float]           # overjet, overbite, lingual tilt
    tongue: tuple[float, float] | None    # (height below the palate, gap) or None
    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    # grid
    spacing: tuple[float, float, float]   # i, j, k mm
    fov: tuple[float, float, float]       # head-frame box size x, y, z (mm)
    fov_shift: tuple[float, float, float]  # 0..1 position of the teeth in the free room
    directions_kind: str
    directions: np.ndarray                # 3x3 in the patient frame (columns +i, +j, +k)
    # intensities (HU-like) and imaging
    hu: dict[str, float]
    trab_amp: float
    trab_scale: float
    psf_mm: float
    noise_hu: float
    noise_corr: float
    streaks: tuple[int, float] | None     # (count, amplitude in HU)
    cupping_hu: float
    storage: dict[str, Any]               # how HU become stored values
    extra: dict[str, Any] = field(default_factory=dict)


def _rot(axis: np.ndarray, deg: float) -> np.ndarray:
    a = np.asarray(axis, float)
    a = a / np.linalg.norm(a)
    t = math.radians(deg)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(t) * k + (1 - math.cos(t)) * (k @ k)


def head_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head frame -> patient frame rotation: yaw about z, pitch about x, roll about y."""
    return _rot([0, 0, 1], yaw) @ _rot([1, 0, 0], pitch) @ _rot([0, 1, 0], roll)


def _tooth_2d(base: PhantomParams, g: np.random.Generator, kind: str, style: str) -> PhantomParams:
    """The 2-D profile parameters of one tooth: the patient's shared values, this tooth's own."""
    p = PhantomParams(**{**base.__dict__})
    p.lower_incisor = None
    p.tongue = None
    p.canal = None      # an incisive canal would be a sheet between the planes in 3-D
    other = style == "other"
    if kind == "central":
        p.root_len = uniform(g, 11.5, 16.5) if not other else uniform(g, 12.5, 18.0)
        p.crown_len = uniform(g, 8.2, 10.5) if not other else uniform(g, 7.5, 11.5)
        p.half_width = uniform(g, 3.0, 3.6) if not other else uniform(g, 2.8, 3.8)
        p.tilt_deg = uniform(g, 12.0, 30.0) if not other else uniform(g, 8.0, 34.0)
    elif kind == "lateral":
        p.root_len = uniform(g, 11.0, 14.5)
        p.crown_len = uniform(g, 7.5, 9.5)
        p.half_width = uniform(g, 2.6, 3.1)
        p.tilt_deg = uniform(g, 12.0, 30.0)
        p.edge_u = uniform(g, -0.9, 0.2)
    elif kind == "canine":
        p.root_len = uniform(g, 15.0, 19.0)
        p.crown_len = uniform(g, 8.5, 11.0)
        p.half_width = uniform(g, 3.6, 4.2)
        p.tilt_deg = uniform(g, 5.0, 22.0)
        p.edge_u = uniform(g, -0.6, 0.4)
        p.cingulum = uniform(g, 0.5, 1.0)
    elif kind == "premolar":
        p.root_len = uniform(g, 12.0, 14.5)
        p.crown_len = uniform(g, 6.5, 8.0)
        p.half_width = uniform(g, 4.0, 4.6)
        p.tilt_deg = uniform(g, 0.0, 12.0)
        p.edge_u = uniform(g, -1.5, -0.5)
        p.edge_r = uniform(g, 0.9, 1.3)
        p.fossa = uniform(g, 0.0, 0.3)
        p.cingulum = uniform(g, 0.6, 1.2)
    else:   # lower incisor / canine: crown up, root down (see soft_tissue in anatomy)
        p.root_len = uniform(g, 11.5, 14.0) if kind == "lower_incisor" else uniform(g, 14.0, 16.5)
        p.crown_len = uniform(g, 7.5, 9.0)
        p.half_width = uniform(g, 2.7, 3.1) if kind == "lower_incisor" else uniform(g, 3.3, 3.8)
        p.edge_u, p.cingulum, p.fossa, p.root_curve = uniform(g, -0.3, 0.3), 0.3, 0.3, uniform(g, -0.3, 0.3)
    return p


def sample_volume_params(seed: int, style: str) -> VolumeParams:
    """Draw one phantom volume; the same seed and style give the same draw."""
    if style not in VOLUME_STYLES:
        raise PhantomStyleError(f"unknown phantom volume style {style!r}; choose one of: "
                                f"{', '.join(VOLUME_STYLES)}")
    other = style == "other"
    g = np.random.default_rng([seed, 71, VOLUME_STYLES.index(style)])
    im = np.random.default_rng([seed, 73, VOLUME_STYLES.index(style)])
    base = sample_base_params(seed, "standard")

    # ---------------- dentition
    uppers = [13, 12, 11, 21, 22, 23]
    if other and g.random() < 0.6:
        uppers = [14, *uppers, 24]
    kinds = {11: "central", 21: "central", 12: "lateral", 22: "lateral", 13: "canine", 23: "canine",
             14: "premolar", 24: "premolar"}
    # the two central incisors share the patient's anatomy, each with its own variation
    central = _tooth_2d(base, g, "central", style)
    teeth: list[ToothSpec] = []
    widths = {"central": uniform(g, 4.0, 4.9) if not other else uniform(g, 3.8, 5.0),
              "lateral": uniform(g, 3.0, 3.6), "canine": uniform(g, 3.6, 4.1), "premolar": uniform(g, 3.3, 3.6)}
    for fdi in uppers:
        kind = kinds[fdi]
        if kind == "central":
            p = PhantomParams(**{**central.__dict__})
            p.root_len += uniform(g, -0.6, 0.6)
            p.crown_len += uniform(g, -0.4, 0.4)
            p.tilt_deg = float(np.clip(p.tilt_deg + uniform(g, -4.0, 4.0), 5.0, 36.0))
            p.root_curve = uniform(g, -0.6, 0.6)
            p.pab_t = tuple(max(0.9, t + uniform(g, -0.4, 0.4)) for t in p.pab_t)
            p.crest_pal = float(np.clip(p.crest_pal + uniform(g, -0.5, 0.5), 0.5, 3.0))
            p.crest_lab = float(np.clip(p.crest_lab + uniform(g, -0.5, 0.5), 0.5, 3.0))
        else:
            p = _tooth_2d(base, g, kind, style)
            p.pab_t = tuple(max(0.9, t + uniform(g, -0.8, 0.8)) for t in base.pab_t)
        w_max = widths[kind] * uniform(g, 0.96, 1.04)
        ang_max = {"central": 5.0, "lateral": 9.0, "canine": 10.0, "premolar": 6.0}[kind]
        if other:
            ang_max *= 1.5
        teeth.append(ToothSpec(
            fdi=fdi, kind=kind, p2d=p,
            md_cej=w_max * uniform(g, 0.72, 0.84), md_max=w_max,
            md_edge=w_max * (uniform(g, 0.85, 0.97) if kind in ("central", "lateral")
                             else uniform(g, 0.25, 0.4)),
            md_taper=uniform(g, 0.3, 0.5), md_enamel=uniform(g, 0.5, 0.9),
            angulation_deg=uniform(g, -1.0, ang_max), rotation_deg=uniform(g, -5.0, 5.0) * (2 if other else 1)))
    lowers = [42, 41, 31, 32]
    if other and g.random() < 0.5:
        lowers = [43, *lowers, 33]
    l_width = uniform(g, 2.5, 2.9)
    for fdi in lowers:
        kind = "lower_canine" if fdi % 10 == 3 else "lower_incisor"
        p = _tooth_2d(base, g, kind, style)
        w = l_width * (1.1 if fdi % 10 == 2 else 1.0) * (1.25 if kind == "lower_canine" else 1.0)
        teeth.append(ToothSpec(fdi=fdi, kind=kind, p2d=p, md_cej=w * uniform(g, 0.7, 0.8), md_max=w,
                               md_edge=w * (uniform(g, 0.9, 1.0) if kind == "lower_incisor" else 0.35),
                               md_taper=uniform(g, 0.3, 0.45), md_enamel=uniform(g, 0.4, 0.7),
                               angulation_deg=uniform(g, -2.0, 4.0), rotation_deg=uniform(g, -5.0, 5.0),
                               upper=False))
    if other:
        arch = {"kind": "power", "curvature": uniform(g, 0.010, 0.030), "exponent": uniform(g, 2.2, 2.8),
                "gap": uniform(g, 0.0, 0.8)}
    else:
        arch = {"kind": "parabola", "curvature": uniform(g, 0.024, 0.040), "exponent": 2.0,
                "gap": uniform(g, 0.0, 0.4) if g.random() < 0.8 else uniform(g, 0.4, 1.5)}
    lower = {"overjet": uniform(g, 0.5, 3.5), "overbite": uniform(g, 0.5, 4.0),
             "tilt_deg": uniform(g, 0.0, 22.0), "open": 0.0}
    if other and g.random() < 0.3:     # mouth a little open: the lower incisors below the upper edges
        lower["overbite"] = -uniform(g, 1.0, 6.0)
    tongue = (uniform(g, 0.0, 5.0), uniform(g, 1.0, 4.0)) if g.random() < 0.5 else None
    lim = (10.0, 10.0, 6.0) if other else (7.0, 7.0, 4.0)
    yaw, pitch, roll = (uniform(g, -a, a) for a in lim)

    # ---------------- scan grid
    if other:
        s = float(math.exp(im.uniform(math.log(0.15), math.log(0.5))))
        sp = [s, s, s]
        if im.random() < 0.35:
            sp[int(im.integers(0, 3))] *= uniform(im, 0.6, 2.5)
        fov = (uniform(im, 45.0, 100.0), uniform(im, 45.0, 85.0), uniform(im, 42.0, 75.0))
    else:
        s = uniform(im, 0.2, 0.45)
        sp = [s, s, s]
        if im.random() < 0.15:
            sp[2] *= uniform(im, 1.2, 2.0)
        fov = (uniform(im, 55.0, 80.0), uniform(im, 50.0, 70.0), uniform(im, 45.0, 60.0))
    shift = (uniform(im, 0.2, 0.8), uniform(im, 0.2, 0.8), uniform(im, 0.2, 0.8))
    d_kind, dirs = _directions(im, other)

    # ---------------- intensities
    if other:
        cortex = uniform(im, 700.0, 1500.0)
        dentin = max(uniform(im, 1400.0, 2300.0), cortex + 250.0)
        enamel = max(uniform(im, 2300.0, 3400.0), dentin + 500.0)
        hu = {"air": uniform(im, -1000.0, -850.0), "soft": uniform(im, -20.0, 110.0),
              "trab": uniform(im, 150.0, 700.0), "cortex": cortex, "dentin": dentin, "enamel": enamel}
    else:
        cortex = uniform(im, 800.0, 1400.0)
        dentin = max(uniform(im, 1500.0, 2200.0), cortex + 250.0)
        enamel = max(uniform(im, 2500.0, 3200.0), dentin + 600.0)
        hu = {"air": -1000.0, "soft": uniform(im, 0.0, 80.0), "trab": uniform(im, 200.0, 600.0),
              "cortex": cortex, "dentin": dentin, "enamel": enamel}
    hu["pdl"] = hu["soft"] + uniform(im, -10.0, 30.0)
    hu["pulp"] = hu["soft"] + uniform(im, 20.0, 90.0)
    hu["lamina"] = hu["trab"] + uniform(im, 0.55, 0.85) * (hu["cortex"] - hu["trab"])
    if other:
        noise = uniform(im, 25.0, 110.0)
        psf = uniform(im, 0.15, 0.5)
        streaks = (int(im.integers(4, 14)), uniform(im, 80.0, 400.0)) if im.random() < 0.5 else None
        cup = uniform(im, 0.0, 300.0)
        if im.random() < 0.5:     # uncalibrated gray values: air well above 0, no HU
            gain = uniform(im, 0.6, 1.6)
            storage = {"kind": "gray", "gain": gain, "offset": uniform(im, 0.0, 800.0), "slope": 1.0,
                       "intercept": 0.0, "dtype": "uint16"}
        else:
            storage = {"kind": "scaled", "slope": float(im.choice([0.5, 1.0, 2.0])),
                       "intercept": float(im.choice([-1000.0, -1024.0, -2048.0])), "dtype": "int16"}
    else:
        noise = uniform(im, 15.0, 60.0)
        psf = uniform(im, 0.12, 0.35)
        streaks = (int(im.integers(4, 12)), uniform(im, 60.0, 250.0)) if im.random() < 0.35 else None
        cup = uniform(im, 0.0, 120.0)
        if im.random() < 0.7:
            storage = {"kind": "hu", "slope": 1.0, "intercept": -1024.0, "dtype": "int16"}
        else:
            storage = {"kind": "hu", "slope": 1.0, "intercept": 0.0, "dtype": "int16"}
    return VolumeParams(
        seed=seed, style=style, teeth=teeth, arch=arch, lower=lower, tongue=tongue,
        yaw_deg=yaw, pitch_deg=pitch, roll_deg=roll, spacing=(sp[0], sp[1], sp[2]), fov=fov, fov_shift=shift,
        directions_kind=d_kind, directions=dirs, hu=hu,
        trab_amp=uniform(im, 0.15, 0.35), trab_scale=uniform(im, 0.35, 0.8), psf_mm=psf,
        noise_hu=noise, noise_corr=uniform(im, 0.4, 1.0), streaks=streaks, cupping_hu=cup, storage=storage)


def _directions(im: np.random.Generator, other: bool) -> tuple[str, np.ndarray]:
    """Directions of +i, +j, +k in the patient frame (columns)."""
    r = im.random()
    if not other:
        if r < 0.6:
            return "identity", np.eye(3)
        if r < 0.75:
            return "k reversed", np.diag([1.0, 1.0, -1.0])
        axis = im.standard_normal(3)
        return "oblique", _rot(axis, uniform(im, 5.0, 20.0))
    if r < 0.25:
        return "identity", np.eye(3)
    if r < 0.45:    # a coronal stack: i left, j inferior, k anterior (or posterior)
        k = np.array([0.0, -1.0 if im.random() < 0.5 else 1.0, 0.0])
        return "coronal", np.column_stack([[1.0, 0, 0], [0, 0, -1.0], k])
    if r < 0.6:     # NIfTI-like: i toward the right, j anterior, k superior
        return "flipped", np.diag([-1.0, -1.0, 1.0])
    axis = im.standard_normal(3)
    base = np.diag([1.0, 1.0, -1.0]) if im.random() < 0.3 else np.eye(3)
    return "oblique", _rot(axis, uniform(im, 8.0, 30.0)) @ base
