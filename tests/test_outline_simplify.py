"""Brushed outlines simplified to the pixel grid: bounded vertex counts, shape kept."""

from __future__ import annotations

import numpy as np
from shapely.geometry import Point

from dentseg_gui.core.geometry import (MAX_OUTLINE_VERTICES, as_multipolygon, bound_vertices,
                                       geometry_to_mask, mask_to_geometry, simplify_to_pixel_grid,
                                       vertex_count)


def capsule_mask(a, b, r, shape=(300, 300)) -> np.ndarray:
    """Pixels whose centre is within r of the segment a-b (what the brush paints)."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = b - a
    t = np.clip(((xx - a[0]) * d[0] + (yy - a[1]) * d[1]) / max(d @ d, 1e-9), 0, 1)
    return (xx - a[0] - t * d[0]) ** 2 + (yy - a[1] - t * d[1]) ** 2 <= r * r


def test_a_slanted_stroke_loses_its_staircase_but_not_its_shape():
    mask = capsule_mask((40, 50), (230, 190), 9.0)
    traced = mask_to_geometry(mask)
    simple = simplify_to_pixel_grid(traced)
    assert vertex_count(traced) > 300 and vertex_count(simple) < vertex_count(traced) / 3
    # the staircase is gone, the pixels are not: the same pixel centres are inside
    assert abs(simple.area - traced.area) <= 0.05 * traced.length
    assert np.array_equal(geometry_to_mask(simple, mask.shape), mask)
    assert simple.is_valid and len(simple.geoms) == 1


def test_a_one_pixel_feature_survives():
    mask = np.zeros((40, 40), bool)
    mask[10:30, 10:30] = True
    mask[19, 30:36] = True                       # a one-pixel-wide spur
    mask[5, 5] = True                            # and a lone pixel
    simple = simplify_to_pixel_grid(mask_to_geometry(mask))
    assert np.array_equal(geometry_to_mask(simple, mask.shape), mask)


def test_fifty_strokes_keep_the_outline_bounded():
    rng = np.random.default_rng(0)
    region = as_multipolygon(Point(150, 150).buffer(60, quad_segs=64))   # a smooth predicted region
    counts = []
    for _ in range(50):
        a = rng.uniform(60, 240, 2)
        b = a + rng.normal(0, 30, 2)
        stroke = simplify_to_pixel_grid(mask_to_geometry(capsule_mask(a, b, rng.uniform(3, 12))))
        region = bound_vertices(as_multipolygon(region.union(stroke)), max_vertices=600)
        counts.append(vertex_count(region))
    assert max(counts) <= 600 and region.is_valid
    assert bound_vertices(region, max_vertices=10_000) is not None
    assert vertex_count(bound_vertices(region, max_vertices=10_000)) == counts[-1]   # under the cap: untouched
    assert MAX_OUTLINE_VERTICES >= 600
