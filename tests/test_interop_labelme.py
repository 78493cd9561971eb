"""labelme import/export: a file in the exact shape labelme 5 writes, and round trips."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from shapely.geometry import Polygon

from dentseg_gui.cli import main as cli_main
from dentseg_gui.core.annotation import load_annotation
from dentseg_gui.core.interop.common import collect_cases, hole_free_pieces
from dentseg_gui.core.interop.labelme import LABELME_VERSION, export_labelme, import_labelme
from dentseg_gui.core.measurements import measure

from interop_helpers import ring_with_holes_region, write_png_case

SHAPE_KEYS = ["label", "points", "group_id", "description", "shape_type", "flags", "mask"]
FILE_KEYS = ["version", "flags", "shapes", "imagePath", "imageData", "imageHeight", "imageWidth"]


def _shape(label, points, shape_type="polygon", mask=None, group_id=None):
    # exactly labelme 5's format_shape: label, points, group_id, description, shape_type, flags, mask
    return {"label": label, "points": points, "group_id": group_id, "description": "",
            "shape_type": shape_type, "flags": {}, "mask": mask}


def _png_b64(arr: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", arr)
    assert ok
    return base64.b64encode(buf.tobytes()).decode("ascii")


def _write_labelme5(folder: Path, embed: bool) -> Path:
    """A labelme 5 file as labelme writes it (json.dump, indent=2, ensure_ascii=False)."""
    h, w = 100, 120
    img = np.full((h, w), 90, np.uint8)
    if not embed:
        cv2.imwrite(str(folder / "scan 01.png"), img)
    mask = np.zeros((10, 8), np.uint8)
    mask[2:8, 1:7] = 1                                   # 36 pixels
    shapes = [
        # bone drawn as two overlapping polygons + a rectangle: one region, united
        _shape("bone", [[10.0, 10.0], [40.0, 10.0], [40.0, 30.0], [10.0, 30.0]]),
        _shape("bone", [[30.0, 20.0], [50.0, 20.0], [50.0, 40.0], [30.0, 40.0]]),
        _shape("bone", [[60.0, 60.0], [70.0, 70.0]], "rectangle"),
        _shape("enamel", [[90.0, 50.0], [90.0, 58.0]], "circle"),      # r = 8
        _shape("enamel", [[100.0, 80.0], [107.0, 89.0]], "mask", mask=_png_b64(mask)),
        _shape("cej_l", [[20.5, 70.5]], "point"),
        _shape("cej_p", [[35.5, 72.5]], "point"),
        _shape("Apex", [[30.5, 5.5]], "point"),
        _shape("caries", [[5.0, 5.0], [8.0, 5.0], [8.0, 8.0]]),        # not mapped: listed, skipped
        _shape("axis", [[1.0, 1.0], [2.0, 2.0]], "line"),              # not mapped either
    ]
    doc = {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": "scan 01.png",
           "imageData": _png_b64(img) if embed else None, "imageHeight": h, "imageWidth": w}
    path = folder / "scan 01.json"
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


@pytest.mark.parametrize("embed", [False, True])
def test_import_a_labelme5_file_unites_shapes_and_shifts_to_pixel_centres(tmp_path, embed):
    src = _write_labelme5(tmp_path, embed)
    res = import_labelme([src], {"bone": "PAB", "cej_l": "CEJ_labial", "cej_p": "CEJ_palatal"},
                         spacing=(0.2, 0.2), out_dir=tmp_path / "cases")
    assert res.problems == [] and len(res.cases) == 1, res.lines()
    assert (tmp_path / "cases" / "scan 01.png").is_file()          # copied, or written from imageData
    ann = load_annotation(res.cases[0])
    assert ann.image_path == "scan 01.png" and (ann.width, ann.height) == (120, 100)
    # two overlapping squares (600 + 400 - 100 overlap) + a 10x10 rectangle
    assert ann.region("PAB").area == pytest.approx(600 + 400 - 100 + 100, abs=1e-6)
    assert ann.region("PAB").bounds == pytest.approx((9.5, 9.5, 69.5, 69.5))
    # circle r=8 (0.04 % polygon error) + the mask's 36 pixels
    assert ann.region("enamel").area == pytest.approx(math.pi * 64 + 36, rel=1e-3)
    # labelme's (20.5, 70.5) is the centre of pixel (row 70, column 20)
    assert ann.landmarks == {"CEJ_labial": (20.0, 70.0), "CEJ_palatal": (35.0, 72.0), "apex": (30.0, 5.0)}
    assert "'caries' (1 shape)" in " ".join(res.notes) and "axis" in " ".join(res.notes)
    # the region keeps both parts; only the one that belongs to the tooth is measured, and said so
    assert ann.measurements["pab_area_mm2"] == pytest.approx(900 * 0.04, rel=1e-6)
    from dentseg_gui.core.measurements import measure
    assert measure(ann).warnings[0].startswith("2 PAB pieces: measured")
    assert ann.provenance["regions"]["PAB"]["source"] == "manual"
    assert ann.provenance["regions"]["PAB"]["imported_from"] == "labelme"


def test_mask_shape_lands_on_the_pixels_labelme_paints(tmp_path):
    src = _write_labelme5(tmp_path, embed=False)
    res = import_labelme([src], {"enamel": "enamel"}, out_dir=tmp_path / "c")
    ann = load_annotation(res.cases[0])
    from dentseg_gui.core.geometry import geometry_to_mask
    m = geometry_to_mask(ann.region("enamel"), (100, 120))
    # labelme: mask[y1:y1+10, x1:x1+8] with (x1, y1) = (100, 80); mask rows 2..7, cols 1..6
    assert m[82:88, 101:107].all() and m[80:90, 100:108].sum() == 36


def test_export_writes_the_labelme5_layout_with_relative_image_path(tmp_path):
    case = write_png_case(tmp_path / "cases")
    res = export_labelme(collect_cases([case])[0], tmp_path / "out" / "lm")
    assert res.problems == [] and len(res.written) == 1
    doc = json.loads(res.written[0].read_text(encoding="utf-8"))
    assert list(doc)[:7] == FILE_KEYS and doc["version"] == LABELME_VERSION
    assert doc["imagePath"] == "../../cases/tooth.png" and doc["imageData"] is None
    assert (doc["imageHeight"], doc["imageWidth"]) == (128, 160)
    assert doc["dentseg"] == {"pixel_spacing_mm": [0.2, 0.25]}
    for s in doc["shapes"]:
        assert list(s) == SHAPE_KEYS and s["flags"] == {} and s["mask"] is None and s["description"] == ""
    kinds = [(s["label"], s["shape_type"]) for s in doc["shapes"]]
    assert kinds.count(("PAB", "polygon")) == len(hole_free_pieces(ring_with_holes_region())) >= 4
    assert {s["group_id"] for s in doc["shapes"] if s["label"] == "PAB"} == {1}   # one object, many shapes
    assert [s["group_id"] for s in doc["shapes"] if s["label"] == "enamel"] == [None]
    apex = next(s for s in doc["shapes"] if s["label"] == "apex")
    assert apex["shape_type"] == "point" and apex["points"] == [[81.0, 12.5]]      # corner convention
    for s in doc["shapes"]:                                                        # every polygon simple
        if s["shape_type"] == "polygon":
            assert Polygon(s["points"]).is_valid and len(s["points"]) >= 3


def test_export_then_import_keeps_regions_holes_landmarks_and_measurements(tmp_path):
    case = write_png_case(tmp_path / "cases")
    before = load_annotation(case)
    export_labelme(collect_cases([case])[0], tmp_path / "lm")
    res = import_labelme([tmp_path / "lm"], out_dir=tmp_path / "back")        # labels name targets: no map
    after = load_annotation(res.cases[0])
    for name in ("PAB", "enamel"):
        a, b = before.region(name), after.region(name)
        assert b.area == pytest.approx(a.area, rel=0.005)
        assert a.symmetric_difference(b).area < 1e-3 * a.area               # same shape, holes included
    assert len(after.region("PAB").geoms) == 2
    assert sum(len(p.interiors) for p in after.region("PAB").geoms) == 2
    for k, p in before.landmarks.items():
        assert after.landmarks[k] == pytest.approx(p, abs=1e-3)
    assert after.pixel_spacing_mm == (0.2, 0.25)                             # from the 'dentseg' key
    m0, m1 = measure(before), measure(after)
    for k, v in m0.values.items():
        if v is not None and abs(v) > 1e-3:
            assert m1.values[k] == pytest.approx(v, rel=0.005), k


def test_dicom_source_gets_an_embedded_8bit_png_labelme_can_show(tmp_path, real_data):
    import shutil
    from dentseg_gui.core.annotation import Annotation, save_annotation
    shutil.copy(real_data / "dicom" / "CT_small.dcm", tmp_path / "ct.dcm")
    ann = Annotation("ct.dcm", 128, 128, (0.66, 0.66), {"PAB": ring_with_holes_region()})
    save_annotation(ann, tmp_path / "ct.dentseg.json")
    res = export_labelme(collect_cases([tmp_path])[0], tmp_path / "lm")
    doc = json.loads(res.written[0].read_text())
    png = cv2.imdecode(np.frombuffer(base64.b64decode(doc["imageData"]), np.uint8), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint8 and png.shape == (128, 128) and "embedded" in " ".join(res.notes)
    # coming back, the DICOM beside it is used (raw intensities, its own spacing)
    back = import_labelme([res.written[0]], out_dir=tmp_path / "back")
    assert load_annotation(back.cases[0]).pixel_spacing_mm == pytest.approx((0.661468, 0.661468))


def test_existing_case_is_kept_unless_overwrite(tmp_path):
    src = _write_labelme5(tmp_path, embed=False)
    args = ([src], {"bone": "PAB"})
    assert import_labelme(*args).cases
    again = import_labelme(*args)
    assert again.cases == [] and "--overwrite" in again.problems[0]
    assert import_labelme(*args, overwrite=True).cases


def test_cli_import_and_export_report_and_exit_codes(tmp_path, capsys):
    src = _write_labelme5(tmp_path, embed=True)
    rc = cli_main(["import", "labelme", str(src), "--map", "bone=PAB", "cej_l=CEJ_labial",
                   "--spacing", "0.2", "--out", str(tmp_path / "cases")])
    out = capsys.readouterr().out
    assert rc == 0 and "imported 1 case" in out and "'caries' (1 shape)" in out
    rc = cli_main(["export", "labelme", str(tmp_path / "cases"), "--out", str(tmp_path / "lm")])
    assert rc == 0 and (tmp_path / "lm" / "scan 01.json").is_file()
    rc = cli_main(["import", "labelme", str(src), "--map", "bone=tooth"])
    assert rc == 2 and "target 'tooth' is none of" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"format": "dentseg-annotation"}')
    rc = cli_main(["import", "labelme", str(tmp_path / "bad.json")])
    assert rc == 2 and "a DentSeg annotation" in capsys.readouterr().err


def test_cancel_stops_between_cases_and_keeps_what_was_written(tmp_path):
    from dentseg_gui.core.interop.coco import export_coco
    for name in ("a", "b", "c"):
        write_png_case(tmp_path / "cases", name)
    cases = collect_cases([tmp_path / "cases"])[0]
    seen = []
    res = export_labelme(cases, tmp_path / "lm", progress=lambda k, n, s: seen.append((k, n)),
                         should_stop=lambda: len(seen) >= 2)
    assert res.cancelled and seen[:2] == [(0, 3), (1, 3)] and len(res.written) == 2
    assert res.exit_code() == 1 and res.lines()[-1] == "cancelled"
    # a COCO file is one file: cancelled, nothing is written
    res = export_coco(cases, tmp_path / "coco.json", should_stop=lambda: True)
    assert res.cancelled and res.written == [] and not (tmp_path / "coco.json").exists()
