"""Where everything lies in a phantom volume: the arch, each tooth's frame, the head pose and the grid.

All positions are in the head frame (x patient's left, y posterior, z superior,
mm) until ``Layout.to_lps`` maps them to the patient frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from .anatomy import AnatomyFrame, build_anatomy
from .solids import Field2D, ToothSolid
from .volume_params import ToothSpec, VolumeParams, head_rotation

ENV_BOUNDS = (-35.0, -40.0, 60.0, 50.0)    # X (posterior), Y (superior) mm of each upper tooth's plane
ENV_H = 0.12
SDF_CLIP = 20.0


@dataclass
class PlacedTooth:
    spec: ToothSpec
    solid: ToothSolid
    origin: np.ndarray          # head frame, tooth-frame origin (u = v = 0)
    U: np.ndarray               # unit: +u (palatal / lingual)
    A: np.ndarray               # unit: +v (apical)
    M: np.ndarray               # unit: +w (mesio-distal, toward distal)
    anatomy: dict[str, Any] | None = None   # upper teeth: the 2-D anatomy of their plane
    N: np.ndarray | None = None             # upper teeth: plane X (posterior) and Y (superior) axes
    Z: np.ndarray | None = None
    arch_dir: np.ndarray | None = None      # unit along the arch toward the patient's left
    env: Field2D | None = None

    @property
    def fdi(self) -> int:
        return self.spec.fdi

    def to_tooth(self, pts: np.ndarray) -> np.ndarray:
        """Head-frame points (..., 3) -> tooth frame (u, v, w)."""
        d = np.asarray(pts, float) - self.origin
        return np.stack([d @ self.U, d @ self.A, d @ self.M], axis=-1)

    def from_plane(self, xy: np.ndarray) -> np.ndarray:
        """Points (..., 2) of the 2-D anatomy (X posterior, Y superior) -> head frame."""
        xy = np.asarray(xy, float)
        return self.origin + xy[..., :1] * self.N + xy[..., 1:2] * self.Z


class Arch:
    """y = c * |x|^p in the head frame's horizontal plane, sampled by arc length from the midline."""

    def __init__(self, c: float, p: float, y0: float = 0.0):
        self.c, self.p, self.y0 = c, p, y0
        x = np.linspace(0.0, 60.0, 6001)
        y = c * x ** p
        ds = np.hypot(np.diff(x), np.diff(y))
        self._x = x
        self._s = np.concatenate([[0.0], np.cumsum(ds)])

    def y(self, x):
        return self.y0 + self.c * np.abs(x) ** self.p

    def point(self, s: float) -> np.ndarray:
        x = float(np.interp(abs(s), self._s, self._x)) * (1 if s >= 0 else -1)
        return np.array([x, float(self.y(x))])

    def inward_normal(self, x: float) -> np.ndarray:
        slope = self.c * self.p * abs(x) ** (self.p - 1) * (1 if x >= 0 else -1)
        n = np.array([-slope, 1.0])
        return n / np.linalg.norm(n)


def _unit(v) -> np.ndarray:
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def _rot_z(v: np.ndarray, deg: float) -> np.ndarray:
    t = math.radians(deg)
    c, s = math.cos(t), math.sin(t)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1], v[2]])


def _frame_2d(anat: dict[str, Any]) -> AnatomyFrame:
    return anat["frame"]


