"""Does prediction find which way up a slice is? Upright, upside down, turned 90°/270°, flipped.

For held-out phantoms, each slice is predicted as generated (upright) and turned by 90°,
180°, 270° and flipped vertically; printed per orientation: the fraction where the upright
orientation was found, the largest difference of any contract measurement from the upright
prediction, and the extra time. Also: how many upright slices made the predictor try other
orientations at all, and how many of those it wrongly turned.

    python benchmarks/bench_orientation.py [--n 20] [--seed 7000] [--style standard]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dentseg_gui.core.measurements import CONTRACT_KEYS  # noqa: E402
from dentseg_gui.core.phantom import generate_phantom  # noqa: E402
from dentseg_gui.model.predict import Predictor  # noqa: E402

TURNS = {"upright": lambda p: p, "rot180": lambda p: np.rot90(p, 2), "rot90": lambda p: np.rot90(p, 1),
         "rot270": lambda p: np.rot90(p, 3), "flipud": lambda p: p[::-1]}
EXPECT = {"upright": 0, "rot180": 180, "rot90": 270, "rot270": 90, "flipud": 180}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7000)
    ap.add_argument("--style", default="standard")
    a = ap.parse_args()
    pred = Predictor()
    pred.load()
    found = {k: 0 for k in TURNS}
    diff = {k: [] for k in TURNS}
    secs = {k: [] for k in TURNS}
    tried_upright = 0
    for i in range(a.n):
        case = generate_phantom(a.seed + i, a.style)
        ref = None
        for name, turn in TURNS.items():
            img = dataclasses.replace(case.image, pixels=np.ascontiguousarray(turn(case.image.pixels)))
            if name in ("rot90", "rot270") and img.spacing_mm is not None:
                img = dataclasses.replace(img, spacing_mm=(img.spacing_mm[1], img.spacing_mm[0]))
            t0 = time.perf_counter()
            r = pred.predict_image(img)
            secs[name].append(time.perf_counter() - t0)
            prov = r.annotation.provenance
            found[name] += int(prov.get("orientation_deg", 0) == EXPECT[name])
            m = r.annotation.measurements
            if name == "upright":
                ref = m
                tried_upright += int(bool(prov.get("orientation_scores")))
                continue
            d = [abs(m[k] - ref[k]) for k in CONTRACT_KEYS if m.get(k) is not None and ref.get(k) is not None]
            missing = sum(1 for k in CONTRACT_KEYS if (m.get(k) is None) != (ref.get(k) is None))
            diff[name].append(max(d) if d and not missing else float("inf"))
    print(f"{a.n} phantoms ({a.style}, seeds {a.seed}..{a.seed + a.n - 1})")
    print(f"{'shown':10} {'found':>8} {'median max|Δ|':>14} {'worst max|Δ|':>13} {'median s':>9}")
    for name in TURNS:
        dd = diff[name]
        med = f"{np.median(dd):.3f}" if dd else "-"
        worst = f"{max(dd):.3f}" if dd else "-"
        print(f"{name:10} {found[name]:>5}/{a.n} {med:>14} {worst:>13} {np.median(secs[name]):9.2f}")
    print(f"upright slices that made the predictor look at other orientations: {tried_upright}/{a.n}; "
          f"turned wrongly: {a.n - found['upright']}")


if __name__ == "__main__":
    main()
