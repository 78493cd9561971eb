"""The shared look of DentSeg's image views: class colours, overlay pens, fonts.

One place decides what a PAB outline or a thickness chord looks like, so the
interactive canvas, the exported PNG/PDF overlay and the panels (swatches in
the layer list) agree. Colours are chosen to read on grey radiographs and to
stay apart for colour-blind users: amber bone, cyan enamel, and landmarks
that differ in colour *and* symbol.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from PySide6 import QtCore, QtGui

from ..core.annotation import LANDMARKS, REGIONS


@dataclass(frozen=True)
class RegionStyle:
    """How one class is drawn: outline colour, fill opacity (0..1), visibility."""

    color: str
    opacity: float = 0.30
    visible: bool = True
    label: str = ""

    def with_changes(self, color: str | None = None, opacity: float | None = None,
                     visible: bool | None = None) -> "RegionStyle":
        return replace(self,
                       color=self.color if color is None else QtGui.QColor(color).name(),
                       opacity=self.opacity if opacity is None else float(min(1.0, max(0.0, opacity))),
                       visible=self.visible if visible is None else bool(visible))


# Class colours (also used for the swatches of the shell's layer panel).
REGION_STYLES: dict[str, RegionStyle] = {
    "PAB": RegionStyle("#ffa000", 0.32, True, "Palatal alveolar bone"),
    "enamel": RegionStyle("#00c8e6", 0.30, True, "Enamel"),
}
assert set(REGION_STYLES) == set(REGIONS)

# Landmarks: colour, pyqtgraph symbol, short label drawn beside the point.
LANDMARK_STYLES: dict[str, tuple[str, str, str]] = {
    "CEJ_labial": ("#ff4f9a", "o", "CEJ lab"),
    "CEJ_palatal": ("#b388ff", "o", "CEJ pal"),
    "apex": ("#ffe83a", "t1", "Apex"),
}
assert set(LANDMARK_STYLES) == set(LANDMARKS)

LANDMARK_LABELS = {"CEJ_labial": "CEJ labial", "CEJ_palatal": "CEJ palatal", "apex": "Apex"}

# Measurement overlay.
AXIS_COLOR = "#e8f1ff"          # long axis (y) and perpendicular (x) through O
ORIGIN_COLOR = "#ffffff"
THICKNESS_COLOR = "#59e36b"     # PAB chords at 25/50/75/90 % of L
LEVEL_COLOR = "#9fb3c8"         # the full level line the chord lies on
CREST_COLOR = "#ff5a52"         # alveolar crest level
PALATAL_CURVE_COLOR = "#ff6d00"
LEFT_OUT_COLOR = "#ff3b30"      # pieces of a region left out of the measurements (hatched)
HANDLE_FILL = "#ffffff"
PREVIEW_COLOR = "#ffffff"       # polygon being drawn, brush footprint
ERASER_COLOR = "#ff5a52"
VIEW_BACKGROUND = "#101418"

OVERLAY_NAMES = ("landmarks", "labels", "axes", "thickness", "crest", "palatal_curve")


def qcolor(color: str, alpha: float = 1.0) -> QtGui.QColor:
    c = QtGui.QColor(color)
    c.setAlphaF(float(min(1.0, max(0.0, alpha))))
    return c


def cosmetic_pen(color: str, width: float = 1.5, alpha: float = 1.0,
                 style: QtCore.Qt.PenStyle = QtCore.Qt.PenStyle.SolidLine) -> QtGui.QPen:
    """A pen whose width is in screen pixels, so outlines stay crisp at any zoom."""
    pen = QtGui.QPen(qcolor(color, alpha))
    pen.setWidthF(width)
    pen.setCosmetic(True)
    pen.setStyle(style)
    pen.setCapStyle(QtCore.Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(QtCore.Qt.PenJoinStyle.RoundJoin)
    return pen


def label_font(point_size: float = 9.0, bold: bool = True) -> QtGui.QFont:
    f = QtGui.QFont()
    f.setPointSizeF(point_size)
    f.setBold(bold)
    return f
