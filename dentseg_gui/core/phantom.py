"""Synthetic sagittal CBCT slices of an upper central incisor with exact ground truth.

Why: DentSeg has no labelled real scans it may ship, yet LU-Net needs training
data and every measurement, the boundary compensation and the evaluation need
cases whose truth is known exactly. A phantom is built as geometry first, in
millimetres, and the image is rendered *from that geometry* (4x/3x
supersampled, then area-downsampled so edges carry partial volume like a real
scanner). The regions written to the annotation are the same polygons, so the
truth is exact, not traced from pixels.

Frames (all millimetres until the last step):

* tooth frame ``(u, v)``: ``v`` along the root, apical positive, 0 at the
  cervical line; ``u`` palatal positive. Tooth, enamel, pulp, PDL, the
  alveolar process next to the root and the PAB are drawn here.
* anatomical frame ``(X, Y)``: ``X`` posterior (palatal), ``Y`` superior. The
  tooth frame is rotated by the long-axis tilt into it; the palate, nasal
  floor and lip are drawn here (they are horizontal / vertical in a slice, not
  tied to the tooth axis).
* image pixels: ``x = (p*X + ox) / col_spacing``, ``y = (-Y + oy) / row_spacing``
  with ``p = +1`` when the patient faces left (palatal to the right) and
  ``p = -1`` when facing right. Pixel centre ``(row i, col j)`` is at
  ``(x=j, y=i)`` (DESIGN.md).

Ground truth follows DESIGN.md "PAB extent convention": bone palatal to the
root, from the palatal alveolar crest to the line through the apex
perpendicular to the long axis (the axis from the CEJ midpoint to the apex,
as the measurements define it), bounded by the PDL space (excluded) and by the
outer surface of the palatal cortical plate. Enamel is the whole cap; the CEJ
landmarks are where it ends.

Qt-free and torch-free: numpy, cv2 and shapely only. Reproducible: the same
seed and style give identical pixels and JSON.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import LineString, MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from .annotation import Annotation, save_annotation
from .atomic import atomic_write_bytes
from .errors import DentsegError
from .geometry import as_multipolygon, largest_polygon
from .image import SliceImage
from .measurements import ToothFrame, apply_measurements

STYLES = ("standard", "faint", "shifted", "demo")
GENERATOR = "dentseg phantom"
GENERATOR_VERSION = 1

_MIN_SIZE, _MAX_SIZE = 128, 640


class PhantomStyleError(DentsegError, ValueError):
    """An unknown phantom style or a bad argument to the generator."""


@dataclass
class PhantomCase:
    """One synthetic case: the image, its exact annotation and extra truth.

    ``palatal_boundary`` is the exact palatal (bone / soft-tissue) boundary of
    the PAB in pixel coordinates: from the crest corner at the PDL, over the
    crest and up the outer cortical surface to the apex-level line. Boundary
    compensation is evaluated against it. ``faint`` says whether the palatal
    cortical surface was rendered faint / blurred.
    """

    image: SliceImage
    annotation: Annotation
    palatal_boundary: LineString
    faint: bool
    params: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- parameters


@dataclass
class _Params:
    # tooth (mm)
    root_len: float
    crown_len: float          # CEJ line to the start of the incisal rounding
    half_width: float         # labio-palatal half width at the cervical line
    apex_taper: float         # root half width near the apex / at the cervix
    apex_round: float         # exponent of the apical rounding
    root_curve: float         # palatal (+) / labial (-) bend of the root at the apex
    edge_u: float             # incisal edge centre (u)
    edge_r: float             # incisal edge radius
    labial_bulge: float
    cingulum: float
    fossa: float
    enamel_lab: float
    enamel_pal: float
    cej_lab_v: float
    cej_pal_v: float
    pulp_w: float
    pulp_apex_w: float
    pulp_horn: float          # fraction of the crown the pulp horn reaches
    pdl: float
    lamina: float
    crest_lab: float          # crest distance apical of the CEJ (mm)
    crest_pal: float
    lab_plate_crest: float
    lab_plate_apex: float
    pab_t: tuple[float, float, float]          # palatal bone thickness crest/mid/apex
    pab_wave: tuple[tuple[float, float, float], ...]  # (amplitude, wavelength, phase)
    cortex: float
    turn_above_apex: float
    vault_rise: float
    palate_thick: float
    ans_len: float
    mucosa: float
    gingiva: float
    lip_thick: float
    lip_line: float           # stomion above the incisal edge (mm)
    canal: tuple[float, float] | None   # (relative position in the bone, width) or None
    lower_incisor: tuple[float, float, float] | None  # (overjet, overbite, tilt deg)
    tongue: tuple[float, float] | None  # (gap below palate, size)
    # placement
    tilt_deg: float
    facing_left: bool
    # imaging
    spacing: tuple[float, float]     # (row, col) mm
    fov: tuple[float, float]         # (height, width) mm requested
    shift: tuple[float, float]       # 0..1 position of the tooth in the free space
    faint: bool
    dens: dict[str, float]
    trab_scale: float
    trab_amp: float
    psf_mm: float
    noise: float
    noise_poisson: float
    noise_corr: float
    streaks: tuple[int, float] | None
    cupping: float
    ghost: tuple[float, float, float] | None  # (du mm, dv mm, weight)
    bits: int
    window: tuple[float, float, float]   # 8-bit: lo, hi, gamma
    store16: tuple[float, float]         # 16-bit: scale, offset (value = D*scale + offset)
    faint_blur_mm: float
    faint_level: float        # 0..1: how much of the palatal cortex is lost


def _u(rng: np.random.Generator, a: float, b: float) -> float:
    return float(rng.uniform(a, b))


def _sample_params(seed: int, style: str) -> _Params:
    """Draw the case. Geometry and imaging use separate streams so ``faint`` and
    ``shifted`` keep the anatomy of the ``standard`` case with the same seed."""
    g = np.random.default_rng([seed, 11])
    im = np.random.default_rng([seed, 23])

    root_len = _u(g, 11.0, 17.0)
    crown_len = _u(g, 7.4, 11.0)
    half_width = _u(g, 2.9, 3.7)
    t_c = _u(g, 1.0, 2.6)
    t_m = t_c + _u(g, 0.3, 2.5)
    t_a = t_m + _u(g, 0.0, 2.5)
    waves = tuple((_u(g, 0.05, 0.3), _u(g, 2.5, 9.0), _u(g, 0, 2 * math.pi)) for _ in range(3))
    p = _Params(
        root_len=root_len, crown_len=crown_len, half_width=half_width,
        apex_taper=_u(g, 0.28, 0.5), apex_round=_u(g, 3.0, 7.0),
        root_curve=_u(g, -0.7, 0.7),
        edge_u=_u(g, -1.1, 0.3), edge_r=_u(g, 0.45, 0.75),
        labial_bulge=_u(g, 0.25, 0.8), cingulum=_u(g, 0.2, 0.7), fossa=_u(g, 0.3, 1.0),
        enamel_lab=_u(g, 0.85, 1.3), enamel_pal=_u(g, 0.5, 0.9),
        cej_lab_v=_u(g, -0.4, 0.3), cej_pal_v=_u(g, -0.5, 0.6),
        pulp_w=_u(g, 0.35, 0.7), pulp_apex_w=_u(g, 0.1, 0.2), pulp_horn=_u(g, 0.35, 0.6),
        pdl=_u(g, 0.15, 0.3), lamina=_u(g, 0.15, 0.3),
        crest_lab=_u(g, 0.5, 3.0), crest_pal=_u(g, 0.5, 3.0),
        lab_plate_crest=_u(g, 0.3, 0.8), lab_plate_apex=_u(g, 0.8, 2.6),
        pab_t=(t_c, t_m, t_a), pab_wave=waves, cortex=_u(g, 0.45, 1.1),
        turn_above_apex=_u(g, 1.0, 3.0), vault_rise=_u(g, 1.0, 4.5), palate_thick=_u(g, 3.5, 7.0),
        ans_len=_u(g, 2.0, 5.0), mucosa=_u(g, 1.8, 3.8), gingiva=_u(g, 0.8, 1.6),
        lip_thick=_u(g, 10.0, 15.0), lip_line=_u(g, 0.0, 4.0),
        canal=(_u(g, 0.3, 0.7), _u(g, 1.2, 2.6)) if g.random() < 0.3 else None,
        lower_incisor=((_u(g, 0.0, 3.0), _u(g, 0.5, 4.5), _u(g, -10, 20))
                       if g.random() < 0.55 else None),
        tongue=(_u(g, 1.0, 6.0), _u(g, 0.5, 1.0)) if g.random() < 0.45 else None,
        tilt_deg=_u(g, 0.0, 33.0), facing_left=bool(g.random() < 0.5),
        # imaging
        spacing=(0.0, 0.0), fov=(0.0, 0.0), shift=(_u(im, 0.2, 0.8), _u(im, 0.2, 0.8)),
        faint=bool(im.random() < 0.25),
        dens={
            "air": _u(im, -0.02, 0.04), "soft": _u(im, 0.25, 0.33), "pdl": _u(im, 0.24, 0.32),
            "pulp": _u(im, 0.28, 0.36), "trab": _u(im, 0.45, 0.56), "cortex": _u(im, 0.72, 0.85),
            "lamina": _u(im, 0.62, 0.78), "dentin": _u(im, 0.78, 0.88), "enamel": _u(im, 1.0, 1.12),
        },
        trab_scale=_u(im, 0.35, 0.8), trab_amp=_u(im, 0.08, 0.18),
        psf_mm=_u(im, 0.1, 0.28), noise=_u(im, 0.01, 0.035), noise_poisson=_u(im, 0.0, 0.03),
        noise_corr=_u(im, 0.3, 0.9),
        streaks=(int(im.integers(4, 12)), _u(im, 0.02, 0.07)) if im.random() < 0.35 else None,
        cupping=_u(im, 0.0, 0.06),
        ghost=(_u(im, -2.5, 2.5), _u(im, -1.5, 1.5), _u(im, 0.1, 0.3)) if im.random() < 0.35 else None,
        bits=16 if im.random() < 0.3 else 8,
        window=(_u(im, -0.08, 0.05), _u(im, 0.95, 1.2), _u(im, 0.8, 1.25)),
        store16=(0.0, 0.0), faint_blur_mm=_u(im, 0.5, 1.0), faint_level=_u(im, 0.7, 1.0),
    )
    # spacing: mostly 0.1-0.2 mm, tail to 0.4; ~15 % slightly anisotropic
    s = 0.1 + 0.3 * float(im.beta(1.0, 6.0))
    aniso = _u(im, 0.85, 1.15) if im.random() < 0.15 else 1.0
    p.spacing = (s, s * aniso)
    fw = _u(im, 35.0, 55.0)
    p.fov = (fw * _u(im, 0.92, 1.12), fw)
    if im.random() < 0.5:   # HU-like, air near 0 after an offset of 1000 or 1024
        p.store16 = (_u(im, 2500, 3100), float(im.choice([1000.0, 1024.0])) - 1000.0)
    else:                   # plain 12-bit range
        p.store16 = (_u(im, 2400, 3300), _u(im, 20, 300))

    if style == "faint":
        p.faint = True
    elif style == "shifted":
        sh = np.random.default_rng([seed, 37])
        s = float(math.exp(sh.uniform(math.log(0.08), math.log(0.5))))
        aniso = _u(sh, 0.75, 1.25) if sh.random() < 0.4 else 1.0
        p.spacing = (s, s * aniso)
        fw = _u(sh, 28.0, 75.0)
        p.fov = (fw * _u(sh, 0.8, 1.25), fw)
        p.window = (_u(sh, -0.35, 0.25), _u(sh, 0.75, 1.7), _u(sh, 0.5, 2.0))
        p.noise *= _u(sh, 1.5, 3.0)
        p.noise_poisson *= _u(sh, 1.0, 3.0)
        p.psf_mm *= _u(sh, 1.3, 2.2)
        p.cupping = _u(sh, 0.05, 0.15)
        p.bits = 16 if sh.random() < 0.5 else 8
        p.store16 = (_u(sh, 800, 9000), _u(sh, 0, 8000))
        p.tilt_deg = _u(sh, 0.0, 35.0)
    elif style == "demo":
        p = _demo_params(p)
    return p


def _demo_params(p: _Params) -> _Params:
    """A clean, typical case: average anatomy, mild noise, no artefacts."""
    p.root_len, p.crown_len, p.half_width = 14.0, 9.6, 3.3
    p.apex_taper, p.apex_round, p.root_curve = 0.38, 5.0, 0.25
    p.edge_u, p.edge_r, p.labial_bulge, p.cingulum, p.fossa = -0.5, 0.6, 0.5, 0.45, 0.7
    p.enamel_lab, p.enamel_pal, p.cej_lab_v, p.cej_pal_v = 1.1, 0.7, 0.0, 0.2
    p.pulp_w, p.pulp_apex_w, p.pulp_horn = 0.7, 0.15, 0.5
    p.pdl, p.lamina, p.crest_lab, p.crest_pal = 0.22, 0.22, 1.6, 1.4
    p.lab_plate_crest, p.lab_plate_apex = 0.6, 1.6
    p.pab_t = (1.8, 3.2, 4.8)
    p.pab_wave = ((0.2, 6.0, 0.5), (0.1, 3.5, 2.0), (0.0, 5.0, 0.0))
    p.cortex, p.turn_above_apex, p.vault_rise, p.palate_thick = 0.8, 2.0, 2.5, 5.5
    p.ans_len, p.mucosa, p.gingiva, p.lip_thick, p.lip_line = 3.5, 2.8, 1.2, 12.5, 2.0
    p.canal, p.lower_incisor, p.tongue = None, (2.0, 2.5, 8.0), (3.0, 0.8)
    p.tilt_deg, p.facing_left = 20.0, True
    p.spacing, p.fov, p.shift, p.faint = (0.125, 0.125), (48.0, 48.0), (0.5, 0.5), False
    p.dens = {"air": 0.0, "soft": 0.29, "pdl": 0.27, "pulp": 0.31, "trab": 0.5, "cortex": 0.8,
              "lamina": 0.72, "dentin": 0.83, "enamel": 1.06}
    p.trab_scale, p.trab_amp, p.psf_mm, p.noise, p.noise_poisson = 0.4, 0.14, 0.15, 0.012, 0.01
    p.noise_corr, p.streaks, p.cupping, p.ghost, p.bits = 0.6, None, 0.02, None, 8
    p.window = (0.0, 1.1, 1.0)
    return p


# --------------------------------------------------------------------------- tooth frame


class _Tooth:
    """Outline functions of the incisor in the tooth frame (u palatal +, v apical +)."""

    def __init__(self, p: _Params):
        self.p = p

    def centre(self, v: np.ndarray) -> np.ndarray:
        p = self.p
        x = np.clip(np.asarray(v, float) / p.root_len, 0.0, None)
        return p.root_curve * x ** 2

    def root_half(self, v: np.ndarray) -> np.ndarray:
        p = self.p
        x = np.clip(np.asarray(v, float) / p.root_len, 0.0, 1.0)
        return p.half_width * (1 - (1 - p.apex_taper) * x) * np.sqrt(np.clip(1 - x ** p.apex_round, 0, 1))

    def root_ref(self, v: np.ndarray) -> np.ndarray:
        """Palatal root surface without the apical rounding: the bone follows this."""
        p = self.p
        x = np.asarray(v, float) / p.root_len
        return self.centre(v) + p.half_width * (1 - (1 - p.apex_taper) * np.clip(x, 0, 1.2))

    def _crown(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.p
        s = np.clip(-np.asarray(v, float) / p.crown_len, 0.0, 1.0)
        lab = (1 - s) * -p.half_width + s * (p.edge_u - p.edge_r) - p.labial_bulge * np.sin(np.pi * s)
        pal = ((1 - s) * p.half_width + s * (p.edge_u + p.edge_r)
               + p.cingulum * np.exp(-((s - 0.18) / 0.14) ** 2) * (s > 0) * np.minimum(1, s / 0.05)
               - p.fossa * np.exp(-((s - 0.58) / 0.22) ** 2))
        return lab, pal

    def labial(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, float)
        lab_c, _ = self._crown(v)
        return np.where(v < 0, lab_c, self.centre(v) - self.root_half(v))

    def palatal(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, float)
        _, pal_c = self._crown(v)
        return np.where(v < 0, pal_c, self.centre(v) + self.root_half(v))

    def enamel_thickness(self, v: np.ndarray, side: str) -> np.ndarray:
        p = self.p
        v = np.asarray(v, float)
        cej = p.cej_lab_v if side == "lab" else p.cej_pal_v
        e_max = p.enamel_lab if side == "lab" else p.enamel_pal
        q = np.clip((cej - v) / (cej + p.crown_len), 0.0, 1.0)
        r = np.minimum(q / 0.5, 1.0)
        return e_max * (1 - (1 - r) ** 2)

    def apex(self) -> tuple[float, float]:
        return float(self.centre(self.p.root_len)), float(self.p.root_len)


def _arc(cu: float, cv: float, ru: float, rv: float, a0: float, a1: float, n: int = 16) -> np.ndarray:
    t = np.linspace(a0, a1, n)
    return np.column_stack([cu + ru * np.cos(t), cv + rv * np.sin(t)])


def _polygon(pts: np.ndarray) -> Polygon:
    pts = np.asarray(pts, float)
    keep = np.ones(len(pts), bool)
    keep[1:] = np.any(np.abs(np.diff(pts, axis=0)) > 1e-9, axis=1)
    poly = Polygon(pts[keep])
    if not poly.is_valid:
        poly = largest_polygon(shapely.make_valid(poly)) or Polygon()
    return poly


def _tooth_geometry(t: _Tooth) -> dict[str, Any]:
    """Tooth outline, enamel cap, pulp and landmarks in the tooth frame."""
    p = t.p
    L, Lc = p.root_len, p.crown_len
    tip = _arc(p.edge_u, -Lc, p.edge_r, p.edge_r, np.pi, 2 * np.pi, 17)[1:-1]
    # enamel outer surface: CEJ_labial -> round the incisal edge -> CEJ_palatal. The tooth
    # outline reuses these very vertices, so the cap lies exactly on the tooth surface.
    ve_l = np.linspace(p.cej_lab_v, -Lc, 40)
    ve_p = np.linspace(-Lc, p.cej_pal_v, 40)
    outer = np.vstack([np.column_stack([t.labial(ve_l), ve_l]), tip,
                       np.column_stack([t.palatal(ve_p), ve_p])])
    x = np.sin(0.5 * np.pi * np.linspace(0.0, 1.0, 70))        # dense near the apex
    vr_l = (p.cej_lab_v + (L - p.cej_lab_v) * x)[::-1][:-1]     # apex -> just above CEJ_labial
    vr_p = (p.cej_pal_v + (L - p.cej_pal_v) * x)[1:-1]          # just above CEJ_palatal -> near apex
    tooth = _polygon(np.vstack([np.column_stack([t.labial(vr_l), vr_l]), outer,
                                np.column_stack([t.palatal(vr_p), vr_p])]))

    # dentin tip: the most incisal level where the dentin is still >= 1.1 mm wide
    vgrid = np.linspace(min(p.cej_lab_v, p.cej_pal_v), -Lc, 200)
    inner_gap = ((t.palatal(vgrid) - t.enamel_thickness(vgrid, "pal"))
                 - (t.labial(vgrid) + t.enamel_thickness(vgrid, "lab")))
    ok = np.flatnonzero(inner_gap >= 1.1)
    v_d = float(vgrid[ok[-1]]) if len(ok) else float(vgrid[len(vgrid) // 2])
    v_d = max(v_d, -Lc + 0.9)
    vi_p = np.linspace(p.cej_pal_v, v_d, 40)[1:]
    vi_l = np.linspace(v_d, p.cej_lab_v, 40)[:-1]
    in_pal = np.column_stack([t.palatal(vi_p) - t.enamel_thickness(vi_p, "pal"), vi_p])
    in_lab = np.column_stack([t.labial(vi_l) + t.enamel_thickness(vi_l, "lab"), vi_l])
    u_dl, u_dp = in_lab[0, 0], in_pal[-1, 0]
    dtip = _arc(0.5 * (u_dl + u_dp), v_d, 0.5 * (u_dp - u_dl), 0.5 * (u_dp - u_dl) * 0.9,
                0.0, -np.pi, 13)[1:-1]
    enamel = _polygon(np.vstack([outer, in_pal, dtip, in_lab]))

    # pulp: chamber with a horn toward the edge, canal tapering to the apex
    v_h = -p.pulp_horn * Lc
    vp = np.concatenate([np.linspace(v_h, 0.0, 20, endpoint=False), np.linspace(0.0, L - 0.35, 40)])
    mid = 0.5 * (t.labial(vp) + t.palatal(vp))
    width = t.palatal(vp) - t.labial(vp)
    x = np.clip(vp / L, 0, 1)
    half = np.where(vp < 0, p.pulp_w * np.sqrt(np.clip(1 - (vp / v_h) ** 2, 0.02, 1)),
                    p.pulp_apex_w + (p.pulp_w - p.pulp_apex_w) * (1 - x) ** 1.3)
    half = np.minimum(half, 0.22 * width)
    pulp = _polygon(np.vstack([np.column_stack([mid - half, vp]),
                               np.column_stack([mid[::-1] + half[::-1], vp[::-1]])]))

    landmarks = {
        "CEJ_labial": (float(t.labial(p.cej_lab_v)), p.cej_lab_v),
        "CEJ_palatal": (float(t.palatal(p.cej_pal_v)), p.cej_pal_v),
        "apex": t.apex(),
    }
    return {"tooth": tooth, "enamel": enamel, "pulp": pulp, "landmarks": landmarks}


def _bone_tooth_frame(t: _Tooth) -> dict[str, Any]:
    """Alveolar process next to the root (tooth frame): the labial plate outline,
    the palatal surface and the crests. Returns point lists to be joined with the
    palate and nasal floor in the anatomical frame."""
    p = t.p
    L = p.root_len
    v_cl = p.cej_lab_v + p.crest_lab
    v_cp = p.cej_pal_v + p.crest_pal
    v_top = L + p.turn_above_apex

    # palatal thickness: smooth through crest / mid / apex values plus undulation
    def thick(v: np.ndarray) -> np.ndarray:
        x = np.clip((v - v_cp) / max(L - v_cp, 1e-6), 0, 1.3)
        tc, tm, ta = p.pab_t
        base = tc * (1 - x) * (1 - 2 * x) + 4 * tm * x * (1 - x) + ta * x * (2 * x - 1)
        base = np.maximum(base, min(tc, tm, ta))
        wave = sum(a * np.sin(2 * np.pi * v / lam + ph) for a, lam, ph in p.pab_wave)
        return np.maximum(base + wave, 0.9)

    # palatal outer surface u_s(v), from the crest to the turn into the palate
    r_c = min(1.2, 0.5 * p.pab_t[0] + 0.3)              # crest rounding height
    vs = np.linspace(v_cp + r_c, v_top, 60)
    surf = np.column_stack([t.root_ref(vs) + p.pdl + thick(vs), vs])
    # crest cap: from the root surface at the crest level out to the surface, bulging coronally
    u_in = float(t.palatal(v_cp))
    u_out = float(surf[0, 0])
    crest = np.column_stack([u_in + (u_out - u_in) * np.linspace(0, 1, 12) ** 0.7,
                             v_cp + r_c * (1 - np.cos(0.5 * np.pi * np.linspace(0, 1, 12)))])
    pal_line = np.vstack([crest, surf[1:]])              # coronal -> apical along the bone surface

    # labial plate outer surface
    vl = np.linspace(v_cl + 0.4, L + 0.5, 40)
    xl = np.clip((vl - v_cl) / (L - v_cl), 0, 1.1)
    plate = p.lab_plate_crest + (p.lab_plate_apex - p.lab_plate_crest) * xl ** 0.8
    lab_surf = np.column_stack([t.labial(vl) - p.pdl - plate, vl])
    # labial crest: from the root surface to the plate surface
    u_lin = float(t.labial(v_cl))
    lab_crest = np.column_stack([u_lin + (lab_surf[0, 0] - u_lin) * np.linspace(0, 1, 8) ** 0.7,
                                 v_cl + 0.4 * (1 - np.cos(0.5 * np.pi * np.linspace(0, 1, 8)))])
    lab_line = np.vstack([lab_crest, lab_surf[1:]])      # coronal -> apical
    # the labial plate itself (outer surface to the root): rendered all cortical
    vin = vl[::-1]
    lab_plate = _polygon(np.vstack([lab_line, np.column_stack([t.labial(vin) + 0.05, vin])]))
    return {"pal_line": pal_line, "lab_line": lab_line, "v_cp": v_cp, "v_cl": v_cl, "thick": thick,
            "lab_plate": lab_plate}


# --------------------------------------------------------------------------- anatomy frame


def _bezier(p0, p1, p2, p3, n: int = 30) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    p0, p1, p2, p3 = (np.asarray(q, float) for q in (p0, p1, p2, p3))
    return ((1 - t) ** 3) * p0 + 3 * ((1 - t) ** 2) * t * p1 + 3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3


class _Frame:
    """Tooth frame -> anatomical frame (X posterior, Y superior), rotation by the tilt."""

    def __init__(self, tilt_rad: float):
        s, c = math.sin(tilt_rad), math.cos(tilt_rad)
        self.a = np.array([s, c])     # apical
        self.b = np.array([c, -s])    # palatal

    def pts(self, uv: np.ndarray) -> np.ndarray:
        uv = np.asarray(uv, float)
        return uv[..., :1] * self.b + uv[..., 1:2] * self.a

    def geom(self, g: BaseGeometry) -> BaseGeometry:
        a, b = self.a, self.b
        return affinity.affine_transform(g, [b[0], a[0], b[1], a[1], 0.0, 0.0])

    def vec(self, duv) -> np.ndarray:
        return duv[0] * self.b + duv[1] * self.a


def _build_anatomy(p: _Params) -> dict[str, Any]:
    """Every structure as a shapely polygon in the anatomical frame (mm)."""
    t = _Tooth(p)
    tg = _tooth_geometry(t)
    lm_t = tg["landmarks"]
    # the axis exactly as the measurements define it (points already in mm: unit spacing)
    frame_t = ToothFrame.from_landmarks(lm_t, (1.0, 1.0))
    x_t, y_t = frame_t.ex, frame_t.ey
    phi = math.atan2(y_t[0], y_t[1])                    # measured axis vs the v axis
    fr = _Frame(math.radians(p.tilt_deg) - phi)         # so the measured tilt is tilt_deg

    tooth_t = tg["tooth"]
    pdl_outer_t = tooth_t.buffer(p.pdl, quad_segs=16)
    bt = _bone_tooth_frame(t)
    L = p.root_len

    # --- alveolar process + palate + nasal floor, one outline in the anatomical frame
    pal_line = fr.pts(bt["pal_line"])                    # crest -> top of the alveolar surface
    lab_line = fr.pts(bt["lab_line"])
    top_pal = pal_line[-1]
    dir_pal = pal_line[-1] - pal_line[-4]
    dir_pal /= np.linalg.norm(dir_pal)
    y_vault = top_pal[1] + p.vault_rise
    y_nf = y_vault + p.palate_thick
    far = 120.0
    vault = _bezier(top_pal, top_pal + 3.0 * dir_pal, (top_pal[0] + 5.0, y_vault),
                    (top_pal[0] + 14.0, y_vault), 24)
    top_lab = lab_line[-1]
    dir_lab = lab_line[-1] - lab_line[-4]
    dir_lab /= np.linalg.norm(dir_lab)
    ans_base = np.array([top_lab[0] - 1.5, y_nf - 1.6])
    if ans_base[1] < top_lab[1] + 1.0:
        ans_base[1] = top_lab[1] + 1.0
    front = _bezier(top_lab, top_lab + 1.5 * dir_lab, ans_base + np.array([0.5, -1.5]), ans_base, 16)
    ans_tip = np.array([ans_base[0] - p.ans_len, max(y_nf - 0.3, ans_base[1] + 0.4)])
    nf_start = np.array([ans_base[0] + 1.0, max(y_nf, ans_base[1] + 0.8)])
    outline = np.vstack([
        lab_line,                                        # labial crest -> up the labial plate
        front[1:], [ans_tip], [nf_start],                # anterior maxilla, ANS, nasal floor
        [[far, nf_start[1] + 0.5], [far, y_vault]],      # far posterior
        vault[::-1][1:], pal_line[::-1][1:],             # palate -> down the palatal surface -> crest
    ])
    bone = _polygon(outline)

    tooth = fr.geom(tooth_t)
    pdl_outer = fr.geom(pdl_outer_t)
    enamel = fr.geom(tg["enamel"])
    pulp = fr.geom(tg["pulp"])
    lm = {k: tuple(fr.pts(np.asarray(v))) for k, v in lm_t.items()}

    # --- incisive canal: a channel inside the palatal bone, from mid-root up through the palate
    canal = Polygon()
    if p.canal is not None:
        rel, w = p.canal
        vv = np.linspace(0.45 * L, L + p.turn_above_apex, 20)
        inner = t.root_ref(vv) + p.pdl + p.lamina
        outer_u = t.root_ref(vv) + p.pdl + bt["thick"](vv) - p.cortex
        room = outer_u - inner
        if np.all(room > w + 0.6):
            cu = inner + 0.3 + w / 2 + rel * (room - w - 0.6)
            line_t = np.column_stack([cu, vv])
            line = fr.pts(line_t)
            ext = line[-1] + fr.a * 15.0
            canal_line = LineString(np.vstack([line, ext]))
            canal = canal_line.buffer(w / 2, quad_segs=8)
            canal = canal.intersection(bone.buffer(-0.0))

    # --- PAB truth: bone, palatal of the root centre line, below the apex-level line
    v_lo = -p.crown_len - 10.0
    vcl = np.linspace(v_lo, L + 20.0, 80)
    cen = t.centre(np.clip(vcl, 0, L)) + np.where(vcl > L, 2 * p.root_curve / L * (vcl - L), 0.0)
    half_pal_t = _polygon(np.vstack([np.column_stack([cen, vcl]), [[200.0, L + 20.0], [200.0, v_lo]]]))
    ap_t = np.asarray(lm_t["apex"])
    cap_t = Polygon([ap_t - 300 * x_t, ap_t + 300 * x_t, ap_t + 300 * x_t - 300 * y_t,
                     ap_t - 300 * x_t - 300 * y_t])
    half_pal, cap = fr.geom(half_pal_t), fr.geom(cap_t)
    pab = bone.intersection(half_pal).intersection(cap).difference(pdl_outer)
    if not canal.is_empty:
        pab = pab.difference(canal)
    pab = as_multipolygon(pab)
    pab = MultiPolygon([g for g in pab.geoms if g.area > 0.05])
    pal_boundary = LineString(pal_line).difference(pdl_outer).intersection(cap)
    pal_boundary = _longest_line(pal_boundary)

    # --- soft tissue and the lower incisor
    soft, extra_teeth, extra_bone, y_inc = _soft_tissue(p, t, fr, tooth, bone, ans_tip, y_nf, y_vault)

    return {
        "frame": fr, "tooth": tooth, "enamel": enamel, "pulp": pulp, "pdl_outer": pdl_outer,
        "bone": bone, "canal": canal, "pab": pab, "pal_boundary": pal_boundary,
        "pal_surface": LineString(pal_line), "soft": soft, "landmarks": lm,
        "extra_teeth": extra_teeth, "extra_bone": extra_bone, "y_inc": y_inc, "tooth_t": tooth_t,
        "lab_plate": fr.geom(bt["lab_plate"]).intersection(bone),
    }


def _soft_tissue(p: _Params, t: _Tooth, fr: _Frame, tooth: Polygon, bone: Polygon,
                 ans_tip: np.ndarray, y_nf: float, y_vault: float):
    """Lips, mucosa, gingiva, tongue and the lower incisor (anatomical frame, mm).

    Returns (soft tissue geometry, [(lower tooth, enamel, pulp)], lower alveolar bone, Y of
    the upper incisal edge)."""
    L = p.root_len
    coords = np.asarray(tooth.exterior.coords)
    y_inc = float(coords[:, 1].min())
    x_lab_ref = float(coords[:, 0].min())
    y_st = y_inc + p.lip_line                            # stomion (lip line)
    far = 120.0
    y_bot = y_inc - 40.0

    # upper lip profile: vermilion bulge, subnasale hollow, then the nose tip forward
    y_sn = y_nf + 1.5
    yy = np.linspace(y_st, y_nf + 40.0, 40)
    q = np.clip((yy - y_st) / max(y_sn - y_st, 3.0), 0.0, 1.0)
    bulge = 1.8 * np.sin(np.pi * np.minimum(q / 0.7, 1.0)) * (q < 0.7) - 0.8 * np.sin(np.pi * q) ** 2 * (q >= 0.4)
    nose = np.clip(yy - y_sn, 0.0, None)
    x_skin = x_lab_ref - p.lip_thick - bulge + 0.12 * (yy - y_st) - 0.9 * nose
    skin = np.column_stack([x_skin, yy])
    lip_bottom = _bezier(skin[0], skin[0] + [2.0, -2.5], [x_lab_ref - 1.0, y_st - 2.0],
                         [x_lab_ref + 1.5, y_st - 0.5], 14)
    # inner edge: up the tooth's long axis (inside tooth and bone), then up past the ANS
    axis_pts = np.vstack([fr.pts(np.array([[0.0, v] for v in np.linspace(-p.crown_len * 0.6, L, 8)])),
                          [[ans_tip[0] + 4.0, y_nf - 1.0], [ans_tip[0] + 4.0, y_nf + 40.0]]])
    lip = _polygon(np.vstack([skin[::-1], lip_bottom[1:], axis_pts]))
    vv = np.linspace(-2.0, 3.5, 12)
    neck_t = Polygon(np.vstack([np.column_stack([t.labial(vv) - p.gingiva, vv]),
                                np.column_stack([t.palatal(vv[::-1]) + p.gingiva, vv[::-1]])]))
    parts = [lip, bone.buffer(p.mucosa, quad_segs=6), fr.geom(neck_t)]

    # lower incisor crown behind ours (overjet / overbite), its alveolus and the lower lip
    extra_teeth, extra_bone = [], Polygon()
    x_behind = float(coords[:, 0].max()) + 1.5
    if p.lower_incisor is not None:
        overjet, overbite, ltilt = p.lower_incisor
        pl = _Params(**{**p.__dict__})
        pl.root_len, pl.crown_len, pl.half_width, pl.edge_u = 12.5, 8.0, 2.9, 0.0
        pl.cingulum, pl.fossa, pl.root_curve = 0.3, 0.3, 0.0
        lg = _tooth_geometry(_Tooth(pl))
        lfr = _Frame(math.radians(180.0 + ltilt))        # crown up, root down
        mirror = [-1.0, 0.0, 0.0, 1.0, 0.0, 0.0]          # lingual side faces posterior
        ltooth, lenamel, lpulp = (affinity.affine_transform(lfr.geom(lg[k]), mirror)
                                  for k in ("tooth", "enamel", "pulp"))
        lb = np.asarray(ltooth.exterior.coords)
        l_top = lb[np.argmax(lb[:, 1])]
        y_contact = y_inc + overbite
        cut = LineString([(-200.0, y_contact - 0.5), (200.0, y_contact - 0.5)]).intersection(tooth)
        x_pal = float(cut.bounds[2]) if not cut.is_empty else float(coords[:, 0].max())
        near_top = lb[lb[:, 1] > l_top[1] - 1.0]
        dx = x_pal + overjet - float(np.min(near_top[:, 0]))
        dy = y_contact - l_top[1]
        ltooth, lenamel, lpulp = (affinity.translate(g, dx, dy) for g in (ltooth, lenamel, lpulp))
        ltooth = largest_polygon(ltooth.difference(tooth.buffer(0.15))) or Polygon()
        lenamel = lenamel.intersection(ltooth)
        lpulp = lpulp.intersection(ltooth)
        extra_teeth.append((ltooth, lenamel, lpulp))
        # lower alveolar bone round the root, from ~1.5 mm below its CEJ, rounded crest
        y_lcrest = y_contact - pl.crown_len - pl.edge_r - 1.5
        lower_half = box(-200.0, y_bot - 20.0, 200.0, y_lcrest)
        socket = ltooth.buffer(0.9, quad_segs=8).intersection(lower_half)
        extra_bone = as_multipolygon(socket.buffer(-0.6, quad_segs=8).buffer(0.6, quad_segs=8))
        lbx = np.asarray(ltooth.exterior.coords)
        lx = float(lbx[:, 0].min())
        x_behind = float(lbx[:, 0].max()) + 1.0
        # lower lip: in front of the lower incisor, touching its labial face, convex in front
        low_y = np.linspace(y_st - 0.6, y_bot, 14)
        lab_x = np.array([_x_at(ltooth.union(extra_bone), y, side="min", default=lx) for y in low_y]) + 0.3
        qq = np.clip((y_st - low_y) / 9.0, 0.0, 1.0)
        front_x = lx - p.lip_thick * 0.85 - 2.0 * np.sin(np.pi * np.minimum(qq / 0.6, 1.0)) * (qq < 0.6) \
            + 1.5 * np.clip(qq - 0.6, 0.0, None)
        low_lip = _polygon(np.vstack([np.column_stack([lab_x, low_y]),
                                      np.column_stack([front_x[::-1], low_y[::-1]])]))
        parts += [low_lip, extra_bone.buffer(0.8)]
    else:
        parts.append(_polygon(np.array([[x_lab_ref - p.lip_thick * 0.9, y_st - 0.6],
                                        [x_lab_ref + 2.0, y_st - 0.6], [x_lab_ref + 3.0, y_bot],
                                        [x_lab_ref - p.lip_thick - 1.0, y_bot]])))
    if p.tongue is not None:
        gap, size = p.tongue
        x0 = x_behind + 1.0 + 2.0 * (1.0 - size)
        y0 = y_inc - 1.0 - 3.0 * (1.0 - size)
        dorsum = _bezier([x0, y0], [x0 + 2.0, y_vault - 2.0], [x0 + 10.0, y_vault + 2.0],
                         [far, y_vault - 1.0], 30)
        tongue = _polygon(np.vstack([dorsum, [[far, y_bot], [x0 + 1.0, y_bot]]]))
        tongue = tongue.difference(bone.buffer(p.mucosa + gap, quad_segs=6))
        tongue = tongue.difference(tooth.buffer(0.6 + 0.3 * gap))
        for lt_, _, _ in extra_teeth:
            tongue = tongue.difference(lt_.buffer(0.4))
        parts.append(tongue)
    soft = shapely.union_all(parts)
    # nasal cavity: air above the nasal floor mucosa, its front edge the curved nasal vestibule
    front = _bezier([ans_tip[0] + 3.0, y_nf + 1.2], [ans_tip[0] + 0.5, y_nf + 4.0],
                    [ans_tip[0] + 0.5, y_nf + 9.0], [ans_tip[0] + 3.5, y_nf + 60.0], 16)
    nasal_air = _polygon(np.vstack([front[::-1], [[far, y_nf + 1.2], [far, y_nf + 60.0]]]))
    soft = soft.difference(nasal_air)
    return soft, extra_teeth, extra_bone, y_inc


def _x_at(g: BaseGeometry, y: float, side: str, default: float) -> float:
    """Leftmost ("min") or rightmost ("max") x of ``g`` on the horizontal line at ``y``."""
    cut = LineString([(-500.0, y), (500.0, y)]).intersection(g)
    if cut.is_empty:
        return default
    return float(cut.bounds[0] if side == "min" else cut.bounds[2])


def _longest_line(g: BaseGeometry) -> LineString:
    if g.is_empty:
        return LineString()
    if isinstance(g, LineString):
        return g
    lines = [q for q in getattr(g, "geoms", []) if isinstance(q, LineString)]
    if not lines:
        return LineString()
    merged = shapely.line_merge(shapely.MultiLineString(lines))
    if isinstance(merged, LineString):
        return merged
    return max(merged.geoms, key=lambda q: q.length)


# --------------------------------------------------------------------------- placement


@dataclass
class _Placement:
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


def _place(p: _Params, anat: dict[str, Any]) -> _Placement:
    sr, sc = p.spacing
    sign = 1.0 if p.facing_left else -1.0
    key = shapely.union_all([anat["tooth"], anat["pab"], anat["enamel"]])
    kx0, ky0, kx1, ky1 = key.bounds                      # anatomical mm
    ex, ey = (kx1 - kx0) + 6.0, (ky1 - ky0) + 7.0         # margins: 3 mm sides, crown 3 mm, apex 4 mm
    fov_h, fov_w = max(p.fov[0], ey), max(p.fov[1], ex)
    h = int(np.clip(round(fov_h / sr), _MIN_SIZE, _MAX_SIZE))
    w = int(np.clip(round(fov_w / sc), _MIN_SIZE, _MAX_SIZE))
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
    return _Placement(h, w, (sr, sc), matrix)


# --------------------------------------------------------------------------- rendering


class _Raster:
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


def _band_noise(rng: np.random.Generator, h: int, w: int, s1: float, s2: float) -> np.ndarray:
    n = rng.standard_normal((h, w)).astype(np.float32)
    a = cv2.GaussianBlur(n, (0, 0), max(s1, 0.3))
    b = cv2.GaussianBlur(n, (0, 0), max(s2, 0.6))
    d = a - b
    return d / (d.std() + 1e-6)


def _render(p: _Params, anat_px: dict[str, Any], pl: _Placement, rng: np.random.Generator) -> np.ndarray:
    """Density image (air ~0, soft ~0.3, bone ~0.5-0.8, dentin ~0.83, enamel ~1.05)."""
    h, w = pl.height, pl.width
    sr, sc = pl.spacing
    ss = 4 if h * w <= 420 * 420 else 3
    R = _Raster(h, w, ss)
    dn = p.dens
    s_mean = 0.5 * (sr + sc)

    # textures at image resolution, upsampled to the fine grid
    fine_t = _band_noise(rng, h, w, 0.3 * p.trab_scale / s_mean, 1.0 * p.trab_scale / s_mean)
    coarse_t = _band_noise(rng, h, w, 0.7 * p.trab_scale / s_mean, 2.2 * p.trab_scale / s_mean)
    trab = np.tanh(1.4 * (0.75 * fine_t + 0.55 * coarse_t))
    marrow = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 3.0 / s_mean)
    marrow /= marrow.std() + 1e-6
    soft_var = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 2.0 / s_mean)
    soft_var /= soft_var.std() + 1e-6

    D = np.full((R.H, R.W), dn["air"], np.float32)
    m = R.mask(anat_px["soft"])
    D[m] = (dn["soft"] + 0.02 * R.up(soft_var))[m]
    bone_geom = anat_px["bone"].union(anat_px["extra_bone"])
    bone = R.mask(bone_geom)
    bone_val = dn["trab"] + p.trab_amp * R.up(trab) + 0.04 * R.up(marrow)
    D[bone] = bone_val[bone]
    cortex_geom = bone_geom.difference(bone_geom.buffer(-anat_px["cortex_px"])).union(anat_px["lab_plate"])
    cort = R.mask(cortex_geom)
    cort_val = dn["cortex"] + 0.25 * p.trab_amp * R.up(trab)
    D[cort] = cort_val[cort]
    if not anat_px["canal"].is_empty:
        cm = R.mask(anat_px["canal"].buffer(anat_px["lamina_px"]))
        D[cm] = dn["lamina"]
        cm = R.mask(anat_px["canal"])
        D[cm] = dn["soft"]
    lam = R.mask(anat_px["lamina"])
    D[lam] = dn["lamina"]
    pdl = R.mask(anat_px["pdl"])
    D[pdl] = dn["pdl"]

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
            wid = rng.uniform(0.6, 1.8)
            sgn = rng.choice([-1.0, 1.0])
            img += sgn * amp * np.exp(-(perp / wid) ** 2) * np.exp(-r * s_mean / 25.0)
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


def _store(p: _Params, density: np.ndarray) -> tuple[np.ndarray, int]:
    """Density -> stored file values (uint8 window or uint16 scaled)."""
    if p.bits == 8:
        lo, hi, gamma = p.window
        x = np.clip((density - lo) / (hi - lo), 0.0, 1.0) ** gamma
        return np.round(x * 255.0).astype(np.uint8), 8
    scale, offset = p.store16
    v = np.round(density * scale + offset)
    return np.clip(v, 0, 65535).astype(np.uint16), 16


# --------------------------------------------------------------------------- public API


def generate_phantom(seed: int, style: str = "standard") -> PhantomCase:
    """One synthetic case; the same ``seed`` and ``style`` always give the same case.

    ``style``: ``standard`` (training distribution, ~25 % faint palatal cortex),
    ``faint`` (every case faint), ``shifted`` (other spacing, contrast, noise,
    blur, field of view: for robustness tests), ``demo`` (one clean typical case).
    """
    _check_style(style)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise PhantomStyleError(f"phantom seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    p = _sample_params(seed, style)
    anat = _build_anatomy(p)
    pl = _place(p, anat)
    to_px = pl.geom

    m_per_px = 1.0 / (0.5 * (p.spacing[0] + p.spacing[1]))
    bone = anat["bone"]
    lam = anat["pdl_outer"].buffer(p.lamina, quad_segs=8).difference(anat["pdl_outer"]).intersection(bone)
    pdl = anat["pdl_outer"].intersection(bone)
    px = {
        "soft": to_px(anat["soft"]), "bone": to_px(bone), "canal": to_px(anat["canal"]),
        "extra_bone": to_px(anat["extra_bone"]), "lab_plate": to_px(anat["lab_plate"]),
        "lamina": to_px(lam), "pdl": to_px(pdl), "tooth": to_px(anat["tooth"]),
        "enamel": to_px(anat["enamel"]), "pulp": to_px(anat["pulp"]),
        "extra_teeth": [tuple(to_px(g) for g in trio) for trio in anat["extra_teeth"]],
        "cortex_px": p.cortex * m_per_px, "lamina_px": p.lamina * m_per_px,
    }
    if p.faint:
        surf = anat["pal_surface"]
        zone = surf.buffer(1.6, quad_segs=6)
        px["faint_in"] = to_px(zone.intersection(bone).difference(anat["pdl_outer"].buffer(p.lamina)))
        px["faint_out"] = to_px(surf.buffer(1.2, quad_segs=6).difference(bone).difference(anat["tooth"]))
        px["faint_zone"] = to_px(zone.difference(anat["tooth"]))
    if p.ghost is not None:
        du, dv, _ = p.ghost
        fr = anat["frame"]
        off = fr.vec((du, dv))
        ghost = affinity.rotate(anat["tooth"], 3.0 * du, origin=anat["tooth"].centroid)
        px["ghost"] = to_px(affinity.translate(ghost, off[0], off[1]).difference(anat["tooth"]))

    rng = np.random.default_rng([seed, 41, STYLES.index(style)])
    density = _render(p, px, pl, rng)
    stored, bits = _store(p, density)
    ext = "png" if bits == 8 else "tif"
    name = f"case_{seed:04d}.{ext}"

    facing = "left" if p.facing_left else "right"
    image = SliceImage(stored.astype(np.float32), (float(pl.spacing[0]), float(pl.spacing[1])), "",
                       kind="png" if bits == 8 else "tiff", bit_depth=bits,
                       meta={"phantom_seed": seed, "phantom_style": style})
    pab_px = as_multipolygon(to_px(anat["pab"]))
    enamel_px = as_multipolygon(to_px(anat["enamel"]))
    lm_px = {k: tuple(float(c) for c in pl.pts(np.asarray(v)[None, :])[0]) for k, v in anat["landmarks"].items()}
    boundary_px = to_px(anat["pal_boundary"])
    ann = Annotation(
        image_path=name, width=pl.width, height=pl.height,
        pixel_spacing_mm=(float(pl.spacing[0]), float(pl.spacing[1])),
        regions={"PAB": pab_px, "enamel": enamel_px}, landmarks=lm_px,
        provenance={
            "generator": GENERATOR, "generator_version": GENERATOR_VERSION, "seed": seed,
            "style": style, "faint_palatal_cortex": bool(p.faint), "facing": facing,
            "tilt_deg": round(p.tilt_deg, 3),
            "regions": {"PAB": "phantom truth", "enamel": "phantom truth"},
        },
        extra={"phantom_truth": {
            "palatal_boundary": [[round(x, 4), round(y, 4)] for x, y in boundary_px.coords],
            "faint_palatal_cortex": bool(p.faint),
        }},
    )
    # measured on the JSON-round-tripped geometry, so the stored values match a reader's
    ann = apply_measurements(Annotation.from_json_dict(ann.to_json_dict(), source=name))
    params = {"tilt_deg": p.tilt_deg, "root_len_mm": p.root_len, "crown_len_mm": p.crown_len,
              "spacing_mm": pl.spacing, "facing": facing, "bits": bits,
              "pab_thickness_mm": p.pab_t, "pdl_mm": p.pdl}
    return PhantomCase(image=image, annotation=ann, palatal_boundary=boundary_px,
                       faint=bool(p.faint), params=params)


def write_phantom_set(out_dir: str | os.PathLike, n: int, seed: int = 0,
                      style: str = "standard") -> list[Path]:
    """Write ``n`` cases ``case_{seed+k:04d}.png|.tif`` + ``.dentseg.json`` into ``out_dir``.

    Case ``k`` uses seed ``seed + k``, so any case can be regenerated alone.
    Returns the image paths. 8-bit cases are PNG, 16-bit cases TIFF (uint16).
    """
    _check_style(style)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise PhantomStyleError(f"number of phantom cases must be a non-negative integer, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise PhantomStyleError(f"phantom seed must be a non-negative integer, got {seed!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(int(n)):
        case = generate_phantom(int(seed) + k, style)
        img_path = out / case.annotation.image_path
        ext = ".png" if case.image.bit_depth == 8 else ".tif"
        dtype = np.uint8 if case.image.bit_depth == 8 else np.uint16
        ok, buf = cv2.imencode(ext, case.image.pixels.astype(dtype))
        if not ok:
            raise DentsegError(f"could not encode phantom image {img_path.name}")
        atomic_write_bytes(img_path, buf.tobytes())
        save_annotation(case.annotation, out / (img_path.stem + ".dentseg.json"))
        paths.append(img_path)
    return paths


def _check_style(style: str) -> None:
    if style not in STYLES:
        raise PhantomStyleError(f"unknown phantom style {style!r}; choose one of: {', '.join(STYLES)}")
