"""The long axis and labio-palatal plane of one tooth, refined at the volume's full resolution.

Step two of tooth detection (``tooth_detection``). Given a rough axis and the
tooth's coarse piece (``tooth_candidates``):

1. **Root centre line**: the volume is sampled on a stack of cross-sections
   perpendicular to the current axis (~0.25 mm). On each root level the root is
   the bright blob at the axis (threshold between the dentin and the bone
   around it, both measured on this tooth); its centroid is a point of the
   root's centre line. A quadratic through those points (roots curve a little)
   gives the centre line, the apex is where the root ends. Done twice, the
   second time across the refined axis.
2. **Mesio-distal direction**: the crown of an incisor is flat - wide from
   mesial to distal, thin from labial to palatal - so the major axis of its
   cross-section (principal axes of the crown's voxels around the long axis) is
   the mesio-distal direction; the labio-palatal plane is perpendicular to it.
3. **CEJ**: in that plane (2-D, ~0.15 mm) the enamel (brighter than dentin)
   ends on the labial and on the palatal surface; the midpoint of those two
   ends is the CEJ midpoint. The long axis runs from it to the apex, as the
   measurements define it (DESIGN.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from .volume import Volume


def sample_points(volume: Volume, pts: np.ndarray, outside: float = np.nan) -> np.ndarray:
    """Trilinear samples (rescaled values, float32) of the volume at LPS points (..., 3)."""
    pts = np.asarray(pts, float)
    ijk = volume.lps_to_index(pts.reshape(-1, 3)).astype(np.float32)
    return sample_index(volume, ijk[:, 0], ijk[:, 1], ijk[:, 2], outside).reshape(pts.shape[:-1])


def sample_grid(volume: Volume, origin: np.ndarray, dirs: list[np.ndarray], coords: list[np.ndarray],
                outside: float = np.nan) -> np.ndarray:
    """Samples on the grid ``origin + sum(c_n * dir_n)`` (one 1-D coordinate array per direction)."""
    o = volume.lps_to_index(np.asarray(origin, float))
    zero = volume.lps_to_index(np.zeros(3))
    steps = [volume.lps_to_index(np.asarray(d, float)) - zero for d in dirs]
    shape = tuple(len(c) for c in coords)
    idx = []
    for ax in range(3):
        acc = np.float32(o[ax])
        for n, (c, st) in enumerate(zip(coords, steps)):
            sh = [1] * len(coords)
            sh[n] = len(c)
            acc = acc + (np.asarray(c, np.float32) * np.float32(st[ax])).reshape(sh)
        idx.append(np.broadcast_to(acc, shape).reshape(-1))
    return sample_index(volume, idx[0], idx[1], idx[2], outside).reshape(shape)


def sample_index(volume: Volume, fi: np.ndarray, fj: np.ndarray, fk: np.ndarray, outside: float = np.nan) -> np.ndarray:
    """Trilinear samples at fractional voxel indices (float32 arrays of one shape)."""
    vox = volume.voxels
    nk, nj, ni = vox.shape
    inside = (fi >= 0) & (fi <= ni - 1) & (fj >= 0) & (fj <= nj - 1) & (fk >= 0) & (fk <= nk - 1)
    out = np.full(fi.shape, outside, np.float32)
    if not inside.any():
        return out
    fi, fj, fk = fi[inside], fj[inside], fk[inside]
    i0 = np.minimum(fi.astype(np.intp), max(ni - 2, 0))
    j0 = np.minimum(fj.astype(np.intp), max(nj - 2, 0))
    k0 = np.minimum(fk.astype(np.intp), max(nk - 2, 0))
    ti, tj, tk = fi - i0, fj - j0, fk - k0
    i1, j1, k1 = np.minimum(i0 + 1, ni - 1), np.minimum(j0 + 1, nj - 1), np.minimum(k0 + 1, nk - 1)
    flat = vox.reshape(-1)
    sk, sj = nj * ni, ni
    b00, b01, b10, b11 = k0 * sk + j0 * sj, k0 * sk + j1 * sj, k1 * sk + j0 * sj, k1 * sk + j1 * sj
    si = 1 - ti

    def row(base):
        return flat[base + i0].astype(np.float32) * si + flat[base + i1].astype(np.float32) * ti

    c0 = row(b00) * (1 - tj) + row(b01) * tj
    c1 = row(b10) * (1 - tj) + row(b11) * tj
    val = c0 * (1 - tk) + c1 * tk
    if volume.slope != 1.0 or volume.intercept != 0.0:
        val = val * np.float32(volume.slope) + np.float32(volume.intercept)
    out[inside] = val
    return out


def _perp(axis: np.ndarray, hint: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors completing ``axis`` to an orthonormal frame (the first near ``hint``)."""
    if hint is None or abs(float(np.dot(hint, axis))) > 0.95:
        hint = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e2 = hint - axis * float(hint @ axis)
    e2 /= np.linalg.norm(e2)
    return e2, np.cross(axis, e2)


