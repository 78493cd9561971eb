"""Anatomy of a phantom in millimetres: the incisor, its bone, the palate and soft tissue.

Two frames:

* tooth frame ``(u, v)``: ``v`` along the root, apical positive, 0 at the
  cervical line; ``u`` palatal positive. Tooth, enamel, pulp, PDL, the
  alveolar process next to the root and the PAB are drawn here.
* anatomical frame ``(X, Y)``: ``X`` posterior (palatal), ``Y`` superior. The
  tooth frame is rotated by the long-axis tilt into it; the palate, nasal
  floor and lip are drawn here (they are horizontal / vertical in a slice, not
  tied to the tooth axis).

Ground truth follows the PAB extent convention (docs/measurements.md): bone
palatal to the root, from the palatal alveolar crest to the line through the
apex perpendicular to the long axis (the axis from the CEJ midpoint to the
apex, as the measurements define it), bounded by the PDL space (excluded) and
by the outer surface of the palatal cortical plate. Enamel is the whole cap;
the CEJ landmarks are where it ends. Nothing here knows about pixels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import LineString, MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from ..geometry import as_multipolygon, largest_polygon
from ..measurements import ToothFrame
from .params import PhantomParams


class Tooth:
    """Outline functions of the incisor in the tooth frame (u palatal +, v apical +)."""

    def __init__(self, p: PhantomParams):
        self.p = p

    def centre(self, v: np.ndarray) -> np.ndarray:
        p = self.p
        x = np.clip(np.asarray(v, float) / p.root_len, 0.0, None)
        return p.root_curve * x ** 2

    def root_half(self, v: np.ndarray) -> np.ndarray:
        p = self.p
        x = np.clip(np.asarray(v, float) / p.root_len, 0.0, 1.0)
        return p.half_width * (1 - (1 - p.apex_taper) * x) * np.sqrt(np.clip(1 - x ** p.apex_round, 0, 1))

    def root_ref(self, v: np.ndarray) -> np.ndarray:
        """Palatal root surface without the apical rounding: the bone follows this."""
        p = self.p
        x = np.asarray(v, float) / p.root_len
        return self.centre(v) + p.half_width * (1 - (1 - p.apex_taper) * np.clip(x, 0, 1.2))

    def _crown(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.p
        s = np.clip(-np.asarray(v, float) / p.crown_len, 0.0, 1.0)
        lab = (1 - s) * -p.half_width + s * (p.edge_u - p.edge_r) - p.labial_bulge * np.sin(np.pi * s)
        pal = ((1 - s) * p.half_width + s * (p.edge_u + p.edge_r)
               + p.cingulum * np.exp(-((s - 0.18) / 0.14) ** 2) * (s > 0) * np.minimum(1, s / 0.05)
               - p.fossa * np.exp(-((s - 0.58) / 0.22) ** 2))
        return lab, pal

    def labial(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, float)
        lab_c, _ = self._crown(v)
        return np.where(v < 0, lab_c, self.centre(v) - self.root_half(v))

    def palatal(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, float)
        _, pal_c = self._crown(v)
        return np.where(v < 0, pal_c, self.centre(v) + self.root_half(v))

    def enamel_thickness(self, v: np.ndarray, side: str) -> np.ndarray:
        p = self.p
        v = np.asarray(v, float)
        cej = p.cej_lab_v if side == "lab" else p.cej_pal_v
        e_max = p.enamel_lab if side == "lab" else p.enamel_pal
        q = np.clip((cej - v) / (cej + p.crown_len), 0.0, 1.0)
        r = np.minimum(q / 0.5, 1.0)
        return e_max * (1 - (1 - r) ** 2)

    def apex(self) -> tuple[float, float]:
        return float(self.centre(self.p.root_len)), float(self.p.root_len)


def arc(cu: float, cv: float, ru: float, rv: float, a0: float, a1: float, n: int = 16) -> np.ndarray:
    t = np.linspace(a0, a1, n)
    return np.column_stack([cu + ru * np.cos(t), cv + rv * np.sin(t)])


def polygon(pts: np.ndarray) -> Polygon:
    pts = np.asarray(pts, float)
    keep = np.ones(len(pts), bool)
    keep[1:] = np.any(np.abs(np.diff(pts, axis=0)) > 1e-9, axis=1)
    poly = Polygon(pts[keep])
    if not poly.is_valid:
        poly = largest_polygon(shapely.make_valid(poly)) or Polygon()
    return poly


def tooth_geometry(t: Tooth) -> dict[str, Any]:
    """Tooth outline, enamel cap, pulp and landmarks in the tooth frame."""
    p = t.p
    L, Lc = p.root_len, p.crown_len
    tip = arc(p.edge_u, -Lc, p.edge_r, p.edge_r, np.pi, 2 * np.pi, 17)[1:-1]
    # enamel outer surface: CEJ_labial -> round the incisal edge -> CEJ_palatal. The tooth
    # outline reuses these very vertices, so the cap lies exactly on the tooth surface.
    ve_l = np.linspace(p.cej_lab_v, -Lc, 40)
    ve_p = np.linspace(-Lc, p.cej_pal_v, 40)
    outer = np.vstack([np.column_stack([t.labial(ve_l), ve_l]), tip,
                       np.column_stack([t.palatal(ve_p), ve_p])])
    x = np.sin(0.5 * np.pi * np.linspace(0.0, 1.0, 70))        # dense near the apex
    vr_l = (p.cej_lab_v + (L - p.cej_lab_v) * x)[::-1][:-1]     # apex -> just above CEJ_labial
    vr_p = (p.cej_pal_v + (L - p.cej_pal_v) * x)[1:-1]          # just above CEJ_palatal -> near apex
    tooth = polygon(np.vstack([np.column_stack([t.labial(vr_l), vr_l]), outer,
                                np.column_stack([t.palatal(vr_p), vr_p])]))

    # dentin tip: the most incisal level where the dentin is still >= 1.1 mm wide
    vgrid = np.linspace(min(p.cej_lab_v, p.cej_pal_v), -Lc, 200)
    inner_gap = ((t.palatal(vgrid) - t.enamel_thickness(vgrid, "pal"))
                 - (t.labial(vgrid) + t.enamel_thickness(vgrid, "lab")))
    ok = np.flatnonzero(inner_gap >= 1.1)
    v_d = float(vgrid[ok[-1]]) if len(ok) else float(vgrid[len(vgrid) // 2])
    v_d = max(v_d, -Lc + 0.9)
    vi_p = np.linspace(p.cej_pal_v, v_d, 40)[1:]
    vi_l = np.linspace(v_d, p.cej_lab_v, 40)[:-1]
    in_pal = np.column_stack([t.palatal(vi_p) - t.enamel_thickness(vi_p, "pal"), vi_p])
    in_lab = np.column_stack([t.labial(vi_l) + t.enamel_thickness(vi_l, "lab"), vi_l])
    u_dl, u_dp = in_lab[0, 0], in_pal[-1, 0]
    dtip = arc(0.5 * (u_dl + u_dp), v_d, 0.5 * (u_dp - u_dl), 0.5 * (u_dp - u_dl) * 0.9,
                0.0, -np.pi, 13)[1:-1]
    enamel = polygon(np.vstack([outer, in_pal, dtip, in_lab]))

    # pulp: chamber with a horn toward the edge, canal tapering to the apex
    v_h = -p.pulp_horn * Lc
    vp = np.concatenate([np.linspace(v_h, 0.0, 20, endpoint=False), np.linspace(0.0, L - 0.35, 40)])
    mid = 0.5 * (t.labial(vp) + t.palatal(vp))
    width = t.palatal(vp) - t.labial(vp)
    x = np.clip(vp / L, 0, 1)
    half = np.where(vp < 0, p.pulp_w * np.sqrt(np.clip(1 - (vp / v_h) ** 2, 0.02, 1)),
                    p.pulp_apex_w + (p.pulp_w - p.pulp_apex_w) * (1 - x) ** 1.3)
    half = np.minimum(half, 0.22 * width)
    pulp = polygon(np.vstack([np.column_stack([mid - half, vp]),
                               np.column_stack([mid[::-1] + half[::-1], vp[::-1]])]))

    landmarks = {
        "CEJ_labial": (float(t.labial(p.cej_lab_v)), p.cej_lab_v),
        "CEJ_palatal": (float(t.palatal(p.cej_pal_v)), p.cej_pal_v),
        "apex": t.apex(),
    }
    return {"tooth": tooth, "enamel": enamel, "pulp": pulp, "landmarks": landmarks}


def bone_tooth_frame(t: Tooth) -> dict[str, Any]:
    """Alveolar process next to the root (tooth frame): the labial plate outline,
    the palatal surface and the crests. Returns point lists to be joined with the
    palate and nasal floor in the anatomical frame."""
    p = t.p
    L = p.root_len
    v_cl = p.cej_lab_v + p.crest_lab
    v_cp = p.cej_pal_v + p.crest_pal
    v_top = L + p.turn_above_apex

    # palatal thickness: smooth through crest / mid / apex values plus undulation
    def thick(v: np.ndarray) -> np.ndarray:
        x = np.clip((v - v_cp) / max(L - v_cp, 1e-6), 0, 1.3)
        tc, tm, ta = p.pab_t
        base = tc * (1 - x) * (1 - 2 * x) + 4 * tm * x * (1 - x) + ta * x * (2 * x - 1)
        base = np.maximum(base, min(tc, tm, ta))
        wave = sum(a * np.sin(2 * np.pi * v / lam + ph) for a, lam, ph in p.pab_wave)
        return np.maximum(base + wave, p.pab_min_thick)

    # palatal outer surface u_s(v), from the crest to the turn into the palate
    r_c = min(1.2, 0.5 * p.pab_t[0] + 0.3) if p.crest_round is None else p.crest_round  # crest rounding height
    vs = np.linspace(v_cp + r_c, v_top, 60)
    surf = np.column_stack([t.root_ref(vs) + p.pdl + thick(vs), vs])
    # crest cap: from the root surface at the crest level out to the surface, bulging coronally
    u_in = float(t.palatal(v_cp))
    u_out = float(surf[0, 0])
    crest = np.column_stack([u_in + (u_out - u_in) * np.linspace(0, 1, 12) ** p.crest_exp,
                             v_cp + r_c * (1 - np.cos(0.5 * np.pi * np.linspace(0, 1, 12)))])
    pal_line = np.vstack([crest, surf[1:]])              # coronal -> apical along the bone surface

    # labial plate outer surface
    vl = np.linspace(v_cl + 0.4, L + 0.5, 40)
    xl = np.clip((vl - v_cl) / (L - v_cl), 0, 1.1)
    plate = p.lab_plate_crest + (p.lab_plate_apex - p.lab_plate_crest) * xl ** 0.8
    lab_surf = np.column_stack([t.labial(vl) - p.pdl - plate, vl])
    # labial crest: from the root surface to the plate surface
    u_lin = float(t.labial(v_cl))
    lab_crest = np.column_stack([u_lin + (lab_surf[0, 0] - u_lin) * np.linspace(0, 1, 8) ** 0.7,
                                 v_cl + 0.4 * (1 - np.cos(0.5 * np.pi * np.linspace(0, 1, 8)))])
    lab_line = np.vstack([lab_crest, lab_surf[1:]])      # coronal -> apical
    # the labial plate itself (outer surface to the root): rendered all cortical
    vin = vl[::-1]
    lab_plate = polygon(np.vstack([lab_line, np.column_stack([t.labial(vin) + 0.05, vin])]))
    return {"pal_line": pal_line, "lab_line": lab_line, "v_cp": v_cp, "v_cl": v_cl, "thick": thick,
            "lab_plate": lab_plate}


# --------------------------------------------------------------------------- anatomy frame


def bezier(p0, p1, p2, p3, n: int = 30) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    p0, p1, p2, p3 = (np.asarray(q, float) for q in (p0, p1, p2, p3))
    return ((1 - t) ** 3) * p0 + 3 * ((1 - t) ** 2) * t * p1 + 3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3


class AnatomyFrame:
    """Tooth frame -> anatomical frame (X posterior, Y superior), rotation by the tilt."""

    def __init__(self, tilt_rad: float):
        s, c = math.sin(tilt_rad), math.cos(tilt_rad)
        self.a = np.array([s, c])     # apical
        self.b = np.array([c, -s])    # palatal

    def pts(self, uv: np.ndarray) -> np.ndarray:
        uv = np.asarray(uv, float)
        return uv[..., :1] * self.b + uv[..., 1:2] * self.a

    def geom(self, g: BaseGeometry) -> BaseGeometry:
        a, b = self.a, self.b
        return affinity.affine_transform(g, [b[0], a[0], b[1], a[1], 0.0, 0.0])

    def vec(self, duv) -> np.ndarray:
        return duv[0] * self.b + duv[1] * self.a


def build_anatomy(p: PhantomParams) -> dict[str, Any]:
    """Every structure as a shapely polygon in the anatomical frame (mm)."""
    t = Tooth(p)
    tg = tooth_geometry(t)
    lm_t = tg["landmarks"]
    # the axis exactly as the measurements define it (points already in mm: unit spacing)
    frame_t = ToothFrame.from_landmarks(lm_t, (1.0, 1.0))
    x_t, y_t = frame_t.ex, frame_t.ey
    phi = math.atan2(y_t[0], y_t[1])                    # measured axis vs the v axis
    fr = AnatomyFrame(math.radians(p.tilt_deg) - phi)         # so the measured tilt is tilt_deg

    tooth_t = tg["tooth"]
    pdl_outer_t = tooth_t.buffer(p.pdl, quad_segs=16)
    bt = bone_tooth_frame(t)
    L = p.root_len

    # --- alveolar process + palate + nasal floor, one outline in the anatomical frame
    pal_line = fr.pts(bt["pal_line"])                    # crest -> top of the alveolar surface
    lab_line = fr.pts(bt["lab_line"])
    top_pal = pal_line[-1]
    dir_pal = pal_line[-1] - pal_line[-4]
    dir_pal /= np.linalg.norm(dir_pal)
    y_vault = top_pal[1] + p.vault_rise
    y_nf = y_vault + p.palate_thick
    far = 120.0
    vault = bezier(top_pal, top_pal + 3.0 * dir_pal, (top_pal[0] + 5.0, y_vault),
                    (top_pal[0] + 14.0, y_vault), 24)
    top_lab = lab_line[-1]
    dir_lab = lab_line[-1] - lab_line[-4]
    dir_lab /= np.linalg.norm(dir_lab)
    ans_base = np.array([top_lab[0] - 1.5, y_nf - 1.6])
    if ans_base[1] < top_lab[1] + 1.0:
        ans_base[1] = top_lab[1] + 1.0
    front = bezier(top_lab, top_lab + 1.5 * dir_lab, ans_base + np.array([0.5, -1.5]), ans_base, 16)
    ans_tip = np.array([ans_base[0] - p.ans_len, max(y_nf - 0.3, ans_base[1] + 0.4)])
    nf_start = np.array([ans_base[0] + 1.0, max(y_nf, ans_base[1] + 0.8)])
    outline = np.vstack([
        lab_line,                                        # labial crest -> up the labial plate
        front[1:], [ans_tip], [nf_start],                # anterior maxilla, ANS, nasal floor
        [[far, nf_start[1] + 0.5], [far, y_vault]],      # far posterior
        vault[::-1][1:], pal_line[::-1][1:],             # palate -> down the palatal surface -> crest
    ])
    bone = polygon(outline)

    tooth = fr.geom(tooth_t)
    pdl_outer = fr.geom(pdl_outer_t)
    enamel = fr.geom(tg["enamel"])
    pulp = fr.geom(tg["pulp"])
    lm = {k: tuple(fr.pts(np.asarray(v))) for k, v in lm_t.items()}

    # --- incisive canal: a channel inside the palatal bone, from mid-root up through the palate
    canal = Polygon()
    if p.canal is not None:
        rel, w = p.canal
        vv = np.linspace(0.45 * L, L + p.turn_above_apex, 20)
        inner = t.root_ref(vv) + p.pdl + p.lamina
        outer_u = t.root_ref(vv) + p.pdl + bt["thick"](vv) - p.cortex
        room = outer_u - inner
        if np.all(room > w + 0.6):
            cu = inner + 0.3 + w / 2 + rel * (room - w - 0.6)
            line_t = np.column_stack([cu, vv])
            line = fr.pts(line_t)
            ext = line[-1] + fr.a * 15.0
            canal_line = LineString(np.vstack([line, ext]))
            canal = canal_line.buffer(w / 2, quad_segs=8)
            canal = canal.intersection(bone.buffer(-0.0))

    # --- PAB truth: bone, palatal of the root centre line, below the apex-level line
    v_lo = -p.crown_len - 10.0
    vcl = np.linspace(v_lo, L + 20.0, 80)
    cen = t.centre(np.clip(vcl, 0, L)) + np.where(vcl > L, 2 * p.root_curve / L * (vcl - L), 0.0)
    half_pal_t = polygon(np.vstack([np.column_stack([cen, vcl]), [[200.0, L + 20.0], [200.0, v_lo]]]))
    ap_t = np.asarray(lm_t["apex"])
    cap_t = Polygon([ap_t - 300 * x_t, ap_t + 300 * x_t, ap_t + 300 * x_t - 300 * y_t,
                     ap_t - 300 * x_t - 300 * y_t])
    half_pal, cap = fr.geom(half_pal_t), fr.geom(cap_t)
    pab = bone.intersection(half_pal).intersection(cap).difference(pdl_outer)
    if not canal.is_empty:
        pab = pab.difference(canal)
    pab = as_multipolygon(pab)
    pab = MultiPolygon([g for g in pab.geoms if g.area > 0.05])
    pal_boundary = LineString(pal_line).difference(pdl_outer).intersection(cap)
    pal_boundary = longest_line(pal_boundary)

    # --- soft tissue and the lower incisor
    soft, extra_teeth, extra_bone, y_inc = soft_tissue(p, t, fr, tooth, bone, ans_tip, y_nf, y_vault)

    return {
        "frame": fr, "tooth": tooth, "enamel": enamel, "pulp": pulp, "pdl_outer": pdl_outer,
        "bone": bone, "canal": canal, "pab": pab, "pal_boundary": pal_boundary,
        "pal_surface": LineString(pal_line), "soft": soft, "landmarks": lm,
        "extra_teeth": extra_teeth, "extra_bone": extra_bone, "y_inc": y_inc, "tooth_t": tooth_t,
        "lab_plate": fr.geom(bt["lab_plate"]).intersection(bone),
    }


def soft_tissue(p: PhantomParams, t: Tooth, fr: AnatomyFrame, tooth: Polygon, bone: Polygon,
                 ans_tip: np.ndarray, y_nf: float, y_vault: float):
    """Lips, mucosa, gingiva, tongue and the lower incisor (anatomical frame, mm).

    Returns (soft tissue geometry, [(lower tooth, enamel, pulp)], lower alveolar bone, Y of
    the upper incisal edge)."""
    L = p.root_len
    coords = np.asarray(tooth.exterior.coords)
    y_inc = float(coords[:, 1].min())
    x_lab_ref = float(coords[:, 0].min())
    y_st = y_inc + p.lip_line                            # stomion (lip line)
    far = 120.0
    y_bot = y_inc - 40.0

    # upper lip profile: vermilion bulge, subnasale hollow, then the nose tip forward
    y_sn = y_nf + 1.5
    yy = np.linspace(y_st, y_nf + 40.0, 40)
    q = np.clip((yy - y_st) / max(y_sn - y_st, 3.0), 0.0, 1.0)
    bulge = 1.8 * np.sin(np.pi * np.minimum(q / 0.7, 1.0)) * (q < 0.7) - 0.8 * np.sin(np.pi * q) ** 2 * (q >= 0.4)
    nose = np.clip(yy - y_sn, 0.0, None)
    x_skin = x_lab_ref - p.lip_thick - bulge + 0.12 * (yy - y_st) - 0.9 * nose
    skin = np.column_stack([x_skin, yy])
    lip_bottom = bezier(skin[0], skin[0] + [2.0, -2.5], [x_lab_ref - 1.0, y_st - 2.0],
                         [x_lab_ref + 1.5, y_st - 0.5], 14)
    # inner edge: up the tooth's long axis (inside tooth and bone), then up past the ANS
    axis_pts = np.vstack([fr.pts(np.array([[0.0, v] for v in np.linspace(-p.crown_len * 0.6, L, 8)])),
                          [[ans_tip[0] + 4.0, y_nf - 1.0], [ans_tip[0] + 4.0, y_nf + 40.0]]])
    lip = polygon(np.vstack([skin[::-1], lip_bottom[1:], axis_pts]))
    vv = np.linspace(-2.0, 3.5, 12)
    neck_t = Polygon(np.vstack([np.column_stack([t.labial(vv) - p.gingiva, vv]),
                                np.column_stack([t.palatal(vv[::-1]) + p.gingiva, vv[::-1]])]))
    parts = [lip, bone.buffer(p.mucosa, quad_segs=6), fr.geom(neck_t)]

    # lower incisor crown behind ours (overjet / overbite), its alveolus and the lower lip
    extra_teeth, extra_bone = [], Polygon()
    x_behind = float(coords[:, 0].max()) + 1.5
    if p.lower_incisor is not None:
        overjet, overbite, ltilt = p.lower_incisor
        pl = PhantomParams(**{**p.__dict__})
        pl.root_len, pl.crown_len, pl.half_width, pl.edge_u = 12.5, 8.0, 2.9, 0.0
        pl.cingulum, pl.fossa, pl.root_curve = 0.3, 0.3, 0.0
        lg = tooth_geometry(Tooth(pl))
        lfr = AnatomyFrame(math.radians(180.0 + ltilt))        # crown up, root down
        mirror = [-1.0, 0.0, 0.0, 1.0, 0.0, 0.0]          # lingual side faces posterior
        ltooth, lenamel, lpulp = (affinity.affine_transform(lfr.geom(lg[k]), mirror)
                                  for k in ("tooth", "enamel", "pulp"))
        lb = np.asarray(ltooth.exterior.coords)
        l_top = lb[np.argmax(lb[:, 1])]
        y_contact = y_inc + overbite
        cut = LineString([(-200.0, y_contact - 0.5), (200.0, y_contact - 0.5)]).intersection(tooth)
        x_pal = float(cut.bounds[2]) if not cut.is_empty else float(coords[:, 0].max())
        near_top = lb[lb[:, 1] > l_top[1] - 1.0]
        dx = x_pal + overjet - float(np.min(near_top[:, 0]))
        dy = y_contact - l_top[1]
        ltooth, lenamel, lpulp = (affinity.translate(g, dx, dy) for g in (ltooth, lenamel, lpulp))
        ltooth = largest_polygon(ltooth.difference(tooth.buffer(0.15))) or Polygon()
        lenamel = lenamel.intersection(ltooth)
        lpulp = lpulp.intersection(ltooth)
        extra_teeth.append((ltooth, lenamel, lpulp))
        # lower alveolar bone round the root, from ~1.5 mm below its CEJ, rounded crest
        y_lcrest = y_contact - pl.crown_len - pl.edge_r - 1.5
        lower_half = box(-200.0, y_bot - 20.0, 200.0, y_lcrest)
        socket = ltooth.buffer(0.9, quad_segs=8).intersection(lower_half)
        extra_bone = as_multipolygon(socket.buffer(-0.6, quad_segs=8).buffer(0.6, quad_segs=8))
        lbx = np.asarray(ltooth.exterior.coords)
        lx = float(lbx[:, 0].min())
        x_behind = float(lbx[:, 0].max()) + 1.0
        # lower lip: in front of the lower incisor, touching its labial face, convex in front
        low_y = np.linspace(y_st - 0.6, y_bot, 14)
        lab_x = np.array([x_at(ltooth.union(extra_bone), y, side="min", default=lx) for y in low_y]) + 0.3
        qq = np.clip((y_st - low_y) / 9.0, 0.0, 1.0)
        front_x = lx - p.lip_thick * 0.85 - 2.0 * np.sin(np.pi * np.minimum(qq / 0.6, 1.0)) * (qq < 0.6) \
            + 1.5 * np.clip(qq - 0.6, 0.0, None)
        low_lip = polygon(np.vstack([np.column_stack([lab_x, low_y]),
                                      np.column_stack([front_x[::-1], low_y[::-1]])]))
        parts += [low_lip, extra_bone.buffer(0.8)]
    else:
        parts.append(polygon(np.array([[x_lab_ref - p.lip_thick * 0.9, y_st - 0.6],
                                        [x_lab_ref + 2.0, y_st - 0.6], [x_lab_ref + 3.0, y_bot],
                                        [x_lab_ref - p.lip_thick - 1.0, y_bot]])))
    if p.tongue is not None:
        gap, size = p.tongue
        x0 = x_behind + 1.0 + 2.0 * (1.0 - size)
        y0 = y_inc - 1.0 - 3.0 * (1.0 - size)
        dorsum = bezier([x0, y0], [x0 + 2.0, y_vault - 2.0], [x0 + 10.0, y_vault + 2.0],
                         [far, y_vault - 1.0], 30)
        tongue = polygon(np.vstack([dorsum, [[far, y_bot], [x0 + 1.0, y_bot]]]))
        tongue = tongue.difference(bone.buffer(p.mucosa + gap, quad_segs=6))
        tongue = tongue.difference(tooth.buffer(0.6 + 0.3 * gap))
        for lt_, _, _ in extra_teeth:
            tongue = tongue.difference(lt_.buffer(0.4))
        parts.append(tongue)
    soft = shapely.union_all(parts)
    # nasal cavity: air above the nasal floor mucosa, its front edge the curved nasal vestibule
    front = bezier([ans_tip[0] + 3.0, y_nf + 1.2], [ans_tip[0] + 0.5, y_nf + 4.0],
                    [ans_tip[0] + 0.5, y_nf + 9.0], [ans_tip[0] + 3.5, y_nf + 60.0], 16)
    nasal_air = polygon(np.vstack([front[::-1], [[far, y_nf + 1.2], [far, y_nf + 60.0]]]))
    soft = soft.difference(nasal_air)
    return soft, extra_teeth, extra_bone, y_inc


def x_at(g: BaseGeometry, y: float, side: str, default: float) -> float:
    """Leftmost ("min") or rightmost ("max") x of ``g`` on the horizontal line at ``y``."""
    cut = LineString([(-500.0, y), (500.0, y)]).intersection(g)
    if cut.is_empty:
        return default
    return float(cut.bounds[0] if side == "min" else cut.bounds[2])


def longest_line(g: BaseGeometry) -> LineString:
    if g.is_empty:
        return LineString()
    if isinstance(g, LineString):
        return g
    lines = [q for q in getattr(g, "geoms", []) if isinstance(q, LineString)]
    if not lines:
        return LineString()
    merged = shapely.line_merge(shapely.MultiLineString(lines))
    if isinstance(merged, LineString):
        return merged
    return max(merged.geoms, key=lambda q: q.length)
