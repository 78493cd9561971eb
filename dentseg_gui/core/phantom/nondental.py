"""Volumes without teeth, for the refusal cases of tooth detection (tests and benchmarks).

* ``head_mr_volume``: an MR-like head: skin and scalp fat (the brightest
  tissue), skull as a dark band, brain, ventricles, a few bright vessels
  (elongated bright tubes), Rician-like noise; uint16, no rescale, modality MR.
* ``noise_volume``: correlated noise only.
* ``soft_tissue_volume``: a CT of a water-like cylinder in air (HU), no bone.
* ``bone_block_volume``: a CT of a bone block (cortical shell, trabecular
  inside) in soft tissue: bright, but no enamel and nothing tooth-shaped.
* ``flat_image_volume``: one slice (a 2-D image loaded as a volume).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..volume import Volume

KINDS = ("head_mr", "noise", "soft_tissue", "bone_block", "flat_image")


def _grid(shape_kji, spacing):
    nk, nj, ni = shape_kji
    z, y, x = np.meshgrid(*(np.arange(n, dtype=np.float32) * s - 0.5 * (n - 1) * s
                            for n, s in zip((nk, nj, ni), spacing[::-1])), indexing="ij")
    return x, y, z


def head_mr_volume(seed: int = 0, spacing: float = 1.0) -> Volume:
    rng = np.random.default_rng([seed, 101])
    shape = (int(170 / spacing), int(200 / spacing), int(160 / spacing))
    x, y, z = _grid(shape, (spacing,) * 3)
    r = np.sqrt((x / 72) ** 2 + (y / 90) ** 2 + (z / 80) ** 2)
    img = np.zeros(shape, np.float32)
    img[r < 1.0] = 900.0                       # skin / scalp fat: bright on T1
    img[r < 0.95] = 120.0                      # skull: dark
    img[r < 0.91] = 600.0                      # brain
    vent = np.sqrt((x / 12) ** 2 + ((y - 5) / 30) ** 2 + ((z - 10) / 12) ** 2) < 1.0
    img[vent] = 250.0
    for _ in range(6):                          # bright vessels (contrast-enhanced), 2-4 mm wide
        p0 = rng.uniform(-40, 40, 3)
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        w = rng.uniform(1.0, 2.0)
        rel = np.stack([x - p0[0], y - p0[1], z - p0[2]], axis=-1)
        t = rel @ d
        perp = np.linalg.norm(rel - t[..., None] * d, axis=-1)
        img[(perp < w) & (np.abs(t) < rng.uniform(10, 30)) & (r < 0.9)] = 1000.0
    img = ndi.gaussian_filter(img, 0.8 / spacing)
    noise = rng.normal(0, 25, (2,) + shape).astype(np.float32)
    img = np.sqrt((img + noise[0]) ** 2 + noise[1] ** 2)       # Rician magnitude noise
    return Volume(np.clip(img, 0, 65535).astype(np.uint16), (0.0, 0.0, 0.0), np.eye(3), (spacing,) * 3,
                  source=f"MR-like head (seed {seed})", meta={"modality": "MR"})


def noise_volume(seed: int = 0, shape=(120, 140, 140), spacing: float = 0.4) -> Volume:
    rng = np.random.default_rng([seed, 103])
    v = ndi.gaussian_filter(rng.normal(0, 1, shape).astype(np.float32), 1.2)
    v = v / v.std() * 300.0 + 500.0
    return Volume(np.clip(v, -32768, 32767).astype(np.int16), (0.0, 0.0, 0.0), np.eye(3), (spacing,) * 3,
                  source=f"noise volume (seed {seed})", meta={"modality": "CT"})


def soft_tissue_volume(seed: int = 0, spacing: float = 0.4) -> Volume:
    rng = np.random.default_rng([seed, 107])
    shape = (int(50 / spacing), int(60 / spacing), int(60 / spacing))
    x, y, z = _grid(shape, (spacing,) * 3)
    img = np.full(shape, -1000.0, np.float32)
    img[np.hypot(x, y) < 26.0] = 40.0
    img = ndi.gaussian_filter(img, 0.6) + rng.normal(0, 30, shape).astype(np.float32)
    return Volume((img + 1024).astype(np.int16), (-30.0, -40.0, 10.0), np.eye(3), (spacing,) * 3,
                  slope=1.0, intercept=-1024.0, source=f"soft-tissue CT (seed {seed})", meta={"modality": "CT"})


def bone_block_volume(seed: int = 0, spacing: float = 0.4) -> Volume:
    rng = np.random.default_rng([seed, 109])
    shape = (int(50 / spacing), int(60 / spacing), int(60 / spacing))
    x, y, z = _grid(shape, (spacing,) * 3)
    img = np.full(shape, 40.0, np.float32)
    r = np.sqrt((x / 20) ** 2 + (y / 12) ** 2 + (z / 18) ** 2)
    img[r < 1.0] = 1300.0                        # cortex
    trab = 400.0 + 150.0 * ndi.gaussian_filter(rng.normal(0, 1, shape).astype(np.float32), 1.0 / spacing)
    inner = r < 0.85
    img[inner] = trab[inner]
    img = ndi.gaussian_filter(img, 0.5) + rng.normal(0, 30, shape).astype(np.float32)
    return Volume((img + 1024).astype(np.int16), (0.0, 0.0, 0.0), np.eye(3), (spacing,) * 3,
                  slope=1.0, intercept=-1024.0, source=f"bone-block CT (seed {seed})", meta={"modality": "CT"})


def flat_image_volume(seed: int = 0) -> Volume:
    rng = np.random.default_rng([seed, 113])
    img = rng.normal(500, 200, (1, 384, 384)).astype(np.float32)
    return Volume(img.astype(np.int16), (0.0, 0.0, 0.0), np.eye(3), (0.2, 0.2, 1.0),
                  source=f"2-D image as a volume (seed {seed})", meta={"modality": "OT"})


def nondental_volume(kind: str, seed: int = 0) -> Volume:
    """One of ``KINDS``."""
    makers = {"head_mr": head_mr_volume, "noise": noise_volume, "soft_tissue": soft_tissue_volume,
              "bone_block": bone_block_volume, "flat_image": flat_image_volume}
    if kind not in makers:
        raise ValueError(f"unknown non-dental volume {kind!r}; choose one of {', '.join(KINDS)}")
    return makers[kind](seed)
