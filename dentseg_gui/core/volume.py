"""A CBCT volume with its patient geometry, and the planes sliced through it (Qt-free, torch-free).

Everything is in the DICOM patient frame **LPS** (x toward the patient's left, y
posterior, z superior), in millimetres. Two value objects:

* ``Volume``: the voxels in their stored type (``voxels[k, j, i]``: slice ``k``,
  row ``j``, column ``i``), the position of the centre of voxel ``(0, 0, 0)``, the
  unit directions of increasing ``i``, ``j`` and ``k``, and the spacing along each.
  Rescale slope / intercept are kept as two numbers (HU = stored * slope +
  intercept) so a 16-bit scan is never copied into float64.
* ``Plane``: an oblique slice as DICOM describes one - the centre of its first
  pixel (ImagePositionPatient), the directions of a row and of a column
  (ImageOrientationPatient), the pixel spacing (row, column) and the size. Like
  3D Slicer's slice node, one 4×4 matrix maps slice pixels to patient mm; the
  views and the reslicer only read it.

``ToothAxis`` is what tooth detection reports for one incisor, and
``plane_for_tooth`` turns it into the measurement plane (apex up, crown down).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import DentsegError


class VolumeError(DentsegError):
    """A volume that cannot be loaded, resliced or searched (message meant for a person)."""


def _unit(v, name: str) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64).reshape(3)
    n = float(np.linalg.norm(a))
    if not math.isfinite(n) or n < 1e-9:
        raise VolumeError(f"{name} is not a direction (length {n:g})")
    return a / n


@dataclass
class Volume:
    voxels: np.ndarray                 # (k, j, i) stored values, any integer or float dtype
    origin: np.ndarray                 # LPS mm of the centre of voxel (0, 0, 0)
    directions: np.ndarray             # 3×3, columns: unit LPS directions of +i, +j, +k
    spacing: tuple[float, float, float]  # mm along i (column), j (row), k (slice)
    slope: float = 1.0                 # HU = stored * slope + intercept
    intercept: float = 0.0
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)   # UIDs, patient, modality, notes

    def __post_init__(self) -> None:
        self.origin = np.asarray(self.origin, dtype=np.float64).reshape(3)
        d = np.asarray(self.directions, dtype=np.float64).reshape(3, 3)
        self.directions = np.column_stack([_unit(d[:, c], f"volume direction {c}") for c in range(3)])
        self.spacing = tuple(float(s) for s in self.spacing)
        if self.voxels.ndim != 3:
            raise VolumeError(f"a volume needs 3 dimensions, got an array of shape {self.voxels.shape}")
        if not all(math.isfinite(s) and s > 0 for s in self.spacing):
            raise VolumeError(f"voxel spacing must be positive mm, got {self.spacing}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """(slices, rows, columns)."""
        return tuple(int(n) for n in self.voxels.shape)  # type: ignore[return-value]

    @property
    def affine(self) -> np.ndarray:
        """4×4: homogeneous voxel index (i, j, k, 1) -> LPS mm."""
        a = np.eye(4)
        a[:3, :3] = self.directions * np.asarray(self.spacing)[None, :]
        a[:3, 3] = self.origin
        return a

    def index_to_lps(self, ijk) -> np.ndarray:
        """(…, 3) voxel indices (i, j, k), fractional allowed -> (…, 3) LPS mm."""
        ijk = np.asarray(ijk, dtype=np.float64)
        a = self.affine
        return ijk @ a[:3, :3].T + a[:3, 3]

    def lps_to_index(self, xyz) -> np.ndarray:
        """(…, 3) LPS mm -> (…, 3) fractional voxel indices (i, j, k)."""
        xyz = np.asarray(xyz, dtype=np.float64)
        a = self.affine
        return (xyz - a[:3, 3]) @ np.linalg.inv(a[:3, :3]).T

    def to_hu(self, stored: np.ndarray) -> np.ndarray:
        """Stored values -> rescaled values (float32)."""
        out = np.asarray(stored, dtype=np.float32)
        if self.slope != 1.0 or self.intercept != 0.0:
            out = out * np.float32(self.slope) + np.float32(self.intercept)
        return out

    def bounds_lps(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned LPS box (min, max) around the centres of the eight corner voxels."""
        k, j, i = (n - 1 for n in self.shape)
        corners = np.array([[a, b, c] for a in (0, i) for b in (0, j) for c in (0, k)], float)
        pts = self.index_to_lps(corners)
        return pts.min(axis=0), pts.max(axis=0)

    @property
    def nbytes(self) -> int:
        return int(self.voxels.nbytes)


