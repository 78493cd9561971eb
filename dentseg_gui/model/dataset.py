"""Training data from any folder of images + ``.dentseg.json`` files, on one canonical grid.

Why a canonical grid: CBCT slices come at 0.1-0.4 mm per pixel; resampling every
case to ``CANONICAL_SPACING_MM`` (0.2 mm/px) lets the network see the anatomy at
one scale, so a 3x3 kernel always spans the same 0.6 mm and the receptive field
(~20 mm) covers the crown-to-root context it needs to tell labial from palatal.
0.2 mm keeps the thin PAB (1-3 mm thick) at 5-15 px while an incisor (~24 mm)
fits in a 192 px crop - a finer grid would cost 1.8x the compute per case.

``CanonicalGrid`` is the one mapping between original pixels and the canonical
grid; training (here) and inference (``inference.py``) both use it, so a
prediction restored to the original grid lands exactly where the labels were.

``prepare_case`` resamples one case once (image normalised by robust
percentiles, labels rasterised directly on the canonical grid from the polygons,
landmarks mapped) and keeps only a window around the annotated structures, so a
few hundred cases stay in memory (~0.2 MB each) and training does no file I/O.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import shapely

from ..core.annotation import LANDMARKS, SUFFIX, Annotation, load_annotation
from ..core.errors import AnnotationError, DentsegError
from ..core.geometry import geometry_to_mask
from ..core.image import SliceImage

CANONICAL_SPACING_MM = 0.2
#: Assumed spacing for an image that carries none and gets none from the user or its annotation.
DEFAULT_ASSUMED_SPACING_MM = 0.25
#: Label values on the canonical grid (order of ``lunet.CLASSES``).
LABEL_BACKGROUND, LABEL_PAB, LABEL_ENAMEL = 0, 1, 2


# --------------------------------------------------------------------------- the grid


@dataclass(frozen=True)
class CanonicalGrid:
    """A window of the canonical grid laid over an original image.

    Canonical pixel (u, v) of the window has its centre at original pixel
    coordinates x = (u + u0 + 0.5) / fx - 0.5, y = (v + v0 + 0.5) / fy - 0.5,
    i.e. pixel centres follow DESIGN.md's convention on both grids.
    ``fx``/``fy`` are canonical pixels per original pixel (spacing / canonical).
    """

    fx: float
    fy: float
    u0: float   # whole pixels, except the half-pixel-shifted second view of inference
    v0: float
    width: int
    height: int

    @staticmethod
    def scale_for(spacing_mm: tuple[float, float], canonical_mm: float = CANONICAL_SPACING_MM) -> tuple[float, float]:
        """(fx, fy) for an image of (row, column) ``spacing_mm``."""
        return float(spacing_mm[1]) / canonical_mm, float(spacing_mm[0]) / canonical_mm

    # -- points
    def to_grid(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64)
        return np.stack([(xy[..., 0] + 0.5) * self.fx - 0.5 - self.u0,
                         (xy[..., 1] + 0.5) * self.fy - 0.5 - self.v0], axis=-1)

    def to_original(self, uv: np.ndarray) -> np.ndarray:
        uv = np.asarray(uv, dtype=np.float64)
        return np.stack([(uv[..., 0] + self.u0 + 0.5) / self.fx - 0.5,
                         (uv[..., 1] + self.v0 + 0.5) / self.fy - 0.5], axis=-1)

    def geometry_to_grid(self, geom):
        return shapely.transform(geom, lambda c: self.to_grid(c))

    # -- rasters
    def _grid_to_original_matrix(self) -> np.ndarray:
        """2x3 affine taking grid pixel (u, v) to original pixel (x, y)."""
        return np.array([[1 / self.fx, 0, (self.u0 + 0.5) / self.fx - 0.5],
                         [0, 1 / self.fy, (self.v0 + 0.5) / self.fy - 0.5]], dtype=np.float64)

    def sample(self, image: np.ndarray, border_value: float = 0.0) -> np.ndarray:
        """Resample ``image`` (H, W) onto this window: linear, anti-aliased when shrinking."""
        src, off_x, off_y = _source_window(image, self, margin=4)
        m = self._grid_to_original_matrix()
        m[0, 2] -= off_x
        m[1, 2] -= off_y
        sx, sy = max(1.0, 1.0 / self.fx), max(1.0, 1.0 / self.fy)
        kx, ky = int(sx), int(sy)
        if kx > 1 or ky > 1:  # big shrink: exact box-average by whole factors first (cheap on huge images)
            h, w = (src.shape[0] // ky) * ky, (src.shape[1] // kx) * kx
            if h >= ky and w >= kx:
                src = cv2.resize(src[:h, :w], (w // kx, h // ky), interpolation=cv2.INTER_AREA)
                # box pixel x' covers original pixels kx*x' .. kx*x'+kx-1: centre (x'+0.5)*kx - 0.5
                m[0] = [m[0, 0] / kx, 0, (m[0, 2] + 0.5) / kx - 0.5]
                m[1] = [0, m[1, 1] / ky, (m[1, 2] + 0.5) / ky - 0.5]
                sx, sy = sx / kx, sy / ky
        if sx > 1.3 or sy > 1.3:  # remaining shrink: low-pass so thin bright lines do not alias
            src = cv2.GaussianBlur(src, (0, 0), sigmaX=0.45 * math.sqrt(sx * sx - 1) + 1e-3,
                                   sigmaY=0.45 * math.sqrt(sy * sy - 1) + 1e-3)
        return cv2.warpAffine(src, m, (self.width, self.height),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=float(border_value))

    def restore(self, maps: np.ndarray, shape_hw: tuple[int, int], roi: tuple[int, int, int, int],
                fill: np.ndarray, log_space: bool = False) -> np.ndarray:
        """Map (C, h, w) grid maps back to the original pixels of ``roi`` (x0, y0, x1, y1).

        Returns (C, H, W) float32: the ROI filled from the grid (linear), every
        other pixel set to ``fill`` (C,). The inverse of ``sample``.

        ``log_space`` (class probabilities only): interpolate log-probabilities and
        renormalise per pixel, i.e. interpolate the network's logits. Between two grid
        pixels this keeps a thin class's boundary where the logits cross, where linear
        interpolation of probabilities shifts it towards the class that is surer (the
        background around the thin enamel cap).
        """
        c = maps.shape[0]
        h, w = int(shape_hw[0]), int(shape_hw[1])
        out = np.empty((c, h, w), dtype=np.float32)
        out[:] = np.asarray(fill, dtype=np.float32).reshape(c, 1, 1)
        x0, y0, x1, y1 = roi
        if x1 <= x0 or y1 <= y0:
            return out
        if log_space:
            maps = np.log(np.clip(maps, 1e-6, None))
            fill = np.log(np.clip(np.asarray(fill, dtype=np.float64), 1e-6, None))
        # original pixel (x, y) -> grid (u, v): u = (x + 0.5) fx - 0.5 - u0
        m = np.array([[self.fx, 0, (x0 + 0.5) * self.fx - 0.5 - self.u0],
                      [0, self.fy, (y0 + 0.5) * self.fy - 0.5 - self.v0]], dtype=np.float64)
        shrink = max(self.fx, self.fy)
        for k in range(c):
            src = np.ascontiguousarray(maps[k], dtype=np.float32)
            if shrink > 1.3:
                src = cv2.GaussianBlur(src, (0, 0), sigmaX=0.45 * math.sqrt(max(self.fx ** 2 - 1, 0)) + 1e-3,
                                       sigmaY=0.45 * math.sqrt(max(self.fy ** 2 - 1, 0)) + 1e-3)
            out[k, y0:y1, x0:x1] = cv2.warpAffine(src, m, (x1 - x0, y1 - y0),
                                                  flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                                  borderMode=cv2.BORDER_CONSTANT,
                                                  borderValue=float(fill[k]))
        if log_space:  # back to probabilities (a softmax over the classes), inside the ROI only
            part = out[:, y0:y1, x0:x1]
            part -= part.max(axis=0, keepdims=True)
            np.exp(part, out=part)
            part /= part.sum(axis=0, keepdims=True)
        return out

    def original_roi(self, shape_hw: tuple[int, int]) -> tuple[int, int, int, int]:
        """The original pixels (x0, y0, x1, y1), clipped to the image, this window covers."""
        a = self.to_original(np.array([-0.5, -0.5]))
        b = self.to_original(np.array([self.width - 0.5, self.height - 0.5]))
        x0 = int(np.clip(math.ceil(a[0] - 0.5), 0, shape_hw[1]))
        y0 = int(np.clip(math.ceil(a[1] - 0.5), 0, shape_hw[0]))
        x1 = int(np.clip(math.floor(b[0] + 0.5) + 1, 0, shape_hw[1]))
        y1 = int(np.clip(math.floor(b[1] + 0.5) + 1, 0, shape_hw[0]))
        return x0, y0, x1, y1


def _source_window(image: np.ndarray, grid: CanonicalGrid, margin: int) -> tuple[np.ndarray, int, int]:
    """The part of ``image`` the grid window reads from (so huge images are never copied whole)."""
    h, w = image.shape
    a = grid.to_original(np.array([-0.5, -0.5]))
    b = grid.to_original(np.array([grid.width - 0.5, grid.height - 0.5]))
    pad = margin + int(math.ceil(2.0 / min(grid.fx, grid.fy)))
    x0 = int(np.clip(math.floor(a[0]) - pad, 0, w))
    y0 = int(np.clip(math.floor(a[1]) - pad, 0, h))
    x1 = int(np.clip(math.ceil(b[0]) + pad + 1, 0, w))
    y1 = int(np.clip(math.ceil(b[1]) + pad + 1, 0, h))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((1, 1), np.float32), 0, 0
    return np.ascontiguousarray(image[y0:y1, x0:x1], dtype=np.float32), x0, y0


def grid_around(center_uv: tuple[float, float], size_wh: tuple[int, int], fx: float, fy: float) -> CanonicalGrid:
    """A window of ``size_wh`` canonical pixels centred on canonical point ``center_uv``."""
    w, h = int(size_wh[0]), int(size_wh[1])
    return CanonicalGrid(fx, fy, int(round(center_uv[0] - w / 2)), int(round(center_uv[1] - h / 2)), w, h)


def resolve_spacing(image: SliceImage, spacing: tuple[float, float] | None = None,
                    annotation: Annotation | None = None) -> tuple[tuple[float, float], bool]:
    """(spacing used, assumed?): the image's own, else the argument, else the annotation's, else a default."""
    for s in (image.spacing_mm, spacing, annotation.pixel_spacing_mm if annotation else None):
        if s is not None:
            return (float(s[0]), float(s[1])), False
    return (DEFAULT_ASSUMED_SPACING_MM, DEFAULT_ASSUMED_SPACING_MM), True


# --------------------------------------------------------------------------- cases


@dataclass
class CaseFiles:
    """One annotated case found in a folder."""

    image_path: Path
    annotation_path: Path

    @property
    def name(self) -> str:
        return self.image_path.stem


@dataclass
class PreparedCase:
    """One case on the canonical grid, cropped to a window around its structures.

    ``landmarks`` is (3, 2) in window pixels in ``LANDMARKS`` order, NaN where the
    annotation has none (its loss is masked). ``center`` is the centre of the
    bounding box of PAB + enamel + landmarks; ``extent`` its (width, height).
    """

    name: str
    image: np.ndarray        # (h, w) float16, normalised intensities in [0, 1]
    labels: np.ndarray       # (h, w) uint8: 0 background, 1 PAB, 2 enamel
    landmarks: np.ndarray    # (3, 2) float32
    center: np.ndarray       # (2,) float32
    extent: np.ndarray       # (2,) float32
    spacing_mm: tuple[float, float]
    spacing_assumed: bool = False

    @property
    def landmark_present(self) -> np.ndarray:
        return np.isfinite(self.landmarks).all(axis=1)


def find_annotated_cases(data_dir: str | Path) -> list[CaseFiles]:
    """Every ``*.dentseg.json`` in ``data_dir`` (not recursive) whose image can be found.

    Raises ``AnnotationError`` when the folder does not exist or holds no
    annotation file with an image beside it.
    """
    d = Path(data_dir)
    if not d.is_dir():
        raise AnnotationError(f"training folder {d} does not exist; give a folder of images with "
                              f"their {SUFFIX} annotation files")
    out = []
    for ann_path in sorted(d.glob("*" + SUFFIX)):
        img = _image_for(ann_path)
        if img is not None:
            out.append(CaseFiles(img, ann_path))
    if not out:
        raise AnnotationError(f"no annotated images found in {d}: it needs images with a {SUFFIX} "
                              "file beside each (PAB and enamel regions; landmarks optional)")
    return out


def _image_for(ann_path: Path) -> Path | None:
    """The image an annotation belongs to: its recorded path, else a same-stem image beside it."""
    try:
        recorded = json.loads(ann_path.read_text(encoding="utf-8")).get("image", {}).get("path")
    except (OSError, ValueError, AttributeError, RecursionError):  # a hostile file: no recorded path
        recorded = None
    if isinstance(recorded, str) and recorded:
        p = Path(recorded)
        p = p if p.is_absolute() else ann_path.parent / p
        if p.is_file():
            return p
    stem = ann_path.name[: -len(SUFFIX)]
    for cand in sorted(ann_path.parent.glob(stem + ".*")):
        if cand != ann_path and not cand.name.endswith(SUFFIX) and cand.is_file():
            return cand
    return None


def prepare_case(image: SliceImage, ann: Annotation, name: str = "case",
                 spacing: tuple[float, float] | None = None, window: int = 256,
                 canonical_mm: float = CANONICAL_SPACING_MM) -> PreparedCase:
    """Resample one annotated case onto the canonical grid around its structures.

    The window is at least ``window`` canonical pixels wide and high (room for
    rotation / scale / shift augmentation of a smaller crop) and always covers
    the structures' bounding box plus 16 px.
    """
    pab, enamel = ann.region("PAB"), ann.region("enamel")
    if pab.is_empty or enamel.is_empty:
        missing = " and ".join(n for n, g in (("PAB", pab), ("enamel", enamel)) if g.is_empty)
        raise AnnotationError(f"{name}: region {missing} is not annotated; training needs both PAB and enamel")
    spacing_used, assumed = resolve_spacing(image, spacing, ann)
    fx, fy = CanonicalGrid.scale_for(spacing_used, canonical_mm)
    whole = CanonicalGrid(fx, fy, 0, 0, 1, 1)
    pts = [np.asarray(g.bounds, float).reshape(2, 2) for g in (pab, enamel)]
    lm = np.full((len(LANDMARKS), 2), np.nan)
    for k, key in enumerate(LANDMARKS):
        if key in ann.landmarks:
            lm[k] = ann.landmarks[key]
            pts.append(lm[k][None])
    allp = whole.to_grid(np.vstack(pts))
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    center = (lo + hi) / 2
    extent = hi - lo
    size = np.maximum(np.ceil(extent + 32), window).astype(int)
    grid = grid_around(center, (size[0], size[1]), fx, fy)
    img = grid.sample(image.normalized())
    labels = np.zeros((grid.height, grid.width), np.uint8)
    labels[geometry_to_mask(grid.geometry_to_grid(pab), labels.shape)] = LABEL_PAB
    labels[geometry_to_mask(grid.geometry_to_grid(enamel), labels.shape)] = LABEL_ENAMEL
    lm_grid = grid.to_grid(lm)  # NaN stays NaN
    return PreparedCase(name, img.astype(np.float16), labels, lm_grid.astype(np.float32),
                        (center - [grid.u0, grid.v0]).astype(np.float32), extent.astype(np.float32),
                        spacing_used, assumed)


class LoadingCancelled(DentsegError):
    """Reading the cases was cancelled (``should_stop`` of ``load_cases``)."""


def load_cases(data_dir: str | Path, window: int = 256,
               progress: Callable[[int, int, str], None] | None = None,
               should_stop: Callable[[], bool] | None = None) -> tuple[list[PreparedCase], list[str]]:
    """Prepare every usable case in ``data_dir``; return (cases, one warning per skipped file).

    A file that cannot be used (unreadable image, invalid annotation, a region
    missing) is skipped with a warning; no usable case at all is an error.
    ``should_stop`` is checked before each case; when it returns True,
    ``LoadingCancelled`` is raised.
    """
    from ..core.image_io import load_image

    files = find_annotated_cases(data_dir)
    cases: list[PreparedCase] = []
    warnings: list[str] = []
    for i, cf in enumerate(files):
        if should_stop is not None and should_stop():
            raise LoadingCancelled(f"reading the cases was cancelled after {i} of {len(files)}")
        try:
            ann = load_annotation(cf.annotation_path)
            img = load_image(cf.image_path)
            cases.append(prepare_case(img, ann, name=cf.name, window=window))
        except DentsegError as exc:
            warnings.append(f"skipped {cf.annotation_path.name}: {exc}")
        if progress is not None:
            progress(i + 1, len(files), cf.name)
    if not cases:
        detail = ("; ".join(warnings[:3]) + (" ..." if len(warnings) > 3 else "")) if warnings else ""
        raise AnnotationError(f"no usable annotated images found in {data_dir}: {detail}")
    return cases, warnings


__all__ = ["CANONICAL_SPACING_MM", "DEFAULT_ASSUMED_SPACING_MM", "CanonicalGrid", "CaseFiles",
           "LoadingCancelled", "PreparedCase", "find_annotated_cases", "grid_around", "load_cases", "prepare_case",
           "resolve_spacing"]
