"""DICOM SEG + SR export: validated with dciodvfy, read back with highdicom."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dentseg_gui.cli import main as cli_main
from dentseg_gui.core.annotation import Annotation, save_annotation
from dentseg_gui.core.geometry import geometry_to_mask
from dentseg_gui.core.interop import dicom_codes as dc
from dentseg_gui.core.interop.common import collect_cases
from dentseg_gui.core.interop.dicom_export import export_dicom
from dentseg_gui.core.measurements import measure

from interop_helpers import ring_with_holes_region, write_png_case

hd = pytest.importorskip("highdicom")


def write_phantom_dicom(folder: Path, name: str = "phantom_slice") -> Path:
    """A phantom slice as a CT image (pydicom), with its ground-truth annotation beside it."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
    from dentseg_gui.core.phantom import generate_phantom

    case = generate_phantom(11, "standard")
    px = np.clip(case.image.pixels, 0, 65535).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(folder / f"{name}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Phantom^Incisor", "PH-011", "", "O"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "1", "A1"
    ds.ReferringPhysicianName, ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "", "CT", 3, 1
    ds.Manufacturer, ds.PositionReferenceIndicator = "DentSeg test", ""
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    sr, sc = case.annotation.pixel_spacing_mm
    ds.PixelSpacing, ds.SliceThickness = [sr, sc], 0.2
    ds.ImageOrientationPatient, ds.ImagePositionPatient = [0, 1, 0, 0, 0, -1], [0.0, -20.0, 30.0]
    ds.Rows, ds.Columns = px.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleIntercept, ds.RescaleSlope, ds.KVP = 0, 1, 90
    ds.PixelData = px.tobytes()
    ds.save_as(folder / f"{name}.dcm", enforce_file_format=True)
    ann = case.annotation.copy()
    ann.image_path = f"{name}.dcm"
    return save_annotation(ann, folder / f"{name}.dentseg.json")


DCIODVFY = shutil.which("dciodvfy")
NO_DCIODVFY = "dciodvfy (Debian package dicom3tools) is not installed: SEG/SR checked by highdicom only"


def _dciodvfy_errors(path: Path) -> list[str]:
    """dciodvfy's error lines; none when it is not installed (test_dciodvfy_is_there says so)."""
    if DCIODVFY is None:
        return []
    r = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60)
    return [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("Error")]


@pytest.mark.skipif(DCIODVFY is None, reason=NO_DCIODVFY)
def test_dciodvfy_is_there_and_flags_a_broken_sr(tmp_path):
    """The validator runs for real: an SR with a required attribute removed has errors."""
    import pydicom
    case_file = write_phantom_dicom(tmp_path)
    export_dicom(collect_cases([case_file])[0], tmp_path / "out")
    broken = pydicom.dcmread(tmp_path / "out" / "phantom_slice_sr.dcm")
    del broken.CompletionFlag            # type 1 in the SR Document General module
    broken.save_as(tmp_path / "broken.dcm")
    assert _dciodvfy_errors(tmp_path / "broken.dcm")


def _values_from_sr(sr) -> tuple[dict[str, float], set[str]]:
    """SR -> {measurement key: value}, {keys marked 'not attempted'} via dicom_codes.SR_ITEMS."""
    group_code = {"PAB": dc.PAB.value, "enamel": dc.ENAMEL.value, "incisor": dc.INCISOR.value}
    by_code = {}
    for item in dc.SR_ITEMS.values():
        site = item.finding_site.value if item.finding_site is not None else None
        by_code[(group_code[item.group], item.concept.value, item.concept.scheme_designator, site)] = item.key
    by_key_code = {item.key_code.value: item.key for item in dc.SR_ITEMS.values()}
    values, missing = {}, set()
    groups = list(sr.content.get_planar_roi_measurement_groups()) + list(sr.content.get_image_measurement_groups())
    for g in groups:
        for m in g.get_measurements():
            site = m.finding_sites[0].value.value if m.finding_sites else None
            values[by_code[(g.finding_type.value, m.name.value, m.name.scheme_designator, site)]] = m.value
        for q in g.get_qualitative_evaluations():
            assert q.value.value == dc.NOT_ATTEMPTED.value
            missing.add(by_key_code[q.name.value])
    return values, missing


