"""Does a case carry a pixel spacing of its own? Read without loading the image (Qt-free).

A case's own spacing is the one in its annotation file, or the DICOM image's PixelSpacing
(or ImagerPixelSpacing). Used when a folder is listed, to ask once for the spacing of the
cases that have none (``gui/folder_spacing.py``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .annotation import annotation_path_for

DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
MAX_JSON_BYTES = 64 * 1024 * 1024


def _valid(sp) -> bool:
    try:
        return len(sp) == 2 and all(math.isfinite(float(v)) and 0 < float(v) < 100 for v in sp)
    except (TypeError, ValueError):
        return False


def own_spacing_known(image_path: Path) -> bool:
    """Does this case carry a spacing of its own (annotation file, or DICOM PixelSpacing)?
    Reads only the annotation file and, for DICOM, the header."""
    ann = annotation_path_for(image_path)
    try:
        if ann.is_file() and ann.stat().st_size <= MAX_JSON_BYTES:
            data = json.loads(ann.read_text(encoding="utf-8"))
            if isinstance(data, dict) and _valid(data.get("pixel_spacing_mm")):
                return True
    except (OSError, ValueError, RecursionError):
        pass
    is_dicom = image_path.suffix.lower() in DICOM_SUFFIXES
    if not is_dicom:
        try:
            with open(image_path, "rb") as f:
                is_dicom = f.read(132)[128:132] == b"DICM"
        except OSError:
            return False
    if not is_dicom:
        return False
    try:
        import pydicom
        ds = pydicom.dcmread(image_path, stop_before_pixels=True,
                             specific_tags=["PixelSpacing", "ImagerPixelSpacing"])
        sp = getattr(ds, "PixelSpacing", None) or getattr(ds, "ImagerPixelSpacing", None)
        return sp is not None and _valid([float(v) for v in sp])
    except Exception:  # noqa: BLE001 - an unreadable header: the loader will say why
        return False


def cases_without_spacing(paths, should_stop=None) -> list[Path]:
    out = []
    for p in paths:
        if should_stop is not None and should_stop():
            break
        if not own_spacing_known(Path(p)):
            out.append(Path(p))
    return out