@dataclass(frozen=True)
class Plane:
    """An oblique image plane in LPS mm, described the way DICOM describes a slice.

    Pixel (row ``r``, column ``c``) has its centre at
    ``origin + c * spacing[1] * row_dir + r * spacing[0] * col_dir``:
    ``row_dir`` points along a row (increasing column), ``col_dir`` down a column
    (increasing row); ``spacing`` is (row spacing, column spacing) as in
    PixelSpacing; ``shape`` is (rows, columns).
    """

    origin: tuple[float, float, float]
    row_dir: tuple[float, float, float]
    col_dir: tuple[float, float, float]
    spacing: tuple[float, float]
    shape: tuple[int, int]

    @staticmethod
    def make(origin, row_dir, col_dir, spacing, shape) -> "Plane":
        """A plane with ``col_dir`` made exactly perpendicular to ``row_dir``."""
        r = _unit(row_dir, "row direction")
        c = np.asarray(col_dir, float).reshape(3)
        c = _unit(c - r * float(c @ r), "column direction")
        sp = tuple(float(s) for s in (spacing if np.ndim(spacing) else (spacing, spacing)))
        if not all(math.isfinite(s) and s > 0 for s in sp):
            raise VolumeError(f"plane pixel spacing must be positive mm, got {sp}")
        rows, cols = (int(n) for n in shape)
        if rows < 1 or cols < 1:
            raise VolumeError(f"plane size must be at least 1×1 pixels, got {rows}×{cols}")
        o = np.asarray(origin, float).reshape(3)
        return Plane(tuple(map(float, o)), tuple(map(float, r)), tuple(map(float, c)), sp, (rows, cols))

    @staticmethod
    def centred(centre, row_dir, col_dir, spacing, shape) -> "Plane":
        """A plane whose middle (between the central pixels) lies at ``centre``."""
        p = Plane.make((0.0, 0.0, 0.0), row_dir, col_dir, spacing, shape)
        rows, cols = p.shape
        o = (np.asarray(centre, float) - 0.5 * (cols - 1) * p.spacing[1] * p.row
             - 0.5 * (rows - 1) * p.spacing[0] * p.col)
        return Plane.make(o, p.row, p.col, p.spacing, p.shape)

    @property
    def row(self) -> np.ndarray:
        return np.asarray(self.row_dir, float)

    @property
    def col(self) -> np.ndarray:
        return np.asarray(self.col_dir, float)

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row, self.col)

    @property
    def matrix(self) -> np.ndarray:
        """4×4: homogeneous (column, row, 0, 1) pixel index -> LPS mm."""
        m = np.eye(4)
        m[:3, 0] = self.row * self.spacing[1]
        m[:3, 1] = self.col * self.spacing[0]
        m[:3, 2] = self.normal
        m[:3, 3] = self.origin
        return m

    def pixel_to_lps(self, xy) -> np.ndarray:
        """(…, 2) pixel coordinates (x = column, y = row) -> (…, 3) LPS mm."""
        xy = np.asarray(xy, float)
        return (np.asarray(self.origin) + xy[..., :1] * self.spacing[1] * self.row
                + xy[..., 1:2] * self.spacing[0] * self.col)

    def lps_to_pixel(self, xyz) -> np.ndarray:
        """(…, 3) LPS mm -> (…, 2) pixel coordinates (x, y) of the point's projection on the plane."""
        d = np.asarray(xyz, float) - np.asarray(self.origin)
        return np.stack([d @ self.row / self.spacing[1], d @ self.col / self.spacing[0]], axis=-1)

    def distance(self, xyz) -> np.ndarray:
        """Signed distance (mm) of LPS points from the plane, along ``normal``."""
        return (np.asarray(xyz, float) - np.asarray(self.origin)) @ self.normal

    def shifted(self, mm: float, direction=None) -> "Plane":
        """The same plane moved by ``mm`` along ``direction`` (default: its normal)."""
        d = self.normal if direction is None else _unit(direction, "shift direction")
        return Plane.make(np.asarray(self.origin) + mm * d, self.row, self.col, self.spacing, self.shape)

    def to_json(self) -> dict[str, Any]:
        """The ``provenance.plane`` record of a slice's annotation (DESIGN.md)."""
        return {"origin_mm": [round(v, 6) + 0.0 for v in self.origin],          # + 0.0: no "-0.0"
                "row_dir": [round(v, 9) + 0.0 for v in self.row_dir],
                "col_dir": [round(v, 9) + 0.0 for v in self.col_dir],
                "spacing_mm": [round(v, 9) for v in self.spacing],
                "size_px": [int(self.shape[0]), int(self.shape[1])]}

    @staticmethod
    def from_json(d: dict[str, Any]) -> "Plane":
        try:
            size = d.get("size_px") or [1, 1]
            return Plane.make(d["origin_mm"], d["row_dir"], d["col_dir"], d["spacing_mm"], size)
        except (KeyError, TypeError, ValueError) as exc:
            raise VolumeError(f"not a plane record: {exc}") from None


