"""Training-time augmentation: one affine warp per sample, then intensity changes.

Geometry (flip, rotation, scale, shift) is composed into a single 2x3 matrix and
applied once with OpenCV to the image (linear), the label map (nearest) and the
landmark points (the same matrix), so the three can never disagree and the
image is interpolated only once.

Labels are anatomical, not image-side: a mirrored image is still an incisor
with its labial and palatal sides, so after a horizontal flip ``CEJ_labial``
stays ``CEJ_labial`` (it just moves to the other side of the picture). The
network must learn labial/palatal from the anatomy (PAB is palatal), which is
exactly what it needs for images that face either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .dataset import PreparedCase


@dataclass(frozen=True)
class AugmentConfig:
    flip_p: float = 0.5
    rotate_deg: float = 20.0             # uniform in +-; phantoms already tilt 0-35 deg
    scale: tuple[float, float] = (0.85, 1.18)  # covers spacing errors of about +-15 %
    shift_frac: float = 0.18             # crop centre jitter, fraction of the crop size
    gamma: tuple[float, float] = (0.65, 1.5)
    contrast: tuple[float, float] = (0.75, 1.25)
    brightness: float = 0.1
    noise_std: tuple[float, float] = (0.0, 0.06)
    blur_p: float = 0.35
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    # robustness to scanners and protocols unlike the training set (0 = off; each draws
    # random numbers only when on, so a config with them off replays the old streams)
    lowres_p: float = 0.0                # simulate a coarser scan: shrink then re-enlarge
    lowres_factor: tuple[float, float] = (1.0, 1.0)
    shading_p: float = 0.0               # smooth low-frequency shading (cupping, beam hardening)
    shading_amp: float = 0.0
    clip_p: float = 0.0                  # a narrower display window: saturate the ends
    clip_frac: float = 0.0


#: the augmentation that trained every stage of the bundled "LU-Net phantom v2" and "v3"
BASIC_AUGMENT = AugmentConfig()

#: the robust fine-tuning recipe (offered, not bundled): wider intensity, blur and noise
#: ranges plus coarse-scan simulation, shading and window clipping, so that spacings down to
#: 0.5 mm, other windows and noisier scanners still segment (docs/model.md, "robust fine-tuning")
ROBUST_AUGMENT = AugmentConfig(
    scale=(0.8, 1.25), gamma=(0.5, 2.0), contrast=(0.65, 1.5), brightness=0.15,
    noise_std=(0.0, 0.1), blur_p=0.4, blur_sigma=(0.3, 2.0),
    lowres_p=0.3, lowres_factor=(1.3, 2.6), shading_p=0.3, shading_amp=0.15,
    clip_p=0.2, clip_frac=0.15)

AUGMENT_PRESETS = {"basic": BASIC_AUGMENT, "robust": ROBUST_AUGMENT}


NO_AUGMENT = AugmentConfig(flip_p=0.0, rotate_deg=0.0, scale=(1.0, 1.0), shift_frac=0.0,
                           gamma=(1.0, 1.0), contrast=(1.0, 1.0), brightness=0.0,
                           noise_std=(0.0, 0.0), blur_p=0.0)


def crop_matrix(center_xy: np.ndarray, out_size: int, angle_deg: float = 0.0, scale: float = 1.0,
                flip: bool = False) -> np.ndarray:
    """2x3 matrix taking source pixels to crop pixels: ``center_xy`` lands in the crop centre.

    Rotation by ``angle_deg`` and zoom by ``scale`` about that centre, then an
    optional horizontal mirror of the crop.
    """
    c = (out_size - 1) / 2.0
    a = math.radians(angle_deg)
    r = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    if flip:
        r = np.array([[-1.0, 0.0], [0.0, 1.0]]) @ r
    t = np.array([c, c]) - r @ np.asarray(center_xy, dtype=np.float64)
    return np.hstack([r, t[:, None]])


def apply_points(m: np.ndarray, xy: np.ndarray) -> np.ndarray:
    xy = np.asarray(xy, dtype=np.float64)
    return xy @ m[:, :2].T + m[:, 2]


def warp_case(case: PreparedCase, m: np.ndarray, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image float32, labels uint8, landmarks (3,2)) of ``case`` through matrix ``m``."""
    size = (out_size, out_size)
    img = cv2.warpAffine(case.image.astype(np.float32), m, size, flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    lab = cv2.warpAffine(case.labels, m, size, flags=cv2.INTER_NEAREST,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return img, lab, apply_points(m, case.landmarks).astype(np.float32)


def augment_intensity(img: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Gamma, contrast/brightness, blur and noise on a [0, 1] image (result clipped to [0, 1])."""
    out = np.clip(img, 0.0, 1.0)
    g = math.exp(rng.uniform(math.log(cfg.gamma[0]), math.log(cfg.gamma[1])))
    out = out ** g
    out = (out - 0.5) * rng.uniform(*cfg.contrast) + 0.5 + rng.uniform(-cfg.brightness, cfg.brightness)
    if cfg.shading_p > 0 and rng.random() < cfg.shading_p:
        out = out + _shading(out.shape, rng, cfg.shading_amp)
    if cfg.clip_p > 0 and rng.random() < cfg.clip_p:
        lo, hi = rng.uniform(0.0, cfg.clip_frac, size=2)
        out = (np.clip(out, lo, 1.0 - hi) - lo) / max(1.0 - hi - lo, 1e-3)
    if cfg.lowres_p > 0 and rng.random() < cfg.lowres_p:
        f = rng.uniform(*cfg.lowres_factor)
        h, w = out.shape
        small = cv2.resize(out.astype(np.float32), (max(2, round(w / f)), max(2, round(h / f))),
                           interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if cfg.blur_p > 0 and rng.random() < cfg.blur_p:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=rng.uniform(*cfg.blur_sigma))
    std = rng.uniform(*cfg.noise_std)
    if std > 0:
        out = out + rng.normal(0.0, std, size=out.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _shading(shape: tuple[int, int], rng: np.random.Generator, amp: float) -> np.ndarray:
    """A smooth random field in [-amp, amp]: a bilinear-enlarged 3x3 grid of random levels."""
    coarse = rng.uniform(-amp, amp, size=(3, 3)).astype(np.float32)
    return cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def training_sample(case: PreparedCase, rng: np.random.Generator, crop_size: int,
                    cfg: AugmentConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One augmented crop of ``case`` around its structures: (image, labels, landmarks)."""
    shift = rng.uniform(-cfg.shift_frac, cfg.shift_frac, size=2) * crop_size
    m = crop_matrix(case.center + shift, crop_size,
                    angle_deg=rng.uniform(-cfg.rotate_deg, cfg.rotate_deg),
                    scale=rng.uniform(*cfg.scale), flip=bool(rng.random() < cfg.flip_p))
    img, lab, pts = warp_case(case, m, crop_size)
    return augment_intensity(img, rng, cfg), lab, pts
