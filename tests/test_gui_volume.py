"""The volume view in the app: open a volume, see the views, move the axis, add the slice as a case.

The volume here is synthetic (a tilted bright rod for a tooth) and its loader, detector and
slice writer are stand-ins, so the test is about the views and the controller, not about the
formats or the detection (they have their own tests).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dentseg_gui.core.annotation import Annotation, annotation_path_for, save_annotation
from dentseg_gui.core.axis_edit import plane_angle_deg
from dentseg_gui.core.reslice import reslice
from dentseg_gui.core.volume import ToothAxis, Volume
from dentseg_gui.gui import messages


def rod_volume() -> tuple[Volume, ToothAxis]:
    """A 0.5 mm grid with a bright rod from (0, -2, -8) (incisal) to (0, 2, 12) (apex)."""
    n = 48
    k, j, i = np.mgrid[0:n, 0:n, 0:n]
    lps = np.stack([i, j, k], -1) * 0.5 - 12.0
    a, b = np.array([0.0, -2.0, -8.0]), np.array([0.0, 2.0, 12.0])
    d = (b - a) / np.linalg.norm(b - a)
    t = np.clip((lps - a) @ d, 0, np.linalg.norm(b - a))
    dist = np.linalg.norm(lps - (a + t[..., None] * d), axis=-1)
    vox = np.where(dist < 3.0, 1800, -900).astype(np.int16)
    vol = Volume(vox, origin=(-12, -12, -12), directions=np.eye(3), spacing=(0.5, 0.5, 0.5),
                 meta={"modality": "CT"})
    axis = ToothAxis(21, incisal=a, cej=a + 0.4 * (b - a), apex=b, mesiodistal=np.array([1.0, 0, 0]),
                     labial=np.cross(d, [1.0, 0, 0]) * -1, confidence=0.9)
    return vol, axis


def png_slice_writer(volume, axis, out_dir, *, offset_mm, slab_mm, spacing_mm, stem):
    """Stand-in writer: the resliced plane as a PNG with its spacing and plane in the annotation."""
    from dentseg_gui.core.volume import plane_for_tooth
    plane = plane_for_tooth(axis, spacing_mm, (24.0, 24.0), offset_mm)
    img = reslice(volume, plane, slab_mm=slab_mm)
    path = Path(out_dir) / (f"{stem}_{axis.tooth}.png" if not offset_mm else f"{stem}_{axis.tooth}_{offset_mm:+g}mm.png")
    cv2.imwrite(str(path), np.clip((img + 1000) / 12, 0, 255).astype(np.uint8))
    ann = Annotation(path.name, plane.shape[1], plane.shape[0], plane.spacing,
                     provenance={"plane": plane.to_json(), "tooth": axis.to_json()})
    save_annotation(ann, annotation_path_for(path))
    return path


@pytest.fixture
def window(qtbot, tmp_path):
    from dentseg_gui.gui.main_window import MainWindow
    messages.set_interactive(False)
    w = MainWindow(restore_layout=False, autosave=False)
    qtbot.addWidget(w)
    vol, axis = rod_volume()
    w.volume.loader = lambda path, progress=None, should_stop=None: vol
    w.volume.detector = lambda v, at=None, teeth=(11, 21), progress=None, should_stop=None: [axis]
    w.volume.slice_writer = png_slice_writer
    w.resize(1280, 800)
    w.show()
    yield w
    w.shutdown()
    messages.set_interactive(True)


def test_open_a_volume_shows_three_views_and_the_tooth(qtbot, window, tmp_path):
    src = tmp_path / "scan.nii.gz"
    src.write_bytes(b"")
    with qtbot.waitSignal(window.volume.volumeOpened, timeout=20_000):
        assert window.open_volume(src)
    view = window.volume_view
    assert window.tabs.currentWidget() is view
    assert view.axial.image.image is not None and view.side.image.image is not None
    ob = view.oblique.image.image
    assert ob is not None and ob.shape == (96, 96)          # 48 mm at the finest spacing (0.5 mm)
    # the tooth's plane contains the rod: bright along the axis from the incisal end to the apex,
    # apex up (smaller row), dark beside it
    plane = view.oblique.plane
    (xi, yi), (xa, ya) = plane.lps_to_pixel(np.array([window.volume.axis.incisal, window.volume.axis.apex]))
    assert ya < yi and abs(xa - 47.5) < 0.01 and abs(xi - 47.5) < 0.01
    assert (ob[int(ya) + 2:int(yi) - 1, 44:52] > 500).all()
    assert (ob[int(ya) + 2:int(yi) - 1, 30:36] < 0).all()
    assert view.tooth_combo.count() == 1 and view.tooth_combo.itemData(0) == 21
    assert view.axial.handles["apex"].isVisible() and len(view.axial.labels) == 1
    window.grab().save(str(tmp_path / "volume.png"))


def test_dragging_a_handle_moves_the_axis_as_one_undo_step(qtbot, window, tmp_path):
    with qtbot.waitSignal(window.volume.volumeOpened, timeout=20_000):
        window.open_volume(tmp_path)
    view, ctl = window.volume_view, window.volume
    before = ctl.axis
    h = view.side.handles["apex"]                 # sagittal: drag the apex 3 mm posterior
    p = h.pos()
    step = view.side.plane.spacing[1]
    for k in range(1, 7):
        h.setPos(p.x() + k * 1.0 / step / 2, p.y())   # 6 moves of 0.5 mm: previews only
    assert ctl.axis is before and ctl.undo_stack.count() == 0
    h.sigPositionChangeFinished.emit(h)
    after = ctl.axis
    assert ctl.undo_stack.count() == 1
    assert after.apex[1] - before.apex[1] == pytest.approx(3.0, abs=0.3)     # posterior (+y)
    assert np.allclose(after.incisal, before.incisal)
    window.tabs.setCurrentWidget(view)
    window.undo_group.undo()
    assert np.allclose(ctl.axis.apex, before.apex)
    view.rotation.setValue(10.0)
    assert plane_angle_deg(ctl.axis, before) == pytest.approx(10.0, abs=0.01)
    assert ctl.undo_stack.count() == 1                 # the redo step was replaced by the rotation


def test_measure_this_slice_adds_a_case_with_spacing_and_plane(qtbot, window, tmp_path):
    with qtbot.waitSignal(window.volume.volumeOpened, timeout=20_000):
        window.open_volume(tmp_path / "series")
    with qtbot.waitSignal(window.caseLoaded, timeout=20_000):
        window.volume_view.measure_button.click()
    doc = window.document
    assert doc.image_path.name == "series_21.png"
    assert doc.annotation.pixel_spacing_mm == pytest.approx((0.5, 0.5))
    assert doc.annotation.provenance["plane"]["spacing_mm"] == [0.5, 0.5]
    assert window.tabs.currentWidget() is window.canvas
    assert [e.name for e in window.cases.entries] == ["series_21.png"]


def test_a_dicom_series_opens_and_its_slice_becomes_a_dicom_case(qtbot, window, tmp_path):
    """Real loader and slice writer: a series on disk in, a DICOM slice case with its plane out."""
    from dentseg_gui.core.volume_io import write_dicom_series
    from dentseg_gui.gui.volume_controller import default_loader, default_slice_writer
    vol, axis = rod_volume()
    series = tmp_path / "CBCT_0001"
    write_dicom_series(vol, series, series_description="rod")
    window.volume.loader = default_loader
    window.volume.slice_writer = default_slice_writer
    with qtbot.waitSignal(window.volume.volumeOpened, timeout=30_000):
        window.open_volume(series)
    assert window.volume.volume.shape == vol.shape
    with qtbot.waitSignal(window.caseLoaded, timeout=30_000):
        window.volume_view.measure_button.click()
    doc = window.document
    assert doc.image_path == tmp_path / "CBCT_0001_dentseg" / "CBCT_0001_21.dcm"
    assert doc.image.kind == "dicom" and doc.annotation.pixel_spacing_mm == pytest.approx((0.5, 0.5))
    plane = doc.annotation.provenance["plane"]
    assert plane["spacing_mm"] == [0.5, 0.5] and doc.annotation.provenance["tooth"]["tooth"] == 21
    # the slice shows the rod along its middle column: its length plus the rounded incisal end
    # (the apex end is cut by the top of the volume)
    mid = doc.image.pixels[:, doc.image.width // 2]
    assert (mid > 500).sum() * 0.5 == pytest.approx(np.linalg.norm(axis.apex - axis.incisal) + 3.0, abs=1.5)


def test_measure_several_planes_of_the_tooth(qtbot, window, tmp_path):
    with qtbot.waitSignal(window.volume.volumeOpened, timeout=20_000):
        window.open_volume(tmp_path / "series")
    view = window.volume_view
    view.offsets.setText("1, -1, 0")
    assert view.offsets_mm() == (-1.0, 0.0, 1.0)
    with qtbot.waitSignal(window.caseLoaded, timeout=20_000):
        view.measure_button.click()
    assert len(window.cases.entries) == 3
    view.offsets.setText("0, twelve")
    assert not view._measure(None)


@pytest.fixture(scope="module")
def phantom_series(tmp_path_factory):
    """A real phantom CBCT volume (anterior dentition, noise) written as a DICOM series, with its truth."""
    from dentseg_gui.core.phantom.volume_files import write_phantom_volumes
    out = tmp_path_factory.mktemp("phantom_volume")
    (series,) = write_phantom_volumes(out, 1, seed=7003, spacing_mm=0.4)
    import json
    return series, json.loads((out / "volume_7003.truth.json").read_text())


def test_a_phantom_scan_end_to_end_finds_both_incisors_and_measures_them(qtbot, window, phantom_series):
    """Nothing stands in: DICOM series -> detection -> both central slices as DICOM cases ->
    LU-Net prediction on one, whose root length agrees with the phantom's exact truth."""
    from dentseg_gui.gui.volume_controller import default_detector, default_loader, default_slice_writer
    series, truth = phantom_series
    window.volume.loader, window.volume.detector = default_loader, default_detector
    window.volume.slice_writer = default_slice_writer
    with qtbot.waitSignal(window.volume.volumeOpened, timeout=60_000):
        assert window.open_volume(series)
    found = window.volume.teeth
    assert sorted(found) == [11, 21]
    for n in (11, 21):
        true_cej, true_apex = (np.array(truth["teeth"][str(n)][k]) for k in ("cej_mm", "apex_mm"))
        d = true_apex - true_cej
        axis_dir = (found[n].apex - found[n].cej) / np.linalg.norm(found[n].apex - found[n].cej)
        assert np.degrees(np.arccos(abs(float(axis_dir @ d) / np.linalg.norm(d)))) < 3.0
        # the found axis passes within 0.5 mm of the true CEJ midpoint
        off = true_cej - found[n].cej
        assert np.linalg.norm(off - (off @ axis_dir) * axis_dir) < 0.5
    view = window.volume_view
    assert view.measure_both_button.isEnabled()
    with qtbot.waitSignal(window.caseLoaded, timeout=30_000):
        view.measure_both_button.click()
    names = sorted(e.name for e in window.cases.entries)
    assert names == ["volume_7003_11.dcm", "volume_7003_21.dcm"]
    doc = window.document
    assert doc.image.kind == "dicom" and doc.annotation.pixel_spacing_mm == pytest.approx((0.4, 0.4))
    if not _bundled_model():
        pytest.skip("bundled model absent")
    with qtbot.waitSignal(window.predictionFinished, timeout=120_000):
        assert window.predict_current()
    tooth = doc.annotation.provenance["tooth"]["tooth"]
    true_root = truth["slices"][str(tooth)]["annotation"]["measurements"]["root_length_mm"]
    assert doc.measurements().get("root_length_mm") == pytest.approx(true_root, abs=0.8)
    assert window.save_current()


def _bundled_model() -> bool:
    from dentseg_gui.resources import bundled_model_path
    return bundled_model_path().is_file()
