"""Export a DentSeg model to ONNX, for ONNX Runtime: ``python -m dentseg_gui.model.export_onnx MODEL``.

What is exported is exactly the network the torch path runs: the model with its
BatchNorm folded into the convolutions (``lunet.fuse_batchnorm``), in eval mode,
one grey image ``(1, 1, H, W)`` float32 in (H, W any multiples of the model's size
multiple), the segmentation logits and heatmap logits ``(1, 3, H, W)`` out. The
softmax and the mirrored second view stay in ``inference.py`` for both engines.

Every export is checked before it is kept: ONNX Runtime runs it on two input sizes
and its outputs must match torch's within ``MAX_ABS_DIFF`` (logits), else it is
refused. The result is written with the weights and the card as one unit
(``model_file.commit_model_set``); the ``.pt`` itself is left byte for byte as it was.

Needs the ``onnx`` package (the exporter writes through it); ``dentseg train``
exports at the end of training when it is installed.
"""

from __future__ import annotations

import argparse
import io
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import DentsegError, ModelError
from .lunet import LUNet, fuse_batchnorm
from .model_file import commit_model_set

OPSET = 17
#: largest |logit| difference between ONNX Runtime and torch accepted for an export
MAX_ABS_DIFF = 1e-3


def export_onnx_bytes(model: LUNet) -> tuple[bytes, dict[str, Any]]:
    """The ONNX bytes of ``model`` (BatchNorm folded) and what to record about them in the card."""
    net = fuse_batchnorm(model).eval()
    m = int(model.size_multiple)
    x = torch.rand(1, 1, 4 * m, 6 * m)
    buf = io.BytesIO()
    axes = {"image": {2: "height", 3: "width"}, "seg_logits": {2: "height", 3: "width"},
            "heatmap_logits": {2: "height", 3: "width"}}
    try:
        import onnx  # noqa: F401 - the exporter needs it; say so clearly if it is missing
    except ImportError:
        raise ModelError("exporting to ONNX needs the onnx package (pip install onnx)") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # the TorchScript exporter's deprecation notice
            torch.onnx.export(net, (x,), buf, dynamo=False, input_names=["image"],
                              output_names=["seg_logits", "heatmap_logits"], dynamic_axes=axes,
                              opset_version=OPSET, do_constant_folding=True)
        exporter = "torch.onnx (TorchScript)"
    except Exception as exc:  # noqa: BLE001 - e.g. a torch without the old exporter: try the new one
        buf = io.BytesIO()
        try:
            from torch.export import Dim
            h, w = Dim("height", min=1, max=1024), Dim("width", min=1, max=1024)
            prog = torch.onnx.export(net, (x,), dynamo=True, input_names=["image"],
                                     output_names=["seg_logits", "heatmap_logits"],
                                     dynamic_shapes=({2: m * h, 3: m * w},), opset_version=18)
            prog.save(buf)
            exporter = "torch.onnx (dynamo)"
        except Exception as exc2:  # noqa: BLE001
            raise ModelError(f"the model could not be exported to ONNX ({type(exc).__name__}; "
                             f"{type(exc2).__name__}: {str(exc2)[:160]})") from None
    data = buf.getvalue()
    diff = check_export(net, data, m)
    info = {"opset": OPSET if exporter.endswith("(TorchScript)") else 18, "exporter": exporter,
            "torch_version": torch.__version__.split("+")[0], "batchnorm_folded": True,
            "input": "image (1, 1, H, W) float32, robust-normalised, H and W multiples of "
                     f"{m}", "outputs": ["seg_logits (1, 3, H, W)", "heatmap_logits (1, 3, H, W)"],
            "max_abs_diff_vs_torch": diff}
    return data, info


def check_export(net: torch.nn.Module, data: bytes, multiple: int) -> float | None:
    """Largest |logit| difference between ONNX Runtime and torch on two sizes (None: no ORT here)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for h, w in ((4 * multiple, 4 * multiple), (6 * multiple, 10 * multiple)):
        x = rng.random((1, 1, h, w), dtype=np.float32)
        got = sess.run(None, {"image": x})
        with torch.inference_mode():
            want = net(torch.from_numpy(x))
        for a, b in zip(got, want):
            worst = max(worst, float(np.abs(a - b.numpy()).max()))
    if not worst <= MAX_ABS_DIFF:
        raise ModelError(f"the ONNX export does not reproduce the model (logits differ by {worst:.2g}); "
                         "it was not kept")
    return round(worst, 8)


def save_model_with_onnx(model: LUNet, path: str | Path, card: dict[str, Any] | None = None) -> dict[str, Any]:
    """``weights.save_model`` with the ONNX export, all three files committed as one unit."""
    from .weights import save_model

    return save_model(model, path, card, onnx=export_onnx_bytes(model))


def export_model_file(model_path: str | Path, command: str | None = None) -> dict[str, Any]:
    """Export the model file ``model_path`` (verified) and commit the ONNX with its card
    (``command``: how the export was run, recorded in the card)."""
    from .weights import load_model_set

    path = Path(model_path)
    model, model_set = load_model_set(path)
    if not model_set.verified:
        raise ModelError(f"{path.name} has no model card: an unverified model is not exported "
                         "(retrain it, or restore its card)")
    data, info = export_onnx_bytes(model)
    if command:
        info["command"] = command
    weights = model_set.weights_path.read_bytes()
    card = dict(model_set.card)
    return commit_model_set(path, weights, card, data, info)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dentseg_gui.model.export_onnx",
                                description="export a DentSeg model file to ONNX beside it "
                                            "(NAME.onnx, its sha256 recorded in the model card)")
    p.add_argument("model", type=Path)
    args = p.parse_args(argv)
    try:
        card = export_model_file(args.model, command=f"python -m dentseg_gui.model.export_onnx {args.model}")
    except DentsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    o = card["onnx"]
    print(f"wrote {Path(args.model).with_name(o['file'])} ({o['size_bytes']:,} bytes, sha256 "
          f"{o['sha256'][:16]}..., max |diff| vs torch {o['max_abs_diff_vs_torch']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
