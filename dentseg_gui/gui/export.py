"""Export glue: CSV, PDF and PNG for the current case or every case in the list.

The numbers always come from ``core.measurements.measure`` on the regions and
landmarks (via ``core.report``), never from values cached in a file, so an
export can't disagree with the measurement panel. The open case is exported
as it is on screen (unsaved edits included); the other cases as saved on disk.
Every file is written atomically.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..core.annotation import Annotation, annotation_path_for, load_annotation
from ..core.atomic import atomic_write_bytes
from ..core.errors import DentsegError

log = logging.getLogger("dentseg.gui.export")


@dataclass
class ExportItem:
    image_path: Path
    annotation: Annotation
    annotation_path: Path
    image: object = None        # SliceImage when already in memory (the open case)
    overlay: object = None      # QImage from the canvas for the open case
    unsaved: bool = False       # the open case with edits not yet in its file

    @property
    def source_text(self) -> str:
        """What the report's ``annotation`` column says the row came from."""
        if not self.unsaved:
            return str(self.annotation_path)
        return (f"{self.annotation_path} + unsaved changes" if self.annotation_path.exists()
                else "unsaved case (not yet saved to a file)")


def item_for_document(doc, overlay=None) -> ExportItem:
    """The open case as shown (unsaved edits included)."""
    ann = doc.annotation_for_save() if hasattr(doc, "annotation_for_save") else doc.annotation
    img_path = doc.image_path or Path(ann.image_path)
    ann_path = doc.annotation_path or annotation_path_for(img_path)
    unsaved = bool(doc.is_modified()) if hasattr(doc, "is_modified") else False
    return ExportItem(Path(img_path), ann, Path(ann_path), doc.image, overlay, unsaved)


def collect_items(image_paths: Iterable[Path], current: ExportItem | None = None
                  ) -> tuple[list[ExportItem], list[str]]:
    """An item per annotated case, in list order; and the reasons cases were skipped.

    Cases without an annotation file are skipped (nothing to measure); an
    unreadable annotation file is skipped with its error message.
    """
    items: list[ExportItem] = []
    skipped: list[str] = []
    cur_key = current.image_path.resolve() if current is not None else None
    for p in image_paths:
        p = Path(p)
        if cur_key is not None and p.resolve() == cur_key:
            items.append(current)
            continue
        ap = annotation_path_for(p)
        if not ap.exists():
            skipped.append(f"{p.name}: not annotated yet")
            continue
        try:
            items.append(ExportItem(p, load_annotation(ap), ap))
        except DentsegError as exc:
            skipped.append(str(exc))
    return items, skipped


def write_csv_report(items: Sequence[ExportItem], csv_path: str | Path) -> Path:
    """One row per case, every measurement key (``core.report`` columns); slices made from a
    volume also get the whole-tooth table ``<name>_teeth.csv`` beside it (``core.whole_tooth``)."""
    from ..core.report import row_for, write_csv
    from ..core.whole_tooth import summarise_teeth, teeth_csv_path, write_teeth_csv
    rows = []
    for it in items:
        row = row_for(it.annotation, it.source_text)
        row.image = it.image_path.name
        rows.append(row)
    out = write_csv(rows, csv_path)
    teeth = summarise_teeth([(it.annotation, it.annotation_path) for it in items], [r.measurements for r in rows])
    if teeth:
        write_teeth_csv(teeth, teeth_csv_path(csv_path))
    return out


def write_pdf_items(items: Sequence[ExportItem], pdf_path: str | Path,
                    progress: Callable[[int, int, str], None] | None = None,
                    should_stop: Callable[[], bool] | None = None) -> Path:
    """PDF report, one page per case; images not in memory are read from disk.

    Safe in a worker thread (QPainter on QImage/QPdfWriter). An image that can't
    be read gives a page with the regions on black rather than no page.
    """
    from ..core.image_io import load_image
    from .report_pdf import write_pdf_report
    from .workers import Cancelled

    entries = []
    for i, it in enumerate(items):
        if should_stop is not None and should_stop():
            raise Cancelled()
        if progress:
            progress(i, len(items), f"preparing {it.image_path.name}")
        image = it.image
        if image is None and it.image_path.is_file():
            try:
                image = load_image(it.image_path, spacing=it.annotation.pixel_spacing_mm)
            except DentsegError as exc:
                log.warning("PDF export: %s", exc)
        entries.append((it.annotation, image, it.overlay))
    if progress:
        progress(len(items), len(items), "writing the PDF")
    from ..core.whole_tooth import summarise_teeth
    teeth = summarise_teeth([(it.annotation, it.annotation_path) for it in items])
    return write_pdf_report(entries, pdf_path, teeth=teeth)


def save_png(qimage, path: str | Path) -> Path:
    """Save a QImage as PNG atomically (a failed write leaves no half file)."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    if qimage is None or qimage.isNull():
        raise ValueError("there is no image to export")
    ba = QByteArray()
    buf = QBuffer(ba)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if not qimage.save(buf, "PNG"):
        raise OSError(f"cannot encode {Path(path).name} as PNG")
    buf.close()
    atomic_write_bytes(path, bytes(ba.data()))
    return Path(path)


def overlay_for_item(item: ExportItem):
    """The overlay picture of a case: the canvas's when given, else drawn here."""
    if item.overlay is not None:
        return item.overlay
    from .report_pdf import render_overlay
    image = item.image
    if image is None and item.image_path.is_file():
        from ..core.image_io import load_image
        try:
            image = load_image(item.image_path, spacing=item.annotation.pixel_spacing_mm)
        except DentsegError:
            image = None
    return render_overlay(image, item.annotation, crop=False, max_side=4096)
