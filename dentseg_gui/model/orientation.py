"""Which way up is the slice? Segment an image shown apex-down or turned by 90° as well.

LU-Net is trained on upright slices (crown down, apex up) facing either way, so a
slice that is upside down or turned on its side gives a poor, implausible answer.
``segment_upright`` first segments the image as it is; only when that answer does not
look like an upright incisor (weak landmarks, the apex not above the CEJ) does it try
the image turned by 180°, 90° and 270° and keep the orientation whose answer is
clearly the most plausible. Upright slices pay nothing extra.

The result is always mapped back to the ORIGINAL pixel grid (probabilities and
landmarks), so regions are stored in the file's own pixel coordinates;
``orientation_deg`` says how the image must be turned (counter-clockwise) to show the
tooth apex up, and the annotation records it so the axis tilt is measured against
the upright view.

numpy only (no torch, no Qt): the segmenter is passed in.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np

from ..core.image import SliceImage

ROTATIONS = (0, 180, 90, 270)           # tried in this order (upside down is the common mistake)
#: an upright answer scoring at least this keeps the image as it is (no other orientation tried)
GOOD_ENOUGH = 0.55
#: another orientation wins only when it beats the upright answer by this much
MARGIN = 0.15
#: root lengths (mm) of an upper incisor; outside them the answer is not an upright tooth
ROOT_MM = (7.0, 25.0)


def rotate_image(image: SliceImage, degrees: int) -> SliceImage:
    """``image`` turned counter-clockwise by ``degrees`` (0, 90, 180, 270); spacing follows the axes."""
    k = (int(degrees) // 90) % 4
    if k == 0:
        return image
    px = np.ascontiguousarray(np.rot90(image.pixels, k))
    sp = image.spacing_mm
    if sp is not None and k % 2:
        sp = (sp[1], sp[0])
    return dataclasses.replace(image, pixels=px, spacing_mm=sp)


def points_to_original(pts: np.ndarray, degrees: int, shape: tuple[int, int]) -> np.ndarray:
    """(…, 2) pixel (x, y) in the image turned by ``degrees`` -> (x, y) in the original of ``shape`` (h, w)."""
    k = (int(degrees) // 90) % 4
    p = np.asarray(pts, float)
    h, w = shape
    x, y = p[..., 0], p[..., 1]
    if k == 0:
        out = (x, y)
    elif k == 1:          # rot90 CCW: original (x, y) -> (y, w-1-x)
        out = (w - 1 - y, x)
    elif k == 2:
        out = (w - 1 - x, h - 1 - y)
    else:                 # rot270: original (x, y) -> (h-1-y, x)
        out = (y, h - 1 - x)
    return np.stack(out, axis=-1)


def probs_to_original(probs: np.ndarray, degrees: int) -> np.ndarray:
    """(C, h, w) class maps of the turned image -> the original grid."""
    k = (int(degrees) // 90) % 4
    return probs if k == 0 else np.ascontiguousarray(np.rot90(probs, -k, axes=(1, 2)))


def upright_score(seg: Any) -> float:
    """0..1: how much ``seg`` (a ``SegmentationResult`` in its own grid) looks like an upright
    incisor: the landmarks' confidence, the network's certainty over what it drew, the apex
    above the CEJ midpoint with the long axis within 75° of vertical, a root of an incisor's
    length and the enamel on the crown side of the CEJ."""
    conf = [float(v) for v in (seg.landmark_confidence or {}).values()]
    if len(conf) < 3:
        return 0.0
    lm = seg.landmarks
    try:
        lab, pal, apex = (np.asarray(lm[k], float) for k in ("CEJ_labial", "CEJ_palatal", "apex"))
    except (KeyError, TypeError):
        return 0.0
    sr, sc = seg.spacing_used
    o = 0.5 * (lab + pal)
    axis = (apex - o) * [sc, sr]
    length = float(np.linalg.norm(axis))
    if length < 1e-6:
        return 0.0
    up = -axis[1] / length                        # cos of the angle to the image's up direction
    upright = float(np.clip((up - math.cos(math.radians(75))) / (1 - math.cos(math.radians(75))), 0, 1))
    labels = np.argmax(seg.probs, axis=0)
    fg = labels > 0
    certainty = float(seg.probs.max(axis=0)[fg].mean()) if fg.any() else 0.0
    # anatomy: a root of an incisor's length, and the enamel cap on the crown side of the CEJ
    anatomy = 1.0 if ROOT_MM[0] <= length <= ROOT_MM[1] else 0.25
    ys, xs = np.nonzero(labels == 2)
    if len(xs):
        centroid = np.array([xs.mean(), ys.mean()]) - o
        if float((centroid * [sc, sr]) @ axis) > 0:        # enamel on the apex side: turned over
            anatomy *= 0.2
    return float(min(conf)) ** 0.5 * certainty * upright * anatomy


def segment_upright(segment: Callable[..., Any], image: SliceImage, spacing=None, should_stop=None,
                    rotations=ROTATIONS) -> tuple[Any, int, dict[int, float]]:
    """(result in the original grid, orientation_deg, score of each orientation tried).

    ``segment(image, spacing=..., should_stop=...)`` is ``Segmenter.segment``.
    """
    scores: dict[int, float] = {}
    best, best_deg = None, 0
    for deg in rotations:
        turned = rotate_image(image, deg)
        sp = None if spacing is None else (tuple(spacing) if deg in (0, 180) else (spacing[1], spacing[0]))
        seg = segment(turned, spacing=sp, should_stop=should_stop)
        scores[deg] = upright_score(seg)
        if best is None or scores[deg] > scores[best_deg] + (MARGIN if best_deg == 0 else 0.0):
            best, best_deg = seg, deg
        if deg == 0 and scores[0] >= GOOD_ENOUGH:
            break
    return _to_original(best, best_deg, image), best_deg, scores


def _to_original(seg: Any, degrees: int, image: SliceImage) -> Any:
    if degrees == 0:
        return seg
    shape = (image.height, image.width)
    k = (int(degrees) // 90) % 4
    turned_shape = shape if k % 2 == 0 else (shape[1], shape[0])
    landmarks = {n: tuple(float(v) for v in points_to_original(np.array(p, float), degrees, shape))
                 for n, p in seg.landmarks.items() if p is not None}
    x0, y0, x1, y1 = seg.roi
    corners = points_to_original(np.array([[x0, y0], [x1 - 1, y1 - 1]], float), degrees, shape)
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    roi = (int(lo[0]), int(lo[1]), int(hi[0]) + 1, int(hi[1]) + 1) if x1 > x0 else (0, 0, 0, 0)
    sp = seg.spacing_used
    if k % 2:
        sp = (sp[1], sp[0])
    assert seg.probs.shape[1:] == turned_shape
    return dataclasses.replace(seg, probs=probs_to_original(seg.probs, degrees), landmarks=landmarks,
                               roi=roi, spacing_used=sp)
