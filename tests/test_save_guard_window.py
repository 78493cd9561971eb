"""Save in the window when another program changed the file (needs case_session wiring)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dentseg_gui.core.annotation import annotation_path_for, load_annotation, save_annotation
from dentseg_gui.core.phantom import write_phantom_set
from dentseg_gui.gui import messages


@pytest.mark.parametrize("answer", ["overwrite", "reload", "cancel", "save_as"])
def test_save_asks_when_the_file_changed_on_disk(qtbot, tmp_path, monkeypatch, answer):
    img = write_phantom_set(tmp_path / "c", 1, seed=5)[0]
    from dentseg_gui.gui.main_window import MainWindow
    w = MainWindow(restore_layout=False)
    qtbot.addWidget(w)
    asked = []
    monkeypatch.setattr(messages, "ask_choice", lambda p, title, text, choices, default=None:
                        asked.append(title) or answer)
    other = tmp_path / "elsewhere.dentseg.json"
    monkeypatch.setattr("PySide6.QtWidgets.QFileDialog.getSaveFileName", lambda *a, **k: (str(other), ""))
    try:
        assert w.open_paths([img])
        qtbot.waitUntil(w.is_idle, timeout=30_000)
        doc = w.document
        x, y = doc.annotation.landmarks["apex"]
        doc.set_landmark("apex", (x + 3, y))
        target = annotation_path_for(img)
        theirs = load_annotation(target)
        theirs.landmarks["CEJ_labial"] = (1.0, 1.0)
        save_annotation(theirs, target)
        ok = w.session.save_current()
        assert asked == ["File changed on disk"]
        on_disk = load_annotation(target)
        if answer == "overwrite":
            assert ok and on_disk.landmarks["apex"] == (x + 3, y) and not doc.is_modified()
            assert w.session.save_current() and asked == ["File changed on disk"]   # no second question
        elif answer == "reload":
            assert not ok and on_disk.landmarks["CEJ_labial"] == (1.0, 1.0)
            assert doc.annotation.landmarks["CEJ_labial"] == (1.0, 1.0) and not doc.is_modified()
            doc.undo_stack.undo()
            assert doc.annotation.landmarks["apex"] == (x + 3, y)
        elif answer == "cancel":
            assert not ok and on_disk.landmarks["CEJ_labial"] == (1.0, 1.0) and doc.is_modified()
        else:
            assert ok and load_annotation(other).landmarks["apex"] == (x + 3, y)
            assert on_disk.landmarks["CEJ_labial"] == (1.0, 1.0)
        doc.mark_saved()
    finally:
        w.shutdown()
