"""``dentseg slice``: slices through a tooth whose axis is known, as DICOM + .dentseg.json, re-opened as
2-D cases with their spacing and plane; bad input is one line and exit status 2."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from dentseg_gui.cli import main
from dentseg_gui.core import tooth_slices
from dentseg_gui.core.annotation import load_annotation
from dentseg_gui.core.image_io import load_image
from dentseg_gui.core.reslice import reslice
from dentseg_gui.core.tooth_slices import slice_teeth
from dentseg_gui.core.volume import Plane, VolumeError, plane_for_tooth
from dentseg_gui.core.volume_io import load_volume, write_dicom_series, write_nifti
from volume_samples import FakeDetector, tooth_volume


@pytest.fixture(scope="module")
def tooth():
    return tooth_volume()


@pytest.fixture(scope="module")
def series_dir(tooth, tmp_path_factory):
    d = tmp_path_factory.mktemp("cbct") / "scan"
    write_dicom_series(tooth[0], d, series_description="cylinder tooth",
                       patient={"name": "Slice^Test", "id": "P-11", "birth_date": "19900202", "sex": "M"})
    return d


def _band(row: np.ndarray, threshold: float = 250.0) -> tuple[float, int]:
    """(centre column, width in pixels) of the bright run in one image row."""
    cols = np.flatnonzero(row > threshold)
    return (float(cols.mean()), len(cols)) if len(cols) else (float("nan"), 0)


def test_slices_through_a_known_axis_show_the_tooth_apex_up(tooth, series_dir, tmp_path):
    _, axis = tooth
    vol = load_volume(series_dir)
    det = FakeDetector([axis])
    run = slice_teeth(vol, tmp_path, stem="scan", teeth=(11,), offsets=(0, 2.0, -2.0), detector=det)
    assert det.calls == [{"at": None, "teeth": (11,)}]
    names = sorted(s.dicom.name for s in run.slices)
    assert names == ["scan_11.dcm", "scan_11_+2mm.dcm", "scan_11_-2mm.dcm"]
    central = next(s for s in run.slices if s.offset_mm == 0)
    img = load_image(central.dicom)
    sp = min(vol.spacing)
    assert img.spacing_mm == pytest.approx((sp, sp))
    plane = central.plane
    apex_px, cej_px, inc_px = (plane.lps_to_pixel(p) for p in (axis.apex, axis.cej, axis.incisal))
    assert apex_px[1] < cej_px[1] < inc_px[1]                        # apex up, crown down
    assert abs(apex_px[0] - inc_px[0]) < 1e-6                         # the axis is vertical in the slice
    col = int(round(cej_px[0]))
    # along the axis: enamel near the incisal edge, dentin at the CEJ, air beyond the apex
    at = lambda p: img.pixels[int(round(p[1])), col]  # noqa: E731
    assert at(inc_px + [0, -1.0 / sp]) == pytest.approx(2500, abs=15)
    assert at(cej_px) == pytest.approx(1500, abs=15)
    assert at(apex_px + [0, -2.0 / sp]) == pytest.approx(-1000, abs=15)
    # across: a band 6 mm wide centred on the axis; 2 mm off-centre a chord of 2*sqrt(9-4) mm
    centre, width = _band(img.pixels[int(round(cej_px[1]))])
    assert centre == pytest.approx(cej_px[0], abs=0.5) and width * sp == pytest.approx(6.0, abs=0.45)
    for off in (2.0, -2.0):
        s = next(s for s in run.slices if s.offset_mm == off)
        off_img = load_image(s.dicom)
        _, w = _band(off_img.pixels[int(round(cej_px[1]))])
        assert w * sp == pytest.approx(2 * np.sqrt(5.0), abs=0.45)
        assert np.allclose(np.asarray(s.plane.origin) - plane.origin, off * axis.mesiodistal, atol=1e-6)
    # the file holds the resliced image (quantised to the source's 1 HU steps)
    assert np.abs(img.pixels - reslice(vol, plane)).max() <= 0.5 + 1e-3


def test_slice_dicom_is_placed_exactly_and_stays_in_the_source_study(tooth, series_dir, tmp_path):
    _, axis = tooth
    vol = load_volume(series_dir)
    run = slice_teeth(vol, tmp_path, stem="scan", teeth=(11,), offsets=(1.5,), slab_mm=1.0,
                      detector=FakeDetector([axis]))
    s = run.slices[0]
    ds = pydicom.dcmread(s.dicom)
    src = pydicom.dcmread(vol.meta["files"][0])
    p = s.plane
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2" and ds.Modality == "CT"
    assert np.allclose([float(v) for v in ds.ImagePositionPatient], p.origin, atol=1e-4)
    assert np.allclose([float(v) for v in ds.ImageOrientationPatient], (*p.row_dir, *p.col_dir), atol=1e-6)
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx(list(p.spacing))
    assert (ds.Rows, ds.Columns) == p.shape and ds.BitsAllocated == 16 and ds.PixelRepresentation == 1
    assert float(ds.RescaleSlope) == 1.0 and float(ds.RescaleIntercept) == -1024.0
    assert float(ds.SliceThickness) == 1.0
    assert ds.StudyInstanceUID == src.StudyInstanceUID and ds.FrameOfReferenceUID == src.FrameOfReferenceUID
    assert ds.SeriesInstanceUID != src.SeriesInstanceUID
    assert (str(ds.PatientName), ds.PatientID, ds.PatientBirthDate, ds.PatientSex) == \
        ("Slice^Test", "P-11", "19900202", "M")
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == src.SeriesInstanceUID
    refs = {item.ReferencedSOPInstanceUID for item in ds.SourceImageSequence}
    assert refs and refs <= set(vol.meta["SOPInstanceUIDs"])
    assert ds.DerivationCodeSequence[0].CodeValue == "113072"
    assert "tooth 11" in ds.DerivationDescription and "offset +1.5 mm" in ds.DerivationDescription
    # the annotation beside it: empty regions, the spacing, and the plane to re-make the slice
    ann = load_annotation(s.annotation)
    assert ann.image_path == "scan_11_+1.5mm.dcm" and ann.regions == {}
    assert ann.pixel_spacing_mm == pytest.approx(p.spacing)
    prov = ann.provenance
    again = Plane.from_json(prov["plane"])
    assert np.allclose(again.origin, p.origin, atol=1e-5) and again.shape == p.shape
    assert prov["plane"]["tooth"] == 11 and prov["tooth"]["tooth"] == 11
    assert prov["offset_mm"] == 1.5 and prov["slab_mm"] == 1.0
    assert prov["volume"]["series_uid"] == src.SeriesInstanceUID
    assert (s.annotation.parent / prov["volume"]["path"]).resolve() == series_dir.resolve()
    assert np.allclose(plane_for_tooth(axis, min(vol.spacing), offset_mm=1.5).origin, again.origin, atol=1e-5)


def test_slice_output_reopens_as_a_2d_case_with_its_spacing_and_plane(tooth, series_dir, tmp_path):
    from dentseg_gui.gui.cases import find_images, load_case
    _, axis = tooth
    vol = load_volume(series_dir)
    slice_teeth(vol, tmp_path, stem="scan", teeth=(11,), spacing_mm=0.25, detector=FakeDetector([axis]))
    assert [p.name for p in find_images(tmp_path)] == ["scan_11.dcm"]
    case = load_case(tmp_path / "scan_11.dcm")
    assert case.annotation_path.name == "scan_11.dentseg.json"
    assert case.image.spacing_mm == pytest.approx((0.25, 0.25))
    assert case.annotation.pixel_spacing_mm == pytest.approx((0.25, 0.25))
    assert case.annotation.provenance["plane"]["spacing_mm"] == [0.25, 0.25]
    assert case.note == ""


def test_nifti_source_gets_stable_uids_and_a_relative_path(tooth, tmp_path):
    vol0, axis = tooth
    nii = write_nifti(vol0, tmp_path / "vol" / "scan.nii.gz")
    vol = load_volume(nii)
    a = slice_teeth(vol, tmp_path / "a", stem="scan", teeth=(11,), detector=FakeDetector([axis])).slices[0]
    b = slice_teeth(load_volume(nii), tmp_path / "b", stem="scan", teeth=(11,),
                    detector=FakeDetector([axis])).slices[0]
    da, db = pydicom.dcmread(a.dicom), pydicom.dcmread(b.dicom)
    assert da.FrameOfReferenceUID == db.FrameOfReferenceUID and da.StudyInstanceUID == db.StudyInstanceUID
    prov = json.loads(a.annotation.read_text(encoding="utf-8"))["provenance"]
    assert prov["volume"]["path"] == "../vol/scan.nii.gz" and prov["volume"]["format"] == "NIfTI"


# --------------------------------------------------------------------------- command line


def test_cli_writes_one_line_per_slice(tooth, series_dir, tmp_path, monkeypatch, capsys):
    _, axis = tooth
    det = FakeDetector([axis])
    monkeypatch.setattr(tooth_slices, "default_detector", lambda: det)
    rc = main(["slice", str(series_dir), "--out", str(tmp_path / "out"), "--tooth", "11", "21",
               "--offsets", "-1,0,1", "--at", "-3.5,2,10", "--spacing", "0.3"])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 1                                    # 21 was asked for and not found
    assert det.calls == [{"at": (-3.5, 2.0, 10.0), "teeth": (11, 21)}]
    wrote = [line for line in out if line.startswith("wrote ")]
    assert len(wrote) == 3 and all("tooth 11" in line and "160×160 px at 0.3 mm" in line for line in wrote)
    assert "scan_11_-1mm.dcm" in wrote[0] and "scan_11.dcm" in wrote[1] and "scan_11_+1mm.dcm" in wrote[2]
    assert "offset 0 mm" in wrote[1] and "note: tooth 11: synthetic" in out
    assert out[-1] == "note: tooth 21 was not found in the volume; no slice written for it"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "scan_11.dcm", "scan_11.dentseg.json", "scan_11_+1mm.dcm", "scan_11_+1mm.dentseg.json",
        "scan_11_-1mm.dcm", "scan_11_-1mm.dentseg.json"]


def test_cli_bad_input_is_one_line_and_status_2(tooth, series_dir, tmp_path, monkeypatch, capsys, real_data):
    def no_teeth(volume, at=None, teeth=(11, 21), progress=None, should_stop=None):
        raise VolumeError("no upper incisor found in the volume (it shows no teeth)")

    monkeypatch.setattr(tooth_slices, "default_detector", lambda: no_teeth)
    for argv, expect in (
        (["slice", str(real_data / "dicom" / "CT_small.dcm"), "--out", str(tmp_path)], "2-D DICOM image, not a volume"),
        (["slice", str(series_dir), "--out", str(tmp_path)], "no upper incisor found"),
        (["slice", str(tmp_path / "missing"), "--out", str(tmp_path)], "does not exist"),
        (["slice", str(series_dir), "--out", str(tmp_path), "--tooth", "19"], "FDI numbers"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("dentseg slice: error: ") and expect in err, err
        assert err.count("\n") == 1 and "Traceback" not in err
    assert not any(tmp_path.glob("*.dcm"))


def test_cancel_stops_slicing(tooth, tmp_path):
    from dentseg_gui.core.volume_io import VolumeCancelled
    vol, axis = tooth
    with pytest.raises(VolumeCancelled):
        slice_teeth(vol, tmp_path, stem="s", teeth=(11,), offsets=(0, 1, 2), detector=FakeDetector([axis]),
                    should_stop=lambda: True)
    assert not any(tmp_path.glob("*.dcm"))


def test_predict_keeps_the_slice_provenance(tooth, series_dir, tmp_path):
    from dentseg_gui.core.annotation import Annotation
    from dentseg_gui.model.predict import PredictionResult, Predictor, predict_files

    class StubPredictor(Predictor):          # the pipeline around the network, without the network
        def load(self):
            return self

        def predict_image(self, image, spacing=None, should_stop=None):
            ann = Annotation("x", image.width, image.height, image.spacing_mm)
            ann.provenance = {"source": "LU-Net prediction", "model": "stub"}
            return PredictionResult(ann, None, None)

    _, axis = tooth
    vol = load_volume(series_dir)
    s = slice_teeth(vol, tmp_path / "slices", stem="scan", teeth=(11,), offsets=(1.0,),
                    detector=FakeDetector([axis])).slices[0]
    res = predict_files([s.dicom], tmp_path / "pred", model=StubPredictor())
    ann = load_annotation(res[0].out_path)
    prov = ann.provenance
    assert prov["model"] == "stub" and prov["offset_mm"] == 1.0 and prov["tooth"]["tooth"] == 11
    assert Plane.from_json(prov["plane"]).shape == s.plane.shape
    assert (res[0].out_path.parent / prov["volume"]["path"]).resolve() == series_dir.resolve()
    assert prov["plane"]["volume"] == prov["volume"]["path"]
