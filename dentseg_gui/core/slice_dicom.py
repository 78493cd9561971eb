"""A plane resliced from a volume, written as a standard DICOM CT image plus its ``.dentseg.json``.

The DICOM file says exactly where the slice lies: ImagePositionPatient (centre
of the first pixel), ImageOrientationPatient (row and column directions, LPS),
PixelSpacing; the voxel values are int16 with RescaleSlope / RescaleIntercept
(HU). It stays in the source's study and frame of reference: the patient and
study modules and the StudyInstanceUID are copied from the source series, the
FrameOfReferenceUID is kept, the source series is referenced
(ReferencedSeriesSequence) and the source images the plane passes through are
listed (SourceImageSequence), with DerivationCodeSequence "Multiplanar
reformatting" and a DerivationDescription in words. A NIfTI or NRRD source
has no UIDs: its study and frame of reference get UIDs derived from the file,
the same every time the same file is resliced.

Beside it, ``<stem>.dentseg.json`` (an empty annotation) carries the spacing and
the plane in ``provenance`` so the slice can be re-made and audited, and so
the whole-tooth report can group the slices of one tooth (``core.whole_tooth``).
Qt-free, torch-free.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .annotation import Annotation, annotation_path_for, save_annotation
from .volume import Plane, ToothAxis, Volume
from .volume_io.dicom_writer import (ct_image_dataset, ds_number, new_uid, patient_values, save_dataset,
                                     set_image, set_plane)

#: provenance keys a slice's annotation carries (``dentseg predict`` copies them to its output)
SLICE_PROVENANCE_KEYS = ("plane", "volume", "tooth", "offset_mm", "slab_mm", "slab_mode", "slice")

_MPR_CODE = ("113072", "DCM", "Multiplanar reformatting")
_PATIENT_STUDY_KEYWORDS = (
    "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "OtherPatientIDsSequence",
    "PatientAge", "PatientSize", "PatientWeight", "EthnicGroup", "PatientComments", "PatientIdentityRemoved",
    "DeidentificationMethod", "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
    "AccessionNumber", "StudyDescription", "PhysiciansOfRecord", "InstitutionName")


def source_uids(volume: Volume) -> dict[str, str]:
    """Study, series and frame-of-reference UIDs of the volume; derived from the file when it has none."""
    meta = volume.meta
    if meta.get("StudyInstanceUID") and meta.get("FrameOfReferenceUID"):
        return {"study": str(meta["StudyInstanceUID"]), "series": str(meta.get("SeriesInstanceUID", "")),
                "frame": str(meta["FrameOfReferenceUID"])}
    ident = _file_identity(volume.source)
    return {"study": str(meta.get("StudyInstanceUID") or new_uid("study", *ident)),
            "series": str(meta.get("SeriesInstanceUID") or new_uid("series", *ident)),
            "frame": str(meta.get("FrameOfReferenceUID") or new_uid("frame", *ident))}


def _file_identity(source: str) -> tuple[str, ...]:
    p = Path(source)
    try:
        st = p.stat()
        return (str(p.resolve()), str(st.st_size), str(st.st_mtime_ns))
    except OSError:
        return (str(source),)


def _source_dataset(volume: Volume) -> Any:
    """Header of the source's first DICOM file (patient and study modules), or None."""
    files = volume.meta.get("files") or []
    if not str(volume.meta.get("format", "")).startswith("DICOM") or not files:
        return None
    try:
        from .volume_io.dicom_scan import read_header
        return read_header(Path(files[0]))
    except Exception:  # noqa: BLE001 - the source moved or is unreadable: fall back to meta
        return None


def _source_images_hit(volume: Volume, plane: Plane) -> list[int]:
    """Indices ``k`` of the source slices the plane's area passes through."""
    rows, cols = plane.shape
    corners = plane.pixel_to_lps(np.array([[0, 0], [cols - 1, 0], [0, rows - 1], [cols - 1, rows - 1]], float))
    k = volume.lps_to_index(corners)[:, 2]
    lo = int(np.clip(np.floor(k.min()), 0, volume.shape[0] - 1))
    hi = int(np.clip(np.ceil(k.max()), 0, volume.shape[0] - 1))
    return list(range(lo, hi + 1))


