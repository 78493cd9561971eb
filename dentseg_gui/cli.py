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


def _threads(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 64:
        raise argparse.ArgumentTypeError(f"--threads must be a whole number from 1 to 64; got {text!r}")
    return n


def _mm_list(text: str) -> list[float]:
    try:
        vals = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers of mm separated by commas, e.g. -2,-1,0,1,2; got {text!r}")
    if not vals or not all(abs(v) < 1000 for v in vals):
        raise argparse.ArgumentTypeError(f"expected numbers of mm separated by commas; got {text!r}")
    return vals


def _point(text: str) -> tuple[float, float, float]:
    vals = _mm_list(text)
    if len(vals) != 3:
        raise argparse.ArgumentTypeError(f"--at takes X,Y,Z in mm (LPS, the volume's patient frame); got {text!r}")
    return vals[0], vals[1], vals[2]


def _positive_mm(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not 0 < v < 100:
        raise argparse.ArgumentTypeError(f"expected a positive number of mm; got {text!r}")
    return v


def _glue_negative_values(argv: list[str]) -> list[str]:
    """``--offsets -2,-1,0`` -> ``--offsets=-2,-1,0`` (argparse would take '-2,-1,0' for an option)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else ""
        if a in ("--offsets", "--at") and len(nxt) > 1 and nxt[0] == "-" and nxt[1] in "0123456789.":
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


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
    pr.add_argument("--threads", type=_threads, default=None,
                    help="CPU threads for the network (default: the cores available, at most 4)")
    pr.add_argument("--engine", choices=("auto", "onnx", "torch"), default="auto",
                    help="auto: ONNX Runtime when the model has an ONNX export, else torch")
    pr.add_argument("--assume-spacing", type=_spacing, default=None, metavar="MM",
                    help="predict images that carry no spacing (and get no --spacing) with this one, "
                         "every number marked as assumed; without it such images are refused")
    pr.add_argument("--overwrite", action="store_true",
                    help="replace output files that hold hand edits or no model provenance "
                         "(without it they are refused; read-only files are never replaced)")

    me = sub.add_parser("measure", help="measurement report from annotation files")
    me.add_argument("files", nargs="+", type=Path)
    me.add_argument("--csv", type=Path, default=None)
    me.add_argument("--json", type=Path, default=None)
    me.add_argument("--pdf", type=Path, default=None)
    me.add_argument("--spacing", type=_spacing, default=None,
                    help="pixel spacing in mm (ROW[,COL]) for annotation files that carry none")
    me.add_argument("--assume-spacing", type=_spacing, default=None, metavar="MM",
                    help="measure files without a spacing with this one, every number marked as assumed")

    tr = sub.add_parser("train", help="train LU-Net on images + .dentseg.json files in DIR")
    tr.add_argument("dir", type=Path)
    tr.add_argument("--out", required=True, type=Path)
    tr.add_argument("--epochs", type=int, default=None)
    tr.add_argument("--init", default=None, help="model file to fine-tune from, or 'bundled'")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--augment", choices=("basic", "robust"), default="basic",
                    help="augmentation preset: basic (the bundled model's) or robust (wider "
                         "contrast/noise/blur, coarse-scan simulation, shading: for scans unlike the phantoms)")
    tr.add_argument("--threads", type=_threads, default=None,
                    help="CPU threads for training (default: the cores available, at most 4)")
    tr.add_argument("--lr", type=float, default=None,
                    help="peak learning rate (default: 2e-3 fresh; fine-tuning: chosen from the number of cases)")
    tr.add_argument("--bn", choices=("train", "frozen", "adapt"), default=None,
                    help="BatchNorm statistics: train (update), frozen, adapt (re-estimate on the data, then "
                         "freeze); default: train fresh, chosen from the number of cases when fine-tuning")

    ev = sub.add_parser("evaluate", help="Dice, HD95, landmark error and measurement error")
    ev.add_argument("pred_dir", type=Path)
    ev.add_argument("truth_dir", type=Path)
    ev.add_argument("--json", type=Path, default=None)

    sl = sub.add_parser("slice", help="DICOM slices through each tooth's axis from a CBCT volume")
    sl.add_argument("volume", type=Path, help="DICOM series folder, multi-frame DICOM, .nii, .nii.gz or .nrrd")
    sl.add_argument("--out", required=True, type=Path)
    sl.add_argument("--tooth", type=int, nargs="+", default=[11, 21], help="FDI numbers (default: 11 21)")
    sl.add_argument("--at", type=_point, default=None, help="a point in the tooth's crown, X,Y,Z in LPS mm")
    sl.add_argument("--offsets", type=_mm_list, default=[0.0],
                    help="parasagittal offsets in mm along the mesio-distal direction, + toward distal "
                         "(e.g. -2,-1,0,1,2)")
    sl.add_argument("--slab", type=float, default=0.0, help="slab thickness in mm (mean), default 0")
    sl.add_argument("--spacing", type=_positive_mm, default=None,
                    help="pixel spacing of the slices in mm (default: the volume's finest)")

    ph = sub.add_parser("phantom", help="write synthetic cases with ground truth")
    ph.add_argument("out_dir", type=Path)
    ph.add_argument("-n", type=int, default=10)
    ph.add_argument("--seed", type=int, default=0)
    ph.add_argument("--style", default="standard",
                    help="standard | faint (faint palatal cortex) | shifted (other spacing, "
                         "contrast and noise than training) | demo | wide (the widened training "
                         "distribution) | site2 (another scanner, CT DICOM: for judging, not training); "
                         "with --volume: standard | other")
    ph.add_argument("--volume", action="store_true",
                    help="write CBCT-like volumes of an anterior dentition (with the true tooth axes and "
                         "the truth of 11's and 21's central slices in VOLUME.truth.json) instead of slices")
    ph.add_argument("--volume-slices", action="store_true",
                    help="write N annotated slice cases made by the volume generator (the central plane of "
                         "11 and of 21 of each volume, as 'dentseg slice' writes it, with its exact truth); "
                         "--style standard | other")
    ph.add_argument("--format", dest="volume_format", choices=("dicom", "nifti", "nrrd"), default="dicom",
                    help="file format of --volume: a DICOM series folder per volume (default), .nii.gz or .nrrd")
    ph.add_argument("--voxel", type=float, default=None, metavar="MM",
                    help="with --volume: isotropic voxel size in mm (default: drawn per volume, anisotropic)")

    from .core.interop.commands import add_parsers as add_interop_parsers
    add_interop_parsers(sub, _spacing)  # import labelme|coco, export labelme|coco|dicom
    return p


def main(argv: list[str] | None = None) -> int:
    argv = _glue_negative_values(list(sys.argv[1:] if argv is None else argv))
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
    if args.command == "phantom" and args.volume and args.volume_slices:
        raise DentsegError("--volume writes volumes and --volume-slices writes slice cases: give one of them")
    if args.command == "phantom" and args.volume:
        from .core.phantom.volume_files import write_phantom_volumes
        paths = write_phantom_volumes(args.out_dir, args.n, seed=args.seed, style=args.style,
                                      fmt=args.volume_format, spacing_mm=args.voxel, progress=print)
        print(f"wrote {len(paths)} phantom volumes to {args.out_dir}")
        return 0
    if args.command == "phantom" and args.volume_slices:
        from .core.phantom.volume_files import write_volume_slice_cases
        paths = write_volume_slice_cases(args.out_dir, args.n, seed=args.seed, style=args.style)
        print(f"wrote {len(paths)} phantom slice cases from {(len(paths) + 1) // 2} volumes to {args.out_dir}")
        return 0
    if args.command == "phantom":
        from .core.phantom import write_phantom_set
        paths = write_phantom_set(args.out_dir, args.n, seed=args.seed, style=args.style)
        print(f"wrote {len(paths)} phantom cases to {args.out_dir}")
        return 0
    if args.command == "measure":
        from .core.report import measure_files
        return measure_files(args.files, csv_path=args.csv, json_path=args.json, pdf_path=args.pdf,
                             spacing=args.spacing, assume_spacing=args.assume_spacing)
    if args.command == "predict":
        from .model.predict import predict_cli
        return predict_cli(args.images, args.out, model=args.model, spacing=args.spacing,
                           compensation=not args.no_compensation, threads=args.threads, engine=args.engine,
                           overwrite=args.overwrite, assume_spacing=args.assume_spacing)
    if args.command == "train":
        from .model.train import train_cli
        return train_cli(args.dir, args.out, epochs=args.epochs, init=args.init, seed=args.seed,
                         augment=args.augment, threads=args.threads, lr=args.lr, bn=args.bn)
    if args.command == "slice":
        from .core.tooth_slices import slice_cli
        return slice_cli(args.volume, args.out, teeth=args.tooth, at=args.at, offsets=args.offsets,
                         slab_mm=args.slab, spacing_mm=args.spacing)
    if args.command in ("import", "export"):
        from .core.interop.commands import run as run_interop
        return run_interop(args)
    if args.command == "evaluate":
        from .model.evaluate import evaluate_cli
        return evaluate_cli(args.pred_dir, args.truth_dir, json_path=args.json)
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
