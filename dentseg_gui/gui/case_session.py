"""The case list and the open document: opening, switching, saving, crash recovery, spacing.

``CaseSession`` is the window's model of "which cases, and which one is open"
(napari's ViewerModel in spirit): it owns the ``CaseList``, the open
``CaseDocument`` and its ``Autosaver``, and emits signals the window mirrors
(the canvas, the undo group, the measurement dock, the list view's selection,
the title). It never touches a widget except as the parent of a dialog, so it is
tested without building the window.

Flow of a case: ``open_case`` asks to save unsaved changes -> a ``LoadWorker``
reads image + annotation off the GUI thread -> the loaded case becomes a
``CaseDocument`` (recovering an autosave if the user agrees) -> ``documentChanged``
and ``caseLoaded``. The case that was open stays open until the new one has
loaded, and stays open when loading fails.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog

from ..core.annotation import annotation_path_for
from ..core.case_spacing import cases_without_spacing
from ..core.errors import DentsegError
from . import messages
from .autosave import Autosaver, discard_autosave, pending_recoveries, recovery_for, recovery_question
from .case_info import parse_spacing_text
from .cases import (STATUS_EDITED, STATUS_ERROR, CaseList, RecentFiles, annotation_status, app_settings,
                    clean_case_folders, expand_paths, find_images, flag_and_detail, image_for_annotation)
from .folder_spacing import FolderSpacingDialog, FolderSpacings
from .work_tracker import WorkTracker
from .workers import LoadWorker, TaskWorker

log = logging.getLogger("dentseg.gui.session")

IMAGE_FILTER = ("Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.dcm *.dicom *.ima);;"
                "DentSeg annotations (*.dentseg.json);;All files (*)")
EMPTY_SUMMARY = "Open an image or a folder (File menu, or drop files here)."


class CaseSession(QObject):
    documentChanged = Signal(object, object)   # new CaseDocument | None, old | None
    caseLoaded = Signal(object)                # CaseDocument, once installed
    caseLoadFailed = Signal(str)               # message
    casesChanged = Signal()                    # rows added or replaced
    summaryChanged = Signal(str)               # "4 cases: 2 saved, …"
    currentRowChanged = Signal(object)         # row of the open case, or None
    documentStateChanged = Signal()            # title / spacing / case info may have changed
    statusMessage = Signal(str, int)           # text, milliseconds
    saved = Signal(object)                     # Path of the written annotation

    def __init__(self, host, tracker: WorkTracker, default_spacing=None, autosave: bool = True,
                 parent=None):
        super().__init__(parent)
        self.host = host                       # parent widget for dialogs
        self.tracker = tracker
        self.default_spacing = default_spacing
        self.autosave_enabled = autosave
        self.cases = CaseList(self)
        self.document = None
        self.recent = RecentFiles()
        self.autosaver = Autosaver(parent=self)
        self.autosaver.failed.connect(lambda m: messages.show_warning(self.host, "Autosave", m))
        self.last_dir = app_settings().value("paths/last_dir", str(Path.home()))
        self._accepted_recoveries: set[str] = set()
        self.folder_spacings: dict[str, tuple[float, float]] = {}    # folder -> spacing for its cases
        self.spacing_overrides: dict[str, tuple[float, float]] = {}  # image -> spacing the user set

    # ------------------------------------------------------------------ state
    def current_row(self) -> int | None:
        if self.document is None or self.document.image_path is None:
            return None
        return self.cases.row_of(self.document.image_path)

    def summary_text(self) -> str:
        if not self.cases.entries:
            return EMPTY_SUMMARY
        counts = self.cases.counts()
        parts = [f"{v} {k}" for k, v in sorted(counts.items())]
        n = len(self.cases.entries)
        return f"{n} case{'s' if n != 1 else ''}: " + ", ".join(parts)

    def _cases_changed(self) -> None:
        self.summaryChanged.emit(self.summary_text())
        self.casesChanged.emit()

    def refresh_row(self, row: int | None) -> None:
        """Re-read a listed case's status from its file (after a batch prediction wrote it)."""
        if row is not None:
            self.cases.refresh_from_disk(row)
            self.summaryChanged.emit(self.summary_text())

    def refresh_current_status(self) -> None:
        row = self.current_row()
        if row is None:
            return
        doc = self.document
        status = STATUS_EDITED if doc.is_modified() else annotation_status(doc.annotation)
        flag, detail = flag_and_detail(doc.annotation)
        entry = self.cases.entries[row]
        if (entry.status, entry.flag) != (status, flag):
            self.cases.set_status(row, status, detail, flag)
            self.summaryChanged.emit(self.summary_text())

    # ------------------------------------------------------------------ spacing of unopened cases
    def spacing_for(self, image_path: Path) -> tuple[float, float] | None:
        """The spacing a case gets when its image and annotation carry none: set by the user for
        this case, else the command line's --spacing, else the one chosen for its folder."""
        p = Path(image_path).resolve()
        return (self.spacing_overrides.get(str(p)) or self.default_spacing
                or self.folder_spacings.get(str(p.parent)))

    def ask_folder_spacing(self, folder: Path, n_missing: int, n_total: int) -> tuple[tuple[float, float] | None, bool]:
        """(spacing, remember) from the one-per-folder question; (None, False) when not answered."""
        if not messages.is_interactive():
            return None, False
        dlg = FolderSpacingDialog(folder, n_missing, n_total, parent=self.host)
        if dlg.exec() != dlg.DialogCode.Accepted or dlg.spacing is None:
            return None, False
        return dlg.spacing, dlg.remember.isChecked()

    def settle_folder_spacing(self, folder: Path, images: list[Path], missing: list[Path] | None = None) -> None:
        """One question for all the cases of ``folder`` that carry no spacing (remembered per folder);
        ``missing``: those cases when a scan already found them (else they are looked up here)."""
        if self.default_spacing is not None:
            return
        key = str(Path(folder).resolve())
        missing = cases_without_spacing(images) if missing is None else missing
        if not missing:
            return
        sp = self.folder_spacings.get(key) or FolderSpacings().get(folder)
        source = "remembered for this folder"
        if sp is None:
            sp, remember = self.ask_folder_spacing(folder, len(missing), len(images))
            source = "applied"
            if sp is not None and remember:
                FolderSpacings().set(folder, sp)
        if sp is None:
            self.statusMessage.emit(f"{len(missing)} case(s) have no pixel spacing: their measurements stay "
                                    "missing until you set it (Edit › Pixel spacing…).", 10000)
            return
        self.folder_spacings[key] = sp
        self.statusMessage.emit(f"Pixel spacing {sp[0]:g} × {sp[1]:g} mm {source} for the {len(missing)} "
                                "case(s) without one.", 8000)

    # ------------------------------------------------------------------ opening
    def open_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self.host, "Open image(s)", str(self.last_dir), IMAGE_FILTER)
        if files:
            self.open_paths([Path(f) for f in files])

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.host, "Open folder of cases", str(self.last_dir))
        if folder:
            self.open_folder(Path(folder))

    def open_paths(self, paths: list[Path | str]) -> bool:
        """Add images (or folders, or annotation files) to the case list and open the first.

        A path that does not exist is reported by name; the others still open.
        """
        paths = [Path(p) for p in paths]
        for p in (p for p in paths if not p.exists()):
            messages.show_error(self.host, "Cannot open", f"{p.name}: file not found ({p}). Check the "
                                "path; the file may have been moved or deleted.")
        paths = [p for p in paths if p.exists()]
        lost = [p for p in paths if p.is_file() and p.name.endswith(".dentseg.json") and image_for_annotation(p) is None]
        for p in lost:          # an annotation whose image is not where it says
            messages.show_error(self.host, "Image not found", f"{p.name} names its image "
                                f"'{_named_image(p)}', which is not at {p.parent / _named_image(p)}. Put the "
                                "annotation beside its image (or the image where it says), then open it again.")
        paths = [p for p in paths if p not in lost]
        if not paths:
            return False
        images = expand_paths(paths)
        if not images:
            messages.show_error(self.host, "Cannot open",
                                f"No image found in {', '.join(p.name for p in paths)}. "
                                "DentSeg opens PNG, JPEG, TIFF, BMP and DICOM files.")
            return False
        for p in paths:
            self.recent.add(p)
        self.last_dir = str(paths[0].parent if paths[0].is_file() else paths[0])
        if len(images) <= 20:
            rows = self.cases.add_paths(images)
            self._cases_changed()
            return self.open_case(rows[0])
        # many cases (a folder dropped or given): listed at once, read in a worker, then opened
        clean_case_folders(images)
        rows = self.cases.add_pending(images)
        self._cases_changed()

        def scanned(no_spacing: list[Path]) -> None:
            self.settle_folder_spacing(images[0].parent, images, no_spacing)
            self.open_case(rows[0])

        self._scan(images, scanned)
        return True

    def open_folder(self, folder: Path | str) -> bool:
        """Replace the case list by the images of ``folder`` and open the first."""
        folder = Path(folder)
        if not folder.is_dir():
            messages.show_error(self.host, "Cannot open folder", f"{folder}: not a folder.")
            return False
        images = find_images(folder)
        if not images:
            messages.show_error(self.host, "Empty folder", f"{folder.name}: no image files in this folder. "
                                "DentSeg opens PNG, JPEG, TIFF, BMP and DICOM files.")
            return False
        if not self.maybe_save():
            return False
        if self.tracker.running("scan"):
            self.tracker.cancel("scan")
        self.recent.add(folder)
        self.last_dir = str(folder)
        self.close_document()
        clean_case_folders(images)
        self.cases.set_pending(images)              # listed at once; statuses filled in by a worker
        self._cases_changed()

        def scanned(no_spacing: list[Path]) -> None:
            self.settle_folder_spacing(folder, images, no_spacing)
            self.open_case(0, ask_save=False)

        self._scan(images, scanned)
        return True

    def _scan(self, images: list[Path], then) -> None:
        """Read the listed cases' annotation files in a worker, filling in their statuses as they
        come (a thousand cases never hold the window); ``then(cases without spacing)`` at the end."""
        from .cases import path_key, scan_case

        def work(ctx) -> list[Path]:
            no_spacing, batch, t_last = [], [], time.monotonic()
            for i, p in enumerate(images):
                ctx.check()
                status, detail, flag, has_spacing = scan_case(p)
                batch.append((path_key(p), (status, detail, flag)))
                if not has_spacing:
                    no_spacing.append(p)
                if len(batch) >= 200 or time.monotonic() - t_last > 0.1:
                    ctx.emit(batch)
                    ctx.progress(i + 1, len(images), f"reading {len(images)} cases…")
                    batch, t_last = [], time.monotonic()
            if batch:
                ctx.emit(batch)
            return no_spacing

        w = self.tracker.track(TaskWorker(work, name="list cases", parent=self), "scan")
        w.data.connect(lambda states: (self.cases.apply_states(states),
                                       self.summaryChanged.emit(self.summary_text())))
        w.progress.connect(self.tracker.set_progress)
        w.succeeded.connect(lambda missing: (self.casesChanged.emit(), then(missing)))
        w.failed.connect(lambda m: messages.show_error(self.host, "Cannot list the cases", m))
        self.tracker.set_progress(0, len(images), f"Reading {len(images)} cases…")
        w.start()

    def add_paths(self, paths: list[Path]) -> list[int]:
        """List cases without opening one (start-up after a recovery opened its own case)."""
        rows = self.cases.add_paths([Path(p) for p in paths if Path(p).exists()])
        self._cases_changed()
        return rows

    def open_recent(self, path: Path) -> bool:
        return self.open_folder(path) if path.is_dir() else self.open_paths([path])

    def step_case(self, delta: int) -> None:
        n = len(self.cases.entries)
        if n == 0:
            return
        row = self.current_row()
        self.open_case(((row if row is not None else -1) + delta) % n)

    def open_case(self, row: int, ask_save: bool = True) -> bool:
        """Start loading case ``row`` (image + annotation) in a worker.

        Returns False when the switch was refused (unsaved changes kept, or a
        load already running). The current case stays until the new one loaded.
        """
        if not 0 <= row < len(self.cases.entries):
            return False
        if row == self.current_row():
            self.currentRowChanged.emit(row)
            return True
        if self.tracker.running("load"):
            self.statusMessage.emit("Still loading the previous case…", 3000)
            self.currentRowChanged.emit(self.current_row())
            return False
        if ask_save and not self.maybe_save():
            self.currentRowChanged.emit(self.current_row())
            return False
        entry = self.cases.entries[row]
        worker = self.tracker.track(LoadWorker(entry.image_path, self.spacing_for(entry.image_path),
                                               parent=self), "load")
        worker.succeeded.connect(self._on_loaded)
        worker.failed.connect(lambda msg, r=row: self._on_load_failed(r, msg))
        self.tracker.set_progress(0, 0, f"Loading {entry.name}…")
        self.tracker.busyChanged.emit(True)
        worker.start()
        return True

    def _on_load_failed(self, row: int, message: str) -> None:
        self.statusMessage.emit("Could not open the case.", 5000)
        if 0 <= row < len(self.cases.entries) and self._offer_without_annotation(row, message):
            return
        messages.show_error(self.host, "Cannot open case", message + "\n\nThe case list shows it as "
                            "an error; the case that was open stays open.")
        self.cases.set_status(row, STATUS_ERROR, message)
        self.summaryChanged.emit(self.summary_text())
        self.currentRowChanged.emit(self.current_row())
        self.caseLoadFailed.emit(message)

    def _offer_without_annotation(self, row: int, message: str) -> bool:
        """When the case's annotation file is unreadable, offer to open the image without it,
        keeping the broken file aside. True when the user chose that (the case is re-opened)."""
        from datetime import datetime

        from ..core.annotation import load_annotation
        from ..core.errors import AnnotationError
        image = self.cases.entries[row].image_path
        ann = annotation_path_for(image)
        if not ann.is_file() or not image.is_file():
            return False
        try:
            load_annotation(ann)
            return False                      # the annotation reads: the image itself is the problem
        except AnnotationError:
            pass
        except Exception:  # noqa: BLE001 - anything else that breaks the reader is "broken" too
            log.warning("annotation %s unreadable", ann, exc_info=True)
        aside = ann.with_name(ann.name[:-len(".json")] + f".broken-{datetime.now():%Y%m%d-%H%M%S}.json")
        choice = messages.ask_choice(
            self.host, "Annotation file unreadable",
            f"{message}\n\nOpen {image.name} without it? The broken file is kept as {aside.name} "
            "beside it (nothing is deleted); the case then opens unannotated.",
            [("open", "Open the image without it"), ("cancel", "Cancel")], default="cancel")
        if choice != "open":
            return False
        try:
            os.replace(ann, aside)
        except OSError as exc:
            messages.show_error(self.host, "Cannot move the file", f"{ann.name} could not be renamed "
                                f"({exc.strerror or exc}); the case stays closed.")
            return True
        self.cases.refresh_from_disk(row)
        self.summaryChanged.emit(self.summary_text())
        self.statusMessage.emit(f"{ann.name} kept aside as {aside.name}; opening {image.name} without it.", 10000)
        self.open_case(row, ask_save=False)
        return True

    def _on_loaded(self, loaded) -> None:
        try:
            doc = self._make_document(loaded)
        except DentsegError as exc:
            row = self.cases.row_of(loaded.image_path)
            self._on_load_failed(row if row is not None else -1, messages.error_text(exc, loaded.image_path))
            return
        if doc is None:
            return
        self.install_document(doc, getattr(loaded, "note", ""))
        # a spacing the user set for this case before opening it: where the case had another one,
        # it becomes an undo step (and a discard is respected); where it had none, it was its
        # initial spacing and stays remembered until the case is saved
        key = str(Path(loaded.image_path).resolve())
        override = self.spacing_overrides.get(key)
        if override is not None and doc.annotation.pixel_spacing_mm != override:
            self.spacing_overrides.pop(key, None)
            doc.set_spacing(override)

    def _make_document(self, loaded):
        """A CaseDocument for the loaded case; offers the autosave if it is newer."""
        from .document import CaseDocument
        rec = recovery_for(loaded.image_path)
        recovered = None
        if rec is not None:
            key = str(Path(loaded.image_path).resolve())
            yes = key in self._accepted_recoveries or messages.ask_yes_no(
                self.host, "Recover unsaved work?",
                f"{rec.describe()}: unsaved changes (DentSeg was closed without saving).\n\n"
                "Recover them? Choose No to discard them and open the saved version.", default=False)
            self._accepted_recoveries.discard(key)
            if yes:
                try:
                    recovered = rec.load()
                except DentsegError as exc:
                    messages.show_exception(self.host, exc, rec.autosave_path, "Autosave unreadable")
            if recovered is None:
                discard_autosave(loaded.image_path)
        doc = CaseDocument(loaded.image, loaded.annotation, loaded.image_path, loaded.annotation_path,
                           disk_identity=loaded.disk_identity)
        if recovered is None:
            return doc
        # the saved version first, the recovered changes as one undo step on top of it:
        # unsaved (the stack is not clean) and Undo goes back to the saved file
        try:
            doc.restore_annotation(recovered)
        except DentsegError:  # cannot be one step (other extra fields): open the autosave as it is
            log.warning("recovery of %s opened as a whole, not as an undo step", loaded.image_path,
                        exc_info=True)
            doc = CaseDocument(loaded.image, recovered, loaded.image_path, loaded.annotation_path,
                               disk_identity=loaded.disk_identity)
            doc.undo_stack.resetClean()
        self.statusMessage.emit(f"Recovered unsaved changes of {loaded.image_path.name}. "
                                "Save to keep them, or Undo to go back to the saved version.", 8000)
        return doc

    # ------------------------------------------------------------------ the open document
    def close_document(self) -> None:
        old = self.document
        if old is None:
            return
        self.autosaver.attach(None)
        self.document = None
        self.documentChanged.emit(None, old)
        self.documentStateChanged.emit()
        old.deleteLater()

    def install_document(self, doc, note: str = "") -> None:
        """Make ``doc`` the open case (the old one is closed), list it, autosave it."""
        old = self.document
        if old is not None:
            self.autosaver.attach(None)
        self.document = doc
        self.documentChanged.emit(doc, old)
        if old is not None:
            old.deleteLater()
        doc.modifiedChanged.connect(lambda *_: (self.documentStateChanged.emit(), self.refresh_current_status()))
        doc.changed.connect(self.refresh_current_status)
        doc.changed.connect(self.documentStateChanged)
        doc.spacingChanged.connect(lambda *_: self.documentStateChanged.emit())
        self.autosaver.attach(doc if self.autosave_enabled else None)
        if doc.is_modified() and self.autosave_enabled:
            self.autosaver.write_now()
        row = self.cases.row_of(doc.image_path) if doc.image_path else None
        if row is None and doc.image_path is not None:
            row = self.cases.add_paths([doc.image_path])[0]
            self.casesChanged.emit()
        self.currentRowChanged.emit(row)
        self.refresh_current_status()
        self.summaryChanged.emit(self.summary_text())
        self.documentStateChanged.emit()
        self.tracker.hide_progress()
        self.statusMessage.emit(note or f"Opened {doc.image_path.name if doc.image_path else 'case'}.",
                                10000 if note else 4000)
        self.caseLoaded.emit(doc)
        self.tracker.notify_busy()

    # ------------------------------------------------------------------ saving
    def maybe_save(self) -> bool:
        """True when it is fine to leave the current case (saved, discarded, or unchanged)."""
        doc = self.document
        if doc is None or not doc.is_modified():
            return True
        name = doc.image_path.name if doc.image_path else "This case"
        answer = messages.ask_save_changes(self.host, name)
        if answer == "save":
            return self.save_current()
        if answer == "discard":
            if doc.image_path is not None:
                discard_autosave(doc.image_path)
            # back to the saved state (edits are undo steps); a recovered case has none
            clean = doc.undo_stack.cleanIndex()
            if clean >= 0:
                doc.undo_stack.setIndex(clean)
            else:
                doc.mark_saved()
            self.refresh_row(self.current_row())
            return True
        return False

    def save_current(self, path: Path | str | None = None) -> bool:
        """Save the annotation (atomically) beside the image, or to ``path``."""
        from ..core.annotation import save_annotation
        doc = self.document
        if doc is None:
            return False
        target = Path(path) if path else (doc.annotation_path or annotation_path_for(doc.image_path))
        from . import save_guard
        choice = save_guard.check_before_save(doc, target, self.host)   # changed on disk meanwhile?
        if choice == save_guard.SAVE_AS:
            return self.save_as()
        if choice == save_guard.RELOAD:
            try:
                if not save_guard.reload_from_disk(doc):   # not one undo step: reopen the case;
                    self.autosaver.write_now()               # the unsaved work stays as its autosave,
                    row = self.current_row()                 # which reopening offers to recover
                    self.close_document()
                    if row is not None:
                        self.open_case(row, ask_save=False)
            except DentsegError as exc:
                messages.show_exception(self.host, exc, target, "Cannot reload")
            return False
        if choice == save_guard.CANCEL:
            return False
        ann = doc.annotation_for_save()
        if doc.image_path is not None:
            try:
                ann.image_path = os.path.relpath(doc.image_path, target.parent)
            except ValueError:  # another drive on Windows
                ann.image_path = str(doc.image_path)
        try:
            save_annotation(ann, target)
        except (OSError, DentsegError, ValueError) as exc:
            messages.show_error(self.host, "Save failed", f"{target.name}: could not be saved "
                                f"({getattr(exc, 'strerror', None) or exc}). Use File > Save as… to "
                                "save it somewhere you can write to. Your changes are still open "
                                "and autosaved.")
            return False
        doc.mark_saved(target)
        if doc.image_path is not None:
            discard_autosave(doc.image_path)
            self.spacing_overrides.pop(str(doc.image_path.resolve()), None)
        self.refresh_current_status()
        self.documentStateChanged.emit()
        self.saved.emit(target)
        self.statusMessage.emit(f"Saved {target}", 4000)
        return True

    def save_as(self) -> bool:
        doc = self.document
        if doc is None:
            return False
        start = str(doc.annotation_path or annotation_path_for(doc.image_path))
        path, _ = QFileDialog.getSaveFileName(self.host, "Save annotation as", start,
                                              "DentSeg annotation (*.dentseg.json)")
        if not path:
            return False
        if not path.endswith(".dentseg.json"):
            path += ".dentseg.json"
        return self.save_current(Path(path))

    # ------------------------------------------------------------------ spacing
    def ask_spacing(self, rows: list[int] | None = None) -> None:
        """Set the pixel spacing of the open case and of the other cases in ``rows`` at once.

        The open case changes as one undo step; a case not open gets it when it is opened
        (as its initial spacing when it has none, as an undo step when it had another), and
        keeps it when saved."""
        doc = self.document
        rows = sorted(set(rows or []) | ({self.current_row()} if self.current_row() is not None else set()))
        if doc is None and not rows:
            return
        sp = doc.annotation.pixel_spacing_mm if doc is not None else None
        n = len(rows)
        text, ok = QInputDialog.getText(
            self.host, "Pixel spacing",
            ("Pixel size in mm (one value, or row, column):" if n <= 1 else
             f"Pixel size in mm for the {n} selected cases (one value, or row, column):"),
            text="" if sp is None else (f"{sp[0]:g}" if sp[0] == sp[1] else f"{sp[0]:g}, {sp[1]:g}"))
        if not ok or not text.strip():
            return
        vals = parse_spacing_text(text)
        if vals is None:
            messages.show_error(self.host, "Pixel spacing", f"“{text}” is not a pixel size. Type one "
                                "positive number of mm (e.g. 0.125) or two (row, column).")
            return
        self.set_spacing(vals, rows)

    def set_spacing(self, spacing: tuple[float, float], rows: list[int] | None = None) -> None:
        doc, current = self.document, self.current_row()
        others = [r for r in (rows or []) if r != current and 0 <= r < len(self.cases.entries)]
        if doc is not None:
            doc.set_spacing(tuple(spacing))
        for r in others:
            self.spacing_overrides[str(self.cases.entries[r].image_path.resolve())] = tuple(spacing)
        if others:
            self.statusMessage.emit(f"Pixel spacing {spacing[0]:g} × {spacing[1]:g} mm set for "
                                    f"{len(others) + (doc is not None)} cases; each keeps it when saved.", 8000)

    # ------------------------------------------------------------------ recovery at start-up
    def offer_recovery(self) -> bool:
        """After a crash or kill: offer the autosaves newer than their saved files.

        Yes opens them (the newest first, its changes restored and unsaved);
        No deletes them. Returns True when something was recovered.
        """
        recs = pending_recoveries()
        if not recs:
            return False
        yes = messages.ask_yes_no(self.host, "Recover unsaved work?", recovery_question(recs),
                                  default=False)
        if not yes:
            for r in recs:
                discard_autosave(r.image_path)
            return False
        for r in recs:
            self._accepted_recoveries.add(str(r.image_path.resolve()))
        rows = self.cases.add_paths([r.image_path for r in recs])
        self._cases_changed()
        self.open_case(rows[0], ask_save=False)
        return True

    def save_settings(self, settings) -> None:
        settings.setValue("paths/last_dir", str(self.last_dir))


def _named_image(annotation_file: Path) -> str:
    """The image path an annotation file names (as written), or '?'."""
    import json
    try:
        return str(json.loads(annotation_file.read_text(encoding="utf-8"))["image"]["path"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return "?"
