"""Fine-tuning on a simulated new site: how good, how fast, with how many annotated cases.

A "new site" is a pool of phantoms of one style (default ``site2``: another scanner and
another generator than training, CT DICOM in Hounsfield units; never used to choose any
setting). The first cases of the pool play the clinician's annotated cases, the rest
(default 24, as in the owner's independent set) the site's other cases:

1. zero-shot: the initial model (default: bundled) on the test cases;
2. for each case count k (default 1 2 4 8): ``dentseg train DIR --init INIT --out M`` on the
   first k cases, **run as the command a user runs** (a fresh Python process, settings
   chosen automatically from k; wall seconds include starting Python and importing torch),
   then the fine-tuned model on the same test cases;
3. ``--timing``: a table cases x epochs x seconds (``--epochs`` forced, everything else
   automatic), with the test Dice of each run, to show what more epochs buy.

"steps" is the card's ``steps_run``: the steps up to the epoch that was kept (the best on
its validation cases), not all the steps the run took.

Metrics: Dice PAB / enamel, landmark MRE, mean absolute PAB thickness error over the
four contract levels, PAB height error, crest-to-CEJ error, PAB area error (%), and how
many test predictions the plausibility check flags (with the fine-tuned model's own
thresholds).

    python benchmarks/bench_finetune.py                         # site2, k = 1 2 4 8, ~10-15 min idle
    python benchmarks/bench_finetune.py --style shifted --seed 40000 --n-test 16
    python benchmarks/bench_finetune.py --cases 1 4 8 --timing --epochs 3 6 12
    python benchmarks/bench_finetune.py --volumes --style other --seed 7000 --n-test 20 --cases 1 4 8
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dentseg_gui.core.phantom import write_phantom_set  # noqa: E402
from dentseg_gui.core.phantom.volume_files import write_volume_slice_cases  # noqa: E402
from dentseg_gui.model.model_eval import evaluate_model_on_folder  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SITE_SEED = 30000
HEADER = ("| model | cases | epochs | steps | train wall s | Dice PAB | Dice enamel | landmark MRE mm "
          "| thickness err mm | PAB height err mm | crest-CEJ err mm | PAB area err % | flagged |")


def make_site(work: Path, style: str, seed: int, n_train: int, n_test: int,
              volumes: bool = False) -> tuple[Path, Path]:
    """Train pool (seeds seed..) and test cases (seeds seed+100..) of one simulated site."""
    if n_train > 100 and not volumes:
        raise SystemExit("at most 100 training cases: the test cases start at seed + 100")
    if n_train > 200 and volumes:
        raise SystemExit("at most 200 training cases (100 volumes): the test volumes start at seed + 100")
    pool, test = work / "pool", work / "test"
    for folder, n, exact, first in ((pool, n_train, False, seed), (test, n_test, True, seed + 100)):
        # a kept --work folder is reused only when it holds the cases asked for (else made anew)
        have = len(list(folder.glob("*.dentseg.json")))
        if have < n or (exact and have != n):
            shutil.rmtree(folder, ignore_errors=True)
            if volumes:
                write_volume_slice_cases(folder, n, seed=first, style=style)
            else:
                write_phantom_set(folder, n, seed=first, style=style)
    return pool, test


def subset(pool: Path, k: int, dest: Path) -> Path:
    """The first ``k`` cases of the pool (image + annotation) in ``dest``."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for ann in sorted(pool.glob("*.dentseg.json"))[:k]:
        stem = ann.name[: -len(".dentseg.json")]
        for f in pool.glob(stem + ".*"):
            shutil.copy(f, dest / f.name)
    return dest


def run_train(data: Path, out: Path, init: str, epochs: int | None) -> tuple[float, dict]:
    """``dentseg train`` as a user runs it, in its own process; (wall seconds, the model card)."""
    cmd = [sys.executable, "-m", "dentseg_gui.cli", "train", str(data), "--out", str(out), "--init", init]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"training failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    card = json.loads(out.with_name(out.stem + ".model-card.json").read_text())
    return wall, card


def row(label: str, k, epochs, steps, wall, s: dict) -> str:
    def f(key, fmt):
        v = s.get(key)
        return "-" if v is None else fmt.format(v)
    return (f"| {label} | {k} | {epochs} | {steps} | {wall} | {f('dice_pab', '{:.3f}')} | {f('dice_enamel', '{:.3f}')} | "
            f"{f('landmark_mre_mm', '{:.3f}')} | {f('thickness_err_mm', '{:.3f}')} | {f('pab_height_err_mm', '{:.3f}')} | "
            f"{f('crest_cej_err_mm', '{:.3f}')} | {f('pab_area_err_pct', '{:.1f}')} | {s['n_flagged']}/{s['n_cases']} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--init", default="bundled", help="model to fine-tune (default: bundled)")
    ap.add_argument("--style", default="site2")
    ap.add_argument("--volumes", action="store_true",
                    help="the site's cases are slices of phantom CBCT volumes of --style (standard | other): "
                         "11 and 21 of each volume, with their exact truth")
    ap.add_argument("--seed", type=int, default=SITE_SEED, help=f"first seed of the site (default {SITE_SEED})")
    ap.add_argument("--cases", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--n-test", type=int, default=24)
    ap.add_argument("--timing", action="store_true", help="also the cases x epochs x seconds table")
    ap.add_argument("--epochs", type=int, nargs="+", default=[3, 6, 12], help="epochs of the timing table")
    ap.add_argument("--work", type=Path, default=None, help="keep the data and models here")
    args = ap.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="bench_finetune_"))
    pool, test = make_site(work, args.style, args.seed, max(args.cases), args.n_test, volumes=args.volumes)
    kind = "volume slices of style" if args.volumes else "style"
    print(f"site: {kind} {args.style}, pool seeds {args.seed}.., {args.n_test} test cases (seeds "
          f"{args.seed + 100}..), work {work}\n")
    print(HEADER)
    print("|" + "---|" * 13)
    init_model = None if args.init == "bundled" else args.init
    print(row(f"{args.init} (zero-shot)", 0, "-", "-", "-", evaluate_model_on_folder(init_model, test).summary()),
          flush=True)
    for k in args.cases:
        data = subset(pool, k, work / f"cases_{k}")
        out = work / f"model_{k}.pt"
        wall, card = run_train(data, out, args.init, None)
        st = card["training"]["settings"]
        steps = card["training"].get("steps_run", "?")
        s = evaluate_model_on_folder(out, test).summary()
        print(row("fine-tuned", k, st["epochs"], steps, f"{wall:.0f}", s), flush=True)
    if args.timing:
        print("\nfine-tune timing (`dentseg train --init` wall seconds, this CPU; test Dice PAB / enamel)\n")
        print("| cases | " + " | ".join(f"{e} epochs" for e in args.epochs) + " |")
        print("|---|" + "---|" * len(args.epochs))
        for k in args.cases:
            data = subset(pool, k, work / f"cases_{k}")
            cells = []
            for e in args.epochs:
                out = work / f"timing_{k}_{e}.pt"
                wall, card = run_train(data, out, args.init, e)
                s = evaluate_model_on_folder(out, test).summary()
                cells.append(f"{wall:.0f} s, {card['training'].get('steps_run', '?')} steps "
                             f"({s['dice_pab']:.3f} / {s['dice_enamel']:.3f})")
            print(f"| {k} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