@dataclass
class LocalLevels:
    dentin: float
    dentin_hi: float
    enamel: float
    around: float      # bone / soft tissue around the root
    plates: float      # the brightest bone around the root (cortical plates, lamina dura)
    soft: float        # soft tissue around the crown

    @property
    def tooth_thr(self) -> float:
        """Root against its surroundings: above the bone and above the brightest bone plates."""
        return max(self.around + 0.6 * (self.dentin - self.around),
                   self.plates + 0.45 * (self.dentin_hi - self.plates))

    @property
    def crown_thr(self) -> float:
        return self.soft + 0.5 * (self.dentin - self.soft)

    @property
    def enamel_thr(self) -> float:
        """Halfway from dentin to enamel, and never below the brightest dentin: with coarse slices
        the root's core mixes pulp and dentin, so its typical value can sit far below its
        bright part, which must not pass for enamel (phantom standard 8001, 0.61 mm slices)."""
        return max(self.dentin + 0.5 * (self.enamel - self.dentin),
                   self.dentin_hi + 0.25 * (self.enamel - self.dentin_hi))

    @property
    def cej_thr(self) -> float:
        """Thin enamel near the CEJ: a little brighter than the brightest dentin."""
        return self.dentin_hi + 0.2 * (self.enamel - self.dentin_hi)


@dataclass
class AxisFit:
    incisal: np.ndarray
    cej: np.ndarray
    apex: np.ndarray
    mesiodistal: np.ndarray     # unit, sign not yet oriented toward distal
    labial: np.ndarray          # unit, sign not yet oriented toward the lip
    quality: float              # 0..1
    notes: list[str] = field(default_factory=list)
    cej_labial: np.ndarray | None = None
    cej_palatal: np.ndarray | None = None
    cej_root: np.ndarray | None = None      # the root centre line at the CEJ level
    rows_kept: float = 1.0                  # fraction of root levels on the fitted centre line


class _Stack:
    """Cross-sections of the volume perpendicular to an axis: I[t, a, b]."""

    def __init__(self, volume: Volume, origin: np.ndarray, axis: np.ndarray, e2: np.ndarray, e3: np.ndarray,
                 t0: float, t1: float, radius: float, h: float, ht: float, allowed=None,
                 mask_until: float = np.inf):
        self.origin, self.axis, self.e2, self.e3 = origin, axis, e2, e3
        self.t = np.arange(t0, t1 + 1e-9, ht)
        self.ab = np.arange(-radius, radius + 1e-9, h)
        self.h, self.ht = h, ht
        self.I = sample_grid(volume, origin, [axis, e2, e3], [self.t, self.ab, self.ab])
        if allowed is not None:      # voxels of other teeth (coronal of mask_until) read as the lowest value
            near = self.t < mask_until
            if near.any():
                tn = self.t[near]
                T, A, B = np.meshgrid(tn, self.ab, self.ab, indexing="ij")
                pts = origin + T[..., None] * axis + A[..., None] * e2 + B[..., None] * e3
                ok = allowed(pts)
                if not ok.all():
                    lo = np.nanmin(self.I) if np.isfinite(self.I).any() else 0.0
                    self.I[near] = np.where(ok, self.I[near], lo)

    def point(self, t: float, a: float, b: float) -> np.ndarray:
        return self.origin + t * self.axis + a * self.e2 + b * self.e3