@dataclass
class ToothAxis:
    """One incisor found in a volume: its long axis and labio-palatal plane, in LPS mm.

    ``incisal``, ``cej`` (midpoint of the cemento-enamel junction) and ``apex``
    lie on the long axis; ``mesiodistal`` is the unit direction across the tooth
    toward **distal** (away from the midline); ``labial`` is the unit direction
    toward the lip, perpendicular to the axis and to ``mesiodistal``. The
    labio-palatal plane contains the axis and ``labial``. ``confidence`` is
    0..1; ``notes`` say what the detector saw.
    """

    tooth: int                 # FDI number: 11, 21, 12, 22, ...
    incisal: np.ndarray
    cej: np.ndarray
    apex: np.ndarray
    mesiodistal: np.ndarray
    labial: np.ndarray
    confidence: float = 1.0
    notes: list[str] = field(default_factory=list)

    @property
    def axis(self) -> np.ndarray:
        """Unit vector from the CEJ midpoint toward the apex (apical positive)."""
        return _unit(np.asarray(self.apex, float) - np.asarray(self.cej, float), "tooth axis")

    def to_json(self) -> dict[str, Any]:
        r = lambda v: [round(float(x), 4) + 0.0 for x in v]  # noqa: E731
        return {"tooth": int(self.tooth), "incisal_mm": r(self.incisal), "cej_mm": r(self.cej),
                "apex_mm": r(self.apex), "mesiodistal": r(self.mesiodistal), "labial": r(self.labial),
                "confidence": round(float(self.confidence), 3), "notes": list(self.notes)}


def plane_for_tooth(tooth: ToothAxis, spacing_mm: float, size_mm: tuple[float, float] = (48.0, 48.0),
                    offset_mm: float = 0.0) -> Plane:
    """The measurement slice of ``tooth``: its labio-palatal plane, apex up, crown down.

    Columns run from labial (left) to palatal (right), rows from apical (top) to
    incisal (bottom): the patient faces left, as on a conventional sagittal view.
    The plane is centred between the incisal edge and the apex, moved
    ``offset_mm`` along the mesio-distal direction (+ toward distal).
    """
    axis = tooth.axis
    md = np.asarray(tooth.mesiodistal, float)
    md = _unit(md - axis * float(md @ axis), "mesio-distal direction")
    lab = np.asarray(tooth.labial, float)
    lab = lab - axis * float(lab @ axis) - md * float(lab @ md)
    lab = _unit(lab, "labial direction")
    centre = 0.5 * (np.asarray(tooth.incisal, float) + np.asarray(tooth.apex, float)) + offset_mm * md
    rows = max(1, int(round(size_mm[0] / spacing_mm)))
    cols = max(1, int(round(size_mm[1] / spacing_mm)))
    return Plane.centred(centre, -lab, -axis, (spacing_mm, spacing_mm), (rows, cols))
