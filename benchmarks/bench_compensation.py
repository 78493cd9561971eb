"""Does boundary compensation bring the palatal PAB boundary closer to the truth?

On held-out phantoms with a faint palatal cortex (style ``faint``) and normal
ones (style ``standard``), it compares the palatal boundary and the PAB with and
without compensation:

* palatal-boundary distance: mean symmetric distance (mm) of the predicted
  palatal curve to the phantom's exact one (``model.evaluate.curve_distance``);
* PAB Dice against the exact region.

Two sources of "predictions":

* ``simulated``: the TRUE PAB with its palatal side displaced inward or outward
  by a smooth random offset (0.25-0.75 mm, +-40 % along the surface) - an
  imperfect prediction with known error. It has no probability map, so
  compensation runs on image evidence alone (as the GUI's "snap to edge").
  Always run; labelled as such.
* ``LU-Net``: the real network (``--model``, default the bundled one) when the
  model file exists.
* ``floor``: the TRUE PAB itself, anti-aliased onto the image's pixel grid and
  contoured the way a prediction is (``probabilities_to_region``): what the
  distance reads for a perfect segmentation at the image's pixel size, the
  lowest any prediction can reach (``--no-floor`` to skip).

``--styles`` picks the phantom styles (default ``faint,standard``; ``shifted``
gives the network's own, larger errors on imaging it has not seen).

Targets (from the project brief): >= 30 % lower distance on faint cases; Dice
never worse on normal ones.

    python benchmarks/bench_compensation.py            # 20 + 20 cases
    python benchmarks/bench_compensation.py --n 40 --model path/to/model.pt
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dentseg_gui.core.geometry import dice, geometry_to_mask  # noqa: E402
from dentseg_gui.core.palatal_boundary import extract_palatal_boundary  # noqa: E402
from dentseg_gui.core.phantom import generate_phantom  # noqa: E402
from dentseg_gui.model.compensation import DEFAULT_PARAMS, compensate, offset_palatal_boundary  # noqa: E402
from dentseg_gui.model.evaluate import curve_distance  # noqa: E402

HELD_OUT_SEED = 7000  # phantom seeds used for training start at 0 and stay far below this


def simulated_prediction(case, rng: np.random.Generator):
    """Truth PAB with the palatal side moved by a smooth random offset (no probability map)."""
    a = case.annotation
    sp = a.pixel_spacing_mm
    amp = rng.uniform(0.25, 0.75) * rng.choice([-1.0, 1.0])
    f = rng.uniform(0.5, 2.0)
    ph = rng.uniform(0, 2 * np.pi)

    def offset(t):
        return amp * (1.0 + 0.4 * np.sin(2 * np.pi * f * t + ph)) * np.clip(t / 0.05, 0.0, 1.0)

    pab = offset_palatal_boundary(a.regions["PAB"], a.landmarks, sp, offset)
    return pab, None, dict(a.landmarks)


def network_prediction(segmenter, case):
    from dentseg_gui.model.predict import probabilities_to_region

    a = case.annotation
    seg = segmenter.segment(case.image, spacing=a.pixel_spacing_mm)
    pab = probabilities_to_region(seg.probs, 1, seg.spacing_used)
    return pab, seg.probs[1], seg.landmarks


def floor_prediction(case):
    """Truth PAB as a perfect network would give it: soft (4x anti-aliased) mask -> contour."""
    import cv2
    from shapely import affinity

    from dentseg_gui.model.predict import probabilities_to_region

    a = case.annotation
    # fine pixel u has its centre at image x = (u + 0.5) / 4 - 0.5 (pixel centres on integers)
    fine = affinity.affine_transform(a.regions["PAB"], [4, 0, 0, 4, 1.5, 1.5])
    big = geometry_to_mask(fine, (4 * a.height, 4 * a.width))
    soft = cv2.resize(big.astype(np.float32), (a.width, a.height), interpolation=cv2.INTER_AREA)
    probs = np.stack([1.0 - soft, soft, np.zeros_like(soft)])
    return probabilities_to_region(probs, 1, a.pixel_spacing_mm), soft, dict(a.landmarks)


def evaluate_case(case, pab, probs, landmarks, band_mm: float, params=DEFAULT_PARAMS) -> dict:
    a = case.annotation
    sp = a.pixel_spacing_mm
    truth_mask = geometry_to_mask(a.regions["PAB"], (a.height, a.width))
    t0 = time.perf_counter()
    res = compensate(case.image.normalized(), pab, landmarks, sp, probs_pab=probs, band_mm=band_mm, params=params)
    dt = time.perf_counter() - t0
    out = {"applied": res.applied, "moved_mm": res.moved_mm, "time_s": dt}
    for key, region in (("before", pab), ("after", res.region)):
        # the curve is taken with the TRUE landmarks: the boundary is judged, not the landmarks
        curve = extract_palatal_boundary(region, a.landmarks, sp)
        out[f"dist_{key}"] = (np.nan if curve is None
                              else curve_distance(curve, case.palatal_boundary, sp))
        out[f"dice_{key}"] = dice(geometry_to_mask(region, (a.height, a.width)), truth_mask)
    return out


def summarise(rows: list[dict]) -> dict:
    b = np.array([r["dist_before"] for r in rows], float)
    a = np.array([r["dist_after"] for r in rows], float)
    d0 = np.array([r["dice_before"] for r in rows])
    d1 = np.array([r["dice_after"] for r in rows])
    return {
        "n": len(rows), "dist_before": np.nanmean(b), "dist_after": np.nanmean(a),
        "dist_change_pct": 100.0 * (np.nanmean(a) - np.nanmean(b)) / np.nanmean(b),
        "dist_median_before": np.nanmedian(b), "dist_median_after": np.nanmedian(a),
        "dice_before": d0.mean(), "dice_after": d1.mean(), "worst_dice_change": float((d1 - d0).min()),
        "n_worse_dice": int(((d1 - d0) < -1e-3).sum()),
        "applied": int(sum(r["applied"] for r in rows)),
        "ms": 1000 * float(np.median([r["time_s"] for r in rows])),
    }


def replace_latency_ms(runs: int = 200) -> tuple[float, int]:
    """Median time of ``replace_palatal_boundary`` for one dragged handle (the GUI's live edit)."""
    from dentseg_gui.core.palatal_boundary import curve_from_handles, replace_palatal_boundary, resample_curve

    case = generate_phantom(HELD_OUT_SEED, "standard")
    a = case.annotation
    pab = a.regions["PAB"]
    curve = extract_palatal_boundary(pab, a.landmarks, a.pixel_spacing_mm)
    handles = resample_curve(curve, 12)
    times = []
    for i in range(runs):
        h = handles.copy()
        h[6] += (i % 7 - 3, 2.0)        # the dragged handle
        new = curve_from_handles(h, 16)
        t0 = time.perf_counter()
        replace_palatal_boundary(pab, curve, new)
        times.append(time.perf_counter() - t0)
    n_vertices = len(pab.geoms[0].exterior.coords) + len(new)
    return 1000 * float(np.median(times)), n_vertices


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="cases per style (default 20)")
    ap.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    ap.add_argument("--model", default=None, help="model file; default the bundled one; 'none' to skip")
    ap.add_argument("--band", type=float, default=1.5, help="search band (mm) of compensation")
    ap.add_argument("--styles", default="faint,standard", help="phantom styles, comma-separated")
    ap.add_argument("--no-floor", action="store_true", help="skip the perfect-segmentation row")
    ap.add_argument("--network-weight", type=float, default=DEFAULT_PARAMS.network_weight,
                    help="weight of the network's vote against the image (default %(default)s; 0 = image only)")
    args = ap.parse_args(argv)
    params = dataclasses.replace(DEFAULT_PARAMS, network_weight=args.network_weight)

    sources = ["simulated"] + ([] if args.no_floor else ["floor"])
    segmenter = None
    if args.model != "none":
        from dentseg_gui.core.errors import ModelError
        from dentseg_gui.model.inference import Segmenter
        try:
            segmenter = Segmenter.load(args.model)
            sources.append("LU-Net")
        except ModelError as exc:
            print(f"note: no network run ({exc})")

    results = {}
    for style in args.styles.split(","):
        for source in sources:
            rows = []
            for i in range(args.n):
                seed = args.seed + i
                case = generate_phantom(seed, style)
                if source == "simulated":
                    pab, probs, lm = simulated_prediction(case, np.random.default_rng([seed, 5]))
                elif source == "floor":
                    pab, probs, lm = floor_prediction(case)
                else:
                    pab, probs, lm = network_prediction(segmenter, case)
                rows.append(evaluate_case(case, pab, probs, lm, args.band, params))
            results[(source, style)] = summarise(rows)

    name = f"{segmenter.name} ({segmenter.sha256[:12]})" if segmenter else "-"
    print(f"\nboundary compensation, {args.n} held-out phantoms per style (seeds {args.seed}..), "
          f"band {args.band} mm, network weight {args.network_weight}, model {name}")
    print("palatal dist = mean symmetric distance (mm) of the predicted palatal curve to the exact one\n")
    hdr = ("| prediction | style | n | palatal dist before | after | change | median before | after "
           "| Dice PAB before | after | worst dDice | cases Dice worse | applied | ms |")
    print(hdr)
    print("|" + "---|" * (hdr.count("|") - 1))
    for (source, style), s in results.items():
        label = {"simulated": "simulated (truth, palatal side displaced; image only)",
                 "floor": "floor (truth, anti-aliased and contoured like a prediction)"}.get(
            source, f"{source} (network probabilities + image)")
        print(f"| {label} | {style} | {s['n']} | {s['dist_before']:.3f} | {s['dist_after']:.3f} | "
              f"{s['dist_change_pct']:+.0f} % | {s['dist_median_before']:.3f} | {s['dist_median_after']:.3f} | "
              f"{s['dice_before']:.3f} | {s['dice_after']:.3f} | {s['worst_dice_change']:+.3f} | "
              f"{s['n_worse_dice']} | {s['applied']}/{s['n']} | {s['ms']:.0f} |")
    ms, nv = replace_latency_ms()
    print(f"\nreplace_palatal_boundary (one dragged handle, ~{nv} vertices): {ms:.2f} ms median of 200")
    return 0


if __name__ == "__main__":
    sys.exit(main())
