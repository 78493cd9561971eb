"""Undoable edits of a ``CaseDocument`` (one ``QUndoCommand`` per user step).

Every command holds a small diff - the name of what changed, its old and its
new value (a region geometry, a landmark point, the spacing) plus the old and
new provenance entry - never a snapshot of the whole document. Interactive
drags (a landmark, a polygon vertex, the palatal curve) push a command on
every throttled mouse move with the same ``merge_key``; ``mergeWith`` folds
them into the first one, so a whole drag is one undo step whose ``old`` is
the state before the drag began.

The commands call the document's private ``_write_*`` methods, which change
the annotation and emit the document's signals; nothing else writes there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from PySide6.QtGui import QUndoCommand
from shapely.geometry import MultiPolygon

if TYPE_CHECKING:  # pragma: no cover
    from .document import CaseDocument

_REGION_ID = 7101
_LANDMARK_ID = 7102


def geometries_equal(a: MultiPolygon | None, b: MultiPolygon | None) -> bool:
    """Exact equality of two regions (both empty counts as equal)."""
    a_empty = a is None or a.is_empty
    b_empty = b is None or b.is_empty
    if a_empty or b_empty:
        return a_empty and b_empty
    return a.equals_exact(b, 0.0)


class _DocumentCommand(QUndoCommand):
    def __init__(self, doc: "CaseDocument", text: str, merge_key: Any = None):
        super().__init__(text)
        self._doc = doc
        self.merge_key = merge_key


class SetRegionCommand(_DocumentCommand):
    """Replace one region's geometry (and its provenance entry)."""

    def __init__(self, doc: "CaseDocument", name: str, old: MultiPolygon, new: MultiPolygon,
                 old_prov: dict | None, new_prov: dict | None, text: str, merge_key: Any = None):
        super().__init__(doc, text, merge_key)
        self.name = name
        self.old, self.new = old, new
        self.old_prov, self.new_prov = old_prov, new_prov

    def redo(self) -> None:
        self._doc._write_region(self.name, self.new, self.new_prov)

    def undo(self) -> None:
        self._doc._write_region(self.name, self.old, self.old_prov)

    def id(self) -> int:
        return _REGION_ID if self.merge_key is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if (not isinstance(other, SetRegionCommand) or other.name != self.name
                or other.merge_key != self.merge_key):
            return False
        self.new, self.new_prov = other.new, other.new_prov
        if geometries_equal(self.old, self.new) and self.old_prov == self.new_prov:
            self.setObsolete(True)  # a drag that ended where it began leaves no step
        return True


class SetLandmarkCommand(_DocumentCommand):
    """Place, move or remove one landmark (``None`` = not placed)."""

    def __init__(self, doc: "CaseDocument", name: str, old: tuple[float, float] | None,
                 new: tuple[float, float] | None, old_prov: dict | None, new_prov: dict | None,
                 text: str, merge_key: Any = None):
        super().__init__(doc, text, merge_key)
        self.name = name
        self.old, self.new = old, new
        self.old_prov, self.new_prov = old_prov, new_prov

    def redo(self) -> None:
        self._doc._write_landmark(self.name, self.new, self.new_prov)

    def undo(self) -> None:
        self._doc._write_landmark(self.name, self.old, self.old_prov)

    def id(self) -> int:
        return _LANDMARK_ID if self.merge_key is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if (not isinstance(other, SetLandmarkCommand) or other.name != self.name
                or other.merge_key != self.merge_key):
            return False
        self.new, self.new_prov = other.new, other.new_prov
        if self.old == self.new and self.old_prov == self.new_prov:
            self.setObsolete(True)
        return True


class SetSpacingCommand(_DocumentCommand):
    """Change the pixel spacing (row, column) in mm; measurements follow."""

    def __init__(self, doc: "CaseDocument", old: tuple[float, float] | None,
                 new: tuple[float, float] | None, text: str):
        super().__init__(doc, text)
        self.old, self.new = old, new

    def redo(self) -> None:
        self._doc._write_spacing(self.new)

    def undo(self) -> None:
        self._doc._write_spacing(self.old)


class SetProvenanceCommand(_DocumentCommand):
    """Replace one top-level provenance entry (e.g. which model made the prediction)."""

    def __init__(self, doc: "CaseDocument", key: str, old: Any, new: Any, text: str):
        super().__init__(doc, text)
        self.key, self.old, self.new = key, old, new

    def redo(self) -> None:
        self._doc._write_provenance(self.key, self.new)

    def undo(self) -> None:
        self._doc._write_provenance(self.key, self.old)


class SetOrientationCommand(_DocumentCommand):
    """Turn / mirror how the slice is shown (the annotation's ``orientation`` record)."""

    def __init__(self, doc: "CaseDocument", old: dict | None, new: dict | None, text: str):
        super().__init__(doc, text)
        self.old, self.new = old, new

    def redo(self) -> None:
        self._doc._write_orientation(self.new)

    def undo(self) -> None:
        self._doc._write_orientation(self.old)


class CompoundCommand(_DocumentCommand):
    """Several edits as one undo step (e.g. applying a prediction).

    The document batches its signals while the parts run, so views redraw and
    measurements are recomputed once, not once per part.
    """

    def __init__(self, doc: "CaseDocument", parts: Sequence[_DocumentCommand], text: str):
        super().__init__(doc, text)
        self.parts = list(parts)

    def redo(self) -> None:
        with self._doc._batch():
            for c in self.parts:
                c.redo()

    def undo(self) -> None:
        with self._doc._batch():
            for c in reversed(self.parts):
                c.undo()
