"""Small volumes with known geometry for the volume tests (imported by test modules)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dentseg_gui.core.volume import Volume


def rotation(z_deg: float = 25.0, x_deg: float = 10.0) -> np.ndarray:
    a, b = np.deg2rad(z_deg), np.deg2rad(x_deg)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rx @ rz


def oblique_volume(shape=(12, 20, 30), seed: int = 1, spacing=(0.3, 0.4, 0.7)) -> Volume:
    """int16 noise with a rescale, rotated directions and anisotropic voxels."""
    rng = np.random.default_rng(seed)
    vox = rng.integers(-1000, 3000, shape).astype(np.int16)
    return Volume(vox, (10.0, -20.0, 5.0), rotation(), spacing, 1.0, -1024.0,
                  meta={"SeriesDescription": "oblique test", "PatientName": "Test^Volume",
                        "PatientID": "VOL-1", "PatientBirthDate": "19800101", "PatientSex": "F"})


def write_enhanced_ct(volume: Volume, path: Path, frame_order=None) -> Path:
    """An Enhanced CT Image file (per-frame positions, shared orientation/spacing/rescale), frames in
    ``frame_order`` (default: slice order) - written here, independently of the readers."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    n, rows, cols = volume.shape
    order = list(range(n)) if frame_order is None else list(frame_order)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = generate_uid(), generate_uid(), generate_uid()
    ds.Modality = "CT"
    ds.PatientName, ds.PatientID = "Enhanced^Test", "ENH-1"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, n
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    shared = Dataset()
    po = Dataset()
    po.ImageOrientationPatient = [f"{v:.10g}" for v in (*volume.directions[:, 0], *volume.directions[:, 1])]
    pm = Dataset()
    pm.PixelSpacing = [f"{volume.spacing[1]:.10g}", f"{volume.spacing[0]:.10g}"]
    pm.SliceThickness = f"{volume.spacing[2]:.10g}"
    pv = Dataset()
    pv.RescaleSlope, pv.RescaleIntercept, pv.RescaleType = f"{volume.slope:g}", f"{volume.intercept:g}", "HU"
    shared.PlaneOrientationSequence = Sequence([po])
    shared.PixelMeasuresSequence = Sequence([pm])
    shared.PixelValueTransformationSequence = Sequence([pv])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for k in order:
        item, pp = Dataset(), Dataset()
        pp.ImagePositionPatient = [f"{v:.10g}" for v in volume.index_to_lps([0, 0, k])]
        item.PlanePositionSequence = Sequence([pp])
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.PixelData = np.ascontiguousarray(volume.voxels[order], dtype="<i2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def tooth_volume(tilt_deg: float = 15.0, shape=(72, 80, 90), spacing=(0.4, 0.35, 0.5), radius: float = 3.0):
    """A bright cylinder (dentin, 1500 HU) with an enamel cap (2500 HU) along a known, tilted axis, in
    air (-1000 HU), in a volume with rotated directions and anisotropic voxels. Returns (volume, axis)
    where ``axis`` is the exact ``ToothAxis`` of FDI 11 (crown down, apex up, lip anterior)."""
    from dentseg_gui.core.volume import ToothAxis

    dirs = rotation(8.0, 5.0)
    nk, nj, ni = shape
    origin = np.zeros(3)
    probe = Volume(np.zeros((1, 1, 1), np.int16), origin, dirs, spacing)
    centre = probe.index_to_lps([(ni - 1) / 2, (nj - 1) / 2, (nk - 1) / 2])
    t = np.deg2rad(tilt_deg)
    axis = np.array([0.0, np.sin(t), np.cos(t)])          # apical: superior, leaning back (posterior)
    labial = np.array([0.0, -np.cos(t), np.sin(t)])        # toward the lip: anterior, perpendicular to axis
    md = np.cross(axis, labial)                             # +x or -x: distal of 11 is the patient's right (-x)
    if md[0] > 0:
        md = -md
    cej = centre + np.array([0.0, 0.0, -2.0])
    incisal, apex = cej - 10.0 * axis, cej + 14.0 * axis
    k, j, i = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij")
    xyz = probe.index_to_lps(np.stack([i, j, k], -1).reshape(-1, 3).astype(float)).reshape(nk, nj, ni, 3)
    rel = xyz - incisal
    along = rel @ axis
    across = np.linalg.norm(rel - along[..., None] * axis, axis=-1)
    hu = np.full(shape, -1000, np.int16)
    inside = (across <= radius) & (along >= 0) & (along <= 24.0)
    hu[inside] = 1500
    hu[inside & (along <= 4.0)] = 2500
    vol = Volume((hu + 1024).astype(np.int16), origin, dirs, spacing, 1.0, -1024.0,
                 meta={"SeriesDescription": "cylinder tooth"})
    truth = ToothAxis(11, incisal=incisal, cej=cej, apex=apex, mesiodistal=md, labial=labial, confidence=0.9,
                      notes=["synthetic"])
    return vol, truth


class FakeDetector:
    """Stands in for ``tooth_detection.detect_incisors``: answers the known axes, records its calls."""

    def __init__(self, axes):
        self.axes = list(axes)
        self.calls = []

    def __call__(self, volume, at=None, teeth=(11, 21), progress=None, should_stop=None):
        self.calls.append({"at": at, "teeth": tuple(teeth)})
        if progress is not None:
            progress(1, 1, "found")
        return [a for a in self.axes if a.tooth in teeth]
