"""Landmarks from the network's heatmaps, cross-checked against the predicted enamel cap.

Decoding: each heatmap channel is a spatial softmax (a probability map over the
pixels). The landmark is the vertex of a quadratic fitted to the log-probability
around the most likely pixel (sub-pixel, unbiased for a Gaussian-shaped peak, and
immune to a second faint blob elsewhere, which a global soft-argmax would average
in); its confidence is the probability mass in the 7x7 window around that pixel (0..1: ~0.95 for a sharp single peak, low when the
network is unsure or undecided between places).

Cross-check: by definition the CEJ is where the enamel ends, so the two most
apical points of the predicted enamel cap, one on each side of the tooth's
long axis, are independent CEJ candidates. A heatmap CEJ with low confidence (< 0.3), or
far (> 1.5 mm) from the candidate on its side while not sure of itself (< 0.7), is replaced
by that candidate;
``landmark_source`` records which one was used. Which side is palatal comes from
the PAB (it lies palatal to the root), else from the heatmap CEJ_palatal.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..core.annotation import LANDMARKS

WINDOW_RADIUS = 3
#: A heatmap CEJ farther than this from its enamel-end candidate is replaced by the candidate.
#: Not 1 mm: the candidates themselves sit 0.5-0.8 mm short of the true CEJ on average (the
#: enamel tapers to nothing there, so the predicted cap ends early; p90 1.1 mm on the palatal
#: side, held-out phantoms), while the heatmap CEJs are ~0.15 mm off - a 1 mm rule replaced
#: good points with worse ones. 1.5 mm still catches a heatmap that is plainly wrong.
MAX_CEJ_DISAGREEMENT_MM = 1.5
MIN_CEJ_CONFIDENCE = 0.3
#: A heatmap CEJ at least this sure of itself is kept however far the enamel end is: on
#: shifted, wide and site2 phantoms (bundled v3, v2 and models fine-tuned on 1-4 site2 cases)
#: every replacement of such a point by a distant enamel end made it worse - the predicted cap
#: of a thin or streaked crown can end 2-5 mm short (docs/benchmarks.md, "What caps
#: fine-tuning"); on standard and faint phantoms the rule never fired. 0.7 = the plausibility
#: check's default landmark threshold (``quality.py``).
TRUSTED_CEJ_CONFIDENCE = 0.7
#: Probability above which a pixel counts as enamel when looking for the cap's ends
#: (below 0.5 so the thin tapering tail is kept).
ENAMEL_END_THRESHOLD = 0.2


def softmax_maps(heat_logits: np.ndarray) -> np.ndarray:
    """(C, H, W) logits -> (C, H, W) float64 maps, each summing to 1."""
    z = np.asarray(heat_logits, dtype=np.float64)
    c = z.shape[0]
    flat = z.reshape(c, -1)
    flat = np.exp(flat - flat.max(axis=1, keepdims=True))
    flat /= flat.sum(axis=1, keepdims=True)
    return flat.reshape(z.shape)


def decode_heatmaps(heat_logits: np.ndarray, radius: int = WINDOW_RADIUS) -> tuple[np.ndarray, np.ndarray]:
    """(points (C, 2) as (x, y) pixels, confidence (C,) in 0..1) from (C, H, W) heatmap logits."""
    prob = softmax_maps(heat_logits)
    c, h, w = prob.shape
    pts = np.zeros((c, 2))
    conf = np.zeros(c)
    for k in range(c):
        i, j = np.unravel_index(int(np.argmax(prob[k])), (h, w))
        i0, i1 = max(0, i - radius), min(h, i + radius + 1)
        j0, j1 = max(0, j - radius), min(w, j + radius + 1)
        win = prob[k, i0:i1, j0:j1]
        conf[k] = float(win.sum())
        ys, xs = np.mgrid[i0:i1, j0:j1]
        fit = _quadratic_peak(prob[k], i, j)
        pts[k] = fit if fit is not None else [(win * xs).sum() / conf[k], (win * ys).sum() / conf[k]]
    return pts, conf


def _quadratic_peak(p: np.ndarray, i: int, j: int, r: int = 2) -> np.ndarray | None:
    """Vertex of a least-squares quadratic fitted to log p in a (2r+1)^2 window around (i, j).

    A Gaussian peak's log is exactly quadratic, so this is unbiased where a
    windowed mean is pulled toward the centre pixel. None when the fit is not a
    clean maximum near the peak (the caller falls back to the windowed mean).
    """
    h, w = p.shape
    if i < r or j < r or i >= h - r or j >= w - r:
        return None
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    z = np.log(np.maximum(p[i - r:i + r + 1, j - r:j + r + 1], 1e-300)).ravel()
    dx, dy = dx.ravel().astype(float), dy.ravel().astype(float)
    a = np.stack([dx * dx, dy * dy, dx * dy, dx, dy, np.ones_like(dx)], axis=1)
    cxx, cyy, cxy, cx, cy, _ = np.linalg.lstsq(a, z, rcond=None)[0]
    hess = np.array([[2 * cxx, cxy], [cxy, 2 * cyy]])
    if not (hess[0, 0] < 0 and np.linalg.det(hess) > 0):
        return None
    off = np.linalg.solve(hess, -np.array([cx, cy]))
    if not np.all(np.isfinite(off)) or np.abs(off).max() > 1.0:
        return None
    return np.array([j + off[0], i + off[1]])


@dataclass
class EnamelEnds:
    """The most apical enamel point on the labial and on the palatal side (grid pixels)."""

    labial: np.ndarray
    palatal: np.ndarray


def enamel_ends(enamel_prob: np.ndarray, apex_xy: np.ndarray, pab_prob: np.ndarray | None = None,
                cej_palatal_hint: np.ndarray | None = None,
                threshold: float = ENAMEL_END_THRESHOLD, join_px: float = 3.0) -> EnamelEnds | None:
    """Where the enamel cap ends on each side of the long axis, or None when it cannot be told.

    The axis runs from the centroid of the largest group of enamel parts to the
    apex; on each side of it the enamel end is the mean of the enamel pixels
    within half a pixel of the most apical one.
    """
    mask = (np.asarray(enamel_prob) >= threshold).astype(np.uint8)
    # group parts closer than ~2 * join_px: the thin tail of the cap is often cut off by a
    # one-pixel gap, and it is exactly the part that holds the CEJ
    r = max(1, int(round(join_px)))
    grown = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    n, lab = cv2.connectedComponents(grown, connectivity=8)
    if n <= 1:
        return None
    counts = np.bincount(lab[mask > 0], minlength=n)
    biggest = int(np.argmax(counts[1:])) + 1
    ys, xs = np.nonzero((lab == biggest) & (mask > 0))
    if xs.size < 6:
        return None
    p = np.stack([xs, ys], axis=1).astype(np.float64)
    c = p.mean(axis=0)
    axis = np.asarray(apex_xy, dtype=np.float64) - c
    length = float(np.hypot(*axis))
    if not np.isfinite(length) or length < 1.0:
        return None
    y_dir = axis / length
    x_dir = np.array([-y_dir[1], y_dir[0]])
    s = (p - c) @ y_dir
    t = (p - c) @ x_dir
    ends = {}
    for sign in (1, -1):
        side = sign * t > 0
        if not side.any():
            return None
        ss = s[side]
        top = ss >= ss.max() - 0.5
        ends[sign] = p[side][top].mean(axis=0)
    palatal_sign = _palatal_sign(c, x_dir, pab_prob, cej_palatal_hint)
    if palatal_sign is None:
        return None
    return EnamelEnds(labial=ends[-palatal_sign], palatal=ends[palatal_sign])


def _palatal_sign(c: np.ndarray, x_dir: np.ndarray, pab_prob: np.ndarray | None,
                  hint: np.ndarray | None) -> int | None:
    if pab_prob is not None:
        w = np.clip(np.asarray(pab_prob, dtype=np.float64) - 0.5, 0, None)
        if w.sum() > 4.0:
            ys, xs = np.nonzero(w)
            t = ((np.stack([xs, ys], 1) - c) @ x_dir * w[ys, xs]).sum()
            if abs(t) > 0:
                return 1 if t > 0 else -1
    if hint is not None and np.all(np.isfinite(hint)):
        t = float((np.asarray(hint) - c) @ x_dir)
        if t != 0:
            return 1 if t > 0 else -1
    return None


def reconcile_cej(points: np.ndarray, confidence: np.ndarray, enamel_prob: np.ndarray,
                  pab_prob: np.ndarray | None, spacing_mm: float,
                  max_disagreement_mm: float = MAX_CEJ_DISAGREEMENT_MM,
                  min_confidence: float = MIN_CEJ_CONFIDENCE,
                  trusted_confidence: float = TRUSTED_CEJ_CONFIDENCE) -> tuple[np.ndarray, dict[str, str]]:
    """Cross-check the heatmap CEJs (``points`` in ``LANDMARKS`` order) against the enamel ends.

    Returns the points to use and ``{landmark: 'heatmap' | 'enamel_end'}``.
    ``spacing_mm`` is the (isotropic) pixel size of the maps.
    """
    out = np.array(points, dtype=np.float64)
    source = {name: "heatmap" for name in LANDMARKS}
    ia, il, ip = LANDMARKS.index("apex"), LANDMARKS.index("CEJ_labial"), LANDMARKS.index("CEJ_palatal")
    ends = enamel_ends(enamel_prob, out[ia], pab_prob, cej_palatal_hint=out[ip])
    if ends is None:
        return out, source
    for idx, cand in ((il, ends.labial), (ip, ends.palatal)):
        dist_mm = float(np.hypot(*(out[idx] - cand))) * spacing_mm
        if confidence[idx] < min_confidence or (dist_mm > max_disagreement_mm
                                                 and confidence[idx] < trusted_confidence):
            out[idx] = cand
            source[LANDMARKS[idx]] = "enamel_end"
    return out, source
