"""The plausibility check (model.quality): good predictions pass, implausible ones are flagged.

The unit tests feed ``assess`` a phantom's exact annotation with chosen
confidences; the end-to-end tests run the bundled LU-Net on a phantom (passes),
on the same phantom with its pixel spacing doubled (the anatomy is then twice
its size: flagged) and on images that hold no tooth at all (flagged).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from dentseg_gui.core.annotation import load_annotation
from dentseg_gui.core.geometry import EMPTY
from dentseg_gui.core.image import SliceImage
from dentseg_gui.core.measurements import apply_measurements
from dentseg_gui.core.phantom import generate_phantom
from dentseg_gui.model.predict import Predictor, predict_cli
from dentseg_gui.model.quality import assess, cej_width_mm, segmentation_certainty
from dentseg_gui.resources import bundled_model_path

needs_model = pytest.mark.skipif(not bundled_model_path().is_file(), reason="bundled model absent")
SURE = {"CEJ_labial": 0.95, "CEJ_palatal": 0.92, "apex": 0.96}


def _truth(seed: int = 3):
    return apply_measurements(generate_phantom(seed).annotation)


def test_the_exact_annotation_with_confident_landmarks_passes():
    q = assess(_truth(), SURE, certainty=0.97)
    assert q.level == "ok" and q.reasons == [] and q.as_provenance() == {"level": "ok", "reasons": []}
    assert 5.0 < cej_width_mm(_truth()) < 8.0


def test_weak_evidence_asks_for_a_check_and_no_evidence_for_doubt_worst_first():
    ann = _truth()
    q = assess(ann, dict(SURE, apex=0.55), certainty=0.97)
    assert q.level == "check" and q.reasons == ["apex confidence 0.55"]
    q = assess(ann, dict(SURE, apex=0.55, CEJ_labial=0.12), certainty=0.85)
    assert q.level == "doubtful"
    assert q.reasons == ["CEJ labial is a guess (confidence 0.12)", "apex confidence 0.55",
                         "segmentation certainty 0.85"]
    assert q.as_provenance() == {"level": "doubtful", "reasons": q.reasons}


def test_missing_enamel_and_impossible_anatomy_are_doubtful():
    ann = _truth()
    ann.regions["enamel"] = EMPTY
    q = assess(apply_measurements(ann), SURE, certainty=0.97)
    assert q.level == "doubtful" and "no enamel found" in q.reasons
    # the same case read with three times its pixel spacing: a 40+ mm root
    big = _truth()
    big.pixel_spacing_mm = tuple(3 * s for s in big.pixel_spacing_mm)
    q = assess(apply_measurements(big), SURE, certainty=0.97, spacing_assumed=True)
    assert q.level == "doubtful"
    assert any(r.startswith("root length") and "outside 7-25 mm" in r and "spacing was assumed" in r
               for r in q.reasons)


def test_segmentation_certainty_is_the_mean_winning_probability_over_the_structures():
    probs = np.zeros((3, 4, 4), np.float32)
    probs[0] = 1.0
    probs[:, 0, :2] = np.array([0.1, 0.9, 0.0])[:, None]     # two sure PAB pixels
    probs[:, 1, :2] = np.array([0.3, 0.0, 0.7])[:, None]     # two less sure enamel pixels
    assert segmentation_certainty(probs) == pytest.approx(0.8)
    probs[1:] = 0.0
    probs[0] = 1.0
    assert segmentation_certainty(probs) is None


@needs_model
def test_a_phantom_passes_but_twice_its_spacing_or_no_tooth_at_all_is_flagged():
    predictor = Predictor()
    case = generate_phantom(0, "demo")
    sp = case.annotation.pixel_spacing_mm
    good = predictor.predict_image(case.image, spacing=sp)
    assert good.quality.level == "ok", good.quality.reasons
    assert good.annotation.provenance["quality"] == {"level": "ok", "reasons": []}

    # a PNG carries no spacing: the one the user gives is used, here twice the true one
    wrong = predictor.predict_image(case.image.with_spacing(None), spacing=(2 * sp[0], 2 * sp[1]))
    assert wrong.quality.level == "doubtful"
    assert any(r.startswith(("root length", "tooth width")) for r in wrong.quality.reasons)

    rng = np.random.default_rng(0)
    noise = SliceImage(rng.normal(100.0, 20.0, (256, 256)).astype(np.float32), (0.2, 0.2), "")
    flat = SliceImage(np.full((256, 256), 50.0, np.float32), (0.2, 0.2), "")
    for image in (noise, flat):
        assert predictor.predict_image(image).quality.level == "doubtful"


@needs_model
def test_predict_command_writes_the_check_and_says_it(tmp_path, capsys):
    import cv2

    img = tmp_path / "no_tooth.png"
    cv2.imwrite(str(img), np.random.default_rng(1).integers(0, 255, (200, 200), dtype=np.uint8))
    assert predict_cli([img], tmp_path / "out", spacing=(0.2, 0.2)) == 0
    line = capsys.readouterr().out
    assert "DOUBTFUL:" in line
    saved = json.loads((tmp_path / "out" / "no_tooth.dentseg.json").read_text())
    assert saved["provenance"]["quality"]["level"] == "doubtful"
    assert load_annotation(tmp_path / "out" / "no_tooth.dentseg.json").provenance["quality"]["reasons"]
