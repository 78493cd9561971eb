"""Write phantom CBCT volumes to disk with their truth: ``dentseg phantom OUT --volume``.

Each volume ``k`` (seed ``seed + k``) becomes

* ``volume_{seed:04d}/`` — a DICOM CT series, one file per axial slice (``--format dicom``), or
  ``volume_{seed:04d}.nii.gz`` / ``volume_{seed:04d}.nrrd`` (``nifti`` / ``nrrd``);
* ``volume_{seed:04d}.truth.json`` — ``PhantomVolume.truth_record()``: the true long axis of
  every upper tooth made (LPS mm) and, for 11 and 21, the true labio-palatal plane with the
  exact annotation (regions, landmarks, measurements) of the slice on it.

So a benchmark or a user can run ``dentseg slice`` (or open the volume in the app) and
compare what DentSeg finds with the truth.

``dentseg phantom OUT --volume-slices -n N`` (``write_volume_slice_cases``) writes instead N
annotated *slice cases* made by the 3-D generator: the central labio-palatal plane of 11 and
then of 21 of each volume (seeds ``seed``, ``seed + 1``, ...), resliced as ``dentseg slice``
writes it (DICOM CT + ``.dentseg.json``) with the plane's exact annotation. They are training
and test cases from another renderer than the slice phantoms. Qt-free and torch-free.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from ..atomic import atomic_write_text
from ..errors import DentsegError
from .params import PhantomStyleError, check_seed
from .volume import check_volume_style, generate_phantom_volume

VOLUME_FORMATS = ("dicom", "nifti", "nrrd")


def _check_count(n, what: str) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise PhantomStyleError(f"number of {what} must be a non-negative integer, got {n!r}")


def volume_name(seed: int) -> str:
    return f"volume_{int(seed):04d}"


def write_phantom_volumes(out_dir: str | os.PathLike, n: int, seed: int = 0, style: str = "standard",
                          fmt: str = "dicom", *, spacing_mm: float | None = None, max_voxels: int | None = None,
                          noise: bool = True, progress: Callable[[str], None] | None = None) -> list[Path]:
    """Write ``n`` phantom volumes into ``out_dir``; returns the volume paths (folder or file)."""
    if fmt not in VOLUME_FORMATS:
        raise PhantomStyleError(f"unknown volume format {fmt!r}; choose one of: {', '.join(VOLUME_FORMATS)}")
    check_volume_style(style)
    seed = check_seed(seed)
    _check_count(n, "phantom volumes")
    from ..volume_io import write_dicom_series, write_nifti, write_nrrd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        s = seed + k
        name = volume_name(s)
        pv = generate_phantom_volume(s, style, spacing_mm=spacing_mm, max_voxels=max_voxels, noise=noise)
        if fmt == "dicom":
            target = out / name
            if target.exists() and any(target.iterdir()):
                raise DentsegError(f"{target} already holds files; choose an empty output folder "
                                   "(a DICOM series must not mix with another)")
            write_dicom_series(pv.volume, target, series_description=f"DentSeg phantom volume {style} seed {s}",
                               patient={"PatientName": f"Phantom^{s}", "PatientID": f"PHANTOM{s:04d}"})
        elif fmt == "nifti":
            target = write_nifti(pv.volume, out / f"{name}.nii.gz")
        else:
            target = write_nrrd(pv.volume, out / f"{name}.nrrd")
        record = pv.truth_record()
        record["volume_file"] = target.name
        atomic_write_text(out / f"{name}.truth.json", json.dumps(record, indent=1))
        paths.append(target)
        if progress:
            shape = "x".join(str(v) for v in pv.volume.shape)
            sp = ", ".join(f"{v:.3f}" for v in pv.volume.spacing)
            progress(f"{target.name}: {shape} voxels, spacing {sp} mm, teeth "
                     f"{' '.join(str(t) for t in sorted(pv.teeth))}")
    return paths


def write_volume_slice_cases(out_dir: str | os.PathLike, n: int, seed: int = 0, style: str = "standard",
                             progress: Callable[[str], None] | None = None) -> list[Path]:
    """Write ``n`` annotated slice cases from phantom volumes into ``out_dir``: 11 then 21 of volume
    ``seed``, then of ``seed + 1``, ... (``STYLE_SEED_TOOTH.dcm`` + ``.dentseg.json``, the annotation
    being the exact truth of the plane). Returns the image paths."""
    from ..annotation import annotation_path_for, save_annotation
    from ..reslice import reslice
    from ..slice_dicom import write_slice

    check_volume_style(style)
    seed = check_seed(seed)
    _check_count(n, "phantom slice cases")
    out = Path(out_dir)
    paths: list[Path] = []
    s = seed
    while len(paths) < n:
        pv = generate_phantom_volume(s, style)
        for fdi in (11, 21)[: n - len(paths)]:
            plane, truth = pv.slices[fdi]
            dcm, _ = write_slice(pv.volume, plane, reslice(pv.volume, plane), out / f"{style}_{s}_{fdi}.dcm")
            truth.image_path = dcm.name
            save_annotation(truth, annotation_path_for(dcm))
            paths.append(dcm)
            if progress:
                progress(f"{dcm.name}: {plane.shape[1]}x{plane.shape[0]} pixels of {plane.spacing[0]:.3f} mm")
        s += 1
    return paths


__all__ = ["VOLUME_FORMATS", "volume_name", "write_phantom_volumes", "write_volume_slice_cases"]
