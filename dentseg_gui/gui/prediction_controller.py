"""Prediction in the app: which model, predict current / all, and how results enter the cases.

``PredictionController`` (MONAI Label's infer task, for a desktop): it keeps the
chosen model and the compensation switch (remembered in the settings), runs a
``PredictWorker`` through the ``WorkTracker`` and applies each result with its
provenance:

* to the open case as one undo step (``CaseDocument.apply_prediction``), never
  over hand work without asking (Replace / Fill missing only / Cancel keeps the
  model output aside);
* to a case that is not open by merging into its annotation file (batch).

The model's output is always kept apart from the clinician's version. A case the
plausibility check flags is counted and named in the status bar.

**Which model**: the app default (Model › Choose model, remembered in the settings),
unless the case's folder has a model of its own (adopted after a fine-tune, or from
Model › Versions; ``model.model_versions.ModelRegistry``): a folder's choice applies
to that folder's cases only. "Predict all" over cases of several folders runs one
worker per model, one after the other.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog

from ..core.annotation import annotation_path_for
from ..core.errors import DentsegError
from ..core.provenance import flagged_quality
from . import messages
from .case_session import CaseSession
from .cases import app_settings, has_hand_work
from .work_tracker import WorkTracker
from .workers import PredictJob, PredictWorker

log = logging.getLogger("dentseg.gui.prediction")


class PredictionController(QObject):
    finished = Signal(str)            # 'ok' | 'failed' | 'cancelled'
    modelChanged = Signal()
    statusMessage = Signal(str, int)
    casesUpdated = Signal()           # annotation files changed on disk (training list)

    def __init__(self, host, session: CaseSession, tracker: WorkTracker, parent=None):
        super().__init__(parent)
        self.host = host
        self.session = session
        self.tracker = tracker
        settings = app_settings()
        self.model_path: str | None = settings.value("model/path", None) or None
        self.compensation = settings.value("model/compensation", True, type=bool)
        self.predict_when_loaded = False      # predict the case being opened once it has loaded
        self._batch_mode: str | None = None
        self._errors: list[str] = []
        self._flagged = 0
        self._groups: list = []
        self._done = 0
        tracker.add_pending_check(lambda: self.predict_when_loaded or bool(self._groups))
        session.caseLoaded.connect(self._after_load)
        session.documentChanged.connect(lambda *_: self.modelChanged.emit())   # the folder's model

    # ------------------------------------------------------------------ the model
    def registry(self):
        """Model versions and per-folder choices in the user data folder (Qt-free)."""
        from ..model.model_versions import ModelRegistry
        from ..resources import user_data_dir
        return ModelRegistry(user_data_dir())

    def current_folder(self) -> Path | None:
        """The folder of the open case, else of the first listed case."""
        doc = self.session.document
        if doc is not None and doc.image_path is not None:
            return Path(doc.image_path).resolve().parent
        entries = self.session.cases.entries
        return Path(entries[0].image_path).resolve().parent if entries else None

    def folder_model(self, folder: Path | None) -> tuple[bool, str | None]:
        """(the folder has its own model, the model path for its cases - None: bundled).
        Raises ``ModelVersionError`` when the folder's chosen version is damaged or gone."""
        if folder is not None:
            own, path = self.registry().model_for_folder(folder)
            if own:
                return True, path
        return False, self.model_path

    def model_for(self, image_path: Path | None = None) -> str | None:
        """The model that predicts ``image_path`` (default: the open case)."""
        folder = Path(image_path).resolve().parent if image_path is not None else self.current_folder()
        return self.folder_model(folder)[1]

    def _current(self) -> tuple[bool, str | None, str]:
        """(folder's own, model path, problem) for the open folder, never raising."""
        from ..model.model_versions import ModelVersionError
        try:
            own, path = self.folder_model(self.current_folder())
            return own, path, ""
        except ModelVersionError as exc:
            return True, None, str(exc)

    def model_name(self) -> str:
        path = self._current()[1]
        return Path(path).stem if path else "bundled LU-Net"

    def model_file(self) -> Path:
        from ..resources import bundled_model_path
        path = self._current()[1]
        return Path(path) if path else bundled_model_path()

    def model_label(self) -> tuple[str, str]:
        """(status bar text, tooltip) for the model in use; a model without a card says so."""
        own, _, problem = self._current()
        if problem:
            return ("<span style='color:#b35c00'>Model: this folder's version is unusable</span>",
                    f"{problem}\nChoose another in Model › Versions.")
        path = self.model_file()
        mine = " (this folder)" if own else ""
        where = (f"\nchosen for {self.current_folder()} (Model › Versions)" if own
                 else "\nthe app's default model (Model › Choose model)")
        if path.is_file():
            unverified = self._unverified(path)
            if unverified:
                return (f"Model: {self.model_name()}{mine} <span style='color:#b35c00'>(unverified)</span>",
                        f"{path}{where}\n{unverified}")
            return f"Model: {self.model_name()}{mine}", f"{path}{where}"
        return (f"<span style='color:#b35c00'>Model: {self.model_name()} (missing)</span>",
                f"{path} not found: choose a model in Model › Choose model")

    @staticmethod
    def _unverified(path: Path) -> str:
        """The "unverified model" note of a model without a card, '' for a verified one."""
        from ..core.errors import ModelError
        from ..model.model_file import inspect_model_file
        try:
            info = inspect_model_file(path)
        except ModelError as exc:
            return str(exc)
        return "" if info.verified else "; ".join(info.notes) or "unverified model"

    def available_models(self) -> list[tuple[str, Path, bool, bool]]:
        """(label, path, is the bundled one, is in use) for the Choose-model menu."""
        from ..resources import bundled_model_path
        from .training_panel import available_models
        current = self.model_file().resolve()
        bundled = bundled_model_path().resolve()
        return [(label, path, path.resolve() == bundled, path.resolve() == current)
                for label, path in available_models()]

    def set_model(self, path: str | None) -> None:
        """Use ``path`` for prediction (None / '' = the bundled LU-Net): for the open folder when
        it has a model of its own (the choice stays with that folder), else as the app default."""
        from ..model.model_versions import ModelVersionError
        folder = self.current_folder()
        try:
            own = folder is not None and self.registry().folder_choice(folder) is not None
            if own:
                self.registry().set_folder_model(folder, str(path) if path else None)
        except ModelVersionError as exc:
            messages.show_error(self.host, "Model", str(exc))
            return
        if not own:
            self.model_path = str(path) if path else None
            self._save_settings()
        self.modelChanged.emit()
        self.statusMessage.emit(f"Prediction model: {self.model_name()}"
                                + (f" for the cases of {folder.name}" if own else ""), 4000)

    def set_folder_model(self, folder: Path, path: str | None = None, version: str | None = None,
                         default: bool = False) -> bool:
        """Choose the model of ``folder``'s cases: a version, a model file (None: bundled), or
        ``default`` (no choice: the app default). Other folders are not touched."""
        from ..core.errors import DentsegError
        reg = self.registry()
        try:
            if default:
                reg.clear_folder_choice(folder)
            elif version:
                reg.set_folder_version(folder, version)
            else:
                reg.set_folder_model(folder, path)
        except DentsegError as exc:
            messages.show_error(self.host, "Model for this folder", str(exc))
            return False
        self.modelChanged.emit()
        self.statusMessage.emit(f"The cases of {Path(folder).name} are now predicted with {self.model_name()}.", 6000)
        return True

    def choose_model_file(self, path: str | Path | None = None) -> bool:
        """Let the user pick a model file; it is checked now (not at the next prediction): a file
        that is not a DentSeg model, or a pickle with code, is refused with the reason; a model
        without a card is accepted as "unverified". True when the model was set."""
        from ..core.errors import ModelError
        from ..model.model_file import inspect_model_file
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self.host, "Choose a model", str(self.session.last_dir),
                                                  "LU-Net model (*.pt *.onnx);;All files (*)")
            if not path:
                return False
        try:
            info = inspect_model_file(path)
        except ModelError as exc:
            messages.show_error(self.host, "Not a usable model", f"{exc}\n\nThe model in use stays "
                                f"{self.model_name()}.")
            return False
        self.set_model(str(info.path))
        self.statusMessage.emit(f"Prediction model: {info.line()}", 10000)
        return True

    def set_compensation(self, on: bool) -> None:
        self.compensation = bool(on)
        self._save_settings()

    def _save_settings(self) -> None:
        s = app_settings()
        self.save_settings(s)
        s.sync()

    def save_settings(self, settings) -> None:
        settings.setValue("model/path", self.model_path or "")
        settings.setValue("model/compensation", bool(self.compensation))

    # ------------------------------------------------------------------ starting
    def is_running(self) -> bool:
        return self.tracker.running("predict")

    def _after_load(self, _doc) -> None:
        if self.predict_when_loaded:
            self.predict_when_loaded = False
            self.predict_current()

    def predict_current(self) -> bool:
        doc = self.session.document
        if doc is None:
            messages.show_info(self.host, "Predict", "Open a case first.")
            return False
        if self.is_running():
            return False
        if doc.annotation.pixel_spacing_mm is None:       # never predicted on an invented spacing
            if messages.is_interactive():
                self.session.ask_spacing()
            if doc.annotation.pixel_spacing_mm is None:
                messages.show_info(self.host, "Predict", f"{doc.image_path.name if doc.image_path else 'This case'} "
                                   "has no pixel spacing. The network needs the pixel size to see the tooth "
                                   "at its real size: set it (Edit › Pixel spacing…), then predict.")
                return False
        self._batch_mode = None
        return self._start([PredictJob(doc.image_path, doc.image, doc.annotation.pixel_spacing_mm)])

    def predict_all(self) -> bool:
        cases = self.session.cases
        doc = self.session.document
        if not cases.entries or self.is_running():
            return False
        annotated = 0
        for e in cases.entries:
            if doc is not None and doc.image_path == e.image_path:
                annotated += has_hand_work(doc.annotation)
            elif annotation_path_for(e.image_path).exists():
                annotated += e.status not in ("unannotated", "error", "predicted")
        mode = "replace"
        if annotated:
            mode = messages.ask_choice(
                self.host, "Predict all cases",
                f"{annotated} of {len(cases.entries)} cases already have hand-made or "
                "corrected annotations.\n\nReplace: the model's regions and landmarks replace "
                "them.\nFill missing only: keep every hand-made region and landmark, add only "
                "what is missing.\n\nThe model output is kept apart in every case either way.",
                [("fill_missing", "Fill missing only"), ("replace", "Replace"), ("cancel", "Cancel")],
                default="fill_missing")
            if mode in (None, "cancel"):
                return False
        self._batch_mode = mode
        jobs = []
        for e in cases.entries:
            if doc is not None and doc.image_path == e.image_path:
                jobs.append(PredictJob(e.image_path, doc.image, doc.annotation.pixel_spacing_mm))
            else:
                jobs.append(PredictJob(e.image_path, None, self.session.default_spacing))
        return self._start(jobs)

    def _start(self, jobs: list[PredictJob]) -> bool:
        from ..model.model_versions import ModelVersionError
        self._errors = []
        self._flagged = 0
        self._done = 0
        groups: dict[str | None, list[PredictJob]] = {}
        try:              # each case with its folder's model
            for job in jobs:
                groups.setdefault(self.model_for(job.image_path), []).append(job)
        except ModelVersionError as exc:
            messages.show_error(self.host, "Prediction", f"{exc}\n\nNothing was predicted.")
            return False
        self._groups = list(groups.items())
        self._start_group()
        self.tracker.busyChanged.emit(True)
        self.tracker.workerFinished.emit()     # actions: predict is now disabled
        return True

    def _start_group(self) -> None:
        model, jobs = self._groups.pop(0)
        w = self.tracker.track(PredictWorker(jobs, model, self.compensation, parent=self), "predict")
        w.progress.connect(self.tracker.set_progress)
        w.caseDone.connect(self._on_case_predicted)
        w.caseFailed.connect(self._on_case_failed)
        w.succeeded.connect(lambda r: self._on_group_finished(r))
        w.failed.connect(lambda m: self._on_finished("failed", m))
        w.cancelled.connect(lambda: self._on_finished("cancelled", None))
        name = Path(model).stem if model else "bundled LU-Net"
        self.tracker.set_progress(0, len(jobs), f"Predicting with {name}…")
        w.start()

    def _on_group_finished(self, result: Any) -> None:
        self._done += result.get("done", 0) if isinstance(result, dict) else 0
        if self._groups:                       # the next folder's model
            self._start_group()
            return
        self._on_finished("ok", {"done": self._done})

    # ------------------------------------------------------------------ results
    def _on_case_predicted(self, outcome) -> None:
        pred = outcome.result.annotation
        path = Path(outcome.job.image_path)
        doc = self.session.document
        if doc is not None and doc.image_path is not None and doc.image_path.resolve() == path.resolve():
            applied = self._apply_to_document(doc, pred)
        else:
            applied = self._apply_to_file(path, outcome.image, pred)
        if applied and flagged_quality(pred) is not None:
            self._flagged += 1      # model output the plausibility check doubts went in

    def _apply_to_document(self, doc, pred) -> bool:
        """Model output enters the open case as one undo step, never silently over hand work.
        True when it changed the annotation."""
        mode = self._batch_mode or "replace"
        if self._batch_mode is None and has_hand_work(doc.annotation):
            mode = messages.ask_choice(
                self.host, "Prediction ready",
                f"{doc.image_path.name} already has hand-made or corrected regions or landmarks.\n\n"
                "Replace: use the model's regions and landmarks (undo with Ctrl+Z).\n"
                "Fill missing only: keep all hand work, add only what is missing.\n"
                "Cancel: change nothing (the model output is still kept with the case).",
                [("replace", "Replace"), ("fill_missing", "Fill missing only"), ("cancel", "Cancel")],
                default="fill_missing")
        if mode in (None, "cancel"):
            doc.set_prediction(pred)
            self.statusMessage.emit("Prediction kept aside; the annotation was not changed.", 6000)
            return False
        changed = doc.apply_prediction(pred, mode)
        self.session.refresh_current_status()
        self.statusMessage.emit(
            "Prediction applied – review and correct it, then save." if changed
            else "The prediction added nothing (everything was already annotated).", 6000)
        return changed

    def _apply_to_file(self, image_path: Path, image, pred) -> bool:
        """Batch prediction for a case that is not open: merge into its annotation file.
        True when it changed the file."""
        from ..core.annotation import load_annotation, save_annotation
        from .document import CaseDocument
        if self._batch_mode is None:  # "predict current", but the user has switched cases since
            self.statusMessage.emit(f"The prediction for {image_path.name} arrived after the case "
                                    "was closed; nothing was changed. Open it and predict again.", 8000)
            return False
        ann_path = annotation_path_for(image_path)
        row = self.session.cases.row_of(image_path)
        try:
            ann = load_annotation(ann_path) if ann_path.exists() else None
            doc = CaseDocument(image, ann, image_path, ann_path)
            changed = doc.apply_prediction(pred, self._batch_mode or "replace")
            out = doc.annotation_for_save()
            out.image_path = image_path.name
            save_annotation(out, ann_path)
            doc.deleteLater()
        except (DentsegError, OSError) as exc:
            self._on_case_failed(row if row is not None else -1, messages.error_text(exc, ann_path))
            return False
        self.session.refresh_row(row)
        return changed

    def _engine_notes(self) -> str:
        """What the user should know about how the network ran (unverified model, torch fallback)."""
        from .workers import cached_predictor
        pred = cached_predictor()
        seg = getattr(pred, "segmenter", None)
        notes = [*(getattr(seg, "notes", None) or []), getattr(seg, "engine_note", None)]
        return "; ".join(n for n in notes if n)

    def _on_case_failed(self, index: int, message: str) -> None:
        log.warning("prediction failed: %s", message)
        self._errors.append(message)

    def _on_finished(self, outcome: str, payload: Any) -> None:
        self._groups = []
        errors = list(self._errors)
        if outcome == "failed":
            messages.show_error(self.host, "Prediction failed", f"{payload}\n\nThe open case was not changed. "
                                f"Model in use: {self.model_name()} (Model › Choose model).")
        elif outcome == "cancelled":
            self.statusMessage.emit("Prediction cancelled.", 5000)
        else:
            done = payload.get("done", 0) if isinstance(payload, dict) else 0
            flagged = self._flagged
            notes = self._engine_notes()
            self.statusMessage.emit(
                f"Prediction finished: {done} case(s)" + (f", {len(errors)} failed" if errors else "")
                + (f"; the model is unsure about {flagged} ({'see the case info' if done == 1 else 'marked ⚠'}"
                   "): check them before using the measurements" if flagged else "")
                + (f" ({notes})" if notes else ""), 15000)
        if outcome != "failed" and errors:
            listed = "\n".join(f"• {e}" for e in errors[:5])
            more = f"\n… and {len(errors) - 5} more" if len(errors) > 5 else ""
            messages.show_warning(self.host, "Some cases could not be predicted",
                                  f"{listed}{more}\n\nThe other cases were predicted.")
        self.casesUpdated.emit()
        self.session.summaryChanged.emit(self.session.summary_text())
        self.finished.emit(outcome)
