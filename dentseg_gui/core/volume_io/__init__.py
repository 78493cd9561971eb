"""Open a CBCT / CT volume from disk, and write one (Qt-free, torch-free).

``load_volume(path)`` reads

* a folder holding a DICOM series (single-frame files in any order with any
  names; several series in the folder: the largest is opened and the others
  named in ``volume.meta['notes']``),
* an enhanced (multi-frame) DICOM file,
* NIfTI (``.nii``, ``.nii.gz``) and NRRD (``.nrrd``, ``.nhdr``),

into a ``core.volume.Volume`` in the DICOM patient frame (LPS, mm), voxels in
their stored type plus the rescale slope / intercept. It is safe to call in a
worker thread: ``progress(done, total, text)`` is called as it goes and
``should_stop()`` returning True raises ``VolumeCancelled``. Every problem
is a ``VolumeError`` whose message names the file, says what is wrong and what
to do; a 2-D image is refused as "a 2-D image, not a volume".

Writers for tests, benchmarks and phantom volumes: ``write_dicom_series``,
``write_nifti``, ``write_nrrd``. The choice of libraries: docs/adr/0008.
"""

from __future__ import annotations

import os
from pathlib import Path


from ..volume import Volume, VolumeError
from .common import Progress, ProgressFn, StopFn, VolumeCancelled, available_memory_bytes
from .dicom_writer import write_dicom_series
from .nifti_file import is_nifti_name, nifti_stem, write_nifti
from .nrrd_file import is_nrrd_name, write_nrrd

_RASTER_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"BM")


def load_volume(path: str | os.PathLike, progress: ProgressFn | None = None,
                should_stop: StopFn | None = None, series_uid: str | None = None) -> Volume:
    """Read the volume at ``path`` (a DICOM series folder, a multi-frame DICOM, NIfTI or NRRD file).

    ``series_uid`` picks one series of a folder that holds several (default: the largest).
    """
    p = Path(path)
    prog = Progress(progress, should_stop)
    prog.check()
    if not p.exists():
        raise VolumeError(f"'{p}' does not exist: check the path (give a DICOM series folder, or a .nii, "
                          ".nii.gz or .nrrd file)")
    if p.is_dir():
        from .dicom_series import load_dicom_folder
        vol = load_dicom_folder(p, prog, series_uid=series_uid)
    elif is_nifti_name(p):
        from .nifti_file import load_nifti
        vol = load_nifti(p, prog)
    elif is_nrrd_name(p):
        from .nrrd_file import load_nrrd
        vol = load_nrrd(p, prog)
    else:
        vol = _load_other_file(p, prog)
    vol.meta.setdefault("notes", [])
    return vol


def _load_other_file(p: Path, prog: Progress) -> Volume:
    try:
        with open(p, "rb") as f:
            head = f.read(352)
    except OSError as exc:
        raise VolumeError(f"'{p}' cannot be read ({exc.strerror or exc}): check your permissions") from None
    if len(head) == 0:
        raise VolumeError(f"'{p}' is empty (0 bytes): copy or export it again")
    if (len(head) >= 132 and head[128:132] == b"DICM") or p.suffix.lower() in (".dcm", ".dicom", ".dic", ".ima"):
        from .dicom_series import load_dicom_file
        return load_dicom_file(p, prog)
    if head.startswith(b"NRRD000"):
        from .nrrd_file import load_nrrd
        return load_nrrd(p, prog)
    if len(head) >= 348 and head[344:347] in (b"n+1", b"ni1"):
        from .nifti_file import load_nifti
        return load_nifti(p, prog)
    if head.startswith(_RASTER_MAGIC):
        raise VolumeError(f"'{p}' is a 2-D image, not a volume: open it as an image (dentseg predict, or the "
                          "app's Open image), or give a CBCT volume (a DICOM series folder, .nii, .nii.gz or "
                          ".nrrd)")
    raise VolumeError(f"'{p}' is not a volume DentSeg reads: give a DICOM series folder, a multi-frame DICOM "
                      "file, or a .nii, .nii.gz or .nrrd file")


def volume_stem(path: str | os.PathLike) -> str:
    """The name a volume's outputs start with: the folder name, or the file name without its suffixes."""
    p = Path(path)
    if p.is_dir():
        return p.resolve().name or "volume"
    if is_nifti_name(p):
        return nifti_stem(p)
    return p.stem


__all__ = ["Volume", "VolumeError", "VolumeCancelled", "available_memory_bytes", "load_volume",
           "volume_stem", "write_dicom_series", "write_nifti", "write_nrrd"]


