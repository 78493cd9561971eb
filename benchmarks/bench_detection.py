"""Tooth detection on phantom volumes: accuracy, speed, refusals, and what it does to the measurements.

For each style (``standard``, and ``other``: the independent family the detector
was not developed on) and each held-out seed (from ``--seed0``, default 7000;
development used seeds below 300):

1. **No hint**: ``detect_incisors(volume)`` -> 11 and 21. A tooth counts as
   found when its labio-palatal plane is within 3 degrees of the true one (angle
   between the planes' normals) and its axis within 0.5 mm of the true axis. The
   axis distance is the larger of the distances of the true CEJ midpoint and of
   the true apex from the found axis line (the line through the found CEJ
   midpoint and apex). A tooth not returned, or returned as another number,
   counts as a miss.
2. **With a point**: ``detect_incisors(volume, at=p)`` with ``p`` in the crown
   (on the true axis, 45 % of the way from the CEJ to the incisal edge); the
   tooth must also carry the right FDI number.
3. **Measurements**: the bundled LU-Net (``model.predict.Predictor``, as
   ``dentseg predict``) on the resliced found central plane and on the resliced
   true central plane (``plane_for_tooth``, 48 mm, the volume's finest
   spacing); differences of root length and of the four thickness levels.
   The exact 2-D truth of the true plane is reported beside them.
4. **Refusals**: volumes without teeth (``core/phantom/nondental.py``) must
   raise ``VolumeError``.
5. **Speed**: detection on a 512 x 512 x 400 int16 volume (a phantom volume
   upsampled), median of 3; generation time of the phantoms.

    python benchmarks/bench_detection.py                     # 20 volumes per style
    python benchmarks/bench_detection.py --n 5 --no-predict  # quick look
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dentseg_gui.core.axis_edit import axis_distance_mm, plane_angle_deg  # noqa: E402
from dentseg_gui.core.image import SliceImage  # noqa: E402
from dentseg_gui.core.phantom.nondental import KINDS, nondental_volume  # noqa: E402
from dentseg_gui.core.phantom.volume import generate_phantom_volume  # noqa: E402
from dentseg_gui.core.reslice import reslice  # noqa: E402
from dentseg_gui.core.tooth_detection import find_teeth  # noqa: E402
from dentseg_gui.core.volume import ToothAxis, Volume, VolumeError, plane_for_tooth  # noqa: E402

SEED0 = 7000          # held out: development used seeds below 300; the failures of two earlier runs
                      # (5000-5019, 6000-6019) were looked at, so those seeds are no longer clean
MAX_AXIS_MM = 0.5
MAX_PLANE_DEG = 3.0
THICK = ("pab_thickness_25_mm", "pab_thickness_50_mm", "pab_thickness_75_mm", "pab_thickness_90_mm")


def ok(found: ToothAxis | None, true: ToothAxis, fdi: int) -> tuple[bool, float, float]:
    if found is None or found.tooth != fdi:
        return False, float("nan"), float("nan")
    d, a = axis_distance_mm(found, true), plane_angle_deg(found, true)
    return d <= MAX_AXIS_MM and a <= MAX_PLANE_DEG, d, a


def predict_plane(predictor, volume: Volume, plane, name: str):
    """The annotation ``predictor`` makes of ``plane`` resliced from ``volume`` (as ``dentseg slice``
    and ``dentseg predict`` would)."""
    img = reslice(volume, plane)
    image = SliceImage(img, plane.spacing, name, kind="dicom", bit_depth=16)
    return predictor.predict_image(image).annotation


def measure_plane(predictor, volume: Volume, plane, name: str) -> dict:
    return predict_plane(predictor, volume, plane, name).measurements


def run_style(style: str, n: int, predictor, rows_out: list, seed0: int = SEED0) -> dict:
    res = {"found": [], "at": [], "dist": [], "ang": [], "t_det": [], "t_gen": [], "shape": [], "meas": []}
    for k in range(n):
        seed = seed0 + k
        t0 = time.perf_counter()
        pv = generate_phantom_volume(seed, style)
        res["t_gen"].append(time.perf_counter() - t0)
        v = pv.volume
        res["shape"].append(v.shape)
        t0 = time.perf_counter()
        try:
            report = find_teeth(v)
            got = {a.tooth: a for a in report.teeth}
        except VolumeError as exc:
            got = {}
            print(f"  {style} {seed}: refused: {exc}")
        res["t_det"].append(time.perf_counter() - t0)
        line = []
        for fdi in (11, 21):
            true = pv.teeth[fdi]
            good, d, a = ok(got.get(fdi), true, fdi)
            res["found"].append(good)
            if not np.isnan(d):
                res["dist"].append(d)
                res["ang"].append(a)
            at = true.cej + 0.45 * (true.incisal - true.cej)
            try:
                at_found = find_teeth(v, at=at).teeth[0]
            except VolumeError:
                at_found = None
            good_at, d_at, a_at = ok(at_found, true, fdi)
            res["at"].append(good_at)
            line.append(f"{fdi}: {'ok' if good else 'MISS'} d={d:.2f} a={a:.2f} | at {'ok' if good_at else 'MISS'}")
            if predictor is not None and fdi in got:
                plane_t, truth = pv.slices[fdi]
                plane_f = plane_for_tooth(got[fdi], plane_t.spacing[0], (48.0, 48.0))
                m_t = measure_plane(predictor, v, plane_t, f"{style}_{seed}_{fdi}_true")
                m_f = measure_plane(predictor, v, plane_f, f"{style}_{seed}_{fdi}_found")
                res["meas"].append((m_t, m_f, truth.measurements))
        rows_out.append((style, seed, v.shape, pv.params["spacing_ijk_mm"], pv.params["directions"],
                         res["t_gen"][-1], res["t_det"][-1], " ; ".join(line)))
        print(f"  {style} {seed} {v.shape} {pv.params['directions']:10s} gen {res['t_gen'][-1]:.1f}s "
              f"det {res['t_det'][-1]:.2f}s  " + " ; ".join(line), flush=True)
    return res


def _diff(pairs, key):
    out = []
    for a, b in pairs:
        if a.get(key) is not None and b.get(key) is not None:
            out.append(abs(float(a[key]) - float(b[key])))
    return out


def summary_rows(style: str, r: dict) -> list[str]:
    n = len(r["found"])
    lines = [f"| {style} | {n} | {100 * np.mean(r['found']):.1f} % | {100 * np.mean(r['at']):.1f} % | "
             f"{np.median(r['dist']):.2f} / {np.max(r['dist']):.2f} | "
             f"{np.median(r['ang']):.2f} / {np.max(r['ang']):.2f} | "
             f"{statistics.median(r['t_det']):.2f} / {max(r['t_det']):.2f} | "
             f"{statistics.median(r['t_gen']):.1f} |"]
    return lines


def meas_rows(style: str, r: dict) -> list[str]:
    if not r["meas"]:
        return []
    ft = [(m_f, m_t) for m_t, m_f, _ in r["meas"]]
    tt = [(m_t, tr) for m_t, _, tr in r["meas"]]
    rl = _diff(ft, "root_length_mm")
    th = [np.mean([abs(float(f[k]) - float(t[k])) for k in THICK]) for f, t in ft
          if all(f.get(k) is not None and t.get(k) is not None for k in THICK)]
    rl_t = _diff(tt, "root_length_mm")
    th_t = [np.mean([abs(float(a[k]) - float(b[k])) for k in THICK]) for a, b in tt
            if all(a.get(k) is not None and b.get(k) is not None for k in THICK)]
    return [f"| {style} | {len(ft)} | {np.mean(rl):.3f} / {np.max(rl):.3f} | "
            f"{100 * np.mean(np.asarray(rl) <= 0.3):.0f} % | {np.mean(th):.3f} / {np.max(th):.3f} | "
            f"{100 * np.mean(np.asarray(th) <= 0.3):.0f} % | {np.mean(rl_t):.3f} | {np.mean(th_t):.3f} |"]


def refusals(seeds: int = 3) -> list[str]:
    out = []
    for kind in KINDS:
        refused, times, msg = 0, [], ""
        for s in range(seeds):
            v = nondental_volume(kind, s)
            if kind == "head_mr" and s % 2:
                v.meta.pop("modality", None)      # let the voxels decide, not the tag
            t0 = time.perf_counter()
            try:
                find_teeth(v)
            except VolumeError as exc:
                refused += 1
                msg = str(exc)
            times.append(time.perf_counter() - t0)
        out.append(f"| {kind} | {refused} / {seeds} | {max(times):.2f} | {msg[:150]}… |")
    return out


def speed_big() -> str:
    from scipy import ndimage as ndi
    pv = generate_phantom_volume(SEED0, "standard", spacing_mm=0.3)
    v = pv.volume
    z = [a / b for a, b in zip((400, 512, 512), v.shape)]
    big = ndi.zoom(v.voxels, z, order=1)
    sp = tuple(s / zz for s, zz in zip(v.spacing, z[::-1]))
    vb = Volume(big, v.origin, v.directions, sp, v.slope, v.intercept, source="upsampled phantom")
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        rep = find_teeth(vb)
        times.append(time.perf_counter() - t0)
    acc = [ok(a, pv.teeth[a.tooth], a.tooth)[0] for a in rep.teeth]
    return (f"{big.shape[2]}×{big.shape[1]}×{big.shape[0]} int16 ({big.nbytes / 2**20:.0f} MB, "
            f"{sp[0]:.3f} mm): detection median {statistics.median(times):.2f} s "
            f"(runs {', '.join(f'{t:.2f}' for t in times)}), teeth within tolerance {sum(acc)}/{len(acc)}; "
            f"stages {', '.join(f'{k} {v:.2f}' for k, v in rep.seconds.items())}")


def speed_generation() -> str:
    t0 = time.perf_counter()
    pv = generate_phantom_volume(SEED0 + 1, "standard", spacing_mm=0.2, max_voxels=18_000_000)
    dt = time.perf_counter() - t0
    k, j, i = pv.volume.shape
    return f"{i}×{j}×{k} voxels ({i * j * k / 1e6:.1f} M) generated in {dt:.1f} s"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="volumes per style (default 20)")
    ap.add_argument("--styles", nargs="+", default=["standard", "other"])
    ap.add_argument("--seed0", type=int, default=SEED0, help=f"first seed (default {SEED0})")
    ap.add_argument("--no-predict", action="store_true", help="skip the LU-Net measurement comparison")
    args = ap.parse_args(argv)
    predictor = None
    if not args.no_predict:
        from dentseg_gui.model.predict import Predictor
        predictor = Predictor()
        predictor.load()
    rows: list = []
    results = {}
    for style in args.styles:
        print(f"style {style}:", flush=True)
        results[style] = run_style(style, args.n, predictor, rows, args.seed0)
    print("\n| style | teeth | no hint: within 3° and 0.5 mm | with a point | axis distance mm (median / max) | "
          "plane angle ° (median / max) | detection s (median / max) | generation s (median) |")
    print("|---|---|---|---|---|---|---|---|")
    for style, r in results.items():
        print("\n".join(summary_rows(style, r)))
    if predictor is not None:
        print("\nLU-Net on the found plane vs on the true plane (mean / max absolute difference, share within "
              "0.3 mm), and the true plane's prediction vs the exact truth (mean):")
        print("| style | teeth | root length mm | ≤ 0.3 mm | thickness mm (mean of 4 levels) | ≤ 0.3 mm | "
              "true plane vs truth: root length | thickness |")
        print("|---|---|---|---|---|---|---|---|")
        for style, r in results.items():
            print("\n".join(meas_rows(style, r)))
    print("\nRefusals (volumes without teeth):")
    print("| volume | refused | detection s (max) | message |")
    print("|---|---|---|---|")
    print("\n".join(refusals()))
    print("\nSpeed: " + speed_big())
    print("Generation: " + speed_generation())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
