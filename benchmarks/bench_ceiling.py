"""What a perfect network would score on a phantom set under the benchmark's metrics.

Fine-tuning cannot beat the pipeline it feeds: the network predicts on the canonical
0.2 mm grid, its probabilities are restored to the original pixels, turned into polygons,
the PAB boundary is compensated, and the polygons are rasterised again on the original
pixel grid to be scored (``model_eval`` / ``evaluate.evaluate_pair``). This script replaces
the network by an oracle and runs everything else unchanged, on each case of a folder:

* ``hard``: the truth polygons rasterised on the canonical grid (pixel-centre rule, exactly
  the training targets of ``dataset.prepare_case``) as one-hot probabilities, the truth
  landmarks as sharp heatmaps: what a network that learnt its targets perfectly scores;
* ``soft``: the truth's area fraction of each canonical pixel (4 x 4 sub-samples) as the
  probability: a perfect *and* sub-pixel-calibrated network;
* ``native``: the truth rasterised on the original pixels (no canonical grid at all);

each scored with compensation on (as ``Predictor`` predicts) and off, with the mean
of the ``model_eval`` summary metrics over the cases and per pixel spacing.

    python benchmarks/bench_ceiling.py --style site2 --seed 30100 --n 24    # ~25 s
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dentseg_gui.core.annotation import LANDMARKS, load_annotation  # noqa: E402
from dentseg_gui.core.geometry import geometry_to_mask  # noqa: E402
from dentseg_gui.core.image_io import load_image  # noqa: E402
from dentseg_gui.core.phantom import write_phantom_set  # noqa: E402
from dentseg_gui.model.dataset import CANONICAL_SPACING_MM, CanonicalGrid, find_annotated_cases  # noqa: E402
from dentseg_gui.model.inference import SegmentationResult  # noqa: E402
from dentseg_gui.model.model_eval import SUMMARY_KEYS, case_metrics  # noqa: E402
from dentseg_gui.model.predict import Predictor  # noqa: E402

SUPERSAMPLE = 4


def canonical_probs(ann, shape_hw, spacing, soft: bool) -> tuple[CanonicalGrid, np.ndarray]:
    """(grid over the whole image, (3, h, w) oracle probabilities on it)."""
    fx, fy = CanonicalGrid.scale_for(spacing, CANONICAL_SPACING_MM)
    w, h = int(np.ceil(shape_hw[1] * fx)), int(np.ceil(shape_hw[0] * fy))
    grid = CanonicalGrid(fx, fy, 0, 0, w, h)
    probs = np.zeros((3, h, w), np.float32)
    for cls, name in ((1, "PAB"), (2, "enamel")):
        g = grid.geometry_to_grid(ann.region(name))
        if soft:   # area fraction: rasterise on a finer grid, box-average
            import shapely
            s = SUPERSAMPLE
            fine = shapely.transform(g, lambda c: (c + 0.5) * s - 0.5)
            m = geometry_to_mask(fine, (h * s, w * s)).astype(np.float32)
            probs[cls] = m.reshape(h, s, w, s).mean(axis=(1, 3))
        else:
            probs[cls] = geometry_to_mask(g, (h, w))
    probs[2] = np.minimum(probs[2], 1.0)
    probs[1] = np.minimum(probs[1], 1.0 - probs[2])      # enamel drawn over PAB, as prepare_case
    probs[0] = 1.0 - probs[1] - probs[2]
    return grid, probs


def oracle_result(ann, image, mode: str) -> SegmentationResult:
    spacing = tuple(float(v) for v in ann.pixel_spacing_mm)
    shape = (image.height, image.width)
    if mode == "native":
        probs = np.zeros((3, *shape), np.float32)
        probs[1] = geometry_to_mask(ann.region("PAB"), shape)
        probs[2] = geometry_to_mask(ann.region("enamel"), shape)
        probs[1] = np.minimum(probs[1], 1.0 - probs[2])
        probs[0] = 1.0 - probs[1] - probs[2]
    else:
        grid, pg = canonical_probs(ann, shape, spacing, soft=(mode == "soft"))
        eps = 1e-4          # the network's probabilities are never exactly 0 or 1
        pg = (pg + eps) / (1 + 3 * eps)
        probs = grid.restore(pg, shape, (0, 0, shape[1], shape[0]), np.array([1.0, 0.0, 0.0]), log_space=True)
    lm = {k: tuple(ann.landmarks[k]) for k in LANDMARKS if k in ann.landmarks}
    return SegmentationResult(probs=probs, landmarks=lm, landmark_confidence={k: 1.0 for k in lm},
                              roi=(0, 0, shape[1], shape[0]), spacing_used=spacing, spacing_assumed=False)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=None, help="annotated cases (default: generate --style/--seed/--n)")
    ap.add_argument("--style", default="site2")
    ap.add_argument("--seed", type=int, default=30100)
    ap.add_argument("--n", type=int, default=24)
    args = ap.parse_args(argv)
    folder = args.folder
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="bench_ceiling_"))
        write_phantom_set(folder, args.n, seed=args.seed, style=args.style)
    preds = {True: Predictor(None, compensation=True), False: Predictor(None, compensation=False)}
    rows: dict[tuple[str, bool], list[dict]] = defaultdict(list)
    by_spacing: dict[tuple[str, bool, float], list[dict]] = defaultdict(list)
    for cf in find_annotated_cases(folder):
        ann = load_annotation(cf.annotation_path)
        image = load_image(cf.image_path, ann.pixel_spacing_mm)
        for mode in ("hard", "soft", "native"):
            seg = oracle_result(ann, image, mode)
            for comp, pred in preds.items():
                res = pred.annotate(image, seg)
                m = case_metrics(res.annotation, ann)
                flat = {"dice_pab": m["dice"]["PAB"], "dice_enamel": m["dice"]["enamel"],
                        "landmark_mre_mm": m["landmark_mm"]["mean"], "thickness_err_mm": m["thickness_err_mm"],
                        "pab_height_err_mm": m["abs_error"].get("pab_height_mm"),
                        "crest_cej_err_mm": m["abs_error"].get("pab_crest_cej_mm"),
                        "pab_area_err_pct": m.get("pab_area_error_pct")}
                rows[(mode, comp)].append(flat)
                by_spacing[(mode, comp, round(ann.pixel_spacing_mm[0], 3))].append(flat)

    keys = [k for k, _ in SUMMARY_KEYS if k != "palatal_boundary_mm"]

    def mean(vals, k):
        v = [r[k] for r in vals if r.get(k) is not None]
        return float(np.mean(v)) if v else float("nan")

    print(f"oracle on {folder} ({len(rows[('hard', True)])} cases)\n")
    print("| oracle | compensation | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for (mode, comp), vals in rows.items():
        print(f"| {mode} | {'on' if comp else 'off'} | " + " | ".join(f"{mean(vals, k):.3f}" for k in keys) + " |")
    print("\nper pixel spacing (Dice PAB / enamel), compensation on\n")
    print("| spacing mm | n | hard | soft | native |")
    print("|---|---|---|---|---|")
    for sp in sorted({k[2] for k in by_spacing}):
        cells = []
        for mode in ("hard", "soft", "native"):
            v = by_spacing[(mode, True, sp)]
            cells.append(f"{mean(v, 'dice_pab'):.3f} / {mean(v, 'dice_enamel'):.3f}")
        print(f"| {sp} | {len(by_spacing[('hard', True, sp)])} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
