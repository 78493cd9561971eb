"""Could a learned edge term bring the network's palatal boundary closer to the truth?

An experiment, not a feature (docs/benchmarks.md, "A learned edge term"). Along the
outward normals of the bundled model's predicted palatal curve it samples 31-point
profiles (+-1.5 mm) of the image and of the PAB probability; the target is the signed
distance along the normal to the phantom's exact palatal boundary. It fits ridge
regression and a small MLP on training phantoms (faint + standard) and reports the mean
along-normal error on the held-out phantoms of ``bench_compensation.py`` (seeds 7000..)
without and with the learned correction.

A third column asks whether the faint blur merely flattens the surface's undulations:
it fits the error to the predicted curve's own high-pass (its offset from a copy
smoothed along the curve, ``HIGH_PASS_MM``) plus a constant, per style. A "sharpening"
correction would show up there as a gain.

    python benchmarks/probe_learned_edge.py            # 150 + 150 training phantoms, ~3 min
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from shapely.geometry import LineString

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dentseg_gui.core.measurements import ToothFrame  # noqa: E402
from dentseg_gui.core.palatal_boundary import extract_palatal_boundary  # noqa: E402
from dentseg_gui.core.phantom import generate_phantom  # noqa: E402
from dentseg_gui.model import compensation  # noqa: E402
from dentseg_gui.model.inference import Segmenter  # noqa: E402
from dentseg_gui.model.predict import probabilities_to_region  # noqa: E402

OFFSETS_MM = np.arange(-1.5, 1.5001, 0.1)
HIGH_PASS_MM = 1.0   # Gaussian sigma (mm of arc) of the smoothed copy of the curve


def curve_high_pass(pts_mm: np.ndarray, normals: np.ndarray, step_mm: float) -> np.ndarray:
    """Offset (mm, along the outward normal) of each sample from the curve smoothed along its arc."""
    import cv2

    k = max(3, 2 * int(np.ceil(3 * HIGH_PASS_MM / step_mm)) + 1)
    smooth = cv2.GaussianBlur(pts_mm.astype(np.float64).reshape(-1, 1, 2), (1, k), 0,
                              sigmaY=HIGH_PASS_MM / step_mm, borderType=cv2.BORDER_REPLICATE).reshape(-1, 2)
    return ((pts_mm - smooth) * normals).sum(axis=1)


def case_samples(seg: Segmenter, seed: int, style: str):
    """(profile features, curve high-pass, signed target mm) for one phantom's samples, or None."""
    case = generate_phantom(seed, style)
    a = case.annotation
    sp = a.pixel_spacing_mm
    res = seg.segment(case.image, spacing=sp)
    pab = probabilities_to_region(res.probs, 1, res.spacing_used)
    pred_curve = extract_palatal_boundary(pab, a.landmarks, sp)
    true_curve = extract_palatal_boundary(a.regions["PAB"], a.landmarks, sp)
    if pred_curve is None or true_curve is None:
        return None
    frame = ToothFrame.from_landmarks(dict(a.landmarks), sp)
    pts, normals, step = compensation._samples(pred_curve, frame, compensation.DEFAULT_PARAMS)
    scale = np.array([sp[1], sp[0]])
    high_pass = curve_high_pass(pts * scale, normals, step)
    where = pts[:, None, :] * scale + OFFSETS_MM[None, :, None] * normals[:, None, :]     # mm
    xs = (where[..., 0] / scale[0]).astype(np.float32)
    ys = (where[..., 1] / scale[1]).astype(np.float32)
    image = compensation._sample_image(case.image.normalized(), xs, ys, (0.5, 0.5))
    prob = compensation._sample_image(res.probs[1].astype(np.float32), xs, ys, (0.3, 0.3))
    lo, hi = np.percentile(image, 5), np.percentile(image, 95)
    image = (image - lo) / max(hi - lo, 1e-3)
    truth = LineString(np.asarray(true_curve.coords)[:, :2] * scale)
    target = np.full(len(pts), np.nan)
    for i, (p0, n) in enumerate(zip(pts * scale, normals)):
        cut = LineString([p0 - 2.0 * n, p0 + 2.0 * n]).intersection(truth)
        if cut.is_empty:
            continue
        xy = np.array([g.coords[0] for g in getattr(cut, "geoms", [cut])])
        d = (xy - p0) @ n
        target[i] = d[np.argmin(np.abs(d))]
    t = np.linspace(0.0, 1.0, len(pts))[:, None]
    feats = np.concatenate([image, prob, t, np.ones_like(t)], axis=1)
    ok = np.isfinite(target)
    return feats[ok], high_pass[ok], target[ok]


