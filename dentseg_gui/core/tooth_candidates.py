"""Teeth in a CBCT volume at a coarse resolution: intensity levels, one solid piece per tooth, arch order.

Step one of tooth detection (``tooth_detection``), on a block-averaged copy of
the volume (~0.7 mm voxels):

1. **Levels from the volume's own histogram**: the enamel level is the intensity
   of the brightest few tens of mm³ (enamel is the densest tissue of the body);
   the soft-tissue level is the histogram's mode in the body (above the
   air / body split when the scan holds air). Thresholds are fractions of the
   soft -> enamel range, never absolute numbers, so HU, uncalibrated CBCT gray
   values and rescaled data all work.
2. **Pieces**: voxels above a tooth threshold; each connected part is split at
   thin necks (crowns touching at their contact points, a lower incisor
   touching an upper crown) by keeping its thick core (distance to the
   outside above ~1.3 mm), labelling the cores and giving every voxel to the
   nearest core. Pieces of one tooth that coarse slices cut apart (a crown and
   its root, a labial and a palatal half) are joined again when they touch and
   lie along one axis (``merge_split_teeth``). The threshold is tried at a few
   fractions and the one that yields the most tooth-like pieces wins.
3. **Teeth**: a piece is a tooth when it is elongated, of tooth size, and has
   enamel at one end; the crown end says whether it is an upper tooth (root
   superior in the patient frame) or a lower one.
4. **Arch**: the upper crowns, projected on the patient's axial plane, are
   fitted with a parabola; its vertex is the midline. 11 is the first tooth on
   the patient's right of the midline (−x in LPS), 21 the first on the left;
   12/22 and 13/23 follow outward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import ndimage as ndi

from .volume import Volume

TARGET_MM = 0.7                 # working voxel size of the coarse stage (about)
ENAMEL_VOLUME_MM3 = 40.0        # the enamel level: the brightest this much tissue
CORE_MM = 1.3                   # a tooth's core: farther than this from its outside
THRESHOLD_FRACTIONS = (0.36, 0.45, 0.5, 0.55, 0.6, 0.65)   # tooth thresholds tried (soft -> enamel)
ENAMEL_FRACTION = 0.7           # enamel threshold (at least), fraction of soft -> enamel
MIN_PIECE_MM3 = 25.0
MIN_TOOTH_MM3 = 120.0           # smaller crowned pieces are fragments (a tooth is 300-900 mm³)
MERGE_GAP_MM = 1.6             # parts of one tooth cut apart by coarse slices touch, or nearly
MERGE_LATERAL_MM = 4.0          # ... and one's centre lies this near the other's long axis
MERGE_ANGLE_DEG = 30.0          # ... and their long axes are this near each other
CLEAN_WIDTH_MM = 12.0           # a whole tooth alone is at most this wide (4 sigma across its axis)
CENTRAL_MAX_MM = 9.5            # a central incisor's crown centre lies within this of the midline
                                # (half a 8-10 mm crown plus a diastema; a lateral's is ~12 mm out)


@dataclass
class Coarse:
    data: np.ndarray              # float32, rescaled values, (k, j, i)
    affine: np.ndarray            # 4x4: coarse index (i, j, k, 1) -> LPS mm
    spacing: tuple[float, float, float]   # mm along i, j, k
    factors: tuple[int, int, int]

    @property
    def voxel_mm3(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    def to_lps(self, kji: np.ndarray) -> np.ndarray:
        """(n, 3) coarse indices in array order (k, j, i) -> LPS mm."""
        ijk = np.asarray(kji, float)[:, ::-1]
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]


def coarse_copy(volume: Volume, box: tuple[slice, slice, slice] | None = None) -> Coarse:
    """Block averages of the volume (or of ``box``, in array order) at about ``TARGET_MM``."""
    vox = volume.voxels if box is None else volume.voxels[box]
    off = np.zeros(3) if box is None else np.array([box[2].start or 0, box[1].start or 0, box[0].start or 0], float)
    si, sj, sk = volume.spacing
    f = [max(1, int(TARGET_MM / s + 0.5)) for s in (si, sj, sk)]
    fi, fj, fk = f
    nk, nj, ni = (n // ff * ff for n, ff in zip(vox.shape, (fk, fj, fi)))
    nk, nj, ni = max(nk, fk), max(nj, fj), max(ni, fi)
    v = vox[:nk, :nj, :ni]
    if fi == 1 and fj == 1:
        red = v.astype(np.float32)
    else:
        red = np.empty((nk, nj // fj, ni // fi), np.float32)
        for k in range(nk):
            sl = v[k]
            if sl.dtype not in (np.uint8, np.uint16, np.int16, np.float32):
                sl = sl.astype(np.float32)
            red[k] = cv2.resize(sl, (ni // fi, nj // fj), interpolation=cv2.INTER_AREA)
    if fk > 1:
        red = red.reshape(nk // fk, fk, nj // fj, ni // fi).mean(axis=1)
    if volume.slope != 1.0 or volume.intercept != 0.0:
        red = red * np.float32(volume.slope) + np.float32(volume.intercept)
    a = volume.affine
    s = np.diag([fi, fj, fk, 1.0]).astype(float)
    s[:3, 3] = off + (np.array([fi, fj, fk], float) - 1.0) / 2.0
    return Coarse(np.ascontiguousarray(red, np.float32), a @ s, (si * fi, sj * fj, sk * fk), (fi, fj, fk))


@dataclass
class Levels:
    low: float        # air (or the lowest tissue)
    soft: float       # soft tissue
    enamel: float     # enamel (the brightest few tens of mm³)
    spread: float = 0.0   # width (sigma) of the soft-tissue peak: noise plus tissue variation

    @property
    def contrast(self) -> float:
        """How far the brightest tissue stands above the soft tissue, in soft-tissue sigmas."""
        return (self.enamel - self.soft) / max(self.spread, 1e-6)

    def at(self, frac: float) -> float:
        return self.soft + frac * (self.enamel - self.soft)


def intensity_levels(c: Coarse) -> Levels | None:
    """Air, soft-tissue and enamel levels from the histogram; None for a flat volume."""
    flat = c.data.reshape(-1)
    step = max(1, flat.size // 400_000)
    sample = np.sort(flat[::step])
    low = float(sample[int(0.005 * (len(sample) - 1))])
    k = max(1, int(round(ENAMEL_VOLUME_MM3 / c.voxel_mm3)))
    if k >= flat.size // 10:
        return None
    enamel = float(np.partition(flat, flat.size - k)[flat.size - k])
    if not math.isfinite(enamel) or enamel <= low:
        return None
    body = sample[(sample > low) & (sample < enamel)]
    if len(body) < 100:
        return None
    hist, edges = np.histogram(body, bins=256, range=(low, enamel))
    hist = ndi.gaussian_filter1d(hist.astype(float), 2.0)
    centres = 0.5 * (edges[:-1] + edges[1:])
    mode = int(np.argmax(hist))
    if mode < 0.15 * len(hist):
        # the mode is air: the soft tissue is the mode above the air / body split (Otsu)
        w = np.cumsum(hist)
        m = np.cumsum(hist * centres)
        tot, mt = w[-1], m[-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            between = (mt * w - m * tot) ** 2 / (w * (tot - w))
        split = int(np.nanargmax(between[:-1]))
        mode = split + int(np.argmax(hist[split:]))
    soft = float(centres[mode])
    if enamel - soft < 1e-6 * max(1.0, abs(enamel)):
        return None
    # half width at half maximum of the soft-tissue peak -> its sigma
    half = hist[mode] / 2.0
    lo_i = mode
    while lo_i > 0 and hist[lo_i] > half:
        lo_i -= 1
    hi_i = mode
    while hi_i < len(hist) - 1 and hist[hi_i] > half:
        hi_i += 1
    spread = max(0.5 * (centres[hi_i] - centres[lo_i]) / 1.1774, 0.5 * (centres[1] - centres[0]))
    return Levels(low, soft, enamel, float(spread))


@dataclass
class Piece:
    """One solid piece of bright tissue (ideally one tooth), coarse resolution, LPS mm."""
    idx: np.ndarray           # (n, 3) coarse indices (k, j, i)
    pts: np.ndarray           # (n, 3) LPS mm
    vals: np.ndarray          # (n,) rescaled values
    volume_mm3: float
    centre: np.ndarray
    axis: np.ndarray          # unit, from crown to root (apical)
    eig: np.ndarray           # variances along the principal axes (mm²), descending
    t_range: tuple[float, float]   # extent along axis (2nd-98th percentile), crown negative
    crown: np.ndarray | None  # centroid of the enamel, LPS
    enamel_frac: float
    crown_end_frac: float = 0.0   # share of the enamel in the crown half of the piece
    dentin_frac: float = 0.0      # median of the non-enamel voxels, as a fraction soft -> enamel
    upper: bool = False
    tooth_like: bool = False
    why: str = ""
    fdi: int | None = None
    label: int = 0

    @property
    def length(self) -> float:
        return self.t_range[1] - self.t_range[0]


def _split(sub: np.ndarray, sp_kji: tuple[float, float, float], core_mm: float = CORE_MM) -> tuple[np.ndarray, int]:
    """Split a connected mask at thin necks: labels of its thick cores, every voxel to the nearest."""
    edt = ndi.distance_transform_edt(ndi.binary_fill_holes(sub), sampling=sp_kji)   # the pulp is no outside
    core = edt >= core_mm
    lab, n = ndi.label(core)
    if n <= 1:
        return sub.astype(np.int32), 1 if sub.any() else 0
    # drop tiny cores (noise), then give each voxel to the nearest remaining core
    sizes = np.bincount(lab.ravel())
    vox = float(np.prod(sp_kji))
    keep = np.flatnonzero(sizes * vox >= 6.0)
    keep = keep[keep > 0]
    if len(keep) <= 1:
        return sub.astype(np.int32), 1
    remap = np.zeros(n + 1, np.int32)
    remap[keep] = np.arange(1, len(keep) + 1)
    lab = remap[lab]
    _, ind = ndi.distance_transform_edt(lab == 0, sampling=sp_kji, return_indices=True)
    out = lab[tuple(ind)]
    out[~sub] = 0
    return out, len(keep)


def find_pieces(c: Coarse, lev: Levels, frac: float, region: np.ndarray | None = None) -> list[Piece]:
    """Pieces of tissue above the tooth threshold at ``frac``, split at thin necks, with their shape."""
    thr = lev.at(frac)
    mask = c.data >= thr
    if region is not None:
        mask &= region
    lab, n = ndi.label(mask, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return []
    vox = c.voxel_mm3
    sizes = np.bincount(lab.ravel())
    objs = ndi.find_objects(lab)
    sp_kji = (c.spacing[2], c.spacing[1], c.spacing[0])
    en_thr = lev.at(ENAMEL_FRACTION)
    pieces: list[Piece] = []
    for q in range(1, n + 1):
        if sizes[q] * vox < MIN_PIECE_MM3 or sizes[q] * vox > 40000.0:
            continue
        sl = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in objs[q - 1])
        sub = lab[sl] == q
        base = np.array([s.start for s in sl])
        pieces += _pieces_of(c, lev, sub, base, sp_kji, en_thr, CORE_MM)
    return merge_split_teeth(c, lev, pieces)


def _pieces_of(c: Coarse, lev: Levels, sub: np.ndarray, base: np.ndarray, sp_kji, en_thr: float,
               core_mm: float) -> list[Piece]:
    """Split ``sub`` at necks; a piece too wide for one tooth (crowns pressed together) is split
    again with a thicker core."""
    vox = c.voxel_mm3
    parts, m = _split(sub, sp_kji, core_mm)
    out: list[Piece] = []
    for p in range(1, m + 1):
        own = parts == p
        idx = np.argwhere(own)
        if len(idx) * vox < MIN_PIECE_MM3:
            continue
        pc = _describe(c, idx + base, en_thr, lev)
        if pc is None:
            continue
        wide = 4.0 * math.sqrt(max(pc.eig[1], 1e-9)) > 10.0 and pc.crown is not None
        two_crowns = pc.crown is not None and pc.crown_end_frac < 0.75 and pc.length > 16.0
        if (wide or two_crowns) and pc.volume_mm3 > 250.0:
            lo = idx.min(axis=0)
            hi = idx.max(axis=0) + 1
            box = own[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
            again = []
            if core_mm < 2.6:
                again = _pieces_of(c, lev, box, base + lo, sp_kji, en_thr, core_mm + 0.5)
            if len(again) < 2 and wide:
                again = _split_by_roots(c, lev, box, base + lo, sp_kji, en_thr, pc)
            if len(again) >= 2:
                out += again
                continue
        out.append(pc)
    return out


def _split_by_roots(c: Coarse, lev: Levels, box: np.ndarray, base: np.ndarray, sp_kji, en_thr: float,
                    pc: Piece) -> list[Piece]:
    """Crowns pressed together (one behind the other) are thick where they touch, but their roots
    stand apart in bone: seed one piece per root (the end away from the enamel) and grow the seeds
    through the mask, step by step, so each crown goes to the root it is attached to."""
    idx = np.argwhere(box)
    pts = c.to_lps(idx + base)
    t = (pts - pc.centre) @ pc.axis                  # apical positive
    lo, hi = pc.t_range
    edt = ndi.distance_transform_edt(ndi.binary_fill_holes(box), sampling=sp_kji)
    seed = np.zeros(box.shape, bool)
    root_end = idx[t > lo + 0.5 * (hi - lo)]
    seed[tuple(root_end.T)] = True
    seed &= edt >= 0.5
    lab, n = ndi.label(seed, structure=np.ones((3, 3, 3), bool))
    if n < 2:
        return []
    sizes = np.bincount(lab.ravel())
    keep = [q for q in range(1, n + 1) if sizes[q] * c.voxel_mm3 >= 4.0 and sizes[q] >= 3]
    if len(keep) < 2:
        return []
    remap = np.zeros(n + 1, np.int32)
    remap[keep] = np.arange(1, len(keep) + 1)
    lab = remap[lab]
    for _ in range(200):                              # geodesic growth inside the piece
        grown = ndi.grey_dilation(lab, size=(3, 3, 3))
        new = (lab == 0) & box & (grown > 0)
        if not new.any():
            break
        lab[new] = grown[new]
    out = []
    for q in range(1, len(keep) + 1):
        sub_idx = np.argwhere(lab == q)
        if len(sub_idx) * c.voxel_mm3 < MIN_PIECE_MM3:
            continue
        p = _describe(c, sub_idx + base, en_thr, lev)
        if p is not None:
            out.append(p)
    return out if len([p for p in out if p.tooth_like]) >= 2 else []


def _describe(c: Coarse, idx: np.ndarray, en_thr: float, lev: Levels) -> Piece | None:
    pts = c.to_lps(idx)
    vals = c.data[idx[:, 0], idx[:, 1], idx[:, 2]]
    centre = pts.mean(axis=0)
    d = pts - centre
    cov = d.T @ d / len(d)
    w, v = np.linalg.eigh(cov)
    order = np.argsort(w)[::-1]
    w, v = w[order], v[:, order]
    axis = v[:, 0]
    # enamel: brighter than this piece's own body (dentin), whatever the dentin / enamel ratio
    body = float(np.median(vals))
    en = vals >= max(en_thr, body + 0.45 * (lev.enamel - body))
    crown = pts[en].mean(axis=0) if en.any() else None
    if crown is not None and float((crown - centre) @ axis) > 0:
        axis = -axis                          # crown at negative t: axis points apically
    t = d @ axis
    lo, hi = np.percentile(t, [2, 98])
    pc = Piece(idx, pts, vals, len(idx) * c.voxel_mm3, centre, axis, np.maximum(w, 0), (float(lo), float(hi)),
               crown, float(en.mean()))
    if en.any():
        pc.crown_end_frac = float((t[en] < 0).mean())
    if (~en).any():
        pc.dentin_frac = float((np.median(vals[~en]) - lev.soft) / max(lev.enamel - lev.soft, 1e-6))
    _classify(pc)
    return pc


def merge_split_teeth(c: Coarse, lev: Levels, pieces: list[Piece]) -> list[Piece]:
    """Join the parts of one tooth that the coarse copy cut apart, so that each tooth is one piece.

    With coarse slices (0.6-0.8 mm, anisotropic voxels) a tooth can fall apart into a crown
    piece and a root piece, or along its length into a labial and a palatal half (the pulp
    leaves no thick core between the dentin walls). The arch then counts one tooth twice (the
    lateral next to it numbered as a canine, a central as a lateral) or not at all (a crown too
    short to pass for a tooth, the next tooth numbered as the central).

    Two pieces are joined when they touch (gap at most ``MERGE_GAP_MM``), at least one carries
    enamel, together they make an upper tooth no wider than a clean one, and they lie along
    one axis: the centre of one within ``MERGE_LATERAL_MM`` of the other's long axis (neighbouring
    teeth lie a crown's width apart), and, both elongated, their axes within ``MERGE_ANGLE_DEG``.
    A root piece without enamel is not joined to a piece that already is a whole upper tooth
    (the tooth is counted once either way, and the axis fit may follow the root through it).
    Lower teeth never join. Best-fitting pairs first, until no pair fits."""
    from scipy.spatial import cKDTree

    en_thr = lev.at(ENAMEL_FRACTION)
    parts = [p for p in pieces if p.upper or not p.tooth_like]
    if len(parts) < 2:
        return pieces
    trees: dict[int, cKDTree] = {}
    cos_max = math.cos(math.radians(MERGE_ANGLE_DEG))

    def elongated(p: Piece) -> bool:
        return bool(p.eig[0] >= 2.0 * p.eig[1])

    def off_axis(p: Piece, q: Piece) -> float:
        """Distance of p's centre from q's long axis."""
        d = p.centre - q.centre
        return float(np.linalg.norm(d - (d @ q.axis) * q.axis))

    def joined(a: Piece, b: Piece) -> tuple[float, Piece] | None:
        if a.crown is None and b.crown is None:
            return None
        if (a.tooth_like and b.crown is None) or (b.tooth_like and a.crown is None):
            return None
        lateral = [off_axis(p, q) for p, q in ((a, b), (b, a)) if elongated(q)]
        if not lateral or min(lateral) > MERGE_LATERAL_MM:
            return None
        if elongated(a) and elongated(b) and abs(float(a.axis @ b.axis)) < cos_max:
            return None
        if np.linalg.norm(a.centre - b.centre) > 0.5 * (a.length + b.length) + MERGE_GAP_MM + 8.0:
            return None
        small, big = (a, b) if len(a.pts) <= len(b.pts) else (b, a)
        if id(big) not in trees:
            trees[id(big)] = cKDTree(big.pts)
        gap, _ = trees[id(big)].query(small.pts, k=1, distance_upper_bound=MERGE_GAP_MM)
        if not np.isfinite(gap).any():
            return None
        m = _describe(c, np.vstack([a.idx, b.idx]), en_thr, lev)
        if m is None or not (m.tooth_like and m.upper) or 4.0 * math.sqrt(max(m.eig[1], 0.0)) > CLEAN_WIDTH_MM:
            return None
        return min(lateral), m

    tried: dict[tuple[int, int], tuple[float, Piece] | None] = {}
    while True:
        best = None
        for i in range(len(parts)):
            for j in range(i + 1, len(parts)):
                key = (id(parts[i]), id(parts[j]))
                if key not in tried:
                    tried[key] = joined(parts[i], parts[j])
                r = tried[key]
                if r is not None and (best is None or r[0] < best[0]):
                    best = (r[0], i, j, r[1])
        if best is None:
            break
        _, i, j, m = best
        parts[i] = m
        del parts[j]
    if len(parts) == len([p for p in pieces if p.upper or not p.tooth_like]):
        return pieces
    return [p for p in pieces if p.tooth_like and not p.upper] + parts


def _classify(p: Piece) -> None:
    """Is it a tooth? (size, elongation, enamel at one end), and is it an upper one?"""
    length = p.length
    width = 4.0 * math.sqrt(max(p.eig[1], 1e-9))
    if p.crown is None or p.enamel_frac < 0.04:
        p.why = "no enamel"
        return
    if p.volume_mm3 < MIN_TOOTH_MM3:
        p.why = f"small ({p.volume_mm3:.0f} mm³)"
        return
    if not 9.0 <= length <= 45.0:
        p.why = f"length {length:.1f} mm"
        return
    if not 2.5 <= width <= 14.0:
        p.why = f"width {width:.1f} mm"
        return
    if p.eig[0] < 2.0 * p.eig[1]:
        p.why = "not elongated"
        return
    if p.enamel_frac > 0.7:
        p.why = "enamel only"
        return
    t_crown = float((p.crown - p.centre) @ p.axis)
    if t_crown > -0.12 * length:
        p.why = "enamel not at one end"
        return
    if p.crown_end_frac < 0.75:
        p.why = "enamel spread along it"
        return
    if not 0.3 <= p.dentin_frac <= 0.9:
        p.why = "no dentin-like body"
        return
    p.tooth_like = True
    p.upper = bool(p.axis[2] > 0.25)      # root superior (LPS z) -> upper tooth
    p.why = "upper tooth" if p.upper else ("lower tooth" if p.axis[2] < -0.25 else "tooth lying flat")
    if abs(p.axis[2]) <= 0.25:
        p.tooth_like = False


def best_pieces(c: Coarse, lev: Levels, region: np.ndarray | None = None,
                should_stop=None) -> tuple[list[Piece], float]:
    """The pieces at the threshold fraction that gives the most tooth-like upper pieces.

    Only the neighbourhood of enamel-bright voxels is searched (teeth grow from their
    crowns): a large field of view (a whole skull) costs little more than the jaws."""
    near = near_enamel(c, lev)
    region = near if region is None else (region & near)
    best, best_key, best_frac = [], (-1, -99, -9.0), THRESHOLD_FRACTIONS[0]
    for frac in THRESHOLD_FRACTIONS:
        if should_stop is not None and should_stop():
            break
        pieces = find_pieces(c, lev, frac, region)
        ups = [p for p in pieces if p.tooth_like and p.upper]
        clean = [p for p in ups if _clean(p)]
        # most clean upper teeth; on a tie fewer doubtful ones (fragments, bone), then the lower
        # threshold (the most of each tooth)
        key = (min(len(clean), 8), -(len(ups) - len(clean)), -frac)
        if key > best_key:
            best, best_key, best_frac = pieces, key, frac
    return best, best_frac


def _clean(p: Piece) -> bool:
    """A whole tooth on its own: crown and most of the root (not a fragment of a tooth split at a
    high threshold), not merged with bone (not too wide)."""
    return (p.length >= 14.0 and p.volume_mm3 >= 250.0
            and 4.0 * math.sqrt(max(p.eig[1], 1e-9)) <= CLEAN_WIDTH_MM)


def near_enamel(c: Coarse, lev: Levels, reach_mm: float = 32.0) -> np.ndarray:
    """Boxes around every enamel-bright cluster, grown by ``reach_mm`` (a tooth's length)."""
    en = c.data >= lev.at(0.8)
    out = np.zeros(c.data.shape, bool)
    lab, n = ndi.label(en)
    if n == 0:
        return out
    sp_kji = np.array([c.spacing[2], c.spacing[1], c.spacing[0]])
    grow = np.ceil(reach_mm / sp_kji).astype(int)
    for sl in ndi.find_objects(lab):
        lo = [max(s.start - g, 0) for s, g in zip(sl, grow)]
        hi = [min(s.stop + g, n_) for s, g, n_ in zip(sl, grow, c.data.shape)]
        out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
    return out


@dataclass
class Arch:
    """The upper arch: crowns ordered from the patient's right to left, the midline between them."""
    teeth: list[Piece]                      # upper tooth-like pieces, right -> left
    midline_x: float                        # lateral position (along ``lateral``) of the midline
    lateral: np.ndarray                     # unit toward the patient's left in the axial plane
    anterior: np.ndarray                    # unit toward anterior in the axial plane
    fit: str = ""
    notes: list[str] = field(default_factory=list)

    def side_of(self, pt: np.ndarray) -> float:
        """Signed lateral distance of a point from the midline (+ = patient's left)."""
        return float(np.asarray(pt) @ self.lateral) - self.midline_x


def _consistent(ups: list[Piece]) -> list[Piece]:
    """The largest group of upper teeth that look like one dentition: long axes within 40 degrees
    of each other, crowns within 50 mm and at a similar height."""
    if len(ups) <= 1:
        return ups
    best: list[Piece] = []
    for p in ups:
        group = [q for q in ups if float(p.axis @ q.axis) >= np.cos(np.radians(40.0))
                 and np.linalg.norm(p.crown - q.crown) <= 50.0 and abs(p.crown[2] - q.crown[2]) <= 12.0]
        if len(group) > len(best):
            best = group
    return best


def upper_arch(pieces: list[Piece]) -> Arch | None:
    """Order the upper teeth along the arch and find the midline between the central incisors.

    The crowns, seen from above, are fitted with a parabola whose axis may be turned a
    few degrees (the head's yaw); the midline is the gap between the two adjacent crowns
    that are most anterior along that axis, near its vertex.
    """
    ups = _consistent([p for p in pieces if p.tooth_like and p.upper])
    if not ups:
        return None
    # the axial plane of the teeth: perpendicular to their mean long axis
    up = np.mean([p.axis for p in ups], axis=0)
    up /= np.linalg.norm(up)
    lat = np.array([1.0, 0.0, 0.0]) - up * up[0]
    lat /= np.linalg.norm(lat)
    ant = np.cross(up, lat)                   # make it point anterior (-y in LPS)
    if ant[1] > 0:
        ant = -ant
    crowns = np.array([p.crown for p in ups])
    fit, theta, vertex = "", 0.0, None
    if len(ups) >= 3:
        res = _vertex(crowns @ lat, crowns @ ant)
        if res is not None:
            theta, vertex = res
            fit = "parabola"
    # the arch frame: lateral / anterior turned by the fitted yaw
    c, s_ = math.cos(theta), math.sin(theta)
    lat_r, ant_r = c * lat + s_ * ant, -s_ * lat + c * ant
    x, y = crowns @ lat_r, crowns @ ant_r
    order = np.argsort(x)
    xs, ys = x[order], y[order]
    if len(ups) == 1:
        mid, fit = float(xs[0]), "one tooth"
    elif len(ups) == 2:
        mid, fit = float(xs.mean()), "between the two teeth"
    else:
        centre = vertex if vertex is not None and xs[0] - 12.0 <= vertex <= xs[-1] + 12.0 else None
        if centre is None:
            fit = "the most anterior pair of crowns (arch not curved)"
        gaps = 0.5 * (xs[1:] + xs[:-1])
        front = 0.5 * (ys[1:] + ys[:-1])
        ok = np.abs(gaps - centre) <= 8.0 if centre is not None else np.ones(len(gaps), bool)
        if not ok.any():
            ok[:] = True
        k = int(np.argmax(np.where(ok, front, -np.inf)))
        mid = float(gaps[k])
        if centre is not None and abs(mid - centre) > 6.0:
            mid = centre            # no pair of crowns straddles the vertex: a central may be missing
    notes = [f"{len(ups)} upper teeth seen; midline from {fit or 'the crowns'}"
             + (f" (arch turned {math.degrees(theta):+.0f} degrees)" if fit == "parabola" else "")]
    return Arch([ups[i] for i in order], float(mid), lat_r, ant_r, fit, notes)


def _vertex(x: np.ndarray, y: np.ndarray, max_turn_deg: float = 12.0) -> tuple[float, float] | None:
    """(turn in radians, lateral position of the vertex in the turned frame) of the best parabola
    through the crowns. The head may be turned: the parabola's axis is searched within
    ``max_turn_deg`` of anterior (an upright parabola through a turned arch puts its vertex
    millimetres off)."""
    best = None
    for th in np.radians(np.arange(-max_turn_deg, max_turn_deg + 1e-9, 0.5)):
        c, s = math.cos(th), math.sin(th)
        xr, yr = c * x + s * y, -s * x + c * y
        A = np.column_stack([np.ones_like(xr), xr, xr * xr])
        coef, *_ = np.linalg.lstsq(A, yr, rcond=None)
        a, b, cc = coef
        if cc > -1e-4:
            continue
        r = float(np.sum((A @ coef - yr) ** 2)) + 1e-4 * math.degrees(th) ** 2 * len(x)
        if best is None or r < best[0]:
            best = (r, float(th), float(-b / (2 * cc)))
    return None if best is None else (best[1], best[2])


def number_teeth(arch: Arch) -> dict[int, Piece]:
    """FDI numbers: outward from the midline, 1, 2, 3, ... on each side (11.. right, 21.. left)."""
    out: dict[int, Piece] = {}
    right = [p for p in arch.teeth if arch.side_of(p.crown) < 0]
    left = [p for p in arch.teeth if arch.side_of(p.crown) >= 0]
    right.sort(key=lambda p: -arch.side_of(p.crown))
    left.sort(key=lambda p: arch.side_of(p.crown))
    for quad, side in ((1, right), (2, left)):
        first = 1
        if side and len(arch.teeth) >= 3 and abs(arch.side_of(side[0].crown)) > CENTRAL_MAX_MM:
            first = 2           # the tooth next to the midline is too far from it to be a central
            arch.notes.append(f"no central incisor next to the midline on the patient's "
                              f"{'right' if quad == 1 else 'left'}")
        for n, p in enumerate(side[:8], start=first):
            p.fdi = quad * 10 + n
            out[p.fdi] = p
    return out


class PieceMap:
    """Which crown-bearing piece each coarse voxel belongs to, to keep a tooth's neighbours out
    of its analysis. Pieces without enamel (a root split off at the coarse level, bone) are not
    marked: they may be part of the tooth being followed."""

    def __init__(self, c: Coarse, pieces: list[Piece]):
        self.pieces = pieces
        self.lab = np.zeros(c.data.shape, np.int32)
        for n, p in enumerate(pieces, start=1):
            p.label = n
            if p.crown is not None:
                self.lab[p.idx[:, 0], p.idx[:, 1], p.idx[:, 2]] = n
        self.inv = np.linalg.inv(c.affine)

    def allowed_for(self, piece: Piece, upper_neighbours: bool = True):
        """allowed(pts (..., 3) LPS) -> True where no other piece lies.

        ``upper_neighbours=False`` lets the other upper teeth through (only lower teeth and
        other crowned pieces are kept out): neighbouring upper crowns touch at small contact
        points that an opening cuts more exactly than the coarse labels."""
        lab, inv, mine = self.lab, self.inv, piece.label
        if not upper_neighbours:
            keep_out = np.zeros(len(self.pieces) + 1, bool)
            for p in self.pieces:
                keep_out[p.label] = p.crown is not None and not (p.tooth_like and p.upper)
            keep_out[mine] = False
            lab = np.where(keep_out[lab], lab, 0)
        shape = np.array(lab.shape)

        def allowed(pts: np.ndarray) -> np.ndarray:
            p = np.asarray(pts, float)
            ijk = p @ inv[:3, :3].T + inv[:3, 3]
            kji = np.rint(ijk[..., ::-1]).astype(np.intp)
            inside = np.all((kji >= 0) & (kji < shape), axis=-1)
            kji = np.clip(kji, 0, shape - 1)
            v = lab[kji[..., 0], kji[..., 1], kji[..., 2]]
            return ~inside | (v == 0) | (v == mine)
        return allowed
