"""CBCT-like phantom volumes of the anterior dentition with exact truth (Qt-free, torch-free).

``generate_phantom_volume(seed, style)`` makes an int16 / uint16 volume (with
rescale slope / intercept) of the upper anterior teeth (13-23, sometimes 14 and
24) on a curved arch, the lower incisors just behind the upper crowns, the
maxillary alveolar bone with its cortices and the palatal alveolar bone (PAB),
the palate, lips and soft tissue, air around; the head turned and tilted a few
degrees, each tooth with its own inclination, angulation and rotation; varied
field of view, voxel size and grid directions; blur, correlated noise, streaks
and cupping.

How the truth stays exact. Every upper tooth has a plane (its labio-palatal
plane) holding a 2-D phantom anatomy (``anatomy.build_anatomy``: tooth profile,
PAB, bone, soft tissue, in mm). In 3-D:

* the tooth is its profile extruded mesio-distally and cut by a slab that
  narrows toward the root (``solids.ToothSolid``): on the central plane its
  signed distance *is* the profile's;
* bone and soft tissue are the signed distances of the 2-D outlines of the
  nearest teeth's planes, blended by where a point lies between two adjacent
  planes: on a tooth's own plane the weight of its own outlines is exactly 1.

So the central plane of 11 and of 21 shows exactly the 2-D anatomy, and its
annotation (PAB and enamel regions, landmarks, measurements) is the 2-D
phantom's truth mapped into the pixel frame of ``plane_for_tooth``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from shapely import affinity

from ..annotation import Annotation
from ..geometry import as_multipolygon
from ..measurements import ToothFrame, apply_measurements
from ..volume import Plane, ToothAxis, Volume, plane_for_tooth
from .params import PhantomStyleError, check_seed
from .volume_params import VOLUME_STYLES, VolumeParams, sample_volume_params
from .volume_place import (SDF_CLIP, Layout, PlacedTooth, env_field, layout, place_lower, place_upper)

GENERATOR = "dentseg phantom volume"
GENERATOR_VERSION = 1
CHUNK_VOXELS = 1_200_000
# the lateral teeth's own outlines fade into the central incisors' between these palatal depths (mm)
PALATE_FADE_MM = (9.0, 15.0)


@dataclass
class PhantomVolume:
    """A phantom CBCT volume with the true axes of its upper teeth and the truth of two slices.

    ``teeth``: FDI number -> the true ``ToothAxis`` of every upper tooth made.
    ``slices``: for 11 and 21, (plane, annotation): the exact 2-D truth (PAB and
    enamel regions, landmarks, measurements) of the central labio-palatal plane
    in the pixel frame of ``plane_for_tooth(teeth[n], spacing, size)``.
    """

    volume: Volume
    teeth: dict[int, ToothAxis]
    slices: dict[int, tuple[Plane, Annotation]]
    params: dict[str, Any] = field(default_factory=dict)

    def truth_record(self) -> dict[str, Any]:
        """Everything true about the phantom as plain JSON (to write beside its volume files):
        the axes of every upper tooth, and per central incisor its plane and annotation."""
        return {
            "format": "dentseg-phantom-volume-truth", "version": 1,
            "generator": GENERATOR, "generator_version": GENERATOR_VERSION,
            "frame": "LPS mm",
            "params": _jsonable(self.params),
            "teeth": {str(k): a.to_json() for k, a in sorted(self.teeth.items())},
            "slices": {str(k): {"plane": pl.to_json(), "annotation": ann.to_json_dict()}
                       for k, (pl, ann) in sorted(self.slices.items())},
        }


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def check_volume_style(style: str) -> None:
    if style not in VOLUME_STYLES:
        raise PhantomStyleError(f"unknown phantom volume style {style!r}; choose one of: "
                                f"{', '.join(VOLUME_STYLES)}")


def generate_phantom_volume(seed: int, style: str = "standard", *, spacing_mm=None,
                            max_voxels: int | None = None, noise: bool = True,
                            slice_spacing_mm: float | None = None,
                            slice_size_mm: tuple[float, float] = (48.0, 48.0)) -> PhantomVolume:
    """One phantom volume; the same ``seed`` and ``style`` (and options) give the same voxels.

    ``style``: ``standard`` or ``other`` (an independent family for benchmarks).
    ``spacing_mm``: override the drawn voxel spacing (one number or (i, j, k));
    ``max_voxels``: coarsen the spacing until the grid holds at most this many;
    ``noise=False``: no noise, streaks or cupping (blur kept).
    ``slice_spacing_mm``: pixel spacing of the truth slices (default: the finest voxel spacing).
    """
    seed = check_seed(seed)
    check_volume_style(style)
    t0 = time.perf_counter()
    vp = sample_volume_params(seed, style)
    g = np.random.default_rng([seed, 79, VOLUME_STYLES.index(style)])
    upper_specs = [s for s in vp.teeth if s.upper]
    lower_specs = [s for s in vp.teeth if not s.upper]
    edge_z = {}
    for s in upper_specs:
        k = s.fdi % 10
        edge_z[s.fdi] = {1: 0.0, 2: g.uniform(0.4, 1.2), 3: g.uniform(-0.4, 0.6), 4: g.uniform(0.5, 1.5)}[k]
    upper = place_upper(vp, upper_specs, edge_z)
    lower = place_lower(vp, lower_specs, upper)

    if spacing_mm is not None:
        sp = (float(spacing_mm),) * 3 if np.ndim(spacing_mm) == 0 else tuple(float(s) for s in spacing_mm)
        if len(sp) != 3 or not all(s > 0 for s in sp):
            raise PhantomStyleError(f"spacing_mm must be a positive number or three, got {spacing_mm!r}")
    else:
        sp = vp.spacing
    # the grid must hold both central incisors whole
    must = np.vstack([t.from_plane(np.asarray(t.anatomy["tooth"].exterior.coords))
                      for t in upper if t.fdi in (11, 21)])
    lay = layout(vp, must, sp, max_voxels, g)

    hu = _render(vp, lay, upper, lower, g, noise)
    stored, slope, intercept = _store(vp, hu)
    del hu
    truth_axes = {t.fdi: _true_axis(t, lay) for t in upper}
    vol = Volume(stored, lay.origin, lay.directions, lay.spacing, slope=slope, intercept=intercept,
                 source=f"phantom volume {style} seed {seed}",
                 meta={"modality": "CT", "phantom_seed": seed, "phantom_style": style,
                       "generator": GENERATOR, "generator_version": GENERATOR_VERSION})
    ssp = float(slice_spacing_mm) if slice_spacing_mm else float(min(lay.spacing))
    slices = {}
    for t in upper:
        if t.fdi in (11, 21):
            slices[t.fdi] = _truth_slice(t, truth_axes[t.fdi], lay, ssp, slice_size_mm, seed, style)
    params = _params_record(vp, lay, upper, lower, time.perf_counter() - t0)
    return PhantomVolume(vol, truth_axes, slices, params)


# --------------------------------------------------------------------------- rendering


def _index_to_head(lay: Layout) -> tuple[np.ndarray, np.ndarray]:
    """(h0, B): head point of voxel (0,0,0) and the head-frame step per +i, +j, +k (columns)."""
    a = lay.directions * np.asarray(lay.spacing)[None, :]
    B = lay.R.T @ a
    h0 = lay.R.T @ (lay.origin - lay.t)
    return h0, B


def _occ(sdf: np.ndarray, h: float) -> np.ndarray:
    """Partial-volume fraction of a voxel inside the level set ``sdf < 0`` (linear ramp one voxel wide)."""
    return np.clip(0.5 - sdf / h, 0.0, 1.0).astype(np.float32)


def _lerp(d: np.ndarray, val, occ: np.ndarray) -> np.ndarray:
    return d + occ * (val - d)


class _Aff:
    """A value that is affine in the voxel index: ``c0 + ci*i + cj*j + ck*k`` (float32 on a block)."""

    def __init__(self, h0: np.ndarray, B: np.ndarray, point: np.ndarray, vec: np.ndarray):
        vec = np.asarray(vec, float)
        self.c0 = float((h0 - point) @ vec)
        self.ci, self.cj, self.ck = (float(B[:, c] @ vec) for c in range(3))

    def block(self, k0: int, k1: int, j0: int, j1: int, i0: int, i1: int) -> np.ndarray:
        k = np.arange(k0, k1, dtype=np.float32)[:, None, None] * np.float32(self.ck)
        j = np.arange(j0, j1, dtype=np.float32)[None, :, None] * np.float32(self.cj)
        i = np.arange(i0, i1, dtype=np.float32)[None, None, :] * np.float32(self.ci)
        return (np.float32(self.c0) + k + j + i).reshape(-1)


def _band_noise(rng: np.random.Generator, shape, spacing_kji, s1_mm: float, s2_mm: float) -> np.ndarray:
    """Normalised band-pass noise on the voxel grid (features between s1 and s2 mm)."""
    w = rng.standard_normal(shape, dtype=np.float32)
    a = ndi.gaussian_filter(w, [max(s1_mm / s, 0.3) for s in spacing_kji], truncate=3.0)
    ndi.gaussian_filter(w, [max(s2_mm / s, 0.5) for s in spacing_kji], output=w, truncate=3.0)
    a -= w
    a /= float(a.std()) + 1e-6
    return a


def _slow_noise(rng: np.random.Generator, shape, spacing_kji, mm: float) -> np.ndarray:
    """Smooth density variation over ~``mm``: noise on a coarse grid, interpolated."""
    f = [max(1, int(round(mm / s / 2))) for s in spacing_kji]
    small = [max(2, n // ff + 2) for n, ff in zip(shape, f)]
    w = ndi.gaussian_filter(rng.standard_normal(small).astype(np.float32), 1.0, mode="wrap")
    w /= float(w.std()) + 1e-6
    zoom = [n / m for n, m in zip(shape, small)]
    out = ndi.zoom(w, zoom, order=1, grid_mode=True, mode="grid-wrap")
    return out[: shape[0], : shape[1], : shape[2]]


def _render(vp: VolumeParams, lay: Layout, upper: list[PlacedTooth], lower: list[PlacedTooth],
            rng: np.random.Generator, noise: bool) -> np.ndarray:
    nk, nj, ni = lay.shape
    h0, B = _index_to_head(lay)
    hvox = float(np.mean(lay.spacing))
    hu = vp.hu
    sp_kji = (lay.spacing[2], lay.spacing[1], lay.spacing[0])
    envs = {t.fdi: env_field(t) for t in upper}
    out = np.tanh(1.4 * _band_noise(rng, (nk, nj, ni), sp_kji, 0.3 * vp.trab_scale, 1.0 * vp.trab_scale))
    trab_all = out.reshape(-1)           # the texture; overwritten chunk by chunk with the densities
    slow_all = _slow_noise(rng, (nk, nj, ni), sp_kji, 4.0).reshape(-1)
    p11 = next(t for t in upper if t.fdi == 11).spec.p2d
    z_st = p11.lip_line                  # the centrals' incisal edges lie at z = 0
    lip = p11.lip_thick
    cortex_mm = p11.cortex
    boxes = {t.fdi: _index_box(t, lay, h0, B, margin=6.0 if not t.spec.upper else 1.5) for t in upper + lower}
    arch_c, arch_p = vp.arch["curvature"], vp.arch["exponent"]
    y_lower_front = min(_front_y(t) for t in lower) if lower else 0.0
    zero = np.zeros(3)
    X_, Y_, Z_ = (_Aff(h0, B, zero, e) for e in np.eye(3))
    env_aff = [(_Aff(h0, B, t.origin, t.arch_dir), _Aff(h0, B, t.origin, t.N), _Aff(h0, B, t.origin, t.Z))
               for t in upper]
    tooth_aff = {t.fdi: (_Aff(h0, B, t.origin, t.U), _Aff(h0, B, t.origin, t.A), _Aff(h0, B, t.origin, t.M))
                 for t in upper + lower}
    step = max(1, CHUNK_VOXELS // max(1, nj * ni))
    n_up = len(upper)
    for k0 in range(0, nk, step):
        k1 = min(nk, k0 + step)
        full = (k0, k1, 0, nj, 0, ni)
        lo, hi = k0 * nj * ni, k1 * nj * ni
        trab, var = trab_all[lo:hi], slow_all[lo:hi]
        X, Y, Z = X_.block(*full), Y_.block(*full), Z_.block(*full)
        D = np.full(X.shape, hu["air"], np.float32)
        # ---- environment: signed distances of bone, soft tissue, labial plate, blended between planes
        E = [a[0].block(*full) for a in env_aff]
        sdf = _blend_env(upper, envs, env_aff, E, full, n_up)
        soft = _occ(sdf[1], hvox)
        # below the lip line: lower lip and floor of the mouth; a tongue under the palate
        y_arch = np.float32(arch_c) * np.abs(X) ** np.float32(arch_p)
        low = np.maximum(Z - np.float32(z_st - 0.6), (y_arch + np.float32(y_lower_front - 0.85 * lip - 3.0)) - Y)
        np.maximum(soft, _occ(low, hvox), out=soft)
        if vp.tongue is not None:
            top, gap = vp.tongue
            tg = np.maximum(Z - np.float32(p11.crown_len + top), (y_arch + np.float32(y_lower_front + 4.0 + gap)) - Y)
            np.maximum(soft, _occ(tg, hvox), out=soft)
        D = _lerp(D, hu["soft"] + 12.0 * var, soft)
        bone = _occ(sdf[0], hvox)
        D = _lerp(D, np.float32(hu["trab"]) * (1.0 + np.float32(vp.trab_amp) * trab) + 40.0 * var, bone)
        cortex_sdf = np.maximum(sdf[0], -(sdf[0] + np.float32(cortex_mm)))
        cort = np.minimum(bone, np.maximum(_occ(cortex_sdf, hvox), _occ(sdf[2], hvox)))
        D = _lerp(D, hu["cortex"] + 30.0 * var, cort)
        bone_occ = bone
        # ---- teeth in this chunk: distances once, used for bone, PDL / lamina and tissue
        found = []
        for t in lower + upper:
            sub, blk = _sub_block(boxes[t.fdi], k0, k1, nj, ni)
            if sub is None:
                continue
            ua, va, wa = tooth_aff[t.fdi]
            u, v, w = ua.block(*blk), va.block(*blk), wa.block(*blk)
            d_t, d_c, d_p = t.solid.distances(u, v, w)
            found.append((t, sub, v, d_t, d_c, d_p))
        for t, sub, v, d_t, _, _ in found:
            if t.spec.upper:
                continue
            v_crest = np.float32(0.5 * (t.spec.p2d.cej_lab_v + t.spec.p2d.cej_pal_v) + 1.5)
            r = 1.0 + 0.22 * np.clip(v - v_crest, 0.0, None)
            lb = np.maximum(d_t - r, v_crest - v)
            occ = _occ(lb, hvox)
            m = occ > 0
            if m.any():
                bsel, o = sub[m], occ[m]
                D[bsel] = _lerp(D[bsel], np.float32(hu["trab"]) * (1.0 + np.float32(vp.trab_amp) * trab[bsel]), o)
                sh = _occ(np.maximum(lb[m], -(lb[m] + 0.8)), hvox)
                D[bsel] = _lerp(D[bsel], hu["cortex"], np.minimum(o, sh))
                bone_occ[bsel] = np.maximum(bone_occ[bsel], o)
        for t, sub, v, d_t, _, _ in found:
            p = t.spec.p2d
            b = bone_occ[sub]
            o_pdl = _occ(d_t - np.float32(p.pdl), hvox)
            lam = np.minimum(b, _occ(d_t - np.float32(p.pdl + p.lamina), hvox) - o_pdl)
            val = _lerp(D[sub], hu["lamina"], lam)
            D[sub] = _lerp(val, hu["pdl"], np.minimum(b, o_pdl))
        for t, sub, v, d_t, d_c, d_p in found:
            val = D[sub]
            val = _lerp(val, hu["enamel"], _occ(d_t, hvox))
            val = _lerp(val, hu["dentin"], _occ(d_c, hvox))
            val = _lerp(val, hu["pulp"], _occ(d_p, hvox))
            D[sub] = val
        trab_all[lo:hi] = D
    del slow_all
    # ---- scanner: blur, streaks from the crowns, cupping, correlated noise
    sig = [max(vp.psf_mm / s, 0.3) for s in sp_kji]
    out = ndi.gaussian_filter(out, sig, truncate=3.0)
    if noise:
        _artefacts(vp, lay, upper, out, rng)
        nz = rng.standard_normal(out.shape, dtype=np.float32)
        if vp.noise_corr > 0.3:
            nz = ndi.gaussian_filter(nz, vp.noise_corr, truncate=3.0)
            nz /= float(nz.std()) + 1e-6
        nz *= np.float32(vp.noise_hu)
        out += nz
    return out


def _front_y(t: PlacedTooth) -> float:
    """Head y of the lower tooth's labial face (its most anterior crown point)."""
    pts = np.asarray(t.solid.geometry["tooth"].exterior.coords)
    crown = pts[pts[:, 1] < 0]
    head = t.origin + crown[:, :1] * t.U + crown[:, 1:2] * t.A
    return float(head[:, 1].min())


