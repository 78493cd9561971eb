"""Run LU-Net on one slice: find the tooth, segment it, locate the landmarks, map back.

Pre-transform -> network -> post-transform -> restore to the original pixel grid
(the MONAI Label pattern):

1. Spacing: the image's own, else the ``spacing`` argument, else an assumed
   0.25 mm (``spacing_assumed`` is then True so the caller can warn).
2. Whole-slice pass: the slice, normalised by robust percentiles, is resampled
   to the canonical 0.2 mm grid and segmented in one fully convolutional pass.
   When that grid would exceed ``COARSE_MAX_SIDE`` pixels (a big radiograph), the
   pass runs on a coarser grid capped at that size instead - memory and time stay
   bounded whatever the input; the output there may be meaningless, never a crash.
3. Region of interest: the most probable connected group of PAB + enamel pixels
   (and the landmarks) plus a margin. If step 2 ran coarse, a fine pass at the
   canonical spacing runs on that region (also capped, ``FINE_MAX_SIDE``).
4. Second view (``flip_averaging``): the region of interest alone is sampled again
   on the grid shifted by half a pixel and mirrored for the network; its outputs
   are mirrored back (only the region is run twice, not the whole slice).
5. Restore: class probabilities of both views are mapped back to the original
   pixels of the region and averaged (outside it: background = 1); landmarks are
   decoded sub-pixel, mapped back and averaged; the CEJs are cross-checked against
   the enamel ends (``landmarks.reconcile_cej``).

The network is loaded once per (file, modification time, engine, threads) and runs
in ONNX Runtime when the model has a verified ONNX export, else in torch
(``engine.py``: both run the BatchNorm-folded network and return raw logits; the
softmax, the mirrored view and the restore are this module's, shared by both).
"""

from __future__ import annotations

import dataclasses
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from ..core.annotation import LANDMARKS
from ..core.errors import DentsegError, ModelError
from ..core.image import SliceImage
from .class_weights import apply_class_weights
from .dataset import CANONICAL_SPACING_MM, CanonicalGrid, grid_around, resolve_spacing
from .engine import open_engine
from .labels import CLASSES
from .landmarks import decode_heatmaps, reconcile_cej
from .model_file import ModelSet, card_path_for, onnx_path_for
from .threads import inference_threads

#: Largest side (grid pixels) of the whole-slice pass; beyond it the pass runs coarser.
COARSE_MAX_SIDE = 640
#: Largest side (grid pixels) of the fine pass on the region of interest.
FINE_MAX_SIDE = 448
#: Margin (mm) added around the found structures to make the region of interest.
ROI_MARGIN_MM = 5.0


class SegmentationCancelled(DentsegError):
    """``should_stop`` asked to stop while a slice was being segmented."""


@dataclass
class SegmentationResult:
    """Network output for one slice, in the ORIGINAL pixel grid of ``image.pixels``."""

    probs: np.ndarray                                  # (3, H, W) float32: background, PAB, enamel; sums to 1
    landmarks: dict[str, tuple[float, float]]          # (x, y) original pixels, sub-pixel
    landmark_confidence: dict[str, float]              # 0..1 (heatmap mass at the peak)
    roi: tuple[int, int, int, int]                     # (x0, y0, x1, y1) original pixels, x1/y1 exclusive
    spacing_used: tuple[float, float]                  # (row, column) mm
    spacing_assumed: bool
    landmark_source: dict[str, str] = field(default_factory=dict)  # 'heatmap' | 'enamel_end'
    orientation_deg: int = 0          # the image must be turned this much (counter-clockwise) to stand upright
    orientation_scores: dict[int, float] = field(default_factory=dict)   # each orientation tried (orientation.py)

    def class_prob(self, name: str) -> np.ndarray:
        return self.probs[CLASSES.index(name)]

    def labels(self) -> np.ndarray:
        """(H, W) uint8 arg-max class: 0 background, 1 PAB, 2 enamel."""
        return np.argmax(self.probs, axis=0).astype(np.uint8)


