"""The GUI's non-window parts: workers, autosave, case files, the panels, CSV/PDF export.

Everything runs on phantom cases (exact known geometry) or the real files in
/work/shared/data/real, headless (offscreen Qt).
"""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMessageBox

from dentseg_gui.core.annotation import annotation_path_for, load_annotation, save_annotation
from dentseg_gui.core.errors import ImageLoadError
from dentseg_gui.core.measurements import KEYS, measure
from dentseg_gui.core.phantom import generate_phantom, write_phantom_set
from dentseg_gui.gui import autosave, cases, messages
from dentseg_gui.gui.export import collect_items, write_csv_report, write_pdf_items
from dentseg_gui.gui.measurement_panel import MeasurementPanel
from dentseg_gui.gui.report_pdf import count_pdf_pages, render_report_pages, write_pdf_report
from dentseg_gui.gui.workers import LoadWorker, TaskWorker


@pytest.fixture(scope="module")
def phantom_set(tmp_path_factory) -> list[Path]:
    """Four phantom cases (image + exact annotation); tests copy before changing them."""
    return write_phantom_set(tmp_path_factory.mktemp("phantoms"), 4, seed=0)


def copy_cases(paths: list[Path], dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for p in paths:
        q = dest / p.name
        q.write_bytes(p.read_bytes())
        annotation_path_for(q).write_bytes(annotation_path_for(p).read_bytes())
        out.append(q)
    return out


# --------------------------------------------------------------------------- workers


def test_gui_thread_keeps_running_while_a_worker_works(qtbot):
    """A QTimer in the GUI thread keeps firing while a long task runs in a TaskWorker."""
    ticks = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))

    def long_task(ctx):
        total = 0
        for i in range(60):       # ~0.6 s of work that never yields to Qt
            ctx.check()
            time.sleep(0.01)
            total += i
            ctx.progress(i + 1, 60, "working")
        return total

    worker = TaskWorker(long_task, name="fake long task")
    progress = []
    worker.progress.connect(lambda d, t, s: progress.append(d))
    timer.start()
    with qtbot.waitSignal(worker.succeeded, timeout=10_000) as blocker:
        worker.start()
    timer.stop()
    worker.wait()
    assert blocker.args == [sum(range(60))]
    assert worker.outcome == "ok"
    assert len(ticks) > 20, f"GUI timer fired only {len(ticks)} times during the task"
    assert progress[-1] == 60 and progress == sorted(progress)


def test_worker_cancel_and_errors_become_messages(qtbot):
    started = threading.Event()

    def until_stopped(ctx):
        started.set()
        while True:
            ctx.check()
            time.sleep(0.005)

    w = TaskWorker(until_stopped)
    with qtbot.waitSignal(w.cancelled, timeout=5000):
        w.start()
        assert started.wait(5)
        w.cancel()
    w.wait()
    assert w.outcome == "cancelled"

    def bad_file(ctx):
        raise ImageLoadError("scan.png: not a supported image. Convert it to PNG or TIFF")

    w = TaskWorker(bad_file, error_path="scan.png")
    with qtbot.waitSignal(w.failed, timeout=5000) as blocker:
        w.start()
    w.wait()
    assert blocker.args == ["scan.png: not a supported image. Convert it to PNG or TIFF"]

    def bug(ctx):
        return 1 / 0

    w = TaskWorker(bug, error_path="case.png")
    with qtbot.waitSignal(w.failed, timeout=5000) as blocker:
        w.start()
    w.wait()
    text = blocker.args[0]
    assert text.startswith("case.png: an unexpected internal error occurred (ZeroDivisionError")
    assert "Traceback" not in text and "dentseg-gui.log" in text


def test_load_worker_reads_real_dicom_and_reports_a_broken_file(qtbot, tmp_path, real_data):
    w = LoadWorker(real_data / "dicom" / "CT_small.dcm")
    with qtbot.waitSignal(w.succeeded, timeout=15_000) as blocker:
        w.start()
    w.wait()
    loaded = blocker.args[0]
    assert loaded.image.width == 128 and loaded.image.height == 128
    assert loaded.annotation.pixel_spacing_mm == pytest.approx((0.661468, 0.661468), abs=1e-6)
    assert loaded.annotation.regions == {} and loaded.note == ""

    broken = tmp_path / "broken.png"
    broken.write_text("this is not an image")
    w = LoadWorker(broken)
    with qtbot.waitSignal(w.failed, timeout=5000) as blocker:
        w.start()
    w.wait()
    assert "broken.png" in blocker.args[0] and "Traceback" not in blocker.args[0]


def test_load_case_refuses_an_annotation_of_another_image(tmp_path, phantom_set):
    img = copy_cases(phantom_set[:1], tmp_path)[0]
    ann = load_annotation(annotation_path_for(img))
    ann.width += 10
    save_annotation(ann, annotation_path_for(img))
    with pytest.raises(Exception) as exc:
        cases.load_case(img)
    assert "made for an image of" in str(exc.value) and annotation_path_for(img).name in str(exc.value)


