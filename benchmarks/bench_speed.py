"""Speed a user feels (issue 14): start-up, batches, fairness under load, latency, edits, memory.

Every comparison is measured *interleaved* (A, B, A, B, ...) in one run, because the
development machine is shared: ratios from one run are meaningful, absolute numbers
depend on who else is working. Load = CPU-bound ``python -c 'while True: pass'``
processes started for the loaded runs and killed after each.

    python benchmarks/bench_speed.py cli          # whole-process `dentseg predict`: 1 image, 24 images
    python benchmarks/bench_speed.py load         # the 24-image batch idle vs beside 2 CPU-bound processes
    python benchmarks/bench_speed.py threads      # thread count / wait policy, idle vs loaded (ADR 0011)
    python benchmarks/bench_speed.py batch        # in one process: sequential vs the pipeline
    python benchmarks/bench_speed.py latency      # predict_image of a 384^2 slice, idle vs 1 CPU-bound process
    python benchmarks/bench_speed.py edits        # overlay edit + repaint on the demo case (Qt, offscreen)
    python benchmarks/bench_speed.py memory       # RSS over 10 opens of the 4096x5120 cephalogram
    python benchmarks/bench_speed.py models       # LU-Net vs MONAI BasicUNet network time, both engines

Options: --reps N (interleaved repetitions), --engine auto|onnx|torch.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
OUT = REPO / "bench_out" / "speed"
BUSY = "while True: pass"


def env(**extra: str) -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO)
    e.update(extra)
    return e


def dataset(n: int = 24) -> list[Path]:
    """``n`` 384 x 384 phantom slices at 0.125 mm (style ``demo``), written once under bench_out/."""
    d = OUT / f"demo{n}"
    if not d.is_dir() or len(list(d.glob("*.dentseg.json"))) < n:
        shutil.rmtree(d, ignore_errors=True)
        from dentseg_gui.core.phantom import write_phantom_set
        write_phantom_set(d, n, seed=9100, style="demo")
    return sorted(p for p in d.iterdir() if not p.name.endswith(".json"))


@contextmanager
def cpu_load(n: int):
    procs = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(n)]
    time.sleep(0.3 if n else 0.0)
    try:
        yield
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def run_predict(images: list[Path], extra: list[str] | None = None, **env_extra: str) -> float:
    out = Path(tempfile.mkdtemp(prefix="speed_", dir=OUT))
    cmd = [sys.executable, "-m", "dentseg_gui.cli", "predict", *map(str, images), "--out", str(out),
           "--spacing", "0.125", *(extra or [])]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env(**env_extra), cwd=REPO)
    dt = time.perf_counter() - t
    shutil.rmtree(out, ignore_errors=True)
    if r.returncode not in (0, 1):
        raise SystemExit(f"predict failed: {r.stderr[-600:]}")
    return dt


def load_info() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def fmt(xs: list[float]) -> str:
    return f"median {statistics.median(xs):.2f} s (min {min(xs):.2f}, max {max(xs):.2f}, n={len(xs)})"


# --------------------------------------------------------------------------- cli


def bench_cli(args) -> None:
    images = dataset(24)
    configs = {"onnx (default)": [], "torch (--engine torch)": ["--engine", "torch"]}
    one: dict[str, list[float]] = {k: [] for k in configs}
    batch: dict[str, list[float]] = {k: [] for k in configs}
    print(f"# dentseg predict, whole process ({load_info()} at start)")
    for _ in range(args.reps):
        for name, extra in configs.items():
            one[name].append(run_predict(images[:1], extra))
            batch[name].append(run_predict(images, extra))
    for name in configs:
        print(f"1 image   {name:24s} {fmt(one[name])}")
        print(f"24 images {name:24s} {fmt(batch[name])}")
    print(f"({load_info()} at end)")


# --------------------------------------------------------------------------- load


def bench_load(args) -> None:
    images = dataset(24)
    extra = ["--engine", args.engine] if args.engine != "auto" else []
    idle, loaded = [], []
    print(f"# 24-image batch, idle vs beside 2 CPU-bound processes, interleaved ({load_info()})")
    for _ in range(args.reps):
        idle.append(run_predict(images, extra))
        with cpu_load(2):
            loaded.append(run_predict(images, extra))
    print(f"idle   {fmt(idle)}")
    print(f"loaded {fmt(loaded)}")
    print(f"ratio of medians {statistics.median(loaded) / statistics.median(idle):.2f} "
          f"(fair share of 2 cores with 2 other processes: 2.0)  ({load_info()})")


# --------------------------------------------------------------------------- threads


def bench_threads(args) -> None:
    images = dataset(24)
    configs = {
        "onnx 2 thr, no spin (default)": (["--threads", "2"], {}),
        "onnx 2 thr, spinning": (["--threads", "2"], {"DENTSEG_ORT_SPINNING": "1"}),
        "onnx 1 thr": (["--threads", "1"], {}),
        "torch 2 thr, OMP passive (default)": (["--engine", "torch", "--threads", "2"], {}),
        "torch 2 thr, OMP active": (["--engine", "torch", "--threads", "2"], {"OMP_WAIT_POLICY": "ACTIVE"}),
        "torch 1 thr": (["--engine", "torch", "--threads", "1"], {}),
    }
    if args.only:
        configs = {k: v for k, v in configs.items() if any(s in k for s in args.only.split(","))}
    res = {k: {"idle": [], "loaded": []} for k in configs}
    print(f"# 24-image batch per thread configuration, idle and beside 2 CPU-bound processes ({load_info()})")
    for _ in range(args.reps):
        for name, (extra, e) in configs.items():
            res[name]["idle"].append(run_predict(images, extra, **e))
            with cpu_load(2):
                res[name]["loaded"].append(run_predict(images, extra, **e))
    print("| configuration | idle s | loaded s | loaded / idle |")
    print("|---|---|---|---|")
    for name, r in res.items():
        i, lo = statistics.median(r["idle"]), statistics.median(r["loaded"])
        print(f"| {name} | {i:.2f} | {lo:.2f} | {lo / i:.2f} |")
    print(f"({load_info()} at end; medians of {args.reps})")


# --------------------------------------------------------------------------- latency


def bench_latency(args) -> None:
    from bench_predict import slice_384

    from dentseg_gui.model.predict import Predictor

    pred = Predictor(engine=args.engine)
    img = slice_384()
    for _ in range(3):
        pred.predict_image(img)

    def median_ms(n: int) -> tuple[float, dict]:
        stages: dict[str, list[float]] = {}
        for _ in range(n):
            for k, v in pred.predict_image(img).timings.items():
                stages.setdefault(k, []).append(v)
        return 1000 * statistics.median(stages["total"]), {k: 1000 * statistics.median(v) for k, v in stages.items()}

    idle, loaded, idle_st = [], [], None
    for _ in range(args.reps):
        m, idle_st = median_ms(10)
        idle.append(m)
        with cpu_load(1):
            loaded.append(median_ms(10)[0])
    print(f"# predict_image, 384x384 slice, {pred.segmenter.engine_label} ({load_info()})")
    print(f"idle   median {statistics.median(idle):.1f} ms  (per block of 10: {', '.join(f'{v:.0f}' for v in idle)})")
    print("       stages " + ", ".join(f"{k} {v:.1f}" for k, v in idle_st.items()))
    print(f"1 busy median {statistics.median(loaded):.1f} ms  (per block: {', '.join(f'{v:.0f}' for v in loaded)})")
    print(f"ratio {statistics.median(loaded) / statistics.median(idle):.2f}")


# --------------------------------------------------------------------------- batch


def bench_batch(args) -> None:
    """In one process (start-up paid): the 24 images one after the other vs the pipeline,
    and how much of the pipeline's wall time the network itself took."""
    from dentseg_gui.core.annotation import save_annotation
    from dentseg_gui.core.image_io import load_image
    from dentseg_gui.model.predict import Predictor, predict_files

    images = dataset(24)
    pred = Predictor(engine=args.engine)
    seg = pred.load()
    net_s = [0.0]
    real_segment = pred.segment

    def timed_segment(*a, **k):
        t = time.perf_counter()
        try:
            return real_segment(*a, **k)
        finally:
            net_s[0] += time.perf_counter() - t

    out = Path(tempfile.mkdtemp(prefix="batch_", dir=OUT))

    def sequential() -> float:
        t = time.perf_counter()
        for f in images:
            r = pred.predict_image(load_image(f, (0.125, 0.125)), spacing=(0.125, 0.125))
            save_annotation(r.annotation, out / (f.stem + ".dentseg.json"))
        return time.perf_counter() - t

    def pipeline() -> tuple[float, float]:
        net_s[0] = 0.0
        pred.segment = timed_segment
        t = time.perf_counter()
        predict_files(images, out, model=pred, spacing=(0.125, 0.125))
        dt = time.perf_counter() - t
        pred.segment = real_segment
        return dt, net_s[0]

    sequential()
    seq, pipe, net = [], [], []
    for _ in range(args.reps):
        seq.append(sequential())
        p, n = pipeline()
        pipe.append(p)
        net.append(n)
    shutil.rmtree(out, ignore_errors=True)
    print(f"# 24 images in one process, {seg.engine_label} ({load_info()})")
    print(f"one after the other {fmt(seq)}")
    print(f"pipeline            {fmt(pipe)}")
    print(f"network inside the pipeline: median {statistics.median(net):.2f} s "
          f"= {100 * statistics.median(net) / statistics.median(pipe):.0f} % of its wall time")


