"""The 2-D phantom: one sagittal slice of an upper central incisor with its exact annotation.

A phantom is built as geometry first, in millimetres (``anatomy``), placed in
the image (``placement``) and rendered *from that geometry* (``render``). The
regions written to the annotation are the same polygons, so the truth is exact,
not traced from pixels. Image pixels: ``x = (p*X + ox) / col_spacing``,
``y = (-Y + oy) / row_spacing`` with ``p = +1`` when the patient faces left
(palatal to the right) and ``p = -1`` when facing right. Pixel centre
``(row i, col j)`` is at ``(x=j, y=i)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import LineString

from ..annotation import Annotation, save_annotation
from ..atomic import atomic_write_bytes
from ..errors import DentsegError
from ..geometry import as_multipolygon
from ..image import SliceImage
from ..measurements import apply_measurements
from .anatomy import build_anatomy
from .params import STYLES, PhantomStyleError, check_seed, check_style
from .styles import sample_params
from .placement import Placement, place
from .render import contrast_curve, render_density, store_values

GENERATOR = "dentseg phantom"
GENERATOR_VERSION = 1


@dataclass
class PhantomCase:
    """One synthetic case: the image, its exact annotation and extra truth.

    ``palatal_boundary`` is the exact palatal (bone / soft-tissue) boundary of
    the PAB in pixel coordinates: from the crest corner at the PDL, over the
    crest and up the outer cortical surface to the apex-level line. Boundary
    compensation is evaluated against it. ``faint`` says whether the palatal
    cortical surface was rendered faint / blurred.
    """

    image: SliceImage
    annotation: Annotation
    palatal_boundary: LineString
    faint: bool
    params: dict[str, Any] = field(default_factory=dict)


def generate_phantom(seed: int, style: str = "standard") -> PhantomCase:
    """One synthetic case; the same ``seed`` and ``style`` always give the same case.

    ``style``: ``standard`` (training distribution, ~25 % faint palatal cortex),
    ``faint`` (every case faint), ``shifted`` (other spacing, contrast, noise,
    blur, field of view: for robustness tests), ``demo`` (one clean typical case).
    """
    check_style(style)
    seed = check_seed(seed)
    p = sample_params(seed, style)
    anat = build_anatomy(p)
    pl = place(p, anat)
    to_px = pl.geom

    m_per_px = 1.0 / (0.5 * (p.spacing[0] + p.spacing[1]))
    bone = anat["bone"]
    lam = anat["pdl_outer"].buffer(p.lamina, quad_segs=8).difference(anat["pdl_outer"]).intersection(bone)
    pdl = anat["pdl_outer"].intersection(bone)
    px = {
        "soft": to_px(anat["soft"]), "bone": to_px(bone), "canal": to_px(anat["canal"]),
        "extra_bone": to_px(anat["extra_bone"]), "lab_plate": to_px(anat["lab_plate"]),
        "lamina": to_px(lam), "pdl": to_px(pdl), "tooth": to_px(anat["tooth"]),
        "enamel": to_px(anat["enamel"]), "pulp": to_px(anat["pulp"]),
        "extra_teeth": [tuple(to_px(g) for g in trio) for trio in anat["extra_teeth"]],
        "cortex_px": p.cortex * m_per_px, "lamina_px": p.lamina * m_per_px,
    }
    if p.faint:
        surf = anat["pal_surface"]
        zone = surf.buffer(1.6, quad_segs=6)
        px["faint_in"] = to_px(zone.intersection(bone).difference(anat["pdl_outer"].buffer(p.lamina)))
        px["faint_out"] = to_px(surf.buffer(1.2, quad_segs=6).difference(bone).difference(anat["tooth"]))
        px["faint_zone"] = to_px(zone.difference(anat["tooth"]))
    if p.ghost is not None:
        du, dv, _ = p.ghost
        fr = anat["frame"]
        off = fr.vec((du, dv))
        ghost = affinity.rotate(anat["tooth"], 3.0 * du, origin=anat["tooth"].centroid)
        px["ghost"] = to_px(affinity.translate(ghost, off[0], off[1]).difference(anat["tooth"]))

    if p.cortex_breaks or p.cervical_fade is not None or p.metal is not None:
        from . import features
        if p.cortex_breaks:
            px["cortex_breaks"] = to_px(features.cortex_breaks(p, anat))
        if p.cervical_fade is not None:
            px["cervical_fade"] = to_px(features.cervical_zone(p, anat))
        if p.metal is not None:
            px["metal"] = to_px(features.bracket(p, anat))
    key_box = to_px(shapely.union_all([anat["tooth"], anat["pab"], anat["enamel"]])).bounds
    margin_px = (1.0 / pl.spacing[1], 1.0 / pl.spacing[0])     # 1 mm round the key structures

    rng = np.random.default_rng([seed, 41, STYLES.index(style)])
    extra_params: dict[str, Any] = {}
    if p.renderer == "site2":
        from .render_site2 import render_site2, store_hu
        px.update(pab=to_px(anat["pab"]), key_box=key_box,
                  landmarks={k: tuple(pl.pts(np.asarray(v)[None, :])[0]) for k, v in anat["landmarks"].items()})
        stored, pixels = store_hu(p, render_site2(p, px, pl, rng))
        bits, kind, ext = 16, "dicom", "dcm"
        extra_params["dicom"] = {"stored": stored, "intercept": p.site2["intercept"]}
    else:
        density = contrast_curve(p, render_density(p, px, pl, rng))
        if p.pad is not None:
            from .features import pad_borders
            density = pad_borders(density, p, key_box, margin_px)
        stored, bits = store_values(p, density)
        pixels = stored.astype(np.float32)
        kind, ext = ("png", "png") if bits == 8 else ("tiff", "tif")
    if p.crop is not None:
        from .features import crop_window
        x0, y0, x1, y1 = crop_window(p, pixels.shape, key_box, margin_px)
        pixels = pixels[y0:y1, x0:x1]
        a, b, d, e, xo, yo = pl.matrix
        pl = Placement(y1 - y0, x1 - x0, pl.spacing, [a, b, d, e, xo - x0, yo - y0])
        to_px = pl.geom
    name = f"case_{seed:04d}.{ext}"

    facing = "left" if p.facing_left else "right"
    image = SliceImage(np.ascontiguousarray(pixels, dtype=np.float32),
                       (float(pl.spacing[0]), float(pl.spacing[1])), "",
                       kind=kind, bit_depth=bits, meta={"phantom_seed": seed, "phantom_style": style})
    pab_px = as_multipolygon(to_px(anat["pab"]))
    enamel_px = as_multipolygon(to_px(anat["enamel"]))
    lm_px = {k: tuple(float(c) for c in pl.pts(np.asarray(v)[None, :])[0]) for k, v in anat["landmarks"].items()}
    boundary_px = to_px(anat["pal_boundary"])
    ann = Annotation(
        image_path=name, width=pl.width, height=pl.height,
        pixel_spacing_mm=(float(pl.spacing[0]), float(pl.spacing[1])),
        regions={"PAB": pab_px, "enamel": enamel_px}, landmarks=lm_px,
        provenance={
            "generator": GENERATOR, "generator_version": GENERATOR_VERSION, "seed": seed,
            "style": style, "faint_palatal_cortex": bool(p.faint), "facing": facing,
            "tilt_deg": round(p.tilt_deg, 3),
            "regions": {"PAB": "phantom truth", "enamel": "phantom truth"},
        },
        extra={"phantom_truth": {
            "palatal_boundary": [[round(x, 4), round(y, 4)] for x, y in boundary_px.coords],
            "faint_palatal_cortex": bool(p.faint),
        }},
    )
    # measured on the JSON-round-tripped geometry, so the stored values match a reader's
    ann = apply_measurements(Annotation.from_json_dict(ann.to_json_dict(), source=name))
    params = {"tilt_deg": p.tilt_deg, "root_len_mm": p.root_len, "crown_len_mm": p.crown_len,
              "spacing_mm": pl.spacing, "facing": facing, "bits": bits,
              "pab_thickness_mm": p.pab_t, "pdl_mm": p.pdl, **extra_params}
    return PhantomCase(image=image, annotation=ann, palatal_boundary=boundary_px,
                       faint=bool(p.faint), params=params)


def write_phantom_set(out_dir: str | os.PathLike, n: int, seed: int = 0,
                      style: str = "standard") -> list[Path]:
    """Write ``n`` cases ``case_{seed+k:04d}.png|.tif`` + ``.dentseg.json`` into ``out_dir``.

    Case ``k`` uses seed ``seed + k``, so any case can be regenerated alone.
    Returns the image paths. 8-bit cases are PNG, 16-bit cases TIFF (uint16).
    """
    check_style(style)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise PhantomStyleError(f"number of phantom cases must be a non-negative integer, got {n!r}")
    seed = check_seed(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(int(n)):
        case = generate_phantom(seed + k, style)
        img_path = out / case.annotation.image_path
        if case.image.kind == "dicom":
            from .dicom_out import write_ct_slice
            dc = case.params["dicom"]
            write_ct_slice(img_path, dc["stored"], case.image.spacing_mm, dc["intercept"], seed + k)
        else:
            ext = ".png" if case.image.bit_depth == 8 else ".tif"
            dtype = np.uint8 if case.image.bit_depth == 8 else np.uint16
            ok, buf = cv2.imencode(ext, case.image.pixels.astype(dtype))
            if not ok:
                raise DentsegError(f"could not encode phantom image {img_path.name}")
            atomic_write_bytes(img_path, buf.tobytes())
        save_annotation(case.annotation, out / (img_path.stem + ".dentseg.json"))
        paths.append(img_path)
    return paths
