"""Cases: an image plus its ``<stem>.dentseg.json`` beside it.

This module holds what the window needs to manage cases without knowing how
they are drawn:

* :func:`find_images` / :func:`expand_paths` - which files of a folder are images;
* :func:`load_case` - image + annotation (or an empty one) as a :class:`LoadedCase`,
  safe to call in a worker thread (no Qt objects made);
* :class:`CaseList` - the list model behind the "Cases" dock, one row per case
  with its status (unannotated / predicted / edited / saved / error);
* :func:`app_settings` and :class:`RecentFiles` - the remembered settings.

Saving always goes through ``core.annotation.save_annotation`` (atomic).
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from PySide6.QtCore import QAbstractListModel, QModelIndex, QSettings, Qt
from PySide6.QtGui import QColor

from ..core.annotation import (MAX_FILE_BYTES, SUFFIX, Annotation, annotation_from_bytes,
                               annotation_path_for, load_annotation)
from ..core.atomic import remove_stale_temp_files
from ..core.errors import AnnotationError, ImageLoadError
from ..core.file_identity import FileIdentity, read_with_identity
from ..core.provenance import has_content, is_model_only, prediction_flag

# What the loader reads (core.image_io is the authority; this list only picks files in a folder).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom")

STATUS_UNANNOTATED = "unannotated"
STATUS_PREDICTED = "predicted"
STATUS_EDITED = "edited"
STATUS_SAVED = "saved"
STATUS_ERROR = "error"
STATUS_LISTING = "listing…"          # listed, its annotation file not read yet (folder scan running)

_STATUS_STYLE = {  # marker colour (and a character for plain-text use)
    STATUS_UNANNOTATED: ("#8a8f98", "○"),
    STATUS_PREDICTED: ("#2f7fd0", "◐"),
    STATUS_EDITED: ("#c77700", "✎"),
    STATUS_SAVED: ("#2e9a4a", "●"),
    STATUS_ERROR: ("#c0392b", "⚠"),
    STATUS_LISTING: ("#b0b4ba", "·"),
}


_icons: dict = {}


def _status_icon(status: str):
    """A small filled circle in the status colour (cached; made on first use in the GUI thread)."""
    from PySide6.QtGui import QBrush, QIcon, QPainter, QPixmap
    if status not in _icons:
        colour = QColor(_STATUS_STYLE.get(status, ("#000000", "?"))[0])
        pm = QPixmap(12, 12)
        pm.fill(Qt.GlobalColor.transparent)
        p = QPainter(pm)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(colour.darker(130))
        p.setBrush(QBrush(colour))
        if status == STATUS_UNANNOTATED:
            p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawEllipse(1, 1, 10, 10)
        p.end()
        _icons[status] = QIcon(pm)
    return _icons[status]


# --------------------------------------------------------------------------- settings


def app_settings() -> QSettings:
    """The app's QSettings (organisation "DentSeg", application "DentSeg").

    When ``XDG_CONFIG_HOME`` is set the file lives there, read afresh every
    call (Qt caches its default paths per process; tests change the variable
    per test, so the path is computed here instead).
    """
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        path = Path(xdg) / "DentSeg" / "DentSeg.conf"
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings("DentSeg", "DentSeg")


class RecentFiles:
    """Most recently opened images and folders, newest first (at most ``limit``)."""

    KEY = "recent/paths"

    def __init__(self, limit: int = 10):
        self.limit = limit

    def paths(self) -> list[Path]:
        value = app_settings().value(self.KEY, [])
        if isinstance(value, str):
            value = [value]
        return [Path(v) for v in (value or []) if v]

    def add(self, path: str | Path) -> None:
        p = str(Path(path).resolve())
        items = [str(x) for x in self.paths() if str(x) != p]
        items.insert(0, p)
        s = app_settings()
        s.setValue(self.KEY, items[: self.limit])
        s.sync()

    def clear(self) -> None:
        s = app_settings()
        s.remove(self.KEY)
        s.sync()


# --------------------------------------------------------------------------- files


def is_image_file(path: Path) -> bool:
    """An image ``load_image`` will try to read (by suffix or by content); never an annotation."""
    if not path.is_file() or path.name.startswith(".") or path.name.endswith(SUFFIX):
        return False
    if path.suffix.lower() in (".json", ".txt", ".md", ".properties", ".csv", ".pdf", ".pt"):
        return False
    try:
        from ..core.image_io import is_supported
    except ImportError:  # loader not importable: fall back to the suffix
        return path.suffix.lower() in IMAGE_SUFFIXES
    return is_supported(path)


def find_images(folder: str | Path) -> list[Path]:
    """The image files directly inside ``folder`` (not recursive), sorted by name."""
    folder = Path(folder)
    return sorted((p for p in folder.iterdir() if is_image_file(p)), key=lambda p: p.name.lower())


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given (annotation files map to their image), folders to their images."""
    out: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        items = find_images(p) if p.is_dir() else [image_for_annotation(p) or p]
        for q in items:
            key = q.resolve()
            if key not in seen:
                seen.add(key)
                out.append(q)
    return out


