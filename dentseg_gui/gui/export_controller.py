"""File › Export in the app: CSV, PDF and PNG of the open case or of every listed case.

``ExportController`` asks for a path (unless given one), collects the cases
(``export.collect_items``: the open case as it is now, the others from their
files), and writes. Anything slower than a blink (PDF, a folder of PNGs) runs in
a ``TaskWorker`` with progress and Cancel, so the window stays responsive. The
open case is exported from a snapshot taken when the export starts.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog

from ..core.errors import DentsegError
from . import messages
from .case_session import CaseSession
from .work_tracker import WorkTracker
from .workers import TaskWorker

log = logging.getLogger("dentseg.gui.export")


class ExportController(QObject):
    statusMessage = Signal(str, int)

    def __init__(self, host, session: CaseSession, tracker: WorkTracker,
                 overlay_image: Callable[[], object], parent=None):
        super().__init__(parent)
        self.host = host
        self.session = session
        self.tracker = tracker
        self.overlay_image = overlay_image      # the canvas's rendering of the open case (QImage)

    # ------------------------------------------------------------------ helpers
    def _ask_path(self, title: str, suggestion: str, filt: str) -> Path | None:
        path, _ = QFileDialog.getSaveFileName(self.host, title, str(Path(self.session.last_dir) / suggestion), filt)
        return Path(path) if path else None

    def current_item(self, with_overlay: bool = True):
        """The open case for export, with the canvas's rendering (its styles and window)."""
        from .export import item_for_document
        doc = self.session.document
        if doc is None:
            return None
        if not with_overlay:
            return item_for_document(doc)
        try:
            overlay = self.overlay_image()
        except Exception:  # noqa: BLE001 - the report draws its own overlay then
            log.exception("canvas overlay rendering failed")
            overlay = None
        return item_for_document(doc, overlay if overlay is not None and not overlay.isNull() else None)

    def _target(self, title: str, path, all_cases: bool, with_overlay: bool,
                stem_all: str, suffix: str, ext: str, file_filter: str):
        """(items, skipped, path) for an export, asking for the path if none is given;
        None when there is nothing to export or the user cancels."""
        from .export import collect_items
        cur = self.current_item(with_overlay=with_overlay)
        if all_cases:
            items, skipped = collect_items(self.session.cases.paths(), cur)
        else:
            items, skipped = ([cur] if cur else []), []
        if not items:
            messages.show_info(self.host, title, "There is no annotated case to export.")
            return None
        if path is None:
            stem = stem_all if all_cases else f"{items[0].image_path.stem}{suffix}"
            path = self._ask_path(title, stem + ext, file_filter)
            if path is None:
                return None
        return items, skipped, path

    def _report(self, out: Path, n: int, skipped: list[str]) -> None:
        msg = f"Exported {n} case(s) to {out}"
        if skipped:
            msg += f" ({len(skipped)} skipped: {skipped[0]}{' …' if len(skipped) > 1 else ''})"
        self.statusMessage.emit(msg, 10000)
        log.info(msg)

    def run_task(self, fn, text: str, on_ok, path, title: str = "Export") -> Path | None:
        """Run ``fn(ctx)`` in a worker with progress and Cancel; one such task at a time."""
        if self.tracker.running("task"):
            messages.show_info(self.host, "Busy", "An export is still running.")
            return None
        w = self.tracker.track(TaskWorker(fn, name=text, error_path=path, parent=self), "task")
        w.progress.connect(self.tracker.set_progress)
        w.succeeded.connect(on_ok)
        w.failed.connect(lambda m: messages.show_error(self.host, f"{title} failed", m))
        w.cancelled.connect(lambda: self.statusMessage.emit(f"{title} cancelled.", 4000))
        self.tracker.set_progress(0, 0, text)
        w.start()
        return Path(path)

    # ------------------------------------------------------------------ exports
    def export_csv(self, path: Path | str | None = None, all_cases: bool = False) -> Path | None:
        from .export import write_csv_report
        target = self._target("Export CSV", path, all_cases, with_overlay=False,
                              stem_all="dentseg-measurements", suffix="-measurements",
                              ext=".csv", file_filter="CSV (*.csv)")
        if target is None:
            return None
        items, skipped, path = target
        try:
            out = write_csv_report(items, path)
        except (OSError, DentsegError) as exc:
            messages.show_exception(self.host, exc, path, "Export failed")
            return None
        self._report(out, len(items), skipped)
        return out

    def export_pdf(self, path: Path | str | None = None, all_cases: bool = False,
                   wait: bool = False) -> Path | None:
        """PDF report of the current case or of all cases, written in a worker (progress,
        Cancel); ``wait`` writes it at once (scripts and tests). The current case is
        exported as shown, from a snapshot taken now: edits made while it is written are
        not in it."""
        from .export import write_pdf_items
        target = self._target("Export PDF report", path, all_cases, with_overlay=True,
                              stem_all="dentseg-report", suffix="-report",
                              ext=".pdf", file_filter="PDF (*.pdf)")
        if target is None:
            return None
        items, skipped, path = target
        path = Path(path)
        if wait:
            try:
                write_pdf_items(items, path)
            except (OSError, DentsegError, ValueError) as exc:
                messages.show_exception(self.host, exc, path, "Export failed")
                return None
            self._report(path, len(items), skipped)
            return path
        return self.run_task(lambda ctx: write_pdf_items(items, path, ctx.progress, ctx.should_stop),
                             f"Writing {path.name}…",
                             lambda out: self._report(Path(out), len(items), skipped), path)

    def export_png(self, path: Path | str | None = None, all_cases: bool = False) -> Path | None:
        """PNG of the overlay: the canvas view for the current case; rendered for all cases."""
        from .export import collect_items, overlay_for_item, save_png
        doc = self.session.document
        if not all_cases:
            if doc is None:
                return None
            if path is None:
                path = self._ask_path("Export PNG", f"{doc.image_path.stem}-overlay.png", "PNG (*.png)")
                if path is None:
                    return None
            try:
                out = save_png(self.overlay_image(), path)
            except (OSError, ValueError) as exc:
                messages.show_exception(self.host, exc, path, "Export failed")
                return None
            self._report(out, 1, [])
            return out
        items, skipped = collect_items(self.session.cases.paths(), self.current_item())
        if not items:
            messages.show_info(self.host, "Export PNG", "There is no annotated case to export.")
            return None
        if path is None:
            folder = QFileDialog.getExistingDirectory(self.host, "Folder for the overlay PNGs",
                                                      str(self.session.last_dir))
            if not folder:
                return None
            path = Path(folder)
        folder = Path(path)

        def work(ctx):
            for i, it in enumerate(items):
                ctx.check()
                ctx.progress(i, len(items), f"rendering {it.image_path.name}")
                save_png(overlay_for_item(it), folder / f"{it.image_path.stem}-overlay.png")
            return folder

        return self.run_task(work, "Writing overlay PNGs…",
                             lambda out: self._report(Path(out), len(items), skipped), folder)
