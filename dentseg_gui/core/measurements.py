"""Measurement engine: the CEJ-apex tooth frame and every DESIGN.md key, in millimetres.

All geometry is converted from pixels to millimetres first (row and column
spacing may differ), then expressed in the tooth frame:

* origin ``O`` = midpoint of CEJ_labial and CEJ_palatal,
* ``y`` = unit vector from ``O`` to the apex (apical positive),
* ``x`` = perpendicular to ``y``, signed so CEJ_palatal has ``x > 0`` (palatal positive).

A value that cannot be made is ``None`` with a reason in ``MeasurementSet.missing``
(never 0 or NaN silently). A thickness level whose line misses the PAB is 0:
no bone at that level is a finding, not an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import shapely
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry

from .annotation import Annotation
from .geometry import as_multipolygon, to_mm
from .pieces import choose_enamel, choose_pab


@dataclass(frozen=True)
class MeasurementKey:
    key: str
    label: str
    unit: str
    contract: bool  # part of the DESIGN.md contract (True) or an extra (False)


THICKNESS_LEVELS = (25, 50, 75, 90)        # percent of the root length
THICKNESS_DEPTHS_MM = (3, 6, 9)            # millimetres apical of the CEJ level

MEASUREMENT_KEYS: tuple[MeasurementKey, ...] = (
    MeasurementKey("root_length_mm", "Root length L (CEJ midpoint to apex)", "mm", True),
    MeasurementKey("pab_area_mm2", "PAB area", "mm²", True),
    MeasurementKey("enamel_area_mm2", "Enamel area", "mm²", True),
    *(MeasurementKey(f"pab_thickness_{t}_mm", f"PAB thickness at {t} % of L", "mm", True)
      for t in THICKNESS_LEVELS),
    MeasurementKey("pab_crest_cej_mm", "Crest to CEJ level (+ = crest apical)", "mm", True),
    MeasurementKey("pab_height_mm", "PAB height along the long axis", "mm", True),
    MeasurementKey("axis_tilt_deg", "Long-axis tilt from image vertical", "°", True),
    *(MeasurementKey(f"pab_thickness_{d}mm_mm", f"PAB thickness {d} mm apical of CEJ", "mm", False)
      for d in THICKNESS_DEPTHS_MM),
    MeasurementKey("pab_centroid_x_mm", "PAB centroid x (palatal +)", "mm", False),
    MeasurementKey("pab_centroid_y_mm", "PAB centroid y (apical +)", "mm", False),
    MeasurementKey("crown_length_mm", "Crown length (CEJ level to incisal edge)", "mm", False),
)
KEYS: tuple[str, ...] = tuple(k.key for k in MEASUREMENT_KEYS)
CONTRACT_KEYS: tuple[str, ...] = tuple(k.key for k in MEASUREMENT_KEYS if k.contract)


@dataclass
class MeasurementSet:
    values: dict[str, float | None] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    #: what the reader must know about how the numbers were made (pieces left out, ...)
    warnings: list[str] = field(default_factory=list)
    #: per region, the pieces kept in the annotation but left out of the numbers (pixels)
    left_out: dict[str, BaseGeometry] = field(default_factory=dict)

    def get(self, key: str) -> float | None:
        return self.values.get(key)

    def _set(self, key: str, value: float) -> None:
        value = float(value)
        if not math.isfinite(value):  # never report inf or NaN: missing, with the reason
            self.values[key] = None
            self.missing[key] = ("not a finite number: the regions, landmarks or pixel spacing "
                                 "are degenerate or out of range")
            return
        self.values[key] = value
        self.missing.pop(key, None)

    def _miss(self, keys: Iterable[str], reason: str) -> None:
        for k in keys:
            if k not in self.missing:  # the first reason found is the most basic one
                self.values[k] = None
                self.missing[k] = reason


class FrameError(ValueError):
    """The landmarks do not define a tooth frame (missing or coincident points)."""


@dataclass(frozen=True)
class ToothFrame:
    """The CEJ-apex coordinate system, in millimetres of the image plane."""

    origin: np.ndarray      # O in mm (image axes: X right, Y down)
    ey: np.ndarray          # unit vector O -> apex (mm space)
    ex: np.ndarray          # unit perpendicular, palatal positive
    root_length: float      # L in mm
    spacing_mm: tuple[float, float]  # (row, column)

    @classmethod
    def from_landmarks(cls, landmarks: dict, spacing_mm: tuple[float, float] | None) -> "ToothFrame":
        if spacing_mm is None:
            raise FrameError("pixel spacing unknown: set the spacing in mm")
        for name in ("CEJ_labial", "CEJ_palatal", "apex"):
            if landmarks.get(name) is None:
                raise FrameError(f"landmark {name} not placed")
        s = np.array([float(spacing_mm[1]), float(spacing_mm[0])])  # (x, y) mm per pixel
        lab = np.asarray(landmarks["CEJ_labial"], float) * s
        pal = np.asarray(landmarks["CEJ_palatal"], float) * s
        apex = np.asarray(landmarks["apex"], float) * s
        tol = 1e-6
        if np.linalg.norm(pal - lab) < tol:
            raise FrameError("CEJ_labial and CEJ_palatal are on top of each other")
        origin = (lab + pal) / 2.0
        axis = apex - origin
        length = float(np.linalg.norm(axis))
        if length < tol:
            raise FrameError("apex is on top of the CEJ midpoint: no long axis")
        ey = axis / length
        ex = np.array([-ey[1], ey[0]])
        side = float(np.dot(pal - origin, ex))
        if abs(side) < tol * max(1.0, float(np.linalg.norm(pal - lab))):
            raise FrameError("CEJ_palatal lies on the long axis: the palatal side is undefined")
        if side < 0:
            ex = -ex
        return cls(origin, ey, ex, length, (float(spacing_mm[0]), float(spacing_mm[1])))

    # ---- conversions -------------------------------------------------------
    @property
    def _s(self) -> np.ndarray:
        return np.array([self.spacing_mm[1], self.spacing_mm[0]])

    def mm_to_frame(self, pts_mm: np.ndarray) -> np.ndarray:
        d = np.asarray(pts_mm, float) - self.origin
        return np.stack([d @ self.ex, d @ self.ey], axis=-1)

    def frame_to_mm(self, pts_frame: np.ndarray) -> np.ndarray:
        p = np.asarray(pts_frame, float)
        return self.origin + p[..., :1] * self.ex + p[..., 1:2] * self.ey

    def px_to_frame(self, pts_px: np.ndarray) -> np.ndarray:
        return self.mm_to_frame(np.asarray(pts_px, float) * self._s)

    def frame_to_px(self, pts_frame: np.ndarray) -> np.ndarray:
        return self.frame_to_mm(pts_frame) / self._s

    def geometry_to_frame(self, geom_px: BaseGeometry) -> BaseGeometry:
        """Pixel geometry -> tooth-frame geometry (mm, x palatal, y apical)."""
        return shapely.transform(geom_px, lambda c: self.px_to_frame(c))

    def tilt_deg(self, up: tuple[float, float] = (0.0, -1.0)) -> float:
        """Unsigned angle between the long axis and the image's upward direction (``up``: the
        direction, in image pixels, that is up when the slice is shown upright)."""
        up = np.asarray(up, float) / float(np.linalg.norm(up))
        return math.degrees(math.acos(max(-1.0, min(1.0, float(self.ey @ up)))))


#: the image direction that is "up" once the slice is turned counter-clockwise by 0/90/180/270°
_UP_AFTER_TURN = {0: (0.0, -1.0), 90: (1.0, 0.0), 180: (0.0, 1.0), 270: (-1.0, 0.0)}


def upright_direction(ann: Annotation) -> tuple[float, float]:
    """The direction in the image's pixels that points up when the slice is shown upright, from the
    annotation's ``orientation`` record (``rotate_ccw_deg``; a mirror changes no vertical); the
    image's own up when there is none."""
    return _UP_AFTER_TURN.get(orientation_of(ann)[0], _UP_AFTER_TURN[0])


