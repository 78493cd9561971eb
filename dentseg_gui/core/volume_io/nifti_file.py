"""NIfTI volumes (``.nii``, ``.nii.gz``; NIfTI-1 and -2) read into and written from a ``Volume``.

nibabel parses the header (and chooses the affine: the sform when its code is
set, else the qform, the rules of the NIfTI standard); the voxels are then
streamed slice by slice from the (possibly gzip-compressed) file into the
preallocated volume, so memory never holds a second copy. NIfTI's world frame
is RAS: x and y are negated to get the DICOM patient frame LPS. The array's
first index (x) runs fastest in the file, so file slice ``z`` is exactly
``voxels[z]`` (rows ``y``, columns ``x``): no transpose, no copy.

The writer stores the voxels in their own type with ``scl_slope`` /
``scl_inter`` (the rescale), the affine as the sform (and as the qform when the
directions are orthonormal), units mm.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_with
from ..volume import Volume, VolumeError
from .common import Progress, allocate

NIFTI_SUFFIXES = (".nii", ".nii.gz", ".hdr", ".img", ".img.gz", ".hdr.gz")
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def is_nifti_name(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in NIFTI_SUFFIXES)


def nifti_stem(path: Path) -> str:
    name = path.name
    for s in sorted(NIFTI_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(s):
            return name[: -len(s)]
    return path.stem


def load_nifti(path: Path, progress: Progress) -> Volume:
    import nibabel as nib
    from nibabel.openers import ImageOpener

    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises ImageFileError, OSError, EOFError, ValueError...
        text = " ".join(str(exc).split())[:160]
        raise VolumeError(f"'{path}' cannot be read as NIfTI ({type(exc).__name__}: {text}): the file is "
                          "damaged or not a NIfTI volume. Export it again") from None
    hdr = img.header
    proxy = img.dataobj
    shape = tuple(int(n) for n in proxy.shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) < 3 or shape[2] == 1:
        raise VolumeError(f"'{path}' is a 2-D image ({'×'.join(map(str, shape))}), not a volume: open it as "
                          "an image, or give a 3-D scan")
    if len(shape) > 3:
        raise VolumeError(f"'{path}' holds {'×'.join(map(str, shape))} values: a 4-D series (time or "
                          "channels), not one volume. Save the one volume you want as its own NIfTI file")
    dtype = np.dtype(proxy.dtype)
    if dtype.kind not in "iuf" or dtype.fields is not None:
        raise VolumeError(f"'{path}' stores {dtype} voxels (colour or complex), not grey values: a CT or "
                          "CBCT volume has integer or float grey values")
    out_dtype = np.dtype(np.float32) if dtype.kind == "f" else dtype.newbyteorder("=")
    notes: list[str] = []
    if dtype.kind == "f" and dtype.itemsize > 4:
        notes.append("float64 voxels were stored as float32")

    codes = {"sform": int(hdr.get("sform_code", 0)), "qform": int(hdr.get("qform_code", 0))}
    affine = np.asarray(hdr.get_best_affine(), float)
    if codes["sform"] > 0:
        used = "sform"
        if codes["qform"] > 0 and np.abs(hdr.get_qform() - hdr.get_sform()).max() > 1e-3:
            notes.append("the file's sform and qform differ: the sform was used (NIfTI rule)")
    elif codes["qform"] > 0:
        used = "qform"
    else:
        used = "none"
        notes.append("the file gives no orientation (sform and qform codes are 0): the voxel axes were "
                     "taken as the patient's axes, so left/right may be wrong")
    units = hdr.get_xyzt_units()[0] if hasattr(hdr, "get_xyzt_units") else "mm"
    scale = {"meter": 1000.0, "micron": 0.001}.get(units, 1.0)
    lps = _RAS_TO_LPS @ affine
    m = lps[:3, :3] * scale
    spacing = np.linalg.norm(m, axis=0)
    if not np.all(spacing > 0) or not np.all(np.isfinite(m)):
        raise VolumeError(f"'{path}': its affine gives a zero or invalid voxel size; the file's geometry is "
                          "damaged. Export it again")
    directions = m / spacing
    origin = lps[:3, 3] * scale

    nz, ny, nx = shape[2], shape[1], shape[0]
    vox = allocate((nz, ny, nx), out_dtype, f"the NIfTI volume '{path.name}'")
    slab = nx * ny * dtype.itemsize
    try:
        with ImageOpener(proxy.file_like, "rb") as f:
            f.seek(int(proxy.offset))
            for z in range(nz):
                if z % 8 == 0:
                    progress(z, nz, f"reading slice {z + 1}/{nz}")
                buf = f.read(slab)
                if len(buf) < slab:
                    raise VolumeError(f"'{path}' is truncated: it ends in slice {z + 1} of {nz}. Copy or export "
                                      "the file again")
                vox[z] = np.frombuffer(buf, dtype=dtype).reshape(ny, nx)
    except VolumeError:
        raise
    except (OSError, EOFError, ValueError) as exc:
        text = " ".join(str(exc).split())[:160]
        raise VolumeError(f"'{path}' cannot be read to the end ({type(exc).__name__}: {text}): the file is "
                          "truncated or damaged. Copy or export it again") from None
    progress(nz, nz, "volume read")
    slope = float(proxy.slope) if np.isfinite(proxy.slope) and proxy.slope != 0 else 1.0
    inter = float(proxy.inter) if np.isfinite(proxy.inter) else 0.0
    meta: dict[str, Any] = {"format": "NIfTI", "files": [str(path)], "affine_source": used, "notes": notes,
                            "stored_dtype": str(out_dtype)}
    descrip = hdr.get("descrip")
    if descrip is not None:
        text = bytes(np.asarray(descrip).tobytes()).split(b"\0")[0].decode("latin-1").strip()
        if text:
            meta["SeriesDescription"] = text
    return Volume(vox, origin, directions, tuple(spacing), slope, inter, source=str(path), meta=meta)


def _orthonormal(d: np.ndarray) -> bool:
    return bool(np.allclose(d.T @ d, np.eye(3), atol=1e-6))


def write_nifti(volume: Volume, path: str | Path, compress: bool | None = None) -> Path:
    """Write ``volume`` as NIfTI-1 (``.nii.gz`` compressed, else ``.nii``), atomically."""
    import nibabel as nib

    path = Path(path)
    compress = path.name.lower().endswith(".gz") if compress is None else compress
    vox = np.ascontiguousarray(volume.voxels) if not volume.voxels.flags.c_contiguous else volume.voxels
    nk, nj, ni = vox.shape
    hdr = nib.Nifti1Header()
    hdr.set_data_shape((ni, nj, nk))
    hdr.set_data_dtype(vox.dtype)
    ras = _RAS_TO_LPS @ volume.affine
    hdr.set_sform(ras, code="scanner")
    if _orthonormal(volume.directions):
        hdr.set_qform(ras, code="scanner")
    else:
        hdr.set_qform(None, code=0)
    hdr.set_xyzt_units("mm", "sec")
    hdr.set_slope_inter(float(volume.slope), float(volume.intercept))
    descr = str(volume.meta.get("SeriesDescription", "DentSeg volume"))[:79]
    hdr["descrip"] = descr.encode("ascii", "replace")
    hdr.set_data_offset(352)

    head = io.BytesIO()
    hdr.write_to(head)                     # 348-byte header + the 4-byte "no extensions" flag
    head_bytes = head.getvalue().ljust(352, b"\0")

    def write(f) -> None:
        stream = gzip.GzipFile(fileobj=f, mode="wb", compresslevel=1, mtime=0) if compress else f
        stream.write(head_bytes)
        for k in range(nk):
            stream.write(memoryview(vox[k]).cast("B"))
        if compress:
            stream.close()

    atomic_write_with(path, write)
    return path
