"""Autosave and crash recovery.

While a case has unsaved changes, its current annotation is written
(atomically) to ``user_data_dir()/autosave/<hash of the image path>.dentseg.json``
a couple of seconds after the last edit and at least every minute. A normal
save or "discard" removes that file. If DentSeg is killed, the next start finds
autosaves newer than the saved annotation and offers to recover them.

The autosave is an ordinary annotation file with one extra key,
``"autosave": {"image_path": <absolute path>, "saved_at": <ISO time>}``, so
recovery knows which image it belongs to.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from ..core.annotation import Annotation, annotation_path_for, load_annotation, save_annotation
from ..core.errors import AnnotationError

log = logging.getLogger("dentseg.gui.autosave")

AUTOSAVE_KEY = "autosave"


def autosave_dir() -> Path:
    from ..resources import user_data_dir
    return user_data_dir() / "autosave"


def autosave_path_for(image_path: str | Path) -> Path:
    key = str(Path(image_path).resolve())
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:20]
    return autosave_dir() / f"{digest}.dentseg.json"


def write_autosave(annotation: Annotation, image_path: str | Path) -> Path:
    """Write ``annotation`` as the autosave of ``image_path`` (atomic)."""
    ann = annotation.copy()
    ann.extra = dict(ann.extra)
    ann.extra[AUTOSAVE_KEY] = {"image_path": str(Path(image_path).resolve()),
                               "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
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

    def load(self) -> Annotation:
        """The autosaved annotation, without the autosave bookkeeping key."""
        ann = load_annotation(self.autosave_path)
        ann.extra.pop(AUTOSAVE_KEY, None)
        return ann


def _is_newer(autosave: Path, saved: Path) -> bool:
    try:
        return autosave.stat().st_mtime_ns > saved.stat().st_mtime_ns
    except FileNotFoundError:
        return True


def recovery_for(image_path: str | Path) -> Recovery | None:
    """The autosave of this image if it is newer than its saved annotation."""
    ap = autosave_path_for(image_path)
    if not ap.exists():
        return None
    if not _is_newer(ap, annotation_path_for(image_path)):
        return None
    return _read_recovery(ap)


def _read_recovery(ap: Path) -> Recovery | None:
    try:
        data = json.loads(ap.read_text(encoding="utf-8"))
        info = data[AUTOSAVE_KEY]
        return Recovery(Path(info["image_path"]), ap, str(info.get("saved_at", "")))
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("ignoring unreadable autosave %s", ap)
        return None


def pending_recoveries() -> list[Recovery]:
    """Autosaves left by an earlier session that are newer than the saved files, newest first.

    Autosaves whose image no longer exists, or that are older than the saved
    annotation (the user saved after all), are removed.
    """
    d = autosave_dir()
    if not d.is_dir():
        return []
    found = []
    for ap in d.glob("*.dentseg.json"):
        rec = _read_recovery(ap)
        if rec is None:
            continue
        if not rec.image_path.exists() or not _is_newer(ap, annotation_path_for(rec.image_path)):
            try:
                ap.unlink()
            except OSError:
                pass
            continue
        found.append((ap.stat().st_mtime_ns, rec))
    return [r for _, r in sorted(found, key=lambda t: t[0], reverse=True)]


class Autosaver(QObject):
    """Watches one CaseDocument and autosaves it while it has unsaved changes.

    ``changed()`` restarts a short debounce timer; a periodic timer catches long
    editing sessions with no pause. ``write_now()`` is what both call (tests
    call it directly).
    """

    written = Signal(str)   # autosave path
    failed = Signal(str)    # message

    def __init__(self, debounce_ms: int = 2000, interval_ms: int = 60_000, parent=None):
        super().__init__(parent)
        self._doc = None
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(debounce_ms)
        self._debounce.timeout.connect(self.write_now)
        self._periodic = QTimer(self)
        self._periodic.setInterval(interval_ms)
        self._periodic.timeout.connect(self.write_now)
        self._failed_once = False
        self.last_write = 0.0

    def attach(self, doc) -> None:
        """Watch ``doc`` (a CaseDocument) or nothing (None)."""
        if self._doc is not None:
            try:
                self._doc.changed.disconnect(self._on_changed)
            except (RuntimeError, TypeError):
                pass
        self._doc = doc
        self._debounce.stop()
        if doc is None:
            self._periodic.stop()
            return
        doc.changed.connect(self._on_changed)
        self._periodic.start()

    def _on_changed(self, *args) -> None:
        self._debounce.start()

    def write_now(self) -> Path | None:
        doc = self._doc
        if doc is None or doc.image_path is None or not doc.is_modified():
            return None
        try:
            path = write_autosave(doc.annotation, doc.image_path)
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

    def stop(self) -> None:
        self._debounce.stop()
        self._periodic.stop()
