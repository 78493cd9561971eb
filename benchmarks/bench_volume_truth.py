"""LU-Net against the exact truth on slices of phantom CBCT *volumes* (another generator).

The phantom volumes (``core/phantom/volume.py``) are rendered in 3-D by a generator the
slice model was never trained on, so their central slices are an independent test of a
model: for each volume and each of 11 and 21 the true labio-palatal plane is resliced at
the volume's finest spacing (48 mm, as ``dentseg slice``), predicted as ``dentseg predict``
does, and compared with the plane's exact annotation. Mean absolute error per measurement
(PAB area in % of the true area), and Dice of the regions.

    python benchmarks/bench_volume_truth.py                                  # bundled model, 10 standard volumes
    python benchmarks/bench_volume_truth.py --model bundled other.pt --styles standard other --n 10
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_detection import predict_plane  # noqa: E402
from dentseg_gui.core.phantom.volume import generate_phantom_volume  # noqa: E402

KEYS = ["root_length_mm", "pab_thickness_25_mm", "pab_thickness_50_mm", "pab_thickness_75_mm",
        "pab_thickness_90_mm", "pab_crest_cej_mm", "pab_height_mm", "pab_area_mm2"]
THICKNESS = KEYS[1:5]


def dice(a, b) -> float:
    if a.is_empty and b.is_empty:
        return 1.0
    inter = a.intersection(b).area
    return 2 * inter / max(a.area + b.area, 1e-9)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", nargs="+", default=["bundled"], help="model files ('bundled' = the shipped one)")
    ap.add_argument("--styles", nargs="+", default=["standard"])
    ap.add_argument("--n", type=int, default=10, help="volumes per style")
    ap.add_argument("--seed0", type=int, default=7000)
    args = ap.parse_args()
    from dentseg_gui.model.predict import Predictor
    predictors = {m: Predictor(None if m == "bundled" else m) for m in args.model}
    for style in args.styles:
        err = {m: {k: [] for k in KEYS + ["dice_pab", "dice_enamel"]} for m in predictors}
        t0 = time.perf_counter()
        for seed in range(args.seed0, args.seed0 + args.n):
            pv = generate_phantom_volume(seed, style)
            for fdi in (11, 21):
                plane, truth = pv.slices[fdi]
                for m, p in predictors.items():
                    ann = predict_plane(p, pv.volume, plane, f"{style}_{seed}_{fdi}")
                    for k in KEYS:
                        a, b = ann.measurements.get(k), truth.measurements.get(k)
                        if a is not None and b is not None:
                            e = abs(float(a) - float(b))
                            err[m][k].append(100 * e / float(b) if k == "pab_area_mm2" else e)
                    err[m]["dice_pab"].append(dice(ann.region("PAB"), truth.region("PAB")))
                    err[m]["dice_enamel"].append(dice(ann.region("enamel"), truth.region("enamel")))
        print(f"\n{style}: {args.n} volumes x 2 teeth, seeds {args.seed0}-{args.seed0 + args.n - 1} "
              f"({time.perf_counter() - t0:.0f} s)")
        print("| model | Dice PAB | Dice enamel | root length mm | thickness mm (4 levels) | crest-CEJ mm "
              "| PAB height mm | PAB area % |")
        print("|---|---|---|---|---|---|---|---|")
        for m, e in err.items():
            mean = {k: float(np.mean(v)) if v else float("nan") for k, v in e.items()}
            thick = float(np.mean([mean[k] for k in THICKNESS]))
            print(f"| {m} | {mean['dice_pab']:.3f} | {mean['dice_enamel']:.3f} | {mean['root_length_mm']:.2f} "
                  f"| {thick:.2f} | {mean['pab_crest_cej_mm']:.2f} | {mean['pab_height_mm']:.2f} "
                  f"| {mean['pab_area_mm2']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
