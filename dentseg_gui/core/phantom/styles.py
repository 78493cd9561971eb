"""The two phantom styles added for robustness: ``wide`` (to train on) and ``site2`` (to judge on).

``wide`` widens every axis along which a scanner, a protocol or a patient can move the
image away from the ``standard`` phantoms, with the same renderer (``render.py``):
cancellous texture scale, contrast and coarseness; faint, blurred and broken palatal
cortices and a washed-out cervical bone; crest heights, thicknesses and shapes; streaks
and a metal bracket at the crown; cupping and capping; blur; noise level and grain;
window, gamma and sigmoid contrast curves; field of view, constant borders and tight
crops; pixel spacing 0.07-0.45 mm. The bundled model is trained on it (README).

``site2`` stands for "another scanner, another generator": it must differ from what the
model is trained on, so it has its own renderer (``render_site2.py``) with a different
texture model (Voronoi-cell trabeculae instead of band-pass noise), a different cortex
(a distance-based shell that tapers to nothing toward the palatal crest instead of
faded bands), a reconstruction kernel that overshoots at edges, an oriented point
spread, beam-hardening bands and rays from the incisal edge, ring artefacts, cupping
about an off-centre axis, high-frequency and streaky noise, a circular field of view
with CT padding values, CBCT voxel sizes, other anatomical proportions, and storage as
a CT DICOM in Hounsfield units. It is used to *judge* robustness and fine-tuning
(benchmarks) and never to train the bundled model or to choose its settings.

Each style draws from its own random streams on top of the standard draw, so adding
them changed nothing in the older styles (same seed, same pixels).
"""

from __future__ import annotations

import math

import numpy as np

from .params import PhantomParams, sample_base_params, uniform


def log_uniform(rng: np.random.Generator, a: float, b: float) -> float:
    return float(math.exp(rng.uniform(math.log(a), math.log(b))))


def wide_params(p: PhantomParams, seed: int) -> PhantomParams:
    """The wide training distribution (anatomy stream ``[seed, 53]``, imaging ``[seed, 59]``)."""
    g = np.random.default_rng([seed, 53])
    im = np.random.default_rng([seed, 59])

    # --- anatomy: crest heights and shapes, thin cervical bone, thin or thick cortex
    p.crest_pal = uniform(g, 0.3, 5.0)
    p.crest_lab = uniform(g, 0.3, 4.5)
    t_c = uniform(g, 0.5, 2.6)
    t_m = t_c + uniform(g, 0.2, 2.5)
    p.pab_t = (t_c, t_m, max(0.6, t_m + uniform(g, -0.5, 2.5)))
    p.pab_min_thick = uniform(g, 0.5, 0.9)
    p.crest_round = uniform(g, 0.2, 1.5) if g.random() < 0.5 else None
    p.crest_exp = uniform(g, 0.4, 1.3)
    p.cortex = uniform(g, 0.25, 1.3)
    p.tilt_deg = uniform(g, 0.0, 40.0)

    # --- palatal cortex: faint / blurred, broken, washed-out cervical bone
    p.faint = bool(im.random() < 0.45)
    p.faint_level = uniform(im, 0.3, 1.0)
    p.faint_blur_mm = uniform(im, 0.3, 1.3)
    if im.random() < 0.35:
        breaks = []
        for _ in range(int(im.integers(1, 4))):
            a = uniform(im, 0.0, 0.85)
            breaks.append((a, min(1.0, a + uniform(im, 0.05, 0.3))))
        p.cortex_breaks = tuple(breaks)
    if im.random() < 0.35:
        p.cervical_fade = (uniform(im, 1.5, 6.0), uniform(im, 0.2, 0.8))

    # --- densities and texture
    trab = uniform(im, 0.38, 0.62)
    dentin = uniform(im, 0.72, 0.92)
    p.dens = {
        "air": uniform(im, -0.05, 0.06), "soft": uniform(im, 0.18, 0.38), "pdl": uniform(im, 0.16, 0.36),
        "pulp": uniform(im, 0.2, 0.4), "trab": trab, "cortex": trab + uniform(im, 0.08, 0.38),
        "lamina": trab + uniform(im, 0.02, 0.3), "dentin": dentin, "enamel": dentin + uniform(im, 0.08, 0.4),
    }
    p.trab_scale = log_uniform(im, 0.3, 1.8)
    p.trab_amp = uniform(im, 0.05, 0.32)
    p.trab_gain = uniform(im, 1.0, 4.0)
    p.marrow_amp = uniform(im, 0.0, 0.1)

    # --- scanner: blur, noise, streaks, metal, cupping
    p.psf_mm = uniform(im, 0.06, 0.55)
    p.noise = log_uniform(im, 0.004, 0.09)
    p.noise_poisson = uniform(im, 0.0, 0.06)
    p.noise_corr = uniform(im, 0.3, 2.0)
    p.streaks = (int(im.integers(3, 19)), log_uniform(im, 0.02, 0.3)) if im.random() < 0.55 else None
    p.streak_width = (0.4, uniform(im, 1.0, 3.5))
    p.streak_decay_mm = uniform(im, 8.0, 40.0)
    if im.random() < 0.2:
        p.metal = (uniform(im, 1.5, 3.5), uniform(im, 2.0, 4.0), int(im.integers(4, 15)), uniform(im, 0.1, 0.45))
    p.cupping = uniform(im, -0.05, 0.2)

    # --- storage and contrast curve
    p.bits = 16 if im.random() < 0.4 else 8
    p.window = (uniform(im, -0.3, 0.2), uniform(im, 0.8, 1.7), log_uniform(im, 0.45, 2.2))
    p.store16 = (uniform(im, 600, 9000), uniform(im, 0, 6000))
    if im.random() < 0.25:
        p.curve = (uniform(im, 0.3, 0.7), uniform(im, 3.0, 10.0))

    # --- resolution, field of view, borders and crops
    s = log_uniform(im, 0.07, 0.45)
    aniso = uniform(im, 0.8, 1.25) if im.random() < 0.25 else 1.0
    p.spacing = (s, s * aniso)
    fw = uniform(im, 22.0, 80.0)
    p.fov = (fw * uniform(im, 0.8, 1.25), fw)
    p.shift = (uniform(im, 0.0, 1.0), uniform(im, 0.0, 1.0))
    if im.random() < 0.2:
        sides = [uniform(im, 0.2, 1.0) if im.random() < 0.5 else 0.0 for _ in range(4)]
        level = p.dens["air"] - (uniform(im, 0.0, 0.5) if im.random() < 0.5 else 0.0)
        p.pad = (*sides, level)
    if im.random() < 0.25:
        p.crop = tuple(uniform(im, 0.0, 0.9) for _ in range(4))
    return p


