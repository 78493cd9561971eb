"""Fit the plausibility check's confidence thresholds to a model (``model.quality``).

Why: ``quality.assess`` flags a prediction whose landmark confidence or segmentation
certainty is weaker than the model shows on cases it handles well. How sure a network is
depends on the network: a fine-tuned model may be surer of itself everywhere (flagging
nothing) or less sure (flagging everything) than the bundled one the constants were set
on. So every training run ends by running its best model - through the full
``Segmenter``, two views and all - on cases it should handle well, and sets:

* ``landmark_check``  = 0.92 x the 2nd percentile of the weakest landmark's confidence
  (the rule the original constants followed: weakest 0.76 -> check below 0.70),
  ``landmark_doubt`` = 0.43 x ``landmark_check`` (0.70 -> 0.30);
* ``certainty_check`` = that percentile of the segmentation certainty minus 0.04
  (0.94 -> 0.90), ``certainty_doubt`` = ``certainty_check`` - 0.10;

each clipped to a sane band (``BOUNDS``), so a model that is unsure even of good cases
cannot switch the check off, nor a very sure one make it flag everything.

The cases: the validation split when training held one out (unchanged images plus one
augmented copy each), else the training cases themselves in ``augmented_copies``
augmented versions each (geometry and intensity, the training preset), which is what a
user with one to a few annotated cases can spare. The entry goes into the model card as
``quality_thresholds`` with what it was fitted on.

    python -m dentseg_gui.model.quality_fit MODEL DATA_DIR     # refit on a folder of annotated cases
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..core.image import SliceImage
from .augment import BASIC_AUGMENT, AugmentConfig, augment_intensity, crop_matrix, warp_case
from .dataset import PreparedCase
from .model_file import print_card_entry
from .quality import QualityThresholds, segmentation_certainty

#: (low, high) allowed for each threshold
BOUNDS = {"landmark_check": (0.35, 0.80), "landmark_doubt": (0.12, 0.35),
          "certainty_check": (0.75, 0.93), "certainty_doubt": (0.65, 0.85)}
#: quantile of the fitted samples taken as "the weakest a good case gets"
LOW_QUANTILE = 0.02


def _window_image(img: np.ndarray, spacing_mm: float) -> SliceImage:
    return SliceImage(np.ascontiguousarray(img, dtype=np.float32), (spacing_mm, spacing_mm), "",
                      kind="array", bit_depth=16)


def augmented_window(case: PreparedCase, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """The whole case window, rotated / scaled / mirrored / shifted and intensity-augmented."""
    h, w = case.image.shape
    size = int(max(h, w))
    shift = rng.uniform(-0.5, 0.5, size=2) * cfg.shift_frac * min(h, w) * 0.5
    m = crop_matrix(case.center + shift, size, angle_deg=rng.uniform(-cfg.rotate_deg, cfg.rotate_deg),
                    scale=rng.uniform(*cfg.scale), flip=bool(rng.random() < cfg.flip_p))
    img, _, _ = warp_case(case, m, size)
    return augment_intensity(img, rng, cfg)


def confidence_samples(model, cases: Sequence[PreparedCase], canonical_mm: float, *,
                       plain: bool, augmented_copies: int, seed: int = 0,
                       augment: AugmentConfig = BASIC_AUGMENT) -> list[tuple[float, float]]:
    """(weakest landmark confidence, segmentation certainty) of ``model`` on each sample."""
    from .inference import Segmenter

    seg = Segmenter.from_model(model, "threshold fit")
    rng = np.random.default_rng([seed, 17])
    out = []
    for case in cases:
        imgs = [case.image.astype(np.float32)] if plain else []
        imgs += [augmented_window(case, rng, augment) for _ in range(augmented_copies)]
        for img in imgs:
            res = seg.segment(_window_image(img, canonical_mm))
            cert = segmentation_certainty(res.probs)
            out.append((float(min(res.landmark_confidence.values())), 0.0 if cert is None else cert))
    return out


def thresholds_from_samples(samples: Sequence[tuple[float, float]]) -> QualityThresholds:
    conf = np.array([s[0] for s in samples], float)
    cert = np.array([s[1] for s in samples], float)
    lo_conf = float(np.quantile(conf, LOW_QUANTILE))
    lo_cert = float(np.quantile(cert, LOW_QUANTILE))

    def clip(key: str, v: float) -> float:
        a, b = BOUNDS[key]
        return float(min(max(v, a), b))

    lc = clip("landmark_check", 0.92 * lo_conf)
    cc = clip("certainty_check", lo_cert - 0.04)
    return QualityThresholds(landmark_check=lc, landmark_doubt=min(clip("landmark_doubt", 0.43 * lc), lc),
                             certainty_check=cc, certainty_doubt=min(clip("certainty_doubt", cc - 0.10), cc))


def fit_quality_thresholds(model, val_cases: Sequence[PreparedCase], train_cases: Sequence[PreparedCase],
                           canonical_mm: float, seed: int = 0, augmented_copies: int = 8,
                           augment: AugmentConfig = BASIC_AUGMENT) -> dict[str, Any]:
    """The model card entry ``quality_thresholds`` (see the module docstring for the rule)."""
    if val_cases:
        samples = confidence_samples(model, val_cases, canonical_mm, plain=True, augmented_copies=1,
                                     seed=seed, augment=augment)
        on = f"{len(val_cases)} validation cases, unchanged and one augmented copy each"
    else:
        copies = max(1, int(augmented_copies))
        samples = confidence_samples(model, train_cases, canonical_mm, plain=False, augmented_copies=copies,
                                     seed=seed, augment=augment)
        on = f"{len(train_cases)} training cases, {copies} augmented copies each (no validation split)"
    t = thresholds_from_samples(samples)
    conf = np.array([s[0] for s in samples])
    cert = np.array([s[1] for s in samples])
    return {**t.as_card(), "fitted_on": on, "n_samples": len(samples),
            "weakest_landmark_confidence": {"min": round(float(conf.min()), 4),
                                            "p02": round(float(np.quantile(conf, LOW_QUANTILE)), 4),
                                            "median": round(float(np.median(conf)), 4)},
            "certainty": {"min": round(float(cert.min()), 4),
                          "p02": round(float(np.quantile(cert, LOW_QUANTILE)), 4),
                          "median": round(float(np.median(cert)), 4)},
            "rule": "check = 0.92 x p02 of the weakest landmark confidence, doubt = 0.43 x check; "
                    "certainty check = p02 - 0.04, doubt = check - 0.10; clipped to "
                    + ", ".join(f"{k} {a:g}-{b:g}" for k, (a, b) in BOUNDS.items())}


def record_quality_thresholds(model_path: str | Path, data_dir: str | Path, seed: int = 0) -> dict[str, Any]:
    """Refit on every case of ``data_dir`` (treated as unseen: each unchanged and one augmented
    copy) and write the entry into the card."""
    from .dataset import CANONICAL_SPACING_MM, load_cases
    from .weights import card_to_update, load_model, write_card

    card = card_to_update(model_path, "quality thresholds")
    model, _, _ = load_model(model_path)
    cases, _ = load_cases(data_dir)
    entry = fit_quality_thresholds(model, cases, cases, float(card.get("canonical_spacing_mm", CANONICAL_SPACING_MM)),
                                   seed=seed)
    entry["fitted_on"] = f"{data_dir}: " + entry["fitted_on"]
    card["quality_thresholds"] = entry
    write_card(model_path, card)
    return entry


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(prog="python -m dentseg_gui.model.quality_fit",
                                 description="refit the plausibility thresholds of MODEL on DATA_DIR")
    ap.add_argument("model", type=Path)
    ap.add_argument("data_dir", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    return print_card_entry(lambda: record_quality_thresholds(args.model, args.data_dir))


if __name__ == "__main__":
    sys.exit(main())
