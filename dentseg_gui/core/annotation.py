"""The annotation / result file ``<image stem>.dentseg.json`` (DESIGN.md contract).

``Annotation`` is a plain data object (no Qt, no torch): regions as shapely
MultiPolygons in image pixel coordinates, landmarks as (x, y) tuples, the
pixel spacing, measurements, provenance, and any unknown top-level keys,
which are kept and written back untouched.

Loading validates every field and raises ``AnnotationError`` naming the bad
field; it is bounded (``core.limits``: file size, JSON depth, vertices, parts, coordinates
near the image, spacing) so no file can crash or hang a reader, and it refuses values
that could not be written back (NaN, infinity, lone UTF-16 surrogates). Saving is atomic.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shapely.geometry import MultiPolygon

from .atomic import atomic_write_text
from .errors import AnnotationError
from .geometry import as_multipolygon, geometry_from_geojson, geometry_to_geojson
from .limits import (MAX_ANNOTATION_BYTES, MAX_IMAGE_SIDE, MAX_JSON_DEPTH, MAX_VERTICES, brief,
                     finite_float, spacing_problem)

FORMAT = "dentseg-annotation"
VERSION = 1
SUFFIX = ".dentseg.json"
REGIONS = ("PAB", "enamel")
LANDMARKS = ("CEJ_labial", "CEJ_palatal", "apex")
MAX_FILE_BYTES = MAX_ANNOTATION_BYTES

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
        problem = check_json_tree(d)
        if problem:
            raise bad(problem)
        if d.get("format") != FORMAT:
            raise bad(f"field 'format' must be {FORMAT!r}, got {brief(d.get('format'))}; "
                      "this is not a DentSeg annotation file")
        version = d.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise bad(f"field 'version' must be an integer, got {brief(version)}")
        if version > VERSION:
            raise bad(f"field 'version' is {brief(version)}, newer than this DentSeg reads ({VERSION}); "
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
            if not isinstance(v, int) or isinstance(v, bool) or not 0 < v <= MAX_IMAGE_SIDE:
                raise bad(f"field 'image.{key}' must be a whole number of pixels from 1 to "
                          f"{MAX_IMAGE_SIDE}, got {brief(v)}")
            size.append(v)
        spacing = d.get("pixel_spacing_mm")
        if spacing is not None:
            why = (spacing_problem(spacing) if isinstance(spacing, list)
                   else f"{brief(spacing)} is not a list")
            if why:
                raise bad(f"field 'pixel_spacing_mm' must be [row, column] of two positive numbers "
                          f"(mm): {why}")
            spacing = (float(spacing[0]), float(spacing[1]))
        # regions and landmarks may reach past the image border, not arbitrarily far
        margin = float(max(size))
        box = (-margin, -margin, size[0] + margin, size[1] + margin)
        regions_in = d.get("regions", {})
        if not isinstance(regions_in, dict):
            raise bad("field 'regions' must be an object mapping a region name to a GeoJSON geometry")
        regions = {}
        budget = MAX_VERTICES
        for name, g in regions_in.items():
            try:
                regions[name] = geometry_from_geojson(g, where=f"regions.{name}", bounds=box,
                                                      max_vertices=budget)
            except ValueError as exc:
                raise bad(f"field {exc}") from None
            budget -= _vertex_count(g)
        lm_in = d.get("landmarks", {})
        if not isinstance(lm_in, dict):
            raise bad("field 'landmarks' must be an object mapping a landmark name to [x, y]")
        landmarks = {}
        for name, p in lm_in.items():
            if p is None:
                continue
            xy = ([finite_float(v) for v in p] if isinstance(p, list) and len(p) == 2 else None)
            if xy is None or None in xy:
                raise bad(f"field 'landmarks.{name}' must be [x, y] of two finite numbers, got {brief(p)}")
            if not (box[0] <= xy[0] <= box[2] and box[1] <= xy[1] <= box[3]):
                raise bad(f"field 'landmarks.{name}' = {brief(p)} lies far outside the "
                          f"{size[0]} x {size[1]} image")
            landmarks[name] = (xy[0], xy[1])
        meas_in = d.get("measurements", {})
        if not isinstance(meas_in, dict):
            raise bad("field 'measurements' must be an object mapping a key to a number or null")
        measurements: dict[str, float | None] = {}
        for k, v in meas_in.items():
            if v is None:
                measurements[k] = None
                continue
            f = finite_float(v)
            if f is None:
                raise bad(f"field 'measurements.{k}' must be a finite number or null, got {brief(v)}")
            measurements[k] = f
        missing = d.get("measurements_missing", {})
        if not isinstance(missing, dict) or not all(isinstance(v, str) for v in missing.values()):
            raise bad("field 'measurements_missing' must be an object mapping a key to a reason (text)")
        prov = d.get("provenance", {})
        if not isinstance(prov, dict):
            raise bad("field 'provenance' must be an object")
        extra = {k: v for k, v in d.items() if k not in _KNOWN_KEYS}
        return cls(path, size[0], size[1], spacing, regions, landmarks, measurements,
                   dict(missing), prov, extra)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _vertex_count(g: Any) -> int:
    """Vertices of a GeoJSON geometry already checked by ``geometry_from_geojson``."""
    coords = g["coordinates"]
    polys = [coords] if g["type"] == "Polygon" else coords
    return sum(len(ring) for poly in polys for ring in poly)


def check_json_tree(data: Any, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """What makes parsed JSON unusable, naming the field; None when it is fine.

    Refused: nesting deeper than ``max_depth``; numbers that are not finite (NaN,
    Infinity, 1e400) or do not fit a float; text with lone UTF-16 surrogates (JSON
    allows the escape, UTF-8 cannot write it). Iterative, so no depth can overflow
    the stack. The vertices of regions are left to ``geometry_from_geojson``.
    """
    stack: list[tuple[Any, int, tuple]] = [(data, 1, ())]
    while stack:
        obj, depth, path = stack.pop()
        if depth > max_depth:
            return f"field {_field(path)} is nested more than {max_depth} levels deep"
        if isinstance(obj, dict):
            items = obj.items()
        else:
            items = enumerate(obj)
        for k, v in items:
            if type(k) is str and not _utf8_ok(k):
                return f"field {_field(path + (k,))} has a name that is not valid Unicode text"
            t = type(v)
            if t is float:
                if v - v != 0.0:  # inf or nan
                    return f"field {_field(path + (k,))} is {v!r}; only finite numbers are allowed"
            elif t is int:
                if finite_float(v) is None:
                    return f"field {_field(path + (k,))} is a number too large for a float"
            elif t is str:
                if not _utf8_ok(v):
                    return (f"field {_field(path + (k,))} holds text that is not valid Unicode "
                            "(a lone UTF-16 surrogate); fix or remove it")
            elif t is dict or t is list or t is tuple:
                if depth == 3 and k == "coordinates" and path[0] == "regions":
                    continue  # vertices: geometry_from_geojson checks them, faster, with their count
                stack.append((v, depth + 1, path + (k,)))
            elif v is None or t is bool:
                continue
            elif isinstance(v, numbers.Real):  # numpy scalars from code that builds the dict
                if not math.isfinite(float(v)):
                    return f"field {_field(path + (k,))} is {v!r}; only finite numbers are allowed"
            else:
                return f"field {_field(path + (k,))} has a value of type {t.__name__}, not JSON"
    return None


def _utf8_ok(s: str) -> bool:
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _field(path: tuple) -> str:
    """'regions.PAB.coordinates[0][3]' for ('regions', 'PAB', 'coordinates', 0, 3)."""
    out = ""
    for k in path:
        if isinstance(k, int):
            out += f"[{k}]"
        else:
            name = k if _utf8_ok(k) else k.encode("utf-8", "backslashreplace").decode("ascii")
            out += ("." if out else "") + (name if len(name) <= 40 else name[:37] + "...")
    return f"'{out or '(top level)'}'"


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
        raise AnnotationError(f"{name}: {size / 2**20:.0f} MiB is too large for an annotation file "
                              f"(limit {MAX_FILE_BYTES // 2**20} MiB)")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise AnnotationError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    return annotation_from_bytes(raw, name)


def annotation_from_bytes(raw: bytes, name: str = "annotation") -> Annotation:
    """Parse the bytes of an annotation file (every check of ``load_annotation``)."""
    if len(raw) > MAX_FILE_BYTES:
        raise AnnotationError(f"{name}: too large for an annotation file "
                              f"(limit {MAX_FILE_BYTES // 2**20} MiB)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"{name}: not UTF-8 text (byte {exc.start}); an annotation file is "
                              "UTF-8 JSON") from None
    if text.startswith("\ufeff"):  # a byte-order mark some editors write
        text = text[1:]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationError(f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                              f"{exc.msg}); the file may be truncated") from None
    except RecursionError:
        raise AnnotationError(f"{name}: JSON nested too deeply (more than {MAX_JSON_DEPTH} "
                              "levels); this is not an annotation file") from None
    except ValueError as exc:  # e.g. an integer with more than 4300 digits
        raise AnnotationError(f"{name}: not valid JSON ({brief(str(exc), 120)})") from None
    return Annotation.from_json_dict(data, source=name)


def save_annotation(ann: Annotation, path: str | os.PathLike) -> Path:
    """Write ``ann`` atomically (temporary file then replace)."""
    path = Path(path)
    atomic_write_text(path, annotation_text(ann))
    return path


def annotation_text(ann: Annotation) -> str:
    """The file's text: indented JSON, each region's coordinates on one line.

    The coordinates go through the C JSON encoder (the indenting one is pure Python:
    2.5 s for 80,000 vertices, 0.1 s this way). NaN and infinity are refused.
    """
    d = ann.to_json_dict()
    token = uuid.uuid4().hex
    blobs = {}
    for k, (name, g) in enumerate(d["regions"].items()):
        key = f"@coords-{token}-{k}"
        blobs[key] = json.dumps(g["coordinates"], allow_nan=False)
        d["regions"][name] = {**g, "coordinates": key}
    text = json.dumps(d, indent=1, ensure_ascii=False, allow_nan=False)
    for key, blob in blobs.items():
        text = text.replace(f'"{key}"', blob, 1)
    return text + "\n"


def with_regions(ann: Annotation, **regions: MultiPolygon) -> Annotation:
    out = ann.copy()
    for k, g in regions.items():
        out.regions[k] = as_multipolygon(g)
    return out
