"""``dentseg`` command line (DESIGN.md contract).

Heavy modules (torch, Qt) are imported inside the command that needs them,
so ``dentseg measure`` and ``dentseg phantom`` start fast. Every
``DentsegError`` is printed as one clear line and exits with status 2;
no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .core.errors import DentsegError


def _spacing(text: str) -> tuple[float, float]:
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--spacing must be a number of mm, or ROW,COL; got {text!r}")
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2 or not all(0 < v < 100 for v in vals):
        raise argparse.ArgumentTypeError(f"--spacing must be one or two positive mm values; got {text!r}")
    return vals[0], vals[1]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dentseg", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    pr = sub.add_parser("predict", help="LU-Net + boundary compensation + landmarks + measurements")
    pr.add_argument("images", nargs="+", type=Path)
    pr.add_argument("--out", required=True, type=Path)
    pr.add_argument("--model", default=None, help="model file (.pt); default: the bundled LU-Net")
    pr.add_argument("--spacing", type=_spacing, default=None,
                    help="pixel spacing in mm (ROW[,COL]) for images that carry none")
    pr.add_argument("--no-compensation", action="store_true", help="switch boundary compensation off")

    me = sub.add_parser("measure", help="measurement report from annotation files")
    me.add_argument("files", nargs="+", type=Path)
    me.add_argument("--csv", type=Path, default=None)
    me.add_argument("--json", type=Path, default=None)
    me.add_argument("--pdf", type=Path, default=None)

    tr = sub.add_parser("train", help="train LU-Net on images + .dentseg.json files in DIR")
    tr.add_argument("dir", type=Path)
    tr.add_argument("--out", required=True, type=Path)
    tr.add_argument("--epochs", type=int, default=None)
    tr.add_argument("--init", default=None, help="model file to fine-tune from, or 'bundled'")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--augment", choices=("basic", "robust"), default="basic",
                    help="augmentation preset: basic (the bundled model's) or robust (wider "
                         "contrast/noise/blur, coarse-scan simulation, shading: for scans unlike the phantoms)")
    tr.add_argument("--lr", type=float, default=None,
                    help="peak learning rate (default: 2e-3 fresh; fine-tuning: chosen from the number of cases)")
    tr.add_argument("--bn", choices=("train", "frozen", "adapt"), default=None,
                    help="BatchNorm statistics: train (update), frozen, adapt (re-estimate on the data, then "
                         "freeze); default: train fresh, chosen from the number of cases when fine-tuning")

    ev = sub.add_parser("evaluate", help="Dice, HD95, landmark error and measurement error")
    ev.add_argument("pred_dir", type=Path)
    ev.add_argument("truth_dir", type=Path)
    ev.add_argument("--json", type=Path, default=None)

    ph = sub.add_parser("phantom", help="write synthetic cases with ground truth")
    ph.add_argument("out_dir", type=Path)
    ph.add_argument("-n", type=int, default=10)
    ph.add_argument("--seed", type=int, default=0)
    ph.add_argument("--style", default="standard",
                    help="standard | faint (faint palatal cortex) | shifted (other spacing, "
                         "contrast and noise than training) | demo | wide (the widened training "
                         "distribution) | site2 (another scanner, CT DICOM: for judging, not training)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except DentsegError as exc:
        print(f"dentseg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dentseg {args.command}: interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.command == "phantom":
        from .core.phantom import write_phantom_set
        paths = write_phantom_set(args.out_dir, args.n, seed=args.seed, style=args.style)
        print(f"wrote {len(paths)} phantom cases to {args.out_dir}")
        return 0
    if args.command == "measure":
        from .core.report import measure_files
        return measure_files(args.files, csv_path=args.csv, json_path=args.json, pdf_path=args.pdf)
    if args.command == "predict":
        from .model.predict import predict_cli
        return predict_cli(args.images, args.out, model=args.model, spacing=args.spacing,
                           compensation=not args.no_compensation)
    if args.command == "train":
        from .model.omp_policy import prefer_passive_wait
        prefer_passive_wait()           # before torch is imported (model/omp_policy.py says why)
        from .model.train import train_cli
        return train_cli(args.dir, args.out, epochs=args.epochs, init=args.init, seed=args.seed,
                         augment=args.augment, lr=args.lr, bn=args.bn)
    if args.command == "evaluate":
        from .model.evaluate import evaluate_cli
        return evaluate_cli(args.pred_dir, args.truth_dir, json_path=args.json)
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
