"""Write a ``Volume`` as a DICOM CT series (one file per slice), and the pieces a CT image needs.

``write_dicom_series`` makes test data and phantom volumes that any DICOM viewer
opens: CT Image Storage, explicit VR little endian, int16 stored values with
RescaleSlope / RescaleIntercept, fresh UIDs (the volume's Study and Frame of
Reference UIDs when it has them), one ImagePositionPatient per slice.
``ct_image_dataset``, ``int16_mapping`` and ``to_int16`` are shared with the writer of
resliced planes (``core.slice_dicom``).
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ... import __version__
from ..volume import Volume, VolumeError

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def ds_number(x: float) -> Any:
    """A DS value (at most 16 characters) for ``x``."""
    from pydicom.valuerep import DSfloat
    return DSfloat(float(x), auto_format=True)


def int16_mapping(lo: float, hi: float, integer: bool, slope: float = 1.0, intercept: float = 0.0
                  ) -> tuple[float, float, bool]:
    """(slope', intercept', exact) so that int16 stored values s' = (v·slope + intercept − intercept') / slope'
    cover values ``v`` in [lo, hi]: integers that fit int16 (or uint16, shifted by 32768) stay exact,
    anything else is quantised with the source's own step (``slope``) when 65536 levels cover the
    range, else over the range."""
    if integer and -32768 <= lo and hi <= 32767:
        return float(slope), float(intercept), True
    if integer and 0 <= lo and hi <= 65535:
        return float(slope), float(intercept) + 32768.0 * float(slope), True
    h_lo, h_hi = sorted((lo * slope + intercept, hi * slope + intercept))
    step = abs(float(slope)) or 1.0
    if (h_hi - h_lo) / step > 65534:
        step = (h_hi - h_lo) / 65534.0
    return step, h_lo + 32767.0 * step, False


def to_int16(values: np.ndarray, slope: float, intercept: float, new_slope: float, new_intercept: float
             ) -> np.ndarray:
    """``values`` (with their rescale) as int16 stored values under the new rescale."""
    v = np.asarray(values)
    if v.dtype.kind in "iu" and new_slope == slope:
        shift = int(round((new_intercept - intercept) / slope))
        return (v.astype(np.int32) - shift).astype(np.int16) if shift else v.astype(np.int16)
    hu = v.astype(np.float64) * slope + intercept
    return np.clip(np.round((hu - new_intercept) / new_slope), -32768, 32767).astype(np.int16)


def new_uid(*entropy: str) -> str:
    """A fresh DICOM UID, or a reproducible one when ``entropy`` is given."""
    from pydicom.uid import generate_uid
    return str(generate_uid(entropy_srcs=list(entropy)) if entropy else generate_uid())


def patient_values(meta: dict[str, Any], patient: dict[str, Any] | None) -> dict[str, str]:
    """PatientName/ID/BirthDate/Sex from ``patient`` (keys name, id, birth_date, sex or DICOM keywords),
    else the volume's meta, else an anonymous phantom."""
    p = patient or {}

    def pick(short: str, keyword: str, default: str) -> str:
        v = p.get(short, p.get(keyword, meta.get(keyword, default)))
        return "" if v is None else str(v)

    return {"PatientName": pick("name", "PatientName", "Anonymous"),
            "PatientID": pick("id", "PatientID", "DENTSEG"),
            "PatientBirthDate": pick("birth_date", "PatientBirthDate", ""),
            "PatientSex": pick("sex", "PatientSex", "")}


