"""How good is a model on a set of annotated cases? (and is a new one better than the old one?)

The numbers a clinician needs before adopting a fine-tuned model, on their own annotated
cases that the model was not trained on: Dice of PAB and enamel, landmark error, and the
errors of the measurements that matter (PAB thickness at the four contract levels, PAB
height, crest-to-CEJ, PAB area). Each case is predicted with the full pipeline
(``Predictor``: network, regions, boundary compensation, landmarks, measurements,
plausibility check) and scored with ``evaluate.evaluate_pair`` against its annotation.

* ``evaluate_model(model, cases)``: any iterable of (name, image, truth annotation);
* ``evaluate_model_on_folder(model, folder, exclude=...)``: the annotated cases of a folder
  (the same discovery as training), leaving out e.g. the ones a model was trained on;
* ``compare_models(old, new, folder, exclude=...)``: both on the same cases, side by side.

Qt-free; ``progress(done, total, name)`` and ``should_stop()`` as everywhere in the model
package, so the GUI can run it in a worker. Used by ``benchmarks/bench_finetune.py``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..core.annotation import Annotation
from ..core.errors import DentsegError
from ..core.image import SliceImage

THICKNESS_KEYS = ("pab_thickness_25_mm", "pab_thickness_50_mm", "pab_thickness_75_mm", "pab_thickness_90_mm")
#: summary keys: (label, flattened metric key); "mean" of each over the cases
SUMMARY_KEYS = (
    ("dice_pab", "dice.PAB"), ("dice_enamel", "dice.enamel"), ("landmark_mre_mm", "landmark_mm.mean"),
    ("thickness_err_mm", "thickness_err_mm"), ("pab_height_err_mm", "abs_error.pab_height_mm"),
    ("crest_cej_err_mm", "abs_error.pab_crest_cej_mm"), ("pab_area_err_pct", "pab_area_error_pct"),
    ("palatal_boundary_mm", "palatal_boundary_mm"),
)


class EvaluationCancelled(DentsegError):
    """``should_stop`` ended an evaluation."""


@dataclass
class CaseResult:
    name: str
    metrics: dict[str, Any]          # evaluate_pair(...) plus thickness_err_mm
    quality: str                     # the prediction's plausibility level


@dataclass
class ModelEvaluation:
    model: str                       # name from the model card
    sha256: str | None
    cases: list[CaseResult] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)   # case name -> why it could not be scored

    def summary(self) -> dict[str, Any]:
        """Mean of each ``SUMMARY_KEYS`` metric over the cases where it exists, plus counts."""
        from .evaluate import flatten_metrics

        flat = [flatten_metrics(c.metrics) for c in self.cases]
        out: dict[str, Any] = {"n_cases": len(self.cases), "n_failed": len(self.errors),
                               "n_flagged": sum(c.quality != "ok" for c in self.cases)}
        for label, key in SUMMARY_KEYS:
            vals = [f[key] for f in flat if f.get(key) is not None and math.isfinite(f[key])]
            out[label] = float(np.mean(vals)) if vals else None
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "sha256": self.sha256, "summary": self.summary(),
                "cases": {c.name: {"quality": c.quality, **_summary_of(c.metrics)} for c in self.cases},
                "errors": dict(self.errors)}


def _summary_of(m: dict[str, Any]) -> dict[str, Any]:
    from .evaluate import flatten_metrics

    f = flatten_metrics(m)
    return {label: f.get(key) for label, key in SUMMARY_KEYS}


def _predictor(model):
    from .predict import Predictor

    return model if isinstance(model, Predictor) else Predictor(model)


def case_metrics(pred: Annotation, truth: Annotation) -> dict[str, Any]:
    """``evaluate_pair`` plus ``thickness_err_mm``: the mean absolute error over the four levels."""
    from .evaluate import evaluate_pair

    m = evaluate_pair(pred, truth)
    th = [m["abs_error"][k] for k in THICKNESS_KEYS if m["abs_error"].get(k) is not None]
    m["thickness_err_mm"] = float(np.mean(th)) if th else None
    return m


def evaluate_model(model, cases: Iterable[tuple[str, SliceImage, Annotation]],
                   progress: Callable[[int, int, str], None] | None = None,
                   should_stop: Callable[[], bool] | None = None, total: int | None = None) -> ModelEvaluation:
    """Predict and score every (name, image, truth) case; ``model``: file, None (bundled) or a Predictor."""
    predictor = _predictor(model)
    seg = predictor.load()
    ev = ModelEvaluation(getattr(seg, "name", "model"), getattr(seg, "sha256", None))
    done = 0
    for name, image, truth in cases:
        if should_stop is not None and should_stop():
            raise EvaluationCancelled(f"evaluation cancelled after {done} cases")
        if progress is not None:
            progress(done, total if total is not None else done + 1, name)
        try:
            res = predictor.predict_image(image, spacing=truth.pixel_spacing_mm)
            ev.cases.append(CaseResult(name, case_metrics(res.annotation, truth), res.quality.level))
        except DentsegError as exc:
            ev.errors[name] = str(exc)
        done += 1
    if progress is not None:
        progress(done, done, "")
    return ev


def folder_cases(folder: str | os.PathLike, exclude: Iterable[str] = ()) -> list[tuple[str, Path, Path]]:
    """(name, image path, annotation path) of the annotated cases of ``folder`` not in ``exclude``
    (names = image stems, or image file names, or paths)."""
    from .dataset import find_annotated_cases

    skip = {Path(str(e)).stem for e in exclude} | {Path(str(e)).name for e in exclude}
    return [(cf.name, cf.image_path, cf.annotation_path) for cf in find_annotated_cases(folder)
            if cf.name not in skip and cf.image_path.name not in skip]


def evaluate_model_on_folder(model, folder: str | os.PathLike, exclude: Iterable[str] = (),
                             progress: Callable[[int, int, str], None] | None = None,
                             should_stop: Callable[[], bool] | None = None) -> ModelEvaluation:
    """``evaluate_model`` on the annotated cases of ``folder`` (minus ``exclude``).

    A case whose image or annotation cannot be read is listed in ``errors``, not fatal.
    """
    from ..core.annotation import load_annotation
    from ..core.image_io import load_image

    files = folder_cases(folder, exclude)
    bad: dict[str, str] = {}

    def gen():
        for name, img_path, ann_path in files:
            try:
                truth = load_annotation(ann_path)
                image = load_image(img_path, truth.pixel_spacing_mm)
            except DentsegError as exc:
                bad[name] = str(exc)
                continue
            yield name, image, truth

    ev = evaluate_model(model, gen(), progress, should_stop, total=len(files))
    ev.errors.update(bad)
    return ev


def compare_models(old, new, folder: str | os.PathLike, exclude: Iterable[str] = (),
                   progress: Callable[[int, int, str], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Both models on the same cases: {'old': summary, 'new': summary, 'better': {metric: bool}}."""
    exclude = list(exclude)
    a = evaluate_model_on_folder(old, folder, exclude, progress, should_stop)
    b = evaluate_model_on_folder(new, folder, exclude, progress, should_stop)
    sa, sb = a.summary(), b.summary()
    higher_is_better = {"dice_pab", "dice_enamel"}
    better = {}
    for label, _ in SUMMARY_KEYS:
        if sa.get(label) is None or sb.get(label) is None:
            continue
        better[label] = sb[label] > sa[label] if label in higher_is_better else sb[label] < sa[label]
    return {"old": a.as_dict(), "new": b.as_dict(), "better": better}


__all__ = ["CaseResult", "EvaluationCancelled", "ModelEvaluation", "case_metrics", "compare_models",
           "evaluate_model", "evaluate_model_on_folder", "folder_cases"]