def collect(seg: Segmenter, seeds, style: str, per_case: list | None = None):
    xs, hs, ys = [], [], []
    for s in seeds:
        out = case_samples(seg, s, style)
        if out is not None:
            xs.append(out[0])
            hs.append(np.stack([out[1], np.ones_like(out[1])], axis=1))
            ys.append(out[2])
    if per_case is not None:
        per_case.extend(ys)
    return np.concatenate(xs), np.concatenate(hs), np.concatenate(ys)


def oracle_errors(per_case: list[np.ndarray], sigma_mm: float = 2.0, step_mm: float = 0.2) -> tuple[float, float, float]:
    """Mean abs error (mm): as predicted; after removing each case's TRUE mean offset; after
    removing the true error smoothed along the curve (Gaussian, ``sigma_mm``). Upper bounds of
    what a per-case shift, or a smooth correction, could gain."""
    import cv2

    sig = sigma_mm / step_mm
    k = 2 * int(np.ceil(3 * sig)) + 1
    none, shift, smooth = [], [], []
    for t in per_case:
        if len(t) < 5:
            continue
        low = cv2.GaussianBlur(t.astype(np.float64).reshape(-1, 1), (1, k), 0, sigmaY=sig,
                               borderType=cv2.BORDER_REPLICATE).ravel()
        none.append(np.abs(t).mean())
        shift.append(np.abs(t - t.mean()).mean())
        smooth.append(np.abs(t - low).mean())
    return float(np.mean(none)), float(np.mean(shift)), float(np.mean(smooth))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=150, help="training phantoms per style")
    ap.add_argument("--n-test", type=int, default=20, help="held-out phantoms per style (seeds 7000..)")
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    seg = Segmenter.load(None)
    xf, hf, yf = collect(seg, range(20000, 20000 + args.n_train), "faint")
    xs, hs, ys = collect(seg, range(21000, 21000 + args.n_train), "standard")
    x, y = np.concatenate([xf, xs]), np.clip(np.concatenate([yf, ys]), -1.5, 1.5)
    # curve-shape fit, one per style (least squares on samples within 1 mm of the truth)
    shape_w = {}
    for style, h, t in (("faint", hf, yf), ("standard", hs, ys)):
        near = np.abs(t) < 1.0
        shape_w[style] = np.linalg.lstsq(h[near], t[near], rcond=None)[0]
    test_cases: dict[str, list] = {"faint": [], "standard": []}
    tests = {style: collect(seg, range(7000, 7000 + args.n_test), style, test_cases[style])
             for style in ("faint", "standard")}

    w = np.linalg.solve(x.T @ x + np.eye(x.shape[1]), x.T @ y)             # ridge, lambda 1
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    opt = torch.optim.Adam(net.parameters(), 1e-3, weight_decay=1e-4)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    for _ in range(args.epochs):
        perm = torch.randperm(len(xt))
        for i in range(0, len(perm), 256):
            idx = perm[i:i + 256]
            loss = torch.nn.functional.smooth_l1_loss(net(xt[idx]).squeeze(1), yt[idx], beta=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()

    print(f"model {seg.name}; {len(y)} training samples from {2 * args.n_train} phantoms")
    print("| style | samples | mean signed error mm | mean abs error mm: none | ridge | MLP "
          "| curve high-pass (gain, constant) |")
    print("|---|---|---|---|---|---|---|")
    for style, (xe, he, ye) in tests.items():
        with torch.no_grad():
            mlp = net(torch.tensor(xe, dtype=torch.float32)).squeeze(1).numpy()
        none = np.abs(ye).mean()
        ridge = np.abs(ye - xe @ w).mean()
        learned = np.abs(ye - mlp).mean()
        sw = shape_w[style]
        shaped = np.abs(ye - he @ sw).mean()
        print(f"| {style} | {len(ye)} | {ye.mean():+.3f} | {none:.3f} | {ridge:.3f} ({ridge / none - 1:+.0%}) "
              f"| {learned:.3f} ({learned / none - 1:+.0%}) "
              f"| {shaped:.3f} ({shaped / none - 1:+.0%}; {sw[0]:+.2f}, {sw[1]:+.3f} mm) |")
    print("\nupper bounds, per case (mean abs error mm): what a correction that KNEW the truth could gain")
    print("| style | cases | as predicted | minus the true per-case shift | minus the true error smoothed at 2 mm |")
    print("|---|---|---|---|---|")
    for style, per_case in test_cases.items():
        none, shift, smooth = oracle_errors(per_case)
        print(f"| {style} | {len(per_case)} | {none:.3f} | {shift:.3f} ({shift / none - 1:+.0%}) "
              f"| {smooth:.3f} ({smooth / none - 1:+.0%}) |")


if __name__ == "__main__":
    main()