def place_upper(vp: VolumeParams, specs: list[ToothSpec], edge_z: dict[int, float]) -> list[PlacedTooth]:
    """Upper teeth on the arch: crown contact points on the curve, incisal edges at ``edge_z``.

    Crowns are first spaced by their widths along the arch, then pushed apart where
    a tooth's tilt, angulation or rotation would make it run into its neighbour, so
    neighbours touch (within ``gap``) but never overlap.
    """
    arch = Arch(vp.arch["curvature"], vp.arch["exponent"])
    gap = vp.arch["gap"]
    pos: dict[int, float] = {}
    for side in (-1, 1):
        run = 0.0
        for s in sorted([s for s in specs if (s.fdi > 20) == (side > 0)], key=lambda s: s.fdi % 10):
            run += s.md_max + gap / 2
            pos[s.fdi] = side * run
            run += s.md_max + gap / 2
    base = {s.fdi: (s, build_anatomy(s.p2d), ToothSolid(s)) for s in specs}

    def make(fdi: int) -> PlacedTooth:
        spec, anat, solid = base[fdi]
        return _place_one(spec, anat, solid, arch, pos[fdi], edge_z[fdi])

    placed = {f: make(f) for f in pos}
    # push neighbours apart, from the midline outward
    for side in (-1, 1):
        chain = sorted([f for f in pos if (f > 20) == (side > 0)], key=lambda f: f % 10)
        inner = 21 if side < 0 else 11
        for f in chain:
            other = inner if f % 10 == 1 else chain[chain.index(f) - 1]
            for _ in range(6):
                depth = _penetration(placed[other], placed[f])
                need = depth + 0.05
                if need <= 0.02:
                    break
                share = 0.5 if f % 10 == 1 else 1.0
                for g in chain[chain.index(f):]:
                    pos[g] += side * need * share
                    placed[g] = make(g)
    order = sorted(placed, key=lambda f: (-1 if f < 20 else 1) * (f % 10))
    return [placed[f] for f in order]


def _place_one(spec: ToothSpec, anat: dict[str, Any], solid: ToothSolid, arch: "Arch", s_pos: float,
               z_edge: float) -> PlacedTooth:
    fr = _frame_2d(anat)
    xy = arch.point(s_pos)
    left = spec.fdi > 20
    n2 = arch.inward_normal(xy[0])
    N = _unit(_rot_z(np.array([n2[0], n2[1], 0.0]), spec.rotation_deg * (1 if left else -1)))
    zhat = np.array([0.0, 0.0, 1.0])
    D0 = np.cross(N, zhat) if left else np.cross(zhat, N)
    a = math.radians(spec.angulation_deg)
    Z = math.cos(a) * zhat + math.sin(a) * D0
    M = math.cos(a) * D0 - math.sin(a) * zhat
    # 2-D anatomy points: the crown's contact level and its incisal-most point
    v_c = -0.65 * spec.p2d.crown_len
    t_lab, t_pal = solid_surface(solid, v_c)
    contact_2d = fr.pts(np.array([0.5 * (t_lab + t_pal), v_c]))
    tooth_xy = np.asarray(anat["tooth"].exterior.coords)
    y_min = float(tooth_xy[:, 1].min())
    z_q = z_edge + (contact_2d[1] - y_min) * Z[2]
    q = np.array([xy[0], xy[1], z_q])
    origin = q - contact_2d[0] * N - contact_2d[1] * Z
    U = fr.b[0] * N + fr.b[1] * Z
    A = fr.a[0] * N + fr.a[1] * Z
    return PlacedTooth(spec, solid, origin, _unit(U), _unit(A), _unit(M), anatomy=anat, N=N, Z=Z,
                       arch_dir=_unit(M if left else -M))


ROOT_SEPARATION_MM = 1.0      # bone between neighbouring roots (crowns may touch)


