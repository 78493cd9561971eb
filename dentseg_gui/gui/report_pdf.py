"""PDF measurement report: per case the image with its overlay, the measurement
table (every key, with the reason where a value is missing), the model and the
provenance of each region, and the date; then, for slices made from a volume,
one page per tooth with its planes side by side (``report_tooth``).

Built from ``QTextDocument`` HTML painted onto a ``QPdfWriter``, one case per
page (a long case flows onto a second page). Works headless: only a
``QGuiApplication`` is needed, and one is made if none runs (the
``dentseg measure --pdf`` command calls :func:`write_pdf_report_for_files`).

:func:`render_overlay` draws the image and the annotation with ``QPainter``
(no canvas needed) in the colours of ``gui.style``; the window passes the
canvas's own rendering instead when it has one.
"""

from __future__ import annotations

import html
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..core.provenance import flagged_quality

_app_ref = None


def ensure_gui_app():
    """A running QGuiApplication (made offscreen if there is no display)."""
    global _app_ref
    from PySide6.QtGui import QGuiApplication
    app = QGuiApplication.instance()
    if app is None:
        if (sys.platform.startswith("linux") and not os.environ.get("DISPLAY")
                and not os.environ.get("WAYLAND_DISPLAY")):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = QGuiApplication(["dentseg"])
        _app_ref = app
    return app


# --------------------------------------------------------------------------- overlay image


def render_overlay(image, ann, crop: bool = True, max_side: int = 1400):
    """The image with regions, landmarks, axes and thickness chords (``overlay.render_overlay_image``).

    ``image`` may be None (annotation only): the structures are drawn on black.
    """
    ensure_gui_app()
    from ..core.image import SliceImage
    from ..core.measurements import measure
    from .overlay import render_overlay_image

    if image is None:
        image = SliceImage(np.zeros((int(ann.height), int(ann.width)), np.float32),
                           ann.pixel_spacing_mm, "", "array", 8)
    return render_overlay_image(image, ann, measurements=measure(ann), max_size=max_side, crop=crop)


# --------------------------------------------------------------------------- HTML


def _e(x: Any) -> str:
    return html.escape(str(x))


def _measurement_rows(ann) -> str:
    from ..core.measurements import MEASUREMENT_KEYS, measure
    ms = measure(ann)
    rows = []
    for k in MEASUREMENT_KEYS:
        v = ms.values.get(k.key)
        if v is None:
            val = f'<span style="color:#9a6a00">missing: {_e(ms.missing.get(k.key, "not measured"))}</span>'
        else:
            digits = 1 if k.unit in ("°", "mm²") else 2
            val = f"<b>{v:.{digits}f}</b> {_e(k.unit)}"
        style_ = "" if k.contract else ' style="color:#444"'
        rows.append(f"<tr{style_}><td>{_e(k.label)}</td><td><tt>{_e(k.key)}</tt></td>"
                    f"<td align=right>{val}</td></tr>")
    return "\n".join(rows)


