"""labelme JSON: import to DentSeg cases, export from them.

The file is the one labelme 5 writes (``LabelFile.save`` + ``format_shape`` in
labelme's source)::

    {"version": "5.5.0", "flags": {},
     "shapes": [{"label", "points": [[x, y], ...], "group_id", "description",
                 "shape_type": "polygon" | "rectangle" | "circle" | "point" | "mask" | ...,
                 "flags": {}, "mask": null | base64 PNG}],
     "imagePath": "relative/to/the/json.png", "imageData": null | base64 image file,
     "imageHeight": H, "imageWidth": W}

Import: polygons, rectangles, circles and masks become regions (all shapes of a label
united), points become landmarks; the label map says which label is which target
(a label that already names a target, e.g. ``PAB``, needs no map). Export: every
region as hole-free polygons (``common.hole_free_pieces``; the shapes of one region
share a ``group_id`` when there are several), every landmark as a point. labelme
keeps unknown top-level keys when it saves, so the pixel spacing travels in a
``dentseg`` key. Coordinates are in labelme's corner convention (``common``).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any, Iterable, Sequence

import numpy as np
from shapely.geometry import MultiPolygon, Point, box

from ..annotation import LANDMARKS, REGIONS, SUFFIX, Annotation
from ..atomic import atomic_write_text
from ..errors import DentsegError
from ..geometry import as_multipolygon, mask_to_geometry
from .common import (CaseRef, InteropError, InteropResult, ProgressFn, StopFn, steps,
                     from_corner, hole_free_pieces, image_size_and_spacing, import_provenance,
                     place_image, polygon_from_corner_points, ring_to_corner, save_imported_case,
                     target_for, to_corner, unexpected, unite)

#: the labelme release whose file layout we write (labelme 5: shapes carry description + mask)
LABELME_VERSION = "5.5.0"
REGION_SHAPES = ("polygon", "rectangle", "circle", "mask")
#: vertices of a circle read as a polygon (area error 0.04 %)
CIRCLE_SEGMENTS = 128
MAX_JSON_BYTES = 512 * 1024 * 1024


# --------------------------------------------------------------------------- reading


@dataclass
class LabelmeFile:
    path: Path
    data: dict[str, Any]

    @property
    def shapes(self) -> list[dict[str, Any]]:
        return self.data["shapes"]


def read_labelme(path: str | os.PathLike) -> LabelmeFile:
    """Parse and check a labelme JSON file; ``InteropError`` names the file and the problem."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise InteropError(f"{p}: cannot be read ({exc.strerror or exc})") from None
    if size > MAX_JSON_BYTES:
        raise InteropError(f"{p}: {size / 2**20:.0f} MiB is too large for a labelme file")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InteropError(f"{p}: not UTF-8 text; a labelme file is UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise InteropError(f"{p}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list) or "imagePath" not in data:
        what = "a DentSeg annotation" if isinstance(data, dict) and data.get("format") == "dentseg-annotation" \
            else "not a labelme file"
        raise InteropError(f"{p}: {what} (a labelme file has 'shapes' and 'imagePath')")
    for i, s in enumerate(data["shapes"]):
        if not isinstance(s, dict) or not isinstance(s.get("label"), str):
            raise InteropError(f"{p}: shapes[{i}] has no text 'label'")
        pts = s.get("points")
        if (not isinstance(pts, list) or not pts or not all(
                isinstance(q, list) and len(q) == 2 and all(_finite(v) for v in q) for q in pts)):
            raise InteropError(f"{p}: shapes[{i}] ({s['label']!r}): 'points' must be a list of [x, y]")
    return LabelmeFile(p, data)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def labelme_files(paths: Iterable[str | os.PathLike]) -> tuple[list[Path], list[str]]:
    """JSON files to import: files as given, folders searched (not recursively) for
    ``*.json`` that are not DentSeg annotations."""
    files: list[Path] = []
    problems: list[str] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = [f for f in sorted(p.glob("*.json")) if not f.name.endswith(SUFFIX)]
            if not found:
                problems.append(f"{p}: no labelme .json files in this folder")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            problems.append(f"{p}: no such file or folder")
    return files, problems