# --------------------------------------------------------------------------- models


def bench_models(args) -> None:
    """Network time of LU-Net and MONAI's BasicUNet (untrained weights: speed does not depend on
    them) in both engines, on the demo slice's 240x240 canonical grid and on 384x384, in turns."""
    import numpy as np
    import torch

    from dentseg_gui.model.engine import OnnxEngine, TorchEngine
    from dentseg_gui.model.export_onnx import export_onnx_bytes
    from dentseg_gui.model.lunet import build_model
    from dentseg_gui.model.model_file import sha256_bytes

    rng = np.random.default_rng(0)
    inputs = {side: rng.random((side, side), dtype=np.float32) for side in (240, 384)}
    engines = {}
    for arch in ("LUNet", "MonaiBasicUNet"):
        try:
            torch.manual_seed(0)
            model = build_model(arch, {}).eval()
        except ValueError as exc:
            print(f"{arch}: skipped ({exc})")
            continue
        data, _ = export_onnx_bytes(model)
        p = OUT / f"{arch}.onnx"
        p.write_bytes(data)
        engines[(arch, "onnx")] = OnnxEngine(p, sha256_bytes(data), args.threads, model.size_multiple)
        engines[(arch, "torch")] = TorchEngine(model, args.threads)
    for eng in engines.values():
        for x in inputs.values():
            eng.run(x)
    ts = {(k, side): [] for k in engines for side in inputs}
    for _ in range(args.reps * 5):
        for side, x in inputs.items():
            for k, eng in engines.items():
                t = time.perf_counter()
                eng.run(x)
                ts[(k, side)].append(1000 * (time.perf_counter() - t))
    print(f"# network alone, {args.threads} thread(s), median of {args.reps * 5}, all timed in turns ({load_info()})")
    print("| network | engine | 240x240 ms | 384x384 ms |")
    print("|---|---|---|---|")
    for arch, eng in engines:
        print(f"| {arch} | {eng} | " + " | ".join(f"{statistics.median(ts[((arch, eng), s)]):.1f}" for s in inputs) + " |")
    for eng in ("onnx", "torch"):
        if ("MonaiBasicUNet", eng) in engines:
            r = [statistics.median(ts[(("MonaiBasicUNet", eng), s)]) / statistics.median(ts[(("LUNet", eng), s)])
                 for s in inputs]
            print(f"BasicUNet / LU-Net time, {eng}: " + ", ".join(f"{v:.2f}x at {s}" for v, s in zip(r, inputs)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("cli", "load", "threads", "batch", "latency", "edits", "memory", "models"))
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="models: threads of each engine (default 2)")
    p.add_argument("--engine", default="auto", choices=("auto", "onnx", "torch"))
    p.add_argument("--only", default="", help="threads: comma-separated substrings of the configurations")
    args = p.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO / "benchmarks"))
    if args.what in ("edits", "memory"):
        from bench_gui_speed import main as gui_main
        return gui_main(args.what, args.reps)
    {"cli": bench_cli, "load": bench_load, "threads": bench_threads, "batch": bench_batch,
     "latency": bench_latency, "models": bench_models}[args.what](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
