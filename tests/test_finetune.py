"""Fine-tuning settings by case count, plausibility thresholds fitted per model and read from
its card, model evaluation on a folder, and the active-learning need score."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dentseg_gui.core.phantom import generate_phantom, write_phantom_set
from dentseg_gui.model.finetune import (LARGE_SET_CASES, SPLIT_FROM_CASES, finetune_plan, resolve_settings,
                                        steps_per_epoch)
from dentseg_gui.model.quality import (DEFAULT_THRESHOLDS, QualityThresholds, assess, thresholds_from_card)
from dentseg_gui.model.train import TrainConfig, train
from dentseg_gui.model.weights import card_path_for, load_model, read_card, write_card
from dentseg_gui.resources import bundled_model_path

needs_model = pytest.mark.skipif(not bundled_model_path().is_file(), reason="bundled model absent")
TINY = dict(widths=(8, 16, 32), crop_size=64, batch_size=4, min_samples_per_epoch=8, progress_every=1, threads=1)


# --------------------------------------------------------------------------- settings by case count


def test_the_plan_holds_nothing_out_of_small_sets_and_keeps_batchnorm_statistics():
    for n in range(1, SPLIT_FROM_CASES):
        plan = finetune_plan(n)
        assert plan.validation == "training cases" and plan.bn == "frozen" and plan.lr == 3e-4, n
    assert finetune_plan(SPLIT_FROM_CASES).validation == "split"


def test_only_a_single_case_is_held_near_the_initial_weights():
    # measured: the anchor helps one case and holds back what 2-4 cases of a very different site teach
    assert finetune_plan(1).anchor_weight > 0
    assert resolve_settings(TrainConfig(init="x"), 1, True).anchor_weight == finetune_plan(1).anchor_weight
    assert all(finetune_plan(n).anchor_weight == 0 for n in (2, 4, 9, 20, LARGE_SET_CASES + 1))
    assert resolve_settings(TrainConfig(init="x", anchor_weight=0.0), 1, True).anchor_weight == 0
    assert resolve_settings(TrainConfig(), 1, False).anchor_weight == 0       # fresh training: never


def test_the_step_budget_grows_with_the_cases_and_stays_small():
    steps = [finetune_plan(n).epochs * steps_per_epoch(n, resolve_settings(TrainConfig(init="x"), n, True), 8)
             for n in (1, 2, 4, 8, 20)]
    assert steps == sorted(steps) and steps[0] < steps[-1]
    assert steps[0] <= 40 and steps[2] <= 64       # ~45 s and ~90 s on a 2-core CPU (docs/benchmarks.md)


def test_large_sets_keep_the_older_fine_tuning_recipe_and_fresh_training_the_bundled_one():
    big = resolve_settings(TrainConfig(init="x"), LARGE_SET_CASES + 560, True)
    assert (big.epochs, big.lr, big.bn, big.validation, big.warmup_steps) == (8, 3e-4, "frozen", "split", 0)
    fresh = resolve_settings(TrainConfig(), 600, False)
    assert (fresh.epochs, fresh.lr, fresh.bn, fresh.validation, fresh.min_samples_per_epoch) == \
        (40, 2e-3, "train", "split", 64)
    # a learning rate of one's own on a large set warms up like fresh training
    assert resolve_settings(TrainConfig(init="x", finetune_lr=1e-3), 1200, True).warmup_steps == -1


def test_explicit_settings_win_over_the_plan():
    st = resolve_settings(TrainConfig(init="x", epochs=3, finetune_lr=5e-4, bn="frozen", validation="split",
                                      min_samples_per_epoch=16), 2, True)
    assert (st.epochs, st.lr, st.bn, st.validation, st.min_samples_per_epoch) == (3, 5e-4, "frozen", "split", 16)
    with pytest.raises(ValueError, match="bn must be"):
        resolve_settings(TrainConfig(init="x", bn="melt"), 2, True)


# --------------------------------------------------------------------------- thresholds in the card


def test_thresholds_come_from_the_card_when_valid_and_default_otherwise():
    entry = {"landmark_check": 0.5, "landmark_doubt": 0.2, "certainty_check": 0.85, "certainty_doubt": 0.75}
    assert thresholds_from_card({"quality_thresholds": entry}) == QualityThresholds(0.5, 0.2, 0.85, 0.75)
    for bad in (None, {}, {"quality_thresholds": "high"}, {"quality_thresholds": dict(entry, landmark_doubt=0.7)},
                {"quality_thresholds": dict(entry, certainty_check=1.5)},
                {"quality_thresholds": {"landmark_check": 0.5}}):
        assert thresholds_from_card(bad) == DEFAULT_THRESHOLDS


def test_assess_uses_the_thresholds_it_is_given():
    case = generate_phantom(3)
    conf = {"CEJ_labial": 0.6, "CEJ_palatal": 0.9, "apex": 0.9}
    assert assess(case.annotation, conf, 0.95).level == "check"            # 0.6 < 0.70 by default
    lax = QualityThresholds(landmark_check=0.5, landmark_doubt=0.2, certainty_check=0.9, certainty_doubt=0.8)
    assert assess(case.annotation, conf, 0.95, thresholds=lax).level == "ok"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("cases")
    write_phantom_set(d, 3, seed=410)
    out = tmp_path_factory.mktemp("m") / "tiny.pt"
    train(d, out, TrainConfig(epochs=1, **TINY))
    return d, out


def test_every_training_run_fits_thresholds_into_its_card(tiny_model):
    _, out = tiny_model
    entry = read_card(out)["quality_thresholds"]
    t = thresholds_from_card(read_card(out))
    assert 0.35 <= t.landmark_check <= 0.80 and t.landmark_doubt <= t.landmark_check
    assert 0.75 <= t.certainty_check <= 0.93 and t.certainty_doubt <= t.certainty_check
    assert entry["n_samples"] == 2 and "1 validation cases" in entry["fitted_on"]   # 3 cases: 1 held out
    load_model(out)                                   # writing the entry kept the card valid


def test_the_predictor_reads_its_models_thresholds(tiny_model, tmp_path):
    from dentseg_gui.model.predict import Predictor

    _, out = tiny_model
    card = read_card(out)
    case = generate_phantom(411)

    def landmark_reasons(entry) -> list[str]:
        m = tmp_path / f"m{len(list(tmp_path.iterdir()))}.pt"
        m.write_bytes(out.read_bytes())
        write_card(m, dict(card, quality_thresholds=entry))
        q = Predictor(m, compensation=False).predict_image(case.image).quality
        return [r for r in q.reasons if "confidence" in r or "guess" in r]

    strict = {"landmark_check": 0.99, "landmark_doubt": 0.99, "certainty_check": 0.5, "certainty_doubt": 0.5}
    lax = {"landmark_check": 0.0, "landmark_doubt": 0.0, "certainty_check": 0.0, "certainty_doubt": 0.0}
    assert len(landmark_reasons(strict)) == 3 and landmark_reasons(lax) == []


# --------------------------------------------------------------------------- evaluation + need


@needs_model
def test_evaluate_a_model_on_a_folder_leaving_out_training_cases(tmp_path):
    from dentseg_gui.model.model_eval import compare_models, evaluate_model_on_folder

    write_phantom_set(tmp_path, 3, seed=9100)
    ev = evaluate_model_on_folder(None, tmp_path, exclude=["case_9100.png"])
    s = ev.summary()
    assert s["n_cases"] == 2 and [c.name for c in ev.cases] == ["case_9101", "case_9102"]
    assert s["dice_pab"] > 0.9 and s["dice_enamel"] > 0.85 and s["landmark_mre_mm"] < 0.5
    assert s["thickness_err_mm"] < 0.3 and s["pab_height_err_mm"] is not None
    (tmp_path / "case_9102.dentseg.json").write_text("{broken")
    ev = evaluate_model_on_folder(None, tmp_path, exclude=["case_9100"])
    assert list(ev.errors) == ["case_9102"] and len(ev.cases) == 1
    same = compare_models(None, None, tmp_path, exclude=["case_9100", "case_9102"])
    assert same["old"]["summary"] == same["new"]["summary"] and not any(same["better"].values())
    json.dumps(same)                                     # plain data, for a report or the app


@needs_model
def test_the_need_score_is_low_on_a_typical_case_and_high_on_noise():
    from dentseg_gui.core.image import SliceImage
    from dentseg_gui.model.case_need import case_need, rank_cases
    from dentseg_gui.model.inference import Segmenter

    seg = Segmenter.load(None)
    case = generate_phantom(0, "demo")
    typical = case_need(seg, case.image, verdict="ok")
    noise = SliceImage(np.random.default_rng(0).random((256, 256)).astype(np.float32) * 255, (0.2, 0.2), "")
    junk = case_need(seg, noise, verdict="doubtful")
    assert 0.0 <= typical.score < 0.35 < 0.9 <= junk.score <= 1.0
    assert typical.disagreement < 0.1 and typical.landmark_spread_mm < 0.5
    ranked = rank_cases(seg, [("demo", case.image), ("noise", noise)], verdicts={"noise": "doubtful"})
    assert [name for name, _ in ranked] == ["noise", "demo"]
