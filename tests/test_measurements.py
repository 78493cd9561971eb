"""The measurement engine against closed-form answers and under image transforms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon

from dentseg_gui.core.annotation import Annotation
from dentseg_gui.core.measurements import (CONTRACT_KEYS, KEYS, ToothFrame, measure,
                                           overlay_geometry)

TOL = 1e-6


def _case_in_frame(pab_frame, enamel_frame, L, angle_deg=0.0, spacing=(0.1, 0.1),
                   origin_px=(200.0, 300.0), cej_half_width_mm=3.0, mirror=False):
    """Build an annotation whose tooth frame is known exactly.

    Shapes are given in tooth-frame mm (x palatal, y apical); they are placed
    in the image so the long axis is tilted ``angle_deg`` from image-up.
    """
    a = math.radians(angle_deg)
    ey = np.array([math.sin(a), -math.cos(a)])         # apical = up, tilted
    ex = np.array([-ey[1], ey[0]])
    if mirror:
        ex = -ex
    s = np.array([spacing[1], spacing[0]])
    o_mm = np.asarray(origin_px) * s

    def to_px(c):
        c = np.asarray(c, float)
        return (o_mm + c[:, :1] * ex + c[:, 1:2] * ey) / s

    lm = {
        "CEJ_palatal": tuple(to_px(np.array([[cej_half_width_mm, 0.0]]))[0]),
        "CEJ_labial": tuple(to_px(np.array([[-cej_half_width_mm, 0.0]]))[0]),
        "apex": tuple(to_px(np.array([[0.0, L]]))[0]),
    }
    regions = {}
    if pab_frame is not None:
        regions["PAB"] = MultiPolygon([shapely.transform(pab_frame, to_px)])
    if enamel_frame is not None:
        regions["enamel"] = MultiPolygon([shapely.transform(enamel_frame, to_px)])
    return Annotation("case.png", 400, 400, spacing, regions, lm)


@pytest.mark.parametrize("angle", [0.0, 17.0, 35.0, -20.0])
@pytest.mark.parametrize("spacing", [(0.1, 0.1), (0.25, 0.15)])
def test_rectangle_in_known_frame(angle, spacing):
    L = 14.0
    pab = shapely.box(1.0, 2.0, 4.0, 12.0)  # x 1..4 mm palatal, y 2..12 mm apical
    enamel = Polygon([(-3, 0), (3, 0), (2, -9), (-2, -9)])
    m = measure(_case_in_frame(pab, enamel, L, angle, spacing)).values
    assert m["root_length_mm"] == pytest.approx(L, abs=TOL)
    assert m["pab_area_mm2"] == pytest.approx(30.0, abs=TOL)
    assert m["enamel_area_mm2"] == pytest.approx(0.5 * (6 + 4) * 9, abs=TOL)
    assert m["pab_thickness_25_mm"] == pytest.approx(3.0, abs=TOL)   # y = 3.5
    assert m["pab_thickness_50_mm"] == pytest.approx(3.0, abs=TOL)   # y = 7
    assert m["pab_thickness_75_mm"] == pytest.approx(3.0, abs=TOL)   # y = 10.5
    assert m["pab_thickness_90_mm"] == 0.0                           # y = 12.6: above the bone
    assert m["pab_crest_cej_mm"] == pytest.approx(2.0, abs=TOL)
    assert m["pab_height_mm"] == pytest.approx(10.0, abs=TOL)
    assert m["axis_tilt_deg"] == pytest.approx(abs(angle), abs=TOL)
    assert m["pab_thickness_3mm_mm"] == pytest.approx(3.0, abs=TOL)
    assert m["pab_thickness_9mm_mm"] == pytest.approx(3.0, abs=TOL)
    assert m["pab_centroid_x_mm"] == pytest.approx(2.5, abs=TOL)
    assert m["pab_centroid_y_mm"] == pytest.approx(7.0, abs=TOL)
    assert m["crown_length_mm"] == pytest.approx(9.0, abs=TOL)


def test_trapezoid_and_triangle_thickness_follow_the_closed_form():
    L = 10.0
    # trapezoid: width grows linearly from 2 mm at y=0 to 6 mm at y=10
    trap = Polygon([(0.5, 0.0), (2.5, 0.0), (6.5, 10.0), (0.5, 10.0)])
    m = measure(_case_in_frame(trap, None, L, 23.0, (0.2, 0.13))).values
    for t in (25, 50, 75, 90):
        assert m[f"pab_thickness_{t}_mm"] == pytest.approx(2.0 + 4.0 * t / 100, abs=TOL)
    assert m["pab_area_mm2"] == pytest.approx((2 + 6) / 2 * 10, abs=TOL)
    # triangle with the tip at the crest: width = y * 0.5 from y=1
    tri = Polygon([(1.0, 1.0), (5.0, 9.0), (1.0, 9.0)])
    m = measure(_case_in_frame(tri, None, L, 8.0, (0.3, 0.3))).values
    assert m["pab_thickness_50_mm"] == pytest.approx(0.5 * (5.0 - 1.0), abs=TOL)
    assert m["pab_crest_cej_mm"] == pytest.approx(1.0, abs=TOL)
    assert m["pab_height_mm"] == pytest.approx(8.0, abs=TOL)
    assert m["pab_centroid_x_mm"] == pytest.approx((1 + 5 + 1) / 3, abs=TOL)
    assert m["pab_centroid_y_mm"] == pytest.approx((1 + 9 + 9) / 3, abs=TOL)


def test_holes_are_subtracted_and_a_split_level_adds_both_chords():
    L = 10.0
    ring = shapely.box(1, 1, 7, 9).difference(shapely.box(3, 4, 5, 6))  # hole 2x2 at y 4..6
    m = measure(_case_in_frame(ring, None, L, 0.0)).values
    assert m["pab_area_mm2"] == pytest.approx(48 - 4, abs=TOL)
    assert m["pab_thickness_50_mm"] == pytest.approx(6 - 2, abs=TOL)  # y=5 crosses the hole
    # a level split by a canal inside ONE piece adds both chords
    canal = shapely.box(1, 0, 7, 8).difference(shapely.box(2, 2, 4, 8.5))     # a slot open at the apex level
    m = measure(_case_in_frame(canal, None, L, 0.0)).values
    assert m["pab_thickness_50_mm"] == pytest.approx(1 + 3, abs=TOL)
    # two separate pieces: only the one that belongs to the tooth is measured (core.pieces), and
    # the report says what was left out
    two = MultiPolygon([shapely.box(1, 0, 2, 8), shapely.box(4, 2, 7, 8)])
    ann = _case_in_frame(None, None, L, 12.0)
    frame = ToothFrame.from_landmarks(ann.landmarks, ann.pixel_spacing_mm)
    ann.regions["PAB"] = shapely.transform(two, lambda c: frame.frame_to_px(c))
    ms = measure(ann)
    assert ms.values["pab_thickness_50_mm"] == pytest.approx(3, abs=TOL)
    assert ms.values["pab_crest_cej_mm"] == pytest.approx(2.0, abs=TOL)
    assert ms.warnings[0].startswith("2 PAB pieces: measured the one on the root (18.0 mm²), left out 8.0 mm²")


def test_crest_coronal_of_the_cej_is_negative():
    m = measure(_case_in_frame(shapely.box(1, -1.5, 3, 8), None, 10.0)).values
    assert m["pab_crest_cej_mm"] == pytest.approx(-1.5, abs=TOL)


def test_palatal_side_follows_the_landmark_not_the_image_side():
    pab = shapely.box(1.0, 2.0, 4.0, 12.0)
    right = measure(_case_in_frame(pab, None, 14.0, 10.0)).values
    left = measure(_case_in_frame(pab, None, 14.0, 10.0, mirror=True)).values
    for k in KEYS:
        if right[k] is not None:
            assert left[k] == pytest.approx(right[k], abs=TOL), k
    assert right["pab_centroid_x_mm"] > 0


# ------------------------------------------------------------------ invariance

def _random_case(seed: int) -> Annotation:
    rng = np.random.default_rng(seed)
    L = rng.uniform(10, 16)
    ys = np.linspace(rng.uniform(0.5, 2.5), L, 25)
    inner = 1.0 + 0.2 * np.sin(ys)
    outer = inner + rng.uniform(1.5, 4.0) + 0.8 * np.sin(ys * rng.uniform(0.3, 1.0))
    pab = Polygon(list(zip(inner, ys)) + list(zip(outer[::-1], ys[::-1])))
    enamel = Polygon([(-3, 0), (-2.5, -rng.uniform(7, 10)), (2.5, -9), (3, 0), (2.2, -1), (-2.2, -1)])
    return _case_in_frame(pab, enamel.buffer(0), L, rng.uniform(0, 35), (0.2, 0.2),
                          origin_px=(200.0, 250.0))


def _transform(ann: Annotation, fn, spacing) -> Annotation:
    out = ann.copy()
    out.pixel_spacing_mm = spacing
    out.regions = {k: shapely.transform(g, fn) for k, g in ann.regions.items()}
    out.landmarks = {k: tuple(fn(np.array([p]))[0]) for k, p in ann.landmarks.items()}
    return out


@pytest.mark.parametrize("seed", range(5))
def test_measurements_invariant_to_mirror_rotation_and_rescale(seed):
    ann = _random_case(seed)
    base = measure(ann).values
    W = 400
    th = math.radians(27.0)
    R = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    c = np.array([200.0, 200.0])
    variants = {
        "mirror": _transform(ann, lambda p: np.column_stack([W - 1 - p[:, 0], p[:, 1]]), (0.2, 0.2)),
        "rotate": _transform(ann, lambda p: (p - c) @ R.T + c, (0.2, 0.2)),
        "rescale": _transform(ann, lambda p: p * 2.5, (0.08, 0.08)),
        "anisotropic": _transform(ann, lambda p: p * np.array([2.0, 0.5]), (0.4, 0.1)),
    }
    for name, v in variants.items():
        m = measure(v).values
        for k in KEYS:
            if k == "axis_tilt_deg":
                continue  # tilt is relative to the image, it changes with rotation/mirror
            tol = 0.01 if k.endswith("_deg") else 0.01
            assert m[k] == pytest.approx(base[k], abs=tol), (name, k)
    assert measure(variants["mirror"]).values["axis_tilt_deg"] == pytest.approx(base["axis_tilt_deg"], abs=0.01)
    assert measure(variants["rescale"]).values["axis_tilt_deg"] == pytest.approx(base["axis_tilt_deg"], abs=0.01)


# ------------------------------------------------------------------ missing values

@pytest.mark.parametrize("name, edit, key, reason", [
    ("no spacing", lambda a: setattr(a, "pixel_spacing_mm", None), "pab_area_mm2", "pixel spacing unknown"),
    ("no apex", lambda a: a.landmarks.pop("apex"), "root_length_mm", "landmark apex not placed"),
    ("no CEJ", lambda a: a.landmarks.pop("CEJ_palatal"), "pab_thickness_50_mm", "landmark CEJ_palatal not placed"),
    ("CEJ points coincide", lambda a: a.landmarks.update(CEJ_labial=a.landmarks["CEJ_palatal"]),
     "axis_tilt_deg", "on top of each other"),
    ("apex on origin", lambda a: a.landmarks.update(
        apex=tuple((np.array(a.landmarks["CEJ_labial"]) + a.landmarks["CEJ_palatal"]) / 2)),
     "root_length_mm", "apex is on top of the CEJ midpoint"),
    ("empty PAB", lambda a: a.regions.pop("PAB"), "pab_thickness_25_mm", "no PAB region"),
    ("empty enamel", lambda a: a.regions.pop("enamel"), "enamel_area_mm2", "no enamel region"),
])
def test_missing_inputs_give_missing_values_with_reasons(name, edit, key, reason):
    ann = _random_case(1)
    edit(ann)
    ms = measure(ann)
    assert ms.values[key] is None
    assert reason in ms.missing[key]
    for k, v in ms.values.items():
        assert v is None or math.isfinite(v)
        assert (v is None) == (k in ms.missing)


def test_area_survives_missing_landmarks():
    ann = _random_case(2)
    ann.landmarks.clear()
    ms = measure(ann)
    assert ms.values["pab_area_mm2"] > 0
    assert set(CONTRACT_KEYS) - set(ms.missing) == {"pab_area_mm2", "enamel_area_mm2"}


def test_overlay_geometry_chords_match_thickness():
    ann = _random_case(3)
    og = overlay_geometry(ann)
    m = measure(ann).values
    sx, sy = ann.pixel_spacing_mm[1], ann.pixel_spacing_mm[0]
    for t, segs in og.thickness_segments.items():
        total = sum(math.hypot((b[0] - a[0]) * sx, (b[1] - a[1]) * sy) for a, b in segs)
        assert total == pytest.approx(m[f"pab_thickness_{t}_mm"], abs=1e-6)
    assert og.origin == pytest.approx(tuple((np.array(ann.landmarks["CEJ_labial"]) + ann.landmarks["CEJ_palatal"]) / 2))


# --------------------------------------------------------------------------- pieces that belong to the tooth


def _with_extra_pab(ann, extra):
    from dentseg_gui.core.geometry import as_multipolygon
    out = ann.copy()
    out.regions = dict(ann.regions)
    out.regions["PAB"] = as_multipolygon(ann.regions["PAB"].union(extra))
    return out


def test_a_stray_dot_or_stroke_leaves_the_numbers_alone_and_is_reported():
    from shapely.geometry import LineString, Point

    from dentseg_gui.core.phantom import generate_phantom
    ann = generate_phantom(0, "demo").annotation
    ref = measure(ann)
    assert ref.warnings == [] and ref.left_out == {}
    lm = ann.landmarks
    far = Point(lm["apex"][0] - 60, lm["apex"][1] - 40).buffer(2.0)          # a dot far from the tooth
    stroke = LineString([(lm["apex"][0] + 85, lm["apex"][1] + 20),             # a stroke beyond the bone
                         (lm["apex"][0] + 85, lm["CEJ_palatal"][1] - 10)]).buffer(3.0)
    assert far.disjoint(ann.regions["PAB"]) and stroke.disjoint(ann.regions["PAB"])
    for extra in (far, stroke, far.union(stroke)):
        m = measure(_with_extra_pab(ann, extra))
        for k in ("pab_crest_cej_mm", "pab_height_mm", "pab_thickness_75_mm", "pab_area_mm2"):
            assert m.values[k] == pytest.approx(ref.values[k], abs=1e-9), k
        (w,) = m.warnings
        assert w.startswith(f"{1 + len(getattr(extra, 'geoms', [extra]))} PAB pieces: measured the one on the root")
        assert "left out" in w and not m.left_out["PAB"].is_empty


def test_without_a_frame_the_largest_piece_is_measured_and_said_so():
    from shapely.geometry import Point

    from dentseg_gui.core.phantom import generate_phantom
    ann = generate_phantom(0, "demo").annotation
    ref = measure(ann).values["pab_area_mm2"]
    a2 = _with_extra_pab(ann, Point(20, 20).buffer(3.0))
    a2.landmarks = {}
    m = measure(a2)
    assert m.values["pab_area_mm2"] == pytest.approx(ref, abs=1e-9)
    assert "measured the largest" in m.warnings[0] and "no tooth frame yet" in m.warnings[0]


def test_a_stray_enamel_piece_is_left_out_of_the_crown():
    from shapely.geometry import Point

    from dentseg_gui.core.geometry import as_multipolygon
    from dentseg_gui.core.phantom import generate_phantom
    ann = generate_phantom(0, "demo").annotation
    ref = measure(ann)
    a2 = ann.copy()
    a2.regions = dict(ann.regions)
    apex = ann.landmarks["apex"]
    a2.regions["enamel"] = as_multipolygon(ann.regions["enamel"].union(Point(apex[0], apex[1] - 20).buffer(3)))
    m = measure(a2)
    assert m.values["enamel_area_mm2"] == pytest.approx(ref.values["enamel_area_mm2"], abs=1e-9)
    assert m.values["crown_length_mm"] == pytest.approx(ref.values["crown_length_mm"], abs=1e-9)
    assert m.warnings[0].startswith("2 enamel pieces: measured the crown's")
