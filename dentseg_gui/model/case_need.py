"""How much does the model need this case annotated? A per-case score for active learning.

A clinician with a new scanner annotates a few cases to fine-tune on; the best ones to
annotate are those the model gets wrong, and that can be guessed without the truth from
how the model behaves on the case:

* **two-view disagreement**: the slice is segmented as it is and mirrored (each view
  alone, ``Segmenter.flip_averaging`` off); where the network understands the anatomy the
  two agree. 1 - mean Dice (PAB, enamel) of the two label maps, and the mean distance
  (mm) between their landmarks;
* **uncertainty**: 1 - segmentation certainty (mean winning-class probability over the
  PAB and enamel pixels, as in ``model.quality``) of the averaged views;
* **weakest landmark confidence**;
* **plausibility verdict** of the full prediction when the caller has one (ok / check /
  doubtful).

``score`` combines them into 0..1 (higher = annotate first):

    score = 1 - (1 - s_dis) (1 - s_unc) (1 - s_lm) (1 - s_verdict)

with each part scaled so that a typical in-distribution phantom gives ~0 and a case the
model gets clearly wrong ~1 (``SCALES``; ``benchmarks/bench_quality.py --need`` shows how
the score orders cases by their true error). ``rank_cases`` sorts a batch.

numpy + the model package; no Qt. Costs two network passes of the region of interest
(~2 x 50-150 ms on 2 CPU threads).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ..core.geometry import dice
from ..core.image import SliceImage
from .quality import segmentation_certainty

#: (value of no concern, value of full concern) of each part, mapped linearly onto 0..1
SCALES = {
    "disagreement": (0.02, 0.15),          # 1 - Dice between the two views
    "landmark_spread_mm": (0.3, 2.0),      # mean landmark distance between the views
    "uncertainty": (0.06, 0.25),           # 1 - certainty
    "weak_landmark": (0.3, 0.85),          # 1 - weakest landmark confidence
}
VERDICT_PART = {"ok": 0.0, "check": 0.5, "doubtful": 1.0}


@dataclass
class CaseNeed:
    score: float                      # 0..1, higher = annotate first
    disagreement: float               # 1 - mean Dice (PAB, enamel) between the two views
    landmark_spread_mm: float         # mean distance between the views' landmarks (mm)
    uncertainty: float                # 1 - segmentation certainty of the averaged views
    weakest_landmark_confidence: float
    verdict: str | None               # the plausibility level passed in, if any
    parts: dict[str, float]           # each part on 0..1
    weakest_landmark: str | None = None   # the landmark of ``weakest_landmark_confidence``

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("score", "disagreement", "landmark_spread_mm", "uncertainty",
                                              "weakest_landmark_confidence", "verdict", "parts",
                                              "weakest_landmark")}


def _scaled(key: str, v: float) -> float:
    lo, hi = SCALES[key]
    return float(np.clip((v - lo) / (hi - lo), 0.0, 1.0))


def single_view(segmenter):
    """A shallow copy of a ``Segmenter`` running one view only (shares the loaded network)."""
    one = copy.copy(segmenter)
    one.flip_averaging = False
    return one


def case_need(segmenter, image: SliceImage, spacing: tuple[float, float] | None = None,
              verdict: str | None = None) -> CaseNeed:
    """The need score of one slice. ``segmenter``: a loaded ``Segmenter`` (``Predictor.load()``)."""
    seg = single_view(segmenter)
    a = seg.segment(image, spacing=spacing)
    mirrored = SliceImage(np.ascontiguousarray(image.pixels[:, ::-1]), image.spacing_mm, image.source,
                          image.kind, image.bit_depth, dict(image.meta))
    b = seg.segment(mirrored, spacing=spacing)
    probs_b = b.probs[:, :, ::-1]
    w = image.width
    lab_a, lab_b = a.labels(), np.argmax(probs_b, axis=0)
    dis = 1.0 - 0.5 * (dice(lab_a == 1, lab_b == 1) + dice(lab_a == 2, lab_b == 2))
    sr, sc = a.spacing_used
    spreads = []
    for name, (xa, ya) in a.landmarks.items():
        xb, yb = b.landmarks[name]
        spreads.append(float(np.hypot((xa - (w - 1 - xb)) * sc, (ya - yb) * sr)))
    spread = float(np.mean(spreads)) if spreads else 0.0
    cert = segmentation_certainty(0.5 * (a.probs + probs_b))
    unc = 1.0 if cert is None else 1.0 - cert
    confs = {n: min(c, b.landmark_confidence.get(n, c)) for n, c in a.landmark_confidence.items()}
    weakest = min(confs, key=confs.get) if confs else None
    conf = min(min(a.landmark_confidence.values()), min(b.landmark_confidence.values()))
    parts = {"disagreement": max(_scaled("disagreement", dis), _scaled("landmark_spread_mm", spread)),
             "uncertainty": _scaled("uncertainty", unc),
             "weak_landmark": _scaled("weak_landmark", 1.0 - conf),
             "verdict": VERDICT_PART.get(verdict, 0.0) if verdict else 0.0}
    score = 1.0 - float(np.prod([1.0 - v for v in parts.values()]))
    return CaseNeed(score, dis, spread, unc, conf, verdict, parts, weakest)


def rank_cases(segmenter, cases: Iterable[tuple[str, SliceImage]],
               verdicts: Mapping[str, str] | None = None,
               progress: Callable[[int, int, str], None] | None = None,
               should_stop: Callable[[], bool] | None = None) -> list[tuple[str, CaseNeed]]:
    """(name, need) of every case, neediest first. Stops early (returning what it has) on ``should_stop``."""
    out = []
    items = list(cases)
    for i, (name, image) in enumerate(items):
        if should_stop is not None and should_stop():
            break
        if progress is not None:
            progress(i, len(items), name)
        out.append((name, case_need(segmenter, image, verdict=(verdicts or {}).get(name))))
    return sorted(out, key=lambda t: -t[1].score)


__all__ = ["CaseNeed", "SCALES", "case_need", "rank_cases", "single_view"]
