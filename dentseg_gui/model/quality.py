"""Is a prediction believable? A plausibility check of the network's output for one slice.

A network trained on phantoms still answers on any image: a slice through the wrong
tooth, a coronal slice, an MR of a head. It then draws *something* and the numbers
look as precise as on a good case. This module flags such predictions so the
clinician checks them before using the measurements. It never changes a prediction.

Three kinds of evidence, each cheap:

* **Landmark confidence**: the share of a heatmap's mass at its peak
  (``SegmentationResult.landmark_confidence``).
* **Segmentation certainty**: the mean winning-class probability over the pixels
  predicted as PAB or enamel.
* **Anatomy**: root length, width of the tooth at the CEJ, PAB and enamel areas against
  broad ranges for an upper central incisor (which also catch a wrong pixel spacing).

Levels: ``ok``; ``check`` (something is weaker than on any of 60 in-distribution
phantoms: look at it); ``doubtful`` (the output is unlikely to be an upper incisor's
PAB at all).

The confidence thresholds belong to the model: a fine-tuned network can be surer or less
sure of itself than the one they were set on. Every training run fits them on its own
validation (or augmented training) cases (``model.quality_fit``) and stores them in the
model card (``quality_thresholds``); ``thresholds_from_card`` reads them, and a card
without them gets the module constants below. Those were set from
``benchmarks/bench_quality.py`` on the first bundled model - on 60 standard/faint held-out
phantoms its lowest landmark confidence was 0.76 and its lowest certainty 0.94, so
``check`` started below 0.7 and 0.9. The anatomical ranges do not depend on the model.

numpy only (no torch, no Qt).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..core.annotation import Annotation
from ..core.provenance import FLAGGED_LEVELS

LEVELS = ("ok", *FLAGGED_LEVELS)      # ok < check < doubtful

#: landmark confidence (heatmap mass at the peak): below CHECK look at it, below DOUBT it is a guess
LANDMARK_CHECK = 0.70
LANDMARK_DOUBT = 0.30
#: mean winning-class probability over the predicted PAB + enamel pixels
CERTAINTY_CHECK = 0.90
CERTAINTY_DOUBT = 0.80
#: broad anatomical ranges of an upper central incisor (mm, mm²); outside them the
#: prediction - or the pixel spacing - is wrong
ROOT_LENGTH_MM = (7.0, 25.0)
CEJ_WIDTH_MM = (3.5, 10.0)
PAB_AREA_MM2 = (5.0, 150.0)
ENAMEL_AREA_MM2 = (3.0, 40.0)


@dataclass(frozen=True)
class QualityThresholds:
    """The model-dependent thresholds of the check (landmark confidence, segmentation certainty)."""

    landmark_check: float = LANDMARK_CHECK
    landmark_doubt: float = LANDMARK_DOUBT
    certainty_check: float = CERTAINTY_CHECK
    certainty_doubt: float = CERTAINTY_DOUBT

    def as_card(self) -> dict[str, float]:
        return {k: round(float(getattr(self, k)), 4) for k in THRESHOLD_KEYS}


THRESHOLD_KEYS = ("landmark_check", "landmark_doubt", "certainty_check", "certainty_doubt")
DEFAULT_THRESHOLDS = QualityThresholds()


def thresholds_from_card(card: Mapping[str, Any] | None) -> QualityThresholds:
    """The card's ``quality_thresholds`` when it has a valid set, else the defaults.

    Valid: four numbers in [0, 1] with doubt <= check for both kinds of evidence; a
    damaged or partial entry falls back to the defaults as a whole (never a mix).
    """
    entry = (card or {}).get("quality_thresholds") if isinstance(card, Mapping) else None
    if not isinstance(entry, Mapping):
        return DEFAULT_THRESHOLDS
    try:
        vals = {k: float(entry[k]) for k in THRESHOLD_KEYS}
    except (KeyError, TypeError, ValueError):
        return DEFAULT_THRESHOLDS
    if not all(np.isfinite(v) and 0.0 <= v <= 1.0 for v in vals.values()):
        return DEFAULT_THRESHOLDS
    if vals["landmark_doubt"] > vals["landmark_check"] or vals["certainty_doubt"] > vals["certainty_check"]:
        return DEFAULT_THRESHOLDS
    return QualityThresholds(**vals)


@dataclass
class QualityCheck:
    findings: list[tuple[str, str]] = field(default_factory=list)   # (level, short phrase)

    def add(self, level: str, reason: str) -> None:
        if level not in LEVELS[1:]:
            raise ValueError(f"level must be one of {LEVELS[1:]}, got {level!r}")
        self.findings.append((level, reason))

    @property
    def level(self) -> str:
        """'ok', 'check' or 'doubtful': the worst finding."""
        return max((lvl for lvl, _ in self.findings), key=LEVELS.index, default="ok")

    @property
    def reasons(self) -> list[str]:
        """The findings' phrases, worst first."""
        return [r for lvl in reversed(LEVELS) for f_lvl, r in self.findings if f_lvl == lvl]

    def as_provenance(self) -> dict[str, Any]:
        return {"level": self.level, "reasons": list(self.reasons)}


