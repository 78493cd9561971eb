"""Active learning without Qt: model versions and folder choices (model_versions), the
"annotate next" ranking (need_ranking) and the old-vs-new comparison table (version_compare)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dentseg_gui.core.annotation import annotation_path_for, load_annotation, save_annotation
from dentseg_gui.core.errors import ModelError
from dentseg_gui.core.phantom import generate_phantom, write_phantom_set
from dentseg_gui.model.model_file import card_path_for
from dentseg_gui.model.model_versions import (FOLDERS_NAME, RECORD_NAME, ModelRegistry, ModelVersionError,
                                              describe_training_cases)
from dentseg_gui.resources import bundled_model_card_path, bundled_model_path

needs_model = pytest.mark.skipif(not bundled_model_path().is_file(), reason="bundled model absent")


def trained_copy(dest: Path, name: str = "mine") -> Path:
    """A verified model set (the bundled weights and card) standing for a fine-tuned model."""
    dest.mkdir(parents=True, exist_ok=True)
    pt = dest / f"{name}.pt"
    shutil.copyfile(bundled_model_path(), pt)
    card = json.loads(bundled_model_card_path().read_text())
    card.pop("onnx", None)
    card["weights_file"] = pt.name
    card_path_for(pt).write_text(json.dumps(card))
    return pt


# --------------------------------------------------------------------------- registry


@needs_model
def test_a_version_keeps_its_model_cases_settings_and_parent_and_loads_verified(tmp_path):
    cases = write_phantom_set(tmp_path / "site", 2, seed=5)
    reg = ModelRegistry(tmp_path / "user")
    described = describe_training_cases(cases)
    assert described[0]["annotation_sha256"] and described[0]["image"] == str(cases[0].resolve())
    v = reg.add_version(trained_copy(tmp_path / "models"), described, parent={"kind": "bundled", "name": "LU-Net"},
                        settings={"epochs": 1}, folder=tmp_path / "site", name="site A")
    versions, broken = reg.list_versions()
    assert [x.id for x in versions] == [v.id] and broken == {}
    got = reg.get(v.id)
    assert got.training_images() == [str(c.resolve()) for c in cases]
    assert got.parent["kind"] == "bundled" and got.settings["epochs"] == 1
    assert got.folder == str((tmp_path / "site").resolve()) and got.created
    assert reg.verified_model_path(v.id) == v.dir / "mine.pt"
    # the weights load through the normal verified path (weights only, card checked)
    from dentseg_gui.model.weights import load_model
    _, card, sha = load_model(reg.verified_model_path(v.id), require_card=True)
    assert sha == got.sha256
    # the evaluation is recorded atomically in the version
    reg.record_evaluation(v.id, {"n_compared": 3, "new": {"summary": {"dice_pab": 0.95, "n_cases": 3}}})
    assert reg.get(v.id).evaluation["n_compared"] == 3 and "Dice PAB 0.950 on 3" in reg.get(v.id).line()
    assert not any(p.name.endswith(".tmp") for p in reg.dir.iterdir())


@needs_model
def test_a_damaged_version_is_refused_with_one_clear_line_and_listing_skips_it(tmp_path):
    reg = ModelRegistry(tmp_path / "user")
    good = reg.add_version(trained_copy(tmp_path / "m1", "a"), [], name="good")
    bad = reg.add_version(trained_copy(tmp_path / "m2", "b"), [], name="bad")
    with open(bad.model_path, "r+b") as f:            # a byte of the weights changed on disk
        f.seek(2000)
        f.write(b"\x00\x01\x02")
    with pytest.raises(ModelVersionError, match=rf"model version {bad.id} .* cannot be used: .*corrupt"):
        reg.verified_model_path(bad.id)
    empty = reg.dir / "20990101-000000-empty"
    empty.mkdir()
    (reg.dir / "20990101-000001-junk").mkdir()
    (reg.dir / "20990101-000001-junk" / RECORD_NAME).write_text("{not json")
    versions, broken = reg.list_versions()
    assert {v.id for v in versions} == {good.id, bad.id}
    assert set(broken) == {"20990101-000000-empty", "20990101-000001-junk"}
    assert "has no version.json" in broken["20990101-000000-empty"] and "delete the folder" in broken[
        "20990101-000000-empty"]
    assert "cannot be read" in broken["20990101-000001-junk"]
    with pytest.raises(ModelVersionError, match="not found"):
        reg.get("nope")


def test_a_model_without_a_card_cannot_become_a_version(tmp_path):
    reg = ModelRegistry(tmp_path / "user")
    pt = tmp_path / "x.pt"
    pt.write_bytes(b"not a model")
    with pytest.raises(ModelError):
        reg.add_version(pt, [])
    assert not reg.dir.exists() or not any(reg.dir.iterdir())


@needs_model
def test_a_folder_choice_applies_to_that_folder_only_and_persists(tmp_path):
    reg = ModelRegistry(tmp_path / "user")
    v = reg.add_version(trained_copy(tmp_path / "m"), [], name="v1")
    a, b = tmp_path / "siteA", tmp_path / "siteB"
    a.mkdir(), b.mkdir()
    assert reg.model_for_folder(a) == (False, None)
    reg.set_folder_version(a, v.id)
    again = ModelRegistry(tmp_path / "user")           # a new session reads the same file
    assert again.model_for_folder(a) == (True, str(v.model_path))
    assert again.model_for_folder(b) == (False, None)   # another folder is untouched
    assert again.folder_choice(a).version == v.id
    again.set_folder_model(a, None)                     # revert to the bundled model
    assert again.model_for_folder(a) == (True, None)
    again.set_folder_model(a, v.model_path)             # a version's file counts as the version
    assert again.folder_choice(a).version == v.id
    again.clear_folder_choice(a)
    assert again.model_for_folder(a) == (False, None)
    # a chosen version that was deleted is an error, never silently another model
    again.set_folder_version(b, v.id)
    shutil.rmtree(v.dir)
    with pytest.raises(ModelVersionError, match="not found"):
        again.model_for_folder(b)
    (reg.dir / FOLDERS_NAME).write_text("[]")
    with pytest.raises(ModelVersionError, match="folder-models"):
        again.folder_choice(a)


@needs_model
def test_a_version_can_be_renamed_and_deleting_it_sends_its_folders_to_the_default(tmp_path):
    reg = ModelRegistry(tmp_path / "user")
    v1 = reg.add_version(trained_copy(tmp_path / "m1", "a"), [], name="first")
    v2 = reg.add_version(trained_copy(tmp_path / "m2", "b"), [], name="second")
    a, b, c = (tmp_path / n for n in ("siteA", "siteB", "siteC"))
    for f in (a, b, c):
        f.mkdir()
    reg.set_folder_version(a, v1.id)
    reg.set_folder_version(b, v1.id)
    reg.set_folder_version(c, v2.id)
    assert reg.folders_using(v1.id) == sorted([str(a.resolve()), str(b.resolve())])
    # rename: same id, same folder, choices still resolve to it
    reg.rename_version(v1.id, "  clinic   A, 4 cases ")
    assert reg.get(v1.id).name == "clinic A, 4 cases" and reg.model_for_folder(a) == (True, str(v1.model_path))
    with pytest.raises(ModelVersionError, match="needs a name"):
        reg.rename_version(v1.id, "   ")
    assert reg.get(v1.id).name == "clinic A, 4 cases"
    # delete: the folders that used it go back to the app default, the other choice stays
    assert reg.delete_version(v1.id) == sorted([str(a.resolve()), str(b.resolve())])
    assert not v1.dir.exists() and [v.id for v in reg.list_versions()[0]] == [v2.id]
    assert reg.model_for_folder(a) == (False, None) and reg.model_for_folder(b) == (False, None)
    assert reg.model_for_folder(c) == (True, str(v2.model_path))
    assert not any(p.name.startswith(".") and p.is_dir() for p in reg.dir.iterdir())
    with pytest.raises(ModelVersionError, match="already deleted"):
        reg.delete_version(v1.id)
    with pytest.raises(ModelVersionError, match="not found"):
        reg.delete_version("../user")
    # a damaged version (no record) can be deleted too
    broken = reg.dir / "20990101-000000-empty"
    broken.mkdir()
    assert "20990101-000000-empty" in reg.list_versions()[1]
    assert reg.delete_version(broken.name) == [] and not broken.exists()


# --------------------------------------------------------------------------- ranking


def test_unannotated_means_no_file_or_only_model_output(tmp_path):
    from dentseg_gui.model.need_ranking import is_unannotated, need_reasons

    img = write_phantom_set(tmp_path, 1, seed=3)[0]
    ap = annotation_path_for(img)
    assert not is_unannotated(ap)                        # the phantom's exact annotation is human-like
    ann = load_annotation(ap)
    stamp = {"source": "model", "model": "LU-Net"}
    ann.provenance = {"regions": {n: dict(stamp) for n in ann.regions},
                      "landmarks": {n: dict(stamp) for n in ann.landmarks}}
    save_annotation(ann, ap)
    assert is_unannotated(ap)                            # unreviewed model output
    ap.unlink()
    assert is_unannotated(ap)
    assert need_reasons({"disagreement": 0.9, "uncertainty": 0.1, "weak_landmark": 0.5, "verdict": 1.0},
                        "doubtful", "apex") == ["flagged doubtful", "views disagree", "weak apex"]
    assert need_reasons({"disagreement": 0.0, "uncertainty": 0.0, "weak_landmark": 0.0, "verdict": 0.0}) == []


@needs_model
def test_hard_cases_rank_above_clean_ones_and_scores_are_cached(tmp_path, monkeypatch):
    """Two clean standard phantoms, a site2-style one (another scanner's texture) and a standard
    one under heavy noise: the two hard ones come first; ranking again costs no network pass."""
    import cv2

    from dentseg_gui.model import need_ranking
    from dentseg_gui.model.need_ranking import NeedCache, rank_images
    from dentseg_gui.model.predict import Predictor

    paths = []
    for name, seed, style in (("clean_a", 100, "standard"), ("clean_b", 102, "standard"),
                              ("other_site", 100, "site2"), ("noisy", 101, "standard")):
        case = generate_phantom(seed, style)
        px = case.image.normalized() * 255.0
        if name == "noisy":
            px = px + np.random.default_rng(1).normal(0, 140, px.shape)   # bundled v3: 90 looks typical
        p = tmp_path / f"{name}.png"
        cv2.imwrite(str(p), np.clip(px, 0, 255).astype(np.uint8))
        paths.append(p)
    spacing = {p.name: generate_phantom(s, st).image.spacing_mm for p, (s, st) in
               zip(paths, ((100, "standard"), (102, "standard"), (100, "site2"), (101, "standard")))}
    pred = Predictor(None)
    cache = NeedCache(tmp_path / "cache.json")
    seen = []
    ranked = rank_images(pred, paths, cache, spacing_for=lambda p: spacing[p.name],
                         progress=lambda d, t, n: seen.append(n))
    order = [r.image_path.stem for r in ranked]
    assert set(order[:2]) == {"other_site", "noisy"}, [(r.image_path.stem, r.score) for r in ranked]
    assert all(r.score is not None and 0.0 <= r.score <= 1.0 for r in ranked)
    assert ranked[0].reasons and ranked[-1].reason_text() in ("looks typical", ", ".join(ranked[-1].reasons))
    assert [n for n in seen if n] == [p.name for p in paths]
    calls = []
    monkeypatch.setattr(need_ranking, "score_case", lambda *a: calls.append(1) or {})
    again = rank_images(pred, paths, NeedCache(tmp_path / "cache.json"), spacing_for=lambda p: spacing[p.name])
    assert calls == [] and [r.image_path.stem for r in again] == order and all(r.cached for r in again)
    # a changed image is scored again; a case without a spacing is listed last with the reason
    cv2.imwrite(str(paths[0]), cv2.imread(str(paths[0]), cv2.IMREAD_GRAYSCALE)[:, ::-1])
    monkeypatch.setattr(need_ranking, "score_case", lambda *a: calls.append(1) or {"score": 0.5, "parts": {}})
    third = rank_images(pred, paths, NeedCache(tmp_path / "cache.json"),
                        spacing_for=lambda p: None if p.stem == "clean_b" else spacing[p.name])
    assert calls == [1] and third[-1].image_path.stem == "clean_b" and "pixel spacing" in third[-1].error


# --------------------------------------------------------------------------- comparison


@needs_model
def test_the_comparison_leaves_out_training_cases_and_says_when_none_are_left(tmp_path):
    from dentseg_gui.model.version_compare import compare_for_version, comparison_rows

    site = tmp_path / "site"
    cases = write_phantom_set(site, 4, seed=7300)
    ann = load_annotation(annotation_path_for(cases[3]))      # only a spacing: no truth to compare with
    ann.regions = {}
    ann.landmarks = {}
    save_annotation(ann, annotation_path_for(cases[3]))
    res = compare_for_version(None, bundled_model_path(), site, [str(c) for c in cases[:3]])
    assert res["n_compared"] == 0 and "No annotated case" in res["note"] and res["new"] is None
    assert [r[1:3] for r in comparison_rows(res)][0] == ("–", "–")
    res = compare_for_version(None, bundled_model_path(), site, [str(cases[0]), str(cases[1])])
    assert res["n_compared"] == 1 and res["excluded_training"] == ["case_7300", "case_7301"]
    assert res["excluded_incomplete"] == ["case_7303"] and res["excluded_unreviewed"] == []
    assert list(res["new"]["cases"]) == ["case_7302"] and "Only 1 case" in res["note"]
    rows = {r[0]: r for r in comparison_rows(res)}
    assert float(rows["Dice PAB"][2]) > 0.85 and rows["Dice PAB"][1] == rows["Dice PAB"][2]
    assert rows["Dice PAB"][3] is None and rows["Cases compared"][1:3] == ("1", "1")
    json.dumps(res)
