"""Find the upper central incisors (and other upper anterior teeth) and their axes in a CBCT volume.

Intensity analysis, no learned model (Qt-free, torch-free; method in
docs/volumes-detection.md):

1. a coarse copy (~0.7 mm) of the volume, its intensity levels from its own
   histogram, the teeth as solid pieces with enamel at one end, upper or lower
   from which end the crown is, the upper arch and its midline, FDI numbers
   (``tooth_candidates``);
2. for each requested tooth, its long axis (root centre line from the CEJ level
   to the apex), mesio-distal direction (the crown's flat cross-section) and
   CEJ level (where the enamel ends), at full resolution (``tooth_axis_fit``).

``detect_incisors(volume)`` finds 11 and 21 with no hint; ``at=(x, y, z)`` (LPS
mm, a point in a crown) finds that tooth. A requested tooth that is not found is
left out and named in the others' notes (``find_teeth`` returns the reasons);
a volume with no upper incisor raises ``VolumeError`` saying what to do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .tooth_axis_fit import AxisFit, fit_axis
from .tooth_candidates import (THRESHOLD_FRACTIONS, Arch, Coarse, Levels, Piece, PieceMap, best_pieces,
                               coarse_copy, find_pieces, intensity_levels, number_teeth, upper_arch)
from .volume import ToothAxis, Volume, VolumeError

ProgressFn = Callable[[int, int, str], None]
StopFn = Callable[[], bool]

SUPPORTED = (11, 12, 13, 21, 22, 23)
MIN_SLICES = 8
MIN_EXTENT_MM = 12.0
AT_RADIUS_MM = 4.0              # how far from a tooth piece a crown click may land
AT_AXIS_MM = 2.5                # a tooth found from a neighbouring piece must have the click this near its axis
MIN_CONTRAST = 8.0              # enamel above soft tissue, in widths of the soft-tissue peak


class DetectionCancelled(VolumeError):
    """The user stopped tooth detection."""


@dataclass
class DetectionReport:
    teeth: list[ToothAxis]
    missing: dict[int, str] = field(default_factory=dict)     # FDI -> why it was not found
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _name(volume: Volume) -> str:
    return volume.source or "this volume"


def _refuse(volume: Volume, why: str) -> VolumeError:
    return VolumeError(
        f"no upper incisor found in {_name(volume)}: {why}; check that it is a CBCT or CT scan showing "
        "the upper front teeth (a head MR or a scan without teeth cannot be measured), "
        "or give a point inside the crown (--at X,Y,Z in LPS mm)")


def _check_shape(volume: Volume) -> None:
    shape = volume.shape
    ext = [n * s for n, s in zip(shape[::-1], volume.spacing)]
    if min(shape) < MIN_SLICES:
        raise VolumeError(
            f"no upper incisor found in {_name(volume)}: it is {shape[2]}×{shape[1]}×{shape[0]} voxels, "
            f"{'a 2-D image' if min(shape) == 1 else 'a thin slab'} rather than a volume; "
            "open a single slice with 'dentseg predict' instead, or load the whole series")
    if min(ext) < MIN_EXTENT_MM:
        raise VolumeError(
            f"no upper incisor found in {_name(volume)}: it covers only "
            f"{' × '.join(f'{e:.0f}' for e in ext)} mm, too small to hold a tooth; load the whole scan")


def find_teeth(volume: Volume, at=None, teeth: Sequence[int] = (11, 21), progress: ProgressFn | None = None,
               should_stop: StopFn | None = None) -> DetectionReport:
    """The detection with its reasons: found axes, missing teeth and why, notes, timings."""
    t_all = time.perf_counter()
    stop = should_stop or (lambda: False)

    def step(i: int, text: str) -> None:
        if stop():
            raise DetectionCancelled("tooth detection cancelled")
        if progress is not None:
            progress(i, 4, text)

    teeth = [int(t) for t in teeth]
    bad = [t for t in teeth if t not in SUPPORTED]
    if bad:
        raise VolumeError(f"tooth {bad[0]} cannot be searched for: choose among "
                          f"{', '.join(map(str, SUPPORTED))} (FDI numbers of the upper front teeth)")
    _check_shape(volume)
    modality = str(volume.meta.get("modality", "") or "").upper()
    if modality == "MR":
        raise VolumeError(f"no upper incisor found in {_name(volume)}: it is an MR scan, where teeth show no "
                          "enamel or dentin contrast; tooth detection needs a CBCT or CT scan")
    step(0, "reading the volume")
    t0 = time.perf_counter()
    c = coarse_copy(volume)
    lev = intensity_levels(c)
    if lev is None:
        raise _refuse(volume, "its voxels hold (almost) one value only")
    if lev.contrast < MIN_CONTRAST:
        raise _refuse(volume, f"nothing in it stands out of the soft tissue (the brightest tissue is only "
                              f"{lev.contrast:.1f} noise widths above it; enamel is tens)")
    secs = {"coarse": time.perf_counter() - t0}
    step(1, "looking for teeth")
    t0 = time.perf_counter()
    pieces, frac = best_pieces(c, lev, should_stop=stop)
    arch = upper_arch(pieces)
    numbered = number_teeth(arch) if arch is not None else {}
    secs["teeth"] = time.perf_counter() - t0
    notes = list(arch.notes) if arch is not None else []
    pmap = PieceMap(c, pieces)
    step(2, "following the tooth axes")
    t0 = time.perf_counter()
    if at is not None:
        report = _at_point(volume, np.asarray(at, float).reshape(3), c, lev, pieces, arch, pmap, notes)
    else:
        if arch is None:
            raise _refuse(volume, _what_was_seen(pieces, lev))
        if len(arch.teeth) < 2:
            raise _refuse(volume, "only one tooth-like structure was found, not a row of teeth; "
                                  "if it is an incisor, give a point in its crown")
        found, missing = [], {}
        for fdi in teeth:
            step(2, f"following the axis of tooth {fdi}")
            piece = numbered.get(fdi)
            if piece is None:
                missing[fdi] = _why_missing(fdi, arch)
                continue
            ax = _axis_of(volume, piece, arch, pmap, fdi, soft_level=lev.soft)
            if ax is None:
                missing[fdi] = f"tooth {fdi} was seen but its root could not be followed"
                continue
            found.append(ax)
        if not found:
            if missing and all("not seen" in m for m in missing.values()) and not numbered:
                raise _refuse(volume, _what_was_seen(pieces, lev))
            raise _refuse(volume, "; ".join(missing.values()) or _what_was_seen(pieces, lev))
        for ax in found:
            ax.notes += [f"{m}" for m in missing.values()]
        report = DetectionReport(found, missing, notes)
    secs["axes"] = time.perf_counter() - t0
    secs["total"] = time.perf_counter() - t_all
    report.seconds = secs
    report.notes.append(f"tooth threshold at {frac:.2f} of soft tissue -> enamel "
                        f"({lev.soft:.0f} -> {lev.enamel:.0f})")
    step(4, "done")
    return report


def detect_incisors(volume: Volume, at=None, teeth: Sequence[int] = (11, 21), progress: ProgressFn | None = None,
                    should_stop: StopFn | None = None) -> list[ToothAxis]:
    """One ``ToothAxis`` per requested tooth found (11 and 21 by default), or the tooth at ``at``.

    Raises ``VolumeError`` when no upper incisor is found (a non-dental volume, a
    2-D image) and ``DetectionCancelled`` when ``should_stop()`` turns True.
    """
    return find_teeth(volume, at=at, teeth=teeth, progress=progress, should_stop=should_stop).teeth


# --------------------------------------------------------------------------- one tooth


def _axis_of(volume: Volume, piece: Piece, arch: Arch | None, pmap: PieceMap, fdi: int,
             extra_notes: Sequence[str] = (), soft_level: float | None = None) -> ToothAxis | None:
    anterior = arch.anterior if arch is not None else np.array([0.0, -1.0, 0.0])
    fit = fit_axis(volume, piece.centre, piece.axis, piece.t_range, _md_hint(piece), anterior,
                   pmap.allowed_for(piece), pmap.allowed_for(piece, upper_neighbours=False), soft_level)
    if fit is None:
        return None
    return _to_tooth_axis(fit, piece, arch, fdi, extra_notes)


def _md_hint(piece: Piece) -> np.ndarray | None:
    """The piece's widest direction across its axis (a start for the mesio-distal direction)."""
    d = piece.pts - piece.centre
    d = d - np.outer(d @ piece.axis, piece.axis)
    w, v = np.linalg.eigh(d.T @ d)
    return v[:, -1]


