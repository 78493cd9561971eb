"""What every format shares: targets and label maps, the pixel convention, polygons
without holes, the cases to export, and writing an imported case.

**Pixel convention.** DentSeg puts the centre of pixel (row i, column j) at
(x=j, y=i) (DESIGN.md). labelme's canvas and COCO put the pixel's top-left corner
there, so the centre is at (j + 0.5, i + 0.5): coordinates shift by half a pixel
on the way out (``to_corner``) and back on the way in (``from_corner``).

**Holes and parts.** labelme and COCO polygons are single rings without holes.
A region is written as simple polygons whose union is the region: each part on
its own, and a part with holes cut into hole-free pieces by vertical lines
through its holes (``hole_free_pieces``). Readers unite every polygon of a
label, so the region, holes included, comes back exactly (docs/adr/0009).
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import shapely
import shapely.ops
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from ..annotation import (LANDMARKS, REGIONS, SUFFIX, Annotation, annotation_path_for,
                          load_annotation, save_annotation)
from ..errors import DentsegError
from ..geometry import as_multipolygon

ProgressFn = Callable[[int, int, str], None]
StopFn = Callable[[], bool]

TARGETS: tuple[str, ...] = REGIONS + LANDMARKS
HALF = 0.5


class InteropError(DentsegError):
    """A foreign file cannot be read or a case cannot be written in a foreign format."""


class Cancelled(DentsegError):
    """The user asked to stop (``should_stop()`` returned True)."""


# --------------------------------------------------------------------------- label maps


def parse_label_map(items: Iterable[str] | None) -> dict[str, str]:
    """``["tooth enamel=enamel", "cej_l=CEJ_labial"]`` -> {label: target}.

    TARGET is matched case-insensitively against ``TARGETS``; a bad item raises
    ``InteropError`` naming it.
    """
    out: dict[str, str] = {}
    for item in items or ():
        label, sep, target = str(item).rpartition("=")
        if not sep or not label.strip() or not target.strip():
            raise InteropError(f"--map {item!r}: write LABEL=TARGET, e.g. --map bone=PAB")
        canon = canonical_target(target.strip())
        if canon is None:
            raise InteropError(f"--map {item!r}: target {target.strip()!r} is none of "
                               f"{', '.join(TARGETS)}")
        out[label.strip()] = canon
    return out


def canonical_target(name: str) -> str | None:
    for t in TARGETS:
        if t.lower() == str(name).strip().lower():
            return t
    return None


def target_for(label: str, label_map: dict[str, str]) -> str | None:
    """The target of a foreign label: the map first, else a label that names a target."""
    if label in label_map:
        return label_map[label]
    return canonical_target(label)


# --------------------------------------------------------------------------- coordinates


def to_corner(x: float, y: float, decimals: int = 3) -> list[float]:
    """DentSeg pixel-centre coordinates -> corner convention (labelme, COCO)."""
    return [round(float(x) + HALF, decimals), round(float(y) + HALF, decimals)]


def from_corner(x: float, y: float) -> tuple[float, float]:
    return float(x) - HALF, float(y) - HALF


def ring_to_corner(ring: BaseGeometry, decimals: int = 3) -> list[list[float]]:
    """An exterior ring as labelme/COCO points: corner convention, not closed."""
    coords = np.asarray(ring.coords, dtype=float)[:-1]
    return [to_corner(x, y, decimals) for x, y in coords]


def polygon_from_corner_points(points: Sequence[Sequence[float]]) -> MultiPolygon:
    """A foreign polygon (corner convention) as a valid region; a self-crossing
    outline is repaired (GEOS make_valid), as a person would read it on screen."""
    pts = [from_corner(p[0], p[1]) for p in points]
    if len(pts) < 3:
        return MultiPolygon()
    return as_multipolygon(Polygon(pts))


# --------------------------------------------------------------------------- holes and parts


def hole_free_pieces(region: BaseGeometry | None) -> list[Polygon]:
    """Simple polygons (no holes) whose union is ``region``: one per part, and parts
    with holes cut by vertical lines through the holes. Largest piece first."""
    out: list[Polygon] = []
    todo = list(as_multipolygon(region).geoms)
    while todo:
        poly = todo.pop()
        if not poly.interiors:
            out.append(shapely.normalize(poly))
            continue
        hole = poly.interiors[0]
        x = float(Polygon(hole).representative_point().x)
        y0, y1 = poly.bounds[1] - 1.0, poly.bounds[3] + 1.0
        pieces = shapely.ops.split(poly, LineString([(x, y0), (x, y1)]))
        todo.extend(as_multipolygon(pieces).geoms)
    return sorted(out, key=lambda p: -p.area)


def unite(parts: Iterable[BaseGeometry]) -> MultiPolygon:
    parts = [p for p in parts if p is not None and not p.is_empty]
    if not parts:
        return MultiPolygon()
    return as_multipolygon(shapely.union_all(parts))


# --------------------------------------------------------------------------- cases to export


@dataclass
class CaseRef:
    """One case to export: its annotation (possibly unsaved edits) and where its files are."""

    annotation: Annotation
    image_path: Path
    annotation_path: Path | None = None

    @property
    def name(self) -> str:
        return self.image_path.name


def case_from_annotation_file(path: str | os.PathLike) -> CaseRef:
    ann_path = Path(path)
    ann = load_annotation(ann_path)
    img = Path(ann.image_path)
    if not img.is_absolute():
        img = ann_path.parent / img
    if not img.is_file():
        stem = ann_path.name[: -len(SUFFIX)] if ann_path.name.endswith(SUFFIX) else ann_path.stem
        for cand in sorted(ann_path.parent.glob(stem + ".*")):
            if cand != ann_path and not cand.name.endswith(SUFFIX) and cand.is_file():
                img = cand
                break
    return CaseRef(ann, img, ann_path)


def collect_cases(paths: Iterable[str | os.PathLike]) -> tuple[list[CaseRef], list[str]]:
    """Cases from ``.dentseg.json`` files, images with one beside them, or folders of them.

    Returns (cases, problems): each problem is one line naming the file.
    """
    cases: list[CaseRef] = []
    problems: list[str] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = sorted(p.glob("*" + SUFFIX))
            if not found:
                problems.append(f"{p}: no {SUFFIX} files in this folder")
            files = found
        elif p.name.endswith(SUFFIX):
            files = [p]
        else:
            ap = annotation_path_for(p)
            if not ap.is_file():
                problems.append(f"{p}: no {ap.name} beside it; annotate or predict the case first")
                continue
            files = [ap]
        for f in files:
            try:
                cases.append(case_from_annotation_file(f))
            except DentsegError as exc:
                problems.append(str(exc))
    return cases, problems


# --------------------------------------------------------------------------- results


@dataclass
class InteropResult:
    """What a run of an importer or exporter did, for the CLI and the GUI alike."""

    written: list[Path] = field(default_factory=list)      # files written (cases / exports)
    cases: list[Path] = field(default_factory=list)        # .dentseg.json files an import wrote
    problems: list[str] = field(default_factory=list)      # one line each: file + what is wrong
    notes: list[str] = field(default_factory=list)         # informational lines
    cancelled: bool = False

    def lines(self) -> list[str]:
        out = [f"wrote {p}" for p in self.written]
        out += [f"note: {n}" for n in self.notes]
        out += [f"error: {p}" for p in self.problems]
        if self.cancelled:
            out.append("cancelled")
        return out

    def exit_code(self) -> int:
        """0 all done, 1 some problems, 2 nothing written."""
        if not self.written:
            return 2
        return 1 if (self.problems or self.cancelled) else 0


def unexpected(name: str, exc: BaseException) -> str:
    """The line for an error nobody foresaw: which file, what, and that it is a bug to report."""
    return f"{name}: unexpected error ({type(exc).__name__}: {str(exc)[:200]}); please report it"


def check_stop(should_stop: StopFn | None) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled("cancelled")


def steps(items: Sequence, res: InteropResult, progress: ProgressFn | None, should_stop: StopFn | None,
          name: Callable[[object], str] = lambda item: item.name):
    """Yield ``(k, item)``, reporting progress before each; on Cancel mark ``res.cancelled`` and stop."""
    for k, item in enumerate(items):
        if should_stop is not None and should_stop():
            res.cancelled = True
            return
        if progress:
            progress(k, len(items), name(item))
        yield k, item


# --------------------------------------------------------------------------- writing an imported case


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def import_provenance(ann: Annotation, fmt: str, source: Path) -> None:
    """Stamp every imported item as a person's annotation brought in from ``fmt``."""
    stamp = {"source": "manual", "imported_from": fmt, "file": source.name, "imported_at": now_iso()}
    ann.provenance.setdefault("regions", {}).update({n: dict(stamp) for n in ann.regions})
    ann.provenance.setdefault("landmarks", {}).update({n: dict(stamp) for n in ann.landmarks})
    ann.provenance["import"] = {"format": fmt, "file": str(source), "at": stamp["imported_at"]}


