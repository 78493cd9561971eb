"""Per-class probability weights of a calibrated model (fitted by ``model.calibration``).

A model card may carry ``calibration.class_weights``: the class probabilities are
multiplied by them and renormalised before the arg-max. Kept apart from the
fitting code so inference does not import the phantom generator.
"""

from __future__ import annotations

import numpy as np


def apply_class_weights(probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(C, H, W) probabilities reweighted per class and renormalised to sum to 1."""
    w = np.asarray(weights, np.float32).reshape(-1, 1, 1)
    out = probs * w
    out /= np.maximum(out.sum(axis=0, keepdims=True), 1e-12)
    return out.astype(np.float32, copy=False)
