"""Volume I/O and reslicing: open time, peak memory and reslice time on a CBCT-sized volume.

Generates a 512 × 512 × 400 16-bit volume (~200 MB; a smooth head-like phantom with
noise, oblique directions, 0.3 mm voxels) once into ``bench_out/volume/`` as a
DICOM series (400 files, shuffled names), NIfTI (.nii.gz) and NRRD (gzip), then

* opens each format ``--runs`` times in a fresh child process and reports the
  wall time (files in the page cache: the second open of a scan, not a cold disk)
  and the peak memory the load added (``ru_maxrss`` minus the resident size
  before loading), as a multiple of the volume's size; one more run under
  ``tracemalloc`` gives the peak of Python/numpy allocations;
* reslices a 384 × 384 oblique plane (full resolution, the half-resolution
  preview, a 1 mm mean slab) and reports the median of ``--reps`` runs.

Targets (issue 10): open ≤ 5 s, peak ≤ 1.5 × the volume, reslice ≤ 30 ms.

    python benchmarks/bench_volume.py                 # ~1-2 min the first time (writes ~600 MB)
    python benchmarks/bench_volume.py --shape 200,256,256 --runs 1    # quick
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dentseg_gui.core.volume import Plane, Volume  # noqa: E402

CHILD = r"""
import json, os, resource, sys, time, tracemalloc
sys.path.insert(0, {root!r})
from dentseg_gui.core.volume_io import load_volume
import dentseg_gui.core.volume_io.dicom_series, dentseg_gui.core.volume_io.nifti_file, dentseg_gui.core.volume_io.nrrd_file
import pydicom.pixels, nibabel, nrrd
def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
before = rss()
trace = {trace}
if trace:
    tracemalloc.start()
t = time.perf_counter()
v = load_volume({path!r})
dt = time.perf_counter() - t
peak_traced = tracemalloc.get_traced_memory()[1] if trace else None
maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"seconds": dt, "nbytes": v.nbytes, "before": before, "maxrss": maxrss,
                  "traced": peak_traced, "shape": list(v.shape), "dtype": str(v.voxels.dtype)}}))