def ct_image_dataset(*, rows: int, cols: int, study_uid: str, series_uid: str, frame_uid: str,
                     patient: dict[str, str], series_description: str, series_number: int = 1,
                     image_type: Sequence[str] = ("DERIVED", "SECONDARY", "AXIAL"),
                     study: dict[str, Any] | None = None) -> Any:
    """A CT Image dataset with every module filled except the per-image plane and pixels."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

    now = _dt.datetime.now()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta.ImplementationVersionName = f"DENTSEG_{__version__}"[:16]
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = list(image_type)
    ds.SOPClassUID = CT_IMAGE_STORAGE
    for key, value in patient.items():
        setattr(ds, key, value)
    st = study or {}
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = st.get("StudyDate", now.strftime("%Y%m%d"))
    ds.StudyTime = st.get("StudyTime", now.strftime("%H%M%S"))
    ds.ReferringPhysicianName = st.get("ReferringPhysicianName", "")
    ds.StudyID = st.get("StudyID", "1")
    ds.AccessionNumber = st.get("AccessionNumber", "")
    if st.get("StudyDescription"):
        ds.StudyDescription = st["StudyDescription"]
    ds.Modality = "CT"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = int(series_number)
    ds.SeriesDescription = series_description[:64]
    ds.SeriesDate = now.strftime("%Y%m%d")
    ds.SeriesTime = now.strftime("%H%M%S")
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = "DentSeg"
    ds.SoftwareVersions = __version__
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = int(rows)
    ds.Columns = int(cols)
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.KVP = ""
    ds.AcquisitionNumber = ""
    return ds


def set_image(ds: Any, stored: np.ndarray, slope: float, intercept: float) -> None:
    """Pixels (int16) and their rescale into ``ds``."""
    ds.RescaleSlope = ds_number(slope)
    ds.RescaleIntercept = ds_number(intercept)
    ds.RescaleType = "HU"
    ds.PixelData = np.ascontiguousarray(stored, dtype="<i2").tobytes()


def set_plane(ds: Any, position, row_dir, col_dir, pixel_spacing: tuple[float, float],
              thickness: float | None = None) -> None:
    ds.ImagePositionPatient = [ds_number(v) for v in position]
    ds.ImageOrientationPatient = [ds_number(v) for v in (*row_dir, *col_dir)]
    ds.PixelSpacing = [ds_number(pixel_spacing[0]), ds_number(pixel_spacing[1])]
    if thickness is not None:
        ds.SliceThickness = ds_number(thickness)


def save_dataset(ds: Any, path: Path) -> None:
    """Write ``ds`` as a DICOM file (temporary name, then moved into place)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        ds.save_as(tmp, enforce_file_format=True)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_dicom_series(volume: Volume, folder: str | Path, series_description: str = "",
                       patient: dict[str, Any] | None = None, prefix: str = "IM") -> list[Path]:
    """One CT Image file per slice ``k`` in ``folder``; returns the paths in slice order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    row, col, kdir = (volume.directions[:, c] for c in range(3))
    normal = np.cross(row, col)
    if abs(abs(float(normal @ kdir)) - 1.0) > 1e-6 or abs(float(row @ col)) > 1e-6:
        raise VolumeError("this volume's slices are sheared or its rows and columns are not perpendicular: "
                          "it cannot be written as a DICOM series; write NIfTI or NRRD instead")
    meta = volume.meta
    study_uid = str(meta.get("StudyInstanceUID") or new_uid())
    frame_uid = str(meta.get("FrameOfReferenceUID") or new_uid())
    series_uid = new_uid()
    base = ct_image_dataset(rows=volume.shape[1], cols=volume.shape[2], study_uid=study_uid,
                            series_uid=series_uid, frame_uid=frame_uid,
                            patient=patient_values(meta, patient),
                            series_description=series_description or str(meta.get("SeriesDescription", "")),
                            study={k: meta[k] for k in ("StudyDate", "StudyTime", "StudyID", "AccessionNumber",
                                                        "StudyDescription") if meta.get(k)})
    # one rescale for the whole series (decided on the whole volume, so slices agree)
    vox = volume.voxels
    lo, hi = (float(vox.min()), float(vox.max())) if vox.size else (0.0, 0.0)
    slope, intercept, exact = int16_mapping(lo, hi, vox.dtype.kind in "iu", volume.slope, volume.intercept)
    s0, i0 = float(volume.slope), float(volume.intercept)

    def convert(plane):
        return to_int16(plane, s0, i0, slope, intercept)
    if not exact:
        base.LossyImageCompression = "00"
        base.DerivationDescription = "grey values requantised to 16 bits"
    paths = []
    spacing_i, spacing_j, spacing_k = volume.spacing
    for k in range(volume.shape[0]):
        ds = base.copy()
        ds.file_meta = base.file_meta.copy()
        sop = new_uid()
        ds.SOPInstanceUID = sop
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.InstanceNumber = k + 1
        pos = volume.index_to_lps([0, 0, k])
        set_plane(ds, pos, row, col, (spacing_j, spacing_i), thickness=spacing_k)
        ds.SliceLocation = ds_number(float(pos @ normal))
        set_image(ds, convert(volume.voxels[k]), slope, intercept)
        path = folder / f"{prefix}{k + 1:05d}.dcm"
        save_dataset(ds, path)
        paths.append(path)
    return paths