def orientation_of(ann: Annotation) -> tuple[int, bool]:
    """(degrees counter-clockwise, mirrored): how the stored image is turned to show the slice upright
    (the annotation's ``orientation`` record; docs/adr/0012)."""
    rec = ann.extra.get("orientation") if isinstance(ann.extra, dict) else None
    if not isinstance(rec, dict):
        return 0, False
    try:
        deg = int(rec.get("rotate_ccw_deg", 0)) % 360
    except (TypeError, ValueError):
        deg = 0
    return (deg if deg % 90 == 0 else 0), bool(rec.get("mirror", False))


def _chord_length(region_frame: BaseGeometry, y_level: float) -> tuple[float, list[LineString]]:
    """Total length of the line y = y_level (parallel to x) inside the region."""
    minx, miny, maxx, maxy = region_frame.bounds
    if y_level < miny or y_level > maxy:
        return 0.0, []
    pad = 1.0 + (maxx - minx)
    line = LineString([(minx - pad, y_level), (maxx + pad, y_level)])
    inter = region_frame.intersection(line)
    parts = [g for g in getattr(inter, "geoms", [inter]) if isinstance(g, LineString) and not g.is_empty]
    return float(sum(g.length for g in parts)), parts


def measure(ann: Annotation) -> MeasurementSet:
    """Every key of ``MEASUREMENT_KEYS`` for one annotation (values in mm, mm², degrees)."""
    ms = MeasurementSet()
    pab_px = as_multipolygon(ann.regions.get("PAB"))
    enamel_px = as_multipolygon(ann.regions.get("enamel"))
    pab_keys = [k for k in KEYS if k.startswith("pab_")]

    if ann.pixel_spacing_mm is None:
        ms._miss(KEYS, "pixel spacing unknown: set the spacing in mm")
        return ms
    spacing = ann.pixel_spacing_mm
    try:
        frame: ToothFrame | None = ToothFrame.from_landmarks(ann.landmarks, spacing)
        frame_error = ""
    except FrameError as exc:
        frame, frame_error = None, str(exc)
    # measure the piece of each region that belongs to the tooth (core.pieces); say what was left out
    pab_choice = choose_pab(pab_px, frame)
    enamel_choice = choose_enamel(enamel_px, frame, ann.landmarks)
    pab_px, enamel_px = pab_choice.measured, enamel_choice.measured
    ms.warnings += [c.warning for c in (pab_choice, enamel_choice) if c.warning]
    ms.left_out = {name: c.left_out for name, c in (("PAB", pab_choice), ("enamel", enamel_choice))
                   if not c.left_out.is_empty}

    if pab_px.is_empty:
        ms._miss(pab_keys, "no PAB region")
    else:
        ms._set("pab_area_mm2", to_mm(pab_px, spacing).area)
    if enamel_px.is_empty:
        ms._miss(["enamel_area_mm2", "crown_length_mm"], "no enamel region")
    else:
        ms._set("enamel_area_mm2", to_mm(enamel_px, spacing).area)

    if frame is None:
        ms._miss([k for k in KEYS if k not in ("pab_area_mm2", "enamel_area_mm2")], frame_error)
        return ms

    ms._set("root_length_mm", frame.root_length)
    ms._set("axis_tilt_deg", frame.tilt_deg(upright_direction(ann)))

    if not pab_px.is_empty:
        pab = frame.geometry_to_frame(pab_px)
        L = frame.root_length
        for t in THICKNESS_LEVELS:
            ms._set(f"pab_thickness_{t}_mm", _chord_length(pab, t / 100.0 * L)[0])
        for d in THICKNESS_DEPTHS_MM:
            ms._set(f"pab_thickness_{d}mm_mm", _chord_length(pab, float(d))[0])
        _, miny, _, maxy = pab.bounds  # extremes of a linear function are at vertices
        ms._set("pab_crest_cej_mm", miny)
        ms._set("pab_height_mm", maxy - miny)
        c = pab.centroid
        ms._set("pab_centroid_x_mm", c.x)
        ms._set("pab_centroid_y_mm", c.y)
    if not enamel_px.is_empty:
        enamel = frame.geometry_to_frame(enamel_px)
        ms._set("crown_length_mm", max(0.0, -enamel.bounds[1]))
    # keep the canonical key order
    ms.values = {k: ms.values.get(k) for k in KEYS}
    return ms


