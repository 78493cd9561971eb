"""Evaluation metrics on annotations with known geometry, and the ``dentseg evaluate`` folder run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from dentseg_gui.core.annotation import Annotation, save_annotation
from dentseg_gui.model.evaluate import (curve_distance, evaluate_cli, evaluate_dirs, evaluate_pair,
                                        hausdorff95)

SPACING = (0.2, 0.25)  # row, column: anisotropic on purpose


def _truth() -> Annotation:
    # tooth crown down, root up; palatal side to the right (+x)
    lm = {"CEJ_labial": (100.0, 200.0), "CEJ_palatal": (140.0, 200.0), "apex": (120.0, 60.0)}
    pab = Polygon([(142, 195), (150, 195), (175, 120), (170, 60), (135, 60), (140, 120)])
    enamel = box(95, 200, 145, 260).difference(box(105, 200, 135, 250))
    return Annotation("case.png", 256, 288, SPACING,
                      {"PAB": MultiPolygon([pab]), "enamel": MultiPolygon([enamel])}, lm)


def _shifted(ann: Annotation, dx: float, dy: float = 0.0) -> Annotation:
    out = ann.copy()
    out.regions = {k: shapely.affinity.translate(g, dx, dy) for k, g in ann.regions.items()}
    out.landmarks = {k: (x + dx, y + dy) for k, (x, y) in ann.landmarks.items()}
    return out


def test_truth_against_itself_is_perfect():
    t = _truth()
    m = evaluate_pair(t, t)
    assert m["dice"] == {"PAB": 1.0, "enamel": 1.0}
    assert m["hd95_mm"]["PAB"] == pytest.approx(0.0, abs=1e-9)
    assert m["hd95_mm"]["enamel"] == pytest.approx(0.0, abs=1e-9)
    assert all(v == pytest.approx(0.0, abs=1e-9) for v in m["landmark_mm"].values())
    errs = [v for v in m["abs_error"].values() if v is not None]
    assert len(errs) >= 10 and max(errs) == pytest.approx(0.0, abs=1e-9)
    assert m["palatal_boundary_mm"] == pytest.approx(0.0, abs=1e-9)
    assert m["unit"] == "mm"


def test_three_pixel_translation_gives_known_distances():
    t = _truth()
    p = _shifted(t, 3.0)  # 3 columns = 0.75 mm
    m = evaluate_pair(p, t)
    # the outlines have long near-vertical edges, so >5 % of outline points are 3 px away
    assert m["hd95_mm"]["PAB"] == pytest.approx(3 * SPACING[1], rel=0.05)
    assert m["hd95_mm"]["enamel"] == pytest.approx(3 * SPACING[1], rel=0.02)
    for name in ("CEJ_labial", "CEJ_palatal", "apex"):
        assert m["landmark_mm"][name] == pytest.approx(3 * SPACING[1])
    assert 0.7 < m["dice"]["PAB"] < 0.95
    # a rigid shift moves nothing in the tooth frame: measurements agree
    assert m["abs_error"]["pab_area_mm2"] == pytest.approx(0.0, abs=1e-6)
    assert m["abs_error"]["pab_thickness_50_mm"] == pytest.approx(0.0, abs=1e-6)


def test_vertical_translation_uses_row_spacing():
    t = _truth()
    m = evaluate_pair(_shifted(t, 0.0, 4.0), t)
    assert m["landmark_mm"]["apex"] == pytest.approx(4 * SPACING[0])
    assert m["hd95_mm"]["enamel"] == pytest.approx(4 * SPACING[0], rel=0.02)


def test_hausdorff95_of_nested_squares():
    a = MultiPolygon([box(0, 0, 100, 100)])
    b = MultiPolygon([box(10, 10, 90, 90)])
    # every point of the inner square is 10 px from the outer one; outer corners are further
    assert hausdorff95(a, b, (1.0, 1.0)) == pytest.approx(10.0 * np.sqrt(2), rel=0.2)
    assert hausdorff95(b, a, (0.5, 0.5)) == hausdorff95(a, b, (0.5, 0.5))


def test_palatal_boundary_distance_sees_only_the_palatal_side():
    t = _truth()
    p = t.copy()
    # push only the palatal surface outward by 2 px (0.5 mm with the column spacing)
    pab = Polygon([(144, 195), (152, 195), (177, 120), (172, 60), (135, 60), (140, 120)])
    p.regions = dict(t.regions, PAB=MultiPolygon([pab]))
    d = evaluate_pair(p, t)["palatal_boundary_mm"]
    assert 0.3 < d < 0.55


def test_phantom_truth_curve_is_used_when_present():
    t = _truth()
    t.extra["phantom_truth"] = {"palatal_boundary": [[160.0, 195.0], [185.0, 120.0], [180.0, 60.0]]}
    d = evaluate_pair(t, t)["palatal_boundary_mm"]
    assert d == pytest.approx(curve_distance(
        shapely.LineString([(150, 195), (175, 120), (170, 60)]),
        shapely.LineString([(160, 195), (185, 120), (180, 60)]), SPACING), rel=0.15)
    assert d > 1.5


def test_missing_regions_and_landmarks_are_reported_not_zero():
    t = _truth()
    p = t.copy()
    p.regions = {"PAB": t.regions["PAB"]}
    p.landmarks = {k: v for k, v in t.landmarks.items() if k != "apex"}
    m = evaluate_pair(p, t)
    assert m["dice"]["enamel"] == 0.0
    assert m["hd95_mm"]["enamel"] is None
    assert m["landmark_mm"]["apex"] is None
    assert m["abs_error"]["root_length_mm"] is None
    assert any("apex" in n for n in m["notes"])


def test_evaluate_dirs_pairs_by_stem_and_reports_missing(tmp_path, capsys):
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    pred.mkdir()
    truth.mkdir()
    t = _truth()
    save_annotation(t, truth / "a.dentseg.json")
    save_annotation(_shifted(t, 3.0), pred / "a.dentseg.json")
    save_annotation(t, truth / "b.dentseg.json")            # no prediction for b
    save_annotation(t, pred / "c.dentseg.json")             # no truth for c
    (pred / "d.dentseg.json").write_text("{broken", encoding="utf-8")
    save_annotation(t, truth / "d.dentseg.json")
    rep = evaluate_dirs(pred, truth)
    assert list(rep.pairs) == ["a"]
    assert rep.missing_prediction == ["b"]
    assert rep.missing_truth == ["c"]
    assert "d.dentseg.json" in rep.errors
    s = rep.summary()
    assert s["hd95_mm.enamel"]["mean"] == pytest.approx(0.75, rel=0.02)

    out_json = tmp_path / "eval.json"
    rc = evaluate_cli(pred, truth, json_path=out_json)
    assert rc == 1
    text = capsys.readouterr().out
    assert "Dice PAB" in text and "b: no prediction" in text and "d.dentseg.json: error" in text
    data = json.loads(out_json.read_text(encoding="utf-8"))
    assert data["summary"]["landmark_mm.mean"]["max"] == pytest.approx(0.75)


def test_evaluate_cli_with_nothing_to_pair_exits_2(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "t").mkdir()
    assert evaluate_cli(tmp_path / "p", tmp_path / "t") == 2