def image_for_annotation(path: Path) -> Path | None:
    """``case.dentseg.json`` -> the image it names (if it is there)."""
    if not path.name.endswith(SUFFIX):
        return None
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        rel = data["image"]["path"]
        if not isinstance(rel, str):
            return None
        cand = (path.parent / rel)
        return cand if cand.is_file() else None
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None


# --------------------------------------------------------------------------- loading


@dataclass
class LoadedCase:
    image_path: Path
    image: object                 # core.image.SliceImage
    annotation: Annotation
    annotation_path: Path
    note: str = ""                # something the user should know (e.g. spacing unknown)
    #: the annotation file's identity when these bytes were read (``exists=False``: no file);
    #: pass it to ``CaseDocument(disk_identity=...)`` so Save can tell a change on disk
    disk_identity: FileIdentity | None = None


def empty_annotation(image, image_path: Path) -> Annotation:
    return Annotation(image_path=image_path.name, width=image.width, height=image.height,
                      pixel_spacing_mm=image.spacing_mm)


def load_case(image_path: str | Path, spacing: tuple[float, float] | None = None) -> LoadedCase:
    """Read the image and its annotation file (if any). Runs in a worker thread.

    Raises ``ImageLoadError`` / ``AnnotationError`` with a message naming the file.
    An annotation made for an image of another size is refused, not silently
    drawn in the wrong place. Spacing: the image's own (DICOM), else the one in
    the annotation file, else ``spacing`` (the --spacing default).
    """
    from ..core.image_io import load_image

    image_path = Path(image_path)
    if not image_path.exists():
        raise ImageLoadError(f"{image_path.name}: file not found ({image_path}). "
                             "It may have been moved or deleted.")
    image = load_image(image_path)
    ann_path = annotation_path_for(image_path)
    note = ""
    identity = FileIdentity.missing()
    if ann_path.exists():
        ann, identity = _read_annotation(ann_path)
        if (ann.width, ann.height) != (image.width, image.height):
            raise AnnotationError(
                f"{ann_path.name}: made for an image of {ann.width}×{ann.height} pixels but "
                f"{image_path.name} is {image.width}×{image.height}. Move or rename the annotation "
                "file if it belongs to another image.")
    else:
        ann = empty_annotation(image, image_path)
    if image.spacing_mm is not None:
        if ann.pixel_spacing_mm is None:
            ann.pixel_spacing_mm = image.spacing_mm
            ann.provenance.setdefault("spacing_source", "DICOM")
    else:
        if ann.pixel_spacing_mm is not None:
            image = image.with_spacing(ann.pixel_spacing_mm)
        elif spacing is not None:
            image = image.with_spacing(tuple(spacing))
            ann.pixel_spacing_mm = tuple(spacing)
            ann.provenance.setdefault("spacing_source", "user")
        else:
            note = (f"{image_path.name} carries no pixel spacing: measurements stay missing until "
                    "you set it (Edit > Pixel spacing…).")
    return LoadedCase(image_path, image, ann, ann_path, note, identity)


def _read_annotation(ann_path: Path) -> tuple[Annotation, FileIdentity]:
    """The annotation and the identity of exactly the bytes parsed. Any failure is an
    ``AnnotationError`` naming the file (the case is then listed as an error)."""
    try:
        raw, identity = read_with_identity(ann_path, MAX_FILE_BYTES)
        return annotation_from_bytes(raw, ann_path.name), identity
    except AnnotationError:
        raise
    except OSError as exc:
        raise AnnotationError(f"{ann_path.name}: cannot be read ({exc.strerror or exc})") from None
    except Exception as exc:  # noqa: BLE001 - a file must never take the app down
        raise AnnotationError(f"{ann_path.name}: cannot be read ({type(exc).__name__}: "
                              f"{str(exc)[:160]})") from None


# --------------------------------------------------------------------------- status


def annotation_status(ann: Annotation | None) -> str:
    """unannotated / predicted (model output nobody edited) / saved (has human work)."""
    if not has_content(ann):
        return STATUS_UNANNOTATED
    return STATUS_PREDICTED if is_model_only(ann) else STATUS_SAVED


def has_hand_work(ann: Annotation) -> bool:
    """Anything a person drew, placed or corrected (what a prediction must not overwrite)."""
    if annotation_status(ann) == STATUS_UNANNOTATED:
        return False
    return not is_model_only(ann)


