"""The network behind ``Segmenter``: ONNX Runtime when it can, torch otherwise.

Both engines run the same network - LU-Net with its BatchNorm folded - on one
normalised grid image ``(h, w)`` float32 and return its raw outputs
``(seg_logits (3, h, w), heatmap_logits (3, h, w))`` as numpy arrays; everything
after (softmax, mirrored view, restore through the logits) is shared code in
``inference.py``, so the two give the same regions and measurements.

* ``OnnxEngine``: ``NAME.onnx`` (checked against the model card) in ONNX Runtime;
  starts in a fraction of torch's import time and does not spin its threads.
* ``TorchEngine``: the ``.pt`` weights in torch, channels-last layout (oneDNN's
  preferred one on CPU). Used for models without a verified ONNX export, where
  ONNX Runtime is not installed, and on request (``engine="torch"``).

``open_engine`` picks one and says why when it had to fall back (``note``), which
the CLI prints and predictions record in their provenance.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ModelError
from .model_file import ModelSet, resolve_model_set, sha256_bytes, size_multiple_for
from .threads import inference_threads, ort_spinning, set_wait_policy

ENGINES = ("auto", "onnx", "torch")


class OnnxEngine:
    """A verified ONNX export in ONNX Runtime (CPU)."""

    kind = "onnxruntime"

    def __init__(self, onnx_path: Path, sha256: str, threads: int, size_multiple: int) -> None:
        import onnxruntime as ort

        data = Path(onnx_path).read_bytes()
        if sha256_bytes(data) != sha256:     # the bytes handed to ONNX Runtime are the checked ones
            raise ModelError(f"{Path(onnx_path).name} changed while it was being loaded; try again")
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        # waiting threads sleep instead of spinning: fair to other processes (docs/adr/0011)
        spin = "1" if ort_spinning() else "0"
        so.add_session_config_entry("session.intra_op.allow_spinning", spin)
        so.add_session_config_entry("session.inter_op.allow_spinning", spin)
        try:
            self._sess = ort.InferenceSession(data, sess_options=so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            raise ModelError(f"{Path(onnx_path).name} cannot be loaded by ONNX Runtime "
                             f"({str(exc).splitlines()[0][:160]})") from None
        self.threads = int(threads)
        self.size_multiple = int(size_multiple)
        self.label = f"onnxruntime {ort.__version__}"

    def run(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.ascontiguousarray(img, dtype=np.float32)[None, None]
        seg, heat = self._sess.run(None, {"image": x})
        return seg[0], heat[0]


class TorchEngine:
    """The ``.pt`` weights in torch (BatchNorm folded; channels-last for the LU-Nets)."""

    kind = "torch"

    def __init__(self, model: Any, threads: int) -> None:
        set_wait_policy()
        import torch

        from .lunet import LUNet, fuse_batchnorm

        torch.set_num_threads(int(threads))
        self._torch = torch
        #: LU-Net and the plain U-Net run channels-last (about 28 % faster); MONAI's BasicUNet,
        #: whose InstanceNorm layers do not fold, is slower that way (docs/benchmarks.md)
        self._memory_format = torch.channels_last if isinstance(model, LUNet) else torch.contiguous_format
        self._net = fuse_batchnorm(model).to(memory_format=self._memory_format)
        self.threads = int(threads)
        self.size_multiple = int(model.size_multiple)
        self.label = f"torch {torch.__version__.split('+')[0]}"

    def run(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))[None, None]
        x = x.contiguous(memory_format=self._memory_format)
        with torch.inference_mode():
            seg, heat = self._net(x)
        return seg[0].contiguous().numpy(), heat[0].contiguous().numpy()


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def open_engine(path: str | Path, engine: str = "auto", threads: int | None = None,
                require_card: bool = False) -> tuple[Any, ModelSet, str | None]:
    """(engine, model set, note) for the model file ``path``.

    ``engine``: "auto" (ONNX Runtime when it is installed and the card names a
    matching ONNX export, else torch), "onnx" (refuse to fall back) or "torch".
    ``note`` says why "auto" fell back to torch, else None. A network whose output
    on a probe image is not finite is refused.
    """
    if engine not in ENGINES:
        raise ModelError(f"unknown inference engine {engine!r}; choose one of {', '.join(ENGINES)}")
    n_threads = inference_threads(threads)
    model_set = resolve_model_set(path, require_card=require_card)
    multiple = size_multiple_for(str(model_set.card.get("architecture")), model_set.card.get("arch_args") or {})
    note = None
    eng: Any = None
    if engine in ("auto", "onnx"):
        why = model_set.onnx_note
        if why is None and not onnxruntime_available():
            why = "ONNX Runtime is not installed (pip install onnxruntime)"
        if why is None:
            eng = OnnxEngine(model_set.onnx_path, model_set.card["onnx"]["sha256"], n_threads, multiple)
        elif engine == "onnx":
            raise ModelError(f"cannot run {Path(path).name} on ONNX Runtime: {why}")
        elif model_set.verified:      # an unverified model says so already; no second note
            note = f"running on torch (slower start): {why}"
    if eng is None:
        from .weights import load_model_set

        model, model_set = load_model_set(path, require_card=require_card)
        eng = TorchEngine(model, n_threads)
    _probe(eng, Path(path).name)
    return eng, model_set, note


_probe_lock = threading.Lock()


def _probe(eng: Any, name: str) -> None:
    """Refuse a network whose output on a small image is NaN or infinite (non-finite weights)."""
    m = eng.size_multiple
    with _probe_lock:
        seg, heat = eng.run(np.full((2 * m, 2 * m), 0.5, np.float32))
    if not (np.isfinite(seg).all() and np.isfinite(heat).all()):
        raise ModelError(f"model {name} gives non-finite output (NaN or infinity): its weights are "
                         "damaged; retrain it or choose another model")
