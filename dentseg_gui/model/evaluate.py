"""Evaluation of predicted annotations against ground truth (``dentseg evaluate``).

Per pair of annotation files (matched by image stem):

* ``dice``: per region, both rasterised with ``geometry_to_mask`` at the truth image size;
* ``hd95_mm``: symmetric 95 % Hausdorff distance between the region outlines in mm
  (each outline sampled every 0.25 px; the larger of the two directed 95th percentiles,
  as MONAI computes it), distances measured to the exact other outline;
* ``landmark_mm``: radial error per landmark and their mean (MRE);
* ``abs_error``: absolute error per measurement key, both sides re-measured with
  ``core.measurements.measure`` so stored numbers of another version cannot skew it;
* ``palatal_boundary_mm``: mean symmetric distance between the predicted palatal
  curve and the true one (the truth file's ``phantom_truth.palatal_boundary`` when
  present, else the palatal curve of the truth PAB) - the number compensation improves.

Millimetres use the truth's pixel spacing (else the prediction's); with neither the
distances stay in pixels and the report says so.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import shapely
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry

from ..core.annotation import LANDMARKS, REGIONS, SUFFIX, Annotation, load_annotation
from ..core.atomic import atomic_write_text
from ..core.errors import AnnotationError, DentsegError
from ..core.geometry import as_multipolygon, dice, geometry_to_mask, to_mm
from ..core.measurements import KEYS, measure
from ..core.palatal_boundary import extract_palatal_boundary

_BOUNDARY_STEP_PX = 0.25


# --------------------------------------------------------------------------- one pair


def evaluate_pair(pred: Annotation, truth: Annotation) -> dict[str, Any]:
    """Metrics of one prediction against its truth (nested dict; ``None`` = not computable).

    Keys: ``dice`` {region}, ``hd95_mm`` {region}, ``landmark_mm`` {name, "mean"},
    ``abs_error`` {measurement key}, ``palatal_boundary_mm``, ``unit`` ("mm" or "px"),
    ``notes`` [why something is missing].
    """
    spacing = truth.pixel_spacing_mm or pred.pixel_spacing_mm
    unit = "mm" if spacing is not None else "px"
    sp = spacing if spacing is not None else (1.0, 1.0)
    notes: list[str] = []
    if spacing is None:
        notes.append("no pixel spacing in either file: distances are in pixels")
    shape = (truth.height, truth.width)

    out: dict[str, Any] = {"dice": {}, "hd95_mm": {}, "landmark_mm": {}, "abs_error": {},
                           "palatal_boundary_mm": None, "unit": unit, "notes": notes}
    names = list(REGIONS) + sorted(set(pred.regions) & set(truth.regions) - set(REGIONS))
    for name in names:
        p, t = as_multipolygon(pred.regions.get(name)), as_multipolygon(truth.regions.get(name))
        if p.is_empty and t.is_empty:
            out["dice"][name] = None
            out["hd95_mm"][name] = None
            continue
        out["dice"][name] = dice(geometry_to_mask(p, shape), geometry_to_mask(t, shape))
        if p.is_empty or t.is_empty:
            out["hd95_mm"][name] = None
            notes.append(f"{name}: {'prediction' if p.is_empty else 'truth'} has no region, no HD95")
        else:
            out["hd95_mm"][name] = hausdorff95(p, t, sp)

    errs = []
    for name in LANDMARKS:
        a, b = pred.landmarks.get(name), truth.landmarks.get(name)
        if a is None or b is None:
            out["landmark_mm"][name] = None
            if b is not None:
                notes.append(f"landmark {name} missing in the prediction")
            continue
        d = float(np.hypot((a[0] - b[0]) * sp[1], (a[1] - b[1]) * sp[0]))
        out["landmark_mm"][name] = d
        errs.append(d)
    out["landmark_mm"]["mean"] = float(np.mean(errs)) if errs else None

    mp, mt = measure(_with_spacing(pred, spacing)), measure(_with_spacing(truth, spacing))
    for key in KEYS:
        a, b = mp.values.get(key), mt.values.get(key)
        out["abs_error"][key] = None if a is None or b is None else abs(float(a) - float(b))
    area_p, area_t = mp.values.get("pab_area_mm2"), mt.values.get("pab_area_mm2")
    out["pab_area_error_pct"] = (None if area_p is None or not area_t
                                 else 100.0 * abs(area_p - area_t) / area_t)

    out["palatal_boundary_mm"] = palatal_boundary_distance(pred, truth)
    return out


def _with_spacing(ann: Annotation, spacing) -> Annotation:
    if ann.pixel_spacing_mm == spacing or spacing is None:
        return ann
    a = ann.copy()
    a.pixel_spacing_mm = spacing
    return a


def boundary_points(geom: BaseGeometry, step: float = _BOUNDARY_STEP_PX) -> np.ndarray:
    """Points every ``step`` along every ring of a region (pixel coordinates)."""
    rings = []
    for poly in as_multipolygon(geom).geoms:
        rings.append(poly.exterior)
        rings.extend(poly.interiors)
    if not rings:
        return np.zeros((0, 2))
    pts = [np.asarray(shapely.segmentize(LineString(r.coords), step).coords) for r in rings]
    return np.vstack(pts)


def hausdorff95(a: BaseGeometry, b: BaseGeometry, spacing_mm: tuple[float, float]) -> float:
    """Symmetric 95 % Hausdorff distance (mm) between two region outlines."""
    pa, pb = boundary_points(a), boundary_points(b)
    ba = to_mm(as_multipolygon(a).boundary, spacing_mm)
    bb = to_mm(as_multipolygon(b).boundary, spacing_mm)
    scale = np.array([spacing_mm[1], spacing_mm[0]])
    dab = shapely.distance(shapely.points(pa * scale), bb)
    dba = shapely.distance(shapely.points(pb * scale), ba)
    return float(max(np.percentile(dab, 95), np.percentile(dba, 95)))


def truth_palatal_curve(truth: Annotation) -> LineString | None:
    """The true palatal boundary: the phantom's exact curve if stored, else from the truth PAB."""
    pt = truth.extra.get("phantom_truth")
    if isinstance(pt, dict):
        pts = pt.get("palatal_boundary")
        try:
            arr = np.asarray(pts, float)
            if arr.ndim == 2 and arr.shape[1] == 2 and len(arr) >= 2 and np.isfinite(arr).all():
                return LineString(arr)
        except (TypeError, ValueError):
            pass
    return extract_palatal_boundary(truth.region("PAB"), truth.landmarks, truth.pixel_spacing_mm or (1.0, 1.0))


