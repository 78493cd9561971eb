"""Model files as one unit: kills during a commit, bad and crafted files, unverified models.

Every refusal is one ModelError line naming the file; nothing in a refused file runs.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from dentseg_gui.core.errors import ModelError
from dentseg_gui.core.phantom import generate_phantom, write_phantom_set
from dentseg_gui.model import model_file
from dentseg_gui.model.inference import Segmenter
from dentseg_gui.model.lunet import LUNet
from dentseg_gui.model.model_file import (card_path_for, inspect_model_file, onnx_path_for, pending_path_for,
                                          read_header)
from dentseg_gui.model.predict import Predictor, predict_cli
from dentseg_gui.model.export_onnx import save_model_with_onnx
from dentseg_gui.model.weights import FILE_FORMAT, FILE_VERSION, load_model, save_model

SMALL = (8, 16)


def _model(seed: int) -> LUNet:
    torch.manual_seed(seed)
    return LUNet(widths=SMALL).eval()


def _out(model: LUNet) -> torch.Tensor:
    torch.manual_seed(99)
    with torch.no_grad():
        return model(torch.rand(1, 1, 16, 16))[0]


class _Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (BaseException: no handler catches it)."""


@pytest.mark.parametrize("kill_at", range(1, 6))
def test_a_kill_at_any_step_of_a_commit_leaves_the_old_or_the_new_set(tmp_path, monkeypatch, kill_at):
    path = tmp_path / "m.pt"
    old, new = _model(1), _model(2)
    save_model_with_onnx(old, path, {"name": "old"})
    # count the file-system steps of the second commit: pending writes, the card, the renames
    steps = [0]
    real_replace = os.replace

    def replace(src, dst):
        steps[0] += 1
        if steps[0] == kill_at:
            raise _Killed()
        return real_replace(src, dst)

    monkeypatch.setattr(model_file.os, "replace", replace)
    monkeypatch.setattr("dentseg_gui.core.atomic.os.replace", replace)
    with pytest.raises(_Killed):
        save_model_with_onnx(new, path, {"name": "new"})
    monkeypatch.setattr(model_file.os, "replace", real_replace)
    monkeypatch.setattr("dentseg_gui.core.atomic.os.replace", real_replace)
    loaded, card, _ = load_model(path)                   # never "corrupt"
    want = {"old": old, "new": new}[card["name"]]
    assert torch.equal(_out(loaded), _out(want))
    seg = Segmenter.load(path, cache=False)              # the ONNX matches the same set
    assert seg.engine.kind == "onnxruntime" and seg.name == card["name"]
    x = np.random.default_rng(0).random((16, 16), dtype=np.float32)
    with torch.no_grad():
        ref = want(torch.from_numpy(x)[None, None])[0][0].numpy()
    assert np.abs(seg.engine.run(x)[0] - ref).max() < 1e-4
    # after the kill past the commit, the reader has finished the renames
    if card["name"] == "new":
        assert not pending_path_for(path).exists() and not pending_path_for(onnx_path_for(path)).exists()