def slice_rescale(image: np.ndarray, volume: Volume) -> tuple[float, float]:
    """(slope, intercept) for storing ``image`` (HU, float) as int16: the source's own grid when it fits
    (so the values are those of the source's stored steps), else the finest grid that fits."""
    lo, hi = (float(image.min()), float(image.max())) if image.size else (0.0, 0.0)
    slope, icpt = abs(float(volume.slope)) or 1.0, float(volume.intercept)
    if -32768 <= (lo - icpt) / slope and (hi - icpt) / slope <= 32767:
        return slope, icpt
    if (hi - lo) / slope > 65534:
        slope = (hi - lo) / 65534.0
    return slope, lo + 32767.0 * slope


def slice_dataset(volume: Volume, plane: Plane, image: np.ndarray, *, series_uid: str, instance: int = 1,
                  description: str = "", comment: str = "", slab_mm: float = 0.0) -> Any:
    """The DICOM CT image dataset of one resliced plane."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    uids = source_uids(volume)
    src = _source_dataset(volume)
    ds = ct_image_dataset(rows=plane.shape[0], cols=plane.shape[1], study_uid=uids["study"],
                          series_uid=series_uid, frame_uid=uids["frame"],
                          patient=patient_values(volume.meta, None),
                          series_description=description or "DentSeg tooth slices", series_number=9000,
                          image_type=("DERIVED", "SECONDARY", "AXIAL"),
                          study={k: volume.meta[k] for k in ("StudyDate", "StudyTime", "StudyID", "AccessionNumber",
                                                             "StudyDescription") if volume.meta.get(k)})
    if src is not None:
        for kw in _PATIENT_STUDY_KEYWORDS:
            if kw in src:
                setattr(ds, kw, src[kw].value)
        if "SpecificCharacterSet" in src:
            ds.SpecificCharacterSet = src.SpecificCharacterSet
        ds.StudyInstanceUID = uids["study"]
    sop = new_uid()
    ds.SOPInstanceUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.InstanceNumber = int(instance)
    now = _dt.datetime.now()
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    set_plane(ds, plane.origin, plane.row_dir, plane.col_dir, plane.spacing,
              thickness=slab_mm if slab_mm > 0 else min(volume.spacing))
    slope, icpt = slice_rescale(image, volume)
    stored = np.clip(np.round((image.astype(np.float64) - icpt) / slope), -32768, 32767).astype(np.int16)
    set_image(ds, stored, slope, icpt)
    wc, ww = volume.meta.get("window_center"), volume.meta.get("window_width")
    if wc is None or ww is None:
        lo, hi = np.percentile(image, [1.0, 99.5]) if image.size else (0.0, 1.0)
        wc, ww = 0.5 * (lo + hi), max(float(hi - lo), 1.0)
    ds.WindowCenter, ds.WindowWidth = ds_number(wc), ds_number(ww)
    # where it came from
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = _MPR_CODE
    ds.DerivationCodeSequence = Sequence([code])
    src_name = Path(volume.source).name or "volume"
    ds.DerivationDescription = (f"Oblique multiplanar reformat (trilinear) of {volume.meta.get('format', 'a volume')} "
                                f"'{src_name}'{f', {comment}' if comment else ''}; DentSeg {__version__}")[:1024]
    if comment:
        ds.ImageComments = comment[:10240]
    if uids["series"]:
        ref = Dataset()
        ref.SeriesInstanceUID = uids["series"]
        ref.StudyInstanceUID = uids["study"]
        sops = volume.meta.get("SOPInstanceUIDs") or []
        sop_class = str(volume.meta.get("SOPClassUID") or "")
        if sops and sop_class:
            hit = _source_images_hit(volume, plane) if len(sops) == volume.shape[0] else range(len(sops))
            items = []
            for k in hit:
                item = Dataset()
                item.ReferencedSOPClassUID = sop_class
                item.ReferencedSOPInstanceUID = sops[k]
                items.append(item)
            ds.SourceImageSequence = Sequence(items)
            ref.ReferencedInstanceSequence = Sequence([_copy_ref(i) for i in items])
        ds.ReferencedSeriesSequence = Sequence([ref])
    return ds


def _copy_ref(item: Any) -> Any:
    from pydicom.dataset import Dataset
    out = Dataset()
    out.ReferencedSOPClassUID = item.ReferencedSOPClassUID
    out.ReferencedSOPInstanceUID = item.ReferencedSOPInstanceUID
    return out


def _relative(target: str, start: Path) -> str:
    if not target:
        return ""
    try:
        return Path(os.path.relpath(Path(target).resolve(), start.resolve())).as_posix()
    except ValueError:          # another drive on Windows
        return str(Path(target).resolve())


def slice_provenance(volume: Volume, plane: Plane, json_dir: Path, *, tooth: ToothAxis | None,
                     offset_mm: float, slab_mm: float, slab_mode: str, sop_uid: str, series_uid: str
                     ) -> dict[str, Any]:
    uids = source_uids(volume)
    vol_path = _relative(volume.source, json_dir)
    plane_rec = plane.to_json()
    plane_rec["tooth"] = int(tooth.tooth) if tooth is not None else None
    plane_rec["volume"] = vol_path
    return {
        "source": "dentseg slice",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "dentseg_version": __version__,
        "plane": plane_rec,
        "volume": {"path": vol_path, "format": volume.meta.get("format", ""),
                   "series_uid": uids["series"], "study_uid": uids["study"],
                   "frame_of_reference_uid": uids["frame"],
                   "shape_kji": list(volume.shape), "spacing_mm_ijk": [round(s, 6) for s in volume.spacing]},
        "tooth": tooth.to_json() if tooth is not None else None,
        "offset_mm": round(float(offset_mm), 4),
        "slab_mm": round(float(slab_mm), 4),
        "slab_mode": slab_mode,
        "slice": {"sop_instance_uid": sop_uid, "series_uid": series_uid, "interpolation": "trilinear"},
    }


def write_slice(volume: Volume, plane: Plane, image: np.ndarray, dcm_path: str | Path, *,
                tooth: ToothAxis | None = None, offset_mm: float = 0.0, slab_mm: float = 0.0,
                slab_mode: str = "mean", series_uid: str | None = None, instance: int = 1) -> tuple[Path, Path]:
    """Write ``image`` (the reslice of ``plane``, HU) as ``dcm_path`` and its ``.dentseg.json``; returns both."""
    dcm_path = Path(dcm_path)
    dcm_path.parent.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or new_uid()
    parts = [f"tooth {tooth.tooth}" if tooth is not None else "", f"offset {offset_mm:+g} mm" if offset_mm else "",
             f"{slab_mm:g} mm {slab_mode} slab" if slab_mm > 0 else ""]
    comment = ", ".join(p for p in parts if p)
    ds = slice_dataset(volume, plane, image, series_uid=series_uid, instance=instance, comment=comment,
                       slab_mm=slab_mm)
    save_dataset(ds, dcm_path)
    ann = Annotation(image_path=dcm_path.name, width=int(plane.shape[1]), height=int(plane.shape[0]),
                     pixel_spacing_mm=(float(plane.spacing[0]), float(plane.spacing[1])))
    ann.provenance = slice_provenance(volume, plane, dcm_path.parent, tooth=tooth, offset_mm=offset_mm,
                                      slab_mm=slab_mm, slab_mode=slab_mode, sop_uid=str(ds.SOPInstanceUID),
                                      series_uid=series_uid)
    json_path = save_annotation(ann, annotation_path_for(dcm_path))
    return dcm_path, json_path


def carry_slice_provenance(source_json: str | Path, ann: Annotation, dest_dir: str | Path) -> bool:
    """Copy the slice's origin (plane, volume, tooth, offset, slab) from the ``.dentseg.json`` written
    beside a slice (``source_json``) into ``ann``, a new annotation of the same slice that will be saved
    in ``dest_dir`` (``dentseg predict --out``); the volume's relative path is re-based on ``dest_dir``.
    Returns True when there was something to carry. A missing or unreadable file carries nothing."""
    from .annotation import load_annotation
    from .errors import DentsegError

    source_json = Path(source_json)
    if not source_json.is_file():
        return False
    try:
        src = load_annotation(source_json)
    except DentsegError:
        return False
    prov = src.provenance or {}
    if not isinstance(prov.get("plane"), dict):
        return False
    import copy
    carried = {k: copy.deepcopy(prov[k]) for k in SLICE_PROVENANCE_KEYS if k in prov}
    vol = carried.get("volume")
    if isinstance(vol, dict) and vol.get("path") and not Path(vol["path"]).is_absolute():
        rebased = _relative(str(source_json.parent / vol["path"]), Path(dest_dir))
        vol["path"] = rebased
        carried["plane"]["volume"] = rebased
    for k, v in carried.items():
        ann.provenance.setdefault(k, v)
    return True
