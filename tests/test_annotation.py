"""Annotation files: round trip, validation messages, atomic save; mask <-> polygon."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon

from dentseg_gui.core import atomic
from dentseg_gui.core.annotation import (Annotation, annotation_path_for, load_annotation,
                                         save_annotation)
from dentseg_gui.core.errors import AnnotationError
from dentseg_gui.core.geometry import (dice, geometry_to_mask, mask_to_geometry,
                                       probability_to_geometry)


def _sample() -> Annotation:
    pab = Polygon([(10, 10), (40, 12), (38, 60), (12, 55)], holes=[[(20, 20), (25, 20), (25, 30), (20, 30)]])
    enamel = MultiPolygon([shapely.box(50, 50, 70, 80), shapely.box(80, 50, 90, 60)])
    return Annotation("case01.png", 384, 384, (0.15, 0.2), {"PAB": MultiPolygon([pab]), "enamel": enamel},
                      {"CEJ_labial": (55.5, 48.25), "CEJ_palatal": (88.0, 49.0), "apex": (70.0, 5.0)},
                      {"pab_area_mm2": 41.2}, {}, {"PAB": {"source": "manual"}},
                      {"future_key": {"kept": True}})


def test_round_trip_keeps_everything(tmp_path):
    ann = _sample()
    p = save_annotation(ann, tmp_path / "case01.dentseg.json")
    back = load_annotation(p)
    assert back.image_path == "case01.png" and (back.width, back.height) == (384, 384)
    assert back.pixel_spacing_mm == (0.15, 0.2)
    for k in ("PAB", "enamel"):
        assert back.regions[k].symmetric_difference(ann.regions[k]).area < 1e-6
    assert back.regions["PAB"].area == pytest.approx(ann.regions["PAB"].area)
    assert back.landmarks == ann.landmarks
    assert back.extra == {"future_key": {"kept": True}}
    assert back.provenance == {"PAB": {"source": "manual"}}
    raw = json.loads(p.read_text(encoding="utf-8"))
    assert raw["format"] == "dentseg-annotation" and raw["version"] == 1
    assert raw["regions"]["PAB"]["type"] == "Polygon"
    assert raw["regions"]["enamel"]["type"] == "MultiPolygon"


def test_annotation_path_is_beside_the_image(tmp_path):
    assert annotation_path_for(tmp_path / "case01.png") == tmp_path / "case01.dentseg.json"
    assert annotation_path_for("a/b/scan.dcm").name == "scan.dentseg.json"


def _write(tmp_path, obj, name="bad.dentseg.json"):
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj), encoding="utf-8")
    return p


def _valid_dict():
    return _sample().to_json_dict()


BAD_FILES = [
    ("empty file", "", "empty"),
    ("truncated json", '{"format": "dentseg-annotation", "version": 1, "image": {"pa', "not valid JSON"),
    ("not an object", "[1, 2]", "JSON object"),
    ("wrong format", {**_valid_dict(), "format": "labelme"}, "field 'format'"),
    ("newer version", {**_valid_dict(), "version": 9}, "newer than this DentSeg"),
    ("missing image", {k: v for k, v in _valid_dict().items() if k != "image"}, "field 'image'"),
    ("negative width", {**_valid_dict(), "image": {"path": "a.png", "width": -3, "height": 5}}, "image.width"),
    ("bad spacing", {**_valid_dict(), "pixel_spacing_mm": [0.1]}, "pixel_spacing_mm"),
    ("zero spacing", {**_valid_dict(), "pixel_spacing_mm": [0, 0.1]}, "pixel_spacing_mm"),
    ("region type", {**_valid_dict(), "regions": {"PAB": {"type": "Point", "coordinates": [1, 2]}}},
     "regions.PAB.type"),
    ("short ring", {**_valid_dict(), "regions": {"PAB": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]}}},
     "regions.PAB.coordinates[0]"),
    ("non-numeric vertex", {**_valid_dict(), "regions": {"PAB": {"type": "Polygon",
     "coordinates": [[[0, 0], [1, "x"], [1, 1], [0, 0]]]}}}, "regions.PAB.coordinates[0][1]"),
    ("landmark", {**_valid_dict(), "landmarks": {"apex": [1]}}, "landmarks.apex"),
    ("measurement", {**_valid_dict(), "measurements": {"pab_area_mm2": "big"}}, "measurements.pab_area_mm2"),
]


@pytest.mark.parametrize("content, phrase", [(c, p) for _, c, p in BAD_FILES], ids=[n for n, _, _ in BAD_FILES])
def test_bad_annotation_files_name_the_problem(tmp_path, content, phrase):
    p = _write(tmp_path, content)
    with pytest.raises(AnnotationError) as ei:
        load_annotation(p)
    assert phrase in str(ei.value)
    assert "bad.dentseg.json" in str(ei.value)


def test_missing_file(tmp_path):
    with pytest.raises(AnnotationError, match="file not found"):
        load_annotation(tmp_path / "nope.dentseg.json")


def test_crash_during_save_keeps_the_old_file(tmp_path, monkeypatch):
    p = save_annotation(_sample(), tmp_path / "c.dentseg.json")
    before = p.read_bytes()

    def crash(*a, **k):
        raise OSError("disk yanked")

    monkeypatch.setattr(atomic.os, "replace", crash)
    ann = _sample()
    ann.landmarks["apex"] = (1.0, 2.0)
    with pytest.raises(OSError):
        save_annotation(ann, p)
    assert p.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["c.dentseg.json"]  # no temp file left behind


# ------------------------------------------------------------------ mask <-> polygon

def test_mask_to_geometry_is_exact():
    rng = np.random.default_rng(0)
    m = np.zeros((60, 70), bool)
    m[10:30, 5:25] = True
    m[15:20, 10:15] = False       # hole
    m[40:55, 40:66] = True        # second component
    m[45, 50] = False
    m |= rng.random(m.shape) > 0.97   # specks, diagonal neighbours
    g = mask_to_geometry(m)
    assert g.is_valid
    assert g.area == pytest.approx(m.sum())
    assert np.array_equal(geometry_to_mask(g, m.shape), m)


def test_pixel_centre_convention():
    # the square covering pixels rows 2..4, cols 3..6 has corners at half-integers
    g = mask_to_geometry(np.pad(np.ones((3, 4), bool), ((2, 5), (3, 3))))
    assert g.bounds == (2.5, 1.5, 6.5, 4.5)


def test_probability_contour_is_subpixel():
    yy, xx = np.mgrid[0:80, 0:80]
    r = np.hypot(xx - 40.3, yy - 39.6)
    prob = np.clip(20.5 - r + 0.5, 0, 1)   # soft disc radius ~20.5 px
    g = probability_to_geometry(prob)
    assert g.area == pytest.approx(np.pi * 20.5 ** 2, rel=0.02)
    assert g.centroid.x == pytest.approx(40.3, abs=0.1)
    assert g.centroid.y == pytest.approx(39.6, abs=0.1)


def test_rasterise_then_polygonise_round_trip_on_smooth_shapes():
    poly = shapely.Point(50.3, 40.7).buffer(22.2).difference(shapely.Point(55, 45).buffer(6))
    m = geometry_to_mask(poly, (100, 100))
    assert abs(m.sum() - poly.area) / poly.area < 0.02
    g = mask_to_geometry(m)
    assert dice(geometry_to_mask(g, m.shape), m) == 1.0


def test_saving_an_unchanged_annotation_twice_writes_identical_files(tmp_path):
    a = save_annotation(_sample(), tmp_path / "a.dentseg.json")
    b = save_annotation(load_annotation(a), tmp_path / "b.dentseg.json")
    c = save_annotation(load_annotation(b), tmp_path / "c.dentseg.json")
    assert b.read_bytes() == c.read_bytes()


def test_saved_files_get_normal_permissions(tmp_path):
    p = save_annotation(_sample(), tmp_path / "p.dentseg.json")
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask
    os.chmod(p, 0o640)
    save_annotation(_sample(), p)
    assert p.stat().st_mode & 0o777 == 0o640
