"""An enhanced (multi-frame) DICOM file as one ``Volume``.

The geometry comes from the functional groups: each frame's
PlanePositionSequence (ImagePositionPatient), the PlaneOrientationSequence and
PixelMeasuresSequence (shared, or per frame and then checked to agree) and the
PixelValueTransformationSequence (rescale). A legacy multi-frame file that has
only one top-level ImagePositionPatient plus SpacingBetweenSlices is stacked
along its normal, with a note. Frames are decoded one at a time from the file
(``pydicom.pixels.iter_pixels``) into the preallocated volume.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..volume import Volume, VolumeError
from .common import Progress, allocate
from .dicom_scan import (_floats, _number, check_decoder, check_grayscale, dicom_meta, header_of, read_header,
                         stored_dtype, window_meta)
from .stacking import stack_slices


def _item(group: Any, sequence: str) -> Any:
    seq = group.get(sequence) if group is not None else None
    return seq[0] if seq else None


def _frame_value(per_frame: Any, shared: Any, i: int, sequence: str, key: str) -> Any:
    """``key`` of ``sequence`` for frame ``i``: per-frame group first, then the shared one."""
    for group in ((per_frame[i] if per_frame is not None and i < len(per_frame) else None), shared):
        item = _item(group, sequence)
        if item is not None and key in item:
            return item.get(key)
    return None


def load_multiframe(path: Path, progress: Progress, ds: Any = None) -> Volume:
    where = f"the multi-frame DICOM '{path}'"
    ds = ds if ds is not None else read_header(path)
    h = header_of(path, ds)
    if h is None:
        raise VolumeError(f"'{path}' holds no image: give a DICOM series folder or an image volume file")
    check_grayscale(h, where)
    check_decoder(h, where)
    n = h.frames
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    notes: list[str] = []

    orient = [_floats(_frame_value(per_frame, shared, i, "PlaneOrientationSequence", "ImageOrientationPatient"), 6)
              for i in range(n)] if (per_frame or shared) else [None] * n
    positions = [_floats(_frame_value(per_frame, shared, i, "PlanePositionSequence", "ImagePositionPatient"), 3)
                 for i in range(n)] if per_frame else [None] * n
    spacing = [_floats(_frame_value(per_frame, shared, i, "PixelMeasuresSequence", "PixelSpacing"), 2)
               for i in range(n)] if (per_frame or shared) else [None] * n
    if orient[0] is None:
        orient = [_floats(ds.get("ImageOrientationPatient"), 6)] * n
    if spacing[0] is None:
        spacing = [_floats(ds.get("PixelSpacing"), 2)] * n
    if any(p is None for p in positions):
        positions = _legacy_positions(ds, n, orient[0], where)
        notes.append("the file gives one position for all frames: they were stacked along the slice "
                     "normal at its SpacingBetweenSlices")
    if orient[0] is None or spacing[0] is None:
        raise VolumeError(f"{where} carries no image orientation or pixel spacing, so its frames cannot be "
                          "placed in space (it may be a cine or a screen capture, not a volume). Export the "
                          "scan as a CT or CBCT series")
    if any(o is None or np.abs(np.subtract(o, orient[0])).max() > 1e-4 for o in orient):
        raise VolumeError(f"{where}: its frames have different orientations, so they are not one volume. "
                          "Export the volume as a DICOM series with one orientation")
    if any(s != spacing[0] for s in spacing):
        raise VolumeError(f"{where}: its frames have different pixel spacings, so they are not one volume")
    o = np.asarray(orient[0], float)
    stack = stack_slices(positions, o[:3], o[3:], spacing[0], [f"frame {i + 1}" for i in range(n)], where)
    notes.extend(stack.notes)

    rescale = [(_number(_frame_value(per_frame, shared, i, "PixelValueTransformationSequence", "RescaleSlope"),
                        _number(ds.get("RescaleSlope"), 1.0)) or 1.0,
                _number(_frame_value(per_frame, shared, i, "PixelValueTransformationSequence", "RescaleIntercept"),
                        _number(ds.get("RescaleIntercept"), 0.0)))
               for i in range(n)]
    same_rescale = len(set(rescale)) == 1
    dtype = stored_dtype(h) if same_rescale else np.dtype(np.float32)
    shape = (n, h.rows, h.cols)
    vox = allocate(shape, dtype, where)
    slot = np.empty(n, dtype=np.intp)
    slot[stack.order] = np.arange(n)          # file frame i goes to sorted slice slot[i]
    _read_frames(path, vox, slot, rescale if not same_rescale else None, progress, where)
    slope, intercept = rescale[0] if same_rescale else (1.0, 0.0)
    if not same_rescale:
        notes.append("rescale slope / intercept differ between frames: the voxels were converted to "
                     "float32 rescaled values")
    meta: dict[str, Any] = dicom_meta(ds)
    meta.update({"format": "DICOM multi-frame", "files": [str(path)], "notes": notes,
                 "stored_dtype": str(stored_dtype(h)), "SOPInstanceUIDs": [h.sop_uid],
                 "frame_order": [int(f) for f in stack.order]})
    window_meta(ds, meta)
    ps_row, ps_col = spacing[0]
    return Volume(vox, stack.origin, stack.directions, (ps_col, ps_row, stack.step), float(slope),
                  float(intercept), source=str(path), meta=meta)


def _legacy_positions(ds: Any, n: int, orient, where: str) -> list[tuple[float, float, float]]:
    ipp = _floats(ds.get("ImagePositionPatient"), 3)
    step = _number(ds.get("SpacingBetweenSlices"), 0.0)
    if ipp is None or orient is None or step <= 0:
        raise VolumeError(f"{where} gives no position for its frames (no PlanePositionSequence, or no "
                          "ImagePositionPatient with SpacingBetweenSlices), so it cannot be placed in space "
                          "(it may be a cine or a screen capture, not a volume). Export the scan as a CT or "
                          "CBCT series")
    o = np.asarray(orient, float)
    normal = np.cross(o[:3], o[3:])
    normal /= np.linalg.norm(normal)
    return [tuple(np.asarray(ipp) + k * step * normal) for k in range(n)]


def _read_frames(path: Path, vox: np.ndarray, slot: np.ndarray, rescale, progress: Progress, where: str) -> None:
    from pydicom.pixels import iter_pixels

    n = len(slot)
    i = 0
    count = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, frame in enumerate(iter_pixels(path)):
                if i >= n:
                    break
                if i % 8 == 0:
                    progress(i, n, f"reading frame {i + 1}/{n}")
                if frame.shape != vox.shape[1:]:
                    raise VolumeError(f"{where}: frame {i + 1} decodes to {frame.shape}, not {vox.shape[1:]}: "
                                      "the file is damaged")
                if rescale is None:
                    vox[slot[i]] = frame
                else:
                    np.multiply(frame, np.float32(rescale[i][0]), out=vox[slot[i]], casting="unsafe")
                    vox[slot[i]] += np.float32(rescale[i][1])
                count += 1
    except VolumeError:
        raise
    except MemoryError:
        raise VolumeError(f"{where}: not enough memory to decode the frames; close other programs") from None
    except Exception as exc:  # noqa: BLE001 - damaged data, missing decoder: one clear line
        text = " ".join(str(exc).split())[:160]
        raise VolumeError(f"{where}: frame {i + 1} is truncated or cannot be decoded ({text}). Copy the file "
                          "again, or export the scan uncompressed") from None
    if count < n:
        raise VolumeError(f"{where}: only {count} of its {n} frames could be read; the file is truncated. "
                          "Copy it again from the scanner or PACS")
    progress(n, n, "frames read")
