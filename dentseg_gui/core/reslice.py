"""Sample an oblique plane of a volume: trilinear interpolation, optional slab (mean or MIP).

The plane's pixels map to fractional voxel indices by one affine map (plane ->
LPS -> voxel), so the work is eight gathers and a weighted sum per pixel, in
float32, on the stored voxels (no copy of the volume). Points outside the volume
read ``outside`` (default: the volume's lowest value, i.e. air). The result is in rescaled units (HU for CT).
"""

from __future__ import annotations

import math

import numpy as np

from .volume import Plane, Volume, VolumeError

SLAB_MODES = ("mean", "mip")


def plane_to_index(volume: Volume, plane: Plane) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, d_col, d_row): voxel index (i, j, k) of pixel (0, 0) and its change per column and per row."""
    start = volume.lps_to_index(np.asarray(plane.origin, float))
    o = volume.lps_to_index(np.zeros(3))
    d_col = volume.lps_to_index(plane.row * plane.spacing[1]) - o
    d_row = volume.lps_to_index(plane.col * plane.spacing[0]) - o
    return start, d_col, d_row


def _outside_value(volume: Volume) -> float:
    """What a point outside the volume reads: the volume's lowest value (air), computed once."""
    if "background_value" not in volume.meta:
        lo = float(volume.voxels.min()) if volume.voxels.size else 0.0
        volume.meta["background_value"] = lo * volume.slope + volume.intercept
    return float(volume.meta["background_value"])


def _sample(volume: Volume, start: np.ndarray, d_col: np.ndarray, d_row: np.ndarray,
            shape: tuple[int, int], outside: float) -> np.ndarray:
    rows, cols = shape
    vox = volume.voxels
    nk, nj, ni = vox.shape
    c = np.arange(cols, dtype=np.float32)
    r = np.arange(rows, dtype=np.float32)[:, None]
    out = np.full((rows, cols), np.float32(outside), np.float32)
    fi = np.float32(start[0]) + c * np.float32(d_col[0]) + r * np.float32(d_row[0])
    fj = np.float32(start[1]) + c * np.float32(d_col[1]) + r * np.float32(d_row[1])
    fk = np.float32(start[2]) + c * np.float32(d_col[2]) + r * np.float32(d_row[2])
    fi, fj, fk = np.broadcast_arrays(fi, fj, fk)
    # inside when every index lies within [0, n-1] (a point on the last voxel centre counts)
    eps = np.float32(1e-4)
    inside = ((fi >= -eps) & (fi <= ni - 1 + eps) & (fj >= -eps) & (fj <= nj - 1 + eps)
              & (fk >= -eps) & (fk <= nk - 1 + eps))
    if not inside.any():
        return out
    fi, fj, fk = (np.clip(a[inside], 0, n - 1) for a, n in ((fi, ni), (fj, nj), (fk, nk)))
    i0 = np.minimum(fi.astype(np.intp), max(ni - 2, 0))
    j0 = np.minimum(fj.astype(np.intp), max(nj - 2, 0))
    k0 = np.minimum(fk.astype(np.intp), max(nk - 2, 0))
    ti, tj, tk = fi - i0, fj - j0, fk - k0
    i1 = np.minimum(i0 + 1, ni - 1)
    j1 = np.minimum(j0 + 1, nj - 1)
    k1 = np.minimum(k0 + 1, nk - 1)
    flat = vox.reshape(-1)
    s_k, s_j = nj * ni, ni

    def g(k, j, i):
        return flat[k * s_k + j * s_j + i].astype(np.float32)

    c00 = g(k0, j0, i0) * (1 - ti) + g(k0, j0, i1) * ti
    c01 = g(k0, j1, i0) * (1 - ti) + g(k0, j1, i1) * ti
    c10 = g(k1, j0, i0) * (1 - ti) + g(k1, j0, i1) * ti
    c11 = g(k1, j1, i0) * (1 - ti) + g(k1, j1, i1) * ti
    val = (c00 * (1 - tj) + c01 * tj) * (1 - tk) + (c10 * (1 - tj) + c11 * tj) * tk
    if volume.slope != 1.0 or volume.intercept != 0.0:
        val = val * np.float32(volume.slope) + np.float32(volume.intercept)
    out[inside] = val
    return out


def reslice(volume: Volume, plane: Plane, slab_mm: float = 0.0, mode: str = "mean",
            outside: float | None = None) -> np.ndarray:
    """The plane's image (rows × columns, float32, rescaled units).

    ``slab_mm`` > 0 averages (``mode='mean'``) or takes the maximum (``'mip'``) of
    planes spread over ±``slab_mm``/2 across the plane, one per finest voxel spacing.
    """
    if mode not in SLAB_MODES:
        raise VolumeError(f"slab mode must be one of {', '.join(SLAB_MODES)}, got {mode!r}")
    if not math.isfinite(slab_mm) or slab_mm < 0:
        raise VolumeError(f"slab thickness must be 0 or more mm, got {slab_mm!r}")
    fill = _outside_value(volume) if outside is None else float(outside)
    start, d_col, d_row = plane_to_index(volume, plane)
    if slab_mm <= 0:
        return _sample(volume, start, d_col, d_row, plane.shape, fill)
    step = min(volume.spacing)
    n = max(1, int(math.ceil(slab_mm / step))) | 1          # odd: the central plane is one of them
    offsets = np.linspace(-slab_mm / 2, slab_mm / 2, n) if n > 1 else np.zeros(1)
    o = volume.lps_to_index(np.zeros(3))
    d_n = volume.lps_to_index(plane.normal) - o
    acc = None
    for off in offsets:
        img = _sample(volume, start + off * d_n, d_col, d_row, plane.shape, fill)
        if acc is None:
            acc = img
        elif mode == "mip":
            np.maximum(acc, img, out=acc)
        else:
            acc += img
    return acc if mode == "mip" else acc / np.float32(len(offsets))
