"""COCO (object detection + keypoints) JSON: export DentSeg cases, import them back.

Export writes one ``annotations.json``::

    images:      {id, file_name (relative to the JSON), width, height, dentseg: {pixel_spacing_mm}}
    categories:  1 PAB, 2 enamel (polygon segmentations),
                 3 incisor with keypoints [CEJ_labial, CEJ_palatal, apex]
    annotations: per region: segmentation (hole-free polygons, flat [x1, y1, x2, y2, ...]),
                 area (pixels², holes subtracted), bbox [x, y, w, h], iscrowd 0;
                 per image: one incisor annotation with keypoints [x, y, v] * 3
                 (v = 2 placed, 0 missing), num_keypoints, bbox/area of the tooth's structures

Import reads the same structure, and more: segmentations as polygons or RLE (counts
as a list or COCO's compressed string), any category or keypoint name mapped to a
target with the label map. Coordinates are in COCO's corner convention (``common``).
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter, defaultdict
from pathlib import Path, PureWindowsPath
from typing import Any, Sequence

import numpy as np
import shapely

from ..annotation import LANDMARKS, REGIONS, Annotation
from ..atomic import atomic_write_text
from ..errors import DentsegError
from ..geometry import mask_to_geometry
from .common import (CaseRef, InteropError, InteropResult, ProgressFn, StopFn, steps,
                     from_corner, hole_free_pieces, image_size_and_spacing, import_provenance,
                     now_iso, place_image, polygon_from_corner_points, ring_to_corner,
                     save_imported_case, target_for, to_corner, unexpected, unite)

KEYPOINT_CATEGORY = "incisor"
MAX_JSON_BYTES = 1024 * 1024 * 1024


# --------------------------------------------------------------------------- export


def _bbox(bounds: tuple[float, float, float, float]) -> list[float]:
    """shapely bounds (pixel centres) -> COCO [x, y, w, h] (corner convention)."""
    x0, y0 = to_corner(bounds[0], bounds[1])
    return [x0, y0, round(bounds[2] - bounds[0], 3), round(bounds[3] - bounds[1], 3)]


def coco_document(cases: Sequence[CaseRef], json_dir: Path) -> dict[str, Any]:
    from ... import __version__

    cats = [{"id": i, "name": n, "supercategory": KEYPOINT_CATEGORY} for i, n in enumerate(REGIONS, 1)]
    kp_id = len(cats) + 1
    cats.append({"id": kp_id, "name": KEYPOINT_CATEGORY, "supercategory": KEYPOINT_CATEGORY,
                 "keypoints": list(LANDMARKS), "skeleton": [[1, 2], [1, 3], [2, 3]]})
    images, anns = [], []
    for image_id, case in enumerate(cases, 1):
        a = case.annotation
        rel = Path(os.path.relpath(case.image_path.resolve(), json_dir.resolve())).as_posix()
        img: dict[str, Any] = {"id": image_id, "file_name": rel, "width": int(a.width),
                               "height": int(a.height)}
        if a.pixel_spacing_mm is not None:
            img["dentseg"] = {"pixel_spacing_mm": [float(v) for v in a.pixel_spacing_mm]}
        images.append(img)
        extent = []
        for cat_id, name in enumerate(REGIONS, 1):
            region = a.region(name)
            if region.is_empty:
                continue
            extent.append(region)
            seg = [[v for xy in ring_to_corner(p.exterior) for v in xy] for p in hole_free_pieces(region)]
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat_id,
                         "segmentation": seg, "area": round(float(region.area), 3),
                         "bbox": _bbox(region.bounds), "iscrowd": 0})
        kps: list[float] = []
        for name in LANDMARKS:
            p = a.landmarks.get(name)
            kps += [*to_corner(*p), 2] if p is not None else [0, 0, 0]
        n = sum(1 for name in LANDMARKS if a.landmarks.get(name) is not None)
        if n:
            pts = shapely.MultiPoint([a.landmarks[k] for k in LANDMARKS if a.landmarks.get(k) is not None])
            bounds = shapely.union_all([*extent, pts]).bounds
            box = _bbox(bounds)
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": kp_id,
                         "keypoints": kps, "num_keypoints": n, "segmentation": [],
                         "area": round(box[2] * box[3], 3), "bbox": box, "iscrowd": 0})
    return {"info": {"description": "DentSeg export: palatal alveolar bone, enamel and incisor landmarks",
                     "version": "1.0", "year": int(now_iso()[:4]), "contributor": f"DentSeg {__version__}",
                     "date_created": now_iso()},
            "licenses": [], "images": images, "annotations": anns, "categories": cats}


def export_coco(cases: Sequence[CaseRef], out_json: str | os.PathLike, progress: ProgressFn | None = None,
                should_stop: StopFn | None = None) -> InteropResult:
    """Write every case into one COCO file; cases whose image is missing are reported."""
    out = Path(out_json)
    res = InteropResult()
    keep: list[CaseRef] = []
    for k, case in steps(cases, res, progress, should_stop):
        if not case.image_path.is_file():
            res.problems.append(f"{case.image_path}: image not found; a COCO file names its images")
            continue
        keep.append(case)
    if res.cancelled:
        return res
    if keep:
        doc = coco_document(keep, out.parent)
        atomic_write_text(out, json.dumps(doc, ensure_ascii=False, indent=1))
        res.written.append(out)
        res.notes.append(f"{len(doc['images'])} images, {len(doc['annotations'])} annotations")
    if progress:
        progress(len(cases), len(cases), "")
    return res


# --------------------------------------------------------------------------- RLE


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """A COCO RLE ({size: [h, w], counts: list or compressed string}) as a bool mask."""
    try:
        h, w = (int(v) for v in rle["size"])
        counts = rle["counts"]
    except (KeyError, TypeError, ValueError):
        raise InteropError("an RLE segmentation needs 'size' [h, w] and 'counts'") from None
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    if isinstance(counts, str):
        counts = _counts_from_string(counts)
    flat = np.zeros(h * w, bool)
    pos, on = 0, False
    for c in counts:
        c = int(c)
        if c < 0 or pos + c > h * w:
            raise InteropError("an RLE segmentation whose counts do not fit its size")
        if on:
            flat[pos:pos + c] = True
        pos += c
        on = not on
    return flat.reshape(w, h).T  # COCO runs go down the columns


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """A bool mask as a compressed COCO RLE (what pycocotools' ``encode`` writes)."""
    m = np.asarray(mask, bool)
    flat = m.T.reshape(-1)
    change = np.flatnonzero(np.diff(np.concatenate([[False], flat, [False]]).astype(np.int8)))
    edges = np.concatenate([[0], change, [flat.size]]) if flat.size else np.array([0])
    counts = np.diff(edges).tolist()
    if counts and counts[-1] == 0:
        counts.pop()
    return {"size": [int(m.shape[0]), int(m.shape[1])], "counts": _counts_to_string(counts)}


def _counts_from_string(s: str) -> list[int]:
    counts: list[int] = []
    p = 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            if p >= len(s):
                raise InteropError("a compressed RLE string that ends in the middle of a number")
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def _counts_to_string(counts: list[int]) -> str:
    out = []
    for i, x in enumerate(counts):
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


# --------------------------------------------------------------------------- import


def read_coco(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_JSON_BYTES:
            raise InteropError(f"{p}: too large for a COCO file (limit 1 GiB)")
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InteropError(f"{p}: cannot be read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InteropError(f"{p}: not valid UTF-8 JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list)
                                             for k in ("images", "annotations", "categories")):
        raise InteropError(f"{p}: not a COCO file (it needs 'images', 'annotations' and "
                           "'categories' lists)")
    return data


def _segmentation_region(seg: Any, size_hw: tuple[int, int]):
    if isinstance(seg, dict):
        m = rle_decode(seg)
        if m.shape != tuple(size_hw):
            raise InteropError(f"an RLE of size {list(m.shape)} on an image of {list(size_hw)}")
        return mask_to_geometry(m)
    if isinstance(seg, list):
        parts = []
        for poly in seg:
            if (isinstance(poly, list) and len(poly) >= 6 and len(poly) % 2 == 0
                    and all(isinstance(v, (int, float)) and math.isfinite(v) for v in poly)):
                parts.append(polygon_from_corner_points(list(zip(poly[0::2], poly[1::2]))))
        return unite(parts)
    raise InteropError("a segmentation that is neither polygons nor RLE")


def _find_image(images_dir: Path, file_name: str) -> Path | None:
    rel = PureWindowsPath(file_name).as_posix()
    for cand in (images_dir / rel, images_dir / Path(rel).name):
        if cand.is_file():
            return cand
    return None


def import_coco(coco_json: str | os.PathLike, images_dir: str | os.PathLike,
                label_map: dict[str, str] | None = None, spacing: tuple[float, float] | None = None,
                out_dir: str | os.PathLike | None = None, overwrite: bool = False,
                progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> InteropResult:
    """One DentSeg case per COCO image that has an annotation mapping to a target."""
    label_map = dict(label_map or {})
    src = Path(coco_json)
    data = read_coco(src)
    images_dir = Path(images_dir)
    res = InteropResult()
    cats: dict[Any, dict] = {c.get("id"): c for c in data["categories"] if isinstance(c, dict)}
    unmapped: Counter = Counter()
    by_image: dict[Any, list[dict]] = defaultdict(list)
    for a in data["annotations"]:
        if isinstance(a, dict):
            by_image[a.get("image_id")].append(a)
    images = [im for im in data["images"] if isinstance(im, dict)]
    for k, im in steps(images, res, progress, should_stop, name=lambda im: str(im.get("file_name", ""))):
        name = str(im.get("file_name", ""))
        try:
            image_src = _find_image(images_dir, name)
            if image_src is None:
                raise InteropError(f"{src.name}: image {name!r} (id {im.get('id')}) not found in {images_dir}")
            dest_dir = Path(out_dir) if out_dir is not None else image_src.parent
            image = place_image(image_src, None, image_src.name, dest_dir)
            hint = (im.get("dentseg") or {}).get("pixel_spacing_mm") if isinstance(im.get("dentseg"), dict) else None
            hint = (float(hint[0]), float(hint[1])) if isinstance(hint, list) and len(hint) == 2 else None
            w, h, sp = image_size_and_spacing(image, spacing or hint)
            if (im.get("width"), im.get("height")) != (w, h) and im.get("width") is not None:
                raise InteropError(f"{src.name}: image {name!r} is {im.get('width')}x{im.get('height')} "
                                   f"in the COCO file but {w}x{h} on disk")
            parts: dict[str, list] = defaultdict(list)
            landmarks: dict[str, tuple[float, float]] = {}
            for a in by_image.get(im.get("id"), []):
                cat = cats.get(a.get("category_id"), {})
                cname = str(cat.get("name", a.get("category_id")))
                target = target_for(cname, label_map)
                if target in REGIONS and a.get("segmentation"):
                    parts[target].append(_segmentation_region(a["segmentation"], (h, w)))
                elif isinstance(cat.get("keypoints"), list) and isinstance(a.get("keypoints"), list):
                    kp = a["keypoints"]
                    for i, kname in enumerate(cat["keypoints"]):
                        lt = target_for(str(kname), label_map)
                        if lt not in LANDMARKS:
                            unmapped[f"keypoint {kname}"] += 1
                            continue
                        if 3 * i + 2 < len(kp) and kp[3 * i + 2] and lt not in landmarks:
                            landmarks[lt] = from_corner(kp[3 * i], kp[3 * i + 1])
                elif target is None:
                    unmapped[cname] += 1
            regions = {n: unite(ps) for n, ps in parts.items()}
            regions = {n: g for n, g in regions.items() if not g.is_empty}
            if not regions and not landmarks:
                raise InteropError(f"{src.name}: image {name!r}: nothing maps to "
                                   f"{', '.join(REGIONS + LANDMARKS)}; add --map CATEGORY=TARGET")
            ann = Annotation(image.name, w, h, sp, regions, {n: landmarks[n] for n in LANDMARKS if n in landmarks})
            import_provenance(ann, "coco", src)
            out = save_imported_case(ann, image, overwrite)
        except DentsegError as exc:
            res.problems.append(str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - one odd image must not end a batch
            res.problems.append(unexpected(f"{src.name}: image {name!r}", exc))
            continue
        res.written.append(out)
        res.cases.append(out)
    if unmapped:
        res.notes.append("not mapped, skipped: " + ", ".join(
            f"{n!r} ({c})" for n, c in sorted(unmapped.items())) + " (map them with --map NAME=TARGET)")
    if progress:
        progress(len(images), len(images), "")
    return res