"""


def make_volume(shape: tuple[int, int, int], seed: int = 0) -> Volume:
    """A head-like int16 phantom: soft tissue ellipsoid, a bone shell, a few bright 'teeth', noise."""
    nk, nj, ni = shape
    rng = np.random.default_rng(seed)
    vox = np.empty(shape, np.int16)
    j, i = np.mgrid[0:nj, 0:ni].astype(np.float32)
    cj, ci = nj / 2, ni / 2
    for k in range(nk):
        z = (k - nk / 2) / (nk / 2)
        r2 = ((i - ci) / (0.42 * ni)) ** 2 + ((j - cj) / (0.46 * nj)) ** 2 + (0.8 * z) ** 2
        plane = np.where(r2 < 1.0, 40.0, -1000.0)
        plane = np.where((r2 > 0.8) & (r2 < 1.0), 1200.0, plane)
        for t in range(6):
            a = np.pi * (0.25 + 0.1 * t)
            ti, tj = ci + 0.3 * ni * np.cos(a), cj - 0.3 * nj * np.sin(a)
            if abs(z) < 0.4:
                plane = np.where((i - ti) ** 2 + (j - tj) ** 2 < (0.015 * ni) ** 2, 2200.0, plane)
        plane += rng.normal(0, 30, plane.shape)
        vox[k] = np.clip(plane + 1024, 0, 4095).astype(np.int16)
    a = np.deg2rad(4.0)
    dirs = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    return Volume(vox, (-76.8, -76.8, -60.0), dirs, (0.3, 0.3, 0.3), 1.0, -1024.0,
                  meta={"SeriesDescription": "bench CBCT phantom"})


def prepare(out: Path, shape: tuple[int, int, int]) -> dict[str, Path]:
    from dentseg_gui.core.volume_io import write_dicom_series, write_nifti, write_nrrd

    tag = "x".join(map(str, shape))
    base = out / tag
    paths = {"DICOM series": base / "series", "NIfTI .nii.gz": base / "volume.nii.gz",
             "NRRD (gzip)": base / "volume.nrrd"}
    stamp = base / "complete.json"
    if stamp.exists():
        return paths
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    t = time.perf_counter()
    vol = make_volume(shape)
    print(f"generated {tag} int16 phantom ({vol.nbytes / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    files = write_dicom_series(vol, base / "series_tmp", series_description="bench CBCT phantom")
    names = [f"{random.Random(n).getrandbits(40):010x}" for n in range(len(files))]
    (base / "series").mkdir()
    for f, name in zip(files, names):
        f.rename(base / "series" / name)          # random names, no suffix: sorting must use the headers
    (base / "series_tmp").rmdir()
    print(f"wrote the DICOM series in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    write_nifti(vol, paths["NIfTI .nii.gz"])
    write_nrrd(vol, paths["NRRD (gzip)"])
    print(f"wrote NIfTI and NRRD in {time.perf_counter() - t:.1f} s")
    stamp.write_text(json.dumps({"shape": shape}), encoding="utf-8")
    return paths


def open_in_child(path: Path, trace: bool) -> dict:
    code = CHILD.format(root=str(ROOT), path=str(path), trace=trace)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise SystemExit(f"loading {path} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def bench_open(paths: dict[str, Path], runs: int) -> None:
    print("\nopen (fresh process each run; files in the page cache)")
    print(f"{'format':<16}{'median s':>10}{'min s':>8}{'peak RSS added / volume':>26}{'traced peak / volume':>23}")
    for name, path in paths.items():
        res = [open_in_child(path, trace=False) for _ in range(runs)]
        traced = open_in_child(path, trace=True)
        secs = [r["seconds"] for r in res]
        nb = res[0]["nbytes"]
        ratio = max((r["maxrss"] - r["before"]) / nb for r in res)
        print(f"{name:<16}{np.median(secs):>10.2f}{min(secs):>8.2f}{ratio:>26.2f}{traced['traced'] / nb:>23.2f}")


def bench_reslice(paths: dict[str, Path], reps: int) -> None:
    from dentseg_gui.core.reslice import reslice, reslice_preview
    from dentseg_gui.core.volume_io import load_volume

    vol = load_volume(paths["NIfTI .nii.gz"])
    centre = vol.index_to_lps(np.array(vol.shape[::-1], float) / 2 - 0.5)
    planes = {
        "oblique (tooth-like, 20° tilt)": Plane.centred(centre, (0.17, -0.98, 0.1), (0.05, -0.33, -0.94), 0.3,
                                                        (384, 384)),
        "sagittal": Plane.centred(centre, (0, -1, 0), (0, 0, -1), 0.3, (384, 384)),
        "axial": Plane.centred(centre, (1, 0, 0), (0, 1, 0), 0.3, (384, 384)),
    }
    print(f"\nreslice 384 × 384 of {'×'.join(map(str, vol.shape[::-1]))} {vol.voxels.dtype}, median of {reps} (ms)")
    print(f"{'plane':<32}{'full':>8}{'preview':>9}{'1 mm slab':>11}")
    for name, plane in planes.items():
        row = []
        for fn in (lambda: reslice(vol, plane), lambda: reslice_preview(vol, plane),
                   lambda: reslice(vol, plane, slab_mm=1.0)):
            fn()
            ts = []
            for _ in range(reps):
                t = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t)
            row.append(np.median(ts) * 1e3)
        print(f"{name:<32}{row[0]:>8.1f}{row[1]:>9.1f}{row[2]:>11.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench_out" / "volume")
    ap.add_argument("--shape", default="400,512,512", help="slices,rows,columns")
    ap.add_argument("--runs", type=int, default=3, help="opens per format")
    ap.add_argument("--reps", type=int, default=30, help="reslices per measurement")
    args = ap.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    paths = prepare(args.out, shape)
    bench_open(paths, args.runs)
    bench_reslice(paths, args.reps)


if __name__ == "__main__":
    main()
