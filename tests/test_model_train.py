"""LU-Net training, augmentation, landmarks and inference on phantoms with known geometry.

Training tests use a small network and small crops (the loop is the same as the
bundled model's) so the file stays fast on a shared 2-core machine.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from dentseg_gui.core.annotation import LANDMARKS, load_annotation
from dentseg_gui.core.errors import DentsegError
from dentseg_gui.core.image_io import load_image
from dentseg_gui.core.phantom import generate_phantom, write_phantom_set
from dentseg_gui.model.augment import (BASIC_AUGMENT, NO_AUGMENT, ROBUST_AUGMENT, AugmentConfig,
                                       augment_intensity, crop_matrix, warp_case)
from dentseg_gui.model.dataset import CanonicalGrid, LoadingCancelled, load_cases, prepare_case
from dentseg_gui.model.inference import Segmenter
from dentseg_gui.model.landmarks import decode_heatmaps, reconcile_cej
from dentseg_gui.model.lunet import LUNet, PlainUNet
from dentseg_gui.model.train import TrainConfig, held_out_metrics, train, train_cli
from dentseg_gui.model.weights import load_model
from dentseg_gui.resources import bundled_model_path

TINY = dict(widths=(8, 16, 32), crop_size=64, batch_size=4, min_samples_per_epoch=8, progress_every=1,
            threads=1)  # one thread: tiny batches gain nothing from two, and lose much on a busy machine


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("phantoms")
    write_phantom_set(d, 5, seed=310)
    return d


@pytest.fixture(scope="module")
def trained(phantoms, tmp_path_factory):
    """A tiny model trained on the phantoms without augmentation (it must overfit them)."""
    out = tmp_path_factory.mktemp("model") / "tiny.pt"
    cfg = TrainConfig(epochs=6, lr=5e-3, augment=NO_AUGMENT, **TINY)
    steps: list[dict] = []
    result = train(phantoms, out, cfg, progress=steps.append)
    return out, result, steps


def test_training_lowers_the_loss_and_saves_the_best_model(trained):
    out, result, steps = trained
    losses = [d["train_loss"] for d in steps if d["kind"] == "epoch"]
    assert len(losses) == 6 and result.stop_reason == "completed"
    assert losses[-1] < 0.75 * losses[0], losses  # 12 steps: a clear drop, not noise
    assert result.n_train == 4 and result.n_val == 1
    epochs = [d for d in steps if d["kind"] == "epoch"]
    for key in ("epoch", "step", "train_loss", "val_loss", "val_dice_pab", "val_dice_enamel",
                "val_landmark_mm", "elapsed_s", "best"):
        assert key in epochs[-1]
    assert any(d["kind"] == "step" for d in steps)
    model, card, sha = load_model(out)
    assert card["training"]["best_epoch"] == result.best_epoch >= 1
    assert card["validation"]["val_dice_pab"] == pytest.approx(result.best_metrics["val_dice_pab"])
    assert card["arch_args"]["widths"] == [8, 16, 32] and card["canonical_spacing_mm"] == 0.2


def test_should_stop_ends_training_and_leaves_a_loadable_checkpoint(phantoms, tmp_path):
    seen: list[dict] = []

    def stop() -> bool:
        return sum(d["kind"] == "step" for d in seen) >= 3

    out = tmp_path / "stopped.pt"
    result = train(phantoms, out, TrainConfig(epochs=50, **TINY), progress=seen.append, should_stop=stop)
    assert result.stop_reason == "cancelled"
    assert sum(d["kind"] == "step" for d in seen) == 3      # no step after the stop
    assert result.epochs_run < 50
    model, card, _ = load_model(out)
    assert isinstance(model, LUNet) and card["training"]["best_epoch"] == result.best_epoch


def test_fine_tuning_changes_the_weights_and_keeps_or_adapts_batchnorm_statistics(trained, phantoms, tmp_path):
    init, _, _ = trained
    before, _, init_sha = load_model(init)
    sb = before.state_dict()
    # the default: the statistics stay exactly as they were (tiny batches cannot corrupt them)
    out = tmp_path / "tuned.pt"
    result = train(phantoms, out, TrainConfig(epochs=1, init=str(init), fit_quality=False, **TINY))
    after, card, _ = load_model(out)
    assert card["training"]["fine_tuned_from"]["sha256"] == init_sha
    assert result.best_epoch == 1
    sa = after.state_dict()
    assert not torch.equal(sb["encoders.0.0.weight"], sa["encoders.0.0.weight"])
    assert torch.equal(sb["encoders.0.1.running_mean"], sa["encoders.0.1.running_mean"])
    settings = card["training"]["settings"]
    assert settings["bn"] == "frozen" and settings["validation"] == "training cases"
    assert result.n_val == 0 and result.n_train == 5        # nothing held out of 5 cases
    # 'adapt': re-estimated on the new cases before training, then frozen
    adapted = tmp_path / "adapted.pt"
    train(phantoms, adapted, TrainConfig(epochs=1, init=str(init), bn="adapt", fit_quality=False, **TINY))
    sc = load_model(adapted)[0].state_dict()
    assert not torch.allclose(sb["encoders.0.1.running_mean"], sc["encoders.0.1.running_mean"])


def test_same_seed_same_first_step_loss(phantoms, tmp_path):
    def first_loss(seed: int) -> float:
        steps: list[dict] = []
        train(phantoms, tmp_path / f"s{seed}.pt", TrainConfig(epochs=1, seed=seed, **TINY),
              progress=steps.append, should_stop=lambda: any(d["kind"] == "step" for d in steps))
        return [d for d in steps if d["kind"] == "step"][0]["train_loss"]

    a, b, c = first_loss(3), first_loss(3), first_loss(4)
    assert a == b
    assert a != c


def test_stop_while_reading_cases_ends_before_training_and_writes_no_model(phantoms, tmp_path):
    seen: list[dict] = []

    def stop() -> bool:
        return sum(d["kind"] == "loading" for d in seen) >= 2

    out = tmp_path / "never.pt"
    with pytest.raises(LoadingCancelled, match="after 2 of 5"):
        train(phantoms, out, TrainConfig(epochs=1, **TINY), progress=seen.append, should_stop=stop)
    assert [d["done"] for d in seen] == [1, 2] and not out.exists()


def test_train_cli_reports_a_folder_without_annotations(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DentsegError, match="no annotated images found in"):
        train_cli(tmp_path / "empty", tmp_path / "m.pt", epochs=1)
    with pytest.raises(DentsegError, match="does not exist"):
        train_cli(tmp_path / "missing", tmp_path / "m.pt", epochs=1)


# --------------------------------------------------------------------------- training in a child process


class _DiesOnArrival:
    """A config that kills the training process while it is being unpickled (exit code 3)."""

    def __reduce__(self):
        import os
        return (os._exit, (3,))


class _Stalls:
    """A config whose unpickling keeps the training process busy for a minute."""

    def __reduce__(self):
        import time
        return (time.sleep, (60,))


def test_training_process_relays_progress_and_returns_the_result(phantoms, tmp_path):
    from dentseg_gui.model.train_process import TrainingProcess

    out = tmp_path / "child.pt"
    seen: list[dict] = []
    result = TrainingProcess(phantoms, out, TrainConfig(epochs=1, **TINY)).run(progress=seen.append)
    assert result.stop_reason == "completed" and result.epochs_run == 1
    assert Path(result.out_path) == out and out.is_file()
    assert {d.get("kind") for d in seen} >= {"step", "epoch"}
    assert seen[-1]["kind"] == "epoch" and 0.0 <= seen[-1]["val_dice_pab"] <= 1.0
    load_model(out)                                       # a valid, verified model file


def test_training_process_errors_and_crashes_are_messages(phantoms, tmp_path):
    from dentseg_gui.model.train_process import TrainingProcess, TrainingProcessError

    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingProcessError, match="no annotated images found in"):
        TrainingProcess(tmp_path / "empty", tmp_path / "m.pt", TrainConfig(epochs=1)).run()
    proc = TrainingProcess(tmp_path / "empty", tmp_path / "m.pt", _DiesOnArrival())
    with pytest.raises(TrainingProcessError, match=r"ended unexpectedly \(exit code 3\)"):
        proc.run()
    assert proc.exitcode == 3 and not (tmp_path / "m.pt").exists()
    # Cancel before the child has read a case: it returns at once, with no model and no kill
    early = TrainingProcess(phantoms, tmp_path / "m.pt", TrainConfig(epochs=1), kill_after_s=60.0)
    t0 = time.monotonic()
    assert early.run(should_stop=lambda: True) is None
    assert not early.terminated and early.exitcode == 0 and time.monotonic() - t0 < 30
    assert not (tmp_path / "m.pt").exists()
    # Cancel while the child cannot listen (busy for a minute): ended after kill_after_s
    stalled = TrainingProcess(tmp_path / "empty", tmp_path / "m.pt", _Stalls(), kill_after_s=1.0)
    t0 = time.monotonic()
    assert stalled.run(should_stop=lambda: True) is None
    assert stalled.terminated and stalled.exitcode != 0 and time.monotonic() - t0 < 20


# --------------------------------------------------------------------------- data + augmentation


def test_prepared_case_matches_the_annotation_on_the_canonical_grid(phantoms):
    cases, warnings = load_cases(phantoms)
    assert len(cases) == 5 and warnings == []
    for case in cases:
        assert case.image.shape == case.labels.shape and case.landmark_present.all()
        assert set(np.unique(case.labels)) == {0, 1, 2}
    # PAB area in mm2 survives the resampling (0.2 mm pixels)
    ann = load_annotation(sorted(phantoms.glob("*.dentseg.json"))[0])
    sr, sc = ann.pixel_spacing_mm
    area_mm2 = ann.region("PAB").area * sr * sc
    assert (cases[0].labels == 1).sum() * 0.04 == pytest.approx(area_mm2, rel=0.04)


def test_horizontal_flip_keeps_anatomical_landmark_names():
    case = generate_phantom(77)
    prepared = prepare_case(case.image, case.annotation)
    size = 160
    plain = warp_case(prepared, crop_matrix(prepared.center, size), size)
    flipped = warp_case(prepared, crop_matrix(prepared.center, size, flip=True), size)
    np.testing.assert_allclose(flipped[0], plain[0][:, ::-1], atol=1e-5)
    np.testing.assert_array_equal(flipped[1], plain[1][:, ::-1])
    il, ip = LANDMARKS.index("CEJ_labial"), LANDMARKS.index("CEJ_palatal")
    for img, lab, pts in (plain, flipped):
        pab_x = np.nonzero(lab == 1)[1].mean()
        # the palatal CEJ stays on the PAB's side, the labial one on the other side
        assert abs(pts[ip, 0] - pab_x) < abs(pts[il, 0] - pab_x)
    np.testing.assert_allclose(flipped[2][:, 0], size - 1 - plain[2][:, 0], atol=1e-4)
    np.testing.assert_allclose(flipped[2][:, 1], plain[2][:, 1], atol=1e-4)


def test_basic_augmentation_replays_the_random_stream_of_the_bundled_models_first_stage():
    # the robustness operations are off in BASIC_AUGMENT and must not draw random numbers,
    # or stage 1 of the bundled recipe would no longer reproduce
    img = np.random.default_rng(1).random((64, 64)).astype(np.float32)
    off = AugmentConfig(lowres_factor=(2.0, 2.0), shading_amp=0.5, clip_frac=0.3)  # p = 0: still off
    r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
    np.testing.assert_array_equal(augment_intensity(img, r1, BASIC_AUGMENT), augment_intensity(img, r2, off))
    assert r1.random() == r2.random()


def test_robust_augmentation_operations_do_what_they_say():
    quiet = dict(gamma=(1.0, 1.0), contrast=(1.0, 1.0), brightness=0.0, noise_std=(0.0, 0.0), blur_p=0.0)
    yy, xx = np.mgrid[0:64, 0:64]
    checker = (((xx + yy) % 2) * 0.8 + 0.1).astype(np.float32)
    rng = np.random.default_rng(0)
    coarse = augment_intensity(checker, rng, AugmentConfig(lowres_p=1.0, lowres_factor=(2.0, 2.0), **quiet))
    assert coarse.std() < 0.1 * checker.std()          # one-pixel detail is gone, as on a coarser scan
    ramp = (xx / 63.0).astype(np.float32)
    clipped = augment_intensity(ramp, rng, AugmentConfig(clip_p=1.0, clip_frac=0.3, **quiet))
    saturated = lambda a: ((a == 0.0) | (a == 1.0)).mean()  # noqa: E731
    assert clipped.min() == 0.0 and clipped.max() == 1.0 and saturated(clipped) > 2 * saturated(ramp)
    flat = np.full((64, 64), 0.5, np.float32)
    shaded = augment_intensity(flat, rng, AugmentConfig(shading_p=1.0, shading_amp=0.15, **quiet))
    assert 0.0 < np.abs(shaded - 0.5).max() <= 0.2 and np.abs(np.diff(shaded, axis=1)).max() < 0.02  # smooth
    for seed in range(20):  # every robust sample stays a valid [0, 1] image
        out = augment_intensity(checker, np.random.default_rng(seed), ROBUST_AUGMENT)
        assert out.dtype == np.float32 and 0.0 <= out.min() and out.max() <= 1.0


def test_train_cli_rejects_an_unknown_augmentation(tmp_path):
    with pytest.raises(DentsegError, match="unknown augmentation 'wild'"):
        train_cli(tmp_path, tmp_path / "m.pt", epochs=1, augment="wild")


def test_canonical_grid_round_trip_is_exact_on_a_ramp():
    h, w = 120, 90
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = 0.5 * xx + 2.0 * yy
    grid = CanonicalGrid(0.6, 0.75, 3, 4, 40, 60)
    uv = np.stack(np.meshgrid(np.arange(40), np.arange(60)), -1)
    xy = grid.to_original(uv)
    inner = (xy[..., 0] > 4) & (xy[..., 0] < w - 5) & (xy[..., 1] > 4) & (xy[..., 1] < h - 5)
    sampled = grid.sample(ramp)
    np.testing.assert_allclose(sampled[inner], (0.5 * xy[..., 0] + 2.0 * xy[..., 1])[inner], atol=1e-3)
    roi = grid.original_roi((h, w))
    back = grid.restore(sampled[None], (h, w), roi, fill=np.array([0.0]))[0]
    x0, y0, x1, y1 = roi
    np.testing.assert_allclose(back[y0 + 3:y1 - 3, x0 + 3:x1 - 3], ramp[y0 + 3:y1 - 3, x0 + 3:x1 - 3], atol=1e-3)


def test_restoring_in_log_space_keeps_a_thin_class_where_the_logits_put_it():
    """Logits linear in position (a 5-pixel enamel stripe) on a grid 2.5x coarser than the
    image: interpolating log-probabilities gives back the fine arg-max; interpolating
    probabilities widens the thin class (what the calibration used to trim)."""
    def softmax(z):
        e = np.exp(z - z.max(0, keepdims=True))
        return e / e.sum(0, keepdims=True)

    def logits(x, y):  # background, PAB, enamel
        return np.stack([np.zeros_like(x), 1.0 - 0.08 * (x - 20.0) + 0.01 * y,
                         3.0 - 1.2 * np.abs(x - 40.3 - 0.03 * y)])

    h, w = 60, 80
    grid = CanonicalGrid(0.4, 0.4, 0, 0, 32, 24)
    uv = np.stack(np.meshgrid(np.arange(grid.width), np.arange(grid.height)), -1).astype(float)
    xy = grid.to_original(uv)
    probs_g = softmax(logits(xy[..., 0], xy[..., 1])).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    truth = logits(xx, yy).argmax(0)
    roi = grid.original_roi((h, w))
    x0, y0, x1, y1 = roi
    inner = (slice(y0 + 3, y1 - 3), slice(x0 + 3, x1 - 3))
    fill = np.array([1.0, 0.0, 0.0])
    linear = grid.restore(probs_g, (h, w), roi, fill)
    logs = grid.restore(probs_g, (h, w), roi, fill, log_space=True)
    np.testing.assert_allclose(logs[:, y0:y1, x0:x1].sum(0), 1.0, atol=1e-5)
    wrong_linear = int((linear.argmax(0)[inner] != truth[inner]).sum())
    wrong_log = int((logs.argmax(0)[inner] != truth[inner]).sum())
    assert wrong_log <= 3 and wrong_linear >= 5 * max(wrong_log, 1)
    n_true = int((truth[inner] == 2).sum())
    assert abs(int((logs.argmax(0)[inner] == 2).sum()) - n_true) <= 0.01 * n_true
    assert int((linear.argmax(0)[inner] == 2).sum()) > 1.03 * n_true


# --------------------------------------------------------------------------- landmarks


def test_heatmap_decoding_is_sub_pixel():
    ys, xs = np.mgrid[0:48, 0:64]
    truth = [(10.3, 20.7), (40.8, 5.25), (60.0, 44.5)]
    logits = np.stack([-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 1.5 ** 2) for x, y in truth])
    pts, conf = decode_heatmaps(logits)
    np.testing.assert_allclose(pts, truth, atol=0.01)
    assert (conf > 0.9).all()
    flat = np.zeros((1, 48, 64))
    assert decode_heatmaps(flat)[1][0] < 0.05


def test_cej_far_from_the_enamel_end_is_replaced():
    enamel = np.zeros((80, 80), np.float32)
    enamel[40:70, 20:26] = 1  # labial wall of the cap (left)
    enamel[40:70, 54:60] = 1  # palatal wall (right)
    enamel[64:72, 20:60] = 1  # incisal part
    pab = np.zeros_like(enamel)
    pab[10:35, 62:72] = 1     # PAB on the right = palatal side
    apex = (40.0, 2.0)
    good = np.array([[23.0, 40.0], [57.0, 40.0], apex])
    pts, src = reconcile_cej(good, np.ones(3), enamel, pab, spacing_mm=0.2)
    assert src == {"CEJ_labial": "heatmap", "CEJ_palatal": "heatmap", "apex": "heatmap"}
    bad = np.array([[23.0, 52.0], [57.0, 40.0], apex])  # labial CEJ 2.4 mm too low, heatmap unsure
    pts, src = reconcile_cej(bad, np.array([0.5, 0.9, 0.9]), enamel, pab, spacing_mm=0.2)
    assert src["CEJ_labial"] == "enamel_end" and src["CEJ_palatal"] == "heatmap"
    np.testing.assert_allclose(pts[0], [22.5, 40.0], atol=0.6)
    # a heatmap sure of itself is kept however far the cap ends (a streaked cap can end mm short)
    pts, src = reconcile_cej(bad, np.array([0.9, 0.9, 0.9]), enamel, pab, spacing_mm=0.2)
    assert src["CEJ_labial"] == "heatmap"
    np.testing.assert_allclose(pts[0], bad[0])
    # an unsure one is replaced even when near
    pts, src = reconcile_cej(good, np.array([0.2, 0.9, 0.9]), enamel, pab, spacing_mm=0.2)
    assert src["CEJ_labial"] == "enamel_end"


# --------------------------------------------------------------------------- inference


def test_segmenter_restores_to_the_original_grid(trained):
    out, _, _ = trained
    seg = Segmenter.load(out)
    case = generate_phantom(901, "shifted")
    res = seg.segment(case.image, spacing=case.annotation.pixel_spacing_mm)
    h, w = case.image.pixels.shape
    assert res.probs.shape == (3, h, w) and res.probs.dtype == np.float32
    np.testing.assert_allclose(res.probs.sum(axis=0), 1.0, atol=1e-4)
    assert res.spacing_used == case.annotation.pixel_spacing_mm and not res.spacing_assumed
    x0, y0, x1, y1 = res.roi
    assert 0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h
    assert set(res.landmarks) == set(LANDMARKS) == set(res.landmark_source)
    assert all(0.0 <= c <= 1.0 for c in res.landmark_confidence.values())
    # no spacing anywhere -> assumed default, flagged
    bare = dataclasses.replace(case.image, spacing_mm=None)
    assert seg.segment(bare).spacing_assumed


def test_second_view_window_covers_the_region_of_interest_half_a_pixel_shifted(trained):
    seg = Segmenter.load(trained[0])
    grid = CanonicalGrid(0.77, 0.6, 0, 0, 304, 240)
    roi = (37, 52, 201, 333)
    win = seg._shifted_window(grid, roi)
    assert (win.u0 - grid.u0) % 1 == 0.5 and (win.v0 - grid.v0) % 1 == 0.5
    assert win.width % seg._multiple == 0 and win.height % seg._multiple == 0
    x0, y0, x1, y1 = win.original_roi((10_000, 10_000))
    assert x0 <= roi[0] and y0 <= roi[1] and x1 >= roi[2] and y1 >= roi[3]
    assert win.width * win.height < grid.width * grid.height   # smaller than the whole slice


def test_calibration_weights_from_the_card_move_the_class_boundary(trained, tmp_path):
    import shutil

    from dentseg_gui.model.calibration import record_calibration
    from dentseg_gui.model.class_weights import apply_class_weights
    from dentseg_gui.model.weights import card_path_for, read_card

    p = np.array([[[0.5, 0.2]], [[0.1, 0.3]], [[0.4, 0.5]]], np.float32)   # (3, 1, 2)
    q = apply_class_weights(p, np.array([1.0, 1.0, 0.5]))
    np.testing.assert_allclose(q.sum(axis=0), 1.0, rtol=1e-6)
    assert np.argmax(p, 0).tolist() == [[0, 2]] and np.argmax(q, 0).tolist() == [[0, 1]]

    model = tmp_path / "m.pt"
    shutil.copy(trained[0], model)
    shutil.copy(card_path_for(trained[0]), card_path_for(model))
    entry = record_calibration(model, n=2, seed=8000)
    assert read_card(model)["calibration"] == entry and len(entry["class_weights"]) == 3
    assert sum(entry["dice_after"].values()) >= sum(entry["dice_before"].values())   # best of a grid holding 1, 1
    seg = Segmenter.load(model)
    np.testing.assert_allclose(seg.class_weights, entry["class_weights"])
    case = generate_phantom(8000)
    calibrated = seg.segment(case.image, spacing=case.annotation.pixel_spacing_mm).probs
    seg.class_weights = None
    raw = seg.segment(case.image, spacing=case.annotation.pixel_spacing_mm).probs
    np.testing.assert_allclose(calibrated, apply_class_weights(raw, np.array(entry["class_weights"])), atol=1e-5)


def test_segmenter_survives_a_large_radiograph(trained, real_data):
    out, _, _ = trained
    image = load_image(real_data / "cephalogram" / "B1893L12.jpg")
    res = Segmenter.load(out).segment(image)
    assert res.probs.shape == (3, image.height, image.width) and res.spacing_assumed
    assert np.isfinite(res.probs[:, ::97, ::97]).all()


@pytest.mark.skipif(not bundled_model_path().is_file(),
                    reason="resources/lunet.pt is not built yet (see docs/model.md for the command)")
def test_bundled_model_segments_unseen_phantoms(tmp_path):
    # seeds far from the training (1000+) and held-out (5000+) sets
    write_phantom_set(tmp_path, 2, seed=90001)
    m = held_out_metrics(None, tmp_path)
    # held-out means are 0.966 / 0.948 / 0.13 mm (model card); these floors leave room for one
    # hard case without letting a broken model through
    assert m["n_cases"] == 2
    assert m["dice_pab_min"] > 0.9 and m["dice_enamel_min"] > 0.9, m
    assert m["landmark_max_mm"] < 0.8, m


def test_plain_unet_trains_with_the_same_loop(phantoms, tmp_path):
    out = tmp_path / "plain.pt"
    train(phantoms, out, TrainConfig(epochs=1, arch="PlainUNet", **TINY))
    model, card, _ = load_model(out)
    assert isinstance(model, PlainUNet) and card["architecture"] == "PlainUNet"


def test_training_ends_with_an_onnx_export_that_matches_the_weights(trained):
    from dentseg_gui.model.model_file import onnx_path_for, resolve_model_set

    out, _, _ = trained
    model_set = resolve_model_set(out)
    assert model_set.onnx_path == onnx_path_for(out) and model_set.card["onnx"]["max_abs_diff_vs_torch"] < 1e-4
    seg = Segmenter.load(out, cache=False)
    assert seg.engine.kind == "onnxruntime"
    ref = Segmenter.load(out, engine="torch", cache=False)
    case = generate_phantom(902, "standard")
    a = seg.segment(case.image, spacing=case.annotation.pixel_spacing_mm)
    b = ref.segment(case.image, spacing=case.annotation.pixel_spacing_mm)
    assert np.abs(a.probs - b.probs).max() < 1e-3


def test_training_stops_with_a_clear_error_when_the_loss_becomes_nan(phantoms, tmp_path, monkeypatch):
    import dentseg_gui.model.train as train_mod

    real = train_mod.compute_loss
    calls = [0]

    def poisoned(*a, **k):
        loss, parts = real(*a, **k)
        if torch.is_grad_enabled():        # training steps, not validation
            calls[0] += 1
            if calls[0] >= 3:
                loss = loss * float("nan")
        return loss, parts

    monkeypatch.setattr(train_mod, "compute_loss", poisoned)
    with pytest.raises(DentsegError, match=r"training stopped: the loss at step 3 .* became NaN or infinite"):
        train(phantoms, tmp_path / "nan.pt", TrainConfig(epochs=3, **TINY))
    load_model(tmp_path / "nan.pt")         # the epoch-1 checkpoint is kept and loads
