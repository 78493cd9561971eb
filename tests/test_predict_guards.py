"""`dentseg predict` never replaces a person's work, respects read-only files, and refuses
inputs whose cost is unbounded (issue 12, items 3 and 6).

Prediction runs with the stand-in segmenter of ``test_predict`` (the phantom's truth), so
these tests check the guards, not the network.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from dentseg_gui import cli
from dentseg_gui.core import limits
from dentseg_gui.core.annotation import annotation_path_for, load_annotation, save_annotation
from dentseg_gui.core.errors import ImageLoadError
from dentseg_gui.core.image_io import load_image
from dentseg_gui.core.overwrite_guard import OverwriteRefused, overwrite_problem
from dentseg_gui.core.phantom import generate_phantom, write_phantom_set
from dentseg_gui.model.predict import _summary, predict_files

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_image_io import write_dicom  # noqa: E402
from test_predict import _predictor  # noqa: E402

SEED = 31


@pytest.fixture
def case_dir(tmp_path) -> Path:
    write_phantom_set(tmp_path / "cases", 1, seed=SEED)
    return tmp_path / "cases"


def _image(case_dir: Path) -> Path:
    return next(p for p in case_dir.iterdir() if not p.name.endswith(".json"))


def _as_model_output(path: Path, edited: str | None = None) -> None:
    """Rewrite an annotation file as unedited model output (optionally one item edited by hand)."""
    ann = load_annotation(path)
    stamp = {"source": "model", "model": "LU-Net phantom v2"}
    ann.provenance = {"source": "LU-Net prediction",
                      "regions": {n: dict(stamp) for n in ann.regions},
                      "landmarks": {n: dict(stamp) for n in ann.landmarks}}
    if edited:
        ann.provenance["landmarks"][edited].update(edited_by_hand=True, edited_by="alice")
    save_annotation(ann, path)


# --------------------------------------------------------------------------- overwriting


def test_predict_refuses_to_replace_work_without_model_provenance(case_dir, capsys):
    img = _image(case_dir)
    target = annotation_path_for(img)
    before = target.read_bytes()
    case = generate_phantom(SEED, "standard")
    with pytest.raises(OverwriteRefused) as info:
        predict_files([img], case_dir, model=_predictor(case))
    msg = str(info.value)
    assert target.name in msg and "--overwrite" in msg and "without model provenance" in msg
    assert "\n" not in msg
    assert target.read_bytes() == before
    # the command: exit 2, one line naming the file and --overwrite, before any model is loaded
    rc = cli.main(["predict", str(img), "--out", str(case_dir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and target.name in err[0] and "--overwrite" in err[0]
    assert target.read_bytes() == before
    # --overwrite replaces it with the model's output
    results = predict_files([img], case_dir, model=_predictor(case), overwrite=True)
    assert results[0].ok and load_annotation(target).provenance["source"] == "LU-Net prediction"


def test_predict_replaces_its_own_output_but_not_a_hand_correction(case_dir):
    img = _image(case_dir)
    target = annotation_path_for(img)
    case = generate_phantom(SEED, "standard")
    _as_model_output(target)
    assert overwrite_problem(target) is None                  # only model output would be lost
    assert predict_files([img], case_dir, model=_predictor(case))[0].ok
    _as_model_output(target, edited="apex")                   # a person moved the apex
    before = target.read_bytes()
    with pytest.raises(OverwriteRefused, match=r"apex drawn or edited by hand \(by alice\)"):
        predict_files([img], case_dir, model=_predictor(case))
    assert target.read_bytes() == before
    # a file that is not a readable annotation is not replaced either
    target.write_text("my notes, not JSON")
    with pytest.raises(OverwriteRefused, match="not a readable DentSeg annotation"):
        predict_files([img], case_dir, model=_predictor(case))
    assert target.read_text() == "my notes, not JSON"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_a_read_only_annotation_is_never_replaced(case_dir):
    img = _image(case_dir)
    target = annotation_path_for(img)
    case = generate_phantom(SEED, "standard")
    _as_model_output(target)
    os.chmod(target, 0o444)
    before = target.read_bytes()
    for overwrite in (False, True):
        with pytest.raises(OverwriteRefused, match="read-only"):
            predict_files([img], case_dir, model=_predictor(case), overwrite=overwrite)
    assert target.read_bytes() == before and stat.S_IMODE(target.stat().st_mode) == 0o444
    # every atomic write respects it (the app's Save shows "the file is read-only")
    with pytest.raises(PermissionError, match="read-only"):
        save_annotation(load_annotation(target), target)
    assert target.read_bytes() == before


# --------------------------------------------------------------------------- images bounded by cost


def test_the_pixel_limit_follows_the_free_memory(tmp_path, monkeypatch):
    import cv2
    path = tmp_path / "big.png"
    cv2.imwrite(str(path), np.zeros((2000, 2000), np.uint8))      # 4 MP, 10 KB on disk
    assert load_image(path).width == 2000
    monkeypatch.setattr(limits, "available_memory", lambda: 100 * 2**20)   # 100 MB free
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    msg = str(info.value)
    assert "big.png" in msg and "memory" in msg and "100 MB available" in msg
    assert "Close other programs" in msg


def test_prediction_refuses_slices_it_cannot_afford(monkeypatch):
    case = generate_phantom(SEED, "standard")
    monkeypatch.setattr(limits, "PREDICT_MAX_PIXELS", 100_000)
    with pytest.raises(ImageLoadError, match="megapixels.*crop the region around the incisor"):
        _predictor(case).predict_image(case.image)
    monkeypatch.setattr(limits, "PREDICT_MAX_PIXELS", 40_000_000)
    monkeypatch.setattr(limits, "available_memory", lambda: 10 * 2**20)
    with pytest.raises(ImageLoadError, match="10 MB of memory available"):
        _predictor(case).predict_image(case.image)


def test_a_huge_pixel_spacing_is_refused_not_allocated(tmp_path):
    case = generate_phantom(SEED, "standard")
    px = case.image.pixels.astype(np.uint16)
    path = write_dicom(tmp_path / "far.dcm", px, PixelSpacing=[1e9, 1e9])
    img = load_image(path)
    assert img.spacing_mm is None and "implausible" in img.meta["spacing_problem"]
    assert "implausible" in img.meta["spacing_note"]
    with pytest.raises(ImageLoadError, match=r"the file's pixel spacing is unusable.*--spacing"):
        _predictor(case).predict_image(img)
    # with the real spacing given, it predicts
    sp = case.annotation.pixel_spacing_mm
    res = _predictor(case).predict_image(load_image(path, spacing=sp), spacing=sp)
    assert res.annotation.measurements["pab_area_mm2"] > 0
    # a spacing inside the file format's range but not a dental slice's
    with pytest.raises(ImageLoadError, match="not a dental slice's"):
        _predictor(case).predict_image(case.image.with_spacing((50.0, 50.0)))


def test_the_edge_search_never_plans_more_jumps_than_the_band_has():
    from dentseg_gui.model.compensation import _best_path
    rng = np.random.default_rng(0)
    score = rng.normal(size=(40, 61))
    assert np.array_equal(_best_path(score, max_jump=10**9, jump_cost=0.1),   # was 91 GB at spacing 1e9
                          _best_path(score, max_jump=60, jump_cost=0.1))


def test_the_cli_line_says_which_frame_was_predicted(tmp_path):
    case = generate_phantom(SEED, "standard")
    px = case.image.pixels.astype(np.uint16)
    frames = np.stack([px // 2, px, px // 3])
    sp = case.annotation.pixel_spacing_mm
    path = write_dicom(tmp_path / "multi.dcm", frames, PixelSpacing=list(sp))
    results = predict_files([path], tmp_path / "out", model=_predictor(case))
    ann = results[0].annotation
    assert ann.provenance["frame"] == {"index": 1, "frames": 3}
    assert "frame 2 of 3 (the middle one)" in _summary(ann)
    assert load_annotation(results[0].out_path).provenance["frame"]["frames"] == 3
