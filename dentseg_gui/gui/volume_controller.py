"""The open CBCT volume: loading and tooth detection in a worker, the tooth's plane, measuring it.

``VolumeController`` owns the volume, the teeth found in it and the *edited* axis
of the tooth being looked at (the plane model the views observe, like 3D Slicer's
slice node: every view reads it, dragging a handle in any view rewrites it). Axis
edits are commands on the controller's own undo stack (a drag is one step), so
Edit › Undo works in the volume view as on a slice.

"Measure this slice" writes the oblique slice as a DICOM file with its
``.dentseg.json`` (spacing and plane in the provenance) and hands it to the
``CaseSession`` as an ordinary case, where predict, correct, measure and export
work as for any slice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from ..core.errors import DentsegError
from ..core.volume import Plane, ToothAxis, Volume, plane_for_tooth
from . import messages
from .work_tracker import WorkTracker
from .workers import Cancelled, TaskWorker

log = logging.getLogger("dentseg.gui.volume")

SLICE_SIZE_MM = (48.0, 48.0)
CENTRAL_INCISORS = (11, 21)


@dataclass
class OpenedVolume:
    """What the loading worker hands back."""

    path: Path
    volume: Volume
    teeth: dict[int, ToothAxis] = field(default_factory=dict)
    detection_error: str = ""


def default_loader(path, progress=None, should_stop=None) -> Volume:
    from ..core.volume_io import load_volume
    return load_volume(path, progress=progress, should_stop=should_stop)


def _detect(detector, volume, at, ctx, progress=None):
    """Run the tooth detector in a worker: an error raised because the user stopped it is a Cancel."""
    try:
        return detector(volume, at=at, teeth=CENTRAL_INCISORS, progress=progress, should_stop=ctx.should_stop)
    except DentsegError:
        if ctx.should_stop():
            raise Cancelled() from None
        raise


def default_detector(volume, at=None, teeth=CENTRAL_INCISORS, progress=None, should_stop=None):
    from ..core.tooth_detection import detect_incisors
    return detect_incisors(volume, at=at, teeth=teeth, progress=progress, should_stop=should_stop)


def default_slice_writer(volume: Volume, axis: ToothAxis, out_dir: Path, *, offset_mm: float,
                         slab_mm: float, spacing_mm: float, stem: str) -> Path:
    """The tooth's slice as a DICOM CT image + its .dentseg.json (``core.slice_dicom``); the .dcm path."""
    from ..core.reslice import reslice
    from ..core.slice_dicom import write_slice
    from ..core.tooth_slices import slice_name
    plane = plane_for_tooth(axis, spacing_mm, SLICE_SIZE_MM, offset_mm)
    dcm, _json = write_slice(volume, plane, reslice(volume, plane, slab_mm=slab_mm),
                             Path(out_dir) / slice_name(stem, int(axis.tooth), offset_mm),
                             tooth=axis, offset_mm=offset_mm, slab_mm=slab_mm)
    return dcm


class _AxisCommand(QUndoCommand):
    """One edit of the plane (a handle drag, a rotation, a reset); consecutive pushes with the
    same merge key fold into one step."""

    def __init__(self, ctl: "VolumeController", old: ToothAxis, new: ToothAxis, text: str, merge_key=None):
        super().__init__(text)
        self.ctl, self.old, self.new, self.key = ctl, old, new, merge_key

    def id(self) -> int:  # noqa: A003 - Qt API
        return 7301 if self.key is not None else -1

    def mergeWith(self, other) -> bool:  # noqa: N802 - Qt API
        if not isinstance(other, _AxisCommand) or other.key != self.key or self.key is None:
            return False
        self.new = other.new
        return True

    def redo(self) -> None:
        self.ctl._set_axis(self.new)

    def undo(self) -> None:
        self.ctl._set_axis(self.old)


