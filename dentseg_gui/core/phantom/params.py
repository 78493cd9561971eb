"""Phantom parameters: one random draw of the anatomy and of the imaging of a case.

Geometry and imaging come from separate random streams, so the ``faint`` and
``shifted`` styles keep the anatomy of the ``standard`` case with the same seed.
Lengths are millimetres; densities are on a scale where air is ~0 and enamel ~1.05.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import DentsegError

STYLES = ("standard", "faint", "shifted", "demo", "wide", "site2")


class PhantomStyleError(DentsegError, ValueError):
    """An unknown phantom style or a bad argument to the generator."""


@dataclass
class PhantomParams:
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
    # --- used by the 'wide' and 'site2' styles (``styles.py``); the defaults give the
    # older styles' geometry and pixels exactly
    pab_min_thick: float = 0.9               # thinnest palatal bone (mm)
    crest_round: float | None = None         # crest rounding height (mm); None = from the crest thickness
    crest_exp: float = 0.7                   # shape of the crest cap (< 1 bulges coronally)
    trab_gain: float = 1.4                   # steepness of the trabecular texture (high = coarse, binary)
    marrow_amp: float = 0.04                 # slow density variation of the marrow
    streak_width: tuple[float, float] = (0.6, 1.8)   # px
    streak_decay_mm: float = 25.0
    cortex_breaks: tuple[tuple[float, float], ...] = ()   # arcs (fractions) of the palatal surface without cortex
    cervical_fade: tuple[float, float] | None = None      # (mm apical of the palatal crest, strength 0..1)
    metal: tuple[float, float, int, float] | None = None  # bracket: (size mm, density, streaks, streak amplitude)
    curve: tuple[float, float] | None = None  # sigmoid contrast curve (centre, steepness) before storage
    pad: tuple[float, float, float, float, float] | None = None  # constant borders: top, bottom, left, right
    #                                          (fractions of the free space), density of the border
    crop: tuple[float, float, float, float] | None = None  # cut the image: fractions of the free space
    renderer: str = "phantom"                 # 'phantom' (render.py) | 'site2' (render_site2.py)
    site2: dict | None = None                 # parameters of the site2 renderer
    storage: str = "raster"                   # 'raster' (PNG 8-bit / TIFF 16-bit) | 'dicom' (CT, HU)


def uniform(rng: np.random.Generator, a: float, b: float) -> float:
    return float(rng.uniform(a, b))


def sample_base_params(seed: int, style: str) -> PhantomParams:
    """Draw the case (the styles drawn here; ``styles.sample_params`` adds wide and site2). Geometry and imaging use separate streams so ``faint`` and
    ``shifted`` keep the anatomy of the ``standard`` case with the same seed."""
    g = np.random.default_rng([seed, 11])
    im = np.random.default_rng([seed, 23])

    root_len = uniform(g, 11.0, 17.0)
    crown_len = uniform(g, 7.4, 11.0)
    half_width = uniform(g, 2.9, 3.7)
    t_c = uniform(g, 1.0, 2.6)
    t_m = t_c + uniform(g, 0.3, 2.5)
    t_a = t_m + uniform(g, 0.0, 2.5)
    waves = tuple((uniform(g, 0.05, 0.3), uniform(g, 2.5, 9.0), uniform(g, 0, 2 * math.pi)) for _ in range(3))
    p = PhantomParams(
        root_len=root_len, crown_len=crown_len, half_width=half_width,
        apex_taper=uniform(g, 0.28, 0.5), apex_round=uniform(g, 3.0, 7.0),
        root_curve=uniform(g, -0.7, 0.7),
        edge_u=uniform(g, -1.1, 0.3), edge_r=uniform(g, 0.45, 0.75),
        labial_bulge=uniform(g, 0.25, 0.8), cingulum=uniform(g, 0.2, 0.7), fossa=uniform(g, 0.3, 1.0),
        enamel_lab=uniform(g, 0.85, 1.3), enamel_pal=uniform(g, 0.5, 0.9),
        cej_lab_v=uniform(g, -0.4, 0.3), cej_pal_v=uniform(g, -0.5, 0.6),
        pulp_w=uniform(g, 0.35, 0.7), pulp_apex_w=uniform(g, 0.1, 0.2), pulp_horn=uniform(g, 0.35, 0.6),
        pdl=uniform(g, 0.15, 0.3), lamina=uniform(g, 0.15, 0.3),
        crest_lab=uniform(g, 0.5, 3.0), crest_pal=uniform(g, 0.5, 3.0),
        lab_plate_crest=uniform(g, 0.3, 0.8), lab_plate_apex=uniform(g, 0.8, 2.6),
        pab_t=(t_c, t_m, t_a), pab_wave=waves, cortex=uniform(g, 0.45, 1.1),
        turn_above_apex=uniform(g, 1.0, 3.0), vault_rise=uniform(g, 1.0, 4.5), palate_thick=uniform(g, 3.5, 7.0),
        ans_len=uniform(g, 2.0, 5.0), mucosa=uniform(g, 1.8, 3.8), gingiva=uniform(g, 0.8, 1.6),
        lip_thick=uniform(g, 10.0, 15.0), lip_line=uniform(g, 0.0, 4.0),
        canal=(uniform(g, 0.3, 0.7), uniform(g, 1.2, 2.6)) if g.random() < 0.3 else None,
        lower_incisor=((uniform(g, 0.0, 3.0), uniform(g, 0.5, 4.5), uniform(g, -10, 20))
                       if g.random() < 0.55 else None),
        tongue=(uniform(g, 1.0, 6.0), uniform(g, 0.5, 1.0)) if g.random() < 0.45 else None,
        tilt_deg=uniform(g, 0.0, 33.0), facing_left=bool(g.random() < 0.5),
        # imaging
        spacing=(0.0, 0.0), fov=(0.0, 0.0), shift=(uniform(im, 0.2, 0.8), uniform(im, 0.2, 0.8)),
        faint=bool(im.random() < 0.25),
        dens={
            "air": uniform(im, -0.02, 0.04), "soft": uniform(im, 0.25, 0.33), "pdl": uniform(im, 0.24, 0.32),
            "pulp": uniform(im, 0.28, 0.36), "trab": uniform(im, 0.45, 0.56), "cortex": uniform(im, 0.72, 0.85),
            "lamina": uniform(im, 0.62, 0.78), "dentin": uniform(im, 0.78, 0.88), "enamel": uniform(im, 1.0, 1.12),
        },
        trab_scale=uniform(im, 0.35, 0.8), trab_amp=uniform(im, 0.08, 0.18),
        psf_mm=uniform(im, 0.1, 0.28), noise=uniform(im, 0.01, 0.035), noise_poisson=uniform(im, 0.0, 0.03),
        noise_corr=uniform(im, 0.3, 0.9),
        streaks=(int(im.integers(4, 12)), uniform(im, 0.02, 0.07)) if im.random() < 0.35 else None,
        cupping=uniform(im, 0.0, 0.06),
        ghost=(uniform(im, -2.5, 2.5), uniform(im, -1.5, 1.5), uniform(im, 0.1, 0.3)) if im.random() < 0.35 else None,
        bits=16 if im.random() < 0.3 else 8,
        window=(uniform(im, -0.08, 0.05), uniform(im, 0.95, 1.2), uniform(im, 0.8, 1.25)),
        store16=(0.0, 0.0), faint_blur_mm=uniform(im, 0.5, 1.0), faint_level=uniform(im, 0.7, 1.0),
    )
    # spacing: mostly 0.1-0.2 mm, tail to 0.4; ~15 % slightly anisotropic
    s = 0.1 + 0.3 * float(im.beta(1.0, 6.0))
    aniso = uniform(im, 0.85, 1.15) if im.random() < 0.15 else 1.0
    p.spacing = (s, s * aniso)
    fw = uniform(im, 35.0, 55.0)
    p.fov = (fw * uniform(im, 0.92, 1.12), fw)
    if im.random() < 0.5:   # HU-like, air near 0 after an offset of 1000 or 1024
        p.store16 = (uniform(im, 2500, 3100), float(im.choice([1000.0, 1024.0])) - 1000.0)
    else:                   # plain 12-bit range
        p.store16 = (uniform(im, 2400, 3300), uniform(im, 20, 300))

    if style == "faint":
        p.faint = True
    elif style == "shifted":
        sh = np.random.default_rng([seed, 37])
        s = float(math.exp(sh.uniform(math.log(0.08), math.log(0.5))))
        aniso = uniform(sh, 0.75, 1.25) if sh.random() < 0.4 else 1.0
        p.spacing = (s, s * aniso)
        fw = uniform(sh, 28.0, 75.0)
        p.fov = (fw * uniform(sh, 0.8, 1.25), fw)
        p.window = (uniform(sh, -0.35, 0.25), uniform(sh, 0.75, 1.7), uniform(sh, 0.5, 2.0))
        p.noise *= uniform(sh, 1.5, 3.0)
        p.noise_poisson *= uniform(sh, 1.0, 3.0)
        p.psf_mm *= uniform(sh, 1.3, 2.2)
        p.cupping = uniform(sh, 0.05, 0.15)
        p.bits = 16 if sh.random() < 0.5 else 8
        p.store16 = (uniform(sh, 800, 9000), uniform(sh, 0, 8000))
        p.tilt_deg = uniform(sh, 0.0, 35.0)
    elif style == "demo":
        p = demo_params(p)
    return p


def demo_params(p: PhantomParams) -> PhantomParams:
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


def check_seed(seed) -> int:
    """A phantom seed (slices and volumes): a non-negative integer, returned as ``int``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise PhantomStyleError(f"phantom seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_style(style: str) -> None:
    if style not in STYLES:
        raise PhantomStyleError(f"unknown phantom style {style!r}; choose one of: {', '.join(STYLES)}")
