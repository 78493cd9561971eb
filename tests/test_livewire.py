"""Edge-following annotation: the core live-wire on known shapes, and the canvas tool end to end."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest
from shapely.geometry import MultiPolygon, Point, Polygon

from dentseg_gui.core.geometry import dice, geometry_to_mask, largest_polygon
from dentseg_gui.core.image import SliceImage
from dentseg_gui.core.livewire import LiveWire, edge_image
from dentseg_gui.core.phantom import generate_phantom

Qt = QtCore.Qt


def disc_image(n=160, r=50.0, noise=4.0, seed=0):
    yy, xx = np.mgrid[0:n, 0:n]
    img = np.where((xx - 80.0) ** 2 + (yy - 80.0) ** 2 <= r * r, 180.0, 60.0)
    img += np.random.default_rng(seed).normal(0, noise, img.shape)
    return img.astype(np.float32)


def test_four_clicks_on_a_circle_trace_the_circle_not_a_square():
    img = disc_image()
    truth = Point(80, 80).buffer(50, quad_segs=64)
    clicks = [(80 + 50 * np.cos(a), 80 + 50 * np.sin(a)) for a in np.deg2rad([10, 100, 190, 280])]
    wire = LiveWire(edge_image(img))
    traced = wire.outline(clicks)
    m_truth = geometry_to_mask(MultiPolygon([truth]), img.shape)
    d_wire = dice(geometry_to_mask(traced, img.shape), m_truth)
    d_poly = dice(geometry_to_mask(MultiPolygon([Polygon(clicks)]), img.shape), m_truth)
    assert d_wire > 0.97 and d_poly < 0.85
    # straight[k]: the segment that ends at click k is straight (here click 1 -> click 2: a chord)
    chain = wire.chain(clicks, closed=False, straight=[False, False, True, False], smooth=0)
    i1 = int(np.argmin(np.linalg.norm(chain - clicks[1], axis=1)))
    i2 = int(np.argmin(np.linalg.norm(chain - clicks[2], axis=1)))
    seg = chain[i1:i2 + 1]
    d = np.subtract(clicks[2], clicks[1])
    off = np.abs((seg[:, 0] - clicks[1][0]) * d[1] - (seg[:, 1] - clicks[1][1]) * d[0]) / np.hypot(*d)
    assert off.max() < 1e-6


def test_live_wire_beats_the_polygon_with_few_clicks_on_the_enamel():
    """Six clicks around the enamel cap of three phantoms, three click phases each."""
    wire_d, poly_d = [], []
    for seed in (7000, 7001, 7002):
        case = generate_phantom(seed)
        shape = case.image.pixels.shape
        ring = largest_polygon(case.annotation.regions["enamel"]).exterior
        truth = geometry_to_mask(case.annotation.regions["enamel"], shape)
        wire = LiveWire(edge_image(case.image.pixels))
        for phase in (0.1, 0.4, 0.7):
            clicks = np.array([ring.interpolate(s).coords[0] for s in (np.arange(6) + phase) / 6 * ring.length])
            wire_d.append(dice(geometry_to_mask(wire.outline(clicks), shape), truth))
            poly_d.append(dice(geometry_to_mask(MultiPolygon([Polygon(clicks).buffer(0)]), shape), truth))
    assert np.mean(wire_d) > 0.88 and np.mean(wire_d) > np.mean(poly_d) + 0.2


def test_far_apart_points_fall_back_to_a_straight_line():
    wire = LiveWire(np.zeros((3000, 3000), np.uint8))
    p = wire.path((10, 10), (2900, 2900))
    assert np.allclose(p, [(10, 10), (2900, 2900)])


# --------------------------------------------------------------------------- the canvas tool


@pytest.fixture
def canvas(qtbot):
    from dentseg_gui.gui.canvas import ImageCanvas
    c = ImageCanvas()
    qtbot.addWidget(c)
    c.set_histogram_visible(False)
    c.resize(800, 600)
    c.show()
    qtbot.waitExposed(c)
    return c


def _click(canvas, xy, mod=Qt.KeyboardModifier.NoModifier):
    QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, mod,
                     canvas.image_to_widget(float(xy[0]), float(xy[1])))


def test_live_wire_tool_outlines_a_region_in_one_undo_step(canvas):
    from dentseg_gui.gui.document import CaseDocument
    img = disc_image()
    doc = CaseDocument(SliceImage(img, (0.1, 0.1), "disc.png", "png"))
    canvas.set_document(doc)
    QtCore.QCoreApplication.processEvents()
    canvas.fit()
    QTest.keyClick(canvas.view, Qt.Key.Key_L)
    assert canvas.current_tool() == "livewire"
    for a in np.deg2rad([10, 100, 190, 280]):
        _click(canvas, (80 + 50 * np.cos(a), 80 + 50 * np.sin(a)))
    assert doc.region("PAB").is_empty
    QTest.keyClick(canvas.view, Qt.Key.Key_Return)
    truth = geometry_to_mask(MultiPolygon([Point(80, 80).buffer(50, quad_segs=64)]), img.shape)
    assert dice(geometry_to_mask(doc.region("PAB"), img.shape), truth) > 0.95
    assert doc.undo_stack.count() == 1
    doc.undo_stack.undo()
    assert doc.region("PAB").is_empty


def test_palatal_live_wire_redraws_the_palatal_boundary(canvas):
    from dentseg_gui.core.palatal_boundary import extract_palatal_boundary, replace_palatal_boundary
    from dentseg_gui.gui.document import CaseDocument
    case = generate_phantom(4)
    doc = CaseDocument(case.image, case.annotation)
    truth_pab = case.annotation.regions["PAB"]
    # start from a PAB whose palatal side was drawn 8 px too far palatal (a sloppy outline)
    lm = case.annotation.landmarks
    curve = extract_palatal_boundary(truth_pab, lm, case.annotation.pixel_spacing_mm)
    out = np.asarray(curve.coords) + np.array([8.0, 0.0]) * np.sign(lm["CEJ_palatal"][0] - lm["CEJ_labial"][0])
    doc.set_region("PAB", replace_palatal_boundary(truth_pab, curve, out), "sloppy")
    canvas.set_document(doc)
    QtCore.QCoreApplication.processEvents()
    canvas.fit()
    QTest.keyClick(canvas.view, Qt.Key.Key_W)
    assert canvas.current_tool() == "palatal_wire"
    before = dice(geometry_to_mask(doc.region("PAB"), case.image.pixels.shape),
                  geometry_to_mask(truth_pab, case.image.pixels.shape))
    line = case.palatal_boundary
    for s in np.linspace(0, line.length, 6):
        _click(canvas, line.interpolate(s).coords[0])
    QTest.keyClick(canvas.view, Qt.Key.Key_Return)
    after = dice(geometry_to_mask(doc.region("PAB"), case.image.pixels.shape),
                 geometry_to_mask(truth_pab, case.image.pixels.shape))
    assert after > before + 0.03 and after > 0.93
    assert doc.undo_stack.undoText() == "Palatal boundary (live-wire)"
