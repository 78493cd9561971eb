"""What the window's File -> Export (labelme, COCO, DICOM SEG + SR) and File -> Import
(labelme, COCO) menu entries call. No widgets here: the window asks for paths, runs the
returned task in a ``TaskWorker`` and shows ``summary``; tests run the same functions.

Wiring (for the main window):

* menu entries: one per ``EXPORT_FORMATS`` / ``IMPORT_FORMATS`` item (``menu_text``,
  ``tooltip``); a ``destination`` of 'folder' asks for a directory, 'file' for a save
  file name (``file_filter``, ``default_name``); DICOM stays disabled with
  ``dicom_export_possible(items)[1]`` as its tooltip when no case has a DICOM image;
* export: ``items`` from ``gui.export.collect_items`` (the open case with its unsaved
  edits via ``item_for_document``), then ``TaskWorker(export_task(key, items, path))``;
* import: sources from a file dialog; ``foreign_labels(key, sources)`` gives every label
  with the target it maps to by default (None = unmapped) for a mapping dialog, whose
  answers go in ``label_map``; ``TaskWorker(import_task(key, sources, ...))``; on success
  open ``result.cases`` (the ``.dentseg.json`` files; their images lie beside them).

A task returns an ``InteropResult`` (files written, problems, notes); if the user pressed
Cancel the worker emits ``cancelled`` and ``worker.result`` still says what was written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..core.interop.common import CaseRef, InteropResult, target_for
from .export import ExportItem


@dataclass(frozen=True)
class InteropFormat:
    key: str
    menu_text: str
    destination: str          # 'folder' or 'file' (export); 'files' or 'file' (import)
    file_filter: str
    default_name: str
    tooltip: str


EXPORT_FORMATS: tuple[InteropFormat, ...] = (
    InteropFormat("labelme", "labelme JSON…", "folder", "", "",
                  "One labelme file per case (polygons + landmark points), opens in labelme"),
    InteropFormat("coco", "COCO JSON…", "file", "COCO annotations (*.json)", "annotations.json",
                  "PAB and enamel polygons and the three landmarks as keypoints, one file for all cases"),
    InteropFormat("dicom", "DICOM SEG + SR…", "folder", "", "",
                  "Segmentation (PAB, enamel) and TID 1500 measurement report per case with a DICOM image"),
)
IMPORT_FORMATS: tuple[InteropFormat, ...] = (
    InteropFormat("labelme", "labelme JSON…", "files", "labelme files (*.json)", "",
                  "Polygons, rectangles, circles and masks become regions, points landmarks"),
    InteropFormat("coco", "COCO JSON…", "file", "COCO annotations (*.json)", "",
                  "Polygon or RLE segmentations become regions, keypoints landmarks"),
)


def cases_for_export(items: Sequence[ExportItem]) -> list[CaseRef]:
    return [CaseRef(it.annotation, Path(it.image_path), Path(it.annotation_path)) for it in items]


def dicom_export_possible(items: Sequence[ExportItem]) -> tuple[bool, str]:
    """(any case has a DICOM image, a line for the tooltip / message)."""
    from ..core.image_io import _sniff

    for it in items:
        try:
            with open(it.image_path, "rb") as f:
                if _sniff(f.read(132)) == "dicom":
                    return True, ""
        except OSError:
            continue
    return False, "DICOM export needs cases whose image is a DICOM file; these images are not DICOM"


def export_task(fmt: str, items: Sequence[ExportItem], destination: str | Path,
                embed_image: str = "auto") -> Callable[[Any], InteropResult]:
    """A ``TaskWorker`` function writing ``items`` as ``fmt`` ('labelme', 'coco', 'dicom')."""
    cases = cases_for_export(items)
    destination = Path(destination)

    def run(ctx) -> InteropResult:
        hooks = dict(progress=ctx.progress, should_stop=ctx.should_stop)
        if fmt == "labelme":
            from ..core.interop.labelme import export_labelme
            return export_labelme(cases, destination, embed=embed_image, **hooks)
        if fmt == "coco":
            from ..core.interop.coco import export_coco
            return export_coco(cases, destination, **hooks)
        if fmt == "dicom":
            from ..core.interop.dicom_export import export_dicom
            return export_dicom(cases, destination, **hooks)
        raise ValueError(f"unknown export format {fmt!r}")

    return run


def import_task(fmt: str, sources: Sequence[str | Path], *, images_dir: str | Path | None = None,
                label_map: dict[str, str] | None = None, spacing: tuple[float, float] | None = None,
                out_dir: str | Path | None = None, overwrite: bool = False) -> Callable[[Any], InteropResult]:
    """A ``TaskWorker`` function importing labelme files/folders or one COCO file
    (``images_dir``: the folder its file names are relative to; default: the file's folder)."""
    sources = [Path(s) for s in sources]

    def run(ctx) -> InteropResult:
        hooks = dict(progress=ctx.progress, should_stop=ctx.should_stop)
        if fmt == "labelme":
            from ..core.interop.labelme import import_labelme
            return import_labelme(sources, label_map, spacing, out_dir, overwrite, **hooks)
        if fmt == "coco":
            from ..core.interop.coco import import_coco
            src = sources[0]
            return import_coco(src, images_dir or src.parent, label_map, spacing, out_dir, overwrite, **hooks)
        raise ValueError(f"unknown import format {fmt!r}")

    return run


def foreign_labels(fmt: str, sources: Sequence[str | Path]) -> dict[str, str | None]:
    """Every label (labelme) or category / keypoint name (COCO) in ``sources``, with the
    DentSeg target it maps to without a map (None: the user must map it or it is skipped)."""
    names: list[str] = []
    if fmt == "labelme":
        from ..core.interop.labelme import labelme_files, read_labelme
        files, _ = labelme_files(sources)
        for f in files:
            try:
                names += [s["label"] for s in read_labelme(f).shapes]
            except Exception:  # noqa: BLE001 - a bad file is reported by the import itself
                continue
    elif fmt == "coco":
        from ..core.interop.coco import read_coco
        for c in read_coco(Path(sources[0]))["categories"]:
            if isinstance(c, dict):
                names.append(str(c.get("name")))
                names += [str(k) for k in c.get("keypoints") or []]
    return {n: target_for(n, {}) for n in dict.fromkeys(names)}


def summary(result: InteropResult, action: str) -> tuple[str, str]:
    """(title, text) for the message box after ``action`` ('Export labelme', 'Import COCO', ...)."""
    n = len(result.cases) if result.cases else len(result.written)
    what = "case" if result.cases else "file"
    title = f"{action}: {'cancelled' if result.cancelled else 'done' if not result.problems else 'some failed'}"
    lines = [f"{n} {what}{'s' if n != 1 else ''} written."]
    lines += [f"• {p.name}" for p in result.written[:8]]
    if len(result.written) > 8:
        lines.append(f"• … and {len(result.written) - 8} more")
    if result.problems:
        lines.append("")
        lines.append("Not done:")
        lines += [f"• {p}" for p in result.problems]
    if result.notes:
        lines.append("")
        lines += [f"• {n}" for n in result.notes]
    return title, "\n".join(lines)


__all__ = ["EXPORT_FORMATS", "IMPORT_FORMATS", "InteropFormat", "cases_for_export", "dicom_export_possible",
           "export_task", "foreign_labels", "import_task", "summary"]
