"""The main window end to end: cases, prompts, autosave + recovery, export, prediction,
and the ``dentseg-gui --screenshot`` entry point.

Message boxes are replaced by a recorder (``Dialogs``) that answers from a
script, so every prompt the user would see is asserted, and no test can hang
on a modal dialog.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from pydicom.pixels import get_decoder
from pydicom.uid import JPEG2000
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QMessageBox

from dentseg_gui.core.annotation import annotation_path_for, load_annotation
from dentseg_gui.core.measurements import KEYS, measure
from dentseg_gui.core.phantom import write_phantom_set
from dentseg_gui.gui import messages
from dentseg_gui.gui.autosave import autosave_path_for
from dentseg_gui.gui.cases import STATUS_EDITED, STATUS_ERROR, STATUS_SAVED, STATUS_UNANNOTATED
from dentseg_gui.gui.report_pdf import count_pdf_pages

B = QMessageBox.StandardButton


class Dialogs:
    """Records every message box; ``answers`` feeds questions in order (default: Discard/No)."""

    def __init__(self, monkeypatch):
        self.shown: list[tuple[str, str, str]] = []
        self.answers: list = []
        self.choices: list = []
        for kind in ("critical", "warning", "information"):
            monkeypatch.setattr(QMessageBox, kind,
                                lambda parent, title, text, *a, k=kind: self.shown.append((k, title, text)))
        monkeypatch.setattr(QMessageBox, "question", self._question)
        monkeypatch.setattr(messages, "ask_choice", self._choice)

    def _question(self, parent, title, text, buttons=None, default=None):
        self.shown.append(("question", title, text))
        if self.answers:
            return self.answers.pop(0)
        return B.Discard if buttons is not None and buttons & B.Discard else B.No

    def _choice(self, parent, title, text, choices, default=None):
        self.shown.append(("choice", title, text))
        return self.choices.pop(0) if self.choices else "cancel"

    def of(self, kind: str) -> list[tuple[str, str, str]]:
        return [d for d in self.shown if d[0] == kind]


@pytest.fixture(scope="module")
def phantom_src(tmp_path_factory) -> list[Path]:
    return write_phantom_set(tmp_path_factory.mktemp("src"), 4, seed=10)


@pytest.fixture
def case_dir(tmp_path, phantom_src) -> Path:
    d = tmp_path / "cases"
    d.mkdir()
    for p in phantom_src:
        (d / p.name).write_bytes(p.read_bytes())
        annotation_path_for(d / p.name).write_bytes(annotation_path_for(p).read_bytes())
    return d


@pytest.fixture
def dialogs(monkeypatch):
    messages.set_interactive(True)
    return Dialogs(monkeypatch)


def make_window(qtbot):
    from dentseg_gui.gui.main_window import MainWindow
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    return w


@pytest.fixture
def window(qtbot, dialogs):
    w = make_window(qtbot)
    yield w
    w.shutdown()


def wait_idle(qtbot, w, timeout=30_000):
    qtbot.waitUntil(w.is_idle, timeout=timeout)


# --------------------------------------------------------------------------- cases


def test_open_folder_lists_cases_with_their_status(qtbot, window, dialogs, case_dir):
    imgs = sorted(case_dir.glob("*.png")) + sorted(case_dir.glob("*.tif"))
    imgs.sort()
    annotation_path_for(imgs[2]).unlink()
    annotation_path_for(imgs[3]).write_text('{"format": "dentseg-annotation"')
    assert window.open_folder(case_dir)
    wait_idle(qtbot, window)
    assert [e.image_path.name for e in window.cases.entries] == [p.name for p in imgs]
    assert [e.status for e in window.cases.entries] == [STATUS_SAVED, STATUS_SAVED,
                                                         STATUS_UNANNOTATED, STATUS_ERROR]
    assert window.case_view.model().rowCount() == 4
    assert window.document.image_path == imgs[0]
    assert "4 cases" in window.case_summary.text()
    truth = measure(load_annotation(annotation_path_for(imgs[0])))
    panel = window.measurement_panel
    assert float(panel.value_text("pab_area_mm2").split()[0]) == pytest.approx(truth.values["pab_area_mm2"], abs=0.06)
    # the case with the broken annotation refuses to open and says why; case 0 stays
    doc0 = window.document
    assert window.open_case(3)
    wait_idle(qtbot, window)
    assert window.document is doc0
    (kind, title, text), = dialogs.of("critical")
    assert annotation_path_for(imgs[3]).name in text and "not valid JSON" in text
    # the recent list and the settings file are in the per-test config folder
    from dentseg_gui.gui.cases import RecentFiles
    assert RecentFiles().paths()[0] == case_dir.resolve()


def test_broken_file_shows_a_message_and_changes_nothing(qtbot, window, dialogs, case_dir, tmp_path):
    assert window.open_folder(case_dir)
    wait_idle(qtbot, window)
    doc = window.document
    n = len(window.cases.entries)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)      # PNG signature, no image
    window.open_paths([broken])
    wait_idle(qtbot, window)
    (kind, title, text), = dialogs.of("critical")
    assert "broken.png" in text and "Traceback" not in text
    assert window.document is doc and not doc.is_modified()
    assert window.current_row() == 0
    assert window.case_view.currentIndex().row() == 0
    assert window.cases.entries[n].status == STATUS_ERROR                # listed as an error
    assert window.cases.entries[0].status == STATUS_SAVED


def test_real_dicom_and_cephalogram_open_and_jpeg2000_says_why_not(qtbot, window, dialogs, real_data):
    window.open_paths([real_data / "dicom" / "CT_small.dcm"])
    wait_idle(qtbot, window)
    doc = window.document
    assert doc.annotation.pixel_spacing_mm == pytest.approx((0.661468, 0.661468), abs=1e-6)
    assert "0.6615" in window.spacing_label.text()
    if not get_decoder(JPEG2000).is_available:       # no JPEG 2000 decoder: a message, nothing lost
        window.open_paths([real_data / "dicom" / "JPEG2000.dcm"])
        wait_idle(qtbot, window)
        (kind, title, text), = dialogs.of("critical")
        assert "JPEG2000.dcm" in text
        assert window.document is doc
    window.open_paths([real_data / "cephalogram" / "B1893L12.jpg"])
    wait_idle(qtbot, window, timeout=60_000)
    big = window.document
    assert big is not doc and big.image.width * big.image.height == 4096 * 5120
    assert big.annotation.pixel_spacing_mm is None
    assert window.measurement_panel.reason_text("pab_area_mm2").startswith("pixel spacing unknown")


# --------------------------------------------------------------------------- prompts, autosave


def test_unsaved_changes_prompt_on_switch_and_close(qtbot, dialogs, case_dir):
    w = make_window(qtbot)
    w.open_folder(case_dir)
    wait_idle(qtbot, w)
    doc = w.document
    apex = doc.annotation.landmarks["apex"]
    doc.set_landmark("apex", (apex[0] + 4.0, apex[1]))
    assert doc.is_modified() and w.cases.entries[0].status == STATUS_EDITED
    # switch: Cancel keeps the case and the edit
    dialogs.answers = [B.Cancel]
    assert not w.open_case(1)
    assert w.document is doc and doc.is_modified() and w.case_view.currentIndex().row() == 0
    # switch: Save writes the file, then the next case opens
    dialogs.answers = [B.Save]
    assert w.open_case(1)
    wait_idle(qtbot, w)
    assert w.document is not doc and w.document.image_path.name == w.cases.entries[1].name
    saved = load_annotation(annotation_path_for(w.cases.entries[0].image_path))
    assert saved.landmarks["apex"] == pytest.approx((apex[0] + 4.0, apex[1]))
    assert saved.measurements["root_length_mm"] == pytest.approx(measure(saved).values["root_length_mm"])
    assert w.cases.entries[0].status == STATUS_SAVED
    # close: Cancel keeps the window open, Discard closes and removes the autosave
    doc1 = w.document
    doc1.set_landmark("apex", None)
    w.autosaver.write_now()
    assert autosave_path_for(doc1.image_path).exists()
    dialogs.answers = [B.Cancel]
    assert not w.close()
    dialogs.answers = [B.Discard]
    assert w.close()
    assert not autosave_path_for(doc1.image_path).exists()
    assert load_annotation(annotation_path_for(doc1.image_path)).landmarks.get("apex") is not None
    questions = [t for k, t, _ in dialogs.shown if k == "question"]
    assert questions == ["Unsaved changes"] * 4


def test_kill_and_recover(qtbot, dialogs, case_dir):
    w1 = make_window(qtbot)
    w1.open_folder(case_dir)
    wait_idle(qtbot, w1)
    doc = w1.document
    image_path = doc.image_path
    on_disk = annotation_path_for(image_path).read_bytes()
    apex = doc.annotation.landmarks["apex"]
    moved = (apex[0] - 6.0, apex[1] + 2.0)
    doc.set_landmark("apex", moved)
    assert w1.autosaver.write_now() == autosave_path_for(image_path)
    # "kill": the window is never closed, nothing is saved; a new session starts
    w1.autosaver.stop()
    w1.hide()
    dialogs.answers = [B.Yes]
    w2 = make_window(qtbot)
    assert w2.offer_recovery()
    wait_idle(qtbot, w2)
    assert [t for k, t, _ in dialogs.shown if k == "question"] == ["Recover unsaved work?"]
    assert "case_0010" in dialogs.shown[-1][2]
    doc2 = w2.document
    assert doc2 is not doc and doc2.image_path == image_path.resolve()
    assert doc2.annotation.landmarks["apex"] == pytest.approx(moved)
    assert doc2.is_modified()                                   # recovered work is unsaved
    assert annotation_path_for(image_path).read_bytes() == on_disk
    assert w2.measurement_panel.value_text("root_length_mm") != "—"
    # the recovery is one undo step on top of the saved version
    assert doc2.undo_stack.count() == 1 and doc2.undo_stack.undoText() == "Recovered unsaved changes"
    doc2.undo_stack.undo()
    assert doc2.annotation.landmarks["apex"] == pytest.approx(apex) and not doc2.is_modified()
    doc2.undo_stack.redo()
    assert doc2.annotation.landmarks["apex"] == pytest.approx(moved) and doc2.is_modified()
    # declining at the next start deletes the autosave
    w2.shutdown()
    dialogs.answers = [B.No]
    w3 = make_window(qtbot)
    assert not w3.offer_recovery()
    assert not autosave_path_for(image_path).exists()
    for w in (w1, w2, w3):
        if w.document is not None:
            w.document.mark_saved()
        w.shutdown()


def test_measurements_follow_every_edit(qtbot, window, case_dir):
    window.open_folder(case_dir)
    wait_idle(qtbot, window)
    doc = window.document
    before = window.measurement_panel.value_text("root_length_mm")
    apex = doc.annotation.landmarks["apex"]
    doc.set_landmark("apex", (apex[0], apex[1] - 20))
    after = window.measurement_panel.value_text("root_length_mm")
    assert after != before
    assert float(after.split()[0]) == pytest.approx(measure(doc.annotation).values["root_length_mm"], abs=0.006)
    doc.undo_stack.undo()
    assert window.measurement_panel.value_text("root_length_mm") == before
    doc.set_region("PAB", None, "clear")
    assert window.measurement_panel.value_text("pab_area_mm2") == "missing"
    assert window.measurement_panel.reason_text("pab_area_mm2") == "no PAB region"
    doc.mark_saved()


# --------------------------------------------------------------------------- export


def test_export_csv_pdf_png(qtbot, window, dialogs, case_dir, tmp_path):
    window.open_folder(case_dir)
    wait_idle(qtbot, window)
    doc = window.document
    apex = doc.annotation.landmarks["apex"]
    doc.set_landmark("apex", (apex[0] + 3, apex[1]))          # unsaved: exported as shown
    out = window.export_csv(tmp_path / "one.csv")
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 1 and rows[0]["image"] == doc.image_path.name
    live = measure(doc.annotation)
    for k in KEYS:
        assert float(rows[0][k]) == pytest.approx(live.values[k], abs=1e-4)
    out = window.export_csv(tmp_path / "all.csv", all_cases=True)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["image"] for r in rows] == [e.name for e in window.cases.entries]
    for r, e in zip(rows[1:], window.cases.entries[1:]):
        truth = measure(load_annotation(annotation_path_for(e.image_path)))
        assert all(float(r[k]) == pytest.approx(truth.values[k], abs=1e-4) for k in KEYS)
    pdf = window.export_pdf(tmp_path / "one.pdf")
    assert not window.is_idle()            # written in a worker: the call returned at once
    wait_idle(qtbot, window)
    assert pdf.read_bytes()[:5] == b"%PDF-" and count_pdf_pages(pdf) == 1
    pdf = window.export_pdf(tmp_path / "now.pdf", wait=True)
    assert count_pdf_pages(pdf) == 1
    pdf = window.export_pdf(tmp_path / "all.pdf", all_cases=True)
    wait_idle(qtbot, window)
    assert count_pdf_pages(pdf) == 4
    png = window.export_png(tmp_path / "one.png")
    img = QImage(str(png))
    assert not img.isNull() and img.width() > 100
    assert dialogs.of("critical") == []
    doc.mark_saved()


# --------------------------------------------------------------------------- prediction


def _model_or_skip() -> Path:
    from dentseg_gui.resources import bundled_model_path
    p = bundled_model_path()
    if not p.is_file():
        pytest.skip(f"bundled model not found at {p} (resources/lunet.pt not built yet)")
    return p


def test_predict_current_case_lands_as_editable_regions(qtbot, window, dialogs, case_dir):
    _model_or_skip()
    target = sorted(p for p in case_dir.glob("case_*") if not p.name.endswith(".json"))[0]
    truth = load_annotation(annotation_path_for(target))
    from dentseg_gui.core.annotation import Annotation, save_annotation
    save_annotation(Annotation(target.name, truth.width, truth.height, truth.pixel_spacing_mm),
                    annotation_path_for(target))      # spacing known, nothing drawn yet
    window.open_paths([target])
    wait_idle(qtbot, window)
    doc = window.document
    assert doc.annotation.regions == {}
    with qtbot.waitSignal(window.predictionFinished, timeout=120_000) as blocker:
        assert window.predict_current()
    assert blocker.args == ["ok"]
    assert not doc.region("PAB").is_empty and not doc.region("enamel").is_empty
    assert doc.prediction is not None
    assert doc.annotation.provenance["regions"]["PAB"]["source"] == "model"
    assert doc.is_modified() and dialogs.of("choice") == []       # nothing to overwrite: no question
    overlap = doc.region("PAB").intersection(truth.region("PAB")).area / truth.region("PAB").area
    assert overlap > 0.5
    # one undo step takes the whole prediction back
    doc.undo_stack.undo()
    assert doc.region("PAB").is_empty and doc.prediction is not None
    doc.mark_saved()


def test_prediction_never_silently_replaces_hand_work(qtbot, window, dialogs, case_dir):
    _model_or_skip()
    window.open_folder(case_dir)
    wait_idle(qtbot, window)
    doc = window.document
    hand = doc.region("PAB")
    dialogs.choices = ["fill_missing"]
    with qtbot.waitSignal(window.predictionFinished, timeout=120_000):
        window.predict_current()
    (kind, title, text), = dialogs.of("choice")
    assert "hand-made" in text
    assert doc.region("PAB").equals(hand)                      # hand work kept
    assert doc.prediction is not None                         # model output kept apart


# --------------------------------------------------------------------------- entry point


def test_screenshot_entry_point_renders_the_demo(qtbot, tmp_path):
    from dentseg_gui.gui import app
    out = tmp_path / "shot.png"
    try:
        code = app.main(["--demo", "--screenshot", str(out), "--timeout", "120"])
    finally:
        messages.uninstall_excepthook()
        messages.set_interactive(True)
    assert code == 0
    img = QImage(str(out))
    assert (img.width(), img.height()) == (1280, 800)
    from dentseg_gui.resources import user_data_dir
    demo = user_data_dir() / "demo" / "demo_case.png"
    assert demo.is_file()
    assert not (user_data_dir() / "autosave").exists() or not any((user_data_dir() / "autosave").iterdir())


class FakePredictor:
    """Stands in for model.predict.Predictor: returns the phantom truth as 'model output'.

    Exercises the window's prediction wiring (worker, batch, merge rules, files,
    statuses, cancel) without torch or a trained network.
    """

    def __init__(self, truth_dir: Path, delay_s: float = 0.0, quality: dict | None = None):
        self.truth_dir = truth_dir
        self.delay_s = delay_s
        self.quality = quality          # the plausibility check's verdict to report
        self.calls = 0

    def predict_image(self, image, spacing=None, should_stop=None):
        import time
        from types import SimpleNamespace
        from dentseg_gui.model.predict import PredictionCancelled
        self.calls += 1
        end = time.monotonic() + self.delay_s
        while time.monotonic() < end:
            if should_stop and should_stop():
                raise PredictionCancelled("prediction cancelled")
            time.sleep(0.01)
        name = Path(image.source).name
        ann = load_annotation(annotation_path_for(self.truth_dir / name))
        ann.provenance = {"source": "LU-Net prediction", "model": "fake-lunet",
                          "model_sha256": "0" * 64,
                          "regions": {n: {"source": "model", "model": "fake-lunet"} for n in ann.regions},
                          "landmarks": {n: {"source": "model", "model": "fake-lunet"} for n in ann.landmarks}}
        if self.quality is not None:
            ann.provenance["quality"] = dict(self.quality)
        return SimpleNamespace(annotation=ann, segmentation=None, compensation=None, timings={})


@pytest.fixture
def fake_predictor(monkeypatch, phantom_src):
    from dentseg_gui.gui import workers
    fake = FakePredictor(phantom_src[0].parent)
    monkeypatch.setattr(workers, "get_predictor", lambda model_path=None, compensation=True: fake)
    return fake


def test_predict_all_fills_files_and_respects_hand_work(qtbot, window, dialogs, case_dir, fake_predictor):
    imgs = sorted(p for p in case_dir.iterdir() if not p.name.endswith(".json"))
    annotation_path_for(imgs[0]).unlink()           # the open case: nothing yet
    annotation_path_for(imgs[1]).unlink()           # a closed case: nothing yet
    hand = load_annotation(annotation_path_for(imgs[2]))
    hand.landmarks.pop("apex")                      # hand work with one landmark missing
    from dentseg_gui.core.annotation import save_annotation
    save_annotation(hand, annotation_path_for(imgs[2]))
    (case_dir / "zz_truncated.png").write_bytes(imgs[0].read_bytes()[:300])   # a bad file in the batch
    window.open_folder(case_dir)
    wait_idle(qtbot, window)
    assert [e.status for e in window.cases.entries][:2] == [STATUS_UNANNOTATED] * 2
    dialogs.choices = ["fill_missing"]
    with qtbot.waitSignal(window.predictionFinished, timeout=30_000) as blocker:
        assert window.predict_all()
    assert blocker.args == ["ok"] and fake_predictor.calls == 4     # the bad file never got there
    (kind, title, text), = dialogs.of("choice")      # asked once for the batch
    assert "2 of 5 cases" in text
    (kind, title, text), = dialogs.of("warning")     # the bad file is named, the others went on
    assert "zz_truncated.png" in text and "Traceback" not in text
    doc = window.document
    assert not doc.region("PAB").is_empty and doc.is_modified()          # open case: unsaved edit
    assert doc.annotation.provenance["regions"]["PAB"]["source"] == "model"
    written = load_annotation(annotation_path_for(imgs[1]))              # closed case: file written
    assert not written.region("PAB").is_empty
    assert written.provenance["regions"]["PAB"]["source"] == "model"
    assert window.cases.entries[1].status == "predicted"
    merged = load_annotation(annotation_path_for(imgs[2]))               # hand work kept, gap filled
    assert merged.region("PAB").equals(hand.region("PAB"))
    assert merged.provenance["regions"]["PAB"] == hand.provenance["regions"]["PAB"]
    assert merged.landmarks["apex"] == pytest.approx(
        load_annotation(annotation_path_for(fake_predictor.truth_dir / imgs[2].name)).landmarks["apex"])
    assert merged.provenance["landmarks"]["apex"]["source"] == "model"
    assert merged.provenance["prediction"]["model"] == "fake-lunet"
    qtbot.waitUntil(lambda: not window.progress.isVisible(), timeout=3000)
    doc.mark_saved()


def test_a_flagged_prediction_is_marked_in_the_list_and_explained_until_reviewed(
        qtbot, window, dialogs, case_dir, fake_predictor):
    fake_predictor.quality = {"level": "doubtful", "reasons": ["apex is a guess (confidence 0.12)"]}
    imgs = sorted(p for p in case_dir.iterdir() if not p.name.endswith(".json"))
    for img in imgs[:2]:
        annotation_path_for(img).unlink()
    window.open_folder(case_dir)
    wait_idle(qtbot, window)
    dialogs.choices = ["fill_missing"]            # the other three cases keep their annotations
    with qtbot.waitSignal(window.predictionFinished, timeout=30_000):
        assert window.predict_all()
    assert "the model is unsure about 2 (marked ⚠)" in window.statusBar().currentMessage()
    open_entry, closed_entry = window.cases.entries[0], window.cases.entries[1]
    # the closed case's file says so, and so does its row (tooltip: why)
    assert load_annotation(annotation_path_for(imgs[1])).provenance["prediction"]["quality"]["level"] == "doubtful"
    assert closed_entry.flag == "doubtful" and "apex is a guess" in closed_entry.detail
    index = window.cases.index(1)
    assert window.cases.data(index).endswith("· predicted ⚠ doubtful")
    # the open case: flagged in the list and explained in the case info
    assert open_entry.flag == "doubtful"
    info = window.measurement_panel.info.text()
    assert "Model output doubtful" in info and "apex is a guess (confidence 0.12)" in info
    # once a person has corrected it, the row is no longer flagged; the info still says
    # what the model's output was flagged for
    doc = window.document
    x, y = doc.annotation.landmarks["apex"]
    doc.set_landmark("apex", (x + 2.0, y))
    assert open_entry.flag == "" and open_entry.status == "edited"
    assert "apex is a guess" in window.measurement_panel.info.text()
    doc.mark_saved()


def test_a_flagged_file_from_the_predict_command_shows_its_verdict_when_opened(qtbot, window, dialogs, case_dir):
    from dentseg_gui.core.annotation import save_annotation
    img = sorted(case_dir.glob("*.png"))[0]
    ann = load_annotation(annotation_path_for(img))
    stamp = {"source": "model", "model": "LU-Net"}
    ann.provenance = {"source": "LU-Net prediction", "regions": {n: dict(stamp) for n in ann.regions},
                      "landmarks": {n: dict(stamp) for n in ann.landmarks},
                      "quality": {"level": "check", "reasons": ["apex confidence 0.55"]}}
    save_annotation(ann, annotation_path_for(img))          # as `dentseg predict` writes it
    window.open_paths([img])
    wait_idle(qtbot, window)
    assert window.cases.entries[0].flag == "check"
    info = window.measurement_panel.info.text()
    assert "Model output to check:" in info and "apex confidence 0.55" in info


def test_prediction_can_be_cancelled(qtbot, window, dialogs, case_dir, fake_predictor):
    fake_predictor.delay_s = 5.0
    window.open_folder(case_dir)
    wait_idle(qtbot, window)
    doc = window.document
    before = doc.region("PAB")
    with qtbot.waitSignal(window.predictionFinished, timeout=10_000) as blocker:
        window.predict_current()
        qtbot.waitUntil(lambda: fake_predictor.calls == 1, timeout=5000)
        assert window.cancel_button.isVisible()
        window.cancel_button.click()
    assert blocker.args == ["cancelled"]
    assert doc.region("PAB").equals(before) and not doc.is_modified() and doc.prediction is None
    assert dialogs.of("critical") == [] and dialogs.of("choice") == []


def test_a_bad_model_file_gives_a_message_naming_it(qtbot, window, dialogs, case_dir, tmp_path):
    pytest.importorskip("torch")
    bad = tmp_path / "broken-model.pt"
    bad.write_bytes(b"not a torch checkpoint")
    window.open_folder(case_dir)
    wait_idle(qtbot, window)
    window.set_model(str(bad))
    with qtbot.waitSignal(window.predictionFinished, timeout=60_000) as blocker:
        window.predict_current()
    assert blocker.args == ["failed"]
    (kind, title, text), = dialogs.of("critical")
    assert "broken-model.pt" in text and "Traceback" not in text
    assert not window.document.is_modified()


def test_window_layout_and_model_choice_are_remembered(qtbot, dialogs, tmp_path):
    import os
    from dentseg_gui.gui.cases import app_settings
    w1 = make_window(qtbot)
    w1.history_dock.hide()
    w1.set_model(str(tmp_path / "mine.pt"))
    assert w1.close()
    assert app_settings().fileName().startswith(os.environ["XDG_CONFIG_HOME"])
    w2 = make_window(qtbot)
    assert w2.history_dock.isHidden() and not w2.measure_dock.isHidden()
    assert w2.model_path == str(tmp_path / "mine.pt") and "mine" in w2.model_label.text()
    w2.shutdown()