def palatal_boundary_distance(pred: Annotation, truth: Annotation) -> float | None:
    """Mean symmetric distance (mm) between the predicted and the true palatal curve.

    The predicted curve is taken with the TRUTH landmarks, so this measures the
    boundary itself and not the landmark error.
    """
    spacing = truth.pixel_spacing_mm or pred.pixel_spacing_mm or (1.0, 1.0)
    true_curve = truth_palatal_curve(truth)
    pred_curve = extract_palatal_boundary(pred.region("PAB"), truth.landmarks, spacing)
    if true_curve is None or pred_curve is None:
        return None
    return curve_distance(pred_curve, true_curve, spacing)


def curve_distance(a: LineString, b: LineString, spacing_mm: tuple[float, float]) -> float:
    """Mean symmetric distance (mm) between two open curves (sampled every 0.25 px)."""
    scale = np.array([spacing_mm[1], spacing_mm[0]])
    pa = np.asarray(shapely.segmentize(a, _BOUNDARY_STEP_PX).coords)[:, :2] * scale
    pb = np.asarray(shapely.segmentize(b, _BOUNDARY_STEP_PX).coords)[:, :2] * scale
    la, lb = LineString(pa), LineString(pb)
    dab = shapely.distance(shapely.points(pa), lb)
    dba = shapely.distance(shapely.points(pb), la)
    return float(0.5 * (dab.mean() + dba.mean()))


# --------------------------------------------------------------------------- folders


def flatten_metrics(m: dict[str, Any]) -> dict[str, float | None]:
    """``{"dice": {"PAB": 0.9}}`` -> ``{"dice.PAB": 0.9}`` (scalars kept as they are)."""
    flat: dict[str, float | None] = {}
    for k, v in m.items():
        if isinstance(v, dict):
            for kk, vv in v.items():
                flat[f"{k}.{kk}"] = vv
        elif isinstance(v, (int, float)) or v is None:
            flat[k] = v
    return flat


@dataclass
class EvalReport:
    pairs: dict[str, dict[str, Any]] = field(default_factory=dict)   # stem -> evaluate_pair
    missing_prediction: list[str] = field(default_factory=list)      # truth stems with no prediction
    missing_truth: list[str] = field(default_factory=list)           # prediction stems with no truth
    errors: dict[str, str] = field(default_factory=dict)             # file name -> message
    unit: str = "mm"

    def summary(self) -> dict[str, dict[str, float | int]]:
        """Per metric: n, mean, median, min, max over the pairs where it could be computed."""
        values: dict[str, list[float]] = {}
        for m in self.pairs.values():
            for k, v in flatten_metrics(m).items():
                values.setdefault(k, [])
                if v is not None and math.isfinite(v):
                    values[k].append(float(v))
        out = {}
        for k, vs in values.items():
            if vs:
                a = np.asarray(vs)
                out[k] = {"n": len(vs), "mean": float(a.mean()), "median": float(np.median(a)),
                          "min": float(a.min()), "max": float(a.max())}
            else:
                out[k] = {"n": 0}
        return out

    def to_json_dict(self) -> dict[str, Any]:
        return {"format": "dentseg-evaluation", "version": 1, "unit": self.unit,
                "summary": self.summary(), "pairs": self.pairs,
                "missing_prediction": self.missing_prediction, "missing_truth": self.missing_truth,
                "errors": self.errors}