def _levels(st: _Stack, t_crown: float, soft_level: float | None = None) -> LocalLevels | None:
    """Dentin, enamel, surroundings and soft tissue measured on this tooth."""
    A, B = np.meshgrid(st.ab, st.ab, indexing="ij")
    r = np.hypot(A, B)
    I = st.I
    root = st.t > t_crown + 2.0
    crown = st.t < t_crown
    if root.sum() < 4 or crown.sum() < 2:
        return None
    core = I[root][:, r < 1.8]
    core = core[np.isfinite(core)]
    shell = I[root][:, (r > 3.8) & (r < 5.8)]
    shell = shell[np.isfinite(shell)]
    cr = I[crown][:, r < 4.5]
    cr = cr[np.isfinite(cr)]
    if len(core) < 20 or len(shell) < 20 or len(cr) < 20:
        return None
    dentin = float(np.percentile(core, 75))
    dentin_hi = float(np.percentile(core, 97))
    around = float(np.median(shell))
    enamel = float(np.percentile(cr, 98))
    soft_s = I[crown][:, (r > 5.0)]
    soft_s = soft_s[np.isfinite(soft_s)]
    soft = float(np.percentile(soft_s, 30)) if len(soft_s) > 20 else around
    if soft_level is not None:
        soft = max(soft, float(soft_level))
    if not dentin > around:
        return None
    # the brightest bone: neighbouring roots (dentin-bright) left out
    not_teeth = shell[shell < dentin - 0.15 * (dentin - around)]
    plates = float(np.percentile(not_teeth, 95)) if len(not_teeth) > 20 else around
    return LocalLevels(dentin, dentin_hi, max(enamel, dentin_hi + 1e-3), around, min(plates, dentin), min(soft, around))


def _blob_centroid(img: np.ndarray, thr: float, centre_px: tuple[float, float], max_px: float,
                   neck_px: float = 0.0):
    """Centroid (px) and area (px) of the blob above ``thr`` at / nearest the centre, or None.

    With ``neck_px`` the blob is first cut at necks thinner than about twice that
    (a neighbouring root or bone touching this one) by an opening of that radius.
    """
    m = img >= thr
    if not m.any():
        return None
    m = ndi.binary_fill_holes(m)
    core = ndi.binary_erosion(m, _disk(neck_px)) if neck_px > 0 else m
    lab, n = ndi.label(core)
    if n == 0:
        lab, n = ndi.label(m)
        core = m
        if n == 0:
            return None
    ci, cj = int(round(centre_px[0])), int(round(centre_px[1]))
    q = lab[ci, cj] if 0 <= ci < m.shape[0] and 0 <= cj < m.shape[1] else 0
    if q == 0:
        pts = np.argwhere(lab > 0)
        d = np.hypot(pts[:, 0] - centre_px[0], pts[:, 1] - centre_px[1])
        k = int(np.argmin(d))
        if d[k] > max_px:
            return None
        q = lab[tuple(pts[k])]
    own = lab == q
    if neck_px > 0 and core is not m:
        own = ndi.binary_dilation(own, _disk(neck_px)) & m
    sel = np.argwhere(own)
    return sel.mean(axis=0), len(sel)


def _centre_line(st: _Stack, lv: LocalLevels, t_from: float, prior: tuple[float, float] = (0.0, 0.0)):
    """Root centroids (t, a, b, area mm²) from ``t_from`` apically until the root ends.

    The first root level is searched within 3 mm of the axis (over the first 4 mm of
    levels); after that each level's blob must lie within 1.5 mm of the last, and three
    empty levels in a row end the root."""
    thr = lv.tooth_thr
    c = np.array([(prior[0] - st.ab[0]) / st.h, (prior[1] - st.ab[0]) / st.h])
    rows = []
    misses = 0
    for n, t in enumerate(st.t):
        if t < t_from:
            continue
        if not rows and t > t_from + 4.0:
            break
        img = st.I[n]
        img = np.where(np.isfinite(img), img, lv.around)
        reach = (1.5 if rows else 3.0) / st.h
        res = _blob_centroid(img, thr, (c[0], c[1]), reach, 0.6 / st.h)
        if res is None or res[1] * st.h ** 2 < 0.15:
            if rows:
                misses += 1
                if misses >= 3:
                    break
            continue
        misses = 0
        cen, area = res
        if area * st.h ** 2 > 40.0:        # merged with bone or a neighbour: do not trust
            continue
        c = 0.7 * c + 0.3 * cen if rows else cen
        rows.append((t, st.ab[0] + cen[0] * st.h, st.ab[0] + cen[1] * st.h, area * st.h ** 2))
    return np.array(rows) if rows else np.zeros((0, 4))


