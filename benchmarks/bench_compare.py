"""Two models on the same phantoms, case by case: is the difference real or noise?

Predicts ``--n`` phantoms of each style (seeds ``--seed``..) with both models (full
``Predictor``: network, regions, compensation, landmarks, measurements; the phantom's
spacing passed as with ``--spacing``) and prints, per metric, both means and the paired
difference (new - old) with its standard error. A mean difference within about two
standard errors of zero is noise at this ``n``. Used to decide the bundled model
(docs/benchmarks.md, "Adapting to a new scanner").

    python benchmarks/bench_compare.py OLD.pt                      # OLD vs the bundled model
    python benchmarks/bench_compare.py OLD.pt --new NEW.pt --styles standard site2 --n 200
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dentseg_gui.core.phantom import generate_phantom  # noqa: E402
from dentseg_gui.model.evaluate import evaluate_pair  # noqa: E402
from dentseg_gui.model.predict import Predictor  # noqa: E402

THICKNESS_KEYS = ("pab_thickness_25_mm", "pab_thickness_50_mm", "pab_thickness_75_mm", "pab_thickness_90_mm")
METRICS = ("Dice PAB", "Dice enamel", "landmark MRE mm", "CEJ_palatal mm", "thickness err mm", "PAB height err mm")


def case_metrics(pred: Predictor, style: str, seed: int) -> list[float]:
    case = generate_phantom(seed, style)
    truth = case.annotation
    m = evaluate_pair(pred.predict_image(case.image, spacing=truth.pixel_spacing_mm).annotation, truth)
    lm = m["landmark_mm"]
    th = [m["abs_error"][k] for k in THICKNESS_KEYS if m["abs_error"][k] is not None]
    height = m["abs_error"]["pab_height_mm"]

    def num(v):
        return np.nan if v is None else float(v)
    return [m["dice"]["PAB"], m["dice"]["enamel"], num(lm.get("mean")), num(lm.get("CEJ_palatal")),
            float(np.mean(th)) if th else np.nan, num(height)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", help="model file of the first model")
    ap.add_argument("--new", default=None, help="model file of the second model (default: the bundled LU-Net)")
    ap.add_argument("--styles", nargs="+", default=["standard"])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=9000)
    args = ap.parse_args(argv)

    old, new = Predictor(args.old), Predictor(args.new)
    print(f"old: {old.segmenter.name} ({old.segmenter.sha256[:12]}), new: {new.segmenter.name} "
          f"({new.segmenter.sha256[:12]})")
    for style in args.styles:
        seeds = range(args.seed, args.seed + args.n)
        a = np.array([case_metrics(old, style, s) for s in seeds])
        b = np.array([case_metrics(new, style, s) for s in seeds])
        print(f"\n{style}, seeds {args.seed}..{args.seed + args.n - 1}, n = {args.n}\n")
        print("| metric | old | new | new - old (paired SE) |")
        print("|---|---|---|---|")
        for j, name in enumerate(METRICS):
            ok = np.isfinite(a[:, j]) & np.isfinite(b[:, j])
            d = b[ok, j] - a[ok, j]
            se = d.std(ddof=1) / np.sqrt(ok.sum()) if ok.sum() > 1 else float("nan")
            print(f"| {name} | {a[ok, j].mean():.4f} | {b[ok, j].mean():.4f} | {d.mean():+.4f} ({se:.4f}) |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