def apply_measurements(ann: Annotation) -> Annotation:
    """A copy of ``ann`` with ``measurements`` and ``measurements_missing`` filled in."""
    out = ann.copy()
    ms = measure(ann)
    out.measurements = dict(ms.values)
    out.measurements_missing = dict(ms.missing)
    return out


@dataclass
class OverlayGeometry:
    """What a view draws for the tooth frame, all in image pixel coordinates."""

    origin: tuple[float, float]
    apex: tuple[float, float]
    axis_ends: tuple[tuple[float, float], tuple[float, float]]          # long axis, extended
    perpendicular_ends: tuple[tuple[float, float], tuple[float, float]]  # x axis through O
    thickness_segments: dict[int, list[tuple[tuple[float, float], tuple[float, float]]]]
    level_lines: dict[int, tuple[tuple[float, float], tuple[float, float]]]  # full level lines
    crest_line: tuple[tuple[float, float], tuple[float, float]] | None


def overlay_geometry(ann: Annotation, half_width_mm: float = 8.0) -> OverlayGeometry | None:
    """Frame, level lines, thickness chords and crest line in pixels; None if no frame."""
    if ann.pixel_spacing_mm is None:
        return None
    try:
        frame = ToothFrame.from_landmarks(ann.landmarks, ann.pixel_spacing_mm)
    except FrameError:
        return None
    L = frame.root_length
    to_px = lambda x, y: tuple(float(v) for v in frame.frame_to_px(np.array([x, y])))  # noqa: E731
    pab_px = choose_pab(ann.regions.get("PAB"), frame).measured     # the chords drawn are the ones measured
    pab = None if pab_px.is_empty else frame.geometry_to_frame(pab_px)
    segs: dict[int, list] = {}
    levels: dict[int, tuple] = {}
    for t in THICKNESS_LEVELS:
        y = t / 100.0 * L
        levels[t] = (to_px(-half_width_mm, y), to_px(half_width_mm, y))
        segs[t] = []
        if pab is not None:
            for part in _chord_length(pab, y)[1]:
                (x0, y0), (x1, y1) = part.coords[0], part.coords[-1]
                segs[t].append((to_px(x0, y0), to_px(x1, y1)))
    crest = None
    if pab is not None:
        cy = pab.bounds[1]
        crest = (to_px(-half_width_mm, cy), to_px(half_width_mm, cy))
    return OverlayGeometry(
        origin=to_px(0.0, 0.0), apex=to_px(0.0, L),
        axis_ends=(to_px(0.0, -0.6 * L), to_px(0.0, 1.15 * L)),
        perpendicular_ends=(to_px(-half_width_mm, 0.0), to_px(half_width_mm, 0.0)),
        thickness_segments=segs, level_lines=levels, crest_line=crest)


def thickness_segments(ann: Annotation) -> dict[int, list]:
    """Thickness chords per level (percent of L) in pixel coordinates; empty if no frame."""
    og = overlay_geometry(ann)
    return {} if og is None else og.thickness_segments
