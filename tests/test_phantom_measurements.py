"""On generated phantoms, ``dentseg measure`` reproduces the values stored in their files."""

from __future__ import annotations

import json

import pytest

from dentseg_gui.cli import main
from dentseg_gui.core.annotation import load_annotation
from dentseg_gui.core.measurements import CONTRACT_KEYS, KEYS


@pytest.mark.slow
def test_measure_reproduces_stored_values_on_100_phantoms(tmp_path, capsys):
    out = tmp_path / "ph"
    assert main(["phantom", str(out), "-n", "100", "--seed", "300"]) == 0
    files = sorted(out.glob("*.dentseg.json"))
    assert len(files) == 100
    assert main(["measure", *map(str, files), "--json", str(tmp_path / "m.json")]) == 0
    cases = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))["cases"]
    worst = 0.0
    for f, case in zip(files, cases):
        stored = load_annotation(f).measurements
        assert case["missing"] == {}, f.name
        for k in KEYS:
            assert stored[k] is not None, (f.name, k)
            worst = max(worst, abs(case["measurements"][k] - stored[k]))
    assert worst < 1e-6
    # the phantoms span the contract keys with plausible anatomy
    vals = {k: [c["measurements"][k] for c in cases] for k in CONTRACT_KEYS}
    assert 9 < min(vals["root_length_mm"]) and max(vals["root_length_mm"]) < 20
    assert max(vals["axis_tilt_deg"]) > 20
    assert all(v > 0 for v in vals["pab_area_mm2"])
