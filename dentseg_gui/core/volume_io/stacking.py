"""Order the slices of a volume along their normal and check that they form a regular grid.

Format-independent: a DICOM series (one file per slice) and an enhanced
multi-frame file (one position per frame) both give a list of slice positions
(ImagePositionPatient), one row and one column direction, and names for the
messages. The result is the order of the slices and the volume's geometry; a
duplicated slice, a missing slice, irregular gaps or slices shifted sideways
(gantry tilt) raise ``VolumeError`` naming the slices and saying what to do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..volume import VolumeError

#: a slice may lie this share of the step off the uniform grid (DICOM positions are rounded decimals)
GRID_TOLERANCE = 0.1
#: ... and at least this many mm, whatever the step
MIN_TOLERANCE_MM = 0.01
#: slices may drift sideways by at most this share of the pixel spacing over the whole stack
TILT_TOLERANCE_PX = 0.5
#: a smaller drift than TILT_TOLERANCE_PX but above this share is kept, with a note
TILT_NOTE_PX = 0.1


@dataclass
class Stack:
    order: np.ndarray          # slice indices in ascending position along the normal
    origin: np.ndarray         # LPS mm of the first sorted slice's first pixel
    directions: np.ndarray     # 3×3 columns: row direction, column direction, normal
    step: float                # mm between consecutive sorted slices
    notes: list[str]           # what the user should know (a small drift that was ignored)


def _describe(names: Sequence[str], i: int) -> str:
    return f"'{names[i]}'"


def stack_slices(positions, row, col, pixel_spacing: tuple[float, float], names: Sequence[str],
                 where: str) -> Stack:
    """Sort ``positions`` (n×3 LPS mm) along ``row × col`` and check the grid.

    ``pixel_spacing`` is (row spacing, column spacing) in mm; ``names[i]`` names
    slice ``i`` in messages (a file name or "frame 12"); ``where`` names the
    series ("DICOM series in 'scan/'").
    """
    pos = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    n_slices = len(pos)
    if n_slices < 2:
        raise VolumeError(f"{where} holds one slice: a 2-D image, not a volume. Open it as an "
                          "image, or give the folder holding the whole series")
    row = np.asarray(row, float)
    col = np.asarray(col, float)
    row /= np.linalg.norm(row)
    col = col - row * float(col @ row)
    col /= np.linalg.norm(col)
    normal = np.cross(row, col)
    d = pos @ normal
    order = np.argsort(d, kind="stable")
    ds = d[order]
    gaps = np.diff(ds)
    positive = gaps[gaps > 1e-6]
    typical = float(np.median(positive)) if positive.size else 0.0
    dup_tol = max(1e-4, 0.01 * typical)
    for g in np.flatnonzero(gaps <= dup_tol):
        a, b = order[g], order[g + 1]
        raise VolumeError(
            f"{where}: {_describe(names, a)} and {_describe(names, b)} lie at the same position "
            f"({ds[g]:.3f} mm along the slice normal): a duplicated slice. Remove one of the two files "
            "(or copy the series again from the scanner or PACS)")
    for g in np.flatnonzero(gaps > 1.5 * typical):
        ratio = gaps[g] / typical
        if abs(ratio - round(ratio)) < 0.2:
            a, b = order[g], order[g + 1]
            missing = int(round(ratio)) - 1
            what = "a slice is" if missing == 1 else f"{missing} slices are"
            raise VolumeError(
                f"{where}: {what} missing between {_describe(names, a)} ({ds[g]:.3f} mm) and "
                f"{_describe(names, b)} ({ds[g + 1]:.3f} mm): the gap is {gaps[g]:.3f} mm where the "
                f"others are {typical:.3f} mm. The series is incomplete: copy or export the whole "
                "series again")
    step = float((ds[-1] - ds[0]) / (n_slices - 1))
    off_grid = np.abs(ds - (ds[0] + step * np.arange(n_slices)))
    if off_grid.max() > max(MIN_TOLERANCE_MM, GRID_TOLERANCE * step):
        g = int(np.argmax(np.abs(gaps - typical)))
        a, b = order[g], order[g + 1]
        raise VolumeError(
            f"{where}: the slice spacing is not uniform ({gaps.min():.3f} to {gaps.max():.3f} mm; "
            f"{gaps[g]:.3f} mm between {_describe(names, a)} and {_describe(names, b)}, "
            f"{typical:.3f} mm typically). DentSeg needs evenly spaced slices: resample the series to a "
            "uniform spacing in your CBCT software (or 3D Slicer) and export it again")
    # slices shifted sideways along the stack: gantry tilt (or a sheared export)
    ordered = pos[order]
    sideways = ordered - ordered[0] - np.outer(ds - ds[0], normal)
    drift = float(np.linalg.norm(sideways, axis=1).max())
    length = float(ds[-1] - ds[0])
    angle = math.degrees(math.atan2(float(np.linalg.norm(sideways[-1])), length)) if length > 0 else 0.0
    pixel = min(pixel_spacing)
    notes: list[str] = []
    if drift > max(MIN_TOLERANCE_MM, TILT_TOLERANCE_PX * pixel):
        raise VolumeError(
            f"{where}: the slice positions do not run along the slice normal: they shift {drift:.2f} mm "
            f"sideways over the stack (gantry tilt of about {angle:.1f}°). DentSeg reads untilted "
            "series only: correct the tilt in your CT software or 3D Slicer (acquisition geometry "
            "regularisation) and export the result")
    if drift > TILT_NOTE_PX * pixel:
        notes.append(f"the slices drift {drift:.3f} mm sideways over the stack (tilt {angle:.2f}°, under half a "
                     "pixel): the volume was stacked along the slice normal")
    return Stack(order=order, origin=ordered[0].copy(), directions=np.column_stack([row, col, normal]),
                 step=step, notes=notes)
