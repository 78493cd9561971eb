"""Reading an annotation's provenance: what came from the model, and what a person checked.

``CaseDocument`` (GUI) and ``model.predict`` write ``provenance["regions"|"landmarks"][name]``
with ``source`` "model" or "manual" and ``edited_by_hand`` once a person changed a model
output, and ``provenance["prediction"]`` (or, in a file written by ``dentseg predict``,
the top level) with the prediction's details, among them the plausibility verdict
``quality = {level, reasons}`` (``model.quality``). Qt-free, so the GUI's case list and the
measurement report read it the same way.
"""

from __future__ import annotations

from typing import Any

from .annotation import Annotation


def has_content(ann: Annotation | None) -> bool:
    """Any non-empty region or any landmark."""
    return ann is not None and (any(not g.is_empty for g in ann.regions.values()) or bool(ann.landmarks))


def is_model_only(ann: Annotation) -> bool:
    """True when every region and landmark came from the model and none was edited by hand."""
    prov = ann.provenance or {}
    items = []
    for kind, names in (("regions", [n for n, g in ann.regions.items() if not g.is_empty]),
                        ("landmarks", list(ann.landmarks))):
        table = prov.get(kind) if isinstance(prov.get(kind), dict) else {}
        items.extend(table.get(n) for n in names)
    if not items:
        return False

    def from_model(p: Any) -> bool:
        return (isinstance(p, dict) and p.get("source") == "model"
                and not p.get("edited_by_hand") and not p.get("edited"))

    return all(from_model(p) for p in items)


def hand_work(ann: Annotation) -> str | None:
    """What in ``ann`` a person made or that did not come from the model (a short sentence),
    or None when replacing it loses nothing but model output: every region and landmark
    came from the model unedited, or the file is empty and holds no pixel spacing."""
    if not has_content(ann):
        if ann.pixel_spacing_mm is None:
            return None
        sp = ann.pixel_spacing_mm
        return f"it holds a pixel spacing ({sp[0]:g} x {sp[1]:g} mm) and no model output"
    if is_model_only(ann):
        return None
    prov = ann.provenance or {}
    edited, unknown = [], []
    who = set()
    for kind, names in (("regions", [n for n, g in ann.regions.items() if not g.is_empty]),
                        ("landmarks", list(ann.landmarks))):
        table = prov.get(kind) if isinstance(prov.get(kind), dict) else {}
        for name in names:
            p = table.get(name)
            if not isinstance(p, dict) or p.get("source") not in ("model", "manual"):
                unknown.append(name)
            elif p.get("source") == "manual" or p.get("edited_by_hand") or p.get("edited"):
                edited.append(name)
                if p.get("edited_by"):
                    who.add(str(p["edited_by"]))
    parts = []
    if edited:
        by = f" (by {', '.join(sorted(who))})" if who else ""
        parts.append(f"{', '.join(edited)} drawn or edited by hand{by}")
    if unknown:
        parts.append(f"{', '.join(unknown)} without model provenance (made by hand or by another tool)")
    return "; ".join(parts) or "it is not unedited model output"


def prediction_quality(ann: Annotation | None) -> dict[str, Any] | None:
    """The plausibility verdict of the prediction behind ``ann`` ({level, reasons}), if any."""
    if ann is None:
        return None
    prov = ann.provenance or {}
    pred = prov.get("prediction")
    quality = (pred if isinstance(pred, dict) else prov).get("quality")
    return quality if isinstance(quality, dict) and quality.get("level") else None


#: verdicts of the plausibility check that ask a person to look (``model.quality.LEVELS[1:]``)
FLAGGED_LEVELS = ("check", "doubtful")


def flagged_quality(ann: Annotation | None) -> dict[str, Any] | None:
    """The prediction's verdict when it is 'check' or 'doubtful' (whether or not anyone has
    edited the case since); None when it passed or there is none."""
    quality = prediction_quality(ann)
    return quality if quality is not None and quality.get("level") in FLAGGED_LEVELS else None


def prediction_flag(ann: Annotation | None) -> tuple[str, str]:
    """('check' | 'doubtful', reasons) when ``ann`` is unreviewed model output that the
    plausibility check flagged; ('', '') otherwise (also once a person has edited it)."""
    if not has_content(ann) or not is_model_only(ann):
        return "", ""
    quality = flagged_quality(ann)
    if quality is None:
        return "", ""
    return str(quality["level"]), "; ".join(str(r) for r in quality.get("reasons", []))


SPACING_SOURCES = ("DICOM", "user", "assumed", "volume", "annotation")


def spacing_source(ann: Annotation | None) -> str:
    """Where the annotation's pixel spacing came from: 'DICOM' (the image file), 'user' (typed or
    --spacing), 'assumed' (--assume-spacing, or an old prediction that assumed it), 'volume' (a slice
    made from a volume), 'annotation' (stored without a record of its origin); '' when there is none."""
    if ann is None or ann.pixel_spacing_mm is None:
        return ""
    prov = ann.provenance or {}
    src = prov.get("spacing_source")
    if isinstance(src, str) and src in SPACING_SOURCES:
        return src
    pred = prov.get("prediction") if isinstance(prov.get("prediction"), dict) else prov
    if isinstance(pred, dict) and pred.get("spacing_assumed"):
        return "assumed"
    if isinstance(prov.get("plane"), dict):
        return "volume"
    return "annotation"


def unverified_model_note(ann: Annotation | None) -> str:
    """The "unverified model: ..." note of a prediction made by a model without a model card
    (``dentseg predict`` files keep it at the top of ``provenance``, the app under
    ``provenance.prediction``); '' when the model was verified or there was none."""
    prov = getattr(ann, "provenance", None) or {}
    for p in (prov, prov.get("prediction") if isinstance(prov.get("prediction"), dict) else None):
        if isinstance(p, dict) and p.get("model_verified") is False:
            return str(p.get("model_note") or "unverified model")
    return ""


__all__ = ["FLAGGED_LEVELS", "flagged_quality", "hand_work", "has_content", "is_model_only", "prediction_flag",
           "prediction_quality", "spacing_source", "unverified_model_note"]