def fit_axis(volume: Volume, centre: np.ndarray, axis: np.ndarray, t_range: tuple[float, float],
             md_hint: np.ndarray | None, anterior: np.ndarray, allowed=None, allowed_crown=None,
             soft_level: float | None = None) -> AxisFit | None:
    """Refine one tooth: centre line of the root, mesio-distal direction, CEJ midpoint, apex.

    ``centre``, ``axis`` (crown -> root) and ``t_range`` (extent along the axis,
    crown negative) come from the coarse piece; ``anterior`` orients the labial side.
    ``allowed(pts)`` is False inside other teeth (kept out around the crown);
    ``allowed_crown`` the same for the crown's outline (default: ``allowed``).
    ``soft_level``: the volume's soft-tissue level (the crown's surroundings may be mostly
    air, which must not be taken for soft tissue).
    """
    allowed_crown = allowed if allowed_crown is None else allowed_crown
    notes: list[str] = []
    h = float(np.clip(min(volume.spacing), 0.2, 0.3))       # across the axis
    ht = 0.4                                                   # along the axis
    axis = axis / np.linalg.norm(axis)
    origin = np.asarray(centre, float).copy()
    incisal_pt = origin + t_range[0] * axis
    t_lo, t_hi = t_range
    lv = None
    p_apex = None
    for _ in range(2):
        e2, e3 = _perp(axis, md_hint)
        # other teeth are masked out around the crown only (where neighbours and lower incisors
        # touch); along the root the blob at the axis is this root
        st = _Stack(volume, origin, axis, e2, e3, t_lo - 2.0, t_hi + (12.0 if lv is None else 5.0), 6.0, h, ht,
                    allowed, mask_until=t_lo + 0.4 * (t_hi - t_lo))
        t_crown = t_lo + 0.35 * (t_hi - t_lo)
        lv = _levels(st, t_crown, soft_level) if lv is None else lv
        if lv is None:
            notes.append("no dentin / bone contrast around the tooth")
            return None
        t_cej = _cej_level(st, lv, t_crown)
        rows = _centre_line(st, lv, t_cej + 0.5)
        if len(rows) < 6:
            notes.append("root too short to follow")
            return None
        t, a, b, area = rows.T
        keep = _robust_rows(t, a, b, area)
        if keep.sum() < 6:
            notes.append("root outline too irregular to follow")
            return None
        kept = float(keep.mean())
        t, a, b, area = t[keep], a[keep], b[keep], area[keep]
        w = np.sqrt(np.clip(area, 0.1, None))
        deg = 2 if len(t) >= 16 else 1
        pa = np.polyfit(t, a, deg, w=w)
        pb = np.polyfit(t, b, deg, w=w)
        t_apex = float(rows[-1, 0] + 0.5 * ht)
        p_cej = st.point(t_cej, np.polyval(pa, t_cej), np.polyval(pb, t_cej))
        p_apex = st.point(t_apex, np.polyval(pa, t_apex), np.polyval(pb, t_apex))
        axis = (p_apex - p_cej) / np.linalg.norm(p_apex - p_cej)
        origin = p_cej
        t_lo = float((incisal_pt - origin) @ axis)
        t_hi = float((p_apex - origin) @ axis)
    # mesio-distal direction from the crown's cross-section
    e2, e3 = _perp(axis, md_hint)
    st = _Stack(volume, origin, axis, e2, e3, t_lo - 2.0, 1.0, 6.0, h, ht, allowed_crown)
    md = _crown_md(st, lv, 0.0)
    if md is None:
        md = e2
        notes.append("crown outline unclear: mesio-distal direction from the coarse shape")
    labial = np.cross(axis, md)
    if labial @ anterior < 0:
        labial = -labial
    # the labio-palatal plane: the enamel's end on each surface
    ends = _cej_in_plane(volume, origin, axis, labial, t_lo - 2.0, 4.0, lv, allowed)
    if ends is None:
        notes.append("enamel end not found on both surfaces: CEJ from the cross-sections")
        cej_l = cej_p = origin
        q = 0.6
    else:
        cej_l, cej_p = ends
        q = 1.0
    # the CEJ midpoint: on the root's centre line, at the level where the enamel ends
    t_c = 0.5 * float((cej_l - origin) @ axis + (cej_p - origin) @ axis)
    cej = origin + t_c * axis
    incisal = cej + float((incisal_pt - cej) @ axis) * axis
    return AxisFit(incisal=incisal, cej=cej, apex=p_apex, mesiodistal=md, labial=labial, quality=q, notes=notes,
                   cej_labial=cej_l, cej_palatal=cej_p, cej_root=origin, rows_kept=kept)