# --------------------------------------------------------------------------- cases / autosave


def test_case_files_and_statuses(tmp_path, phantom_set, real_data):
    imgs = copy_cases(phantom_set, tmp_path / "c")
    annotation_path_for(imgs[1]).unlink()
    annotation_path_for(imgs[2]).write_text("{ truncated")
    found = cases.find_images(tmp_path / "c")
    assert [p.name for p in found] == [p.name for p in imgs]      # annotations are not cases
    assert cases.disk_status(imgs[0]) == (cases.STATUS_SAVED, "")
    assert cases.disk_status(imgs[1]) == (cases.STATUS_UNANNOTATED, "")
    status, detail = cases.disk_status(imgs[2])
    assert status == cases.STATUS_ERROR and "not valid JSON" in detail
    dicoms = cases.find_images(real_data / "dicom")
    assert {p.name for p in dicoms} >= {"CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm"}
    assert not any(p.name == "LICENSE" for p in dicoms)


def test_model_only_status_follows_provenance(phantom_set):
    ann = load_annotation(annotation_path_for(phantom_set[0]))
    ann.provenance = {"regions": {n: {"source": "model"} for n in ann.regions},
                      "landmarks": {n: {"source": "model"} for n in ann.landmarks}}
    assert cases.annotation_status(ann) == cases.STATUS_PREDICTED and not cases.has_hand_work(ann)
    ann.provenance["regions"]["PAB"]["edited_by_hand"] = True
    assert cases.annotation_status(ann) == cases.STATUS_SAVED and cases.has_hand_work(ann)


def test_autosave_is_offered_only_when_newer_than_the_saved_file(tmp_path, phantom_set):
    img = copy_cases(phantom_set[:1], tmp_path)[0]
    ann = load_annotation(annotation_path_for(img))
    ann.landmarks["apex"] = (11.0, 12.0)
    path = autosave.write_autosave(ann, img)
    assert path.parent == autosave.autosave_dir()
    rec = autosave.recovery_for(img)
    assert rec is not None and rec.image_path == img.resolve()
    assert rec.load().landmarks["apex"] == (11.0, 12.0)
    assert "autosave" not in rec.load().extra
    assert [r.image_path for r in autosave.pending_recoveries()] == [img.resolve()]
    # the user saved afterwards: the autosave is stale and is cleaned up
    time.sleep(0.01)
    save_annotation(ann, annotation_path_for(img))
    assert autosave.recovery_for(img) is None
    assert autosave.pending_recoveries() == [] and not path.exists()


def test_recent_files_live_in_the_isolated_settings(tmp_path, monkeypatch):
    r = cases.RecentFiles(limit=3)
    for i in range(5):
        (tmp_path / f"f{i}.png").write_bytes(b"x")
        r.add(tmp_path / f"f{i}.png")
    assert [p.name for p in r.paths()] == ["f4.png", "f3.png", "f2.png"]
    import os
    assert cases.app_settings().fileName().startswith(os.environ["XDG_CONFIG_HOME"])


# --------------------------------------------------------------------------- panels


def test_measurement_panel_shows_every_key_and_missing_reasons(qtbot, phantom_set):
    ann = load_annotation(annotation_path_for(phantom_set[0]))
    panel = MeasurementPanel()
    qtbot.addWidget(panel)
    ms = measure(ann)
    panel.set_measurements(ms)
    for k in KEYS:
        assert ms.values[k] is not None
        assert float(panel.value_text(k).split()[0]) == pytest.approx(ms.values[k], abs=0.051)
    del ann.landmarks["apex"]
    ms2 = measure(ann)
    panel.set_measurements(ms2)
    assert panel.value_text("root_length_mm") == "missing"
    assert panel.reason_text("root_length_mm") == "landmark apex not placed"
    assert float(panel.value_text("pab_area_mm2").split()[0]) == pytest.approx(ms2.values["pab_area_mm2"], abs=0.051)
    assert "landmark apex not placed" in panel.status.text()
    tsv = panel.as_tsv().splitlines()
    assert len(tsv) == len(KEYS) + 1 and tsv[1].startswith("root_length_mm\t")


# --------------------------------------------------------------------------- reports


def test_csv_export_has_every_key_equal_to_measure(tmp_path, phantom_set):
    items, skipped = collect_items(phantom_set)
    assert skipped == [] and len(items) == 4
    out = write_csv_report(items, tmp_path / "all.csv")
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["image"] for r in rows] == [p.name for p in phantom_set]
    for row, p in zip(rows, phantom_set):
        ms = measure(load_annotation(annotation_path_for(p)))
        for k in KEYS:
            assert float(row[k]) == pytest.approx(ms.values[k], abs=1e-4), k