class Segmenter:
    """A loaded, verified LU-Net ready to segment slices. Create with ``Segmenter.load``."""

    _cache: dict[tuple, "Segmenter"] = {}
    _cache_lock = threading.Lock()

    def __init__(self, engine: Any, model_set: ModelSet, path: Path, engine_note: str | None = None) -> None:
        card = model_set.card
        self.card = card
        self.sha256 = model_set.sha256
        self.path = path
        self.name = str(card.get("name") or path.stem)
        self.canonical_mm = float(card.get("canonical_spacing_mm", CANONICAL_SPACING_MM))
        #: the network: ``engine.OnnxEngine`` or ``engine.TorchEngine``
        self.engine = engine
        #: why the network runs on torch although ONNX Runtime was wanted (None: it did not fall back)
        self.engine_note = engine_note
        #: False for a model without a card (its hash could not be checked)
        self.verified = bool(model_set.verified)
        #: what a user must see about this model ("unverified model: ..."); predictions carry it
        self.notes = list(model_set.notes)
        self._multiple = engine.size_multiple
        self._lock = threading.Lock()
        #: average with a second, mirrored and half-pixel-shifted view of the region of interest
        self.flip_averaging = True
        #: the views besides the first, run when ``flip_averaging``: (grid shift u, v in pixels, mirrored)
        self.extra_views: tuple[tuple[float, float, bool], ...] = ((0.5, 0.5, True),)
        #: map probabilities back to the original pixels by interpolating log-probabilities
        #: (the logits), not probabilities: bundled v2 on 60 held-out phantoms, enamel Dice
        #: 0.9483 -> 0.9509, PAB 0.9664 -> 0.9668 (docs/model.md)
        self.restore_log_space = True
        #: context (mm) around the region of interest that the second view also sees
        self.second_view_context_mm = 0.0
        #: per-class probability weights fitted after training (model card ``calibration``;
        #: ``model.calibration``), applied before the arg-max; None = raw network probabilities
        weights = (card.get("calibration") or {}).get("class_weights")
        self.class_weights = (np.asarray(weights, np.float32)
                              if weights is not None and len(weights) == len(CLASSES) else None)

    @property
    def engine_label(self) -> str:
        """E.g. "onnxruntime 1.32.0, 2 threads"."""
        return f"{self.engine.label}, {self.engine.threads} thread{'s' if self.engine.threads != 1 else ''}"

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_model(cls, model: Any, name: str, threads: int | None = None) -> "Segmenter":
        """A segmenter for a network in memory (during training), on torch; ``model`` is not changed."""
        from .engine import TorchEngine
        from .model_file import ModelSet

        model_set = ModelSet(weights_path=Path(name), card={"name": name}, sha256="", verified=True)
        return cls(TorchEngine(model, inference_threads(threads)), model_set, Path(name))

    @classmethod
    def load(cls, path: str | Path | None = None, engine: str = "auto", threads: int | None = None,
             cache: bool = True) -> "Segmenter":
        """Load a model file (None = the bundled LU-Net), verified against its model card.

        ``engine``: "auto" (ONNX Runtime when the model has a matching ONNX export and
        ONNX Runtime is installed, else torch), "onnx" or "torch"; ``threads`` (None =
        ``threads.inference_threads``). Cached by path, engine, threads and modification
        times (of the weights, the card and the ONNX file): a retrained or re-calibrated
        model is picked up, an unchanged one is not read twice (``cache=False``: a private
        copy). Raises ``ModelError`` with a clear message.
        """
        from ..resources import bundled_model_path

        bundled = path is None or str(path) == "bundled"
        p = Path(bundled_model_path() if bundled else path).expanduser()
        try:
            st = p.stat()
        except OSError:
            if bundled:
                raise ModelError(f"the bundled LU-Net model is missing ({p}); reinstall DentSeg or "
                                 "choose a model file") from None
            raise ModelError(f"model file {p} not found; choose an existing .pt model file") from None
        n_threads = inference_threads(threads)
        key = (str(p.resolve()), st.st_mtime_ns, st.st_size, _mtime(card_path_for(p)),
               _mtime(onnx_path_for(p)), engine, n_threads)
        if cache:
            with cls._cache_lock:
                hit = cls._cache.get(key)
            if hit is not None:
                return hit
        eng, model_set, note = open_engine(p, engine=engine, threads=n_threads, require_card=bundled)
        seg = cls(eng, model_set, p, note)
        if cache:
            with cls._cache_lock:
                for k in [k for k in cls._cache if k[0] == key[0]]:
                    del cls._cache[k]
                cls._cache[key] = seg
        return seg

    # ------------------------------------------------------------------ inference
    def segment(self, image: SliceImage, spacing: tuple[float, float] | None = None,
                should_stop: Callable[[], bool] | None = None) -> SegmentationResult:
        """Segment one slice; see the module docstring for the steps."""
        stop = should_stop or (lambda: False)
        spacing_used, assumed = resolve_spacing(image, spacing)
        shape = (image.height, image.width)
        norm = image.normalized()
        fx, fy = CanonicalGrid.scale_for(spacing_used, self.canonical_mm)

        # whole-slice pass (canonical grid, or coarser when the slice is huge)
        k = min(1.0, COARSE_MAX_SIDE / max(shape[1] * fx, shape[0] * fy))
        grid = CanonicalGrid(fx * k, fy * k, 0, 0, self._padded(shape[1] * fx * k),
                             self._padded(shape[0] * fy * k))
        probs_g, heat = self._run(grid.sample(norm), stop)
        box = _structure_box(probs_g, margin_px=ROI_MARGIN_MM / self._grid_mm(grid, spacing_used))

        if k < 1.0 and box is not None:  # fine pass on the region of interest at the canonical spacing
            corners = grid.to_original(np.array([[box[0] - 0.5, box[1] - 0.5], [box[2] - 0.5, box[3] - 0.5]]))
            size_mm = (corners[1] - corners[0]) * [spacing_used[1], spacing_used[0]]
            kf = min(1.0, FINE_MAX_SIDE * self.canonical_mm / max(float(size_mm.max()), 1e-6))
            fine = CanonicalGrid(fx * kf, fy * kf, 0, 0, 1, 1)
            centre = fine.to_grid(corners.mean(axis=0))
            size = size_mm / (self.canonical_mm / kf)
            grid = grid_around(tuple(centre), (self._padded(size[0]), self._padded(size[1])), fine.fx, fine.fy)
            probs_g, heat = self._run(grid.sample(norm), stop)
            box = _structure_box(probs_g, margin_px=ROI_MARGIN_MM / self._grid_mm(grid, spacing_used))

        # the second view is skipped for huge slices (memory of two full-size restores)
        return self._finish(grid, probs_g, heat, box, norm, shape, spacing_used, assumed, stop,
                            second_view=self.flip_averaging and k == 1.0)

    def _finish(self, grid: CanonicalGrid, probs_g: np.ndarray, heat: np.ndarray,
                box: tuple[int, int, int, int] | None, norm: np.ndarray, shape: tuple[int, int],
                spacing_used: tuple[float, float], assumed: bool, stop: Callable[[], bool],
                second_view: bool) -> SegmentationResult:
        """Landmarks, ROI and restore to the original grid (with the shifted, mirrored second view)."""
        grid_mm = self._grid_mm(grid, spacing_used)
        margin = ROI_MARGIN_MM / grid_mm
        fill = np.array([1.0, 0.0, 0.0])
        pts, conf = decode_heatmaps(heat)
        orig = grid.to_original(pts)
        roi = None if box is None else _roi_from_box(grid, box, pts, conf, shape, margin_px=margin)
        if second_view and roi is not None and self.extra_views:
            # further views: the region of interest only, on the grid shifted by a fraction of
            # a pixel and (by default) the image mirrored (labels are anatomical, so no channel
            # swap); outputs mirrored back and averaged in the original grid - held-out
            # phantoms, one mirrored half-pixel view: enamel Dice 0.938 -> 0.945
            probs_sum = grid.restore(probs_g, shape, roi, fill, log_space=self.restore_log_space)
            w_sum = conf[:, None] + 1e-6              # landmarks: confidence-weighted mean over views
            pts_sum, conf_sum, n_views = orig * w_sum, conf.copy(), 1
            for du, dv, mirrored in self.extra_views:
                g2 = self._shifted_window(grid, roi, context_px=self.second_view_context_mm / grid_mm,
                                          shift=(du, dv))
                probs2, heat2 = self._run(g2.sample(norm), stop, mirrored=mirrored)
                if _structure_box(probs2, margin_px=margin) is None:
                    continue
                pts2, conf2 = decode_heatmaps(heat2)
                w2 = conf2[:, None] + 1e-6
                pts_sum, w_sum = pts_sum + g2.to_original(pts2) * w2, w_sum + w2
                conf_sum, n_views = conf_sum + conf2, n_views + 1
                probs_sum += g2.restore(probs2, shape, roi, fill, log_space=self.restore_log_space)
            orig, conf, probs = pts_sum / w_sum, conf_sum / n_views, probs_sum / n_views
        else:
            probs = grid.restore(probs_g, shape, roi or (0, 0, 0, 0), fill,
                                 log_space=self.restore_log_space)
        if self.class_weights is not None:
            probs = apply_class_weights(probs, self.class_weights)
        final, source = reconcile_cej(grid.to_grid(orig), conf, probs_g[CLASSES.index("enamel")],
                                      probs_g[CLASSES.index("PAB")], grid_mm)
        orig = grid.to_original(final)
        return SegmentationResult(
            probs=probs,
            landmarks={n: (float(orig[i, 0]), float(orig[i, 1])) for i, n in enumerate(LANDMARKS)},
            landmark_confidence={n: float(conf[i]) for i, n in enumerate(LANDMARKS)},
            roi=roi or (0, 0, 0, 0), spacing_used=spacing_used, spacing_assumed=assumed,
            landmark_source=source)

    def _shifted_window(self, grid: CanonicalGrid, roi: tuple[int, int, int, int],
                        context_px: float = 0.0, shift: tuple[float, float] = (0.5, 0.5)) -> CanonicalGrid:
        """The part of ``grid``, shifted by ``shift`` pixels, that covers the original-pixel ``roi``
        plus ``context_px`` grid pixels of context (never beyond the grid itself)."""
        corners = grid.to_grid(np.array([[roi[0] - 0.5, roi[1] - 0.5], [roi[2] - 0.5, roi[3] - 0.5]]))
        corners[0] = np.maximum(corners[0] - context_px, -0.5)
        corners[1] = np.minimum(corners[1] + context_px, [grid.width - 0.5, grid.height - 0.5])
        u0 = math.floor(corners[0, 0] - 0.5) - 1
        v0 = math.floor(corners[0, 1] - 0.5) - 1
        w = self._padded(math.ceil(corners[1, 0] + 0.5) + 1 - u0)
        h = self._padded(math.ceil(corners[1, 1] + 0.5) + 1 - v0)
        return dataclasses.replace(grid, u0=grid.u0 + u0 + shift[0], v0=grid.v0 + v0 + shift[1], width=w, height=h)

    def _padded(self, n: float) -> int:
        """Smallest multiple of the network's size multiple that holds ``n`` pixels."""
        m = self._multiple
        return max(m, int(math.ceil(n / m - 1e-6)) * m)

    @staticmethod
    def _grid_mm(grid: CanonicalGrid, spacing_used: tuple[float, float]) -> float:
        """Pixel size (mm) of a grid; isotropic by construction."""
        return spacing_used[1] / grid.fx

    def _run(self, img: np.ndarray, stop: Callable[[], bool], mirrored: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Network on one (h, w) grid image -> (class probabilities (3,h,w), heatmap log-probs (3,h,w)).

        ``mirrored``: the image is mirrored for the network and the outputs mirrored back.
        Softmax and log-softmax run here in numpy, the same for both engines.
        """
        if stop():
            raise SegmentationCancelled("segmentation cancelled")
        x = np.ascontiguousarray(img[:, ::-1] if mirrored else img, dtype=np.float32)
        with self._lock:
            seg, heat = self.engine.run(x)
        prob = _softmax(seg, axis=0)
        c, h, w = heat.shape
        logp = _log_softmax(heat.reshape(c, h * w), axis=-1).reshape(c, h, w)
        if mirrored:
            prob, logp = prob[:, :, ::-1], logp[:, :, ::-1]
        return np.ascontiguousarray(prob), np.ascontiguousarray(logp)


def _mtime(p: Path) -> int:
    try:
        return p.stat().st_mtime_ns
    except OSError:
        return 0


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _structure_box(seg_probs: np.ndarray, margin_px: float) -> tuple[int, int, int, int] | None:
    """Grid box (x0, y0, x1, y1) around the most probable group of PAB + enamel pixels.

    Nearby parts (within the margin) count as one group, so the enamel cap and
    the PAB of one tooth stay together while a false blob far away is dropped.
    """
    fg = (np.argmax(seg_probs, axis=0) > 0).astype(np.uint8)
    if not fg.any():
        return None
    r = max(1, int(round(margin_px / 2)))
    grown = cv2.dilate(fg, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    n, lab = cv2.connectedComponents(grown, connectivity=8)
    counts = np.bincount(lab[fg > 0], minlength=n)
    best = int(np.argmax(counts[1:])) + 1
    ys, xs = np.nonzero((lab == best) & (fg > 0))
    m = int(math.ceil(margin_px))
    h, w = fg.shape
    return (max(0, xs.min() - m), max(0, ys.min() - m), min(w, xs.max() + 1 + m), min(h, ys.max() + 1 + m))


def _roi_from_box(grid: CanonicalGrid, box: tuple[int, int, int, int], pts: np.ndarray, conf: np.ndarray,
                  shape: tuple[int, int], margin_px: float) -> tuple[int, int, int, int]:
    """Original-pixel ROI covering the grid box and the confident landmarks (plus margin)."""
    corners = [np.array([box[0] - 0.5, box[1] - 0.5]), np.array([box[2] - 0.5, box[3] - 0.5])]
    corners += [p + s * margin_px for p, c in zip(pts, conf) if c > 0.3 for s in (-1, 1)]
    uv = np.vstack(corners)
    uv[:, 0] = np.clip(uv[:, 0], -0.5, grid.width - 0.5)
    uv[:, 1] = np.clip(uv[:, 1], -0.5, grid.height - 0.5)
    xy = grid.to_original(uv)
    x0 = int(np.clip(math.floor(xy[:, 0].min() + 0.5), 0, shape[1]))
    y0 = int(np.clip(math.floor(xy[:, 1].min() + 0.5), 0, shape[0]))
    x1 = int(np.clip(math.ceil(xy[:, 0].max() + 0.5), 0, shape[1]))
    y1 = int(np.clip(math.ceil(xy[:, 1].max() + 0.5), 0, shape[0]))
    return x0, y0, x1, y1


# --------------------------------------------------------------------------- latency


def benchmark_latency(segmenter: Segmenter, repeats: int = 15) -> dict[str, Any]:
    """Median wall times (ms) with the segmenter's engine and threads: the network alone on a
    384x384 input, and ``segment`` end to end on the 384x384 demo phantom (0.125 mm -> a 240x240
    canonical pass).
    """
    import time

    from ..core.phantom import generate_phantom

    x = np.random.default_rng(0).random((384, 384), dtype=np.float32)
    case = generate_phantom(0, "demo")

    def median_ms(fn: Callable[[], Any]) -> float:
        fn()
        ts = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return float(np.median(ts) * 1000)

    net_ms = median_ms(lambda: segmenter.engine.run(x))
    seg_ms = median_ms(lambda: segmenter.segment(case.image, spacing=case.annotation.pixel_spacing_mm))
    return {"engine": segmenter.engine.label, "threads": segmenter.engine.threads,
            "network_384x384_median_ms": round(net_ms, 1),
            "segment_demo_384x384_median_ms": round(seg_ms, 1),
            "demo_image_px": list(case.image.pixels.shape), "repeats": repeats}


if __name__ == "__main__":  # python -m dentseg_gui.model.inference [MODEL]: latency
    import json
    import sys

    print(json.dumps(benchmark_latency(Segmenter.load(sys.argv[1] if len(sys.argv) > 1 else None)), indent=1))