class VolumeController(QObject):
    volumeOpened = Signal(object)        # Volume (None when closed)
    teethChanged = Signal(object)        # dict[int, ToothAxis] of the detected teeth
    axisChanged = Signal(object)         # the edited ToothAxis of the current tooth (or None)
    previewAxis = Signal(object)         # an axis being dragged (not yet a step)
    statusMessage = Signal(str, int)
    failed = Signal(str)                 # loading or detection failed (message)

    def __init__(self, host, session, tracker: WorkTracker, loader: Callable = default_loader,
                 detector: Callable = default_detector, slice_writer: Callable = default_slice_writer,
                 parent=None):
        super().__init__(parent)
        self.host, self.session, self.tracker = host, session, tracker
        self.loader, self.detector, self.slice_writer = loader, detector, slice_writer
        self.path: Path | None = None
        self.volume: Volume | None = None
        self.teeth: dict[int, ToothAxis] = {}
        self.edited: dict[int, ToothAxis] = {}
        self.tooth: int | None = None
        self.slab_mm = 0.0
        self.undo_stack = QUndoStack(self)

    # ------------------------------------------------------------------ state
    @property
    def axis(self) -> ToothAxis | None:
        return None if self.tooth is None else self.edited.get(self.tooth)

    def spacing_mm(self) -> float:
        """Pixel size of the oblique slice: the volume's finest voxel spacing, isotropic."""
        return float(min(self.volume.spacing)) if self.volume is not None else 0.25

    def plane(self, axis: ToothAxis | None = None, offset_mm: float = 0.0, spacing: float | None = None) -> Plane | None:
        axis = axis or self.axis
        if axis is None or self.volume is None:
            return None
        return plane_for_tooth(axis, spacing or self.spacing_mm(), SLICE_SIZE_MM, offset_mm)

    def is_loading(self) -> bool:
        return self.tracker.running("volume")

    # ------------------------------------------------------------------ opening
    def open_volume(self, path: Path | str, at=None) -> bool:
        """Load ``path`` (DICOM series folder, enhanced DICOM, NIfTI, NRRD) and find the central
        incisors, in a worker with progress and Cancel. The open volume stays until the new one
        has loaded."""
        if self.is_loading():
            self.statusMessage.emit("Still opening the previous volume…", 3000)
            return False
        path = Path(path)
        loader, detector = self.loader, self.detector

        def work(ctx) -> OpenedVolume:
            from ..core.volume_io import VolumeCancelled
            ctx.progress(0, 0, f"reading {path.name}…")
            try:
                vol = loader(path, progress=lambda d, t, s="": ctx.progress(d, t, s or f"reading {path.name}"),
                             should_stop=ctx.should_stop)
            except VolumeCancelled:
                raise Cancelled() from None
            ctx.check()
            ctx.progress(0, 0, "finding the upper central incisors…")
            try:
                found = _detect(detector, vol, at, ctx,
                                progress=lambda d, t, s="": ctx.progress(d, t, s or "finding the incisors…"))
                err = "" if found else "no upper central incisor found"
            except DentsegError as exc:
                found, err = [], str(exc)
            return OpenedVolume(path, vol, {int(t.tooth): t for t in found}, err)

        # the handler gets the volume from the signal; the worker lets go of it once delivered
        w = self.tracker.track(TaskWorker(work, name=f"open {path.name}", error_path=path, parent=self,
                                          release_after_delivery=True), "volume")
        w.progress.connect(self.tracker.set_progress)
        w.succeeded.connect(self._on_opened)
        w.failed.connect(self._on_failed)
        w.cancelled.connect(lambda: self.statusMessage.emit("Opening the volume was cancelled.", 5000))
        self.tracker.set_progress(0, 0, f"Opening {path.name}…")
        self.tracker.busyChanged.emit(True)
        w.start()
        return True

    def _on_failed(self, message: str) -> None:
        messages.show_error(self.host, "Cannot open volume", message + "\n\nNothing that was open was changed.")
        self.failed.emit(message)

    def _on_opened(self, opened: OpenedVolume) -> None:
        self.path, self.volume = opened.path, opened.volume
        self.teeth = dict(opened.teeth)
        self.edited = dict(opened.teeth)
        self.undo_stack.clear()
        self.tooth = next((t for t in CENTRAL_INCISORS if t in self.teeth), next(iter(self.teeth), None))
        self.volumeOpened.emit(self.volume)
        self.teethChanged.emit(self.teeth)
        self.axisChanged.emit(self.axis)
        shape = "×".join(str(n) for n in reversed(self.volume.shape))
        if opened.detection_error:
            self.statusMessage.emit(f"Opened {opened.path.name} ({shape}); {opened.detection_error}. "
                                    "Click a crown in a view to place the tooth by hand.", 15000)
        else:
            found = ", ".join(f"{t} ({self.teeth[t].confidence:.0%})" for t in sorted(self.teeth))
            self.statusMessage.emit(f"Opened {opened.path.name} ({shape}); found {found}.", 10000)

    def find_tooth_at(self, point_lps) -> bool:
        """Semi-automatic path: the tooth whose crown holds ``point_lps`` (in a worker)."""
        if self.volume is None or self.is_loading():
            return False
        vol, detector = self.volume, self.detector

        def work(ctx):
            return _detect(detector, vol, tuple(float(v) for v in point_lps), ctx)

        w = self.tracker.track(TaskWorker(work, name="find tooth", parent=self), "volume")
        w.succeeded.connect(self._on_found_at)
        w.failed.connect(lambda m: messages.show_error(self.host, "No tooth there", m))
        self.tracker.set_progress(0, 0, "Finding the tooth at the point…")
        w.start()
        return True

    def _on_found_at(self, found) -> None:
        if not found:
            self.statusMessage.emit("No upper incisor at that point.", 6000)
            return
        t = found[0]
        self.teeth[int(t.tooth)] = t
        self.edited[int(t.tooth)] = t
        self.tooth = int(t.tooth)
        self.teethChanged.emit(self.teeth)
        self.axisChanged.emit(self.axis)
        self.statusMessage.emit(f"Found tooth {t.tooth} ({t.confidence:.0%}).", 6000)

    def close_volume(self) -> None:
        self.path = self.volume = None
        self.teeth, self.edited, self.tooth = {}, {}, None
        self.undo_stack.clear()
        self.volumeOpened.emit(None)
        self.teethChanged.emit({})
        self.axisChanged.emit(None)

    # ------------------------------------------------------------------ the plane
    def select_tooth(self, tooth: int) -> None:
        if tooth in self.edited and tooth != self.tooth:
            self.tooth = tooth
            self.axisChanged.emit(self.axis)

    def set_axis(self, axis: ToothAxis, text: str = "Move the tooth axis", merge_key=None) -> None:
        """Make ``axis`` the current tooth's plane as one undo step (``merge_key``: one step per drag)."""
        old = self.axis
        if old is None:
            return
        self.undo_stack.push(_AxisCommand(self, old, axis, text, merge_key))

    def preview(self, axis: ToothAxis) -> None:
        """A drag in progress: views show ``axis`` (coarse), nothing is stored."""
        self.previewAxis.emit(axis)

    def reset_axis(self) -> None:
        if self.tooth in self.teeth and self.axis is not None:
            self.set_axis(self.teeth[self.tooth], "Reset the tooth axis")

    def _set_axis(self, axis: ToothAxis) -> None:
        self.edited[int(axis.tooth)] = axis
        self.tooth = int(axis.tooth)
        self.axisChanged.emit(axis)

    # ------------------------------------------------------------------ measuring
    def output_dir(self) -> Path:
        """Where measured slices go: beside the volume when that folder is writable, else the
        user data folder."""
        from ..resources import user_data_dir
        assert self.path is not None
        from ..core.volume_io import volume_stem
        stem = volume_stem(self.path)
        beside = self.path.parent / f"{stem}_dentseg"
        for cand in (beside, user_data_dir() / "slices" / stem):
            try:
                cand.mkdir(parents=True, exist_ok=True)
                probe = cand / ".dentseg-write-test"
                probe.write_bytes(b"")
                probe.unlink()
                return cand
            except OSError:
                continue
        raise DentsegError(f"no writable folder for the slices of {self.path.name} (tried {beside}). "
                           "Check the permissions of the volume's folder.")

    def measure(self, teeth: list[int] | None = None, offsets_mm: tuple[float, ...] = (0.0,)) -> bool:
        """Write the slice of each tooth (the current one by default, with its edited axis) and
        add it to the case list; the first is opened. In a worker."""
        if self.volume is None:
            return False
        teeth = [self.tooth] if teeth is None else [t for t in teeth if t in self.edited]
        teeth = [t for t in teeth if t is not None]
        if not teeth:
            messages.show_info(self.host, "Measure", "No tooth to measure: none was found in this volume. "
                               "Click a crown in a view to place one.")
            return False
        if self.tracker.running("task"):
            messages.show_info(self.host, "Busy", "Another export is still running.")
            return False
        from ..core.volume_io import volume_stem
        vol, axes = self.volume, [self.edited[t] for t in teeth]
        out_dir, slab, spacing, writer = self.output_dir(), self.slab_mm, self.spacing_mm(), self.slice_writer
        stem = volume_stem(self.path)

        def work(ctx) -> list[Path]:
            written = []
            n = len(axes) * len(offsets_mm)
            for i, axis in enumerate(axes):
                for j, off in enumerate(offsets_mm):
                    ctx.check()
                    ctx.progress(i * len(offsets_mm) + j, n, f"writing the slice of tooth {axis.tooth}")
                    written.append(writer(vol, axis, out_dir, offset_mm=off, slab_mm=slab, spacing_mm=spacing,
                                          stem=stem))
            return written

        w = self.tracker.track(TaskWorker(work, name="write slices", error_path=out_dir, parent=self), "task")
        w.progress.connect(self.tracker.set_progress)
        w.succeeded.connect(self._on_measured)
        w.failed.connect(lambda m: messages.show_error(self.host, "Measure failed", m))
        self.tracker.set_progress(0, len(axes), "Writing the slices…")
        w.start()
        return True

    def _on_measured(self, paths: list[Any]) -> None:
        paths = [Path(p) for p in paths]
        if not paths:
            return
        self.statusMessage.emit(f"Added {len(paths)} slice(s) from {paths[0].parent} to the case list.", 8000)
        self.session.open_paths(paths)


VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def is_volume_path(path: Path | str) -> bool:
    """Is ``path`` a CBCT volume rather than 2-D slices: a NIfTI/NRRD file, a multi-frame DICOM, or
    a folder whose DICOM files are one series of several slices. Reads a few headers only."""
    p = Path(path)
    name = p.name.lower()
    if p.is_file():
        if name.endswith(VOLUME_SUFFIXES):
            return True
        return _dicom_frames(p) > 1
    if not p.is_dir():
        return False
    series, n = set(), 0
    for f in sorted(p.iterdir())[:400]:
        if not f.is_file() or f.name.lower().endswith((".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".json")):
            continue
        uid = _dicom_series(f)
        if uid is None:
            continue
        series.add(uid)
        n += 1
        if n >= 8:
            break
    return n >= 3 and len(series) == 1


def _dicom_header(path: Path):
    try:
        import pydicom
        return pydicom.dcmread(path, stop_before_pixels=True,
                               specific_tags=["SeriesInstanceUID", "NumberOfFrames", "ImagePositionPatient"])
    except Exception:  # noqa: BLE001 - not DICOM, or unreadable: not part of a volume
        return None


def _dicom_frames(path: Path) -> int:
    ds = _dicom_header(path)
    try:
        return int(getattr(ds, "NumberOfFrames", 1) or 1) if ds is not None else 0
    except (TypeError, ValueError):
        return 1


def _dicom_series(path: Path) -> str | None:
    ds = _dicom_header(path)
    if ds is None or "ImagePositionPatient" not in ds:
        return None
    return str(getattr(ds, "SeriesInstanceUID", "") or "") or None
