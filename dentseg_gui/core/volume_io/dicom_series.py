"""A DICOM series (a folder of single-frame images) as one ``Volume``.

Two passes over the files: headers first (``dicom_scan``) to choose the series,
sort its slices along the slice normal and check the grid (``stacking``), then
the pixels, one file at a time, straight into the preallocated volume. Peak
memory is the volume plus one slice. The stored integer type and the rescale
slope / intercept are kept; only when slices disagree on the rescale are the
voxels stored as float32 values (HU), with a note.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..volume import Volume, VolumeError
from .common import Progress, allocate
from .dicom_scan import (SeriesGroup, check_decoder, check_grayscale, dicom_meta, group_series, read_header,
                         scan_folder, stored_dtype, window_meta)
from .stacking import stack_slices


def load_dicom_folder(folder: Path, progress: Progress, series_uid: str | None = None) -> Volume:
    scan = scan_folder(folder, progress)
    if not scan.headers:
        raise VolumeError(f"the folder '{folder}' holds no DICOM images"
                          f"{f' ({len(scan.skipped)} other files)' if scan.skipped else ''}: give the folder "
                          "of a DICOM series, or a .nii, .nii.gz or .nrrd file")
    groups = group_series(scan.headers)
    notes: list[str] = []
    if series_uid:
        chosen = [g for g in groups if g.headers[0].series_uid == series_uid]
        if not chosen:
            raise VolumeError(f"the folder '{folder}' holds no series {series_uid}; it holds "
                              + "; ".join(g.label() for g in groups))
        groups = chosen + [g for g in groups if g not in chosen]
    group = groups[0]
    if len(groups) > 1:
        others = "; ".join(g.label() for g in groups[1:6]) + (" …" if len(groups) > 6 else "")
        notes.append(f"the folder holds {len(groups)} series: opened the largest, {group.label()}; "
                     f"not opened: {others}. To open another, give its own folder")
    if scan.skipped:
        notes.append(f"{len(scan.skipped)} file{'s' if len(scan.skipped) != 1 else ''} in the folder "
                     "are not DICOM images and were ignored")
    first = group.headers[0]
    if first.frames > 1:
        from .dicom_multiframe import load_multiframe
        vol = load_multiframe(first.path, progress)
        vol.meta.setdefault("notes", []).extend(notes)
        return vol
    return _load_group(folder, group, progress, notes)


def _load_group(folder: Path, group: SeriesGroup, progress: Progress, notes: list[str]) -> Volume:
    where = f"DICOM series in '{folder}'"
    headers = group.headers
    h0 = headers[0]
    check_grayscale(h0, where)
    check_decoder(h0, where)
    if len(headers) == 1:
        raise VolumeError(f"'{h0.path}' is a single 2-D image, not a volume (the folder '{folder}' holds no "
                          "other slice of its series). Open it as an image, or give the folder holding the "
                          "whole series")
    missing = [h.name for h in headers if h.position is None or h.orientation is None]
    if missing:
        raise VolumeError(f"{where}: {len(missing)} image(s) (e.g. '{missing[0]}') carry no "
                          "ImagePositionPatient / ImageOrientationPatient, so the slices cannot be placed "
                          "in space. Export the series from the scanner software as a CT or CBCT series")
    if h0.pixel_spacing is None:
        raise VolumeError(f"{where}: the images carry no PixelSpacing, so sizes in mm are unknown. Export "
                          "the series with its pixel spacing")
    for h in headers:
        if h.pixel_spacing != h0.pixel_spacing or (h.bits_allocated, h.pixel_representation) != (
                h0.bits_allocated, h0.pixel_representation):
            raise VolumeError(f"{where}: '{h.name}' differs from '{h0.name}' in pixel spacing or pixel "
                              "type; the files are not one volume. Give the folder of one series only")
    o = np.asarray(h0.orientation, float)
    stack = stack_slices([h.position for h in headers], o[:3], o[3:], h0.pixel_spacing,
                         [h.name for h in headers], where)
    ordered = [headers[i] for i in stack.order]
    notes.extend(stack.notes)

    rescales = {(h.slope, h.intercept) for h in ordered}
    same_rescale = len(rescales) == 1
    dtype = stored_dtype(h0) if same_rescale else np.dtype(np.float32)
    shape = (len(ordered), h0.rows, h0.cols)
    vox = allocate(shape, dtype, f"the series in '{folder}'")
    total = len(ordered)
    for k, h in enumerate(ordered):
        if k % 8 == 0:
            progress(k, total, f"reading slice {k + 1}/{total}")
        arr = read_pixels(h.path, where)
        if arr.shape != shape[1:]:
            raise VolumeError(f"{where}: '{h.name}' decodes to {arr.shape[1]}×{arr.shape[0]} pixels, not "
                              f"{shape[2]}×{shape[1]}: the file is damaged. Copy the series again")
        if same_rescale:
            vox[k] = arr
        else:
            np.multiply(arr, np.float32(h.slope), out=vox[k], casting="unsafe")
            vox[k] += np.float32(h.intercept)
    progress(total, total, "series read")
    slope, intercept = (h0.slope, h0.intercept) if same_rescale else (1.0, 0.0)
    if not same_rescale:
        notes.append("rescale slope / intercept differ between slices: the voxels were converted to "
                     "float32 rescaled values")
    ps_row, ps_col = h0.pixel_spacing
    first_ds = read_header(ordered[0].path)
    meta: dict[str, Any] = dicom_meta(first_ds)
    meta.update({"format": "DICOM series", "files": [str(h.path) for h in ordered], "notes": notes,
                 "stored_dtype": str(stored_dtype(h0)), "SOPInstanceUIDs": [h.sop_uid for h in ordered]})
    window_meta(first_ds, meta)
    return Volume(vox, stack.origin, stack.directions, (ps_col, ps_row, stack.step), float(slope),
                  float(intercept), source=str(folder), meta=meta)


def read_pixels(path: Path, where: str) -> np.ndarray:
    """One image's stored pixel values (``VolumeError`` naming the file if it cannot be decoded)."""
    from pydicom.pixels import pixel_array

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pixel_array(path)
    except MemoryError:
        raise VolumeError(f"{where}: not enough memory to decode '{path.name}'; close other programs") from None
    except Exception as exc:  # noqa: BLE001 - damaged data, missing decoder: one clear line
        text = " ".join(str(exc).split())[:160]
        raise VolumeError(f"{where}: the pixel data of '{path.name}' is truncated or damaged ({text}). Copy "
                          "the series again from the scanner or PACS") from None


def load_dicom_file(path: Path, progress: Progress) -> Volume:
    """One DICOM file: an enhanced multi-frame volume, or a clear "this is a 2-D image"."""
    ds = read_header(path, force=path.suffix.lower() in (".dcm", ".dicom", ".dic", ".ima", ""))
    from .dicom_scan import header_of
    h = header_of(path, ds)
    if h is None:
        raise VolumeError(f"'{path}' is a DICOM file without an image (e.g. a DICOMDIR or a report): give "
                          "the folder of a DICOM series or an image volume file")
    if h.frames > 1:
        from .dicom_multiframe import load_multiframe
        return load_multiframe(path, progress, ds)
    hint = "give the folder holding the whole series"
    try:
        siblings = [p for p in path.parent.iterdir() if p.is_file() and p != path][:2000]
    except OSError:
        siblings = []
    if h.series_uid and len(siblings) > 1:
        hint = f"to open the volume it belongs to, give its folder '{path.parent}'"
    raise VolumeError(f"'{path}' is a single 2-D DICOM image, not a volume: open it as an image "
                      f"(dentseg predict, or the app's Open image), or {hint}")
