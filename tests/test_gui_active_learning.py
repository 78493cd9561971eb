"""Active learning in the window (pytest-qt): Annotate next opens the neediest unannotated case;
after a fine-tune the comparison dialog's choice sets the folder's model, which persists in a new
window and never applies to another folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from dentseg_gui.core.annotation import Annotation, annotation_path_for, load_annotation, save_annotation
from dentseg_gui.core.phantom import generate_phantom, write_phantom_set
from dentseg_gui.model.model_file import card_path_for
from dentseg_gui.resources import bundled_model_card_path, bundled_model_path

pytestmark = pytest.mark.skipif(not bundled_model_path().is_file(), reason="bundled model absent")


def make_window(qtbot):
    from dentseg_gui.gui.main_window import MainWindow
    w = MainWindow(interactive=False, restore_layout=False, autosave=False)
    qtbot.addWidget(w)
    w.show()
    return w


def open_and_settle(qtbot, w, folder: Path) -> None:
    """Open ``folder`` in ``w`` and wait until its first case is shown and nothing runs."""
    assert w.open_folder(folder)
    qtbot.waitUntil(lambda: w.document is not None and w.is_idle(), timeout=20_000)


def strip_annotation(img: Path) -> None:
    """Keep only the pixel spacing: the case counts as unannotated (nothing drawn)."""
    ann = load_annotation(annotation_path_for(img))
    save_annotation(Annotation(image_path=img.name, width=ann.width, height=ann.height,
                               pixel_spacing_mm=ann.pixel_spacing_mm), annotation_path_for(img))


def write_case(folder: Path, name: str, seed: int, style: str, noise: float = 0.0) -> Path:
    case = generate_phantom(seed, style)
    px = case.image.normalized() * 255.0
    if noise:
        px = px + np.random.default_rng(seed).normal(0, noise, px.shape)
    p = folder / f"{name}.png"
    cv2.imwrite(str(p), np.clip(px, 0, 255).astype(np.uint8))
    save_annotation(Annotation(image_path=p.name, width=case.image.width, height=case.image.height,
                               pixel_spacing_mm=case.image.spacing_mm), annotation_path_for(p))
    return p


def test_annotate_next_ranks_the_folder_and_opens_the_neediest_unannotated_case(qtbot, tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    annotated = write_phantom_set(folder, 1, seed=200)                 # a human annotation: not ranked
    clean = write_case(folder, "b_clean", 100, "standard")
    hard = write_case(folder, "c_other_site", 100, "site2")
    # noise 140: the bundled v3 finds noise 90 typical; named to sort after b_clean, the case the
    # folder opens on, so that the neediest case is not the open one (which Annotate next skips)
    noisy = write_case(folder, "d_noisy", 101, "standard", noise=140)
    w = make_window(qtbot)
    try:
        open_and_settle(qtbot, w, folder)
        with qtbot.waitSignal(w.active.rankingFinished, timeout=60_000) as sig:
            w.commands.annotate_next.trigger()
        assert sig.args == ["ok"]
        ranked = [r.image_path for r in w.active.ranking]
        assert set(ranked) == {clean, hard, noisy} and annotated[0] not in ranked
        assert set(ranked[:2]) == {hard, noisy} and ranked[-1] == clean
        qtbot.waitUntil(lambda: w.document is not None and w.document.image_path == ranked[0] and w.is_idle(),
                        timeout=20_000)
        # the dock shows the ranking with the reason in words
        table = w.need_panel.table
        assert w.need_dock.isVisible() and table.rowCount() == 3
        from dentseg_gui.gui.need_panel import COL_CASE, COL_NEED, REASON_ROLE
        assert table.item(0, COL_CASE).text() == f"{ranked[0].name}\nviews disagree"
        assert table.item(0, COL_CASE).data(REASON_ROLE) == "views disagree"
        assert float(table.item(0, COL_NEED).text()) > float(table.item(2, COL_NEED).text())
        # again: no new ranking, the next case (the open one is skipped)
        w.commands.annotate_next.trigger()
        assert not w.active.is_running()
        qtbot.waitUntil(lambda: w.document.image_path == ranked[1] and w.is_idle(), timeout=20_000)
        # a click in the table opens that case
        w.need_panel._open_row(2)
        qtbot.waitUntil(lambda: w.document.image_path == ranked[2] and w.is_idle(), timeout=20_000)
    finally:
        w.shutdown()


def fake_trained_model(dest: Path) -> Path:
    """A verified model set standing for a fine-tune's output (the bundled weights, own card)."""
    dest.mkdir(parents=True, exist_ok=True)
    pt = dest / "lunet-site.pt"
    shutil.copyfile(bundled_model_path(), pt)
    card = json.loads(bundled_model_card_path().read_text())
    card.pop("onnx", None)
    card.update(name="lunet-site", weights_file=pt.name)
    card_path_for(pt).write_text(json.dumps(card))
    return pt


