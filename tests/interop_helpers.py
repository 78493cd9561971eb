"""Shared by the interop tests: small cases with known geometry written to disk."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from shapely.geometry import MultiPolygon, Polygon

from dentseg_gui.core.annotation import Annotation, save_annotation
from dentseg_gui.core.measurements import apply_measurements


def ring_with_holes_region() -> MultiPolygon:
    """A PAB with two holes and a second part: what labelme/COCO polygons cannot hold as is."""
    body = Polygon([(60, 20), (100, 22), (104, 90), (66, 96)],
                   [[(70, 40), (80, 40), (80, 50), (70, 50)], [(84, 60), (94, 62), (90, 72)]])
    speck = Polygon([(110, 30), (118, 30), (118, 38), (110, 38)])
    return MultiPolygon([body, speck])


def write_png_case(folder: Path, name: str = "tooth", size=(128, 160), spacing=(0.2, 0.25),
                   holes: bool = True) -> Path:
    """An 8-bit PNG and its .dentseg.json with a PAB (holes, two parts), enamel and landmarks."""
    folder.mkdir(parents=True, exist_ok=True)
    h, w = size
    rng = np.random.default_rng(0)
    img = (rng.random((h, w)) * 200).astype(np.uint8)
    cv2.imwrite(str(folder / f"{name}.png"), img)
    pab = ring_with_holes_region() if holes else MultiPolygon([Polygon([(60, 20), (100, 22), (104, 90), (66, 96)])])
    enamel = MultiPolygon([Polygon([(20, 100), (50, 98), (52, 125), (24, 126)])])
    ann = Annotation(f"{name}.png", w, h, spacing, {"PAB": pab, "enamel": enamel},
                     {"CEJ_labial": (30.25, 96.5), "CEJ_palatal": (62.0, 94.75), "apex": (80.5, 12.0)})
    return save_annotation(apply_measurements(ann), folder / f"{name}.dentseg.json")
