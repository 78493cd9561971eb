"""Measurement reports from annotation files: CSV (one row per case), JSON, PDF.

CSV columns: ``image`` (the image file name) first, then every key of
``MEASUREMENT_KEYS`` in order (empty cell = missing), then ``missing`` with
``key: reason`` pairs, ``warnings`` (what the reader must know: pieces of a region
left out of the numbers, an assumed spacing), ``model_check`` ("doubtful: reasons" /
"check: reasons" when the row is model output nobody has reviewed and the
plausibility check flagged it; empty otherwise), the pixel spacing
``spacing_row_mm``, ``spacing_col_mm`` and where it came from, ``spacing_source``
(DICOM / user / assumed / annotation), then ``annotation`` (the file the row came from).
Measurements are always recomputed from the regions and landmarks, never
copied from the file, so an edited file can't report stale numbers.

Slices made from a volume (``dentseg slice``) are also summarised per tooth
(``core.whole_tooth``): a second CSV ``<name>_teeth.csv`` with one row per tooth,
a ``teeth`` list in the JSON, a page per tooth in the PDF. The per-case rows stay
as they are.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .annotation import Annotation, load_annotation
from .atomic import atomic_write_text
from .errors import DentsegError
from .measurements import KEYS, MEASUREMENT_KEYS, MeasurementSet, measure
from .provenance import prediction_flag, spacing_source, unverified_model_note


@dataclass
class ReportRow:
    image: str
    annotation_path: str
    measurements: MeasurementSet
    model_check: str = ""          # unreviewed, flagged model output: "level: reasons"
    spacing: tuple[float, float] | None = None
    spacing_source: str = ""

    @property
    def warnings(self) -> list[str]:
        out = list(self.measurements.warnings)
        if self.spacing_source == "assumed" and self.spacing is not None:
            out.insert(0, f"pixel spacing ASSUMED ({self.spacing[0]:g} x {self.spacing[1]:g} mm): every length "
                          "and area scales with it")
        return out

    def values(self) -> tuple[dict[str, float | None], dict[str, str]]:
        """(values, missing): every key, a non-finite value turned into missing with a reason."""
        values, missing = {}, dict(self.measurements.missing)
        for k in KEYS:
            v = self.measurements.values.get(k)
            if v is not None and not math.isfinite(v):
                v = None
                missing[k] = "not a finite number"
            values[k] = v
        return values, missing

    def as_csv_dict(self) -> dict[str, str]:
        values, missing = self.values()
        d = {"image": _text(self.image)}
        for k in KEYS:
            v = values[k]
            d[k] = "" if v is None else f"{v:.4f}"
        d["missing"] = _text("; ".join(f"{k}: {r}" for k, r in missing.items()))
        d["warnings"] = _text("; ".join(self.warnings))
        d["model_check"] = _text(self.model_check)
        sp = self.spacing
        d["spacing_row_mm"] = "" if sp is None else f"{sp[0]:.6g}"
        d["spacing_col_mm"] = "" if sp is None else f"{sp[1]:.6g}"
        d["spacing_source"] = self.spacing_source
        d["annotation"] = _text(self.annotation_path)
        return d

    def as_json_dict(self) -> dict:
        values, missing = self.values()
        return {"image": _text(self.image), "annotation": _text(self.annotation_path),
                "measurements": values, "missing": {k: _text(r) for k, r in missing.items()},
                "warnings": [_text(w) for w in self.warnings],
                "model_check": _text(self.model_check) or None,
                "spacing_mm": None if self.spacing is None else [float(v) for v in self.spacing],
                "spacing_source": self.spacing_source or None}


def _text(s: str) -> str:
    """``s`` as text UTF-8 can hold: a file name with undecodable bytes (surrogate escapes)
    or a lone surrogate gets replacement characters instead of failing the whole report."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogateescape" if _escaped_only(s) else "replace").decode(
            "utf-8", "replace")


def _escaped_only(s: str) -> bool:
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in s)


CSV_COLUMNS = ["image", *KEYS, "missing", "warnings", "model_check", "spacing_row_mm", "spacing_col_mm",
               "spacing_source", "annotation"]


def row_for(ann: Annotation, annotation_path: str | Path = "") -> ReportRow:
    flag, why = prediction_flag(ann)
    check = [f"{flag}: {why}"] if flag else []
    note = unverified_model_note(ann)      # a model without a card: say so in every report
    return ReportRow(Path(ann.image_path).name, str(annotation_path), measure(ann),
                     "; ".join(check + ([note] if note else [])), ann.pixel_spacing_mm, spacing_source(ann))


