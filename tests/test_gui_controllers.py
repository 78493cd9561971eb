"""The window's controllers without the window: CaseSession, PredictionController, ExportController.

Each gets a bare QWidget as the parent of its dialogs and a WorkTracker; signals are
asserted the way the window would mirror them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PySide6.QtWidgets import QWidget

from dentseg_gui.core.annotation import annotation_path_for, load_annotation
from dentseg_gui.core.phantom import write_phantom_set
from dentseg_gui.gui import messages
from dentseg_gui.gui.case_session import CaseSession
from dentseg_gui.gui.cases import STATUS_EDITED, STATUS_SAVED, STATUS_UNANNOTATED
from dentseg_gui.gui.export_controller import ExportController
from dentseg_gui.gui.prediction_controller import PredictionController
from dentseg_gui.gui.work_tracker import WorkTracker


@pytest.fixture
def host(qtbot):
    messages.set_interactive(False)     # no dialog may block a test
    w = QWidget()
    qtbot.addWidget(w)
    yield w
    messages.set_interactive(True)


@pytest.fixture
def parts(host):
    tracker = WorkTracker(host)
    session = CaseSession(host, tracker, autosave=False, parent=host)
    yield tracker, session
    tracker.shutdown()


@pytest.fixture
def folder(tmp_path) -> Path:
    paths = write_phantom_set(tmp_path / "cases", 3, seed=20)
    annotation_path_for(paths[2]).unlink()
    return tmp_path / "cases"


def test_session_opens_a_folder_switches_cases_and_saves(qtbot, parts, folder):
    tracker, session = parts
    changes, rows, summaries = [], [], []
    session.documentChanged.connect(lambda new, old: changes.append((new, old)))
    session.currentRowChanged.connect(rows.append)
    session.summaryChanged.connect(summaries.append)
    with qtbot.waitSignal(session.caseLoaded, timeout=30_000):
        assert session.open_folder(folder)
    assert [e.status for e in session.cases.entries] == [STATUS_SAVED, STATUS_SAVED, STATUS_UNANNOTATED]
    first = session.document
    assert changes == [(first, None)] and rows[-1] == 0 and summaries[-1].startswith("3 cases")
    qtbot.waitUntil(tracker.is_idle)

    # an edit marks the case edited; leaving it is refused while nothing is answered
    # (non-interactive ask_save_changes cancels), so the edit is never lost
    first.set_landmark("apex", (10.0, 10.0))
    assert session.cases.entries[0].status == STATUS_EDITED
    assert not session.open_case(1)
    assert session.document is first
    assert session.save_current()
    assert load_annotation(annotation_path_for(session.cases.entries[0].image_path)).landmarks["apex"] == (10.0, 10.0)
    assert session.cases.entries[0].status == STATUS_SAVED

    with qtbot.waitSignal(session.caseLoaded, timeout=30_000):
        assert session.open_case(2)
    assert changes[-1] == (session.document, first)
    assert session.document.annotation.regions == {} and session.current_row() == 2


def test_session_keeps_the_open_case_when_another_fails_to_load(qtbot, parts, folder, tmp_path):
    tracker, session = parts
    with qtbot.waitSignal(session.caseLoaded, timeout=30_000):
        session.open_folder(folder)
    doc = session.document
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    with qtbot.waitSignal(session.caseLoadFailed, timeout=30_000) as blocker:
        session.open_paths([bad])
    assert "broken.png" in blocker.args[0]
    assert session.document is doc and session.cases.entries[-1].status == "error"


def test_prediction_controller_predicts_the_open_case_as_one_undo_step(qtbot, host, parts, folder):
    tracker, session = parts
    pred = PredictionController(host, session, tracker, parent=host)
    from dentseg_gui.core.phantom import generate_phantom
    session.default_spacing = generate_phantom(22).annotation.pixel_spacing_mm   # a PNG carries none
    with qtbot.waitSignal(session.caseLoaded, timeout=30_000):
        session.open_paths([sorted(folder.glob("case_*"))[-1]])      # the unannotated case
    doc = session.document
    assert doc.annotation.regions == {}
    with qtbot.waitSignal(pred.finished, timeout=120_000) as blocker:
        assert pred.predict_current()
    assert blocker.args == ["ok"]
    assert not doc.region("PAB").is_empty and set(doc.annotation.landmarks) == {"CEJ_labial", "CEJ_palatal", "apex"}
    assert doc.undo_stack.count() == 1
    doc.undo_stack.undo()
    assert doc.region("PAB").is_empty


def test_export_controller_writes_the_csv_of_every_listed_case(qtbot, host, parts, folder, tmp_path):
    tracker, session = parts
    exporter = ExportController(host, session, tracker, overlay_image=lambda: None, parent=host)
    with qtbot.waitSignal(session.caseLoaded, timeout=30_000):
        session.open_folder(folder)
    out = exporter.export_csv(tmp_path / "all.csv", all_cases=True)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["image"] for r in rows] == [e.name for e in session.cases.entries[:2]]   # the third has nothing
    truth = load_annotation(annotation_path_for(session.cases.entries[1].image_path)).measurements
    assert float(rows[1]["pab_area_mm2"]) == pytest.approx(truth["pab_area_mm2"], abs=0.01)


def test_a_model_file_is_checked_when_chosen_not_at_the_next_prediction(host, parts, tmp_path):
    import shutil

    from dentseg_gui.resources import bundled_model_path
    tracker, session = parts
    pred = PredictionController(host, session, tracker, parent=host)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(bytes(range(256)) * 40)
    assert not pred.choose_model_file(junk)
    assert pred.model_path is None                       # the bundled model stays in use
    bare = tmp_path / "mine.pt"                          # weights without their card
    shutil.copy(bundled_model_path(), bare)
    assert pred.choose_model_file(bare)
    assert pred.model_path == str(bare)
    text, tip = pred.model_label()
    assert "mine" in text and "unverified" in text and "unverified" in tip


def test_prediction_refuses_a_case_without_spacing_instead_of_assuming_one(qtbot, host, parts, folder):
    tracker, session = parts
    pred = PredictionController(host, session, tracker, parent=host)
    with qtbot.waitSignal(session.caseLoaded, timeout=30_000):
        session.open_paths([sorted(folder.glob("case_*"))[-1]])      # a PNG, no annotation: no spacing
    assert session.document.annotation.pixel_spacing_mm is None
    assert not pred.predict_current()
    assert not tracker.running("predict") and session.document.annotation.regions == {}
