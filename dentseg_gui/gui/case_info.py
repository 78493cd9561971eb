"""What the case-info box and the status bar say about the open case (HTML text, no widgets).

Built from the document alone, so the measurement dock, the tests and any other
view show the same words: image size and type, the pixel spacing, where each
region and landmark came from (model, hand, corrected), the model, and the
plausibility verdict of a prediction (``core.provenance.flagged_quality``).
"""

from __future__ import annotations

import html

from ..core.limits import spacing_problem
from ..core.provenance import flagged_quality, spacing_source


def prediction_note_html(quality: dict | None) -> str:
    """The case info line for a flagged verdict (``core.provenance.flagged_quality``); '' for None."""
    if quality is None:
        return ""
    doubtful = quality["level"] == "doubtful"
    colour = "#b00020" if doubtful else "#b35c00"
    head = ("Model output doubtful – is this a sagittal slice through an upper incisor, "
            "with the right pixel spacing?" if doubtful else "Model output to check:")
    reasons = [html.escape(str(r)) for r in quality.get("reasons", [])]
    return (f"<span style='color:{colour}'><b>{head}</b> " + "; ".join(reasons) + "</span>")


def _sources(ann) -> list[tuple[str, str]]:
    """(name, who) for every drawn region and placed landmark."""
    prov = ann.provenance or {}
    src = []
    for kind in ("regions", "landmarks"):
        table = prov.get(kind) if isinstance(prov.get(kind), dict) else {}
        names = ([n for n, g in ann.regions.items() if not g.is_empty] if kind == "regions"
                 else list(ann.landmarks))
        for n in names:
            p = table.get(n)
            if isinstance(p, dict):
                who = p.get("source", "?")
                if p.get("edited_by_hand"):
                    who = "model, corrected"
            else:
                who = "phantom truth" if prov.get("generator") else "hand"
            src.append((n, who))
    return src


def case_info_html(doc) -> str:
    """Image, spacing and where each region and landmark came from (model / hand); '' for None."""
    if doc is None:
        return ""
    ann, img = doc.annotation, doc.image
    sp = ann.pixel_spacing_mm
    name = html.escape(doc.image_path.name if doc.image_path else "case")
    src = spacing_source(ann)
    src_text = {"DICOM": " (from the DICOM file)", "user": " (given by the user)",
                "volume": " (of the volume's slice)", "annotation": " (from the annotation file)",
                "assumed": " <b style='color:#b00020'>ASSUMED</b>"}.get(src, "")
    lines = [f"<b>{name}</b> &nbsp;"
             f"{img.width}×{img.height} px, {getattr(img, 'kind', '')} {getattr(img, 'bit_depth', '')}-bit",
             "Spacing: " + (f"{sp[0]:.4g} × {sp[1]:.4g} mm{src_text}" if sp else
                            "<span style='color:#b35c00'>unknown – Edit › Pixel spacing…</span>")]
    for w in doc.measurements().warnings:          # pieces left out of the numbers
        lines.append(f"<span style='color:#9a3b00'>⚠ {html.escape(w)}</span>")
    src = _sources(ann)
    if src:
        groups: dict[str, list[str]] = {}
        for n, who in src:
            groups.setdefault(who, []).append(n)
        lines.append("Source: " + "; ".join(f"{html.escape(str(who))}: {', '.join(ns)}"
                                            for who, ns in groups.items()))
    else:
        lines.append("Nothing annotated yet: draw, or Model › Predict (Ctrl+R).")
    prov = ann.provenance or {}
    pred = prov.get("prediction") if isinstance(prov.get("prediction"), dict) else None
    if pred:
        model = pred.get("model")
        model_name = model.get("name") if isinstance(model, dict) else model
        lines.append(f"Model: {html.escape(str(model_name or 'LU-Net'))}"
                     + (f" ({html.escape(str(pred.get('model_sha256'))[:10])}…)" if pred.get("model_sha256") else ""))
        for key in ("model_note", "engine_note"):       # an unverified model, a torch fallback
            if pred.get(key):
                lines.append(f"<span style='color:#b35c00'>{html.escape(str(pred[key]))}</span>")
    # the verdict of the prediction behind this case (also from a `dentseg predict` file)
    note = prediction_note_html(flagged_quality(ann))
    if note:
        lines.append(note)
    return "<br>".join(lines)


def spacing_label_html(doc) -> str:
    """The status bar's spacing read-out: '' (no case), 'spacing unknown', or 'R×C mm/px'."""
    if doc is None:
        return ""
    sp = doc.annotation.pixel_spacing_mm
    if sp is None:
        return "<span style='color:#b35c00'>spacing unknown</span>"
    return f"{sp[0]:.4g}×{sp[1]:.4g} mm/px"


def parse_spacing_text(text: str) -> tuple[float, float] | None:
    """'0.125' or '0.1, 0.12' (also 'x' or ';' between) -> (row, col) mm; None if not a pixel size."""
    try:
        vals = [float(v) for v in text.replace("x", ",").replace(";", ",").split(",") if v.strip()]
    except ValueError:
        return None
    if len(vals) == 1:
        vals *= 2
    if len(vals) != 2 or spacing_problem(vals) is not None:  # the range annotation files accept
        return None
    return vals[0], vals[1]
