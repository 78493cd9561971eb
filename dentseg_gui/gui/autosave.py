"""Autosave and crash recovery.

While a case has unsaved changes, its current annotation is written (atomically) to
``user_data_dir()/autosave/<hash of the image path>.dentseg.json``: 0.75 s after the last
edit, and never later than 1.5 s after the first edit not yet written, however steadily the
edits keep coming (the debounce has a maximum wait, so the work is on disk within 2 s even
on a busy machine); a slow periodic timer is the last resort. When the document returns to its saved state (a save, "discard", or Undo
back to it) the autosave is removed at once, so recovery never offers something the user
undid. If DentSeg is killed, the next start offers the autosaves that hold work the saved
files do not.

The autosave is an ordinary annotation file with one extra key, ``"autosave"``: the image
it belongs to, when it was written, the annotation file the work is based on and that
file's identity (``core.file_identity``) when the case was opened. Recovery compares that
identity with the file on disk: unchanged, the autosave is offered as usual; changed by
another program, it is still offered (never silently deleted) and ``Recovery.disk_change``
says what changed - recovering puts the autosaved work on top of the file as it is now, as
one undo step, so both versions stay reachable. Only an autosave whose content equals the
saved file (nothing to recover) is removed without asking.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from ..core.annotation import Annotation, annotation_path_for, load_annotation, save_annotation
from ..core.errors import AnnotationError, DentsegError
from ..core.file_identity import FileIdentity, changed_since

log = logging.getLogger("dentseg.gui.autosave")

AUTOSAVE_KEY = "autosave"
#: an edit is autosaved this long after the last edit ...
DEBOUNCE_MS = 750
#: ... but never later than this after the first edit not yet autosaved: 1.5 s, so that
#: with timer and disk latency on a busy machine the write is done within 2 s
MAX_WAIT_MS = 1500
#: and at least this often while the case stays modified (a last resort)
INTERVAL_MS = 60_000


def autosave_dir() -> Path:
    from ..resources import user_data_dir
    return user_data_dir() / "autosave"


def autosave_path_for(image_path: str | Path) -> Path:
    key = str(Path(image_path).resolve())
    digest = hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:20]
    return autosave_dir() / f"{digest}.dentseg.json"


def write_autosave(annotation: Annotation, image_path: str | Path, base: FileIdentity | None = None,
                   annotation_path: str | Path | None = None) -> Path:
    """Write ``annotation`` as the autosave of ``image_path`` (atomic).

    ``base``: the identity of the annotation file (``annotation_path``, by default the one
    beside the image) when the case was opened, so recovery can tell whether it changed.
    """
    ann = annotation.copy()
    ann.extra = dict(ann.extra)
    info = {"image_path": str(Path(image_path).resolve()),
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if annotation_path is not None:
        info["annotation_path"] = str(Path(annotation_path).resolve())
    if base is not None:
        info["base"] = base.as_json()
    ann.extra[AUTOSAVE_KEY] = info
    return save_annotation(ann, autosave_path_for(image_path))


def discard_autosave(image_path: str | Path) -> None:
    try:
        autosave_path_for(image_path).unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove autosave of %s: %s", image_path, exc)


@dataclass
class Recovery:
    image_path: Path
    autosave_path: Path
    saved_at: str
    annotation_path: Path | None = None     # the file the work is based on
    base: FileIdentity | None = None        # that file's identity when the case was opened
    disk_change: str | None = None          # set when that file changed since (another program)

    def load(self) -> Annotation:
        """The autosaved annotation, without the autosave bookkeeping key."""
        ann = load_annotation(self.autosave_path)
        ann.extra.pop(AUTOSAVE_KEY, None)
        return ann

    def saved_file(self) -> Path:
        return self.annotation_path or annotation_path_for(self.image_path)

    def describe(self) -> str:
        """One line for the recovery question."""
        line = f"{self.image_path.name} (autosaved {_local_time(self.saved_at)})"
        if self.disk_change:
            line += (f" - note: {self.disk_change}. Recovering puts your autosaved changes on top "
                     "of the file as it is now; Undo shows the file's version")
        return line


def _local_time(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return iso or "an earlier session"


def _read_recovery(ap: Path) -> Recovery | None:
    try:
        data = json.loads(ap.read_text(encoding="utf-8"))
        info = data[AUTOSAVE_KEY]
        ann_path = info.get("annotation_path")
        return Recovery(Path(info["image_path"]), ap, str(info.get("saved_at", "")),
                        Path(ann_path) if isinstance(ann_path, str) else None,
                        FileIdentity.from_json(info.get("base")))
    except Exception:  # noqa: BLE001 - a damaged autosave of ours must not stop the start-up
        log.warning("ignoring unreadable autosave %s", ap)
        return None


def _comparable(ann: Annotation) -> dict:
    """What a recovery could give back: everything but the derived measurements and paths."""
    d = ann.to_json_dict()
    for key in ("measurements", "measurements_missing", AUTOSAVE_KEY):
        d.pop(key, None)
    d["image"] = {k: v for k, v in d["image"].items() if k != "path"}
    return d


def _same_content(rec: Recovery, saved: Path) -> bool:
    """True when the autosave holds nothing the saved file does not (safe to delete)."""
    if not saved.exists():
        return False
    try:
        return _comparable(rec.load()) == _comparable(load_annotation(saved))
    except (DentsegError, OSError, ValueError):
        return False


def _is_newer(autosave: Path, saved: Path) -> bool:
    try:
        return autosave.stat().st_mtime_ns > saved.stat().st_mtime_ns
    except FileNotFoundError:
        return True


def judge_recovery(rec: Recovery) -> Recovery | None:
    """The recovery to offer (with ``disk_change`` filled in), or None when the autosave holds
    nothing to recover (its content is what the saved file holds)."""
    saved = rec.saved_file()
    if rec.base is not None:
        change = changed_since(rec.base, saved)
        if change is None:
            return rec
        if _same_content(rec, saved):
            return None
        rec.disk_change = change
        return rec
    # an autosave written before identities were recorded: the modification times decide,
    # and an older autosave is kept (and said to be older) unless it holds nothing new
    if _is_newer(rec.autosave_path, saved):
        return rec
    if _same_content(rec, saved):
        return None
    rec.disk_change = f"{saved.name} was saved after this autosave was written"
    return rec


def recovery_for(image_path: str | Path) -> Recovery | None:
    """The autosave of this image when it holds work its saved annotation does not."""
    ap = autosave_path_for(image_path)
    if not ap.exists():
        return None
    rec = _read_recovery(ap)
    if rec is None:
        return None
    out = judge_recovery(rec)
    if out is None:
        _remove(ap)
    return out


def pending_recoveries() -> list[Recovery]:
    """Autosaves left by an earlier session that hold unsaved work, newest first.

    Autosaves whose image no longer exists, or that hold nothing the saved file does
    not, are removed. A saved file changed by another program does not remove its
    autosave: the recovery is offered with ``disk_change`` set.
    """
    d = autosave_dir()
    if not d.is_dir():
        return []
    found = []
    for ap in d.glob("*.dentseg.json"):
        rec = _read_recovery(ap)
        if rec is None:
            continue
        judged = judge_recovery(rec) if rec.image_path.exists() else None
        if judged is None:
            _remove(ap)
            continue
        try:
            found.append((ap.stat().st_mtime_ns, judged))
        except OSError:
            continue
    return [r for _, r in sorted(found, key=lambda t: t[0], reverse=True)]


def recovery_question(recs: list[Recovery], limit: int = 8) -> str:
    """The text of the start-up recovery question (what each autosave is, what changed)."""
    lines = "\n".join(f"  • {r.describe()}" for r in recs[:limit])
    more = f"\n  … and {len(recs) - limit} more" if len(recs) > limit else ""
    return (f"DentSeg was closed without saving changes to:\n{lines}{more}\n\n"
            "Recover them? (No deletes these autosaves.)")


def remove_stale_temp_files_of_app() -> list[Path]:
    """At start-up: remove the temporary files (``.NAME.XXXXXXXX.tmp``) that a kill during an
    atomic write left in DentSeg's own folders (the user data folder and its sub-folders:
    autosave, models, demo, logs). Case folders are cleaned when their cases are listed
    (``cases.clean_case_folders``)."""
    from ..core.atomic import remove_stale_temp_files
    from ..resources import user_data_dir
    root = user_data_dir()
    try:
        folders = [root, *(p for p in root.iterdir() if p.is_dir())]
    except OSError:
        return []
    removed = remove_stale_temp_files(folders)
    if removed:
        log.info("removed %d stale temporary file(s): %s", len(removed), ", ".join(p.name for p in removed))
    return removed


def _remove(ap: Path) -> None:
    try:
        ap.unlink()
    except OSError:
        pass


class Autosaver(QObject):
    """Watches one CaseDocument and autosaves it while it has unsaved changes.

    Every edit (``changed``) restarts a ``debounce_ms`` timer; the first edit not yet
    written also starts a ``max_wait_ms`` timer that is not restarted, so steady
    editing is written at least that often. Returning to the saved state (the undo
    stack becomes clean) removes the autosave at once. ``write_now()`` is what the
    timers call (tests call it directly).
    """

    written = Signal(str)   # autosave path
    failed = Signal(str)    # message
    removed = Signal(str)   # image path whose autosave was removed (back at the saved state)

    def __init__(self, debounce_ms: int = DEBOUNCE_MS, interval_ms: int = INTERVAL_MS,
                 max_wait_ms: int = MAX_WAIT_MS, parent=None):
        super().__init__(parent)
        self._doc = None
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(debounce_ms)
        self._debounce.timeout.connect(self.write_now)
        self._max_wait = QTimer(self)
        self._max_wait.setSingleShot(True)
        self._max_wait.setTimerType(Qt.TimerType.PreciseTimer)  # a coarse timer may fire 5 % late
        self._max_wait.setInterval(max_wait_ms)
        self._max_wait.timeout.connect(self.write_now)
        self._periodic = QTimer(self)
        self._periodic.setInterval(interval_ms)
        self._periodic.timeout.connect(self.write_now)
        self._failed_once = False
        self.last_write = 0.0

    def attach(self, doc) -> None:
        """Watch ``doc`` (a CaseDocument) or nothing (None).

        The document watched before is autosaved one last time if it has unsaved
        changes, and its autosave removed if it has none.
        """
        old = self._doc
        if old is not None:
            for signal, slot in ((old.changed, self._on_changed), (old.modifiedChanged, self._on_modified)):
                try:
                    signal.disconnect(slot)
                except (RuntimeError, TypeError):
                    pass
            self._settle(old)
        self._doc = doc
        self._stop_timers()
        if doc is None:
            self._periodic.stop()
            return
        doc.changed.connect(self._on_changed)
        doc.modifiedChanged.connect(self._on_modified)
        self._periodic.start()

    @property
    def pending(self) -> bool:
        """True while an edit waits to be written."""
        return self._debounce.isActive() or self._max_wait.isActive()

    def _on_changed(self, *args) -> None:
        self._debounce.start()
        if not self._max_wait.isActive():
            self._max_wait.start()

    def _on_modified(self, modified: bool) -> None:
        if not modified:  # back at the saved state: nothing to recover
            self._stop_timers()
            self._remove_for(self._doc)

    def _stop_timers(self) -> None:
        self._debounce.stop()
        self._max_wait.stop()

    def write_now(self) -> Path | None:
        """Write the autosave now if the document has unsaved changes; remove it if it has none."""
        self._stop_timers()
        doc = self._doc
        if doc is None or doc.image_path is None:
            return None
        if not doc.is_modified():
            self._remove_for(doc)
            return None
        try:
            path = write_autosave(doc.annotation, doc.image_path, getattr(doc, "disk_identity", None),
                                  doc.annotation_path)
        except (OSError, AnnotationError, ValueError) as exc:
            msg = f"autosave failed: {exc}"
            log.warning(msg)
            if not self._failed_once:  # say it once per session, not every minute
                self._failed_once = True
                self.failed.emit(msg)
            return None
        self.last_write = time.time()
        self.written.emit(str(path))
        return path

    def _settle(self, doc) -> None:
        """Last word on a document that stops being watched."""
        try:
            if doc.image_path is None:
                return
            if doc.is_modified():
                if self.pending:
                    self._doc = doc
                    self.write_now()
            else:
                self._remove_for(doc)
        except RuntimeError:  # the document's C++ side is already gone
            pass

    def _remove_for(self, doc) -> None:
        if doc is None or doc.image_path is None:
            return
        if autosave_path_for(doc.image_path).exists():
            discard_autosave(doc.image_path)
            self.removed.emit(str(doc.image_path))

    def stop(self) -> None:
        """Stop the timers (the window closes). An unmodified document's autosave is removed."""
        self._stop_timers()
        self._periodic.stop()
        doc = self._doc
        if doc is not None:
            self._settle(doc)