def place_image(src: Path | None, data: bytes | None, name: str, dest_dir: Path) -> Path:
    """Put the case's image in ``dest_dir`` (copy a file, or write embedded bytes) unless
    it is already there; never overwrite a different file of the same name."""
    dest = dest_dir / Path(name).name
    if src is not None and dest.exists() and dest.resolve() == src.resolve():
        return dest
    if dest.exists():
        old = dest.read_bytes()
        same = (old == data) if data is not None else (src is not None and old == src.read_bytes())
        if not same:
            raise InteropError(f"{dest}: a different file of that name is already there; "
                               "choose another --out folder")
        return dest
    dest_dir.mkdir(parents=True, exist_ok=True)
    if data is not None:
        from ..atomic import atomic_write_bytes
        atomic_write_bytes(dest, data)
    else:
        shutil.copy2(src, dest)
    return dest


def save_imported_case(ann: Annotation, image: Path, overwrite: bool) -> Path:
    """Measure ``ann`` and save it beside ``image`` as ``<stem>.dentseg.json``."""
    from ..measurements import apply_measurements

    out = annotation_path_for(image)
    if out.exists() and not overwrite:
        raise InteropError(f"{out}: a DentSeg annotation is already there; it was kept "
                           "(pass --overwrite to replace it)")
    ann.image_path = image.name
    save_annotation(apply_measurements(ann), out)
    return out


def image_size_and_spacing(image: Path, spacing: tuple[float, float] | None
                           ) -> tuple[int, int, tuple[float, float] | None]:
    """(width, height, spacing) of an image file: its own spacing (DICOM) wins over ``spacing``."""
    from ..image_io import load_image

    img = load_image(image, spacing)
    return img.width, img.height, img.spacing_mm
