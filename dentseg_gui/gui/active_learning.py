"""Active learning in the app: which case to annotate next, and adopting a fine-tuned model.

``ActiveLearningController`` (MONAI Label's active-learning strategy, for a desktop):

* **Annotate next** (Model › Annotate next, Ctrl+Shift+N): the open folder's cases
  without a human annotation are ranked by ``model.need_ranking.rank_images`` with the
  folder's model, in a worker (progress, Cancel); the ranking is shown in the
  "Annotate next" dock (``need_panel``) and the neediest case still unannotated is
  opened. Scores are cached per (model sha256, image file) in the user data folder.
* **After a fine-tune** (the training dock's ``runFinished``): the model is kept as a
  version (``model.model_versions.ModelRegistry``), compared in a worker with the model
  the folder used so far on the folder's annotated cases it was not trained on
  (``model.version_compare``), and the dialog (``model_compare_dialog``) lets the user
  use it for this folder or keep the previous one. Model › Versions changes it later, and
  its "Manage versions" dialog (``model_versions_dialog``) renames or deletes versions.

The logic lives in the Qt-free modules named above; this class only runs them in
workers and routes the results to the window.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QActionGroup

from ..core.errors import DentsegError
from . import messages
from .cases import STATUS_LISTING, STATUS_PREDICTED, STATUS_UNANNOTATED
from .workers import TaskWorker

log = logging.getLogger("dentseg.gui.active_learning")


def need_cache_path() -> Path:
    from ..resources import user_data_dir
    return user_data_dir() / "active-learning" / "need-cache.json"


class ActiveLearningController(QObject):
    rankingChanged = Signal()
    rankingFinished = Signal(str)          # 'ok' | 'failed' | 'cancelled'
    comparisonShown = Signal(object)       # the ModelCompareDialog
    versionChosen = Signal(str)            # 'adopt' | 'keep'
    statusMessage = Signal(str, int)

    def __init__(self, host, session, prediction, tracker, parent=None):
        super().__init__(parent)
        self.host, self.session, self.prediction, self.tracker = host, session, prediction, tracker
        self.ranking: list = []                      # model.need_ranking.RankedCase, neediest first
        self.ranking_key: tuple | None = None        # (folder, model) it was made for
        self._open_when_ranked = False
        self.compare_dialog = None
        self.last_version = None
        self.versions_dialog = None

    # ------------------------------------------------------------------ ranking
    def _candidates(self, folder: Path) -> list[Path]:
        """The folder's listed cases without a human annotation (unsaved edits count as one)."""
        from ..model.need_ranking import is_unannotated
        out = []
        for e in self.session.cases.entries:
            if Path(e.image_path).resolve().parent != folder:
                continue
            if e.status in (STATUS_UNANNOTATED, STATUS_PREDICTED) or (
                    e.status == STATUS_LISTING and is_unannotated(e.annotation_path)):
                out.append(Path(e.image_path))
        return out

    def _key(self) -> tuple | None:
        folder = self.prediction.current_folder()
        if folder is None:
            return None
        return str(folder), self.prediction.folder_model(folder)[1]

    def is_running(self) -> bool:
        return self.tracker.running("rank") or self.tracker.running("compare")

    def rank(self, open_top: bool = False) -> bool:
        """Rank the open folder's unannotated cases in a worker; ``open_top``: open the first after."""
        from ..model.model_versions import ModelVersionError
        from ..model.need_ranking import NeedCache, rank_images
        from .workers import get_predictor
        if self.is_running() or self.prediction.is_running():
            self.statusMessage.emit("Wait for the running prediction or ranking to finish.", 4000)
            return False
        folder = self.prediction.current_folder()
        if folder is None:
            messages.show_info(self.host, "Annotate next", "Open a folder of cases first (File › Open folder).")
            return False
        try:
            key = self._key()
        except ModelVersionError as exc:
            messages.show_error(self.host, "Annotate next", str(exc))
            return False
        paths = self._candidates(folder)
        if not paths:
            self.ranking, self.ranking_key = [], key
            self.rankingChanged.emit()
            messages.show_info(self.host, "Annotate next", f"Every case of {folder.name} has a human annotation. "
                               "Add cases to the folder, or fine-tune on them (Model › Train).")
            return False
        model, compensation, spacing_for = key[1], self.prediction.compensation, self.session.spacing_for

        def work(ctx):
            pred = get_predictor(model, compensation)
            return rank_images(pred, paths, NeedCache(need_cache_path()), spacing_for,
                               progress=lambda d, t, n: ctx.progress(d, t, f"ranking {n}" if n else "ranked"),
                               should_stop=ctx.should_stop)

        self._open_when_ranked = open_top
        w = self.tracker.track(TaskWorker(work, name="rank cases", error_path=model, parent=self), "rank")
        w.progress.connect(self.tracker.set_progress)
        w.succeeded.connect(lambda r: self._on_ranked(r, key))
        w.failed.connect(lambda m: self._on_rank_failed(m))
        w.cancelled.connect(lambda: self._on_rank_cancelled(w.result, key))
        self.tracker.set_progress(0, len(paths), f"Ranking {len(paths)} unannotated case(s) of {folder.name}…")
        self.tracker.busyChanged.emit(True)
        w.start()
        return True

    def _on_ranked(self, ranking: list, key: tuple) -> None:
        self.ranking, self.ranking_key = list(ranking), key
        self.rankingChanged.emit()
        top = self.next_case()
        self.statusMessage.emit(f"Ranked {len(ranking)} unannotated case(s)"
                                + (f"; the model needs {top.name} most." if top else "."), 8000)
        if self._open_when_ranked and top is not None:
            self.open_case(top)
        self._open_when_ranked = False
        self.rankingFinished.emit("ok")

    def _on_rank_failed(self, message: str) -> None:
        self._open_when_ranked = False
        messages.show_error(self.host, "Ranking failed", message)
        self.rankingFinished.emit("failed")

    def _on_rank_cancelled(self, partial, key) -> None:
        self._open_when_ranked = False
        if partial:                                   # keep what was scored: still useful
            self.ranking, self.ranking_key = list(partial), key
            self.rankingChanged.emit()
        self.statusMessage.emit("Ranking cancelled" + (f" after {len(partial)} case(s)." if partial else "."), 5000)
        self.rankingFinished.emit("cancelled")

    def annotated_since_ranking(self) -> set[Path]:
        """Ranked cases that now have a human annotation (saved or being edited)."""
        from .cases import STATUS_EDITED, STATUS_SAVED
        out = set()
        for r in self.ranking:
            row = self.session.cases.row_of(r.image_path)
            if row is None or self.session.cases.entries[row].status in (STATUS_SAVED, STATUS_EDITED):
                out.add(r.image_path)
        return out

    def next_case(self) -> Path | None:
        """The neediest ranked case that is still unannotated and not the open one."""
        done = self.annotated_since_ranking()
        doc = self.session.document
        open_path = Path(doc.image_path).resolve() if doc is not None and doc.image_path else None
        for r in self.ranking:
            if r.score is not None and r.image_path not in done and Path(r.image_path).resolve() != open_path:
                return r.image_path
        return None

    def annotate_next(self) -> bool:
        """Open the neediest unannotated case (ranking first when there is no fresh ranking)."""
        from ..model.model_versions import ModelVersionError
        try:
            key = self._key()
        except ModelVersionError as exc:
            messages.show_error(self.host, "Annotate next", str(exc))
            return False
        if self.ranking and key == self.ranking_key:
            nxt = self.next_case()
            if nxt is not None:
                return self.open_case(nxt)
        return self.rank(open_top=True)

    def open_case(self, path: Path) -> bool:
        row = self.session.cases.row_of(path)
        if row is None:
            return False
        return bool(self.session.open_case(row))

    def summary_text(self) -> str:
        if not self.ranking or self.ranking_key is None:
            return ("Rank the unannotated cases of the open folder (Model › Annotate next) to see which one "
                    "the model needs most.")
        folder, model = self.ranking_key
        left = len(self.ranking) - len(self.annotated_since_ranking())
        name = Path(model).stem if model else "bundled LU-Net"
        return (f"<b>{left}</b> of {len(self.ranking)} unannotated case(s) of <b>{Path(folder).name}</b> "
                f"still to do, ranked by <b>{name}</b>. Annotate from the top.")

    # ------------------------------------------------------------------ after a fine-tune
    def on_training_finished(self, info: dict[str, Any]) -> bool:
        """Keep the new model as a version, compare it with the folder's model, show the dialog."""
        from ..model.model_versions import ModelVersionError
        from ..model.version_compare import compare_for_version
        folder = self.prediction.current_folder()
        try:
            previous = self.prediction.folder_model(folder)[1]
        except ModelVersionError:
            previous = self.prediction.model_path
        init = info.get("init")
        parent = {"kind": "bundled" if init == "bundled" else ("scratch" if init is None else "file"),
                  "path": None if init in (None, "bundled") else str(init), "label": info.get("init_label")}
        try:
            version = self.prediction.registry().add_version(
                info["model_path"], info.get("cases") or [], parent=parent,
                settings={"outcome": info.get("outcome")}, folder=folder)
        except DentsegError as exc:
            messages.show_error(self.host, "New model", f"The new model could not be kept as a version: {exc}")
            return False
        self.last_version = version
        if folder is None:
            self.statusMessage.emit(f"New model kept as version {version.id} (Model › Versions).", 8000)
            return False
        training = version.training_images()
        new_path = str(version.model_path)

        def work(ctx):
            return compare_for_version(previous, new_path, folder, training,
                                       progress=lambda d, t, n: ctx.progress(0, 0, f"comparing the models on {n}…"),
                                       should_stop=ctx.should_stop)

        w = self.tracker.track(TaskWorker(work, name="compare models", parent=self), "compare")
        w.progress.connect(self.tracker.set_progress)
        w.succeeded.connect(lambda r: self._on_compared(r, version, previous, folder))
        w.failed.connect(lambda m: messages.show_error(
            self.host, "Comparing the models", f"{m}\n\nThe new model is kept as a version (Model › Versions)."))
        w.cancelled.connect(lambda: self.statusMessage.emit(
            "Comparison cancelled; the new model is kept in Model › Versions.", 6000))
        self.tracker.set_progress(0, 0, f"Comparing {version.name} with the previous model on {folder.name}…")
        w.start()
        return True

    def _on_compared(self, result: dict, version, previous: str | None, folder: Path) -> None:
        from .model_compare_dialog import ModelCompareDialog
        try:
            self.prediction.registry().record_evaluation(version.id, result)
        except (DentsegError, OSError) as exc:
            log.warning("evaluation not recorded: %s", exc)
        prev_name = Path(previous).stem if previous else "bundled LU-Net"
        dlg = ModelCompareDialog(result, version.name, prev_name, folder, len(version.training_cases), self.host)
        dlg.chosen.connect(lambda c: self._on_choice(c, version, folder))
        self.compare_dialog = dlg
        dlg.open()
        self.comparisonShown.emit(dlg)

    def _on_choice(self, choice: str, version, folder: Path) -> None:
        if choice == "adopt":
            self.prediction.set_folder_model(folder, version=version.id)
        else:
            self.statusMessage.emit(f"The cases of {folder.name} keep their model; {version.name} stays in "
                                    "Model › Versions.", 8000)
        try:
            reg = self.prediction.registry()
            ev = dict(reg.get(version.id).evaluation or {}, decision=choice, decision_folder=str(folder))
            reg.record_evaluation(version.id, ev)
        except (DentsegError, OSError) as exc:
            log.warning("decision not recorded: %s", exc)
        self.versionChosen.emit(choice)

    # ------------------------------------------------------------------ Model › Versions
    def fill_versions_menu(self, menu) -> None:
        """The folder's model choices: app default, bundled, every version (damaged ones disabled)."""
        from ..model.model_versions import ModelVersionError
        menu.clear()
        folder = self.prediction.current_folder()
        if folder is None:
            menu.addAction("Open a folder of cases to choose its model").setEnabled(False)
            self._add_manage_action(menu)
            return
        reg = self.prediction.registry()
        try:
            choice = reg.folder_choice(folder)
            versions, broken = reg.list_versions()
        except ModelVersionError as exc:
            menu.addAction("The model choices cannot be read").setEnabled(False)
            menu.setToolTip(str(exc))
            return
        menu.setToolTipsVisible(True)
        menu.addAction(f"Model for the cases of {folder.name}:").setEnabled(False)
        group = QActionGroup(menu)
        default_name = Path(self.prediction.model_path).stem if self.prediction.model_path else "bundled LU-Net"

        def add(text: str, checked: bool, slot, tip: str = "") -> QAction:
            a = menu.addAction(text)
            a.setCheckable(True)
            a.setChecked(checked)
            group.addAction(a)
            if tip:
                a.setToolTip(tip)
            a.triggered.connect(lambda _=False: slot())
            return a

        add(f"App default ({default_name})", choice is None,
            lambda: self.prediction.set_folder_model(folder, default=True),
            "Use the model chosen in Model › Choose model")
        add("Bundled LU-Net", choice is not None and choice.model_path is None and not choice.version,
            lambda: self.prediction.set_folder_model(folder, None))
        if versions:
            menu.addSeparator()
        for v in versions:
            tip = (f"{v.dir}\ntrained on {len(v.training_cases)} case(s), from {v.parent.get('label') or v.parent.get('kind')}"
                   + (f"\nmade for {v.folder}" if v.folder else ""))
            add(v.line(), choice is not None and choice.version == v.id,
                lambda vid=v.id: self.prediction.set_folder_model(folder, version=vid), tip)
        for name, why in broken.items():
            a = menu.addAction(f"⚠ {name} (damaged)")
            a.setEnabled(False)
            a.setToolTip(why)
        self._add_manage_action(menu)

    def _add_manage_action(self, menu) -> None:
        menu.addSeparator()
        menu.addAction("Manage versions (rename, delete)…").triggered.connect(lambda _=False: self.manage_versions())

    def manage_versions(self):
        """Model › Manage versions: rename or delete the kept versions (non-modal dialog)."""
        from .model_versions_dialog import ModelVersionsDialog
        dlg = ModelVersionsDialog(self.prediction.registry(), self.prediction.model_path, self.host)
        dlg.changed.connect(self.prediction.modelChanged.emit)
        self.versions_dialog = dlg
        dlg.open()
        return dlg
