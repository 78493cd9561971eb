"""Before Save replaces the annotation file: did another program change it meanwhile?

Another DentSeg, a sync client or ``git checkout`` may rewrite a ``.dentseg.json`` while
its case is open. The document remembers the file's identity (size, time, SHA-256) from
when it was read or last saved (``CaseDocument.disk_identity``); ``check_before_save``
compares it with the file now and, when it changed, asks the user: Overwrite (replace it
with this version), Save as (keep both), Reload (show the file's version: the unsaved
changes stay one Undo away) or Cancel. Nothing here builds a widget except through
``messages``, so it is tested without the window.

The save flow calls it just before writing (``CaseSession.save_current``)::

    choice = check_before_save(doc, target, host)
    if choice == SAVE_AS:  return self.save_as()
    if choice == RELOAD:   reload_from_disk(doc) or <reopen the case>; return False
    if choice == CANCEL:   return False
    save_annotation(...); doc.mark_saved(target)     # mark_saved re-reads the identity
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..core.annotation import MAX_FILE_BYTES, annotation_from_bytes
from ..core.errors import AnnotationError
from ..core.file_identity import read_with_identity

SAVE, SAVE_AS, RELOAD, CANCEL = "save", "save_as", "reload", "cancel"


def disk_change_for(doc, target: str | Path) -> str | None:
    """How ``target`` changed since ``doc`` read or saved it; None when unchanged, or when
    ``target`` is not the document's file (Save as: the file dialog asked about replacing)."""
    if doc.annotation_path is None:
        return None
    try:
        same = Path(target).resolve() == Path(doc.annotation_path).resolve()
    except OSError:
        same = False
    return doc.disk_change() if same else None


def check_before_save(doc, target: str | Path, host=None,
                      ask: Callable[[str, str], str | None] | None = None) -> str:
    """SAVE (unchanged on disk, or the user chose Overwrite), SAVE_AS, RELOAD or CANCEL.

    ``ask(file name, what changed)`` returns 'overwrite' | 'save_as' | 'reload' | 'cancel'
    (None = cancel); by default ``messages.ask_disk_changed`` (headless: cancel, so
    nothing is overwritten unseen; the work stays open and autosaved).
    """
    change = disk_change_for(doc, target)
    if change is None:
        return SAVE
    if ask is None:
        from . import messages
        ask = lambda name, text: messages.ask_disk_changed(host, name, text)  # noqa: E731
    answer = ask(Path(target).name, change)
    return {"overwrite": SAVE, "save_as": SAVE_AS, "reload": RELOAD}.get(answer or "", CANCEL)


def reload_from_disk(doc) -> bool:
    """Make ``doc`` show its annotation file as it is on disk now.

    One undo step: the file's version becomes the saved (clean) state and Undo brings
    the unsaved version back. Returns False when the file's version cannot be one step
    (made for another image size, other extra fields): reopen the case instead. Raises
    ``AnnotationError`` when the file is gone or unreadable.
    """
    path = doc.annotation_path
    try:
        raw, identity = read_with_identity(path, MAX_FILE_BYTES)
    except OSError as exc:
        raise AnnotationError(f"{Path(path).name}: cannot be reloaded ({exc.strerror or exc})") from None
    ann = annotation_from_bytes(raw, Path(path).name)
    try:
        doc.restore_annotation(ann, "Reloaded from disk")
    except AnnotationError:
        return False
    doc.undo_stack.setClean()
    doc.disk_identity = identity
    return True


__all__ = ["CANCEL", "RELOAD", "SAVE", "SAVE_AS", "check_before_save", "disk_change_for",
           "reload_from_disk"]
