"""A fine-tuned model against the one it would replace, on the folder's other annotated cases.

After a fine-tune the clinician must see, before adopting the new model, how both do on
their own cases that the new model did not learn from: ``compare_models`` on the folder's
annotated cases minus the training cases, minus unreviewed model output and annotations
without both regions (neither is truth). ``comparison_rows`` turns the result into the table the app shows; when no
case is left to compare on, ``compare_for_version`` says so in ``note``.

Qt-free.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable

#: (summary key, row label, format, higher is better)
ROWS = (
    ("dice_pab", "Dice PAB", "{:.3f}", True),
    ("dice_enamel", "Dice enamel", "{:.3f}", True),
    ("landmark_mre_mm", "Landmark error (mm)", "{:.2f}", False),
    ("thickness_err_mm", "PAB thickness error (mm)", "{:.2f}", False),
    ("pab_height_err_mm", "PAB height error (mm)", "{:.2f}", False),
    ("crest_cej_err_mm", "Crest–CEJ error (mm)", "{:.2f}", False),
    ("pab_area_err_pct", "PAB area error (%)", "{:.1f}", False),
)


def cases_not_truth(folder: str | os.PathLike) -> tuple[list[str], list[str]]:
    """(unreviewed, incomplete): names of the folder's annotation files that cannot serve as
    truth - only model output nobody reviewed, or without both a PAB and an enamel region."""
    from ..core.annotation import SUFFIX, load_annotation
    from ..core.errors import DentsegError
    from ..core.provenance import is_model_only

    unreviewed, incomplete = [], []
    for ap in sorted(Path(folder).glob("*" + SUFFIX)):
        name = ap.name[: -len(SUFFIX)]
        try:
            ann = load_annotation(ap)
        except (DentsegError, OSError):
            continue                   # model_eval lists it among the errors
        if any(ann.region(n).is_empty for n in ("PAB", "enamel")):
            incomplete.append(name)
        elif is_model_only(ann):
            unreviewed.append(name)
    return unreviewed, incomplete


def compare_for_version(previous_model, new_model, folder: str | os.PathLike, training_images: Iterable[str],
                        progress: Callable[[int, int, str], None] | None = None,
                        should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """``compare_models(previous, new, folder, exclude=training + unreviewed)`` plus what was left out.

    ``previous_model`` / ``new_model``: a model file or None (bundled). Returns the comparison
    with ``folder``, ``excluded_training``, ``excluded_unreviewed``, ``n_compared`` and a
    ``note`` (non-empty when nothing or little could be compared).
    """
    from ..core.errors import DentsegError
    from .dataset import find_annotated_cases
    from .model_eval import compare_models

    folder = Path(folder)
    training = sorted({Path(p).stem for p in training_images if Path(p).parent.resolve() == folder.resolve()})
    unreviewed, incomplete = cases_not_truth(folder)
    exclude = training + unreviewed + incomplete
    try:
        n_annotated = len(find_annotated_cases(folder))
    except DentsegError:
        n_annotated = 0
    base = {"folder": str(folder), "excluded_training": training, "excluded_unreviewed": unreviewed,
            "excluded_incomplete": incomplete,
            "previous_model": None if previous_model is None else str(previous_model),
            "new_model": str(new_model)}
    left = n_annotated - len(set(exclude))
    if n_annotated == 0 or left <= 0:
        return dict(base, n_compared=0, old=None, new=None, better={},
                    note=(f"No annotated case of {folder.name} is left to compare on: every annotated case was "
                          "used for training" + (" or is unreviewed model output" if unreviewed else "")
                          + ". Annotate another case (Model › Annotate next) to compare the models."))
    result = compare_models(previous_model, new_model, folder, exclude=exclude, progress=progress,
                            should_stop=should_stop)
    n = int(result["new"]["summary"]["n_cases"])
    note = ""
    if n == 0:
        note = "None of the remaining cases could be scored: " + "; ".join(result["new"]["errors"].values())[:300]
    elif n < 3:
        note = f"Only {n} case(s) to compare on: a small sample, judge with care."
    return dict(base, **result, n_compared=n, note=note)


def comparison_rows(result: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(label, previous, new, the new model is better: True/False/None) per metric, then counts."""
    old = ((result.get("old") or {}).get("summary")) or {}
    new = ((result.get("new") or {}).get("summary")) or {}
    rows: list[tuple[str, str, str, bool | None]] = []

    def fmt(v, f):
        return "–" if v is None else f.format(v)

    for key, label, f, higher in ROWS:
        a, b = old.get(key), new.get(key)
        better = None
        if a is not None and b is not None and fmt(a, f) != fmt(b, f):    # a difference that shows
            better = (b > a) if higher else (b < a)
        rows.append((label, fmt(a, f), fmt(b, f), better))
    rows.append(("Cases compared", str(old.get("n_cases", 0)), str(new.get("n_cases", 0)), None))
    rows.append(("Flagged by the plausibility check", str(old.get("n_flagged", 0)), str(new.get("n_flagged", 0)),
                 None))
    return rows


__all__ = ["ROWS", "compare_for_version", "comparison_rows", "cases_not_truth"]
