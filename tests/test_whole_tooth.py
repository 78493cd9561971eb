"""Whole-tooth summaries: slices of one tooth at several offsets, grouped by source volume and tooth,
with mean/min/max per thickness level and the PAB volume from the plane areas (known values)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon

from dentseg_gui.cli import main
from dentseg_gui.core.annotation import Annotation, save_annotation
from dentseg_gui.core.volume import Plane
from dentseg_gui.core.whole_tooth import summarise_teeth, teeth_csv_path

OFFSETS = (-2.0, -1.0, 0.0, 1.0, 2.0)
WIDTH_PX = (20, 25, 30, 25, 20)          # PAB width per plane at 0.1 mm: 2.0, 2.5, 3.0, 2.5, 2.0 mm


def _slice_ann(offset: float, width_px: int, tooth: int = 11, series: str = "1.2.3", normal=(1, 0, 0)) -> Annotation:
    """A slice whose PAB is a box ``width_px`` wide over the whole root (every level crosses it)."""
    lm = {"CEJ_labial": (100.0, 200.0), "CEJ_palatal": (140.0, 200.0), "apex": (120.0, 100.0)}
    ann = Annotation(f"scan_{tooth}_{offset:+g}mm.dcm", 300, 300, (0.1, 0.1),
                     {"PAB": MultiPolygon([shapely.box(140, 95, 140 + width_px, 205)]),
                      "enamel": MultiPolygon([shapely.box(100, 200, 140, 280)])}, lm)
    row = (0, 0, 1)                           # normals lie in the x-y plane here
    col = np.cross(normal, row)
    plane = Plane.make((offset, 0, 0), row, col, 0.1, (300, 300))
    rec = plane.to_json()
    rec.update({"tooth": tooth, "volume": "../scan"})
    ann.provenance = {"source": "dentseg slice", "plane": rec, "offset_mm": offset, "slab_mm": 0.0,
                      "volume": {"path": "../scan", "series_uid": series, "format": "DICOM series"},
                      "tooth": {"tooth": tooth, "confidence": 0.9}}
    return ann


def _write_tooth(folder, tooth=11, series="1.2.3", widths=WIDTH_PX):
    return [save_annotation(_slice_ann(o, w, tooth, series), folder / f"scan_{tooth}_{o:+g}mm.dentseg.json")
            for o, w in zip(OFFSETS, widths)]


def test_summary_of_five_planes_has_known_mean_min_max_and_volume(tmp_path):
    files = _write_tooth(tmp_path)
    from dentseg_gui.core.annotation import load_annotation
    teeth = summarise_teeth([(load_annotation(f), f) for f in files])
    assert len(teeth) == 1
    t = teeth[0]
    assert t.tooth == 11 and t.offsets == list(OFFSETS)
    for level in (25, 50, 75, 90):
        st = t.stats[f"pab_thickness_{level}_mm"]
        assert st.n == 5
        assert st.mean == pytest.approx(2.4) and st.min == pytest.approx(2.0) and st.max == pytest.approx(3.0)
        assert st.offset_at_max == 0.0 and st.offset_at_min == -2.0
    # areas 11 mm × width: 22, 27.5, 33, 27.5, 22 mm²; trapezoid over 1 mm steps
    assert t.stats["pab_area_mm2"].mean == pytest.approx(26.4)
    assert t.pab_volume_mm3 == pytest.approx((22 + 27.5) / 2 * 2 + (27.5 + 33) / 2 * 2)
    assert t.notes == []


def test_grouping_by_volume_and_tooth_duplicates_and_missing_areas(tmp_path):
    from dentseg_gui.core.annotation import load_annotation
    files = _write_tooth(tmp_path, 11) + _write_tooth(tmp_path, 21) + _write_tooth(tmp_path / "other", 11, "9.9")
    plain = Annotation("plain.png", 300, 300, (0.1, 0.1))
    dup = _slice_ann(0.0, 40)
    no_pab = _slice_ann(3.0, 10)
    no_pab.regions.pop("PAB")
    items = [(load_annotation(f), f) for f in files] + [(plain, "plain.dentseg.json"), (dup, "dup.dentseg.json"),
                                                        (no_pab, "nopab.dentseg.json")]
    teeth = summarise_teeth(items)
    assert [(t.series_uid, t.tooth) for t in teeth] == [("1.2.3", 11), ("1.2.3", 21), ("9.9", 11)]
    t11 = teeth[0]
    assert t11.offsets == [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    assert any("two files for offset +0 mm" in n and "dup.dentseg.json" in n for n in t11.notes)
    assert any("no PAB area on the plane(s) at +3 mm" in n for n in t11.notes)
    assert t11.pab_volume_mm3 == pytest.approx(110.0)          # the +3 mm plane is left out
    assert t11.stats["pab_thickness_50_mm"].n == 5 and t11.stats["pab_thickness_50_mm"].min == 2.0


def test_one_plane_has_no_volume_and_says_why(tmp_path):
    teeth = summarise_teeth([(_slice_ann(0.0, 30), "a.dentseg.json")])
    assert teeth[0].pab_volume_mm3 is None and "at least two planes" in teeth[0].pab_volume_missing


def test_tilted_planes_are_noted():
    items = [(_slice_ann(0.0, 30), "a"), (_slice_ann(1.0, 30, normal=(0.9, 0.43589, 0)), "b")]
    assert any("not parallel" in n for n in summarise_teeth(items)[0].notes)


def test_measure_writes_the_teeth_table_beside_the_case_rows(tmp_path, capsys):
    files = _write_tooth(tmp_path, 11) + _write_tooth(tmp_path, 21, widths=(10, 10, 10, 10, 10))
    plain = save_annotation(Annotation("plain.png", 300, 300, (0.1, 0.1)), tmp_path / "plain.dentseg.json")
    rc = main(["measure", *map(str, files), str(plain), "--csv", str(tmp_path / "m.csv"),
               "--json", str(tmp_path / "m.json")])
    assert rc == 0
    cases = list(csv.DictReader(open(tmp_path / "m.csv", newline="", encoding="utf-8")))
    assert len(cases) == 11 and "tooth" not in cases[0]                    # per-case rows unchanged
    assert teeth_csv_path(tmp_path / "m.csv").name == "m_teeth.csv"
    rows = list(csv.DictReader(open(tmp_path / "m_teeth.csv", newline="", encoding="utf-8")))
    assert [r["tooth"] for r in rows] == ["11", "21"]
    r11 = rows[0]
    assert r11["n_planes"] == "5" and r11["offsets_mm"] == "-2;-1;0;1;2"
    assert r11["volume"] == str(tmp_path.parent / "scan")         # recorded as ../scan beside the slices
    assert float(r11["pab_thickness_50_mm_mean"]) == pytest.approx(2.4)
    assert float(r11["pab_thickness_90_mm_min"]) == pytest.approx(2.0)
    assert float(r11["pab_thickness_25_mm_max"]) == pytest.approx(3.0)
    assert float(r11["pab_volume_mm3"]) == pytest.approx(110.0)
    assert float(rows[1]["pab_thickness_75_mm_mean"]) == pytest.approx(1.0)
    doc = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    assert len(doc["cases"]) == 11 and [t["tooth"] for t in doc["teeth"]] == [11, 21]
    t = doc["teeth"][0]
    assert t["summary"]["pab_thickness_50_mm"] == {"n": 5, "mean": 2.4, "min": 2.0, "max": 3.0,
                                                   "offset_at_min_mm": -2.0, "offset_at_max_mm": 0.0}
    assert t["pab_volume_mm3"] == 110.0 and "trapezoidal" in t["pab_volume_method"]
    assert [p["offset_mm"] for p in t["planes"]] == [-2.0, -1.0, 0.0, 1.0, 2.0]
    out = capsys.readouterr().out
    assert "m_teeth.csv (2 whole-tooth summaries)" in out
    assert main(["measure", *map(str, files[:5])]) == 0
    text = capsys.readouterr().out
    assert "Whole tooth: tooth 11 of scan (5 planes, offsets -2, -1, +0, +1, +2 mm, + = distal)" in text
    assert "PAB volume: 110.0 mm³" in text


def test_measure_without_volume_slices_writes_no_teeth_table(tmp_path):
    plain = save_annotation(Annotation("plain.png", 300, 300, (0.1, 0.1)), tmp_path / "plain.dentseg.json")
    assert main(["measure", str(plain), "--csv", str(tmp_path / "m.csv"), "--json", str(tmp_path / "m.json")]) == 0
    assert not (tmp_path / "m_teeth.csv").exists()
    assert "teeth" not in json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))


def test_pdf_has_a_page_per_tooth_with_the_thickness_plot(tmp_path, qapp):
    from dentseg_gui.core.annotation import load_annotation
    from dentseg_gui.gui.report_pdf import count_pdf_pages, render_report_pages
    from dentseg_gui.gui.report_tooth import LEVEL_COLOURS, thickness_plot
    files = _write_tooth(tmp_path, 11)
    assert main(["measure", *map(str, files), "--pdf", str(tmp_path / "r.pdf")]) == 0
    assert count_pdf_pages(tmp_path / "r.pdf") == 6                      # 5 cases + 1 tooth
    anns = [(load_annotation(f), f) for f in files]
    teeth = summarise_teeth(anns)
    pages = render_report_pages([(a, None, None) for a, _ in anns[:1]], dpi=60, teeth=teeth)
    assert len(pages) == 2
    plot = thickness_plot(teeth[0], 480, 260)
    colours = {plot.pixelColor(x, y).name() for x in range(0, 480, 2) for y in range(0, 260, 2)}
    assert {c.lower() for c in LEVEL_COLOURS} <= colours
    # the 90 % line (drawn last) is highest at offset 0 (3.0 mm) and lowest at the ends (2.0 mm): inside the
    # plot area (left of the legend) its topmost pixel lies in the middle
    from PySide6.QtGui import QColor
    pink = QColor(LEVEL_COLOURS[3])
    ys = [(y, x) for x in range(int(0.78 * 480)) for y in range(plot.height()) if plot.pixelColor(x, y) == pink]
    top_y, top_x = min(ys)
    assert abs(top_x - (0.09 + 0.78) / 2 * 480) < 20


def test_the_apps_export_adds_the_whole_tooth_table_and_page(tmp_path, qapp):
    from dentseg_gui.core.annotation import load_annotation
    from dentseg_gui.gui.export import ExportItem, write_csv_report, write_pdf_items
    from dentseg_gui.gui.report_pdf import count_pdf_pages
    files = _write_tooth(tmp_path, 21)
    items = [ExportItem(tmp_path / f"img{n}.dcm", load_annotation(f), f) for n, f in enumerate(files)]
    write_csv_report(items, tmp_path / "export.csv")
    rows = list(csv.DictReader(open(tmp_path / "export_teeth.csv", newline="", encoding="utf-8")))
    assert len(rows) == 1 and rows[0]["tooth"] == "21" and float(rows[0]["pab_volume_mm3"]) == pytest.approx(110.0)
    write_pdf_items(items, tmp_path / "export.pdf")
    assert count_pdf_pages(tmp_path / "export.pdf") == 6
