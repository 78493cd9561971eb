"""Does the plausibility check flag the predictions that are wrong, and only those?

Predicts held-out phantoms (``standard`` and ``faint``: the training distribution;
``shifted``: imaging the model has not seen) and, when ``../shared/data/real`` is
there, the real non-dental images (a CT and MR slices of a head, a cephalogram),
then reports per set how many predictions ``model.quality`` flags as ``check`` /
``doubtful``, the lowest landmark confidence and segmentation certainty seen, and
- against the phantoms' exact truth - the errors of flagged and unflagged cases.
A useful check flags none of the in-distribution phantoms, the worst shifted ones,
and every real non-dental image.

    python benchmarks/bench_quality.py              # 40 + 20 + 60 phantoms, ~1 min
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dentseg_gui.core.errors import DentsegError  # noqa: E402
from dentseg_gui.core.image_io import load_image  # noqa: E402
from dentseg_gui.core.phantom import generate_phantom  # noqa: E402
from dentseg_gui.model.evaluate import evaluate_pair  # noqa: E402
from dentseg_gui.model.predict import Predictor  # noqa: E402
from dentseg_gui.model.quality import segmentation_certainty  # noqa: E402

SEED = 7000
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def result_row(res, name: str, truth=None) -> dict:
    """One prediction's verdict and evidence, plus its errors when the truth is known."""
    row = {"name": name, "level": res.quality.level, "reasons": res.quality.reasons,
           "min_conf": min(res.segmentation.landmark_confidence.values()),
           "certainty": segmentation_certainty(res.segmentation.probs),
           "dice_pab": np.nan, "max_landmark_mm": np.nan}
    if truth is not None:
        ev = evaluate_pair(res.annotation, truth)
        lm = [v for v in ev["landmark_mm"].values() if v is not None]
        row.update(dice_pab=ev["dice"]["PAB"], max_landmark_mm=max(lm) if lm else np.nan)
    return row


def run_phantoms(pred: Predictor, style: str, n: int, first_seed: int = SEED) -> list[dict]:
    rows = []
    for seed in range(first_seed, first_seed + n):
        case = generate_phantom(seed, style)
        res = pred.predict_image(case.image, spacing=case.annotation.pixel_spacing_mm)
        rows.append(result_row(res, f"{style} {seed}", case.annotation))
    return rows


def run_real(pred: Predictor) -> list[dict]:
    rows = []
    files = sorted(REAL.glob("dicom/*.dcm")) + sorted(REAL.glob("cephalogram/*.jpg"))
    for f in files:
        try:
            image = load_image(f)
        except DentsegError:
            continue            # e.g. the JPEG 2000 file without a decoder
        rows.append(result_row(pred.predict_image(image), f.name))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-standard", type=int, default=40)
    ap.add_argument("--n-faint", type=int, default=20)
    ap.add_argument("--n-shifted", type=int, default=60)
    ap.add_argument("--seed", type=int, default=SEED, help=f"first phantom seed (default {SEED})")
    ap.add_argument("--verbose", action="store_true", help="one line per flagged case")
    args = ap.parse_args(argv)
    pred = Predictor()
    pred.load()
    sets = {style: run_phantoms(pred, style, n, args.seed)
            for style, n in (("standard", args.n_standard), ("faint", args.n_faint), ("shifted", args.n_shifted))}
    if REAL.is_dir():
        sets["real, non-dental"] = run_real(pred)

    print(f"\nplausibility check, model {pred.segmenter.name} ({pred.segmenter.sha256[:12]}), "
          f"phantom seeds {args.seed}..\n")
    print("| set | n | ok | check | doubtful | lowest landmark conf. | lowest certainty "
          "| Dice PAB ok / flagged | worst landmark mm ok / flagged | flagged with a landmark > 2 mm off "
          "| unflagged with a landmark > 2 mm off |")
    print("|" + "---|" * 11)
    for name, rows in sets.items():
        lv = [r["level"] for r in rows]
        ok = [r for r in rows if r["level"] == "ok"]
        fl = [r for r in rows if r["level"] != "ok"]

        def mean(rs, key):
            v = [r[key] for r in rs if r[key] is not None and np.isfinite(r[key])]
            return f"{np.mean(v):.3f}" if v else "-"

        def count_far(rs):
            v = [r for r in rs if np.isfinite(r["max_landmark_mm"])]
            return f"{sum(r['max_landmark_mm'] > 2.0 for r in v)}/{len(v)}" if v else "-"

        certs = [r["certainty"] for r in rows if r["certainty"] is not None]
        print(f"| {name} | {len(rows)} | {lv.count('ok')} | {lv.count('check')} | {lv.count('doubtful')} | "
              f"{min(r['min_conf'] for r in rows):.2f} | {min(certs) if certs else float('nan'):.2f} | "
              f"{mean(ok, 'dice_pab')} / {mean(fl, 'dice_pab')} | "
              f"{mean(ok, 'max_landmark_mm')} / {mean(fl, 'max_landmark_mm')} | {count_far(fl)} | {count_far(ok)} |")
    if args.verbose:
        print()
        for rows in sets.values():
            for r in rows:
                if r["level"] != "ok":
                    print(f"{r['name']}: {r['level']}: {'; '.join(r['reasons'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
