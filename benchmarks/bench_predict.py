"""Full-prediction latency and end-to-end accuracy of ``dentseg predict``.

1. Latency: ``Predictor.predict_image`` on one 384 x 384 slice (network +
   regions + boundary compensation + landmarks + measurements; model already
   loaded), 2 warm-up runs then the median of ``--runs`` (default 20), with the
   median of each stage.
2. Accuracy on held-out phantoms (seeds from 9000, never used for training) of the
   styles ``standard`` (training distribution), ``shifted`` (other spacing, contrast,
   noise, blur and field of view) and ``site2`` (another scanner and generator, CT
   DICOM in Hounsfield units; never trained or tuned on), optionally ``wide`` and
   ``faint``: Dice PAB / enamel, PAB HD95, palatal-boundary distance, landmark MRE,
   mean absolute thickness error over the four contract levels, PAB height and
   crest-to-CEJ error, PAB area error (%). The pixel spacing is passed as a user
   would with ``--spacing``.

    python benchmarks/bench_predict.py                 # bundled model, 20 cases per style
    python benchmarks/bench_predict.py --model m.pt --n 40 --styles standard site2 --compensation both
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dentseg_gui.core.image import SliceImage  # noqa: E402
from dentseg_gui.core.phantom import generate_phantom  # noqa: E402
from dentseg_gui.model.evaluate import evaluate_pair, summarize  # noqa: E402
from dentseg_gui.model.predict import Predictor  # noqa: E402

HELD_OUT_SEED = 9000
THICKNESS_KEYS = ("pab_thickness_25_mm", "pab_thickness_50_mm", "pab_thickness_75_mm", "pab_thickness_90_mm")


def slice_384(seed: int = HELD_OUT_SEED) -> SliceImage:
    """A 384 x 384 phantom slice: the phantom cropped / padded around its tooth."""
    case = generate_phantom(seed, "standard")
    px = case.image.pixels
    cx, cy = (int(v) for v in case.annotation.regions["PAB"].centroid.coords[0])
    out = np.full((384, 384), float(np.percentile(px, 1)), np.float32)
    y0, x0 = cy - 192, cx - 192
    sy0, sx0 = max(0, y0), max(0, x0)
    sy1, sx1 = min(px.shape[0], y0 + 384), min(px.shape[1], x0 + 384)
    out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = px[sy0:sy1, sx0:sx1]
    return SliceImage(out, case.image.spacing_mm, "", kind="array", bit_depth=case.image.bit_depth)


def latency(predictor: Predictor, runs: int) -> dict:
    img = slice_384()
    for _ in range(2):
        predictor.predict_image(img)
    stages: dict[str, list[float]] = {}
    for _ in range(runs):
        t = predictor.predict_image(img).timings
        for k, v in t.items():
            stages.setdefault(k, []).append(v)
    return {k: 1000 * statistics.median(v) for k, v in stages.items()}


def accuracy(model, style: str, n: int, seed: int, compensation: bool) -> dict:
    pred = Predictor(model, compensation=compensation)
    metrics = []
    for i in range(n):
        case = generate_phantom(seed + i, style)
        truth = case.annotation
        res = pred.predict_image(case.image, spacing=truth.pixel_spacing_mm)
        m = evaluate_pair(res.annotation, truth)
        th = [m["abs_error"][k] for k in THICKNESS_KEYS if m["abs_error"][k] is not None]
        m["thickness_mae_mm"] = float(np.mean(th)) if th else None
        metrics.append(m)
    return summarize(metrics)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model file (default: the bundled LU-Net)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--n", type=int, default=20, help="held-out phantoms per style")
    ap.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    ap.add_argument("--styles", nargs="+", default=["standard", "shifted", "site2"])
    ap.add_argument("--compensation", choices=("on", "off", "both"), default="on")
    ap.add_argument("--no-latency", action="store_true")
    args = ap.parse_args(argv)

    import torch
    predictor = Predictor(args.model)
    seg = predictor.load()
    print(f"model {seg.name} sha256 {seg.sha256[:12]}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")

    if not args.no_latency:
        lat = latency(predictor, args.runs)
        print(f"\nfull predict of a 384x384 slice, median of {args.runs} runs (ms)\n")
        print("| total | network (segment) | regions | compensation | measurements |")
        print("|---|---|---|---|---|")
        print(f"| {lat['total']:.0f} | {lat['segment']:.0f} | {lat['regions']:.0f} | "
              f"{lat.get('compensation', 0):.0f} | {lat['measure']:.0f} |")

    if args.n <= 0:  # latency only
        return 0
    print(f"\nend-to-end accuracy on held-out phantoms (seeds {args.seed}..{args.seed + args.n - 1}), "
          "mean (max)\n")
    print("| style | compensation | n | Dice PAB | Dice enamel | HD95 PAB mm | palatal dist mm "
          "| landmark MRE mm | thickness err mm | PAB height err mm | crest-CEJ err mm | PAB area err % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    comps = {"on": (True,), "off": (False,), "both": (True, False)}[args.compensation]
    for style in args.styles:
        for comp in comps:
            s = accuracy(args.model, style, args.n, args.seed, comp)

            def cell(key, fmt="{:.3f}", worst="max"):
                st = s.get(key, {"n": 0})
                if not st.get("n"):
                    return "-"
                return f"{fmt.format(st['mean'])} ({fmt.format(st[worst])})"
            d_pab = s["dice.PAB"]
            d_en = s["dice.enamel"]
            print(f"| {style} | {'on' if comp else 'off'} | {d_pab['n']} | {d_pab['mean']:.3f} | "
                  f"{d_en['mean']:.3f} | {cell('hd95_mm.PAB', '{:.2f}')} | {cell('palatal_boundary_mm')} | "
                  f"{cell('landmark_mm.mean')} | {cell('thickness_mae_mm')} | "
                  f"{cell('abs_error.pab_height_mm')} | {cell('abs_error.pab_crest_cej_mm')} | "
                  f"{cell('pab_area_error_pct', '{:.1f}')} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