def test_random_bytes_are_not_a_model_file(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    for fn in (inspect_model_file, load_model, lambda p: Segmenter.load(p, cache=False)):
        with pytest.raises(ModelError, match=r"^noise.pt is not a DentSeg model file"):
            fn(path)


class _Evil:
    marker: Path | None = None

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("kind", ["raw pickle", "torch zip"])
def test_a_pickle_with_code_is_refused_and_never_run(tmp_path, kind):
    marker = tmp_path / "code_ran"
    evil = _Evil()
    evil.marker = marker
    path = tmp_path / "evil.pt"
    if kind == "raw pickle":
        path.write_bytes(pickle.dumps({"format": FILE_FORMAT, "x": evil}))
    else:
        torch.save({"format": FILE_FORMAT, "version": FILE_VERSION, "arch": "LUNet",
                    "arch_args": {"widths": [8, 16]}, "state_dict": {}, "x": evil}, path)
    for fn in (inspect_model_file, load_model):
        with pytest.raises(ModelError, match=r"^evil.pt: refused: contains code"):
            fn(path)
    assert not marker.exists()


def test_a_crafted_card_asking_for_terabytes_is_refused_in_one_line(tmp_path):
    path = tmp_path / "m.pt"
    save_model(_model(0), path)
    card = json.loads(card_path_for(path).read_text())
    card["arch_args"]["widths"] = [8, 16, 1_000_000, 2_000_000]        # ~36 TB of weights
    card_path_for(path).write_text(json.dumps(card))
    with pytest.raises(ModelError) as e:
        inspect_model_file(path)
    assert "widths must be" in str(e.value) and "\n" not in str(e.value)


def test_a_weights_file_whose_header_asks_for_too_much_is_refused_without_a_card(tmp_path):
    path = tmp_path / "big.pt"
    torch.save({"format": FILE_FORMAT, "version": FILE_VERSION, "arch": "LUNet",
                "arch_args": {"widths": [512, 512, 512, 512, 512, 512]}, "state_dict": {}}, path)
    with pytest.raises(ModelError, match=r"asks for [\d,]+ parameters .*refused"):
        load_model(path)
    torch.save({"format": FILE_FORMAT, "version": FILE_VERSION, "arch": "LUNet",
                "arch_args": {"widths": [8, 16], "num_classes": 7}, "state_dict": {}}, path)
    with pytest.raises(ModelError, match="num_classes must be 3"):
        inspect_model_file(path)


def test_non_finite_models_are_refused(tmp_path):
    model = _model(0)
    with torch.no_grad():
        model.seg_head.weight[0, 0] = float("nan")
    with pytest.raises(ModelError, match="not finite"):
        save_model(model, tmp_path / "nan.pt")
    assert not (tmp_path / "nan.pt").exists()
    # a NaN weights file from elsewhere (no card): refused on load, by either engine
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save({"format": FILE_FORMAT, "version": FILE_VERSION, "arch": "LUNet",
                "arch_args": model.constructor_args(), "state_dict": sd}, tmp_path / "nan.pt")
    with pytest.raises(ModelError, match="nan.pt is not finite"):
        load_model(tmp_path / "nan.pt")
    with pytest.raises(ModelError, match="not finite"):
        Segmenter.load(tmp_path / "nan.pt", cache=False)


def test_a_model_without_a_card_is_unverified_everywhere(tmp_path, capsys):
    path = tmp_path / "nocard.pt"
    save_model_with_onnx(_model(0), path)
    card_path_for(path).unlink()
    info = inspect_model_file(path)
    assert not info.verified and "unverified model" in info.line()
    seg = Segmenter.load(path, cache=False)
    assert not seg.verified and seg.engine.kind == "torch"    # its ONNX has no card to check it by
    case = generate_phantom(3, "standard")
    res = Predictor(path).predict_image(case.image, spacing=case.annotation.pixel_spacing_mm)
    prov = res.annotation.provenance
    assert prov["model_verified"] is False and prov["model_note"].startswith("unverified model")
    write_phantom_set(tmp_path / "in", 1, seed=3)
    img = next((tmp_path / "in").glob("case_0003.*[!n]"))
    assert predict_cli([img], tmp_path / "out", model=path, spacing=case.annotation.pixel_spacing_mm) == 0
    out, err = capsys.readouterr()
    assert "UNVERIFIED MODEL" in out and "note: unverified model: nocard.pt has no model card" in err
    from dentseg_gui.core.report import measure_files
    import csv
    assert measure_files(sorted((tmp_path / "out").glob("*.dentseg.json")), csv_path=tmp_path / "r.csv") == 0
    row = next(csv.DictReader((tmp_path / "r.csv").open(encoding="utf-8")))
    assert "unverified model: nocard.pt has no model card" in row["model_check"]


def test_choosing_the_onnx_or_the_card_stands_for_the_model(tmp_path):
    path = tmp_path / "m.pt"
    save_model_with_onnx(_model(0), path, {"name": "mine"})
    for chosen in (path, onnx_path_for(path), card_path_for(path)):
        info = inspect_model_file(chosen)
        assert info.path == path and info.name == "mine" and info.verified and info.has_onnx
    assert read_header(path)["arch_args"]["widths"] == list(SMALL)