def test_pdf_report_one_page_per_case(qtbot, tmp_path, phantom_set):
    case = generate_phantom(1, "standard")
    ann_missing = case.annotation.copy()
    del ann_missing.landmarks["apex"]
    entries = [(case.annotation, case.image, None), (ann_missing, None, None)]
    pdf = write_pdf_report(entries, tmp_path / "r.pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF")
    assert count_pdf_pages(pdf) == 2
    pages = render_report_pages(entries[:1], dpi=60)
    assert len(pages) == 1
    arr = np.frombuffer(pages[0].constBits(), np.uint8).reshape(pages[0].height(), -1)
    assert arr.std() > 20           # text, table and image, not a blank page
    # all cases through the export glue (images read from disk)
    out = write_pdf_items(collect_items(phantom_set)[0], tmp_path / "all.pdf")
    assert count_pdf_pages(out) == 4


def test_cycles_are_collected_on_the_gui_thread_while_a_worker_runs(qtbot):
    """A cycle collection inside a worker can deadlock PySide6 (docs/adr/0005): while a
    worker runs, automatic collection is off and the GUI thread collects; after the last
    worker, automatic collection is back on."""
    import gc

    from dentseg_gui.gui import gui_thread_gc

    assert gc.isenabled()
    on_main = []

    class Cycle:
        def __init__(self):
            self.me = self

        def __del__(self):
            on_main.append(threading.current_thread() is threading.main_thread())

    n = 30_000

    def work(ctx):
        enabled = gc.isenabled()
        for chunk in range(10):       # 3000 cycles per chunk: past the gen-0 threshold (700) each time
            for _ in range(n // 10):
                Cycle()
            time.sleep(0.08)          # the GUI thread's timer gets its turns
        return enabled, len(on_main)

    worker = TaskWorker(work, name="cycles")
    with qtbot.waitSignal(worker.succeeded, timeout=20_000) as blocker:
        worker.start()
    enabled_in_worker, collected_while_running = blocker.args[0]
    qtbot.waitUntil(lambda: gui_thread_gc.collector().running_workers == 0, timeout=5_000)
    assert gc.isenabled()
    gc.collect()
    assert not enabled_in_worker
    assert collected_while_running > 0          # the GUI thread collected during the run
    assert len(on_main) == n and all(on_main)   # ...and only the GUI thread ever did


def test_excepthook_shows_a_message_not_a_traceback(qtbot, monkeypatch):
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text, *a: shown.append((title, text)))
    messages.set_interactive(True)
    messages.install_excepthook()
    try:
        t = threading.Thread(target=lambda: {}["missing key"])
        t.start()
        t.join()
        qtbot.waitUntil(lambda: len(shown) == 1, timeout=3000)
    finally:
        messages.uninstall_excepthook()
    title, text = shown[0]
    assert "unexpected internal error" in text and "KeyError" in text and "Traceback" not in text
    assert messages.log_path().read_text().count("Traceback") >= 1


# --------------------------------------------------------------------------- training


def test_training_panel_trains_off_thread_plots_and_cancels(qtbot, tmp_path, phantom_set):
    """A tiny run on 4 phantoms: curves get points, Cancel stops it, the model lands in
    user_data_dir()/models and resources/ is untouched."""
    pytest.importorskip("torch")
    from dentseg_gui.resources import resources_dir, user_data_dir
    from dentseg_gui.gui.training_panel import TrainingPanel, available_models

    before = sorted(p.name for p in resources_dir().glob("*")) if resources_dir().is_dir() else []
    imgs = copy_cases(phantom_set, tmp_path / "train")
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.set_cases(imgs)
    assert panel.checked_cases() == imgs
    panel.init_combo.setCurrentIndex(panel.init_combo.findData(None))   # from scratch
    panel.epochs.setValue(30)
    panel.name_edit.setText("tiny test model")
    panel.config_overrides = dict(min_samples_per_epoch=4, batch_size=2, crop_size=64,
                                  widths=(8, 16, 32, 64), progress_every=1, patience=100)
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(20)
    assert panel.start()
    assert panel.is_running() and not panel.start_button.isEnabled()
    # wait for the first validated epoch, then cancel
    qtbot.waitUntil(lambda: len(panel.points["val_dice_pab"][0]) >= 1, timeout=60_000)
    with qtbot.waitSignal(panel.worker.finished, timeout=30_000):
        panel.cancel()
    timer.stop()
    assert panel.last_outcome == "cancelled"
    assert len(panel.points["train_loss"][0]) >= 2          # step points + the epoch point
    xs, ys = panel.points["val_dice_pab"]
    assert all(0.0 <= y <= 1.0 for y in ys)
    assert len(xs) < 30                                      # it really stopped early
    model = panel.last_model
    assert model is not None and model.is_file()
    assert model.parent == user_data_dir() / "models" and model.name == "tiny-test-model.pt"
    assert model in [p for _, p in available_models()]
    after = sorted(p.name for p in resources_dir().glob("*")) if resources_dir().is_dir() else []
    assert after == before
    assert panel.start_button.isEnabled() and panel.use_button.isEnabled()
    assert len(ticks) > 10                                   # the GUI thread kept running
