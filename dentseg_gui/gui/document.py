"""``CaseDocument``: the model of one open case that every view observes.

napari-style: the document owns the image, the clinician's annotation, the
last model prediction (kept apart, with provenance) and one ``QUndoStack``.
Views never change the annotation themselves; they call ``set_region`` /
``set_landmark`` / ``set_spacing`` / ``apply_prediction``, each of which
pushes one undoable command holding a diff (see ``commands.py``). The
document then emits what changed, recomputes the measurements (cached;
``core.measurements.measure`` takes milliseconds) and emits
``measurementsChanged`` so panels and overlays follow every edit, including
each throttled step of a drag.
"""

from __future__ import annotations

import copy
import getpass
import logging
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack
from shapely.geometry import MultiPolygon

from ..core.annotation import LANDMARKS, REGIONS, Annotation
from ..core.errors import AnnotationError
from ..core.file_identity import FileIdentity, changed_since, identity_of
from ..core.geometry import as_multipolygon
from ..core.image import SliceImage
from ..core.limits import spacing_problem
from ..core.measurements import KEYS, MeasurementSet, measure, orientation_of
from .commands import (CompoundCommand, SetLandmarkCommand, SetOrientationCommand, SetProvenanceCommand,
                       SetRegionCommand, SetSpacingCommand, geometries_equal)

log = logging.getLogger(__name__)


PREDICTION_MODES = ("replace", "fill_missing")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some sandboxes
        return "unknown"