#: CBCT voxel sizes (mm) of site2 and how often each occurs
SITE2_VOXELS = (0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4)
SITE2_VOXEL_P = (0.08, 0.14, 0.16, 0.16, 0.18, 0.12, 0.1, 0.06)


def site2_params(p: PhantomParams, seed: int) -> PhantomParams:
    """The judging style (anatomy stream ``[seed, 71]``, imaging ``[seed, 73]``): see the module."""
    g = np.random.default_rng([seed, 71])
    im = np.random.default_rng([seed, 73])

    # --- other proportions: longer roots, thin crest bone, more proclined, thinner mucosa
    p.root_len = uniform(g, 12.5, 18.5)
    p.crown_len = uniform(g, 8.0, 11.5)
    p.half_width = uniform(g, 2.8, 3.5)
    p.crest_pal = uniform(g, 0.8, 4.0)
    p.crest_lab = uniform(g, 0.8, 3.5)
    t_c = uniform(g, 0.6, 1.8)
    t_m = t_c + uniform(g, 0.5, 2.2)
    p.pab_t = (t_c, t_m, t_m + uniform(g, 0.0, 2.0))
    p.pab_min_thick = 0.7
    p.cortex = uniform(g, 0.3, 1.4)
    p.pdl = uniform(g, 0.1, 0.35)
    p.lamina = uniform(g, 0.1, 0.3)
    p.tilt_deg = uniform(g, 8.0, 42.0)
    p.mucosa = uniform(g, 1.5, 3.0)
    p.enamel_lab = uniform(g, 0.7, 1.2)
    p.enamel_pal = uniform(g, 0.4, 0.8)

    # --- CT storage and imaging (all values in Hounsfield units)
    s = float(im.choice(SITE2_VOXELS, p=SITE2_VOXEL_P))
    p.spacing = (s, s)
    fw = uniform(im, 30.0, 70.0)
    p.fov = (fw, fw)
    p.shift = (uniform(im, 0.15, 0.85), uniform(im, 0.15, 0.85))
    p.faint = False
    p.renderer = "site2"
    p.storage = "dicom"
    p.bits = 16
    p.streaks, p.ghost, p.metal = None, None, None
    signed = bool(im.random() < 0.5)
    p.site2 = {
        "hu": {"air": uniform(im, -1020, -980), "soft": uniform(im, 20, 80), "pdl": uniform(im, -10, 60),
               "pulp": uniform(im, 20, 70), "marrow": uniform(im, 30, 260), "wall": uniform(im, 450, 1150),
               "cortex": uniform(im, 850, 1750), "lamina": uniform(im, 600, 1400),
               "dentin": uniform(im, 1350, 2000), "enamel": uniform(im, 2150, 2950)},
        "pore_mm": log_uniform(im, 0.5, 2.4), "wall_mm": uniform(im, 0.08, 0.3),
        "cortex_mm": uniform(im, 0.35, 1.4), "taper_mm": uniform(im, 2.0, 9.0),
        "taper_floor": uniform(im, 0.0, 0.5), "cortex_wobble": uniform(im, 0.0, 0.6),
        "sharpen": (uniform(im, 0.0, 0.8), uniform(im, 0.25, 0.6)),
        "psf": (uniform(im, 0.08, 0.4), uniform(im, 1.0, 2.5), uniform(im, 0.0, math.pi)),
        "bh_hu": -uniform(im, 80, 450) if im.random() < 0.7 else 0.0,
        "rays": ((int(im.integers(2, 13)), uniform(im, 60, 500), uniform(im, 6, 30))
                 if im.random() < 0.6 else (0, 0.0, 10.0)),
        "rings": ((int(im.integers(2, 9)), uniform(im, 10, 70), uniform(im, 0.2, 0.8), uniform(im, 0.2, 0.8))
                  if im.random() < 0.5 else None),
        "cupping_hu": uniform(im, 0, 150), "axis": (uniform(im, 0.3, 0.7), uniform(im, 0.3, 0.7)),
        "noise_hu": uniform(im, 15, 110), "noise_hf": uniform(im, 0.0, 0.7),
        "noise_streak": (uniform(im, 0.0, 0.6), uniform(im, 0.0, math.pi)),
        "circle": bool(im.random() < 0.55), "pad_hu": float(im.choice([-1024.0, -2000.0, -3024.0])),
        "signed": signed, "intercept": 0.0 if signed else -1024.0,
    }
    return p


def sample_params(seed: int, style: str) -> PhantomParams:
    """Draw the case of any style: the base draw (``params``), widened or re-rendered here."""
    p = sample_base_params(seed, style)
    if style == "wide":
        p = wide_params(p, seed)
    elif style == "site2":
        p = site2_params(p, seed)
    return p