def _blend_env(upper: list[PlacedTooth], envs: dict, env_aff, E: list[np.ndarray], full, n_up: int) -> np.ndarray:
    """Signed distances (bone, soft, labial plate) blended between the planes of adjacent teeth.

    ``E[a]`` is the signed distance of each voxel from tooth a's plane along the arch
    (toward the patient's left). A voxel between the planes of teeth a and a+1 takes
    their outlines weighted by how near it is to each plane; on a plane the weight of
    that tooth is exactly 1. Beyond the last tooth on a side, that tooth alone. Deep
    in the palate, where the planes of the lateral teeth cross, the central incisors'
    outlines take over (so the palate is one piece).
    """
    n = E[0].size
    k0, k1, j0, j1, i0, i1 = full
    nj, ni = j1 - j0, i1 - i0
    cnt = np.zeros(n, np.int8)
    for e in E:
        cnt += e >= 0
    fdis = [t.fdi for t in upper]
    i11, i21 = fdis.index(11), fdis.index(21)
    out = np.zeros((3, n), np.float32)

    def coords(a: int, sel: np.ndarray):
        k = (sel // (nj * ni)).astype(np.float32) + k0
        j = ((sel // ni) % nj).astype(np.float32) + j0
        i = (sel % ni).astype(np.float32) + i0
        xa, ya = env_aff[a][1], env_aff[a][2]
        return (np.float32(xa.c0) + xa.ci * i + xa.cj * j + xa.ck * k,
                np.float32(ya.c0) + ya.ci * i + ya.cj * j + ya.ck * k)

    def add(a: int, sel: np.ndarray, w: np.ndarray, xy=None) -> None:
        m = w > 0
        if not m.any():
            return
        sel, w = sel[m], w[m]
        x, y = coords(a, sel) if xy is None else (xy[0][m], xy[1][m])
        f = np.clip(envs[upper[a].fdi].sample(x, y), -SDF_CLIP, SDF_CLIP)
        out[:, sel] += w[None, :] * f.T

    lo, hi = PALATE_FADE_MM
    for p in range(n_up + 1):
        sel = np.flatnonzero(cnt == p)
        if sel.size == 0:
            continue
        if p == 0 or p == n_up:
            members = [(0 if p == 0 else n_up - 1, np.ones(sel.size, np.float32))]
        else:       # between the planes of teeth p-1 (at or right of the voxel) and p
            ea, eb = E[p - 1][sel], E[p][sel]
            wa = np.clip(-eb / np.maximum(ea - eb, 1e-6), 0.0, 1.0)
            members = [(p - 1, wa), (p, 1.0 - wa)]
        moved = None
        for a, w in members:
            if upper[a].spec.kind == "central":
                add(a, sel, w)
                continue
            x, y = coords(a, sel)
            fade = np.clip((hi - x) / (hi - lo), 0.0, 1.0)
            mv = w * (1.0 - fade)
            moved = mv if moved is None else moved + mv
            add(a, sel, w * fade, (x, y))
        if moved is not None and (moved > 0).any():
            m = np.flatnonzero(moved > 0)
            s2, mv = sel[m], moved[m]
            e11, e21 = E[i11][s2], E[i21][s2]
            c11 = np.where(e11 < 0, 1.0, np.where(e21 >= 0, 0.0, -e21 / np.maximum(e11 - e21, 1e-6)))
            add(i11, s2, (mv * c11).astype(np.float32))
            add(i21, s2, (mv * (1.0 - c11)).astype(np.float32))
    return out


def _index_box(t: PlacedTooth, lay: Layout, h0: np.ndarray, B: np.ndarray, margin: float):
    """Voxel index box (i0, i1, j0, j1, k0, k1) enclosing the tooth plus ``margin`` mm."""
    (u0, u1), (v0, v1), w = t.solid.box(margin)
    corners = np.array([[u, v, s * w] for u in (u0, u1) for v in (v0, v1) for s in (-1, 1)])
    head = t.origin + corners[:, :1] * t.U + corners[:, 1:2] * t.A + corners[:, 2:3] * t.M
    idx = (head - h0) @ np.linalg.inv(B).T
    lo = np.floor(idx.min(axis=0)).astype(int) - 1
    hi = np.ceil(idx.max(axis=0)).astype(int) + 2
    nk, nj, ni = lay.shape
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [ni, nj, nk])
    if np.any(hi <= lo):
        return None
    return (int(lo[0]), int(hi[0]), int(lo[1]), int(hi[1]), int(lo[2]), int(hi[2]))


def _sub_block(box, k0: int, k1: int, nj: int, ni: int):
    """(flat indices into the chunk k0..k1, block (k0, k1, j0, j1, i0, i1)) of ``box``, or (None, None)."""
    if box is None:
        return None, None
    i0, i1, j0, j1, bk0, bk1 = box
    a, b = max(bk0, k0), min(bk1, k1)
    if b <= a:
        return None, None
    k = np.arange(a - k0, b - k0)[:, None, None]
    j = np.arange(j0, j1)[None, :, None]
    i = np.arange(i0, i1)[None, None, :]
    return (k * (nj * ni) + j * ni + i).reshape(-1), (a, b, j0, j1, i0, i1)


def _artefacts(vp: VolumeParams, lay: Layout, upper: list[PlacedTooth], vol: np.ndarray,
               rng: np.random.Generator) -> None:
    """Streaks radiating from the upper crowns in the acquisition planes, and cupping (in place)."""
    # the array axis closest to the patient's superior direction is the scanner's axis
    zdir = lay.R @ np.array([0.0, 0.0, 1.0])
    ax = int(np.argmax(np.abs(lay.directions.T @ zdir)))          # 0: i, 1: j, 2: k
    arr_ax = 2 - ax                                              # numpy axis of vol
    h0, B = _index_to_head(lay)
    Binv = np.linalg.inv(B)
    crown = []
    for t in upper:
        en = np.asarray(t.anatomy["enamel"].centroid.coords)[0]
        crown.append(t.from_plane(en))
    crown = np.asarray(crown)
    cidx = (crown - h0) @ Binv.T                                  # (i, j, k) of each crown centre
    centre = cidx.mean(axis=0)
    shape = vol.shape
    plane_axes = [a for a in range(3) if a != arr_ax]            # numpy axes of the slice
    n_ax = shape[arr_ax]
    pos = np.arange(n_ax)
    c_ax = centre[2 - arr_ax]
    sp_ax = lay.spacing[2 - arr_ax]
    prof = np.exp(-0.5 * ((pos - c_ax) * sp_ax / 5.0) ** 2).astype(np.float32)
    ga, gb = np.meshgrid(np.arange(shape[plane_axes[0]], dtype=np.float32),
                         np.arange(shape[plane_axes[1]], dtype=np.float32), indexing="ij")
    ca, cb = centre[2 - plane_axes[0]], centre[2 - plane_axes[1]]
    sa, sb = lay.spacing[2 - plane_axes[0]], lay.spacing[2 - plane_axes[1]]
    da, db = (ga - ca) * sa, (gb - cb) * sb
    r = np.sqrt(da * da + db * db) + 1e-3
    img = np.zeros_like(r)
    if vp.streaks is not None:
        n, amp = vp.streaks
        for _ in range(n):
            th = rng.uniform(0, np.pi)
            perp = np.abs(da * np.sin(th) - db * np.cos(th))
            wid = rng.uniform(0.15, 0.45)
            img += rng.choice([-1.0, 1.0]) * amp * np.exp(-(perp / wid) ** 2) * np.exp(-r / 25.0)
    rr = (da / (0.5 * shape[plane_axes[0]] * sa)) ** 2 + (db / (0.5 * shape[plane_axes[1]] * sb)) ** 2
    cup = (vp.cupping_hu * (1.0 - np.clip(rr, 0, 1))).astype(np.float32)
    air = vp.hu["air"]
    for p in range(n_ax):
        sl = [slice(None)] * 3
        sl[arr_ax] = p
        s = vol[tuple(sl)]
        body = np.clip((s - air) / 1000.0, 0.0, 1.0)
        s -= cup * body
        if vp.streaks is not None and prof[p] > 0.02:
            s += prof[p] * img * body
        vol[tuple(sl)] = s


def _store(vp: VolumeParams, hu: np.ndarray) -> tuple[np.ndarray, float, float]:
    st = vp.storage
    if st["kind"] == "gray":
        v = (hu - np.float32(vp.hu["air"])) * np.float32(st["gain"]) + np.float32(st["offset"])
        return np.clip(np.rint(v), 0, 65535).astype(np.uint16), 1.0, 0.0
    slope, intercept = float(st["slope"]), float(st["intercept"])
    v = (hu - np.float32(intercept)) / np.float32(slope)
    return np.clip(np.rint(v), -32768, 32767).astype(np.int16), slope, intercept


# --------------------------------------------------------------------------- truth


def _true_axis(t: PlacedTooth, lay: Layout) -> ToothAxis:
    """The tooth's long axis exactly as the measurements define it (CEJ midpoint -> apex)."""
    lm = t.anatomy["landmarks"]
    frame = ToothFrame.from_landmarks(lm, (1.0, 1.0))
    cej2, apex2 = frame.origin, np.asarray(lm["apex"], float)
    pts = np.asarray(t.anatomy["tooth"].exterior.coords)
    s_min = float(((pts - cej2) @ frame.ey).min())
    inc2 = cej2 + s_min * frame.ey
    to = lambda xy: lay.to_lps(t.from_plane(np.asarray(xy, float)))  # noqa: E731
    lab2 = -frame.ex
    labial = lay.vec_to_lps(lab2[0] * t.N + lab2[1] * t.Z)
    md = lay.vec_to_lps(t.M)
    return ToothAxis(t.fdi, incisal=to(inc2), cej=to(cej2), apex=to(apex2), mesiodistal=md, labial=labial,
                     confidence=1.0, notes=["phantom truth"])


def _truth_slice(t: PlacedTooth, axis: ToothAxis, lay: Layout, spacing: float, size_mm, seed: int,
                 style: str) -> tuple[Plane, Annotation]:
    """The 2-D truth of the tooth's central plane in the pixel frame of ``plane_for_tooth``."""
    plane = plane_for_tooth(axis, spacing, size_mm)
    anat = t.anatomy
    # anatomy (X, Y) mm -> plane pixels: an affine map
    base = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    px = plane.lps_to_pixel(lay.to_lps(t.from_plane(base)))
    o, ex, ey = px[0], px[1] - px[0], px[2] - px[0]
    m = [ex[0], ey[0], ex[1], ey[1], o[0], o[1]]
    pab = as_multipolygon(affinity.affine_transform(anat["pab"], m))
    enamel = as_multipolygon(affinity.affine_transform(anat["enamel"], m))
    lm = {k: tuple(float(c) for c in (o + v[0] * ex + v[1] * ey)) for k, v in
          ((k, np.asarray(v, float)) for k, v in anat["landmarks"].items())}
    rows, cols = plane.shape
    name = f"phantom_{style}_{seed:04d}_{t.fdi}"
    ann = Annotation(image_path=name, width=cols, height=rows, pixel_spacing_mm=(spacing, spacing),
                     regions={"PAB": pab, "enamel": enamel}, landmarks=lm,
                     provenance={"generator": GENERATOR, "generator_version": GENERATOR_VERSION,
                                 "seed": seed, "style": style, "tooth": t.fdi, "plane": plane.to_json(),
                                 "regions": {"PAB": "phantom truth", "enamel": "phantom truth"}})
    ann = apply_measurements(Annotation.from_json_dict(ann.to_json_dict(), source=name))
    return plane, ann


def _params_record(vp: VolumeParams, lay: Layout, upper, lower, seconds: float) -> dict[str, Any]:
    r = lambda v: [round(float(x), 4) for x in np.ravel(v)]  # noqa: E731
    return {
        "seed": vp.seed, "style": vp.style, "shape_kji": list(lay.shape), "spacing_ijk_mm": r(lay.spacing),
        "directions": vp.directions_kind, "head_yaw_pitch_roll_deg": r((vp.yaw_deg, vp.pitch_deg, vp.roll_deg)),
        "arch": dict(vp.arch), "lower": dict(vp.lower), "tongue": vp.tongue is not None,
        "hu": {k: round(v, 1) for k, v in vp.hu.items()}, "storage": dict(vp.storage),
        "noise_hu": round(vp.noise_hu, 1), "psf_mm": round(vp.psf_mm, 3),
        "streaks": vp.streaks is not None, "cupping_hu": round(vp.cupping_hu, 1),
        "upper_teeth": [t.fdi for t in upper], "lower_teeth": [t.fdi for t in lower],
        "inclination_deg": {t.fdi: round(t.spec.p2d.tilt_deg, 2) for t in upper},
        "angulation_deg": {t.fdi: round(t.spec.angulation_deg, 2) for t in upper},
        "seconds": round(seconds, 3),
    }


__all__ = ["GENERATOR", "GENERATOR_VERSION", "PhantomVolume", "generate_phantom_volume"]
