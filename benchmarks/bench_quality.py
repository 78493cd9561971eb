"""Does the plausibility check flag the predictions that are wrong, and only those?

Predicts held-out phantoms (``standard`` and ``faint``: the training distribution;
``shifted``: imaging the model has not seen) and, when ``../shared/data/real`` is
there, the real non-dental images (a CT and MR slices of a head, a cephalogram),
then reports per set how many predictions ``model.quality`` flags as ``check`` /
``doubtful``, the lowest landmark confidence and segmentation certainty seen, and
- against the phantoms' exact truth - the errors of flagged and unflagged cases.
A useful check flags none of the in-distribution phantoms, the worst shifted ones,
and every real non-dental image.

The thresholds belong to the model (its card's ``quality_thresholds``, fitted by every
training run). ``--finetune K`` fine-tunes the model on K ``site2`` phantoms (seeds
31000..; automatic settings, as ``dentseg train --init``), and prints the same table for
the fine-tuned model with *its* thresholds: flagged and unflagged cases must still
separate (site2 cases the model was not tuned on, the training distribution, shifted, the
real non-dental images). ``--need`` adds, per set, how well the active-learning score
(``model.case_need``) orders the cases by their true error (Spearman correlation with
1 - Dice PAB and with the worst landmark error).

    python benchmarks/bench_quality.py              # 40 + 20 + 60 phantoms, ~1 min
    python benchmarks/bench_quality.py --n-site2 40 --finetune 4 --need
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dentseg_gui.core.errors import DentsegError  # noqa: E402
from dentseg_gui.core.image_io import load_image  # noqa: E402
from dentseg_gui.core.phantom import generate_phantom  # noqa: E402
from dentseg_gui.model.evaluate import evaluate_pair  # noqa: E402
from dentseg_gui.model.predict import Predictor  # noqa: E402
from dentseg_gui.model.case_need import case_need  # noqa: E402
from dentseg_gui.model.quality import segmentation_certainty, thresholds_from_card  # noqa: E402

SEED = 7000
FINETUNE_SEED = 31000
#: real files without a pixel spacing are predicted as with ``dentseg predict --assume-spacing 0.25``
#: (a plain prediction refuses them; every number is then marked as assumed)
ASSUMED_SPACING = (0.25, 0.25)
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def result_row(res, name: str, truth=None, need=None) -> dict:
    """One prediction's verdict and evidence, plus its errors when the truth is known."""
    row = {"name": name, "level": res.quality.level, "reasons": res.quality.reasons,
           "min_conf": min(res.segmentation.landmark_confidence.values()),
           "certainty": segmentation_certainty(res.segmentation.probs),
           "dice_pab": np.nan, "max_landmark_mm": np.nan,
           "need": np.nan if need is None else need.score}
    if truth is not None:
        ev = evaluate_pair(res.annotation, truth)
        lm = [v for v in ev["landmark_mm"].values() if v is not None]
        row.update(dice_pab=ev["dice"]["PAB"], max_landmark_mm=max(lm) if lm else np.nan)
    return row


def _need(pred: Predictor, image, spacing, res, with_need: bool):
    if not with_need:
        return None
    return case_need(pred.segmenter, image, spacing=spacing, verdict=res.quality.level)


def run_phantoms(pred: Predictor, style: str, n: int, first_seed: int = SEED, with_need: bool = False) -> list[dict]:
    rows = []
    for seed in range(first_seed, first_seed + n):
        case = generate_phantom(seed, style)
        sp = case.annotation.pixel_spacing_mm
        res = pred.predict_image(case.image, spacing=sp)
        rows.append(result_row(res, f"{style} {seed}", case.annotation, _need(pred, case.image, sp, res, with_need)))
    return rows


def run_real(pred: Predictor, with_need: bool = False) -> list[dict]:
    rows = []
    pred = Predictor(pred.model_path, assume_spacing=ASSUMED_SPACING)
    files = sorted(REAL.glob("dicom/*.dcm")) + sorted(REAL.glob("cephalogram/*.jpg"))
    for f in files:
        try:
            image = load_image(f)
        except DentsegError:
            continue            # e.g. the JPEG 2000 file without a decoder
        res = pred.predict_image(image)
        sp = None if image.spacing_mm is not None else ASSUMED_SPACING
        rows.append(result_row(res, f.name, need=_need(pred, image, sp, res, with_need)))
    return rows


