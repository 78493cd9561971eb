"""How many clicks does an outline take? Live-wire (edge-following) vs the plain polygon tool.

A simulated annotator clicks N points evenly spaced (by arc length) along the true outline
of the PAB and of the enamel of held-out phantoms; the polygon tool joins them by straight
lines, the live-wire tool by edge-following paths (``core.livewire``). A third row models
how the live-wire tool is meant to be used: where the image shows no edge between two clicks
(the PAB's apex-level cut, a faint palatal surface), the annotator Shift-clicks for a straight
segment; "no edge" = the mean gradient along the true boundary between the two clicks is below
half the median of that outline's segments. Printed: mean Dice against the truth per number
of clicks, and the clicks each tool needs to reach Dice 0.90 and 0.95.

    python benchmarks/bench_annotation_clicks.py [--n 20] [--seed 7000] [--style standard]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from shapely.geometry import MultiPolygon, Polygon

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dentseg_gui.core.geometry import as_multipolygon, dice, geometry_to_mask, largest_polygon  # noqa: E402
from dentseg_gui.core.livewire import LiveWire, edge_image  # noqa: E402
from dentseg_gui.core.phantom import generate_phantom  # noqa: E402

CLICKS = (4, 6, 8, 10, 12, 16, 20, 30)


def clicks_along(poly: Polygon, n: int, phase: float) -> np.ndarray:
    ring = poly.exterior
    s = (np.arange(n) + phase) / n * ring.length
    return np.array([ring.interpolate(v).coords[0] for v in s])


TOOLS = ("polygon", "live-wire", "live-wire+shift")


def edgeless_segments(poly: Polygon, pts: np.ndarray, grad: np.ndarray) -> list[bool]:
    """For a closed chain of clicks on ``poly``'s outline: True where the true boundary between
    click k-1 and click k (the closing segment last) shows no edge to the eye."""
    ring = poly.exterior
    s = np.array([ring.project(ring.interpolate(ring.project(_pt(p)))) for p in pts])
    means = []
    for k in range(1, len(pts) + 1):
        a, b = s[k - 1], s[k % len(pts)]
        if b <= a:
            b += ring.length
        t = np.linspace(a, b, max(3, int(b - a)))
        xy = np.array([ring.interpolate(v % ring.length).coords[0] for v in t], np.float32)
        means.append(float(cv2.remap(grad, xy[None, :, 0], xy[None, :, 1], cv2.INTER_LINEAR).mean()))
    cut = 0.5 * float(np.median(means))
    return [False] + [m < cut for m in means]


def _pt(p):
    from shapely.geometry import Point
    return Point(float(p[0]), float(p[1]))


def run(n_cases: int, seed: int, style: str) -> dict:
    rows: dict[tuple[str, str, int], list[float]] = {}
    t_wire = []
    for k in range(n_cases):
        case = generate_phantom(seed + k, style)
        shape = case.image.pixels.shape
        img8 = edge_image(case.image.pixels)
        wire = LiveWire(img8)
        sm = cv2.GaussianBlur(img8.astype(np.float32), (0, 0), 1.0)
        grad = np.hypot(cv2.Sobel(sm, cv2.CV_32F, 1, 0), cv2.Sobel(sm, cv2.CV_32F, 0, 1))
        rng = np.random.default_rng(seed + k)
        for region in ("PAB", "enamel"):
            truth_geom = case.annotation.regions[region]
            truth = geometry_to_mask(truth_geom, shape)
            poly = largest_polygon(truth_geom)
            for n in CLICKS:
                pts = clicks_along(poly, n, float(rng.uniform()))
                straight = as_multipolygon(Polygon(pts).buffer(0))
                t0 = time.perf_counter()
                traced = wire.outline(pts)
                t_wire.append((time.perf_counter() - t0) / n)
                shifted = wire.outline(pts, straight=edgeless_segments(poly, pts, grad))
                for tool, geom in (("polygon", straight), ("live-wire", traced), ("live-wire+shift", shifted)):
                    d = dice(geometry_to_mask(geom if not geom.is_empty else MultiPolygon(), shape), truth)
                    rows.setdefault((region, tool, n), []).append(d)
    return {"rows": rows, "ms_per_segment": 1000 * float(np.median(t_wire))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7000)
    ap.add_argument("--style", default="standard")
    a = ap.parse_args()
    res = run(a.n, a.seed, a.style)
    rows = res["rows"]
    print(f"{a.n} phantoms ({a.style}, seeds {a.seed}..{a.seed + a.n - 1}); mean Dice vs the truth")
    print(f"{'region':8} {'tool':16} " + " ".join(f"{n:>6}" for n in CLICKS))
    for region in ("PAB", "enamel"):
        for tool in TOOLS:
            print(f"{region:8} {tool:16} " + " ".join(f"{np.mean(rows[(region, tool, n)]):6.3f}" for n in CLICKS))
    for region in ("PAB", "enamel"):
        for target in (0.90, 0.95):
            need = {tool: next((n for n in CLICKS if np.mean(rows[(region, tool, n)]) >= target), None)
                    for tool in TOOLS}
            print(f"clicks to Dice {target:.2f} ({region}): "
                  + ", ".join(f"{tool} {need[tool] or '>30'}" for tool in TOOLS))
    print(f"live-wire: {res['ms_per_segment']:.1f} ms per segment (median, map build included)")


if __name__ == "__main__":
    main()