def _annotation_files(d: Path) -> dict[str, Path]:
    if not d.is_dir():
        raise AnnotationError(f"{d}: not a folder of {SUFFIX} files")
    return {p.name[:-len(SUFFIX)]: p for p in sorted(d.iterdir()) if p.name.endswith(SUFFIX)}


def evaluate_dirs(pred_dir: str | os.PathLike, truth_dir: str | os.PathLike) -> EvalReport:
    """Evaluate every ``<stem>.dentseg.json`` in ``pred_dir`` against the same stem in ``truth_dir``."""
    preds = _annotation_files(Path(pred_dir))
    truths = _annotation_files(Path(truth_dir))
    rep = EvalReport()
    rep.missing_prediction = sorted(set(truths) - set(preds))
    rep.missing_truth = sorted(set(preds) - set(truths))
    for stem in sorted(set(preds) & set(truths)):
        try:
            p = load_annotation(preds[stem])
        except DentsegError as exc:
            rep.errors[preds[stem].name] = str(exc)
            continue
        try:
            t = load_annotation(truths[stem])
        except DentsegError as exc:
            rep.errors[truths[stem].name] = str(exc)
            continue
        m = evaluate_pair(p, t)
        rep.pairs[stem] = m
        if m["unit"] == "px":
            rep.unit = "px"
    return rep


# --------------------------------------------------------------------------- command line

_TABLE_ROWS: tuple[tuple[str, str], ...] = (
    ("dice.PAB", "Dice PAB"),
    ("dice.enamel", "Dice enamel"),
    ("hd95_mm.PAB", "HD95 PAB ({u})"),
    ("hd95_mm.enamel", "HD95 enamel ({u})"),
    ("palatal_boundary_mm", "palatal boundary distance ({u})"),
    ("landmark_mm.CEJ_labial", "CEJ_labial error ({u})"),
    ("landmark_mm.CEJ_palatal", "CEJ_palatal error ({u})"),
    ("landmark_mm.apex", "apex error ({u})"),
    ("landmark_mm.mean", "landmark MRE ({u})"),
    ("pab_area_error_pct", "PAB area error (%)"),
)


def format_table(rep: EvalReport) -> str:
    """The summary as an aligned text table (mean / median / min / max / n)."""
    s = rep.summary()
    u = rep.unit
    rows = [(label.format(u=u), key) for key, label in _TABLE_ROWS]
    rows += [(f"|err| {k}", f"abs_error.{k}") for k in KEYS]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'metric':<{width}}  {'mean':>9} {'median':>9} {'min':>9} {'max':>9} {'n':>4}"]
    for label, key in rows:
        st = s.get(key, {"n": 0})
        if st.get("n", 0) == 0:
            lines.append(f"{label:<{width}}  {'-':>9} {'-':>9} {'-':>9} {'-':>9} {0:>4}")
        else:
            lines.append(f"{label:<{width}}  {st['mean']:>9.3f} {st['median']:>9.3f} "
                         f"{st['min']:>9.3f} {st['max']:>9.3f} {st['n']:>4}")
    return "\n".join(lines)


def evaluate_cli(pred_dir: str | os.PathLike, truth_dir: str | os.PathLike,
                 json_path: str | os.PathLike | None = None) -> int:
    """``dentseg evaluate``: print the table (and write JSON). Exit 0 all paired, 1 some missing, 2 none."""
    rep = evaluate_dirs(pred_dir, truth_dir)
    n = len(rep.pairs)
    print(f"evaluated {n} pair(s): {pred_dir} vs {truth_dir}")
    if n:
        print(format_table(rep))
    for stem in rep.missing_prediction:
        print(f"{stem}: no prediction in {pred_dir}")
    for stem in rep.missing_truth:
        print(f"{stem}: no truth in {truth_dir}")
    for name, msg in rep.errors.items():
        print(f"{name}: error: {msg}")
    if json_path is not None:
        atomic_write_text(Path(json_path), json.dumps(rep.to_json_dict(), indent=1, allow_nan=False) + "\n")
        print(f"wrote {json_path}")
    if n == 0:
        return 2
    return 1 if (rep.missing_prediction or rep.missing_truth or rep.errors) else 0


def summarize(metrics: Iterable[dict[str, Any]]) -> dict[str, dict[str, float | int]]:
    """Summary statistics of several ``evaluate_pair`` results (used by the benchmarks)."""
    rep = EvalReport(pairs={str(i): m for i, m in enumerate(metrics)})
    return rep.summary()