def shape_region(shape: dict[str, Any], size_hw: tuple[int, int]) -> MultiPolygon:
    """The area of one labelme shape in DentSeg pixel coordinates (empty if it has none)."""
    kind = shape.get("shape_type") or "polygon"
    pts = shape["points"]
    if kind == "polygon":
        return polygon_from_corner_points(pts)
    if kind == "rectangle" and len(pts) == 2:
        (x0, y0), (x1, y1) = from_corner(*pts[0]), from_corner(*pts[1])
        return as_multipolygon(box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    if kind == "circle" and len(pts) == 2:
        c = from_corner(*pts[0])
        r = math.dist(pts[0], pts[1])
        return as_multipolygon(Point(c).buffer(r, quad_segs=CIRCLE_SEGMENTS // 4)) if r > 0 else MultiPolygon()
    if kind == "mask" and len(pts) == 2:
        return _mask_shape_region(shape, size_hw)
    return MultiPolygon()


def _mask_shape_region(shape: dict[str, Any], size_hw: tuple[int, int]) -> MultiPolygon:
    """A labelme ``mask`` shape: a PNG of the box from points[0] (labelme casts it to int)."""
    import cv2

    b64 = shape.get("mask")
    if not isinstance(b64, str):
        raise InteropError("a 'mask' shape without mask data")
    try:
        buf = np.frombuffer(base64.b64decode(b64), np.uint8)
    except (binascii.Error, ValueError):
        raise InteropError("a 'mask' shape whose mask is not base64") from None
    m = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if m is None:
        raise InteropError("a 'mask' shape whose mask is not a PNG image")
    if m.ndim == 3:
        m = m[..., 0]
    h, w = size_hw
    x1, y1 = int(shape["points"][0][0]), int(shape["points"][0][1])
    full = np.zeros((h, w), bool)
    r0, c0 = max(0, y1), max(0, x1)
    r1, c1 = min(h, y1 + m.shape[0]), min(w, x1 + m.shape[1])
    if r1 > r0 and c1 > c0:
        full[r0:r1, c0:c1] = m[r0 - y1:r1 - y1, c0 - x1:c1 - x1] > 0
    return mask_to_geometry(full)


def annotation_from_labelme(lf: LabelmeFile, label_map: dict[str, str], width: int, height: int,
                            spacing: tuple[float, float] | None, image_name: str
                            ) -> tuple[Annotation, Counter, list[str]]:
    """(annotation, unmapped label counts, notes) from one labelme file."""
    unmapped: Counter = Counter()
    notes: list[str] = []
    parts: dict[str, list] = {}
    landmarks: dict[str, tuple[float, float]] = {}
    for i, s in enumerate(lf.shapes):
        label = s["label"]
        kind = s.get("shape_type") or "polygon"
        target = target_for(label, label_map)
        if target is None:
            unmapped[label] += 1
            continue
        if target in REGIONS:
            if kind not in REGION_SHAPES:
                notes.append(f"shape {i} ({label!r}, {kind}) has no area: a region needs a "
                             "polygon, rectangle, circle or mask; skipped")
                continue
            try:
                parts.setdefault(target, []).append(shape_region(s, (height, width)))
            except InteropError as exc:
                notes.append(f"shape {i} ({label!r}): {exc}; skipped")
        else:
            if kind != "point":
                notes.append(f"shape {i} ({label!r}, {kind}): landmark {target} needs a point shape; skipped")
                continue
            if target in landmarks:
                notes.append(f"landmark {target} given more than once (label {label!r}); the first is kept")
                continue
            landmarks[target] = from_corner(*s["points"][0])
    regions = {name: unite(ps) for name, ps in parts.items()}
    regions = {n: g for n, g in regions.items() if not g.is_empty}
    ann = Annotation(image_name, width, height, spacing, regions,
                     {n: landmarks[n] for n in LANDMARKS if n in landmarks})
    return ann, unmapped, notes


# --------------------------------------------------------------------------- import


def _image_name_and_bytes(lf: LabelmeFile) -> tuple[Path | None, bytes | None, str]:
    """(image file if it exists, embedded bytes if used, file name for the case's image)."""
    rel = PureWindowsPath(str(lf.data.get("imagePath") or "")).as_posix()
    src = (lf.path.parent / rel) if rel else None
    if src is not None and src.is_file():
        return src, None, src.name
    b64 = lf.data.get("imageData")
    if isinstance(b64, str) and b64:
        try:
            data = base64.b64decode(b64)
        except (binascii.Error, ValueError):
            raise InteropError(f"{lf.path}: imageData is not base64") from None
        name = Path(rel).name if rel else lf.path.stem + ".png"
        return None, data, _with_suffix_for(name, data)
    where = f"{src}" if src is not None else "(no imagePath)"
    raise InteropError(f"{lf.path}: its image {where} is not there and the file embeds no "
                       "imageData; put the image beside the JSON (labelme's imagePath is relative to it)")


def _with_suffix_for(name: str, data: bytes) -> str:
    """Give embedded image bytes a file name whose suffix matches their content."""
    sig = {b"\x89PNG": ".png", b"\xff\xd8\xff": ".jpg", b"BM": ".bmp", b"II*\x00": ".tif", b"MM\x00*": ".tif"}
    for magic, suffix in sig.items():
        if data.startswith(magic):
            p = Path(name)
            return name if p.suffix.lower() in ({suffix, ".jpeg"} if suffix == ".jpg" else {suffix, ".tiff"}) \
                else p.stem + suffix
    return name


def import_labelme(paths: Sequence[str | os.PathLike], label_map: dict[str, str] | None = None,
                   spacing: tuple[float, float] | None = None, out_dir: str | os.PathLike | None = None,
                   overwrite: bool = False, progress: ProgressFn | None = None,
                   should_stop: StopFn | None = None) -> InteropResult:
    """Turn labelme files into DentSeg cases: ``<image stem>.dentseg.json`` beside the image,
    in ``out_dir`` when given (the image is copied or written there), else beside the JSON's image."""
    label_map = dict(label_map or {})
    files, problems = labelme_files(paths)
    res = InteropResult(problems=list(problems))
    unmapped_all: Counter = Counter()
    for k, f in steps(files, res, progress, should_stop):
        try:
            lf = read_labelme(f)
            src, data, name = _image_name_and_bytes(lf)
            dest_dir = Path(out_dir) if out_dir is not None else (src.parent if src is not None else f.parent)
            image = place_image(src, data, name, dest_dir)
            hint = _spacing_hint(lf.data)
            w, h, sp = image_size_and_spacing(image, spacing or hint)
            for key, actual in (("imageWidth", w), ("imageHeight", h)):
                declared = lf.data.get(key)
                if declared is not None and declared != actual:
                    raise InteropError(f"{f}: {key} is {declared} but the image {image.name} has {actual}")
            ann, unmapped, notes = annotation_from_labelme(lf, label_map, w, h, sp, image.name)
            unmapped_all.update(unmapped)
            res.notes.extend(f"{f.name}: {n}" for n in notes)
            if unmapped:
                res.notes.append(f"{f.name}: labels not mapped, skipped: " + ", ".join(
                    f"{lab!r} ({n} shape{'s' if n != 1 else ''})" for lab, n in sorted(unmapped.items())))
            if not ann.regions and not ann.landmarks:
                raise InteropError(f"{f}: nothing to import (no shape maps to "
                                   f"{', '.join(REGIONS + LANDMARKS)}); add --map LABEL=TARGET")
            if sp is None:
                res.notes.append(f"{f.name}: no pixel spacing (pass --spacing MM): "
                                 "measurements in mm stay empty")
            import_provenance(ann, "labelme", f)
            out = save_imported_case(ann, image, overwrite)
        except DentsegError as exc:
            res.problems.append(str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - one odd file must not end a batch
            res.problems.append(unexpected(str(f), exc))
            continue
        res.written.append(out)
        res.cases.append(out)
    if unmapped_all:
        res.notes.append("unmapped labels (map them with --map LABEL=TARGET): "
                         + ", ".join(sorted(unmapped_all)))
    if progress:
        progress(len(files), len(files), "")
    return res


def _spacing_hint(data: dict[str, Any]) -> tuple[float, float] | None:
    d = data.get("dentseg")
    sp = d.get("pixel_spacing_mm") if isinstance(d, dict) else None
    if isinstance(sp, list) and len(sp) == 2 and all(_finite(v) and v > 0 for v in sp):
        return float(sp[0]), float(sp[1])
    return None


# --------------------------------------------------------------------------- export


def _shape(label: str, points: list[list[float]], shape_type: str, group_id: int | None = None) -> dict:
    """One shape, keys in the order labelme 5's ``format_shape`` writes them."""
    return {"label": label, "points": points, "group_id": group_id, "description": "",
            "shape_type": shape_type, "flags": {}, "mask": None}


def labelme_document(ann: Annotation, image_path: str, image_data: str | None = None) -> dict[str, Any]:
    """The labelme JSON object for ``ann`` (``image_path`` relative to where the JSON goes)."""
    shapes = []
    for gid, name in enumerate(REGIONS, start=1):
        pieces = hole_free_pieces(ann.region(name))
        group = gid if len(pieces) > 1 else None
        for poly in pieces:
            shapes.append(_shape(name, ring_to_corner(poly.exterior), "polygon", group))
    for name in LANDMARKS:
        p = ann.landmarks.get(name)
        if p is not None:
            shapes.append(_shape(name, [to_corner(*p)], "point"))
    doc: dict[str, Any] = {"version": LABELME_VERSION, "flags": {}, "shapes": shapes,
                           "imagePath": image_path, "imageData": image_data,
                           "imageHeight": int(ann.height), "imageWidth": int(ann.width)}
    if ann.pixel_spacing_mm is not None:
        doc["dentseg"] = {"pixel_spacing_mm": [float(v) for v in ann.pixel_spacing_mm]}
    return doc


def labelme_cannot_read(image_path: Path) -> bool:
    """True for images labelme cannot show itself (DICOM, 16-bit): their pixels are embedded."""
    from ..image_io import load_image
    try:
        img = load_image(image_path)
    except DentsegError:
        return False
    return img.kind == "dicom" or img.bit_depth > 8


def display_png_bytes(image_path: Path, spacing: tuple[float, float] | None) -> bytes:
    """An 8-bit PNG of the image as DentSeg shows it (robust window), for ``imageData``."""
    import cv2
    from ..image_io import load_image

    img = load_image(image_path, spacing)
    ok, buf = cv2.imencode(".png", np.round(img.normalized() * 255).astype(np.uint8))
    if not ok:
        raise InteropError(f"{image_path}: cannot encode a PNG copy for imageData")
    return buf.tobytes()


def export_labelme(cases: Sequence[CaseRef], out_dir: str | os.PathLike, embed: str = "auto",
                   progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> InteropResult:
    """Write ``out_dir/<image stem>.json`` per case. ``embed``: 'auto' puts an 8-bit PNG in
    imageData only for images labelme can't read (DICOM, 16-bit); 'always'; 'never'."""
    out = Path(out_dir)
    res = InteropResult()
    seen: dict[Path, str] = {}
    for k, case in steps(cases, res, progress, should_stop):
        target = out / (Path(case.annotation.image_path).stem + ".json")
        if target in seen:
            res.problems.append(f"{case.name}: same name as {seen[target]}; both would be {target.name}")
            continue
        try:
            if not case.image_path.is_file():
                raise InteropError(f"{case.image_path}: image not found; labelme needs the image")
            rel = Path(os.path.relpath(case.image_path.resolve(), out.resolve())).as_posix()
            data = None
            if embed == "always" or (embed == "auto" and labelme_cannot_read(case.image_path)):
                data = base64.b64encode(display_png_bytes(case.image_path,
                                                          case.annotation.pixel_spacing_mm)).decode("ascii")
                if embed == "auto":
                    res.notes.append(f"{case.name}: labelme cannot read this image; an 8-bit PNG "
                                     "copy is embedded as imageData")
            doc = labelme_document(case.annotation, rel, data)
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(target, json.dumps(doc, ensure_ascii=False, indent=2))
        except DentsegError as exc:
            res.problems.append(str(exc))
            continue
        except OSError as exc:
            res.problems.append(f"{target}: cannot be written ({exc.strerror or exc})")
            continue
        except Exception as exc:  # noqa: BLE001
            res.problems.append(unexpected(case.name, exc))
            continue
        seen[target] = case.name
        res.written.append(target)
    if progress:
        progress(len(cases), len(cases), "")
    return res