def csv_text(rows: Sequence[ReportRow]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r.as_csv_dict())
    return buf.getvalue()


def write_csv(rows: Sequence[ReportRow], path: str | Path) -> Path:
    atomic_write_text(path, csv_text(rows))
    return Path(path)


def write_json(rows: Sequence[ReportRow], path: str | Path, teeth: Sequence = ()) -> Path:
    units = {k.key: k.unit for k in MEASUREMENT_KEYS}
    doc = {"format": "dentseg-measurements", "version": 1, "units": units,
           "cases": [r.as_json_dict() for r in rows]}
    if teeth:
        doc["teeth"] = [t.as_json() for t in teeth]     # whole-tooth summaries (core.whole_tooth)
    atomic_write_text(path, json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n")
    return Path(path)


def format_table(rows: Sequence[ReportRow]) -> str:
    """Plain-text table for the terminal: one block per case."""
    lines = []
    for r in rows:
        values, missing = r.values()
        lines.append(_text(r.image))
        for k in MEASUREMENT_KEYS:
            v = values[k.key]
            text = f"{v:10.3f} {k.unit}" if v is not None else f"{'missing':>10}   ({missing.get(k.key, '')})"
            lines.append(f"  {k.key:<24} {text}")
        for w in r.warnings:
            lines.append(f"  warning: {_text(w)}")
        if r.model_check:
            flagged = r.model_check.split(":")[0] in ("check", "doubtful")
            lines.append(f"  model output not reviewed, flagged {r.model_check}" if flagged
                         else f"  {r.model_check}")
    return "\n".join(lines)


def measure_files(files: Sequence[Path], csv_path: Path | None = None, json_path: Path | None = None,
                  pdf_path: Path | None = None, out=None, err=None,
                  spacing: tuple[float, float] | None = None,
                  assume_spacing: tuple[float, float] | None = None) -> int:
    """The ``dentseg measure`` command. Returns 0 if every file was measured, 1 if some
    failed (each reported by name), 2 if none could be read, or when a file carries no pixel
    spacing and neither ``spacing`` (the user's) nor ``assume_spacing`` (marked as assumed
    everywhere) is given: a spacing is never invented, and nothing is written then."""
    out = out or sys.stdout
    err = err or sys.stderr
    rows: list[ReportRow] = []
    anns: list[tuple[Annotation, Path]] = []
    failed = 0
    no_spacing: list[Path] = []
    for f in files:
        try:
            ann = load_annotation(f)
        except DentsegError as exc:
            print(f"dentseg measure: error: {exc}", file=err)
            failed += 1
            continue
        if ann.pixel_spacing_mm is None:
            given, source = (spacing, "user") if spacing is not None else (assume_spacing, "assumed")
            if given is None:
                no_spacing.append(Path(f))
            else:
                ann.pixel_spacing_mm = tuple(given)
                ann.provenance["spacing_source"] = source
        rows.append(row_for(ann, f))
        anns.append((ann, Path(f)))
    if no_spacing:
        for f in no_spacing:
            print(f"dentseg measure: error: {f}: no pixel spacing; give it with --spacing MM (or "
                  "--assume-spacing MM to measure anyway with every number marked as assumed)", file=err)
        return 2
    if not rows:
        return 2
    from .whole_tooth import format_teeth, summarise_teeth, teeth_csv_path, write_teeth_csv
    teeth = summarise_teeth(anns, [r.measurements for r in rows])
    if csv_path:
        write_csv(rows, csv_path)
        print(f"wrote {csv_path} ({len(rows)} case{'s' if len(rows) != 1 else ''})", file=out)
        if teeth:
            write_teeth_csv(teeth, teeth_csv_path(csv_path))
            print(f"wrote {teeth_csv_path(csv_path)} ({len(teeth)} whole-tooth summar"
                  f"{'ies' if len(teeth) != 1 else 'y'})", file=out)
    if json_path:
        write_json(rows, json_path, teeth)
        print(f"wrote {json_path}", file=out)
    if pdf_path:
        from ..gui.report_pdf import write_pdf_report_for_files  # Qt only when a PDF is asked for
        write_pdf_report_for_files(anns, pdf_path, teeth=teeth)
        print(f"wrote {pdf_path}", file=out)
    if not (csv_path or json_path or pdf_path):
        print(format_table(rows), file=out)
        if teeth:
            print(format_teeth(teeth), file=out)
    return 1 if failed else 0