def _to_tooth_axis(fit: AxisFit, piece: Piece, arch: Arch | None, fdi: int, extra: Sequence[str]) -> ToothAxis:
    md = np.asarray(fit.mesiodistal, float)
    lateral = arch.lateral if arch is not None else np.array([1.0, 0.0, 0.0])
    left = fdi // 10 == 2
    if (md @ lateral > 0) != left:
        md = -md                                   # toward distal: away from the midline
    length = float(np.linalg.norm(fit.apex - fit.cej))
    conf = fit.quality
    if not 7.0 <= length <= 24.0:
        conf *= 0.5
    if arch is None or len(arch.teeth) < 2:
        conf *= 0.6
    elif arch.fit != "parabola":
        conf *= 0.85
    conf *= fit.rows_kept
    notes = list(extra) + list(fit.notes)
    crown = ", ".join(f"{v:.1f}" for v in (piece.crown if piece.crown is not None else piece.centre))
    notes.insert(0, f"crown near ({crown}) mm; root length {length:.1f} mm")
    return ToothAxis(fdi, incisal=fit.incisal, cej=fit.cej, apex=fit.apex, mesiodistal=md, labial=fit.labial,
                     confidence=float(np.clip(conf, 0.0, 1.0)), notes=notes)


def _why_missing(fdi: int, arch: Arch) -> str:
    side = "right" if fdi // 10 == 1 else "left"
    n = sum(1 for p in arch.teeth if (arch.side_of(p.crown) < 0) == (side == "right"))
    return (f"tooth {fdi} not seen: {n} upper tooth/teeth found on the patient's {side} of the midline"
            if n else f"tooth {fdi} not seen: no upper tooth found on the patient's {side}")


