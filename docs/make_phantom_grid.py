"""Render the phantom figures for the docs.

* ``docs/phantom_grid.jpg``: a 4x4 grid of sample phantoms (mixed styles),
  each labelled with seed / style / spacing / facing.
* ``docs/phantom_truth_overlay.jpg``: two cases with their ground truth drawn
  on top (PAB outline, enamel outline, exact palatal boundary, landmarks).

Run from the repository root: ``python docs/make_phantom_grid.py``.
Uses only numpy and cv2 (no matplotlib needed).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dentseg_gui.core.phantom import generate_phantom  # noqa: E402

TILE = 340
LABEL_H = 22
GRID_CASES = [(s, "standard") for s in range(8)] + [(s, "faint") for s in (8, 9)] + \
             [(s, "shifted") for s in (10, 11, 12, 13)] + [(14, "standard"), (0, "demo")]


def _display(case) -> np.ndarray:
    """Window the raw intensities like a viewer (robust percentiles) to 8-bit grey."""
    return np.round(case.image.normalized() * 255).astype(np.uint8)


def _fit(img: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    h, w = img.shape[:2]
    k = size / max(h, w)
    out = cv2.resize(img, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA
                     if k < 1 else cv2.INTER_LINEAR)
    canvas = np.zeros((size, size) + img.shape[2:], np.uint8)
    y0, x0 = (size - out.shape[0]) // 2, (size - out.shape[1]) // 2
    canvas[y0:y0 + out.shape[0], x0:x0 + out.shape[1]] = out
    return canvas, k


def _label(text: str, width: int) -> np.ndarray:
    bar = np.full((LABEL_H, width, 3), 32, np.uint8)
    cv2.putText(bar, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (235, 235, 235), 1, cv2.LINE_AA)
    return bar


def make_grid(path: Path) -> None:
    rows = []
    for r in range(4):
        tiles = []
        for c in range(4):
            seed, style = GRID_CASES[4 * r + c]
            case = generate_phantom(seed, style)
            tile, _ = _fit(_display(case), TILE)
            tile = cv2.cvtColor(tile, cv2.COLOR_GRAY2BGR)
            sr, sc = case.image.spacing_mm
            sp = f"{sr:.2f}" if abs(sr - sc) < 1e-9 else f"{sr:.2f}x{sc:.2f}"
            text = (f"#{seed} {style} {sp}mm {case.annotation.provenance['facing']}"
                    f"{' faint' if case.faint and style != 'faint' else ''} {case.image.bit_depth}b")
            tiles.append(np.vstack([_label(text, TILE), tile]))
            tiles.append(np.zeros((TILE + LABEL_H, 4, 3), np.uint8))
        rows.append(np.hstack(tiles[:-1]))
        rows.append(np.zeros((4, rows[-1].shape[1], 3), np.uint8))
    cv2.imwrite(str(path), np.vstack(rows[:-1]), [cv2.IMWRITE_JPEG_QUALITY, 88])


def _draw_overlay(case, size: int) -> np.ndarray:
    img, k = _fit(_display(case), size)
    h, w = case.image.height, case.image.width
    y0, x0 = (size - round(h * k)) // 2, (size - round(w * k)) // 2
    out = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)

    def pts(coords) -> np.ndarray:
        c = np.asarray(coords, float)
        return np.round(((c + 0.5) * k - 0.5 + [x0, y0]) * 4).astype(np.int32).reshape(-1, 1, 2)

    ann = case.annotation
    for name, colour in (("PAB", (60, 200, 60)), ("enamel", (255, 200, 0))):
        for poly in ann.region(name).geoms:
            cv2.polylines(out, [pts(poly.exterior.coords)], True, colour, 1, cv2.LINE_AA, shift=2)
            for hole in poly.interiors:
                cv2.polylines(out, [pts(hole.coords)], True, colour, 1, cv2.LINE_AA, shift=2)
    cv2.polylines(out, [pts(case.palatal_boundary.coords)], False, (40, 40, 255), 2, cv2.LINE_AA, shift=2)
    for name, colour in (("CEJ_labial", (255, 0, 255)), ("CEJ_palatal", (0, 255, 255)), ("apex", (0, 128, 255))):
        p = pts([ann.landmarks[name]])[0, 0]
        cv2.circle(out, (int(p[0]), int(p[1])), 4 * 4, colour, 2, cv2.LINE_AA, shift=2)
    return out


def make_overlay(path: Path) -> None:
    size = 560
    panels = []
    for seed, style in ((0, "demo"), (9, "faint")):
        case = generate_phantom(seed, style)
        panel = _draw_overlay(case, size)
        text = f"#{seed} {style}: PAB green, enamel cyan, palatal boundary red, CEJ_lab magenta, " \
               f"CEJ_pal yellow, apex orange"
        panels.append(np.vstack([_label(text[:80], size), panel]))
        panels.append(np.zeros((size + LABEL_H, 6, 3), np.uint8))
    cv2.imwrite(str(path), np.hstack(panels[:-1]), [cv2.IMWRITE_JPEG_QUALITY, 88])


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    make_grid(here / "phantom_grid.jpg")
    make_overlay(here / "phantom_truth_overlay.jpg")
    print("wrote", here / "phantom_grid.jpg", "and", here / "phantom_truth_overlay.jpg")