def _provenance_html(ann, model_info: dict | None) -> str:
    prov = ann.provenance or {}
    lines = []
    pred = prov.get("prediction") if isinstance(prov.get("prediction"), dict) else {}
    if not pred and "prediction" in str(prov.get("source", "")).lower():
        pred = prov  # a file written by `dentseg predict`
    model = pred.get("model") or prov.get("model") or model_info
    if model:
        if isinstance(model, dict):
            name = model.get("name") or model.get("path") or "model"
            sha = model.get("sha256") or model.get("hash")
        else:
            name, sha = str(model), None
        sha = sha or pred.get("model_sha256")
        bits = [f"<b>{_e(Path(str(name)).name)}</b>"]
        if sha:
            bits.append(f"sha256 {_e(str(sha)[:16])}…")
        comp = pred.get("compensation")
        if isinstance(comp, dict):
            bits.append("boundary compensation " + ("on" if comp.get("enabled") else "off"))
        if pred.get("created"):
            bits.append(f"predicted {_e(pred['created'])}")
        if pred.get("spacing_assumed"):
            bits.append('<span style="color:#9a6a00">pixel spacing was assumed</span>')
        if pred.get("model_verified") is False:
            bits.append(f'<span style="color:#b35c00">{_e(str(pred.get("model_note") or "unverified model"))}</span>')
        lines.append("Model: " + ", ".join(bits))
        quality = flagged_quality(ann)
        if quality is not None:
            reasons = "; ".join(_e(str(r)) for r in quality.get("reasons", []))
            lines.append(f'<span style="color:#9a6a00">Model output flagged ({_e(quality["level"])}): '
                         f'{reasons}</span>')
    elif prov.get("generator"):
        lines.append(f"Source: synthetic phantom ({_e(prov.get('generator'))}, seed {_e(prov.get('seed', '?'))})")
    else:
        lines.append("Model: none (annotated by hand)")
    for kind in ("regions", "landmarks"):
        table = prov.get(kind)
        if isinstance(table, dict) and table:
            parts = []
            for name, info in table.items():
                if isinstance(info, dict):
                    src = info.get("source", "?")
                    if info.get("edited_by_hand") or info.get("edited"):
                        src += ", edited by hand"
                    who = info.get("edited_by")
                    at = info.get("edited_at") or info.get("predicted_at")
                    if who or at:
                        src += f" ({' '.join(str(x) for x in (who, at) if x)})"
                    parts.append(f"{_e(name)}: {_e(src)}")
                else:
                    parts.append(f"{_e(name)}: {_e(info)}")
            lines.append(f"{kind.capitalize()}: " + "; ".join(parts))
    for key in ("edited_by", "edited_at", "created_at", "saved_at", "predicted_at"):
        if prov.get(key):
            lines.append(f"{key.replace('_', ' ').capitalize()}: {_e(prov[key])}")
    return "<br>".join(lines)


def case_html(ann, index: int, total: int, image_info: str, img_w: int, img_h: int,
              model_info: dict | None, when: str, image_name: str = "", notes: Sequence[str] = ()) -> str:
    from ..core.measurements import measure
    from ..core.provenance import spacing_source
    sp = ann.pixel_spacing_mm
    src = spacing_source(ann)
    spacing = ((f"{sp[0]:.4g} × {sp[1]:.4g} mm (row × column)"
                + (f", from the {src}" if src in ("DICOM", "volume", "annotation") else
                   ", given by the user" if src == "user" else
                   ' — <b style="color:#b00020">ASSUMED</b>: every length and area scales with it'
                   if src == "assumed" else "")) if sp else
               '<span style="color:#9a6a00">unknown – measurements in mm are missing</span>')
    warn = [*notes, *measure(ann).warnings]
    notes_html = ("<p style=\"color:#9a3b00; font-size:9pt\">" + "<br>".join("⚠ " + _e(w) for w in warn)
                  + "</p>") if warn else ""
    landmarks = ", ".join(f"{_e(n)} ({p[0]:.1f}, {p[1]:.1f})" for n, p in ann.landmarks.items()
                          if p is not None) or "none placed"
    img_tag = (f'<p align=center><img src="{_e(image_name)}" width={img_w} height={img_h}></p>'
               if image_name else '<p style="color:#888">(no image available)</p>')
    return f"""
<table width=100% cellspacing=0 cellpadding=0><tr>
<td><span style="font-size:15pt; font-weight:bold">DentSeg measurement report</span><br>
<span style="color:#555">Palatal alveolar bone, CEJ–apex frame, millimetres</span></td>
<td align=right style="color:#555">{_e(when)}<br>case {index} of {total}</td></tr></table>
<hr>
<p style="font-size:11pt"><b>{_e(Path(ann.image_path).name)}</b> &nbsp; {image_info}<br>
Pixel spacing: {spacing}<br>Landmarks: {landmarks}</p>
{img_tag}
{notes_html}
<p style="color:#555; font-size:8pt" align=center>Amber: PAB · cyan: enamel · green: thickness at
25/50/75/90 % of the root length · red dashed: crest level · dashed white: CEJ–apex axes</p>
<table width=100% border=1 cellspacing=0 cellpadding=2 style="border-color:#bbb; font-size:9pt">
<tr style="background:#e8edf3"><th align=left>Measurement</th><th align=left>Key</th>
<th align=right>Value</th></tr>
{_measurement_rows(ann)}
</table>
<p style="font-size:8.5pt">{_provenance_html(ann, model_info)}</p>
<p style="font-size:7.5pt; color:#777">Generated by DentSeg. Values computed from the regions and
landmarks shown; a value marked missing could not be measured for the reason given. For research
use; a clinician must review the segmentation before relying on the numbers.</p>
"""


