"""Write one phantom slice as a CT DICOM file (the site2 style's storage), reproducibly.

Uncompressed explicit-VR little endian, MONOCHROME2, PixelSpacing, RescaleSlope 1 and the
style's RescaleIntercept; signed 16-bit or unsigned 12-bit stored values. UIDs are derived
from the phantom seed and no dates are written, so the same seed gives the same bytes.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_bytes


def ct_slice_bytes(stored: np.ndarray, spacing_mm: tuple[float, float], intercept: float,
                   seed: int, description: str = "dentseg phantom site2") -> bytes:
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    signed = stored.dtype == np.int16
    sop = generate_uid(entropy_srcs=["dentseg phantom", "site2", str(seed), "sop"])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = generate_uid(entropy_srcs=["dentseg phantom writer"])
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["dentseg phantom", "site2", str(seed), "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["dentseg phantom", "site2", str(seed), "series"])
    ds.Modality = "CT"
    ds.PatientName = "Phantom^Site2"
    ds.PatientID = f"site2-{seed}"
    ds.SeriesDescription = description
    ds.Rows, ds.Columns = int(stored.shape[0]), int(stored.shape[1])
    ds.PixelSpacing = [f"{spacing_mm[0]:.6g}", f"{spacing_mm[1]:.6g}"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16 if signed else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.RescaleIntercept = f"{intercept:g}"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter = "400"
    ds.WindowWidth = "3000"
    ds.PixelData = np.ascontiguousarray(stored, dtype="<i2" if signed else "<u2").tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def write_ct_slice(path: str | Path, stored: np.ndarray, spacing_mm: tuple[float, float], intercept: float,
                   seed: int) -> None:
    atomic_write_bytes(Path(path), ct_slice_bytes(stored, spacing_mm, intercept, seed))
