"""Palatal-boundary geometry and boundary compensation on phantoms with exact truth."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString

from dentseg_gui.core.geometry import as_multipolygon
from dentseg_gui.core.measurements import ToothFrame
from dentseg_gui.core.palatal_boundary import (curve_from_handles, extract_palatal_boundary,
                                               replace_palatal_boundary, resample_curve, smooth_curve)
from dentseg_gui.core.phantom import generate_phantom
from dentseg_gui.model.compensation import DEFAULT_PARAMS, compensate, offset_palatal_boundary, snap_curve_to_edge
from dentseg_gui.model.evaluate import curve_distance


def _case(seed: int, style: str = "standard"):
    c = generate_phantom(seed, style)
    a = c.annotation
    return c, a, a.pixel_spacing_mm


def _dist(region, a, c) -> float:
    curve = extract_palatal_boundary(region, a.landmarks, a.pixel_spacing_mm)
    return curve_distance(curve, c.palatal_boundary, a.pixel_spacing_mm)


# --------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("seed,style", [(3, "standard"), (8, "standard"), (4, "shifted"), (11, "faint")])
def test_extract_palatal_boundary_is_the_true_palatal_surface(seed, style):
    c, a, sp = _case(seed, style)
    curve = extract_palatal_boundary(a.regions["PAB"], a.landmarks, sp)
    assert curve is not None
    # the phantom knows the exact soft-tissue boundary: the extracted run is that curve
    assert curve_distance(curve, c.palatal_boundary, sp) < 0.01
    frame = ToothFrame.from_landmarks(a.landmarks, sp)
    pts = frame.px_to_frame(np.asarray(curve.coords))
    ring = frame.px_to_frame(np.asarray(a.regions["PAB"].geoms[0].exterior.coords))
    # ordered crest -> apex (apical = +y) and on the palatal side (+x) of the region
    assert pts[-1, 1] - pts[0, 1] > 0.5 * (ring[:, 1].max() - ring[:, 1].min())
    assert pts[:, 0].mean() > ring[:, 0].mean()


def test_extract_needs_a_frame():
    c, a, sp = _case(3)
    assert extract_palatal_boundary(a.regions["PAB"], {}, sp) is None
    assert extract_palatal_boundary(a.regions["PAB"], a.landmarks, None) is None
    assert extract_palatal_boundary(shapely.MultiPolygon(), a.landmarks, sp) is None


def test_replace_identity_keeps_area_and_pushing_outward_grows_it():
    c, a, sp = _case(5)
    pab = a.regions["PAB"]
    curve = extract_palatal_boundary(pab, a.landmarks, sp)
    same = replace_palatal_boundary(pab, curve, curve)
    assert same.area == pytest.approx(pab.area, rel=1e-9)
    assert same.symmetric_difference(pab).area < 1e-6 * pab.area

    grown = offset_palatal_boundary(pab, a.landmarks, sp, 0.3)
    shrunk = offset_palatal_boundary(pab, a.landmarks, sp, -0.3)
    length_px = curve.length
    shift_px = 0.3 / sp[1]
    assert grown.area > pab.area + 0.7 * length_px * shift_px
    assert shrunk.area < pab.area - 0.7 * length_px * shift_px
    assert grown.contains(pab.buffer(-1e-6))
    # the root side did not move: the PDL-facing outline is shared
    assert grown.is_valid and shrunk.is_valid


def test_replace_with_a_handle_dragged_across_the_root_stays_one_valid_polygon():
    c, a, sp = _case(5)
    pab = a.regions["PAB"]
    curve = extract_palatal_boundary(pab, a.landmarks, sp)
    frame = ToothFrame.from_landmarks(a.landmarks, sp)
    pts = np.asarray(curve.coords).copy()
    mid = len(pts) // 2
    # drag a stretch of the curve 6 mm to the labial side, through the root
    pts[mid - 3:mid + 3] -= frame.ex / np.array([sp[1], sp[0]]) * 6.0
    out = replace_palatal_boundary(pab, curve, pts)
    assert out.is_valid and not out.is_empty
    assert len(out.geoms) == 1
    assert out.area < pab.area


def test_curve_tools():
    handles = np.array([[0.0, 0.0], [10.0, 3.0], [20.0, 0.0], [25.0, 10.0], [24.0, 20.0]])
    spline = curve_from_handles(handles, samples_per_segment=10)
    assert spline.shape == (41, 2)
    np.testing.assert_allclose(spline[::10], handles, atol=1e-9)      # through every handle
    # centripetal Catmull-Rom stays near the handle polygon (no loops or overshoot)
    poly = LineString(handles)
    assert max(poly.distance(shapely.Point(p)) for p in spline) < 3.0

    even = resample_curve(spline, 12)
    steps = np.linalg.norm(np.diff(even, axis=0), axis=1)
    assert steps.std() < 0.02 * steps.mean()
    np.testing.assert_allclose(even[[0, -1]], spline[[0, -1]])

    rng = np.random.default_rng(0)
    x = np.linspace(0, 50, 101)
    noisy = np.stack([x, 0.5 * rng.standard_normal(len(x))], axis=1)
    sm = smooth_curve(noisy, sigma=3.0)
    assert sm.shape == noisy.shape
    np.testing.assert_allclose(sm[[0, -1]], noisy[[0, -1]])
    assert np.abs(sm[5:-5, 1]).std() < 0.5 * noisy[:, 1].std()


# --------------------------------------------------------------------------- compensation


def _smooth_error(amplitude: float):
    """A smooth boundary error (mm): zero at the crest corner, bulging along the surface."""
    return lambda t: amplitude * np.sin(np.pi * np.clip(t, 0.0, 1.0)) ** 0.5


@pytest.mark.parametrize("seed,style,amplitude", [
    (26, "faint", -0.5),     # network stopped short of a faint cortex
    (30, "faint", -0.5),
    (22, "standard", -0.5),
    (29, "standard", 0.5),   # network spilled into the soft tissue
    (31, "standard", 0.5),
])
def test_compensation_moves_a_displaced_boundary_onto_the_truth(seed, style, amplitude):
    c, a, sp = _case(seed, style)
    wrong = offset_palatal_boundary(a.regions["PAB"], a.landmarks, sp, _smooth_error(amplitude))
    before = _dist(wrong, a, c)
    res = compensate(c.image.normalized(), wrong, a.landmarks, sp)
    assert res.applied, res.note
    after = _dist(res.region, a, c)
    assert before > 0.3
    assert after < 0.5 * before
    assert res.region.is_valid
    # only the palatal side moved: the region still holds the untouched root-side outline
    assert res.moved_mm > 0.1
    assert len(res.curve_after.coords) > 10


@pytest.mark.parametrize("seed", [20, 22, 29])
def test_compensation_leaves_a_correct_boundary_nearly_unchanged(seed):
    c, a, sp = _case(seed, "standard")
    assert not c.faint
    res = compensate(c.image.normalized(), a.regions["PAB"], a.landmarks, sp)
    assert res.moved_mm < 0.06
    assert _dist(res.region, a, c) < 0.06
    assert res.region.symmetric_difference(a.regions["PAB"]).area < 0.05 * a.regions["PAB"].area


@pytest.mark.parametrize("seed", [20, 22, 29])
def test_a_boundary_already_on_the_edge_is_returned_untouched(seed):
    # the correction found for the exact boundary is below min_move_mm: the outline is not
    # rebuilt (a rebuild alone would re-pixelate it and could only cost Dice)
    c, a, sp = _case(seed, "standard")
    res = compensate(c.image.normalized(), a.regions["PAB"], a.landmarks, sp)
    assert not res.applied and "already on the edge" in res.note, res.note
    assert res.region.equals(as_multipolygon(a.regions["PAB"])) and res.moved_mm == 0.0
    nudged = compensate(c.image.normalized(), a.regions["PAB"], a.landmarks, sp,
                        params=dataclasses.replace(DEFAULT_PARAMS, min_move_mm=0.0))
    assert nudged.applied and not nudged.region.equals(as_multipolygon(a.regions["PAB"]))


def test_no_edge_evidence_means_no_change():
    c, a, sp = _case(22)
    flat = np.full(c.image.pixels.shape, 0.4, np.float32)
    flat += np.random.default_rng(1).normal(0, 0.02, flat.shape).astype(np.float32)
    wrong = offset_palatal_boundary(a.regions["PAB"], a.landmarks, sp, 0.4)
    res = compensate(flat, wrong, a.landmarks, sp)
    assert not res.applied
    assert res.region.equals(as_multipolygon(wrong))
    assert res.moved_mm == 0.0 and res.note


def test_compensation_without_landmarks_or_region_is_a_clear_no_op():
    c, a, sp = _case(22)
    res = compensate(c.image.normalized(), a.regions["PAB"], {}, sp)
    assert not res.applied and "frame" in res.note
    res = compensate(c.image.normalized(), shapely.MultiPolygon(), a.landmarks, sp)
    assert not res.applied and "no PAB" in res.note


def test_snap_to_edge_pulls_the_users_curve_onto_the_bone_surface():
    c, a, sp = _case(22)
    truth = np.asarray(extract_palatal_boundary(a.regions["PAB"], a.landmarks, sp).coords)
    frame = ToothFrame.from_landmarks(a.landmarks, sp)
    handles = resample_curve(truth, 10)
    # the user drew it 0.4 mm too far palatal
    user = curve_from_handles(handles + frame.ex * 0.4 / np.array([sp[1], sp[0]]), 8)
    snapped = snap_curve_to_edge(c.image.normalized(), user, a.landmarks, sp, band_mm=1.0)
    assert snapped.shape == user.shape
    before = curve_distance(LineString(user), c.palatal_boundary, sp)
    after = curve_distance(LineString(snapped), c.palatal_boundary, sp)
    assert after < 0.5 * before