def test_phantom_dicom_slice_exports_valid_seg_and_sr(tmp_path):
    case_file = write_phantom_dicom(tmp_path)
    res = export_dicom(collect_cases([case_file])[0], tmp_path / "out")
    assert res.problems == [], res.lines()
    seg_path, sr_path = tmp_path / "out" / "phantom_slice_seg.dcm", tmp_path / "out" / "phantom_slice_sr.dcm"
    assert _dciodvfy_errors(seg_path) == [] and _dciodvfy_errors(sr_path) == []

    import pydicom
    src = pydicom.dcmread(tmp_path / "phantom_slice.dcm")
    seg, sr = hd.seg.segread(seg_path), hd.sr.srread(sr_path)
    for ds in (seg, sr):                       # the source's patient and study are kept
        assert (ds.PatientID, ds.PatientName, ds.StudyInstanceUID) == (src.PatientID, src.PatientName,
                                                                      src.StudyInstanceUID)
    assert seg.FrameOfReferenceUID == src.FrameOfReferenceUID
    ann = collect_cases([case_file])[0][0].annotation
    labels = [seg.get_segment_description(i).segment_label for i in (1, 2)]
    assert labels == ["PAB", "enamel"]
    masks = seg.get_pixels_by_source_instance([src.SOPInstanceUID], combine_segments=False)[0]
    for i, name in enumerate(labels):
        assert (masks[..., i] > 0).sum() == geometry_to_mask(ann.region(name), (src.Rows, src.Columns)).sum()
        assert ((masks[..., i] > 0) == geometry_to_mask(ann.region(name), (src.Rows, src.Columns))).all()

    values, missing = _values_from_sr(sr)
    expected = measure(ann)
    assert missing == set() and set(values) == set(dc.SR_ITEMS)
    for key, v in expected.values.items():
        assert values[key] == pytest.approx(v, rel=1e-9, abs=1e-9), key
    rois = list(sr.content.get_planar_roi_measurement_groups())
    assert {g.referenced_segmentation_frame.referenced_sop_instance_uid for g in rois} == {seg.SOPInstanceUID}
    units = {m.name.meaning: m.unit.value for g in rois for m in g.get_measurements()}
    assert units["Area"] == "mm2" and units["Height"] == "mm"


def test_real_ct_source_with_a_missing_landmark_marks_measurements_not_attempted(tmp_path, real_data):
    shutil.copy(real_data / "dicom" / "CT_small.dcm", tmp_path / "CT_small.dcm")
    ann = Annotation("CT_small.dcm", 128, 128, None, {"PAB": ring_with_holes_region()},
                     {"CEJ_labial": (45.0, 85.0), "CEJ_palatal": (68.0, 82.0)})     # no apex, no enamel
    save_annotation(ann, tmp_path / "CT_small.dentseg.json")
    res = export_dicom(collect_cases([tmp_path])[0], tmp_path / "out")
    assert res.problems == [] and len(res.written) == 2
    for f in res.written:
        assert _dciodvfy_errors(f) == [], f
    sr = hd.sr.srread(tmp_path / "out" / "CT_small_sr.dcm")
    values, missing = _values_from_sr(sr)
    ms = measure(Annotation("CT_small.dcm", 128, 128, (0.661468, 0.661468), dict(ann.regions), dict(ann.landmarks)))
    assert set(values) == {k for k, v in ms.values.items() if v is not None} == {"pab_area_mm2"}
    # without an apex there is no tooth frame: the largest piece of the region is measured (core.pieces)
    assert values["pab_area_mm2"] == pytest.approx(ms.values["pab_area_mm2"], rel=1e-6)
    assert ms.values["pab_area_mm2"] == pytest.approx(
        max(p.area for p in ring_with_holes_region().geoms) * 0.661468 ** 2, rel=1e-6)
    assert missing == set(dc.SR_ITEMS) - {"pab_area_mm2"}
    seg = hd.seg.segread(tmp_path / "out" / "CT_small_seg.dcm")
    assert seg.number_of_segments == 1 and seg.PatientID == "1CT1"


def test_non_dicom_image_gets_a_clear_message(tmp_path, capsys):
    case = write_png_case(tmp_path)
    rc = cli_main(["export", "dicom", str(case), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "DICOM export needs a DICOM source image" in err and "PNG" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