class CaseDocument(QObject):
    """One image + its annotation + undo history.

    ``annotation`` is the live object: read it freely, never mutate it from
    outside (use the methods, so the edit is undoable and views update).
    """

    regionsChanged = Signal(str)          # region name
    landmarksChanged = Signal()
    measurementsChanged = Signal(object)  # core.measurements.MeasurementSet
    modifiedChanged = Signal(bool)
    spacingChanged = Signal(object)       # (row, col) mm or None
    orientationChanged = Signal()         # how the slice is shown (turned / mirrored)
    predictionChanged = Signal()
    changed = Signal()                    # any edit, undo or redo (autosave hooks here)

    def __init__(self, image: SliceImage, annotation: Annotation | None = None,
                 image_path: Path | str | None = None, annotation_path: Path | str | None = None,
                 parent: QObject | None = None, disk_identity: FileIdentity | None = None):
        super().__init__(parent)
        if annotation is None:
            annotation = Annotation(Path(image_path).name if image_path else (image.source or "image"),
                                    image.width, image.height, image.spacing_mm)
        if (annotation.width, annotation.height) != (image.width, image.height):
            raise AnnotationError(
                f"the annotation is for a {annotation.width}x{annotation.height} image but the "
                f"image is {image.width}x{image.height}; open the annotation with its own image")
        ann = annotation.copy()
        ann.regions = {k: as_multipolygon(v) for k, v in ann.regions.items()}
        # One spacing for the case: the annotation's if it has one, else the image's.
        if ann.pixel_spacing_mm is None and image.spacing_mm is not None:
            ann.pixel_spacing_mm = tuple(image.spacing_mm)
        if ann.pixel_spacing_mm != image.spacing_mm:
            image = image.with_spacing(ann.pixel_spacing_mm)
        self.image = image
        self._ann = ann
        self.image_path = Path(image_path) if image_path else None
        self.annotation_path = Path(annotation_path) if annotation_path else None
        #: the annotation file as it was when read (or last saved): size, time, hash. Pass the
        #: one ``cases.load_case`` took of the bytes it parsed; else it is taken now.
        self.disk_identity = disk_identity
        if disk_identity is None and self.annotation_path is not None:
            self.disk_identity = identity_of(self.annotation_path)
        self.prediction: Annotation | None = None
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)
        self._batch_depth = 0
        self._pending_regions: list[str] = []
        self._pending_landmarks = False
        self._pending_spacing = False
        self._pending_orientation = False
        self._measurements = self._compute_measurements()

    def _on_clean_changed(self, clean: bool) -> None:
        self.modifiedChanged.emit(not clean)

    # ------------------------------------------------------------------ reading
    @property
    def annotation(self) -> Annotation:
        return self._ann

    @property
    def spacing(self) -> tuple[float, float] | None:
        return self._ann.pixel_spacing_mm

    def region(self, name: str) -> MultiPolygon:
        return self._ann.region(name)

    def landmark(self, name: str) -> tuple[float, float] | None:
        return self._ann.landmarks.get(name)

    def measurements(self) -> MeasurementSet:
        """The current measurements (recomputed after every edit)."""
        return self._measurements

    def is_modified(self) -> bool:
        return not self.undo_stack.isClean()

    def mark_saved(self, annotation_path: Path | str | None = None,
                   identity: FileIdentity | None = None) -> None:
        """Call after a successful save: the current state becomes the clean state.

        With ``annotation_path`` the file just written becomes the one whose changes on
        disk are watched (``disk_identity``: ``identity``, or read from the file now).
        """
        if annotation_path is not None:
            self.annotation_path = Path(annotation_path)
            self.disk_identity = identity or identity_of(self.annotation_path)
        self.undo_stack.setClean()

    def disk_change(self) -> str | None:
        """How the annotation file changed on disk since it was read or saved (a sentence),
        or None (unchanged, or nothing known)."""
        if self.annotation_path is None:
            return None
        return changed_since(self.disk_identity, self.annotation_path)

    def annotation_for_save(self) -> Annotation:
        """A copy of the annotation with the current measurements filled in, ready to save."""
        out = self._ann.copy()
        ms = self._measurements
        out.measurements = dict(ms.values)
        out.measurements_missing = dict(ms.missing)
        return out

    # ------------------------------------------------------------------ editing
    def set_region(self, name: str, geom: Any, text: str | None = None,
                   merge_key: Any = None) -> bool:
        """Replace region ``name`` by ``geom`` as one undo step (a hand edit).

        Pushes with the same ``merge_key`` fold into one step (a drag).
        Returns False (and pushes nothing) when the geometry does not change.
        """
        self._check_region(name)
        new = as_multipolygon(geom)
        old = self._ann.region(name)
        if geometries_equal(old, new) and not self._continues_drag(SetRegionCommand, name, merge_key):
            return False
        old_prov = self._region_prov(name)
        new_prov = self._hand_edit_prov(old_prov)
        self.undo_stack.push(SetRegionCommand(self, name, old, new, old_prov, new_prov,
                                              text or f"Edit {name}", merge_key))
        return True

    def set_landmark(self, name: str, xy: tuple[float, float] | None, text: str | None = None,
                     merge_key: Any = None) -> bool:
        """Place / move (``xy`` = image pixels) or remove (``None``) a landmark as one step."""
        if name not in LANDMARKS:
            raise ValueError(f"unknown landmark {name!r}; expected one of {', '.join(LANDMARKS)}")
        new = None if xy is None else (float(xy[0]), float(xy[1]))
        old = self._ann.landmarks.get(name)
        if old == new and not self._continues_drag(SetLandmarkCommand, name, merge_key):
            return False
        old_prov = self._prov_section("landmarks").get(name)
        new_prov = None if new is None else self._hand_edit_prov(old_prov)
        if text is None:
            text = (f"Remove {name}" if new is None else f"Move {name}" if old is not None
                    else f"Place {name}")
        self.undo_stack.push(SetLandmarkCommand(self, name, old, new, old_prov, new_prov,
                                                text, merge_key))
        return True

    def set_spacing(self, spacing: tuple[float, float] | None, text: str | None = None) -> bool:
        """Set the pixel spacing (row, column) in mm as one undo step."""
        if spacing is not None:
            sr, sc = float(spacing[0]), float(spacing[1])
            why = spacing_problem((sr, sc))  # what the file format accepts, so the save reads back
            if why:
                raise ValueError(f"pixel spacing must be two positive numbers (mm): {why}")
            spacing = (sr, sc)
        if spacing == self._ann.pixel_spacing_mm:
            return False
        text = text or ("Clear pixel spacing" if spacing is None
                        else f"Set pixel spacing {spacing[0]:g} x {spacing[1]:g} mm")
        # a spacing typed by the user says so in every report (core.provenance.spacing_source)
        old_src = self._ann.provenance.get("spacing_source")
        new_src = None if spacing is None else "user"
        parts = [SetSpacingCommand(self, self._ann.pixel_spacing_mm, spacing, text)]
        if old_src != new_src:
            parts.append(SetProvenanceCommand(self, "spacing_source", old_src, new_src, text))
        self.undo_stack.push(parts[0] if len(parts) == 1 else CompoundCommand(self, parts, text))
        return True

    # ------------------------------------------------------------------ orientation
    @property
    def orientation(self) -> tuple[int, bool]:
        """(degrees counter-clockwise, mirrored): how the image is turned to show the tooth upright."""
        return orientation_of(self._ann)

    def set_orientation(self, rotate_ccw_deg: int, mirror: bool, text: str | None = None,
                        source: str = "user") -> bool:
        """Show the slice turned by ``rotate_ccw_deg`` (0/90/180/270) and mirrored left-right, as one
        undo step. Regions and landmarks stay in the file's pixel coordinates; the annotation
        records the turn (``orientation``) and the axis tilt is measured against the upright view."""
        deg = int(rotate_ccw_deg) % 360
        if deg % 90:
            raise ValueError(f"a slice turns by multiples of 90 degrees, got {rotate_ccw_deg!r}")
        if (deg, bool(mirror)) == self.orientation:
            return False
        old = copy.deepcopy(self._ann.extra.get("orientation"))
        new = None if (deg, bool(mirror)) == (0, False) else {"rotate_ccw_deg": deg, "mirror": bool(mirror),
                                                             "source": source}
        self.undo_stack.push(SetOrientationCommand(self, old, new, text or "Turn the slice"))
        return True

    def _write_orientation(self, rec: dict | None) -> None:
        if rec is None:
            self._ann.extra.pop("orientation", None)
        else:
            self._ann.extra["orientation"] = copy.deepcopy(rec)
        self._pending_orientation = True
        self._flush()

    def set_prediction(self, pred: Annotation | None) -> None:
        """Keep ``pred`` as the last model output (not part of the undo history)."""
        self.prediction = pred
        self.predictionChanged.emit()

    def apply_prediction(self, pred: Annotation, mode: str = "replace") -> bool:
        """Copy the model's regions and landmarks into the annotation as ONE undo step.

        ``mode="replace"``: every region / landmark the prediction has replaces
        the current one. ``mode="fill_missing"``: only empty regions and
        unplaced landmarks are filled, hand work is never touched. The prediction
        itself is kept in ``self.prediction``; the provenance records which
        region and landmark came from the model (and which model).
        """
        if mode not in PREDICTION_MODES:
            raise ValueError(f"mode must be one of {PREDICTION_MODES}, got {mode!r}")
        if (pred.width, pred.height) != (self.image.width, self.image.height):
            raise AnnotationError(f"the prediction is for a {pred.width}x{pred.height} image, "
                                  f"this case is {self.image.width}x{self.image.height}")
        self.set_prediction(pred)
        model_info = _model_summary(pred.provenance)
        stamp = {"source": "model", "model": model_info, "predicted_at": _now()}
        parts = []
        for name in REGIONS:
            if name not in pred.regions:
                continue
            new = as_multipolygon(pred.regions[name])
            old = self._ann.region(name)
            if mode == "fill_missing" and not old.is_empty:
                continue
            if new.is_empty and old.is_empty:
                continue
            parts.append(SetRegionCommand(self, name, old, new, self._region_prov(name),
                                          dict(stamp), f"Predicted {name}"))
        for name in LANDMARKS:
            p = pred.landmarks.get(name)
            if p is None:
                continue
            old = self._ann.landmarks.get(name)
            if mode == "fill_missing" and old is not None:
                continue
            parts.append(SetLandmarkCommand(self, name, old, (float(p[0]), float(p[1])),
                                            self._prov_section("landmarks").get(name),
                                            dict(stamp), f"Predicted {name}"))
        if not parts:
            return False
        pred_orient = pred.extra.get("orientation") if isinstance(pred.extra, dict) else None
        if pred_orient and self._ann.extra.get("orientation") is None:
            # the model found the slice turned: show it upright (the user's own turn is kept)
            parts.append(SetOrientationCommand(self, None, copy.deepcopy(pred_orient), "Turn the slice upright"))
        parts.append(SetProvenanceCommand(self, "prediction",
                                          copy.deepcopy(self._ann.provenance.get("prediction")),
                                          copy.deepcopy(pred.provenance) or {"model": model_info},
                                          "Prediction provenance"))
        label = "Apply prediction" if mode == "replace" else "Fill missing from prediction"
        self.undo_stack.push(CompoundCommand(self, parts, label))
        return True

    def restore_annotation(self, ann: Annotation, text: str = "Recovered unsaved changes") -> bool:
        """Make the annotation equal to ``ann`` (same image) as ONE undo step.

        Used for crash recovery: the document opens on the saved file and the autosave
        is this step on top, so Undo goes back to the saved version. Returns False when
        nothing differs; raises ``AnnotationError`` when ``ann`` differs in something
        an undo step cannot carry (another image size, other extra fields).
        """
        if (ann.width, ann.height) != (self.image.width, self.image.height):
            raise AnnotationError(f"the recovered annotation is for a {ann.width}x{ann.height} image, "
                                  f"this case is {self.image.width}x{self.image.height}")
        others = lambda a: {k: v for k, v in a.extra.items() if k != "orientation"}  # noqa: E731
        if others(ann) != others(self._ann):
            raise AnnotationError("the recovered annotation has other extra fields than the saved file")
        new_prov = ann.provenance or {}

        def prov_entry(prov: dict, section: str, name: str):
            sec = prov.get(section)
            entry = sec.get(name) if isinstance(sec, dict) else None
            return copy.deepcopy(entry)

        parts: list = []
        if ann.extra.get("orientation") != self._ann.extra.get("orientation"):
            parts.append(SetOrientationCommand(self, copy.deepcopy(self._ann.extra.get("orientation")),
                                               copy.deepcopy(ann.extra.get("orientation")), text))
        if ann.pixel_spacing_mm != self._ann.pixel_spacing_mm:
            parts.append(SetSpacingCommand(self, self._ann.pixel_spacing_mm, ann.pixel_spacing_mm, text))
        for name in sorted(set(self._ann.regions) | set(ann.regions)):
            old, new = self._ann.region(name), as_multipolygon(ann.region(name))
            old_p, new_p = self._region_prov(name), prov_entry(new_prov, "regions", name)
            if not geometries_equal(old, new) or old_p != new_p:
                parts.append(SetRegionCommand(self, name, old, new, old_p, new_p, text))
        for name in sorted(set(self._ann.landmarks) | set(ann.landmarks)):
            old_xy, new_xy = self._ann.landmarks.get(name), ann.landmarks.get(name)
            old_p = copy.deepcopy(self._prov_section("landmarks").get(name))
            new_p = prov_entry(new_prov, "landmarks", name)
            if old_xy != new_xy or old_p != new_p:
                parts.append(SetLandmarkCommand(self, name, old_xy, new_xy, old_p, new_p, text))
        for key in sorted((set(self._ann.provenance) | set(new_prov)) - {"regions", "landmarks"}):
            old_v, new_v = self._ann.provenance.get(key), new_prov.get(key)
            if old_v != new_v:
                parts.append(SetProvenanceCommand(self, key, copy.deepcopy(old_v), copy.deepcopy(new_v), text))
        if not parts:
            return False
        self.undo_stack.push(CompoundCommand(self, parts, text))
        return True

    def _continues_drag(self, cls: type, name: str, merge_key: Any) -> bool:
        """Is the newest undo step the same drag (so a no-change push must still merge)?"""
        if merge_key is None or self.undo_stack.index() == 0:
            return False
        top = self.undo_stack.command(self.undo_stack.index() - 1)
        return (isinstance(top, cls) and top.name == name and top.merge_key == merge_key
                and self.undo_stack.index() == self.undo_stack.count())

    # ------------------------------------------------------------------ provenance helpers
    def _prov_section(self, key: str) -> dict:
        sec = self._ann.provenance.get(key)
        return sec if isinstance(sec, dict) else {}

    def _region_prov(self, name: str) -> dict | None:
        p = self._prov_section("regions").get(name)
        return copy.deepcopy(p) if p is not None else None

    @staticmethod
    def _hand_edit_prov(old: dict | None) -> dict:
        new = copy.deepcopy(old) if isinstance(old, dict) else {"source": "manual"}
        if new.get("source") == "model":
            new["edited_by_hand"] = True
        new["edited_by"] = _user()
        new["edited_at"] = _now()
        return new

    @staticmethod
    def _check_region(name: str) -> None:
        if name not in REGIONS:
            raise ValueError(f"unknown region {name!r}; expected one of {', '.join(REGIONS)}")

    # ------------------------------------------------------------------ called by commands only
    def _write_region(self, name: str, geom: MultiPolygon, prov: dict | None) -> None:
        if geom is None or geom.is_empty:
            self._ann.regions.pop(name, None)
        else:
            self._ann.regions[name] = geom
        self._set_prov_entry("regions", name, prov)
        if name not in self._pending_regions:
            self._pending_regions.append(name)
        self._flush()

    def _write_landmark(self, name: str, xy: tuple[float, float] | None, prov: dict | None) -> None:
        if xy is None:
            self._ann.landmarks.pop(name, None)
        else:
            self._ann.landmarks[name] = xy
        self._set_prov_entry("landmarks", name, prov)
        self._pending_landmarks = True
        self._flush()

    def _write_spacing(self, spacing: tuple[float, float] | None) -> None:
        self._ann.pixel_spacing_mm = spacing
        self.image = self.image.with_spacing(spacing)
        self._pending_spacing = True
        self._flush()

    def _write_provenance(self, key: str, value: Any) -> None:
        if value is None:
            self._ann.provenance.pop(key, None)
        else:
            self._ann.provenance[key] = copy.deepcopy(value)
        self._flush()

    def _set_prov_entry(self, section: str, name: str, entry: dict | None) -> None:
        sec = self._ann.provenance.get(section)
        if not isinstance(sec, dict):
            sec = {}
        if entry is None:
            sec.pop(name, None)
        else:
            sec[name] = copy.deepcopy(entry)
        if sec:
            self._ann.provenance[section] = sec
        else:
            self._ann.provenance.pop(section, None)

    @contextmanager
    def _batch(self) -> Iterator[None]:
        """Hold signals until the outermost batch ends (compound commands)."""
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            self._flush()

    def _flush(self) -> None:
        if self._batch_depth > 0:
            return
        regions, self._pending_regions = self._pending_regions, []
        landmarks, self._pending_landmarks = self._pending_landmarks, False
        spacing, self._pending_spacing = self._pending_spacing, False
        orientation, self._pending_orientation = self._pending_orientation, False
        if spacing:
            self.spacingChanged.emit(self._ann.pixel_spacing_mm)
        if orientation:
            self.orientationChanged.emit()
        for name in regions:
            self.regionsChanged.emit(name)
        if landmarks:
            self.landmarksChanged.emit()
        self._measurements = self._compute_measurements()
        self.measurementsChanged.emit(self._measurements)
        self.changed.emit()

    def _compute_measurements(self) -> MeasurementSet:
        try:
            return measure(self._ann)
        except Exception as exc:  # a bug in the engine must not take the editor down
            log.exception("measurement failed")
            ms = MeasurementSet()
            ms._miss(KEYS, f"internal error while measuring: {exc}")
            return ms


def _model_summary(prov: dict) -> Any:
    """The compact model identity to stamp on each predicted region."""
    if not isinstance(prov, dict):
        return None
    for key in ("model", "model_name"):
        if key in prov:
            return copy.deepcopy(prov[key])
    return {k: copy.deepcopy(v) for k, v in prov.items()
            if k in ("name", "sha256", "hash", "version")} or None
