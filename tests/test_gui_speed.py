"""Edits and memory that stay flat: the overlay reuses its items; closed cases are freed."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from dentseg_gui.core.phantom import write_phantom_set
from dentseg_gui.gui import messages
from dentseg_gui.gui.canvas import ImageCanvas
from dentseg_gui.gui.cases import load_case
from dentseg_gui.gui.document import CaseDocument
from dentseg_gui.resources import demo_image_path


@pytest.fixture
def canvas(qtbot):
    c = ImageCanvas()
    qtbot.addWidget(c)
    c.resize(800, 600)
    c.show()
    qtbot.waitExposed(c)
    return c


def _demo_doc() -> CaseDocument:
    loaded = load_case(demo_image_path())
    return CaseDocument(loaded.image, loaded.annotation, loaded.image_path, loaded.annotation_path)


def test_the_overlay_keeps_its_graphics_items_through_50_edits(canvas):
    doc = _demo_doc()
    canvas.set_document(doc)
    scene = canvas.view.scene()
    before = len(scene.items())
    overlay_items = set(map(id, canvas.measurement_overlay.items()))
    labels_before = {t.toPlainText() for t in canvas.measurement_overlay.texts}
    apex = np.array(doc.landmark("apex"))
    pab = doc.region("PAB")
    for i in range(50):
        if i % 2:
            doc.set_landmark("apex", tuple(apex + [2 * np.sin(i), 3 * np.cos(i)]), merge_key="drag")
        else:
            doc.set_region("PAB", pab.buffer(0.3 * (i % 5)), merge_key="grow")
        canvas.view.viewport().repaint()
    assert len(scene.items()) == before
    assert set(map(id, canvas.measurement_overlay.items())) == overlay_items
    # and they show the new state: a thickness label follows the measurement
    ms = doc.measurements()
    texts = {t.toPlainText() for t in canvas.measurement_overlay.texts}
    assert f"50%  {ms.values['pab_thickness_50_mm']:.2f} mm" in texts and texts != labels_before
    # no landmarks -> no frame: the labels hide, nothing is removed
    for name in ("apex", "CEJ_labial"):
        doc.set_landmark(name, None)
    assert canvas.measurement_overlay.texts == [] and len(scene.items()) == before


def test_overlay_labels_honour_the_visibility_switches(canvas):
    canvas.set_document(_demo_doc())
    canvas.set_overlay_visible("labels", False)
    assert not any(t.isVisible() for t in canvas.measurement_overlay.texts)
    canvas.set_overlay_visible("labels", True)
    canvas.set_overlay_visible("thickness", False)
    shown = {t.toPlainText().split()[0] for t in canvas.measurement_overlay.texts if t.isVisible()}
    assert shown and not any(s.endswith("%") for s in shown)


def test_reopening_cases_frees_the_images_of_the_closed_ones(qtbot, tmp_path, monkeypatch):
    """Open two cases alternately 5 times in one window: the images of closed cases die."""
    from PySide6.QtWidgets import QMessageBox

    from dentseg_gui.gui.main_window import MainWindow

    messages.set_interactive(True)
    for kind in ("critical", "warning", "information"):
        monkeypatch.setattr(QMessageBox, kind, lambda *a, **k: None)
    paths = write_phantom_set(tmp_path, 2, seed=41)
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    images: list[weakref.ref] = []
    docs: list[weakref.ref] = []

    def remember(doc):
        images.append(weakref.ref(doc.image.pixels))
        docs.append(weakref.ref(doc))

    w.caseLoaded.connect(remember)
    try:
        with qtbot.waitSignal(w.caseLoaded, timeout=20_000):
            w.open_paths(paths)
        for i in range(9):
            with qtbot.waitSignal(w.caseLoaded, timeout=20_000):
                assert w.open_case((i + 1) % 2, ask_save=False)
        qtbot.wait(50)                      # deleteLater of the closed documents
        gc.collect()
        alive_images = [r for r in images if r() is not None]
        alive_docs = [r for r in docs if r() is not None]
        assert len(images) == 10
        assert len(alive_images) == 1 and alive_images[0]() is w.document.image.pixels
        assert len(alive_docs) == 1
    finally:
        w.shutdown()