def _inside_points(t: PlacedTooth, step: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """Head-frame points inside the tooth (a grid in its own frame) and whether each is in the root."""
    (u0, u1), (v0, v1), w = t.solid.box(0.0)
    u, v, ww = np.meshgrid(np.arange(u0, u1, step), np.arange(v0, v1, step), np.arange(-w, w, step),
                           indexing="ij")
    u, v, ww = u.ravel(), v.ravel(), ww.ravel()
    d, _, _ = t.solid.distances(u.astype(np.float32), v.astype(np.float32), ww.astype(np.float32))
    m = d < 0
    root = v[m] > 0.5
    return t.origin + u[m, None] * t.U + v[m, None] * t.A + ww[m, None] * t.M, root


def _penetration(a: PlacedTooth, b: PlacedTooth) -> float:
    """How far (mm) tooth b must move away from a: crowns must not overlap, and the roots
    must keep ``ROOT_SEPARATION_MM`` of bone between them."""
    pts, root = _inside_points(b)
    if len(pts) == 0:
        return 0.0
    uvw = a.to_tooth(pts)
    d, _, _ = a.solid.distances(uvw[:, 0].astype(np.float32), uvw[:, 1].astype(np.float32),
                                uvw[:, 2].astype(np.float32))
    in_root_a = uvw[:, 1] > 0.5
    need = np.where(root & in_root_a, ROOT_SEPARATION_MM - d, -d)
    return float(max(0.0, need.max()))


def solid_surface(solid: ToothSolid, v: float) -> tuple[float, float]:
    """Labial and palatal u of the profile at level v (tooth frame)."""
    g = solid.geometry["tooth"]
    cut = shapely.LineString([(-50, v), (50, v)]).intersection(g)
    if cut.is_empty:
        return -1.0, 1.0
    b = cut.bounds
    return float(b[0]), float(b[2])


def place_lower(vp: VolumeParams, specs: list[ToothSpec], upper: list[PlacedTooth]) -> list[PlacedTooth]:
    """Lower incisors (and canines) behind the upper crowns: overjet, overbite, lingual tilt."""
    if not specs:
        return []
    ob, oj = vp.lower["overbite"], vp.lower["overjet"]
    c11 = next(t for t in upper if t.fdi == 11)
    c21 = next(t for t in upper if t.fdi == 21)
    z_edge = 0.5 * (_edge_z(c11) + _edge_z(c21))
    # the upper centrals' palatal surface at the contact height, in head y
    z_touch = z_edge + max(ob, 0.0) * 0.5 + 0.3
    y_pal = max(_palatal_y_at(t, z_touch) for t in (c11, c21))
    c_l = vp.arch["curvature"] * (1.05 if vp.arch["kind"] == "parabola" else 1.1)
    arch = Arch(c_l, vp.arch["exponent"], 0.0)
    beta = math.radians(vp.lower["tilt_deg"])
    zhat = np.array([0.0, 0.0, 1.0])
    placed = []
    pos: dict[int, float] = {}
    for side in (-1, 1):
        run = 0.0
        for s in sorted([s for s in specs if (s.fdi < 40) == (side > 0)], key=lambda s: s.fdi % 10):
            run += s.md_max + 0.05
            pos[s.fdi] = side * run
            run += s.md_max + 0.05
    for spec in specs:
        solid = ToothSolid(spec)
        xy = arch.point(pos[spec.fdi])
        left = spec.fdi < 40          # 3x: the patient's left
        n2 = arch.inward_normal(xy[0])
        N = _unit(_rot_z(np.array([n2[0], n2[1], 0.0]), spec.rotation_deg))     # lingual, horizontal
        D0 = np.cross(N, zhat) if left else np.cross(zhat, N)                     # distal, horizontal
        # apical: down, the root tipped lingually by beta and distally by the angulation
        a = math.radians(spec.angulation_deg)
        A = _unit(math.cos(a) * (-math.cos(beta) * zhat + math.sin(beta) * N) + math.sin(a) * D0)
        M = _unit(D0 - (D0 @ A) * A)                                              # distal, across the axis
        U = np.cross(A, M)                                                        # lingual, across both
        if U @ N < 0:
            U = -U
        g = solid.geometry["tooth"]
        pts = np.asarray(g.exterior.coords)
        tip = pts[np.argmin(pts[:, 1])]
        lab_u, _ = solid_surface(solid, float(tip[1]) + 1.5)
        off_tip = tip[0] * U + tip[1] * A
        off_lab = lab_u * U + (tip[1] + 1.5) * A
        z_tip = z_edge + ob
        z_q = z_tip + off_lab[2] - off_tip[2]
        # labial face at the arch point: the arch sits y_pal + overjet behind the midline
        q = np.array([xy[0], xy[1] + y_pal + oj, z_q])
        origin = q - off_lab
        t = PlacedTooth(spec, solid, origin, U, A, M)
        # never into an upper crown: move lingually until clear of every upper tooth
        for _ in range(8):
            depth = max(_penetration(u, t) for u in upper)
            if depth <= 0.0:
                break
            t.origin = t.origin + (depth + 0.2) * N
        placed.append(t)
    return placed


def _edge_z(t: PlacedTooth) -> float:
    pts = np.asarray(t.anatomy["tooth"].exterior.coords)
    return float(t.from_plane(pts)[:, 2].min())


def _palatal_y_at(t: PlacedTooth, z: float) -> float:
    """Head y of the upper tooth's palatal surface at height z (its central plane)."""
    pts = t.from_plane(np.asarray(t.anatomy["tooth"].exterior.coords))
    near = pts[np.abs(pts[:, 2] - z) < 0.6]
    if len(near) == 0:
        near = pts[pts[:, 2] < z + 1.0]
    return float(near[:, 1].max())


@dataclass
class Layout:
    """Head pose and the scan grid."""
    R: np.ndarray               # head -> patient rotation
    t: np.ndarray               # head origin in the patient frame
    origin: np.ndarray          # LPS of voxel (0, 0, 0)
    directions: np.ndarray      # columns: +i, +j, +k
    spacing: tuple[float, float, float]
    shape: tuple[int, int, int]  # (k, j, i)

    def to_lps(self, pts_head: np.ndarray) -> np.ndarray:
        return np.asarray(pts_head, float) @ self.R.T + self.t

    def vec_to_lps(self, v: np.ndarray) -> np.ndarray:
        return np.asarray(v, float) @ self.R.T


def layout(vp: VolumeParams, must_hold: np.ndarray, spacing: tuple[float, float, float],
           max_voxels: int | None, rng: np.random.Generator) -> Layout:
    """The grid: ``vp.fov`` along the grid axes, holding ``must_hold`` (head points) with margins."""
    R = head_rotation(vp.yaw_deg, vp.pitch_deg, vp.roll_deg)
    t = np.array([rng.uniform(-30, 30), rng.uniform(-120, -60), rng.uniform(-80, -20)])
    D = vp.directions
    pts = must_hold @ R.T + t
    sp = list(spacing)
    sizes, lo_edges = [], []
    fov_head = np.asarray(vp.fov)
    for c in range(3):
        d = D[:, c]
        dh = R.T @ d
        length = float(fov_head[int(np.argmax(np.abs(dh)))])
        proj = pts @ d
        lo, hi = float(proj.min()) - 3.0, float(proj.max()) + 3.0
        length = max(length, hi - lo + 1.0)
        free = length - (hi - lo)
        start = lo - free * (1.0 - vp.fov_shift[c])
        sizes.append(length)
        lo_edges.append(start)
    n = [max(2, int(round(sizes[c] / sp[c]))) for c in range(3)]
    if max_voxels is not None and n[0] * n[1] * n[2] > max_voxels:
        f = (n[0] * n[1] * n[2] / max_voxels) ** (1.0 / 3.0)
        sp = [s * f for s in sp]
        n = [max(2, int(round(sizes[c] / sp[c]))) for c in range(3)]
    origin = sum(D[:, c] * (lo_edges[c] + 0.5 * sp[c]) for c in range(3))
    return Layout(R, t, origin, D, (sp[0], sp[1], sp[2]), (n[2], n[1], n[0]))


def env_field(t: PlacedTooth) -> Field2D:
    """Bone, soft tissue and labial plate of an upper tooth's plane as signed distances."""
    anat = t.anatomy
    return Field2D([anat["bone"], anat["soft"], anat["lab_plate"]], ENV_BOUNDS, ENV_H)
