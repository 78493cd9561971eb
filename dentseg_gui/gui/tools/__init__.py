"""The canvas tools, one module per tool family: what a press, drag, click or key does in each mode.

``TOOL_SPECS`` lists every tool and canvas action with its label, keyboard
shortcut, tooltip and short icon text, so the main window's menus, toolbar and
tooltips show the same shortcuts the canvas handles.

A tool receives ``CanvasEvent``s in image pixel coordinates from the canvas
(which owns the view, the pan/zoom and the landmark dragging) and changes the
document only through its methods, so every finished gesture is one undo
step: a polygon, a brush or eraser stroke, a vertex drag, a handle drag.
Hit-testing of vertices and handles is numpy on coordinate arrays; contours
are drawn as one path item each (no per-vertex ROI objects).

Painting: a stroke is the set of pixels whose centre lies within the brush
radius of the stroke polyline, rasterised on the stroke's bounding box only,
traced with ``core.geometry.mask_to_geometry`` and united with (brush) or
subtracted from (eraser) the active region with shapely.

Modules: ``specs`` (names, shortcuts, tooltips), ``base`` (event, tool base
class, hit-testing, throttle), ``landmark``, ``polygon``, ``brush`` (brush and
eraser), ``palatal`` (palatal boundary curve, snap to edge), ``livewire``
(edge-following outline and palatal boundary). The geometry of
an edit (stroke -> region, vertex moves) is Qt-free in ``core.region_edit``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...core.annotation import LANDMARKS
from ...core.region_edit import fill_holes, stroke_mask_geometry
from .base import CanvasEvent, NavigateTool, Throttle, Tool, new_drag_key
from .brush import BrushTool, brush_step
from .landmark import LandmarkTool
from .livewire import LiveWireTool
from .palatal import PalatalEditTool
from .polygon import PolygonTool
from .specs import (ACTION_NAMES, CLICK_SLOP_PX, HIT_RADIUS_PX, MAX_BRUSH, MIN_BRUSH, SPECS_BY_NAME,
                    TOOL_NAMES, TOOL_SPECS, ToolSpec)

if TYPE_CHECKING:  # pragma: no cover
    from ..canvas import ImageCanvas

__all__ = ["ACTION_NAMES", "CLICK_SLOP_PX", "HIT_RADIUS_PX", "MAX_BRUSH", "MIN_BRUSH", "SPECS_BY_NAME",
           "TOOL_NAMES", "TOOL_SPECS", "BrushTool", "CanvasEvent", "LandmarkTool", "LiveWireTool", "NavigateTool",
           "PalatalEditTool", "PolygonTool", "Throttle", "Tool", "ToolSpec", "brush_step", "fill_holes",
           "make_tools", "new_drag_key", "stroke_mask_geometry"]


def make_tools(canvas: "ImageCanvas") -> dict[str, Tool]:
    tools: dict[str, Tool] = {
        "navigate": NavigateTool(canvas),
        "polygon": PolygonTool(canvas),
        "brush": BrushTool(canvas, erase=False),
        "eraser": BrushTool(canvas, erase=True),
        "palatal_edit": PalatalEditTool(canvas),
        "livewire": LiveWireTool(canvas),
        "palatal_wire": LiveWireTool(canvas, palatal=True),
    }
    for name in LANDMARKS:
        tools[name] = LandmarkTool(canvas, name)
    assert set(tools) == set(TOOL_NAMES)
    return tools