def segmentation_certainty(probs: np.ndarray) -> float | None:
    """Mean winning-class probability over the pixels whose winner is PAB or enamel."""
    probs = np.asarray(probs)
    win = probs.argmax(axis=0)
    sel = win > 0
    if not sel.any():
        return None
    return float(probs.max(axis=0)[sel].mean())


def assess(ann: Annotation, landmark_confidence: Mapping[str, float] | None = None,
           certainty: float | None = None, spacing_assumed: bool = False,
           thresholds: QualityThresholds | None = None) -> QualityCheck:
    """Plausibility of a predicted annotation (with its measurements already applied).

    ``thresholds``: the predicting model's (``thresholds_from_card``); None = the defaults.
    """
    t = thresholds or DEFAULT_THRESHOLDS
    q = QualityCheck()
    hint = " (the pixel spacing was assumed: set it)" if spacing_assumed else ""

    for name in ("PAB", "enamel"):
        if ann.region(name).is_empty:
            q.add("doubtful", f"no {name} found")
    for name, conf in (landmark_confidence or {}).items():
        if conf is None or not np.isfinite(conf):
            continue
        label = name.replace("_", " ")
        if conf < t.landmark_doubt:
            q.add("doubtful", f"{label} is a guess (confidence {conf:.2f})")
        elif conf < t.landmark_check:
            q.add("check", f"{label} confidence {conf:.2f}")
    if certainty is not None:
        if certainty < t.certainty_doubt:
            q.add("doubtful", f"segmentation uncertain (certainty {certainty:.2f})")
        elif certainty < t.certainty_check:
            q.add("check", f"segmentation certainty {certainty:.2f}")

    m = ann.measurements
    ranges = (("root_length_mm", "root length", ROOT_LENGTH_MM, "mm"),
              ("pab_area_mm2", "PAB area", PAB_AREA_MM2, "mm²"),
              ("enamel_area_mm2", "enamel area", ENAMEL_AREA_MM2, "mm²"))
    for key, label, (lo, hi), unit in ranges:
        v = m.get(key)
        if v is not None and not lo <= v <= hi:
            q.add("doubtful", f"{label} {v:.1f} {unit} is outside {lo:g}-{hi:g} {unit}{hint}")
    width = cej_width_mm(ann)
    if width is not None and not CEJ_WIDTH_MM[0] <= width <= CEJ_WIDTH_MM[1]:
        q.add("doubtful", f"tooth width at the CEJ {width:.1f} mm is outside "
                          f"{CEJ_WIDTH_MM[0]:g}-{CEJ_WIDTH_MM[1]:g} mm{hint}")
    return q


def cej_width_mm(ann: Annotation) -> float | None:
    """Distance CEJ_labial - CEJ_palatal in mm (None without both points or a spacing)."""
    a, b = ann.landmarks.get("CEJ_labial"), ann.landmarks.get("CEJ_palatal")
    sp = ann.pixel_spacing_mm
    if a is None or b is None or sp is None:
        return None
    return float(np.hypot((a[0] - b[0]) * sp[1], (a[1] - b[1]) * sp[0]))


__all__ = ["DEFAULT_THRESHOLDS", "LEVELS", "QualityCheck", "QualityThresholds", "assess", "cej_width_mm",
           "segmentation_certainty", "thresholds_from_card"]