def _what_was_seen(pieces: list[Piece], lev: Levels) -> str:
    if not pieces:
        return "nothing in it is much brighter than its soft tissue (no enamel or dentin)"
    teeth = [p for p in pieces if p.tooth_like]
    if teeth and not any(p.upper for p in teeth):
        return f"only lower teeth were found ({len(teeth)})"
    reasons = sorted({p.why for p in pieces if p.volume_mm3 > 50.0})
    return ("its brightest structures are not tooth-shaped ("
            + (", ".join(reasons[:4]) if reasons else "small specks") + ")")


# --------------------------------------------------------------------------- the tooth at a point


def _at_point(volume: Volume, at: np.ndarray, c: Coarse, lev: Levels, pieces: list[Piece], arch: Arch | None,
              pmap: PieceMap, notes: list[str]) -> DetectionReport:
    lo, hi = volume.bounds_lps()
    if np.any(at < lo - 1.0) or np.any(at > hi + 1.0):
        raise VolumeError(f"the point ({', '.join(f'{v:.1f}' for v in at)}) mm lies outside {_name(volume)} "
                          f"(it spans {_box(lo, hi)}); give a point inside a crown, in LPS mm")
    piece, dist = _nearest_piece(pieces, at)
    if piece is None or dist > AT_RADIUS_MM:
        # not among the tidy pieces: look again at every threshold for a crowned piece at the point
        for frac in THRESHOLD_FRACTIONS:
            more = [p for p in find_pieces(c, lev, frac) if p.crown is not None and p.length >= 8.0
                    and abs(p.axis[2]) > 0.25]
            for p in more:
                p.tooth_like, p.upper = True, bool(p.axis[2] > 0)
            cand, d = _nearest_piece(more, at)
            if cand is not None and d <= AT_RADIUS_MM and (piece is None or d < dist):
                piece, dist = cand, d
                pieces = pieces + [cand]
                pmap = PieceMap(c, pieces)
                break
    if piece is None or dist > AT_RADIUS_MM:
        raise VolumeError(f"no tooth found at ({', '.join(f'{v:.1f}' for v in at)}) mm in {_name(volume)}: "
                          f"the nearest tooth-like structure is "
                          + (f"{dist:.1f} mm away" if piece is not None else "nowhere")
                          + "; give a point inside the crown of an upper incisor")
    if not piece.upper:
        raise VolumeError(f"the point ({', '.join(f'{v:.1f}' for v in at)}) mm lies in a lower tooth; "
                          "give a point inside the crown of an upper incisor")
    fdi = piece.fdi
    extra = [f"found from the point ({', '.join(f'{v:.1f}' for v in at)}) mm"]
    if fdi is None or fdi not in SUPPORTED:
        side = arch.side_of(at) if arch is not None else float(at[0] - 0.5 * (lo[0] + hi[0]))
        fdi = 11 if side < 0 else 21
        extra.append("numbered from its side of the midline (arch order unclear)")
    ax = _axis_of(volume, piece, arch, pmap, fdi, extra, soft_level=lev.soft)
    if ax is None:
        ax = _axis_from_a_neighbouring_piece(volume, at, piece, pieces, arch, pmap, extra, lev)
    if ax is None:
        raise VolumeError(f"the tooth at ({', '.join(f'{v:.1f}' for v in at)}) mm was found but its root could "
                          f"not be followed in {_name(volume)}; check the scan covers the whole root")
    return DetectionReport([_numbered_by_its_root(ax, piece, pieces)], {}, notes)