# --------------------------------------------------------------------------- writer


def _paint_report(painter, device, page_w: float, page_h: float, entries: Sequence[tuple],
                  new_page, model_info: dict | None, when: str, teeth: Sequence = ()) -> int:
    """Lay out and paint every case, then one page per whole-tooth summary (``teeth``);
    ``new_page()`` starts the next page and returns the painter to use on it. Returns the number of pages."""
    from PySide6.QtCore import QRectF, QSizeF, QUrl
    from PySide6.QtGui import QTextDocument

    pages = 0

    def make_doc():
        doc = QTextDocument()
        doc.documentLayout().setPaintDevice(device)
        doc.setPageSize(QSizeF(page_w, page_h))
        doc.setDocumentMargin(0)
        return doc

    def paint(doc) -> None:
        nonlocal pages, painter
        for page in range(max(1, doc.pageCount())):
            if pages:
                painter = new_page()
            pages += 1
            painter.save()
            painter.translate(0, -page * page_h)
            doc.drawContents(painter, QRectF(0, page * page_h, page_w, page_h))
            painter.restore()

    for i, entry in enumerate(entries):
        ann, image, overlay, notes = (tuple(entry) + (None, None, None))[:4]
        if overlay is None and (image is not None or ann.regions or ann.landmarks):
            overlay = render_overlay(image, ann)
        doc = make_doc()
        img_name = ""
        iw = ih = 0
        if overlay is not None and not overlay.isNull():
            img_name = f"overlay{i}.png"
            doc.addResource(QTextDocument.ResourceType.ImageResource, QUrl(img_name), overlay)
            max_w, max_h = page_w * 0.92, page_h * 0.52
            s = min(max_w / overlay.width(), max_h / overlay.height())
            iw, ih = int(overlay.width() * s), int(overlay.height() * s)
        info = ""
        if image is not None:
            info = (f"{image.width}×{image.height} px, {getattr(image, 'kind', '')} "
                    f"{getattr(image, 'bit_depth', '')}-bit")
        if img_name:
            # fit the picture into what the text leaves free, so a case stays on one page
            doc.setHtml(case_html(ann, i + 1, len(entries), _e(info), 1, 1, model_info, when, img_name,
                                  notes or ()))
            free = page_h - doc.size().height() - 0.02 * page_h
            if free < ih:
                s = max(free, 0.25 * page_h) / ih
                iw, ih = int(iw * s), int(ih * s)
        # <img width/height> are in 96-dpi units; the layout is in device pixels
        f = max(device.logicalDpiY(), 1) / 96.0
        doc.setHtml(case_html(ann, i + 1, len(entries), _e(info), int(iw / f), int(ih / f),
                              model_info, when, img_name, notes or ()))
        paint(doc)
    if teeth:
        from .report_tooth import thickness_plot, tooth_html
        f = max(device.logicalDpiY(), 1) / 96.0
        for n, summary in enumerate(teeth):
            doc = make_doc()
            plot = thickness_plot(summary)
            name = f"tooth_plot{n}.png"
            doc.addResource(QTextDocument.ResourceType.ImageResource, QUrl(name), plot)
            w = page_w * 0.85
            h = w * plot.height() / plot.width()
            doc.setHtml(tooth_html(summary, name, int(w / f), int(h / f), when))
            paint(doc)
    return pages