def test_adopting_the_new_model_sets_the_folders_model_and_persists_in_a_new_window(qtbot, tmp_path):
    from dentseg_gui.model.model_versions import describe_training_cases

    site, other = tmp_path / "site", tmp_path / "other"
    cases = write_phantom_set(site, 3, seed=300)
    other_cases = write_phantom_set(other, 1, seed=400)
    model = fake_trained_model(tmp_path / "models")
    w = make_window(qtbot)
    try:
        open_and_settle(qtbot, w, site)
        assert w.prediction.model_for(cases[0]) is None                     # the app default: bundled
        info = {"model_path": str(model), "outcome": "completed", "init": "bundled",
                "init_label": "Bundled LU-Net (fine-tune)", "cases": describe_training_cases(cases[:1]),
                "config": {"epochs": 1}}
        with qtbot.waitSignal(w.active.comparisonShown, timeout=60_000) as sig:
            w.training_panel.runFinished.emit(info)
        dlg = sig.args[0]
        rows = {dlg.table.item(i, 0).text(): (dlg.table.item(i, 1).text(), dlg.table.item(i, 2).text())
                for i in range(dlg.table.rowCount())}
        assert rows["Cases compared"] == ("2", "2")                           # 3 annotated - 1 trained on
        assert float(rows["Dice PAB"][1]) > 0.85 and rows["Dice PAB"][0] == rows["Dice PAB"][1]
        assert "lunet-site" in dlg.table.horizontalHeaderItem(2).text()
        version = w.active.last_version
        with qtbot.waitSignal(w.active.versionChosen, timeout=5000):
            dlg.adopt_button.click()
        assert w.prediction.model_for(cases[0]) == str(version.model_path)
        assert w.prediction.model_for(other_cases[0]) is None                # another folder: untouched
        assert "(this folder)" in w.model_label.text()
        ev = w.prediction.registry().get(version.id).evaluation
        assert ev["decision"] == "adopt" and ev["n_compared"] == 2 and ev["excluded_training"] == ["case_0300"]
        # Model › Versions lists it, checked
        w.active.fill_versions_menu(w.commands.versions_menu)
        checked = [a.text() for a in w.commands.versions_menu.actions() if a.isCheckable() and a.isChecked()]
        assert len(checked) == 1 and checked[0].startswith("lunet-site")
    finally:
        w.shutdown()
        w.close()
    w2 = make_window(qtbot)
    try:
        open_and_settle(qtbot, w2, site)
        assert w2.prediction.model_file() == version.model_path
        # revert from Model › Versions: the app default again
        w2.active.fill_versions_menu(w2.commands.versions_menu)
        default = next(a for a in w2.commands.versions_menu.actions() if a.text().startswith("App default"))
        default.trigger()
        assert w2.prediction.model_for(cases[0]) is None and "(this folder)" not in w2.model_label.text()
    finally:
        w2.shutdown()


def test_keeping_the_previous_model_changes_nothing_and_says_when_no_case_is_left(qtbot, tmp_path):
    from dentseg_gui.model.model_versions import describe_training_cases

    site = tmp_path / "site"
    cases = write_phantom_set(site, 2, seed=500)
    model = fake_trained_model(tmp_path / "models")
    w = make_window(qtbot)
    try:
        open_and_settle(qtbot, w, site)
        info = {"model_path": str(model), "outcome": "completed", "init": "bundled",
                "cases": describe_training_cases(cases)}
        with qtbot.waitSignal(w.active.comparisonShown, timeout=30_000) as sig:
            w.training_panel.runFinished.emit(info)
        dlg = sig.args[0]
        assert "No annotated case of site is left to compare on" in dlg.note.text()
        assert dlg.keep_button.isDefault() and not dlg.adopt_button.isDefault()
        with qtbot.waitSignal(w.active.versionChosen, timeout=5000):
            dlg.keep_button.click()
        assert w.prediction.registry().folder_choice(site) is None and w.prediction.model_for(cases[0]) is None
        assert len(w.prediction.registry().list_versions()[0]) == 1          # kept as a version anyway
    finally:
        w.shutdown()


def test_model_versions_are_renamed_and_deleted_from_the_dialog_and_the_folder_falls_back(qtbot, tmp_path):
    site = tmp_path / "site"
    cases = write_phantom_set(site, 1, seed=600)
    w = make_window(qtbot)
    try:
        reg = w.prediction.registry()
        used = reg.add_version(fake_trained_model(tmp_path / "m1"), [], name="lunet-site", folder=site)
        default = reg.add_version(fake_trained_model(tmp_path / "m2"), [], name="app default one")
        open_and_settle(qtbot, w, site)
        assert w.prediction.set_folder_model(site, version=used.id)
        w.prediction.model_path = str(default.model_path)              # Model › Choose model picked it
        assert "(this folder)" in w.model_label.text()
        # the menu offers the dialog
        w.active.fill_versions_menu(w.commands.versions_menu)
        manage = next(a for a in w.commands.versions_menu.actions() if a.text().startswith("Manage versions"))
        manage.trigger()
        dlg = w.active.versions_dialog
        assert dlg is not None and dlg.isVisible() and dlg.table.rowCount() == 2
        rows = {dlg.table.item(r, 0).text(): dlg.table.item(r, 4).text() for r in range(2)}
        assert rows == {"lunet-site": "site", "app default one": "(app default)"}
        # rename: the menu shows the new name, the folder keeps its model
        dlg.select(used.id)
        assert dlg.rename_selected("clinic A, 1 case")
        assert reg.get(used.id).name == "clinic A, 1 case"
        w.active.fill_versions_menu(w.commands.versions_menu)
        checked = [a.text() for a in w.commands.versions_menu.actions() if a.isCheckable() and a.isChecked()]
        assert len(checked) == 1 and checked[0].startswith("clinic A, 1 case")
        # an empty name is refused with a message, nothing changes
        assert not dlg.rename_selected("  ") and reg.get(used.id).name == "clinic A, 1 case"
        # the app default cannot be deleted
        dlg.select(default.id)
        assert not dlg.delete_selected(confirmed=True) and default.dir.is_dir()
        # "No" deletes nothing; "Yes" deletes it and the folder goes back to the app default
        dlg.select(used.id)
        assert not dlg.delete_selected(confirmed=False) and used.dir.is_dir()
        assert dlg.delete_selected(confirmed=True)
        assert not used.dir.exists() and dlg.table.rowCount() == 1
        assert w.prediction.model_for(cases[0]) == str(default.model_path)
        assert "(this folder)" not in w.model_label.text()
    finally:
        w.shutdown()
