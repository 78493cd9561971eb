"""``dentseg measure``: CSV/JSON reports from annotation files, errors by file name."""

from __future__ import annotations

import csv
import json

import pytest
import shapely
from shapely.geometry import MultiPolygon

from dentseg_gui.cli import main
from dentseg_gui.core.annotation import Annotation, save_annotation
from dentseg_gui.core.measurements import KEYS, measure


def _ann(name: str, with_apex: bool = True) -> Annotation:
    lm = {"CEJ_labial": (100.0, 200.0), "CEJ_palatal": (140.0, 200.0)}
    if with_apex:
        lm["apex"] = (120.0, 100.0)
    return Annotation(name, 300, 300, (0.1, 0.1),
                      {"PAB": MultiPolygon([shapely.box(140, 110, 170, 190)]),
                       "enamel": MultiPolygon([shapely.box(100, 200, 140, 280)])}, lm)


def test_measure_writes_csv_and_json_with_every_key(tmp_path, capsys):
    a = save_annotation(_ann("a.png"), tmp_path / "a.dentseg.json")
    b = save_annotation(_ann("b.png", with_apex=False), tmp_path / "b.dentseg.json")
    rc = main(["measure", str(a), str(b), "--csv", str(tmp_path / "m.csv"), "--json", str(tmp_path / "m.json")])
    assert rc == 0
    rows = list(csv.DictReader(open(tmp_path / "m.csv", newline="", encoding="utf-8")))
    assert [r["image"] for r in rows] == ["a.png", "b.png"]
    header = open(tmp_path / "m.csv", encoding="utf-8").readline().strip().split(",")
    assert header[0] == "image" and set(KEYS) <= set(header)
    expected = measure(_ann("a.png")).values
    for k in KEYS:
        assert float(rows[0][k]) == pytest.approx(expected[k], abs=1e-4), k
    assert float(rows[0]["pab_area_mm2"]) == pytest.approx(30 * 80 * 0.01)
    assert float(rows[0]["pab_thickness_50_mm"]) == pytest.approx(3.0)
    assert rows[1]["root_length_mm"] == ""
    assert "root_length_mm: landmark apex not placed" in rows[1]["missing"]
    doc = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    assert doc["cases"][1]["measurements"]["root_length_mm"] is None
    assert doc["units"]["pab_area_mm2"] == "mm²"


def test_measure_reports_a_broken_file_by_name_and_measures_the_rest(tmp_path, capsys):
    good = save_annotation(_ann("a.png"), tmp_path / "a.dentseg.json")
    bad = tmp_path / "broken.dentseg.json"
    bad.write_text('{"format": "dentseg-annot', encoding="utf-8")
    rc = main(["measure", str(bad), str(good), "--csv", str(tmp_path / "m.csv")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "broken.dentseg.json" in err and "not valid JSON" in err
    assert "Traceback" not in err
    assert len(list(csv.DictReader(open(tmp_path / "m.csv", encoding="utf-8")))) == 1


def test_measure_without_outputs_prints_a_table(tmp_path, capsys):
    a = save_annotation(_ann("a.png"), tmp_path / "a.dentseg.json")
    assert main(["measure", str(a)]) == 0
    out = capsys.readouterr().out
    assert "pab_thickness_50_mm" in out and "3.000 mm" in out


def test_cli_errors_are_one_line_not_tracebacks(tmp_path, capsys):
    rc = main(["measure", str(tmp_path / "missing.dentseg.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "file not found" in err and "Traceback" not in err


def _model_output(name: str, level: str | None, edited: str | None = None) -> Annotation:
    """``_ann`` as unreviewed model output (as ``dentseg predict`` writes it) with a verdict."""
    ann = _ann(name)
    stamp = {"source": "model", "model": "LU-Net"}
    ann.provenance = {"source": "LU-Net prediction",
                      "regions": {n: dict(stamp) for n in ann.regions},
                      "landmarks": {n: dict(stamp) for n in ann.landmarks}}
    if level:
        ann.provenance["quality"] = {"level": level, "reasons": ["apex confidence 0.41"]}
    if edited:
        ann.provenance["landmarks"][edited]["edited_by_hand"] = True
    return ann


def test_measure_marks_unreviewed_flagged_model_output(tmp_path, capsys):
    files = [save_annotation(_model_output("flagged.png", "check"), tmp_path / "flagged.dentseg.json"),
             save_annotation(_model_output("fine.png", "ok"), tmp_path / "fine.dentseg.json"),
             save_annotation(_model_output("reviewed.png", "doubtful", edited="apex"),
                             tmp_path / "reviewed.dentseg.json"),
             save_annotation(_ann("hand.png"), tmp_path / "hand.dentseg.json")]
    assert main(["measure", *map(str, files), "--csv", str(tmp_path / "m.csv"),
                 "--json", str(tmp_path / "m.json")]) == 0
    rows = {r["image"]: r for r in csv.DictReader(open(tmp_path / "m.csv", newline="", encoding="utf-8"))}
    assert rows["flagged.png"]["model_check"] == "check: apex confidence 0.41"
    assert rows["fine.png"]["model_check"] == rows["reviewed.png"]["model_check"] == rows["hand.png"]["model_check"] == ""
    cases = {c["image"]: c for c in json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))["cases"]}
    assert cases["flagged.png"]["model_check"] == "check: apex confidence 0.41"
    assert cases["hand.png"]["model_check"] is None
    capsys.readouterr()
    assert main(["measure", str(files[0])]) == 0
    assert "model output not reviewed, flagged check: apex confidence 0.41" in capsys.readouterr().out