def write_pdf_report(entries: Sequence[tuple], pdf_path: str | Path, *,
                     model_info: dict | None = None, when: str | None = None, teeth: Sequence = ()) -> Path:
    """Write a PDF with one page per case (A4).

    ``entries``: list of ``(Annotation, SliceImage | None, QImage | None)``. When the
    QImage (the canvas's overlay rendering) is None, the overlay is drawn here from
    the image and the annotation. The file is written to a temporary name and
    moved into place, so a failed export never leaves half a PDF.
    """
    ensure_gui_app()
    from PySide6.QtCore import QMarginsF
    from PySide6.QtGui import QPageLayout, QPageSize, QPainter, QPdfWriter

    pdf_path = Path(pdf_path)
    if not entries:
        raise ValueError("no cases to report")
    when = when or datetime.now().strftime("%Y-%m-%d %H:%M")
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = pdf_path.with_name(f".{pdf_path.name}.{os.getpid()}.tmp")
    writer = QPdfWriter(str(tmp))
    writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
    writer.setPageMargins(QMarginsF(14, 12, 14, 12), QPageLayout.Unit.Millimeter)
    writer.setResolution(144)
    writer.setTitle("DentSeg measurement report")
    writer.setCreator("DentSeg")
    painter = QPainter()
    if not painter.begin(writer):
        raise OSError(f"cannot write {pdf_path}: the PDF could not be started (is the folder writable?)")
    try:
        rect = writer.pageLayout().paintRectPixels(writer.resolution())
        def new_page():
            writer.newPage()
            return painter

        _paint_report(painter, writer, float(rect.width()), float(rect.height()), entries,
                      new_page, model_info, when, teeth)
    finally:
        painter.end()
    if not tmp.exists() or tmp.stat().st_size == 0:
        raise OSError(f"cannot write {pdf_path}: the PDF writer produced no output")
    os.replace(tmp, pdf_path)
    return pdf_path


def render_report_pages(entries: Sequence[tuple], dpi: int = 96, *, model_info: dict | None = None,
                        when: str | None = None, teeth: Sequence = ()) -> list:
    """The report's pages as QImages (A4 at ``dpi``): a preview, and what tests look at."""
    ensure_gui_app()
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter

    when = when or datetime.now().strftime("%Y-%m-%d %H:%M")
    mm = dpi / 25.4
    full_w, full_h = int(210 * mm), int(297 * mm)
    page_w, page_h = full_w - 28 * mm, full_h - 24 * mm
    images: list = []

    def new_image():
        img = QImage(full_w, full_h, QImage.Format.Format_RGB32)
        img.setDotsPerMeterX(int(dpi / 0.0254))
        img.setDotsPerMeterY(int(dpi / 0.0254))
        img.fill(Qt.GlobalColor.white)
        images.append(img)
        return img

    state = {"painter": None}

    def begin(img):
        p = QPainter(img)
        p.translate(14 * mm, 12 * mm)
        state["painter"] = p
        return p

    def new_page():
        state["painter"].end()
        return begin(new_image())

    first = begin(new_image())
    try:
        _paint_report(first, images[0], page_w, page_h, entries, new_page, model_info, when, teeth)
    finally:
        state["painter"].end()
    return images


def write_pdf_report_for_files(anns: Sequence[tuple], pdf_path: str | Path, teeth: Sequence = ()) -> Path:
    """``dentseg measure --pdf``: ``anns`` = [(Annotation, annotation file Path)]; ``teeth``: whole-tooth
    summaries (``core.whole_tooth``), one page each after the cases.

    The image each annotation names is read relative to the annotation's folder; when it is
    missing or unreadable the page says so (and shows the regions without it); a bad image
    never stops the report.
    """
    from ..core.errors import DentsegError
    from ..core.image_io import load_image

    entries = []
    for ann, ann_path in anns:
        image, notes = None, []
        cand = Path(ann_path).parent / ann.image_path      # the image is named relative to its annotation
        if cand.is_file():
            try:
                image = load_image(cand, spacing=ann.pixel_spacing_mm)
            except DentsegError as exc:
                notes.append(f"the image could not be read ({exc}); the picture shows the regions without it")
        else:
            notes.append(f"image not found: {cand} (named '{ann.image_path}' in {Path(ann_path).name}); "
                         "the picture shows the regions without it")
        entries.append((ann, image, None, notes))
    return write_pdf_report(entries, pdf_path, teeth=teeth)


def count_pdf_pages(pdf_path: str | Path) -> int:
    """Pages in a PDF written by Qt (counts ``/Type /Page`` objects; no PDF library needed)."""
    import re
    data = Path(pdf_path).read_bytes()
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", data))
