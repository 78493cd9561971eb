"""The prediction pipeline: probabilities -> regions -> compensation -> measurements -> files.

The pipeline tests run with a stand-in segmenter that returns the phantom's
truth as soft probabilities (with the palatal side deliberately wrong), so they
check the pipeline itself without the network; the tests marked by
``needs_model`` run the bundled LU-Net and are skipped when it is absent.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from pydicom.pixels import get_decoder
from pydicom.uid import JPEG2000
from shapely.geometry import MultiPolygon, box

from dentseg_gui.core.annotation import Annotation, load_annotation
from dentseg_gui.core.errors import ModelError
from dentseg_gui.core.geometry import geometry_to_mask
from dentseg_gui.core.phantom import generate_phantom, write_phantom_set
from dentseg_gui.model.compensation import offset_palatal_boundary
from dentseg_gui.model.evaluate import evaluate_pair
from dentseg_gui.model.inference import SegmentationResult
from dentseg_gui.model.predict import (Predictor, keep_main_parts, predict_cli, predict_files,
                                       probabilities_to_region)
from dentseg_gui.resources import bundled_model_path

needs_model = pytest.mark.skipif(not bundled_model_path().is_file(),
                                 reason="bundled model resources/lunet.pt not present yet")


class FakeSegmenter:
    """Returns a phantom's truth as probabilities, its palatal side pushed outward.

    The probabilities are blurred by 0.4 mm: like a real network that is wrong
    about a boundary, it is unsure there.
    """

    name = "fake-truth"
    sha256 = "0" * 64
    card: dict = {}

    def __init__(self, case, palatal_error_mm: float = 0.4):
        a = case.annotation
        self.case = case
        shape = (a.height, a.width)
        wrong = offset_palatal_boundary(a.regions["PAB"], a.landmarks, a.pixel_spacing_mm, palatal_error_mm)
        blur = 0.4 / a.pixel_spacing_mm[1]
        pab = cv2.GaussianBlur(geometry_to_mask(wrong, shape).astype(np.float32), (0, 0), blur)
        en = cv2.GaussianBlur(geometry_to_mask(a.regions["enamel"], shape).astype(np.float32), (0, 0), 1.0)
        en = np.minimum(en, 1.0 - pab)
        self.probs = np.stack([1.0 - pab - en, pab, en]).astype(np.float32)
        self.wrong = wrong

    def segment(self, image, spacing=None, should_stop=None):
        a = self.case.annotation
        return SegmentationResult(self.probs, dict(a.landmarks), {k: 0.9 for k in a.landmarks},
                                  (0, 0, a.width, a.height), a.pixel_spacing_mm, False,
                                  {k: "heatmap" for k in a.landmarks})


def _predictor(case, compensation=True, error_mm=0.4) -> Predictor:
    p = Predictor(compensation=compensation)
    p._segmenter = FakeSegmenter(case, error_mm)
    return p


# --------------------------------------------------------------------------- regions


def test_probabilities_to_region_is_the_argmax_region():
    probs = np.zeros((3, 40, 40), np.float32)
    probs[0] = 1.0
    probs[:, 10:30, 10:20] = np.array([0.3, 0.4, 0.3])[:, None, None]   # PAB wins without 0.5
    probs[:, 10:30, 20:30] = np.array([0.2, 0.2, 0.6])[:, None, None]
    pab = probabilities_to_region(probs, 1, (0.2, 0.2))
    mask = geometry_to_mask(pab, (40, 40))
    # a 0.5 threshold would find nothing; the argmax border is placed sub-pixel, so the
    # block's outermost pixel centres sit on it - the interior is all in, nothing else is
    assert mask[11:29, 11:19].all() and 18 * 8 <= mask.sum() <= 200
    assert not mask[:, :10].any() and not mask[:, 20:].any()
    enamel = geometry_to_mask(probabilities_to_region(probs, 2, (0.2, 0.2)), (40, 40))
    assert enamel[11:29, 21:29].all() and not enamel[:, :19].any()


def test_keep_main_parts_drops_specks_and_pinholes_keeps_big_second_piece():
    big = box(0, 0, 100, 50).difference(box(10, 10, 11, 11)).difference(box(40, 10, 60, 30))
    second = box(200, 0, 240, 50)      # 2000 px: more than a third of the big one
    speck = box(300, 0, 305, 5)
    out = keep_main_parts(MultiPolygon([big, second, speck]), (0.2, 0.2))
    assert len(out.geoms) == 2
    holes = [len(p.interiors) for p in out.geoms]
    assert sorted(holes) == [0, 1]     # the 1 px hole (0.04 mm2) is filled, the 400 px one kept


# --------------------------------------------------------------------------- pipeline


def test_predict_image_builds_a_measured_annotation_with_provenance():
    case = generate_phantom(22, "standard")
    res = _predictor(case).predict_image(case.image)
    ann = res.annotation
    assert set(ann.regions) == {"PAB", "enamel"}
    assert ann.measurements["pab_area_mm2"] > 1.0
    assert ann.measurements["root_length_mm"] == pytest.approx(
        case.annotation.measurements["root_length_mm"], abs=1e-6)
    prov = ann.provenance
    assert prov["source"] == "LU-Net prediction" and prov["model"] == "fake-truth"
    assert prov["model_sha256"] == "0" * 64
    assert prov["compensation"]["enabled"] and prov["compensation"]["applied"]
    assert prov["compensation"]["moved_mm"] > 0.1
    assert prov["spacing_assumed"] is False and prov["created"] and prov["dentseg_version"]
    assert res.compensation is not None and res.timings["total"] >= res.timings["segment"]
    for kind, names in (("regions", ann.regions), ("landmarks", ann.landmarks)):
        assert {n: prov[kind][n]["source"] for n in names} == {n: "model" for n in names}
    assert prov["landmarks"]["apex"]["model"] == "fake-truth"
    json.dumps(ann.to_json_dict())       # provenance is plain JSON


def test_compensation_in_the_pipeline_improves_the_palatal_boundary():
    case = generate_phantom(22, "standard")
    on = _predictor(case, compensation=True).predict_image(case.image).annotation
    off = _predictor(case, compensation=False).predict_image(case.image).annotation
    m_on, m_off = evaluate_pair(on, case.annotation), evaluate_pair(off, case.annotation)
    assert off.provenance["compensation"] == {"enabled": False}
    assert m_off["palatal_boundary_mm"] > 0.3
    assert m_on["palatal_boundary_mm"] < 0.75 * m_off["palatal_boundary_mm"]
    assert m_on["dice"]["PAB"] > m_off["dice"]["PAB"]
    assert m_on["abs_error"]["pab_area_mm2"] < m_off["abs_error"]["pab_area_mm2"]


def test_predict_files_reports_a_bad_file_by_name_and_writes_the_good_one(tmp_path):
    case = generate_phantom(22, "standard")
    src = tmp_path / "in"
    write_phantom_set(src, 1, seed=22)
    good = src / "case_0022.png"
    bad = src / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    seen = []
    results = predict_files([bad, good], tmp_path / "out", model=_predictor(case),
                            spacing=case.annotation.pixel_spacing_mm,
                            progress=lambda i, n, name: seen.append((i, n, name)))
    assert [r.path.name for r in results] == ["broken.png", "case_0022.png"]
    assert results[0].error and "broken.png" in results[0].error and results[0].out_path is None
    assert results[1].ok and results[1].out_path == tmp_path / "out" / "case_0022.dentseg.json"
    ann = load_annotation(results[1].out_path)
    assert ann.image_path == "case_0022.png" and (ann.width, ann.height) == (case.image.width, case.image.height)
    assert ann.provenance["source"] == "LU-Net prediction"
    assert seen[0] == (0, 2, "broken.png") and seen[-1] == (2, 2, "")


def test_predict_files_stops_when_asked(tmp_path):
    case = generate_phantom(22, "standard")
    write_phantom_set(tmp_path / "in", 2, seed=22)
    paths = sorted((tmp_path / "in").glob("*.png"))
    results = predict_files(paths, tmp_path / "out", model=_predictor(case), should_stop=lambda: True)
    assert all(not r.ok and "cancelled" in r.error for r in results)
    assert not list((tmp_path / "out").glob("*.json"))


def test_a_missing_or_corrupt_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError):
        predict_files([tmp_path / "x.png"], tmp_path / "out", model=tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError):
        predict_cli([tmp_path / "x.png"], tmp_path / "out", model=junk)


# --------------------------------------------------------------------------- with the bundled model


@needs_model
def test_predict_cli_with_the_bundled_model(tmp_path, capsys):
    write_phantom_set(tmp_path / "in", 1, seed=9100)
    img = tmp_path / "in" / "case_9100.png"
    if not img.exists():
        img = tmp_path / "in" / "case_9100.tif"
    bad = tmp_path / "in" / "empty.png"
    bad.write_bytes(b"")
    truth = load_annotation(tmp_path / "in" / "case_9100.dentseg.json")
    rc = predict_cli([img, bad], tmp_path / "out", spacing=truth.pixel_spacing_mm)
    out = capsys.readouterr().out
    assert rc == 1
    assert f"{img.name} -> " in out and "mm2" in out
    assert "empty.png: error:" in out
    pred = load_annotation(tmp_path / "out" / "case_9100.dentseg.json")
    m = evaluate_pair(pred, truth)
    assert m["dice"]["PAB"] > 0.5 and m["dice"]["enamel"] > 0.5


@needs_model
def test_predict_real_dicoms_and_cephalogram_without_crashing(real_data, tmp_path):
    files = sorted((real_data / "dicom").glob("*.dcm")) + [real_data / "cephalogram" / "B1893L12.jpg"]
    results = predict_files(files, tmp_path / "out")
    by_name = {r.path.name: r for r in results}
    # JPEG 2000 needs a decoder (none by default): a clear per-file error, the rest run
    j2k = by_name["JPEG2000.dcm"]
    if not get_decoder(JPEG2000).is_available:
        assert not j2k.ok and "JPEG 2000" in j2k.error
    for name, r in by_name.items():
        if name != "JPEG2000.dcm" or j2k.ok:
            assert r.ok, f"{name}: {r.error}"
            assert load_annotation(r.out_path).image_path == name
    ceph = load_annotation(by_name["B1893L12.jpg"].out_path)
    assert ceph.provenance["spacing_assumed"] is True
    assert (ceph.width, ceph.height) == (4096, 5120) or (ceph.width, ceph.height) == (5120, 4096)


def test_a_predicted_file_reads_as_model_output_in_the_app():
    """`dentseg predict` output and the app share one provenance shape: no hand work."""
    from dentseg_gui.gui.cases import has_hand_work, is_model_only
    case = generate_phantom(23, "standard")
    ann = Annotation.from_json_dict(_predictor(case).predict_image(case.image).annotation.to_json_dict())
    assert is_model_only(ann) and not has_hand_work(ann)
    ann.provenance["landmarks"]["apex"]["edited_by_hand"] = True
    assert has_hand_work(ann)
