"""Phantom volumes: reproducible, CBCT-like, and their truth agrees with their voxels."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import Point

from dentseg_gui.core.geometry import geometry_to_mask
from dentseg_gui.core.measurements import apply_measurements
from dentseg_gui.core.phantom import PhantomStyleError
from dentseg_gui.core.phantom.volume import PhantomVolume, generate_phantom_volume
from dentseg_gui.core.reslice import reslice
from dentseg_gui.core.volume import plane_for_tooth

@pytest.fixture(scope="module")
def clean() -> PhantomVolume:
    """No noise, streaks or cupping: the voxels show the anatomy itself (0.35 mm voxels, ~3 s)."""
    return generate_phantom_volume(4, spacing_mm=0.35, noise=False, slice_spacing_mm=0.2)


def test_same_seed_same_volume_other_seed_other_volume():
    a = generate_phantom_volume(11, spacing_mm=0.8)
    b = generate_phantom_volume(11, spacing_mm=0.8)
    c = generate_phantom_volume(12, spacing_mm=0.8)
    assert a.volume.voxels.dtype in (np.int16, np.uint16)
    assert np.array_equal(a.volume.voxels, b.volume.voxels)
    assert np.allclose(a.volume.origin, b.volume.origin) and np.allclose(a.volume.directions, b.volume.directions)
    assert a.params == {**b.params, "seconds": a.params["seconds"]}
    assert a.volume.shape != c.volume.shape or not np.array_equal(a.volume.voxels, c.volume.voxels)


def test_unknown_style_and_bad_seed_are_refused():
    with pytest.raises(PhantomStyleError):
        generate_phantom_volume(1, style="nope")
    with pytest.raises(PhantomStyleError):
        generate_phantom_volume(-1)


def test_volume_is_ct_like_with_rescale_to_hu(clean):
    v = clean.volume
    hu = v.to_hu(v.voxels)
    assert v.meta["modality"] == "CT"
    # air around the head, soft tissue the commonest tissue, enamel the brightest
    assert np.percentile(hu, 1) < -900
    levels = clean.params["hu"]
    assert hu.max() == pytest.approx(levels["enamel"], abs=250)
    assert levels["enamel"] > levels["dentin"] > levels["cortex"] > levels["trab"] > levels["soft"] > levels["air"]


def test_directions_are_orthonormal_and_vary_between_seeds():
    kinds = set()
    for seed in range(6):
        p = generate_phantom_volume(seed, spacing_mm=1.2)
        d = p.volume.directions
        assert np.allclose(d.T @ d, np.eye(3), atol=1e-9)
        kinds.add(p.params["directions"])
    assert len(kinds) >= 2          # not always the identity


def test_every_upper_tooth_has_a_true_axis_pointing_up_with_unit_directions(clean):
    assert {11, 21, 12, 22, 13, 23} <= set(clean.teeth)
    for fdi, ax in clean.teeth.items():
        assert ax.tooth == fdi
        assert ax.axis[2] > 0.5                      # apex superior (LPS z)
        assert np.linalg.norm(ax.mesiodistal) == pytest.approx(1.0)
        assert abs(float(ax.axis @ ax.mesiodistal)) < 1e-6
        assert abs(float(ax.labial @ ax.mesiodistal)) < 1e-6
        assert ax.labial[1] < 0                      # lip anterior (-y in LPS)
    # 11 on the patient's right (-x), 21 on the left; distal points away from the midline
    a, b = clean.teeth[11], clean.teeth[21]
    assert a.cej[0] < b.cej[0]
    assert a.mesiodistal[0] < 0 < b.mesiodistal[0]


def test_truth_slice_lies_in_the_true_plane_with_its_landmarks_on_the_axis(clean):
    for fdi in (11, 21):
        plane, ann = clean.slices[fdi]
        ax = clean.teeth[fdi]
        assert plane == plane_for_tooth(ax, 0.2, (48.0, 48.0))
        lm = ann.landmarks
        mid = 0.5 * (np.asarray(lm["CEJ_labial"]) + np.asarray(lm["CEJ_palatal"]))
        assert np.allclose(plane.pixel_to_lps(mid), ax.cej, atol=1e-3)
        assert np.allclose(plane.pixel_to_lps(np.asarray(lm["apex"])), ax.apex, atol=1e-3)
        # labial left, apex up: the palatal CEJ right of the labial one, the apex above the CEJ
        assert lm["CEJ_palatal"][0] > lm["CEJ_labial"][0]
        assert lm["apex"][1] < mid[1]
        # the stored measurements are the measurement engine's on the stored geometry
        again = apply_measurements(ann.copy())
        for k, val in ann.measurements.items():
            assert again.measurements[k] == pytest.approx(val, abs=1e-6)
        assert ann.measurements["root_length_mm"] == pytest.approx(np.linalg.norm(ax.apex - ax.cej), abs=1e-4)
        assert ann.measurements["axis_tilt_deg"] == pytest.approx(0.0, abs=1e-3)


def test_resliced_true_plane_shows_the_truth(clean):
    """Enamel is brightest where the truth has enamel, bone where it has PAB, tooth at the axis."""
    lv = clean.params["hu"]
    for fdi in (11, 21):
        plane, ann = clean.slices[fdi]
        img = reslice(clean.volume, plane)
        shape = img.shape
        # inner parts of the regions (away from partial volume at their edges)
        en = ann.regions["enamel"].buffer(-0.35 / plane.spacing[0])
        pab = ann.regions["PAB"].buffer(-1.0 / plane.spacing[0])
        en_m = geometry_to_mask(en, shape)
        pab_m = geometry_to_mask(pab, shape)
        assert en_m.sum() > 5 and pab_m.sum() > 20
        enamel_seen = float(np.median(img[en_m]))
        assert enamel_seen > lv["dentin"] + 0.3 * (lv["enamel"] - lv["dentin"])
        bone_seen = float(np.median(img[pab_m]))
        assert lv["trab"] - 150 < bone_seen < lv["cortex"] + 100
        # the root: dentin between the CEJ and the apex, beside the pulp
        lm = ann.landmarks
        cej = 0.5 * (np.asarray(lm["CEJ_labial"]) + np.asarray(lm["CEJ_palatal"]))
        apex = np.asarray(lm["apex"])
        root_pts = [cej + f * (apex - cej) for f in (0.3, 0.5)]
        side = np.array([1.0, 0.0]) * (0.9 / plane.spacing[1])
        for p in root_pts:
            vals = [img[int(round(q[1])), int(round(q[0]))] for q in (p - side, p + side)]
            assert max(vals) > lv["dentin"] - 0.35 * (lv["dentin"] - lv["soft"])
        # nothing dentin-bright inside the PAB truth: no tooth where the truth says bone
        assert float(np.percentile(img[pab_m], 99)) < lv["dentin"] - 0.2 * (lv["dentin"] - lv["cortex"])
        assert not ann.regions["PAB"].contains(Point(*apex))


def test_truth_record_is_plain_json_with_both_central_planes(clean):
    import json

    rec = json.loads(json.dumps(clean.truth_record()))
    assert set(rec["slices"]) == {"11", "21"} and {"11", "21", "12", "22", "13", "23"} <= set(rec["teeth"])
    ann = rec["slices"]["11"]["annotation"]
    assert ann["format"] == "dentseg-annotation" and "PAB" in ann["regions"]
    assert rec["teeth"]["21"]["cej_mm"] == pytest.approx(list(np.round(clean.teeth[21].cej, 4)))
    assert rec["params"]["seed"] == 4


def test_other_style_is_a_different_family():
    a = generate_phantom_volume(3, "standard", spacing_mm=0.8)
    b = generate_phantom_volume(3, "other", spacing_mm=0.8)
    assert b.params["style"] == "other" and a.params["style"] == "standard"
    assert a.params["arch"]["kind"] != b.params["arch"]["kind"]
    assert set(b.slices) == {11, 21}


def test_dentseg_phantom_volume_writes_each_format_with_its_truth(tmp_path, capsys):
    """`dentseg phantom OUT --volume` writes a volume that re-opens with the generator's voxels and
    geometry, beside a truth file holding the tooth axes and the central slices' measurements."""
    import json

    from dentseg_gui.cli import main
    from dentseg_gui.core.volume_io import load_volume

    expected = generate_phantom_volume(21, spacing_mm=0.8)
    for fmt, name in (("dicom", "volume_0021"), ("nifti", "volume_0021.nii.gz"), ("nrrd", "volume_0021.nrrd")):
        out = tmp_path / fmt
        assert main(["phantom", str(out), "--volume", "-n", "1", "--seed", "21", "--format", fmt,
                     "--voxel", "0.8"]) == 0
        vol = load_volume(out / name)
        assert vol.shape == expected.volume.shape
        np.testing.assert_allclose(vol.spacing, expected.volume.spacing, atol=1e-4)
        np.testing.assert_allclose(vol.directions, expected.volume.directions, atol=1e-5)
        np.testing.assert_allclose(vol.voxels[vol.shape[0] // 2] * vol.slope + vol.intercept,
                                   expected.volume.voxels[vol.shape[0] // 2] * expected.volume.slope
                                   + expected.volume.intercept, atol=1.0)
        truth = json.loads((out / "volume_0021.truth.json").read_text())
        assert truth["volume_file"] == name
        assert {"11", "21"} <= set(truth["teeth"]) and set(truth["slices"]) == {"11", "21"}
        assert truth["slices"]["11"]["annotation"]["measurements"]["root_length_mm"] > 5
    assert main(["phantom", str(tmp_path / "x"), "--volume", "--style", "wide"]) == 2
    assert "standard, other" in capsys.readouterr().err


def test_dentseg_phantom_volume_slices_writes_annotated_dicom_cases_of_11_then_21(tmp_path, capsys):
    """`dentseg phantom OUT --volume-slices -n 3` writes 11 and 21 of the first volume and 11 of the
    next, each a DICOM slice that loads with the plane's spacing and shows the truth it carries."""
    from dentseg_gui.cli import main
    from dentseg_gui.core.annotation import load_annotation
    from dentseg_gui.core.image_io import load_image
    from dentseg_gui.model.dataset import find_annotated_cases

    out = tmp_path / "cases"
    assert main(["phantom", str(out), "--volume-slices", "-n", "3", "--seed", "30"]) == 0
    assert "wrote 3 phantom slice cases from 2 volumes" in capsys.readouterr().out
    cases = find_annotated_cases(out)
    assert [c.image_path.name for c in cases] == ["standard_30_11.dcm", "standard_30_21.dcm", "standard_31_11.dcm"]
    pv = generate_phantom_volume(30)
    for case, fdi in zip(cases[:2], (11, 21)):
        plane, truth = pv.slices[fdi]
        ann = load_annotation(case.annotation_path)
        image = load_image(case.image_path)
        assert image.spacing_mm == pytest.approx(plane.spacing, abs=1e-4)
        assert (ann.width, ann.height) == (image.width, image.height)
        assert ann.region("PAB").area == pytest.approx(truth.region("PAB").area)
        assert ann.measurements["root_length_mm"] == pytest.approx(truth.measurements["root_length_mm"])
        # the truth sits on the pixels: the enamel is the brightest tissue of the slice
        px = image.pixels.astype(float)
        enamel = geometry_to_mask(ann.region("enamel"), px.shape)
        pab = geometry_to_mask(ann.region("PAB"), px.shape)
        assert np.median(px[enamel]) > np.median(px[pab]) > np.median(px)
    assert main(["phantom", str(tmp_path / "x"), "--volume", "--volume-slices"]) == 2
    assert "give one of them" in capsys.readouterr().err
