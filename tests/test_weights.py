"""Model files: a good file loads; every kind of bad file is refused with a clear ModelError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dentseg_gui.core.errors import ModelError
from dentseg_gui.model.inference import Segmenter
from dentseg_gui.model.lunet import LUNet, PlainUNet
from dentseg_gui.model.weights import FILE_FORMAT, FILE_VERSION, card_path_for, load_model, save_model

SMALL = (8, 16)


def _payload(model: LUNet, **override) -> dict:
    d = {"format": FILE_FORMAT, "version": FILE_VERSION, "arch": model.arch_name,
         "arch_args": model.constructor_args(), "state_dict": model.state_dict()}
    d.update(override)
    return d


@pytest.fixture
def saved(tmp_path) -> tuple[LUNet, Path]:
    torch.manual_seed(0)
    model = LUNet(widths=SMALL).eval()
    path = tmp_path / "good.pt"
    save_model(model, path, {"name": "test model", "canonical_spacing_mm": 0.2})
    return model, path


def test_good_file_loads_with_its_card_and_gives_the_same_output(saved):
    model, path = saved
    card = json.loads(card_path_for(path).read_text())
    assert card_path_for(path).name == "good.model-card.json"
    assert card["architecture"] == "LUNet" and card["arch_args"]["widths"] == list(SMALL)
    assert card["file_size_bytes"] == path.stat().st_size
    loaded, card2, sha = load_model(path)
    assert sha == card["sha256"] and card2["name"] == "test model"
    x = torch.rand(1, 1, 32, 48)
    with torch.no_grad():
        for a, b in zip(model(x), loaded(x)):
            assert torch.equal(a, b)


def test_plain_unet_file_rebuilds_a_plain_unet(tmp_path):
    path = tmp_path / "plain.pt"
    save_model(PlainUNet(widths=SMALL), path)
    loaded, card, _ = load_model(path)
    assert type(loaded) is PlainUNet and card["architecture"] == "PlainUNet"


def test_changed_byte_fails_the_sha256_check(saved):
    _, path = saved
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="is corrupt: its sha256 does not match its model card"):
        load_model(path)


def test_wrong_keys_are_named(tmp_path):
    path = tmp_path / "wrongkeys.pt"
    plain = PlainUNet(widths=SMALL)  # no skip-path convolutions
    torch.save(_payload(plain, arch="LUNet"), path)
    with pytest.raises(ModelError, match=r"does not fit LU-Net: missing keys skips\.0\.0\.weight"):
        load_model(path)


def test_wrong_shapes_are_named(tmp_path):
    path = tmp_path / "wrongshape.pt"
    other = LUNet(widths=(4, 8))
    torch.save(_payload(other, arch_args=LUNet(widths=SMALL).constructor_args()), path)
    with pytest.raises(ModelError, match=r"does not fit LU-Net: wrong shape for encoders\.0\.0\.weight"):
        load_model(path)


class _Evil:
    marker: Path | None = None

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_with_an_arbitrary_object_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "code_ran"
    evil = _Evil()
    evil.marker = marker
    path = tmp_path / "evil.pt"
    torch.save(_payload(LUNet(widths=SMALL), extra=evil), path)
    assert not marker.exists()
    with pytest.raises(ModelError, match="evil.pt: refused: contains code"):
        load_model(path)
    assert not marker.exists()


def test_text_file_is_not_a_model_file(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("these are not weights\n")
    with pytest.raises(ModelError, match="notes.pt is not a DentSeg model file"):
        load_model(path)


def test_torch_file_of_another_kind_is_not_a_model_file(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(ModelError, match="is not a DentSeg model file"):
        load_model(path)


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nope.pt")
    with pytest.raises(ModelError, match="not found"):
        Segmenter.load(tmp_path / "nope.pt")


def test_bundled_model_must_have_its_card(tmp_path, monkeypatch):
    save_model(LUNet(widths=SMALL), tmp_path / "lunet.pt")
    card_path_for(tmp_path / "lunet.pt").unlink()
    monkeypatch.setenv("DENTSEG_RESOURCES", str(tmp_path))
    with pytest.raises(ModelError, match="has no model card"):
        Segmenter.load(None)


def test_segmenter_cache_follows_the_file(saved):
    _, path = saved
    a = Segmenter.load(path)
    assert Segmenter.load(str(path)) is a
    assert a.sha256 == json.loads(card_path_for(path).read_text())["sha256"] and a.name == "test model"
    torch.manual_seed(1)
    save_model(LUNet(widths=SMALL), path, {"name": "retrained"})
    b = Segmenter.load(path)
    assert b is not a and b.name == "retrained"
