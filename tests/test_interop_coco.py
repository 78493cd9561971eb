"""COCO export/import: structure, areas, keypoints, RLE as pycocotools writes it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dentseg_gui.cli import main as cli_main
from dentseg_gui.core.annotation import load_annotation
from dentseg_gui.core.interop.coco import export_coco, import_coco, rle_decode, rle_encode
from dentseg_gui.core.interop.common import collect_cases

from interop_helpers import write_png_case


def test_export_structure_areas_bboxes_and_keypoints(tmp_path):
    a = write_png_case(tmp_path / "cases", "a")
    b = write_png_case(tmp_path / "cases", "b", holes=False)
    res = export_coco(collect_cases([a, b])[0], tmp_path / "ds" / "annotations.json")
    doc = json.loads(res.written[0].read_text())
    cats = {c["name"]: c for c in doc["categories"]}
    assert set(cats) == {"PAB", "enamel", "incisor"}
    assert cats["incisor"]["keypoints"] == ["CEJ_labial", "CEJ_palatal", "apex"]
    assert [im["file_name"] for im in doc["images"]] == ["../cases/a.png", "../cases/b.png"]
    assert doc["images"][0]["width"] == 160 and doc["images"][0]["dentseg"]["pixel_spacing_mm"] == [0.2, 0.25]
    ann_a = load_annotation(a)
    pab = next(x for x in doc["annotations"] if x["image_id"] == 1 and x["category_id"] == cats["PAB"]["id"])
    assert pab["area"] == pytest.approx(ann_a.region("PAB").area, abs=1e-3)       # holes subtracted
    x0, y0, x1, y1 = ann_a.region("PAB").bounds
    assert pab["bbox"] == pytest.approx([x0 + 0.5, y0 + 0.5, x1 - x0, y1 - y0])
    assert pab["iscrowd"] == 0 and all(len(p) % 2 == 0 and len(p) >= 6 for p in pab["segmentation"])
    kp = next(x for x in doc["annotations"] if x["image_id"] == 1 and x["category_id"] == cats["incisor"]["id"])
    assert kp["num_keypoints"] == 3 and kp["keypoints"][6:9] == [81.0, 12.5, 2]


def test_export_then_import_gives_the_same_cases(tmp_path):
    a = write_png_case(tmp_path / "cases", "a")
    export_coco(collect_cases([a])[0], tmp_path / "ds" / "annotations.json")
    res = import_coco(tmp_path / "ds" / "annotations.json", tmp_path / "ds", out_dir=tmp_path / "back")
    assert res.problems == [] and len(res.cases) == 1
    before, after = load_annotation(a), load_annotation(res.cases[0])
    for name in ("PAB", "enamel"):
        a = before.region(name)   # seams are rounded to 0.001 px: slivers far below a pixel
        assert a.symmetric_difference(after.region(name)).area < 1e-4 * a.area
    for k, p in before.landmarks.items():
        assert after.landmarks[k] == pytest.approx(p, abs=1e-3)
    assert after.pixel_spacing_mm == (0.2, 0.25)
    assert (tmp_path / "back" / "a.png").is_file()


def test_rle_matches_pycocotools_strings():
    # reference strings written by pycocotools.mask.encode for these masks
    m = np.zeros((6, 5), np.uint8)
    m[1:4, 1:3] = 1
    m[5, 4] = m[0, 4] = 1
    assert rle_encode(m) == {"size": [6, 5], "counts": "73305NL0"}
    m2 = np.zeros((40, 30), np.uint8)
    m2[5:35, 3:27] = 1
    m2[10:20, 10:15] = 0
    s = "m3n0:000000000000WO0:0F0:0F0:0F0:0F0:0?0000000000000000000000c3"
    assert rle_encode(m2)["counts"] == s
    assert (rle_decode({"size": [40, 30], "counts": s}) == m2.astype(bool)).all()
    rng = np.random.default_rng(3)
    for _ in range(10):
        r = rng.random((17, 23)) > rng.random()
        assert (rle_decode(rle_encode(r)) == r).all()
        assert (rle_decode({"size": [17, 23], "counts": _plain_counts(r)}) == r).all()


def _plain_counts(m):
    flat = m.T.reshape(-1)
    counts, cur, n = [], False, 0
    for v in flat:
        if v != cur:
            counts.append(n)
            cur, n = v, 0
        n += 1
    return counts + [n]


def test_import_foreign_names_rle_and_keypoints_with_a_map(tmp_path, capsys):
    import cv2
    cv2.imwrite(str(tmp_path / "img7.png"), np.zeros((40, 30), np.uint8))
    m = np.zeros((40, 30), bool)
    m[5:35, 3:27] = True
    m[10:20, 10:15] = False
    doc = {"images": [{"id": 7, "file_name": "sub\\img7.png", "width": 30, "height": 40}],
           "categories": [{"id": 1, "name": "alveolar_bone"}, {"id": 2, "name": "crown"},
                          {"id": 3, "name": "tooth", "keypoints": ["cej_a", "cej_b", "tip", "other"]}],
           "annotations": [
               {"id": 1, "image_id": 7, "category_id": 1, "iscrowd": 1, "segmentation": rle_encode(m)},
               {"id": 2, "image_id": 7, "category_id": 2, "iscrowd": 0,
                "segmentation": [[2, 36, 8, 36, 8, 39, 2, 39]]},
               {"id": 3, "image_id": 7, "category_id": 3, "keypoints": [5, 6, 2, 10, 6, 1, 0, 0, 0, 1, 1, 2]}]}
    (tmp_path / "c.json").write_text(json.dumps(doc))
    rc = cli_main(["import", "coco", str(tmp_path / "c.json"), "--images", str(tmp_path),
                   "--map", "alveolar_bone=PAB", "crown=enamel", "cej_a=CEJ_labial", "cej_b=CEJ_palatal",
                   "tip=apex", "--spacing", "0.1"])
    out = capsys.readouterr().out
    assert rc == 0, out
    ann = load_annotation(tmp_path / "img7.dentseg.json")
    assert ann.region("PAB").area == pytest.approx(m.sum())
    assert ann.region("enamel").area == pytest.approx(18)
    assert ann.landmarks == {"CEJ_labial": (4.5, 5.5), "CEJ_palatal": (9.5, 5.5)}   # apex v=0: absent
    assert "keypoint other" in out


def test_cli_export_coco_names_missing_images(tmp_path, capsys):
    write_png_case(tmp_path / "cases", "a")
    write_png_case(tmp_path / "cases", "b")
    (tmp_path / "cases" / "b.png").unlink()
    rc = cli_main(["export", "coco", str(tmp_path / "cases"), "--out", str(tmp_path / "ann.json")])
    cap = capsys.readouterr()
    assert rc == 1 and "b.png: image not found" in cap.err and "exported 1 of 2 cases" in cap.out
    assert len(json.loads((tmp_path / "ann.json").read_text())["images"]) == 1
