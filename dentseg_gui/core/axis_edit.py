"""Correcting a tooth's axis by hand: move an end of the long axis, turn the plane about it.

Pure geometry on ``ToothAxis`` values (LPS mm, no Qt): the volume view calls these
while the user drags the axis handles or the rotation control, and pushes the
result as one undo step. The CEJ midpoint keeps its relative position between the
incisal edge and the apex; the labial and mesio-distal directions stay
perpendicular to the (new) axis and keep their sides.
"""

from __future__ import annotations

import math

import numpy as np

from .volume import ToothAxis, VolumeError

AXIS_ENDS = ("incisal", "apex")


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    if n < 1e-9:
        raise VolumeError("the two ends of the axis are on top of each other")
    return v / n


def _frame(axis_dir: np.ndarray, labial: np.ndarray, mesiodistal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labial, mesiodistal) made perpendicular to ``axis_dir`` and to each other, sides kept."""
    lab = labial - axis_dir * float(labial @ axis_dir)
    if float(np.linalg.norm(lab)) < 1e-6:           # labial ran along the new axis: rebuild it from md
        lab = np.cross(mesiodistal, axis_dir)
    lab = _unit(lab)
    md = np.cross(axis_dir, lab)
    if float(md @ mesiodistal) < 0:
        md = -md
    return lab, _unit(md)


def with_axis_end(axis: ToothAxis, end: str, point) -> ToothAxis:
    """``axis`` with its incisal end or its apex moved to ``point`` (LPS mm)."""
    if end not in AXIS_ENDS:
        raise VolumeError(f"an axis end is one of {', '.join(AXIS_ENDS)}, got {end!r}")
    inc, cej, apex = (np.asarray(p, float) for p in (axis.incisal, axis.cej, axis.apex))
    length = float(np.linalg.norm(apex - inc))
    t = float((cej - inc) @ (apex - inc)) / (length ** 2) if length > 1e-9 else 0.4
    p = np.asarray(point, float).reshape(3)
    inc, apex = (p, apex) if end == "incisal" else (inc, p)
    a = _unit(apex - inc)
    lab, md = _frame(a, np.asarray(axis.labial, float), np.asarray(axis.mesiodistal, float))
    return ToothAxis(axis.tooth, inc, inc + t * (apex - inc), apex, md, lab, axis.confidence,
                     list(axis.notes) + ([] if "edited by hand" in axis.notes else ["edited by hand"]))


def rotated_about_axis(axis: ToothAxis, degrees: float) -> ToothAxis:
    """The labio-palatal plane turned by ``degrees`` about the long axis (right-hand rule
    about the CEJ -> apex direction)."""
    a = axis.axis
    th = math.radians(float(degrees))
    c, s = math.cos(th), math.sin(th)

    def rot(v: np.ndarray) -> np.ndarray:          # Rodrigues
        return v * c + np.cross(a, v) * s + a * float(a @ v) * (1 - c)

    lab, md = _frame(a, rot(np.asarray(axis.labial, float)), rot(np.asarray(axis.mesiodistal, float)))
    return ToothAxis(axis.tooth, np.asarray(axis.incisal, float), np.asarray(axis.cej, float),
                     np.asarray(axis.apex, float), md, lab, axis.confidence, list(axis.notes))


def plane_angle_deg(a: ToothAxis, b: ToothAxis) -> float:
    """Angle between the labio-palatal planes of two axes (degrees, 0..90): between their normals,
    the mesio-distal directions made perpendicular to the long axes (as ``plane_for_tooth`` does)."""
    def normal(t: ToothAxis) -> np.ndarray:
        ax, md = t.axis, np.asarray(t.mesiodistal, float)
        return _unit(md - ax * float(md @ ax))

    return math.degrees(math.acos(min(1.0, abs(float(normal(a) @ normal(b))))))


def axis_distance_mm(found: ToothAxis, truth: ToothAxis) -> float:
    """The larger distance of the true CEJ midpoint and apex from the found axis line (mm)."""
    p0 = np.asarray(found.cej, float)
    d = found.axis
    out = 0.0
    for q in (truth.cej, truth.apex):
        v = np.asarray(q, float) - p0
        out = max(out, float(np.linalg.norm(v - d * float(v @ d))))
    return out
