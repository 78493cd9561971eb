"""The annotation / result file ``<image stem>.dentseg.json`` (DESIGN.md contract).

``Annotation`` is a plain data object (no Qt, no torch): regions as shapely
MultiPolygons in image pixel coordinates, landmarks as (x, y) tuples, the
pixel spacing, measurements, provenance, and any unknown top-level keys,
which are kept and written back untouched.

Loading validates every field and raises ``AnnotationError`` naming the bad
field; saving is atomic.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shapely.geometry import MultiPolygon

from .atomic import atomic_write_text
from .errors import AnnotationError
from .geometry import as_multipolygon, geometry_from_geojson, geometry_to_geojson

FORMAT = "dentseg-annotation"
VERSION = 1
SUFFIX = ".dentseg.json"
REGIONS = ("PAB", "enamel")
LANDMARKS = ("CEJ_labial", "CEJ_palatal", "apex")
MAX_FILE_BYTES = 64 * 1024 * 1024

_KNOWN_KEYS = {"format", "version", "image", "pixel_spacing_mm", "regions", "landmarks",
               "measurements", "measurements_missing", "provenance"}


@dataclass
class Annotation:
    image_path: str
    width: int
    height: int
    pixel_spacing_mm: tuple[float, float] | None = None
    regions: dict[str, MultiPolygon] = field(default_factory=dict)
    landmarks: dict[str, tuple[float, float]] = field(default_factory=dict)
    measurements: dict[str, float | None] = field(default_factory=dict)
    measurements_missing: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def region(self, name: str) -> MultiPolygon:
        return self.regions.get(name) or MultiPolygon()

    def copy(self) -> "Annotation":
        import copy as _copy
        return Annotation(self.image_path, self.width, self.height, self.pixel_spacing_mm,
                          dict(self.regions), dict(self.landmarks), dict(self.measurements),
                          dict(self.measurements_missing), _copy.deepcopy(self.provenance),
                          _copy.deepcopy(self.extra))

    # ------------------------------------------------------------------ JSON
    def to_json_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "image": {"path": self.image_path, "width": int(self.width), "height": int(self.height)},
            "pixel_spacing_mm": (None if self.pixel_spacing_mm is None
                                 else [float(self.pixel_spacing_mm[0]), float(self.pixel_spacing_mm[1])]),
            "regions": {name: geometry_to_geojson(g) for name, g in self.regions.items()
                        if g is not None and not g.is_empty},
            "landmarks": {name: [round(float(p[0]), 4), round(float(p[1]), 4)]
                          for name, p in self.landmarks.items() if p is not None},
            "measurements": {k: (None if v is None else round(float(v), 6))
                             for k, v in self.measurements.items()},
        }
        if self.measurements_missing:
            d["measurements_missing"] = dict(self.measurements_missing)
        if self.provenance:
            d["provenance"] = self.provenance
        for k, v in self.extra.items():
            d.setdefault(k, v)
        return d

    @classmethod
    def from_json_dict(cls, d: Any, source: str = "annotation") -> "Annotation":
        def bad(what: str) -> AnnotationError:
            return AnnotationError(f"{source}: {what}")

        if not isinstance(d, dict):
            raise bad("the file must hold a JSON object at the top level")
        if d.get("format") != FORMAT:
            raise bad(f"field 'format' must be {FORMAT!r}, got {d.get('format')!r}; "
                      "this is not a DentSeg annotation file")
        version = d.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise bad(f"field 'version' must be an integer, got {version!r}")
        if version > VERSION:
            raise bad(f"field 'version' is {version}, newer than this DentSeg reads ({VERSION}); "
                      "update DentSeg to open it")
        img = d.get("image")
        if not isinstance(img, dict):
            raise bad("field 'image' must be an object with 'path', 'width' and 'height'")
        path = img.get("path")
        if not isinstance(path, str) or not path:
            raise bad("field 'image.path' must be a non-empty string")
        size = []
        for key in ("width", "height"):
            v = img.get(key)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise bad(f"field 'image.{key}' must be a positive integer, got {v!r}")
            size.append(v)
        spacing = d.get("pixel_spacing_mm")
        if spacing is not None:
            if (not isinstance(spacing, list) or len(spacing) != 2
                    or not all(_is_number(v) and v > 0 and math.isfinite(v) for v in spacing)):
                raise bad(f"field 'pixel_spacing_mm' must be [row, column] of two positive numbers "
                          f"(mm), got {spacing!r}")
            spacing = (float(spacing[0]), float(spacing[1]))
        regions_in = d.get("regions", {})
        if not isinstance(regions_in, dict):
            raise bad("field 'regions' must be an object mapping a region name to a GeoJSON geometry")
        regions = {}
        for name, g in regions_in.items():
            try:
                regions[name] = geometry_from_geojson(g, where=f"regions.{name}")
            except ValueError as exc:
                raise bad(f"field {exc}") from None
        lm_in = d.get("landmarks", {})
        if not isinstance(lm_in, dict):
            raise bad("field 'landmarks' must be an object mapping a landmark name to [x, y]")
        landmarks = {}
        for name, p in lm_in.items():
            if p is None:
                continue
            if (not isinstance(p, list) or len(p) != 2
                    or not all(_is_number(v) and math.isfinite(v) for v in p)):
                raise bad(f"field 'landmarks.{name}' must be [x, y] of two finite numbers, got {p!r}")
            landmarks[name] = (float(p[0]), float(p[1]))
        meas_in = d.get("measurements", {})
        if not isinstance(meas_in, dict):
            raise bad("field 'measurements' must be an object mapping a key to a number or null")
        measurements: dict[str, float | None] = {}
        for k, v in meas_in.items():
            if v is None:
                measurements[k] = None
            elif _is_number(v):
                measurements[k] = float(v)
            else:
                raise bad(f"field 'measurements.{k}' must be a number or null, got {v!r}")
        missing = d.get("measurements_missing", {})
        if not isinstance(missing, dict):
            raise bad("field 'measurements_missing' must be an object mapping a key to a reason")
        prov = d.get("provenance", {})
        if not isinstance(prov, dict):
            raise bad("field 'provenance' must be an object")
        extra = {k: v for k, v in d.items() if k not in _KNOWN_KEYS}
        return cls(path, size[0], size[1], spacing, regions, landmarks, measurements,
                   {str(k): str(v) for k, v in missing.items()}, prov, extra)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def annotation_path_for(image_path: str | os.PathLike) -> Path:
    """``case01.png`` -> ``case01.dentseg.json`` beside it."""
    p = Path(image_path)
    return p.with_name(p.stem + SUFFIX) if not p.name.endswith(SUFFIX) else p


def load_annotation(path: str | os.PathLike) -> Annotation:
    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise AnnotationError(f"{name}: file not found ({path})") from None
    except OSError as exc:
        raise AnnotationError(f"{name}: cannot be read ({exc.strerror})") from None
    if size == 0:
        raise AnnotationError(f"{name}: the file is empty (0 bytes); it may be from an "
                              "interrupted save - restore it from a backup or the autosave")
    if size > MAX_FILE_BYTES:
        raise AnnotationError(f"{name}: {size / 1e6:.0f} MB is too large for an annotation file "
                              f"(limit {MAX_FILE_BYTES // 2**20} MiB)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise AnnotationError(f"{name}: not UTF-8 text; an annotation file is UTF-8 JSON") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationError(f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                              f"{exc.msg}); the file may be truncated") from None
    return Annotation.from_json_dict(data, source=name)


def save_annotation(ann: Annotation, path: str | os.PathLike) -> Path:
    """Write ``ann`` atomically (temporary file then replace)."""
    path = Path(path)
    text = json.dumps(ann.to_json_dict(), indent=1, ensure_ascii=False, allow_nan=False)
    atomic_write_text(path, text + "\n")
    return path


def with_regions(ann: Annotation, **regions: MultiPolygon) -> Annotation:
    out = ann.copy()
    for k, g in regions.items():
        out.regions[k] = as_multipolygon(g)
    return out