def _numbered_by_its_root(ax: ToothAxis, piece: Piece, pieces: list[Piece]) -> ToothAxis:
    """Coarse slices can cut one tooth into a crown piece and a root piece that the arch numbers
    as two teeth (phantom standard 8001: 11's crown numbered 12). ``merge_split_teeth`` now joins
    such pieces before numbering; this stays as a safety net for pieces it leaves apart: a tooth
    found from a click in its crown takes the number of the numbered piece its root runs
    through, when that is clearly another piece on the same side of the midline."""
    mid = 0.5 * (np.asarray(ax.cej) + np.asarray(ax.apex))

    def dist(p: Piece) -> float:
        return float(np.min(np.linalg.norm(p.pts - mid, axis=1)))

    others = [p for p in pieces if p is not piece and p.upper and p.fdi in SUPPORTED
              and p.fdi // 10 == ax.tooth // 10]
    if not others:
        return ax
    best = min(others, key=dist)
    if dist(best) <= 1.0 and dist(piece) > dist(best) + 1.5 and best.fdi != ax.tooth:
        from dataclasses import replace
        return replace(ax, tooth=int(best.fdi), notes=list(ax.notes) + [
            f"numbered {best.fdi} by its root (the crown was seen as a separate piece)"])
    return ax


def _axis_from_a_neighbouring_piece(volume: Volume, at: np.ndarray, first: Piece, pieces: list[Piece],
                                    arch: Arch | None, pmap: PieceMap, extra: list[str], lev: Levels):
    """When the piece at the point cannot be followed (coarse slices can cut a tooth in two: the
    crown and the root as separate pieces), the next-nearest upper pieces within reach, kept only
    if the axis they give passes through the clicked crown (within ``AT_AXIS_MM``)."""
    near = sorted((float(np.min(np.linalg.norm(p.pts - at, axis=1))), i) for i, p in enumerate(pieces)
                  if p is not first and p.tooth_like and p.upper)
    for d, i in near:
        if d > AT_RADIUS_MM:
            break
        p = pieces[i]
        fdi = p.fdi if p.fdi in SUPPORTED else first.fdi
        if fdi not in SUPPORTED:
            continue
        ax = _axis_of(volume, p, arch, pmap, fdi, extra + ["followed from the root piece next to the crown"],
                      soft_level=lev.soft)
        if ax is None:
            continue
        w = at - ax.cej
        if np.linalg.norm(w - (w @ ax.axis) * ax.axis) <= AT_AXIS_MM:
            return ax
    return None


def _nearest_piece(pieces: list[Piece], at: np.ndarray) -> tuple[Piece | None, float]:
    best, best_d = None, np.inf
    for p in pieces:
        if not p.tooth_like:
            continue
        d = float(np.min(np.linalg.norm(p.pts - at, axis=1)))
        if d < best_d:
            best, best_d = p, d
    return best, best_d


def _box(lo: np.ndarray, hi: np.ndarray) -> str:
    return " × ".join(f"{a:.0f}..{b:.0f}" for a, b in zip(lo, hi)) + " mm"
