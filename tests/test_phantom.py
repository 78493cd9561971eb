"""The synthetic phantom generator: exact, reproducible truth that matches its own image."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import shapely
from shapely.geometry import Point

from dentseg_gui.core.annotation import Annotation, load_annotation
from dentseg_gui.core.geometry import dice, geometry_to_mask, mask_to_geometry
from dentseg_gui.core.phantom import STYLES, PhantomCase, generate_phantom, write_phantom_set

SEEDS = range(12)


@pytest.fixture(scope="module")
def cases() -> dict[tuple[int, str], PhantomCase]:
    """A small shared cohort: every test reads it, none regenerates it."""
    out = {}
    for s in SEEDS:
        out[(s, "standard")] = generate_phantom(s)
    for s in range(4):
        out[(s, "faint")] = generate_phantom(s, "faint")
        out[(s, "shifted")] = generate_phantom(s, "shifted")
    out[(0, "demo")] = generate_phantom(0, "demo")
    return out


def _frame_mm(ann: Annotation):
    """Tooth frame from the landmarks, as DESIGN.md defines it, in millimetres."""
    sr, sc = ann.pixel_spacing_mm
    k = np.array([sc, sr])
    lab = np.asarray(ann.landmarks["CEJ_labial"]) * k
    pal = np.asarray(ann.landmarks["CEJ_palatal"]) * k
    apex = np.asarray(ann.landmarks["apex"]) * k
    o = 0.5 * (lab + pal)
    y = (apex - o) / np.linalg.norm(apex - o)
    x = np.array([-y[1], y[0]])
    if np.dot(pal - o, x) < 0:
        x = -x
    return o, x, y, float(np.linalg.norm(apex - o)), k


def _region_xy_mm(ann: Annotation, name: str) -> np.ndarray:
    """All vertices of a region in the tooth frame (mm): columns x (palatal +), y (apical +)."""
    o, x, y, _, k = _frame_mm(ann)
    pts = np.vstack([np.asarray(p.exterior.coords) for p in ann.region(name).geoms])
    d = pts * k - o
    return np.column_stack([d @ x, d @ y])


def test_same_seed_same_case_other_seed_other_case():
    a, b, c = generate_phantom(5), generate_phantom(5), generate_phantom(6)
    assert np.array_equal(a.image.pixels, b.image.pixels)
    assert a.annotation.to_json_dict() == b.annotation.to_json_dict()
    assert a.image.pixels.shape != c.image.pixels.shape or not np.array_equal(a.image.pixels, c.image.pixels)
    assert a.annotation.to_json_dict() != c.annotation.to_json_dict()


def test_unknown_style_is_a_value_error_naming_the_styles():
    with pytest.raises(ValueError) as exc:
        generate_phantom(0, "glossy")
    for style in STYLES:
        assert style in str(exc.value)


def test_regions_valid_single_and_plausibly_sized(cases):
    for (seed, style), case in cases.items():
        ann = case.annotation
        sr, sc = ann.pixel_spacing_mm
        for name in ("PAB", "enamel"):
            g = ann.region(name)
            assert g.is_valid and not g.is_empty, (seed, style, name)
        pab_mm2 = ann.region("PAB").area * sr * sc
        enamel_mm2 = ann.region("enamel").area * sr * sc
        assert 10.0 < pab_mm2 < 140.0, (seed, style, pab_mm2)
        assert 4.0 < enamel_mm2 < 25.0, (seed, style, enamel_mm2)
        assert len(ann.region("enamel").geoms) == 1
        assert case.image.pixels.dtype == np.float32
        assert case.image.pixels.shape == (ann.height, ann.width)


def test_pab_is_palatal_of_the_root_between_crest_and_apex_level(cases):
    for key, case in cases.items():
        ann = case.annotation
        _, _, _, root_len, _ = _frame_mm(ann)
        xy = _region_xy_mm(ann, "PAB")
        assert xy[:, 0].min() > -0.5, key                   # nothing labial of the root axis
        centroid = ann.region("PAB").centroid
        o, x, _, _, k = _frame_mm(ann)
        assert float((np.array([centroid.x, centroid.y]) * k - o) @ x) > 1.0, key
        assert xy[:, 1].min() > 0.0, key                    # crest apical of the CEJ level
        assert xy[:, 1].max() <= root_len + 1e-3, key       # not above the apex-level line
        assert xy[:, 1].max() > root_len - 0.05, key        # reaches it
        assert 9.0 < root_len < 19.0, key


def test_landmarks_sit_on_the_truth(cases):
    for key, case in cases.items():
        ann = case.annotation
        enamel = ann.region("enamel")
        for name in ("CEJ_labial", "CEJ_palatal"):
            assert enamel.boundary.distance(Point(ann.landmarks[name])) < 0.01, (key, name)
        # the enamel ends at the CEJ: nothing of it lies far apical of the CEJ level
        ys = _region_xy_mm(ann, "enamel")[:, 1]
        assert ys.max() < 0.8, key
        # the palatal boundary runs along the PAB outline
        pab = ann.region("PAB")
        line = case.palatal_boundary
        assert line.length > 20, key
        pts = [line.interpolate(t).coords[0] for t in np.linspace(0, line.length, 50)]
        assert max(pab.boundary.distance(Point(p)) for p in pts) < 0.05, key


def test_enamel_brighter_than_pab_in_the_image(cases):
    for key, case in cases.items():
        px = case.image.pixels
        en = geometry_to_mask(case.annotation.region("enamel"), px.shape)
        pab = geometry_to_mask(case.annotation.region("PAB"), px.shape)
        assert px[en].mean() > px[pab].mean(), key


def test_cohort_varies_facing_tilt_and_spacing():
    facings, tilts, spacings, faint = set(), [], [], 0
    for s in range(24):
        ann = generate_phantom(s).annotation
        facings.add(ann.provenance["facing"])
        _, _, y, _, _ = _frame_mm(ann)
        tilts.append(math.degrees(math.acos(float(np.dot(y, [0.0, -1.0])))))
        spacings.extend(ann.pixel_spacing_mm)
        faint += ann.provenance["faint_palatal_cortex"]
    assert facings == {"left", "right"}
    assert all(0.0 <= t <= 35.0 for t in tilts) and max(tilts) - min(tilts) > 15.0
    assert all(0.1 <= s <= 0.4 for s in spacings)
    assert 1 <= faint <= 14


def test_shifted_style_leaves_the_training_distribution():
    sp = [generate_phantom(s, "shifted").image.spacing_mm for s in range(10)]
    flat = [v for pair in sp for v in pair]
    assert min(flat) >= 0.06 and max(flat) <= 0.63
    assert min(flat) < 0.1 or max(flat) > 0.4              # outside the standard range
    assert all(generate_phantom(s, "faint").faint for s in range(3))


def test_written_files_reload_identically(tmp_path):
    start = next(s for s in range(60) if generate_phantom(s).image.bit_depth == 16)
    paths = write_phantom_set(tmp_path, 2, seed=start - 1)
    assert [p.name for p in paths] == [f"case_{start - 1:04d}{p.suffix}" for p in paths[:1]] + \
        [f"case_{start:04d}.tif"]
    for k, path in enumerate(paths):
        case = generate_phantom(start - 1 + k)
        stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert stored.dtype == (np.uint16 if case.image.bit_depth == 16 else np.uint8)
        assert np.array_equal(stored.astype(np.float32), case.image.pixels)
        ann = load_annotation(path.with_name(path.stem + ".dentseg.json"))
        assert ann.image_path == path.name
        _assert_same_annotation(ann, case.annotation)
        truth = ann.extra["phantom_truth"]
        assert truth["faint_palatal_cortex"] == case.faint
        assert len(truth["palatal_boundary"]) >= 10
        try:
            from dentseg_gui.core.measurements import apply_measurements
        except ImportError:
            continue
        again = apply_measurements(ann)
        assert again.measurements == pytest.approx(ann.measurements, abs=1e-5)


def _assert_same_annotation(a: Annotation, b: Annotation) -> None:
    """Equal fields; regions equal as geometry (a re-save may start a ring at another vertex)."""
    da, db = a.to_json_dict(), b.to_json_dict()
    ra, rb = da.pop("regions"), db.pop("regions")
    assert da == db
    assert ra.keys() == rb.keys()
    for name in ra:
        ga, gb = a.region(name), b.region(name)
        assert shapely.equals_exact(shapely.normalize(ga), shapely.normalize(gb), tolerance=1e-9), name


def test_mask_polygon_round_trip(cases):
    for key in [(0, "standard"), (3, "standard"), (1, "shifted"), (2, "faint"), (0, "demo")]:
        ann = cases[key].annotation
        shape = (ann.height, ann.width)
        for name in ("PAB", "enamel"):
            m1 = geometry_to_mask(ann.region(name), shape)
            m2 = geometry_to_mask(mask_to_geometry(m1), shape)
            assert m1.sum() > 50
            assert dice(m1, m2) >= 0.99, (key, name)


def _boundary_contrast(case: PhantomCase) -> float:
    """Mean normalised intensity 0.5 mm inside the PAB minus 0.7 mm outside, along the
    exact palatal boundary (apical 70 % of it, away from the crest corner)."""
    img = case.image.normalized()
    sr, sc = case.image.spacing_mm
    pab = case.annotation.region("PAB")
    line = case.palatal_boundary
    diffs = []
    for t in np.linspace(0.3, 0.95, 40) * line.length:
        p = np.asarray(line.interpolate(t).coords[0])
        q = np.asarray(line.interpolate(min(t + 1.0, line.length)).coords[0])
        r = np.asarray(line.interpolate(max(t - 1.0, 0.0)).coords[0])
        tan = (q - r) / np.linalg.norm(q - r)
        nrm = np.array([-tan[1], tan[0]])
        if not pab.contains(Point(p + nrm * 0.5 / sc)):
            nrm = -nrm
        inside = p + nrm * np.array([0.5 / sc, 0.5 / sr])
        outside = p - nrm * np.array([0.7 / sc, 0.7 / sr])
        vals = cv2.remap(img, np.array([[inside[0], outside[0]]], np.float32),
                         np.array([[inside[1], outside[1]]], np.float32), cv2.INTER_LINEAR)[0]
        diffs.append(vals[0] - vals[1])
    return float(np.mean(diffs))


def test_faint_style_lowers_the_palatal_cortex_contrast():
    """Same seed = same anatomy; the faint style must flatten the step across the boundary."""
    compared = 0
    for s in range(8):
        std = generate_phantom(s)
        if std.faint:
            continue
        faint = generate_phantom(s, "faint")
        c_std, c_faint = _boundary_contrast(std), _boundary_contrast(faint)
        assert c_std > 0.15, (s, c_std)
        assert c_faint < 0.6 * c_std, (s, c_std, c_faint)
        compared += 1
    assert compared >= 3
