"""LU-Net against a plain U-Net (and MONAI's BasicUNet when installed), same data, same budget.

Every network is trained with the project's own training loop
(``dentseg_gui.model.train.train`` with a ``TrainConfig``; only ``arch``
differs) on the same phantom training set, for the same number of steps, from
the same seed, then scored by ``train.held_out_metrics`` on the same held-out
phantoms (seeds from 9000, never trained on). Columns: parameters, weights
file size, CPU latency of ``Segmenter.segment`` on one 384 x 384 slice (median
of ``--runs``, BatchNorm folded), held-out Dice of PAB and enamel and landmark
MRE.

The default budget is small (it runs in ~10-15 minutes on a 2-core CPU) and
is NOT the bundled model's recipe: it compares architectures at equal cost,
it does not measure how good either gets.

    python benchmarks/bench_models.py                       # default small budget (~270 steps each)
    python benchmarks/bench_models.py --n-train 300 --epochs 30 --crop-size 160 --n-eval 40
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dentseg_gui.core.phantom import write_phantom_set  # noqa: E402

ARCHS = ("LUNet", "PlainUNet")  # + MonaiBasicUNet when MONAI is installed


def cpu_latencies_ms(model_paths: dict[str, Path], runs: int) -> dict[str, float]:
    """Median ``Segmenter.segment`` time per model on one 384 x 384 slice.

    The models are timed in turns (run 1 of each, run 2 of each, ...) so a change
    in machine load while the benchmark runs affects them alike.
    """
    from bench_predict import slice_384
    from dentseg_gui.model.inference import Segmenter

    segs = {k: Segmenter.load(p) for k, p in model_paths.items()}
    img = slice_384()
    for seg in segs.values():
        for _ in range(2):
            seg.segment(img)
    times: dict[str, list[float]] = {k: [] for k in segs}
    for _ in range(runs):
        for k, seg in segs.items():
            t = time.perf_counter()
            seg.segment(img)
            times[k].append(time.perf_counter() - t)
    return {k: 1000 * statistics.median(v) for k, v in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=80, help="phantom training cases (10 %% validation)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--crop-size", type=int, default=128, help="training crop (canonical px; bundled: 160)")
    ap.add_argument("--n-eval", type=int, default=20, help="held-out phantoms")
    ap.add_argument("--runs", type=int, default=20, help="latency runs per model")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None, help="keep data and models here (default: temp)")
    args = ap.parse_args(argv)

    import torch
    from dentseg_gui.model.lunet import count_parameters
    from dentseg_gui.model.train import TrainConfig, held_out_metrics, train
    from dentseg_gui.model.weights import load_model

    work = args.work or Path(tempfile.mkdtemp(prefix="dentseg_bench_models_"))
    train_dir, eval_dir = work / "train", work / "held_out"
    t0 = time.perf_counter()
    write_phantom_set(train_dir, args.n_train, seed=args.seed, style="standard")
    write_phantom_set(eval_dir, args.n_eval, seed=9000, style="standard")
    print(f"data: {args.n_train} training phantoms (seeds {args.seed}..), {args.n_eval} held-out "
          f"(seeds 9000..) in {work} ({time.perf_counter() - t0:.0f} s)")

    rows = []
    archs = list(ARCHS)
    try:
        import monai  # noqa: F401
        archs.append("MonaiBasicUNet")
    except ImportError:
        print("note: MONAI not installed (optional: pip install monai --no-deps); BasicUNet skipped")
    for arch in archs:
        out = work / f"{arch}.pt"
        cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, arch=arch,
                          crop_size=args.crop_size, patience=args.epochs + 1, name=f"bench-{arch}",
                          threads=2)
        t = time.perf_counter()
        res = train(train_dir, out, cfg)
        train_s = time.perf_counter() - t
        steps = res.epochs_run * math.ceil(max(res.n_train, cfg.min_samples_per_epoch) / cfg.batch_size)
        model, card, _ = load_model(out)
        m = held_out_metrics(out, eval_dir)
        rows.append({
            "arch": arch, "params": count_parameters(model), "mb": out.stat().st_size / 1e6,
            "path": out, "dice_pab": m["dice_pab_mean"],
            "dice_pab_min": m["dice_pab_min"], "dice_enamel": m["dice_enamel_mean"],
            "mre": m["landmark_mre_mm"], "steps": steps, "train_s": train_s, "best_epoch": res.best_epoch,
        })
        print(f"{arch}: trained {steps} steps in {train_s:.0f} s (best epoch {res.best_epoch})")
    lat = cpu_latencies_ms({r["arch"]: r["path"] for r in rows}, args.runs)
    for r in rows:
        r["latency_ms"] = lat[r["arch"]]

    print(f"\nsame budget for each: {args.n_train} phantoms, {args.epochs} epochs x batch {args.batch_size}, "
          f"crop {args.crop_size} px, seed {args.seed}; held-out: {args.n_eval} phantoms; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; latency: median of {args.runs}, "
          "models timed in turns\n")
    print("| network | params | weights MB | CPU latency 384x384 (ms) | Dice PAB (min) | Dice enamel "
          "| landmark MRE mm | train steps | train time s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['arch']} | {r['params']:,} | {r['mb']:.2f} | {r['latency_ms']:.0f} | "
              f"{r['dice_pab']:.3f} ({r['dice_pab_min']:.3f}) | {r['dice_enamel']:.3f} | "
              f"{r['mre']:.2f} | {r['steps']} | {r['train_s']:.0f} |")
    if "MonaiBasicUNet" not in archs:
        print("| MonaiBasicUNet | - | - | - | skipped | - | - | - | - |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