def spearman(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return float("nan")
    ra, rb = np.argsort(np.argsort(a[ok])), np.argsort(np.argsort(b[ok]))
    return float(np.corrcoef(ra, rb)[0, 1])


def print_table(title: str, sets: dict[str, list[dict]], with_need: bool, verbose: bool) -> None:
    print(f"\n{title}\n")
    print("| set | n | ok | check | doubtful | lowest landmark conf. | lowest certainty "
          "| Dice PAB ok / flagged | worst landmark mm ok / flagged | flagged with a landmark > 2 mm off "
          "| unflagged with a landmark > 2 mm off |" + (" need vs 1-Dice / vs landmark (Spearman) |" if with_need else ""))
    print("|" + "---|" * (12 if with_need else 11))
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
        need = ""
        if with_need:
            need_v = [r["need"] for r in rows]
            s1 = spearman(need_v, [1 - r["dice_pab"] for r in rows])
            s2 = spearman(need_v, [r["max_landmark_mm"] for r in rows])
            need = " - |" if not np.isfinite(s1) else f" {s1:.2f} / {s2:.2f} (need {np.mean(need_v):.2f}) |"
        print(f"| {name} | {len(rows)} | {lv.count('ok')} | {lv.count('check')} | {lv.count('doubtful')} | "
              f"{min(r['min_conf'] for r in rows):.2f} | {min(certs) if certs else float('nan'):.2f} | "
              f"{mean(ok, 'dice_pab')} / {mean(fl, 'dice_pab')} | "
              f"{mean(ok, 'max_landmark_mm')} / {mean(fl, 'max_landmark_mm')} | {count_far(fl)} | {count_far(ok)} |"
              + need, flush=True)
    if verbose:
        print()
        for rows in sets.values():
            for r in rows:
                if r["level"] != "ok":
                    print(f"{r['name']}: {r['level']}: {'; '.join(r['reasons'])}")


def run_sets(pred: Predictor, args, site2_seed: int) -> dict[str, list[dict]]:
    sets = {style: run_phantoms(pred, style, n, args.seed, args.need)
            for style, n in (("standard", args.n_standard), ("faint", args.n_faint), ("shifted", args.n_shifted))
            if n > 0}
    if args.n_site2 > 0:
        sets["site2"] = run_phantoms(pred, "site2", args.n_site2, site2_seed, args.need)
    if REAL.is_dir():
        sets["real, non-dental"] = run_real(pred, args.need)
    return sets


def fine_tune(model, k: int, work: Path) -> Path:
    """The model fine-tuned on ``k`` site2 phantoms (seeds FINETUNE_SEED..), automatic settings."""
    from dentseg_gui.core.phantom import write_phantom_set
    from dentseg_gui.model.train import TrainConfig, train

    data = work / "site2_cases"
    write_phantom_set(data, k, seed=FINETUNE_SEED, style="site2")
    out = work / f"finetuned_{k}.pt"
    train(data, out, TrainConfig(init=model or "bundled", seed=0))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model file (default: the bundled LU-Net)")
    ap.add_argument("--n-standard", type=int, default=40)
    ap.add_argument("--n-faint", type=int, default=20)
    ap.add_argument("--n-shifted", type=int, default=60)
    ap.add_argument("--n-site2", type=int, default=0)
    ap.add_argument("--seed", type=int, default=SEED, help=f"first phantom seed (default {SEED})")
    ap.add_argument("--finetune", type=int, default=0, metavar="K",
                    help="also fine-tune on K site2 phantoms and check with the fine-tuned model")
    ap.add_argument("--need", action="store_true", help="also score the active-learning need (model.case_need)")
    ap.add_argument("--verbose", action="store_true", help="one line per flagged case")
    args = ap.parse_args(argv)
    if args.finetune and args.n_site2 == 0:
        args.n_site2 = 40
    pred = Predictor(args.model)
    pred.load()
    site2_seed = args.seed
    t = thresholds_from_card(pred.segmenter.card)
    print_table(f"plausibility check, model {pred.segmenter.name} ({pred.segmenter.sha256[:12]}), phantom seeds "
                f"{args.seed}.., thresholds {t.as_card()}", run_sets(pred, args, site2_seed), args.need, args.verbose)
    if args.finetune:
        with tempfile.TemporaryDirectory() as tmp:
            tuned = fine_tune(args.model, args.finetune, Path(tmp))
            pred2 = Predictor(tuned)
            pred2.load()
            t2 = thresholds_from_card(pred2.segmenter.card)
            print_table(f"after fine-tuning on {args.finetune} site2 phantoms (seeds {FINETUNE_SEED}..): "
                        f"model {pred2.segmenter.name}, its fitted thresholds {t2.as_card()}",
                        run_sets(pred2, args, site2_seed), args.need, args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
