"""The benchmark architectures: LU-Net, the plain U-Net and (optional) MONAI's BasicUNet."""

from __future__ import annotations

import sys

import pytest
import torch

from dentseg_gui.model.lunet import ARCHITECTURES, build_model, count_parameters


def test_lunet_differs_from_plain_unet_only_by_the_skip_convs():
    lu, plain = build_model("LUNet", {}), build_model("PlainUNet", {})
    extra = count_parameters(lu) - count_parameters(plain)
    skip_params = sum(p.numel() for p in lu.skips.parameters())
    assert extra == skip_params > 0
    x = torch.zeros(1, 1, 64, 64)
    for m in (lu, plain):
        seg, heat = m.eval()(x)
        assert seg.shape == (1, 3, 64, 64) and heat.shape == (1, 3, 64, 64)


def test_basic_unet_without_monai_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "monai", None)
    monkeypatch.setitem(sys.modules, "monai.networks.nets", None)
    with pytest.raises(ValueError, match="MONAI is not installed"):
        build_model("MonaiBasicUNet", {})


def test_basic_unet_gives_lunet_shaped_outputs():
    pytest.importorskip("monai", reason="MONAI is optional (pip install monai --no-deps)")
    m = ARCHITECTURES["MonaiBasicUNet"]().eval()
    seg, heat = m(torch.zeros(1, 1, 64, 48))
    assert seg.shape == (1, 3, 64, 48) and heat.shape == (1, 3, 64, 48)