def _robust_rows(t: np.ndarray, a: np.ndarray, b: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Levels whose centroid agrees with a smooth centre line (drops levels merged with bone).

    Starts from a straight line through the middle of the root (the part least likely
    to touch bone or a neighbour), then keeps the levels close to the current fit.
    """
    n = len(t)
    keep = np.zeros(n, bool)
    keep[int(0.25 * n): max(int(0.8 * n), int(0.25 * n) + 4)] = True
    # a level much larger than its neighbours has merged with something
    med = ndi.median_filter(area, size=5, mode="nearest")
    swollen = area > 1.3 * med + 0.5
    keep &= ~swollen
    for it in range(6):
        if keep.sum() < 4:
            break
        deg = 2 if keep.sum() >= 16 and it > 0 else 1
        w = np.sqrt(np.clip(area[keep], 0.1, None))
        ra = a - np.polyval(np.polyfit(t[keep], a[keep], deg, w=w), t)
        rb = b - np.polyval(np.polyfit(t[keep], b[keep], deg, w=w), t)
        r = np.hypot(ra, rb)
        mad = float(np.median(r[keep]))
        new = (r <= max(0.25, 3.5 * mad)) & ~swollen
        if (new == keep).all():
            break
        keep = new
    return keep


def _cej_level(st: _Stack, lv: LocalLevels, t_guess: float) -> float:
    """Most apical level (t) with enamel on the tooth's surface, near the axis."""
    A, B = np.meshgrid(st.ab, st.ab, indexing="ij")
    r = np.hypot(A, B)
    en = np.where(np.isfinite(st.I), st.I, -np.inf) >= lv.enamel_thr
    en &= (r < 5.0)[None]
    per = en.sum(axis=(1, 2)) * st.h ** 2
    has = np.flatnonzero(per >= 0.1)
    if len(has) == 0:
        return t_guess
    # the enamel cap is one run of levels from the incisal edge; take its apical end
    runs = np.split(has, np.flatnonzero(np.diff(has) > 2) + 1)
    run = max(runs, key=len)
    return float(st.t[run[-1]])


CROWN_WINDOW_MM = 3.5          # radius of the crown window for the mesio-distal direction


def _disk(radius_px: float) -> np.ndarray:
    r = int(math.ceil(radius_px))
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    return (x * x + y * y) <= radius_px * radius_px + 1e-9


def _crown_md(st: _Stack, lv: LocalLevels, t_cej: float) -> np.ndarray | None:
    """Major axis of the crown's cross-sections (mesio-distal direction), or None.

    Per level: the crown's own outline (the part at the axis, cut from a touching
    neighbour or lower incisor by a small opening), its principal axes; the levels'
    major axes are averaged (doubled angles) weighted by how flat each level is.
    """
    levels = np.flatnonzero(st.t < t_cej - 1.0)
    if len(levels) < 4:
        return None
    thr = lv.crown_thr
    c = len(st.ab) // 2
    disk = _disk(0.6 / st.h)
    A, B = np.meshgrid(st.ab, st.ab, indexing="ij")
    acc = np.zeros(2)
    total = 0.0
    for n in levels:
        img = np.where(np.isfinite(st.I[n]), st.I[n], lv.soft)
        m = ndi.binary_fill_holes(img >= thr)
        core = ndi.binary_erosion(m, disk)
        lab, k = ndi.label(core)
        if k == 0:
            continue
        q = lab[c, c]
        if q == 0:
            pts = np.argwhere(lab > 0)
            d = np.hypot(pts[:, 0] - c, pts[:, 1] - c)
            j = int(np.argmin(d))
            if d[j] * st.h > 2.0:
                continue
            q = lab[tuple(pts[j])]
        own = ndi.binary_dilation(lab == q, disk) & m
        if own.sum() * st.h ** 2 < 3.0:
            continue
        # a window round the crown's own centre, narrower than the crown is wide: what touches
        # it at the contact points falls outside, and the cut is the same on both sides
        a0, b0 = A[own].mean(), B[own].mean()
        for _ in range(2):
            win = own & ((A - a0) ** 2 + (B - b0) ** 2 <= CROWN_WINDOW_MM ** 2)
            a0, b0 = A[win].mean(), B[win].mean()
        if win.sum() * st.h ** 2 < 3.0:
            continue
        a, b = A[win], B[win]
        a, b = a - a.mean(), b - b.mean()
        cov = np.array([[a @ a, a @ b], [a @ b, b @ b]]) / len(a)
        w, v = np.linalg.eigh(cov)
        if w[1] < 1.5 * w[0]:
            continue
        ang = math.atan2(v[1, 1], v[0, 1])
        weight = (w[1] - w[0]) / w[1] * win.sum()
        acc += weight * np.array([math.cos(2 * ang), math.sin(2 * ang)])
        total += weight
    if total <= 0 or np.linalg.norm(acc) < 0.3 * total:
        return None
    ang = 0.5 * math.atan2(acc[1], acc[0])
    md = math.cos(ang) * st.e2 + math.sin(ang) * st.e3
    return md / np.linalg.norm(md)


def _cej_in_plane(volume: Volume, origin: np.ndarray, axis: np.ndarray, labial: np.ndarray,
                  t0: float, t1: float, lv: LocalLevels, allowed=None):
    """(CEJ labial, CEJ palatal): the most apical enamel on each surface of the labio-palatal plane."""
    h = float(np.clip(min(volume.spacing) * 0.5, 0.1, 0.2))
    u = np.arange(-7.0, 7.0 + 1e-9, h)              # palatal positive
    t = np.arange(t0, t1 + 1e-9, h)
    pal = -labial
    T, U = np.meshgrid(t, u, indexing="ij")
    pts = origin + T[..., None] * axis + U[..., None] * pal
    img = sample_points(volume, pts)
    img = np.where(np.isfinite(img), img, lv.soft)
    if allowed is not None:
        img = np.where(allowed(pts), img, lv.soft)
    img = ndi.gaussian_filter(img, 0.6)
    enamel = (img >= lv.cej_thr) & (np.abs(U) < 6.0)
    lab, n = ndi.label(enamel)
    if n == 0:
        return None
    # the tooth's own enamel: the pieces that reach the levels near the CEJ guess (t ~ 0)
    out = []
    for side in (-1, 1):
        m = enamel & ((U < 0) if side < 0 else (U > 0)) & (T < 3.0)
        rows = np.flatnonzero(m.any(axis=1))
        if len(rows) == 0:
            return None
        r = int(rows.max())
        cols = np.flatnonzero(m[r])
        c = int(cols.min()) if side < 0 else int(cols.max())
        # walk outward to the tooth surface (where the intensity falls below the crown threshold)
        step = -1 if side < 0 else 1
        while 0 <= c + step < len(u) and img[r, c + step] >= lv.crown_thr:
            c += step
        uu = _subpixel_edge(img[r], c, step, lv.crown_thr, u, h)
        out.append(origin + t[r] * axis + uu * pal)
    return out[0], out[1]


def _subpixel_edge(row: np.ndarray, idx: int, direction: int, thr: float, u: np.ndarray, h: float) -> float:
    """Where the profile crosses ``thr`` just outside ``idx`` (direction -1: toward lower u)."""
    j = idx + direction
    if j < 0 or j >= len(row):
        return float(u[idx])
    a, b = row[idx], row[j]
    if a == b:
        return float(u[idx])
    f = float(np.clip((a - thr) / (a - b), 0.0, 1.0))
    return float(u[idx] + direction * f * h)

