"""File -> Export / Import functions, run in the app's TaskWorker without the window."""

from __future__ import annotations

import json
import shutil

import pytest

from dentseg_gui.core.annotation import load_annotation
from dentseg_gui.gui.export import collect_items
from dentseg_gui.gui.interop_actions import (EXPORT_FORMATS, IMPORT_FORMATS, dicom_export_possible,
                                             export_task, foreign_labels, import_task, summary)
from dentseg_gui.gui.workers import TaskWorker

from interop_helpers import write_png_case


def _run(qtbot, fn):
    w = TaskWorker(fn, name="interop")
    steps = []
    w.progress.connect(lambda d, t, s: steps.append((d, t, s)))
    with qtbot.waitSignal(w.finished, timeout=30000):
        w.start()
    w.wait()                      # the thread has ended before the QThread object can go
    _keep.append(w)
    return w, steps


_keep: list = []


def test_export_each_format_from_items_with_progress(qtbot, tmp_path, real_data):
    a = write_png_case(tmp_path / "cases", "a")
    write_png_case(tmp_path / "cases", "b", holes=False)
    items, skipped = collect_items([tmp_path / "cases" / "a.png", tmp_path / "cases" / "b.png"])
    assert skipped == []
    w, steps = _run(qtbot, export_task("coco", items, tmp_path / "ds" / "annotations.json"))
    assert w.outcome == "ok" and steps[0] == (0, 2, "a.png") and steps[-1][:2] == (2, 2)
    assert len(json.loads((tmp_path / "ds" / "annotations.json").read_text())["images"]) == 2
    w, _ = _run(qtbot, export_task("labelme", items, tmp_path / "lm"))
    assert w.outcome == "ok" and sorted(p.name for p in w.result.written) == ["a.json", "b.json"]
    ok, why = dicom_export_possible(items)
    assert not ok and "DICOM" in why
    w, _ = _run(qtbot, export_task("dicom", items, tmp_path / "dcm"))
    assert w.outcome == "ok" and w.result.written == [] and len(w.result.problems) == 2
    title, text = summary(w.result, "Export DICOM")
    assert "some failed" in title and "needs a DICOM source" in text

    # a DICOM case: the open case's unsaved edits are what gets exported
    shutil.copy(real_data / "dicom" / "CT_small.dcm", tmp_path / "cases" / "CT_small.dcm")
    from dentseg_gui.core.annotation import Annotation
    from dentseg_gui.gui.export import ExportItem
    ann = load_annotation(a)
    edited = Annotation("CT_small.dcm", 128, 128, None, dict(ann.regions), dict(ann.landmarks))
    item = ExportItem(tmp_path / "cases" / "CT_small.dcm", edited, tmp_path / "cases" / "CT_small.dentseg.json")
    assert dicom_export_possible(items + [item])[0]
    w, _ = _run(qtbot, export_task("dicom", [item], tmp_path / "dcm"))
    assert w.outcome == "ok" and [p.name for p in w.result.written] == ["CT_small_seg.dcm", "CT_small_sr.dcm"]


def test_import_with_a_label_map_and_cancel(qtbot, tmp_path):
    a = write_png_case(tmp_path / "cases", "a")
    items, _ = collect_items([tmp_path / "cases" / "a.png"])
    _run(qtbot, export_task("labelme", items, tmp_path / "lm"))
    doc = json.loads((tmp_path / "lm" / "a.json").read_text())
    for s in doc["shapes"]:
        s["label"] = {"PAB": "bone", "apex": "root tip"}.get(s["label"], s["label"])
    (tmp_path / "lm" / "a.json").write_text(json.dumps(doc))
    labels = foreign_labels("labelme", [tmp_path / "lm"])
    assert labels == {"bone": None, "enamel": "enamel", "CEJ_labial": "CEJ_labial",
                      "CEJ_palatal": "CEJ_palatal", "root tip": None}
    w, _ = _run(qtbot, import_task("labelme", [tmp_path / "lm"], label_map={"bone": "PAB", "root tip": "apex"},
                                   out_dir=tmp_path / "imported"))
    assert w.outcome == "ok" and w.result.cases == [tmp_path / "imported" / "a.dentseg.json"]
    back = load_annotation(w.result.cases[0])
    assert back.region("PAB").area == pytest.approx(load_annotation(a).region("PAB").area, rel=1e-4)
    assert "apex" in back.landmarks
    assert summary(w.result, "Import labelme")[1].startswith("1 case written.")

    w = TaskWorker(import_task("labelme", [tmp_path / "lm"], out_dir=tmp_path / "never"), name="cancelled")
    w.cancel()                                            # pressed before the first file
    with qtbot.waitSignal(w.cancelled, timeout=30000):
        w.start()
    w.wait()
    assert w.result.cancelled and w.result.written == [] and not (tmp_path / "never").exists()


def test_menu_descriptions_cover_every_format():
    assert [f.key for f in EXPORT_FORMATS] == ["labelme", "coco", "dicom"]
    assert [f.key for f in IMPORT_FORMATS] == ["labelme", "coco"]
    assert all(f.menu_text.endswith("…") and f.tooltip for f in EXPORT_FORMATS + IMPORT_FORMATS)