def disk_status(image_path: Path) -> tuple[str, str]:
    """(status, detail) from the annotation file beside the image, without reading the image."""
    status, detail, _ = disk_state(image_path)
    return status, detail


_listing_cache: "OrderedDict[str, tuple[tuple[int, int], Annotation | str]]" = OrderedDict()
_LISTING_CACHE_SIZE = 4096


def read_annotation_for_listing(ann_path: Path) -> Annotation:
    """The annotation file parsed once per (path, modification time, size), for READING ONLY.

    Listing a folder reads every annotation (case status here, trainable cases in the
    training panel); this parses each file once for both, and again only when it changed.
    The object is shared: never edit it (a case opened for editing is read afresh by
    ``load_case``). Raises ``AnnotationError`` (also cached) like ``load_annotation``.
    """
    key = str(ann_path)
    st = os.stat(ann_path)
    stamp = (st.st_mtime_ns, st.st_size)
    hit = _listing_cache.get(key)
    if hit is not None and hit[0] == stamp:
        _listing_cache.move_to_end(key)
        value = hit[1]
    else:
        try:
            value = load_annotation(ann_path)
        except AnnotationError as exc:
            value = str(exc)
        _listing_cache[key] = (stamp, value)
        while len(_listing_cache) > _LISTING_CACHE_SIZE:
            _listing_cache.popitem(last=False)
    if isinstance(value, str):
        raise AnnotationError(value)
    return value


def disk_state(image_path: Path) -> tuple[str, str, str]:
    """(status, detail, flag): ``disk_status`` plus the prediction flag (``prediction_flag``);
    a flagged case's detail says why."""
    ann_path = annotation_path_for(image_path)
    if not image_path.exists():
        return STATUS_ERROR, "image file not found", ""
    try:
        ann = read_annotation_for_listing(ann_path)
    except FileNotFoundError:
        return STATUS_UNANNOTATED, "", ""
    except OSError as exc:
        return STATUS_ERROR, f"{ann_path.name}: cannot be read ({exc.strerror})", ""
    except AnnotationError as exc:
        return STATUS_ERROR, str(exc), ""
    except Exception as exc:  # noqa: BLE001 - listing a case must never fail
        return STATUS_ERROR, f"{ann_path.name}: cannot be read ({type(exc).__name__})", ""
    flag, detail = flag_and_detail(ann)
    return annotation_status(ann), detail, flag


def flag_and_detail(ann: Annotation | None) -> tuple[str, str]:
    """(flag, tooltip line) for the case list: ``prediction_flag`` and why, or ('', '')."""
    flag, why = prediction_flag(ann)
    return flag, (f"model output flagged ({flag}): {why}" if flag else "")

# --------------------------------------------------------------------------- stale temporary files

_cleaned_folders: set[str] = set()


def clean_case_folders(image_paths: Iterable[Path]) -> list[Path]:
    """Remove the hidden ``.<stem>.dentseg.json.XXXXXXXX.tmp`` files a kill during a save left
    beside these images (once per folder per session; only ours, only stale ones)."""
    folders = []
    for p in image_paths:
        folder = str(Path(p).parent.resolve())
        if folder not in _cleaned_folders:
            _cleaned_folders.add(folder)
            folders.append(folder)
    return remove_stale_temp_files(folders, suffixes=(SUFFIX,)) if folders else []


# --------------------------------------------------------------------------- list model


@dataclass
class CaseEntry:
    image_path: Path
    status: str = STATUS_UNANNOTATED
    detail: str = ""                      # error text or a note shown as tooltip
    extra: dict = field(default_factory=dict)
    flag: str = ""                        # 'check' | 'doubtful': unreviewed model output flagged
    key: str = ""                         # the resolved path (for lookups), filled in by the list

    def __post_init__(self) -> None:
        if not self.key:
            self.key = path_key(self.image_path)

    @property
    def annotation_path(self) -> Path:
        return annotation_path_for(self.image_path)

    @property
    def name(self) -> str:
        return self.image_path.name


def path_key(path: str | Path) -> str:
    try:
        return str(Path(path).resolve())
    except OSError:
        return str(Path(path).absolute())


def scan_case(image_path: Path) -> tuple[str, str, str, bool]:
    """(status, detail, flag, has its own spacing) of a listed case: reads its annotation (once,
    ``read_annotation_for_listing``) and, for DICOM without one, the header. Safe in a worker."""
    from ..core.case_spacing import own_spacing_known
    state = disk_state(image_path)
    ann_path = annotation_path_for(image_path)
    try:
        sp = read_annotation_for_listing(ann_path).pixel_spacing_mm if ann_path.is_file() else None
    except (OSError, AnnotationError):
        sp = None
    return (*state, sp is not None or own_spacing_known(image_path))


