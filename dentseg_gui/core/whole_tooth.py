"""The whole tooth: the measurements of one tooth's parasagittal slices, side by side, and their summary.

The PAB is not the same on every plane through a tooth. ``dentseg slice
--offsets -2,-1,0,1,2`` writes one slice per offset along the tooth's
mesio-distal direction; after ``dentseg predict`` (which keeps each slice's
provenance) ``dentseg measure`` groups the files by source volume and tooth
(``provenance.volume`` and ``provenance.tooth``) and summarises each group:

* per thickness level (and the PAB area): how many planes measured it, the
  mean, the smallest and the largest value across the planes, and the offsets
  where the smallest and largest were found;
* the **PAB volume** between the outermost planes, integrated from the plane
  areas with the trapezoidal rule over the offsets:
  ``V = Σ ½ (A_i + A_i+1) (o_i+1 − o_i)``. The planes are parallel (they only
  move along the normal), so this is the exact volume when the area varies
  linearly between planes; bone beyond the outermost planes is not counted.
  It needs at least two planes with a measured area.

A thickness of 0 is a finding (no bone at that level) and counts; a missing
value (no landmark, no region) does not, and the count says so.
Qt-free: the CSV / JSON report (``core.report``) and the PDF use it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .annotation import Annotation
from .measurements import MeasurementSet, measure

#: the values summarised across planes (thickness levels of the contract, the extra depths, the area)
SUMMARY_KEYS = ("pab_thickness_25_mm", "pab_thickness_50_mm", "pab_thickness_75_mm", "pab_thickness_90_mm",
                "pab_thickness_3mm_mm", "pab_thickness_6mm_mm", "pab_thickness_9mm_mm", "pab_area_mm2")
THICKNESS_PLOT_KEYS = SUMMARY_KEYS[:4]
VOLUME_METHOD = ("trapezoidal rule over the plane offsets of the PAB areas, between the outermost planes "
                 "(bone beyond them not counted)")
#: planes whose normals differ by more than this are not parallel slices of one tooth
_PARALLEL_DEG = 1.0


@dataclass
class PlaneMeasurement:
    offset_mm: float
    image: str
    annotation_path: str
    measurements: MeasurementSet
    normal: np.ndarray | None = None


@dataclass
class KeyStats:
    n: int
    mean: float | None
    min: float | None
    max: float | None
    offset_at_min: float | None
    offset_at_max: float | None

    def as_json(self) -> dict[str, Any]:
        r = lambda v: None if v is None else round(float(v), 4)  # noqa: E731
        return {"n": self.n, "mean": r(self.mean), "min": r(self.min), "max": r(self.max),
                "offset_at_min_mm": r(self.offset_at_min), "offset_at_max_mm": r(self.offset_at_max)}


@dataclass
class ToothSummary:
    volume: str                                  # source volume path as recorded in the slices
    series_uid: str
    tooth: int
    planes: list[PlaneMeasurement] = field(default_factory=list)   # sorted by offset
    stats: dict[str, KeyStats] = field(default_factory=dict)
    pab_volume_mm3: float | None = None
    pab_volume_missing: str = ""                 # why the volume could not be estimated
    notes: list[str] = field(default_factory=list)

    @property
    def offsets(self) -> list[float]:
        return [p.offset_mm for p in self.planes]

    @property
    def label(self) -> str:
        name = Path(self.volume).name if self.volume else (self.series_uid or "volume")
        return f"tooth {self.tooth} of {name}"

    def as_json(self) -> dict[str, Any]:
        return {
            "volume": self.volume, "series_uid": self.series_uid, "tooth": self.tooth,
            "offsets_mm": self.offsets,
            "planes": [{"offset_mm": p.offset_mm, "image": p.image, "annotation": p.annotation_path,
                        "measurements": {k: p.measurements.values.get(k) for k in SUMMARY_KEYS},
                        "missing": {k: r for k, r in p.measurements.missing.items() if k in SUMMARY_KEYS}}
                       for p in self.planes],
            "summary": {k: s.as_json() for k, s in self.stats.items()},
            "pab_volume_mm3": None if self.pab_volume_mm3 is None else round(self.pab_volume_mm3, 3),
            "pab_volume_missing": self.pab_volume_missing or None,
            "pab_volume_method": VOLUME_METHOD,
            "notes": list(self.notes),
        }


def slice_origin(ann: Annotation) -> tuple[tuple[str, int], dict[str, Any]] | None:
    """((volume key, tooth), provenance) for a slice made from a volume, else None."""
    prov = ann.provenance or {}
    tooth = prov.get("tooth")
    vol = prov.get("volume")
    if not isinstance(prov.get("plane"), dict) or not isinstance(tooth, dict) or not isinstance(vol, dict):
        return None
    try:
        number = int(tooth["tooth"])
    except (KeyError, TypeError, ValueError):
        return None
    key = str(vol.get("series_uid") or vol.get("path") or "")
    return (key, number), prov


def _volume_path(recorded: Any, annotation_path: str | Path) -> str:
    """The source volume's path, made absolute from the annotation file's folder when recorded relative."""
    if not recorded:
        return ""
    p = Path(str(recorded))
    if not p.is_absolute():
        p = Path(annotation_path).parent / p
    return os.path.normpath(str(p.absolute()))


def _normal(plane: dict[str, Any]) -> np.ndarray | None:
    try:
        n = np.cross(np.asarray(plane["row_dir"], float), np.asarray(plane["col_dir"], float))
    except (KeyError, TypeError, ValueError):
        return None
    length = float(np.linalg.norm(n))
    return n / length if length > 0 else None


def _offset(prov: dict[str, Any]) -> float | None:
    v = prov.get("offset_mm")
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


def summarise_teeth(items: Sequence[tuple[Annotation, str | Path]],
                    measured: Sequence[MeasurementSet] | None = None) -> list[ToothSummary]:
    """One summary per (source volume, tooth) among ``items`` [(annotation, its file)].

    ``measured`` may give each annotation's measurements (already computed by the report);
    otherwise they are computed here. Slices not made from a volume are left out.
    """
    groups: dict[tuple[str, int], ToothSummary] = {}
    for n, (ann, path) in enumerate(items):
        origin = slice_origin(ann)
        if origin is None:
            continue
        key, prov = origin
        vol = prov["volume"]
        summary = groups.setdefault(key, ToothSummary(_volume_path(vol.get("path"), path),
                                                      str(vol.get("series_uid") or ""), key[1]))
        offset = _offset(prov)
        if offset is None:
            summary.notes.append(f"{Path(str(path)).name}: no offset_mm in its provenance; left out")
            continue
        ms = measured[n] if measured is not None else measure(ann)
        summary.planes.append(PlaneMeasurement(offset, Path(ann.image_path).name, str(path), ms,
                                               _normal(prov["plane"])))
    out = []
    for summary in groups.values():
        _finish(summary)
        out.append(summary)
    return sorted(out, key=lambda s: (s.volume, s.series_uid, s.tooth))


def _finish(s: ToothSummary) -> None:
    s.planes.sort(key=lambda p: p.offset_mm)
    unique: list[PlaneMeasurement] = []
    for p in s.planes:
        if unique and abs(unique[-1].offset_mm - p.offset_mm) < 1e-6:
            s.notes.append(f"two files for offset {p.offset_mm:+g} mm: used {Path(unique[-1].annotation_path).name}, "
                           f"left out {Path(p.annotation_path).name}")
            continue
        unique.append(p)
    s.planes = unique
    normals = [p.normal for p in unique if p.normal is not None]
    if normals and any(abs(float(n @ normals[0])) < math.cos(math.radians(_PARALLEL_DEG)) for n in normals):
        s.notes.append("the planes are not parallel (the axis was changed between slices): the volume "
                       "estimate assumes they are")
    for key in SUMMARY_KEYS:
        vals = [(p.measurements.values.get(key), p.offset_mm) for p in unique]
        vals = [(float(v), o) for v, o in vals if v is not None and math.isfinite(v)]
        if not vals:
            s.stats[key] = KeyStats(0, None, None, None, None, None)
            continue
        arr = np.array([v for v, _ in vals])
        lo, hi = int(arr.argmin()), int(arr.argmax())
        s.stats[key] = KeyStats(len(vals), float(arr.mean()), float(arr[lo]), float(arr[hi]), vals[lo][1],
                                vals[hi][1])
    areas = [(p.offset_mm, p.measurements.values.get("pab_area_mm2")) for p in unique]
    missing = [o for o, a in areas if a is None]
    areas = [(o, float(a)) for o, a in areas if a is not None]
    if missing:
        s.notes.append("no PAB area on the plane(s) at " + ", ".join(f"{o:+g} mm" for o in missing)
                       + ": left out of the volume")
    if len(areas) < 2:
        s.pab_volume_missing = ("needs PAB areas on at least two planes (slice the tooth with --offsets, "
                                "e.g. -2,-1,0,1,2)")
        return
    o = np.array([a[0] for a in areas])
    a = np.array([a[1] for a in areas])
    s.pab_volume_mm3 = float(np.sum(0.5 * (a[1:] + a[:-1]) * np.diff(o)))


# --------------------------------------------------------------------------- tables


def teeth_csv_columns() -> list[str]:
    cols = ["volume", "series_uid", "tooth", "n_planes", "offsets_mm", "pab_volume_mm3"]
    for k in SUMMARY_KEYS:
        cols += [f"{k}_mean", f"{k}_min", f"{k}_max", f"{k}_n"]
    return cols + ["notes"]


def teeth_csv_rows(summaries: Sequence[ToothSummary]) -> list[dict[str, str]]:
    f = lambda v: "" if v is None else f"{v:.4f}"  # noqa: E731
    rows = []
    for s in summaries:
        row = {"volume": s.volume, "series_uid": s.series_uid, "tooth": str(s.tooth), "n_planes": str(len(s.planes)),
               "offsets_mm": ";".join(f"{o:g}" for o in s.offsets), "pab_volume_mm3": f(s.pab_volume_mm3)}
        for k in SUMMARY_KEYS:
            st = s.stats.get(k)
            row.update({f"{k}_mean": f(st.mean if st else None), f"{k}_min": f(st.min if st else None),
                        f"{k}_max": f(st.max if st else None), f"{k}_n": str(st.n if st else 0)})
        notes = list(s.notes) + ([f"PAB volume: {s.pab_volume_missing}"] if s.pab_volume_missing else [])
        row["notes"] = "; ".join(notes)
        rows.append(row)
    return rows


def format_teeth(summaries: Sequence[ToothSummary]) -> str:
    """Plain-text blocks for the terminal: per tooth the thickness per plane and the summary."""
    lines = []
    for s in summaries:
        lines.append(f"Whole tooth: {s.label} ({len(s.planes)} plane{'s' if len(s.planes) != 1 else ''}, "
                     f"offsets {', '.join(f'{o:+g}' for o in s.offsets)} mm, + = distal)")
        lines.append(f"  {'':<24}" + "".join(f"{o:>+8g}" for o in s.offsets) + f"{'mean':>9}{'min':>8}{'max':>8}")
        for k in SUMMARY_KEYS:
            st = s.stats[k]
            cells = "".join(f"{v:>8.2f}" if v is not None else f"{'-':>8}"
                            for v in (p.measurements.values.get(k) for p in s.planes))
            summ = (f"{st.mean:>9.2f}{st.min:>8.2f}{st.max:>8.2f}" if st.n else f"{'-':>9}{'-':>8}{'-':>8}")
            lines.append(f"  {k:<24}{cells}{summ}")
        vol = (f"{s.pab_volume_mm3:.1f} mm³ (trapezoidal rule over the offsets, between the outermost planes)"
               if s.pab_volume_mm3 is not None else f"missing: {s.pab_volume_missing}")
        lines.append(f"  PAB volume: {vol}")
        lines.extend(f"  note: {n}" for n in s.notes)
    return "\n".join(lines)


def teeth_csv_path(csv_path: str | Path) -> Path:
    """``report.csv`` -> ``report_teeth.csv`` (the whole-tooth table beside the per-slice one)."""
    p = Path(csv_path)
    return p.with_name(f"{p.stem}_teeth{p.suffix or '.csv'}")


def write_teeth_csv(summaries: Sequence[ToothSummary], path: str | Path) -> Path:
    import csv
    import io

    from .atomic import atomic_write_text

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=teeth_csv_columns(), lineterminator="\n")
    w.writeheader()
    for row in teeth_csv_rows(summaries):
        w.writerow(row)
    atomic_write_text(path, buf.getvalue())
    return Path(path)
