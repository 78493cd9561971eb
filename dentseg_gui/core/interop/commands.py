"""``dentseg import labelme|coco`` and ``dentseg export labelme|coco|dicom``.

Kept out of ``cli.py`` so that file stays a table of commands; nothing heavy is
imported until a command runs. Exit status: 0 all done, 1 some files failed
(each named on stderr), 2 nothing written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

TARGET_HELP = "TARGET is PAB, enamel, CEJ_labial, CEJ_palatal or apex"


def add_parsers(sub: argparse._SubParsersAction, spacing_type: Callable) -> None:
    imp = sub.add_parser("import", help="make DentSeg cases from labelme or COCO annotations")
    isub = imp.add_subparsers(dest="format", required=True)
    lm = isub.add_parser("labelme", help="labelme JSON files (or folders of them) -> DentSeg cases")
    lm.add_argument("inputs", nargs="+", type=Path, metavar="FILE_OR_DIR")
    co = isub.add_parser("coco", help="a COCO annotations file -> DentSeg cases")
    co.add_argument("coco_json", type=Path, metavar="FILE")
    co.add_argument("--images", required=True, type=Path, metavar="DIR",
                    help="folder the COCO file_name paths are relative to")
    for p, what in ((lm, "LABEL"), (co, "CAT")):
        p.add_argument("--map", action="extend", nargs="+", default=[], metavar=f"{what}=TARGET",
                       help=f"which {what.lower()} is which DentSeg item; {TARGET_HELP}. Labels that "
                            "already name a target need no map; unmapped ones are listed and skipped")
        p.add_argument("--spacing", type=spacing_type, default=None,
                       help="pixel spacing in mm (ROW[,COL]) for images that carry none")
        p.add_argument("--out", type=Path, default=None, metavar="DIR",
                       help="write the cases (image + .dentseg.json) here; default: beside each image")
        p.add_argument("--overwrite", action="store_true",
                       help="replace an existing .dentseg.json (default: keep it and report)")

    exp = sub.add_parser("export", help="write DentSeg cases as labelme, COCO or DICOM SEG + SR")
    esub = exp.add_subparsers(dest="format", required=True)
    el = esub.add_parser("labelme", help="one labelme JSON per case")
    el.add_argument("cases", nargs="+", type=Path, metavar="CASES",
                    help=".dentseg.json files, images with one beside them, or folders")
    el.add_argument("--out", required=True, type=Path, metavar="DIR")
    el.add_argument("--embed-image", choices=("auto", "always", "never"), default="auto",
                    help="put the pixels in imageData: auto = only for images labelme cannot read "
                         "(DICOM, 16-bit), as an 8-bit PNG")
    ec = esub.add_parser("coco", help="one COCO annotations file for all cases")
    ec.add_argument("cases", nargs="+", type=Path, metavar="CASES")
    ec.add_argument("--out", required=True, type=Path, metavar="annotations.json")
    ed = esub.add_parser("dicom", help="DICOM SEG + SR (TID 1500) per case whose image is DICOM")
    ed.add_argument("cases", nargs="+", type=Path, metavar="CASE.dentseg.json")
    ed.add_argument("--out", required=True, type=Path, metavar="DIR")


def run(args: argparse.Namespace, out=None, err=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    name = f"dentseg {args.command} {args.format}"
    if args.command == "import":
        from .common import parse_label_map
        label_map = parse_label_map(args.map)
        if args.format == "labelme":
            from .labelme import import_labelme
            res = import_labelme(args.inputs, label_map, args.spacing, args.out, args.overwrite)
        else:
            from .coco import import_coco
            res = import_coco(args.coco_json, args.images, label_map, args.spacing, args.out,
                              args.overwrite)
        summary = f"imported {len(res.cases)} case{'s' if len(res.cases) != 1 else ''}"
    else:
        from .common import collect_cases
        cases, problems = collect_cases(args.cases)
        if args.format == "labelme":
            from .labelme import export_labelme
            res = export_labelme(cases, args.out, embed=args.embed_image)
        elif args.format == "coco":
            from .coco import export_coco
            res = export_coco(cases, args.out)
        else:
            from .dicom_export import export_dicom
            res = export_dicom(cases, args.out)
        n_ok = len(cases) - len(res.problems)
        res.problems[:0] = problems
        summary = f"exported {n_ok} of {len(cases)} case{'s' if len(cases) != 1 else ''}"
    for p in res.written:
        print(f"wrote {p}", file=out)
    for n in res.notes:
        print(f"note: {n}", file=out)
    for p in res.problems:
        print(f"{name}: error: {p}", file=err)
    failed = f", {len(res.problems)} problem{'s' if len(res.problems) != 1 else ''}" if res.problems else ""
    print(summary + failed, file=out)
    return res.exit_code()
