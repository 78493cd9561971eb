"""ONNX Runtime and torch give the same predictions; the CLI's fast paths never import torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dentseg_gui.core.errors import ModelError
from dentseg_gui.core.phantom import generate_phantom, write_phantom_set
from dentseg_gui.model.inference import Segmenter
from dentseg_gui.model.model_file import card_path_for, onnx_path_for
from dentseg_gui.model.predict import Predictor
from dentseg_gui.resources import bundled_model_path

REPO = Path(__file__).resolve().parent.parent
needs_model = pytest.mark.skipif(not onnx_path_for(bundled_model_path()).is_file(),
                                 reason="bundled lunet.onnx missing")


@needs_model
@pytest.mark.parametrize("seed,style", [(5101, "standard"), (5102, "faint"), (5103, "shifted")])
def test_onnx_and_torch_give_the_same_regions_and_measurements(seed, style):
    case = generate_phantom(seed, style)
    sp = case.annotation.pixel_spacing_mm
    a = Predictor(engine="onnx").predict_image(case.image, spacing=sp).annotation
    b = Predictor(engine="torch").predict_image(case.image, spacing=sp).annotation
    assert a.provenance["engine"].startswith("onnxruntime") and b.provenance["engine"].startswith("torch")
    assert set(a.measurements) == set(b.measurements) and a.measurements
    worst = max(abs(a.measurements[k] - b.measurements[k]) for k in a.measurements)
    assert worst <= 0.01, worst                       # mm, mm2 and degrees
    assert a.measurements_missing == b.measurements_missing
    for name in ("PAB", "enamel"):
        ra, rb = a.region(name), b.region(name)
        assert ra.symmetric_difference(rb).area <= 1e-3 * max(ra.area, 1.0)
    for k in a.landmarks:
        assert np.hypot(*np.subtract(a.landmarks[k], b.landmarks[k])) < 0.01   # pixels


def _bundled_copy(tmp_path: Path) -> Path:
    for p in (bundled_model_path(), card_path_for(bundled_model_path()), onnx_path_for(bundled_model_path())):
        shutil.copy2(p, tmp_path / p.name)
    return tmp_path / bundled_model_path().name


@needs_model
def test_missing_or_mismatched_onnx_falls_back_to_torch_with_a_note(tmp_path):
    path = _bundled_copy(tmp_path)
    seg = Segmenter.load(path, cache=False)
    assert seg.engine.kind == "onnxruntime" and seg.engine_note is None and seg.verified
    data = bytearray(onnx_path_for(path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx_path_for(path).write_bytes(bytes(data))
    seg = Segmenter.load(path, cache=False)
    assert seg.engine.kind == "torch" and "lunet.onnx does not match the sha256" in seg.engine_note
    with pytest.raises(ModelError, match="cannot run lunet.pt on ONNX Runtime"):
        Segmenter.load(path, engine="onnx", cache=False)
    onnx_path_for(path).unlink()
    seg = Segmenter.load(path, cache=False)
    assert seg.engine.kind == "torch" and "lunet.onnx is missing" in seg.engine_note
    case = generate_phantom(4, "standard")
    prov = Predictor(path).predict_image(case.image, spacing=case.annotation.pixel_spacing_mm).annotation.provenance
    assert prov["engine"].startswith("torch") and "is missing" in prov["engine_note"]


def test_threads_are_what_was_asked(monkeypatch):
    from dentseg_gui.model.threads import inference_threads
    assert inference_threads(3) == 3
    monkeypatch.setenv("DENTSEG_THREADS", "1")
    assert inference_threads() == 1
    monkeypatch.delenv("DENTSEG_THREADS")
    # half the cores, so that a busy core never holds up the network (docs/adr/0011)
    for cores, n in ((1, 1), (2, 1), (4, 2), (8, 4), (32, 4)):
        monkeypatch.setattr("dentseg_gui.model.threads.available_cores", lambda c=cores: c)
        assert inference_threads() == n


_NO_TORCH = """
import sys
from dentseg_gui.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as e:          # --help
    rc = e.code
bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'PySide6', 'pyqtgraph'))
print('LOADED', bad)
sys.exit(rc or (3 if bad else 0))
"""


@needs_model
def test_predict_measure_and_help_do_not_import_torch(tmp_path):
    write_phantom_set(tmp_path / "in", 2, seed=5200)
    images = sorted(p for p in (tmp_path / "in").iterdir() if not p.name.endswith(".json"))
    env_path = str(REPO)
    runs = [["--help"], ["predict", "--help"],
            ["predict", *map(str, images), "--out", str(tmp_path / "out"), "--spacing", "0.15", "--threads", "1"],
            ["measure", str(tmp_path / "in" / "case_5200.dentseg.json")]]
    for args in runs:
        r = subprocess.run([sys.executable, "-c", _NO_TORCH, *args], capture_output=True, text=True,
                           cwd=tmp_path, timeout=120, env={**_env(), "PYTHONPATH": env_path})
        assert r.returncode == 0 and "LOADED []" in r.stdout, (args, r.stdout[-800:], r.stderr[-800:])
    out = json.loads((tmp_path / "out" / "case_5200.dentseg.json").read_text())
    assert out["provenance"]["engine"].startswith("onnxruntime")


def _env() -> dict:
    import os
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