class CaseList(QAbstractListModel):
    """The open cases, one row each, with a coloured status marker.

    A large folder is listed at once with every case "listing…" (``set_pending``) and the
    statuses are filled in as a worker reads the annotation files (``apply_states``), so
    opening a folder never waits for a thousand JSON files on the GUI thread.
    """

    StatusRole = Qt.ItemDataRole.UserRole + 1
    PathRole = Qt.ItemDataRole.UserRole + 2

    def __init__(self, parent=None):
        super().__init__(parent)
        self.entries: list[CaseEntry] = []
        self._rows: dict[str, int] = {}

    def _reindex(self) -> None:
        self._rows = {e.key: i for i, e in enumerate(self.entries)}

    # ---- Qt model
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.entries)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self.entries):
            return None
        e = self.entries[index.row()]
        colour, mark = _STATUS_STYLE.get(e.status, ("#000000", "?"))
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{e.name}   · {e.status}" + (f" ⚠ {e.flag}" if e.flag else "")
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = f"{e.image_path}\nstatus: {e.status}"
            return tip + (f"\n{e.detail}" if e.detail else "")
        if role == Qt.ItemDataRole.ForegroundRole:
            return QColor(colour) if e.status in (STATUS_ERROR, STATUS_EDITED) else None
        if role == Qt.ItemDataRole.DecorationRole:
            return _status_icon(e.status)
        if role == self.StatusRole:
            return e.status
        if role == self.PathRole:
            return str(e.image_path)
        return None

    # ---- editing
    def set_paths(self, paths: Iterable[Path]) -> None:
        paths = list(paths)
        clean_case_folders(paths)
        self.beginResetModel()
        self.entries = []
        for p in paths:
            status, detail, flag = disk_state(p)
            self.entries.append(CaseEntry(Path(p), status, detail, flag=flag))
        self._reindex()
        self.endResetModel()

    def set_pending(self, paths: Iterable[Path]) -> None:
        """List ``paths`` at once, each "listing…"; ``apply_states`` fills them in."""
        self.beginResetModel()
        self.entries = [CaseEntry(Path(p), STATUS_LISTING) for p in paths]
        self._reindex()
        self.endResetModel()

    def add_pending(self, paths: Iterable[Path]) -> list[int]:
        """Append the paths not listed yet as "listing…"; the rows of all of ``paths``."""
        rows, new = [], []
        for p in paths:
            row = self.row_of(p)
            if row is None:
                row = len(self.entries) + len(new)
                new.append(CaseEntry(Path(p), STATUS_LISTING))
                self._rows[new[-1].key] = row
            rows.append(row)
        if new:
            n = len(self.entries)
            self.beginInsertRows(QModelIndex(), n, n + len(new) - 1)
            self.entries.extend(new)
            self.endInsertRows()
        return rows

    def apply_states(self, states: Iterable[tuple[str, tuple[str, str, str]]]) -> None:
        """Statuses read by a worker: (the case's key - its resolved path, ``path_key`` - made in
        the worker, (status, detail, flag)); one repaint for the whole batch."""
        lo, hi = None, None
        for key, (status, detail, flag) in states:
            row = self._rows.get(key)
            if row is None:
                continue
            e = self.entries[row]
            if e.status != STATUS_LISTING:          # edited or opened meanwhile: the GUI's state wins
                continue
            e.status, e.detail, e.flag = status, detail, flag
            lo = row if lo is None else min(lo, row)
            hi = row if hi is None else max(hi, row)
        if lo is not None:
            self.dataChanged.emit(self.index(lo), self.index(hi))

    def add_paths(self, paths: Iterable[Path]) -> list[int]:
        """Append cases not already listed; return the rows of the given paths."""
        paths = list(paths)
        clean_case_folders(paths)
        rows = []
        for p in paths:
            row = self.row_of(p)
            if row is None:
                status, detail, flag = disk_state(p)
                n = len(self.entries)
                self.beginInsertRows(QModelIndex(), n, n)
                self.entries.append(CaseEntry(Path(p), status, detail, flag=flag))
                self._rows[self.entries[-1].key] = n
                self.endInsertRows()
                row = n
            rows.append(row)
        return rows

    def row_of(self, path: str | Path) -> int | None:
        return self._rows.get(path_key(path))

    def set_status(self, row: int, status: str, detail: str = "", flag: str = "") -> None:
        if 0 <= row < len(self.entries):
            self.entries[row].status = status
            self.entries[row].detail = detail
            self.entries[row].flag = flag
            idx = self.index(row)
            self.dataChanged.emit(idx, idx)

    def refresh_from_disk(self, row: int) -> None:
        if 0 <= row < len(self.entries):
            self.set_status(row, *disk_state(self.entries[row].image_path))

    def paths(self) -> list[Path]:
        return [e.image_path for e in self.entries]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.entries:
            out[e.status] = out.get(e.status, 0) + 1
        return out
