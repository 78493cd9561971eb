"""Every canvas tool and action with its label, shortcut, tooltip and icon text.

The main window's menus, toolbar and tooltips read ``TOOL_SPECS``, so they show
the same shortcuts the canvas handles.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ToolSpec:
    """A tool (``kind="tool"``, a mode) or an action (``kind="action"``, runs once)."""

    name: str
    label: str
    shortcut: str
    tooltip: str
    icon_text: str
    kind: str = "tool"


TOOL_SPECS: list[ToolSpec] = [
    ToolSpec("navigate", "Navigate", "N",
             "Pan with the left button, zoom with the wheel; drag any landmark", "Nav"),
    ToolSpec("polygon", "Polygon", "P",
             "Click vertices, double-click or Enter to close, Esc cancels, Backspace removes "
             "the last vertex. Edit the active region: drag a vertex, drag an edge (or "
             "Shift+click it) to insert one, right-click or Del deletes the vertex under the cursor",
             "Poly"),
    ToolSpec("livewire", "Live-wire outline", "L",
             "Click around the region: the outline follows the image edges between clicks "
             "(Shift+click: straight segment). Double-click, Enter or a click on the first point "
             "closes it; Backspace removes the last point, Esc cancels", "Wire"),
    ToolSpec("brush", "Brush", "B", "Paint the active region; [ and ] change the size", "Brush"),
    ToolSpec("eraser", "Eraser", "E", "Erase from the active region; [ and ] change the size",
             "Erase"),
    ToolSpec("CEJ_labial", "CEJ labial", "1", "Place the labial cemento-enamel junction", "CEJ-L"),
    ToolSpec("CEJ_palatal", "CEJ palatal", "2", "Place the palatal cemento-enamel junction",
             "CEJ-P"),
    ToolSpec("apex", "Apex", "3", "Place the root apex", "Apex"),
    ToolSpec("palatal_edit", "Palatal boundary", "C",
             "Edit the palatal boundary of the PAB as a curve: drag a handle, the region and "
             "the measurements follow", "Palatal"),
    ToolSpec("palatal_wire", "Palatal live-wire", "W",
             "Redraw the PAB's palatal boundary along the bone edge: click from the crest to the "
             "apex level (Shift+click: straight segment), Enter to apply", "P-Wire"),
    ToolSpec("brush_smaller", "Smaller brush", "[", "Brush and eraser 20 % smaller", "-",
             "action"),
    ToolSpec("brush_larger", "Larger brush", "]", "Brush and eraser 25 % larger", "+", "action"),
    ToolSpec("fill_holes", "Fill holes", "H", "Fill the holes of the active region", "Fill",
             "action"),
    ToolSpec("delete_region", "Delete region", "Shift+Del", "Delete the active region", "Del",
             "action"),
    ToolSpec("snap_to_edge", "Snap to edge", "S",
             "Move the palatal boundary curve onto the nearest bone edge in the image", "Snap",
             "action"),
    ToolSpec("fit", "Fit to window", "F", "Show the whole image", "Fit", "action"),
]
TOOL_NAMES = tuple(s.name for s in TOOL_SPECS if s.kind == "tool")
ACTION_NAMES = tuple(s.name for s in TOOL_SPECS if s.kind == "action")
SPECS_BY_NAME = {s.name: s for s in TOOL_SPECS}

HIT_RADIUS_PX = 8.0          # screen pixels for grabbing a vertex / handle / landmark
CLICK_SLOP_PX = 4.0          # a press that moves less than this is a click
MIN_BRUSH, MAX_BRUSH = 0.5, 500.0
