"""Numbers a clinician can trust (issue 11): no spacing invented, files that find their images,
folders as input, the reports saying where the spacing came from and what was left out."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from dentseg_gui.cli import main
from dentseg_gui.core.annotation import annotation_path_for, load_annotation, save_annotation
from dentseg_gui.core.phantom import generate_phantom, write_phantom_set
from dentseg_gui.resources import bundled_model_path

needs_model = pytest.mark.skipif(not bundled_model_path().is_file(), reason="bundled model missing")


@pytest.fixture
def pngs(tmp_path) -> Path:
    """Two phantom PNGs with no annotation beside them (a PNG carries no spacing)."""
    d = tmp_path / "images"
    for p in write_phantom_set(d, 3, seed=30):
        annotation_path_for(p).unlink()
    for p in d.glob("*.tif"):
        p.unlink()
    return d


@needs_model
def test_predict_without_spacing_refuses_and_names_the_options(pngs, tmp_path, capsys):
    rc = main(["predict", str(next(pngs.glob("*.png"))), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 2 and "--spacing" in out and "--assume-spacing" in out
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.json"))


@needs_model
def test_predict_a_folder_with_spacing_and_the_files_find_their_images(pngs, tmp_path, capsys):
    out = tmp_path / "elsewhere" / "pred"
    rc = main(["predict", str(pngs), "--out", str(out), "--spacing", "0.15"])
    assert rc == 0
    written = sorted(out.glob("*.dentseg.json"))
    assert len(written) == len(list(pngs.glob("*.png"))) >= 2
    ann = load_annotation(written[0])
    assert ann.provenance["spacing_source"] == "user" and ann.pixel_spacing_mm == (0.15, 0.15)
    assert (written[0].parent / ann.image_path).resolve() == (pngs / Path(ann.image_path).name).resolve()
    # the report's spacing columns, and the PDF finds the image from anywhere
    assert main(["measure", *map(str, written), "--csv", str(tmp_path / "m.csv"),
                 "--pdf", str(tmp_path / "m.pdf")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "m.csv", encoding="utf-8")))
    assert rows[0]["spacing_row_mm"] == "0.15" and rows[0]["spacing_source"] == "user"


@needs_model
def test_assumed_spacing_is_marked_everywhere(pngs, tmp_path, capsys):
    img = next(pngs.glob("*.png"))
    assert main(["predict", str(img), "--out", str(tmp_path / "p"), "--assume-spacing", "0.2"]) == 0
    assert "SPACING ASSUMED" in capsys.readouterr().out
    f = tmp_path / "p" / (img.stem + ".dentseg.json")
    assert main(["measure", str(f), "--csv", str(tmp_path / "m.csv"), "--json", str(tmp_path / "m.json")]) == 0
    row = next(csv.DictReader(open(tmp_path / "m.csv", encoding="utf-8")))
    assert row["spacing_source"] == "assumed" and "ASSUMED" in row["warnings"]
    case = json.load(open(tmp_path / "m.json", encoding="utf-8"))["cases"][0]
    assert case["spacing_source"] == "assumed" and any("ASSUMED" in w for w in case["warnings"])


def test_measure_refuses_files_without_spacing_unless_told(tmp_path, capsys):
    ann = generate_phantom(1).annotation
    ann.pixel_spacing_mm = None
    f = save_annotation(ann, tmp_path / "a.dentseg.json")
    assert main(["measure", str(f), "--csv", str(tmp_path / "m.csv")]) == 2
    assert "--spacing" in capsys.readouterr().err and not (tmp_path / "m.csv").exists()
    assert main(["measure", str(f), "--csv", str(tmp_path / "m.csv"), "--spacing", "0.1"]) == 0
    row = next(csv.DictReader(open(tmp_path / "m.csv", encoding="utf-8")))
    assert row["spacing_source"] == "user" and float(row["root_length_mm"]) > 5


def test_the_report_says_when_the_image_is_missing(tmp_path, monkeypatch):
    pytest.importorskip("PySide6")
    from dentseg_gui.gui import report_pdf
    d = tmp_path / "cases"
    (img,) = write_phantom_set(d, 1, seed=40)
    moved = tmp_path / "pdf-only"
    moved.mkdir()
    f = moved / annotation_path_for(img).name
    shutil.copy(annotation_path_for(img), f)            # the annotation moved, its image stayed behind
    ann = load_annotation(f)
    seen = []
    real = report_pdf.write_pdf_report
    monkeypatch.setattr(report_pdf, "write_pdf_report", lambda entries, path, **kw: (seen.extend(entries),
                                                                                        real(entries, path, **kw))[1])
    assert report_pdf.write_pdf_report_for_files([(ann, f)], tmp_path / "r.pdf").exists()
    (_ann, image, _overlay, notes), = seen
    assert image is None and notes and notes[0].startswith("image not found")
    assert "image not found" in report_pdf.case_html(ann, 1, 1, "", 1, 1, None, "now", "", notes)
